/*
 * spool.c - the disk spool: batches that could not be delivered wait here, one file each.
 *
 * {WAFERMON_SPOOL_DIR}/{sidecar|direct}/{unix_ns}-{pid}-{seq}-{random}.ndjson, written under
 * a hidden temporary name, fsynced, renamed into place and the directory fsynced: a file
 * either holds a whole batch or does not exist. Names sort by creation time, so replay goes
 * oldest first. Any client using the same directory replays any file, including those a
 * process that is gone left behind; a replaying client holds an flock on the file, and
 * deletes it only after the destination acknowledged every line. Two clients racing for a
 * file at worst deliver it twice: receivers dedupe by event_id.
 * This file never deletes a spool file whose events were not acknowledged.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPOOL_SUFFIX ".ndjson"

static int mkdirs(const char *path) {
    char tmp[4096];
    wm_copy_text(tmp, sizeof tmp, path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode))
        return -1;
    /* Spooled events may carry business data: a sink folder of ours that others can enter
     * (made earlier, or by hand) is made private again. */
    if (st.st_uid == getuid() && (st.st_mode & 077))
        chmod(tmp, 0700);
    return 0;
}

int wm_spool_open(wm_spool *sp, const char *spool_dir, const char *sink, uint64_t max_bytes,
                  char *err, size_t errlen) {
    memset(sp, 0, sizeof *sp);
    wm_buf dir = {0};
    if (wm_buf_printf(&dir, "%s/%s", spool_dir, sink)) {
        wm_format_error(err, errlen, "out of memory");
        return -1;
    }
    if (mkdirs(dir.data)) {
        wm_format_error(err, errlen, "WAFERMON_SPOOL_DIR: cannot create %s: %s", dir.data,
                        strerror(errno));
        wm_buf_free(&dir);
        return -1;
    }
    if (access(dir.data, W_OK | X_OK)) {
        wm_format_error(err, errlen, "WAFERMON_SPOOL_DIR: cannot write to %s: %s", dir.data,
                        strerror(errno));
        wm_buf_free(&dir);
        return -1;
    }
    sp->dir = dir.data;
    sp->max_bytes = max_bytes;
    wm_rng_seed(&sp->rng);
    return 0;
}

void wm_spool_close(wm_spool *sp) {
    free(sp->dir);
    sp->dir = NULL;
}

static int is_spool_file(const char *name) {
    size_t n = strlen(name);
    return name[0] != '.' && n > strlen(SPOOL_SUFFIX) &&
           strcmp(name + n - strlen(SPOOL_SUFFIX), SPOOL_SUFFIX) == 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The spool files' names, sorted (oldest first). */
static char **list_files(wm_spool *sp, size_t *count, uint64_t *bytes) {
    *count = 0;
    if (bytes)
        *bytes = 0;
    DIR *d = opendir(sp->dir);
    if (!d)
        return NULL;
    char **names = NULL;
    size_t cap = 0;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        if (!is_spool_file(ent->d_name))
            continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 16;
            char **more = realloc(names, cap * sizeof *names);
            if (!more)
                break;
            names = more;
        }
        names[*count] = strdup(ent->d_name);
        if (!names[*count])
            break;
        if (bytes) {
            struct stat st;
            if (fstatat(dirfd(d), ent->d_name, &st, 0) == 0)
                *bytes += (uint64_t)st.st_size;
        }
        (*count)++;
    }
    closedir(d);
    if (*count)
        qsort(names, *count, sizeof *names, by_name);
    return names;
}

static void free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

size_t wm_spool_count(wm_spool *sp, uint64_t *bytes) {
    size_t n;
    char **names = list_files(sp, &n, bytes);
    free_names(names, n);
    return n;
}

int wm_spool_write(wm_spool *sp, const wm_batch *batch, char *err, size_t errlen) {
    uint64_t used = 0;
    wm_spool_count(sp, &used);
    if (used + batch->data.len > sp->max_bytes) {
        wm_format_error(err, errlen, "spool %s is full (%llu bytes, cap %llu)", sp->dir,
                        (unsigned long long)used, (unsigned long long)sp->max_bytes);
        return -1;
    }
    char name[128], tmp[4200], final[4200];
    snprintf(name, sizeof name, "%020lld-%ld-%08llu-%08x" SPOOL_SUFFIX,
             (long long)wm_realtime_ns(), (long)getpid(), (unsigned long long)sp->seq++,
             (unsigned)wm_rng_next(&sp->rng));
    snprintf(tmp, sizeof tmp, "%s/.tmp-%s", sp->dir, name);
    snprintf(final, sizeof final, "%s/%s", sp->dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        wm_format_error(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    const char *p = batch->data.data;
    size_t left = batch->data.len;
    int failed = 0;
    while (left && !failed) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            failed = 1;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (failed || fsync(fd)) {
        wm_format_error(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, final)) {
        wm_format_error(err, errlen, "cannot rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    int dfd = open(sp->dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

/* Read a whole file into a batch. */
static int read_batch(int fd, wm_batch *batch) {
    wm_buf raw = {0};
    char chunk[65536];
    ssize_t r;
    while ((r = read(fd, chunk, sizeof chunk)) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            wm_buf_free(&raw);
            return -1;
        }
        if (wm_buf_append(&raw, chunk, (size_t)r)) {
            wm_buf_free(&raw);
            return -1;
        }
    }
    int rc = wm_batch_from_ndjson(batch, raw.data ? raw.data : "", raw.len);
    wm_buf_free(&raw);
    return rc;
}

size_t wm_spool_replay(wm_spool *sp, wm_spool_send_fn send, void *ctx, size_t *remaining) {
    size_t n, replayed = 0;
    char **names = list_files(sp, &n, NULL);
    wm_batch batch = {0};
    for (size_t i = 0; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", sp->dir, names[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) /* another client took it meanwhile */
            continue;
        struct stat st;
        if (flock(fd, LOCK_EX | LOCK_NB) || fstat(fd, &st) || st.st_nlink == 0) {
            close(fd); /* another client is replaying it, or just did */
            continue;
        }
        if (read_batch(fd, &batch)) {
            close(fd);
            break;
        }
        if (send(ctx, &batch) != 0) {
            close(fd);
            break; /* the destination is still down: keep order, try later */
        }
        replayed += batch.n;
        unlink(path);
        close(fd);
    }
    wm_batch_free(&batch);
    free_names(names, n);
    *remaining = wm_spool_count(sp, NULL);
    return replayed;
}
