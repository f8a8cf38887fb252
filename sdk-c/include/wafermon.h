/*
 * wafermon.h - the wafermon C SDK: monitor jobs and subjobs, ship their lifecycle events.
 *
 *     wafermon_global_init();
 *     wafermon_client *client;
 *     char why[512];
 *     if (wafermon_client_new_from_env(&client, why, sizeof why) != WAFERMON_OK) {
 *         fprintf(stderr, "%s\n", why);        // "WAFERMON_MODE: must be one of ..."
 *         return 1;
 *     }
 *     wafermon_app app = {.name = "wafer-process", .version = "2.1.0"};
 *     wafermon_job_options lot = {.app = &app, .business_key = "LOT-12345"};
 *     wafermon_job *job;
 *     wafermon_job_start(client, &lot, &job, NULL, 0);           // emits "started"
 *     wafermon_job_progress(job, 0.5, "{\"step\":\"etch\"}");     // emits "progress"
 *     wafermon_job_finish(job);                                 // emits "finished", frees job
 *     wafermon_client_close(client, -1);                        // flushes, then frees
 *     wafermon_global_cleanup();
 *
 * Every call returns a wafermon_status; wafermon_status_str() names it. Events go into a
 * bounded in-process queue; one background sender thread per client encodes them (the
 * caller's thread never formats JSON and never waits on the network), batches them to the
 * sidecar (WAFERMON_MODE=sidecar) or straight to a file tree or S3 bucket (direct), retries
 * with backoff and spools to disk while the destination is unreachable. Settings come from
 * WAFERMON_* environment variables (see docs/sdk-c.md).
 *
 * Thread safety: a client may be used from any number of threads at once. A job handle
 * belongs to one thread at a time (its owner); different jobs may run in different threads.
 * No global state besides wafermon_global_init/cleanup (which wrap curl_global_init/cleanup,
 * so call them once, from main, before and after any other thread uses the SDK).
 */
#ifndef WAFERMON_H
#define WAFERMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WAFERMON_SDK_NAME "wafermon-sdk-c"
#define WAFERMON_VERSION "0.1.0"
#define WAFERMON_VERSION_MAJOR 0
#define WAFERMON_VERSION_MINOR 1
#define WAFERMON_VERSION_PATCH 0

/* Metadata whose compact JSON is longer than this is replaced by
 * {"wafermon_sdk_truncated": "<why, with the size>"}; the event itself is still sent. */
#define WAFERMON_METADATA_MAX_BYTES 16384

#if defined(__GNUC__)
#define WAFERMON_EXPORT __attribute__((visibility("default")))
#else
#define WAFERMON_EXPORT
#endif

typedef enum wafermon_status {
    WAFERMON_OK = 0,
    WAFERMON_ERR_CONFIG,     /* the settings are invalid; the error buffer names the variable */
    WAFERMON_ERR_USAGE,      /* a bad argument (NULL handle, invalid key, bad JSON text) */
    WAFERMON_ERR_NOMEM,      /* out of memory */
    WAFERMON_ERR_QUEUE_FULL, /* the queue stayed full for WAFERMON_BLOCK_TIMEOUT: not queued */
    WAFERMON_ERR_TIMEOUT,    /* flush/close: not everything was delivered in time (it is
                                still queued, or spooled on disk, and will be sent later) */
    WAFERMON_ERR_CLOSED,     /* the client is closing */
    WAFERMON_ERR_IO,         /* a local file or thread could not be created */
    WAFERMON_ERR_INTERNAL
} wafermon_status;

/* A static, human-readable name of a status ("ok", "invalid configuration", ...). */
WAFERMON_EXPORT const char *wafermon_status_str(wafermon_status status);

/* The library's version text, e.g. "0.1.0". */
WAFERMON_EXPORT const char *wafermon_version(void);

/* Call once from main before any thread uses the SDK (wraps curl_global_init). */
WAFERMON_EXPORT wafermon_status wafermon_global_init(void);
/* Call once at the end, after every client is closed (wraps curl_global_cleanup). */
WAFERMON_EXPORT void wafermon_global_cleanup(void);

/* ---- the client ------------------------------------------------------------------------ */

typedef struct wafermon_client wafermon_client;

/*
 * A new client configured from the WAFERMON_* environment variables alone, with its sender
 * thread running. On a bad setting it returns WAFERMON_ERR_CONFIG, writes a message naming
 * every bad variable into errbuf (if not NULL; always NUL-terminated, cut at errlen - 1
 * bytes), e.g. "WAFERMON_MODE: must be one of sidecar, direct, got 'sidcar'", and starts
 * nothing. *out is NULL on any error.
 */
WAFERMON_EXPORT wafermon_status wafermon_client_new_from_env(wafermon_client **out, char *errbuf,
                                                             size_t errlen);

/*
 * Wait until every event queued so far is delivered (the destination acknowledged it), for
 * at most timeout_s seconds (negative: WAFERMON_FLUSH_TIMEOUT). Spooled events are retried
 * at once. WAFERMON_OK: delivered; WAFERMON_ERR_TIMEOUT: some are still queued or spooled.
 */
WAFERMON_EXPORT wafermon_status wafermon_client_flush(wafermon_client *client, double timeout_s);

/*
 * Flush (as above), stop the sender thread and free the client. Whatever was not delivered
 * by then is written to the disk spool and sent by a later client (in this or a later
 * process) using the same WAFERMON_SPOOL_DIR. Returns the flush's status; the client is
 * freed in every case. Jobs still running are not finished: finish them first. A request
 * in flight when the timeout expires is waited for (at most WAFERMON_TIMEOUT more).
 */
WAFERMON_EXPORT wafermon_status wafermon_client_close(wafermon_client *client, double timeout_s);

/* Counters since the client was made. */
typedef struct wafermon_stats {
    uint64_t queued;             /* events accepted by emit/start/progress/finish/fail */
    uint64_t pending;            /* in the in-process queue now */
    uint64_t sent;               /* acknowledged by the destination (first try or replay) */
    uint64_t spooled;            /* written to the disk spool */
    uint64_t replayed;           /* sent from the disk spool */
    uint64_t spool_files;        /* spool files waiting now (this and earlier processes) */
    uint64_t rejected;           /* refused for good by the destination or invalid (logged) */
    uint64_t queue_full;         /* calls that returned WAFERMON_ERR_QUEUE_FULL */
    uint64_t metadata_truncated; /* events whose metadata was replaced for its size */
    uint64_t retries;            /* failed delivery attempts */
} wafermon_stats;

WAFERMON_EXPORT wafermon_status wafermon_client_stats(wafermon_client *client,
                                                      wafermon_stats *out);

/* The text of the last delivery error, or "" (copied into buf, NUL-terminated). */
WAFERMON_EXPORT wafermon_status wafermon_client_last_error(wafermon_client *client, char *buf,
                                                           size_t buflen);

/* ---- events in wire form ---------------------------------------------------------------- */

/*
 * Queue one event given as wire JSON text (one object, schema event.v1; see
 * docs/event-schema.md). The text is copied; the sender thread checks that it is one JSON
 * object and compacts it. Text that is not is counted as rejected and logged, not sent.
 * len may be (size_t)-1 for a NUL-terminated string.
 */
WAFERMON_EXPORT wafermon_status wafermon_emit_event(wafermon_client *client, const char *json,
                                                    size_t len);

/*
 * Queue count events, each wire JSON text as for wafermon_emit_event (lens may be NULL for
 * NUL-terminated strings). *queued (if not NULL) is how many were queued; on a full queue
 * the rest are not, and WAFERMON_ERR_QUEUE_FULL is returned.
 */
WAFERMON_EXPORT wafermon_status wafermon_emit_batch(wafermon_client *client,
                                                    const char *const *events, const size_t *lens,
                                                    size_t count, size_t *queued);

/* ---- monitored jobs and subjobs ------------------------------------------------------- */

typedef struct wafermon_job wafermon_job;

/* The application a job belongs to. name: 1-128 characters; version, app_id (a lower-case
 * UUID) optional. */
typedef struct wafermon_app {
    const char *name;
    const char *version;
    const char *app_id;
} wafermon_app;

/* How to start a job or subjob. Every pointer may be NULL except app. All text is copied. */
typedef struct wafermon_job_options {
    const wafermon_app *app;
    const char *business_key; /* e.g. the lot, 1-256 characters; NULL on a subjob: the parent's */
    const char *sub_key;      /* e.g. the wafer, 1-256 characters */
    const char *entity_id;    /* default: a fresh UUID v7 (time-ordered, CSPRNG bits) */
    const char *metadata;     /* a JSON object as text, e.g. "{\"tool\":\"etch-07\"}" */
} wafermon_job_options;

/* Which CPU time a job reports. */
typedef enum wafermon_cpu_scope {
    WAFERMON_CPU_THREAD = 0, /* the calling thread's (RUSAGE_THREAD; process where missing) */
    WAFERMON_CPU_PROCESS     /* the whole process's (RUSAGE_SELF) */
} wafermon_cpu_scope;

/*
 * Start a job: emits "started" with the client's WAFERMON_SITE_ID and returns the handle,
 * which wafermon_job_finish or wafermon_job_fail frees. Resource figures are taken from
 * here: duration (CLOCK_MONOTONIC), CPU user/system time of this thread (getrusage), and
 * the process's peak RSS. WAFERMON_ERR_USAGE if the client has no site id or an option is
 * invalid; errbuf (may be NULL) then says which.
 */
WAFERMON_EXPORT wafermon_status wafermon_job_start(wafermon_client *client,
                                                   const wafermon_job_options *options,
                                                   wafermon_job **out, char *errbuf,
                                                   size_t errlen);

/* Start a subjob of parent (its entity.parent_id is the parent's id); otherwise as above. */
WAFERMON_EXPORT wafermon_status wafermon_subjob_start(wafermon_job *parent,
                                                      const wafermon_job_options *options,
                                                      wafermon_job **out, char *errbuf,
                                                      size_t errlen);

/* Choose the CPU scope of a running job (before its next event). Default: THREAD. */
WAFERMON_EXPORT wafermon_status wafermon_job_set_cpu_scope(wafermon_job *job,
                                                           wafermon_cpu_scope scope);

/* The job's entity id (valid until the job is finished or failed). */
WAFERMON_EXPORT const char *wafermon_job_id(const wafermon_job *job);

/*
 * Emit "progress": duration so far, progress (0..1; a negative value or NaN means "not
 * given"; above 1 is sent as 1), and metadata_patch (a JSON object as text, or NULL) merged
 * into the job's metadata, which every later event of the job carries.
 */
WAFERMON_EXPORT wafermon_status wafermon_job_progress(wafermon_job *job, double progress,
                                                      const char *metadata_patch);

/* Emit "finished" with duration, CPU and memory figures, and free the job. On
 * WAFERMON_ERR_QUEUE_FULL nothing was queued and the job stays valid: call again (or
 * wafermon_job_discard it); on any other status the job is freed. */
WAFERMON_EXPORT wafermon_status wafermon_job_finish(wafermon_job *job);

/* Emit "failed" with an error {type, message, stack?} (stack may be NULL), and free the
 * job as wafermon_job_finish does (kept on WAFERMON_ERR_QUEUE_FULL). type: up to 256 characters (NULL or "" is sent as
 * "Error"); a longer type, message or stack is cut to the schema's limits. */
WAFERMON_EXPORT wafermon_status wafermon_job_fail(wafermon_job *job, const char *error_type,
                                                  const char *message, const char *stack);

/* Free a job without emitting anything: for a job that will never end (its client was
 * closed, or the process forked). */
WAFERMON_EXPORT wafermon_status wafermon_job_discard(wafermon_job *job);

#ifdef __cplusplus
}
#endif
#endif /* WAFERMON_H */
