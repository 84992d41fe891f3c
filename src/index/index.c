/* The index: manifest, snapshots, writer, deletes, compaction.
 * Query evaluation lives in eval.c. Rules are in index.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index/index_private.h"

#define MANIFEST "MANIFEST"
#define MANIFEST_TMP "MANIFEST.tmp"
/* Writer memory: a page pool of two chunks of 4-byte entries (pairs plus
 * per-bucket doc markers), ~330 MiB at 40M, plus the segment directory being
 * built (~50 MiB for a full chunk) and per-thread sort buffers. */
#define DEFAULT_CHUNK_PAIRS ((size_t)40 << 20)

/* ---- manifest --------------------------------------------------------------- */

typedef struct mstate {
    char **segs;
    size_t nseg;
    uint32_t *tombs;          /* sorted, distinct */
    size_t ntomb;
} mstate;

static void mstate_free(mstate *m)
{
    for (size_t i = 0; i < m->nseg; i++)
        free(m->segs[i]);
    free(m->segs);
    free(m->tombs);
    memset(m, 0, sizeof *m);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static size_t sort_unique_u32(uint32_t *v, size_t n)
{
    if (n < 2)
        return n;
    qsort(v, n, sizeof *v, cmp_u32);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (v[i] != v[k - 1])
            v[k++] = v[i];
    return k;
}

bool tr_ix_u32_in(const uint32_t *v, size_t n, uint32_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else if (v[mid] > x)
            hi = mid;
        else
            return true;
    }
    return false;
}

static bool valid_seg_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 9 || n > 200 || strncmp(s, "seg-", 4) != 0 || strcmp(s + n - 4, ".tsg") != 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] <= ' ')
            return false;
    return true;
}

/* Parses MANIFEST text; a missing file is an empty index. */
static int manifest_parse(const char *path, const char *text, size_t len, mstate *m, tr_error *err)
{
    memset(m, 0, sizeof *m);
    size_t segcap = 0, tombcap = 0;
    bool header = false, end = false;
    const char *p = text, *e = text + len;
    while (p < e) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        if (!nl)
            break;   /* a line without newline: truncated, caught by the "end" check */
        size_t l = (size_t)(nl - p);
        char line[256];
        if (l >= sizeof line)
            goto bad;
        memcpy(line, p, l);
        line[l] = '\0';
        p = nl + 1;
        if (!header) {
            if (strcmp(line, "trawl-index 1") != 0)
                goto bad;
            header = true;
        } else if (strncmp(line, "seg ", 4) == 0 && valid_seg_name(line + 4)) {
            if (m->nseg == segcap) {
                segcap = segcap ? 2 * segcap : 16;
                m->segs = tr_xrealloc(m->segs, segcap * sizeof *m->segs);
            }
            m->segs[m->nseg++] = tr_xstrdup(line + 4);
        } else if (strncmp(line, "tomb ", 5) == 0) {
            char *endp;
            errno = 0;
            unsigned long long v = strtoull(line + 5, &endp, 10);
            if (errno || *endp || v > UINT32_MAX)
                goto bad;
            if (m->ntomb == tombcap) {
                tombcap = tombcap ? 2 * tombcap : 64;
                m->tombs = tr_xrealloc(m->tombs, tombcap * sizeof *m->tombs);
            }
            m->tombs[m->ntomb++] = (uint32_t)v;
        } else if (strcmp(line, "end") == 0) {
            end = true;
            break;
        } else {
            goto bad;
        }
    }
    if (!end)
        goto bad;
    m->ntomb = sort_unique_u32(m->tombs, m->ntomb);
    return 0;
bad:
    mstate_free(m);
    return tr_fail(err, "index manifest %s is malformed", path);
}

static int manifest_read(tr_index *ix, mstate *m, struct stat *st, tr_error *err)
{
    char *path = tr_xasprintf("%s/" MANIFEST, ix->dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = 0;
        if (errno == ENOENT) {
            memset(m, 0, sizeof *m);
            if (st)
                memset(st, 0, sizeof *st);
        } else {
            rc = tr_fail_errno(err, "cannot open %s", path);
        }
        free(path);
        return rc;
    }
    struct stat s;
    tr_buf b = {0};
    int rc = -1;
    if (fstat(fd, &s) < 0) {
        tr_fail_errno(err, "cannot stat %s", path);
        goto out;
    }
    for (;;) {
        char chunk[65536];
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            tr_fail_errno(err, "cannot read %s", path);
            goto out;
        }
        if (r == 0)
            break;
        tr_buf_append(&b, chunk, (size_t)r);
    }
    rc = manifest_parse(path, b.data ? b.data : "", b.len, m, err);
    if (rc == 0 && st)
        *st = s;
out:
    close(fd);
    tr_buf_free(&b);
    free(path);
    return rc;
}

static int manifest_write(tr_index *ix, const mstate *m, tr_error *err)
{
    tr_buf b = {0};
    tr_buf_printf(&b, "trawl-index 1\n");
    for (size_t i = 0; i < m->nseg; i++)
        tr_buf_printf(&b, "seg %s\n", m->segs[i]);
    for (size_t i = 0; i < m->ntomb; i++)
        tr_buf_printf(&b, "tomb %u\n", m->tombs[i]);
    tr_buf_printf(&b, "end\n");
    char *tmp = tr_xasprintf("%s/" MANIFEST_TMP, ix->dir);
    char *dst = tr_xasprintf("%s/" MANIFEST, ix->dir);
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        tr_fail_errno(err, "cannot create %s", tmp);
        goto out;
    }
    if (tr_write_all(fd, b.data, b.len) < 0 || fsync(fd) < 0) {
        tr_fail_errno(err, "cannot write %s", tmp);
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd) < 0 || rename(tmp, dst) < 0) {
        tr_fail_errno(err, "cannot publish %s", dst);
        unlink(tmp);
        goto out;
    }
    rc = tr_fsync_path(ix->dir, err);
out:
    tr_buf_free(&b);
    free(tmp);
    free(dst);
    return rc;
}

/* ---- locks ------------------------------------------------------------------ */

/* A fresh open file description per holder: flock locks belong to the
 * description, so two threads of one process exclude each other too. */
static int lock_open(tr_index *ix, const char *name, int op, tr_error *err)
{
    char *path = tr_xasprintf("%s/%s", ix->dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        tr_fail_errno(err, "cannot open %s", path);
        free(path);
        return -1;
    }
    int rc;
    while ((rc = flock(fd, op)) < 0 && errno == EINTR) {
    }
    if (rc < 0) {
        if (errno == EWOULDBLOCK)
            tr_fail(err, "%s is held by another process", path);
        else
            tr_fail_errno(err, "cannot lock %s", path);
        close(fd);
        free(path);
        return -1;
    }
    free(path);
    return fd;
}

static void lock_close(int fd)
{
    if (fd >= 0)
        close(fd);   /* closing the description releases the flock */
}

/* Read-modify-write of the manifest under manifest.lock. */
typedef struct publish_req {
    char **add;
    size_t nadd;
    char **remove;
    size_t nremove;
    const uint32_t *add_tomb;      /* NULL or one id */
    const uint32_t *drop_tombs;    /* sorted */
    size_t ndrop;
    const uint32_t *new_ids;       /* sorted ids being added: none may be tombstoned */
    size_t nnew;
} publish_req;

static int publish(tr_index *ix, const publish_req *r, tr_error *err)
{
    int lfd = lock_open(ix, "manifest.lock", LOCK_EX, err);
    if (lfd < 0)
        return -1;
    mstate m;
    int rc = manifest_read(ix, &m, NULL, err);
    if (rc < 0) {
        lock_close(lfd);
        return -1;
    }
    /* A tombstone names an id, not a segment: re-adding a deleted id would be
     * hidden by its old tombstone. Refuse loudly instead of losing the doc. */
    for (size_t i = 0; i < m.ntomb; i++)
        if (tr_ix_u32_in(r->new_ids, r->nnew, m.tombs[i])) {
            tr_fail(err, "index: document id %u was deleted before and cannot be indexed again",
                    m.tombs[i]);
            mstate_free(&m);
            lock_close(lfd);
            return -1;
        }
    mstate n = {0};
    n.segs = tr_xcalloc(m.nseg + r->nadd + 1, sizeof *n.segs);
    for (size_t i = 0; i < m.nseg; i++) {
        bool gone = false;
        for (size_t j = 0; j < r->nremove; j++)
            if (strcmp(m.segs[i], r->remove[j]) == 0)
                gone = true;
        if (!gone)
            n.segs[n.nseg++] = tr_xstrdup(m.segs[i]);
    }
    for (size_t j = 0; j < r->nadd; j++)
        n.segs[n.nseg++] = tr_xstrdup(r->add[j]);
    n.tombs = tr_xmalloc((m.ntomb + 1) * sizeof *n.tombs);
    for (size_t i = 0; i < m.ntomb; i++)
        if (!tr_ix_u32_in(r->drop_tombs, r->ndrop, m.tombs[i]))
            n.tombs[n.ntomb++] = m.tombs[i];
    if (r->add_tomb)
        n.tombs[n.ntomb++] = *r->add_tomb;
    n.ntomb = sort_unique_u32(n.tombs, n.ntomb);
    rc = manifest_write(ix, &n, err);
    mstate_free(&m);
    mstate_free(&n);
    lock_close(lfd);
    return rc;
}

/* ---- snapshots ---------------------------------------------------------------- */

void tr_ix_snap_unref(tr_snap *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (size_t i = 0; i < s->nseg; i++)
        tr_seg_unref(s->seg[i]);
    free(s->seg);
    free(s->tombs);
    free(s);
}

static bool same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Builds a snapshot from the manifest on disk, reusing open segments. A
 * segment may vanish between reading the manifest and opening it (a
 * compaction published and unlinked it): re-read and retry. Caller holds mu. */
static int reload_locked(tr_index *ix, tr_error *err)
{
    for (int attempt = 0;; attempt++) {
        mstate m;
        struct stat st;
        if (manifest_read(ix, &m, &st, err) < 0)
            return -1;
        tr_snap *s = tr_xcalloc(1, sizeof *s);
        atomic_init(&s->refs, 1);
        s->seg = tr_xcalloc(m.nseg + 1, sizeof *s->seg);
        int failed = 0;
        for (size_t i = 0; i < m.nseg && !failed; i++) {
            tr_seg *found = NULL;
            for (size_t j = 0; ix->cur && j < ix->cur->nseg; j++)
                if (strcmp(ix->cur->seg[j]->name, m.segs[i]) == 0)
                    found = ix->cur->seg[j];
            if (found) {
                tr_seg_ref(found);
            } else if (tr_seg_open(ix->dir, m.segs[i], &found, err) < 0) {
                failed = 1;
                break;
            }
            s->seg[s->nseg++] = found;
        }
        s->tombs = m.tombs;
        s->ntombs = m.ntomb;
        m.tombs = NULL;
        mstate_free(&m);
        if (failed) {
            tr_ix_snap_unref(s);
            if (attempt < 20)
                continue;
            return -1;
        }
        tr_ix_snap_unref(ix->cur);
        ix->cur = s;
        ix->cur_stat = st;
        return 0;
    }
}

int tr_ix_snap_get(tr_index *ix, tr_snap **out, tr_error *err)
{
    char *path = tr_xasprintf("%s/" MANIFEST, ix->dir);
    struct stat st;
    bool have = stat(path, &st) == 0;
    free(path);
    if (!have)
        memset(&st, 0, sizeof st);
    pthread_mutex_lock(&ix->mu);
    if (!ix->cur || !same_stat(&st, &ix->cur_stat)) {
        if (reload_locked(ix, err) < 0) {
            pthread_mutex_unlock(&ix->mu);
            return -1;
        }
    }
    atomic_fetch_add(&ix->cur->refs, 1);
    *out = ix->cur;
    pthread_mutex_unlock(&ix->mu);
    return 0;
}

/* ---- open / recovery -------------------------------------------------------- */

/* Deletes temp files and segment files no manifest names. Only when no writer
 * or compaction is alive anywhere (active.lock free), so it cannot delete a
 * file someone is about to publish. */
static int recover(tr_index *ix, tr_error *err)
{
    tr_error e2;
    int afd = lock_open(ix, "active.lock", LOCK_EX | LOCK_NB, &e2);
    if (afd < 0)
        return 0;   /* someone is writing: leave the sweep to a later open */
    int mfd = lock_open(ix, "manifest.lock", LOCK_EX, err);
    if (mfd < 0) {
        lock_close(afd);
        return -1;
    }
    mstate m;
    int rc = manifest_read(ix, &m, NULL, err);
    if (rc == 0) {
        DIR *d = opendir(ix->dir);
        if (!d) {
            rc = tr_fail_errno(err, "cannot list %s", ix->dir);
        } else {
            struct dirent *de;
            int removed = 0;
            while ((de = readdir(d)) != NULL) {
                const char *nm = de->d_name;
                size_t l = strlen(nm);
                bool orphan = false;
                if (l > 4 && strcmp(nm + l - 4, ".tmp") == 0) {
                    orphan = true;
                } else if (valid_seg_name(nm)) {
                    orphan = true;
                    for (size_t i = 0; i < m.nseg; i++)
                        if (strcmp(m.segs[i], nm) == 0)
                            orphan = false;
                }
                if (orphan) {
                    char *p = tr_xasprintf("%s/%s", ix->dir, nm);
                    if (unlink(p) == 0)
                        removed++;
                    free(p);
                }
            }
            closedir(d);
            if (removed) {
                tr_log(TR_LOG_INFO, "index: recovery removed %d unpublished file(s)", removed);
                rc = tr_fsync_path(ix->dir, err);
            }
        }
        mstate_free(&m);
    }
    lock_close(mfd);
    lock_close(afd);
    return rc;
}

int tr_index_open_opts(const char *dir, const tr_index_opts *opts, tr_index **out, tr_error *err)
{
    if (tr_mkdir_p(dir, 0755, err) < 0)
        return -1;
    tr_index *ix = tr_xcalloc(1, sizeof *ix);
    ix->writer_threads = -1;
    ix->dir = tr_xstrdup(dir);
    if (opts)
        ix->opts = *opts;
    if (!ix->opts.kinds)
        ix->opts.kinds = TR_KINDS_DEFAULT;
    ix->opts.kinds &= (1u << TR_GRAM_KINDS) - 1;
    if (!ix->opts.chunk_pairs)
        ix->opts.chunk_pairs = DEFAULT_CHUNK_PAIRS;
    if (!ix->opts.window_budget)
        ix->opts.window_budget = TR_INDEX_WINDOW_KEYS;
    if (!ix->opts.leaf_budget)
        ix->opts.leaf_budget = TR_INDEX_LEAF_KEYS;
    pthread_mutex_init(&ix->mu, NULL);
    tr_snap *s;
    if (recover(ix, err) < 0 || tr_ix_snap_get(ix, &s, err) < 0) {
        tr_index_close(ix);
        return -1;
    }
    tr_ix_snap_unref(s);
    *out = ix;
    return 0;
}

int tr_index_open(const char *dir, tr_index **out, tr_error *err)
{
    return tr_index_open_opts(dir, NULL, out, err);
}

void tr_index_close(tr_index *ix)
{
    if (!ix)
        return;
    tr_ix_snap_unref(ix->cur);
    pthread_mutex_destroy(&ix->mu);
    free(ix->dir);
    free(ix);
}

/* ---- names ------------------------------------------------------------------ */

static atomic_uint name_counter;

static char *new_seg_name(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned c = atomic_fetch_add(&name_counter, 1);
    return tr_xasprintf("seg-%016llx-%d-%u.tsg",
                        (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec,
                        (int)getpid(), c);
}

/* ---- writer ------------------------------------------------------------------ */

/* One writer uses every core and keeps documents in one ordinal sequence:
 *  - The caller thread extracts each document's distinct keys (tr_grams_feed
 *    into a per-doc bitmap, in cache-sized slices) and appends them straight
 *    into per-bucket streams of the current chunk: bucket = key >> 16, entry
 *    = the low 16 key bits, preceded in a bucket by a marker (MARK | doc
 *    ordinal) whenever the document changes. A chunk is thus partitioned by
 *    key as it fills: no pass over the whole chunk to partition it, and ~4
 *    bytes per (gram, doc) pair.
 *  - A full chunk is queued; each non-empty bucket is a task: counting-sort
 *    the bucket by key (ordinals stay increasing within a key), give its
 *    pages back, encode its lists into a private buffer. Worker threads
 *    (cores - 1) run tasks and append finished buckets to the chunk's
 *    segment file in key order; the caller runs tasks too whenever it would
 *    otherwise wait (page pool empty, commit).
 *  - Memory: pages come from a pool sized for two chunks (one filling, one
 *    flushing) plus partly filled pages; when it is empty the caller helps
 *    the flush until pages come back. */
#define PG_ENTRIES 4096                 /* u32 entries per page: 16 KiB */
#define BUCKET_SHIFT 16
#define BUCKET_KEYS ((size_t)1 << BUCKET_SHIFT)
#define NBUCKET ((size_t)TR_KEY_SPACE >> BUCKET_SHIFT)
#define MARK 0x80000000u
#define MAX_WORKERS 3
/* A doc's new keys are kept to clear its bitmap bits; past this many, the
 * bitmap of each kind is cleared whole instead (2 MiB memset per kind, about
 * the cost of this many scattered stores). */
#define KEEP_KEYS ((size_t)1 << 17)
/* Buckets with fewer entries sort (key, ord) pairs instead of walking a
 * 64K-entry counting table (sparse kinds, small chunks). */
#define SPARSE_BUCKET ((size_t)4096)

typedef struct page {
    struct page *next;
    uint32_t n;
    uint32_t e[PG_ENTRIES];
} page;

typedef struct bucket {
    page *head, *tail;
    uint32_t *wp, *we;         /* write position in tail */
    uint32_t last;             /* ordinal of the last marker written */
} bucket;

typedef struct bres {          /* one encoded bucket */
    tr_buf lists;
    tr_segb_rec *recs;
    size_t nrecs, rcap;
} bres;

enum { B_EMPTY = 0, B_PENDING, B_RUNNING, B_DONE, B_APPENDED };

typedef struct wchunk {
    bucket b[NBUCKET];
    uint32_t *docs;
    size_t ndocs, dcap, nent;
    /* Once queued, guarded by the writer's mu (pages of a bucket belong to
     * the thread running its task). */
    struct wchunk *next;
    tr_segb *segb;
    char *name;
    size_t next_task, next_append;
    bool appending;
    unsigned char state[NBUCKET];
    bres *res[NBUCKET];
} wchunk;

typedef struct wscratch {
    uint32_t *cnt;             /* BUCKET_KEYS + 1: the last slot counts markers */
    uint32_t *ords;
    size_t ocap;
    uint64_t *pairs;
    size_t pcap;
} wscratch;

struct tr_index_writer;
typedef struct worker {
    struct tr_index_writer *w;
    wscratch sc;
} worker;

struct tr_index_writer {
    tr_index *ix;
    int active_fd;
    uint32_t kinds;
    size_t chunk_pairs;
    uint64_t *bits;            /* per-doc dedup bitmap, TR_KEY_SPACE bits */
    uint32_t *keys;            /* the current doc's new keys */
    size_t kcap;
    wchunk *cur;               /* filling: the caller's alone */
    wscratch sc;                /* the caller's, when it helps */
    uint32_t *ids;             /* every id added, for the reuse check at publish */
    size_t nids, idcap;
    /* Shared with the workers, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wchunk *qhead, *qtail;     /* cut chunks, oldest first, until their segment is finished */
    size_t inflight;
    page *free_pages;
    size_t npages, max_pages;
    bool stop, discard;        /* discard: abort, or a flush failed */
    int rc;
    tr_error err;
    char **names;              /* finished segments (files are name.tmp) */
    size_t nnames;
    int nworkers;
    pthread_t th[MAX_WORKERS];
    worker wk[MAX_WORKERS];
};

static void scratch_free(wscratch *s)
{
    free(s->cnt);
    free(s->ords);
    free(s->pairs);
    memset(s, 0, sizeof *s);
}

static void bres_free(bres *r)
{
    if (!r)
        return;
    tr_buf_free(&r->lists);
    free(r->recs);
    free(r);
}

/* Caller holds mu. */
static void pages_put(tr_index_writer *w, page *p)
{
    while (p) {
        page *next = p->next;
        p->next = w->free_pages;
        w->free_pages = p;
        p = next;
    }
}


static void bres_add(bres *r, uint32_t key, const uint32_t *ords, size_t n)
{
    if (r->nrecs == r->rcap) {
        r->rcap = r->rcap ? 2 * r->rcap : 256;
        r->recs = tr_xrealloc(r->recs, r->rcap * sizeof *r->recs);
    }
    size_t before = r->lists.len;
    if (n <= 2) {
        /* Most lists of a chunk: one or two docs, where varint is always
         * the smallest codec (a bitmap costs a count byte and a base). */
        if (r->lists.len + 10 > r->lists.cap) {
            r->lists.cap = 2 * r->lists.cap + 16;
            r->lists.data = tr_xrealloc(r->lists.data, r->lists.cap);
        }
        unsigned char *p = (unsigned char *)r->lists.data + r->lists.len;
        size_t k = tr_varint_put(p, ords[0]);
        if (n == 2)
            k += tr_varint_put(p + k, ords[1] - ords[0]);
        r->lists.len += k;
        r->recs[r->nrecs++] = (tr_segb_rec){.key = key, .n = (uint32_t)n, .len = (uint32_t)k,
                                            .codec = TR_CODEC_VARINT};
        return;
    }
    int codec = tr_plist_encode(ords, n, TR_CODEC_AUTO, &r->lists);
    r->recs[r->nrecs++] = (tr_segb_rec){.key = key, .n = (uint32_t)n,
                                        .len = (uint32_t)(r->lists.len - before), .codec = codec};
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* One bucket: sort by key, hand the pages back, encode. NULL when discarding. */
static bres *run_task(tr_index_writer *w, wchunk *c, size_t bk, wscratch *sc, bool discard)
{
    page *head = c->b[bk].head;
    c->b[bk].head = c->b[bk].tail = NULL;
    size_t tot = 0;
    for (page *p = head; p; p = p->next)
        tot += p->n;
    bres *r = NULL;
    if (discard || tot == 0) {
        pthread_mutex_lock(&w->mu);
        pages_put(w, head);
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        return NULL;
    }
    r = tr_xcalloc(1, sizeof *r);
    /* ~1.7 bytes per posting on the corpus: reserve so the buffer rarely moves. */
    r->lists.cap = tot * 2 + 256;
    r->lists.data = tr_xmalloc(r->lists.cap);
    r->rcap = tot < BUCKET_KEYS ? tot : BUCKET_KEYS;
    r->recs = tr_xmalloc(r->rcap * sizeof *r->recs);
    uint32_t base = (uint32_t)(bk << BUCKET_SHIFT);
    if (sc->ocap < tot) {
        free(sc->ords);
        sc->ocap = tot + tot / 4;
        sc->ords = tr_xmalloc(sc->ocap * sizeof *sc->ords);
    }
    uint32_t *ords = sc->ords;
    if (tot < SPARSE_BUCKET) {
        if (sc->pcap < tot) {
            free(sc->pairs);
            sc->pcap = SPARSE_BUCKET;
            sc->pairs = tr_xmalloc(sc->pcap * sizeof *sc->pairs);
        }
        size_t m = 0;
        uint32_t ord = 0;
        for (page *p = head; p; p = p->next)
            for (uint32_t i = 0; i < p->n; i++) {
                uint32_t e = p->e[i];
                if (e & MARK)
                    ord = e & ~MARK;
                else
                    sc->pairs[m++] = ((uint64_t)e << 32) | ord;
            }
        pthread_mutex_lock(&w->mu);
        pages_put(w, head);
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        qsort(sc->pairs, m, sizeof *sc->pairs, cmp_u64);
        size_t i = 0;
        while (i < m) {
            uint32_t key = (uint32_t)(sc->pairs[i] >> 32);
            size_t n = 0;
            while (i < m && (uint32_t)(sc->pairs[i] >> 32) == key)
                ords[n++] = (uint32_t)sc->pairs[i++];
            bres_add(r, base | key, ords, n);
        }
        return r;
    }
    if (!sc->cnt)
        sc->cnt = tr_xmalloc((BUCKET_KEYS + 1) * sizeof *sc->cnt);
    uint32_t *cnt = sc->cnt;
    memset(cnt, 0, (BUCKET_KEYS + 1) * sizeof *cnt);
    /* Markers count under the extra slot, so they sort after every key and
     * the scatter below needs no branch on them. */
    for (page *p = head; p; p = p->next)
        for (uint32_t i = 0; i < p->n; i++) {
            uint32_t e = p->e[i];
            cnt[(e & MARK) ? BUCKET_KEYS : e]++;
        }
    uint32_t sum = 0;
    for (size_t j = 0; j <= BUCKET_KEYS; j++) {
        uint32_t x = cnt[j];
        cnt[j] = sum;
        sum += x;
    }
    uint32_t ord = 0;
    for (page *p = head; p; p = p->next)
        for (uint32_t i = 0; i < p->n; i++) {
            uint32_t e = p->e[i];
            bool mk = (e & MARK) != 0;
            ord = mk ? (e & ~MARK) : ord;
            ords[cnt[mk ? BUCKET_KEYS : e]++] = ord;
        }
    pthread_mutex_lock(&w->mu);
    pages_put(w, head);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    /* cnt[j] is now the end of key j. */
    uint32_t start = 0;
    for (size_t j = 0; j < BUCKET_KEYS; j++) {
        uint32_t end = cnt[j];
        if (end > start)
            bres_add(r, base | (uint32_t)j, ords + start, end - start);
        start = end;
    }
    return r;
}

static void fail_locked(tr_index_writer *w, const tr_error *e)
{
    if (w->rc == 0) {
        w->rc = -1;
        w->err = *e;
    }
    w->discard = true;
}

/* Appends the head chunk's finished buckets in key order and finishes its
 * segment after the last. Caller holds mu; returns whether it did anything. */
static bool try_append(tr_index_writer *w)
{
    wchunk *c = w->qhead;
    if (!c || c->appending)
        return false;
    if (c->next_append < NBUCKET && c->state[c->next_append] != B_DONE &&
        c->state[c->next_append] != B_EMPTY)
        return false;
    c->appending = true;
    while (c->next_append < NBUCKET &&
           (c->state[c->next_append] == B_DONE || c->state[c->next_append] == B_EMPTY)) {
        size_t b = c->next_append++;
        bres *r = c->res[b];
        c->res[b] = NULL;
        c->state[b] = B_APPENDED;
        if (!r)
            continue;
        bool skip = w->discard || !c->segb;
        pthread_mutex_unlock(&w->mu);
        tr_error e;
        int rc = skip ? 0 : tr_segb_add_encoded(c->segb, r->recs, r->nrecs,
                                                (const unsigned char *)r->lists.data, r->lists.len, &e);
        bres_free(r);
        pthread_mutex_lock(&w->mu);
        if (rc < 0)
            fail_locked(w, &e);
    }
    if (c->next_append < NBUCKET) {
        c->appending = false;
        return true;
    }
    /* Every bucket is in the file: finish it outside the lock. */
    w->qhead = c->next;
    if (!w->qhead)
        w->qtail = NULL;
    bool skip = w->discard;
    pthread_mutex_unlock(&w->mu);
    tr_error e;
    int rc = 0;
    if (skip)
        tr_segb_abort(c->segb);
    else
        rc = tr_segb_finish(c->segb, &e);
    c->segb = NULL;
    pthread_mutex_lock(&w->mu);
    if (rc < 0) {
        fail_locked(w, &e);
    } else if (!skip) {
        w->names = tr_xrealloc(w->names, (w->nnames + 1) * sizeof *w->names);
        w->names[w->nnames++] = c->name;
        c->name = NULL;
    }
    free(c->name);
    free(c->docs);
    free(c);
    w->inflight--;
    pthread_cond_broadcast(&w->cv);
    return true;
}

/* Runs one task of the oldest chunk that has one. Caller holds mu. */
static bool try_task(tr_index_writer *w, wscratch *sc)
{
    for (wchunk *c = w->qhead; c; c = c->next) {
        while (c->next_task < NBUCKET && c->state[c->next_task] != B_PENDING)
            c->next_task++;
        if (c->next_task == NBUCKET)
            continue;
        size_t b = c->next_task++;
        c->state[b] = B_RUNNING;
        bool discard = w->discard;
        pthread_mutex_unlock(&w->mu);
        bres *r = run_task(w, c, b, sc, discard);
        pthread_mutex_lock(&w->mu);
        c->res[b] = r;
        c->state[b] = B_DONE;
        pthread_cond_broadcast(&w->cv);
        return true;
    }
    return false;
}

/* One unit of flush work; appending is the workers' (the caller's only
 * when there are none). Caller holds mu. */
static bool step(tr_index_writer *w, wscratch *sc, bool may_append)
{
    if (may_append && try_append(w))
        return true;
    return try_task(w, sc);
}

static void *worker_main(void *arg)
{
    worker *k = arg;
    tr_index_writer *w = k->w;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        if (step(w, &k->sc, true))
            continue;
        if (w->stop && !w->qhead)
            break;
        pthread_cond_wait(&w->cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Waits (helping) until every cut chunk is a finished segment. */
static void drain(tr_index_writer *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->inflight > 0)
        if (!step(w, &w->sc, w->nworkers == 0))
            pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

static page *page_get(tr_index_writer *w)
{
    page *p = NULL;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        if (w->free_pages) {
            p = w->free_pages;
            w->free_pages = p->next;
            break;
        }
        /* Over the bound only when no flush could give pages back (one
         * document larger than a chunk). */
        if (w->npages < w->max_pages || w->inflight == 0) {
            w->npages++;
            break;
        }
        if (!step(w, &w->sc, w->nworkers == 0))
            pthread_cond_wait(&w->cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    if (!p)
        p = tr_xmalloc(sizeof *p);
    p->next = NULL;
    p->n = 0;
    return p;
}

static inline void push(tr_index_writer *w, bucket *bk, uint32_t v)
{
    if (bk->wp == bk->we) {
        page *p = page_get(w);
        if (bk->tail) {
            bk->tail->n = PG_ENTRIES;
            bk->tail->next = p;
        } else {
            bk->head = p;
        }
        bk->tail = p;
        bk->wp = p->e;
        bk->we = p->e + PG_ENTRIES;
    }
    *bk->wp++ = v;
}

static wchunk *chunk_new(void)
{
    wchunk *c = tr_xcalloc(1, sizeof *c);
    for (size_t b = 0; b < NBUCKET; b++)
        c->b[b].last = UINT32_MAX;
    return c;
}

/* Frees a chunk never queued, its pages back to the pool. */
static void chunk_drop(tr_index_writer *w, wchunk *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&w->mu);
    for (size_t b = 0; b < NBUCKET; b++)
        pages_put(w, c->b[b].head);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    free(c->docs);
    free(c);
}

static int cut(tr_index_writer *w, tr_error *err)
{
    wchunk *c = w->cur;
    if (!c || c->ndocs == 0)
        return 0;
    w->cur = NULL;
    for (size_t b = 0; b < NBUCKET; b++) {
        bucket *bk = &c->b[b];
        if (bk->tail)
            bk->tail->n = (uint32_t)(bk->wp - bk->tail->e);
        c->state[b] = bk->head ? B_PENDING : B_EMPTY;
    }
    c->name = new_seg_name();
    char *tmp = tr_xasprintf("%s/%s.tmp", w->ix->dir, c->name);
    int rc = tr_segb_begin(tmp, w->kinds, c->docs, (uint32_t)c->ndocs, &c->segb, err);
    free(tmp);
    if (rc < 0) {
        free(c->name);
        chunk_drop(w, c);
        return -1;
    }
    pthread_mutex_lock(&w->mu);
    if (w->qtail)
        w->qtail->next = c;
    else
        w->qhead = c;
    w->qtail = c;
    w->inflight++;
    pthread_cond_broadcast(&w->cv);
    if (w->nworkers == 0)   /* no threads: flush here */
        while (w->inflight > 0)
            step(w, &w->sc, true);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

void tr_index_set_writer_threads(tr_index *ix, int n)
{
    ix->writer_threads = n;
}

int tr_index_writer_begin(tr_index *ix, tr_index_writer **out, tr_error *err)
{
    int afd = lock_open(ix, "active.lock", LOCK_SH, err);
    if (afd < 0)
        return -1;
    tr_index_writer *w = tr_xcalloc(1, sizeof *w);
    w->ix = ix;
    w->active_fd = afd;
    w->kinds = ix->opts.kinds;
    w->chunk_pairs = ix->opts.chunk_pairs;
    w->bits = tr_ix_huge_alloc(TR_KEY_SPACE / 8);
    int nk = 0;
    for (int k = 0; k < TR_GRAM_KINDS; k++)
        nk += (w->kinds >> k) & 1;
    w->max_pages = 2 * (w->chunk_pairs / PG_ENTRIES + 1 + (size_t)nk * (NBUCKET / TR_GRAM_KINDS));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int want = cores <= 1 ? 0 : cores - 1 > MAX_WORKERS ? MAX_WORKERS : (int)cores - 1;
    if (ix->writer_threads >= 0)
        want = ix->writer_threads > MAX_WORKERS ? MAX_WORKERS : ix->writer_threads;
    for (int i = 0; i < want; i++) {
        w->wk[i].w = w;
        if (pthread_create(&w->th[i], NULL, worker_main, &w->wk[i]) != 0)
            break;   /* fewer threads: the caller does the rest */
        w->nworkers++;
    }
    *out = w;
    return 0;
}

static void scatter(tr_index_writer *w, wchunk *c, const uint32_t *keys, size_t n, uint32_t ord)
{
    size_t marks = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t k = keys[i];
        bucket *bk = &c->b[k >> BUCKET_SHIFT];
        if (bk->last != ord) {
            bk->last = ord;
            push(w, bk, MARK | ord);
            marks++;
        }
        push(w, bk, k & (uint32_t)(BUCKET_KEYS - 1));
    }
    c->nent += n + marks;
}

int tr_index_writer_add(tr_index_writer *w, uint32_t doc_id, const unsigned char *data, size_t len,
                        tr_error *err)
{
    pthread_mutex_lock(&w->mu);
    int frc = w->rc;
    if (frc < 0 && err)
        *err = w->err;
    pthread_mutex_unlock(&w->mu);
    if (frc < 0)
        return -1;
    if (w->cur && w->cur->ndocs >= (size_t)(MARK - 1) && cut(w, err) < 0)
        return -1;
    if (!w->cur)
        w->cur = chunk_new();
    wchunk *c = w->cur;
    uint32_t ord = (uint32_t)c->ndocs;
    if (c->ndocs == c->dcap) {
        c->dcap = c->dcap ? 2 * c->dcap : 1024;
        c->docs = tr_xrealloc(c->docs, c->dcap * sizeof *c->docs);
    }
    c->docs[c->ndocs++] = doc_id;
    if (w->nids == w->idcap) {
        w->idcap = w->idcap ? 2 * w->idcap : 1024;
        w->ids = tr_xrealloc(w->ids, w->idcap * sizeof *w->ids);
    }
    w->ids[w->nids++] = doc_id;
    if (!w->keys) {
        w->kcap = KEEP_KEYS + TR_GRAM_SLICE_KEYS;
        w->keys = tr_xmalloc(w->kcap * sizeof *w->keys);
    }
    tr_gram_cursor gc;
    tr_gram_cursor_init(&gc, w->kinds);
    size_t nk = 0;
    bool whole = false;
    while (gc.pos < len) {
        size_t to = len - gc.pos > TR_GRAM_SLICE ? gc.pos + TR_GRAM_SLICE : len;
        size_t n = tr_grams_feed(&gc, data, len, to, w->bits, w->keys + nk);
        scatter(w, c, w->keys + nk, n, ord);
        nk += n;
        if (nk > KEEP_KEYS) {
            whole = true;
            nk = 0;
        }
    }
    if (whole) {
        for (int k = 0; k < TR_GRAM_KINDS; k++)
            if (w->kinds & TR_KIND_BIT(k))
                memset(w->bits + (((size_t)k << 24) >> 6), 0, ((size_t)1 << 24) / 8);
    } else {
        for (size_t i = 0; i < nk; i++)
            w->bits[w->keys[i] >> 6] = 0;
    }
    if (c->nent >= w->chunk_pairs)
        return cut(w, err);
    return 0;
}

static void writer_free(tr_index_writer *w, bool unlink_files)
{
    pthread_mutex_lock(&w->mu);
    if (unlink_files)
        w->discard = true;
    pthread_mutex_unlock(&w->mu);
    drain(w);
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->nworkers; i++) {
        pthread_join(w->th[i], NULL);
        scratch_free(&w->wk[i].sc);
    }
    chunk_drop(w, w->cur);
    w->cur = NULL;
    while (w->free_pages) {
        page *p = w->free_pages;
        w->free_pages = p->next;
        free(p);
    }
    for (size_t i = 0; i < w->nnames; i++) {
        if (unlink_files) {
            char *p = tr_xasprintf("%s/%s.tmp", w->ix->dir, w->names[i]);
            char *q = tr_xasprintf("%s/%s", w->ix->dir, w->names[i]);
            unlink(p);
            unlink(q);
            free(p);
            free(q);
        }
        free(w->names[i]);
    }
    free(w->names);
    free(w->ids);
    free(w->keys);
    scratch_free(&w->sc);
    tr_ix_huge_free(w->bits, TR_KEY_SPACE / 8);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    lock_close(w->active_fd);
    free(w);
}

int tr_index_writer_commit(tr_index_writer *w, tr_error *err)
{
    int rc = cut(w, err);
    drain(w);
    if (rc == 0 && w->rc < 0) {
        if (err)
            *err = w->err;
        rc = -1;
    }
    if (rc < 0) {
        writer_free(w, true);
        return -1;
    }
    if (w->nnames == 0) {
        writer_free(w, false);
        return 0;
    }
    for (size_t i = 0; i < w->nnames; i++) {
        char *p = tr_xasprintf("%s/%s.tmp", w->ix->dir, w->names[i]);
        char *q = tr_xasprintf("%s/%s", w->ix->dir, w->names[i]);
        int rr = rename(p, q);
        free(p);
        free(q);
        if (rr < 0) {
            tr_fail_errno(err, "index: cannot rename segment %s", w->names[i]);
            writer_free(w, true);
            return -1;
        }
    }
    size_t nids = sort_unique_u32(w->ids, w->nids);
    publish_req r = {.add = w->names, .nadd = w->nnames, .new_ids = w->ids, .nnew = nids};
    if (tr_fsync_path(w->ix->dir, err) < 0 || publish(w->ix, &r, err) < 0) {
        writer_free(w, true);
        return -1;
    }
    writer_free(w, false);
    return 0;
}

void tr_index_writer_abort(tr_index_writer *w)
{
    if (w)
        writer_free(w, true);
}

/* ---- delete -------------------------------------------------------------------- */

int tr_index_delete(tr_index *ix, uint32_t doc_id, tr_error *err)
{
    publish_req r = {.add_tomb = &doc_id};
    return publish(ix, &r, err);
}

/* ---- compaction ------------------------------------------------------------------ */

int tr_index_compact(tr_index *ix, tr_error *err)
{
    int cfd = lock_open(ix, "compact.lock", LOCK_EX | LOCK_NB, err);
    if (cfd < 0)
        return tr_fail(err, "index: another compaction is running");
    int afd = lock_open(ix, "active.lock", LOCK_SH, err);
    if (afd < 0) {
        lock_close(cfd);
        return -1;
    }
    tr_snap *s = NULL;
    int rc = -1;
    uint32_t **remap = NULL, *docs = NULL, *dropped = NULL, *merged = NULL, *scratch = NULL;
    tr_seg_iter *it = NULL;
    int *live = NULL;
    size_t ndropped = 0, ndocs = 0;
    char *name = NULL, *tmp = NULL;
    tr_segb *b = NULL;
    if (tr_ix_snap_get(ix, &s, err) < 0)
        goto out;
    bool any_tomb = false;
    uint32_t kinds = (1u << TR_GRAM_KINDS) - 1;
    size_t maxdocs = 0;
    for (size_t i = 0; i < s->nseg; i++) {
        kinds &= s->seg[i]->kinds;
        if (s->seg[i]->ndocs > maxdocs)
            maxdocs = s->seg[i]->ndocs;
        for (uint32_t o = 0; o < s->seg[i]->ndocs; o++)
            if (tr_ix_u32_in(s->tombs, s->ntombs, tr_seg_doc(s->seg[i], o)))
                any_tomb = true;
    }
    if (s->nseg == 0 || (s->nseg == 1 && !any_tomb)) {
        rc = 0;
        goto out;
    }
    /* New ordinals: segment order, tombstoned docs dropped. */
    remap = tr_xcalloc(s->nseg, sizeof *remap);
    uint64_t total = 0;
    for (size_t i = 0; i < s->nseg; i++)
        total += s->seg[i]->ndocs;
    if (total >= UINT32_MAX) {
        tr_fail(err, "index: too many documents to merge into one segment");
        goto out;
    }
    docs = tr_xmalloc((total + 1) * sizeof *docs);
    dropped = tr_xmalloc((total + 1) * sizeof *dropped);
    for (size_t i = 0; i < s->nseg; i++) {
        remap[i] = tr_xmalloc(((size_t)s->seg[i]->ndocs + 1) * sizeof **remap);
        for (uint32_t o = 0; o < s->seg[i]->ndocs; o++) {
            uint32_t id = tr_seg_doc(s->seg[i], o);
            if (tr_ix_u32_in(s->tombs, s->ntombs, id)) {
                remap[i][o] = UINT32_MAX;
                dropped[ndropped++] = id;
            } else {
                remap[i][o] = (uint32_t)ndocs;
                docs[ndocs++] = id;
            }
        }
    }
    ndropped = sort_unique_u32(dropped, ndropped);
    char **old = tr_xcalloc(s->nseg, sizeof *old);
    for (size_t i = 0; i < s->nseg; i++)
        old[i] = s->seg[i]->name;
    publish_req r = {.remove = old, .nremove = s->nseg, .drop_tombs = dropped, .ndrop = ndropped};
    if (ndocs > 0) {
        name = new_seg_name();
        tmp = tr_xasprintf("%s/%s.tmp", ix->dir, name);
        if (tr_segb_begin(tmp, kinds, docs, (uint32_t)ndocs, &b, err) < 0) {
            free(old);
            goto out;
        }
        it = tr_xcalloc(s->nseg, sizeof *it);
        live = tr_xcalloc(s->nseg, sizeof *live);
        merged = tr_xmalloc((ndocs + 1) * sizeof *merged);
        scratch = tr_xmalloc((maxdocs + 1) * sizeof *scratch);
        for (size_t i = 0; i < s->nseg; i++) {
            tr_seg_iter_init(&it[i], s->seg[i]);
            live[i] = tr_seg_iter_next(&it[i]);
            if (live[i] < 0)
                goto corrupt;
        }
        /* k-way merge by key; k is the segment count, so a linear scan for the
         * minimum is cheaper than a heap for the usual handful of segments. */
        for (;;) {
            bool anyk = false;
            uint32_t key = 0;
            for (size_t i = 0; i < s->nseg; i++)
                if (live[i] == 1 && (!anyk || it[i].key < key)) {
                    key = it[i].key;
                    anyk = true;
                }
            if (!anyk)
                break;
            size_t n = 0;
            bool keep = TR_KEY_KIND(key) < TR_GRAM_KINDS && (kinds & TR_KIND_BIT(TR_KEY_KIND(key)));
            for (size_t i = 0; i < s->nseg; i++) {
                if (live[i] != 1 || it[i].key != key)
                    continue;
                if (keep) {
                    tr_plist pl;
                    if (tr_plist_open(&pl, it[i].codec, it[i].list, it[i].len) < 0 || pl.n > s->seg[i]->ndocs)
                        goto corrupt;
                    size_t k = tr_plist_decode(&pl, scratch);
                    if (k == SIZE_MAX)
                        goto corrupt;
                    for (size_t j = 0; j < k; j++) {
                        if (scratch[j] >= s->seg[i]->ndocs)
                            goto corrupt;
                        uint32_t o = remap[i][scratch[j]];
                        if (o != UINT32_MAX)
                            merged[n++] = o;
                    }
                }
                live[i] = tr_seg_iter_next(&it[i]);
                if (live[i] < 0)
                    goto corrupt;
            }
            if (n > 0 && tr_segb_add(b, key, merged, n, err) < 0)
                goto fail_b;
        }
        if (tr_segb_finish(b, err) < 0) {
            b = NULL;
            free(old);
            goto out;
        }
        b = NULL;
        char *dst = tr_xasprintf("%s/%s", ix->dir, name);
        int rr = rename(tmp, dst);
        free(dst);
        if (rr < 0) {
            tr_fail_errno(err, "index: cannot rename merged segment");
            unlink(tmp);
            free(old);
            goto out;
        }
        r.add = &name;
        r.nadd = 1;
        if (tr_fsync_path(ix->dir, err) < 0) {
            free(old);
            goto out;
        }
    }
    if (publish(ix, &r, err) < 0) {
        if (name) {
            char *dst = tr_xasprintf("%s/%s", ix->dir, name);
            unlink(dst);
            free(dst);
        }
        free(old);
        goto out;
    }
    /* Readers of other processes keep their mappings; a reader that has not
     * opened an old segment yet re-reads the manifest and retries. */
    for (size_t i = 0; i < s->nseg; i++) {
        char *p = tr_xasprintf("%s/%s", ix->dir, old[i]);
        unlink(p);
        free(p);
    }
    free(old);
    rc = 0;
    goto out;
corrupt:
    tr_fail(err, "index: a segment is corrupt; compaction stopped");
fail_b:
    free(old);
    if (b)
        tr_segb_abort(b);
    b = NULL;
out:
    if (remap)
        for (size_t i = 0; s && i < s->nseg; i++)
            free(remap[i]);
    free(remap);
    free(docs);
    free(dropped);
    free(merged);
    free(scratch);
    free(it);
    free(live);
    free(name);
    free(tmp);
    tr_ix_snap_unref(s);
    lock_close(afd);
    lock_close(cfd);
    return rc;
}

/* ---- status / verify / ids --------------------------------------------------------- */

int tr_index_get_status(tr_index *ix, tr_index_status *st, tr_error *err)
{
    tr_snap *s;
    if (tr_ix_snap_get(ix, &s, err) < 0)
        return -1;
    memset(st, 0, sizeof *st);
    st->segments = s->nseg;
    st->tombstones = s->ntombs;
    st->kinds = s->nseg ? (1u << TR_GRAM_KINDS) - 1 : 0;
    for (size_t i = 0; i < s->nseg; i++) {
        const tr_seg *g = s->seg[i];
        st->docs += g->ndocs;
        st->bytes_total += g->map.len;
        st->kinds &= g->kinds;
        for (int k = 0; k < TR_GRAM_KINDS; k++) {
            st->kind_bytes[k] += g->kind_bytes[k];
            st->kind_keys[k] += g->kind_keys[k];
            st->postings[k] += g->postings[k];
        }
    }
    tr_ix_snap_unref(s);
    return 0;
}

int tr_index_doc_ids(tr_index *ix, uint32_t **ids, size_t *n, tr_error *err)
{
    tr_snap *s;
    if (tr_ix_snap_get(ix, &s, err) < 0)
        return -1;
    size_t total = 0, k = 0;
    for (size_t i = 0; i < s->nseg; i++)
        total += s->seg[i]->ndocs;
    uint32_t *v = tr_xmalloc((total + 1) * sizeof *v);
    for (size_t i = 0; i < s->nseg; i++)
        for (uint32_t o = 0; o < s->seg[i]->ndocs; o++) {
            uint32_t id = tr_seg_doc(s->seg[i], o);
            if (!tr_ix_u32_in(s->tombs, s->ntombs, id))
                v[k++] = id;
        }
    *n = sort_unique_u32(v, k);
    *ids = v;
    tr_ix_snap_unref(s);
    return 0;
}

int tr_index_verify_doc(tr_index *ix, uint32_t doc_id, tr_index_fetch_fn fetch, void *arg,
                        tr_error *err)
{
    tr_snap *s;
    if (tr_ix_snap_get(ix, &s, err) < 0)
        return -1;
    int rc = -1;
    const tr_seg *seg = NULL;
    uint32_t ord = 0;
    for (size_t i = 0; i < s->nseg && !seg; i++) {
        int64_t o = tr_seg_find_doc(s->seg[i], doc_id);
        if (o >= 0) {
            seg = s->seg[i];
            ord = (uint32_t)o;
        }
    }
    if (!seg || tr_ix_u32_in(s->tombs, s->ntombs, doc_id)) {
        tr_fail(err, "document %u is not in the index", doc_id);
        tr_ix_snap_unref(s);
        return -1;
    }
    tr_map m = {0};
    if (fetch(arg, doc_id, &m, err) < 0) {
        tr_ix_snap_unref(s);
        return -1;
    }
    tr_gram_set gs;
    tr_gram_set_init(&gs);
    tr_grams_extract(m.data, m.len, seg->kinds, &gs);
    size_t i;
    for (i = 0; i < gs.n; i++) {
        const unsigned char *l;
        size_t len;
        int codec;
        tr_plist pl;
        tr_plist_cursor c;
        if (!tr_seg_lookup(seg, gs.keys[i], &l, &len, &codec) || tr_plist_open(&pl, codec, l, len) < 0)
            break;
        tr_plist_cursor_init(&c, &pl);
        if (!tr_plist_contains(&c, ord))
            break;
    }
    if (i < gs.n)
        tr_fail(err, "document %u: %s gram %06x missing from segment %s", doc_id,
                tr_gram_kind_name(TR_KEY_KIND(gs.keys[i])), gs.keys[i] & 0xffffff, seg->name);
    else
        rc = 0;
    tr_gram_set_free(&gs);
    tr_map_close(&m);
    tr_ix_snap_unref(s);
    return rc;
}
