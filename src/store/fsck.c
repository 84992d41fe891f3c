/* Consistency check of rows against blobs. */
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_internal.h"

static bool is_hex64(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return false;
    return n == 64;
}

static int hash_file(const char *path, char out[TR_SHA256_HEX], uint64_t *size)
{
    tr_map m;
    tr_error e;
    if (tr_map_open(&m, path, &e) != 0)
        return -1;
    tr_sha256_hex(m.data ? m.data : (const unsigned char *)"", m.len, out);
    *size = m.len;
    tr_map_close(&m);
    return 0;
}

typedef struct fsck_run {
    tr_store *s;
    bool repair;
    tr_fsck_cb cb;
    void *arg;
    tr_fsck_report *rep;
    tr_analyzer *an;
} fsck_run;

static void report(fsck_run *r, tr_fsck_kind kind, const char *what, const char *action)
{
    if (r->cb)
        r->cb(r->arg, kind, what, action);
}

static int check_rows(fsck_run *r, tr_error *err)
{
    int64_t *lost = NULL;
    size_t nlost = 0, cap = 0;
    int64_t last = 0;
    for (;;) {
        /* Paged by id so that no statement stays open across repairs. */
        int64_t ids[256];
        char shas[256][TR_SHA256_HEX];
        int64_t sizes[256];
        size_t n = 0;
        if (store_page_rows(r->s, last, 256, ids, shas, sizes, &n, err) != 0) {
            free(lost);
            return -1;
        }
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            last = ids[i];
            r->rep->rows_checked++;
            char *path = tr_store_blob_path(r->s, shas[i]);
            char got[TR_SHA256_HEX];
            uint64_t size = 0;
            bool bad = false;
            if (hash_file(path, got, &size) != 0) {
                r->rep->missing++;
                report(r, TR_FSCK_MISSING_BLOB, path, r->repair ? "row removed (sample lost)" : NULL);
                bad = true;
            } else if (strcmp(got, shas[i]) != 0 || (int64_t)size != sizes[i]) {
                r->rep->corrupt++;
                report(r, TR_FSCK_CORRUPT_BLOB, path,
                       r->repair ? "blob and row removed (sample lost)" : NULL);
                if (r->repair)
                    unlink(path);
                bad = true;
            }
            free(path);
            if (bad && r->repair) {
                if (nlost == cap) {
                    cap = cap ? cap * 2 : 16;
                    lost = tr_xrealloc(lost, cap * sizeof *lost);
                }
                lost[nlost++] = ids[i];
            }
        }
    }
    for (size_t i = 0; i < nlost; i++)
        if (store_delete_row(r->s, lost[i], err) == 0)
            r->rep->repaired++;
    free(lost);
    return 0;
}

static int adopt_blob(fsck_run *r, const char *path, tr_error *err)
{
    if (!r->an && tr_analyzer_new(&r->an, err) != 0)
        return -1;
    tr_staged st;
    if (tr_store_stage_path(r->s, r->an, path, &st, err) != 0)
        return -1;
    tr_ingest_meta m = {.origin = "recovered by fsck"};
    tr_ingest_result res;
    return tr_store_commit(r->s, &st, &m, 1, &res, err);
}

static void check_blob(fsck_run *r, const char *dir, const char *name)
{
    char *path = tr_xasprintf("%s/%s", dir, name);
    size_t dn = strlen(dir);
    /* samples/ab/cd/<sha256>: the two levels must match the name. */
    bool well_placed = is_hex64(name) && dn >= 6 && strncmp(dir + dn - 5, name, 2) == 0 &&
                       strncmp(dir + dn - 2, name + 2, 2) == 0;
    r->rep->blobs_checked++;
    if (well_placed) {
        int known = store_has_sha256(r->s, name);
        if (known != 0) {
            free(path);
            return;
        }
        char got[TR_SHA256_HEX];
        uint64_t size;
        if (hash_file(path, got, &size) == 0 && strcmp(got, name) == 0) {
            r->rep->unreferenced++;
            const char *action = NULL;
            tr_error e;
            if (r->repair) {
                if (adopt_blob(r, path, &e) == 0) {
                    action = "adopted as a sample";
                    r->rep->repaired++;
                } else {
                    action = "could not be adopted";
                }
            }
            report(r, TR_FSCK_UNREFERENCED, path, action);
            free(path);
            return;
        }
    }
    r->rep->stray++;
    if (r->repair && unlink(path) == 0) {
        r->rep->repaired++;
        report(r, TR_FSCK_STRAY_FILE, path, "deleted");
    } else {
        report(r, TR_FSCK_STRAY_FILE, path, NULL);
    }
    free(path);
}

static void walk(fsck_run *r, const char *dir, int depth)
{
    char **names = NULL;
    size_t n = 0;
    if (tr_list_dir(dir, &names, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        char *p = tr_xasprintf("%s/%s", dir, names[i]);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode) && depth < 2)
            walk(r, p, depth + 1);
        else
            check_blob(r, dir, names[i]);
        free(p);
        free(names[i]);
    }
    free(names);
}

static void check_tmp(fsck_run *r)
{
    char *tmp = tr_xasprintf("%s/tmp", tr_store_dir(r->s));
    DIR *d = opendir(tmp);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char *end = NULL;
            long pid = strtol(e->d_name, &end, 10);
            if (end != e->d_name && *end == '-' && pid > 0 && kill((pid_t)pid, 0) == 0)
                continue; /* a live writer's file */
            char *p = tr_xasprintf("%s/%s", tmp, e->d_name);
            r->rep->stray++;
            if (r->repair && unlink(p) == 0) {
                r->rep->repaired++;
                report(r, TR_FSCK_STRAY_FILE, p, "deleted");
            } else {
                report(r, TR_FSCK_STRAY_FILE, p, NULL);
            }
            free(p);
        }
        closedir(d);
    }
    free(tmp);
}

int tr_store_fsck(tr_store *s, bool repair, tr_fsck_cb cb, void *arg, tr_fsck_report *rep,
                  tr_error *err)
{
    memset(rep, 0, sizeof *rep);
    fsck_run r = {s, repair, cb, arg, rep, NULL};
    int rc = check_rows(&r, err);
    if (rc == 0) {
        char *samples = tr_xasprintf("%s/samples", tr_store_dir(s));
        walk(&r, samples, 0);
        free(samples);
        check_tmp(&r);
    }
    tr_analyzer_free(r.an);
    return rc;
}
