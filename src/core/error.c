#include "core/core.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int tr_fail(tr_error *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int tr_fail_errno(tr_error *err, const char *fmt, ...)
{
    int saved = errno;
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < sizeof err->msg)
            snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", strerror(saved));
    }
    errno = saved;
    return -1;
}

void tr_error_prefix(tr_error *err, const char *prefix)
{
    if (!err)
        return;
    size_t plen = strlen(prefix);
    size_t mlen = strnlen(err->msg, sizeof err->msg - 1);
    size_t cap = sizeof err->msg - 1;
    if (plen + 2 >= cap)
        plen = cap - 2;
    size_t keep = mlen + plen + 2 > cap ? cap - plen - 2 : mlen;
    memmove(err->msg + plen + 2, err->msg, keep);
    memcpy(err->msg, prefix, plen);
    err->msg[plen] = ':';
    err->msg[plen + 1] = ' ';
    err->msg[plen + 2 + keep] = '\0';
}

/* The log level is process-wide; it is read far more than written. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static tr_log_level log_level = TR_LOG_INFO;

void tr_log_set_level(tr_log_level level)
{
    pthread_mutex_lock(&log_lock);
    log_level = level;
    pthread_mutex_unlock(&log_lock);
}

void tr_log(tr_log_level level, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warning", "error"};
    pthread_mutex_lock(&log_lock);
    if (level >= log_level) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "trawl: %s: ", names[level]);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    pthread_mutex_unlock(&log_lock);
}

void tr_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("trawl: fatal: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

void *tr_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        tr_die("out of memory allocating %zu bytes", n);
    return p;
}

void *tr_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        tr_die("out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *tr_xrealloc(void *old, size_t n)
{
    void *p = realloc(old, n ? n : 1);
    if (!p)
        tr_die("out of memory reallocating to %zu bytes", n);
    return p;
}

char *tr_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = tr_xmalloc(n);
    memcpy(p, s, n);
    return p;
}

char *tr_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        tr_die("bad format string");
    char *p = tr_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void tr_buf_append(tr_buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = tr_xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void tr_buf_printf(tr_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        tr_die("bad format string");
    s = tr_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    tr_buf_append(b, s, (size_t)n);
    free(s);
}

void tr_buf_free(tr_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int64_t tr_now_unix(void)
{
    return (int64_t)time(NULL);
}

double tr_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void tr_format_time(int64_t unix_ts, char out[32])
{
    time_t t = (time_t)unix_ts;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm);
}
