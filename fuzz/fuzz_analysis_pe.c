/* PE bytes from an upload: libyara's Authenticode parse and the walk over
 * its signatures behind code_sign and the certificate queries, trawl's own
 * read of the certificate table and PKCS#7 (authenticode.c, SHA-256
 * thumbprints, nested signatures), then the Bazaar JSON of what was found. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "analysis/analysis.h"

static tr_binan *an;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!an) {
        tr_error err;
        if (tr_binan_new(&an, &err) != 0)
            abort();
    }
    tr_bin_info *b = tr_bin_analyze(an, data, size);
    json_t *j = json_object();
    tr_bin_info_to_bazaar_json(b, j);
    json_decref(j);
    tr_bin_info_free(b);
    return 0;
}
