/* Gram extraction (documents) and window expansion (queries). The two sides
 * must agree exactly: a document containing a byte sequence must produce
 * every key the query side derives from it, or the index loses matches. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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

static inline void set_add(tr_gram_set *s, uint32_t key)
{
    uint64_t m = (uint64_t)1 << (key & 63);
    uint64_t *w = &s->bits[key >> 6];
    if (*w & m)
        return;
    *w |= m;
    if (s->n == s->cap) {
        s->cap *= 2;
        s->keys = tr_xrealloc(s->keys, s->cap * sizeof *s->keys);
    }
    s->keys[s->n++] = key;
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

void tr_grams_extract(const unsigned char *d, size_t len, uint32_t kinds, tr_gram_set *s)
{
    if ((kinds & TR_KIND_BIT(TR_GRAM3)) && len >= 3) {
        uint32_t g = ((uint32_t)d[0] << 8) | d[1];
        for (size_t i = 2; i < len; i++) {
            g = ((g << 8) | d[i]) & 0xffffff;
            set_add(s, g);   /* TR_KEY(TR_GRAM3, g) == g */
        }
    }
    if ((kinds & TR_KIND_BIT(TR_TEXT4)) && len >= 4) {
        uint32_t w = 0;
        size_t run = 0;
        for (size_t i = 0; i < len; i++) {
            if (!tr_is_text(d[i])) {
                run = 0;
                continue;
            }
            w = (w << 8) | tr_fold(d[i]);
            if (++run >= 4)
                set_add(s, text4_key(w));
        }
    }
    if ((kinds & TR_KIND_BIT(TR_WIDE4)) && len >= 8) {
        /* Two interleaved runs, one per byte parity. */
        uint32_t w[2] = {0, 0};
        size_t run[2] = {0, 0};
        for (size_t i = 0; i + 1 < len; i++) {
            int p = (int)(i & 1);
            if (d[i + 1] != 0 || !tr_is_text(d[i])) {
                run[p] = 0;
                continue;
            }
            w[p] = (w[p] << 8) | tr_fold(d[i]);
            if (++run[p] >= 4)
                set_add(s, wide4_key(w[p]));
        }
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
