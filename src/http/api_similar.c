/* GET /api/samples/{hash}/similar?by=tlsh|ssdeep|imphash|telfhash&max=N */
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"
#include "similar/similar.h"
#include "store/store.h"

enum { SIMILAR_MAX = 1000 };

enum MHD_Result api_sample_similar(http_request *r)
{
    char h[128], hash[TR_SHA256_HEX];
    size_t n = strcspn(r->rest, "/");
    if (n >= sizeof h)
        return http_send_error(r, 400, "not an md5, sha1 or sha256 hash");
    memcpy(h, r->rest, n);
    h[n] = '\0';
    if (!tr_hash_normalize(h, hash, sizeof hash))
        return http_send_error(r, 400, "'%s' is not an md5, sha1 or sha256 hash", h);
    const char *by = http_query(r, "by");
    int kind = tr_similar_kind_find(by ? by : "tlsh");
    if (kind < 0)
        return http_send_error(r, 400, "by must be one of tlsh, ssdeep, imphash, telfhash");
    const char *mv = http_query(r, "max");
    long max = 10;
    if (mv) {
        char *end = NULL;
        max = strtol(mv, &end, 10);
        if (!*mv || *end || max < 1 || max > SIMILAR_MAX)
            return http_send_error(r, 400, "max must be a number from 1 to %d", SIMILAR_MAX);
    }
    tr_store *s = NULL;
    tr_error err;
    if (tr_store_open(r->data_dir, TR_STORE_READONLY, &s, &err) != 0)
        return http_send_error(r, 503, "%s", err.msg);
    tr_sample *x = NULL;
    int found = tr_store_get(s, hash, &x, &err);
    enum MHD_Result res;
    if (found < 0) {
        res = http_send_error(r, 500, "%s", err.msg);
    } else if (found == 0) {
        res = http_send_error(r, 404, "no sample with hash %s", hash);
    } else {
        json_t *ans = tr_similar_answer(s, (size_t)kind, x, (size_t)max, &err);
        if (ans)
            res = http_send_json(r, 200, ans);
        else if (tr_store_has_column(s, tr_similar_kind_column((size_t)kind)) == 0)
            res = http_send_error(r, 404, "%s", err.msg);
        else
            res = http_send_error(r, 500, "%s", err.msg);
    }
    tr_sample_free(x);
    tr_store_close(s);
    return res;
}
