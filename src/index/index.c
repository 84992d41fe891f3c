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
/* Writer memory: two chunks of 4-byte keys plus the flusher's 8-byte
 * partition buffer: 16 bytes per pair, ~640 MiB at 40M pairs. */
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
    ix->dir = tr_xstrdup(dir);
    if (opts)
        ix->opts = *opts;
    if (!ix->opts.kinds)
        ix->opts.kinds = TR_KINDS_DEFAULT;
    ix->opts.kinds &= (1u << TR_GRAM_KINDS) - 1;
    if (!ix->opts.chunk_pairs)
        ix->opts.chunk_pairs = DEFAULT_CHUNK_PAIRS;
    if (!ix->opts.window_budget)
        ix->opts.window_budget = 256;
    if (!ix->opts.leaf_budget)
        ix->opts.leaf_budget = 2048;
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

/* A chunk is the grams of a run of documents, in document order. Cutting a
 * chunk into a segment (sort by key, encode, write) runs on a second thread
 * while the caller keeps extracting into the other chunk: two cores, and
 * memory bounded by two chunks plus the sort's buffers. */
typedef struct chunk {
    uint32_t *keys;
    size_t nkeys, kcap;
    uint64_t *doc_end;         /* per doc: end of its keys */
    uint32_t *docs;
    size_t ndocs, dcap;
} chunk;

struct tr_index_writer {
    tr_index *ix;
    int active_fd;
    uint32_t kinds;
    size_t chunk_pairs;
    tr_gram_set gs;
    chunk cur;
    /* Owned by the flusher while it runs; the caller touches them only after join. */
    pthread_t th;
    bool running;
    chunk bg;
    int bg_rc;
    tr_error bg_err;
    uint64_t *part;            /* large-chunk sort buffer: (key low bits, ordinal) */
    size_t part_cap;
    char **names;              /* segments cut so far (final names; files are name.tmp) */
    size_t nnames;
    uint32_t *ids;             /* every id added, for the reuse check at publish */
    size_t nids, idcap;
};

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
    tr_gram_set_init(&w->gs);
    *out = w;
    return 0;
}

/* Stable LSD radix sort on the 26 key bits; ordinals within a key stay in
 * insertion order, which is increasing. For small chunks, where a pass over
 * the whole key space would cost more than the sort. */
static void sort_pairs(uint64_t *a, size_t n)
{
    uint64_t *tmp = tr_xmalloc((n ? n : 1) * sizeof *tmp);
    size_t *cnt = tr_xmalloc(((size_t)1 << 13) * sizeof *cnt);
    uint64_t *src = a, *dst = tmp;
    for (int pass = 0; pass < 2; pass++) {
        int shift = 32 + 13 * pass;
        memset(cnt, 0, ((size_t)1 << 13) * sizeof *cnt);
        for (size_t i = 0; i < n; i++)
            cnt[(src[i] >> shift) & 0x1fff]++;
        size_t sum = 0;
        for (size_t i = 0; i < ((size_t)1 << 13); i++) {
            size_t c = cnt[i];
            cnt[i] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[cnt[(src[i] >> shift) & 0x1fff]++] = src[i];
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    /* Two passes: the result is back in a. */
    free(tmp);
    free(cnt);
}

#define SMALL_CHUNK ((size_t)1 << 20)

static int emit_small(tr_index_writer *w, const chunk *c, tr_segb *b, tr_error *err)
{
    uint64_t *pairs = tr_xmalloc((c->nkeys + 1) * sizeof *pairs);
    size_t k = 0;
    for (size_t d = 0; d < c->ndocs; d++)
        for (; k < c->doc_end[d]; k++)
            pairs[k] = ((uint64_t)c->keys[k] << 32) | d;
    sort_pairs(pairs, c->nkeys);
    uint32_t *ords = tr_xmalloc((c->ndocs + 1) * sizeof *ords);
    int rc = 0;
    size_t i = 0;
    while (i < c->nkeys && rc == 0) {
        uint32_t key = (uint32_t)(pairs[i] >> 32);
        size_t n = 0;
        while (i < c->nkeys && (uint32_t)(pairs[i] >> 32) == key)
            ords[n++] = (uint32_t)pairs[i++];
        rc = tr_segb_add(b, key, ords, n, err);
    }
    free(ords);
    free(pairs);
    (void)w;
    return rc;
}

/* Large chunks: partition (key, doc) pairs by the key's top bits into buckets
 * of 65536 keys (sequential appends to a few hundred streams), then counting-
 * sort each bucket with a 256 KiB table that stays in L2. A single counting
 * sort over the 50M-key space was two cache misses per pair and a fifth of
 * the indexing time. Within a key, docs stay in insertion (= ordinal) order. */
#define PART_SHIFT 16
#define PART_KEYS ((size_t)1 << PART_SHIFT)
#define NPART (((size_t)TR_GRAM_KINDS << 24) >> PART_SHIFT)

static int emit_large(tr_index_writer *w, const chunk *c, tr_segb *b, tr_error *err)
{
    if (w->part_cap < c->nkeys) {
        tr_ix_huge_free(w->part, w->part_cap * sizeof *w->part);
        w->part_cap = c->nkeys;
        w->part = tr_ix_huge_alloc(w->part_cap * sizeof *w->part);
    }
    uint64_t *part = w->part;
    size_t *bstart = tr_xcalloc(NPART + 1, sizeof *bstart), *bpos = tr_xmalloc(NPART * sizeof *bpos);
    for (size_t i = 0; i < c->nkeys; i++)
        bstart[(c->keys[i] >> PART_SHIFT) + 1]++;
    size_t maxb = 0;
    for (size_t i = 0; i < NPART; i++) {
        if (bstart[i + 1] > maxb)
            maxb = bstart[i + 1];
        bstart[i + 1] += bstart[i];
        bpos[i] = bstart[i];
    }
    size_t k = 0;
    for (size_t d = 0; d < c->ndocs; d++)
        for (; k < c->doc_end[d]; k++) {
            uint32_t key = c->keys[k];
            part[bpos[key >> PART_SHIFT]++] = ((uint64_t)(key & (PART_KEYS - 1)) << 32) | d;
        }
    uint32_t *cnt = tr_xmalloc((PART_KEYS + 1) * sizeof *cnt);
    uint32_t *ords = tr_xmalloc((maxb + 1) * sizeof *ords);
    int rc = 0;
    for (size_t bk = 0; bk < NPART && rc == 0; bk++) {
        const uint64_t *p = part + bstart[bk];
        size_t n = bstart[bk + 1] - bstart[bk];
        if (n == 0)
            continue;
        memset(cnt, 0, (PART_KEYS + 1) * sizeof *cnt);
        for (size_t i = 0; i < n; i++)
            cnt[(p[i] >> 32) + 1]++;
        for (size_t i = 0; i < PART_KEYS; i++)
            cnt[i + 1] += cnt[i];
        /* cnt[j] = start of key j; scatter advances it to the end. */
        for (size_t i = 0; i < n; i++)
            ords[cnt[p[i] >> 32]++] = (uint32_t)p[i];
        uint32_t start = 0;
        for (size_t j = 0; j < PART_KEYS && rc == 0; j++) {
            uint32_t end = cnt[j];
            if (end > start)
                rc = tr_segb_add(b, (uint32_t)((bk << PART_SHIFT) | j), ords + start, end - start, err);
            start = end;
        }
    }
    free(cnt);
    free(ords);
    free(bstart);
    free(bpos);
    return rc;
}

static int flush_chunk(tr_index_writer *w, chunk *c, tr_error *err)
{
    if (c->ndocs == 0)
        return 0;
    if (c->nkeys >= UINT32_MAX)
        return tr_fail(err, "index: chunk too large");
    char *name = new_seg_name();
    char *tmp = tr_xasprintf("%s/%s.tmp", w->ix->dir, name);
    tr_segb *b;
    int rc = tr_segb_begin(tmp, w->kinds, c->docs, (uint32_t)c->ndocs, &b, err);
    if (rc == 0) {
        rc = c->nkeys < SMALL_CHUNK ? emit_small(w, c, b, err) : emit_large(w, c, b, err);
        if (rc == 0)
            rc = tr_segb_finish(b, err);
        else
            tr_segb_abort(b);
    }
    free(tmp);
    if (rc < 0) {
        free(name);
        return -1;
    }
    w->names = tr_xrealloc(w->names, (w->nnames + 1) * sizeof *w->names);
    w->names[w->nnames++] = name;
    c->nkeys = 0;
    c->ndocs = 0;
    return 0;
}

static void *flush_thread(void *arg)
{
    tr_index_writer *w = arg;
    w->bg_rc = flush_chunk(w, &w->bg, &w->bg_err);
    return NULL;
}

static int join_bg(tr_index_writer *w, tr_error *err)
{
    if (!w->running)
        return 0;
    pthread_join(w->th, NULL);
    w->running = false;
    if (w->bg_rc < 0) {
        if (err)
            *err = w->bg_err;
        return -1;
    }
    return 0;
}

static int rotate(tr_index_writer *w, tr_error *err)
{
    if (join_bg(w, err) < 0)
        return -1;
    chunk t = w->bg;
    w->bg = w->cur;
    w->cur = t;
    w->cur.nkeys = 0;
    w->cur.ndocs = 0;
    if (pthread_create(&w->th, NULL, flush_thread, w) == 0) {
        w->running = true;
        return 0;
    }
    return flush_chunk(w, &w->bg, err);   /* no thread: do it here */
}

int tr_index_writer_add(tr_index_writer *w, uint32_t doc_id, const unsigned char *data, size_t len,
                        tr_error *err)
{
    chunk *c = &w->cur;
    if (c->ndocs >= UINT32_MAX - 1)
        return tr_fail(err, "index: too many documents in one segment");
    tr_grams_extract(data, len, w->kinds, &w->gs);
    size_t nk = w->gs.n;
    if (c->nkeys + nk > w->chunk_pairs && c->ndocs > 0) {
        if (rotate(w, err) < 0) {
            tr_gram_set_clear(&w->gs);
            return -1;
        }
        c = &w->cur;
    }
    if (c->nkeys + nk > c->kcap) {
        size_t cap = c->kcap ? c->kcap : 1 << 16;
        while (cap < c->nkeys + nk)
            cap *= 2;
        if (cap > w->chunk_pairs && c->nkeys + nk <= w->chunk_pairs)
            cap = w->chunk_pairs;
        c->keys = tr_xrealloc(c->keys, cap * sizeof *c->keys);
        c->kcap = cap;
    }
    if (c->ndocs == c->dcap) {
        c->dcap = c->dcap ? 2 * c->dcap : 1024;
        c->docs = tr_xrealloc(c->docs, c->dcap * sizeof *c->docs);
        c->doc_end = tr_xrealloc(c->doc_end, c->dcap * sizeof *c->doc_end);
    }
    if (nk)
        memcpy(c->keys + c->nkeys, w->gs.keys, nk * sizeof *c->keys);
    c->nkeys += nk;
    if (w->nids == w->idcap) {
        w->idcap = w->idcap ? 2 * w->idcap : 1024;
        w->ids = tr_xrealloc(w->ids, w->idcap * sizeof *w->ids);
    }
    w->ids[w->nids++] = doc_id;
    c->docs[c->ndocs] = doc_id;
    c->doc_end[c->ndocs++] = c->nkeys;
    tr_gram_set_clear(&w->gs);
    return 0;
}

static void chunk_free(chunk *c)
{
    free(c->keys);
    free(c->doc_end);
    free(c->docs);
    memset(c, 0, sizeof *c);
}

static void writer_free(tr_index_writer *w, bool unlink_files)
{
    join_bg(w, NULL);
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
    chunk_free(&w->cur);
    chunk_free(&w->bg);
    tr_ix_huge_free(w->part, w->part_cap * sizeof *w->part);
    tr_gram_set_free(&w->gs);
    lock_close(w->active_fd);
    free(w);
}

int tr_index_writer_commit(tr_index_writer *w, tr_error *err)
{
    if (join_bg(w, err) < 0 || flush_chunk(w, &w->cur, err) < 0) {
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
        int rc = rename(p, q);
        free(p);
        free(q);
        if (rc < 0) {
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
