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
#include <yara.h>

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
    /* alternatives of different lengths: one sequence per path */
    PLAN_IS("rule a { strings: $a = { 41 (42 | 43 43) 44 } condition: $a }",
            "OR(\"ABD\", \"ACCD\")");
    PLAN_IS("rule a { strings: $a = { 4D 5A ( 41 42 | 43 44 45 ) 90 90 } condition: $a }",
            "OR(\"MZAB\" 90 90, \"MZCDE\" 90 90)");
    PLAN_IS("rule a { strings: $a = { 41 ( 42 | 43 ( 44 | 45 45 ) ) 46 } condition: $a }",
            "OR(\"ABF\", \"ACDF\", \"ACEEF\")");
    /* a variable jump inside an alternative: that branch is an AND; the
     * junctions with the neighbours keep the union of the first/last bytes */
    PLAN_IS("rule a { strings: $a = { 41 42 ( 43 | 44 [2-3] 45 ) 46 47 } condition: $a }",
            "AND(OR(\"C\", AND(\"D\", \"E\")), \"AB\" {43,44}, {43,45}\"FG\")");
    /* fixed jumps stay inside the sequences */
    PLAN_IS("rule a { strings: $a = { 6A 40 ( 6A 14 | 68 ?? 00 ) [2] E8 } condition: $a }",
            "OR(\"j@j\" 14 ?? ?? e8, \"j@h\" ?? 00 ?? ?? e8)");
    /* groups of one alternative are valid in libyara 4.2.3, nested too */
    PLAN_IS("rule a { strings: $a = { ((BB)|(68)) ?? 02 00 00 } condition: $a }",
            "{68,bb} ?? 02 00 00");
    PLAN_IS("rule a { strings: $a = { 41 (42) ((43 44)) } condition: $a }", "\"ABCD\"");
    /* ...with the limits of alternation inside them, as libyara */
    parse_fails("rule a { strings: $a = { (BB [1-300] 02) 02 } condition: $a }",
                "t.yar:1:");
    parse_fails("rule a { strings: $a = { (BB [2-3]) 02 } condition: $a }", "t.yar:1:");
    parse_fails("rule a { strings: $a = { () 02 } condition: $a }", "t.yar:1:");
    parse_fails("rule a { strings: $a = { (BB|) 02 } condition: $a }", "t.yar:1:");
}

static void test_regex(void **state)
{
    (void)state;
    PLAN_IS("rule a { strings: $a = /abc.*def/ condition: $a }", "AND(\"abc\", \"def\")");
    PLAN_IS("rule a { strings: $a = /ab(c|d)e/ condition: $a }", "\"ab\" {63,64}\"e\"");
    PLAN_IS("rule a { strings: $a = /ab(c|de)f/ condition: $a }", "OR(\"abcf\", \"abdef\")");
    PLAN_IS("rule a { strings: $a = /Ab/i condition: $a }", "{41,61} {42,62}");
    PLAN_IS("rule a { strings: $a = /a+bc?d/ condition: $a }", "OR(\"abd\", \"abcd\")");
    PLAN_IS("rule a { strings: $a = /x{3}y/ condition: $a }", "\"xxxy\"");
    PLAN_IS("rule a { strings: $a = /abc|/ condition: $a }", "ALL");
    PLAN_IS("rule a { strings: $a = /ab/ wide condition: $a }", "\"a\" 00\"b\" 00");
}

/* Literal-set extraction: exact sets through concatenation, alternation and
 * bounded repeats; prefix/suffix sets and junctions around what is not exact. */
static void test_regex_literal_sets(void **state)
{
    (void)state;
    PLAN_IS("rule a { strings: $a = /(foobar|bazqux)[0-9]+end/ condition: $a }",
            "AND(OR(\"foobar\" {30,31,32,33,34,35,36,37,38,39}, \"bazqux\" {30,31,32,33,34,35,36,37,38,39}), "
            "{30,31,32,33,34,35,36,37,38,39}\"end\")");
    PLAN_IS("rule a { strings: $a = /(foo|barbaz)qux/ condition: $a }", "OR(\"fooqux\", \"barbazqux\")");
    PLAN_IS("rule a { strings: $a = /https?:\\/\\/(www\\.)?evil\\.(com|net)/ condition: $a }",
            "OR(\"http://evil.com\", \"http://evil.net\", \"http://www.evil.com\", \"http://www.evil.net\", "
            "\"https://evil.com\", \"https://evil.net\", \"https://www.evil.com\", \"https://www.evil.net\")");
    /* {2,4}: two copies start and end every match ("abcabcabcxw" holds "abcabcxw") */
    PLAN_IS("rule a { strings: $a = /(abc){2,4}x(yz)?w/ condition: $a }", "OR(\"abcabcxw\", \"abcabcxyzw\")");
    /* + keeps one copy, joined to what follows */
    PLAN_IS("rule a { strings: $a = /(foo|bar)+baz/ condition: $a }", "OR(\"foobaz\", \"barbaz\")");
    /* equal-length strings differing in one position merge without loss */
    PLAN_IS("rule a { strings: $a = /(a|b){3}x/ condition: $a }", "{61,62} {61,62} {61,62}\"x\"");
    PLAN_IS("rule a { strings: $a = /k(0|1|2|3|4|5|6|7|8|9)(0|1|2|3|4|5|6|7|8|9)z/ condition: $a }",
            "\"k\" {30,31,32,33,34,35,36,37,38,39} {30,31,32,33,34,35,36,37,38,39}\"z\"");
    /* optional and starred parts: the exact set includes the empty choice */
    PLAN_IS("rule a { strings: $a = /abc(de)?fgh/ condition: $a }", "OR(\"abcfgh\", \"abcdefgh\")");
    PLAN_IS("rule a { strings: $a = /abc(de)*fgh/ condition: $a }", "AND(\"abc\", \"fgh\")");
    PLAN_IS("rule a { strings: $a = /a(bc)*d|xyz?/ condition: $a }", "OR(AND(\"a\", \"d\"), \"xy\")");
    /* zero-width assertions and classes; a dot is any byte */
    PLAN_IS("rule a { strings: $a = /\\bfoo(\\s|\\d)bar$/ condition: $a }",
            "\"foo\" {09,0a,0b,0c,0d,20,30,31,32,33,34,35,36,37,38,39}\"bar\"");
    PLAN_IS("rule a { strings: $a = /ab.cd/s condition: $a }", "\"ab\" ??\"cd\"");
    PLAN_IS("rule a { strings: $a = /ab.cd/ condition: $a }", "\"ab\" ??\"cd\"");
    /* nocase folds every literal of the set */
    PLAN_IS("rule a { strings: $a = /(ab|xyz)!/i condition: $a }",
            "OR({41,61} {42,62}\"!\", {58,78} {59,79} {5a,7a}\"!\")");
    PLAN_IS("rule a { strings: $a = /(ab|c)d/ nocase condition: $a }",
            "OR({41,61} {42,62} {44,64}, {43,63} {44,64})");
    /* wide: both readings, the zero after each character */
    PLAN_IS("rule a { strings: $a = /ab(c|de)/ wide ascii condition: $a }",
            "OR(\"abc\", \"abde\", \"a\" 00\"b\" 00\"c\" 00, \"a\" 00\"b\" 00\"d\" 00\"e\" 00)");
    /* a variable repeat of a wide class is not enumerated */
    PLAN_IS("rule a { strings: $a = /del [a-z]{2,8}\\.tmp/ condition: $a }",
            "AND(\"del \" {61,62,63,64,65,66,67,68,69,6a,6b,6c,6d,6e,6f,70,71,72,73,74,75,76,77,78,79,7a} "
            "{61,62,63,64,65,66,67,68,69,6a,6b,6c,6d,6e,6f,70,71,72,73,74,75,76,77,78,79,7a}, "
            "{61,62,63,64,65,66,67,68,69,6a,6b,6c,6d,6e,6f,70,71,72,73,74,75,76,77,78,79,7a} "
            "{61,62,63,64,65,66,67,68,69,6a,6b,6c,6d,6e,6f,70,71,72,73,74,75,76,77,78,79,7a}\".tmp\")");
    /* a long fixed repeat: its first and last copies bound the junctions */
    PLAN_IS("rule a { strings: $a = /ab{100}c/ condition: $a }",
            "AND(\"abbbbbbbbbbbbbbbb\", \"bbbbbbbbbbbbbbbbc\")");
}

/* Past the set budget: the OR of the branches stays exact, the sets that
 * join them to their neighbours are merged position-wise. */
static void test_regex_budget(void **state)
{
    (void)state;
    tr_buf src = {0};
    tr_buf_printf(&src, "rule a { strings: $a = /(");
    for (int i = 0; i < 80; i++)
        tr_buf_printf(&src, "%s%c%c%c", i ? "|" : "", 'a' + i % 26, 'a' + (i * 7 + i / 26) % 26,
                      'a' + (i * 11 + 3 * (i / 26)) % 26);
    tr_buf_printf(&src, ")xyz/ condition: $a }");
    tr_buf_append(&src, "", 1);
    char *got = plan_of(src.data);
    assert_true(strncmp(got, "AND(OR(\"aaa\", ", 13) == 0);
    assert_non_null(strstr(got, "\"xyz\")"));
    free(got);
    tr_buf_free(&src);
    /* far beyond every budget the string still plans to something sound */
    tr_buf big = {0};
    tr_buf_printf(&big, "rule a { strings: $a = /");
    for (int i = 0; i < 12; i++)
        tr_buf_printf(&big, "(a|b|c|d|e)(f|g|h|i|j)");
    tr_buf_printf(&big, "/ condition: $a }");
    tr_buf_append(&big, "", 1);
    got = plan_of(big.data);
    assert_true(strcmp(got, "ALL") != 0);
    free(got);
    tr_buf_free(&big);
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
         "AND(SIZE(0..99), AT(0, \"MZ\"), \"aaa\", \"bbb\", \"ccc\")");
    COND("$a or filesize > 10 or ($b and $c)", "OR(\"aaa\", SIZE(11..), AND(\"bbb\", \"ccc\"))");
    COND("all of them or uint32(filesize - 4) > 10", "ALL");
    COND("false and $a and $b and $c", "NONE");
    COND("none of them or all of them", "ALL");
#undef COND
}

/* Conditions that read the file: a 32-bit read equal to a constant implies
 * the constant's bytes; a PE section name equal to a literal implies the
 * literal. Anything weaker (other widths, !=, not, other module fields)
 * implies nothing. */
static void test_condition_implied_literals(void **state)
{
    (void)state;
    PLAN_IS("rule a { condition: uint32(0) == 0x464c457f }", "AND(AT(0, 7f\"ELF\"), 7f\"ELF\")");
    PLAN_IS("rule a { condition: 0x7f454c46 == uint32be(0) }", "AND(AT(0, 7f\"ELF\"), 7f\"ELF\")");
    PLAN_IS("rule a { condition: int32(4) == -2 }", "AND(AT(4, fe ff ff ff), fe ff ff ff)");
    PLAN_IS("rule a { condition: uint8(filesize - 1) == 0 and int16be(2) == -2 }",
            "AT(2, ff fe)");
    PLAN_IS("rule a { condition: filesize < 1KB and 10 <= filesize }", "AND(SIZE(0..1023), SIZE(10..))");
    PLAN_IS("rule a { condition: filesize == 5 or filesize > 100 }", "OR(SIZE(5..5), SIZE(101..))");
    PLAN_IS("rule a { condition: filesize < 0 }", "NONE");
    PLAN_IS("rule a { condition: filesize != 5 }", "ALL");
    PLAN_IS("rule a { condition: not (filesize < 5) }", "ALL");
    PLAN_IS("rule a { strings: $mz = { 4D 5A } condition: for any i in (1..#mz) : "
            "(uint32(@mz[i] + uint32(@mz[i] + 0x3C)) == 0x00004550) }",
            "\"PE\" 00 00");
    PLAN_IS("rule a { strings: $a = \"aaa\" condition: $a or uint32(0) == 0x04034b50 }",
            "OR(\"aaa\", AND(AT(0, \"PK\" 03 04), \"PK\" 03 04))");
    PLAN_IS("rule a { condition: uint16(0) == 0x5a4d }", "AT(0, \"MZ\")");
    PLAN_IS("rule a { condition: uint16(filesize - 2) == 0x5a4d }", "ALL");
    PLAN_IS("rule a { condition: uint32(0) != 0x464c457f }", "ALL");
    PLAN_IS("rule a { condition: not (uint32(0) == 0x464c457f) }", "ALL");
    PLAN_IS("rule a { condition: uint32(0) == 0x1464c457f }", "ALL");
    PLAN_IS("rule a { condition: uint32(0) > 0x464c457f }", "ALL");
    PLAN_IS("import \"pe\" rule a { condition: for any i in (0..pe.number_of_sections - 1) : "
            "(pe.sections[i].name == \".cotx\") }",
            "AND(AT(0, \"MZ\"), \"PE\" 00 00, \".cotx\")");
    PLAN_IS("import \"pe\" rule a { condition: pe.sections[0].name == \"UPX0\" or "
            "pe.sections[1].name == \"UPX1\" }",
            "OR(AND(AT(0, \"MZ\"), \"PE\" 00 00, \"UPX0\"), AND(AT(0, \"MZ\"), \"PE\" 00 00, \"UPX1\"))");
    PLAN_IS("import \"pe\" rule a { condition: pe.sections[0].name != \".text\" }", "AND(AT(0, \"MZ\"), \"PE\" 00 00)");
    PLAN_IS("import \"pe\" rule a { condition: pe.sections[0].name == \"\" }", "AND(AT(0, \"MZ\"), \"PE\" 00 00)");
    /* Longer than a section header's 8 bytes can hold, so never equal: still
     * only a PE has sections to compare. */
    PLAN_IS("import \"pe\" rule a { condition: pe.sections[0].name == \".abcdefgh\" }", "AND(AT(0, \"MZ\"), \"PE\" 00 00)");
}

#define IS_PE "AND(AT(0, \"MZ\"), \"PE\" 00 00)"

/* Values only a PE defines make a rule need a PE; constants, pe.is_pe and
 * negations do not. */
static void test_pe_values_need_a_pe(void **state)
{
    (void)state;
    PLAN_IS("import \"pe\" rule a { condition: pe.exports(\"ServiceMain\") }", IS_PE);
    PLAN_IS("import \"pe\" rule a { condition: pe.dll_name == \"evil.dll\" }", IS_PE);
    PLAN_IS("import \"pe\" rule a { condition: pe.number_of_sections - 1 > 3 }", IS_PE);
    PLAN_IS("import \"pe\" rule a { condition: pe.version_info[\"CompanyName\"] contains \"x\" }",
            IS_PE);
    PLAN_IS("import \"pe\" rule a { condition: pe.exports(\"a\") or pe.imports(\"k.dll\", \"b\") }",
            "OR(" IS_PE ", " IS_PE ")");
    PLAN_IS("import \"pe\" rule a { condition: for any s in pe.sections : (s.name == \"x\") }", IS_PE);
    PLAN_IS("import \"pe\" rule a { strings: $a = \"abcd\" condition: $a or pe.is_dll() }",
            "OR(\"abcd\", " IS_PE ")");
    PLAN_IS("import \"pe\" rule a { condition: pe.is_pe }", "ALL");
    PLAN_IS("import \"pe\" rule a { condition: pe.machine == pe.MACHINE_I386 or "
            "pe.MACHINE_AMD64 == 0x8664 }", "ALL");
    PLAN_IS("import \"pe\" rule a { condition: not pe.exports(\"a\") }", "ALL");
    PLAN_IS("import \"pe\" rule a { condition: for all s in pe.sections : (s.name == \"x\") }", "ALL");
    PLAN_IS("import \"pe\" rule a { condition: pe.exports(\"a\") or filesize > 10 }",
            "OR(" IS_PE ", SIZE(11..))");
}

/* Each name the planner takes as PE-only, asked of the linked libyara: an
 * expression on it is undefined ((X) == (X) is not true) on files that are
 * not PEs, including ones that start with "MZ". */
static const struct { const char *field, *expr; } pe_exprs[] = {
    {"base_of_code", "pe.base_of_code"}, {"base_of_data", "pe.base_of_data"},
    {"calculate_checksum", "pe.calculate_checksum()"}, {"characteristics", "pe.characteristics"},
    {"checksum", "pe.checksum"}, {"data_directories", "pe.data_directories[1].virtual_address"},
    {"dll_characteristics", "pe.dll_characteristics"}, {"dll_name", "pe.dll_name"},
    {"entry_point", "pe.entry_point"}, {"entry_point_raw", "pe.entry_point_raw"},
    {"export_details", "pe.export_details[0].name"}, {"export_timestamp", "pe.export_timestamp"},
    {"exports", "pe.exports(\"a\")"}, {"exports", "pe.exports(1)"},
    {"exports", "pe.exports(/a/)"}, {"exports_index", "pe.exports_index(\"a\")"},
    {"file_alignment", "pe.file_alignment"}, {"image_base", "pe.image_base"},
    {"image_version", "pe.image_version.major"}, {"imphash", "pe.imphash()"},
    {"import_details", "pe.import_details[0].library_name"},
    {"imports", "pe.imports(\"k.dll\", \"a\")"}, {"imports", "pe.imports(\"k.dll\")"},
    {"imports", "pe.imports(\"k.dll\", 1)"}, {"imports", "pe.imports(/k/, /a/)"},
    {"is_32bit", "pe.is_32bit()"}, {"is_64bit", "pe.is_64bit()"}, {"is_dll", "pe.is_dll()"},
    {"language", "pe.language(9)"}, {"linker_version", "pe.linker_version.minor"},
    {"loader_flags", "pe.loader_flags"}, {"locale", "pe.locale(0x409)"}, {"machine", "pe.machine"},
    {"number_of_exports", "pe.number_of_exports"},
    {"number_of_imported_functions", "pe.number_of_imported_functions"},
    {"number_of_imports", "pe.number_of_imports"}, {"number_of_resources", "pe.number_of_resources"},
    {"number_of_rva_and_sizes", "pe.number_of_rva_and_sizes"},
    {"number_of_sections", "pe.number_of_sections"},
    {"number_of_signatures", "pe.number_of_signatures"}, {"number_of_symbols", "pe.number_of_symbols"},
    {"opthdr_magic", "pe.opthdr_magic"}, {"os_version", "pe.os_version.major"},
    {"overlay", "pe.overlay.offset"}, {"overlay", "pe.overlay.size"}, {"pdb_path", "pe.pdb_path"},
    {"pointer_to_symbol_table", "pe.pointer_to_symbol_table"},
    {"resource_timestamp", "pe.resource_timestamp"}, {"resources", "pe.resources[0].type"},
    {"rich_signature", "pe.rich_signature.length"}, {"rich_signature", "pe.rich_signature.clear_data"},
    {"rich_signature", "pe.rich_signature.version(1)"}, {"rich_signature", "pe.rich_signature.toolid(1)"},
    {"rva_to_offset", "pe.rva_to_offset(0)"}, {"section_alignment", "pe.section_alignment"},
    {"section_index", "pe.section_index(\".text\")"}, {"section_index", "pe.section_index(0)"},
    {"sections", "pe.sections[0].name"}, {"sections", "pe.sections[0].raw_data_size"},
    {"signatures", "pe.signatures[0].issuer"}, {"size_of_code", "pe.size_of_code"},
    {"size_of_headers", "pe.size_of_headers"}, {"size_of_heap_commit", "pe.size_of_heap_commit"},
    {"size_of_heap_reserve", "pe.size_of_heap_reserve"}, {"size_of_image", "pe.size_of_image"},
    {"size_of_initialized_data", "pe.size_of_initialized_data"},
    {"size_of_optional_header", "pe.size_of_optional_header"},
    {"size_of_stack_commit", "pe.size_of_stack_commit"},
    {"size_of_stack_reserve", "pe.size_of_stack_reserve"},
    {"size_of_uninitialized_data", "pe.size_of_uninitialized_data"}, {"subsystem", "pe.subsystem"},
    {"subsystem_version", "pe.subsystem_version.minor"}, {"timestamp", "pe.timestamp"},
    {"version_info", "pe.version_info[\"CompanyName\"]"},
    {"version_info_list", "pe.version_info_list[0].key"},
    {"win32_version_value", "pe.win32_version_value"},
};

static int count_matches(YR_SCAN_CONTEXT *ctx, int message, void *data, void *user)
{
    (void)ctx;
    (void)data;
    if (message == CALLBACK_MSG_RULE_MATCHING)
        (*(int *)user)++;
    return CALLBACK_CONTINUE;
}

static void test_pe_only_fields_are_undefined_elsewhere(void **state)
{
    (void)state;
    size_t n;
    const char *const *names = tr_plan_pe_only_fields(&n);
    for (size_t i = 0; i + 1 < n; i++)
        assert_true(strcmp(names[i], names[i + 1]) < 0);   /* bsearch needs it */
    for (size_t i = 0; i < n; i++) {
        bool tested = false;
        for (size_t k = 0; k < sizeof pe_exprs / sizeof *pe_exprs; k++)
            tested |= strcmp(pe_exprs[k].field, names[i]) == 0;
        if (!tested)
            printf("pe.%s is taken as PE-only but never asked of libyara\n", names[i]);
        assert_true(tested);
    }
    /* Not PEs: text, an ELF header, "MZ" whose e_lfanew points at no "PE\0\0",
     * and an empty file. */
    static unsigned char mz[512];
    memset(mz, 'A', sizeof mz);
    mz[0] = 'M';
    mz[1] = 'Z';
    mz[0x3c] = 0x80;
    mz[0x3d] = mz[0x3e] = mz[0x3f] = 0;
    memcpy(mz + 0x80, "PX\0\0", 4);
    static const unsigned char elf[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
    const struct { const unsigned char *p; size_t n; } files[] = {
        {(const unsigned char *)"hello, world, not a PE at all", 29}, {elf, sizeof elf},
        {mz, sizeof mz}, {(const unsigned char *)"", 0}};
    assert_int_equal(yr_initialize(), ERROR_SUCCESS);
    for (size_t k = 0; k < sizeof pe_exprs / sizeof *pe_exprs; k++) {
        char src[512];
        snprintf(src, sizeof src, "import \"pe\" rule d { condition: (%s) == (%s) }",
                 pe_exprs[k].expr, pe_exprs[k].expr);
        YR_COMPILER *cc = NULL;
        assert_int_equal(yr_compiler_create(&cc), ERROR_SUCCESS);
        int errors = yr_compiler_add_string(cc, src, NULL);
        if (errors)
            printf("libyara does not compile: %s\n", src);
        assert_int_equal(errors, 0);
        YR_RULES *rules = NULL;
        assert_int_equal(yr_compiler_get_rules(cc, &rules), ERROR_SUCCESS);
        for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
            int hits = 0;
            assert_int_equal(yr_rules_scan_mem(rules, files[f].p, files[f].n, 0, count_matches,
                                               &hits, 10), ERROR_SUCCESS);
            if (hits)
                printf("defined on a file that is not a PE (#%zu): %s\n", f, pe_exprs[k].expr);
            assert_int_equal(hits, 0);
        }
        yr_rules_destroy(rules);
        yr_compiler_destroy(cc);
    }
    yr_finalize();
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
    assert_non_null(strstr(b.data, "$a: regex /a.{0,3}b/, AND of 2 pieces -> no usable run of >= 3 bytes -> all"));
    assert_non_null(strstr(b.data, "this rule scans every file"));
    assert_non_null(strstr(b.data, "$a: nocase text, 5 bytes"));
    tr_buf_free(&b);
    tr_plan_free(p);
    tr_ruleset_free(rs);

    assert_int_equal(tr_rules_parse_string("t.yar",
        "rule r { strings: $a = /(foobar|bazqux)end/ $b = { 41 42 43 ( 44 | 45 46 ) } "
        "$c = /(abc|abd)x+y/ condition: all of them }", &rs, &err), 0);
    assert_int_equal(tr_plan_build(rs, &p, &err), 0);
    assert_string_equal(tr_plan_string_note(p, 0, 0),
                        "$a: regex /(foobar|bazqux)end/, OR of 2 literals -> 19 positions");
    assert_string_equal(tr_plan_string_note(p, 0, 1), "$b: hex string, OR of 2 literals -> 10 positions");
    assert_string_equal(tr_plan_string_note(p, 0, 2),
                        "$c: regex /(abc|abd)x+y/, AND of 2 pieces -> 7 positions");
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
    assert_int_equal(tr_rules_parse_file(path, NULL, &rs, &err), 0);
    assert_int_equal(tr_ruleset_count(rs), 2);
    tr_ruleset_free(rs);
    tr_rules_options local = {.allow_includes = true};
    assert_int_equal(tr_rules_yara_check(path, NULL, &local, &err), 0);

    /* Inlined: the stored text needs no file and is the same rule set. */
    char *text = NULL, *flat = NULL;
    size_t len = 0;
    assert_int_equal(tr_read_file(path, &text, &len, &err), 0);
    tr_rules_text src = {path, text, len};
    assert_int_equal(tr_rules_parse_many(&src, 1, &local, &flat, &rs, &err), 0);
    tr_ruleset_free(rs);
    assert_null(strstr(flat, "include \""));
    assert_non_null(strstr(flat, "rule inc"));
    assert_int_equal(tr_rules_parse_string("flat.yar", flat, &rs, &err), 0);
    assert_int_equal(tr_ruleset_count(rs), 2);
    tr_ruleset_free(rs);
    free(flat);
    free(text);

    /* Text from elsewhere (the network): an include anywhere is refused
     * before any path is looked at, whether it exists or not. */
    const char *remote[] = {
        "include \"/etc/passwd\"\nrule a { condition: true }",
        "rule a { condition: true } include \"/etc/shadow\"",
        "rule a { condition: true }\n  /* x */ include \"/dev/zero\"",
        "rule a { condition: true }\ninclude \"/nonexistent/x.yar\"",
    };
    for (size_t i = 0; i < sizeof remote / sizeof *remote; i++) {
        assert_int_equal(tr_rules_parse_string("remote.yar", remote[i], &rs, &err), -1);
        assert_non_null(strstr(err.msg, "include is not allowed"));
        assert_null(strstr(err.msg, "No such file"));
    }
    assert_int_equal(tr_rules_yara_check("remote.yar", remote[0], NULL, &err), -1);
    assert_non_null(strstr(err.msg, "includes are disabled"));
    /* In a comment it is no include. */
    assert_int_equal(tr_rules_parse_string("c.yar", "// include \"/etc/passwd\"\nrule a { condition: true }",
                                           &rs, &err), 0);
    tr_ruleset_free(rs);

    /* A local include must be a regular file: a device is never read. */
    const char *dev = "include \"/dev/zero\"\nrule a { condition: true }";
    assert_int_equal(tr_rules_parse_opts("local.yar", dev, strlen(dev), &local, &rs, &err), -1);
    assert_non_null(strstr(err.msg, "not a regular file"));
    /* a loop */
    f = fopen(sub, "w");
    fputs("include \"main.yar\"\n", f);
    fclose(f);
    assert_int_equal(tr_rules_parse_file(path, NULL, &rs, &err), -1);
    assert_non_null(strstr(err.msg, "include loop"));
    unlink(sub);
    unlink(path);
    rmdir(dir);
}

static void test_yara_check_message(void **state)
{
    (void)state;
    tr_error err;
    assert_int_equal(tr_rules_yara_check("x.yar", "rule a { condition: true }", NULL, &err), 0);
    assert_int_equal(tr_rules_yara_check("x.yar", "rule a { condition: b }", NULL, &err), -1);
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
        cmocka_unit_test(test_regex_literal_sets),
        cmocka_unit_test(test_regex_budget),
        cmocka_unit_test(test_conditions),
        cmocka_unit_test(test_condition_implied_literals),
        cmocka_unit_test(test_pe_values_need_a_pe),
        cmocka_unit_test(test_pe_only_fields_are_undefined_elsewhere),
        cmocka_unit_test(test_rule_references_and_globals),
        cmocka_unit_test(test_plan_api_and_explain),
        cmocka_unit_test(test_includes),
        cmocka_unit_test(test_yara_check_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
