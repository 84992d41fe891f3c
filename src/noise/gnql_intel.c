/* What GreyNoise's v3 answers need beyond the record: an IP's timeline and
 * hourly summary (from its stored events), IPs that behave alike (from the
 * per-IP sets) and the activity seen for a CVE (from the tags). */
#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "noise/noise_internal.h"

static int canon_ip(const char *in, char out[64], tr_error *err)
{
    uint8_t a[16];
    int fam = strchr(in, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(fam, in, a) != 1 || !inet_ntop(fam, a, out, 64))
        return tr_fail(err, "'%.60s' is not an IP address", in);
    return 0;
}

/* The expression giving an event's value for a timeline field. */
static const char *timeline_expr(const char *field)
{
    static const struct {
        const char *field, *expr;
    } f[] = {
        {"classification", NULL},
        {"destination_port", "CAST(e.dst_port AS TEXT)"},
        {"protocol", "e.proto"},
        {"sensor", "e.sensor"},
        {"http_path", "json_extract(e.json, '$.fields.http_path')"},
        {"http_user_agent", "json_extract(e.json, '$.fields.http_user_agent')"},
        {"tag_ids", "t.tag"},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (strcmp(f[i].field, field) == 0)
            return f[i].expr ? f[i].expr : "";
    return NULL;
}

int tr_noise_timeline(tr_noise *n, const char *ip_in, const char *field, int days, json_t **out,
                      tr_error *err)
{
    char ip[64];
    if (canon_ip(ip_in, ip, err) != 0)
        return -1;
    const char *expr = timeline_expr(field);
    if (!expr)
        return tr_fail(err, "field must be one of classification, destination_port, protocol,"
                            " sensor, http_path, http_user_agent, tag_ids");
    if (days < 1 || days > 90)
        return tr_fail(err, "days is 1 to 90");
    int64_t now = tr_now_unix(), start_day = now / 86400 - days + 1;
    char cls[32] = "unknown";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db, "SELECT classification, first_seen FROM noise_ips WHERE ip=?",
                           -1, &st, NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
    int64_t first = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(cls, sizeof cls, "%s", sqlite3_column_text(st, 0));
        first = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    /* The classification is the IP's, not per event: label each day's
     * events with it. */
    char *sql = tr_xasprintf(
        "SELECT e.day, %s, count(*) FROM noise_events e%s WHERE e.src_ip = ?1 AND e.day >= ?2"
        " GROUP BY 1, 2 ORDER BY 1, 3 DESC",
        *expr ? expr : "?3",
        strcmp(field, "tag_ids") == 0 ? " JOIN noise_event_tags t ON t.event_id = e.id" : "");
    int rc = sqlite3_prepare_v2(n->db, sql, -1, &st, NULL);
    free(sql);
    if (rc != SQLITE_OK)
        return noise_db_fail(n->db, err);
    sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, start_day);
    if (!*expr)
        sqlite3_bind_text(st, 3, cls, -1, SQLITE_STATIC);
    json_t *results = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *label = (const char *)sqlite3_column_text(st, 1);
        json_t *r = json_pack("{s:o, s:s, s:I}", "timestamp",
                              noise_time_json(sqlite3_column_int64(st, 0) * 86400 * 1000000),
                              "label", label ? label : "", "data",
                              (json_int_t)sqlite3_column_int64(st, 2));
        if (strcmp(field, "tag_ids") == 0 && label) {
            char id[37];
            noise_tag_id(label, id);
            json_object_set_new(r, "label", json_string(id));
            json_object_set_new(r, "name", json_string(label));
        }
        json_array_append_new(results, r);
    }
    sqlite3_finalize(st);
    *out = json_pack("{s:{s:s, s:s, s:o, s:o, s:o, s:s, s:s}, s:o}", "metadata", "ip", ip,
                     "field", field, "first_seen",
                     first ? noise_time_json(first) : json_string(""), "start",
                     noise_time_json(start_day * 86400 * 1000000), "end",
                     noise_time_json(now * 1000000), "granularity", "1d", "metric", "count",
                     "results", results);
    return 0;
}

static void add_unique(json_t *a, const char *v)
{
    if (!v || !*v)
        return;
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x) if (strcmp(json_string_value(x), v) == 0) return;
    json_array_append_new(a, json_string(v));
}

int tr_noise_hourly(tr_noise *n, const char *ip_in, int days, int limit, json_t **out,
                    tr_error *err)
{
    char ip[64];
    if (canon_ip(ip_in, ip, err) != 0)
        return -1;
    if (days < 1 || days > 90)
        return tr_fail(err, "days is 1 to 90");
    if (limit < 1 || limit > 1000)
        limit = 100;
    char cls[32] = "unknown";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db, "SELECT classification FROM noise_ips WHERE ip=?", -1, &st,
                           NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        snprintf(cls, sizeof cls, "%s", sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    int64_t since = (tr_now_unix() - (int64_t)days * 86400) * 1000000;
    if (sqlite3_prepare_v2(
            n->db,
            "SELECT e.time_us / 3600000000, e.dst_port, e.proto, e.sensor,"
            " json_extract(e.json, '$.fields.http_path'),"
            " json_extract(e.json, '$.fields.http_user_agent'),"
            " (SELECT group_concat(tag, char(10)) FROM noise_event_tags WHERE event_id = e.id)"
            " FROM noise_events e WHERE e.src_ip = ? AND e.time_us >= ?"
            " ORDER BY e.time_us DESC",
            -1, &st, NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, since);
    json_t *activity = json_array(), *cur = NULL;
    int64_t cur_hour = -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t hour = sqlite3_column_int64(st, 0);
        if (hour != cur_hour) {
            if ((int)json_array_size(activity) >= limit)
                break;
            cur_hour = hour;
            cur = json_pack("{s:o, s:s, s:s, s:I, s:[], s:[], s:[], s:[], s:[], s:[]}",
                            "timestamp", noise_time_json(hour * 3600 * 1000000), "ip", ip,
                            "classification", cls, "events", (json_int_t)0, "destination_ports",
                            "protocols", "sensors", "http_paths", "http_user_agents", "tags");
            json_array_append_new(activity, cur);
        }
        json_object_set_new(cur, "events",
                            json_integer(json_integer_value(json_object_get(cur, "events")) + 1));
        json_t *ports = json_object_get(cur, "destination_ports");
        int port = sqlite3_column_int(st, 1);
        bool have = false;
        size_t i;
        json_t *x;
        json_array_foreach(ports, i, x) have = have || json_integer_value(x) == port;
        if (!have)
            json_array_append_new(ports, json_integer(port));
        add_unique(json_object_get(cur, "protocols"), (const char *)sqlite3_column_text(st, 2));
        add_unique(json_object_get(cur, "sensors"), (const char *)sqlite3_column_text(st, 3));
        add_unique(json_object_get(cur, "http_paths"), (const char *)sqlite3_column_text(st, 4));
        add_unique(json_object_get(cur, "http_user_agents"),
                   (const char *)sqlite3_column_text(st, 5));
        const char *tags = (const char *)sqlite3_column_text(st, 6);
        if (tags) {
            char *t = tr_xstrdup(tags), *save = NULL;
            for (char *tok = strtok_r(t, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save))
                add_unique(json_object_get(cur, "tags"), tok);
            free(t);
        }
    }
    sqlite3_finalize(st);
    *out = json_pack("{s:o}", "activity", activity);
    return 0;
}

/* The behaviour compared: each kind of per-IP set, one feature. */
static const char *const sim_kinds[] = {"scan", "path", "useragent", "ja3", "hassh", "tag"};
static const char *const sim_names[] = {"ports", "web_paths", "useragents", "ja3", "hassh",
                                        "tags"};
#define NSIM (sizeof sim_kinds / sizeof sim_kinds[0])
#define SIM_CANDIDATES 5000

static void ip_summary(tr_noise *n, const char *ip, json_t *o)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db,
                           "SELECT first_seen, last_seen, ifnull(actor, 'unknown'), classification,"
                           " ifnull(asn, ''), ifnull(city, ''), ifnull(country, ''),"
                           " ifnull(country_code, ''), ifnull(organization, '')"
                           " FROM noise_ips WHERE ip = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *asn = (const char *)sqlite3_column_text(st, 4);
        json_object_set_new(o, "ip", json_string(ip));
        json_object_set_new(o, "first_seen", noise_time_json(sqlite3_column_int64(st, 0)));
        json_object_set_new(o, "last_seen", noise_time_json(sqlite3_column_int64(st, 1)));
        json_object_set_new(o, "actor", json_string((const char *)sqlite3_column_text(st, 2)));
        json_object_set_new(o, "classification",
                            json_string((const char *)sqlite3_column_text(st, 3)));
        json_object_set_new(o, "asn", *asn ? json_sprintf("AS%s", asn) : json_string(""));
        json_object_set_new(o, "city", json_string((const char *)sqlite3_column_text(st, 5)));
        json_object_set_new(o, "country", json_string((const char *)sqlite3_column_text(st, 6)));
        json_object_set_new(o, "country_code",
                            json_string((const char *)sqlite3_column_text(st, 7)));
        json_object_set_new(o, "organization",
                            json_string((const char *)sqlite3_column_text(st, 8)));
    }
    sqlite3_finalize(st);
}

typedef struct sim_cand {
    char *ip;
    double score;
    json_t *features;
} sim_cand;

static int cand_cmp(const void *a, const void *b)
{
    const sim_cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return strcmp(x->ip, y->ip);
}

int tr_noise_similar(tr_noise *n, const char *ip_in, int limit, double min_score, json_t **out,
                     tr_error *err)
{
    char ip[64];
    if (canon_ip(ip_in, ip, err) != 0)
        return -1;
    if (limit < 1 || limit > 1000)
        limit = 50;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db, "SELECT 1 FROM noise_ips WHERE ip = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return noise_db_fail(n->db, err);
    sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
    bool seen = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    if (!seen)
        return 0;
    /* Per feature: the Jaccard index of the two IPs' sets; the score is the
     * mean over the features either IP has. Candidates are the IPs sharing
     * at least one value with this one (through the (kind, value) index). */
    if (sqlite3_prepare_v2(
            n->db,
            "WITH mine AS (SELECT kind, value, port FROM noise_ip_values WHERE ip = ?1 AND kind IN"
            " ('scan','path','useragent','ja3','hassh','tag')),"
            " cand AS (SELECT DISTINCT v.ip FROM mine m JOIN noise_ip_values v ON v.kind = m.kind"
            " AND v.value = m.value AND v.port = m.port WHERE v.ip <> ?1 LIMIT ?2)"
            " SELECT c.ip, k.kind,"
            " (SELECT count(*) FROM noise_ip_values x JOIN mine m ON m.kind = x.kind AND"
            "  m.value = x.value AND m.port = x.port WHERE x.ip = c.ip AND x.kind = k.kind),"
            " (SELECT count(*) FROM noise_ip_values x WHERE x.ip = c.ip AND x.kind = k.kind),"
            " (SELECT count(*) FROM mine m WHERE m.kind = k.kind)"
            " FROM cand c, (SELECT 'scan' AS kind UNION ALL SELECT 'path' UNION ALL"
            " SELECT 'useragent' UNION ALL SELECT 'ja3' UNION ALL SELECT 'hassh' UNION ALL"
            " SELECT 'tag') k ORDER BY c.ip",
            -1, &st, NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, SIM_CANDIDATES);
    sim_cand *c = NULL;
    size_t nc = 0, cap = 0;
    double sum = 0;
    int used = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *cip = (const char *)sqlite3_column_text(st, 0);
        if (nc == 0 || strcmp(c[nc - 1].ip, cip) != 0) {
            if (nc)
                c[nc - 1].score = used ? sum / used : 0;
            if (nc == cap) {
                cap = cap ? cap * 2 : 64;
                c = tr_xrealloc(c, cap * sizeof *c);
            }
            c[nc].ip = tr_xstrdup(cip);
            c[nc].features = json_array();
            c[nc].score = 0;
            nc++;
            sum = 0;
            used = 0;
        }
        const char *kind = (const char *)sqlite3_column_text(st, 1);
        int64_t both = sqlite3_column_int64(st, 2), theirs = sqlite3_column_int64(st, 3),
                mine = sqlite3_column_int64(st, 4);
        int64_t uni = theirs + mine - both;
        if (uni == 0)
            continue;
        used++;
        sum += (double)both / (double)uni;
        if (both > 0)
            for (size_t k = 0; k < NSIM; k++)
                if (strcmp(sim_kinds[k], kind) == 0)
                    json_array_append_new(c[nc - 1].features, json_string(sim_names[k]));
    }
    if (nc)
        c[nc - 1].score = used ? sum / used : 0;
    sqlite3_finalize(st);
    qsort(c, nc, sizeof *c, cand_cmp);
    json_t *me = json_object(), *list = json_array();
    ip_summary(n, ip, me);
    int64_t total = 0;
    for (size_t i = 0; i < nc; i++) {
        if (c[i].score + 1e-9 >= min_score) {
            total++;
            if ((int)json_array_size(list) < limit) {
                json_t *o = json_object();
                ip_summary(n, c[i].ip, o);
                json_object_set_new(o, "score", json_real(round(c[i].score * 1000) / 1000));
                json_object_set(o, "features", c[i].features);
                json_array_append_new(list, o);
            }
        }
        json_decref(c[i].features);
        free(c[i].ip);
    }
    free(c);
    *out = json_pack("{s:o, s:o, s:I}", "ip", me, "similar_ips", list, "total",
                     (json_int_t)total);
    return 1;
}

int tr_noise_cve(tr_noise *n, const char *cve, json_t **out, tr_error *err)
{
    /* The tags naming the CVE, then the IPs carrying them seen in 1, 10 and
     * 30 days, benign apart. */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db,
                           "SELECT name, description FROM noise_tags WHERE instr(',' || cves || ',',"
                           " ',' || upper(?1) || ',') > 0 ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    sqlite3_bind_text(st, 1, cve, -1, SQLITE_STATIC);
    json_t *tags = json_array();
    tr_buf desc = {0};
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_array_append_new(tags, json_string((const char *)sqlite3_column_text(st, 0)));
        if (!desc.len)
            tr_buf_printf(&desc, "%s", sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
    if (json_array_size(tags) == 0) {
        json_decref(tags);
        tr_buf_free(&desc);
        return 0;
    }
    if (sqlite3_prepare_v2(
            n->db,
            "SELECT ifnull(sum(i.classification = 'benign' AND i.last_seen >= ?2), 0),"
            " ifnull(sum(i.classification = 'benign' AND i.last_seen >= ?3), 0),"
            " ifnull(sum(i.classification = 'benign' AND i.last_seen >= ?4), 0),"
            " ifnull(sum(i.classification <> 'benign' AND i.last_seen >= ?2), 0),"
            " ifnull(sum(i.classification <> 'benign' AND i.last_seen >= ?3), 0),"
            " ifnull(sum(i.classification <> 'benign' AND i.last_seen >= ?4), 0)"
            " FROM noise_ips i WHERE i.ip IN (SELECT v.ip FROM noise_ip_values v JOIN noise_tags t"
            " ON t.name = v.value WHERE v.kind = 'tag' AND instr(',' || t.cves || ',', ',' ||"
            " upper(?1) || ',') > 0)",
            -1, &st, NULL) != SQLITE_OK) {
        json_decref(tags);
        tr_buf_free(&desc);
        return noise_db_fail(n->db, err);
    }
    int64_t now = tr_now_unix();
    sqlite3_bind_text(st, 1, cve, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (now - 86400) * 1000000);
    sqlite3_bind_int64(st, 3, (now - 10 * 86400) * 1000000);
    sqlite3_bind_int64(st, 4, (now - 30 * 86400) * 1000000);
    int64_t c[6] = {0};
    if (sqlite3_step(st) == SQLITE_ROW)
        for (int k = 0; k < 6; k++)
            c[k] = sqlite3_column_int64(st, k);
    sqlite3_finalize(st);
    char up[64];
    snprintf(up, sizeof up, "%s", cve);
    for (char *p = up; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 32);
    json_t *o = json_pack(
        "{s:s, s:{s:s, s:s, s:f, s:s, s:s, s:b}, s:{s:s, s:s, s:s, s:s},"
        " s:{s:s, s:b, s:b, s:f}, s:{s:i, s:i, s:i},"
        " s:{s:b, s:I, s:I, s:I, s:I, s:I, s:I}, s:o}",
        "id", up, "details", "vulnerability_name", json_string_value(json_array_get(tags, 0)),
        "vulnerability_description", desc.data ? desc.data : "", "cve_cvss_score", 0.0,
        "product", "", "vendor", "", "published_to_nist_nvd", 0, "timeline",
        "cve_published_date", "", "cve_last_updated_date", "", "first_known_published_date", "",
        "cisa_kev_date_added", "", "exploitation_details", "attack_vector", "", "exploit_found",
        0, "exploitation_registered_in_kev", 0, "epss_score", 0.0, "exploitation_stats",
        "number_of_available_exploits", 0, "number_of_threat_actors_exploiting_vulnerability", 0,
        "number_of_botnets_exploiting_vulnerability", 0, "exploitation_activity", "activity_seen",
        c[2] + c[5] > 0, "benign_ip_count_1d", (json_int_t)c[0], "benign_ip_count_10d",
        (json_int_t)c[1], "benign_ip_count_30d", (json_int_t)c[2], "threat_ip_count_1d",
        (json_int_t)c[3], "threat_ip_count_10d", (json_int_t)c[4], "threat_ip_count_30d",
        (json_int_t)c[5], "tags", tags);
    tr_buf_free(&desc);
    *out = o;
    return 1;
}

int tr_noise_sensors(tr_noise *n, json_t **out, tr_error *err)
{
    /* From the stored events: recent days only, through the day index. */
    int64_t now = tr_now_unix();
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db,
                           "SELECT sensor, max(time_us), sum(time_us >= ?1), sum(time_us >= ?2),"
                           " count(DISTINCT src_ip), count(*) FROM noise_events WHERE day >= ?3"
                           " GROUP BY sensor ORDER BY sensor",
                           -1, &st, NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    sqlite3_bind_int64(st, 1, (now - 3600) * 1000000);
    sqlite3_bind_int64(st, 2, (now - 86400) * 1000000);
    sqlite3_bind_int64(st, 3, now / 86400 - 6);
    json_t *a = json_array();
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(
            a, json_pack("{s:s, s:o, s:I, s:I, s:I, s:I}", "name", sqlite3_column_text(st, 0),
                         "last_event", noise_time_json(sqlite3_column_int64(st, 1)),
                         "events_1h", (json_int_t)sqlite3_column_int64(st, 2), "events_24h",
                         (json_int_t)sqlite3_column_int64(st, 3), "ips_7d",
                         (json_int_t)sqlite3_column_int64(st, 4), "events_7d",
                         (json_int_t)sqlite3_column_int64(st, 5)));
    sqlite3_finalize(st);
    *out = a;
    return 0;
}

int tr_noise_tag_days(tr_noise *n, const char *tag, int days, json_t **out, tr_error *err)
{
    if (days < 1 || days > 365)
        days = 30;
    int64_t first = tr_now_unix() / 86400 - days + 1;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db,
                           "SELECT e.day, count(DISTINCT e.src_ip) FROM noise_event_tags t"
                           " JOIN noise_events e ON e.id = t.event_id WHERE t.tag = ?1 AND"
                           " e.day >= ?2 GROUP BY e.day",
                           -1, &st, NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, first);
    int64_t *counts = tr_xcalloc((size_t)days, sizeof *counts);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t d = sqlite3_column_int64(st, 0) - first;
        if (d >= 0 && d < days)
            counts[d] = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    json_t *a = json_array();
    for (int d = 0; d < days; d++) {
        json_t *t = noise_time_json((first + d) * 86400 * 1000000);
        char day[11];
        snprintf(day, sizeof day, "%s", json_string_value(t));
        json_decref(t);
        json_array_append_new(a, json_pack("{s:s, s:I}", "day", day, "ips", (json_int_t)counts[d]));
    }
    free(counts);
    *out = json_pack("{s:s, s:o}", "tag", tag, "days", a);
    return 0;
}

int tr_noise_quick(tr_noise *n, const char *ip_in, json_t **out, tr_error *err)
{
    char ip[64];
    if (canon_ip(ip_in, ip, err) != 0)
        return -1;
    if (!n->gnql_sql) {
        /* From GNQL's index: no B-tree probe of a 1M-row table per IP (a
         * multi call asks 1,000). */
        char cls[64], day[11];
        bool spoof = false;
        int64_t last = 0;
        int f = noise_ix_quick(n, ip, cls, sizeof cls, &spoof, &last, err);
        if (f == 1) {
            json_t *t = noise_time_json(last);
            snprintf(day, sizeof day, "%s", json_string_value(t));
            json_decref(t);
            *out = json_pack("{s:s, s:b, s:s}", "classification", cls, "spoofable", spoof,
                             "last_seen", day);
        }
        return f;
    }
    sqlite3_stmt *st =
        noise_stmt(n, "SELECT classification, spoofable, last_seen FROM noise_ips WHERE ip = ?", err);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
    int found = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        json_t *t = noise_time_json(sqlite3_column_int64(st, 2));
        char day[11];
        snprintf(day, sizeof day, "%s", json_string_value(t));
        json_decref(t);
        *out = json_pack("{s:s, s:b, s:s}", "classification", sqlite3_column_text(st, 0),
                         "spoofable", sqlite3_column_int(st, 1), "last_seen", day);
        found = 1;
    }
    noise_stmt_done(st);
    return found;
}
