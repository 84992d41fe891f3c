/* The index query tree: the contract between the YARA planner (rules), which
 * builds it, and the n-gram index, which evaluates it into candidate sample ids.
 *
 * Semantics over one document (a byte string D):
 *   ALL        true for every document (a branch the planner could not use)
 *   NONE       false for every document
 *   AND/OR     conjunction / disjunction of the children
 *   MIN_OF k   at least k children are true (k <= nchildren)
 *   SEQ        D contains, at some offset i, bytes D[i+j] in pos[j] for every j < len
 *   AT         D[off+j] in pos[j] for every j < len (off + len <= |D|)
 *   SIZE       lo <= |D| <= hi
 *
 * AT and SIZE come from conditions such as uint16(0) == 0x5A4D and
 * filesize < 200KB. The n-gram index cannot answer them and evaluates them
 * as ALL (without calling that a widening); the hunt's pre-check, which
 * reads the candidate, answers them exactly.
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
    TR_Q_AT,
    TR_Q_SIZE,
} tr_query_kind;

typedef struct tr_query tr_query;
struct tr_query {
    tr_query_kind kind;
    uint32_t k;               /* MIN_OF */
    size_t n;                 /* AND/OR/MIN_OF: children; SEQ, AT: positions */
    tr_query **child;
    tr_byteset *pos;
    uint64_t off;             /* AT */
    uint64_t lo, hi;          /* SIZE, inclusive */
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
/* The fixed bytes at offset off. */
tr_query *tr_query_at(uint64_t off, const unsigned char *bytes, size_t len);
/* lo <= file size <= hi. */
tr_query *tr_query_size(uint64_t lo, uint64_t hi);
/* Whether q contains an AT or SIZE node. */
bool tr_query_has_file_checks(const tr_query *q);
tr_query *tr_query_clone(const tr_query *q);
void tr_query_free(tr_query *q);

/* Constant folding: ALL/NONE propagation, flattening nested AND/OR,
 * MIN_OF with k==1 -> OR, k==n -> AND, k==0 -> ALL. Returns the new root and
 * consumes q. */
tr_query *tr_query_simplify(tr_query *q);

/* Text form for `trawl plan` and tests, e.g.
 *   AND("MZ", OR({41,61}"bc", ALL), MIN(2, "ab", "cd", "ef"), AT(0, "MZ"), SIZE(0..1023)) */
void tr_query_format(const tr_query *q, tr_buf *out);

/* Brute-force evaluation over one document: the oracle for index and planner
 * tests. Exact (never widens): SEQ is searched byte by byte, AT and SIZE
 * are checked. */
bool tr_query_match(const tr_query *q, const unsigned char *doc, size_t len);

#endif
