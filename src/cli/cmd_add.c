/* trawl add: options and terminal output around ingest. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/core.h"
#include "ingest/ingest.h"

typedef struct add_view {
    bool verbose, show_progress;
    double started, phase_started;
    bool bar_drawn, in_index_phase;
} add_view;

static void human_bytes(uint64_t b, char out[32])
{
    const char *u[] = {"B", "KB", "MB", "GB", "TB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1000 && i < 4) {
        v /= 1000;
        i++;
    }
    snprintf(out, 32, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static void clear_bar(add_view *v)
{
    if (v->bar_drawn)
        fputs("\r\033[K", stderr);
    v->bar_drawn = false;
}

static void on_commit(void *arg, const char *sha256, const char *path, bool is_new)
{
    add_view *v = arg;
    if (!v->verbose)
        return;
    /* Printed only once committed: a listed sample is acknowledged. */
    printf("%s %s %s\n", is_new ? "new" : "dup", sha256, path);
    fflush(stdout);
}

static void on_message(void *arg, bool failure, const char *msg)
{
    add_view *v = arg;
    clear_bar(v);
    (void)failure;
    cli_error("%s", msg);
}

static void on_progress(void *arg, const tr_ingest_progress *p)
{
    add_view *v = arg;
    if (!v->show_progress)
        return;
    if (p->indexing && !v->in_index_phase) {
        v->in_index_phase = true;
        v->phase_started = tr_monotonic();
    }
    double el = tr_monotonic() - v->phase_started;
    uint64_t done = p->indexing ? p->index_bytes_done : p->bytes_done;
    uint64_t total = p->indexing ? p->index_bytes_total : p->bytes_total;
    size_t fdone = p->indexing ? p->index_docs_done : p->files_done;
    size_t ftotal = p->indexing ? p->index_docs_total : p->files_total;
    double rate = el > 0 ? (double)done / el : 0;
    char d[32], t[32];
    human_bytes(done, d);
    human_bytes(total, t);
    enum { WIDTH = 24 };
    double frac = total ? (double)done / (double)total : (ftotal ? (double)fdone / (double)ftotal : 1);
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < (int)(frac * WIDTH) ? '#' : '.';
    bar[WIDTH] = '\0';
    double eta = rate > 0 && total > done ? (double)(total - done) / rate : 0;
    fprintf(stderr, "\r%s [%s] %zu/%zu files  %s/%s  %.1f MB/s  ETA %d:%02d\033[K",
            p->indexing ? "index" : "add  ", bar, fdone, ftotal, d, t, rate / 1e6, (int)eta / 60,
            (int)eta % 60);
    v->bar_drawn = true;
}

int cli_cmd_add(const cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"tag", required_argument, NULL, 't'},
        {"signature", required_argument, NULL, 's'},
        {"reporter", required_argument, NULL, 'r'},
        {"origin", required_argument, NULL, 'o'},
        {"delivery-method", required_argument, NULL, 'd'},
        {"comment", required_argument, NULL, 'c'},
        {"jobs", required_argument, NULL, 'j'},
        {"no-index", no_argument, NULL, 'N'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    const char **tags = NULL;
    size_t ntags = 0;
    tr_ingest_config cfg = {.data_dir = ctx->data_dir};
    add_view view = {0};
    bool quiet = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "t:s:j:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            tags = tr_xrealloc(tags, (ntags + 1) * sizeof *tags);
            tags[ntags++] = optarg;
            break;
        case 's': cfg.meta.signature = optarg; break;
        case 'r': cfg.meta.reporter = optarg; break;
        case 'o': cfg.meta.origin = optarg; break;
        case 'd': cfg.meta.delivery_method = optarg; break;
        case 'c': cfg.meta.comment = optarg; break;
        case 'N': cfg.skip_index = true; break;
        case 'j': {
            char *end = NULL;
            long jobs = strtol(optarg, &end, 10);
            if (*end || jobs < 1 || jobs > 256) {
                cli_error("--jobs takes a number from 1 to 256");
                free(tags);
                return CLI_USAGE;
            }
            cfg.jobs = (size_t)jobs;
            break;
        }
        case 'q': quiet = true; break;
        case 'v': view.verbose = true; break;
        case 'h':
            printf("usage: trawl add [--tag T]... [--signature S] [--reporter R] [--origin O]\n"
                   "                 [--delivery-method M] [--comment TEXT] [--jobs N] [--no-index]\n"
                   "                 [--quiet] [--verbose] PATH...\n"
                   "Adds files and directories (recursively) to the store, then indexes them.\n"
                   "Duplicates (same sha256) are stored once; their names, tags and last_seen\n"
                   "are merged. --verbose prints 'new|dup SHA256 PATH' for each file once it is\n"
                   "committed. --no-index leaves indexing to the next add.\n");
            free(tags);
            return CLI_OK;
        default:
            free(tags);
            return CLI_USAGE;
        }
    }
    if (optind >= argc) {
        cli_error("add needs at least one file or directory; 'trawl add --help'");
        free(tags);
        return CLI_USAGE;
    }
    cfg.meta.tags = tags;
    cfg.meta.n_tags = ntags;
    cfg.arg = &view;
    cfg.on_commit = on_commit;
    cfg.on_message = on_message;
    cfg.on_progress = on_progress;
    view.show_progress = ctx->stderr_tty && !quiet;
    view.started = view.phase_started = tr_monotonic();

    tr_ingest_progress p;
    tr_error err;
    int rc = tr_ingest_paths(&cfg, argv + optind, (size_t)(argc - optind), &p, &err);
    clear_bar(&view);
    if (rc != 0)
        cli_error("%s", err.msg);
    double el = tr_monotonic() - view.started;
    char bytes[32];
    human_bytes(p.bytes_done, bytes);
    fprintf(quiet ? stderr : stdout,
            "added %zu new, %zu duplicate%s, %zu failed, %zu skipped; %s in %.2f s (%.1f MB/s)"
            "; indexed %zu\n",
            p.added, p.duplicates, p.duplicates == 1 ? "" : "s", p.failed, p.skipped, bytes, el,
            el > 0 ? (double)p.bytes_done / el / 1e6 : 0.0, p.index_docs_done);
    free(tags);
    return rc != 0 || p.failed ? CLI_FAIL : CLI_OK;
}
