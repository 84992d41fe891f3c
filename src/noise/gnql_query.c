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

int tr_noise_gnql(tr_noise *n, const char *query, int64_t size, const char *scroll, json_t **out,
                  tr_error *err)
{
    if (size <= 0 || size > 10000)
        size = 10000;
    char after[64] = "";
    if (scroll && *scroll && unhex(scroll, after, sizeof after) != 0)
        return tr_fail(err, "GNQL: the scroll token '%.40s' is not one this server gave",
                       scroll);
    char *where = NULL;
    json_t *params = NULL;
    if (prepare(n, query, &where, &params, err) != 0)
        return -1;
    char *csql = tr_xasprintf("SELECT count(*) FROM noise_ips i WHERE %s", where);
    char *psql = tr_xasprintf("SELECT i.ip FROM noise_ips i WHERE (%s) AND i.ip > ?%zu"
                              " ORDER BY i.ip LIMIT ?%zu",
                              where, json_array_size(params) + 1, json_array_size(params) + 2);
    free(where);
    sqlite3_stmt *cs = NULL, *ps = NULL;
    int rc = -1;
    json_t *ips = json_array();
    int64_t count = 0;
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

/* Fills a stats list from rows (key, count). */
static int top(tr_noise *n, const char *sql, int64_t count, json_t *list, const char *key,
               bool key_int, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db, sql, -1, &st, NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    sqlite3_bind_int64(st, 1, count);
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *k;
        if (key_int)
            k = sqlite3_column_type(st, 0) == SQLITE_INTEGER &&
                        strcmp(key, "spoofable") == 0
                    ? json_boolean(sqlite3_column_int(st, 0))
                    : json_integer(sqlite3_column_int64(st, 0));
        else
            k = json_string((const char *)sqlite3_column_text(st, 0));
        json_array_append_new(list, json_pack("{s:o, s:I}", key, k, "count",
                                              (json_int_t)sqlite3_column_int64(st, 1)));
    }
    sqlite3_finalize(st);
    return 0;
}

int tr_noise_gnql_stats(tr_noise *n, const char *query, int64_t count, json_t **out,
                        tr_error *err)
{
    if (count <= 0)
        count = 10;
    char *where = NULL;
    json_t *params = NULL;
    if (prepare(n, query, &where, &params, err) != 0)
        return -1;
    /* The matches once, in a temporary table every aggregate joins. */
    sqlite3_exec(n->db, "DROP TABLE IF EXISTS temp.gnql_m", NULL, NULL, NULL);
    /* Keyed by ip, and every aggregate drives from it (CROSS JOIN fixes
     * the order): without statistics the planner would rather walk all of
     * a kind's values and probe the matches for each. */
    /* With the record's columns the aggregates need: each of them then
     * reads this table through, instead of probing noise_ips once per
     * match. */
    sqlite3_exec(n->db,
                 "CREATE TEMP TABLE gnql_m(ip TEXT PRIMARY KEY, classification, spoofable,"
                 " organization, actor, country, asn) WITHOUT ROWID",
                 NULL, NULL, NULL);
    char *msql = tr_xasprintf("INSERT INTO temp.gnql_m SELECT i.ip, i.classification, i.spoofable,"
                              " i.organization, i.actor, i.country, i.asn"
                              " FROM noise_ips i WHERE %s",
                              where);
    free(where);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(n->db, msql, -1, &st, NULL);
    free(msql);
    if (rc != SQLITE_OK) {
        json_decref(params);
        return noise_db_fail(n->db, err);
    }
    bind_params(st, params);
    json_decref(params);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return noise_db_fail(n->db, err);
    int64_t total = 0;
    if (sqlite3_prepare_v2(n->db, "SELECT count(*) FROM temp.gnql_m", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        total = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);

    /* The matches' set values of the kinds aggregated, in one walk. */
    sqlite3_exec(n->db, "DROP TABLE IF EXISTS temp.gnql_v", NULL, NULL, NULL);
    if (noise_exec(n,
                   "CREATE TEMP TABLE gnql_v AS SELECT v.kind, v.ip, v.value, v.port"
                   " FROM temp.gnql_m m CROSS JOIN noise_ip_values v ON v.ip = m.ip"
                   " AND v.kind IN ('scan', 'sensor', 'tag', 'dst')",
                   err) != 0)
        return -1;
#define FROM_IPS " FROM temp.gnql_m i "
#define ORDER " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?1"
#define FROM_VALS(kind) \
    " FROM (SELECT ip, value, port FROM temp.gnql_v WHERE kind = '" kind "') v "
    struct {
        const char *name, *key, *sql;
        bool key_int;
    } q[] = {
        {"classifications", "classification", "SELECT i.classification, count(*)" FROM_IPS ORDER,
         false},
        {"spoofable", "spoofable", "SELECT i.spoofable, count(*)" FROM_IPS ORDER, true},
        {"organizations", "organization",
         "SELECT i.organization, count(*)" FROM_IPS "WHERE ifnull(i.organization, '') <> ''" ORDER,
         false},
        {"actors", "actor", "SELECT i.actor, count(*)" FROM_IPS "WHERE i.actor IS NOT NULL" ORDER,
         false},
        {"countries", "country",
         "SELECT i.country, count(*)" FROM_IPS "WHERE ifnull(i.country, '') <> ''" ORDER, false},
        {"source_countries", "country",
         "SELECT i.country, count(*)" FROM_IPS "WHERE ifnull(i.country, '') <> ''" ORDER, false},
        {"asns", "asn",
         "SELECT 'AS' || i.asn, count(*)" FROM_IPS "WHERE ifnull(i.asn, '') <> ''" ORDER, false},
        {"ports", "port", "SELECT v.port, count(DISTINCT v.ip)" FROM_VALS("scan") ORDER, true},
        {"sensors", "sensor", "SELECT v.value, count(DISTINCT v.ip)" FROM_VALS("sensor") ORDER,
         false},
    };
    json_t *stats = json_object();
    rc = 0;
    for (size_t k = 0; k < sizeof q / sizeof q[0] && rc == 0; k++) {
        json_t *list = json_array();
        rc = top(n, q[k].sql, count, list, q[k].key, q[k].key_int, err);
        json_object_set_new(stats, q[k].name, list);
    }
    /* trawl keeps no operating-system or category guess: GreyNoise's lists
     * are there, empty. */
    json_object_set_new(stats, "operating_systems", json_array());
    json_object_set_new(stats, "categories", json_array());

    /* Tags with GreyNoise's tag object. */
    json_t *tags = json_array();
    if (rc == 0 &&
        sqlite3_prepare_v2(n->db,
                           "SELECT v.value, count(DISTINCT v.ip), t.category, t.intention"
                           FROM_VALS("tag") "LEFT JOIN noise_tags t ON t.name = v.value"
                           " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, count);
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *name = (const char *)sqlite3_column_text(st, 0);
            char slug[256], id[37];
            noise_tag_slug(name, slug, sizeof slug);
            noise_tag_id(name, id);
            const char *cat = (const char *)sqlite3_column_text(st, 2);
            const char *in = (const char *)sqlite3_column_text(st, 3);
            json_array_append_new(
                tags, json_pack("{s:{s:s, s:s, s:s, s:s, s:s}, s:I}", "tag", "id", id, "name",
                                name, "slug", slug, "category", cat ? cat : "", "intention",
                                in ? in : "", "count", (json_int_t)sqlite3_column_int64(st, 1)));
        }
        sqlite3_finalize(st);
    }
    json_object_set_new(stats, "tags", tags);

    /* Destination countries: where the sensors an IP hit stand, by geoip of
     * the destination addresses. Each distinct destination is looked up
     * once (a few sensors' addresses), then the IPs are counted per country
     * in SQL. */
    json_t *dlist = json_array();
    sqlite3_exec(n->db,
                 "DROP TABLE IF EXISTS temp.gnql_dc;"
                 "CREATE TEMP TABLE gnql_dc(dst TEXT PRIMARY KEY, country TEXT NOT NULL)",
                 NULL, NULL, NULL);
    sqlite3_stmt *ins = NULL;
    if (rc == 0 &&
        sqlite3_prepare_v2(n->db, "INSERT OR IGNORE INTO temp.gnql_dc(dst, country) VALUES(?, ?)",
                           -1, &ins, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(n->db, "SELECT DISTINCT v.value" FROM_VALS("dst"), -1, &st, NULL) ==
            SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *d = (const char *)sqlite3_column_text(st, 0);
            uint8_t a[16];
            int fam = strchr(d, ':') ? 6 : 4;
            if (inet_pton(fam == 4 ? AF_INET : AF_INET6, d, a) != 1)
                continue;
            char *cc = NULL, *cn = NULL;
            noise_country(n, fam, a, &cc, &cn);
            if (cn && *cn) {
                sqlite3_reset(ins);
                sqlite3_bind_text(ins, 1, d, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(ins, 2, cn, -1, SQLITE_TRANSIENT);
                sqlite3_step(ins);
            }
            free(cc);
            free(cn);
        }
        sqlite3_finalize(st);
        rc = top(n,
                 "SELECT c.country, count(DISTINCT v.ip)" FROM_VALS("dst")
                 "JOIN temp.gnql_dc c ON c.dst = v.value" ORDER,
                 count, dlist, "country", false, err);
    }
    sqlite3_finalize(ins);
    sqlite3_exec(n->db, "DROP TABLE IF EXISTS temp.gnql_dc", NULL, NULL, NULL);
    json_object_set_new(stats, "destination_countries", dlist);
    sqlite3_exec(n->db, "DROP TABLE IF EXISTS temp.gnql_m; DROP TABLE IF EXISTS temp.gnql_v", NULL,
                 NULL, NULL);
    if (rc != 0) {
        json_decref(stats);
        return -1;
    }
    *out = json_pack("{s:s, s:I, s:o}", "query", query, "count", (json_int_t)total, "stats",
                     stats);
    return 0;
}
