/* similar: the TLSH distance against libtlsh's, the indexes' answers against
 * brute force on generated families of files, and the store-backed index
 * files (tail, removal, rebuild, a damaged file). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "fixture.h"
#include "similar/similar.h"
#include "store/store.h"

enum { FAMILIES = 24, VARIANTS = 10, N = FAMILIES * VARIANTS, BASE = 6000 };

/* Families of files: a random base each, and variants with a few percent of
 * bytes changed and the length changed a little, as versions of a program. */
static tr_hash_value *gen_values(size_t kind_col /* 0 tlsh, 1 ssdeep */, size_t *n)
{
    uint64_t rng = 0x1234567u;
    tr_hash_value *v = tr_xcalloc(N, sizeof *v);
    unsigned char *base = tr_xmalloc(BASE + 512), *buf = tr_xmalloc(BASE + 512);
    size_t m = 0;
    for (int f = 0; f < FAMILIES; f++) {
        /* text-like bytes with structure, so that TLSH and ssdeep see more
         * than noise */
        for (size_t i = 0; i < BASE + 512; i++)
            base[i] = (unsigned char)(32 + f * 3 + fixture_rnd(&rng) % (20 + f % 5));
        for (int k = 0; k < VARIANTS; k++) {
            size_t len = BASE - 256 + fixture_rnd(&rng) % 512;
            memcpy(buf, base, len);
            /* edits in runs, as a rebuilt program changes: k spans */
            for (int c = 0; c < k; c++) {
                size_t at = fixture_rnd(&rng) % (len - 64);
                for (size_t j = 0; j < 48; j++)
                    buf[at + j] = (unsigned char)fixture_rnd(&rng);
            }
            tr_digests d;
            tr_digest_buffer(buf, len, &d);
            v[m].id = (int64_t)m + 1;
            snprintf(v[m].value, sizeof v[m].value, "%s", kind_col == 0 ? d.tlsh : d.ssdeep);
            if (*v[m].value)
                m++;
        }
    }
    free(base);
    free(buf);
    *n = m;
    return v;
}

static void test_tlsh_distance_is_libtlsh(void **state)
{
    (void)state;
    size_t n;
    tr_hash_value *v = gen_values(0, &n);
    assert_true(n > N / 2);
    size_t pairs = 0;
    for (size_t i = 0; i < n; i += 3)
        for (size_t j = 0; j < n; j += 7) {
            tr_tlsh_code a, b;
            assert_int_equal(tr_tlsh_decode(v[i].value, &a), 0);
            assert_int_equal(tr_tlsh_decode(v[j].value, &b), 0);
            int ref = tr_tlsh_diff(v[i].value, v[j].value);
            assert_true(ref >= 0);
            assert_int_equal(tr_tlsh_distance(&a, &b), ref);
            pairs++;
        }
    assert_true(pairs > 1000);
    tr_tlsh_code c;
    assert_int_equal(tr_tlsh_decode("T1zz", &c), -1);
    assert_int_equal(tr_tlsh_decode("", &c), -1);
    free(v);
}

static size_t kind_of(const char *name)
{
    int k = tr_similar_kind_find(name);
    assert_true(k >= 0);
    return (size_t)k;
}

static void assert_same_hits(const tr_similar_hit *a, size_t na, const tr_similar_hit *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_int_equal(a[i].id, b[i].id);
        assert_int_equal(a[i].distance, b[i].distance);
    }
}

static void test_tlsh_index_against_brute_force(void **state)
{
    (void)state;
    size_t n;
    tr_hash_value *v = gen_values(0, &n);
    tr_simix *ix = tr_simix_from_values(kind_of("tlsh"), v, n);
    assert_int_equal(tr_simix_size(ix), n);
    enum { K = 5 };
    tr_similar_hit ref[K], got[K];
    double recall = 0;
    size_t queries = 0, work = 0;
    for (size_t q = 0; q < n; q += 2) {
        size_t nr = tr_simix_brute(ix, v[q].value, K, v[q].id, ref);
        size_t ng = tr_simix_knn(ix, v[q].value, K, v[q].id, got);
        work += tr_simix_last_work(ix);
        assert_int_equal(nr, K);
        size_t ok = 0;
        for (size_t i = 0; i < ng; i++)
            ok += got[i].distance <= ref[nr - 1].distance;
        recall += (double)(ok < nr ? ok : nr) / (double)nr;
        queries++;
        /* the query itself is left out */
        for (size_t i = 0; i < ng; i++)
            assert_true(got[i].id != v[q].id);
        /* nearest first */
        for (size_t i = 1; i < ng; i++)
            assert_true(got[i - 1].distance <= got[i].distance);
    }
    recall /= (double)queries;
    printf("tlsh index: recall %.3f, %.0f of %zu compared per query\n", recall,
           (double)work / (double)queries, n);
    assert_true(recall >= 0.95);
    /* The graph walk compares under half the entries, even this small. */
    assert_true(work * 2 < queries * n);
    /* The VP-tree alone (which also seeds the graph walk): without pruning
     * (an unbounded slack) its walk is exact, ties broken by id as brute
     * force breaks them. */
    tr_simix_set_effort(ix, 0);
    tr_simix_set_slack(ix, 100000);
    for (size_t q = 1; q < n; q += 5) {
        size_t nr = tr_simix_brute(ix, v[q].value, K, v[q].id, ref);
        size_t ng = tr_simix_knn(ix, v[q].value, K, v[q].id, got);
        assert_same_hits(got, ng, ref, nr);
    }
    tr_simix_close(ix);
    free(v);
}

/* The TLSH digests of 198 of Debian's Wine DLLs in the order a largest-first
 * add gives them ids: the graph build once wrote past a row's degree (and
 * past the array) on them. Every row must stay within its degree. */
static void test_tlsh_graph_rows_stay_in_degree(void **state)
{
    (void)state;
    FILE *f = fopen(TRAWL_SOURCE_DIR "/tests/fixtures/similar/tlsh_wine_dlls_by_size.txt", "r");
    assert_non_null(f);
    tr_hash_value *v = tr_xcalloc(256, sizeof *v);
    size_t n = 0;
    while (n < 256 && fgets(v[n].value, sizeof v[n].value, f)) {
        v[n].value[strcspn(v[n].value, "\n")] = '\0';
        v[n].id = (int64_t)n + 1;
        n++;
    }
    fclose(f);
    assert_int_equal(n, 198);
    tr_simix *ix = tr_simix_from_values(kind_of("tlsh"), v, n);
    assert_int_equal(tr_simix_size(ix), n);
    tr_similar_hit ref[5], got[5];
    size_t hits = 0;
    for (size_t q = 0; q < n; q++) {
        size_t nr = tr_simix_brute(ix, v[q].value, 5, v[q].id, ref);
        size_t ng = tr_simix_knn(ix, v[q].value, 5, v[q].id, got);
        assert_int_equal(ng, nr);
        for (size_t k = 0; k < ng; k++)
            hits += got[k].id == ref[k].id;
    }
    /* the graph still finds the true nearest nearly always */
    assert_true(hits * 100 >= 95 * 5 * n);
    tr_simix_close(ix);
    free(v);
}

static void test_ssdeep_index_is_exact(void **state)
{
    (void)state;
    size_t n;
    tr_hash_value *v = gen_values(1, &n);
    assert_int_equal(n, N);
    tr_simix *ix = tr_simix_from_values(kind_of("ssdeep"), v, n);
    enum { K = 8 };
    tr_similar_hit ref[K], got[K];
    size_t nonempty = 0, work = 0;
    for (size_t q = 0; q < n; q++) {
        size_t nr = tr_simix_brute(ix, v[q].value, K, v[q].id, ref);
        size_t ng = tr_simix_knn(ix, v[q].value, K, v[q].id, got);
        work += tr_simix_last_work(ix);
        /* fuzzy_compare scores 0 without a shared 7-gram: the filter loses
         * nothing, so the answers are brute force's exactly. */
        assert_same_hits(got, ng, ref, nr);
        nonempty += nr > 0;
        for (size_t i = 1; i < ng; i++)
            assert_true(got[i - 1].distance >= got[i].distance);
    }
    assert_true(nonempty > n / 2);
    /* and compares far fewer than all */
    assert_true(work < n * n / 4);
    /* an identical signature scores 100 even when too short for a 7-gram */
    tr_hash_value shortv[2] = {{.id = 1, .value = "3:abc:ab"}, {.id = 2, .value = "3:abc:ab"}};
    tr_simix *six = tr_simix_from_values(kind_of("ssdeep"), shortv, 2);
    size_t ng = tr_simix_knn(six, "3:abc:ab", K, 1, got);
    assert_int_equal(ng, 1);
    assert_int_equal(got[0].id, 2);
    assert_int_equal(got[0].distance, 100);
    tr_simix_close(six);
    tr_simix_close(ix);
    free(v);
}

/* ---- against a store ------------------------------------------------------ */

static char *make_store(tr_store **s)
{
    char tmpl[] = "/tmp/trawl-similar-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    char *dir = tr_xasprintf("%s/data", d);
    tr_error err;
    assert_int_equal(tr_store_open(dir, TR_STORE_CREATE, s, &err), 0);
    return dir;
}

static int64_t add_buffer(tr_store *s, const unsigned char *p, size_t n)
{
    tr_analyzer *a = NULL;
    tr_error err;
    assert_int_equal(tr_analyzer_new(&a, &err), 0);
    tr_staged st;
    assert_int_equal(tr_store_stage_buffer(s, a, p, n, &st, &err), 0);
    tr_ingest_meta m = {.file_name = "f.bin"};
    tr_ingest_result r;
    assert_int_equal(tr_store_commit(s, &st, &m, 1, &r, &err), 0);
    tr_analyzer_free(a);
    return r.id;
}

static void remove_tree(const char *dir)
{
    char *cmd = tr_xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

static void test_store_index_current(void **state)
{
    (void)state;
    tr_store *s = NULL;
    char *dir = make_store(&s);
    uint64_t rng = 99;
    unsigned char base[5000], buf[5000], first[5000];
    for (size_t i = 0; i < sizeof base; i++)
        base[i] = (unsigned char)("etaoin shrdlu\n"[fixture_rnd(&rng) % 14]);
    int64_t ids[12];
    for (int k = 0; k < 12; k++) {
        memcpy(buf, base, sizeof buf);
        /* k+1 spans rewritten: each variant further from the base */
        for (int c = 0; c <= k; c++) {
            size_t at = fixture_rnd(&rng) % (sizeof buf - 64);
            for (size_t j = 0; j < 60; j++)
                buf[at + j] = (unsigned char)fixture_rnd(&rng);
        }
        ids[k] = add_buffer(s, buf, sizeof buf);
        if (k == 0)
            memcpy(first, buf, sizeof first);
    }
    tr_error err;
    size_t tlsh = kind_of("tlsh");
    /* no file yet: the index is built in memory, answers are right */
    tr_similar_hit *h = NULL;
    size_t n = 0;
    assert_int_equal(tr_similar_query(s, tlsh, ids[0], 3, &h, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(h[0].id, ids[1]);   /* the fewest changes apart */
    free(h);

    assert_int_equal(tr_similar_refresh(s, &err), 0);
    char *path = tr_xasprintf("%s/similar/tlsh.idx", dir);
    struct stat st0;
    assert_int_equal(stat(path, &st0), 0);

    /* a sample added after the build is found through the tail */
    memcpy(buf, first, sizeof buf);
    buf[10] ^= 1;
    int64_t twin = add_buffer(s, buf, sizeof buf);
    assert_int_equal(tr_similar_query(s, tlsh, ids[0], 1, &h, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(h[0].id, twin);
    free(h);
    /* a short tail is compared, not rebuilt: the file stays */
    assert_int_equal(tr_similar_refresh(s, &err), 0);
    struct stat st2;
    assert_int_equal(stat(path, &st2), 0);
    assert_int_equal(st2.st_ino, st0.st_ino);

    /* a removed sample is not answered, before and after a refresh */
    tr_sample *x = NULL;
    assert_int_equal(tr_store_get_by_id(s, twin, &x, &err), 1);
    int64_t gone;
    assert_int_equal(tr_store_remove(s, x->d.sha256, &gone, &err), 1);
    tr_sample_free(x);
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(tr_similar_query(s, tlsh, ids[0], 11, &h, &n, &err), 0);
        assert_int_equal(n, 11);
        for (size_t i = 0; i < n; i++)
            assert_true(h[i].id != twin);
        assert_int_equal(h[0].id, ids[1]);
        free(h);
        assert_int_equal(tr_similar_refresh(s, &err), 0);
    }
    /* removing more than an eighth of the entries rebuilds the file */
    for (int k = 9; k < 12; k++) {
        assert_int_equal(tr_store_get_by_id(s, ids[k], &x, &err), 1);
        assert_int_equal(tr_store_remove(s, x->d.sha256, &gone, &err), 1);
        tr_sample_free(x);
    }
    assert_int_equal(tr_similar_refresh(s, &err), 0);
    assert_int_equal(stat(path, &st2), 0);
    assert_true(st2.st_ino != st0.st_ino);
    assert_int_equal(tr_similar_query(s, tlsh, ids[0], 20, &h, &n, &err), 0);
    assert_int_equal(n, 8);   /* 12 variants, the twin and 3 removed, itself left out */
    free(h);

    /* ssdeep and imphash answer too (no PE here: imphash has no value) */
    assert_int_equal(tr_similar_query(s, kind_of("ssdeep"), ids[0], 5, &h, &n, &err), 0);
    assert_true(n >= 1);
    assert_int_equal(h[0].id, ids[1]);
    assert_true(h[0].distance > 0 && h[0].distance <= 100);
    free(h);
    assert_int_equal(tr_similar_query(s, kind_of("imphash"), ids[0], 5, &h, &n, &err), 0);
    assert_int_equal(n, 0);
    free(h);
    /* a kind whose column the store lacks says so */
    if (tr_store_has_column(s, "telfhash") == 0)
        assert_int_equal(tr_similar_query(s, kind_of("telfhash"), ids[0], 5, &h, &n, &err), -1);

    /* a damaged file is ignored (answers stay right) and rebuilt on demand */
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, 40, SEEK_SET), 0);
    fputs("garbage", f);
    fclose(f);
    assert_int_equal(truncate(path, 100), 0);
    assert_int_equal(tr_similar_query(s, tlsh, ids[0], 1, &h, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(h[0].id, ids[1]);
    free(h);
    assert_int_equal(tr_similar_rebuild(s, SIZE_MAX, &err), 0);
    struct stat st1;
    assert_int_equal(stat(path, &st1), 0);
    assert_true(st1.st_size > 100);

    free(path);
    tr_store_close(s);
    *strrchr(dir, '/') = '\0';
    remove_tree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tlsh_distance_is_libtlsh),
        cmocka_unit_test(test_tlsh_index_against_brute_force),
        cmocka_unit_test(test_tlsh_graph_rows_stay_in_degree),
        cmocka_unit_test(test_ssdeep_index_is_exact),
        cmocka_unit_test(test_store_index_current),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
