/* Shared by the http module's files only. */
#ifndef TRAWL_HTTP_INTERNAL_H
#define TRAWL_HTTP_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>

#include "http/http.h"

typedef struct http_request {
    struct MHD_Connection *conn;
    const char *method;
    const char *path;         /* without the query string */
    const char *data_dir;
} http_request;

/* Each returns an MHD result after queuing the response. */
enum MHD_Result http_send_json(http_request *r, unsigned status, json_t *body); /* steals body */
enum MHD_Result http_send_error(http_request *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
enum MHD_Result http_send_text(http_request *r, unsigned status, const char *content_type,
                               const char *body, size_t len);
const char *http_query(http_request *r, const char *key);

/* APIs: return MHD_NO only on an internal failure to queue a response. */
enum MHD_Result api_health(http_request *r);
enum MHD_Result api_samples(http_request *r, const char *rest);
enum MHD_Result ui_index(http_request *r);

#endif
