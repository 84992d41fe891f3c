/* kblink/watch: has anything in trawl.db changed since the last look? SQLite
 * answers that for free: PRAGMA data_version changes whenever another
 * connection (any process) commits to the database. */
#include <sqlite3.h>
#include <stdlib.h>

#include "kblink/kblink.h"

struct tr_kblink_watch {
    sqlite3 *db;
    int64_t last;
    bool primed;
};

int tr_kblink_watch_open(const char *data_dir, tr_kblink_watch **out, tr_error *err)
{
    *out = NULL;
    tr_kblink_watch *w = tr_xcalloc(1, sizeof *w);
    char *path = tr_xasprintf("%s/trawl.db", data_dir);
    int rc = sqlite3_open_v2(path, &w->db, SQLITE_OPEN_READONLY, NULL);
    free(path);
    if (rc != SQLITE_OK) {
        tr_fail(err, "kb watch: cannot open %s/trawl.db: %s", data_dir,
                w->db ? sqlite3_errmsg(w->db) : "out of memory");
        tr_kblink_watch_close(w);
        return -1;
    }
    sqlite3_busy_timeout(w->db, 5000);
    *out = w;
    return 0;
}

int tr_kblink_watch_poll(tr_kblink_watch *w, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(w->db, "PRAGMA data_version", -1, &st, NULL) != SQLITE_OK)
        return tr_fail(err, "kb watch: %s", sqlite3_errmsg(w->db));
    int rc = sqlite3_step(st);
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return tr_fail(err, "kb watch: %s", sqlite3_errmsg(w->db));
    int changed = !w->primed || v != w->last;
    w->primed = true;
    w->last = v;
    return changed;
}

void tr_kblink_watch_close(tr_kblink_watch *w)
{
    if (!w)
        return;
    sqlite3_close(w->db);
    free(w);
}
