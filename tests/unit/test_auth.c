/* auth: keys are shown once, stored hashed, checked by role. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/core.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/trawl-test-auth-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = tr_xasprintf("rm -rf '%s'", dir);
    int rc = system(cmd);
    free(cmd);
    return rc;
}

static void test_roles(void **state)
{
    (void)state;
    assert_int_equal(tr_role_parse("reader"), TR_ROLE_READER);
    assert_int_equal(tr_role_parse("analyst"), TR_ROLE_ANALYST);
    assert_int_equal(tr_role_parse("admin"), TR_ROLE_ADMIN);
    assert_int_equal(tr_role_parse("root"), TR_ROLE_NONE);
    assert_int_equal(tr_role_parse(NULL), TR_ROLE_NONE);
    assert_true(TR_ROLE_ADMIN > TR_ROLE_ANALYST && TR_ROLE_ANALYST > TR_ROLE_READER);
    assert_string_equal(tr_role_name(TR_ROLE_NONE), "anonymous");
}

static void test_add_check_remove(void **state)
{
    (void)state;
    tr_auth *a;
    tr_error err;
    assert_int_equal(tr_auth_open(dir, &a, &err), 0);
    char k1[TR_KEY_LEN], k2[TR_KEY_LEN];
    assert_int_equal(tr_auth_add_key(a, "alice", TR_ROLE_ADMIN, k1, &err), 0);
    assert_int_equal(tr_auth_add_key(a, "bob", TR_ROLE_READER, k2, &err), 0);
    assert_int_equal(strlen(k1), TR_KEY_LEN - 1);
    assert_memory_equal(k1, "trawl_", 6);
    assert_string_not_equal(k1, k2);
    assert_int_equal(tr_auth_add_key(a, "alice", TR_ROLE_READER, k2, &err), -1);
    assert_non_null(strstr(err.msg, "exists already"));
    assert_int_equal(tr_auth_add_key(a, "x", TR_ROLE_NONE, k2, &err), -1);

    tr_role role = TR_ROLE_NONE;
    char name[128];
    assert_int_equal(tr_auth_check(a, k1, &role, name, &err), 1);
    assert_int_equal(role, TR_ROLE_ADMIN);
    assert_string_equal(name, "alice");
    char wrong[TR_KEY_LEN];
    memcpy(wrong, k1, sizeof wrong);
    wrong[10] = wrong[10] == 'a' ? 'b' : 'a';
    assert_int_equal(tr_auth_check(a, wrong, &role, name, &err), 0);
    assert_int_equal(tr_auth_check(a, "", &role, name, &err), 0);
    assert_int_equal(tr_auth_check(a, "trawl_short", &role, name, &err), 0);

    tr_key_info *keys;
    size_t n;
    assert_int_equal(tr_auth_list_keys(a, &keys, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(keys[0].name, "alice");
    assert_true(keys[0].last_used > 0);       /* just checked */
    assert_int_equal(keys[1].last_used, 0);
    free(keys);

    assert_int_equal(tr_auth_remove_key(a, "alice", &err), 1);
    assert_int_equal(tr_auth_remove_key(a, "alice", &err), 0);
    assert_int_equal(tr_auth_check(a, k1, &role, name, &err), 0);
    tr_auth_close(a);
}

/* The database never holds a key, only its sha256. */
static void test_only_hashes_are_stored(void **state)
{
    (void)state;
    tr_auth *a;
    tr_error err;
    assert_int_equal(tr_auth_open(dir, &a, &err), 0);
    char k[TR_KEY_LEN];
    assert_int_equal(tr_auth_add_key(a, "carol", TR_ROLE_ANALYST, k, &err), 0);
    tr_auth_close(a);
    char *path = tr_xasprintf("%s/trawl.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT key_sha256 FROM api_keys", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    char want[TR_SHA256_HEX];
    tr_sha256_hex(k, strlen(k), want);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), want);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(path);
    /* And the key is in no file of the directory. */
    char *cmd = tr_xasprintf("! grep -r -q '%s' '%s'", k + 6, dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles),
        cmocka_unit_test_setup_teardown(test_add_check_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_hashes_are_stored, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
