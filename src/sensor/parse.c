/* sensor/parse: the first bytes a client sent, read as its protocol. Every
 * read is bounds-checked against n: these bytes come from anyone. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sensor/sensor.h"
#include "sensor/sensor_internal.h"

#define FIELD_MAX 4096   /* longest field value kept (before escaping) */

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, nothing past U+10FFFF), or 0. */
static size_t utf8_len(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (len > n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return len;
}

/* Field values must be valid UTF-8 for the JSON form; control characters,
 * backslashes and bytes that are not UTF-8 become \xNN / \\ so nothing the
 * client sent is lost or mangled into something else. */
void tr_sensor_set_text(tr_event *e, const char *key, const void *v, size_t n)
{
    const uint8_t *p = v;
    if (n > FIELD_MAX)
        n = FIELD_MAX;
    char *out = tr_xmalloc(4 * n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        size_t u;
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
            *o++ = (char)p[i];
        } else if (p[i] == '\\') {
            *o++ = '\\';
            *o++ = '\\';
        } else if (p[i] >= 0x80 && (u = utf8_len(p + i, n - i)) > 0) {
            memcpy(o, p + i, u);
            o += u;
            i += u - 1;
        } else {
            o += sprintf(o, "\\x%02x", p[i]);
        }
    }
    *o = 0;
    tr_event_set(e, key, out);
    free(out);
}

static uint32_t be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t be24(const uint8_t *p) { return (uint32_t)p[0] << 16 | be16(p + 1); }
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | be24(p + 1); }
static uint32_t le16(const uint8_t *p) { return (uint32_t)p[1] << 8 | p[0]; }
static uint32_t le32(const uint8_t *p) { return le16(p) | (uint32_t)le16(p + 2) << 16; }

static const uint8_t *find(const uint8_t *p, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; m <= n && i <= n - m; i++)
        if (memcmp(p + i, needle, m) == 0)
            return p + i;
    return NULL;
}

/* ---- SSH ------------------------------------------------------------------ */

    /* RESP array of bulk strings: "*N" then N times "$L" and the data, CRLF-ended */
static int namelist(const uint8_t *p, size_t n, size_t *off, const uint8_t **s, size_t *len)
{
    if (*off + 4 > n)
        return -1;
    uint32_t l = be32(p + *off);
    if (l > n - *off - 4)
        return -1;
    *s = p + *off + 4;
    *len = l;
    *off += 4 + l;
    return 0;
}

int tr_parse_ssh(tr_event *e, const uint8_t *p, size_t n)
{
    if (n < 4 || memcmp(p, "SSH-", 4) != 0)
        return 0;
    strcpy(e->proto, "ssh");
    const uint8_t *eol = memchr(p, '\n', n);
    size_t vlen = eol ? (size_t)(eol - p) : n;
    size_t vshown = vlen;
    if (vshown && p[vshown - 1] == '\r')
        vshown--;
    tr_sensor_set_text(e, "ssh_client", p, vshown);
    if (!eol)
        return 1;
    /* The binary packet protocol (RFC 4253 6): length, padding length, payload. */
    const uint8_t *q = eol + 1;
    size_t m = n - (size_t)(q - p);
    if (m < 6)
        return 1;
    uint32_t plen = be32(q);
    if (plen < 2 || plen > m - 4 || q[5] != 20 /* SSH_MSG_KEXINIT */)
        return 1;
    if (q[4] >= plen - 1)
        return 1;
    const uint8_t *pay = q + 5;
    size_t paylen = plen - 1 - q[4];
    size_t off = 1 + 16;   /* message code, cookie */
    const uint8_t *l[10];
    size_t ll[10];
    for (int i = 0; i < 10; i++)
        if (namelist(pay, paylen, &off, &l[i], &ll[i]) != 0)
            return 1;
    /* HASSH (Salesforce): md5 of "kex;enc c2s;mac c2s;comp c2s". */
    tr_buf b = {0};
    tr_buf_append(&b, l[0], ll[0]);
    tr_buf_append(&b, ";", 1);
    tr_buf_append(&b, l[2], ll[2]);
    tr_buf_append(&b, ";", 1);
    tr_buf_append(&b, l[4], ll[4]);
    tr_buf_append(&b, ";", 1);
    tr_buf_append(&b, l[6], ll[6]);
    char md5[TR_MD5_HEX];
    tr_md5_hex(b.data, b.len, md5);
    tr_event_set(e, "hassh", md5);
    tr_sensor_set_text(e, "hassh_algorithms", b.data, b.len);
    tr_buf_free(&b);
    return 1;
}

/* ---- TLS ------------------------------------------------------------------ */

static int grease(uint32_t v)
{
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

static int cmp_u16(const void *a, const void *b)
{
    return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/* JA4 parts b and c: the first 12 hex digits of a SHA-256. */
static void sha256_12(const char *s, char out[13])
{
    char hex[TR_SHA256_HEX];
    tr_sha256_hex(s, strlen(s), hex);
    memcpy(out, hex, 12);
    out[12] = 0;
}

static void list_append_hex(tr_buf *b, const uint16_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tr_buf_printf(b, "%s%04x", i ? "," : "", v[i]);
}

static int alnum(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int tr_parse_tls(tr_event *e, const uint8_t *p, size_t n)
{
    if (n < 6 || p[0] != 0x16 || p[1] != 0x03)
        return 0;
    /* The handshake message may span records: join their fragments. */
    tr_buf hs = {0};
    size_t off = 0;
    while (off + 5 <= n && p[off] == 0x16) {
        size_t rl = be16(p + off + 3);
        size_t avail = n - off - 5 < rl ? n - off - 5 : rl;
        tr_buf_append(&hs, p + off + 5, avail);
        off += 5 + rl;
        if (hs.len >= 4 && hs.len >= 4 + be24((uint8_t *)hs.data + 1))
            break;
    }
    const uint8_t *h = (const uint8_t *)hs.data;
    size_t hn = hs.len;
    if (hn < 4 || h[0] != 1 /* ClientHello */) {
        tr_buf_free(&hs);
        return 0;
    }
    strcpy(e->proto, "tls");
    size_t end = 4 + be24(h + 1);
    if (end > hn)
        end = hn;
    size_t o = 4;
    uint16_t ciphers[512], exts[512], groups[512], sigs[512];
    size_t nc = 0, nx = 0, ng = 0, ns = 0;
    uint8_t formats[256];
    size_t nf = 0;
    uint32_t version = 0, maxver = 0;
    int have_sni = 0;
    char alpn[3] = "00";
    if (o + 2 + 32 + 1 > end)
        goto out;
    version = be16(h + o);
    o += 2 + 32;
    o += 1 + h[o];   /* session id */
    if (o + 2 > end)
        goto out;
    size_t cl = be16(h + o);
    o += 2;
    if (o + cl > end)
        goto out;
    for (size_t i = 0; i + 1 < cl; i += 2) {
        uint32_t c = be16(h + o + i);
        if (!grease(c) && nc < 512)
            ciphers[nc++] = (uint16_t)c;
    }
    o += cl;
    if (o + 1 > end)
        goto out;
    o += 1 + h[o];   /* compression methods */
    if (o + 2 > end)
        goto out;
    size_t xend = o + 2 + be16(h + o);
    o += 2;
    if (xend > end)
        xend = end;
    while (o + 4 <= xend) {
        uint32_t t = be16(h + o), l = be16(h + o + 2);
        const uint8_t *d = h + o + 4;
        if (o + 4 + l > xend)
            break;
        o += 4 + l;
        if (grease(t))
            continue;
        if (nx < 512)
            exts[nx++] = (uint16_t)t;
        if (t == 0 && l >= 5) {   /* server_name: list of (type, name) */
            size_t sl = be16(d + 3);
            if (d[2] == 0 && 5 + sl <= l) {
                tr_sensor_set_text(e, "tls_sni", d + 5, sl);
                have_sni = 1;
            }
        } else if (t == 10 && l >= 2) {   /* supported_groups */
            size_t gl = be16(d);
            for (size_t i = 0; i + 1 < gl && 2 + i + 1 < l; i += 2)
                if (!grease(be16(d + 2 + i)) && ng < 512)
                    groups[ng++] = (uint16_t)be16(d + 2 + i);
        } else if (t == 11 && l >= 1) {   /* ec_point_formats */
            /* A hello may repeat the extension: the array bounds the total. */
            for (size_t i = 0; i < d[0] && 1 + i < l && nf < sizeof formats; i++)
                formats[nf++] = d[1 + i];
        } else if (t == 13 && l >= 2) {   /* signature_algorithms, kept in order */
            size_t sl = be16(d);
            for (size_t i = 0; i + 1 < sl && 2 + i + 1 < l; i += 2)
                if (!grease(be16(d + 2 + i)) && ns < 512)
                    sigs[ns++] = (uint16_t)be16(d + 2 + i);
        } else if (t == 16 && l >= 3) {   /* ALPN: the first protocol */
            size_t al = d[2];
            if (al && 3 + al <= l) {
                const uint8_t *a = d + 3;
                if (alnum(a[0]) && alnum(a[al - 1])) {
                    alpn[0] = (char)a[0];
                    alpn[1] = (char)a[al - 1];
                } else {
                    static const char hx[] = "0123456789abcdef";
                    alpn[0] = hx[a[0] >> 4];
                    alpn[1] = hx[a[al - 1] & 15];
                }
            }
        } else if (t == 43 && l >= 1) {   /* supported_versions */
            for (size_t i = 0; i + 1 < d[0] && 1 + i + 1 < l; i += 2) {
                uint32_t v = be16(d + 1 + i);
                if (!grease(v) && v > maxver)
                    maxver = v;
            }
        }
    }
out:;
    /* JA3: version,ciphers,extensions,groups,formats in decimal, in order. */
    tr_buf j = {0};
    tr_buf_printf(&j, "%u,", version);
    for (size_t i = 0; i < nc; i++)
        tr_buf_printf(&j, "%s%u", i ? "-" : "", ciphers[i]);
    tr_buf_append(&j, ",", 1);
    for (size_t i = 0; i < nx; i++)
        tr_buf_printf(&j, "%s%u", i ? "-" : "", exts[i]);
    tr_buf_append(&j, ",", 1);
    for (size_t i = 0; i < ng; i++)
        tr_buf_printf(&j, "%s%u", i ? "-" : "", groups[i]);
    tr_buf_append(&j, ",", 1);
    for (size_t i = 0; i < nf; i++)
        tr_buf_printf(&j, "%s%u", i ? "-" : "", formats[i]);
    tr_buf_append(&j, "", 1);
    char md5[TR_MD5_HEX];
    tr_md5_hex(j.data, j.len - 1, md5);
    tr_event_set(e, "ja3", j.data);
    tr_event_set(e, "ja3_hash", md5);
    tr_buf_free(&j);

    /* JA4 (FoxIO): t<version><d|i><ciphers><extensions><alpn>_<b>_<c>. */
    uint32_t v = maxver ? maxver : version;
    const char *vs = v == 0x0304 ? "13" : v == 0x0303 ? "12" : v == 0x0302 ? "11"
                   : v == 0x0301 ? "10" : v == 0x0300 ? "s3" : v == 0x0002 ? "s2" : "00";
    char a[16], b[13], c[13];
    snprintf(a, sizeof a, "t%s%c%02zu%02zu%s", vs, have_sni ? 'd' : 'i', nc > 99 ? 99 : nc,
             nx > 99 ? 99 : nx, alpn);
    tr_buf s = {0};
    qsort(ciphers, nc, sizeof ciphers[0], cmp_u16);
    list_append_hex(&s, ciphers, nc);
    tr_buf_append(&s, "", 1);
    if (nc)
        sha256_12(s.data, b);
    else
        strcpy(b, "000000000000");
    s.len = 0;
    uint16_t sorted[512];
    size_t nsorted = 0;
    for (size_t i = 0; i < nx; i++)
        if (exts[i] != 0 && exts[i] != 16)
            sorted[nsorted++] = exts[i];
    qsort(sorted, nsorted, sizeof sorted[0], cmp_u16);
    list_append_hex(&s, sorted, nsorted);
    if (ns) {
        tr_buf_append(&s, "_", 1);
        list_append_hex(&s, sigs, ns);
    }
    tr_buf_append(&s, "", 1);
    if (nx)
        sha256_12(s.data, c);
    else
        strcpy(c, "000000000000");
    tr_buf_free(&s);
    char ja4[48];
    snprintf(ja4, sizeof ja4, "%s_%s_%s", a, b, c);
    tr_event_set(e, "ja4", ja4);
    tr_buf_free(&hs);
    return 1;
}

/* ---- HTTP ----------------------------------------------------------------- */

static const char *const http_methods[] = {
    "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "CONNECT", "TRACE", "PATCH",
    "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH", "PRI",
};

static int is_http_method(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < sizeof http_methods / sizeof http_methods[0]; i++) {
        size_t m = strlen(http_methods[i]);
        if (n > m && memcmp(p, http_methods[i], m) == 0 && p[m] == ' ')
            return 1;
    }
    return 0;
}

static int header_is(const uint8_t *p, size_t n, const char *name)
{
    size_t m = strlen(name);
    if (n <= m || p[m] != ':')
        return 0;
    for (size_t i = 0; i < m; i++) {
        uint8_t c = p[i];
        if (c >= 'A' && c <= 'Z')
            c += 32;
        if (c != (uint8_t)name[i])
            return 0;
    }
    return 1;
}

int tr_parse_http(tr_event *e, const uint8_t *p, size_t n)
{
    if (!is_http_method(p, n))
        return 0;
    const uint8_t *eol = memchr(p, '\n', n);
    size_t ll = eol ? (size_t)(eol - p) : n;
    if (ll && p[ll - 1] == '\r')
        ll--;
    const uint8_t *sp1 = memchr(p, ' ', ll);
    const uint8_t *sp2 = sp1 ? memchr(sp1 + 1, ' ', ll - (size_t)(sp1 + 1 - p)) : NULL;
    /* "GET /x" with no version is HTTP/0.9: still HTTP. */
    const uint8_t *tend = sp2 ? sp2 : p + ll;
    if (sp2 && (ll - (size_t)(sp2 + 1 - p) < 5 || memcmp(sp2 + 1, "HTTP/", 5) != 0))
        return 0;
    strcpy(e->proto, "http");
    tr_sensor_set_text(e, "http_method", p, (size_t)(sp1 - p));
    const uint8_t *target = sp1 + 1;
    size_t tl = (size_t)(tend - target);
    const uint8_t *q = memchr(target, '?', tl);
    tr_sensor_set_text(e, "http_path", target, q ? (size_t)(q - target) : tl);
    if (q)
        tr_sensor_set_text(e, "http_query", q + 1, (size_t)(tend - q - 1));
    if (sp2)
        tr_sensor_set_text(e, "http_version", sp2 + 1, (size_t)(p + ll - sp2 - 1));
    if (!eol)
        return 1;
    const uint8_t *h = eol + 1, *end = p + n;
    while (h < end) {
        const uint8_t *nl = memchr(h, '\n', (size_t)(end - h));
        size_t hl = nl ? (size_t)(nl - h) : (size_t)(end - h);
        if (hl && h[hl - 1] == '\r')
            hl--;
        if (hl == 0) {   /* end of headers: the body follows */
            if (nl && nl + 1 < end)
                tr_sensor_set_text(e, "http_body", nl + 1, (size_t)(end - nl - 1));
            break;
        }
        static const struct { const char *name, *key; } hdrs[] = {
            {"user-agent", "http_user_agent"}, {"host", "http_host"},
            {"content-type", "http_content_type"}, {"referer", "http_referer"},
            {"cookie", "http_cookie"}, {"authorization", "http_authorization"},
            {"x-forwarded-for", "http_x_forwarded_for"},
        };
        for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
            if (header_is(h, hl, hdrs[i].name)) {
                size_t vo = strlen(hdrs[i].name) + 1;
                while (vo < hl && (h[vo] == ' ' || h[vo] == '\t'))
                    vo++;
                tr_sensor_set_text(e, hdrs[i].key, h + vo, hl - vo);
            }
        }
        if (!nl)
            break;
        h = nl + 1;
    }
    return 1;
}

/* ---- telnet --------------------------------------------------------------- */

/* The client's keystrokes with IAC negotiation (RFC 854/855) removed. */
size_t tr_telnet_strip(const uint8_t *p, size_t n, uint8_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 255) {
            if (p[i] != 0)   /* CR NUL is a bare CR */
                out[k++] = p[i];
            continue;
        }
        if (i + 1 >= n)
            break;
        uint8_t cmd = p[++i];
        if (cmd == 255) {
            out[k++] = 255;
        } else if (cmd >= 251 && cmd <= 254) {   /* WILL WONT DO DONT <option> */
            i++;
        } else if (cmd == 250) {   /* SB ... IAC SE */
            while (i + 1 < n && !(p[i] == 255 && p[i + 1] == 240))
                i++;
            i++;
        }
    }
    return k;
}

int tr_parse_telnet(tr_event *e, const uint8_t *p, size_t n)
{
    uint8_t *t = tr_xmalloc(n + 1);
    size_t k = tr_telnet_strip(p, n, t);
    strcpy(e->proto, "telnet");
    /* Lines in answer to login:, Password:, then the shell. */
    int line = 0;
    tr_buf cmds = {0};
    size_t s = 0;
    for (size_t i = 0; i <= k; i++) {
        if (i < k && t[i] != '\r' && t[i] != '\n')
            continue;
        if (i == k && i == s)
            break;
        size_t len = i - s;
        if (len || line == 1) {   /* an empty password is a password */
            if (line == 0)
                tr_sensor_set_text(e, "username", t + s, len);
            else if (line == 1)
                tr_sensor_set_text(e, "password", t + s, len);
            else {
                if (cmds.len)
                    tr_buf_append(&cmds, "; ", 2);
                tr_buf_append(&cmds, t + s, len);
            }
            line++;
        }
        if (i + 1 < k && t[i] == '\r' && t[i + 1] == '\n')
            i++;
        s = i + 1;
    }
    if (cmds.len)
        tr_sensor_set_text(e, "command", cmds.data, cmds.len);
    tr_buf_free(&cmds);
    free(t);
    return 1;
}

/* ---- SMB ------------------------------------------------------------------ */

int tr_parse_smb(tr_event *e, const uint8_t *p, size_t n)
{
    /* NetBIOS session message (type 0, 24-bit length) around the SMB header. */
    if (n < 8 || p[0] != 0)
        return 0;
    const uint8_t *s = p + 4;
    size_t sn = n - 4;
    size_t nb = be24(p + 1);
    if (nb < sn)
        sn = nb;
    if (sn >= 4 && memcmp(s, "\xffSMB", 4) == 0) {
        strcpy(e->proto, "smb");
        /* SMB1 NEGOTIATE (0x72): WordCount 0, ByteCount, 0x02 "dialect\0"... */
        if (sn < 35 || s[4] != 0x72)
            return 1;
        size_t o = 32 + 1 + 2 * s[32];
        if (o + 2 > sn)
            return 1;
        size_t bc = le16(s + o), end = o + 2 + bc;
        o += 2;
        if (end > sn)
            end = sn;
        tr_buf b = {0};
        while (o < end && s[o] == 0x02) {
            const uint8_t *z = memchr(s + o + 1, 0, end - o - 1);
            if (!z)
                break;
            if (b.len)
                tr_buf_append(&b, ",", 1);
            tr_buf_append(&b, s + o + 1, (size_t)(z - s - o - 1));
            o = (size_t)(z - s) + 1;
        }
        if (b.len)
            tr_sensor_set_text(e, "smb1_dialects", b.data, b.len);
        tr_buf_free(&b);
        return 1;
    }
    if (sn < 4 || memcmp(s, "\xfeSMB", 4) != 0)
        return 0;
    strcpy(e->proto, "smb");
    /* SMB2 header (64 bytes), NEGOTIATE request (MS-SMB2 2.2.3). */
    if (sn < 64 + 36 || le16(s + 12) != 0 || le16(s + 64) != 36)
        return 1;
    const uint8_t *r = s + 64;
    size_t count = le16(r + 2);
    uint32_t ctx_off = le32(r + 28);
    size_t nctx = le16(r + 32);
    tr_buf b = {0};
    int has311 = 0;
    for (size_t i = 0; i < count && 64 + 36 + 2 * i + 2 <= sn; i++) {
        uint32_t d = le16(r + 36 + 2 * i);
        has311 |= d == 0x0311;
        tr_buf_printf(&b, "%s0x%04x", b.len ? "," : "", d);
    }
    if (b.len)
        tr_event_set(e, "smb_dialects", b.data);
    b.len = 0;
    if (has311) {
        /* Negotiate contexts, each 8-byte aligned, offsets from the header. */
        size_t o = ctx_off;
        for (size_t i = 0; i < nctx && o + 8 <= sn; i++) {
            uint32_t type = le16(s + o), len = le16(s + o + 2);
            tr_buf_printf(&b, "%s0x%04x", b.len ? "," : "", type);
            if (type == 3) {   /* SMB2_COMPRESSION_CAPABILITIES */
                tr_event_set_static(e, "smb_compression", "1");
                if (len >= 8 && o + 8 + 8 <= sn) {
                    size_t ac = le16(s + o + 8);
                    tr_buf a = {0};
                    for (size_t k = 0; k < ac && k * 2 + 8 + 2 <= len && o + 16 + 2 * k + 2 <= sn; k++)
                        tr_buf_printf(&a, "%s0x%04x", a.len ? "," : "", le16(s + o + 16 + 2 * k));
                    if (a.len)
                        tr_event_set(e, "smb_compression_algorithms", a.data);
                    tr_buf_free(&a);
                }
            }
            o += 8 + len;
            o = (o + 7) & ~(size_t)7;
        }
        if (b.len)
            tr_event_set(e, "smb_negotiate_contexts", b.data);
    }
    tr_buf_free(&b);
    return 1;
}

/* ---- RDP ------------------------------------------------------------------ */

int tr_parse_rdp(tr_event *e, const uint8_t *p, size_t n)
{
    /* TPKT (RFC 1006) then an X.224 Connection Request (code 0xE0). */
    if (n < 11 || p[0] != 3 || p[1] != 0 || (p[5] & 0xf0) != 0xe0)
        return 0;
    strcpy(e->proto, "rdp");
    size_t end = be16(p + 2);
    if (end > n)
        end = n;
    size_t o = 11;
    if (end >= o + 17 && memcmp(p + o, "Cookie: mstshash=", 17) == 0) {
        const uint8_t *c = p + o + 17;
        const uint8_t *crlf = find(c, end - o - 17, "\r\n");
        size_t cl = crlf ? (size_t)(crlf - c) : end - o - 17;
        tr_sensor_set_text(e, "rdp_cookie", c, cl);
        o = crlf ? (size_t)(crlf - p) + 2 : end;
    } else if (end > o && p[o] != 1) {
        /* A routing token or other text before the negotiation request. */
        const uint8_t *crlf = find(p + o, end - o, "\r\n");
        if (crlf) {
            tr_sensor_set_text(e, "rdp_token", p + o, (size_t)(crlf - p) - o);
            o = (size_t)(crlf - p) + 2;
        }
    }
    if (o + 8 <= end && p[o] == 1 /* TYPE_RDP_NEG_REQ */) {
        char v[16];
        snprintf(v, sizeof v, "%u", le32(p + o + 4));
        tr_event_set(e, "rdp_protocols", v);
    }
    return 1;
}

/* ---- Redis ---------------------------------------------------------------- */

int tr_parse_redis(tr_event *e, const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    tr_buf b = {0};
    if (p[0] == '*') {
        /* RESP array of bulk strings: *N\r\n($L\r\nDATA\r\n)*N */
        size_t o = 1;
        long count = 0;
        while (o < n && p[o] >= '0' && p[o] <= '9' && count < 1000000)
            count = count * 10 + (p[o++] - '0');
        if (o + 1 >= n || p[o] != '\r' || p[o + 1] != '\n' || count == 0)
            return 0;
        o += 2;
        for (long i = 0; i < count && o < n && p[o] == '$'; i++) {
            size_t len = 0;
            o++;
            while (o < n && p[o] >= '0' && p[o] <= '9' && len < 1u << 30)
                len = len * 10 + (size_t)(p[o++] - '0');
            if (o + 2 > n || p[o] != '\r')
                break;
            o += 2;
            size_t take = len > n - o ? n - o : len;
            if (b.len)
                tr_buf_append(&b, " ", 1);
            tr_buf_append(&b, p + o, take);
            o += take + 2;
        }
        if (!b.len) {
            tr_buf_free(&b);
            return 0;
        }
    } else {
        /* Inline command: one text line. */
        const uint8_t *eol = memchr(p, '\n', n);
        size_t ll = eol ? (size_t)(eol - p) : n;
        if (ll && p[ll - 1] == '\r')
            ll--;
        for (size_t i = 0; i < ll; i++)
            if (p[i] < 0x20 || p[i] >= 0x7f)
                return 0;
        if (!ll)
            return 0;
        tr_buf_append(&b, p, ll);
    }
    strcpy(e->proto, "redis");
    tr_sensor_set_text(e, "redis_command", b.data, b.len);
    tr_buf_free(&b);
    return 1;
}

/* ---- dispatch ------------------------------------------------------------- */

static int port_in(uint16_t port, const uint16_t *ports, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ports[i] == port)
            return 1;
    return 0;
}

static const uint16_t telnet_ports[] = {23, 2323, 223};
static const uint16_t redis_ports[] = {6379, 6380};

/* Nmap's version-detection probes (nmap-service-probes) are sent verbatim;
 * these exact payloads are its and no ordinary client's. */
static int nmap_probe(const uint8_t *p, size_t n)
{
    static const char *const probes[] = {
        "GET / HTTP/1.0\r\n\r\n", "OPTIONS / HTTP/1.0\r\n\r\n", "OPTIONS / RTSP/1.0\r\n\r\n",
        "\r\n\r\n", "HELP\r\n",
    };
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++)
        if (n == strlen(probes[i]) && memcmp(p, probes[i], n) == 0)
            return 1;
    return find(p, n, "Nmap Scripting Engine") != NULL;
}

void tr_sensor_parse(tr_event *e, const uint8_t *p, size_t n)
{
    tr_event_set_payload(e, p, n);
    if (n && nmap_probe(p, n))
        tr_event_set_static(e, "scanner", "nmap");
    if (tr_parse_ssh(e, p, n) || tr_parse_tls(e, p, n) || tr_parse_http(e, p, n) ||
        tr_parse_smb(e, p, n) || tr_parse_rdp(e, p, n))
        return;
    if ((n && p[0] == 255) || port_in(e->dst_port, telnet_ports, 3)) {
        tr_parse_telnet(e, p, n);
        return;
    }
    if ((n && p[0] == '*') || port_in(e->dst_port, redis_ports, 2))
        if (tr_parse_redis(e, p, n))
            return;
    strcpy(e->proto, "raw");
}
