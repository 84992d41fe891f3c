/* Office documents from an upload: libgsf's compound-file and zip readers,
 * its VBA directory parser, and the walk behind ole_information. Seeds: a
 * compound file with a VBA project and a docm-like zip, as
 * test_analysis_ole writes them. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "analysis/analysis.h"

/* libgsf 1.14 loses a directory entry (80 bytes and its name) inside
 * gsf_infile_msole_new when a compound file's directory is malformed: the
 * object it returns, or NULL, is released by trawl, the entry is not reachable
 * from it. Found by a longer run of this target; its input is a seed
 * (leak-msole-dirent). Only that function's allocations are excused, which
 * needs whole allocation stacks: libgsf and GLib have no frame pointers. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "fast_unwind_on_malloc=0";
}

const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:gsf_infile_msole_new\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = tr_ole_info_json(data, size);
    if (text) {
        json_t *j = json_loads(text, 0, NULL);
        if (!json_is_object(j))
            abort();
        json_decref(j);
        free(text);
    }
    return 0;
}
