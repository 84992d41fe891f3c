/* store: MalwareBazaar's per-sample fields, its JSON record and the bulk
 * exports (bazaar.c, sample_json.c, export.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/core.h"
#include "store/store.h"
#include "store_fixture.h"

static int setup(void **state)
{
    return store_fixture_setup(state, "test-bazaar");
}

static int teardown(void **state)
{
    return store_fixture_teardown(state);
}

static tr_sample *add(fixture *f, const char *bytes, const char *name, const char *reporter,
                      const char *comment)
{
    tr_staged st;
    tr_error err;
    assert_int_equal(tr_store_stage_buffer(f->s, f->an, bytes, strlen(bytes), &st, &err), 0);
    tr_ingest_meta m = {.file_name = name, .reporter = reporter, .comment = comment, .origin = "DE"};
    tr_ingest_result r;
    if (tr_store_commit(f->s, &st, &m, 1, &r, &err) != 0)
        fail_msg("%s", err.msg);
    tr_sample *x = NULL;
    assert_int_equal(tr_store_get_by_id(f->s, r.id, &x, &err), 1);
    return x;
}

static void test_fields_default_count_set_and_go_with_the_sample(void **state)
{
    fixture *f = *state;
    tr_sample *x = add(f, "bazaar one", "one.bin", "alice", NULL);
    tr_sample_bazaar bz;
    tr_error err;
    assert_int_equal(tr_store_bazaar_get(f->s, x->id, &bz, &err), 0);
    assert_false(bz.anonymous);
    assert_int_equal(bz.downloads, 0);
    assert_null(bz.references);
    assert_int_equal(tr_store_bazaar_count(f->s, x->id, true, &err), 0);
    assert_int_equal(tr_store_bazaar_count(f->s, x->id, true, &err), 0);
    assert_int_equal(tr_store_bazaar_count(f->s, x->id, false, &err), 0);
    assert_int_equal(tr_store_bazaar_set(f->s, x->id, 1, "bob", "{\"urlhaus\":\"https://u/\"}", NULL,
                                         &err),
                     0);
    /* NULL and -1 leave what is there. */
    assert_int_equal(tr_store_bazaar_set(f->s, x->id, -1, NULL, NULL, "{\"dropping_md5\":\"x\"}", &err),
                     0);
    assert_int_equal(tr_store_bazaar_get(f->s, x->id, &bz, &err), 0);
    assert_true(bz.anonymous);
    assert_string_equal(bz.owner, "bob");
    assert_int_equal(bz.downloads, 2);
    assert_int_equal(bz.uploads, 1);
    assert_string_equal(bz.references, "{\"urlhaus\":\"https://u/\"}");
    assert_string_equal(bz.context, "{\"dropping_md5\":\"x\"}");
    tr_sample_bazaar_clear(&bz);

    /* A removed sample's row goes with it: the same bytes again start afresh. */
    int64_t removed;
    assert_int_equal(tr_store_remove(f->s, x->d.sha256, &removed, &err), 1);
    tr_sample_free(x);
    x = add(f, "bazaar one", "one.bin", "alice", NULL);
    assert_int_equal(tr_store_bazaar_get(f->s, x->id, &bz, &err), 0);
    assert_false(bz.anonymous);
    assert_null(bz.owner);
    assert_int_equal(bz.downloads, 0);
    tr_sample_bazaar_clear(&bz);
    tr_sample_free(x);
}

static void test_record_has_bazaar_defaults_and_extra_values(void **state)
{
    fixture *f = *state;
    tr_sample *x = add(f, "bazaar two", "two.bin", "alice", "first words");
    tr_sample_bazaar bz = {.downloads = 3, .uploads = 2};
    json_t *extra = json_pack("{s:s, s:[{s:s}], s:s}", "telfhash", "t1abc", "code_sign", "serial",
                              "01", "clamav", "Win.Test");
    json_t *o = tr_sample_to_bazaar_json(x, &bz, extra, true);
    assert_string_equal(json_string_value(json_object_get(o, "telfhash")), "t1abc");
    assert_int_equal(json_array_size(json_object_get(o, "code_sign")), 1);
    assert_true(json_is_null(json_object_get(o, "gimphash")));
    assert_true(json_is_object(json_object_get(o, "vendor_intel")));
    assert_int_equal(json_array_size(json_object_get(o, "ole_information")), 0);
    assert_true(json_is_array(json_object_get(o, "ole_information")));
    json_t *intel = json_object_get(o, "intelligence");
    assert_string_equal(json_string_value(json_object_get(intel, "clamav")), "Win.Test");
    assert_string_equal(json_string_value(json_object_get(intel, "downloads")), "3");
    assert_string_equal(json_string_value(json_object_get(intel, "uploads")), "2");
    assert_true(json_is_null(json_object_get(intel, "mail")));
    assert_string_equal(json_string_value(json_object_get(o, "origin_country")), "DE");
    assert_string_equal(json_string_value(json_object_get(o, "reporter")), "alice");
    json_t *c = json_array_get(json_object_get(o, "comments"), 0);
    assert_true(json_is_string(json_object_get(c, "id")));
    assert_string_equal(json_string_value(json_object_get(c, "display_name")), "alice");
    assert_string_equal(json_string_value(json_object_get(c, "comment")), "first words");
    json_decref(o);

    /* Anonymous: neither the reporter nor a comment by the owner shows. */
    tr_sample_bazaar anon = {.anonymous = true, .owner = "alice"};
    o = tr_sample_to_bazaar_json(x, &anon, NULL, true);
    assert_string_equal(json_string_value(json_object_get(o, "reporter")), "anonymous");
    c = json_array_get(json_object_get(o, "comments"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "display_name")), "anonymous");
    char *text = json_dumps(o, 0);
    assert_null(strstr(text, "alice"));
    free(text);
    json_decref(o);

    /* A list record: the list fields, not get_info's. */
    o = tr_sample_to_bazaar_json(x, NULL, NULL, false);
    assert_non_null(json_object_get(o, "dhash_icon"));
    assert_non_null(json_object_get(o, "intelligence"));
    assert_null(json_object_get(o, "comments"));
    assert_null(json_object_get(o, "vendor_intel"));
    json_decref(o);
    json_decref(extra);
    tr_sample_free(x);
}

static void test_exports(void **state)
{
    fixture *f = *state;
    tr_sample *a = add(f, "export a", "a,\"q\".bin", "alice", NULL);
    tr_sample *b = add(f, "export b", "b.bin", NULL, NULL);
    tr_error err;
    tr_buf out = {0};
    assert_int_equal(tr_store_export(f->s, TR_EXPORT_SHA256, true, tr_now_unix(), &out, &err), 0);
    char *want = tr_xasprintf("# sha256_hash\n%s\n%s\n# Number of entries: 2\n", b->d.sha256, a->d.sha256);
    assert_non_null(strstr(out.data, want));
    assert_true(strncmp(out.data, "####", 4) == 0);
    free(want);
    tr_buf_free(&out);

    /* Far in the future, nothing is recent; the full export still has both. */
    int64_t later = tr_now_unix() + 49 * 3600;
    assert_int_equal(tr_store_export(f->s, TR_EXPORT_MD5, true, later, &out, &err), 0);
    assert_null(strstr(out.data, a->d.md5));
    tr_buf_free(&out);
    assert_int_equal(tr_store_export(f->s, TR_EXPORT_MD5, false, later, &out, &err), 0);
    assert_non_null(strstr(out.data, a->d.md5));
    tr_buf_free(&out);

    assert_int_equal(tr_store_export(f->s, TR_EXPORT_CSV, false, tr_now_unix(), &out, &err), 0);
    /* Quotes doubled, empty values n/a, one line per sample. */
    assert_non_null(strstr(out.data, "\"a,\"\"q\"\".bin\""));
    char *row = tr_xasprintf("\"%s\", \"%s\", \"%s\", \"n/a\"", b->d.sha256, b->d.md5, b->d.sha1);
    assert_non_null(strstr(out.data, row));
    free(row);
    tr_buf_free(&out);

    assert_int_equal(tr_export_format_parse("sha1"), TR_EXPORT_SHA1);
    assert_int_equal(tr_export_format_parse("xml"), -1);

    tr_zip_entry *day = NULL;
    size_t n = 0;
    int64_t start = a->first_seen - a->first_seen % 86400;
    assert_int_equal(tr_store_day_zip(f->s, start, &day, &n, &err), 0);
    assert_true(n >= 1);         /* both, unless they straddled midnight */
    /* Named sha256.filetype as Bazaar names them, read from the blob. */
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(strncmp(day[i].name, day[i].path + strlen(day[i].path) - 64, 64), 0);
        assert_true(strlen(day[i].name) == 64 || day[i].name[64] == '.');
        assert_int_equal(access(day[i].path, R_OK), 0);
    }
    tr_store_zip_entries_free(day, n);
    assert_int_equal(tr_store_day_zip(f->s, start + 86400 * 2, &day, &n, &err), 0);
    assert_int_equal(n, 0);
    tr_store_zip_entries_free(day, n);
    assert_int_equal(tr_store_day_zip(f->s, start - 86400, &day, &n, &err), 0);
    assert_int_equal(n, 0);
    tr_store_zip_entries_free(day, n);
    tr_sample_free(a);
    tr_sample_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fields_default_count_set_and_go_with_the_sample, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_record_has_bazaar_defaults_and_extra_values, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_exports, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
