/* Gram extraction (documents) and window expansion (queries). The two sides
 * must agree exactly: a document containing a byte sequence must produce
 * every key the query side derives from it, or the index loses matches. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "index/index_internal.h"

const char *tr_gram_kind_name(int kind)
{
    switch (kind) {
    case TR_GRAM3: return "gram3";
    case TR_TEXT4: return "text4";
    case TR_WIDE4: return "wide4";
    default: return "?";
    }
}

unsigned char tr_fold(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

bool tr_is_text(unsigned char c)
{
    return (c >= 0x20 && c <= 0x7e) || c == '\t' || c == '\n' || c == '\r';
}

uint32_t tr_hash24(uint32_t x)
{
    /* Multiplicative hashing keeps the high bits well mixed; 4 folded text
     * chars (< 2^28 distinct values) land in 2^24 buckets. */
    return (uint32_t)(((uint64_t)x * 0x9E3779B97F4A7C15ull) >> 40);
}

void *tr_ix_huge_alloc(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        tr_die("out of memory (%zu bytes)", n);
#ifdef MADV_HUGEPAGE
    madvise(p, n, MADV_HUGEPAGE);   /* advisory: fine if refused */
#endif
    return p;
}

void tr_ix_huge_free(void *p, size_t n)
{
    if (p)
        munmap(p, n);
}

void tr_gram_set_init(tr_gram_set *s)
{
    s->bits = tr_ix_huge_alloc(TR_KEY_SPACE / 8);
    s->cap = 1 << 16;
    s->keys = tr_xmalloc(s->cap * sizeof *s->keys);
    s->n = 0;
}

void tr_gram_set_clear(tr_gram_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        s->bits[s->keys[i] >> 6] = 0;
    s->n = 0;
}

void tr_gram_set_free(tr_gram_set *s)
{
    tr_ix_huge_free(s->bits, TR_KEY_SPACE / 8);
    free(s->keys);
    memset(s, 0, sizeof *s);
}

static inline uint32_t text4_key(uint32_t folded4)
{
    return TR_KEY(TR_TEXT4, tr_hash24(folded4));
}

static inline uint32_t wide4_key(uint32_t folded4)
{
    /* A different seed than text4 would not matter: kinds live in separate key ranges. */
    return TR_KEY(TR_WIDE4, tr_hash24(folded4));
}

void tr_gram_cursor_init(tr_gram_cursor *c, uint32_t kinds)
{
    memset(c, 0, sizeof *c);
    c->kinds = kinds;
}

/* Branch-free insert: the key is always stored at out[n] and kept (n + 1)
 * only when its bit was clear. A branch on "seen" mispredicts on binary
 * data, and the store is cheaper than the miss. */
#define SEEN_ADD(bits, key, out, n)                                       \
    do {                                                                  \
        uint32_t k_ = (key);                                              \
        uint64_t *w_ = &(bits)[k_ >> 6];                                  \
        uint64_t m_ = (uint64_t)1 << (k_ & 63), o_ = *w_;                 \
        *w_ = o_ | m_;                                                    \
        (out)[(n)] = k_;                                                  \
        (n) += (o_ & m_) == 0;                                            \
    } while (0)

size_t tr_grams_feed(tr_gram_cursor *c, const unsigned char *d, size_t len, size_t to,
                     uint64_t *bits, uint32_t *out)
{
    size_t n = 0, from = c->pos;
    if (to > len)
        to = len;
    if (from >= to)
        return 0;
    if (c->kinds & TR_KIND_BIT(TR_GRAM3)) {
        uint32_t g = c->g;
        size_t i = from;
        for (; i < to && i < 2; i++)
            g = (g << 8) | d[i];
        for (; i < to; i++) {
            g = ((g << 8) | d[i]) & 0xffffff;
            SEEN_ADD(bits, g, out, n);   /* TR_KEY(TR_GRAM3, g) == g */
        }
        c->g = g;
    }
    if (c->kinds & TR_KIND_BIT(TR_TEXT4)) {
        uint32_t w = c->tw;
        size_t run = c->trun;
        for (size_t i = from; i < to; i++) {
            if (!tr_is_text(d[i])) {
                run = 0;
                continue;
            }
            w = (w << 8) | tr_fold(d[i]);
            if (++run >= 4)
                SEEN_ADD(bits, text4_key(w), out, n);
        }
        c->tw = w;
        c->trun = run;
    }
    if (c->kinds & TR_KIND_BIT(TR_WIDE4)) {
        /* Two interleaved runs, one per byte parity; position i needs d[i + 1]. */
        size_t end = to < len - 1 ? to : len - 1;
        /* State in locals: the stores to bits/out could alias the cursor. */
        uint32_t ww[2] = {c->ww[0], c->ww[1]};
        size_t wrun[2] = {c->wrun[0], c->wrun[1]};
        for (size_t i = from; i < end; i++) {
#ifdef __SSE2__
            /* 16 positions at once: where none is a text byte followed by
             * a NUL, both runs just end (most of a binary, all of a text). */
            if ((i & 15) == 0 && i + 17 <= len && i + 16 <= end) {
                __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(d + i));
                __m128i z = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)(d + i + 1)),
                                           _mm_setzero_si128());
                __m128i t = _mm_xor_si128(_mm_sub_epi8(v, _mm_set1_epi8(0x20)), _mm_set1_epi8((char)0x80));
                __m128i txt = _mm_cmplt_epi8(t, _mm_set1_epi8((char)(0x5f ^ 0x80)));   /* 0x20..0x7e */
                txt = _mm_or_si128(txt, _mm_cmpeq_epi8(v, _mm_set1_epi8('\t')));
                txt = _mm_or_si128(txt, _mm_cmpeq_epi8(v, _mm_set1_epi8('\n')));
                txt = _mm_or_si128(txt, _mm_cmpeq_epi8(v, _mm_set1_epi8('\r')));
                if (_mm_movemask_epi8(_mm_and_si128(txt, z)) == 0) {
                    wrun[0] = wrun[1] = 0;
                    i += 15;
                    continue;
                }
            }
#endif
            int p = (int)(i & 1);
            if (d[i + 1] != 0 || !tr_is_text(d[i])) {
                wrun[p] = 0;
                continue;
            }
            ww[p] = (ww[p] << 8) | tr_fold(d[i]);
            if (++wrun[p] >= 4)
                SEEN_ADD(bits, wide4_key(ww[p]), out, n);
        }
        c->ww[0] = ww[0];
        c->ww[1] = ww[1];
        c->wrun[0] = wrun[0];
        c->wrun[1] = wrun[1];
    }
    c->pos = to;
    return n;
}

void tr_grams_extract(const unsigned char *d, size_t len, uint32_t kinds, tr_gram_set *s)
{
    tr_gram_cursor c;
    tr_gram_cursor_init(&c, kinds);
    size_t pos = 0;
    while (pos < len) {
        size_t to = len - pos > TR_GRAM_SLICE ? pos + TR_GRAM_SLICE : len;
        size_t need = s->n + TR_GRAM_SLICE_KEYS;
        if (need > s->cap) {
            while (s->cap < need)
                s->cap *= 2;
            s->keys = tr_xrealloc(s->keys, s->cap * sizeof *s->keys);
        }
        s->n += tr_grams_feed(&c, d, len, to, s->bits, s->keys + s->n);
        pos = to;
    }
}

/* Folded distinct values of a byte set; false if some byte is not text. */
static bool fold_set(const tr_byteset *b, bool need_text, unsigned char *out, unsigned *n)
{
    bool seen[256] = {false};
    *n = 0;
    for (unsigned c = 0; c < 256; c++) {
        if (!tr_byteset_has(b, c))
            continue;
        if (need_text && !tr_is_text((unsigned char)c))
            return false;
        unsigned char f = need_text ? tr_fold((unsigned char)c) : (unsigned char)c;
        if (!seen[f]) {
            seen[f] = true;
            out[(*n)++] = f;
        }
    }
    return *n > 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

size_t tr_grams_gram3_size(const tr_byteset *pos, size_t len, uint32_t budget, size_t *nkeys)
{
    *nkeys = 0;
    if (len < 3)
        return 0;
    uint64_t prod = 1;
    for (int j = 0; j < 3; j++)
        prod *= tr_byteset_count(&pos[j]);
    if (prod == 0 || prod > budget)
        return 0;
    *nkeys = (size_t)prod;
    return 3;
}

size_t tr_grams_window(int kind, const tr_byteset *pos, size_t len, uint32_t budget,
                       uint32_t *keys, size_t *nkeys)
{
    *nkeys = 0;
    unsigned char vals[4][256];
    unsigned cnt[4];
    size_t wlen;
    if (kind == TR_GRAM3) {
        wlen = 3;
        if (len < wlen)
            return 0;
        for (int j = 0; j < 3; j++)
            if (!fold_set(&pos[j], false, vals[j], &cnt[j]))
                return 0;
    } else if (kind == TR_TEXT4) {
        wlen = 4;
        if (len < wlen)
            return 0;
        for (int j = 0; j < 4; j++)
            if (!fold_set(&pos[j], true, vals[j], &cnt[j]))
                return 0;
    } else if (kind == TR_WIDE4) {
        wlen = 8;
        if (len < wlen)
            return 0;
        for (int j = 0; j < 4; j++) {
            const tr_byteset *hi = &pos[2 * j + 1];
            if (tr_byteset_count(hi) != 1 || !tr_byteset_has(hi, 0))
                return 0;
            if (!fold_set(&pos[2 * j], true, vals[j], &cnt[j]))
                return 0;
        }
    } else {
        return 0;
    }
    int m = kind == TR_GRAM3 ? 3 : 4;
    uint64_t prod = 1;
    for (int j = 0; j < m; j++)
        prod *= cnt[j];
    if (prod > budget)
        return 0;
    unsigned idx[4] = {0, 0, 0, 0};
    size_t n = 0;
    for (;;) {
        uint32_t x = 0;
        for (int j = 0; j < m; j++)
            x = (x << 8) | vals[j][idx[j]];
        keys[n++] = kind == TR_GRAM3 ? TR_KEY(TR_GRAM3, x)
                    : kind == TR_TEXT4 ? text4_key(x) : wide4_key(x);
        int j = m - 1;
        while (j >= 0 && ++idx[j] == cnt[j])
            idx[j--] = 0;
        if (j < 0)
            break;
    }
    /* gram3 keys come out sorted and distinct (fold_set lists each set in
     * ascending order, the odometer runs last position fastest): a hex
     * string full of ?? plans hundreds of 256-key windows, and sorting them
     * was half of such a hunt's index time. */
    if (kind == TR_GRAM3) {
        *nkeys = n;
        return wlen;
    }
    /* Hashed kinds may collide: dedup so lists are not unioned twice. */
    qsort(keys, n, sizeof *keys, cmp_u32);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || keys[k - 1] != keys[i])
            keys[k++] = keys[i];
    *nkeys = k;
    return wlen;
}
