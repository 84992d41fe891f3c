/* Shared by the http module's files only. */
#ifndef TRAWL_HTTP_INTERNAL_H
#define TRAWL_HTTP_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>

#include "auth/auth.h"
#include "http/http.h"
#include "store/store.h"

/* A multipart upload in progress (POST /api/samples, Bazaar's upload). */
typedef struct http_upload {
    struct MHD_PostProcessor *pp;
    tr_stage_writer *writer;
    char file_name[256];
    bool got_file;
    size_t file_calls;        /* chunks of the 'file' part seen */
    unsigned status;          /* 0, or the HTTP error to answer with */
    bool bazaar;              /* answer that error in Bazaar's words */
    char error[1200];
    /* Small form fields, NUL-terminated, bounded in count and size. */
    struct {
        char *key;
        tr_buf value;
    } fields[32];
    size_t nfields;
} http_upload;

struct tr_server;

typedef struct http_request {
    struct tr_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    const char *path;         /* without the query string */
    const char *rest;         /* the path after the route's prefix */
    const char *data_dir;
    tr_role role;
    char key_name[128];
    tr_buf body;              /* JSON or form bodies, bounded */
    bool body_too_large;
    http_upload *upload;
    bool authenticated;
    bool close;               /* close the connection after the answer */
} http_request;

/* The headers every response carries (content type, CSP, nosniff, no
 * framing...), for handlers that build their own response. */
void http_common_headers(const http_request *r, struct MHD_Response *resp,
                         const char *content_type);
/* Each returns an MHD result after queuing the response. */
enum MHD_Result http_send_json(http_request *r, unsigned status, json_t *body); /* steals body */
/* A 200 whose body read() makes as the client reads (size MHD_SIZE_UNKNOWN
 * when not known), with the common headers and, when disposition is not
 * NULL, Content-Disposition. done(cls) is called in every case. */
enum MHD_Result http_send_callback(http_request *r, uint64_t size, size_t block,
                                   MHD_ContentReaderCallback read, void *cls,
                                   MHD_ContentReaderFreeCallback done, const char *content_type,
                                   const char *disposition);
enum MHD_Result http_send_error(http_request *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
enum MHD_Result http_send_text(http_request *r, unsigned status, const char *content_type,
                               const char *body, size_t len);
/* Sends a file's bytes (fd is consumed) as an attachment. */
enum MHD_Result http_send_fd(http_request *r, int fd, uint64_t size, const char *content_type,
                             const char *download_name);
const char *http_query(http_request *r, const char *key);
/* Files as one zip encrypted with AES-256, password "infected", made as
 * the client reads it (no temporary copy). */
enum MHD_Result http_send_aes_zip(http_request *r, const tr_zip_entry *entries, size_t n,
                                  const char *download_name);
/* The sample as a zip encrypted with AES-256, password "infected". */
enum MHD_Result http_send_sample_zip(http_request *r, const tr_sample *x);
/* A JSON body must say so (application/json or application/...+json): a
 * browser posts text/plain or forms cross-site without asking, JSON only
 * after a CORS preflight that trawl refuses. 0, or -1 with 415 answered. */
int http_require_json(http_request *r, enum MHD_Result *sent);
/* Parses the body as a JSON object (http_require_json first); on failure
 * answers 4xx and returns NULL with *sent set to the MHD result. */
json_t *http_json_body(http_request *r, enum MHD_Result *sent);

/* Text from the network (text.c). NULL when s[0..n) is well-formed UTF-8
 * without NUL bytes, else what is wrong ("is not valid UTF-8"). */
const char *http_text_problem(const char *s, size_t n);
/* Copies in to out (NUL-terminated, cut to outsz), invalid UTF-8 replaced
 * by U+FFFD. */
void http_text_sanitize(const char *in, char *out, size_t outsz);

/* Server services for handlers. */
tr_analyzer *http_analyzer_get(struct tr_server *srv, tr_error *err);
void http_analyzer_put(struct tr_server *srv, tr_analyzer *a);
void http_index_kick(struct tr_server *srv);        /* new samples: index them soon */
void http_live_kick(struct tr_server *srv, int64_t sample_id);  /* a new sample: live scan */
uint64_t http_live_backlog(struct tr_server *srv);
uint64_t http_max_upload(const struct tr_server *srv);
/* Hunt jobs run by the server's runners. */
void http_hunts_kick(struct tr_server *srv);                /* a job was queued */
/* Seconds a hunt submitted here may run: the default and the ceiling. */
double http_hunt_time_limit(const struct tr_server *srv);
/* Every way a request queues a hunt goes through this first: true with 429
 * answered when the queue is full (api_hunt.c). */
bool http_hunt_queue_full(http_request *r, enum MHD_Result *sent);
/* Progress of a job this server is running: 1 running (filled), 0 not. */
struct tr_hunt_progress;
int http_hunt_progress(struct tr_server *srv, int64_t id, struct tr_hunt_progress *out);
/* 1 cancel sent to a running job, 0 not running here. */
int http_hunt_cancel(struct tr_server *srv, int64_t id);
void http_hunt_counts(struct tr_server *srv, unsigned *running, unsigned *workers);
/* For a content reader with nothing to send yet (a live stream): suspends
 * the connection, which the server resumes within a quarter second, and
 * returns true; the reader then returns 0. A reader must never wait in the
 * callback: the few worker threads each serve many connections. False when
 * the server is stopping: the reader ends its stream. */
bool http_stream_park(struct tr_server *srv, struct MHD_Connection *conn);
bool http_streams_closing(struct tr_server *srv);

/* Upload plumbing (api_upload.c). */
http_upload *http_upload_new(http_request *r);
enum MHD_Result http_upload_feed(http_request *r, const char *data, size_t size);
void http_upload_free(http_upload *u);
/* A form field's text (repeated fields joined by ","), or NULL. */
const char *http_upload_field(const http_upload *u, const char *key);
/* Commits the staged file of a finished upload; answers errors itself.
 * On success returns 0 with the result and the stored sample. */
int http_upload_commit(http_request *r, const tr_ingest_meta *meta, tr_ingest_result *res,
                       tr_sample **sample, enum MHD_Result *sent);
/* Completes the body: 0 when a file arrived intact, else answered. */
int http_upload_finish_body(http_request *r, bool need_file, enum MHD_Result *sent);

/* APIs: return MHD_NO only on an internal failure to queue a response. */
enum MHD_Result api_health(http_request *r);
enum MHD_Result api_whoami(http_request *r);
enum MHD_Result api_samples(http_request *r);          /* GET list, GET one, DELETE */
enum MHD_Result api_sample_download(http_request *r);
enum MHD_Result api_sample_similar(http_request *r);   /* GET .../similar (api_similar.c) */
enum MHD_Result api_sample_tags(http_request *r);
enum MHD_Result api_sample_comments(http_request *r);
enum MHD_Result api_upload(http_request *r);           /* POST /api/samples */
enum MHD_Result api_keys(http_request *r);
enum MHD_Result api_index_status(http_request *r);
enum MHD_Result api_plan(http_request *r);
enum MHD_Result api_bazaar(http_request *r);           /* POST /api/v1/ */
/* One of Bazaar's queries and the role it needs (api_bazaar.c dispatches
 * over tables of these). */
typedef struct http_bazaar_query {
    const char *name;
    enum MHD_Result (*fn)(http_request *r);
    tr_role need;
} http_bazaar_query;
/* {"query_status": status} with HTTP 200. */
enum MHD_Result http_bazaar_status(http_request *r, const char *status);
/* A refusal decided before the handler, in Bazaar's words (no_api_key,
 * http_post_expected ...) with the HTTP status kept. */
enum MHD_Result http_send_bazaar_error(http_request *r, unsigned status, const char *msg);
/* The samples f selects (the request's "limit" when f->limit is 0) as
 * Bazaar's list answer, or no_results as the status when there are none. */
enum MHD_Result http_bazaar_list(http_request *r, tr_sample_filter *f, const char *no_results);
/* GET /export/...: Bazaar's bulk exports and daily zips (api_export.c). */
enum MHD_Result api_export(http_request *r);
/* Bazaar's queries over the binary analysis (api_bazaar_intel.c): 1 with
 * the answer sent, 0 when q is not one of them. */
int bazaar_intel_query(http_request *r, const char *q, enum MHD_Result *sent);
enum MHD_Result api_hunts(http_request *r);            /* /api/hunts[/ID[/...]] */
enum MHD_Result api_rules(http_request *r);            /* /api/rules[/NAME[/...]] */
enum MHD_Result api_jobs(http_request *r);             /* GET /api/jobs */
enum MHD_Result api_noise_events(http_request *r);     /* POST, GET /api/noise/events */
enum MHD_Result api_noise_ip(http_request *r);         /* GET /api/noise/ip/IP */
enum MHD_Result api_noise_tags(http_request *r);       /* /api/noise/tags[/NAME] */
enum MHD_Result ui_index(http_request *r);
/* GreyNoise's API: /v3/..., /v2/..., /v1/cve/..., /ping (api_greynoise.c). */
enum MHD_Result api_greynoise(http_request *r);
bool http_greynoise_path(const char *url);
enum MHD_Result api_noise_ui(http_request *r);         /* /api/noise/sensors, tag-days/NAME */
/* GreyNoise's error body {"message": msg}. */
enum MHD_Result http_send_greynoise_error(http_request *r, unsigned status, const char *msg);
/* The STIX knowledge base: /api/stix/... and the TAXII 2.1 server /taxii2/... */
#define HTTP_STIX_BODY_MAX (64u << 20)
enum MHD_Result api_stix(http_request *r);
enum MHD_Result api_taxii(http_request *r);
/* Knowledge-base links: POST /api/kb/sync, GET|POST /api/kb/match. */
enum MHD_Result api_kb(http_request *r);
/* POST /api/reports/import: a document becomes a draft STIX report. */
enum MHD_Result api_report_import(http_request *r);
/* /api/reports/drafts[/ID[/commit]]: drafts kept for review. */
enum MHD_Result api_report_drafts(http_request *r);
/* A TAXII 2.1 error message (application/taxii+json) with this status. */
enum MHD_Result http_send_taxii_error(http_request *r, unsigned status, const char *description);

#endif
