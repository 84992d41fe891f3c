/* /api/health, /api/whoami, /api/index and /api/samples[/{hash}[/...]]. */
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "http/http_internal.h"
#include "hunt/hunt.h"
#include "index/index.h"
#include "ingest/ingest.h"
#include "http/samples_query.h"
#include "store/store.h"

static int open_ro(http_request *r, tr_store **s, tr_error *err)
{
    return tr_store_open(r->data_dir, TR_STORE_READONLY, s, err);
}

enum MHD_Result api_health(http_request *r)
{
    tr_store *s;
    tr_error err;
    if (open_ro(r, &s, &err) != 0)
        return http_send_error(r, 503, "%s", err.msg);
    tr_store_stats st;
    int rc = tr_store_stats_get(s, &st, &err);
    tr_store_close(s);
    if (rc != 0)
        return http_send_error(r, 503, "%s", err.msg);
    return http_send_json(r, 200,
                          json_pack("{s:s, s:I, s:I}", "status", "ok", "samples",
                                    (json_int_t)st.samples, "bytes", (json_int_t)st.bytes));
}

enum MHD_Result api_whoami(http_request *r)
{
    return http_send_json(r, 200,
                          json_pack("{s:s, s:o, s:b}", "role", tr_role_name(r->role), "key",
                                    r->authenticated ? json_string(r->key_name) : json_null(),
                                    "authenticated", r->authenticated));
}

enum MHD_Result api_index_status(http_request *r)
{
    char *dir = tr_xasprintf("%s/index", r->data_dir);
    tr_index *ix = NULL;
    tr_error err;
    tr_index_status st;
    int rc = tr_index_open(dir, &ix, &err);
    free(dir);
    if (rc == 0)
        rc = tr_index_get_status(ix, &st, &err);
    tr_index_close(ix);
    if (rc != 0)
        return http_send_error(r, 503, "%s", err.msg);
    json_t *kinds = json_object();
    for (int k = 0; k < TR_GRAM_KINDS; k++)
        json_object_set_new(kinds, tr_gram_kind_name(k),
                            json_pack("{s:I, s:I, s:I}", "bytes", (json_int_t)st.kind_bytes[k],
                                      "keys", (json_int_t)st.kind_keys[k], "postings",
                                      (json_int_t)st.postings[k]));
    return http_send_json(r, 200,
                          json_pack("{s:I, s:I, s:I, s:I, s:o}", "segments", (json_int_t)st.segments,
                                    "documents", (json_int_t)st.docs, "tombstones",
                                    (json_int_t)st.tombstones, "bytes",
                                    (json_int_t)st.bytes_total, "kinds", kinds));
}

static int parse_count(const char *v, int64_t dflt, int64_t max, int64_t *out)
{
    if (!v) {
        *out = dflt;
        return 0;
    }
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || n < 0 || n > max)
        return -1;
    *out = n;
    return 0;
}

/* The {hash} of /api/samples/{hash}/...: normalised into out, or an answer
 * already sent. */
static bool take_hash(http_request *r, char out[TR_SHA256_HEX], enum MHD_Result *sent)
{
    char h[128];
    size_t n = strcspn(r->rest, "/");
    if (n >= sizeof h) {
        *sent = http_send_error(r, 400, "not an md5, sha1 or sha256 hash");
        return false;
    }
    memcpy(h, r->rest, n);
    h[n] = '\0';
    if (!tr_hash_normalize(h, out, TR_SHA256_HEX)) {
        *sent = http_send_error(r, 400, "'%s' is not an md5, sha1 or sha256 hash", h);
        return false;
    }
    return true;
}

/* Loads the sample named in the path, or answers 404/5xx. */
static tr_sample *load_sample(http_request *r, enum MHD_Result *sent)
{
    char hash[TR_SHA256_HEX];
    if (!take_hash(r, hash, sent))
        return NULL;
    tr_store *s;
    tr_error err;
    if (open_ro(r, &s, &err) != 0) {
        *sent = http_send_error(r, 503, "%s", err.msg);
        return NULL;
    }
    tr_sample *x = NULL;
    int found = tr_store_get(s, hash, &x, &err);
    tr_store_close(s);
    if (found < 0)
        *sent = http_send_error(r, 500, "%s", err.msg);
    else if (found == 0)
        *sent = http_send_error(r, 404, "no sample with hash %s", hash);
    return found == 1 ? x : NULL;
}

/* "YYYY-MM-DD" or "YYYY-MM-DD HH:MM:SS" (UTC) -> unix seconds; a bare date
 * ends at its midnight, or at the next one when end_of_day is set (an
 * "until" date includes its own day). */
static bool parse_date(const char *v, bool end_of_day, int64_t *out)
{
    struct tm tm = {0};
    int len = 0;
    bool bare = true;
    if (sscanf(v, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &len) != 3)
        return false;
    if (v[len]) {
        int len2 = 0;
        if ((v[len] != ' ' && v[len] != 'T') ||
            sscanf(v + len + 1, "%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &len2) != 3 ||
            v[len + 1 + len2])
            return false;
        bare = false;
    }
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_hour < 0 || tm.tm_min < 0 || tm.tm_sec < 0)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = (int64_t)timegm(&tm) + (bare && end_of_day ? 86400 : 0);
    return true;
}

static bool is_hex(const char *v)
{
    for (; *v; v++)
        if (!isxdigit((unsigned char)*v))
            return false;
    return true;
}

int http_samples_query_parse(http_param_fn get, void *ctx, samples_query *q, char *msg,
                             size_t msgsz)
{
#define BAD(...) (snprintf(msg, msgsz, __VA_ARGS__), -1)
    memset(q, 0, sizeof *q);
    tr_sample_filter *f = &q->f;
    f->tag = get(ctx, "tag");
    f->signature = get(ctx, "signature");
    f->file_type = get(ctx, "type");
    f->reporter = get(ctx, "reporter");
    f->name = get(ctx, "name");
    f->imphash = get(ctx, "imphash");
    f->tlsh = get(ctx, "tlsh");
    if (parse_count(get(ctx, "limit"), 100, 1000, &f->limit) != 0)
        return BAD("limit must be a whole number from 0 to 1000");
    if (parse_count(get(ctx, "offset"), 0, INT64_MAX / 2, &f->offset) != 0)
        return BAD("offset must be a whole number >= 0");
    if (f->limit == 0)
        f->limit = 100;
    const char *since = get(ctx, "since"), *until = get(ctx, "until");
    if (since && *since && !parse_date(since, false, &f->first_seen_after))
        return BAD("since: expected YYYY-MM-DD or 'YYYY-MM-DD HH:MM:SS'");
    if (until && *until && !parse_date(until, true, &f->first_seen_before))
        return BAD("until: expected YYYY-MM-DD or 'YYYY-MM-DD HH:MM:SS'");
    const char *sort = get(ctx, "sort"), *order = get(ctx, "order");
    if (sort && *sort && !tr_sample_sort_parse(sort, &f->sort))
        return BAD("sort: one of newest, first_seen, last_seen, size, type, signature, reporter");
    if (order && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0)
        return BAD("order: asc or desc");
    f->ascending = order && strcmp(order, "asc") == 0;
    /* Empty parameters are the UI's blank fields: no filter. */
    const char **fields[] = {&f->tag, &f->signature, &f->file_type, &f->reporter, &f->name,
                             &f->imphash, &f->tlsh};
    for (size_t k = 0; k < sizeof fields / sizeof *fields; k++)
        if (*fields[k] && !**fields[k])
            *fields[k] = NULL;
    const char *hash = get(ctx, "hash");
    if (hash && *hash) {
        size_t hl = strlen(hash);
        if (tr_hash_normalize(hash, q->norm, sizeof q->norm))
            q->exact = true;
        else if (hl >= 8 && hl < 64 && is_hex(hash))
            f->hash_prefix = hash;
        else
            return BAD("'%.80s' is neither an md5, sha1 or sha256 hash nor a prefix of at least"
                       " 8 hex digits", hash);
    }
    return 0;
#undef BAD
}

static const char *request_param(void *ctx, const char *name)
{
    return http_query(ctx, name);
}

static enum MHD_Result list_samples(http_request *r)
{
    samples_query q;
    char msg[256];
    if (http_samples_query_parse(request_param, r, &q, msg, sizeof msg) != 0)
        return http_send_error(r, 400, "%s", msg);
    tr_sample_filter f = q.f;
    bool exact = q.exact;
    const char *norm = q.norm;
    tr_store *s;
    tr_error err;
    if (open_ro(r, &s, &err) != 0)
        return http_send_error(r, 503, "%s", err.msg);
    tr_sample **list = NULL;
    size_t n = 0;
    int64_t total = 0;
    int rc = 0;
    if (exact) {
        /* Search by any full hash: zero or one result, same shape as a list. */
        tr_sample *x = NULL;
        rc = tr_store_get(s, norm, &x, &err);
        if (rc == 1) {
            list = tr_xcalloc(1, sizeof *list);
            list[0] = x;
            n = 1;
        }
        total = (int64_t)n;
        rc = rc < 0 ? -1 : 0;
    } else {
        rc = tr_store_list(s, &f, &list, &n, &err);
        if (rc == 0)
            rc = tr_store_count(s, &f, &total, &err);
    }
    tr_store_close(s);
    if (rc != 0) {
        tr_sample_list_free(list, n);
        return http_send_error(r, 500, "%s", err.msg);
    }
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, tr_sample_to_json(list[i]));
    tr_sample_list_free(list, n);
    return http_send_json(r, 200,
                          json_pack("{s:s, s:I, s:I, s:I, s:I, s:o}", "query_status", "ok",
                                    "count", (json_int_t)n, "total", (json_int_t)total, "limit",
                                    (json_int_t)f.limit, "offset", (json_int_t)f.offset, "data",
                                    data));
}

/* trawl's addition to a sample's answer: what duplicate uploads changed,
 * [{"time", "field", "old", "new", "reporter"}] ([] when unreadable). */
static json_t *changes_json(http_request *r, int64_t id)
{
    json_t *arr = json_array();
    tr_store *s;
    tr_error err;
    if (open_ro(r, &s, &err) != 0)
        return arr;
    tr_sample_change *c = NULL;
    size_t n = 0;
    if (tr_store_sample_changes(s, id, &c, &n, &err) == 0) {
        for (size_t i = 0; i < n; i++) {
            char t[32];
            tr_format_time(c[i].time, t);
            json_array_append_new(arr, json_pack("{s:s, s:s?, s:s?, s:s?, s:s?}", "time", t,
                                                 "field", c[i].field, "old", c[i].old_value,
                                                 "new", c[i].new_value, "reporter",
                                                 c[i].reporter));
        }
        tr_sample_changes_free(c, n);
    }
    tr_store_close(s);
    return arr;
}

enum MHD_Result api_samples(http_request *r)
{
    if (!*r->rest)
        return list_samples(r);
    enum MHD_Result sent = MHD_NO;
    if (strcmp(r->method, "DELETE") == 0) {
        char hash[TR_SHA256_HEX];
        if (!take_hash(r, hash, &sent))
            return sent;
        tr_error err;
        int64_t id = 0;
        int rc = tr_ingest_remove(r->data_dir, hash, &id, &err);
        if (rc < 0)
            return http_send_error(r, 500, "%s", err.msg);
        if (rc == 0)
            return http_send_error(r, 404, "no sample with hash %s", hash);
        return http_send_json(r, 200, json_pack("{s:s, s:I}", "query_status", "deleted", "id",
                                                (json_int_t)id));
    }
    tr_sample *x = load_sample(r, &sent);
    if (!x)
        return sent;
    json_t *o = tr_sample_to_json(x);
    tr_error herr;
    json_t *hits = tr_hunt_live_hits_json(r->data_dir, x->id, &herr);
    json_object_set_new(o, "yara_rules", hits ? hits : json_null());
    /* trawl's own addition: the retrohunts that matched it (the newest 100). */
    json_t *hm = NULL;
    if (tr_hunt_matches_for_sample(r->data_dir, x->id, 100, &hm, &herr) == 0)
        json_object_set_new(o, "hunt_matches", hm);
    json_object_set_new(o, "changes", changes_json(r, x->id));
    json_t *body = json_pack("{s:s, s:o}", "query_status", "ok", "data", o);
    tr_sample_free(x);
    return http_send_json(r, 200, body);
}

/* The sample as an AES-256 zip with password "infected", the form analysts
 * exchange malware in; built in tmp/ and streamed from there. */
enum MHD_Result http_send_sample_zip(http_request *r, const tr_sample *x)
{
    tr_store *s;
    tr_error err;
    if (open_ro(r, &s, &err) != 0)
        return http_send_error(r, 503, "%s", err.msg);
    char *blob = tr_store_blob_path(s, x->d.sha256);
    tr_store_close(s);
    char *inner = tr_xasprintf("%s.%s", x->d.sha256,
                               x->file_type && *x->file_type ? x->file_type : "bin");
    char *name = tr_xasprintf("%s.zip", x->d.sha256);
    tr_zip_entry e = {inner, blob};
    enum MHD_Result rc = http_send_aes_zip(r, &e, 1, name);
    free(name);
    free(inner);
    free(blob);
    return rc;
}

enum MHD_Result api_sample_download(http_request *r)
{
    enum MHD_Result sent = MHD_NO;
    tr_sample *x = load_sample(r, &sent);
    if (!x)
        return sent;
    sent = http_send_sample_zip(r, x);
    tr_sample_free(x);
    return sent;
}

static int open_rw(http_request *r, tr_store **s, tr_error *err)
{
    return tr_store_open(r->data_dir, 0, s, err);
}

/* POST {"tags": [...]} adds; DELETE .../tags/{tag} removes one. */
enum MHD_Result api_sample_tags(http_request *r)
{
    enum MHD_Result sent = MHD_NO;
    tr_sample *x = load_sample(r, &sent);
    if (!x)
        return sent;
    int64_t id = x->id;
    tr_sample_free(x);
    tr_store *s;
    tr_error err;
    if (strcmp(r->method, "DELETE") == 0) {
        const char *tag = strstr(r->rest, "/tags/") + 6;
        if (!*tag)
            return http_send_error(r, 400, "which tag? DELETE /api/samples/HASH/tags/TAG");
        if (open_rw(r, &s, &err) != 0)
            return http_send_error(r, 503, "%s", err.msg);
        int rc = tr_store_remove_tag(s, id, tag, &err);
        tr_store_close(s);
        if (rc < 0)
            return http_send_error(r, 500, "%s", err.msg);
        if (rc == 0)
            return http_send_error(r, 404, "the sample has no tag '%s'", tag);
        return http_send_json(r, 200, json_pack("{s:s}", "query_status", "ok"));
    }
    json_t *body = http_json_body(r, &sent);
    if (!body)
        return sent;
    json_t *tags = json_object_get(body, "tags");
    size_t i;
    json_t *t;
    if (!json_is_array(tags) || json_array_size(tags) == 0 || json_array_size(tags) > 100) {
        json_decref(body);
        return http_send_error(r, 400, "expected {\"tags\": [\"tag\", ...]} with 1 to 100 tags");
    }
    const char **list = tr_xcalloc(json_array_size(tags), sizeof *list);
    json_array_foreach(tags, i, t) {
        const char *v = json_string_value(t);
        if (!v || !*v || strlen(v) > 128) {
            free(list);
            json_decref(body);
            return http_send_error(r, 400, "tags are non-empty strings of at most 128 bytes");
        }
        list[i] = v;
    }
    int rc = open_rw(r, &s, &err);
    if (rc == 0) {
        rc = tr_store_add_tags(s, id, list, json_array_size(tags), &err);
        tr_store_close(s);
    }
    free(list);
    json_decref(body);
    if (rc != 0)
        return http_send_error(r, 500, "%s", err.msg);
    return http_send_json(r, 200, json_pack("{s:s}", "query_status", "ok"));
}

enum MHD_Result api_sample_comments(http_request *r)
{
    enum MHD_Result sent = MHD_NO;
    tr_sample *x = load_sample(r, &sent);
    if (!x)
        return sent;
    if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0) {
        json_t *j = tr_sample_to_json(x);
        json_t *body = json_pack("{s:s, s:O}", "query_status", "ok", "data",
                                 json_object_get(j, "comments"));
        json_decref(j);
        tr_sample_free(x);
        return http_send_json(r, 200, body);
    }
    int64_t id = x->id;
    tr_sample_free(x);
    json_t *body = http_json_body(r, &sent);
    if (!body)
        return sent;
    const char *text = json_string_value(json_object_get(body, "text"));
    if (!text || !*text || strlen(text) > 65536) {
        json_decref(body);
        return http_send_error(r, 400, "expected {\"text\": \"...\"} of 1 to 65536 bytes");
    }
    tr_store *s;
    tr_error err;
    int rc = open_rw(r, &s, &err);
    if (rc == 0) {
        rc = tr_store_add_comment(s, id, r->key_name[0] ? r->key_name : NULL, text, &err);
        tr_store_close(s);
    }
    json_decref(body);
    if (rc != 0)
        return http_send_error(r, 500, "%s", err.msg);
    return http_send_json(r, 201, json_pack("{s:s}", "query_status", "ok"));
}
