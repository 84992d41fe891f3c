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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_early_years_keep_four_digits),
        cmocka_unit_test(test_bad_input_names_the_property),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
