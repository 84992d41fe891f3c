/* The default tag files (src/noise/tags/, one .yar each), compiled into the binary by
 * cmake/embed_tags.cmake. */
#ifndef TRAWL_NOISE_BUILTIN_H
#define TRAWL_NOISE_BUILTIN_H

#include <stddef.h>

typedef struct noise_builtin {
    const char *name;              /* file name, e.g. "scanners.yar" */
    const unsigned char *text;
    size_t len;
} noise_builtin;

/* Ends with an entry whose name is NULL. */
extern const noise_builtin noise_builtin_tags[];

#endif
