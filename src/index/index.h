/* index: the n-gram index. Extracts grams from sample bytes, stores them in
 * immutable segment files, merges segments, and evaluates a query tree
 * (index/query.h) into sorted candidate sample ids. Knows nothing of YARA.
 *
 * On disk (<data>/index):
 *   MANIFEST        the published state: segment names, tombstoned ids.
 *                   Replaced only by write tmp + fsync + rename + fsync dir.
 *   seg-*.tsg       immutable segments (format in segment.c, docs/index.md).
 *   *.tmp           unpublished work; discarded by recovery.
 *   manifest.lock   flock: held exclusively while a manifest is rewritten.
 *   active.lock     flock: shared by every live writer and compaction,
 *                   taken exclusively (non-blocking) by recovery, so an
 *                   orphan file is only ever deleted when nobody can be
 *                   about to publish it.
 *   compact.lock    flock: one compaction at a time, across processes.
 *
 * Concurrency rules:
 *   - Any number of threads may call tr_index_query/estimate/status/verify on
 *     one tr_index concurrently with writers, deletes and a compaction. Each
 *     call works on one refcounted snapshot (segment set + tombstones) and so
 *     sees a consistent state; segments stay mapped until the last snapshot
 *     using them is released.
 *   - Several writers may run at once (threads or processes): each builds
 *     private temp files and only the publish step is serialised by
 *     manifest.lock. Deletes likewise. A compaction merges the snapshot it
 *     started from and, at publish, keeps whatever was added or deleted while
 *     it ran.
 *   - Other processes' changes are picked up on the next call: every call
 *     stat()s MANIFEST and reloads it when it changed.
 *   - A tr_index_writer belongs to one thread at a time.
 *
 * Crash safety: nothing is visible until the manifest naming it is renamed
 * into place, and everything it names was fsynced before. A SIGKILL at any
 * instant leaves the previous or the new manifest; orphans are swept by the
 * next tr_index_open that finds no live writer. */
#ifndef TRAWL_INDEX_H
#define TRAWL_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "index/query.h"

/* Gram kinds (docs/index.md explains each and the measurements behind it). */
enum {
    TR_GRAM3 = 0,    /* every 3 consecutive bytes, exact, 2^24 keys */
    TR_TEXT4 = 1,    /* 4 consecutive text chars, ASCII case-folded, hashed to 24 bits */
    TR_WIDE4 = 2,    /* 4 text chars as UTF-16LE (c 00 c 00 ...), case-folded, hashed */
    TR_GRAM_KINDS = 3
};
#define TR_KIND_BIT(k) (1u << (k))
#define TR_KINDS_DEFAULT (TR_KIND_BIT(TR_GRAM3) | TR_KIND_BIT(TR_WIDE4))
const char *tr_gram_kind_name(int kind);

typedef struct tr_index_opts {
    uint32_t kinds;            /* gram kinds written into new segments; 0 = default */
    size_t chunk_pairs;        /* writer memory bound: (gram, doc) pairs buffered before a
                                  segment is cut; 0 = default (40M pairs: a page pool of
                                  ~330 MiB, ~800 MiB peak RSS on the benchmark corpus) */
    uint32_t window_budget;    /* max keys one query window may expand to; 0 = 256 */
    uint32_t leaf_budget;      /* max keys one SEQ leaf may expand to; 0 = 2048 */
} tr_index_opts;
#define TR_INDEX_WINDOW_KEYS 256
#define TR_INDEX_LEAF_KEYS 2048

typedef struct tr_index tr_index;
/* dir is created if missing. Recovers from crashes (sweeps unpublished files). */
int tr_index_open(const char *dir, tr_index **out, tr_error *err);
int tr_index_open_opts(const char *dir, const tr_index_opts *opts, tr_index **out, tr_error *err);
void tr_index_close(tr_index *ix);
/* Worker threads of the writers begun on ix from now on: 0 = none (the
 * caller flushes inline), -1 = the default (cores - 1, at most 3). */
void tr_index_set_writer_threads(tr_index *ix, int n);

/* Build new immutable segments from a batch of documents. Each doc id is
 * indexed at most once in the life of the index: commit fails if an added id
 * carries a tombstone (it would stay hidden), and indexing a live id twice
 * yields it once in results but costs space. A writer may cut several
 * segments to bound memory; commit publishes all of them atomically.
 * Close the tr_index only after its writers have committed or aborted. */
typedef struct tr_index_writer tr_index_writer;
int tr_index_writer_begin(tr_index *ix, tr_index_writer **out, tr_error *err);
int tr_index_writer_add(tr_index_writer *w, uint32_t doc_id, const unsigned char *data,
                        size_t len, tr_error *err);
/* Publishes and frees w, also on failure. */
int tr_index_writer_commit(tr_index_writer *w, tr_error *err);
void tr_index_writer_abort(tr_index_writer *w);

/* Tombstone: durable on return; the doc disappears from query results now and
 * from the files at the next compaction. Deleting an unknown id is harmless. */
int tr_index_delete(tr_index *ix, uint32_t doc_id, tr_error *err);
/* Merges every published segment into one, dropping tombstoned docs. Fails
 * with a message if another compaction is running. */
int tr_index_compact(tr_index *ix, tr_error *err);

/* Sorted candidate ids (caller frees *ids), guaranteed to contain every live
 * document matching q. *widened (may be NULL) is set when a SEQ leaf had no
 * usable gram window and was treated as ALL. */
int tr_index_query(tr_index *ix, const tr_query *q, uint32_t **ids, size_t *n, bool *widened,
                   tr_error *err);
/* Index lookups are bounded per query: the keys of all gram windows its
 * leaves expand to may number at most TR_INDEX_QUERY_KEYS, else
 * tr_index_query and tr_index_estimate fail with a message saying so. Memory
 * then stays within tens of MB however a rule is written (a rule of 10,000
 * wildcard hex strings expands to millions of keys). tr_index_query_check
 * applies the same test (with the default budgets) without an index, so a
 * hunt can be refused when it is submitted; *keys gets the count. */
#define TR_INDEX_QUERY_KEYS ((uint64_t)1 << 24)
int tr_index_query_check(const tr_query *q, uint64_t *keys, tr_error *err);

/* Upper-bound-ish estimate of the candidate count, from list lengths only. */
int tr_index_estimate(tr_index *ix, const tr_query *q, uint64_t *estimate, tr_error *err);

typedef struct tr_index_status {
    size_t segments;
    uint64_t docs;                          /* indexed docs, tombstoned included */
    uint64_t tombstones;
    uint64_t bytes_total;                   /* all segment files */
    uint64_t kind_bytes[TR_GRAM_KINDS];     /* posting lists + key directory per kind */
    uint64_t kind_keys[TR_GRAM_KINDS];      /* distinct keys per kind, summed over segments */
    uint64_t postings[TR_GRAM_KINDS];       /* (doc, gram) pairs per kind */
    uint32_t kinds;                         /* kinds present in every segment */
} tr_index_status;
int tr_index_get_status(tr_index *ix, tr_index_status *st, tr_error *err);

/* Codec comparison over every posting list of the current snapshot: bytes the
 * lists would take under each codec (for bench/README.md). */
typedef struct tr_index_codec_report {
    uint64_t lists, postings;
    uint64_t varint;        /* ursadb's: delta + 7-bit varint, no skips */
    uint64_t pack;          /* delta bit-packed blocks of 128 with skip table */
    uint64_t bitmap;        /* plain bitmap over [min, max] */
    uint64_t roaring;       /* CRoaring portable format after run optimisation */
    uint64_t adaptive;      /* what trawl stores: per list min(varint<=64, pack, bitmap) */
    uint64_t elias_fano;    /* reference floor: per list min(Elias-Fano, bitmap over the docs) */
} tr_index_codec_report;
int tr_index_codec_compare(tr_index *ix, tr_index_codec_report *r, tr_error *err);

/* Verify: every gram of the doc's bytes is present under its id.
 * fetch maps a doc id to its bytes (the callee owns/unmaps nothing: the
 * verifier calls tr_map_close on *out when done). Returns 0 when the doc is
 * consistent, -1 with a message otherwise (missing gram, doc not indexed,
 * fetch failure). */
typedef int (*tr_index_fetch_fn)(void *arg, uint32_t id, tr_map *out, tr_error *err);
int tr_index_verify_doc(tr_index *ix, uint32_t doc_id, tr_index_fetch_fn fetch, void *arg,
                        tr_error *err);
/* Lists live (not tombstoned) doc ids, sorted; caller frees. */
int tr_index_doc_ids(tr_index *ix, uint32_t **ids, size_t *n, tr_error *err);

#endif
