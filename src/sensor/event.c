/* sensor/event: the observation record and its JSON wire form. */
#include "sensor/event.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The field slots past nfields are never read, so they are not cleared: they
 * are most of the struct, and the pcap decoder makes millions of events. */
void tr_event_init(tr_event *e)
{
    memset(e, 0, offsetof(tr_event, fields));
    e->nfields = 0;
    e->family = 4;
    e->ip_id = e->ttl = e->tcp_window = e->tcp_flags = -1;
    e->tcp_seq = -1;
    e->packets = 1;
}

void tr_event_clear(tr_event *e)
{
    free(e->payload);
    for (size_t i = 0; i < e->nfields; i++) {
        if (e->borrowed >> i & 1)
            continue;
        free(e->fields[i].key);
        free(e->fields[i].value);
    }
    memset(e, 0, offsetof(tr_event, fields));
    e->nfields = 0;
}

/* The index of key's field, or -1. */
static int field_index(const tr_event *e, const char *key)
{
    for (size_t i = 0; i < e->nfields; i++)
        if (strcmp(e->fields[i].key, key) == 0)
            return (int)i;
    return -1;
}

int tr_event_set(tr_event *e, const char *key, const char *value)
{
    int i = field_index(e, key);
    if (i >= 0 && !(e->borrowed >> i & 1)) {
        free(e->fields[i].value);
        e->fields[i].value = tr_xstrdup(value);
        return 0;
    }
    if (i < 0) {
        if (e->nfields >= TR_EVENT_FIELDS_MAX)
            return -1;
        i = (int)e->nfields++;
    }
    e->fields[i].key = tr_xstrdup(key);
    e->fields[i].value = tr_xstrdup(value);
    e->borrowed &= ~(1ull << i);
    return 0;
}

int tr_event_set_static(tr_event *e, const char *key, const char *value)
{
    int i = field_index(e, key);
    if (i >= 0 && !(e->borrowed >> i & 1)) {
        free(e->fields[i].key);
        free(e->fields[i].value);
    }
    if (i < 0) {
        if (e->nfields >= TR_EVENT_FIELDS_MAX)
            return -1;
        i = (int)e->nfields++;
    }
    e->fields[i].key = (char *)key;
    e->fields[i].value = (char *)value;
    e->borrowed |= 1ull << i;
    return 0;
}

const char *tr_event_get(const tr_event *e, const char *key)
{
    for (size_t i = 0; i < e->nfields; i++)
        if (strcmp(e->fields[i].key, key) == 0)
            return e->fields[i].value;
    return NULL;
}

void tr_event_set_payload(tr_event *e, const void *p, size_t n)
{
    free(e->payload);
    e->payload = NULL;
    e->payload_len = 0;
    if (n > TR_EVENT_PAYLOAD_MAX)
        n = TR_EVENT_PAYLOAD_MAX;
    if (n == 0)
        return;
    e->payload = tr_xmalloc(n);
    memcpy(e->payload, p, n);
    e->payload_len = n;
}

static void addr_text(int family, const uint8_t *a, char out[46])
{
    if (!inet_ntop(family == 6 ? AF_INET6 : AF_INET, a, out, 46))
        snprintf(out, 46, "?");
}

void tr_event_src_text(const tr_event *e, char out[46])
{
    addr_text(e->family, e->src_ip, out);
}

void tr_event_dst_text(const tr_event *e, char out[46])
{
    addr_text(e->family, e->dst_ip, out);
}

static void format_time(int64_t us, char out[40])
{
    time_t s = (time_t)(us / 1000000);
    long frac = (long)(us % 1000000);
    if (frac < 0) {
        frac += 1000000;
        s -= 1;
    }
    struct tm tm;
    if (!gmtime_r(&s, &tm))
        memset(&tm, 0, sizeof tm);
    /* Four-digit years always (strftime's %Y writes 999 for 999), so that
     * what is written parses back; years past 9999 cannot be expressed. */
    int year = tm.tm_year + 1900;
    if (year < 0)
        year = 0;
    if (year > 9999)
        year = 9999;
    snprintf(out, 40, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", year, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

/* "YYYY-MM-DDTHH:MM:SS[.frac]Z" -> microseconds. */
static int parse_time(const char *s, int64_t *out)
{
    struct tm tm = {0};
    int consumed = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &consumed) != 6 || consumed != 19)
        return -1;
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const char *p = s + 19;
    int64_t frac = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 6)
                frac = frac * 10 + (*p - '0');
        if (digits == 0)
            return -1;
        for (; digits < 6; digits++)
            frac *= 10;
    }
    if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
        return -1;
    *out = (int64_t)timegm(&tm) * 1000000 + frac;
    return 0;
}

static void set_int(json_t *o, const char *k, int64_t v)
{
    if (v >= 0)
        json_object_set_new(o, k, json_integer(v));
}

json_t *tr_event_to_json(const tr_event *e)
{
    json_t *o = json_object();
    char buf[46], t[40];
    if (!o)
        tr_die("out of memory");
    format_time(e->time_us, t);
    json_object_set_new(o, "time", json_string(t));
    json_object_set_new(o, "sensor", json_string(e->sensor));
    tr_event_src_text(e, buf);
    json_object_set_new(o, "src_ip", json_string(buf));
    json_object_set_new(o, "src_port", json_integer(e->src_port));
    tr_event_dst_text(e, buf);
    json_object_set_new(o, "dst_ip", json_string(buf));
    json_object_set_new(o, "dst_port", json_integer(e->dst_port));
    json_object_set_new(o, "transport", json_string(e->transport));
    json_object_set_new(o, "proto", json_string(e->proto));
    set_int(o, "ip_id", e->ip_id);
    set_int(o, "ttl", e->ttl);
    set_int(o, "tcp_window", e->tcp_window);
    set_int(o, "tcp_flags", e->tcp_flags);
    set_int(o, "tcp_seq", e->tcp_seq);
    if (e->tcp_options[0])
        json_object_set_new(o, "tcp_options", json_string(e->tcp_options));
    json_object_set_new(o, "handshake", json_boolean(e->handshake));
    json_object_set_new(o, "packets", json_integer(e->packets));
    if (e->payload_len) {
        size_t cap = 4 * ((e->payload_len + 2) / 3) + 1;
        char *b64 = tr_xmalloc(cap);
        EVP_EncodeBlock((unsigned char *)b64, e->payload, (int)e->payload_len);
        json_object_set_new(o, "payload_b64", json_string(b64));
        free(b64);
    }
    json_t *f = json_object();
    for (size_t i = 0; i < e->nfields; i++)
        json_object_set_new(f, e->fields[i].key, json_string(e->fields[i].value));
    json_object_set_new(o, "fields", f);
    return o;
}

static int get_ip(const json_t *j, const char *k, int *family, uint8_t out[16], tr_error *err)
{
    const char *s = json_string_value(json_object_get(j, k));
    if (!s)
        return tr_fail(err, "event: '%s' must be an IP address string", k);
    memset(out, 0, 16);
    if (inet_pton(AF_INET, s, out) == 1) {
        *family = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, s, out) == 1) {
        *family = 6;
        return 0;
    }
    return tr_fail(err, "event: '%s' is not an IP address: \"%.60s\"", k, s);
}

static int get_num(const json_t *j, const char *k, int64_t lo, int64_t hi, int64_t *out,
                   tr_error *err)
{
    const json_t *v = json_object_get(j, k);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return tr_fail(err, "event: '%s' must be an integer from %lld to %lld", k, (long long)lo,
                       (long long)hi);
    *out = json_integer_value(v);
    return 0;
}

static int get_text(const json_t *j, const char *k, char *out, size_t outsz, bool required,
                    tr_error *err)
{
    const json_t *v = json_object_get(j, k);
    if (!v) {
        if (required)
            return tr_fail(err, "event: '%s' is missing", k);
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s || strlen(s) >= outsz || json_string_length(v) != strlen(s))
        return tr_fail(err, "event: '%s' must be a string of at most %zu bytes", k, outsz - 1);
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

/* ---- the JSON line without building a tree ---------------------------------
 * The live sensor writes one line per connection; jansson's tree, its
 * allocations and its number formatting were a fifth of the sensor's CPU.
 * This writes the same bytes as json_dumps(tr_event_to_json(e), JSON_COMPACT)
 * (jansson keeps insertion order and escapes only '"', '\\' and control
 * characters), for events whose strings are printable ASCII, which is what
 * the listener's parsers produce; anything else goes through jansson, so the
 * two can never differ (tests/unit/test_sensor_event.c compares them). */
static bool plain_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

static void put_str(tr_buf *b, const char *s)
{
    tr_buf_append(b, "\"", 1);
    for (const char *run = s;; s++) {
        if (*s == '"' || *s == '\\' || !*s) {
            tr_buf_append(b, run, (size_t)(s - run));
            if (!*s)
                break;
            tr_buf_append(b, *s == '"' ? "\\\"" : "\\\\", 2);
            run = s + 1;
        }
    }
    tr_buf_append(b, "\"", 1);
}

static void put_key_str(tr_buf *b, const char *k, const char *v)
{
    tr_buf_append(b, ",", 1);
    put_str(b, k);
    tr_buf_append(b, ":", 1);
    put_str(b, v);
}

static void put_key_int(tr_buf *b, const char *k, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%lld", (long long)v);
    tr_buf_append(b, ",", 1);
    put_str(b, k);
    tr_buf_append(b, ":", 1);
    tr_buf_append(b, num, (size_t)n);
}

void tr_event_json_line(const tr_event *e, tr_buf *out)
{
    bool plain = plain_ascii(e->sensor) && plain_ascii(e->transport) && plain_ascii(e->proto) &&
                 plain_ascii(e->tcp_options);
    for (size_t i = 0; plain && i < e->nfields; i++)
        plain = plain_ascii(e->fields[i].key) && plain_ascii(e->fields[i].value);
    /* Duplicate field keys (possible from JSON input only) collapse in jansson. */
    for (size_t i = 0; plain && i < e->nfields; i++)
        for (size_t j = 0; plain && j < i; j++)
            plain = strcmp(e->fields[i].key, e->fields[j].key) != 0;
    if (!plain) {
        json_t *j = tr_event_to_json(e);
        char *s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!s)
            tr_die("out of memory");
        tr_buf_append(out, s, strlen(s));
        free(s);
        return;
    }
    char t[40], a[46];
    format_time(e->time_us, t);
    tr_buf_append(out, "{\"time\":", 8);
    put_str(out, t);
    put_key_str(out, "sensor", e->sensor);
    tr_event_src_text(e, a);
    put_key_str(out, "src_ip", a);
    put_key_int(out, "src_port", e->src_port);
    tr_event_dst_text(e, a);
    put_key_str(out, "dst_ip", a);
    put_key_int(out, "dst_port", e->dst_port);
    put_key_str(out, "transport", e->transport);
    put_key_str(out, "proto", e->proto);
    if (e->ip_id >= 0)
        put_key_int(out, "ip_id", e->ip_id);
    if (e->ttl >= 0)
        put_key_int(out, "ttl", e->ttl);
    if (e->tcp_window >= 0)
        put_key_int(out, "tcp_window", e->tcp_window);
    if (e->tcp_flags >= 0)
        put_key_int(out, "tcp_flags", e->tcp_flags);
    if (e->tcp_seq >= 0)
        put_key_int(out, "tcp_seq", e->tcp_seq);
    if (e->tcp_options[0])
        put_key_str(out, "tcp_options", e->tcp_options);
    tr_buf_append(out, e->handshake ? ",\"handshake\":true" : ",\"handshake\":false",
                  e->handshake ? 17 : 18);
    put_key_int(out, "packets", e->packets);
    if (e->payload_len) {
        size_t cap = 4 * ((e->payload_len + 2) / 3) + 1;
        char *b64 = tr_xmalloc(cap);
        EVP_EncodeBlock((unsigned char *)b64, e->payload, (int)e->payload_len);
        put_key_str(out, "payload_b64", b64);
        free(b64);
    }
    tr_buf_append(out, ",\"fields\":{", 11);
    for (size_t i = 0; i < e->nfields; i++) {
        if (i)
            tr_buf_append(out, ",", 1);
        put_str(out, e->fields[i].key);
        tr_buf_append(out, ":", 1);
        put_str(out, e->fields[i].value);
    }
    tr_buf_append(out, "}}", 2);
}

int tr_event_from_json(const json_t *j, tr_event *e, tr_error *err)
{
    tr_event_init(e);
    if (!json_is_object(j))
        return tr_fail(err, "event: not a JSON object");
    const char *t = json_string_value(json_object_get(j, "time"));
    if (!t || parse_time(t, &e->time_us) != 0)
        return tr_fail(err, "event: 'time' must be an RFC 3339 UTC time like "
                            "\"2026-11-28T18:00:00.123Z\"");
    int fam_dst = 4;
    int64_t n;
    if (get_text(j, "sensor", e->sensor, sizeof e->sensor, false, err) ||
        get_ip(j, "src_ip", &e->family, e->src_ip, err) ||
        get_ip(j, "dst_ip", &fam_dst, e->dst_ip, err) ||
        get_text(j, "transport", e->transport, sizeof e->transport, true, err) ||
        get_text(j, "proto", e->proto, sizeof e->proto, false, err) ||
        get_text(j, "tcp_options", e->tcp_options, sizeof e->tcp_options, false, err))
        goto fail;
    if (fam_dst != e->family) {
        tr_fail(err, "event: 'src_ip' and 'dst_ip' are of different address families");
        goto fail;
    }
    struct {
        const char *k;
        int64_t hi;
    } nums[] = {{"src_port", 65535}, {"dst_port", 65535}, {"ip_id", 65535},
                {"ttl", 255},        {"tcp_window", 65535}, {"tcp_flags", 255},
                {"tcp_seq", 4294967295LL}, {"packets", 4294967295LL}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        n = -1;
        if (get_num(j, nums[i].k, 0, nums[i].hi, &n, err))
            goto fail;
        if (n < 0)
            continue;
        switch (i) {
        case 0: e->src_port = (uint16_t)n; break;
        case 1: e->dst_port = (uint16_t)n; break;
        case 2: e->ip_id = (int32_t)n; break;
        case 3: e->ttl = (int32_t)n; break;
        case 4: e->tcp_window = (int32_t)n; break;
        case 5: e->tcp_flags = (int32_t)n; break;
        case 6: e->tcp_seq = n; break;
        default: e->packets = n ? (unsigned)n : 1; break;
        }
    }
    const json_t *hs = json_object_get(j, "handshake");
    if (hs && !json_is_boolean(hs)) {
        tr_fail(err, "event: 'handshake' must be true or false");
        goto fail;
    }
    e->handshake = hs ? json_is_true(hs) : true;
    const json_t *pb = json_object_get(j, "payload_b64");
    if (pb) {
        const char *b64 = json_string_value(pb);
        size_t len = b64 ? strlen(b64) : 0;
        if (!b64 || len % 4 != 0 || len / 4 * 3 > TR_EVENT_PAYLOAD_MAX + 2) {
            tr_fail(err, "event: 'payload_b64' must be base64 of at most %d bytes",
                    TR_EVENT_PAYLOAD_MAX);
            goto fail;
        }
        if (len) {
            uint8_t *raw = tr_xmalloc(len / 4 * 3 + 1);
            int got = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
            if (got < 0) {
                free(raw);
                tr_fail(err, "event: 'payload_b64' is not valid base64");
                goto fail;
            }
            /* EVP_DecodeBlock counts the padding bytes as data. */
            if (len >= 1 && b64[len - 1] == '=')
                got--;
            if (len >= 2 && b64[len - 2] == '=')
                got--;
            tr_event_set_payload(e, raw, (size_t)got);
            free(raw);
        }
    }
    const json_t *f = json_object_get(j, "fields");
    if (f && !json_is_object(f)) {
        tr_fail(err, "event: 'fields' must be an object of strings");
        goto fail;
    }
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)f, k, v) {
        const char *s = json_string_value(v);
        if (!s || json_string_length(v) != strlen(s)) {
            tr_fail(err, "event: field '%.60s' must be a string without NUL bytes", k);
            goto fail;
        }
        if (tr_event_set(e, k, s) != 0) {
            tr_fail(err, "event: more than %d fields", TR_EVENT_FIELDS_MAX);
            goto fail;
        }
    }
    return 0;
fail:
    tr_event_clear(e);
    return -1;
}
