#include "index/query.h"

#include <stdlib.h>
#include <string.h>

unsigned tr_byteset_count(const tr_byteset *s)
{
    unsigned n = 0;
    for (int i = 0; i < 4; i++)
        n += (unsigned)__builtin_popcountll(s->w[i]);
    return n;
}

void tr_byteset_fill(tr_byteset *s)
{
    for (int i = 0; i < 4; i++)
        s->w[i] = ~(uint64_t)0;
}

static tr_query *query_new(tr_query_kind kind)
{
    tr_query *q = tr_xcalloc(1, sizeof *q);
    q->kind = kind;
    return q;
}

tr_query *tr_query_all(void) { return query_new(TR_Q_ALL); }
tr_query *tr_query_none(void) { return query_new(TR_Q_NONE); }

tr_query *tr_query_node(tr_query_kind kind, uint32_t k, tr_query **children, size_t n)
{
    tr_query *q = query_new(kind);
    q->k = k;
    q->n = n;
    q->child = tr_xcalloc(n ? n : 1, sizeof *q->child);
    if (n)
        memcpy(q->child, children, n * sizeof *children);
    return q;
}

tr_query *tr_query_and2(tr_query *a, tr_query *b)
{
    tr_query *c[2] = {a, b};
    return tr_query_node(TR_Q_AND, 0, c, 2);
}

tr_query *tr_query_or2(tr_query *a, tr_query *b)
{
    tr_query *c[2] = {a, b};
    return tr_query_node(TR_Q_OR, 0, c, 2);
}

tr_query *tr_query_seq(const tr_byteset *pos, size_t len)
{
    tr_query *q = query_new(TR_Q_SEQ);
    q->n = len;
    q->pos = tr_xcalloc(len ? len : 1, sizeof *q->pos);
    if (len)
        memcpy(q->pos, pos, len * sizeof *pos);
    return q;
}

tr_query *tr_query_literal(const unsigned char *bytes, size_t len)
{
    tr_query *q = query_new(TR_Q_SEQ);
    q->n = len;
    q->pos = tr_xcalloc(len ? len : 1, sizeof *q->pos);
    for (size_t i = 0; i < len; i++)
        tr_byteset_add(&q->pos[i], bytes[i]);
    return q;
}

tr_query *tr_query_at(uint64_t off, const unsigned char *bytes, size_t len)
{
    tr_query *q = tr_query_literal(bytes, len);
    q->kind = TR_Q_AT;
    q->off = off;
    return q;
}

tr_query *tr_query_size(uint64_t lo, uint64_t hi)
{
    tr_query *q = query_new(TR_Q_SIZE);
    q->lo = lo;
    q->hi = hi;
    return q;
}

bool tr_query_has_file_checks(const tr_query *q)
{
    if (q->kind == TR_Q_AT || q->kind == TR_Q_SIZE)
        return true;
    if (q->kind == TR_Q_AND || q->kind == TR_Q_OR || q->kind == TR_Q_MIN_OF)
        for (size_t i = 0; i < q->n; i++)
            if (tr_query_has_file_checks(q->child[i]))
                return true;
    return false;
}

tr_query *tr_query_clone(const tr_query *q)
{
    if (q->kind == TR_Q_SEQ || q->kind == TR_Q_AT) {
        tr_query *c = tr_query_seq(q->pos, q->n);
        c->kind = q->kind;
        c->off = q->off;
        return c;
    }
    tr_query *c = query_new(q->kind);
    c->k = q->k;
    c->n = q->n;
    c->lo = q->lo;
    c->hi = q->hi;
    if (q->kind == TR_Q_AND || q->kind == TR_Q_OR || q->kind == TR_Q_MIN_OF) {
        c->child = tr_xcalloc(q->n ? q->n : 1, sizeof *c->child);
        for (size_t i = 0; i < q->n; i++)
            c->child[i] = tr_query_clone(q->child[i]);
    }
    return c;
}

void tr_query_free(tr_query *q)
{
    if (!q)
        return;
    if (q->child) {
        for (size_t i = 0; i < q->n; i++)
            tr_query_free(q->child[i]);
        free(q->child);
    }
    free(q->pos);
    free(q);
}

static void drop_child(tr_query *q, size_t i)
{
    tr_query_free(q->child[i]);
    memmove(&q->child[i], &q->child[i + 1], (q->n - i - 1) * sizeof *q->child);
    q->n--;
}

static tr_query *become(tr_query *q, tr_query *replacement)
{
    tr_query_free(q);
    return replacement;
}

tr_query *tr_query_simplify(tr_query *q)
{
    if (q->kind == TR_Q_SIZE) {
        if (q->lo > q->hi)
            return become(q, tr_query_none());
        if (q->lo == 0 && q->hi == UINT64_MAX)
            return become(q, tr_query_all());
        return q;
    }
    if (q->kind == TR_Q_SEQ || q->kind == TR_Q_AT) {
        if (q->n == 0 && q->kind == TR_Q_SEQ)
            return become(q, tr_query_all());     /* the empty string is in every document */
        if (q->n == 0)
            return become(q, tr_query_size(q->off, UINT64_MAX));
        for (size_t i = 0; i < q->n; i++)
            if (tr_byteset_count(&q->pos[i]) == 0)
                return become(q, tr_query_none());
        return q;
    }
    if (q->kind != TR_Q_AND && q->kind != TR_Q_OR && q->kind != TR_Q_MIN_OF)
        return q;
    for (size_t i = 0; i < q->n; i++)
        q->child[i] = tr_query_simplify(q->child[i]);

    if (q->kind == TR_Q_MIN_OF) {
        /* ALL children count as satisfied, NONE children never. */
        for (size_t i = 0; i < q->n;) {
            if (q->child[i]->kind == TR_Q_ALL) {
                if (q->k > 0)
                    q->k--;
                drop_child(q, i);
            } else if (q->child[i]->kind == TR_Q_NONE) {
                drop_child(q, i);
            } else {
                i++;
            }
        }
        if (q->k == 0)
            return become(q, tr_query_all());
        if (q->k > q->n)
            return become(q, tr_query_none());
        if (q->k == 1)
            q->kind = TR_Q_OR;
        else if (q->k == q->n)
            q->kind = TR_Q_AND;
        else
            return q;
        q->k = 0;
        return tr_query_simplify(q);
    }

    tr_query_kind absorbing = q->kind == TR_Q_AND ? TR_Q_NONE : TR_Q_ALL;
    tr_query_kind neutral = q->kind == TR_Q_AND ? TR_Q_ALL : TR_Q_NONE;
    for (size_t i = 0; i < q->n;) {
        tr_query *c = q->child[i];
        if (c->kind == absorbing)
            return become(q, query_new(absorbing));
        if (c->kind == neutral) {
            drop_child(q, i);
        } else if (c->kind == q->kind) {
            /* Flatten: splice the grandchildren in place of c. */
            size_t extra = c->n;
            q->child = tr_xrealloc(q->child, (q->n + extra) * sizeof *q->child);
            memmove(&q->child[i + extra], &q->child[i + 1], (q->n - i - 1) * sizeof *q->child);
            memcpy(&q->child[i], c->child, extra * sizeof *c->child);
            q->n += extra - 1;
            c->n = 0;
            tr_query_free(c);
        } else {
            i++;
        }
    }
    if (q->n == 0)
        return become(q, query_new(neutral));
    if (q->n == 1) {
        tr_query *only = q->child[0];
        q->n = 0;
        return become(q, only);
    }
    return q;
}

static void format_set(const tr_byteset *s, tr_buf *out)
{
    unsigned n = tr_byteset_count(s);
    if (n == 256) {
        tr_buf_append(out, "??", 2);
        return;
    }
    tr_buf_append(out, "{", 1);
    bool first = true;
    for (unsigned b = 0; b < 256; b++) {
        if (!tr_byteset_has(s, b))
            continue;
        tr_buf_printf(out, first ? "%02x" : ",%02x", b);
        first = false;
    }
    tr_buf_append(out, "}", 1);
}

static void format_seq(const tr_query *q, tr_buf *out)
{
    /* Printable single bytes are shown as "text", the rest as hex or sets. */
    bool in_text = false;
    for (size_t i = 0; i < q->n; i++) {
        const tr_byteset *s = &q->pos[i];
        int single = -1;
        if (tr_byteset_count(s) == 1)
            for (unsigned b = 0; b < 256; b++)
                if (tr_byteset_has(s, b)) {
                    single = (int)b;
                    break;
                }
        bool printable = single >= 0x20 && single < 0x7f && single != '"' && single != '\\';
        if (printable != in_text) {
            tr_buf_append(out, "\"", 1);
            in_text = printable;
        }
        if (printable) {
            char c = (char)single;
            tr_buf_append(out, &c, 1);
        } else if (single >= 0) {
            tr_buf_printf(out, "%s%02x", i && !in_text ? " " : "", (unsigned)single);
        } else {
            if (i)
                tr_buf_append(out, " ", 1);
            format_set(s, out);
        }
    }
    if (in_text)
        tr_buf_append(out, "\"", 1);
}

void tr_query_format(const tr_query *q, tr_buf *out)
{
    switch (q->kind) {
    case TR_Q_ALL:
        tr_buf_append(out, "ALL", 3);
        return;
    case TR_Q_NONE:
        tr_buf_append(out, "NONE", 4);
        return;
    case TR_Q_SEQ:
        format_seq(q, out);
        return;
    case TR_Q_AT:
        tr_buf_printf(out, "AT(%llu, ", (unsigned long long)q->off);
        format_seq(q, out);
        tr_buf_append(out, ")", 1);
        return;
    case TR_Q_SIZE:
        if (q->hi == UINT64_MAX)
            tr_buf_printf(out, "SIZE(%llu..)", (unsigned long long)q->lo);
        else
            tr_buf_printf(out, "SIZE(%llu..%llu)", (unsigned long long)q->lo,
                          (unsigned long long)q->hi);
        return;
    case TR_Q_AND:
        tr_buf_append(out, "AND(", 4);
        break;
    case TR_Q_OR:
        tr_buf_append(out, "OR(", 3);
        break;
    case TR_Q_MIN_OF:
        tr_buf_printf(out, "MIN(%u, ", q->k);
        break;
    }
    for (size_t i = 0; i < q->n; i++) {
        if (i)
            tr_buf_append(out, ", ", 2);
        tr_query_format(q->child[i], out);
    }
    tr_buf_append(out, ")", 1);
}

static bool seq_match(const tr_query *q, const unsigned char *doc, size_t len)
{
    if (q->n == 0)
        return true;
    if (q->n > len)
        return false;
    for (size_t i = 0; i + q->n <= len; i++) {
        size_t j = 0;
        while (j < q->n && tr_byteset_has(&q->pos[j], doc[i + j]))
            j++;
        if (j == q->n)
            return true;
    }
    return false;
}

bool tr_query_match(const tr_query *q, const unsigned char *doc, size_t len)
{
    switch (q->kind) {
    case TR_Q_ALL:
        return true;
    case TR_Q_NONE:
        return false;
    case TR_Q_SEQ:
        return seq_match(q, doc, len);
    case TR_Q_AT:
        if (q->off > len || q->n > len - q->off)
            return false;
        for (size_t j = 0; j < q->n; j++)
            if (!tr_byteset_has(&q->pos[j], doc[q->off + j]))
                return false;
        return true;
    case TR_Q_SIZE:
        return q->lo <= len && len <= q->hi;
    case TR_Q_AND:
        for (size_t i = 0; i < q->n; i++)
            if (!tr_query_match(q->child[i], doc, len))
                return false;
        return true;
    case TR_Q_OR:
        for (size_t i = 0; i < q->n; i++)
            if (tr_query_match(q->child[i], doc, len))
                return true;
        return false;
    case TR_Q_MIN_OF: {
        uint32_t hits = 0;
        for (size_t i = 0; i < q->n && hits < q->k; i++)
            hits += tr_query_match(q->child[i], doc, len);
        return hits >= q->k;
    }
    }
    return true;
}
