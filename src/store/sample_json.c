/* A sample as JSON, with MalwareBazaar's field names so that tooling written
 * for its API reads trawl's unchanged; trawl's own fields are added beside. */
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
