/* A scratch sample store and an analyzer, for the store's unit tests
 * (cmocka group setup/teardown). Header-only: each test is its own executable. */
#ifndef TRAWL_TEST_STORE_FIXTURE_H
#define TRAWL_TEST_STORE_FIXTURE_H

#include <stdio.h>

#include "core/core.h"
#include "fixture.h"
#include "store/store.h"

typedef struct fixture {
    char *dir;
    tr_store *s;
    tr_analyzer *an;
} fixture;

static inline int store_fixture_setup(void **state, const char *tag)
{
    fixture *f = tr_xcalloc(1, sizeof *f);
    f->dir = fixture_scratch_dir(tag);
    tr_error err;
    if (tr_store_open(f->dir, TR_STORE_CREATE, &f->s, &err) != 0 ||
        tr_analyzer_new(&f->an, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static inline int store_fixture_teardown(void **state)
{
    fixture *f = *state;
    tr_analyzer_free(f->an);
    tr_store_close(f->s);
    int rc = fixture_rm_rf(f->dir);
    free(f);
    return rc;
}

#endif
