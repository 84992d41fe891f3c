/* Retrohunt jobs: plan -> candidates -> libyara verification -> results. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <jansson.h>

#include "hunt/hunt_internal.h"
#include "index/index.h"
#include "rules/rules.h"

typedef struct rule_src {
    char *rule;
    const char *src;          /* one of the hunt's source names */
} rule_src;

struct tr_hunt {
    char *data_dir;
    int64_t id;
    hv_source *src;
    size_t nsrc;
    char *tag;
    int64_t limit;
    size_t threads;
    int sample_timeout;
    double time_limit;
    char *live_ruleset;
    tr_hunt_callbacks cb;
    hv_shared *sh;                /* cancel flag and child counters, valid from open */
    _Atomic uint64_t samples, sample_bytes, candidates, candidate_bytes, matches, errors;
    /* matches lead the rows by up to one commit interval; progress readers get this one */
    _Atomic uint64_t committed_matches;
    _Atomic int scanning;
    _Atomic uint64_t t0_bits;     /* double seconds, as bits */

    /* Run time, touched by the running thread only. */
    sqlite3 *db;
    hv_task *tasks;
    json_t **task_json;           /* per task: the sample's hashes and names, once matched */
    tr_store *store;
    hunt_prefilter *prefilter;    /* the query, checked over each candidate's bytes */
    size_t ntasks;
    uint64_t seq;
    double last_commit;
    bool in_txn;
    bool limit_hit, time_hit;
    void (*fork_guard)(void *arg, bool before);
    void *fork_guard_arg;
    _Atomic int interrupted;
    rule_src *rule_src;           /* sorted by rule name */
    size_t nrule_src;
};

static const char *source_of_rule(const tr_hunt *h, const char *rule);

/* ---- shared helpers --------------------------------------------------------- */

int hunt_parse_sources(const hv_source *src, size_t n, bool allow_includes, char **flat,
                       tr_ruleset **rs_out, tr_error *err)
{
    tr_rules_text *t = tr_xcalloc(n ? n : 1, sizeof *t);
    for (size_t i = 0; i < n; i++)
        t[i] = (tr_rules_text){src[i].name, src[i].text, src[i].len};
    tr_rules_options o = {.externals = tr_hunt_externals,
                          .nexternals = TR_HUNT_NEXTERNALS,
                          .allow_includes = allow_includes};
    int rc = tr_rules_parse_many(t, n, &o, flat, rs_out, err);
    free(t);
    return rc;
}

static void notice(tr_hunt *h, const char *fmt, ...) TR_PRINTF(2, 3);

/* The OR of every rule's query, simplified: what the index is asked. With h,
 * rules that cannot be accelerated are announced and counted. */
static tr_query *hunt_query(const tr_ruleset *rs, tr_hunt *h, size_t *full_rules, bool *all,
                            tr_error *err)
{
    *full_rules = 0;
    *all = false;
    tr_plan *p = NULL;
    if (tr_plan_build(rs, &p, err) != 0)
        return NULL;
    size_t nq = tr_plan_count(p);
    tr_query **qs = tr_xcalloc(nq ? nq : 1, sizeof *qs);
    for (size_t r = 0; r < nq; r++) {
        if (tr_plan_scans_everything(p, r)) {
            (*full_rules)++;
            if (h && tr_query_has_file_checks(tr_plan_query(p, r)))
                notice(h, "rule %s (%s) cannot use the index: every sample's size and "
                          "header are checked, the rest verified by libyara",
                       tr_plan_rule_name(p, r), tr_plan_rule_file(p, r));
            else if (h)
                notice(h, "rule %s (%s) cannot be accelerated: every sample is verified",
                       tr_plan_rule_name(p, r), tr_plan_rule_file(p, r));
            *all = true;
        }
        qs[r] = tr_query_clone(tr_plan_query(p, r));
    }
    tr_plan_free(p);
    tr_query *q = tr_query_simplify(tr_query_node(TR_Q_OR, 0, qs, nq));
    free(qs);
    if (q->kind == TR_Q_ALL)
        *all = true;
    return q;
}

void hunt_task_from_sample(const tr_store *s, const tr_sample *smp, hv_task *t)
{
    memset(t, 0, sizeof *t);
    t->sample_id = smp->id;
    t->size = smp->d.size;
    t->path = tr_store_blob_path(s, smp->d.sha256);
    const char *name = smp->n_names ? smp->names[0] : smp->d.sha256;
    t->ext[0] = tr_xstrdup(name);
    t->ext[1] = tr_xstrdup(name);
    const char *dot = strrchr(name, '.');
    char *ext = tr_xstrdup(dot && dot != name && dot[1] ? dot + 1 : "");
    for (char *p = ext; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    t->ext[2] = ext;
    t->ext[3] = tr_xstrdup(smp->file_type ? smp->file_type : "");
    t->ext[4] = tr_xstrdup(smp->reporter ? smp->reporter : "");
}

static json_t *sample_brief(const tr_sample *smp)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(smp->id));
    json_object_set_new(o, "sha256", json_string(smp->d.sha256));
    json_object_set_new(o, "sha1", json_string(smp->d.sha1));
    json_object_set_new(o, "md5", json_string(smp->d.md5));
    json_object_set_new(o, "size", json_integer((json_int_t)smp->d.size));
    json_object_set_new(o, "file_type", json_string(smp->file_type ? smp->file_type : ""));
    json_t *names = json_array();
    for (size_t i = 0; i < smp->n_names; i++)
        json_array_append_new(names, json_string(smp->names[i]));
    json_object_set_new(o, "file_names", names);
    json_t *tags = json_array();
    for (size_t i = 0; i < smp->n_tags; i++)
        json_array_append_new(tags, json_string(smp->tags[i]));
    json_object_set_new(o, "tags", tags);
    return o;
}

static double now_s(void)
{
    return tr_monotonic();
}

static void set_t0(tr_hunt *h, double t)
{
    uint64_t b;
    memcpy(&b, &t, sizeof b);
    atomic_store(&h->t0_bits, b);
}

static double get_t0(tr_hunt *h)
{
    uint64_t b = atomic_load(&h->t0_bits);
    double t;
    memcpy(&t, &b, sizeof t);
    return t;
}

/* ---- submit / open ------------------------------------------------------------ */

int tr_hunt_submit(const char *data_dir, const tr_hunt_params *p, int64_t *job_id,
                   tr_error *err)
{
    if (p->nsources == 0)
        return tr_fail(err, "no rules given");
    hv_source *src = tr_xcalloc(p->nsources, sizeof *src);
    for (size_t i = 0; i < p->nsources; i++)
        src[i] = (hv_source){p->sources[i].name, p->sources[i].text, p->sources[i].len};
    tr_ruleset *rs = NULL;
    /* What is stored is the text with includes inlined: the job runs later,
     * maybe elsewhere, and the verifier never opens a file for a rule. */
    char **flat = tr_xcalloc(p->nsources, sizeof *flat);
    int prc = hunt_parse_sources(src, p->nsources, p->allow_includes, flat, &rs, err);
    if (prc != 0) {
        free(src);
        free(flat);
        return -1;
    }
    /* Refused now, with the reason, rather than when a runner takes it: a
     * rule whose index query would take memory without bound. */
    size_t full_rules;
    bool all;
    tr_query *q = hunt_query(rs, NULL, &full_rules, &all, err);
    tr_ruleset_free(rs);
    free(src);
    int qrc = q ? tr_index_query_check(q, NULL, err) : -1;
    tr_query_free(q);
    if (qrc != 0) {
        for (size_t i = 0; i < p->nsources; i++)
            free(flat[i]);
        free(flat);
        return -1;
    }

    json_t *arr = json_array();
    tr_buf names = {0};
    for (size_t i = 0; i < p->nsources; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(p->sources[i].name));
        json_object_set_new(o, "text", json_string(flat[i]));
        free(flat[i]);
        json_array_append_new(arr, o);
        tr_buf_printf(&names, "%s%s", i ? "," : "", p->sources[i].name);
    }
    free(flat);
    tr_buf_append(&names, "", 1);
    char *rules_json = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (!rules_json) {
        tr_buf_free(&names);
        return tr_fail(err, "rule text is not valid UTF-8");
    }
    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, err) != 0) {
        free(rules_json);
        tr_buf_free(&names);
        return -1;
    }
    sqlite3_stmt *st;
    int ret = -1;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO hunts(status, rules_name, rules_json, tag, lim, threads, "
                           "sample_timeout, time_limit, live_ruleset, created, owner) "
                           "VALUES('queued',?,?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        hunt_db_fail(db, err);
    } else {
        sqlite3_bind_text(st, 1, names.data, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, rules_json, -1, SQLITE_STATIC);
        if (p->tag)
            sqlite3_bind_text(st, 3, p->tag, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, p->limit);
        sqlite3_bind_int64(st, 5, (int64_t)p->threads);
        sqlite3_bind_int(st, 6, p->sample_timeout);
        sqlite3_bind_double(st, 7, p->time_limit);
        if (p->live_ruleset)
            sqlite3_bind_text(st, 8, p->live_ruleset, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 9, tr_now_unix());
        if (p->owner)
            sqlite3_bind_text(st, 10, p->owner, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_DONE) {
            *job_id = sqlite3_last_insert_rowid(db);
            ret = 0;
        } else {
            hunt_db_fail(db, err);
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    free(rules_json);
    tr_buf_free(&names);
    return ret;
}

int tr_hunt_open(const char *data_dir, int64_t job_id, tr_hunt **out, tr_error *err)
{
    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, err) != 0)
        return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT status, rules_json, tag, lim, threads, sample_timeout, "
                           "time_limit, live_ruleset FROM hunts WHERE id=?",
                           -1, &st, NULL) != SQLITE_OK) {
        hunt_db_fail(db, err);
        sqlite3_close(db);
        return -1;
    }
    sqlite3_bind_int64(st, 1, job_id);
    int ret = -1;
    if (sqlite3_step(st) != SQLITE_ROW) {
        tr_fail(err, "no hunt %lld", (long long)job_id);
        goto done;
    }
    if (strcmp((const char *)sqlite3_column_text(st, 0), "queued") != 0) {
        tr_fail(err, "hunt %lld is %s, not queued", (long long)job_id,
                (const char *)sqlite3_column_text(st, 0));
        goto done;
    }
    json_t *arr = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
    if (!json_is_array(arr)) {
        json_decref(arr);
        tr_fail(err, "hunt %lld: stored rules are damaged", (long long)job_id);
        goto done;
    }
    tr_hunt *h = tr_xcalloc(1, sizeof *h);
    h->data_dir = tr_xstrdup(data_dir);
    h->id = job_id;
    h->nsrc = json_array_size(arr);
    h->src = tr_xcalloc(h->nsrc ? h->nsrc : 1, sizeof *h->src);
    for (size_t i = 0; i < h->nsrc; i++) {
        json_t *o = json_array_get(arr, i);
        const char *name = json_string_value(json_object_get(o, "name"));
        json_t *text = json_object_get(o, "text");
        size_t len = json_string_length(text);
        char *t = tr_xmalloc(len + 1);
        memcpy(t, json_string_value(text) ? json_string_value(text) : "", len);
        t[len] = 0;
        h->src[i] = (hv_source){tr_xstrdup(name ? name : "rules"), t, len};
    }
    json_decref(arr);
    const unsigned char *tag = sqlite3_column_text(st, 2);
    h->tag = tag ? tr_xstrdup((const char *)tag) : NULL;
    h->limit = sqlite3_column_int64(st, 3);
    h->threads = (size_t)sqlite3_column_int64(st, 4);
    h->sample_timeout = sqlite3_column_int(st, 5);
    h->time_limit = sqlite3_column_double(st, 6);
    const unsigned char *live = sqlite3_column_text(st, 7);
    h->live_ruleset = live ? tr_xstrdup((const char *)live) : NULL;
    h->sh = hv_shared_new();
    *out = h;
    ret = 0;
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ret;
}

void tr_hunt_set_callbacks(tr_hunt *h, const tr_hunt_callbacks *cb)
{
    h->cb = *cb;
}

int64_t tr_hunt_id(const tr_hunt *h)
{
    return h->id;
}

void tr_hunt_set_threads(tr_hunt *h, size_t threads)
{
    if (threads)
        h->threads = threads;
}

void tr_hunt_set_fork_guard(tr_hunt *h, void (*fork_guard)(void *arg, bool before), void *arg)
{
    h->fork_guard = fork_guard;
    h->fork_guard_arg = arg;
}

void tr_hunt_interrupt(tr_hunt *h)
{
    atomic_store(&h->interrupted, 1);
    tr_hunt_cancel(h);
}

void tr_hunt_cancel(tr_hunt *h)
{
    atomic_store(&h->sh->cancel, 1);
}

void tr_hunt_get_progress(tr_hunt *h, tr_hunt_progress *p)
{
    memset(p, 0, sizeof *p);
    p->samples = atomic_load(&h->samples);
    p->sample_bytes = atomic_load(&h->sample_bytes);
    p->candidates = atomic_load(&h->candidates);
    p->candidate_bytes = atomic_load(&h->candidate_bytes);
    p->scanned = atomic_load(&h->sh->scanned);
    p->scanned_bytes = atomic_load(&h->sh->bytes);
    p->matches = atomic_load(&h->committed_matches);
    p->errors = atomic_load(&h->errors);
    p->scanning = atomic_load(&h->scanning);
    double t0 = get_t0(h);
    p->elapsed = t0 > 0 ? now_s() - t0 : 0;
}

void tr_hunt_free(tr_hunt *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->nsrc; i++) {
        free((char *)h->src[i].name);
        free((char *)h->src[i].text);
    }
    free(h->src);
    for (size_t i = 0; i < h->nrule_src; i++)
        free(h->rule_src[i].rule);
    free(h->rule_src);
    free(h->tag);
    free(h->live_ruleset);
    free(h->data_dir);
    hv_shared_free(h->sh);
    free(h);
}

/* ---- run ------------------------------------------------------------------------ */

static void notice(tr_hunt *h, const char *fmt, ...)
{
    if (!h->cb.on_notice)
        return;
    va_list ap;
    va_start(ap, fmt);
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    h->cb.on_notice(h->cb.arg, msg);
}

static void db_exec(tr_hunt *h, const char *sql)
{
    if (sqlite3_exec(h->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        tr_log(TR_LOG_WARN, "hunt %lld: %s", (long long)h->id, sqlite3_errmsg(h->db));
}

static void save_counters(tr_hunt *h, const char *status, const char *error, bool final)
{
    tr_hunt_progress p;
    tr_hunt_get_progress(h, &p);
    /* The row is written in the same transaction as the results it counts. */
    p.matches = atomic_load(&h->matches);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db,
                           "UPDATE hunts SET status=?, samples=?, candidates=?, "
                           "candidate_bytes=?, scanned=?, scanned_bytes=?, matches=?, errors=?, "
                           "seconds=?, error=?, finished=? WHERE id=?",
                           -1, &st, NULL) != SQLITE_OK) {
        tr_log(TR_LOG_WARN, "hunt %lld: %s", (long long)h->id, sqlite3_errmsg(h->db));
        return;
    }
    sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)p.samples);
    sqlite3_bind_int64(st, 3, (int64_t)p.candidates);
    sqlite3_bind_int64(st, 4, (int64_t)p.candidate_bytes);
    sqlite3_bind_int64(st, 5, (int64_t)p.scanned);
    sqlite3_bind_int64(st, 6, (int64_t)p.scanned_bytes);
    sqlite3_bind_int64(st, 7, (int64_t)p.matches);
    sqlite3_bind_int64(st, 8, (int64_t)p.errors);
    sqlite3_bind_double(st, 9, p.elapsed);
    if (error)
        sqlite3_bind_text(st, 10, error, -1, SQLITE_STATIC);
    if (final)
        sqlite3_bind_int64(st, 11, tr_now_unix());
    sqlite3_bind_int64(st, 12, h->id);
    if (sqlite3_step(st) != SQLITE_DONE)
        tr_log(TR_LOG_WARN, "hunt %lld: %s", (long long)h->id, sqlite3_errmsg(h->db));
    sqlite3_finalize(st);
}

/* Results go in small transactions: a crash loses at most the last moment's
 * matches, and each commit costs one fsync, not one per match. */
static void maybe_commit(tr_hunt *h, bool force)
{
    if (!h->in_txn)
        return;
    if (!force && now_s() - h->last_commit < 0.5)
        return;
    uint64_t m = atomic_load(&h->matches);
    save_counters(h, "running", NULL, false);
    db_exec(h, "COMMIT");
    h->in_txn = false;
    atomic_store(&h->committed_matches, m);
    h->last_commit = now_s();
}

static const char *meta_str(json_t *meta, const char *const *keys)
{
    for (; *keys; keys++) {
        const char *v = json_string_value(json_object_get(meta, *keys));
        if (v)
            return v;
    }
    return NULL;
}

void hunt_record_live_hit(sqlite3 *db, const char *ruleset, const char *rule, int64_t sample_id,
                          const char *sha256, json_t *meta)
{
    static const char *const author[] = {"author", "Author", NULL};
    static const char *const desc[] = {"description", "Description", "desc", NULL};
    static const char *const ref[] = {"reference", "Reference", "ref", "url", NULL};
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "INSERT OR IGNORE INTO live_hits(ruleset, rule, sample_id, sha256, "
                           "author, description, reference, created) VALUES(?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, ruleset, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, rule, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, sample_id);
    sqlite3_bind_text(st, 4, sha256, -1, SQLITE_STATIC);
    const char *a = meta_str(meta, author), *d = meta_str(meta, desc), *r = meta_str(meta, ref);
    if (a)
        sqlite3_bind_text(st, 5, a, -1, SQLITE_STATIC);
    if (d)
        sqlite3_bind_text(st, 6, d, -1, SQLITE_STATIC);
    if (r)
        sqlite3_bind_text(st, 7, r, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, tr_now_unix());
    if (sqlite3_step(st) != SQLITE_DONE)
        tr_log(TR_LOG_WARN, "livehunt: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
}

static json_t *task_info(tr_hunt *h, size_t task)
{
    if (!h->task_json[task]) {
        tr_sample *smp = NULL;
        tr_error err;
        if (h->store && tr_store_get_by_id(h->store, h->tasks[task].sample_id, &smp, &err) == 1) {
            h->task_json[task] = sample_brief(smp);
            tr_sample_free(smp);
        } else {
            /* Removed meanwhile: the blob name may still say which sample it was. */
            const char *path = h->tasks[task].path;
            const char *slash = path ? strrchr(path, '/') : NULL;
            h->task_json[task] = json_object();
            json_object_set_new(h->task_json[task], "id", json_integer(h->tasks[task].sample_id));
            json_object_set_new(h->task_json[task], "sha256",
                                json_string(slash ? slash + 1 : ""));
        }
    }
    return h->task_json[task];
}

static void on_match(void *arg, size_t task, size_t group, const char *js)
{
    (void)group;
    tr_hunt *h = arg;
    if (h->limit > 0 && atomic_load(&h->matches) >= (uint64_t)h->limit)
        return;
    json_t *o = json_loads(js, 0, NULL);
    if (!o)
        return;
    json_t *smp = task_info(h, task);
    const char *sha = json_string_value(json_object_get(smp, "sha256"));
    json_object_set(o, "sample", smp);
    const char *rule = json_string_value(json_object_get(o, "rule"));
    const char *source = source_of_rule(h, rule);
    json_object_set_new(o, "source", json_string(source));
    json_object_del(o, "namespace");
    char *detail = json_dumps(o, JSON_COMPACT);
    if (!h->in_txn) {
        db_exec(h, "BEGIN");
        h->in_txn = true;
    }
    sqlite3_stmt *st;
    if (detail && sqlite3_prepare_v2(h->db,
                                     "INSERT INTO hunt_results(hunt_id, seq, sample_id, sha256, "
                                     "rule, source, detail) VALUES(?,?,?,?,?,?,?)",
                                     -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, h->id);
        sqlite3_bind_int64(st, 2, (int64_t)h->seq++);
        sqlite3_bind_int64(st, 3, h->tasks[task].sample_id);
        sqlite3_bind_text(st, 4, sha, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, rule, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, source, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, detail, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            tr_log(TR_LOG_WARN, "hunt %lld: %s", (long long)h->id, sqlite3_errmsg(h->db));
        sqlite3_finalize(st);
    }
    free(detail);
    if (h->live_ruleset)
        hunt_record_live_hit(h->db, h->live_ruleset, rule, h->tasks[task].sample_id, sha,
                             json_object_get(o, "meta"));
    uint64_t m = atomic_fetch_add(&h->matches, 1) + 1;
    if (h->cb.on_match) {
        tr_hunt_match hm = {.sample_id = h->tasks[task].sample_id, .sha256 = sha,
                            .rule = rule, .source = source, .json = o};
        h->cb.on_match(h->cb.arg, &hm);
    }
    json_decref(o);
    if (h->limit > 0 && m >= (uint64_t)h->limit) {
        h->limit_hit = true;
        tr_hunt_cancel(h);
    }
}

static void on_scan_error(void *arg, size_t task, const char *msg)
{
    tr_hunt *h = arg;
    atomic_fetch_add(&h->errors, 1);
    notice(h, "sample %s: %s", json_string_value(json_object_get(task_info(h, task), "sha256")),
           msg);
}

static void on_tick(void *arg)
{
    tr_hunt *h = arg;
    maybe_commit(h, false);
    if (h->time_limit > 0 && get_t0(h) > 0 && now_s() - get_t0(h) > h->time_limit &&
        !h->time_hit) {
        h->time_hit = true;
        tr_hunt_cancel(h);
    }
    if (h->cb.on_progress) {
        tr_hunt_progress p;
        tr_hunt_get_progress(h, &p);
        h->cb.on_progress(h->cb.arg, &p);
    }
}

static int cmp_task_size(const void *a, const void *b)
{
    const hv_task *x = a, *y = b;
    /* Biggest first: the pool's tail is then short files, not one huge one. */
    if (x->size != y->size)
        return x->size < y->size ? 1 : -1;
    return x->sample_id < y->sample_id ? -1 : x->sample_id > y->sample_id;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Candidate sample ids: the index's answer, plus every sample the index does
 * not hold yet (its answer cannot speak for those). */
static int candidates(tr_hunt *h, tr_store *s, const tr_query *q, bool all, int64_t **ids_out,
                      size_t *n_out, tr_error *err)
{
    int64_t *ids = NULL;
    size_t n = 0;
    if (all) {
        if (tr_store_all_ids(s, &ids, &n, err) != 0)
            return -1;
        *ids_out = ids;
        *n_out = n;
        return 0;
    }
    /* The samples the index does not hold yet are read before the index is
     * asked: a sample marked indexed after this read was published in the
     * index before it was marked, so the index answer taken next covers it.
     * The other order loses a sample indexed in between. */
    enum { PAGE = 4096 };
    int64_t *pids = tr_xmalloc(PAGE * sizeof *pids);
    char (*sha)[TR_SHA256_HEX] = tr_xmalloc(PAGE * sizeof *sha);
    uint64_t *sizes = tr_xmalloc(PAGE * sizeof *sizes);
    size_t cap = 1024;
    ids = tr_xmalloc(cap * sizeof *ids);
    int64_t after = 0;
    size_t unindexed = 0;
    for (;;) {
        size_t got = 0;
        if (tr_store_unindexed(s, after, PAGE, pids, sha, sizes, &got, err) != 0) {
            free(ids);
            free(pids);
            free(sha);
            free(sizes);
            return -1;
        }
        if (got == 0)
            break;
        if (n + got > cap) {
            cap = (n + got) * 2;
            ids = tr_xrealloc(ids, cap * sizeof *ids);
        }
        memcpy(ids + n, pids, got * sizeof *pids);
        n += got;
        unindexed += got;
        after = pids[got - 1];
        if (got < PAGE)
            break;
    }
    free(pids);
    free(sha);
    free(sizes);
    tr_index *ix = NULL;
    char *dir = tr_xasprintf("%s/index", h->data_dir);
    int orc = tr_index_open(dir, &ix, err);
    free(dir);
    if (orc != 0) {
        free(ids);
        return -1;
    }
    uint32_t *cand = NULL;
    size_t nc = 0;
    bool widened = false;
    int qrc = tr_index_query(ix, q, &cand, &nc, &widened, err);
    tr_index_close(ix);
    if (qrc != 0) {
        free(ids);
        return -1;
    }
    if (widened)
        notice(h, "part of the query had no usable n-gram window and was widened");
    if (n + nc > cap)
        ids = tr_xrealloc(ids, (n + nc) * sizeof *ids);
    for (size_t i = 0; i < nc; i++)
        ids[n++] = cand[i];
    free(cand);
    if (unindexed)
        notice(h, "%zu samples are not indexed yet: all of them are verified", unindexed);
    qsort(ids, n, sizeof *ids, cmp_i64);
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (w == 0 || ids[w - 1] != ids[i])
            ids[w++] = ids[i];
    *ids_out = ids;
    *n_out = w;
    return 0;
}

static bool has_tag(const tr_sample *smp, const char *tag)
{
    for (size_t i = 0; i < smp->n_tags; i++)
        if (strcmp(smp->tags[i], tag) == 0)
            return true;
    return false;
}

enum { BULK_TASKS = 512 };

/* The metadata of many candidates in one pass of the store instead of four
 * queries per sample (tr_store_get_by_id): for a full scan of 41k samples
 * that is seconds, more than the scan itself gains over `yara -r`. */
static int bulk_tasks(tr_hunt *h, tr_store *s, const int64_t *ids, size_t n, uint64_t *bytes)
{
    tr_sample_brief *b = NULL;
    size_t nb = 0;
    tr_error err;
    if (tr_store_briefs(s, ids, n, &b, &nb, &err) != 0)
        return -1;
    uint64_t total = 0;
    for (size_t i = 0; i < nb; i++) {
        tr_sample smp = {0};
        smp.id = b[i].id;
        memcpy(smp.d.sha256, b[i].sha256, sizeof smp.d.sha256);
        smp.d.size = b[i].size;
        smp.file_type = b[i].file_type;
        smp.reporter = b[i].reporter;
        smp.names = &b[i].name;
        smp.n_names = b[i].name ? 1 : 0;
        hunt_task_from_sample(s, &smp, &h->tasks[i]);
        total += smp.d.size;
    }
    h->ntasks = nb;
    *bytes = total;
    tr_sample_briefs_free(b, nb);
    return 0;
}

/* The store's totals only feed progress and the summary line, so they are
 * read on a connection of their own while the index answers (the store
 * caches the byte total; a miss is a scan of its samples table). */
typedef struct stats_job {
    const char *data_dir;
    uint64_t samples, bytes;
    tr_error err;
    int rc;
} stats_job;

static void *stats_main(void *arg)
{
    stats_job *j = arg;
    tr_store *s = NULL;
    tr_store_stats st = {0};
    j->rc = tr_store_open(j->data_dir, TR_STORE_READONLY, &s, &j->err);
    if (j->rc == 0) {
        j->rc = tr_store_stats_get(s, &st, &j->err);
        tr_store_close(s);
    }
    j->samples = (uint64_t)st.samples;
    j->bytes = (uint64_t)st.bytes;
    return NULL;
}

/* Joins the stats thread (or runs the job here when no thread could be
 * started) and publishes the totals. */
static int stats_finish(tr_hunt *h, stats_job *j, pthread_t *th, bool threaded, tr_error *err)
{
    if (threaded)
        pthread_join(*th, NULL);
    else
        stats_main(j);
    if (j->rc != 0) {
        *err = j->err;
        return -1;
    }
    atomic_store(&h->samples, j->samples);
    atomic_store(&h->sample_bytes, j->bytes);
    return 0;
}

static int cmp_rule_src(const void *a, const void *b)
{
    return strcmp(((const rule_src *)a)->rule, ((const rule_src *)b)->rule);
}

/* Which source file each rule came from: libyara reports only the rule, all
 * sources sharing one namespace. */
static void index_rule_sources(tr_hunt *h, const tr_ruleset *rs)
{
    size_t n = tr_ruleset_count(rs);
    h->rule_src = tr_xcalloc(n ? n : 1, sizeof *h->rule_src);
    for (size_t i = 0; i < n; i++) {
        const char *file = tr_ruleset_rule_file(rs, i), *src = "";
        for (size_t k = 0; k < h->nsrc; k++)
            if (strcmp(h->src[k].name, file) == 0)
                src = h->src[k].name;
        h->rule_src[i] = (rule_src){tr_xstrdup(tr_ruleset_rule_name(rs, i)), src};
    }
    h->nrule_src = n;
    qsort(h->rule_src, n, sizeof *h->rule_src, cmp_rule_src);
}

static const char *source_of_rule(const tr_hunt *h, const char *rule)
{
    rule_src key = {(char *)rule, NULL};
    const rule_src *f = rule ? bsearch(&key, h->rule_src, h->nrule_src, sizeof *h->rule_src,
                                       cmp_rule_src)
                             : NULL;
    return f ? f->src : "";
}

static int build_tasks(tr_hunt *h, tr_error *err)
{
    tr_ruleset *rs = NULL;
    if (hunt_parse_sources(h->src, h->nsrc, false, NULL, &rs, err) != 0)
        return -1;
    index_rule_sources(h, rs);
    bool all = false;
    size_t full_rules = 0;
    int ret = -1;
    tr_query *q = hunt_query(rs, h, &full_rules, &all, err);
    if (!q)
        goto out;
    {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(h->db, "UPDATE hunts SET full_scan_rules=? WHERE id=?", -1, &st,
                               NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, (int64_t)full_rules);
            sqlite3_bind_int64(st, 2, h->id);
            sqlite3_step(st);
            sqlite3_finalize(st);
        }
    }
    h->prefilter = hunt_prefilter_new(q);
    tr_store *s = NULL;
    if (tr_store_open(h->data_dir, TR_STORE_READONLY, &s, err) != 0) {
        tr_query_free(q);
        goto out;
    }
    stats_job sj = {.data_dir = h->data_dir};
    pthread_t sth;
    bool sthreaded = pthread_create(&sth, NULL, stats_main, &sj) == 0;
    int64_t *ids = NULL;
    size_t n = 0;
    int crc = q->kind == TR_Q_NONE ? 0 : candidates(h, s, q, all, &ids, &n, err);
    tr_query_free(q);
    tr_error serr;
    if (stats_finish(h, &sj, &sth, sthreaded, &serr) != 0 && crc == 0) {
        *err = serr;
        crc = -1;
        free(ids);
    }
    if (crc != 0) {
        tr_store_close(s);
        goto out;
    }
    h->tasks = tr_xcalloc(n ? n : 1, sizeof *h->tasks);
    uint64_t bytes = 0;
    if (!h->tag && n > BULK_TASKS && bulk_tasks(h, s, ids, n, &bytes) == 0)
        n = 0;    /* done in bulk */
    for (size_t i = 0; i < n; i++) {
        tr_sample *smp = NULL;
        int g = tr_store_get_by_id(s, ids[i], &smp, err);
        if (g < 0) {
            free(ids);
            tr_store_close(s);
            goto out;
        }
        if (g == 0)
            continue;     /* removed since the index answered */
        if (h->tag && !has_tag(smp, h->tag)) {
            tr_sample_free(smp);
            continue;
        }
        hunt_task_from_sample(s, smp, &h->tasks[h->ntasks]);
        bytes += smp->d.size;
        h->ntasks++;
        tr_sample_free(smp);
    }
    free(ids);
    qsort(h->tasks, h->ntasks, sizeof *h->tasks, cmp_task_size);
    /* Matched samples' details are read when they match (few), through this
     * handle, kept for the scan. */
    h->task_json = tr_xcalloc(h->ntasks ? h->ntasks : 1, sizeof *h->task_json);
    h->store = s;
    atomic_store(&h->candidates, h->ntasks);
    atomic_store(&h->candidate_bytes, bytes);
    ret = 0;
out:
    tr_ruleset_free(rs);
    return ret;
}

static void release_tasks(tr_hunt *h)
{
    for (size_t i = 0; i < h->ntasks; i++) {
        hv_task_free(&h->tasks[i]);
        if (h->task_json)
            json_decref(h->task_json[i]);
    }
    tr_store_close(h->store);
    h->store = NULL;
    hunt_prefilter_free(h->prefilter);
    h->prefilter = NULL;
    free(h->tasks);
    free(h->task_json);
    h->tasks = NULL;
    h->task_json = NULL;
    h->ntasks = 0;
}

int tr_hunt_run(tr_hunt *h, tr_error *err)
{
    if (hunt_db_open(h->data_dir, &h->db, err) != 0)
        return -1;
    char *rundir = tr_xasprintf("%s/run", h->data_dir);
    tr_mkdir_p(rundir, 0755, err);
    free(rundir);
    char *lp = hunt_lock_path(h->data_dir, h->id);
    int lock = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) != 0) {
        tr_fail_errno(err, "cannot lock %s", lp);
        if (lock >= 0)
            close(lock);
        free(lp);
        sqlite3_close(h->db);
        h->db = NULL;
        return -1;
    }
    /* Claim the job: only a queued job may start, once. */
    sqlite3_stmt *st;
    int claimed = 0;
    if (sqlite3_prepare_v2(h->db,
                           "UPDATE hunts SET status='running', started=? "
                           "WHERE id=? AND status='queued'",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, tr_now_unix());
        sqlite3_bind_int64(st, 2, h->id);
        if (sqlite3_step(st) == SQLITE_DONE)
            claimed = sqlite3_changes(h->db);
        sqlite3_finalize(st);
    }
    int ret = -1;
    if (!claimed) {
        tr_fail(err, "hunt %lld is not queued (already run?)", (long long)h->id);
        goto unlock;
    }
    if (build_tasks(h, err) != 0) {
        save_counters(h, "failed", err->msg, true);
        goto unlock;
    }
    tr_hunt_progress p0;
    tr_hunt_get_progress(h, &p0);
    notice(h, "%llu candidates of %llu samples (%.1f MB to verify)",
           (unsigned long long)p0.candidates, (unsigned long long)p0.samples,
           (double)p0.candidate_bytes / 1e6);
    save_counters(h, "running", NULL, false);
    set_t0(h, now_s());
    atomic_store(&h->scanning, 1);
    h->last_commit = now_s();
    hv_group g = {.src = h->src, .nsrc = h->nsrc};
    hv_run run = {.groups = &g, .ngroups = 1, .tasks = h->tasks, .ntasks = h->ntasks,
                  .threads = h->threads,
                  .sample_timeout = h->sample_timeout > 0 ? h->sample_timeout : 60,
                  .prefilter = h->prefilter, .sh = h->sh, .fork_guard = h->fork_guard,
                  .fork_guard_arg = h->fork_guard_arg};
    hv_events ev = {.arg = h, .on_match = on_match, .on_scan_error = on_scan_error,
                    .on_tick = on_tick};
    int vrc = atomic_load(&h->sh->cancel) ? 0 : hv_verify(&run, &ev, err);
    maybe_commit(h, true);
    atomic_store(&h->scanning, 0);
    uint64_t ruled_out = atomic_load(&h->sh->ruled_out);
    if (ruled_out)
        notice(h, "%llu of %zu candidates ruled out by the exact literal check, without libyara",
               (unsigned long long)ruled_out, h->ntasks);
    if (vrc != 0) {
        save_counters(h, "failed", err->msg, true);
    } else if (atomic_load(&h->sh->cancel)) {
        const char *why = h->limit_hit               ? "stopped at the match limit"
                          : h->time_hit              ? "stopped at the time limit"
                          : atomic_load(&h->interrupted) ? "interrupted: the server shut down; "
                                                           "results found until then are kept"
                                                     : "cancelled";
        save_counters(h, "cancelled", why, true);
        ret = 0;
    } else {
        save_counters(h, "done", NULL, true);
        ret = 0;
    }
    set_t0(h, 0);
unlock:
    release_tasks(h);
    unlink(lp);
    free(lp);
    close(lock);
    sqlite3_close(h->db);
    h->db = NULL;
    return ret;
}
