/* POST /api/v1/: MalwareBazaar's API (form queries and uploads), so that
 * scripts and integrations written for Bazaar work against trawl. Answers
 * use Bazaar's query_status words with HTTP 200, as Bazaar does; refusals
 * decided before the handler (no key, wrong method) use its words too.
 * Keys come as "Auth-Key" (Bazaar's header), the older "API-KEY", or the
 * usual Authorization: Bearer. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http_internal.h"
#include "hunt/hunt.h"
#include "store/store.h"

enum MHD_Result http_bazaar_status(http_request *r, const char *status)
{
    return http_send_json(r, 200, json_pack("{s:s}", "query_status", status));
}

/* Sources of these words: docs/api.md, "Where the status words come from".
 * unknown_auth_key is abuse.ch's word for an unknown key (URLhaus, ThreatFox);
 * file_too_large is trawl's own (Bazaar documents no size refusal). */
enum MHD_Result http_send_bazaar_error(http_request *r, unsigned status, const char *msg)
{
    const char *word = "illegal_request";
    if (status == 405)
        word = "http_post_expected";
    else if (status == 401 && strncmp(msg, "unknown API key", 15) == 0) {
        /* Bazaar answers a key it does not know with 403 Forbidden, and
         * no key at all with 401 (OpenCTI's connector issues #5097, #4221). */
        word = "unknown_auth_key";
        status = 403;
    } else if (status == 401)
        word = "no_api_key";
    else if (status == 403)
        word = "user_blacklisted";
    else if (status == 413)
        word = "file_too_large";
    else if (status == 400)
        word = "illegal_form_data";
    else if (status >= 500)
        word = "server_error";
    return http_send_json(r, status, json_pack("{s:s, s:s}", "query_status", word, "error", msg));
}

static enum MHD_Result status_only(http_request *r, const char *status)
{
    return http_bazaar_status(r, status);
}

/* The record of one sample, fields computed outside the store included. */
static json_t *record(http_request *r, tr_store *s, const tr_sample *x, bool full)
{
    tr_sample_bazaar bz;
    tr_error err;
    if (tr_store_bazaar_get(s, x->id, &bz, &err) != 0) {
        tr_log(TR_LOG_WARN, "bazaar fields of sample %lld: %s", (long long)x->id, err.msg);
        memset(&bz, 0, sizeof bz);
    }
    json_t *extra = json_object();
    if (full) {
        json_t *hits = tr_hunt_live_hits_json(r->data_dir, x->id, &err);
        if (hits)
            json_object_set_new(extra, "yara_rules", hits);
        else
            tr_log(TR_LOG_WARN, "live hits of sample %lld: %s", (long long)x->id, err.msg);
    }
    /* Further analyses add their fields to extra here. */
    json_t *j = tr_sample_to_bazaar_json(x, &bz, extra, full);
    json_decref(extra);
    tr_sample_bazaar_clear(&bz);
    return j;
}

static enum MHD_Result send_records(http_request *r, tr_store *s, tr_sample **items, size_t n,
                                    const char *no_results)
{
    if (n == 0) {
        tr_store_close(s);
        return status_only(r, no_results);
    }
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, record(r, s, items[i], false));
    tr_store_close(s);
    tr_sample_list_free(items, n);
    return http_send_json(r, 200, json_pack("{s:s, s:o}", "query_status", "ok", "data", data));
}

/* Bazaar's limit: 1..1000, 100 when absent. 0 with the answer sent when bad. */
static int read_limit(http_request *r, int64_t *limit, enum MHD_Result *sent)
{
    const char *v = http_upload_field(r->upload, "limit");
    *limit = 100;
    if (v && *v) {
        char *end = NULL;
        long n = strtol(v, &end, 10);
        if (*end || n < 1) {
            *sent = status_only(r, "illegal_limit");
            return 0;
        }
        *limit = n > 1000 ? 1000 : n;
    }
    return 1;
}

enum MHD_Result http_bazaar_list(http_request *r, tr_sample_filter *f, const char *no_results)
{
    enum MHD_Result sent = MHD_NO;
    if (!f->limit && !read_limit(r, &f->limit, &sent))
        return sent;
    tr_store *s;
    tr_error err;
    if (tr_store_open(r->data_dir, TR_STORE_READONLY, &s, &err) != 0)
        return http_send_error(r, 503, "%s", err.msg);
    tr_sample **items = NULL;
    size_t n = 0;
    if (tr_store_list(s, f, &items, &n, &err) != 0) {
        tr_store_close(s);
        return http_send_error(r, 500, "%s", err.msg);
    }
    return send_records(r, s, items, n, no_results);
}

static int find(http_request *r, const char *hash, tr_sample **x, enum MHD_Result *sent)
{
    tr_store *s;
    tr_error err;
    if (tr_store_open(r->data_dir, TR_STORE_READONLY, &s, &err) != 0) {
        *sent = http_send_error(r, 503, "%s", err.msg);
        return -1;
    }
    int found = tr_store_get(s, hash, x, &err);
    tr_store_close(s);
    if (found < 0)
        *sent = http_send_error(r, 500, "%s", err.msg);
    return found;
}

/* The sample a hash field names, with Bazaar's status words when there is
 * none: 1 found (*x set), else 0 with the answer already sent. */
static int lookup(http_request *r, const char *field, bool sha256_only, const char *missing,
                  const char *illegal, const char *not_found, tr_sample **x, enum MHD_Result *sent)
{
    const char *hash = http_upload_field(r->upload, field);
    char norm[TR_SHA256_HEX];
    size_t len = hash && *hash ? tr_hash_normalize(hash, norm, sizeof norm) : 0;
    if (!hash || !*hash)
        *sent = status_only(r, missing);
    else if (len == 0 || (sha256_only && len != 64))
        *sent = status_only(r, illegal);
    else {
        int found = find(r, norm, x, sent);
        if (found == 1)
            return 1;
        if (found == 0)
            *sent = status_only(r, not_found);
    }
    return 0;
}

static bool all_hex(const char *s, size_t len)
{
    if (strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* Bazaar's tag alphabet: [A-Za-z0-9.- ]. */
static bool tag_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 100)
        return false;
    for (const char *p = t; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".- ", *p))
            return false;
    return true;
}

static bool text_ok(const char *t, size_t max)
{
    size_t n = strlen(t);
    if (n == 0 || n > max)
        return false;
    for (const char *p = t; *p; p++)
        if ((unsigned char)*p < 0x20)
            return false;
    return true;
}

static bool rule_name_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 128 || isdigit((unsigned char)t[0]))
        return false;
    for (const char *p = t; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return false;
    return true;
}

/* TLSH as Bazaar shows it: "T1" and 70 hex digits (also accepted bare). */
static bool tlsh_ok(const char *t)
{
    if ((t[0] == 'T' || t[0] == 't') && t[1] == '1')
        t += 2;
    return all_hex(t, 70);
}

static enum MHD_Result get_info(http_request *r)
{
    enum MHD_Result sent = MHD_NO;
    tr_sample *x = NULL;
    if (!lookup(r, "hash", false, "no_hash_provided", "illegal_hash", "hash_not_found", &x, &sent))
        return sent;
    tr_store *s;
    tr_error err;
    if (tr_store_open(r->data_dir, TR_STORE_READONLY, &s, &err) != 0) {
        tr_sample_free(x);
        return http_send_error(r, 503, "%s", err.msg);
    }
    json_t *data = json_array();
    json_array_append_new(data, record(r, s, x, true));
    tr_store_close(s);
    tr_sample_free(x);
    return http_send_json(r, 200, json_pack("{s:s, s:o}", "query_status", "ok", "data", data));
}

static enum MHD_Result get_file(http_request *r)
{
    enum MHD_Result sent = MHD_NO;
    tr_sample *x = NULL;
    if (!lookup(r, "sha256_hash", true, "no_sha256_hash", "illegal_sha256_hash", "file_not_found",
                &x, &sent))
        return sent;
    tr_store *s;
    tr_error err;
    if (tr_store_open(r->data_dir, 0, &s, &err) == 0) {
        if (tr_store_bazaar_count(s, x->id, true, &err) != 0)
            tr_log(TR_LOG_WARN, "counting a download: %s", err.msg);
        tr_store_close(s);
    } else {
        tr_log(TR_LOG_WARN, "counting a download: %s", err.msg);
    }
    sent = http_send_sample_zip(r, x);
    tr_sample_free(x);
    return sent;
}

static int add_comment_as(http_request *r, int64_t id, const char *author, const char *text,
                          enum MHD_Result *sent)
{
    tr_store *s;
    tr_error err;
    int rc = tr_store_open(r->data_dir, 0, &s, &err);
    if (rc == 0) {
        rc = tr_store_add_comment(s, id, author, text, &err);
        tr_store_close(s);
    }
    if (rc != 0)
        *sent = http_send_error(r, 500, "%s", err.msg);
    return rc;
}

static enum MHD_Result add_comment(http_request *r)
{
    const char *hash = http_upload_field(r->upload, "sha256_hash");
    const char *comment = http_upload_field(r->upload, "comment");
    char norm[TR_SHA256_HEX];
    if (!hash || tr_hash_normalize(hash, norm, sizeof norm) != 64)
        return status_only(r, "illegal_hash");
    if (!comment || !*comment)
        return status_only(r, "no_comment");
    enum MHD_Result sent = MHD_NO;
    tr_sample *x = NULL;
    int found = find(r, norm, &x, &sent);
    if (found < 0)
        return sent;
    if (found == 0)
        return status_only(r, "hash_not_found");
    int rc = add_comment_as(r, x->id, r->key_name, comment, &sent);
    tr_sample_free(x);
    return rc == 0 ? status_only(r, "success") : sent;
}

/* ---- references and context (upload's json_data, update) ---------------- */

static const char *const reference_keys[] = {"urlhaus", "any_run", "joe_sandbox", "malpedia",
                                              "twitter", "links"};
static const char *const context_keys[] = {"dropped_by_md5",  "dropped_by_sha256",
                                           "dropped_by_malware", "dropping_md5",
                                           "dropping_sha256", "dropping_malware"};

static bool in_list(const char *k, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(k, list[i]) == 0)
            return true;
    return false;
}

#define NKEYS(a) (sizeof(a) / sizeof(a)[0])

static bool url_ok(const char *v)
{
    return text_ok(v, 2048) && (strncmp(v, "https://", 8) == 0 || strncmp(v, "http://", 7) == 0) &&
           !strchr(v, ' ');
}

/* Whether value suits key: URLs for references, hashes for *_md5 and
 * *_sha256, a name for *_malware. */
static bool value_ok(const char *key, const char *v)
{
    if (in_list(key, reference_keys, NKEYS(reference_keys)))
        return url_ok(v);
    size_t n = strlen(key);
    if (n > 4 && strcmp(key + n - 4, "_md5") == 0)
        return all_hex(v, 32);
    if (n > 7 && strcmp(key + n - 7, "_sha256") == 0)
        return all_hex(v, 64);
    return text_ok(v, 200);
}

/* Adds value to key's list in obj: Bazaar keeps every reference and
 * context key as a list of values (the context's comment aside). */
static void put_value(json_t *obj, const char *key, const char *v)
{
    json_t *l = json_object_get(obj, key);
    if (!json_is_array(l)) {
        l = json_array();
        json_object_set_new(obj, key, l);
    }
    size_t i;
    json_t *e;
    json_array_foreach(l, i, e) if (json_is_string(e) && strcmp(json_string_value(e), v) == 0) return;
    json_array_append_new(l, json_string(v));
}

/* Copies the keys of in (an object from json_data) that Bazaar knows into
 * out, each a value or a list of values; false when one is unusable. */
static bool take_keys(json_t *in, const char *const *keys, size_t nkeys, json_t *out)
{
    if (!in)
        return true;
    if (!json_is_object(in))
        return false;
    for (size_t k = 0; k < nkeys; k++) {
        json_t *v = json_object_get(in, keys[k]);
        if (!v || json_is_null(v))
            continue;
        if (json_is_string(v)) {
            if (!value_ok(keys[k], json_string_value(v)))
                return false;
            put_value(out, keys[k], json_string_value(v));
            continue;
        }
        if (!json_is_array(v))
            return false;
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (!json_is_string(e) || !value_ok(keys[k], json_string_value(e)))
                return false;
            put_value(out, keys[k], json_string_value(e));
        }
    }
    return true;
}

static char *dump_or_null(json_t *o)
{
    return json_object_size(o) ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
}

/* ---- upload -------------------------------------------------------------- */

/* A file part and Bazaar's "json_data": anonymous, tags, references,
 * context (comment, dropped_by_* ...), delivery_method; trawl also reads
 * signature, origin and a top-level comment. */
static enum MHD_Result upload(http_request *r)
{
    if (!r->upload->got_file)
        return status_only(r, "file_expected");
    const char *jd = http_upload_field(r->upload, "json_data");
    json_t *meta = NULL;
    if (jd && *jd) {
        json_error_t jerr;
        meta = json_loads(jd, 0, &jerr);
        if (!json_is_object(meta)) {
            json_decref(meta);
            return status_only(r, "illegal_json_data");
        }
    }
    json_t *an = json_object_get(meta, "anonymous");
    bool anonymous = (json_is_integer(an) && json_integer_value(an) == 1) ||
                     (json_is_string(an) && strcmp(json_string_value(an), "1") == 0) ||
                     json_is_true(an);
    const char *tags[64];
    size_t ntags = 0;
    json_t *jt = json_object_get(meta, "tags"), *t;
    size_t i;
    json_array_foreach(jt, i, t)
    {
        if (!json_is_string(t) || !tag_ok(json_string_value(t))) {
            json_decref(meta);
            return status_only(r, "illegal_tags");
        }
        if (ntags < 64)
            tags[ntags++] = json_string_value(t);
    }
    json_t *ctx_in = json_object_get(meta, "context");
    json_t *refs = json_object(), *ctx = json_object();
    if (!take_keys(json_object_get(meta, "references"), reference_keys, NKEYS(reference_keys), refs) ||
        !take_keys(ctx_in, context_keys, NKEYS(context_keys), ctx)) {
        json_decref(refs);
        json_decref(ctx);
        json_decref(meta);
        return status_only(r, "illegal_json_data");
    }
    static const char *const delivery_methods[] = {"email_attachment", "email_link", "web_download",
                                                   "web_drive-by", "multiple", "other"};
    json_t *dm = json_object_get(meta, "delivery_method");
    if (dm && !json_is_null(dm) &&
        (!json_is_string(dm) || !in_list(json_string_value(dm), delivery_methods, NKEYS(delivery_methods)))) {
        json_decref(refs);
        json_decref(ctx);
        json_decref(meta);
        return status_only(r, "illegal_delivery_method");
    }
    const char *comment = json_string_value(json_object_get(ctx_in, "comment"));
    if (!comment)
        comment = json_string_value(json_object_get(meta, "comment"));
    /* Anonymous: the uploader's name is kept only where it is never shown
     * (sample_bazaar.owner), never as reporter or comment author. */
    tr_ingest_meta m = {
        .file_name = r->upload->file_name,
        .tags = tags,
        .n_tags = ntags,
        .reporter = !anonymous && r->key_name[0] ? r->key_name : NULL,
        .signature = json_string_value(json_object_get(meta, "signature")),
        .delivery_method = json_string_value(json_object_get(meta, "delivery_method")),
        .comment = comment,
        .origin = json_string_value(json_object_get(meta, "origin")),
    };
    tr_ingest_result res;
    tr_sample *x = NULL;
    enum MHD_Result sent = MHD_NO;
    int rc = http_upload_commit(r, &m, &res, &x, &sent);
    json_decref(meta);
    char *refs_text = dump_or_null(refs), *ctx_text = dump_or_null(ctx);
    json_decref(refs);
    json_decref(ctx);
    if (rc == 0 && (res.is_new || refs_text || ctx_text)) {
        tr_store *s;
        tr_error err;
        int wrc = tr_store_open(r->data_dir, 0, &s, &err);
        if (wrc == 0) {
            tr_sample_bazaar old;
            wrc = tr_store_bazaar_get(s, x->id, &old, &err);
            /* A known sample keeps what its first uploader said. */
            if (wrc == 0)
                wrc = tr_store_bazaar_set(
                    s, x->id, res.is_new ? anonymous : -1,
                    res.is_new && anonymous && r->key_name[0] ? r->key_name : NULL,
                    old.references ? NULL : refs_text, old.context ? NULL : ctx_text, &err);
            tr_sample_bazaar_clear(&old);
            tr_store_close(s);
        }
        if (wrc != 0)
            tr_log(TR_LOG_WARN, "upload's Bazaar fields: %s", err.msg);
    }
    free(refs_text);
    free(ctx_text);
    if (rc != 0)
        return sent;
    json_t *body = json_pack("{s:s, s:s}", "query_status", res.is_new ? "inserted" : "file_already_known",
                             "sha256_hash", x->d.sha256);
    tr_sample_free(x);
    return http_send_json(r, 200, body);
}

/* ---- update -------------------------------------------------------------- */

/* update: sha256_hash, key, value, as Bazaar takes them. Only the sample's
 * reporter (also an anonymous one) or an admin may. */
static enum MHD_Result update(http_request *r)
{
    const char *key = http_upload_field(r->upload, "key");
    const char *value = http_upload_field(r->upload, "value");
    enum MHD_Result sent = MHD_NO;
    tr_sample *x = NULL;
    if (!lookup(r, "sha256_hash", true, "no_sha256_hash", "illegal_sha256_hash", "hash_not_found",
                &x, &sent))
        return sent;
    int known = key && (strcmp(key, "add_tag") == 0 || strcmp(key, "remove_tag") == 0 ||
                        strcmp(key, "comment") == 0)
                    ? 1
                : key && in_list(key, reference_keys, NKEYS(reference_keys)) ? 2
                : key && in_list(key, context_keys, NKEYS(context_keys))     ? 3
                                                                             : 0;
    const char *bad = !key || !*key                                ? "no_key"
                      : !known                                     ? "unknown_key"
                      : !value || !*value                          ? "no_value"
                      : known == 1 && strcmp(key, "comment") != 0 && !tag_ok(value) ? "illegal_value"
                      : known > 1 && !value_ok(key, value)         ? "illegal_value"
                                                                   : NULL;
    if (bad) {
        tr_sample_free(x);
        return status_only(r, bad);
    }
    tr_store *s;
    tr_error err;
    if (tr_store_open(r->data_dir, 0, &s, &err) != 0) {
        tr_sample_free(x);
        return http_send_error(r, 503, "%s", err.msg);
    }
    tr_sample_bazaar bz;
    int rc = tr_store_bazaar_get(s, x->id, &bz, &err);
    bool mine = (x->reporter && strcmp(x->reporter, r->key_name) == 0) ||
                (bz.owner && strcmp(bz.owner, r->key_name) == 0);
    const char *status = "updated";
    if (rc == 0 && !mine && r->role < TR_ROLE_ADMIN) {
        status = "permission_denied";
    } else if (rc == 0 && strcmp(key, "add_tag") == 0) {
        rc = tr_store_add_tags(s, x->id, &value, 1, &err);
    } else if (rc == 0 && strcmp(key, "remove_tag") == 0) {
        rc = tr_store_remove_tag(s, x->id, value, &err);
        if (rc == 0)
            status = "tag_not_found";
        rc = rc < 0 ? -1 : 0;
    } else if (rc == 0 && strcmp(key, "comment") == 0) {
        rc = tr_store_add_comment(s, x->id, bz.anonymous && mine ? NULL : r->key_name, value,
                                  &err);
    } else if (rc == 0) {
        const char *old = known == 2 ? bz.references : bz.context;
        json_error_t jerr;
        json_t *o = old ? json_loads(old, 0, &jerr) : NULL;
        if (!json_is_object(o)) {
            json_decref(o);
            o = json_object();
        }
        put_value(o, key, value);
        char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(o);
        if (!text)
            tr_die("out of memory building JSON");
        rc = tr_store_bazaar_set(s, x->id, -1, NULL, known == 2 ? text : NULL,
                                 known == 3 ? text : NULL, &err);
        free(text);
    }
    tr_sample_bazaar_clear(&bz);
    tr_store_close(s);
    tr_sample_free(x);
    if (rc != 0)
        return http_send_error(r, 500, "%s", err.msg);
    return status_only(r, status);
}

/* ---- recent and live-rule queries ----------------------------------------- */

static enum MHD_Result get_recent(http_request *r)
{
    const char *v = http_upload_field(r->upload, "selector");
    tr_sample_filter f = {0};
    if (!v || !*v)
        return status_only(r, "no_selector");
    if (strcmp(v, "time") == 0) {
        f.first_seen_after = tr_now_unix() - 3600;   /* Bazaar: the last 60 minutes */
        f.limit = 1000;
    } else if (strcmp(v, "100") == 0) {
        f.limit = 100;
    } else {
        return status_only(r, "unknown_selector");
    }
    return http_bazaar_list(r, &f, "no_results");
}

/* The distinct samples of live hits (newest hit first), up to limit. */
static enum MHD_Result hit_samples(http_request *r, tr_live_hit *h, size_t nh, int64_t limit,
                                   const char *no_results)
{
    tr_store *s;
    tr_error err;
    if (tr_store_open(r->data_dir, TR_STORE_READONLY, &s, &err) != 0) {
        tr_live_hits_free(h, nh);
        return http_send_error(r, 503, "%s", err.msg);
    }
    tr_sample **items = NULL;
    size_t n = 0;
    for (size_t i = 0; i < nh && (int64_t)n < limit; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = h[j].sample_id == h[i].sample_id;
        if (seen)
            continue;
        tr_sample *x = NULL;
        int found = tr_store_get_by_id(s, h[i].sample_id, &x, &err);
        if (found < 0) {
            tr_live_hits_free(h, nh);
            tr_sample_list_free(items, n);
            tr_store_close(s);
            return http_send_error(r, 500, "%s", err.msg);
        }
        if (found == 0)
            continue;                      /* removed since */
        items = tr_xrealloc(items, (n + 1) * sizeof *items);
        items[n++] = x;
    }
    tr_live_hits_free(h, nh);
    if (n == 0)
        free(items);
    return send_records(r, s, items, n, no_results);
}

static enum MHD_Result get_yarainfo(http_request *r)
{
    const char *rule = http_upload_field(r->upload, "yara_rule");
    if (!rule || !*rule)
        return status_only(r, "no_yara_rule_provided");
    if (!rule_name_ok(rule))
        return status_only(r, "illegal_yara_rule");
    int64_t limit;
    enum MHD_Result sent = MHD_NO;
    if (!read_limit(r, &limit, &sent))
        return sent;
    tr_live_hit *h = NULL;
    size_t nh = 0;
    tr_error err;
    if (tr_live_hits_for_rule(r->data_dir, rule, 0, &h, &nh, &err) != 0)
        return http_send_error(r, 500, "%s", err.msg);
    return hit_samples(r, h, nh, limit, "yara_not_found");
}

/* recent_detections: samples that live rules matched in the last `hours`
 * (1..168, 24 when absent). */
static enum MHD_Result recent_detections(http_request *r)
{
    const char *v = http_upload_field(r->upload, "hours");
    long hours = 24;
    if (v && *v) {
        char *end = NULL;
        hours = strtol(v, &end, 10);
        if (*end || hours < 1 || hours > 168)
            return status_only(r, "illegal_hours");
    }
    tr_live_hit *h = NULL;
    size_t nh = 0;
    tr_error err;
    if (tr_live_hits_since(r->data_dir, tr_now_unix() - hours * 3600, 0, &h, &nh, &err) != 0)
        return http_send_error(r, 500, "%s", err.msg);
    return hit_samples(r, h, nh, 1000, "no_results");
}

/* ---- lists by one field ---------------------------------------------------- */

typedef struct field_query {
    const char *query, *field;
    const char *missing, *illegal, *not_found;
    bool (*valid)(const char *v);
    size_t offset;
} field_query;

static bool type_ok(const char *t)
{
    return text_ok(t, 32) && !strchr(t, ' ');
}

static bool imphash_ok(const char *t)
{
    return all_hex(t, 32);
}

static bool signature_ok(const char *t)
{
    return text_ok(t, 200);
}

static const field_query field_queries[] = {
    {"get_taginfo", "tag", "no_tag_provided", "illegal_tag", "tag_not_found", tag_ok,
     offsetof(tr_sample_filter, tag)},
    {"get_siginfo", "signature", "no_signature_provided", "illegal_signature",
     "signature_not_found", signature_ok, offsetof(tr_sample_filter, signature)},
    {"get_file_type", "file_type", "no_file_type", "illegal_file_type", "no_results", type_ok,
     offsetof(tr_sample_filter, file_type)},
    {"get_imphash", "imphash", "no_imphash", "illegal_imphash", "no_results", imphash_ok,
     offsetof(tr_sample_filter, imphash)},
    {"get_tlsh", "tlsh", "no_tlsh", "illegal_tlsh", "no_results", tlsh_ok,
     offsetof(tr_sample_filter, tlsh)},
};

static enum MHD_Result by_field(http_request *r, const field_query *fq)
{
    const char *v = http_upload_field(r->upload, fq->field);
    if (!v || !*v)
        return status_only(r, fq->missing);
    if (!fq->valid(v))
        return status_only(r, fq->illegal);
    tr_sample_filter f = {0};
    *(const char **)((char *)&f + fq->offset) = v;
    return http_bazaar_list(r, &f, fq->not_found);
}

#define FIELD_QUERY(i)                                                                        \
    static enum MHD_Result field_query_##i(http_request *r)                                  \
    {                                                                                         \
        return by_field(r, &field_queries[i]);                                                \
    }
FIELD_QUERY(0)
FIELD_QUERY(1)
FIELD_QUERY(2)
FIELD_QUERY(3)
FIELD_QUERY(4)

/* ---- dispatch ---------------------------------------------------------------- */

static const http_bazaar_query core_queries[] = {
    {"get_info", get_info, TR_ROLE_READER},
    {"get_file", get_file, TR_ROLE_READER},
    {"get_recent", get_recent, TR_ROLE_READER},
    {"get_taginfo", field_query_0, TR_ROLE_READER},
    {"get_siginfo", field_query_1, TR_ROLE_READER},
    {"get_file_type", field_query_2, TR_ROLE_READER},
    {"get_imphash", field_query_3, TR_ROLE_READER},
    {"get_tlsh", field_query_4, TR_ROLE_READER},
    {"get_yarainfo", get_yarainfo, TR_ROLE_READER},
    {"recent_detections", recent_detections, TR_ROLE_READER},
    {"upload", upload, TR_ROLE_ANALYST},
    {"add_comment", add_comment, TR_ROLE_ANALYST},
    {"update", update, TR_ROLE_ANALYST},
};

/* Every table of queries. Another file's table (api_bazaar_intel.c: the
 * certificate, telfhash, gimphash, dhash and ClamAV queries) is one more
 * line here, declared in http_internal.h. */
static const struct {
    const http_bazaar_query *q;
    size_t n;
} query_tables[] = {
    {core_queries, sizeof core_queries / sizeof core_queries[0]},
};

enum MHD_Result api_bazaar(http_request *r)
{
    if (strcmp(r->method, "POST") != 0)
        return status_only(r, "http_post_expected");
    enum MHD_Result sent = MHD_NO;
    r->upload->bazaar = true;
    if (http_upload_finish_body(r, false, &sent) != 0)
        return sent;
    const char *q = http_upload_field(r->upload, "query");
    /* Bazaar's upload carries no query field: a file part means upload. */
    if ((!q || !*q) && r->upload->got_file)
        q = "upload";
    if (!q || !*q)
        return status_only(r, "no_query");
    for (size_t t = 0; t < sizeof query_tables / sizeof query_tables[0]; t++)
        for (size_t i = 0; i < query_tables[t].n; i++) {
            const http_bazaar_query *bq = &query_tables[t].q[i];
            if (strcmp(q, bq->name) != 0)
                continue;
            if (r->role < bq->need)
                return http_send_json(
                    r, r->authenticated ? 403 : 401,
                    json_pack("{s:s, s:s}", "query_status",
                              r->authenticated ? "user_blacklisted" : "no_api_key", "error",
                              "this query needs an API key with the analyst role"));
            return bq->fn(r);
        }
    if (bazaar_intel_query(r, q, &sent))
        return sent;
    return status_only(r, "unknown_query");
}
