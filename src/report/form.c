/* multipart/form-data bodies of POST /api/reports/import, read with GMime
 * (the same MIME parser as .eml files): the document is the 'file' part,
 * the other parts are small text fields. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "report/report_internal.h"

void tr_report_form_free(tr_report_form *f)
{
    free(f->data);
    free(f->filename);
    for (size_t i = 0; i < f->nfields; i++) {
        free(f->keys[i]);
        free(f->values[i]);
    }
    free(f->keys);
    free(f->values);
    memset(f, 0, sizeof *f);
}

const char *tr_report_form_field(const tr_report_form *f, const char *key)
{
    for (size_t i = 0; i < f->nfields; i++)
        if (strcmp(f->keys[i], key) == 0)
            return f->values[i];
    return NULL;
}

int tr_report_form_parse(const char *content_type, const void *body, size_t len,
                         tr_report_form *out, tr_error *err)
{
    memset(out, 0, sizeof *out);
    if (!content_type || strncasecmp(content_type, "multipart/form-data", 19) != 0)
        return tr_fail(err, "the body is not multipart/form-data");
    report_gmime_init();
    /* GMime parses an entity: give the body the header it came with. */
    char *head = tr_xasprintf("Content-Type: %s\r\n\r\n", content_type);
    size_t hl = strlen(head);
    GByteArray *arr = g_byte_array_sized_new((guint)(hl + len));
    g_byte_array_append(arr, (const guint8 *)head, (guint)hl);
    g_byte_array_append(arr, body, (guint)len);
    free(head);
    GMimeStream *stream = g_mime_stream_mem_new_with_byte_array(arr);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    GMimeObject *obj = g_mime_parser_construct_part(parser, NULL);
    g_object_unref(parser);
    g_object_unref(stream);
    if (!obj || !GMIME_IS_MULTIPART(obj)) {
        if (obj)
            g_object_unref(obj);
        return tr_fail(err, "the multipart body cannot be parsed");
    }
    GMimeMultipart *mp = (GMimeMultipart *)obj;
    int n = g_mime_multipart_get_count(mp);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        GMimeObject *part = g_mime_multipart_get_part(mp, i);
        if (!GMIME_IS_PART(part))
            continue;
        GMimeContentDisposition *cd = g_mime_object_get_content_disposition(part);
        const char *name = cd ? g_mime_content_disposition_get_parameter(cd, "name") : NULL;
        if (!name) {
            rc = tr_fail(err, "a form part has no name");
            break;
        }
        GMimeDataWrapper *w = g_mime_part_get_content((GMimePart *)part);
        GMimeStream *mem = g_mime_stream_mem_new();
        if (w)
            g_mime_data_wrapper_write_to_stream(w, mem);
        GByteArray *b = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)mem);
        size_t bl = b ? b->len : 0;
        if (strcmp(name, "file") == 0) {
            if (out->data) {
                rc = tr_fail(err, "one document per request: only one 'file' part");
            } else {
                const char *fn = g_mime_content_disposition_get_parameter(cd, "filename");
                out->data = tr_xmalloc(bl + 1);
                if (bl)
                    memcpy(out->data, b->data, bl);
                out->len = bl;
                out->filename = tr_xstrdup(fn ? fn : "upload");
            }
        } else if (bl > 65536 || out->nfields >= 32) {
            rc = tr_fail(err, "form field '%s' is too large or there are too many", name);
        } else {
            out->keys = tr_xrealloc(out->keys, (out->nfields + 1) * sizeof *out->keys);
            out->values = tr_xrealloc(out->values, (out->nfields + 1) * sizeof *out->values);
            out->keys[out->nfields] = tr_xstrdup(name);
            char *v = tr_xmalloc(bl + 1);
            if (bl)
                memcpy(v, b->data, bl);
            v[bl] = 0;
            out->values[out->nfields++] = v;
        }
        g_object_unref(mem);
    }
    g_object_unref(obj);
    if (rc == 0 && !out->data)
        rc = tr_fail(err, "the form has no 'file' part");
    if (rc != 0)
        tr_report_form_free(out);
    return rc;
}
