#include "auth/auth.h"

#include <openssl/rand.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

struct tr_auth {
    sqlite3 *db;
    /* The key check runs on every request: parsing its SQL each time showed in profiles. */
    sqlite3_stmt *check_st;
};

const char *tr_role_name(tr_role r)
{
    switch (r) {
    case TR_ROLE_READER: return "reader";
    case TR_ROLE_ANALYST: return "analyst";
    case TR_ROLE_ADMIN: return "admin";
    case TR_ROLE_NONE: break;
    }
    return "anonymous";
}

tr_role tr_role_parse(const char *name)
{
    if (!name)
        return TR_ROLE_NONE;
    if (strcmp(name, "reader") == 0)
        return TR_ROLE_READER;
    if (strcmp(name, "analyst") == 0)
        return TR_ROLE_ANALYST;
    if (strcmp(name, "admin") == 0)
        return TR_ROLE_ADMIN;
    return TR_ROLE_NONE;
}

static int auth_fail(tr_auth *a, tr_error *err, const char *what)
{
    return tr_fail(err, "database error while %s: %s", what, sqlite3_errmsg(a->db));
}

int tr_auth_open(const char *data_dir, tr_auth **out, tr_error *err)
{
    tr_auth *a = tr_xcalloc(1, sizeof *a);
    char *path = tr_xasprintf("%s/trawl.db", data_dir);
    int rc = sqlite3_open_v2(path, &a->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                               SQLITE_OPEN_NOMUTEX, NULL);
    free(path);
    if (rc != SQLITE_OK) {
        tr_fail(err, "cannot open %s/trawl.db: %s", data_dir,
                a->db ? sqlite3_errmsg(a->db) : "out of memory");
        tr_auth_close(a);
        return -1;
    }
    sqlite3_busy_timeout(a->db, 30000);
    char *msg = NULL;
    if (sqlite3_exec(a->db,
                     "PRAGMA journal_mode=WAL;"
                     "CREATE TABLE IF NOT EXISTS api_keys("
                     " id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
                     " role TEXT NOT NULL, key_sha256 TEXT NOT NULL UNIQUE,"
                     " created INTEGER NOT NULL, last_used INTEGER NOT NULL DEFAULT 0);",
                     NULL, NULL, &msg) != SQLITE_OK) {
        tr_fail(err, "cannot prepare the key table: %s", msg ? msg : "?");
        sqlite3_free(msg);
        tr_auth_close(a);
        return -1;
    }
    *out = a;
    return 0;
}

void tr_auth_close(tr_auth *a)
{
    if (!a)
        return;
    sqlite3_finalize(a->check_st);
    sqlite3_close_v2(a->db);
    free(a);
}

int tr_auth_add_key(tr_auth *a, const char *name, tr_role role, char key_out[TR_KEY_LEN],
                    tr_error *err)
{
    if (role == TR_ROLE_NONE)
        return tr_fail(err, "a key needs a role: reader, analyst or admin");
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen >= 128)
        return tr_fail(err, "a key name must be 1 to 127 characters");
    unsigned char raw[20];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return tr_fail(err, "no randomness available for a key");
    memcpy(key_out, "trawl_", 6);
    tr_hex_encode(raw, sizeof raw, key_out + 6);
    char digest[TR_SHA256_HEX];
    tr_sha256_hex(key_out, strlen(key_out), digest);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(a->db,
                           "INSERT INTO api_keys(name, role, key_sha256, created) VALUES(?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return auth_fail(a, err, "adding a key");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, tr_role_name(role), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, digest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, tr_now_unix());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT)
        return tr_fail(err, "a key named '%s' exists already ('trawl key rm %s' first)", name, name);
    if (rc != SQLITE_DONE)
        return auth_fail(a, err, "adding a key");
    return 0;
}

int tr_auth_remove_key(tr_auth *a, const char *name, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(a->db, "DELETE FROM api_keys WHERE name=?", -1, &st, NULL) != SQLITE_OK)
        return auth_fail(a, err, "removing a key");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return auth_fail(a, err, "removing a key");
    return sqlite3_changes(a->db) > 0 ? 1 : 0;
}

int tr_auth_list_keys(tr_auth *a, tr_key_info **out, size_t *n, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(a->db, "SELECT name, role, created, last_used FROM api_keys ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK)
        return auth_fail(a, err, "listing keys");
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            *out = tr_xrealloc(*out, cap * sizeof **out);
        }
        tr_key_info *k = &(*out)[(*n)++];
        snprintf(k->name, sizeof k->name, "%s", (const char *)sqlite3_column_text(st, 0));
        k->role = tr_role_parse((const char *)sqlite3_column_text(st, 1));
        k->created = sqlite3_column_int64(st, 2);
        k->last_used = sqlite3_column_int64(st, 3);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : auth_fail(a, err, "listing keys");
}

int tr_auth_check(tr_auth *a, const char *key, tr_role *role, char name[128], tr_error *err)
{
    if (!key || strncmp(key, "trawl_", 6) != 0 || strlen(key) != TR_KEY_LEN - 1)
        return 0;
    char digest[TR_SHA256_HEX];
    tr_sha256_hex(key, strlen(key), digest);
    if (!a->check_st &&
        sqlite3_prepare_v3(a->db, "SELECT name, role, last_used FROM api_keys WHERE key_sha256=?",
                           -1, SQLITE_PREPARE_PERSISTENT, &a->check_st, NULL) != SQLITE_OK)
        return auth_fail(a, err, "checking a key");
    sqlite3_stmt *st = a->check_st;
    sqlite3_bind_text(st, 1, digest, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int found = 0;
    int64_t last_used = 0;
    if (rc == SQLITE_ROW) {
        snprintf(name, 128, "%s", (const char *)sqlite3_column_text(st, 0));
        *role = tr_role_parse((const char *)sqlite3_column_text(st, 1));
        last_used = sqlite3_column_int64(st, 2);
        found = 1;
    } else if (rc != SQLITE_DONE) {
        found = auth_fail(a, err, "checking a key");
    }
    /* Reset ends the read transaction, so the next check sees keys added or removed since. */
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    /* last_used at minute granularity: a write per request would serialise
     * every reader behind the database's write lock. */
    int64_t now = tr_now_unix();
    if (found == 1 && now - last_used >= 60) {
        if (sqlite3_prepare_v2(a->db, "UPDATE api_keys SET last_used=? WHERE key_sha256=?", -1, &st,
                               NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, now);
            sqlite3_bind_text(st, 2, digest, -1, SQLITE_STATIC);
            sqlite3_step(st);
            sqlite3_finalize(st);
        }
    }
    return found;
}
