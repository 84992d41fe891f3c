/* The literal pre-check (prefilter.h). */
#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hunt/prefilter.h"

/* A window expands to the product of its positions' set sizes: past this
 * the leaf is not worth anchoring (and counts as present). */
#define WINDOW_BUDGET 64
/* Anchor values per window length: keeps the bitmaps' false-hit rate low. */
#define MAX_ANCHORS (1u << 15)
#define BITMAP_BITS 18
/* AT leaves within this many bytes of the start are checked from a pread of
 * the head, before the file is mapped. */
#define HEAD_MAX 4096
/* A position of a long leaf's window allows at most this many bytes (nocase
 * letters, small hex alternatives). */
#define WM_MAX_SET 4              /* so a block expands to at most 256 values */
#define WM_B 4
#define WM_MIN 8
#define WM_MAX 12
#define WM_BITS 14

typedef struct pnode {
    tr_query_kind kind;
    uint32_t k;
    size_t n;
    size_t *kids;              /* node indices */
    size_t leaf;               /* SEQ: leaf index */
} pnode;

typedef struct pleaf {
    tr_query_kind kind;        /* SEQ, or the fixed checks AT and SIZE */
    tr_byteset *pos;
    size_t len;
    uint64_t off, lo, hi;
    bool always;               /* SEQ without a usable window: counted as present */
} pleaf;

typedef struct anchor {
    uint32_t value;            /* window bytes, little-endian: byte 0 lowest */
    uint32_t leaf;
    uint32_t off;              /* window start within the leaf */
} anchor;

typedef struct anchors {
    anchor *a;
    size_t n, cap;
    uint64_t *bits;            /* 2^BITMAP_BITS bits */
} anchors;

/* Long leaves: Wu-Manber over hashed 4-byte blocks. Every leaf of the group
 * is anchored on a window of m bytes; shift[h] is how far the scan may jump
 * when the block ending at the current position hashes to h, 0 when some
 * window may end there, and then the leaves listed under h are verified.
 * 2-byte blocks were tried first: common text pairs ("nt", "co") end the
 * windows of rules full of words and kept the shifts near 0. */
typedef struct wm_pat {
    uint32_t leaf;
    uint32_t off;              /* window start within the leaf */
} wm_pat;

struct hunt_prefilter {
    pnode *nodes;
    size_t nnodes;
    pleaf *leaves;
    size_t nleaves, nexact, nfixed;
    size_t head;               /* bytes of the file the AT leaves need (<= HEAD_MAX) */
    size_t m;                  /* long-leaf window; 0: no long leaves */
    uint8_t *shift;            /* 2^WM_BITS */
    uint32_t *list_at;         /* 2^WM_BITS + 1 offsets into list */
    wm_pat *list;
    anchors w4, w3;            /* short leaves: hashed 4- and 3-byte anchors */
};

/* Multiplicative hashing to the top `bits` bits. */
static inline uint32_t mulhash(uint32_t v, unsigned bits)
{
    return (uint32_t)(v * 0x9E3779B1u) >> (32 - bits);
}

static inline uint32_t slot(uint32_t v)
{
    return mulhash(v, BITMAP_BITS);
}

static size_t build_node(hunt_prefilter *pf, const tr_query *q)
{
    size_t me = pf->nnodes++;
    pf->nodes = realloc(pf->nodes, pf->nnodes * sizeof *pf->nodes);
    if (!pf->nodes)
        tr_die("out of memory");
    pnode nd = {.kind = q->kind, .k = q->k};
    if (q->kind == TR_Q_SEQ || q->kind == TR_Q_AT || q->kind == TR_Q_SIZE) {
        pf->leaves = tr_xrealloc(pf->leaves, (pf->nleaves + 1) * sizeof *pf->leaves);
        pleaf *l = &pf->leaves[pf->nleaves];
        memset(l, 0, sizeof *l);
        l->kind = q->kind;
        l->len = q->kind == TR_Q_SIZE ? 0 : q->n;
        l->pos = tr_xmalloc((l->len ? l->len : 1) * sizeof *l->pos);
        if (l->len)
            memcpy(l->pos, q->pos, l->len * sizeof *l->pos);
        l->off = q->off;
        l->lo = q->lo;
        l->hi = q->hi;
        l->always = q->kind == TR_Q_SEQ;
        if (q->kind != TR_Q_SEQ) {
            pf->nfixed++;
            if (q->kind == TR_Q_AT && q->off <= HEAD_MAX && q->n <= HEAD_MAX - q->off &&
                q->off + q->n > pf->head)
                pf->head = q->off + q->n;
        }
        nd.leaf = pf->nleaves++;
    } else if (q->kind == TR_Q_AND || q->kind == TR_Q_OR || q->kind == TR_Q_MIN_OF) {
        nd.n = q->n;
        nd.kids = tr_xmalloc((q->n ? q->n : 1) * sizeof *nd.kids);
        for (size_t i = 0; i < q->n; i++)
            nd.kids[i] = build_node(pf, q->child[i]);
    }
    pf->nodes[me] = nd;
    return me;
}

static bool eval(const hunt_prefilter *pf, size_t i, const bool *found)
{
    const pnode *nd = &pf->nodes[i];
    switch (nd->kind) {
    case TR_Q_ALL:
        return true;
    case TR_Q_NONE:
        return false;
    case TR_Q_SEQ:
    case TR_Q_AT:
    case TR_Q_SIZE:
        return found[nd->leaf];
    case TR_Q_AND:
        for (size_t j = 0; j < nd->n; j++)
            if (!eval(pf, nd->kids[j], found))
                return false;
        return true;
    case TR_Q_OR:
        for (size_t j = 0; j < nd->n; j++)
            if (eval(pf, nd->kids[j], found))
                return true;
        return false;
    case TR_Q_MIN_OF: {
        uint32_t hits = 0;
        for (size_t j = 0; j < nd->n && hits < nd->k; j++)
            hits += eval(pf, nd->kids[j], found);
        return hits >= nd->k;
    }
    }
    return true;
}

/* Bytes that fill binaries (padding, -1): an anchor made of them hits
 * everywhere and every hit costs a verification. */
static unsigned position_cost(const tr_byteset *b)
{
    unsigned n = tr_byteset_count(b);
    if (n == 1 && (tr_byteset_has(b, 0x00) || tr_byteset_has(b, 0xff)))
        return 16;
    return n;
}

/* The cheapest window of length wl in leaf l: its start, or -1. */
static long best_window(const pleaf *l, size_t wl, uint64_t *count_out)
{
    long best = -1;
    uint64_t best_cost = UINT64_MAX;
    for (size_t off = 0; off + wl <= l->len; off++) {
        uint64_t count = 1, cost = 1;
        for (size_t j = 0; j < wl; j++) {
            count *= tr_byteset_count(&l->pos[off + j]);
            cost *= position_cost(&l->pos[off + j]);
        }
        if (count == 0 || count > WINDOW_BUDGET)
            continue;
        if (cost < best_cost) {
            best_cost = cost;
            best = (long)off;
            *count_out = count;
        }
    }
    return best;
}

static void add_window(anchors *an, const pleaf *l, uint32_t leaf, size_t off, size_t wl)
{
    unsigned char vals[4][256];
    unsigned cnt[4] = {1, 1, 1, 1};
    for (size_t j = 0; j < wl; j++) {
        cnt[j] = 0;
        for (unsigned c = 0; c < 256; c++)
            if (tr_byteset_has(&l->pos[off + j], c))
                vals[j][cnt[j]++] = (unsigned char)c;
    }
    unsigned idx[4] = {0, 0, 0, 0};
    for (;;) {
        uint32_t v = 0;
        for (size_t j = 0; j < wl; j++)
            v |= (uint32_t)vals[j][idx[j]] << (8 * j);
        if (an->n == an->cap) {
            an->cap = an->cap ? 2 * an->cap : 64;
            an->a = tr_xrealloc(an->a, an->cap * sizeof *an->a);
        }
        an->a[an->n++] = (anchor){.value = v, .leaf = leaf, .off = (uint32_t)off};
        size_t j = 0;
        while (j < wl && ++idx[j] == cnt[j])
            idx[j++] = 0;
        if (j == wl)
            break;
    }
}

static int cmp_anchor(const void *a, const void *b)
{
    const anchor *x = a, *y = b;
    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    return x->leaf < y->leaf ? -1 : x->leaf > y->leaf;
}

static void anchors_finish(anchors *an)
{
    if (an->n == 0)
        return;
    qsort(an->a, an->n, sizeof *an->a, cmp_anchor);
    an->bits = tr_xcalloc((size_t)1 << (BITMAP_BITS - 6), sizeof *an->bits);
    for (size_t i = 0; i < an->n; i++) {
        uint32_t s = slot(an->a[i].value);
        an->bits[s >> 6] |= (uint64_t)1 << (s & 63);
    }
}

void hunt_prefilter_free(hunt_prefilter *pf)
{
    if (!pf)
        return;
    for (size_t i = 0; i < pf->nnodes; i++)
        free(pf->nodes[i].kids);
    free(pf->nodes);
    for (size_t i = 0; i < pf->nleaves; i++)
        free(pf->leaves[i].pos);
    free(pf->leaves);
    free(pf->shift);
    free(pf->list_at);
    free(pf->list);
    free(pf->w4.a);
    free(pf->w4.bits);
    free(pf->w3.a);
    free(pf->w3.bits);
    free(pf);
}

/* Longest run of positions each allowing 1..WM_MAX_SET bytes. */
static size_t narrow_run(const pleaf *l)
{
    size_t best = 0, run = 0;
    for (size_t j = 0; j < l->len; j++) {
        unsigned c = tr_byteset_count(&l->pos[j]);
        run = (c >= 1 && c <= WM_MAX_SET) ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    return best;
}

/* The long leaf's window of pf->m bytes: inside a narrow run, fewest
 * expansions weighted against padding bytes. */
static size_t wm_window(const hunt_prefilter *pf, const pleaf *l)
{
    size_t best = 0;
    double best_cost = 0;
    bool have = false;
    for (size_t off = 0; off + pf->m <= l->len; off++) {
        double cost = 1;
        bool ok = true;
        for (size_t j = 0; j < pf->m && ok; j++) {
            unsigned c = tr_byteset_count(&l->pos[off + j]);
            ok = c >= 1 && c <= WM_MAX_SET;
            cost *= position_cost(&l->pos[off + j]);
        }
        if (ok && (!have || cost < best_cost)) {
            best = off;
            best_cost = cost;
            have = true;
        }
    }
    return best;
}

static inline uint32_t wm_hash(uint32_t v)
{
    return mulhash(v, WM_BITS);
}

/* Calls fn for every value (little-endian) the 4 positions w[0..4) allow. */
static void each_block(const tr_byteset *w, void (*fn)(void *, uint32_t), void *arg)
{
    unsigned char vals[WM_B][256];
    unsigned cnt[WM_B], idx[WM_B] = {0};
    for (size_t j = 0; j < WM_B; j++) {
        cnt[j] = 0;
        for (unsigned c = 0; c < 256; c++)
            if (tr_byteset_has(&w[j], c))
                vals[j][cnt[j]++] = (unsigned char)c;
    }
    for (;;) {
        uint32_t v = 0;
        for (size_t j = 0; j < WM_B; j++)
            v |= (uint32_t)vals[j][idx[j]] << (8 * j);
        fn(arg, v);
        size_t j = 0;
        while (j < WM_B && ++idx[j] == cnt[j])
            idx[j++] = 0;
        if (j == WM_B)
            return;
    }
}

typedef struct wm_ctx {
    hunt_prefilter *pf;
    uint32_t *count;
    uint8_t sh;
    wm_pat pat;
} wm_ctx;

static void wm_lower(void *arg, uint32_t v)
{
    wm_ctx *c = arg;
    uint32_t h = wm_hash(v);
    if (c->pf->shift[h] > c->sh)
        c->pf->shift[h] = c->sh;
}

static void wm_count(void *arg, uint32_t v)
{
    wm_ctx *c = arg;
    c->count[wm_hash(v) + 1]++;
}

static void wm_fill(void *arg, uint32_t v)
{
    wm_ctx *c = arg;
    c->pf->list[c->count[wm_hash(v)]++] = c->pat;
}

static void wm_build(hunt_prefilter *pf, const bool *is_long)
{
    size_t m = pf->m, nh = (size_t)1 << WM_BITS;
    pf->shift = tr_xmalloc(nh);
    memset(pf->shift, (int)(m - WM_B + 1), nh);
    uint32_t *count = tr_xcalloc(nh + 1, sizeof *count);
    size_t *win = tr_xcalloc(pf->nleaves + 1, sizeof *win);
    wm_ctx c = {.pf = pf, .count = count};
    for (size_t i = 0; i < pf->nleaves; i++) {
        if (!is_long[i])
            continue;
        win[i] = wm_window(pf, &pf->leaves[i]);
        const tr_byteset *w = pf->leaves[i].pos + win[i];
        for (size_t q = 0; q + WM_B <= m; q++) {
            c.sh = (uint8_t)(m - WM_B - q);
            each_block(w + q, wm_lower, &c);
        }
        each_block(w + m - WM_B, wm_count, &c);
    }
    for (size_t h = 0; h < nh; h++)
        count[h + 1] += count[h];
    pf->list_at = tr_xmalloc((nh + 1) * sizeof *pf->list_at);
    memcpy(pf->list_at, count, (nh + 1) * sizeof *count);
    pf->list = tr_xmalloc((count[nh] ? count[nh] : 1) * sizeof *pf->list);
    for (size_t i = 0; i < pf->nleaves; i++) {
        if (!is_long[i])
            continue;
        c.pat = (wm_pat){.leaf = (uint32_t)i, .off = (uint32_t)win[i]};
        each_block(pf->leaves[i].pos + win[i] + m - WM_B, wm_fill, &c);
    }
    free(count);
    free(win);
}

/* Whether the SEQ leaves checked so far can never make the query false
 * (fixed checks counted as passing). */
static bool root_always_true(hunt_prefilter *pf)
{
    bool *found = tr_xcalloc(pf->nleaves + 1, sizeof *found);
    for (size_t i = 0; i < pf->nleaves; i++)
        found[i] = pf->leaves[i].always || pf->leaves[i].kind != TR_Q_SEQ;
    bool yes = eval(pf, 0, found);
    free(found);
    return yes;
}

/* Two ways to check, chosen per query: when the leaves with a long narrow
 * run can decide the query on their own, Wu-Manber over those (the others
 * count as present), jumping m-3 bytes at a time; otherwise every leaf with
 * a usable 3- or 4-byte window is anchored and every position is looked up
 * (a short leaf limits Wu-Manber's jumps to nothing, so mixing buys no
 * speed). */
hunt_prefilter *hunt_prefilter_new(const tr_query *q)
{
    if (!q || q->kind == TR_Q_ALL)
        return NULL;
    hunt_prefilter *pf = tr_xcalloc(1, sizeof *pf);
    build_node(pf, q);
    bool *is_long = tr_xcalloc(pf->nleaves + 1, sizeof *is_long);
    for (size_t i = 0; i < pf->nleaves; i++) {
        if (pf->leaves[i].kind != TR_Q_SEQ)
            continue;
        size_t run = narrow_run(&pf->leaves[i]);
        if (run >= WM_MIN) {
            is_long[i] = true;
            pf->leaves[i].always = false;
            pf->m = pf->m == 0 || run < pf->m ? run : pf->m;
        }
    }
    if (pf->m > WM_MAX)
        pf->m = WM_MAX;
    if (pf->m && !root_always_true(pf)) {
        wm_build(pf, is_long);
        for (size_t i = 0; i < pf->nleaves; i++)
            pf->nexact += is_long[i];
        free(is_long);
        return pf;
    }
    free(is_long);
    pf->m = 0;
    for (size_t i = 0; i < pf->nleaves; i++) {
        pleaf *l = &pf->leaves[i];
        if (l->kind != TR_Q_SEQ)
            continue;
        l->always = true;
        uint64_t count = 0;
        long off = best_window(l, 4, &count);
        anchors *an = &pf->w4;
        size_t wl = 4;
        if (off < 0) {
            off = best_window(l, 3, &count);
            an = &pf->w3;
            wl = 3;
        }
        if (off < 0 || an->n + count > MAX_ANCHORS)
            continue;
        add_window(an, l, (uint32_t)i, (size_t)off, wl);
        l->always = false;
        pf->nexact++;
    }
    anchors_finish(&pf->w4);
    anchors_finish(&pf->w3);
    if (root_always_true(pf) && pf->nfixed == 0) {
        hunt_prefilter_free(pf);
        return NULL;
    }
    return pf;
}

size_t hunt_prefilter_exact_leaves(const hunt_prefilter *pf)
{
    return pf ? pf->nexact : 0;
}

static bool leaf_at(const pleaf *l, const unsigned char *p)
{
    for (size_t j = 0; j < l->len; j++)
        if (!tr_byteset_has(&l->pos[j], p[j]))
            return false;
    return true;
}

/* Leaf i placed so that its position off lies at d[at]: true when it is
 * there and was not found before (found is updated). */
static bool place_leaf(const hunt_prefilter *pf, uint32_t i, size_t off, size_t at,
                       const unsigned char *d, size_t len, bool *found)
{
    if (found[i] || at < off)
        return false;
    size_t start = at - off;
    const pleaf *l = &pf->leaves[i];
    if (start + l->len > len || !leaf_at(l, d + start))
        return false;
    found[i] = true;
    return true;
}

/* Every anchor with this value: verify its leaf where the anchor places it.
 * Returns true when a leaf newly found makes the whole query true. */
static bool hit(const hunt_prefilter *pf, const anchors *an, uint32_t v, size_t i,
                const unsigned char *d, size_t len, bool *found)
{
    size_t lo = 0, hi = an->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (an->a[mid].value < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    bool changed = false;
    for (; lo < an->n && an->a[lo].value == v; lo++)
        changed |= place_leaf(pf, an->a[lo].leaf, an->a[lo].off, i, d, len, found);
    return changed && eval(pf, 0, found);
}

/* The leaves listed under h whose window ends at i: true when one newly
 * found makes the query true. */
static bool wm_check(const hunt_prefilter *pf, uint32_t h, size_t i, const unsigned char *d,
                     size_t len, bool *found)
{
    size_t wstart = i + 1 - pf->m;
    bool changed = false;
    for (uint32_t k = pf->list_at[h]; k < pf->list_at[h + 1]; k++)
        changed |= place_leaf(pf, pf->list[k].leaf, pf->list[k].off, wstart, d, len, found);
    return changed && eval(pf, 0, found);
}

/* Each jump depends on the load before it, so one scan waits on memory and
 * the shift table at every step; WM_LANES scans over consecutive stretches
 * of the file run interleaved to overlap those waits. */
#define WM_LANES 4

static bool wm_scan(const hunt_prefilter *pf, const unsigned char *d, size_t len, bool *found)
{
    size_t m = pf->m;
    const uint8_t *shift = pf->shift;
    /* Lane k looks at windows ending in [at[k], end[k]). */
    size_t at[WM_LANES], end[WM_LANES];
    size_t first = m - 1, span = (len - first + WM_LANES - 1) / WM_LANES;
    for (size_t k = 0; k < WM_LANES; k++) {
        at[k] = first + k * span;
        end[k] = at[k] + span < len ? at[k] + span : len;
    }
    for (;;) {
        bool active = false;
        for (size_t k = 0; k < WM_LANES; k++) {
            size_t i = at[k];
            if (i >= end[k])
                continue;
            active = true;
            uint32_t v;
            memcpy(&v, d + i + 1 - WM_B, 4);
            uint32_t h = wm_hash(le32toh(v));
            uint8_t s = shift[h];
            if (s) {
                at[k] = i + s;
                continue;
            }
            if (wm_check(pf, h, i, d, len, found))
                return true;
            at[k] = i + 1;
        }
        if (!active)
            return false;
    }
}

static inline bool bit(const uint64_t *bits, uint32_t v)
{
    uint32_t s = slot(v);
    return (bits[s >> 6] >> (s & 63)) & 1u;
}

static bool fixed_leaf(const pleaf *l, uint64_t size, const unsigned char *head, size_t hlen)
{
    if (l->kind == TR_Q_SIZE)
        return l->lo <= size && size <= l->hi;
    if (l->off > size || l->len > size - l->off)
        return false;
    if (l->off + l->len > hlen)
        return true;   /* beyond what was read: assume it holds */
    return leaf_at(l, head + l->off);
}

/* found[] for the fixed leaves, with every SEQ leaf present (seq_present)
 * or as checked so far. */
static void set_fixed(const hunt_prefilter *pf, bool *found, bool seq_present, uint64_t size,
                      const unsigned char *head, size_t hlen)
{
    for (size_t i = 0; i < pf->nleaves; i++) {
        const pleaf *l = &pf->leaves[i];
        found[i] = l->kind == TR_Q_SEQ ? (seq_present || l->always) : fixed_leaf(l, size, head, hlen);
    }
}

size_t hunt_prefilter_head(const hunt_prefilter *pf)
{
    return pf ? pf->head : 0;
}

bool hunt_prefilter_may_match_head(const hunt_prefilter *pf, uint64_t size,
                                   const unsigned char *head, size_t hlen)
{
    if (!pf || pf->nfixed == 0)
        return true;
    bool *found = calloc(pf->nleaves + 1, sizeof *found);
    if (!found)
        return true;
    set_fixed(pf, found, true, size, head, hlen);
    bool yes = eval(pf, 0, found);
    free(found);
    return yes;
}

bool hunt_prefilter_may_match(const hunt_prefilter *pf, const unsigned char *d, size_t len)
{
    if (!pf)
        return true;
    /* The fixed checks alone may already settle it, without a scan. */
    if (!hunt_prefilter_may_match_head(pf, len, d, len))
        return false;
    bool *found = calloc(pf->nleaves + 1, sizeof *found);
    if (!found)
        return true;   /* cannot check: let libyara decide */
    set_fixed(pf, found, false, len, d, len);
    if (eval(pf, 0, found)) {
        free(found);
        return true;
    }
    bool yes = pf->m && len >= pf->m && wm_scan(pf, d, len, found);
    const uint64_t *b4 = pf->w4.bits, *b3 = pf->w3.bits;
    size_t i = 0;
    if (!yes && (b4 || b3) && len >= 4) {
        for (; i + 4 <= len; i++) {
            uint32_t v;
            memcpy(&v, d + i, 4);
            v = le32toh(v);
            if (b4 && bit(b4, v) && hit(pf, &pf->w4, v, i, d, len, found)) {
                yes = true;
                break;
            }
            if (b3 && bit(b3, v & 0xffffffu) && hit(pf, &pf->w3, v & 0xffffffu, i, d, len, found)) {
                yes = true;
                break;
            }
        }
    }
    /* The last 3-byte window (and files of exactly 3 bytes). */
    if (!yes && b3 && len >= 3 && i + 3 <= len) {
        uint32_t v = (uint32_t)d[i] | (uint32_t)d[i + 1] << 8 | (uint32_t)d[i + 2] << 16;
        if (bit(b3, v))
            yes = hit(pf, &pf->w3, v, i, d, len, found);
    }
    if (!yes)
        yes = eval(pf, 0, found);
    free(found);
    return yes;
}
