/* ClamAV through libclamav with a signature database the test writes: a
 * hash signature (.hdb) for one file and a body signature (.ndb) for a
 * byte pattern; a file matching both reports both. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "analysis/analysis.h"

/* libclamav 1.4 loses a few small blocks while loading a database (inside
 * the library, with no trawl frame on the stack); LeakSanitizer is told so
 * rather than switched off. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libclamav.so\n";
}

static const char hashed[] = "a file that only its MD5 signature recognises\n";
static const char marked[] = "harmless text carrying TRAWL-CLAMAV-TEST-MARKER in the middle\n";

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void test_clamav(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/trawl-clamav-XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    char md5[TR_MD5_HEX];
    tr_md5_hex(hashed, strlen(hashed), md5);
    char *hdb = tr_xasprintf("%s/trawl.hdb", dir), *ndb = tr_xasprintf("%s/trawl.ndb", dir);
    char *line = tr_xasprintf("%s:%zu:Trawl.Test.Hashed\n", md5, strlen(hashed));
    write_text(hdb, line);
    free(line);
    tr_buf hex = {0};
    for (const char *c = "TRAWL-CLAMAV-TEST-MARKER"; *c; c++)
        tr_buf_printf(&hex, "%02x", (unsigned char)*c);
    tr_buf_append(&hex, "", 1);
    line = tr_xasprintf("Trawl.Test.Marker:0:*:%s\n", hex.data);
    write_text(ndb, line);
    free(line);
    tr_buf_free(&hex);

    tr_bin_info b = {0};
    assert_false(tr_clamav_enabled());
    assert_int_equal(tr_clamav_scan((const unsigned char *)marked, strlen(marked), &b), 0);
    assert_false(b.clamav_scanned);

    tr_error err;
    assert_int_not_equal(tr_clamav_configure("/nonexistent/clamav", &err), 0);
    assert_int_equal(tr_clamav_configure(dir, &err), 0);
    assert_true(tr_clamav_enabled());
    assert_int_not_equal(tr_clamav_configure("/tmp", &err), 0);

    tr_binan *a = NULL;
    assert_int_equal(tr_binan_new(&a, &err), 0);
    tr_bin_info *r = tr_bin_analyze(a, (const unsigned char *)marked, strlen(marked));
    assert_true(r->clamav_scanned);
    assert_int_equal(r->n_clamav, 1);
    assert_non_null(strstr(r->clamav[0], "Trawl.Test.Marker"));
    json_t *j = json_object();
    tr_bin_info_to_bazaar_json(r, j);
    json_t *names = json_object_get(json_object_get(j, "intelligence"), "clamav");
    assert_int_equal(json_array_size(names), 1);
    assert_string_equal(json_string_value(json_array_get(names, 0)), r->clamav[0]);
    json_decref(j);
    tr_bin_info_free(r);

    r = tr_bin_analyze(a, (const unsigned char *)hashed, strlen(hashed));
    assert_int_equal(r->n_clamav, 1);
    assert_non_null(strstr(r->clamav[0], "Trawl.Test.Hashed"));
    tr_bin_info_free(r);

    /* Both signatures on one file: both names. */
    char *both = tr_xasprintf("%s%s", marked, marked);
    r = tr_bin_analyze(a, (const unsigned char *)both, strlen(both));
    assert_int_equal(r->n_clamav, 1);     /* one signature, matched twice */
    tr_bin_info_free(r);
    free(both);

    r = tr_bin_analyze(a, (const unsigned char *)"clean bytes", 11);
    assert_true(r->clamav_scanned);
    assert_int_equal(r->n_clamav, 0);
    j = json_object();
    tr_bin_info_to_bazaar_json(r, j);
    assert_true(json_is_null(json_object_get(json_object_get(j, "intelligence"), "clamav")));
    json_decref(j);
    tr_bin_info_free(r);
    tr_binan_free(a);

    unlink(hdb);
    unlink(ndb);
    rmdir(dir);
    free(hdb);
    free(ndb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clamav),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
