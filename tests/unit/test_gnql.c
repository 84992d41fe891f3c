/* GNQL: the parser (syntax, positions in errors, canonical round trip), the
 * evaluators (the in-memory bitmap index, and SQL over the tables) against
 * a brute-force filter over generated records and against each other, also
 * after the tables change under an index already built. */
#include <arpa/inet.h>
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "noise/gnql.h"
#include "noise/noise.h"
#include "noise/noise_internal.h"
#include "store/store.h"

#define NOW 1800000000LL     /* 2027-01-15 */

static tr_gnql *parse_ok(const char *q)
{
    tr_gnql *g = NULL;
    tr_error err;
    if (tr_gnql_parse(q, NOW, &g, &err) != 0)
        fail_msg("'%s': %s", q, err.msg);
    return g;
}

static void parse_fails(const char *q, const char *msg)
{
    tr_gnql *g = NULL;
    tr_error err;
    if (tr_gnql_parse(q, NOW, &g, &err) == 0) {
        tr_gnql_free(g);
        fail_msg("'%s' parsed", q);
    }
    if (!strstr(err.msg, msg))
        fail_msg("'%s': got '%s', wanted '%s'", q, err.msg, msg);
}

static void canon(const char *q, const char *want)
{
    tr_gnql *g = parse_ok(q);
    char *s = tr_gnql_format(g);
    assert_string_equal(s, want);
    /* The canonical text parses to the same tree. */
    tr_gnql *g2 = parse_ok(s);
    char *s2 = tr_gnql_format(g2);
    assert_string_equal(s, s2);
    free(s);
    free(s2);
    tr_gnql_free(g);
    tr_gnql_free(g2);
}

static void test_syntax_forms(void **state)
{
    (void)state;
    canon("tags:a tags:b tags:c OR tags:d (tags:e tags:f)",
          "((tags:\"a\" AND tags:\"b\" AND tags:\"c\") OR (tags:\"d\" AND (tags:\"e\" AND tags:\"f\")))");
    canon("tags:Mirai or tags:\"RDP Scanner\" and -actor:Shodan*",
          "(tags:\"Mirai\" OR (tags:\"RDP Scanner\" AND -actor:\"Shodan*\"))");
    canon("(tags:a OR tags:b) NOT spoofable:true",
          "((tags:\"a\" OR tags:\"b\") AND -spoofable:\"true\")");
    canon("metadata.country:\"United States\" raw_data.scan.port:[20 TO 25]",
          "(metadata.country:\"United States\" AND raw_data.scan.port:[20 TO 25])");
    canon("last_seen:[2026-01-01 TO 2026-01-31]", "last_seen:[2026-01-01 TO 2026-01-31]");
    canon("raw_data.scan.port:>=1024", "raw_data.scan.port:>=\"1024\"");
    canon("1.2.3.0/24", "ip:\"1.2.3.0/24\"");
    canon("METADATA.ASN:AS13335", "metadata.asn:\"13335\"");
    canon("raw_data.web.paths:\"/a \\\"b\\\"\"", "raw_data.web.paths:\"/a \\\"b\\\"\"");
    canon("tags:Mirai-like", "tags:\"Mirai-like\"");
    tr_gnql *g = parse_ok("  ");
    assert_null(g->root);
    assert_false(g->has_time);
    tr_gnql_free(g);
    g = parse_ok("last_seen:7d");
    assert_true(g->has_time);
    assert_int_equal(g->root->lo, (NOW - 7 * 86400) * 1000000);
    tr_gnql_free(g);
    g = parse_ok("first_seen:2026-11-28");
    assert_int_equal(g->root->lo, 1795824000LL * 1000000);
    assert_int_equal(g->root->hi, (1795824000LL + 86400) * 1000000);
    tr_gnql_free(g);
}

static void test_errors_name_the_position(void **state)
{
    (void)state;
    parse_fails("tags:Mirai (ip:1.2.3.4", "unclosed '(' at position 12");
    parse_fails("tags:Mirai colour:red", "unknown field 'colour' at position 12");
    parse_fails("tags:\"Mirai", "unterminated quoted value at position 6");
    parse_fails("ip:300.1.1.1", "at position 1");
    parse_fails("tags:a OR", "expected a term at position 10");
    parse_fails("AND tags:a", "expected a term before 'AND' at position 1");
    parse_fails("tags:a )", "unexpected ')' at position 8");
    parse_fails("raw_data.scan.port:70000", "not a port number at position 1");
    parse_fails("raw_data.scan.port:[1 25]", "expected 'TO'");
    parse_fails("spoofable:maybe", "true or false");
    parse_fails("last_seen:>7d", "takes no comparison");
    parse_fails("tags:>a", "takes no comparison");
    parse_fails("first_seen:2026-02-30", "neither a date");
    parse_fails("hello", "is not FIELD:VALUE");
    parse_fails("tags:", "expected a value at position 6");
    parse_fails("- tags:a", "'-' must stick");
    char deep[300];
    memset(deep, '(', 200);
    strcpy(deep + 200, "tags:a");
    parse_fails(deep, "nested too deeply");
}

/* ---- property test ------------------------------------------------------- */

typedef struct rec {
    char ip[46];
    int family;
    uint8_t addr[16];
    const char *classification, *actor, *country, *cc, *asn, *org;
    int spoofable, tor;
    int64_t first, last;
    const char *tags[4];
    int ntags;
    int ports[4];
    int nports;
    const char *paths[3];
    int npaths;
    const char *ua, *sensor, *ja3;
} rec;

static const char *const CLASS[] = {"malicious", "benign", "unknown", "suspicious"};
static const char *const ACTORS[] = {NULL, "Shodan.io", "Censys"};
static const char *const COUNTRIES[][2] = {{NULL, NULL}, {"Germany", "DE"}, {"United States", "US"},
                                           {"Brazil", "BR"}};
static const char *const ASNS[] = {NULL, "13335", "3320"};
static const char *const ORGS[] = {NULL, "Cloudflare", "Deutsche Telekom"};
static const char *const TAGS[] = {"Mirai", "RDP Scanner", "SMBGhost Scanner", ".env Scanner",
                                   "ZMap Client"};
static const char *const TAG_CVES[] = {"", "", "CVE-2020-0796", "", "CVE-2021-1,CVE-2021-2"};
static const char *const CVES[] = {"CVE-2020-0796", "CVE-2021-1", "CVE-2021-2", "CVE-1999-1"};
static const int PORTS[] = {22, 23, 80, 443, 445, 3389, 8080};
static const char *const PATHS[] = {"/", "/.env", "/.git/config", "/wp-login.php"};
static const char *const UAS[] = {NULL, "curl/8.0", "python-requests/2.31", "Mozilla/5.0 (X11)"};
static const char *const SENSORS[] = {"edge-1", "edge-2"};
static const char *const JA3S[] = {NULL, "e7d705a3286e19ea42f587b344ee6865"};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define PICK(a) ((a)[rand() % N(a)])

static void gen_rec(rec *r, int k)
{
    memset(r, 0, sizeof *r);
    if (rand() % 5 == 0) {
        r->family = 6;
        snprintf(r->ip, sizeof r->ip, "2001:db8::%x:%x", rand() % 4, k);
        inet_pton(AF_INET6, r->ip, r->addr);
        inet_ntop(AF_INET6, r->addr, r->ip, sizeof r->ip);
    } else {
        r->family = 4;
        snprintf(r->ip, sizeof r->ip, "%s.%d.%d", rand() % 2 ? "198.51" : "203.0", rand() % 4,
                 k % 250);
        inet_pton(AF_INET, r->ip, r->addr);
    }
    r->classification = PICK(CLASS);
    r->actor = PICK(ACTORS);
    int c = rand() % (int)N(COUNTRIES);
    r->country = COUNTRIES[c][0];
    r->cc = COUNTRIES[c][1];
    r->asn = PICK(ASNS);
    r->org = PICK(ORGS);
    r->spoofable = rand() % 2;
    r->tor = rand() % 6 == 0;
    /* Within 200 days of NOW: some outside the default 90-day window. */
    r->last = (NOW - rand() % (200 * 86400)) * 1000000;
    r->first = r->last - (int64_t)(rand() % (30 * 86400)) * 1000000;
    r->ntags = rand() % 3;
    for (int i = 0; i < r->ntags; i++) {
        r->tags[i] = PICK(TAGS);
        for (int j = 0; j < i; j++)
            if (r->tags[j] == r->tags[i])
                r->tags[i--] = NULL, r->ntags--;
    }
    r->nports = 1 + rand() % 3;
    for (int i = 0; i < r->nports; i++) {
        r->ports[i] = PICK(PORTS);
        for (int j = 0; j < i; j++)
            if (r->ports[j] == r->ports[i])
                r->nports--, i--;
    }
    r->npaths = rand() % 3;
    for (int i = 0; i < r->npaths; i++) {
        r->paths[i] = PICK(PATHS);
        for (int j = 0; j < i; j++)
            if (r->paths[j] == r->paths[i])
                r->npaths--, i--;
    }
    r->ua = PICK(UAS);
    r->sensor = PICK(SENSORS);
    r->ja3 = PICK(JA3S);
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
}

static void put_value(sqlite3 *db, const char *ip, const char *kind, const char *v, int port)
{
    char *sql = sqlite3_mprintf("INSERT OR IGNORE INTO noise_ip_values(ip, kind, value, port, n,"
                                " first_seen, last_seen) VALUES(%Q, %Q, %Q, %d, 1, 0, 0)",
                                ip, kind, v, port);
    exec_ok(db, sql);
    sqlite3_free(sql);
}

static void store_rec(tr_noise *n, const rec *r)
{
    char *sql = sqlite3_mprintf(
        "INSERT INTO noise_ips(ip, family, first_seen, last_seen, spoofable, classification,"
        " actor, country, country_code, asn, organization) VALUES(%Q, %d, %lld, %lld, %d, %Q, %Q,"
        " %Q, %Q, %Q, %Q)",
        r->ip, r->family, (long long)r->first, (long long)r->last, r->spoofable,
        r->classification, r->actor, r->country, r->cc, r->asn, r->org);
    exec_ok(n->db, sql);
    sqlite3_free(sql);
    if (r->tor) {
        sql = sqlite3_mprintf("INSERT INTO noise_tor(ip) VALUES(%Q)", r->ip);
        exec_ok(n->db, sql);
        sqlite3_free(sql);
    }
    for (int i = 0; i < r->ntags; i++)
        put_value(n->db, r->ip, "tag", r->tags[i], 0);
    for (int i = 0; i < r->nports; i++)
        put_value(n->db, r->ip, "scan", "TCP", r->ports[i]);
    for (int i = 0; i < r->npaths; i++)
        put_value(n->db, r->ip, "path", r->paths[i], 0);
    if (r->ua)
        put_value(n->db, r->ip, "useragent", r->ua, 0);
    if (r->ja3)
        put_value(n->db, r->ip, "ja3", r->ja3, 443);
    put_value(n->db, r->ip, "sensor", r->sensor, 0);
}

/* '*' matches any run; ASCII case folded, as SQLite's LIKE and NOCASE. */
static bool wild(const char *p, const char *s)
{
    if (!*p)
        return !*s;
    if (*p == '*')
        return wild(p + 1, s) || (*s && wild(p, s + 1));
    return *s && tolower((unsigned char)*p) == tolower((unsigned char)*s) && wild(p + 1, s + 1);
}

static bool text_is(const gnql_node *t, const char *v)
{
    v = v ? v : "";
    return t->wildcard ? wild(t->value, v) : strcasecmp(t->value, v) == 0;
}

static bool tag_has_cve(const char *tag, const gnql_node *t)
{
    for (size_t i = 0; i < N(TAGS); i++) {
        if (strcmp(TAGS[i], tag) != 0)
            continue;
        char buf[128];
        snprintf(buf, sizeof buf, "%s", TAG_CVES[i]);
        char *save = NULL;
        for (char *c = strtok_r(buf, ",", &save); c; c = strtok_r(NULL, ",", &save))
            if (text_is(t, c))
                return true;
    }
    return false;
}

static bool in_cidr(const rec *r, const gnql_node *t)
{
    if (r->family != t->family)
        return false;
    for (int b = 0; b < t->bits; b++) {
        int byte = b / 8, bit = 7 - b % 8;
        if (((r->addr[byte] >> bit) & 1) != ((t->addr[byte] >> bit) & 1))
            return false;
    }
    return true;
}

static bool eval(const gnql_node *n, const rec *r)
{
    switch (n->kind) {
    case GNQL_AND: return eval(n->a, r) && eval(n->b, r);
    case GNQL_OR: return eval(n->a, r) || eval(n->b, r);
    case GNQL_NOT: return !eval(n->a, r);
    case GNQL_TERM: break;
    }
    switch (n->field) {
    case GNQL_IP: return n->wildcard ? text_is(n, r->ip) : in_cidr(r, n);
    case GNQL_CLASSIFICATION: return text_is(n, r->classification);
    case GNQL_ACTOR: return text_is(n, r->actor);
    case GNQL_COUNTRY: return text_is(n, r->country) || text_is(n, r->cc);
    case GNQL_COUNTRY_CODE: return text_is(n, r->cc);
    case GNQL_ASN: return text_is(n, r->asn);
    case GNQL_ORG: return text_is(n, r->org);
    case GNQL_CITY:
    case GNQL_REGION:
    case GNQL_RDNS: return text_is(n, "");
    case GNQL_SPOOFABLE: return r->spoofable == n->flag;
    case GNQL_TOR: return r->tor == n->flag;
    case GNQL_VPN:
    case GNQL_BOT: return !n->flag;
    case GNQL_FIRST_SEEN: return r->first >= n->lo && r->first < n->hi;
    case GNQL_LAST_SEEN: return r->last >= n->lo && r->last < n->hi;
    case GNQL_PORT:
        for (int i = 0; i < r->nports; i++)
            if (r->ports[i] >= n->lo && r->ports[i] <= n->hi)
                return true;
        return false;
    case GNQL_PROTOCOL: return text_is(n, "TCP");
    case GNQL_TAGS:
        for (int i = 0; i < r->ntags; i++)
            if (text_is(n, r->tags[i]))
                return true;
        return false;
    case GNQL_CVE:
        for (int i = 0; i < r->ntags; i++)
            if (tag_has_cve(r->tags[i], n))
                return true;
        return false;
    case GNQL_PATH:
        for (int i = 0; i < r->npaths; i++)
            if (text_is(n, r->paths[i]))
                return true;
        return false;
    case GNQL_USERAGENT: return r->ua && text_is(n, r->ua);
    case GNQL_SENSOR: return text_is(n, r->sensor);
    case GNQL_JA3: return r->ja3 && text_is(n, r->ja3);
    case GNQL_HASSH:
    case GNQL_JA4: return false;
    case GNQL_NFIELDS: break;
    }
    fail_msg("field %d not judged", n->field);
    return false;
}

/* A value as the query writes it: case flipped, maybe a wildcard, quoted
 * when it has a space. */
static void gen_value(tr_buf *b, const char *v)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *c = buf; *c; c++)
        if (rand() % 4 == 0)
            *c = (char)(isupper((unsigned char)*c) ? tolower((unsigned char)*c)
                                                    : toupper((unsigned char)*c));
    size_t len = strlen(buf);
    int w = rand() % 6;
    if (w == 0 && len > 2)
        strcpy(buf + len / 2, "*");
    else if (w == 1 && len > 2)
        memmove(buf + 1, buf + len / 2, len - len / 2 + 1), buf[0] = '*';
    if (strchr(buf, ' ') || rand() % 5 == 0)
        tr_buf_printf(b, "\"%s\"", buf);
    else
        tr_buf_printf(b, "%s", buf);
}

static void gen_term(tr_buf *b)
{
    switch (rand() % 17) {
    case 0: tr_buf_printf(b, "tags:"); gen_value(b, PICK(TAGS)); break;
    case 1: tr_buf_printf(b, "classification:"); gen_value(b, PICK(CLASS)); break;
    case 2: tr_buf_printf(b, "actor:"); gen_value(b, ACTORS[1 + rand() % 2]); break;
    case 3: tr_buf_printf(b, "metadata.country:");
        gen_value(b, COUNTRIES[1 + rand() % 3][rand() % 2]); break;
    case 4: tr_buf_printf(b, "metadata.asn:%s%s", rand() % 2 ? "AS" : "", ASNS[1 + rand() % 2]);
        break;
    case 5: tr_buf_printf(b, "spoofable:%s", rand() % 2 ? "true" : "false"); break;
    case 6: {
        static const char *const ops[] = {"", ">", ">=", "<", "<="};
        if (rand() % 3 == 0)
            tr_buf_printf(b, "raw_data.scan.port:[%d TO %d]", PICK(PORTS), PICK(PORTS));
        else
            tr_buf_printf(b, "raw_data.scan.port:%s%d", PICK(ops), PICK(PORTS));
        break;
    }
    case 7: {
        static const char *const ips[] = {"198.51.0.0/16", "203.0.1.0/24", "198.51.2.0/23",
                                          "203.0.0.0/8", "2001:db8::/32", "2001:db8::1:0/112",
                                          "0.0.0.0/0", "198.51.1.7", "203.0.*"};
        tr_buf_printf(b, "%s%s", rand() % 2 ? "ip:" : "", PICK(ips));
        break;
    }
    case 8: tr_buf_printf(b, "cve:"); gen_value(b, PICK(CVES)); break;
    case 9: tr_buf_printf(b, "raw_data.web.paths:"); gen_value(b, PICK(PATHS)); break;
    case 10: tr_buf_printf(b, "raw_data.web.useragents:"); gen_value(b, UAS[1 + rand() % 3]);
        break;
    case 11: tr_buf_printf(b, "sensor:"); gen_value(b, PICK(SENSORS)); break;
    case 12: tr_buf_printf(b, "metadata.tor:%s", rand() % 2 ? "true" : "false"); break;
    case 13: tr_buf_printf(b, "last_seen:%dd", 1 + rand() % 150); break;
    case 14: {
        static const char *const ds[] = {"2026-08-01", "2026-11-01", "2027-01-01", "2027-01-15"};
        static const char *const ops[] = {"", ">", ">=", "<", "<="};
        if (rand() % 3 == 0)
            tr_buf_printf(b, "first_seen:[%s TO %s]", PICK(ds), PICK(ds));
        else
            tr_buf_printf(b, "%s:%s%s", rand() % 2 ? "first_seen" : "last_seen", PICK(ops),
                          PICK(ds));
        break;
    }
    case 15: tr_buf_printf(b, "raw_data.ja3.fingerprint:"); gen_value(b, JA3S[1]); break;
    default: tr_buf_printf(b, "metadata.organization:"); gen_value(b, ORGS[1 + rand() % 2]);
        break;
    }
}

static void gen_query(tr_buf *b, int depth)
{
    int parts = 1 + rand() % 3;
    for (int i = 0; i < parts; i++) {
        if (i) {
            static const char *const joins[] = {" ", " AND ", " OR ", " or ", " and "};
            tr_buf_printf(b, "%s", PICK(joins));
        }
        int neg = rand() % 5;
        if (neg == 0)
            tr_buf_printf(b, "-");
        else if (neg == 1)
            tr_buf_printf(b, "NOT ");
        if (depth < 3 && rand() % 3 == 0) {
            tr_buf_printf(b, "(");
            gen_query(b, depth + 1);
            tr_buf_printf(b, ")");
        } else {
            gen_term(b);
        }
    }
}

typedef struct fx {
    char *dir;
    tr_noise *n;
} fx;

/* counts[key] += 1 */
static void bump(json_t *counts, const char *key)
{
    json_t *c = json_object_get(counts, key);
    json_object_set_new(counts, key, json_integer(c ? json_integer_value(c) + 1 : 1));
}

/* One stats list against counts made from the matches' records. */
static void same_counts(const char *q, const char *name, json_t *list, const char *field,
                        json_t *want)
{
    size_t i;
    json_t *v, *prev = NULL;
    if (json_array_size(list) != json_object_size(want))
        fail_msg("'%s': stats %s has %zu entries, the records %zu", q, name,
                 json_array_size(list), json_object_size(want));
    json_array_foreach(list, i, v) {
        json_t *k = json_object_get(v, field);
        char key[256];
        if (json_is_object(k))
            k = json_object_get(k, "name");
        if (json_is_string(k))
            snprintf(key, sizeof key, "%s", json_string_value(k));
        else if (json_is_boolean(k))
            snprintf(key, sizeof key, "%s", json_is_true(k) ? "true" : "false");
        else
            snprintf(key, sizeof key, "%lld", (long long)json_integer_value(k));
        json_int_t got = json_integer_value(json_object_get(v, "count"));
        json_int_t exp = json_integer_value(json_object_get(want, key));
        if (got != exp)
            fail_msg("'%s': stats %s '%s' counts %lld, the records %lld", q, name, key,
                     (long long)got, (long long)exp);
        /* Most IPs first, then by key. */
        if (prev) {
            json_int_t pc = json_integer_value(json_object_get(prev, "count"));
            json_t *pk = json_object_get(prev, field);
            if (json_is_object(pk))
                pk = json_object_get(pk, "name");
            bool ordered = pc > got;
            if (pc == got) {
                if (json_is_string(k))
                    ordered = strcmp(json_string_value(pk), json_string_value(k)) < 0;
                else if (json_is_boolean(k))
                    ordered = json_is_false(pk) && json_is_true(k);
                else
                    ordered = json_integer_value(pk) < json_integer_value(k);
            }
            if (!ordered)
                fail_msg("'%s': stats %s out of order at '%s'", q, name, key);
        }
        prev = v;
    }
}

/* The stats of a query against the records of the IPs it matched (each
 * list longer than any top count could cut). */
static void check_stats(tr_noise *n, const char *q, json_t *res)
{
    json_t *st = NULL;
    tr_error err;
    if (tr_noise_gnql_stats(n, q, 1000, &st, &err) != 0)
        fail_msg("'%s': %s", q, err.msg);
    assert_int_equal(json_integer_value(json_object_get(st, "count")),
                     json_integer_value(json_object_get(res, "count")));
    json_t *cls = json_object(), *spoof = json_object(), *ports = json_object(),
           *tags = json_object(), *sensors = json_object(), *cc = json_object();
    size_t i, k;
    json_t *v, *x;
    json_array_foreach(json_object_get(res, "ips"), i, v) {
        json_t *r = NULL;
        assert_int_equal(tr_noise_ip(n, json_string_value(v), &r, &err), 1);
        bump(cls, json_string_value(json_object_get(r, "classification")));
        bump(spoof, json_is_true(json_object_get(r, "spoofable")) ? "true" : "false");
        json_t *meta = json_object_get(r, "metadata");
        const char *c = json_string_value(json_object_get(meta, "country"));
        if (c && *c)
            bump(cc, c);
        json_t *seen = json_object();
        json_array_foreach(json_object_get(meta, "destination_ports"), k, x) {
            char p[16];
            snprintf(p, sizeof p, "%lld", (long long)json_integer_value(x));
            if (!json_object_get(seen, p))
                bump(ports, p);
            json_object_set_new(seen, p, json_true());
        }
        json_decref(seen);
        json_array_foreach(json_object_get(r, "tags"), k, x) bump(tags, json_string_value(x));
        json_array_foreach(json_object_get(r, "sensors"), k, x)
            bump(sensors, json_string_value(json_object_get(x, "name")));
        json_decref(r);
    }
    json_t *s = json_object_get(st, "stats");
    same_counts(q, "classifications", json_object_get(s, "classifications"), "classification",
                cls);
    same_counts(q, "spoofable", json_object_get(s, "spoofable"), "spoofable", spoof);
    same_counts(q, "countries", json_object_get(s, "countries"), "country", cc);
    same_counts(q, "ports", json_object_get(s, "ports"), "port", ports);
    same_counts(q, "tags", json_object_get(s, "tags"), "tag", tags);
    same_counts(q, "sensors", json_object_get(s, "sensors"), "sensor", sensors);
    json_decref(cls);
    json_decref(spoof);
    json_decref(ports);
    json_decref(tags);
    json_decref(sensors);
    json_decref(cc);
    json_decref(st);
}

/* The index's answers (first page, every page of a small size, stats) are
 * the SQL path's, byte for byte. */
static void same_as_sql(tr_noise *n, const char *q)
{
    tr_error err;
    json_t *a[2] = {NULL, NULL}, *st[2] = {NULL, NULL};
    for (int e = 0; e < 2; e++) {
        tr_noise_gnql_engine(n, e == 1);
        if (tr_noise_gnql(n, q, 10000, NULL, &a[e], &err) != 0)
            fail_msg("'%s' (%s): %s", q, e ? "sql" : "index", err.msg);
        if (tr_noise_gnql_stats(n, q, 5, &st[e], &err) != 0)
            fail_msg("'%s' stats (%s): %s", q, e ? "sql" : "index", err.msg);
    }
    if (!json_equal(a[0], a[1]) || !json_equal(st[0], st[1])) {
        char *x = json_dumps(json_equal(a[0], a[1]) ? st[0] : a[0], JSON_COMPACT),
             *y = json_dumps(json_equal(a[0], a[1]) ? st[1] : a[1], JSON_COMPACT);
        fail_msg("'%s': the index answers\n%.2000s\nSQL answers\n%.2000s", q, x, y);
    }
    /* Paging: the scroll tokens chain through the same pages. */
    char scroll[2][200] = {"", ""};
    for (int page = 0; page < 4; page++) {
        json_t *p[2];
        for (int e = 0; e < 2; e++) {
            tr_noise_gnql_engine(n, e == 1);
            if (tr_noise_gnql(n, q, 7, scroll[e], &p[e], &err) != 0)
                fail_msg("'%s' page %d: %s", q, page, err.msg);
            snprintf(scroll[e], sizeof scroll[e], "%s",
                     json_string_value(json_object_get(p[e], "scroll")));
        }
        if (!json_equal(p[0], p[1]))
            fail_msg("'%s': page %d differs", q, page);
        bool done = json_is_true(json_object_get(p[0], "complete"));
        json_decref(p[0]);
        json_decref(p[1]);
        if (done)
            break;
    }
    tr_noise_gnql_engine(n, false);
    for (int e = 0; e < 2; e++) {
        json_decref(a[e]);
        json_decref(st[e]);
    }
}

static void test_evaluator_matches_brute_force(void **state)
{
    (void)state;
    fx f;
    char tmpl[] = "/tmp/trawl-gnql-XXXXXX";
    f.dir = mkdtemp(tmpl);
    assert_non_null(f.dir);
    tr_error err;
    tr_store *s = NULL;
    if (tr_store_open(f.dir, TR_STORE_CREATE, &s, &err) != 0)
        fail_msg("%s", err.msg);
    tr_store_close(s);
    if (tr_noise_open(f.dir, &f.n, &err) != 0)
        fail_msg("%s", err.msg);
    srand(20261128);
    exec_ok(f.n->db, "BEGIN");
    for (size_t i = 0; i < N(TAGS); i++) {
        char *sql = sqlite3_mprintf(
            "INSERT OR REPLACE INTO noise_tags(name, src_id, rule, category, intention, cves,"
            " description, refs, builtin) VALUES(%Q, 0, 'r', 'activity', 'malicious', %Q, '',"
            " '', 0)",
            TAGS[i], TAG_CVES[i]);
        exec_ok(f.n->db, sql);
        sqlite3_free(sql);
    }
    enum { NREC = 400 };
    rec *recs = tr_xcalloc(NREC, sizeof *recs);
    int nrec = 0;
    for (int k = 0; k < NREC; k++) {
        gen_rec(&recs[nrec], k);
        bool dup = false;
        for (int j = 0; j < nrec; j++)
            dup = dup || strcmp(recs[j].ip, recs[nrec].ip) == 0;
        if (dup)
            continue;
        store_rec(f.n, &recs[nrec++]);
    }
    exec_ok(f.n->db, "COMMIT");

    /* tr_noise_gnql counts back from the real clock: shift the records so
     * that NOW is now. */
    int64_t shift = (tr_now_unix() - NOW) * 1000000;
    char *sql = sqlite3_mprintf("UPDATE noise_ips SET first_seen = first_seen + %lld,"
                                " last_seen = last_seen + %lld",
                                (long long)shift, (long long)shift);
    exec_ok(f.n->db, sql);
    sqlite3_free(sql);

    int nonempty = 0, total = 0, stats_checked = 0;
    for (int iter = 0; iter < 350; iter++) {
        tr_buf q = {0};
        gen_query(&q, 0);
        tr_buf_append(&q, "", 1);
        int64_t now = tr_now_unix();
        tr_gnql *g = NULL;
        if (tr_gnql_parse(q.data, now, &g, &err) != 0) {
            /* Generated queries are valid but for a bare "203.0.*". */
            if (!strstr(q.data, "203.0.*"))
                fail_msg("'%s': %s", q.data, err.msg);
            free(q.data);
            continue;
        }
        json_t *res = NULL;
        if (tr_noise_gnql(f.n, q.data, 10000, NULL, &res, &err) != 0)
            fail_msg("'%s': %s", q.data, err.msg);
        if (tr_now_unix() != now) {     /* a second boundary: relative times moved */
            json_decref(res);
            tr_gnql_free(g);
            free(q.data);
            continue;
        }
        int want = 0;
        for (int k = 0; k < nrec; k++) {
            rec shifted = recs[k];
            shifted.first += shift;
            shifted.last += shift;
            bool m = (!g->root || eval(g->root, &shifted)) &&
                     (g->has_time || shifted.last >= (now - GNQL_DEFAULT_DAYS * 86400) * 1000000);
            bool got = false;
            size_t i;
            json_t *v;
            json_array_foreach(json_object_get(res, "ips"), i, v)
                got = got || strcmp(json_string_value(v), recs[k].ip) == 0;
            if (m != got)
                fail_msg("'%s': %s is %s by SQL but %s by brute force", q.data, recs[k].ip,
                         got ? "matched" : "not matched", m ? "matched" : "not matched");
            want += m;
        }
        assert_int_equal(json_integer_value(json_object_get(res, "count")), want);
        same_as_sql(f.n, q.data);
        if (total % 10 == 0 && want > 0) {
            check_stats(f.n, q.data, res);
            stats_checked++;
        }
        nonempty += want > 0 && want < nrec;
        total++;
        json_decref(res);
        tr_gnql_free(g);
        free(q.data);
    }
    /* The generator must produce selective queries, or the test proves little. */
    assert_true(total > 300);
    assert_true(nonempty > total / 3);
    assert_true(stats_checked > 10);
    free(recs);
    tr_noise_close(f.n);
    char *cmd = tr_xasprintf("rm -rf '%s'", f.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", f.dir);
    free(cmd);
}

/* Quick checks from the index are SQL's, for every IP and an unseen one. */
static void same_quick(tr_noise *n)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(n->db, "SELECT ip FROM noise_ips UNION ALL"
                                               " SELECT '192.0.2.99'", -1, &st, NULL),
                     SQLITE_OK);
    char **ips = NULL;
    size_t nip = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        ips = tr_xrealloc(ips, (nip + 1) * sizeof *ips);
        ips[nip++] = tr_xstrdup((const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    tr_error err;
    for (size_t i = 0; i < nip; i++) {
        json_t *q[2] = {NULL, NULL};
        int f[2];
        for (int e = 0; e < 2; e++) {
            tr_noise_gnql_engine(n, e == 1);
            f[e] = tr_noise_quick(n, ips[i], &q[e], &err);
        }
        tr_noise_gnql_engine(n, false);
        assert_int_equal(f[0], f[1]);
        if (f[0] == 1 && !json_equal(q[0], q[1]))
            fail_msg("quick %s differs", ips[i]);
        json_decref(q[0]);
        json_decref(q[1]);
        free(ips[i]);
    }
    free(ips);
}

/* Changes after the index is built reach it: new IPs (placed after the
 * sorted ones), set values added and removed, records reclassified and
 * moved, Tor membership, a tag dropped everywhere; a second connection's
 * changes too (as another process's would). */
static void test_index_follows_changes(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/trawl-gnqlix-XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    tr_error err;
    tr_store *s = NULL;
    if (tr_store_open(dir, TR_STORE_CREATE, &s, &err) != 0)
        fail_msg("%s", err.msg);
    tr_store_close(s);
    tr_noise *n = NULL, *other = NULL;
    if (tr_noise_open(dir, &n, &err) != 0 || tr_noise_open(dir, &other, &err) != 0)
        fail_msg("%s", err.msg);
    srand(11);
    int64_t now_us = tr_now_unix() * 1000000;
    exec_ok(n->db, "BEGIN");
    for (int k = 0; k < 300; k++) {
        rec r;
        gen_rec(&r, k);
        r.first = now_us - (int64_t)(k % 50) * 86400 * 1000000 - 1000000;
        r.last = now_us - (int64_t)(k % 7) * 86400 * 1000000;
        char *sql = sqlite3_mprintf("SELECT 1 FROM noise_ips WHERE ip = %Q", r.ip);
        sqlite3_stmt *st = NULL;
        sqlite3_prepare_v2(n->db, sql, -1, &st, NULL);
        bool dup = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
        sqlite3_free(sql);
        if (!dup)
            store_rec(n, &r);
    }
    exec_ok(n->db, "COMMIT");
    static const char *const qs[] = {
        "tags:Mirai", "-tags:Mirai", "classification:malicious", "raw_data.scan.port:445",
        "metadata.tor:true", "metadata.country_code:DE OR tags:*Scanner",
        "ip:198.51.0.0/16 -spoofable:true", "ip:203.0.0.0/8", "cve:CVE-2021-*",
        "last_seen:3d", "first_seen:[2020-01-01 TO 2030-01-01] sensor:edge-1",
        "raw_data.web.paths:/.env OR raw_data.ja3.fingerprint:e7d*", ""};
    json_t *before = NULL;
    if (tr_noise_gnql(n, "tags:Mirai", 10000, NULL, &before, &err) != 0)
        fail_msg("%s", err.msg);
    for (size_t i = 0; i < N(qs); i++)
        same_as_sql(n, qs[i]);
    same_quick(n);
    /* Changes through the other connection, in two transactions. */
    exec_ok(other->db, "BEGIN");
    exec_ok(other->db, "INSERT INTO noise_ips(ip, family, first_seen, last_seen, spoofable,"
                       " classification) VALUES('198.51.0.1', 4, 1, strftime('%s') * 1000000, 0,"
                       " 'malicious'), ('1.2.3.4', 4, 1, strftime('%s') * 1000000, 1, 'unknown'),"
                       " ('2001:db8::77', 6, 1, strftime('%s') * 1000000, 0, 'benign')");
    put_value(other->db, "198.51.0.1", "tag", "Mirai", 0);
    put_value(other->db, "1.2.3.4", "tag", "Mirai", 0);
    put_value(other->db, "1.2.3.4", "scan", "UDP", 445);
    put_value(other->db, "2001:db8::77", "tag", "SMBGhost Scanner", 0);
    exec_ok(other->db, "INSERT OR IGNORE INTO noise_tor(ip) VALUES('1.2.3.4')");
    exec_ok(other->db, "COMMIT");
    json_t *after = NULL;
    if (tr_noise_gnql(n, "tags:Mirai", 10000, NULL, &after, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(json_integer_value(json_object_get(after, "count")),
                     json_integer_value(json_object_get(before, "count")) + 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(after, "ips"), 0)),
                         "1.2.3.4");
    json_decref(after);
    for (size_t i = 0; i < N(qs); i++)
        same_as_sql(n, qs[i]);
    same_quick(n);
    exec_ok(other->db, "BEGIN");
    exec_ok(other->db, "UPDATE noise_ips SET classification = 'benign', country = 'Germany',"
                       " country_code = 'DE' WHERE substr(ip, -1) IN ('3', '6', '9') OR ip LIKE '203.%'");
    exec_ok(other->db, "DELETE FROM noise_ip_values WHERE kind = 'tag' AND value = 'Mirai'");
    exec_ok(other->db, "DELETE FROM noise_ip_values WHERE kind = 'scan' AND port = 445"
                       " AND ip LIKE '198.%'");
    exec_ok(other->db, "DELETE FROM noise_tor WHERE ip LIKE '198.%'");
    exec_ok(other->db, "UPDATE noise_ips SET last_seen = 1 WHERE ip LIKE '%.1'");
    exec_ok(other->db, "DELETE FROM noise_ips WHERE ip LIKE '%.2'");
    exec_ok(other->db, "COMMIT");
    json_t *gone = NULL;
    if (tr_noise_gnql(n, "tags:Mirai", 10000, NULL, &gone, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(json_integer_value(json_object_get(gone, "count")), 0);
    json_decref(gone);
    for (size_t i = 0; i < N(qs); i++)
        same_as_sql(n, qs[i]);
    same_quick(n);
    json_decref(before);
    tr_noise_close(other);
    tr_noise_close(n);
    char *cmd = tr_xasprintf("rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    free(cmd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax_forms),
        cmocka_unit_test(test_errors_name_the_position),
        cmocka_unit_test(test_evaluator_matches_brute_force),
        cmocka_unit_test(test_index_follows_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
