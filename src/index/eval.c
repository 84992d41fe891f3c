/* Query evaluation. A query is planned once (each SEQ leaf becomes a set of
 * gram windows, each window an OR of keys), then evaluated per segment over
 * local ordinals, mapped to doc ids, tombstones removed, merged.
 *
 * Soundness: a window is only used when every document containing the
 * sequence must contain one of its keys (tr_grams_window); dropping a window
 * only widens. Evaluation with a filter F returns a subset of F, so AND
 * children narrow progressively and later lists are probed (skipping through
 * their blocks) instead of decoded whole. */
#include <stdlib.h>
#include <string.h>

#include <roaring/roaring.h>

#include "index/index_private.h"

#define MAX_WINDOWS 256          /* planned per leaf */
#define EVAL_WINDOWS 16          /* used per leaf per segment, rarest first */

typedef struct pwin {
    int kind;
    uint32_t *keys;
    size_t nkeys;
} pwin;

typedef struct pnode {
    const tr_query *q;
    struct pnode *child;
    size_t n;
    pwin *w;
    size_t nw;
    bool widened;
} pnode;

static int cmp_win(const void *a, const void *b)
{
    const pwin *x = a, *y = b;
    return x->nkeys < y->nkeys ? -1 : x->nkeys > y->nkeys;
}

static void plan_leaf(pnode *p, const tr_index_opts *o)
{
    const tr_query *q = p->q;
    size_t cap = 64;
    pwin *w = tr_xmalloc(cap * sizeof *w);
    size_t nw = 0;
    uint32_t *keys = tr_xmalloc(((size_t)o->window_budget + 1) * sizeof *keys);
    for (int kind = 0; kind < TR_GRAM_KINDS; kind++)
        for (size_t j = 0; j < q->n; j++) {
            size_t nk;
            if (!tr_grams_window(kind, q->pos + j, q->n - j, o->window_budget, keys, &nk))
                continue;
            if (nw == cap) {
                cap *= 2;
                w = tr_xrealloc(w, cap * sizeof *w);
            }
            w[nw].kind = kind;
            w[nw].nkeys = nk;
            w[nw].keys = tr_xmalloc(nk * sizeof *keys);
            memcpy(w[nw].keys, keys, nk * sizeof *keys);
            nw++;
        }
    free(keys);
    /* Narrowest expansions first; stable order keeps position order among equals. */
    for (size_t i = 1; i < nw; i++)
        for (size_t j = i; j > 0 && cmp_win(&w[j - 1], &w[j]) > 0; j--) {
            pwin t = w[j];
            w[j] = w[j - 1];
            w[j - 1] = t;
        }
    size_t used = 0, keep = 0;
    for (size_t i = 0; i < nw; i++) {
        if (keep < MAX_WINDOWS && used + w[i].nkeys <= o->leaf_budget) {
            used += w[i].nkeys;
            w[keep++] = w[i];
        } else {
            free(w[i].keys);
        }
    }
    p->w = w;
    p->nw = keep;
    p->widened = keep == 0;
}

static void plan(pnode *p, const tr_query *q, const tr_index_opts *o)
{
    memset(p, 0, sizeof *p);
    p->q = q;
    if (q->kind == TR_Q_SEQ) {
        plan_leaf(p, o);
    } else if (q->kind == TR_Q_AND || q->kind == TR_Q_OR || q->kind == TR_Q_MIN_OF) {
        p->n = q->n;
        p->child = tr_xcalloc(q->n ? q->n : 1, sizeof *p->child);
        for (size_t i = 0; i < q->n; i++)
            plan(&p->child[i], q->child[i], o);
    }
}

static void plan_free(pnode *p)
{
    for (size_t i = 0; i < p->n; i++)
        plan_free(&p->child[i]);
    free(p->child);
    for (size_t i = 0; i < p->nw; i++)
        free(p->w[i].keys);
    free(p->w);
}

/* ---- per-segment evaluation ---------------------------------------------------- */

typedef struct rset {
    bool all;
    uint32_t *v;
    size_t n;
} rset;

typedef struct ectx {
    const tr_seg *seg;
    bool widened;
    bool corrupt;
} ectx;

static rset rs_all(void) { return (rset){.all = true}; }
static rset rs_empty(void) { return (rset){.all = false}; }

static rset rs_copy(const rset *f)
{
    rset r = {.n = f->n};
    r.v = tr_xmalloc((f->n ? f->n : 1) * sizeof *r.v);
    memcpy(r.v, f->v, f->n * sizeof *r.v);
    return r;
}

static rset rs_filter_or_all(const rset *f) { return f ? rs_copy(f) : rs_all(); }

static void rs_free(rset *r)
{
    free(r->v);
    r->v = NULL;
    r->n = 0;
}

/* Sorted intersection, in place into a. */
static void rs_intersect(rset *a, const uint32_t *b, size_t nb)
{
    size_t i = 0, j = 0, k = 0;
    while (i < a->n && j < nb) {
        if (a->v[i] < b[j])
            i++;
        else if (a->v[i] > b[j])
            j++;
        else {
            a->v[k++] = a->v[i];
            i++;
            j++;
        }
    }
    a->n = k;
}

static rset rs_union(rset *a, rset *b)
{
    rset r = {.n = 0};
    r.v = tr_xmalloc((a->n + b->n + 1) * sizeof *r.v);
    size_t i = 0, j = 0;
    while (i < a->n || j < b->n) {
        uint32_t x;
        if (j == b->n || (i < a->n && a->v[i] < b->v[j]))
            x = a->v[i++];
        else if (i == a->n || b->v[j] < a->v[i])
            x = b->v[j++];
        else {
            x = a->v[i++];
            j++;
        }
        r.v[r.n++] = x;
    }
    rs_free(a);
    rs_free(b);
    return r;
}

typedef struct rwin {
    tr_plist *pl;
    size_t npl;
    uint64_t est;
} rwin;

static int cmp_rwin(const void *a, const void *b)
{
    const rwin *x = a, *y = b;
    return x->est < y->est ? -1 : x->est > y->est;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Resolves the windows of a leaf in one segment. Returns the number usable
 * (kind present in the segment); *empty when some window has no document. */
static size_t resolve(ectx *c, const pnode *p, rwin *rw, bool *empty)
{
    size_t n = 0;
    *empty = false;
    for (size_t i = 0; i < p->nw; i++) {
        const pwin *w = &p->w[i];
        if (!(c->seg->kinds & TR_KIND_BIT(w->kind)))
            continue;
        rwin *r = &rw[n];
        r->pl = tr_xmalloc(w->nkeys * sizeof *r->pl);
        r->npl = 0;
        r->est = 0;
        for (size_t k = 0; k < w->nkeys; k++) {
            const unsigned char *l;
            size_t len;
            int codec;
            if (!tr_seg_lookup(c->seg, w->keys[k], &l, &len, &codec))
                continue;
            if (tr_plist_open(&r->pl[r->npl], codec, l, len) < 0 || r->pl[r->npl].n > c->seg->ndocs) {
                c->corrupt = true;   /* and never size a buffer from a damaged count */
                continue;
            }
            r->est += r->pl[r->npl].n;
            r->npl++;
        }
        n++;
        if (r->npl == 0)
            *empty = true;
    }
    return n;
}

static rset materialize(ectx *c, const rwin *w)
{
    uint32_t nd = c->seg->ndocs;
    rset r = {.n = 0};
    if (w->npl > 1 && w->est > nd / 32) {
        /* Wide unions: a bitmap over the segment beats sorting. */
        uint64_t *bm = tr_xcalloc((size_t)nd / 64 + 1, sizeof *bm);
        uint32_t *tmp = tr_xmalloc(((size_t)nd + 1) * sizeof *tmp);
        for (size_t i = 0; i < w->npl; i++) {
            if (w->pl[i].n > nd) {
                c->corrupt = true;
                continue;
            }
            size_t k = tr_plist_decode(&w->pl[i], tmp);
            if (k == SIZE_MAX) {
                c->corrupt = true;
                continue;
            }
            for (size_t j = 0; j < k; j++)
                if (tmp[j] < nd)
                    bm[tmp[j] >> 6] |= (uint64_t)1 << (tmp[j] & 63);
        }
        free(tmp);
        r.v = tr_xmalloc(((size_t)nd + 1) * sizeof *r.v);
        for (size_t i = 0; i <= (size_t)nd / 64; i++) {
            uint64_t x = bm[i];
            while (x) {
                r.v[r.n++] = (uint32_t)(i * 64 + (size_t)__builtin_ctzll(x));
                x &= x - 1;
            }
        }
        free(bm);
        return r;
    }
    r.v = tr_xmalloc((w->est + 1) * sizeof *r.v);
    for (size_t i = 0; i < w->npl; i++) {
        size_t k = tr_plist_decode(&w->pl[i], r.v + r.n);
        if (k == SIZE_MAX) {
            c->corrupt = true;
            continue;
        }
        r.n += k;
    }
    if (w->npl > 1) {
        qsort(r.v, r.n, sizeof *r.v, cmp_u32);
        size_t k = 0;
        for (size_t i = 0; i < r.n; i++)
            if (k == 0 || r.v[k - 1] != r.v[i])
                r.v[k++] = r.v[i];
        r.n = k;
    }
    return r;
}

static rset eval_leaf(ectx *c, const pnode *p, const rset *f)
{
    if (p->widened) {
        c->widened = true;
        return rs_filter_or_all(f);
    }
    rwin *rw = tr_xmalloc((p->nw + 1) * sizeof *rw);
    bool empty;
    size_t n = resolve(c, p, rw, &empty);
    rset cand;
    if (empty) {
        cand = rs_empty();
    } else if (n == 0) {
        /* The segment lacks every kind this leaf could use. */
        c->widened = true;
        cand = rs_filter_or_all(f);
    } else {
        qsort(rw, n, sizeof *rw, cmp_rwin);
        size_t start = 0;
        if (f) {
            cand = rs_copy(f);
        } else {
            cand = materialize(c, &rw[0]);
            start = 1;
        }
        size_t lim = n < EVAL_WINDOWS ? n : EVAL_WINDOWS;
        for (size_t i = start; i < lim && cand.n > 0; i++) {
            if (rw[i].est < cand.n / 8) {
                rset m = materialize(c, &rw[i]);
                rs_intersect(&cand, m.v, m.n);
                rs_free(&m);
                continue;
            }
            /* Probe: candidates are few relative to the lists. */
            tr_plist_cursor *cur = tr_xmalloc(rw[i].npl * sizeof *cur);
            for (size_t k = 0; k < rw[i].npl; k++)
                tr_plist_cursor_init(&cur[k], &rw[i].pl[k]);
            size_t out = 0;
            for (size_t j = 0; j < cand.n; j++) {
                bool hit = false;
                for (size_t k = 0; k < rw[i].npl && !hit; k++)
                    hit = tr_plist_contains(&cur[k], cand.v[j]);
                if (hit)
                    cand.v[out++] = cand.v[j];
            }
            cand.n = out;
            free(cur);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(rw[i].pl);
    free(rw);
    return cand;
}

static uint64_t estimate_node(ectx *c, const pnode *p);

static uint64_t estimate_leaf(ectx *c, const pnode *p)
{
    uint64_t nd = c->seg->ndocs;
    if (p->widened)
        return nd;
    uint64_t best = nd;
    for (size_t i = 0; i < p->nw; i++) {
        const pwin *w = &p->w[i];
        if (!(c->seg->kinds & TR_KIND_BIT(w->kind)))
            continue;
        uint64_t sum = 0;
        for (size_t k = 0; k < w->nkeys && sum < best; k++) {
            const unsigned char *l;
            size_t len;
            int codec;
            tr_plist pl;
            if (tr_seg_lookup(c->seg, w->keys[k], &l, &len, &codec) && tr_plist_open(&pl, codec, l, len) == 0)
                sum += pl.n;
        }
        if (sum < best)
            best = sum;
    }
    return best;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t estimate_node(ectx *c, const pnode *p)
{
    uint64_t nd = c->seg->ndocs;
    switch (p->q->kind) {
    case TR_Q_ALL:
        return nd;
    case TR_Q_NONE:
        return 0;
    case TR_Q_SEQ:
        return estimate_leaf(c, p);
    case TR_Q_AND: {
        uint64_t m = nd;
        for (size_t i = 0; i < p->n; i++) {
            uint64_t e = estimate_node(c, &p->child[i]);
            if (e < m)
                m = e;
        }
        return m;
    }
    case TR_Q_OR:
    case TR_Q_MIN_OF: {
        uint64_t k = p->q->kind == TR_Q_OR ? 1 : p->q->k;
        if (k == 0)
            return nd;
        if (k > p->n)
            return 0;
        uint64_t *e = tr_xmalloc((p->n + 1) * sizeof *e);
        for (size_t i = 0; i < p->n; i++)
            e[i] = estimate_node(c, &p->child[i]);
        qsort(e, p->n, sizeof *e, cmp_u64);
        /* A doc in >= k children is in at least one of any n-k+1 of them. */
        uint64_t sum = 0;
        for (size_t i = 0; i < p->n - k + 1; i++)
            sum += e[i];
        free(e);
        return sum < nd ? sum : nd;
    }
    }
    return nd;
}

static rset eval_node(ectx *c, const pnode *p, const rset *f);

typedef struct ordered {
    uint64_t est;
    size_t i;
} ordered;

static int cmp_ordered(const void *a, const void *b)
{
    const ordered *x = a, *y = b;
    return x->est < y->est ? -1 : x->est > y->est;
}

static rset eval_and(ectx *c, const pnode *p, const rset *f)
{
    ordered *o = tr_xmalloc((p->n + 1) * sizeof *o);
    for (size_t i = 0; i < p->n; i++) {
        o[i].est = estimate_node(c, &p->child[i]);
        o[i].i = i;
    }
    qsort(o, p->n, sizeof *o, cmp_ordered);
    rset cur = rs_filter_or_all(f);
    for (size_t i = 0; i < p->n; i++) {
        if (!cur.all && cur.n == 0)
            break;
        rset r = eval_node(c, &p->child[o[i].i], cur.all ? NULL : &cur);
        if (r.all)
            continue;
        rs_free(&cur);
        cur = r;
    }
    free(o);
    return cur;
}

static rset eval_or(ectx *c, const pnode *p, const rset *f)
{
    rset acc = rs_empty();
    for (size_t i = 0; i < p->n; i++) {
        rset r = eval_node(c, &p->child[i], f);
        if (r.all || (f && r.n == f->n)) {
            rs_free(&acc);
            return r;
        }
        acc = rs_union(&acc, &r);
    }
    return acc;
}

static rset eval_min(ectx *c, const pnode *p, const rset *f)
{
    uint32_t k = p->q->k, nall = 0;
    if (k == 0)
        return rs_filter_or_all(f);
    tr_buf all = {0};
    for (size_t i = 0; i < p->n; i++) {
        rset r = eval_node(c, &p->child[i], f);
        if (r.all)
            nall++;
        else if (r.n)
            tr_buf_append(&all, r.v, r.n * sizeof *r.v);
        rs_free(&r);
    }
    if (nall >= k) {
        tr_buf_free(&all);
        return rs_filter_or_all(f);
    }
    uint32_t need = k - nall;
    uint32_t *v = (uint32_t *)all.data;
    size_t n = all.len / sizeof *v, out = 0;
    if (n)
        qsort(v, n, sizeof *v, cmp_u32);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && v[j] == v[i])
            j++;
        if (j - i >= need)
            v[out++] = v[i];
        i = j;
    }
    rset r = {.v = v, .n = out};
    if (!r.v)
        r.v = tr_xmalloc(sizeof *r.v);
    return r;
}

static rset eval_node(ectx *c, const pnode *p, const rset *f)
{
    switch (p->q->kind) {
    case TR_Q_ALL:
        return rs_filter_or_all(f);
    case TR_Q_NONE:
        return rs_empty();
    case TR_Q_SEQ:
        return eval_leaf(c, p, f);
    case TR_Q_AND:
        return eval_and(c, p, f);
    case TR_Q_OR:
        return eval_or(c, p, f);
    case TR_Q_MIN_OF:
        return eval_min(c, p, f);
    }
    return rs_filter_or_all(f);
}

int tr_index_query(tr_index *ix, const tr_query *q, uint32_t **ids, size_t *n, bool *widened,
                   tr_error *err)
{
    tr_snap *s;
    if (tr_ix_snap_get(ix, &s, err) < 0)
        return -1;
    pnode root;
    plan(&root, q, &ix->opts);
    tr_buf out = {0};
    bool wide = false, corrupt = false;
    for (size_t i = 0; i < s->nseg; i++) {
        ectx c = {.seg = s->seg[i]};
        rset r = eval_node(&c, &root, NULL);
        wide |= c.widened;
        corrupt |= c.corrupt;
        const tr_seg *g = s->seg[i];
        if (r.all) {
            for (uint32_t o = 0; o < g->ndocs; o++) {
                uint32_t id = tr_seg_doc(g, o);
                if (!tr_ix_u32_in(s->tombs, s->ntombs, id))
                    tr_buf_append(&out, &id, sizeof id);
            }
        } else {
            for (size_t j = 0; j < r.n; j++) {
                if (r.v[j] >= g->ndocs) {
                    corrupt = true;
                    continue;
                }
                uint32_t id = tr_seg_doc(g, r.v[j]);
                if (!tr_ix_u32_in(s->tombs, s->ntombs, id))
                    tr_buf_append(&out, &id, sizeof id);
            }
        }
        rs_free(&r);
    }
    plan_free(&root);
    tr_ix_snap_unref(s);
    if (corrupt) {
        tr_buf_free(&out);
        return tr_fail(err, "index: a segment is corrupt (run `trawl index verify`)");
    }
    uint32_t *v = (uint32_t *)out.data;
    size_t k = out.len / sizeof *v;
    if (k > 1) {
        qsort(v, k, sizeof *v, cmp_u32);
        size_t u = 1;
        for (size_t i = 1; i < k; i++)
            if (v[i] != v[u - 1])
                v[u++] = v[i];
        k = u;
    }
    *ids = v ? v : tr_xmalloc(sizeof *v);
    *n = k;
    if (widened)
        *widened = wide;
    return 0;
}

int tr_index_estimate(tr_index *ix, const tr_query *q, uint64_t *estimate, tr_error *err)
{
    tr_snap *s;
    if (tr_ix_snap_get(ix, &s, err) < 0)
        return -1;
    pnode root;
    plan(&root, q, &ix->opts);
    uint64_t sum = 0;
    for (size_t i = 0; i < s->nseg; i++) {
        ectx c = {.seg = s->seg[i]};
        sum += estimate_node(&c, &root);
    }
    plan_free(&root);
    tr_ix_snap_unref(s);
    *estimate = sum;
    return 0;
}

/* ---- codec comparison -------------------------------------------------------------- */

int tr_index_codec_compare(tr_index *ix, tr_index_codec_report *rep, tr_error *err)
{
    tr_snap *s;
    if (tr_ix_snap_get(ix, &s, err) < 0)
        return -1;
    memset(rep, 0, sizeof *rep);
    int rc = 0;
    for (size_t i = 0; i < s->nseg && rc == 0; i++) {
        const tr_seg *g = s->seg[i];
        uint32_t *v = tr_xmalloc(((size_t)g->ndocs + 1) * sizeof *v);
        tr_seg_iter it;
        tr_seg_iter_init(&it, g);
        int r;
        while ((r = tr_seg_iter_next(&it)) == 1) {
            tr_plist pl;
            size_t n;
            if (tr_plist_open(&pl, it.codec, it.list, it.len) < 0 || pl.n > g->ndocs ||
                (n = tr_plist_decode(&pl, v)) == SIZE_MAX) {
                r = -1;
                break;
            }
            rep->lists++;
            rep->postings += n;
            rep->adaptive += it.len;
            /* ursadb's varint has no length cap: compute it without ours. */
            uint64_t vs = 0, prev = 0;
            for (size_t j = 0; j < n; j++) {
                uint64_t d = v[j] - prev;
                prev = v[j];
                do {
                    vs++;
                    d >>= 7;
                } while (d);
            }
            rep->varint += vs;
            rep->pack += tr_plist_size(TR_CODEC_PACK, v, n);
            rep->bitmap += tr_plist_size(TR_CODEC_BITMAP, v, n);
            roaring_bitmap_t *rb = roaring_bitmap_of_ptr(n, v);
            if (!rb)
                tr_die("out of memory");
            roaring_bitmap_run_optimize(rb);
            rep->roaring += roaring_bitmap_portable_size_in_bytes(rb);
            /* Elias-Fano: n * (2 + floor(log2(U/n))) bits, U = docs in the segment. */
            uint64_t lowbits = 0;
            while (n && ((uint64_t)g->ndocs / n) >> (lowbits + 1))
                lowbits++;
            uint64_t ef = (n * (2 + lowbits) + 7) / 8, bm = ((uint64_t)g->ndocs + 7) / 8;
            rep->elias_fano += ef < bm ? ef : bm;
            roaring_bitmap_free(rb);
        }
        free(v);
        if (r < 0)
            rc = tr_fail(err, "index: segment %s is corrupt", g->name);
    }
    tr_ix_snap_unref(s);
    return rc;
}
