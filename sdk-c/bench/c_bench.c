/*
 * wafermon-c-bench - what the C SDK costs its caller, and what it delivers.
 *
 *   wafermon-c-bench [--calls N] [--rounds R] [--throughput-events M]
 * Settings come from WAFERMON_* as for any client (point WAFERMON_SIDECAR_URL at a real
 * sidecar). Prints one JSON object on stdout:
 *  - caller-thread cost per call, timed one by one with CLOCK_MONOTONIC (median and p99 ns,
 *    the median of R rounds of N calls), for wafermon_job_progress (no metadata) and
 *    wafermon_emit_event (a 330-byte wire event), while the sender thread delivers to the
 *    sidecar; and the same for a baseline measured the same way in the same run: a
 *    mutex-protected memcpy of a record of the same size into a preallocated ring, i.e. the
 *    least a thread-safe bounded queue can do. The ratios are the figures to compare.
 *  - throughput: M progress events from the first call until flush returns, i.e. until the
 *    sidecar acknowledged (stored) every one; events/s.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wafermon.h"

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

typedef struct figures {
    double median, p99;
} figures;

static figures summarize(int64_t *samples, size_t n) {
    qsort(samples, n, sizeof *samples, cmp_i64);
    figures f = {(double)samples[n / 2], (double)samples[(size_t)(n * 0.99) - 1]};
    return f;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The baseline: a bounded ring of fixed-size records behind a mutex. */
typedef struct record {
    unsigned char bytes[96]; /* the size of the SDK's queue record */
} record;

typedef struct ring {
    pthread_mutex_t mu;
    record *slots;
    size_t cap, head, count;
} ring;

static void ring_put(ring *r, const record *rec) {
    pthread_mutex_lock(&r->mu);
    if (r->count < r->cap) {
        memcpy(&r->slots[(r->head + r->count) % r->cap], rec, sizeof *rec);
        r->count++;
    }
    pthread_mutex_unlock(&r->mu);
}

static const char *WIRE_EVENT =
    "{\"schema_version\":1,\"event_id\":\"3f0c1e8a-2b4d-4c6e-8f10-a1b2c3d4e5f6\",\"kind\":"
    "\"progress\",\"time\":\"2026-11-28T09:30:00.123456Z\",\"site_id\":\"fab1\",\"app\":{"
    "\"name\":\"etch\",\"version\":\"2.1.0\"},\"entity\":{\"type\":\"subjob\",\"id\":\"w-1\","
    "\"parent_id\":\"lot-1\",\"business_key\":\"LOT-12345\",\"sub_key\":\"wafer-01\"},"
    "\"metrics\":{\"duration_s\":1.5,\"progress\":0.5},\"metadata\":{\"tool\":\"etch-07\"}}";

int main(int argc, char **argv) {
    size_t calls = 20000;
    int rounds = 5;
    size_t throughput_events = 200000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--calls"))
            calls = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds"))
            rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--throughput-events"))
            throughput_events = (size_t)atol(argv[i + 1]);
    }
    if (calls < 100 || rounds < 1 || rounds > 100) {
        fprintf(stderr, "usage: wafermon-c-bench [--calls N>=100] [--rounds 1..100] "
                        "[--throughput-events M]\n");
        return 2;
    }
    wafermon_global_init();
    wafermon_client *client;
    char err[1024];
    if (wafermon_client_new_from_env(&client, err, sizeof err) != WAFERMON_OK) {
        fprintf(stderr, "wafermon-c-bench: %s\n", err);
        return 1;
    }
    ring base = {.cap = calls + 1};
    pthread_mutex_init(&base.mu, NULL);
    base.slots = calloc(base.cap, sizeof *base.slots);
    int64_t *samples = malloc(calls * sizeof *samples);
    double base_med[100], base_p99[100], prog_med[100], prog_p99[100], emit_med[100],
        emit_p99[100];
    wafermon_app app = {.name = "c-bench", .version = WAFERMON_VERSION};
    wafermon_job_options options = {.app = &app, .business_key = "bench"};
    wafermon_job *job;
    if (wafermon_job_start(client, &options, &job, err, sizeof err) != WAFERMON_OK) {
        fprintf(stderr, "wafermon-c-bench: %s\n", err);
        return 1;
    }
    size_t wire_len = strlen(WIRE_EVENT);
    record rec;
    memset(&rec, 7, sizeof rec);
    int failures = 0;
    for (int r = 0; r < rounds; r++) {
        base.count = 0;
        for (size_t i = 0; i < calls; i++) {
            int64_t t0 = now_ns();
            ring_put(&base, &rec);
            samples[i] = now_ns() - t0;
        }
        figures f = summarize(samples, calls);
        base_med[r] = f.median;
        base_p99[r] = f.p99;
        for (size_t i = 0; i < calls; i++) {
            int64_t t0 = now_ns();
            failures += wafermon_job_progress(job, 0.5, NULL) != WAFERMON_OK;
            samples[i] = now_ns() - t0;
        }
        f = summarize(samples, calls);
        prog_med[r] = f.median;
        prog_p99[r] = f.p99;
        for (size_t i = 0; i < calls; i++) {
            int64_t t0 = now_ns();
            failures += wafermon_emit_event(client, WIRE_EVENT, wire_len) != WAFERMON_OK;
            samples[i] = now_ns() - t0;
        }
        f = summarize(samples, calls);
        emit_med[r] = f.median;
        emit_p99[r] = f.p99;
        if (wafermon_client_flush(client, 120) != WAFERMON_OK) {
            fprintf(stderr, "wafermon-c-bench: flush did not deliver everything\n");
            return 1;
        }
    }
    /* throughput: progress events until the sidecar acknowledged them all */
    int64_t t0 = now_ns();
    for (size_t i = 0; i < throughput_events; i++)
        while (wafermon_job_progress(job, 0.5, NULL) == WAFERMON_ERR_QUEUE_FULL)
            ;
    wafermon_status flushed = wafermon_client_flush(client, 300);
    double seconds = (double)(now_ns() - t0) / 1e9;
    wafermon_job_finish(job);
    wafermon_stats st;
    wafermon_client_stats(client, &st);
    wafermon_client_close(client, 30);

    double bm = median_of(base_med, rounds), bp = median_of(base_p99, rounds);
    double pm = median_of(prog_med, rounds), pp = median_of(prog_p99, rounds);
    double em = median_of(emit_med, rounds), ep = median_of(emit_p99, rounds);
    printf("{\"caller_cost\": {\"what\": \"caller-thread ns per call, %zu calls x %d rounds, "
           "timed per call (median of rounds); sender delivering to a real sidecar meanwhile\", "
           "\"baseline_mutex_memcpy_ring_median_ns\": %.0f, \"baseline_p99_ns\": %.0f, "
           "\"progress_median_ns\": %.0f, \"progress_p99_ns\": %.0f, "
           "\"progress_median_ratio_to_baseline\": %.2f, \"progress_p99_ratio_to_baseline\": "
           "%.2f, \"emit_event_median_ns\": %.0f, \"emit_event_p99_ns\": %.0f, "
           "\"emit_event_median_ratio_to_baseline\": %.2f, \"emit_event_p99_ratio_to_baseline\": "
           "%.2f, \"target_median_ns\": 1000, \"calls_not_queued\": %d}, "
           "\"throughput\": {\"what\": \"progress events from the first call until flush "
           "returned (the sidecar acknowledged every one)\", \"events\": %zu, \"seconds\": "
           "%.3f, \"events_per_s\": %.0f, \"delivered\": %s, \"sent\": %llu, \"spooled\": "
           "%llu, \"rejected\": %llu, \"queue_full\": %llu}}\n",
           calls, rounds, bm, bp, pm, pp, pm / bm, pp / bp, em, ep, em / bm, ep / bp, failures,
           throughput_events, seconds, (double)throughput_events / seconds,
           flushed == WAFERMON_OK ? "true" : "false", (unsigned long long)st.sent,
           (unsigned long long)st.spooled, (unsigned long long)st.rejected,
           (unsigned long long)st.queue_full);
    free(samples);
    free(base.slots);
    pthread_mutex_destroy(&base.mu);
    wafermon_global_cleanup();
    return flushed == WAFERMON_OK ? 0 : 1;
}
