/* One icon image from a PE's resources: the PNG (libpng) and DIB decoders
 * and the downscale behind dhash_icon. Seeds: a 32-bit DIB and a PNG. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char h[TR_DHASH_HEX];
    if (tr_icon_image_dhash(data, size, h) && strlen(h) != 16)
        abort();
    return 0;
}
