/* trawl kb sync|match: trawl's own data linked into the STIX knowledge base,
 * and STIX indicators looked up against it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "hunt/hunt.h"
#include "kblink/kblink.h"
#include "stix/stix.h"

static const char usage_text[] =
    "usage: trawl kb sync [--full] [--json]     link samples, signatures, live rules, hunts and\n"
    "                                           noise addresses into the knowledge base (idempotent;\n"
    "                                           what changed since the last sync, or --full: all)\n"
    "       trawl kb noise-scope [all|classified] which noise addresses become objects: tagged or\n"
    "                                           classified malicious/benign ones (the default), or\n"
    "                                           all; a change makes the next sync a full pass\n"
    "       trawl kb match PATTERN [--json]     the samples and noise addresses a STIX pattern matches\n"
    "       trawl kb match INDICATOR-ID [--json] the same for a stored indicator; a YARA indicator\n"
    "                                           runs as a retrohunt\n";

static int get_row(void *arg, const tr_stix_row *row)
{
    json_t **o = arg;
    *o = json_loadb(row->json, row->json_len, 0, NULL);
    return 0;
}

static int print_json(json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!s)
        return CLI_FAIL;
    puts(s);
    free(s);
    return CLI_OK;
}

static int cmd_sync(const cli_ctx *ctx, bool full, bool json)
{
    tr_kblink_stats st;
    tr_error err;
    char *db = tr_xasprintf("%s/trawl.db", ctx->data_dir);
    int missing = access(db, F_OK) != 0;
    free(db);
    if (missing) {
        cli_error("no trawl data in %s", ctx->data_dir);
        return CLI_FAIL;
    }
    if (tr_kblink_sync_mode(ctx->data_dir, full ? TR_KBLINK_FULL : TR_KBLINK_AUTO, &st, &err) != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    if (json) {
        json_t *v = json_pack("{sI sI sI sI sI sb}", "objects", (json_int_t)st.objects, "unchanged",
                              (json_int_t)st.unchanged, "added", (json_int_t)st.added, "updated",
                              (json_int_t)st.updated, "retired", (json_int_t)st.retired, "full",
                              st.full);
        int rc = print_json(v);
        json_decref(v);
        return rc;
    }
    printf("%zu objects from trawl's data: %zu added, %zu updated, %zu unchanged; %zu retired (%s)\n",
           st.objects, st.added, st.updated, st.unchanged, st.retired,
           st.full ? "full pass" : "changes only");
    return CLI_OK;
}

static int run_yara(const cli_ctx *ctx, const char *name, const char *text, bool json)
{
    tr_hunt_source src = {name, text, strlen(text)};
    tr_hunt_params p = {.sources = &src, .nsources = 1};
    int64_t job;
    tr_error err;
    tr_hunt *h = NULL;
    if (tr_hunt_submit(ctx->data_dir, &p, &job, &err) != 0 ||
        tr_hunt_open(ctx->data_dir, job, &h, &err) != 0 || tr_hunt_run(h, &err) != 0) {
        if (h)
            tr_hunt_free(h);
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    tr_hunt_free(h);
    char **sha = NULL;
    size_t n = 0;
    if (tr_hunt_matched_samples(ctx->data_dir, job, &sha, &n, &err) != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, json_pack("{ss}", "sha256", sha[i]));
        free(sha[i]);
    }
    free(sha);
    json_t *v = json_pack("{sI so so}", "hunt", (json_int_t)job, "samples", arr, "ips", json_array());
    int rc = CLI_OK;
    if (json) {
        rc = print_json(v);
    } else {
        printf("hunt %lld: %zu samples\n", (long long)job, json_array_size(arr));
        size_t i;
        json_t *x;
        json_array_foreach(arr, i, x) printf("sample %s\n", json_string_value(json_object_get(x, "sha256")));
    }
    json_decref(v);
    return rc;
}

static int cmd_match(const cli_ctx *ctx, const char *what, bool json)
{
    tr_error err;
    json_t *ind = NULL;
    const char *pattern = what;
    if (strncmp(what, "indicator--", 11) == 0) {
        tr_stix_db *kb;
        if (tr_stix_open(ctx->data_dir, &kb, &err) != 0) {
            cli_error("%s", err.msg);
            return CLI_FAIL;
        }
        int got = tr_stix_get(kb, what, get_row, &ind, &err);
        tr_stix_close(kb);
        if (got <= 0 || !ind) {
            cli_error("%s", got < 0 ? err.msg : "no such indicator in the knowledge base");
            return CLI_FAIL;
        }
        pattern = json_string_value(json_object_get(ind, "pattern"));
        const char *ptype = json_string_value(json_object_get(ind, "pattern_type"));
        if (ptype && strcmp(ptype, "yara") == 0) {
            int rc = run_yara(ctx, what, pattern ? pattern : "", json);
            json_decref(ind);
            return rc;
        }
        if (!ptype || strcmp(ptype, "stix") != 0 || !pattern) {
            cli_error("indicator %s has pattern_type %s: only stix and yara are looked up", what,
                      ptype ? ptype : "(none)");
            json_decref(ind);
            return CLI_FAIL;
        }
    }
    json_t *res = NULL;
    int rc = tr_kblink_match_pattern(ctx->data_dir, pattern, &res, &err);
    json_decref(ind);
    if (rc != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    if (json) {
        rc = print_json(res);
    } else {
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(res, "samples"), i, x)
            printf("sample %s %s\n", json_string_value(json_object_get(x, "sha256")),
                   json_string_value(json_object_get(x, "name")) ?: "");
        json_array_foreach(json_object_get(res, "ips"), i, x)
            printf("ip %s %s\n", json_string_value(json_object_get(x, "ip")),
                   json_string_value(json_object_get(x, "classification")) ?: "");
        rc = CLI_OK;
    }
    json_decref(res);
    return rc;
}

int cli_cmd_kb(const cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    /* --full belongs to sync alone: taken out before the shared options. */
    bool full = false;
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--full") == 0 && strcmp(argv[1], "sync") == 0)
            full = true;
        else
            argv[kept++] = argv[i];
    }
    argc = kept;
    bool json;
    int rc = cli_json_options(argc - 1, argv + 1, usage_text, &json);
    if (rc >= 0)
        return rc;
    int nargs = argc - 1 - optind;
    char **args = argv + 1 + optind;
    if (strcmp(argv[1], "sync") == 0 && nargs == 0)
        return cmd_sync(ctx, full, json);
    if (strcmp(argv[1], "noise-scope") == 0 && nargs <= 1) {
        bool all;
        tr_error err;
        if (tr_kblink_noise_scope(ctx->data_dir, nargs ? args[0] : NULL, &all, &err) != 0) {
            cli_error("%s", err.msg);
            return CLI_FAIL;
        }
        puts(all ? "all" : "classified");
        return CLI_OK;
    }
    if (strcmp(argv[1], "match") == 0 && nargs == 1)
        return cmd_match(ctx, args[0], json);
    fputs(usage_text, stderr);
    return CLI_USAGE;
}
