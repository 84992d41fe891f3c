/* libFuzzer target: bytes named "doc.txt" -> document text (plain text in any charset (BOM, UTF-8, Shift_JIS, EUC-JP)).
 * Must never crash, leak or hang; accepted text must be UTF-8 that jansson
 * takes, without NULs, as the draft puts it into JSON. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "report/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256 * 1024)
        return 0;
    tr_doc d;
    tr_error err;
    if (tr_doc_extract(data, size, "doc.txt", &d, &err) != 0)
        return 0;
    if (strlen(d.text) != d.len)
        abort();
    json_t *j = json_stringn(d.text, d.len);
    if (!j)
        abort();
    json_decref(j);
    tr_doc_free(&d);
    return 0;
}
