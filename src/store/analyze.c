/* Per-sample analysis: libmagic for the type; the analysis module for the
 * rest, imphash included (one libyara parse of a PE serves imphash,
 * signatures and icons). Both libraries keep per-handle state, hence one
 * tr_analyzer per thread. */
#include "store/store.h"
#include "analysis/analysis.h"

#include <magic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tr_analyzer {
    magic_t magic;
    size_t magic_window;      /* file(1)'s byte limit: MAGIC_PARAM_BYTES_MAX */
    tr_binan *bin;
};

int tr_analyzer_new(tr_analyzer **out, tr_error *err)
{
    tr_analyzer *a = tr_xcalloc(1, sizeof *a);
    a->magic = magic_open(MAGIC_NONE | MAGIC_ERROR);
    if (!a->magic) {
        free(a);
        return tr_fail(err, "libmagic: cannot open a handle");
    }
    if (magic_load(a->magic, NULL) != 0) {
        tr_fail(err, "libmagic: cannot load its database (%s); install libmagic-mgc",
                magic_error(a->magic));
        tr_analyzer_free(a);
        return -1;
    }
    /* file(1) reads at most this many bytes of a file; magic_buffer looks
     * at all it is given, so the same limit keeps the answers file's. */
    if (magic_getparam(a->magic, MAGIC_PARAM_BYTES_MAX, &a->magic_window) != 0 ||
        a->magic_window == 0)
        a->magic_window = (size_t)7 << 20;
    if (tr_binan_new(&a->bin, err) != 0) {
        tr_analyzer_free(a);
        return -1;
    }
    *out = a;
    return 0;
}

void tr_analyzer_free(tr_analyzer *a)
{
    if (!a)
        return;
    tr_binan_free(a->bin);
    if (a->magic)
        magic_close(a->magic);
    free(a);
}

void tr_imphash(tr_analyzer *a, const unsigned char *p, size_t n, char out[TR_MD5_HEX])
{
    tr_pe_imphash(a->bin, p, n, out);
}

/* libmagic's answer in one mode: from the file when there is one, as
 * file(1) reads it (the ELF details, a gzip's trailer and other tests that
 * seek in the file need the descriptor; magic_buffer answers less), else
 * from the bytes. */
static const char *magic_answer(tr_analyzer *a, int flags, int fd, const unsigned char *p,
                                size_t n)
{
    /* file(1) answers an empty regular file from its stat, before libmagic
     * reads anything (and magic_descriptor skips that step). */
    if (fd >= 0 && n == 0)
        return flags & MAGIC_MIME_TYPE ? "inode/x-empty" : "empty";
    magic_setflags(a->magic, flags | MAGIC_ERROR);
    if (fd >= 0 && lseek(fd, 0, SEEK_SET) == 0)
        return magic_descriptor(a->magic, fd);
    size_t window = n < a->magic_window ? n : a->magic_window;
    return magic_buffer(a->magic, window ? (const void *)p : (const void *)"", window);
}

static void analyze_type(tr_analyzer *a, int fd, const unsigned char *p, size_t n,
                         tr_analysis *out)
{
    memset(out, 0, sizeof *out);
    /* Two calls: libmagic answers either the MIME type or the description,
     * and neither can be derived from the other (see docs/ingest.md). */
    const char *mime = magic_answer(a, MAGIC_MIME_TYPE, fd, p, n);
    snprintf(out->mime, sizeof out->mime, "%s", mime ? mime : "application/octet-stream");
    const char *desc = magic_answer(a, MAGIC_NONE, fd, p, n);
    snprintf(out->magic, sizeof out->magic, "%s", desc ? desc : "data");
    snprintf(out->file_type, sizeof out->file_type, "%s",
             tr_filetype_classify(out->mime, out->magic, p, n));
}

void tr_analyze_buffer(tr_analyzer *a, const unsigned char *p, size_t n, tr_analysis *out)
{
    analyze_type(a, -1, p, n, out);
    tr_imphash(a, p, n, out->imphash);
}

tr_bin_info *tr_analyze_all(tr_analyzer *a, int fd, const unsigned char *p, size_t n,
                            tr_analysis *out)
{
    analyze_type(a, fd, p, n, out);
    tr_bin_info *b = tr_bin_analyze(a->bin, p, n);
    memcpy(out->imphash, b->imphash, TR_MD5_HEX);
    return b;
}
