/* A sample as JSON, with MalwareBazaar's field names so that tooling written
 * for its API reads trawl's unchanged; trawl's own fields are added beside. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "store/store.h"

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *time_or_null(int64_t t)
{
    if (t <= 0)
        return json_null();
    char buf[32];
    tr_format_time(t, buf);
    return json_string(buf);
}

json_t *tr_sample_to_json(const tr_sample *s)
{
    json_t *o = json_object();
    json_t *names = json_array(), *tags = json_array(), *comments = json_array();
    if (!o || !names || !tags || !comments)
        tr_die("out of memory building JSON");
    for (size_t i = 0; i < s->n_names; i++)
        json_array_append_new(names, json_string(s->names[i]));
    for (size_t i = 0; i < s->n_tags; i++)
        json_array_append_new(tags, json_string(s->tags[i]));
    for (size_t i = 0; i < s->n_comments; i++) {
        const tr_comment *c = &s->comments[i];
        json_array_append_new(comments,
                              json_pack("{s:I, s:o, s:o, s:s}", "id", (json_int_t)c->id, "created",
                                        time_or_null(c->created), "author", str_or_null(c->author),
                                        "text", c->text ? c->text : ""));
    }
    json_object_set_new(o, "id", json_integer(s->id));
    json_object_set_new(o, "sha256_hash", json_string(s->d.sha256));
    json_object_set_new(o, "sha3_384_hash", json_string(s->d.sha3_384));
    json_object_set_new(o, "sha1_hash", json_string(s->d.sha1));
    json_object_set_new(o, "md5_hash", json_string(s->d.md5));
    json_object_set_new(o, "first_seen", time_or_null(s->first_seen));
    json_object_set_new(o, "last_seen", time_or_null(s->last_seen));
    json_object_set_new(o, "file_name", s->n_names ? json_string(s->names[0]) : json_null());
    json_object_set_new(o, "file_names", names);
    json_object_set_new(o, "file_size", json_integer((json_int_t)s->d.size));
    json_object_set_new(o, "file_type_mime", str_or_null(s->mime));
    json_object_set_new(o, "file_type", str_or_null(s->file_type));
    json_object_set_new(o, "magic", str_or_null(s->magic));
    json_object_set_new(o, "reporter", str_or_null(s->reporter));
    json_object_set_new(o, "origin", str_or_null(s->origin));
    json_object_set_new(o, "signature", str_or_null(s->signature));
    json_object_set_new(o, "imphash", str_or_null(s->imphash));
    json_object_set_new(o, "tlsh", str_or_null(s->d.tlsh));
    json_object_set_new(o, "ssdeep", str_or_null(s->d.ssdeep));
    json_object_set_new(o, "tags", tags);
    json_object_set_new(o, "delivery_method", str_or_null(s->delivery_method));
    json_object_set_new(o, "comments", comments);
    tr_bin_info_to_bazaar_json(s->bin, o);
    return o;
}

/* ---- MalwareBazaar's record --------------------------------------------- */

enum { DEF_NULL, DEF_ARRAY, DEF_OBJECT };

/* Bazaar's fields that other analysis fills (through extra): what Bazaar
 * answers for a sample that has none, and whether its lists carry the field
 * too. Part of one table so that a new analysis only has to give values. */
static const struct {
    const char *key;
    int empty;
    bool in_list;
} bazaar_defaults[] = {
    {"telfhash", DEF_NULL, true},
    {"gimphash", DEF_NULL, true},
    {"dhash_icon", DEF_NULL, true},
    {"archive_pw", DEF_NULL, false},
    {"code_sign", DEF_ARRAY, true},
    {"file_information", DEF_NULL, false},
    {"ole_information", DEF_ARRAY, false},
    {"trid", DEF_NULL, false},
    {"yara_rules", DEF_NULL, false},
    {"vendor_intel", DEF_OBJECT, false},
};

static json_t *counter(int64_t n)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", (long long)n);
    return json_string(buf);
}

/* Two capital letters: an origin that names a country (ISO 3166 alpha-2). */
static json_t *country_or_null(const char *origin)
{
    if (origin && strlen(origin) == 2 && origin[0] >= 'A' && origin[0] <= 'Z' &&
        origin[1] >= 'A' && origin[1] <= 'Z')
        return json_string(origin);
    return json_null();
}

static json_t *bazaar_comments(const tr_sample *s, const tr_sample_bazaar *bz)
{
    if (!s->n_comments)
        return json_null();
    json_t *arr = json_array();
    for (size_t i = 0; i < s->n_comments; i++) {
        const tr_comment *c = &s->comments[i];
        char id[24];
        snprintf(id, sizeof id, "%lld", (long long)c->id);
        /* An anonymous upload's comment is stored without its author; the
         * owner is never shown even if an older row named it. */
        bool hide = !c->author || (bz && bz->anonymous && bz->owner && strcmp(c->author, bz->owner) == 0);
        json_array_append_new(arr, json_pack("{s:s, s:o, s:n, s:s, s:s}", "id", id, "date_added",
                                             time_or_null(c->created), "twitter_handle",
                                             "display_name", hide ? "anonymous" : c->author,
                                             "comment", c->text ? c->text : ""));
    }
    return arr;
}

json_t *tr_sample_to_bazaar_json(const tr_sample *s, const tr_sample_bazaar *bz, json_t *extra,
                                 bool full)
{
    json_t *o = tr_sample_to_json(s);
    bool anon = bz && bz->anonymous;
    if (anon)
        json_object_set_new(o, "reporter", json_string("anonymous"));
    json_object_set_new(o, "anonymous", json_integer(anon ? 1 : 0));
    json_object_set_new(o, "origin_country", country_or_null(s->origin));
    if (json_array_size(json_object_get(o, "tags")) == 0)
        json_object_set_new(o, "tags", json_null());
    for (size_t i = 0; i < sizeof bazaar_defaults / sizeof bazaar_defaults[0]; i++) {
        const char *key = bazaar_defaults[i].key;
        if (!full && !bazaar_defaults[i].in_list) {
            json_object_del(o, key);
            continue;
        }
        /* extra first, then a value the sample's binary analysis set
         * (tr_sample_to_json), then Bazaar's empty value. */
        json_t *v = extra ? json_object_get(extra, key) : NULL;
        json_t *have = json_object_get(o, key);
        if (!v && have && !json_is_null(have))
            v = have;
        if (v)
            json_incref(v);
        else if (bazaar_defaults[i].empty == DEF_ARRAY)
            v = json_array();
        else if (bazaar_defaults[i].empty == DEF_OBJECT)
            v = json_object();
        else
            v = json_null();
        json_object_set_new(o, key, v);
    }
    json_t *clamav = extra ? json_object_get(extra, "clamav") : NULL;
    if (!clamav)
        clamav = json_object_get(json_object_get(o, "intelligence"), "clamav");
    json_object_set_new(o, "intelligence",
                        json_pack("{s:O, s:o, s:o, s:n}", "clamav", clamav ? clamav : json_null(),
                                  "downloads", counter(bz ? bz->downloads : 0), "uploads",
                                  counter(bz ? bz->uploads : 0), "mail"));
    if (full) {
        json_object_set_new(o, "comment",
                            s->n_comments ? json_string(s->comments[0].text) : json_null());
        json_object_set_new(o, "comments", bazaar_comments(s, bz));
        json_error_t jerr;
        json_t *refs = bz && bz->references ? json_loads(bz->references, 0, &jerr) : NULL;
        json_t *ctx = bz && bz->context ? json_loads(bz->context, 0, &jerr) : NULL;
        json_object_set_new(o, "references", refs ? refs : json_null());
        json_object_set_new(o, "context", ctx ? ctx : json_null());
    } else {
        json_object_del(o, "comments");
    }
    return o;
}
