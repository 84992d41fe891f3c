/* Livehunt: saved rule sets, compiled once (<data>/rules/NAME.yarc), run
 * against every sample ingest commits. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "hunt/hunt_internal.h"
#include "rules/rules.h"


static bool valid_name(const char *name)
{
    if (!name || !*name || name[0] == '.' || strlen(name) > 128)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return false;
    return true;
}

static char *yarc_path(const char *data_dir, const char *name)
{
    return tr_xasprintf("%s/rules/%s.yarc", data_dir, name);
}

int tr_live_add(const char *data_dir, const char *name, const char *source_name,
                const char *text, size_t len, bool allow_includes, bool replace,
                tr_error *err)
{
    if (!valid_name(name))
        return tr_fail(err, "rule set name '%s': use letters, digits, '_', '-' and '.'",
                       name ? name : "");
    hv_source src = {source_name, text, len};
    tr_ruleset *rs = NULL;
    /* Stored and compiled: the text with includes inlined. */
    char *flat = NULL;
    if (hunt_parse_sources(&src, 1, allow_includes, &flat, &rs, err) != 0)
        return -1;
    src.text = flat;
    src.len = strlen(flat);
    size_t nrules = 0;
    for (size_t i = 0; i < tr_ruleset_count(rs); i++)
        nrules += !tr_ruleset_rule_is_private(rs, i);
    tr_ruleset_free(rs);

    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, err) != 0) {
        free(flat);
        return -1;
    }
    int ret = -1;
    sqlite3_stmt *st;
    if (!replace) {
        if (sqlite3_prepare_v2(db, "SELECT 1 FROM live_rulesets WHERE name=?", -1, &st, NULL) !=
            SQLITE_OK) {
            hunt_db_fail(db, err);
            goto out;
        }
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        int exists = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
        if (exists) {
            tr_fail(err, "a rule set named %s exists (rm it, or replace it)", name);
            goto out;
        }
    }
    /* Compile in the verifier process (libyara may crash) and keep the
     * compiled form: the ingest hook then only loads it. */
    char *dir = tr_xasprintf("%s/rules", data_dir);
    int mrc = tr_mkdir_p(dir, 0755, err);
    free(dir);
    if (mrc != 0)
        goto out;
    char *yarc = yarc_path(data_dir, name);
    hv_group g = {.src = &src, .nsrc = 1, .save_yarc = yarc};
    hv_shared *sh = hv_shared_new();
    hv_run run = {.groups = &g, .ngroups = 1, .sh = sh};
    hv_events ev = {0};
    int vrc = hv_verify(&run, &ev, err);
    hv_shared_free(sh);
    free(yarc);
    if (vrc != 0)
        goto out;
    if (sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO live_rulesets(name, source_name, text, "
                           "enabled, created, rules) VALUES(?,?,?,1,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        hunt_db_fail(db, err);
        goto out;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, source_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, src.text, (int)src.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, tr_now_unix());
    sqlite3_bind_int64(st, 5, (int64_t)nrules);
    if (sqlite3_step(st) == SQLITE_DONE)
        ret = 0;
    else
        hunt_db_fail(db, err);
    sqlite3_finalize(st);
out:
    sqlite3_close(db);
    free(flat);
    return ret;
}

static int exec_name(const char *data_dir, const char *sql, const char *name, int extra,
                     bool use_extra, tr_error *err)
{
    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, err) != 0)
        return -1;
    sqlite3_stmt *st;
    int ret = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        hunt_db_fail(db, err);
    } else {
        int i = 1;
        if (use_extra)
            sqlite3_bind_int(st, i++, extra);
        sqlite3_bind_text(st, i, name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_DONE)
            ret = sqlite3_changes(db) > 0;
        else
            hunt_db_fail(db, err);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return ret;
}

int tr_live_remove(const char *data_dir, const char *name, tr_error *err)
{
    int rc = exec_name(data_dir, "DELETE FROM live_rulesets WHERE name=?", name, 0, false, err);
    if (rc == 1) {
        if (exec_name(data_dir, "DELETE FROM live_hits WHERE ruleset=?", name, 0, false, err) < 0)
            return -1;
        if (valid_name(name)) {
            char *y = yarc_path(data_dir, name);
            unlink(y);
            free(y);
        }
    }
    return rc;
}

int tr_live_enable(const char *data_dir, const char *name, bool enabled, tr_error *err)
{
    return exec_name(data_dir, "UPDATE live_rulesets SET enabled=? WHERE name=?", name,
                     enabled ? 1 : 0, true, err);
}

int tr_live_list(const char *data_dir, tr_live_ruleset **out, size_t *n, tr_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, err) != 0)
        return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT r.name, r.enabled, r.created, r.rules, "
                           "(SELECT count(*) FROM live_hits h WHERE h.ruleset=r.name), "
                           "r.failed_at, r.failure "
                           "FROM live_rulesets r ORDER BY r.name",
                           -1, &st, NULL) != SQLITE_OK) {
        hunt_db_fail(db, err);
        sqlite3_close(db);
        return -1;
    }
    size_t cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            *out = tr_xrealloc(*out, cap * sizeof **out);
        }
        tr_live_ruleset *r = &(*out)[(*n)++];
        r->name = tr_xstrdup((const char *)sqlite3_column_text(st, 0));
        r->enabled = sqlite3_column_int(st, 1) != 0;
        r->created = sqlite3_column_int64(st, 2);
        r->rules = (size_t)sqlite3_column_int64(st, 3);
        r->hits = (uint64_t)sqlite3_column_int64(st, 4);
        r->failed_at = sqlite3_column_int64(st, 5);
        const unsigned char *f = sqlite3_column_text(st, 6);
        r->failure = f ? tr_xstrdup((const char *)f) : NULL;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return 0;
}

void tr_live_list_free(tr_live_ruleset *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(l[i].name);
        free(l[i].failure);
    }
    free(l);
}

int tr_live_get_text(const char *data_dir, const char *name, char **text, tr_error *err)
{
    *text = NULL;
    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, err) != 0)
        return -1;
    sqlite3_stmt *st;
    int ret = -1;
    if (sqlite3_prepare_v2(db, "SELECT text FROM live_rulesets WHERE name=?", -1, &st, NULL) !=
        SQLITE_OK) {
        hunt_db_fail(db, err);
    } else {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *text = tr_xstrdup((const char *)sqlite3_column_text(st, 0));
            ret = 1;
        } else {
            ret = rc == SQLITE_DONE ? 0 : hunt_db_fail(db, err);
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return ret;
}

/* ---- the ingest hook -------------------------------------------------------- */

typedef struct live_scan {
    sqlite3 *db;
    char **names;
    hv_task *tasks;
    char (*sha)[TR_SHA256_HEX];
    uint64_t hits;
    size_t group;              /* index in names of the set being scanned */
    hv_shared *sh;
    _Atomic bool *stop;        /* may be NULL */
} live_scan;

static void live_on_tick(void *arg)
{
    live_scan *ls = arg;
    if (ls->stop && atomic_load(ls->stop))
        atomic_store(&ls->sh->cancel, 1);
}

static void live_on_match(void *arg, size_t task, size_t group, const char *js)
{
    live_scan *ls = arg;
    json_t *o = json_loads(js, 0, NULL);
    if (!o)
        return;
    const char *rule = json_string_value(json_object_get(o, "rule"));
    if (rule) {
        hunt_record_live_hit(ls->db, ls->names[ls->group + group], rule, ls->tasks[task].sample_id,
                             ls->sha[task], json_object_get(o, "meta"));
        ls->hits++;
    }
    json_decref(o);
}

static void live_on_error(void *arg, size_t task, const char *msg)
{
    live_scan *ls = arg;
    tr_log(TR_LOG_WARN, "livehunt: rule set %s, sample %s: %s", ls->names[ls->group],
           ls->sha[task], msg);
}

/* Kept on the rule set for `trawl rules ls`, the API and the UI, and logged:
 * a set whose verifier dies must not fail silently. */
static void record_failure(sqlite3 *db, const char *name, const char *msg)
{
    tr_log(TR_LOG_ERROR, "livehunt: rule set %s failed: %s", name, msg);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "UPDATE live_rulesets SET failed_at=?, failure=? WHERE name=?", -1,
                           &st, NULL) != SQLITE_OK) {
        tr_log(TR_LOG_WARN, "livehunt: %s", sqlite3_errmsg(db));
        return;
    }
    sqlite3_bind_int64(st, 1, tr_now_unix());
    sqlite3_bind_text(st, 2, msg, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        tr_log(TR_LOG_WARN, "livehunt: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
}

int tr_live_scan_samples(tr_store *s, const int64_t *ids, size_t n, tr_error *err)
{
    return hunt_live_scan(s, ids, n, NULL, NULL, NULL, err);
}

int hunt_live_scan(tr_store *s, const int64_t *ids, size_t n, _Atomic bool *stop,
                   void (*fork_guard)(void *arg, bool before), void *fork_guard_arg,
                   tr_error *err)
{
    if (n == 0)
        return 0;
    const char *data_dir = tr_store_dir(s);
    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, err) != 0)
        return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT name, source_name, text FROM live_rulesets WHERE enabled=1 "
                           "ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK) {
        hunt_db_fail(db, err);
        sqlite3_close(db);
        return -1;
    }
    live_scan ls = {.db = db, .stop = stop};
    hv_source *src = NULL;
    hv_group *groups = NULL;
    size_t ng = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        ls.names = tr_xrealloc(ls.names, (ng + 1) * sizeof *ls.names);
        src = tr_xrealloc(src, (ng + 1) * sizeof *src);
        const char *name = (const char *)sqlite3_column_text(st, 0);
        ls.names[ng] = tr_xstrdup(name);
        const char *text = (const char *)sqlite3_column_text(st, 2);
        src[ng] = (hv_source){tr_xstrdup((const char *)sqlite3_column_text(st, 1)),
                              tr_xstrdup(text ? text : ""), text ? strlen(text) : 0};
        ng++;
    }
    sqlite3_finalize(st);
    int ret = 0;
    if (ng == 0)
        goto out;
    groups = tr_xcalloc(ng, sizeof *groups);
    for (size_t g = 0; g < ng; g++)
        groups[g] = (hv_group){.yarc = yarc_path(data_dir, ls.names[g]), .src = &src[g],
                               .nsrc = 1};
    ls.tasks = tr_xcalloc(n, sizeof *ls.tasks);
    ls.sha = tr_xcalloc(n, sizeof *ls.sha);
    size_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        tr_sample *smp = NULL;
        int g = tr_store_get_by_id(s, ids[i], &smp, err);
        if (g < 0) {
            ret = -1;
            break;
        }
        if (g == 0)
            continue;
        hunt_task_from_sample(s, smp, &ls.tasks[nt]);
        memcpy(ls.sha[nt], smp->d.sha256, TR_SHA256_HEX);
        nt++;
        tr_sample_free(smp);
    }
    /* One verifier per rule set: a set that crashes libyara takes only its
     * own process down, and the others still see the samples. */
    for (size_t g = 0; ret == 0 && g < ng && nt > 0 && !(stop && atomic_load(stop)); g++) {
        hv_shared *sh = hv_shared_new();
        ls.sh = sh;
        hv_run run = {.groups = &groups[g], .ngroups = 1, .tasks = ls.tasks, .ntasks = nt,
                      .sample_timeout = 60, .sh = sh, .fork_guard = fork_guard,
                      .fork_guard_arg = fork_guard_arg};
        ls.group = g;
        hv_events ev = {.arg = &ls, .on_match = live_on_match, .on_scan_error = live_on_error,
                        .on_tick = live_on_tick};
        if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
            tr_log(TR_LOG_WARN, "livehunt: %s", sqlite3_errmsg(db));
        tr_error verr;
        if (hv_verify(&run, &ev, &verr) != 0)
            record_failure(db, ls.names[g], verr.msg);
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            tr_log(TR_LOG_WARN, "livehunt: %s", sqlite3_errmsg(db));
        hv_shared_free(sh);
    }
    for (size_t i = 0; i < nt; i++)
        hv_task_free(&ls.tasks[i]);
    free(ls.tasks);
    free(ls.sha);
    for (size_t g = 0; g < ng; g++)
        free((char *)groups[g].yarc);
out:
    for (size_t g = 0; g < ng; g++) {
        free(ls.names[g]);
        free((char *)src[g].name);
        free((char *)src[g].text);
    }
    free(ls.names);
    free(src);
    free(groups);
    sqlite3_close(db);
    return ret;
}

/* ---- hits ------------------------------------------------------------------------ */

void tr_live_hits_free(tr_live_hit *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(h[i].ruleset);
        free(h[i].rule);
        free(h[i].author);
        free(h[i].description);
        free(h[i].reference);
    }
    free(h);
}

static char *dup_col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? tr_xstrdup((const char *)t) : NULL;
}

static int hits_query(const char *data_dir, const char *sql, int64_t id, const char *name,
                      int64_t limit, int64_t offset, tr_live_hit **out, size_t *n,
                      tr_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, err) != 0)
        return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        hunt_db_fail(db, err);
        sqlite3_close(db);
        return -1;
    }
    if (name)
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
    if (sqlite3_bind_parameter_count(st) >= 3)
        sqlite3_bind_int64(st, 3, offset > 0 ? offset : 0);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            *out = tr_xrealloc(*out, cap * sizeof **out);
        }
        tr_live_hit *h = &(*out)[(*n)++];
        memset(h, 0, sizeof *h);
        h->ruleset = dup_col(st, 0);
        h->rule = dup_col(st, 1);
        h->sample_id = sqlite3_column_int64(st, 2);
        const unsigned char *sha = sqlite3_column_text(st, 3);
        snprintf(h->sha256, sizeof h->sha256, "%s", sha ? (const char *)sha : "");
        h->author = dup_col(st, 4);
        h->description = dup_col(st, 5);
        h->reference = dup_col(st, 6);
        h->created = sqlite3_column_int64(st, 7);
    }
    sqlite3_finalize(st);
    int ret = 0;
    if (rc != SQLITE_DONE) {
        ret = hunt_db_fail(db, err);
        tr_live_hits_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    sqlite3_close(db);
    return ret;
}

#define HIT_COLUMNS "ruleset, rule, sample_id, sha256, author, description, reference, created"

int tr_hunt_live_hits_for_sample(const char *data_dir, int64_t sample_id, tr_live_hit **out,
                                 size_t *n, tr_error *err)
{
    return hits_query(data_dir,
                      "SELECT " HIT_COLUMNS " FROM live_hits WHERE sample_id=? "
                      "ORDER BY created, rowid LIMIT ?",
                      sample_id, NULL, 0, 0, out, n, err);
}

int tr_live_hits_for_ruleset(const char *data_dir, const char *name, int64_t limit,
                             tr_live_hit **out, size_t *n, tr_error *err)
{
    return hits_query(data_dir,
                      "SELECT " HIT_COLUMNS " FROM live_hits WHERE ruleset=? "
                      "ORDER BY created DESC, rowid DESC LIMIT ?",
                      0, name, limit, 0, out, n, err);
}

int tr_live_hits_page(const char *data_dir, const char *name, int64_t offset, int64_t limit,
                      tr_live_hit **out, size_t *n, int64_t *total, tr_error *err)
{
    *total = 0;
    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, err) != 0)
        return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM live_hits WHERE ruleset=?", -1, &st,
                           NULL) != SQLITE_OK) {
        hunt_db_fail(db, err);
        sqlite3_close(db);
        return -1;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *total = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) {
        hunt_db_fail(db, err);
        sqlite3_close(db);
        return -1;
    }
    sqlite3_close(db);
    return hits_query(data_dir,
                      "SELECT " HIT_COLUMNS " FROM live_hits WHERE ruleset=?1 "
                      "ORDER BY created DESC, rowid DESC LIMIT ?2 OFFSET ?3",
                      0, name, limit, offset, out, n, err);
}

int tr_live_hits_for_rule(const char *data_dir, const char *rule, int64_t limit,
                          tr_live_hit **out, size_t *n, tr_error *err)
{
    return hits_query(data_dir,
                      "SELECT " HIT_COLUMNS " FROM live_hits WHERE rule=? "
                      "ORDER BY created DESC, rowid DESC LIMIT ?",
                      0, rule, limit, 0, out, n, err);
}

int tr_live_hits_since(const char *data_dir, int64_t since, int64_t limit, tr_live_hit **out,
                       size_t *n, tr_error *err)
{
    return hits_query(data_dir,
                      "SELECT " HIT_COLUMNS " FROM live_hits WHERE created >= ? "
                      "ORDER BY created DESC, rowid DESC LIMIT ?",
                      since, NULL, limit, 0, out, n, err);
}

json_t *tr_hunt_live_hits_json(const char *data_dir, int64_t sample_id, tr_error *err)
{
    tr_live_hit *h;
    size_t n;
    if (tr_hunt_live_hits_for_sample(data_dir, sample_id, &h, &n, err) != 0)
        return NULL;
    if (n == 0)
        return json_null();
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "rule_name", json_string(h[i].rule));
        json_object_set_new(o, "author", h[i].author ? json_string(h[i].author) : json_null());
        json_object_set_new(o, "description",
                            h[i].description ? json_string(h[i].description) : json_null());
        json_object_set_new(o, "reference",
                            h[i].reference ? json_string(h[i].reference) : json_null());
        json_object_set_new(o, "ruleset", json_string(h[i].ruleset));
        json_array_append_new(arr, o);
    }
    tr_live_hits_free(h, n);
    return arr;
}
