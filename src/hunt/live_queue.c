/* Live scans behind the server's uploads: an upload commits and answers at
 * once, and this thread scans the new samples against the live rule sets.
 * A slow or crashing rule set then costs scan time here, never an upload or
 * a request thread. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hunt/hunt_internal.h"

/* Samples scanned together: one verifier start per rule set per batch. */
#define BATCH 64

struct tr_live_queue {
    char *data_dir;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int64_t *ids;              /* ring of capacity entries */
    size_t cap, head, n;
    size_t scanning;           /* samples in the batch being scanned */
    bool scanning_pending;     /* that batch came from the pending table */
    bool pending;              /* the database may hold pending samples */
    bool stopping;
    _Atomic bool stop;         /* stopping, read by the scan without the lock */
    void (*fork_guard)(void *arg, bool before);
    void *fork_guard_arg;
};

int tr_live_mark_pending(const char *data_dir, const int64_t *ids, size_t n, tr_error *err)
{
    if (n == 0)
        return 0;
    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, err) != 0)
        return -1;
    sqlite3_stmt *st;
    int ret = 0;
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO live_pending(sample_id) VALUES(?)", -1, &st,
                           NULL) != SQLITE_OK) {
        ret = hunt_db_fail(db, err);
        sqlite3_close(db);
        return ret;
    }
    for (size_t i = 0; i < n && ret == 0; i++) {
        sqlite3_bind_int64(st, 1, ids[i]);
        if (sqlite3_step(st) != SQLITE_DONE)
            ret = hunt_db_fail(db, err);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (sqlite3_exec(db, ret == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK &&
        ret == 0)
        ret = hunt_db_fail(db, err);
    sqlite3_close(db);
    return ret;
}

/* Up to max pending ids, oldest first. */
static int load_pending(const char *data_dir, int64_t *ids, size_t max, size_t *n, tr_error *err)
{
    *n = 0;
    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, err) != 0)
        return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT sample_id FROM live_pending ORDER BY sample_id LIMIT ?", -1,
                           &st, NULL) != SQLITE_OK) {
        int rc = hunt_db_fail(db, err);
        sqlite3_close(db);
        return rc;
    }
    sqlite3_bind_int64(st, 1, (int64_t)max);
    while (*n < max && sqlite3_step(st) == SQLITE_ROW)
        ids[(*n)++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return 0;
}

static void clear_pending(const char *data_dir, const int64_t *ids, size_t n)
{
    tr_error err;
    sqlite3 *db;
    if (hunt_db_open(data_dir, &db, &err) != 0) {
        tr_log(TR_LOG_WARN, "livehunt: %s", err.msg);
        return;
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "DELETE FROM live_pending WHERE sample_id=?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        for (size_t i = 0; i < n; i++) {
            sqlite3_bind_int64(st, 1, ids[i]);
            sqlite3_step(st);
            sqlite3_reset(st);
        }
        sqlite3_finalize(st);
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            tr_log(TR_LOG_WARN, "livehunt: %s", sqlite3_errmsg(db));
    }
    sqlite3_close(db);
}

static void scan(tr_live_queue *q, const int64_t *ids, size_t n)
{
    tr_error err;
    tr_store *s = NULL;
    if (tr_store_open(q->data_dir, 0, &s, &err) != 0 ||
        hunt_live_scan(s, ids, n, &q->stop, q->fork_guard, q->fork_guard_arg, &err) != 0)
        tr_log(TR_LOG_ERROR, "livehunt: %s", err.msg);
    tr_store_close(s);
}

static void *queue_main(void *arg)
{
    tr_live_queue *q = arg;
    int64_t batch[BATCH];
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (!q->n && !q->pending && !q->stopping)
            pthread_cond_wait(&q->wake, &q->lock);
        if (q->stopping)
            break;
        size_t n = 0;
        bool from_db = false;
        if (q->n) {
            for (; n < BATCH && q->n; n++, q->n--) {
                batch[n] = q->ids[q->head];
                q->head = (q->head + 1) % q->cap;
            }
        } else {
            q->pending = false;
            from_db = true;
            /* From here until the batch is cleared, the backlog counts the
             * pending table: with neither flag set while the batch was being
             * loaded, scans_pending read 0 with samples still unscanned. */
            q->scanning_pending = true;
        }
        q->scanning = n;
        pthread_mutex_unlock(&q->lock);
        if (from_db) {
            tr_error err;
            if (load_pending(q->data_dir, batch, BATCH, &n, &err) != 0)
                tr_log(TR_LOG_ERROR, "livehunt: pending samples: %s", err.msg);
            pthread_mutex_lock(&q->lock);
            q->scanning = n;
            /* A full batch: there may be more behind it. */
            if (n == BATCH)
                q->pending = true;
            pthread_mutex_unlock(&q->lock);
        }
        if (n) {
            scan(q, batch, n);
            tr_error err;
            /* Cut short by a stop: scanned again after the restart (a hit
             * already stored is not stored twice). */
            if (atomic_load(&q->stop)) {
                if (!from_db && tr_live_mark_pending(q->data_dir, batch, n, &err) != 0)
                    tr_log(TR_LOG_ERROR, "livehunt: %s", err.msg);
            } else if (from_db) {
                clear_pending(q->data_dir, batch, n);
            }
        }
        pthread_mutex_lock(&q->lock);
        q->scanning = 0;
        q->scanning_pending = false;
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

int tr_live_queue_start(const char *data_dir, size_t capacity,
                        void (*fork_guard)(void *arg, bool before), void *fork_guard_arg,
                        tr_live_queue **out, tr_error *err)
{
    (void)err;
    tr_live_queue *q = tr_xcalloc(1, sizeof *q);
    q->fork_guard = fork_guard;
    q->fork_guard_arg = fork_guard_arg;
    q->data_dir = tr_xstrdup(data_dir);
    q->cap = capacity ? capacity : TR_LIVE_QUEUE_DEFAULT;
    q->ids = tr_xcalloc(q->cap, sizeof *q->ids);
    q->pending = true;                 /* what a stopped or crashed server left */
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->wake, NULL);
    if (pthread_create(&q->thread, NULL, queue_main, q) != 0)
        tr_die("cannot start the livehunt thread");
    *out = q;
    return 0;
}

void tr_live_queue_push(tr_live_queue *q, const int64_t *ids, size_t n)
{
    size_t spill_from = n;
    pthread_mutex_lock(&q->lock);
    for (size_t i = 0; i < n; i++) {
        if (q->n == q->cap) {
            spill_from = i;
            break;
        }
        q->ids[(q->head + q->n) % q->cap] = ids[i];
        q->n++;
    }
    pthread_mutex_unlock(&q->lock);
    if (spill_from < n) {
        tr_error err;
        if (tr_live_mark_pending(q->data_dir, ids + spill_from, n - spill_from, &err) != 0)
            tr_log(TR_LOG_ERROR, "livehunt: %zu samples will not be scanned: %s",
                   n - spill_from, err.msg);
    }
    pthread_mutex_lock(&q->lock);
    if (spill_from < n)
        q->pending = true;
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
}

uint64_t tr_live_queue_backlog(tr_live_queue *q)
{
    pthread_mutex_lock(&q->lock);
    /* A batch from the pending table is still in it: counted there. */
    uint64_t n = q->n + (q->scanning_pending ? 0 : q->scanning);
    bool pending = q->pending || q->scanning_pending;
    pthread_mutex_unlock(&q->lock);
    if (pending) {
        tr_error err;
        sqlite3 *db;
        if (hunt_db_open(q->data_dir, &db, &err) == 0) {
            sqlite3_stmt *st;
            if (sqlite3_prepare_v2(db, "SELECT count(*) FROM live_pending", -1, &st, NULL) ==
                SQLITE_OK) {
                if (sqlite3_step(st) == SQLITE_ROW)
                    n += (uint64_t)sqlite3_column_int64(st, 0);
                sqlite3_finalize(st);
            }
            sqlite3_close(db);
        }
    }
    return n;
}

void tr_live_queue_stop(tr_live_queue *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->lock);
    q->stopping = true;
    atomic_store(&q->stop, true);
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
    pthread_join(q->thread, NULL);
    /* The next start catches up with what was not scanned. */
    int64_t *left = tr_xcalloc(q->n ? q->n : 1, sizeof *left);
    for (size_t i = 0; i < q->n; i++)
        left[i] = q->ids[(q->head + i) % q->cap];
    tr_error err;
    if (tr_live_mark_pending(q->data_dir, left, q->n, &err) != 0)
        tr_log(TR_LOG_ERROR, "livehunt: %zu queued samples will not be scanned: %s", q->n,
               err.msg);
    free(left);
    pthread_cond_destroy(&q->wake);
    pthread_mutex_destroy(&q->lock);
    free(q->ids);
    free(q->data_dir);
    free(q);
}
