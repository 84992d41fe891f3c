/* trawl add: walk paths, stage files in parallel, commit in batches. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/core.h"
#include "store/store.h"

typedef struct file_item {
    char *path;
    uint64_t size;
} file_item;

typedef struct walk_state {
    file_item *items;
    size_t n, cap;
    uint64_t bytes;
    size_t skipped, failed;
    /* (dev, inode) of every directory entered: a symlink cycle is entered once. */
    struct { dev_t dev; ino_t ino; } *seen;
    size_t nseen, capseen;
} walk_state;

static bool dir_seen(walk_state *w, const struct stat *st)
{
    for (size_t i = 0; i < w->nseen; i++)
        if (w->seen[i].dev == st->st_dev && w->seen[i].ino == st->st_ino)
            return true;
    if (w->nseen == w->capseen) {
        w->capseen = w->capseen ? w->capseen * 2 : 64;
        w->seen = tr_xrealloc(w->seen, w->capseen * sizeof *w->seen);
    }
    w->seen[w->nseen].dev = st->st_dev;
    w->seen[w->nseen].ino = st->st_ino;
    w->nseen++;
    return false;
}

static void walk_path(walk_state *w, const char *path, bool top)
{
    struct stat lst, st;
    if (lstat(path, &lst) != 0) {
        cli_error("cannot access %s: %s", path, strerror(errno));
        w->failed++;
        return;
    }
    if (S_ISLNK(lst.st_mode)) {
        if (stat(path, &st) != 0) {
            cli_error("skipping %s: broken symbolic link", path);
            w->skipped++;
            return;
        }
    } else {
        st = lst;
    }
    if (S_ISDIR(st.st_mode)) {
        if (dir_seen(w, &st)) {
            if (!top)
                cli_error("skipping %s: directory already visited (symbolic link loop)", path);
            w->skipped++;
            return;
        }
        DIR *d = opendir(path);
        if (!d) {
            cli_error("cannot read directory %s: %s", path, strerror(errno));
            w->failed++;
            return;
        }
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                names = tr_xrealloc(names, cap * sizeof *names);
            }
            names[n++] = tr_xstrdup(e->d_name);
        }
        closedir(d);
        for (size_t i = 0; i < n; i++) {
            size_t plen = strlen(path);
            char *child = plen && path[plen - 1] == '/' ? tr_xasprintf("%s%s", path, names[i])
                                                        : tr_xasprintf("%s/%s", path, names[i]);
            walk_path(w, child, false);
            free(child);
            free(names[i]);
        }
        free(names);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        cli_error("skipping %s: not a regular file", path);
        w->skipped++;
        return;
    }
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 1024;
        w->items = tr_xrealloc(w->items, w->cap * sizeof *w->items);
    }
    w->items[w->n].path = tr_xstrdup(path);
    w->items[w->n].size = (uint64_t)st.st_size;
    w->n++;
    w->bytes += (uint64_t)st.st_size;
}

/* ---- parallel staging --------------------------------------------------- */

typedef struct staged_item {
    size_t index;             /* into the walk's items */
    tr_staged st;
} staged_item;

typedef struct pipeline {
    const char *data_dir;
    walk_state *walk;
    atomic_size_t next;       /* next item to stage */
    pthread_mutex_t lock;
    pthread_cond_t ready, room;
    staged_item *queue;       /* staged, waiting for the committer */
    size_t nqueue, capqueue;
    size_t workers_left;
    size_t stage_failed;
    uint64_t staged_bytes;
} pipeline;

static void *stage_worker(void *arg)
{
    pipeline *p = arg;
    tr_error err;
    tr_store *s = NULL;
    tr_analyzer *an = NULL;
    if (tr_store_open(p->data_dir, 0, &s, &err) != 0 || tr_analyzer_new(&an, &err) != 0) {
        cli_error("%s", err.msg);
        /* Without a worker nothing is staged; make the failure visible. */
        pthread_mutex_lock(&p->lock);
        p->stage_failed++;
        pthread_mutex_unlock(&p->lock);
        goto done;
    }
    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->walk->n)
            break;
        staged_item item = {.index = i};
        int rc = tr_store_stage_path(s, an, p->walk->items[i].path, &item.st, &err);
        pthread_mutex_lock(&p->lock);
        if (rc != 0) {
            cli_error("%s", err.msg);
            p->stage_failed++;
        } else {
            while (p->nqueue == p->capqueue)
                pthread_cond_wait(&p->room, &p->lock);
            p->queue[p->nqueue++] = item;
            p->staged_bytes += item.st.d.size;
            pthread_cond_signal(&p->ready);
        }
        pthread_mutex_unlock(&p->lock);
    }
done:
    tr_analyzer_free(an);
    tr_store_close(s);
    pthread_mutex_lock(&p->lock);
    p->workers_left--;
    pthread_cond_signal(&p->ready);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

typedef struct add_totals {
    size_t added, duplicates, commit_failed, done_files;
    uint64_t done_bytes;
} add_totals;

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

static void progress(const add_totals *t, const walk_state *w, double started, bool final)
{
    double el = tr_monotonic() - started;
    double rate = el > 0 ? (double)t->done_bytes / el : 0;
    char done[32], total[32];
    human_bytes(t->done_bytes, done);
    human_bytes(w->bytes, total);
    int width = 24;
    double frac = w->bytes ? (double)t->done_bytes / (double)w->bytes
                           : (w->n ? (double)t->done_files / (double)w->n : 1);
    int fill = (int)(frac * width);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    double eta = rate > 0 ? (double)(w->bytes - t->done_bytes) / rate : 0;
    fprintf(stderr, "\r[%s] %zu/%zu files  %s/%s  %.1f MB/s  ETA %d:%02d \033[K", bar,
            t->done_files, w->n, done, total, rate / 1e6, (int)eta / 60, (int)eta % 60);
    if (final)
        fputc('\n', stderr);
}

static char *basename_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return tr_xstrdup(slash ? slash + 1 : path);
}

static int commit_batch(tr_store *s, walk_state *w, staged_item *batch, size_t n,
                        const tr_ingest_meta *base, bool verbose, add_totals *t)
{
    tr_staged *st = tr_xcalloc(n, sizeof *st);
    tr_ingest_meta *meta = tr_xcalloc(n, sizeof *meta);
    tr_ingest_result *res = tr_xcalloc(n, sizeof *res);
    char **names = tr_xcalloc(n, sizeof *names);
    for (size_t i = 0; i < n; i++) {
        st[i] = batch[i].st;
        meta[i] = *base;
        names[i] = basename_of(w->items[batch[i].index].path);
        meta[i].file_name = names[i];
    }
    /* The commit consumes the staged files; keep what the report needs. */
    char (*sha)[TR_SHA256_HEX] = tr_xcalloc(n, sizeof *sha);
    for (size_t i = 0; i < n; i++)
        memcpy(sha[i], batch[i].st.d.sha256, TR_SHA256_HEX);
    tr_error err;
    int rc = tr_store_commit(s, st, meta, n, res, &err);
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += batch[i].st.d.size;
        free(names[i]);
    }
    if (rc == 0 && verbose) {
        /* Printed only once committed: a listed sample is acknowledged. */
        for (size_t i = 0; i < n; i++)
            printf("%s %s %s\n", res[i].is_new ? "new" : "dup", sha[i],
                   w->items[batch[i].index].path);
        fflush(stdout);
    }
    free(sha);
    if (rc != 0) {
        cli_error("%s", err.msg);
        t->commit_failed += n;
    } else {
        for (size_t i = 0; i < n; i++)
            res[i].is_new ? t->added++ : t->duplicates++;
    }
    t->done_files += n;
    t->done_bytes += bytes;
    free(st);
    free(meta);
    free(res);
    free(names);
    return rc;
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
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    const char **tags = NULL;
    size_t ntags = 0;
    tr_ingest_meta base = {0};
    long jobs = sysconf(_SC_NPROCESSORS_ONLN);
    bool quiet = false, verbose = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "t:s:j:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            tags = tr_xrealloc(tags, (ntags + 1) * sizeof *tags);
            tags[ntags++] = optarg;
            break;
        case 's': base.signature = optarg; break;
        case 'r': base.reporter = optarg; break;
        case 'o': base.origin = optarg; break;
        case 'd': base.delivery_method = optarg; break;
        case 'c': base.comment = optarg; break;
        case 'j':
            jobs = strtol(optarg, NULL, 10);
            if (jobs < 1 || jobs > 256) {
                cli_error("--jobs takes a number from 1 to 256");
                free(tags);
                return CLI_USAGE;
            }
            break;
        case 'q': quiet = true; break;
        case 'v': verbose = true; break;
        case 'h':
            printf("usage: trawl add [--tag T]... [--signature S] [--reporter R] [--origin O]\n"
                   "                 [--delivery-method M] [--comment TEXT] [--jobs N] [--quiet] [--verbose] PATH...\n"
                   "Adds files and directories (recursively) to the store. Duplicates (same sha256)\n"
                   "are stored once; their names, tags and last_seen are merged. --verbose prints\n"
                   "'new|dup SHA256 PATH' for each file once it is committed.\n");
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
    if (jobs < 1)
        jobs = 1;
    base.tags = tags;
    base.n_tags = ntags;

    tr_error err;
    tr_store *s = NULL;
    if (tr_store_open(ctx->data_dir, TR_STORE_CREATE, &s, &err) != 0) {
        cli_error("%s", err.msg);
        free(tags);
        return CLI_FAIL;
    }

    walk_state w = {0};
    for (int i = optind; i < argc; i++)
        walk_path(&w, argv[i], true);

    pipeline p = {.data_dir = ctx->data_dir, .walk = &w, .capqueue = 512};
    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.ready, NULL);
    pthread_cond_init(&p.room, NULL);
    p.queue = tr_xcalloc(p.capqueue, sizeof *p.queue);
    size_t nworkers = (size_t)jobs < w.n ? (size_t)jobs : (w.n ? w.n : 1);
    pthread_t *threads = tr_xcalloc(nworkers, sizeof *threads);
    p.workers_left = nworkers;
    for (size_t i = 0; i < nworkers; i++)
        if (pthread_create(&threads[i], NULL, stage_worker, &p) != 0)
            tr_die("cannot start a worker thread");

    /* Group commit: one transaction and two filesystem flushes per batch,
     * bounded in files, bytes and time so that acknowledgement stays prompt. */
    enum { BATCH_FILES = 512, BATCH_SECONDS = 1 };
    const uint64_t batch_bytes = 256u << 20;
    staged_item *batch = tr_xcalloc(BATCH_FILES, sizeof *batch);
    size_t nbatch = 0;
    uint64_t bbytes = 0;
    double started = tr_monotonic(), batch_started = started, last_draw = 0;
    add_totals t = {0};
    bool show = ctx->stderr_tty && !quiet;
    pthread_mutex_lock(&p.lock);
    for (;;) {
        bool drained = p.workers_left == 0 && p.nqueue == 0;
        while (p.nqueue > 0 && nbatch < BATCH_FILES) {
            batch[nbatch] = p.queue[--p.nqueue];
            bbytes += batch[nbatch].st.d.size;
            if (nbatch++ == 0)
                batch_started = tr_monotonic();
            pthread_cond_signal(&p.room);
        }
        bool due = nbatch == BATCH_FILES || bbytes >= batch_bytes || (drained && nbatch) ||
                   (nbatch && tr_monotonic() - batch_started >= BATCH_SECONDS);
        if (due) {
            pthread_mutex_unlock(&p.lock);
            commit_batch(s, &w, batch, nbatch, &base, verbose, &t);
            pthread_mutex_lock(&p.lock);
            nbatch = 0;
            bbytes = 0;
        }
        if (show && tr_monotonic() - last_draw > 0.1) {
            add_totals shown = t;
            shown.done_files += p.stage_failed;
            progress(&shown, &w, started, false);
            last_draw = tr_monotonic();
        }
        if (drained && nbatch == 0)
            break;
        if (!due && p.nqueue == 0 && p.workers_left > 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&p.ready, &p.lock, &ts);
        }
    }
    size_t stage_failed = p.stage_failed;
    pthread_mutex_unlock(&p.lock);
    for (size_t i = 0; i < nworkers; i++)
        pthread_join(threads[i], NULL);
    if (show) {
        add_totals shown = t;
        shown.done_files += stage_failed;
        progress(&shown, &w, started, true);
    }

    double el = tr_monotonic() - started;
    char bytes[32];
    human_bytes(t.done_bytes, bytes);
    size_t failed = stage_failed + t.commit_failed + w.failed;
    fprintf(quiet ? stderr : stdout,
            "added %zu new, %zu duplicate%s, %zu failed, %zu skipped; %s in %.2f s (%.1f MB/s)\n",
            t.added, t.duplicates, t.duplicates == 1 ? "" : "s", failed, w.skipped, bytes, el,
            el > 0 ? (double)t.done_bytes / el / 1e6 : 0.0);

    for (size_t i = 0; i < w.n; i++)
        free(w.items[i].path);
    free(w.items);
    free(w.seen);
    free(batch);
    free(p.queue);
    free(threads);
    free(tags);
    pthread_mutex_destroy(&p.lock);
    pthread_cond_destroy(&p.ready);
    pthread_cond_destroy(&p.room);
    tr_store_close(s);
    return failed ? CLI_FAIL : CLI_OK;
}
