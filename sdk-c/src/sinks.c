/*
 * sinks.c - where the sender thread delivers a batch: the sidecar over HTTP, a file tree, or
 * an S3 bucket. A sink makes one attempt and says "stored" (some events perhaps refused for
 * good) or "retry later" (with the server's Retry-After); retries, backoff and the spool are
 * the sender's business. Used from the sender thread only.
 *
 * The sidecar's answers (as the Python SDK's sinks.py reads them): 202 with one result per
 * event ("rejected" ones are refused for good); 400 with results when nothing was valid;
 * 413/422 split the batch in halves down to single events; 503/429 with Retry-After, other
 * 5xx, 401/403 (a token problem for an operator to fix: keep the events), 404/408/425 and
 * network errors mean retry later.
 */
#include "internal.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LOGGED_REFUSALS 20

/* ---- batches ----------------------------------------------------------------------------- */

int wm_batch_add_line_end(wm_batch *b) {
    if (b->n + 2 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        size_t *offs = realloc(b->offs, cap * sizeof *offs);
        if (!offs)
            return -1;
        if (!b->offs)
            offs[0] = 0;
        b->offs = offs;
        b->cap = cap;
    }
    b->offs[++b->n] = b->data.len;
    return 0;
}

int wm_batch_from_ndjson(wm_batch *b, const char *data, size_t len) {
    wm_batch_reset(b);
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - data) : len;
        if (end > i) { /* skip blank lines */
            if (wm_buf_append(&b->data, data + i, end - i) || wm_buf_append(&b->data, "\n", 1) ||
                wm_batch_add_line_end(b))
                return -1;
        }
        i = end + 1;
    }
    return 0;
}

void wm_batch_reset(wm_batch *b) {
    b->data.len = 0;
    if (b->data.data)
        b->data.data[0] = '\0';
    b->n = 0;
    if (b->offs)
        b->offs[0] = 0;
}

void wm_batch_free(wm_batch *b) {
    wm_buf_free(&b->data);
    free(b->offs);
    memset(b, 0, sizeof *b);
}

/* ---- the sink object --------------------------------------------------------------------- */

enum { SINK_SIDECAR, SINK_FILE, SINK_S3 };

struct wm_sink {
    int kind;
    const wm_settings *s;
    CURL *curl;
    struct curl_slist *headers;
    char *url;
    wm_buf body;      /* the response body */
    double retry_after;
    long refusals_logged;
    wm_rng rng;
};

static size_t on_body(char *data, size_t size, size_t n, void *ctx) {
    wm_sink *sink = ctx;
    if (sink->body.len < (1 << 20)) /* the results of 100k events fit; ignore the rest */
        wm_buf_append(&sink->body, data, size * n);
    return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *ctx) {
    wm_sink *sink = ctx;
    size_t len = size * n;
    if (len > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
        char value[64] = {0};
        memcpy(value, data + 12, len - 12 < 63 ? len - 12 : 63);
        char *end;
        double seconds = strtod(value, &end);
        if (end != value && seconds >= 0)
            sink->retry_after = seconds > 3600 ? 3600 : seconds;
    }
    return len;
}

static void common_curl_options(wm_sink *sink) {
    CURL *h = sink->curl;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(sink->s->timeout * 1000));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(sink->s->timeout * 1000));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, sink);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, sink->s->verify_tls ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, sink->s->verify_tls ? 2L : 0L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, WAFERMON_SDK_NAME "/" WAFERMON_VERSION);
}

wm_sink *wm_sink_new(const wm_settings *s, char *err, size_t errlen) {
    wm_sink *sink = calloc(1, sizeof *sink);
    if (!sink) {
        wm_format_error(err, errlen, "out of memory");
        return NULL;
    }
    sink->s = s;
    wm_rng_seed(&sink->rng);
    if (s->mode == WM_MODE_SIDECAR) {
        sink->kind = SINK_SIDECAR;
    } else {
        sink->kind = s->direct_kind == WM_DIRECT_FILE ? SINK_FILE : SINK_S3;
    }
    if (sink->kind == SINK_FILE)
        return sink;
    sink->curl = curl_easy_init();
    if (!sink->curl) {
        wm_format_error(err, errlen, "curl_easy_init failed");
        free(sink);
        return NULL;
    }
    common_curl_options(sink);
    if (sink->kind == SINK_SIDECAR) {
        wm_buf url = {0};
        wm_buf_printf(&url, "%s/v1/ingest/events", s->sidecar_url);
        sink->url = url.data;
        sink->headers = curl_slist_append(NULL, "Content-Type: application/x-ndjson");
        sink->headers = curl_slist_append(sink->headers, "Expect:");
        if (s->token) {
            wm_buf auth = {0};
            wm_buf_printf(&auth, "Authorization: Bearer %s", s->token);
            sink->headers = curl_slist_append(sink->headers, auth.data);
            wm_buf_free(&auth);
        }
    }
    return sink;
}

const char *wm_sink_name(const wm_sink *sink) {
    return sink->kind == SINK_SIDECAR ? "sidecar" : sink->kind == SINK_FILE ? "file" : "s3";
}

void wm_sink_free(wm_sink *sink) {
    if (!sink)
        return;
    if (sink->curl)
        curl_easy_cleanup(sink->curl);
    curl_slist_free_all(sink->headers);
    free(sink->url);
    wm_buf_free(&sink->body);
    free(sink);
}

static void log_refusal(wm_sink *sink, const char *line, size_t len, const char *why) {
    if (sink->refusals_logged++ >= MAX_LOGGED_REFUSALS)
        return;
    const char *id = NULL;
    const char *key = memmem(line, len, "\"event_id\":\"", 12);
    if (key)
        id = key + 12;
    fprintf(stderr, WM_LOG_PREFIX "%s refused event %.36s for good: %s%s\n", wm_sink_name(sink),
            id ? id : "(no event_id)", why,
            sink->refusals_logged == MAX_LOGGED_REFUSALS ? " (further refusals not logged)" : "");
}

/* ---- sidecar ----------------------------------------------------------------------------- */

static long sidecar_post(wm_sink *sink, const char *data, size_t len, CURLcode *cc) {
    CURL *h = sink->curl;
    sink->body.len = 0;
    sink->retry_after = 0;
    curl_easy_setopt(h, CURLOPT_URL, sink->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, sink->headers);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, data);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    *cc = curl_easy_perform(h);
    long status = 0;
    if (*cc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

static const char *body_reason(wm_sink *sink, char *out, size_t outlen) {
    cJSON *doc = cJSON_ParseWithLength(sink->body.data ? sink->body.data : "", sink->body.len);
    cJSON *error = cJSON_GetObjectItemCaseSensitive(doc, "error");
    if (cJSON_IsString(error))
        wm_copy_text(out, outlen, error->valuestring);
    else if (error && (error = cJSON_GetObjectItemCaseSensitive(error, "message")) &&
             cJSON_IsString(error))
        wm_copy_text(out, outlen, error->valuestring);
    else
        snprintf(out, outlen, "%.200s", sink->body.len ? sink->body.data : "");
    cJSON_Delete(doc);
    return out;
}

/* Count (and log) the events a 202/400 answer's results call rejected. -1: no results. */
static long count_rejected(wm_sink *sink, const char *data, const size_t *offs, size_t n) {
    cJSON *doc = cJSON_ParseWithLength(sink->body.data ? sink->body.data : "", sink->body.len);
    cJSON *rejected = cJSON_GetObjectItemCaseSensitive(doc, "rejected");
    cJSON *results = cJSON_GetObjectItemCaseSensitive(doc, "results");
    long count = 0;
    if (cJSON_IsNumber(rejected) && rejected->valuedouble == 0) {
        count = 0;
    } else if (!cJSON_IsArray(results)) {
        count = -1;
    } else {
        cJSON *result;
        cJSON_ArrayForEach(result, results) {
            cJSON *status = cJSON_GetObjectItemCaseSensitive(result, "status");
            if (!cJSON_IsString(status) || strcmp(status->valuestring, "rejected") != 0)
                continue;
            count++;
            cJSON *index = cJSON_GetObjectItemCaseSensitive(result, "index");
            size_t i = cJSON_IsNumber(index) ? (size_t)index->valuedouble : n;
            char why[512] = "rejected";
            cJSON *errors = cJSON_GetObjectItemCaseSensitive(result, "errors");
            cJSON *first = cJSON_IsArray(errors) ? errors->child : NULL;
            if (first) {
                cJSON *path = cJSON_GetObjectItemCaseSensitive(first, "path");
                cJSON *message = cJSON_GetObjectItemCaseSensitive(first, "message");
                snprintf(why, sizeof why, "%s: %s",
                         cJSON_IsString(path) ? path->valuestring : "$",
                         cJSON_IsString(message) ? message->valuestring : "rejected");
            }
            if (i < n)
                log_refusal(sink, data + offs[i], offs[i + 1] - offs[i], why);
        }
    }
    cJSON_Delete(doc);
    return count;
}

static void sidecar_send(wm_sink *sink, const char *data, const size_t *offs, size_t n,
                         wm_send_result *res) {
    CURLcode cc;
    size_t len = offs[n] - offs[0];
    long status = sidecar_post(sink, data + offs[0], len, &cc);
    char reason[300];
    if (cc != CURLE_OK) {
        res->delivered = 0;
        snprintf(res->error, sizeof res->error, "sidecar %s unreachable: %s", sink->url,
                 curl_easy_strerror(cc));
        return;
    }
    if (status == 202 || status == 400) {
        /* offs relative to data: count_rejected indexes lines from the batch's start */
        long rejected = count_rejected(sink, data, offs, n);
        if (rejected >= 0) {
            res->delivered = 1;
            res->refused += (size_t)rejected;
            return;
        }
        if (status == 202) { /* accepted without results: take it as all stored */
            res->delivered = 1;
            return;
        }
    }
    if (status == 413 || status == 422) {
        if (n == 1) {
            res->delivered = 1;
            res->refused += 1;
            snprintf(res->error, sizeof res->error, "the sidecar answered %ld: %s", status,
                     body_reason(sink, reason, sizeof reason));
            log_refusal(sink, data + offs[0], len, res->error);
            return;
        }
        size_t half = n / 2;
        sidecar_send(sink, data, offs, half, res);
        if (!res->delivered)
            return; /* the sender retries the whole batch: the sidecar dedupes by event_id */
        sidecar_send(sink, data, offs + half, n - half, res);
        return;
    }
    if (status >= 500 || status == 401 || status == 403 || status == 404 || status == 408 ||
        status == 425 || status == 429) {
        res->delivered = 0;
        res->retry_after = sink->retry_after;
        snprintf(res->error, sizeof res->error, "sidecar answered %ld: %s", status,
                 body_reason(sink, reason, sizeof reason));
        return;
    }
    res->delivered = 1;
    res->refused += n;
    snprintf(res->error, sizeof res->error, "the sidecar answered %ld: %s", status,
             body_reason(sink, reason, sizeof reason));
    for (size_t i = 0; i < n; i++)
        log_refusal(sink, data + offs[i], offs[i + 1] - offs[i], res->error);
}

/* ---- where a line goes in direct mode: its site_id and UTC date ------------------------ */

/* 0 ok (site and date filled), -1 the line is no event we can place (why filled). */
static int place_line(const char *line, size_t len, char site[65], char date[11], char *why,
                      size_t whylen) {
    cJSON *doc = cJSON_ParseWithLength(line, len);
    cJSON *site_id = cJSON_GetObjectItemCaseSensitive(doc, "site_id");
    cJSON *time = cJSON_GetObjectItemCaseSensitive(doc, "time");
    int rc = -1;
    if (!cJSON_IsObject(doc))
        wm_format_error(why, whylen, "$: not a JSON object");
    else if (!cJSON_IsString(site_id) || !wm_valid_site_id(site_id->valuestring))
        wm_format_error(why, whylen, "site_id: missing or not a valid site id");
    else if (!cJSON_IsString(time) || strlen(time->valuestring) < 20 ||
             time->valuestring[4] != '-' || time->valuestring[7] != '-' ||
             time->valuestring[10] != 'T' ||
             time->valuestring[strlen(time->valuestring) - 1] != 'Z')
        wm_format_error(why, whylen, "time: missing or not RFC 3339 UTC with Z");
    else {
        rc = 0;
        for (int i = 0; i < 10; i++)
            if (i != 4 && i != 7 && !isdigit((unsigned char)time->valuestring[i]))
                rc = -1;
        if (rc)
            wm_format_error(why, whylen, "time: not RFC 3339 UTC with Z");
        wm_copy_text(site, 65, site_id->valuestring);
        memcpy(date, time->valuestring, 10);
        date[10] = '\0';
    }
    cJSON_Delete(doc);
    return rc;
}

/* ---- file tree: ROOT/{site_id}/{YYYY-MM-DD}/events.jsonl -------------------------------- */

static int fsync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* mkdir -p below root, fsyncing each parent whose entry is new. */
static int make_dirs(const char *root, const char *site, const char *date) {
    char path[4096];
    wm_copy_text(path, sizeof path, root);
    for (char *p = path + 1; *p; p++) { /* the root itself: mkdir -p */
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0777) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(root, 0777) && errno != EEXIST)
        return -1;
    snprintf(path, sizeof path, "%s/%s", root, site);
    if (mkdir(path, 0777) == 0) {
        if (fsync_dir(root))
            return -1;
    } else if (errno != EEXIST) {
        return -1;
    }
    snprintf(path, sizeof path, "%s/%s/%s", root, site, date);
    if (mkdir(path, 0777) == 0) {
        char parent[4096];
        snprintf(parent, sizeof parent, "%s/%s", root, site);
        if (fsync_dir(parent))
            return -1;
    } else if (errno != EEXIST) {
        return -1;
    }
    return 0;
}

typedef struct group {
    char site[65];
    char date[11];
    wm_buf lines;
    size_t count;
} group;

/* Sort the batch's placeable lines into (site, date) groups; refuse the rest. */
static int group_lines(wm_sink *sink, const wm_batch *b, group **out, size_t *ngroups,
                       wm_send_result *res) {
    group *groups = NULL;
    size_t count = 0;
    for (size_t i = 0; i < b->n; i++) {
        const char *line = b->data.data + b->offs[i];
        size_t len = b->offs[i + 1] - b->offs[i];
        char site[65], date[11], why[200];
        if (place_line(line, len, site, date, why, sizeof why)) {
            res->refused++;
            log_refusal(sink, line, len, why);
            continue;
        }
        size_t g = 0;
        while (g < count && (strcmp(groups[g].site, site) || strcmp(groups[g].date, date)))
            g++;
        if (g == count) {
            group *more = realloc(groups, (count + 1) * sizeof *groups);
            if (!more)
                goto oom;
            groups = more;
            memset(&groups[count], 0, sizeof *groups);
            memcpy(groups[count].site, site, sizeof site);
            memcpy(groups[count].date, date, sizeof date);
            count++;
        }
        if (wm_buf_append(&groups[g].lines, line, len))
            goto oom;
        groups[g].count++;
    }
    *out = groups;
    *ngroups = count;
    return 0;
oom:
    for (size_t g = 0; g < count; g++)
        wm_buf_free(&groups[g].lines);
    free(groups);
    return -1;
}

static void free_groups(group *groups, size_t n) {
    for (size_t g = 0; g < n; g++)
        wm_buf_free(&groups[g].lines);
    free(groups);
}

static int write_all(int fd, const char *data, size_t len) {
    while (len) {
        ssize_t w = write(fd, data, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

static void file_send(wm_sink *sink, const wm_batch *b, wm_send_result *res) {
    group *groups;
    size_t n;
    if (group_lines(sink, b, &groups, &n, res)) {
        res->delivered = 0;
        snprintf(res->error, sizeof res->error, "out of memory");
        return;
    }
    const char *root = sink->s->file_root;
    res->delivered = 1;
    for (size_t g = 0; g < n && res->delivered; g++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s/%s/events.jsonl", root, groups[g].site,
                 groups[g].date);
        int fd = -1;
        if (make_dirs(root, groups[g].site, groups[g].date) ||
            (fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0 ||
            write_all(fd, groups[g].lines.data, groups[g].lines.len) || fsync(fd)) {
            /* A partial append may stay behind; the retry appends the lines again and
             * readers dedupe by event_id (at-least-once). */
            res->delivered = 0;
            snprintf(res->error, sizeof res->error, "cannot append to %.300s: %s", path,
                     strerror(errno));
        }
        if (fd >= 0)
            close(fd);
    }
    free_groups(groups, n);
}

/* ---- S3: one PUT per (site, date) group of the batch, signed with SigV4 ---------------- */

static void s3_send(wm_sink *sink, const wm_batch *b, wm_send_result *res) {
    const wm_settings *s = sink->s;
    group *groups;
    size_t n;
    if (group_lines(sink, b, &groups, &n, res)) {
        res->delivered = 0;
        snprintf(res->error, sizeof res->error, "out of memory");
        return;
    }
    res->delivered = 1;
    CURL *h = sink->curl;
    char sigv4[128];
    snprintf(sigv4, sizeof sigv4, "aws:amz:%.64s:s3", s->s3_region);
    for (size_t g = 0; g < n && res->delivered; g++) {
        /* {prefix/}{site}/{date}/{YYYYmmddTHHMMSSffffffZ}-{random}.jsonl: sortable, unique */
        char when[32], stamp[32], rand_hex[17];
        wm_format_time(wm_realtime_ns(), when);
        size_t k = 0;
        for (const char *c = when; *c; c++)
            if (*c != '-' && *c != ':' && *c != '.')
                stamp[k++] = *c;
        stamp[k] = '\0';
        uint64_t r = wm_rng_next(&sink->rng);
        wm_hex((const uint8_t *)&r, 8, rand_hex);
        wm_buf key = {0}, url = {0};
        wm_buf_printf(&key, "%s%s%s/%s/%s-%s.jsonl", s->s3_prefix, *s->s3_prefix ? "/" : "",
                      groups[g].site, groups[g].date, stamp, rand_hex);
        wm_buf_printf(&url, "%s/%s/", s->s3_endpoint, s->s3_bucket);
        wm_buf_uri_encode_key(&url, key.data);

        uint8_t digest[32];
        char hash_hex[65];
        wm_sha256(groups[g].lines.data, groups[g].lines.len, digest);
        wm_hex(digest, 32, hash_hex);
        struct curl_slist *hdrs = NULL;
        wm_buf hash_header = {0}, token_header = {0};
        wm_buf_printf(&hash_header, "x-amz-content-sha256: %s", hash_hex);
        hdrs = curl_slist_append(hdrs, "Content-Type: application/x-ndjson");
        hdrs = curl_slist_append(hdrs, hash_header.data);
        if (s->aws_session_token) {
            wm_buf_printf(&token_header, "x-amz-security-token: %s", s->aws_session_token);
            hdrs = curl_slist_append(hdrs, token_header.data);
        }
        sink->body.len = 0;
        sink->retry_after = 0;
        curl_easy_setopt(h, CURLOPT_URL, url.data);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, groups[g].lines.data);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)groups[g].lines.len);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
        curl_easy_setopt(h, CURLOPT_USERNAME, s->aws_access_key_id);
        curl_easy_setopt(h, CURLOPT_PASSWORD, s->aws_secret_access_key);
        CURLcode cc = curl_easy_perform(h);
        long status = 0;
        if (cc == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (cc != CURLE_OK) {
            res->delivered = 0;
            snprintf(res->error, sizeof res->error, "S3 %s unreachable: %s", s->s3_endpoint,
                     curl_easy_strerror(cc));
        } else if (status != 200) {
            /* Every S3 error keeps the events: a missing bucket or a bad key is an operator's
             * fix, after which the spool delivers them. */
            res->delivered = 0;
            res->retry_after = sink->retry_after;
            snprintf(res->error, sizeof res->error, "S3 PUT %s answered %ld: %.300s", key.data,
                     status, sink->body.len ? sink->body.data : "");
        }
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(hdrs);
        wm_buf_free(&hash_header);
        wm_buf_free(&token_header);
        wm_buf_free(&key);
        wm_buf_free(&url);
    }
    free_groups(groups, n);
}

void wm_sink_send(wm_sink *sink, const wm_batch *batch, wm_send_result *res) {
    memset(res, 0, sizeof *res);
    if (batch->n == 0) {
        res->delivered = 1;
        return;
    }
    if (sink->kind == SINK_SIDECAR)
        sidecar_send(sink, batch->data.data, batch->offs, batch->n, res);
    else if (sink->kind == SINK_FILE)
        file_send(sink, batch, res);
    else
        s3_send(sink, batch, res);
}
