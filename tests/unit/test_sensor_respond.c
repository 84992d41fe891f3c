/* The live sensor's answers, fed the way bytes arrive: in pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sensor/sensor_internal.h"

/* Feeds p one piece of `step` bytes at a time; the answers, concatenated,
 * go to out; returns how many bytes had arrived when the responder said
 * done (0: never). */
static size_t feed(int role, const char *p, size_t n, size_t step, tr_buf *out)
{
    tr_responder r;
    tr_buf hello = {0};
    tr_responder_init(&r, role, &hello);
    tr_buf_free(&hello);
    for (size_t have = step < n ? step : n;; have = have + step < n ? have + step : n) {
        if (tr_responder_step(&r, (const uint8_t *)p, have, out))
            return have;
        if (have == n)
            return 0;
    }
}

static void test_http(void **state)
{
    static const char req[] = "POST /cgi-bin/x HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\necho;id";
    for (size_t step = 1; step <= sizeof req; step += 5) {
        tr_buf out = {0};
        assert_int_equal(feed(ROLE_AUTO, req, sizeof req - 1, step, &out), sizeof req - 1);
        tr_buf_append(&out, "", 1);
        assert_int_equal(strncmp(out.data, "HTTP/1.1 404 Not Found\r\n", 24), 0);
        tr_buf_free(&out);
    }
    tr_buf out = {0};
    static const char root[] = "GET / HTTP/1.0\r\n\r\n";
    assert_int_equal(feed(ROLE_AUTO, root, sizeof root - 1, 3, &out), sizeof root - 1);
    tr_buf_append(&out, "", 1);
    assert_non_null(strstr(out.data, "200 OK"));
    tr_buf_free(&out);
    /* a body that never comes: not done */
    static const char partial[] = "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\nx";
    assert_int_equal(feed(ROLE_AUTO, partial, sizeof partial - 1, 7, &out), 0);
    tr_buf_free(&out);
}

static void test_telnet(void **state)
{
    tr_responder r;
    tr_buf out = {0};
    tr_responder_init(&r, ROLE_TELNET, &out);
    tr_buf_append(&out, "", 1);
    assert_non_null(strstr(out.data, "login: "));
    out.len = 0;
    static const char in[] = "\xff\xfc\x1f" "root\r\nxc3511\r\n";
    assert_int_equal(tr_responder_step(&r, (const uint8_t *)in, 9, &out), 0);
    tr_buf_append(&out, "", 1);
    assert_string_equal(out.data, "Password: ");
    out.len = 0;
    assert_int_equal(tr_responder_step(&r, (const uint8_t *)in, sizeof in - 1, &out), 1);
    tr_buf_append(&out, "", 1);
    assert_non_null(strstr(out.data, "Login incorrect"));
    tr_buf_free(&out);
}

static void test_redis(void **state)
{
    static const char in[] = "*3\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$3\r\ndir\r\n*2\r\n$4\r\nauth\r\n$1\r\nx\r\n"
                             "PING\r\nAUTH pw\r\n";
    for (size_t step = 1; step < sizeof in; step += 4) {
        tr_buf out = {0};
        assert_int_equal(feed(ROLE_REDIS, in, sizeof in - 1, step, &out), 0);
        tr_buf_append(&out, "", 1);
        assert_string_equal(out.data, "-NOAUTH Authentication required.\r\n+OK\r\n"
                                      "-NOAUTH Authentication required.\r\n+OK\r\n");
        tr_buf_free(&out);
    }
}

static void test_ssh_tls_smb_rdp(void **state)
{
    tr_responder r;
    tr_buf out = {0};
    tr_responder_init(&r, ROLE_SSH, &out);
    /* banner, then a binary packet: length, padding, SSH_MSG_KEXINIT */
    assert_int_equal(strncmp(out.data, "SSH-2.0-OpenSSH_8.9p1", 21), 0);
    const uint8_t *pk = (const uint8_t *)memchr(out.data, '\n', out.len) + 1;
    size_t plen = (size_t)pk[0] << 24 | (size_t)pk[1] << 16 | (size_t)pk[2] << 8 | pk[3];
    assert_int_equal(pk[5], 20);
    assert_int_equal((size_t)(pk - (const uint8_t *)out.data) + 4 + plen, out.len);
    assert_int_equal((4 + plen) % 8, 0);
    tr_buf_free(&out);

    static const char ssh[] = "SSH-2.0-Go\r\n\0\0\0\x0c\x0a\x14" "0123456789";
    assert_int_equal(feed(ROLE_SSH, ssh, sizeof ssh - 1, 1, &out), sizeof ssh - 1);
    /* a TLS hello split over two records is done only when both are in */
    static const uint8_t tls[] = {0x16, 3, 1, 0, 4, 1, 0, 0, 5, 0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5};
    assert_int_equal(feed(ROLE_AUTO, (const char *)tls, sizeof tls, 1, &out), sizeof tls);
    static const uint8_t smb[] = {0, 0, 0, 6, 0xfe, 'S', 'M', 'B', 0, 0};
    assert_int_equal(feed(ROLE_AUTO, (const char *)smb, sizeof smb, 2, &out), sizeof smb);
    static const uint8_t rdp[] = {3, 0, 0, 11, 6, 0xe0, 0, 0, 0, 0, 0};
    out.len = 0;
    assert_int_equal(feed(ROLE_AUTO, (const char *)rdp, sizeof rdp, 4, &out), sizeof rdp);
    assert_int_equal((uint8_t)out.data[5], 0xd0);
    tr_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http), cmocka_unit_test(test_telnet),
        cmocka_unit_test(test_redis), cmocka_unit_test(test_ssh_tls_smb_rdp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
