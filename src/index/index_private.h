/* State shared by index.c and eval.c (not for tests or other modules). */
#ifndef TRAWL_INDEX_PRIVATE_H
#define TRAWL_INDEX_PRIVATE_H

#include <pthread.h>
#include <sys/stat.h>

#include "index/index_internal.h"

/* One consistent view: the segments and tombstones of one manifest. */
typedef struct tr_snap {
    atomic_int refs;
    size_t nseg;
    tr_seg **seg;
    uint32_t *tombs;          /* sorted */
    size_t ntombs;
} tr_snap;

struct tr_index {
    char *dir;
    tr_index_opts opts;
    int writer_threads;       /* worker threads per writer: -1 = cores - 1 (see index.c) */
    pthread_mutex_t mu;       /* guards cur and cur_stat */
    tr_snap *cur;
    struct stat cur_stat;     /* MANIFEST as last loaded (zeroed when absent) */
};

/* Current snapshot, reloaded first if MANIFEST changed on disk. */
int tr_ix_snap_get(tr_index *ix, tr_snap **out, tr_error *err);
void tr_ix_snap_unref(tr_snap *s);
bool tr_ix_u32_in(const uint32_t *v, size_t n, uint32_t x);

#endif
