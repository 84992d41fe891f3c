/* The literal pre-check: the hunt's query evaluated exactly over a
 * candidate's bytes, before libyara sees it.
 *
 * The index answers with n-grams, so a large file holding nearly every
 * 3-gram is a candidate for almost any rule, and libyara then spends a second
 * on 100 MB to find nothing. The planner's query is a necessary condition on
 * the bytes (query.h: a file a rule matches satisfies it), so a file that
 * does not satisfy it cannot match and is skipped. The check finds every
 * leaf sequence in one pass: each leaf is anchored on its most selective
 * 3- or 4-byte window, a hashed bitmap of the anchors' values filters the
 * positions, and the few hits are verified against the whole leaf. A leaf
 * with no usable window counts as present, so the check widens, never
 * narrows: its answer is a superset of tr_query_match's. AT and SIZE leaves
 * are checked exactly, from the size and the head before any scan. */
#ifndef TRAWL_HUNT_PREFILTER_H
#define TRAWL_HUNT_PREFILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "index/query.h"

typedef struct hunt_prefilter hunt_prefilter;

/* NULL when the check could never rule a file out (q is ALL, or every path
 * to "false" goes through leaves without a usable window). q is copied. */
hunt_prefilter *hunt_prefilter_new(const tr_query *q);
void hunt_prefilter_free(hunt_prefilter *pf);

/* false: the file cannot satisfy the query (so no rule of the hunt matches
 * it). Thread-safe: pf is read-only here. */
bool hunt_prefilter_may_match(const hunt_prefilter *pf, const unsigned char *d, size_t len);

/* The fixed checks (AT, SIZE: see query.h) need only the file's size and
 * its first hunt_prefilter_head bytes: this answers from those, before the
 * file is mapped, counting every SEQ leaf as present. An AT leaf past the
 * bytes given counts as passing. */
size_t hunt_prefilter_head(const hunt_prefilter *pf);
bool hunt_prefilter_may_match_head(const hunt_prefilter *pf, uint64_t size,
                                   const unsigned char *head, size_t hlen);

/* How many SEQ leaves of the query are checked exactly (for tests and notes). */
size_t hunt_prefilter_exact_leaves(const hunt_prefilter *pf);

#endif
