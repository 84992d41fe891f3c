/* ClamAV (libclamav) detections for intelligence.clamav and
 * get_clamavinfo, when the admin points trawl at a signature database. One
 * engine for the process: loading a database takes seconds and memory, and a
 * compiled engine scans from any number of threads. */
#include <clamav.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis.h"

static pthread_mutex_t clam_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cl_engine *clam_engine;     /* set once, under clam_lock */
static char *clam_db;

typedef struct hits {
    char **names;
    size_t n;
} hits;

static void on_virus(int fd, const char *name, void *ctx)
{
    (void)fd;
    hits *h = ctx;
    if (!name)
        return;
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->names[i], name) == 0)
            return;
    h->names = tr_xrealloc(h->names, (h->n + 1) * sizeof *h->names);
    h->names[h->n++] = tr_xstrdup(name);
}

int tr_clamav_configure(const char *db, tr_error *err)
{
    pthread_mutex_lock(&clam_lock);
    int rc = 0;
    if (clam_engine) {
        if (strcmp(clam_db, db) != 0)
            rc = tr_fail(err, "ClamAV is already using the database in %s", clam_db);
        pthread_mutex_unlock(&clam_lock);
        return rc;
    }
    cl_error_t cr = cl_init(CL_INIT_DEFAULT);
    struct cl_engine *e = cr == CL_SUCCESS ? cl_engine_new() : NULL;
    unsigned sigs = 0;
    if (!e) {
        rc = tr_fail(err, "libclamav: cannot initialise (%s)", cl_strerror(cr));
    } else if ((cr = cl_load(db, e, &sigs, CL_DB_STDOPT & ~CL_DB_BYTECODE)) != CL_SUCCESS) {
        rc = tr_fail(err, "ClamAV database %s: %s", db, cl_strerror(cr));
    } else if (sigs == 0) {
        rc = tr_fail(err, "ClamAV database %s holds no signatures", db);
    } else if ((cr = cl_engine_compile(e)) != CL_SUCCESS) {
        rc = tr_fail(err, "ClamAV database %s: %s", db, cl_strerror(cr));
    }
    if (rc == 0) {
        cl_engine_set_clcb_virus_found(e, on_virus);
        clam_engine = e;
        clam_db = tr_xstrdup(db);
    } else if (e) {
        cl_engine_free(e);
    }
    pthread_mutex_unlock(&clam_lock);
    return rc;
}

bool tr_clamav_enabled(void)
{
    pthread_mutex_lock(&clam_lock);
    bool on = clam_engine != NULL;
    pthread_mutex_unlock(&clam_lock);
    return on;
}

int tr_clamav_scan(const unsigned char *p, size_t n, tr_bin_info *out)
{
    pthread_mutex_lock(&clam_lock);
    struct cl_engine *e = clam_engine;
    pthread_mutex_unlock(&clam_lock);
    if (!e)
        return 0;
    cl_fmap_t *map = cl_fmap_open_memory(n ? (const void *)p : (const void *)"", n);
    if (!map)
        return -1;
    struct cl_scan_options opts;
    memset(&opts, 0, sizeof opts);
    opts.general = CL_SCAN_GENERAL_ALLMATCHES;
    opts.parse = ~0u;
    hits h = {NULL, 0};
    const char *virname = NULL;
    unsigned long scanned = 0;
    cl_error_t rc = cl_scanmap_callback(map, NULL, &virname, &scanned, e, &opts, &h);
    cl_fmap_close(map);
    if (rc == CL_VIRUS && h.n == 0 && virname)
        on_virus(-1, virname, &h);
    out->clamav = h.names;
    out->n_clamav = h.n;
    out->clamav_scanned = true;
    return rc == CL_VIRUS || rc == CL_CLEAN ? 0 : -1;
}
