/* noise internals shared by the module's files only. */
#ifndef TRAWL_NOISE_INTERNAL_H
#define TRAWL_NOISE_INTERNAL_H

#include <sqlite3.h>

#include "noise/noise.h"

typedef struct noise_actor {
    char *name;
    bool benign;
    size_t ncidr;
    struct {
        int family;
        uint8_t addr[16];
        int bits;
    } *cidr;
    size_t nrdns;
    char **rdns;
} noise_actor;

/* Statements prepared once per handle: preparing cost more than running
 * the lookups of a quick check or an IP record. */
#define NOISE_STMT_MAX 48

struct tr_noise {
    char *data_dir;
    sqlite3 *db;
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } stc[NOISE_STMT_MAX];
    size_t nstc;
    noise_actor *actors;      /* loaded at open, reloaded when changed */
    size_t nactors;
    void *geo4, *geo6;        /* libgeoip handles, NULL when absent */
    void *mmdb;               /* MMDB_s *, NULL unless configured */
    bool rdns;
    bool gnql_sql;            /* GNQL through SQL instead of the index (tests) */
};

/* ---- db.c ---------------------------------------------------------------- */
int noise_db_fail(sqlite3 *db, tr_error *err);
int noise_exec(tr_noise *n, const char *sql, tr_error *err);
/* The handle's prepared statement of sql (a string literal: kept by
 * pointer), reset and unbound; NULL on error. Reset it (noise_stmt_done)
 * once read: a statement left mid-way holds its read snapshot open. */
sqlite3_stmt *noise_stmt(tr_noise *n, const char *sql, tr_error *err);
void noise_stmt_done(sqlite3_stmt *st);
/* The setting's text, or NULL (caller frees). */
char *noise_setting_get(tr_noise *n, const char *key);
int noise_setting_put(tr_noise *n, const char *key, const char *value, tr_error *err);
int64_t noise_setting_int(tr_noise *n, const char *key, int64_t dflt);

/* ---- gnql_index.c: GNQL over in-memory bitmaps ------------------------- */
struct tr_gnql;
/* Stats facets (tr_noise_gnql_stats' lists). */
enum { NOISE_F_CLASS, NOISE_F_SPOOF, NOISE_F_ORG, NOISE_F_ACTOR, NOISE_F_COUNTRY, NOISE_F_ASN,
       NOISE_F_PORT, NOISE_F_SENSOR, NOISE_F_TAG, NOISE_F_DCOUNTRY, NOISE_F_N };
/* The matches' count and the page after `after` ("" from the start), up to
 * size + 1 IPs appended to ips in text order. */
int noise_ix_page(tr_noise *n, const struct tr_gnql *g, int64_t now_s, int64_t size,
                  const char *after, json_t *ips, int64_t *count, tr_error *err);
/* One facet value's count of matching IPs (key NULL: ikey is the value). */
typedef void (*noise_ix_put)(void *arg, int facet, const char *key, int64_t ikey, int64_t count);
int noise_ix_stats(tr_noise *n, const struct tr_gnql *g, int64_t now_s, noise_ix_put put,
                   void *arg, int64_t *total, tr_error *err);
/* A quick check from the index: 1 seen (cls, spoofable, last_seen set), 0
 * not, -1 error. ip is canonical. */
int noise_ix_quick(tr_noise *n, const char *ip, char *cls, size_t clssz, bool *spoofable,
                   int64_t *last_seen, tr_error *err);
/* Drops the oldest rows of the change log the index follows (in the
 * caller's write transaction). */
int noise_ix_prune(tr_noise *n, tr_error *err);

/* ---- yscan.c: libyara in a forked child ---------------------------------- */
typedef struct noise_src {
    const char *name;
    const char *text;
} noise_src;
/* Compiles the sources (each in its own namespace) with every external
 * declared and saves the rules at yarc_path. */
int noise_yara_compile(const noise_src *src, size_t n, const char *yarc_path, tr_error *err);
/* A child that uses no CPU and sends nothing for this many seconds (10 by
 * default) is killed and replaced, twice at most. For tests. */
void noise_yara_set_stall_secs(int secs);
/* Scans each event with the compiled rules; calls hit(arg, event index, tag
 * name) for each match, in the parent. */
typedef void (*noise_hit_fn)(void *arg, size_t ev, const char *tag);
int noise_yara_scan(const char *yarc_path, const tr_event *evs, size_t n, noise_hit_fn hit,
                    void *arg, tr_error *err);

/* ---- tags.c -------------------------------------------------------------- */
/* The compiled full tag set, compiled now if the cache is stale. Caller frees. */
int noise_tags_yarc(tr_noise *n, char **path, tr_error *err);
/* GreyNoise-style identifiers of a tag: a slug ("env-scanner") and a
 * UUID-shaped id derived from the name, stable across processes. */
void noise_tag_slug(const char *name, char *out, size_t outsz);
void noise_tag_id(const char *name, char out[37]);
/* Puts the default tags in place once per default-set version. */
int noise_tags_seed(tr_noise *n, tr_error *err);

/* ---- ingest.c ------------------------------------------------------------ */
/* Recomputes the classification of one IP, or of all when ip is NULL. */
int noise_reclassify(tr_noise *n, const char *ip, tr_error *err);
/* Attaches tag to an event and its IP (retro and live). */
int noise_tag_event(tr_noise *n, int64_t event_id, const char *ip, const char *tag,
                    int64_t time_us, tr_error *err);

/* ---- actors.c ------------------------------------------------------------ */
int noise_actors_load(tr_noise *n, tr_error *err);
void noise_actors_free(tr_noise *n);
/* The actor an address belongs to (by CIDR, else by rdns suffix), or NULL. */
const noise_actor *noise_actor_for(const tr_noise *n, int family, const uint8_t *addr,
                                   const char *rdns);
/* Reassigns every IP's actor (after the list changed). */
int noise_actors_apply(tr_noise *n, tr_error *err);
/* What enrichment found for an address: country (libgeoip, or the MMDB),
 * with an MMDB asn, organization, city, region; rdns when enabled. Looked
 * up outside the ingest transaction: a slow resolver must not hold the
 * database's write lock. */
typedef struct noise_geo {
    char *cc, *country, *city, *region, *asn, *org, *rdns;
} noise_geo;
void noise_lookup(tr_noise *n, int family, const uint8_t *addr, noise_geo *g);
/* libgeoip's country code and name only (NULL when unknown); caller frees. */
void noise_country(tr_noise *n, int family, const uint8_t *addr, char **cc, char **name);
void noise_geo_clear(noise_geo *g);
/* Stores g and the actor (by CIDR, else rdns suffix) into a new IP's row.
 * *stmt: the caller's statement, prepared on first use (an UPDATE that
 * fires GNQL's change-log trigger costs more to prepare than to run);
 * the caller finalizes it. */
int noise_enrich(tr_noise *n, sqlite3_stmt **stmt, const char *ip, int family,
                 const uint8_t *addr, const noise_geo *g, tr_error *err);
/* No libyara child is forked between begin and end (yscan.c): for the
 * seconds-long allocation bursts of a GNQL index build. */
void noise_fork_quiet_begin(void);
void noise_fork_quiet_end(void);
void noise_geo_open(tr_noise *n);
void noise_geo_close(tr_noise *n);

/* One line of a Tor exit list (modified in place): 1 an address (canonical
 * text in canon), 0 a line to skip, -1 not understood. */
int noise_tor_line(char *line, char canon[46]);

/* "2026-11-28T18:00:00Z" */
json_t *noise_time_json(int64_t us);

/* Parses "a.b.c.d", "a.b.c.d/n", IPv6 likewise. */
int noise_parse_cidr(const char *s, int *family, uint8_t addr[16], int *bits);

#endif
