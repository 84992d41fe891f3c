/* core: errors, logging, checked memory, file I/O and hashing helpers.
 * Knows nothing about any feature; every other module may use it. */
#ifndef TRAWL_CORE_H
#define TRAWL_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <stdio.h>

/* ---- errors ----------------------------------------------------------- */
/* A failing call fills a tr_error with one human sentence and returns -1. */
typedef struct tr_error {
    char msg[1024];
} tr_error;

#if defined(__GNUC__)
#define TR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define TR_NORETURN __attribute__((noreturn))
#else
#define TR_PRINTF(a, b)
#define TR_NORETURN
#endif

int tr_fail(tr_error *err, const char *fmt, ...) TR_PRINTF(2, 3);
/* Prepends "prefix: " to the message (truncating the end if needed). */
void tr_error_prefix(tr_error *err, const char *prefix);
/* tr_fail with ": strerror(errno)" appended. */
int tr_fail_errno(tr_error *err, const char *fmt, ...) TR_PRINTF(2, 3);

/* ---- logging (stderr, thread-safe) -------------------------------------- */
typedef enum { TR_LOG_DEBUG, TR_LOG_INFO, TR_LOG_WARN, TR_LOG_ERROR } tr_log_level;
void tr_log_set_level(tr_log_level level);
void tr_log(tr_log_level level, const char *fmt, ...) TR_PRINTF(2, 3);

/* ---- memory: allocation failure ends the process with a message --------- */
void *tr_xmalloc(size_t n);
void *tr_xcalloc(size_t count, size_t size);
void *tr_xrealloc(void *p, size_t n);
char *tr_xstrdup(const char *s);
char *tr_xasprintf(const char *fmt, ...) TR_PRINTF(1, 2);
TR_NORETURN void tr_die(const char *fmt, ...) TR_PRINTF(1, 2);

/* A growable byte buffer. */
typedef struct tr_buf {
    char *data;
    size_t len, cap;
} tr_buf;
void tr_buf_append(tr_buf *b, const void *p, size_t n);
void tr_buf_printf(tr_buf *b, const char *fmt, ...) TR_PRINTF(2, 3);
void tr_buf_free(tr_buf *b);

/* ---- files -------------------------------------------------------------- */
int tr_mkdir_p(const char *path, int mode, tr_error *err);
int tr_fsync_path(const char *path, tr_error *err);   /* file or directory */
int tr_write_all(int fd, const void *p, size_t n);     /* 0 or -1 with errno */
/* The entries of a directory but "." and "..", unsorted: 0, or -1 with errno
 * when it cannot be opened. Caller frees each name and the array. */
int tr_list_dir(const char *dir, char ***names, size_t *n);
/* Reads a whole file (for small files: configs, rules). Caller frees *out. */
int tr_read_file(const char *path, char **out, size_t *len, tr_error *err);
/* The same for a file named by someone else: only a regular file (not a
 * device, FIFO or directory) of at most max bytes; the result is
 * NUL-terminated. */
int tr_read_file_max(const char *path, size_t max, char **out, size_t *len, tr_error *err);

/* A read-only mapping of a whole file; empty files map to len 0, data NULL. */
typedef struct tr_map {
    const unsigned char *data;
    size_t len;
} tr_map;
int tr_map_open(tr_map *m, const char *path, tr_error *err);
int tr_map_fd(tr_map *m, int fd, tr_error *err);
void tr_map_close(tr_map *m);

/* Process-wide SQLite settings; call first in main, before any database
 * is opened (sqlite3_config is refused after that). */
void tr_sqlite_process_setup(void);

/* ---- zip ----------------------------------------------------------------- */
/* Writes a zip at zip_path whose entries are the given files, each encrypted
 * with WinZip AES-256 under password (malware is shared as "infected"). */
typedef struct tr_zip_entry {
    const char *name;         /* name inside the archive */
    const char *path;         /* file to read */
} tr_zip_entry;
int tr_zip_write_aes(const char *zip_path, const tr_zip_entry *entries, size_t n,
                     const char *password, tr_error *err);
/* The same kind of archive as a stream (zipstream.c): its exact size is
 * known at once (entries stored, not compressed), and reads produce it in
 * order, one file chunk at a time, with no temporary copy. */
typedef struct tr_zip_stream tr_zip_stream;
int tr_zip_stream_new(const tr_zip_entry *entries, size_t n, const char *password,
                      tr_zip_stream **out, tr_error *err);
uint64_t tr_zip_stream_size(const tr_zip_stream *z);
/* Up to max next bytes: fewer only at the end; -1 with err on failure (a
 * file unreadable or changed since tr_zip_stream_new). */
ssize_t tr_zip_stream_read(tr_zip_stream *z, char *buf, size_t max, tr_error *err);
void tr_zip_stream_free(tr_zip_stream *z);

/* ---- time --------------------------------------------------------------- */
int64_t tr_now_unix(void);
double tr_monotonic(void);                  /* seconds */
/* Whether a child process is stuck: it sent nothing and its CPU time (from
 * /proc) did not move for a while. A child forked while another thread
 * held a lock it then needs (the sanitizers' allocator has no fork handler)
 * waits so for ever. Start it at fork, mark output as it comes, and ask
 * when the wait for output times out. */
typedef struct tr_stall_watch {
    pid_t pid;
    long long ticks;
    double since;
} tr_stall_watch;
void tr_stall_watch_start(tr_stall_watch *w, pid_t pid);
void tr_stall_watch_output(tr_stall_watch *w);
bool tr_stall_watch_stuck(tr_stall_watch *w, double secs);
/* "2026-11-27 12:00:00" (UTC), as MalwareBazaar prints it. */
void tr_format_time(int64_t unix_ts, char out[32]);

/* ---- hashing ------------------------------------------------------------ */
#define TR_MD5_HEX 33
#define TR_SHA1_HEX 41
#define TR_SHA256_HEX 65
#define TR_SHA3_384_HEX 97
#define TR_SSDEEP_MAX 148
#define TR_TLSH_MAX 80

typedef struct tr_digests {
    char md5[TR_MD5_HEX];
    char sha1[TR_SHA1_HEX];
    char sha256[TR_SHA256_HEX];
    char sha3_384[TR_SHA3_384_HEX];
    char ssdeep[TR_SSDEEP_MAX];
    char tlsh[TR_TLSH_MAX];          /* "T1"+70 hex; empty when the input is too short or flat */
    uint64_t size;
} tr_digests;

/* Streaming computation of every digest above in one pass. */
typedef struct tr_hasher tr_hasher;
tr_hasher *tr_hasher_new(void);
void tr_hasher_update(tr_hasher *h, const void *p, size_t n);
void tr_hasher_final(tr_hasher *h, tr_digests *out);
void tr_hasher_free(tr_hasher *h);
void tr_digest_buffer(const void *p, size_t n, tr_digests *out);

/* Cheap single digests. */
void tr_sha256_hex(const void *p, size_t n, char out[TR_SHA256_HEX]);
void tr_md5_hex(const void *p, size_t n, char out[TR_MD5_HEX]);

/* Lowercases and checks a hex string: returns its length (32/40/64) or 0. */
size_t tr_hash_normalize(const char *in, char *out, size_t outsz);
void tr_hex_encode(const unsigned char *p, size_t n, char *out);

/* TLSH (C++ library) behind a C interface; NULL if allocation failed. */
typedef struct tr_tlsh tr_tlsh;
tr_tlsh *tr_tlsh_new(void);
void tr_tlsh_update(tr_tlsh *t, const unsigned char *p, size_t n);
/* Writes "T1"+hex into out, or "" when TLSH declines (input under 50 bytes or too uniform). */
void tr_tlsh_final(tr_tlsh *t, char *out, size_t outsz);
void tr_tlsh_free(tr_tlsh *t);
/* libtlsh's distance of two digests ("T1"+hex or hex), -1 if one does not
 * parse: the reference faster implementations are tested against. */
int tr_tlsh_diff(const char *a, const char *b);

#endif
