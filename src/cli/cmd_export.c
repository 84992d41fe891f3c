/* trawl export: the bulk exports the server publishes under /export/, for
 * scripts on the same machine (and the daily zip of one day's samples). */
#define _GNU_SOURCE            /* timegm */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "store/store.h"

static const char usage[] =
    "usage: trawl export [--format csv|json|sha256|md5|sha1] [--recent] [--output FILE]\n"
    "       trawl export --daily YYYY-MM-DD --output FILE.zip\n"
    "Writes every sample (or, with --recent, those first seen in the last 48\n"
    "hours) in MalwareBazaar's export shapes: CSV and hash lists behind '#'\n"
    "comment lines, or JSON. Without --recent, CSV and hash lists are written\n"
    "as Bazaar serves them: a zip holding full.csv (or full_sha256.txt...).\n"
    "--daily writes the samples first seen on that UTC\n"
    "day as a zip encrypted with AES-256, password \"infected\".\n";

static int daily(const cli_ctx *ctx, const char *day, const char *output)
{
    int y, m, d;
    char extra;
    if (sscanf(day, "%4d-%2d-%2d%c", &y, &m, &d, &extra) != 3 || m < 1 || m > 12 || d < 1 ||
        d > 31 || y < 1970) {
        cli_error("--daily takes a day as YYYY-MM-DD, not '%s'", day);
        return CLI_USAGE;
    }
    if (!output) {
        cli_error("--daily needs --output FILE.zip");
        return CLI_USAGE;
    }
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
    tr_store *s;
    tr_error err;
    if (tr_store_open(ctx->data_dir, TR_STORE_READONLY, &s, &err) != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    tr_zip_entry *entries = NULL;
    size_t n = 0;
    if (tr_store_day_zip(s, (int64_t)timegm(&tm), &entries, &n, &err) != 0) {
        tr_store_close(s);
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    tr_store_close(s);
    int rc = tr_zip_write_aes(output, entries, n, "infected", &err);
    tr_store_zip_entries_free(entries, n);
    if (rc != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    fprintf(stderr, "%zu sample%s first seen on %s written to %s\n", n, n == 1 ? "" : "s", day,
            output);
    return CLI_OK;
}

int cli_cmd_export(const cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"format", required_argument, NULL, 'f'},
                                         {"recent", no_argument, NULL, 'r'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"daily", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0, 0, 0, 0}};
    const char *format = "csv", *output = NULL, *day = NULL;
    bool recent = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:ro:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f': format = optarg; break;
        case 'r': recent = true; break;
        case 'o': output = optarg; break;
        case 'd': day = optarg; break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        default: fputs(usage, stderr); return CLI_USAGE;
        }
    }
    if (optind != argc) {
        fputs(usage, stderr);
        return CLI_USAGE;
    }
    if (day)
        return daily(ctx, day, output);
    int fmt = tr_export_format_parse(format);
    if (fmt < 0) {
        cli_error("unknown export format '%s' (csv, json, sha256, md5, sha1)", format);
        return CLI_USAGE;
    }
    tr_store *s;
    tr_error err;
    if (tr_store_open(ctx->data_dir, TR_STORE_READONLY, &s, &err) != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    tr_buf out = {0};
    int64_t now = tr_now_unix();
    bool zipped;
    /* The same bytes as GET /export/<fmt>/...: full exports are Bazaar's zip of one file. */
    int rc = tr_store_export_published(s, (tr_export_format)fmt, recent, now, &out, &zipped, &err);
    tr_store_close(s);
    if (rc != 0) {
        tr_buf_free(&out);
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    FILE *f = output ? fopen(output, "wb") : stdout;
    if (!f) {
        tr_buf_free(&out);
        cli_error("cannot write %s", output);
        return CLI_FAIL;
    }
    bool ok = fwrite(out.data, 1, out.len, f) == out.len;
    ok = (output ? fclose(f) : fflush(f)) == 0 && ok;
    tr_buf_free(&out);
    if (!ok) {
        cli_error("cannot write %s", output ? output : "the output");
        return CLI_FAIL;
    }
    return CLI_OK;
}
