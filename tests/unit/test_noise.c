/* noise: per-IP aggregates, bounded sets, spoofable, classification order,
 * retention, Tor lists, tag edits re-judging stored events, and libyara
 * crashes contained in the child. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "noise/noise.h"
#include "noise/noise_internal.h"
#include "store/store.h"

typedef struct fx {
    char *dir;
    tr_noise *n;
} fx;

static int setup(void **state)
{
    fx *f = tr_xcalloc(1, sizeof *f);
    char tmpl[] = "/tmp/trawl-noise-XXXXXX";
    f->dir = tr_xstrdup(mkdtemp(tmpl));
    tr_error err;
    tr_store *s = NULL;
    if (tr_store_open(f->dir, TR_STORE_CREATE, &s, &err) != 0)
        fail_msg("%s", err.msg);
    tr_store_close(s);
    if (tr_noise_open(f->dir, &f->n, &err) != 0)
        fail_msg("%s", err.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    tr_noise_close(f->n);
    char *cmd = tr_xasprintf("rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
    free(cmd);
    free(f->dir);
    free(f);
    return 0;
}

static void mk(tr_event *e, const char *src, int port, const char *proto, bool handshake,
               int64_t t_us)
{
    tr_event_init(e);
    e->time_us = t_us;
    snprintf(e->sensor, sizeof e->sensor, "unit");
    e->family = 4;
    uint8_t a[4] = {203, 0, 113, 0}, d[4] = {198, 51, 100, 1};
    a[3] = (uint8_t)atoi(strrchr(src, '.') + 1);
    memcpy(e->src_ip, a, 4);
    memcpy(e->dst_ip, d, 4);
    e->src_port = 40000;
    e->dst_port = (uint16_t)port;
    snprintf(e->transport, sizeof e->transport, "tcp");
    snprintf(e->proto, sizeof e->proto, "%s", proto);
    e->handshake = handshake;
}

static int64_t now_us(void)
{
    return tr_now_unix() * 1000000;
}

static json_t *record(fx *f, const char *ip)
{
    json_t *r = NULL;
    tr_error err;
    int rc = tr_noise_ip(f->n, ip, &r, &err);
    if (rc < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(rc, 1);
    return r;
}

static void ingest(fx *f, tr_event *e, size_t n)
{
    tr_error err;
    if (tr_noise_ingest(f->n, e, n, NULL, &err) != 0)
        fail_msg("%s", err.msg);
    for (size_t i = 0; i < n; i++)
        tr_event_clear(&e[i]);
}

static void test_aggregates_and_spoofable(void **state)
{
    fx *f = *state;
    tr_event e[3];
    int64_t t = now_us();
    mk(&e[0], "203.0.113.10", 23, "syn", false, t - 2000000);
    mk(&e[1], "203.0.113.10", 2323, "syn", false, t - 1000000);
    ingest(f, e, 2);
    json_t *r = record(f, "203.0.113.10");
    assert_true(json_is_true(json_object_get(r, "spoofable")));
    assert_int_equal(json_integer_value(json_object_get(r, "events")), 2);
    assert_int_equal(json_array_size(json_object_get(json_object_get(r, "raw_data"), "scan")), 2);
    json_decref(r);

    /* One completed handshake ends "spoofable" for good. */
    mk(&e[0], "203.0.113.10", 80, "http", true, t);
    tr_event_set(&e[0], "http_path", "/admin");
    tr_event_set(&e[0], "http_user_agent", "UnitAgent/1.0");
    tr_event_set(&e[0], "username", "root");
    tr_event_set(&e[0], "password", "toor");
    ingest(f, e, 1);
    mk(&e[0], "203.0.113.10", 23, "syn", false, t);
    ingest(f, e, 1);
    r = record(f, "203.0.113.10");
    assert_false(json_is_true(json_object_get(r, "spoofable")));
    assert_int_equal(json_integer_value(json_object_get(r, "events")), 4);
    json_t *web = json_object_get(json_object_get(r, "raw_data"), "web");
    assert_string_equal(json_string_value(json_array_get(json_object_get(web, "paths"), 0)),
                        "/admin");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(web, "useragents"), 0)), "UnitAgent/1.0");
    json_t *cred = json_array_get(json_object_get(r, "credentials"), 0);
    assert_string_equal(json_string_value(json_object_get(cred, "username")), "root");
    assert_string_equal(json_string_value(json_object_get(cred, "password")), "toor");
    /* Credentials and no malicious tag: suspicious. */
    assert_string_equal(json_string_value(json_object_get(r, "classification")), "suspicious");
    json_t *days = json_object_get(r, "events_per_day");
    int64_t sum = 0;
    const char *k;
    json_t *v;
    json_object_foreach(days, k, v) sum += json_integer_value(v);
    assert_int_equal(sum, 4);
    assert_int_equal(json_array_size(json_object_get(r, "sensors")), 1);
    json_decref(r);
}

static void test_bounded_sets(void **state)
{
    fx *f = *state;
    enum { N = TR_NOISE_SET_MAX + 7 };
    tr_event *e = tr_xcalloc(N, sizeof *e);
    for (int i = 0; i < N; i++) {
        mk(&e[i], "203.0.113.11", 80, "http", true, now_us());
        char p[32];
        snprintf(p, sizeof p, "/p%d", i);
        tr_event_set(&e[i], "http_path", p);
    }
    ingest(f, e, N);
    free(e);
    json_t *r = record(f, "203.0.113.11");
    json_t *paths = json_object_get(json_object_get(json_object_get(r, "raw_data"), "web"), "paths");
    assert_int_equal(json_array_size(paths), TR_NOISE_SET_MAX);
    assert_string_equal(json_string_value(json_array_get(paths, 0)), "/p0");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "dropped_values"), "path")),
                     7);
    json_decref(r);
}

static void test_classification_order(void **state)
{
    fx *f = *state;
    tr_event e[1];
    tr_error err;
    mk(&e[0], "203.0.113.12", 80, "http", true, now_us());
    tr_event_set(&e[0], "http_path", "/.env");
    ingest(f, e, 1);
    json_t *r = record(f, "203.0.113.12");
    assert_string_equal(json_string_value(json_object_get(r, "classification")), "malicious");
    json_decref(r);
    /* A benign actor outranks a malicious tag. */
    const char *cidr[] = {"203.0.113.0/28"};
    if (tr_noise_actor_add(f->n, "Unit Research", cidr, 1, NULL, 0, true, &err) != 0)
        fail_msg("%s", err.msg);
    r = record(f, "203.0.113.12");
    assert_string_equal(json_string_value(json_object_get(r, "classification")), "benign");
    assert_string_equal(json_string_value(json_object_get(r, "actor")), "Unit Research");
    json_decref(r);
    assert_int_equal(tr_noise_actor_rm(f->n, "Unit Research", &err), 1);
    r = record(f, "203.0.113.12");
    assert_string_equal(json_string_value(json_object_get(r, "classification")), "malicious");
    assert_string_equal(json_string_value(json_object_get(r, "actor")), "unknown");
    json_decref(r);
    /* Nothing at all: unknown. */
    mk(&e[0], "203.0.113.13", 443, "syn", false, now_us());
    ingest(f, e, 1);
    r = record(f, "203.0.113.13");
    assert_string_equal(json_string_value(json_object_get(r, "classification")), "unknown");
    json_decref(r);
}

static void test_tag_edit_rejudges(void **state)
{
    fx *f = *state;
    tr_event e[1];
    tr_error err;
    mk(&e[0], "203.0.113.14", 8443, "raw", true, now_us());
    tr_event_set_payload(&e[0], "UNITPROBE hello", 15);
    ingest(f, e, 1);
    const char *v1 = "rule unit_probe { meta: name = \"Unit Probe\" intention = \"malicious\"\n"
                     " strings: $a = \"UNITPROBE\" condition: $a }";
    json_t *added = NULL;
    if (tr_noise_tag_add(f->n, "unit.yar", v1, strlen(v1), &added, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(json_integer_value(json_object_get(added, "events_matched")), 1);
    json_decref(added);
    json_t *r = record(f, "203.0.113.14");
    assert_string_equal(json_string_value(json_array_get(json_object_get(r, "tags"), 0)),
                        "Unit Probe");
    assert_string_equal(json_string_value(json_object_get(r, "classification")), "malicious");
    json_decref(r);
    /* The edited tag no longer matches the stored event: it is taken away. */
    const char *v2 = "rule unit_probe { meta: name = \"Unit Probe\" strings: $a = \"OTHER\" "
                     "condition: $a }";
    if (tr_noise_tag_add(f->n, "unit.yar", v2, strlen(v2), NULL, &err) != 0)
        fail_msg("%s", err.msg);
    r = record(f, "203.0.113.14");
    assert_int_equal(json_array_size(json_object_get(r, "tags")), 0);
    assert_string_equal(json_string_value(json_object_get(r, "classification")), "unknown");
    json_decref(r);
    /* Errors name line:column. */
    const char *bad = "rule x {\n condition: nosuch_var == 1 }";
    assert_int_equal(tr_noise_tag_add(f->n, "bad.yar", bad, strlen(bad), NULL, &err), -1);
    if (!strstr(err.msg, "bad.yar:2:"))
        fail_msg("no line:column in: %s", err.msg);
    const char *badcat = "rule y { meta: category = \"weird\" condition: true }";
    assert_int_equal(tr_noise_tag_add(f->n, "cat.yar", badcat, strlen(badcat), NULL, &err), -1);
    assert_non_null(strstr(err.msg, "category"));
    const char *inc = "include \"other.yar\"\nrule z { condition: true }";
    assert_int_equal(tr_noise_tag_add(f->n, "inc.yar", inc, strlen(inc), NULL, &err), -1);
    assert_non_null(strstr(err.msg, "include is not allowed"));
    assert_int_equal(tr_noise_tag_rm(f->n, "Unit Probe", &err), 1);
    assert_int_equal(tr_noise_tag_rm(f->n, "Unit Probe", &err), 0);
}

static void test_retention_keeps_aggregates(void **state)
{
    fx *f = *state;
    tr_event e[2];
    tr_error err;
    mk(&e[0], "203.0.113.15", 22, "syn", false, now_us() - (int64_t)200 * 86400 * 1000000);
    mk(&e[1], "203.0.113.15", 22, "syn", false, now_us());
    ingest(f, e, 2);
    int days;
    uint64_t old;
    assert_int_equal(tr_noise_retention(f->n, false, &days, &old, &err), 0);
    assert_int_equal(days, TR_NOISE_RETENTION_DEFAULT);
    assert_int_equal(old, 1);
    assert_int_equal(tr_noise_retention(f->n, true, &days, &old, &err), 0);
    assert_int_equal(tr_noise_retention(f->n, false, &days, &old, &err), 0);
    assert_int_equal(old, 0);
    json_t *r = record(f, "203.0.113.15");
    assert_int_equal(json_integer_value(json_object_get(r, "events")), 2);
    assert_int_equal(json_object_size(json_object_get(r, "events_per_day")), 2);
    json_decref(r);
    assert_int_equal(tr_noise_set(f->n, "retention_days", "0", &err), -1);
}

static void test_tor_import(void **state)
{
    fx *f = *state;
    char *path = tr_xasprintf("%s/exits.txt", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("ExitNode 0011BD2485AD45D984EC4159C88FC066E5E3300E\n"
          "Published 2026-11-27 11:00:00\n"
          "LastStatus 2026-11-27 12:00:00\n"
          "ExitAddress 203.0.113.16 2026-11-27 12:02:00\n"
          "198.51.100.77\n"
          "garbage\n", fp);
    fclose(fp);
    uint64_t n = 0, bad = 0;
    tr_error err;
    assert_int_equal(tr_noise_tor_import(f->n, path, &n, &bad, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(bad, 6);
    tr_event e[1];
    mk(&e[0], "203.0.113.16", 22, "syn", false, now_us());
    ingest(f, e, 1);
    json_t *r = record(f, "203.0.113.16");
    assert_true(json_is_true(json_object_get(json_object_get(r, "metadata"), "tor")));
    json_decref(r);
    free(path);
}

/* Shapes that kill libyara 4.2.3 (trawl's parser refuses them, so they are
 * handed to the child directly): the caller lives and hears which step. */
static void test_libyara_crash_contained(void **state)
{
    fx *f = *state;
    tr_error err;
    char *yarc = tr_xasprintf("%s/crash.yarc", f->dir);
    noise_src s1 = {"crash1", "rule a { condition: ~9223372036854775807 \\ -1 }"};
    assert_int_equal(noise_yara_compile(&s1, 1, yarc, &err), -1);
    if (!strstr(err.msg, "compiling")) {
        free(yarc);
        fail_msg("%s", err.msg);
    }
    noise_src s2 = {"crash2", "rule b { condition: (payload_len - payload_len - "
                              "9223372036854775807 - 1) \\ -1 == 1 }"};
    assert_int_equal(noise_yara_compile(&s2, 1, yarc, &err), 0);
    tr_event e[2];
    mk(&e[0], "203.0.113.17", 22, "raw", true, now_us());
    mk(&e[1], "203.0.113.17", 22, "raw", true, now_us());
    assert_int_equal(noise_yara_scan(yarc, e, 2, NULL, NULL, &err), -1);
    if (!strstr(err.msg, "judging event 0"))
        fail_msg("%s", err.msg);
    tr_event_clear(&e[0]);
    tr_event_clear(&e[1]);
    free(yarc);
}

/* tr_noise_ips_in_network reads an IPv4 network as ranges of the text
 * index: it must find exactly the addresses inside, though "198.51.100.1"
 * is a text prefix of ".10", ".100", ".19". Checked against a brute-force
 * test of every address, for networks cut at and inside each octet. */
static int collect_ip(void *arg, const char *ip)
{
    json_array_append_new(arg, json_string(ip));
    return 0;
}

static bool inside(const uint8_t *a, const uint8_t *net, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, net, (size_t)full) != 0)
        return false;
    return !rest || ((a[full] ^ net[full]) & (uint8_t)(0xFF << (8 - rest))) == 0;
}

static void test_ips_in_network_exact(void **state)
{
    fx *f = *state;
    static const char *v4[] = {"198.51.100.1", "198.51.100.10", "198.51.100.100",
                               "198.51.100.101", "198.51.100.19", "198.51.100.199",
                               "198.51.100.2", "198.51.100.255", "203.0.113.0", "203.0.113.5",
                               "203.0.113.50", "203.0.113.128", "203.0.113.200"};
    static const char *v6[] = {"2001:db8::1", "2001:db8:1::5", "2001:db8:ffff::9"};
    size_t n4 = sizeof v4 / sizeof v4[0], n6 = sizeof v6 / sizeof v6[0];
    tr_event e[16];
    for (size_t i = 0; i < n4 + n6; i++) {
        mk(&e[i], "203.0.113.1", 22, "raw", true, now_us());
        if (i < n4) {
            assert_int_equal(inet_pton(AF_INET, v4[i], e[i].src_ip), 1);
        } else {
            e[i].family = 6;
            assert_int_equal(inet_pton(AF_INET6, v6[i - n4], e[i].src_ip), 1);
        }
    }
    ingest(f, e, n4 + n6);
    static const struct { const char *net; int bits; } nets[] = {
        {"0.0.0.0", 0}, {"128.0.0.0", 1}, {"192.0.0.0", 3}, {"198.0.0.0", 8},
        {"198.51.0.0", 16}, {"198.51.100.0", 24}, {"198.51.100.0", 25}, {"198.51.100.128", 25},
        {"198.51.100.0", 28}, {"198.51.100.0", 30}, {"198.51.100.1", 32}, {"198.51.100.10", 31},
        {"203.0.112.0", 23}, {"203.0.113.0", 31}, {"203.0.113.192", 26}, {"203.0.113.7", 32},
        {"2001:db8::", 32}, {"2001:db8::", 48}, {"2001:db8:1::", 48}, {"2001:db8::1", 128},
        {"::", 0}, {"2001:db8:8000::", 33},
    };
    for (size_t k = 0; k < sizeof nets / sizeof nets[0]; k++) {
        int fam = strchr(nets[k].net, ':') ? 6 : 4;
        uint8_t net[16];
        assert_int_equal(inet_pton(fam == 6 ? AF_INET6 : AF_INET, nets[k].net, net), 1);
        json_t *got = json_array();
        tr_error err;
        assert_int_equal(tr_noise_ips_in_network(f->n, fam, net, nets[k].bits, collect_ip, got,
                                                 &err), 0);
        size_t want = 0;
        const char **all = fam == 6 ? v6 : v4;
        for (size_t i = 0; i < (fam == 6 ? n6 : n4); i++) {
            uint8_t a[16];
            inet_pton(fam == 6 ? AF_INET6 : AF_INET, all[i], a);
            if (!inside(a, net, nets[k].bits))
                continue;
            want++;
            bool seen = false;
            size_t j;
            json_t *v;
            json_array_foreach(got, j, v) seen = seen || strcmp(json_string_value(v), all[i]) == 0;
            if (!seen)
                fail_msg("%s/%d: %s not found", nets[k].net, nets[k].bits, all[i]);
        }
        if (json_array_size(got) != want)
            fail_msg("%s/%d: %zu found, %zu inside", nets[k].net, nets[k].bits,
                     json_array_size(got), want);
        json_decref(got);
    }
}

/* A libyara child that hangs without using the CPU (as one forked while
 * another thread held an allocator lock does, under the sanitizers) is
 * replaced. The compiled rules' path is a FIFO whose writer never writes:
 * the first child blocks reading it; once it does, the real rules take
 * the FIFO's place, and the next child scans the batch whole. */
typedef struct fifo_swap {
    const char *fifo, *good;
    int writer;
} fifo_swap;

static void *swap_when_read(void *arg)
{
    fifo_swap *w = arg;
    /* A non-blocking open for writing succeeds once a reader holds it. */
    for (int i = 0; i < 3000 && w->writer < 0; i++) {
        w->writer = open(w->fifo, O_WRONLY | O_NONBLOCK);
        if (w->writer < 0)
            usleep(10000);
    }
    if (w->writer >= 0 && rename(w->good, w->fifo) != 0)
        fprintf(stderr, "rename: %s\n", strerror(errno));
    return NULL;
}

static void count_hit(void *arg, size_t ev, const char *tag)
{
    assert_string_equal(tag, "stallmark");
    ((int *)arg)[ev]++;
}

static void test_stuck_libyara_child_replaced(void **state)
{
    fx *f = *state;
    tr_error err;
    char *good = tr_xasprintf("%s/good.yarc", f->dir);
    char *fifo = tr_xasprintf("%s/stuck.yarc", f->dir);
    noise_src s = {"stall", "rule stallmark { strings: $a = \"STALLMARK\" condition: $a }"};
    assert_int_equal(noise_yara_compile(&s, 1, good, &err), 0);
    tr_event e[2];
    mk(&e[0], "203.0.113.17", 22, "raw", true, now_us());
    mk(&e[1], "203.0.113.18", 22, "raw", true, now_us());
    tr_event_set_payload(&e[1], "xx STALLMARK xx", 15);
    noise_yara_set_stall_secs(1);
    /* Stuck every time (no writer ever opens the FIFO): the batch fails
     * with a reason, and the caller lives. */
    assert_int_equal(mkfifo(fifo, 0600), 0);
    int hits[2] = {0, 0};
    assert_int_equal(noise_yara_scan(fifo, e, 2, count_hit, hits, &err), -1);
    assert_non_null(strstr(err.msg, "made no progress for 1 s, 3 times"));
    assert_int_equal(hits[0] + hits[1], 0);
    unlink(fifo);
    /* Stuck once: the second child does the whole batch, each hit once. */
    assert_int_equal(mkfifo(fifo, 0600), 0);
    fifo_swap w = {fifo, good, -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, swap_when_read, &w), 0);
    int rc = noise_yara_scan(fifo, e, 2, count_hit, hits, &err);
    pthread_join(t, NULL);
    noise_yara_set_stall_secs(0);
    if (w.writer >= 0)
        close(w.writer);
    if (rc != 0)
        fail_msg("%s", err.msg);
    assert_true(w.writer >= 0);
    assert_int_equal(hits[0], 0);
    assert_int_equal(hits[1], 1);
    tr_event_clear(&e[0]);
    tr_event_clear(&e[1]);
    unlink(fifo);
    free(fifo);
    free(good);
}

/* A tag rule that kills libyara (put in place behind the parser's back)
 * costs the batch its tags, never its events or the caller. */
static void test_crashing_tag_stores_untagged(void **state)
{
    fx *f = *state;
    tr_error err;
    const char *sql =
        "INSERT INTO noise_tag_src(id, name, text, builtin, created) VALUES(9999, 'crash',"
        " 'rule crash { condition: (payload_len - payload_len - 9223372036854775807 - 1) \\ -1"
        " == 1 }', 0, 0);"
        "INSERT INTO noise_tags(name, src_id, rule, category, intention, cves, description, refs,"
        " builtin) VALUES('crash', 9999, 'crash', 'activity', 'unknown', '', '',"
        " '[]', 0);"
        "UPDATE noise_settings SET value = value + 1 WHERE key = 'tags_gen';";
    if (noise_exec(f->n, sql, &err) != 0)
        fail_msg("%s", err.msg);
    tr_event e[2];
    mk(&e[0], "203.0.113.19", 80, "http", true, now_us());
    mk(&e[1], "203.0.113.19", 81, "http", true, now_us());
    tr_noise_stats st;
    if (tr_noise_ingest(f->n, e, 2, &st, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(st.events, 2);
    assert_int_equal(st.unjudged, 2);
    tr_event_clear(&e[0]);
    tr_event_clear(&e[1]);
    json_t *r = record(f, "203.0.113.19");
    assert_int_equal(json_integer_value(json_object_get(r, "events")), 2);
    json_decref(r);
}

static bool has_tag(fx *f, const char *name)
{
    json_t *tags = NULL;
    tr_error err;
    if (tr_noise_tags(f->n, &tags, &err) != 0)
        fail_msg("%s", err.msg);
    bool found = false;
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) {
        if (strcmp(json_string_value(json_object_get(t, "name")), name) == 0)
            found = true;
    }
    json_decref(tags);
    return found;
}

/* A new default set (an upgrade) keeps what the admin did: a removed
 * default stays removed, and names the set dropped leave no trace. */
static void test_default_set_upgrade(void **state)
{
    fx *f = *state;
    tr_error err;
    assert_true(has_tag(f, "curl"));
    assert_int_equal(tr_noise_tag_rm(f->n, "curl", &err), 1);
    tr_event e[1];
    mk(&e[0], "203.0.113.21", 80, "syn", false, now_us());
    ingest(f, e, 1);
    if (noise_exec(f->n,
                   "INSERT INTO noise_ip_values VALUES('203.0.113.21', 'tag', 'Dropped Tag', 0, 1,"
                   " 0, 0);"
                   "UPDATE noise_settings SET value='older' WHERE key='builtin_version';",
                   &err) != 0)
        fail_msg("%s", err.msg);
    tr_noise_close(f->n);
    f->n = NULL;
    if (tr_noise_open(f->dir, &f->n, &err) != 0)
        fail_msg("%s", err.msg);
    assert_false(has_tag(f, "curl"));
    assert_true(has_tag(f, "ZMap Client"));
    json_t *r = record(f, "203.0.113.21");
    assert_int_equal(json_array_size(json_object_get(r, "tags")), 0);
    json_decref(r);
}

/* A compiled-tags cache that libyara cannot load (another version wrote
 * it, or it is damaged) is compiled again instead of failing every batch. */
static void test_bad_cache_recompiled(void **state)
{
    fx *f = *state;
    tr_error err;
    char *yarc = NULL;
    if (noise_tags_yarc(f->n, &yarc, &err) != 0)
        fail_msg("%s", err.msg);
    FILE *fp = fopen(yarc, "w");
    assert_non_null(fp);
    fputs("not compiled rules", fp);
    fclose(fp);
    tr_event e[1];
    mk(&e[0], "203.0.113.18", 80, "http", true, now_us());
    tr_event_set(&e[0], "http_path", "/.git/config");
    ingest(f, e, 1);
    json_t *r = record(f, "203.0.113.18");
    assert_string_equal(json_string_value(json_array_get(json_object_get(r, "tags"), 0)),
                        "Git Config Crawler");
    json_decref(r);
    free(yarc);
}

/* A mixed stream of events: one address past its set bound (values
 * repeated, dropped ones repeated), others with tags (ZMap, .env),
 * credentials, handshakes and events over several days, out of order. */
static void mixed_event(tr_event *e, int i, int64_t t)
{
    char ip[32], v[64];
    if (i < 120) {
        mk(e, "203.0.113.20", 80, "http", true, t - (int64_t)(i % 7) * 1000000);
        snprintf(v, sizeof v, "/p%d", i >= 115 ? 101 : i % 103);
        tr_event_set(e, "http_path", v);
        tr_event_set(e, "http_user_agent", i % 2 ? "UnitAgent/1.0" : "UnitAgent/2.0");
        return;
    }
    snprintf(ip, sizeof ip, "203.0.113.%d", 21 + i % 4);
    int64_t when = t - (int64_t)(i * 7 % 120) * 3600 * 1000000;
    switch (i % 5) {
    case 0:
        mk(e, ip, 23, "syn", false, when);
        e->ip_id = 54321;
        e->tcp_window = 65535;
        break;
    case 1:
        mk(e, ip, 80, "http", true, when);
        tr_event_set(e, "http_method", "GET");
        tr_event_set(e, "http_path", i % 2 ? "/.env" : "/");
        tr_event_set_payload(e, "GET /.env HTTP/1.1\r\n\r\n", 22);
        break;
    case 2:
        mk(e, ip, 22, "ssh", true, when);
        tr_event_set(e, "username", "root");
        snprintf(v, sizeof v, "pw%d", i % 3);
        tr_event_set(e, "password", v);
        break;
    default:
        mk(e, ip, 445 + i % 3, "syn", false, when);
        break;
    }
}

/* Ingest sums a batch per IP, day and value before writing: the records
 * must be the ones that writing event by event gives. */
static void test_batch_equals_single(void **state)
{
    fx *f = *state, *g = NULL;
    setup((void **)&g);
    enum { N = 200 };
    int64_t t = now_us();
    tr_event *e = tr_xcalloc(N, sizeof *e);
    for (int i = 0; i < N; i++)
        mixed_event(&e[i], i, t);
    ingest(f, e, N);
    for (int i = 0; i < N; i++) {
        mixed_event(&e[0], i, t);
        ingest(g, e, 1);
    }
    free(e);
    for (int k = 20; k <= 24; k++) {
        char ip[32];
        snprintf(ip, sizeof ip, "203.0.113.%d", k);
        json_t *a = record(f, ip), *b = record(g, ip);
        char *ta = json_dumps(a, JSON_SORT_KEYS), *tb = json_dumps(b, JSON_SORT_KEYS);
        assert_string_equal(ta, tb);
        free(ta);
        free(tb);
        json_decref(a);
        json_decref(b);
    }
    json_t *r = record(f, "203.0.113.20");
    assert_int_equal(json_integer_value(json_object_get(r, "events")), 120);
    /* p100..p102 dropped; p101 five more times. */
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "dropped_values"), "path")),
                     8);
    json_decref(r);
    r = record(f, "203.0.113.21");
    assert_true(json_array_size(json_object_get(r, "tags")) > 0);
    assert_true(json_object_size(json_object_get(r, "events_per_day")) > 1);
    json_decref(r);
    json_t *ta = NULL, *tb = NULL;
    tr_error err;
    assert_int_equal(tr_noise_tags(f->n, &ta, &err), 0);
    assert_int_equal(tr_noise_tags(g->n, &tb, &err), 0);
    /* Per tag the IPs and events counted (the catalogue's own times differ:
     * each store seeded its default tags when it was made). */
    assert_int_equal(json_array_size(ta), json_array_size(tb));
    size_t i;
    json_t *x;
    json_array_foreach(ta, i, x) {
        json_t *y = json_array_get(tb, i);
        assert_string_equal(json_string_value(json_object_get(x, "name")),
                            json_string_value(json_object_get(y, "name")));
        assert_true(json_equal(json_object_get(x, "ips"), json_object_get(y, "ips")));
        assert_true(json_equal(json_object_get(x, "events"), json_object_get(y, "events")));
    }
    json_decref(ta);
    json_decref(tb);
    teardown((void **)&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_aggregates_and_spoofable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded_sets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_equals_single, setup, teardown),
        cmocka_unit_test_setup_teardown(test_classification_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tag_edit_rejudges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_keeps_aggregates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tor_import, setup, teardown),
        cmocka_unit_test_setup_teardown(test_libyara_crash_contained, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_cache_recompiled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crashing_tag_stores_untagged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stuck_libyara_child_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ips_in_network_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_set_upgrade, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
