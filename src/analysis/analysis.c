/* The analyses together, and their MalwareBazaar JSON. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analysis/analysis.h"

void tr_cert_free(tr_cert *c)
{
    free(c->serial);
    free(c->issuer);
    free(c->subject);
    free(c->issuer_cn);
    free(c->subject_cn);
    free(c->thumbprint);
    free(c->algorithm);
}

void tr_bin_info_free(tr_bin_info *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n_certs; i++)
        tr_cert_free(&b->certs[i]);
    free(b->certs);
    free(b->ole_json);
    for (size_t i = 0; i < b->n_clamav; i++)
        free(b->clamav[i]);
    free(b->clamav);
    free(b);
}

tr_bin_info *tr_bin_analyze(tr_binan *a, const unsigned char *p, size_t n)
{
    tr_bin_info *b = tr_xcalloc(1, sizeof *b);
    tr_telfhash(p, n, b->telfhash);
    tr_gimphash(p, n, b->gimphash);
    tr_pe_analyze(a, p, n, b);
    b->ole_json = tr_ole_info_json(p, n);
    if (tr_clamav_scan(p, n, b) != 0)
        tr_log(TR_LOG_WARN, "ClamAV could not scan a sample; it is stored without detections");
    return b;
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

/* code_sign's validity as Bazaar writes it ("2019-07-15T00:00:00Z" in a
 * get_info answer quoted by Elastic's ti_abusech test data), not trawl's
 * "YYYY-MM-DD HH:MM:SS". */
static json_t *iso_time_or_null(int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    char buf[32];
    if (t <= 0 || !gmtime_r(&tt, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm))
        return json_null();
    return json_string(buf);
}

json_t *tr_bin_code_sign_json(const tr_bin_info *b)
{
    if (!b || b->n_certs == 0)
        return json_null();
    json_t *arr = json_array();
    if (!arr)
        tr_die("out of memory building JSON");
    for (size_t i = 0; i < b->n_certs; i++) {
        const tr_cert *c = &b->certs[i];
        /* Every stored sample is malware, so a certificate seen on one is
         * on trawl's blocklist (get_cscb). */
        json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:b, s:s}",
                              "subject_cn", str_or_null(c->subject_cn),
                              "issuer_cn", str_or_null(c->issuer_cn),
                              "algorithm", str_or_null(c->algorithm),
                              "valid_from", iso_time_or_null(c->valid_from),
                              "valid_to", iso_time_or_null(c->valid_to),
                              "serial_number", str_or_null(c->serial),
                              "thumbprint_algorithm",
                              tr_cert_thumbprint_algorithm(c->thumbprint),
                              "thumbprint", str_or_null(c->thumbprint),
                              "cscb_listed", 1,
                              "cscb_reason", "signed a sample stored as malware");
        if (!o)
            tr_die("out of memory building JSON");
        json_array_append_new(arr, o);
    }
    return arr;
}

void tr_bin_info_to_bazaar_json(const tr_bin_info *b, json_t *sample)
{
    json_object_set_new(sample, "code_sign", tr_bin_code_sign_json(b));
    json_object_set_new(sample, "telfhash", str_or_null(b ? b->telfhash : NULL));
    json_object_set_new(sample, "gimphash", str_or_null(b ? b->gimphash : NULL));
    json_object_set_new(sample, "dhash_icon", str_or_null(b ? b->dhash_icon : NULL));
    json_t *ole = b && b->ole_json ? json_loads(b->ole_json, 0, NULL) : NULL;
    json_object_set_new(sample, "ole_information", ole ? ole : json_array());
    /* Bazaar's intelligence object may already be there with other keys. */
    json_t *intel = json_object_get(sample, "intelligence");
    if (!json_is_object(intel)) {
        intel = json_object();
        json_object_set_new(sample, "intelligence", intel);
    }
    json_t *names = json_null();
    if (b && b->n_clamav) {
        names = json_array();
        for (size_t i = 0; i < b->n_clamav; i++)
            json_array_append_new(names, json_string(b->clamav[i]));
    }
    json_object_set_new(intel, "clamav", names);
}
