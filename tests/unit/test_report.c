/* report: the IOC extractor (defanging, validation, classification,
 * offsets), document text (charsets, HTML, mail, PDF errors), the
 * gazetteer on text without spaces, candidates, proposals and the draft
 * bundle the stix store accepts; the seed digest against ATT&CK. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/core.h"
#include "report/report.h"
#include "stix/stix.h"

/* The extraction of kind with this value, or NULL. */
static const tr_ioc *find(const tr_ioc_list *l, tr_ioc_kind k, const char *value)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].kind == k && strcmp(l->v[i].value, value) == 0)
            return &l->v[i];
    return NULL;
}

static void extract(const char *text, tr_ioc_list *l)
{
    tr_error err;
    assert_int_equal(tr_ioc_extract(text, strlen(text), l, &err), 0);
}

static void extract_n(const char *text, size_t len, tr_ioc_list *l)
{
    tr_error err;
    assert_int_equal(tr_ioc_extract(text, len, l, &err), 0);
}

static void test_fold_maps_offsets(void **state)
{
    (void)state;
    const char *t = "a[.]b hxxp \xef\xbc\x91x";   /* full-width 1 */
    size_t n, *map;
    char *f = tr_ioc_fold(t, strlen(t), &n, &map);
    assert_string_equal(f, "a.b hxxp 1x");   /* hxxp without :// stays prose */
    assert_int_equal(map[1], 1);             /* "." came from "[.]" at 1 */
    assert_int_equal(map[2], 4);
    assert_int_equal(map[9], 11);            /* "1" from 3 bytes at 11 */
    assert_int_equal(map[10], 14);
    assert_int_equal(map[n], strlen(t));
    free(f);
    free(map);
}

static void test_defanged_forms(void **state)
{
    (void)state;
    const char *t = "c2 45.77.12[.]201, hxxps[:]//evil-cdn[.]top/gate.php?id=7). "
                    "mail attacker[@]phish-mail[.]ru or bob[at]evil[.]su, domain update-check[dot]xyz "
                    "and bad(.)host(.)ru; \xef\xbc\x94\xef\xbc\x95\xef\xbc\x8e\xef\xbc\x96\xef\xbc\x91"
                    "\xef\xbc\x8e\xef\xbc\x91\xef\xbc\x93\xef\xbc\x96\xef\xbc\x8e\xef\xbc\x92\xef\xbc\x92"
                    "\xe3\x81\xab\xe6\x8e\xa5\xe7\xb6\x9a. hXXp://1.2.3[.]4:8080/a";
    tr_ioc_list l;
    extract(t, &l);
    const tr_ioc *x = find(&l, TR_IOC_IPV4, "45.77.12.201");
    assert_non_null(x);
    assert_true(x->defanged);
    assert_int_equal(x->offset, 3);
    assert_int_equal(x->length, strlen("45.77.12[.]201"));
    assert_int_equal(x->cls, TR_IOCC_INDICATOR);
    x = find(&l, TR_IOC_URL, "https://evil-cdn.top/gate.php?id=7");
    assert_non_null(x);   /* the closing ")" is not part of the URL */
    assert_memory_equal(t + x->offset, "hxxps[:]//evil-cdn[.]top/gate.php?id=7", x->length);
    assert_non_null(find(&l, TR_IOC_EMAIL, "attacker@phish-mail.ru"));
    assert_non_null(find(&l, TR_IOC_EMAIL, "bob@evil.su"));
    assert_non_null(find(&l, TR_IOC_DOMAIN, "update-check.xyz"));
    assert_non_null(find(&l, TR_IOC_DOMAIN, "bad.host.ru"));
    x = find(&l, TR_IOC_IPV4, "45.61.136.22");   /* full-width, then Japanese */
    assert_non_null(x);
    assert_int_equal(x->length, 12 * 3);
    assert_non_null(find(&l, TR_IOC_URL, "http://1.2.3.4:8080/a"));
    /* The domain inside a URL or an address is not reported again. */
    assert_null(find(&l, TR_IOC_DOMAIN, "evil-cdn.top"));
    assert_null(find(&l, TR_IOC_DOMAIN, "phish-mail.ru"));
    tr_ioc_list_free(&l);
}

/* The host is checked before the rest of a URL is read, where it is sure
 * to end there; where it is not (a trailing ':' or '?'), the whole URL is
 * read and trimmed first. Both give what reading everything first gave. */
static void test_url_host_first(void **state)
{
    (void)state;
    const char *t = "a http://gate.kite-cdn.com:8443/x.php?a=1. b (http://evil.top/a) "
                    "c http://user@evil-mail.top/inbox d http://http://nested.top/p "
                    "e http://end-colon.top: f http://end-query.top?, g ftp://a.b:c "
                    "h http://trailing.top";
    tr_ioc_list l;
    extract(t, &l);
    assert_non_null(find(&l, TR_IOC_URL, "http://gate.kite-cdn.com:8443/x.php?a=1"));
    assert_non_null(find(&l, TR_IOC_URL, "http://evil.top/a"));
    assert_non_null(find(&l, TR_IOC_URL, "http://user@evil-mail.top/inbox"));
    assert_non_null(find(&l, TR_IOC_URL, "http://nested.top/p"));
    assert_non_null(find(&l, TR_IOC_URL, "http://end-colon.top"));
    assert_non_null(find(&l, TR_IOC_URL, "http://end-query.top"));
    assert_non_null(find(&l, TR_IOC_URL, "http://trailing.top"));
    for (size_t i = 0; i < l.n; i++)
        if (l.v[i].kind == TR_IOC_URL)
            assert_null(strstr(l.v[i].value, "http://http"));
    tr_ioc_list_free(&l);
}

static void test_addresses_classified(void **state)
{
    (void)state;
    tr_ioc_list l;
    extract("lab 192.168.1.10 10.0.0.1 172.16.5.4 127.0.0.1; docs 192.0.2.1 198.51.100.7 "
            "203.0.113.9; 100.64.1.1 224.0.0.5 0.1.2.3; version 10.2.3.4 v1.2.3.4; "
            "net 45.12.0.0/16 and 2001:db8::1, fe80::1/64, fd00::5, 2a03:2880:f12f:83:face:b00c::25de; "
            "not 1.2.3.4.5 nor 256.1.1.1 nor 01.2.3.4 nor 12:30:45; net 45.13.7.0; "
            "versions such as 2.1.0.4",
            &l);
    struct {
        tr_ioc_kind k;
        const char *v;
        tr_ioc_class c;
    } want[] = {
        {TR_IOC_IPV4, "192.168.1.10", TR_IOCC_PRIVATE},   {TR_IOC_IPV4, "10.0.0.1", TR_IOCC_PRIVATE},
        {TR_IOC_IPV4, "172.16.5.4", TR_IOCC_PRIVATE},     {TR_IOC_IPV4, "127.0.0.1", TR_IOCC_PRIVATE},
        {TR_IOC_IPV4, "192.0.2.1", TR_IOCC_DOCUMENTATION},
        {TR_IOC_IPV4, "198.51.100.7", TR_IOCC_DOCUMENTATION},
        {TR_IOC_IPV4, "203.0.113.9", TR_IOCC_DOCUMENTATION},
        {TR_IOC_IPV4, "100.64.1.1", TR_IOCC_RESERVED},    {TR_IOC_IPV4, "224.0.0.5", TR_IOCC_RESERVED},
        {TR_IOC_IPV4, "0.1.2.3", TR_IOCC_RESERVED},       {TR_IOC_IPV4, "10.2.3.4", TR_IOCC_VERSION},
        {TR_IOC_IPV4, "1.2.3.4", TR_IOCC_VERSION},        {TR_IOC_IPV4, "45.12.0.0/16", TR_IOCC_INDICATOR},
        {TR_IOC_IPV6, "2001:db8::1", TR_IOCC_DOCUMENTATION},
        {TR_IOC_IPV6, "fe80::1/64", TR_IOCC_PRIVATE},     {TR_IOC_IPV6, "fd00::5", TR_IOCC_PRIVATE},
        {TR_IOC_IPV6, "2a03:2880:f12f:83:face:b00c:0:25de", TR_IOCC_INDICATOR},
        {TR_IOC_IPV4, "45.13.7.0", TR_IOCC_LOOKALIKE},    {TR_IOC_IPV4, "2.1.0.4", TR_IOCC_VERSION},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const tr_ioc *x = find(&l, want[i].k, want[i].v);
        if (!x)
            fail_msg("missing %s", want[i].v);
        if (x->cls != want[i].c)
            fail_msg("%s is %s", want[i].v, tr_ioc_class_name(x->cls));
    }
    assert_int_equal(l.n, sizeof want / sizeof want[0]);   /* nothing else */
    tr_ioc_list_free(&l);
}

static void test_hashes_and_ids(void **state)
{
    (void)state;
    tr_ioc_list l;
    extract("MD5 44D88612FEA8A8F36DE82E1278ABB02F sha1 3395856ce81f2b7382dee72602f798b642f14140\n"
            "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f\n"
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e\n"
            "ssdeep 3072:C3gnOTDqBSk2uMvbvKjKtuVUDnQfR6GsahvP:C3gOT+BSk2uMvbvKjKtuVQY6Gsahv "
            "bad 3071:abc:def; CVE-2021-44228, cve-2017-0144, T1059.001 T1486 (T12345 no) "
            "placeholder 00000000000000000000000000000000 and a 33-hex 44d88612fea8a8f36de82e1278abb02f0",
            &l);
    const tr_ioc *x = find(&l, TR_IOC_MD5, "44d88612fea8a8f36de82e1278abb02f");
    assert_non_null(x);
    assert_false(x->defanged);   /* only the case changed */
    assert_non_null(find(&l, TR_IOC_SHA1, "3395856ce81f2b7382dee72602f798b642f14140"));
    assert_non_null(find(&l, TR_IOC_SHA256,
                         "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"));
    assert_non_null(find(&l, TR_IOC_SHA512, "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"));
    assert_non_null(find(&l, TR_IOC_SSDEEP, "3072:C3gnOTDqBSk2uMvbvKjKtuVUDnQfR6GsahvP:C3gOT+BSk2uMvbvKjKtuVQY6Gsahv"));
    assert_null(find(&l, TR_IOC_SSDEEP, "3071:abc:def"));   /* not 3*2^k */
    x = find(&l, TR_IOC_CVE, "CVE-2017-0144");
    assert_non_null(x);
    assert_int_equal(x->cls, TR_IOCC_REFERENCE);
    assert_non_null(find(&l, TR_IOC_CVE, "CVE-2021-44228"));
    assert_non_null(find(&l, TR_IOC_ATTACK, "T1059.001"));
    assert_non_null(find(&l, TR_IOC_ATTACK, "T1486"));
    assert_null(find(&l, TR_IOC_ATTACK, "T12345"));
    x = find(&l, TR_IOC_MD5, "00000000000000000000000000000000");
    assert_non_null(x);
    assert_int_equal(x->cls, TR_IOCC_LOOKALIKE);
    assert_null(find(&l, TR_IOC_MD5, "44d88612fea8a8f36de82e1278abb02f0"));
    tr_ioc_list_free(&l);
}

static void test_bitcoin_checksums(void **state)
{
    (void)state;
    tr_ioc_list l;
    /* Valid P2PKH, P2SH, bech32 v0 and bech32m v1; then each with one
     * character changed, which the checksums must catch. */
    extract("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa 3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy "
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq "
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0 "
            "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb 3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLz "
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdr",
            &l);
    assert_int_equal(l.n, 4);
    assert_non_null(find(&l, TR_IOC_BITCOIN, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"));
    assert_non_null(find(&l, TR_IOC_BITCOIN, "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"));
    assert_non_null(find(&l, TR_IOC_BITCOIN, "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"));
    assert_non_null(find(&l, TR_IOC_BITCOIN,
                         "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"));
    tr_ioc_list_free(&l);
}

static void test_files_keys_domains(void **state)
{
    (void)state;
    tr_ioc_list l;
    extract("It drops payload_x64.dll and runs setup.exe via svchost.exe; see README.md and "
            "e.g. Node.js. Keys: HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\upd is set, "
            "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Winlogon. Hosts: example.com, "
            "evil.co.uk, foo.notatld, co.uk, malicious-site.top. "
            "\xe6\xb7\xbb\xe4\xbb\x98\xe3\x80\x8c\xe8\xab\x8b\xe6\xb1\x82\xe6\x9b\xb8_0603.zip\xe3\x80\x8d",
            &l);
    const tr_ioc *x = find(&l, TR_IOC_FILENAME, "payload_x64.dll");
    assert_non_null(x);
    assert_int_equal(x->cls, TR_IOCC_INDICATOR);
    assert_int_equal(find(&l, TR_IOC_FILENAME, "setup.exe")->cls, TR_IOCC_LOOKALIKE);
    assert_int_equal(find(&l, TR_IOC_FILENAME, "svchost.exe")->cls, TR_IOCC_BENIGN);
    assert_int_equal(find(&l, TR_IOC_DOMAIN, "readme.md")->cls, TR_IOCC_LOOKALIKE);
    assert_null(find(&l, TR_IOC_DOMAIN, "node.js"));
    assert_non_null(find(&l, TR_IOC_REGKEY,
                         "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\upd"));
    assert_non_null(find(&l, TR_IOC_REGKEY,
                         "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Winlogon"));
    assert_int_equal(find(&l, TR_IOC_DOMAIN, "example.com")->cls, TR_IOCC_DOCUMENTATION);
    assert_int_equal(find(&l, TR_IOC_DOMAIN, "evil.co.uk")->cls, TR_IOCC_INDICATOR);
    assert_int_equal(find(&l, TR_IOC_DOMAIN, "malicious-site.top")->cls, TR_IOCC_INDICATOR);
    assert_null(find(&l, TR_IOC_DOMAIN, "foo.notatld"));   /* not a public suffix */
    assert_null(find(&l, TR_IOC_DOMAIN, "co.uk"));         /* a suffix alone */
    assert_non_null(find(&l, TR_IOC_FILENAME,
                         "\xe8\xab\x8b\xe6\xb1\x82\xe6\x9b\xb8_0603.zip"));
    tr_ioc_list_free(&l);
}

static void test_yara_rule_in_text(void **state)
{
    (void)state;
    tr_ioc_list l;
    const char *t = "Our rule:\n\nimport \"pe\"\nrule Drift_Loader : loader {\n  strings:\n"
                    "    $a = \"gate.php\" ascii\n    $b = { 4D 5A 90 }\n  condition:\n"
                    "    pe.is_pe and $a and $b\n}\nThat is all.\n"
                    "rule broken {\n  condition:\n    $nothing\n}\n";
    extract(t, &l);
    size_t rules = 0;
    for (size_t i = 0; i < l.n; i++)
        if (l.v[i].kind == TR_IOC_YARA) {
            rules++;
            assert_non_null(strstr(l.v[i].value, "rule Drift_Loader"));
            assert_int_equal(l.v[i].offset, strstr(t, "import") - t);
        }
    assert_int_equal(rules, 1);   /* the broken rule is refused by the parser */
    /* Strings inside the rule are part of it, not separate indicators. */
    assert_null(find(&l, TR_IOC_DOMAIN, "gate.php"));
    tr_ioc_list_free(&l);
}

/* A long text is scanned on two threads: the result must be the one-thread
 * scan's, also when the split falls inside a YARA rule (a match of the
 * first half running past the split). The text repeats a block whose own
 * scan is known; the block count is odd so the middle falls in the middle
 * block, inside its rule. */
static void test_split_scan_is_the_serial_scan(void **state)
{
    (void)state;
    tr_buf u = {0};
    for (int i = 0; i < 40; i++) {
        char line[160];
        snprintf(line, sizeof line, "Beacon %d went to 45.77.%d.201 and http://gate-%d.kite-cdn.com/p "
                 "(version 1.2.3.%d)\n", i, i, i, i);
        tr_buf_append(&u, line, strlen(line));
    }
    const char *rule = "rule Split_Here {\n  strings:\n    $a = \"middle-gate.net\" ascii\n"
                       "    $b = \"45.77.99.1\"\n  condition:\n    any of them\n}\n";
    tr_buf_append(&u, rule, strlen(rule));
    size_t head = u.len;
    char *lines = tr_xasprintf("%.*s", (int)(head - strlen(rule)), u.data);
    tr_buf_append(&u, lines, strlen(lines));   /* the same lines after the rule */
    free(lines);
    tr_ioc_list one;
    extract_n(u.data, u.len, &one);
    size_t blocks = (1u << 20) / u.len + 1;
    blocks |= 1;
    tr_buf t = {0};
    for (size_t b = 0; b < blocks; b++)
        tr_buf_append(&t, u.data, u.len);
    /* The split (after the first line break past the middle of the folded
     * text, which is this text: nothing is defanged) is in the rule. */
    size_t mid = t.len / 2, rule_at = (blocks / 2) * u.len + head - strlen(rule);
    assert_true(mid > rule_at && mid < rule_at + strlen(rule) - 8);
    tr_ioc_list all;
    extract_n(t.data, t.len, &all);
    assert_int_equal(all.n, one.n * blocks);
    for (size_t b = 0; b < blocks; b++)
        for (size_t i = 0; i < one.n; i++) {
            const tr_ioc *x = &all.v[b * one.n + i], *y = &one.v[i];
            assert_int_equal(x->kind, y->kind);
            assert_int_equal(x->cls, y->cls);
            assert_string_equal(x->value, y->value);
            assert_int_equal(x->offset, y->offset + b * u.len);
            assert_int_equal(x->length, y->length);
        }
    size_t rules = 0;
    for (size_t i = 0; i < one.n; i++)
        rules += one.v[i].kind == TR_IOC_YARA;
    assert_int_equal(rules, 1);   /* the rule is one match, its strings inside it */
    assert_null(find(&one, TR_IOC_DOMAIN, "middle-gate.net"));
    tr_ioc_list_free(&one);
    tr_ioc_list_free(&all);
    tr_buf_free(&u);
    tr_buf_free(&t);
}

/* ---- document text ------------------------------------------------------- */

static void assert_same_doc(const tr_doc *a, const tr_doc *b)
{
    assert_int_equal(a->format, b->format);
    assert_string_equal(a->charset, b->charset);
    assert_int_equal(a->len, b->len);
    assert_memory_equal(a->text, b->text, a->len);
    assert_int_equal(b->text[b->len], 0);
    assert_true((a->title == NULL) == (b->title == NULL));
    if (a->title)
        assert_string_equal(a->title, b->title);
    assert_true((a->published == NULL) == (b->published == NULL));
    if (a->published)
        assert_string_equal(a->published, b->published);
    assert_int_equal(a->nlinks, b->nlinks);
    for (size_t i = 0; i < a->nlinks; i++)
        assert_string_equal(a->links[i], b->links[i]);
}

/* Every document is extracted twice: here, and in the helper process
 * (this test binary exec'd, see main) that the server and CLI use. */
static void doc_ok(const char *bytes, size_t len, const char *name, tr_doc *d)
{
    tr_error err;
    if (tr_doc_extract((const unsigned char *)bytes, len, name, d, &err) != 0)
        fail_msg("%s: %s", name, err.msg);
    tr_doc iso;
    if (tr_doc_extract_isolated((const unsigned char *)bytes, len, name, &iso, &err) != 0)
        fail_msg("%s, isolated: %s", name, err.msg);
    assert_same_doc(d, &iso);
    tr_doc_free(&iso);
}

/* The same refusal here and in the helper. */
static void doc_refused(const char *bytes, size_t len, const char *name, const char *why)
{
    tr_doc d;
    tr_error err;
    assert_int_equal(tr_doc_extract((const unsigned char *)bytes, len, name, &d, &err), -1);
    assert_non_null(strstr(err.msg, why));
    char here[sizeof err.msg];
    memcpy(here, err.msg, sizeof here);
    assert_int_equal(tr_doc_extract_isolated((const unsigned char *)bytes, len, name, &d, &err), -1);
    assert_string_equal(err.msg, here);
}

static void test_charsets(void **state)
{
    (void)state;
    tr_doc d;
    /* "テスト 1.2.3.4" in Shift_JIS, EUC-JP and UTF-16LE with its BOM. */
    const char sjis[] = "\x83\x65\x83\x58\x83\x67 45.1.2.3";
    const char euc[] = "\xa5\xc6\xa5\xb9\xa5\xc8 45.1.2.3";
    const char u16[] = "\xff\xfe\xc6\x30\xb9\x30\xc8\x30 \x00" "4\x00" "5\x00";
    const char *want = "\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88 45.1.2.3";
    doc_ok(sjis, sizeof sjis - 1, "a.txt", &d);
    assert_string_equal(d.text, want);
    assert_string_equal(d.charset, "SHIFT_JIS");
    tr_doc_free(&d);
    doc_ok(euc, sizeof euc - 1, "a.txt", &d);
    assert_string_equal(d.text, want);
    assert_string_equal(d.charset, "EUC-JP");
    tr_doc_free(&d);
    doc_ok(u16, sizeof u16 - 1, "a.txt", &d);
    assert_string_equal(d.text, "\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88 45");
    assert_string_equal(d.charset, "UTF-16LE");
    tr_doc_free(&d);
}

static void test_date_near_top(void **state)
{
    (void)state;
    tr_doc d;
    const char *a = "Title\nPublished 2024-05-14 by us\nC2 2023-01-01\n";
    doc_ok(a, strlen(a), "a.txt", &d);
    assert_string_equal(d.published, "2024-05-14T00:00:00.000Z");
    tr_doc_free(&d);
    const char *b = "\xe6\x94\xbb\xe6\x92\x83\xef\xbc\x88" "2024\xe5\xb9\xb4" "6\xe6\x9c\x88" "3\xe6\x97\xa5\xef\xbc\x89\n";
    doc_ok(b, strlen(b), "b.txt", &d);
    assert_string_equal(d.published, "2024-06-03T00:00:00.000Z");
    tr_doc_free(&d);
    const char *c = "No date here but 2024-13-45 and 12024-01-01\n";
    doc_ok(c, strlen(c), "c.txt", &d);
    assert_null(d.published);
    tr_doc_free(&d);
}

static void test_html_visible_text(void **state)
{
    (void)state;
    const char *h = "<!DOCTYPE html><html><head><title>Kit &amp; C2</title>"
                    "<script>var x='http://hidden-script.top/';</script>"
                    "<style>p{}</style></head><body><p>C2 &lt;b&gt; at 91.219.236[.]18</p>"
                    "<a href=\"https://login-micros0ft.top/auth\">here</a><noscript>ns.top</noscript>"
                    "</body></html>";
    tr_doc d;
    doc_ok(h, strlen(h), "x.bin", &d);
    assert_int_equal(d.format, TR_DOC_HTML);
    assert_string_equal(d.title, "Kit & C2");
    assert_non_null(strstr(d.text, "C2 <b> at 91.219.236[.]18"));
    assert_null(strstr(d.text, "hidden-script"));
    assert_null(strstr(d.text, "p{}"));
    assert_null(strstr(d.text, "ns.top"));
    assert_int_equal(d.nlinks, 1);
    assert_string_equal(d.links[0], "https://login-micros0ft.top/auth");
    tr_doc_free(&d);
}

static void test_eml_bodies(void **state)
{
    (void)state;
    const char *m =
        "From: Desk <desk@cert-mail.de>\r\nTo: soc@corp.example\r\n"
        "Subject: =?UTF-8?B?44Ki44Op44O844OI?=\r\nDate: Tue, 5 Mar 2024 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
        "--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9 5.188.86[.]17 and=\r\n more\r\n"
        "--b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        "PHA+PGEgaHJlZj0iaHR0cDovL3BheS1pbnZvaWNlLmljdS94Ij5wYXk8L2E+PC9wPg==\r\n"
        "--b\r\nContent-Type: application/octet-stream\r\n"
        "Content-Disposition: attachment; filename=\"inv.js\"\r\n\r\nAAAA\r\n--b--\r\n";
    tr_doc d;
    doc_ok(m, strlen(m), "mail", &d);
    assert_int_equal(d.format, TR_DOC_EML);
    assert_string_equal(d.title, "\xe3\x82\xa2\xe3\x83\xa9\xe3\x83\xbc\xe3\x83\x88");
    assert_string_equal(d.published, "2024-03-05T10:00:00.000Z");
    assert_non_null(strstr(d.text, "caf\xc3\xa9 5.188.86[.]17 and more"));   /* QP, Latin-1 */
    assert_non_null(strstr(d.text, "pay"));                                  /* base64 HTML */
    assert_non_null(strstr(d.text, "Attachment: inv.js"));
    assert_non_null(strstr(d.text, "desk@cert-mail.de"));
    assert_int_equal(d.nlinks, 1);
    tr_doc_free(&d);
}

static void test_refusals(void **state)
{
    (void)state;
    doc_refused("", 0, "a.txt", "empty");
    doc_refused(" \n\t\n", 4, "a.txt", "no text");
    doc_refused("%PDF-1.4 junk", 13, "a.pdf", "corrupt");
    doc_refused("a\0b", 3, "a.txt", "binary");
    size_t big = TR_REPORT_MAX_INPUT + 1;
    char *b = tr_xcalloc(1, big);
    doc_refused(b, big, "a.txt", "too large");
    free(b);
}

/* ---- the helper's answer ------------------------------------------------- */

static void test_doc_frames_round_trip(void **state)
{
    (void)state;
    tr_doc d = {.format = TR_DOC_HTML, .charset = "HTML"};
    d.text = tr_xstrdup("Conti used 198.51.100.7\n");
    d.len = strlen(d.text);
    d.title = tr_xstrdup("A title");
    for (int i = 0; i < 70; i++) {
        char url[64];
        snprintf(url, sizeof url, "http://203.0.113.%d/x", i);
        d.links = tr_xrealloc(d.links, (d.nlinks + 1) * sizeof *d.links);
        d.links[d.nlinks++] = tr_xstrdup(url);
    }
    tr_buf b = {0};
    tr_doc_encode(&d, NULL, &b);
    tr_doc back;
    tr_error err;
    assert_int_equal(tr_doc_decode((const unsigned char *)b.data, b.len, &back, &err), 0);
    assert_same_doc(&d, &back);
    assert_null(back.published);
    tr_doc_free(&back);
    /* Every cut is refused, and leaves nothing behind. */
    for (size_t cut = 0; cut < b.len; cut++)
        assert_int_equal(tr_doc_decode((const unsigned char *)b.data, cut, &back, &err), -1);
    /* So is trailing data, a NUL in a string, an unknown frame. */
    tr_buf t = {0};
    tr_buf_append(&t, b.data, b.len);
    tr_buf_append(&t, "x", 1);
    assert_int_equal(tr_doc_decode((const unsigned char *)t.data, t.len, &back, &err), -1);
    char *title = NULL;
    for (size_t i = 0; !title && i + 7 <= b.len; i++)
        if (memcmp(b.data + i, "A title", 7) == 0)
            title = b.data + i;
    assert_non_null(title);
    title[1] = 0;
    assert_int_equal(tr_doc_decode((const unsigned char *)b.data, b.len, &back, &err), -1);
    assert_non_null(strstr(err.msg, "malformed"));
    title[1] = ' ';
    title[-5] = 'Q';
    assert_int_equal(tr_doc_decode((const unsigned char *)b.data, b.len, &back, &err), -1);
    assert_non_null(strstr(err.msg, "'Q'"));
    tr_buf_free(&t);
    tr_buf_free(&b);
    /* An extraction error travels as such. */
    tr_doc_encode(NULL, "the PDF is encrypted", &b);
    assert_int_equal(tr_doc_decode((const unsigned char *)b.data, b.len, &back, &err), -1);
    assert_string_equal(err.msg, "the PDF is encrypted");
    tr_buf_free(&b);
    tr_doc_free(&d);
}

/* A helper that dies is this document's error, not the caller's end. */
static void test_helper_crash_is_an_error(void **state)
{
    (void)state;
    setenv("TRAWL_TEST_HELPER", "abort", 1);
    tr_doc d;
    tr_error err;
    int rc = tr_doc_extract_isolated((const unsigned char *)"some text", 9, "a.txt", &d, &err);
    setenv("TRAWL_TEST_HELPER", "garbage", 1);
    tr_error err2;
    int rc2 = tr_doc_extract_isolated((const unsigned char *)"some text", 9, "a.txt", &d, &err2);
    unsetenv("TRAWL_TEST_HELPER");
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err.msg, "crashed the text extractor (signal 6)"));
    assert_int_equal(rc2, -1);
    assert_non_null(strstr(err2.msg, "something else than a document"));
    doc_ok("some text", 9, "a.txt", &d);
    assert_string_equal(d.text, "some text");
    tr_doc_free(&d);
}

/* ---- entities, candidates, proposals, the draft ---------------------------- */

static tr_gazetteer *small_gazetteer(void)
{
    tr_gazetteer *g = tr_gazetteer_new();
    tr_gazetteer_add(g, "Conti", "malware--4dea7d8e-af94-4bfb-afe4-7ff54f59308b", "malware",
                     "Conti");
    tr_gazetteer_add(g, "REvil", "malware--ac61f1f9-7bb1-465e-9b8a-c2ce8e88baf5", "malware",
                     "REvil");
    tr_gazetteer_add(g, "Sodinokibi", "malware--ac61f1f9-7bb1-465e-9b8a-c2ce8e88baf5", "malware",
                     "REvil");
    tr_gazetteer_add(g, "Evil Corp", "intrusion-set--01e28736-2ffc-455b-9880-ed4d1407ae07",
                     "intrusion-set", "Indrik Spider");
    tr_gazetteer_add(g, "Wizard Spider", "intrusion-set--dd2d9ca6-505b-4860-a604-233685b802c7",
                     "intrusion-set", "Wizard Spider");
    tr_gazetteer_add(g, "FIN12", "intrusion-set--dd2d9ca6-505b-4860-a604-233685b802c7",
                     "intrusion-set", "Wizard Spider");
    tr_gazetteer_add(g, "Page", "malware--00000000-0000-4000-8000-000000000001", "malware",
                     "Page");
    tr_gazetteer_add(g, "at", "tool--00000000-0000-4000-8000-000000000002", "tool", "at");
    return g;
}

/* The gazetteer against the plain algorithm it replaced: at each word
 * start, every name longest first (the first added among equals), exact
 * case for single words, a word boundary after a name ending in a letter
 * or digit. Names and texts come from a small alphabet so that prefixes,
 * case variants and equal names abound; a UTF-8 byte pair stands in for
 * Japanese text, where names touch the next word. */
typedef struct ref_name {
    char name[16];
    size_t len, obj;
    bool exact;
} ref_name;

static bool ref_word(unsigned char c)
{
    return c < 0x80 && (isalnum(c) || c == '_');
}

static void ref_match(const ref_name *names, size_t n, const char *t, size_t len,
                      size_t *off, size_t *which, size_t *nout)
{
    *nout = 0;
    for (size_t i = 0; i < len;) {
        if ((i > 0 && ref_word((unsigned char)t[i - 1]) && ref_word((unsigned char)t[i])) ||
            i + 1 >= len) {
            i++;
            continue;
        }
        size_t best = SIZE_MAX;
        for (size_t k = 0; k < n; k++) {
            const ref_name *r = &names[k];
            if (r->len > len - i || (best != SIZE_MAX && names[best].len >= r->len))
                continue;
            bool same = r->exact ? memcmp(t + i, r->name, r->len) == 0
                                 : strncasecmp(t + i, r->name, r->len) == 0;
            if (!same || (i + r->len < len && ref_word((unsigned char)t[i + r->len]) &&
                          ref_word((unsigned char)r->name[r->len - 1])))
                continue;
            best = k;
        }
        if (best == SIZE_MAX) {
            i++;
            continue;
        }
        off[*nout] = i;
        which[(*nout)++] = best;
        i += names[best].len;
    }
}

static void test_gazetteer_is_the_plain_algorithm(void **state)
{
    (void)state;
    static const char *const pieces[] = {"ab", "Ab", "AB", "c", "C", " ", "1", "-", ".",
                                         "\xe3\x81\x8c", "abc", "x"};
    const size_t npieces = sizeof pieces / sizeof pieces[0];
    srand(7);
    for (int round = 0; round < 40; round++) {
        tr_gazetteer *g = tr_gazetteer_new();
        ref_name names[120];
        size_t n = 0, run = 0, last_id = SIZE_MAX;
        for (int k = 0; k < 120; k++) {
            char nm[16] = "";
            int parts = 1 + rand() % 4;
            for (int p = 0; p < parts; p++) {
                const char *piece = pieces[rand() % npieces];
                if (strlen(nm) + strlen(piece) < sizeof nm)
                    strcat(nm, piece);
            }
            size_t obj = (size_t)(rand() % 40);
            char id[64];
            snprintf(id, sizeof id, "malware--00000000-0000-4000-8000-%012zu", obj);
            tr_gazetteer_add(g, nm, id, "malware", nm);
            /* What the gazetteer keeps: 3 bytes or more, once per object
             * (an object being a run of adds with one id, as a load makes). */
            if (strlen(nm) < 3)
                continue;
            if (obj != last_id) {
                run++;
                last_id = obj;
            }
            bool dup = false;
            for (size_t j = 0; j < n && !dup; j++)
                dup = names[j].obj == run && strcmp(names[j].name, nm) == 0;
            if (dup)
                continue;
            ref_name *r = &names[n++];
            snprintf(r->name, sizeof r->name, "%s", nm);
            r->len = strlen(nm);
            r->obj = run;
            r->exact = !strchr(nm, ' ') && !strpbrk(nm, "0123456789");
        }
        assert_int_equal(tr_gazetteer_size(g), n);
        for (int t = 0; t < 20; t++) {
            char text[400] = "";
            while (strlen(text) < 300)
                strcat(text, pieces[rand() % npieces]);
            size_t len = strlen(text), off[400], which[400], nref;
            ref_match(names, n, text, len, off, which, &nref);
            tr_entity_list got;
            tr_gazetteer_match(g, text, len, &got);
            if (got.n != nref)
                fail_msg("round %d: %zu mentions, the plain algorithm %zu in \"%s\"", round,
                         got.n, nref, text);
            for (size_t k = 0; k < nref; k++) {
                assert_int_equal(got.v[k].offset, off[k]);
                assert_int_equal(got.v[k].length, names[which[k]].len);
                assert_string_equal(got.v[k].matched, names[which[k]].name);
            }
            tr_entity_list_free(&got);
        }
        tr_gazetteer_free(g);
    }
}

static void test_gazetteer_without_spaces(void **state)
{
    (void)state;
    tr_gazetteer *g = small_gazetteer();
    const char *t = "Conti\xe3\x81\x8c\xe3\x80\x81REvil\xe3\x81\xae\xe3\x82\xb7\xe3\x82\xb9 "
                    "sodinokibi evil corp. Contigo page at FIN12 Sodinokibi";
    tr_entity_list e;
    tr_gazetteer_match(g, t, strlen(t), &e);
    const char *want[] = {"Conti", "REvil", "Indrik Spider", "Wizard Spider", "REvil"};
    assert_int_equal(e.n, 5);   /* "sodinokibi" and "page" keep case; "Contigo" is a word */
    for (size_t i = 0; i < e.n; i++)
        assert_string_equal(e.v[i].name, want[i]);
    assert_int_equal(e.v[0].offset, 0);
    assert_string_equal(e.v[2].matched, "Evil Corp");
    tr_entity_list_free(&e);
    tr_gazetteer_free(g);
}

/* Locations and sectors come from the stored knowledge base; organisations do not. */
static void test_gazetteer_loads_locations_and_sectors(void **state)
{
    (void)state;
    const char *bundle =
        "{\"type\":\"bundle\",\"id\":\"bundle--6f1a6d3e-3f0e-4a44-9c3e-0d9b8d3b1a11\",\"objects\":["
        "{\"type\":\"location\",\"spec_version\":\"2.1\",\"id\":\"location--3b1a0d3e-3f0e-4a44-9c3e-0d9b8d3b1a12\","
        "\"created\":\"2024-01-01T00:00:00.000Z\",\"modified\":\"2024-01-01T00:00:00.000Z\",\"name\":\"Japan\",\"country\":\"JP\"},"
        "{\"type\":\"identity\",\"spec_version\":\"2.1\",\"id\":\"identity--4b1a0d3e-3f0e-4a44-9c3e-0d9b8d3b1a13\","
        "\"created\":\"2024-01-01T00:00:00.000Z\",\"modified\":\"2024-01-01T00:00:00.000Z\",\"name\":\"Manufacturing\",\"identity_class\":\"class\"},"
        "{\"type\":\"identity\",\"spec_version\":\"2.1\",\"id\":\"identity--5b1a0d3e-3f0e-4a44-9c3e-0d9b8d3b1a14\","
        "\"created\":\"2024-01-01T00:00:00.000Z\",\"modified\":\"2024-01-01T00:00:00.000Z\",\"name\":\"ACME Corp\",\"identity_class\":\"organization\"}]}";
    char dir[] = "/tmp/trawl-test-report-XXXXXX";
    assert_non_null(mkdtemp(dir));
    tr_error err;
    tr_stix_db *db;
    assert_int_equal(tr_stix_open(dir, &db, &err), 0);
    tr_stix_import_result res;
    if (tr_stix_import(db, bundle, strlen(bundle), NULL, &res, &err) != 0)
        fail_msg("%s", err.msg);
    tr_gazetteer *g;
    assert_int_equal(tr_gazetteer_load(db, &g, &err), 0);
    const char *t = "Japan\xe3\x81\xae Manufacturing sector, ACME Corp";
    tr_entity_list e;
    tr_gazetteer_match(g, t, strlen(t), &e);
    assert_int_equal(e.n, 2);
    assert_string_equal(e.v[0].type, "location");
    assert_string_equal(e.v[1].name, "Manufacturing");
    tr_entity_list_free(&e);
    tr_gazetteer_free(g);
    tr_stix_close(db);
    char *cmd = tr_xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

static void test_draft_bundle_imports(void **state)
{
    (void)state;
    tr_gazetteer *g = small_gazetteer();
    const char *t = "Weekly digest\n"
                    "FIN12 uses Conti. The Macaw ransomware and BlackMatter\xe3\x83\xa9\xe3\x83\xb3"
                    "\xe3\x82\xb5\xe3\x83\xa0\xe3\x82\xa6\xe3\x82\xa7\xe3\x82\xa2 hit victims.\n"
                    "C2 45.77.12[.]201, lab 10.1.1.1, CVE-2021-44228, T1486.\n";
    tr_report_opts o = {.published = "2021-10-17", .marking = "TLP:AMBER", .filename = "d.txt"};
    const char *labels[] = {"ransomware", NULL};
    o.labels = labels;
    json_t *d;
    tr_error err;
    assert_int_equal(tr_report_draft((const unsigned char *)t, strlen(t), &o, g, NULL, &d, &err), 0);
    json_t *r = json_object_get(d, "report");
    assert_string_equal(json_string_value(json_object_get(r, "name")), "Weekly digest");
    assert_string_equal(json_string_value(json_object_get(r, "published")), "2021-10-17T00:00:00Z");
    assert_string_equal(json_string_value(json_object_get(r, "description")), t);
    json_t *refs = json_object_get(r, "object_refs");
    /* artifact, the public IP's indicator, vulnerability, attack-pattern, two entities */
    assert_int_equal(json_array_size(refs), 6);
    json_t *cands = json_object_get(d, "candidates");
    assert_int_equal(json_array_size(cands), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(cands, 0), "name")), "Macaw");
    json_t *props = json_object_get(d, "proposals");
    assert_int_equal(json_array_size(props), 1);
    json_t *p = json_array_get(props, 0);
    assert_string_equal(json_string_value(json_object_get(p, "relationship_type")), "uses");
    assert_string_equal(json_string_value(json_object_get(p, "source_name")), "Wizard Spider");
    assert_string_equal(json_string_value(json_object_get(p, "status")), "proposal");

    /* The bundle passes the knowledge base's validation and import. */
    char dir[] = "/tmp/trawl-test-report-XXXXXX";
    assert_non_null(mkdtemp(dir));
    tr_stix_db *db;
    assert_int_equal(tr_stix_open(dir, &db, &err), 0);
    char *text = json_dumps(json_object_get(d, "bundle"), JSON_COMPACT);
    tr_stix_import_result res;
    if (tr_stix_import(db, text, strlen(text), NULL, &res, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(res.added, 5);   /* report, artifact, indicator, vulnerability, attack-pattern */
    free(text);
    tr_stix_close(db);
    char *cmd = tr_xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    json_decref(d);
    tr_gazetteer_free(g);
}

static void test_attribution_proposal(void **state)
{
    (void)state;
    tr_gazetteer *g = small_gazetteer();
    tr_gazetteer_add(g, "Operation Dust", "campaign--00000000-0000-4000-8000-000000000003",
                     "campaign", "Operation Dust");
    const char *t = "Notes\nOperation Dust is attributed to Evil Corp. REvil was used by FIN12.\n"
                    "Evil Corp never used Conti. Wizard Spider is not attributed to Evil Corp.\n"
                    "Evil Corp deployed Conti.\n";
    tr_report_opts o = {.filename = "n.txt"};
    json_t *d;
    tr_error err;
    assert_int_equal(tr_report_draft((const unsigned char *)t, strlen(t), &o, g, NULL, &d, &err), 0);
    json_t *props = json_object_get(d, "proposals");
    assert_int_equal(json_array_size(props), 3);
    const char *want[][3] = {{"Operation Dust", "attributed-to", "Indrik Spider"},
                             {"Wizard Spider", "uses", "REvil"},
                             {"Indrik Spider", "uses", "Conti"}};
    for (size_t i = 0; i < 3; i++) {
        json_t *p = json_array_get(props, i);
        assert_string_equal(json_string_value(json_object_get(p, "source_name")), want[i][0]);
        assert_string_equal(json_string_value(json_object_get(p, "relationship_type")), want[i][1]);
        assert_string_equal(json_string_value(json_object_get(p, "target_name")), want[i][2]);
    }
    /* Proposals never reach the bundle. */
    size_t k;
    json_t *v;
    json_array_foreach(json_object_get(json_object_get(d, "bundle"), "objects"), k, v) {
        assert_string_not_equal(json_string_value(json_object_get(v, "type")), "relationship");
    }
    json_decref(d);
    tr_gazetteer_free(g);
}

/* The seed digest against the ATT&CK bundle, through the stored knowledge base. */
static void test_seed_digest(void **state)
{
    (void)state;
    const char *digest = TRAWL_SHARED_DIR "/data/reports/000_d651423fc4c00244.txt";
    const char *attack = TRAWL_SHARED_DIR "/data/attack/enterprise-attack-entities.json";
    if (access(digest, R_OK) != 0 || access(attack, R_OK) != 0) {
        print_message("skipped: missing %s or %s\n", digest, attack);
        skip();
    }
    char dir[] = "/tmp/trawl-test-report-XXXXXX";
    assert_non_null(mkdtemp(dir));
    tr_error err;
    tr_stix_db *db;
    assert_int_equal(tr_stix_open(dir, &db, &err), 0);
    char *text;
    size_t len;
    tr_stix_import_result res;
    assert_int_equal(tr_read_file(attack, &text, &len, &err), 0);
    assert_int_equal(tr_stix_import(db, text, len, NULL, &res, &err), 0);
    free(text);
    tr_gazetteer *g;
    assert_int_equal(tr_gazetteer_load(db, &g, &err), 0);
    assert_true(tr_gazetteer_size(g) > 1000);
    assert_int_equal(tr_read_file(digest, &text, &len, &err), 0);
    tr_report_opts o = {.filename = digest};
    json_t *d;
    assert_int_equal(tr_report_draft((const unsigned char *)text, len, &o, g, NULL, &d, &err), 0);
    free(text);
    const char *want[][2] = {{"Conti", "Conti"},
                             {"REvil", "REvil"},
                             {"Indrik Spider", "Evil Corp"},
                             {"Wizard Spider", "FIN12"},
                             {"Ryuk", "Ryuk"},
                             {"WastedLocker", "WastedLocker"}};
    for (size_t k = 0; k < 6; k++) {
        bool seen = false;
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(d, "entities"), i, v) {
            if (strcmp(json_string_value(json_object_get(v, "name")), want[k][0]) == 0 &&
                strcmp(json_string_value(json_object_get(v, "matched")), want[k][1]) == 0)
                seen = true;
        }
        if (!seen)
            fail_msg("%s (as %s) not found", want[k][0], want[k][1]);
    }
    bool macaw = false, blackmatter = false;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(d, "candidates"), i, v) {
        macaw |= strcmp(json_string_value(json_object_get(v, "name")), "Macaw") == 0;
        blackmatter |= strcmp(json_string_value(json_object_get(v, "name")), "BlackMatter") == 0;
    }
    assert_true(macaw && blackmatter);
    char *bundle = json_dumps(json_object_get(d, "bundle"), JSON_COMPACT);
    if (tr_stix_import(db, bundle, strlen(bundle), NULL, &res, &err) != 0)
        fail_msg("%s", err.msg);
    free(bundle);
    json_decref(d);
    tr_gazetteer_free(g);
    tr_stix_close(db);
    char *cmd = tr_xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

int main(int argc, char **argv)
{
    /* tr_doc_extract_isolated runs /proc/self/exe: this binary. */
    if (tr_doc_helper_requested(argc, argv)) {
        const char *mode = getenv("TRAWL_TEST_HELPER");
        if (mode && strcmp(mode, "abort") == 0)
            abort();
        if (mode && strcmp(mode, "garbage") == 0) {
            fputs("not frames", stdout);
            return 0;
        }
        return tr_doc_helper_main(argc, argv);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold_maps_offsets),
        cmocka_unit_test(test_defanged_forms),
        cmocka_unit_test(test_url_host_first),
        cmocka_unit_test(test_addresses_classified),
        cmocka_unit_test(test_hashes_and_ids),
        cmocka_unit_test(test_bitcoin_checksums),
        cmocka_unit_test(test_files_keys_domains),
        cmocka_unit_test(test_yara_rule_in_text),
        cmocka_unit_test(test_split_scan_is_the_serial_scan),
        cmocka_unit_test(test_charsets),
        cmocka_unit_test(test_date_near_top),
        cmocka_unit_test(test_html_visible_text),
        cmocka_unit_test(test_eml_bodies),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_doc_frames_round_trip),
        cmocka_unit_test(test_helper_crash_is_an_error),
        cmocka_unit_test(test_gazetteer_without_spaces),
        cmocka_unit_test(test_gazetteer_is_the_plain_algorithm),
        cmocka_unit_test(test_gazetteer_loads_locations_and_sectors),
        cmocka_unit_test(test_draft_bundle_imports),
        cmocka_unit_test(test_attribution_proposal),
        cmocka_unit_test(test_seed_digest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
