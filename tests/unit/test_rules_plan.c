/* Parser errors (file:line:col), crasher shapes, and the planner's query per
 * construct, asserted on tr_query_format's text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "rules/rules.h"

static char *plan_of(const char *src)
{
    tr_ruleset *rs = NULL;
    tr_error err;
    if (tr_rules_parse_string("t.yar", src, &rs, &err) != 0) {
        printf("parse error: %s\n", err.msg);
        fail();
    }
    tr_plan *p = NULL;
    assert_int_equal(tr_plan_build(rs, &p, &err), 0);
    tr_buf b = {0};
    size_t last = tr_plan_count(p) - 1;
    tr_query_format(tr_plan_query(p, last), &b);
    tr_buf_append(&b, "", 1);
    tr_plan_free(p);
    tr_ruleset_free(rs);
    return b.data;
}

#define PLAN_IS(src, want)                                                     \
    do {                                                                       \
        char *got_ = plan_of(src);                                             \
        if (strcmp(got_, want) != 0)                                           \
            printf("rule: %s\n got: %s\nwant: %s\n", src, got_, want);         \
        assert_string_equal(got_, want);                                       \
        free(got_);                                                            \
    } while (0)

static void parse_fails(const char *src, const char *want_prefix)
{
    tr_ruleset *rs = NULL;
    tr_error err;
    int rc = tr_rules_parse_string("t.yar", src, &rs, &err);
    if (rc == 0) {
        printf("accepted: %s\n", src);
        tr_ruleset_free(rs);
        fail();
    }
    if (strncmp(err.msg, want_prefix, strlen(want_prefix)) != 0) {
        printf("got: %s\nwant prefix: %s\n", err.msg, want_prefix);
        fail();
    }
}

static void test_error_locations(void **state)
{
    (void)state;
    parse_fails("rule a {\n  condition:\n    true and\n}", "t.yar:4:1: syntax error: unexpected '}'");
    parse_fails("rule a { strings: $a = \"x\" condition: $b }", "t.yar:1:39: undefined string \"$b\"");
    parse_fails("rule a {\n strings:\n  $a = \"x\"\n  $b = \"y\"\n condition: $a }",
                "t.yar:4:3: unreferenced string \"$b\"");
    parse_fails("rule a { condition: true }\nrule a { condition: true }",
                "t.yar:2:6: duplicated identifier \"a\"");
    parse_fails("import \"nope\"", "t.yar:1:8: unknown module \"nope\"");
    parse_fails("rule a { condition: b }", "t.yar:1:21: undefined identifier \"b\"");
    parse_fails("rule a { strings: $a = \"x\\q\" condition: $a }", "t.yar:1:26: illegal escape");
    parse_fails("rule a { strings: $a = { 01 ~02 } condition: $a }",
                "t.yar:1:24: invalid hex string \"$a\"");
    parse_fails("rule a { strings: $a = /a(/ condition: $a }",
                "t.yar:1:24: invalid regular expression \"$a\"");
    parse_fails("rule a { condition: 9223372036854775808 }", "t.yar:1:21: integer overflow");
}

/* The three shapes DESIGN.md lists as killing libyara 4.2.3. */
static void test_crashers_rejected(void **state)
{
    (void)state;
    parse_fails("rule a { condition: ~9223372036854775807 \\ -1 }", "t.yar:1:42: division by -1");
    parse_fails("rule a { condition: (filesize - 9223372036854775807) \\ -1 == 0 }",
                "t.yar:1:54: division by -1");
    parse_fails("rule a { condition: filesize % -1 == 0 }", "t.yar:1:30: division by -1");
    parse_fails("rule a { strings: $a = \"x\" condition: not defined (1 \\ #a) }",
                "t.yar:1:54: division by a non-constant inside 'defined'");
    parse_fails("rule a { strings: $a = { 31[-][8-][-]30 } condition: $a }",
                "t.yar:1:24: invalid hex string \"$a\": adjacent jumps");
    parse_fails("rule a { condition: 1 \\ 0 }", "t.yar:1:23: division by zero");
    /* harmless neighbours stay accepted */
    char *q = plan_of("rule a { condition: 10 \\ -1 == -10 and filesize \\ 2 > 1 }");
    free(q);
}

static void test_text_strings(void **state)
{
    (void)state;
    PLAN_IS("rule a { strings: $a = \"abcd\" condition: $a }", "\"abcd\"");
    PLAN_IS("rule a { strings: $a = \"abc\" wide condition: $a }", "\"a\" 00\"b\" 00\"c\" 00");
    PLAN_IS("rule a { strings: $a = \"ab\" ascii wide condition: $a }", "OR(\"ab\", \"a\" 00\"b\" 00)");
    PLAN_IS("rule a { strings: $a = \"a1\" nocase condition: $a }", "{41,61}\"1\"");
    PLAN_IS("rule a { strings: $a = \"ab\" xor(1-2) condition: $a }", "OR(\"`c\", \"c`\")");
    PLAN_IS("rule a { strings: $a = \"ab\" fullword private condition: $a }", "\"ab\"");
    PLAN_IS("rule a { strings: $a = \"a\" wide xor(1) condition: $a }", "\"`\" 01");
}

static void test_base64(void **state)
{
    (void)state;
    /* "abc" -> YWJj; after one byte AGFiYw keeps FiY; after two AABhYmM keeps hYm */
    PLAN_IS("rule a { strings: $a = \"abc\" base64 condition: $a }", "OR(\"YWJj\", \"FiY\", \"hYm\")");
    PLAN_IS("rule a { strings: $a = \"abc\" base64wide condition: $a }",
            "OR(\"Y\" 00\"W\" 00\"J\" 00\"j\" 00, \"F\" 00\"i\" 00\"Y\" 00, \"h\" 00\"Y\" 00\"m\" 00)");
}

static void test_hex_strings(void **state)
{
    (void)state;
    PLAN_IS("rule a { strings: $a = { 4D 5A 90 00 } condition: $a }", "\"MZ\" 90 00");
    PLAN_IS("rule a { strings: $a = { 41 ?2 43 } condition: $a }",
            "\"A\" {02,12,22,32,42,52,62,72,82,92,a2,b2,c2,d2,e2,f2}\"C\"");
    PLAN_IS("rule a { strings: $a = { 41 42 [2-4] 43 44 } condition: $a }", "AND(\"AB\", \"CD\")");
    PLAN_IS("rule a { strings: $a = { 41 42 [2] 43 } condition: $a }", "\"AB\" ?? ??\"C\"");
    PLAN_IS("rule a { strings: $a = { 41 (42 | 43) 44 } condition: $a }", "\"A\" {42,43}\"D\"");
    PLAN_IS("rule a { strings: $a = { 41 (42 | 43 43) 44 } condition: $a }",
            "AND(\"A\", OR(\"B\", \"CC\"), \"D\")");
}

static void test_regex(void **state)
{
    (void)state;
    PLAN_IS("rule a { strings: $a = /abc.*def/ condition: $a }", "AND(\"abc\", \"def\")");
    PLAN_IS("rule a { strings: $a = /ab(c|d)e/ condition: $a }", "\"ab\" {63,64}\"e\"");
    PLAN_IS("rule a { strings: $a = /ab(c|de)f/ condition: $a }", "AND(\"ab\", OR(\"c\", \"de\"), \"f\")");
    PLAN_IS("rule a { strings: $a = /Ab/i condition: $a }", "{41,61} {42,62}");
    PLAN_IS("rule a { strings: $a = /a+bc?d/ condition: $a }", "AND(\"a\", \"b\", \"d\")");
    PLAN_IS("rule a { strings: $a = /x{3}y/ condition: $a }", "\"xxxy\"");
    PLAN_IS("rule a { strings: $a = /abc|/ condition: $a }", "ALL");
    PLAN_IS("rule a { strings: $a = /ab/ wide condition: $a }", "\"a\" 00\"b\" 00");
}

static void test_conditions(void **state)
{
    (void)state;
    const char *s = "rule a { strings: $a = \"aaa\" $b = \"bbb\" $c = \"ccc\" condition: ";
    char buf[512];
#define COND(c, want)                                  \
    do {                                               \
        snprintf(buf, sizeof buf, "%s%s }", s, c);     \
        PLAN_IS(buf, want);                            \
    } while (0)
    COND("$a and ($b or $c)", "AND(\"aaa\", OR(\"bbb\", \"ccc\"))");
    COND("not $a and $b and $c", "AND(\"bbb\", \"ccc\")");
    COND("2 of them", "MIN(2, \"aaa\", \"bbb\", \"ccc\")");
    COND("any of them", "OR(\"aaa\", \"bbb\", \"ccc\")");
    COND("all of ($a, $b) and $c", "AND(\"aaa\", \"bbb\", \"ccc\")");
    COND("none of them", "ALL");
    COND("67% of them", "MIN(2, \"aaa\", \"bbb\", \"ccc\")");
    COND("#a > 2 and #b == 0 and #c < 2", "\"aaa\"");
    COND("#a >= 1 and 0 < #b and #c != 0", "AND(\"aaa\", \"bbb\", \"ccc\")");
    COND("$a at 0 and $b in (0..10) and @c[1] > 5", "AND(\"aaa\", \"bbb\", \"ccc\")");
    COND("for any of ($a, $b) : ($ at 0) and $c", "AND(OR(\"aaa\", \"bbb\"), \"ccc\")");
    COND("for all i in (1..#a) : (@a[i] > 0) and $b and $c", "AND(\"bbb\", \"ccc\")");
    COND("for any i in (1..3) : ($a at i) and $b and $c", "AND(\"aaa\", \"bbb\", \"ccc\")");
    COND("filesize < 100 and uint16(0) == 0x5a4d and all of them",
         "AND(\"aaa\", \"bbb\", \"ccc\")");
    COND("$a or filesize > 10 or ($b and $c)", "ALL");
    COND("false and $a and $b and $c", "NONE");
    COND("none of them or all of them", "ALL");
#undef COND
}

static void test_rule_references_and_globals(void **state)
{
    (void)state;
    PLAN_IS("private rule p { strings: $x = \"xyz\" condition: $x }\n"
            "rule a { strings: $a = \"aaa\" condition: $a and p }",
            "AND(\"aaa\", \"xyz\")");
    PLAN_IS("global rule g { strings: $g = \"ggg\" condition: $g }\n"
            "rule a { strings: $a = \"aaa\" condition: $a }",
            "AND(\"aaa\", \"ggg\")");
    PLAN_IS("rule r1 { strings: $a = \"aaa\" condition: $a }\n"
            "rule r2 { strings: $b = \"bbb\" condition: $b }\n"
            "rule a { condition: any of (r*) }",
            "OR(\"aaa\", \"bbb\")");
    PLAN_IS("rule a { strings: $a = \"aaa\" condition: a or $a }", "ALL");
}

static void test_plan_api_and_explain(void **state)
{
    (void)state;
    tr_ruleset *rs;
    tr_error err;
    assert_int_equal(tr_rules_parse_string("t.yar",
        "private rule p { condition: true }\n"
        "rule slow : t1 t2 { meta: author = \"me\" n = -3 strings: $a = /a.{0,3}b/ condition: $a }\n"
        "rule fast { strings: $a = \"hello\" nocase condition: $a and p }\n", &rs, &err), 0);
    assert_int_equal(tr_ruleset_count(rs), 3);
    assert_true(tr_ruleset_rule_is_private(rs, 0));
    assert_int_equal(tr_ruleset_rule_tag_count(rs, 1), 2);
    assert_string_equal(tr_ruleset_rule_tag(rs, 1, 1), "t2");
    char tmp[32];
    assert_string_equal(tr_ruleset_rule_meta_value(rs, 1, 1, tmp, sizeof tmp), "-3");
    tr_plan *p;
    assert_int_equal(tr_plan_build(rs, &p, &err), 0);
    assert_int_equal(tr_plan_count(p), 2);
    assert_string_equal(tr_plan_rule_name(p, 0), "slow");
    assert_true(tr_plan_scans_everything(p, 0));
    assert_false(tr_plan_scans_everything(p, 1));
    tr_buf b = {0};
    tr_plan_explain(p, &b);
    tr_buf_append(&b, "", 1);
    assert_non_null(strstr(b.data, "$a: regex /a.{0,3}b/ -> no usable run of >= 3 bytes -> all"));
    assert_non_null(strstr(b.data, "this rule scans every file"));
    assert_non_null(strstr(b.data, "$a: nocase text, 5 bytes"));
    tr_buf_free(&b);
    tr_plan_free(p);
    tr_ruleset_free(rs);
}

static void test_includes(void **state)
{
    (void)state;
    char dir[] = "/tmp/trawl_rules_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], sub[256];
    snprintf(sub, sizeof sub, "%s/inc.yar", dir);
    FILE *f = fopen(sub, "w");
    fputs("rule inc { strings: $a = \"included\" condition: $a }\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/main.yar", dir);
    f = fopen(path, "w");
    fputs("include \"inc.yar\"\nrule main { condition: inc }\n", f);
    fclose(f);
    tr_ruleset *rs;
    tr_error err;
    assert_int_equal(tr_rules_parse_file(path, &rs, &err), 0);
    assert_int_equal(tr_ruleset_count(rs), 2);
    tr_ruleset_free(rs);
    assert_int_equal(tr_rules_yara_check(path, NULL, &err), 0);
    /* a loop */
    f = fopen(sub, "w");
    fputs("include \"main.yar\"\n", f);
    fclose(f);
    assert_int_equal(tr_rules_parse_file(path, &rs, &err), -1);
    assert_non_null(strstr(err.msg, "include loop"));
    unlink(sub);
    unlink(path);
    rmdir(dir);
}

static void test_yara_check_message(void **state)
{
    (void)state;
    tr_error err;
    assert_int_equal(tr_rules_yara_check("x.yar", "rule a { condition: true }", &err), 0);
    assert_int_equal(tr_rules_yara_check("x.yar", "rule a { condition: b }", &err), -1);
    assert_non_null(strstr(err.msg, "undefined identifier \"b\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_locations),
        cmocka_unit_test(test_crashers_rejected),
        cmocka_unit_test(test_text_strings),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_hex_strings),
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_conditions),
        cmocka_unit_test(test_rule_references_and_globals),
        cmocka_unit_test(test_plan_api_and_explain),
        cmocka_unit_test(test_includes),
        cmocka_unit_test(test_yara_check_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
