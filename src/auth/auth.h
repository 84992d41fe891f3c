/* auth: API keys and roles. A key is shown once when created; only its
 * sha256 is stored (table api_keys in trawl.db). */
#ifndef TRAWL_AUTH_H
#define TRAWL_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

typedef enum tr_role {
    TR_ROLE_NONE = 0,         /* anonymous */
    TR_ROLE_READER = 1,       /* list, search, download */
    TR_ROLE_ANALYST = 2,      /* + upload, hunt, live rules, tags, comments */
    TR_ROLE_ADMIN = 3,        /* + keys, deletes */
} tr_role;

const char *tr_role_name(tr_role r);
/* "reader" | "analyst" | "admin" -> role; TR_ROLE_NONE if unknown. */
tr_role tr_role_parse(const char *name);

/* A handle serves one thread at a time (it keeps prepared statements). */
typedef struct tr_auth tr_auth;
int tr_auth_open(const char *data_dir, tr_auth **out, tr_error *err);
void tr_auth_close(tr_auth *a);

/* Creates a key for a new name; writes the key (shown once) into key_out. */
#define TR_KEY_LEN 47          /* "trawl_" + 40 hex + NUL */
int tr_auth_add_key(tr_auth *a, const char *name, tr_role role, char key_out[TR_KEY_LEN],
                    tr_error *err);
/* 1 removed, 0 no such name, -1 error. */
int tr_auth_remove_key(tr_auth *a, const char *name, tr_error *err);

typedef struct tr_key_info {
    char name[128];
    tr_role role;
    int64_t created, last_used;
} tr_key_info;
int tr_auth_list_keys(tr_auth *a, tr_key_info **out, size_t *n, tr_error *err);

/* Checks a presented key. Returns 1 and fills role/name when valid, 0 when
 * unknown, -1 on error. Comparison is by hash, so timing reveals nothing of
 * a stored key. */
int tr_auth_check(tr_auth *a, const char *key, tr_role *role, char name[128], tr_error *err);

#endif
