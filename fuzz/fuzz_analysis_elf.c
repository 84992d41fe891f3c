/* ELF bytes from an upload: the section, symbol and string tables behind
 * telfhash, and the section lookup by name gimphash uses (.gopclntab). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *list = NULL;
    if (tr_telfhash_symbols(data, size, &list)) {
        /* The list is text joined by ","; its length must be consistent. */
        if (!list || memchr(list, '\0', strlen(list) + 1) == NULL)
            abort();
        free(list);
    }
    char h[TR_TELFHASH_MAX];
    tr_telfhash(data, size, h);
    char g[TR_SHA256_HEX];
    tr_gimphash(data, size, g);
    return 0;
}
