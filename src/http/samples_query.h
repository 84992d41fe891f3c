/* The samples list's query string (GET /api/samples?...), parsed apart from
 * the request so that a fuzz target can drive it: limit, offset, the since/
 * until dates, sort and order, a full hash or a hash prefix, and the field
 * filters. Internal to the http module and fuzz/. */
#ifndef TRAWL_HTTP_SAMPLES_QUERY_H
#define TRAWL_HTTP_SAMPLES_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"

/* A parameter's value, or NULL when absent. */
typedef const char *(*http_param_fn)(void *ctx, const char *name);

typedef struct samples_query {
    tr_sample_filter f;          /* its strings borrow the getter's values */
    bool exact;                  /* hash is a full md5, sha1 or sha256: norm, normalised */
    char norm[TR_SHA256_HEX];
} samples_query;

/* 0, or -1 with why (for a 400) in msg. */
int http_samples_query_parse(http_param_fn get, void *ctx, samples_query *q, char *msg,
                             size_t msgsz);

#endif
