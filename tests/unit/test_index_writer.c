/* index: the writer's pipeline. Chunks much smaller than the documents (so
 * the page pool runs dry and the caller helps the flush, and one document
 * outgrows a whole chunk), a document with more distinct grams than the
 * writer keeps for clearing its bitmap, and the same with no worker thread
 * (the caller flushes inline). Every document must verify (each of its grams
 * lists it) and 3-byte literals must return exactly the matching documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fixture.h"
#include "index/index_internal.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(void) { return fixture_rnd(&rng); }

static char *make_dir(void) { return fixture_index_dir("ixw"); }

static void remove_dir(char *ixdir) { fixture_remove_index_dir(ixdir); }

#define ND 48
typedef struct docs {
    unsigned char *d[ND];
    size_t len[ND];
} docs;

static const unsigned char ALPHA[] = {'a', 'b', 'A', 'B', 'c', 0x00, 0xff, ' ', 'K', 'e'};

static void make_docs(docs *c)
{
    for (int i = 0; i < ND; i++) {
        size_t len;
        bool random = false;
        if (i == 7) {
            len = 400000;             /* ~400K distinct gram3: past the kept-keys limit */
            random = true;
        } else if (i % 11 == 3) {
            len = 200000;             /* bigger than a chunk */
            random = true;
        } else {
            len = rnd() % 6000;
        }
        c->d[i] = tr_xmalloc(len + 1);
        for (size_t j = 0; j < len; j++)
            c->d[i][j] = random ? (unsigned char)rnd() : ALPHA[rnd() % sizeof ALPHA];
        c->len[i] = len;
    }
}

static uint32_t id_of(int i) { return (uint32_t)(1000 + 3 * i); }

static int fetch_doc(void *arg, uint32_t id, tr_map *out, tr_error *err)
{
    const docs *c = arg;
    for (int i = 0; i < ND; i++)
        if (id_of(i) == id) {
            out->len = c->len[i];
            out->data = NULL;
            if (c->len[i]) {
                void *p = mmap(NULL, c->len[i], PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                assert_true(p != MAP_FAILED);
                memcpy(p, c->d[i], c->len[i]);
                out->data = p;
            }
            return 0;
        }
    return tr_fail(err, "no doc %u", id);
}

static void run(int threads)
{
    static docs c;
    make_docs(&c);
    char *dir = make_dir();
    tr_index *ix;
    tr_error err;
    tr_index_opts o = {.kinds = TR_KIND_BIT(TR_GRAM3) | TR_KIND_BIT(TR_WIDE4), .chunk_pairs = 30000};
    assert_int_equal(tr_index_open_opts(dir, &o, &ix, &err), 0);
    tr_index_set_writer_threads(ix, threads);
    tr_index_writer *w;
    assert_int_equal(tr_index_writer_begin(ix, &w, &err), 0);
    for (int i = 0; i < ND; i++)
        assert_int_equal(tr_index_writer_add(w, id_of(i), c.d[i], c.len[i], &err), 0);
    if (tr_index_writer_commit(w, &err) < 0)
        fail_msg("commit: %s", err.msg);
    tr_index_status st;
    assert_int_equal(tr_index_get_status(ix, &st, &err), 0);
    assert_int_equal(st.docs, ND);
    assert_true(st.segments > 4);

    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < ND; i++)
            if (tr_index_verify_doc(ix, id_of(i), fetch_doc, &c, &err) != 0)
                fail_msg("doc %d: %s", i, err.msg);
        for (int t = 0; t < 60; t++) {
            int i = (int)(rnd() % ND);
            if (c.len[i] < 3)
                continue;
            size_t off = rnd() % (c.len[i] - 2);
            tr_query *q = tr_query_literal(c.d[i] + off, 3);
            uint32_t *ids;
            size_t n;
            assert_int_equal(tr_index_query(ix, q, &ids, &n, NULL, &err), 0);
            size_t truth = 0;
            for (int k = 0; k < ND; k++) {
                bool m = tr_query_match(q, c.d[k], c.len[k]), found = false;
                for (size_t j = 0; j < n; j++)
                    found |= ids[j] == id_of(k);
                assert_int_equal(m, found);
                truth += m;
            }
            assert_int_equal(n, truth);
            free(ids);
            tr_query_free(q);
        }
        /* Same answers from the merged segment. */
        assert_int_equal(tr_index_compact(ix, &err), 0);
    }

    /* An aborted writer leaves nothing behind, also with chunks in flight. */
    assert_int_equal(tr_index_writer_begin(ix, &w, &err), 0);
    for (int i = 0; i < 12; i++)
        assert_int_equal(tr_index_writer_add(w, 900000 + (uint32_t)i, c.d[i], c.len[i], &err), 0);
    tr_index_writer_abort(w);
    assert_int_equal(tr_index_get_status(ix, &st, &err), 0);
    assert_int_equal(st.docs, ND);
    assert_int_equal(st.segments, 1);
    DIR *dd = opendir(dir);
    assert_non_null(dd);
    struct dirent *de;
    size_t files = 0;
    while ((de = readdir(dd)) != NULL)
        files += strncmp(de->d_name, "seg-", 4) == 0;
    closedir(dd);
    assert_int_equal(files, 1);

    tr_index_close(ix);
    remove_dir(dir);
    for (int i = 0; i < ND; i++)
        free(c.d[i]);
}

static void test_writer_threads(void **state)
{
    (void)state;
    run(-1);
}

static void test_writer_inline(void **state)
{
    (void)state;
    run(0);
}

static void test_writer_many_workers(void **state)
{
    (void)state;
    run(3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer_threads),
        cmocka_unit_test(test_writer_inline),
        cmocka_unit_test(test_writer_many_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
