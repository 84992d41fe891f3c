/* Posting list codecs. The codec id and the byte length live in the segment
 * directory, not in the list: most lists hold a handful of docs, and two
 * header bytes per list were ~20% of a small index.
 *   VARINT  n varint gaps (first gap is the value); n = bytes < 0x80. Only for
 *           n <= 64: short lists are decoded whole anyway, skipping buys nothing.
 *   PACK    varint n, per block of 128 a skip entry (u32 last value, u32 data
 *           offset), then per block: u8 mode, gaps-1 coded by the mode: 0..32 =
 *           bit-packed LSB first at that width, 255 = varints. Each block takes
 *           the smaller; gaps are clustered (similar files sit together), so
 *           one large gap would otherwise widen a whole block (measured: pure
 *           bit-packing lost to plain varint on the corpus).
 *           Probes binary-search the skip table and decode one block.
 *   BITMAP  varint n, varint base, bits up to the end (bit i = base + i).
 * The writer stores the smallest allowed encoding (measured in bench/README.md). */
#include <stdint.h>
#include <string.h>

#include "index/index_internal.h"

size_t tr_varint_get(const unsigned char *p, const unsigned char *end, uint64_t *v)
{
    uint64_t r = 0;
    for (size_t i = 0; i < 10 && p + i < end; i++) {
        r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *v = r;
            return i + 1;
        }
    }
    return 0;
}

/* Bytes of a varint by significant bits (0 counted as 1): ceil(bits / 7). */
static const unsigned char VARINT_LEN[65] = {
    1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5,
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 10};

static inline size_t varint_len(uint64_t v)
{
    /* A table lookup: the division by 7 was the hottest instruction of the
     * writer's codec choice (most lists are a few entries). */
    return VARINT_LEN[64u - (unsigned)__builtin_clzll(v | 1)];
}

static unsigned bits_for(uint32_t x)
{
    return x ? 32u - (unsigned)__builtin_clz(x) : 0u;
}

static uint32_t rd32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void wr32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }

#define MODE_VARINT 255

/* Gap coding shared by encoder and decoder: the first value of block b is
 * coded relative to the last value of block b-1 (or to -1). Returns the mode
 * and the block's byte size (mode byte included). */
static unsigned block_mode(const uint32_t *v, size_t from, size_t to, int64_t prev, size_t *bytes)
{
    uint32_t maxg = 0;
    size_t vb = 0;
    for (size_t i = from; i < to; i++) {
        uint32_t g = (uint32_t)((int64_t)v[i] - prev - 1);
        if (g > maxg)
            maxg = g;
        vb += varint_len(g);
        prev = v[i];
    }
    unsigned w = bits_for(maxg);
    size_t pb = ((to - from) * w + 7) / 8;
    if (vb < pb) {
        *bytes = 1 + vb;
        return MODE_VARINT;
    }
    *bytes = 1 + pb;
    return w;
}

/* Skip table and blocks; records each block's mode in modes[] when it fits,
 * so the encoder does not decide twice. */
static size_t pack_size(const uint32_t *v, size_t n, unsigned char *modes, size_t nmodes)
{
    size_t nb = (n + TR_PACK_BLOCK - 1) / TR_PACK_BLOCK, sz = nb * 8;
    int64_t prev = -1;
    for (size_t b = 0; b < nb; b++) {
        size_t from = b * TR_PACK_BLOCK, to = from + TR_PACK_BLOCK < n ? from + TR_PACK_BLOCK : n;
        size_t bytes;
        unsigned m = block_mode(v, from, to, prev, &bytes);
        if (b < nmodes)
            modes[b] = (unsigned char)m;
        sz += bytes;
        prev = v[to - 1];
    }
    return sz;
}

size_t tr_plist_size(int codec, const uint32_t *v, size_t n)
{
    if (n == 0)
        return 0;
    size_t sz = codec == TR_CODEC_VARINT ? 0 : varint_len(n);
    switch (codec) {
    case TR_CODEC_VARINT: {
        if (n > TR_VARINT_MAX_N)
            return SIZE_MAX;
        uint64_t prev = 0;
        for (size_t i = 0; i < n; i++) {
            sz += varint_len(v[i] - prev);
            prev = v[i];
        }
        return sz;
    }
    case TR_CODEC_PACK:
        return sz + pack_size(v, n, NULL, 0);
    case TR_CODEC_BITMAP: {
        uint64_t span = (uint64_t)v[n - 1] - v[0] + 1;
        uint64_t nbytes = (span + 7) / 8;
        return sz + varint_len(v[0]) + (size_t)nbytes;
    }
    default:
        return SIZE_MAX;
    }
}

static void buf_grow(tr_buf *out, size_t extra)
{
    if (out->len + extra > out->cap) {
        size_t cap = out->cap ? out->cap : 256;
        while (cap < out->len + extra)
            cap *= 2;
        out->data = tr_xrealloc(out->data, cap);
        out->cap = cap;
    }
}

int tr_plist_encode(const uint32_t *v, size_t n, int codec, tr_buf *out)
{
    if (n == 0)
        return TR_CODEC_VARINT;
    size_t total = SIZE_MAX;
    enum { NMODES = 1024 };
    unsigned char modes[NMODES];
    size_t nb = (n + TR_PACK_BLOCK - 1) / TR_PACK_BLOCK;
    bool have_modes = false;
    if (codec == TR_CODEC_AUTO && n <= TR_VARINT_MAX_N) {
        /* Short lists (nearly all of them): the three sizes in one pass,
         * same choice as the general loop below (ties to the lower codec). */
        size_t vsz = 0, pvb = 0;
        uint32_t maxg = 0, prev = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t d = v[i] - prev, g = i ? d - 1 : d;
            vsz += varint_len(d);
            pvb += varint_len(g);
            maxg = g > maxg ? g : maxg;
            prev = v[i];
        }
        total = vsz;
        codec = TR_CODEC_VARINT;
        if (n >= 7) {
            size_t pb = (n * bits_for(maxg) + 7) / 8;
            size_t sz = varint_len(n) + 8 + 1 + (pvb < pb ? pvb : pb);
            if (sz < total) {
                total = sz;
                codec = TR_CODEC_PACK;
                modes[0] = (unsigned char)(pvb < pb ? MODE_VARINT : bits_for(maxg));
                have_modes = true;
            }
        }
        size_t bsz = varint_len(n) + varint_len(v[0]) + (size_t)(((uint64_t)v[n - 1] - v[0] + 1 + 7) / 8);
        if (bsz < total) {
            total = bsz;
            codec = TR_CODEC_BITMAP;
        }
    } else if (codec == TR_CODEC_AUTO) {
        for (int c = TR_CODEC_VARINT; c <= TR_CODEC_BITMAP; c++) {
            /* Below 7 entries a skip entry alone outweighs any saving. */
            if (c == TR_CODEC_PACK && n < 7)
                continue;
            size_t sz;
            if (c == TR_CODEC_PACK) {
                sz = varint_len(n) + pack_size(v, n, modes, NMODES);
                have_modes = nb <= NMODES;
            } else {
                sz = tr_plist_size(c, v, n);
            }
            if (sz < total) {
                total = sz;
                codec = c;
            }
        }
    } else {
        total = tr_plist_size(codec, v, n);
    }
    if (total == SIZE_MAX)
        tr_die("index: codec %d not allowed for a list of %zu", codec, n);
    buf_grow(out, total + 8);   /* +8: the bit packer may touch a word past the end */
    unsigned char *p = (unsigned char *)out->data + out->len, *start = p;
    if (codec != TR_CODEC_VARINT)
        p += tr_varint_put(p, n);
    if (codec == TR_CODEC_VARINT) {
        uint64_t prev = 0;
        for (size_t i = 0; i < n; i++) {
            p += tr_varint_put(p, v[i] - prev);
            prev = v[i];
        }
    } else if (codec == TR_CODEC_PACK) {
        unsigned char *skip = p, *data = p + nb * 8, *d = data;
        int64_t prev = -1;
        for (size_t b = 0; b < nb; b++) {
            size_t from = b * TR_PACK_BLOCK, to = from + TR_PACK_BLOCK < n ? from + TR_PACK_BLOCK : n;
            size_t bytes;
            unsigned w = have_modes ? modes[b] : block_mode(v, from, to, prev, &bytes);
            wr32(skip + b * 8, v[to - 1]);
            wr32(skip + b * 8 + 4, (uint32_t)(d - data));
            *d++ = (unsigned char)w;
            if (w == MODE_VARINT) {
                for (size_t i = from; i < to; i++) {
                    d += tr_varint_put(d, (uint64_t)((int64_t)v[i] - prev - 1));
                    prev = v[i];
                }
                continue;
            }
            uint64_t acc = 0;
            unsigned nbits = 0;
            for (size_t i = from; i < to; i++) {
                uint64_t g = (uint64_t)((int64_t)v[i] - prev - 1);
                prev = v[i];
                acc |= g << nbits;
                nbits += w;
                while (nbits >= 8) {
                    *d++ = (unsigned char)acc;
                    acc >>= 8;
                    nbits -= 8;
                }
            }
            if (nbits)
                *d++ = (unsigned char)acc;
        }
        p = d;
    } else {
        uint64_t span = (uint64_t)v[n - 1] - v[0] + 1, nbytes = (span + 7) / 8;
        p += tr_varint_put(p, v[0]);
        memset(p, 0, (size_t)nbytes);
        for (size_t i = 0; i < n; i++) {
            uint64_t o = (uint64_t)v[i] - v[0];
            p[o >> 3] |= (unsigned char)(1u << (o & 7));
        }
        p += nbytes;
    }
    if ((size_t)(p - start) != total)
        tr_die("index: codec size mismatch (%zu != %zu)", (size_t)(p - start), total);
    out->len += total;
    return codec;
}

int tr_plist_open(tr_plist *pl, int codec, const unsigned char *p, size_t len)
{
    memset(pl, 0, sizeof *pl);
    pl->codec = codec;
    if (len == 0)
        return 0;   /* p may be NULL: no pointer arithmetic on it */
    pl->p = p;
    pl->end = p + len;
    if (codec == TR_CODEC_VARINT) {
        uint32_t n = 0;
        for (size_t i = 0; i < len; i++)
            n += p[i] < 0x80;
        if (n == 0 || n > TR_VARINT_MAX_N || p[len - 1] >= 0x80)
            return -1;
        pl->n = n;
        pl->data = p;
        return 0;
    }
    uint64_t n;
    size_t k = tr_varint_get(p, pl->end, &n);
    if (!k || n == 0 || n > UINT32_MAX)
        return -1;
    pl->n = (uint32_t)n;
    const unsigned char *q = p + k;
    switch (codec) {
    case TR_CODEC_PACK:
        pl->nblocks = (uint32_t)((n + TR_PACK_BLOCK - 1) / TR_PACK_BLOCK);
        if ((uint64_t)(pl->end - q) < (uint64_t)pl->nblocks * 8)
            return -1;
        pl->skip = q;
        pl->data = q + (size_t)pl->nblocks * 8;
        return 0;
    case TR_CODEC_BITMAP: {
        uint64_t base;
        size_t a = tr_varint_get(q, pl->end, &base);
        if (!a || base > UINT32_MAX)
            return -1;
        q += a;
        uint64_t nbytes = (uint64_t)(pl->end - q);
        if (base + nbytes * 8 > (uint64_t)UINT32_MAX + 8)
            return -1;
        pl->base = (uint32_t)base;
        pl->nbytes = nbytes;
        pl->data = q;
        return 0;
    }
    default:
        return -1;
    }
}

/* Decodes block b into out; returns the count or -1 when malformed. */
static int pack_block(const tr_plist *pl, uint32_t b, uint32_t *out)
{
    uint32_t cnt = b + 1 < pl->nblocks ? TR_PACK_BLOCK : pl->n - b * TR_PACK_BLOCK;
    uint32_t off = rd32(pl->skip + (size_t)b * 8 + 4);
    const unsigned char *d = pl->data + off;
    if (off >= (uint64_t)(pl->end - pl->data))
        return -1;
    unsigned w = *d++;
    int64_t prev = b ? (int64_t)rd32(pl->skip + (size_t)(b - 1) * 8) : -1;
    if (w == MODE_VARINT) {
        for (uint32_t i = 0; i < cnt; i++) {
            uint64_t g;
            size_t k = tr_varint_get(d, pl->end, &g);
            if (!k || prev + 1 + (int64_t)g > (int64_t)UINT32_MAX || g > UINT32_MAX)
                return -1;
            d += k;
            prev += 1 + (int64_t)g;
            out[i] = (uint32_t)prev;
        }
        return (int)cnt;
    }
    if (w > 32 || ((uint64_t)cnt * w + 7) / 8 > (uint64_t)(pl->end - d))
        return -1;
    uint64_t acc = 0, mask = w == 32 ? 0xffffffffu : ((uint64_t)1 << w) - 1;
    unsigned nbits = 0;
    for (uint32_t i = 0; i < cnt; i++) {
        while (nbits < w) {
            acc |= (uint64_t)*d++ << nbits;
            nbits += 8;
        }
        uint64_t g = acc & mask;
        acc = w == 64 ? 0 : acc >> w;
        nbits -= w;
        int64_t v = prev + 1 + (int64_t)g;
        if (v > (int64_t)UINT32_MAX)
            return -1;
        out[i] = (uint32_t)v;
        prev = v;
    }
    return (int)cnt;
}

size_t tr_plist_decode(const tr_plist *pl, uint32_t *out)
{
    if (pl->n == 0)
        return 0;
    if (pl->codec == TR_CODEC_VARINT) {
        const unsigned char *q = pl->data;
        uint64_t prev = 0;
        for (uint32_t i = 0; i < pl->n; i++) {
            uint64_t g;
            size_t k = tr_varint_get(q, pl->end, &g);
            if (!k || (i && g == 0) || prev + g > UINT32_MAX)
                return SIZE_MAX;
            q += k;
            prev += g;
            out[i] = (uint32_t)prev;
        }
        return pl->n;
    }
    if (pl->codec == TR_CODEC_PACK) {
        size_t k = 0;
        for (uint32_t b = 0; b < pl->nblocks; b++) {
            int c = pack_block(pl, b, out + k);
            if (c < 0)
                return SIZE_MAX;
            k += (size_t)c;
        }
        return k;
    }
    size_t k = 0;
    for (uint64_t i = 0; i < pl->nbytes; i += 8) {
        uint64_t word = 0;
        if (pl->nbytes - i >= 8)
            memcpy(&word, pl->data + i, 8);   /* little-endian hosts only (x86, arm64) */
        else
            for (uint64_t j = i; j < pl->nbytes; j++)
                word |= (uint64_t)pl->data[j] << (8 * (j - i));
        while (word) {
            if (k == pl->n)
                return SIZE_MAX;
            out[k++] = pl->base + (uint32_t)(i * 8 + (uint64_t)__builtin_ctzll(word));
            word &= word - 1;
        }
    }
    return k == pl->n ? k : SIZE_MAX;
}

void tr_plist_cursor_init(tr_plist_cursor *c, const tr_plist *pl)
{
    c->pl = pl;
    c->block = -1;
    c->nbuf = 0;
    c->at = 0;
}

static bool buf_contains(tr_plist_cursor *c, uint32_t v)
{
    /* Probes are mostly increasing: walk forward from the last position. */
    if (c->at > 0 && c->at <= c->nbuf && c->buf[c->at - 1] >= v)
        c->at = 0;
    while (c->at < c->nbuf && c->buf[c->at] < v)
        c->at++;
    return c->at < c->nbuf && c->buf[c->at] == v;
}

bool tr_plist_contains(tr_plist_cursor *c, uint32_t v)
{
    const tr_plist *pl = c->pl;
    if (pl->n == 0)
        return false;
    switch (pl->codec) {
    case TR_CODEC_VARINT:
        if (c->block < 0) {
            size_t k = tr_plist_decode(pl, c->buf);
            c->nbuf = k == SIZE_MAX ? 0 : (uint32_t)k;
            c->block = 0;
            c->at = 0;
        }
        return buf_contains(c, v);
    case TR_CODEC_PACK: {
        uint32_t lo = c->block >= 0 ? (uint32_t)c->block : 0;
        if (c->block >= 0 && rd32(pl->skip + (size_t)lo * 8) >= v &&
            (lo == 0 || rd32(pl->skip + (size_t)(lo - 1) * 8) < v))
            return buf_contains(c, v);
        if (c->block >= 0 && rd32(pl->skip + (size_t)lo * 8) >= v)
            lo = 0;   /* went backwards */
        uint32_t hi = pl->nblocks;   /* first block whose last value >= v */
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (rd32(pl->skip + (size_t)mid * 8) < v)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == pl->nblocks)
            return false;
        int cnt = pack_block(pl, lo, c->buf);
        c->block = lo;
        c->nbuf = cnt < 0 ? 0 : (uint32_t)cnt;
        c->at = 0;
        return buf_contains(c, v);
    }
    default: {
        if (v < pl->base)
            return false;
        uint64_t o = (uint64_t)v - pl->base;
        if ((o >> 3) >= pl->nbytes)
            return false;
        return (pl->data[o >> 3] >> (o & 7)) & 1;
    }
    }
}
