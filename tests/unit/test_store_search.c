/* store: what the web UI's samples list asks of it: counts that ignore the
 * page, sort orders with stable pages, file-name substrings (LIKE's wildcards
 * literal), hash prefixes of any of the three hashes, reporter and
 * first-seen ranges; and the record of a signature a duplicate replaced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "store/store.h"
#include "store_fixture.h"

static int setup(void **state)
{
    return store_fixture_setup(state, "test-search");
}

static int teardown(void **state)
{
    return store_fixture_teardown(state);
}

static tr_ingest_result add(fixture *f, const char *bytes, const char *name, const char *sig,
                            const char *reporter)
{
    tr_staged st;
    tr_error err;
    assert_int_equal(tr_store_stage_buffer(f->s, f->an, bytes, strlen(bytes), &st, &err), 0);
    tr_ingest_meta m = {.file_name = name, .signature = sig, .reporter = reporter};
    tr_ingest_result r;
    assert_int_equal(tr_store_commit(f->s, &st, &m, 1, &r, &err), 0);
    return r;
}

static int64_t count(fixture *f, const tr_sample_filter *flt)
{
    int64_t n = -1;
    tr_error err;
    assert_int_equal(tr_store_count(f->s, flt, &n, &err), 0);
    return n;
}

static void test_count_sort_and_pages(void **state)
{
    fixture *f = *state;
    const char *bodies[] = {"ccc", "a", "bbbbb", "dddd", "ee"};
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%d.bin", i);
        add(f, bodies[i], name, i % 2 ? "Odd" : "Even", NULL);
    }
    tr_sample_filter all = {.limit = 2};
    assert_int_equal(count(f, &all), 5);            /* limit and offset do not count */
    tr_sample_filter odd = {.signature = "odd", .limit = 1};
    assert_int_equal(count(f, &odd), 2);
    /* Size ascending, two a page: 1 2 | 3 4 | 5, no overlap, no gap. */
    uint64_t seen[5];
    size_t k = 0;
    for (int64_t off = 0; off < 5; off += 2) {
        tr_sample_filter pg = {.sort = TR_SORT_SIZE, .ascending = true, .limit = 2, .offset = off};
        tr_sample **list;
        size_t n;
        tr_error err;
        assert_int_equal(tr_store_list(f->s, &pg, &list, &n, &err), 0);
        for (size_t i = 0; i < n; i++)
            seen[k++] = list[i]->d.size;
        tr_sample_list_free(list, n);
    }
    assert_int_equal(k, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(seen[i], i + 1);
    tr_sample_sort s;
    assert_true(tr_sample_sort_parse("size", &s) && s == TR_SORT_SIZE);
    assert_true(tr_sample_sort_parse("newest", &s) && s == TR_SORT_NEWEST);
    assert_false(tr_sample_sort_parse("colour", &s));
}

static void test_name_hash_reporter_dates(void **state)
{
    fixture *f = *state;
    tr_ingest_result a = add(f, "first sample", "Invoice_2024.PDF.exe", NULL, "alice");
    add(f, "second sample", "100%_real.bin", NULL, "bob");
    add(f, "third sample", "readme.txt", NULL, NULL);
    tr_sample_filter byname = {.name = "invoice"};
    assert_int_equal(count(f, &byname), 1);
    tr_sample_filter pct = {.name = "%"};             /* a literal percent sign */
    assert_int_equal(count(f, &pct), 1);
    tr_sample_filter under = {.name = "_"};           /* a literal underscore */
    assert_int_equal(count(f, &under), 2);
    tr_sample *x = NULL;
    tr_error err;
    assert_int_equal(tr_store_get_by_id(f->s, a.id, &x, &err), 1);
    char up[16];
    for (int i = 0; i < 10; i++)
        up[i] = (char)(x->d.md5[i] >= 'a' ? x->d.md5[i] - 32 : x->d.md5[i]);
    up[10] = '\0';
    const char *prefixes[] = {x->d.sha256, x->d.sha1, up};
    for (int i = 0; i < 3; i++) {
        char p[16];
        snprintf(p, sizeof p, "%.10s", prefixes[i]);
        tr_sample_filter byhash = {.hash_prefix = p};
        assert_int_equal(count(f, &byhash), 1);
    }
    int64_t seen_at = x->first_seen;
    tr_sample_free(x);
    tr_sample_filter rep = {.reporter = "ALICE"};
    assert_int_equal(count(f, &rep), 1);
    tr_sample_filter window = {.first_seen_after = seen_at, .first_seen_before = seen_at + 3600};
    assert_int_equal(count(f, &window), 3);
    tr_sample_filter before = {.first_seen_before = seen_at - 86400};
    assert_int_equal(count(f, &before), 0);
}

static void test_replaced_signature_is_recorded(void **state)
{
    fixture *f = *state;
    tr_ingest_result a = add(f, "dup body", "d1", "OldFam", "alice");
    add(f, "dup body", "d2", "OldFam", "bob");         /* the same: nothing to record */
    add(f, "dup body", "d3", NULL, "bob");             /* none given: kept */
    add(f, "dup body", "d4", "NewFam", "carol");
    tr_sample *x = NULL;
    tr_error err;
    assert_int_equal(tr_store_get_by_id(f->s, a.id, &x, &err), 1);
    assert_string_equal(x->signature, "NewFam");
    tr_sample_change *c = NULL;
    size_t n = 0;
    assert_int_equal(tr_store_sample_changes(f->s, x->id, &c, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].field, "signature");
    assert_string_equal(c[0].old_value, "OldFam");
    assert_string_equal(c[0].new_value, "NewFam");
    assert_string_equal(c[0].reporter, "carol");
    tr_sample_changes_free(c, n);
    tr_sample_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_count_sort_and_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_hash_reporter_dates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replaced_signature_is_recorded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
