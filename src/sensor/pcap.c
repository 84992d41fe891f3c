/* sensor/pcap: packets from a capture file turned into events. SYN probes
 * that never complete a handshake carry only packet evidence (IP ID, TTL,
 * window, options, sequence number), so that is what the scanner
 * fingerprints read; completed TCP sessions are reassembled far enough (the
 * client's in-order first bytes) for the protocol parsers. */
#include <pcap/pcap.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sensor/sensor.h"
#include "sensor/sensor_internal.h"

#define FLOWS_MAX 65536               /* flows tracked at once */
#define FLOW_BYTES_MAX (256u << 20)   /* client bytes buffered over all flows */
#define FLOW_IDLE_US (120 * 1000000LL)
#define SYN_WINDOW_US (60 * 1000000LL) /* a source's SYNs to one port this close become one event */
#define FLOW_SLOTS (1u << 17)         /* twice FLOWS_MAX: short probe runs */
#define FLOW_FULL_SLOTS_MIN (1u << 10) /* full flows are few in a scan: a small table stays in cache */
/* SYN probes waiting for their window: one per (source, port), 128 bytes
 * each, so a million of them stay at 128 MiB. */
#define PROBES_MAX (1u << 20)
#define PROBE_RING_MIN 4096u         /* grows with the probes waiting: small stays in cache */
#define POOL_CHUNK 4096

typedef struct addr_key {
    uint8_t family;
    uint8_t src[16], dst[16];
    uint16_t sport, dport;
} addr_key;

typedef struct flow {
    uint64_t h;                  /* same for both directions */
    addr_key k;                  /* client -> server, as the first SYN went */
    int64_t first_us, last_us;
    int32_t ip_id, ttl, win, flags;
    int64_t seq, ack;
    uint8_t opt[40];             /* the SYN's TCP options as sent: text only when an event needs it */
    uint8_t optlen;
    bool synack, handshake, done;
    uint32_t next_seq;
    uint8_t *buf;
    size_t len;
    unsigned packets;
    uint64_t seen;               /* when last touched, in decoder ticks: the age order */
    struct flow *prev, *next;    /* age list */
} flow;

/* A flow that has seen only its SYN, IPv4 with at most SYN_OPT_MAX bytes of
 * options (every scanner's and Linux's SYN): one cache line in a FIFO ring.
 * A SYN scan makes nearly every packet one of these, and nearly all of them
 * end as they began, so they are never moved in the age order and end from
 * the ring's head in the order they came: sequential memory, where a
 * linked record per SYN cost a cache miss at its end. A second packet of the
 * flow turns it into a full flow record (the ring entry dies in place). */
#define SYN_OPT_MAX 20
typedef struct syn {
    uint64_t seen;
    int64_t first_us;
    uint8_t src[4], dst[4];
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint16_t ip_id, win;
    uint8_t ttl, flags, optlen;
    uint8_t live;                /* 0: turned into a full flow, skipped at the head */
    uint8_t opt[SYN_OPT_MAX];
} syn;
_Static_assert(sizeof(syn) == 64, "a SYN-only flow is one cache line");

/* The SYN ring's index: buckets of one cache line, 7 entries each (the low
 * half of the flow hash as a tag, its low bits the home bucket, and the ring
 * position + 1, 0 empty). A bucket is searched without a data-dependent
 * branch per entry and ends a lookup unless an entry passed it for want of
 * room ("over" counts those), so a delete clears one entry and walks no
 * run: the linear-probing table's backward shift mispredicted about twice a
 * delete. 16,384 buckets (1 MiB) for at most FLOWS_MAX + 1 entries. */
#define CT_WAYS 7
#define CT_BUCKETS (1u << 14)
typedef struct cbucket {
    uint32_t tag[CT_WAYS];
    uint32_t over;
    uint32_t pos[CT_WAYS];
    uint32_t unused;
} cbucket;
_Static_assert(sizeof(cbucket) == 64 && offsetof(cbucket, pos) == 32,
               "a bucket is one cache line: tags and over, then positions and a spare word");
_Static_assert(CT_BUCKETS * CT_WAYS > 65537, "room for FLOWS_MAX + 1");

/* SYN-only probes of one source to one port, waiting for their window to
 * close: the first flow's evidence and the packet count. Kept compact (no
 * tr_event until it goes out) since there can be a million at once. Probes
 * only ever leave from the oldest (their window closes in creation order, and
 * PROBES_MAX pushes out the oldest), so they live in a FIFO ring of 128-byte
 * entries like the SYN-only flows: created and ended in sequential memory,
 * no list pointers. What a joining SYN reads and writes (first_us, packets,
 * the key) is in the first cache line; the options stay raw (40 bytes, not
 * 64 of text) and become text again when the event goes out. */
typedef struct probe {
    int64_t first_us;
    uint32_t tag;                /* the index's: low half of probe_hash */
    uint32_t packets;
    addr_key k;                  /* the first probe's; key is family, src, dport */
    uint8_t ttl, flags;
    int32_t ip_id;
    uint16_t win;
    uint8_t optlen;
    uint8_t spare;
    int64_t seq;
    const char *scanner;         /* a fingerprint's static name, or NULL */
    uint8_t opt[40];
    uint8_t spare2[8];
} probe;
_Static_assert(sizeof(probe) == 128 && offsetof(probe, k) + sizeof(addr_key) <= 64,
               "two cache lines, and what a joining SYN touches in the first");

/* Open addressing with the full hash in the slot: a lookup that misses (every
 * new SYN) reads only the table, never the records, which is what kept the
 * import waiting on memory. Linear probing, backward-shift deletion. */
typedef struct slot {
    uint64_t h;
    void *p;                     /* NULL: empty */
} slot;

typedef struct otab {
    slot *s;
    size_t mask;
    size_t n;
    unsigned load;               /* percent full before it doubles */
} otab;

static void otab_init(otab *t, size_t slots, unsigned load)
{
    t->s = tr_xcalloc(slots, sizeof *t->s);
    t->mask = slots - 1;
    t->n = 0;
    t->load = load;
}

static void otab_put(otab *t, uint64_t h, void *p);

/* Doubles the table; a table that never fills stays small. */
static void otab_grow(otab *t)
{
    otab old = *t;
    otab_init(t, (old.mask + 1) * 2, old.load);
    for (size_t i = 0; i <= old.mask; i++)
        if (old.s[i].p)
            otab_put(t, old.s[i].h, old.s[i].p);
    free(old.s);
}

static void otab_put(otab *t, uint64_t h, void *p)
{
    if (++t->n * 100 > (t->mask + 1) * t->load) {
        t->n--;
        otab_grow(t);
        t->n++;
    }
    size_t i = h & t->mask;
    while (t->s[i].p)
        i = (i + 1) & t->mask;
    t->s[i].h = h;
    t->s[i].p = p;
}

static void otab_del(otab *t, uint64_t h, const void *p)
{
    size_t i = h & t->mask;
    while (t->s[i].p != p)
        i = (i + 1) & t->mask;
    for (size_t j = i;;) {
        j = (j + 1) & t->mask;
        if (!t->s[j].p)
            break;
        size_t k = t->s[j].h & t->mask;
        /* j's entry may move into the hole at i unless its home lies in (i, j]. */
        bool stays = i <= j ? (k > i && k <= j) : (k > i || k <= j);
        if (!stays) {
            t->s[i] = t->s[j];
            i = j;
        }
    }
    t->s[i].p = NULL;
    t->n--;
}

/* Fixed-size records from chunks: no malloc per packet. */
typedef struct pool {
    size_t size;
    void *free;                  /* free list through the records' first word */
    void **chunks;
    size_t nchunks;
} pool;

typedef struct tr_pcap_decoder {
    const char *sensor;
    size_t sensor_len;
    struct { int transport; uint16_t port; } skip[256];   /* what a listener records */
    size_t nskip;
    tr_event_sink sink;
    void *ctx;
    tr_import_stats *st;
    tr_error *err;
    int failed;                      /* the sink said stop */
    otab ft;                         /* full flows */
    flow *head, *tail;               /* full flows, oldest first */
    size_t nflows, bytes;            /* SYN-only and full flows */
    uint64_t tick;                   /* ages: the ring's and the full list's merge */
    syn *ring;                       /* SYN-only flows, oldest first from rhead */
    void *ring_mem;
    uint32_t rcap, rhead, rlen;      /* rlen counts the dead entries in the window too */
    size_t nsyn;                     /* live ones */
    cbucket *ct;                     /* CT_BUCKETS, 64-byte aligned */
    void *ct_mem;
    probe *pr;                       /* probes, oldest first from phd */
    void *pr_mem;
    uint32_t pcap_, phd, pn;
    cbucket *pi;                     /* the probes' index: pimask + 1 buckets, as ct */
    void *pi_mem;
    uint32_t pimask;
    pool flows;
} decoder;

static void *pool_get(pool *p)
{
    if (!p->free) {
        char *c = tr_xmalloc(p->size * POOL_CHUNK);
        p->chunks = tr_xrealloc(p->chunks, (p->nchunks + 1) * sizeof *p->chunks);
        p->chunks[p->nchunks++] = c;
        for (size_t i = POOL_CHUNK; i-- > 0;) {
            *(void **)(c + i * p->size) = p->free;
            p->free = c + i * p->size;
        }
    }
    void *r = p->free;
    p->free = *(void **)r;
    return r;   /* uncleared: the caller sets what it uses */
}

static void pool_put(pool *p, void *r)
{
    *(void **)r = p->free;
    p->free = r;
}

static void pool_free(pool *p)
{
    for (size_t i = 0; i < p->nchunks; i++)
        free(p->chunks[i]);
    free(p->chunks);
}

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t rd32(const uint8_t *p) { return rd16(p) << 16 | rd16(p + 2); }

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* One end (address, port) as a 64-bit word: a multiply per end, then one
 * finaliser per key. Every packet hashes its flow, and the table compares the
 * full key anyway, so a full 64-bit mix per end was more than it needs. The
 * port sits just above an IPv4 address's bits (a product's low bits depend
 * only on its factors' low bits, and the finaliser folds the high half down:
 * a port up at bit 48 hardly reached the slot index, and a scanner's probes
 * from one source to one target piled up in one run of slots). An IPv6
 * address's second half is multiplied in. */
static uint64_t end_word(const uint8_t a[16], uint16_t port)
{
    uint64_t w0, w1;
    memcpy(&w0, a, 8);
    memcpy(&w1, a + 8, 8);
    return (w0 ^ (uint64_t)port << 32 ^ w1 * 0x9e3779b97f4a7c15ull) * 0xff51afd7ed558ccdull;
}

static uint64_t fold(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ x >> 33;
}

/* end_word of an IPv4 address (its 12 zero bytes left out) from its 4 bytes
 * as one load: the key's bytes are stored piecewise just before, and an 8-byte
 * load over them waited for the stores (a store-forwarding stall per packet). */
static uint64_t end_word4(uint32_t a, uint16_t port)
{
    return ((uint64_t)a ^ (uint64_t)port << 32) * 0xff51afd7ed558ccdull;
}

static uint32_t ip4(const uint8_t *a)
{
    uint32_t v;
    memcpy(&v, a, 4);
    return v;
}

static uint64_t flow_hash4(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport)
{
    return fold(end_word4(src, sport) + end_word4(dst, dport) + 4);
}

/* Symmetric in the two ends (a sum), so a reply lands in its flow's bucket. */
static uint64_t flow_hash(const addr_key *k)
{
    if (k->family == 4)
        return flow_hash4(ip4(k->src), k->sport, ip4(k->dst), k->dport);
    return fold(end_word(k->src, k->sport) + end_word(k->dst, k->dport) + k->family);
}

static uint64_t probe_hash(const addr_key *k)
{
    if (k->family == 4)
        return mix64(end_word4(ip4(k->src), k->dport) + 4);
    return mix64(end_word(k->src, k->dport) + k->family);
}

static int same_flow(const addr_key *a, const addr_key *b)
{
    return a->family == b->family && a->dport == b->dport && a->sport == b->sport &&
           memcmp(a->src, b->src, 16) == 0 && memcmp(a->dst, b->dst, 16) == 0;
}

static void fill_event(decoder *d, tr_event *e, const addr_key *k, int64_t t, const char *transport)
{
    tr_event_init(e);
    e->time_us = t;
    memcpy(e->sensor, d->sensor, d->sensor_len);
    e->sensor[d->sensor_len] = 0;
    e->family = k->family;
    memcpy(e->src_ip, k->src, 16);
    memcpy(e->dst_ip, k->dst, 16);
    e->src_port = k->sport;
    e->dst_port = k->dport;
    snprintf(e->transport, sizeof e->transport, "%s", transport);
}

static int skipped(const decoder *d, int transport, uint16_t port)
{
    for (size_t i = 0; i < d->nskip; i++)
        if (d->skip[i].transport == transport && d->skip[i].port == port)
            return 1;
    return 0;
}

static int emit(decoder *d, tr_event *e)
{
    int r = 0;
    if (!d->failed) {
        r = d->sink(d->ctx, e, d->err);
        if (r != 0)
            d->failed = 1;
        else
            d->st->events++;
    }
    tr_event_clear(e);
    return r;
}

static void tcp_options(const uint8_t *o, size_t n, char *out, size_t outsz, int *mss);

/* ---- scanner fingerprints (see docs/sensor.md for the sources) ---------- */

static const char *fingerprint(const flow *f, const char *options, int mss)
{
    uint32_t dst4 = f->k.family == 4 ? rd32(f->k.dst) : 0;
    /* ZMap up to 4.0 (Debian's 2.1.1): constant IP ID 54321, window 65535. */
    if (f->ip_id == 54321 && f->win == 65535)
        return "zmap";
    /* Masscan: ip_id = (dst ^ dport ^ seq) & 0xffff, with its own windows. */
    if (f->k.family == 4 && f->ip_id >= 0 &&
        (uint32_t)f->ip_id == ((dst4 ^ f->k.dport ^ (uint32_t)f->seq) & 0xffff) &&
        (f->win == 1024 || f->win == 1025 || f->win == 1200))
        return "masscan";
    /* Mirai's SYN scanner sets the sequence number to the target address. */
    if (f->k.family == 4 && (uint32_t)f->seq == dst4)
        return "mirai";
    /* Nmap -sS: window 1024 and exactly one option, MSS 1460. */
    if (f->win == 1024 && strcmp(options, "2") == 0 && mss == 1460)
        return "nmap";
    /* hping3 fills the ack field of a bare SYN and uses window 512. */
    if (f->win == 512 && f->ack > 0 && !(f->flags & 0x10))
        return "hping3";
    return NULL;
}

/* Bit i set where word i of a bucket half (tag[] or pos[], 8 words with
 * the word after them) equals v: no branch per entry, then one test. */
#ifdef __SSE2__
static unsigned ct_match(const uint32_t *half, uint32_t v)
{
    const char *b = (const char *)half;   /* the 32 bytes of the half, as bytes */
    __m128i x = _mm_set1_epi32((int)v);
    __m128i lo = _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)b), x);
    __m128i hi = _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)(b + 16)), x);
    unsigned m = (unsigned)_mm_movemask_ps(_mm_castsi128_ps(lo)) |
                 (unsigned)_mm_movemask_ps(_mm_castsi128_ps(hi)) << 4;
    return m & ((1u << CT_WAYS) - 1);
}
#else
static unsigned ct_match(const uint32_t *half, uint32_t v)
{
    unsigned m = 0;
    for (int i = 0; i < CT_WAYS; i++)
        m |= (unsigned)(half[i] == v) << i;
    return m;
}
#endif

/* mask: the bucket count - 1 (CT_BUCKETS - 1 for the SYN ring's index). */
static void ct_put(cbucket *ct, uint32_t mask, uint32_t tag, uint32_t pos)
{
    for (uint32_t b = tag & mask;; b = (b + 1) & mask) {
        cbucket *k = &ct[b];
        unsigned free_ = ct_match(k->pos, 0);
        if (free_) {
            int i = __builtin_ctz(free_);
            k->tag[i] = tag;
            k->pos[i] = pos + 1;
            return;
        }
        k->over++;
    }
}

/* The buckets the entry passed on its way in are the ones before it. */
static void ct_del(cbucket *ct, uint32_t mask, uint32_t tag, uint32_t pos)
{
    for (uint32_t b = tag & mask;; b = (b + 1) & mask) {
        cbucket *k = &ct[b];
        unsigned m = ct_match(k->pos, pos + 1);
        if (m) {
            k->pos[__builtin_ctz(m)] = 0;
            return;
        }
        k->over--;
    }
}

/* ---- SYN-only probes ------------------------------------------------------ */

/* The oldest probe goes out. */
static void probe_flush(decoder *d)
{
    uint32_t pos = d->phd;
    const probe *p = &d->pr[pos];
    /* Probes go in bursts (a scan's burst, a window later), more in one
     * packet than prefetch_next asks for ahead: each asks for a later one's
     * bucket. */
    if (d->pn > 8)
        __builtin_prefetch(&d->pi[d->pr[(pos + 8) & (d->pcap_ - 1)].tag & d->pimask]);
    ct_del(d->pi, d->pimask, p->tag, pos);
    d->phd = (pos + 1) & (d->pcap_ - 1);
    d->pn--;
    tr_event e;
    fill_event(d, &e, &p->k, p->first_us, "tcp");
    strcpy(e.proto, "syn");
    e.handshake = false;
    e.ip_id = p->ip_id;
    e.ttl = p->ttl;
    e.tcp_window = p->win;
    e.tcp_flags = p->flags;
    e.tcp_seq = p->seq;
    int mss = -1;
    tcp_options(p->opt, p->optlen, e.tcp_options, sizeof e.tcp_options, &mss);
    e.packets = (unsigned)p->packets;
    if (p->scanner)
        tr_event_set_static(&e, "scanner", p->scanner);   /* a fingerprint's literal */
    emit(d, &e);
}

/* A full ring moves to one twice the size, oldest first, and the index is
 * rebuilt at a quarter bucket per entry (at most 4/7 of its ways used). */
static void probe_grow(decoder *d)
{
    uint32_t cap = d->pcap_ ? d->pcap_ * 2 : PROBE_RING_MIN;
    void *mem = tr_xmalloc((size_t)cap * sizeof(probe) + 63);
    probe *r = (probe *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
    uint32_t nb = cap / 4;
    void *imem = tr_xcalloc(1, (size_t)nb * sizeof(cbucket) + 63);
    cbucket *ix = (cbucket *)(((uintptr_t)imem + 63) & ~(uintptr_t)63);
    for (uint32_t i = 0; i < d->pn; i++) {
        r[i] = d->pr[(d->phd + i) & (d->pcap_ - 1)];
        ct_put(ix, nb - 1, r[i].tag, i);
    }
    free(d->pr_mem);
    free(d->pi_mem);
    d->pr_mem = mem;
    d->pr = r;
    d->pcap_ = cap;
    d->phd = 0;
    d->pi_mem = imem;
    d->pi = ix;
    d->pimask = nb - 1;
}

static void probe_new(decoder *d, const flow *f, uint64_t h)
{
    /* The oldest would go right after this one came in: the same event. */
    if (d->pn == PROBES_MAX)
        probe_flush(d);
    if (d->pn == d->pcap_)
        probe_grow(d);
    uint32_t pos = (d->phd + d->pn++) & (d->pcap_ - 1);
    probe *p = &d->pr[pos];
    p->first_us = f->first_us;
    p->tag = (uint32_t)h;
    p->packets = f->packets;
    p->k = f->k;
    p->ttl = (uint8_t)f->ttl;
    p->flags = (uint8_t)f->flags;
    p->ip_id = f->ip_id;
    p->win = (uint16_t)f->win;
    p->optlen = f->optlen;
    p->seq = f->seq;
    memcpy(p->opt, f->opt, f->optlen);
    char options[sizeof ((tr_event *)0)->tcp_options];
    int mss = -1;
    tcp_options(f->opt, f->optlen, options, sizeof options, &mss);
    p->scanner = fingerprint(f, options, mss);
    ct_put(d->pi, d->pimask, p->tag, pos);
}

/* The probe a flow of this source (16 bytes, an IPv4 address zero past its
 * 4, as in addr_key), port and start joins: the oldest one whose window it
 * falls in (several of one key can wait at once, and the first table kept
 * them in creation order), or NULL. h is the key's probe_hash. */
static probe *probe_find(decoder *d, uint8_t family, const uint8_t src[16], uint16_t dport,
                         uint64_t h, int64_t first_us)
{
    uint32_t tag = (uint32_t)h, best = UINT32_MAX;
    probe *r = NULL;
    for (uint32_t b = tag & d->pimask;; b = (b + 1) & d->pimask) {
        const cbucket *c = &d->pi[b];
        for (unsigned m = ct_match(c->tag, tag); m; m &= m - 1) {
            int i = __builtin_ctz(m);
            if (!c->pos[i])
                continue;
            probe *p = &d->pr[c->pos[i] - 1];
            uint32_t age = (c->pos[i] - 1 - d->phd) & (d->pcap_ - 1);
            if (age < best && p->k.family == family && p->k.dport == dport &&
                memcmp(p->k.src, src, 16) == 0 && first_us - p->first_us <= SYN_WINDOW_US) {
                best = age;
                r = p;
            }
        }
        if (!c->over)
            return r;
    }
}

/* A flow that never completed its handshake joins its source's probe of that
 * port, or starts one. */
static void probe_add(decoder *d, const flow *f)
{
    uint64_t h = probe_hash(&f->k);
    probe *p = probe_find(d, f->k.family, f->k.src, f->k.dport, h, f->first_us);
    if (p)
        p->packets += f->packets;
    else
        probe_new(d, f, h);
}

/* ---- flows ---------------------------------------------------------------- */

static void flow_unlink(decoder *d, flow *f)
{
    otab_del(&d->ft, f->h, f);
    if (f->prev) f->prev->next = f->next; else d->head = f->next;
    if (f->next) f->next->prev = f->prev; else d->tail = f->prev;
    d->nflows--;
    d->bytes -= f->len;
}

static void flow_touch(decoder *d, flow *f)
{
    f->seen = ++d->tick;
    if (d->tail == f)
        return;
    if (f->prev) f->prev->next = f->next; else d->head = f->next;
    f->next->prev = f->prev;
    f->prev = d->tail;
    f->next = NULL;
    d->tail->next = f;
    d->tail = f;
}

/* A flow is over: a session event, or a SYN probe for the aggregator. */
static void flow_finish(decoder *d, flow *f)
{
    flow_unlink(d, f);
    if (!f->handshake) {
        probe_add(d, f);
    } else if (!skipped(d, 6, f->k.dport)) {
        tr_event e;
        fill_event(d, &e, &f->k, f->first_us, "tcp");
        e.handshake = true;
        e.ip_id = f->ip_id;
        e.ttl = f->ttl;
        e.tcp_window = f->win;
        e.tcp_flags = f->flags;
        e.tcp_seq = f->seq;
        int mss = -1;
        tcp_options(f->opt, f->optlen, e.tcp_options, sizeof e.tcp_options, &mss);
        e.packets = f->packets;
        tr_sensor_parse(&e, f->buf, f->len);
        const char *s = fingerprint(f, e.tcp_options, mss);
        if (s && !tr_event_get(&e, "scanner"))
            tr_event_set_static(&e, "scanner", s);
        emit(d, &e);
    }
    free(f->buf);
    pool_put(&d->flows, f);
}

static flow *flow_find(decoder *d, const addr_key *k, uint64_t h, int *from_client)
{
    for (size_t i = h & d->ft.mask; d->ft.s[i].p; i = (i + 1) & d->ft.mask) {
        flow *f = d->ft.s[i].p;
        if (d->ft.s[i].h != h || f->k.family != k->family)
            continue;
        if (same_flow(&f->k, k)) {
            *from_client = 1;
            return f;
        }
        if (f->k.sport == k->dport && f->k.dport == k->sport &&
            memcmp(f->k.src, k->dst, 16) == 0 && memcmp(f->k.dst, k->src, 16) == 0) {
            *from_client = 0;
            return f;
        }
    }
    return NULL;
}

/* ---- SYN-only flows ------------------------------------------------------- */

#define RING_MIN 4096u

static void syn_key(const syn *s, addr_key *k)
{
    memset(k, 0, sizeof *k);
    k->family = 4;
    memcpy(k->src, s->src, 4);
    memcpy(k->dst, s->dst, 4);
    k->sport = s->sport;
    k->dport = s->dport;
}

/* What probe_add and fingerprint read of a flow, and no more. */
static void syn_flow(const syn *s, flow *f)
{
    syn_key(s, &f->k);
    f->first_us = s->first_us;
    f->ip_id = s->ip_id;
    f->ttl = s->ttl;
    f->win = s->win;
    f->flags = s->flags;
    f->seq = s->seq;
    f->ack = s->ack;
    f->optlen = s->optlen;
    memcpy(f->opt, s->opt, s->optlen);
    f->packets = 1;
}

/* A full ring is rewritten with its live entries only, in a ring twice the
 * size if they are more than half of it, and its index rebuilt: dead entries
 * (flows that went on to a second packet) cannot pile up behind an old SYN. */
static void ring_make_room(decoder *d)
{
    uint32_t cap = !d->rcap ? RING_MIN : d->nsyn * 2 > d->rcap ? d->rcap * 2 : d->rcap;
    void *mem = tr_xmalloc((size_t)cap * sizeof(syn) + 63);
    syn *r = (syn *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
    memset(d->ct, 0, CT_BUCKETS * sizeof *d->ct);
    uint32_t n = 0;
    for (uint32_t i = 0; i < d->rlen; i++) {
        const syn *s = &d->ring[(d->rhead + i) & (d->rcap - 1)];
        if (!s->live)
            continue;
        r[n] = *s;
        ct_put(d->ct, CT_BUCKETS - 1,
               (uint32_t)flow_hash4(ip4(s->src), s->sport, ip4(s->dst), s->dport), n);
        n++;
    }
    free(d->ring_mem);
    d->ring_mem = mem;
    d->ring = r;
    d->rcap = cap;
    d->rhead = 0;
    d->rlen = n;
}

static void syn_add(decoder *d, const addr_key *k, uint64_t h, int64_t t, int32_t ip_id,
                    int32_t ttl, const uint8_t *tcp, size_t optlen)
{
    if (d->rlen == d->rcap)
        ring_make_room(d);
    uint32_t pos = (d->rhead + d->rlen++) & (d->rcap - 1);
    syn *s = &d->ring[pos];
    s->seen = ++d->tick;
    s->first_us = t;
    memcpy(s->src, k->src, 4);
    memcpy(s->dst, k->dst, 4);
    s->sport = k->sport;
    s->dport = k->dport;
    s->seq = rd32(tcp + 4);
    s->ack = rd32(tcp + 8);
    s->ip_id = (uint16_t)ip_id;
    s->win = (uint16_t)rd16(tcp + 14);
    s->ttl = (uint8_t)ttl;
    s->flags = tcp[13];
    s->optlen = (uint8_t)optlen;
    s->live = 1;
    /* Whole words (hl is a multiple of 4): rep movsb's start-up cost was a
     * tenth of the packet. */
    for (size_t i = 0; i < optlen; i += 4)
        memcpy(s->opt + i, tcp + 20 + i, 4);
    ct_put(d->ct, CT_BUCKETS - 1, (uint32_t)h, pos);
    d->nsyn++;
    d->nflows++;
}

static syn *syn_find(const decoder *d, const addr_key *k, uint64_t h, int *from_client)
{
    uint32_t tag = (uint32_t)h;
    for (uint32_t b = tag & (CT_BUCKETS - 1);; b = (b + 1) & (CT_BUCKETS - 1)) {
        const cbucket *c = &d->ct[b];
        for (unsigned m = ct_match(c->tag, tag); m; m &= m - 1) {
            int i = __builtin_ctz(m);
            if (!c->pos[i])
                continue;
            syn *s = &d->ring[c->pos[i] - 1];
            if (s->sport == k->sport && s->dport == k->dport && memcmp(s->src, k->src, 4) == 0 &&
                memcmp(s->dst, k->dst, 4) == 0) {
                *from_client = 1;
                return s;
            }
            if (s->sport == k->dport && s->dport == k->sport && memcmp(s->src, k->dst, 4) == 0 &&
                memcmp(s->dst, k->src, 4) == 0) {
                *from_client = 0;
                return s;
            }
        }
        if (!c->over)
            return NULL;
    }
}

/* The oldest live SYN-only flow; dead entries at the head go. */
static syn *syn_head(decoder *d)
{
    while (d->rlen && !d->ring[d->rhead].live) {
        d->rhead = (d->rhead + 1) & (d->rcap - 1);
        d->rlen--;
    }
    return d->rlen ? &d->ring[d->rhead] : NULL;
}

/* The flow's second packet: it becomes a full flow, in the age order where
 * its SYN was (the packet's touch moves it to the end). */
static flow *syn_promote(decoder *d, syn *s, uint64_t h)
{
    flow *f = pool_get(&d->flows);
    memset(f, 0, sizeof *f);
    syn_flow(s, f);
    f->h = h;
    f->last_us = s->first_us;
    f->next_seq = s->seq + 1;
    f->seen = s->seen;
    ct_del(d->ct, CT_BUCKETS - 1, (uint32_t)h, (uint32_t)(s - d->ring));
    s->live = 0;
    d->nsyn--;
    otab_put(&d->ft, h, f);
    f->next = NULL;
    f->prev = d->tail;
    if (d->tail) d->tail->next = f; else d->head = f;
    d->tail = f;
    return f;
}

/* A SYN-only flow is over: a probe for the aggregator, as flow_finish. */
static void syn_finish(decoder *d, syn *s)
{
    if (d->rlen > 8) {
        /* SYNs idle out in bursts too (a gap in the capture's time): each
         * asks for the buckets of the one 8 behind it. */
        const syn *n = &d->ring[(d->rhead + 8) & (d->rcap - 1)];
        uint32_t nsrc = ip4(n->src);
        __builtin_prefetch(
            &d->ct[flow_hash4(nsrc, n->sport, ip4(n->dst), n->dport) & (CT_BUCKETS - 1)]);
        __builtin_prefetch(&d->pi[(uint32_t)mix64(end_word4(nsrc, n->dport) + 4) & d->pimask]);
    }
    uint32_t src = ip4(s->src);
    ct_del(d->ct, CT_BUCKETS - 1, (uint32_t)flow_hash4(src, s->sport, ip4(s->dst), s->dport),
           (uint32_t)(s - d->ring));
    s->live = 0;
    d->nsyn--;
    d->nflows--;
    d->rhead = (d->rhead + 1) & (d->rcap - 1);   /* it is the head */
    d->rlen--;
    /* probe_add without building a flow: most SYNs join a probe. */
    uint8_t key_src[16] = {0};
    memcpy(key_src, s->src, 4);
    uint64_t h = mix64(end_word4(src, s->dport) + 4);
    probe *join = probe_find(d, 4, key_src, s->dport, h, s->first_us);
    if (join) {
        join->packets++;
        return;
    }
    flow f;
    syn_flow(s, &f);
    probe_new(d, &f, h);
}

/* The oldest flow of either kind: the ring's head or the full list's. */
static bool oldest(decoder *d, syn **s, flow **f)
{
    *s = syn_head(d);
    *f = d->head;
    if (*s && *f) {
        if ((*s)->seen < (*f)->seen)
            *f = NULL;
        else
            *s = NULL;
    }
    return *s || *f;
}

static void prefetch_record(const void *p, size_t size)
{
    for (size_t i = 0; i < size; i += 64)
        __builtin_prefetch((const char *)p + i);
}

/* A SYN scan makes every packet a new flow, so nearly every packet also ends
 * the oldest flow (FLOWS_MAX) and, a window later, its probe: records and
 * slots last touched tens of thousands of packets ago. The next ones to go
 * are known, so their memory is asked for a packet early: the record after
 * the next, and the next's table slots. */
static void prefetch_next(const decoder *d)
{
    const flow *f = d->head;
    if (f && !f->handshake) {
        /* Its probe bucket was asked for a packet ago: now the probes it names. */
        uint32_t tag = (uint32_t)probe_hash(&f->k);
        const cbucket *c = &d->pi[tag & d->pimask];
        for (unsigned m = ct_match(c->tag, tag); m; m &= m - 1)
            if (c->pos[__builtin_ctz(m)])
                __builtin_prefetch(&d->pr[c->pos[__builtin_ctz(m)] - 1]);
    }
    for (int i = 0; f && i < 2; i++, f = f->next) {
        __builtin_prefetch(&d->ft.s[f->h & d->ft.mask]);
        if (!f->handshake)
            __builtin_prefetch(&d->pi[(uint32_t)probe_hash(&f->k) & d->pimask]);
    }
    if (f)
        prefetch_record(f, sizeof *f);
    if (d->rlen > 4) {
        /* The ring's entries come in order; their index bucket and probe slot
         * do not: asked for four flows ahead (two to eight measured the same
         * within the noise, none 8% slower). */
        const syn *s = &d->ring[(d->rhead + 4) & (d->rcap - 1)];
        uint32_t src = ip4(s->src);
        __builtin_prefetch(&d->ct[flow_hash4(src, s->sport, ip4(s->dst), s->dport) & (CT_BUCKETS - 1)]);
        __builtin_prefetch(&d->pi[(uint32_t)mix64(end_word4(src, s->dport) + 4) & d->pimask]);
        if (d->rlen > 16)
            __builtin_prefetch(&d->ring[(d->rhead + 16) & (d->rcap - 1)]);
    }
    /* The next probes to go: their index buckets (the entries are sequential). */
    for (uint32_t i = 0; i < 2 && i < d->pn; i++)
        __builtin_prefetch(&d->pi[d->pr[(d->phd + i) & (d->pcap_ - 1)].tag & d->pimask]);
}

/* Idle flows end; probes whose window closed go out. Time is the capture's. */
static void expire(decoder *d, int64_t now)
{
    syn *s;
    flow *f;
    while (oldest(d, &s, &f) && (now - (s ? s->first_us : f->last_us) > FLOW_IDLE_US ||
                                 d->nflows > FLOWS_MAX || d->bytes > FLOW_BYTES_MAX)) {
        if (s)
            syn_finish(d, s);
        else
            flow_finish(d, f);
    }
    while (d->pn && now - d->pr[d->phd].first_us > SYN_WINDOW_US)
        probe_flush(d);
    prefetch_next(d);
}

/* The option kinds in order, "2,4,8,1,3", without printf (one per SYN). */
static void tcp_options(const uint8_t *o, size_t n, char *out, size_t outsz, int *mss)
{
    size_t k = 0;
    out[0] = 0;
    for (size_t i = 0; i < n;) {
        uint8_t kind = o[i];
        if (k + 5 < outsz) {
            char dig[3];
            int nd = 0;
            unsigned v = kind;
            do {
                dig[nd++] = (char)('0' + v % 10);
                v /= 10;
            } while (v);
            if (k)
                out[k++] = ',';
            while (nd)
                out[k++] = dig[--nd];
            out[k] = 0;
        }
        if (kind == 0)
            break;
        if (kind == 1) {
            i++;
            continue;
        }
        if (i + 1 >= n || o[i + 1] < 2)
            break;
        if (kind == 2 && o[i + 1] == 4 && i + 4 <= n)
            *mss = (int)rd16(o + i + 2);
        i += o[i + 1];
    }
}

typedef struct pkt {
    addr_key k;
    int32_t ip_id, ttl;
    const uint8_t *l4;
    size_t l4len;
    int proto;
} pkt;

static void on_tcp(decoder *d, const pkt *p, int64_t t)
{
    if (p->l4len < 20)
        return;
    const uint8_t *h = p->l4;
    size_t hl = (size_t)(h[12] >> 4) * 4;
    if (hl < 20 || hl > p->l4len)
        hl = p->l4len < 20 ? p->l4len : 20;
    addr_key k = p->k;
    k.sport = (uint16_t)rd16(h);
    k.dport = (uint16_t)rd16(h + 2);
    uint32_t seq = rd32(h + 4), ack = rd32(h + 8);
    int flags = h[13];
    const uint8_t *data = h + hl;
    size_t dlen = p->l4len - hl;
    int from_client = 0;
    uint64_t fh = flow_hash(&k);
    flow *f = NULL;
    if (k.family == 4) {
        syn *s = syn_find(d, &k, fh, &from_client);
        if (s)
            f = syn_promote(d, s, fh);
    }
    if (!f && d->ft.n)
        f = flow_find(d, &k, fh, &from_client);
    if (!f) {
        if ((flags & 0x12) != 0x02)   /* only a SYN starts a flow */
            return;
        /* A SYN with FIN or RST is over at once: the full path finishes it. */
        if (k.family == 4 && hl - 20 <= SYN_OPT_MAX && !(flags & 0x05)) {
            syn_add(d, &k, fh, t, p->ip_id, p->ttl, h, hl - 20);
            return;
        }
        f = pool_get(&d->flows);
        memset(f, 0, sizeof *f);
        f->h = fh;
        f->k = k;
        f->first_us = t;
        f->ip_id = p->ip_id;
        f->ttl = p->ttl;
        f->win = (int32_t)rd16(h + 14);
        f->flags = flags;
        f->seq = seq;
        f->ack = ack;
        f->optlen = (uint8_t)(hl - 20);   /* at most 40: hl is at most 60 */
        memcpy(f->opt, h + 20, f->optlen);
        f->next_seq = seq + 1;
        otab_put(&d->ft, fh, f);
        f->prev = d->tail;
        if (d->tail) d->tail->next = f; else d->head = f;
        d->tail = f;
        d->nflows++;
        from_client = 1;
        dlen = 0;
    }
    f->last_us = t;
    flow_touch(d, f);
    if (from_client) {
        f->packets++;
        if ((flags & 0x10) && f->synack && !(flags & 0x04))
            f->handshake = true;
        if (dlen && f->handshake) {
            /* In order only; a retransmission's new tail still counts. */
            uint32_t off = f->next_seq - seq;
            if (off < dlen && f->len < TR_EVENT_PAYLOAD_MAX) {
                size_t take = dlen - off;
                if (take > TR_EVENT_PAYLOAD_MAX - f->len)
                    take = TR_EVENT_PAYLOAD_MAX - f->len;
                f->buf = tr_xrealloc(f->buf, f->len + take);
                memcpy(f->buf + f->len, data + off, take);
                f->len += take;
                d->bytes += take;
                f->next_seq = seq + (uint32_t)dlen;
            }
        }
        if (flags & 0x05)   /* FIN or RST from the client: it sends nothing more */
            f->done = true;
    } else {
        if ((flags & 0x12) == 0x12)
            f->synack = true;
        if (flags & 0x04)
            f->done = true;
    }
    if (f->done)
        flow_finish(d, f);
}

static void on_udp(decoder *d, const pkt *p, int64_t t)
{
    if (p->l4len < 8)
        return;
    tr_event e;
    addr_key k = p->k;
    k.sport = (uint16_t)rd16(p->l4);
    k.dport = (uint16_t)rd16(p->l4 + 2);
    if (skipped(d, 17, k.dport))
        return;
    fill_event(d, &e, &k, t, "udp");
    e.handshake = true;
    e.ip_id = p->ip_id;
    e.ttl = p->ttl;
    tr_event_set_payload(&e, p->l4 + 8, p->l4len - 8);
    strcpy(e.proto, "raw");
    emit(d, &e);
}

/* IPv4/IPv6 to the transport header; a message when the packet is bad. */
static const char *decode_ip(const uint8_t *b, size_t n, pkt *p)
{
    memset(p, 0, sizeof *p);
    if (n < 1)
        return "empty IP packet";
    int v = b[0] >> 4;
    if (v == 4) {
        if (n < 20)
            return "IPv4 header truncated";
        size_t ihl = (size_t)(b[0] & 15) * 4, tot = rd16(b + 2);
        if (ihl < 20 || ihl > n)
            return "IPv4 header length invalid";
        if (tot < ihl)
            return "IPv4 total length invalid";
        if (tot > n)
            tot = n;   /* snapped capture: what is there */
        if (rd16(b + 6) & 0x1fff)
            return NULL;   /* a later fragment: no transport header */
        p->k.family = 4;
        memcpy(p->k.src, b + 12, 4);
        memcpy(p->k.dst, b + 16, 4);
        p->ip_id = (int32_t)rd16(b + 4);
        p->ttl = b[8];
        p->proto = b[9];
        p->l4 = b + ihl;
        p->l4len = tot - ihl;
        return NULL;
    }
    if (v == 6) {
        if (n < 40)
            return "IPv6 header truncated";
        size_t plen = rd16(b + 4), o = 40;
        if (40 + plen < n)
            n = 40 + plen;
        int nh = b[6];
        p->k.family = 6;
        memcpy(p->k.src, b + 8, 16);
        memcpy(p->k.dst, b + 24, 16);
        p->ip_id = -1;
        p->ttl = b[7];
        while (nh == 0 || nh == 43 || nh == 60 || nh == 44) {
            if (o + 8 > n)
                return "IPv6 extension header truncated";
            if (nh == 44 && (rd16(b + o + 2) & 0xfff8))
                return NULL;   /* later fragment */
            size_t el = nh == 44 ? 8 : ((size_t)b[o + 1] + 1) * 8;
            nh = b[o];
            o += el;
        }
        if (o > n)
            return "IPv6 extension header truncated";
        p->proto = nh;
        p->l4 = b + o;
        p->l4len = n - o;
        return NULL;
    }
    return "not an IPv4 or IPv6 packet";
}

/* The link layer down to IP: returns the offset of the IP header, or -1 for
 * non-IP frames (ARP, ...), -2 for a truncated frame. */
static long link_offset(int dlt, const uint8_t *b, size_t n)
{
    size_t o;
    uint32_t type;
    switch (dlt) {
    case DLT_EN10MB:
        if (n < 14)
            return -2;
        o = 12;
        type = rd16(b + o);
        while ((type == 0x8100 || type == 0x88a8) && o + 6 <= n) {
            o += 4;
            type = rd16(b + o);
        }
        o += 2;
        break;
    case DLT_LINUX_SLL:
        if (n < 16)
            return -2;
        type = rd16(b + 14);
        o = 16;
        break;
#ifdef DLT_LINUX_SLL2
    case DLT_LINUX_SLL2:
        if (n < 20)
            return -2;
        type = rd16(b);
        o = 20;
        break;
#endif
    case DLT_NULL:
    case DLT_LOOP:
        if (n < 4)
            return -2;
        o = 4;
        type = (n > 4 && (b[4] >> 4) == 6) ? 0x86dd : 0x0800;
        break;
    case DLT_RAW:
#ifdef DLT_IPV4
    case DLT_IPV4:
    case DLT_IPV6:
#endif
        return 0;
    default:
        return -1;
    }
    if (type != 0x0800 && type != 0x86dd)
        return -1;
    return o > n ? -2 : (long)o;
}

static void bad(decoder *d, uint64_t no, long off, const char *msg)
{
    if (off < 0) {   /* live capture: no file offset */
        d->st->bad++;
        tr_log(TR_LOG_DEBUG, "capture: packet %llu: %s", (unsigned long long)no, msg);
        return;
    }
    if (d->st->bad++ == 0)
        snprintf(d->st->first_bad, sizeof d->st->first_bad, "packet %llu at byte offset %ld: %s",
                 (unsigned long long)no, off, msg);
    tr_log(TR_LOG_WARN, "pcap: packet %llu at byte offset %ld: %s", (unsigned long long)no, off,
           msg);
}

tr_pcap_decoder *tr_pcap_decoder_new(const char *sensor_name, tr_event_sink sink, void *ctx,
                                     tr_import_stats *st, tr_error *err)
{
    decoder *d = tr_xcalloc(1, sizeof *d);
    d->sensor = sensor_name && *sensor_name ? sensor_name : "pcap";
    d->sensor_len = strlen(d->sensor);
    if (d->sensor_len >= sizeof ((tr_event *)0)->sensor)
        d->sensor_len = sizeof ((tr_event *)0)->sensor - 1;
    /* The full flows' table grows from small (a scan has few full flows;
     * the SYN-only flows' index never grows: at most FLOWS_MAX + 1 in
     * CT_BUCKETS). The probes' ring and index grow too. */
    otab_init(&d->ft, FLOW_FULL_SLOTS_MIN, 50);
    d->ct_mem = tr_xcalloc(1, CT_BUCKETS * sizeof *d->ct + 63);
    d->ct = (cbucket *)(((uintptr_t)d->ct_mem + 63) & ~(uintptr_t)63);
    probe_grow(d);
    d->flows.size = sizeof(flow);
    d->sink = sink;
    d->ctx = ctx;
    d->st = st;
    d->err = err;
    return d;
}

int tr_pcap_decoder_skip_port(tr_pcap_decoder *d, int transport, uint16_t port)
{
    if (d->nskip >= sizeof d->skip / sizeof d->skip[0])
        return -1;
    d->skip[d->nskip].transport = transport;
    d->skip[d->nskip].port = port;
    d->nskip++;
    return 0;
}

int tr_pcap_decoder_packet(tr_pcap_decoder *d, int dlt, const struct pcap_pkthdr *h,
                           const uint8_t *b, long off)
{
    d->st->records++;
    int64_t t = (int64_t)h->ts.tv_sec * 1000000 + h->ts.tv_usec;
    long lo = link_offset(dlt, b, h->caplen);
    if (lo == -2) {
        bad(d, d->st->records, off, "link-layer header truncated");
        return d->failed ? -1 : 0;
    }
    if (lo < 0)
        return 0;
    pkt p;
    const char *msg = decode_ip(b + lo, h->caplen - (size_t)lo, &p);
    if (msg) {
        bad(d, d->st->records, off, msg);
        return d->failed ? -1 : 0;
    }
    if (p.proto == 6)
        on_tcp(d, &p, t);
    else if (p.proto == 17)
        on_udp(d, &p, t);
    expire(d, t);
    return d->failed ? -1 : 0;
}

void tr_pcap_decoder_tick(tr_pcap_decoder *d, int64_t now_us)
{
    expire(d, now_us);
}

int tr_pcap_decoder_free(tr_pcap_decoder *d)
{
    if (!d)
        return 0;
    syn *s;
    flow *f;
    while (oldest(d, &s, &f)) {
        if (s)
            syn_finish(d, s);
        else
            flow_finish(d, f);
    }
    while (d->pn)
        probe_flush(d);
    int failed = d->failed;
    pool_free(&d->flows);
    free(d->ft.s);
    free(d->pr_mem);
    free(d->pi_mem);
    free(d->ct_mem);
    free(d->ring_mem);
    free(d);
    return failed ? -1 : 0;
}

/* Classic pcap's records sit back to back after a 24-byte header, so each
 * one's offset is known without asking the stream (ftell is a system call per
 * packet); pcapng's blocks are not, and ftell stays. */
static bool classic_pcap(const unsigned char m[4])
{
    static const unsigned char magics[][4] = {{0xd4, 0xc3, 0xb2, 0xa1}, {0xa1, 0xb2, 0xc3, 0xd4},
                                              {0x4d, 0x3c, 0xb2, 0xa1}, {0xa1, 0xb2, 0x3c, 0x4d}};
    for (size_t i = 0; i < sizeof magics / sizeof magics[0]; i++)
        if (memcmp(m, magics[i], 4) == 0)
            return true;
    return false;
}

#define READ_CHUNK (4u << 20)
#define RECORD_MAX (256u << 10)   /* libpcap's own bound on a record */

static uint32_t rd32x(const uint8_t *p, bool swapped)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return swapped ? __builtin_bswap32(v) : v;
}

/* Classic pcap's records, read in large chunks straight from the stream (no
 * per-packet copy or call into libpcap); libpcap has read and checked the
 * file header. Returns when the file ends, a record is broken, or the sink
 * stops. */
static void read_classic(decoder *d, pcap_t *pc, FILE *fp, bool nanos, tr_import_stats *st)
{
    bool swapped = pcap_is_swapped(pc) == 1;
    int dlt = pcap_datalink(pc);
    uint8_t *buf = tr_xmalloc(READ_CHUNK);
    size_t have = 0, pos = 0;
    long off = 24;
    bool eof = false;
    for (;;) {
        if (have - pos < 16 && !eof) {
            memmove(buf, buf + pos, have - pos);
            have -= pos;
            pos = 0;
            size_t r = fread(buf + have, 1, READ_CHUNK - have, fp);
            have += r;
            eof = r == 0;
            continue;
        }
        if (have - pos == 0)
            break;
        if (have - pos < 16) {
            st->records++;
            bad(d, st->records, off, "truncated record header");
            break;
        }
        const uint8_t *rh = buf + pos;
        uint32_t caplen = rd32x(rh + 8, swapped);
        if (caplen > RECORD_MAX) {
            st->records++;
            char msg[96];
            snprintf(msg, sizeof msg, "invalid captured length %u (at most %u)", caplen,
                     RECORD_MAX);
            bad(d, st->records, off, msg);
            break;
        }
        if (have - pos < 16 + (size_t)caplen) {
            if (!eof) {
                memmove(buf, buf + pos, have - pos);
                have -= pos;
                    pos = 0;
                size_t r = fread(buf + have, 1, READ_CHUNK - have, fp);
                have += r;
                eof = r == 0;
                continue;
            }
            st->records++;
            char msg[96];
            snprintf(msg, sizeof msg, "truncated record: %u captured bytes, only %zu in the file",
                     caplen, have - pos - 16);
            bad(d, st->records, off, msg);
            break;
        }
        struct pcap_pkthdr h;
        h.ts.tv_sec = rd32x(rh, swapped);
        uint32_t frac = rd32x(rh + 4, swapped);
        h.ts.tv_usec = nanos ? frac / 1000 : frac;
        h.caplen = caplen;
        h.len = rd32x(rh + 12, swapped);
        if (tr_pcap_decoder_packet(d, dlt, &h, rh + 16, off) != 0)
            break;
        pos += 16 + (size_t)caplen;
        off += 16 + (long)caplen;
    }
    free(buf);
}

int tr_pcap_import_fp(FILE *fp, const char *name, const char *sensor_name, tr_event_sink sink,
                      void *ctx, tr_import_stats *st, tr_error *err)
{
    memset(st, 0, sizeof *st);
    unsigned char magic[4] = {0};
    bool classic = fread(magic, 1, 4, fp) == 4 && classic_pcap(magic);
    bool nanos = classic && (magic[0] == 0x4d || magic[3] == 0x4d);
    if (fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        return tr_fail_errno(err, "%s: cannot seek", name);
    }
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    pcap_t *pc = pcap_fopen_offline(fp, ebuf);
    if (!pc) {
        fclose(fp);
        return tr_fail(err, "%s: not a pcap or pcapng file: %s", name, ebuf);
    }
    decoder *d = tr_pcap_decoder_new(sensor_name, sink, ctx, st, err);
    int dlt = pcap_datalink(pc);
    /* libpcap read exactly the 24-byte header of a classic file. */
    if (classic && ftell(fp) == 24) {
        read_classic(d, pc, fp, nanos, st);
    } else {
        for (;;) {
            long off = ftell(pcap_file(pc));
            struct pcap_pkthdr *h;
            const u_char *b;
            int r = pcap_next_ex(pc, &h, &b);
            if (r == PCAP_ERROR_BREAK)
                break;
            if (r != 1) {
                /* libpcap cannot resynchronise after a broken record header. */
                st->records++;
                bad(d, st->records, off, pcap_geterr(pc));
                break;
            }
            if (tr_pcap_decoder_packet(d, dlt, h, b, off) != 0)
                break;
        }
    }
    int failed = tr_pcap_decoder_free(d);
    pcap_close(pc);
    if (failed) {
        tr_error_prefix(err, name);
        return -1;
    }
    return 0;
}

int tr_pcap_import(const char *path, const char *sensor_name, tr_event_sink sink, void *ctx,
                   tr_import_stats *st, tr_error *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        memset(st, 0, sizeof *st);
        return tr_fail_errno(err, "cannot open %s", path);
    }
    return tr_pcap_import_fp(fp, path, sensor_name, sink, ctx, st, err);
}
