/* Serves the embedded web UI: / is the app, /ui/<file> its assets. */
#include <string.h>

#include "http/http_internal.h"
#include "http/ui_assets.h"

static const char *content_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (!dot)
        return "application/octet-stream";
    if (strcmp(dot, ".html") == 0)
        return "text/html; charset=utf-8";
    if (strcmp(dot, ".js") == 0)
        return "text/javascript; charset=utf-8";
    if (strcmp(dot, ".css") == 0)
        return "text/css; charset=utf-8";
    if (strcmp(dot, ".svg") == 0)
        return "image/svg+xml";
    if (strcmp(dot, ".png") == 0)
        return "image/png";
    return "application/octet-stream";
}

static enum MHD_Result send_asset(http_request *r, const char *path)
{
    for (const tr_ui_asset *a = tr_ui_assets; a->path; a++)
        if (strcmp(a->path, path) == 0)
            return http_send_text(r, 200, content_type(path), (const char *)a->data, a->len);
    return http_send_text(r, 404, "text/plain; charset=utf-8", "not found\n", 10);
}

enum MHD_Result ui_index(http_request *r)
{
    if (strncmp(r->path, "/ui/", 4) == 0)
        return send_asset(r, r->path + 3);
    return send_asset(r, "/index.html");
}
