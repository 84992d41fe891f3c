/* The literal pre-check against the brute-force oracle (tr_query_match):
 * it may say "may match" more often (leaves without a usable window), never
 * less, and exactly as often when every leaf is checked. Documents are
 * random bytes with leaf occurrences planted anywhere, including at both
 * ends and across the boundaries of the interleaved scan lanes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "hunt/prefilter.h"
#include "index/query.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) { return fixture_rnd(&rng); }

/* Few distinct bytes, so planted and accidental occurrences both happen. */
static unsigned char rbyte(void)
{
    static const unsigned char alpha[] = {0x00, 0x41, 0x61, 0x42, 0x62, 0xff, 0x4d, 0x5a};
    return alpha[rnd() % sizeof alpha];
}

typedef struct leafspec {
    tr_byteset pos[24];
    size_t len;
} leafspec;

static void rand_leaf(leafspec *l)
{
    size_t lens[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 23};
    l->len = lens[rnd() % (sizeof lens / sizeof *lens)];
    memset(l->pos, 0, sizeof l->pos);
    for (size_t j = 0; j < l->len; j++) {
        unsigned kind = rnd() % 10;
        if (kind < 6) {
            tr_byteset_add(&l->pos[j], rbyte());
        } else if (kind < 8) {      /* nocase-like pair */
            unsigned char c = rbyte();
            tr_byteset_add(&l->pos[j], c);
            tr_byteset_add(&l->pos[j], c ^ 0x20);
        } else if (kind < 9) {      /* a nibble: 16 values */
            unsigned hi = (rbyte() & 0xf0);
            for (unsigned x = 0; x < 16; x++)
                tr_byteset_add(&l->pos[j], hi | x);
        } else {
            tr_byteset_fill(&l->pos[j]);
        }
    }
}

static tr_query *rand_query(leafspec *leaves, size_t *nleaves, int depth)
{
    unsigned r = rnd() % 16;
    if (depth == 0 || r < 7) {
        if (r == 0)
            return tr_query_all();
        if (r == 1 && depth > 0)
            return tr_query_none();
        if (r == 2 && depth > 0) {
            uint64_t lo = rnd() % 3 ? rnd() % 64 : 0, hi = rnd() % 4 ? lo + rnd() % 20000 : UINT64_MAX;
            return tr_query_size(lo, hi);
        }
        leafspec *l = &leaves[(*nleaves)++];
        rand_leaf(l);
        if (r == 3) {
            /* A fixed check: mostly near the start, sometimes past the head. */
            tr_query *q = tr_query_seq(l->pos, l->len);
            q->kind = TR_Q_AT;
            q->off = rnd() % 4 ? rnd() % 8 : rnd() % 6000;
            return q;
        }
        return tr_query_seq(l->pos, l->len);
    }
    size_t n = 1 + rnd() % 4;
    tr_query *kids[4];
    for (size_t i = 0; i < n; i++)
        kids[i] = rand_query(leaves, nleaves, depth - 1);
    tr_query_kind kind = r < 10 ? TR_Q_AND : r < 13 ? TR_Q_OR : TR_Q_MIN_OF;
    uint32_t k = kind == TR_Q_MIN_OF ? 1 + rnd() % (uint32_t)n : 0;
    return tr_query_node(kind, k, kids, n);
}

static void plant(unsigned char *d, size_t len, const leafspec *l, size_t at)
{
    if (at + l->len > len)
        return;
    for (size_t j = 0; j < l->len; j++) {
        unsigned c;
        do
            c = rnd() & 0xff;
        while (!tr_byteset_has(&l->pos[j], c));
        d[at + j] = (unsigned char)c;
    }
}

static void check_random(size_t rounds, size_t max_len)
{
    unsigned char *doc = malloc(max_len + 1);
    assert_non_null(doc);
    size_t wider = 0, equal_checks = 0;
    for (size_t round = 0; round < rounds; round++) {
        leafspec leaves[64];
        size_t nleaves = 0;
        tr_query *q = rand_query(leaves, &nleaves, 3);
        hunt_prefilter *pf = hunt_prefilter_new(q);
        for (int t = 0; t < 12; t++) {
            size_t len = rnd() % (max_len + 1);
            for (size_t i = 0; i < len; i++)
                doc[i] = rbyte();
            /* Plant some leaves: at the start, the end, a lane boundary, anywhere
             * (AT leaves go to their offset some of the time). */
            for (size_t i = 0; i < nleaves; i++) {
                if (rnd() % 3 == 0 || len == 0)
                    continue;
                const leafspec *l = &leaves[i];
                size_t where;
                if (rnd() % 4 == 0) {
                    plant(doc, len, l, rnd() % 8);
                    continue;
                }
                switch (rnd() % 4) {
                case 0: where = 0; break;
                case 1: where = len >= l->len ? len - l->len : 0; break;
                case 2: where = len / 4 * (1 + rnd() % 3); where -= where >= 3 ? rnd() % 4 : 0; break;
                default: where = rnd() % len; break;
                }
                plant(doc, len, l, where);
            }
            bool truth = tr_query_match(q, doc, len);
            bool may = hunt_prefilter_may_match(pf, doc, len);
            size_t head = hunt_prefilter_head(pf);
            if (truth && !hunt_prefilter_may_match_head(pf, len, doc, head < len ? head : len))
                fail_msg("head check lost a document of %zu bytes", len);
            if (truth && !may) {
                tr_buf b = {0};
                tr_query_format(q, &b);
                tr_buf_append(&b, "", 1);
                fail_msg("pre-check lost a document of %zu bytes for %s", len, b.data);
            }
            if (may && !truth)
                wider++;
            equal_checks++;
        }
        hunt_prefilter_free(pf);
        tr_query_free(q);
    }
    /* The check must also rule documents out, or it is useless. */
    assert_true(wider < equal_checks);
    free(doc);
}

static void test_never_loses_small_docs(void **state)
{
    (void)state;
    check_random(3000, 64);
}

static void test_never_loses_large_docs(void **state)
{
    (void)state;
    check_random(400, 20000);
}

/* Every leaf long and narrow: the Wu-Manber path, exact. */
static void test_exact_when_every_leaf_checked(void **state)
{
    (void)state;
    const char *words[] = {"CreateRemoteThread", "VirtualAllocEx", "kernel32.dll", "http://evil"};
    tr_query *kids[4];
    for (int i = 0; i < 4; i++)
        kids[i] = tr_query_literal((const unsigned char *)words[i], strlen(words[i]));
    tr_query *q = tr_query_node(TR_Q_MIN_OF, 2, kids, 4);
    hunt_prefilter *pf = hunt_prefilter_new(q);
    assert_non_null(pf);
    assert_int_equal(hunt_prefilter_exact_leaves(pf), 4);
    size_t len = 1 << 20;
    unsigned char *d = malloc(len);
    assert_non_null(d);
    for (int t = 0; t < 40; t++) {
        for (size_t i = 0; i < len; i++)
            d[i] = (unsigned char)(rnd() % 96 + 32);
        int a = (int)(rnd() % 4), b = (int)(rnd() % 4);
        size_t pa = (size_t)rnd() % (len - 32), pb = t % 2 ? len - strlen(words[b]) : (size_t)rnd() % (len - 32);
        memcpy(d + pa, words[a], strlen(words[a]));
        if (t % 3)
            memcpy(d + pb, words[b], strlen(words[b]));
        assert_int_equal(hunt_prefilter_may_match(pf, d, len), tr_query_match(q, d, len));
    }
    free(d);
    hunt_prefilter_free(pf);
    tr_query_free(q);
}

/* Short leaves and nocase sets: the per-position path, exact too. */
static void test_exact_short_leaves(void **state)
{
    (void)state;
    tr_byteset p[3];
    memset(p, 0, sizeof p);
    tr_byteset_add(&p[0], 'M');
    tr_byteset_add(&p[0], 'm');
    tr_byteset_add(&p[1], 'Z');
    tr_byteset_add(&p[2], 0x90);
    tr_query *kids[2] = {tr_query_seq(p, 3), tr_query_literal((const unsigned char *)"\xd0\xcf\x11\xe0", 4)};
    tr_query *q = tr_query_node(TR_Q_AND, 0, kids, 2);
    hunt_prefilter *pf = hunt_prefilter_new(q);
    assert_non_null(pf);
    assert_int_equal(hunt_prefilter_exact_leaves(pf), 2);
    unsigned char d[64];
    for (int t = 0; t < 2000; t++) {
        size_t len = rnd() % sizeof d;
        for (size_t i = 0; i < len; i++)
            d[i] = "Mmz\x90Z\xd0\xcf\x11\xe0"[rnd() % 9];
        assert_int_equal(hunt_prefilter_may_match(pf, d, len), tr_query_match(q, d, len));
    }
    hunt_prefilter_free(pf);
    tr_query_free(q);
}

/* Header and size checks decide before any scan, from the head alone. */
static void test_fixed_checks(void **state)
{
    (void)state;
    tr_query *kids[3] = {tr_query_at(0, (const unsigned char *)"MZ", 2),
                         tr_query_size(0, 204799),
                         tr_query_literal((const unsigned char *)"PE\0\0", 4)};
    tr_query *q = tr_query_node(TR_Q_AND, 0, kids, 3);
    hunt_prefilter *pf = hunt_prefilter_new(q);
    assert_non_null(pf);
    assert_int_equal(hunt_prefilter_head(pf), 2);
    assert_true(hunt_prefilter_may_match_head(pf, 1000, (const unsigned char *)"MZ", 2));
    assert_false(hunt_prefilter_may_match_head(pf, 1000, (const unsigned char *)"\x7f" "E", 2));
    assert_false(hunt_prefilter_may_match_head(pf, 204800, (const unsigned char *)"MZ", 2));
    assert_false(hunt_prefilter_may_match_head(pf, 1, (const unsigned char *)"M", 1));
    unsigned char d[300] = "MZ";
    assert_false(hunt_prefilter_may_match(pf, d, sizeof d));
    memcpy(d + 200, "PE\0\0", 4);
    assert_true(hunt_prefilter_may_match(pf, d, sizeof d));
    d[1] = 'X';
    assert_false(hunt_prefilter_may_match(pf, d, sizeof d));
    hunt_prefilter_free(pf);
    tr_query_free(q);

    /* No SEQ leaf at all: a size range on its own is still a check. */
    q = tr_query_size(10, 20);
    pf = hunt_prefilter_new(q);
    assert_non_null(pf);
    assert_false(hunt_prefilter_may_match_head(pf, 9, NULL, 0));
    assert_true(hunt_prefilter_may_match(pf, d, 15));
    assert_false(hunt_prefilter_may_match(pf, d, 21));
    hunt_prefilter_free(pf);
    tr_query_free(q);
}

static void test_useless_queries_give_no_check(void **state)
{
    (void)state;
    tr_query *all = tr_query_all();
    assert_null(hunt_prefilter_new(all));
    tr_query_free(all);
    /* "MZ" has no 3-byte window: OR with it can never rule anything out. */
    tr_query *kids[2] = {tr_query_literal((const unsigned char *)"MZ", 2),
                         tr_query_literal((const unsigned char *)"This program", 12)};
    tr_query *q = tr_query_node(TR_Q_OR, 0, kids, 2);
    assert_null(hunt_prefilter_new(q));
    assert_true(hunt_prefilter_may_match(NULL, (const unsigned char *)"", 0));
    tr_query_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_never_loses_small_docs),
        cmocka_unit_test(test_never_loses_large_docs),
        cmocka_unit_test(test_exact_when_every_leaf_checked),
        cmocka_unit_test(test_exact_short_leaves),
        cmocka_unit_test(test_fixed_checks),
        cmocka_unit_test(test_useless_queries_give_no_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
