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
#define FEW_CANDIDATES 16        /* per leaf per segment: every window is used */
#define EST_WINDOWS 4            /* looked at per leaf per segment by estimates */
#define MEMO_MAX (1u << 17)      /* lookups remembered per segment (~10 MB) */

typedef struct pwin {
    int kind;
    uint32_t *keys;
    size_t nkeys;
    size_t at;                /* offset in the sequence */
} pwin;

/* A leaf's window order, learned from the first segment that evaluates it
 * (see eval_leaf); filled during evaluation, hence outside the const plan.
 * A plan belongs to one tr_index_query call, so no other thread sees it. */
typedef struct worder {
    bool ready;
    size_t *idx;              /* window indexes, rarest in that segment first */
} worder;

typedef struct pnode {
    const tr_query *q;
    struct pnode *child;
    size_t n;
    pwin *w;
    size_t nw;
    bool widened;
    worder *ord;              /* leaves only */
} pnode;

static int cmp_win(const void *a, const void *b)
{
    const pwin *x = a, *y = b;
    return x->nkeys < y->nkeys ? -1 : x->nkeys > y->nkeys;
}

static void plan_free(pnode *p);

/* Keys planned so far across all leaves of one query, against its limit. */
typedef struct pbudget {
    uint64_t keys, limit;
    bool over;
} pbudget;

static void plan_leaf(pnode *p, const tr_index_opts *o, pbudget *b)
{
    const tr_query *q = p->q;
    if (b->over) {
        /* Past the budget nothing more is allocated: the query is refused. */
        p->widened = true;
        return;
    }
    size_t cap = 64;
    pwin *w = tr_xmalloc(cap * sizeof *w);
    size_t nw = 0;
    uint32_t *keys = tr_xmalloc(((size_t)o->window_budget + 1) * sizeof *keys);
    for (int kind = 0; kind < TR_GRAM_KINDS; kind++)
        for (size_t j = 0; j < q->n; j++) {
            size_t nk;
            /* gram3 windows are sized without their keys, which are made
             * below only for the windows kept: a hex string full of ?? has
             * hundreds of 256-key windows and keeps at most 8 of them. */
            if (kind == TR_GRAM3
                    ? !tr_grams_gram3_size(q->pos + j, q->n - j, o->window_budget, &nk)
                    : !tr_grams_window(kind, q->pos + j, q->n - j, o->window_budget, keys, &nk))
                continue;
            if (nw == cap) {
                cap *= 2;
                w = tr_xrealloc(w, cap * sizeof *w);
            }
            w[nw].kind = kind;
            w[nw].nkeys = nk;
            w[nw].at = j;
            w[nw].keys = NULL;
            if (kind != TR_GRAM3) {
                w[nw].keys = tr_xmalloc(nk * sizeof *keys);
                memcpy(w[nw].keys, keys, nk * sizeof *keys);
            }
            nw++;
        }
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
            if (!w[i].keys) {
                size_t nk;
                if (!tr_grams_window(w[i].kind, q->pos + w[i].at, q->n - w[i].at,
                                     o->window_budget, keys, &nk) ||
                    nk != w[i].nkeys)
                    tr_die("index: gram3 window sizes disagree");
                w[i].keys = tr_xmalloc(nk * sizeof *keys);
                memcpy(w[i].keys, keys, nk * sizeof *keys);
            }
            w[keep++] = w[i];
        } else {
            free(w[i].keys);
        }
    }
    free(keys);
    b->keys += used;
    if (b->keys > b->limit)
        b->over = true;
    p->w = w;
    p->nw = keep;
    p->widened = keep == 0;
    p->ord = tr_xcalloc(1, sizeof *p->ord);
    p->ord->idx = tr_xcalloc(keep ? keep : 1, sizeof *p->ord->idx);
}

static void plan(pnode *p, const tr_query *q, const tr_index_opts *o, pbudget *b)
{
    memset(p, 0, sizeof *p);
    p->q = q;
    if (q->kind == TR_Q_SEQ) {
        plan_leaf(p, o, b);
    } else if (q->kind == TR_Q_AND || q->kind == TR_Q_OR || q->kind == TR_Q_MIN_OF) {
        p->n = q->n;
        p->child = tr_xcalloc(q->n ? q->n : 1, sizeof *p->child);
        for (size_t i = 0; i < q->n; i++)
            plan(&p->child[i], q->child[i], o, b);
    }
}

static int over_budget(const pbudget *b, tr_error *err)
{
    return tr_fail(err, "the query needs more than %llu index lookups (the limit): wildcard "
                        "hex strings, alternatives or nocase strings expand too far; make them "
                        "longer or fewer",
                   (unsigned long long)b->limit);
}

/* Plans q for evaluation, or refuses it (nothing left to free) past the budget. */
static int plan_within_budget(pnode *root, const tr_query *q, const tr_index_opts *o,
                              tr_error *err)
{
    pbudget budget = {.limit = TR_INDEX_QUERY_KEYS};
    plan(root, q, o, &budget);
    if (!budget.over)
        return 0;
    plan_free(root);
    return over_budget(&budget, err);
}

int tr_index_query_check(const tr_query *q, uint64_t *keys, tr_error *err)
{
    tr_index_opts o = {.window_budget = TR_INDEX_WINDOW_KEYS, .leaf_budget = TR_INDEX_LEAF_KEYS};
    pbudget b = {.limit = TR_INDEX_QUERY_KEYS};
    pnode root;
    plan(&root, q, &o, &b);
    plan_free(&root);
    if (keys)
        *keys = b.keys;
    return b.over ? over_budget(&b, err) : 0;
}

static void plan_free(pnode *p)
{
    for (size_t i = 0; i < p->n; i++)
        plan_free(&p->child[i]);
    free(p->child);
    for (size_t i = 0; i < p->nw; i++)
        free(p->w[i].keys);
    free(p->w);
    if (p->ord)
        free(p->ord->idx);
    free(p->ord);
}

/* ---- per-segment evaluation ---------------------------------------------------- */

typedef struct rset {
    bool all;
    uint32_t *v;
    size_t n;
} rset;

/* One key's lookup in one segment, kept for the rest of the query. */
typedef struct memo_ent {
    uint32_t key;
    bool used;
    int rc;                   /* tr_plist_open's: 0, or -1 when malformed */
    bool found;
    tr_plist pl;
} memo_ent;

typedef struct ectx {
    const tr_seg *seg;
    bool query;               /* tr_index_query: leaves may learn their order */
    bool widened;
    bool corrupt;
    /* Open-addressed table of the keys looked up in this segment: the AND
     * ordering estimates every child (recursively, at each level), then the
     * evaluation resolves the same windows again, and each lookup is a binary
     * search in the block index plus a scan of up to 64 directory entries on
     * cold mapped pages. Profiled on a 62-segment index, repeats were most of
     * a hunt's index time. */
    memo_ent *memo;
    size_t memo_cap, memo_n;  /* cap: a power of two, or 0 */
} ectx;

static void ectx_free(ectx *c)
{
    free(c->memo);
    c->memo = NULL;
    c->memo_cap = c->memo_n = 0;
}

static size_t memo_slot(const memo_ent *t, size_t cap, uint32_t key)
{
    size_t i = (size_t)((key * 2654435761u) & (cap - 1));
    while (t[i].used && t[i].key != key)
        i = (i + 1) & (cap - 1);
    return i;
}

static void memo_grow(ectx *c)
{
    size_t cap = c->memo_cap ? 2 * c->memo_cap : 256;
    memo_ent *t = tr_xcalloc(cap, sizeof *t);
    for (size_t i = 0; i < c->memo_cap; i++)
        if (c->memo[i].used)
            t[memo_slot(t, cap, c->memo[i].key)] = c->memo[i];
    free(c->memo);
    c->memo = t;
    c->memo_cap = cap;
}

/* The list of key in the segment: NULL when absent, else the opened list
 * with *rc = tr_plist_open's result (the caller judges corruption). */
static const tr_plist *lookup(ectx *c, uint32_t key, int *rc)
{
    /* Bounded: a query of many wildcard strings looks up millions of keys.
     * Callers copy what they keep (resolve_one), so forgetting is safe. */
    if (c->memo_n >= MEMO_MAX) {
        memset(c->memo, 0, c->memo_cap * sizeof *c->memo);
        c->memo_n = 0;
    }
    if (2 * (c->memo_n + 1) > c->memo_cap)
        memo_grow(c);
    memo_ent *e = &c->memo[memo_slot(c->memo, c->memo_cap, key)];
    if (!e->used) {
        const unsigned char *l;
        size_t len;
        int codec;
        e->used = true;
        e->key = key;
        e->found = tr_seg_lookup(c->seg, key, &l, &len, &codec);
        if (e->found)
            e->rc = tr_plist_open(&e->pl, codec, l, len);
        c->memo_n++;
    }
    *rc = e->rc;
    return e->found ? &e->pl : NULL;
}

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

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Looks up the keys of window w in the segment into r. Returns false when
 * the segment lacks the window's kind (the window is unusable there). */
static bool resolve_one(ectx *c, const pwin *w, rwin *r)
{
    r->pl = NULL;
    r->npl = 0;
    r->est = 0;
    if (!(c->seg->kinds & TR_KIND_BIT(w->kind)))
        return false;
    r->pl = tr_xmalloc(w->nkeys * sizeof *r->pl);
    for (size_t k = 0; k < w->nkeys; k++) {
        int rc;
        const tr_plist *pl = lookup(c, w->keys[k], &rc);
        if (!pl)
            continue;
        if (rc < 0 || pl->n > c->seg->ndocs) {
            c->corrupt = true;   /* and never size a buffer from a damaged count */
            continue;
        }
        r->pl[r->npl] = *pl;
        r->est += pl->n;
        r->npl++;
    }
    return true;
}

typedef struct rank {
    uint64_t est;
    size_t i;
} rank;

static int cmp_rank(const void *a, const void *b)
{
    const rank *x = a, *y = b;
    if (x->est != y->est)
        return x->est < y->est ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Sum of the list lengths of window w in the segment, stopping once it
 * exceeds cap (the window then ranks behind the ones that matter); UINT64_MAX
 * when the segment lacks the window's kind. */
static uint64_t window_size(ectx *c, const pwin *w, uint64_t cap)
{
    if (!(c->seg->kinds & TR_KIND_BIT(w->kind)))
        return UINT64_MAX;
    uint64_t sum = 0;
    for (size_t k = 0; k < w->nkeys && sum <= cap; k++) {
        int rc;
        const tr_plist *pl = lookup(c, w->keys[k], &rc);
        if (pl && rc == 0)
            sum += pl->n;
    }
    return sum;
}

/* Orders the leaf's windows rarest first by their list lengths in this
 * segment (windows of kinds it lacks last), once per query. Windows come
 * narrowest first, so the EVAL_WINDOWS-th smallest size found so far soon
 * bounds the rest: a 256-key window (a hex string's `?? 8B EC`) stops being
 * looked up once it is known to be wider, instead of costing 256 lookups. */
static void learn_order(ectx *c, const pnode *p)
{
    rank *r = tr_xmalloc((p->nw + 1) * sizeof *r);
    uint64_t best[EVAL_WINDOWS];  /* smallest sizes so far, ascending */
    size_t nbest = 0;
    for (size_t i = 0; i < p->nw; i++) {
        uint64_t cap = nbest == EVAL_WINDOWS ? best[EVAL_WINDOWS - 1] : UINT64_MAX;
        r[i].i = i;
        r[i].est = window_size(c, &p->w[i], cap);
        if (r[i].est == UINT64_MAX || (nbest == EVAL_WINDOWS && r[i].est >= cap))
            continue;
        size_t j = nbest < EVAL_WINDOWS ? nbest++ : EVAL_WINDOWS - 1;
        while (j > 0 && best[j - 1] > r[i].est) {
            best[j] = best[j - 1];
            j--;
        }
        best[j] = r[i].est;
    }
    qsort(r, p->nw, sizeof *r, cmp_rank);
    for (size_t i = 0; i < p->nw; i++)
        p->ord->idx[i] = r[i].i;
    p->ord->ready = true;
    free(r);
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

/* A leaf in one segment. Windows are taken in the order learned from the
 * first segment evaluated, the largest (rarity is a property of the corpus
 * more than of one segment), and resolved one at a time: the candidates
 * shrink with each, and the leaf stops at the first window that leaves none,
 * or after EVAL_WINDOWS while candidates are many. Resolving every window of every segment up front, to rank
 * them locally, cost ~100 lookups per leaf per segment for long strings: on
 * a 62-segment index that was most of a selective hunt's time (each lookup
 * faults in cold directory and list pages). Sound either way: a window only
 * removes documents that cannot hold the sequence. */
static rset eval_leaf(ectx *c, const pnode *p, const rset *f)
{
    if (p->widened) {
        c->widened = true;
        return rs_filter_or_all(f);
    }
    if (!p->ord->ready)
        learn_order(c, p);   /* lookups memoized: the loop below reuses them */
    rset cand = {.n = 0};
    bool have = false;
    if (f) {
        cand = rs_copy(f);
        have = true;
    }
    size_t used = 0;
    for (size_t j = 0; j < p->nw; j++) {
        if (have && cand.n == 0)
            break;
        /* Past EVAL_WINDOWS only while few candidates remain: a window is
         * then a lookup and a few probes, a false candidate a file read and a
         * libyara scan. So a leaf is at least as narrow as with the locally
         * rarest EVAL_WINDOWS windows wherever its candidates are few. */
        if (used >= EVAL_WINDOWS && (!have || cand.n > FEW_CANDIDATES))
            break;
        rwin rw;
        if (!resolve_one(c, &p->w[p->ord->idx[j]], &rw))
            continue;
        used++;
        if (rw.npl == 0) {
            /* No document here holds this window, so none holds the sequence. */
            free(rw.pl);
            rs_free(&cand);
            return rs_empty();
        }
        if (!have) {
            cand = materialize(c, &rw);
            have = true;
        } else if (rw.est < cand.n / 8) {
            rset m = materialize(c, &rw);
            rs_intersect(&cand, m.v, m.n);
            rs_free(&m);
        } else {
            /* Probe: candidates are few relative to the lists. */
            tr_plist_cursor *cur = tr_xmalloc(rw.npl * sizeof *cur);
            for (size_t k = 0; k < rw.npl; k++)
                tr_plist_cursor_init(&cur[k], &rw.pl[k]);
            size_t out = 0;
            for (size_t i = 0; i < cand.n; i++) {
                bool hit = false;
                for (size_t k = 0; k < rw.npl && !hit; k++)
                    hit = tr_plist_contains(&cur[k], cand.v[i]);
                if (hit)
                    cand.v[out++] = cand.v[i];
            }
            cand.n = out;
            free(cur);
        }
        free(rw.pl);
    }
    if (used == 0) {
        /* The segment lacks every kind this leaf could use. */
        c->widened = true;
        rs_free(&cand);
        return rs_filter_or_all(f);
    }
    return cand;
}

static uint64_t estimate_node(ectx *c, const pnode *p);

static uint64_t estimate_leaf(ectx *c, const pnode *p)
{
    uint64_t nd = c->seg->ndocs;
    if (p->widened)
        return nd;
    uint64_t best = nd;
    /* An AND estimates every child but may evaluate only the first: a leaf
     * that is never evaluated would otherwise look up all its windows in
     * every segment just to be estimated. tr_index_estimate keeps the exact
     * minimum (it reports the figure). */
    if (c->query && !p->ord->ready)
        learn_order(c, p);
    /* Once the leaf's order is known, its first windows bound the estimate
     * (an upper bound, as an estimate may be) without a lookup per window. */
    size_t lim = p->ord->ready && p->nw > EST_WINDOWS ? EST_WINDOWS : p->nw;
    for (size_t j = 0; j < lim; j++) {
        const pwin *w = &p->w[p->ord->ready ? p->ord->idx[j] : j];
        if (!(c->seg->kinds & TR_KIND_BIT(w->kind)))
            continue;
        uint64_t sum = 0;
        for (size_t k = 0; k < w->nkeys && sum < best; k++) {
            int rc;
            const tr_plist *pl = lookup(c, w->keys[k], &rc);
            if (pl && rc == 0)
                sum += pl->n;
        }
        if (sum < best)
            best = sum;
        if (best == 0)
            break;    /* cannot get lower: skip the other windows' lookups */
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
    case TR_Q_AT:
    case TR_Q_SIZE:
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
    case TR_Q_AT:      /* not the index's to answer: see query.h */
    case TR_Q_SIZE:
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
    if (plan_within_budget(&root, q, &ix->opts, err) != 0) {
        tr_ix_snap_unref(s);
        return -1;
    }
    tr_buf out = {0};
    bool wide = false, corrupt = false;
    /* Largest segment first: the first segment a leaf meets sets its window
     * order for the others (eval_leaf), and the most documents make the best
     * sample. The answer is sorted below, so the order changes nothing else. */
    rank *order = tr_xmalloc((s->nseg + 1) * sizeof *order);
    for (size_t i = 0; i < s->nseg; i++) {
        order[i].est = UINT32_MAX - s->seg[i]->ndocs;
        order[i].i = i;
    }
    qsort(order, s->nseg, sizeof *order, cmp_rank);
    for (size_t oi = 0; oi < s->nseg; oi++) {
        const tr_seg *g = s->seg[order[oi].i];
        ectx c = {.seg = g, .query = true};
        rset r = eval_node(&c, &root, NULL);
        ectx_free(&c);
        wide |= c.widened;
        corrupt |= c.corrupt;
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
    free(order);
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
    if (plan_within_budget(&root, q, &ix->opts, err) != 0) {
        tr_ix_snap_unref(s);
        return -1;
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < s->nseg; i++) {
        ectx c = {.seg = s->seg[i]};
        sum += estimate_node(&c, &root);
        ectx_free(&c);
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
