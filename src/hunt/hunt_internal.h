/* hunt internals shared by the job runner, livehunt and the verifier. */
#ifndef TRAWL_HUNT_INTERNAL_H
#define TRAWL_HUNT_INTERNAL_H

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"
#include "hunt/hunt.h"
#include "hunt/prefilter.h"
#include "rules/rules.h"
#include "store/store.h"

/* ---- the verifier: libyara in a forked child ----------------------------
 * libyara 4.2.3 can be killed by a rule (SIGFPE, assert). The parent forks a
 * child that compiles the rules and scans the tasks with a pool of threads
 * (one YR_SCANNER each); matches stream back over a pipe as text lines.
 * Counters and "which task is each thread on" live in a shared anonymous
 * mapping, so the parent can show progress and, if the child dies, name the
 * sample it died on. */

#define HV_MAX_THREADS 64
/* Seconds a cancelled verifier gets to finish its current samples before it
 * is killed. */
#define HV_CANCEL_GRACE 5.0
/* A child that sends nothing and uses no CPU for this long is stuck, not
 * scanning (a scan burns CPU; libyara's own timeout bounds one sample): one
 * forked while another thread of the parent held a lock it then needs (ASan's
 * allocator has no fork handler) waits for ever. It is killed and a new one
 * scans what was not finished, at most HV_STALL_RETRIES times. */
#define HV_STALL_SECS 30
#define HV_STALL_RETRIES 2

typedef struct hv_task {
    int64_t sample_id;
    uint64_t size;
    char *path;                /* blob path */
    char *ext[TR_HUNT_NEXTERNALS];   /* external variable values, same order as tr_hunt_externals */
} hv_task;

typedef struct hv_source {
    const char *name;          /* file name or label; its directory resolves includes */
    const char *text;
    size_t len;
} hv_source;

/* One compiled rule set: loaded from yarc if that works, else compiled from
 * sources (each in its own namespace "0", "1", ...). */
typedef struct hv_group {
    const char *yarc;          /* may be NULL */
    const hv_source *src;
    size_t nsrc;
    const char *save_yarc;     /* when set, the compiled rules are saved there */
} hv_group;

typedef struct hv_shared {
    _Atomic uint64_t next_task;
    _Atomic uint64_t scanned;
    _Atomic uint64_t bytes;
    _Atomic uint64_t ruled_out;        /* tasks the literal pre-check skipped */
    _Atomic int cancel;
    _Atomic int phase;                 /* 0 starting, 1 compiling group, 2 scanning, 3 done */
    _Atomic int group;                 /* group being compiled */
    _Atomic int64_t current[HV_MAX_THREADS];   /* task index + 1, 0 idle */
    _Atomic int restarts;              /* stuck children replaced */
} hv_shared;

/* What the parent hears, one call per event (from the calling thread). */
typedef struct hv_events {
    void *arg;
    /* A rule matched task t in group g; json is the child's record (the
     * object with rule, namespace, tags, meta, strings). */
    void (*on_match)(void *arg, size_t task, size_t group, const char *json);
    /* libyara could not scan task t (timeout, cannot map...). */
    void (*on_scan_error)(void *arg, size_t task, const char *msg);
    /* Called about five times a second while waiting. */
    void (*on_tick)(void *arg);
} hv_events;

typedef struct hv_run {
    const hv_group *groups;
    size_t ngroups;
    const hv_task *tasks;
    size_t ntasks;
    size_t threads;            /* 0: one per core */
    int sample_timeout;        /* seconds per sample, 0: none */
    /* When set, a task it rules out is not given to libyara (prefilter.h). */
    const hunt_prefilter *prefilter;
    hv_shared *sh;             /* from hv_shared_new */
    /* Called (true) just before fork and (false) in the parent just after:
     * a threaded caller keeps its busy allocating threads out of that
     * moment (ASan's allocator is not fork-safe: a child forked while
     * another thread holds its lock hangs on its first malloc). */
    void (*fork_guard)(void *arg, bool before);
    void *fork_guard_arg;
    int stall_secs;            /* 0: HV_STALL_SECS */
} hv_run;

hv_shared *hv_shared_new(void);
void hv_shared_free(hv_shared *sh);

/* Runs the child to completion. Returns 0 when the child finished (also when
 * cancelled), -1 with a message when compiling failed or the child died
 * (naming the sample it was scanning). A task's events arrive together once
 * it is finished. A child stuck without progress for stall_secs is replaced
 * (HV_STALL_RETRIES times) by one that scans only the unfinished tasks;
 * sh->restarts counts them. */
int hv_verify(const hv_run *run, const hv_events *ev, tr_error *err);

void hv_task_free(hv_task *t);

/* ---- the database ------------------------------------------------------- */
int hunt_db_open(const char *data_dir, sqlite3 **out, tr_error *err);
int hunt_db_fail(sqlite3 *db, tr_error *err);     /* tr_fail with sqlite3_errmsg */
/* Jobs left "running" by a dead process become "failed". */
void hunt_db_reap(sqlite3 *db, const char *data_dir);
char *hunt_lock_path(const char *data_dir, int64_t id);

/* ---- helpers -------------------------------------------------------------- */
/* Fills t (path, externals) for a sample. */
void hunt_task_from_sample(const tr_store *s, const tr_sample *smp, hv_task *t);
/* Parses the sources with trawl's parser (the guard in front of libyara). */
/* Parses the sources as one rule set in one namespace (as the yara tool
 * reads several files: globals apply across them), with the hunt externals. Includes are followed only
 * when allow_includes (a local user's files); then, when flat is set, flat[i]
 * receives source i's text with its includes inlined (caller frees). */
int hunt_parse_sources(const hv_source *src, size_t n, bool allow_includes, char **flat,
                       tr_ruleset **rs_out, tr_error *err);

/* tr_live_scan_samples that stops early (between and within rule sets) once
 * *stop is set; NULL: never. */
int hunt_live_scan(tr_store *s, const int64_t *ids, size_t n, _Atomic bool *stop,
                   void (*fork_guard)(void *arg, bool before), void *fork_guard_arg,
                   tr_error *err);

/* Stores one live hit (author, description, reference from the meta). */
void hunt_record_live_hit(sqlite3 *db, const char *ruleset, const char *rule, int64_t sample_id,
                          const char *sha256, json_t *meta);

#endif
