/* The daemon, per-request state, authentication, body handling, routing. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "http/http_internal.h"
#include "kblink/kblink.h"
#include "noise/noise.h"
#include "hunt/hunt.h"
#include "ingest/ingest.h"

#define JSON_BODY_MAX (1u << 20)
/* POST /api/noise/events: a sensor's batch, up to 10,000 events or 16 MiB. */
#define EVENTS_BODY_MAX (16u << 20)
/* STIX bundles (ATT&CK's is 3.5 MB) come through these routes. */
#define STIX_BODY_MAX ((size_t)HTTP_STIX_BODY_MAX)
#define ANALYZER_POOL 16
/* Hunts running at once; the verification workers are split between them. */
#define HUNT_RUNNERS 2
#define KB_SYNC_SECONDS 120
#define PER_IP_CONNECTIONS 64
#define HUNT_TIME_LIMIT 3600
#define HEADER_TIMEOUT 10
/* Idle seconds allowed once a request is under way (a slow upload, a
 * download the client reads slowly). */
#define REQUEST_TIMEOUT 120
/* How often parked streams (http_stream_park) look for news. */
#define STREAM_TICK_MS 250

struct tr_server {
    struct MHD_Daemon *mhd;
    char *data_dir;
    unsigned port;
    bool anonymous_read;
    uint64_t max_upload;
    unsigned header_timeout;
    unsigned hunt_time_limit;
    struct sockaddr_storage listen_addr;
    char **allowed_hosts;
    size_t n_allowed_hosts;

    pthread_mutex_t lock;     /* guards the analyzer pool and indexer state */
    tr_analyzer *pool[ANALYZER_POOL];
    size_t npool;

    tr_live_queue *live;
    /* In ASan builds, held by the indexer while it indexes and by the live
     * queue and the hunt runners around their verifier forks: the child of
     * a fork taken while the indexer is inside ASan's allocator would hang. */
    pthread_mutex_t fork_lock;

    pthread_t indexer;
    pthread_cond_t index_wake;
    bool index_dirty, stopping;

    pthread_t gnql_warm;      /* builds the GNQL index once, at start */
    pthread_t kbsync;         /* keeps the knowledge base's links current */
    pthread_cond_t kb_wake;   /* only for stopping it */
    bool kbsync_started;
    int kb_sync_seconds;

    unsigned workers;
    pthread_t runners[HUNT_RUNNERS];
    pthread_cond_t hunt_wake;
    bool hunts_dirty;
    struct {
        int64_t id;           /* 0: free slot */
        tr_hunt *h;           /* NULL while being opened */
        char owner[128];      /* the submitter's key name, "" unknown */
    } running[HUNT_RUNNERS];

    /* Streams with nothing to send wait here suspended, not asleep in one
     * of the few worker threads that serve every connection: the streamer
     * resumes them each STREAM_TICK_MS, and all of them before the daemon
     * stops (libmicrohttpd may not stop with connections suspended). */
    pthread_mutex_t park_lock;
    pthread_cond_t park_wake;
    struct MHD_Connection **parked;
    size_t nparked, capparked;
    bool park_closing;
    pthread_t streamer;
    bool streamer_started;
};

typedef enum body_kind { BODY_NONE, BODY_JSON, BODY_MULTIPART, BODY_EVENTS } body_kind;

typedef enum MHD_Result (*handler_fn)(http_request *);

typedef struct route {
    handler_fn fn;
    tr_role need;
    body_kind body;
    const char *rest;
} route;

/* ---- listen address ----------------------------------------------------- */

int tr_parse_listen(const char *spec, struct sockaddr_storage *out, tr_error *err)
{
    memset(out, 0, sizeof *out);
    char host[256];
    const char *colon;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':')
            return tr_fail(err, "bad listen address '%s' (want [ADDR]:PORT)", spec);
        snprintf(host, sizeof host, "%.*s", (int)(close - spec - 1), spec + 1);
        colon = close + 1;
    } else {
        colon = strrchr(spec, ':');
        if (!colon)
            return tr_fail(err, "bad listen address '%s' (want ADDR:PORT)", spec);
        snprintf(host, sizeof host, "%.*s", (int)(colon - spec), spec);
    }
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 0 || port > 65535)
        return tr_fail(err, "bad port in listen address '%s'", spec);
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        return 0;
    }
    return tr_fail(err, "bad address '%s' in '%s' (want a numeric IPv4 or IPv6 address)", host, spec);
}

/* ---- responses ---------------------------------------------------------- */

/* The UI's scripts and styles come from /ui only (no inline script or style:
 * injected markup can do nothing); no other site may frame it
 * (clickjacking) or learn its URLs from a Referer. */
#define CSP "default-src 'none'; script-src 'self'; style-src 'self'; " \
            "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; " \
            "form-action 'self'; frame-ancestors 'none'"

static void common_headers(const http_request *r, struct MHD_Response *resp,
                           const char *content_type)
{
    MHD_add_response_header(resp, "Content-Type", content_type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "Content-Security-Policy", CSP);
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
    if (r->close)
        MHD_add_response_header(resp, "Connection", "close");
}

void http_common_headers(const http_request *r, struct MHD_Response *resp,
                         const char *content_type)
{
    common_headers(r, resp, content_type);
}

enum MHD_Result http_send_text(http_request *r, unsigned status, const char *content_type,
                               const char *body, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    common_headers(r, resp, content_type);
    if (status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"trawl\"");
    enum MHD_Result rc = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result http_send_fd(http_request *r, int fd, uint64_t size, const char *content_type,
                             const char *download_name)
{
    struct MHD_Response *resp = MHD_create_response_from_fd64(size, fd);
    if (!resp) {
        close(fd);
        return MHD_NO;
    }
    common_headers(r, resp, content_type);
    char disp[300];
    snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", download_name);
    MHD_add_response_header(resp, "Content-Disposition", disp);
    enum MHD_Result rc = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return rc;
}

static ssize_t zip_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;                 /* MHD reads in order */
    tr_zip_stream *z = cls;
    tr_error err;
    ssize_t n = tr_zip_stream_read(z, buf, max, &err);
    if (n < 0) {
        tr_log(TR_LOG_WARN, "zip download cut short: %s", err.msg);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    return n ? n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void zip_free(void *cls)
{
    tr_zip_stream_free(cls);
}

/* The archive is made as the client reads it, in libmicrohttpd's reader
 * callback: the handler returns at once, nothing goes to disk, and memory
 * stays at one chunk per download however large the match set. */
enum MHD_Result http_send_aes_zip(http_request *r, const tr_zip_entry *entries, size_t n,
                                  const char *download_name)
{
    tr_error err;
    tr_zip_stream *z = NULL;
    if (tr_zip_stream_new(entries, n, "infected", &z, &err) != 0)
        return http_send_error(r, 500, "%s", err.msg);
    char disp[300];
    snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", download_name);
    return http_send_callback(r, tr_zip_stream_size(z), 64 * 1024, zip_reader, z, zip_free,
                              "application/zip", disp);
}

enum MHD_Result http_send_callback(http_request *r, uint64_t size, size_t block,
                                   MHD_ContentReaderCallback read, void *cls,
                                   MHD_ContentReaderFreeCallback done, const char *content_type,
                                   const char *disposition)
{
    struct MHD_Response *resp = MHD_create_response_from_callback(size, block, read, cls, done);
    if (!resp) {
        done(cls);
        return MHD_NO;
    }
    common_headers(r, resp, content_type);
    if (disposition)
        MHD_add_response_header(resp, "Content-Disposition", disposition);
    enum MHD_Result rc = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result http_send_json(http_request *r, unsigned status, json_t *body)
{
    /* A body jansson refused (text that is not UTF-8) still gets a reply. */
    if (!body) {
        static const char msg[] = "{\"query_status\":\"error\",\"error\":\"the reply could "
                                  "not be encoded\"}";
        return http_send_text(r, 500, "application/json", msg, sizeof msg - 1);
    }
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    if (!text)
        return MHD_NO;
    enum MHD_Result rc = http_send_text(r, status, "application/json", text, strlen(text));
    free(text);
    return rc;
}

enum MHD_Result http_send_error(http_request *r, unsigned status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Messages quote what the client sent (a hash, a name), which need not
     * be UTF-8. */
    char clean[sizeof msg];
    http_text_sanitize(msg, clean, sizeof clean);
    return http_send_json(r, status,
                          json_pack("{s:s, s:s}", "query_status", "error", "error", clean));
}

const char *http_query(http_request *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

/* A browser sends text/plain or a form to any site without asking first; a
 * JSON content type makes it ask (CORS preflight), and trawl answers no.
 * So a page a lab user visits cannot drive the API with the lab's access. */
static bool is_json_media_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    /* application/json, or a JSON dialect: application/stix+json ... */
    const char *end = ct + strcspn(ct, "; \t");
    size_t n = (size_t)(end - ct);
    if (n < 16 || strncasecmp(ct, "application/", 12) != 0)
        return false;
    if (!(n == 16 && strncasecmp(ct + 12, "json", 4) == 0) &&
        !(n > 17 && strncasecmp(end - 5, "+json", 5) == 0))
        return false;
    while (*end == ' ' || *end == '\t')
        end++;
    return *end == 0 || *end == ';';
}

int http_require_json(http_request *r, enum MHD_Result *sent)
{
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (is_json_media_type(ct))
        return 0;
    *sent = http_send_error(r, 415, "send the body as JSON with Content-Type: application/json");
    return -1;
}

json_t *http_json_body(http_request *r, enum MHD_Result *sent)
{
    if (http_require_json(r, sent) != 0)
        return NULL;
    json_error_t jerr;
    json_t *j = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, &jerr);
    if (!j) {
        *sent = http_send_error(r, 400, "malformed JSON body: %s (line %d, column %d)", jerr.text,
                                jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *sent = http_send_error(r, 400, "the JSON body must be an object");
        return NULL;
    }
    return j;
}

/* ---- services ----------------------------------------------------------- */

tr_analyzer *http_analyzer_get(struct tr_server *srv, tr_error *err)
{
    pthread_mutex_lock(&srv->lock);
    tr_analyzer *a = srv->npool ? srv->pool[--srv->npool] : NULL;
    pthread_mutex_unlock(&srv->lock);
    if (!a && tr_analyzer_new(&a, err) != 0)
        return NULL;
    return a;
}

void http_analyzer_put(struct tr_server *srv, tr_analyzer *a)
{
    pthread_mutex_lock(&srv->lock);
    if (srv->npool < ANALYZER_POOL) {
        srv->pool[srv->npool++] = a;
        a = NULL;
    }
    pthread_mutex_unlock(&srv->lock);
    tr_analyzer_free(a);
}

double http_hunt_time_limit(const struct tr_server *srv)
{
    return srv->hunt_time_limit;
}

uint64_t http_max_upload(const struct tr_server *srv)
{
    return srv->max_upload;
}

void http_index_kick(struct tr_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    srv->index_dirty = true;
    pthread_cond_signal(&srv->index_wake);
    pthread_mutex_unlock(&srv->lock);
}

void http_live_kick(struct tr_server *srv, int64_t sample_id)
{
    tr_live_queue_push(srv->live, &sample_id, 1);
}

uint64_t http_live_backlog(struct tr_server *srv)
{
    return tr_live_queue_backlog(srv->live);
}

/* Only ASan's allocator needs it (glibc's malloc is fork-safe): a release
 * build does not make hunts and live scans wait for an indexing pass. */
#if defined(__SANITIZE_ADDRESS__)
#define FORK_GUARD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FORK_GUARD 1
#endif
#endif
#ifndef FORK_GUARD
#define FORK_GUARD 0
#endif

static void verifier_fork_guard(void *arg, bool before)
{
    tr_server *srv = arg;
    if (!FORK_GUARD)
        return;
    if (before)
        pthread_mutex_lock(&srv->fork_lock);
    else
        pthread_mutex_unlock(&srv->fork_lock);
}

static bool server_stopping(void *arg)
{
    tr_server *srv = arg;
    pthread_mutex_lock(&srv->lock);
    bool stop = srv->stopping;
    pthread_mutex_unlock(&srv->lock);
    return stop;
}

/* Uploads land in the store at once; this thread brings the index up to
 * date behind them, so a burst of uploads costs one index commit. */
static void *indexer_main(void *arg)
{
    tr_server *srv = arg;
    pthread_mutex_lock(&srv->lock);
    for (;;) {
        while (!srv->index_dirty && !srv->stopping)
            pthread_cond_wait(&srv->index_wake, &srv->lock);
        if (srv->stopping)
            break;
        srv->index_dirty = false;
        pthread_mutex_unlock(&srv->lock);
        tr_ingest_config cfg = {.data_dir = srv->data_dir, .arg = srv,
                                .should_stop = server_stopping};
        tr_error err;
        if (FORK_GUARD)
            pthread_mutex_lock(&srv->fork_lock);
        if (tr_ingest_update_index(&cfg, NULL, &err) != 0)
            tr_log(TR_LOG_ERROR, "indexing uploads: %s", err.msg);
        if (FORK_GUARD)
            pthread_mutex_unlock(&srv->fork_lock);
        pthread_mutex_lock(&srv->lock);
    }
    pthread_mutex_unlock(&srv->lock);
    return NULL;
}

/* ---- hunt runners ------------------------------------------------------- */

void http_hunts_kick(struct tr_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    srv->hunts_dirty = true;
    pthread_cond_broadcast(&srv->hunt_wake);
    pthread_mutex_unlock(&srv->lock);
}

static bool is_running_here(tr_server *srv, int64_t id)
{
    for (int i = 0; i < HUNT_RUNNERS; i++)
        if (srv->running[i].id == id)
            return true;
    return false;
}

static bool owner_running(tr_server *srv, const char *owner)
{
    for (int i = 0; i < HUNT_RUNNERS; i++)
        if (srv->running[i].id != 0 && strcmp(srv->running[i].owner, owner) == 0)
            return true;
    return false;
}

/* Claims a queued job nobody here runs: its slot, or -1. The oldest job of
 * a submitter with nothing running goes first, so one key cannot hold every
 * runner while another key's hunts wait; alone, a key gets them all. */
static int claim_job(tr_server *srv, int64_t *id)
{
    tr_hunt_job *jobs = NULL;
    size_t n = 0;
    tr_error err;
    if (tr_hunt_list(srv->data_dir, &jobs, &n, &err) != 0) {
        tr_log(TR_LOG_ERROR, "listing hunts: %s", err.msg);
        return -1;
    }
    int slot = -1;
    pthread_mutex_lock(&srv->lock);
    int free_slot = -1;
    for (int k = 0; k < HUNT_RUNNERS && free_slot < 0; k++)
        if (srv->running[k].id == 0)
            free_slot = k;
    size_t pick = n, first = n;
    for (size_t i = n; free_slot >= 0 && i-- > 0;) {       /* newest first: walk back */
        if (jobs[i].status != TR_HUNT_QUEUED || is_running_here(srv, jobs[i].id))
            continue;
        if (first == n)
            first = i;
        if (!owner_running(srv, jobs[i].owner ? jobs[i].owner : "")) {
            pick = i;
            break;
        }
    }
    if (pick == n)
        pick = first;
    if (pick < n) {
        slot = free_slot;
        srv->running[slot].id = jobs[pick].id;
        srv->running[slot].h = NULL;
        snprintf(srv->running[slot].owner, sizeof srv->running[slot].owner, "%s",
                 jobs[pick].owner ? jobs[pick].owner : "");
        *id = jobs[pick].id;
    }
    pthread_mutex_unlock(&srv->lock);
    tr_hunt_list_free(jobs, n);
    return slot;
}

/* Links trawl's data into the knowledge base after it changed: a look every
 * kb_sync_seconds, a sync when anything was committed since (a sync that
 * stores something is followed by another, which then finds nothing). */
static void *kbsync_main(void *arg)
{
    tr_server *srv = arg;
    tr_kblink_watch *w = NULL;
    tr_error err;
    for (;;) {
        pthread_mutex_lock(&srv->lock);
        if (!srv->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += srv->kb_sync_seconds;
            pthread_cond_timedwait(&srv->kb_wake, &srv->lock, &ts);
        }
        bool stop = srv->stopping;
        pthread_mutex_unlock(&srv->lock);
        if (stop)
            break;
        if (!w && tr_kblink_watch_open(srv->data_dir, &w, &err) != 0) {
            tr_log(TR_LOG_WARN, "%s", err.msg);
            continue;
        }
        int changed = tr_kblink_watch_poll(w, &err);
        if (changed < 0) {
            tr_log(TR_LOG_WARN, "%s", err.msg);
            continue;
        }
        if (!changed)
            continue;
        tr_kblink_stats st;
        if (tr_kblink_sync(srv->data_dir, &st, &err) != 0)
            tr_log(TR_LOG_WARN, "kb sync: %s", err.msg);
        else if (st.added || st.updated || st.retired)
            tr_log(TR_LOG_INFO, "kb sync: %zu objects, %zu added, %zu updated, %zu retired",
                   st.objects, st.added, st.updated, st.retired);
    }
    tr_kblink_watch_close(w);
    return NULL;
}

/* The GNQL index (which quick checks read too) is built by whoever needs
 * it first: seconds at a million addresses. Built here at start instead,
 * an analyst's first lookup after a restart does not wait for it. */
static void *gnql_warm_main(void *arg)
{
    tr_server *srv = arg;
    tr_noise *n = NULL;
    tr_error err;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t ips = 0;
    /* It allocates without pause at start, just when the live queue forks
     * a verifier for what the last run left pending (see FORK_GUARD). */
    if (FORK_GUARD)
        pthread_mutex_lock(&srv->fork_lock);
    int rc = tr_noise_open(srv->data_dir, &n, &err) != 0 || tr_noise_gnql_warm(n, &ips, &err) != 0;
    if (FORK_GUARD)
        pthread_mutex_unlock(&srv->fork_lock);
    if (rc) {
        tr_log(TR_LOG_WARN, "noise: the GNQL index is built on the first query instead: %s",
               err.msg);
    } else {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        tr_log(TR_LOG_INFO, "noise: GNQL index ready, %zu addresses, in %.2f s", ips,
               (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    }
    tr_noise_close(n);
    return NULL;
}

static void *runner_main(void *arg)
{
    tr_server *srv = arg;
    for (;;) {
        pthread_mutex_lock(&srv->lock);
        if (!srv->hunts_dirty && !srv->stopping) {
            /* Jobs queued by another process (trawl hunt --detach) are
             * found by this periodic look. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 2;
            pthread_cond_timedwait(&srv->hunt_wake, &srv->lock, &ts);
        }
        bool stop = srv->stopping;
        srv->hunts_dirty = false;
        pthread_mutex_unlock(&srv->lock);
        if (stop)
            break;
        int64_t id = 0;
        int slot = claim_job(srv, &id);
        if (slot < 0)
            continue;
        tr_hunt *h = NULL;
        tr_error err;
        if (tr_hunt_open(srv->data_dir, id, &h, &err) != 0) {
            tr_log(TR_LOG_ERROR, "hunt %lld: %s", (long long)id, err.msg);
        } else {
            tr_hunt_set_threads(h, srv->workers / HUNT_RUNNERS ? srv->workers / HUNT_RUNNERS : 1);
            tr_hunt_set_fork_guard(h, verifier_fork_guard, srv);
            pthread_mutex_lock(&srv->lock);
            srv->running[slot].h = h;
            bool stop_now = srv->stopping;
            pthread_mutex_unlock(&srv->lock);
            if (stop_now)
                tr_hunt_interrupt(h);
            if (tr_hunt_run(h, &err) != 0)
                tr_log(TR_LOG_WARN, "hunt %lld failed: %s", (long long)id, err.msg);
        }
        pthread_mutex_lock(&srv->lock);
        srv->running[slot].id = 0;
        srv->running[slot].h = NULL;
        srv->hunts_dirty = true;                 /* look for the next job at once */
        pthread_mutex_unlock(&srv->lock);
        tr_hunt_free(h);
    }
    return NULL;
}

int http_hunt_progress(struct tr_server *srv, int64_t id, tr_hunt_progress *out)
{
    int found = 0;
    pthread_mutex_lock(&srv->lock);
    for (int i = 0; i < HUNT_RUNNERS; i++)
        if (srv->running[i].id == id && srv->running[i].h) {
            tr_hunt_get_progress(srv->running[i].h, out);
            found = 1;
        }
    pthread_mutex_unlock(&srv->lock);
    return found;
}

int http_hunt_cancel(struct tr_server *srv, int64_t id)
{
    int found = 0;
    pthread_mutex_lock(&srv->lock);
    for (int i = 0; i < HUNT_RUNNERS; i++)
        if (srv->running[i].id == id && srv->running[i].h) {
            tr_hunt_cancel(srv->running[i].h);
            found = 1;
        }
    pthread_mutex_unlock(&srv->lock);
    return found;
}

void http_hunt_counts(struct tr_server *srv, unsigned *running, unsigned *workers)
{
    pthread_mutex_lock(&srv->lock);
    *running = 0;
    for (int i = 0; i < HUNT_RUNNERS; i++)
        *running += srv->running[i].id != 0;
    *workers = srv->workers;
    pthread_mutex_unlock(&srv->lock);
}

/* ---- parked streams ----------------------------------------------------- */

bool http_stream_park(struct tr_server *srv, struct MHD_Connection *conn)
{
    pthread_mutex_lock(&srv->park_lock);
    bool parked = !srv->park_closing;
    if (parked) {
        if (srv->nparked == srv->capparked) {
            srv->capparked = srv->capparked ? srv->capparked * 2 : 16;
            srv->parked = tr_xrealloc(srv->parked, srv->capparked * sizeof *srv->parked);
        }
        srv->parked[srv->nparked++] = conn;
        /* Under the lock: the streamer resumes only what is suspended. */
        MHD_suspend_connection(conn);
    }
    pthread_mutex_unlock(&srv->park_lock);
    return parked;
}

bool http_streams_closing(struct tr_server *srv)
{
    pthread_mutex_lock(&srv->park_lock);
    bool closing = srv->park_closing;
    pthread_mutex_unlock(&srv->park_lock);
    return closing;
}

static void resume_parked(tr_server *srv)
{
    for (size_t i = 0; i < srv->nparked; i++)
        MHD_resume_connection(srv->parked[i]);
    srv->nparked = 0;
}

static void *streamer_main(void *arg)
{
    tr_server *srv = arg;
    pthread_mutex_lock(&srv->park_lock);
    while (!srv->park_closing) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += STREAM_TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&srv->park_wake, &srv->park_lock, &until);
        resume_parked(srv);
    }
    resume_parked(srv);
    pthread_mutex_unlock(&srv->park_lock);
    return NULL;
}

/* ---- routing ------------------------------------------------------------ */

static bool is_method(const char *m, const char *want)
{
    return strcmp(m, want) == 0;
}

/* Resolves method + path to a handler and the role it needs; NULL fn with a
 * status in *status when nothing matches. */
static route resolve(const char *method, const char *url, unsigned *status)
{
    route none = {0};
    bool get = is_method(method, "GET") || is_method(method, "HEAD");
    bool post = is_method(method, "POST"), del = is_method(method, "DELETE");
    *status = 404;
    if (strcmp(url, "/api/health") == 0) {
        *status = 405;
        return get ? (route){api_health, TR_ROLE_NONE, BODY_NONE, ""} : none;
    }
    if (strcmp(url, "/api/whoami") == 0) {
        *status = 405;
        return get ? (route){api_whoami, TR_ROLE_NONE, BODY_NONE, ""} : none;
    }
    if (strcmp(url, "/api/v1/") == 0 || strcmp(url, "/api/v1") == 0) {
        /* Any other method is answered in Bazaar's words (http_post_expected). */
        return post ? (route){api_bazaar, TR_ROLE_READER, BODY_MULTIPART, ""}
                    : (route){api_bazaar, TR_ROLE_NONE, BODY_NONE, ""};
    }
    if (strncmp(url, "/export/", 8) == 0) {
        *status = 405;
        return get ? (route){api_export, TR_ROLE_READER, BODY_NONE, url + 8} : none;
    }
    if (strcmp(url, "/api/jobs") == 0) {
        *status = 405;
        return get ? (route){api_jobs, TR_ROLE_READER, BODY_NONE, ""} : none;
    }
    if (strcmp(url, "/api/hunts") == 0 || strncmp(url, "/api/hunts/", 11) == 0) {
        const char *rest = url[10] == '/' ? url + 11 : "";
        *status = 405;
        if (get)
            return (route){api_hunts, TR_ROLE_READER, BODY_NONE, rest};
        if (post && !*rest)
            return (route){api_hunts, TR_ROLE_ANALYST, BODY_JSON, rest};
        if (post && strstr(rest, "/cancel"))
            return (route){api_hunts, TR_ROLE_ANALYST, BODY_NONE, rest};
        if (del && *rest)
            return (route){api_hunts, TR_ROLE_ANALYST, BODY_NONE, rest};
        return none;
    }
    if (strcmp(url, "/api/rules") == 0 || strncmp(url, "/api/rules/", 11) == 0) {
        const char *rest = url[10] == '/' ? url + 11 : "";
        *status = 405;
        if (get)
            return (route){api_rules, TR_ROLE_READER, BODY_NONE, rest};
        if (post && !*rest)
            return (route){api_rules, TR_ROLE_ANALYST, BODY_JSON, rest};
        if (post && *rest)
            return (route){api_rules, TR_ROLE_ANALYST, BODY_NONE, rest};
        if (del && *rest)
            return (route){api_rules, TR_ROLE_ANALYST, BODY_NONE, rest};
        return none;
    }
    if (strncmp(url, "/api/noise/", 11) == 0) {
        const char *rest = url + 11;
        *status = 405;
        if (strcmp(rest, "events") == 0) {
            if (get)
                return (route){api_noise_events, TR_ROLE_READER, BODY_NONE, ""};
            return post ? (route){api_noise_events, TR_ROLE_ANALYST, BODY_EVENTS, ""} : none;
        }
        if (strncmp(rest, "ip/", 3) == 0 && rest[3])
            return get ? (route){api_noise_ip, TR_ROLE_READER, BODY_NONE, rest + 3} : none;
        if (strcmp(rest, "sensors") == 0 || (strncmp(rest, "tag-days/", 9) == 0 && rest[9]))
            return get ? (route){api_noise_ui, TR_ROLE_READER, BODY_NONE, rest} : none;
        if (strcmp(rest, "tags") == 0 || strncmp(rest, "tags/", 5) == 0) {
            const char *name = rest[4] == '/' ? rest + 5 : "";
            if (get && !*name)
                return (route){api_noise_tags, TR_ROLE_READER, BODY_NONE, name};
            if (post && (!*name || strcmp(name, "test") == 0))
                return (route){api_noise_tags, TR_ROLE_ANALYST, BODY_JSON, name};
            if (del && *name)
                return (route){api_noise_tags, TR_ROLE_ANALYST, BODY_NONE, name};
            return none;
        }
        *status = 404;
        return none;
    }
    if (strncmp(url, "/api/stix/", 10) == 0) {
        const char *rest = url + 10;
        *status = 405;
        if (get)
            return (route){api_stix, TR_ROLE_READER, BODY_NONE, rest};
        if (post && strcmp(rest, "import") == 0)
            return (route){api_stix, TR_ROLE_ANALYST, BODY_JSON, rest};
        if (post && strcmp(rest, "collections") == 0)
            return (route){api_stix, TR_ROLE_ADMIN, BODY_JSON, rest};
        if (del && strncmp(rest, "objects/", 8) == 0)
            return (route){api_stix, TR_ROLE_ADMIN, BODY_NONE, rest};
        return none;
    }
    if (strncmp(url, "/api/kb/", 8) == 0) {
        const char *rest = url + 8;
        *status = 405;
        if (get && strcmp(rest, "match") == 0)
            return (route){api_kb, TR_ROLE_READER, BODY_NONE, rest};
        if (post && (strcmp(rest, "sync") == 0 || strcmp(rest, "match") == 0))
            return (route){api_kb, TR_ROLE_ANALYST, BODY_JSON, rest};
        *status = 404;
        return none;
    }
    if (strcmp(url, "/api/reports/import") == 0) {
        *status = 405;
        return post ? (route){api_report_import, TR_ROLE_ANALYST, BODY_JSON, ""} : none;
    }
    if (strcmp(url, "/api/reports/drafts") == 0 || strncmp(url, "/api/reports/drafts/", 20) == 0) {
        const char *rest = url[19] == '/' ? url + 20 : "";
        *status = 405;
        if (get)
            return (route){api_report_drafts, TR_ROLE_READER, BODY_NONE, rest};
        if (post || (*rest && is_method(method, "PATCH")))
            return (route){api_report_drafts, TR_ROLE_ANALYST, BODY_JSON, rest};
        if (del && *rest)
            return (route){api_report_drafts, TR_ROLE_ANALYST, BODY_NONE, rest};
        return none;
    }
    if (strcmp(url, "/taxii2") == 0 || strncmp(url, "/taxii2/", 8) == 0) {
        const char *rest = url[7] ? url + 8 : "";
        *status = 405;
        if (get)
            return (route){api_taxii, TR_ROLE_READER, BODY_NONE, rest};
        if (post)
            return (route){api_taxii, TR_ROLE_ANALYST, BODY_JSON, rest};
        if (del)
            return (route){api_taxii, TR_ROLE_ANALYST, BODY_NONE, rest};
        return none;
    }
    if (strcmp(url, "/api/plan") == 0) {
        *status = 405;
        return post ? (route){api_plan, TR_ROLE_READER, BODY_JSON, ""} : none;
    }
    if (strcmp(url, "/api/index") == 0) {
        *status = 405;
        return get ? (route){api_index_status, TR_ROLE_READER, BODY_NONE, ""} : none;
    }
    if (strcmp(url, "/api/samples") == 0) {
        *status = 405;
        if (get)
            return (route){api_samples, TR_ROLE_READER, BODY_NONE, ""};
        if (post)
            return (route){api_upload, TR_ROLE_ANALYST, BODY_MULTIPART, ""};
        return none;
    }
    if (strncmp(url, "/api/samples/", 13) == 0) {
        const char *rest = url + 13;
        const char *slash = strchr(rest, '/');
        *status = 405;
        if (!slash) {
            if (get)
                return (route){api_samples, TR_ROLE_READER, BODY_NONE, rest};
            if (del)
                return (route){api_samples, TR_ROLE_ADMIN, BODY_NONE, rest};
            return none;
        }
        if (strcmp(slash, "/download") == 0)
            return get ? (route){api_sample_download, TR_ROLE_READER, BODY_NONE, rest} : none;
        if (strcmp(slash, "/similar") == 0)
            return get ? (route){api_sample_similar, TR_ROLE_READER, BODY_NONE, rest} : none;
        if (strcmp(slash, "/comments") == 0) {
            if (get)
                return (route){api_sample_comments, TR_ROLE_READER, BODY_NONE, rest};
            return post ? (route){api_sample_comments, TR_ROLE_ANALYST, BODY_JSON, rest} : none;
        }
        if (strcmp(slash, "/tags") == 0 || strncmp(slash, "/tags/", 6) == 0) {
            if (post && slash[5] == '\0')
                return (route){api_sample_tags, TR_ROLE_ANALYST, BODY_JSON, rest};
            if (del && slash[5] == '/')
                return (route){api_sample_tags, TR_ROLE_ANALYST, BODY_NONE, rest};
            return none;
        }
        *status = 404;
        return none;
    }
    if (strcmp(url, "/api/keys") == 0 || strncmp(url, "/api/keys/", 10) == 0) {
        *status = 405;
        const char *rest = url[9] == '/' ? url + 10 : "";
        if (get && !*rest)
            return (route){api_keys, TR_ROLE_ADMIN, BODY_NONE, rest};
        if (post && !*rest)
            return (route){api_keys, TR_ROLE_ADMIN, BODY_JSON, rest};
        if (del && *rest)
            return (route){api_keys, TR_ROLE_ADMIN, BODY_NONE, rest};
        return none;
    }
    if (http_greynoise_path(url)) {
        *status = 405;
        if (get)
            return (route){api_greynoise, TR_ROLE_READER, BODY_NONE, url};
        /* The one GreyNoise call that writes: flagging an IP changes what
         * analysts see, so it takes the role every other write takes. */
        if (post && strncmp(url, "/v2/interesting/", 16) == 0)
            return (route){api_greynoise, TR_ROLE_ANALYST, BODY_NONE, url};
        if (post)
            return (route){api_greynoise, TR_ROLE_READER, BODY_JSON, url};
        return none;
    }
    if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0 || strncmp(url, "/ui/", 4) == 0) {
        *status = 405;
        return get ? (route){ui_index, TR_ROLE_NONE, BODY_NONE, ""} : none;
    }
    return none;
}

/* Bearer token, or X-API-Key as some tools send it; TAXII clients send the
 * key as "Token KEY" or as the password of HTTP Basic (any user name). */
static const char *presented_key(struct MHD_Connection *conn, char *basic, size_t basic_sz)
{
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
        return auth + 7;
    if (auth && strncasecmp(auth, "Token ", 6) == 0)
        return auth + 6;
    if (auth && strncasecmp(auth, "Basic ", 6) == 0) {
        const char *b64 = auth + 6;
        size_t len = strlen(b64);
        unsigned char raw[512];
        if (len == 0 || len % 4 || len / 4 * 3 >= sizeof raw)
            return "";                       /* present but unusable: refused as unknown */
        int got = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
        if (got < 0)
            return "";
        /* EVP_DecodeBlock counts the padding as data. */
        if (len >= 1 && b64[len - 1] == '=')
            got--;
        if (len >= 2 && b64[len - 2] == '=')
            got--;
        raw[got] = '\0';
        const char *colon = memchr(raw, ':', (size_t)got);
        if (!colon)
            return "";
        snprintf(basic, basic_sz, "%s", colon + 1);
        return basic;
    }
    const char *k = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-API-Key");
    /* MalwareBazaar clients send Auth-Key (older ones API-KEY); GreyNoise
     * clients "key". */
    if (!k)
        k = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Auth-Key");
    if (!k)
        k = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "API-KEY");
    return k ? k : MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "key");
}

/* Bodies are bounded small but where STIX bundles arrive. */
static size_t body_limit(const char *url, int kind)
{
    if (strcmp(url, "/api/stix/import") == 0 || strncmp(url, "/taxii2/", 8) == 0 ||
        strcmp(url, "/api/reports/import") == 0 || strcmp(url, "/api/reports/drafts") == 0)
        return STIX_BODY_MAX;
    if (kind == BODY_EVENTS)
        return EVENTS_BODY_MAX;
    return JSON_BODY_MAX;
}

typedef struct conn_state {
    http_request req;
    route rt;
    unsigned early_status;    /* answer without reading the body */
    char early_msg[1200];
} conn_state;

/* One key database handle per server thread, kept between requests:
 * opening one (file, schema check) cost more than the lookups it served.
 * Per thread, as a handle serves one thread at a time; closed when the
 * thread ends. Keys are read fresh on every check. */
typedef struct auth_cache {
    char *dir;
    tr_auth *a;
} auth_cache;
static pthread_key_t auth_key;
static pthread_once_t auth_once = PTHREAD_ONCE_INIT;

static void auth_cache_free(void *p)
{
    auth_cache *c = p;
    tr_auth_close(c->a);
    free(c->dir);
    free(c);
}

static void auth_cache_init(void)
{
    if (pthread_key_create(&auth_key, auth_cache_free) != 0)
        tr_die("pthread_key_create failed");
}

static tr_auth *auth_get(const char *data_dir, tr_error *err)
{
    pthread_once(&auth_once, auth_cache_init);
    auth_cache *c = pthread_getspecific(auth_key);
    if (c && strcmp(c->dir, data_dir) == 0)
        return c->a;
    tr_auth *a = NULL;
    if (tr_auth_open(data_dir, &a, err) != 0)
        return NULL;
    if (c) {
        tr_auth_close(c->a);
        free(c->dir);
    } else {
        c = tr_xcalloc(1, sizeof *c);
    }
    c->dir = tr_xstrdup(data_dir);
    c->a = a;
    pthread_setspecific(auth_key, c);
    return a;
}

static void authenticate(tr_server *srv, conn_state *cs)
{
    http_request *r = &cs->req;
    char basic[512];
    const char *key = presented_key(r->conn, basic, sizeof basic);
    r->role = TR_ROLE_NONE;
    if (key) {
        tr_error err;
        int ok = -1;
        tr_auth *a = auth_get(srv->data_dir, &err);
        if (a)
            ok = tr_auth_check(a, key, &r->role, r->key_name, &err);
        if (ok < 0) {
            cs->early_status = 503;
            snprintf(cs->early_msg, sizeof cs->early_msg, "cannot check the key: %s", err.msg);
            return;
        }
        if (ok == 0) {
            cs->early_status = 401;
            snprintf(cs->early_msg, sizeof cs->early_msg, "unknown API key");
            return;
        }
        r->authenticated = true;
    } else if (srv->anonymous_read) {
        r->role = TR_ROLE_READER;
    }
    if (r->role < cs->rt.need) {
        bool anon = !r->authenticated;
        cs->early_status = anon ? 401 : 403;
        snprintf(cs->early_msg, sizeof cs->early_msg,
                 anon ? "this needs an API key with the %s role (Authorization: Bearer KEY)"
                      : "this needs the %s role; this key is %s",
                 tr_role_name(cs->rt.need), tr_role_name(r->role));
    }
}

typedef struct query_check {
    char *out;
    size_t outsz;
    bool bad;
} query_check;

static enum MHD_Result check_query_value(void *cls, enum MHD_ValueKind kind, const char *key,
                                         size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    query_check *q = cls;
    const char *why = http_text_problem(key, key_size);
    const char *what = "a query parameter name";
    if (!why && value) {
        why = http_text_problem(value, value_size);
        what = NULL;
    }
    if (!why)
        return MHD_YES;
    char name[64];
    http_text_sanitize(key, name, sizeof name);
    if (what)
        snprintf(q->out, q->outsz, "%s %s", what, why);
    else
        snprintf(q->out, q->outsz, "the query parameter '%s' %s", name, why);
    q->bad = true;
    return MHD_NO;
}

/* Every query parameter is text: refused at the edge when it is not UTF-8
 * (libmicrohttpd has already decoded %XX, so %00 and %FF land here, with
 * their lengths). */
static bool bad_query_parameter(struct MHD_Connection *conn, char *out, size_t outsz)
{
    query_check q = {out, outsz, false};
    MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, check_query_value, &q);
    return q.bad;
}

static enum MHD_Result answer_early(conn_state *cs, const char *url)
{
    http_request *r = &cs->req;
    r->close = true;
    if (strcmp(url, "/taxii2") == 0 || strncmp(url, "/taxii2/", 8) == 0)
        return http_send_taxii_error(r, cs->early_status, cs->early_msg);
    if (http_greynoise_path(url))
        return http_send_greynoise_error(r, cs->early_status, cs->early_msg);
    if (strcmp(url, "/api/v1/") == 0 || strcmp(url, "/api/v1") == 0)
        return http_send_bazaar_error(r, cs->early_status, cs->early_msg);
    if (cs->early_status == 404 && strncmp(url, "/api/", 5) != 0)
        return http_send_text(r, 404, "text/plain; charset=utf-8", "not found\n", 10);
    return http_send_error(r, cs->early_status, "%s", cs->early_msg);
}

typedef struct header_count {
    const char *name;
    unsigned n;
    const char *first;
    bool differ;
} header_count;

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    header_count *h = cls;
    if (strcasecmp(key, h->name) != 0)
        return MHD_YES;
    if (h->n++ == 0)
        h->first = value;
    else if (strcmp(h->first ? h->first : "", value ? value : "") != 0)
        h->differ = true;
    return MHD_YES;
}

static bool is_loopback_or_equal(const char *host, const struct sockaddr_storage *listen)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1) {
        if ((ntohl(a4.s_addr) >> 24) == 127)
            return true;
        if (listen->ss_family != AF_INET)
            return false;
        const struct sockaddr_in *l = (const struct sockaddr_in *)listen;
        return l->sin_addr.s_addr == INADDR_ANY || l->sin_addr.s_addr == a4.s_addr;
    }
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6))
            return true;
        if (listen->ss_family != AF_INET6)
            return false;
        const struct sockaddr_in6 *l = (const struct sockaddr_in6 *)listen;
        return IN6_IS_ADDR_UNSPECIFIED(&l->sin6_addr) ||
               memcmp(&l->sin6_addr, &a6, sizeof a6) == 0;
    }
    return false;
}

/* DNS rebinding: a page from an attacker's name that resolves to this
 * server would otherwise be same-origin with it. Only the addresses it
 * listens on, loopback, localhost names and --allowed-host names are this
 * server's; a name nobody configured is someone else's. */
static bool host_allowed(const tr_server *srv, const char *hosthdr)
{
    if (!hosthdr)
        return true;                        /* HTTP/1.0: no browser sends that */
    char host[256];
    const char *end;
    if (hosthdr[0] == '[') {
        end = strchr(hosthdr, ']');
        if (!end || (end[1] && end[1] != ':'))
            return false;
        snprintf(host, sizeof host, "%.*s", (int)(end - hosthdr - 1), hosthdr + 1);
    } else {
        end = strchr(hosthdr, ':');
        size_t n = end ? (size_t)(end - hosthdr) : strlen(hosthdr);
        if (n >= sizeof host)
            return false;
        memcpy(host, hosthdr, n);
        host[n] = '\0';
    }
    size_t n = strlen(host);
    if (n && host[n - 1] == '.')
        host[--n] = '\0';                   /* "localhost." is localhost */
    if (is_loopback_or_equal(host, &srv->listen_addr))
        return true;
    if (strcasecmp(host, "localhost") == 0 ||
        (n > 10 && strcasecmp(host + n - 10, ".localhost") == 0))
        return true;
    for (size_t i = 0; i < srv->n_allowed_hosts; i++)
        if (strcasecmp(host, srv->allowed_hosts[i]) == 0)
            return true;
    return false;
}

/* Everything decided from the request line and headers alone. */
static void decide(tr_server *srv, conn_state *cs, struct MHD_Connection *conn,
                   const char *method, const char *url)
{
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    if (!host_allowed(srv, host)) {
        char clean[200];
        http_text_sanitize(host, clean, sizeof clean);
        cs->early_status = 421;
        snprintf(cs->early_msg, sizeof cs->early_msg,
                 "this server does not answer to the name '%s' (trawl serve --allowed-host)",
                 clean);
        return;
    }
    /* Two lengths, or a length and chunking: which one frames the body
     * depends on who reads it (request smuggling). */
    header_count cl = {.name = "Content-Length"}, te = {.name = "Transfer-Encoding"};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &cl);
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &te);
    if (cl.n > 1 || (cl.n && te.n)) {
        cs->early_status = 400;
        snprintf(cs->early_msg, sizeof cs->early_msg,
                 cl.n > 1 ? "more than one Content-Length header"
                          : "both Content-Length and Transfer-Encoding");
        return;
    }
    unsigned status = 404;
    cs->rt = resolve(method, url, &status);
    if (!cs->rt.fn) {
        cs->early_status = status;
        snprintf(cs->early_msg, sizeof cs->early_msg,
                 status == 405 ? "method %s not allowed on %s" : "no endpoint %s%s",
                 status == 405 ? method : "", url);
        return;
    }
    cs->req.rest = cs->rt.rest;
    char bad[160];
    if (bad_query_parameter(conn, bad, sizeof bad)) {
        cs->early_status = 400;
        snprintf(cs->early_msg, sizeof cs->early_msg, "%s", bad);
        return;
    }
    /* The headers are in: from now on the client is working on a real
     * request, and a slow body or reader gets the longer timeout. */
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)REQUEST_TIMEOUT);
    authenticate(srv, cs);
    if (cs->early_status)
        return;
    /* A body announced too large is refused before a byte of it is read
     * (the same limits the body readers below apply as bytes arrive). */
    unsigned long long len = cl.first ? strtoull(cl.first, NULL, 10) : 0;
    uint64_t max = cs->rt.body == BODY_MULTIPART ? srv->max_upload + (1u << 20)
                   : cs->rt.body == BODY_NONE   ? UINT64_MAX
                                                : (uint64_t)body_limit(url, cs->rt.body);
    if (len > max) {
        cs->early_status = 413;
        snprintf(cs->early_msg, sizeof cs->early_msg, "request body over %llu bytes",
                 (unsigned long long)max);
        return;
    }
    if (cs->rt.body == BODY_MULTIPART) {
        cs->req.upload = http_upload_new(&cs->req);
        if (!cs->req.upload) {
            cs->early_status = 400;
            snprintf(cs->early_msg, sizeof cs->early_msg,
                     "uploads are multipart/form-data with a 'file' part");
        }
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)version;
    tr_server *srv = cls;
    conn_state *cs = *con_cls;
    if (!cs) {
        cs = tr_xcalloc(1, sizeof *cs);
        *con_cls = cs;
        cs->req.srv = srv;
        cs->req.conn = conn;
        cs->req.method = method;
        cs->req.path = url;
        cs->req.data_dir = srv->data_dir;
        decide(srv, cs, conn, method, url);
        /* Refused before its body: answered now, the body never read, and
         * the connection closed after the answer (it still carries the
         * unread body). */
        if (cs->early_status)
            return answer_early(cs, url);
        return MHD_YES;
    }
    http_request *r = &cs->req;
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (cs->early_status)
            return MHD_YES;                 /* discard: the answer is already decided */
        if (cs->rt.body == BODY_MULTIPART)
            return http_upload_feed(r, upload_data, n);
        if (r->body.len + n > body_limit(url, cs->rt.body))
            r->body_too_large = true;
        else
            tr_buf_append(&r->body, upload_data, n);
        return MHD_YES;
    }
    if (cs->early_status)
        return answer_early(cs, url);
    if (r->body_too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "request body over %zu bytes", body_limit(url, cs->rt.body));
        if (strncmp(url, "/taxii2/", 8) == 0)
            return http_send_taxii_error(r, 413, msg);
        return http_send_error(r, 413, "%s", msg);
    }
    return cs->rt.fn(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    tr_server *srv = cls;
    /* A kept-alive connection waiting for its next request is idle again. */
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, srv->header_timeout);
    conn_state *cs = *con_cls;
    if (!cs)
        return;
    /* An upload cut short never reached its handler: its staged bytes go. */
    http_upload_free(cs->req.upload);
    tr_buf_free(&cs->req.body);
    free(cs);
    *con_cls = NULL;
}

/* libmicrohttpd's own messages (clients hanging up, malformed requests) are
 * routine for a server on a network: debug-level, not stderr noise. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    tr_log(TR_LOG_DEBUG, "http: %s", msg);
}

int tr_server_start(const tr_http_config *cfg, tr_server **out, tr_error *err)
{
    struct sockaddr_storage addr;
    if (tr_parse_listen(cfg->listen, &addr, err) != 0)
        return -1;
    tr_server *srv = tr_xcalloc(1, sizeof *srv);
    srv->data_dir = tr_xstrdup(cfg->data_dir);
    srv->anonymous_read = cfg->anonymous_read;
    srv->max_upload = cfg->max_upload ? cfg->max_upload : (uint64_t)512 << 20;
    srv->header_timeout = cfg->header_timeout ? cfg->header_timeout : HEADER_TIMEOUT;
    srv->listen_addr = addr;
    srv->hunt_time_limit = cfg->hunt_time_limit ? cfg->hunt_time_limit : HUNT_TIME_LIMIT;
    srv->allowed_hosts = tr_xcalloc(cfg->n_allowed_hosts + 1, sizeof *srv->allowed_hosts);
    for (size_t i = 0; i < cfg->n_allowed_hosts; i++)
        srv->allowed_hosts[i] = tr_xstrdup(cfg->allowed_hosts[i]);
    srv->n_allowed_hosts = cfg->n_allowed_hosts;
    pthread_mutex_init(&srv->lock, NULL);
    pthread_cond_init(&srv->index_wake, NULL);
    pthread_cond_init(&srv->kb_wake, NULL);
    pthread_mutex_init(&srv->fork_lock, NULL);
    pthread_mutex_init(&srv->park_lock, NULL);
    pthread_cond_init(&srv->park_wake, NULL);
    if (pthread_create(&srv->streamer, NULL, streamer_main, srv) != 0)
        tr_die("cannot start the stream thread");
    srv->streamer_started = true;
    srv->index_dirty = true;                 /* catch up with anything unindexed */
    if (pthread_create(&srv->indexer, NULL, indexer_main, srv) != 0)
        tr_die("cannot start the indexer thread");
    tr_live_queue_start(srv->data_dir, cfg->live_queue, verifier_fork_guard, srv, &srv->live, err);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    srv->workers = cfg->workers ? cfg->workers : (unsigned)(cores > 0 ? cores : 1);
    pthread_cond_init(&srv->hunt_wake, NULL);
    srv->hunts_dirty = true;                 /* queued jobs from before a restart */
    for (int i = 0; i < HUNT_RUNNERS; i++)
        if (pthread_create(&srv->runners[i], NULL, runner_main, srv) != 0)
            tr_die("cannot start a hunt runner thread");
    if (pthread_create(&srv->gnql_warm, NULL, gnql_warm_main, srv) != 0)
        tr_die("cannot start the GNQL index thread");
    srv->kb_sync_seconds = cfg->kb_sync_seconds ? cfg->kb_sync_seconds : KB_SYNC_SECONDS;
    if (srv->kb_sync_seconds > 0) {
        if (pthread_create(&srv->kbsync, NULL, kbsync_main, srv) != 0)
            tr_die("cannot start the knowledge-base sync thread");
        srv->kbsync_started = true;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    srv->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv,
                                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->threads ? cfg->threads : 4),
                                /* Connections that send nothing go after this; a
                                 * request under way gets REQUEST_TIMEOUT. */
                                MHD_OPTION_CONNECTION_TIMEOUT, srv->header_timeout,
                                /* One address cannot take every connection slot. */
                                MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                (unsigned)(cfg->per_ip_connections ? cfg->per_ip_connections
                                                                   : PER_IP_CONNECTIONS),
                                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024),
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
                                MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
                                MHD_OPTION_END);
    if (!srv->mhd) {
        tr_server_stop(srv);
        return tr_fail(err, "cannot listen on %s (address in use, or not this machine's?)",
                       cfg->listen);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    *out = srv;
    return 0;
}

unsigned tr_server_port(const tr_server *srv)
{
    return srv->port;
}

void tr_server_stop(tr_server *srv)
{
    if (!srv)
        return;
    /* Every parked stream resumed (and none parked after): they end. */
    if (srv->streamer_started) {
        pthread_mutex_lock(&srv->park_lock);
        srv->park_closing = true;
        pthread_cond_signal(&srv->park_wake);
        pthread_mutex_unlock(&srv->park_lock);
        pthread_join(srv->streamer, NULL);
    }
    if (srv->mhd)
        MHD_stop_daemon(srv->mhd);
    /* Running hunts stop with their results kept and say why; queued ones
     * stay queued and run after a restart. */
    pthread_mutex_lock(&srv->lock);
    srv->stopping = true;
    pthread_cond_signal(&srv->index_wake);
    pthread_cond_broadcast(&srv->hunt_wake);
    pthread_cond_broadcast(&srv->kb_wake);
    for (int i = 0; i < HUNT_RUNNERS; i++)
        if (srv->running[i].h)
            tr_hunt_interrupt(srv->running[i].h);
    pthread_mutex_unlock(&srv->lock);
    for (int i = 0; i < HUNT_RUNNERS; i++)
        pthread_join(srv->runners[i], NULL);
    pthread_join(srv->indexer, NULL);
    pthread_join(srv->gnql_warm, NULL);
    if (srv->kbsync_started)
        pthread_join(srv->kbsync, NULL);
    tr_live_queue_stop(srv->live);
    pthread_cond_destroy(&srv->hunt_wake);
    for (size_t i = 0; i < srv->npool; i++)
        tr_analyzer_free(srv->pool[i]);
    pthread_mutex_destroy(&srv->lock);
    pthread_mutex_destroy(&srv->fork_lock);
    if (srv->streamer_started) {
        pthread_mutex_destroy(&srv->park_lock);
        pthread_cond_destroy(&srv->park_wake);
    }
    free(srv->parked);
    pthread_cond_destroy(&srv->index_wake);
    pthread_cond_destroy(&srv->kb_wake);
    for (size_t i = 0; i < srv->n_allowed_hosts; i++)
        free(srv->allowed_hosts[i]);
    free(srv->allowed_hosts);
    free(srv->data_dir);
    free(srv);
}
