/* Helpers shared by the unit tests: a deterministic generator and scratch
 * index directories. Header-only: each test is its own executable. */
#ifndef TRAWL_TEST_FIXTURE_H
#define TRAWL_TEST_FIXTURE_H

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

/* Cases that read ../shared (reference data nobody here wrote) skip, saying
 * so, in a clone that has none beside it. Call from a cmocka test. */
#define FIXTURE_NEED_SHARED(rel)                                                      \
    do {                                                                              \
        if (access(TRAWL_SHARED_DIR rel, R_OK) != 0) {                                \
            printf("skipped: needs %s (../shared beside the repository)\n",           \
                   TRAWL_SHARED_DIR rel);                                             \
            skip();                                                                   \
        }                                                                             \
    } while (0)

/* xorshift64: the same sequence on every run, so a failure reproduces. */
static inline uint32_t fixture_rnd(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return (uint32_t)(x >> 11);
}

/* "<fresh /tmp dir>/index" (not created: the index creates it). */
static inline char *fixture_index_dir(const char *tag)
{
    char *tmpl = tr_xasprintf("/tmp/trawl-%s-XXXXXX", tag);
    char *d = mkdtemp(tmpl);
    if (!d)
        abort();
    char *out = tr_xasprintf("%s/index", d);
    free(tmpl);
    return out;
}

/* Removes what fixture_index_dir made, and frees the path. */
static inline void fixture_remove_index_dir(char *ixdir)
{
    DIR *d = opendir(ixdir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            char *p = tr_xasprintf("%s/%s", ixdir, de->d_name);
            unlink(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(ixdir);
    char *parent = tr_xstrdup(ixdir);
    char *slash = strrchr(parent, '/');
    if (slash)
        *slash = '\0';
    rmdir(parent);
    free(parent);
    free(ixdir);
}

#endif
