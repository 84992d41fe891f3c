/* libFuzzer target: bytes named "mail.eml" -> document text (e-mail through GMime). */
#include "fuzz_report_doc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_report_doc(data, size, "mail.eml");
}
