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

/* The store's lazily made binary analyser. */
tr_binan *store_binan(tr_store *s, tr_error *err);
/* analysis_rows.c: the results of one sample, written in the caller's
 * transaction; loaded as NULL when the sample was never analysed. */
int store_analysis_put(tr_store *s, int64_t id, const tr_bin_info *b, tr_error *err);
int store_analysis_of_file(tr_store *s, int64_t id, const char *path, tr_error *err);
/* The analysis of a staged file, without writing anything. */
int store_analyze_staged(tr_store *s, const char *path, tr_bin_info **out, tr_error *err);
int store_analysis_load(tr_store *s, int64_t id, tr_bin_info **out, tr_error *err);

#endif
