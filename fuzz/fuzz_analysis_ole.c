/* Office documents from an upload: libgsf's compound-file and zip readers,
 * its VBA directory parser, and the walk behind ole_information. Seeds: a
 * compound file with a VBA project and a docm-like zip, as
 * test_analysis_ole writes them. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "analysis/analysis.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = tr_ole_info_json(data, size);
    if (text) {
        json_t *j = json_loads(text, 0, NULL);
        if (!json_is_object(j))
            abort();
        json_decref(j);
        free(text);
    }
    return 0;
}
