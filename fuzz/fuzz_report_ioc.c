/* libFuzzer target: text -> the IOC extractor. Must never crash, leak or
 * hang; every extraction must lie inside the input, in offset order, and
 * the fold map must be monotonic and end at the input's length. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "report/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256 * 1024)
        return 0;
    size_t n, *map;
    char *f = tr_ioc_fold((const char *)data, size, &n, &map);
    for (size_t i = 0; i < n; i++)
        if (map[i] > map[i + 1])
            abort();
    if (map[n] != size)
        abort();
    free(f);
    free(map);
    tr_ioc_list l;
    tr_error err;
    if (tr_ioc_extract((const char *)data, size, &l, &err) != 0)
        abort();   /* only a missing Public Suffix List fails */
    size_t last = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (l.v[i].offset + l.v[i].length > size || l.v[i].length == 0 || !l.v[i].value[0] ||
            l.v[i].offset < last)
            abort();
        last = l.v[i].offset;
    }
    tr_ioc_list_free(&l);
    return 0;
}
