/* similar's own shared definitions. */
#ifndef TRAWL_SIMILAR_INTERNAL_H
#define TRAWL_SIMILAR_INTERNAL_H

#include "similar/similar.h"

enum { SIM_TLSH = 1, SIM_SSDEEP = 2, SIM_EXACT = 3 };

/* Measured by bench/similar.sh (docs/similar.md). */
#define SIM_DEFAULT_SLACK 0
/* The graph: each entry's SIM_GRAPH_K nearest plus as many entries that
 * have it among theirs; a query walks it with a pool of SIM_DEFAULT_EFFORT. */
#define SIM_GRAPH_K 12
#define SIM_GRAPH_DEGREE (2 * SIM_GRAPH_K)
#define SIM_GRAPH_PIVOTS 32
#define SIM_DEFAULT_EFFORT 12
#define SIM_BUILD_EFFORT 64
/* Samples added since the build that queries compare one by one before
 * tr_similar_refresh rebuilds the file. */
#define SIM_TAIL_MAX 256

/* One VP-tree node as stored in the file (fixed layout, host byte order). */
typedef struct sim_vp_node {
    int64_t id;
    int32_t mu;
    uint32_t mid;
    tr_tlsh_code code;
    uint32_t pad;
} sim_vp_node;

typedef struct sim_ng_entry {
    int64_t id;
    uint32_t off;             /* of its ssdeep text in the blob */
    uint32_t bs;
} sim_ng_entry;

#define SIM_SSDEEP_SIG 64
#define SIM_SSDEEP_KEYS (2 * SIM_SSDEEP_SIG + 1)

typedef struct sim_ssdeep {
    uint32_t bs;
    char s1[SIM_SSDEEP_SIG], s2[SIM_SSDEEP_SIG];
    size_t n1, n2;
} sim_ssdeep;

int sim_ssdeep_parse(const char *v, sim_ssdeep *out);
size_t sim_ssdeep_keys(const sim_ssdeep *x, uint32_t *keys);

struct tr_simix {
    size_t kind;
    int type;
    int slack;
    int effort;               /* graph pool size; 0: the VP-tree alone */
    int64_t last_id, count;   /* the store as the index saw it */
    /* TLSH */
    const sim_vp_node *nodes;
    const uint32_t *graph;    /* n * SIM_GRAPH_DEGREE, UINT32_MAX: none */
    /* ssdeep */
    const sim_ng_entry *ents;
    const char *blob;
    size_t bloblen;
    const uint32_t *keys, *idx;
    size_t npost;
    size_t n;
    /* where the arrays live: a mapped file or our own memory */
    tr_map map;
    sim_vp_node *own_nodes;
    sim_ng_entry *own_ents;
    char *own_blob;
    uint32_t *own_keys, *own_idx, *own_graph;
    /* samples added after the index was built */
    tr_hash_value *tail;
    tr_tlsh_code *tail_codes;
    unsigned char *tail_ok;
    size_t ntail;
    /* per-query scratch */
    uint32_t *stamp, gen;
    size_t work;
    char valbuf[80];
};

int sim_kind_type(size_t kind);

void sim_build_tlsh(tr_simix *ix, const tr_hash_value *v, size_t n);
void sim_build_ssdeep(tr_simix *ix, const tr_hash_value *v, size_t n);
void sim_set_tail(tr_simix *ix, tr_hash_value *tail, size_t n);
void sim_index_free_parts(tr_simix *ix);

#endif
