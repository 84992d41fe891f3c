/* gimphash on Go binaries built here (Debian's golang-go): for Linux (ELF)
 * and Windows (PE), symbols kept and stripped, trawl's pclntab reader and
 * rules against tests/unit/data/gimphash/reference.go, which reads the same
 * table with Go's own debug/gosym. Skipped when no Go toolchain is
 * installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "analysis/analysis.h"

#define DATA TRAWL_SOURCE_DIR "/tests/unit/data/gimphash"

static char *scratch;

static int setup(void **state)
{
    (void)state;
    scratch = fixture_scratch_dir("analysis-go");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return fixture_rm_rf(scratch);
}

static char *capture(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    tr_buf b = {0};
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, p)) > 0)
        tr_buf_append(&b, chunk, got);
    assert_int_equal(pclose(p), 0);
    tr_buf_append(&b, "", 1);
    return b.data;
}

static void go_build(const char *goos, const char *flags, const char *out, const char *src)
{
    char *cmd = tr_xasprintf("cd '%s' && GOOS=%s go build %s -o '%s' '%s' >/dev/null 2>&1",
                             scratch, goos, flags, out, src);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *q = text; (q = strstr(q, line)) != NULL; q += n)
        if ((q == text || q[-1] == '\n') && (q[n] == '\n' || q[n] == '\0'))
            return true;
    return false;
}

/* gimphash of one binary, checked against the reference; returns it. */
static char *check_binary(const char *ref, const char *bin)
{
    char *cmd = tr_xasprintf("'%s' '%s'", ref, bin);
    char *want = capture(cmd);
    free(cmd);
    /* Names one a line, then the digest. */
    char *last = want + strlen(want) - 1;
    assert_true(*last == '\n');
    *last = '\0';
    char *digest = strrchr(want, '\n');
    assert_non_null(digest);
    *digest++ = '\0';

    size_t n;
    unsigned char *p = fixture_read_file(bin, &n);
    char *names = NULL;
    assert_int_equal(tr_gimphash_names(p, n, &names), 1);
    assert_string_equal(names, want);
    /* The rules at work on the sample's own functions. */
    assert_true(has_line(names, "main.ProbeExported"));
    assert_true(has_line(names, "main.(*Widget).Exported"));
    assert_true(has_line(names, "strings.ToUpper"));
    assert_null(strstr(names, "probeUnexported"));
    assert_null(strstr(names, "hidden"));
    assert_null(strstr(names, "runtime."));
    char h[TR_SHA256_HEX];
    assert_int_equal(tr_gimphash(p, n, h), 1);
    assert_string_equal(h, digest);
    char *out = tr_xstrdup(h);
    free(names);
    free(p);
    free(want);
    return out;
}

static void test_gimphash_matches_gosym(void **state)
{
    (void)state;
    if (system("command -v go >/dev/null 2>&1") != 0) {
        printf("skipped: needs the Go toolchain (golang-go)\n");
        skip();
    }
    char *ref = tr_xasprintf("%s/ref", scratch);
    go_build("linux", "", ref, DATA "/reference.go");
    static const char *const goos[] = {"linux", "windows"};
    for (size_t i = 0; i < 2; i++) {
        char *bin = tr_xasprintf("%s/sample-%s", scratch, goos[i]);
        char *stripped = tr_xasprintf("%s/sample-%s-stripped", scratch, goos[i]);
        go_build(goos[i], "", bin, DATA "/sample.go");
        go_build(goos[i], "-ldflags='-s -w'", stripped, DATA "/sample.go");
        char *h = check_binary(ref, bin);
        /* Stripping drops the symbols the reference uses to find the table
         * in a PE, not the table: trawl still finds it, with the same hash. */
        size_t n;
        unsigned char *p = fixture_read_file(stripped, &n);
        char hs[TR_SHA256_HEX];
        assert_int_equal(tr_gimphash(p, n, hs), 1);
        assert_string_equal(hs, h);
        tr_binan *a = NULL;
        tr_error err;
        assert_int_equal(tr_binan_new(&a, &err), 0);
        tr_bin_info *b = tr_bin_analyze(a, p, n);
        assert_string_equal(b->gimphash, h);
        tr_bin_info_free(b);
        tr_binan_free(a);
        free(p);
        free(h);
        free(bin);
        free(stripped);
    }
    free(ref);
}

static void test_gimphash_not_go(void **state)
{
    (void)state;
    /* A header alone, with nothing behind it, is not a table. */
    static const unsigned char fake[] = "\xff Go buildinf:...."
                                        "\xf0\xff\xff\xff\x00\x00\x01\x08"
                                        "\x05\x00\x00\x00\x00\x00\x00\x00";
    char h[TR_SHA256_HEX];
    char *names = NULL;
    assert_int_equal(tr_gimphash_names(fake, sizeof fake, &names), 0);
    assert_null(names);
    assert_int_equal(tr_gimphash(fake, sizeof fake, h), 0);
    assert_string_equal(h, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gimphash_matches_gosym),
        cmocka_unit_test(test_gimphash_not_go),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
