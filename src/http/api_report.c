/* POST /api/reports/import: a document (multipart 'file' part, a JSON
 * {"text": ...}, or the raw body) becomes a draft STIX report; ?commit=1
 * imports it into the knowledge base at once. /api/reports/drafts: the
 * same documents become drafts kept for review (list, show, decide, add,
 * commit, delete). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http/http_internal.h"
#include "report/report.h"
#include "stix/stix.h"

typedef struct report_args {
    const char *name, *published, *marking, *filename;
    const char *labels[33];
    size_t nlabels;
} report_args;

static void add_labels(report_args *a, const char *csv, char **keep)
{
    /* "a,b" in one field or query parameter: each a label. */
    char *copy = tr_xstrdup(csv), *save = NULL;
    *keep = copy;
    for (char *t = strtok_r(copy, ",", &save); t && a->nlabels < 32; t = strtok_r(NULL, ",", &save))
        if (*t)
            a->labels[a->nlabels++] = t;
}

static bool truthy(const char *v)
{
    return v && (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0);
}

/* The document of a request and its options, in any of the three body
 * forms. 0, or -1 with the error answered in *sent. */
typedef struct report_body {
    report_args a;
    tr_report_form form;
    json_t *jbody;
    char *label_keep[3];
    const unsigned char *data;
    size_t len;
    bool commit;
} report_body;

static void report_body_free(report_body *b)
{
    json_decref(b->jbody);
    tr_report_form_free(&b->form);
    for (size_t i = 0; i < 3; i++)
        free(b->label_keep[i]);
}

static int report_body_parse(http_request *r, report_body *b, enum MHD_Result *sent)
{
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
    report_args *a = &b->a;
    tr_error err;
    b->commit = truthy(http_query(r, "commit"));
    a->name = http_query(r, "name");
    a->published = http_query(r, "published");
    a->marking = http_query(r, "marking");
    a->filename = http_query(r, "filename");
    if (http_query(r, "label"))
        add_labels(a, http_query(r, "label"), &b->label_keep[0]);

    if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0) {
        if (tr_report_form_parse(ct, r->body.data ? r->body.data : "", r->body.len, &b->form,
                                 &err) != 0) {
            *sent = http_send_error(r, 400, "%s", err.msg);
            return -1;
        }
        tr_report_form *form = &b->form;
        b->data = form->data;
        b->len = form->len;
        a->filename = form->filename;
        if (tr_report_form_field(form, "name"))
            a->name = tr_report_form_field(form, "name");
        if (tr_report_form_field(form, "published"))
            a->published = tr_report_form_field(form, "published");
        if (tr_report_form_field(form, "marking"))
            a->marking = tr_report_form_field(form, "marking");
        if (tr_report_form_field(form, "label"))
            add_labels(a, tr_report_form_field(form, "label"), &b->label_keep[1]);
        b->commit = b->commit || truthy(tr_report_form_field(form, "commit"));
    } else if (ct && strncasecmp(ct, "application/json", 16) == 0) {
        b->jbody = http_json_body(r, sent);
        if (!b->jbody)
            return -1;
        json_t *text = json_object_get(b->jbody, "text");
        if (!json_is_string(text)) {
            *sent = http_send_error(r, 400, "a JSON body needs \"text\": the document's text");
            return -1;
        }
        b->data = (const unsigned char *)json_string_value(text);
        b->len = json_string_length(text);
        const char *v;
        if ((v = json_string_value(json_object_get(b->jbody, "name"))))
            a->name = v;
        if ((v = json_string_value(json_object_get(b->jbody, "published"))))
            a->published = v;
        if ((v = json_string_value(json_object_get(b->jbody, "marking"))))
            a->marking = v;
        if ((v = json_string_value(json_object_get(b->jbody, "filename"))))
            a->filename = v;
        size_t i;
        json_t *l;
        json_array_foreach(json_object_get(b->jbody, "labels"), i, l) {
            if (json_is_string(l) && a->nlabels < 32)
                a->labels[a->nlabels++] = json_string_value(l);
        }
        if (json_is_true(json_object_get(b->jbody, "commit")))
            b->commit = true;
    } else {
        /* Any other type: the body is the document itself. */
        b->data = (const unsigned char *)(r->body.data ? r->body.data : "");
        b->len = r->body.len;
    }
    a->labels[a->nlabels] = NULL;
    return 0;
}

/* The draft of a request's document, with the knowledge base open for
 * entities. 0, or -1 with the error answered. */
static int draft_of(http_request *r, report_body *b, tr_stix_db **db, json_t **draft,
                    enum MHD_Result *sent)
{
    tr_report_opts o = {.name = b->a.name, .published = b->a.published, .labels = b->a.labels,
                        .marking = b->a.marking, .filename = b->a.filename};
    tr_store *store = NULL;
    tr_gazetteer *g = NULL;
    tr_error err;
    int rc = -1;
    *db = NULL;
    if (tr_store_open(r->data_dir, 0, &store, &err) != 0 ||
        tr_stix_open(r->data_dir, db, &err) != 0 || tr_gazetteer_load(*db, &g, &err) != 0) {
        *sent = http_send_error(r, 503, "%s", err.msg);
        goto out;
    }
    if (tr_report_draft(b->data, b->len, &o, g, store, draft, &err) != 0) {
        *sent = http_send_error(r, b->len > TR_REPORT_MAX_INPUT ? 413 : 400, "%s", err.msg);
        goto out;
    }
    rc = 0;
out:
    tr_gazetteer_free(g);
    tr_store_close(store);
    if (rc != 0 && *db) {
        tr_stix_close(*db);
        *db = NULL;
    }
    return rc;
}

enum MHD_Result api_report_import(http_request *r)
{
    report_body b = {0};
    enum MHD_Result res;
    tr_stix_db *db = NULL;
    json_t *draft = NULL;
    tr_error err;
    if (report_body_parse(r, &b, &res) != 0 || draft_of(r, &b, &db, &draft, &res) != 0)
        goto out;
    if (b.commit) {
        char *text = json_dumps(json_object_get(draft, "bundle"), JSON_COMPACT);
        tr_stix_import_result ir;
        bool serialised = text != NULL;
        if (!serialised || tr_report_keep_original(r->data_dir, b.data, b.len, &err) != 0 ||
            tr_stix_import(db, text, strlen(text), NULL, &ir, &err) != 0) {
            free(text);
            json_decref(draft);
            res = http_send_error(r, serialised ? 422 : 500, "%s",
                                  serialised ? err.msg : "cannot serialise the bundle");
            goto out;
        }
        free(text);
        json_object_set_new(draft, "committed",
                            json_pack("{s:I, s:I}", "objects", (json_int_t)ir.total, "added",
                                      (json_int_t)ir.added));
    }
    res = http_send_json(r, b.commit ? 201 : 200, draft);
out:
    if (db)
        tr_stix_close(db);
    report_body_free(&b);
    return res;
}

static enum MHD_Result draft_error(http_request *r, int rc, const char *id, const tr_error *err)
{
    if (rc == 0)
        return http_send_error(r, 404, "no draft %s", id);
    if (rc == TR_DRAFT_CONFLICT)
        return http_send_error(r, 409, "%s", err->msg);
    return http_send_error(r, 500, "%s", err->msg);
}

/* /api/reports/drafts[/ID[/commit]]: drafts kept for review. */
enum MHD_Result api_report_drafts(http_request *r)
{
    const char *rest = r->rest;
    bool get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
    bool post = strcmp(r->method, "POST") == 0;
    tr_error err;
    json_t *d = NULL;
    int rc;
    if (!*rest) {
        if (get) {
            if (tr_report_drafts_list(r->data_dir, &d, &err) != 0)
                return http_send_error(r, 500, "%s", err.msg);
            return http_send_json(r, 200, json_pack("{s:o}", "drafts", d));
        }
        if (!post)
            return http_send_error(r, 405, "GET or POST");
        report_body b = {0};
        enum MHD_Result res;
        tr_stix_db *db = NULL;
        if (report_body_parse(r, &b, &res) != 0 || draft_of(r, &b, &db, &d, &res) != 0)
            goto created;
        if (db)
            tr_stix_close(db);
        char id[37];
        if (tr_report_keep_original(r->data_dir, b.data, b.len, &err) != 0 ||
            tr_report_draft_create(r->data_dir, d, r->key_name[0] ? r->key_name : NULL, id,
                                   &err) != 0) {
            json_decref(d);
            res = http_send_error(r, 500, "%s", err.msg);
            goto created;
        }
        res = http_send_json(r, 201, d);
    created:
        report_body_free(&b);
        return res;
    }
    char id[64];
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (n >= sizeof id)
        return http_send_error(r, 404, "no such draft");
    memcpy(id, rest, n);
    id[n] = 0;
    if (!tr_report_draft_id_valid(id))
        return http_send_error(r, 404, "no draft %s", id);
    if (slash) {
        if (strcmp(slash, "/commit") != 0)
            return http_send_error(r, 404, "no such resource");
        if (!post)
            return http_send_error(r, 405, "POST");
        tr_stix_db *db = NULL;
        if (tr_stix_open(r->data_dir, &db, &err) != 0)
            return http_send_error(r, 503, "%s", err.msg);
        rc = tr_report_draft_commit(r->data_dir, db, id, &d, &err);
        tr_stix_close(db);
        if (rc == -1)
            return http_send_error(r, 422, "%s", err.msg);
        return rc == 1 ? http_send_json(r, 201, d) : draft_error(r, rc, id, &err);
    }
    if (get) {
        rc = tr_report_draft_get(r->data_dir, id, &d, &err);
        return rc == 1 ? http_send_json(r, 200, d) : draft_error(r, rc, id, &err);
    }
    if (strcmp(r->method, "DELETE") == 0) {
        rc = tr_report_draft_delete(r->data_dir, id, &err);
        return rc == 1 ? http_send_json(r, 200, json_pack("{s:s}", "deleted", id))
                       : draft_error(r, rc, id, &err);
    }
    if (strcmp(r->method, "PATCH") == 0) {
        enum MHD_Result sent;
        json_t *changes = http_json_body(r, &sent);
        if (!changes)
            return sent;
        rc = tr_report_draft_review(r->data_dir, id, changes, &d, &err);
        json_decref(changes);
        if (rc == -1)
            return http_send_error(r, 400, "%s", err.msg);
        return rc == 1 ? http_send_json(r, 200, d) : draft_error(r, rc, id, &err);
    }
    return http_send_error(r, 405, "GET, PATCH, DELETE or POST .../commit");
}
