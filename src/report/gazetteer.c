/* The gazetteer: every name and alias of the knowledge base's actors,
 * software and campaigns, bucketed by first byte so a document is matched
 * in one pass; once filled it is only read, so threads may share it. Boundaries are checked only against ASCII letters and digits:
 * Japanese text puts particles right after a name ("Contiが"). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "report/report.h"

typedef struct gz_entry {
    char *name;           /* as spelled in the knowledge base */
    size_t len;
    bool exact_case;      /* single words must keep their case: "Page", "Net" */
    size_t obj;           /* index into objs */
} gz_entry;

typedef struct gz_obj {
    char *id, *type, *name;
} gz_obj;

struct tr_gazetteer {
    gz_obj *objs;
    size_t nobjs, capobjs;
    gz_entry *entries;
    size_t n, cap;
    /* Entry indexes by the first two bytes lowercased, longest first: at a
     * word start only names that begin the same way are compared. */
    size_t **bucket;      /* NBUCKETS */
    size_t *nbucket;
};

#define NBUCKETS 65536

static unsigned bucket_of(const char *p)
{
    return (unsigned)tolower((unsigned char)p[0]) << 8 | (unsigned)tolower((unsigned char)p[1]);
}

tr_gazetteer *tr_gazetteer_new(void)
{
    tr_gazetteer *g = tr_xcalloc(1, sizeof(tr_gazetteer));
    g->bucket = tr_xcalloc(NBUCKETS, sizeof *g->bucket);
    g->nbucket = tr_xcalloc(NBUCKETS, sizeof *g->nbucket);
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
        free(g->bucket[b]);
    free(g->bucket);
    free(g->nbucket);
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
    for (size_t i = 0; i < g->n; i++)
        if (g->entries[i].obj == o && strcmp(g->entries[i].name, name) == 0)
            return;
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 256;
        g->entries = tr_xrealloc(g->entries, g->cap * sizeof *g->entries);
    }
    gz_entry *e = &g->entries[g->n++];
    e->name = tr_xstrdup(name);
    e->len = len;
    e->exact_case = !space && !digit;
    e->obj = o;
    /* Kept longest first per bucket, so the first hit is the longest match. */
    unsigned c = bucket_of(name);
    size_t nb = g->nbucket[c], at = nb;
    g->bucket[c] = tr_xrealloc(g->bucket[c], (nb + 1) * sizeof(size_t));
    while (at > 0 && g->entries[g->bucket[c][at - 1]].len < len)
        at--;
    memmove(g->bucket[c] + at + 1, g->bucket[c] + at, (nb - at) * sizeof(size_t));
    g->bucket[c][at] = g->n - 1;
    g->nbucket[c] = nb + 1;
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
        for (size_t k = 0; k < g->nbucket[b]; k++) {
            const gz_entry *e = &g->entries[g->bucket[b][k]];
            if (e->len > len - i)
                continue;
            bool same = e->exact_case ? memcmp(text + i, e->name, e->len) == 0
                                      : strncasecmp(text + i, e->name, e->len) == 0;
            if (!same)
                continue;
            /* The name must end a word too (unless it ends with punctuation). */
            if (i + e->len < len && ascii_word((unsigned char)text[i + e->len]) &&
                ascii_word((unsigned char)e->name[e->len - 1]))
                continue;
            hit = g->bucket[b][k];
            break;
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
}
