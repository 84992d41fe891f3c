/* The per-IP record as JSON: GreyNoise's context fields (seen, ip,
 * first_seen, last_seen, tags, actor, spoofable, classification, cve, bot,
 * vpn, vpn_service, metadata{...}, raw_data{scan, web, ja3, hassh}) plus
 * what trawl keeps besides (events per day, sensors, credentials, ...). */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "noise/noise_internal.h"

static void day_text(int64_t day, char out[16])
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
}

json_t *noise_time_json(int64_t us)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    char buf[40];
    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

static json_t *opt_text(sqlite3_stmt *st, int col)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    return json_string(s ? s : "");
}

/* Calls fn for each (value, port, n, first, last) of one kind, oldest first. */
typedef void (*val_fn)(json_t *acc, const char *value, int port, int64_t n, int64_t first,
                       int64_t last);

static void v_string(json_t *acc, const char *v, int port, int64_t c, int64_t f, int64_t l)
{
    json_array_append_new(acc, json_string(v));
}

static void v_scan(json_t *acc, const char *v, int port, int64_t c, int64_t f, int64_t l)
{
    json_array_append_new(acc, json_pack("{s:i, s:s}", "port", port, "protocol", v));
}

static void v_fingerprint(json_t *acc, const char *v, int port, int64_t c, int64_t f, int64_t l)
{
    json_array_append_new(acc, json_pack("{s:s, s:i}", "fingerprint", v, "port", port));
}

static void v_proto(json_t *acc, const char *v, int port, int64_t c, int64_t f, int64_t l)
{
    json_array_append_new(acc, json_pack("{s:s, s:i, s:I}", "proto", v, "port", port, "events",
                                         (json_int_t)c));
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

static void v_cred(json_t *acc, const char *v, int port, int64_t c, int64_t f, int64_t l)
{
    json_t *pair = json_loads(v, 0, NULL);
    json_array_append_new(acc, json_pack("{s:s, s:s, s:I}", "username",
                                         or_empty(json_string_value(json_array_get(pair, 0))),
                                         "password",
                                         or_empty(json_string_value(json_array_get(pair, 1))),
                                         "attempts", (json_int_t)c));
    json_decref(pair);
}

static void v_sensor(json_t *acc, const char *v, int port, int64_t c, int64_t f, int64_t l)
{
    json_array_append_new(acc, json_pack("{s:s, s:I, s:o, s:o}", "name", v, "events",
                                         (json_int_t)c, "first_seen", noise_time_json(f), "last_seen",
                                         noise_time_json(l)));
}

static void v_dst(json_t *acc, const char *v, int port, int64_t c, int64_t f, int64_t l)
{
    json_array_append_new(acc, json_pack("{s:s, s:i, s:I}", "ip", v, "port", port, "events",
                                         (json_int_t)c));
}

static void v_tag(json_t *acc, const char *v, int port, int64_t c, int64_t f, int64_t l)
{
    json_array_append_new(acc, json_pack("{s:s, s:I, s:o, s:o}", "name", v, "events",
                                         (json_int_t)c, "first_seen", noise_time_json(f), "last_seen",
                                         noise_time_json(l)));
}

/* A tag of the record: its identifiers and catalogue entry (columns 6-8 of
 * st: category, intention, cves; NULL when the tag was removed), its CVEs
 * added once each. */
static void add_tag_detail(json_t *v, json_t *tags, json_t *cves, sqlite3_stmt *st)
{
    const char *name = json_string_value(json_object_get(v, "name"));
    json_array_append_new(tags, json_string(name));
    char slug[256], id[37];
    noise_tag_slug(name, slug, sizeof slug);
    noise_tag_id(name, id);
    json_object_set_new(v, "slug", json_string(slug));
    json_object_set_new(v, "id", json_string(id));
    if (sqlite3_column_type(st, 8) == SQLITE_NULL)
        return;
    json_object_set_new(v, "category", opt_text(st, 6));
    json_object_set_new(v, "intention", opt_text(st, 7));
    char *c = tr_xstrdup((const char *)sqlite3_column_text(st, 8)), *save = NULL;
    for (char *tok = strtok_r(c, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        bool dup = false;
        size_t k;
        json_t *x;
        json_array_foreach(cves, k, x) dup = dup || strcmp(json_string_value(x), tok) == 0;
        if (!dup)
            json_array_append_new(cves, json_string(tok));
    }
    free(c);
}

int tr_noise_ip(tr_noise *n, const char *ip_in, json_t **out, tr_error *err)
{
    uint8_t a[16];
    char ip[46];
    int fam = strchr(ip_in, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(fam, ip_in, a) != 1 || !inet_ntop(fam, a, ip, sizeof ip))
        return tr_fail(err, "'%.60s' is not an IP address", ip_in);
    sqlite3_stmt *st = noise_stmt(n,
                                  "SELECT first_seen, last_seen, events, spoofable, classification,"
                                  " actor, country, country_code, city, region, asn, organization, rdns,"
                                  " EXISTS(SELECT 1 FROM noise_tor t WHERE t.ip=noise_ips.ip), bytes"
                                  " FROM noise_ips WHERE ip=?",
                                  err);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) {
        noise_stmt_done(st);
        return 0;
    }
    int64_t first = sqlite3_column_int64(st, 0), last = sqlite3_column_int64(st, 1);
    int64_t events = sqlite3_column_int64(st, 2), bytes = sqlite3_column_int64(st, 14);
    char d1[16], d2[16];
    day_text(first / 1000000 / 86400, d1);
    day_text(last / 1000000 / 86400, d2);
    const char *actor = (const char *)sqlite3_column_text(st, 5);
    json_t *r = json_object();
    json_object_set_new(r, "ip", json_string(ip));
    json_object_set_new(r, "seen", json_true());
    json_object_set_new(r, "classification",
                        json_string((const char *)sqlite3_column_text(st, 4)));
    json_object_set_new(r, "first_seen", json_string(d1));
    json_object_set_new(r, "last_seen", json_string(d2));
    json_object_set_new(r, "first_seen_time", noise_time_json(first));
    json_object_set_new(r, "last_seen_time", noise_time_json(last));
    json_object_set_new(r, "actor", json_string(actor ? actor : "unknown"));
    json_object_set_new(r, "spoofable", json_boolean(sqlite3_column_int(st, 3)));
    json_object_set_new(r, "bot", json_false());
    json_object_set_new(r, "vpn", json_false());
    json_object_set_new(r, "vpn_service", json_string(""));
    json_t *meta = json_object();
    json_object_set_new(meta, "asn", json_string(sqlite3_column_text(st, 10)
                                                     ? (const char *)sqlite3_column_text(st, 10)
                                                     : ""));
    if (sqlite3_column_text(st, 10) && *sqlite3_column_text(st, 10))
        json_object_set_new(meta, "asn", json_sprintf("AS%s", sqlite3_column_text(st, 10)));
    json_object_set_new(meta, "city", opt_text(st, 8));
    json_object_set_new(meta, "region", opt_text(st, 9));
    json_object_set_new(meta, "country", opt_text(st, 6));
    json_object_set_new(meta, "country_code", opt_text(st, 7));
    json_object_set_new(meta, "organization", opt_text(st, 11));
    json_object_set_new(meta, "rdns", opt_text(st, 12));
    json_object_set_new(meta, "tor", json_boolean(sqlite3_column_int(st, 13)));
    json_object_set_new(meta, "os", json_string(""));
    json_object_set_new(meta, "category", json_string(""));
    json_object_set_new(meta, "sensor_hits", json_integer(events));
    noise_stmt_done(st);

    json_t *tags = json_array(), *tag_detail = json_array(), *cves = json_array();
    int rc = 0;
    size_t i;
    json_t *v;
    json_t *scan = json_array(), *paths = json_array(), *uas = json_array(), *ja3 = json_array(),
           *hassh = json_array(), *ja4 = json_array(), *protos = json_array(),
           *clients = json_array(), *creds = json_array(), *cmds = json_array(),
           *dls = json_array(), *sensors = json_array(), *sni = json_array(),
           *methods = json_array(), *hosts = json_array(), *dsts = json_array();
    struct {
        const char *kind;
        val_fn fn;
        json_t *acc;
    } kinds[] = {{"scan", v_scan, scan},           {"path", v_string, paths},
                 {"useragent", v_string, uas},     {"ja3", v_fingerprint, ja3},
                 {"hassh", v_fingerprint, hassh},  {"ja4", v_fingerprint, ja4},
                 {"proto", v_proto, protos},       {"ssh_client", v_string, clients},
                 {"cred", v_cred, creds},          {"command", v_string, cmds},
                 {"download", v_string, dls},      {"sensor", v_sensor, sensors},
                 {"sni", v_string, sni},           {"method", v_string, methods},
                 {"host", v_string, hosts},        {"dst", v_dst, dsts}};
    /* Every per-IP set in one pass over the IP's rows (kind by kind, each
     * oldest first), the tags with their catalogue entries. */
    st = noise_stmt(n,
                    "SELECT v.kind, v.value, v.port, v.n, v.first_seen, v.last_seen,"
                    " t.category, t.intention, t.cves FROM noise_ip_values v"
                    " LEFT JOIN noise_tags t ON v.kind = 'tag' AND t.name = v.value"
                    " WHERE v.ip = ? ORDER BY v.kind, v.first_seen, v.value, v.port",
                    err);
    if (!st)
        rc = -1;
    else
        sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *kind = (const char *)sqlite3_column_text(st, 0);
        const char *value = (const char *)sqlite3_column_text(st, 1);
        int port = sqlite3_column_int(st, 2);
        int64_t c = sqlite3_column_int64(st, 3), f = sqlite3_column_int64(st, 4),
                l = sqlite3_column_int64(st, 5);
        if (strcmp(kind, "tag") == 0) {
            v_tag(tag_detail, value, port, c, f, l);
            add_tag_detail(json_array_get(tag_detail, json_array_size(tag_detail) - 1), tags,
                           cves, st);
            continue;
        }
        for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
            if (strcmp(kind, kinds[i].kind) == 0) {
                kinds[i].fn(kinds[i].acc, value, port, c, f, l);
                break;
            }
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = noise_db_fail(n->db, err);
    noise_stmt_done(st);
    json_object_set_new(r, "tags", tags);
    json_object_set_new(r, "cve", cves);
    json_t *ports = json_array();
    json_array_foreach(scan, i, v) json_array_append(ports, json_object_get(v, "port"));
    /* Where the sensors it hit stand (GreyNoise's destination countries). */
    json_t *dcn = json_array(), *dcc = json_array(), *dips = json_array();
    json_array_foreach(dsts, i, v) {
        const char *d = json_string_value(json_object_get(v, "ip"));
        bool dup = false;
        size_t k;
        json_t *x;
        json_array_foreach(dips, k, x) dup = dup || strcmp(json_string_value(x), d) == 0;
        if (dup)
            continue;
        json_array_append_new(dips, json_string(d));
        uint8_t da[16];
        int dfam = strchr(d, ':') ? AF_INET6 : AF_INET;
        char *cc = NULL, *cn = NULL;
        if (inet_pton(dfam, d, da) == 1)
            noise_country(n, dfam == AF_INET6 ? 6 : 4, da, &cc, &cn);
        bool have = false;
        json_array_foreach(dcc, k, x) have = have || (cc && strcmp(json_string_value(x), cc) == 0);
        if (cc && !have) {
            json_array_append_new(dcc, json_string(cc));
            json_array_append_new(dcn, json_string(cn ? cn : ""));
        }
        free(cc);
        free(cn);
    }
    json_object_set_new(meta, "source_country", json_copy(json_object_get(meta, "country")));
    json_object_set_new(meta, "source_country_code",
                        json_copy(json_object_get(meta, "country_code")));
    json_object_set_new(meta, "source_city", json_copy(json_object_get(meta, "city")));
    json_object_set_new(meta, "destination_countries", dcn);
    json_object_set_new(meta, "destination_country_codes", dcc);
    json_object_set_new(meta, "single_destination", json_boolean(json_array_size(dips) == 1));
    json_decref(dips);
    json_object_set_new(meta, "sensor_count", json_integer((json_int_t)json_array_size(sensors)));
    json_object_set_new(meta, "destination_ports", ports);
    json_object_set_new(r, "metadata", meta);
    json_t *ja4s = json_array();
    json_array_foreach(ja4, i, v) json_array_append(ja4s, json_object_get(v, "fingerprint"));
    json_object_set_new(r, "raw_data",
                        json_pack("{s:o, s:{s:O, s:O}, s:o, s:o, s:{s:o, s:O, s:O, s:o},"
                                  " s:{s:I}, s:{s:o}}",
                                  "scan", scan, "web", "paths", paths, "useragents", uas, "ja3",
                                  ja3, "hassh", hassh, "http", "method", methods, "path", paths,
                                  "useragent", uas, "host", hosts, "source", "bytes",
                                  (json_int_t)bytes, "tls", "ja4", ja4s));
    json_decref(paths);
    json_decref(uas);
    json_object_set_new(r, "events", json_integer(events));
    json_object_set_new(r, "tag_details", tag_detail);
    json_object_set_new(r, "protocols", protos);
    json_object_set_new(r, "ja4", ja4);
    json_object_set_new(r, "ssh_clients", clients);
    json_object_set_new(r, "credentials", creds);
    json_object_set_new(r, "commands", cmds);
    json_object_set_new(r, "downloads", dls);
    json_object_set_new(r, "tls_sni", sni);
    json_object_set_new(r, "sensors", sensors);
    json_object_set_new(r, "destinations", dsts);

    json_t *days = json_object(), *trunc = json_object();
    if ((st = noise_stmt(n, "SELECT day, n FROM noise_ip_days WHERE ip=? ORDER BY day", err))) {
        sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
        while (sqlite3_step(st) == SQLITE_ROW) {
            char d[16];
            day_text(sqlite3_column_int64(st, 0), d);
            json_object_set_new(days, d, json_integer(sqlite3_column_int64(st, 1)));
        }
        noise_stmt_done(st);
    }
    if ((st = noise_stmt(n, "SELECT kind, dropped FROM noise_ip_overflow WHERE ip=?", err))) {
        sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
        while (sqlite3_step(st) == SQLITE_ROW)
            json_object_set_new(trunc, (const char *)sqlite3_column_text(st, 0),
                                json_integer(sqlite3_column_int64(st, 1)));
        noise_stmt_done(st);
    }
    json_object_set_new(r, "events_per_day", days);
    json_object_set_new(r, "dropped_values", trunc);
    if (rc != 0) {
        json_decref(r);
        return -1;
    }
    *out = r;
    return 1;
}

int tr_noise_events(tr_noise *n, const char *ip_in, const char *tag, int64_t limit, json_t **out,
                    tr_error *err)
{
    char ip[46] = "";
    if (ip_in) {
        uint8_t a[16];
        int fam = strchr(ip_in, ':') ? AF_INET6 : AF_INET;
        if (inet_pton(fam, ip_in, a) != 1 || !inet_ntop(fam, a, ip, sizeof ip))
            return tr_fail(err, "'%.60s' is not an IP address", ip_in);
    }
    if (limit <= 0 || limit > 10000)
        limit = 100;
    /* Newest first, through the (src_ip, time) index or the tag index. */
    char *sql = tr_xasprintf(
        "SELECT e.id, e.json FROM noise_events e WHERE 1=1%s%s ORDER BY e.time_us DESC, e.id DESC"
        " LIMIT ?3",
        ip_in ? " AND e.src_ip = ?1" : "",
        tag ? " AND e.id IN (SELECT event_id FROM noise_event_tags WHERE tag = ?2)" : "");
    sqlite3_stmt *st = NULL, *ts = NULL;
    int rc = sqlite3_prepare_v2(n->db, sql, -1, &st, NULL);
    free(sql);
    if (rc != SQLITE_OK ||
        sqlite3_prepare_v2(n->db, "SELECT tag FROM noise_event_tags WHERE event_id=? ORDER BY tag",
                           -1, &ts, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return noise_db_fail(n->db, err);
    }
    if (ip_in)
        sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
    if (tag)
        sqlite3_bind_text(st, 2, tag, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, limit);
    json_t *a = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *ev = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
        if (!ev)
            continue;
        json_t *tags = json_array();
        sqlite3_reset(ts);
        sqlite3_bind_int64(ts, 1, sqlite3_column_int64(st, 0));
        while (sqlite3_step(ts) == SQLITE_ROW)
            json_array_append_new(tags, json_string((const char *)sqlite3_column_text(ts, 0)));
        json_object_set_new(ev, "id", json_integer(sqlite3_column_int64(st, 0)));
        json_object_set_new(ev, "tags", tags);
        json_array_append_new(a, ev);
    }
    sqlite3_finalize(st);
    sqlite3_finalize(ts);
    *out = a;
    return 0;
}

/* Rows of noise_ips whose text lies in [lo, hi), in text order. */
static int walk_text_range(tr_noise *n, const char *lo, const char *hi, int family,
                           const uint8_t *addr, int bits, tr_noise_ip_fn fn, void *arg,
                           tr_error *err)
{
    sqlite3_stmt *st = NULL;
    const char *sql = lo ? "SELECT ip FROM noise_ips WHERE ip >= ?1 AND ip < ?2 AND family = ?3"
                         : "SELECT ip FROM noise_ips WHERE family = ?3";
    if (sqlite3_prepare_v2(n->db, sql, -1, &st, NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    if (lo) {
        sqlite3_bind_text(st, 1, lo, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, hi, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int(st, 3, family);
    int rc, stop = 0;
    size_t full = (size_t)bits / 8;
    uint8_t mask = bits % 8 ? (uint8_t)(0xFF << (8 - bits % 8)) : 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *ip = (const char *)sqlite3_column_text(st, 0);
        uint8_t a[16];
        /* The text range is exact for IPv4; IPv6 is checked here. */
        if (family == 6 && (inet_pton(AF_INET6, ip, a) != 1 || memcmp(a, addr, full) != 0 ||
                            (mask && (a[full] & mask) != (addr[full] & mask))))
            continue;
        stop = fn(arg, ip);
    }
    if (!stop && rc != SQLITE_DONE)
        stop = noise_db_fail(n->db, err);
    sqlite3_finalize(st);
    return stop;
}

int tr_noise_ips_in_network(tr_noise *n, int family, const uint8_t *addr, int bits,
                            tr_noise_ip_fn fn, void *arg, tr_error *err)
{
    if (family == 6)
        return walk_text_range(n, NULL, NULL, 6, addr, bits < 0 ? 0 : bits > 128 ? 128 : bits,
                               fn, arg, err);
    if (family != 4 || bits < 0 || bits > 32)
        return tr_fail(err, "not an IPv4 or IPv6 network");
    /* Dotted-decimal text sorts by octet only within the same prefix:
     * "198.51.100." holds every address of 198.51.100.0/24 and nothing
     * else, and ends before "198.51.100/" ('/' follows '.'). A network
     * cut inside an octet is the prefixes of each value of that octet. */
    size_t full = (size_t)bits / 8;
    int rest = bits % 8;
    char pre[24] = "";
    size_t len = 0;
    for (size_t i = 0; i < full && i < 4; i++)
        len += (size_t)snprintf(pre + len, sizeof pre - len, "%u.", addr[i]);
    if (full == 4) {
        pre[len - 1] = 0;   /* one address: [a.b.c.d, a.b.c.d + "\x01") */
        char hi[48];
        snprintf(hi, sizeof hi, "%s%c", pre, 1);
        return walk_text_range(n, pre, hi, 4, addr, bits, fn, arg, err);
    }
    unsigned first = rest ? addr[full] & (0xFFu << (8 - rest) & 0xFF) : 0;
    unsigned count = rest ? 1u << (8 - rest) : 1;
    for (unsigned v = first; v < first + count; v++) {
        char lo[48], hi[48];
        if (rest && full == 3) {
            /* The last octet: each value is one address. */
            snprintf(lo, sizeof lo, "%s%u", pre, v);
            snprintf(hi, sizeof hi, "%s%u%c", pre, v, 1);
        } else if (rest) {
            snprintf(lo, sizeof lo, "%s%u.", pre, v);
            snprintf(hi, sizeof hi, "%s%u/", pre, v);
        } else if (full == 0) {
            /* 0.0.0.0/0: every IPv4 address; the family term says so. */
            snprintf(lo, sizeof lo, "%s", "");
            snprintf(hi, sizeof hi, "%s", "\x7f");
        } else {
            snprintf(lo, sizeof lo, "%s", pre);
            snprintf(hi, sizeof hi, "%.*s/", (int)(len - 1), pre);
        }
        int stop = walk_text_range(n, lo, hi, 4, addr, bits, fn, arg, err);
        if (stop)
            return stop;
    }
    return 0;
}
