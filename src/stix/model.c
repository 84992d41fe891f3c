/* The STIX 2.1 model: canonical JSON (RFC 8785), deterministic SCO ids,
 * timestamps, the spec's rules beyond the schemas, the 2.0 upgrade and
 * whole-bundle parsing with each object's original bytes. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "rules/rules.h"
#include "stix/pattern.h"
#include "stix/schema.h"
#include "stix/stix.h"
#include "stix/stix_internal.h"

/* ---- RFC 8785 ------------------------------------------------------------ */

static void jcs_string(tr_buf *out, const char *s, size_t n)
{
    tr_buf_append(out, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        switch (ch) {
        case '"': tr_buf_append(out, "\\\"", 2); break;
        case '\\': tr_buf_append(out, "\\\\", 2); break;
        case '\b': tr_buf_append(out, "\\b", 2); break;
        case '\f': tr_buf_append(out, "\\f", 2); break;
        case '\n': tr_buf_append(out, "\\n", 2); break;
        case '\r': tr_buf_append(out, "\\r", 2); break;
        case '\t': tr_buf_append(out, "\\t", 2); break;
        default:
            if (ch < 0x20)
                tr_buf_printf(out, "\\u%04x", ch);
            else
                tr_buf_append(out, &s[i], 1);
        }
    }
    tr_buf_append(out, "\"", 1);
}

/* Decodes one UTF-8 sequence (valid: jansson checked it). */
static uint32_t utf8_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    uint32_t c;
    int extra;
    if (s[0] < 0x80) {
        c = s[0];
        extra = 0;
    } else if ((s[0] & 0xE0) == 0xC0) {
        c = s[0] & 0x1F;
        extra = 1;
    } else if ((s[0] & 0xF0) == 0xE0) {
        c = s[0] & 0x0F;
        extra = 2;
    } else {
        c = s[0] & 0x07;
        extra = 3;
    }
    for (int i = 1; i <= extra && s[i]; i++)
        c = (c << 6) | (s[i] & 0x3F);
    *p = s + 1 + extra;
    return c;
}

/* RFC 8785 sorts member names by their UTF-16 code units. */
static int utf16_cmp(const char *a, const char *b)
{
    const unsigned char *pa = (const unsigned char *)a, *pb = (const unsigned char *)b;
    uint16_t qa[2], qb[2];
    int na = 0, nb = 0, ia = 0, ib = 0;
    for (;;) {
        if (ia == na) {
            if (!*pa) {
                na = 0;
            } else {
                uint32_t c = utf8_next(&pa);
                if (c >= 0x10000) {
                    c -= 0x10000;
                    qa[0] = (uint16_t)(0xD800 + (c >> 10));
                    qa[1] = (uint16_t)(0xDC00 + (c & 0x3FF));
                    na = 2;
                } else {
                    qa[0] = (uint16_t)c;
                    na = 1;
                }
            }
            ia = 0;
        }
        if (ib == nb) {
            if (!*pb) {
                nb = 0;
            } else {
                uint32_t c = utf8_next(&pb);
                if (c >= 0x10000) {
                    c -= 0x10000;
                    qb[0] = (uint16_t)(0xD800 + (c >> 10));
                    qb[1] = (uint16_t)(0xDC00 + (c & 0x3FF));
                    nb = 2;
                } else {
                    qb[0] = (uint16_t)c;
                    nb = 1;
                }
            }
            ib = 0;
        }
        if (na == 0 || nb == 0)
            return na - nb;
        if (qa[ia] != qb[ib])
            return qa[ia] < qb[ib] ? -1 : 1;
        ia++;
        ib++;
    }
}

static int key_cmp(const void *a, const void *b)
{
    return utf16_cmp(*(const char *const *)a, *(const char *const *)b);
}

/* ECMAScript's Number.prototype.toString for finite doubles: the shortest
 * digits that read back to the same value, in its exponent rules. */
static void jcs_number(tr_buf *out, double d)
{
    if (d == 0) {
        tr_buf_append(out, "0", 1);
        return;
    }
    char buf[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    /* buf: [-]D[.DDD]e[+-]XX -> digits and exponent */
    char digits[24];
    size_t nd = 0;
    const char *p = buf;
    bool neg = *p == '-';
    if (neg)
        p++;
    for (; *p && *p != 'e'; p++)
        if (isdigit((unsigned char)*p))
            digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    int e = atoi(p + 1);           /* value = 0.D1D2.. * 10^(e+1) */
    int n = e + 1;
    if (neg)
        tr_buf_append(out, "-", 1);
    if ((int)nd <= n && n <= 21) {
        tr_buf_append(out, digits, nd);
        for (int i = (int)nd; i < n; i++)
            tr_buf_append(out, "0", 1);
    } else if (0 < n && n <= 21) {
        tr_buf_append(out, digits, (size_t)n);
        tr_buf_append(out, ".", 1);
        tr_buf_append(out, digits + n, nd - (size_t)n);
    } else if (-6 < n && n <= 0) {
        tr_buf_append(out, "0.", 2);
        for (int i = 0; i < -n; i++)
            tr_buf_append(out, "0", 1);
        tr_buf_append(out, digits, nd);
    } else {
        tr_buf_append(out, digits, 1);
        if (nd > 1) {
            tr_buf_append(out, ".", 1);
            tr_buf_append(out, digits + 1, nd - 1);
        }
        tr_buf_printf(out, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
    }
}

static int jcs(json_t *v, tr_buf *out, int depth, tr_error *err)
{
    if (depth > 100)
        return tr_fail(err, "JSON nested too deep to canonicalize");
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        const char **keys = tr_xcalloc(n ? n : 1, sizeof *keys);
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) keys[i++] = k;
        qsort(keys, n, sizeof *keys, key_cmp);
        tr_buf_append(out, "{", 1);
        for (i = 0; i < n; i++) {
            if (i)
                tr_buf_append(out, ",", 1);
            jcs_string(out, keys[i], strlen(keys[i]));
            tr_buf_append(out, ":", 1);
            if (jcs(json_object_get(v, keys[i]), out, depth + 1, err) != 0) {
                free(keys);
                return -1;
            }
        }
        tr_buf_append(out, "}", 1);
        free(keys);
        return 0;
    }
    case JSON_ARRAY: {
        tr_buf_append(out, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                tr_buf_append(out, ",", 1);
            if (jcs(json_array_get(v, i), out, depth + 1, err) != 0)
                return -1;
        }
        tr_buf_append(out, "]", 1);
        return 0;
    }
    case JSON_STRING:
        jcs_string(out, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER:
        jcs_number(out, (double)json_integer_value(v));
        return 0;
    case JSON_REAL:
        if (!isfinite(json_real_value(v)))
            return tr_fail(err, "JSON numbers must be finite");
        jcs_number(out, json_real_value(v));
        return 0;
    case JSON_TRUE:
        tr_buf_append(out, "true", 4);
        return 0;
    case JSON_FALSE:
        tr_buf_append(out, "false", 5);
        return 0;
    case JSON_NULL:
        tr_buf_append(out, "null", 4);
        return 0;
    }
    return tr_fail(err, "unknown JSON value");
}

int tr_stix_jcs(json_t *v, tr_buf *out, tr_error *err)
{
    return jcs(v, out, 0, err);
}

/* ---- UUIDv5 --------------------------------------------------------------- */

static int parse_uuid(const char *s, unsigned char out[16])
{
    size_t j = 0;
    for (size_t i = 0; s[i] && j < 32; i++) {
        if (s[i] == '-')
            continue;
        if (!isxdigit((unsigned char)s[i]))
            return -1;
        int v = isdigit((unsigned char)s[i]) ? s[i] - '0' : (tolower((unsigned char)s[i]) - 'a' + 10);
        if (j % 2 == 0)
            out[j / 2] = (unsigned char)(v << 4);
        else
            out[j / 2] |= (unsigned char)v;
        j++;
    }
    return j == 32 ? 0 : -1;
}

int tr_stix_uuid5(const char *ns, const void *name, size_t len, char out[37], tr_error *err)
{
    unsigned char nsb[16], md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (parse_uuid(ns, nsb) != 0)
        return tr_fail(err, "bad namespace UUID '%s'", ns);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        tr_die("out of memory");
    int ok = EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) && EVP_DigestUpdate(ctx, nsb, 16) &&
             EVP_DigestUpdate(ctx, name, len) && EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return tr_fail(err, "SHA-1 is not available from OpenSSL");
    md[6] = (unsigned char)((md[6] & 0x0F) | 0x50);
    md[8] = (unsigned char)((md[8] & 0x3F) | 0x80);
    char hex[33];
    tr_hex_encode(md, 16, hex);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
    return 0;
}

#define SCO_NAMESPACE "00abedb4-aa42-466c-9c01-fed23315a9b7"

static const struct {
    const char *type;
    const char *props[9];
} sco_contrib[] = {
    {"artifact", {"hashes", "payload_bin"}},
    {"autonomous-system", {"number"}},
    {"directory", {"path"}},
    {"domain-name", {"value"}},
    {"email-addr", {"value"}},
    {"email-message", {"from_ref", "subject", "body"}},
    {"file", {"hashes", "name", "extensions", "parent_directory_ref"}},
    {"ipv4-addr", {"value"}},
    {"ipv6-addr", {"value"}},
    {"mac-addr", {"value"}},
    {"mutex", {"name"}},
    {"network-traffic",
     {"start", "end", "src_ref", "dst_ref", "src_port", "dst_port", "protocols", "extensions"}},
    {"process", {NULL}},
    {"software", {"name", "cpe", "swid", "vendor", "version"}},
    {"url", {"value"}},
    {"user-account", {"account_type", "user_id", "account_login"}},
    {"windows-registry-key", {"key", "values"}},
    {"x509-certificate", {"hashes", "serial_number"}},
};

bool tr_stix_is_sco_type(const char *type)
{
    for (size_t i = 0; i < sizeof sco_contrib / sizeof sco_contrib[0]; i++)
        if (strcmp(sco_contrib[i].type, type) == 0)
            return true;
    return false;
}

bool stix_sco_id_has_refs(const char *type)
{
    for (size_t i = 0; i < sizeof sco_contrib / sizeof sco_contrib[0]; i++) {
        if (strcmp(sco_contrib[i].type, type) != 0)
            continue;
        for (size_t j = 0; j < 9 && sco_contrib[i].props[j]; j++) {
            size_t l = strlen(sco_contrib[i].props[j]);
            if (l >= 4 && strcmp(sco_contrib[i].props[j] + l - 4, "_ref") == 0)
                return true;
        }
        return false;
    }
    return false;
}

/* The spec has one hash stand for the object, the first present of these. */
static json_t *one_hash(json_t *hashes)
{
    static const char *const order[] = {"MD5", "SHA-1", "SHA-256", "SHA-512"};
    for (size_t i = 0; i < 4; i++) {
        json_t *h = json_object_get(hashes, order[i]);
        if (h)
            return json_pack("{sO}", order[i], h);
    }
    const char *k;
    json_t *v;
    json_object_foreach(hashes, k, v) return json_pack("{sO}", k, v);
    return NULL;
}

int tr_stix_sco_id(json_t *obj, char out[128], tr_error *err)
{
    const char *type = json_string_value(json_object_get(obj, "type"));
    if (!type)
        return tr_fail(err, "object has no type");
    size_t t;
    for (t = 0; t < sizeof sco_contrib / sizeof sco_contrib[0]; t++)
        if (strcmp(sco_contrib[t].type, type) == 0)
            break;
    if (t == sizeof sco_contrib / sizeof sco_contrib[0])
        return 0;
    json_t *name = json_object();
    if (!name)
        tr_die("out of memory");
    for (size_t i = 0; i < 9 && sco_contrib[t].props[i]; i++) {
        const char *p = sco_contrib[t].props[i];
        json_t *v = json_object_get(obj, p);
        if (!v)
            continue;
        if (strcmp(p, "hashes") == 0 && json_is_object(v)) {
            json_t *h = one_hash(v);
            if (h)
                json_object_set_new(name, p, h);
        } else {
            json_object_set(name, p, v);
        }
    }
    if (json_object_size(name) == 0) {
        json_decref(name);
        return 0;
    }
    tr_buf b = {0};
    int rc = tr_stix_jcs(name, &b, err);
    json_decref(name);
    char uuid[37];
    if (rc == 0)
        rc = tr_stix_uuid5(SCO_NAMESPACE, b.data, b.len, uuid, err);
    tr_buf_free(&b);
    if (rc != 0)
        return -1;
    snprintf(out, 128, "%s--%s", type, uuid);
    return 1;
}

/* ---- timestamps ------------------------------------------------------------- */

bool tr_stix_ts_valid(const char *ts)
{
    int y, mo, d, h, mi, s, n = 0;
    if (sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) != 6 || n != 19)
        return false;
    for (int i = 0; i < 19; i++)
        if ((i == 4 || i == 7) ? ts[i] != '-' : i == 10 ? ts[i] != 'T'
                                 : (i == 13 || i == 16) ? ts[i] != ':' : !isdigit((unsigned char)ts[i]))
            return false;
    const char *p = ts + 19;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (strcmp(p, "Z") != 0)
        return false;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || s > 60)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return !(mo == 2 && d == 29 && !leap);
}

int tr_stix_ts_cmp(const char *a, const char *b)
{
    int c = strncmp(a, b, 19);
    if (c)
        return c;
    const char *fa = strlen(a) > 19 && a[19] == '.' ? a + 20 : "";
    const char *fb = strlen(b) > 19 && b[19] == '.' ? b + 20 : "";
    for (;;) {
        char ca = isdigit((unsigned char)*fa) ? *fa : '0';
        char cb = isdigit((unsigned char)*fb) ? *fb : '0';
        if (ca != cb)
            return ca < cb ? -1 : 1;
        if (!isdigit((unsigned char)*fa) && !isdigit((unsigned char)*fb))
            return 0;
        if (isdigit((unsigned char)*fa))
            fa++;
        if (isdigit((unsigned char)*fb))
            fb++;
    }
}

void tr_stix_now(char out[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%.19s.%06ldZ", date, (long)(ts.tv_nsec / 1000) % 1000000);
}

/* ---- the spec's rules beyond the schemas ---------------------------------- */

/* What a reference property may point to; "SCO"/"SDO" stand for the classes. */
static const struct {
    const char *type;          /* NULL: any object */
    const char *prop;
    const char *targets;       /* space-separated types; NULL: any */
} ref_rules[] = {
    {NULL, "created_by_ref", "identity"},
    {NULL, "object_marking_refs", "marking-definition"},
    {"relationship", "source_ref", "SDO SCO"},
    {"relationship", "target_ref", "SDO SCO"},
    {"sighting", "sighting_of_ref", "SDO"},
    {"sighting", "where_sighted_refs", "identity location"},
    {"sighting", "observed_data_refs", "observed-data"},
    {"malware", "sample_refs", "file artifact"},
    {"malware", "operating_system_refs", "software"},
    {"malware-analysis", "host_vm_ref", "software"},
    {"malware-analysis", "operating_system_ref", "software"},
    {"malware-analysis", "installed_software_refs", "software"},
    {"malware-analysis", "sample_ref", "file network-traffic artifact"},
    {"malware-analysis", "analysis_sco_refs", "SCO"},
    {"observed-data", "object_refs", "SCO relationship"},
    {"ipv4-addr", "resolves_to_refs", "mac-addr"},
    {"ipv4-addr", "belongs_to_refs", "autonomous-system"},
    {"ipv6-addr", "resolves_to_refs", "mac-addr"},
    {"ipv6-addr", "belongs_to_refs", "autonomous-system"},
    {"domain-name", "resolves_to_refs", "ipv4-addr ipv6-addr domain-name"},
    {"email-addr", "belongs_to_ref", "user-account"},
    {"email-message", "from_ref", "email-addr"},
    {"email-message", "sender_ref", "email-addr"},
    {"email-message", "to_refs", "email-addr"},
    {"email-message", "cc_refs", "email-addr"},
    {"email-message", "bcc_refs", "email-addr"},
    {"email-message", "raw_email_ref", "artifact"},
    {"file", "parent_directory_ref", "directory"},
    {"file", "content_ref", "artifact"},
    {"file", "contains_refs", "SCO"},
    {"directory", "contains_refs", "file directory"},
    {"network-traffic", "src_ref", "ipv4-addr ipv6-addr mac-addr domain-name"},
    {"network-traffic", "dst_ref", "ipv4-addr ipv6-addr mac-addr domain-name"},
    {"network-traffic", "src_payload_ref", "artifact"},
    {"network-traffic", "dst_payload_ref", "artifact"},
    {"network-traffic", "encapsulates_refs", "network-traffic"},
    {"network-traffic", "encapsulated_by_ref", "network-traffic"},
    {"process", "opened_connection_refs", "network-traffic"},
    {"process", "creator_user_ref", "user-account"},
    {"process", "image_ref", "file"},
    {"process", "parent_ref", "process"},
    {"process", "child_refs", "process"},
    {"windows-registry-key", "creator_user_ref", "user-account"},
    {"language-content", "object_ref", NULL},
};

static const char *const sdo_types[] = {
    "attack-pattern", "campaign", "course-of-action", "grouping", "identity", "incident",
    "indicator", "infrastructure", "intrusion-set", "location", "malware", "malware-analysis",
    "note", "observed-data", "opinion", "report", "threat-actor", "tool", "vulnerability", NULL};

bool stix_is_sdo_type(const char *type)
{
    for (size_t i = 0; sdo_types[i]; i++)
        if (strcmp(sdo_types[i], type) == 0)
            return true;
    return false;
}

static bool ref_allowed(const char *ref, const char *targets)
{
    const char *dd = strstr(ref, "--");
    if (!dd)
        return false;
    size_t tlen = (size_t)(dd - ref);
    char type[128];
    snprintf(type, sizeof type, "%.*s", (int)(tlen < 127 ? tlen : 127), ref);
    const char *p = targets;
    while (*p) {
        const char *sp = strchr(p, ' ');
        size_t len = sp ? (size_t)(sp - p) : strlen(p);
        if (len == 3 && strncmp(p, "SDO", 3) == 0 && (stix_is_sdo_type(type) || strncmp(type, "x-", 2) == 0))
            return true;
        if (len == 3 && strncmp(p, "SCO", 3) == 0 && tr_stix_is_sco_type(type))
            return true;
        if (len == strlen(type) && strncmp(p, type, len) == 0)
            return true;
        p += len;
        while (*p == ' ')
            p++;
    }
    return false;
}

static int check_refs(json_t *obj, const char *type, tr_error *err)
{
    for (size_t i = 0; i < sizeof ref_rules / sizeof ref_rules[0]; i++) {
        if (ref_rules[i].type && strcmp(ref_rules[i].type, type) != 0)
            continue;
        if (!ref_rules[i].targets)
            continue;
        json_t *v = json_object_get(obj, ref_rules[i].prop);
        if (!v)
            continue;
        size_t n = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t k = 0; k < n; k++) {
            json_t *r = json_is_array(v) ? json_array_get(v, k) : v;
            if (!json_is_string(r))
                continue;                 /* the schema said so already */
            if (!ref_allowed(json_string_value(r), ref_rules[i].targets))
                return tr_fail(err, "property '%s': %s may not point to %s (allowed: %s)",
                               ref_rules[i].prop, type, json_string_value(r), ref_rules[i].targets);
        }
    }
    return 0;
}

/* Pairs of timestamps whose order the spec fixes: later >= earlier (or >). */
static const struct {
    const char *earlier, *later;
    bool strict;
} ts_order[] = {
    {"created", "modified", false},     {"first_seen", "last_seen", false},
    {"valid_from", "valid_until", true}, {"first_observed", "last_observed", false},
    {"start_time", "stop_time", true},   {"start", "end", false},
};

/* The TLP markings the spec fixes, 1.0 (definition_type tlp) and 2.0 (the
 * FIRST TLP 2.0 extension): each level has exactly one id. */
static const struct {
    const char *level, *id;
} tlp_ids[] = {
    {"white", "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"},
    {"green", "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"},
    {"amber", "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"},
    {"red", "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"},
};
static const struct {
    const char *name, *id;
} tlp2_ids[] = {
    {"TLP:CLEAR", "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"},
    {"TLP:GREEN", "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"},
    {"TLP:AMBER", "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"},
    {"TLP:AMBER+STRICT", "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"},
    {"TLP:RED", "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"},
};
#define TLP2_EXTENSION "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"

static int check_tlp(json_t *obj, const char *id, tr_error *err)
{
    const char *dt = json_string_value(json_object_get(obj, "definition_type"));
    if (dt && strcmp(dt, "tlp") == 0) {
        const char *lvl = json_string_value(json_object_get(json_object_get(obj, "definition"), "tlp"));
        for (size_t i = 0; lvl && i < sizeof tlp_ids / sizeof tlp_ids[0]; i++)
            if (strcmp(tlp_ids[i].level, lvl) == 0 && strcmp(tlp_ids[i].id, id) != 0)
                return tr_fail(err, "property 'id': TLP %s is %s, not another id", lvl, tlp_ids[i].id);
    }
    json_t *ext = json_object_get(json_object_get(obj, "extensions"), TLP2_EXTENSION);
    if (ext) {
        const char *name = json_string_value(json_object_get(obj, "name"));
        for (size_t i = 0; name && i < sizeof tlp2_ids / sizeof tlp2_ids[0]; i++)
            if (strcmp(tlp2_ids[i].name, name) == 0 && strcmp(tlp2_ids[i].id, id) != 0)
                return tr_fail(err, "property 'id': %s is %s, not another id", name, tlp2_ids[i].id);
    }
    return 0;
}

static int check_yara_pattern(const char *pattern, tr_error *err);

int tr_stix_validate_object(json_t *obj, tr_error *err)
{
    if (!json_is_object(obj))
        return tr_fail(err, "not a JSON object");
    const char *type = json_string_value(json_object_get(obj, "type"));
    const char *id = json_string_value(json_object_get(obj, "id"));
    if (!type)
        return tr_fail(err, "property 'type': missing or not a string");
    if (!id)
        return tr_fail(err, "property 'id': missing or not a string");
    /* Before the schema: its answer for a TLP marking with another id is
     * about a branch the object never meant to take. */
    if (strcmp(type, "marking-definition") == 0 && check_tlp(obj, id, err) != 0)
        return -1;
    const char *schema = stix_schema_for_type(type);
    if (!schema) {
        /* A custom object: the common properties of its class. */
        schema = json_object_get(obj, "created") ? "common/core.json"
                                                 : "common/cyber-observable-core.json";
    }
    char where[512], why[512];
    int v = stix_schema_validate(schema, obj, where, sizeof where, why, sizeof why, err);
    if (v < 0)
        return -1;
    if (v == 0) {
        if (where[0])
            return tr_fail(err, "property '%s': %s", where + 1, why);
        return tr_fail(err, "%s (schema %s)", why, schema);
    }
    size_t tl = strlen(type);
    if (strncmp(id, type, tl) != 0 || strncmp(id + tl, "--", 2) != 0)
        return tr_fail(err, "property 'id': %s does not start with its type '%s--'", id, type);
    for (size_t i = 0; i < sizeof ts_order / sizeof ts_order[0]; i++) {
        const char *a = json_string_value(json_object_get(obj, ts_order[i].earlier));
        const char *b = json_string_value(json_object_get(obj, ts_order[i].later));
        if (a && !tr_stix_ts_valid(a))
            return tr_fail(err, "property '%s': '%s' is not a STIX timestamp", ts_order[i].earlier, a);
        if (b && !tr_stix_ts_valid(b))
            return tr_fail(err, "property '%s': '%s' is not a STIX timestamp", ts_order[i].later, b);
        if (a && b) {
            int c = tr_stix_ts_cmp(b, a);
            if (c < 0 || (c == 0 && ts_order[i].strict))
                return tr_fail(err, "property '%s': %s is %s %s (%s)", ts_order[i].later, b,
                               ts_order[i].strict ? "not after" : "before", ts_order[i].earlier, a);
        }
    }
    if (check_refs(obj, type, err) != 0)
        return -1;
    if (strcmp(type, "indicator") == 0) {
        const char *pt = json_string_value(json_object_get(obj, "pattern_type"));
        const char *pattern = json_string_value(json_object_get(obj, "pattern"));
        if (pt && strcmp(pt, "stix") == 0 && stix_check_indicator_pattern(pattern, err) != 0)
            return -1;
        if (pt && strcmp(pt, "yara") == 0 && check_yara_pattern(pattern, err) != 0)
            return -1;
    }
    /* A UUIDv5 id claims to be the deterministic one: it must be. UUIDv4
     * ids stay allowed, as the spec allows them. */
    if (tr_stix_is_sco_type(type)) {
        const char *uuid = id + tl + 2;
        if (strlen(uuid) == 36 && uuid[14] == '5') {
            char want[128];
            int r = tr_stix_sco_id(obj, want, err);
            if (r < 0)
                return -1;
            if (r == 1 && strcmp(want, id) != 0)
                return tr_fail(err, "property 'id': %s is not the deterministic id of this %s "
                               "(its ID contributing properties give %s)", id, type, want);
        }
    }
    return 0;
}

/* A YARA indicator is parsed by trawl's YARA front end, as a hunt would be.
 * Patterns come from outside: the parser refuses an include wherever it
 * stands (never looking at the path), while the word in a string is fine. */
static int check_yara_pattern(const char *pattern, tr_error *err)
{
    if (!pattern || !*pattern)
        return tr_fail(err, "property 'pattern': an indicator needs a non-empty pattern");
    tr_ruleset *rs = NULL;
    tr_error perr;
    if (tr_rules_parse_buffer("pattern", pattern, strlen(pattern), &rs, &perr) != 0)
        return tr_fail(err, "property 'pattern': not valid YARA: %s", perr.msg);
    size_t n = tr_ruleset_count(rs);
    tr_ruleset_free(rs);
    if (n == 0)
        return tr_fail(err, "property 'pattern': the YARA text holds no rule");
    return 0;
}

int stix_check_indicator_pattern(const char *pattern, tr_error *err)
{
    if (!pattern || !*pattern)
        return tr_fail(err, "property 'pattern': an indicator needs a non-empty pattern");
    /* The STIX patterning grammar, refused with the line and column. */
    tr_error perr;
    tr_stix_pattern *p = tr_stix_pattern_parse(pattern, &perr);
    if (!p)
        return tr_fail(err, "property 'pattern': %s", perr.msg);
    tr_stix_pattern_free(p);
    return 0;
}

/* ---- STIX 2.0 -> 2.1 ------------------------------------------------------ */

int tr_stix_upgrade_20(json_t *obj)
{
    if (!json_is_object(obj) || json_object_get(obj, "spec_version"))
        return 0;
    const char *type = json_string_value(json_object_get(obj, "type"));
    if (!type)
        return 0;
    json_object_set_new(obj, "spec_version", json_string("2.1"));
    /* 2.0's labels carried what 2.1 split into the *_types vocabularies. */
    static const struct {
        const char *type, *prop;
    } labels_to[] = {
        {"malware", "malware_types"},   {"tool", "tool_types"},
        {"indicator", "indicator_types"}, {"threat-actor", "threat_actor_types"},
        {"report", "report_types"},
    };
    json_t *labels = json_object_get(obj, "labels");
    for (size_t i = 0; i < sizeof labels_to / sizeof labels_to[0]; i++) {
        if (strcmp(labels_to[i].type, type) != 0 || !json_is_array(labels))
            continue;
        if (!json_object_get(obj, labels_to[i].prop))
            json_object_set(obj, labels_to[i].prop, labels);
        json_object_del(obj, "labels");
        break;
    }
    if (strcmp(type, "malware") == 0 && !json_object_get(obj, "is_family"))
        json_object_set_new(obj, "is_family", json_true());
    if (strcmp(type, "indicator") == 0 && !json_object_get(obj, "pattern_type"))
        json_object_set_new(obj, "pattern_type", json_string("stix"));
    /* 2.0 timestamps may lack the milliseconds 2.1 requires on created and
     * modified. */
    static const char *const ms_props[] = {"created", "modified"};
    for (size_t i = 0; i < 2; i++) {
        const char *ts = json_string_value(json_object_get(obj, ms_props[i]));
        if (ts && strlen(ts) == 20 && ts[19] == 'Z') {
            char fixed[32];
            snprintf(fixed, sizeof fixed, "%.19s.000Z", ts);
            json_object_set_new(obj, ms_props[i], json_string(fixed));
        }
    }
    /* Objects without modified in 2.0 (marking definitions) need none in 2.1. */
    return 1;
}

/* ---- bundles ------------------------------------------------------------- */

static size_t skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

static size_t skip_string(const char *s, size_t i, size_t n)
{
    for (i++; i < n && s[i] != '"'; i++)
        if (s[i] == '\\')
            i++;
    return i < n ? i + 1 : n;
}

static size_t skip_value(const char *s, size_t i, size_t n)
{
    if (i >= n)
        return n;
    if (s[i] == '"')
        return skip_string(s, i, n);
    if (s[i] == '{' || s[i] == '[') {
        int depth = 0;
        while (i < n) {
            char ch = s[i];
            if (ch == '"') {
                i = skip_string(s, i, n);
                continue;
            }
            if (ch == '{' || ch == '[')
                depth++;
            else if (ch == '}' || ch == ']')
                depth--;
            i++;
            if (depth == 0)
                return i;
        }
        return n;
    }
    while (i < n && !strchr(",}] \t\r\n", s[i]))
        i++;
    return i;
}

/* Walks a bundle (or TAXII envelope) without holding all of it parsed: the
 * envelope is scanned strictly, each element of "objects" is parsed on its
 * own from its exact bytes, upgraded if the bundle is STIX 2.0, validated,
 * and handed to cb with the text to store. Memory stays near the input's
 * size however many objects the bundle holds. */
static int envelope_error(tr_error *err, size_t at, const char *what)
{
    return tr_fail(err, "not JSON: %s at byte %zu", what, at);
}

int stix_bundle_each(const char *text, size_t len, bool validate, stix_object_cb cb, void *arg,
                     bool *upgraded, size_t *count, tr_error *err)
{
    *upgraded = false;
    *count = 0;
    json_t *env = json_object();
    if (!env)
        tr_die("out of memory");
    size_t arr_start = 0, arr_end = 0;
    bool have_objects = false;
    int rc = -1;
    size_t i = skip_ws(text, 0, len);
    if (i >= len || text[i] != '{') {
        /* Let jansson say what is wrong with it. */
        json_error_t je;
        json_t *j = json_loadb(text, len, JSON_DECODE_ANY, &je);
        if (!j)
            tr_fail(err, "not JSON: %s (line %d, column %d)", je.text, je.line, je.column);
        else
            tr_fail(err, "a bundle is a JSON object");
        json_decref(j);
        goto out;
    }
    i = skip_ws(text, i + 1, len);
    if (i < len && text[i] == '}') {
        i++;
    } else {
        for (;;) {
            if (i >= len || text[i] != '"') {
                envelope_error(err, i, "expected a member name");
                goto out;
            }
            size_t ks = i;
            i = skip_string(text, i, len);
            json_t *key = json_loadb(text + ks, i - ks, JSON_DECODE_ANY, NULL);
            if (!json_is_string(key)) {
                json_decref(key);
                envelope_error(err, ks, "bad member name");
                goto out;
            }
            char name[64];
            snprintf(name, sizeof name, "%s", json_string_value(key));
            bool dup = json_object_get(env, json_string_value(key)) != NULL ||
                       (strcmp(json_string_value(key), "objects") == 0 && have_objects);
            json_decref(key);
            if (dup) {
                envelope_error(err, ks, "duplicate member");
                goto out;
            }
            i = skip_ws(text, i, len);
            if (i >= len || text[i] != ':') {
                envelope_error(err, i, "expected ':'");
                goto out;
            }
            i = skip_ws(text, i + 1, len);
            size_t vs = i;
            i = skip_value(text, i, len);
            if (strcmp(name, "objects") == 0 && vs < len && text[vs] == '[') {
                have_objects = true;
                arr_start = vs;
                arr_end = i;
            } else {
                json_error_t je;
                json_t *v = json_loadb(text + vs, i - vs, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
                if (!v) {
                    tr_fail(err, "not JSON: %s in member '%s'", je.text, name);
                    goto out;
                }
                json_object_set_new(env, name, v);
            }
            i = skip_ws(text, i, len);
            if (i < len && text[i] == ',') {
                i = skip_ws(text, i + 1, len);
                continue;
            }
            if (i < len && text[i] == '}') {
                i++;
                break;
            }
            envelope_error(err, i, "expected ',' or '}'");
            goto out;
        }
    }
    if (skip_ws(text, i, len) != len) {
        envelope_error(err, i, "text after the bundle");
        goto out;
    }
    const char *btype = json_string_value(json_object_get(env, "type"));
    if (json_object_get(env, "type") && (!btype || strcmp(btype, "bundle") != 0)) {
        tr_fail(err, "property 'type' of the bundle: it is not \"bundle\"");
        goto out;
    }
    if (btype) {
        const char *bid = json_string_value(json_object_get(env, "id"));
        if (!bid || strncmp(bid, "bundle--", 8) != 0) {
            tr_fail(err, "property 'id' of the bundle: missing or not bundle--UUID");
            goto out;
        }
    }
    if (!have_objects) {
        tr_fail(err, "property 'objects': %s", json_object_get(env, "objects") ? "not an array" : "missing");
        goto out;
    }
    const char *bspec = json_string_value(json_object_get(env, "spec_version"));
    bool v20 = bspec && strcmp(bspec, "2.0") == 0;
    *upgraded = v20;
    size_t k = skip_ws(text, arr_start + 1, arr_end);
    size_t index = 0;
    if (k < arr_end && text[k] == ']') {
        k++;
    } else {
        for (;;) {
            size_t es = k;
            k = skip_value(text, k, arr_end);
            json_error_t je;
            json_t *obj = json_loadb(text + es, k - es, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
            if (!obj) {
                tr_fail(err, "object %zu: not JSON: %s", index, je.text);
                goto out;
            }
            const char *oid = json_string_value(json_object_get(obj, "id"));
            const char *otype = json_string_value(json_object_get(obj, "type"));
            bool changed = false;
            /* A 2.1 SDO always names its spec_version: one without is 2.0. */
            if (json_is_object(obj) && !json_object_get(obj, "spec_version") &&
                (v20 || (json_object_get(obj, "created") && !tr_stix_is_sco_type(otype ? otype : "")))) {
                changed = tr_stix_upgrade_20(obj) == 1;
                *upgraded = *upgraded || changed;
            }
            tr_error oerr;
            if (validate && tr_stix_validate_object(obj, &oerr) != 0) {
                tr_fail(err, "object %zu (%.200s): %s", index, oid ? oid : "no id", oerr.msg);
                json_decref(obj);
                goto out;
            }
            int cbrc = 0;
            if (!cb) {
                /* validation only */
            } else if (changed) {
                char *re = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
                if (!re)
                    tr_die("out of memory");
                cbrc = cb(arg, index, obj, re, strlen(re), err);
                free(re);
            } else {
                cbrc = cb(arg, index, obj, text + es, k - es, err);
            }
            json_decref(obj);
            if (cbrc != 0)
                goto out;
            index++;
            k = skip_ws(text, k, arr_end);
            if (k < arr_end && text[k] == ',') {
                k = skip_ws(text, k + 1, arr_end);
                continue;
            }
            if (k < arr_end && text[k] == ']') {
                k++;
                break;
            }
            tr_fail(err, "object %zu: not JSON: expected ',' or ']' after it", index - 1);
            goto out;
        }
    }
    if (k != arr_end) {
        tr_fail(err, "not JSON: the objects array does not end where it should");
        goto out;
    }
    *count = index;
    rc = 0;
out:
    json_decref(env);
    return rc;
}

void tr_stix_bundle_free(tr_stix_bundle *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        free(b->objects[i].text);
        json_decref(b->objects[i].obj);
    }
    free(b->objects);
    memset(b, 0, sizeof *b);
}

static int collect(void *arg, size_t index, json_t *obj, const char *text, size_t len, tr_error *err)
{
    (void)index;
    (void)err;
    tr_stix_bundle *b = arg;
    if (b->n == b->cap) {   /* doubling: a 100k-object bundle is not 100k copies */
        b->cap = b->cap ? b->cap * 2 : 64;
        b->objects = tr_xrealloc(b->objects, b->cap * sizeof *b->objects);
    }
    tr_stix_parsed_object *po = &b->objects[b->n++];
    po->obj = json_incref(obj);
    po->text = tr_xmalloc(len + 1);
    memcpy(po->text, text, len);
    po->text[len] = '\0';
    po->len = len;
    return 0;
}

int tr_stix_bundle_parse(const char *text, size_t len, tr_stix_bundle *out, tr_error *err)
{
    memset(out, 0, sizeof *out);
    size_t n = 0;
    if (stix_bundle_each(text, len, true, collect, out, &out->upgraded, &n, err) != 0) {
        tr_stix_bundle_free(out);
        return -1;
    }
    return 0;
}
