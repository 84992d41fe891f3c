/* tr_cowrie_import over the Cowrie authors' own sample events (../shared) and
 * over a log with broken lines between good ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sensor/sensor.h"

#define SAMPLE TRAWL_SHARED_DIR "/data/sensors/cowrie/sample-events-from-test_ocsf.jsonl"

typedef struct collected {
    tr_event ev[32];
    size_t n;
} collected;

/* Keeps a copy through the JSON form, which is also what goes on the wire. */
static int collect(void *ctx, tr_event *e, tr_error *err)
{
    collected *c = ctx;
    json_t *j = tr_event_to_json(e);
    if (c->n >= 32 || tr_event_from_json(j, &c->ev[c->n], err) != 0) {
        json_decref(j);
        return -1;
    }
    json_decref(j);
    c->n++;
    return 0;
}

static void collected_free(collected *c)
{
    for (size_t i = 0; i < c->n; i++)
        tr_event_clear(&c->ev[i]);
    c->n = 0;
}

static const tr_event *by_eventid(const collected *c, const char *id)
{
    for (size_t i = 0; i < c->n; i++) {
        const char *v = tr_event_get(&c->ev[i], "cowrie_eventid");
        if (v && strcmp(v, id) == 0)
            return &c->ev[i];
    }
    fail_msg("no event %s", id);
    return NULL;
}

static void test_cowrie_sample(void **state)
{
    if (access(SAMPLE, R_OK) != 0) {
        printf("skipped: %s is missing\n", SAMPLE);
        skip();
    }
    collected c = {0};
    tr_import_stats st;
    tr_error err;
    assert_int_equal(tr_cowrie_import(SAMPLE, NULL, collect, &c, &st, &err), 0);
    assert_int_equal(st.records, 12);
    assert_int_equal(st.bad, 0);
    assert_int_equal(st.events, 12);
    const tr_event *e = by_eventid(&c, "cowrie.session.connect");
    assert_string_equal(e->sensor, "honeypot-01");
    assert_int_equal(e->src_port, 37434);
    assert_int_equal(e->dst_port, 2222);
    assert_string_equal(e->proto, "ssh");
    assert_int_equal(e->time_us, 1782224126253618LL);   /* 2026-06-23T14:15:26.253618Z */
    e = by_eventid(&c, "cowrie.login.failed");
    assert_string_equal(tr_event_get(e, "username"), "root");
    assert_string_equal(tr_event_get(e, "password"), "root");
    assert_string_equal(tr_event_get(e, "login_result"), "failed");
    e = by_eventid(&c, "cowrie.login.success");
    assert_string_equal(tr_event_get(e, "password"), "lol");
    /* a later event of session 1 gets the ports its connect event named */
    assert_int_equal(e->dst_port, 2222);
    e = by_eventid(&c, "cowrie.command.input");
    assert_string_equal(tr_event_get(e, "command"), "uname -a");
    e = by_eventid(&c, "cowrie.session.file_download");
    assert_string_equal(tr_event_get(e, "download_url"), "http://198.51.100.5/x.sh");
    assert_string_equal(tr_event_get(e, "download_sha256"),
                        "2638f1c1c2018567a46a4cae049dd90db2d468e1538d60d328f2707d071f73c5");
    e = by_eventid(&c, "cowrie.client.version");
    assert_string_equal(tr_event_get(e, "ssh_client"), "SSH-2.0-OpenSSH_9.6p1");
    e = by_eventid(&c, "cowrie.client.kex");
    assert_string_equal(tr_event_get(e, "hassh"), "aae6b9604f6f3356543709a376d7f657");
    collected_free(&c);

    /* a name given by the importer wins over the log's */
    assert_int_equal(tr_cowrie_import(SAMPLE, "edge-7", collect, &c, &st, &err), 0);
    assert_string_equal(c.ev[0].sensor, "edge-7");
    collected_free(&c);
}

static void test_cowrie_bad_lines(void **state)
{
    char path[] = "/tmp/trawl-cowrie-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs("{\"eventid\":\"cowrie.session.connect\",\"src_ip\":\"198.51.100.8\",\"src_port\":5000,"
          "\"dst_ip\":\"203.0.113.1\",\"dst_port\":23,\"session\":\"a1\",\"protocol\":\"telnet\","
          "\"sensor\":\"h\",\"timestamp\":\"2026-11-28T10:00:00Z\"}\n", f);
    fputs("{\"eventid\":\"cowrie.login.failed\",\"username\":\"ro", f);   /* cut short */
    fputs("\n\n", f);
    fputs("[1,2]\n", f);
    fputs("{\"eventid\":\"cowrie.login.failed\",\"src_ip\":\"not-an-ip\",\"timestamp\":\"2026-11-28T10:00:01Z\"}\n", f);
    fputs("{\"eventid\":\"cowrie.login.failed\",\"username\":\"admin\",\"password\":\"\\u00e9t\\u00e9\","
          "\"src_ip\":\"198.51.100.8\",\"session\":\"a1\",\"protocol\":\"telnet\",\"sensor\":\"h\","
          "\"timestamp\":\"2026-11-28T10:00:02.5Z\"}\n", f);
    fclose(f);
    collected c = {0};
    tr_import_stats st;
    tr_error err;
    assert_int_equal(tr_cowrie_import(path, NULL, collect, &c, &st, &err), 0);
    assert_int_equal(st.records, 5);
    assert_int_equal(st.bad, 3);
    assert_int_equal(c.n, 2);
    assert_non_null(strstr(st.first_bad, "line 2: invalid JSON"));
    assert_string_equal(c.ev[1].proto, "telnet");
    assert_int_equal(c.ev[1].dst_port, 23);
    assert_int_equal(c.ev[1].time_us % 1000000, 500000);
    assert_string_equal(tr_event_get(&c.ev[1], "username"), "admin");
    assert_string_equal(tr_event_get(&c.ev[1], "password"), "\xc3\xa9t\xc3\xa9");
    collected_free(&c);
    unlink(path);

    assert_int_equal(tr_cowrie_import("/nonexistent/cowrie.json", NULL, collect, &c, &st, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/cowrie.json"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cowrie_sample),
        cmocka_unit_test(test_cowrie_bad_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
