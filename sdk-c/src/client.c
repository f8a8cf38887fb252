/*
 * client.c - the client: a bounded queue of records and the one sender thread that empties
 * it (encodes, delivers, retries, spools, replays).
 *
 * A caller's thread only copies a record into a preallocated ring slot under a mutex and,
 * when a batch is full, signals the sender: no JSON, no allocation beyond copying caller
 * text, no I/O. The sender takes up to WAFERMON_BATCH_SIZE records once a batch is full,
 * WAFERMON_FLUSH_INTERVAL after the first record arrived, or at once on flush/close, and:
 *  - delivers the batch to the sink; a failure is retried WAFERMON_MAX_RETRIES times with
 *    exponential backoff and full jitter (never sooner than the server's Retry-After), then
 *    the batch goes to the disk spool;
 *  - while the spool holds files, new batches go to the spool too and the spool is replayed
 *    oldest first every WAFERMON_REPLAY_INTERVAL, so the destination sees emission order;
 *  - on close, whatever flush could not deliver in time is spooled, not dropped.
 * Every record the SDK accepted ends up delivered, spooled, or counted as rejected (invalid
 * or refused for good by the destination, and logged). If even the spool cannot be written
 * (disk full), the sender keeps the batch and retries both; the queue then fills and callers
 * get WAFERMON_ERR_QUEUE_FULL: new input is refused, nothing accepted is dropped. The one
 * exception, logged loudly: closing while neither the destination nor the spool works.
 */
#include "internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WARN_EVERY_S 10.0

struct wafermon_client {
    wm_settings s;
    pthread_mutex_t mu;
    pthread_cond_t wake;     /* the sender waits here */
    pthread_cond_t space;    /* callers wait here for a free slot */
    pthread_cond_t progress; /* flush waits here */
    wm_record *ring;
    size_t cap, head, count;
    wm_idgen ids; /* entity ids made on callers' threads, under mu */
    uint64_t accepted, finished;
    size_t spool_files;
    int flush_waiters, replay_now, stopping;
    wafermon_stats stats;
    char last_error[512];
    pthread_t thread;
    int thread_started;
    /* sender thread only */
    wm_record *inflight;
    wm_sink *sink;
    wm_spool spool;
    wm_encoder enc;
    wm_batch batch;
    wm_rng jitter;
    double next_replay;
    double not_before; /* no request before this (the server's Retry-After) */
    double next_warn;
};

const char *wafermon_status_str(wafermon_status status) {
    switch (status) {
    case WAFERMON_OK:
        return "ok";
    case WAFERMON_ERR_CONFIG:
        return "invalid configuration";
    case WAFERMON_ERR_USAGE:
        return "invalid argument";
    case WAFERMON_ERR_NOMEM:
        return "out of memory";
    case WAFERMON_ERR_QUEUE_FULL:
        return "queue full";
    case WAFERMON_ERR_TIMEOUT:
        return "timed out before everything was delivered";
    case WAFERMON_ERR_CLOSED:
        return "client is closing";
    case WAFERMON_ERR_IO:
        return "I/O error";
    case WAFERMON_ERR_INTERNAL:
        return "internal error";
    }
    return "unknown status";
}

const char *wafermon_version(void) { return WAFERMON_VERSION; }

wafermon_status wafermon_global_init(void) {
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? WAFERMON_OK : WAFERMON_ERR_INTERNAL;
}

void wafermon_global_cleanup(void) { curl_global_cleanup(); }

/* ---- time helpers for condition variables on CLOCK_MONOTONIC ---------------------------- */

static struct timespec deadline_in(double seconds) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (seconds > 1e7)
        seconds = 1e7;
    double whole = floor(seconds);
    ts.tv_sec += (time_t)whole;
    ts.tv_nsec += (long)((seconds - whole) * 1e9);
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

/* ---- the caller's side ----------------------------------------------------------------- */

/* Copies *rec into the queue (taking over its pointers) or returns an error (the caller
 * still owns them). */
static wafermon_status enqueue(wafermon_client *c, const wm_record *rec) {
    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        return WAFERMON_ERR_CLOSED;
    }
    if (c->count == c->cap && c->s.block_timeout > 0) {
        struct timespec until = deadline_in(c->s.block_timeout);
        pthread_cond_signal(&c->wake);
        while (c->count == c->cap && !c->stopping)
            if (pthread_cond_timedwait(&c->space, &c->mu, &until) == ETIMEDOUT)
                break;
    }
    if (c->count == c->cap || c->stopping) {
        wafermon_status st = c->stopping ? WAFERMON_ERR_CLOSED : WAFERMON_ERR_QUEUE_FULL;
        if (!c->stopping)
            c->stats.queue_full++;
        pthread_mutex_unlock(&c->mu);
        return st;
    }
    size_t slot = c->head + c->count;
    if (slot >= c->cap)
        slot -= c->cap;
    c->ring[slot] = *rec;
    c->count++;
    c->accepted++;
    if (c->count == c->s.batch_size)
        pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->mu);
    return WAFERMON_OK;
}

wafermon_status wm_client_enqueue(wafermon_client *c, const wm_record *rec) {
    return enqueue(c, rec);
}

void wm_client_new_id(wafermon_client *c, char out[37]) {
    pthread_mutex_lock(&c->mu);
    if (wm_uuid7(&c->ids, wm_realtime_ns(), out))
        out[0] = '\0'; /* callers check: an empty id is refused as invalid */
    pthread_mutex_unlock(&c->mu);
}

const char *wm_client_site_id(const wafermon_client *c) { return c->s.site_id; }

static wafermon_status emit_copy(wafermon_client *c, const char *json, size_t len) {
    if (!c || !json)
        return WAFERMON_ERR_USAGE;
    if (len == (size_t)-1)
        len = strlen(json);
    wm_record rec = {0};
    rec.type = WM_REC_EVENT;
    rec.text = malloc(len + 1);
    if (!rec.text)
        return WAFERMON_ERR_NOMEM;
    memcpy(rec.text, json, len);
    rec.text[len] = '\0';
    rec.text_len = len;
    wafermon_status st = enqueue(c, &rec);
    if (st != WAFERMON_OK)
        free(rec.text);
    return st;
}

wafermon_status wafermon_emit_event(wafermon_client *c, const char *json, size_t len) {
    return emit_copy(c, json, len);
}

wafermon_status wafermon_emit_batch(wafermon_client *c, const char *const *events,
                                    const size_t *lens, size_t count, size_t *queued) {
    if (queued)
        *queued = 0;
    if (!c || (!events && count))
        return WAFERMON_ERR_USAGE;
    for (size_t i = 0; i < count; i++) {
        wafermon_status st = emit_copy(c, events[i], lens ? lens[i] : (size_t)-1);
        if (st != WAFERMON_OK)
            return st;
        if (queued)
            (*queued)++;
    }
    return WAFERMON_OK;
}

/* ---- the sender thread ----------------------------------------------------------------- */

static void set_error(wafermon_client *c, const char *error) {
    pthread_mutex_lock(&c->mu);
    wm_copy_text(c->last_error, sizeof c->last_error, error);
    pthread_mutex_unlock(&c->mu);
}

static void warn(wafermon_client *c, const char *what, const char *error) {
    double now = wm_monotonic_s();
    if (now < c->next_warn)
        return;
    c->next_warn = now + WARN_EVERY_S;
    fprintf(stderr, WM_LOG_PREFIX "%s: %s\n", what, error);
}

/* Sleep up to seconds unless the client starts stopping; 1 if it did. */
static int pause_unless_stopping(wafermon_client *c, double seconds) {
    struct timespec until = deadline_in(seconds);
    pthread_mutex_lock(&c->mu);
    while (!c->stopping)
        if (pthread_cond_timedwait(&c->wake, &c->mu, &until) == ETIMEDOUT)
            break;
    int stopping = c->stopping;
    pthread_mutex_unlock(&c->mu);
    return stopping;
}

static void count_delivered(wafermon_client *c, size_t n, const wm_send_result *res,
                            int replayed) {
    pthread_mutex_lock(&c->mu);
    c->stats.sent += n - res->refused;
    c->stats.rejected += res->refused;
    if (replayed)
        c->stats.replayed += n;
    pthread_mutex_unlock(&c->mu);
}

/* Remember the server's Retry-After: no request goes out before it has passed. */
static void note_retry_after(wafermon_client *c, const wm_send_result *res) {
    if (res->retry_after > 0)
        c->not_before = wm_monotonic_s() + res->retry_after;
}

static int replay_send(void *ctx, const wm_batch *batch) {
    wafermon_client *c = ctx;
    wm_send_result res;
    if (wm_monotonic_s() < c->not_before)
        return -1;
    wm_sink_send(c->sink, batch, &res);
    note_retry_after(c, &res);
    if (!res.delivered) {
        pthread_mutex_lock(&c->mu);
        c->stats.retries++;
        wm_copy_text(c->last_error, sizeof c->last_error, res.error);
        pthread_mutex_unlock(&c->mu);
        warn(c, "replaying the spool failed, will retry", res.error);
        return -1;
    }
    count_delivered(c, batch->n, &res, 1);
    return 0;
}

static void replay(wafermon_client *c) {
    size_t remaining;
    wm_spool_replay(&c->spool, replay_send, c, &remaining);
    pthread_mutex_lock(&c->mu);
    c->spool_files = remaining;
    c->next_replay = wm_monotonic_s() + c->s.replay_interval;
    pthread_cond_broadcast(&c->progress);
    pthread_mutex_unlock(&c->mu);
}

static int try_send(wafermon_client *c, const wm_batch *b, int stopping) {
    for (int attempt = 0; !stopping; attempt++) {
        wm_send_result res;
        double now = wm_monotonic_s();
        if (now < c->not_before && (stopping = pause_unless_stopping(c, c->not_before - now)))
            break;
        wm_sink_send(c->sink, b, &res);
        note_retry_after(c, &res);
        if (res.delivered) {
            count_delivered(c, b->n, &res, 0);
            return 0;
        }
        pthread_mutex_lock(&c->mu);
        c->stats.retries++;
        wm_copy_text(c->last_error, sizeof c->last_error, res.error);
        pthread_mutex_unlock(&c->mu);
        if (attempt >= c->s.max_retries) {
            warn(c, "delivery failed, spooling to disk", res.error);
            break;
        }
        double cap = c->s.retry_base_delay * pow(2.0, attempt);
        if (cap > c->s.retry_max_delay)
            cap = c->s.retry_max_delay;
        double delay = wm_rng_uniform(&c->jitter) * cap; /* full jitter */
        stopping = pause_unless_stopping(c, delay);
    }
    return -1;
}

/* Console mode: each event's wire JSON on stderr as it is sent (like OpenTelemetry's console
 * exporter), one line each, under stderr's lock so lines of other threads do not interleave. */
static void print_batch(const wm_batch *b) {
    flockfile(stderr);
    for (size_t i = 0; i < b->n; i++) {
        size_t start = b->offs[i], end = b->offs[i + 1];
        while (end > start && b->data.data[end - 1] == '\n')
            end--;
        fprintf(stderr, WM_LOG_PREFIX "send %.*s\n", (int)(end - start), b->data.data + start);
    }
    fflush(stderr);
    funlockfile(stderr);
}

static void deliver(wafermon_client *c, const wm_batch *b, int stopping) {
    if (c->s.console)
        print_batch(b);
    pthread_mutex_lock(&c->mu);
    int spooling = c->spool_files > 0; /* keep order: the spool goes first */
    pthread_mutex_unlock(&c->mu);
    if (!spooling && !stopping && try_send(c, b, stopping) == 0)
        return;
    for (;;) {
        char err[512];
        if (wm_spool_write(&c->spool, b, err, sizeof err) == 0) {
            pthread_mutex_lock(&c->mu);
            c->stats.spooled += b->n;
            if (c->spool_files++ == 0)
                c->next_replay = wm_monotonic_s() + c->s.replay_interval;
            pthread_mutex_unlock(&c->mu);
            return;
        }
        set_error(c, err);
        pthread_mutex_lock(&c->mu);
        stopping = c->stopping;
        pthread_mutex_unlock(&c->mu);
        if (stopping) {
            fprintf(stderr,
                    WM_LOG_PREFIX "LOST %zu events: closing, the destination is unavailable and "
                                  "the spool cannot be written: %s\n",
                    b->n, err);
            return;
        }
        warn(c, "cannot spool, holding the batch in memory", err);
        if (pause_unless_stopping(c, c->s.replay_interval) == 0 && try_send(c, b, 0) == 0)
            return;
    }
}

static void process(wafermon_client *c, size_t n, int stopping) {
    wm_batch_reset(&c->batch);
    size_t invalid = 0;
    for (size_t i = 0; i < n; i++) {
        char why[200];
        int rc = wm_encode_record(&c->enc, &c->inflight[i], &c->batch.data, why, sizeof why);
        if (rc == 0 && wm_batch_add_line_end(&c->batch))
            rc = -1;
        if (rc == 1) {
            invalid++;
            fprintf(stderr, WM_LOG_PREFIX "event not sent: %s\n", why);
        } else if (rc < 0) {
            invalid++;
            fprintf(stderr, WM_LOG_PREFIX "event not sent: out of memory while encoding\n");
        }
        wm_record_clear(&c->inflight[i]);
    }
    pthread_mutex_lock(&c->mu);
    c->stats.rejected += invalid;
    c->stats.metadata_truncated = c->enc.metadata_truncated;
    pthread_mutex_unlock(&c->mu);
    deliver(c, &c->batch, stopping);
}

static void *sender_main(void *arg) {
    wafermon_client *c = arg;
    double first_seen = 0; /* when the sender first saw the current partial batch */
    pthread_mutex_lock(&c->mu);
    for (;;) {
        double now = wm_monotonic_s();
        int want_replay = c->spool_files > 0 && !c->stopping && now >= c->not_before &&
                          (now >= c->next_replay || c->replay_now);
        if (want_replay)
            c->replay_now = 0;
        if (c->count > 0 && first_seen == 0)
            first_seen = now;
        size_t take = 0;
        if (c->count >= c->s.batch_size ||
            (c->count > 0 &&
             (c->flush_waiters || c->stopping || now - first_seen >= c->s.flush_interval)))
            take = c->count < c->s.batch_size ? c->count : c->s.batch_size;
        if (take == 0 && !want_replay) {
            if (c->stopping && c->count == 0)
                break;
            double wait = 3600;
            if (c->count > 0)
                wait = first_seen + c->s.flush_interval - now;
            double replay_at = c->replay_now ? now : c->next_replay;
            if (replay_at < c->not_before)
                replay_at = c->not_before;
            if (c->spool_files > 0 && replay_at - now < wait)
                wait = replay_at - now;
            struct timespec until = deadline_in(wait > 0 ? wait : 0);
            pthread_cond_timedwait(&c->wake, &c->mu, &until);
            continue;
        }
        for (size_t i = 0; i < take; i++) {
            c->inflight[i] = c->ring[c->head];
            memset(&c->ring[c->head], 0, sizeof c->ring[0]);
            if (++c->head == c->cap)
                c->head = 0;
        }
        c->count -= take;
        if (take) {
            first_seen = 0;
            pthread_cond_broadcast(&c->space);
        }
        int stopping = c->stopping;
        pthread_mutex_unlock(&c->mu);
        if (want_replay)
            replay(c);
        if (take)
            process(c, take, stopping);
        pthread_mutex_lock(&c->mu);
        c->finished += take;
        pthread_cond_broadcast(&c->progress);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---- life cycle of a client ------------------------------------------------------------ */

static void free_client(wafermon_client *c) {
    if (c->ring)
        for (size_t i = 0; i < c->count; i++)
            wm_record_clear(&c->ring[(c->head + i) % c->cap]);
    free(c->ring);
    free(c->inflight);
    wm_sink_free(c->sink);
    if (c->spool.dir)
        wm_spool_close(&c->spool);
    wm_batch_free(&c->batch);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->wake);
    pthread_cond_destroy(&c->space);
    pthread_cond_destroy(&c->progress);
    wm_settings_free(&c->s);
    free(c);
}

wafermon_status wafermon_client_new_from_env(wafermon_client **out, char *errbuf,
                                             size_t errlen) {
    if (errbuf && errlen)
        errbuf[0] = '\0';
    if (!out)
        return WAFERMON_ERR_USAGE;
    *out = NULL;
    wafermon_client *c = calloc(1, sizeof *c);
    if (!c)
        return WAFERMON_ERR_NOMEM;
    if (wm_settings_from_env(&c->s, errbuf, errlen)) {
        free(c);
        return WAFERMON_ERR_CONFIG;
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->wake, &attr);
    pthread_cond_init(&c->space, &attr);
    pthread_cond_init(&c->progress, &attr);
    pthread_condattr_destroy(&attr);
    c->cap = c->s.queue_size;
    c->ring = calloc(c->cap, sizeof *c->ring);
    c->inflight = calloc(c->s.batch_size, sizeof *c->inflight);
    if (!c->ring || !c->inflight) {
        free_client(c);
        return WAFERMON_ERR_NOMEM;
    }
    wm_idgen_init(&c->ids);
    wm_rng_seed(&c->jitter);
    wm_encoder_init(&c->enc);
    if (wm_spool_open(&c->spool, c->s.spool_dir,
                      c->s.mode == WM_MODE_SIDECAR ? "sidecar" : "direct", c->s.spool_max_bytes,
                      errbuf, errlen)) {
        free_client(c);
        return WAFERMON_ERR_CONFIG;
    }
    c->sink = wm_sink_new(&c->s, errbuf, errlen);
    if (!c->sink) {
        free_client(c);
        return WAFERMON_ERR_INTERNAL;
    }
    c->spool_files = wm_spool_count(&c->spool, NULL); /* left by earlier clients: replay now */
    c->next_replay = 0;
    if (pthread_create(&c->thread, NULL, sender_main, c) != 0) {
        wm_format_error(errbuf, errlen, "cannot start the sender thread");
        free_client(c);
        return WAFERMON_ERR_IO;
    }
    c->thread_started = 1;
    *out = c;
    return WAFERMON_OK;
}

wafermon_status wafermon_client_flush(wafermon_client *c, double timeout_s) {
    if (!c)
        return WAFERMON_ERR_USAGE;
    if (timeout_s < 0 || isnan(timeout_s))
        timeout_s = c->s.flush_timeout;
    struct timespec until = deadline_in(timeout_s);
    pthread_mutex_lock(&c->mu);
    uint64_t target = c->accepted;
    c->flush_waiters++;
    c->replay_now = 1;
    pthread_cond_signal(&c->wake);
    while (!(c->finished >= target && c->spool_files == 0))
        if (pthread_cond_timedwait(&c->progress, &c->mu, &until) == ETIMEDOUT)
            break;
    int delivered = c->finished >= target && c->spool_files == 0;
    c->flush_waiters--;
    pthread_mutex_unlock(&c->mu);
    return delivered ? WAFERMON_OK : WAFERMON_ERR_TIMEOUT;
}

wafermon_status wafermon_client_close(wafermon_client *c, double timeout_s) {
    if (!c)
        return WAFERMON_ERR_USAGE;
    wafermon_status st = wafermon_client_flush(c, timeout_s);
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_cond_broadcast(&c->wake);
    pthread_cond_broadcast(&c->space);
    pthread_mutex_unlock(&c->mu);
    if (c->thread_started)
        pthread_join(c->thread, NULL);
    free_client(c);
    return st;
}

wafermon_status wafermon_client_stats(wafermon_client *c, wafermon_stats *out) {
    if (!c || !out)
        return WAFERMON_ERR_USAGE;
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    out->queued = c->accepted;
    out->pending = c->count;
    out->spool_files = c->spool_files;
    pthread_mutex_unlock(&c->mu);
    return WAFERMON_OK;
}

wafermon_status wafermon_client_last_error(wafermon_client *c, char *buf, size_t buflen) {
    if (!c || !buf || !buflen)
        return WAFERMON_ERR_USAGE;
    pthread_mutex_lock(&c->mu);
    wm_copy_text(buf, buflen, c->last_error);
    pthread_mutex_unlock(&c->mu);
    return WAFERMON_OK;
}
