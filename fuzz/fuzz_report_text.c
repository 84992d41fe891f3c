/* libFuzzer target: bytes named "doc.txt" -> document text (plain text in any charset: BOM, UTF-8, Shift_JIS, EUC-JP). */
#include "fuzz_report_doc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_report_doc(data, size, "doc.txt");
}
