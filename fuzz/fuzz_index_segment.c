/* libFuzzer: a segment file's bytes (as read back from disk) through every
 * reader path: header checks, directory walk, lookups, list decode and probes.
 * Damaged bytes may yield errors or wrong lists, never a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "index/index_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* The segment owns a real mapping, as after tr_map_open. */
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 0;
    memcpy(p, data, size);
    tr_map m = {.data = p, .len = size};
    tr_seg *s;
    tr_error err;
    if (tr_seg_from_map(&m, "seg-fuzz.tsg", &s, &err) < 0)
        return 0;
    uint32_t *buf = tr_xmalloc(((size_t)s->ndocs + 1) * sizeof *buf);
    tr_seg_iter it;
    tr_seg_iter_init(&it, s);
    int r, lists = 0;
    while ((r = tr_seg_iter_next(&it)) == 1 && lists++ < 100000) {
        tr_plist pl;
        if (tr_plist_open(&pl, it.codec, it.list, it.len) < 0 || pl.n > s->ndocs)
            continue;
        (void)tr_plist_decode(&pl, buf);
        tr_plist_cursor c;
        tr_plist_cursor_init(&c, &pl);
        for (uint32_t v = 0; v < 64; v += 7)
            (void)tr_plist_contains(&c, v);
        const unsigned char *l;
        size_t len;
        int codec;
        (void)tr_seg_lookup(s, it.key, &l, &len, &codec);
        (void)tr_seg_lookup(s, it.key + 1, &l, &len, &codec);
    }
    for (uint32_t o = 0; o < s->ndocs && o < 1000; o++)
        (void)tr_seg_doc(s, o);
    free(buf);
    tr_seg_unref(s);
    return 0;
}
