/* The IOC extractor: one pass over the folded text, each position tried by
 * hand-written recognisers in order of specificity (a YARA rule holds
 * strings, a URL holds a domain, an e-mail holds a domain), the longest
 * sensible token taken, then validated (checksums, the Public Suffix List,
 * address ranges) and classified rather than blindly emitted. */
#include <arpa/inet.h>
#include <ctype.h>
#include <libpsl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"
#include "rules/rules.h"

static pthread_once_t psl_once = PTHREAD_ONCE_INIT;
static psl_ctx_t *psl_ctx;   /* read-only once loaded */

static void psl_load(void)
{
    /* Debian's publicsuffix package is fresher than libpsl's built-in copy. */
    psl_ctx = psl_latest("/usr/share/publicsuffix/public_suffix_list.dafsa");
    if (!psl_ctx)
        psl_ctx = psl_latest(NULL);
}

static const char *kind_names[TR_IOC_KIND_COUNT] = {
    "ipv4", "ipv6", "domain", "url", "email", "md5", "sha1", "sha256", "sha512", "ssdeep",
    "cve", "attack-technique", "bitcoin", "filename", "registry-key", "yara",
};
static const char *class_names[TR_IOCC_COUNT] = {
    "indicator", "reference", "documentation", "private", "reserved", "version", "lookalike",
    "benign",
};

const char *tr_ioc_kind_name(tr_ioc_kind k)
{
    return (unsigned)k < TR_IOC_KIND_COUNT ? kind_names[k] : "?";
}

const char *tr_ioc_class_name(tr_ioc_class c)
{
    return (unsigned)c < TR_IOCC_COUNT ? class_names[c] : "?";
}

void tr_ioc_list_free(tr_ioc_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].value);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* ---- scanning context ------------------------------------------------------ */

typedef struct scan {
    const char *orig;
    size_t orig_len;
    const char *f;          /* folded */
    size_t n;
    const size_t *map;
    tr_ioc_list *out;
} scan;

static bool is_word(unsigned char c)
{
    return isalnum(c) || c == '_';
}

static bool is_hex(unsigned char c)
{
    return isxdigit(c) != 0;
}

static void emit(scan *s, tr_ioc_kind k, tr_ioc_class c, const char *reason, size_t a, size_t b,
                 char *value)
{
    tr_ioc_list *l = s->out;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 32;
        l->v = tr_xrealloc(l->v, l->cap * sizeof *l->v);
    }
    tr_ioc *x = &l->v[l->n++];
    x->kind = k;
    x->cls = c;
    x->reason = reason;
    x->value = value;
    x->offset = s->map[a];
    x->length = s->map[b] - s->map[a];
    /* Defanged when folding changed the bytes: not when the value was only
     * normalised (case, IPv6 zero compression). */
    x->defanged = b - a != x->length || memcmp(s->orig + x->offset, s->f + a, b - a) != 0;
}

static char *dup_range(const char *p, size_t n, bool lower)
{
    char *r = tr_xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        r[i] = lower ? (char)tolower((unsigned char)p[i]) : p[i];
    r[n] = 0;
    return r;
}

/* ---- addresses ---------------------------------------------------------------- */

static tr_ioc_class ipv4_class(const unsigned char a[4], const char **reason)
{
    uint32_t v = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
    static const struct {
        uint32_t net;
        int bits;
        tr_ioc_class c;
        const char *why;
    } ranges[] = {
        {0xC0000200, 24, TR_IOCC_DOCUMENTATION, "RFC 5737 documentation range"},
        {0xC6336400, 24, TR_IOCC_DOCUMENTATION, "RFC 5737 documentation range"},
        {0xCB007100, 24, TR_IOCC_DOCUMENTATION, "RFC 5737 documentation range"},
        {0x0A000000, 8, TR_IOCC_PRIVATE, "RFC 1918 private range"},
        {0xAC100000, 12, TR_IOCC_PRIVATE, "RFC 1918 private range"},
        {0xC0A80000, 16, TR_IOCC_PRIVATE, "RFC 1918 private range"},
        {0x7F000000, 8, TR_IOCC_PRIVATE, "loopback"},
        {0xA9FE0000, 16, TR_IOCC_PRIVATE, "link-local"},
        {0x64400000, 10, TR_IOCC_RESERVED, "carrier-grade NAT range"},
        {0x00000000, 8, TR_IOCC_RESERVED, "\"this network\" range"},
        {0xC6120000, 15, TR_IOCC_RESERVED, "benchmarking range"},
        {0xE0000000, 4, TR_IOCC_RESERVED, "multicast"},
        {0xF0000000, 4, TR_IOCC_RESERVED, "reserved range"},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        uint32_t mask = ranges[i].bits ? ~0u << (32 - ranges[i].bits) : 0;
        if ((v & mask) == ranges[i].net) {
            *reason = ranges[i].why;
            return ranges[i].c;
        }
    }
    static const uint32_t resolvers[] = {0x08080808, 0x08080404, 0x01010101, 0x01000001,
                                         0x09090909};
    for (size_t i = 0; i < sizeof resolvers / sizeof resolvers[0]; i++)
        if (v == resolvers[i]) {
            *reason = "well-known public DNS resolver";
            return TR_IOCC_BENIGN;
        }
    *reason = "public IPv4 address";
    return TR_IOCC_INDICATOR;
}

/* True when the words before position a say a version follows. */
static bool version_context(scan *s, size_t a)
{
    size_t b = a;
    while (b > 0 && s->f[b - 1] == ' ')
        b--;
    if (b > 0 && (s->f[b - 1] == 'v' || s->f[b - 1] == 'V') && (b < 2 || !isalpha((unsigned char)s->f[b - 2])))
        return true;
    /* "version" may stand a few words before: "versions such as 1.2.0.0". */
    size_t from = b > 32 ? b - 32 : 0;
    for (size_t k = b; k > from; k--) {
        char c = s->f[k - 1];
        /* ...but within the clause: "version 1.2; C2 45.1.2.3" is no version. */
        if (c == ';' || c == '\n' || (c == '.' && k < b && s->f[k] == ' '))
            break;
        if (k - 1 + 7 <= b && strncasecmp(s->f + k - 1, "version", 7) == 0)
            return true;
    }
    static const char *words[] = {"version", "ver.", "ver", "release", "build", "firmware",
                                  "update", "patch", "v.", "\xe3\x83\x90\xe3\x83\xbc\xe3\x82\xb8\xe3\x83\xa7\xe3\x83\xb3"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t wl = strlen(words[i]);
        /* Whole words only: "server 1.2.3.4" is no version. */
        if (b >= wl && strncasecmp(s->f + b - wl, words[i], wl) == 0 &&
            (b == wl || !isalpha((unsigned char)s->f[b - wl - 1])))
            return true;
    }
    return false;
}

static size_t try_ipv4(scan *s, size_t i)
{
    const char *f = s->f;
    /* "v1.2.3.4" is let in, to be classified as the version it is. */
    bool vprefix = i > 0 && (f[i - 1] == 'v' || f[i - 1] == 'V') &&
                   (i < 2 || !is_word((unsigned char)f[i - 2]));
    if (i > 0 && !vprefix && (f[i - 1] == '.' || is_word((unsigned char)f[i - 1])))
        return 0;
    unsigned char a[4];
    size_t p = i;
    for (int k = 0; k < 4; k++) {
        size_t st = p;
        unsigned v = 0;
        while (p < s->n && isdigit((unsigned char)f[p]) && p - st < 4)
            v = v * 10 + (unsigned)(f[p++] - '0');
        size_t nd = p - st;
        if (nd == 0 || nd > 3 || v > 255 || (nd > 1 && f[st] == '0'))
            return 0;
        a[k] = (unsigned char)v;
        if (k < 3) {
            if (p >= s->n || f[p] != '.')
                return 0;
            p++;
        }
    }
    /* 1.2.3.4.5 or 1.2.3.4a: a version or an identifier, not an address. */
    if (p < s->n && (is_word((unsigned char)f[p]) ||
                     (f[p] == '.' && p + 1 < s->n && isdigit((unsigned char)f[p + 1]))))
        return 0;
    size_t end = p;
    int cidr = -1;
    if (p + 1 < s->n && f[p] == '/' && isdigit((unsigned char)f[p + 1])) {
        size_t q = p + 1;
        unsigned v = 0;
        while (q < s->n && isdigit((unsigned char)f[q]) && q - p <= 2)
            v = v * 10 + (unsigned)(f[q++] - '0');
        if (v <= 32 && !(q < s->n && is_word((unsigned char)f[q]))) {
            cidr = (int)v;
            end = q;
        }
    }
    const char *reason;
    tr_ioc_class c = ipv4_class(a, &reason);
    if (version_context(s, i)) {
        c = TR_IOCC_VERSION;
        reason = "preceded by a version word";
    } else if (cidr < 0 && a[3] == 0 && c == TR_IOCC_INDICATOR) {
        /* x.y.z.0 alone names a network (or a version: 1.2.0.0), not a host. */
        c = TR_IOCC_LOOKALIKE;
        reason = "network address without a prefix length, or a version";
    }
    char buf[24];
    if (cidr >= 0)
        snprintf(buf, sizeof buf, "%u.%u.%u.%u/%d", a[0], a[1], a[2], a[3], cidr);
    else
        snprintf(buf, sizeof buf, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
    emit(s, TR_IOC_IPV4, c, reason, i, end, tr_xstrdup(buf));
    return end - i;
}

static size_t try_ipv6(scan *s, size_t i)
{
    const char *f = s->f;
    if (i > 0 && (is_word((unsigned char)f[i - 1]) || f[i - 1] == ':'))
        return 0;
    size_t p = i, colons = 0;
    while (p < s->n && p - i < 45 && (is_hex((unsigned char)f[p]) || f[p] == ':' || f[p] == '.')) {
        colons += f[p] == ':';
        p++;
    }
    while (p > i && (f[p - 1] == '.' || (f[p - 1] == ':' && !(p - i >= 2 && f[p - 2] == ':'))))
        p--;
    if (colons < 2 || p - i < 3 || (p < s->n && is_word((unsigned char)f[p])))
        return 0;
    char buf[64];
    memcpy(buf, f + i, p - i);
    buf[p - i] = 0;
    unsigned char a[16];
    if (inet_pton(AF_INET6, buf, a) != 1)
        return 0;
    size_t end = p;
    int cidr = -1;
    if (p + 1 < s->n && f[p] == '/' && isdigit((unsigned char)f[p + 1])) {
        size_t q = p + 1;
        unsigned v = 0;
        while (q < s->n && isdigit((unsigned char)f[q]) && q - p <= 3)
            v = v * 10 + (unsigned)(f[q++] - '0');
        if (v <= 128) {
            cidr = (int)v;
            end = q;
        }
    }
    char norm[INET6_ADDRSTRLEN + 8];
    inet_ntop(AF_INET6, a, norm, INET6_ADDRSTRLEN);
    if (cidr >= 0)
        snprintf(norm + strlen(norm), 8, "/%d", cidr);
    tr_ioc_class c = TR_IOCC_INDICATOR;
    const char *reason = "public IPv6 address";
    static const unsigned char zero[16];
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) {
        c = TR_IOCC_DOCUMENTATION;
        reason = "RFC 3849 documentation range";
    } else if ((a[0] & 0xfe) == 0xfc) {
        c = TR_IOCC_PRIVATE;
        reason = "unique local address";
    } else if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) {
        c = TR_IOCC_PRIVATE;
        reason = "link-local";
    } else if (memcmp(a, zero, 15) == 0 && a[15] <= 1) {
        c = a[15] ? TR_IOCC_PRIVATE : TR_IOCC_RESERVED;
        reason = a[15] ? "loopback" : "unspecified address";
    } else if (a[0] == 0xff) {
        c = TR_IOCC_RESERVED;
        reason = "multicast";
    } else if ((a[0] & 0xe0) != 0x20) {
        c = TR_IOCC_RESERVED;
        reason = "outside global unicast 2000::/3";
    }
    emit(s, TR_IOC_IPV6, c, reason, i, end, tr_xstrdup(norm));
    return end - i;
}

/* ---- domains, file names, e-mail -------------------------------------------- */

static const char *const exec_ext[] = {
    "exe", "dll", "scr", "bat", "cmd", "ps1", "psm1", "vbs", "vbe", "js", "jse", "wsf", "hta",
    "msi", "lnk", "jar", "sys", "cpl", "ocx", "pif", "docm", "xlsm", "pptm", "iso", "img",
    "elf", "apk", "dmg", "so", "sh", "py", "zip", "rar", "7z", "one", "chm", "reg", "au3",
    "a3x", "xll", "msc", "msix", "appx", "cab", "wsh", NULL,
};

/* Extensions that are also top-level domains: a bare "name.ext" is taken
 * as a file unless it was defanged or written as a URL. */
static bool is_exec_ext(const char *e, size_t n)
{
    for (size_t i = 0; exec_ext[i]; i++)
        if (strlen(exec_ext[i]) == n && strncasecmp(exec_ext[i], e, n) == 0)
            return true;
    return false;
}

static const char *const system_bins[] = {
    "cmd.exe", "powershell.exe", "rundll32.exe", "regsvr32.exe", "explorer.exe", "svchost.exe",
    "mshta.exe", "wscript.exe", "cscript.exe", "notepad.exe", "lsass.exe", "winword.exe",
    "excel.exe", "schtasks.exe", "certutil.exe", "bitsadmin.exe", "msiexec.exe", "wmic.exe",
    "conhost.exe", "taskmgr.exe", "services.exe", "vssadmin.exe", "net.exe", "kernel32.dll",
    "ntdll.dll", "user32.dll", "advapi32.dll", "psexec.exe", NULL,
};
static const char *const generic_names[] = {
    "setup", "install", "installer", "update", "updater", "uninstall", "program", "app",
    "file", "example", "sample", "test", "program", "launcher", "a", "b", "x", "foo", "bar",
    "malware", "virus", "payload", NULL,
};

static int domain_check(const char *d, const char **reason)
{
    pthread_once(&psl_once, psl_load);
    if (!psl_ctx)
        return -1;
    const char *tld = strrchr(d, '.');
    if (!tld || !isalpha((unsigned char)tld[1]))
        return 0;
    /* The suffix must be a listed one, and something must stand before it. */
    if (!psl_is_public_suffix2(psl_ctx, tld + 1, PSL_TYPE_ANY | PSL_TYPE_NO_STAR_RULE))
        return 0;
    if (psl_is_public_suffix(psl_ctx, d))
        return 0;
    if (!psl_registrable_domain(psl_ctx, d))
        return 0;
    *reason = "domain under a listed public suffix";
    return 1;
}

static tr_ioc_class domain_class(const char *d, const char **reason)
{
    static const char *const doc[] = {"example.com", "example.net", "example.org", NULL};
    static const char *const doc_tld[] = {".example", ".test", ".invalid", ".localhost", ".local",
                                          NULL};
    size_t n = strlen(d);
    for (size_t i = 0; doc[i]; i++) {
        size_t l = strlen(doc[i]);
        if (n >= l && strcmp(d + n - l, doc[i]) == 0 && (n == l || d[n - l - 1] == '.')) {
            *reason = "RFC 2606 example domain";
            return TR_IOCC_DOCUMENTATION;
        }
    }
    for (size_t i = 0; doc_tld[i]; i++) {
        size_t l = strlen(doc_tld[i]);
        if (n > l && strcmp(d + n - l, doc_tld[i]) == 0) {
            *reason = "reserved top-level domain";
            return TR_IOCC_DOCUMENTATION;
        }
    }
    static const char *const benign[] = {
        "microsoft.com", "google.com", "github.com", "twitter.com", "x.com", "mitre.org",
        "virustotal.com", "abuse.ch", "apple.com", "amazon.com", "windowsupdate.com",
        "youtube.com", "facebook.com", "linkedin.com", "wikipedia.org", "w3.org", NULL};
    for (size_t i = 0; benign[i]; i++) {
        size_t l = strlen(benign[i]);
        if (n >= l && strcmp(d + n - l, benign[i]) == 0 && (n == l || d[n - l - 1] == '.')) {
            *reason = "well-known service domain";
            return TR_IOCC_BENIGN;
        }
    }
    return TR_IOCC_INDICATOR;
}

static bool host_char(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_';
}

/* A validated hostname at [a, b) lowercased, or NULL. */
static char *host_at(scan *s, size_t a, size_t b, const char **reason, int *err)
{
    if (b <= a || b - a > 253)
        return NULL;
    char *d = dup_range(s->f + a, b - a, true);
    /* Labels: 1..63 of [a-z0-9-], not starting or ending with '-'. */
    size_t lab = 0, labels = 1;
    for (size_t i = 0; d[i]; i++) {
        if (d[i] == '.') {
            if (lab == 0 || d[i - 1] == '-')
                goto bad;
            lab = 0;
            labels++;
            continue;
        }
        if (d[i] == '_' || (lab == 0 && d[i] == '-') || ++lab > 63)
            goto bad;
    }
    if (lab == 0 || labels < 2)
        goto bad;
    int r = domain_check(d, reason);
    if (r < 0)
        *err = 1;
    if (r <= 0)
        goto bad;
    return d;
bad:
    free(d);
    return NULL;
}

static size_t try_email(scan *s, size_t i, size_t at, int *err)
{
    const char *f = s->f;
    size_t p = at + 1, q = p;
    while (q < s->n && host_char((unsigned char)f[q]))
        q++;
    while (q > p && (f[q - 1] == '.' || f[q - 1] == '-'))
        q--;
    const char *reason;
    char *host = host_at(s, p, q, &reason, err);
    if (!host)
        return 0;
    if (at == i || f[i] == '.' || f[at - 1] == '.') {
        free(host);
        return 0;
    }
    char *v = tr_xasprintf("%.*s@%s", (int)(at - i), f + i, host);
    tr_ioc_class c = domain_class(host, &reason);
    if (c == TR_IOCC_INDICATOR)
        reason = "e-mail address at a valid domain";
    free(host);
    emit(s, TR_IOC_EMAIL, c, reason, i, q, v);
    return q - i;
}

/* Kana (U+3040-U+30FF) or a CJK ideograph (U+4E00-U+9FFF) as 3 UTF-8
 * bytes at p: letters of a word, unlike the CJK punctuation 「」、。. */
static bool cjk_word(const unsigned char *p)
{
    if ((p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[0] & 0xF0) != 0xE0)
        return false;
    unsigned cp = (p[0] & 0x0Fu) << 12 | (p[1] & 0x3Fu) << 6 | (p[2] & 0x3Fu);
    return (cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0x4E00 && cp <= 0x9FFF);
}

/* A dotted word: an e-mail's local part, a domain, or a file name. */
static size_t try_dotted(scan *s, size_t i, int *err)
{
    const char *f = s->f;
    if (i > 0 && (is_word((unsigned char)f[i - 1]) || f[i - 1] == '.' || f[i - 1] == '-' ||
                  f[i - 1] == '@'))
        return 0;
    size_t p = i;
    while (p < s->n && (host_char((unsigned char)f[p]) || f[p] == '+' || f[p] == '%'))
        p++;
    if (p < s->n && f[p] == '@' && p > i)
        return try_email(s, i, p, err);
    p = i;
    while (p < s->n && host_char((unsigned char)f[p]))
        p++;
    while (p > i && (f[p - 1] == '.' || f[p - 1] == '-'))
        p--;
    const char *dot = NULL;
    for (size_t k = p; k > i && !dot; k--)
        if (f[k - 1] == '.')
            dot = f + k - 1;
    if (!dot || dot == f + i)
        return 0;
    const char *ext = dot + 1;
    size_t extn = (size_t)(f + p - ext);
    bool defanged = s->map[p] - s->map[i] != p - i;
    if (is_exec_ext(ext, extn) && !defanged) {
        /* Japanese names run into the text: in "「請求書_0603.zip」" the
         * kanji belong to the file, but in "マルウェアはloader.exe" the
         * kana are prose. An ASCII part starting with a letter stands alone. */
        while (!isalpha((unsigned char)f[i]) && i >= 3 && cjk_word((const unsigned char *)f + i - 3))
            i -= 3;
        char *v = dup_range(f + i, p - i, false);
        char *lower = dup_range(f + i, p - i, true);
        tr_ioc_class c = TR_IOCC_INDICATOR;
        const char *reason = "file name with an executable extension";
        for (size_t k = 0; system_bins[k]; k++)
            if (strcmp(lower, system_bins[k]) == 0) {
                c = TR_IOCC_BENIGN;
                reason = "a Windows system binary";
            }
        size_t stem = (size_t)(dot - (f + i));
        for (size_t k = 0; generic_names[k] && c == TR_IOCC_INDICATOR; k++)
            if (strlen(generic_names[k]) == stem && strncmp(lower, generic_names[k], stem) == 0) {
                c = TR_IOCC_LOOKALIKE;
                reason = "generic file name in prose";
            }
        free(lower);
        emit(s, TR_IOC_FILENAME, c, reason, i, p, v);
        return p - i;
    }
    const char *reason;
    char *host = host_at(s, i, p, &reason, err);
    if (!host)
        return 0;
    tr_ioc_class c = domain_class(host, &reason);
    /* Markdown, Python, shell, Rust share their extensions with
     * country domains: "README.md" in prose is a file. */
    static const char *const ext_tlds[] = {"md", "py", "sh", "rs", "so", "ps", NULL};
    const char *t = strrchr(host, '.') + 1;
    for (size_t k = 0; ext_tlds[k] && c == TR_IOCC_INDICATOR && !defanged; k++)
        if (strcmp(t, ext_tlds[k]) == 0 && strchr(host, '.') == t - 1) {
            c = TR_IOCC_LOOKALIKE;
            reason = "looks like a file name with a country-code extension";
        }
    emit(s, TR_IOC_DOMAIN, c, reason, i, p, host);
    return p - i;
}

/* ---- URLs ---------------------------------------------------------------------- */

/* A character a URL runs over. */
static bool url_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && !strchr("\"'<>`{}|\\^", c);
}

/* The host of a URL, [hs, he) with an optional userinfo@: 0 with its
 * class and reason, or -1 when it is no host. */
static int url_host(scan *s, size_t hs, size_t he, tr_ioc_class *c, const char **reason,
                    int *err)
{
    const char *f = s->f;
    const char *at = memchr(f + hs, '@', he - hs);
    size_t host0 = at ? (size_t)(at - f) + 1 : hs;
    if (he <= host0)
        return -1;
    char hb[256];
    size_t hl = he - host0;
    if (hl >= sizeof hb)
        return -1;
    memcpy(hb, f + host0, hl);
    hb[hl] = 0;
    *reason = "URL";
    *c = TR_IOCC_INDICATOR;
    unsigned char a4[4], a6[16];
    if (inet_pton(AF_INET, hb, a4) == 1) {
        *c = ipv4_class(a4, reason);
    } else if (hb[0] == '[' && hl > 2 && hb[hl - 1] == ']') {
        hb[hl - 1] = 0;
        if (inet_pton(AF_INET6, hb + 1, a6) != 1)
            return -1;
    } else {
        char *host = host_at(s, host0, he, reason, err);
        if (!host)
            return -1;
        *c = domain_class(host, reason);
        free(host);
    }
    return 0;
}

static size_t try_url(scan *s, size_t i, int *err)
{
    const char *f = s->f;
    static const char *const schemes[] = {"https://", "http://", "ftp://", "sftp://", NULL};
    if (i > 0 && isalpha((unsigned char)f[i - 1]))
        return 0;
    size_t sl = 0;
    for (size_t k = 0; schemes[k]; k++) {
        size_t l = strlen(schemes[k]);
        if (s->n - i >= l && strncasecmp(f + i, schemes[k], l) == 0) {
            sl = l;
            break;
        }
    }
    if (!sl)
        return 0;
    size_t hs = i + sl;
    /* The host first, where it is sure to end before any trimming: at a
     * '/' or '#', or at a ':' or '?' that more URL follows. A refused host
     * then costs only its own length: checking it after reading the whole
     * URL made "http://http://..." cost the square of its length (every
     * scheme in it started a read to its end). The next scheme's ':' ends
     * the host, so these reads add up to the text's length. */
    size_t e = hs;
    while (e < s->n && url_char((unsigned char)f[e]) && !strchr(":/?#", f[e]))
        e++;
    bool host_known = false;
    if (e < s->n && url_char((unsigned char)f[e])) {
        if (f[e] == '/' || f[e] == '#') {
            host_known = true;
        } else {
            size_t q = e;
            while (q < s->n && url_char((unsigned char)f[q]) && strchr(".,;:!?)]", f[q]))
                q++;
            host_known = q < s->n && url_char((unsigned char)f[q]);
        }
    }
    const char *reason = "URL";
    tr_ioc_class c = TR_IOCC_INDICATOR;
    if (host_known && url_host(s, hs, e, &c, &reason, err) != 0)
        return 0;
    size_t p = hs;
    /* userinfo@ is allowed; the host ends at ':', '/', '?', '#'. */
    while (p < s->n && url_char((unsigned char)f[p]))
        p++;
    /* Trailing sentence punctuation and an unbalanced closing bracket.
     * Brackets are counted once, then kept up to date while trimming. */
    long paren = 0, square = 0;
    for (size_t k = hs; k < p; k++) {
        paren += (f[k] == ')') - (f[k] == '(');
        square += (f[k] == ']') - (f[k] == '[');
    }
    while (p > hs) {
        char ch = f[p - 1];
        if (ch && strchr(".,;:!?'\"", ch)) {
            p--;
            continue;
        }
        if ((ch == ')' && paren > 0) || (ch == ']' && square > 0)) {
            paren -= ch == ')';
            square -= ch == ']';
            p--;
            continue;
        }
        break;
    }
    size_t he = hs;
    while (he < p && !strchr(":/?#", f[he]))
        he++;
    if (!host_known && url_host(s, hs, he, &c, &reason, err) != 0)
        return 0;
    if (c == TR_IOCC_INDICATOR)
        reason = "URL with a valid host";
    /* Scheme and host lowercased; path kept as written. */
    char *v = dup_range(f + i, p - i, false);
    for (size_t k = 0; k < he - i; k++)
        v[k] = (char)tolower((unsigned char)v[k]);
    emit(s, TR_IOC_URL, c, reason, i, p, v);
    return p - i;
}

/* ---- hashes, ssdeep ---------------------------------------------------------------- */

static size_t try_hash(scan *s, size_t i)
{
    const char *f = s->f;
    if (i > 0 && is_word((unsigned char)f[i - 1]))
        return 0;
    size_t p = i;
    while (p < s->n && is_hex((unsigned char)f[p]))
        p++;
    if (p < s->n && is_word((unsigned char)f[p]))
        return 0;
    size_t n = p - i;
    tr_ioc_kind k;
    switch (n) {
    case 32: k = TR_IOC_MD5; break;
    case 40: k = TR_IOC_SHA1; break;
    case 64: k = TR_IOC_SHA256; break;
    case 128: k = TR_IOC_SHA512; break;
    default: return 0;
    }
    char *v = dup_range(f + i, n, true);
    tr_ioc_class c = TR_IOCC_INDICATOR;
    const char *reason = "hex digest of the right length";
    size_t same = 0, digits = 0;
    for (size_t j = 0; j < n; j++) {
        same += v[j] == v[0];
        digits += isdigit((unsigned char)v[j]) != 0;
    }
    /* Digests of nothing: an empty file is never the sample. */
    static const char *const empty[] = {
        "d41d8cd98f00b204e9800998ecf8427e", "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
        NULL};
    for (size_t e = 0; empty[e]; e++)
        if (strcmp(v, empty[e]) == 0) {
            emit(s, k, TR_IOCC_LOOKALIKE, "digest of empty input", i, p, v);
            return n;
        }
    if (same == n || strstr(v, "0123456789abcdef") || strstr(v, "deadbeef")) {
        c = TR_IOCC_LOOKALIKE;
        reason = "placeholder digest";
    } else if (digits == n || digits == 0) {
        c = TR_IOCC_LOOKALIKE;
        reason = "all digits or all letters: not a digest";
    }
    emit(s, k, c, reason, i, p, v);
    return n;
}

static bool b64c(unsigned char c)
{
    return isalnum(c) || c == '+' || c == '/';
}

static size_t try_ssdeep(scan *s, size_t i)
{
    const char *f = s->f;
    if (i > 0 && is_word((unsigned char)f[i - 1]))
        return 0;
    size_t p = i;
    unsigned long bs = 0;
    while (p < s->n && isdigit((unsigned char)f[p]) && p - i < 11)
        bs = bs * 10 + (unsigned long)(f[p++] - '0');
    if (p == i || p >= s->n || f[p] != ':')
        return 0;
    /* Block sizes are 3 * 2^k. */
    if (bs < 3 || bs % 3 != 0 || ((bs / 3) & (bs / 3 - 1)) != 0)
        return 0;
    size_t a = ++p;
    while (p < s->n && b64c((unsigned char)f[p]) && p - a <= 64)
        p++;
    if (p == a || p - a > 64 || p >= s->n || f[p] != ':')
        return 0;
    size_t b = ++p;
    while (p < s->n && b64c((unsigned char)f[p]) && p - b <= 64)
        p++;
    if (p == b || p - b > 64 || (p < s->n && b64c((unsigned char)f[p])))
        return 0;
    /* Times ("12:30:45") have the shape too, but digests are not all digits. */
    bool letter = false;
    for (size_t k = a; k < p; k++)
        letter |= !isdigit((unsigned char)f[k]) && f[k] != ':';
    if (!letter)
        return 0;
    emit(s, TR_IOC_SSDEEP, TR_IOCC_INDICATOR, "ssdeep with a valid block size", i, p,
         dup_range(f + i, p - i, false));
    return p - i;
}

/* ---- CVE and ATT&CK ids --------------------------------------------------------- */

static size_t try_cve(scan *s, size_t i)
{
    const char *f = s->f;
    if (s->n - i < 13 || strncasecmp(f + i, "cve", 3) != 0 || (f[i + 3] != '-' && f[i + 3] != '_'))
        return 0;
    if (i > 0 && is_word((unsigned char)f[i - 1]))
        return 0;
    size_t p = i + 4;
    unsigned year = 0;
    for (int k = 0; k < 4; k++, p++) {
        if (!isdigit((unsigned char)f[p]))
            return 0;
        year = year * 10 + (unsigned)(f[p] - '0');
    }
    if (year < 1999 || year > 2099 || p >= s->n || (f[p] != '-' && f[p] != '_'))
        return 0;
    size_t d = ++p;
    while (p < s->n && isdigit((unsigned char)f[p]) && p - d < 8)
        p++;
    if (p - d < 4 || (p < s->n && is_word((unsigned char)f[p])))
        return 0;
    char *v = tr_xasprintf("CVE-%u-%.*s", year, (int)(p - d), f + d);
    emit(s, TR_IOC_CVE, TR_IOCC_REFERENCE, "CVE identifier", i, p, v);
    return p - i;
}

static size_t try_attack(scan *s, size_t i)
{
    const char *f = s->f;
    if (f[i] != 'T' || (i > 0 && is_word((unsigned char)f[i - 1])) || s->n - i < 5)
        return 0;
    size_t p = i + 1;
    while (p < s->n && isdigit((unsigned char)f[p]) && p - i <= 5)
        p++;
    if (p - i != 5 || f[i + 1] != '1')
        return 0;
    if (p + 3 < s->n && f[p] == '.' && isdigit((unsigned char)f[p + 1]) &&
        isdigit((unsigned char)f[p + 2]) && isdigit((unsigned char)f[p + 3]))
        p += 4;
    if (p < s->n && is_word((unsigned char)f[p]))
        return 0;
    emit(s, TR_IOC_ATTACK, TR_IOCC_REFERENCE, "ATT&CK technique id", i, p,
         dup_range(f + i, p - i, false));
    return p - i;
}

/* ---- bitcoin --------------------------------------------------------------------- */

static const char b58[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

static bool base58check(const char *p, size_t n)
{
    unsigned char bin[40] = {0};
    for (size_t i = 0; i < n; i++) {
        const char *c = strchr(b58, p[i]);
        if (!c || !*c)
            return false;
        unsigned carry = (unsigned)(c - b58);
        for (int j = 39; j >= 0; j--) {
            carry += 58u * bin[j];
            bin[j] = (unsigned char)carry;
            carry >>= 8;
        }
        if (carry)
            return false;
    }
    /* Version byte + 20-byte hash + 4-byte checksum: the last 25 bytes. */
    size_t lead = 0;
    while (lead < n && p[lead] == '1')
        lead++;
    size_t nz = 0;
    while (nz < 40 && bin[nz] == 0)
        nz++;
    if (40 - nz + lead != 25)
        return false;
    const unsigned char *d = bin + 15;
    unsigned char h1[32], h2[32];
    unsigned hl;
    if (!EVP_Digest(d, 21, h1, &hl, EVP_sha256(), NULL) ||
        !EVP_Digest(h1, 32, h2, &hl, EVP_sha256(), NULL))
        return false;
    return memcmp(h2, d + 21, 4) == 0 && (d[0] == 0x00 || d[0] == 0x05);
}

static uint32_t bech32_polymod(const unsigned char *v, size_t n)
{
    static const uint32_t gen[5] = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3};
    uint32_t chk = 1;
    for (size_t i = 0; i < n; i++) {
        uint32_t top = chk >> 25;
        chk = (chk & 0x1ffffff) << 5 ^ v[i];
        for (int k = 0; k < 5; k++)
            if ((top >> k) & 1)
                chk ^= gen[k];
    }
    return chk;
}

static bool bech32_valid(const char *p, size_t n)
{
    static const char cs[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    if (n < 14 || n > 74)
        return false;
    unsigned char v[96];
    size_t k = 0;
    /* hrp "bc": its high bits, a zero, its low bits, then the data. */
    v[k++] = 'b' >> 5;
    v[k++] = 'c' >> 5;
    v[k++] = 0;
    v[k++] = 'b' & 31;
    v[k++] = 'c' & 31;
    for (size_t i = 3; i < n; i++) {
        const char *c = strchr(cs, tolower((unsigned char)p[i]));
        if (!c || !*c)
            return false;
        v[k++] = (unsigned char)(c - cs);
    }
    uint32_t m = bech32_polymod(v, k);
    return m == 1 || m == 0x2bc830a3;   /* bech32 (v0), bech32m (v1+) */
}

static size_t try_bitcoin(scan *s, size_t i)
{
    const char *f = s->f;
    if (i > 0 && is_word((unsigned char)f[i - 1]))
        return 0;
    size_t p = i;
    while (p < s->n && isalnum((unsigned char)f[p]))
        p++;
    size_t n = p - i;
    if (p < s->n && f[p] == '_')
        return 0;
    bool ok = false;
    if ((f[i] == '1' || f[i] == '3') && n >= 26 && n <= 35)
        ok = base58check(f + i, n);
    else if (n >= 14 && (strncmp(f + i, "bc1", 3) == 0 || strncmp(f + i, "BC1", 3) == 0))
        ok = bech32_valid(f + i, n);
    if (!ok)
        return 0;
    emit(s, TR_IOC_BITCOIN, TR_IOCC_INDICATOR, "bitcoin address with a valid checksum", i, p,
         dup_range(f + i, p - i, f[i] == 'b' || f[i] == 'B'));
    return n;
}

/* ---- registry keys ----------------------------------------------------------------- */

static size_t try_regkey(scan *s, size_t i)
{
    static const char *const hives[] = {
        "HKEY_LOCAL_MACHINE", "HKEY_CURRENT_USER", "HKEY_CLASSES_ROOT", "HKEY_USERS",
        "HKEY_CURRENT_CONFIG", "HKLM", "HKCU", "HKCR", "HKU", "HKCC", NULL};
    const char *f = s->f;
    if (i > 0 && is_word((unsigned char)f[i - 1]))
        return 0;
    size_t hl = 0;
    for (size_t k = 0; hives[k]; k++) {
        size_t l = strlen(hives[k]);
        if (s->n - i > l && strncasecmp(f + i, hives[k], l) == 0 && f[i + l] == '\\') {
            hl = l;
            break;
        }
    }
    if (!hl)
        return 0;
    size_t p = i + hl, last_sep = p;
    while (p < s->n && (unsigned char)f[p] >= 0x20 && (unsigned char)f[p] < 0x7f &&
           !strchr("\"'<>|,;`", f[p])) {
        if (f[p] == '\\')
            last_sep = p;
        p++;
    }
    /* Spaces live inside key names ("Windows NT"), but after the last
     * separator a space starts the sentence again. */
    for (size_t q = last_sep; q < p; q++)
        if (f[q] == ' ') {
            p = q;
            break;
        }
    while (p > i + hl + 1 && strchr(".):\\ ", f[p - 1]))
        p--;
    if (p <= i + hl + 1)
        return 0;
    emit(s, TR_IOC_REGKEY, TR_IOCC_INDICATOR, "Windows registry key", i, p,
         dup_range(f + i, p - i, false));
    return p - i;
}

/* ---- YARA rules ------------------------------------------------------------------- */

/* A rule starts a line with "rule NAME" (maybe after import lines and
 * private/global); it ends at the brace that closes its body. */
static size_t try_yara(scan *s, size_t i)
{
    const char *f = s->f;
    if (i > 0 && f[i - 1] != '\n')
        return 0;
    size_t p = i;
    while (p < s->n && (f[p] == ' ' || f[p] == '\t'))
        p++;
    size_t start = p;
    while (s->n - p > 7 && strncmp(f + p, "import ", 7) == 0) {
        const char *nl = memchr(f + p, '\n', s->n - p);
        if (!nl)
            return 0;
        p = (size_t)(nl - f) + 1;
        while (p < s->n && isspace((unsigned char)f[p]))
            p++;
    }
    for (;;) {
        if (s->n - p > 8 && strncmp(f + p, "private ", 8) == 0)
            p += 8;
        else if (s->n - p > 7 && strncmp(f + p, "global ", 7) == 0)
            p += 7;
        else
            break;
    }
    if (s->n - p < 6 || strncmp(f + p, "rule ", 5) != 0)
        return 0;
    const char *open = memchr(f + p, '{', s->n - p);
    if (!open || open - (f + p) > 300)
        return 0;
    size_t q = (size_t)(open - f);
    int depth = 0;
    for (; q < s->n; q++) {
        char c = f[q];
        if (c == '"') {
            for (q++; q < s->n && f[q] != '"' && f[q] != '\n'; q++)
                if (f[q] == '\\')
                    q++;
        } else if (c == '/' && q + 1 < s->n && f[q + 1] == '/') {
            while (q < s->n && f[q] != '\n')
                q++;
        } else if (c == '{') {
            depth++;
        } else if (c == '}' && --depth == 0) {
            break;
        }
        if (q - start > 32768)
            return 0;
    }
    if (q >= s->n)
        return 0;
    size_t end = q + 1;
    tr_ruleset *rs = NULL;
    tr_error perr;
    char *text = dup_range(f + start, end - start, false);
    if (memchr(f + start, 0, end - start) ||
        tr_rules_parse_buffer("report", text, end - start, &rs, &perr) != 0) {
        free(text);
        return 0;
    }
    tr_ruleset_free(rs);
    /* The knowledge base refuses YARA text with the word include anywhere
     * (it would read the server's files); show such a rule, do not offer it. */
    bool include = false;
    for (const char *w = strstr(text, "include"); w && !include; w = strstr(w + 7, "include"))
        include = (w == text || !is_word((unsigned char)w[-1])) && !is_word((unsigned char)w[7]);
    emit(s, TR_IOC_YARA, include ? TR_IOCC_LOOKALIKE : TR_IOCC_INDICATOR,
         include ? "YARA rule naming include, which the knowledge base refuses"
                 : "YARA rule accepted by trawl's parser",
         start, end, text);
    return end - i;
}

/* ---- the pass ------------------------------------------------------------------------ */

/* The scan from position from while the position is below to (a match
 * may run past to, as the whole text's scan would); returns where it
 * stopped. The scan holds no state but its position, so scanning from any
 * position the whole text's scan passes through gives the same matches
 * from there on. visited, when set, marks the positions visited in
 * [from, from + nvisited). */
static size_t scan_range(scan *s, size_t from, size_t to, int *perr, unsigned char *visited,
                         size_t nvisited)
{
    size_t i = from;
    while (i < to) {
        if (visited && i - from < nvisited)
            visited[(i - from) >> 3] |= (unsigned char)(1u << ((i - from) & 7));
        unsigned char c = (unsigned char)s->f[i];
        size_t used = 0;
        if (c == 'r' || c == 'i' || c == 'p' || c == 'g' || c == ' ' || c == '\t')
            used = try_yara(s, i);
        if (!used && isalnum(c)) {
            if (!used && (c == 'h' || c == 'H' || c == 'f' || c == 'F' || c == 's' || c == 'S'))
                used = try_url(s, i, perr);
            if (!used && (c == 'H' || c == 'h'))
                used = try_regkey(s, i);
            if (!used && (c == 'C' || c == 'c'))
                used = try_cve(s, i);
            if (!used && c == 'T')
                used = try_attack(s, i);
            if (!used && isdigit(c))
                used = try_ssdeep(s, i);
            if (!used && is_hex(c))
                used = try_ipv6(s, i);
            if (!used && isdigit(c))
                used = try_ipv4(s, i);
            if (!used && is_hex(c))
                used = try_hash(s, i);
            if (!used && (c == '1' || c == '3' || c == 'b' || c == 'B'))
                used = try_bitcoin(s, i);
            if (!used && (c == 'v' || c == 'V') && i + 1 < s->n && isdigit((unsigned char)s->f[i + 1])) {
                size_t u = try_ipv4(s, i + 1);
                used = u ? u + 1 : 0;
            }
            if (!used)
                used = try_dotted(s, i, perr);
            if (!used) {
                /* Skip the rest of this word: nothing starts inside one. */
                used = 1;
                while (i + used < s->n && is_word((unsigned char)s->f[i + used]))
                    used++;
            }
        } else if (!used && c == '_' && (i == 0 || !is_word((unsigned char)s->f[i - 1]))) {
            used = try_dotted(s, i, perr);
        } else if (!used && c == ':' && i + 1 < s->n && s->f[i + 1] == ':') {
            used = try_ipv6(s, i);
        }
        i += used ? used : 1;
    }
    return i;
}

typedef struct half {
    scan s;
    tr_ioc_list out;
    size_t from;
    int perr;
    unsigned char *visited;
    size_t nvisited;
} half;

static void *scan_half(void *arg)
{
    half *h = arg;
    h->s.out = &h->out;
    scan_range(&h->s, h->from, h->s.n, &h->perr, h->visited, h->nvisited);
    return NULL;
}

/* Texts from this size are scanned on two threads. */
#define SPLIT_MIN (1u << 20)
/* How far past the split a match of the first half may run and the second
 * half's scan still be checked against it. */
#define SPLIT_WINDOW (1u << 20)

int tr_ioc_extract(const char *text, size_t len, tr_ioc_list *out, tr_error *err)
{
    memset(out, 0, sizeof *out);
    pthread_once(&psl_once, psl_load);
    if (!psl_ctx)
        return tr_fail(err, "cannot load the Public Suffix List (install publicsuffix)");
    scan s = {.orig = text, .orig_len = len, .out = out};
    size_t *map;
    char *f = tr_ioc_fold(text, len, &s.n, &map);
    s.f = f;
    s.map = map;
    int perr = 0;
    /* A long text is scanned in two halves at once, split after a line
     * break. The first half's scan goes on until it reaches the split;
     * if the second half's scan passed through the position where the
     * first stopped, its matches from there on are the whole scan's,
     * else the rest is scanned again: the result is the one-thread scan's
     * either way. */
    size_t split = 0;
    if (s.n >= SPLIT_MIN)
        for (size_t p = s.n / 2; p + 1 < s.n && !split; p++)
            if (f[p] == '\n')
                split = p + 1;
    half h = {.s = s, .from = split};
    pthread_t t;
    bool threaded = false;
    if (split) {
        h.nvisited = split + SPLIT_WINDOW < s.n ? SPLIT_WINDOW : s.n - split;
        h.visited = tr_xcalloc(h.nvisited / 8 + 1, 1);
        threaded = pthread_create(&t, NULL, scan_half, &h) == 0;
    }
    size_t stop = scan_range(&s, 0, threaded ? split : s.n, &perr, NULL, 0);
    if (threaded) {
        pthread_join(t, NULL);
        perr |= h.perr;
        size_t d = stop - split;
        bool joined = stop >= s.n ||
                      (d < h.nvisited && (h.visited[d >> 3] & (1u << (d & 7))));
        if (joined) {
            size_t cut = stop < s.n ? map[stop] : len + 1;
            for (size_t k = 0; k < h.out.n; k++) {
                if (h.out.v[k].offset < cut) {
                    free(h.out.v[k].value);
                    continue;
                }
                if (out->n == out->cap) {
                    out->cap = out->cap ? out->cap * 2 : 32;
                    out->v = tr_xrealloc(out->v, out->cap * sizeof *out->v);
                }
                out->v[out->n++] = h.out.v[k];
            }
            free(h.out.v);
        } else {
            tr_ioc_list_free(&h.out);
            scan_range(&s, stop, s.n, &perr, NULL, 0);
        }
    }
    free(h.visited);
    free(f);
    free(map);
    if (perr) {
        tr_ioc_list_free(out);
        return tr_fail(err, "cannot load the Public Suffix List (install publicsuffix)");
    }
    return 0;
}
