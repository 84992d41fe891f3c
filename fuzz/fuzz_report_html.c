/* libFuzzer target: bytes named "page.html" -> document text (HTML through libxml2). */
#include "fuzz_report_doc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_report_doc(data, size, "page.html");
}
