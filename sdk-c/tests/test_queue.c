/* The client's queue through the public API: many threads at once (nothing lost, nothing
 * doubled, each job's events in order), a full queue refusing new input, flush timing out
 * while the destination is down, and usage errors. Direct mode into a temporary file tree,
 * so no server is needed. */
#include "../src/internal.h"
#include "testing.h"

#include <pthread.h>

#define THREADS 4
#define TICKS 2500

static wafermon_client *client;

static void *worker(void *arg) {
    long n = (long)arg;
    wafermon_app app = {.name = "queue-test", .version = "1"};
    char key[32];
    snprintf(key, sizeof key, "thread-%ld", n);
    wafermon_job_options o = {.app = &app, .business_key = key};
    wafermon_job *job;
    char err[256];
    wafermon_status started, st_end;
    while ((started = wafermon_job_start(client, &o, &job, err, sizeof err)) ==
           WAFERMON_ERR_QUEUE_FULL)
        ;
    REQUIRE(started == WAFERMON_OK);
    for (int i = 0; i < TICKS; i++) {
        wafermon_status st;
        /* a full queue blocks up to WAFERMON_BLOCK_TIMEOUT; retry what it refuses */
        while ((st = wafermon_job_progress(job, (double)i / TICKS, NULL)) ==
               WAFERMON_ERR_QUEUE_FULL)
            ;
        CHECK(st == WAFERMON_OK);
    }
    /* a full queue refuses finish too, keeping the job: try again */
    while ((st_end = wafermon_job_finish(job)) == WAFERMON_ERR_QUEUE_FULL)
        ;
    CHECK(st_end == WAFERMON_OK);
    return NULL;
}

static void test_threads(const char *tmp) {
    clear_wafermon_env();
    char url[600], spool[600];
    snprintf(url, sizeof url, "file://%s/events", tmp);
    snprintf(spool, sizeof spool, "%s/spool", tmp);
    setenv("WAFERMON_MODE", "direct", 1);
    setenv("WAFERMON_DIRECT_URL", url, 1);
    setenv("WAFERMON_SPOOL_DIR", spool, 1);
    setenv("WAFERMON_SITE_ID", "fab1", 1);
    setenv("WAFERMON_QUEUE_SIZE", "1000", 1);
    setenv("WAFERMON_BATCH_SIZE", "250", 1);
    char err[512];
    REQUIRE(wafermon_client_new_from_env(&client, err, sizeof err) == WAFERMON_OK);
    pthread_t threads[THREADS];
    for (long i = 0; i < THREADS; i++)
        pthread_create(&threads[i], NULL, worker, (void *)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    CHECK(wafermon_client_flush(client, 30) == WAFERMON_OK);
    wafermon_stats st;
    wafermon_client_stats(client, &st);
    CHECK(st.queued == THREADS * (TICKS + 2));
    CHECK(st.sent == THREADS * (TICKS + 2));
    CHECK(st.pending == 0 && st.spooled == 0 && st.rejected == 0);
    CHECK(wafermon_client_close(client, 5) == WAFERMON_OK);

    char root[700];
    snprintf(root, sizeof root, "%s/events", tmp);
    cJSON *events = cJSON_CreateArray();
    collect_jsonl(root, events);
    CHECK(cJSON_GetArraySize(events) == THREADS * (TICKS + 2));
    /* unique ids; per job: started first, progress in order, finished last */
    cJSON *ids = cJSON_CreateObject();
    double last_progress[THREADS];
    int seen_finish[THREADS] = {0}, seen_start[THREADS] = {0}, order_ok = 1;
    for (int i = 0; i < THREADS; i++)
        last_progress[i] = -1;
    cJSON *e;
    cJSON_ArrayForEach(e, events) {
        const char *id = jstr(e, "event_id");
        CHECK(id && !cJSON_GetObjectItem(ids, id));
        if (id)
            cJSON_AddTrueToObject(ids, id);
        const char *key = jstr(e, "entity.business_key");
        int t = key ? atoi(key + 7) : 0;
        const char *kind = jstr(e, "kind");
        if (!strcmp(kind, "started")) {
            order_ok &= !seen_start[t] && last_progress[t] < 0;
            seen_start[t] = 1;
        } else if (!strcmp(kind, "progress")) {
            double p = jnum(e, "metrics.progress");
            order_ok &= seen_start[t] && !seen_finish[t] && p > last_progress[t];
            last_progress[t] = p;
        } else {
            order_ok &= seen_start[t] && !seen_finish[t];
            seen_finish[t] = 1;
        }
    }
    CHECK(order_ok);
    cJSON_Delete(ids);
    cJSON_Delete(events);
}

static void test_full_queue_and_timeouts(const char *tmp) {
    clear_wafermon_env();
    char spool[600];
    snprintf(spool, sizeof spool, "%s/spool-full", tmp);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", free_port()); /* nobody listens */
    setenv("WAFERMON_SIDECAR_URL", url, 1);
    setenv("WAFERMON_SPOOL_DIR", spool, 1);
    setenv("WAFERMON_QUEUE_SIZE", "4", 1);
    setenv("WAFERMON_BATCH_SIZE", "100", 1);
    setenv("WAFERMON_FLUSH_INTERVAL", "1h", 1);
    setenv("WAFERMON_BLOCK_TIMEOUT", "0", 1);
    setenv("WAFERMON_MAX_RETRIES", "0", 1);
    wafermon_client *c;
    char err[512];
    REQUIRE(wafermon_client_new_from_env(&c, err, sizeof err) == WAFERMON_OK);
    const char *ev = "{\"kind\":\"started\"}";
    for (int i = 0; i < 4; i++)
        CHECK(wafermon_emit_event(c, ev, (size_t)-1) == WAFERMON_OK);
    CHECK(wafermon_emit_event(c, ev, (size_t)-1) == WAFERMON_ERR_QUEUE_FULL);
    const char *batch[] = {ev, ev};
    size_t queued = 99;
    CHECK(wafermon_emit_batch(c, batch, NULL, 2, &queued) == WAFERMON_ERR_QUEUE_FULL);
    CHECK(queued == 0);
    wafermon_stats st;
    wafermon_client_stats(c, &st);
    CHECK(st.queued == 4 && st.pending == 4 && st.queue_full == 2);

    /* no site id: start is a usage error that says so */
    wafermon_app app = {.name = "x"};
    wafermon_job_options o = {.app = &app};
    wafermon_job *job = (wafermon_job *)1;
    CHECK(wafermon_job_start(c, &o, &job, err, sizeof err) == WAFERMON_ERR_USAGE);
    CHECK(job == NULL);
    CHECK_STR(err, "site_id: the client has none (set WAFERMON_SITE_ID)");

    /* the destination is down: flush gives up in time and says so */
    double t0 = wm_monotonic_s();
    CHECK(wafermon_client_flush(c, 0.5) == WAFERMON_ERR_TIMEOUT);
    double took = wm_monotonic_s() - t0;
    CHECK(took >= 0.45 && took < 5);
    wafermon_client_last_error(c, err, sizeof err);
    CHECK(strstr(err, "unreachable") != NULL);
    /* close spools what it could not deliver: the 4 accepted events are on disk */
    CHECK(wafermon_client_close(c, 0.2) == WAFERMON_ERR_TIMEOUT);
    char dir[700];
    snprintf(dir, sizeof dir, "%s/sidecar", spool);
    wm_spool sp;
    REQUIRE(wm_spool_open(&sp, spool, "sidecar", 1 << 30, err, sizeof err) == 0);
    size_t lines = 0;
    DIR *d = opendir(dir);
    struct dirent *ent;
    while (d && (ent = readdir(d))) {
        if (ent->d_name[0] == '.')
            continue;
        char path[1000], *line = NULL;
        size_t cap = 0;
        snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
        FILE *f = fopen(path, "r");
        while (f && getline(&line, &cap, f) > 0)
            lines++;
        free(line);
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    CHECK(lines == 4);
    wm_spool_close(&sp);
}

static void test_usage(const char *tmp) {
    clear_wafermon_env();
    char url[600];
    snprintf(url, sizeof url, "file://%s/usage", tmp);
    setenv("WAFERMON_MODE", "direct", 1);
    setenv("WAFERMON_DIRECT_URL", url, 1);
    snprintf(url, sizeof url, "%s/spool-usage", tmp);
    setenv("WAFERMON_SPOOL_DIR", url, 1);
    setenv("WAFERMON_SITE_ID", "fab1", 1);
    wafermon_client *c;
    char err[512];
    REQUIRE(wafermon_client_new_from_env(&c, err, sizeof err) == WAFERMON_OK);
    wafermon_app app = {.name = "x"};
    wafermon_job_options o = {.app = &app, .metadata = "[1]"};
    wafermon_job *job;
    CHECK(wafermon_job_start(c, &o, &job, err, sizeof err) == WAFERMON_ERR_USAGE);
    CHECK_STR(err, "metadata: expected a JSON object such as {\"tool\": \"etch-07\"}");
    o.metadata = NULL;
    app.app_id = "NOT-A-UUID";
    CHECK(wafermon_job_start(c, &o, &job, err, sizeof err) == WAFERMON_ERR_USAGE);
    CHECK_STR(err, "app.app_id: must be a lower-case UUID, got 'NOT-A-UUID'");
    app.app_id = NULL;
    app.name = "";
    CHECK(wafermon_job_start(c, &o, &job, err, sizeof err) == WAFERMON_ERR_USAGE);
    CHECK_STR(err, "app.name: must be 1-128 characters, got 0");
    app.name = "x";
    CHECK(wafermon_subjob_start(NULL, &o, &job, err, sizeof err) == WAFERMON_ERR_USAGE);
    CHECK_STR(err, "parent: a subjob needs its parent job");
    REQUIRE(wafermon_job_start(c, &o, &job, err, sizeof err) == WAFERMON_OK);
    CHECK(wafermon_job_progress(job, 0.1, "not json") == WAFERMON_ERR_USAGE);
    CHECK(wafermon_job_fail(job, "ValueError", "bad wafer", NULL) == WAFERMON_OK);
    CHECK(wafermon_emit_event(NULL, "{}", 2) == WAFERMON_ERR_USAGE);
    CHECK(wafermon_client_close(c, 5) == WAFERMON_OK);
}

int main(void) {
    wafermon_global_init();
    char *tmp = make_temp_dir();
    test_threads(tmp);
    test_full_queue_and_timeouts(tmp);
    test_usage(tmp);
    remove_tree(tmp);
    free(tmp);
    clear_wafermon_env();
    wafermon_global_cleanup();
    return test_result("test_queue");
}
