/* trawl info / ls / rm / fsck: reading and maintaining the sample store. */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"
#include "hunt/hunt.h"
#include "ingest/ingest.h"
#include "store/store.h"

static int open_store(const cli_ctx *ctx, int flags, tr_store **s)
{
    tr_error err;
    if (tr_store_open(ctx->data_dir, flags, s, &err) != 0) {
        cli_error("%s", err.msg);
        return -1;
    }
    return 0;
}

static void print_json(json_t *j)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text)
        tr_die("out of memory printing JSON");
    puts(text);
    free(text);
}

static void print_list(const char *label, char **items, size_t n)
{
    printf("%-16s", label);
    for (size_t i = 0; i < n; i++)
        printf("%s%s", i ? ", " : "", items[i]);
    putchar('\n');
}

/* Live-hunt hits, as MalwareBazaar's yara_rules; a data directory without
 * hunt tables yet simply has none. */
static void print_live_hits(const char *data_dir, int64_t id)
{
    tr_live_hit *hits = NULL;
    size_t n = 0;
    tr_error err;
    if (tr_hunt_live_hits_for_sample(data_dir, id, &hits, &n, &err) != 0)
        n = 0;
    for (size_t i = 0; i < n; i++)
        printf("%-16s%s (%s)%s%s\n", i ? "" : "live hits", hits[i].rule, hits[i].ruleset,
               hits[i].description && *hits[i].description ? " - " : "",
               hits[i].description ? hits[i].description : "");
    if (n == 0)
        printf("%-16s-\n", "live hits");
    tr_live_hits_free(hits, n);
}

static void print_sample(const tr_sample *x)
{
    char first[32], last[32];
    tr_format_time(x->first_seen, first);
    tr_format_time(x->last_seen, last);
    printf("%-16s%lld\n", "id", (long long)x->id);
    printf("%-16s%s\n", "sha256", x->d.sha256);
    printf("%-16s%s\n", "sha1", x->d.sha1);
    printf("%-16s%s\n", "md5", x->d.md5);
    printf("%-16s%s\n", "sha3-384", x->d.sha3_384);
    printf("%-16s%s\n", "ssdeep", x->d.ssdeep);
    printf("%-16s%s\n", "tlsh", *x->d.tlsh ? x->d.tlsh : "-");
    printf("%-16s%s\n", "imphash", *x->imphash ? x->imphash : "-");
    printf("%-16s%llu\n", "size", (unsigned long long)x->d.size);
    printf("%-16s%s\n", "file type", x->file_type ? x->file_type : "");
    printf("%-16s%s\n", "mime", x->mime ? x->mime : "");
    printf("%-16s%s\n", "magic", x->magic ? x->magic : "");
    printf("%-16s%s UTC\n", "first seen", first);
    printf("%-16s%s UTC\n", "last seen", last);
    print_list("names", x->names, x->n_names);
    print_list("tags", x->tags, x->n_tags);
    printf("%-16s%s\n", "signature", x->signature ? x->signature : "-");
    if (x->reporter)
        printf("%-16s%s\n", "reporter", x->reporter);
    if (x->origin)
        printf("%-16s%s\n", "origin", x->origin);
    if (x->delivery_method)
        printf("%-16s%s\n", "delivery method", x->delivery_method);
    for (size_t i = 0; i < x->n_comments; i++) {
        char when[32];
        tr_format_time(x->comments[i].created, when);
        printf("%-16s[%s %s] %s\n", i ? "" : "comments", when,
               x->comments[i].author ? x->comments[i].author : "anonymous", x->comments[i].text);
    }
}

int cli_cmd_info(const cli_ctx *ctx, int argc, char **argv)
{
    bool json = false;
    int opt = cli_json_options(argc, argv, "usage: trawl info [--json] HASH...\nHASH is an md5, sha1 or sha256.\n", &json);
    if (opt >= 0)
        return opt;
    if (optind >= argc) {
        cli_error("info needs a hash (md5, sha1 or sha256)");
        return CLI_USAGE;
    }
    char norm[TR_SHA256_HEX];
    for (int i = optind; i < argc; i++)
        if (!tr_hash_normalize(argv[i], norm, sizeof norm)) {
            cli_error("'%s' is not an md5, sha1 or sha256 hash (32, 40 or 64 hex digits)", argv[i]);
            return CLI_USAGE;
        }
    tr_store *s;
    if (open_store(ctx, TR_STORE_READONLY, &s) != 0)
        return CLI_FAIL;
    int status = CLI_OK;
    json_t *arr = json ? json_array() : NULL;
    for (int i = optind; i < argc; i++) {
        tr_error err;
        tr_sample *x = NULL;
        int found = tr_store_get(s, argv[i], &x, &err);
        if (found < 0) {
            cli_error("%s", err.msg);
            status = CLI_FAIL;
        } else if (found == 0) {
            cli_error("no sample with hash %s", argv[i]);
            status = CLI_FAIL;
        } else if (json) {
            json_t *o = tr_sample_to_json(x);
            tr_error herr;
            json_t *y = tr_hunt_live_hits_json(ctx->data_dir, x->id, &herr);
            json_object_set_new(o, "yara_rules", y ? y : json_null());
            json_array_append_new(arr, o);
        } else {
            if (i > optind)
                putchar('\n');
            print_sample(x);
            print_live_hits(ctx->data_dir, x->id);
        }
        tr_sample_free(x);
    }
    if (json) {
        print_json(json_array_size(arr) == 1 && argc - optind == 1 ? json_array_get(arr, 0) : arr);
        json_decref(arr);
    }
    tr_store_close(s);
    return status;
}

int cli_cmd_ls(const cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"tag", required_argument, NULL, 't'},   {"signature", required_argument, NULL, 's'},
        {"type", required_argument, NULL, 'T'},  {"limit", required_argument, NULL, 'n'},
        {"offset", required_argument, NULL, 'o'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},        {0, 0, 0, 0}};
    tr_sample_filter f = {.limit = 100};
    bool json = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "t:s:T:n:o:jh", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 't': f.tag = optarg; break;
        case 's': f.signature = optarg; break;
        case 'T': f.file_type = optarg; break;
        case 'n':
        case 'o': {
            long long v = strtoll(optarg, &end, 10);
            if (!*optarg || *end || v < 0) {
                cli_error("--%s takes a whole number >= 0", c == 'n' ? "limit" : "offset");
                return CLI_USAGE;
            }
            if (c == 'n')
                f.limit = v;
            else
                f.offset = v;
            break;
        }
        case 'j': json = true; break;
        case 'h':
            printf("usage: trawl ls [--tag T] [--signature S] [--type T] [--limit N (100; 0 = all)]\n"
                   "                [--offset N] [--json]\n");
            return CLI_OK;
        default:
            return CLI_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("ls takes no arguments (did you mean 'trawl info %s'?)", argv[optind]);
        return CLI_USAGE;
    }
    tr_store *s;
    if (open_store(ctx, TR_STORE_READONLY, &s) != 0)
        return CLI_FAIL;
    tr_error err;
    tr_sample **list = NULL;
    size_t n = 0;
    if (tr_store_list(s, &f, &list, &n, &err) != 0) {
        cli_error("%s", err.msg);
        tr_store_close(s);
        return CLI_FAIL;
    }
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, tr_sample_to_json(list[i]));
        print_json(arr);
        json_decref(arr);
    } else {
        for (size_t i = 0; i < n; i++) {
            const tr_sample *x = list[i];
            char when[32];
            tr_format_time(x->first_seen, when);
            printf("%s  %-6s %10llu  %s  %-14s %s", x->d.sha256, x->file_type,
                   (unsigned long long)x->d.size, when, x->signature ? x->signature : "-",
                   x->n_names ? x->names[0] : "-");
            if (x->n_tags) {
                printf("  [");
                for (size_t k = 0; k < x->n_tags; k++)
                    printf("%s%s", k ? "," : "", x->tags[k]);
                printf("]");
            }
            putchar('\n');
        }
    }
    tr_sample_list_free(list, n);
    tr_store_close(s);
    return CLI_OK;
}

int cli_cmd_rm(const cli_ctx *ctx, int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: trawl rm HASH...\nRemoves samples (metadata and blob).\n");
        return CLI_OK;
    }
    if (argc < 2) {
        cli_error("rm needs a hash (md5, sha1 or sha256)");
        return CLI_USAGE;
    }
    char norm[TR_SHA256_HEX];
    for (int i = 1; i < argc; i++)
        if (!tr_hash_normalize(argv[i], norm, sizeof norm)) {
            cli_error("'%s' is not an md5, sha1 or sha256 hash (32, 40 or 64 hex digits)", argv[i]);
            return CLI_USAGE;
        }
    int status = CLI_OK;
    for (int i = 1; i < argc; i++) {
        tr_error err;
        int64_t id = 0;
        int rc = tr_ingest_remove(ctx->data_dir, argv[i], &id, &err);
        if (rc < 0) {
            cli_error("%s", err.msg);
            status = CLI_FAIL;
        } else if (rc == 0) {
            cli_error("no sample with hash %s", argv[i]);
            status = CLI_FAIL;
        } else {
            printf("removed %s\n", argv[i]);
        }
    }
    return status;
}

static const char *fsck_kind_name(tr_fsck_kind k)
{
    switch (k) {
    case TR_FSCK_MISSING_BLOB: return "missing blob";
    case TR_FSCK_CORRUPT_BLOB: return "corrupt blob";
    case TR_FSCK_UNREFERENCED: return "unreferenced blob";
    case TR_FSCK_STRAY_FILE: return "stray file";
    }
    return "?";
}

static void fsck_print(void *arg, tr_fsck_kind kind, const char *what, const char *action)
{
    (void)arg;
    printf("%s: %s%s%s\n", fsck_kind_name(kind), what, action ? ": " : "", action ? action : "");
}

int cli_cmd_fsck(const cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"repair", no_argument, NULL, 'r'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    bool repair = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "rh", opts, NULL)) != -1) {
        if (c == 'r') {
            repair = true;
        } else if (c == 'h') {
            printf("usage: trawl fsck [--repair]\n"
                   "Checks every row has its blob with the right sha256 and every blob its row.\n"
                   "Exit 1 when a sample is missing or corrupt. Unreferenced blobs (left by an\n"
                   "interrupted add) and stray files are reported; --repair adopts the former\n"
                   "and deletes the latter, and drops rows whose blob is lost.\n");
            return CLI_OK;
        } else {
            return CLI_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("fsck takes no arguments");
        return CLI_USAGE;
    }
    tr_store *s;
    if (open_store(ctx, 0, &s) != 0)
        return CLI_FAIL;
    tr_error err;
    tr_fsck_report rep;
    int rc = tr_store_fsck(s, repair, fsck_print, NULL, &rep, &err);
    tr_store_close(s);
    if (rc != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    bool lost = (rep.missing || rep.corrupt) && !repair;
    printf("fsck: %lld rows, %lld blobs checked; %lld missing, %lld corrupt, %lld unreferenced,"
           " %lld stray%s; %s\n",
           (long long)rep.rows_checked, (long long)rep.blobs_checked, (long long)rep.missing,
           (long long)rep.corrupt, (long long)rep.unreferenced, (long long)rep.stray,
           repair ? "" : "",
           lost ? "INCONSISTENT (run 'trawl fsck --repair' to drop lost samples)"
           : repair ? (rep.repaired ? "repaired" : "consistent")
                    : (rep.unreferenced || rep.stray ? "consistent (leftovers: 'trawl fsck --repair' tidies them)"
                                                     : "consistent"));
    return lost ? CLI_FAIL : CLI_OK;
}
