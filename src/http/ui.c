/* The plain HTML page at /: recent samples. The full web UI replaces it. */
#include <string.h>

#include "http/http_internal.h"
#include "store/store.h"

static void html_escape(tr_buf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': tr_buf_append(b, "&lt;", 4); break;
        case '>': tr_buf_append(b, "&gt;", 4); break;
        case '&': tr_buf_append(b, "&amp;", 5); break;
        case '"': tr_buf_append(b, "&quot;", 6); break;
        case '\'': tr_buf_append(b, "&#39;", 5); break;
        default: tr_buf_append(b, s, 1);
        }
    }
}

enum MHD_Result ui_index(http_request *r)
{
    tr_buf b = {0};
    tr_buf_printf(&b,
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        "<title>trawl</title><style>"
        "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse;width:100%%}td,th{padding:4px 8px;border-bottom:1px solid #ddd;"
        "text-align:left}code{font:12px ui-monospace,monospace}.tag{background:#eef;border-radius:3px;"
        "padding:0 4px;margin-right:3px}</style></head><body><h1>trawl</h1>");
    tr_store *s;
    tr_error err;
    tr_sample **list = NULL;
    size_t n = 0;
    tr_sample_filter f = {.limit = 50};
    if (tr_store_open(r->data_dir, TR_STORE_READONLY, &s, &err) == 0) {
        tr_store_stats st = {0};
        tr_store_stats_get(s, &st, &err);
        tr_buf_printf(&b, "<p>%lld samples, %lld bytes</p>", (long long)st.samples,
                      (long long)st.bytes);
        if (tr_store_list(s, &f, &list, &n, &err) != 0)
            n = 0;
        tr_store_close(s);
    } else {
        tr_buf_printf(&b, "<p>");
        html_escape(&b, err.msg);
        tr_buf_printf(&b, "</p>");
    }
    tr_buf_printf(&b, "<h2>Recent samples</h2><table><tr><th>sha256</th><th>type</th>"
                      "<th>size</th><th>first seen</th><th>signature</th><th>name</th>"
                      "<th>tags</th></tr>");
    for (size_t i = 0; i < n; i++) {
        tr_sample *x = list[i];
        char when[32];
        tr_format_time(x->first_seen, when);
        tr_buf_printf(&b, "<tr><td><a href='/api/samples/%s'><code>%s</code></a></td><td>",
                      x->d.sha256, x->d.sha256);
        html_escape(&b, x->file_type);
        tr_buf_printf(&b, "</td><td>%llu</td><td>%s</td><td>", (unsigned long long)x->d.size, when);
        html_escape(&b, x->signature ? x->signature : "");
        tr_buf_printf(&b, "</td><td>");
        html_escape(&b, x->n_names ? x->names[0] : "");
        tr_buf_printf(&b, "</td><td>");
        for (size_t k = 0; k < x->n_tags; k++) {
            tr_buf_printf(&b, "<span class=tag>");
            html_escape(&b, x->tags[k]);
            tr_buf_printf(&b, "</span>");
        }
        tr_buf_printf(&b, "</td></tr>");
    }
    tr_buf_printf(&b, "</table></body></html>");
    tr_sample_list_free(list, n);
    enum MHD_Result rc = http_send_text(r, 200, "text/html; charset=utf-8", b.data, b.len);
    tr_buf_free(&b);
    return rc;
}
