/* POST /api/reports/import: a document (multipart 'file' part, a JSON
 * {"text": ...}, or the raw body) becomes a draft STIX report; ?commit=1
 * imports it into the knowledge base at once. */
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

enum MHD_Result api_report_import(http_request *r)
{
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
    report_args a = {0};
    tr_report_form form = {0};
    json_t *jbody = NULL;
    char *label_keep[3] = {0};
    const unsigned char *data = NULL;
    size_t len = 0;
    tr_error err;
    enum MHD_Result sent;
    bool commit = truthy(http_query(r, "commit"));
    a.name = http_query(r, "name");
    a.published = http_query(r, "published");
    a.marking = http_query(r, "marking");
    a.filename = http_query(r, "filename");
    if (http_query(r, "label"))
        add_labels(&a, http_query(r, "label"), &label_keep[0]);

    if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0) {
        if (tr_report_form_parse(ct, r->body.data ? r->body.data : "", r->body.len, &form,
                                 &err) != 0)
            return http_send_error(r, 400, "%s", err.msg);
        data = form.data;
        len = form.len;
        a.filename = form.filename;
        if (tr_report_form_field(&form, "name"))
            a.name = tr_report_form_field(&form, "name");
        if (tr_report_form_field(&form, "published"))
            a.published = tr_report_form_field(&form, "published");
        if (tr_report_form_field(&form, "marking"))
            a.marking = tr_report_form_field(&form, "marking");
        if (tr_report_form_field(&form, "label"))
            add_labels(&a, tr_report_form_field(&form, "label"), &label_keep[1]);
        commit = commit || truthy(tr_report_form_field(&form, "commit"));
    } else if (ct && strncasecmp(ct, "application/json", 16) == 0) {
        jbody = http_json_body(r, &sent);
        if (!jbody)
            return sent;
        json_t *text = json_object_get(jbody, "text");
        if (!json_is_string(text)) {
            json_decref(jbody);
            return http_send_error(r, 400, "a JSON body needs \"text\": the document's text");
        }
        data = (const unsigned char *)json_string_value(text);
        len = json_string_length(text);
        const char *v;
        if ((v = json_string_value(json_object_get(jbody, "name"))))
            a.name = v;
        if ((v = json_string_value(json_object_get(jbody, "published"))))
            a.published = v;
        if ((v = json_string_value(json_object_get(jbody, "marking"))))
            a.marking = v;
        if ((v = json_string_value(json_object_get(jbody, "filename"))))
            a.filename = v;
        size_t i;
        json_t *l;
        json_array_foreach(json_object_get(jbody, "labels"), i, l) {
            if (json_is_string(l) && a.nlabels < 32)
                a.labels[a.nlabels++] = json_string_value(l);
        }
        if (json_is_true(json_object_get(jbody, "commit")))
            commit = true;
    } else {
        /* Any other type: the body is the document itself. */
        data = (const unsigned char *)(r->body.data ? r->body.data : "");
        len = r->body.len;
    }
    a.labels[a.nlabels] = NULL;

    tr_report_opts o = {a.name, a.published, a.labels, a.marking, a.filename};
    tr_store *store = NULL;
    tr_stix_db *db = NULL;
    tr_gazetteer *g = NULL;
    json_t *draft = NULL;
    enum MHD_Result res;
    if (tr_store_open(r->data_dir, 0, &store, &err) != 0 ||
        tr_stix_open(r->data_dir, &db, &err) != 0 || tr_gazetteer_load(db, &g, &err) != 0) {
        res = http_send_error(r, 503, "%s", err.msg);
        goto out;
    }
    if (tr_report_draft(data, len, &o, g, store, &draft, &err) != 0) {
        res = http_send_error(r, len > TR_REPORT_MAX_INPUT ? 413 : 400, "%s", err.msg);
        goto out;
    }
    if (commit) {
        char *text = json_dumps(json_object_get(draft, "bundle"), JSON_COMPACT);
        tr_stix_import_result ir;
        bool serialised = text != NULL;
        if (!serialised || tr_report_keep_original(r->data_dir, data, len, &err) != 0 ||
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
    res = http_send_json(r, commit ? 201 : 200, draft);
out:
    tr_gazetteer_free(g);
    if (db)
        tr_stix_close(db);
    tr_store_close(store);
    json_decref(jbody);
    tr_report_form_free(&form);
    for (size_t i = 0; i < 3; i++)
        free(label_keep[i]);
    return res;
}
