/* The in-memory (or mapped) index of one kind: a VP-tree for TLSH-valued
 * hashes, a 7-gram table for ssdeep, and the tail of samples added since the
 * index was built. */
#include <fuzzy.h>
#include <stdlib.h>
#include <string.h>

#include "similar/similar_internal.h"

/* ---- bounded best-k list (k is small: what a page shows) ---------------- */

typedef struct topk {
    tr_similar_hit *h;
    size_t n, k;
    bool score;               /* higher is closer */
} topk;

/* true when a is nearer than b; ties by id so every method agrees. */
static bool nearer(const topk *t, int da, int64_t ia, int db, int64_t ib)
{
    if (da != db)
        return t->score ? da > db : da < db;
    return ia < ib;
}

static void topk_add(topk *t, int d, int64_t id)
{
    if (t->k == 0)
        return;
    if (t->n == t->k && !nearer(t, d, id, t->h[t->n - 1].distance, t->h[t->n - 1].id))
        return;
    size_t i = t->n < t->k ? t->n++ : t->n - 1;
    while (i > 0 && nearer(t, d, id, t->h[i - 1].distance, t->h[i - 1].id)) {
        t->h[i] = t->h[i - 1];
        i--;
    }
    t->h[i].distance = d;
    t->h[i].id = id;
}

/* The current k-th distance, or a bound larger than any when not full. */
static int topk_tau(const topk *t)
{
    return t->n < t->k ? 1 << 20 : t->h[t->n - 1].distance;
}

/* ---- VP-tree ------------------------------------------------------------- */

typedef struct vp_pair {
    int d;
    sim_vp_node node;
} vp_pair;

static int pair_cmp(const void *a, const void *b)
{
    const vp_pair *x = a, *y = b;
    if (x->d != y->d)
        return x->d < y->d ? -1 : 1;
    return x->node.id < y->node.id ? -1 : x->node.id > y->node.id;
}

/* Node lo is the vantage point of [lo, hi); [lo+1, mid) lie within mu of it,
 * [mid, hi) at mu or beyond. Built in place: no pointers to store. */
static void vp_build(sim_vp_node *nodes, size_t lo, size_t hi, vp_pair *scratch, uint64_t *rng)
{
    if (hi <= lo)
        return;
    if (hi - lo == 1) {
        nodes[lo].mid = (uint32_t)hi;
        nodes[lo].mu = 0;
        return;
    }
    /* A random vantage point: input sorted by id would otherwise put
     * near-identical versions of one file at every level. */
    *rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
    size_t pick = lo + (size_t)((*rng >> 33) % (hi - lo));
    sim_vp_node tmp = nodes[lo];
    nodes[lo] = nodes[pick];
    nodes[pick] = tmp;
    size_t m = hi - lo - 1;
    for (size_t i = 0; i < m; i++) {
        scratch[i].node = nodes[lo + 1 + i];
        scratch[i].d = tr_tlsh_distance(&nodes[lo].code, &scratch[i].node.code);
    }
    qsort(scratch, m, sizeof *scratch, pair_cmp);
    for (size_t i = 0; i < m; i++)
        nodes[lo + 1 + i] = scratch[i].node;
    size_t mid = lo + 1 + m / 2;
    nodes[lo].mid = (uint32_t)mid;
    nodes[lo].mu = mid < hi ? scratch[m / 2].d : 0;
    vp_build(nodes, lo + 1, mid, scratch, rng);
    vp_build(nodes, mid, hi, scratch, rng);
}

typedef struct vp_search {
    const sim_vp_node *nodes;
    const tr_tlsh_code *q;
    int64_t exclude;
    int slack;
    topk *t;
    size_t work;
} vp_search;

static void vp_knn(vp_search *s, size_t lo, size_t hi)
{
    if (lo >= hi)
        return;
    const sim_vp_node *v = &s->nodes[lo];
    int d = tr_tlsh_distance(s->q, &v->code);
    s->work++;
    if (v->id != s->exclude)
        topk_add(s->t, d, v->id);
    size_t mid = v->mid;
    /* A damaged file must not send the walk outside its range. */
    if (mid < lo + 1 || mid > hi)
        mid = hi;
    int mu = v->mu;
    /* TLSH's distance is not a metric (a quartile step of 3 costs 6, an
     * L-value step of 2 costs 24), so the triangle-inequality bounds are
     * widened by a slack: the price of recall, measured by bench/similar.sh. */
    if (d < mu) {
        vp_knn(s, lo + 1, mid);
        if (mu - d <= topk_tau(s->t) + s->slack)
            vp_knn(s, mid, hi);
    } else {
        vp_knn(s, mid, hi);
        if (d - mu <= topk_tau(s->t) + s->slack)
            vp_knn(s, lo + 1, mid);
    }
}


/* ---- neighbour graph ------------------------------------------------------ */

/* A navigable small-world graph: each entry linked to near entries, so that
 * a walk from the VP-tree's descent towards ever nearer entries finds the
 * query's neighbours after a few hundred comparisons. Unlike the tree's
 * pruning this needs no triangle inequality, which TLSH's distance lacks. */

typedef struct cand {
    int d;
    uint32_t pos;
} cand;

static bool cand_less(cand a, cand b)
{
    return a.d != b.d ? a.d < b.d : a.pos < b.pos;
}

static void heap_push(cand **h, size_t *n, size_t *cap, cand c)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        *h = tr_xrealloc(*h, *cap * sizeof **h);
    }
    size_t i = (*n)++;
    while (i > 0 && cand_less(c, (*h)[(i - 1) / 2])) {
        (*h)[i] = (*h)[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    (*h)[i] = c;
}

static cand heap_pop(cand *h, size_t *n)
{
    cand top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && cand_less(h[c + 1], h[c]))
            c++;
        if (!cand_less(h[c], last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n)
        h[i] = last;
    return top;
}

typedef struct walk {
    tr_simix *ix;
    const uint32_t *graph;
    cand *pool, *heap;
    size_t np, ef, nh, caph;
} walk;

/* Returns the distance of q to the entry at pos (-1 when already seen). */
static int walk_offer(walk *w, const tr_tlsh_code *q, uint32_t pos)
{
    tr_simix *ix = w->ix;
    if (ix->stamp[pos] == ix->gen)
        return -1;
    ix->stamp[pos] = ix->gen;
    cand x = {tr_tlsh_distance(q, &ix->nodes[pos].code), pos};
    ix->work++;
    if (w->np < w->ef || cand_less(x, w->pool[w->np - 1])) {
        size_t i = w->np < w->ef ? w->np++ : w->np - 1;
        while (i > 0 && cand_less(x, w->pool[i - 1])) {
            w->pool[i] = w->pool[i - 1];
            i--;
        }
        w->pool[i] = x;
        heap_push(&w->heap, &w->nh, &w->caph, x);
    }
    return x.d;
}

static void walk_begin(walk *w, tr_simix *ix, const uint32_t *graph, size_t ef)
{
    memset(w, 0, sizeof *w);
    w->ix = ix;
    w->graph = graph;
    w->ef = ef;
    w->pool = tr_xmalloc(ef * sizeof *w->pool);
    if (!ix->stamp)
        ix->stamp = tr_xcalloc(ix->n ? ix->n : 1, sizeof *ix->stamp);
    if (++ix->gen == 0) {
        memset(ix->stamp, 0, ix->n * sizeof *ix->stamp);
        ix->gen = 1;
    }
}

/* Seeds: the vantage points met going down the tree towards q, stopping at
 * position stop (during the build: the entry being linked, whose ancestors
 * all come before it). */
static void walk_seed(walk *w, const tr_tlsh_code *q, size_t stop)
{
    const sim_vp_node *nodes = w->ix->nodes;
    size_t lo = 0, hi = w->ix->n;
    while (lo < hi && lo != stop) {
        int dv = walk_offer(w, q, (uint32_t)lo);
        size_t mid = nodes[lo].mid;
        if (dv < 0 || mid < lo + 1 || mid > hi)
            break;
        if (dv < nodes[lo].mu && lo + 1 < mid) {
            hi = mid;
            lo = lo + 1;
        } else {
            lo = mid;
        }
    }
}

static void walk_run(walk *w, const tr_tlsh_code *q)
{
    while (w->nh) {
        cand c = heap_pop(w->heap, &w->nh);
        if (w->np == w->ef && w->pool[w->np - 1].d < c.d)
            break;
        const uint32_t *nb = w->graph + (size_t)c.pos * SIM_GRAPH_DEGREE;
        for (size_t e = 0; e < SIM_GRAPH_DEGREE; e++) {
            if (nb[e] >= w->ix->n)
                break;
            walk_offer(w, q, nb[e]);
        }
    }
}

static void walk_end(walk *w)
{
    free(w->pool);
    free(w->heap);
}

/* Adds an edge to a row: appended while the row has room, else in place of
 * its farthest edge if closer. Rows never exceed SIM_GRAPH_DEGREE, whatever
 * order the walks find entries in (a seed walk can reach entries after the
 * one being linked, which may then already hold edges when their turn comes). */
static void graph_link(uint32_t *g, int *gd, uint8_t *deg, size_t row, uint32_t to, int d)
{
    size_t base = row * SIM_GRAPH_DEGREE;
    for (size_t e = 0; e < deg[row]; e++)
        if (g[base + e] == to)
            return;
    if (deg[row] < SIM_GRAPH_DEGREE) {
        g[base + deg[row]] = to;
        gd[base + deg[row]++] = d;
        return;
    }
    size_t far = 0;
    for (size_t e = 1; e < SIM_GRAPH_DEGREE; e++)
        if (gd[base + e] > gd[base + far])
            far = e;
    if (d < gd[base + far]) {
        g[base + far] = to;
        gd[base + far] = d;
    }
}

/* Links entries in tree order, each to the nearest of those a walk finds;
 * a full row keeps its nearest. */
static void graph_build(tr_simix *ix)
{
    size_t n = ix->n;
    uint32_t *g = tr_xmalloc((n ? n : 1) * SIM_GRAPH_DEGREE * sizeof *g);
    memset(g, 0xff, (n ? n : 1) * SIM_GRAPH_DEGREE * sizeof *g);
    int *gd = tr_xcalloc((n ? n : 1) * SIM_GRAPH_DEGREE, sizeof *gd);
    uint8_t *deg = tr_xcalloc(n ? n : 1, 1);
    for (size_t i = 1; i < n; i++) {
        const tr_tlsh_code *q = &ix->nodes[i].code;
        walk w;
        walk_begin(&w, ix, g, SIM_BUILD_EFFORT);
        walk_seed(&w, q, i);
        walk_run(&w, q);
        size_t links = 0;
        for (size_t h = 0; h < w.np && links < SIM_GRAPH_K; h++) {
            uint32_t j = w.pool[h].pos;
            if (j == i)
                continue;
            graph_link(g, gd, deg, i, j, w.pool[h].d);
            graph_link(g, gd, deg, j, (uint32_t)i, w.pool[h].d);
            links++;
        }
        walk_end(&w);
    }
    free(gd);
    free(deg);
    ix->own_graph = g;
    ix->graph = g;
}

static void graph_knn(tr_simix *ix, const tr_tlsh_code *q, int64_t exclude, topk *t)
{
    if (ix->n == 0)
        return;
    size_t ef = (size_t)ix->effort < t->k + 1 ? t->k + 1 : (size_t)ix->effort;
    walk w;
    walk_begin(&w, ix, ix->graph, ef);
    walk_seed(&w, q, SIZE_MAX);
    walk_run(&w, q);
    for (size_t i = 0; i < w.np; i++)
        if (ix->nodes[w.pool[i].pos].id != exclude)
            topk_add(t, w.pool[i].d, ix->nodes[w.pool[i].pos].id);
    walk_end(&w);
}

/* ---- ssdeep 7-grams ------------------------------------------------------ */

/* The signature as fuzzy_compare sees it: runs of one character cut to 3. */
static size_t eliminate_runs(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        if (i < 3 || s[i] != s[i - 1] || s[i] != s[i - 2] || s[i] != s[i - 3])
            out[o++] = s[i];
    return o;
}

static uint32_t fnv32(uint32_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 16777619u;
    }
    return h;
}

#define GRAM 7

int sim_ssdeep_parse(const char *v, sim_ssdeep *out)
{
    char *end = NULL;
    unsigned long bs = strtoul(v, &end, 10);
    if (end == v || *end != ':' || bs == 0 || bs > (1ul << 30))
        return -1;
    const char *s1 = end + 1;
    const char *c = strchr(s1, ':');
    if (!c)
        return -1;
    const char *s2 = c + 1;
    size_t n2 = strcspn(s2, ",");
    size_t n1 = (size_t)(c - s1);
    if (n1 > SIM_SSDEEP_SIG || n2 > SIM_SSDEEP_SIG)
        return -1;
    out->bs = (uint32_t)bs;
    out->n1 = eliminate_runs(s1, n1, out->s1);
    out->n2 = eliminate_runs(s2, n2, out->s2);
    return 0;
}

static uint32_t gram_key(uint32_t bs, const char *g)
{
    uint32_t h = fnv32(2166136261u, &bs, sizeof bs);
    return fnv32(h, g, GRAM);
}

/* Keys under which a signature is filed or looked up: each 7-gram of the
 * first part at bs, of the second at 2bs (fuzzy_compare scores 0 without a
 * common 7-gram at a shared block size), and the whole signature (identical
 * short signatures still score 100). */
size_t sim_ssdeep_keys(const sim_ssdeep *x, uint32_t *keys)
{
    size_t n = 0;
    for (size_t i = 0; i + GRAM <= x->n1; i++)
        keys[n++] = gram_key(x->bs, x->s1 + i);
    for (size_t i = 0; i + GRAM <= x->n2; i++)
        keys[n++] = gram_key(x->bs * 2, x->s2 + i);
    uint32_t h = fnv32(2166136261u ^ 0x5a5a5a5au, &x->bs, sizeof x->bs);
    h = fnv32(h, x->s1, x->n1);
    h = fnv32(h, ":", 1);
    keys[n++] = fnv32(h, x->s2, x->n2);
    return n;
}

/* ---- the index --------------------------------------------------------- */

void sim_index_free_parts(tr_simix *ix)
{
    free(ix->own_nodes);
    free(ix->own_ents);
    free(ix->own_blob);
    free(ix->own_keys);
    free(ix->own_idx);
    free(ix->own_graph);
    tr_map_close(&ix->map);
    free(ix->tail);
    free(ix->tail_codes);
    free(ix->tail_ok);
    free(ix->stamp);
}

void tr_simix_close(tr_simix *ix)
{
    if (!ix)
        return;
    sim_index_free_parts(ix);
    free(ix);
}

size_t tr_simix_size(const tr_simix *ix)
{
    return ix->n + ix->ntail;
}

size_t tr_simix_last_work(const tr_simix *ix)
{
    return ix->work;
}

int64_t tr_simix_entry(tr_simix *ix, size_t i, const char **value)
{
    if (i >= ix->n) {
        *value = ix->tail[i - ix->n].value;
        return ix->tail[i - ix->n].id;
    }
    if (ix->type == SIM_SSDEEP) {
        *value = ix->blob + ix->ents[i].off;
        return ix->ents[i].id;
    }
    /* VP nodes keep only the decoded code; the printed form is rebuilt. */
    static const char hex[] = "0123456789ABCDEF";
    const tr_tlsh_code *c = &ix->nodes[i].code;
    char *o = ix->valbuf;
    uint8_t raw[35];
    raw[0] = c->checksum;
    raw[1] = (uint8_t)((c->lvalue >> 4) | (c->lvalue << 4));
    raw[2] = (uint8_t)(c->q1 << 4 | c->q2);
    memcpy(raw + 3, c->body, 32);
    o[0] = 'T';
    o[1] = '1';
    for (int k = 0; k < 35; k++) {
        o[2 + 2 * k] = hex[raw[k] >> 4];
        o[3 + 2 * k] = hex[raw[k] & 15];
    }
    o[72] = '\0';
    *value = o;
    return ix->nodes[i].id;
}

static int vp_node_cmp_id(const void *a, const void *b)
{
    const sim_vp_node *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

void sim_build_tlsh(tr_simix *ix, const tr_hash_value *v, size_t n)
{
    ix->own_nodes = tr_xcalloc(n ? n : 1, sizeof *ix->own_nodes);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (tr_tlsh_decode(v[i].value, &ix->own_nodes[m].code) == 0)
            ix->own_nodes[m++].id = v[i].id;
    qsort(ix->own_nodes, m, sizeof *ix->own_nodes, vp_node_cmp_id);
    vp_pair *scratch = tr_xcalloc(m ? m : 1, sizeof *scratch);
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    if (m)
        vp_build(ix->own_nodes, 0, m, scratch, &rng);
    free(scratch);
    ix->nodes = ix->own_nodes;
    ix->n = m;
    graph_build(ix);
}

typedef struct key_idx {
    uint32_t key, idx;
} key_idx;

static int key_idx_cmp(const void *a, const void *b)
{
    const key_idx *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

void sim_build_ssdeep(tr_simix *ix, const tr_hash_value *v, size_t n)
{
    ix->own_ents = tr_xcalloc(n ? n : 1, sizeof *ix->own_ents);
    tr_buf blob = {0};
    size_t cap = 0, np = 0;
    key_idx *post = NULL;
    uint32_t keys[SIM_SSDEEP_KEYS];
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        sim_ssdeep x;
        if (sim_ssdeep_parse(v[i].value, &x) != 0)
            continue;
        ix->own_ents[m].id = v[i].id;
        ix->own_ents[m].bs = x.bs;
        ix->own_ents[m].off = (uint32_t)blob.len;
        tr_buf_append(&blob, v[i].value, strlen(v[i].value) + 1);
        size_t nk = sim_ssdeep_keys(&x, keys);
        if (np + nk > cap) {
            cap = cap ? cap * 2 : 4096;
            while (cap < np + nk)
                cap *= 2;
            post = tr_xrealloc(post, cap * sizeof *post);
        }
        for (size_t k = 0; k < nk; k++)
            post[np++] = (key_idx){keys[k], (uint32_t)m};
        m++;
    }
    if (np)
        qsort(post, np, sizeof *post, key_idx_cmp);
    /* One posting per (key, entry): a gram repeated in a signature is one. */
    size_t u = 0;
    for (size_t i = 0; i < np; i++)
        if (u == 0 || post[i].key != post[u - 1].key || post[i].idx != post[u - 1].idx)
            post[u++] = post[i];
    ix->own_keys = tr_xmalloc((u ? u : 1) * sizeof *ix->own_keys);
    ix->own_idx = tr_xmalloc((u ? u : 1) * sizeof *ix->own_idx);
    for (size_t i = 0; i < u; i++) {
        ix->own_keys[i] = post[i].key;
        ix->own_idx[i] = post[i].idx;
    }
    free(post);
    ix->own_blob = blob.data ? blob.data : tr_xcalloc(1, 1);
    ix->bloblen = blob.len;
    ix->ents = ix->own_ents;
    ix->blob = ix->own_blob;
    ix->keys = ix->own_keys;
    ix->idx = ix->own_idx;
    ix->n = m;
    ix->npost = u;
}

void sim_set_tail(tr_simix *ix, tr_hash_value *tail, size_t n)
{
    ix->tail = tail;
    ix->ntail = n;
    if (ix->type == SIM_TLSH) {
        ix->tail_codes = tr_xcalloc(n ? n : 1, sizeof *ix->tail_codes);
        ix->tail_ok = tr_xcalloc(n ? n : 1, 1);
        for (size_t i = 0; i < n; i++)
            ix->tail_ok[i] = tr_tlsh_decode(tail[i].value, &ix->tail_codes[i]) == 0;
    }
}

tr_simix *tr_simix_from_values(size_t kind, const tr_hash_value *v, size_t n)
{
    tr_simix *ix = tr_xcalloc(1, sizeof *ix);
    ix->kind = kind;
    ix->type = sim_kind_type(kind);
    ix->slack = SIM_DEFAULT_SLACK;
    ix->effort = SIM_DEFAULT_EFFORT;
    if (ix->type == SIM_SSDEEP)
        sim_build_ssdeep(ix, v, n);
    else
        sim_build_tlsh(ix, v, n);
    return ix;
}

void tr_simix_set_slack(tr_simix *ix, int slack)
{
    ix->slack = slack;
}

void tr_simix_set_effort(tr_simix *ix, int effort)
{
    ix->effort = effort;
}


static size_t tlsh_query(tr_simix *ix, const char *value, size_t k, int64_t exclude,
                         tr_similar_hit *hits, bool brute)
{
    tr_tlsh_code q;
    ix->work = 0;
    if (tr_tlsh_decode(value, &q) != 0)
        return 0;
    topk t = {.h = hits, .k = k};
    if (brute) {
        for (size_t i = 0; i < ix->n; i++)
            if (ix->nodes[i].id != exclude)
                topk_add(&t, tr_tlsh_distance(&q, &ix->nodes[i].code), ix->nodes[i].id);
        ix->work = ix->n;
    } else if (ix->effort > 0 && ix->graph) {
        graph_knn(ix, &q, exclude, &t);
    } else {
        vp_search s = {.nodes = ix->nodes, .q = &q, .exclude = exclude, .slack = ix->slack, .t = &t};
        vp_knn(&s, 0, ix->n);
        ix->work = s.work;
    }
    for (size_t i = 0; i < ix->ntail; i++)
        if (ix->tail_ok[i] && ix->tail[i].id != exclude)
            topk_add(&t, tr_tlsh_distance(&q, &ix->tail_codes[i]), ix->tail[i].id);
    ix->work += ix->ntail;
    return t.n;
}

static int postings_lower(const uint32_t *keys, size_t n, uint32_t key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (keys[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (int)lo;
}

static size_t ssdeep_query(tr_simix *ix, const char *value, size_t k, int64_t exclude,
                           tr_similar_hit *hits, bool brute)
{
    sim_ssdeep q;
    ix->work = 0;
    if (sim_ssdeep_parse(value, &q) != 0)
        return 0;
    topk t = {.h = hits, .k = k, .score = true};
    if (brute) {
        for (size_t i = 0; i < ix->n; i++) {
            if (ix->ents[i].id == exclude)
                continue;
            int sc = fuzzy_compare(value, ix->blob + ix->ents[i].off);
            if (sc > 0)
                topk_add(&t, sc, ix->ents[i].id);
        }
        ix->work = ix->n;
    } else {
        if (!ix->stamp && ix->n)
            ix->stamp = tr_xcalloc(ix->n, sizeof *ix->stamp);
        if (++ix->gen == 0) {
            memset(ix->stamp, 0, ix->n * sizeof *ix->stamp);
            ix->gen = 1;
        }
        uint32_t keys[SIM_SSDEEP_KEYS];
        size_t nk = sim_ssdeep_keys(&q, keys);
        for (size_t j = 0; j < nk; j++) {
            for (size_t p = (size_t)postings_lower(ix->keys, ix->npost, keys[j]);
                 p < ix->npost && ix->keys[p] == keys[j]; p++) {
                uint32_t e = ix->idx[p];
                if (e >= ix->n || ix->stamp[e] == ix->gen)
                    continue;
                ix->stamp[e] = ix->gen;
                if (ix->ents[e].id == exclude)
                    continue;
                /* Block sizes a factor of two or more apart never compare. */
                uint32_t bs = ix->ents[e].bs;
                if (bs != q.bs && bs != q.bs * 2 && bs * 2 != q.bs)
                    continue;
                ix->work++;
                int sc = fuzzy_compare(value, ix->blob + ix->ents[e].off);
                if (sc > 0)
                    topk_add(&t, sc, ix->ents[e].id);
            }
        }
    }
    for (size_t i = 0; i < ix->ntail; i++) {
        if (ix->tail[i].id == exclude)
            continue;
        int sc = fuzzy_compare(value, ix->tail[i].value);
        if (sc > 0)
            topk_add(&t, sc, ix->tail[i].id);
    }
    ix->work += ix->ntail;
    return t.n;
}

size_t tr_simix_knn(tr_simix *ix, const char *value, size_t k, int64_t exclude_id,
                    tr_similar_hit *hits)
{
    return ix->type == SIM_SSDEEP ? ssdeep_query(ix, value, k, exclude_id, hits, false)
                                  : tlsh_query(ix, value, k, exclude_id, hits, false);
}

size_t tr_simix_brute(tr_simix *ix, const char *value, size_t k, int64_t exclude_id,
                      tr_similar_hit *hits)
{
    return ix->type == SIM_SSDEEP ? ssdeep_query(ix, value, k, exclude_id, hits, true)
                                  : tlsh_query(ix, value, k, exclude_id, hits, true);
}
