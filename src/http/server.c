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
#include <unistd.h>

#include "http/http_internal.h"
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

struct tr_server {
    struct MHD_Daemon *mhd;
    char *data_dir;
    unsigned port;
    bool anonymous_read;
    uint64_t max_upload;

    pthread_mutex_t lock;     /* guards the analyzer pool and indexer state */
    tr_analyzer *pool[ANALYZER_POOL];
    size_t npool;

    pthread_t indexer;
    pthread_cond_t index_wake;
    bool index_dirty, stopping;

    unsigned workers;
    pthread_t runners[HUNT_RUNNERS];
    pthread_cond_t hunt_wake;
    bool hunts_dirty;
    struct {
        int64_t id;           /* 0: free slot */
        tr_hunt *h;           /* NULL while being opened */
    } running[HUNT_RUNNERS];
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

static void common_headers(struct MHD_Response *resp, const char *content_type)
{
    MHD_add_response_header(resp, "Content-Type", content_type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
}

enum MHD_Result http_send_text(http_request *r, unsigned status, const char *content_type,
                               const char *body, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    common_headers(resp, content_type);
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
    common_headers(resp, content_type);
    char disp[300];
    snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", download_name);
    MHD_add_response_header(resp, "Content-Disposition", disp);
    enum MHD_Result rc = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result http_send_aes_zip(http_request *r, const tr_zip_entry *entries, size_t n,
                                  const char *download_name)
{
    /* A name of its own per request: two downloads at once must not share
     * a file. */
    static atomic_uint_fast64_t counter;
    char *zip = tr_xasprintf("%s/tmp/%ld-zip-%llu", r->data_dir, (long)getpid(),
                             (unsigned long long)atomic_fetch_add(&counter, 1));
    tr_error err;
    enum MHD_Result rc;
    if (tr_zip_write_aes(zip, entries, n, "infected", &err) != 0) {
        unlink(zip);
        rc = http_send_error(r, 500, "%s", err.msg);
    } else {
        int fd = open(zip, O_RDONLY | O_CLOEXEC);
        struct stat st;
        /* Unlinked at once: the open descriptor keeps the bytes for MHD. */
        unlink(zip);
        if (fd < 0 || fstat(fd, &st) != 0) {
            if (fd >= 0)
                close(fd);
            rc = http_send_error(r, 500, "cannot read the archive just written");
        } else {
            rc = http_send_fd(r, fd, (uint64_t)st.st_size, "application/zip", download_name);
        }
    }
    free(zip);
    return rc;
}

enum MHD_Result http_send_json(http_request *r, unsigned status, json_t *body)
{
    if (!body)
        return MHD_NO;
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
    return http_send_json(r, status, json_pack("{s:s, s:s}", "query_status", "error", "error", msg));
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
        if (tr_ingest_update_index(&cfg, NULL, &err) != 0)
            tr_log(TR_LOG_ERROR, "indexing uploads: %s", err.msg);
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

/* Claims the oldest queued job nobody here runs: its slot, or -1. */
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
    for (size_t i = n; i-- > 0 && slot < 0;) {       /* newest first: walk back */
        if (jobs[i].status != TR_HUNT_QUEUED || is_running_here(srv, jobs[i].id))
            continue;
        for (int k = 0; k < HUNT_RUNNERS; k++)
            if (srv->running[k].id == 0) {
                srv->running[k].id = jobs[i].id;
                srv->running[k].h = NULL;
                *id = jobs[i].id;
                slot = k;
                break;
            }
    }
    pthread_mutex_unlock(&srv->lock);
    tr_hunt_list_free(jobs, n);
    return slot;
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
        *status = 405;
        return post ? (route){api_bazaar, TR_ROLE_READER, BODY_MULTIPART, ""} : none;
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
        if (post && strncmp(url, "/v2/interesting/", 16) == 0)
            return (route){api_greynoise, TR_ROLE_READER, BODY_NONE, url};
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
    /* MalwareBazaar clients send Auth-Key; GreyNoise clients "key". */
    if (!k)
        k = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Auth-Key");
    return k ? k : MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "key");
}

/* Bodies are bounded small but where STIX bundles arrive. */
static size_t body_limit(const char *url, int kind)
{
    if (strcmp(url, "/api/stix/import") == 0 || strncmp(url, "/taxii2/", 8) == 0)
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

static void authenticate(tr_server *srv, conn_state *cs)
{
    http_request *r = &cs->req;
    char basic[512];
    const char *key = presented_key(r->conn, basic, sizeof basic);
    r->role = TR_ROLE_NONE;
    if (key) {
        tr_auth *a = NULL;
        tr_error err;
        int ok = -1;
        if (tr_auth_open(srv->data_dir, &a, &err) == 0)
            ok = tr_auth_check(a, key, &r->role, r->key_name, &err);
        tr_auth_close(a);
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
        unsigned status = 404;
        cs->rt = resolve(method, url, &status);
        if (!cs->rt.fn) {
            cs->early_status = status;
            snprintf(cs->early_msg, sizeof cs->early_msg,
                     status == 405 ? "method %s not allowed on %s" : "no endpoint %s%s",
                     status == 405 ? method : "", url);
            return MHD_YES;
        }
        cs->req.rest = cs->rt.rest;
        authenticate(srv, cs);
        if (!cs->early_status && cs->rt.body == BODY_MULTIPART) {
            cs->req.upload = http_upload_new(&cs->req);
            if (!cs->req.upload) {
                cs->early_status = 400;
                snprintf(cs->early_msg, sizeof cs->early_msg,
                         "uploads are multipart/form-data with a 'file' part");
            }
        }
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
    if (cs->early_status) {
        if (strcmp(url, "/taxii2") == 0 || strncmp(url, "/taxii2/", 8) == 0)
            return http_send_taxii_error(r, cs->early_status, cs->early_msg);
        if (http_greynoise_path(url))
            return http_send_greynoise_error(r, cs->early_status, cs->early_msg);
        if (cs->early_status == 404 && strncmp(url, "/api/", 5) != 0)
            return http_send_text(r, 404, "text/plain; charset=utf-8", "not found\n", 10);
        return http_send_error(r, cs->early_status, "%s", cs->early_msg);
    }
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
    (void)cls;
    (void)conn;
    (void)toe;
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
    pthread_mutex_init(&srv->lock, NULL);
    pthread_cond_init(&srv->index_wake, NULL);
    srv->index_dirty = true;                 /* catch up with anything unindexed */
    if (pthread_create(&srv->indexer, NULL, indexer_main, srv) != 0)
        tr_die("cannot start the indexer thread");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    srv->workers = cfg->workers ? cfg->workers : (unsigned)(cores > 0 ? cores : 1);
    pthread_cond_init(&srv->hunt_wake, NULL);
    srv->hunts_dirty = true;                 /* queued jobs from before a restart */
    for (int i = 0; i < HUNT_RUNNERS; i++)
        if (pthread_create(&srv->runners[i], NULL, runner_main, srv) != 0)
            tr_die("cannot start a hunt runner thread");
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    srv->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv,
                                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->threads ? cfg->threads : 4),
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
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
    if (srv->mhd)
        MHD_stop_daemon(srv->mhd);
    /* Running hunts stop with their results kept and say why; queued ones
     * stay queued and run after a restart. */
    pthread_mutex_lock(&srv->lock);
    srv->stopping = true;
    pthread_cond_signal(&srv->index_wake);
    pthread_cond_broadcast(&srv->hunt_wake);
    for (int i = 0; i < HUNT_RUNNERS; i++)
        if (srv->running[i].h)
            tr_hunt_interrupt(srv->running[i].h);
    pthread_mutex_unlock(&srv->lock);
    for (int i = 0; i < HUNT_RUNNERS; i++)
        pthread_join(srv->runners[i], NULL);
    pthread_join(srv->indexer, NULL);
    pthread_cond_destroy(&srv->hunt_wake);
    for (size_t i = 0; i < srv->npool; i++)
        tr_analyzer_free(srv->pool[i]);
    pthread_mutex_destroy(&srv->lock);
    pthread_cond_destroy(&srv->index_wake);
    free(srv->data_dir);
    free(srv);
}
