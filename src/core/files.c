#include "core/core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int tr_mkdir_p(const char *path, int mode, tr_error *err)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return tr_fail(err, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
            return tr_fail_errno(err, "cannot create directory %s", buf);
        *p = '/';
    }
    if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
        return tr_fail_errno(err, "cannot create directory %s", buf);
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
        return tr_fail(err, "%s exists and is not a directory", buf);
    return 0;
}

int tr_fsync_path(const char *path, tr_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tr_fail_errno(err, "cannot open %s to sync it", path);
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    if (rc != 0)
        return tr_fail_errno(err, "cannot sync %s", path);
    return 0;
}

int tr_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int tr_read_file(const char *path, char **out, size_t *len, tr_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tr_fail_errno(err, "cannot open %s", path);
    tr_buf b = {0};
    char chunk[65536];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            tr_fail_errno(err, "cannot read %s", path);
            close(fd);
            tr_buf_free(&b);
            return -1;
        }
        if (r == 0)
            break;
        tr_buf_append(&b, chunk, (size_t)r);
    }
    close(fd);
    if (!b.data)
        tr_buf_append(&b, "", 0);
    *out = b.data;
    if (len)
        *len = b.len;
    return 0;
}

int tr_read_file_max(const char *path, size_t max, char **out, size_t *len, tr_error *err)
{
    /* O_NONBLOCK: opening a FIFO must not wait for a writer before we can refuse it. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return tr_fail_errno(err, "cannot open %s", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return tr_fail_errno(err, "cannot stat %s", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return tr_fail(err, "%s is not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return tr_fail(err, "%s is larger than %zu bytes", path, max);
    }
    size_t cap = (size_t)st.st_size;
    char *buf = tr_xmalloc(cap + 1);
    size_t got = 0;
    for (;;) {
        /* The file may grow while we read: never past what was checked. */
        if (got == cap) {
            char probe;
            ssize_t r = read(fd, &probe, 1);
            if (r > 0) {
                close(fd);
                free(buf);
                return tr_fail(err, "%s changed while it was read", path);
            }
            if (r < 0 && errno == EINTR)
                continue;
            break;
        }
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            tr_fail_errno(err, "cannot read %s", path);
            close(fd);
            free(buf);
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = 0;
    *out = buf;
    if (len)
        *len = got;
    return 0;
}

int tr_map_fd(tr_map *m, int fd, tr_error *err)
{
    struct stat st;
    m->data = NULL;
    m->len = 0;
    if (fstat(fd, &st) != 0)
        return tr_fail_errno(err, "cannot stat file");
    if (!S_ISREG(st.st_mode))
        return tr_fail(err, "not a regular file");
    if (st.st_size == 0)
        return 0;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        return tr_fail_errno(err, "cannot map file");
    m->data = p;
    m->len = (size_t)st.st_size;
    return 0;
}

int tr_map_open(tr_map *m, const char *path, tr_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tr_fail_errno(err, "cannot open %s", path);
    int rc = tr_map_fd(m, fd, err);
    close(fd);
    if (rc != 0)
        tr_error_prefix(err, path);
    return rc;
}

void tr_map_close(tr_map *m)
{
    if (m->data && m->len)
        munmap((void *)m->data, m->len);
    m->data = NULL;
    m->len = 0;
}

int tr_list_dir(const char *dir, char ***names_out, size_t *n_out)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = tr_xrealloc(names, cap * sizeof *names);
        }
        names[n++] = tr_xstrdup(e->d_name);
    }
    closedir(d);
    *names_out = names;
    *n_out = n;
    return 0;
}

static long long proc_cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    /* The command name may hold spaces and parentheses: fields count from
     * the last ')'. utime and stime are fields 14 and 15. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (long long)(ut + st);
}

void tr_stall_watch_start(tr_stall_watch *w, pid_t pid)
{
    w->pid = pid;
    w->ticks = -1;
    w->since = tr_monotonic();
}

void tr_stall_watch_output(tr_stall_watch *w)
{
    w->since = tr_monotonic();
}

bool tr_stall_watch_stuck(tr_stall_watch *w, double secs)
{
    long long ticks = proc_cpu_ticks(w->pid);
    double now = tr_monotonic();
    if (ticks < 0 || ticks != w->ticks) {
        w->ticks = ticks;
        w->since = now;
        return false;
    }
    return now - w->since > secs;
}
