/* Store internals shared by its own files; not for other modules. */
#ifndef TRAWL_STORE_INTERNAL_H
#define TRAWL_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store/store.h"

sqlite3 *store_db(tr_store *s);
bool store_readonly(const tr_store *s);

/* Up to max rows with id > after, in id order. */
int store_page_rows(tr_store *s, int64_t after, size_t max, int64_t *ids,
                    char (*sha256)[TR_SHA256_HEX], int64_t *sizes, size_t *n, tr_error *err);
int store_delete_row(tr_store *s, int64_t id, tr_error *err);
/* 1 known, 0 unknown, -1 error. */
int store_has_sha256(tr_store *s, const char *sha256);

#endif
