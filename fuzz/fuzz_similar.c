/* Similarity indexes: hash values as text (TLSH digests, ssdeep signatures)
 * built into indexes and queried, the ssdeep answers checked against brute
 * force; and index files as found on disk (damaged, truncated, forged). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "similar/similar.h"
#include "store/store.h"

static tr_store *store;
static char *idx_path[2];

static void setup(void)
{
    char tmpl[] = "/tmp/trawl-fuzz-similar-XXXXXX";
    char *d = mkdtemp(tmpl);
    tr_error err;
    if (!d)
        abort();
    char *dir = tr_xasprintf("%s/data", d);
    if (tr_store_open(dir, TR_STORE_CREATE, &store, &err) != 0)
        abort();
    char *sd = tr_xasprintf("%s/similar", dir);
    if (tr_mkdir_p(sd, 0755, &err) != 0)
        abort();
    idx_path[0] = tr_xasprintf("%s/tlsh.idx", sd);
    idx_path[1] = tr_xasprintf("%s/ssdeep.idx", sd);
    free(sd);
    free(dir);
}

static void values(const uint8_t *data, size_t size, size_t kind)
{
    tr_hash_value v[64];
    size_t n = 0;
    size_t i = 0;
    while (i < size && n < 64) {
        size_t j = i;
        while (j < size && data[j] != '\n')
            j++;
        size_t len = j - i < sizeof v[n].value - 1 ? j - i : sizeof v[n].value - 1;
        memcpy(v[n].value, data + i, len);
        v[n].value[len] = '\0';
        v[n].id = (int64_t)n + 1;
        n++;
        i = j + 1;
    }
    tr_simix *ix = tr_simix_from_values(kind, v, n);
    tr_similar_hit a[8], b[8];
    for (size_t q = 0; q < n; q++) {
        size_t na = tr_simix_knn(ix, v[q].value, 8, v[q].id, a);
        size_t nb = tr_simix_brute(ix, v[q].value, 8, v[q].id, b);
        if (!tr_similar_kind_is_score(kind))
            continue;
        /* the 7-gram filter must lose nothing */
        if (na != nb)
            abort();
        for (size_t k = 0; k < na; k++)
            if (a[k].id != b[k].id || a[k].distance != b[k].distance)
                abort();
    }
    tr_simix_close(ix);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!store)
        setup();
    if (size < 1)
        return 0;
    size_t tlsh = (size_t)tr_similar_kind_find("tlsh"), ssdeep = (size_t)tr_similar_kind_find("ssdeep");
    size_t kind = data[0] & 2 ? ssdeep : tlsh;
    if (!(data[0] & 1)) {
        values(data + 1, size - 1, kind);
        return 0;
    }
    /* an index file as found in the data directory */
    const char *path = idx_path[kind == ssdeep];
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    fwrite(data + 1, 1, size - 1, f);
    fclose(f);
    tr_simix *ix = NULL;
    tr_error err;
    if (tr_simix_open(store, kind, &ix, &err) == 0) {
        tr_similar_hit h[8];
        const char *q = kind == ssdeep ? "3:abcdefghij:abcdefghij"
                                       : "T1A0E0C0" "0123456789abcdef0123456789abcdef"
                                         "0123456789abcdef0123456789abcdef";
        tr_simix_knn(ix, q, 8, 0, h);
        for (size_t i = 0; i < tr_simix_size(ix) && i < 16; i++) {
            const char *v;
            tr_simix_entry(ix, i, &v);
            tr_simix_knn(ix, v, 8, 0, h);
        }
        tr_simix_close(ix);
    }
    unlink(path);
    return 0;
}
