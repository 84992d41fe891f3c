/* similar: the nearest stored samples by a similarity hash, from indexes
 * kept beside the store (<data>/similar/), not from a scan of every row.
 *
 *   tlsh, telfhash  a neighbour graph over the TLSH distance, entered through
 *                   a vantage-point tree (telfhash is a TLSH of ELF symbols:
 *                   same distance, same index code);
 *   ssdeep          the 7-grams of each signature, per block size, as the
 *                   candidate filter, then libfuzzy's fuzzy_compare;
 *   imphash         equality, from the store's own SQL index.
 *
 * Each index file covers the samples up to the id it records; newer samples
 * (the tail) are compared one by one, and removed ones are dropped from the
 * answers, so answers are current at any time. tr_similar_refresh rebuilds
 * the files that are no longer current (ingest calls it after adding or
 * removing samples); tr_similar_rebuild rebuilds on demand. */
#ifndef TRAWL_SIMILAR_H
#define TRAWL_SIMILAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "store/store.h"

typedef struct tr_similar_hit {
    int64_t id;
    /* tlsh/telfhash: TLSH distance (0 = same, lower is closer); imphash: 0;
     * ssdeep: fuzzy_compare's score (100 = same, higher is closer). */
    int distance;
} tr_similar_hit;

/* The kinds by name: "tlsh", "ssdeep", "imphash", "telfhash". */
size_t tr_similar_kind_count(void);
const char *tr_similar_kind_name(size_t i);
/* The samples column it reads ("tlsh"...). */
const char *tr_similar_kind_column(size_t i);
/* -1 when unknown. */
int tr_similar_kind_find(const char *name);
/* true: the number is a score where more is closer (ssdeep). */
bool tr_similar_kind_is_score(size_t kind);

/* The nearest max samples to the stored sample id by kind, nearest first,
 * itself left out; a sample without that hash has none (n = 0). */
int tr_similar_query(tr_store *s, size_t kind, int64_t id, size_t max, tr_similar_hit **out,
                     size_t *n, tr_error *err);

/* Rebuilds one kind's index (kind < count) or all (kind = SIZE_MAX); the
 * store must be writable. Written to a temporary file, flushed, renamed. */
int tr_similar_rebuild(tr_store *s, size_t kind, tr_error *err);
/* Rebuilds the indexes that are missing, damaged, or behind the store by
 * more than a short tail (or an eighth of their entries removed). */
int tr_similar_refresh(tr_store *s, tr_error *err);

/* The answer of the API and the CLI's --json (jansson json_t *):
 * {"sha256_hash", "by", "value", "metric": "distance"|"score",
 *  "results": [{"sha256_hash", "file_name", "file_type", "file_size",
 *               <by>: its value, <metric>: n}, ...]}; NULL with err. */
struct json_t;
struct json_t *tr_similar_answer(tr_store *s, size_t kind, const tr_sample *x, size_t max,
                                 tr_error *err);

/* ---- one index in memory (tests and bench/similar.sh) ------------------ */
typedef struct tr_simix tr_simix;
/* Opens kind's index file (building it in memory when absent) plus the
 * tail of samples added since. */
int tr_simix_open(tr_store *s, size_t kind, tr_simix **out, tr_error *err);
/* An index over given values (no store, no file): for tests. */
tr_simix *tr_simix_from_values(size_t kind, const tr_hash_value *v, size_t n);
void tr_simix_close(tr_simix *ix);
size_t tr_simix_size(const tr_simix *ix);
/* The value of entry i (for drawing queries). */
int64_t tr_simix_entry(tr_simix *ix, size_t i, const char **value);
/* k nearest to value through the index, leaving out exclude_id (0: none).
 * Returns the number found (<= k); hits sorted nearest first, ties by id. */
size_t tr_simix_knn(tr_simix *ix, const char *value, size_t k, int64_t exclude_id,
                    tr_similar_hit *hits);
/* The same by comparing value with every entry: the reference. */
size_t tr_simix_brute(tr_simix *ix, const char *value, size_t k, int64_t exclude_id,
                      tr_similar_hit *hits);
/* How far the TLSH tree search looks past the triangle-inequality bound
 * (TLSH is not quite a metric): more is slower and finds more. */
void tr_simix_set_slack(tr_simix *ix, int slack);
/* TLSH answers come from a neighbour graph walked with a pool of this many
 * candidates (more: slower, finds more); 0 uses the VP-tree alone. */
void tr_simix_set_effort(tr_simix *ix, int effort);
/* Distance computations the last query made (work done, for the bench). */
size_t tr_simix_last_work(const tr_simix *ix);

/* ---- TLSH distance ----------------------------------------------------- */
/* A TLSH digest ("T1" + 70 hex, or the 70 hex alone) decoded for fast
 * comparison; the distance is libtlsh's totalDiff with the length term. */
typedef struct tr_tlsh_code {
    uint8_t checksum, lvalue, q1, q2;
    uint8_t body[32];
} tr_tlsh_code;
int tr_tlsh_decode(const char *hex, tr_tlsh_code *out);   /* 0 or -1 */
int tr_tlsh_distance(const tr_tlsh_code *a, const tr_tlsh_code *b);

#endif
