/* POST /api/v1/: MalwareBazaar's API (form queries and uploads), so that
 * scripts and integrations written for Bazaar work against trawl. Answers
 * use Bazaar's query_status words with HTTP 200, as Bazaar does. Keys come
 * as "Auth-Key" (Bazaar's header) or the usual Authorization: Bearer. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http_internal.h"
#include "store/store.h"

static enum MHD_Result status_only(http_request *r, const char *status)
{
    return http_send_json(r, 200, json_pack("{s:s}", "query_status", status));
}

static json_t *bazaar_sample(const tr_sample *x)
{
    json_t *j = tr_sample_to_json(x);
    /* Bazaar's shape: tags null when empty, one comment as text. */
    if (json_array_size(json_object_get(j, "tags")) == 0)
        json_object_set_new(j, "tags", json_null());
    json_object_set_new(j, "comment",
                        x->n_comments ? json_string(x->comments[0].text) : json_null());
    json_object_set_new(j, "anonymous", json_integer(0));
    return j;
}

static enum MHD_Result list(http_request *r, tr_sample_filter *f, const char *not_found)
{
    const char *limit = http_upload_field(r->upload, "limit");
    if (limit && *limit) {
        char *end = NULL;
        long n = strtol(limit, &end, 10);
        if (*end || n < 1)
            return status_only(r, "illegal_limit");
        f->limit = n > 1000 ? 1000 : n;
    }
    if (!f->limit)
        f->limit = 100;
    tr_store *s;
    tr_error err;
    if (tr_store_open(r->data_dir, TR_STORE_READONLY, &s, &err) != 0)
        return http_send_error(r, 503, "%s", err.msg);
    tr_sample **items = NULL;
    size_t n = 0;
    int rc = tr_store_list(s, f, &items, &n, &err);
    tr_store_close(s);
    if (rc != 0)
        return http_send_error(r, 500, "%s", err.msg);
    if (n == 0)
        return status_only(r, not_found);
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, bazaar_sample(items[i]));
    tr_sample_list_free(items, n);
    return http_send_json(r, 200, json_pack("{s:s, s:o}", "query_status", "ok", "data", data));
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

static enum MHD_Result get_info(http_request *r)
{
    enum MHD_Result sent = MHD_NO;
    tr_sample *x = NULL;
    if (!lookup(r, "hash", false, "no_hash_provided", "illegal_hash", "hash_not_found", &x, &sent))
        return sent;
    json_t *data = json_array();
    json_array_append_new(data, bazaar_sample(x));
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
    sent = http_send_sample_zip(r, x);
    tr_sample_free(x);
    return sent;
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
    tr_store *s;
    tr_error err;
    int rc = tr_store_open(r->data_dir, 0, &s, &err);
    if (rc == 0) {
        rc = tr_store_add_comment(s, x->id, r->key_name, comment, &err);
        tr_store_close(s);
    }
    tr_sample_free(x);
    if (rc != 0)
        return http_send_error(r, 500, "%s", err.msg);
    return status_only(r, "success");
}

/* upload: a "file" part and Bazaar's "json_data" (tags, delivery_method,
 * comment, reporter-side fields). */
static enum MHD_Result upload(http_request *r)
{
    if (!r->upload->got_file)
        return status_only(r, "file_missing");
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
    const char *tags[64];
    size_t ntags = 0;
    json_t *jt = json_object_get(meta, "tags"), *t;
    size_t i;
    json_array_foreach(jt, i, t) if (json_is_string(t) && ntags < 64) tags[ntags++] = json_string_value(t);
    tr_ingest_meta m = {
        .file_name = r->upload->file_name,
        .tags = tags,
        .n_tags = ntags,
        .reporter = r->key_name[0] ? r->key_name : NULL,
        .signature = json_string_value(json_object_get(meta, "signature")),
        .delivery_method = json_string_value(json_object_get(meta, "delivery_method")),
        .comment = json_string_value(json_object_get(meta, "comment")),
        .origin = json_string_value(json_object_get(meta, "origin")),
    };
    tr_ingest_result res;
    tr_sample *x = NULL;
    enum MHD_Result sent = MHD_NO;
    int rc = http_upload_commit(r, &m, &res, &x, &sent);
    json_decref(meta);
    if (rc != 0)
        return sent;
    json_t *body = json_pack("{s:s, s:s}", "query_status", res.is_new ? "inserted" : "file_already_known",
                             "sha256_hash", x->d.sha256);
    tr_sample_free(x);
    return http_send_json(r, 200, body);
}

enum MHD_Result api_bazaar(http_request *r)
{
    enum MHD_Result sent = MHD_NO;
    if (http_upload_finish_body(r, false, &sent) != 0)
        return sent;
    const char *q = http_upload_field(r->upload, "query");
    /* Bazaar's upload carries no query field: a file part means upload. */
    if ((!q || !*q) && r->upload->got_file)
        q = "upload";
    if (!q || !*q)
        return status_only(r, "no_query");
    bool write = strcmp(q, "upload") == 0 || strcmp(q, "add_comment") == 0;
    if (write && r->role < TR_ROLE_ANALYST)
        return http_send_json(r, r->authenticated ? 403 : 401,
                              json_pack("{s:s, s:s}", "query_status", "user_blacklisted", "error",
                                        "this query needs an API key with the analyst role"));
    tr_sample_filter f = {0};
    const char *v;
    if (strcmp(q, "get_info") == 0)
        return get_info(r);
    if (strcmp(q, "get_file") == 0)
        return get_file(r);
    if (strcmp(q, "add_comment") == 0)
        return add_comment(r);
    if (strcmp(q, "upload") == 0)
        return upload(r);
    if (strcmp(q, "get_recent") == 0) {
        v = http_upload_field(r->upload, "selector");
        if (!v || !*v)
            return status_only(r, "no_selector");
        if (strcmp(v, "time") == 0)
            f.first_seen_after = tr_now_unix() - 3600;   /* Bazaar: the last 60 minutes */
        else if (strcmp(v, "100") == 0)
            f.limit = 100;
        else
            return status_only(r, "unknown_selector");
        f.limit = f.limit ? f.limit : 1000;
        return list(r, &f, "no_results");
    }
    static const struct {
        const char *query, *field, *missing, *not_found;
        size_t offset;
    } lookups[] = {
        {"get_taginfo", "tag", "no_tag_provided", "tag_not_found", offsetof(tr_sample_filter, tag)},
        {"get_siginfo", "signature", "no_signature_provided", "signature_not_found",
         offsetof(tr_sample_filter, signature)},
        {"get_file_type", "file_type", "no_file_type_provided", "file_type_not_found",
         offsetof(tr_sample_filter, file_type)},
        {"get_imphash", "imphash", "no_imphash_provided", "imphash_not_found",
         offsetof(tr_sample_filter, imphash)},
        {"get_tlsh", "tlsh", "no_tlsh_provided", "tlsh_not_found", offsetof(tr_sample_filter, tlsh)},
    };
    for (size_t i = 0; i < sizeof lookups / sizeof lookups[0]; i++) {
        if (strcmp(q, lookups[i].query) != 0)
            continue;
        v = http_upload_field(r->upload, lookups[i].field);
        if (!v || !*v)
            return status_only(r, lookups[i].missing);
        *(const char **)((char *)&f + lookups[i].offset) = v;
        return list(r, &f, lookups[i].not_found);
    }
    if (bazaar_intel_query(r, q, &sent))
        return sent;
    return status_only(r, "unknown_query");
}
