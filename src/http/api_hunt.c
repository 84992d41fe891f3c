/* /api/hunts, /api/rules, /api/jobs: retrohunts run by the server's
 * runners, and live rule sets. */
#include <ctype.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/http_internal.h"
#include "hunt/hunt.h"
#include "rules/rules.h"


/* "file:LINE:COL: msg" (trawl's parser) -> line and column for the UI. */
static enum MHD_Result rule_error(http_request *r, const char *msg)
{
    int line = 0, col = 0;
    for (const char *p = strchr(msg, ':'); p; p = strchr(p + 1, ':'))
        if (sscanf(p, ":%d:%d:", &line, &col) == 2)
            break;
    return http_send_json(r, 400, json_pack("{s:s, s:s, s:i, s:i}", "query_status", "error",
                                            "error", msg, "line", line, "column", col));
}

static bool parse_id(const char *s, int64_t *id)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (end == s || (*end && *end != '/') || v <= 0)
        return false;
    *id = v;
    return true;
}

/* Queued hunts beyond this are refused (429) rather than piling up. */
#define HUNT_QUEUE_MAX 64

static size_t queued_jobs(const char *data_dir)
{
    tr_hunt_job *jobs = NULL;
    size_t n = 0, q = 0;
    tr_error err;
    if (tr_hunt_list(data_dir, &jobs, &n, &err) != 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        q += jobs[i].status == TR_HUNT_QUEUED;
    tr_hunt_list_free(jobs, n);
    return q;
}

/* A hunt without a name is called after its rules ("a, b +3 more"): the
 * hunts list then tells hunts apart. NULL when the text does not parse (the
 * submit then fails with the parser's message). */
static char *name_from_rules(const char *text)
{
    tr_ruleset *rs = NULL;
    tr_error err;
    if (tr_rules_parse_string("rule.yar", text, &rs, &err) != 0)
        return NULL;
    tr_buf b = {0};
    size_t n = tr_ruleset_count(rs), shown = 0, pub = 0;
    for (size_t i = 0; i < n; i++) {
        if (tr_ruleset_rule_is_private(rs, i))
            continue;
        pub++;
        if (shown < 3 && b.len < 80) {
            tr_buf_printf(&b, "%s%s", shown ? ", " : "", tr_ruleset_rule_name(rs, i));
            shown++;
        }
    }
    if (pub > shown)
        tr_buf_printf(&b, " +%zu more", pub - shown);
    tr_ruleset_free(rs);
    if (!b.data)
        return NULL;
    char *out = tr_xstrdup(b.data);
    tr_buf_free(&b);
    return out;
}

bool http_hunt_queue_full(http_request *r, enum MHD_Result *sent)
{
    if (queued_jobs(r->data_dir) < HUNT_QUEUE_MAX)
        return false;
    *sent = http_send_error(r, 429, "%d hunts are already queued: wait for some to finish",
                            HUNT_QUEUE_MAX);
    return true;
}

static enum MHD_Result submit(http_request *r)
{
    enum MHD_Result sent = MHD_NO;
    if (http_hunt_queue_full(r, &sent))
        return sent;
    json_t *body = http_json_body(r, &sent);
    if (!body)
        return sent;
    const char *text = json_string_value(json_object_get(body, "rule"));
    json_t *jl = json_object_get(body, "limit"), *jt = json_object_get(body, "time_limit");
    const char *tag = json_string_value(json_object_get(body, "tag"));
    const char *name = json_string_value(json_object_get(body, "name"));
    if (!text || !*text || (jl && !json_is_integer(jl)) || (jt && !json_is_number(jt))) {
        json_decref(body);
        return http_send_error(r, 400, "expected {\"rule\": TEXT, \"limit\"?: N, \"tag\"?: TAG,"
                                       " \"time_limit\"?: SECONDS, \"name\"?: NAME}");
    }
    char *derived = name && *name ? NULL : name_from_rules(text);
    tr_hunt_source src = {name && *name ? name : derived ? derived : "rule.yar", text,
                          strlen(text)};
    /* No hunt holds a runner for ever: the server's limit is the default
     * and the most a request may ask for. */
    double ceiling = http_hunt_time_limit(r->srv);
    double asked = jt ? json_number_value(jt) : 0;
    tr_hunt_params p = {.sources = &src, .nsources = 1, .tag = tag && *tag ? tag : NULL,
                        .limit = jl ? json_integer_value(jl) : 0,
                        .time_limit = asked > 0 && asked < ceiling ? asked : ceiling,
                        .owner = r->key_name[0] ? r->key_name : NULL};
    int64_t id = 0;
    tr_error err;
    int rc = tr_hunt_submit(r->data_dir, &p, &id, &err);
    json_decref(body);
    free(derived);
    if (rc != 0)
        return rule_error(r, err.msg);
    http_hunts_kick(r->srv);
    return http_send_json(r, 201, json_pack("{s:s, s:I}", "query_status", "queued", "id",
                                            (json_int_t)id));
}

static json_t *job_with_progress(http_request *r, const tr_hunt_job *j)
{
    json_t *o = tr_hunt_job_json(j);
    tr_hunt_progress p;
    if (j->status == TR_HUNT_RUNNING && http_hunt_progress(r->srv, j->id, &p)) {
        json_object_set_new(o, "samples", json_integer((json_int_t)p.samples));
        json_object_set_new(o, "candidates", json_integer((json_int_t)p.candidates));
        json_object_set_new(o, "candidate_bytes", json_integer((json_int_t)p.candidate_bytes));
        json_object_set_new(o, "scanned", json_integer((json_int_t)p.scanned));
        json_object_set_new(o, "scanned_bytes", json_integer((json_int_t)p.scanned_bytes));
        json_object_set_new(o, "matches", json_integer((json_int_t)p.matches));
        json_object_set_new(o, "seconds", json_real(p.elapsed));
    }
    double secs = json_real_value(json_object_get(o, "seconds"));
    json_int_t bytes = json_integer_value(json_object_get(o, "scanned_bytes"));
    json_object_set_new(o, "rate_mbs", json_real(secs > 0 ? (double)bytes / secs / 1e6 : 0));
    return o;
}

static int64_t query_count(http_request *r, const char *key, int64_t dflt);

/* Newest first, a page at a time (offset, limit up to 1000; 200 by
 * default as before), with the total. */
static enum MHD_Result list_jobs(http_request *r)
{
    int64_t offset = query_count(r, "offset", 0), limit = query_count(r, "limit", 200);
    if (offset < 0 || limit < 0 || limit > 1000)
        return http_send_error(r, 400, "offset >= 0 and limit from 0 to 1000, please");
    if (limit == 0)
        limit = 200;
    tr_hunt_job *jobs = NULL;
    size_t n = 0;
    tr_error err;
    if (tr_hunt_list(r->data_dir, &jobs, &n, &err) != 0)
        return http_send_error(r, 500, "%s", err.msg);
    json_t *data = json_array();
    for (size_t i = (size_t)offset; i < n && i < (size_t)(offset + limit); i++)
        json_array_append_new(data, job_with_progress(r, &jobs[i]));
    tr_hunt_list_free(jobs, n);
    return http_send_json(r, 200, json_pack("{s:s, s:I, s:I, s:I, s:o}", "query_status", "ok",
                                            "total", (json_int_t)n, "offset", (json_int_t)offset,
                                            "limit", (json_int_t)limit, "data", data));
}

static enum MHD_Result send_hashes(http_request *r, int64_t id)
{
    char **sha = NULL;
    size_t n = 0;
    tr_error err;
    if (tr_hunt_matched_samples(r->data_dir, id, &sha, &n, &err) != 0)
        return http_send_error(r, 500, "%s", err.msg);
    tr_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        tr_buf_printf(&b, "%s\n", sha[i]);
        free(sha[i]);
    }
    free(sha);
    enum MHD_Result rc = http_send_text(r, 200, "text/plain; charset=utf-8", b.data ? b.data : "",
                                        b.len);
    tr_buf_free(&b);
    return rc;
}

/* Every matched sample in one AES zip (password "infected"). */
static enum MHD_Result send_zip(http_request *r, int64_t id)
{
    char **sha = NULL;
    size_t n = 0;
    tr_error err;
    if (tr_hunt_matched_samples(r->data_dir, id, &sha, &n, &err) != 0)
        return http_send_error(r, 500, "%s", err.msg);
    if (n == 0) {
        free(sha);
        return http_send_error(r, 404, "hunt %lld matched no samples", (long long)id);
    }
    tr_store *s = NULL;
    enum MHD_Result rc;
    if (tr_store_open(r->data_dir, TR_STORE_READONLY, &s, &err) != 0) {
        rc = http_send_error(r, 503, "%s", err.msg);
    } else {
        tr_zip_entry *e = tr_xcalloc(n, sizeof *e);
        char **paths = tr_xcalloc(n, sizeof *paths);
        size_t ne = 0;
        for (size_t i = 0; i < n; i++) {
            paths[i] = tr_store_blob_path(s, sha[i]);
            if (access(paths[i], R_OK) == 0)     /* removed since the hunt */
                e[ne++] = (tr_zip_entry){sha[i], paths[i]};
        }
        tr_store_close(s);
        char name[64];
        snprintf(name, sizeof name, "hunt-%lld.zip", (long long)id);
        rc = http_send_aes_zip(r, e, ne, name);
        for (size_t i = 0; i < n; i++)
            free(paths[i]);
        free(paths);
        free(e);
    }
    for (size_t i = 0; i < n; i++)
        free(sha[i]);
    free(sha);
    return rc;
}

static int64_t query_count(http_request *r, const char *key, int64_t dflt)
{
    const char *v = http_query(r, key);
    if (!v)
        return dflt;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    return *v && !*end && n >= 0 ? n : -1;
}

/* Results grouped by sample, a page of samples at a time (?offset=&limit=,
 * ?rule= for one rule's, ?sample= for one sample's, ?matches= for at most so
 * many results in full a sample), with the per-rule counts of the hunt. */
static enum MHD_Result results_by_sample(http_request *r, int64_t id)
{
    int64_t offset = query_count(r, "offset", 0), limit = query_count(r, "limit", 50);
    if (offset < 0 || limit < 0 || limit > 500)
        return http_send_error(r, 400, "offset >= 0 and limit from 0 to 500, please");
    int64_t per = query_count(r, "matches", 0);
    if (per < 0)
        return http_send_error(r, 400, "matches: results shown a sample, a whole number (0: all)");
    const char *rule = http_query(r, "rule"), *sha = http_query(r, "sample");
    char norm[TR_SHA256_HEX];
    if (sha && *sha && (strlen(sha) != 64 || !tr_hash_normalize(sha, norm, sizeof norm)))
        return http_send_error(r, 400, "sample: a sha256");
    tr_hunt_sample_page pg = {.rule = rule && *rule ? rule : NULL,
                              .sha256 = sha && *sha ? norm : NULL,
                              .offset = offset, .limit = limit ? limit : 50, .per_sample = per};
    json_t *page = NULL, *counts = NULL;
    int64_t total = 0;
    tr_error err;
    if (tr_hunt_results_by_sample(r->data_dir, id, &pg, &page, &total, &err) != 0)
        return http_send_error(r, 500, "%s", err.msg);
    if (tr_hunt_rule_counts(r->data_dir, id, &counts, &err) != 0) {
        json_decref(page);
        return http_send_error(r, 500, "%s", err.msg);
    }
    return http_send_json(r, 200, json_pack("{s:s, s:I, s:I, s:o, s:o}", "query_status", "ok",
                                            "total", (json_int_t)total, "offset",
                                            (json_int_t)offset, "rules", counts, "data", page));
}

enum MHD_Result api_hunts(http_request *r)
{
    if (!*r->rest)
        return strcmp(r->method, "POST") == 0 ? submit(r) : list_jobs(r);
    int64_t id = 0;
    if (!parse_id(r->rest, &id))
        return http_send_error(r, 400, "'%s' is not a hunt id", r->rest);
    const char *sub = strchr(r->rest, '/');
    tr_hunt_job job;
    tr_error err;
    int found = tr_hunt_get(r->data_dir, id, &job, &err);
    if (found < 0)
        return http_send_error(r, 500, "%s", err.msg);
    if (found == 0)
        return http_send_error(r, 404, "no hunt %lld", (long long)id);
    enum MHD_Result rc;
    if (strcmp(r->method, "DELETE") == 0) {
        if (job.status == TR_HUNT_RUNNING)
            rc = http_send_error(r, 409, "hunt %lld is running: cancel it first", (long long)id);
        else if (tr_hunt_delete(r->data_dir, id, &err) != 1)
            rc = http_send_error(r, 500, "%s", err.msg);
        else
            rc = http_send_json(r, 200, json_pack("{s:s}", "query_status", "deleted"));
    } else if (sub && strcmp(sub, "/cancel") == 0) {
        int sent = http_hunt_cancel(r->srv, id);
        if (!sent && job.status == TR_HUNT_QUEUED)
            sent = tr_hunt_cancel_queued(r->data_dir, id, &err) == 1;
        rc = sent ? http_send_json(r, 202, json_pack("{s:s}", "query_status", "cancelling"))
                  : http_send_error(r, 409, "hunt %lld is %s, not running", (long long)id,
                                    tr_hunt_status_name(job.status));
    } else if (sub && strcmp(sub, "/results") == 0) {
        int64_t offset = query_count(r, "offset", 0), limit = query_count(r, "limit", 100);
        json_t *page = NULL;
        int64_t total = 0;
        if (offset < 0 || limit < 0 || limit > 1000)
            rc = http_send_error(r, 400, "offset >= 0 and limit from 0 to 1000, please");
        else if (tr_hunt_results_page(r->data_dir, id, offset, limit ? limit : 100, &page, &total,
                                      &err) != 0)
            rc = http_send_error(r, 500, "%s", err.msg);
        else
            rc = http_send_json(r, 200, json_pack("{s:s, s:I, s:I, s:o}", "query_status", "ok",
                                                  "total", (json_int_t)total, "offset",
                                                  (json_int_t)offset, "data", page));
    } else if (sub && strcmp(sub, "/samples") == 0) {
        rc = results_by_sample(r, id);
    } else if (sub && strcmp(sub, "/hashes") == 0) {
        rc = send_hashes(r, id);
    } else if (sub && strcmp(sub, "/download") == 0) {
        rc = send_zip(r, id);
    } else if (sub && strcmp(sub, "/rules") == 0) {
        json_t *rules = tr_hunt_rules_json(r->data_dir, id, &err);
        rc = rules ? http_send_json(r, 200, json_pack("{s:s, s:o}", "query_status", "ok", "data", rules))
                   : http_send_error(r, 500, "%s", err.msg);
    } else if (!sub) {
        json_t *o = job_with_progress(r, &job);
        rc = http_send_json(r, 200, o);
    } else {
        rc = http_send_error(r, 404, "no endpoint %s", r->path);
    }
    tr_hunt_job_clear(&job);
    return rc;
}

enum MHD_Result api_jobs(http_request *r)
{
    tr_hunt_job *jobs = NULL;
    size_t n = 0;
    tr_error err;
    if (tr_hunt_list(r->data_dir, &jobs, &n, &err) != 0)
        return http_send_error(r, 500, "%s", err.msg);
    size_t queued = 0;
    for (size_t i = 0; i < n; i++)
        queued += jobs[i].status == TR_HUNT_QUEUED;
    tr_hunt_list_free(jobs, n);
    unsigned running = 0, workers = 0;
    http_hunt_counts(r->srv, &running, &workers);
    return http_send_json(r, 200, json_pack("{s:i, s:I, s:i}", "running", (int)running, "queued",
                                            (json_int_t)queued, "workers", (int)workers));
}

static json_t *hit_json(const tr_live_hit *h)
{
    char t[32];
    tr_format_time(h->created, t);
    return json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s}", "sha256", h->sha256, "ruleset", h->ruleset,
                     "rule", h->rule, "author", h->author, "description", h->description,
                     "created", t);
}

enum MHD_Result api_rules(http_request *r)
{
    tr_error err;
    if (!*r->rest && strcmp(r->method, "GET") == 0) {
        tr_live_ruleset *l = NULL;
        size_t n = 0;
        if (tr_live_list(r->data_dir, &l, &n, &err) != 0)
            return http_send_error(r, 500, "%s", err.msg);
        json_t *data = json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *failure = json_null();
            if (l[i].failure) {
                char t[32];
                tr_format_time(l[i].failed_at, t);
                failure = json_pack("{s:s, s:s%}", "time", t, "message", l[i].failure,
                                    strlen(l[i].failure));
            }
            json_array_append_new(data, json_pack("{s:s, s:b, s:I, s:I, s:o}", "name", l[i].name,
                                                  "enabled", l[i].enabled, "rule_count",
                                                  (json_int_t)l[i].rules, "hits",
                                                  (json_int_t)l[i].hits, "last_failure",
                                                  failure ? failure : json_null()));
        }
        tr_live_list_free(l, n);
        /* Uploads whose live scan has not finished yet. */
        return http_send_json(r, 200, json_pack("{s:s, s:o, s:I}", "query_status", "ok", "data",
                                                data, "scans_pending",
                                                (json_int_t)http_live_backlog(r->srv)));
    }
    if (!*r->rest) {                       /* POST: add a rule set */
        enum MHD_Result sent = MHD_NO;
        json_t *body = http_json_body(r, &sent);
        if (!body)
            return sent;
        const char *name = json_string_value(json_object_get(body, "name"));
        const char *text = json_string_value(json_object_get(body, "rule"));
        bool retro = json_is_true(json_object_get(body, "retro"));
        bool replace = json_is_true(json_object_get(body, "replace"));
        enum MHD_Result rc;
        bool name_ok = name && *name && strlen(name) <= 64;
        for (const char *p = name; name_ok && *p; p++)
            name_ok = isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.';
        if (!name_ok || !text || !*text) {
            rc = http_send_error(r, 400, "expected {\"name\": [A-Za-z0-9_.-]{1,64}, \"rule\": TEXT,"
                                         " \"retro\"?: bool, \"replace\"?: bool}");
        } else if (tr_live_add(r->data_dir, name, name, text, strlen(text), false, replace,
                               &err) != 0) {
            rc = strstr(err.msg, "exists") ? http_send_error(r, 409, "%s", err.msg)
                                            : rule_error(r, err.msg);
        } else {
            json_t *out = json_pack("{s:s, s:s}", "query_status", "ok", "name", name);
            if (retro) {
                tr_hunt_source src = {name, text, strlen(text)};
                tr_hunt_params p = {.sources = &src, .nsources = 1, .live_ruleset = name};
                int64_t id = 0;
                if (tr_hunt_submit(r->data_dir, &p, &id, &err) == 0) {
                    json_object_set_new(out, "retrohunt", json_integer(id));
                    http_hunts_kick(r->srv);
                }
            }
            rc = http_send_json(r, 201, out);
        }
        json_decref(body);
        return rc;
    }
    char name[128];
    size_t nlen = strcspn(r->rest, "/");
    if (nlen == 0 || nlen >= sizeof name)
        return http_send_error(r, 400, "bad rule set name");
    memcpy(name, r->rest, nlen);
    name[nlen] = '\0';
    const char *sub = r->rest + nlen;
    if (strcmp(r->method, "DELETE") == 0 && !*sub) {
        int rc = tr_live_remove(r->data_dir, name, &err);
        if (rc < 0)
            return http_send_error(r, 500, "%s", err.msg);
        return rc ? http_send_json(r, 200, json_pack("{s:s}", "query_status", "deleted"))
                  : http_send_error(r, 404, "no live rule set '%s'", name);
    }
    if (strcmp(r->method, "POST") == 0 && (strcmp(sub, "/enable") == 0 || strcmp(sub, "/disable") == 0)) {
        int rc = tr_live_enable(r->data_dir, name, strcmp(sub, "/enable") == 0, &err);
        if (rc < 0)
            return http_send_error(r, 500, "%s", err.msg);
        return rc ? http_send_json(r, 200, json_pack("{s:s}", "query_status", "ok"))
                  : http_send_error(r, 404, "no live rule set '%s'", name);
    }
    if (strcmp(r->method, "GET") == 0 && strcmp(sub, "/hits") == 0) {
        tr_live_hit *hits = NULL;
        size_t n = 0;
        int64_t limit = query_count(r, "limit", 100), offset = query_count(r, "offset", 0), total;
        if (limit < 0 || offset < 0)
            return http_send_error(r, 400, "limit and offset must be whole numbers");
        if (tr_live_hits_page(r->data_dir, name, offset, limit, &hits, &n, &total, &err) != 0)
            return http_send_error(r, 500, "%s", err.msg);
        json_t *data = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(data, hit_json(&hits[i]));
        tr_live_hits_free(hits, n);
        return http_send_json(r, 200, json_pack("{s:s, s:I, s:I, s:o}", "query_status", "ok",
                                                "total", (json_int_t)total, "offset",
                                                (json_int_t)offset, "data", data));
    }
    if (strcmp(r->method, "GET") == 0 && !*sub) {
        char *text = NULL;
        int rc = tr_live_get_text(r->data_dir, name, &text, &err);
        if (rc < 0)
            return http_send_error(r, 500, "%s", err.msg);
        if (rc == 0)
            return http_send_error(r, 404, "no live rule set '%s'", name);
        enum MHD_Result sent = http_send_json(r, 200, json_pack("{s:s, s:s, s:s}", "query_status", "ok",
                                                                "name", name, "rule", text));
        free(text);
        return sent;
    }
    return http_send_error(r, 404, "no endpoint %s %s", r->method, r->path);
}
