/* Segment files: immutable, written once by a builder, then mapped.
 *
 *   header (192 bytes, little-endian, FNV-1a checksum)
 *   docs    u32[ndocs]: global doc id of each local ordinal
 *   lists   posting lists of local ordinals, in key order (codec.c)
 *   dir     per key: varint key gap, varint (list length << 2 | codec); in blocks of 64
 *   bidx    per block: u32 first key, u32 keys in block, u64 dir off, u64 list off
 *
 * Only keys present are stored: a segment of one small file is a few KB,
 * unlike a 2^24-entry offset table. A lookup is a binary search in bidx and a
 * scan of at most 64 directory entries. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index/index_internal.h"

#define SEG_MAGIC "TRWLSEG1"
#define SEG_VERSION 1u
#define SEG_HDR 192
#define SEG_BLOCK 64
#define BIDX_ENT 24

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint32_t g32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t g64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void p32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void p64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

/* ---- reader ---------------------------------------------------------------- */

/* tr_varint_get with the one-byte case inline: a lookup decodes up to 128
 * directory varints (key gaps, list lengths), nearly all of one byte, and the
 * call was a third of a query's instructions. */
static inline size_t vget(const unsigned char *p, const unsigned char *end, uint64_t *v)
{
    if (p < end && p[0] < 0x80) {
        *v = p[0];
        return 1;
    }
    return tr_varint_get(p, end, v);
}

static bool in_file(uint64_t off, uint64_t len, uint64_t size)
{
    return off <= size && len <= size - off;
}

int tr_seg_open(const char *dir, const char *name, tr_seg **out, tr_error *err)
{
    char *path = tr_xasprintf("%s/%s", dir, name);
    tr_map m;
    if (tr_map_open(&m, path, err) < 0) {
        free(path);
        return -1;
    }
    tr_error why;
    int rc = tr_seg_from_map(&m, name, out, &why);
    if (rc < 0)
        tr_fail(err, "index segment %s: %s", path, why.msg);
    free(path);
    return rc;
}

int tr_seg_from_map(tr_map *m, const char *name, tr_seg **out, tr_error *err)
{
    tr_seg *s = tr_xcalloc(1, sizeof *s);
    s->map = *m;
    m->data = NULL;
    m->len = 0;
    const unsigned char *h = s->map.data;
    uint64_t size = s->map.len;
    if (size < SEG_HDR || memcmp(h, SEG_MAGIC, 8) != 0 || g32(h + 8) != SEG_VERSION ||
        g64(h + 184) != fnv1a(h, 184) || g64(h + 80) != size) {
        tr_fail(err, "bad header");
        goto bad;
    }
    s->kinds = g32(h + 12);
    s->ndocs = g32(h + 16);
    s->nblocks = g32(h + 20);
    s->nkeys = g64(h + 24);
    uint64_t off_docs = g64(h + 32), off_lists = g64(h + 40), off_dir = g64(h + 56),
             off_bidx = g64(h + 72);
    s->lists_len = g64(h + 48);
    s->dir_len = g64(h + 64);
    if (!in_file(off_docs, (uint64_t)s->ndocs * 4, size) || !in_file(off_lists, s->lists_len, size) ||
        !in_file(off_dir, s->dir_len, size) || !in_file(off_bidx, (uint64_t)s->nblocks * BIDX_ENT, size) ||
        s->nblocks != (s->nkeys + SEG_BLOCK - 1) / SEG_BLOCK) {
        tr_fail(err, "section out of bounds");
        goto bad;
    }
    s->docs = h + off_docs;
    s->lists = h + off_lists;
    s->dir = h + off_dir;
    s->bidx = h + off_bidx;
    for (int k = 0; k < TR_GRAM_KINDS; k++) {
        s->kind_bytes[k] = g64(h + 88 + 8 * k);
        s->kind_keys[k] = g64(h + 112 + 8 * k);
        s->postings[k] = g64(h + 136 + 8 * k);
    }
    s->docs_sorted = true;
    for (uint32_t o = 1; o < s->ndocs && s->docs_sorted; o++)
        s->docs_sorted = tr_seg_doc(s, o - 1) < tr_seg_doc(s, o);
    s->name = tr_xstrdup(name);
    atomic_init(&s->refs, 1);
    *out = s;
    return 0;
bad:
    tr_map_close(&s->map);
    free(s);
    return -1;
}

void tr_seg_ref(tr_seg *s) { atomic_fetch_add(&s->refs, 1); }

void tr_seg_unref(tr_seg *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    tr_map_close(&s->map);
    free(s->name);
    free(s);
}

int64_t tr_seg_find_doc(const tr_seg *s, uint32_t id)
{
    if (!s->docs_sorted) {
        for (uint32_t o = 0; o < s->ndocs; o++)
            if (tr_seg_doc(s, o) == id)
                return o;
        return -1;
    }
    uint32_t lo = 0, hi = s->ndocs;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint32_t v = tr_seg_doc(s, mid);
        if (v < id)
            lo = mid + 1;
        else if (v > id)
            hi = mid;
        else
            return mid;
    }
    return -1;
}

bool tr_seg_lookup(const tr_seg *s, uint32_t key, const unsigned char **list, size_t *len, int *codec)
{
    *list = NULL;
    *len = 0;
    if (s->nblocks == 0)
        return false;
    /* Last block whose first key <= key. */
    uint32_t lo = 0, hi = s->nblocks;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (g32(s->bidx + (size_t)mid * BIDX_ENT) <= key)
            lo = mid;
        else
            hi = mid;
    }
    const unsigned char *e = s->bidx + (size_t)lo * BIDX_ENT;
    uint32_t k = g32(e);
    if (k > key)
        return false;
    uint32_t nk = g32(e + 4);
    uint64_t doff = g64(e + 8), loff = g64(e + 16);
    if (doff > s->dir_len)
        return false;
    const unsigned char *dp = s->dir + doff, *dend = s->dir + s->dir_len;
    for (uint32_t i = 0; i < nk; i++) {
        uint64_t gap, l;
        size_t a = vget(dp, dend, &gap);
        if (!a)
            return false;
        dp += a;
        size_t b = vget(dp, dend, &l);
        if (!b)
            return false;
        dp += b;
        k += (uint32_t)gap;
        *codec = (int)(l & 3);
        l >>= 2;
        if (k == key) {
            if (!in_file(loff, l, s->lists_len))
                return false;
            *list = s->lists + loff;
            *len = (size_t)l;
            return true;
        }
        if (k > key)
            return false;
        loff += l;
    }
    return false;
}

void tr_seg_iter_init(tr_seg_iter *it, const tr_seg *s)
{
    memset(it, 0, sizeof *it);
    it->s = s;
    it->dp = s->dir;
    it->dend = s->dir + s->dir_len;
}

int tr_seg_iter_next(tr_seg_iter *it)
{
    const tr_seg *s = it->s;
    while (it->in_block == it->block_n) {
        if (it->block == s->nblocks)
            return 0;
        const unsigned char *e = s->bidx + (size_t)it->block * BIDX_ENT;
        it->key = g32(e);
        it->block_n = g32(e + 4);
        it->in_block = 0;
        uint64_t doff = g64(e + 8);
        it->list_off = g64(e + 16);
        if (doff > s->dir_len)
            return -1;
        it->dp = s->dir + doff;
        it->block++;
    }
    uint64_t gap, l;
    size_t a = tr_varint_get(it->dp, it->dend, &gap);
    if (!a)
        return -1;
    it->dp += a;
    size_t b = tr_varint_get(it->dp, it->dend, &l);
    if (!b)
        return -1;
    it->dp += b;
    if (it->in_block > 0 && gap == 0)
        return -1;
    it->key += (uint32_t)gap;
    it->codec = (int)(l & 3);
    l >>= 2;
    if (!in_file(it->list_off, l, s->lists_len))
        return -1;
    it->list = s->lists + it->list_off;
    it->len = (size_t)l;
    it->list_off += l;
    it->in_block++;
    return 1;
}

/* ---- builder --------------------------------------------------------------- */

struct tr_segb {
    int fd;
    char *path;
    uint32_t kinds, ndocs;
    uint64_t off_lists, lists_len;
    tr_buf stage;              /* lists waiting to be written */
    tr_buf dir, bidx;
    uint64_t nkeys;
    uint32_t prev_key, block_n;
    uint64_t kind_bytes[TR_GRAM_KINDS], kind_keys[TR_GRAM_KINDS], postings[TR_GRAM_KINDS];
};

static void segb_free(tr_segb *b)
{
    tr_buf_free(&b->stage);
    tr_buf_free(&b->dir);
    tr_buf_free(&b->bidx);
    free(b->path);
    free(b);
}

static int flush_stage(tr_segb *b, tr_error *err)
{
    if (b->stage.len && tr_write_all(b->fd, b->stage.data, b->stage.len) < 0)
        return tr_fail_errno(err, "index: writing %s", b->path);
    b->stage.len = 0;
    return 0;
}

int tr_segb_begin(const char *path, uint32_t kinds, const uint32_t *docs, uint32_t ndocs,
                  tr_segb **out, tr_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return tr_fail_errno(err, "index: creating %s", path);
    tr_segb *b = tr_xcalloc(1, sizeof *b);
    b->fd = fd;
    b->path = tr_xstrdup(path);
    b->kinds = kinds;
    b->ndocs = ndocs;
    unsigned char hdr[SEG_HDR] = {0};
    tr_buf_append(&b->stage, hdr, sizeof hdr);
    for (uint32_t i = 0; i < ndocs; i++) {
        unsigned char le[4];
        p32(le, docs[i]);
        tr_buf_append(&b->stage, le, 4);
    }
    b->off_lists = SEG_HDR + (uint64_t)ndocs * 4;
    *out = b;
    return 0;
}


/* Directory, block index and statistics for one list of enc_len bytes. */
static void add_entry(tr_segb *b, uint32_t key, int codec, size_t enc_len, size_t n)
{
    if (b->block_n == SEG_BLOCK || b->nkeys == 0) {
        unsigned char e[BIDX_ENT];
        p32(e, key);
        p32(e + 4, 0);
        p64(e + 8, b->dir.len);
        p64(e + 16, b->lists_len);
        tr_buf_append(&b->bidx, e, sizeof e);
        b->block_n = 0;
        b->prev_key = key;
    }
    /* Straight into the directory buffer: one call per key was a measurable
     * share of the writer (millions of keys per segment). */
    if (b->dir.len + 20 > b->dir.cap) {
        size_t cap = b->dir.cap ? 2 * b->dir.cap : 4096;
        b->dir.data = tr_xrealloc(b->dir.data, cap);
        b->dir.cap = cap;
    }
    unsigned char *v = (unsigned char *)b->dir.data + b->dir.len;
    size_t k = tr_varint_put(v, key - b->prev_key);
    k += tr_varint_put(v + k, ((uint64_t)enc_len << 2) | (unsigned)codec);
    b->dir.len += k;
    b->block_n++;
    p32((unsigned char *)b->bidx.data + b->bidx.len - BIDX_ENT + 4, b->block_n);
    b->prev_key = key;
    b->nkeys++;
    int kind = TR_KEY_KIND(key);
    if (kind < TR_GRAM_KINDS) {
        b->kind_bytes[kind] += enc_len + k;
        b->kind_keys[kind]++;
        b->postings[kind] += n;
    }
    b->lists_len += enc_len;
}

int tr_segb_add(tr_segb *b, uint32_t key, const uint32_t *ords, size_t n, tr_error *err)
{
    if (b->nkeys && key <= b->prev_key)
        return tr_fail(err, "index: segment keys out of order");
    /* Encode straight into the staging buffer; the list bytes are its tail. */
    size_t before = b->stage.len;
    int codec = tr_plist_encode(ords, n, TR_CODEC_AUTO, &b->stage);
    add_entry(b, key, codec, b->stage.len - before, n);
    if (b->stage.len >= (1u << 20))
        return flush_stage(b, err);
    return 0;
}

int tr_segb_add_encoded(tr_segb *b, const tr_segb_rec *recs, size_t nrecs,
                        const unsigned char *data, size_t len, tr_error *err)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < nrecs; i++) {
        if ((b->nkeys || i) && recs[i].key <= (i ? recs[i - 1].key : b->prev_key))
            return tr_fail(err, "index: segment keys out of order");
        sum += recs[i].len;
    }
    if (sum != len)
        return tr_fail(err, "index: encoded lists do not add up");
    for (size_t i = 0; i < nrecs; i++)
        add_entry(b, recs[i].key, recs[i].codec, recs[i].len, recs[i].n);
    if (len == 0)
        return 0;
    if (len < (1u << 16)) {
        tr_buf_append(&b->stage, data, len);
        if (b->stage.len >= (1u << 20))
            return flush_stage(b, err);
        return 0;
    }
    /* Large: no copy through the staging buffer. */
    if (flush_stage(b, err) < 0)
        return -1;
    if (tr_write_all(b->fd, data, len) < 0)
        return tr_fail_errno(err, "index: writing %s", b->path);
    return 0;
}

int tr_segb_finish(tr_segb *b, tr_error *err)
{
    int rc = -1;
    uint64_t off_dir = b->off_lists + b->lists_len;
    uint64_t off_bidx = off_dir + b->dir.len;
    uint64_t size = off_bidx + b->bidx.len;
    if (flush_stage(b, err) < 0)
        goto out;
    if (b->dir.len)   /* core's append rejects a NULL source even for 0 bytes */
        tr_buf_append(&b->stage, b->dir.data, b->dir.len);
    if (b->bidx.len)
        tr_buf_append(&b->stage, b->bidx.data, b->bidx.len);
    if (flush_stage(b, err) < 0)
        goto out;
    unsigned char h[SEG_HDR] = {0};
    memcpy(h, SEG_MAGIC, 8);
    p32(h + 8, SEG_VERSION);
    p32(h + 12, b->kinds);
    p32(h + 16, b->ndocs);
    p32(h + 20, (uint32_t)((b->nkeys + SEG_BLOCK - 1) / SEG_BLOCK));
    p64(h + 24, b->nkeys);
    p64(h + 32, SEG_HDR);
    p64(h + 40, b->off_lists);
    p64(h + 48, b->lists_len);
    p64(h + 56, off_dir);
    p64(h + 64, b->dir.len);
    p64(h + 72, off_bidx);
    p64(h + 80, size);
    for (int k = 0; k < TR_GRAM_KINDS; k++) {
        p64(h + 88 + 8 * k, b->kind_bytes[k]);
        p64(h + 112 + 8 * k, b->kind_keys[k]);
        p64(h + 136 + 8 * k, b->postings[k]);
    }
    p64(h + 184, fnv1a(h, 184));
    if (pwrite(b->fd, h, sizeof h, 0) != (ssize_t)sizeof h) {
        tr_fail_errno(err, "index: writing %s", b->path);
        goto out;
    }
    if (fsync(b->fd) < 0) {
        tr_fail_errno(err, "index: fsync %s", b->path);
        goto out;
    }
    rc = 0;
out:
    if (close(b->fd) < 0 && rc == 0)
        rc = tr_fail_errno(err, "index: closing %s", b->path);
    if (rc < 0)
        unlink(b->path);
    segb_free(b);
    return rc;
}

void tr_segb_abort(tr_segb *b)
{
    if (!b)
        return;
    close(b->fd);
    unlink(b->path);
    segb_free(b);
}
