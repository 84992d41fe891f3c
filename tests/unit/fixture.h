/* Helpers shared by the unit tests: a deterministic generator and scratch
 * index directories. Header-only: each test is its own executable. */
#ifndef TRAWL_TEST_FIXTURE_H
#define TRAWL_TEST_FIXTURE_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
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

/* A fresh directory under /tmp, named after the test; free it with
 * fixture_rm_rf. */
static inline char *fixture_scratch_dir(const char *tag)
{
    char *tmpl = tr_xasprintf("/tmp/trawl-%s-XXXXXX", tag);
    if (!mkdtemp(tmpl))
        abort();
    return tmpl;
}

/* Removes a directory tree a test made and frees its path; 0 on success. */
static inline int fixture_rm_rf(char *dir)
{
    char *cmd = tr_xasprintf("rm -rf '%s'", dir);
    int rc = system(cmd);
    free(cmd);
    free(dir);
    return rc == 0 ? 0 : -1;
}

/* A whole file in memory (the caller frees); aborts the test when unreadable. */
static inline unsigned char *fixture_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot read %s\n", path);
        abort();
    }
    tr_buf b = {0};
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        tr_buf_append(&b, chunk, got);
    fclose(f);
    *n = b.len;
    return (unsigned char *)b.data;
}

#endif
