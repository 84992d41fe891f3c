/* Go binaries from an upload: the pclntab search and walk behind gimphash.
 * The seeds are tables of each layout (Go 1.2, 1.16, 1.18) behind Go's
 * build-info marker, as test_analysis builds them. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *names = NULL;
    int found = tr_gimphash_names(data, size, &names);
    char h[TR_SHA256_HEX];
    /* Both views of the table agree on whether there is one. */
    if (tr_gimphash(data, size, h) && !found)
        abort();
    free(names);
    return 0;
}
