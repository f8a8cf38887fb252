/*
 * wafermon-conformance-driver - the C SDK's driver for the cross-language conformance suite.
 *
 * Speaks conformance/PROTOCOL.md (version 1): one JSON request per line on stdin, exactly one
 * JSON response per line on stdout (flushed), logs on stderr. It acts through the SDK's
 * public API only, as an application would; it builds no wire JSON itself (wire events the
 * runner hands it are passed on as text). It never dies on a bad request: it answers
 * ok:false and reads on. Exits 0 on `quit` or at the end of its input.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wafermon.h"

extern char **environ;

typedef struct handle {
    char *name;
    wafermon_job *job;
} handle;

static wafermon_client *client;
static handle *handles;
static size_t nhandles;

/* ---- JSON text of request values -------------------------------------------------------
 * The SDK takes metadata and wire events as JSON text, so the driver turns the runner's
 * values back into text. Not with cJSON_PrintUnformatted: it prints 2^53 - 1 as
 * 9.00719925474099e+15. Strings are re-escaped by cJSON's own printer (exact); numbers are
 * printed in their shortest exact form here. */
typedef struct text {
    char *data;
    size_t len, cap;
} text;

static void put(text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *more = realloc(t->data, cap);
        if (!more)
            abort(); /* the driver cannot answer without memory */
        t->data = more;
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
}

static void put_value(text *t, const cJSON *v) {
    char num[40];
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!isfinite(d))
            snprintf(num, sizeof num, "null");
        else if (d == floor(d) && fabs(d) < 1e17)
            snprintf(num, sizeof num, "%.0f", d);
        else
            for (int digits = 15; digits <= 17; digits++) {
                snprintf(num, sizeof num, "%.*g", digits, d);
                if (strtod(num, NULL) == d)
                    break;
            }
        put(t, num, strlen(num));
    } else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        int object = cJSON_IsObject(v);
        put(t, object ? "{" : "[", 1);
        for (const cJSON *c = v->child; c; c = c->next) {
            if (c != v->child)
                put(t, ",", 1);
            if (object) {
                cJSON *key = cJSON_CreateString(c->string);
                char *k = cJSON_PrintUnformatted(key);
                put(t, k, strlen(k));
                put(t, ":", 1);
                cJSON_free(k);
                cJSON_Delete(key);
            }
            put_value(t, c);
        }
        put(t, object ? "}" : "]", 1);
    } else { /* strings, booleans, null: cJSON prints these exactly */
        char *s = cJSON_PrintUnformatted(v);
        put(t, s, strlen(s));
        cJSON_free(s);
    }
}

/* Malloc'd JSON text of v (free with free()), or NULL for a missing value or JSON null. */
static char *json_text(const cJSON *v) {
    if (!v || cJSON_IsNull(v))
        return NULL;
    text t = {0};
    put_value(&t, v);
    return t.data;
}

static cJSON *response(cJSON *seq) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddItemToObject(r, "seq", seq ? cJSON_Duplicate(seq, 1) : cJSON_CreateNull());
    cJSON_AddTrueToObject(r, "ok");
    return r;
}

static cJSON *failure(cJSON *seq, const char *kind, const char *message) {
    cJSON *r = response(seq);
    cJSON_ReplaceItemInObject(r, "ok", cJSON_CreateFalse());
    cJSON *err = cJSON_AddObjectToObject(r, "error");
    cJSON_AddStringToObject(err, "kind", kind);
    cJSON_AddStringToObject(err, "message", message);
    return r;
}

static cJSON *status_failure(cJSON *seq, wafermon_status st, const char *message) {
    const char *kind = st == WAFERMON_ERR_CONFIG  ? "config"
                       : st == WAFERMON_ERR_USAGE ? "usage"
                                                  : "internal";
    return failure(seq, kind, message && *message ? message : wafermon_status_str(st));
}

static handle *find_handle(const char *name) {
    for (size_t i = 0; i < nhandles; i++)
        if (strcmp(handles[i].name, name) == 0)
            return &handles[i];
    return NULL;
}

static void forget_handle(handle *h) {
    free(h->name);
    *h = handles[--nhandles];
}

static void forget_all(void) {
    while (nhandles) {
        if (handles[nhandles - 1].job)
            wafermon_job_discard(handles[nhandles - 1].job);
        forget_handle(&handles[nhandles - 1]);
    }
}

static wafermon_status close_client(double timeout) {
    wafermon_status st = WAFERMON_OK;
    forget_all();
    if (client)
        st = wafermon_client_close(client, timeout);
    client = NULL;
    return st;
}

static const char *string_field(cJSON *req, const char *name) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(req, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double timeout_field(cJSON *req) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(req, "timeout");
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static cJSON *op_init(cJSON *seq, cJSON *req) {
    cJSON *env = cJSON_GetObjectItemCaseSensitive(req, "env");
    if (env && !cJSON_IsObject(env))
        return failure(seq, "protocol", "env: expected an object of strings");
    close_client(-1);
    for (;;) { /* remove every WAFERMON_* variable */
        char name[256] = "";
        for (char **e = environ; *e; e++)
            if (strncmp(*e, "WAFERMON_", 9) == 0) {
                size_t n = strcspn(*e, "=");
                snprintf(name, sizeof name, "%.*s", (int)n, *e);
                break;
            }
        if (!name[0])
            break;
        unsetenv(name);
    }
    cJSON *item;
    cJSON_ArrayForEach(item, env) {
        if (!cJSON_IsString(item))
            return failure(seq, "protocol", "env: every value must be a string");
        setenv(item->string, item->valuestring, 1);
    }
    char err[2048];
    wafermon_status st = wafermon_client_new_from_env(&client, err, sizeof err);
    if (st != WAFERMON_OK)
        return status_failure(seq, st, err);
    return response(seq);
}

static cJSON *op_start(cJSON *seq, cJSON *req) {
    const char *name = string_field(req, "handle");
    const char *type = string_field(req, "entity_type");
    cJSON *app_obj = cJSON_GetObjectItemCaseSensitive(req, "app");
    if (!name)
        return failure(seq, "protocol", "handle: expected a string");
    if (!cJSON_IsObject(app_obj))
        return failure(seq, "protocol", "app: expected an object");
    if (find_handle(name))
        return failure(seq, "usage", "handle: already in use");
    if (!type || (strcmp(type, "job") && strcmp(type, "subjob"))) {
        char msg[300];
        snprintf(msg, sizeof msg, "entity_type: must be 'job' or 'subjob', got '%.200s'",
                 type ? type : "(none)");
        return failure(seq, "usage", msg);
    }
    wafermon_app app = {.name = string_field(app_obj, "name"),
                        .version = string_field(app_obj, "version"),
                        .app_id = string_field(app_obj, "app_id")};
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(req, "metadata");
    char *meta_text = json_text(meta);
    wafermon_job_options o = {.app = &app,
                              .business_key = string_field(req, "business_key"),
                              .sub_key = string_field(req, "sub_key"),
                              .metadata = meta_text};
    const char *parent_name = string_field(req, "parent");
    handle *parent = parent_name ? find_handle(parent_name) : NULL;
    char err[1024] = "";
    wafermon_job *job = NULL;
    wafermon_status st;
    cJSON *r;
    if (!client) {
        r = failure(seq, "usage", "no client: send init first");
    } else if (parent_name && !parent) {
        snprintf(err, sizeof err, "parent: unknown handle '%.200s'", parent_name);
        r = failure(seq, "usage", err);
    } else if (!strcmp(type, "job") && parent) {
        r = failure(seq, "usage", "parent: only a subjob has a parent");
    } else {
        st = !strcmp(type, "job") ? wafermon_job_start(client, &o, &job, err, sizeof err)
                                  : wafermon_subjob_start(parent ? parent->job : NULL, &o, &job,
                                                          err, sizeof err);
        if (st != WAFERMON_OK) {
            r = status_failure(seq, st, err);
        } else {
            handle *more = realloc(handles, (nhandles + 1) * sizeof *handles);
            if (!more) {
                wafermon_job_discard(job);
                r = failure(seq, "internal", "out of memory");
            } else {
                handles = more;
                handles[nhandles].name = strdup(name);
                handles[nhandles].job = job;
                nhandles++;
                r = response(seq);
                cJSON_AddStringToObject(r, "entity_id", wafermon_job_id(job));
            }
        }
    }
    free(meta_text);
    return r;
}

static handle *handle_of(cJSON *req, cJSON *seq, cJSON **fail) {
    const char *name = string_field(req, "handle");
    handle *h = name ? find_handle(name) : NULL;
    if (!name)
        *fail = failure(seq, "protocol", "handle: expected a string");
    else if (!h) {
        char msg[300];
        snprintf(msg, sizeof msg, "handle: unknown handle '%.200s'", name);
        *fail = failure(seq, "usage", msg);
    }
    return h;
}

static cJSON *op_progress(cJSON *seq, cJSON *req) {
    cJSON *fail = NULL;
    handle *h = handle_of(req, seq, &fail);
    if (!h)
        return fail;
    cJSON *p = cJSON_GetObjectItemCaseSensitive(req, "progress");
    if (p && !cJSON_IsNull(p) && !cJSON_IsNumber(p))
        return failure(seq, "protocol", "progress: expected a number");
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(req, "metadata");
    char *meta_text = json_text(meta);
    wafermon_status st =
        wafermon_job_progress(h->job, cJSON_IsNumber(p) ? p->valuedouble : NAN, meta_text);
    free(meta_text);
    if (st != WAFERMON_OK)
        return status_failure(seq, st,
                              st == WAFERMON_ERR_USAGE ? "metadata: expected a JSON object" : NULL);
    return response(seq);
}

static cJSON *op_end(cJSON *seq, cJSON *req, int failed) {
    cJSON *fail = NULL;
    handle *h = handle_of(req, seq, &fail);
    if (!h)
        return fail;
    wafermon_status st;
    if (failed) {
        cJSON *error = cJSON_GetObjectItemCaseSensitive(req, "error");
        const char *type = string_field(error, "type");
        if (!type)
            return failure(seq, "protocol", "error.type: expected a string");
        st = wafermon_job_fail(h->job, type, string_field(error, "message"),
                               string_field(error, "stack"));
    } else {
        st = wafermon_job_finish(h->job);
    }
    if (st != WAFERMON_ERR_QUEUE_FULL) /* a full queue keeps the job; anything else frees it */
        forget_handle(h);
    return st == WAFERMON_OK ? response(seq) : status_failure(seq, st, NULL);
}

static cJSON *op_emit_event(cJSON *seq, cJSON *req) {
    cJSON *event = cJSON_GetObjectItemCaseSensitive(req, "event");
    if (!event)
        return failure(seq, "protocol", "event: missing");
    char *event_text = json_text(event);
    wafermon_status st =
        wafermon_emit_event(client, event_text ? event_text : "null", (size_t)-1);
    free(event_text);
    if (st != WAFERMON_OK && st != WAFERMON_ERR_QUEUE_FULL)
        return status_failure(seq, st, client ? NULL : "no client: send init first");
    cJSON *r = response(seq);
    cJSON_AddBoolToObject(r, "queued", st == WAFERMON_OK);
    return r;
}

static cJSON *op_emit_batch(cJSON *seq, cJSON *req) {
    cJSON *events = cJSON_GetObjectItemCaseSensitive(req, "events");
    if (!cJSON_IsArray(events))
        return failure(seq, "protocol", "events: expected an array");
    int n = cJSON_GetArraySize(events);
    char **texts = calloc((size_t)n + 1, sizeof *texts);
    int i = 0;
    cJSON *e;
    cJSON_ArrayForEach(e, events) {
        char *t = json_text(e);
        texts[i++] = t ? t : strdup("null");
    }
    size_t queued = 0;
    wafermon_status st =
        wafermon_emit_batch(client, (const char *const *)texts, NULL, (size_t)n, &queued);
    for (i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    if (st != WAFERMON_OK && st != WAFERMON_ERR_QUEUE_FULL)
        return status_failure(seq, st, client ? NULL : "no client: send init first");
    cJSON *r = response(seq);
    cJSON_AddNumberToObject(r, "queued", (double)queued);
    return r;
}

static cJSON *op_stats(cJSON *seq) {
    if (!client)
        return failure(seq, "usage", "no client: send init first");
    wafermon_stats s;
    char last[512];
    wafermon_client_stats(client, &s);
    wafermon_client_last_error(client, last, sizeof last);
    cJSON *r = response(seq);
    cJSON *o = cJSON_AddObjectToObject(r, "stats");
    cJSON_AddNumberToObject(o, "queued", (double)s.queued);
    cJSON_AddNumberToObject(o, "pending", (double)s.pending);
    cJSON_AddNumberToObject(o, "sent", (double)s.sent);
    cJSON_AddNumberToObject(o, "spooled", (double)s.spooled);
    cJSON_AddNumberToObject(o, "replayed", (double)s.replayed);
    cJSON_AddNumberToObject(o, "spool_files", (double)s.spool_files);
    cJSON_AddNumberToObject(o, "rejected", (double)s.rejected);
    cJSON_AddNumberToObject(o, "queue_full", (double)s.queue_full);
    cJSON_AddNumberToObject(o, "metadata_truncated", (double)s.metadata_truncated);
    cJSON_AddNumberToObject(o, "retries", (double)s.retries);
    if (last[0])
        cJSON_AddStringToObject(o, "last_error", last);
    else
        cJSON_AddNullToObject(o, "last_error");
    return r;
}

/* One request line -> one response; *quit set on `quit`. */
static cJSON *handle_request(const char *line, size_t len, int *quit) {
    cJSON *req = cJSON_ParseWithLength(line, len);
    if (!cJSON_IsObject(req)) {
        cJSON_Delete(req);
        return failure(NULL, "protocol", "expected one JSON object per line");
    }
    cJSON *seq = cJSON_GetObjectItemCaseSensitive(req, "seq");
    const char *op = string_field(req, "op");
    cJSON *r;
    if (!cJSON_IsNumber(seq))
        r = failure(seq, "protocol", "seq: expected an integer");
    else if (!op)
        r = failure(seq, "protocol", "op: expected a string");
    else if (!strcmp(op, "hello")) {
        r = response(seq);
        cJSON_AddStringToObject(r, "language", "c");
        cJSON_AddStringToObject(r, "sdk", WAFERMON_SDK_NAME);
        cJSON_AddStringToObject(r, "sdk_version", wafermon_version());
        cJSON_AddNumberToObject(r, "protocol", 1);
    } else if (!strcmp(op, "init"))
        r = op_init(seq, req);
    else if (!strcmp(op, "start"))
        r = op_start(seq, req);
    else if (!strcmp(op, "progress"))
        r = op_progress(seq, req);
    else if (!strcmp(op, "finish"))
        r = op_end(seq, req, 0);
    else if (!strcmp(op, "fail"))
        r = op_end(seq, req, 1);
    else if (!strcmp(op, "emit_event"))
        r = op_emit_event(seq, req);
    else if (!strcmp(op, "emit_batch"))
        r = op_emit_batch(seq, req);
    else if (!strcmp(op, "flush")) {
        if (!client)
            r = failure(seq, "usage", "no client: send init first");
        else {
            wafermon_status st = wafermon_client_flush(client, timeout_field(req));
            r = response(seq);
            cJSON_AddBoolToObject(r, "delivered", st == WAFERMON_OK);
        }
    } else if (!strcmp(op, "close")) {
        close_client(timeout_field(req));
        r = response(seq);
    } else if (!strcmp(op, "stats"))
        r = op_stats(seq);
    else if (!strcmp(op, "quit")) {
        close_client(-1);
        *quit = 1;
        r = response(seq);
    } else {
        char msg[300];
        snprintf(msg, sizeof msg, "op: unknown op '%.200s'", op);
        r = failure(seq, "protocol", msg);
    }
    cJSON_Delete(req);
    return r;
}

int main(void) {
    if (wafermon_global_init() != WAFERMON_OK) {
        fprintf(stderr, "wafermon-conformance-driver: wafermon_global_init failed\n");
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int quit = 0;
    while (!quit && (len = getline(&line, &cap, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        cJSON *r = handle_request(line, (size_t)len, &quit);
        char *out = r ? cJSON_PrintUnformatted(r) : NULL;
        if (out) {
            fputs(out, stdout);
        } else {
            fputs("{\"seq\":null,\"ok\":false,\"error\":{\"kind\":\"internal\",\"message\":"
                  "\"out of memory\"}}", stdout);
        }
        fputc('\n', stdout);
        fflush(stdout);
        cJSON_free(out);
        cJSON_Delete(r);
    }
    free(line);
    close_client(-1);
    free(handles);
    wafermon_global_cleanup();
    return 0;
}
