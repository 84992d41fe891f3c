/* trawl plan [--json] RULES...: how each rule would be searched in the index. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "hunt/hunt.h"
#include "index/index.h"
#include "rules/rules.h"

/* The index of the data directory, if there is one (plan never creates it). */
static tr_index *plan_index(const cli_ctx *ctx, uint64_t *docs)
{
    char *manifest = tr_xasprintf("%s/index/MANIFEST", ctx->data_dir);
    bool exists = access(manifest, F_OK) == 0;
    free(manifest);
    if (!exists)
        return NULL;
    char *dir = tr_xasprintf("%s/index", ctx->data_dir);
    tr_index *ix = NULL;
    tr_error err;
    tr_index_status st;
    if (tr_index_open(dir, &ix, &err) != 0 || tr_index_get_status(ix, &st, &err) != 0) {
        cli_error("cannot read the index: %s", err.msg);
        tr_index_close(ix);
        ix = NULL;
    } else {
        *docs = st.docs - st.tombstones;
    }
    free(dir);
    return ix;
}

/* Fills out with the estimated candidate count of q, from posting-list sizes. */
static void plan_estimate(tr_index *ix, uint64_t docs, const tr_query *q, char *out, size_t outsz)
{
    uint64_t est = 0;
    tr_error err;
    if (!ix)
        snprintf(out, outsz, "n/a (no index)");
    else if (tr_index_estimate(ix, q, &est, &err) != 0)
        snprintf(out, outsz, "n/a (%s)", err.msg);
    else
        snprintf(out, outsz, "~%llu of %llu samples", (unsigned long long)(est < docs ? est : docs),
                 (unsigned long long)docs);
}

static void plan_usage(FILE *f)
{
    fprintf(f, "usage: trawl plan [--json] RULES...\n"
               "Shows, per rule, the index query, an estimated candidate count and, per string,\n"
               "why it is or is not accelerated. Rules that would scan every file are flagged.\n");
}

int cli_cmd_plan(const cli_ctx *ctx, int argc, char **argv)
{
    bool json = false;
    int first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (strcmp(argv[first], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[first], "--help") == 0 || strcmp(argv[first], "-h") == 0) {
            plan_usage(stdout);
            return CLI_OK;
        } else if (strcmp(argv[first], "--") == 0) {
            first++;
            break;
        } else {
            cli_error("plan: unknown option %s", argv[first]);
            plan_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (first >= argc) {
        plan_usage(stderr);
        return CLI_USAGE;
    }
    json_t *all = json ? json_array() : NULL;
    int rc = CLI_OK;
    uint64_t docs = 0;
    tr_index *ix = plan_index(ctx, &docs);
    for (int a = first; a < argc; a++) {
        tr_ruleset *rs = NULL;
        tr_error err;
        /* The language of a hunt: its externals are defined. */
        tr_rules_options opts = {.externals = tr_hunt_externals,
                                 .nexternals = TR_HUNT_NEXTERNALS, .allow_includes = true};
        if (tr_rules_parse_file(argv[a], &opts, &rs, &err) != 0) {
            cli_error("%s", err.msg);
            rc = CLI_FAIL;
            continue;
        }
        /* Only text our parser accepted reaches libyara (it can crash otherwise). */
        if (tr_rules_yara_check(argv[a], NULL, &opts, &err) != 0) {
            cli_error("libyara: %s", err.msg);
            tr_ruleset_free(rs);
            rc = CLI_FAIL;
            continue;
        }
        tr_plan *p = NULL;
        if (tr_plan_build(rs, &p, &err) != 0) {
            cli_error("%s: %s", argv[a], err.msg);
            tr_ruleset_free(rs);
            rc = CLI_FAIL;
            continue;
        }
        if (json) {
            json_t *arr = tr_plan_explain_json(p);
            size_t i;
            json_t *o;
            json_array_foreach(arr, i, o) {
                char est[1200];
                plan_estimate(ix, docs, tr_plan_query(p, i), est, sizeof est);
                uint64_t keys = 0;
                tr_error kerr;
                tr_index_query_check(tr_plan_query(p, i), &keys, &kerr);
                json_object_set_new(o, "index_lookups", json_integer((json_int_t)keys));
                json_object_set_new(o, "file", json_string(argv[a]));
                json_object_set_new(o, "estimate", json_string(est));
            }
            json_array_extend(all, arr);
            json_decref(arr);
        } else {
            for (size_t i = 0; i < tr_plan_count(p); i++) {
                tr_buf b = {0};
                tr_query_format(tr_plan_query(p, i), &b);
                tr_buf_append(&b, "", 1);
                char est[1200];
                plan_estimate(ix, docs, tr_plan_query(p, i), est, sizeof est);
                uint64_t keys = 0;
                tr_error kerr;
                bool over = tr_index_query_check(tr_plan_query(p, i), &keys, &kerr) != 0;
                printf("rule %s (%s)\n  query: %s\n  estimate: %s\n  index lookups: %s%llu "
                       "(limit %llu)\n",
                       tr_plan_rule_name(p, i), argv[a], b.data, est, over ? "over " : "",
                       (unsigned long long)keys, (unsigned long long)TR_INDEX_QUERY_KEYS);
                tr_buf_free(&b);
                for (size_t s = 0; s < tr_plan_string_count(p, i); s++)
                    printf("  %s\n", tr_plan_string_note(p, i, s));
                if (tr_plan_scans_everything(p, i))
                    printf("  WARNING: rule %s would scan every file\n", tr_plan_rule_name(p, i));
            }
        }
        tr_plan_free(p);
        tr_ruleset_free(rs);
    }
    if (json) {
        char *s = json_dumps(all, JSON_INDENT(2));
        if (s) {
            puts(s);
            free(s);
        }
        json_decref(all);
    }
    tr_index_close(ix);
    return rc;
}
