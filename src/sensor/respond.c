/* sensor/respond: what the live sensor answers, as a pure function of what
 * the client has sent so far, so it can be tested and fuzzed without sockets.
 * Just enough of each protocol for a scanner to show its hand; nothing the
 * client sends is acted on. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sensor/sensor_internal.h"

static const char ssh_banner[] = "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n";

/* A real-looking server KEXINIT so clients go on to send theirs. */
static void ssh_kexinit(tr_buf *reply)
{
    static const char *const lists[10] = {
        ("curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,"
         "diffie-hellman-group14-sha256"),
        "rsa-sha2-512,rsa-sha2-256,ssh-ed25519",
        "chacha20-poly1305@openssh.com,aes128-ctr,aes256-ctr,aes128-gcm@openssh.com",
        "chacha20-poly1305@openssh.com,aes128-ctr,aes256-ctr,aes128-gcm@openssh.com",
        "hmac-sha2-256-etm@openssh.com,hmac-sha2-256,hmac-sha1",
        "hmac-sha2-256-etm@openssh.com,hmac-sha2-256,hmac-sha1",
        "none,zlib@openssh.com", "none,zlib@openssh.com", "", "",
    };
    uint8_t pay[1024];
    size_t n = 0;
    pay[n++] = 20;
    for (int i = 0; i < 16; i++)
        pay[n++] = (uint8_t)(rand() & 0xff);
    for (int i = 0; i < 10; i++) {
        uint32_t l = (uint32_t)strlen(lists[i]);
        pay[n++] = (uint8_t)(l >> 24);
        pay[n++] = (uint8_t)(l >> 16);
        pay[n++] = (uint8_t)(l >> 8);
        pay[n++] = (uint8_t)l;
        memcpy(pay + n, lists[i], l);
        n += l;
    }
    memset(pay + n, 0, 5);   /* first_kex_packet_follows, reserved */
    n += 5;
    size_t pad = 8 - ((n + 5) % 8);
    if (pad < 4)
        pad += 8;
    uint8_t pkt[1100];
    uint32_t plen = (uint32_t)(n + pad + 1);
    pkt[0] = (uint8_t)(plen >> 24);
    pkt[1] = (uint8_t)(plen >> 16);
    pkt[2] = (uint8_t)(plen >> 8);
    pkt[3] = (uint8_t)plen;
    pkt[4] = (uint8_t)pad;
    memcpy(pkt + 5, pay, n);
    memset(pkt + 5 + n, 0, pad);
    tr_buf_append(reply, pkt, 5 + n + pad);
}

static uint32_t be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t be24(const uint8_t *p) { return (uint32_t)p[0] << 16 | be16(p + 1); }
static uint32_t be32(const uint8_t *p) { return be16(p) << 16 | be16(p + 2); }

static const uint8_t *mem_find(const uint8_t *p, size_t n, const char *s)
{
    size_t m = strlen(s);
    for (size_t i = 0; m <= n && i <= n - m; i++)
        if (memcmp(p + i, s, m) == 0)
            return p + i;
    return NULL;
}

static int is_http(const uint8_t *p, size_t n)
{
    static const char *const m[] = {"GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ",
                                    "CONNECT ", "TRACE ", "PATCH ", "PROPFIND "};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        size_t k = strlen(m[i]);
        if (n >= k && memcmp(p, m[i], k) == 0)
            return 1;
    }
    return 0;
}

/* Has the request arrived whole (headers and Content-Length body)? */
/* A decimal number in [p, end), no sign, no whitespace; saturates. */
static size_t decimal(const uint8_t *p, const uint8_t *end)
{
    size_t v = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++)
        v = v > (SIZE_MAX - 9) / 10 ? SIZE_MAX : v * 10 + (size_t)(*p - '0');
    return v;
}

static int http_complete(const uint8_t *p, size_t n)
{
    const uint8_t *e = mem_find(p, n, "\r\n\r\n");
    if (!e)
        return 0;
    size_t hl = (size_t)(e - p) + 4, cl = 0;
    for (const uint8_t *h = p; h < e; h++) {
        if ((h == p || h[-1] == '\n') && e - h > 15 && strncasecmp((const char *)h, "content-length:", 15) == 0) {
            const uint8_t *v = h + 15;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            cl = decimal(v, e);
            break;
        }
    }
    return cl <= n && n - cl >= hl;
}

static void http_answer(const uint8_t *p, size_t n, tr_buf *reply)
{
    const uint8_t *sp = memchr(p, ' ', n);
    int root = sp && n - (size_t)(sp - p) > 2 && sp[1] == '/' && (sp[2] == ' ' || sp[2] == '?');
    static const char page[] = "<!DOCTYPE html><html><head><title>Welcome</title></head>"
                               "<body><h1>It works!</h1></body></html>\n";
    static const char nf[] = "<!DOCTYPE html><html><head><title>404 Not Found</title></head>"
                             "<body><h1>Not Found</h1></body></html>\n";
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %s\r\nServer: Apache/2.4.52 (Ubuntu)\r\nContent-Type: text/html\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      root ? "200 OK" : "404 Not Found", root ? sizeof page - 1 : sizeof nf - 1);
    tr_buf_append(reply, head, (size_t)hn);
    tr_buf_append(reply, root ? page : nf, root ? sizeof page - 1 : sizeof nf - 1);
}

/* Length of one complete Redis command at p (RESP or inline), else 0. */
static size_t redis_command_len(const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    if (p[0] != '*') {
        const uint8_t *nl = memchr(p, '\n', n);
        return nl ? (size_t)(nl - p) + 1 : 0;
    }
    const uint8_t *nl = memchr(p, '\n', n);
    if (!nl)
        return 0;
    size_t count = decimal(p + 1, nl);
    size_t o = (size_t)(nl - p) + 1;
    for (size_t i = 0; i < count && i < 1024; i++) {
        if (o >= n || p[o] != '$')
            return 0;
        nl = memchr(p + o, '\n', n - o);
        if (!nl)
            return 0;
        size_t len = decimal(p + o + 1, nl);
        o = (size_t)(nl - p) + 1;
        if (len > n || len + 2 > n - o)
            return 0;
        o += len + 2;
    }
    return o;
}

/* Returns 1 when the connection has shown what it will show. */
/* Is this one complete Redis command AUTH (inline, or RESP's first argument)? */
static int is_auth(const uint8_t *p, size_t l)
{
    if (p[0] == '*') {   /* *N CRLF $4 CRLF AUTH CRLF */
        const uint8_t *nl = memchr(p, '\n', l);
        if (!nl)
            return 0;
        size_t o = (size_t)(nl - p) + 1;
        nl = memchr(p + o, '\n', l - o);
        if (!nl)
            return 0;
        o = (size_t)(nl - p) + 1;
        p += o;
        l -= o;
    }
    return l >= 5 && strncasecmp((const char *)p, "AUTH", 4) == 0 &&
           (p[4] == ' ' || p[4] == '\r' || p[4] == '\n');
}

int tr_responder_step(tr_responder *c, const uint8_t *p, size_t n, tr_buf *reply)
{
    if (n == 0)
        return 0;
    if (c->role == ROLE_SSH || (n >= 4 && memcmp(p, "SSH-", 4) == 0)) {
        const uint8_t *nl = memchr(p, '\n', n);
        if (!nl)
            return 0;
        size_t o = (size_t)(nl - p) + 1;
        return n - o >= 4 && n - o - 4 >= be32(p + o);   /* the client's KEXINIT is in */
    }
    if (c->role == ROLE_TELNET) {
        uint8_t *t = tr_xmalloc(n + 1);
        size_t k = tr_telnet_strip(p, n, t), lines = 0;
        for (size_t i = 0; i < k; i++)
            if (t[i] == '\n' || (t[i] == '\r' && (i + 1 >= k || t[i + 1] != '\n')))
                lines++;
        free(t);
        if (lines >= 1 && c->telnet_state == 0) {
            tr_buf_append(reply, "Password: ", 10);
            c->telnet_state = 1;
        }
        if (lines >= 2 && c->telnet_state == 1) {
            tr_buf_append(reply, "\r\nLogin incorrect\r\n", 19);
            c->telnet_state = 2;
            return 1;
        }
        return 0;
    }
    if (n >= 5 && p[0] == 0x16 && p[1] == 3) {
        /* TLS: the whole ClientHello, then close (no handshake to offer). */
        size_t off = 0, got = 0;
        while (off + 5 <= n) {
            size_t rl = be16(p + off + 3);
            got += rl < n - off - 5 ? rl : n - off - 5;
            off += 5 + rl;
        }
        return n >= 9 && got >= 4 + be24(p + 6);
    }
    if (is_http(p, n)) {
        if (!http_complete(p, n))
            return 0;
        http_answer(p, n, reply);
        return 1;
    }
    if (n >= 4 && p[0] == 0 && n >= 4 + be24(p + 1) && (n < 8 || p[5] == 'S'))
        return 1;   /* SMB: the NEGOTIATE is in; closing ends the conversation */
    if (n >= 4 && p[0] == 3 && p[1] == 0 && n >= be16(p + 2)) {
        /* RDP: X.224 Connection Confirm choosing standard RDP security. */
        static const uint8_t cc[] = {3, 0, 0, 19, 14, 0xd0, 0, 0, 0x12, 0x34, 0,
                                     2, 0, 8, 0, 0, 0, 0, 0};
        tr_buf_append(reply, cc, sizeof cc);
        return 1;
    }
    if (p[0] == '*' || c->role == ROLE_REDIS) {
        size_t l;
        while ((l = redis_command_len(p + c->redis_done, n - c->redis_done)) > 0) {
            if (is_auth(p + c->redis_done, l))
                tr_buf_append(reply, "+OK\r\n", 5);
            else
                tr_buf_append(reply, "-NOAUTH Authentication required.\r\n", 34);
            c->redis_done += l;
        }
        return 0;   /* more commands may follow; the event waits for the close */
    }
    return 0;
}


void tr_responder_init(tr_responder *c, int role, tr_buf *reply)
{
    memset(c, 0, sizeof *c);
    c->role = role;
    if (role == ROLE_SSH) {
        tr_buf_append(reply, ssh_banner, sizeof ssh_banner - 1);
        ssh_kexinit(reply);
    } else if (role == ROLE_TELNET) {
        /* DO NAWS, WILL ECHO, WILL SUPPRESS-GO-AHEAD: clients answer in kind. */
        static const char hello[] = "\xff\xfd\x1f\xff\xfb\x01\xff\xfb\x03\r\nlogin: ";
        tr_buf_append(reply, hello, sizeof hello - 1);
    }
}
