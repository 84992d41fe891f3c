/* Uploaded bytes: every digest, libmagic, the PE import walk behind imphash. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/core.h"
#include "store/store.h"

static tr_analyzer *analyzer;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!analyzer) {
        tr_error err;
        if (tr_analyzer_new(&analyzer, &err) != 0)
            abort();
    }
    tr_digests d;
    tr_digest_buffer(data, size, &d);
    tr_analysis a;
    tr_analyze_buffer(analyzer, data, size, &a);
    return 0;
}
