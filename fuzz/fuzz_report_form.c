/* libFuzzer target: a multipart/form-data body of POST /api/reports/import
 * -> the form reader (GMime). Must never crash, leak or hang. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "report/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256 * 1024)
        return 0;
    tr_report_form f;
    tr_error err;
    if (tr_report_form_parse("multipart/form-data; boundary=XyZ", data, size, &f, &err) != 0)
        return 0;
    if (!f.data || !f.filename)
        abort();
    tr_report_form_free(&f);
    return 0;
}
