/* Conformance of trawl's YARA parser with libyara 4.2.3: the same accept or
 * reject verdict on every public rule file and on every rule of YARA's own
 * test suite. Verdicts are re-derived from libyara at test time. */
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

#include "fixture.h"
#include "rules/rules.h"

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
        if (n > e && strcmp(path + n - e, exts[i]) == 0) {
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

static void silent(int level, const char *file, int line, const YR_RULE *rule, const char *msg, void *user)
{
    (void)level, (void)file, (void)line, (void)rule, (void)msg, (void)user;
}

/* libyara's verdict: 0 compiles, else the first error code. */
static int yara_verdict_file(const char *path)
{
    YR_COMPILER *c;
    assert_int_equal(yr_compiler_create(&c), ERROR_SUCCESS);
    yr_compiler_set_callback(c, silent, NULL);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = yr_compiler_add_file(c, f, NULL, path);
    fclose(f);
    yr_compiler_destroy(c);
    return n;
}

static void test_public_rule_files(void **state)
{
    (void)state;
    FIXTURE_NEED_SHARED("/data/rules");
    assert_int_equal(nftw(TRAWL_SHARED_DIR "/data/rules", collect, 16, FTW_PHYS), 0);
    qsort(files, nfiles, sizeof *files, cmpstr);
    assert_true(nfiles > 900);
    size_t y_acc = 0, y_rej = 0, t_acc = 0, t_rej = 0, mismatch = 0;
    for (size_t i = 0; i < nfiles; i++) {
        tr_ruleset *rs = NULL;
        tr_error err;
        int t = tr_rules_parse_file(files[i], NULL, &rs, &err);
        tr_ruleset_free(rs);
        int y = yara_verdict_file(files[i]);
        *(y ? &y_rej : &y_acc) += 1;
        *(t ? &t_rej : &t_acc) += 1;
        if ((t == 0) != (y == 0)) {
            mismatch++;
            printf("MISMATCH %s: yara %s, trawl %s\n", files[i], y ? "rejects" : "accepts",
                   t ? err.msg : "accepts");
        }
        free(files[i]);
    }
    free(files);
    printf("rule files: %zu; yara accepts %zu rejects %zu; trawl accepts %zu rejects %zu; "
           "mismatches %zu\n", nfiles, y_acc, y_rej, t_acc, t_rej, mismatch);
    assert_int_equal(mismatch, 0);
}

static const char *const case_externals[] = {"var_zero", "var_one", "var_true", "var_false"};

static int yara_verdict_text(const char *text)
{
    YR_COMPILER *c;
    assert_int_equal(yr_compiler_create(&c), ERROR_SUCCESS);
    yr_compiler_set_callback(c, silent, NULL);
    yr_compiler_define_integer_variable(c, "var_zero", 0);
    yr_compiler_define_integer_variable(c, "var_one", 1);
    yr_compiler_define_boolean_variable(c, "var_true", 1);
    yr_compiler_define_boolean_variable(c, "var_false", 0);
    int n = yr_compiler_add_string(c, text, NULL);
    yr_compiler_destroy(c);
    return n;
}

static void test_yara_suite_cases(void **state)
{
    (void)state;
    FIXTURE_NEED_SHARED("/data/yara-tests/cases.json");
    json_error_t jerr;
    json_t *root = json_load_file(TRAWL_SHARED_DIR "/data/yara-tests/cases.json", 0, &jerr);
    assert_non_null(root);
    json_t *cases = json_object_get(root, "cases");
    size_t i, mismatch = 0, checked = 0, errors_expected = 0;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *id = json_string_value(json_object_get(c, "id"));
        const char *kind = json_string_value(json_object_get(c, "kind"));
        const char *rule = json_string_value(json_object_get(c, "rule"));
        /* This one needs a compiler limit (1 string per rule) set through the API. */
        if (strcmp(id, "test-api.c:205") == 0)
            continue;
        bool expect_error = strcmp(kind, "compile_error") == 0 &&
                            json_integer_value(json_object_get(c, "error_code")) != 0;
        errors_expected += expect_error;
        int y = yara_verdict_text(rule);
        if ((y != 0) != expect_error)
            printf("NOTE %s: libyara verdict %d differs from the recorded expectation\n", id, y);
        tr_ruleset *rs = NULL;
        tr_error err;
        tr_rules_options o = {.externals = case_externals, .nexternals = 4};
        int t = tr_rules_parse_opts(id, rule, strlen(rule), &o, &rs, &err);
        tr_ruleset_free(rs);
        checked++;
        if ((t != 0) != (y != 0)) {
            mismatch++;
            printf("MISMATCH %s (%s): libyara %s, trawl %s\n  %s\n", id, kind,
                   y ? "rejects" : "accepts", t ? err.msg : "accepts", rule);
        }
    }
    printf("yara suite: %zu cases checked (%zu expected compile errors), mismatches %zu\n",
           checked, errors_expected, mismatch);
    json_decref(root);
    assert_int_equal(mismatch, 0);
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
        cmocka_unit_test(test_public_rule_files),
        cmocka_unit_test(test_yara_suite_cases),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
