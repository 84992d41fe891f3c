/* Tags: YARA rules over events. Sources, their tags' meta, the compiled set,
 * the default set, and the retrohunt over stored events when tags change. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "noise/noise_builtin.h"
#include "noise/noise_internal.h"
#include "rules/rules.h"

static const char *const categories[] = {"activity", "tool", "actor", "worm", "search_engine"};
static const char *const intentions[] = {"malicious", "benign", "unknown"};

static bool in_list(const char *s, const char *const *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, l[i]) == 0)
            return true;
    return false;
}

typedef struct tag_def {
    char *name, *rule, *category, *intention, *cves, *description;
    json_t *refs;
    int64_t created;          /* a replaced tag keeps its creation time */
} tag_def;

static void tag_defs_free(tag_def *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(t[i].name);
        free(t[i].rule);
        free(t[i].category);
        free(t[i].intention);
        free(t[i].cves);
        free(t[i].description);
        json_decref(t[i].refs);
    }
    free(t);
}

/* "cve-2021-44228, CVE-2021-45046" -> "CVE-2021-44228,CVE-2021-45046" */
static char *norm_cves(const char *s, const char *rule, tr_error *err)
{
    tr_buf b = {0};
    tr_buf_append(&b, "", 1);
    b.len = 0;
    const char *p = s;
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        const char *st = p;
        while (*p && *p != ',' && !isspace((unsigned char)*p))
            p++;
        if (p == st)
            break;
        size_t len = (size_t)(p - st);
        if (len < 9 || len > 20 || strncasecmp(st, "CVE-", 4) != 0) {
            tr_buf_free(&b);
            tr_fail(err, "rule %s: cves must be CVE identifiers separated by commas, not '%.*s'",
                    rule, (int)len, st);
            return NULL;
        }
        if (b.len)
            tr_buf_append(&b, ",", 1);
        for (size_t i = 0; i < len; i++) {
            char c = (char)toupper((unsigned char)st[i]);
            tr_buf_append(&b, &c, 1);
        }
    }
    tr_buf_append(&b, "", 1);
    return b.data;
}

/* Parses a tag source with trawl's parser (errors name line:column) and
 * reads each non-private rule's meta. */
static int parse_tags(const char *name, const char *text, size_t len, tag_def **out, size_t *nout,
                      tr_error *err)
{
    size_t next = tr_noise_int_nexternals + tr_noise_str_nexternals;
    const char **ext = tr_xcalloc(next, sizeof *ext);
    for (size_t i = 0; i < tr_noise_int_nexternals; i++)
        ext[i] = tr_noise_int_externals[i];
    for (size_t i = 0; i < tr_noise_str_nexternals; i++)
        ext[tr_noise_int_nexternals + i] = tr_noise_str_externals[i];
    tr_ruleset *rs = NULL;
    /* No includes: the parser refuses them anywhere in the text (a tag is
     * stored and compiled later, where an included file is not). */
    tr_rules_options o = {.externals = ext, .nexternals = next};
    int rc = tr_rules_parse_opts(name, text, len, &o, &rs, err);
    free(ext);
    if (rc != 0)
        return -1;
    tag_def *t = NULL;
    size_t n = 0;
    for (size_t i = 0; i < tr_ruleset_count(rs); i++) {
        if (tr_ruleset_rule_is_private(rs, i))
            continue;
        const char *rule = tr_ruleset_rule_name(rs, i);
        tag_def d = {0};
        d.rule = tr_xstrdup(rule);
        d.refs = json_array();
        const char *cves = "";
        for (size_t m = 0; m < tr_ruleset_rule_meta_count(rs, i); m++) {
            char tmp[32];
            const char *k = tr_ruleset_rule_meta_key(rs, i, m);
            const char *v = tr_ruleset_rule_meta_value(rs, i, m, tmp, sizeof tmp);
            if (strcmp(k, "name") == 0 && !d.name)
                d.name = tr_xstrdup(v);
            else if (strcmp(k, "category") == 0 && !d.category)
                d.category = tr_xstrdup(v);
            else if (strcmp(k, "intention") == 0 && !d.intention)
                d.intention = tr_xstrdup(v);
            else if (strcmp(k, "description") == 0 && !d.description)
                d.description = tr_xstrdup(v);
            else if (strcmp(k, "cves") == 0 || strcmp(k, "cve") == 0)
                cves = v;
            else if (strcmp(k, "references") == 0 || strcmp(k, "reference") == 0) {
                char *dup = tr_xstrdup(v), *save = NULL;
                for (char *tok = strtok_r(dup, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
                    json_array_append_new(d.refs, json_string(tok));
                free(dup);
            }
        }
        if (!d.name)
            d.name = tr_xstrdup(rule);
        if (!d.category)
            d.category = tr_xstrdup("activity");
        if (!d.intention)
            d.intention = tr_xstrdup("unknown");
        if (!d.description)
            d.description = tr_xstrdup("");
        d.cves = norm_cves(cves, rule, err);
        t = tr_xrealloc(t, (n + 1) * sizeof *t);
        t[n++] = d;
        if (!d.cves)
            goto fail;
        if (!*d.name || strlen(d.name) > 200 || strpbrk(d.name, "\n\r\t")) {
            tr_fail(err, "rule %s: meta name must be 1 to 200 characters on one line", rule);
            goto fail;
        }
        if (!in_list(d.category, categories, 5)) {
            tr_fail(err, "rule %s: category '%s' is not one of activity, tool, actor, worm, "
                         "search_engine", rule, d.category);
            goto fail;
        }
        if (!in_list(d.intention, intentions, 3)) {
            tr_fail(err, "rule %s: intention '%s' is not one of malicious, benign, unknown", rule,
                    d.intention);
            goto fail;
        }
        for (size_t j = 0; j + 1 < n; j++)
            if (strcmp(t[j].name, d.name) == 0) {
                tr_fail(err, "rules %s and %s both name the tag '%s'", t[j].rule, rule, d.name);
                goto fail;
            }
    }
    tr_ruleset_free(rs);
    if (n == 0) {
        tr_fail(err, "%s defines no tag (no rule that is not private)", name);
        return -1;
    }
    *out = t;
    *nout = n;
    return 0;
fail:
    tr_ruleset_free(rs);
    tag_defs_free(t, n);
    return -1;
}

void noise_tag_slug(const char *name, char *out, size_t outsz)
{
    size_t k = 0;
    bool dash = false;
    for (const char *p = name; *p && k + 2 < outsz; p++) {
        if (isalnum((unsigned char)*p)) {
            if (dash && k)
                out[k++] = '-';
            out[k++] = (char)tolower((unsigned char)*p);
            dash = false;
        } else {
            dash = true;
        }
    }
    out[k] = 0;
}

void noise_tag_id(const char *name, char out[37])
{
    char h[TR_SHA256_HEX];
    tr_sha256_hex(name, strlen(name), h);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

static int insert_source(tr_noise *n, const char *name, const char *text, bool builtin,
                         const tag_def *t, size_t nt, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db,
                           "INSERT INTO noise_tag_src(name, text, builtin, created) VALUES(?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, builtin);
    sqlite3_bind_int64(st, 4, tr_now_unix());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return noise_db_fail(n->db, err);
    int64_t id = sqlite3_last_insert_rowid(n->db);
    if (sqlite3_prepare_v2(n->db,
                           "INSERT INTO noise_tags(name, src_id, rule, category, intention, cves,"
                           " description, refs, builtin, created, updated)"
                           " VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    for (size_t i = 0; i < nt; i++) {
        char *refs = json_dumps(t[i].refs, JSON_COMPACT);
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, t[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, id);
        sqlite3_bind_text(st, 3, t[i].rule, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, t[i].category, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, t[i].intention, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, t[i].cves, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, t[i].description, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, refs ? refs : "[]", -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 9, builtin);
        sqlite3_bind_int64(st, 10, t[i].created ? t[i].created : tr_now_unix());
        sqlite3_bind_int64(st, 11, tr_now_unix());
        rc = sqlite3_step(st);
        free(refs);
        if (rc != SQLITE_DONE) {
            noise_db_fail(n->db, err);
            sqlite3_finalize(st);
            return -1;
        }
    }
    sqlite3_finalize(st);
    return 0;
}

static int bump_generation(tr_noise *n, tr_error *err)
{
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)noise_setting_int(n, "tags_gen", 0) + 1);
    return noise_setting_put(n, "tags_gen", v, err);
}

/* The version of the default set: a digest of its text. */
static void builtin_version(char out[TR_SHA256_HEX])
{
    tr_buf b = {0};
    for (const noise_builtin *f = noise_builtin_tags; f->name; f++) {
        tr_buf_append(&b, f->name, strlen(f->name) + 1);
        tr_buf_append(&b, f->text, f->len);
    }
    tr_sha256_hex(b.data ? b.data : "", b.len, out);
    tr_buf_free(&b);
}

/* Default tag files hold one rule after another, each starting a line with
 * "rule "; each becomes its own source, so each tag can be removed alone. */
static int seed_file(tr_noise *n, const noise_builtin *f, tr_error *err)
{
    char *text = tr_xmalloc(f->len + 1);
    memcpy(text, f->text, f->len);
    text[f->len] = 0;
    int rc = 0;
    char *p = text;
    while (p && *p && rc == 0) {
        char *start = strncmp(p, "rule ", 5) == 0 ? p : strstr(p, "\nrule ");
        if (!start)
            break;
        if (start != p)
            start++;
        char *next = strstr(start + 1, "\nrule ");
        char save = 0;
        if (next) {
            save = next[1];
            next[1] = 0;
        }
        tag_def *t = NULL;
        size_t nt = 0;
        char *label = tr_xasprintf("builtin:%s", f->name);
        if (parse_tags(label, start, strlen(start), &t, &nt, err) != 0) {
            rc = -1;
        } else {
            /* A user's tag of the same name replaced the default: keep it.
             * A default the admin removed stays removed. */
            bool taken = false;
            for (size_t i = 0; i < nt && !taken; i++) {
                sqlite3_stmt *st = NULL;
                sqlite3_prepare_v2(n->db,
                                   "SELECT 1 FROM noise_tags WHERE name=?1 UNION ALL"
                                   " SELECT 1 FROM noise_settings WHERE key='removed_tag:' || ?1",
                                   -1, &st, NULL);
                sqlite3_bind_text(st, 1, t[i].name, -1, SQLITE_STATIC);
                taken = sqlite3_step(st) == SQLITE_ROW;
                sqlite3_finalize(st);
            }
            if (!taken)
                rc = insert_source(n, label, start, true, t, nt, err);
            tag_defs_free(t, nt);
        }
        free(label);
        if (next)
            next[1] = save;
        p = next ? next + 1 : NULL;
    }
    free(text);
    return rc;
}

int noise_tags_seed(tr_noise *n, tr_error *err)
{
    char ver[TR_SHA256_HEX];
    builtin_version(ver);
    char *have = noise_setting_get(n, "builtin_version");
    bool same = have && strcmp(have, ver) == 0;
    free(have);
    if (same)
        return 0;
    if (noise_exec(n, "BEGIN IMMEDIATE", err) != 0)
        return -1;
    /* Another process may have seeded while we waited for the lock. */
    have = noise_setting_get(n, "builtin_version");
    same = have && strcmp(have, ver) == 0;
    free(have);
    if (same)
        return noise_exec(n, "COMMIT", err);
    int rc = noise_exec(n,
                        "DELETE FROM noise_tags WHERE builtin=1;"
                        "DELETE FROM noise_tag_src WHERE builtin=1;",
                        err);
    for (const noise_builtin *f = noise_builtin_tags; rc == 0 && f->name; f++)
        rc = seed_file(n, f, err);
    /* Tags a new default set no longer has leave no names behind. */
    if (rc == 0)
        rc = noise_exec(n,
                        "DELETE FROM noise_event_tags WHERE tag NOT IN (SELECT name FROM noise_tags);"
                        "DELETE FROM noise_ip_values WHERE kind='tag'"
                        " AND value NOT IN (SELECT name FROM noise_tags);",
                        err);
    if (rc == 0)
        rc = noise_setting_put(n, "builtin_version", ver, err);
    if (rc == 0)
        rc = bump_generation(n, err);
    if (rc == 0)
        rc = noise_exec(n, "COMMIT", err);
    if (rc != 0) {
        tr_error_prefix(err, "default tags");
        sqlite3_exec(n->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

static int load_sources(tr_noise *n, noise_src **out, size_t *nout, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db, "SELECT name, text FROM noise_tag_src ORDER BY id", -1, &st,
                           NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    noise_src *s = NULL;
    size_t k = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        s = tr_xrealloc(s, (k + 1) * sizeof *s);
        s[k].name = tr_xstrdup((const char *)sqlite3_column_text(st, 0));
        s[k].text = tr_xstrdup((const char *)sqlite3_column_text(st, 1));
        k++;
    }
    sqlite3_finalize(st);
    *out = s;
    *nout = k;
    return 0;
}

static void free_sources(noise_src *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)s[i].name);
        free((char *)s[i].text);
    }
    free(s);
}

static char *yarc_path(tr_noise *n, int64_t gen)
{
    return tr_xasprintf("%s/noise/tags-%lld.yarc", n->data_dir, (long long)gen);
}

static int compile_current(tr_noise *n, const char *path, tr_error *err)
{
    char *dir = tr_xasprintf("%s/noise", n->data_dir);
    int rc = tr_mkdir_p(dir, 0755, err);
    free(dir);
    if (rc != 0)
        return -1;
    noise_src *s = NULL;
    size_t ns = 0;
    if (load_sources(n, &s, &ns, err) != 0)
        return -1;
    rc = noise_yara_compile(s, ns, path, err);
    free_sources(s, ns);
    return rc;
}

int noise_tags_yarc(tr_noise *n, char **path, tr_error *err)
{
    int64_t gen = noise_setting_int(n, "tags_gen", 0);
    char *p = yarc_path(n, gen);
    if (access(p, R_OK) != 0) {
        if (compile_current(n, p, err) != 0) {
            free(p);
            return -1;
        }
        if (gen > 0) {
            char *old = yarc_path(n, gen - 1);
            unlink(old);
            free(old);
        }
    }
    *path = p;
    return 0;
}

/* ---- retro: re-judging stored events -------------------------------------- */

typedef struct retro {
    tr_noise *n;
    const tag_def *t;
    size_t nt;
    int64_t *ids;
    char **ips;
    tr_event *evs;
    uint64_t matched;
    json_t *collect;          /* testing: matches go here, nothing is stored */
    int rc;
    tr_error *err;
} retro;

enum { TEST_MATCHES_SHOWN = 100 };

static void retro_hit(void *arg, size_t ev, const char *tag)
{
    retro *r = arg;
    if (r->rc != 0)
        return;
    for (size_t i = 0; i < r->nt; i++) {
        if (strcmp(r->t[i].name, tag) != 0)
            continue;
        r->matched++;
        if (!r->collect)
            r->rc = noise_tag_event(r->n, r->ids[ev], r->ips[ev], tag, r->evs[ev].time_us, r->err);
        else if (json_array_size(r->collect) < TEST_MATCHES_SHOWN)
            json_array_append_new(r->collect,
                                  json_pack("{s:I, s:s, s:o, s:s}", "event_id",
                                            (json_int_t)r->ids[ev], "src_ip", r->ips[ev], "time",
                                            noise_time_json(r->evs[ev].time_us), "tag", tag));
        return;
    }
}

enum { RETRO_CHUNK = 2000 };

/* Scans the stored events with the compiled rules, keeping the hits of the
 * tags t: oldest first and all of them (retro), or newest first and at most
 * max_events (testing, collect set). */
static int retro_scan(tr_noise *n, const char *yarc, const tag_def *t, size_t nt, json_t *collect,
                      int64_t max_events, uint64_t *scanned, uint64_t *matched, tr_error *err)
{
    retro r = {.n = n, .t = t, .nt = nt, .collect = collect, .err = err};
    r.ids = tr_xcalloc(RETRO_CHUNK, sizeof *r.ids);
    r.ips = tr_xcalloc(RETRO_CHUNK, sizeof *r.ips);
    r.evs = tr_xcalloc(RETRO_CHUNK, sizeof *r.evs);
    sqlite3_stmt *st = NULL;
    bool newest = collect != NULL;
    int64_t after = newest ? INT64_MAX : 0;
    uint64_t seen = 0;
    int rc = 0;
    if (sqlite3_prepare_v2(n->db,
                           newest ? "SELECT id, src_ip, json FROM noise_events WHERE id < ?"
                                    " ORDER BY id DESC LIMIT ?"
                                  : "SELECT id, src_ip, json FROM noise_events WHERE id > ?"
                                    " ORDER BY id LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK)
        rc = noise_db_fail(n->db, err);
    while (rc == 0 && (max_events <= 0 || (int64_t)seen < max_events)) {
        size_t k = 0, rows = 0;
        int64_t want = RETRO_CHUNK;
        if (max_events > 0 && max_events - (int64_t)seen < want)
            want = max_events - (int64_t)seen;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, after);
        sqlite3_bind_int64(st, 2, want);
        while (sqlite3_step(st) == SQLITE_ROW) {
            rows++;
            json_t *j = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
            tr_error e2;
            after = sqlite3_column_int64(st, 0);
            if (!j || tr_event_from_json(j, &r.evs[k], &e2) != 0) {
                json_decref(j);
                continue;           /* cannot happen for rows we wrote; skip it */
            }
            json_decref(j);
            r.ids[k] = after;
            r.ips[k] = tr_xstrdup((const char *)sqlite3_column_text(st, 1));
            k++;
        }
        if (rows == 0)
            break;
        seen += rows;
        rc = noise_yara_scan(yarc, r.evs, k, retro_hit, &r, err);
        if (rc == 0)
            rc = r.rc;
        for (size_t i = 0; i < k; i++) {
            tr_event_clear(&r.evs[i]);
            free(r.ips[i]);
        }
    }
    sqlite3_finalize(st);
    free(r.ids);
    free(r.ips);
    free(r.evs);
    *matched = r.matched;
    if (scanned)
        *scanned = seen;
    return rc;
}

static int forget_tag(tr_noise *n, const char *name, tr_error *err)
{
    static const char *const sql[] = {
        "DELETE FROM noise_event_tags WHERE tag=?",
        "DELETE FROM noise_ip_values WHERE kind='tag' AND value=?",
        "DELETE FROM noise_tags WHERE name=?",
    };
    for (size_t i = 0; i < 3; i++) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(n->db, sql[i], -1, &st, NULL) != SQLITE_OK)
            return noise_db_fail(n->db, err);
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            return noise_db_fail(n->db, err);
    }
    return 0;
}

/* The source defining a tag, and how many tags it defines: 1 found. */
static int tag_source(tr_noise *n, const char *name, int64_t *src_id, char **src_name,
                      json_t **others)
{
    sqlite3_stmt *st = NULL;
    int found = 0;
    sqlite3_prepare_v2(n->db,
                       "SELECT t.src_id, s.name FROM noise_tags t JOIN noise_tag_src s"
                       " ON s.id=t.src_id WHERE t.name=?",
                       -1, &st, NULL);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        found = 1;
        *src_id = sqlite3_column_int64(st, 0);
        *src_name = tr_xstrdup((const char *)sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
    if (!found)
        return 0;
    *others = json_array();
    sqlite3_prepare_v2(n->db, "SELECT name FROM noise_tags WHERE src_id=? AND name<>?", -1, &st,
                       NULL);
    sqlite3_bind_int64(st, 1, *src_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(*others, json_string((const char *)sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
    return 1;
}

static int delete_source(tr_noise *n, int64_t id, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db, "DELETE FROM noise_tag_src WHERE id=?", -1, &st, NULL) !=
        SQLITE_OK)
        return noise_db_fail(n->db, err);
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : noise_db_fail(n->db, err);
}

int tr_noise_tag_add(tr_noise *n, const char *source_name, const char *text, size_t len,
                     json_t **added, tr_error *err)
{
    if (memchr(text, 0, len))
        return tr_fail(err, "%s: a tag rule is text without NUL bytes", source_name);
    tag_def *t = NULL;
    size_t nt = 0;
    if (parse_tags(source_name, text, len, &t, &nt, err) != 0)
        return -1;
    char *copy = tr_xmalloc(len + 1);
    memcpy(copy, text, len);
    copy[len] = 0;
    char *yarc = NULL;
    uint64_t matched = 0;
    int rc = noise_exec(n, "BEGIN IMMEDIATE", err);
    if (rc != 0)
        goto out;
    /* Replacing a tag replaces its source, which must define nothing else
     * that this text leaves out. */
    for (size_t i = 0; i < nt && rc == 0; i++) {
        int64_t sid;
        char *sname = NULL;
        json_t *others = NULL;
        if (tag_source(n, t[i].name, &sid, &sname, &others) != 1)
            continue;
        size_t k;
        json_t *o;
        json_array_foreach(others, k, o) {
            bool kept = false;
            for (size_t j = 0; j < nt; j++)
                kept = kept || strcmp(t[j].name, json_string_value(o)) == 0;
            if (!kept) {
                rc = tr_fail(err, "tag '%s' is defined in %s together with '%s', which this text "
                                  "does not define; add them together",
                             t[i].name, sname, json_string_value(o));
                break;
            }
        }
        json_decref(others);
        free(sname);
        if (rc == 0)
            rc = delete_source(n, sid, err);
    }
    for (size_t i = 0; i < nt && rc == 0; i++) {
        sqlite3_stmt *st = NULL;
        sqlite3_prepare_v2(n->db, "SELECT created FROM noise_tags WHERE name=?", -1, &st, NULL);
        sqlite3_bind_text(st, 1, t[i].name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            t[i].created = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        rc = forget_tag(n, t[i].name, err);
    }
    if (rc == 0)
        rc = insert_source(n, source_name, copy, false, t, nt, err);
    if (rc == 0)
        rc = bump_generation(n, err);
    /* libyara's word on the whole set before anything is kept. */
    if (rc == 0)
        rc = noise_tags_yarc(n, &yarc, err);
    if (rc == 0 && (rc = retro_scan(n, yarc, t, nt, NULL, 0, NULL, &matched, err)) != 0)
        tr_error_prefix(err, "re-judging the stored events (nothing was changed)");
    if (rc == 0)
        rc = noise_reclassify(n, NULL, err);
    if (rc == 0)
        rc = noise_exec(n, "COMMIT", err);
    if (rc != 0) {
        sqlite3_exec(n->db, "ROLLBACK", NULL, NULL, NULL);
        if (yarc)
            unlink(yarc);       /* compiled from what was rolled back */
    } else if (added) {
        json_t *names = json_array();
        for (size_t i = 0; i < nt; i++)
            json_array_append_new(names, json_string(t[i].name));
        sqlite3_stmt *st = NULL;
        int64_t ips = 0;
        sqlite3_prepare_v2(n->db, "SELECT count(DISTINCT ip) FROM noise_ip_values WHERE "
                                  "kind='tag' AND value=?", -1, &st, NULL);
        for (size_t i = 0; i < nt; i++) {
            sqlite3_reset(st);
            sqlite3_bind_text(st, 1, t[i].name, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW)
                ips += sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
        *added = json_pack("{s:o, s:I, s:I}", "tags", names, "events_matched",
                           (json_int_t)matched, "ips", (json_int_t)ips);
    }
out:
    free(yarc);
    free(copy);
    tag_defs_free(t, nt);
    return rc;
}

int tr_noise_tag_rm(tr_noise *n, const char *name, tr_error *err)
{
    if (noise_exec(n, "BEGIN IMMEDIATE", err) != 0)
        return -1;
    int64_t sid;
    char *sname = NULL;
    json_t *others = NULL;
    int found = tag_source(n, name, &sid, &sname, &others);
    int rc = 0;
    if (found == 1 && json_array_size(others) > 0)
        rc = tr_fail(err, "tag '%s' is defined in %s together with '%s'; re-add that file "
                          "without it instead",
                     name, sname, json_string_value(json_array_get(others, 0)));
    if (found == 1 && rc == 0 && strncmp(sname, "builtin:", 8) == 0) {
        char *key = tr_xasprintf("removed_tag:%s", name);
        rc = noise_setting_put(n, key, "1", err);
        free(key);
    }
    if (found == 1 && rc == 0)
        rc = delete_source(n, sid, err);
    if (found == 1 && rc == 0)
        rc = forget_tag(n, name, err);
    if (found == 1 && rc == 0)
        rc = bump_generation(n, err);
    if (found == 1 && rc == 0)
        rc = noise_reclassify(n, NULL, err);
    json_decref(others);
    free(sname);
    if (rc == 0 && noise_exec(n, "COMMIT", err) == 0)
        return found;
    sqlite3_exec(n->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

int tr_noise_tags(tr_noise *n, json_t **out, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(
            n->db,
            "SELECT t.name, t.category, t.intention, t.cves, t.description, t.refs, t.builtin,"
            " s.name, t.rule, t.created, t.updated,"
            " (SELECT count(*) FROM noise_ip_values v WHERE v.kind='tag' AND v.value=t.name),"
            " (SELECT count(*) FROM noise_event_tags e WHERE e.tag=t.name)"
            " FROM noise_tags t JOIN noise_tag_src s ON s.id=t.src_id ORDER BY t.name",
            -1, &st, NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    json_t *a = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *cves = json_array();
        char *c = tr_xstrdup((const char *)sqlite3_column_text(st, 3)), *save = NULL;
        for (char *tok = strtok_r(c, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
            json_array_append_new(cves, json_string(tok));
        free(c);
        json_t *refs = json_loads((const char *)sqlite3_column_text(st, 5), 0, NULL);
        json_array_append_new(
            a, json_pack("{s:s, s:s, s:s, s:o, s:s, s:o, s:b, s:s, s:s, s:I, s:I}", "name",
                         (const char *)sqlite3_column_text(st, 0), "category",
                         (const char *)sqlite3_column_text(st, 1), "intention",
                         (const char *)sqlite3_column_text(st, 2), "cves", cves, "description",
                         (const char *)sqlite3_column_text(st, 4), "references",
                         refs ? refs : json_array(), "builtin", sqlite3_column_int(st, 6),
                         "source", (const char *)sqlite3_column_text(st, 7), "rule",
                         (const char *)sqlite3_column_text(st, 8), "ips",
                         (json_int_t)sqlite3_column_int64(st, 11), "events",
                         (json_int_t)sqlite3_column_int64(st, 12)));
        json_t *t = json_array_get(a, json_array_size(a) - 1);
        char slug[256], id[37];
        noise_tag_slug((const char *)sqlite3_column_text(st, 0), slug, sizeof slug);
        noise_tag_id((const char *)sqlite3_column_text(st, 0), id);
        json_object_set_new(t, "slug", json_string(slug));
        json_object_set_new(t, "id", json_string(id));
        json_object_set_new(t, "created", noise_time_json(sqlite3_column_int64(st, 9) * 1000000));
        json_object_set_new(t, "updated_at",
                            noise_time_json(sqlite3_column_int64(st, 10) * 1000000));
    }
    sqlite3_finalize(st);
    *out = a;
    return 0;
}

int tr_noise_tag_test(tr_noise *n, const char *source_name, const char *text, size_t len,
                      int64_t max_events, json_t **out, tr_error *err)
{
    if (memchr(text, 0, len))
        return tr_fail(err, "%s: a tag rule is text without NUL bytes", source_name);
    tag_def *t = NULL;
    size_t nt = 0;
    if (parse_tags(source_name, text, len, &t, &nt, err) != 0)
        return -1;
    if (max_events <= 0)
        max_events = 10000;
    char *dir = tr_xasprintf("%s/noise", n->data_dir);
    char *yarc = NULL;
    int rc = tr_mkdir_p(dir, 0755, err);
    if (rc == 0) {
        char tmpl[64];
        snprintf(tmpl, sizeof tmpl, "/test-%ld-XXXXXX", (long)getpid());
        yarc = tr_xasprintf("%s%s", dir, tmpl);
        int fd = mkstemp(yarc);
        if (fd < 0)
            rc = tr_fail_errno(err, "cannot create a file in %s", dir);
        else
            close(fd);
    }
    char *copy = tr_xmalloc(len + 1);
    memcpy(copy, text, len);
    copy[len] = 0;
    noise_src src = {source_name, copy};
    json_t *matches = json_array();
    uint64_t scanned = 0, matched = 0;
    if (rc == 0)
        rc = noise_yara_compile(&src, 1, yarc, err);
    /* A read transaction: the events scanned are one consistent set. */
    if (rc == 0)
        rc = noise_exec(n, "BEGIN", err);
    if (rc == 0) {
        rc = retro_scan(n, yarc, t, nt, matches, max_events, &scanned, &matched, err);
        sqlite3_exec(n->db, "COMMIT", NULL, NULL, NULL);
    }
    if (yarc)
        unlink(yarc);
    if (rc == 0) {
        json_t *names = json_array(), *ips = json_object();
        for (size_t i = 0; i < nt; i++)
            json_array_append_new(names, json_string(t[i].name));
        size_t i;
        json_t *m;
        json_array_foreach(matches, i, m)
            json_object_set_new(ips, json_string_value(json_object_get(m, "src_ip")), json_true());
        *out = json_pack("{s:o, s:I, s:I, s:I, s:o}", "tags", names, "events_scanned",
                         (json_int_t)scanned, "events_matched", (json_int_t)matched,
                         "ips_shown", (json_int_t)json_object_size(ips), "matches", matches);
        json_decref(ips);
    } else {
        json_decref(matches);
    }
    free(copy);
    free(yarc);
    free(dir);
    tag_defs_free(t, nt);
    return rc;
}
