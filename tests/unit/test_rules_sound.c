/* Planner soundness: whenever libyara matches a rule on a file, the file
 * satisfies the rule's plan (tr_query_match). Three corpora: random rules
 * with planted strings, every public rule set with its own strings planted,
 * and the match cases of YARA's own test suite. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <yara.h>

#include "rules/ast.h"
#include "fixture.h"
#include "rules/rules.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return n ? (unsigned)(rng % n) : 0;
}

static void put(tr_buf *b, unsigned c)
{
    char ch = (char)c;
    tr_buf_append(b, &ch, 1);
}

/* ---- instances of strings ---------------------------------------------------- */
static void hex_gen(const hex_seq *s, tr_buf *b)
{
    for (size_t i = 0; i < s->n; i++) {
        const hex_item *it = &s->items[i];
        if (it->kind == HEX_BYTE) {
            put(b, (unsigned)(it->value | (rnd(256) & ~it->mask)));
        } else if (it->kind == HEX_JUMP) {
            int hi = it->hi < 0 || it->hi > it->lo + 6 ? it->lo + 6 : it->hi;
            int n = it->lo + (int)rnd((unsigned)(hi - it->lo + 1));
            for (int k = 0; k < n; k++)
                put(b, rnd(256));
        } else {
            hex_gen(it->alt[rnd((unsigned)it->nalt)], b);
        }
    }
}

static void re_gen(const re_node *r, tr_buf *b, bool wide)
{
    switch (r->kind) {
    case RE_SET: {
        unsigned n = tr_byteset_count(&r->set), k = rnd(n);
        for (unsigned c = 0; c < 256; c++)
            if (tr_byteset_has(&r->set, c) && k-- == 0) {
                put(b, c);
                if (wide)
                    put(b, 0);
                break;
            }
        return;
    }
    case RE_ASSERT:
    case RE_EMPTY:
        return;
    case RE_CAT:
        for (size_t i = 0; i < r->n; i++)
            re_gen(r->sub[i], b, wide);
        return;
    case RE_ALT:
        re_gen(r->sub[rnd((unsigned)r->n)], b, wide);
        return;
    case RE_REPEAT: {
        int hi = r->max < 0 || r->max > r->min + 3 ? r->min + 3 : r->max;
        int n = r->min + (int)rnd((unsigned)(hi - r->min + 1));
        if (n > 40)
            n = r->min > 40 ? r->min : 40;
        for (int i = 0; i < n; i++)
            re_gen(r->sub[0], b, wide);
        return;
    }
    }
}

static const char std_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64_enc(const unsigned char *p, size_t n, const char *alpha, bool widen, tr_buf *b)
{
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        size_t chars = n - i >= 3 ? 4 : n - i + 1;
        for (size_t k = 0; k < chars; k++) {
            put(b, (unsigned char)alpha[(v >> (18 - 6 * k)) & 63]);
            if (widen)
                put(b, 0);
        }
    }
}

static void text_gen(const tr_string *s, tr_buf *b)
{
    unsigned m = s->mods;
    bool wide = (m & MOD_WIDE) && (!(m & MOD_ASCII) || rnd(2));
    tr_buf src = {0};
    for (size_t i = 0; i < s->len; i++) {
        unsigned c = s->text[i];
        if ((m & MOD_NOCASE) && ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') && rnd(2))
            c ^= 0x20;
        put(&src, c);
        if (wide)
            put(&src, 0);
    }
    if (m & (MOD_BASE64 | MOD_BASE64WIDE)) {
        bool bw = (m & MOD_BASE64WIDE) && (!(m & MOD_BASE64) || rnd(2));
        const char *alpha = bw ? s->b64w_alpha : s->b64_alpha;
        tr_buf pre = {0};
        unsigned np = rnd(3);
        for (unsigned i = 0; i < np; i++)
            put(&pre, rnd(256));
        tr_buf_append(&pre, src.data, src.len);
        for (unsigned i = 0, nt = rnd(3); i < nt; i++)
            put(&pre, rnd(256));
        b64_enc((unsigned char *)pre.data, pre.len, alpha ? alpha : std_b64, bw, b);
        tr_buf_free(&pre);
    } else {
        unsigned key = (m & MOD_XOR) ? (unsigned)s->xor_lo + rnd((unsigned)(s->xor_hi - s->xor_lo + 1)) : 0;
        for (size_t i = 0; i < src.len; i++)
            put(b, (unsigned char)src.data[i] ^ key);
    }
    tr_buf_free(&src);
}

static void string_gen(const tr_string *s, tr_buf *b)
{
    if (s->kind == STR_TEXT)
        text_gen(s, b);
    else if (s->kind == STR_HEX)
        hex_gen(s->hex, b);
    else
        re_gen(s->re, b, (s->mods & MOD_WIDE) && (!(s->mods & MOD_ASCII) || rnd(2)));
}

static void noise(tr_buf *b, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        put(b, rnd(4) ? rnd(256) : (unsigned char)" \n\0az"[rnd(5)]);
}

/* ---- libyara ---------------------------------------------------------------- */
typedef struct {
    char **names;
    size_t n;
} matches;

static int on_scan(YR_SCAN_CONTEXT *ctx, int msg, void *data, void *user)
{
    (void)ctx;
    if (msg == CALLBACK_MSG_RULE_MATCHING) {
        matches *m = user;
        m->names = realloc(m->names, (m->n + 1) * sizeof *m->names);
        m->names[m->n++] = strdup(((YR_RULE *)data)->identifier);
    }
    return CALLBACK_CONTINUE;
}

static void silent(int level, const char *file, int line, const YR_RULE *rule, const char *msg, void *user)
{
    (void)level, (void)file, (void)line, (void)rule, (void)msg, (void)user;
}

static YR_RULES *compile(const char *text, const char *path, bool externals)
{
    YR_COMPILER *c;
    assert_int_equal(yr_compiler_create(&c), ERROR_SUCCESS);
    yr_compiler_set_callback(c, silent, NULL);
    if (externals) {
        yr_compiler_define_integer_variable(c, "var_zero", 0);
        yr_compiler_define_integer_variable(c, "var_one", 1);
        yr_compiler_define_boolean_variable(c, "var_true", 1);
        yr_compiler_define_boolean_variable(c, "var_false", 0);
    }
    int n;
    if (path) {
        FILE *f = fopen(path, "r");
        n = yr_compiler_add_file(c, f, NULL, path);
        fclose(f);
    } else {
        n = yr_compiler_add_string(c, text, NULL);
    }
    YR_RULES *r = NULL;
    if (n == 0)
        assert_int_equal(yr_compiler_get_rules(c, &r), ERROR_SUCCESS);
    yr_compiler_destroy(c);
    return r;
}

/* Scans doc; every matching rule's plan must accept doc. Returns matches. */
static size_t check_doc(YR_RULES *rules, const tr_plan *p, const unsigned char *doc, size_t len,
                        const char *what, size_t *violations)
{
    matches m = {0};
    yr_rules_scan_mem(rules, doc, len, SCAN_FLAGS_NO_TRYCATCH, on_scan, &m, 5);
    for (size_t i = 0; i < m.n; i++) {
        for (size_t r = 0; r < tr_plan_count(p); r++) {
            if (strcmp(tr_plan_rule_name(p, r), m.names[i]) != 0)
                continue;
            if (!tr_query_match(tr_plan_query(p, r), doc, len)) {
                (*violations)++;
                tr_buf q = {0};
                tr_query_format(tr_plan_query(p, r), &q);
                tr_buf_append(&q, "", 1);
                printf("UNSOUND %s: rule %s matched by libyara, plan %s rejects\n", what,
                       m.names[i], q.data);
                tr_buf_free(&q);
            }
        }
        free(m.names[i]);
    }
    free(m.names);
    return m.n;
}

/* ---- random rules -------------------------------------------------------------- */
static void rand_word(tr_buf *b, unsigned minlen, unsigned maxlen)
{
    static const char al[] = "abcdefghijKLMNOPqrstuvwxyz0123456789_- ";
    unsigned n = minlen + rnd(maxlen - minlen + 1);
    for (unsigned i = 0; i < n; i++)
        put(b, (unsigned char)al[rnd(sizeof al - 1)]);
}

static void rand_text_string(tr_buf *r)
{
    tr_buf_append(r, "\"", 1);
    rand_word(r, 1, 9);
    if (rnd(4) == 0)
        tr_buf_printf(r, "\\x%02x", rnd(256));
    tr_buf_append(r, "\"", 1);
    unsigned kind = rnd(6);
    if (kind == 0) {
        tr_buf_printf(r, " base64%s", rnd(2) ? " base64wide" : "");
        if (rnd(3) == 0)
            tr_buf_printf(r, " wide");
    } else if (kind == 1) {
        tr_buf_printf(r, " base64wide");
    } else if (kind == 2) {
        unsigned lo = rnd(256), hi = lo + rnd(256 - lo);
        if (rnd(2))
            tr_buf_printf(r, " xor(%u-%u)", lo, hi);
        else
            tr_buf_printf(r, " xor");
        if (rnd(2))
            tr_buf_printf(r, " wide%s", rnd(2) ? " ascii" : "");
    } else {
        if (rnd(2))
            tr_buf_printf(r, " nocase");
        if (rnd(2))
            tr_buf_printf(r, " wide%s", rnd(2) ? " ascii" : "");
        if (rnd(3) == 0)
            tr_buf_printf(r, " fullword");
    }
    if (rnd(5) == 0)
        tr_buf_printf(r, " private");
}

static void rand_hex_seq(tr_buf *r, int depth, bool in_alt)
{
    unsigned n = 1 + rnd(5);
    for (unsigned i = 0; i < n; i++) {
        unsigned k = rnd(10);
        if (k < 6 || depth > 1) {
            const char *nib = "0123456789ABCDEF?";
            tr_buf_printf(r, "%c%c ", nib[rnd(17)], nib[rnd(16)]);
        } else if (k < 8 && i > 0 && i + 1 < n) {
            unsigned lo = rnd(4);
            switch (rnd(in_alt ? 2 : 4)) {
            case 0: tr_buf_printf(r, "[%u] ", lo + 1); break;
            case 1: tr_buf_printf(r, "[%u-%u] ", lo, lo + rnd(5)); break;
            case 2: tr_buf_printf(r, "[%u-] ", lo); break;
            default: tr_buf_printf(r, "[-] "); break;
            }
            tr_buf_printf(r, "%02X ", rnd(256));
        } else {
            tr_buf_printf(r, "( ");
            unsigned na = 2 + rnd(2);
            for (unsigned a = 0; a < na; a++) {
                if (a)
                    tr_buf_printf(r, "| ");
                rand_hex_seq(r, depth + 1, true);
            }
            tr_buf_printf(r, ") ");
        }
    }
}

static void rand_re(tr_buf *r, int depth)
{
    unsigned n = 1 + rnd(5);
    for (unsigned i = 0; i < n; i++) {
        unsigned k = rnd(12);
        if (k < 5)
            put(r, (unsigned char)"abcXYZ019 _"[rnd(11)]);
        else if (k == 5)
            tr_buf_printf(r, "[a-f%s]", rnd(2) ? "\\d" : "X");
        else if (k == 6)
            tr_buf_printf(r, "%s", (const char *[]){".", "\\w", "\\s", "\\x41", "\\.", "\\d"}[rnd(6)]);
        else if (k == 7 && depth < 2) {
            put(r, '(');
            rand_re(r, depth + 1);
            put(r, '|');
            rand_re(r, depth + 1);
            put(r, ')');
        } else if (k == 8)
            tr_buf_printf(r, "%s", (const char *[]){"^", "\\b", "$"}[rnd(3)]);
        else
            put(r, (unsigned char)"abc"[rnd(3)]);
        if (rnd(4) == 0)
            tr_buf_printf(r, "%s", (const char *[]){"*", "+", "?", "{2}", "{1,3}", "{0,2}", "+?"}[rnd(7)]);
    }
}

static void rand_cond(tr_buf *r, unsigned ns, int depth)
{
    unsigned k = depth > 2 ? rnd(3) : rnd(16);
    unsigned s = rnd(ns);
    switch (k) {
    case 0: case 1: tr_buf_printf(r, "$s%u", s); break;
    case 2: tr_buf_printf(r, "#s%u %s %u", s, (const char *[]){">", ">=", "==", "<", "!=", "<="}[rnd(6)], rnd(3)); break;
    case 3: tr_buf_printf(r, "(");
        rand_cond(r, ns, depth + 1);
        tr_buf_printf(r, " and ");
        rand_cond(r, ns, depth + 1);
        tr_buf_printf(r, ")");
        break;
    case 4: tr_buf_printf(r, "(");
        rand_cond(r, ns, depth + 1);
        tr_buf_printf(r, " or ");
        rand_cond(r, ns, depth + 1);
        tr_buf_printf(r, ")");
        break;
    case 5: tr_buf_printf(r, "not ");
        rand_cond(r, ns, depth + 1);
        break;
    case 6: tr_buf_printf(r, "%s of them", (const char *[]){"any", "all", "none", "1", "2", "50%"}[rnd(6)]); break;
    case 7: tr_buf_printf(r, "for any of ($s*) : ($ at %u or #) ", rnd(4)); break;
    case 8: tr_buf_printf(r, "@s%u[1] %s %u", s, rnd(2) ? ">=" : "!=", rnd(50)); break;
    case 9: tr_buf_printf(r, "$s%u in (0..%u)", s, rnd(300)); break;
    case 10: tr_buf_printf(r, "filesize > %u", rnd(400)); break;
    case 11: tr_buf_printf(r, "for all i in (1..#s%u) : (@s%u[i] < 1000)", s, s); break;
    case 12: tr_buf_printf(r, "%u %s #s%u", rnd(3), rnd(2) ? "<" : "==", s); break;
    /* Fixed-offset reads and sizes (AT, SIZE in the plan): values the noise
     * often holds. */
    case 13: tr_buf_printf(r, "uint8(%u) == %u", rnd(3), (unsigned)" \n\0az"[rnd(5)]); break;
    case 14: tr_buf_printf(r, "filesize %s %u", (const char *[]){"<", "<=", "==", ">="}[rnd(4)], rnd(120)); break;
    default: tr_buf_printf(r, "any of them in (0..%u)", rnd(200)); break;
    }
}

static void test_random_rules(void **state)
{
    (void)state;
    size_t rules = 0, docs = 0, hits = 0, violations = 0, rejected = 0;
    for (int iter = 0; iter < 400; iter++) {
        tr_buf r = {0};
        unsigned ns = 1 + rnd(3);
        tr_buf_printf(&r, "rule r%d {\n strings:\n", iter);
        for (unsigned i = 0; i < ns; i++) {
            tr_buf_printf(&r, "  $s%u = ", i);
            unsigned kind = rnd(3);
            if (kind == 0) {
                rand_text_string(&r);
            } else if (kind == 1) {
                tr_buf_printf(&r, "{ %02X ", rnd(256));
                rand_hex_seq(&r, 0, false);
                tr_buf_printf(&r, "}");
            } else {
                put(&r, '/');
                rand_re(&r, 0);
                tr_buf_printf(&r, "/%s%s%s", rnd(3) == 0 ? "i" : "", rnd(3) == 0 ? "s" : "",
                              rnd(3) == 0 ? (rnd(2) ? " wide" : " wide ascii") : rnd(4) == 0 ? " nocase" : "");
            }
            tr_buf_printf(&r, "\n");
        }
        tr_buf_printf(&r, " condition:\n  ");
        rand_cond(&r, ns, 0);
        tr_buf_printf(&r, " and any of them or (all of them and ");
        rand_cond(&r, ns, 1);
        tr_buf_printf(&r, ")\n}\n");
        tr_buf_append(&r, "", 1);

        tr_ruleset *rs = NULL;
        tr_error err;
        if (tr_rules_parse_string("random.yar", r.data, &rs, &err) != 0) {
            /* generated text libyara rejects too is fine; disagreement is not */
            YR_RULES *y = compile(r.data, NULL, false);
            if (y) {
                printf("trawl rejects what libyara accepts: %s\n%s\n", err.msg, r.data);
                yr_rules_destroy(y);
                fail();
            }
            rejected++;
            tr_buf_free(&r);
            continue;
        }
        YR_RULES *y = compile(r.data, NULL, false);
        if (!y) {
            printf("libyara rejects what trawl accepts:\n%s\n", r.data);
            fail();
        }
        tr_plan *p;
        assert_int_equal(tr_plan_build(rs, &p, &err), 0);
        rules++;
        const tr_rule *rule = &rs->rules[0];
        for (int d = 0; d < 6; d++) {
            tr_buf doc = {0};
            noise(&doc, rnd(40));
            for (size_t s = 0; s < rule->nstrings; s++) {
                if (d > 0 && rnd(3) == 0)
                    continue;
                for (unsigned rep = 0, nrep = 1 + rnd(2); rep < nrep; rep++) {
                    string_gen(&rule->strings[s], &doc);
                    noise(&doc, rnd(8));
                }
            }
            noise(&doc, rnd(40));
            hits += check_doc(y, p, (unsigned char *)doc.data, doc.len, r.data, &violations);
            docs++;
            tr_buf_free(&doc);
        }
        if (violations) {
            printf("in rule:\n%s\n", r.data);
            fail();
        }
        tr_plan_free(p);
        tr_ruleset_free(rs);
        yr_rules_destroy(y);
        tr_buf_free(&r);
    }
    printf("random: %zu rules (%zu rejected by both), %zu documents, %zu libyara matches, "
           "%zu unsound\n", rules, rejected, docs, hits, violations);
    assert_int_equal(violations, 0);
    assert_true(hits > 200);
}

/* ---- the public rule sets ---------------------------------------------------------- */
static char **files;
static size_t nfiles;

static int collect(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag != FTW_F)
        return 0;
    size_t n = strlen(path);
    const char *exts[] = {".yar", ".yara", ".rule"};
    for (size_t i = 0; i < 3; i++) {
        size_t e = strlen(exts[i]);
        if (n > e && strcmp(path + n - e, exts[i]) == 0 && !strstr(path, "index")) {
            files = realloc(files, (nfiles + 1) * sizeof *files);
            files[nfiles++] = strdup(path);
        }
    }
    return 0;
}

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_public_rule_sets(void **state)
{
    (void)state;
    FIXTURE_NEED_SHARED("/data/rules");
    assert_int_equal(nftw(TRAWL_SHARED_DIR "/data/rules", collect, 16, FTW_PHYS), 0);
    qsort(files, nfiles, sizeof *files, cmpstr);
    size_t nrules = 0, docs = 0, hits = 0, violations = 0, everything = 0, planned = 0;
    for (size_t fi = 0; fi < nfiles; fi++) {
        tr_ruleset *rs = NULL;
        tr_error err;
        if (tr_rules_parse_file(files[fi], NULL, &rs, &err) != 0) {
            free(files[fi]);
            continue;
        }
        YR_RULES *y = compile(NULL, files[fi], false);
        assert_non_null(y);
        tr_plan *p;
        assert_int_equal(tr_plan_build(rs, &p, &err), 0);
        nrules += tr_ruleset_count(rs);
        planned += tr_plan_count(p);
        for (size_t i = 0; i < tr_plan_count(p); i++)
            everything += tr_plan_scans_everything(p, i);
        /* one document per rule with its own strings, one with everything */
        tr_buf all = {0};
        for (size_t ri = 0; ri < rs->nrules; ri++) {
            const tr_rule *r = &rs->rules[ri];
            tr_buf doc = {0};
            tr_buf_append(&doc, "MZ", 2);
            noise(&doc, 30);
            for (size_t s = 0; s < r->nstrings; s++) {
                string_gen(&r->strings[s], &doc);
                noise(&doc, 4);
            }
            if (rs->nrules <= 60) {
                hits += check_doc(y, p, (unsigned char *)doc.data, doc.len, files[fi], &violations);
                docs++;
            }
            if (all.len < 1 << 20)
                tr_buf_append(&all, doc.data, doc.len);
            tr_buf_free(&doc);
        }
        hits += check_doc(y, p, (unsigned char *)all.data, all.len, files[fi], &violations);
        docs++;
        tr_buf_free(&all);
        tr_plan_free(p);
        tr_ruleset_free(rs);
        yr_rules_destroy(y);
        free(files[fi]);
    }
    free(files);
    printf("public sets: %zu rules, %zu planned, %zu scan everything; %zu documents, "
           "%zu libyara matches, %zu unsound\n", nrules, planned, everything, docs, hits, violations);
    assert_int_equal(violations, 0);
}

/* ---- YARA's own test cases ------------------------------------------------------------- */
static void test_yara_suite_matches(void **state)
{
    (void)state;
    FIXTURE_NEED_SHARED("/data/yara-tests/cases.json");
    json_error_t jerr;
    json_t *root = json_load_file(TRAWL_SHARED_DIR "/data/yara-tests/cases.json", 0, &jerr);
    assert_non_null(root);
    static const char *const ext[] = {"var_zero", "var_one", "var_true", "var_false"};
    size_t i, checked = 0, hits = 0, violations = 0;
    json_t *c;
    json_array_foreach(json_object_get(root, "cases"), i, c) {
        const char *kind = json_string_value(json_object_get(c, "kind"));
        if (strcmp(kind, "rule") != 0 && strcmp(kind, "regexp_capture") != 0 &&
            strcmp(kind, "match_count") != 0)
            continue;
        const char *rule = json_string_value(json_object_get(c, "rule"));
        const char *hex = json_string_value(json_object_get(c, "data_hex"));
        size_t len = hex ? strlen(hex) / 2 : 5;
        unsigned char *data = malloc(len + 1);
        if (hex) {
            for (size_t k = 0; k < len; k++)
                sscanf(hex + 2 * k, "%2hhx", &data[k]);
        } else {
            memcpy(data, "dummy", 5);
        }
        tr_ruleset *rs = NULL;
        tr_error err;
        tr_rules_options o = {.externals = ext, .nexternals = 4};
        if (tr_rules_parse_opts("case", rule, strlen(rule), &o, &rs, &err) == 0) {
            YR_RULES *y = compile(rule, NULL, true);
            if (y) {
                tr_plan *p;
                assert_int_equal(tr_plan_build(rs, &p, &err), 0);
                hits += check_doc(y, p, data, len, json_string_value(json_object_get(c, "id")),
                                  &violations);
                checked++;
                tr_plan_free(p);
                yr_rules_destroy(y);
            }
            tr_ruleset_free(rs);
        }
        free(data);
    }
    json_decref(root);
    printf("yara suite: %zu cases scanned, %zu libyara matches, %zu unsound\n", checked, hits,
           violations);
    assert_int_equal(violations, 0);
    assert_true(hits > 400);
}

static int setup(void **state)
{
    (void)state;
    return yr_initialize() == ERROR_SUCCESS ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    yr_finalize();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_rules),
        cmocka_unit_test(test_yara_suite_matches),
        cmocka_unit_test(test_public_rule_sets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
