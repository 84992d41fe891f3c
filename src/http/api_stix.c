/* /api/stix/...: the knowledge base as trawl's JSON API.
 *   POST import                     a bundle (body), stored whole or refused (422)
 *   GET  search?q=&type=&label=&marking=&created_after=&created_before=
 *               &modified_after=&modified_before=&limit=   full text and filters
 *   GET  objects/ID                 the latest version, as stored
 *   DELETE objects/ID               every version (admin); the stream says so
 *   GET  objects/ID/versions        every version, oldest first
 *   GET  objects/ID/neighbours?depth=N
 *   GET  export?type=&id=&since=    a bundle (types and ids comma-separated)
 *   GET  collections, POST collections {"title","description"} (admin)
 *   GET  stream                     Server-Sent Events of every version stored and deletion */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/http_internal.h"
#include "stix/stix.h"

/* Objects are sent as their stored text, never re-encoded. */
typedef struct raw_list {
    tr_buf out;
    size_t n;
} raw_list;

static int raw_row(void *arg, const tr_stix_row *row)
{
    raw_list *l = arg;
    if (l->n++)
        tr_buf_append(&l->out, ",", 1);
    tr_buf_append(&l->out, row->json, row->json_len);
    return 0;
}

static enum MHD_Result send_raw(http_request *r, unsigned status, tr_buf *b)
{
    enum MHD_Result rc = http_send_text(r, status, "application/json", b->data ? b->data : "", b->len);
    tr_buf_free(b);
    return rc;
}

static enum MHD_Result stix_import(http_request *r, tr_stix_db *db)
{
    enum MHD_Result sent;
    if (http_require_json(r, &sent) != 0)
        return sent;
    tr_stix_import_result res;
    tr_error err;
    if (tr_stix_import(db, r->body.data ? r->body.data : "", r->body.len, NULL, &res, &err) != 0)
        return http_send_error(r, strncmp(err.msg, "knowledge base:", 15) == 0 ? 500 : 422, "%s",
                               err.msg);
    return http_send_json(r, 200, json_pack("{ss sI sI sI sb}", "query_status", "ok", "objects",
                                            (json_int_t)res.total, "added", (json_int_t)res.added,
                                            "already_held", (json_int_t)res.duplicates, "upgraded",
                                            res.upgraded));
}

#define MAXLIST 64

static const char **split(const char *v, char *buf, size_t bufsz, const char **list)
{
    if (!v || !*v)
        return NULL;
    snprintf(buf, bufsz, "%s", v);
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t && n < MAXLIST; t = strtok_r(NULL, ",", &save))
        list[n++] = t;
    list[n] = NULL;
    return list;
}

/* The export is read from the knowledge base a page at a time as the
 * client takes it: holding the whole bundle (a million SCOs after a sync)
 * in memory, and again in the response, made one reader's request cost
 * gigabytes. Pages follow seq, so an object stored while the export is
 * read may still appear in it. */
#define EXPORT_PAGE 500

typedef struct export_state {
    tr_stix_db *db;
    char tbuf[1024], ibuf[8192];
    const char *types[MAXLIST + 1], *ids[MAXLIST + 1];
    char since[64];
    tr_stix_query q;
    raw_list pending;          /* the objects so far, comma-joined across pages */
    size_t off;
    bool done, failed;
} export_state;

static int export_row(void *arg, const tr_stix_row *row)
{
    export_state *x = arg;
    x->q.after_seq = row->seq;
    return raw_row(&x->pending, row);
}

static ssize_t export_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    export_state *x = cls;
    while (x->off >= x->pending.out.len) {
        x->pending.out.len = x->off = 0;
        if (x->failed)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (x->done)
            return MHD_CONTENT_READER_END_OF_STREAM;
        bool more = false;
        tr_error err;
        if (tr_stix_query_rows(x->db, &x->q, export_row, x, &more, &err) != 0) {
            /* The status is sent: a cut-short body is all that can say it. */
            tr_log(TR_LOG_WARN, "stix export: %s", err.msg);
            x->failed = true;
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (!more) {
            tr_buf_append(&x->pending.out, "]}", 2);
            x->done = true;
        }
    }
    size_t n = x->pending.out.len - x->off;
    if (n > max)
        n = max;
    memcpy(buf, x->pending.out.data + x->off, n);
    x->off += n;
    return (ssize_t)n;
}

static void export_free(void *cls)
{
    export_state *x = cls;
    tr_stix_close(x->db);
    tr_buf_free(&x->pending.out);
    free(x);
}

static enum MHD_Result stix_export(http_request *r)
{
    export_state *x = tr_xcalloc(1, sizeof *x);
    x->q.types = split(http_query(r, "type"), x->tbuf, sizeof x->tbuf, x->types);
    x->q.ids = split(http_query(r, "id"), x->ibuf, sizeof x->ibuf, x->ids);
    const char *since = http_query(r, "since");
    if (since && (strlen(since) >= sizeof x->since || !tr_stix_ts_valid(since))) {
        free(x);
        return http_send_error(r, 400, "since must be a STIX timestamp like 2024-01-31T00:00:00Z");
    }
    if (since) {
        snprintf(x->since, sizeof x->since, "%s", since);
        x->q.modified_since = x->since;
    }
    const char *all = http_query(r, "versions");
    if (all && strcmp(all, "all") == 0)
        x->q.versions = TR_STIX_ALL;
    x->q.limit = EXPORT_PAGE;
    tr_error err;
    /* The response outlives this request's handle. */
    if (tr_stix_open(r->data_dir, &x->db, &err) != 0) {
        free(x);
        return http_send_error(r, 503, "%s", err.msg);
    }
    char uuid[37];
    tr_stix_uuid4(uuid);
    tr_buf_printf(&x->pending.out, "{\"type\":\"bundle\",\"id\":\"bundle--%s\",\"objects\":[", uuid);
    return http_send_callback(r, MHD_SIZE_UNKNOWN, 64 * 1024, export_read, x, export_free,
                              "application/json", NULL);
}

static enum MHD_Result stix_search(http_request *r, tr_stix_db *db)
{
    tr_stix_search_opts o = {
        .text = http_query(r, "q"), .type = http_query(r, "type"), .label = http_query(r, "label"),
        .marking = http_query(r, "marking"), .created_after = http_query(r, "created_after"),
        .created_before = http_query(r, "created_before"),
        .modified_after = http_query(r, "modified_after"),
        .modified_before = http_query(r, "modified_before"),
    };
    const char *dates[] = {o.created_after, o.created_before, o.modified_after, o.modified_before};
    for (size_t i = 0; i < 4; i++)
        if (dates[i] && !tr_stix_ts_valid(dates[i]))
            return http_send_error(r, 400, "dates are STIX timestamps like 2024-01-31T00:00:00Z");
    const char *lim = http_query(r, "limit");
    long limit = lim ? strtol(lim, NULL, 10) : 50;
    if (limit < 1 || limit > 1000)
        return http_send_error(r, 400, "limit is 1 to 1000");
    o.limit = (size_t)limit;
    raw_list l = {0};
    tr_buf_append(&l.out, "{\"objects\":[", 12);
    tr_error err;
    if (tr_stix_search_ex(db, &o, raw_row, &l, &err) != 0) {
        tr_buf_free(&l.out);
        return http_send_error(r, strstr(err.msg, "nothing to search") ? 400 : 500, "%s", err.msg);
    }
    tr_buf_append(&l.out, "]}", 2);
    return send_raw(r, 200, &l.out);
}

static enum MHD_Result stix_object(http_request *r, tr_stix_db *db, const char *rest)
{
    char id[300];
    const char *slash = strchr(rest, '/');
    size_t len = slash ? (size_t)(slash - rest) : strlen(rest);
    if (len == 0 || len >= sizeof id)
        return http_send_error(r, 404, "no such object");
    snprintf(id, sizeof id, "%.*s", (int)len, rest);
    const char *tail = slash ? slash + 1 : "";
    tr_error err;
    if (strcmp(r->method, "DELETE") == 0) {
        if (*tail)
            return http_send_error(r, 405, "only an object is deleted");
        int64_t n = tr_stix_delete(db, id, &err);
        if (n < 0)
            return http_send_error(r, strstr(err.msg, "fixed TLP") ? 409 : 500, "%s", err.msg);
        if (n == 0)
            return http_send_error(r, 404, "no object %s in the knowledge base", id);
        return http_send_json(r, 200, json_pack("{ss ss sI}", "query_status", "deleted", "id", id,
                                                "versions", (json_int_t)n));
    }
    if (!*tail) {
        raw_list l = {0};
        int found = tr_stix_get(db, id, raw_row, &l, &err);
        if (found < 0) {
            tr_buf_free(&l.out);
            return http_send_error(r, 500, "%s", err.msg);
        }
        if (!found)
            return http_send_error(r, 404, "no object %s in the knowledge base", id);
        return send_raw(r, 200, &l.out);
    }
    if (strcmp(tail, "versions") == 0) {
        raw_list l = {0};
        size_t n = 0;
        tr_buf_append(&l.out, "{\"versions\":[", 13);
        if (tr_stix_versions_of(db, id, raw_row, &l, &n, &err) != 0) {
            tr_buf_free(&l.out);
            return http_send_error(r, 500, "%s", err.msg);
        }
        if (n == 0) {
            tr_buf_free(&l.out);
            return http_send_error(r, 404, "no object %s in the knowledge base", id);
        }
        tr_buf_append(&l.out, "]}", 2);
        return send_raw(r, 200, &l.out);
    }
    if (strcmp(tail, "neighbours") == 0 || strcmp(tail, "neighbors") == 0) {
        const char *d = http_query(r, "depth");
        long depth = d ? strtol(d, NULL, 10) : 1;
        if (depth < 1 || depth > 5)
            return http_send_error(r, 400, "depth is 1 to 5");
        json_t *g = NULL;
        int found = tr_stix_neighbours(db, id, (int)depth, &g, &err);
        if (found < 0)
            return http_send_error(r, 500, "%s", err.msg);
        if (!found)
            return http_send_error(r, 404, "no object %s in the knowledge base", id);
        return http_send_json(r, 200, g);
    }
    return http_send_error(r, 404, "no endpoint %s", r->path);
}

static enum MHD_Result stix_collections(http_request *r, tr_stix_db *db)
{
    tr_error err;
    if (strcmp(r->method, "POST") == 0) {
        enum MHD_Result sent = MHD_NO;
        json_t *body = http_json_body(r, &sent);
        if (!body)
            return sent;
        tr_stix_collection c;
        const char *title = json_string_value(json_object_get(body, "title"));
        const char *desc = json_string_value(json_object_get(body, "description"));
        const char *rr = json_string_value(json_object_get(body, "read_role"));
        const char *wr = json_string_value(json_object_get(body, "write_role"));
        tr_role read = rr ? tr_role_parse(rr) : TR_ROLE_READER;
        tr_role write = wr ? tr_role_parse(wr) : TR_ROLE_ANALYST;
        enum MHD_Result rc;
        if (!title || !*title || read == TR_ROLE_NONE || write < TR_ROLE_ANALYST)
            rc = http_send_error(r, 400, "expected {\"title\": ..., \"description\": ..., "
                                 "\"read_role\": \"reader\", \"write_role\": \"analyst|admin\"}");
        else if (read > TR_ROLE_READER)
            rc = http_send_error(r, 400, "%s", TR_STIX_READ_ROLE_MSG);
        else if (tr_stix_collection_create(db, title, desc, read, write, &c, &err) != 0)
            rc = http_send_error(r, 500, "%s", err.msg);
        else
            rc = http_send_json(r, 201, json_pack("{ss ss ss ss ss}", "id", c.id, "title", c.title,
                                                  "description", c.description, "read_role",
                                                  tr_role_name(read), "write_role", tr_role_name(write)));
        json_decref(body);
        return rc;
    }
    tr_stix_collection *v = NULL;
    size_t n = 0;
    if (tr_stix_collections(db, &v, &n, &err) != 0)
        return http_send_error(r, 500, "%s", err.msg);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{ss ss ss sb ss ss*}", "id", v[i].id, "title", v[i].title,
                                             "description", v[i].description, "builtin", v[i].builtin,
                                             "read_role", tr_role_name((tr_role)v[i].read_level),
                                             "write_role", v[i].can_write ?
                                             tr_role_name((tr_role)v[i].write_level) : NULL));
    free(v);
    return http_send_json(r, 200, json_pack("{so}", "collections", arr));
}

/* ---- the live stream ----------------------------------------------------------
 * One event per stored object version, its id the version's seq (which
 * survives restarts), so a client resumes with Last-Event-ID. A reader with
 * no news parks its connection (http_stream_park) and looks again when the
 * server resumes it, a quarter second later; after a second without news it
 * sends a comment line. It never waits in the callback: that would hold a
 * worker thread, and every connection it serves, for as long as it waits. */
#define KEEPALIVE_MS 1000

typedef struct stream {
    tr_stix_db *db;
    struct tr_server *srv;
    struct MHD_Connection *conn;
    int64_t cursor;
    tr_buf pending;
    size_t off;
    int64_t last_sent_ms;
    bool failed;
} stream;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int stream_row(void *arg, const tr_stix_row *row, tr_stix_change kind)
{
    stream *st = arg;
    const char *version = row->modified ? row->modified : row->created ? row->created : row->date_added;
    tr_buf_printf(&st->pending, "id: %lld\nevent: %s\ndata: {\"id\":\"%s\",\"type\":\"%s\","
                  "\"version\":\"%s\",\"data\":", (long long)row->seq,
                  kind == TR_STIX_CREATE ? "create" : kind == TR_STIX_UPDATE ? "update" : "delete",
                  row->id, row->type, version);
    /* Stored texts may span lines; SSE data may not. Objects are JSON, so
     * raw newlines sit only between tokens and may go. */
    for (size_t i = 0; i < row->json_len; i++) {
        char ch = row->json[i];
        if (ch == '\n' || ch == '\r')
            ch = ' ';
        tr_buf_append(&st->pending, &ch, 1);
    }
    tr_buf_append(&st->pending, "}\n\n", 3);
    st->cursor = row->seq;
    return 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream *st = cls;
    for (;;) {
        if (st->off < st->pending.len) {
            size_t n = st->pending.len - st->off;
            if (n > max)
                n = max;
            memcpy(buf, st->pending.data + st->off, n);
            st->off += n;
            st->last_sent_ms = now_ms();
            return (ssize_t)n;
        }
        st->pending.len = st->off = 0;
        if (st->failed)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (http_streams_closing(st->srv))
            return MHD_CONTENT_READER_END_OF_STREAM;
        tr_error err;
        if (tr_stix_changes(st->db, st->cursor, 200, stream_row, st, &err) != 0) {
            tr_log(TR_LOG_WARN, "stix stream: %s", err.msg);
            st->failed = true;
            tr_buf_printf(&st->pending, "event: error\ndata: {\"error\":\"knowledge base unreadable\"}\n\n");
            continue;
        }
        if (st->pending.len)
            continue;
        if (now_ms() - st->last_sent_ms >= KEEPALIVE_MS) {
            tr_buf_printf(&st->pending, ": keepalive\n\n");
            continue;
        }
        if (!http_stream_park(st->srv, st->conn))
            return MHD_CONTENT_READER_END_OF_STREAM;
        return 0;
    }
}

static void stream_free(void *cls)
{
    stream *st = cls;
    tr_stix_close(st->db);
    tr_buf_free(&st->pending);
    free(st);
}

static enum MHD_Result stix_stream(http_request *r, tr_stix_db *db)
{
    const char *last = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Last-Event-ID");
    const char *from = http_query(r, "from");
    const char *start = last ? last : from;
    int64_t cursor;
    tr_error err;
    if (start) {
        char *end = NULL;
        long long v = strtoll(start, &end, 10);
        if (!*start || *end || v < 0)
            return http_send_error(r, 400, "Last-Event-ID and from are event ids (whole numbers)");
        cursor = v;
    } else {
        /* A new subscriber hears what happens from now on. */
        cursor = tr_stix_last_seq(db, &err);
        if (cursor < 0)
            return http_send_error(r, 500, "%s", err.msg);
    }
    stream *st = tr_xcalloc(1, sizeof *st);
    st->cursor = cursor;
    st->srv = r->srv;
    st->conn = r->conn;
    st->last_sent_ms = now_ms();
    /* The stream outlives this request's connection to the database. */
    if (tr_stix_open(r->data_dir, &st->db, &err) != 0) {
        free(st);
        return http_send_error(r, 503, "%s", err.msg);
    }
    tr_buf_printf(&st->pending, "retry: 2000\n\n");
    return http_send_callback(r, MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, st, stream_free,
                              "text/event-stream", NULL);
}

enum MHD_Result api_stix(http_request *r)
{
    tr_stix_db *db = NULL;
    tr_error err;
    if (tr_stix_open(r->data_dir, &db, &err) != 0)
        return http_send_error(r, 503, "%s", err.msg);
    const char *rest = r->rest;
    enum MHD_Result rc;
    if (strcmp(rest, "import") == 0)
        rc = stix_import(r, db);
    else if (strcmp(rest, "export") == 0)
        rc = stix_export(r);
    else if (strcmp(rest, "search") == 0)
        rc = stix_search(r, db);
    else if (strcmp(rest, "collections") == 0)
        rc = stix_collections(r, db);
    else if (strcmp(rest, "stream") == 0)
        rc = stix_stream(r, db);
    else if (strncmp(rest, "objects/", 8) == 0)
        rc = stix_object(r, db, rest + 8);
    else
        rc = http_send_error(r, 404, "no endpoint %s", r->path);
    tr_stix_close(db);
    return rc;
}
