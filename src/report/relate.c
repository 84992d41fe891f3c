/* What the gazetteer cannot know: names that look like new ransomware
 * (offered as candidates) and relationships the text states plainly
 * (offered as proposals). Both are rules over the text and the entity
 * hits, deliberately narrow: an analyst reviews each. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "report/report_internal.h"

static bool starts(const char *p, const char *end, const char *w)
{
    size_t n = strlen(w);
    return (size_t)(end - p) >= n && strncasecmp(p, w, n) == 0;
}

static bool ends(const char *begin, const char *p, const char *w)
{
    size_t n = strlen(w);
    return (size_t)(p - begin) >= n && strncasecmp(p - n, w, n) == 0;
}

static const char *const family_words[] = {
    "\xe3\x83\xa9\xe3\x83\xb3\xe3\x82\xb5\xe3\x83\xa0\xe3\x82\xa6\xe3\x82\xa7\xe3\x82\xa2", /* ランサムウェア */
    "\xe3\x83\x9e\xe3\x83\xab\xe3\x82\xa6\xe3\x82\xa7\xe3\x82\xa2",                         /* マルウェア */
    "ransomware", "malware", "locker", "ransom", NULL,
};

/* Bytes that may sit between a name and the word that calls it
 * ransomware: closing quotes, particles, commas, spaces. */
static size_t skip_glue_forward(const char *p, const char *end)
{
    static const char *const glue[] = {"\xe3\x80\x8d", "\xe3\x81\xaf", "\xe3\x80\x81", " ", "-",
                                       "\xe3\x83\xbb", "\"", "'", NULL};
    const char *q = p;
    for (int rounds = 0; rounds < 4; rounds++) {
        bool moved = false;
        for (size_t k = 0; glue[k]; k++)
            if (starts(q, end, glue[k])) {
                q += strlen(glue[k]);
                moved = true;
                break;
            }
        if (!moved)
            break;
    }
    return (size_t)(q - p);
}

static size_t skip_glue_back(const char *begin, const char *p)
{
    static const char *const glue[] = {"\xe3\x80\x8c", " ", "\"", "'", "the ", NULL};
    const char *q = p;
    for (int rounds = 0; rounds < 3; rounds++) {
        bool moved = false;
        for (size_t k = 0; glue[k]; k++)
            if (ends(begin, q, glue[k])) {
                q -= strlen(glue[k]);
                moved = true;
                break;
            }
        if (!moved)
            break;
    }
    return (size_t)(p - q);
}

static bool family_word_at(const char *p, const char *end)
{
    for (size_t k = 0; family_words[k]; k++)
        if (starts(p, end, family_words[k]))
            return true;
    return false;
}

/* Before a name only the ransomware words count: "Malware Bazaar" is a
 * service, "ransomware Macaw" a family. */
static bool family_word_before(const char *begin, const char *p)
{
    return ends(begin, p, family_words[0]) || ends(begin, p, "ransomware") ||
           ends(begin, p, family_words[1] /* マルウェア「X」 */) ;
}

/* Whether an entity hit overlaps [a, b). Tokens come in offset order, so
 * *h moves forward only: one pass over the hits for the whole text. */
static bool covered(const tr_entity_list *e, size_t *h, size_t a, size_t b)
{
    while (*h < e->n && e->v[*h].offset + e->v[*h].length <= a)
        (*h)++;
    return *h < e->n && e->v[*h].offset < b;
}

json_t *report_candidates(const char *text, size_t len, const tr_entity_list *ents)
{
    static const char *const stop[] = {"The", "This", "That", "New", "Ransom", "Ransomware",
                                       "Malware", "Gang", "Group", "Locker", "And", "Its",
                                       "Our", "Their", "Some", "Many", NULL};
    json_t *out = json_array();
    json_t *index = json_object();   /* name -> its entry in out */
    const char *end = text + len;
    size_t i = 0, h = 0;
    while (i < len) {
        unsigned char c = (unsigned char)text[i];
        bool start = isupper(c) && (i == 0 || !isalnum((unsigned char)text[i - 1]));
        if (!start) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < len && isalnum((unsigned char)text[j]))
            j++;
        if (j - i < 3 || covered(ents, &h, i, j)) {
            i = j;
            continue;
        }
        bool isstop = false;
        for (size_t k = 0; stop[k]; k++)
            if (strlen(stop[k]) == j - i && strncmp(text + i, stop[k], j - i) == 0)
                isstop = true;
        const char *after = text + j + skip_glue_forward(text + j, end);
        const char *before = text + i - skip_glue_back(text, text + i);
        if (!isstop && (family_word_at(after, end) || family_word_before(text, before))) {
            char *name = tr_xasprintf("%.*s", (int)(j - i), text + i);
            json_t *hit = json_object_get(index, name);
            if (!hit) {
                hit = json_pack("{s:s, s:s, s:s, s:[]}", "name", name, "type", "malware",
                                "reason", "named next to a ransomware or malware word and "
                                          "unknown to the knowledge base",
                                "offsets");
                json_array_append_new(out, hit);
                json_object_set(index, name, hit);
            }
            json_array_append_new(json_object_get(hit, "offsets"), json_integer((json_int_t)i));
            free(name);
        }
        i = j;
    }
    json_decref(index);
    return out;
}

/* ---- relationship proposals -------------------------------------------------- */

#define PROPOSAL_SPAN 300   /* bytes between two names of one statement, at most */

static bool is_actor(const char *type)
{
    return strcmp(type, "intrusion-set") == 0 || strcmp(type, "threat-actor") == 0 ||
           strcmp(type, "campaign") == 0;
}

static bool is_software(const char *type)
{
    return strcmp(type, "malware") == 0 || strcmp(type, "tool") == 0;
}

static bool sentence_end(const char *p, const char *end)
{
    if (*p == '\n' || *p == '!' || *p == '?')
        return true;
    if (*p == '.' && (p + 1 == end || p[1] == ' ' || p[1] == '\n'))
        return true;
    return starts(p, end, "\xe3\x80\x82");   /* 。 */
}

static bool contains(const char *a, const char *b, const char *w)
{
    size_t n = strlen(w);
    int c0 = tolower((unsigned char)w[0]);
    for (const char *p = a; p + n <= b; p++)
        if (tolower((unsigned char)*p) == c0 && strncasecmp(p, w, n) == 0)
            return true;
    return false;
}

static void propose(json_t *out, const tr_entity_hit *src, const tr_entity_hit *dst,
                    const char *rel, size_t sa, size_t sb, const char *text)
{
    if (strcmp(src->id, dst->id) == 0)
        return;
    size_t i;
    json_t *v;
    json_array_foreach(out, i, v) {
        if (strcmp(json_string_value(json_object_get(v, "source_ref")), src->id) == 0 &&
            strcmp(json_string_value(json_object_get(v, "target_ref")), dst->id) == 0 &&
            strcmp(json_string_value(json_object_get(v, "relationship_type")), rel) == 0)
            return;
    }
    /* The sentence, or the stretch around both names when it is long. */
    size_t lo = src->offset < dst->offset ? src->offset : dst->offset;
    size_t hi = src->offset + src->length > dst->offset + dst->length ? src->offset + src->length
                                                                      : dst->offset + dst->length;
    if (sb - sa > 1000) {
        sa = lo > sa + 100 ? lo - 100 : sa;
        sb = hi + 100 < sb ? hi + 100 : sb;
        while (sa < lo && ((unsigned char)text[sa] & 0xC0) == 0x80)
            sa++;
        while (sb > hi && ((unsigned char)text[sb] & 0xC0) == 0x80)
            sb--;
    }
    json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:I, s:s#}",
                                         "relationship_type", rel, "source_ref", src->id,
                                         "source_name", src->name, "target_ref", dst->id,
                                         "target_name", dst->name, "status", "proposal",
                                         "asserted", 0, "offset", (json_int_t)sa, "sentence",
                                         text + sa, (int)(sb - sa)));
}

json_t *report_proposals(const char *text, size_t len, const tr_entity_list *ents)
{
    json_t *out = json_array();
    const char *end = text + len;
    size_t s0 = 0, h = 0;
    while (s0 < len && h < ents->n) {
        size_t s1 = s0;
        while (s1 < len && !sentence_end(text + s1, end))
            s1++;
        size_t first = h;
        while (h < ents->n && ents->v[h].offset < s1)
            h++;
        for (size_t a = first; a < h; a++) {
            /* The next few names only: a statement does not skip many. */
            for (size_t b = a + 1; b < h && b <= a + 4; b++) {
                const tr_entity_hit *x = &ents->v[a], *y = &ents->v[b];
                /* A statement joins names close together; farther ones are
                 * other clauses (and this bounds the work on huge lines). */
                if (y->offset > x->offset + x->length + PROPOSAL_SPAN)
                    break;
                const char *gap0 = text + x->offset + x->length, *gap1 = text + y->offset;
                /* "never used", "is not attributed to": denials are not statements. */
                if (contains(gap0, gap1, " not ") || contains(gap0, gap1, "n't ") ||
                    contains(gap0, gap1, "never") || contains(gap0, gap1, " no "))
                    continue;
                if (contains(gap0, gap1, "attributed to") && is_actor(y->type))
                    propose(out, x, y, "attributed-to", s0, s1, text);
                else if (is_actor(x->type) && is_software(y->type) &&
                         (contains(gap0, gap1, " uses ") || contains(gap0, gap1, " used ") ||
                          contains(gap0, gap1, " deploy") || contains(gap0, gap1, " using ")))
                    propose(out, x, y, "uses", s0, s1, text);
                else if (is_software(x->type) && is_actor(y->type) &&
                         contains(gap0, gap1, "used by"))
                    propose(out, y, x, "uses", s0, s1, text);
            }
        }
        /* Japanese states use after the software: "XとYを実行した...グループであるZ". */
        for (size_t a = first; a < h; a++) {
            const tr_entity_hit *sw = &ents->v[a];
            if (!is_software(sw->type))
                continue;
            const char *p = text + sw->offset + sw->length;
            const char *lim = p + 60 < text + s1 ? p + 60 : text + s1;
            bool verb = contains(p, lim, "\xe5\xae\x9f\xe8\xa1\x8c") ||  /* 実行 */
                        contains(p, lim, "\xe4\xbd\xbf\xe7\x94\xa8") ||  /* 使用 */
                        contains(p, lim, "\xe5\xb1\x95\xe9\x96\x8b") ||  /* 展開 */
                        contains(p, lim, "\xe9\x81\x8b\xe7\x94\xa8");    /* 運用 */
            if (!verb)
                continue;
            for (size_t b = first; b < h; b++)
                if (is_actor(ents->v[b].type) &&
                    ents->v[b].offset + PROPOSAL_SPAN >= sw->offset &&
                    ents->v[b].offset <= sw->offset + PROPOSAL_SPAN)
                    propose(out, &ents->v[b], sw, "uses", s0, s1, text);
        }
        s0 = s1 + (s1 < len && starts(text + s1, end, "\xe3\x80\x82") ? 3 : 1);
    }
    return out;
}
