/* /api/health and /api/samples: the sample repository over HTTP. */
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"
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

enum MHD_Result api_samples(http_request *r, const char *hash)
{
    tr_store *s;
    tr_error err;
    if (*hash) {
        char norm[TR_SHA256_HEX];
        if (!tr_hash_normalize(hash, norm, sizeof norm))
            return http_send_error(r, 400, "'%s' is not an md5, sha1 or sha256 hash", hash);
        if (open_ro(r, &s, &err) != 0)
            return http_send_error(r, 503, "%s", err.msg);
        tr_sample *x = NULL;
        int found = tr_store_get(s, norm, &x, &err);
        tr_store_close(s);
        if (found < 0)
            return http_send_error(r, 500, "%s", err.msg);
        if (found == 0)
            return http_send_error(r, 404, "no sample with hash %s", norm);
        json_t *body = json_pack("{s:s, s:o}", "query_status", "ok", "data", tr_sample_to_json(x));
        tr_sample_free(x);
        return http_send_json(r, 200, body);
    }
    tr_sample_filter f = {0};
    f.tag = http_query(r, "tag");
    f.signature = http_query(r, "signature");
    f.file_type = http_query(r, "type");
    if (parse_count(http_query(r, "limit"), 100, 1000, &f.limit) != 0)
        return http_send_error(r, 400, "limit must be a whole number from 0 to 1000");
    if (parse_count(http_query(r, "offset"), 0, INT64_MAX / 2, &f.offset) != 0)
        return http_send_error(r, 400, "offset must be a whole number >= 0");
    if (f.limit == 0)
        f.limit = 100;
    if (open_ro(r, &s, &err) != 0)
        return http_send_error(r, 503, "%s", err.msg);
    tr_sample **list = NULL;
    size_t n = 0;
    int rc = tr_store_list(s, &f, &list, &n, &err);
    tr_store_close(s);
    if (rc != 0)
        return http_send_error(r, 500, "%s", err.msg);
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, tr_sample_to_json(list[i]));
    tr_sample_list_free(list, n);
    return http_send_json(r, 200,
                          json_pack("{s:s, s:I, s:I, s:I, s:o}", "query_status", "ok", "count",
                                    (json_int_t)n, "limit", (json_int_t)f.limit, "offset",
                                    (json_int_t)f.offset, "data", data));
}
