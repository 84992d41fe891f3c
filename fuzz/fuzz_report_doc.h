/* The body shared by the report text-extraction targets (one per format, each
 * with its own corpus): bytes under a file name -> document text. Must never
 * crash, leak or hang; accepted text must be UTF-8 that jansson takes, without
 * NULs, as the draft puts it into JSON. */
#ifndef TRAWL_FUZZ_REPORT_DOC_H
#define TRAWL_FUZZ_REPORT_DOC_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "report/report.h"

static inline int fuzz_report_doc(const uint8_t *data, size_t size, const char *name)
{
    if (size > 256 * 1024)
        return 0;
    tr_doc d;
    tr_error err;
    if (tr_doc_extract(data, size, name, &d, &err) != 0)
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

#endif
