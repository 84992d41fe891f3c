/* POST /api/samples: multipart upload of one sample with its metadata.
 * The file part streams into a staged temp file while hashing; the sample
 * is committed only when the whole body arrived and parsed cleanly, so a
 * truncated or malformed upload leaves nothing behind. The same plumbing
 * reads Bazaar's form queries (api_bazaar.c). */
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"
#include "ingest/ingest.h"

#define FIELD_MAX 65536

static void upload_error(http_upload *u, unsigned status, const char *msg)
{
    if (u->status)
        return;
    u->status = status;
    snprintf(u->error, sizeof u->error, "%s", msg);
}

/* Copies valid UTF-8 text, cut to fit at a character boundary (a long name
 * must not end in half a character). */
static void keep_utf8_prefix(char *out, size_t outsz, const char *in)
{
    size_t n = strlen(in);
    if (n >= outsz) {
        n = outsz - 1;
        while (n > 0 && ((unsigned char)in[n] & 0xC0) == 0x80)
            n--;                       /* in[n] starts the character that did not fit */
    }
    memcpy(out, in, n);
    out[n] = '\0';
}

static tr_buf *field_for(http_upload *u, const char *key)
{
    for (size_t i = 0; i < u->nfields; i++)
        if (strcmp(u->fields[i].key, key) == 0)
            return &u->fields[i].value;
    if (u->nfields == sizeof u->fields / sizeof u->fields[0])
        return NULL;
    u->fields[u->nfields].key = tr_xstrdup(key);
    return &u->fields[u->nfields++].value;
}

const char *http_upload_field(const http_upload *u, const char *key)
{
    for (size_t i = 0; i < u->nfields; i++)
        if (strcmp(u->fields[i].key, key) == 0)
            return u->fields[i].value.data ? u->fields[i].value.data : "";
    return NULL;
}

static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
    (void)kind;
    (void)content_type;
    (void)transfer_encoding;
    http_request *r = cls;
    http_upload *u = r->upload;
    if (u->status)
        return MHD_NO;
    /* libmicrohttpd passes a NULL name for a part without one. */
    if (!key) {
        upload_error(u, 400, "a form part has no name");
        return MHD_NO;
    }
    if (strcmp(key, "file") == 0) {
        /* Each part starts at offset 0: a second one would be appended to
         * the first and stored as a sample nobody sent. */
        if (u->got_file && off == 0 && u->file_calls > 0) {
            upload_error(u, 400, "one sample per upload: only one 'file' part");
            return MHD_NO;
        }
        u->file_calls++;
        tr_error err;
        if (!u->writer) {
            if (!filename || !*filename) {
                upload_error(u, 400, "the 'file' part needs a filename");
                return MHD_NO;
            }
            tr_store *s = NULL;
            if (tr_store_open(r->data_dir, 0, &s, &err) != 0 || tr_stage_begin(s, &u->writer, &err) != 0) {
                tr_store_close(s);
                upload_error(u, 503, err.msg);
                return MHD_NO;
            }
            tr_store_close(s);
            /* Only the last path component names the sample. */
            const char *base = strrchr(filename, '/');
            base = base ? base + 1 : filename;
            const char *bs = strrchr(base, '\\');
            const char *name = bs ? bs + 1 : base;
            const char *why = http_text_problem(name, strlen(name));
            if (why) {
                char msg[200];
                snprintf(msg, sizeof msg, "the file name (the 'file' part's filename) %s", why);
                upload_error(u, 400, msg);
                return MHD_NO;
            }
            keep_utf8_prefix(u->file_name, sizeof u->file_name, name);
            u->got_file = true;
        }
        if (tr_stage_size(u->writer) + size > http_max_upload(r->srv)) {
            char msg[128];
            snprintf(msg, sizeof msg, "the sample is larger than the %llu-byte upload limit",
                     (unsigned long long)http_max_upload(r->srv));
            upload_error(u, 413, msg);
            return MHD_NO;
        }
        if (size && tr_stage_write(u->writer, data, size, &err) != 0) {
            upload_error(u, 507, err.msg);
            return MHD_NO;
        }
        return MHD_YES;
    }
    tr_buf *b = field_for(u, key);
    if (!b) {
        upload_error(u, 400, "too many form fields");
        return MHD_NO;
    }
    if (b->len + size > FIELD_MAX) {
        upload_error(u, 413, "a form field is over 64 KiB");
        return MHD_NO;
    }
    if (b->len && off == 0)
        tr_buf_append(b, ",", 1);            /* a repeated field */
    tr_buf_append(b, data, size);
    if (!b->data)
        tr_buf_append(b, "", 0);
    return MHD_YES;
}

http_upload *http_upload_new(http_request *r)
{
    http_upload *u = tr_xcalloc(1, sizeof *u);
    r->upload = u;
    u->pp = MHD_create_post_processor(r->conn, 64 * 1024, on_part, r);
    if (!u->pp) {
        free(u);
        r->upload = NULL;
        return NULL;
    }
    return u;
}

enum MHD_Result http_upload_feed(http_request *r, const char *data, size_t size)
{
    http_upload *u = r->upload;
    if (u->status)
        return MHD_YES;       /* keep draining; the error is answered at the end */
    if (MHD_post_process(u->pp, data, size) != MHD_YES)
        upload_error(u, 400, "malformed multipart body");
    return MHD_YES;
}

void http_upload_free(http_upload *u)
{
    if (!u)
        return;
    if (u->pp)
        MHD_destroy_post_processor(u->pp);
    tr_stage_abort(u->writer);
    for (size_t i = 0; i < u->nfields; i++) {
        free(u->fields[i].key);
        tr_buf_free(&u->fields[i].value);
    }
    free(u);
}

int http_upload_finish_body(http_request *r, bool need_file, enum MHD_Result *sent)
{
    http_upload *u = r->upload;
    /* Done with the body: the form parser must have seen it end. */
    enum MHD_Result ended = MHD_destroy_post_processor(u->pp);
    u->pp = NULL;
    if (ended != MHD_YES)
        upload_error(u, 400, "truncated or malformed multipart body");
    if (!u->status && need_file && !u->got_file)
        upload_error(u, 400, "no 'file' part in the upload");
    /* Names, tags, comments... are text: refused here, not dropped later by
     * the JSON encoder or cut at a NUL by the database. */
    for (size_t i = 0; i < u->nfields && !u->status; i++) {
        const tr_buf *b = &u->fields[i].value;
        const char *why = http_text_problem(u->fields[i].key, strlen(u->fields[i].key));
        if (why) {
            upload_error(u, 400, "a form field name is not valid UTF-8");
            break;
        }
        why = http_text_problem(b->data ? b->data : "", b->len);
        if (why) {
            char msg[200];
            snprintf(msg, sizeof msg, "the form field '%s' %s", u->fields[i].key, why);
            upload_error(u, 400, msg);
        }
    }
    if (u->status) {
        *sent = u->bazaar ? http_send_bazaar_error(r, u->status, u->error)
                          : http_send_error(r, u->status, "%s", u->error);
        return -1;
    }
    return 0;
}

int http_upload_commit(http_request *r, const tr_ingest_meta *meta, tr_ingest_result *res,
                       tr_sample **sample, enum MHD_Result *sent)
{
    http_upload *u = r->upload;
    tr_error err;
    tr_analyzer *an = http_analyzer_get(r->srv, &err);
    if (!an) {
        *sent = http_send_error(r, 500, "%s", err.msg);
        return -1;
    }
    tr_staged st;
    int rc = tr_stage_finish(u->writer, an, -1, &st, &err);
    u->writer = NULL;
    http_analyzer_put(r->srv, an);
    if (rc != 0) {
        *sent = http_send_error(r, 500, "%s", err.msg);
        return -1;
    }
    char sha[TR_SHA256_HEX];
    memcpy(sha, st.d.sha256, sizeof sha);
    tr_store *s = NULL;
    rc = tr_store_open(r->data_dir, 0, &s, &err);
    tr_ingest_config cfg = {.data_dir = r->data_dir, .defer_live = true};
    if (rc == 0)
        rc = tr_ingest_commit(s, &st, meta, 1, res, &cfg, &err);
    else
        tr_store_unstage(&st);
    /* Bazaar's intelligence.uploads: every upload, duplicates included. */
    if (rc == 0 && tr_store_bazaar_count(s, res->id, false, &err) != 0)
        rc = -1;
    if (rc == 0 && tr_store_get(s, sha, sample, &err) != 1) {
        tr_fail(&err, "the sample was stored but cannot be read back");
        rc = -1;
    }
    tr_store_close(s);
    if (rc != 0) {
        *sent = http_send_error(r, 500, "%s", err.msg);
        return -1;
    }
    if (res->is_new) {
        http_index_kick(r->srv);
        /* Live rule sets scan it behind the answer: a slow one must not
         * hold this request thread. */
        http_live_kick(r->srv, res->id);
    }
    return 0;
}

/* Splits "a, b,c" into trimmed tags (in place). */
static size_t split_tags(char *s, const char **out, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(s, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && end[-1] == ' ')
            *--end = '\0';
        if (*tok)
            out[n++] = tok;
    }
    return n;
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

enum MHD_Result api_upload(http_request *r)
{
    enum MHD_Result sent = MHD_NO;
    if (http_upload_finish_body(r, true, &sent) != 0)
        return sent;
    http_upload *u = r->upload;
    const char *t = http_upload_field(u, "tags");
    if (!t)
        t = http_upload_field(u, "tag");
    char *tagtext = t ? tr_xstrdup(t) : NULL;
    const char *tags[64];
    size_t ntags = tagtext ? split_tags(tagtext, tags, 64) : 0;
    tr_ingest_meta m = {
        .file_name = u->file_name,
        .tags = tags,
        .n_tags = ntags,
        .signature = nonempty(http_upload_field(u, "signature")),
        .reporter = r->key_name[0] ? r->key_name : NULL,
        .origin = nonempty(http_upload_field(u, "origin")),
        .delivery_method = nonempty(http_upload_field(u, "delivery_method")),
        .comment = nonempty(http_upload_field(u, "comment")),
    };
    tr_ingest_result res;
    tr_sample *x = NULL;
    int rc = http_upload_commit(r, &m, &res, &x, &sent);
    free(tagtext);
    if (rc != 0)
        return sent;
    json_t *body = json_pack("{s:s, s:o}", "query_status", res.is_new ? "inserted" : "exists",
                             "data", tr_sample_to_json(x));
    tr_sample_free(x);
    return http_send_json(r, res.is_new ? 201 : 200, body);
}
