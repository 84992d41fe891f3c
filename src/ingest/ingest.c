/* Walking paths, parallel staging, group commit. */
#include <stdarg.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hunt/hunt.h"
#include "ingest/ingest.h"

/* ---- walking ------------------------------------------------------------ */

typedef struct file_item {
    char *path;
    uint64_t size;
} file_item;

typedef struct walk_state {
    const tr_ingest_config *cfg;
    file_item *items;
    size_t n, cap;
    uint64_t bytes;
    size_t skipped, failed;
    /* (dev, inode) of every directory entered: a symlink cycle is entered once. */
    struct {
        dev_t dev;
        ino_t ino;
    } *seen;
    size_t nseen, capseen;
} walk_state;

static void message(const tr_ingest_config *cfg, bool failure, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void message(const tr_ingest_config *cfg, bool failure, const char *fmt, ...)
{
    if (!cfg->on_message)
        return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    cfg->on_message(cfg->arg, failure, buf);
}

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

static void walk_path(walk_state *w, const char *path, bool top);

static void walk_dir(walk_state *w, const char *path)
{
    char **names = NULL;
    size_t n = 0;
    if (tr_list_dir(path, &names, &n) != 0) {
        message(w->cfg, true, "cannot read directory %s: %s", path, strerror(errno));
        w->failed++;
        return;
    }
    size_t plen = strlen(path);
    bool slash = plen && path[plen - 1] == '/';
    for (size_t i = 0; i < n; i++) {
        char *child = tr_xasprintf(slash ? "%s%s" : "%s/%s", path, names[i]);
        walk_path(w, child, false);
        free(child);
        free(names[i]);
    }
    free(names);
}

static void walk_path(walk_state *w, const char *path, bool top)
{
    struct stat lst, st;
    if (lstat(path, &lst) != 0) {
        message(w->cfg, true, "cannot access %s: %s", path, strerror(errno));
        w->failed++;
        return;
    }
    st = lst;
    if (S_ISLNK(lst.st_mode) && stat(path, &st) != 0) {
        message(w->cfg, false, "skipping %s: broken symbolic link", path);
        w->skipped++;
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        if (dir_seen(w, &st)) {
            if (!top)
                message(w->cfg, false,
                        "skipping %s: directory already visited (symbolic link loop)", path);
            w->skipped++;
            return;
        }
        walk_dir(w, path);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        message(w->cfg, false, "skipping %s: not a regular file", path);
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

typedef struct failure {
    char msg[sizeof(((tr_error *)0)->msg)];
} failure;

typedef struct pipeline {
    const tr_ingest_config *cfg;
    walk_state *walk;
    atomic_size_t next;       /* next item to stage */
    pthread_mutex_t lock;
    pthread_cond_t ready, room;
    staged_item *queue;       /* staged, waiting for the committer */
    size_t nqueue, capqueue;
    failure *failures;        /* reported by the committing thread */
    size_t nfailures, capfailures;
    size_t workers_left;
} pipeline;

static void note_failure(pipeline *p, const char *msg)
{
    if (p->nfailures == p->capfailures) {
        p->capfailures = p->capfailures ? p->capfailures * 2 : 16;
        p->failures = tr_xrealloc(p->failures, p->capfailures * sizeof *p->failures);
    }
    snprintf(p->failures[p->nfailures++].msg, sizeof p->failures[0].msg, "%s", msg);
}

static void *stage_worker(void *arg)
{
    pipeline *p = arg;
    tr_error err;
    tr_store *s = NULL;
    tr_analyzer *an = NULL;
    if (tr_store_open(p->cfg->data_dir, 0, &s, &err) != 0 || tr_analyzer_new(&an, &err) != 0) {
        pthread_mutex_lock(&p->lock);
        note_failure(p, err.msg);
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
            note_failure(p, err.msg);
        } else {
            while (p->nqueue == p->capqueue)
                pthread_cond_wait(&p->room, &p->lock);
            p->queue[p->nqueue++] = item;
        }
        pthread_cond_signal(&p->ready);
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

static char *basename_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return tr_xstrdup(slash ? slash + 1 : path);
}

static void commit_batch(const tr_ingest_config *cfg, tr_store *s, walk_state *w,
                         staged_item *batch, size_t n, tr_ingest_progress *prog)
{
    tr_staged *st = tr_xcalloc(n, sizeof *st);
    tr_ingest_meta *meta = tr_xcalloc(n, sizeof *meta);
    tr_ingest_result *res = tr_xcalloc(n, sizeof *res);
    char **names = tr_xcalloc(n, sizeof *names);
    /* The commit consumes the staged files; keep what the report needs. */
    char (*sha)[TR_SHA256_HEX] = tr_xcalloc(n, sizeof *sha);
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        st[i] = batch[i].st;
        meta[i] = cfg->meta;
        names[i] = basename_of(w->items[batch[i].index].path);
        meta[i].file_name = names[i];
        memcpy(sha[i], batch[i].st.d.sha256, TR_SHA256_HEX);
        bytes += batch[i].st.d.size;
    }
    tr_error err;
    if (tr_ingest_commit(s, st, meta, n, res, cfg, &err) != 0) {
        message(cfg, true, "%s", err.msg);
        prog->failed += n;
    } else {
        for (size_t i = 0; i < n; i++) {
            res[i].is_new ? prog->added++ : prog->duplicates++;
            if (cfg->on_commit)
                cfg->on_commit(cfg->arg, sha[i], w->items[batch[i].index].path, res[i].is_new);
        }
    }
    prog->files_done += n;
    prog->bytes_done += bytes;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(sha);
    free(st);
    free(meta);
    free(res);
}

int tr_ingest_commit(tr_store *s, tr_staged *staged, const tr_ingest_meta *meta, size_t n,
                     tr_ingest_result *results, const tr_ingest_config *cfg, tr_error *err)
{
    if (tr_store_commit(s, staged, meta, n, results, err) != 0)
        return -1;
    if (cfg && cfg->defer_live)
        return 0;
    /* Live hunts: the new samples meet the enabled live rule sets. */
    int64_t *new_ids = tr_xmalloc((n ? n : 1) * sizeof *new_ids);
    size_t n_new = 0;
    for (size_t i = 0; i < n; i++)
        if (results[i].is_new)
            new_ids[n_new++] = results[i].id;
    tr_error lerr;
    if (n_new && tr_live_scan_samples(s, new_ids, n_new, &lerr) != 0 && cfg)
        message(cfg, false, "livehunt: %s", lerr.msg);
    free(new_ids);
    return 0;
}

static void wait_a_little(pthread_cond_t *cond, pthread_mutex_t *lock)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(cond, lock, &ts);
}

/* Group commit: one transaction and two filesystem flushes per batch, bounded
 * in files, bytes and time so that acknowledgement stays prompt. */
enum { BATCH_FILES = 512 };
#define BATCH_BYTES ((uint64_t)256 << 20)
#define BATCH_SECONDS 1.0

static void run_pipeline(const tr_ingest_config *cfg, tr_store *s, walk_state *w,
                         tr_ingest_progress *prog)
{
    pipeline p = {.cfg = cfg, .walk = w, .capqueue = 512};
    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.ready, NULL);
    pthread_cond_init(&p.room, NULL);
    p.queue = tr_xcalloc(p.capqueue, sizeof *p.queue);
    size_t jobs = cfg->jobs ? cfg->jobs : (size_t)sysconf(_SC_NPROCESSORS_ONLN);
    if (jobs < 1)
        jobs = 1;
    size_t nworkers = jobs < w->n ? jobs : (w->n ? w->n : 1);
    pthread_t *threads = tr_xcalloc(nworkers, sizeof *threads);
    p.workers_left = nworkers;
    for (size_t i = 0; i < nworkers; i++)
        if (pthread_create(&threads[i], NULL, stage_worker, &p) != 0)
            tr_die("cannot start a worker thread");

    staged_item *batch = tr_xcalloc(BATCH_FILES, sizeof *batch);
    size_t nbatch = 0, reported = 0;
    uint64_t bbytes = 0;
    double batch_started = 0, last_report = 0;
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
        /* Messages and progress leave the lock: callbacks may be slow. */
        size_t nfail = p.nfailures;
        failure *fails = NULL;
        if (nfail > reported) {
            fails = tr_xmalloc((nfail - reported) * sizeof *fails);
            memcpy(fails, p.failures + reported, (nfail - reported) * sizeof *fails);
        }
        bool due = nbatch == BATCH_FILES || bbytes >= BATCH_BYTES || (drained && nbatch) ||
                   (nbatch && tr_monotonic() - batch_started >= BATCH_SECONDS);
        pthread_mutex_unlock(&p.lock);
        for (size_t i = reported; i < nfail; i++)
            message(cfg, true, "%s", fails[i - reported].msg);
        free(fails);
        prog->failed += nfail - reported;
        prog->files_done += nfail - reported;
        reported = nfail;
        if (due) {
            commit_batch(cfg, s, w, batch, nbatch, prog);
            nbatch = 0;
            bbytes = 0;
        }
        if (cfg->on_progress && tr_monotonic() - last_report > 0.1) {
            cfg->on_progress(cfg->arg, prog);
            last_report = tr_monotonic();
        }
        pthread_mutex_lock(&p.lock);
        if (drained && nbatch == 0 && p.nfailures == reported)
            break;
        if (!due && p.nqueue == 0 && p.workers_left > 0)
            wait_a_little(&p.ready, &p.lock);
    }
    pthread_mutex_unlock(&p.lock);
    for (size_t i = 0; i < nworkers; i++)
        pthread_join(threads[i], NULL);
    if (cfg->on_progress)
        cfg->on_progress(cfg->arg, prog);
    free(batch);
    free(p.queue);
    free(p.failures);
    free(threads);
    pthread_mutex_destroy(&p.lock);
    pthread_cond_destroy(&p.ready);
    pthread_cond_destroy(&p.room);
}

int tr_ingest_paths(const tr_ingest_config *cfg, char *const *paths, size_t n,
                    tr_ingest_progress *out, tr_error *err)
{
    memset(out, 0, sizeof *out);
    tr_store *s = NULL;
    if (tr_store_open(cfg->data_dir, TR_STORE_CREATE, &s, err) != 0)
        return -1;
    walk_state w = {.cfg = cfg};
    for (size_t i = 0; i < n; i++)
        walk_path(&w, paths[i], true);
    out->files_total = w.n;
    out->bytes_total = w.bytes;
    out->skipped = w.skipped;
    out->failed = w.failed;
    if (w.n)
        run_pipeline(cfg, s, &w, out);
    tr_store_close(s);
    for (size_t i = 0; i < w.n; i++)
        free(w.items[i].path);
    free(w.items);
    free(w.seen);
    if (cfg->skip_index)
        return 0;
    return tr_ingest_update_index(cfg, out, err);
}
