/* kblink: the sync's bookkeeping (idempotence, retiring, a family that comes
 * back after being revoked gets a new id) and pattern lookups, on a scratch
 * data directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kblink/kblink.h"
#include "stix/stix.h"
#include "store/store.h"

static char *scratch(void)
{
    char *tmpl = tr_xstrdup("/tmp/trawl-kblink-XXXXXX");
    if (!mkdtemp(tmpl))
        abort();
    return tmpl;
}

static void rm_rf(const char *dir)
{
    char *cmd = tr_xasprintf("rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    free(cmd);
}

static void add(const char *dir, const char *bytes, const char *name, const char *signature,
                char sha256[TR_SHA256_HEX])
{
    tr_store *s;
    tr_analyzer *a;
    tr_error err;
    assert_int_equal(tr_store_open(dir, TR_STORE_CREATE, &s, &err), 0);
    assert_int_equal(tr_analyzer_new(&a, &err), 0);
    tr_staged st;
    assert_int_equal(tr_store_stage_buffer(s, a, bytes, strlen(bytes), &st, &err), 0);
    memcpy(sha256, st.d.sha256, TR_SHA256_HEX);
    tr_ingest_meta meta = {.file_name = name, .signature = signature};
    tr_ingest_result res;
    assert_int_equal(tr_store_commit(s, &st, &meta, 1, &res, &err), 0);
    tr_analyzer_free(a);
    tr_store_close(s);
}

static void rm_sample(const char *dir, const char *sha256)
{
    tr_store *s;
    tr_error err;
    int64_t id;
    assert_int_equal(tr_store_open(dir, 0, &s, &err), 0);
    assert_int_equal(tr_store_remove(s, sha256, &id, &err), 1);
    tr_store_close(s);
}

static tr_kblink_stats sync_ok(const char *dir)
{
    tr_kblink_stats st;
    tr_error err;
    if (tr_kblink_sync(dir, &st, &err) != 0)
        fail_msg("sync: %s", err.msg);
    return st;
}

typedef struct found {
    json_t *objs;
} found;

static int keep(void *arg, const tr_stix_row *row)
{
    found *f = arg;
    json_array_append_new(f->objs, json_loadb(row->json, row->json_len, 0, NULL));
    return 0;
}

/* The latest versions of trawl's malware objects. */
static json_t *malware(const char *dir)
{
    tr_stix_db *kb;
    tr_error err;
    assert_int_equal(tr_stix_open(dir, &kb, &err), 0);
    found f = {json_array()};
    tr_stix_search_opts o = {.type = "malware", .limit = 100};
    assert_int_equal(tr_stix_search_ex(kb, &o, keep, &f, &err), 0);
    tr_stix_close(kb);
    return f.objs;
}

static void sync_is_idempotent_and_retires(void **state)
{
    (void)state;
    char *dir = scratch();
    char a[TR_SHA256_HEX], b[TR_SHA256_HEX];
    add(dir, "kblink unit sample one", "one.bin", "Quietfox", a);
    add(dir, "kblink unit sample two", "two.bin", "Quietfox", b);

    tr_kblink_stats st = sync_ok(dir);
    /* identity, two files, the family */
    assert_int_equal(st.objects, 4);
    assert_int_equal(st.added, 4);
    assert_true(st.full);
    /* Nothing changed: the incremental sync derives nothing, and a full
     * pass finds everything held as it is. */
    st = sync_ok(dir);
    assert_false(st.full);
    assert_int_equal(st.objects, 0);
    tr_error err;
    assert_int_equal(tr_kblink_sync_mode(dir, TR_KBLINK_FULL, &st, &err), 0);
    assert_true(st.full);
    assert_int_equal(st.unchanged, 4);
    assert_int_equal(st.added + st.updated + st.retired, 0);

    json_t *m = malware(dir);
    assert_int_equal(json_array_size(m), 1);
    json_t *fam = json_array_get(m, 0);
    assert_string_equal(json_string_value(json_object_get(fam, "name")), "Quietfox");
    assert_int_equal(json_array_size(json_object_get(fam, "sample_refs")), 2);
    char first_id[128];
    snprintf(first_id, sizeof first_id, "%s", json_string_value(json_object_get(fam, "id")));
    json_decref(m);

    /* One sample gone: a new version of the family, the file marked. */
    rm_sample(dir, a);
    st = sync_ok(dir);
    assert_int_equal(st.updated, 1);
    assert_int_equal(st.retired, 1);
    m = malware(dir);
    assert_int_equal(json_array_size(json_object_get(json_array_get(m, 0), "sample_refs")), 1);
    json_decref(m);

    /* Both gone: the family is revoked... */
    rm_sample(dir, b);
    st = sync_ok(dir);
    assert_int_equal(st.retired, 2);
    m = malware(dir);
    assert_true(json_is_true(json_object_get(json_array_get(m, 0), "revoked")));
    json_decref(m);
    assert_int_equal(sync_ok(dir).retired, 0);

    /* ...and when it comes back it is a new object: a revoked one may not
     * get new versions. */
    add(dir, "kblink unit sample three", "three.bin", "QUIETFOX", a);
    st = sync_ok(dir);
    assert_int_equal(st.added, 2);
    m = malware(dir);
    assert_int_equal(json_array_size(m), 2);
    size_t i;
    json_t *v;
    int live = 0;
    json_array_foreach(m, i, v) {
        if (json_is_true(json_object_get(v, "revoked")))
            continue;
        live++;
        assert_string_not_equal(json_string_value(json_object_get(v, "id")), first_id);
    }
    assert_int_equal(live, 1);
    json_decref(m);
    rm_rf(dir);
    free(dir);
}

static void match_confirms_the_whole_pattern(void **state)
{
    (void)state;
    char *dir = scratch();
    char a[TR_SHA256_HEX];
    add(dir, "kblink match sample", "m.bin", NULL, a);
    tr_error err;
    json_t *res = NULL;
    char *p = tr_xasprintf("[file:hashes.'SHA-256' = '%s']", a);
    assert_int_equal(tr_kblink_match_pattern(dir, p, &res, &err), 0);
    assert_int_equal(json_array_size(json_object_get(res, "samples")), 1);
    json_decref(res);
    free(p);
    p = tr_xasprintf("[file:hashes.'SHA-256' = '%s' AND file:size = 1]", a);
    assert_int_equal(tr_kblink_match_pattern(dir, p, &res, &err), 0);
    assert_int_equal(json_array_size(json_object_get(res, "samples")), 0);
    json_decref(res);
    free(p);
    assert_int_equal(tr_kblink_match_pattern(dir, "[file:name = 'm.bin']", &res, &err), -1);
    assert_non_null(strstr(err.msg, "names no file"));
    assert_int_equal(tr_kblink_match_pattern(dir, "[file:name = ", &res, &err), -1);
    rm_rf(dir);
    free(dir);
}

/* A lookup's work is bounded by what it may ask (issue: a reader's GET
 * with hundreds of ranges walked every address once per range, running the
 * whole pattern each time). */
static void match_refuses_patterns_past_its_bounds(void **state)
{
    (void)state;
    char *dir = scratch();
    char a[TR_SHA256_HEX];
    add(dir, "kblink bounds sample", "b.bin", NULL, a);
    tr_error err;
    json_t *res = NULL;
    tr_buf b = {0};
    tr_buf_append(&b, "[", 1);
    for (int i = 0; i < 65; i++)
        tr_buf_printf(&b, "%sipv4-addr:value ISSUBSET '198.51.100.%d/32'", i ? " OR " : "", i);
    tr_buf_append(&b, "]", 1);
    assert_int_equal(tr_kblink_match_pattern(dir, b.data, &res, &err), -1);
    assert_non_null(strstr(err.msg, "at most 1000 terms, 64 of them ISSUBSET"));
    assert_non_null(strstr(err.msg, "65 ranges"));
    b.len = 0;
    tr_buf_append(&b, "[", 1);
    for (int i = 0; i < 1001; i++)
        tr_buf_printf(&b, "%sfile:hashes.MD5 = '%032x'", i ? " OR " : "", i);
    tr_buf_append(&b, "]", 1);
    assert_int_equal(tr_kblink_match_pattern(dir, b.data, &res, &err), -1);
    assert_non_null(strstr(err.msg, "this one has 1001"));
    /* At the bounds a pattern is looked up. */
    b.len = 0;
    tr_buf_append(&b, "[", 1);
    for (int i = 0; i < 64; i++)
        tr_buf_printf(&b, "%sipv4-addr:value ISSUBSET '198.51.100.%d/32'", i ? " OR " : "", i);
    tr_buf_append(&b, "]", 1);
    assert_int_equal(tr_kblink_match_pattern(dir, b.data, &res, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(res, "terms")), 64);
    json_decref(res);
    tr_buf_free(&b);
    rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sync_is_idempotent_and_retires),
        cmocka_unit_test(match_confirms_the_whole_pattern),
        cmocka_unit_test(match_refuses_patterns_past_its_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
