/* libFuzzer target: the text-extraction helper's answer (isolate.c) ->
 * a document. The helper parses attacker-authored documents, so its answer
 * is not trusted either. Must never crash, leak or hang; an accepted
 * document must keep tr_doc_extract's promises (NUL-terminated text of
 * len bytes, no NUL in any string), and must survive its own encoding. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tr_doc d;
    tr_error err;
    if (tr_doc_decode(data, size, &d, &err) != 0)
        return 0;
    if (!d.text || strlen(d.text) != d.len || strlen(d.charset) >= sizeof d.charset)
        abort();
    if ((unsigned)d.format > TR_DOC_EML)
        abort();
    for (size_t i = 0; i < d.nlinks; i++)
        if (!d.links[i])
            abort();
    tr_buf b = {0};
    tr_doc_encode(&d, NULL, &b);
    tr_doc again;
    if (tr_doc_decode((const unsigned char *)b.data, b.len, &again, &err) != 0)
        abort();
    if (again.len != d.len || memcmp(again.text, d.text, d.len) != 0 ||
        again.nlinks != d.nlinks)
        abort();
    tr_doc_free(&again);
    tr_buf_free(&b);
    tr_doc_free(&d);
    return 0;
}
