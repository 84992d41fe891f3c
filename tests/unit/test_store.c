/* store: insert, dedup, lookups, filters, rm, fsck and its repairs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "store/store.h"
#include "store_fixture.h"

static int setup(void **state)
{
    return store_fixture_setup(state, "test-store");
}

static int teardown(void **state)
{
    return store_fixture_teardown(state);
}

static tr_ingest_result add(fixture *f, const char *bytes, size_t n, const char *name,
                            const char *tag, const char *signature)
{
    tr_staged st;
    tr_error err;
    assert_int_equal(tr_store_stage_buffer(f->s, f->an, bytes, n, &st, &err), 0);
    const char *tags[1] = {tag};
    tr_ingest_meta m = {.file_name = name, .tags = tags, .n_tags = tag ? 1 : 0,
                        .signature = signature};
    tr_ingest_result r;
    int rc = tr_store_commit(f->s, &st, &m, 1, &r, &err);
    if (rc != 0)
        fail_msg("%s", err.msg);
    return r;
}

static void test_insert_and_get(void **state)
{
    fixture *f = *state;
    tr_ingest_result r = add(f, "abc", 3, "abc.txt", "t1", "Fam");
    assert_true(r.is_new);
    assert_true(r.id > 0);
    tr_sample *x = NULL;
    tr_error err;
    const char *keys[] = {"900150983cd24fb0d6963f7d28e17f72",
                          "A9993E364706816ABA3E25717850C26C9CD0D89D",
                          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tr_store_get(f->s, keys[i], &x, &err), 1);
        assert_int_equal(x->id, r.id);
        assert_int_equal(x->d.size, 3);
        assert_string_equal(x->file_type, "txt");
        assert_int_equal(x->n_names, 1);
        assert_string_equal(x->names[0], "abc.txt");
        assert_int_equal(x->n_tags, 1);
        assert_string_equal(x->signature, "Fam");
        tr_sample_free(x);
    }
    assert_int_equal(tr_store_get(f->s, "00000000000000000000000000000000", &x, &err), 0);
    assert_int_equal(tr_store_get(f->s, "nothex", &x, &err), -1);
    /* The blob is in place, read-only, with the right bytes. */
    char *path = tr_store_blob_path(f->s, keys[2]);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0222, 0);
    assert_int_equal(st.st_size, 3);
    free(path);
}

static void test_dedup_merges(void **state)
{
    fixture *f = *state;
    tr_ingest_result a = add(f, "same bytes", 10, "one.bin", "red", NULL);
    tr_ingest_result b = add(f, "same bytes", 10, "two.bin", "blue", "Emotet");
    assert_true(a.is_new);
    assert_false(b.is_new);
    assert_int_equal(a.id, b.id);
    tr_sample *x = NULL;
    tr_error err;
    char sha[TR_SHA256_HEX];
    tr_sha256_hex("same bytes", 10, sha);
    assert_int_equal(tr_store_get(f->s, sha, &x, &err), 1);
    assert_int_equal(x->n_names, 2);
    assert_int_equal(x->n_tags, 2);
    assert_string_equal(x->signature, "Emotet");
    tr_sample_free(x);
    tr_store_stats st;
    assert_int_equal(tr_store_stats_get(f->s, &st, &err), 0);
    assert_int_equal(st.samples, 1);
}

/* Two copies of one file in one batch: one row, the second a duplicate. */
static void test_dedup_within_batch(void **state)
{
    fixture *f = *state;
    tr_staged st[3];
    tr_error err;
    assert_int_equal(tr_store_stage_buffer(f->s, f->an, "x1", 2, &st[0], &err), 0);
    assert_int_equal(tr_store_stage_buffer(f->s, f->an, "x2", 2, &st[1], &err), 0);
    assert_int_equal(tr_store_stage_buffer(f->s, f->an, "x1", 2, &st[2], &err), 0);
    tr_ingest_meta m[3] = {{.file_name = "a"}, {.file_name = "b"}, {.file_name = "c"}};
    tr_ingest_result r[3];
    assert_int_equal(tr_store_commit(f->s, st, m, 3, r, &err), 0);
    assert_true(r[0].is_new);
    assert_true(r[1].is_new);
    assert_false(r[2].is_new);
    assert_int_equal(r[0].id, r[2].id);
    assert_true(r[1].id > r[0].id);
}

static void test_list_filters(void **state)
{
    fixture *f = *state;
    add(f, "%PDF-1.4\n1 0 obj\n", 17, "a.pdf", "doc", "Fam1");
    add(f, "\x7f" "ELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00", 16, "e", "bin", "Fam2");
    add(f, "hello world\n", 12, "h.txt", "doc", NULL);
    tr_sample **list;
    size_t n;
    tr_error err;
    tr_sample_filter all = {0};
    assert_int_equal(tr_store_list(f->s, &all, &list, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(list[0]->names[0], "h.txt"); /* newest first */
    tr_sample_list_free(list, n);
    tr_sample_filter bytag = {.tag = "doc"};
    assert_int_equal(tr_store_list(f->s, &bytag, &list, &n, &err), 0);
    assert_int_equal(n, 2);
    tr_sample_list_free(list, n);
    tr_sample_filter bysig = {.signature = "fam1"};
    assert_int_equal(tr_store_list(f->s, &bysig, &list, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0]->file_type, "pdf");
    tr_sample_list_free(list, n);
    tr_sample_filter bytype = {.file_type = "elf"};
    assert_int_equal(tr_store_list(f->s, &bytype, &list, &n, &err), 0);
    assert_int_equal(n, 1);
    tr_sample_list_free(list, n);
    tr_sample_filter page = {.limit = 1, .offset = 1};
    assert_int_equal(tr_store_list(f->s, &page, &list, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0]->names[0], "e");
    tr_sample_list_free(list, n);
}

static void test_remove(void **state)
{
    fixture *f = *state;
    tr_ingest_result a = add(f, "to delete", 9, "d", NULL, NULL);
    char sha[TR_SHA256_HEX];
    tr_sha256_hex("to delete", 9, sha);
    char *path = tr_store_blob_path(f->s, sha);
    assert_int_equal(access(path, F_OK), 0);
    tr_error err;
    int64_t id = 0;
    assert_int_equal(tr_store_remove(f->s, sha, &id, &err), 1);
    assert_int_equal(id, a.id);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(tr_store_remove(f->s, sha, &id, &err), 0);
    /* Ids are never reused, so an index tombstone cannot hit a newcomer. */
    tr_ingest_result b = add(f, "newcomer", 8, "n", NULL, NULL);
    assert_true(b.id > a.id);
    free(path);
}

typedef struct seen_kinds {
    int count[4];
} seen_kinds;

static void count_kind(void *arg, tr_fsck_kind kind, const char *what, const char *action)
{
    (void)what;
    (void)action;
    ((seen_kinds *)arg)->count[kind]++;
}

static void write_file(const char *path, const char *bytes)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(bytes, fp);
    fclose(fp);
}

static void test_fsck(void **state)
{
    fixture *f = *state;
    add(f, "good sample", 11, "g", NULL, NULL);
    add(f, "will corrupt", 12, "c", NULL, NULL);
    add(f, "will vanish", 11, "v", NULL, NULL);
    tr_error err;
    tr_fsck_report rep;
    seen_kinds k = {0};
    assert_int_equal(tr_store_fsck(f->s, false, count_kind, &k, &rep, &err), 0);
    assert_int_equal(rep.rows_checked, 3);
    assert_int_equal(rep.blobs_checked, 3);
    assert_int_equal(rep.missing + rep.corrupt + rep.unreferenced + rep.stray, 0);

    char sha[TR_SHA256_HEX];
    tr_sha256_hex("will corrupt", 12, sha);
    char *p = tr_store_blob_path(f->s, sha);
    chmod(p, 0644);
    write_file(p, "WILL CORRUPT");
    free(p);
    tr_sha256_hex("will vanish", 11, sha);
    p = tr_store_blob_path(f->s, sha);
    unlink(p);
    free(p);
    /* An unreferenced blob, as an add killed between rename and commit leaves. */
    tr_sha256_hex("orphan", 6, sha);
    char *dir = tr_xasprintf("%s/samples/%.2s/%.2s", f->dir, sha, sha + 2);
    assert_int_equal(tr_mkdir_p(dir, 0755, &err), 0);
    p = tr_store_blob_path(f->s, sha);
    write_file(p, "orphan");
    free(p);
    char *stray = tr_xasprintf("%s/stray.txt", dir);
    write_file(stray, "?");

    memset(&k, 0, sizeof k);
    assert_int_equal(tr_store_fsck(f->s, false, count_kind, &k, &rep, &err), 0);
    assert_int_equal(rep.missing, 1);
    assert_int_equal(rep.corrupt, 1);
    assert_int_equal(rep.unreferenced, 1);
    assert_int_equal(rep.stray, 1);
    assert_int_equal(k.count[TR_FSCK_MISSING_BLOB], 1);

    assert_int_equal(tr_store_fsck(f->s, true, NULL, NULL, &rep, &err), 0);
    assert_int_equal(rep.repaired, 4);
    assert_int_equal(access(stray, F_OK), -1);
    /* After repair: consistent, and the orphan is a sample again. */
    assert_int_equal(tr_store_fsck(f->s, false, NULL, NULL, &rep, &err), 0);
    assert_int_equal(rep.missing + rep.corrupt + rep.unreferenced + rep.stray, 0);
    assert_int_equal(rep.rows_checked, 2);
    tr_sample *x = NULL;
    assert_int_equal(tr_store_get(f->s, sha, &x, &err), 1);
    assert_string_equal(x->origin, "recovered by fsck");
    tr_sample_free(x);
    free(stray);
    free(dir);
}

/* Count and bytes are kept by triggers; every change shows. */
static void test_stats_follow_changes(void **state)
{
    fixture *f = *state;
    tr_error err;
    tr_store_stats st;
    assert_int_equal(tr_store_stats_get(f->s, &st, &err), 0);
    assert_int_equal(st.samples, 0);
    assert_int_equal(st.bytes, 0);
    add(f, "12345", 5, "a", NULL, NULL);
    add(f, "1234567890", 10, "b", NULL, NULL);
    for (int twice = 0; twice < 2; twice++) {
        assert_int_equal(tr_store_stats_get(f->s, &st, &err), 0);
        assert_int_equal(st.samples, 2);
        assert_int_equal(st.bytes, 15);
    }
    char sha[TR_SHA256_HEX];
    tr_sha256_hex("1234567890", 10, sha);
    assert_int_equal(tr_store_remove(f->s, sha, NULL, &err), 1);
    assert_int_equal(tr_store_stats_get(f->s, &st, &err), 0);
    assert_int_equal(st.samples, 1);
    assert_int_equal(st.bytes, 5);
    /* Same count as before the removal, but a new max id: not the old sum. */
    add(f, "abcdefghijklmnopqrst", 20, "c", NULL, NULL);
    assert_int_equal(tr_store_stats_get(f->s, &st, &err), 0);
    assert_int_equal(st.samples, 2);
    assert_int_equal(st.bytes, 25);

    /* A database from before the totals table: a read-only open counts by
     * hand, and the first read-write open fills the table from the rows. */
    tr_store_close(f->s);
    f->s = NULL;
    char *cmd = tr_xasprintf("sqlite3 '%s/trawl.db' 'DROP TRIGGER samples_total_add;"
                             " DROP TRIGGER samples_total_del; DROP TABLE sample_totals;'",
                             f->dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    tr_store *ro = NULL;
    assert_int_equal(tr_store_open(f->dir, TR_STORE_READONLY, &ro, &err), 0);
    assert_int_equal(tr_store_stats_get(ro, &st, &err), 0);
    assert_int_equal(st.samples, 2);
    assert_int_equal(st.bytes, 25);
    tr_store_close(ro);
    assert_int_equal(tr_store_open(f->dir, 0, &f->s, &err), 0);
    assert_int_equal(tr_store_stats_get(f->s, &st, &err), 0);
    assert_int_equal(st.samples, 2);
    assert_int_equal(st.bytes, 25);
    add(f, "xyz", 3, "d", NULL, NULL);
    assert_int_equal(tr_store_stats_get(f->s, &st, &err), 0);
    assert_int_equal(st.samples, 3);
    assert_int_equal(st.bytes, 28);
}

static void test_truncated_stage_is_rejected(void **state)
{
    fixture *f = *state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], "12345", 5), 5);
    close(fds[1]);
    tr_staged st;
    tr_error err;
    assert_int_equal(tr_store_stage_fd(f->s, f->an, fds[0], 10, &st, &err), -1);
    close(fds[0]);
    assert_non_null(strstr(err.msg, "truncated"));
    /* Nothing is left in tmp/. */
    char *cmd = tr_xasprintf("test -z \"$(ls -A '%s/tmp')\"", f->dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

static void test_readonly_missing_dir(void **state)
{
    (void)state;
    tr_store *s = NULL;
    tr_error err;
    assert_int_equal(tr_store_open("/nonexistent/trawl", TR_STORE_READONLY, &s, &err), -1);
    assert_non_null(strstr(err.msg, "no trawl data directory"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_insert_and_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_merges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_within_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsck, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_follow_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_stage_is_rejected, setup, teardown),
        cmocka_unit_test(test_readonly_missing_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
