/* ingest: how samples enter trawl. Walks paths, stages files in parallel
 * (store), commits them in batches, then brings the n-gram index up to date
 * with every stored sample (index). The CLI's `add` and the server's upload
 * both go through here; later, live hunts hook in after the commit. */
#ifndef TRAWL_INGEST_H
#define TRAWL_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "store/store.h"

typedef struct tr_ingest_progress {
    size_t files_total, files_done;         /* done = committed or failed */
    uint64_t bytes_total, bytes_done;
    size_t added, duplicates, failed, skipped;
    size_t index_docs_total, index_docs_done;
    uint64_t index_bytes_total, index_bytes_done;
    bool indexing;                           /* in the index phase */
} tr_ingest_progress;

typedef struct tr_ingest_config {
    const char *data_dir;
    size_t jobs;                   /* staging and indexing threads; 0 = one per core */
    tr_ingest_meta meta;           /* applied to every file; file_name is set per file */
    bool skip_index;               /* store only; a later add or `index update` catches up */
    bool defer_live;               /* tr_ingest_commit leaves live scans to the caller
                                    * (the server queues them: tr_live_queue_push) */
    /* Callbacks (all optional), called from the thread that called ingest. */
    void *arg;
    /* A committed sample: acknowledged, it survives any crash from now on. */
    void (*on_commit)(void *arg, const char *sha256, const char *path, bool is_new);
    /* A file that failed (failure=true) or was skipped, with the reason. */
    void (*on_message)(void *arg, bool failure, const char *msg);
    void (*on_progress)(void *arg, const tr_ingest_progress *p);   /* about 10 times a second */
    /* Asked between samples while indexing: true publishes what is done
     * and returns early (the rest waits for the next update). */
    bool (*should_stop)(void *arg);
} tr_ingest_config;

/* Adds files and directories (recursively; symbolic links are followed but
 * a directory is entered once, so link loops end; non-regular files are
 * skipped). Returns -1 only when the store or index could not be used at
 * all; per-file failures are counted in out->failed. */
int tr_ingest_paths(const tr_ingest_config *cfg, char *const *paths, size_t n,
                    tr_ingest_progress *out, tr_error *err);

/* Commits staged samples (tr_store_commit) and scans the new ones against
 * the enabled live rule sets (unless cfg->defer_live). Live-hunt trouble is reported through
 * on_message and never fails the commit. For callers that stage themselves
 * (the server's uploads). */
int tr_ingest_commit(tr_store *s, tr_staged *staged, const tr_ingest_meta *meta, size_t n,
                     tr_ingest_result *results, const tr_ingest_config *cfg, tr_error *err);

/* Indexes every stored sample the index does not hold yet (after a crash, a
 * --no-index add, or an upload). Serialised across processes by a lock file;
 * safe to run at any time. */
int tr_ingest_update_index(const tr_ingest_config *cfg, tr_ingest_progress *out, tr_error *err);

/* Cross-checks index and store: for `sample` random indexed samples (0:
 * all), every gram of the bytes must be in the index under the sample's id;
 * every sample marked indexed must be a live document and every live
 * document a stored sample. Each problem is reported through on_problem. */
typedef struct tr_index_check {
    size_t checked, bad_docs, missing_in_index, stale_in_index;
} tr_index_check;
int tr_ingest_verify_index(const char *data_dir, size_t sample,
                           void (*on_problem)(void *arg, const char *msg), void *arg,
                           tr_index_check *out, tr_error *err);

/* Segments beyond which an index update also compacts (merges) the index. */
#define TR_INGEST_COMPACT_SEGMENTS 16

/* Removes a sample: its row and blob from the store, then a tombstone in the
 * index so that hunts stop returning it at once. Returns 1 removed, 0 no such
 * sample, -1 error. */
int tr_ingest_remove(const char *data_dir, const char *hash, int64_t *removed_id, tr_error *err);

#endif
