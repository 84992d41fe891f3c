/* GreyNoise's API, v3 and v2, over trawl's noise store: the paths,
 * parameters, field names and status codes GreyNoise's clients expect
 * (docs/greynoise.md). Errors are GreyNoise's {"message": ...}. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http_internal.h"
#include "noise/noise.h"

#define MULTI_MAX 1000      /* IPs per multi call, as GreyNoise */
#define GNQL_SIZE_MAX 10000

static enum MHD_Result gn_error(http_request *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result gn_error(http_request *r, unsigned status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return http_send_json(r, status, json_pack("{s:s}", "message", msg));
}

bool http_greynoise_path(const char *url)
{
    return strcmp(url, "/ping") == 0 || strncmp(url, "/v3/", 4) == 0 ||
           strncmp(url, "/v2/", 4) == 0 || strncmp(url, "/v1/cve/", 8) == 0;
}

enum MHD_Result http_send_greynoise_error(http_request *r, unsigned status, const char *msg)
{
    return gn_error(r, status, "%s", msg);
}

static bool valid_ip(const char *ip)
{
    uint8_t a[16];
    return inet_pton(strchr(ip, ':') ? AF_INET6 : AF_INET, ip, a) == 1;
}

static bool truthy(const char *v)
{
    return v && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* A record (tr_noise_ip) is "noise" while seen in the last 90 days. */
static bool recent(json_t *rec)
{
    const char *last = str(rec, "last_seen");     /* YYYY-MM-DD */
    int y, m, d;
    if (sscanf(last, "%d-%d-%d", &y, &m, &d) != 3)
        return false;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    return (int64_t)timegm(&tm) >= tr_now_unix() - 90 * 86400 - 86400;
}

typedef struct lookup {
    int seen;                 /* 1, 0, -1 not an address */
    json_t *rec;              /* tr_noise_ip's */
    int riot;
    json_t *riot_rec;
} lookup;

/* quick: the few fields of a quick check only (tr_noise_quick). */
static int look_as(tr_noise *nz, const char *ip, lookup *l, bool quick, tr_error *err)
{
    memset(l, 0, sizeof *l);
    if (!valid_ip(ip)) {
        l->seen = -1;
        return 0;
    }
    if ((l->seen = quick ? tr_noise_quick(nz, ip, &l->rec, err) : tr_noise_ip(nz, ip, &l->rec, err)) < 0)
        return -1;
    if ((l->riot = tr_noise_riot(nz, ip, &l->riot_rec, err)) < 0) {
        json_decref(l->rec);
        return -1;
    }
    return 0;
}

static int look(tr_noise *nz, const char *ip, lookup *l, tr_error *err)
{
    return look_as(nz, ip, l, false, err);
}

static void look_free(lookup *l)
{
    json_decref(l->rec);
    json_decref(l->riot_rec);
}

/* GreyNoise's quick codes. */
static const char *quick_code(const lookup *l)
{
    if (l->seen < 0)
        return "0x07";
    if (l->seen == 0)
        return "0x00";
    if (!recent(l->rec))
        return "0x08";
    return json_is_true(json_object_get(l->rec, "spoofable")) ? "0x02" : "0x01";
}

static json_t *v2_quick(const char *ip, const lookup *l)
{
    const char *code = quick_code(l);
    bool noise = strcmp(code, "0x01") == 0 || strcmp(code, "0x02") == 0;
    return json_pack("{s:s, s:b, s:b, s:s}", "ip", ip, "noise", noise, "riot", l->riot == 1,
                     "code", code);
}

static const char *const context_fields[] = {"ip", "seen", "first_seen", "last_seen", "tags",
                                             "actor", "spoofable", "classification", "cve",
                                             "bot", "vpn", "vpn_service", "metadata",
                                             "raw_data"};

static json_t *v2_context(const char *ip, const lookup *l)
{
    if (l->seen != 1)
        return json_pack("{s:s, s:b}", "ip", ip, "seen", 0);
    json_t *o = json_object();
    for (size_t i = 0; i < sizeof context_fields / sizeof context_fields[0]; i++)
        json_object_set(o, context_fields[i], json_object_get(l->rec, context_fields[i]));
    return o;
}

static json_t *bsi(const lookup *l, bool quick)
{
    if (l->riot != 1)
        return json_pack("{s:b}", "found", 0);
    json_t *rr = l->riot_rec;
    if (quick)
        return json_pack("{s:b, s:s}", "found", 1, "trust_level", str(rr, "trust_level"));
    return json_pack("{s:b, s:s, s:s, s:s, s:s, s:O, s:s, s:s}", "found", 1, "category",
                     str(rr, "category"), "name", str(rr, "name"), "description",
                     str(rr, "description"), "explanation",
                     "listed in this trawl's RIOT allow-list", "last_updated",
                     json_object_get(rr, "last_updated"), "reference", str(rr, "reference"),
                     "trust_level", str(rr, "trust_level"));
}

/* The v3 record: internet_scanner_intelligence from the per-IP record. */
static json_t *isi(const lookup *l, bool quick)
{
    if (l->seen != 1)
        return json_pack("{s:b}", "found", 0);
    json_t *rec = l->rec;
    if (quick)
        return json_pack("{s:b, s:s}", "found", 1, "classification", str(rec, "classification"));
    json_t *tags = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(rec, "tag_details"), i, t) {
        json_array_append_new(
            tags, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[], s:[], s:b, s:O, s:O}", "id",
                            str(t, "id"), "slug", str(t, "slug"), "name", str(t, "name"),
                            "description", "", "category", str(t, "category"), "intention",
                            str(t, "intention"), "references", "cves", "recommend_block",
                            strcmp(str(t, "intention"), "malicious") == 0, "created",
                            json_object_get(t, "first_seen"), "updated_at",
                            json_object_get(t, "last_seen")));
    }
    json_t *raw = json_object_get(rec, "raw_data"), *meta = json_deep_copy(json_object_get(rec, "metadata"));
    json_t *http = json_object_get(raw, "http");
    json_t *o = json_pack(
        "{s:b, s:s, s:s, s:O, s:o, s:s, s:O, s:s, s:O, s:b, s:b, s:s, s:O, s:o,"
        " s:{s:O, s:O, s:O, s:{s:[], s:[], s:[], s:[], s:[], s:O, s:O, s:[], s:O},"
        " s:O, s:{s:[], s:O}, s:{s:[]}}}",
        "found", 1, "first_seen", str(rec, "first_seen"), "last_seen", str(rec, "last_seen"),
        "last_seen_timestamp", json_object_get(rec, "last_seen_time"), "tags", tags, "actor",
        str(rec, "actor"), "spoofable", json_object_get(rec, "spoofable"), "classification",
        str(rec, "classification"), "cves", json_object_get(rec, "cve"), "bot", 0, "vpn", 0,
        "vpn_service", "", "tor", json_object_get(meta, "tor"), "metadata", meta, "raw_data",
        "scan", json_object_get(raw, "scan"), "ja3", json_object_get(raw, "ja3"), "hassh",
        json_object_get(raw, "hassh"), "http", "md5", "cookie_keys", "request_authorization",
        "request_cookies", "request_header", "method", json_object_get(http, "method"), "path",
        json_object_get(http, "path"), "request_origin", "useragent",
        json_object_get(http, "useragent"), "source", json_object_get(raw, "source"), "tls",
        "cipher", "ja4", json_object_get(json_object_get(raw, "tls"), "ja4"), "ssh", "key");
    return o;
}

static json_t *v3_record(const char *ip, const lookup *l, bool quick)
{
    return json_pack("{s:s, s:o, s:o}", "ip", ip, "business_service_intelligence", bsi(l, quick),
                     "internet_scanner_intelligence", isi(l, quick));
}

/* The IPs of a multi call: {"ips": [...]} in a POST, ?ips=a,b in a GET. */
static json_t *multi_ips(http_request *r, enum MHD_Result *sent)
{
    json_t *ips = NULL;
    if (strcmp(r->method, "POST") == 0) {
        json_t *body = http_json_body(r, sent);
        if (!body)
            return NULL;
        ips = json_incref(json_object_get(body, "ips"));
        json_decref(body);
        if (!json_is_array(ips)) {
            json_decref(ips);
            *sent = gn_error(r, 400, "expected {\"ips\": [\"IP\", ...]}");
            return NULL;
        }
    } else {
        const char *q = http_query(r, "ips");
        if (!q || !*q) {
            *sent = gn_error(r, 400, "ips is required: ?ips=IP,IP");
            return NULL;
        }
        ips = json_array();
        char *c = tr_xstrdup(q), *save = NULL;
        for (char *t = strtok_r(c, ",", &save); t; t = strtok_r(NULL, ",", &save))
            json_array_append_new(ips, json_string(t));
        free(c);
    }
    size_t i;
    json_t *v;
    json_array_foreach(ips, i, v) if (!json_is_string(v))
    {
        json_decref(ips);
        *sent = gn_error(r, 400, "ips[%zu] is not a string", i);
        return NULL;
    }
    if (json_array_size(ips) > MULTI_MAX) {
        size_t n = json_array_size(ips);
        json_decref(ips);
        *sent = gn_error(r, 400, "%zu IPs in one request; at most %d", n, MULTI_MAX);
        return NULL;
    }
    return ips;
}

typedef enum { SHAPE_V2_QUICK, SHAPE_V2_CONTEXT, SHAPE_V3, SHAPE_V3_QUICK } shape;

static enum MHD_Result multi(http_request *r, tr_noise *nz, shape sh)
{
    enum MHD_Result sent = MHD_NO;
    json_t *ips = multi_ips(r, &sent);
    if (!ips)
        return sent;
    json_t *data = json_array(), *missing = json_array();
    size_t i;
    json_t *v;
    tr_error err;
    /* All the answers from one snapshot, and one read lock for them all. */
    if (tr_noise_read_begin(nz, &err) != 0) {
        json_decref(ips);
        json_decref(data);
        json_decref(missing);
        return gn_error(r, 500, "%s", err.msg);
    }
    json_array_foreach(ips, i, v) {
        const char *ip = json_string_value(v);
        lookup l;
        if (look_as(nz, ip, &l, sh == SHAPE_V2_QUICK || sh == SHAPE_V3_QUICK, &err) != 0) {
            tr_noise_read_end(nz);
            json_decref(ips);
            json_decref(data);
            json_decref(missing);
            return gn_error(r, 500, "%s", err.msg);
        }
        switch (sh) {
        case SHAPE_V2_QUICK: json_array_append_new(data, v2_quick(ip, &l)); break;
        case SHAPE_V2_CONTEXT: json_array_append_new(data, v2_context(ip, &l)); break;
        case SHAPE_V3:
        case SHAPE_V3_QUICK:
            if (l.seen == 1 || l.riot == 1)
                json_array_append_new(data, v3_record(ip, &l, sh == SHAPE_V3_QUICK));
            else
                json_array_append_new(missing, json_string(ip));
            break;
        }
        look_free(&l);
    }
    tr_noise_read_end(nz);
    json_decref(ips);
    if (sh == SHAPE_V2_QUICK) {
        json_decref(missing);
        return http_send_json(r, 200, data);
    }
    if (sh == SHAPE_V2_CONTEXT) {
        json_decref(missing);
        return http_send_json(r, 200, json_pack("{s:o}", "data", data));
    }
    return http_send_json(r, 200,
                          json_pack("{s:o, s:{s:[], s:s, s:o}}", "data", data, "request_metadata",
                                    "restricted_fields", "message", "", "ips_not_found", missing));
}

static enum MHD_Result one_ip(http_request *r, tr_noise *nz, const char *ip, shape sh)
{
    tr_error err;
    lookup l;
    if (look_as(nz, ip, &l, sh == SHAPE_V2_QUICK, &err) != 0)
        return gn_error(r, 500, "%s", err.msg);
    if (l.seen < 0)
        return gn_error(r, 400, "Request is not a valid routable IPv4 address");
    enum MHD_Result rc;
    if (sh == SHAPE_V2_QUICK)
        rc = http_send_json(r, 200, v2_quick(ip, &l));
    else if (sh == SHAPE_V2_CONTEXT)
        rc = http_send_json(r, 200, v2_context(ip, &l));
    else
        rc = http_send_json(r, 200, v3_record(ip, &l, false));
    look_free(&l);
    return rc;
}

static enum MHD_Result community(http_request *r, tr_noise *nz, const char *ip)
{
    tr_error err;
    lookup l;
    if (look(nz, ip, &l, &err) != 0)
        return gn_error(r, 500, "%s", err.msg);
    if (l.seen < 0)
        return gn_error(r, 400, "Request is not a valid routable IPv4 address");
    enum MHD_Result rc;
    if (l.seen != 1 && l.riot != 1) {
        rc = http_send_json(r, 404,
                            json_pack("{s:s, s:b, s:b, s:s}", "ip", ip, "noise", 0, "riot", 0,
                                      "message",
                                      "IP not observed scanning the internet or contained in RIOT"
                                      " data set."));
    } else {
        bool noise = l.seen == 1 && recent(l.rec);
        const char *cls = l.seen == 1 ? str(l.rec, "classification") : "benign";
        const char *name = l.riot == 1 ? str(l.riot_rec, "name") : str(l.rec, "actor");
        char *link = tr_xasprintf("/ui/#/noise/ip/%s", ip);
        rc = http_send_json(r, 200,
                            json_pack("{s:s, s:b, s:b, s:s, s:s, s:s, s:s, s:s}", "ip", ip,
                                      "noise", noise, "riot", l.riot == 1, "classification", cls,
                                      "name", name, "link", link, "last_seen",
                                      l.seen == 1 ? str(l.rec, "last_seen") : "", "message",
                                      "Success"));
        free(link);
    }
    look_free(&l);
    return rc;
}

static enum MHD_Result riot_v2(http_request *r, tr_noise *nz, const char *ip)
{
    if (!valid_ip(ip))
        return gn_error(r, 400, "Request is not a valid routable IPv4 address");
    json_t *rr = NULL;
    tr_error err;
    int f = tr_noise_riot(nz, ip, &rr, &err);
    if (f < 0)
        return gn_error(r, 500, "%s", err.msg);
    if (f == 0)
        return http_send_json(r, 200, json_pack("{s:s, s:b}", "ip", ip, "riot", 0));
    json_t *o = json_pack("{s:s, s:b, s:s, s:s, s:s, s:s, s:O, s:s, s:s, s:s}", "ip", ip, "riot",
                          1, "category", str(rr, "category"), "name", str(rr, "name"),
                          "description", str(rr, "description"), "explanation",
                          "listed in this trawl's RIOT allow-list", "last_updated",
                          json_object_get(rr, "last_updated"), "logo_url", "", "reference",
                          str(rr, "reference"), "trust_level", str(rr, "trust_level"));
    json_decref(rr);
    return http_send_json(r, 200, o);
}

static int int_param(http_request *r, const char *k, long dflt, long lo, long hi, long *out)
{
    const char *v = http_query(r, k);
    if (!v || !*v) {
        *out = dflt;
        return 0;
    }
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

static enum MHD_Result gnql(http_request *r, tr_noise *nz, bool v3)
{
    const char *q = http_query(r, "query");
    if (!q || !*q)
        return gn_error(r, 400, "query is required");
    long size;
    if (int_param(r, "size", GNQL_SIZE_MAX, 1, GNQL_SIZE_MAX, &size) != 0)
        return gn_error(r, 400, "size is 1 to %d", GNQL_SIZE_MAX);
    bool quick = truthy(http_query(r, "quick"));
    json_t *res = NULL;
    tr_error err;
    /* The page and its records from one snapshot. */
    if (tr_noise_read_begin(nz, &err) != 0)
        return gn_error(r, 500, "%s", err.msg);
    if (tr_noise_gnql(nz, q, size, http_query(r, "scroll"), &res, &err) != 0) {
        tr_noise_read_end(nz);
        return gn_error(r, strncmp(err.msg, "GNQL:", 5) == 0 ? 400 : 500, "%s", err.msg);
    }
    json_t *data = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(res, "ips"), i, v) {
        lookup l;
        if (look_as(nz, json_string_value(v), &l, v3 && quick, &err) != 0)
            continue;
        json_array_append_new(data, v3 ? v3_record(json_string_value(v), &l, quick)
                                       : v2_context(json_string_value(v), &l));
        look_free(&l);
    }
    tr_noise_read_end(nz);
    json_int_t count = json_integer_value(json_object_get(res, "count"));
    const char *msg = count ? "ok" : "no results";
    json_t *o;
    if (v3)
        o = json_pack("{s:o, s:{s:[], s:O, s:s, s:s, s:O, s:I, s:s}}", "data", data,
                      "request_metadata", "restricted_fields", "scroll",
                      json_object_get(res, "scroll"), "message", msg, "query", q, "complete",
                      json_object_get(res, "complete"), "count", count, "adjusted_query", "");
    else
        o = json_pack("{s:O, s:I, s:o, s:s, s:s, s:O}", "complete",
                      json_object_get(res, "complete"), "count", count, "data", data, "message",
                      msg, "query", q, "scroll", json_object_get(res, "scroll"));
    json_decref(res);
    return http_send_json(r, 200, o);
}

static enum MHD_Result gnql_stats(http_request *r, tr_noise *nz)
{
    const char *q = http_query(r, "query");
    if (!q || !*q)
        return gn_error(r, 400, "query is required");
    long count;
    if (int_param(r, "count", 10, 1, 10000, &count) != 0)
        return gn_error(r, 400, "count is 1 to 10000");
    json_t *res = NULL;
    tr_error err;
    if (tr_noise_gnql_stats(nz, q, count, &res, &err) != 0)
        return gn_error(r, strncmp(err.msg, "GNQL:", 5) == 0 ? 400 : 500, "%s", err.msg);
    return http_send_json(r, 200, res);
}

static enum MHD_Result metadata(http_request *r, tr_noise *nz)
{
    json_t *tags = NULL;
    tr_error err;
    if (tr_noise_tags(nz, &tags, &err) != 0)
        return gn_error(r, 500, "%s", err.msg);
    json_t *md = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) {
        json_array_append_new(
            md, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:O, s:b, s:O, s:[]}", "id",
                          str(t, "id"), "label", str(t, "name"), "slug", str(t, "slug"), "name",
                          str(t, "name"), "category", str(t, "category"), "intention",
                          str(t, "intention"), "description", str(t, "description"),
                          "references", json_object_get(t, "references"), "cves",
                          json_object_get(t, "cves"), "recommend_block",
                          strcmp(str(t, "intention"), "malicious") == 0, "created_at",
                          json_object_get(t, "created"), "related_tags"));
    }
    json_decref(tags);
    return http_send_json(r, 200, json_pack("{s:o}", "metadata", md));
}

static bool valid_cve(const char *s)
{
    if (strncasecmp(s, "CVE-", 4) != 0)
        return false;
    int i = 4, d = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++)
        d++;
    if (d != 4 || s[i++] != '-')
        return false;
    for (d = 0; s[i] >= '0' && s[i] <= '9'; i++)
        d++;
    return d >= 4 && d <= 7 && !s[i];
}

/* One noise handle per server thread, kept between requests: opening one
 * (schema check, tag-set version, actors, geoip files) costs more than a
 * quick lookup. Per thread, as a handle serves one thread at a time; closed
 * when the thread ends. Settings changed by another process (geoip, mmdb)
 * reach these handles when the server restarts; the data is always read
 * fresh. */
typedef struct nz_cache {
    char *dir;
    tr_noise *n;
} nz_cache;
static pthread_key_t nz_key;
static pthread_once_t nz_once = PTHREAD_ONCE_INIT;

static void nz_free(void *p)
{
    nz_cache *c = p;
    tr_noise_close(c->n);
    free(c->dir);
    free(c);
}

static void nz_init(void)
{
    if (pthread_key_create(&nz_key, nz_free) != 0)
        tr_die("pthread_key_create failed");
}

static tr_noise *noise_get(http_request *r, tr_error *err)
{
    pthread_once(&nz_once, nz_init);
    nz_cache *c = pthread_getspecific(nz_key);
    if (c && strcmp(c->dir, r->data_dir) == 0)
        return c->n;
    tr_noise *n = NULL;
    if (tr_noise_open(r->data_dir, &n, err) != 0)
        return NULL;
    if (c) {
        tr_noise_close(c->n);
        free(c->dir);
    } else {
        c = tr_xcalloc(1, sizeof *c);
    }
    c->dir = tr_xstrdup(r->data_dir);
    c->n = n;
    pthread_setspecific(nz_key, c);
    return n;
}

enum MHD_Result api_greynoise(http_request *r)
{
    const char *p = r->path;
    if (strcmp(p, "/ping") == 0)
        return http_send_json(r, 200,
                              json_pack("{s:s, s:s, s:s, s:s}", "message", "pong", "offering",
                                        "enterprise", "expiration", "2099-12-31", "address", ""));
    tr_error err;
    tr_noise *nz = noise_get(r, &err);
    if (!nz)
        return gn_error(r, 503, "%s", err.msg);
    bool post = strcmp(r->method, "POST") == 0;
    enum MHD_Result rc;
    const char *rest;
    if (strcmp(p, "/v3/ip") == 0 && post)
        rc = multi(r, nz, truthy(http_query(r, "quick")) ? SHAPE_V3_QUICK : SHAPE_V3);
    else if (strncmp(p, "/v3/ip/", 7) == 0 && p[7])
        rc = one_ip(r, nz, p + 7, SHAPE_V3);
    else if (strcmp(p, "/v3/gnql") == 0)
        rc = gnql(r, nz, true);
    else if (strncmp(p, "/v3/community/", 14) == 0 && p[14])
        rc = community(r, nz, p + 14);
    else if (strncmp(p, "/v3/noise/ips/", 14) == 0 && (rest = strchr(p + 14, '/'))) {
        char ip[64];
        snprintf(ip, sizeof ip, "%.*s", (int)(rest - (p + 14)), p + 14);
        long days, limit;
        json_t *o = NULL;
        int f;
        if (!valid_ip(ip)) {
            rc = gn_error(r, 400, "Request is not a valid routable IPv4 address");
        } else if (strcmp(rest, "/timeline") == 0) {
            const char *field = http_query(r, "field");
            if (int_param(r, "days", 1, 1, 90, &days) != 0)
                rc = gn_error(r, 400, "days is 1 to 90");
            else if ((f = tr_noise_timeline(nz, ip, field && *field ? field : "classification",
                                            (int)days, &o, &err)) != 0)
                rc = gn_error(r, 400, "%s", err.msg);
            else
                rc = http_send_json(r, 200, o);
        } else if (strcmp(rest, "/hourly-summary") == 0) {
            if (int_param(r, "days", 1, 1, 90, &days) != 0 ||
                int_param(r, "limit", 100, 1, 1000, &limit) != 0)
                rc = gn_error(r, 400, "days is 1 to 90, limit 1 to 1000");
            else if (tr_noise_hourly(nz, ip, (int)days, (int)limit, &o, &err) != 0)
                rc = gn_error(r, 500, "%s", err.msg);
            else
                rc = http_send_json(r, 200, o);
        } else {
            rc = gn_error(r, 404, "no endpoint %s", p);
        }
    } else if (strncmp(p, "/v3/similarity/ips/", 19) == 0 && p[19]) {
        long limit;
        const char *ms = http_query(r, "minimum_score");
        char *end = NULL;
        double min = ms && *ms ? strtod(ms, &end) : 0.9;
        json_t *o = NULL;
        int f;
        /* Old clients sent a percentage (90): read it as 0.9. */
        if (min > 1 && min <= 100)
            min /= 100;
        if (!valid_ip(p + 19))
            rc = gn_error(r, 400, "Request is not a valid routable IPv4 address");
        else if (int_param(r, "limit", 50, 1, 1000, &limit) != 0 || (end && *end) || min < 0 ||
                 min > 1)
            rc = gn_error(r, 400, "limit is 1 to 1000, minimum_score 0 to 1");
        else if ((f = tr_noise_similar(nz, p + 19, (int)limit, min, &o, &err)) < 0)
            rc = gn_error(r, 500, "%s", err.msg);
        else if (f == 0)
            rc = gn_error(r, 404, "IP not found");
        else
            rc = http_send_json(r, 200, o);
    } else if (strncmp(p, "/v1/cve/", 8) == 0) {
        json_t *o = NULL;
        int f;
        if (!valid_cve(p + 8))
            rc = gn_error(r, 400, "'%.40s' is not a CVE identifier (CVE-YYYY-NNNN)", p + 8);
        else if ((f = tr_noise_cve(nz, p + 8, &o, &err)) < 0)
            rc = gn_error(r, 500, "%s", err.msg);
        else if (f == 0)
            rc = gn_error(r, 404, "CVE not found");
        else
            rc = http_send_json(r, 200, o);
    } else if (strncmp(p, "/v2/noise/quick/", 16) == 0 && p[16])
        rc = one_ip(r, nz, p + 16, SHAPE_V2_QUICK);
    else if (strcmp(p, "/v2/noise/multi/quick") == 0)
        rc = multi(r, nz, SHAPE_V2_QUICK);
    else if (strncmp(p, "/v2/noise/context/", 18) == 0 && p[18])
        rc = one_ip(r, nz, p + 18, SHAPE_V2_CONTEXT);
    else if (strcmp(p, "/v2/noise/multi/context") == 0 && post)
        rc = multi(r, nz, SHAPE_V2_CONTEXT);
    else if (strncmp(p, "/v2/riot/", 9) == 0 && p[9])
        rc = riot_v2(r, nz, p + 9);
    else if (strcmp(p, "/v2/experimental/gnql") == 0)
        rc = gnql(r, nz, false);
    else if (strcmp(p, "/v2/experimental/gnql/stats") == 0)
        rc = gnql_stats(r, nz);
    else if (strncmp(p, "/v2/interesting/", 16) == 0 && p[16] && post) {
        if (tr_noise_interesting(nz, p + 16, r->key_name, &err) != 0)
            rc = gn_error(r, 400, "Request is not a valid routable IPv4 address");
        else
            rc = http_send_json(r, 200, json_object());
    } else if (strcmp(p, "/v2/meta/metadata") == 0)
        rc = metadata(r, nz);
    else
        rc = gn_error(r, 404, "no endpoint %s %s", r->method, p);
    return rc;
}

/* trawl's own /api/noise/sensors and /api/noise/tag-days/NAME, for the
 * noise pages. */
enum MHD_Result api_noise_ui(http_request *r)
{
    tr_noise *nz = NULL;
    tr_error err;
    if (tr_noise_open(r->data_dir, &nz, &err) != 0)
        return http_send_error(r, 503, "%s", err.msg);
    json_t *o = NULL;
    int rc;
    if (strcmp(r->rest, "sensors") == 0) {
        rc = tr_noise_sensors(nz, &o, &err);
        if (rc == 0)
            o = json_pack("{s:o}", "sensors", o);
    } else {
        long days;
        if (int_param(r, "days", 30, 1, 365, &days) != 0) {
            tr_noise_close(nz);
            return http_send_error(r, 400, "days is 1 to 365");
        }
        rc = tr_noise_tag_days(nz, r->rest + strlen("tag-days/"), (int)days, &o, &err);
    }
    tr_noise_close(nz);
    if (rc != 0)
        return http_send_error(r, 500, "%s", err.msg);
    return http_send_json(r, 200, o);
}
