/* kblink: trawl's own data as STIX 2.1 in the knowledge base, and STIX
 * indicators looked up against that data.
 *
 * Links are made by an idempotent sync, not by hooks in ingest, hunt and
 * noise: each run derives the objects every stored sample, signature, live
 * rule set, finished hunt and noise address stands for, compares them with
 * what the knowledge base holds, and stores only the differences (a new
 * version, or for an SCO, which has no versions, a replacement). What no
 * longer exists is revoked (SDOs, SROs) or marked "x_trawl_removed" (SCOs,
 * which other objects' refs still name). A sync therefore repairs whatever
 * happened in between (a hand deletion, a crash, data changed by another
 * process) and running it twice changes nothing. To cost what changed rather
 * than what is stored, a sync derives only what its change log names (see
 * tr_kblink_sync_mode). docs/kb.md. */
#ifndef TRAWL_KBLINK_H
#define TRAWL_KBLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"

typedef struct tr_kblink_stats {
    size_t objects;           /* derived from trawl's data this run */
    size_t unchanged;         /* already held as they are */
    size_t added;             /* new objects */
    size_t updated;           /* new versions, or replaced SCOs */
    size_t retired;           /* revoked SDOs/SROs and marked SCOs */
    bool full;                /* a full pass (else incremental) */
} tr_kblink_stats;

/* Incremental by default: triggers on the tables kblink reads log what
 * changed (kblink_changes), and a sync derives only that (the changed
 * samples and their families; the indicators when rules, hunts or samples
 * changed; the changed noise addresses, a bounded batch at a time) and
 * consumes the log in the commits that record its work. A full pass derives everything, compares it
 * all and so repairs anything: the first sync, a sync after a change log
 * trigger went missing, after a hand edit of a linked object or a new
 * malware/intrusion set in the knowledge base, once TR_KBLINK_FULL_EVERY
 * seconds after the last one, or when asked for. */
typedef enum { TR_KBLINK_AUTO, TR_KBLINK_FULL } tr_kblink_mode;
#define TR_KBLINK_FULL_EVERY (24 * 3600)
int tr_kblink_sync_mode(const char *data_dir, tr_kblink_mode mode, tr_kblink_stats *st,
                        tr_error *err);
/* One sync (TR_KBLINK_AUTO) of the data directory's samples, hunts, live
 * rules and noise records into its knowledge base. */
int tr_kblink_sync(const char *data_dir, tr_kblink_stats *st, tr_error *err);

/* Which noise addresses become objects: the tagged ones and those
 * classified malicious or benign (the default, all = false), or every
 * address (all = true). set: NULL reads the scope into *all, else "all" or
 * "classified" sets it; a change makes the next sync a full pass (which
 * adds or retires the addresses concerned). */
int tr_kblink_noise_scope(const char *data_dir, const char *set, bool *all, tr_error *err);

/* Keeping the links current without hooks: a watch tells whether anything
 * in trawl.db was committed since it last looked (by any process), so a
 * server syncs only after a change. Its own sync's commits count as changes
 * too: sync again until a sync stores nothing (it then commits nothing). */
typedef struct tr_kblink_watch tr_kblink_watch;
int tr_kblink_watch_open(const char *data_dir, tr_kblink_watch **out, tr_error *err);
/* 1 changed (always, the first time), 0 not, -1 error. */
int tr_kblink_watch_poll(tr_kblink_watch *w, tr_error *err);
void tr_kblink_watch_close(tr_kblink_watch *w);

/* The trawl identity every linked SDO names in created_by_ref. */
#define TR_KBLINK_IDENTITY "identity--0f3b7a8e-6d4c-5b1a-9e2f-7c6d5e4f3a21"

/* Looks a STIX pattern up against what trawl holds: the samples whose file
 * SCO and the noise addresses whose ipv4-addr/ipv6-addr SCO the pattern
 * matches (candidates from its equality and ISSUBSET terms, each confirmed
 * by the pattern matcher). *out: {"samples":[{sha256,name,file_id}],
 * "ips":[{ip,classification}], "terms":N}. A pattern with no usable term is
 * refused: it would mean reading everything. */
int tr_kblink_match_pattern(const char *data_dir, const char *pattern, json_t **out,
                            tr_error *err);

#endif
