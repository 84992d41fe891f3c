/* Ingest: a batch of events judged by the tag rules, stored, and folded into
 * the per-IP records, all in one transaction. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "noise/noise_internal.h"

typedef struct stmts {
    sqlite3_stmt *event, *ip_exists, *ip_upsert, *day, *val_update, *val_count,
        *overflow, *evtag, *reclassify, *enrich, *val_upsert;
} stmts;

static int prep(tr_noise *n, sqlite3_stmt **st, const char *sql, tr_error *err)
{
    if (*st) {
        sqlite3_reset(*st);
        sqlite3_clear_bindings(*st);
        return 0;
    }
    if (sqlite3_prepare_v2(n->db, sql, -1, st, NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    return 0;
}

static void stmts_free(stmts *s)
{
    sqlite3_stmt **all[] = {&s->event,      &s->ip_exists,  &s->ip_upsert, &s->day,  &s->val_update,
                            &s->val_count,  &s->overflow,  &s->evtag, &s->reclassify,
                            &s->enrich,     &s->val_upsert};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        sqlite3_finalize(*all[i]);
        *all[i] = NULL;
    }
}

static int step_done(tr_noise *n, sqlite3_stmt *st, tr_error *err)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return noise_db_fail(n->db, err);
    return 0;
}

/* One value of a bounded per-IP set: counted when known, added while the
 * set has room, else only counted as dropped. Tags are never dropped. */
#define VALUE_MAX 1024     /* bytes of one set value kept (a path, a command...) */

/* Cuts a set value to VALUE_MAX bytes on a UTF-8 character boundary (the
 * record is JSON); 0 for a value not kept (absent or empty). */
static size_t value_len(const char *value)
{
    if (!value || !*value)
        return 0;
    size_t vlen = strlen(value);
    if (vlen > VALUE_MAX) {
        vlen = VALUE_MAX;
        while (vlen > 0 && ((unsigned char)value[vlen] & 0xC0) == 0x80)
            vlen--;
    }
    return vlen;
}

/* cnt occurrences of one value, seen from first to last. have: how many
 * values of this kind the IP holds when the caller knows it (an IP whose
 * record this batch made: the ones the batch added), else -1 (looked up). */
static int add_value_n(tr_noise *n, stmts *s, const char *ip, const char *kind, const char *value,
                       size_t vlen, int port, int64_t cnt, int64_t first, int64_t last,
                       int64_t have, tr_error *err)
{
    if (vlen == 0)
        return 0;
    bool tag = strcmp(kind, "tag") == 0;
    if (have < 0 || (have >= TR_NOISE_SET_MAX && !tag)) {
        if (prep(n, &s->val_update,
                 "UPDATE noise_ip_values SET n=n+?6, first_seen=min(first_seen, ?5),"
                 " last_seen=max(last_seen, ?7) WHERE ip=?1 AND kind=?2 AND value=?3 AND port=?4",
                 err) != 0)
            return -1;
        sqlite3_bind_text(s->val_update, 1, ip, -1, SQLITE_STATIC);
        sqlite3_bind_text(s->val_update, 2, kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(s->val_update, 3, value, (int)vlen, SQLITE_STATIC);
        sqlite3_bind_int(s->val_update, 4, port);
        sqlite3_bind_int64(s->val_update, 5, first);
        sqlite3_bind_int64(s->val_update, 6, cnt);
        sqlite3_bind_int64(s->val_update, 7, last);
        if (step_done(n, s->val_update, err) != 0)
            return -1;
        if (sqlite3_changes(n->db) > 0)
            return 0;
        if (!tag) {
            if (prep(n, &s->val_count,
                     "SELECT count(*) FROM noise_ip_values WHERE ip=? AND kind=?", err) != 0)
                return -1;
            sqlite3_bind_text(s->val_count, 1, ip, -1, SQLITE_STATIC);
            sqlite3_bind_text(s->val_count, 2, kind, -1, SQLITE_STATIC);
            have = sqlite3_step(s->val_count) == SQLITE_ROW
                       ? sqlite3_column_int64(s->val_count, 0) : 0;
            sqlite3_reset(s->val_count);
            if (have >= TR_NOISE_SET_MAX) {
                if (prep(n, &s->overflow,
                         "INSERT INTO noise_ip_overflow(ip, kind, dropped) VALUES(?,?,?)"
                         " ON CONFLICT(ip, kind) DO UPDATE SET dropped=dropped+excluded.dropped",
                         err) != 0)
                    return -1;
                sqlite3_bind_text(s->overflow, 1, ip, -1, SQLITE_STATIC);
                sqlite3_bind_text(s->overflow, 2, kind, -1, SQLITE_STATIC);
                sqlite3_bind_int64(s->overflow, 3, cnt);
                return step_done(n, s->overflow, err);
            }
        }
    }
    /* A new value (the update missed, or the IP's record is this batch's).
     * An upsert, not a plain insert: for a new record the update was not
     * tried, and a value left behind by a removed record (another process
     * purging meanwhile) is added to, not a constraint error. */
    if (prep(n, &s->val_upsert,
             "INSERT INTO noise_ip_values(ip, kind, value, port, n, first_seen, last_seen)"
             " VALUES(?1,?2,?3,?4,?5,?6,?7) ON CONFLICT(ip, kind, value, port) DO UPDATE SET"
             " n=n+excluded.n, first_seen=min(first_seen, excluded.first_seen),"
             " last_seen=max(last_seen, excluded.last_seen)",
             err) != 0)
        return -1;
    sqlite3_bind_text(s->val_upsert, 1, ip, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->val_upsert, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->val_upsert, 3, value, (int)vlen, SQLITE_STATIC);
    sqlite3_bind_int(s->val_upsert, 4, port);
    sqlite3_bind_int64(s->val_upsert, 5, cnt);
    sqlite3_bind_int64(s->val_upsert, 6, first);
    sqlite3_bind_int64(s->val_upsert, 7, last);
    return step_done(n, s->val_upsert, err);
}

static int add_value(tr_noise *n, stmts *s, const char *ip, const char *kind, const char *value,
                     int port, int64_t t, tr_error *err)
{
    return add_value_n(n, s, ip, kind, value, value_len(value), port, 1, t, t, -1, err);
}

/* ---- a batch's per-IP changes, summed before they are written --------------
 * Each distinct (ip, kind, value, port) once per batch, in the order of
 * first appearance: the same rows, counts and dropped values as writing
 * event by event, in a fraction of the statements. */
typedef struct agg_val {
    size_t owner;             /* the batch index of the IP's first event */
    const char *ip, *kind;
    char *value;
    size_t vlen;
    int port;
    int64_t n, first, last;
} agg_val;

typedef struct agg {
    agg_val *v;
    size_t n, cap;
    size_t *slot, nslot;      /* open addressing over v, SIZE_MAX: free */
} agg;

static uint64_t agg_hash(const char *ip, const char *kind, const char *value, size_t vlen, int port)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = ip; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    for (const char *p = kind; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    for (size_t i = 0; i < vlen; i++)
        h = (h ^ (unsigned char)value[i]) * 1099511628211ULL;
    return (h ^ (uint64_t)(unsigned)port) * 1099511628211ULL;
}

static bool agg_same(const agg_val *v, const char *ip, const char *kind, const char *value,
                     size_t vlen, int port)
{
    return v->port == port && v->vlen == vlen && strcmp(v->kind, kind) == 0 &&
           strcmp(v->ip, ip) == 0 && memcmp(v->value, value, vlen) == 0;
}

static void agg_rehash(agg *a)
{
    a->nslot = a->nslot ? a->nslot * 2 : 1024;
    free(a->slot);
    a->slot = tr_xmalloc(a->nslot * sizeof *a->slot);
    for (size_t i = 0; i < a->nslot; i++)
        a->slot[i] = SIZE_MAX;
    for (size_t i = 0; i < a->n; i++) {
        agg_val *v = &a->v[i];
        size_t k = (size_t)agg_hash(v->ip, v->kind, v->value, v->vlen, v->port) & (a->nslot - 1);
        while (a->slot[k] != SIZE_MAX)
            k = (k + 1) & (a->nslot - 1);
        a->slot[k] = i;
    }
}

/* The entry of (ip, kind, value, port), made (n 0) when new. ip and kind
 * must outlive the batch; value is copied. */
static agg_val *agg_slot(agg *a, size_t owner, const char *ip, const char *kind,
                         const char *value, size_t vlen, int port)
{
    if (2 * (a->n + 1) > a->nslot)
        agg_rehash(a);
    size_t k = (size_t)agg_hash(ip, kind, value, vlen, port) & (a->nslot - 1);
    while (a->slot[k] != SIZE_MAX) {
        agg_val *v = &a->v[a->slot[k]];
        if (agg_same(v, ip, kind, value, vlen, port))
            return v;
        k = (k + 1) & (a->nslot - 1);
    }
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 256;
        a->v = tr_xrealloc(a->v, a->cap * sizeof *a->v);
    }
    agg_val *v = &a->v[a->n];
    v->owner = owner;
    v->ip = ip;
    v->kind = kind;
    v->value = tr_xmalloc(vlen + 1);
    memcpy(v->value, value, vlen);
    v->value[vlen] = 0;
    v->vlen = vlen;
    v->port = port;
    v->n = 0;
    v->first = INT64_MAX;
    v->last = INT64_MIN;
    a->slot[k] = a->n++;
    return v;
}

static void agg_add(agg *a, size_t owner, const char *ip, const char *kind, const char *value,
                    int port, int64_t t)
{
    size_t vlen = value_len(value);
    if (vlen == 0)
        return;
    agg_val *v = agg_slot(a, owner, ip, kind, value, vlen, port);
    v->n++;
    v->first = t < v->first ? t : v->first;
    v->last = t > v->last ? t : v->last;
}

/* fresh[owner]: the IP's record was made by this batch, so it holds only
 * the values this batch adds, counted in memory per kind (sets) instead of
 * looked up value by value; NULL: every IP is looked up. */
static int agg_write(tr_noise *n, stmts *s, const agg *a, const bool *fresh, agg *sets,
                     tr_error *err)
{
    for (size_t i = 0; i < a->n; i++) {
        const agg_val *v = &a->v[i];
        int64_t have = -1;
        if (fresh && fresh[v->owner])
            have = agg_slot(sets, v->owner, v->ip, v->kind, "", 0, 0)->n++;
        if (add_value_n(n, s, v->ip, v->kind, v->value, v->vlen, v->port, v->n, v->first, v->last,
                        have, err) != 0)
            return -1;
    }
    return 0;
}

static void agg_free(agg *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i].value);
    free(a->v);
    free(a->slot);
    memset(a, 0, sizeof *a);
}

static int noise_tag_event_with(tr_noise *n, stmts *s, int64_t event_id, const char *ip,
                                const char *tag, int64_t time_us, tr_error *err)
{
    int rc = prep(n, &s->evtag,
                  "INSERT OR IGNORE INTO noise_event_tags(event_id, tag) VALUES(?,?)", err);
    if (rc == 0) {
        sqlite3_bind_int64(s->evtag, 1, event_id);
        sqlite3_bind_text(s->evtag, 2, tag, -1, SQLITE_STATIC);
        rc = step_done(n, s->evtag, err);
    }
    if (rc == 0 && sqlite3_changes(n->db) > 0)
        rc = add_value(n, s, ip, "tag", tag, 0, time_us, err);
    return rc;
}

int noise_tag_event(tr_noise *n, int64_t event_id, const char *ip, const char *tag,
                    int64_t time_us, tr_error *err)
{
    stmts s = {0};
    int rc = noise_tag_event_with(n, &s, event_id, ip, tag, time_us, err);
    stmts_free(&s);
    return rc;
}

/* first[i]: the index of the first event of the batch from ips[i]'s address
 * (an open-addressing table over the batch). */
static void first_of_each(char (*ips)[46], size_t n, size_t *first)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    size_t *slot = tr_xmalloc(cap * sizeof *slot);
    for (size_t i = 0; i < cap; i++)
        slot[i] = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        uint64_t hsh = 1469598103934665603ULL;
        for (const char *p = ips[i]; *p; p++)
            hsh = (hsh ^ (unsigned char)*p) * 1099511628211ULL;
        size_t k = (size_t)hsh & (cap - 1);
        while (slot[k] != SIZE_MAX && strcmp(ips[slot[k]], ips[i]) != 0)
            k = (k + 1) & (cap - 1);
        if (slot[k] == SIZE_MAX)
            slot[k] = i;
        first[i] = slot[k];
    }
    free(slot);
}

/* GreyNoise's order: a benign actor, else a malicious actor or tag, else
 * suspicious behaviour (credentials tried, commands sent, downloads asked
 * for), else unknown. */
static int reclassify_stmt(tr_noise *n, sqlite3_stmt **out, const char *ip, tr_error *err)
{
    char *sql = tr_xasprintf(
        "UPDATE noise_ips SET classification = CASE"
        " WHEN actor_benign = 1 THEN 'benign'"
        " WHEN actor_benign = 0 THEN 'malicious'"
        " WHEN EXISTS(SELECT 1 FROM noise_ip_values v JOIN noise_tags t ON t.name = v.value"
        "  WHERE v.ip = noise_ips.ip AND v.kind = 'tag' AND t.intention = 'malicious')"
        "  THEN 'malicious'"
        " WHEN EXISTS(SELECT 1 FROM noise_ip_values v WHERE v.ip = noise_ips.ip"
        "  AND v.kind IN ('cred', 'command', 'download')) THEN 'suspicious'"
        " ELSE 'unknown' END%s",
        ip ? " WHERE ip = ?" : "");
    int rc = sqlite3_prepare_v2(n->db, sql, -1, out, NULL);
    free(sql);
    return rc == SQLITE_OK ? 0 : noise_db_fail(n->db, err);
}

int noise_reclassify(tr_noise *n, const char *ip, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (reclassify_stmt(n, &st, ip, err) != 0)
        return -1;
    if (ip)
        sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : noise_db_fail(n->db, err);
}

typedef struct hits {
    size_t n, cap;
    struct {
        size_t ev;
        char *tag;
    } *h;
} hits;

static void on_hit(void *arg, size_t ev, const char *tag)
{
    hits *h = arg;
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 64;
        h->h = tr_xrealloc(h->h, h->cap * sizeof *h->h);
    }
    h->h[h->n].ev = ev;
    h->h[h->n].tag = tr_xstrdup(tag);
    h->n++;
}

static void hits_free(hits *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->h[i].tag);
    free(h->h);
}

static int64_t day_of(int64_t us)
{
    int64_t s = us / 1000000 - (us % 1000000 < 0 ? 1 : 0);
    return s / 86400 - (s % 86400 < 0 ? 1 : 0);
}

/* The retention runs at most once a day, on the first batch of the day. */
static int daily_purge(tr_noise *n, uint64_t *purged, tr_error *err)
{
    int64_t today = tr_now_unix() / 86400;
    if (noise_setting_int(n, "last_purge_day", 0) == today)
        return 0;
    int days;
    if (tr_noise_retention(n, true, &days, purged, err) != 0)
        return -1;
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)today);
    return noise_setting_put(n, "last_purge_day", v, err);
}

/* The per-IP sums of a batch, at the index of each address's first event. */
typedef struct ip_sum {
    int64_t events, first, last, bytes;
    bool spoofable;
} ip_sum;

/* Stores the event's row and adds what it tells of its IP to the batch's
 * sums. */
static int store_event(tr_noise *n, stmts *s, const tr_event *e, size_t owner, const char *ip,
                       ip_sum *sum, agg *vals, agg *days, int64_t *event_id, tr_error *err)
{
    int64_t t = e->time_us, day = day_of(t);
    json_t *j = tr_event_to_json(e);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text)
        tr_die("out of memory");
    int rc = prep(n, &s->event,
                  "INSERT INTO noise_events(day, time_us, src_ip, sensor, dst_port, proto, json)"
                  " VALUES(?,?,?,?,?,?,?)",
                  err);
    if (rc == 0) {
        sqlite3_bind_int64(s->event, 1, day);
        sqlite3_bind_int64(s->event, 2, t);
        sqlite3_bind_text(s->event, 3, ip, -1, SQLITE_STATIC);
        sqlite3_bind_text(s->event, 4, e->sensor, -1, SQLITE_STATIC);
        sqlite3_bind_int(s->event, 5, e->dst_port);
        sqlite3_bind_text(s->event, 6, e->proto, -1, SQLITE_STATIC);
        sqlite3_bind_text(s->event, 7, text, -1, SQLITE_STATIC);
        rc = step_done(n, s->event, err);
    }
    free(text);
    if (rc != 0)
        return -1;
    *event_id = sqlite3_last_insert_rowid(n->db);

    /* Spoofable while everything it did needed no handshake. */
    if (sum->events == 0) {
        sum->first = sum->last = t;
        sum->spoofable = true;
    }
    sum->events++;
    sum->first = t < sum->first ? t : sum->first;
    sum->last = t > sum->last ? t : sum->last;
    sum->spoofable = sum->spoofable && !e->handshake;
    sum->bytes += (int64_t)e->payload_len;
    /* Days are keyed by the day number in the port slot. */
    agg_add(days, owner, ip, "day", "d", (int)day, t);

    char transport[8];
    size_t i;
    for (i = 0; e->transport[i] && i + 1 < sizeof transport; i++)
        transport[i] = (char)(e->transport[i] >= 'a' && e->transport[i] <= 'z'
                                  ? e->transport[i] - 32 : e->transport[i]);
    transport[i] = 0;
    int port = e->dst_port;
    char dst[46];
    tr_event_dst_text(e, dst);
    const char *ja3 = tr_event_get(e, "ja3_hash");
    char md5[TR_MD5_HEX];
    if (!ja3 && tr_event_get(e, "ja3")) {
        const char *s3 = tr_event_get(e, "ja3");
        tr_md5_hex(s3, strlen(s3), md5);
        ja3 = md5;
    }
    const char *user = tr_event_get(e, "username"), *pass = tr_event_get(e, "password");
    char *cred = NULL;
    if (user || pass) {
        json_t *c = json_pack("[ss]", user ? user : "", pass ? pass : "");
        cred = json_dumps(c, JSON_COMPACT);
        json_decref(c);
    }
    struct {
        const char *kind, *value;
        int port;
    } v[] = {
        {"scan", transport, port},
        {"proto", e->proto, port},
        {"sensor", e->sensor, 0},
        {"path", tr_event_get(e, "http_path"), 0},
        {"useragent", tr_event_get(e, "http_user_agent"), 0},
        {"ja3", ja3, port},
        {"ja4", tr_event_get(e, "ja4"), port},
        {"hassh", tr_event_get(e, "hassh"), port},
        {"ssh_client", tr_event_get(e, "ssh_client"), 0},
        {"cred", cred, 0},
        {"command", tr_event_get(e, "command"), 0},
        {"download", tr_event_get(e, "download_url"), 0},
        {"sni", tr_event_get(e, "tls_sni"), 0},
        {"method", tr_event_get(e, "http_method"), 0},
        {"host", tr_event_get(e, "http_host"), 0},
        {"dst", dst, port},
    };
    for (i = 0; i < sizeof v / sizeof v[0]; i++)
        agg_add(vals, owner, ip, v[i].kind, v[i].value, v[i].port, t);
    free(cred);
    return 0;
}

/* Writes one IP's sums: 1 the address is new (its row was made now), 0 it
 * was known, -1 error. */
static int write_ip(tr_noise *n, stmts *s, const char *ip, int family, const ip_sum *sum,
                    tr_error *err)
{
    if (prep(n, &s->ip_upsert,
             "INSERT INTO noise_ips(ip, family, first_seen, last_seen, events, spoofable, bytes)"
             " VALUES(?1, ?2, ?3, ?4, ?6, ?5, ?7) ON CONFLICT(ip) DO UPDATE SET"
             " first_seen=min(first_seen, excluded.first_seen),"
             " last_seen=max(last_seen, excluded.last_seen), events=events+excluded.events,"
             " spoofable=spoofable AND excluded.spoofable, bytes=bytes+excluded.bytes"
             " RETURNING events",
             err) != 0)
        return -1;
    sqlite3_bind_text(s->ip_upsert, 1, ip, -1, SQLITE_STATIC);
    sqlite3_bind_int(s->ip_upsert, 2, family);
    sqlite3_bind_int64(s->ip_upsert, 3, sum->first);
    sqlite3_bind_int64(s->ip_upsert, 4, sum->last);
    sqlite3_bind_int(s->ip_upsert, 5, sum->spoofable);
    sqlite3_bind_int64(s->ip_upsert, 6, sum->events);
    sqlite3_bind_int64(s->ip_upsert, 7, sum->bytes);
    if (sqlite3_step(s->ip_upsert) != SQLITE_ROW)
        return noise_db_fail(n->db, err);
    /* Only this batch's events: the row is new. */
    int is_new = sqlite3_column_int64(s->ip_upsert, 0) == sum->events;
    if (sqlite3_step(s->ip_upsert) != SQLITE_DONE)
        return noise_db_fail(n->db, err);
    return is_new;
}

static int write_days(tr_noise *n, stmts *s, const agg *days, tr_error *err)
{
    for (size_t i = 0; i < days->n; i++) {
        if (prep(n, &s->day,
                 "INSERT INTO noise_ip_days(ip, day, n) VALUES(?,?,?)"
                 " ON CONFLICT(ip, day) DO UPDATE SET n=n+excluded.n",
                 err) != 0)
            return -1;
        sqlite3_bind_text(s->day, 1, days->v[i].ip, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->day, 2, days->v[i].port);
        sqlite3_bind_int64(s->day, 3, days->v[i].n);
        if (step_done(n, s->day, err) != 0)
            return -1;
    }
    return 0;
}

int tr_noise_ingest(tr_noise *n, tr_event *evs, size_t nev, tr_noise_stats *st, tr_error *err)
{
    tr_noise_stats local = {0};
    if (!st)
        st = &local;
    memset(st, 0, sizeof *st);
    if (nev == 0)
        return 0;
    if (daily_purge(n, &st->purged, err) != 0)
        return -1;
    char *yarc = NULL;
    hits h = {0};
    if (noise_tags_yarc(n, &yarc, err) != 0)
        return -1;
    int rc = noise_yara_scan(yarc, evs, nev, on_hit, &h, err);
    if (rc != 0 && strstr(err->msg, "cannot load the compiled")) {
        /* A cache written by another libyara version: compile again, once. */
        unlink(yarc);
        free(yarc);
        yarc = NULL;
        if (noise_tags_yarc(n, &yarc, err) != 0)
            return -1;
        rc = noise_yara_scan(yarc, evs, nev, on_hit, &h, err);
    }
    free(yarc);
    if (rc != 0) {
        /* A tag rule that kills libyara must not stop the sensors: the
         * batch is stored with the tags found before the failure, and a
         * later retrohunt (tag add) can judge it again. */
        tr_log(TR_LOG_WARN, "noise: %s; the batch of %zu events is stored, not fully judged",
               err->msg, nev);
        st->unjudged = nev;
        rc = 0;
    }
    stmts s = {0};
    int64_t *ids = tr_xcalloc(nev, sizeof *ids);
    char (*ips)[46] = tr_xcalloc(nev, sizeof *ips);
    bool *tagged = tr_xcalloc(nev, sizeof *tagged);
    size_t *first = tr_xcalloc(nev, sizeof *first);
    noise_geo *geo = tr_xcalloc(nev, sizeof *geo);
    bool *looked = tr_xcalloc(nev, sizeof *looked);
    bool *fresh = tr_xcalloc(nev, sizeof *fresh);     /* record made by this batch */
    ip_sum *sums = tr_xcalloc(nev, sizeof *sums);
    agg vals = {0}, days = {0}, tagvals = {0}, sets = {0};
    for (size_t i = 0; i < nev; i++)
        tr_event_src_text(&evs[i], ips[i]);
    first_of_each(ips, nev, first);
    /* Enrichment of addresses not seen before, outside the transaction. */
    for (size_t i = 0; i < nev && rc == 0; i++) {
        if (first[i] != i)
            continue;
        rc = prep(n, &s.ip_exists, "SELECT 1 FROM noise_ips WHERE ip=?", err);
        if (rc != 0)
            break;
        sqlite3_bind_text(s.ip_exists, 1, ips[i], -1, SQLITE_STATIC);
        if (sqlite3_step(s.ip_exists) != SQLITE_ROW) {
            noise_lookup(n, evs[i].family, evs[i].src_ip, &geo[i]);
            looked[i] = true;
        }
        sqlite3_reset(s.ip_exists);
    }
    if (rc == 0)
        rc = noise_exec(n, "BEGIN IMMEDIATE", err);
    /* Events one by one (each its row and id); what they tell of their
     * IPs summed, then written once per IP, day and set value. */
    for (size_t i = 0; i < nev && rc == 0; i++)
        rc = store_event(n, &s, &evs[i], first[i], ips[i], &sums[first[i]], &vals, &days, &ids[i],
                         err);
    for (size_t i = 0; i < nev && rc == 0; i++) {
        if (first[i] != i)
            continue;
        int is_new = write_ip(n, &s, ips[i], evs[i].family, &sums[i], err);
        if (is_new < 0) {
            rc = -1;
        } else if (is_new) {
            st->new_ips++;
            fresh[i] = true;
            if (!looked[i]) {          /* another process removed it meanwhile */
                noise_lookup(n, evs[i].family, evs[i].src_ip, &geo[i]);
                looked[i] = true;
            }
            rc = noise_enrich(n, &s.enrich, ips[i], evs[i].family, evs[i].src_ip, &geo[i], err);
        }
    }
    if (rc == 0)
        rc = write_days(n, &s, &days, err);
    if (rc == 0)
        rc = agg_write(n, &s, &vals, fresh, &sets, err);
    for (size_t i = 0; i < h.n && rc == 0; i++) {
        size_t ev = h.h[i].ev;
        tagged[ev] = true;
        rc = prep(n, &s.evtag, "INSERT OR IGNORE INTO noise_event_tags(event_id, tag) VALUES(?,?)",
                  err);
        if (rc == 0) {
            sqlite3_bind_int64(s.evtag, 1, ids[ev]);
            sqlite3_bind_text(s.evtag, 2, h.h[i].tag, -1, SQLITE_STATIC);
            rc = step_done(n, s.evtag, err);
        }
        if (rc == 0 && sqlite3_changes(n->db) > 0)
            agg_add(&tagvals, first[ev], ips[ev], "tag", h.h[i].tag, 0, evs[ev].time_us);
    }
    if (rc == 0)
        rc = agg_write(n, &s, &tagvals, fresh, &sets, err);
    for (size_t i = 0; i < nev && rc == 0; i++) {
        if (first[i] == i) {
            if (!s.reclassify)
                rc = reclassify_stmt(n, &s.reclassify, "", err);
            else
                sqlite3_reset(s.reclassify);
            if (rc == 0) {
                sqlite3_bind_text(s.reclassify, 1, ips[i], -1, SQLITE_STATIC);
                rc = step_done(n, s.reclassify, err);
            }
        }
        st->tagged += tagged[i];
    }
    for (size_t i = 0; i < nev; i++)
        noise_geo_clear(&geo[i]);
    free(geo);
    free(looked);
    free(fresh);
    free(first);
    free(sums);
    agg_free(&vals);
    agg_free(&days);
    agg_free(&tagvals);
    agg_free(&sets);
    stmts_free(&s);
    if (rc == 0)
        rc = noise_ix_prune(n, err);
    if (rc == 0)
        rc = noise_exec(n, "COMMIT", err);
    if (rc != 0)
        sqlite3_exec(n->db, "ROLLBACK", NULL, NULL, NULL);
    else
        st->events = nev;
    free(ids);
    free(ips);
    free(tagged);
    hits_free(&h);
    return rc;
}

/* ---- batches filled one event at a time ----------------------------------- */

struct tr_noise_batch {
    tr_noise *n;
    tr_event *evs;
    size_t nev, size;
    tr_noise_stats total;
};

tr_noise_batch *tr_noise_batch_new(tr_noise *n, size_t size)
{
    tr_noise_batch *b = tr_xcalloc(1, sizeof *b);
    b->n = n;
    b->size = size ? size : 1000;
    b->evs = tr_xcalloc(b->size, sizeof *b->evs);
    return b;
}

static void batch_clear(tr_noise_batch *b)
{
    for (size_t i = 0; i < b->nev; i++)
        tr_event_clear(&b->evs[i]);
    b->nev = 0;
}

static int batch_commit(tr_noise_batch *b, tr_error *err)
{
    tr_noise_stats st;
    int rc = tr_noise_ingest(b->n, b->evs, b->nev, &st, err);
    batch_clear(b);
    if (rc == 0) {
        b->total.events += st.events;
        b->total.tagged += st.tagged;
        b->total.new_ips += st.new_ips;
        b->total.purged += st.purged;
        b->total.unjudged += st.unjudged;
    }
    return rc;
}

int tr_noise_batch_add(tr_noise_batch *b, const tr_event *e, tr_error *err)
{
    tr_event *c = &b->evs[b->nev++];
    *c = *e;
    c->payload = NULL;
    c->payload_len = 0;
    c->nfields = 0;
    tr_event_set_payload(c, e->payload, e->payload_len);
    for (size_t i = 0; i < e->nfields; i++)
        tr_event_set(c, e->fields[i].key, e->fields[i].value);
    if (b->nev == b->size)
        return batch_commit(b, err);
    return 0;
}

int tr_noise_batch_flush(tr_noise_batch *b, tr_noise_stats *st, tr_error *err)
{
    int rc = b->nev ? batch_commit(b, err) : 0;
    if (st)
        *st = b->total;
    return rc;
}

void tr_noise_batch_free(tr_noise_batch *b)
{
    if (!b)
        return;
    batch_clear(b);
    free(b->evs);
    free(b);
}

int tr_noise_batch_sink(void *ctx, tr_event *e, tr_error *err)
{
    return tr_noise_batch_add(ctx, e, err);
}
