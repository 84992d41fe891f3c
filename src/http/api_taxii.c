/* The TAXII 2.1 server: discovery at /taxii2/, one API root /taxii2/kb/ with
 * the knowledge base's collections (built-in read-only ones and those users
 * create), objects (GET, POST, and per id GET/DELETE), versions, manifest and
 * status resources, the spec's filters, paging headers, media types and
 * error messages. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http_internal.h"
#include "stix/stix.h"

#define TAXII_TYPE "application/taxii+json;version=2.1"
#define STIX_TYPE "application/stix+json;version=2.1"
#define API_ROOT "kb"
#define PAGE_DEFAULT 1000
#define PAGE_MAX 10000

/* Sends text (taken over) as a TAXII answer. */
static enum MHD_Result send_taxii_text(http_request *r, unsigned status, char *text, size_t len,
                                       const char *first, const char *last)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    http_common_headers(r, resp, TAXII_TYPE);
    if (first && last) {
        MHD_add_response_header(resp, "X-TAXII-Date-Added-First", first);
        MHD_add_response_header(resp, "X-TAXII-Date-Added-Last", last);
    }
    if (status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Basic realm=\"trawl TAXII\"");
    enum MHD_Result rc = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result send_taxii(http_request *r, unsigned status, json_t *body,
                                  const char *first, const char *last)
{
    if (!body)
        return MHD_NO;
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    if (!text)
        return MHD_NO;
    return send_taxii_text(r, status, text, strlen(text), first, last);
}

static const char *status_title(unsigned status)
{
    switch (status) {
    case 400: return "Bad request";
    case 401: return "Authentication required";
    case 403: return "Forbidden";
    case 404: return "Not found";
    case 405: return "Method not allowed";
    case 406: return "Not acceptable";
    case 413: return "Request entity too large";
    case 415: return "Unsupported media type";
    case 422: return "Unprocessable entity";
    default: return status >= 500 ? "Server error" : "Error";
    }
}

enum MHD_Result http_send_taxii_error(http_request *r, unsigned status, const char *description)
{
    char code[8];
    snprintf(code, sizeof code, "%u", status);
    return send_taxii(r, status,
                      json_pack("{ss ss ss}", "title", status_title(status), "description",
                                description, "http_status", code),
                      NULL, NULL);
}

static enum MHD_Result taxii_error(http_request *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result taxii_error(http_request *r, unsigned status, const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return http_send_taxii_error(r, status, msg);
}

/* A media range list accepts TAXII 2.1 when it names it, its type without
 * parameters, or a wildcard. No Accept header accepts anything. */
static bool accepts(http_request *r, const char *want_type)
{
    const char *acc = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Accept");
    if (!acc || !*acc)
        return true;
    const char *p = acc;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char range[256];
        snprintf(range, sizeof range, "%.*s", (int)(len < 255 ? len : 255), p);
        char *sc = strchr(range, ';');
        char params[200] = "";
        if (sc) {
            snprintf(params, sizeof params, "%s", sc + 1);
            *sc = '\0';
        }
        char *t = range + strlen(range);
        while (t > range && t[-1] == ' ')
            *--t = '\0';
        bool version_ok = !strstr(params, "version=") || strstr(params, "version=2.1");
        if (strcmp(range, "*/*") == 0 || strcmp(range, "application/*") == 0)
            return true;
        if (strcasecmp(range, want_type) == 0 && version_ok)
            return true;
        p += len;
    }
    return false;
}

static char *base_url(http_request *r)
{
    const char *host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Host");
    return tr_xasprintf("http://%s/taxii2/", host && *host ? host : "localhost");
}

/* What this requester may do with the collection. */
static bool may_read(http_request *r, const tr_stix_collection *c)
{
    return c->can_read && (unsigned)r->role >= c->read_level;
}

static bool may_write(http_request *r, const tr_stix_collection *c)
{
    return c->can_write && (unsigned)r->role >= c->write_level;
}

static json_t *collection_json(http_request *r, const tr_stix_collection *c)
{
    return json_pack("{ss ss ss sb sb s[s]}", "id", c->id, "title", c->title, "description",
                     c->description, "can_read", may_read(r, c), "can_write", may_write(r, c),
                     "media_types", STIX_TYPE);
}

/* Splits "a,b,c" (one query value) into a NULL-terminated list into buf. */
static const char **split_list(const char *v, char *buf, size_t bufsz, const char **list, size_t max)
{
    if (!v)
        return NULL;
    snprintf(buf, bufsz, "%s", v);
    size_t n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save))
        list[n++] = tok;
    list[n] = NULL;
    return n ? list : NULL;
}

/* A page is built as text: objects go out as stored, never re-encoded. */
typedef struct page {
    tr_buf items;
    size_t n;
    char first[32], last[32];
    int64_t last_seq;
    bool manifest, versions_only;
} page;

static void append_json(tr_buf *b, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    if (!text)
        tr_die("out of memory");
    tr_buf_append(b, text, strlen(text));
    free(text);
}

static int page_row(void *arg, const tr_stix_row *row)
{
    page *p = arg;
    if (!p->first[0])
        snprintf(p->first, sizeof p->first, "%s", row->date_added);
    snprintf(p->last, sizeof p->last, "%s", row->date_added);
    p->last_seq = row->seq;
    if (p->n++)
        tr_buf_append(&p->items, ",", 1);
    const char *version = row->modified ? row->modified : row->created ? row->created : row->date_added;
    if (p->versions_only)
        append_json(&p->items, json_string(version));
    else if (p->manifest)
        append_json(&p->items, json_pack("{ss ss ss ss}", "id", row->id, "date_added", row->date_added,
                                         "version", version, "media_type", STIX_TYPE));
    else
        tr_buf_append(&p->items, row->json, row->json_len);
    return 0;
}

#define MAXMATCH 64

typedef struct filters {
    tr_stix_query q;
    char idbuf[4096], typebuf[1024], specbuf[64], verbuf[2048];
    const char *ids[MAXMATCH + 1], *types[MAXMATCH + 1], *specs[8], *vers[MAXMATCH + 1];
    const char *ts[MAXMATCH + 1];
} filters;

/* Reads the spec's query parameters: 0, or -1 with the 400 sent. */
static int read_filters(http_request *r, filters *f, unsigned default_versions, enum MHD_Result *sent)
{
    memset(&f->q, 0, sizeof f->q);
    const char *aa = http_query(r, "added_after");
    if (aa) {
        if (!tr_stix_ts_valid(aa)) {
            *sent = taxii_error(r, 400, "added_after must be a timestamp like 2021-01-01T00:00:00Z");
            return -1;
        }
        f->q.added_after = aa;
    }
    const char *lim = http_query(r, "limit");
    f->q.limit = PAGE_DEFAULT;
    if (lim) {
        char *end = NULL;
        long v = strtol(lim, &end, 10);
        if (!*lim || *end || v < 1) {
            *sent = taxii_error(r, 400, "limit must be a positive whole number");
            return -1;
        }
        /* A bigger page than the server gives is served as its largest. */
        f->q.limit = v > PAGE_MAX ? PAGE_MAX : (size_t)v;
    }
    const char *next = http_query(r, "next");
    if (next) {
        char *end = NULL;
        long long v = strtoll(next, &end, 10);
        if (!*next || *end || v < 0) {
            *sent = taxii_error(r, 400, "next must be a value this server returned");
            return -1;
        }
        f->q.after_seq = v;
    }
    f->q.ids = split_list(http_query(r, "match[id]"), f->idbuf, sizeof f->idbuf, f->ids, MAXMATCH);
    f->q.types = split_list(http_query(r, "match[type]"), f->typebuf, sizeof f->typebuf, f->types, MAXMATCH);
    f->q.spec_versions = split_list(http_query(r, "match[spec_version]"), f->specbuf, sizeof f->specbuf,
                                    f->specs, 7);
    const char **vers = split_list(http_query(r, "match[version]"), f->verbuf, sizeof f->verbuf,
                                   f->vers, MAXMATCH);
    size_t nts = 0;
    f->q.versions = 0;
    for (size_t i = 0; vers && vers[i]; i++) {
        if (strcmp(vers[i], "last") == 0)
            f->q.versions |= TR_STIX_LATEST;
        else if (strcmp(vers[i], "first") == 0)
            f->q.versions |= TR_STIX_FIRST;
        else if (strcmp(vers[i], "all") == 0)
            f->q.versions |= TR_STIX_ALL;
        else if (tr_stix_ts_valid(vers[i]))
            f->ts[nts++] = vers[i];
        else {
            *sent = taxii_error(r, 400, "match[version] takes last, first, all or timestamps");
            return -1;
        }
    }
    f->ts[nts] = NULL;
    f->q.version_ts = nts ? f->ts : NULL;
    if (!vers)
        f->q.versions = default_versions;
    return 0;
}

static enum MHD_Result send_page(http_request *r, tr_stix_db *db, filters *f, const char *key,
                                 bool manifest, bool versions_only, bool not_found_if_empty)
{
    page p = {.manifest = manifest, .versions_only = versions_only};
    bool more = false;
    tr_error err;
    if (tr_stix_query_rows(db, &f->q, page_row, &p, &more, &err) != 0) {
        tr_buf_free(&p.items);
        return taxii_error(r, 500, "%s", err.msg);
    }
    if (not_found_if_empty && p.n == 0) {
        tr_buf_free(&p.items);
        return taxii_error(r, 404, "no such object in this collection");
    }
    tr_buf body = {0};
    tr_buf_printf(&body, "{\"more\":%s", more ? "true" : "false");
    if (more)
        tr_buf_printf(&body, ",\"next\":\"%lld\"", (long long)p.last_seq);
    if (p.n) {
        tr_buf_printf(&body, ",\"%s\":[", key);
        tr_buf_append(&body, p.items.data, p.items.len);
        tr_buf_append(&body, "]", 1);
    }
    tr_buf_append(&body, "}", 1);
    tr_buf_free(&p.items);
    return send_taxii_text(r, 200, body.data, body.len, p.first[0] ? p.first : NULL,
                           p.last[0] ? p.last : NULL);
}

static bool is_taxii_content_type(http_request *r)
{
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
    if (!ct)
        return false;
    char type[128];
    snprintf(type, sizeof type, "%s", ct);
    char *sc = strchr(type, ';');
    const char *params = sc ? ct + (sc - type) + 1 : "";
    if (sc)
        *sc = '\0';
    char *t = type + strlen(type);
    while (t > type && t[-1] == ' ')
        *--t = '\0';
    if (strcasecmp(type, "application/taxii+json") != 0 && strcasecmp(type, "application/stix+json") != 0)
        return false;
    return !strstr(params, "version=") || strstr(params, "version=2.1");
}

static enum MHD_Result post_objects(http_request *r, tr_stix_db *db, const tr_stix_collection *c)
{
    if (!may_write(r, c))
        return taxii_error(r, 403, "collection %s is %s", c->id,
                           c->can_write ? "not writable with this key's role" : "read-only");
    if (!is_taxii_content_type(r))
        return taxii_error(r, 415, "send the envelope as %s", TAXII_TYPE);
    char status_id[37], now[32];
    tr_stix_uuid4(status_id);
    tr_stix_now(now);
    tr_stix_import_result res;
    tr_error err;
    json_t *status;
    /* Whole or nothing, like every import: a refused envelope is a status
     * whose failures name the object at fault. */
    if (tr_stix_import(db, r->body.data ? r->body.data : "", r->body.len, c->id, &res, &err) != 0) {
        json_error_t je;
        json_t *env = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, &je);
        json_t *objs = json_object_get(env, "objects");
        if (!json_is_array(objs)) {
            json_decref(env);
            return taxii_error(r, 422, "%s", err.msg);
        }
        json_t *failures = json_array();
        size_t i;
        json_t *o;
        json_array_foreach(objs, i, o) {
            const char *id = json_string_value(json_object_get(o, "id"));
            const char *ver = json_string_value(json_object_get(o, "modified"));
            json_t *f = json_pack("{ss ss}", "id", id ? id : "", "message", err.msg);
            if (ver)
                json_object_set_new(f, "version", json_string(ver));
            json_array_append_new(failures, f);
        }
        size_t n = json_array_size(objs);
        json_decref(env);
        status = json_pack("{ss ss ss sI sI sI sI so}", "id", status_id, "status", "complete",
                           "request_timestamp", now, "total_count", (json_int_t)n, "success_count",
                           (json_int_t)0, "failure_count", (json_int_t)n, "pending_count",
                           (json_int_t)0, "failures", failures);
    } else {
        json_t *env = json_loadb(r->body.data, r->body.len, 0, NULL);
        json_t *successes = json_array();
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(env, "objects"), i, o) {
            const char *id = json_string_value(json_object_get(o, "id"));
            const char *ver = json_string_value(json_object_get(o, "modified"));
            json_t *s = json_pack("{ss}", "id", id ? id : "");
            if (ver)
                json_object_set_new(s, "version", json_string(ver));
            json_array_append_new(successes, s);
        }
        json_decref(env);
        status = json_pack("{ss ss ss sI sI sI sI so}", "id", status_id, "status", "complete",
                           "request_timestamp", now, "total_count", (json_int_t)res.total,
                           "success_count", (json_int_t)res.total, "failure_count", (json_int_t)0,
                           "pending_count", (json_int_t)0, "successes", successes);
    }
    if (tr_stix_status_save(db, status_id, status, &err) != 0) {
        json_decref(status);
        return taxii_error(r, 500, "%s", err.msg);
    }
    return send_taxii(r, 202, status, NULL, NULL);
}

/* /taxii2/kb/collections/{id}/... */
static enum MHD_Result collection_route(http_request *r, tr_stix_db *db, const char *rest)
{
    char cid[64];
    const char *slash = strchr(rest, '/');
    size_t len = slash ? (size_t)(slash - rest) : strlen(rest);
    if (len == 0 || len >= sizeof cid)
        return taxii_error(r, 404, "no such collection");
    snprintf(cid, sizeof cid, "%.*s", (int)len, rest);
    tr_stix_collection c;
    tr_error err;
    int found = tr_stix_collection_get(db, cid, &c, &err);
    if (found < 0)
        return taxii_error(r, 500, "%s", err.msg);
    if (found == 0)
        return taxii_error(r, 404, "no collection %s", cid);
    const char *sub = slash ? slash + 1 : "";
    bool get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
    bool post = strcmp(r->method, "POST") == 0, del = strcmp(r->method, "DELETE") == 0;
    if (!slash || !*sub) {
        if (!get)
            return taxii_error(r, 405, "a collection is only read");
        return send_taxii(r, 200, collection_json(r, &c), NULL, NULL);
    }
    if (get && !may_read(r, &c))
        return taxii_error(r, 403, "collection %s is not readable with this key's role", c.id);
    filters f;
    enum MHD_Result sent;
    if (strcmp(sub, "objects/") == 0 || strcmp(sub, "objects") == 0) {
        if (post)
            return post_objects(r, db, &c);
        if (!get)
            return taxii_error(r, 405, "objects are read or added");
        if (read_filters(r, &f, TR_STIX_LATEST, &sent) != 0)
            return sent;
        f.q.collection = c.id;
        return send_page(r, db, &f, "objects", false, false, false);
    }
    if (strcmp(sub, "manifest/") == 0 || strcmp(sub, "manifest") == 0) {
        if (!get)
            return taxii_error(r, 405, "a manifest is only read");
        if (read_filters(r, &f, TR_STIX_LATEST, &sent) != 0)
            return sent;
        f.q.collection = c.id;
        return send_page(r, db, &f, "objects", true, false, false);
    }
    if (strncmp(sub, "objects/", 8) == 0) {
        const char *oid_start = sub + 8;
        const char *oslash = strchr(oid_start, '/');
        char oid[300];
        size_t olen = oslash ? (size_t)(oslash - oid_start) : strlen(oid_start);
        if (olen == 0 || olen >= sizeof oid)
            return taxii_error(r, 404, "no such object");
        snprintf(oid, sizeof oid, "%.*s", (int)olen, oid_start);
        const char *tail = oslash ? oslash + 1 : "";
        bool versions = strcmp(tail, "versions/") == 0 || strcmp(tail, "versions") == 0;
        if (*tail && !versions)
            return taxii_error(r, 404, "no such resource");
        if (versions && !get)
            return taxii_error(r, 405, "versions are only read");
        if (del && !versions) {
            if (!may_write(r, &c))
                return taxii_error(r, 403, "collection %s is %s", c.id,
                                   c.can_write ? "not writable with this key's role" : "read-only");
            if (read_filters(r, &f, 0, &sent) != 0)
                return sent;
            int64_t n = tr_stix_collection_remove(db, c.id, oid, f.q.version_ts, &err);
            if (n < 0)
                return taxii_error(r, 500, "%s", err.msg);
            if (n == 0)
                return taxii_error(r, 404, "no object %s in this collection", oid);
            return send_taxii(r, 200, json_object(), NULL, NULL);
        }
        if (!get)
            return taxii_error(r, 405, "an object is read or deleted");
        if (read_filters(r, &f, versions ? TR_STIX_ALL : TR_STIX_LATEST, &sent) != 0)
            return sent;
        const char *one[2] = {oid, NULL};
        f.q.ids = one;
        f.q.types = NULL;
        f.q.collection = c.id;
        return send_page(r, db, &f, versions ? "versions" : "objects", false, versions, true);
    }
    return taxii_error(r, 404, "no such resource in a collection");
}

static enum MHD_Result taxii_main(http_request *r, tr_stix_db *db)
{
    const char *rest = r->rest;
    bool get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
    tr_error err;
    if (!*rest) {
        if (!get)
            return taxii_error(r, 405, "discovery is only read");
        char *base = base_url(r);
        char *root = tr_xasprintf("%s" API_ROOT "/", base);
        free(base);
        json_t *body = json_pack("{ss ss ss s[s]}", "title", "trawl TAXII 2.1 server", "description",
                                 "The STIX 2.1 knowledge base of this trawl server.", "default",
                                 root, "api_roots", root);
        free(root);
        return send_taxii(r, 200, body, NULL, NULL);
    }
    if (strncmp(rest, API_ROOT, strlen(API_ROOT)) != 0 ||
        (rest[strlen(API_ROOT)] != '/' && rest[strlen(API_ROOT)] != '\0'))
        return taxii_error(r, 404, "no API root /taxii2/%s", rest);
    const char *sub = rest + strlen(API_ROOT);
    if (*sub == '/')
        sub++;
    if (!*sub) {
        if (!get)
            return taxii_error(r, 405, "an API root is only read");
        return send_taxii(r, 200,
                          json_pack("{ss ss s[s] sI}", "title", "trawl knowledge base", "description",
                                    "STIX 2.1 objects held by trawl", "versions", TAXII_TYPE,
                                    "max_content_length", (json_int_t)HTTP_STIX_BODY_MAX),
                          NULL, NULL);
    }
    if (strcmp(sub, "collections/") == 0 || strcmp(sub, "collections") == 0) {
        if (!get)
            return taxii_error(r, 405, "collections are only listed here");
        tr_stix_collection *v = NULL;
        size_t n = 0;
        if (tr_stix_collections(db, &v, &n, &err) != 0)
            return taxii_error(r, 500, "%s", err.msg);
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, collection_json(r, &v[i]));
        free(v);
        return send_taxii(r, 200, json_pack("{so}", "collections", arr), NULL, NULL);
    }
    if (strncmp(sub, "collections/", 12) == 0)
        return collection_route(r, db, sub + 12);
    if (strncmp(sub, "status/", 7) == 0) {
        if (!get)
            return taxii_error(r, 405, "a status is only read");
        char sid[64];
        const char *s = sub + 7;
        size_t len = strcspn(s, "/");
        if (len == 0 || len >= sizeof sid)
            return taxii_error(r, 404, "no such status");
        snprintf(sid, sizeof sid, "%.*s", (int)len, s);
        json_t *st = NULL;
        int found = tr_stix_status_load(db, sid, &st, &err);
        if (found < 0)
            return taxii_error(r, 500, "%s", err.msg);
        if (!found)
            return taxii_error(r, 404, "no status %s", sid);
        return send_taxii(r, 200, st, NULL, NULL);
    }
    return taxii_error(r, 404, "no such resource in this API root");
}

enum MHD_Result api_taxii(http_request *r)
{
    if (!accepts(r, "application/taxii+json"))
        return taxii_error(r, 406, "this server answers %s", TAXII_TYPE);
    tr_stix_db *db = NULL;
    tr_error err;
    if (tr_stix_open(r->data_dir, &db, &err) != 0)
        return taxii_error(r, 503, "%s", err.msg);
    enum MHD_Result rc = taxii_main(r, db);
    tr_stix_close(db);
    return rc;
}
