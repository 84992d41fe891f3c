/* index: query evaluation against the brute-force oracle (tr_query_match),
 * across several segments, tombstones, compaction, and concurrent readers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fixture.h"
#include "index/index.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) { return fixture_rnd(&rng); }

static char *make_dir(void) { return fixture_index_dir("ixq"); }

static void remove_dir(char *ixdir) { fixture_remove_index_dir(ixdir); }

/* ---- random corpus and queries --------------------------------------------- */

#define NDOCS 260
typedef struct corpus {
    unsigned char *doc[NDOCS];
    size_t len[NDOCS];
    uint32_t id[NDOCS];
    bool deleted[NDOCS];
    bool indexed[NDOCS];
} corpus;

/* A small alphabet so that random grams repeat across documents, with case
 * twins (nocase), NULs (wide strings) and a high byte. */
static const unsigned char ALPHA[] = {'a', 'b', 'A', 'B', 'c', 0x00, 0xff, ' '};

static void make_corpus(corpus *c)
{
    for (int i = 0; i < NDOCS; i++) {
        size_t len = i % 17 == 0 ? rnd() % 4 : rnd() % 300;
        c->doc[i] = tr_xmalloc(len + 1);
        for (size_t j = 0; j < len; j++) {
            if (rnd() % 5 == 0 && j + 1 < len) {   /* a wide char */
                c->doc[i][j++] = ALPHA[rnd() % 5];
                c->doc[i][j] = 0;
            } else {
                c->doc[i][j] = ALPHA[rnd() % 8];
            }
        }
        c->len[i] = len;
        c->id[i] = (uint32_t)(i * 7 + (i % 3 ? 1 : 100000));   /* sparse, not in add order */
        c->deleted[i] = false;
        c->indexed[i] = false;
    }
}

static void free_corpus(corpus *c)
{
    for (int i = 0; i < NDOCS; i++)
        free(c->doc[i]);
}

typedef struct qinfo {
    bool all_len3;       /* every SEQ leaf has length 3: grams decide it exactly */
} qinfo;

static tr_query *rand_leaf(const corpus *c, qinfo *qi, bool exact3)
{
    int i = (int)(rnd() % NDOCS);
    size_t len = exact3 ? 3 : 1 + rnd() % 10;
    tr_byteset pos[16];
    memset(pos, 0, sizeof pos);
    size_t off = c->len[i] >= len ? rnd() % (c->len[i] - len + 1) : 0;
    for (size_t j = 0; j < len; j++) {
        if (c->len[i] >= len && rnd() % 4) {
            /* Mostly substrings of real docs, so queries have answers. */
            tr_byteset_add(&pos[j], c->doc[i][off + j]);
        } else {
            tr_byteset_add(&pos[j], ALPHA[rnd() % 8]);
        }
        unsigned r = rnd() % 12;
        if (r == 0)
            tr_byteset_fill(&pos[j]);                         /* ?? */
        else if (r < 3)
            tr_byteset_add(&pos[j], ALPHA[rnd() % 8]);        /* alternatives */
        else if (r == 3)
            for (unsigned b = 0; b < 256; b += 1 + rnd() % 40)
                tr_byteset_add(&pos[j], b);                   /* wide class */
    }
    if (len != 3)
        qi->all_len3 = false;
    return tr_query_seq(pos, len);
}

static tr_query *rand_query(const corpus *c, int depth, qinfo *qi, bool exact3)
{
    unsigned r = rnd() % 10;
    if (depth == 0 || r < 4)
        return rand_leaf(c, qi, exact3);
    if (r == 4)
        return rnd() % 2 ? tr_query_all() : tr_query_none();
    size_t n = 1 + rnd() % 4;
    tr_query *ch[4];
    for (size_t i = 0; i < n; i++)
        ch[i] = rand_query(c, depth - 1, qi, exact3);
    tr_query_kind k = r < 7 ? TR_Q_AND : r < 9 ? TR_Q_OR : TR_Q_MIN_OF;
    return tr_query_node(k, k == TR_Q_MIN_OF ? (uint32_t)(rnd() % (n + 1)) : 0, ch, n);
}

static void check_queries(tr_index *ix, const corpus *c, int nq)
{
    int exact_checked = 0;
    for (int t = 0; t < nq; t++) {
        qinfo qi = {.all_len3 = true};
        bool exact3 = t % 3 == 0;
        tr_query *q = rand_query(c, 3, &qi, exact3);
        uint32_t *ids;
        size_t n;
        bool widened = false;
        tr_error err;
        if (tr_index_query(ix, q, &ids, &n, &widened, &err) < 0)
            fail_msg("query failed: %s", err.msg);
        for (size_t i = 1; i < n; i++)
            assert_true(ids[i - 1] < ids[i]);
        size_t truth = 0;
        for (int d = 0; d < NDOCS; d++) {
            if (!c->indexed[d] || c->deleted[d])
                continue;
            bool found = false;
            for (size_t i = 0; i < n && !found; i++)
                found = ids[i] == c->id[d];
            bool m = tr_query_match(q, c->doc[d], c->len[d]);
            truth += m;
            if (m && !found) {
                tr_buf b = {0};
                tr_query_format(q, &b);
                fail_msg("doc %u matches but is missing: %.*s", c->id[d], (int)b.len, b.data);
            }
            if (!m && found && qi.all_len3 && !widened) {
                tr_buf b = {0};
                tr_query_format(q, &b);
                fail_msg("doc %u is extra for an exact query: %.*s", c->id[d], (int)b.len, b.data);
            }
        }
        /* Only live indexed docs come back. */
        for (size_t i = 0; i < n; i++) {
            bool live = false;
            for (int d = 0; d < NDOCS && !live; d++)
                live = c->indexed[d] && !c->deleted[d] && c->id[d] == ids[i];
            assert_true(live);
        }
        if (qi.all_len3 && !widened)
            exact_checked++;
        uint64_t est;
        assert_int_equal(tr_index_estimate(ix, q, &est, &err), 0);
        assert_true(est >= truth);
        free(ids);
        tr_query_free(q);
    }
    assert_true(exact_checked > nq / 20);
}

static void add_docs(tr_index *ix, corpus *c, int from, int to)
{
    tr_index_writer *w;
    tr_error err;
    assert_int_equal(tr_index_writer_begin(ix, &w, &err), 0);
    for (int i = from; i < to; i++) {
        assert_int_equal(tr_index_writer_add(w, c->id[i], c->doc[i], c->len[i], &err), 0);
        c->indexed[i] = true;
    }
    if (tr_index_writer_commit(w, &err) < 0)
        fail_msg("commit: %s", err.msg);
}

static int fetch_doc(void *arg, uint32_t id, tr_map *out, tr_error *err)
{
    const corpus *c = arg;
    for (int i = 0; i < NDOCS; i++)
        if (c->id[i] == id) {
            /* The verifier releases with tr_map_close (munmap): hand it a mapping. */
            out->len = c->len[i];
            out->data = NULL;
            if (c->len[i]) {
                void *p = mmap(NULL, c->len[i], PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                assert_true(p != MAP_FAILED);
                memcpy(p, c->doc[i], c->len[i]);
                out->data = p;
            }
            return 0;
        }
    return tr_fail(err, "no doc %u", id);
}

static void test_query_oracle(void **state)
{
    (void)state;
    static corpus c;
    make_corpus(&c);
    char *dir = make_dir();
    tr_index *ix;
    tr_error err;
    /* A tiny chunk forces many segments per writer. */
    tr_index_opts o = {.kinds = TR_KIND_BIT(TR_GRAM3) | TR_KIND_BIT(TR_TEXT4) | TR_KIND_BIT(TR_WIDE4),
                       .chunk_pairs = 3000};
    assert_int_equal(tr_index_open_opts(dir, &o, &ix, &err), 0);
    uint32_t *ids;
    size_t n;
    tr_query *all = tr_query_all();
    assert_int_equal(tr_index_query(ix, all, &ids, &n, NULL, &err), 0);
    assert_int_equal(n, 0);
    free(ids);

    add_docs(ix, &c, 0, 120);
    add_docs(ix, &c, 120, 200);
    tr_index_status st;
    assert_int_equal(tr_index_get_status(ix, &st, &err), 0);
    assert_true(st.segments > 2);
    assert_int_equal(st.docs, 200);
    check_queries(ix, &c, 250);

    for (int i = 0; i < 200; i += 5) {
        assert_int_equal(tr_index_delete(ix, c.id[i], &err), 0);
        c.deleted[i] = true;
    }
    assert_int_equal(tr_index_delete(ix, 4000000000u, &err), 0);   /* unknown id */
    check_queries(ix, &c, 150);

    assert_int_equal(tr_index_compact(ix, &err), 0);
    assert_int_equal(tr_index_get_status(ix, &st, &err), 0);
    assert_int_equal(st.segments, 1);
    assert_int_equal(st.docs, 160);
    assert_int_equal(st.tombstones, 1);   /* only the unknown id stays */
    check_queries(ix, &c, 150);

    add_docs(ix, &c, 200, NDOCS);
    check_queries(ix, &c, 150);
    /* A second handle sees the same state; the first sees the second's changes. */
    tr_index *ix2;
    assert_int_equal(tr_index_open(dir, &ix2, &err), 0);
    check_queries(ix2, &c, 50);
    assert_int_equal(tr_index_delete(ix2, c.id[201], &err), 0);
    c.deleted[201] = true;
    assert_int_equal(tr_index_compact(ix2, &err), 0);
    check_queries(ix, &c, 100);

    assert_int_equal(tr_index_query(ix, all, &ids, &n, NULL, &err), 0);
    size_t live = 0;
    for (int i = 0; i < NDOCS; i++)
        live += c.indexed[i] && !c.deleted[i];
    assert_int_equal(n, live);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(tr_index_verify_doc(ix, ids[i], fetch_doc, &c, &err), 0);
    assert_int_equal(tr_index_verify_doc(ix, c.id[0], fetch_doc, &c, &err), -1);
    free(ids);
    uint32_t *live_ids;
    assert_int_equal(tr_index_doc_ids(ix, &live_ids, &n, &err), 0);
    assert_int_equal(n, live);
    free(live_ids);

    tr_index_codec_report rep;
    assert_int_equal(tr_index_codec_compare(ix, &rep, &err), 0);
    assert_true(rep.lists > 0);
    assert_true(rep.adaptive <= rep.pack && rep.adaptive <= rep.varint);

    /* An id whose tombstone is still pending cannot come back silently. */
    assert_int_equal(tr_index_delete(ix, c.id[202], &err), 0);
    tr_index_writer *w;
    assert_int_equal(tr_index_writer_begin(ix, &w, &err), 0);
    assert_int_equal(tr_index_writer_add(w, c.id[202], c.doc[202], c.len[202], &err), 0);
    assert_int_equal(tr_index_writer_commit(w, &err), -1);
    assert_non_null(strstr(err.msg, "deleted before"));
    tr_index_status st2;
    assert_int_equal(tr_index_get_status(ix, &st2, &err), 0);
    assert_int_equal(st2.segments, 1);

    tr_query_free(all);
    tr_index_close(ix2);
    tr_index_close(ix);
    remove_dir(dir);
    free_corpus(&c);
}

/* Queries by the docs' content: the gram kinds a segment lacks must widen,
 * not lose matches (segments written with different kinds, then merged). */
static void test_query_mixed_kinds(void **state)
{
    (void)state;
    static corpus c;
    make_corpus(&c);
    char *dir = make_dir();
    tr_error err;
    tr_index *a, *b;
    tr_index_opts oa = {.kinds = TR_KIND_BIT(TR_GRAM3)};
    tr_index_opts ob = {.kinds = TR_KIND_BIT(TR_GRAM3) | TR_KIND_BIT(TR_TEXT4) | TR_KIND_BIT(TR_WIDE4)};
    assert_int_equal(tr_index_open_opts(dir, &oa, &a, &err), 0);
    assert_int_equal(tr_index_open_opts(dir, &ob, &b, &err), 0);
    add_docs(a, &c, 0, 100);
    add_docs(b, &c, 100, 200);
    check_queries(b, &c, 100);
    assert_int_equal(tr_index_compact(b, &err), 0);
    tr_index_status st;
    assert_int_equal(tr_index_get_status(b, &st, &err), 0);
    assert_int_equal(st.kinds, TR_KIND_BIT(TR_GRAM3));
    check_queries(b, &c, 100);
    tr_index_close(a);
    tr_index_close(b);
    remove_dir(dir);
    free_corpus(&c);
}

/* Chunks over a million pairs take the counting-sort path of the writer. */
static void test_query_large_docs(void **state)
{
    (void)state;
    char *dir = make_dir();
    tr_error err;
    tr_index *ix;
    assert_int_equal(tr_index_open(dir, &ix, &err), 0);
    enum { ND = 4, LEN = 700000 };
    unsigned char *d[ND];
    tr_index_writer *w;
    assert_int_equal(tr_index_writer_begin(ix, &w, &err), 0);
    for (int i = 0; i < ND; i++) {
        d[i] = tr_xmalloc(LEN);
        for (size_t j = 0; j < LEN; j++)
            d[i][j] = (unsigned char)(i == 3 ? ALPHA[rnd() % 8] : rnd());
        assert_int_equal(tr_index_writer_add(w, (uint32_t)(10 + i), d[i], LEN, &err), 0);
    }
    assert_int_equal(tr_index_writer_commit(w, &err), 0);
    for (int t = 0; t < 300; t++) {
        int i = (int)(rnd() % ND);
        size_t len = t % 2 ? 3 : 8, off = rnd() % (LEN - len);
        tr_query *q = tr_query_literal(d[i] + off, len);
        uint32_t *ids;
        size_t n;
        bool wide;
        assert_int_equal(tr_index_query(ix, q, &ids, &n, &wide, &err), 0);
        assert_false(wide);
        size_t truth = 0;
        for (int k = 0; k < ND; k++) {
            bool m = tr_query_match(q, d[k], LEN), found = false;
            for (size_t j = 0; j < n; j++)
                found |= ids[j] == (uint32_t)(10 + k);
            truth += m;
            if (m)
                assert_true(found);
        }
        if (len == 3)
            assert_int_equal(n, truth);
        free(ids);
        tr_query_free(q);
    }
    for (int i = 0; i < ND; i++)
        free(d[i]);
    tr_index_close(ix);
    remove_dir(dir);
}

/* ---- readers during writes and merges ------------------------------------------- */

typedef struct conc {
    tr_index *ix;
    atomic_int acked;          /* docs [0, acked) are committed */
    atomic_bool stop;
    atomic_int queries;
    atomic_int failures;
} conc;

static void conc_doc(uint32_t id, unsigned char *buf, size_t *len)
{
    *len = (size_t)sprintf((char *)buf, "xx<doc-%06u>yy", id);
}

static void *reader(void *arg)
{
    conc *c = arg;
    tr_error err;
    while (!atomic_load(&c->stop)) {
        int acked = atomic_load(&c->acked);
        if (acked == 0)
            continue;
        uint32_t id = rnd() % (uint32_t)acked;
        unsigned char buf[64];
        size_t len;
        conc_doc(id, buf, &len);
        tr_query *q = tr_query_literal(buf + 2, len - 4);
        uint32_t *ids;
        size_t n;
        if (tr_index_query(c->ix, q, &ids, &n, NULL, &err) < 0) {
            fprintf(stderr, "query failed: %s\n", err.msg);
            atomic_fetch_add(&c->failures, 1);
        } else {
            bool found = false;
            for (size_t i = 0; i < n; i++)
                found |= ids[i] == id;
            /* Superset only: "<doc-000111>" holds every 3-gram of "<doc-000011>". */
            if (!found) {
                fprintf(stderr, "doc %u: found %d among %zu\n", id, found, n);
                atomic_fetch_add(&c->failures, 1);
            }
            free(ids);
        }
        tr_query_free(q);
        atomic_fetch_add(&c->queries, 1);
    }
    return NULL;
}

static void test_query_concurrent(void **state)
{
    (void)state;
    char *dir = make_dir();
    tr_error err;
    conc c = {0};
    tr_index_opts o = {.chunk_pairs = 2000};
    assert_int_equal(tr_index_open_opts(dir, &o, &c.ix, &err), 0);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, reader, &c);
    uint32_t next = 0;
    for (int round = 0; round < 12; round++) {
        tr_index_writer *w;
        assert_int_equal(tr_index_writer_begin(c.ix, &w, &err), 0);
        for (int i = 0; i < 40; i++, next++) {
            unsigned char buf[64];
            size_t len;
            conc_doc(next, buf, &len);
            assert_int_equal(tr_index_writer_add(w, next, buf, len, &err), 0);
        }
        assert_int_equal(tr_index_writer_commit(w, &err), 0);
        atomic_store(&c.acked, (int)next);
        if (round % 4 == 3)
            assert_int_equal(tr_index_compact(c.ix, &err), 0);
    }
    while (atomic_load(&c.queries) < 200)
        usleep(1000);
    atomic_store(&c.stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&c.failures), 0);
    tr_index_close(c.ix);
    remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_oracle),
        cmocka_unit_test(test_query_mixed_kinds),
        cmocka_unit_test(test_query_large_docs),
        cmocka_unit_test(test_query_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
