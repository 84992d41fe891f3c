/* The planner: AST -> index query. The one law is soundness: whenever libyara
 * would match a rule on a file, the file satisfies the rule's query. Every
 * construct we cannot reason about becomes ALL for its branch; strings become
 * necessary byte sequences (or alternatives of them); conditions keep only the
 * implications that hold (not, none, #a == 0 and friends imply nothing). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "rules/ast.h"
#include "rules/rules.h"

#define RUN_CAP 512          /* split longer runs: any piece of a match is necessary */
#define USABLE_SET 64        /* a position with more alternatives gives the index nothing */
#define MAX_FIXED_REPEAT 64

typedef struct prule {
    char *name;
    const char *file;         /* the rule set's, valid while it lives */
    tr_query *q;
    bool everything;
    char **notes;
    size_t nnotes;
    char *warning;
} prule;

struct tr_plan {
    prule *r;
    size_t n;
};

/* ---- byte-set runs ------------------------------------------------------------- */
typedef struct run {
    tr_byteset *s;
    size_t n, cap;
} run;

static void run_push(run *r, const tr_byteset *s)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 32;
        r->s = tr_xrealloc(r->s, r->cap * sizeof *r->s);
    }
    r->s[r->n++] = *s;
}

static void run_push_byte(run *r, unsigned b)
{
    tr_byteset s = {{0}};
    tr_byteset_add(&s, b);
    run_push(r, &s);
}

/* Pieces of a pattern that must all occur: AND of SEQs and sub-queries. */
typedef struct acc {
    run cur;
    tr_query **pieces;
    size_t np;
} acc;

static void acc_piece(acc *a, tr_query *q)
{
    a->pieces = tr_xrealloc(a->pieces, (a->np + 1) * sizeof *a->pieces);
    a->pieces[a->np++] = q;
}

static void acc_flush(acc *a)
{
    if (a->cur.n)
        acc_piece(a, tr_query_seq(a->cur.s, a->cur.n));
    a->cur.n = 0;
}

static void acc_set(acc *a, const tr_byteset *s)
{
    if (a->cur.n >= RUN_CAP)
        acc_flush(a);
    run_push(&a->cur, s);
}

static tr_query *acc_finish(acc *a)
{
    acc_flush(a);
    free(a->cur.s);
    tr_query *q = a->np ? tr_query_node(TR_Q_AND, 0, a->pieces, a->np) : tr_query_all();
    free(a->pieces);
    return q;
}

static size_t qsize(const tr_query *q)
{
    if (q->kind == TR_Q_SEQ)
        return q->n;
    size_t s = 1;
    if (q->kind == TR_Q_AND || q->kind == TR_Q_OR || q->kind == TR_Q_MIN_OF)
        for (size_t i = 0; i < q->n; i++)
            s += qsize(q->child[i]);
    return s;
}

/* Whether the query lets an index of >= 3-byte grams exclude any file. */
static bool narrows(const tr_query *q)
{
    switch (q->kind) {
    case TR_Q_ALL:
    case TR_Q_AT:       /* the pre-check's, not the index's */
    case TR_Q_SIZE:
        return false;
    case TR_Q_NONE:
        return true;
    case TR_Q_SEQ: {
        size_t run_len = 0;
        for (size_t i = 0; i < q->n; i++) {
            run_len = tr_byteset_count(&q->pos[i]) <= USABLE_SET ? run_len + 1 : 0;
            if (run_len >= 3)
                return true;
        }
        return false;
    }
    case TR_Q_AND:
        for (size_t i = 0; i < q->n; i++)
            if (narrows(q->child[i]))
                return true;
        return false;
    case TR_Q_OR:
        for (size_t i = 0; i < q->n; i++)
            if (!narrows(q->child[i]))
                return false;
        return true;
    case TR_Q_MIN_OF: {
        size_t wide = 0;
        for (size_t i = 0; i < q->n; i++)
            wide += !narrows(q->child[i]);
        return wide < q->k;
    }
    }
    return false;
}

/* ---- text strings ----------------------------------------------------------------- */
static void text_forms(const tr_string *s, const unsigned char *bytes, size_t len, bool wide,
                       int key, bool nocase, run *out)
{
    out->n = 0;
    for (size_t i = 0; i < len; i++) {
        tr_byteset set = {{0}};
        unsigned b = bytes[i];
        if (nocase && ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z'))) {
            tr_byteset_add(&set, b | 0x20);
            tr_byteset_add(&set, b & ~0x20u);
        } else {
            tr_byteset_add(&set, b ^ (unsigned)key);
        }
        run_push(out, &set);
        if (wide) {
            tr_byteset z = {{0}};
            tr_byteset_add(&z, 0u ^ (unsigned)key);   /* libyara xors the wide bytes */
            run_push(out, &z);
        }
    }
    (void)s;
}

static const char std_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The base64 characters of src (after `pad` leading bytes) that depend only
 * on src's bits: any text containing a base64 encoding of src, at any
 * alignment, contains exactly these for that alignment. */
static void b64_fixed(const unsigned char *src, size_t n, int pad, const char *alpha, bool widen,
                      run *out)
{
    out->n = 0;
    size_t total_bits = 8 * ((size_t)pad + n);
    size_t first = ((size_t)pad * 8 + 5) / 6;
    size_t last = total_bits / 6;    /* exclusive */
    for (size_t j = first; j < last; j++) {
        unsigned v = 0;
        for (size_t b = 6 * j; b < 6 * j + 6; b++) {
            size_t byte = b / 8;
            unsigned bit = 0;
            if (byte >= (size_t)pad)
                bit = (src[byte - (size_t)pad] >> (7 - b % 8)) & 1;
            v = (v << 1) | bit;
        }
        run_push_byte(out, (unsigned char)alpha[v]);
        if (widen)
            run_push_byte(out, 0);
    }
}

static tr_query *or_of(tr_query **v, size_t n)
{
    return tr_query_node(TR_Q_OR, 0, v, n);
}

/* OR of a vector built with vec_push, which it frees. */
static tr_query *or_vec(tr_query **v, size_t n)
{
    tr_query *q = tr_query_node(TR_Q_OR, 0, v, n);
    free(v);
    return q;
}

static void vec_push(tr_query ***v, size_t *n, tr_query *q)
{
    *v = tr_xrealloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = q;
}

static tr_query *plan_text(const tr_string *s, tr_buf *note)
{
    unsigned m = s->mods;
    bool wide = m & MOD_WIDE;
    bool ascii = !wide || (m & MOD_ASCII);
    tr_query **alts = NULL;
    size_t nalts = 0;
    run r = {0};
    if (m & (MOD_BASE64 | MOD_BASE64WIDE)) {
        /* Sources: the text, and (not knowing how libyara combines wide with
         * base64) its wide form too; outputs: as configured. */
        run src = {0};
        unsigned char *wbuf = tr_xmalloc(2 * s->len + 1);
        for (size_t i = 0; i < s->len; i++) {
            wbuf[2 * i] = s->text[i];
            wbuf[2 * i + 1] = 0;
        }
        for (int form = 0; form < (wide ? 2 : 1); form++) {
            const unsigned char *bytes = form ? wbuf : s->text;
            size_t len = form ? 2 * s->len : s->len;
            for (int out = 0; out < 2; out++) {
                unsigned bit = out ? MOD_BASE64WIDE : MOD_BASE64;
                if (!(m & bit))
                    continue;
                const char *alpha = out ? s->b64w_alpha : s->b64_alpha;
                if (!alpha)
                    alpha = std_b64;
                for (int pad = 0; pad < 3; pad++) {
                    b64_fixed(bytes, len, pad, alpha, out == 1, &src);
                    vec_push(&alts, &nalts, tr_query_seq(src.s, src.n));
                }
            }
        }
        free(wbuf);
        free(src.s);
        tr_buf_printf(note, "text%s base64%s%s, %zu bytes: %zu encodings (edge characters dropped)",
                      wide ? " wide" : "", (m & MOD_BASE64) ? "" : "wide",
                      (m & MOD_BASE64) && (m & MOD_BASE64WIDE) ? "+base64wide" : "", s->len, nalts);
        return or_vec(alts, nalts);
    }
    int klo = 0, khi = 0;
    if (m & MOD_XOR) {
        klo = s->xor_lo;
        khi = s->xor_hi;
    }
    size_t forms = (size_t)ascii + (size_t)wide;
    size_t cost = forms * (size_t)(khi - klo + 1) * s->len * (wide ? 2 : 1);
    if (cost > TR_PLAN_STRING_BUDGET) {
        tr_buf_printf(note, "text, %zu bytes, xor(%d-%d): expansion of %zu positions over budget -> all",
                      s->len, klo, khi, cost);
        return tr_query_all();
    }
    for (int key = klo; key <= khi; key++)
        for (int w = 0; w < 2; w++) {
            if ((w == 0 && !ascii) || (w == 1 && !wide))
                continue;
            text_forms(s, s->text, s->len, w == 1, key, (m & MOD_NOCASE) != 0, &r);
            vec_push(&alts, &nalts, tr_query_seq(r.s, r.n));
        }
    free(r.s);
    tr_buf_printf(note, "%stext%s%s%s, %zu bytes", (m & MOD_NOCASE) ? "nocase " : "",
                  ascii && wide ? " ascii+wide" : wide ? " wide" : "",
                  (m & MOD_FULLWORD) ? " fullword" : "", (m & MOD_PRIVATE) ? " private" : "",
                  s->len);
    if (m & MOD_XOR)
        tr_buf_printf(note, ", xor(0x%02x-0x%02x)", klo, khi);
    if (nalts > 1)
        tr_buf_printf(note, ": OR of %zu sequences", nalts);
    return or_vec(alts, nalts);
}

/* ---- hex strings --------------------------------------------------------------------- */
/* Length of a hex sequence when every path has the same fixed length, else -1. */
static long hex_fixed_len(const hex_seq *s)
{
    long n = 0;
    for (size_t i = 0; i < s->n; i++) {
        const hex_item *it = &s->items[i];
        if (it->kind == HEX_BYTE) {
            n++;
        } else if (it->kind == HEX_JUMP) {
            if (it->hi != it->lo)
                return -1;
            n += it->lo;
        } else {
            long l = -2;
            for (size_t j = 0; j < it->nalt; j++) {
                long k = hex_fixed_len(it->alt[j]);
                if (k < 0 || (l != -2 && k != l))
                    return -1;
                l = k;
            }
            n += l;
        }
        if (n > RUN_CAP)
            return -1;
    }
    return n;
}

static void byte_set(const hex_item *it, tr_byteset *set)
{
    memset(set, 0, sizeof *set);
    for (unsigned b = 0; b < 256; b++)
        if ((b & it->mask) == it->value)
            tr_byteset_add(set, b);
}

/* Union of the position sets of a fixed-length sequence, into out[0..len). */
static void hex_union(const hex_seq *s, tr_byteset *out)
{
    size_t p = 0;
    for (size_t i = 0; i < s->n; i++) {
        const hex_item *it = &s->items[i];
        if (it->kind == HEX_BYTE) {
            tr_byteset b;
            byte_set(it, &b);
            for (int w = 0; w < 4; w++)
                out[p].w[w] |= b.w[w];
            p++;
        } else if (it->kind == HEX_JUMP) {
            for (int k = 0; k < it->lo; k++, p++)
                tr_byteset_fill(&out[p]);
        } else {
            for (size_t j = 0; j < it->nalt; j++)
                hex_union(it->alt[j], out + p);
            p += (size_t)hex_fixed_len(it->alt[0]);
        }
    }
}

static tr_query *hex_q(const hex_seq *s);

static void hex_walk(const hex_seq *s, acc *a)
{
    for (size_t i = 0; i < s->n; i++) {
        const hex_item *it = &s->items[i];
        if (it->kind == HEX_BYTE) {
            tr_byteset b;
            byte_set(it, &b);
            acc_set(a, &b);
        } else if (it->kind == HEX_JUMP) {
            if (it->lo == it->hi && it->lo <= 16) {
                for (int k = 0; k < it->lo; k++) {
                    tr_byteset any;
                    tr_byteset_fill(&any);
                    acc_set(a, &any);
                }
            } else {
                acc_flush(a);     /* a variable gap: the pieces on both sides are ANDed */
            }
        } else {
            long l = hex_fixed_len(&(hex_seq){.n = 1, .items = (hex_item *)it});
            if (l >= 0) {
                tr_byteset *u = tr_xcalloc((size_t)l + 1, sizeof *u);
                hex_union(&(hex_seq){.n = 1, .items = (hex_item *)it}, u);
                for (long k = 0; k < l; k++)
                    acc_set(a, &u[k]);
                free(u);
            } else {
                acc_flush(a);
                tr_query **alts = tr_xcalloc(it->nalt, sizeof *alts);
                for (size_t j = 0; j < it->nalt; j++)
                    alts[j] = hex_q(it->alt[j]);
                acc_piece(a, or_of(alts, it->nalt));
                free(alts);
            }
        }
    }
}

static tr_query *hex_q(const hex_seq *s)
{
    acc a = {0};
    hex_walk(s, &a);
    return acc_finish(&a);
}

/* ---- regular expressions ---------------------------------------------------------------- */
typedef struct re_opts {
    bool wide;
} re_opts;

static long re_fixed_len(const re_node *r, const re_opts *o)
{
    switch (r->kind) {
    case RE_SET: return o->wide ? 2 : 1;
    case RE_ASSERT:
    case RE_EMPTY: return 0;
    case RE_CAT: {
        long n = 0;
        for (size_t i = 0; i < r->n; i++) {
            long k = re_fixed_len(r->sub[i], o);
            if (k < 0)
                return -1;
            n += k;
            if (n > RUN_CAP)
                return -1;
        }
        return n;
    }
    case RE_ALT: {
        long l = -2;
        for (size_t i = 0; i < r->n; i++) {
            long k = re_fixed_len(r->sub[i], o);
            if (k < 0 || (l != -2 && k != l))
                return -1;
            l = k;
        }
        return l;
    }
    case RE_REPEAT: {
        if (r->min != r->max || r->min > MAX_FIXED_REPEAT)
            return -1;
        long k = re_fixed_len(r->sub[0], o);
        return k < 0 ? -1 : k * r->min > RUN_CAP ? -1 : k * r->min;
    }
    }
    return -1;
}

static void re_set_at(const re_node *r, const re_opts *o, tr_byteset *out)
{
    for (int w = 0; w < 4; w++)
        out[0].w[w] |= r->set.w[w];
    if (o->wide) {
        /* libyara's wide regexps put a zero after each character; after a
         * dot we do not rely on it. */
        if (r->is_dot)
            tr_byteset_fill(&out[1]);
        else
            tr_byteset_add(&out[1], 0);
    }
}

static void re_union(const re_node *r, const re_opts *o, tr_byteset *out)
{
    switch (r->kind) {
    case RE_SET:
        re_set_at(r, o, out);
        return;
    case RE_ASSERT:
    case RE_EMPTY:
        return;
    case RE_CAT: {
        size_t p = 0;
        for (size_t i = 0; i < r->n; i++) {
            re_union(r->sub[i], o, out + p);
            p += (size_t)re_fixed_len(r->sub[i], o);
        }
        return;
    }
    case RE_ALT:
        for (size_t i = 0; i < r->n; i++)
            re_union(r->sub[i], o, out);
        return;
    case RE_REPEAT: {
        size_t k = (size_t)re_fixed_len(r->sub[0], o);
        for (int i = 0; i < r->min; i++)
            re_union(r->sub[0], o, out + (size_t)i * k);
        return;
    }
    }
}

static tr_query *re_q(const re_node *r, const re_opts *o);

static void re_walk(const re_node *r, const re_opts *o, acc *a)
{
    long fl = r->kind == RE_SET ? -1 : re_fixed_len(r, o);
    if (fl >= 0 && r->kind != RE_CAT) {
        tr_byteset *u = tr_xcalloc((size_t)fl + 1, sizeof *u);
        re_union(r, o, u);
        for (long k = 0; k < fl; k++)
            acc_set(a, &u[k]);
        free(u);
        return;
    }
    switch (r->kind) {
    case RE_SET: {
        tr_byteset u[2];
        memset(u, 0, sizeof u);
        re_set_at(r, o, u);
        acc_set(a, &u[0]);
        if (o->wide)
            acc_set(a, &u[1]);
        return;
    }
    case RE_ASSERT:
    case RE_EMPTY:
        return;
    case RE_CAT:
        for (size_t i = 0; i < r->n; i++)
            re_walk(r->sub[i], o, a);
        return;
    case RE_ALT: {
        acc_flush(a);
        tr_query **alts = tr_xcalloc(r->n, sizeof *alts);
        for (size_t i = 0; i < r->n; i++)
            alts[i] = re_q(r->sub[i], o);
        acc_piece(a, or_of(alts, r->n));
        free(alts);
        return;
    }
    case RE_REPEAT: {
        const re_node *c = r->sub[0];
        if (r->min == 0) {
            acc_flush(a);
            return;
        }
        long k = re_fixed_len(c, o);
        if (k >= 0 && r->min <= MAX_FIXED_REPEAT) {
            /* the mandatory copies are contiguous with what precedes */
            for (int i = 0; i < r->min; i++)
                re_walk(c, o, a);
            if (r->max != r->min)
                acc_flush(a);
            return;
        }
        /* at least one copy occurs; what precedes and follows may be far */
        acc_flush(a);
        re_walk(c, o, a);
        acc_flush(a);
        return;
    }
    }
}

static tr_query *re_q(const re_node *r, const re_opts *o)
{
    acc a = {0};
    re_walk(r, o, &a);
    return acc_finish(&a);
}

/* ---- literal sets (regex and hex) ---------------------------------------------------------
 * In the spirit of Russ Cox's trigram-index regexp analysis, every regex or
 * hex node yields a `lit`, a description of all the strings it can match:
 *   exact:   a set of runs (sequences of byte sets) covering every match, i.e.
 *            each match has the length of, and is accepted by, one run;
 *   inexact: prefix runs (each match starts with one of them), suffix runs
 *            (each match ends with one) and a query every document holding a
 *            match satisfies.
 * A run set holding the empty run says nothing. Sets are bounded (LIT_MAX_*):
 * beyond the bound we widen (merge runs position-wise, truncate prefixes or
 * suffixes, or drop a set to "nothing known"), which can only lose precision,
 * never soundness: every widened set still covers what the narrow one did. */
#define LIT_MAX_RUNS 64       /* runs per set */
#define LIT_MAX_POS 4096      /* positions per set (sum of run lengths) */
#define LIT_MAX_LEN RUN_CAP   /* positions per run */
#define LIT_MAX_UNROLL 16     /* copies of a repeated node unrolled */
#define LIT_SELECTIVE 16      /* alternatives per position worth enumerating repeats of */
#define LIT_JUNCTION 16       /* positions kept on each side of a forced break */

typedef struct lrun {
    tr_byteset *s;
    size_t n;
} lrun;

typedef struct rset {
    lrun *v;
    size_t n;
} rset;

typedef struct lit {
    bool exact;
    rset ex;                  /* exact */
    rset pre, suf;            /* inexact */
    tr_query *m;              /* inexact; NULL = ALL */
} lit;

static void rset_free(rset *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].s);
    free(r->v);
    r->v = NULL;
    r->n = 0;
}

static void rset_push(rset *r, const tr_byteset *s, size_t n)
{
    r->v = tr_xrealloc(r->v, (r->n + 1) * sizeof *r->v);
    lrun *x = &r->v[r->n++];
    x->n = n;
    x->s = tr_xmalloc((n ? n : 1) * sizeof *x->s);
    if (n)
        memcpy(x->s, s, n * sizeof *s);
}

static rset rset_clone(const rset *r)
{
    rset c = {0};
    for (size_t i = 0; i < r->n; i++)
        rset_push(&c, r->v[i].s, r->v[i].n);
    return c;
}

/* The set holding only the empty run: "nothing known". */
static rset rset_empty_run(void)
{
    rset r = {0};
    rset_push(&r, NULL, 0);
    return r;
}

static bool set_subset(const tr_byteset *a, const tr_byteset *b)
{
    for (int w = 0; w < 4; w++)
        if (a->w[w] & ~b->w[w])
            return false;
    return true;
}

static bool set_eq(const tr_byteset *a, const tr_byteset *b)
{
    return memcmp(a->w, b->w, sizeof a->w) == 0;
}

static size_t rset_pos(const rset *r)
{
    size_t p = 0;
    for (size_t i = 0; i < r->n; i++)
        p += r->v[i].n;
    return p;
}

static bool rset_fits(const rset *r)
{
    if (r->n > LIT_MAX_RUNS || rset_pos(r) > LIT_MAX_POS)
        return false;
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].n > LIT_MAX_LEN)
            return false;
    return true;
}

static void rset_drop(rset *r, size_t i)
{
    free(r->v[i].s);
    memmove(&r->v[i], &r->v[i + 1], (r->n - i - 1) * sizeof *r->v);
    r->n--;
}

/* Lossless normalisation: drop a run accepted by a wider run of the same
 * length, and merge two runs of equal length that differ in one position
 * only (the union of "xay" and "xby" is exactly "x{a,b}y"). */
static void rset_norm(rset *r)
{
    for (size_t i = 0; i < r->n; i++) {
        for (size_t j = i + 1; j < r->n;) {
            lrun *a = &r->v[i], *b = &r->v[j];
            if (a->n != b->n) {
                j++;
                continue;
            }
            size_t diff = 0, at = 0;
            bool b_in_a = true, a_in_b = true;
            for (size_t k = 0; k < a->n; k++) {
                b_in_a &= set_subset(&b->s[k], &a->s[k]);
                a_in_b &= set_subset(&a->s[k], &b->s[k]);
                if (!set_eq(&a->s[k], &b->s[k])) {
                    diff++;
                    at = k;
                }
            }
            if (a_in_b && !b_in_a) {
                lrun t = *a;              /* keep the wider run at i */
                *a = *b;
                *b = t;
            } else if (!b_in_a) {
                if (diff != 1) {
                    j++;
                    continue;
                }
                for (int w = 0; w < 4; w++)
                    a->s[at].w[w] |= b->s[at].w[w];
            }
            rset_drop(r, j);
            j = i + 1;                    /* a may now absorb runs it did not before */
        }
    }
}

static bool rset_has_empty(const rset *r)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].n == 0)
            return true;
    return false;
}

/* Every pairing a.b; false (out untouched) when the result would not fit. */
static bool rset_cross(const rset *a, const rset *b, rset *out)
{
    if (a->n * b->n > 4 * LIT_MAX_RUNS)
        return false;
    size_t pos = 0;
    for (size_t i = 0; i < a->n; i++)
        for (size_t j = 0; j < b->n; j++) {
            if (a->v[i].n + b->v[j].n > LIT_MAX_LEN)
                return false;
            pos += a->v[i].n + b->v[j].n;
        }
    if (pos > 4 * LIT_MAX_POS)
        return false;
    rset r = {0};
    tr_byteset *tmp = tr_xmalloc((2 * LIT_MAX_LEN + 1) * sizeof *tmp);
    for (size_t i = 0; i < a->n; i++)
        for (size_t j = 0; j < b->n; j++) {
            size_t na = a->v[i].n, nb = b->v[j].n;
            if (na)
                memcpy(tmp, a->v[i].s, na * sizeof *tmp);
            if (nb)
                memcpy(tmp + na, b->v[j].s, nb * sizeof *tmp);
            rset_push(&r, tmp, na + nb);
        }
    free(tmp);
    rset_norm(&r);
    if (!rset_fits(&r)) {
        rset_free(&r);
        return false;
    }
    *out = r;
    return true;
}

/* Widening: one run per distinct length, the position-wise union of the
 * runs of that length. Covers everything the input covered. */
static rset rset_collapse(const rset *r)
{
    rset c = {0};
    for (size_t i = 0; i < r->n; i++) {
        size_t j = 0;
        while (j < c.n && c.v[j].n != r->v[i].n)
            j++;
        if (j == c.n) {
            rset_push(&c, r->v[i].s, r->v[i].n);
            continue;
        }
        for (size_t k = 0; k < r->v[i].n; k++)
            for (int w = 0; w < 4; w++)
                c.v[j].s[k].w[w] |= r->v[i].s[k].w[w];
    }
    rset_norm(&c);
    return c;
}

/* Widening of a prefix (suffix) set: keep at most len leading (trailing)
 * positions of each run. */
static rset rset_trim(const rset *r, size_t len, bool keep_tail)
{
    rset c = {0};
    for (size_t i = 0; i < r->n; i++) {
        size_t n = r->v[i].n < len ? r->v[i].n : len;
        rset_push(&c, r->v[i].s + (keep_tail ? r->v[i].n - n : 0), n);
    }
    rset_norm(&c);
    return c;
}

/* Makes a prefix/suffix set fit, widening step by step; consumes r. */
static rset rset_shrink(rset r, bool keep_tail)
{
    static const size_t lens[] = {LIT_JUNCTION, 8, 4, 3, 1};
    if (rset_fits(&r))
        return r;
    rset c = rset_collapse(&r);
    for (size_t i = 0; !rset_fits(&c) && i < sizeof lens / sizeof *lens; i++) {
        rset t = rset_trim(&c, lens[i], keep_tail);
        rset_free(&c);
        c = rset_collapse(&t);
        rset_free(&t);
    }
    rset_free(&r);
    if (!rset_fits(&c)) {
        rset_free(&c);
        c = rset_empty_run();
    }
    return c;
}

/* OR of the runs: necessary for any document holding a covered string. */
static tr_query *rset_query(const rset *r)
{
    if (rset_has_empty(r))
        return tr_query_all();
    tr_query **v = tr_xcalloc(r->n + 1, sizeof *v);
    for (size_t i = 0; i < r->n; i++)
        v[i] = tr_query_seq(r->v[i].s, r->v[i].n);
    tr_query *q = tr_query_node(TR_Q_OR, 0, v, r->n);
    free(v);
    return q;
}

static void lit_free(lit *l)
{
    rset_free(&l->ex);
    rset_free(&l->pre);
    rset_free(&l->suf);
    tr_query_free(l->m);
    l->m = NULL;
}

static lit lit_exact(rset r)
{
    return (lit){.exact = true, .ex = r};
}

/* Matches anything, including the empty string. */
static lit lit_unknown(void)
{
    return (lit){.pre = rset_empty_run(), .suf = rset_empty_run()};
}

static const rset *lit_pre(const lit *l) { return l->exact ? &l->ex : &l->pre; }
static const rset *lit_suf(const lit *l) { return l->exact ? &l->ex : &l->suf; }

static void and_into(tr_query **m, tr_query *q)
{
    *m = *m ? tr_query_and2(*m, q) : q;
}

/* A query every document holding a match of l satisfies. */
static tr_query *lit_query(const lit *l)
{
    if (l->exact)
        return rset_query(&l->ex);
    tr_query *q = l->m ? tr_query_clone(l->m) : tr_query_all();
    q = tr_query_and2(q, rset_query(&l->pre));
    return tr_query_and2(q, rset_query(&l->suf));
}

/* Concatenation, child by child. t covers the tail of every match seen so
 * far since the last break; while every child is exact, t is the exact set. */
typedef struct catb {
    bool exact;
    rset t, pre;
    tr_query *m;
} catb;

static catb cat_begin(void)
{
    return (catb){.exact = true, .t = rset_empty_run()};
}

/* Joins t with the leading runs of what follows, widening when the product
 * does not fit; every result covers "tail of t, then a run of next".
 * whole_next: the result must end where next's runs end (it becomes the new
 * tail), so next may not be truncated. */
static rset cat_join(const rset *t, const rset *next, bool whole_next)
{
    rset x;
    if (rset_cross(t, next, &x))
        return x;
    rset ct = rset_collapse(t), cn = rset_collapse(next);
    bool ok = rset_cross(&ct, &cn, &x);
    if (!ok) {
        rset tt = rset_trim(&ct, LIT_JUNCTION, true);
        rset tn = whole_next ? rset_clone(&cn) : rset_trim(&cn, LIT_JUNCTION, false);
        rset ctt = rset_collapse(&tt), ctn = rset_collapse(&tn);
        ok = rset_cross(&ctt, &ctn, &x);
        rset_free(&tt);
        rset_free(&tn);
        rset_free(&ctt);
        rset_free(&ctn);
    }
    rset_free(&ct);
    rset_free(&cn);
    return ok ? x : rset_clone(next);
}

/* piece is necessary; the concatenation is no longer exact, and prefix
 * (consumed) is its prefix set if everything so far was exact. */
static void cat_break(catb *b, const rset *piece, rset prefix)
{
    and_into(&b->m, rset_query(piece));
    if (b->exact) {
        b->pre = prefix;
        b->exact = false;
    } else {
        rset_free(&prefix);
    }
}

static void cat_add(catb *b, const lit *c)
{
    rset x;
    if (c->exact) {
        if (rset_cross(&b->t, &c->ex, &x)) {
            rset_free(&b->t);
            b->t = x;
            return;
        }
        /* too many or too long: keep t as a piece, continue from its end */
        cat_break(b, &b->t, rset_shrink(rset_clone(&b->t), false));
        x = cat_join(&b->t, &c->ex, true);
        rset_free(&b->t);
        b->t = x;
        return;
    }
    /* the tail so far, then the start of c: a necessary junction */
    rset j = cat_join(&b->t, &c->pre, false);
    rset p = {0};
    if (b->exact && !rset_cross(&b->t, &c->pre, &p))
        p = rset_shrink(rset_clone(&b->t), false);   /* t is exact: its runs start every match */
    cat_break(b, &j, p);
    rset_free(&j);
    if (c->m)
        and_into(&b->m, tr_query_clone(c->m));
    rset_free(&b->t);
    b->t = rset_clone(&c->suf);
}

static lit cat_end(catb *b)
{
    if (b->exact)
        return lit_exact(b->t);
    return (lit){.pre = b->pre, .suf = rset_shrink(b->t, true), .m = b->m};
}

/* u |= x for a prefix (suffix) set, widening u when it grows too large
 * (rset_shrink keeps covering what it covered). */
static void union_into(rset *u, const rset *x, bool keep_tail)
{
    for (size_t k = 0; k < x->n; k++)
        rset_push(u, x->v[k].s, x->v[k].n);
    rset_norm(u);
    if (!rset_fits(u))
        *u = rset_shrink(*u, keep_tail);
}

/* Alternation: the union when it fits, else the OR of the branches' queries
 * with widened prefix and suffix sets. Consumes the children. */
static lit lit_alt(lit *c, size_t n)
{
    bool all_exact = true;
    for (size_t i = 0; i < n; i++)
        all_exact &= c[i].exact;
    if (all_exact) {
        rset u = {0};
        bool complete = true;
        for (size_t i = 0; i < n && complete; i++) {
            for (size_t k = 0; k < c[i].ex.n; k++)
                rset_push(&u, c[i].ex.v[k].s, c[i].ex.v[k].n);
            complete = rset_pos(&u) <= 4 * LIT_MAX_POS;
        }
        rset_norm(&u);
        if (complete && rset_fits(&u)) {
            for (size_t i = 0; i < n; i++)
                lit_free(&c[i]);
            return lit_exact(u);
        }
        rset_free(&u);
    }
    lit r = {0};
    tr_query **v = tr_xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        v[i] = lit_query(&c[i]);
        union_into(&r.pre, lit_pre(&c[i]), false);
        union_into(&r.suf, lit_suf(&c[i]), true);
        lit_free(&c[i]);
    }
    r.m = tr_query_node(TR_Q_OR, 0, v, n);
    free(v);
    r.pre = rset_shrink(r.pre, false);
    r.suf = rset_shrink(r.suf, true);
    return r;
}

/* Whether every position of every run has at most max alternatives. */
static bool rset_selective(const rset *r, unsigned max)
{
    for (size_t i = 0; i < r->n; i++)
        for (size_t k = 0; k < r->v[i].n; k++)
            if (tr_byteset_count(&r->v[i].s[k]) > max)
                return false;
    return true;
}

/* x{lo,hi} (hi -1: unbounded) given the lit of x. Consumes c. */
static lit lit_repeat(lit c, int lo, int hi)
{
    /* Enumerating the counts pays only for selective x: [a-z]{2,8} as seven
     * runs of letters tells the index nothing that [a-z]{2} does not. */
    if (c.exact && hi >= 0 && hi <= LIT_MAX_UNROLL &&
        (lo == hi || rset_selective(&c.ex, LIT_SELECTIVE))) {
        /* exact: the union of x^k for k in [lo, hi] */
        rset u = {0}, pw = rset_empty_run();
        bool ok = true;
        for (int k = 0; k <= hi && ok; k++) {
            if (k > 0) {
                rset x;
                ok = rset_cross(&pw, &c.ex, &x);
                if (!ok)
                    break;
                rset_free(&pw);
                pw = x;
            }
            if (k >= lo)
                for (size_t i = 0; i < pw.n; i++)
                    rset_push(&u, pw.v[i].s, pw.v[i].n);
            rset_norm(&u);
            ok = rset_fits(&u);
        }
        rset_free(&pw);
        if (ok) {
            lit_free(&c);
            return lit_exact(u);
        }
        rset_free(&u);
    }
    if (lo == 0) {
        lit_free(&c);
        return lit_unknown();
    }
    /* Any match holds lo' = min(lo, LIT_MAX_UNROLL) consecutive copies at its
     * start and at its end: a match of x{lo'} is a prefix and a suffix. */
    int n = lo < LIT_MAX_UNROLL ? lo : LIT_MAX_UNROLL;
    if (!c.exact && n > 2)
        n = 2;      /* further copies only repeat the same junction and pieces */
    catb b = cat_begin();
    for (int i = 0; i < n; i++)
        cat_add(&b, &c);
    lit_free(&c);
    lit r = cat_end(&b);
    if (r.exact && !(hi == lo && lo == n)) {
        lit w = {.m = rset_query(&r.ex), .pre = rset_clone(&r.ex), .suf = r.ex};
        r = w;
    }
    return r;
}

/* ---- regex -> lit */
typedef struct lit_opts {
    bool wide;
} lit_opts;

static lit re_lit(const re_node *r, const lit_opts *o)
{
    switch (r->kind) {
    case RE_SET: {
        tr_byteset u[2];
        memset(u, 0, sizeof u);
        /* Without the s flag libyara's dot skips only '\n': a set the index
         * cannot use either way, so the parser's full set stands. */
        u[0] = r->set;
        if (o->wide) {
            /* the zero after each character; after a dot we do not rely on it */
            if (r->is_dot)
                tr_byteset_fill(&u[1]);
            else
                tr_byteset_add(&u[1], 0);
        }
        rset s = {0};
        rset_push(&s, u, o->wide ? 2 : 1);
        return lit_exact(s);
    }
    case RE_ASSERT:          /* zero width: ^ $ \b \B */
    case RE_EMPTY:
        return lit_exact(rset_empty_run());
    case RE_CAT: {
        catb b = cat_begin();
        for (size_t i = 0; i < r->n; i++) {
            lit c = re_lit(r->sub[i], o);
            cat_add(&b, &c);
            lit_free(&c);
        }
        return cat_end(&b);
    }
    case RE_ALT: {
        lit *c = tr_xcalloc(r->n + 1, sizeof *c);
        for (size_t i = 0; i < r->n; i++)
            c[i] = re_lit(r->sub[i], o);
        lit l = lit_alt(c, r->n);
        free(c);
        return l;
    }
    case RE_REPEAT:
        return lit_repeat(re_lit(r->sub[0], o), r->min, r->max);
    }
    return lit_unknown();
}

/* ---- hex -> lit */
static lit hex_seq_lit(const hex_seq *s);

static lit hex_item_lit(const hex_item *it)
{
    if (it->kind == HEX_BYTE) {
        tr_byteset b;
        byte_set(it, &b);
        rset s = {0};
        rset_push(&s, &b, 1);
        return lit_exact(s);
    }
    if (it->kind == HEX_JUMP) {
        if (it->lo == it->hi && it->lo <= 16) {
            tr_byteset any[16];
            for (int k = 0; k < 16; k++)
                tr_byteset_fill(&any[k]);
            rset s = {0};
            rset_push(&s, any, (size_t)it->lo);
            return lit_exact(s);
        }
        return lit_unknown();      /* a variable gap: the two sides are ANDed */
    }
    lit *c = tr_xcalloc(it->nalt + 1, sizeof *c);
    for (size_t j = 0; j < it->nalt; j++)
        c[j] = hex_seq_lit(it->alt[j]);
    lit l = lit_alt(c, it->nalt);
    free(c);
    return l;
}

static lit hex_seq_lit(const hex_seq *s)
{
    catb b = cat_begin();
    for (size_t i = 0; i < s->n; i++) {
        lit c = hex_item_lit(&s->items[i]);
        cat_add(&b, &c);
        lit_free(&c);
    }
    return cat_end(&b);
}

/* ---- pruning: drop implied conjuncts and disjuncts ------------------------------------
 * Both steps keep the query's meaning exactly: in AND(a, b) with a => b, b
 * is redundant; in OR(a, b) with a => b, a is. `work` bounds the effort; when
 * it runs out nothing is claimed. */
static bool seq_implies(const tr_query *a, const tr_query *b, long *work)
{
    /* a contains b when b accepts some window of a position by position */
    if (b->n > a->n)
        return false;
    *work -= (long)(a->n * b->n / 16);
    for (size_t off = 0; off + b->n <= a->n; off++) {
        size_t j = 0;
        while (j < b->n && set_subset(&a->pos[off + j], &b->pos[j]))
            j++;
        if (j == b->n)
            return true;
    }
    return false;
}

static bool q_implies(const tr_query *a, const tr_query *b, long *work)
{
    if (--*work < 0)
        return false;
    if (b->kind == TR_Q_ALL || a->kind == TR_Q_NONE)
        return true;
    if (a->kind == TR_Q_SEQ && b->kind == TR_Q_SEQ)
        return seq_implies(a, b, work);
    if (a->kind == TR_Q_OR) {
        bool all = a->n > 0;
        for (size_t i = 0; i < a->n && all; i++)
            all = q_implies(a->child[i], b, work);
        if (all)
            return true;
    }
    if (b->kind == TR_Q_AND) {
        bool all = true;
        for (size_t i = 0; i < b->n && all; i++)
            all = q_implies(a, b->child[i], work);
        if (all)
            return true;
    }
    if (a->kind == TR_Q_AND)
        for (size_t i = 0; i < a->n; i++)
            if (q_implies(a->child[i], b, work))
                return true;
    if (b->kind == TR_Q_OR)
        for (size_t i = 0; i < b->n; i++)
            if (q_implies(a, b->child[i], work))
                return true;
    return false;
}

static void q_prune(tr_query *q, long *work)
{
    if (q->kind != TR_Q_AND && q->kind != TR_Q_OR && q->kind != TR_Q_MIN_OF)
        return;
    for (size_t i = 0; i < q->n; i++)
        q_prune(q->child[i], work);
    if (q->kind == TR_Q_MIN_OF)
        return;
    for (size_t i = 0; i < q->n;) {
        bool drop = false;
        for (size_t j = 0; j < q->n && !drop; j++) {
            if (i == j)
                continue;
            drop = q->kind == TR_Q_AND ? q_implies(q->child[j], q->child[i], work)
                                       : q_implies(q->child[i], q->child[j], work);
        }
        if (drop) {
            tr_query_free(q->child[i]);
            memmove(&q->child[i], &q->child[i + 1], (q->n - i - 1) * sizeof *q->child);
            q->n--;
        } else {
            i++;
        }
    }
}

/* Positions with more alternatives than the index can use are shown as
 * "??" (a widening, so always sound): it keeps `trawl plan` readable. */
static void widen_useless(tr_query *q)
{
    if (q->kind == TR_Q_SEQ) {
        for (size_t i = 0; i < q->n; i++)
            if (tr_byteset_count(&q->pos[i]) > USABLE_SET)
                tr_byteset_fill(&q->pos[i]);
        return;
    }
    if (q->kind == TR_Q_AND || q->kind == TR_Q_OR || q->kind == TR_Q_MIN_OF)
        for (size_t i = 0; i < q->n; i++)
            widen_useless(q->child[i]);
}

/* Simplified and pruned; consumes q. */
static tr_query *lit_finish(tr_query *q)
{
    long work = 200000;
    widen_useless(q);
    q = tr_query_simplify(q);
    q_prune(q, &work);
    return tr_query_simplify(q);
}

/* A short description of a string's query for the notes. */
static void describe(const tr_query *q, tr_buf *note)
{
    if (q->kind == TR_Q_OR) {
        bool lits = true, seqs = true;
        for (size_t i = 0; i < q->n; i++) {
            const tr_query *c = q->child[i];
            seqs &= c->kind == TR_Q_SEQ;
            for (size_t k = 0; seqs && k < c->n; k++)
                lits &= tr_byteset_count(&c->pos[k]) == 1;
        }
        if (seqs)
            tr_buf_printf(note, ", OR of %zu %s", q->n, lits ? "literals" : "sequences");
        else
            tr_buf_printf(note, ", OR of %zu alternatives", q->n);
    } else if (q->kind == TR_Q_AND) {
        tr_buf_printf(note, ", AND of %zu pieces", q->n);
    }
}

/* The literal-set plan of one regex form; the older run-based walk is the
 * fallback when the sets' queries would exceed the string budget. */
static tr_query *regex_form(const tr_string *s, bool wide)
{
    lit l = re_lit(s->re, &(lit_opts){.wide = wide});
    tr_query *q = lit_finish(lit_query(&l));
    lit_free(&l);
    if (qsize(q) > TR_PLAN_STRING_BUDGET) {
        tr_query_free(q);
        q = re_q(s->re, &(re_opts){.wide = wide});
    }
    return q;
}

static tr_query *plan_regex(const tr_string *s, tr_buf *note)
{
    bool wide = s->mods & MOD_WIDE;
    bool ascii = !wide || (s->mods & MOD_ASCII);
    tr_query **alts = NULL;
    size_t n = 0;
    if (ascii)
        vec_push(&alts, &n, regex_form(s, false));
    if (wide)
        vec_push(&alts, &n, regex_form(s, true));
    tr_buf_printf(note, "regex /%.80s/%s%s%s%s", (const char *)s->text, s->re_nocase ? "i" : "",
                  s->re_dotall ? "s" : "", (s->mods & MOD_NOCASE) ? " nocase" : "",
                  ascii && wide ? " ascii+wide" : wide ? " wide" : "");
    return or_vec(alts, n);
}

static tr_query *plan_hex(const tr_string *s, tr_buf *note)
{
    lit l = hex_seq_lit(s->hex);
    tr_query *q = lit_finish(lit_query(&l));
    lit_free(&l);
    if (qsize(q) > TR_PLAN_STRING_BUDGET) {
        tr_query_free(q);
        q = hex_q(s->hex);
    }
    tr_buf_printf(note, "hex string");
    return q;
}

/* ---- per-rule planning ---------------------------------------------------------------------- */
typedef struct pctx {
    const tr_ruleset *rs;
    tr_query ***sq;          /* per rule, per string (lazily built) */
    char ***notes;
    tr_query **cond;         /* per rule: condition plan without globals (memo) */
    bool *cond_busy;
} pctx;

static tr_query *string_query(pctx *c, size_t ri, size_t si)
{
    if (!c->sq[ri]) {
        const tr_rule *r = &c->rs->rules[ri];
        c->sq[ri] = tr_xcalloc(r->nstrings + 1, sizeof **c->sq);
        c->notes[ri] = tr_xcalloc(r->nstrings + 1, sizeof **c->notes);
        for (size_t i = 0; i < r->nstrings; i++) {
            const tr_string *s = &r->strings[i];
            tr_buf note = {0};
            tr_buf_printf(&note, "%s: ", s->id);
            tr_query *q;
            if (s->kind == STR_TEXT)
                q = plan_text(s, &note);
            else if (s->kind == STR_HEX)
                q = plan_hex(s, &note);
            else
                q = plan_regex(s, &note);
            q = tr_query_simplify(q);
            if (s->kind != STR_TEXT)
                describe(q, &note);
            size_t sz = qsize(q);
            if (sz > TR_PLAN_STRING_BUDGET) {
                tr_query_free(q);
                q = tr_query_all();
                tr_buf_printf(&note, " (expansion over budget)");
            }
            if (!narrows(q))
                tr_buf_printf(&note, " -> no usable run of >= 3 bytes -> all");
            else
                tr_buf_printf(&note, " -> %zu positions", sz);
            tr_buf_append(&note, "", 1);
            c->sq[ri][i] = q;
            c->notes[ri][i] = note.data;
        }
    }
    return tr_query_clone(c->sq[ri][si]);
}

typedef struct cctx {
    pctx *p;
    size_t ri;               /* rule whose strings are in scope */
    int anon;                /* the string bound to $ in a for..of body, or -1 */
} cctx;

static tr_query *cond_q(cctx *c, const expr *e);
static tr_query *rule_cond(pctx *p, size_t ri);

static int sidx_of(const cctx *c, const expr *e)
{
    return e->sidx >= 0 ? e->sidx : c->anon;
}

static tr_query *str_q(cctx *c, const expr *e)
{
    int s = sidx_of(c, e);
    if (s < 0)
        return tr_query_all();
    return string_query(c->p, c->ri, (size_t)s);
}

/* k of the quantifier, or -1 when it implies nothing. */
static long quant_k(const expr *e, size_t n)
{
    long k;
    switch (e->quant) {
    case Q_ANY: k = 1; break;
    case Q_ALL: k = (long)n; break;
    case Q_NONE: return -1;
    default:
        if (!e->a[0] || !e->a[0]->is_const)
            return -1;
        if (e->a[0]->ival <= 0)
            return -1;
        k = e->a[0]->ival > (int64_t)n ? (long)n : (long)e->a[0]->ival;
    }
    return k;
}

/* ---- values only a PE file defines ---------------------------------------
 * libyara's pe module fills these fields and answers these functions only
 * when the file parses as a PE: "MZ" at offset 0 and "PE\0\0" at e_lfanew.
 * On any other file they are undefined, so a comparison or a string
 * operation on them, arithmetic with them, a call used as a condition or an
 * any-loop over their items is not true. Constants (pe.MACHINE_I386) and
 * pe.is_pe are defined on every file and are not listed; nor is anything
 * not checked: test_rules_plan asks the linked libyara about each name. */
static const char *const pe_only_fields[] = {
    "base_of_code", "base_of_data", "calculate_checksum", "characteristics", "checksum",
    "data_directories", "dll_characteristics", "dll_name",
    "entry_point", "entry_point_raw", "export_details", "export_timestamp", "exports",
    "exports_index", "file_alignment", "image_base", "image_version", "imphash",
    "import_details", "imports", "is_32bit", "is_64bit", "is_dll", "language",
    "linker_version", "loader_flags", "locale", "machine", "number_of_exports",
    "number_of_imported_functions", "number_of_imports", "number_of_resources",
    "number_of_rva_and_sizes", "number_of_sections", "number_of_signatures",
    "number_of_symbols", "opthdr_magic", "os_version", "overlay", "pdb_path",
    "pointer_to_symbol_table", "resource_timestamp", "resources", "rich_signature",
    "rva_to_offset", "section_alignment", "section_index", "sections", "signatures",
    "size_of_code", "size_of_headers", "size_of_heap_commit", "size_of_heap_reserve",
    "size_of_image", "size_of_initialized_data", "size_of_optional_header",
    "size_of_stack_commit", "size_of_stack_reserve", "size_of_uninitialized_data",
    "subsystem", "subsystem_version", "timestamp", "version_info", "version_info_list",
    "win32_version_value",
};

const char *const *tr_plan_pe_only_fields(size_t *n)
{
    *n = sizeof pe_only_fields / sizeof *pe_only_fields;
    return pe_only_fields;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* True when e is a field, item or call of the pe module that only a PE
 * file defines (pe.sections[i].name, pe.exports("x"), pe.rich_signature...). */
static bool pe_only_value(const expr *e)
{
    const expr *below = NULL;
    while (e->kind == E_MEMBER || e->kind == E_INDEX || e->kind == E_CALL) {
        if (e->na < 1)
            return false;
        if (e->kind == E_MEMBER)
            below = e;
        e = e->a[0];
    }
    if (e->kind != E_MODULE || !e->text || strcmp(e->text, "pe") != 0 || !below || !below->text)
        return false;
    const char *name = below->text;
    return bsearch(&name, pe_only_fields, sizeof pe_only_fields / sizeof *pe_only_fields,
                   sizeof *pe_only_fields, cmp_name) != NULL;
}

/* What libyara needs to call a file a PE: "MZ" where it starts (the
 * pre-check's) and "PE\0\0" somewhere (the index's). */
static tr_query *is_pe_q(void)
{
    static const unsigned char mz[2] = {'M', 'Z'}, pe[4] = {'P', 'E', 0, 0};
    return tr_query_and2(tr_query_at(0, mz, 2), tr_query_literal(pe, 4));
}

/* Collects what an operand's being defined requires: strings whose offsets
 * or lengths feed it (undefined when the string has no match) and a PE file
 * for pe values; undefined propagates through arithmetic to the comparison,
 * which is then false. */
static void undef_strings(cctx *c, const expr *e, tr_query **acc_q)
{
    switch (e->kind) {
    case E_MEMBER:
    case E_INDEX:
    case E_CALL:
        if (pe_only_value(e)) {
            tr_query *q = is_pe_q();
            *acc_q = *acc_q ? tr_query_and2(*acc_q, q) : q;
        }
        return;
    case E_OFFSET:
    case E_LENGTH: {
        tr_query *q = str_q(c, e);
        *acc_q = *acc_q ? tr_query_and2(*acc_q, q) : q;
        return;
    }
    case E_NEG: case E_BITNOT: case E_ADD: case E_SUB: case E_MUL: case E_DIV: case E_MOD:
    case E_SHL: case E_SHR: case E_BAND: case E_BOR: case E_BXOR:
        for (size_t i = 0; i < e->na; i++)
            undef_strings(c, e->a[i], acc_q);
        return;
    default:
        return;
    }
}

/* intN/uintN[be](x) == K holds only when the file holds K's bytes at x:
 * the read is undefined (so the comparison false) past the end of the file.
 * A constant x gives those bytes at that offset (AT, for the pre-check); a
 * 32-bit value also gives them anywhere (SEQ, for the index; shorter ones
 * are under a gram). */
static tr_query *read_eq_q(const expr *l, const expr *r)
{
    if (l->kind != E_INTFUNC || !l->text || l->na != 1 || !r->is_const || r->type != T_INT)
        return NULL;
    const char *f = l->text;
    bool is_signed = f[0] == 'i';
    const char *w = f + (is_signed ? 3 : 4);
    int bits = strncmp(w, "32", 2) == 0 ? 32 : strncmp(w, "16", 2) == 0 ? 16 : w[0] == '8' ? 8 : 0;
    if (bits == 0)
        return NULL;
    const char *end = w + (bits == 8 ? 1 : 2);
    bool be = strcmp(end, "be") == 0;
    if (!be && end[0] != 0)
        return NULL;
    int64_t v = r->ival, half = (int64_t)1 << (bits - 1);
    if (is_signed ? (v < -half || v >= half) : (v < 0 || v >= 2 * half))
        return NULL;   /* never equal: ALL stays sound, and such rules are rare */
    uint32_t u = (uint32_t)v;
    size_t nb = (size_t)bits / 8;
    unsigned char b[4];
    for (size_t i = 0; i < nb; i++)
        b[be ? nb - 1 - i : i] = (unsigned char)(u >> (8 * i));
    const expr *x = l->a[0];
    tr_query *at = x->is_const && x->type == T_INT && x->ival >= 0
                       ? tr_query_at((uint64_t)x->ival, b, nb) : NULL;
    tr_query *seq = nb == 4 ? tr_query_literal(b, 4) : NULL;
    if (at && seq)
        return tr_query_and2(at, seq);
    return at ? at : seq;
}

/* The comparison with its operands swapped: a < b is b > a. */
static expr_kind mirrored(expr_kind op)
{
    return op == E_LT ? E_GT : op == E_GT ? E_LT : op == E_LE ? E_GE : op == E_GE ? E_LE : op;
}

/* filesize OP K as a size range. */
static tr_query *size_q(const expr *l, const expr *r, expr_kind op)
{
    if (r->kind == E_FILESIZE) {
        const expr *t = l;
        l = r;
        r = t;
        op = mirrored(op);
    }
    if (l->kind != E_FILESIZE || !r->is_const || r->type != T_INT)
        return NULL;
    int64_t k = r->ival;
    uint64_t lo = 0, hi = UINT64_MAX;
    switch (op) {
    case E_LT:
        if (k <= 0)
            return tr_query_none();
        hi = (uint64_t)k - 1;
        break;
    case E_LE:
        if (k < 0)
            return tr_query_none();
        hi = (uint64_t)k;
        break;
    case E_GT:
        if (k < 0)
            return NULL;
        lo = (uint64_t)k + 1;
        break;
    case E_GE:
        if (k <= 0)
            return NULL;
        lo = (uint64_t)k;
        break;
    case E_EQ:
        if (k < 0)
            return tr_query_none();
        lo = hi = (uint64_t)k;
        break;
    default:
        return NULL;
    }
    return tr_query_size(lo, hi);
}

/* A module string read from the file's own bytes, compared for equality
 * with a literal: the file holds the literal. pe.sections[i].name is the
 * section header's 8-byte name up to its first NUL (libyara 4.2.3); other
 * module strings are decoded, resolved or case-folded, so they imply
 * nothing here. */
static tr_query *module_eq_q(const expr *l, const expr *r)
{
    if (r->kind != E_TEXT || r->len == 0 || r->len > 8 || memchr(r->text, 0, r->len))
        return NULL;
    if (l->kind != E_MEMBER || !l->text || strcmp(l->text, "name") != 0 || l->na != 1)
        return NULL;
    const expr *ix = l->a[0];
    if (ix->kind != E_INDEX || ix->na != 2)
        return NULL;
    const expr *secs = ix->a[0];
    if (secs->kind != E_MEMBER || !secs->text || strcmp(secs->text, "sections") != 0 ||
        secs->na != 1)
        return NULL;
    const expr *mod = secs->a[0];
    if (mod->kind != E_MODULE || !mod->text || strcmp(mod->text, "pe") != 0)
        return NULL;
    return tr_query_literal((const unsigned char *)r->text, r->len);
}

static tr_query *compare_q(cctx *c, const expr *e)
{
    tr_query *q = NULL;
    undef_strings(c, e->a[0], &q);
    undef_strings(c, e->a[1], &q);
    const expr *l = e->a[0], *r = e->a[1];
    expr_kind op = e->kind;
    if (r->kind == E_COUNT || r->kind == E_COUNT_IN) {
        const expr *t = l;
        l = r;
        r = t;
        op = mirrored(op);
    }
    if (op == E_EQ) {
        tr_query *implied = read_eq_q(l, r);
        if (!implied)
            implied = read_eq_q(r, l);
        if (!implied)
            implied = module_eq_q(l, r);
        if (!implied)
            implied = module_eq_q(r, l);
        if (implied)
            q = q ? tr_query_and2(q, implied) : implied;
    }
    tr_query *sz = size_q(l, r, op);
    if (sz)
        q = q ? tr_query_and2(q, sz) : sz;
    if ((l->kind == E_COUNT || l->kind == E_COUNT_IN) && r->is_const && r->type == T_INT) {
        int64_t v = r->ival;
        bool present = (op == E_GT && v >= 0) || (op == E_GE && v >= 1) || (op == E_EQ && v >= 1) ||
                       (op == E_NE && v == 0);
        if (present) {
            tr_query *s = str_q(c, l);
            q = q ? tr_query_and2(q, s) : s;
        }
    }
    return q ? q : tr_query_all();
}

static tr_query *cond_q(cctx *c, const expr *e)
{
    switch (e->kind) {
    case E_TRUE:
        return tr_query_all();
    case E_FALSE:
        return tr_query_none();
    case E_STR:
    case E_STR_AT:
    case E_STR_IN:
        return str_q(c, e);
    case E_AND:
    case E_OR: {
        tr_query *kids[2] = {cond_q(c, e->a[0]), cond_q(c, e->a[1])};
        return tr_query_node(e->kind == E_AND ? TR_Q_AND : TR_Q_OR, 0, kids, 2);
    }
    case E_OF:
    case E_PCT_OF: {
        long k;
        if (e->kind == E_PCT_OF) {
            if (!e->a[0]->is_const || e->a[0]->ival <= 0)
                return tr_query_all();
            k = (long)(e->a[0]->ival * (int64_t)e->nset / 100);
            if (k < 1)
                k = 1;
            if (k > (long)e->nset)
                k = (long)e->nset;
        } else {
            k = quant_k(e, e->nset);
        }
        if (k <= 0)
            return tr_query_all();
        tr_query **kids = tr_xcalloc(e->nset, sizeof *kids);
        for (size_t i = 0; i < e->nset; i++) {
            if (e->set_is_rules) {
                size_t r = (size_t)e->set[i];
                kids[i] = r < c->ri ? rule_cond(c->p, r) : tr_query_all();
            } else {
                kids[i] = string_query(c->p, c->ri, (size_t)e->set[i]);
            }
        }
        tr_query *q = tr_query_node(TR_Q_MIN_OF, (uint32_t)k, kids, e->nset);
        free(kids);
        return q;
    }
    case E_FOR_OF: {
        long k = quant_k(e, e->nset);
        if (k <= 0)
            return tr_query_all();
        tr_query **kids = tr_xcalloc(e->nset, sizeof *kids);
        int saved = c->anon;
        for (size_t i = 0; i < e->nset; i++) {
            c->anon = e->set[i];
            kids[i] = cond_q(c, e->a[1]);
        }
        c->anon = saved;
        tr_query *q = tr_query_node(TR_Q_MIN_OF, (uint32_t)k, kids, e->nset);
        free(kids);
        return q;
    }
    case E_FOR_IN: {
        /* any/N>=1 needs one true body evaluation; all/none may be vacuous. */
        bool some = e->quant == Q_ANY ||
                    (e->quant == Q_EXPR && e->a[0] && e->a[0]->is_const && e->a[0]->ival >= 1);
        if (!some)
            return tr_query_all();
        /* An any-loop over a container only a PE fills runs no body elsewhere. */
        tr_query *body = cond_q(c, e->a[2]);
        return e->na > 1 && pe_only_value(e->a[1]) ? tr_query_and2(is_pe_q(), body) : body;
    }
    case E_RULE:
        if ((size_t)e->ridx >= c->ri)
            return tr_query_all();     /* itself: not yet evaluated when referenced */
        return rule_cond(c->p, (size_t)e->ridx);
    case E_LT: case E_LE: case E_GT: case E_GE: case E_EQ: case E_NE:
        return compare_q(c, e);
    case E_CONTAINS: case E_ICONTAINS: case E_STARTSWITH: case E_ISTARTSWITH:
    case E_ENDSWITH: case E_IENDSWITH: case E_IEQUALS: case E_MATCHES: {
        tr_query *q = NULL;
        for (size_t i = 0; i < e->na; i++)
            undef_strings(c, e->a[i], &q);
        return q ? q : tr_query_all();
    }
    case E_NOT:
    case E_DEFINED:
        return tr_query_all();
    default: {
        /* A value used as a condition is false when undefined. */
        tr_query *q = NULL;
        undef_strings(c, e, &q);
        return q ? q : tr_query_all();
    }
    }
}

static tr_query *rule_cond(pctx *p, size_t ri)
{
    if (!p->cond[ri]) {
        if (p->cond_busy[ri])
            return tr_query_all();
        p->cond_busy[ri] = true;
        cctx c = {.p = p, .ri = ri, .anon = -1};
        p->cond[ri] = tr_query_simplify(cond_q(&c, p->rs->rules[ri].cond));
        p->cond_busy[ri] = false;
    }
    return tr_query_clone(p->cond[ri]);
}

int tr_plan_build(const tr_ruleset *rs, tr_plan **out, tr_error *err)
{
    (void)err;
    size_t n = rs->nrules;
    pctx p = {.rs = rs};
    p.sq = tr_xcalloc(n + 1, sizeof *p.sq);
    p.notes = tr_xcalloc(n + 1, sizeof *p.notes);
    p.cond = tr_xcalloc(n + 1, sizeof *p.cond);
    p.cond_busy = tr_xcalloc(n + 1, sizeof *p.cond_busy);
    tr_plan *pl = tr_xcalloc(1, sizeof *pl);
    pl->r = tr_xcalloc(n + 1, sizeof *pl->r);
    for (size_t i = 0; i < n; i++) {
        const tr_rule *r = &rs->rules[i];
        if (r->is_private)
            continue;
        tr_query *q = rule_cond(&p, i);
        /* A failing global rule makes every rule of the namespace fail. */
        for (size_t g = 0; g < n; g++)
            if (g != i && rs->rules[g].is_global)
                q = tr_query_and2(q, rule_cond(&p, g));
        q = tr_query_simplify(q);
        prule *pr = &pl->r[pl->n++];
        pr->name = tr_xstrdup(r->name);
        pr->file = r->file;
        if (qsize(q) > TR_PLAN_RULE_BUDGET) {
            tr_query_free(q);
            q = tr_query_all();
            pr->warning = tr_xstrdup("query over the expansion budget: widened to all");
        }
        pr->q = q;
        pr->everything = !narrows(q);
        if (r->nstrings) {
            tr_query_free(string_query(&p, i, 0));   /* builds the notes */
            pr->nnotes = r->nstrings;
            pr->notes = tr_xcalloc(r->nstrings, sizeof *pr->notes);
            for (size_t s = 0; s < r->nstrings; s++)
                pr->notes[s] = tr_xstrdup(p.notes[i][s]);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (p.sq[i]) {
            for (size_t s = 0; s < rs->rules[i].nstrings; s++) {
                tr_query_free(p.sq[i][s]);
                free(p.notes[i][s]);
            }
        }
        free(p.sq[i]);
        free(p.notes[i]);
        tr_query_free(p.cond[i]);
    }
    free(p.sq);
    free(p.notes);
    free(p.cond);
    free(p.cond_busy);
    *out = pl;
    return 0;
}

size_t tr_plan_count(const tr_plan *p) { return p->n; }
const char *tr_plan_rule_name(const tr_plan *p, size_t i) { return p->r[i].name; }
const char *tr_plan_rule_file(const tr_plan *p, size_t i) { return p->r[i].file ? p->r[i].file : ""; }
const tr_query *tr_plan_query(const tr_plan *p, size_t i) { return p->r[i].q; }
bool tr_plan_scans_everything(const tr_plan *p, size_t i) { return p->r[i].everything; }
size_t tr_plan_string_count(const tr_plan *p, size_t i) { return p->r[i].nnotes; }
const char *tr_plan_string_note(const tr_plan *p, size_t i, size_t s) { return p->r[i].notes[s]; }

void tr_plan_free(tr_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->r[i].name);
        tr_query_free(p->r[i].q);
        for (size_t s = 0; s < p->r[i].nnotes; s++)
            free(p->r[i].notes[s]);
        free(p->r[i].notes);
        free(p->r[i].warning);
    }
    free(p->r);
    free(p);
}

void tr_plan_explain(const tr_plan *p, tr_buf *out)
{
    for (size_t i = 0; i < p->n; i++) {
        const prule *r = &p->r[i];
        tr_buf_printf(out, "rule %s\n  query: ", r->name);
        tr_query_format(r->q, out);
        tr_buf_printf(out, "\n");
        for (size_t s = 0; s < r->nnotes; s++)
            tr_buf_printf(out, "  %s\n", r->notes[s]);
        if (r->warning)
            tr_buf_printf(out, "  warning: %s\n", r->warning);
        if (r->everything)
            tr_buf_printf(out, "  warning: this rule scans every file\n");
    }
}

void *tr_plan_explain_json(const tr_plan *p)
{
    json_t *arr = json_array();
    if (!arr)
        tr_die("out of memory");
    for (size_t i = 0; i < p->n; i++) {
        const prule *r = &p->r[i];
        tr_buf q = {0};
        tr_query_format(r->q, &q);
        tr_buf_append(&q, "", 1);
        json_t *strs = json_array();
        for (size_t s = 0; s < r->nnotes; s++)
            json_array_append_new(strs, json_string(r->notes[s]));
        json_t *o = json_pack("{s:s, s:s, s:b, s:o}", "rule", r->name, "query", q.data,
                              "scans_everything", r->everything, "strings", strs);
        tr_buf_free(&q);
        if (!o)
            tr_die("out of memory");
        if (r->warning)
            json_object_set_new(o, "warning", json_string(r->warning));
        json_array_append_new(arr, o);
    }
    return arr;
}
