/*
 * job.c - monitored jobs and subjobs: started, progress, finished, failed.
 *
 * What the caller's thread does per event is small and bounded: read the clocks (and
 * getrusage at the end), copy the fields into a record, put it in the queue. Text the caller
 * hands over is checked here, so a mistake shows where it is made, and copied; the event's
 * JSON is made by the sender thread (encode.c).
 *
 * Figures: duration_s from CLOCK_MONOTONIC between start and the event; cpu_user_s and
 * cpu_system_s the CPU time of the job's thread between start and end (RUSAGE_THREAD where
 * the system has it, else the process's; wafermon_job_set_cpu_scope chooses); mem_max_mb the
 * process's peak resident set size so far (ru_maxrss), a high-water mark of the whole process.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>

#ifdef RUSAGE_THREAD
#define WM_RUSAGE_THREAD RUSAGE_THREAD
#else
#define WM_RUSAGE_THREAD RUSAGE_SELF
#endif

struct wafermon_job {
    wafermon_client *client;
    wm_entity *entity;
    double t0;
    struct rusage ru0;
    int who;
};

static double seconds_of(struct timeval tv) { return (double)tv.tv_sec + tv.tv_usec / 1e6; }

/* A text option: NULL is fine; otherwise 1..max characters of valid UTF-8. */
static int check_text(const char *value, long max, const char *name, char *errbuf,
                      size_t errlen) {
    if (!value)
        return 0;
    long n = wm_utf8_length(value);
    if (n < 0) {
        wm_format_error(errbuf, errlen, "%s: not valid UTF-8", name);
        return -1;
    }
    if (n < 1 || n > max) {
        wm_format_error(errbuf, errlen, "%s: must be 1-%ld characters, got %ld", name, max, n);
        return -1;
    }
    return 0;
}

static int check_json_object(const char *text, const char *name, char *errbuf, size_t errlen) {
    if (!text)
        return 0;
    cJSON *doc = cJSON_Parse(text);
    int ok = cJSON_IsObject(doc);
    cJSON_Delete(doc);
    if (!ok) {
        wm_format_error(errbuf, errlen, "%s: expected a JSON object such as {\"tool\": \"etch-07\"}",
                        name);
        return -1;
    }
    return 0;
}

static char *dup_or_null(const char *s, int *failed) {
    if (!s)
        return NULL;
    char *copy = strdup(s);
    if (!copy)
        *failed = 1;
    return copy;
}

static wafermon_status start(wafermon_client *c, wafermon_job *parent,
                             const wafermon_job_options *o, wafermon_job **out, char *errbuf,
                             size_t errlen) {
    if (errbuf && errlen)
        errbuf[0] = '\0';
    if (!out) {
        wm_format_error(errbuf, errlen, "out: must not be NULL");
        return WAFERMON_ERR_USAGE;
    }
    *out = NULL;
    if (!c || !o || !o->app) {
        wm_format_error(errbuf, errlen, "%s: must not be NULL",
                        !c ? (parent ? "parent" : "client") : !o ? "options" : "options.app");
        return WAFERMON_ERR_USAGE;
    }
    const char *site_id = wm_client_site_id(c);
    if (!site_id) {
        wm_format_error(errbuf, errlen,
                        "site_id: the client has none (set WAFERMON_SITE_ID)");
        return WAFERMON_ERR_USAGE;
    }
    if (!o->app->name) {
        wm_format_error(errbuf, errlen, "app.name: must not be NULL");
        return WAFERMON_ERR_USAGE;
    }
    if (check_text(o->app->name, 128, "app.name", errbuf, errlen) ||
        check_text(o->app->version, 64, "app.version", errbuf, errlen) ||
        check_text(o->business_key, 256, "entity.business_key", errbuf, errlen) ||
        check_text(o->sub_key, 256, "entity.sub_key", errbuf, errlen) ||
        check_text(o->entity_id, 256, "entity.id", errbuf, errlen) ||
        check_json_object(o->metadata, "metadata", errbuf, errlen))
        return WAFERMON_ERR_USAGE;
    if (o->app->app_id && !wm_valid_uuid(o->app->app_id)) {
        wm_format_error(errbuf, errlen, "app.app_id: must be a lower-case UUID, got '%.80s'",
                        o->app->app_id);
        return WAFERMON_ERR_USAGE;
    }
    wafermon_job *job = calloc(1, sizeof *job);
    wm_entity *e = calloc(1, sizeof *e);
    if (!job || !e) {
        free(job);
        free(e);
        return WAFERMON_ERR_NOMEM;
    }
    int failed = 0;
    atomic_init(&e->refs, 1);
    e->is_subjob = parent != NULL;
    if (o->entity_id)
        wm_copy_text(e->id, sizeof e->id, o->entity_id);
    else
        wm_client_new_id(c, e->id);
    if (!e->id[0]) { /* the kernel gave no random bytes for the id */
        free(job);
        free(e);
        return WAFERMON_ERR_INTERNAL;
    }
    e->site_id = dup_or_null(site_id, &failed);
    e->app_name = dup_or_null(o->app->name, &failed);
    e->app_version = dup_or_null(o->app->version, &failed);
    e->app_id = dup_or_null(o->app->app_id, &failed);
    e->parent_id = dup_or_null(parent ? parent->entity->id : NULL, &failed);
    /* A subjob without its own key inherits its parent's, so a query by lot finds its wafers. */
    e->business_key = dup_or_null(
        o->business_key ? o->business_key : parent ? parent->entity->business_key : NULL, &failed);
    e->sub_key = dup_or_null(o->sub_key, &failed);
    e->initial_metadata = dup_or_null(o->metadata, &failed);
    if (failed) {
        wm_entity_release(e);
        free(job);
        return WAFERMON_ERR_NOMEM;
    }
    job->client = c;
    job->entity = e;
    job->who = WM_RUSAGE_THREAD;

    wm_record rec = {0};
    rec.type = WM_REC_LIFECYCLE;
    rec.kind = WM_KIND_STARTED;
    rec.entity = e;
    rec.time_ns = wm_realtime_ns();
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    wafermon_status st = wm_client_enqueue(c, &rec);
    if (st != WAFERMON_OK) {
        wm_entity_release(e); /* the record's reference */
        wm_entity_release(e);
        free(job);
        wm_format_error(errbuf, errlen, "%s", wafermon_status_str(st));
        return st;
    }
    getrusage(job->who, &job->ru0);
    job->t0 = wm_monotonic_s();
    *out = job;
    return WAFERMON_OK;
}

wafermon_status wafermon_job_start(wafermon_client *client, const wafermon_job_options *options,
                                   wafermon_job **out, char *errbuf, size_t errlen) {
    return start(client, NULL, options, out, errbuf, errlen);
}

wafermon_status wafermon_subjob_start(wafermon_job *parent, const wafermon_job_options *options,
                                      wafermon_job **out, char *errbuf, size_t errlen) {
    if (!parent) {
        if (out)
            *out = NULL;
        wm_format_error(errbuf, errlen, "parent: a subjob needs its parent job");
        return WAFERMON_ERR_USAGE;
    }
    return start(parent->client, parent, options, out, errbuf, errlen);
}

wafermon_status wafermon_job_set_cpu_scope(wafermon_job *job, wafermon_cpu_scope scope) {
    if (!job || (scope != WAFERMON_CPU_THREAD && scope != WAFERMON_CPU_PROCESS))
        return WAFERMON_ERR_USAGE;
    job->who = scope == WAFERMON_CPU_PROCESS ? RUSAGE_SELF : WM_RUSAGE_THREAD;
    getrusage(job->who, &job->ru0);
    return WAFERMON_OK;
}

const char *wafermon_job_id(const wafermon_job *job) { return job ? job->entity->id : NULL; }

static wafermon_status put(wafermon_job *job, wm_record *rec) {
    rec->type = WM_REC_LIFECYCLE;
    rec->entity = job->entity;
    rec->time_ns = wm_realtime_ns();
    atomic_fetch_add_explicit(&job->entity->refs, 1, memory_order_relaxed);
    wafermon_status st = wm_client_enqueue(job->client, rec);
    if (st != WAFERMON_OK) {
        rec->entity = NULL;
        wm_entity_release(job->entity);
        free(rec->text);
        free(rec->error);
    }
    return st;
}

wafermon_status wafermon_job_progress(wafermon_job *job, double progress,
                                      const char *metadata_patch) {
    if (!job || check_json_object(metadata_patch, "metadata", NULL, 0))
        return WAFERMON_ERR_USAGE;
    wm_record rec = {0};
    rec.kind = WM_KIND_PROGRESS;
    rec.has_metrics = 1;
    rec.duration_s = wm_monotonic_s() - job->t0;
    if (!isnan(progress) && progress >= 0) {
        rec.has_progress = 1;
        rec.progress = progress;
    }
    if (metadata_patch) {
        rec.text_len = strlen(metadata_patch);
        rec.text = malloc(rec.text_len + 1);
        if (!rec.text)
            return WAFERMON_ERR_NOMEM;
        memcpy(rec.text, metadata_patch, rec.text_len + 1);
    }
    return put(job, &rec);
}

static wafermon_status end(wafermon_job *job, wm_record *rec) {
    struct rusage ru;
    double duration = wm_monotonic_s() - job->t0;
    getrusage(job->who, &ru);
    rec->has_metrics = 1;
    rec->duration_s = duration;
    rec->cpu_user_s = seconds_of(ru.ru_utime) - seconds_of(job->ru0.ru_utime);
    rec->cpu_system_s = seconds_of(ru.ru_stime) - seconds_of(job->ru0.ru_stime);
    if (rec->cpu_user_s < 0)
        rec->cpu_user_s = 0;
    if (rec->cpu_system_s < 0)
        rec->cpu_system_s = 0;
    rec->mem_max_mb = (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
    wafermon_status st = put(job, rec);
    if (st == WAFERMON_ERR_QUEUE_FULL)
        return st; /* the job stays valid: the caller tries again (or discards it) */
    wm_entity_release(job->entity);
    free(job);
    return st;
}

wafermon_status wafermon_job_finish(wafermon_job *job) {
    if (!job)
        return WAFERMON_ERR_USAGE;
    wm_record rec = {0};
    rec.kind = WM_KIND_FINISHED;
    return end(job, &rec);
}

wafermon_status wafermon_job_fail(wafermon_job *job, const char *error_type, const char *message,
                                  const char *stack) {
    if (!job)
        return WAFERMON_ERR_USAGE;
    if (!error_type || !*error_type) /* the job still ends, with a name that says what's up */
        error_type = "Error";
    if (!message)
        message = "";
    size_t tlen = strlen(error_type), mlen = strlen(message), slen = stack ? strlen(stack) : 0;
    wm_record rec = {0};
    rec.kind = WM_KIND_FAILED;
    rec.error = malloc(tlen + mlen + slen + 3);
    if (!rec.error) {
        wm_entity_release(job->entity);
        free(job);
        return WAFERMON_ERR_NOMEM;
    }
    memcpy(rec.error, error_type, tlen + 1);
    memcpy(rec.error + tlen + 1, message, mlen + 1);
    memcpy(rec.error + tlen + mlen + 2, stack ? stack : "", slen + 1);
    rec.has_stack = stack != NULL;
    return end(job, &rec);
}

wafermon_status wafermon_job_discard(wafermon_job *job) {
    if (!job)
        return WAFERMON_ERR_USAGE;
    wm_entity_release(job->entity);
    free(job);
    return WAFERMON_OK;
}
