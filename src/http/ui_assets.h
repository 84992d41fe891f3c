/* The web UI's files, compiled in (see cmake/embed.cmake). */
#ifndef TRAWL_UI_ASSETS_H
#define TRAWL_UI_ASSETS_H

#include <stddef.h>

typedef struct tr_ui_asset {
    const char *path;         /* "/index.html", "/app.js" ... */
    const unsigned char *data;
    size_t len;
} tr_ui_asset;

extern const tr_ui_asset tr_ui_assets[];   /* ends with a NULL path */

#endif
