/* The analysis module's results kept per sample (sample_analysis,
 * sample_certs): written when a new sample is committed, backfilled by
 * `trawl analyze` for samples stored before (or by an older analysis
 * version), read with the sample and by the Bazaar intel queries. */
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store_internal.h"

static int fail(tr_store *s, tr_error *err, const char *what)
{
    return tr_fail(err, "database error %s: %s", what, sqlite3_errmsg(store_db(s)));
}

/* Stores opened read-only that no writable open has migrated yet. */
static bool have_tables(tr_store *s)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store_db(s),
                           "SELECT 1 FROM sqlite_master WHERE type='table' AND name='sample_certs'",
                           -1, &st, NULL) != SQLITE_OK)
        return false;
    bool yes = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return yes;
}

static void bind_or_null(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

int store_analysis_put(tr_store *s, int64_t id, const tr_bin_info *b, tr_error *err)
{
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st = NULL;
    int rc;
    static const char *const clear[] = {"DELETE FROM sample_certs WHERE sample_id=?",
                                        "DELETE FROM sample_clamav WHERE sample_id=?"};
    for (size_t i = 0; i < 2; i++) {
        if (sqlite3_prepare_v2(db, clear[i], -1, &st, NULL) != SQLITE_OK)
            return fail(s, err, "preparing an analysis delete");
        sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            return fail(s, err, "clearing an analysis");
    }
    if (sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO sample_analysis(sample_id, version, telfhash,"
                           " gimphash, dhash_icon, ole, clamav_scanned) VALUES(?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, err, "preparing an analysis insert");
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, TR_ANALYSIS_VERSION);
    sqlite3_bind_text(st, 3, b->telfhash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, b->gimphash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, b->dhash_icon, -1, SQLITE_STATIC);
    bind_or_null(st, 6, b->ole_json);
    sqlite3_bind_int(st, 7, b->clamav_scanned ? 1 : 0);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return fail(s, err, "storing an analysis");
    if (b->n_clamav) {
        if (sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO sample_clamav(sample_id, name) VALUES(?,?)",
                               -1, &st, NULL) != SQLITE_OK)
            return fail(s, err, "preparing a detection insert");
        for (size_t i = 0; i < b->n_clamav; i++) {
            sqlite3_reset(st);
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_text(st, 2, b->clamav[i], -1, SQLITE_STATIC);
            if (sqlite3_step(st) != SQLITE_DONE) {
                sqlite3_finalize(st);
                return fail(s, err, "storing a detection");
            }
        }
        sqlite3_finalize(st);
    }
    if (b->n_certs == 0)
        return 0;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO sample_certs(sample_id, idx, serial, thumbprint, issuer,"
                           " subject, issuer_cn, subject_cn, algorithm, valid_from, valid_to)"
                           " VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, err, "preparing a certificate insert");
    for (size_t i = 0; i < b->n_certs; i++) {
        const tr_cert *c = &b->certs[i];
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
        sqlite3_bind_text(st, 3, c->serial, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, c->thumbprint, -1, SQLITE_STATIC);
        bind_or_null(st, 5, c->issuer);
        bind_or_null(st, 6, c->subject);
        bind_or_null(st, 7, c->issuer_cn);
        bind_or_null(st, 8, c->subject_cn);
        bind_or_null(st, 9, c->algorithm);
        sqlite3_bind_int64(st, 10, c->valid_from);
        sqlite3_bind_int64(st, 11, c->valid_to);
        if (sqlite3_step(st) != SQLITE_DONE) {
            sqlite3_finalize(st);
            return fail(s, err, "storing a certificate");
        }
    }
    sqlite3_finalize(st);
    return 0;
}

int store_analyze_staged(tr_store *s, const char *path, tr_bin_info **out, tr_error *err)
{
    *out = NULL;
    tr_binan *a = store_binan(s, err);
    if (!a)
        return -1;
    tr_map m;
    if (tr_map_open(&m, path, err) != 0)
        return -1;
    *out = tr_bin_analyze(a, m.data, m.len);
    tr_map_close(&m);
    return 0;
}

int store_analysis_of_file(tr_store *s, int64_t id, const char *path, tr_error *err)
{
    tr_bin_info *b = NULL;
    if (store_analyze_staged(s, path, &b, err) != 0)
        return -1;
    int rc = store_analysis_put(s, id, b, err);
    tr_bin_info_free(b);
    return rc;
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? tr_xstrdup((const char *)t) : NULL;
}

#define CERT_COLUMNS                                                                          \
    "serial, thumbprint, issuer, subject, issuer_cn, subject_cn, algorithm, valid_from, valid_to"

static void cert_from_row(sqlite3_stmt *st, int col, tr_cert *c)
{
    c->serial = col_dup(st, col);
    c->thumbprint = col_dup(st, col + 1);
    c->issuer = col_dup(st, col + 2);
    c->subject = col_dup(st, col + 3);
    c->issuer_cn = col_dup(st, col + 4);
    c->subject_cn = col_dup(st, col + 5);
    c->algorithm = col_dup(st, col + 6);
    c->valid_from = sqlite3_column_int64(st, col + 7);
    c->valid_to = sqlite3_column_int64(st, col + 8);
}

static int load_names(tr_store *s, int64_t id, char ***names, size_t *n, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store_db(s),
                           "SELECT name FROM sample_clamav WHERE sample_id=? ORDER BY name", -1, &st,
                           NULL) != SQLITE_OK)
        return fail(s, err, "reading detections");
    sqlite3_bind_int64(st, 1, id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        *names = tr_xrealloc(*names, (*n + 1) * sizeof **names);
        (*names)[(*n)++] = col_dup(st, 0);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fail(s, err, "reading detections");
}

int store_analysis_load(tr_store *s, int64_t id, tr_bin_info **out, tr_error *err)
{
    *out = NULL;
    if (!have_tables(s))
        return 0;
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT telfhash, gimphash, dhash_icon, ole, clamav_scanned FROM sample_analysis"
                           " WHERE sample_id=?", -1, &st,
                           NULL) != SQLITE_OK)
        return fail(s, err, "reading an analysis");
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = tr_xcalloc(1, sizeof **out);
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf((*out)->telfhash, sizeof (*out)->telfhash, "%s", t ? (const char *)t : "");
        t = sqlite3_column_text(st, 1);
        snprintf((*out)->gimphash, sizeof (*out)->gimphash, "%s", t ? (const char *)t : "");
        t = sqlite3_column_text(st, 2);
        snprintf((*out)->dhash_icon, sizeof (*out)->dhash_icon, "%s", t ? (const char *)t : "");
        (*out)->ole_json = col_dup(st, 3);
        (*out)->clamav_scanned = sqlite3_column_int(st, 4) != 0;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? 0 : fail(s, err, "reading an analysis");
    if (sqlite3_prepare_v2(db, "SELECT " CERT_COLUMNS " FROM sample_certs WHERE sample_id=? ORDER BY idx",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, err, "reading certificates");
    sqlite3_bind_int64(st, 1, id);
    tr_bin_info *b = *out;
    char ***cl = &b->clamav;
    if (load_names(s, id, cl, &b->n_clamav, err) != 0) {
        sqlite3_finalize(st);
        return -1;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        b->certs = tr_xrealloc(b->certs, (b->n_certs + 1) * sizeof *b->certs);
        memset(&b->certs[b->n_certs], 0, sizeof *b->certs);
        cert_from_row(st, 0, &b->certs[b->n_certs++]);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fail(s, err, "reading certificates");
}

int tr_store_analysis_ids(tr_store *s, tr_analysis_key key, const char *value, int64_t limit,
                          int64_t **ids, size_t *n, tr_error *err)
{
    *ids = NULL;
    *n = 0;
    if (!have_tables(s))
        return 0;
    static const char *const sql[] = {
        [TR_AKEY_TELFHASH] = "SELECT sample_id FROM sample_analysis WHERE telfhash = lower(?1)"
                             " AND telfhash != '' ORDER BY sample_id DESC LIMIT ?2",
        [TR_AKEY_GIMPHASH] = "SELECT sample_id FROM sample_analysis WHERE gimphash = lower(?1)"
                             " AND gimphash != '' ORDER BY sample_id DESC LIMIT ?2",
        [TR_AKEY_DHASH_ICON] = "SELECT sample_id FROM sample_analysis WHERE dhash_icon = lower(?1)"
                               " AND dhash_icon != '' ORDER BY sample_id DESC LIMIT ?2",
        [TR_AKEY_CLAMAV] = "SELECT sample_id FROM sample_clamav WHERE name = ?1"
                           " ORDER BY sample_id DESC LIMIT ?2",
        [TR_AKEY_SERIAL] = "SELECT DISTINCT sample_id FROM sample_certs WHERE serial = ?1"
                           " ORDER BY sample_id DESC LIMIT ?2",
        [TR_AKEY_ISSUER_CN] = "SELECT DISTINCT sample_id FROM sample_certs"
                              " WHERE issuer_cn = ?1 COLLATE NOCASE ORDER BY sample_id DESC LIMIT ?2",
        [TR_AKEY_SUBJECT_CN] = "SELECT DISTINCT sample_id FROM sample_certs"
                               " WHERE subject_cn = ?1 COLLATE NOCASE ORDER BY sample_id DESC LIMIT ?2",
    };
    if ((unsigned)key >= sizeof sql / sizeof sql[0])
        return tr_fail(err, "unknown analysis key %d", (int)key);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store_db(s), sql[key], -1, &st, NULL) != SQLITE_OK)
        return fail(s, err, "preparing an analysis lookup");
    sqlite3_bind_text(st, 1, value, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *ids = tr_xrealloc(*ids, cap * sizeof **ids);
        }
        (*ids)[(*n)++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(*ids);
        *ids = NULL;
        *n = 0;
        return fail(s, err, "looking up an analysis");
    }
    return 0;
}

int tr_store_cscb(tr_store *s, tr_cscb_entry **out, size_t *n, tr_error *err)
{
    *out = NULL;
    *n = 0;
    if (!have_tables(s))
        return 0;
    sqlite3_stmt *st = NULL;
    /* One entry per certificate (serial and thumbprint); listed when the
     * first sample it signed was stored, with that sample's signature. */
    if (sqlite3_prepare_v2(store_db(s),
                           "SELECT " CERT_COLUMNS ", first, (SELECT signature FROM samples"
                           " WHERE id = first_id) FROM (SELECT c.*, min(x.first_seen) AS first,"
                           " min(x.id) AS first_id FROM sample_certs c JOIN samples x"
                           " ON x.id = c.sample_id GROUP BY c.serial, c.thumbprint)"
                           " ORDER BY first DESC, serial",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, err, "preparing the certificate blocklist");
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = tr_xrealloc(*out, cap * sizeof **out);
        }
        tr_cscb_entry *e = &(*out)[(*n)++];
        memset(e, 0, sizeof *e);
        cert_from_row(st, 0, &e->cert);
        e->first_seen = sqlite3_column_int64(st, 9);
        e->signature = col_dup(st, 10);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        tr_cscb_free(*out, *n);
        *out = NULL;
        *n = 0;
        return fail(s, err, "reading the certificate blocklist");
    }
    return 0;
}

void tr_cscb_free(tr_cscb_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tr_cert_free(&e[i].cert);
        free(e[i].signature);
    }
    free(e);
}

/* The type columns as this version's libmagic and rules answer them. A
 * script type given by the file's name at upload (a .js delivered as text)
 * stays while libmagic still says text. Returns 1 when a column changed. */
static int retype(tr_store *s, int64_t id, const tr_analysis *an, const char *mime,
                  const char *magic, const char *type, tr_error *err)
{
    const char *t = an->file_type;
    if (strcmp(t, "txt") == 0 && type && strcmp(type, "txt") != 0) {
        char probe[32];
        snprintf(probe, sizeof probe, "x.%s", type);
        if (strcmp(tr_filetype_refine("txt", probe), type) == 0)
            t = type;
    }
    if (mime && magic && type && strcmp(mime, an->mime) == 0 && strcmp(magic, an->magic) == 0 &&
        strcmp(type, t) == 0)
        return 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store_db(s), "UPDATE samples SET mime=?, magic=?, file_type=? WHERE id=?",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, err, "preparing a type update");
    sqlite3_bind_text(st, 1, an->mime, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, an->magic, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, t, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 1 : fail(s, err, "updating a sample's type");
}

enum { BACKFILL_BATCH = 64 };

int tr_store_analyze_backfill(tr_store *s, bool redo, tr_analyze_cb cb, void *arg,
                              int64_t *done, int64_t *retyped, tr_error *err)
{
    *done = 0;
    if (retyped)
        *retyped = 0;
    int64_t after = 0;
    sqlite3 *db = store_db(s);
    tr_analyzer *an = NULL;
    if (tr_analyzer_new(&an, err) != 0)
        return -1;
    int ret = 0;
    for (;;) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db,
                               "SELECT x.id, x.sha256, x.mime, x.magic, x.file_type FROM samples x"
                               " LEFT JOIN sample_analysis a ON a.sample_id = x.id WHERE x.id > ?1"
                               " AND (?2 OR a.sample_id IS NULL OR a.version < ?3"
                               " OR (?4 AND a.clamav_scanned = 0))"
                               " ORDER BY x.id LIMIT 64",
                               -1, &st, NULL) != SQLITE_OK) {
            ret = fail(s, err, "listing samples to analyse");
            break;
        }
        sqlite3_bind_int64(st, 1, after);
        sqlite3_bind_int(st, 2, redo ? 1 : 0);
        sqlite3_bind_int(st, 3, TR_ANALYSIS_VERSION);
        sqlite3_bind_int(st, 4, tr_clamav_enabled() ? 1 : 0);
        int64_t ids[BACKFILL_BATCH];
        char sha[BACKFILL_BATCH][TR_SHA256_HEX];
        char *old[BACKFILL_BATCH][3];
        size_t k = 0;
        int rc;
        while (k < BACKFILL_BATCH && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            ids[k] = sqlite3_column_int64(st, 0);
            const unsigned char *t = sqlite3_column_text(st, 1);
            snprintf(sha[k], sizeof sha[k], "%s", t ? (const char *)t : "");
            for (int c = 0; c < 3; c++) {
                t = sqlite3_column_text(st, 2 + c);
                old[k][c] = t ? tr_xstrdup((const char *)t) : NULL;
            }
            k++;
        }
        sqlite3_finalize(st);
        if (k == 0)
            break;
        after = ids[k - 1];
        /* A batch per transaction: the analysis of a blob runs outside the
         * write lock, its rows are written together. */
        tr_bin_info *res[BACKFILL_BATCH] = {0};
        tr_analysis *types = tr_xcalloc(k, sizeof *types);
        for (size_t i = 0; i < k; i++) {
            char *path = tr_store_blob_path(s, sha[i]);
            tr_map m;
            tr_error merr;
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd >= 0 && tr_map_fd(&m, fd, &merr) == 0) {
                res[i] = tr_analyze_all(an, fd, m.data, m.len, &types[i]);
                tr_map_close(&m);
            } else if (cb) {
                if (fd < 0)
                    tr_fail_errno(&merr, "cannot open %s", path);
                cb(arg, sha[i], merr.msg);
            }
            if (fd >= 0)
                close(fd);
            free(path);
        }
        rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK
                 ? 0
                 : fail(s, err, "starting a transaction");
        int64_t changed = 0;
        for (size_t i = 0; i < k && rc == 0; i++)
            if (res[i]) {
                rc = store_analysis_put(s, ids[i], res[i], err);
                if (rc == 0) {
                    int r = retype(s, ids[i], &types[i], old[i][0], old[i][1], old[i][2], err);
                    if (r < 0)
                        rc = -1;
                    changed += r > 0;
                }
                if (rc == 0 && cb)
                    cb(arg, sha[i], NULL);
            }
        if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            rc = fail(s, err, "committing analyses");
        if (rc != 0)
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        else if (retyped)
            *retyped += changed;
        for (size_t i = 0; i < k; i++) {
            if (rc == 0 && res[i])
                (*done)++;
            tr_bin_info_free(res[i]);
            for (int c = 0; c < 3; c++)
                free(old[i][c]);
        }
        free(types);
        if (rc != 0) {
            ret = -1;
            break;
        }
    }
    tr_analyzer_free(an);
    return ret;
}
