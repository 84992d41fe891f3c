/* Bringing the index up to date with the store. The store's `indexed` flag
 * is set only after the index published the sample, and the index is asked
 * which ids it already holds, so a crash anywhere in between neither loses a
 * sample nor indexes one twice. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "index/index.h"
#include "ingest/ingest.h"
#include "ingest/ingest_internal.h"
#include "similar/similar.h"

/* One index commit per this much input: bounds the work a crash can lose
 * and keeps the store's bookkeeping close behind the index. */
#define COMMIT_BYTES ((uint64_t)1 << 30)
#define PAGE 1024

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct pending {
    int64_t *ids;
    size_t n, cap;
} pending;

static void pending_add(pending *p, int64_t id)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 1024;
        p->ids = tr_xrealloc(p->ids, p->cap * sizeof *p->ids);
    }
    p->ids[p->n++] = id;
}

static int publish(tr_index_writer **w, tr_store *s, pending *p, tr_error *err)
{
    if (*w) {
        int rc = tr_index_writer_commit(*w, err);
        *w = NULL;
        if (rc != 0)
            return -1;
    }
    if (tr_store_mark_indexed(s, p->ids, p->n, err) != 0)
        return -1;
    p->n = 0;
    return 0;
}

int ingest_open_index(const char *data_dir, tr_index **ix, tr_error *err)
{
    char *dir = tr_xasprintf("%s/index", data_dir);
    int rc = tr_index_open(dir, ix, err);
    free(dir);
    return rc;
}

/* One writer for every core: it extracts on this thread and sorts, encodes
 * and writes segments on its own worker threads (src/index/index.c), so the
 * documents keep one ordinal sequence (neighbouring samples, similar grams:
 * smaller posting lists than documents interleaved between writers) and
 * the writer's memory bound is the only one. */
int tr_ingest_update_index(const tr_ingest_config *cfg, tr_ingest_progress *out, tr_error *err)
{
    tr_ingest_progress local = {0};
    tr_ingest_progress *prog = out ? out : &local;
    tr_store *s = NULL;
    tr_index *ix = NULL;
    if (tr_store_open(cfg->data_dir, TR_STORE_CREATE, &s, err) != 0)
        return -1;
    /* Two updaters must not both pick the same unindexed sample. */
    char *lockpath = tr_xasprintf("%s/index-update.lock", cfg->data_dir);
    int lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(lockpath);
    if (lock < 0 || flock(lock, LOCK_EX) != 0) {
        tr_fail_errno(err, "cannot lock %s/index-update.lock", cfg->data_dir);
        if (lock >= 0)
            close(lock);
        tr_store_close(s);
        return -1;
    }
    int rc = ingest_open_index(cfg->data_dir, &ix, err);
    /* jobs bounds the threads: the caller plus jobs - 1 workers. */
    if (rc == 0 && cfg->jobs)
        tr_index_set_writer_threads(ix, (int)(cfg->jobs > 4 ? 3 : cfg->jobs - 1));
    uint32_t *have = NULL;
    size_t nhave = 0;
    if (rc == 0)
        rc = tr_index_doc_ids(ix, &have, &nhave, err);
    int64_t count = 0;
    uint64_t bytes = 0;
    if (rc == 0)
        rc = tr_store_unindexed_count(s, &count, &bytes, err);
    prog->indexing = true;
    prog->index_docs_total = (size_t)count;
    prog->index_bytes_total = bytes;
    prog->index_docs_done = 0;
    prog->index_bytes_done = 0;

    tr_index_writer *w = NULL;
    pending marked = {0};
    uint64_t since_commit = 0;
    int64_t after = 0;
    int64_t ids[PAGE];
    char (*sha)[TR_SHA256_HEX] = tr_xcalloc(PAGE, sizeof *sha);
    uint64_t sizes[PAGE];
    bool stopped = false;
    while (rc == 0 && !stopped) {
        size_t n = 0;
        if (tr_store_unindexed(s, after, PAGE, ids, sha, sizes, &n, err) != 0) {
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        after = ids[n - 1];
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (cfg->should_stop && cfg->should_stop(cfg->arg)) {
                stopped = true;
                break;
            }
            if (ids[i] <= 0 || ids[i] > (int64_t)UINT32_MAX) {
                rc = tr_fail(err, "sample id %lld does not fit the index's 32-bit ids",
                             (long long)ids[i]);
                break;
            }
            uint32_t id = (uint32_t)ids[i];
            if (!bsearch(&id, have, nhave, sizeof *have, cmp_u32)) {
                char *path = tr_store_blob_path(s, sha[i]);
                tr_map m;
                tr_error ferr;
                int mrc = tr_map_open(&m, path, &ferr);
                free(path);
                if (mrc != 0) {
                    /* Removed meanwhile, or lost: fsck's business, not a
                     * reason to stop indexing the rest. */
                    if (cfg->on_message)
                        cfg->on_message(cfg->arg, true, ferr.msg);
                    continue;
                }
                if (!w && tr_index_writer_begin(ix, &w, err) != 0)
                    rc = -1;
                if (rc == 0 && tr_index_writer_add(w, id, m.data, m.len, err) != 0)
                    rc = -1;
                since_commit += m.len;
                tr_map_close(&m);
                if (rc != 0)
                    break;
            }
            /* Either indexed now or before a crash: marked once published. */
            pending_add(&marked, ids[i]);
            prog->index_docs_done++;
            prog->index_bytes_done += sizes[i];
            if (since_commit >= COMMIT_BYTES) {
                rc = publish(&w, s, &marked, err);
                since_commit = 0;
            }
        }
        if (cfg->on_progress)
            cfg->on_progress(cfg->arg, prog);
    }
    /* Publish what is whole: everything added when no add failed. A failed
     * writer is dropped; its samples stay unindexed for the next run. */
    if (rc == 0) {
        rc = publish(&w, s, &marked, err);
    } else if (w) {
        tr_index_writer_abort(w);
        w = NULL;
    }
    free(marked.ids);
    /* Merge policy: many small segments slow every query down; past a
     * threshold, merge them (queries keep working meanwhile). */
    tr_index_status ist;
    bool stopping = cfg->should_stop && cfg->should_stop(cfg->arg);
    if (rc == 0 && !stopping && tr_index_get_status(ix, &ist, err) == 0 &&
        ist.segments >= TR_INGEST_COMPACT_SEGMENTS) {
        tr_error cerr;
        if (tr_index_compact(ix, &cerr) != 0 && cfg->on_message)
            cfg->on_message(cfg->arg, false, cerr.msg);
    }
    /* The similarity indexes follow the store under the same lock; their
     * trouble never fails the update (queries then compare the tail). */
    tr_error serr;
    if (rc == 0 && !stopping && tr_similar_refresh(s, &serr) != 0 && cfg->on_message)
        cfg->on_message(cfg->arg, false, serr.msg);
    if (cfg->on_progress)
        cfg->on_progress(cfg->arg, prog);
    free(sha);
    free(have);
    tr_index_close(ix);
    close(lock);
    tr_store_close(s);
    return rc;
}

int tr_ingest_remove(const char *data_dir, const char *hash, int64_t *removed_id, tr_error *err)
{
    tr_store *s = NULL;
    if (tr_store_open(data_dir, 0, &s, err) != 0)
        return -1;
    int64_t id = 0;
    int rc = tr_store_remove(s, hash, &id, err);
    tr_store_close(s);
    if (rc != 1)
        return rc;
    if (removed_id)
        *removed_id = id;
    /* The row is gone; a crash before the tombstone leaves an index entry
     * whose sample no longer exists, which hunts skip when they cannot read
     * the blob. */
    tr_index *ix = NULL;
    if (ingest_open_index(data_dir, &ix, err) != 0)
        return -1;
    rc = tr_index_delete(ix, (uint32_t)id, err);
    tr_index_close(ix);
    return rc == 0 ? 1 : -1;
}

/* ---- verification ------------------------------------------------------- */

typedef struct verify_ctx {
    tr_store *s;
} verify_ctx;

static int fetch_blob(void *arg, uint32_t id, tr_map *out, tr_error *err)
{
    verify_ctx *v = arg;
    tr_sample *x = NULL;
    int found = tr_store_get_by_id(v->s, id, &x, err);
    if (found <= 0)
        return found < 0 ? -1 : tr_fail(err, "sample %u is not in the store", id);
    char *path = tr_store_blob_path(v->s, x->d.sha256);
    int rc = tr_map_open(out, path, err);
    free(path);
    tr_sample_free(x);
    return rc;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int tr_ingest_verify_index(const char *data_dir, size_t sample,
                           void (*on_problem)(void *arg, const char *msg), void *arg,
                           tr_index_check *out, tr_error *err)
{
    memset(out, 0, sizeof *out);
    tr_store *s = NULL;
    tr_index *ix = NULL;
    if (tr_store_open(data_dir, TR_STORE_READONLY, &s, err) != 0)
        return -1;
    int rc = ingest_open_index(data_dir, &ix, err);
    uint32_t *docs = NULL;
    size_t ndocs = 0;
    int64_t *ids = NULL;
    size_t nids = 0;
    if (rc == 0)
        rc = tr_index_doc_ids(ix, &docs, &ndocs, err);
    if (rc == 0)
        rc = tr_store_all_ids(s, &ids, &nids, err);
    char msg[1400];
    /* Both directions of the id sets. */
    for (size_t i = 0; rc == 0 && i < ndocs; i++) {
        int64_t id = docs[i];
        if (!bsearch(&id, ids, nids, sizeof *ids, cmp_i64)) {
            out->stale_in_index++;
            snprintf(msg, sizeof msg, "document %u is in the index but not in the store", docs[i]);
            if (on_problem)
                on_problem(arg, msg);
        }
    }
    /* Samples not waiting to be indexed must be documents. */
    pending unindexed = {0};
    int64_t after = 0;
    int64_t page[1024];
    char (*sha)[TR_SHA256_HEX] = tr_xcalloc(1024, sizeof *sha);
    uint64_t sizes[1024];
    for (;;) {
        size_t n = 0;
        if (rc != 0 || (rc = tr_store_unindexed(s, after, 1024, page, sha, sizes, &n, err)) != 0 ||
            n == 0)
            break;
        for (size_t i = 0; i < n; i++)
            pending_add(&unindexed, page[i]);
        after = page[n - 1];
    }
    free(sha);
    for (size_t i = 0; rc == 0 && i < nids; i++) {
        uint32_t id = (uint32_t)ids[i];
        if (bsearch(&id, docs, ndocs, sizeof *docs, cmp_u32) ||
            bsearch(&ids[i], unindexed.ids, unindexed.n, sizeof *unindexed.ids, cmp_i64))
            continue;
        out->missing_in_index++;
        snprintf(msg, sizeof msg, "sample %lld is marked indexed but is not in the index",
                 (long long)ids[i]);
        if (on_problem)
            on_problem(arg, msg);
    }
    free(unindexed.ids);

    /* Grams of a sample of documents (a partial Fisher-Yates shuffle). */
    size_t want = sample && sample < ndocs ? sample : ndocs;
    uint64_t x = (uint64_t)tr_now_unix() * 0x9E3779B97F4A7C15ull | 1;
    verify_ctx v = {s};
    for (size_t i = 0; rc == 0 && i < want; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t j = i + (size_t)(x % (ndocs - i));
        uint32_t t = docs[i];
        docs[i] = docs[j];
        docs[j] = t;
        int64_t id = docs[i];
        if (!bsearch(&id, ids, nids, sizeof *ids, cmp_i64))
            continue;                  /* stale: reported above */
        tr_error derr;
        out->checked++;
        if (tr_index_verify_doc(ix, docs[i], fetch_blob, &v, &derr) != 0) {
            out->bad_docs++;
            if (on_problem)
                on_problem(arg, derr.msg);
        }
    }
    free(docs);
    free(ids);
    tr_index_close(ix);
    tr_store_close(s);
    return rc;
}
