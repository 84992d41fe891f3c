/* MalwareBazaar's queries over the binary analysis: get_telfhash, get_gimphash,
 * get_dhash_icon, get_clamavinfo, get_certificate, get_issuerinfo, get_subjectinfo and get_cscb (the
 * code-signing certificate blocklist). Parameters, status words and shapes
 * follow Bazaar's API documentation; see docs/analysis.md. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"
#include "store/store.h"

static enum MHD_Result status_only(http_request *r, const char *status)
{
    return http_send_json(r, 200, json_pack("{s:s}", "query_status", status));
}

static json_t *time_or_null(int64_t t)
{
    if (t <= 0)
        return json_null();
    char buf[32];
    tr_format_time(t, buf);
    return json_string(buf);
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

/* Bazaar's limit: 1..1000, 100 when absent. 0 with the answer sent. */
static int parse_limit(http_request *r, int64_t *limit, enum MHD_Result *sent)
{
    const char *v = http_upload_field(r->upload, "limit");
    *limit = 100;
    if (!v || !*v)
        return 1;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (*end || n < 1) {
        *sent = status_only(r, "illegal_limit");
        return 0;
    }
    *limit = n > 1000 ? 1000 : n;
    return 1;
}

static enum MHD_Result samples_by(http_request *r, tr_analysis_key key, const char *value,
                                  const char *none)
{
    enum MHD_Result sent = MHD_NO;
    int64_t limit;
    if (!parse_limit(r, &limit, &sent))
        return sent;
    tr_store *s;
    tr_error err;
    if (tr_store_open(r->data_dir, TR_STORE_READONLY, &s, &err) != 0)
        return http_send_error(r, 503, "%s", err.msg);
    int64_t *ids = NULL;
    size_t n = 0;
    if (tr_store_analysis_ids(s, key, value, limit, &ids, &n, &err) != 0) {
        tr_store_close(s);
        return http_send_error(r, 500, "%s", err.msg);
    }
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++) {
        tr_sample *x = NULL;
        int found = tr_store_get_by_id(s, ids[i], &x, &err);
        if (found < 0) {
            free(ids);
            json_decref(data);
            tr_store_close(s);
            return http_send_error(r, 500, "%s", err.msg);
        }
        if (found == 0)
            continue;     /* removed since the lookup */
        json_t *j = tr_sample_to_json(x);
        if (json_array_size(json_object_get(j, "tags")) == 0)
            json_object_set_new(j, "tags", json_null());
        json_array_append_new(data, j);
        tr_sample_free(x);
    }
    free(ids);
    tr_store_close(s);
    if (json_array_size(data) == 0) {
        json_decref(data);
        return status_only(r, none);
    }
    return http_send_json(r, 200, json_pack("{s:s, s:o}", "query_status", "ok", "data", data));
}

/* "t1" + 70 hex digits, any case. */
static bool telfhash_ok(const char *v)
{
    if (strlen(v) != 72 || tolower((unsigned char)v[0]) != 't' || v[1] != '1')
        return false;
    for (size_t i = 2; i < 72; i++)
        if (!isxdigit((unsigned char)v[i]))
            return false;
    return true;
}

static bool hex_of_len(const char *v, size_t len)
{
    if (strlen(v) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isxdigit((unsigned char)v[i]))
            return false;
    return true;
}

/* A serial as people paste it ("0E:D1:84", "0ed184", "0e d1 84"): hex
 * digits kept, lowercased. 0 when anything else is in it. */
static bool serial_normalize(const char *v, char *out, size_t outsz)
{
    size_t w = 0;
    for (; *v; v++) {
        if (*v == ':' || *v == ' ' || *v == '-')
            continue;
        if (!isxdigit((unsigned char)*v) || w + 1 >= outsz)
            return false;
        out[w++] = (char)tolower((unsigned char)*v);
    }
    out[w] = '\0';
    return w > 0;
}

static enum MHD_Result get_cscb(http_request *r)
{
    tr_store *s;
    tr_error err;
    if (tr_store_open(r->data_dir, TR_STORE_READONLY, &s, &err) != 0)
        return http_send_error(r, 503, "%s", err.msg);
    tr_cscb_entry *e = NULL;
    size_t n = 0;
    int rc = tr_store_cscb(s, &e, &n, &err);
    tr_store_close(s);
    if (rc != 0)
        return http_send_error(r, 500, "%s", err.msg);
    if (n == 0)
        return status_only(r, "no_results");
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++) {
        const tr_cert *c = &e[i].cert;
        char *reason = e[i].signature
                           ? tr_xasprintf("signed %s malware stored in trawl", e[i].signature)
                           : tr_xstrdup("signed malware stored in trawl");
        json_t *o = json_pack("{s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:b, s:s}",
                              "time_stamp", time_or_null(e[i].first_seen),
                              "serial_number", str_or_null(c->serial),
                              "thumbprint", str_or_null(c->thumbprint),
                              "thumbprint_algorithm",
                              tr_cert_thumbprint_algorithm(c->thumbprint),
                              "subject_cn", str_or_null(c->subject_cn),
                              "issuer_cn", str_or_null(c->issuer_cn),
                              "valid_from", time_or_null(c->valid_from),
                              "valid_to", time_or_null(c->valid_to),
                              "cscb_listed", 1,
                              "cscb_reason", reason);
        free(reason);
        if (!o)
            tr_die("out of memory building JSON");
        json_array_append_new(data, o);
    }
    tr_cscb_free(e, n);
    return http_send_json(r, 200, json_pack("{s:s, s:o}", "query_status", "ok", "data", data));
}

int bazaar_intel_query(http_request *r, const char *q, enum MHD_Result *sent)
{
    if (strcmp(q, "get_cscb") == 0) {
        *sent = get_cscb(r);
        return 1;
    }
    if (strcmp(q, "get_telfhash") == 0) {
        const char *v = http_upload_field(r->upload, "telfhash");
        if (!v || !*v)
            *sent = status_only(r, "no_telfhash");
        else if (!telfhash_ok(v))
            *sent = status_only(r, "illegal_telfhash");
        else
            *sent = samples_by(r, TR_AKEY_TELFHASH, v, "no_results");
        return 1;
    }
    if (strcmp(q, "get_gimphash") == 0) {
        const char *v = http_upload_field(r->upload, "gimphash");
        if (!v || !*v)
            *sent = status_only(r, "no_gimphash");
        else if (!hex_of_len(v, 64))
            *sent = status_only(r, "illegal_gimphash");
        else
            *sent = samples_by(r, TR_AKEY_GIMPHASH, v, "no_results");
        return 1;
    }
    if (strcmp(q, "get_dhash_icon") == 0) {
        const char *v = http_upload_field(r->upload, "dhash_icon");
        if (!v || !*v)
            *sent = status_only(r, "no_dhash_icon");
        else if (!hex_of_len(v, 16))
            *sent = status_only(r, "illegal_dhash_icon");
        else
            *sent = samples_by(r, TR_AKEY_DHASH_ICON, v, "no_results");
        return 1;
    }
    if (strcmp(q, "get_clamavinfo") == 0) {
        const char *v = http_upload_field(r->upload, "clamav");
        if (!v || !*v)
            *sent = status_only(r, "no_clamav_provided");
        else
            *sent = samples_by(r, TR_AKEY_CLAMAV, v, "clamav_not_found");
        return 1;
    }
    if (strcmp(q, "get_certificate") == 0) {
        const char *v = http_upload_field(r->upload, "serial_number");
        char serial[256];
        if (!v || !*v)
            *sent = status_only(r, "no_serial_number");
        else if (!serial_normalize(v, serial, sizeof serial))
            *sent = status_only(r, "illegal_serial_number");
        else
            *sent = samples_by(r, TR_AKEY_SERIAL, serial, "no_results");
        return 1;
    }
    static const struct {
        const char *query, *field, *missing;
        tr_analysis_key key;
    } cn[] = {
        {"get_issuerinfo", "issuer_cn", "no_issuer_cn", TR_AKEY_ISSUER_CN},
        {"get_subjectinfo", "subject_cn", "no_subject_cn", TR_AKEY_SUBJECT_CN},
    };
    for (size_t i = 0; i < sizeof cn / sizeof cn[0]; i++) {
        if (strcmp(q, cn[i].query) != 0)
            continue;
        const char *v = http_upload_field(r->upload, cn[i].field);
        if (!v || !*v)
            *sent = status_only(r, cn[i].missing);
        else
            *sent = samples_by(r, cn[i].key, v, "no_results");
        return 1;
    }
    return 0;
}
