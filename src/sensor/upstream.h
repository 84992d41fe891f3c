/* sensor/upstream: batches of events POSTed to a trawl server
 * (POST /api/noise/events) through a disk spool; used by the live sensor. */
#ifndef TRAWL_SENSOR_UPSTREAM_H
#define TRAWL_SENSOR_UPSTREAM_H

#include <jansson.h>

#include "core/core.h"

typedef struct tr_upstream tr_upstream;

/* url "http://host:port[/base]"; spool is created if missing. Starts the
 * sender thread, which also sends what an earlier run left spooled. */
tr_upstream *tr_upstream_start(const char *url, const char *key, const char *spool, tr_error *err);
/* Adds one event to the gathering batch (spooled when it is full). Not
 * thread-safe: one producer. */
int tr_upstream_add(tr_upstream *u, const json_t *event, tr_error *err);
/* Writes the gathering batch to the spool (write, fsync, rename) and wakes the sender. */
int tr_upstream_flush(tr_upstream *u, tr_error *err);
size_t tr_upstream_pending(const tr_upstream *u);   /* events not yet spooled */
/* Spools the last batch, stops the sender, logs what stays spooled. */
void tr_upstream_stop(tr_upstream *u);

#endif
