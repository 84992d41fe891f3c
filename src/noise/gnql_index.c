/* GNQL's in-memory index: every noise IP has a dense id (ids 0..nsorted-1
 * in address-text order, later arrivals after them) and every value GNQL
 * asks about or stats count -- record fields (classification, actor,
 * country, ASN, organisation...) and per-IP set values (ports, tags,
 * sensors, paths, user agents, JA3/JA4, HASSH, destinations) -- a CRoaring
 * bitmap of ids. A query is bitmap algebra and stats are the cardinalities
 * of (result AND value): nothing is done per matching IP but the page.
 *
 * One index per data directory per process, shared by the handles of all
 * threads under a rwlock. It is built from SQLite on first use and kept
 * current from noise_gnql_log, which triggers fill in the same transaction
 * as every change to noise_ips, noise_ip_values and noise_tor (whichever
 * process makes it): before a query the index replays the log rows after
 * its position, or rebuilds when those were pruned. Nothing is persisted
 * apart from SQLite, so a crash or restart cannot leave the index and the
 * tables disagreeing. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <roaring/roaring.h>

#include "noise/gnql.h"
#include "noise/noise_internal.h"

/* Kinds indexed: record fields first (one value per IP), then sets. */
enum {
    K_CLASS, K_ACTOR, K_COUNTRY, K_CC, K_CITY, K_REGION, K_ASN, K_ORG, K_RDNS, K_SPOOF,
    K_NREC,
    K_SCAN = K_NREC, K_PORT, K_TAG, K_SENSOR, K_PATH, K_UA, K_JA3, K_HASSH, K_JA4, K_DST,
    K_DCOUNTRY, K_N
};

/* noise_ip_values kinds, by K_SCAN + index (K_PORT, K_DCOUNTRY derived). */
static const struct {
    const char *name;
    int k;
} set_kinds[] = {{"scan", K_SCAN},     {"tag", K_TAG}, {"sensor", K_SENSOR}, {"path", K_PATH},
                 {"useragent", K_UA}, {"ja3", K_JA3}, {"hassh", K_HASSH},    {"ja4", K_JA4},
                 {"dst", K_DST}};
#define NSET_KINDS (sizeof set_kinds / sizeof set_kinds[0])

#define NONE UINT32_MAX

typedef struct ix_ent {
    char *value;              /* "" for a NULL column (isnull set) */
    int64_t port;             /* scan and port entries; spoofable's 0/1 */
    bool isnull;
    uint32_t dcountry;        /* dst entries: their K_DCOUNTRY entry, or NONE */
    roaring_bitmap_t *bm;
} ix_ent;

typedef struct ix_dict {
    ix_ent *e;
    size_t n, cap;
    uint32_t *slot;
    size_t nslot;
} ix_dict;

typedef struct noise_ix {
    char *data_dir;
    pthread_rwlock_t lock;
    bool built;
    int64_t seq;              /* last log row applied */
    uint32_t nids, cap, nsorted;
    char **ip;
    int64_t *first, *last;
    uint8_t *family;
    uint32_t *rec;            /* nids * K_NREC entry indexes */
    uint32_t *hslot;          /* ip -> id */
    size_t nhslot;
    ix_dict d[K_N];
    roaring_bitmap_t *all;    /* ids with a record */
    roaring_bitmap_t *tor;
    struct noise_ix *next;
} noise_ix;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static noise_ix *reg;

static roaring_bitmap_t *bm_chk(roaring_bitmap_t *b)
{
    if (!b)
        tr_die("out of memory (bitmap)");
    return b;
}

static roaring_bitmap_t *bm_new(void)
{
    return bm_chk(roaring_bitmap_create());
}

static uint64_t hash_text(const char *s, int64_t port, bool fold)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (fold && c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        h = (h ^ c) * 1099511628211ULL;
    }
    h = (h ^ (uint64_t)port) * 1099511628211ULL;
    /* FNV's low bits cluster for texts like sequential addresses: mix. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

/* ASCII case folding, as SQLite's NOCASE and LIKE. */
static int fold(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static bool eq_nocase(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (fold((unsigned char)*a) != fold((unsigned char)*b))
            return false;
    return *a == *b;
}

/* LIKE with '*' for '%' (the only wildcard GNQL has), ASCII case-insensitive. */
static bool glob_nocase(const char *p, const char *s)
{
    const char *star = NULL, *mark = NULL;
    while (*s) {
        if (*p == '*') {
            star = p++;
            mark = s;
        } else if (*p && fold((unsigned char)*p) == fold((unsigned char)*s)) {
            p++;
            s++;
        } else if (star) {
            p = star + 1;
            s = ++mark;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == 0;
}

/* ---- dictionaries: (value, port) -> entry ------------------------------- */

static void dict_rehash(ix_dict *d)
{
    d->nslot = d->nslot ? d->nslot * 2 : 64;
    free(d->slot);
    d->slot = tr_xmalloc(d->nslot * sizeof *d->slot);
    for (size_t i = 0; i < d->nslot; i++)
        d->slot[i] = NONE;
    for (size_t i = 0; i < d->n; i++) {
        size_t k = (size_t)hash_text(d->e[i].value, d->e[i].port, true) & (d->nslot - 1);
        while (d->slot[k] != NONE)
            k = (k + 1) & (d->nslot - 1);
        d->slot[k] = (uint32_t)i;
    }
}

/* The entry of exactly (value, port, isnull), created when absent. Case
 * variants hash alike (folded), so a NOCASE lookup finds them all from one
 * slot on. */
static uint32_t dict_get(ix_dict *d, const char *value, int64_t port, bool isnull)
{
    if (!value) {
        value = "";
        isnull = true;
    }
    if (2 * (d->n + 1) > d->nslot)
        dict_rehash(d);
    size_t k = (size_t)hash_text(value, port, true) & (d->nslot - 1);
    for (; d->slot[k] != NONE; k = (k + 1) & (d->nslot - 1)) {
        ix_ent *e = &d->e[d->slot[k]];
        if (e->port == port && e->isnull == isnull && strcmp(e->value, value) == 0)
            return d->slot[k];
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 16;
        d->e = tr_xrealloc(d->e, d->cap * sizeof *d->e);
    }
    d->e[d->n] = (ix_ent){tr_xstrdup(value), port, isnull, NONE, bm_new()};
    d->slot[k] = (uint32_t)d->n;
    return (uint32_t)d->n++;
}

static void dict_free(ix_dict *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->e[i].value);
        roaring_bitmap_free(d->e[i].bm);
    }
    free(d->e);
    free(d->slot);
    memset(d, 0, sizeof *d);
}

/* ---- ids ----------------------------------------------------------------- */

static void ids_rehash(noise_ix *x, size_t nslot)
{
    x->nhslot = nslot;
    free(x->hslot);
    x->hslot = tr_xmalloc(x->nhslot * sizeof *x->hslot);
    for (size_t i = 0; i < x->nhslot; i++)
        x->hslot[i] = NONE;
    for (uint32_t id = 0; id < x->nids; id++) {
        size_t k = (size_t)hash_text(x->ip[id], 0, false) & (x->nhslot - 1);
        while (x->hslot[k] != NONE)
            k = (k + 1) & (x->nhslot - 1);
        x->hslot[k] = id;
    }
}

static uint32_t id_find(const noise_ix *x, const char *ip)
{
    if (!x->nhslot)
        return NONE;
    size_t k = (size_t)hash_text(ip, 0, false) & (x->nhslot - 1);
    for (; x->hslot[k] != NONE; k = (k + 1) & (x->nhslot - 1))
        if (strcmp(x->ip[x->hslot[k]], ip) == 0)
            return x->hslot[k];
    return NONE;
}

/* A new id for ip, not yet findable (hashed = false: the caller hashes
 * all at once, as the build does). */
static uint32_t id_new(noise_ix *x, const char *ip, bool hashed)
{
    uint32_t id;
    if (x->nids == UINT32_MAX - 1)
        tr_die("noise index: too many addresses");
    if (x->nids == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 1024;
        x->ip = tr_xrealloc(x->ip, x->cap * sizeof *x->ip);
        x->first = tr_xrealloc(x->first, x->cap * sizeof *x->first);
        x->last = tr_xrealloc(x->last, x->cap * sizeof *x->last);
        x->family = tr_xrealloc(x->family, x->cap * sizeof *x->family);
        x->rec = tr_xrealloc(x->rec, (size_t)x->cap * K_NREC * sizeof *x->rec);
    }
    id = x->nids++;
    x->ip[id] = tr_xstrdup(ip);
    x->first[id] = x->last[id] = 0;
    x->family[id] = strchr(ip, ':') ? 6 : 4;
    for (int k = 0; k < K_NREC; k++)
        x->rec[(size_t)id * K_NREC + k] = NONE;
    if (!hashed)
        return id;
    if (2 * x->nids > x->nhslot) {
        ids_rehash(x, x->nhslot ? 2 * x->nhslot : 1024);
    } else {
        size_t k = (size_t)hash_text(ip, 0, false) & (x->nhslot - 1);
        while (x->hslot[k] != NONE)
            k = (k + 1) & (x->nhslot - 1);
        x->hslot[k] = id;
    }
    return id;
}

static uint32_t id_get(noise_ix *x, const char *ip)
{
    uint32_t id = id_find(x, ip);
    return id != NONE ? id : id_new(x, ip, true);
}

static void ix_clear(noise_ix *x)
{
    for (uint32_t i = 0; i < x->nids; i++)
        free(x->ip[i]);
    free(x->ip);
    free(x->first);
    free(x->last);
    free(x->family);
    free(x->rec);
    free(x->hslot);
    for (int k = 0; k < K_N; k++)
        dict_free(&x->d[k]);
    if (x->all)
        roaring_bitmap_free(x->all);
    if (x->tor)
        roaring_bitmap_free(x->tor);
    x->ip = NULL;
    x->first = x->last = NULL;
    x->family = NULL;
    x->rec = x->hslot = NULL;
    x->nids = x->cap = x->nsorted = 0;
    x->nhslot = 0;
    x->all = bm_new();
    x->tor = bm_new();
    x->built = false;
    x->seq = 0;
}

/* ---- applying rows ------------------------------------------------------- */

static int set_kind(const char *name)
{
    for (size_t i = 0; i < NSET_KINDS; i++)
        if (strcmp(set_kinds[i].name, name) == 0)
            return set_kinds[i].k;
    return -1;
}

/* Does id hold another entry of the dict than skip with the same port (by_port)
 * or the same destination country? */
static bool other_holds(const ix_dict *d, uint32_t skip, uint32_t id, int64_t port,
                        uint32_t dcountry, bool by_port)
{
    for (size_t i = 0; i < d->n; i++) {
        if (i == skip)
            continue;
        if (by_port ? d->e[i].port != port : d->e[i].dcountry != dcountry)
            continue;
        if (roaring_bitmap_contains(d->e[i].bm, id))
            return true;
    }
    return false;
}

/* Does the snapshot still give ip a value of kind (any port)? */
static bool still_has(tr_noise *n, const char *ip, const char *kind, const char *value)
{
    tr_error err;
    sqlite3_stmt *st = noise_stmt(n,
                                  "SELECT 1 FROM noise_ip_values WHERE ip = ? AND kind = ?"
                                  " AND value = ?",
                                  &err);
    if (!st)
        return false;
    sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
    bool r = sqlite3_step(st) == SQLITE_ROW;
    noise_stmt_done(st);
    return r;
}

/* Sets other than scan are indexed by value alone: a JA3 or destination
 * seen on two ports is one value of the IP for GNQL and stats. */
static void value_apply(noise_ix *x, tr_noise *n, uint32_t id, int k, const char *kind,
                        const char *value, int64_t port, bool add)
{
    ix_dict *d = &x->d[k];
    if (k != K_SCAN)
        port = 0;
    if (!add && k != K_SCAN && still_has(n, x->ip[id], kind, value))
        return;
    uint32_t e = dict_get(d, value, port, false);
    if (k == K_DST && d->e[e].dcountry == NONE && d->e[e].value[0]) {
        /* Where a destination stands, looked up once per destination. */
        uint8_t a[16];
        int fam = strchr(value, ':') ? 6 : 4;
        char *cc = NULL, *cn = NULL;
        if (inet_pton(fam == 4 ? AF_INET : AF_INET6, value, a) == 1)
            noise_country(n, fam, a, &cc, &cn);
        if (cn && *cn)
            d->e[e].dcountry = dict_get(&x->d[K_DCOUNTRY], cn, 0, false);
        free(cc);
        free(cn);
    }
    if (add) {
        roaring_bitmap_add(d->e[e].bm, id);
        if (k == K_SCAN) {
            uint32_t pe = dict_get(&x->d[K_PORT], "", port, false);
            roaring_bitmap_add(x->d[K_PORT].e[pe].bm, id);
        }
        if (k == K_DST && d->e[e].dcountry != NONE)
            roaring_bitmap_add(x->d[K_DCOUNTRY].e[d->e[e].dcountry].bm, id);
        return;
    }
    roaring_bitmap_remove(d->e[e].bm, id);
    /* The derived entries lose id only when no other value still gives it. */
    if (k == K_SCAN && !other_holds(d, e, id, port, 0, true)) {
        uint32_t pe = dict_get(&x->d[K_PORT], "", port, false);
        roaring_bitmap_remove(x->d[K_PORT].e[pe].bm, id);
    }
    if (k == K_DST && d->e[e].dcountry != NONE &&
        !other_holds(d, e, id, 0, d->e[e].dcountry, false))
        roaring_bitmap_remove(x->d[K_DCOUNTRY].e[d->e[e].dcountry].bm, id);
}

static void rec_set(noise_ix *x, uint32_t id, int k, const char *value, int64_t port)
{
    uint32_t *slot = &x->rec[(size_t)id * K_NREC + k];
    uint32_t e = dict_get(&x->d[k], value, port, false);
    if (*slot == e)
        return;
    if (*slot != NONE)
        roaring_bitmap_remove(x->d[k].e[*slot].bm, id);
    roaring_bitmap_add(x->d[k].e[e].bm, id);
    *slot = e;
}

#define REC_COLS                                                                              \
    "ip, family, first_seen, last_seen, spoofable, classification, actor, country,"          \
    " country_code, city, region, asn, organization, rdns"

/* A noise_ips row (REC_COLS) into the index. */
static void rec_apply(noise_ix *x, uint32_t id, sqlite3_stmt *st)
{
    static const int col[K_NREC] = {
        [K_CLASS] = 5, [K_ACTOR] = 6, [K_COUNTRY] = 7, [K_CC] = 8, [K_CITY] = 9,
        [K_REGION] = 10, [K_ASN] = 11, [K_ORG] = 12, [K_RDNS] = 13, [K_SPOOF] = 4};
    x->family[id] = (uint8_t)sqlite3_column_int(st, 1);
    x->first[id] = sqlite3_column_int64(st, 2);
    x->last[id] = sqlite3_column_int64(st, 3);
    for (int k = 0; k < K_NREC; k++) {
        if (k == K_SPOOF)
            rec_set(x, id, k, "", sqlite3_column_int64(st, col[k]) != 0);
        else
            rec_set(x, id, k, (const char *)sqlite3_column_text(st, col[k]), 0);
    }
    roaring_bitmap_add(x->all, id);
}

/* An IP without a record any more: out of everything. */
static void rec_drop(noise_ix *x, uint32_t id)
{
    roaring_bitmap_remove(x->all, id);
    roaring_bitmap_remove(x->tor, id);
    for (int k = 0; k < K_N; k++)
        for (size_t i = 0; i < x->d[k].n; i++)
            roaring_bitmap_remove(x->d[k].e[i].bm, id);
    for (int k = 0; k < K_NREC; k++)
        x->rec[(size_t)id * K_NREC + k] = NONE;
}

static int build(noise_ix *x, tr_noise *n, int64_t seq, tr_error *err)
{
    ix_clear(x);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db, "SELECT " REC_COLS " FROM noise_ips ORDER BY ip", -1, &st,
                           NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    int s;
    /* Rows in text order: ids in that order, hashed once at the end (a
     * lookup per row costs cache misses all over the table). */
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        rec_apply(x, id_new(x, (const char *)sqlite3_column_text(st, 0), false), st);
    sqlite3_finalize(st);
    if (s != SQLITE_DONE)
        return noise_db_fail(n->db, err);
    x->nsorted = x->nids;
    size_t nslot = 1024;
    while (nslot < 2 * (size_t)x->nids)
        nslot *= 2;
    ids_rehash(x, nslot);
    if (sqlite3_prepare_v2(n->db,
                           "SELECT t.ip FROM noise_tor t JOIN noise_ips i ON i.ip = t.ip", -1,
                           &st, NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        roaring_bitmap_add(x->tor, id_find(x, (const char *)sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
    if (s != SQLITE_DONE)
        return noise_db_fail(n->db, err);
    /* The sets in primary-key (ip) order, one scan of the table ("+kind":
     * not through the (kind, value) index, whose order would need a sort):
     * each entry's ids come ascending, which roaring appends cheaply. */
    if (sqlite3_prepare_v2(n->db,
                           "SELECT ip, kind, value, port FROM noise_ip_values"
                           " WHERE +kind IN ('scan', 'tag', 'sensor', 'path', 'useragent',"
                           " 'ja3', 'hassh', 'ja4', 'dst') ORDER BY ip",
                           -1, &st, NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    /* Both walks are in text order: a cursor over the ids finds each IP. */
    uint32_t cur = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *ip = (const char *)sqlite3_column_text(st, 0);
        int c = -1;
        while (cur < x->nsorted && (c = strcmp(x->ip[cur], ip)) < 0)
            cur++;
        uint32_t id = cur < x->nsorted && c == 0 ? cur : NONE;
        int k = set_kind((const char *)sqlite3_column_text(st, 1));
        if (id == NONE || k < 0)
            continue;          /* values of an IP without a record: not matched by SQL */
        value_apply(x, n, id, k, NULL, (const char *)sqlite3_column_text(st, 2),
                    sqlite3_column_int64(st, 3), true);
    }
    sqlite3_finalize(st);
    if (s != SQLITE_DONE)
        return noise_db_fail(n->db, err);
    for (int k = 0; k < K_N; k++)
        for (size_t i = 0; i < x->d[k].n; i++)
            roaring_bitmap_run_optimize(x->d[k].e[i].bm);
    x->seq = seq;
    x->built = true;
    return 0;
}

/* Re-reads one IP's record (and Tor membership). */
static int rec_reload(noise_ix *x, tr_noise *n, const char *ip, tr_error *err)
{
    sqlite3_stmt *st = noise_stmt(n,
                                  "SELECT " REC_COLS ", EXISTS(SELECT 1 FROM noise_tor t WHERE"
                                  " t.ip = noise_ips.ip) FROM noise_ips WHERE ip = ?",
                                  err);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    uint32_t id = id_find(x, ip);
    if (s == SQLITE_ROW) {
        if (id == NONE)
            id = id_get(x, ip);
        rec_apply(x, id, st);
        if (sqlite3_column_int(st, 14))
            roaring_bitmap_add(x->tor, id);
        else
            roaring_bitmap_remove(x->tor, id);
    } else if (s == SQLITE_DONE) {
        if (id != NONE)
            rec_drop(x, id);
    }
    noise_stmt_done(st);
    if (s != SQLITE_ROW && s != SQLITE_DONE)
        return noise_db_fail(n->db, err);
    return 0;
}

/* Applies the log rows after x->seq up to seq. */
static int replay(noise_ix *x, tr_noise *n, int64_t seq, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db,
                           "SELECT ip, op, kind, value, port FROM noise_gnql_log WHERE seq > ?1"
                           " AND seq <= ?2 ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    sqlite3_bind_int64(st, 1, x->seq);
    sqlite3_bind_int64(st, 2, seq);
    /* Records are re-read once each after the values: the snapshot's record
     * is the final one whatever the order of the changes. */
    char **recs = NULL;
    size_t nrec = 0, cap = 0;
    int s, rc = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *ip = (const char *)sqlite3_column_text(st, 0);
        int op = sqlite3_column_int(st, 1);
        if (op == 0) {
            if (nrec == cap) {
                cap = cap ? cap * 2 : 64;
                recs = tr_xrealloc(recs, cap * sizeof *recs);
            }
            recs[nrec++] = tr_xstrdup(ip);
            continue;
        }
        const char *kind = (const char *)sqlite3_column_text(st, 2);
        const char *value = (const char *)sqlite3_column_text(st, 3);
        int k = kind ? set_kind(kind) : -1;
        if (k < 0 || !value)
            continue;
        value_apply(x, n, id_get(x, ip), k, kind, value, sqlite3_column_int64(st, 4), op == 1);
    }
    if (s != SQLITE_DONE)
        rc = noise_db_fail(n->db, err);
    sqlite3_finalize(st);
    for (size_t i = 0; i < nrec; i++) {
        if (rc == 0)
            rc = rec_reload(x, n, recs[i], err);
        free(recs[i]);
    }
    free(recs);
    /* Values of an IP whose record is not (yet) there are not matched, as
     * with SQL's join on noise_ips. */
    if (rc == 0)
        x->seq = seq;
    return rc;
}

static noise_ix *ix_get(tr_noise *n)
{
    pthread_mutex_lock(&reg_lock);
    noise_ix *x = reg;
    while (x && strcmp(x->data_dir, n->data_dir) != 0)
        x = x->next;
    if (!x) {
        x = tr_xcalloc(1, sizeof *x);
        x->data_dir = tr_xstrdup(n->data_dir);
        if (pthread_rwlock_init(&x->lock, NULL) != 0)
            tr_die("noise index: cannot make a lock");
        x->all = bm_new();
        x->tor = bm_new();
        x->next = reg;
        reg = x;
    }
    pthread_mutex_unlock(&reg_lock);
    return x;
}

/* The log's extent in the caller's snapshot. */
static int log_extent(tr_noise *n, int64_t *lo, int64_t *hi, tr_error *err)
{
    /* Two subqueries: SQLite answers a lone min() or max() from the end of
     * the primary key, but both in one SELECT scan the whole log. */
    sqlite3_stmt *st = noise_stmt(n,
                                  "SELECT (SELECT ifnull(min(seq), 0) FROM noise_gnql_log),"
                                  " (SELECT ifnull(max(seq), 0) FROM noise_gnql_log)",
                                  err);
    if (!st)
        return -1;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        *lo = sqlite3_column_int64(st, 0);
        *hi = sqlite3_column_int64(st, 1);
    }
    noise_stmt_done(st);
    if (s != SQLITE_ROW)
        return noise_db_fail(n->db, err);
    return 0;
}

/* Returns the index read-locked and current with the caller's snapshot
 * (which must be open: a read transaction). */
static noise_ix *ix_acquire(tr_noise *n, tr_error *err)
{
    noise_ix *x = ix_get(n);
    int64_t lo = 0, hi = 0;
    if (log_extent(n, &lo, &hi, err) != 0)
        return NULL;
    pthread_rwlock_rdlock(&x->lock);
    if (x->built && x->seq >= hi)
        return x;
    pthread_rwlock_unlock(&x->lock);
    pthread_rwlock_wrlock(&x->lock);
    int rc = 0;
    /* Another thread may have caught up meanwhile, or be ahead (from a
     * newer snapshot): the index never goes back, and a newer one serves
     * (only the CVE term reads SQLite besides, the tag list). Log rows
     * pruned past its position: built again. */
    if (!x->built || (lo > x->seq + 1 && hi > x->seq)) {
        noise_fork_quiet_begin();
        rc = build(x, n, hi, err);
        noise_fork_quiet_end();
    }
    else if (x->seq < hi)
        rc = replay(x, n, hi, err);
    if (rc != 0) {
        ix_clear(x);
        pthread_rwlock_unlock(&x->lock);
        return NULL;
    }
    /* Read-locked for the caller; a writer slipping in between only makes
     * it newer, unless its build failed. */
    pthread_rwlock_unlock(&x->lock);
    pthread_rwlock_rdlock(&x->lock);
    if (!x->built || x->seq < hi) {
        pthread_rwlock_unlock(&x->lock);
        return ix_acquire(n, err);
    }
    return x;
}

static void ix_release(noise_ix *x)
{
    pthread_rwlock_unlock(&x->lock);
}

int noise_ix_prune(tr_noise *n, tr_error *err)
{
    /* Readers further behind than this rebuild. */
    return noise_exec(n,
                      "DELETE FROM noise_gnql_log WHERE seq <= (SELECT max(seq) FROM"
                      " noise_gnql_log) - 2000000",
                      err);
}

/* ---- evaluation ---------------------------------------------------------- */

static bool text_match(const gnql_node *t, const char *v)
{
    return t->wildcard ? glob_nocase(t->value, v) : eq_nocase(t->value, v);
}

/* IPs whose value of kind k matches the term's text. */
static roaring_bitmap_t *dict_match(const noise_ix *x, int k, const gnql_node *t)
{
    const ix_dict *d = &x->d[k];
    roaring_bitmap_t *r = bm_new();
    if (!t->wildcard && d->nslot) {
        size_t s = (size_t)hash_text(t->value, 0, true) & (d->nslot - 1);
        for (; d->slot[s] != NONE; s = (s + 1) & (d->nslot - 1)) {
            const ix_ent *e = &d->e[d->slot[s]];
            if (eq_nocase(t->value, e->value))
                roaring_bitmap_or_inplace(r, e->bm);
        }
        if (k != K_SCAN)
            return r;
        /* scan entries hash with their port: the protocol is looked for in
         * each (few: protocols x ports). */
        roaring_bitmap_free(r);
        r = bm_new();
    }
    for (size_t i = 0; i < d->n; i++)
        if (text_match(t, d->e[i].value))
            roaring_bitmap_or_inplace(r, d->e[i].bm);
    return r;
}

static bool in_cidr(const char *ip, int family, const uint8_t *net, int bits)
{
    uint8_t a[16];
    if (inet_pton(family == 4 ? AF_INET : AF_INET6, ip, a) != 1)
        return false;
    int k = 0;
    for (; bits >= 8; bits -= 8, k++)
        if (a[k] != net[k])
            return false;
    uint8_t mask = bits ? (uint8_t)(0xff << (8 - bits)) : 0;
    return bits == 0 || (a[k] & mask) == (net[k] & mask);
}

/* First sorted id whose text is >= s. */
static uint32_t lower_bound(const noise_ix *x, const char *s)
{
    uint32_t lo = 0, hi = x->nsorted;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (strcmp(x->ip[mid], s) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static roaring_bitmap_t *eval_ip(const noise_ix *x, const gnql_node *t)
{
    roaring_bitmap_t *r = bm_new();
    if (!t->wildcard && t->bits == (t->family == 4 ? 32 : 128)) {
        char canon[64];
        inet_ntop(t->family == 4 ? AF_INET : AF_INET6, t->addr, canon, sizeof canon);
        uint32_t id = id_find(x, canon);
        if (id != NONE && roaring_bitmap_contains(x->all, id))
            roaring_bitmap_add(r, id);
        return r;
    }
    if (!t->wildcard && t->family == 4 && t->bits >= 8) {
        /* The enclosing octet-aligned prefix is a range of the text order. */
        char lo[32] = "", hi[32];
        for (int k = 0; k < t->bits / 8; k++)
            snprintf(lo + strlen(lo), sizeof lo - strlen(lo), "%u.", t->addr[k]);
        snprintf(hi, sizeof hi, "%.*s/", (int)strlen(lo) - 1, lo);
        bool aligned = t->bits % 8 == 0;
        uint32_t a = lower_bound(x, lo), b = lower_bound(x, hi);
        for (uint32_t id = a; id < b; id++)
            if (x->family[id] == 4 && (aligned || in_cidr(x->ip[id], 4, t->addr, t->bits)))
                roaring_bitmap_add(r, id);
        for (uint32_t id = x->nsorted; id < x->nids; id++)
            if (x->family[id] == 4 && strcmp(x->ip[id], lo) >= 0 && strcmp(x->ip[id], hi) < 0 &&
                (aligned || in_cidr(x->ip[id], 4, t->addr, t->bits)))
                roaring_bitmap_add(r, id);
        roaring_bitmap_and_inplace(r, x->all);
        return r;
    }
    for (uint32_t id = 0; id < x->nids; id++) {
        bool m = t->wildcard ? glob_nocase(t->value, x->ip[id])
                 : t->bits == 0 ? x->family[id] == t->family
                                : x->family[id] == t->family &&
                                      in_cidr(x->ip[id], t->family, t->addr, t->bits);
        if (m)
            roaring_bitmap_add(r, id);
    }
    roaring_bitmap_and_inplace(r, x->all);
    return r;
}

static roaring_bitmap_t *eval_time(const noise_ix *x, const int64_t *col, int64_t lo, int64_t hi)
{
    uint32_t *buf = tr_xmalloc(((size_t)x->nids + 1) * sizeof *buf);
    size_t nb = 0;
    for (uint32_t id = 0; id < x->nids; id++)
        if (col[id] >= lo && col[id] < hi)
            buf[nb++] = id;
    roaring_bitmap_t *r = bm_chk(roaring_bitmap_of_ptr(nb, buf));
    free(buf);
    roaring_bitmap_and_inplace(r, x->all);
    return r;
}

/* Tags whose CVE list (comma-separated) has a matching entry. */
static roaring_bitmap_t *eval_cve(const noise_ix *x, tr_noise *n, const gnql_node *t,
                                  tr_error *err)
{
    sqlite3_stmt *st = noise_stmt(n, "SELECT name, cves FROM noise_tags WHERE cves <> ''", err);
    if (!st)
        return NULL;
    roaring_bitmap_t *r = bm_new();
    const ix_dict *d = &x->d[K_TAG];
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        char *cves = tr_xstrdup((const char *)sqlite3_column_text(st, 1));
        bool hit = false;
        for (char *p = cves, *c; !hit && p; p = c ? c + 1 : NULL) {
            c = strchr(p, ',');
            if (c)
                *c = 0;
            hit = text_match(t, p);
        }
        free(cves);
        if (!hit)
            continue;
        for (size_t i = 0; i < d->n; i++)
            if (strcmp(d->e[i].value, name) == 0)
                roaring_bitmap_or_inplace(r, d->e[i].bm);
    }
    noise_stmt_done(st);
    if (s != SQLITE_DONE) {
        roaring_bitmap_free(r);
        noise_db_fail(n->db, err);
        return NULL;
    }
    return r;
}

static bool is_time(const gnql_node *t)
{
    return t->kind == GNQL_TERM && (t->field == GNQL_FIRST_SEEN || t->field == GNQL_LAST_SEEN);
}

/* r's ids whose first/last seen time is in [lo, hi): a test per match,
 * cheaper than the term's bitmap over every IP when r is the smaller. */
static roaring_bitmap_t *filter_time(const noise_ix *x, roaring_bitmap_t *r, const int64_t *col,
                                     int64_t lo, int64_t hi)
{
    uint64_t c = roaring_bitmap_get_cardinality(r);
    uint32_t *ids = tr_xmalloc(((size_t)c + 1) * sizeof *ids);
    roaring_bitmap_to_uint32_array(r, ids);
    size_t k = 0;
    for (size_t i = 0; i < c; i++)
        if (col[ids[i]] >= lo && col[ids[i]] < hi)
            ids[k++] = ids[i];
    if (k != c) {
        roaring_bitmap_free(r);
        r = bm_chk(roaring_bitmap_of_ptr(k, ids));
    }
    free(ids);
    return r;
}

static roaring_bitmap_t *eval(const noise_ix *x, tr_noise *n, const gnql_node *t, tr_error *err)
{
    roaring_bitmap_t *a, *b;
    if (t->kind == GNQL_AND && (is_time(t->a) || is_time(t->b))) {
        const gnql_node *tm = is_time(t->b) ? t->b : t->a, *other = tm == t->b ? t->a : t->b;
        if (!(a = eval(x, n, other, err)))
            return NULL;
        return filter_time(x, a, tm->field == GNQL_FIRST_SEEN ? x->first : x->last, tm->lo,
                           tm->hi);
    }
    switch (t->kind) {
    case GNQL_AND:
    case GNQL_OR:
        if (!(a = eval(x, n, t->a, err)))
            return NULL;
        if (!(b = eval(x, n, t->b, err))) {
            roaring_bitmap_free(a);
            return NULL;
        }
        if (t->kind == GNQL_AND)
            roaring_bitmap_and_inplace(a, b);
        else
            roaring_bitmap_or_inplace(a, b);
        roaring_bitmap_free(b);
        return a;
    case GNQL_NOT:
        if (!(a = eval(x, n, t->a, err)))
            return NULL;
        b = bm_chk(roaring_bitmap_andnot(x->all, a));
        roaring_bitmap_free(a);
        return b;
    case GNQL_TERM:
        break;
    }
    switch (t->field) {
    case GNQL_IP: return eval_ip(x, t);
    case GNQL_CLASSIFICATION: return dict_match(x, K_CLASS, t);
    case GNQL_ACTOR: return dict_match(x, K_ACTOR, t);
    case GNQL_COUNTRY:
        a = dict_match(x, K_COUNTRY, t);
        b = dict_match(x, K_CC, t);
        roaring_bitmap_or_inplace(a, b);
        roaring_bitmap_free(b);
        return a;
    case GNQL_COUNTRY_CODE: return dict_match(x, K_CC, t);
    case GNQL_CITY: return dict_match(x, K_CITY, t);
    case GNQL_REGION: return dict_match(x, K_REGION, t);
    case GNQL_ASN: return dict_match(x, K_ASN, t);
    case GNQL_ORG: return dict_match(x, K_ORG, t);
    case GNQL_RDNS: return dict_match(x, K_RDNS, t);
    case GNQL_SPOOFABLE: {
        const ix_dict *d = &x->d[K_SPOOF];
        a = bm_new();
        for (size_t i = 0; i < d->n; i++)
            if (d->e[i].port == (int64_t)t->flag)
                roaring_bitmap_or_inplace(a, d->e[i].bm);
        return a;
    }
    case GNQL_TOR:
        return t->flag ? bm_chk(roaring_bitmap_and(x->tor, x->all))
                       : bm_chk(roaring_bitmap_andnot(x->all, x->tor));
    case GNQL_VPN:
    case GNQL_BOT: return t->flag ? bm_new() : bm_chk(roaring_bitmap_copy(x->all));
    case GNQL_FIRST_SEEN: return eval_time(x, x->first, t->lo, t->hi);
    case GNQL_LAST_SEEN: return eval_time(x, x->last, t->lo, t->hi);
    case GNQL_PORT: {
        const ix_dict *d = &x->d[K_PORT];
        a = bm_new();
        for (size_t i = 0; i < d->n; i++)
            if (d->e[i].port >= t->lo && d->e[i].port <= t->hi)
                roaring_bitmap_or_inplace(a, d->e[i].bm);
        return a;
    }
    case GNQL_TAGS: return dict_match(x, K_TAG, t);
    case GNQL_SENSOR: return dict_match(x, K_SENSOR, t);
    case GNQL_PROTOCOL: return dict_match(x, K_SCAN, t);
    case GNQL_PATH: return dict_match(x, K_PATH, t);
    case GNQL_USERAGENT: return dict_match(x, K_UA, t);
    case GNQL_JA3: return dict_match(x, K_JA3, t);
    case GNQL_HASSH: return dict_match(x, K_HASSH, t);
    case GNQL_JA4: return dict_match(x, K_JA4, t);
    case GNQL_CVE: return eval_cve(x, n, t, err);
    case GNQL_NFIELDS: break;
    }
    return bm_new();
}

/* The matches of a parsed query (default window included), within the
 * caller's read transaction. */
static roaring_bitmap_t *matches(const noise_ix *x, tr_noise *n, const tr_gnql *g, int64_t now_s,
                                 tr_error *err)
{
    roaring_bitmap_t *r = g->root ? eval(x, n, g->root, err) : bm_chk(roaring_bitmap_copy(x->all));
    if (!r)
        return NULL;
    /* Set values of IPs without a record never match (SQL joins noise_ips). */
    roaring_bitmap_and_inplace(r, x->all);
    if (!g->has_time)
        r = filter_time(x, r, x->last, (now_s - (int64_t)GNQL_DEFAULT_DAYS * 86400) * 1000000,
                        INT64_MAX);
    return r;
}

static int cmp_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The index current and read-locked for the caller, inside one snapshot
 * (the caller's, or one begun here and ended by without_ix). */
static int with_ix(tr_noise *n, noise_ix **x, bool *own, tr_error *err)
{
    *own = sqlite3_get_autocommit(n->db) != 0;
    if (*own && noise_exec(n, "BEGIN", err) != 0)
        return -1;
    *x = ix_acquire(n, err);
    if (!*x) {
        if (*own)
            sqlite3_exec(n->db, "COMMIT", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

static void without_ix(tr_noise *n, noise_ix *x, bool own)
{
    ix_release(x);
    if (own)
        sqlite3_exec(n->db, "COMMIT", NULL, NULL, NULL);
}

int tr_noise_gnql_warm(tr_noise *n, size_t *ips, tr_error *err)
{
    noise_ix *x;
    bool own;
    if (with_ix(n, &x, &own, err) != 0)
        return -1;
    if (ips)
        *ips = (size_t)roaring_bitmap_get_cardinality(x->all);
    without_ix(n, x, own);
    return 0;
}

int noise_ix_page(tr_noise *n, const tr_gnql *g, int64_t now_s, int64_t size, const char *after,
                  json_t *ips, int64_t *count, tr_error *err)
{
    noise_ix *x;
    bool own;
    if (with_ix(n, &x, &own, err) != 0)
        return -1;
    roaring_bitmap_t *r = matches(x, n, g, now_s, err);
    if (!r) {
        without_ix(n, x, own);
        return -1;
    }
    *count = (int64_t)roaring_bitmap_get_cardinality(r);
    size_t want = (size_t)size + 1;
    /* The sorted ids from the first text after `after`, then the later
     * arrivals (ids past nsorted, unordered) merged in by text. */
    const char **page = tr_xmalloc(want * sizeof *page);
    size_t np = 0;
    roaring_uint32_iterator_t it;
    roaring_init_iterator(r, &it);
    uint32_t start = *after ? lower_bound(x, after) : 0;
    while (start < x->nsorted && strcmp(x->ip[start], after) <= 0)
        start++;
    if (start < x->nsorted && roaring_move_uint32_iterator_equalorlarger(&it, start))
        for (; it.has_value && it.current_value < x->nsorted && np < want;
             roaring_advance_uint32_iterator(&it))
            page[np++] = x->ip[it.current_value];
    const char **late = NULL;
    size_t nlate = 0, cap = 0;
    if (x->nids > x->nsorted && roaring_move_uint32_iterator_equalorlarger(&it, x->nsorted))
        for (; it.has_value; roaring_advance_uint32_iterator(&it)) {
            const char *ip = x->ip[it.current_value];
            if (strcmp(ip, after) <= 0)
                continue;
            if (nlate == cap) {
                cap = cap ? cap * 2 : 64;
                late = tr_xrealloc(late, cap * sizeof *late);
            }
            late[nlate++] = ip;
        }
    if (nlate)
        qsort(late, nlate, sizeof *late, cmp_text);
    size_t i = 0, j = 0;
    for (size_t k = 0; k < want && (i < np || j < nlate); k++) {
        const char *ip = j >= nlate || (i < np && strcmp(page[i], late[j]) < 0) ? page[i++]
                                                                                 : late[j++];
        json_array_append_new(ips, json_string(ip));
    }
    free(page);
    free(late);
    roaring_bitmap_free(r);
    without_ix(n, x, own);
    return 0;
}

int noise_ix_stats(tr_noise *n, const tr_gnql *g, int64_t now_s, noise_ix_put put, void *arg,
                   int64_t *total, tr_error *err)
{
    noise_ix *x;
    bool own;
    if (with_ix(n, &x, &own, err) != 0)
        return -1;
    roaring_bitmap_t *r = matches(x, n, g, now_s, err);
    if (!r) {
        without_ix(n, x, own);
        return -1;
    }
    *total = (int64_t)roaring_bitmap_get_cardinality(r);
    static const struct {
        int k, facet;
    } facets[] = {{K_CLASS, NOISE_F_CLASS}, {K_SPOOF, NOISE_F_SPOOF},  {K_ORG, NOISE_F_ORG},
                  {K_ACTOR, NOISE_F_ACTOR}, {K_COUNTRY, NOISE_F_COUNTRY}, {K_ASN, NOISE_F_ASN},
                  {K_PORT, NOISE_F_PORT},   {K_SENSOR, NOISE_F_SENSOR}, {K_TAG, NOISE_F_TAG},
                  {K_DCOUNTRY, NOISE_F_DCOUNTRY}};
    for (size_t f = 0; *total && f < sizeof facets / sizeof facets[0]; f++) {
        const ix_dict *d = &x->d[facets[f].k];
        for (size_t i = 0; i < d->n; i++) {
            const ix_ent *e = &d->e[i];
            /* What the SQL walk leaves out: NULL columns, and empty ones
             * where it tests for text. */
            if (e->isnull)
                continue;
            int k = facets[f].k;
            if (!e->value[0] && (k == K_ORG || k == K_COUNTRY || k == K_ASN))
                continue;
            uint64_t c = roaring_bitmap_and_cardinality(r, e->bm);
            if (!c)
                continue;
            if (k == K_SPOOF || k == K_PORT) {
                put(arg, facets[f].facet, NULL, e->port, (int64_t)c);
            } else if (k == K_ASN) {
                char *as = tr_xasprintf("AS%s", e->value);
                put(arg, facets[f].facet, as, 0, (int64_t)c);
                free(as);
            } else {
                put(arg, facets[f].facet, e->value, 0, (int64_t)c);
            }
        }
    }
    roaring_bitmap_free(r);
    without_ix(n, x, own);
    return 0;
}

int noise_ix_quick(tr_noise *n, const char *ip, char *cls, size_t clssz, bool *spoofable,
                   int64_t *last_seen, tr_error *err)
{
    noise_ix *x;
    bool own;
    if (with_ix(n, &x, &own, err) != 0)
        return -1;
    uint32_t id = id_find(x, ip);
    int found = id != NONE && roaring_bitmap_contains(x->all, id);
    if (found) {
        const uint32_t *rec = &x->rec[(size_t)id * K_NREC];
        snprintf(cls, clssz, "%s", x->d[K_CLASS].e[rec[K_CLASS]].value);
        *spoofable = x->d[K_SPOOF].e[rec[K_SPOOF]].port != 0;
        *last_seen = x->last[id];
    }
    without_ix(n, x, own);
    return found;
}
