/*
 * wafer_lot - a lot of wafers processed by a few worker threads, each wafer a monitored
 * subjob of the lot's job. Built against the installed library:
 *
 *     cc wafer_lot.c $(pkg-config --cflags --libs wafermon) -o wafer_lot
 *     WAFERMON_SITE_ID=fab1 ./wafer_lot 25          # to the sidecar on 127.0.0.1:17000
 *     WAFERMON_SITE_ID=fab1 WAFERMON_MODE=direct \
 *       WAFERMON_DIRECT_URL=file:///tmp/wafermon-events ./wafer_lot 25
 *
 * Exit status: 0 when every event was delivered, 1 on a settings error, 2 when some events
 * are still waiting (in the spool, to be sent by the next run).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wafermon.h>

#define WORKERS 4

static wafermon_app app = {.name = "wafer-lot-example", .version = WAFERMON_VERSION};

typedef struct worker {
    wafermon_job *lot;
    int first, count;
    int failed;
} worker;

static double etch(int wafer) { /* stands in for real work: some CPU */
    volatile double x = 0;
    for (int i = 0; i < 200000 + wafer * 1000; i++)
        x += i * 0.5;
    return x;
}

static void *process(void *arg) {
    worker *w = arg;
    for (int wafer = w->first; wafer < w->first + w->count; wafer++) {
        char sub_key[32], meta[64], err[256];
        snprintf(sub_key, sizeof sub_key, "wafer-%02d", wafer);
        snprintf(meta, sizeof meta, "{\"slot\":%d}", wafer);
        wafermon_job_options options = {.app = &app, .sub_key = sub_key, .metadata = meta};
        wafermon_job *job;
        if (wafermon_subjob_start(w->lot, &options, &job, err, sizeof err) != WAFERMON_OK) {
            fprintf(stderr, "wafer %d: %s\n", wafer, err);
            continue;
        }
        etch(wafer);
        wafermon_job_progress(job, 0.5, "{\"step\":\"etch\"}");
        etch(wafer);
        if (wafer % 13 == 12) { /* every 13th wafer fails, to show a failed event */
            wafermon_job_fail(job, "ChamberPressureError", "pressure out of range", NULL);
            w->failed++;
        } else {
            wafermon_job_finish(job);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    int wafers = argc > 1 ? atoi(argv[1]) : 25;
    if (wafers < 1)
        wafers = 25;
    wafermon_global_init();
    wafermon_client *client;
    char err[1024];
    if (wafermon_client_new_from_env(&client, err, sizeof err) != WAFERMON_OK) {
        fprintf(stderr, "wafer_lot: %s\n", err);
        wafermon_global_cleanup();
        return 1;
    }
    wafermon_job_options lot_options = {.app = &app, .business_key = "LOT-12345",
                                        .metadata = "{\"customer\":\"ACME\"}"};
    wafermon_job *lot;
    if (wafermon_job_start(client, &lot_options, &lot, err, sizeof err) != WAFERMON_OK) {
        fprintf(stderr, "wafer_lot: %s\n", err);
        wafermon_client_close(client, 0);
        wafermon_global_cleanup();
        return 1;
    }
    pthread_t threads[WORKERS];
    worker workers[WORKERS];
    int per = (wafers + WORKERS - 1) / WORKERS, failed = 0;
    for (int i = 0; i < WORKERS; i++) {
        int first = i * per, count = first + per > wafers ? wafers - first : per;
        workers[i] = (worker){.lot = lot, .first = first, .count = count > 0 ? count : 0};
        pthread_create(&threads[i], NULL, process, &workers[i]);
    }
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(threads[i], NULL);
        failed += workers[i].failed;
    }
    wafermon_job_set_cpu_scope(lot, WAFERMON_CPU_PROCESS);
    wafermon_job_finish(lot);
    wafermon_status st = wafermon_client_flush(client, -1);
    wafermon_stats stats;
    wafermon_client_stats(client, &stats);
    printf("lot LOT-12345: %d wafers (%d failed); %llu events queued, %llu delivered, %llu "
           "spooled: %s\n",
           wafers, failed, (unsigned long long)stats.queued, (unsigned long long)stats.sent,
           (unsigned long long)stats.spooled, wafermon_status_str(st));
    wafermon_client_close(client, 0);
    wafermon_global_cleanup();
    return st == WAFERMON_OK ? 0 : 2;
}
