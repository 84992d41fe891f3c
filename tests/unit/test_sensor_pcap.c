/* tr_pcap_import over a real loopback capture (tcpdump of curl sessions and a
 * UDP datagram) and over written captures whose SYNs carry each scanner's
 * packet fingerprint as SCANNERS.md documents it from the tools' sources. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>
#include <pcap/pcap.h>

#include "sensor/sensor.h"

#define MAXEV 64
typedef struct collected {
    json_t *ev[MAXEV];
    size_t n;
} collected;

static int collect(void *ctx, tr_event *e, tr_error *err)
{
    collected *c = ctx;
    if (c->n < MAXEV)
        c->ev[c->n++] = tr_event_to_json(e);
    return 0;
}

static void collected_free(collected *c)
{
    for (size_t i = 0; i < c->n; i++)
        json_decref(c->ev[i]);
    c->n = 0;
}

static const char *s(json_t *e, const char *k) { return json_string_value(json_object_get(e, k)); }
static long long num(json_t *e, const char *k)
{
    json_t *v = json_object_get(e, k);
    return v ? json_integer_value(v) : -1;
}
static const char *field(json_t *e, const char *k)
{
    return json_string_value(json_object_get(json_object_get(e, "fields"), k));
}

/* The event from src_ip to dst_port, or fail. */
static json_t *find(collected *c, const char *src, long dport)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(s(c->ev[i], "src_ip"), src) == 0 && num(c->ev[i], "dst_port") == dport)
            return c->ev[i];
    fail_msg("no event from %s to port %ld", src, dport);
    return NULL;
}

static void test_real_loopback_capture(void **state)
{
    collected c = {0};
    tr_import_stats st;
    tr_error err;
    assert_int_equal(tr_pcap_import(TRAWL_SOURCE_DIR "/tests/unit/data/sensor/lo_curl.pcap", "lab",
                                    collect, &c, &st, &err), 0);
    assert_int_equal(st.bad, 0);
    assert_int_equal(st.records, 21);
    assert_int_equal(c.n, 3);
    int http = 0, udp = 0;
    for (size_t i = 0; i < c.n; i++) {
        json_t *e = c.ev[i];
        assert_string_equal(s(e, "sensor"), "lab");
        assert_string_equal(s(e, "src_ip"), "127.0.0.1");
        if (strcmp(s(e, "transport"), "udp") == 0) {
            udp++;
            assert_int_equal(num(e, "dst_port"), 34661);
            assert_string_equal(s(e, "payload_b64"), "EjQBAAABAAAAAAAAB3ZlcnNpb24EYmluZAAAEAAD");
            continue;
        }
        http++;
        assert_string_equal(s(e, "proto"), "http");
        assert_true(json_is_true(json_object_get(e, "handshake")));
        assert_string_equal(s(e, "tcp_options"), "2,4,8,1,3");
        assert_int_equal(num(e, "tcp_window"), 65495);
        assert_int_equal(num(e, "ttl"), 64);
        assert_null(field(e, "scanner"));
        if (num(e, "src_port") == 36426) {
            assert_string_equal(field(e, "http_path"), "/.env");
            assert_string_equal(field(e, "http_user_agent"), "Mozilla/5.0 zgrab/0.x");
            assert_int_equal(num(e, "tcp_seq"), 1499785749);
        } else {
            assert_string_equal(field(e, "http_path"), "/");
            assert_string_equal(field(e, "http_query"), "q=1");
        }
    }
    assert_int_equal(http, 2);
    assert_int_equal(udp, 1);
    collected_free(&c);
}

/* ---- written captures ----------------------------------------------------- */

static uint32_t ip4(const char *a)
{
    unsigned x, y, z, w;
    sscanf(a, "%u.%u.%u.%u", &x, &y, &z, &w);
    return x << 24 | y << 16 | z << 8 | w;
}

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v); }

typedef struct seg {
    const char *src, *dst;
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;
    uint16_t win, ip_id;
    uint8_t ttl;
    const char *opts;   /* raw option bytes */
    size_t optlen;
    const char *data;
} seg;

/* Ethernet + IPv4 + TCP; returns the frame length. */
static size_t frame(uint8_t *f, const seg *g)
{
    memset(f, 0, 14);
    f[12] = 0x08;
    uint8_t *ip = f + 14;
    size_t dl = g->data ? strlen(g->data) : 0;
    size_t thl = 20 + g->optlen, tot = 20 + thl + dl;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    put16(ip + 2, (uint32_t)tot);
    put16(ip + 4, g->ip_id);
    ip[8] = g->ttl;
    ip[9] = 6;
    put32(ip + 12, ip4(g->src));
    put32(ip + 16, ip4(g->dst));
    uint8_t *t = ip + 20;
    memset(t, 0, 20);
    put16(t, g->sport);
    put16(t + 2, g->dport);
    put32(t + 4, g->seq);
    put32(t + 8, g->ack);
    t[12] = (uint8_t)((thl / 4) << 4);
    t[13] = g->flags;
    put16(t + 14, g->win);
    memcpy(t + 20, g->opts, g->optlen);
    if (dl)
        memcpy(t + thl, g->data, dl);
    return 14 + tot;
}

/* Ethernet + IPv6 (one hop-by-hop extension header) + a bare SYN with MSS. */
static size_t frame6(uint8_t *f, const char *src, const char *dst, uint16_t sport, uint16_t dport)
{
    memset(f, 0, 14 + 40 + 8 + 24);
    f[12] = 0x86;
    f[13] = 0xdd;
    uint8_t *ip = f + 14;
    ip[0] = 0x60;
    put16(ip + 4, 8 + 24);
    ip[6] = 0;    /* hop-by-hop options first */
    ip[7] = 57;   /* hop limit */
    inet_pton(AF_INET6, src, ip + 8);
    inet_pton(AF_INET6, dst, ip + 24);
    uint8_t *hbh = ip + 40;
    hbh[0] = 6;   /* then TCP */
    hbh[2] = 1;   /* PadN filling the 8 bytes */
    hbh[3] = 4;
    uint8_t *t = hbh + 8;
    put16(t, sport);
    put16(t + 2, dport);
    put32(t + 4, 123456);
    t[12] = 6 << 4;
    t[13] = 0x02;   /* SYN */
    put16(t + 14, 1024);
    memcpy(t + 20, "\x02\x04\x05\xb4", 4);
    return 14 + 40 + 8 + 24;
}

static void dump(pcap_dumper_t *w, const uint8_t *f, size_t n, int sec)
{
    struct pcap_pkthdr h = {.ts = {.tv_sec = 1764350000 + sec}, .caplen = (bpf_u_int32)n,
                            .len = (bpf_u_int32)n};
    pcap_dump((u_char *)w, &h, f);
}

#define SYN 0x02
#define ACK 0x10
#define RST 0x04
#define SA 0x12
#define TARGET "203.0.113.5"

/* A classic pcap of Ethernet frames written to a scratch file. */
typedef struct capture {
    char *path;
    pcap_t *dead;
    pcap_dumper_t *w;
} capture;

static capture capture_open(const char *name)
{
    capture c = {tr_xasprintf("/tmp/trawl-pcap-%s-%d.pcap", name, (int)getpid()),
                 pcap_open_dead(DLT_EN10MB, 65535), NULL};
    c.w = pcap_dump_open(c.dead, c.path);
    assert_non_null(c.w);
    return c;
}

/* The file is complete; it stays until capture_remove. */
static void capture_close(capture *c)
{
    pcap_dump_close(c->w);
    pcap_close(c->dead);
}

static void capture_remove(capture *c)
{
    unlink(c->path);
    free(c->path);
}

/* Every event of the file into c; the import must succeed. */
static void import_collect(const char *path, collected *c, tr_import_stats *st)
{
    tr_error err;
    if (tr_pcap_import(path, NULL, collect, c, st, &err) != 0)
        fail_msg("%s", err.msg);
}

/* One SYN per scanner, and the replies a closed/open port gives. */
static char *write_scans(void)
{
    capture cap = capture_open("scans");
    pcap_dumper_t *w = cap.w;
    uint8_t f[2048];
    int sec = 0;
    /* ZMap 2.1.1: id 54321, ttl 255, window 65535, no options; three targets' worth */
    for (int i = 0; i < 3; i++) {
        seg z = {"198.51.100.10", TARGET, 40000, 80, 0x1234567u + (uint32_t)i, 0, SYN, 65535, 54321, 255, "", 0, NULL};
        dump(w, f, frame(f, &z), sec++);
        seg r = {TARGET, "198.51.100.10", 80, 40000, 0, z.seq + 1, RST | ACK, 0, 1, 64, "", 0, NULL};
        dump(w, f, frame(f, &r), sec++);
    }
    /* Masscan 1.3.2: id = (dst ^ dport ^ seq) & 0xffff, ttl 255, window 1024 */
    uint32_t mseq = 4031184196u;
    seg m = {"198.51.100.11", TARGET, 61000, 8080, mseq, 0, SYN, 1024,
             (uint16_t)((ip4(TARGET) ^ 8080 ^ mseq) & 0xffff), 255, "", 0, NULL};
    dump(w, f, frame(f, &m), sec++);
    seg msa = {TARGET, "198.51.100.11", 8080, 61000, 777, mseq + 1, SA, 64240, 2, 64, "", 0, NULL};
    dump(w, f, frame(f, &msa), sec++);
    seg mr = {"198.51.100.11", TARGET, 61000, 8080, mseq + 1, 0, RST, 0, 3, 64, "", 0, NULL};
    dump(w, f, frame(f, &mr), sec++);
    /* Mirai: seq == destination address */
    seg mi = {"198.51.100.12", TARGET, 33333, 23, ip4(TARGET), 0, SYN, 12345, 999, 64, "", 0, NULL};
    dump(w, f, frame(f, &mi), sec++);
    /* A corrupt packet between them: IPv4 header length past the frame */
    size_t n = frame(f, &mi);
    f[14] = 0x4f;
    dump(w, f, 14 + 30, sec++);
    (void)n;
    /* Nmap -sS (Debian 7.93 observed): id 0xac56, ttl 38, win 1024, MSS 1460 only */
    seg nm = {"198.51.100.13", TARGET, 51515, 22, 99, 0, SYN, 1024, 0xac56, 38, "\x02\x04\x05\xb4", 4, NULL};
    dump(w, f, frame(f, &nm), sec++);
    /* hping3 -S: window 512, ack field filled on a bare SYN */
    seg hp = {"198.51.100.14", TARGET, 2100, 80, 5, 1335900751u, SYN, 512, 0x0d91, 64, "", 0, NULL};
    dump(w, f, frame(f, &hp), sec++);
    /* An ordinary Linux client: no verdict; completes and sends a request */
    seg lx = {"198.51.100.15", TARGET, 45000, 6379, 1000, 0, SYN, 64240, 4242, 64,
              "\x02\x04\x05\xb4\x04\x02\x08\x0a\0\0\0\1\0\0\0\0\x01\x03\x03\x07", 20, NULL};
    dump(w, f, frame(f, &lx), sec++);
    seg lsa = {TARGET, "198.51.100.15", 6379, 45000, 5000, 1001, SA, 65160, 0, 64, "", 0, NULL};
    dump(w, f, frame(f, &lsa), sec++);
    seg la = {"198.51.100.15", TARGET, 45000, 6379, 1001, 5001, ACK, 502, 4243, 64, "", 0, NULL};
    dump(w, f, frame(f, &la), sec++);
    /* "*3 CONFIG GET dir": the last segment arrives first (dropped: only
     * in-order bytes are kept), then the first, a longer retransmission of
     * it, and the last again. */
    seg d3 = {"198.51.100.15", TARGET, 45000, 6379, 1001 + 25, 5001, ACK | 0x08, 502, 4244, 64, "", 0, "$3\r\ndir\r\n"};
    dump(w, f, frame(f, &d3), sec++);
    seg d1 = {"198.51.100.15", TARGET, 45000, 6379, 1001, 5001, ACK | 0x08, 502, 4245, 64, "", 0, "*3\r\n$6\r\nCONFIG\r\n"};
    dump(w, f, frame(f, &d1), sec++);
    seg d1r = {"198.51.100.15", TARGET, 45000, 6379, 1001, 5001, ACK | 0x08, 502, 4246, 64, "", 0, "*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n"};
    dump(w, f, frame(f, &d1r), sec++);
    d3.ip_id = 4247;
    dump(w, f, frame(f, &d3), sec++);
    dump(w, f, frame6(f, "2001:db8::7", "2001:db8::5", 50505, 443), sec++);
    seg fin = {"198.51.100.15", TARGET, 45000, 6379, 1001 + 34, 5001, ACK | 0x01, 502, 4248, 64, "", 0, NULL};
    dump(w, f, frame(f, &fin), sec++);
    capture_close(&cap);
    return cap.path;
}

static void check_scans(collected *c)
{
    json_t *e = find(c, "198.51.100.10", 80);
    assert_string_equal(field(e, "scanner"), "zmap");
    assert_string_equal(s(e, "proto"), "syn");
    assert_true(json_is_false(json_object_get(e, "handshake")));
    assert_int_equal(num(e, "packets"), 3);   /* three SYNs, one event */
    assert_int_equal(num(e, "ip_id"), 54321);
    assert_int_equal(num(e, "ttl"), 255);
    assert_int_equal(num(e, "tcp_window"), 65535);
    assert_int_equal(num(e, "tcp_flags"), 2);
    assert_null(json_object_get(e, "tcp_options"));
    e = find(c, "198.51.100.11", 8080);
    assert_string_equal(field(e, "scanner"), "masscan");
    assert_true(json_is_false(json_object_get(e, "handshake")));
    e = find(c, "198.51.100.12", 23);
    assert_string_equal(field(e, "scanner"), "mirai");
    assert_int_equal(num(e, "tcp_seq"), ip4(TARGET));
    e = find(c, "198.51.100.13", 22);
    assert_string_equal(field(e, "scanner"), "nmap");
    assert_string_equal(s(e, "tcp_options"), "2");
    e = find(c, "198.51.100.14", 80);
    assert_string_equal(field(e, "scanner"), "hping3");
    e = find(c, "198.51.100.15", 6379);
    assert_null(field(e, "scanner"));
    assert_true(json_is_true(json_object_get(e, "handshake")));
    assert_string_equal(s(e, "proto"), "redis");
    assert_string_equal(field(e, "redis_command"), "CONFIG GET dir");
    assert_string_equal(s(e, "tcp_options"), "2,4,8,1,3");
    e = find(c, "2001:db8::7", 443);
    assert_string_equal(s(e, "dst_ip"), "2001:db8::5");
    assert_string_equal(s(e, "proto"), "syn");
    assert_int_equal(num(e, "ttl"), 57);
    assert_null(json_object_get(e, "ip_id"));
    assert_string_equal(field(e, "scanner"), "nmap");
}

static void test_scanner_fingerprints(void **state)
{
    char *path = write_scans();
    collected c = {0};
    tr_import_stats st;
    tr_error err;
    import_collect(path, &c, &st);
    assert_int_equal(c.n, 7);
    check_scans(&c);
    assert_string_equal(s(c.ev[0], "sensor"), "pcap");
    /* the corrupt packet is named, and everything around it kept */
    assert_int_equal(st.bad, 1);
    assert_non_null(strstr(st.first_bad, "packet 11 at byte offset "));
    assert_non_null(strstr(st.first_bad, "IPv4 header length"));
    collected_free(&c);

    /* Cut inside the last record: every record before it still counts. */
    char *data;
    size_t len;
    assert_int_equal(tr_read_file(path, &data, &len, &err), 0);
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, len - 10, f);
    fclose(f);
    free(data);
    import_collect(path, &c, &st);
    assert_int_equal(st.bad, 2);
    json_t *e = find(&c, "198.51.100.15", 6379);   /* flushed at the cut, payload so far */
    assert_string_equal(field(e, "redis_command"), "CONFIG GET dir");
    assert_string_equal(field(find(&c, "198.51.100.10", 80), "scanner"), "zmap");
    collected_free(&c);
    unlink(path);
    free(path);
}

/* pcapng with a Linux cooked interface: SHB, IDB, one EPB per packet. */
static void test_pcapng_cooked(void **state)
{
    char *path = tr_xasprintf("/tmp/trawl-pcapng-%d.pcapng", (int)getpid());
    FILE *fp = fopen(path, "wb");
    uint32_t shb[7] = {0x0A0D0D0A, 28, 0x1A2B3C4D, 0x00000001, 0xffffffff, 0xffffffff, 28};
    fwrite(shb, 4, 7, fp);
    uint32_t idb[5] = {1, 20, DLT_LINUX_SLL, 65535, 20};
    fwrite(idb, 4, 5, fp);
    uint8_t f[256], sll[256];
    seg z = {"198.51.100.20", TARGET, 40000, 443, 7, 0, SYN, 65535, 54321, 255, "", 0, NULL};
    size_t n = frame(f, &z) - 14;
    memset(sll, 0, 16);
    sll[14] = 0x08;
    memcpy(sll + 16, f + 14, n);
    n += 16;
    size_t padded = (n + 3) & ~(size_t)3;
    uint32_t epb[7] = {6, (uint32_t)(32 + padded), 0, 0, 1000, (uint32_t)n, (uint32_t)n};
    fwrite(epb, 4, 7, fp);
    memset(sll + n, 0, padded - n);
    fwrite(sll, 1, padded, fp);
    fwrite(&epb[1], 4, 1, fp);
    fclose(fp);
    collected c = {0};
    tr_import_stats st;
    tr_error err;
    assert_int_equal(tr_pcap_import(path, "ng", collect, &c, &st, &err), 0);
    assert_int_equal(st.bad, 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(field(c.ev[0], "scanner"), "zmap");
    assert_int_equal(num(c.ev[0], "dst_port"), 443);
    collected_free(&c);

    /* not a capture at all */
    fp = fopen(path, "wb");
    fputs("hello, this is not a pcap file at all\n", fp);
    fclose(fp);
    assert_int_equal(tr_pcap_import(path, "ng", collect, &c, &st, &err), -1);
    assert_non_null(strstr(err.msg, path));
    unlink(path);
    free(path);
}

static int stop_at_second(void *ctx, tr_event *e, tr_error *err)
{
    int *n = ctx;
    if (++*n == 2)
        return tr_fail(err, "sink full");
    return 0;
}

static void test_sink_stops(void **state)
{
    char *path = write_scans();
    int n = 0;
    tr_import_stats st;
    tr_error err;
    assert_int_equal(tr_pcap_import(path, NULL, stop_at_second, &n, &st, &err), -1);
    assert_non_null(strstr(err.msg, "sink full"));
    assert_int_equal(n, 2);
    assert_int_equal(st.events, 1);
    unlink(path);
    free(path);
}

static int count_syn(void *ctx, tr_event *e, tr_error *err)
{
    uint64_t *n = ctx;
    if (strcmp(e->proto, "syn") != 0 || e->packets != 2)
        return tr_fail(err, "unexpected event");
    n[0]++;
    return 0;
}

/* More open flows than the table holds: the oldest are finished early, and
 * none is lost or counted twice (each probe was sent twice, from two ports). */
static void test_flow_table_eviction(void **state)
{
    capture cap = capture_open("evict");
    uint8_t f[256];
    char src[32];
    size_t flows = 0;
    for (int a = 1; a <= 250; a++) {
        snprintf(src, sizeof src, "198.51.100.%d", a);
        for (int port = 1; port <= 300; port++) {
            for (int rep = 0; rep < 2; rep++) {
                seg g = {src, TARGET, (uint16_t)(20000 + rep), (uint16_t)port, 7, 0, SYN, 29200,
                         1, 64, "", 0, NULL};
                dump(cap.w, f, frame(f, &g), 0);
            }
            flows++;
        }
    }
    capture_close(&cap);
    uint64_t n[1] = {0};
    tr_import_stats st;
    tr_error err;
    assert_int_equal(tr_pcap_import(cap.path, NULL, count_syn, n, &st, &err), 0);
    assert_int_equal(st.records, 2 * flows);
    assert_int_equal(n[0], flows);
    assert_true(flows > 65536);
    capture_remove(&cap);
}

/* A scan burst is one event per (source, port) within 60 s: five targets on
 * one port are one event (the first target, five packets); the same source
 * 100 s later, another port, or another source on that port are events of
 * their own. */
static void test_syn_aggregation_per_source_and_port(void **state)
{
    capture cap = capture_open("agg");
    pcap_dumper_t *w = cap.w;
    uint8_t f[256];
    char dst[32];
    for (int i = 1; i <= 5; i++) {
        snprintf(dst, sizeof dst, "203.0.113.%d", i);
        seg g = {"198.51.100.20", dst, 40000, 23, (uint32_t)i, 0, SYN, 65535, 54321, 250, "", 0, NULL};
        dump(w, f, frame(f, &g), i);
    }
    seg other_port = {"198.51.100.20", "203.0.113.1", 40000, 2323, 9, 0, SYN, 65535, 54321, 250, "", 0, NULL};
    dump(w, f, frame(f, &other_port), 6);
    seg other_src = {"198.51.100.21", "203.0.113.1", 40000, 23, 9, 0, SYN, 29200, 7, 64, "", 0, NULL};
    dump(w, f, frame(f, &other_src), 7);
    seg later = {"198.51.100.20", "203.0.113.9", 40001, 23, 10, 0, SYN, 65535, 54321, 250, "", 0, NULL};
    dump(w, f, frame(f, &later), 101);
    capture_close(&cap);
    collected c = {0};
    tr_import_stats st;
    import_collect(cap.path, &c, &st);
    assert_int_equal(st.records, 8);
    assert_int_equal(c.n, 4);
    size_t on23 = 0;
    for (size_t i = 0; i < c.n; i++) {
        json_t *e = c.ev[i];
        assert_string_equal(s(e, "proto"), "syn");
        if (strcmp(s(e, "src_ip"), "198.51.100.20") != 0 || num(e, "dst_port") != 23)
            continue;
        on23++;
        if (num(e, "packets") == 5) {
            assert_string_equal(s(e, "dst_ip"), "203.0.113.1");
            assert_string_equal(field(e, "scanner"), "zmap");
        } else {
            assert_int_equal(num(e, "packets"), 1);
            assert_string_equal(s(e, "dst_ip"), "203.0.113.9");
        }
    }
    assert_int_equal(on23, 2);
    assert_int_equal(num(find(&c, "198.51.100.20", 2323), "packets"), 1);
    assert_int_equal(num(find(&c, "198.51.100.21", 23), "packets"), 1);
    collected_free(&c);
    capture_remove(&cap);
}

/* Two probes of one source and port can wait at once (a SYN more than the
 * window after the first probe starts another), and a flow that started
 * early but ended late falls in both windows: it joins the older one. Flow
 * X (t=0) and Z (t=70) end as SYNs; Y starts at t=0, is sent again at t=71
 * and so ends last, at the end of the file, in the same pass as X and Z. */
static void test_late_flow_joins_the_older_of_two_probes(void **state)
{
    capture cap = capture_open("older");
    pcap_dumper_t *w = cap.w;
    uint8_t f[256];
    seg x = {"198.51.100.30", "203.0.113.1", 41000, 23, 1, 0, SYN, 65535, 54321, 250, "", 0, NULL};
    dump(w, f, frame(f, &x), 0);
    seg y = {"198.51.100.30", "203.0.113.2", 41001, 23, 2, 0, SYN, 65535, 54321, 250, "", 0, NULL};
    dump(w, f, frame(f, &y), 0);
    seg z = {"198.51.100.30", "203.0.113.3", 41002, 23, 3, 0, SYN, 65535, 54321, 250, "", 0, NULL};
    dump(w, f, frame(f, &z), 70);
    dump(w, f, frame(f, &y), 71);
    capture_close(&cap);
    collected c = {0};
    tr_import_stats st;
    import_collect(cap.path, &c, &st);
    assert_int_equal(c.n, 2);
    for (size_t i = 0; i < c.n; i++) {
        if (strcmp(s(c.ev[i], "dst_ip"), "203.0.113.1") == 0)
            assert_int_equal(num(c.ev[i], "packets"), 3);
        else {
            assert_string_equal(s(c.ev[i], "dst_ip"), "203.0.113.3");
            assert_int_equal(num(c.ev[i], "packets"), 1);
        }
    }
    collected_free(&c);
    capture_remove(&cap);
}

typedef struct session_catch {
    size_t n;
    json_t *x;
} session_catch;

static int catch_x(void *ctx, tr_event *e, tr_error *err)
{
    session_catch *c = ctx;
    c->n++;
    char a[46];
    tr_event_src_text(e, a);
    if (strcmp(a, "203.0.113.77") == 0) {
        if (c->x)
            return tr_fail(err, "two events from the session's client");
        c->x = tr_event_to_json(e);
    }
    return 0;
}

/* A SYN-only flow waits in the decoder's ring while 10,000 later flows each
 * send a second packet (a RST) and leave dead entries behind it, more than
 * the ring first holds: the ring is rewritten around the live flow, which
 * then completes its handshake and sends a request. Its session is found
 * (one event, HTTP, four client packets) and every RST flow is a probe. */
static void test_syn_ring_rewritten_around_a_waiting_flow(void **state)
{
    capture cap = capture_open("ring");
    pcap_dumper_t *w = cap.w;
    uint8_t f[256];
    const char *req = "GET / HTTP/1.0\r\n\r\n";
    seg syn = {"203.0.113.77", TARGET, 40000, 80, 1000, 0, SYN, 64240, 1, 64, "", 0, NULL};
    dump(w, f, frame(f, &syn), 0);
    char src[32];
    for (int a = 1; a <= 250; a++) {
        snprintf(src, sizeof src, "198.51.100.%d", a);
        for (int port = 1; port <= 40; port++) {
            seg g = {src, TARGET, 50000, (uint16_t)port, 7, 0, SYN, 1024, 2, 50, "", 0, NULL};
            dump(w, f, frame(f, &g), 1);
            seg r = {src, TARGET, 50000, (uint16_t)port, 8, 0, RST, 0, 3, 50, "", 0, NULL};
            dump(w, f, frame(f, &r), 1);
        }
    }
    seg sa = {TARGET, "203.0.113.77", 80, 40000, 5000, 1001, SA, 65160, 0, 64, "", 0, NULL};
    dump(w, f, frame(f, &sa), 2);
    seg ack = {"203.0.113.77", TARGET, 40000, 80, 1001, 5001, ACK, 502, 4, 64, "", 0, NULL};
    dump(w, f, frame(f, &ack), 2);
    seg data = {"203.0.113.77", TARGET, 40000, 80, 1001, 5001, ACK | 0x08, 502, 5, 64, "", 0, req};
    dump(w, f, frame(f, &data), 2);
    seg fin = {"203.0.113.77", TARGET, 40000, 80, 1001 + (uint32_t)strlen(req), 5001, ACK | 0x01,
               502, 6, 64, "", 0, NULL};
    dump(w, f, frame(f, &fin), 2);
    capture_close(&cap);
    session_catch c = {0};
    tr_import_stats st;
    tr_error err;
    assert_int_equal(tr_pcap_import(cap.path, NULL, catch_x, &c, &st, &err), 0);
    assert_int_equal(st.records, 1 + 2 * 10000 + 4);
    assert_int_equal(c.n, 10000 + 1);
    assert_non_null(c.x);
    assert_true(json_is_true(json_object_get(c.x, "handshake")));
    assert_string_equal(s(c.x, "proto"), "http");
    assert_int_equal(num(c.x, "packets"), 4);
    assert_string_equal(field(c.x, "http_path"), "/");
    json_decref(c.x);
    capture_remove(&cap);
}

/* The same records big-endian with nanosecond stamps, read by trawl's own
 * classic-pcap reader: the same events at the same microseconds. */
static void test_big_endian_nanosecond_pcap(void **state)
{
    char *path = tr_xasprintf("/tmp/trawl-pcap-ns-%d.pcap", (int)getpid());
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    uint8_t hdr[24] = {0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4};
    put32(hdr + 16, 65535);
    put32(hdr + 20, 1);
    fwrite(hdr, 1, 24, fp);
    uint8_t f[256], rec[16];
    seg g = {"198.51.100.30", TARGET, 33333, 23, ip4(TARGET), 0, SYN, 12345, 999, 64, "", 0, NULL};
    size_t n = frame(f, &g);
    put32(rec, 1764350000);
    put32(rec + 4, 123456789);   /* ns */
    put32(rec + 8, (uint32_t)n);
    put32(rec + 12, (uint32_t)n);
    fwrite(rec, 1, 16, fp);
    fwrite(f, 1, n, fp);
    fwrite(rec, 1, 16, fp);      /* a last record cut short */
    fwrite(f, 1, 10, fp);
    fclose(fp);
    collected c = {0};
    tr_import_stats st;
    import_collect(path, &c, &st);
    assert_int_equal(c.n, 1);
    json_t *e = find(&c, "198.51.100.30", 23);
    assert_string_equal(field(e, "scanner"), "mirai");
    assert_string_equal(s(e, "time"), "2025-11-28T17:13:20.123456Z");
    assert_int_equal(st.bad, 1);
    char want[64];
    snprintf(want, sizeof want, "packet 2 at byte offset %zu", 24 + 16 + n);
    assert_non_null(strstr(st.first_bad, want));
    collected_free(&c);
    unlink(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_loopback_capture),
        cmocka_unit_test(test_scanner_fingerprints),
        cmocka_unit_test(test_pcapng_cooked),
        cmocka_unit_test(test_sink_stops),
        cmocka_unit_test(test_flow_table_eviction),
        cmocka_unit_test(test_syn_ring_rewritten_around_a_waiting_flow),
        cmocka_unit_test(test_syn_aggregation_per_source_and_port),
        cmocka_unit_test(test_late_flow_joins_the_older_of_two_probes),
        cmocka_unit_test(test_big_endian_nanosecond_pcap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
