/* index: posting list codecs (round trips, probes, malformed input) and gram
 * extraction / query windows (every kind, both sides agree). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "index/index_internal.h"

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void) { return fixture_rnd(&rng); }

static void roundtrip(const uint32_t *v, size_t n, int codec)
{
    /* A bitmap over a 2^32 span is legal but 512 MiB: AUTO never picks it. */
    if (tr_plist_size(codec, v, n) == SIZE_MAX || tr_plist_size(codec, v, n) > (1u << 20))
        return;
    tr_buf b = {0};
    if (n)
        assert_int_equal(tr_plist_encode(v, n, codec, &b), codec);
    assert_int_equal(b.len, n ? tr_plist_size(codec, v, n) : 0);
    tr_plist pl;
    assert_int_equal(tr_plist_open(&pl, codec, (const unsigned char *)b.data, b.len), 0);
    assert_int_equal(pl.n, n);
    uint32_t *out = tr_xmalloc((n + 1) * sizeof *out);
    assert_int_equal(tr_plist_decode(&pl, out), n);
    if (n)
        assert_memory_equal(out, v, n * sizeof *v);
    /* Probes: every member, its neighbours, increasing then random order. */
    tr_plist_cursor c;
    tr_plist_cursor_init(&c, &pl);
    for (size_t i = 0; i < n; i++) {
        if (v[i] > 0 && (i == 0 || v[i - 1] != v[i] - 1))
            assert_false(tr_plist_contains(&c, v[i] - 1));
        if (!tr_plist_contains(&c, v[i]))
            fail_msg("codec %d n %zu: %u (index %zu) not found", codec, n, v[i], i);
    }
    for (int k = 0; k < 200 && n; k++) {
        size_t i = rnd() % n;
        assert_true(tr_plist_contains(&c, v[i]));
        uint32_t x = k % 2 ? rnd() : v[i] + 1;
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (v[mid] < x)
                lo = mid + 1;
            else
                hi = mid;
        }
        bool in = lo < n && v[lo] == x;
        assert_int_equal(tr_plist_contains(&c, x), in);
    }
    free(out);
    tr_buf_free(&b);
}

static void all_codecs(const uint32_t *v, size_t n)
{
    for (int c = TR_CODEC_VARINT; c <= TR_CODEC_BITMAP; c++)
        roundtrip(v, n, c);
    tr_buf b = {0};
    tr_plist_encode(v, n, TR_CODEC_AUTO, &b);
    size_t best = SIZE_MAX;
    for (int c = TR_CODEC_VARINT; c <= TR_CODEC_BITMAP; c++) {
        size_t s = tr_plist_size(c, v, n);
        if (s < best)
            best = s;
    }
    assert_int_equal(b.len, n ? best : 0);
    tr_buf_free(&b);
}

static void test_codec_edges(void **state)
{
    (void)state;
    all_codecs(NULL, 0);
    uint32_t one[] = {0};
    all_codecs(one, 1);
    uint32_t top[] = {UINT32_MAX - 1};
    all_codecs(top, 1);
    uint32_t ends[] = {0, 1, UINT32_MAX - 2, UINT32_MAX - 1};
    all_codecs(ends, 4);
    /* Dense, block boundaries, 32-bit gaps. */
    size_t sizes[] = {2, 63, 64, 65, 127, 128, 129, 256, 1000, 5000};
    uint32_t *v = tr_xmalloc(70000 * sizeof *v);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        for (size_t i = 0; i < sizes[s]; i++)
            v[i] = (uint32_t)i;
        all_codecs(v, sizes[s]);
        for (size_t i = 0; i < sizes[s]; i++)
            v[i] = (uint32_t)(UINT32_MAX - 1 - (sizes[s] - 1 - i));
        all_codecs(v, sizes[s]);
        for (size_t i = 0; i < sizes[s]; i++)
            v[i] = (uint32_t)(i * 3 + 7);
        all_codecs(v, sizes[s]);
    }
    /* Clustered gaps: one huge gap per block makes varint blocks win. */
    for (size_t i = 0, x = 0; i < 1000; i++) {
        x += i % 100 == 0 ? 3000000 : 1 + rnd() % 3;
        v[i] = (uint32_t)x;
    }
    all_codecs(v, 1000);
    uint32_t gap[] = {0, UINT32_MAX - 1};
    all_codecs(gap, 2);
    for (size_t i = 0; i < 300; i++)
        v[i] = i < 150 ? (uint32_t)i : UINT32_MAX - 1 - (uint32_t)(299 - i);
    all_codecs(v, 300);
    /* Random sparse and dense lists. */
    for (int t = 0; t < 40; t++) {
        size_t n = 1 + rnd() % 3000;
        uint32_t span = t % 2 ? (uint32_t)n * 2 : UINT32_MAX - 1;
        size_t k = 0;
        uint64_t x = rnd() % 16;
        while (k < n && x < span) {
            v[k++] = (uint32_t)x;
            x += 1 + rnd() % (span / n + 1);
        }
        all_codecs(v, k);
    }
    free(v);
}

static void test_codec_auto_choices(void **state)
{
    (void)state;
    uint32_t v[8192];
    for (int i = 0; i < 4096; i++)
        v[i] = (uint32_t)i;
    tr_buf b = {0};
    /* A run packs to zero-width blocks: smaller than a bitmap. */
    assert_int_equal(tr_plist_encode(v, 4096, TR_CODEC_AUTO, &b), TR_CODEC_PACK);
    assert_true(b.len < 4096 / 8);
    /* Half the docs at random: the bitmap wins. */
    size_t n = 0;
    for (uint32_t i = 0; i < 8192; i++)
        if (rnd() & 1)
            v[n++] = i;
    b.len = 0;
    assert_int_equal(tr_plist_encode(v, n, TR_CODEC_AUTO, &b), TR_CODEC_BITMAP);
    for (int i = 0; i < 10; i++)
        v[i] = (uint32_t)i * 1000;
    b.len = 0;
    assert_int_equal(tr_plist_encode(v, 10, TR_CODEC_AUTO, &b), TR_CODEC_VARINT);
    for (int i = 0; i < 4096; i++)
        v[i] = (uint32_t)i * 1000;
    b.len = 0;
    assert_int_equal(tr_plist_encode(v, 4096, TR_CODEC_AUTO, &b), TR_CODEC_PACK);
    assert_true(tr_plist_size(TR_CODEC_VARINT, v, 4096) == SIZE_MAX);
    tr_buf_free(&b);
}

static void test_codec_malformed(void **state)
{
    (void)state;
    uint32_t v[1000];
    for (int i = 0; i < 1000; i++)
        v[i] = (uint32_t)i * 37;
    for (int codec = 0; codec < 3; codec++) {
        tr_buf b = {0};
        tr_plist_encode(v, codec == 0 ? 50 : 1000, codec, &b);
        for (int t = 0; t < 2000; t++) {
            unsigned char *c = tr_xmalloc(b.len);
            memcpy(c, b.data, b.len);
            size_t len = b.len;
            if (t % 3 == 0)
                len = rnd() % b.len;
            for (int f = 0; f < 1 + t % 4; f++)
                c[rnd() % b.len] ^= (unsigned char)(1u << (rnd() % 8));
            tr_plist pl;
            if (tr_plist_open(&pl, codec, c, len) == 0) {
                /* Callers bound n by the segment's doc count before decoding. */
                uint32_t *out = tr_xmalloc(((size_t)(pl.n <= 100000 ? pl.n : 0) + 1) * sizeof *out);
                if (pl.n <= 100000)
                    (void)tr_plist_decode(&pl, out);
                tr_plist_cursor cur;
                tr_plist_cursor_init(&cur, &pl);
                for (int p = 0; p < 50; p++)
                    (void)tr_plist_contains(&cur, rnd() % 40000);
                free(out);
            }
            free(c);
        }
        tr_buf_free(&b);
    }
}

/* ---- grams ------------------------------------------------------------------- */

static bool has_key(const tr_gram_set *s, uint32_t key)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->keys[i] == key)
            return true;
    return false;
}

static void test_grams_gram3(void **state)
{
    (void)state;
    tr_gram_set s;
    tr_gram_set_init(&s);
    const unsigned char d[] = {0x4d, 0x5a, 0x90, 0x00, 0x4d, 0x5a, 0x90};
    tr_grams_extract(d, sizeof d, TR_KIND_BIT(TR_GRAM3), &s);
    assert_int_equal(s.n, 4);   /* 4d5a90 5a9000 90004d 004d5a; the repeat dedups */
    assert_true(has_key(&s, TR_KEY(TR_GRAM3, 0x4d5a90)));
    assert_true(has_key(&s, TR_KEY(TR_GRAM3, 0x004d5a)));
    tr_gram_set_clear(&s);
    tr_grams_extract(d, 2, TR_KIND_BIT(TR_GRAM3), &s);
    assert_int_equal(s.n, 0);
    tr_gram_set_free(&s);
}

/* The extractor (sliced, vectorised skips) against a plain reference over
 * random documents rich in text, NULs and wide strings, at every kind. */
static int cmp_key(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static size_t ref_keys(const unsigned char *d, size_t len, uint32_t *out)
{
    size_t n = 0;
    for (size_t i = 2; i < len; i++)
        out[n++] = TR_KEY(TR_GRAM3, ((uint32_t)d[i - 2] << 16) | ((uint32_t)d[i - 1] << 8) | d[i]);
    for (size_t i = 3; i < len; i++) {
        uint32_t x = 0;
        bool ok = true;
        for (size_t j = i - 3; j <= i; j++) {
            ok &= tr_is_text(d[j]);
            x = (x << 8) | tr_fold(d[j]);
        }
        if (ok)
            out[n++] = TR_KEY(TR_TEXT4, tr_hash24(x));
    }
    for (size_t i = 7; i < len; i++) {
        uint32_t x = 0;
        bool ok = true;
        for (size_t j = i - 7; j <= i; j += 2) {
            ok &= tr_is_text(d[j]) && d[j + 1] == 0;
            x = (x << 8) | tr_fold(d[j]);
        }
        if (ok)
            out[n++] = TR_KEY(TR_WIDE4, tr_hash24(x));
    }
    qsort(out, n, sizeof *out, cmp_key);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || out[k - 1] != out[i])
            out[k++] = out[i];
    return k;
}

static void test_grams_reference(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ull;
    enum { MAXLEN = 150000 };
    unsigned char *d = tr_xmalloc(MAXLEN);
    uint32_t *want = tr_xmalloc(3 * (size_t)MAXLEN * sizeof *want);
    tr_gram_set s;
    tr_gram_set_init(&s);
    static const size_t lens[] = {0, 1, 2, 3, 7, 8, 9, 16, 17, 18, 33, 100, 4099, 65535, 65536, 65537, 140001};
    for (size_t t = 0; t < sizeof lens / sizeof *lens; t++) {
        size_t len = lens[t];
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            unsigned r = (unsigned)(x >> 40);
            /* Runs of wide text, plain text and binary. */
            int mode = (int)((i / 97 + t) % 3);
            if (mode == 0)
                d[i] = (i & 1) ? (r % 9 ? 0 : 1) : (unsigned char)("aZ \t\r\nq~}"[r % 9]);
            else if (mode == 1)
                d[i] = (unsigned char)(0x1e + r % 0x64);
            else
                d[i] = (unsigned char)r;
        }
        size_t nw = ref_keys(d, len, want);
        tr_grams_extract(d, len, TR_KIND_BIT(TR_GRAM3) | TR_KIND_BIT(TR_TEXT4) | TR_KIND_BIT(TR_WIDE4), &s);
        qsort(s.keys, s.n, sizeof *s.keys, cmp_key);
        assert_int_equal(s.n, nw);
        for (size_t i = 0; i < nw; i++)
            assert_int_equal(s.keys[i], want[i]);
        tr_gram_set_clear(&s);
    }
    tr_gram_set_free(&s);
    free(want);
    free(d);
}

static void test_grams_text4_wide4(void **state)
{
    (void)state;
    tr_gram_set s;
    tr_gram_set_init(&s);
    const unsigned char *t = (const unsigned char *)"\x01Hello\x02";
    tr_grams_extract(t, 7, TR_KIND_BIT(TR_TEXT4), &s);
    assert_int_equal(s.n, 2);   /* hell, ello */
    uint32_t hell = TR_KEY(TR_TEXT4, tr_hash24(('h' << 24) | ('e' << 16) | ('l' << 8) | 'l'));
    assert_true(has_key(&s, hell));
    tr_gram_set_clear(&s);
    tr_grams_extract((const unsigned char *)"hELL", 4, TR_KIND_BIT(TR_TEXT4), &s);
    assert_int_equal(s.n, 1);
    assert_true(has_key(&s, hell));
    tr_gram_set_clear(&s);
    const unsigned char w[] = {0xff, 'K', 0, 'e', 0, 'R', 0, 'n', 0, 'e', 0, 0xff, 0};
    tr_grams_extract(w, sizeof w, TR_KIND_BIT(TR_WIDE4), &s);
    assert_int_equal(s.n, 2);   /* kern, erne */
    assert_true(has_key(&s, TR_KEY(TR_WIDE4, tr_hash24(('k' << 24) | ('e' << 16) | ('r' << 8) | 'n'))));
    tr_gram_set_clear(&s);
    /* Wide text must be 0-interleaved: plain text gives no wide4. */
    tr_grams_extract((const unsigned char *)"kernel32", 8, TR_KIND_BIT(TR_WIDE4), &s);
    assert_int_equal(s.n, 0);
    tr_gram_set_free(&s);
}

static void test_grams_window_shapes(void **state)
{
    (void)state;
    tr_byteset pos[8];
    uint32_t keys[1024];
    size_t nk;
    memset(pos, 0, sizeof pos);
    /* {4D 5A ??}: 256 keys, usable with budget 256, not with 255. */
    tr_byteset_add(&pos[0], 0x4d);
    tr_byteset_add(&pos[1], 0x5a);
    tr_byteset_fill(&pos[2]);
    assert_int_equal(tr_grams_window(TR_GRAM3, pos, 3, 256, keys, &nk), 3);
    assert_int_equal(nk, 256);
    assert_int_equal(tr_grams_window(TR_GRAM3, pos, 3, 255, keys, &nk), 0);
    assert_int_equal(tr_grams_window(TR_GRAM3, pos, 2, 256, keys, &nk), 0);
    /* nocase "abcd": 16 gram3 combos per window... 8 for 3 letters; 1 text4 key. */
    memset(pos, 0, sizeof pos);
    for (int i = 0; i < 4; i++) {
        tr_byteset_add(&pos[i], (unsigned)('a' + i));
        tr_byteset_add(&pos[i], (unsigned)('A' + i));
    }
    assert_int_equal(tr_grams_window(TR_GRAM3, pos, 4, 256, keys, &nk), 3);
    assert_int_equal(nk, 8);
    assert_int_equal(tr_grams_window(TR_TEXT4, pos, 4, 256, keys, &nk), 4);
    assert_int_equal(nk, 1);
    /* A non-text byte makes text4 unusable (a doc could hold it). */
    tr_byteset_add(&pos[2], 0x00);
    assert_int_equal(tr_grams_window(TR_TEXT4, pos, 4, 256, keys, &nk), 0);
    /* wide4 needs 00 at odd positions exactly. */
    memset(pos, 0, sizeof pos);
    for (int i = 0; i < 8; i++)
        tr_byteset_add(&pos[i], i % 2 ? 0 : (unsigned)"kern"[i / 2]);
    assert_int_equal(tr_grams_window(TR_WIDE4, pos, 8, 256, keys, &nk), 8);
    assert_int_equal(nk, 1);
    tr_byteset_add(&pos[3], 1);
    assert_int_equal(tr_grams_window(TR_WIDE4, pos, 8, 256, keys, &nk), 0);
}

/* The contract both sides must keep: if doc contains the sequence, then for
 * every usable window, doc has one of the window's keys. */
static void test_grams_agree_random(void **state)
{
    (void)state;
    tr_gram_set s;
    tr_gram_set_init(&s);
    const unsigned char alpha[] = "aAbB \0\x01\n";
    uint32_t keys[4096];
    for (int t = 0; t < 3000; t++) {
        unsigned char d[64];
        size_t len = 9 + rnd() % 55;
        for (size_t i = 0; i < len; i++)
            d[i] = alpha[rnd() % 8];
        tr_grams_extract(d, len, (1u << TR_GRAM_KINDS) - 1, &s);
        size_t off = rnd() % (len - 8), sl = 3 + rnd() % 6;
        if (off + sl > len)
            sl = len - off;
        tr_byteset pos[16];
        memset(pos, 0, sizeof pos);
        for (size_t j = 0; j < sl; j++) {
            tr_byteset_add(&pos[j], d[off + j]);
            /* Widen with other letters or their case twin. */
            if (rnd() % 3 == 0)
                tr_byteset_add(&pos[j], alpha[rnd() % 8]);
            if (rnd() % 4 == 0 && d[off + j] >= 'a' && d[off + j] <= 'z')
                tr_byteset_add(&pos[j], d[off + j] - 32u);
        }
        for (int kind = 0; kind < TR_GRAM_KINDS; kind++)
            for (size_t j = 0; j < sl; j++) {
                size_t nk;
                if (!tr_grams_window(kind, pos + j, sl - j, 4096, keys, &nk))
                    continue;
                bool any = false;
                for (size_t k = 0; k < nk && !any; k++)
                    any = has_key(&s, keys[k]);
                assert_true(any);
            }
        tr_gram_set_clear(&s);
    }
    tr_gram_set_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_edges),
        cmocka_unit_test(test_codec_auto_choices),
        cmocka_unit_test(test_codec_malformed),
        cmocka_unit_test(test_grams_gram3),
        cmocka_unit_test(test_grams_text4_wide4),
        cmocka_unit_test(test_grams_reference),
        cmocka_unit_test(test_grams_window_shapes),
        cmocka_unit_test(test_grams_agree_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
