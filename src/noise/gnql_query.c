/* GNQL run against the store: pages of matching IPs and their stats, all
 * from the per-IP tables. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "noise/gnql.h"
#include "noise/noise_internal.h"

/* gnql_cidr(ip_text, 'net/bits'): for CIDRs that a text range cannot
 * express. The parsed network is kept as auxdata across rows. */
typedef struct cidr_aux {
    int family, bits;
    uint8_t addr[16];
} cidr_aux;

static void cidr_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const char *ip = (const char *)sqlite3_value_text(argv[0]);
    cidr_aux *net = sqlite3_get_auxdata(ctx, 1);
    if (!net) {
        const char *t = (const char *)sqlite3_value_text(argv[1]);
        net = sqlite3_malloc(sizeof *net);
        if (!net) {
            sqlite3_result_error_nomem(ctx);
            return;
        }
        if (!t || noise_parse_cidr(t, &net->family, net->addr, &net->bits) != 0) {
            sqlite3_free(net);
            sqlite3_result_int(ctx, 0);
            return;
        }
        sqlite3_set_auxdata(ctx, 1, net, sqlite3_free);
    }
    uint8_t a[16];
    int fam = ip && strchr(ip, ':') ? 6 : 4;
    if (!ip || fam != net->family || inet_pton(fam == 4 ? AF_INET : AF_INET6, ip, a) != 1) {
        sqlite3_result_int(ctx, 0);
        return;
    }
    int bits = net->bits, k = 0;
    for (; bits >= 8; bits -= 8, k++)
        if (a[k] != net->addr[k]) {
            sqlite3_result_int(ctx, 0);
            return;
        }
    uint8_t mask = bits ? (uint8_t)(0xff << (8 - bits)) : 0;
    sqlite3_result_int(ctx, bits == 0 || (a[k] & mask) == (net->addr[k] & mask));
}

static int bind_params(sqlite3_stmt *st, json_t *params)
{
    size_t i;
    json_t *v;
    json_array_foreach(params, i, v) {
        if (json_is_integer(v))
            sqlite3_bind_int64(st, (int)i + 1, json_integer_value(v));
        else
            sqlite3_bind_text(st, (int)i + 1, json_string_value(v), -1, SQLITE_TRANSIENT);
    }
    return (int)i;
}

/* Parses and compiles; registers gnql_cidr on the connection. */
static int prepare(tr_noise *n, const char *query, char **where, json_t **params, tr_error *err)
{
    int64_t now = tr_now_unix();
    tr_gnql *g = NULL;
    if (tr_gnql_parse(query, now, &g, err) != 0)
        return -1;
    int rc = tr_gnql_sql(g, now, where, params, err);
    tr_gnql_free(g);
    if (rc != 0)
        return -1;
    if (sqlite3_create_function(n->db, "gnql_cidr", 2,
                                SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                                cidr_fn, NULL, NULL) != SQLITE_OK) {
        free(*where);
        json_decref(*params);
        return noise_db_fail(n->db, err);
    }
    return 0;
}

static char *hex(const char *s)
{
    size_t len = strlen(s);
    char *o = tr_xmalloc(len * 2 + 1);
    for (size_t i = 0; i < len; i++)
        snprintf(o + 2 * i, 3, "%02x", (unsigned char)s[i]);
    o[len * 2] = 0;
    return o;
}

static int unhex(const char *s, char *out, size_t outsz)
{
    size_t len = strlen(s);
    if (len % 2 || len / 2 >= outsz)
        return -1;
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (char)v;
    }
    out[len / 2] = 0;
    return 0;
}

static int page_out(const char *query, int64_t size, json_t *ips, int64_t count, json_t **out);

int tr_noise_gnql(tr_noise *n, const char *query, int64_t size, const char *scroll, json_t **out,
                  tr_error *err)
{
    if (size <= 0 || size > 10000)
        size = 10000;
    char after[64] = "";
    if (scroll && *scroll && unhex(scroll, after, sizeof after) != 0)
        return tr_fail(err, "GNQL: the scroll token '%.40s' is not one this server gave",
                       scroll);
    json_t *ips = json_array();
    int64_t count = 0;
    if (!n->gnql_sql) {
        int64_t now = tr_now_unix();
        tr_gnql *g = NULL;
        int rc = tr_gnql_parse(query, now, &g, err);
        if (rc == 0)
            rc = noise_ix_page(n, g, now, size, after, ips, &count, err);
        tr_gnql_free(g);
        if (rc != 0) {
            json_decref(ips);
            return -1;
        }
        return page_out(query, size, ips, count, out);
    }
    char *where = NULL;
    json_t *params = NULL;
    if (prepare(n, query, &where, &params, err) != 0) {
        json_decref(ips);
        return -1;
    }
    char *csql = tr_xasprintf("SELECT count(*) FROM noise_ips i WHERE %s", where);
    char *psql = tr_xasprintf("SELECT i.ip FROM noise_ips i WHERE (%s) AND i.ip > ?%zu"
                              " ORDER BY i.ip LIMIT ?%zu",
                              where, json_array_size(params) + 1, json_array_size(params) + 2);
    free(where);
    sqlite3_stmt *cs = NULL, *ps = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(n->db, csql, -1, &cs, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(n->db, psql, -1, &ps, NULL) != SQLITE_OK) {
        noise_db_fail(n->db, err);
        goto done;
    }
    bind_params(cs, params);
    int np = bind_params(ps, params);
    sqlite3_bind_text(ps, np + 1, after, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ps, np + 2, size + 1);     /* one more: is there a next page? */
    if (sqlite3_step(cs) != SQLITE_ROW) {
        noise_db_fail(n->db, err);
        goto done;
    }
    count = sqlite3_column_int64(cs, 0);
    int s;
    while ((s = sqlite3_step(ps)) == SQLITE_ROW)
        json_array_append_new(ips, json_string((const char *)sqlite3_column_text(ps, 0)));
    if (s != SQLITE_DONE) {
        noise_db_fail(n->db, err);
        goto done;
    }
    rc = 0;
done:
    sqlite3_finalize(cs);
    sqlite3_finalize(ps);
    free(csql);
    free(psql);
    json_decref(params);
    if (rc != 0) {
        json_decref(ips);
        return -1;
    }
    return page_out(query, size, ips, count, out);
}

/* {query, count, complete, scroll, ips} from a page read one IP long. */
static int page_out(const char *query, int64_t size, json_t *ips, int64_t count, json_t **out)
{
    bool more = json_array_size(ips) > (size_t)size;
    char *tok = NULL;
    if (more) {
        json_array_remove(ips, (size_t)size);
        tok = hex(json_string_value(json_array_get(ips, (size_t)size - 1)));
    }
    json_t *o = json_pack("{s:s, s:I, s:b, s:s, s:o}", "query", query, "count",
                          (json_int_t)count, "complete", !more, "scroll", tok ? tok : "", "ips",
                          ips);
    free(tok);
    *out = o;
    return 0;
}

/* ---- stats: every list counted in one walk of the matches ----------------
 * Distinct matching IPs per key, counted in C while the matches and their
 * set values stream by once (the SQL form re-read the matches for each of
 * the eleven lists). Lists are ordered as SQL's "ORDER BY count DESC, key"
 * (keys: integers numerically, texts bytewise) and cut to the top count. */
typedef struct facet_ent {
    char *key;                /* NULL for integer keys */
    int64_t ikey, count;
    size_t last;              /* 1 + the sequence number of the last IP counted */
} facet_ent;

typedef struct facet {
    facet_ent *e;
    size_t n, cap, *slot, nslot;
} facet;

static uint64_t facet_hash(const char *key, int64_t ikey)
{
    uint64_t h = 1469598103934665603ULL;
    if (key)
        for (const char *p = key; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    else
        h = (h ^ (uint64_t)ikey) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static void facet_grow(facet *f)
{
    f->nslot = f->nslot ? f->nslot * 2 : 64;
    free(f->slot);
    f->slot = tr_xmalloc(f->nslot * sizeof *f->slot);
    for (size_t i = 0; i < f->nslot; i++)
        f->slot[i] = SIZE_MAX;
    for (size_t i = 0; i < f->n; i++) {
        size_t k = (size_t)facet_hash(f->e[i].key, f->e[i].ikey) & (f->nslot - 1);
        while (f->slot[k] != SIZE_MAX)
            k = (k + 1) & (f->nslot - 1);
        f->slot[k] = i;
    }
}

/* Counts IP number seq (0, 1, ...) under a key (text, or ikey when NULL),
 * once however often it comes. */
static void facet_bump(facet *f, const char *key, int64_t ikey, size_t seq)
{
    if (2 * (f->n + 1) > f->nslot)
        facet_grow(f);
    size_t k = (size_t)facet_hash(key, ikey) & (f->nslot - 1);
    while (f->slot[k] != SIZE_MAX) {
        facet_ent *e = &f->e[f->slot[k]];
        if (key ? e->key && strcmp(e->key, key) == 0 : !e->key && e->ikey == ikey) {
            if (e->last != seq + 1) {
                e->count++;
                e->last = seq + 1;
            }
            return;
        }
        k = (k + 1) & (f->nslot - 1);
    }
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 32;
        f->e = tr_xrealloc(f->e, f->cap * sizeof *f->e);
    }
    f->e[f->n] = (facet_ent){key ? tr_xstrdup(key) : NULL, ikey, 1, seq + 1};
    f->slot[k] = f->n++;
}

static int facet_cmp(const void *pa, const void *pb)
{
    const facet_ent *a = pa, *b = pb;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    if (a->key && b->key)
        return strcmp(a->key, b->key);
    return a->ikey < b->ikey ? -1 : a->ikey > b->ikey;
}

static void facet_free(facet *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->e[i].key);
    free(f->e);
    free(f->slot);
}

/* The top count entries as [{field: key, "count": n}]; spoofable's keys
 * are booleans. */
static json_t *facet_list(facet *f, int64_t count, const char *field)
{
    if (f->n)
        qsort(f->e, f->n, sizeof *f->e, facet_cmp);
    json_t *list = json_array();
    for (size_t i = 0; i < f->n && (int64_t)i < count; i++) {
        json_t *k = f->e[i].key ? json_string(f->e[i].key)
                    : strcmp(field, "spoofable") == 0 ? json_boolean(f->e[i].ikey)
                                                       : json_integer(f->e[i].ikey);
        json_array_append_new(list, json_pack("{s:o, s:I}", field, k, "count",
                                              (json_int_t)f->e[i].count));
    }
    return list;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

enum { F_CLASS = NOISE_F_CLASS, F_SPOOF = NOISE_F_SPOOF, F_ORG = NOISE_F_ORG,
       F_ACTOR = NOISE_F_ACTOR, F_COUNTRY = NOISE_F_COUNTRY, F_ASN = NOISE_F_ASN,
       F_PORT = NOISE_F_PORT, F_SENSOR = NOISE_F_SENSOR, F_TAG = NOISE_F_TAG,
       F_DCOUNTRY = NOISE_F_DCOUNTRY, F_N = NOISE_F_N };

/* The index's counts, each key once per facet. */
static void facet_put(void *arg, int which, const char *key, int64_t ikey, int64_t count)
{
    facet *f = &((facet *)arg)[which];
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 32;
        f->e = tr_xrealloc(f->e, f->cap * sizeof *f->e);
    }
    f->e[f->n++] = (facet_ent){key ? tr_xstrdup(key) : NULL, ikey, count, 0};
}

static int stats_out(tr_noise *n, const char *query, int64_t count, facet *f, int64_t total,
                     json_t **out, tr_error *err);

int tr_noise_gnql_stats(tr_noise *n, const char *query, int64_t count, json_t **out,
                        tr_error *err)
{
    if (count <= 0)
        count = 10;
    if (!n->gnql_sql) {
        facet f[F_N];
        memset(f, 0, sizeof f);
        int64_t now = tr_now_unix(), total = 0;
        tr_gnql *g = NULL;
        int rc = tr_gnql_parse(query, now, &g, err);
        if (rc == 0)
            rc = noise_ix_stats(n, g, now, facet_put, f, &total, err);
        tr_gnql_free(g);
        if (rc != 0) {
            for (int k = 0; k < F_N; k++)
                facet_free(&f[k]);
            return -1;
        }
        return stats_out(n, query, count, f, total, out, err);
    }
    char *where = NULL;
    json_t *params = NULL;
    if (prepare(n, query, &where, &params, err) != 0)
        return -1;
    /* The matches' record columns, then (same walk order) their set values
     * of the kinds counted; both from one snapshot. */
    char *isql = tr_xasprintf("SELECT i.classification, i.spoofable, i.organization, i.actor,"
                              " i.country, i.asn FROM noise_ips i WHERE %s",
                              where);
    char *vsql = tr_xasprintf("SELECT i.ip, v.kind, v.value, v.port FROM noise_ips i"
                              " CROSS JOIN noise_ip_values v ON v.ip = i.ip"
                              " AND v.kind IN ('dst', 'scan', 'sensor', 'tag') WHERE %s",
                              where);
    free(where);
    facet f[F_N];
    memset(f, 0, sizeof f);
    facet dst = {0};          /* destination address -> ikey 1: has a country */
    char **dcountry = NULL;   /* by dst entry index: the country's name */
    size_t ndcountry = 0;
    sqlite3_stmt *st = NULL;
    int64_t total = 0;
    /* One snapshot for both walks, unless the caller holds one already. */
    bool own = sqlite3_get_autocommit(n->db) != 0;
    int rc = own ? noise_exec(n, "BEGIN", err) : 0;
    if (rc == 0 && sqlite3_prepare_v2(n->db, isql, -1, &st, NULL) != SQLITE_OK)
        rc = noise_db_fail(n->db, err);
    if (rc == 0) {
        bind_params(st, params);
        int step;
        for (size_t seq = 0; (step = sqlite3_step(st)) == SQLITE_ROW; seq++) {
            const char *t;
            total++;
            if ((t = col_text(st, 0)))
                facet_bump(&f[F_CLASS], t, 0, seq);
            facet_bump(&f[F_SPOOF], NULL, sqlite3_column_int64(st, 1), seq);
            if ((t = col_text(st, 2)) && *t)
                facet_bump(&f[F_ORG], t, 0, seq);
            if ((t = col_text(st, 3)))
                facet_bump(&f[F_ACTOR], t, 0, seq);
            if ((t = col_text(st, 4)) && *t)
                facet_bump(&f[F_COUNTRY], t, 0, seq);
            if ((t = col_text(st, 5)) && *t) {
                char *as = tr_xasprintf("AS%s", t);
                facet_bump(&f[F_ASN], as, 0, seq);
                free(as);
            }
        }
        if (step != SQLITE_DONE)
            rc = noise_db_fail(n->db, err);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc == 0 && sqlite3_prepare_v2(n->db, vsql, -1, &st, NULL) != SQLITE_OK)
        rc = noise_db_fail(n->db, err);
    if (rc == 0) {
        bind_params(st, params);
        char prev[64] = "";
        size_t seq = 0;
        bool any = false;
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            const char *ip = col_text(st, 0), *kind = col_text(st, 1), *value = col_text(st, 2);
            if (!ip || !kind || !value)
                continue;
            if (!any || strcmp(ip, prev) != 0) {
                seq += any;
                any = true;
                snprintf(prev, sizeof prev, "%s", ip);
            }
            if (strcmp(kind, "scan") == 0) {
                facet_bump(&f[F_PORT], NULL, sqlite3_column_int64(st, 3), seq);
            } else if (strcmp(kind, "sensor") == 0) {
                facet_bump(&f[F_SENSOR], value, 0, seq);
            } else if (strcmp(kind, "tag") == 0) {
                facet_bump(&f[F_TAG], value, 0, seq);
            } else {
                /* Where the sensors it hit stand: each distinct destination
                 * looked up once. */
                size_t before = dst.n;
                facet_bump(&dst, value, 0, 0);
                if (dst.n > before) {
                    dcountry = tr_xrealloc(dcountry, dst.cap * sizeof *dcountry);
                    char *cc = NULL, *cn = NULL;
                    uint8_t a[16];
                    int fam = strchr(value, ':') ? 6 : 4;
                    if (inet_pton(fam == 4 ? AF_INET : AF_INET6, value, a) == 1)
                        noise_country(n, fam, a, &cc, &cn);
                    free(cc);
                    if (cn && !*cn) {
                        free(cn);
                        cn = NULL;
                    }
                    dcountry[ndcountry++] = cn;
                }
                /* dst's entries never move (it is never sorted): find the
                 * index of this destination by its slot. */
                size_t k = (size_t)facet_hash(value, 0) & (dst.nslot - 1);
                while (strcmp(dst.e[dst.slot[k]].key, value) != 0)
                    k = (k + 1) & (dst.nslot - 1);
                const char *cn = dcountry[dst.slot[k]];
                if (cn)
                    facet_bump(&f[F_DCOUNTRY], cn, 0, seq);
            }
        }
        if (step != SQLITE_DONE)
            rc = noise_db_fail(n->db, err);
    }
    sqlite3_finalize(st);
    if (own)
        sqlite3_exec(n->db, "COMMIT", NULL, NULL, NULL);
    free(isql);
    free(vsql);
    json_decref(params);
    for (size_t k = 0; k < ndcountry; k++)
        free(dcountry[k]);
    free(dcountry);
    facet_free(&dst);
    if (rc != 0) {
        for (int k = 0; k < F_N; k++)
            facet_free(&f[k]);
        return -1;
    }
    return stats_out(n, query, count, f, total, out, err);
}

/* GreyNoise's stats shape from the counted facets (freed). */
static int stats_out(tr_noise *n, const char *query, int64_t count, facet *f, int64_t total,
                     json_t **out, tr_error *err)
{
    int rc = 0;
    json_t *stats = json_object();
    json_object_set_new(stats, "classifications", facet_list(&f[F_CLASS], count, "classification"));
    json_object_set_new(stats, "spoofable", facet_list(&f[F_SPOOF], count, "spoofable"));
    json_object_set_new(stats, "organizations", facet_list(&f[F_ORG], count, "organization"));
    json_object_set_new(stats, "actors", facet_list(&f[F_ACTOR], count, "actor"));
    json_object_set_new(stats, "countries", facet_list(&f[F_COUNTRY], count, "country"));
    json_object_set_new(stats, "source_countries", json_deep_copy(json_object_get(stats, "countries")));
    json_object_set_new(stats, "asns", facet_list(&f[F_ASN], count, "asn"));
    json_object_set_new(stats, "ports", facet_list(&f[F_PORT], count, "port"));
    json_object_set_new(stats, "sensors", facet_list(&f[F_SENSOR], count, "sensor"));
    /* trawl keeps no operating-system or category guess: GreyNoise's lists
     * are there, empty. */
    json_object_set_new(stats, "operating_systems", json_array());
    json_object_set_new(stats, "categories", json_array());
    /* Tags with GreyNoise's tag object. */
    json_t *tags = json_array(), *top_tags = facet_list(&f[F_TAG], count, "tag");
    sqlite3_stmt *ts = rc == 0 ? noise_stmt(n, "SELECT category, intention FROM noise_tags WHERE name = ?", err) : NULL;
    if (rc == 0 && !ts)
        rc = -1;
    size_t i;
    json_t *v;
    json_array_foreach(top_tags, i, v) {
        if (rc != 0)
            break;
        const char *name = json_string_value(json_object_get(v, "tag"));
        char slug[256], id[37];
        noise_tag_slug(name, slug, sizeof slug);
        noise_tag_id(name, id);
        sqlite3_reset(ts);
        sqlite3_bind_text(ts, 1, name, -1, SQLITE_STATIC);
        bool known = sqlite3_step(ts) == SQLITE_ROW;
        const char *cat = known ? col_text(ts, 0) : NULL, *in = known ? col_text(ts, 1) : NULL;
        json_array_append_new(
            tags, json_pack("{s:{s:s, s:s, s:s, s:s, s:s}, s:O}", "tag", "id", id, "name", name,
                            "slug", slug, "category", cat ? cat : "", "intention", in ? in : "",
                            "count", json_object_get(v, "count")));
    }
    noise_stmt_done(ts);
    json_decref(top_tags);
    json_object_set_new(stats, "tags", tags);
    json_object_set_new(stats, "destination_countries",
                        facet_list(&f[F_DCOUNTRY], count, "country"));
    for (int k = 0; k < F_N; k++)
        facet_free(&f[k]);
    if (rc != 0) {
        json_decref(stats);
        return -1;
    }
    *out = json_pack("{s:s, s:I, s:o}", "query", query, "count", (json_int_t)total, "stats",
                     stats);
    return 0;
}

void tr_noise_gnql_engine(tr_noise *n, bool sql)
{
    n->gnql_sql = sql;
}
