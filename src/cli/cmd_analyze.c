/* trawl analyze [--all] [--clamav-db DIR]: the binary analysis for samples
 * stored before it existed or by an older version of it, and a ClamAV scan
 * of those never scanned. New samples are analysed when they are added. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis.h"
#include "cli/cli.h"
#include "store/store.h"

static int usage(void)
{
    printf("usage: trawl analyze [--all] [--clamav-db DIR ($TRAWL_CLAMAV_DB)]\n"
           "Runs the binary analysis (telfhash, gimphash, dhash_icon, code signing,\n"
           "ole_information) and the file type (libmagic, as file(1) answers) for the stored\n"
           "samples that lack them (added before they existed, or by an older version).\n"
           "With a ClamAV database, also scans the samples never\n"
           "scanned with one. --all: every sample.\n");
    return CLI_OK;
}

typedef struct progress {
    int64_t skipped;
} progress;

static void on_sample(void *arg, const char *sha256, const char *error)
{
    progress *p = arg;
    if (error) {
        p->skipped++;
        cli_error("%s: %s", sha256, error);
    }
}

int cli_cmd_analyze(const cli_ctx *ctx, int argc, char **argv)
{
    bool all = false;
    const char *clamav_db = getenv("TRAWL_CLAMAV_DB");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--all") == 0)
            all = true;
        else if (strcmp(argv[i], "--clamav-db") == 0 && i + 1 < argc)
            clamav_db = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return usage();
        else {
            cli_error("unknown argument %s; 'trawl analyze --help'", argv[i]);
            return CLI_USAGE;
        }
    }
    tr_error err;
    if (clamav_db && *clamav_db && tr_clamav_configure(clamav_db, &err) != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    tr_store *s = NULL;
    if (tr_store_open(ctx->data_dir, 0, &s, &err) != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    progress p = {0};
    int64_t done = 0, retyped = 0;
    int rc = tr_store_analyze_backfill(s, all, on_sample, &p, &done, &retyped, &err);
    tr_store_close(s);
    if (rc != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    printf("analysed %lld samples", (long long)done);
    if (retyped)
        printf(", %lld with a new file type", (long long)retyped);
    if (p.skipped)
        printf(", %lld unreadable", (long long)p.skipped);
    printf("\n");
    return p.skipped ? CLI_FAIL : CLI_OK;
}
