/* The noise tables in <data>/trawl.db, settings and retention. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "noise/noise_internal.h"

/* Events are append-only and carry their UTC day: retention deletes whole
 * days through the day index. Per-IP aggregates live apart from the events
 * so that they survive it. noise_ip_values holds every bounded per-IP set
 * (kind: scan, proto, path, method, host, useragent, ja3, ja4, hassh,
 * ssh_client, cred, command, download, sensor, dst, tag, sni) with its own
 * first/last seen; its
 * (kind, value) index answers "which IPs did X". */
static const char *const schema =
    "CREATE TABLE IF NOT EXISTS noise_settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS noise_events("
    " id INTEGER PRIMARY KEY, day INTEGER NOT NULL, time_us INTEGER NOT NULL,"
    " src_ip TEXT NOT NULL, sensor TEXT NOT NULL, dst_port INTEGER NOT NULL,"
    " proto TEXT NOT NULL, json TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS noise_events_day ON noise_events(day);"
    "CREATE INDEX IF NOT EXISTS noise_events_ip ON noise_events(src_ip, time_us);"
    "CREATE TABLE IF NOT EXISTS noise_event_tags(event_id INTEGER NOT NULL, tag TEXT NOT NULL,"
    " PRIMARY KEY(event_id, tag)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS noise_event_tags_tag ON noise_event_tags(tag);"
    "CREATE TABLE IF NOT EXISTS noise_ips("
    " ip TEXT PRIMARY KEY, family INTEGER NOT NULL, first_seen INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL, events INTEGER NOT NULL DEFAULT 0,"
    " spoofable INTEGER NOT NULL, bytes INTEGER NOT NULL DEFAULT 0,"
    " classification TEXT NOT NULL DEFAULT 'unknown',"
    " actor TEXT, actor_benign INTEGER, country TEXT, country_code TEXT, city TEXT,"
    " region TEXT, asn TEXT, organization TEXT, rdns TEXT) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS noise_ips_last ON noise_ips(last_seen);"
    "CREATE TABLE IF NOT EXISTS noise_ip_values("
    " ip TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL, port INTEGER NOT NULL,"
    " n INTEGER NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
    " PRIMARY KEY(ip, kind, value, port)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS noise_ip_values_kv ON noise_ip_values(kind, value);"
    /* GNQL's terms on the record itself, in the form gnql.c compiles them. */
    "CREATE INDEX IF NOT EXISTS noise_ips_gnql_cc ON noise_ips(ifnull(country_code, '') COLLATE NOCASE);"
    "CREATE INDEX IF NOT EXISTS noise_ips_gnql_country ON noise_ips(ifnull(country, '') COLLATE NOCASE);"
    "CREATE INDEX IF NOT EXISTS noise_ips_gnql_class ON noise_ips(classification COLLATE NOCASE);"
    /* GNQL compares values case-insensitively: "tags:mirai" finds Mirai. */
    "CREATE INDEX IF NOT EXISTS noise_ip_values_kvn ON noise_ip_values(kind, value COLLATE NOCASE);"
    "CREATE TABLE IF NOT EXISTS noise_ip_overflow(ip TEXT NOT NULL, kind TEXT NOT NULL,"
    " dropped INTEGER NOT NULL, PRIMARY KEY(ip, kind)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS noise_ip_days(ip TEXT NOT NULL, day INTEGER NOT NULL,"
    " n INTEGER NOT NULL, PRIMARY KEY(ip, day)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS noise_tag_src(id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " text TEXT NOT NULL, builtin INTEGER NOT NULL, created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS noise_tags(name TEXT PRIMARY KEY, src_id INTEGER NOT NULL,"
    " rule TEXT NOT NULL, category TEXT NOT NULL, intention TEXT NOT NULL, cves TEXT NOT NULL,"
    " description TEXT NOT NULL, refs TEXT NOT NULL, builtin INTEGER NOT NULL,"
    " created INTEGER NOT NULL DEFAULT 0, updated INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS noise_actors(name TEXT PRIMARY KEY, benign INTEGER NOT NULL,"
    " cidrs TEXT NOT NULL, rdns TEXT NOT NULL, created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS noise_tor(ip TEXT PRIMARY KEY) WITHOUT ROWID;"
    /* RIOT's allow-list and analysts' flags (riot.c). */
    "CREATE TABLE IF NOT EXISTS noise_riot(id INTEGER PRIMARY KEY, cidr TEXT NOT NULL,"
    " name TEXT NOT NULL, category TEXT NOT NULL, trust_level TEXT NOT NULL,"
    " description TEXT NOT NULL, reference TEXT NOT NULL, updated INTEGER NOT NULL);"
    /* What changed in the per-IP tables, for GNQL's in-memory index
     * (gnql_index.c): op 0 the record (or Tor membership) of ip, 1 a set
     * value added, 2 removed. Filled by triggers, so every writer (ingest,
     * retags, actors, other processes) feeds it in its own transaction. */
    "CREATE TABLE IF NOT EXISTS noise_gnql_log(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " ip TEXT NOT NULL, op INTEGER NOT NULL, kind TEXT, value TEXT, port INTEGER);"
    "CREATE TRIGGER IF NOT EXISTS noise_gnql_ip_ins AFTER INSERT ON noise_ips BEGIN"
    " INSERT INTO noise_gnql_log(ip, op) VALUES(NEW.ip, 0); END;"
    "CREATE TRIGGER IF NOT EXISTS noise_gnql_ip_del AFTER DELETE ON noise_ips BEGIN"
    " INSERT INTO noise_gnql_log(ip, op) VALUES(OLD.ip, 0); END;"
    "CREATE TRIGGER IF NOT EXISTS noise_gnql_ip_upd AFTER UPDATE ON noise_ips WHEN"
    " OLD.first_seen IS NOT NEW.first_seen OR OLD.last_seen IS NOT NEW.last_seen OR"
    " OLD.spoofable IS NOT NEW.spoofable OR OLD.classification IS NOT NEW.classification OR"
    " OLD.actor IS NOT NEW.actor OR OLD.country IS NOT NEW.country OR"
    " OLD.country_code IS NOT NEW.country_code OR OLD.city IS NOT NEW.city OR"
    " OLD.region IS NOT NEW.region OR OLD.asn IS NOT NEW.asn OR"
    " OLD.organization IS NOT NEW.organization OR OLD.rdns IS NOT NEW.rdns OR"
    " OLD.family IS NOT NEW.family OR OLD.ip IS NOT NEW.ip BEGIN"
    " INSERT INTO noise_gnql_log(ip, op) SELECT OLD.ip, 0 WHERE OLD.ip IS NOT NEW.ip;"
    " INSERT INTO noise_gnql_log(ip, op) VALUES(NEW.ip, 0); END;"
    "CREATE TRIGGER IF NOT EXISTS noise_gnql_val_ins AFTER INSERT ON noise_ip_values WHEN"
    " NEW.kind IN ('scan', 'tag', 'sensor', 'path', 'useragent', 'ja3', 'hassh', 'ja4', 'dst')"
    " BEGIN INSERT INTO noise_gnql_log(ip, op, kind, value, port)"
    " VALUES(NEW.ip, 1, NEW.kind, NEW.value, NEW.port); END;"
    "CREATE TRIGGER IF NOT EXISTS noise_gnql_val_del AFTER DELETE ON noise_ip_values WHEN"
    " OLD.kind IN ('scan', 'tag', 'sensor', 'path', 'useragent', 'ja3', 'hassh', 'ja4', 'dst')"
    " BEGIN INSERT INTO noise_gnql_log(ip, op, kind, value, port)"
    " VALUES(OLD.ip, 2, OLD.kind, OLD.value, OLD.port); END;"
    "CREATE TRIGGER IF NOT EXISTS noise_gnql_val_upd AFTER UPDATE OF ip, kind, value, port"
    " ON noise_ip_values BEGIN"
    " INSERT INTO noise_gnql_log(ip, op, kind, value, port)"
    " VALUES(OLD.ip, 2, OLD.kind, OLD.value, OLD.port);"
    " INSERT INTO noise_gnql_log(ip, op, kind, value, port)"
    " VALUES(NEW.ip, 1, NEW.kind, NEW.value, NEW.port); END;"
    "CREATE TRIGGER IF NOT EXISTS noise_gnql_tor_ins AFTER INSERT ON noise_tor BEGIN"
    " INSERT INTO noise_gnql_log(ip, op) VALUES(NEW.ip, 0); END;"
    "CREATE TRIGGER IF NOT EXISTS noise_gnql_tor_del AFTER DELETE ON noise_tor BEGIN"
    " INSERT INTO noise_gnql_log(ip, op) VALUES(OLD.ip, 0); END;"
    "CREATE TABLE IF NOT EXISTS noise_interesting(ip TEXT NOT NULL, by TEXT NOT NULL,"
    " time INTEGER NOT NULL, PRIMARY KEY(ip, by)) WITHOUT ROWID;";

int noise_db_fail(sqlite3 *db, tr_error *err)
{
    return tr_fail(err, "database: %s", sqlite3_errmsg(db));
}

int noise_exec(tr_noise *n, const char *sql, tr_error *err)
{
    if (sqlite3_exec(n->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    return 0;
}

sqlite3_stmt *noise_stmt(tr_noise *n, const char *sql, tr_error *err)
{
    for (size_t i = 0; i < n->nstc; i++)
        if (n->stc[i].sql == sql || strcmp(n->stc[i].sql, sql) == 0) {
            sqlite3_reset(n->stc[i].st);
            sqlite3_clear_bindings(n->stc[i].st);
            return n->stc[i].st;
        }
    if (n->nstc == NOISE_STMT_MAX) {
        tr_fail(err, "noise: more than %d cached statements", NOISE_STMT_MAX);
        return NULL;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(n->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        noise_db_fail(n->db, err);
        return NULL;
    }
    n->stc[n->nstc].sql = sql;
    n->stc[n->nstc].st = st;
    n->nstc++;
    return st;
}

void noise_stmt_done(sqlite3_stmt *st)
{
    if (st)
        sqlite3_reset(st);
}

int tr_noise_read_begin(tr_noise *n, tr_error *err)
{
    return noise_exec(n, "BEGIN", err);
}

void tr_noise_read_end(tr_noise *n)
{
    sqlite3_exec(n->db, "COMMIT", NULL, NULL, NULL);
}

char *noise_setting_get(tr_noise *n, const char *key)
{
    sqlite3_stmt *st = NULL;
    char *v = NULL;
    if (sqlite3_prepare_v2(n->db, "SELECT value FROM noise_settings WHERE key=?", -1, &st,
                           NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = tr_xstrdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v;
}

int noise_setting_put(tr_noise *n, const char *key, const char *value, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db, "INSERT OR REPLACE INTO noise_settings(key, value) VALUES(?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return noise_db_fail(n->db, err);
    return 0;
}

int64_t noise_setting_int(tr_noise *n, const char *key, int64_t dflt)
{
    char *v = noise_setting_get(n, key);
    int64_t r = v ? strtoll(v, NULL, 10) : dflt;
    free(v);
    return r;
}

static const char *const setting_keys[] = {"retention_days", "mmdb", "geoip", "rdns"};

static bool known_key(const char *key)
{
    for (size_t i = 0; i < sizeof setting_keys / sizeof setting_keys[0]; i++)
        if (strcmp(key, setting_keys[i]) == 0)
            return true;
    return false;
}

int tr_noise_setting(tr_noise *n, const char *key, char **value, tr_error *err)
{
    if (!known_key(key))
        return tr_fail(err, "unknown noise setting '%s' (retention_days, mmdb, geoip, rdns)", key);
    char *v = noise_setting_get(n, key);
    if (!v) {
        if (strcmp(key, "retention_days") == 0)
            v = tr_xasprintf("%d", TR_NOISE_RETENTION_DEFAULT);
        else if (strcmp(key, "geoip") == 0)
            v = tr_xstrdup("/usr/share/GeoIP");
        else if (strcmp(key, "rdns") == 0)
            v = tr_xstrdup("off");
        else
            v = tr_xstrdup("");
    }
    *value = v;
    return 0;
}

int tr_noise_set(tr_noise *n, const char *key, const char *value, tr_error *err)
{
    if (!known_key(key))
        return tr_fail(err, "unknown noise setting '%s' (retention_days, mmdb, geoip, rdns)", key);
    if (strcmp(key, "retention_days") == 0) {
        char *end;
        long d = strtol(value, &end, 10);
        if (*value == 0 || *end || d < 1 || d > 36500)
            return tr_fail(err, "retention_days must be a number of days from 1 to 36500");
    } else if (strcmp(key, "rdns") == 0) {
        if (strcmp(value, "on") != 0 && strcmp(value, "off") != 0)
            return tr_fail(err, "rdns is 'on' or 'off'");
    } else if (strcmp(key, "mmdb") == 0 && *value && access(value, R_OK) != 0) {
        return tr_fail_errno(err, "cannot read the MMDB file %s", value);
    }
    if (noise_setting_put(n, key, value, err) != 0)
        return -1;
    noise_geo_close(n);
    noise_geo_open(n);
    return 0;
}

int tr_noise_open(const char *data_dir, tr_noise **out, tr_error *err)
{
    char *path = tr_xasprintf("%s/trawl.db", data_dir);
    if (access(path, F_OK) != 0) {
        tr_fail(err, "no trawl data in %s (no trawl.db)", data_dir);
        free(path);
        return -1;
    }
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    free(path);
    if (rc != SQLITE_OK) {
        tr_fail(err, "cannot open the database: %s", db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 30000);
    /* As the hunt tables: a commit is atomic and survives a crash of the
     * process; only a power loss may drop the last batches, which a remote
     * sensor still holds until it hears 200. */
    sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
    /* Ingest touches the per-IP indexes all over: a larger page cache and
     * mapped reads save most of the pread copies of the default 2 MB, and
     * checkpointing every 10,000 WAL pages instead of 1,000 saves fsyncs.
     * The mapping stays at 256 MB: each handle maps the file on its own and
     * a server holds one per thread, whose mapped pages all count in its
     * resident size (4 GB with 1 GB maps over a 4.5 GB store of 1M IPs). */
    sqlite3_exec(db, "PRAGMA cache_size=-65536; PRAGMA mmap_size=268435456; PRAGMA wal_autocheckpoint=10000", NULL, NULL, NULL);
    tr_noise *n = tr_xcalloc(1, sizeof *n);
    n->db = db;
    n->data_dir = tr_xstrdup(data_dir);
    if (noise_exec(n, schema, err) != 0 || noise_tags_seed(n, err) != 0 ||
        noise_actors_load(n, err) != 0) {
        tr_noise_close(n);
        return -1;
    }
    noise_geo_open(n);
    *out = n;
    return 0;
}

void tr_noise_close(tr_noise *n)
{
    if (!n)
        return;
    noise_actors_free(n);
    noise_geo_close(n);
    for (size_t i = 0; i < n->nstc; i++)
        sqlite3_finalize(n->stc[i].st);
    sqlite3_close(n->db);
    free(n->data_dir);
    free(n);
}

int tr_noise_retention(tr_noise *n, bool apply, int *days, uint64_t *old_events, tr_error *err)
{
    int d = (int)noise_setting_int(n, "retention_days", TR_NOISE_RETENTION_DEFAULT);
    int64_t cutoff = tr_now_unix() / 86400 - d + 1;     /* first day kept */
    *days = d;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db, "SELECT count(*) FROM noise_events WHERE day < ?", -1, &st,
                           NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    sqlite3_bind_int64(st, 1, cutoff);
    *old_events = sqlite3_step(st) == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (!apply || *old_events == 0)
        return 0;
    char *sql = tr_xasprintf(
        "BEGIN IMMEDIATE;"
        "DELETE FROM noise_event_tags WHERE event_id IN"
        " (SELECT id FROM noise_events WHERE day < %lld);"
        "DELETE FROM noise_events WHERE day < %lld;"
        "COMMIT;",
        (long long)cutoff, (long long)cutoff);
    int rc = noise_exec(n, sql, err);
    free(sql);
    if (rc != 0)
        sqlite3_exec(n->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}
