/* http: the HTTP server (libmicrohttpd), routing, auth, one file per API.
 * Holds no business logic: handlers translate requests into store, index,
 * ingest and hunt calls. */
#ifndef TRAWL_HTTP_H
#define TRAWL_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

typedef struct tr_http_config {
    const char *data_dir;
    const char *listen;       /* "127.0.0.1:8080", "[::1]:8080", "127.0.0.1:0" (any port) */
    unsigned threads;         /* connection-handling threads */
    bool anonymous_read;      /* lab mode: reads without a key (writes always need one) */
    uint64_t max_upload;      /* bytes per uploaded sample; 0 = 512 MiB */
    unsigned workers;         /* libyara verification threads shared by running hunts; 0 = cores */
    unsigned hunt_time_limit; /* seconds a hunt may run, default and ceiling; 0 = 3600 */
    size_t live_queue;        /* uploads waiting for their live scan in memory; 0 = 1024 */
    unsigned per_ip_connections;  /* open connections per client address; 0 = 64 */
    /* Host names this server answers to besides its addresses and localhost
     * (a request naming another gets 421: DNS rebinding). */
    const char *const *allowed_hosts;
    size_t n_allowed_hosts;
    unsigned header_timeout;  /* seconds a connection may sit idle before and between
                               * requests; 0 = 10 (a request in progress gets 120) */
    /* Seconds between looks for changed data, after which the knowledge
     * base's links are synced (kblink); -1 = never, 0 = 120. */
    int kb_sync_seconds;
} tr_http_config;

typedef struct tr_server tr_server;

int tr_server_start(const tr_http_config *cfg, tr_server **out, tr_error *err);
unsigned tr_server_port(const tr_server *srv);
/* Stops accepting, finishes in-flight requests and background work. */
void tr_server_stop(tr_server *srv);

/* Parses "HOST:PORT" or "[V6]:PORT" into a sockaddr (sockaddr_storage). */
struct sockaddr_storage;
int tr_parse_listen(const char *spec, struct sockaddr_storage *out, tr_error *err);

#endif
