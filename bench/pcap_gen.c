/* bench/pcap_gen: writes a synthetic capture of a sensor's view of the
 * internet (classic pcap, Ethernet) for bench/noise.sh: mostly SYN scan bursts
 * (ZMap-, Masscan-, Mirai-, Nmap-shaped and plain Linux SYNs) from many
 * distinct sources, and some completed sessions carrying an HTTP request.
 * Sources are 10.x.y.z (and 100.64/10 beyond 16M), targets the documentation
 * ranges 198.51.100.0/24 and 203.0.113.0/24. Nothing is sent anywhere.
 *
 * usage: pcap_gen OUT.pcap MEGABYTES SOURCES */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static FILE *out;
static uint64_t written, t_us;

static void w16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void w32(uint8_t *p, uint32_t v) { w16(p, v >> 16); w16(p + 2, v & 0xffff); }

static uint16_t csum(const uint8_t *p, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)p[i] << 8 | p[i + 1];
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

/* One Ethernet/IPv4/TCP frame. */
static void packet(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint32_t seq,
                   uint32_t ack, uint8_t flags, uint16_t win, uint16_t ipid, uint8_t ttl,
                   const uint8_t *opt, size_t optlen, const void *data, size_t dlen)
{
    uint8_t f[1600];
    size_t thl = 20 + optlen, n = 14 + 20 + thl + dlen;
    memset(f, 0, 14 + 20 + thl);
    memcpy(f, "\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00", 14);
    uint8_t *ip = f + 14, *tcp = ip + 20;
    ip[0] = 0x45;
    w16(ip + 2, (uint32_t)(20 + thl + dlen));
    w16(ip + 4, ipid);
    ip[8] = ttl;
    ip[9] = 6;
    w32(ip + 12, src);
    w32(ip + 16, dst);
    w16(ip + 10, csum(ip, 20));
    w16(tcp, sport);
    w16(tcp + 2, dport);
    w32(tcp + 4, seq);
    w32(tcp + 8, ack);
    tcp[12] = (uint8_t)((thl / 4) << 4);
    tcp[13] = flags;
    w16(tcp + 14, win);
    memcpy(tcp + 20, opt, optlen);
    memcpy(tcp + thl, data, dlen);
    uint8_t rec[16];
    uint32_t sec = (uint32_t)(t_us / 1000000), usec = (uint32_t)(t_us % 1000000);
    memcpy(rec, &sec, 4);
    memcpy(rec + 4, &usec, 4);
    uint32_t len = (uint32_t)n;
    memcpy(rec + 8, &len, 4);
    memcpy(rec + 12, &len, 4);
    fwrite(rec, 1, 16, out);
    fwrite(f, 1, n, out);
    written += 16 + n;
    t_us += 1 + rnd() % 400;
}

static uint32_t target(void)
{
    uint32_t h = 1 + rnd() % 254;
    return (rnd() & 1 ? 0xc6336400u : 0xcb007100u) | h;   /* 198.51.100.h / 203.0.113.h */
}

static uint32_t source(uint32_t s)
{
    /* A bijection of the index, so neighbouring sources are not neighbours. */
    uint32_t x = (s * 2654435761u) & 0xffffff;
    return s < (1u << 24) ? 0x0a000000u | x : 0x64400000u | (s & 0x3fffff);
}

static const uint16_t ports[] = {22, 23, 80, 443, 445, 2323, 3389, 5555, 6379, 8080, 8443, 37215};

static void scan_burst(uint32_t s)
{
    uint32_t src = source(s);
    int kind = (int)(s % 5), nports = 1 + (int)(rnd() % 3), k = 2 + (int)(rnd() % 7);
    uint16_t sport = (uint16_t)(1024 + rnd() % 60000);
    for (int pi = 0; pi < nports; pi++) {
        uint16_t dport = ports[rnd() % (sizeof ports / sizeof ports[0])];
        for (int i = 0; i < k; i++) {
            uint32_t dst = target(), seq = rnd() << 1 ^ rnd();
            static const uint8_t mss[] = {2, 4, 5, 0xb4};
            static const uint8_t linux_opt[] = {2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1,
                                                0, 0, 0, 0, 1, 3, 3, 7};
            switch (kind) {
            case 0:   /* ZMap */
                packet(src, dst, sport, dport, seq, 0, 0x02, 65535, 54321, 250, NULL, 0, NULL, 0);
                break;
            case 1:   /* Masscan */
                packet(src, dst, sport, dport, seq, 0, 0x02, 1024,
                       (uint16_t)((dst ^ dport ^ seq) & 0xffff), 250, NULL, 0, NULL, 0);
                break;
            case 2:   /* Mirai */
                packet(src, dst, (uint16_t)rnd(), dport, dst, 0, 0x02, (uint16_t)rnd(),
                       (uint16_t)rnd(), 64, NULL, 0, NULL, 0);
                break;
            case 3:   /* Nmap -sS */
                packet(src, dst, sport, dport, seq, 0, 0x02, 1024, (uint16_t)rnd(), 50, mss, 4,
                       NULL, 0);
                break;
            default:  /* a Linux client's SYN */
                packet(src, dst, (uint16_t)(32768 + rnd() % 28000), dport, seq, 0, 0x02, 64240,
                       (uint16_t)rnd(), 54, linux_opt, sizeof linux_opt, NULL, 0);
            }
        }
    }
}

static void session(uint32_t s)
{
    static const char *paths[] = {"/", "/.env", "/.git/config", "/wp-login.php",
                                  "/cgi-bin/.%2e/.%2e/.%2e/etc/passwd", "/HNAP1/",
                                  "/index.php?s=/Index/\\think\\app/invokefunction"};
    static const char *agents[] = {"curl/8.5.0", "Go-http-client/1.1", "python-requests/2.31.0",
                                   "Mozilla/5.0 zgrab/0.x"};
    uint32_t src = source(s), dst = target(), cseq = rnd(), sseq = rnd();
    uint16_t sport = (uint16_t)(32768 + rnd() % 28000), dport = rnd() & 1 ? 80 : 8080;
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %u.%u.%u.%u\r\nUser-Agent: %s\r\nAccept: */*\r\n"
                     "Connection: close\r\n\r\n",
                     paths[rnd() % 7], dst >> 24, dst >> 16 & 255, dst >> 8 & 255, dst & 255,
                     agents[rnd() % 4]);
    static const uint8_t opt[] = {2, 4, 5, 0xb4, 1, 1, 4, 2};
    packet(src, dst, sport, dport, cseq, 0, 0x02, 64240, (uint16_t)rnd(), 52, opt, 8, NULL, 0);
    packet(dst, src, dport, sport, sseq, cseq + 1, 0x12, 65160, 0, 64, opt, 8, NULL, 0);
    packet(src, dst, sport, dport, cseq + 1, sseq + 1, 0x10, 502, (uint16_t)rnd(), 52, NULL, 0,
           NULL, 0);
    packet(src, dst, sport, dport, cseq + 1, sseq + 1, 0x18, 502, (uint16_t)rnd(), 52, NULL, 0,
           req, (size_t)n);
    packet(dst, src, dport, sport, sseq + 1, cseq + 1 + (uint32_t)n, 0x10, 509, 0, 64, NULL, 0,
           NULL, 0);
    packet(src, dst, sport, dport, cseq + 1 + (uint32_t)n, sseq + 1, 0x11, 502, (uint16_t)rnd(),
           52, NULL, 0, NULL, 0);
    packet(dst, src, dport, sport, sseq + 1, cseq + 2 + (uint32_t)n, 0x14, 0, 0, 64, NULL, 0,
           NULL, 0);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: pcap_gen OUT.pcap MEGABYTES SOURCES\n");
        return 2;
    }
    uint64_t limit = strtoull(argv[2], NULL, 10) << 20;
    uint32_t nsrc = (uint32_t)strtoul(argv[3], NULL, 10);
    if (!limit || !nsrc || nsrc > (1u << 24) + (1u << 22)) {
        fprintf(stderr, "pcap_gen: bad size or source count\n");
        return 2;
    }
    /* Recent, so the noise store's retention keeps every event. */
    t_us = ((uint64_t)time(NULL) / 3600 - 3) * 3600 * 1000000;
    out = fopen(argv[1], "wb");
    if (!out) {
        perror(argv[1]);
        return 1;
    }
    static char buf[1 << 20];
    setvbuf(out, buf, _IOFBF, sizeof buf);
    uint8_t gh[24] = {0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0};
    uint32_t snap = 65535, link = 1;
    memcpy(gh + 16, &snap, 4);
    memcpy(gh + 20, &link, 4);
    fwrite(gh, 1, 24, out);
    written = 24;
    uint64_t bursts = 0, sessions = 0, packets_hint = 0;
    for (uint64_t b = 0; written < limit; b++) {
        uint32_t s = (uint32_t)(b % nsrc);
        if (b % 50 == 49) {
            session(s);
            sessions++;
        } else {
            scan_burst(s);
            bursts++;
        }
    }
    (void)packets_hint;
    if (fclose(out) != 0) {
        perror(argv[1]);
        return 1;
    }
    fprintf(stderr, "%s: %.1f MB, %llu scan bursts, %llu sessions, %llu sources\n", argv[1],
            written / 1e6, (unsigned long long)bursts, (unsigned long long)sessions,
            (unsigned long long)(bursts + sessions < nsrc ? bursts + sessions : nsrc));
    return 0;
}
