/* The STIX 2.1 patterning language: a hand-written parser for the OASIS
 * grammar, the object paths and equality terms a pattern reads (so that
 * indicators can be looked up against what trawl stores), and a matcher that
 * evaluates a pattern over observations as the spec's chapter 9 describes. */
#ifndef TRAWL_STIX_PATTERN_H
#define TRAWL_STIX_PATTERN_H

#include <stddef.h>

#include <jansson.h>

#include "core/core.h"

typedef struct tr_stix_pattern tr_stix_pattern;

/* NULL on error with err like "pattern:1:17: expected ']' ..." (1-based
 * line:column, columns counted in characters). */
tr_stix_pattern *tr_stix_pattern_parse(const char *text, tr_error *err);
void tr_stix_pattern_free(tr_stix_pattern *p);

/* An object path the pattern reads: the SCO type and the property path in
 * canonical form ("hashes.'SHA-256'", "sections[*].entropy", "value"). */
typedef struct tr_stix_path_ref {
    const char *type;
    const char *path;
} tr_stix_path_ref;

/* Every distinct (type, path) the pattern reads, in order of appearance.
 * The array belongs to the pattern. */
size_t tr_stix_pattern_paths(const tr_stix_pattern *p, const tr_stix_path_ref **out);

/* The distinct SCO types the pattern reads, in order of appearance; the
 * array belongs to the pattern. */
size_t tr_stix_pattern_types(const tr_stix_pattern *p, const char *const **out);

/* A simple term usable as a lookup key: `type:path = 'value'` (or each string
 * of `type:path IN (...)`), not negated, with a string value; and
 * `type:path ISSUBSET 'cidr'` for address ranges. */
typedef enum { TR_STIX_TERM_EQUALS, TR_STIX_TERM_SUBSET } tr_stix_term_kind;
typedef struct tr_stix_term {
    tr_stix_term_kind kind;
    const char *type;          /* "file", "ipv4-addr" */
    const char *path;          /* canonical, as in tr_stix_path_ref */
    const char *prop;          /* the path's last property name, unquoted: "SHA-256", "value" */
    const char *value;         /* the literal's string */
} tr_stix_term;

/* The terms, in order of appearance; the array belongs to the pattern. A term
 * is a necessary condition only when the pattern has no OR around it: the
 * list says what to look up, not what the pattern means. */
size_t tr_stix_pattern_terms(const tr_stix_pattern *p, const tr_stix_term **out);

/* The pattern in canonical text (single spaces, explicit parentheses where
 * the structure needs them); parsing it gives the same pattern. Caller frees. */
char *tr_stix_pattern_format(const tr_stix_pattern *p);

/* Evaluates the pattern against observations: a JSON array (or a bundle's
 * "objects") whose items are observation containers
 * {"first_observed","last_observed","number_observed","objects":{"0":SCO,...}},
 * STIX 2.1 observed-data SDOs with object_refs to SCOs in the same set, or
 * bare SCOs (which then form one observation without timestamps). A single
 * container object is accepted too. Returns 1 match, 0 no match, -1 error
 * (malformed observations, or a pattern whose evaluation would exceed the
 * matcher's bounds). */
int tr_stix_pattern_match(const tr_stix_pattern *p, const json_t *observations, tr_error *err);

#endif
