/* The index query tree: the contract between the YARA planner (rules), which
 * builds it, and the n-gram index, which evaluates it into candidate sample ids.
 *
 * Semantics over one document (a byte string D):
 *   ALL        true for every document (a branch the planner could not use)
 *   NONE       false for every document
 *   AND/OR     conjunction / disjunction of the children
 *   MIN_OF k   at least k children are true (k <= nchildren)
 *   SEQ        D contains, at some offset i, bytes D[i+j] in pos[j] for every j < len
 *
 * Soundness rule for every consumer: an evaluator may answer a superset of
 * the true documents (it may widen), never a subset. */
#ifndef TRAWL_INDEX_QUERY_H
#define TRAWL_INDEX_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

typedef struct tr_byteset {
    uint64_t w[4];            /* bit b set <=> byte value b allowed */
} tr_byteset;

static inline bool tr_byteset_has(const tr_byteset *s, unsigned b)
{
    return (s->w[b >> 6] >> (b & 63)) & 1u;
}
static inline void tr_byteset_add(tr_byteset *s, unsigned b)
{
    s->w[b >> 6] |= (uint64_t)1 << (b & 63);
}
unsigned tr_byteset_count(const tr_byteset *s);
void tr_byteset_fill(tr_byteset *s);         /* all 256 values */

typedef enum tr_query_kind {
    TR_Q_ALL,
    TR_Q_NONE,
    TR_Q_AND,
    TR_Q_OR,
    TR_Q_MIN_OF,
    TR_Q_SEQ,
} tr_query_kind;

typedef struct tr_query tr_query;
struct tr_query {
    tr_query_kind kind;
    uint32_t k;               /* MIN_OF */
    size_t n;                 /* AND/OR/MIN_OF: children; SEQ: positions */
    tr_query **child;
    tr_byteset *pos;
};

tr_query *tr_query_all(void);
tr_query *tr_query_none(void);
/* Takes ownership of the children. */
tr_query *tr_query_node(tr_query_kind kind, uint32_t k, tr_query **children, size_t n);
tr_query *tr_query_and2(tr_query *a, tr_query *b);
tr_query *tr_query_or2(tr_query *a, tr_query *b);
/* A fixed byte string. */
tr_query *tr_query_literal(const unsigned char *bytes, size_t len);
/* A sequence of byte sets (copied). */
tr_query *tr_query_seq(const tr_byteset *pos, size_t len);
tr_query *tr_query_clone(const tr_query *q);
void tr_query_free(tr_query *q);

/* Constant folding: ALL/NONE propagation, flattening nested AND/OR,
 * MIN_OF with k==1 -> OR, k==n -> AND, k==0 -> ALL. Returns the new root and
 * consumes q. */
tr_query *tr_query_simplify(tr_query *q);

/* Text form for `trawl plan` and tests, e.g.
 *   AND("MZ", OR({41,61}"bc", ALL), MIN(2, "ab", "cd", "ef")) */
void tr_query_format(const tr_query *q, tr_buf *out);

/* Brute-force evaluation over one document: the oracle for index and planner
 * tests. Exact (never widens): SEQ is searched byte by byte. */
bool tr_query_match(const tr_query *q, const unsigned char *doc, size_t len);

#endif
