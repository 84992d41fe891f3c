/* The sample store: data directory, SQLite metadata, content-addressed blobs. */
#define _GNU_SOURCE /* syncfs */
#include "store/store.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_internal.h"

#define SCHEMA_VERSION 1

struct tr_store {
    char *dir;
    char *samples_dir;
    char *tmp_dir;
    sqlite3 *db;
    bool readonly;
    tr_binan *binan;          /* made on first use */
};

static const char *const schema_sql =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    /* AUTOINCREMENT: a removed sample's id is never handed out again, since
     * the index may still hold it until its tombstone is merged away. */
    "CREATE TABLE IF NOT EXISTS samples("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " sha256 TEXT NOT NULL UNIQUE, sha1 TEXT NOT NULL, md5 TEXT NOT NULL,"
    " sha3_384 TEXT NOT NULL, ssdeep TEXT NOT NULL DEFAULT '', tlsh TEXT NOT NULL DEFAULT '',"
    " imphash TEXT NOT NULL DEFAULT '', size INTEGER NOT NULL,"
    " mime TEXT NOT NULL DEFAULT '', file_type TEXT NOT NULL DEFAULT '',"
    " magic TEXT NOT NULL DEFAULT '',"
    " first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
    " signature TEXT, reporter TEXT, origin TEXT, delivery_method TEXT,"
    " indexed INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS samples_md5 ON samples(md5);"
    "CREATE INDEX IF NOT EXISTS samples_sha1 ON samples(sha1);"
    "CREATE INDEX IF NOT EXISTS samples_signature ON samples(signature COLLATE NOCASE);"
    "CREATE INDEX IF NOT EXISTS samples_file_type ON samples(file_type);"
    "CREATE INDEX IF NOT EXISTS samples_imphash ON samples(imphash) WHERE imphash != '';"
    "CREATE INDEX IF NOT EXISTS samples_unindexed ON samples(indexed) WHERE indexed = 0;"
    "CREATE TABLE IF NOT EXISTS sample_names("
    " sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL, PRIMARY KEY(sample_id, name)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS sample_tags("
    " sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,"
    " tag TEXT NOT NULL, PRIMARY KEY(sample_id, tag)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS sample_tags_tag ON sample_tags(tag);"
    /* What a duplicate upload changed (a signature replaced): kept, not lost. */
    "CREATE TABLE IF NOT EXISTS sample_changes("
    " id INTEGER PRIMARY KEY, sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,"
    " time INTEGER NOT NULL, field TEXT NOT NULL, old TEXT, new TEXT, reporter TEXT);"
    "CREATE INDEX IF NOT EXISTS sample_changes_sample ON sample_changes(sample_id);"
    "CREATE TABLE IF NOT EXISTS comments("
    " id INTEGER PRIMARY KEY, sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,"
    " created INTEGER NOT NULL, author TEXT, text TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS comments_sample ON comments(sample_id);"
    /* What MalwareBazaar's API keeps beside a sample (bazaar.c). */
    "CREATE TABLE IF NOT EXISTS sample_bazaar("
    " sample_id INTEGER PRIMARY KEY REFERENCES samples(id) ON DELETE CASCADE,"
    " anonymous INTEGER NOT NULL DEFAULT 0, owner TEXT,"
    " downloads INTEGER NOT NULL DEFAULT 0, uploads INTEGER NOT NULL DEFAULT 0,"
    " refs TEXT, context TEXT);"
    /* Sample count and bytes, kept by triggers in the same transaction as
     * every insert and delete: a hunt reads them in one row instead of a scan
     * of the whole table (~40 ms and 40 MB of reads for 41k samples, paid by
     * the first hunt after every add). Filled once from a scan when the table
     * is new (the condition is constant: no scan once it has its row). */
    "CREATE TABLE IF NOT EXISTS sample_totals("
    " id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL, bytes INTEGER NOT NULL);"
    "INSERT INTO sample_totals(id, n, bytes)"
    " SELECT 1, (SELECT count(*) FROM samples), (SELECT coalesce(sum(size), 0) FROM samples)"
    " WHERE NOT EXISTS (SELECT 1 FROM sample_totals);"
    "CREATE TRIGGER IF NOT EXISTS samples_total_add AFTER INSERT ON samples BEGIN"
    " UPDATE sample_totals SET n = n + 1, bytes = bytes + NEW.size WHERE id = 1; END;"
    "CREATE TRIGGER IF NOT EXISTS samples_total_del AFTER DELETE ON samples BEGIN"
    " UPDATE sample_totals SET n = n - 1, bytes = bytes - OLD.size WHERE id = 1; END;"
    /* The analysis module's results (analysis_rows.c). Added tables only, so
     * an older store gains them on its next writable open; `trawl analyze`
     * then fills them for the samples it already holds. */
    "CREATE TABLE IF NOT EXISTS sample_analysis("
    " sample_id INTEGER PRIMARY KEY REFERENCES samples(id) ON DELETE CASCADE,"
    " version INTEGER NOT NULL, telfhash TEXT NOT NULL DEFAULT '',"
    " gimphash TEXT NOT NULL DEFAULT '', dhash_icon TEXT NOT NULL DEFAULT '', ole TEXT,"
    " clamav_scanned INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS sample_clamav("
    " sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL, PRIMARY KEY(sample_id, name)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS sample_clamav_name ON sample_clamav(name);"
    "CREATE INDEX IF NOT EXISTS sample_analysis_telfhash ON sample_analysis(telfhash)"
    " WHERE telfhash != '';"
    "CREATE INDEX IF NOT EXISTS sample_analysis_gimphash ON sample_analysis(gimphash)"
    " WHERE gimphash != '';"
    "CREATE INDEX IF NOT EXISTS sample_analysis_dhash_icon ON sample_analysis(dhash_icon)"
    " WHERE dhash_icon != '';"
    "CREATE TABLE IF NOT EXISTS sample_certs("
    " sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE, idx INTEGER NOT NULL,"
    " serial TEXT NOT NULL, thumbprint TEXT NOT NULL, issuer TEXT, subject TEXT,"
    " issuer_cn TEXT, subject_cn TEXT, algorithm TEXT, valid_from INTEGER, valid_to INTEGER,"
    " PRIMARY KEY(sample_id, idx)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS sample_certs_serial ON sample_certs(serial);"
    "CREATE INDEX IF NOT EXISTS sample_certs_thumbprint ON sample_certs(thumbprint);"
    "CREATE INDEX IF NOT EXISTS sample_certs_issuer ON sample_certs(issuer_cn COLLATE NOCASE);"
    "CREATE INDEX IF NOT EXISTS sample_certs_subject ON sample_certs(subject_cn COLLATE NOCASE);";

static int db_fail(tr_store *s, tr_error *err, const char *what)
{
    return tr_fail(err, "database error while %s: %s", what, sqlite3_errmsg(s->db));
}

static int db_exec(tr_store *s, const char *sql, tr_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        tr_fail(err, "database error: %s", msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int db_prepare(tr_store *s, const char *sql, sqlite3_stmt **st, tr_error *err)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return db_fail(s, err, "preparing a query");
    return 0;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
    if (v && *v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* Temp files carry the writer's pid so that a sweep can tell live files of a
 * concurrent process (the server, another add) from leftovers of dead ones.
 * Names of another shape are not the store's to delete (fsck reports them). */
static bool tmp_name_is_dead(const char *name)
{
    char *end = NULL;
    long pid = strtol(name, &end, 10);
    if (end == name || *end != '-' || pid <= 0)
        return false;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static void sweep_tmp(tr_store *s)
{
    DIR *d = opendir(s->tmp_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (tmp_name_is_dead(e->d_name)) {
            char *p = tr_xasprintf("%s/%s", s->tmp_dir, e->d_name);
            unlink(p);
            free(p);
        }
    }
    closedir(d);
}

int tr_store_open(const char *dir, int flags, tr_store **out, tr_error *err)
{
    bool ro = flags & TR_STORE_READONLY;
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (!(flags & TR_STORE_CREATE))
            return tr_fail(err, "no trawl data directory at %s (add samples first, or pass --data DIR)",
                           dir);
        if (tr_mkdir_p(dir, 0755, err) != 0)
            return -1;
    } else if (!S_ISDIR(st.st_mode)) {
        return tr_fail(err, "%s is not a directory", dir);
    }

    tr_store *s = tr_xcalloc(1, sizeof *s);
    s->dir = tr_xstrdup(dir);
    s->samples_dir = tr_xasprintf("%s/samples", dir);
    s->tmp_dir = tr_xasprintf("%s/tmp", dir);
    s->readonly = ro;
    char *dbpath = tr_xasprintf("%s/trawl.db", dir);
    if (!ro && (tr_mkdir_p(s->samples_dir, 0755, err) != 0 || tr_mkdir_p(s->tmp_dir, 0700, err) != 0)) {
        free(dbpath);
        tr_store_close(s);
        return -1;
    }
    if (ro && access(dbpath, F_OK) != 0) {
        tr_fail(err, "no trawl database in %s (add samples first, or pass --data DIR)", dir);
        free(dbpath);
        tr_store_close(s);
        return -1;
    }
    int oflags = (ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                 SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(dbpath, &s->db, oflags, NULL);
    free(dbpath);
    if (rc != SQLITE_OK) {
        tr_fail(err, "cannot open database in %s: %s", dir,
                s->db ? sqlite3_errmsg(s->db) : "out of memory");
        tr_store_close(s);
        return -1;
    }
    sqlite3_busy_timeout(s->db, 30000);
    if (db_exec(s, "PRAGMA foreign_keys=ON;", err) != 0) {
        tr_store_close(s);
        return -1;
    }
    if (!ro) {
        /* WAL: readers never block the writer. FULL: a commit is on disk
         * when it returns, which is what "acknowledged" means here. */
        if (db_exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", err) != 0 ||
            db_exec(s, "BEGIN IMMEDIATE;", err) != 0) {
            tr_store_close(s);
            return -1;
        }
        char *ver = tr_xasprintf("%s INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '%d');"
                                 "COMMIT;", schema_sql, SCHEMA_VERSION);
        rc = db_exec(s, ver, err);
        free(ver);
        if (rc != 0) {
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            tr_store_close(s);
            return -1;
        }
        sweep_tmp(s);
    }
    sqlite3_stmt *q = NULL;
    if (db_prepare(s, "SELECT value FROM meta WHERE key='schema_version'", &q, err) != 0) {
        tr_store_close(s);
        return -1;
    }
    int version = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) : 0;
    sqlite3_finalize(q);
    if (version != SCHEMA_VERSION) {
        tr_store_close(s);
        return tr_fail(err, "%s/trawl.db has schema version %d; this trawl knows %d", dir, version,
                       SCHEMA_VERSION);
    }
    *out = s;
    return 0;
}

void tr_store_close(tr_store *s)
{
    if (!s)
        return;
    if (s->db)
        sqlite3_close_v2(s->db);
    tr_binan_free(s->binan);
    free(s->dir);
    free(s->samples_dir);
    free(s->tmp_dir);
    free(s);
}

sqlite3 *store_db(tr_store *s)
{
    return s->db;
}

bool store_readonly(const tr_store *s)
{
    return s->readonly;
}

const char *tr_store_dir(const tr_store *s)
{
    return s->dir;
}

tr_binan *store_binan(tr_store *s, tr_error *err)
{
    if (!s->binan && tr_binan_new(&s->binan, err) != 0)
        return NULL;
    return s->binan;
}

char *tr_store_blob_path(const tr_store *s, const char *sha256)
{
    return tr_xasprintf("%s/%.2s/%.2s/%s", s->samples_dir, sha256, sha256 + 2, sha256);
}

/* ---- staging ------------------------------------------------------------ */

static atomic_uint_fast64_t tmp_counter;

static int open_tmp(tr_store *s, char *path, size_t pathsz, tr_error *err)
{
    if (s->readonly)
        return tr_fail(err, "the store is open read-only");
    for (int attempt = 0; attempt < 100; attempt++) {
        uint64_t n = atomic_fetch_add(&tmp_counter, 1);
        snprintf(path, pathsz, "%s/%ld-%llu-%d", s->tmp_dir, (long)getpid(),
                 (unsigned long long)n, attempt);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST)
            return tr_fail_errno(err, "cannot create a temporary file in %s", s->tmp_dir);
    }
    return tr_fail(err, "cannot find a free temporary file name in %s", s->tmp_dir);
}

/* From the staged copy: its pages are still in the cache the digests read
 * them into, and libmagic needs a file to answer as file(1) does. */
static int analyze_staged(tr_analyzer *a, tr_staged *out, tr_error *err)
{
    int fd = open(out->tmp_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tr_fail_errno(err, "cannot open %s", out->tmp_path);
    tr_map m;
    if (tr_map_fd(&m, fd, err) != 0) {
        close(fd);
        return -1;
    }
    out->bin = tr_analyze_all(a, fd, m.data, m.len, &out->a);
    tr_map_close(&m);
    close(fd);
    return 0;
}

struct tr_stage_writer {
    int fd;
    tr_hasher *h;
    char path[4096];
    const char *tmp_dir;
    uint64_t size;
};

int tr_stage_begin(tr_store *s, tr_stage_writer **out, tr_error *err)
{
    tr_stage_writer *w = tr_xcalloc(1, sizeof *w);
    w->fd = open_tmp(s, w->path, sizeof w->path, err);
    if (w->fd < 0) {
        free(w);
        return -1;
    }
    w->h = tr_hasher_new();
    w->tmp_dir = s->tmp_dir;
    *out = w;
    return 0;
}

int tr_stage_write(tr_stage_writer *w, const void *p, size_t n, tr_error *err)
{
    tr_hasher_update(w->h, p, n);
    w->size += n;
    if (tr_write_all(w->fd, p, n) != 0)
        return tr_fail_errno(err, "cannot write to %s", w->tmp_dir);
    return 0;
}

uint64_t tr_stage_size(const tr_stage_writer *w)
{
    return w->size;
}

void tr_stage_abort(tr_stage_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    unlink(w->path);
    tr_hasher_free(w->h);
    free(w);
}

int tr_stage_finish(tr_stage_writer *w, tr_analyzer *a, int64_t expected_size, tr_staged *out,
                    tr_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = close(w->fd) == 0 ? 0 : tr_fail_errno(err, "cannot write to %s", w->tmp_dir);
    w->fd = -1;
    if (rc == 0 && expected_size >= 0 && (uint64_t)expected_size != w->size)
        rc = tr_fail(err, "truncated input: expected %lld bytes, got %llu",
                     (long long)expected_size, (unsigned long long)w->size);
    if (rc != 0) {
        tr_stage_abort(w);
        return -1;
    }
    tr_hasher_final(w->h, &out->d);
    snprintf(out->tmp_path, sizeof out->tmp_path, "%s", w->path);
    w->path[0] = '\0';
    tr_hasher_free(w->h);
    free(w);
    if (analyze_staged(a, out, err) != 0) {
        tr_store_unstage(out);
        return -1;
    }
    return 0;
}

int tr_store_stage_fd(tr_store *s, tr_analyzer *a, int fd, int64_t expected_size,
                      tr_staged *out, tr_error *err)
{
    tr_stage_writer *w;
    if (tr_stage_begin(s, &w, err) != 0)
        return -1;
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = tr_xmalloc(CHUNK);
    for (;;) {
        ssize_t r = read(fd, buf, CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            tr_fail_errno(err, "read failed");
            break;
        }
        if (r == 0) {
            free(buf);
            return tr_stage_finish(w, a, expected_size, out, err);
        }
        if (tr_stage_write(w, buf, (size_t)r, err) != 0)
            break;
    }
    free(buf);
    tr_stage_abort(w);
    return -1;
}

int tr_store_stage_path(tr_store *s, tr_analyzer *a, const char *path, tr_staged *out,
                        tr_error *err)
{
    /* O_NONBLOCK: opening a FIFO must not hang; it is refused below. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return tr_fail_errno(err, "cannot open %s", path);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return tr_fail(err, "%s is not a regular file", path);
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    /* The size seen at open: a file that changes while read is refused
     * rather than stored under a hash of bytes nobody asked for. */
    int rc = tr_store_stage_fd(s, a, fd, (int64_t)st.st_size, out, err);
    close(fd);
    if (rc != 0)
        tr_error_prefix(err, path);
    return rc;
}

int tr_store_stage_buffer(tr_store *s, tr_analyzer *a, const void *p, size_t n, tr_staged *out,
                          tr_error *err)
{
    memset(out, 0, sizeof *out);
    int tfd = open_tmp(s, out->tmp_path, sizeof out->tmp_path, err);
    if (tfd < 0)
        return -1;
    int rc = tr_write_all(tfd, p, n);
    if (close(tfd) != 0)
        rc = -1;
    if (rc != 0) {
        tr_fail_errno(err, "cannot write to %s", s->tmp_dir);
        tr_store_unstage(out);
        return -1;
    }
    tr_digest_buffer(p, n, &out->d);
    if (analyze_staged(a, out, err) != 0) {
        tr_store_unstage(out);
        return -1;
    }
    return 0;
}

void tr_store_unstage(tr_staged *st)
{
    if (st->tmp_path[0])
        unlink(st->tmp_path);
    st->tmp_path[0] = '\0';
    tr_bin_info_free(st->bin);
    st->bin = NULL;
}

/* ---- commit ------------------------------------------------------------- */

static int insert_names_tags(tr_store *s, int64_t id, const tr_ingest_meta *m, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (m->file_name && *m->file_name) {
        if (db_prepare(s, "INSERT OR IGNORE INTO sample_names(sample_id, name) VALUES(?,?)", &st, err))
            return -1;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, m->file_name, -1, SQLITE_TRANSIENT);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            return db_fail(s, err, "recording a file name");
    }
    if (m->n_tags && tr_store_add_tags(s, id, m->tags, m->n_tags, err) != 0)
        return -1;
    if (m->comment && *m->comment &&
        tr_store_add_comment(s, id, m->reporter, m->comment, err) != 0)
        return -1;
    return 0;
}

static int find_id(tr_store *s, const char *sha256, int64_t *id, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (db_prepare(s, "SELECT id FROM samples WHERE sha256=?", &st, err))
        return -1;
    sqlite3_bind_text(st, 1, sha256, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int found = 0;
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        found = 1;
    } else if (rc != SQLITE_DONE) {
        found = db_fail(s, err, "looking up a sample");
    }
    sqlite3_finalize(st);
    return found;
}

/* A duplicate that brings another signature replaces it; the old one and who
 * changed it are recorded in sample_changes. */
static int record_signature_change(tr_store *s, int64_t id, const tr_ingest_meta *m, int64_t now,
                                   tr_error *err)
{
    if (!m->signature)
        return 0;
    sqlite3_stmt *st = NULL;
    if (db_prepare(s,
                   "INSERT INTO sample_changes(sample_id, time, field, old, new, reporter)"
                   " SELECT id, ?, 'signature', signature, ?, ? FROM samples"
                   " WHERE id=? AND signature IS NOT NULL AND signature != ?",
                   &st, err))
        return -1;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_text(st, 2, m->signature, -1, SQLITE_STATIC);
    bind_text_or_null(st, 3, m->reporter);
    sqlite3_bind_int64(st, 4, id);
    sqlite3_bind_text(st, 5, m->signature, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(s, err, "recording a changed signature");
}

static int merge_duplicate(tr_store *s, int64_t id, const tr_ingest_meta *m, int64_t now,
                           tr_error *err)
{
    if (record_signature_change(s, id, m, now, err) != 0)
        return -1;
    sqlite3_stmt *st = NULL;
    if (db_prepare(s,
                   "UPDATE samples SET last_seen=?, signature=COALESCE(?, signature),"
                   " reporter=COALESCE(reporter, ?), origin=COALESCE(origin, ?),"
                   " delivery_method=COALESCE(delivery_method, ?) WHERE id=?",
                   &st, err))
        return -1;
    sqlite3_bind_int64(st, 1, now);
    bind_text_or_null(st, 2, m->signature);
    bind_text_or_null(st, 3, m->reporter);
    bind_text_or_null(st, 4, m->origin);
    bind_text_or_null(st, 5, m->delivery_method);
    sqlite3_bind_int64(st, 6, id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(s, err, "updating a duplicate");
    return insert_names_tags(s, id, m, err);
}

static int insert_sample(tr_store *s, const tr_staged *sg, const tr_bin_info *bin,
                         const tr_ingest_meta *m, int64_t now, int64_t *id, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (db_prepare(s,
                   "INSERT INTO samples(sha256, sha1, md5, sha3_384, ssdeep, tlsh, imphash, size,"
                   " mime, file_type, magic, first_seen, last_seen, signature, reporter, origin,"
                   " delivery_method) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   &st, err))
        return -1;
    const char *type = tr_filetype_refine(sg->a.file_type, m->file_name);
    sqlite3_bind_text(st, 1, sg->d.sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, sg->d.sha1, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, sg->d.md5, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, sg->d.sha3_384, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, sg->d.ssdeep, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, sg->d.tlsh, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, sg->a.imphash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)sg->d.size);
    sqlite3_bind_text(st, 9, sg->a.mime, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, sg->a.magic, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 12, now);
    sqlite3_bind_int64(st, 13, now);
    bind_text_or_null(st, 14, m->signature);
    bind_text_or_null(st, 15, m->reporter);
    bind_text_or_null(st, 16, m->origin);
    bind_text_or_null(st, 17, m->delivery_method);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(s, err, "inserting a sample");
    *id = sqlite3_last_insert_rowid(s->db);
    if (insert_names_tags(s, *id, m, err) != 0)
        return -1;
    /* Analysed before the lock was taken, unless another writer stored the
     * same bytes meanwhile and then removed them. */
    return bin ? store_analysis_put(s, *id, bin, err)
               : store_analysis_of_file(s, *id, sg->tmp_path, err);
}

static int sync_store_fs(tr_store *s, tr_error *err)
{
    int fd = open(s->tmp_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return tr_fail_errno(err, "cannot open %s", s->tmp_dir);
    int rc = syncfs(fd);
    close(fd);
    if (rc != 0)
        return tr_fail_errno(err, "cannot flush the data directory to disk");
    return 0;
}

static int place_blob(tr_store *s, const tr_staged *sg, tr_error *err)
{
    char *final = tr_store_blob_path(s, sg->d.sha256);
    char *dir = tr_xasprintf("%s/%.2s/%.2s", s->samples_dir, sg->d.sha256, sg->d.sha256 + 2);
    int rc = tr_mkdir_p(dir, 0755, err);
    if (rc == 0 && chmod(sg->tmp_path, 0444) != 0)
        rc = tr_fail_errno(err, "cannot make %s read-only", sg->tmp_path);
    if (rc == 0 && rename(sg->tmp_path, final) != 0)
        rc = tr_fail_errno(err, "cannot move a sample into %s", dir);
    free(dir);
    free(final);
    return rc;
}

int tr_store_commit(tr_store *s, tr_staged *staged, const tr_ingest_meta *meta, size_t n,
                    tr_ingest_result *results, tr_error *err)
{
    if (n == 0)
        return 0;
    if (s->readonly) {
        for (size_t i = 0; i < n; i++)
            tr_store_unstage(&staged[i]);
        return tr_fail(err, "the store is open read-only");
    }
    int64_t now = tr_now_unix();
    bool *place = tr_xcalloc(n, sizeof *place);
    /* The binary analysis (analysis_rows.c): made while staging, or here
     * for the samples that look new, before the write lock: a ClamAV scan
     * or a PE parse must not hold other writers back. */
    tr_bin_info **bins = tr_xcalloc(n, sizeof *bins);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        bins[i] = staged[i].bin;
        staged[i].bin = NULL;
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (!bins[i] && store_has_sha256(s, staged[i].d.sha256) == 0)
            rc = store_analyze_staged(s, staged[i].tmp_path, &bins[i], err);
    if (rc == 0)
        rc = db_exec(s, "BEGIN IMMEDIATE", err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int64_t id = 0;
        int found = find_id(s, staged[i].d.sha256, &id, err);
        if (found < 0) {
            rc = -1;
        } else if (found) {
            rc = merge_duplicate(s, id, &meta[i], now, err);
            results[i] = (tr_ingest_result){id, false};
        } else {
            rc = insert_sample(s, &staged[i], bins[i], &meta[i], now, &id, err);
            results[i] = (tr_ingest_result){id, true};
            place[i] = true;
        }
    }
    /* Blob bytes reach the disk before the rows that point at them. */
    if (rc == 0)
        rc = sync_store_fs(s, err);
    size_t placed = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (place[i]) {
            rc = place_blob(s, &staged[i], err);
            if (rc == 0) {
                staged[i].tmp_path[0] = '\0';
                placed++;
            }
        }
    if (rc == 0 && placed)
        rc = sync_store_fs(s, err);
    if (rc == 0 && db_exec(s, "COMMIT", err) != 0)
        rc = -1;
    if (rc != 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    /* Blobs placed by a failed batch stay as unreferenced blobs: fsck adopts
     * them, and re-adding the file finds them in place. */
    for (size_t i = 0; i < n; i++) {
        tr_store_unstage(&staged[i]);
        tr_bin_info_free(bins[i]);
    }
    free(bins);
    free(place);
    return rc;
}

/* ---- reading ------------------------------------------------------------ */

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? tr_xstrdup((const char *)t) : NULL;
}

static void col_copy(sqlite3_stmt *st, int i, char *out, size_t outsz)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(out, outsz, "%s", t ? (const char *)t : "");
}

#define SAMPLE_COLUMNS                                                                          \
    "id, sha256, sha1, md5, sha3_384, ssdeep, tlsh, imphash, size, mime, file_type, magic,"    \
    " first_seen, last_seen, signature, reporter, origin, delivery_method"

static tr_sample *sample_from_row(sqlite3_stmt *st)
{
    tr_sample *x = tr_xcalloc(1, sizeof *x);
    x->id = sqlite3_column_int64(st, 0);
    col_copy(st, 1, x->d.sha256, sizeof x->d.sha256);
    col_copy(st, 2, x->d.sha1, sizeof x->d.sha1);
    col_copy(st, 3, x->d.md5, sizeof x->d.md5);
    col_copy(st, 4, x->d.sha3_384, sizeof x->d.sha3_384);
    col_copy(st, 5, x->d.ssdeep, sizeof x->d.ssdeep);
    col_copy(st, 6, x->d.tlsh, sizeof x->d.tlsh);
    col_copy(st, 7, x->imphash, sizeof x->imphash);
    x->d.size = (uint64_t)sqlite3_column_int64(st, 8);
    x->mime = col_dup(st, 9);
    x->file_type = col_dup(st, 10);
    x->magic = col_dup(st, 11);
    x->first_seen = sqlite3_column_int64(st, 12);
    x->last_seen = sqlite3_column_int64(st, 13);
    x->signature = col_dup(st, 14);
    x->reporter = col_dup(st, 15);
    x->origin = col_dup(st, 16);
    x->delivery_method = col_dup(st, 17);
    return x;
}

static int load_strings(tr_store *s, const char *sql, int64_t id, char ***out, size_t *n,
                        tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (db_prepare(s, sql, &st, err))
        return -1;
    sqlite3_bind_int64(st, 1, id);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 4;
            *out = tr_xrealloc(*out, cap * sizeof **out);
        }
        (*out)[(*n)++] = col_dup(st, 0);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(s, err, "reading a sample");
}

static int load_details(tr_store *s, tr_sample *x, tr_error *err)
{
    if (load_strings(s, "SELECT name FROM sample_names WHERE sample_id=? ORDER BY name", x->id,
                     &x->names, &x->n_names, err) ||
        load_strings(s, "SELECT tag FROM sample_tags WHERE sample_id=? ORDER BY tag", x->id,
                     &x->tags, &x->n_tags, err))
        return -1;
    sqlite3_stmt *st = NULL;
    if (db_prepare(s, "SELECT id, created, author, text FROM comments WHERE sample_id=? ORDER BY id",
                   &st, err))
        return -1;
    sqlite3_bind_int64(st, 1, x->id);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (x->n_comments == cap) {
            cap = cap ? cap * 2 : 4;
            x->comments = tr_xrealloc(x->comments, cap * sizeof *x->comments);
        }
        tr_comment *c = &x->comments[x->n_comments++];
        c->id = sqlite3_column_int64(st, 0);
        c->created = sqlite3_column_int64(st, 1);
        c->author = col_dup(st, 2);
        c->text = col_dup(st, 3);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(s, err, "reading comments");
    return store_analysis_load(s, x->id, &x->bin, err);
}

static int get_where(tr_store *s, const char *where, const char *text, int64_t id,
                     tr_sample **out, tr_error *err)
{
    char *sql = tr_xasprintf("SELECT " SAMPLE_COLUMNS " FROM samples WHERE %s", where);
    sqlite3_stmt *st = NULL;
    int rc = db_prepare(s, sql, &st, err);
    free(sql);
    if (rc)
        return -1;
    if (text)
        sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_finalize(st);
        return 0;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return db_fail(s, err, "reading a sample");
    }
    tr_sample *x = sample_from_row(st);
    sqlite3_finalize(st);
    if (load_details(s, x, err) != 0) {
        tr_sample_free(x);
        return -1;
    }
    *out = x;
    return 1;
}

int tr_store_get(tr_store *s, const char *hash, tr_sample **out, tr_error *err)
{
    char h[TR_SHA256_HEX];
    size_t n = tr_hash_normalize(hash, h, sizeof h);
    if (n == 0)
        return tr_fail(err, "'%s' is not an md5, sha1 or sha256 hash (32, 40 or 64 hex digits)",
                       hash);
    const char *where = n == 32 ? "md5=?" : n == 40 ? "sha1=?" : "sha256=?";
    return get_where(s, where, h, 0, out, err);
}

int tr_store_get_by_id(tr_store *s, int64_t id, tr_sample **out, tr_error *err)
{
    return get_where(s, "id=?", NULL, id, out, err);
}

/* The WHERE clause of a filter; bind_filter binds its parameters in the
 * same order. Hash prefixes are ranges [p, p+"g") over the hash indexes:
 * lowercase hex sorts below 'g'. */
static void filter_where(tr_buf *sql, const tr_sample_filter *f)
{
    tr_buf_printf(sql, " WHERE 1");
    if (f->tag)
        tr_buf_printf(sql, " AND EXISTS(SELECT 1 FROM sample_tags t WHERE t.sample_id=s.id"
                           " AND t.tag=?)");
    if (f->signature)
        tr_buf_printf(sql, " AND signature=? COLLATE NOCASE");
    if (f->file_type)
        tr_buf_printf(sql, " AND file_type=?");
    if (f->imphash)
        tr_buf_printf(sql, " AND imphash=? COLLATE NOCASE");
    if (f->tlsh)
        tr_buf_printf(sql, " AND tlsh=? COLLATE NOCASE");
    if (f->reporter)
        tr_buf_printf(sql, " AND reporter=? COLLATE NOCASE");
    if (f->name)
        tr_buf_printf(sql, " AND EXISTS(SELECT 1 FROM sample_names nm WHERE nm.sample_id=s.id"
                           " AND nm.name LIKE ? ESCAPE '\\')");
    if (f->hash_prefix)
        tr_buf_printf(sql, " AND ((sha256>=? AND sha256<?) OR (sha1>=? AND sha1<?)"
                           " OR (md5>=? AND md5<?))");
    if (f->first_seen_after)
        tr_buf_printf(sql, " AND first_seen >= ?");
    if (f->first_seen_before)
        tr_buf_printf(sql, " AND first_seen < ?");
}

static int bind_filter(sqlite3_stmt *st, const tr_sample_filter *f, tr_buf *scratch)
{
    int i = 1;
    if (f->tag)
        sqlite3_bind_text(st, i++, f->tag, -1, SQLITE_STATIC);
    if (f->signature)
        sqlite3_bind_text(st, i++, f->signature, -1, SQLITE_STATIC);
    if (f->file_type)
        sqlite3_bind_text(st, i++, f->file_type, -1, SQLITE_STATIC);
    if (f->imphash)
        sqlite3_bind_text(st, i++, f->imphash, -1, SQLITE_STATIC);
    if (f->tlsh)
        sqlite3_bind_text(st, i++, f->tlsh, -1, SQLITE_STATIC);
    if (f->reporter)
        sqlite3_bind_text(st, i++, f->reporter, -1, SQLITE_STATIC);
    if (f->name) {
        /* LIKE's own wildcards in a file name are literal characters. */
        tr_buf_printf(scratch, "%%");
        for (const char *p = f->name; *p; p++) {
            if (*p == '%' || *p == '_' || *p == '\\')
                tr_buf_printf(scratch, "\\");
            tr_buf_printf(scratch, "%c", *p);
        }
        tr_buf_printf(scratch, "%%");
        sqlite3_bind_text(st, i++, scratch->data, -1, SQLITE_TRANSIENT);
    }
    if (f->hash_prefix) {
        char lo[TR_SHA256_HEX + 1], hi[TR_SHA256_HEX + 2];
        size_t k = 0;
        for (; f->hash_prefix[k] && k < TR_SHA256_HEX - 1; k++)
            lo[k] = (char)tolower((unsigned char)f->hash_prefix[k]);
        lo[k] = '\0';
        snprintf(hi, sizeof hi, "%sg", lo);
        for (int r = 0; r < 3; r++) {
            sqlite3_bind_text(st, i++, lo, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, i++, hi, -1, SQLITE_TRANSIENT);
        }
    }
    if (f->first_seen_after)
        sqlite3_bind_int64(st, i++, f->first_seen_after);
    if (f->first_seen_before)
        sqlite3_bind_int64(st, i++, f->first_seen_before);
    return i;
}

bool tr_sample_sort_parse(const char *name, tr_sample_sort *out)
{
    static const char *const names[] = {"newest", "first_seen", "last_seen", "size",
                                        "type", "signature", "reporter"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++)
        if (strcmp(name, names[k]) == 0) {
            *out = (tr_sample_sort)k;
            return true;
        }
    return false;
}

int tr_store_count(tr_store *s, const tr_sample_filter *f, int64_t *total, tr_error *err)
{
    tr_buf sql = {0}, scratch = {0};
    tr_buf_printf(&sql, "SELECT count(*) FROM samples s");
    filter_where(&sql, f);
    sqlite3_stmt *st = NULL;
    int rc = db_prepare(s, sql.data, &st, err);
    tr_buf_free(&sql);
    if (rc)
        return -1;
    bind_filter(st, f, &scratch);
    rc = sqlite3_step(st);
    *total = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    tr_buf_free(&scratch);
    return rc == SQLITE_ROW ? 0 : db_fail(s, err, "counting samples");
}

int tr_store_sample_changes(tr_store *s, int64_t id, tr_sample_change **out, size_t *n,
                            tr_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    if (db_prepare(s,
                   "SELECT time, field, old, new, reporter FROM sample_changes WHERE sample_id=?"
                   " ORDER BY id",
                   &st, err))
        return -1;
    sqlite3_bind_int64(st, 1, id);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 4;
            *out = tr_xrealloc(*out, cap * sizeof **out);
        }
        tr_sample_change *c = &(*out)[(*n)++];
        c->time = sqlite3_column_int64(st, 0);
        c->field = col_dup(st, 1);
        c->old_value = col_dup(st, 2);
        c->new_value = col_dup(st, 3);
        c->reporter = col_dup(st, 4);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        tr_sample_changes_free(*out, *n);
        *out = NULL;
        *n = 0;
        return db_fail(s, err, "reading a sample's changes");
    }
    return 0;
}

void tr_sample_changes_free(tr_sample_change *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].field);
        free(c[i].old_value);
        free(c[i].new_value);
        free(c[i].reporter);
    }
    free(c);
}

int tr_store_list(tr_store *s, const tr_sample_filter *f, tr_sample ***out, size_t *n,
                  tr_error *err)
{
    /* id breaks ties so that pages never overlap or skip. */
    static const char *const order[] = {"id", "first_seen", "last_seen", "size",
                                        "file_type", "signature COLLATE NOCASE",
                                        "reporter COLLATE NOCASE"};
    tr_buf sql = {0}, scratch = {0};
    tr_buf_printf(&sql, "SELECT " SAMPLE_COLUMNS " FROM samples s");
    filter_where(&sql, f);
    const char *dir = f->ascending ? "ASC" : "DESC";
    size_t ord = (size_t)f->sort < sizeof order / sizeof *order ? (size_t)f->sort : 0;
    if (ord == 0)
        tr_buf_printf(&sql, " ORDER BY id %s LIMIT ? OFFSET ?", dir);
    else
        tr_buf_printf(&sql, " ORDER BY %s %s, id %s LIMIT ? OFFSET ?", order[ord], dir, dir);
    sqlite3_stmt *st = NULL;
    int rc = db_prepare(s, sql.data, &st, err);
    tr_buf_free(&sql);
    if (rc)
        return -1;
    int i = bind_filter(st, f, &scratch);
    sqlite3_bind_int64(st, i++, f->limit > 0 ? f->limit : -1);
    sqlite3_bind_int64(st, i++, f->offset > 0 ? f->offset : 0);
    tr_buf_free(&scratch);
    tr_sample **list = NULL;
    size_t count = 0, cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            list = tr_xrealloc(list, cap * sizeof *list);
        }
        list[count++] = sample_from_row(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        tr_sample_list_free(list, count);
        return db_fail(s, err, "listing samples");
    }
    for (size_t k = 0; k < count; k++)
        if (load_details(s, list[k], err) != 0) {
            tr_sample_list_free(list, count);
            return -1;
        }
    *out = list;
    *n = count;
    return 0;
}

void tr_sample_free(tr_sample *x)
{
    if (!x)
        return;
    free(x->mime);
    free(x->file_type);
    free(x->magic);
    free(x->signature);
    free(x->reporter);
    free(x->origin);
    free(x->delivery_method);
    for (size_t i = 0; i < x->n_names; i++)
        free(x->names[i]);
    free(x->names);
    for (size_t i = 0; i < x->n_tags; i++)
        free(x->tags[i]);
    free(x->tags);
    tr_bin_info_free(x->bin);
    for (size_t i = 0; i < x->n_comments; i++) {
        free(x->comments[i].author);
        free(x->comments[i].text);
    }
    free(x->comments);
    free(x);
}

void tr_sample_list_free(tr_sample **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tr_sample_free(list[i]);
    free(list);
}

int tr_store_briefs(tr_store *s, const int64_t *ids, size_t n, tr_sample_brief **out,
                    size_t *nout, tr_error *err)
{
    *out = NULL;
    *nout = 0;
    if (n == 0)
        return 0;
    /* One ordered walk from the smallest id: for large sets (a full scan)
     * this beats a lookup per id by far. */
    sqlite3_stmt *st = NULL;
    if (db_prepare(s, "SELECT s.id, s.sha256, s.size, s.file_type, s.reporter,"
                      " (SELECT min(n.name) FROM sample_names n WHERE n.sample_id = s.id)"
                      " FROM samples s WHERE s.id >= ? ORDER BY s.id", &st, err))
        return -1;
    sqlite3_bind_int64(st, 1, ids[0]);
    tr_sample_brief *b = tr_xcalloc(n, sizeof *b);
    size_t k = 0, nb = 0;
    int rc = SQLITE_DONE;
    while (k < n && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        while (k < n && ids[k] < id)
            k++;
        if (k == n || ids[k] != id)
            continue;
        while (k < n && ids[k] == id)
            k++;
        tr_sample_brief *x = &b[nb++];
        x->id = id;
        col_copy(st, 1, x->sha256, sizeof x->sha256);
        x->size = (uint64_t)sqlite3_column_int64(st, 2);
        x->file_type = col_dup(st, 3);
        x->reporter = col_dup(st, 4);
        x->name = col_dup(st, 5);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        tr_sample_briefs_free(b, nb);
        return db_fail(s, err, "reading samples");
    }
    *out = b;
    *nout = nb;
    return 0;
}

void tr_sample_briefs_free(tr_sample_brief *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(b[i].file_type);
        free(b[i].reporter);
        free(b[i].name);
    }
    free(b);
}

static bool one_int(tr_store *s, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return false;
    bool row = sqlite3_step(st) == SQLITE_ROW;
    if (row)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return row;
}

int tr_store_stats_get(tr_store *s, tr_store_stats *out, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT n, bytes FROM sample_totals WHERE id = 1", -1, &st,
                           NULL) != SQLITE_OK) {
        /* A database no read-write open has upgraded yet: count by hand. */
        sqlite3_finalize(st);
        int64_t n = 0, sum = 0;
        if (!one_int(s, "SELECT count(*) FROM samples", &n) ||
            !one_int(s, "SELECT coalesce(sum(size), 0) FROM samples", &sum))
            return db_fail(s, err, "counting samples");
        out->samples = n;
        out->bytes = sum;
        return 0;
    }
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return db_fail(s, err, "reading the sample totals");
    }
    out->samples = sqlite3_column_int64(st, 0);
    out->bytes = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    return 0;
}

/* ---- changes ------------------------------------------------------------ */

int tr_store_add_tags(tr_store *s, int64_t id, const char *const *tags, size_t n, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (db_prepare(s, "INSERT OR IGNORE INTO sample_tags(sample_id, tag) VALUES(?,?)", &st, err))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!tags[i] || !*tags[i])
            continue;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, tags[i], -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            sqlite3_finalize(st);
            return db_fail(s, err, "adding a tag");
        }
    }
    sqlite3_finalize(st);
    return 0;
}

int tr_store_remove_tag(tr_store *s, int64_t id, const char *tag, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (db_prepare(s, "DELETE FROM sample_tags WHERE sample_id=? AND tag=?", &st, err))
        return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, tag, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(s, err, "removing a tag");
    return sqlite3_changes(s->db) > 0 ? 1 : 0;
}

int tr_store_add_comment(tr_store *s, int64_t id, const char *author, const char *text,
                         tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (db_prepare(s, "INSERT INTO comments(sample_id, created, author, text) VALUES(?,?,?,?)", &st,
                   err))
        return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, tr_now_unix());
    bind_text_or_null(st, 3, author);
    sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(s, err, "adding a comment");
}

int tr_store_remove(tr_store *s, const char *hash, int64_t *removed_id, tr_error *err)
{
    tr_sample *x = NULL;
    int found = tr_store_get(s, hash, &x, err);
    if (found <= 0)
        return found;
    sqlite3_stmt *st = NULL;
    int rc = db_prepare(s, "DELETE FROM samples WHERE id=?", &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, x->id);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(s, err, "removing a sample");
        sqlite3_finalize(st);
    }
    if (rc == 0) {
        /* The row goes first: a crash in between leaves an unreferenced
         * blob, never a row without its blob. */
        char *path = tr_store_blob_path(s, x->d.sha256);
        if (unlink(path) != 0 && errno != ENOENT)
            tr_log(TR_LOG_WARN, "cannot delete %s: %s (fsck --repair will)", path,
                   strerror(errno));
        free(path);
        if (removed_id)
            *removed_id = x->id;
    }
    tr_sample_free(x);
    return rc == 0 ? 1 : -1;
}

/* ---- internals for fsck ------------------------------------------------- */

int store_page_rows(tr_store *s, int64_t after, size_t max, int64_t *ids,
                    char (*sha256)[TR_SHA256_HEX], int64_t *sizes, size_t *n, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (db_prepare(s, "SELECT id, sha256, size FROM samples WHERE id > ? ORDER BY id LIMIT ?", &st,
                   err))
        return -1;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    *n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < max) {
        ids[*n] = sqlite3_column_int64(st, 0);
        col_copy(st, 1, sha256[*n], TR_SHA256_HEX);
        sizes[*n] = sqlite3_column_int64(st, 2);
        (*n)++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_fail(s, err, "reading samples");
}

int store_delete_row(tr_store *s, int64_t id, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (db_prepare(s, "DELETE FROM samples WHERE id=?", &st, err))
        return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(s, err, "removing a row");
}

int store_has_sha256(tr_store *s, const char *sha256)
{
    int64_t id;
    tr_error e;
    return find_id(s, sha256, &id, &e);
}

/* ---- indexing bookkeeping ----------------------------------------------- */

int tr_store_unindexed(tr_store *s, int64_t after, size_t max, int64_t *ids,
                       char (*sha256)[TR_SHA256_HEX], uint64_t *sizes, size_t *n, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (db_prepare(s, "SELECT id, sha256, size FROM samples WHERE indexed=0 AND id > ?"
                      " ORDER BY id LIMIT ?", &st, err))
        return -1;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    *n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < max) {
        ids[*n] = sqlite3_column_int64(st, 0);
        col_copy(st, 1, sha256[*n], TR_SHA256_HEX);
        sizes[*n] = (uint64_t)sqlite3_column_int64(st, 2);
        (*n)++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_fail(s, err, "listing unindexed samples");
}

int tr_store_unindexed_count(tr_store *s, int64_t *count, uint64_t *bytes, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (db_prepare(s, "SELECT count(*), coalesce(sum(size), 0) FROM samples WHERE indexed=0", &st,
                   err))
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *count = sqlite3_column_int64(st, 0);
        *bytes = (uint64_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : db_fail(s, err, "counting unindexed samples");
}

int tr_store_mark_indexed(tr_store *s, const int64_t *ids, size_t n, tr_error *err)
{
    if (n == 0)
        return 0;
    sqlite3_stmt *st = NULL;
    if (db_exec(s, "BEGIN IMMEDIATE", err) != 0)
        return -1;
    if (db_prepare(s, "UPDATE samples SET indexed=1 WHERE id=?", &st, err)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(st, 1, ids[i]);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            sqlite3_finalize(st);
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return db_fail(s, err, "marking samples indexed");
        }
    }
    sqlite3_finalize(st);
    if (db_exec(s, "COMMIT", err) != 0) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

int tr_store_all_ids(tr_store *s, int64_t **ids, size_t *n, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (db_prepare(s, "SELECT id FROM samples ORDER BY id", &st, err))
        return -1;
    size_t cap = 0;
    *ids = NULL;
    *n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 1024;
            *ids = tr_xrealloc(*ids, cap * sizeof **ids);
        }
        (*ids)[(*n)++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(*ids);
        *ids = NULL;
        return db_fail(s, err, "listing sample ids");
    }
    return 0;
}

/* ---- similarity-hash columns -------------------------------------------- */

/* Column names come from the similar module's own table, never from a user;
 * the check keeps a typo from turning into SQL. */
static bool plain_identifier(const char *c)
{
    if (!*c)
        return false;
    for (; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || *c == '_' || (*c >= '0' && *c <= '9')))
            return false;
    return true;
}

/* Where a per-sample hash value lives: the samples row, or the binary
 * analysis' row for the hashes it computes. */
static void hash_source(const char *column, const char **table, const char **id)
{
    static const char *const analysed[] = {"telfhash", "gimphash", "dhash_icon"};
    *table = "samples";
    *id = "id";
    for (size_t i = 0; i < sizeof analysed / sizeof *analysed; i++)
        if (strcmp(column, analysed[i]) == 0) {
            *table = "sample_analysis";
            *id = "sample_id";
        }
}

int tr_store_has_column(tr_store *s, const char *column)
{
    if (!plain_identifier(column))
        return 0;
    const char *table, *idc;
    hash_source(column, &table, &idc);
    char *sql = tr_xasprintf("SELECT 1 FROM pragma_table_info('%s') WHERE name=?", table);
    sqlite3_stmt *st = NULL;
    int prc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    free(sql);
    if (prc != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, column, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int tr_store_hash_values(tr_store *s, const char *column, int64_t after, tr_hash_value **out,
                         size_t *n, tr_error *err)
{
    *out = NULL;
    *n = 0;
    if (!plain_identifier(column))
        return tr_fail(err, "'%s' is not a column name", column);
    const char *table, *idc;
    hash_source(column, &table, &idc);
    char *sql = tr_xasprintf("SELECT %s, %s FROM %s WHERE %s > ? AND %s != '' ORDER BY %s", idc,
                             column, table, idc, column, idc);
    sqlite3_stmt *st = NULL;
    int prc = db_prepare(s, sql, &st, err);
    free(sql);
    if (prc)
        return -1;
    sqlite3_bind_int64(st, 1, after);
    size_t cap = 0;
    tr_hash_value *v = NULL;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 1024;
            v = tr_xrealloc(v, cap * sizeof *v);
        }
        v[*n].id = sqlite3_column_int64(st, 0);
        col_copy(st, 1, v[*n].value, sizeof v[*n].value);
        (*n)++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(v);
        *n = 0;
        return db_fail(s, err, "reading hash values");
    }
    *out = v;
    return 0;
}

int tr_store_hash_value_stats(tr_store *s, const char *column, int64_t *max_id, int64_t *count,
                              tr_error *err)
{
    if (!plain_identifier(column))
        return tr_fail(err, "'%s' is not a column name", column);
    const char *table, *idc;
    hash_source(column, &table, &idc);
    char *sql = tr_xasprintf("SELECT coalesce(max(%s), 0), count(*) FROM %s WHERE %s != ''", idc,
                             table, column);
    sqlite3_stmt *st = NULL;
    int prc = db_prepare(s, sql, &st, err);
    free(sql);
    if (prc)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *max_id = sqlite3_column_int64(st, 0);
        *count = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : db_fail(s, err, "counting hash values");
}

int tr_store_hash_value_of(tr_store *s, const char *column, int64_t id, char *out, size_t outsz,
                           tr_error *err)
{
    if (!plain_identifier(column))
        return tr_fail(err, "'%s' is not a column name", column);
    const char *table, *idc;
    hash_source(column, &table, &idc);
    char *sql = tr_xasprintf("SELECT %s FROM %s WHERE %s = ?", column, table, idc);
    sqlite3_stmt *st = NULL;
    int prc = db_prepare(s, sql, &st, err);
    free(sql);
    if (prc)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        col_copy(st, 0, out, outsz);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : db_fail(s, err, "reading a hash value");
}
