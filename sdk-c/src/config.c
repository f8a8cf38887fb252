/*
 * config.c - the client's settings, read from WAFERMON_* (and AWS_*) environment variables.
 *
 * Every fault is reported under the variable's name, all at once ("WAFERMON_MODE: must be
 * one of sidecar, direct, got 'sidcar'; WAFERMON_QUEUE_SIZE: ..."), and nothing is kept.
 * The names and defaults are the ones conformance/PROTOCOL.md shares between SDKs. This file
 * never opens a connection or a file and never prints a secret.
 */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct problems {
    char *err;
    size_t errlen;
    size_t used;
    int count;
} problems;

static void problem(problems *p, const char *var, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(problems *p, const char *var, const char *fmt, ...) {
    p->count++;
    if (!p->err || p->errlen == 0 || p->used + 1 >= p->errlen)
        return;
    int n = snprintf(p->err + p->used, p->errlen - p->used, "%s%s: ", p->count > 1 ? "; " : "",
                     var);
    if (n > 0)
        p->used = p->used + (size_t)n < p->errlen ? p->used + (size_t)n : p->errlen - 1;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(p->err + p->used, p->errlen - p->used, fmt, ap);
    va_end(ap);
    if (n > 0)
        p->used = p->used + (size_t)n < p->errlen ? p->used + (size_t)n : p->errlen - 1;
}

/* The variable's value, or NULL when unset or only blanks (a blank counts as unset). */
static const char *env(const char *name) {
    const char *v = getenv(name);
    if (!v)
        return NULL;
    for (const char *p = v; *p; p++)
        if (!isspace((unsigned char)*p))
            return v;
    return NULL;
}

static char *dup_trimmed(const char *v) {
    while (isspace((unsigned char)*v))
        v++;
    size_t n = strlen(v);
    while (n && isspace((unsigned char)v[n - 1]))
        n--;
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, v, n);
        out[n] = '\0';
    }
    return out;
}

static void read_duration(problems *p, const char *var, double *out, int positive) {
    const char *v = env(var);
    if (!v)
        return;
    double seconds;
    if (wm_parse_duration(v, &seconds)) {
        problem(p, var, "expected a duration such as 30, 500ms, 30s, 5m, 1h or 2d, got '%s'", v);
        return;
    }
    if (positive && seconds <= 0) {
        problem(p, var, "must be more than 0, got '%s'", v);
        return;
    }
    *out = seconds;
}

static void read_integer(problems *p, const char *var, long minimum, long maximum, long *out) {
    const char *v = env(var);
    if (!v)
        return;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    while (isspace((unsigned char)*end))
        end++;
    if (end == v || *end || errno) {
        problem(p, var, "expected an integer, got '%s'", v);
        return;
    }
    if (n < minimum) {
        problem(p, var, "must be at least %ld, got %ld", minimum, n);
        return;
    }
    if (n > maximum) {
        problem(p, var, "must be at most %ld, got %ld", maximum, n);
        return;
    }
    *out = n;
}

static void read_bool(problems *p, const char *var, int *out) {
    const char *v = env(var);
    if (!v)
        return;
    char low[8] = {0};
    size_t n = 0;
    for (const char *q = v; *q && n < sizeof low - 1; q++)
        if (!isspace((unsigned char)*q))
            low[n++] = (char)tolower((unsigned char)*q);
    if (!strcmp(low, "1") || !strcmp(low, "true") || !strcmp(low, "yes") || !strcmp(low, "on"))
        *out = 1;
    else if (!strcmp(low, "0") || !strcmp(low, "false") || !strcmp(low, "no") ||
             !strcmp(low, "off"))
        *out = 0;
    else
        problem(p, var, "expected true or false, got '%s'", v);
}

/* http(s)://host[:port][/path], returned without a trailing slash. */
static char *read_http_url(problems *p, const char *var, const char *value, const char *example) {
    char *url = dup_trimmed(value);
    if (!url)
        return NULL;
    const char *rest = NULL;
    if (!strncmp(url, "http://", 7))
        rest = url + 7;
    else if (!strncmp(url, "https://", 8))
        rest = url + 8;
    size_t hostlen = rest ? strcspn(rest, "/?#") : 0;
    const char *colon = rest ? memchr(rest, ':', hostlen) : NULL;
    if (rest && rest[0] == '[') /* IPv6 literal: the port follows the ']' */
        colon = memchr(rest, ']', hostlen) ? strchr(memchr(rest, ']', hostlen), ':') : NULL;
    if (!rest || hostlen == 0 || colon == rest) {
        problem(p, var, "expected an http:// or https:// URL such as %s, got '%s'", example,
                value);
        free(url);
        return NULL;
    }
    if (colon && colon < rest + hostlen) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || end != rest + hostlen || port < 1 || port > 65535) {
            problem(p, var, "has an invalid port: '%s'", value);
            free(url);
            return NULL;
        }
    }
    size_t n = strlen(url);
    while (n && url[n - 1] == '/')
        url[--n] = '\0';
    return url;
}

static char *default_spool_dir(void) {
    const char *cache = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    wm_buf b = {0};
    if (cache && *cache)
        wm_buf_printf(&b, "%s/wafermon-sdk-c/spool", cache);
    else
        wm_buf_printf(&b, "%s/.cache/wafermon-sdk-c/spool", home && *home ? home : "/tmp");
    return b.data;
}

static void read_direct_url(problems *p, wm_settings *s) {
    const char *var = "WAFERMON_DIRECT_URL";
    const char *v = env(var);
    if (!v) {
        if (s->mode == WM_MODE_DIRECT)
            problem(p, var,
                    "required when WAFERMON_MODE is direct: file:///abs/root or "
                    "s3://bucket/prefix");
        return;
    }
    s->direct_url = dup_trimmed(v);
    if (!s->direct_url)
        return;
    const char *u = s->direct_url;
    if (!strncmp(u, "file://", 7)) {
        const char *root = u + 7;
        if (root[0] != '/' || strstr(root, "/../") || !strcmp(root + strlen(root) - 3, "/..")) {
            problem(p, var, "a file URL needs an absolute path without '..' (file:///abs/root), "
                    "got '%s'", v);
            return;
        }
        s->direct_kind = WM_DIRECT_FILE;
        s->file_root = strdup(root);
        size_t n = strlen(s->file_root);
        while (n > 1 && s->file_root[n - 1] == '/')
            s->file_root[--n] = '\0';
        return;
    }
    if (!strncmp(u, "s3://", 5)) {
        const char *bucket = u + 5;
        size_t blen = strcspn(bucket, "/");
        int bad = blen < 3 || blen > 63;
        for (size_t i = 0; i < blen && !bad; i++) {
            char c = bucket[i];
            bad = !(islower((unsigned char)c) || isdigit((unsigned char)c) || c == '-' ||
                    c == '.');
        }
        if (bad) {
            problem(p, var, "expected s3://bucket/prefix with a valid bucket name (3-63 "
                    "lower-case letters, digits, '.', '-'), got '%s'", v);
            return;
        }
        s->direct_kind = WM_DIRECT_S3;
        s->s3_bucket = strndup(bucket, blen);
        const char *prefix = bucket + blen;
        while (*prefix == '/')
            prefix++;
        s->s3_prefix = strdup(prefix);
        size_t n = strlen(s->s3_prefix);
        while (n && s->s3_prefix[n - 1] == '/')
            s->s3_prefix[--n] = '\0';
        if (strstr(s->s3_prefix, "..")) {
            problem(p, var, "the prefix must not contain '..', got '%s'", v);
            return;
        }
        const char *endpoint = env("WAFERMON_S3_ENDPOINT");
        const char *region = env("WAFERMON_S3_REGION");
        s->s3_region = dup_trimmed(region ? region : "us-east-1");
        if (endpoint) {
            s->s3_endpoint = read_http_url(p, "WAFERMON_S3_ENDPOINT", endpoint,
                                           "http://127.0.0.1:8333");
        } else {
            wm_buf b = {0};
            wm_buf_printf(&b, "https://s3.%s.amazonaws.com", s->s3_region);
            s->s3_endpoint = b.data;
        }
        const char *key = env("AWS_ACCESS_KEY_ID"), *secret = env("AWS_SECRET_ACCESS_KEY");
        if (!key)
            problem(p, "AWS_ACCESS_KEY_ID", "required for an s3:// WAFERMON_DIRECT_URL");
        if (!secret)
            problem(p, "AWS_SECRET_ACCESS_KEY", "required for an s3:// WAFERMON_DIRECT_URL");
        if (key)
            s->aws_access_key_id = dup_trimmed(key);
        if (secret)
            s->aws_secret_access_key = dup_trimmed(secret);
        const char *session = env("AWS_SESSION_TOKEN");
        if (session)
            s->aws_session_token = dup_trimmed(session);
        return;
    }
    problem(p, var, "expected file:///abs/root or s3://bucket/prefix, got '%s'", v);
}

int wm_settings_from_env(wm_settings *s, char *err, size_t errlen) {
    problems p = {err, errlen, 0, 0};
    if (err && errlen)
        err[0] = '\0';
    memset(s, 0, sizeof *s);
    s->mode = WM_MODE_SIDECAR;
    s->spool_max_bytes = (uint64_t)1 << 30;
    s->queue_size = 10000;
    s->batch_size = 500;
    s->flush_interval = 0.2;
    s->timeout = 10;
    s->max_retries = 5;
    s->retry_base_delay = 0.2;
    s->retry_max_delay = 30;
    s->replay_interval = 1;
    s->flush_timeout = 10;
    s->block_timeout = 0.1;
    s->verify_tls = 1;

    const char *v = env("WAFERMON_MODE");
    if (v) {
        char *mode = dup_trimmed(v);
        for (char *c = mode; c && *c; c++)
            *c = (char)tolower((unsigned char)*c);
        if (mode && !strcmp(mode, "sidecar"))
            s->mode = WM_MODE_SIDECAR;
        else if (mode && !strcmp(mode, "direct"))
            s->mode = WM_MODE_DIRECT;
        else
            problem(&p, "WAFERMON_MODE", "must be one of sidecar, direct, got '%s'", v);
        free(mode);
    }
    v = env("WAFERMON_SIDECAR_URL");
    s->sidecar_url = v ? read_http_url(&p, "WAFERMON_SIDECAR_URL", v, "http://127.0.0.1:17000")
                       : strdup("http://127.0.0.1:17000");
    const char *token = getenv("WAFERMON_TOKEN");
    if (token && *token)
        s->token = strdup(token);
    v = env("WAFERMON_SITE_ID");
    if (v) {
        if (wm_valid_site_id(v))
            s->site_id = strdup(v);
        else
            problem(&p, "WAFERMON_SITE_ID",
                    "must be 1-64 letters, digits, '.', '_' or '-' starting with a letter or "
                    "digit, got '%s'", v);
    }
    read_direct_url(&p, s);
    v = env("WAFERMON_SPOOL_DIR");
    s->spool_dir = v ? dup_trimmed(v) : default_spool_dir();
    v = env("WAFERMON_SPOOL_MAX_BYTES");
    if (v) {
        uint64_t bytes;
        if (wm_parse_size(v, &bytes))
            problem(&p, "WAFERMON_SPOOL_MAX_BYTES",
                    "expected a size such as 1048576, 512KiB, 64MiB or 1GB, got '%s'", v);
        else if (bytes < (1u << 20))
            problem(&p, "WAFERMON_SPOOL_MAX_BYTES", "must be at least 1MiB, got '%s'", v);
        else
            s->spool_max_bytes = bytes;
    }
    long n = (long)s->queue_size;
    read_integer(&p, "WAFERMON_QUEUE_SIZE", 1, 100000000, &n);
    s->queue_size = (size_t)n;
    n = (long)s->batch_size;
    read_integer(&p, "WAFERMON_BATCH_SIZE", 1, 1000000, &n);
    s->batch_size = (size_t)n;
    n = s->max_retries;
    read_integer(&p, "WAFERMON_MAX_RETRIES", 0, 1000, &n);
    s->max_retries = (int)n;
    read_duration(&p, "WAFERMON_FLUSH_INTERVAL", &s->flush_interval, 1);
    read_duration(&p, "WAFERMON_TIMEOUT", &s->timeout, 1);
    read_duration(&p, "WAFERMON_RETRY_BASE_DELAY", &s->retry_base_delay, 1);
    read_duration(&p, "WAFERMON_RETRY_MAX_DELAY", &s->retry_max_delay, 1);
    read_duration(&p, "WAFERMON_REPLAY_INTERVAL", &s->replay_interval, 1);
    read_duration(&p, "WAFERMON_FLUSH_TIMEOUT", &s->flush_timeout, 0);
    read_duration(&p, "WAFERMON_BLOCK_TIMEOUT", &s->block_timeout, 0);
    read_bool(&p, "WAFERMON_VERIFY_TLS", &s->verify_tls);
    read_bool(&p, "WAFERMON_CONSOLE", &s->console);
    if (p.count == 0 && s->retry_max_delay < s->retry_base_delay)
        problem(&p, "WAFERMON_RETRY_MAX_DELAY", "must not be less than WAFERMON_RETRY_BASE_DELAY");
    if (p.count == 0 && (!s->sidecar_url || !s->spool_dir))
        problem(&p, "WAFERMON_*", "out of memory");
    if (p.count) {
        wm_settings_free(s);
        return -1;
    }
    return 0;
}

void wm_settings_free(wm_settings *s) {
    char **fields[] = {&s->sidecar_url,      &s->token,       &s->site_id,
                       &s->spool_dir,        &s->direct_url,  &s->file_root,
                       &s->s3_bucket,        &s->s3_prefix,   &s->s3_endpoint,
                       &s->s3_region,        &s->aws_access_key_id,
                       &s->aws_secret_access_key, &s->aws_session_token};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        free(*fields[i]);
        *fields[i] = NULL;
    }
}
