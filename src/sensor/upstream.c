/* sensor/upstream: events to the trawl server in batches, through a disk
 * spool. A batch is written (write, fsync, rename) before it is sent, and a
 * spooled batch is deleted only after the server answered 2xx, so a server
 * that is down or restarting loses nothing and a killed sensor loses at most
 * the batch still gathering in memory. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "sensor/upstream.h"

#define BATCH_EVENTS_MAX 10000
#define BATCH_BYTES_MAX (8u << 20)   /* half the server's 16 MiB limit */
#define BACKOFF_MAX 60

struct tr_upstream {
    char host[300], port[8], path[512];
    char *key, *spool;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    pthread_t thread;
    tr_buf batch;                 /* ",event,event" (leading comma dropped when written) */
    size_t nbatch;
    unsigned seq;
};

static int parse_url(tr_upstream *u, const char *url, tr_error *err)
{
    if (strncmp(url, "http://", 7) != 0)
        return tr_fail(err, "upstream URL must start with http:// (put TLS in front with a proxy): %s",
                       url);
    const char *h = url + 7, *slash = strchr(h, '/');
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    char hostport[300];
    if (hl == 0 || hl >= sizeof hostport)
        return tr_fail(err, "upstream URL has no host: %s", url);
    memcpy(hostport, h, hl);
    hostport[hl] = 0;
    char *colon = strrchr(hostport, ':');
    if (hostport[0] == '[') {   /* [v6]:port */
        char *rb = strchr(hostport, ']');
        if (!rb)
            return tr_fail(err, "upstream URL has a bad IPv6 host: %s", url);
        *rb = 0;
        snprintf(u->host, sizeof u->host, "%s", hostport + 1);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        if (colon)
            *colon = 0;
        snprintf(u->host, sizeof u->host, "%s", hostport);
    }
    snprintf(u->port, sizeof u->port, "%s", colon ? colon + 1 : "80");
    const char *base = slash ? slash : "";
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;
    if (bl > 400)
        return tr_fail(err, "upstream URL path is too long: %s", url);
    snprintf(u->path, sizeof u->path, "%.*s/api/noise/events", (int)bl, base);
    return 0;
}

/* One POST; the HTTP status, or -1 when the server could not be reached. */
static int post(tr_upstream *u, const char *body, size_t n, char *why, size_t whysz)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int g = getaddrinfo(u->host, u->port, &hints, &ai);
    if (g != 0) {
        snprintf(why, whysz, "%s: %s", u->host, gai_strerror(g));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        struct timeval tv = {.tv_sec = 15};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        snprintf(why, whysz, "connect %s:%s: %s", u->host, u->port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return -1;
    char *head = tr_xasprintf("POST %s HTTP/1.1\r\nHost: %s:%s\r\nAuthorization: Bearer %s\r\n"
                              "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                              "Connection: close\r\n\r\n",
                              u->path, u->host, u->port, u->key, n);
    int ok = tr_write_all(fd, head, strlen(head)) == 0 && tr_write_all(fd, body, n) == 0;
    free(head);
    if (!ok) {
        snprintf(why, whysz, "sending to %s:%s: %s", u->host, u->port, strerror(errno));
        close(fd);
        return -1;
    }
    char resp[1024];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof resp - 1 && (r = read(fd, resp + got, sizeof resp - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    resp[got] = 0;
    int status;
    if (sscanf(resp, "HTTP/%*d.%*d %d", &status) != 1) {
        snprintf(why, whysz, "no HTTP answer from %s:%s", u->host, u->port);
        return -1;
    }
    const char *b = strstr(resp, "\r\n\r\n");
    snprintf(why, whysz, "HTTP %d %.200s", status, b ? b + 4 : "");
    return status;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The spooled batches, oldest first. */
static size_t spooled(tr_upstream *u, char ***names)
{
    size_t n = 0, k = 0;
    *names = NULL;
    if (tr_list_dir(u->spool, names, &n) != 0) {
        *names = NULL;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (strncmp((*names)[i], "batch-", 6) == 0)
            (*names)[k++] = (*names)[i];
        else
            free((*names)[i]);
    }
    if (k > 1)
        qsort(*names, k, sizeof **names, by_name);
    return k;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Sends the oldest spooled batch: 1 sent (or set aside), 0 none left, -1 failed. */
static int send_one(tr_upstream *u, char *why, size_t whysz)
{
    char **names;
    size_t n = spooled(u, &names);
    if (n == 0) {
        free(names);
        return 0;
    }
    char *path = tr_xasprintf("%s/%s", u->spool, names[0]);
    char *body;
    size_t len;
    tr_error err;
    int rc = -1;
    if (tr_read_file(path, &body, &len, &err) != 0) {
        /* The reason is shown in a log line: a truncated one is fine. */
        snprintf(why, whysz, "%.*s", (int)(whysz > 1 ? whysz - 1 : 0), err.msg);
    } else {
        int status = post(u, body, len, why, whysz);
        free(body);
        if (status >= 200 && status < 300) {
            unlink(path);
            tr_fsync_path(u->spool, &err);
            tr_log(TR_LOG_INFO, "upstream: sent %s", names[0]);
            rc = 1;
        } else if (status >= 400 && status < 500) {
            /* The server refused the batch whole; resending would fail the
             * same way and block every later batch. Kept for a human. */
            char *aside = tr_xasprintf("%s/rejected-%s", u->spool, names[0] + 6);
            rename(path, aside);
            tr_log(TR_LOG_ERROR, "upstream: server refused %s (%s); kept as %s", names[0], why,
                   aside);
            free(aside);
            rc = 1;
        }
    }
    free(path);
    free_names(names, n);
    return rc;
}

static void *sender(void *arg)
{
    tr_upstream *u = arg;
    int backoff = 1;
    bool failing = false;
    for (;;) {
        char why[512] = "";
        int r = send_one(u, why, sizeof why);
        pthread_mutex_lock(&u->mu);
        if (u->stop) {
            pthread_mutex_unlock(&u->mu);
            break;
        }
        if (r == 1) {
            if (failing)
                tr_log(TR_LOG_INFO, "upstream: server reachable again");
            failing = false;
            backoff = 1;
            pthread_mutex_unlock(&u->mu);
            continue;
        }
        int wait = 1;
        if (r < 0) {
            if (!failing)
                tr_log(TR_LOG_WARN, "upstream: %s; batches stay spooled in %s, retrying", why,
                       u->spool);
            failing = true;
            wait = backoff;
            backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait;
        pthread_cond_timedwait(&u->cv, &u->mu, &ts);
        bool stop = u->stop;
        pthread_mutex_unlock(&u->mu);
        if (stop)
            break;
    }
    return NULL;
}

tr_upstream *tr_upstream_start(const char *url, const char *key, const char *spool, tr_error *err)
{
    tr_upstream *u = tr_xcalloc(1, sizeof *u);
    if (parse_url(u, url, err) != 0 || tr_mkdir_p(spool, 0700, err) != 0) {
        free(u);
        return NULL;
    }
    u->key = tr_xstrdup(key ? key : "");
    u->spool = tr_xstrdup(spool);
    pthread_mutex_init(&u->mu, NULL);
    pthread_cond_init(&u->cv, NULL);
    char **names;
    size_t n = spooled(u, &names);
    free_names(names, n);
    if (n)
        tr_log(TR_LOG_INFO, "upstream: %zu batches waiting in %s from an earlier run", n, spool);
    if (pthread_create(&u->thread, NULL, sender, u) != 0) {
        tr_fail(err, "cannot start the upstream thread");
        free(u->key);
        free(u->spool);
        free(u);
        return NULL;
    }
    return u;
}

int tr_upstream_flush(tr_upstream *u, tr_error *err)
{
    if (u->nbatch == 0)
        return 0;
    tr_buf b = {0};
    tr_buf_append(&b, "{\"events\": [", 12);
    tr_buf_append(&b, u->batch.data + 1, u->batch.len - 1);
    tr_buf_append(&b, "]}\n", 3);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char *name = tr_xasprintf("batch-%lld%06ld-%06u.json", (long long)ts.tv_sec, ts.tv_nsec / 1000,
                              u->seq++ % 1000000);
    char *tmp = tr_xasprintf("%s/.tmp-%s", u->spool, name);
    char *final = tr_xasprintf("%s/%s", u->spool, name);
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        tr_fail_errno(err, "cannot create %s", tmp);
    } else if (tr_write_all(fd, b.data, b.len) != 0 || fsync(fd) != 0) {
        tr_fail_errno(err, "cannot write %s", tmp);
        close(fd);
        unlink(tmp);
    } else if (close(fd) != 0 || rename(tmp, final) != 0) {
        tr_fail_errno(err, "cannot put %s in place", final);
        unlink(tmp);
    } else if (tr_fsync_path(u->spool, err) == 0) {
        rc = 0;
        tr_log(TR_LOG_DEBUG, "upstream: spooled %s (%zu events)", name, u->nbatch);
    }
    if (rc == 0) {
        u->batch.len = 0;
        u->nbatch = 0;
        pthread_mutex_lock(&u->mu);
        pthread_cond_signal(&u->cv);
        pthread_mutex_unlock(&u->mu);
    }
    free(name);
    free(tmp);
    free(final);
    tr_buf_free(&b);
    return rc;
}

int tr_upstream_add(tr_upstream *u, const json_t *event, tr_error *err)
{
    char *s = json_dumps(event, JSON_COMPACT);
    if (!s)
        tr_die("out of memory");
    tr_buf_append(&u->batch, ",", 1);
    tr_buf_append(&u->batch, s, strlen(s));
    free(s);
    u->nbatch++;
    if (u->nbatch >= BATCH_EVENTS_MAX || u->batch.len >= BATCH_BYTES_MAX)
        return tr_upstream_flush(u, err);
    return 0;
}

size_t tr_upstream_pending(const tr_upstream *u)
{
    return u->nbatch;
}

void tr_upstream_stop(tr_upstream *u)
{
    if (!u)
        return;
    tr_error err;
    size_t n = u->nbatch;
    if (n && tr_upstream_flush(u, &err) != 0)
        tr_log(TR_LOG_ERROR, "upstream: %s; %zu events in the last batch are LOST", err.msg, n);
    pthread_mutex_lock(&u->mu);
    u->stop = true;
    pthread_cond_signal(&u->cv);
    pthread_mutex_unlock(&u->mu);
    pthread_join(u->thread, NULL);
    char **names;
    size_t left = spooled(u, &names);
    free_names(names, left);
    if (left)
        tr_log(TR_LOG_INFO, "upstream: %zu batches stay spooled in %s; the next start sends them",
               left, u->spool);
    pthread_mutex_destroy(&u->mu);
    pthread_cond_destroy(&u->cv);
    tr_buf_free(&u->batch);
    free(u->key);
    free(u->spool);
    free(u);
}
