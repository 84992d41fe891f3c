/* store: the sample repository. Owns the data directory layout, blobs by
 * sha256, and the SQLite metadata (samples, names, tags, comments).
 *
 * Data directory:  trawl.db (SQLite, WAL)   samples/ab/cd/<sha256> (read-only blobs)
 *                  tmp/ (same filesystem, for write-then-rename)
 *
 * Ingestion is two-phase so that the expensive part runs in parallel and the
 * database write lock is held only briefly:
 *   1. tr_store_stage_*: copy the bytes into tmp/ while hashing, then classify
 *      (libmagic) and fingerprint (imphash) them. Thread-safe; one analyzer per
 *      thread.
 *   2. tr_store_commit: one transaction for a batch of staged samples; blobs are
 *      made durable and renamed into place before the rows commit. A sample is
 *      acknowledged once this returns 0. A crash leaves at worst unreferenced
 *      blobs (reported by fsck, adopted by fsck --repair), never a row without
 *      its blob.
 *
 * A tr_store handle is used by one thread at a time; open one per thread. */
#ifndef TRAWL_STORE_H
#define TRAWL_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "analysis/analysis.h"
#include "core/core.h"

typedef struct tr_store tr_store;

enum {
    TR_STORE_READONLY = 1,    /* never writes; the directory must exist */
    TR_STORE_CREATE = 2,      /* create the directory and database if missing */
};

int tr_store_open(const char *dir, int flags, tr_store **out, tr_error *err);
void tr_store_close(tr_store *s);
const char *tr_store_dir(const tr_store *s);
/* samples/ab/cd/<sha256> under the data directory; caller frees. */
char *tr_store_blob_path(const tr_store *s, const char *sha256);

/* ---- the sample model --------------------------------------------------- */
typedef struct tr_comment {
    int64_t id;
    int64_t created;
    char *author;
    char *text;
} tr_comment;

typedef struct tr_sample {
    int64_t id;               /* dense, never reused: the index document id */
    tr_digests d;             /* md5 sha1 sha256 sha3_384 ssdeep tlsh size */
    char imphash[TR_MD5_HEX]; /* empty unless a PE with imports */
    char *mime;               /* "application/x-dosexec" */
    char *file_type;          /* short: exe dll elf pdf zip doc ... */
    char *magic;              /* libmagic's description */
    int64_t first_seen, last_seen;
    char *signature, *reporter, *origin, *delivery_method;
    char **names;
    size_t n_names;
    char **tags;
    size_t n_tags;
    tr_comment *comments;
    size_t n_comments;
    tr_bin_info *bin;         /* the analysis module's results; NULL: not analysed yet */
} tr_sample;

void tr_sample_free(tr_sample *s);

/* ---- analysis (per thread) ---------------------------------------------- */
typedef struct tr_analyzer tr_analyzer;
int tr_analyzer_new(tr_analyzer **out, tr_error *err);
void tr_analyzer_free(tr_analyzer *a);

typedef struct tr_analysis {
    char mime[128];
    char file_type[16];
    char magic[2048];         /* file(1)'s description; Exif and ROM ones pass 255 bytes */
    char imphash[TR_MD5_HEX];
} tr_analysis;
/* Classifies bytes in memory (libmagic + short type + imphash for PE). */
void tr_analyze_buffer(tr_analyzer *a, const unsigned char *p, size_t n, tr_analysis *out);
/* The same, and every analysis of the analysis module (tr_bin_analyze) from
 * the same libyara parse of a PE; caller frees with tr_bin_info_free. fd:
 * the file holding the bytes p (mapped), or -1: libmagic answers as file(1)
 * only when it can read the file itself (ELF details, a gzip's trailer). */
tr_bin_info *tr_analyze_all(tr_analyzer *a, int fd, const unsigned char *p, size_t n,
                            tr_analysis *out);

/* The short file type from libmagic's MIME type and description, and the
 * first bytes of the file; "unknown" when nothing fits. */
const char *tr_filetype_classify(const char *mime, const char *description,
                                 const unsigned char *head, size_t n);

/* For plain-text verdicts, the script type its file name says (a .js, .vbs,
 * .ps1, .bat, .hta ... delivered as text); otherwise type unchanged. */
const char *tr_filetype_refine(const char *type, const char *file_name);

/* imphash as pefile and YARA's pe.imphash() compute it; "" if not a PE with
 * imports. Needs tr_analyzer's libyara rules. */
void tr_imphash(tr_analyzer *a, const unsigned char *p, size_t n, char out[TR_MD5_HEX]);

/* ---- ingestion ---------------------------------------------------------- */
typedef struct tr_staged {
    char tmp_path[4096];
    tr_digests d;
    tr_analysis a;
    /* The analysis module's results, made while staging (in parallel
     * workers, from the pages the digests just read); owned by the staged
     * file: the commit or tr_store_unstage frees it. */
    tr_bin_info *bin;
} tr_staged;

/* Copies fd to a new file under tmp/ while hashing, then analyzes it.
 * expected_size >= 0 rejects a short or long read (a truncated upload). */
int tr_store_stage_fd(tr_store *s, tr_analyzer *a, int fd, int64_t expected_size,
                      tr_staged *out, tr_error *err);
int tr_store_stage_path(tr_store *s, tr_analyzer *a, const char *path,
                        tr_staged *out, tr_error *err);
int tr_store_stage_buffer(tr_store *s, tr_analyzer *a, const void *p, size_t n,
                          tr_staged *out, tr_error *err);
/* Streaming form, for bytes that arrive in pieces (an HTTP upload): */
typedef struct tr_stage_writer tr_stage_writer;
int tr_stage_begin(tr_store *s, tr_stage_writer **out, tr_error *err);
int tr_stage_write(tr_stage_writer *w, const void *p, size_t n, tr_error *err);
/* Completes and analyzes; expected_size >= 0 rejects a short or long input.
 * Frees w whatever the outcome. */
int tr_stage_finish(tr_stage_writer *w, tr_analyzer *a, int64_t expected_size, tr_staged *out,
                    tr_error *err);
void tr_stage_abort(tr_stage_writer *w);
uint64_t tr_stage_size(const tr_stage_writer *w);

/* Drops a staged file that will not be committed. */
void tr_store_unstage(tr_staged *st);

typedef struct tr_ingest_meta {
    const char *file_name;    /* basename it arrived under, may be NULL */
    const char *const *tags;
    size_t n_tags;
    const char *signature, *reporter, *origin, *delivery_method;
    const char *comment;      /* stored with reporter as author */
} tr_ingest_meta;

typedef struct tr_ingest_result {
    int64_t id;
    bool is_new;              /* false: a duplicate, metadata merged */
} tr_ingest_result;

/* Commits n staged samples in one transaction (see top). The staged temp
 * files are consumed whatever the outcome. */
int tr_store_commit(tr_store *s, tr_staged *staged, const tr_ingest_meta *meta, size_t n,
                    tr_ingest_result *results, tr_error *err);

/* ---- queries ------------------------------------------------------------ */
/* hash: md5, sha1 or sha256 (any case). Returns 1 found, 0 not found, -1 error. */
int tr_store_get(tr_store *s, const char *hash, tr_sample **out, tr_error *err);
int tr_store_get_by_id(tr_store *s, int64_t id, tr_sample **out, tr_error *err);

typedef enum tr_sample_sort {
    TR_SORT_NEWEST,           /* by id: the order samples arrived */
    TR_SORT_FIRST_SEEN,
    TR_SORT_LAST_SEEN,
    TR_SORT_SIZE,
    TR_SORT_TYPE,
    TR_SORT_SIGNATURE,
    TR_SORT_REPORTER,
} tr_sample_sort;

typedef struct tr_sample_filter {
    const char *tag, *signature, *file_type, *imphash, *tlsh;
    const char *reporter;     /* exact, case-insensitive */
    const char *name;         /* a substring of one of its file names, case-insensitive */
    /* 8 to 64 hex digits: samples whose sha256, sha1 or md5 starts with them */
    const char *hash_prefix;
    int64_t first_seen_after; /* unix time; 0: any */
    int64_t first_seen_before; /* unix time, exclusive; 0: any */
    tr_sample_sort sort;
    bool ascending;           /* default: descending (newest, biggest, Z first) */
    int64_t limit;            /* 0: no limit */
    int64_t offset;
} tr_sample_filter;
/* Newest first unless f->sort says otherwise. Caller frees with
 * tr_sample_list_free. */
int tr_store_list(tr_store *s, const tr_sample_filter *f, tr_sample ***out, size_t *n,
                  tr_error *err);
/* How many samples the filter matches, ignoring its limit and offset. */
int tr_store_count(tr_store *s, const tr_sample_filter *f, int64_t *total, tr_error *err);
/* "size" -> TR_SORT_SIZE and so on ("newest", "first_seen", "last_seen",
 * "size", "type", "signature", "reporter"); false for other names. */
bool tr_sample_sort_parse(const char *name, tr_sample_sort *out);
void tr_sample_list_free(tr_sample **list, size_t n);

/* What duplicate uploads changed on a sample (a signature replaced), oldest
 * first. Caller frees with tr_sample_changes_free. */
typedef struct tr_sample_change {
    int64_t time;
    char *field, *old_value, *new_value;
    char *reporter;           /* who uploaded the duplicate; may be NULL */
} tr_sample_change;
int tr_store_sample_changes(tr_store *s, int64_t id, tr_sample_change **out, size_t *n,
                            tr_error *err);
void tr_sample_changes_free(tr_sample_change *c, size_t n);

/* What a scan needs of many samples at once, fetched in one pass. */
typedef struct tr_sample_brief {
    int64_t id;
    char sha256[TR_SHA256_HEX];
    uint64_t size;
    char *file_type, *reporter;
    char *name;               /* the first of its names by sort order, or NULL */
} tr_sample_brief;
/* Briefs of the given ids (ascending, duplicates allowed), in id order; ids
 * no longer stored are left out. Caller frees with tr_sample_briefs_free. */
int tr_store_briefs(tr_store *s, const int64_t *ids, size_t n, tr_sample_brief **out,
                    size_t *nout, tr_error *err);
void tr_sample_briefs_free(tr_sample_brief *b, size_t n);

typedef struct tr_store_stats {
    int64_t samples;
    int64_t bytes;
} tr_store_stats;
int tr_store_stats_get(tr_store *s, tr_store_stats *out, tr_error *err);

/* ---- changes ------------------------------------------------------------ */
/* Removes the row, then the blob. Returns 1 removed, 0 not found, -1 error.
 * removed_id receives the document id to tombstone in the index. */
int tr_store_remove(tr_store *s, const char *hash, int64_t *removed_id, tr_error *err);
int tr_store_add_tags(tr_store *s, int64_t id, const char *const *tags, size_t n, tr_error *err);
/* 1 removed, 0 the sample had no such tag, -1 error. */
int tr_store_remove_tag(tr_store *s, int64_t id, const char *tag, tr_error *err);
int tr_store_add_comment(tr_store *s, int64_t id, const char *author, const char *text,
                         tr_error *err);

/* ---- indexing bookkeeping ---------------------------------------------- */
/* Samples whose bytes are not yet known to be in the index, id > after,
 * ascending; at most max. */
int tr_store_unindexed(tr_store *s, int64_t after, size_t max, int64_t *ids,
                       char (*sha256)[TR_SHA256_HEX], uint64_t *sizes, size_t *n, tr_error *err);
int tr_store_unindexed_count(tr_store *s, int64_t *count, uint64_t *bytes, tr_error *err);
int tr_store_mark_indexed(tr_store *s, const int64_t *ids, size_t n, tr_error *err);
/* Every sample id, ascending (for reconciling with the index). Caller frees. */
int tr_store_all_ids(tr_store *s, int64_t **ids, size_t *n, tr_error *err);

/* ---- similarity-hash columns (for the similar module's indexes) --------- */
typedef struct tr_hash_value {
    int64_t id;
    char value[TR_SSDEEP_MAX];   /* the column's text: tlsh, ssdeep, telfhash ... */
} tr_hash_value;
/* 1 when the store keeps this per-sample hash (a samples column, or one of
 * the binary analysis': telfhash, gimphash, dhash_icon), 0 not, -1 error. */
int tr_store_has_column(tr_store *s, const char *column);
/* (id, value) of every sample with id > after and a non-empty value in
 * column, ascending. Caller frees *out. */
int tr_store_hash_values(tr_store *s, const char *column, int64_t after, tr_hash_value **out,
                         size_t *n, tr_error *err);
/* The value of column for sample id into out: 1 found (possibly ""), 0 no
 * such sample, -1 error. */
int tr_store_hash_value_of(tr_store *s, const char *column, int64_t id, char *out, size_t outsz,
                           tr_error *err);
/* The largest id with a non-empty value in column (0: none) and how many
 * samples have one: together they tell whether an index is current. */
int tr_store_hash_value_stats(tr_store *s, const char *column, int64_t *max_id, int64_t *count,
                              tr_error *err);

/* ---- consistency -------------------------------------------------------- */
typedef enum tr_fsck_kind {
    TR_FSCK_MISSING_BLOB,     /* a row without its blob: data lost (error) */
    TR_FSCK_CORRUPT_BLOB,     /* blob bytes do not hash to its name (error) */
    TR_FSCK_UNREFERENCED,     /* a blob without a row: left by an interrupted add */
    TR_FSCK_STRAY_FILE,       /* something else under samples/ or a dead temp file */
} tr_fsck_kind;

typedef struct tr_fsck_report {
    int64_t rows_checked, blobs_checked;
    int64_t missing, corrupt, unreferenced, stray;
    int64_t repaired;
} tr_fsck_report;

typedef void (*tr_fsck_cb)(void *arg, tr_fsck_kind kind, const char *what, const char *action);
/* repair: drop rows whose blob is missing or corrupt (reported as lost),
 * adopt verified unreferenced blobs as samples, delete stray files. */
int tr_store_fsck(tr_store *s, bool repair, tr_fsck_cb cb, void *arg, tr_fsck_report *rep,
                  tr_error *err);

/* ---- MalwareBazaar's per-sample fields (bazaar.c) ----------------------- */
typedef struct tr_sample_bazaar {
    bool anonymous;           /* its first upload asked not to name the uploader */
    char *owner;              /* that uploader: may update it, never shown */
    int64_t downloads, uploads;   /* through the HTTP APIs */
    char *references;         /* JSON object text (urlhaus, any_run ... links), or NULL */
    char *context;            /* JSON object text (dropped_by_md5 ...), or NULL */
} tr_sample_bazaar;
/* The defaults (zero, NULL) when nothing was recorded. */
int tr_store_bazaar_get(tr_store *s, int64_t id, tr_sample_bazaar *out, tr_error *err);
void tr_sample_bazaar_clear(tr_sample_bazaar *b);
/* One more download (download true) or upload. */
int tr_store_bazaar_count(tr_store *s, int64_t id, bool download, tr_error *err);
/* Sets what is given: anonymous < 0 and NULL strings leave a field as it is. */
int tr_store_bazaar_set(tr_store *s, int64_t id, int anonymous, const char *owner,
                        const char *references, const char *context, tr_error *err);
/* ---- binary analysis (analysis module results, analysis_rows.c) ------- */
/* Computed for each new sample at commit; samples stored before, or by an
 * older TR_ANALYSIS_VERSION, are analysed by tr_store_analyze_backfill. */
typedef enum tr_analysis_key {
    TR_AKEY_TELFHASH,
    TR_AKEY_GIMPHASH,
    TR_AKEY_DHASH_ICON,
    TR_AKEY_CLAMAV,           /* a ClamAV signature name, exact */
    TR_AKEY_SERIAL,           /* certificate serial, lowercase hex */
    TR_AKEY_ISSUER_CN,        /* case-insensitive */
    TR_AKEY_SUBJECT_CN,
} tr_analysis_key;
/* Ids of samples with that value, newest first, at most limit (<= 0: all). */
int tr_store_analysis_ids(tr_store *s, tr_analysis_key key, const char *value, int64_t limit,
                          int64_t **ids, size_t *n, tr_error *err);

/* The certificates that signed stored samples, newest first. */
typedef struct tr_cscb_entry {
    tr_cert cert;
    int64_t first_seen;       /* when the first sample it signed was stored */
    char *signature;          /* that sample's malware family, or NULL */
} tr_cscb_entry;
int tr_store_cscb(tr_store *s, tr_cscb_entry **out, size_t *n, tr_error *err);
void tr_cscb_free(tr_cscb_entry *e, size_t n);

/* Called per sample: error NULL when analysed, else why it was skipped. */
typedef void (*tr_analyze_cb)(void *arg, const char *sha256, const char *error);
/* Analyses the samples without results of the current version, and those
 * never scanned by ClamAV when a database is configured (redo: every
 * sample). Their type columns (mime, magic, file_type) are derived again
 * with this version's libmagic use: stores filled by an older trawl answer
 * as file(1) does afterwards. *done: how many were analysed; *retyped
 * (may be NULL): how many had a type column changed. */
int tr_store_analyze_backfill(tr_store *s, bool redo, tr_analyze_cb cb, void *arg,
                              int64_t *done, int64_t *retyped, tr_error *err);

/* JSON of a sample with MalwareBazaar's field names (jansson json_t *). */
struct json_t;
struct json_t *tr_sample_to_json(const tr_sample *s);

/* A sample as MalwareBazaar's API answers it (get_info when full, else the
 * shorter record of its lists). Every Bazaar field is present: the ones
 * trawl does not compute answer Bazaar's null or empty value, from one
 * table in sample_json.c. extra (borrowed, may be NULL) is an object of
 * fields computed outside the store, each replacing its default: yara_rules
 * (live-rule hits), clamav (goes into intelligence), code_sign, telfhash,
 * gimphash, dhash_icon, file_information, ole_information, trid ... */
struct json_t *tr_sample_to_bazaar_json(const tr_sample *s, const tr_sample_bazaar *bz,
                                        struct json_t *extra, bool full);

/* ---- exports (export.c) ------------------------------------------------- */
typedef enum tr_export_format {
    TR_EXPORT_CSV,
    TR_EXPORT_JSON,
    TR_EXPORT_SHA256,
    TR_EXPORT_MD5,
    TR_EXPORT_SHA1,
} tr_export_format;
/* "csv" "json" "sha256" "md5" "sha1" -> the format; -1 when unknown. */
int tr_export_format_parse(const char *name);
/* Appends the export to out (NUL-terminated): the samples first seen in
 * the 48 hours before now when recent, else all, newest first. */
int tr_store_export(tr_store *s, tr_export_format f, bool recent, int64_t now, tr_buf *out,
                    tr_error *err);
/* The export as Bazaar publishes it (GET /export/... and `trawl export`):
 * the full CSV and hash lists zipped, one file inside ("full.csv",
 * "full_sha256.txt", "full_md5.txt", "full_sha1.txt"); recent exports and
 * the JSON as is. *zipped says which. */
int tr_store_export_published(tr_store *s, tr_export_format f, bool recent, int64_t now,
                              tr_buf *out, bool *zipped, tr_error *err);
/* The daily batch: the samples first seen on the UTC day that starts at
 * day_start, as zip entries named as Bazaar names them (sha256.filetype).
 * Free with tr_store_zip_entries_free. */
int tr_store_day_zip(tr_store *s, int64_t day_start, tr_zip_entry **out, size_t *n,
                     tr_error *err);
void tr_store_zip_entries_free(tr_zip_entry *e, size_t n);

#endif
