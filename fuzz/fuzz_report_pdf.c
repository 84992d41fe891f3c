/* libFuzzer target: bytes named "doc.pdf" -> document text (PDF through poppler). */
#include "fuzz_report_doc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_report_doc(data, size, "doc.pdf");
}
