/*
 * testing.h - the ctest suite's small harness: CHECK macros, temporary folders, a clean
 * WAFERMON_* environment, and a real `wafermon sidecar` started for a test.
 *
 * A test that needs a server exits 77 (ctest: skipped) when the server is not available,
 * unless CI or WAFERMON_REQUIRE_SERVERS is set: then it fails (exit 1) saying what is missing.
 */
#ifndef WAFERMON_TESTING_H
#define WAFERMON_TESTING_H

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int test_failures = 0;

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);         \
            test_failures++;                                                                 \
        }                                                                                    \
    } while (0)

#define CHECK_STR(a, b)                                                                      \
    do {                                                                                     \
        const char *a_ = (a), *b_ = (b);                                                     \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                             \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s\n  got:      %s\n  expected: %s\n", \
                    __FILE__, __LINE__, #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");         \
            test_failures++;                                                                 \
        }                                                                                    \
    } while (0)

#define REQUIRE(cond)                                                                        \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond);       \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

static inline int test_result(const char *name) {
    if (test_failures)
        fprintf(stderr, "%s: %d check(s) failed\n", name, test_failures);
    else
        fprintf(stderr, "%s: all checks passed\n", name);
    return test_failures ? 1 : 0;
}

/* Exit 77 (skip) or, when servers are required, 1. */
static inline void need_server(const char *what) {
    const char *ci = getenv("CI"), *req = getenv("WAFERMON_REQUIRE_SERVERS");
    if ((ci && *ci && strcmp(ci, "0") && strcmp(ci, "false")) ||
        (req && *req && strcmp(req, "0"))) {
        fprintf(stderr, "FAIL: %s (CI or WAFERMON_REQUIRE_SERVERS is set, so this test must "
                        "not be skipped)\n", what);
        exit(1);
    }
    fprintf(stderr, "SKIP: %s\n", what);
    exit(77);
}

/* Remove every WAFERMON_* variable from the environment. */
static inline void clear_wafermon_env(void) {
    for (;;) {
        char name[256] = {0};
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "WAFERMON_", 9) == 0) {
                size_t n = strcspn(*e, "=");
                if (n < sizeof name)
                    memcpy(name, *e, n);
                break;
            }
        }
        if (!name[0])
            return;
        unsetenv(name);
    }
}

static inline char *make_temp_dir(void) {
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/wafermon-c-test-XXXXXX", base && *base ? base : "/tmp");
    char *dir = mkdtemp(tmpl);
    REQUIRE(dir != NULL);
    return strdup(dir);
}

static inline void remove_tree(const char *path) {
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", path);
}

static inline int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    REQUIRE(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

static inline void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static size_t discard_body(char *d, size_t s, size_t n, void *u) {
    (void)d;
    (void)u;
    return s * n;
}

static inline long http_get_status(const char *url) {
    CURL *h = curl_easy_init();
    long status = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 1000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_body);
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    return status;
}

/* The wafermon command: WAFERMON_BIN (env, else the CMake cache value), else PATH. */
static const char *find_wafermon(void) {
    static char found[4096];
    const char *env = getenv("WAFERMON_BIN");
#ifdef WAFERMON_BIN_DEFAULT
    if (!env || !*env)
        env = WAFERMON_BIN_DEFAULT;
#endif
    if (env && *env)
        return access(env, X_OK) == 0 ? env : NULL;
    const char *path = getenv("PATH");
    if (!path)
        return NULL;
    char *copy = strdup(path), *save = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        snprintf(found, sizeof found, "%s/wafermon", dir);
        if (access(found, X_OK) == 0) {
            free(copy);
            return found;
        }
    }
    free(copy);
    return NULL;
}

typedef struct sidecar {
    pid_t pid;
    int port;
    char url[64];
    char events_root[1024]; /* the filesystem backend's root */
    char log[1024];
} sidecar;

/* Start `wafermon sidecar` in workdir on port (0: a free one) with a filesystem backend
 * writing under workdir/events. Returns 0 once /v1/healthz answers 200. */
static inline int sidecar_start(sidecar *sc, const char *workdir, int port) {
    const char *exe = find_wafermon();
    if (!exe)
        need_server("the wafermon command was not found (set WAFERMON_BIN or -DWAFERMON_BIN=)");
    memset(sc, 0, sizeof *sc);
    sc->port = port ? port : free_port();
    snprintf(sc->url, sizeof sc->url, "http://127.0.0.1:%d", sc->port);
    snprintf(sc->events_root, sizeof sc->events_root, "%s/events", workdir);
    snprintf(sc->log, sizeof sc->log, "%s/sidecar-%d.log", workdir, sc->port);
    char config[1100];
    snprintf(config, sizeof config, "%s/site-%d.yaml", workdir, sc->port);
    FILE *f = fopen(config, "w");
    REQUIRE(f != NULL);
    fprintf(f,
            "site_id: fab1\n"
            "sidecar: {listen: \"127.0.0.1:%d\", spool: {dir: \"%s/sidecar-spool\"}}\n"
            "backends:\n"
            "  - {name: archive, type: filesystem, config: {root: \"%s\", fsync: true}}\n",
            sc->port, workdir, sc->events_root);
    fclose(f);
    sc->pid = fork();
    REQUIRE(sc->pid >= 0);
    if (sc->pid == 0) {
        int fd = open(sc->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(exe, exe, "sidecar", "--config", config, "--log-level", "warning", (char *)NULL);
        perror("exec wafermon");
        _exit(127);
    }
    char health[128];
    snprintf(health, sizeof health, "%s/v1/healthz", sc->url);
    for (int i = 0; i < 600; i++) {
        if (http_get_status(health) == 200)
            return 0;
        int status;
        if (waitpid(sc->pid, &status, WNOHANG) == sc->pid) {
            fprintf(stderr, "the sidecar exited during start-up; its log %s:\n", sc->log);
            char cmd[1200];
            snprintf(cmd, sizeof cmd, "tail -n 30 '%s' >&2", sc->log);
            if (system(cmd) != 0) {
            }
            sc->pid = 0;
            return -1;
        }
        sleep_s(0.1);
    }
    fprintf(stderr, "the sidecar did not become healthy in 60 s (log: %s)\n", sc->log);
    return -1;
}

static inline void sidecar_stop(sidecar *sc) {
    if (sc->pid <= 0)
        return;
    kill(sc->pid, SIGTERM);
    for (int i = 0; i < 300; i++) {
        if (waitpid(sc->pid, NULL, WNOHANG) == sc->pid) {
            sc->pid = 0;
            return;
        }
        sleep_s(0.1);
    }
    kill(sc->pid, SIGKILL);
    waitpid(sc->pid, NULL, 0);
    sc->pid = 0;
}

/* Every line of every *.jsonl file under root, parsed, appended to the array. */
static inline void collect_jsonl(const char *root, cJSON *into) {
    DIR *d = opendir(root);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", root, e->d_name);
        struct stat st;
        if (stat(path, &st))
            continue;
        if (S_ISDIR(st.st_mode)) {
            collect_jsonl(path, into);
            continue;
        }
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 6, ".jsonl"))
            continue;
        FILE *f = fopen(path, "r");
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while (f && (len = getline(&line, &cap, f)) > 0) {
            cJSON *doc = cJSON_ParseWithLength(line, (size_t)len);
            if (doc)
                cJSON_AddItemToArray(into, doc);
            else
                fprintf(stderr, "unparsable line in %s: %s", path, line);
        }
        free(line);
        if (f)
            fclose(f);
    }
    closedir(d);
}

static inline cJSON *find_event(cJSON *events, const char *field, const char *value) {
    cJSON *e;
    cJSON_ArrayForEach(e, events) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(e, field);
        if (cJSON_IsString(v) && strcmp(v->valuestring, value) == 0)
            return e;
    }
    return NULL;
}

static inline const char *jstr(cJSON *obj, const char *path) {
    /* "a.b.c" */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    cJSON *cur = obj;
    char *save = NULL;
    for (char *part = strtok_r(buf, ".", &save); part && cur; part = strtok_r(NULL, ".", &save))
        cur = cJSON_GetObjectItemCaseSensitive(cur, part);
    return cJSON_IsString(cur) ? cur->valuestring : NULL;
}

static inline double jnum(cJSON *obj, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    cJSON *cur = obj;
    char *save = NULL;
    for (char *part = strtok_r(buf, ".", &save); part && cur; part = strtok_r(NULL, ".", &save))
        cur = cJSON_GetObjectItemCaseSensitive(cur, part);
    return cJSON_IsNumber(cur) ? cur->valuedouble : -1;
}

#endif
