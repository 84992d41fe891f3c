/* Internals of the index module shared between its files and its unit tests.
 * Not part of the public API. */
#ifndef TRAWL_INDEX_INTERNAL_H
#define TRAWL_INDEX_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "index/index.h"

/* ---- keys: kind in bits 24..25, value in bits 0..23 --------------------- */
#define TR_KEY(kind, v) (((uint32_t)(kind) << 24) | ((uint32_t)(v) & 0xffffffu))
#define TR_KEY_KIND(key) ((int)((key) >> 24))
#define TR_KEY_SPACE (1u << 26)

/* Zeroed anonymous memory asking for transparent huge pages: for the big
 * randomly-accessed tables (per-doc gram bitmap, per-key counts), where 4 KiB
 * pages make nearly every access a TLB miss. Dies on failure like tr_x*. */
void *tr_ix_huge_alloc(size_t n);
void tr_ix_huge_free(void *p, size_t n);

/* ---- gram extraction ------------------------------------------------------ */
/* Distinct keys of one document. The bitmap (one bit per key, 8 MiB) makes
 * dedup O(1) per gram; clearing walks only the keys found, so a small doc
 * costs nothing extra. */
typedef struct tr_gram_set {
    uint64_t *bits;
    uint32_t *keys;
    size_t n, cap;
} tr_gram_set;
void tr_gram_set_init(tr_gram_set *s);
void tr_gram_set_clear(tr_gram_set *s);
void tr_gram_set_free(tr_gram_set *s);
/* Adds the keys of every kind in mask found in d (keys unsorted). */
void tr_grams_extract(const unsigned char *d, size_t len, uint32_t kinds, tr_gram_set *s);

/* Streaming extraction (the writer's path; tr_grams_extract is built on it):
 * a document is fed in slices so that the key list of a slice stays in
 * cache. State carries across slices (gram windows, text runs). */
#define TR_GRAM_SLICE ((size_t)1 << 16)
#define TR_GRAM_SLICE_KEYS (3 * TR_GRAM_SLICE)   /* at most one key per kind per byte */
typedef struct tr_gram_cursor {
    uint32_t kinds;
    size_t pos;                /* bytes of the document consumed */
    uint32_t g;                /* gram3 window */
    uint32_t tw, ww[2];        /* text4 window; wide4 windows per byte parity */
    size_t trun, wrun[2];
} tr_gram_cursor;
void tr_gram_cursor_init(tr_gram_cursor *c, uint32_t kinds);
/* Extracts the grams ending in d[c->pos .. to) of the document d[0..len):
 * sets their bits in bits (TR_KEY_SPACE bits) and appends the keys whose bit
 * was clear to out, which must hold 3 * (to - c->pos) keys. Returns how many
 * were appended. */
size_t tr_grams_feed(tr_gram_cursor *c, const unsigned char *d, size_t len, size_t to,
                     uint64_t *bits, uint32_t *out);

/* Query side: the keys a document must contain one of, if it contains the
 * sequence pos[0..len) at the window. Returns the window length for the kind
 * (3, 4 or 8) and fills keys (sorted, distinct) when the window is usable:
 * every byte allowed at every position maps to a key of this kind and the
 * expansion fits in budget. Returns 0 when unusable (too short, a position
 * outside the kind's alphabet, or too wide). */
size_t tr_grams_window(int kind, const tr_byteset *pos, size_t len, uint32_t budget,
                       uint32_t *keys, size_t *nkeys);
/* tr_grams_window for TR_GRAM3 without the keys: the window length (0 when
 * unusable) and exactly the number of keys it would give (gram3 keys are the
 * bytes themselves, so the count is the product of the positions' sets). */
size_t tr_grams_gram3_size(const tr_byteset *pos, size_t len, uint32_t budget, size_t *nkeys);
unsigned char tr_fold(unsigned char c);
bool tr_is_text(unsigned char c);
uint32_t tr_hash24(uint32_t x);

/* ---- posting list codecs -------------------------------------------------- */
enum { TR_CODEC_VARINT = 0, TR_CODEC_PACK = 1, TR_CODEC_BITMAP = 2, TR_CODEC_AUTO = -1 };
#define TR_VARINT_MAX_N 64      /* longer lists need skips: pack or bitmap */
#define TR_PACK_BLOCK 128

/* Bytes list v[0..n) (strictly increasing) takes in codec c; SIZE_MAX if c is
 * not allowed for it. */
size_t tr_plist_size(int codec, const uint32_t *v, size_t n);
/* Appends the encoding to out; codec AUTO picks the smallest allowed.
 * Returns the codec used: the reader needs it (it is not in the bytes). */
int tr_plist_encode(const uint32_t *v, size_t n, int codec, tr_buf *out);

typedef struct tr_plist {
    const unsigned char *p, *end;
    int codec;
    uint32_t n;
    /* pack */
    uint32_t nblocks;
    const unsigned char *skip, *data;
    /* bitmap */
    uint32_t base;
    uint64_t nbytes;
} tr_plist;
/* Parses the header; -1 when malformed. An empty (len 0) list is valid. */
int tr_plist_open(tr_plist *pl, int codec, const unsigned char *p, size_t len);
/* Decodes all n values into out (capacity pl->n). Returns the count, or
 * SIZE_MAX when the data is malformed. */
size_t tr_plist_decode(const tr_plist *pl, uint32_t *out);

/* Membership probes with skipping; probe values should be non-decreasing for
 * speed (a smaller one restarts the search, still correct). */
typedef struct tr_plist_cursor {
    const tr_plist *pl;
    int64_t block;              /* decoded block, -1 none */
    uint32_t nbuf, at;
    uint32_t buf[TR_PACK_BLOCK];
} tr_plist_cursor;
void tr_plist_cursor_init(tr_plist_cursor *c, const tr_plist *pl);
bool tr_plist_contains(tr_plist_cursor *c, uint32_t v);

static inline size_t tr_varint_put(unsigned char *p, uint64_t v)
{
    size_t i = 0;
    while (v >= 0x80) {
        p[i++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[i++] = (unsigned char)v;
    return i;
}
/* 0 when truncated or overlong. */
size_t tr_varint_get(const unsigned char *p, const unsigned char *end, uint64_t *v);

/* ---- segments -------------------------------------------------------------- */
typedef struct tr_seg {
    char *name;
    tr_map map;
    atomic_int refs;
    uint32_t kinds, ndocs, nblocks;
    bool docs_sorted;          /* doc table ascending (the usual case): binary search */
    uint64_t nkeys;
    const unsigned char *docs, *lists, *dir, *bidx;
    uint64_t lists_len, dir_len;
    uint64_t kind_bytes[TR_GRAM_KINDS], kind_keys[TR_GRAM_KINDS], postings[TR_GRAM_KINDS];
} tr_seg;

int tr_seg_open(const char *dir, const char *name, tr_seg **out, tr_error *err);
/* Takes over a mapping (closed by the last unref, or on failure). */
int tr_seg_from_map(tr_map *m, const char *name, tr_seg **out, tr_error *err);
void tr_seg_ref(tr_seg *s);
void tr_seg_unref(tr_seg *s);
static inline uint32_t tr_seg_doc(const tr_seg *s, uint32_t ord)
{
    uint32_t v;
    __builtin_memcpy(&v, s->docs + 4 * (size_t)ord, 4);
    return v;
}
/* Ordinal of doc id in the segment, or -1. */
int64_t tr_seg_find_doc(const tr_seg *s, uint32_t id);
/* Finds key's encoded list; false (len 0) when absent. */
bool tr_seg_lookup(const tr_seg *s, uint32_t key, const unsigned char **list, size_t *len, int *codec);

/* Sequential walk over every (key, list) in key order, for merges. */
typedef struct tr_seg_iter {
    const tr_seg *s;
    uint32_t block, in_block, block_n;
    const unsigned char *dp, *dend;
    uint64_t list_off;
    uint32_t key;
    const unsigned char *list;
    size_t len;
    int codec;
} tr_seg_iter;
void tr_seg_iter_init(tr_seg_iter *it, const tr_seg *s);
/* 1 with it->key/list/len set, 0 at end, -1 when malformed. */
int tr_seg_iter_next(tr_seg_iter *it);

/* Builder: header, doc table, lists streamed in key order, then directory. */
typedef struct tr_segb tr_segb;
int tr_segb_begin(const char *path, uint32_t kinds, const uint32_t *docs, uint32_t ndocs,
                  tr_segb **out, tr_error *err);
/* Keys strictly increasing across calls; n > 0. */
int tr_segb_add(tr_segb *b, uint32_t key, const uint32_t *ords, size_t n, tr_error *err);
/* Appends lists already encoded (one buffer holding them back to back): n
 * entries of (key, codec, byte length, postings), keys strictly increasing. */
typedef struct tr_segb_rec {
    uint32_t key, n, len;
    int codec;
} tr_segb_rec;
int tr_segb_add_encoded(tr_segb *b, const tr_segb_rec *recs, size_t nrecs,
                        const unsigned char *data, size_t len, tr_error *err);
/* Writes directory and header, fsyncs and closes the file (no rename). */
int tr_segb_finish(tr_segb *b, tr_error *err);
void tr_segb_abort(tr_segb *b);   /* closes and unlinks */

#endif
