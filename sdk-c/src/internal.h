/*
 * internal.h - what the library's source files share; never installed, never included by
 * applications. One place per concern: util.c (buffers, JSON text, time, ids, SHA-256),
 * config.c (settings from the environment), encode.c (records -> wire NDJSON lines),
 * sinks.c (sidecar HTTP, file tree, S3), spool.c (the disk spool), client.c (queue and
 * sender thread), job.c (monitored jobs).
 */
#ifndef WAFERMON_INTERNAL_H
#define WAFERMON_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "wafermon.h"

#define WM_LOG_PREFIX "wafermon-sdk-c: "

/* ---- util.c --------------------------------------------------------------------------- */

/* A growing byte buffer; data is always NUL-terminated when len > 0 or cap > 0. */
typedef struct wm_buf {
    char *data;
    size_t len;
    size_t cap;
} wm_buf;

int wm_buf_reserve(wm_buf *b, size_t extra); /* 0 ok, -1 out of memory */
int wm_buf_append(wm_buf *b, const char *s, size_t n);
int wm_buf_puts(wm_buf *b, const char *s);
int wm_buf_printf(wm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s (n bytes) as a JSON string literal with quotes; invalid UTF-8 becomes U+FFFD. */
int wm_buf_json_string(wm_buf *b, const char *s, size_t n);
/* A finite non-negative double as JSON (NaN/negative -> 0, inf -> a large number). */
int wm_buf_json_number(wm_buf *b, double v);
/* A cJSON tree as compact JSON, numbers exact (unlike cJSON_PrintUnformatted). */
int wm_buf_json_value(wm_buf *b, const cJSON *item);
void wm_buf_free(wm_buf *b);

void wm_copy_text(char *dst, size_t dstlen, const char *src); /* safe strncpy, NUL-terminated */
void wm_format_error(char *dst, size_t dstlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* RFC 3339 UTC with microseconds and Z, e.g. 2026-11-28T09:30:00.123456Z (28 bytes + NUL). */
void wm_format_time(int64_t unix_ns, char out[32]);
int64_t wm_realtime_ns(void);
double wm_monotonic_s(void);

/* xoshiro256** seeded from getrandom(); not thread-safe on its own. */
typedef struct wm_rng {
    uint64_t s[4];
} wm_rng;
void wm_rng_seed(wm_rng *r);
uint64_t wm_rng_next(wm_rng *r);
double wm_rng_uniform(wm_rng *r); /* [0, 1) */
/* Event and entity ids: UUID version 7 (RFC 9562) as lower-case text (36 characters + NUL):
 * 48 bits of Unix milliseconds (time-ordered: index locality in the stores), then 74 bits
 * from getrandom(), the kernel's CSPRNG, so ids cannot be guessed or pre-empted. Random bytes
 * are read 240 at a time; a forked child (another pid) reads fresh ones, never the parent's.
 * Not thread-safe on its own. */
typedef struct wm_idgen {
    uint8_t pool[240];
    size_t pos;
    long pid;
} wm_idgen;
void wm_idgen_init(wm_idgen *g);
/* 0, or -1 when the kernel gives no random bytes (out is then left empty). */
int wm_uuid7(wm_idgen *g, int64_t now_ns, char out[37]);

/* "30", "500ms", "30s", "5m", "1h", "2d" -> seconds. 0 ok, -1 not a duration. */
int wm_parse_duration(const char *text, double *seconds);
/* "1048576", "512KiB", "64MiB", "1GB" -> bytes. 0 ok, -1 not a size. */
int wm_parse_size(const char *text, uint64_t *bytes);

/* SHA-256 (FIPS 180-4) of data, and lower-case hex of bytes (out: 2n + 1). */
void wm_sha256(const void *data, size_t len, uint8_t digest[32]);
void wm_hex(const uint8_t *bytes, size_t n, char *out);
/* Percent-encode an S3 key: everything but A-Za-z0-9 - _ . ~ and '/'. */
int wm_buf_uri_encode_key(wm_buf *b, const char *key);

/* site_id pattern of the schema: ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ */
int wm_valid_site_id(const char *s);
/* A lower-case canonical UUID text. */
int wm_valid_uuid(const char *s);
/* UTF-8 length in code points of a NUL-terminated string, or -1 if not valid UTF-8. */
long wm_utf8_length(const char *s);

/* ---- config.c ------------------------------------------------------------------------- */

enum { WM_MODE_SIDECAR = 0, WM_MODE_DIRECT = 1 };
enum { WM_DIRECT_FILE = 0, WM_DIRECT_S3 = 1 };

typedef struct wm_settings {
    int mode;
    char *sidecar_url; /* no trailing slash */
    char *token;       /* NULL: none */
    char *site_id;     /* NULL: none */
    char *spool_dir;
    uint64_t spool_max_bytes;
    size_t queue_size;
    size_t batch_size;
    double flush_interval;
    double timeout;
    int max_retries;
    double retry_base_delay;
    double retry_max_delay;
    double replay_interval;
    double flush_timeout;
    double block_timeout;
    int verify_tls;
    int console; /* WAFERMON_CONSOLE: print each event to stderr as it is sent */
    /* direct mode */
    int direct_kind;
    char *direct_url;
    char *file_root;   /* file:///root -> /root */
    char *s3_bucket;
    char *s3_prefix;   /* no leading/trailing '/', may be "" */
    char *s3_endpoint; /* no trailing slash */
    char *s3_region;
    char *aws_access_key_id;
    char *aws_secret_access_key;
    char *aws_session_token;
} wm_settings;

/* Read every WAFERMON_* (and AWS_*) variable; on faults write "VAR: why; VAR2: why" into
 * err and return -1 with nothing allocated. */
int wm_settings_from_env(wm_settings *s, char *err, size_t errlen);
void wm_settings_free(wm_settings *s);

/* ---- records: what the caller's thread puts in the queue ------------------------------ */

enum { WM_REC_LIFECYCLE = 0, WM_REC_EVENT = 1 };
enum { WM_KIND_STARTED = 0, WM_KIND_PROGRESS, WM_KIND_FINISHED, WM_KIND_FAILED };

/* What a job's events share. Made by the caller's thread at start (text copied, nothing
 * encoded); the fields after "sender only" are touched by the sender thread only. Freed when
 * the job handle and every queued record of it have let go (refs). */
typedef struct wm_entity {
    atomic_int refs;
    int is_subjob;
    char id[257];
    char *site_id;
    char *app_name;
    char *app_version;
    char *app_id;
    char *parent_id;
    char *business_key;
    char *sub_key;
    char *initial_metadata; /* JSON object text or NULL */
    /* sender only */
    char *head_json;        /* "\"schema_version\":1,...,\"source\":{...}" (no braces) */
    cJSON *metadata;        /* the metadata as it stands */
    int metadata_ready;
} wm_entity;

void wm_entity_release(wm_entity *e);

typedef struct wm_record {
    uint8_t type;          /* WM_REC_* */
    uint8_t kind;          /* WM_KIND_* */
    uint8_t has_metrics;   /* duration, cpu, mem */
    uint8_t has_progress;
    wm_entity *entity;
    int64_t time_ns;
    double duration_s;
    double cpu_user_s;
    double cpu_system_s;
    double mem_max_mb;
    double progress;
    char *text;            /* EVENT: the wire JSON; LIFECYCLE: a metadata patch or NULL */
    size_t text_len;
    char *error;           /* FAILED: "type\0message\0stack\0" in one block, or NULL */
    uint8_t has_stack;
} wm_record;

void wm_record_clear(wm_record *r);

/* ---- client.c: what job.c needs from the client ----------------------------------------- */

/* Copy *rec into the queue, taking over its pointers; on an error the caller keeps them. */
wafermon_status wm_client_enqueue(wafermon_client *c, const wm_record *rec);
void wm_client_new_id(wafermon_client *c, char out[37]);
const char *wm_client_site_id(const wafermon_client *c);

/* ---- encode.c ------------------------------------------------------------------------- */

typedef struct wm_encoder {
    wm_idgen ids;
    char host[257];
    long pid;
    uint64_t metadata_truncated;
    uint64_t invalid;
} wm_encoder;

void wm_encoder_init(wm_encoder *enc);
/* Append the record as one NDJSON line ("...}\n") to out. 0 ok; 1 the record is not a valid
 * event (why in err, nothing appended); -1 out of memory. */
int wm_encode_record(wm_encoder *enc, wm_record *r, wm_buf *out, char *err, size_t errlen);

/* ---- sinks.c -------------------------------------------------------------------------- */

/* A batch: NDJSON lines data[offs[i] .. offs[i+1]) for i < n, each ending in '\n'. */
typedef struct wm_batch {
    wm_buf data;
    size_t *offs;
    size_t n;
    size_t cap;
} wm_batch;

int wm_batch_add_line_end(wm_batch *b); /* records that a line ended at data.len */
int wm_batch_from_ndjson(wm_batch *b, const char *data, size_t len);
void wm_batch_reset(wm_batch *b);
void wm_batch_free(wm_batch *b);

typedef struct wm_send_result {
    int delivered;       /* 1: stored (apart from refused); 0: retry later */
    double retry_after;  /* seconds the server asked for, or 0 */
    size_t refused;      /* events refused for good */
    char error[512];     /* when not delivered, or about the refused */
} wm_send_result;

typedef struct wm_sink wm_sink;
wm_sink *wm_sink_new(const wm_settings *s, char *err, size_t errlen);
/* One attempt to deliver the batch. Never blocks longer than the settings' timeout per
 * request. */
void wm_sink_send(wm_sink *sink, const wm_batch *batch, wm_send_result *result);
const char *wm_sink_name(const wm_sink *sink);
void wm_sink_free(wm_sink *sink);

/* ---- spool.c -------------------------------------------------------------------------- */

typedef struct wm_spool {
    char *dir; /* {spool_dir}/{sidecar|direct} */
    uint64_t max_bytes;
    uint64_t seq;
    wm_rng rng;
} wm_spool;

int wm_spool_open(wm_spool *sp, const char *spool_dir, const char *sink, uint64_t max_bytes,
                  char *err, size_t errlen);
/* Write the batch as one new spool file (fsynced, renamed into place). 0 ok, -1 failed. */
int wm_spool_write(wm_spool *sp, const wm_batch *batch, char *err, size_t errlen);
/* Spool files waiting (by any process), and their total size. */
size_t wm_spool_count(wm_spool *sp, uint64_t *bytes);
/* Replay: deliver files oldest first through send(); stops at the first failure.
 * Returns the number of events replayed; *remaining is the files still waiting. */
typedef int (*wm_spool_send_fn)(void *ctx, const wm_batch *batch);
size_t wm_spool_replay(wm_spool *sp, wm_spool_send_fn send, void *ctx, size_t *remaining);
void wm_spool_close(wm_spool *sp);

#endif
