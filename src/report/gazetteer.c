/* The gazetteer: every name and alias of the knowledge base's actors,
 * software and campaigns, matched in one pass over a document; once filled
 * it is only read, so threads may share it. Boundaries are checked only
 * against ASCII letters and digits: Japanese text puts particles right
 * after a name ("Contiが"). */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "report/report.h"

typedef struct gz_entry {
    char *name;           /* as spelled in the knowledge base */
    size_t len;
    uint64_t fold;        /* hash of the name with ASCII letters lowercased */
    bool exact_case;      /* single words must keep their case: "Page", "Net" */
    size_t obj;           /* index into objs */
} gz_entry;

typedef struct gz_obj {
    char *id, *type, *name;
} gz_obj;

/* At a word start, the names that could begin there are those of its first
 * two bytes' bucket; each of the bucket's name lengths, longest first, is
 * one hash lookup of that many bytes of text. The cost of a position is
 * thus bounded by the lengths, not by how many names share a beginning
 * (20,000 names starting "ab" used to be 20,000 compares per "ab" word). */
struct tr_gazetteer {
    gz_obj *objs;
    size_t nobjs, capobjs;
    gz_entry *entries;
    size_t n, cap;
    size_t **lens;        /* NBUCKETS: distinct name lengths, longest first */
    size_t *nlens;
    size_t maxlen;
    size_t *table;        /* open addressing: entry index + 1, 0 empty */
    size_t tcap;          /* a power of two, at least twice n */
};

#define NBUCKETS 65536

static unsigned bucket_of(const char *p)
{
    return (unsigned)tolower((unsigned char)p[0]) << 8 | (unsigned)tolower((unsigned char)p[1]);
}

/* FNV-1a over ASCII-lowercased bytes: fold_step from the previous prefix's
 * value gives every prefix's hash in one pass over the text. */
#define FOLD_SEED 0xcbf29ce484222325ull
static inline uint64_t fold_step(uint64_t h, unsigned char c)
{
    return (h ^ (uint64_t)tolower(c)) * 0x100000001b3ull;
}

static uint64_t fold_hash(const char *p, size_t n)
{
    uint64_t h = FOLD_SEED;
    for (size_t i = 0; i < n; i++)
        h = fold_step(h, (unsigned char)p[i]);
    return h;
}

static void table_put(size_t *table, size_t tcap, uint64_t fold, size_t index)
{
    size_t at = (size_t)fold & (tcap - 1);
    while (table[at])
        at = (at + 1) & (tcap - 1);
    table[at] = index + 1;
}

static void table_grow(tr_gazetteer *g)
{
    size_t cap = g->tcap ? g->tcap * 2 : 1024;
    size_t *t = tr_xcalloc(cap, sizeof *t);
    for (size_t i = 0; i < g->n; i++)
        table_put(t, cap, g->entries[i].fold, i);
    free(g->table);
    g->table = t;
    g->tcap = cap;
}

tr_gazetteer *tr_gazetteer_new(void)
{
    tr_gazetteer *g = tr_xcalloc(1, sizeof(tr_gazetteer));
    g->lens = tr_xcalloc(NBUCKETS, sizeof *g->lens);
    g->nlens = tr_xcalloc(NBUCKETS, sizeof *g->nlens);
    return g;
}

size_t tr_gazetteer_size(const tr_gazetteer *g)
{
    return g->n;
}

void tr_gazetteer_free(tr_gazetteer *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++)
        free(g->entries[i].name);
    for (size_t i = 0; i < g->nobjs; i++) {
        free(g->objs[i].id);
        free(g->objs[i].type);
        free(g->objs[i].name);
    }
    for (unsigned b = 0; b < NBUCKETS; b++)
        free(g->lens[b]);
    free(g->lens);
    free(g->nlens);
    free(g->table);
    free(g->entries);
    free(g->objs);
    free(g);
}

static size_t obj_index(tr_gazetteer *g, const char *id, const char *type, const char *canonical)
{
    if (g->nobjs && strcmp(g->objs[g->nobjs - 1].id, id) == 0)
        return g->nobjs - 1;
    if (g->nobjs == g->capobjs) {
        g->capobjs = g->capobjs ? g->capobjs * 2 : 64;
        g->objs = tr_xrealloc(g->objs, g->capobjs * sizeof *g->objs);
    }
    gz_obj *o = &g->objs[g->nobjs];
    o->id = tr_xstrdup(id);
    o->type = tr_xstrdup(type);
    o->name = tr_xstrdup(canonical);
    return g->nobjs++;
}

void tr_gazetteer_add(tr_gazetteer *g, const char *name, const char *id, const char *type,
                      const char *canonical)
{
    size_t len = strlen(name);
    /* Two-letter names ("at") would match everywhere. */
    if (len < 3)
        return;
    bool space = false, digit = false;
    for (size_t i = 0; i < len; i++) {
        space |= name[i] == ' ';
        digit |= isdigit((unsigned char)name[i]) != 0;
    }
    size_t o = obj_index(g, id, type, canonical);
    uint64_t fold = fold_hash(name, len);
    for (size_t at = g->tcap ? (size_t)fold & (g->tcap - 1) : 0; g->tcap && g->table[at];
         at = (at + 1) & (g->tcap - 1)) {
        const gz_entry *d = &g->entries[g->table[at] - 1];
        if (d->fold == fold && d->obj == o && strcmp(d->name, name) == 0)
            return;
    }
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 256;
        g->entries = tr_xrealloc(g->entries, g->cap * sizeof *g->entries);
    }
    gz_entry *e = &g->entries[g->n++];
    e->name = tr_xstrdup(name);
    e->len = len;
    e->fold = fold;
    e->exact_case = !space && !digit;
    e->obj = o;
    if (g->n * 2 > g->tcap)
        table_grow(g);
    else
        table_put(g->table, g->tcap, fold, g->n - 1);
    if (len > g->maxlen)
        g->maxlen = len;
    /* The bucket's lengths stay distinct and longest first. */
    unsigned c = bucket_of(name);
    size_t nl = g->nlens[c], at = 0;
    while (at < nl && g->lens[c][at] > len)
        at++;
    if (at < nl && g->lens[c][at] == len)
        return;
    g->lens[c] = tr_xrealloc(g->lens[c], (nl + 1) * sizeof(size_t));
    memmove(g->lens[c] + at + 1, g->lens[c] + at, (nl - at) * sizeof(size_t));
    g->lens[c][at] = len;
    g->nlens[c] = nl + 1;
}

typedef struct load_ctx {
    tr_gazetteer *g;
} load_ctx;

static void add_names(tr_gazetteer *g, json_t *arr, const char *id, const char *type,
                      const char *canonical)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (json_is_string(v))
            tr_gazetteer_add(g, json_string_value(v), id, type, canonical);
    }
}

static int load_row(void *arg, const tr_stix_row *row)
{
    load_ctx *c = arg;
    if (row->revoked)
        return 0;
    json_t *o = json_loadb(row->json, row->json_len, 0, NULL);
    if (!o)
        return 0;
    const char *name = json_string_value(json_object_get(o, "name"));
    /* Of identities only sectors (identity_class "class") are entities a
     * report names; organisations and individuals are authors, mostly. */
    const char *icls = json_string_value(json_object_get(o, "identity_class"));
    bool wanted = strcmp(row->type, "identity") != 0 || (icls && strcmp(icls, "class") == 0);
    /* ATT&CK marks deprecated objects; they would shadow the current ones. */
    if (name && wanted && !json_is_true(json_object_get(o, "x_mitre_deprecated"))) {
        tr_gazetteer_add(c->g, name, row->id, row->type, name);
        add_names(c->g, json_object_get(o, "aliases"), row->id, row->type, name);
        add_names(c->g, json_object_get(o, "x_mitre_aliases"), row->id, row->type, name);
    }
    json_decref(o);
    return 0;
}

int tr_gazetteer_load(tr_stix_db *db, tr_gazetteer **out, tr_error *err)
{
    static const char *const types[] = {"intrusion-set", "threat-actor", "malware", "tool",
                                        "campaign", "vulnerability", "location", "identity",
                                        NULL};
    tr_gazetteer *g = tr_gazetteer_new();
    load_ctx c = {g};
    tr_stix_query q = {0};
    q.types = types;
    q.versions = TR_STIX_LATEST;
    bool more;
    if (tr_stix_query_rows(db, &q, load_row, &c, &more, err) != 0) {
        tr_gazetteer_free(g);
        return -1;
    }
    *out = g;
    return 0;
}

void tr_entity_list_free(tr_entity_list *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

static bool ascii_word(unsigned char c)
{
    return c < 0x80 && (isalnum(c) || c == '_');
}

void tr_gazetteer_match(const tr_gazetteer *g, const char *text, size_t len, tr_entity_list *out)
{
    memset(out, 0, sizeof *out);
    if (g->n == 0)
        return;
    uint64_t *prefix = tr_xmalloc((g->maxlen + 1) * sizeof *prefix);
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)text[i];
        if (i > 0 && ascii_word((unsigned char)text[i - 1]) && ascii_word(c)) {
            i++;
            continue;
        }
        if (i + 1 >= len) {
            i++;
            continue;
        }
        unsigned b = bucket_of(text + i);
        size_t hit = SIZE_MAX;
        if (g->nlens[b]) {
            /* Every prefix's hash, up to the bucket's longest name. */
            size_t upto = g->lens[b][0] < len - i ? g->lens[b][0] : len - i;
            uint64_t h = FOLD_SEED;
            for (size_t k = 0; k < upto; k++)
                prefix[k + 1] = h = fold_step(h, (unsigned char)text[i + k]);
            for (size_t li = 0; li < g->nlens[b] && hit == SIZE_MAX; li++) {
                size_t l = g->lens[b][li];
                if (l > len - i)
                    continue;
                /* The name must end a word too (unless it ends with
                 * punctuation); its last byte is the text's, case aside. */
                if (i + l < len && ascii_word((unsigned char)text[i + l]) &&
                    ascii_word((unsigned char)text[i + l - 1]))
                    continue;
                /* Of equal names, the first added wins, as it always has. */
                for (size_t at = (size_t)prefix[l] & (g->tcap - 1); g->table[at];
                     at = (at + 1) & (g->tcap - 1)) {
                    size_t idx = g->table[at] - 1;
                    const gz_entry *e = &g->entries[idx];
                    if (e->fold != prefix[l] || e->len != l || idx >= hit)
                        continue;
                    bool same = e->exact_case ? memcmp(text + i, e->name, l) == 0
                                              : strncasecmp(text + i, e->name, l) == 0;
                    if (same)
                        hit = idx;
                }
            }
        }
        if (hit == SIZE_MAX) {
            i++;
            continue;
        }
        const gz_entry *e = &g->entries[hit];
        const gz_obj *o = &g->objs[e->obj];
        if (out->n == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 16;
            out->v = tr_xrealloc(out->v, out->cap * sizeof *out->v);
        }
        out->v[out->n++] = (tr_entity_hit){o->id, o->type, o->name, e->name, i, e->len};
        i += e->len;
    }
    free(prefix);
}
