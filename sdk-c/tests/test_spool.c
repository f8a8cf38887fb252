/* The disk spool: files hold whole batches, replay goes oldest first and stops at the first
 * failure, a file another client holds is left alone, and - through the public API - what
 * one process spooled because its destination was down is delivered by a client made later
 * in another process. */
#include "../src/internal.h"
#include "testing.h"

#include <errno.h>
#include <sys/file.h>
#include <sys/stat.h>

typedef struct replay_log {
    int fail;
    int calls;
    char firsts[16][64];
} replay_log;

static int record_send(void *ctx, const wm_batch *b) {
    replay_log *log = ctx;
    if (log->calls < 16)
        snprintf(log->firsts[log->calls], 64, "%.*s", (int)(b->offs[1] - 1), b->data.data);
    log->calls++;
    return log->fail ? -1 : 0;
}

static void batch_of(wm_batch *b, const char *text) {
    REQUIRE(wm_batch_from_ndjson(b, text, strlen(text)) == 0);
}

/* 0700 folders and 0600 files whatever the umask; an open sink folder is made private. */
static void test_private(const char *tmp) {
    char dir[600], path[900];
    snprintf(dir, sizeof dir, "%s/private", tmp);
    REQUIRE(mkdir(dir, 0755) == 0 || errno == EEXIST);
    chmod(dir, 0755);
    mode_t old = umask(022);
    wm_spool sp;
    char err[512];
    REQUIRE(wm_spool_open(&sp, tmp, "private", 1 << 20, err, sizeof err) == 0);
    wm_batch b = {0};
    REQUIRE(wm_batch_from_ndjson(&b, "{\"n\":1}\n", 8) == 0);
    REQUIRE(wm_spool_write(&sp, &b, err, sizeof err) == 0);
    umask(old);
    struct stat st;
    REQUIRE(stat(dir, &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    DIR *d = opendir(dir);
    struct dirent *ent;
    int files = 0;
    while ((ent = readdir(d))) {
        if (ent->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
        REQUIRE(stat(path, &st) == 0);
        CHECK((st.st_mode & 0777) == 0600);
        files++;
    }
    closedir(d);
    CHECK(files == 1);
    wm_batch_free(&b);
    wm_spool_close(&sp);
}

static void test_files(const char *tmp) {
    wm_spool sp;
    char err[512];
    REQUIRE(wm_spool_open(&sp, tmp, "unit", 1 << 20, err, sizeof err) == 0);
    wm_batch b = {0};
    batch_of(&b, "{\"n\":1}\n{\"n\":2}\n");
    CHECK(b.n == 2);
    REQUIRE(wm_spool_write(&sp, &b, err, sizeof err) == 0);
    batch_of(&b, "{\"n\":3}\n\n{\"n\":4}"); /* blank lines skipped, last line without \n */
    CHECK(b.n == 2);
    REQUIRE(wm_spool_write(&sp, &b, err, sizeof err) == 0);
    batch_of(&b, "{\"n\":5}\n");
    REQUIRE(wm_spool_write(&sp, &b, err, sizeof err) == 0);
    uint64_t bytes;
    CHECK(wm_spool_count(&sp, &bytes) == 3);
    CHECK(bytes == 16 + 16 + 8);

    replay_log log = {.fail = 1};
    size_t remaining;
    CHECK(wm_spool_replay(&sp, record_send, &log, &remaining) == 0);
    CHECK(log.calls == 1 && remaining == 3); /* stopped at the first failure, kept all */

    /* a file another client holds is skipped, the rest replayed in order */
    char dir[600], path[900];
    snprintf(dir, sizeof dir, "%s/unit", tmp);
    DIR *d = opendir(dir);
    struct dirent *ent;
    char first[300] = "";
    while ((ent = readdir(d)))
        if (ent->d_name[0] != '.' && (!first[0] || strcmp(ent->d_name, first) < 0))
            snprintf(first, sizeof first, "%s", ent->d_name);
    closedir(d);
    snprintf(path, sizeof path, "%s/%s", dir, first);
    int held = open(path, O_RDONLY);
    REQUIRE(held >= 0 && flock(held, LOCK_EX) == 0);
    log = (replay_log){0};
    CHECK(wm_spool_replay(&sp, record_send, &log, &remaining) == 3);
    CHECK(log.calls == 2 && remaining == 1);
    CHECK_STR(log.firsts[0], "{\"n\":3}");
    CHECK_STR(log.firsts[1], "{\"n\":5}");
    close(held);
    log = (replay_log){0};
    CHECK(wm_spool_replay(&sp, record_send, &log, &remaining) == 2);
    CHECK_STR(log.firsts[0], "{\"n\":1}");
    CHECK(remaining == 0 && wm_spool_count(&sp, NULL) == 0);

    /* the cap: a batch that does not fit is refused, with the reason */
    wm_buf big = {0};
    for (int i = 0; i < 70000; i++)
        wm_buf_puts(&big, "{\"pad\":\"xxxxxxxx\"}\n");
    batch_of(&b, big.data);
    CHECK(wm_spool_write(&sp, &b, err, sizeof err) == -1);
    CHECK(strstr(err, "is full") != NULL);
    wm_buf_free(&big);
    wm_batch_free(&b);
    wm_spool_close(&sp);
}

/* Child process: a client whose file tree cannot be written spools, closes and exits. */
static void spool_in_child(const char *url, const char *spool) {
    clear_wafermon_env();
    setenv("WAFERMON_MODE", "direct", 1);
    setenv("WAFERMON_DIRECT_URL", url, 1);
    setenv("WAFERMON_SPOOL_DIR", spool, 1);
    setenv("WAFERMON_SITE_ID", "fab1", 1);
    setenv("WAFERMON_MAX_RETRIES", "1", 1);
    setenv("WAFERMON_RETRY_BASE_DELAY", "10ms", 1);
    wafermon_global_init();
    wafermon_client *c;
    char err[512];
    if (wafermon_client_new_from_env(&c, err, sizeof err) != WAFERMON_OK) {
        fprintf(stderr, "child: %s\n", err);
        _exit(2);
    }
    wafermon_app app = {.name = "restart-test"};
    for (int i = 0; i < 10; i++) {
        char id[32];
        snprintf(id, sizeof id, "restart-job-%d", i);
        wafermon_job_options o = {.app = &app, .entity_id = id};
        wafermon_job *job;
        if (wafermon_job_start(c, &o, &job, err, sizeof err) != WAFERMON_OK ||
            wafermon_job_finish(job) != WAFERMON_OK)
            _exit(3);
    }
    int st = wafermon_client_close(c, 1.0); /* cannot deliver: spools */
    wafermon_global_cleanup();
    _exit(st == WAFERMON_ERR_TIMEOUT ? 0 : 4);
}

static void test_restart(const char *tmp) {
    char blocker[600], url[800], spool[600], root[700];
    snprintf(blocker, sizeof blocker, "%s/blocker", tmp);
    snprintf(root, sizeof root, "%s/blocker/events", tmp);
    snprintf(url, sizeof url, "file://%s", root);
    snprintf(spool, sizeof spool, "%s/spool-restart", tmp);
    FILE *f = fopen(blocker, "w"); /* a file where the tree's parent folder should be */
    REQUIRE(f);
    fclose(f);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0)
        spool_in_child(url, spool);
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* the destination works again; a new client in this process replays the child's spool */
    unlink(blocker);
    REQUIRE(mkdir(blocker, 0755) == 0);
    clear_wafermon_env();
    setenv("WAFERMON_MODE", "direct", 1);
    setenv("WAFERMON_DIRECT_URL", url, 1);
    setenv("WAFERMON_SPOOL_DIR", spool, 1);
    wafermon_client *c;
    char err[512];
    REQUIRE(wafermon_client_new_from_env(&c, err, sizeof err) == WAFERMON_OK);
    CHECK(wafermon_client_flush(c, 10) == WAFERMON_OK);
    wafermon_stats st;
    wafermon_client_stats(c, &st);
    CHECK(st.replayed == 20 && st.sent == 20 && st.spool_files == 0);
    CHECK(wafermon_client_close(c, 5) == WAFERMON_OK);
    cJSON *events = cJSON_CreateArray();
    collect_jsonl(root, events);
    CHECK(cJSON_GetArraySize(events) == 20);
    for (int i = 0; i < 10; i++) {
        char id[32];
        snprintf(id, sizeof id, "restart-job-%d", i);
        int started = 0, finished = 0;
        cJSON *e;
        cJSON_ArrayForEach(e, events) {
            if (jstr(e, "entity.id") && !strcmp(jstr(e, "entity.id"), id)) {
                started += !strcmp(jstr(e, "kind"), "started");
                finished += !strcmp(jstr(e, "kind"), "finished");
            }
        }
        CHECK(started == 1 && finished == 1);
    }
    cJSON_Delete(events);
}

int main(void) {
    char *tmp = make_temp_dir();
    test_private(tmp);
    test_files(tmp);
    test_restart(tmp);
    remove_tree(tmp);
    free(tmp);
    return test_result("test_spool");
}
