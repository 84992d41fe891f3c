/* The hunt tables in <data>/trawl.db, on the module's own connection. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <jansson.h>

#include "hunt/hunt_internal.h"

static const char *const schema =
    "CREATE TABLE IF NOT EXISTS hunts("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " status TEXT NOT NULL,"
    " rules_name TEXT NOT NULL,"
    " rules_json TEXT NOT NULL,"          /* [{name, text}] */
    " tag TEXT, lim INTEGER NOT NULL DEFAULT 0,"
    " threads INTEGER NOT NULL DEFAULT 0, sample_timeout INTEGER NOT NULL DEFAULT 0,"
    " time_limit REAL NOT NULL DEFAULT 0, live_ruleset TEXT,"
    " created INTEGER NOT NULL, started INTEGER, finished INTEGER, seconds REAL,"
    " samples INTEGER DEFAULT 0, candidates INTEGER DEFAULT 0,"
    " candidate_bytes INTEGER DEFAULT 0, scanned INTEGER DEFAULT 0,"
    " scanned_bytes INTEGER DEFAULT 0, matches INTEGER DEFAULT 0, errors INTEGER DEFAULT 0,"
    " full_scan_rules INTEGER DEFAULT 0, error TEXT, owner TEXT);"
    "CREATE TABLE IF NOT EXISTS hunt_results("
    " hunt_id INTEGER NOT NULL, seq INTEGER NOT NULL, sample_id INTEGER NOT NULL,"
    " sha256 TEXT NOT NULL, rule TEXT NOT NULL, source TEXT, detail TEXT NOT NULL,"
    " PRIMARY KEY(hunt_id, seq));"
    /* Results grouped by sample (the UI's pages) without a scan per sample. */
    "CREATE INDEX IF NOT EXISTS hunt_results_sample ON hunt_results(hunt_id, sample_id, seq);"
    /* Per-rule counts and one rule's samples, from the index alone. */
    "CREATE INDEX IF NOT EXISTS hunt_results_rule ON hunt_results(hunt_id, rule, sample_id);"
    /* A sample page lists the hunts that matched it. */
    "CREATE INDEX IF NOT EXISTS hunt_results_by_sample ON hunt_results(sample_id);"
    "CREATE TABLE IF NOT EXISTS live_rulesets("
    " name TEXT PRIMARY KEY, source_name TEXT NOT NULL, text TEXT NOT NULL,"
    " enabled INTEGER NOT NULL DEFAULT 1, created INTEGER NOT NULL,"
    " rules INTEGER NOT NULL DEFAULT 0, failed_at INTEGER NOT NULL DEFAULT 0, failure TEXT);"
    "CREATE TABLE IF NOT EXISTS live_pending(sample_id INTEGER PRIMARY KEY);"
    "CREATE TABLE IF NOT EXISTS live_hits("
    " ruleset TEXT NOT NULL, rule TEXT NOT NULL, sample_id INTEGER NOT NULL,"
    " sha256 TEXT NOT NULL, author TEXT, description TEXT, reference TEXT,"
    " created INTEGER NOT NULL, UNIQUE(ruleset, rule, sample_id));"
    "CREATE INDEX IF NOT EXISTS live_hits_sample ON live_hits(sample_id);";

int hunt_db_fail(sqlite3 *db, tr_error *err)
{
    return tr_fail(err, "database: %s", sqlite3_errmsg(db));
}

int hunt_db_open(const char *data_dir, sqlite3 **out, tr_error *err)
{
    char *path = tr_xasprintf("%s/trawl.db", data_dir);
    if (access(path, F_OK) != 0) {
        tr_fail(err, "no trawl data in %s (add samples first)", data_dir);
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
    /* WAL with NORMAL: a commit is atomic and survives a crash of the
     * process; only a power loss may drop the last moments of a hunt's
     * bookkeeping, which costs no sample. Saves an fsync per update. */
    sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    /* No checkpoint when this is the last connection to close: a CLI hunt
     * opens and closes this connection four times (submit, open, run, get),
     * and each close checkpointed the WAL with two fsyncs, ~10-25 ms of a
     * selective hunt. SQLite's automatic checkpoint (WAL past 1000 pages)
     * and the other modules' connections still fold the WAL back. */
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
    if (sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK) {
        hunt_db_fail(db, err);
        sqlite3_close(db);
        return -1;
    }
    /* Rule sets saved before failures were recorded lack the columns. */
    sqlite3_stmt *probe = NULL;
    if (sqlite3_prepare_v2(db, "SELECT failure FROM live_rulesets LIMIT 0", -1, &probe, NULL) !=
        SQLITE_OK &&
        sqlite3_exec(db,
                     "ALTER TABLE live_rulesets ADD COLUMN failed_at INTEGER NOT NULL DEFAULT 0;"
                     "ALTER TABLE live_rulesets ADD COLUMN failure TEXT;",
                     NULL, NULL, NULL) != SQLITE_OK) {
        hunt_db_fail(db, err);
        sqlite3_finalize(probe);
        sqlite3_close(db);
        return -1;
    }
    sqlite3_finalize(probe);
    probe = NULL;
    /* Jobs queued before their submitter was recorded lack the column. */
    if (sqlite3_prepare_v2(db, "SELECT owner FROM hunts LIMIT 0", -1, &probe, NULL) != SQLITE_OK &&
        sqlite3_exec(db, "ALTER TABLE hunts ADD COLUMN owner TEXT", NULL, NULL, NULL) !=
            SQLITE_OK) {
        hunt_db_fail(db, err);
        sqlite3_finalize(probe);
        sqlite3_close(db);
        return -1;
    }
    sqlite3_finalize(probe);
    *out = db;
    return 0;
}

/* Not under tmp/: the store sweeps its staging directory, and a running
 * hunt's lock is how other processes tell it from a dead one. */
char *hunt_lock_path(const char *data_dir, int64_t id)
{
    return tr_xasprintf("%s/run/hunt-%lld.lock", data_dir, (long long)id);
}

/* A running job holds an exclusive flock on its lock file for as long as its
 * process lives; a lock we can take belongs to a job nobody runs any more. */
void hunt_db_reap(sqlite3 *db, const char *data_dir)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT id FROM hunts WHERE status='running'", -1, &st, NULL) !=
        SQLITE_OK)
        return;
    int64_t *dead = NULL;
    size_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        char *lp = hunt_lock_path(data_dir, id);
        int fd = open(lp, O_RDWR | O_CLOEXEC);
        bool orphan = fd < 0;
        if (fd >= 0) {
            if (flock(fd, LOCK_EX | LOCK_NB) == 0)
                orphan = true;
            close(fd);
        }
        if (orphan) {
            dead = tr_xrealloc(dead, (n + 1) * sizeof *dead);
            dead[n++] = id;
            unlink(lp);
        }
        free(lp);
    }
    sqlite3_finalize(st);
    for (size_t i = 0; i < n; i++) {
        if (sqlite3_prepare_v2(db,
                               "UPDATE hunts SET status='failed', error=?, finished=? "
                               "WHERE id=? AND status='running'",
                               -1, &st, NULL) != SQLITE_OK)
            break;
        sqlite3_bind_text(st, 1, "interrupted: the process running this hunt ended; "
                                 "results found until then are kept", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, tr_now_unix());
        sqlite3_bind_int64(st, 3, dead[i]);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    free(dead);
}

static const char *const status_names[] = {"queued", "running", "done", "cancelled", "failed"};

const char *tr_hunt_status_name(tr_hunt_status s)
{
    return (unsigned)s < 5 ? status_names[s] : "unknown";
}

static tr_hunt_status status_parse(const char *s)
{
    for (int i = 0; i < 5; i++)
        if (s && strcmp(s, status_names[i]) == 0)
            return (tr_hunt_status)i;
    return TR_HUNT_FAILED;
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? tr_xstrdup((const char *)t) : NULL;
}

#define JOB_COLUMNS                                                                          \
    "id, status, rules_name, tag, lim, created, started, finished, seconds, samples, "       \
    "candidates, candidate_bytes, scanned, scanned_bytes, matches, errors, full_scan_rules, " \
    "error, owner"

static void job_from_row(sqlite3_stmt *st, tr_hunt_job *j)
{
    memset(j, 0, sizeof *j);
    j->id = sqlite3_column_int64(st, 0);
    j->status = status_parse((const char *)sqlite3_column_text(st, 1));
    j->rules_name = col_dup(st, 2);
    j->tag = col_dup(st, 3);
    j->limit = sqlite3_column_int64(st, 4);
    j->created = sqlite3_column_int64(st, 5);
    j->started = sqlite3_column_int64(st, 6);
    j->finished = sqlite3_column_int64(st, 7);
    j->seconds = sqlite3_column_double(st, 8);
    j->samples = (uint64_t)sqlite3_column_int64(st, 9);
    j->candidates = (uint64_t)sqlite3_column_int64(st, 10);
    j->candidate_bytes = (uint64_t)sqlite3_column_int64(st, 11);
    j->scanned = (uint64_t)sqlite3_column_int64(st, 12);
    j->scanned_bytes = (uint64_t)sqlite3_column_int64(st, 13);
    j->matches = (uint64_t)sqlite3_column_int64(st, 14);
    j->errors = (uint64_t)sqlite3_column_int64(st, 15);
    j->full_scan_rules = (uint64_t)sqlite3_column_int64(st, 16);
    j->error = col_dup(st, 17);
    j->owner = col_dup(st, 18);
}

void tr_hunt_job_clear(tr_hunt_job *j)
{
    free(j->rules_name);
    free(j->tag);
    free(j->error);
    free(j->owner);
    memset(j, 0, sizeof *j);
}

int tr_hunt_list(const char *data_dir, tr_hunt_job **jobs, size_t *n, tr_error *err)
{
    *jobs = NULL;
    *n = 0;
    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, err) != 0)
        return -1;
    hunt_db_reap(db, data_dir);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT " JOB_COLUMNS " FROM hunts ORDER BY id DESC", -1, &st,
                           NULL) != SQLITE_OK) {
        hunt_db_fail(db, err);
        sqlite3_close(db);
        return -1;
    }
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *jobs = tr_xrealloc(*jobs, cap * sizeof **jobs);
        }
        job_from_row(st, &(*jobs)[(*n)++]);
    }
    sqlite3_finalize(st);
    int ret = 0;
    if (rc != SQLITE_DONE) {
        ret = hunt_db_fail(db, err);
        tr_hunt_list_free(*jobs, *n);
        *jobs = NULL;
        *n = 0;
    }
    sqlite3_close(db);
    return ret;
}

void tr_hunt_list_free(tr_hunt_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tr_hunt_job_clear(&jobs[i]);
    free(jobs);
}

int tr_hunt_get(const char *data_dir, int64_t id, tr_hunt_job *job, tr_error *err)
{
    memset(job, 0, sizeof *job);
    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, err) != 0)
        return -1;
    hunt_db_reap(db, data_dir);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT " JOB_COLUMNS " FROM hunts WHERE id=?", -1, &st, NULL) !=
        SQLITE_OK) {
        hunt_db_fail(db, err);
        sqlite3_close(db);
        return -1;
    }
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    int ret;
    if (rc == SQLITE_ROW) {
        job_from_row(st, job);
        ret = 1;
    } else if (rc == SQLITE_DONE) {
        ret = 0;
    } else {
        ret = hunt_db_fail(db, err);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ret;
}

json_t *tr_hunt_rules_json(const char *data_dir, int64_t id, tr_error *err)
{
    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, err) != 0)
        return NULL;
    sqlite3_stmt *st;
    json_t *out = NULL;
    if (sqlite3_prepare_v2(db, "SELECT rules_json FROM hunts WHERE id=?", -1, &st, NULL) !=
        SQLITE_OK) {
        hunt_db_fail(db, err);
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        json_error_t je;
        out = json_loads((const char *)sqlite3_column_text(st, 0), 0, &je);
        if (!out)
            tr_fail(err, "hunt %lld: stored rules are not JSON: %s", (long long)id, je.text);
    } else {
        tr_fail(err, "no hunt %lld", (long long)id);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

int tr_hunt_results_page(const char *data_dir, int64_t id, int64_t offset, int64_t limit,
                         json_t **out, int64_t *total, tr_error *err)
{
    *out = NULL;
    *total = 0;
    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, err) != 0)
        return -1;
    sqlite3_stmt *st;
    int ret = 0;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM hunt_results WHERE hunt_id=?", -1, &st,
                           NULL) != SQLITE_OK) {
        ret = hunt_db_fail(db, err);
        sqlite3_close(db);
        return ret;
    }
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW)
        *total = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(db, "SELECT detail FROM hunt_results WHERE hunt_id=? ORDER BY seq"
                               " LIMIT ? OFFSET ?", -1, &st, NULL) != SQLITE_OK) {
        ret = hunt_db_fail(db, err);
        sqlite3_close(db);
        return ret;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
    sqlite3_bind_int64(st, 3, offset > 0 ? offset : 0);
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
        if (o)
            json_array_append_new(arr, o);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        ret = hunt_db_fail(db, err);
        json_decref(arr);
    } else {
        *out = arr;
    }
    sqlite3_close(db);
    return ret;
}

int tr_hunt_results(const char *data_dir, int64_t id, json_t **out, tr_error *err)
{
    int64_t total;
    return tr_hunt_results_page(data_dir, id, 0, 0, out, &total, err);
}

int tr_hunt_results_by_sample(const char *data_dir, int64_t id, const tr_hunt_sample_page *pg,
                              json_t **out, int64_t *total, tr_error *err)
{
    *out = NULL;
    *total = 0;
    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, err) != 0)
        return -1;
    sqlite3_stmt *st = NULL;
    int ret = 0;
    if (sqlite3_prepare_v2(db, "SELECT count(DISTINCT sample_id) FROM hunt_results"
                               " WHERE hunt_id=?1 AND (?2 IS NULL OR rule=?2)"
                               " AND (?3 IS NULL OR sha256=?3)",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(st, 1, id);
    if (pg->rule)
        sqlite3_bind_text(st, 2, pg->rule, -1, SQLITE_STATIC);
    if (pg->sha256)
        sqlite3_bind_text(st, 3, pg->sha256, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW)
        goto fail;
    *total = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    /* The page's samples first, then their results: one row per result;
     * the details past per_sample are not read (r.rule says enough). */
    if (sqlite3_prepare_v2(db,
                           "WITH g AS (SELECT sample_id, min(seq) AS first FROM hunt_results"
                           "  WHERE hunt_id=?1 AND (?2 IS NULL OR rule=?2)"
                           "  AND (?3 IS NULL OR sha256=?3)"
                           "  GROUP BY sample_id ORDER BY first LIMIT ?4 OFFSET ?5)"
                           ", p AS (SELECT g.first, r.sample_id, r.seq, r.sha256, r.rule,"
                           "  r.detail, row_number() OVER (PARTITION BY r.sample_id"
                           "  ORDER BY r.seq) AS k FROM g JOIN hunt_results r"
                           "  ON r.hunt_id=?1 AND r.sample_id=g.sample_id"
                           "  AND (?2 IS NULL OR r.rule=?2))"
                           " SELECT sample_id, sha256, rule,"
                           "  CASE WHEN ?6 <= 0 OR k <= ?6 THEN detail END"
                           " FROM p ORDER BY first, seq",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(st, 1, id);
    if (pg->rule)
        sqlite3_bind_text(st, 2, pg->rule, -1, SQLITE_STATIC);
    if (pg->sha256)
        sqlite3_bind_text(st, 3, pg->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, pg->limit > 0 ? pg->limit : -1);
    sqlite3_bind_int64(st, 5, pg->offset > 0 ? pg->offset : 0);
    sqlite3_bind_int64(st, 6, pg->per_sample > 0 ? pg->per_sample : 0);
    json_t *arr = json_array(), *cur = NULL;
    int64_t cur_id = -1, count = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t sid = sqlite3_column_int64(st, 0);
        if (!cur || sid != cur_id) {
            if (cur)
                json_object_set_new(cur, "match_count", json_integer(count));
            cur = json_pack("{s:s, s:[], s:[]}", "sha256",
                            (const char *)sqlite3_column_text(st, 1), "rules", "matches");
            json_array_append_new(arr, cur);
            cur_id = sid;
            count = 0;
        }
        count++;
        json_array_append_new(json_object_get(cur, "rules"),
                              json_string((const char *)sqlite3_column_text(st, 2)));
        const unsigned char *detail = sqlite3_column_text(st, 3);
        json_t *o = detail ? json_loads((const char *)detail, 0, NULL) : NULL;
        if (o)
            json_array_append_new(json_object_get(cur, "matches"), o);
    }
    if (cur)
        json_object_set_new(cur, "match_count", json_integer(count));
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        goto fail;
    }
    *out = arr;
    sqlite3_close(db);
    return 0;
fail:
    ret = hunt_db_fail(db, err);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ret;
}

int tr_hunt_matches_for_sample(const char *data_dir, int64_t sample_id, int64_t limit,
                               json_t **out, tr_error *err)
{
    *out = NULL;
    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, err) != 0)
        return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT r.hunt_id, h.rules_name, r.detail FROM hunt_results r"
                               " JOIN hunts h ON h.id=r.hunt_id WHERE r.sample_id=?"
                               " ORDER BY r.hunt_id DESC, r.seq LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK) {
        int ret = hunt_db_fail(db, err);
        sqlite3_close(db);
        return ret;
    }
    sqlite3_bind_int64(st, 1, sample_id);
    sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *d = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
        if (!d)
            continue;
        json_t *meta = json_object_get(d, "meta");
        json_array_append_new(
            arr, json_pack("{s:I, s:s, s:O, s:O, s:I}", "hunt",
                           (json_int_t)sqlite3_column_int64(st, 0), "hunt_name",
                           (const char *)sqlite3_column_text(st, 1), "rule",
                           json_object_get(d, "rule") ? json_object_get(d, "rule") : json_null(),
                           "meta", meta ? meta : json_null(), "strings",
                           (json_int_t)json_array_size(json_object_get(d, "strings"))));
        json_decref(d);
    }
    sqlite3_finalize(st);
    int ret = 0;
    if (rc != SQLITE_DONE) {
        ret = hunt_db_fail(db, err);
        json_decref(arr);
    } else {
        *out = arr;
    }
    sqlite3_close(db);
    return ret;
}

int tr_hunt_rule_counts(const char *data_dir, int64_t id, json_t **out, tr_error *err)
{
    *out = NULL;
    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, err) != 0)
        return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT rule, count(*), count(DISTINCT sample_id) FROM hunt_results"
                               " WHERE hunt_id=? GROUP BY rule ORDER BY 2 DESC, rule",
                           -1, &st, NULL) != SQLITE_OK) {
        int ret = hunt_db_fail(db, err);
        sqlite3_close(db);
        return ret;
    }
    sqlite3_bind_int64(st, 1, id);
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(arr, json_pack("{s:s, s:I, s:I}", "rule",
                                             (const char *)sqlite3_column_text(st, 0), "matches",
                                             (json_int_t)sqlite3_column_int64(st, 1), "samples",
                                             (json_int_t)sqlite3_column_int64(st, 2)));
    sqlite3_finalize(st);
    int ret = 0;
    if (rc != SQLITE_DONE) {
        ret = hunt_db_fail(db, err);
        json_decref(arr);
    } else {
        *out = arr;
    }
    sqlite3_close(db);
    return ret;
}

int tr_hunt_matched_samples(const char *data_dir, int64_t id, char ***sha256, size_t *n,
                            tr_error *err)
{
    *sha256 = NULL;
    *n = 0;
    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, err) != 0)
        return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT sha256 FROM hunt_results WHERE hunt_id=?"
                               " GROUP BY sha256 ORDER BY min(seq)", -1, &st, NULL) != SQLITE_OK) {
        int ret = hunt_db_fail(db, err);
        sqlite3_close(db);
        return ret;
    }
    sqlite3_bind_int64(st, 1, id);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            *sha256 = tr_xrealloc(*sha256, cap * sizeof **sha256);
        }
        (*sha256)[(*n)++] = tr_xstrdup((const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    int ret = rc == SQLITE_DONE ? 0 : hunt_db_fail(db, err);
    sqlite3_close(db);
    return ret;
}

int tr_hunt_cancel_queued(const char *data_dir, int64_t id, tr_error *err)
{
    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, err) != 0)
        return -1;
    sqlite3_stmt *st;
    int ret = -1;
    if (sqlite3_prepare_v2(db, "UPDATE hunts SET status='cancelled', error='cancelled before it ran',"
                               " finished=? WHERE id=? AND status='queued'", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, tr_now_unix());
        sqlite3_bind_int64(st, 2, id);
        ret = sqlite3_step(st) == SQLITE_DONE ? (sqlite3_changes(db) > 0) : hunt_db_fail(db, err);
        sqlite3_finalize(st);
    } else {
        hunt_db_fail(db, err);
    }
    sqlite3_close(db);
    return ret;
}

int tr_hunt_delete(const char *data_dir, int64_t id, tr_error *err)
{
    tr_hunt_job job;
    int found = tr_hunt_get(data_dir, id, &job, err);
    if (found <= 0)
        return found;
    bool running = job.status == TR_HUNT_RUNNING;
    tr_hunt_job_clear(&job);
    if (running)
        return tr_fail(err, "hunt %lld is running: cancel it first", (long long)id);
    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, err) != 0)
        return -1;
    char *sql = tr_xasprintf("BEGIN IMMEDIATE; DELETE FROM hunt_results WHERE hunt_id=%lld;"
                             " DELETE FROM hunts WHERE id=%lld AND status != 'running'; COMMIT;",
                             (long long)id, (long long)id);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    free(sql);
    if (rc != SQLITE_OK) {
        tr_fail(err, "cannot delete hunt %lld: %s", (long long)id, msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(db);
        return -1;
    }
    sqlite3_close(db);
    return 1;
}

json_t *tr_hunt_job_json(const tr_hunt_job *j)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(j->id));
    json_object_set_new(o, "status", json_string(tr_hunt_status_name(j->status)));
    json_object_set_new(o, "rules", json_string(j->rules_name ? j->rules_name : ""));
    json_object_set_new(o, "tag", j->tag ? json_string(j->tag) : json_null());
    json_object_set_new(o, "limit", json_integer(j->limit));
    char t[32];
    tr_format_time(j->created, t);
    json_object_set_new(o, "created", json_string(t));
    if (j->started) {
        tr_format_time(j->started, t);
        json_object_set_new(o, "started", json_string(t));
    } else {
        json_object_set_new(o, "started", json_null());
    }
    if (j->finished) {
        tr_format_time(j->finished, t);
        json_object_set_new(o, "finished", json_string(t));
    } else {
        json_object_set_new(o, "finished", json_null());
    }
    json_object_set_new(o, "seconds", json_real(j->seconds));
    json_object_set_new(o, "samples", json_integer((json_int_t)j->samples));
    json_object_set_new(o, "candidates", json_integer((json_int_t)j->candidates));
    json_object_set_new(o, "candidate_bytes", json_integer((json_int_t)j->candidate_bytes));
    json_object_set_new(o, "scanned", json_integer((json_int_t)j->scanned));
    json_object_set_new(o, "scanned_bytes", json_integer((json_int_t)j->scanned_bytes));
    json_object_set_new(o, "matches", json_integer((json_int_t)j->matches));
    json_object_set_new(o, "errors", json_integer((json_int_t)j->errors));
    json_object_set_new(o, "full_scan_rules", json_integer((json_int_t)j->full_scan_rules));
    json_object_set_new(o, "error", j->error ? json_string(j->error) : json_null());
    json_object_set_new(o, "owner", j->owner ? json_string(j->owner) : json_null());
    return o;
}
