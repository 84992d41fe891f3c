/* trawl index status [--json] | compact | verify [--sample N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "hunt/hunt.h"
#include "index/index.h"
#include "ingest/ingest.h"
#include "rules/rules.h"
#include "store/store.h"

static void usage(void)
{
    fprintf(stderr, "usage: trawl index status [--json]\n"
                    "       trawl index compact\n"
                    "       trawl index update [--jobs N]  (index stored samples the index lacks)\n"
                    "       trawl index verify [--sample N]\n"
                    "       trawl index query RULES.yar   (candidate samples per rule, unverified)\n");
}

static void print_problem(void *arg, const char *msg)
{
    (void)arg;
    printf("problem: %s\n", msg);
}

static int open_index(const cli_ctx *ctx, tr_index **ix)
{
    struct stat st;
    if (stat(ctx->data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cli_error("no data directory at %s", ctx->data_dir);
        return -1;
    }
    char *dir = tr_xasprintf("%s/index", ctx->data_dir);
    tr_error err;
    int rc = tr_index_open(dir, ix, &err);
    free(dir);
    if (rc < 0)
        cli_error("%s", err.msg);
    return rc;
}

static int cmd_status(tr_index *ix, bool json)
{
    tr_index_status st;
    tr_error err;
    if (tr_index_get_status(ix, &st, &err) < 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    if (json) {
        printf("{\"segments\":%zu,\"documents\":%llu,\"tombstones\":%llu,\"bytes\":%llu,\"kinds\":{",
               st.segments, (unsigned long long)st.docs, (unsigned long long)st.tombstones,
               (unsigned long long)st.bytes_total);
        bool first = true;
        for (int k = 0; k < TR_GRAM_KINDS; k++) {
            if (!st.kind_keys[k] && !(st.kinds & TR_KIND_BIT(k)))
                continue;
            printf("%s\"%s\":{\"bytes\":%llu,\"keys\":%llu,\"postings\":%llu,\"in_every_segment\":%s}",
                   first ? "" : ",", tr_gram_kind_name(k), (unsigned long long)st.kind_bytes[k],
                   (unsigned long long)st.kind_keys[k], (unsigned long long)st.postings[k],
                   (st.kinds & TR_KIND_BIT(k)) ? "true" : "false");
            first = false;
        }
        printf("}}\n");
        return CLI_OK;
    }
    printf("segments    %zu\n", st.segments);
    printf("documents   %llu (%llu tombstoned)\n", (unsigned long long)st.docs,
           (unsigned long long)st.tombstones);
    printf("size        %.1f MB\n", st.bytes_total / 1e6);
    for (int k = 0; k < TR_GRAM_KINDS; k++)
        if (st.kind_keys[k])
            printf("  %-6s    %.1f MB, %llu keys, %llu postings%s\n", tr_gram_kind_name(k),
                   st.kind_bytes[k] / 1e6, (unsigned long long)st.kind_keys[k],
                   (unsigned long long)st.postings[k],
                   (st.kinds & TR_KIND_BIT(k)) ? "" : " (not in every segment: queries widen there)");
    return CLI_OK;
}

/* Candidates of each rule straight from the index: what a hunt would verify. */
static int cmd_query(const cli_ctx *ctx, int argc, char **argv)
{
    if (argc != 3) {
        usage();
        return CLI_USAGE;
    }
    tr_ruleset *rs = NULL;
    tr_plan *plan = NULL;
    tr_error err;
    tr_rules_options o = {.externals = tr_hunt_externals, .nexternals = TR_HUNT_NEXTERNALS};
    if (tr_rules_parse_file(argv[2], &o, &rs, &err) != 0 || tr_plan_build(rs, &plan, &err) != 0) {
        cli_error("%s", err.msg);
        tr_ruleset_free(rs);
        return CLI_FAIL;
    }
    tr_index *ix = NULL;
    tr_store *s = NULL;
    int rc = open_index(ctx, &ix) == 0 ? CLI_OK : CLI_FAIL;
    if (rc == CLI_OK && tr_store_open(ctx->data_dir, TR_STORE_READONLY, &s, &err) != 0) {
        cli_error("%s", err.msg);
        rc = CLI_FAIL;
    }
    for (size_t i = 0; rc == CLI_OK && i < tr_plan_count(plan); i++) {
        uint32_t *ids = NULL;
        size_t n = 0;
        bool widened = false;
        if (tr_index_query(ix, tr_plan_query(plan, i), &ids, &n, &widened, &err) != 0) {
            cli_error("%s", err.msg);
            rc = CLI_FAIL;
            break;
        }
        for (size_t k = 0; k < n; k++) {
            tr_sample *x = NULL;
            if (tr_store_get_by_id(s, ids[k], &x, &err) == 1)
                printf("%s %s\n", tr_plan_rule_name(plan, i), x->d.sha256);
            tr_sample_free(x);
        }
        fprintf(stderr, "trawl: %s: %zu candidates%s\n", tr_plan_rule_name(plan, i), n,
                widened ? " (some strings could not use the index)" : "");
        free(ids);
    }
    tr_store_close(s);
    tr_index_close(ix);
    tr_plan_free(plan);
    tr_ruleset_free(rs);
    return rc;
}

int cli_cmd_index(const cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return CLI_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "query") == 0)
        return cmd_query(ctx, argc, argv);
    bool json = false;
    long sample = 0, jobs = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(sub, "status") == 0 && strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(sub, "update") == 0 && strcmp(argv[i], "--jobs") == 0 && i + 1 < argc) {
            char *end;
            jobs = strtol(argv[++i], &end, 10);
            if (*end || jobs <= 0 || jobs > 64) {
                cli_error("--jobs takes a number from 1 to 64");
                return CLI_USAGE;
            }
        } else if (strcmp(sub, "verify") == 0 && strcmp(argv[i], "--sample") == 0 && i + 1 < argc) {
            char *end;
            sample = strtol(argv[++i], &end, 10);
            if (*end || sample <= 0) {
                cli_error("--sample needs a positive number");
                return CLI_USAGE;
            }
        } else {
            usage();
            return CLI_USAGE;
        }
    }
    if (strcmp(sub, "status") != 0 && strcmp(sub, "compact") != 0 && strcmp(sub, "verify") != 0 &&
        strcmp(sub, "update") != 0) {
        usage();
        return CLI_USAGE;
    }
    if (strcmp(sub, "query") == 0)
        return cmd_query(ctx, argc, argv);
    if (strcmp(sub, "verify") == 0) {
        tr_index_check chk;
        tr_error err;
        if (tr_ingest_verify_index(ctx->data_dir, (size_t)sample, print_problem, NULL, &chk, &err) != 0) {
            cli_error("%s", err.msg);
            return CLI_FAIL;
        }
        bool ok = !chk.bad_docs && !chk.missing_in_index && !chk.stale_in_index;
        printf("verify: %zu samples checked gram by gram; %zu bad, %zu missing from the index,"
               " %zu stale in the index; %s\n", chk.checked, chk.bad_docs, chk.missing_in_index,
               chk.stale_in_index, ok ? "consistent" : "INCONSISTENT");
        return ok ? CLI_OK : CLI_FAIL;
    }
    if (strcmp(sub, "update") == 0) {
        tr_ingest_config cfg = {.data_dir = ctx->data_dir, .jobs = (size_t)jobs};
        tr_ingest_progress p = {0};
        tr_error err;
        if (tr_ingest_update_index(&cfg, &p, &err) != 0) {
            cli_error("%s", err.msg);
            return CLI_FAIL;
        }
        printf("indexed %zu samples, %.1f MB\n", p.index_docs_done, p.index_bytes_done / 1e6);
        return CLI_OK;
    }
    tr_index *ix;
    if (open_index(ctx, &ix) < 0)
        return CLI_FAIL;
    int rc = CLI_OK;
    if (strcmp(sub, "status") == 0) {
        rc = cmd_status(ix, json);
    } else {
        tr_error err;
        double t0 = tr_monotonic();
        if (tr_index_compact(ix, &err) < 0) {
            cli_error("%s", err.msg);
            rc = CLI_FAIL;
        } else {
            fprintf(stderr, "compacted in %.1f s\n", tr_monotonic() - t0);
            rc = cmd_status(ix, false);
        }
    }
    tr_index_close(ix);
    return rc;
}
