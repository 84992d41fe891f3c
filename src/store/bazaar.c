/* What MalwareBazaar's API keeps beside a sample: whether its first upload
 * was anonymous (and by whom, never shown), how often it was downloaded and
 * uploaded, and the references and context its uploaders gave. A row exists
 * only once one of these is set; a sample without one has the defaults. */
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

static int fail(tr_store *s, tr_error *err, const char *what)
{
    return tr_fail(err, "database: %s: %s", what, sqlite3_errmsg(store_db(s)));
}

void tr_sample_bazaar_clear(tr_sample_bazaar *b)
{
    free(b->owner);
    free(b->references);
    free(b->context);
    memset(b, 0, sizeof *b);
}

static char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? tr_xstrdup((const char *)t) : NULL;
}

int tr_store_bazaar_get(tr_store *s, int64_t id, tr_sample_bazaar *out, tr_error *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store_db(s),
                           "SELECT anonymous, owner, downloads, uploads, refs, context"
                           " FROM sample_bazaar WHERE sample_id=?",
                           -1, &st, NULL) != SQLITE_OK) {
        /* A database last opened for writing by an older trawl, read here
         * read-only: nothing was ever recorded. */
        if (store_readonly(s) && strstr(sqlite3_errmsg(store_db(s)), "no such table"))
            return 0;
        return fail(s, err, "reading a sample's Bazaar fields");
    }
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->anonymous = sqlite3_column_int(st, 0) != 0;
        out->owner = col_text(st, 1);
        out->downloads = sqlite3_column_int64(st, 2);
        out->uploads = sqlite3_column_int64(st, 3);
        out->references = col_text(st, 4);
        out->context = col_text(st, 5);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(s, err, "reading a sample's Bazaar fields");
    return 0;
}

static int exec_bound(tr_store *s, const char *sql, int64_t id, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) != SQLITE_OK)
        return fail(s, err, "updating a sample's Bazaar fields");
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fail(s, err, "updating a sample's Bazaar fields");
}

int tr_store_bazaar_count(tr_store *s, int64_t id, bool download, tr_error *err)
{
    if (exec_bound(s, "INSERT OR IGNORE INTO sample_bazaar(sample_id) VALUES(?)", id, err) != 0)
        return -1;
    return exec_bound(s,
                      download ? "UPDATE sample_bazaar SET downloads = downloads + 1 WHERE sample_id=?"
                               : "UPDATE sample_bazaar SET uploads = uploads + 1 WHERE sample_id=?",
                      id, err);
}

int tr_store_bazaar_set(tr_store *s, int64_t id, int anonymous, const char *owner,
                        const char *references, const char *context, tr_error *err)
{
    if (exec_bound(s, "INSERT OR IGNORE INTO sample_bazaar(sample_id) VALUES(?)", id, err) != 0)
        return -1;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store_db(s),
                           "UPDATE sample_bazaar SET anonymous=CASE WHEN ?1 < 0 THEN anonymous"
                           " ELSE ?1 END, owner=COALESCE(?2, owner), refs=COALESCE(?3, refs),"
                           " context=COALESCE(?4, context) WHERE sample_id=?5",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, err, "updating a sample's Bazaar fields");
    sqlite3_bind_int(st, 1, anonymous);
    if (owner)
        sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
    if (references)
        sqlite3_bind_text(st, 3, references, -1, SQLITE_STATIC);
    if (context)
        sqlite3_bind_text(st, 4, context, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fail(s, err, "updating a sample's Bazaar fields");
}
