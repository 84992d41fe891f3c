/* The STIX pattern matcher. A pattern matches when some assignment of its
 * observation expressions to observations (a binding) satisfies it:
 *   [..]        one observation with an SCO satisfying the comparisons;
 *   A AND B     bindings of A and B over distinct observations (an
 *               observed-data with number_observed N is N observations);
 *   A OR B      a binding of either;
 *   A FOLLOWEDBY B  as AND, with instants choosable in each observation's
 *               [first_observed, last_observed] putting all of A's no later
 *               than all of B's;
 *   WITHIN n    instants choosable in each observation within n seconds;
 *   REPEATS n   n bindings of the operand over distinct observations;
 *   START t STOP u  every observation's interval overlaps [t, u).
 * (The time rules are those of the OASIS reference matcher.)
 * Bindings are enumerated explicitly and bounded: a pattern whose bindings
 * over the given observations would exceed SP_MAX_BINDINGS is an error, not a
 * silent "no". */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "stix/pattern_internal.h"

#define SP_MAX_BINDINGS 200000
#define SP_MAX_STEPS 20000000     /* candidate combinations tried, kept or not */
#define SP_MAX_OBJECTS 100000

typedef struct m_obs {
    bool timed;
    sp_time first, last;
    int64_t number;
    json_t **objs;
    json_t *dict;              /* the container's "objects", NULL for STIX 2.1 object_refs */
    size_t nobj;
} m_obs;

typedef struct m_ctx {
    m_obs *obs;
    size_t nobs;
    json_t **all;              /* every item of the input */
    size_t nall;
    json_t *ids;               /* id -> item, for 2.1 references */
    size_t made;               /* bindings kept so far */
    size_t steps;              /* combinations tried so far */
    tr_error *err;
    bool failed;
    pcre2_match_context *mctx;
} m_ctx;

/* An observed-data with number_observed N stands for N observations: a
 * binding records how many of them it uses, and no more than N can be. */
typedef struct use {
    uint32_t obs;
    uint32_t count;
} use;

typedef struct binding {
    use *u;                    /* sorted by observation */
    uint32_t n;
    bool timed;
    /* Each observation happened at some instant between its first_observed
     * and last_observed: the latest first and the earliest last bound every
     * question the qualifiers ask. */
    sp_time maxf, minl;
} binding;

typedef struct blist {
    binding *b;
    size_t n, cap;
} blist;

static void blist_free(blist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->b[i].u);
    free(l->b);
    memset(l, 0, sizeof *l);
}

static int budget(m_ctx *m)
{
    if (m->failed)
        return -1;
    if (++m->made > SP_MAX_BINDINGS) {
        m->failed = true;
        tr_fail(m->err, "pattern: evaluating over %zu observations needs more than %d bindings",
                m->nobs, SP_MAX_BINDINGS);
        return -1;
    }
    return 0;
}

static int step(m_ctx *m)
{
    if (m->failed)
        return -1;
    if (++m->steps > SP_MAX_STEPS) {
        m->failed = true;
        tr_fail(m->err, "pattern: evaluating over %zu observations needs more than %d combinations",
                m->nobs, SP_MAX_STEPS);
        return -1;
    }
    return 0;
}

static void blist_push(blist *l, binding b)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->b = tr_xrealloc(l->b, l->cap * sizeof *l->b);
    }
    l->b[l->n++] = b;
}

static binding single(const m_ctx *m, uint32_t i)
{
    binding b = {tr_xmalloc(sizeof(use)), 1, m->obs[i].timed, m->obs[i].first, m->obs[i].last};
    b.u[0] = (use){i, 1};
    return b;
}

static uint32_t capacity(const m_ctx *m, uint32_t obs)
{
    int64_t n = m->obs[obs].number;
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/* Whether a and b together use no observation more often than it happened. */
static bool fits(const m_ctx *m, const binding *a, const binding *b)
{
    uint32_t i = 0, j = 0;
    while (i < a->n && j < b->n) {
        if (a->u[i].obs == b->u[j].obs) {
            if ((uint64_t)a->u[i].count + b->u[j].count > capacity(m, a->u[i].obs))
                return false;
            i++;
            j++;
        } else if (a->u[i].obs < b->u[j].obs) {
            i++;
        } else {
            j++;
        }
    }
    return true;
}

static binding merge(const binding *a, const binding *b)
{
    binding r = {tr_xmalloc((a->n + b->n) * sizeof(use)), 0, a->timed && b->timed, a->maxf, a->minl};
    uint32_t i = 0, j = 0;
    while (i < a->n || j < b->n) {
        if (i < a->n && j < b->n && a->u[i].obs == b->u[j].obs) {
            r.u[r.n++] = (use){a->u[i].obs, a->u[i].count + b->u[j].count};
            i++;
            j++;
        } else if (j >= b->n || (i < a->n && a->u[i].obs < b->u[j].obs)) {
            r.u[r.n++] = a->u[i++];
        } else {
            r.u[r.n++] = b->u[j++];
        }
    }
    if (sp_time_cmp(b->maxf, r.maxf) > 0)
        r.maxf = b->maxf;
    if (sp_time_cmp(b->minl, r.minl) < 0)
        r.minl = b->minl;
    return r;
}

static int bcmp_uses(const void *x, const void *y)
{
    const binding *a = x, *b = y;
    if (a->n != b->n)
        return a->n < b->n ? -1 : 1;
    for (uint32_t i = 0; i < a->n; i++) {
        if (a->u[i].obs != b->u[i].obs)
            return a->u[i].obs < b->u[i].obs ? -1 : 1;
        if (a->u[i].count != b->u[i].count)
            return a->u[i].count < b->u[i].count ? -1 : 1;
    }
    return 0;
}

/* The same observations reached twice are one binding. */
static void dedupe(blist *l)
{
    if (l->n < 2)
        return;
    qsort(l->b, l->n, sizeof *l->b, bcmp_uses);
    size_t w = 1;
    for (size_t i = 1; i < l->n; i++) {
        if (bcmp_uses(&l->b[i], &l->b[w - 1]) == 0)
            free(l->b[i].u);
        else
            l->b[w++] = l->b[i];
    }
    l->n = w;
}

/* ---- object paths ----------------------------------------------------------- */

typedef struct vlist {
    json_t **v;
    size_t n, cap;
} vlist;

static void vpush(vlist *l, json_t *v)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = tr_xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = v;
}

/* A *_ref value: a key of the container's objects (STIX 2.0 style) or an
 * object id (2.1). */
static json_t *deref(const m_ctx *m, const m_obs *o, const char *ref)
{
    json_t *v = o->dict ? json_object_get(o->dict, ref) : NULL;
    if (v)
        return v;
    if (o->dict) {
        /* a 2.1-style id inside a container */
        const char *k;
        json_object_foreach(o->dict, k, v) {
            const char *id = json_string_value(json_object_get(v, "id"));
            if (id && strcmp(id, ref) == 0)
                return v;
        }
    }
    return json_object_get(m->ids, ref);
}

static json_t *get_key(json_t *obj, const char *key, bool loose)
{
    json_t *v = json_object_get(obj, key);
    if (v || !loose)
        return v;
    /* hash names: 'SHA-256' and sha256-style spellings are common in the wild */
    const char *k;
    json_t *val;
    json_object_foreach(obj, k, val) {
        if (strcasecmp(k, key) == 0)
            return val;
    }
    return NULL;
}

static void resolve(const m_ctx *m, const m_obs *o, json_t *root, const sp_path *p, vlist *out)
{
    vlist cur = {0}, nxt = {0};
    vpush(&cur, root);
    for (size_t s = 0; s < p->nsteps && cur.n; s++) {
        const sp_step *st = &p->steps[s];
        nxt.n = 0;
        bool loose = s > 0 && p->steps[s - 1].kind == SP_STEP_KEY && strcmp(p->steps[s - 1].key, "hashes") == 0;
        for (size_t i = 0; i < cur.n; i++) {
            json_t *v = cur.v[i];
            if (st->kind == SP_STEP_KEY) {
                if (json_is_string(v))
                    v = deref(m, o, json_string_value(v));
                if (v && json_is_object(v)) {
                    json_t *c = get_key(v, st->key, loose);
                    if (c && !json_is_null(c))
                        vpush(&nxt, c);
                }
            } else if (json_is_array(v)) {
                size_t n = json_array_size(v);
                if (st->kind == SP_STEP_ANY) {
                    for (size_t k = 0; k < n; k++)
                        vpush(&nxt, json_array_get(v, k));
                } else if (st->index >= 0 && (uint64_t)st->index < n) {
                    vpush(&nxt, json_array_get(v, (size_t)st->index));
                }
            }
        }
        vlist t = cur;
        cur = nxt;
        nxt = t;
    }
    free(nxt.v);
    *out = cur;
}

/* ---- comparisons ------------------------------------------------------------ */

static long b64_decode_loose(const char *s, size_t n, unsigned char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i], v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+' || c == '-')
            v = 62;
        else if (c == '/' || c == '_')
            v = 63;
        else if (c == '=' || c == '\n' || c == '\r')
            continue;
        else
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return (long)o;
}

static int hexv(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* A binary property's bytes: *_hex properties are hex, the others base64
 * (payload_bin). Caller frees; NULL when the text does not decode. */
static unsigned char *prop_bytes(const char *prop, json_t *v, size_t *len)
{
    const char *s = json_string_value(v);
    if (!s)
        return NULL;
    size_t n = json_string_length(v);
    size_t pl = strlen(prop);
    unsigned char *out = tr_xmalloc(n + 1);
    if (pl >= 4 && strcmp(prop + pl - 4, "_hex") == 0) {
        if (n % 2) {
            free(out);
            return NULL;
        }
        for (size_t i = 0; i < n; i += 2) {
            int hi = hexv((unsigned char)s[i]), lo = hexv((unsigned char)s[i + 1]);
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            out[i / 2] = (unsigned char)(hi << 4 | lo);
        }
        *len = n / 2;
        return out;
    }
    long dn = b64_decode_loose(s, n, out);
    if (dn < 0) {
        free(out);
        return NULL;
    }
    *len = (size_t)dn;
    return out;
}

static bool is_binary_prop(const char *prop)
{
    size_t pl = strlen(prop);
    return pl >= 4 && (strcmp(prop + pl - 4, "_hex") == 0 || strcmp(prop + pl - 4, "_bin") == 0);
}

static int sign(int c)
{
    return (c > 0) - (c < 0);
}

static int memcmp_len(const void *a, size_t an, const void *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c)
        return sign(c);
    return an == bn ? 0 : an < bn ? -1 : 1;
}

/* -1/0/1 ordering of value against literal, or 2 when they do not compare
 * (different types: the spec makes such a comparison false, NOT or not). */
static int compare(const char *prop, json_t *v, const sp_lit *l)
{
    switch (l->kind) {
    case SP_LIT_INT:
        if (json_is_integer(v)) {
            json_int_t x = json_integer_value(v);
            return x < l->i ? -1 : x > l->i;
        }
        if (json_is_real(v)) {
            double x = json_real_value(v);
            return x < (double)l->i ? -1 : x > (double)l->i;
        }
        return 2;
    case SP_LIT_FLOAT:
        if (json_is_number(v)) {
            double x = json_number_value(v);
            return x < l->f ? -1 : x > l->f;
        }
        return 2;
    case SP_LIT_STRING:
        if (!json_is_string(v))
            return 2;
        return memcmp_len(json_string_value(v), json_string_length(v), l->s, l->len);
    case SP_LIT_BOOL:
        if (!json_is_boolean(v))
            return 2;
        return json_is_true(v) == l->b ? 0 : 1;
    case SP_LIT_TIME: {
        const char *s = json_string_value(v);
        sp_time t;
        if (!s || sp_parse_time(s, json_string_length(v), &t) != 0)
            return 2;
        return sp_time_cmp(t, l->t);
    }
    case SP_LIT_BINARY:
    case SP_LIT_HEX: {
        size_t n;
        unsigned char *bytes = prop_bytes(prop, v, &n);
        if (!bytes)
            return 2;
        int c = memcmp_len(bytes, n, l->s, l->len);
        free(bytes);
        return c;
    }
    }
    return 2;
}

/* SQL LIKE over characters: % any run, _ exactly one. */
static bool like(const char *s, size_t sn, const char *p, size_t pn)
{
    size_t si = 0, pi = 0, star_p = (size_t)-1, star_s = 0;
    while (si < sn) {
        if (pi < pn && p[pi] == '_') {
            si++;
            while (si < sn && ((unsigned char)s[si] & 0xC0) == 0x80)
                si++;
            pi++;
        } else if (pi < pn && p[pi] == '%') {
            star_p = pi++;
            star_s = si;
        } else if (pi < pn && p[pi] == s[si]) {
            si++;
            pi++;
        } else if (star_p != (size_t)-1) {
            pi = star_p + 1;
            star_s++;
            while (star_s < sn && ((unsigned char)s[star_s] & 0xC0) == 0x80)
                star_s++;
            si = star_s;
        } else {
            return false;
        }
    }
    while (pi < pn && p[pi] == '%')
        pi++;
    return pi == pn;
}

static bool net_contains(const sp_net *outer, const sp_net *inner)
{
    if (outer->family != inner->family || inner->prefix < outer->prefix)
        return false;
    int full = outer->prefix / 8, rest = outer->prefix % 8;
    if (memcmp(outer->addr, inner->addr, (size_t)full) != 0)
        return false;
    if (rest) {
        unsigned char mask = (unsigned char)(0xFF << (8 - rest));
        if ((outer->addr[full] & mask) != (inner->addr[full] & mask))
            return false;
    }
    return true;
}

static int regex_match(m_ctx *m, const pcre2_code *re, const unsigned char *s, size_t n)
{
    if (!re)
        return 2;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md)
        tr_die("out of memory");
    int rc = pcre2_match(re, s, n, 0, 0, md, m->mctx);
    pcre2_match_data_free(md);
    if (rc >= 0)
        return 1;
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    return 2;    /* match or depth limit, invalid subject: no answer either way */
}

/* 1 the operator holds for this value, 0 it does not, 2 incomparable. */
static int test_value(m_ctx *m, const sp_cmp *c, json_t *v)
{
    const char *prop = NULL;
    for (size_t i = c->path.nsteps; i-- > 0;) {
        if (c->path.steps[i].kind == SP_STEP_KEY) {
            prop = c->path.steps[i].key;
            break;
        }
    }
    switch (c->op) {
    case SP_OP_EQ:
    case SP_OP_NEQ:
    case SP_OP_LT:
    case SP_OP_LE:
    case SP_OP_GT:
    case SP_OP_GE: {
        int r = compare(prop, v, &c->lits[0]);
        if (r == 2)
            return 2;
        switch (c->op) {
        case SP_OP_EQ: return r == 0;
        case SP_OP_NEQ: return r != 0;
        case SP_OP_LT: return r < 0;
        case SP_OP_LE: return r <= 0;
        case SP_OP_GT: return r > 0;
        default: return r >= 0;
        }
    }
    case SP_OP_IN: {
        if (c->nlits == 0)
            return json_is_array(v) || json_is_object(v) ? 2 : 0;   /* nothing is in () */
        int res = 2;
        for (size_t i = 0; i < c->nlits; i++) {
            int r = compare(prop, v, &c->lits[i]);
            if (r == 0)
                return 1;
            if (r != 2)
                res = 0;
        }
        return res;
    }
    case SP_OP_LIKE:
        if (!json_is_string(v))
            return 2;
        return like(json_string_value(v), json_string_length(v), c->lits[0].s, c->lits[0].len);
    case SP_OP_MATCHES: {
        if (!json_is_string(v))
            return 2;
        if (is_binary_prop(prop)) {
            size_t n;
            unsigned char *bytes = prop_bytes(prop, v, &n);
            if (!bytes)
                return 2;
            int r = regex_match(m, c->re_bytes, bytes, n);
            free(bytes);
            return r;
        }
        return regex_match(m, c->re_text, (const unsigned char *)json_string_value(v),
                           json_string_length(v));
    }
    case SP_OP_ISSUBSET:
    case SP_OP_ISSUPERSET: {
        sp_net net;
        const char *s = json_string_value(v);
        if (!s || sp_parse_net(s, &net) != 0)
            return 2;
        if (c->op == SP_OP_ISSUBSET)
            return net_contains(&c->net, &net);
        return net_contains(&net, &c->net);
    }
    case SP_OP_EXISTS:
        return 1;
    }
    return 2;
}

/* Whether the SCO satisfies one comparison: some value its path reaches
 * satisfies the operator (or, negated, comparably fails it). */
static bool test_object(m_ctx *m, const m_obs *o, json_t *obj, const sp_cmp *c)
{
    vlist vals;
    resolve(m, o, obj, &c->path, &vals);
    bool hit = false;
    if (c->op == SP_OP_EXISTS) {
        hit = (vals.n > 0) != c->negated;
    } else {
        for (size_t i = 0; i < vals.n && !hit; i++) {
            int r = test_value(m, c, vals.v[i]);
            hit = c->negated ? r == 0 : r == 1;
        }
    }
    free(vals.v);
    return hit;
}

static bool any(const uint8_t *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (set[i])
            return true;
    return false;
}

/* Marks in set the observation's SCOs that satisfy c. Comparisons joined by
 * AND must all hold for the same SCO (so AND across SCO types never holds),
 * OR for either: as the OASIS reference matcher does. */
static void eval_cmp(m_ctx *m, const m_obs *o, const sp_cmp *c, uint8_t *set)
{
    size_t n = o->nobj;
    if (c->kind == SP_CMP_TEST) {
        for (size_t i = 0; i < n; i++) {
            const char *t = json_string_value(json_object_get(o->objs[i], "type"));
            set[i] = t && strcmp(t, c->path.type) == 0 && test_object(m, o, o->objs[i], c);
        }
        return;
    }
    uint8_t *tmp = tr_xmalloc(n ? n : 1);
    eval_cmp(m, o, c->kids[0], set);
    for (size_t k = 1; k < c->nkids; k++) {
        if (c->kind == SP_CMP_AND && !any(set, n))
            break;
        eval_cmp(m, o, c->kids[k], tmp);
        for (size_t i = 0; i < n; i++) {
            if (c->kind == SP_CMP_OR)
                set[i] |= tmp[i];
            else
                set[i] &= tmp[i];
        }
    }
    free(tmp);
}

/* ---- observation expressions ------------------------------------------------- */

/* The time qualifiers enclosing the expression being evaluated. A union of
 * bindings never satisfies a qualifier that one of its parts fails (its
 * latest first_observed only grows, its earliest last_observed only
 * shrinks), so candidates are dropped as soon as they are formed instead of
 * after every combination has been enumerated. */
typedef struct qfilter {
    const sp_obs *q;           /* SP_OBS_WITHIN or SP_OBS_STARTSTOP */
    const struct qfilter *next;
} qfilter;

static double span_seconds(sp_time lo, sp_time hi)
{
    return (double)(hi.sec - lo.sec) + (double)(hi.nsec - lo.nsec) / 1e9;
}

static bool passes(const binding *b, const qfilter *f)
{
    for (; f; f = f->next) {
        if (!b->timed)
            return false;
        const sp_obs *q = f->q;
        /* an instant per observation, all within the window */
        if (q->kind == SP_OBS_WITHIN && !(span_seconds(b->minl, b->maxf) <= q->within))
            return false;
        /* every observation overlaps [start, stop) */
        if (q->kind == SP_OBS_STARTSTOP &&
            !(sp_time_cmp(q->start.t, q->stop.t) < 0 && sp_time_cmp(b->maxf, q->stop.t) < 0 &&
              sp_time_cmp(b->minl, q->start.t) >= 0))
            return false;
    }
    return true;
}

/* one: the caller only asks whether a binding exists (the pattern's root, or
 * an OR or qualifier there), so enumeration may stop at the first. */
static int eval_obs(m_ctx *m, const sp_obs *o, const qfilter *f, blist *out, bool one);

/* How many more times b fits beside acc (at most want). */
static uint64_t copies_fit(const m_ctx *m, const binding *acc, const binding *b, uint64_t want)
{
    uint32_t i = 0;
    for (uint32_t j = 0; j < b->n && want; j++) {
        while (i < acc->n && acc->u[i].obs < b->u[j].obs)
            i++;
        uint64_t have = i < acc->n && acc->u[i].obs == b->u[j].obs ? acc->u[i].count : 0;
        uint64_t cap = capacity(m, b->u[j].obs);
        uint64_t room = cap > have ? (cap - have) / b->u[j].count : 0;
        if (room < want)
            want = room;
    }
    return want;
}

/* acc with k more uses of b. */
static binding merge_k(const binding *acc, const binding *b, uint32_t k)
{
    binding kb = *b;
    kb.u = tr_xmalloc(b->n * sizeof(use));
    for (uint32_t j = 0; j < b->n; j++)
        kb.u[j] = (use){b->u[j].obs, b->u[j].count * k};
    if (!acc->n)
        return kb;
    binding r = merge(acc, &kb);
    free(kb.u);
    return r;
}

/* REPEATS: n operand bindings that fit together. Each operand binding is
 * taken k times (an observation seen N times can satisfy N repeats), k from
 * the most that fit down to none, so each multiset is reached once and the
 * recursion is as deep as the distinct bindings it combines. */
#define SP_MAX_REPEAT_DEPTH 4096
static int repeats_dfs(m_ctx *m, const blist *in, size_t from, const binding *acc, int64_t need,
                       const qfilter *f, blist *out, bool one, int depth)
{
    if (depth > SP_MAX_REPEAT_DEPTH) {
        m->failed = true;
        return tr_fail(m->err, "pattern: REPEATS needs more than %d distinct bindings", SP_MAX_REPEAT_DEPTH);
    }
    for (size_t i = from; i < in->n && !(one && out->n); i++) {
        const binding *b = &in->b[i];
        uint64_t most = copies_fit(m, acc, b, (uint64_t)need);
        for (uint64_t k = most; k >= 1 && !(one && out->n); k--) {
            if (step(m) != 0)
                return -1;
            binding u = merge_k(acc, b, (uint32_t)k);
            if (!passes(&u, f)) {
                free(u.u);
                continue;
            }
            if (budget(m) != 0) {
                free(u.u);
                return -1;
            }
            if ((int64_t)k == need) {
                blist_push(out, u);
                continue;
            }
            int rc = repeats_dfs(m, in, i + 1, &u, need - (int64_t)k, f, out, one, depth + 1);
            free(u.u);
            if (rc != 0)
                return -1;
        }
    }
    return 0;
}

static int eval_obs(m_ctx *m, const sp_obs *o, const qfilter *f, blist *out, bool one)
{
    memset(out, 0, sizeof *out);
    switch (o->kind) {
    case SP_OBS_SIMPLE: {
        for (size_t i = 0; i < m->nobs && !(one && out->n); i++) {
            const m_obs *ob = &m->obs[i];
            uint8_t *set = tr_xmalloc(ob->nobj ? ob->nobj : 1);
            eval_cmp(m, ob, o->cmp, set);
            bool hit = any(set, ob->nobj);
            free(set);
            if (!hit)
                continue;
            binding b = single(m, (uint32_t)i);
            if (!passes(&b, f)) {
                free(b.u);
                continue;
            }
            if (budget(m) != 0) {
                free(b.u);
                return -1;
            }
            blist_push(out, b);
        }
        return 0;
    }
    case SP_OBS_OR:
        for (size_t k = 0; k < o->nkids && !(one && out->n); k++) {
            blist kl;
            if (eval_obs(m, o->kids[k], f, &kl, one) != 0) {
                blist_free(&kl);
                return -1;
            }
            for (size_t i = 0; i < kl.n; i++)
                blist_push(out, kl.b[i]);
            free(kl.b);
        }
        dedupe(out);
        return 0;
    case SP_OBS_AND:
    case SP_OBS_FOLLOWEDBY: {
        if (eval_obs(m, o->kids[0], f, out, false) != 0)
            return -1;
        for (size_t k = 1; k < o->nkids; k++) {
            bool last = k + 1 == o->nkids;
            blist kl, nl = {0};
            if (eval_obs(m, o->kids[k], f, &kl, false) != 0) {
                blist_free(&kl);
                return -1;
            }
            for (size_t i = 0; i < out->n && !(one && last && nl.n); i++) {
                for (size_t j = 0; j < kl.n && !(one && last && nl.n); j++) {
                    const binding *a = &out->b[i], *b = &kl.b[j];
                    if (step(m) != 0) {
                        blist_free(&kl);
                        blist_free(&nl);
                        return -1;
                    }
                    if (!fits(m, a, b))
                        continue;
                    /* instants can be chosen with all of a's before all of b's */
                    if (o->kind == SP_OBS_FOLLOWEDBY &&
                        !(a->timed && b->timed && sp_time_cmp(a->maxf, b->minl) <= 0))
                        continue;
                    binding u = merge(a, b);
                    if (!passes(&u, f)) {
                        free(u.u);
                        continue;
                    }
                    if (budget(m) != 0) {
                        free(u.u);
                        blist_free(&kl);
                        blist_free(&nl);
                        return -1;
                    }
                    blist_push(&nl, u);
                }
            }
            blist_free(&kl);
            blist_free(out);
            *out = nl;
            if (o->kind == SP_OBS_AND)
                dedupe(out);
        }
        return 0;
    }
    case SP_OBS_WITHIN:
    case SP_OBS_STARTSTOP: {
        qfilter here = {o, f};
        return eval_obs(m, o->operand, &here, out, one);
    }
    case SP_OBS_REPEATS: {
        blist in;
        if (eval_obs(m, o->operand, f, &in, false) != 0) {
            blist_free(&in);
            return -1;
        }
        binding none = {0};
        int rc = repeats_dfs(m, &in, 0, &none, o->repeats, f, out, one, 0);
        blist_free(&in);
        if (rc == 0)
            dedupe(out);
        return rc;
    }
    }
    return 0;
}

/* ---- observations --------------------------------------------------------- */

static int read_time(m_ctx *m, json_t *item, const char *field, sp_time *out, bool *have)
{
    json_t *v = json_object_get(item, field);
    if (!v) {
        *have = false;
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s || sp_parse_time(s, json_string_length(v), out) != 0) {
        m->failed = true;
        return tr_fail(m->err, "observation: %s is not a STIX timestamp", field);
    }
    *have = true;
    return 0;
}

static int add_obs(m_ctx *m, json_t *item, json_t *objs_dict, json_t *refs)
{
    m_obs o = {0};
    bool hf = false, hl = false;
    if (read_time(m, item, "first_observed", &o.first, &hf) != 0 ||
        read_time(m, item, "last_observed", &o.last, &hl) != 0)
        return -1;
    if (hf && !hl)
        o.last = o.first;
    if (hl && !hf)
        o.first = o.last;
    o.timed = hf || hl;
    if (o.timed && sp_time_cmp(o.first, o.last) > 0) {
        m->failed = true;
        return tr_fail(m->err, "observation: last_observed is before first_observed");
    }
    json_t *num = json_object_get(item, "number_observed");
    o.number = 1;
    if (num) {
        if (!json_is_integer(num) || json_integer_value(num) < 1) {
            m->failed = true;
            return tr_fail(m->err, "observation: number_observed must be an integer of at least 1");
        }
        o.number = json_integer_value(num);
    }
    if (objs_dict) {
        size_t n = json_object_size(objs_dict);
        o.objs = tr_xcalloc(n ? n : 1, sizeof *o.objs);
        o.dict = objs_dict;
        const char *k;
        json_t *v;
        json_object_foreach(objs_dict, k, v) {
            if (json_is_object(v))
                o.objs[o.nobj++] = v;
        }
    } else if (refs) {
        size_t n = json_array_size(refs);
        o.objs = tr_xcalloc(n ? n : 1, sizeof *o.objs);
        for (size_t i = 0; i < n; i++) {
            const char *id = json_string_value(json_array_get(refs, i));
            json_t *v = id ? json_object_get(m->ids, id) : NULL;
            if (v)
                o.objs[o.nobj++] = v;
        }
    }
    m->obs = tr_xrealloc(m->obs, (m->nobs + 1) * sizeof *m->obs);
    m->obs[m->nobs++] = o;
    return 0;
}

static void ctx_free(m_ctx *m)
{
    for (size_t i = 0; i < m->nobs; i++)
        free(m->obs[i].objs);
    free(m->obs);
    free(m->all);
    json_decref(m->ids);
    if (m->mctx)
        pcre2_match_context_free(m->mctx);
}

static bool is_container(json_t *item)
{
    return json_is_object(json_object_get(item, "objects"));
}

static int load(m_ctx *m, const json_t *input)
{
    json_t *items = NULL;
    if (json_is_array(input)) {
        items = (json_t *)input;
    } else if (json_is_object(input)) {
        json_t *objs = json_object_get(input, "objects");
        if (json_is_array(objs))
            items = objs;     /* a bundle */
        else if (json_is_object(objs))
            return add_obs(m, (json_t *)input, objs, NULL);
    }
    if (!items) {
        m->failed = true;
        return tr_fail(m->err, "observations: want a JSON array, a bundle or an observation container");
    }
    size_t n = json_array_size(items);
    if (n > SP_MAX_OBJECTS) {
        m->failed = true;
        return tr_fail(m->err, "observations: more than %d items", SP_MAX_OBJECTS);
    }
    m->all = tr_xcalloc(n ? n : 1, sizeof *m->all);
    m->ids = json_object();
    if (!m->ids)
        tr_die("out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *it = json_array_get(items, i);
        if (!json_is_object(it)) {
            m->failed = true;
            return tr_fail(m->err, "observations: item %zu is not a JSON object", i);
        }
        m->all[m->nall++] = it;
        const char *id = json_string_value(json_object_get(it, "id"));
        if (id && !json_object_get(m->ids, id))
            json_object_set(m->ids, id, it);
    }
    /* loose SCOs (not observed-data, not referenced by one) form one observation */
    uint8_t *used = tr_xcalloc(n ? n : 1, 1);
    json_t *refd = json_object();     /* ids some observed-data names */
    if (!refd)
        tr_die("out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *it = m->all[i];
        const char *type = json_string_value(json_object_get(it, "type"));
        if (is_container(it)) {
            used[i] = 1;
            if (add_obs(m, it, json_object_get(it, "objects"), NULL) != 0)
                goto fail;
        } else if (type && strcmp(type, "observed-data") == 0) {
            used[i] = 1;
            json_t *refs = json_object_get(it, "object_refs");
            if (!json_is_array(refs)) {
                m->failed = true;
                tr_fail(m->err, "observations: observed-data item %zu has neither objects nor object_refs", i);
                goto fail;
            }
            for (size_t r = 0; r < json_array_size(refs); r++) {
                const char *id = json_string_value(json_array_get(refs, r));
                if (id)
                    json_object_set_new(refd, id, json_true());
            }
            if (add_obs(m, it, NULL, refs) != 0)
                goto fail;
        }
    }
    m_obs loose = {.number = 1};
    for (size_t i = 0; i < n; i++) {
        const char *id = json_string_value(json_object_get(m->all[i], "id"));
        if (used[i] || (id && json_object_get(refd, id)))
            continue;
        if (!loose.objs)
            loose.objs = tr_xcalloc(n, sizeof *loose.objs);
        loose.objs[loose.nobj++] = m->all[i];
    }
    if (loose.objs) {
        m->obs = tr_xrealloc(m->obs, (m->nobs + 1) * sizeof *m->obs);
        m->obs[m->nobs++] = loose;
    }
    free(used);
    json_decref(refd);
    return 0;
fail:
    free(used);
    json_decref(refd);
    return -1;
}

int tr_stix_pattern_match(const tr_stix_pattern *p, const json_t *observations, tr_error *err)
{
    m_ctx m = {.err = err};
    if (load(&m, observations) != 0) {
        ctx_free(&m);
        return -1;
    }
    m.mctx = pcre2_match_context_create(NULL);
    if (!m.mctx)
        tr_die("out of memory");
    /* a hostile regex must not stall a request */
    pcre2_set_match_limit(m.mctx, 1000000);
    pcre2_set_depth_limit(m.mctx, 10000);
    blist res;
    int rc = eval_obs(&m, p->root, NULL, &res, true);
    bool hit = res.n > 0;
    blist_free(&res);
    ctx_free(&m);
    if (rc != 0)
        return -1;
    return hit ? 1 : 0;
}
