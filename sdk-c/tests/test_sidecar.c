/* End to end against the REAL `wafermon sidecar` (a throw-away site config whose backend is
 * the filesystem backend): what the C SDK sends is validated by the sidecar against the
 * schema, stored, routed, and read back here from the files the backend wrote. Then the
 * sidecar is stopped, a client in another process spools, the sidecar comes back, and a new
 * client replays the spool: every acknowledged event arrives. */
#include "../src/internal.h"
#include "testing.h"

#include <math.h>

static char tmp_dir[512];
static sidecar sc;

static void configure(const char *url, const char *spool) {
    clear_wafermon_env();
    setenv("WAFERMON_SIDECAR_URL", url, 1);
    setenv("WAFERMON_SITE_ID", "fab1", 1);
    setenv("WAFERMON_SPOOL_DIR", spool, 1);
    setenv("WAFERMON_FLUSH_INTERVAL", "50ms", 1);
    setenv("WAFERMON_REPLAY_INTERVAL", "200ms", 1);
    setenv("WAFERMON_MAX_RETRIES", "1", 1);
    setenv("WAFERMON_RETRY_BASE_DELAY", "10ms", 1);
}

/* The backend writes asynchronously after the sidecar's 202: wait for want events. */
static cJSON *wait_for_events(int want) {
    for (int i = 0; i < 300; i++) {
        cJSON *events = cJSON_CreateArray();
        collect_jsonl(sc.events_root, events);
        if (cJSON_GetArraySize(events) >= want)
            return events;
        cJSON_Delete(events);
        sleep_s(0.1);
    }
    cJSON *events = cJSON_CreateArray();
    collect_jsonl(sc.events_root, events);
    fprintf(stderr, "only %d of %d events reached the backend (sidecar log: %s)\n",
            cJSON_GetArraySize(events), want, sc.log);
    return events;
}

static cJSON *event_of(cJSON *events, const char *entity_id, const char *kind) {
    cJSON *e;
    cJSON_ArrayForEach(e, events) {
        const char *id = jstr(e, "entity.id"), *k = jstr(e, "kind");
        if (id && k && !strcmp(id, entity_id) && !strcmp(k, kind))
            return e;
    }
    fprintf(stderr, "no %s event of %s\n", kind, entity_id);
    return NULL;
}

static void test_lifecycle(void) {
    char spool[700], err[512];
    snprintf(spool, sizeof spool, "%s/sdk-spool", tmp_dir);
    configure(sc.url, spool);
    wafermon_client *c;
    REQUIRE(wafermon_client_new_from_env(&c, err, sizeof err) == WAFERMON_OK);

    wafermon_app app = {.name = "wafer-process", .version = "2.1.0",
                        .app_id = "7c9e6679-7425-40de-944b-e07fc1f90ae7"};
    wafermon_job_options lot = {.app = &app, .business_key = "LOT-12345",
                                .metadata = "{\"tool\":\"etch-07\",\"recipe\":\"POLY-3\"}"};
    wafermon_job *job, *w1, *w2;
    REQUIRE(wafermon_job_start(c, &lot, &job, err, sizeof err) == WAFERMON_OK);
    char job_id[64];
    snprintf(job_id, sizeof job_id, "%s", wafermon_job_id(job));
    wafermon_job_options o1 = {.app = &app, .sub_key = "wafer-01", .entity_id = "lot12345-w01"};
    wafermon_job_options o2 = {.app = &app, .sub_key = "wafer-02", .entity_id = "lot12345-w02"};
    REQUIRE(wafermon_subjob_start(job, &o1, &w1, err, sizeof err) == WAFERMON_OK);
    REQUIRE(wafermon_subjob_start(job, &o2, &w2, err, sizeof err) == WAFERMON_OK);
    CHECK(wafermon_job_progress(w1, 0.5, "{\"chamber\":\"B\"}") == WAFERMON_OK);
    volatile double x = 0;
    for (int i = 0; i < 20000000; i++) /* some CPU for the figures */
        x += i * 0.5;
    CHECK(wafermon_job_finish(w1) == WAFERMON_OK);
    CHECK(wafermon_job_fail(w2, "EtchError", "chamber pressure out of range \xC2\xB5",
                            "at etch.c:42\nat lot.c:7") == WAFERMON_OK);
    CHECK(wafermon_job_progress(job, NAN, "{\"recipe\":\"POLY-4\",\"wafers\":2}") == WAFERMON_OK);
    CHECK(wafermon_job_finish(job) == WAFERMON_OK);
    const char *wire = "{\"schema_version\":1,\"event_id\":\"3f0c1e8a-2b4d-4c6e-8f10-a1b2c3d4e5f6\","
                       "\"kind\":\"started\",\"time\":\"2026-11-28T09:30:00Z\",\"site_id\":\"fab1\","
                       "\"app\":{\"name\":\"etch\"},\"entity\":{\"type\":\"job\",\"id\":\"wire-1\"}}";
    const char *bad = "{\"schema_version\":1,\"kind\":\"started\"}"; /* no event_id etc. */
    const char *batch[] = {wire, bad};
    size_t queued = 0;
    CHECK(wafermon_emit_batch(c, batch, NULL, 2, &queued) == WAFERMON_OK && queued == 2);
    CHECK(wafermon_client_flush(c, 30) == WAFERMON_OK);
    wafermon_stats st;
    wafermon_client_stats(c, &st);
    CHECK(st.queued == 10 && st.sent == 9 && st.rejected == 1 && st.spooled == 0);
    CHECK(wafermon_client_close(c, 5) == WAFERMON_OK);

    cJSON *events = wait_for_events(9);
    CHECK(cJSON_GetArraySize(events) == 9);
    cJSON *e = event_of(events, job_id, "started");
    if (e) {
        CHECK_STR(jstr(e, "entity.type"), "job");
        CHECK_STR(jstr(e, "entity.business_key"), "LOT-12345");
        CHECK_STR(jstr(e, "app.app_id"), "7c9e6679-7425-40de-944b-e07fc1f90ae7");
        CHECK_STR(jstr(e, "metadata.tool"), "etch-07");
        CHECK_STR(jstr(e, "source.sdk"), "wafermon-sdk-c");
        CHECK(jnum(e, "source.pid") == getpid());
    }
    if ((e = event_of(events, "lot12345-w01", "progress"))) {
        CHECK(jnum(e, "metrics.progress") == 0.5 && jnum(e, "metrics.duration_s") >= 0);
        CHECK_STR(jstr(e, "metadata.chamber"), "B");
        CHECK_STR(jstr(e, "entity.parent_id"), job_id);
    }
    if ((e = event_of(events, "lot12345-w01", "finished"))) {
        CHECK(jnum(e, "metrics.cpu_user_s") > 0.005); /* the loop above, this thread's */
        CHECK(jnum(e, "metrics.cpu_system_s") >= 0 && jnum(e, "metrics.mem_max_mb") > 1);
        CHECK(jnum(e, "metrics.duration_s") >= jnum(e, "metrics.cpu_user_s") * 0.5);
    }
    if ((e = event_of(events, "lot12345-w02", "failed"))) {
        CHECK_STR(jstr(e, "error.type"), "EtchError");
        CHECK_STR(jstr(e, "error.message"), "chamber pressure out of range \xC2\xB5");
        CHECK_STR(jstr(e, "error.stack"), "at etch.c:42\nat lot.c:7");
    }
    if ((e = event_of(events, job_id, "progress"))) {
        CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "metrics"), "progress") == NULL ||
              cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "metrics"), "progress")));
        CHECK_STR(jstr(e, "metadata.recipe"), "POLY-4");
        CHECK_STR(jstr(e, "metadata.tool"), "etch-07");
    }
    if ((e = event_of(events, job_id, "finished")))
        CHECK(jnum(e, "metadata.wafers") == 2);
    CHECK(event_of(events, "wire-1", "started") != NULL);
    cJSON_Delete(events);
}

/* In a child process: the sidecar is down; emit, close (spools), exit. */
static void emit_offline(const char *url, const char *spool) {
    configure(url, spool);
    wafermon_global_init();
    wafermon_client *c;
    char err[512];
    if (wafermon_client_new_from_env(&c, err, sizeof err) != WAFERMON_OK)
        _exit(2);
    wafermon_app app = {.name = "offline"};
    for (int i = 0; i < 5; i++) {
        char id[32];
        snprintf(id, sizeof id, "offline-%d", i);
        wafermon_job_options o = {.app = &app, .entity_id = id};
        wafermon_job *job;
        if (wafermon_job_start(c, &o, &job, err, sizeof err) || wafermon_job_finish(job))
            _exit(3);
    }
    wafermon_stats st;
    int rc = wafermon_client_close(c, 0.5) == WAFERMON_ERR_TIMEOUT ? 0 : 4;
    (void)st;
    wafermon_global_cleanup();
    _exit(rc);
}

static void test_spool_across_processes(void) {
    char spool[700], err[512];
    snprintf(spool, sizeof spool, "%s/sdk-spool-2", tmp_dir);
    int port = sc.port;
    char url[64];
    snprintf(url, sizeof url, "%s", sc.url);
    sidecar_stop(&sc);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0)
        emit_offline(url, spool);
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    REQUIRE(sidecar_start(&sc, tmp_dir, port) == 0);
    configure(sc.url, spool);
    wafermon_client *c;
    REQUIRE(wafermon_client_new_from_env(&c, err, sizeof err) == WAFERMON_OK);
    CHECK(wafermon_client_flush(c, 30) == WAFERMON_OK);
    wafermon_stats st;
    wafermon_client_stats(c, &st);
    CHECK(st.replayed == 10 && st.spool_files == 0);
    CHECK(wafermon_client_close(c, 5) == WAFERMON_OK);
    cJSON *events = wait_for_events(19);
    CHECK(cJSON_GetArraySize(events) == 19);
    for (int i = 0; i < 5; i++) {
        char id[32];
        snprintf(id, sizeof id, "offline-%d", i);
        CHECK(event_of(events, id, "started") && event_of(events, id, "finished"));
    }
    cJSON_Delete(events);
}

int main(void) {
    char *tmp = make_temp_dir();
    snprintf(tmp_dir, sizeof tmp_dir, "%s", tmp);
    free(tmp);
    wafermon_global_init();
    if (sidecar_start(&sc, tmp_dir, 0) != 0) {
        fprintf(stderr, "FAIL: the wafermon sidecar did not start\n");
        return 1;
    }
    test_lifecycle();
    test_spool_across_processes();
    sidecar_stop(&sc);
    if (!test_failures)
        remove_tree(tmp_dir);
    else
        fprintf(stderr, "kept %s for inspection\n", tmp_dir);
    clear_wafermon_env();
    wafermon_global_cleanup();
    return test_result("test_sidecar");
}
