/* rules: the YARA front end. A hand-written parser for the language libyara
 * 4.2.3 accepts (syntax and the semantic checks libyara makes at compile
 * time), and the planner that turns each rule into an index query whose
 * candidate set is a superset of the files libyara would match. */
#ifndef TRAWL_RULES_H
#define TRAWL_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"
#include "index/query.h"

typedef struct tr_ruleset tr_ruleset;

/* How rule text is read. */
typedef struct tr_rules_options {
    /* External variables (e.g. filename, filepath, extension, filetype, owner
     * for the hunt verifier): their names become valid identifiers of unknown
     * type; the planner treats them as unknowable. */
    const char *const *externals;
    size_t nexternals;
    /* `include` reads a file of this machine: only for rule text a local user
     * gave (a file on the command line). Otherwise, as for all text from the
     * network, an include is a parse error and no path is looked at. Included
     * files must be regular files; all of them together are bounded by
     * TR_RULES_MAX_INCLUDE_BYTES. */
    bool allow_includes;
} tr_rules_options;

#define TR_RULES_MAX_INCLUDE_BYTES ((size_t)64 << 20)

/* On error err holds "file:line:col: message" and -1 is returned.
 * Includes resolve relative to the including file's directory (for text,
 * relative to the directory part of name). NULs in the text are errors. */
int tr_rules_parse_opts(const char *name, const char *text, size_t len,
                        const tr_rules_options *o, tr_ruleset **out, tr_error *err);
/* Several texts as one rule set in one namespace, in order, as the yara tool
 * reads several rule files: a global rule applies to the rules of every
 * text, a rule may refer to one of an earlier text, and a name may not
 * repeat across them. With flat (n entries), flat[i] receives text i with its
 * includes inlined (NUL-terminated, caller frees each), so that what is stored
 * and handed to libyara never needs to open a file. */
typedef struct tr_rules_text {
    const char *name;
    const char *text;
    size_t len;
} tr_rules_text;
int tr_rules_parse_many(const tr_rules_text *src, size_t n, const tr_rules_options *o,
                        char **flat, tr_ruleset **out, tr_error *err);
/* Text without options: no externals, no includes. */
int tr_rules_parse_string(const char *name, const char *text, tr_ruleset **out, tr_error *err);
int tr_rules_parse_buffer(const char *name, const char *text, size_t len, tr_ruleset **out,
                          tr_error *err);
/* A file the local user named (o may be NULL): includes are followed. */
int tr_rules_parse_file(const char *path, const tr_rules_options *o, tr_ruleset **out,
                        tr_error *err);
void tr_ruleset_free(tr_ruleset *rs);

size_t tr_ruleset_count(const tr_ruleset *rs);
const char *tr_ruleset_rule_name(const tr_ruleset *rs, size_t i);
bool tr_ruleset_rule_is_private(const tr_ruleset *rs, size_t i);
bool tr_ruleset_rule_is_global(const tr_ruleset *rs, size_t i);
const char *tr_ruleset_rule_file(const tr_ruleset *rs, size_t i);
size_t tr_ruleset_rule_tag_count(const tr_ruleset *rs, size_t i);
const char *tr_ruleset_rule_tag(const tr_ruleset *rs, size_t i, size_t t);
size_t tr_ruleset_rule_meta_count(const tr_ruleset *rs, size_t i);
const char *tr_ruleset_rule_meta_key(const tr_ruleset *rs, size_t i, size_t m);
/* Meta value as text (integers and booleans printed). */
const char *tr_ruleset_rule_meta_value(const tr_ruleset *rs, size_t i, size_t m, char *tmp,
                                       size_t tmpsz);
size_t tr_ruleset_rule_string_count(const tr_ruleset *rs, size_t i);
size_t tr_ruleset_import_count(const tr_ruleset *rs);
const char *tr_ruleset_import(const tr_ruleset *rs, size_t i);

/* ---- planner ---------------------------------------------------------------- */
typedef struct tr_plan tr_plan;

/* One query per non-private rule, in rule order, simplified. */
int tr_plan_build(const tr_ruleset *rs, tr_plan **out, tr_error *err);
size_t tr_plan_count(const tr_plan *p);
const char *tr_plan_rule_name(const tr_plan *p, size_t i);
/* The file (or text name) the rule came from; valid while the rule set lives. */
const char *tr_plan_rule_file(const tr_plan *p, size_t i);
const tr_query *tr_plan_query(const tr_plan *p, size_t i);
/* True when the query cannot narrow the candidates with grams of >= 3 bytes:
 * the rule would be verified against every file. */
bool tr_plan_scans_everything(const tr_plan *p, size_t i);
/* Per-string explanations of rule i, one line each ("$a: ..."). */
size_t tr_plan_string_count(const tr_plan *p, size_t i);
const char *tr_plan_string_note(const tr_plan *p, size_t i, size_t s);
/* Human text for every rule: query, estimate hook, strings, warnings. */
void tr_plan_explain(const tr_plan *p, tr_buf *out);
/* The same as a JSON array of objects (a json_t *, caller decrefs). */
void *tr_plan_explain_json(const tr_plan *p);
void tr_plan_free(tr_plan *p);

/* The pe module fields and functions the planner takes as "the file is a
 * PE" (libyara leaves them undefined elsewhere), sorted; for tests. */
const char *const *tr_plan_pe_only_fields(size_t *n);

/* Tuning of the expansion budget (total SEQ positions per string and per rule);
 * beyond it the planner widens to ALL. */
#define TR_PLAN_STRING_BUDGET 65536
#define TR_PLAN_RULE_BUDGET 262144

/* ---- libyara ------------------------------------------------------------------ */
/* Compiles the text with libyara (if text is NULL, the file path_or_name).
 * On failure err holds libyara's first error message verbatim, prefixed with
 * "file(line): " as the yara tool prints it. o (may be NULL) gives the
 * externals to define (as strings) and whether includes are followed.
 * Never call this on text trawl's parser rejected: libyara 4.2.3 can crash. */
int tr_rules_yara_check(const char *path_or_name, const char *text, const tr_rules_options *o,
                        tr_error *err);

#endif
