/* Uploaded bytes: every digest, libmagic (from the bytes, and from a file as
 * ingest reads a staged upload: magic_descriptor, which seeks and rereads),
 * and the analysis module behind one libyara parse (imphash, signatures,
 * icons, telfhash...). */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "analysis/analysis.h"
#include "core/core.h"
#include "store/store.h"

static tr_analyzer *analyzer;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!analyzer) {
        tr_error err;
        if (tr_analyzer_new(&analyzer, &err) != 0)
            abort();
    }
    tr_digests d;
    tr_digest_buffer(data, size, &d);
    tr_analysis a;
    tr_analyze_buffer(analyzer, data, size, &a);
    int fd = memfd_create("fuzz-upload", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    if (tr_write_all(fd, data, size) != 0)
        abort();
    tr_bin_info_free(tr_analyze_all(analyzer, fd, data, size, &a));
    close(fd);
    return 0;
}
