/* hunt: retrohunts and livehunts. A retrohunt plans the rules (rules), fetches
 * candidates from the n-gram index (index), and verifies every candidate with
 * libyara; a livehunt scans newly added samples against saved rule sets.
 *
 * libyara runs in a forked verifier process (a pool of threads, one scanner
 * each, samples read by mmap), so a rule that crashes libyara 4.2.3 fails the
 * hunt with a message naming the sample, and never takes the caller down.
 *
 * Every retrohunt is a job persisted in <data>/trawl.db (tables hunts,
 * hunt_results): rule text, status, counters, timings, results. A job
 * interrupted by a crash is marked failed by the next process that looks.
 * Livehunt keeps live_rulesets and live_hits there, and the compiled rules in
 * <data>/rules/NAME.yarc.
 *
 * Threading: a tr_hunt is run by one thread (tr_hunt_run); any other thread
 * may read its progress and cancel it at the same time. tr_hunt_cancel is
 * async-signal-safe (a SIGINT handler may call it). */
#ifndef TRAWL_HUNT_H
#define TRAWL_HUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct json_t;
typedef struct tr_store tr_store;

/* External variables every hunt declares and fills per sample:
 * filename  the first name the sample arrived under (else its sha256)
 * filepath  the same name: the store keeps base names, not the original paths
 * extension filename's extension, lowercase, without the dot ("" if none)
 * filetype  trawl's short file type (exe, dll, elf, pdf ...)
 * owner     the sample's reporter ("" if none) */
#define TR_HUNT_NEXTERNALS 5
extern const char *const tr_hunt_externals[TR_HUNT_NEXTERNALS];

/* ---- retrohunt jobs -------------------------------------------------------- */
typedef struct tr_hunt_source {
    const char *name;          /* a file path or label: its directory resolves includes */
    const char *text;
    size_t len;
} tr_hunt_source;

typedef struct tr_hunt_params {
    const tr_hunt_source *sources;
    size_t nsources;
    const char *tag;           /* only samples carrying this tag; NULL: all */
    int64_t limit;             /* stop after this many matches; 0: no limit */
    size_t threads;            /* verifier threads; 0: one per core */
    int sample_timeout;        /* libyara seconds per sample; 0: 60 */
    double time_limit;         /* seconds for the whole hunt; 0: none */
    const char *live_ruleset;  /* also record the hits as live hits of this rule set */
    /* The sources are a local user's files: includes are followed (and inlined
     * into the stored text). Never for rule text from the network. */
    bool allow_includes;
    const char *owner;         /* who submitted it (an API key's name); NULL: unknown */
} tr_hunt_params;

typedef enum tr_hunt_status {
    TR_HUNT_QUEUED,
    TR_HUNT_RUNNING,
    TR_HUNT_DONE,
    TR_HUNT_CANCELLED,         /* SIGINT, cancel, limit or time limit: results kept */
    TR_HUNT_FAILED,
} tr_hunt_status;
const char *tr_hunt_status_name(tr_hunt_status s);

/* Parses and plans the rules (trawl's parser: text it rejects never reaches
 * libyara) and persists a queued job. Returns its id in *job_id. */
int tr_hunt_submit(const char *data_dir, const tr_hunt_params *p, int64_t *job_id,
                   tr_error *err);

typedef struct tr_hunt tr_hunt;

typedef struct tr_hunt_progress {
    uint64_t samples;          /* in the store */
    uint64_t sample_bytes;     /* their total size: what a full scan reads */
    uint64_t candidates;       /* files to verify */
    uint64_t candidate_bytes;
    uint64_t scanned, scanned_bytes;
    uint64_t matches;          /* (rule, sample) pairs already committed: a reader that
                                * sees this count can fetch as many result rows */
    uint64_t errors;           /* samples libyara could not scan (timeouts) */
    double elapsed;            /* seconds since the scan started */
    bool scanning;             /* candidates are known, verification runs */
} tr_hunt_progress;

/* One match as it is found, with the JSON tr_hunt_match_json gives. */
typedef struct tr_hunt_match {
    int64_t sample_id;
    const char *sha256;
    const char *rule;
    const char *source;        /* the rule file it came from */
    const struct json_t *json; /* rule, tags, meta, sample hashes, names, strings */
} tr_hunt_match;

typedef struct tr_hunt_callbacks {
    void *arg;
    /* Before the scan: a rule that cannot be accelerated, and similar news. */
    void (*on_notice)(void *arg, const char *msg);
    void (*on_match)(void *arg, const tr_hunt_match *m);
    void (*on_progress)(void *arg, const tr_hunt_progress *p);   /* ~5 times a second */
} tr_hunt_callbacks;

/* Opens a queued job for running. */
int tr_hunt_open(const char *data_dir, int64_t job_id, tr_hunt **out, tr_error *err);
void tr_hunt_set_callbacks(tr_hunt *h, const tr_hunt_callbacks *cb);
/* Overrides the job's verifier threads (a server shares its workers). */
void tr_hunt_set_threads(tr_hunt *h, size_t threads);
/* Called with true just before the verifier fork and false after it (see
 * tr_live_queue_start): a threaded caller keeps allocation-heavy threads
 * out of that moment. */
void tr_hunt_set_fork_guard(tr_hunt *h, void (*fork_guard)(void *arg, bool before), void *arg);
/* Runs the job to its end: candidates, verification, results persisted as
 * they arrive. Returns 0 when the job ended done or cancelled, -1 when it
 * failed (the job row says why, and so does err). */
int tr_hunt_run(tr_hunt *h, tr_error *err);
void tr_hunt_cancel(tr_hunt *h);
/* Cancels because the process is shutting down: the job ends "cancelled"
 * with that reason, its results so far kept. */
void tr_hunt_interrupt(tr_hunt *h);
void tr_hunt_get_progress(tr_hunt *h, tr_hunt_progress *out);
int64_t tr_hunt_id(const tr_hunt *h);
void tr_hunt_free(tr_hunt *h);

/* ---- persisted jobs -------------------------------------------------------- */
typedef struct tr_hunt_job {
    int64_t id;
    tr_hunt_status status;
    char *rules_name;          /* source names, comma separated */
    char *tag;                 /* may be NULL */
    int64_t limit;
    int64_t created, started, finished;     /* unix seconds; 0 unknown */
    double seconds;            /* scan wall time */
    uint64_t samples, candidates, candidate_bytes, scanned, scanned_bytes, matches, errors;
    uint64_t full_scan_rules;  /* rules that could not be accelerated */
    char *error;               /* NULL unless failed */
    char *owner;               /* the submitter's key name; NULL if unknown */
} tr_hunt_job;
void tr_hunt_job_clear(tr_hunt_job *j);

/* Newest first; also marks jobs orphaned by a dead process as failed. */
int tr_hunt_list(const char *data_dir, tr_hunt_job **jobs, size_t *n, tr_error *err);
void tr_hunt_list_free(tr_hunt_job *jobs, size_t n);
/* Returns 1 found, 0 not found, -1 error. */
int tr_hunt_get(const char *data_dir, int64_t id, tr_hunt_job *job, tr_error *err);
/* The rule text of a job as a JSON array of {name, text} (caller decrefs). */
struct json_t *tr_hunt_rules_json(const char *data_dir, int64_t id, tr_error *err);
/* Results of a job in the order found: each a JSON object as on_match gives
 * it (caller decrefs the array). */
int tr_hunt_results(const char *data_dir, int64_t id, struct json_t **out, tr_error *err);
/* A page of results (offset, limit; limit 0: all), and their total. */
int tr_hunt_results_page(const char *data_dir, int64_t id, int64_t offset, int64_t limit,
                         struct json_t **out, int64_t *total, tr_error *err);
/* A page of a job's matched samples, in the order first matched, each
 * {"sha256", "match_count", "rules": [name, ...], "matches": [result, ...]}
 * with its results in the order found, at most per_sample of them (0: all;
 * a big hunt's page then stays small). rule and sha256 (NULL: any) keep only
 * that rule's results, that sample's. *total: distinct samples. */
typedef struct tr_hunt_sample_page {
    const char *rule, *sha256;
    int64_t offset, limit;      /* limit 0: all */
    int64_t per_sample;
} tr_hunt_sample_page;
int tr_hunt_results_by_sample(const char *data_dir, int64_t id, const tr_hunt_sample_page *pg,
                              struct json_t **out, int64_t *total, tr_error *err);
/* The retrohunts that matched a sample, newest first, one entry per (hunt,
 * rule): [{"hunt", "hunt_name", "rule", "meta", "strings"}] (count of the
 * strings matched), at most limit (0: all). */
int tr_hunt_matches_for_sample(const char *data_dir, int64_t sample_id, int64_t limit,
                               struct json_t **out, tr_error *err);
/* Per rule: [{"rule", "matches", "samples"}], most matches first. */
int tr_hunt_rule_counts(const char *data_dir, int64_t id, struct json_t **out, tr_error *err);
/* The distinct sha256 of a job's matches, in the order found (caller frees
 * each and the array). */
int tr_hunt_matched_samples(const char *data_dir, int64_t id, char ***sha256, size_t *n,
                            tr_error *err);
/* A queued job that should not run: 1 cancelled, 0 not queued, -1 error. */
int tr_hunt_cancel_queued(const char *data_dir, int64_t id, tr_error *err);
/* Deletes a job that is not running and its results: 1 deleted, 0 no such
 * job, -1 error (also when it runs). */
int tr_hunt_delete(const char *data_dir, int64_t id, tr_error *err);
/* The job as JSON (status, counters, timings). */
struct json_t *tr_hunt_job_json(const tr_hunt_job *j);

/* ---- livehunt -------------------------------------------------------------- */
typedef struct tr_live_ruleset {
    char *name;
    bool enabled;
    int64_t created;
    size_t rules;              /* non-private rules */
    uint64_t hits;
    /* The last time its verifier failed (libyara crashed on a sample, or the
     * compiled rules would not load): 0 and NULL when it never did. */
    int64_t failed_at;
    char *failure;
} tr_live_ruleset;

/* Parses, compiles (in the verifier process) and saves <data>/rules/NAME.yarc.
 * Replaces a rule set of the same name only when replace is set. Includes
 * only with allow_includes (a local user's file), inlined into the stored text. */
int tr_live_add(const char *data_dir, const char *name, const char *source_name,
                const char *text, size_t len, bool allow_includes, bool replace,
                tr_error *err);
/* Returns 1 removed, 0 not found, -1 error. Its hits go with it. */
int tr_live_remove(const char *data_dir, const char *name, tr_error *err);
/* Returns 1 changed, 0 not found, -1 error. */
int tr_live_enable(const char *data_dir, const char *name, bool enabled, tr_error *err);
int tr_live_list(const char *data_dir, tr_live_ruleset **out, size_t *n, tr_error *err);
void tr_live_list_free(tr_live_ruleset *l, size_t n);
/* The stored text of a rule set (caller frees); 1 found, 0 not, -1 error. */
int tr_live_get_text(const char *data_dir, const char *name, char **text, tr_error *err);

/* Scans samples (just committed by ingest) against every enabled live rule
 * set and stores the hits. Cheap when no rule set is enabled. Each rule set
 * runs in a verifier process of its own: one that crashes libyara has the
 * failure recorded on it (tr_live_ruleset.failure) and logged, and the
 * others still scan. Returns -1 only when the samples could not be read. */
int tr_live_scan_samples(tr_store *s, const int64_t *ids, size_t n, tr_error *err);

/* Live scans off the caller's thread (the server's uploads): a bounded
 * in-memory queue worked by one background thread. When the queue is full
 * the samples are recorded as pending in <data>/trawl.db instead, and the
 * thread catches up with them; it also catches up with pending samples left
 * by a stopped or crashed server when it starts. */
typedef struct tr_live_queue tr_live_queue;
#define TR_LIVE_QUEUE_DEFAULT 1024
/* fork_guard (may be NULL) is called with true just before each verifier
 * fork and false after it, from the queue's thread: a threaded caller uses
 * it to keep its allocation-heavy threads (the indexer) out of that moment,
 * since ASan's allocator is not fork-safe. */
int tr_live_queue_start(const char *data_dir, size_t capacity,
                        void (*fork_guard)(void *arg, bool before), void *fork_guard_arg,
                        tr_live_queue **out, tr_error *err);
/* Never waits for a scan; records the samples as pending when full. */
void tr_live_queue_push(tr_live_queue *q, const int64_t *ids, size_t n);
/* Samples queued or pending and not scanned yet (the one being scanned too). */
uint64_t tr_live_queue_backlog(tr_live_queue *q);
/* Stops after the current scan; what is still queued is recorded pending. */
void tr_live_queue_stop(tr_live_queue *q);
/* Records samples for a later catch-up (the same table the queue spills to). */
int tr_live_mark_pending(const char *data_dir, const int64_t *ids, size_t n, tr_error *err);

typedef struct tr_live_hit {
    int64_t sample_id;
    char sha256[TR_SHA256_HEX];
    char *ruleset, *rule, *author, *description, *reference;
    int64_t created;
} tr_live_hit;
void tr_live_hits_free(tr_live_hit *h, size_t n);
/* Hits of one rule set a page at a time, newest first, with the set's total
 * hits; limit 0: all. */
int tr_live_hits_page(const char *data_dir, const char *name, int64_t offset, int64_t limit,
                      tr_live_hit **out, size_t *n, int64_t *total, tr_error *err);

/* For `trawl info`: the live hits of one sample, oldest first. */
int tr_hunt_live_hits_for_sample(const char *data_dir, int64_t sample_id, tr_live_hit **out,
                                 size_t *n, tr_error *err);
/* The same as MalwareBazaar's yara_rules field: an array of {rule_name,
 * author, description, reference, ruleset}, or JSON null when there are none
 * (caller decrefs; NULL on error with err filled). */
struct json_t *tr_hunt_live_hits_json(const char *data_dir, int64_t sample_id, tr_error *err);
/* Hits of one rule set, newest first; limit 0: all. */
int tr_live_hits_for_ruleset(const char *data_dir, const char *name, int64_t limit,
                             tr_live_hit **out, size_t *n, tr_error *err);
/* Hits of one rule name in any rule set, newest first; limit 0: all. */
int tr_live_hits_for_rule(const char *data_dir, const char *rule, int64_t limit,
                          tr_live_hit **out, size_t *n, tr_error *err);
/* Hits recorded at or after since (unix seconds), newest first; limit 0: all. */
int tr_live_hits_since(const char *data_dir, int64_t since, int64_t limit, tr_live_hit **out,
                       size_t *n, tr_error *err);

#endif
