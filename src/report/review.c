/* Review: drafts kept in the data directory until an analyst commits them.
 * A draft is the JSON that tr_report_draft builds, plus the analyst's
 * decisions (every extraction, entity, candidate and proposal carries
 * "accepted"), additions and edits of the report. Its bundle is rebuilt
 * from those decisions after each change, so what is shown is what a
 * commit imports. Files are written aside and renamed, and every
 * read-modify-write holds an flock on the drafts directory, since the
 * server and the CLI may work on the same data directory at once. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <unistd.h>

#include "report/report_internal.h"

static char *drafts_dir(const char *data_dir)
{
    return tr_xasprintf("%s/reports/drafts", data_dir);
}

/* Ids are UUIDs: nothing else may reach a path. */
bool tr_report_draft_id_valid(const char *id)
{
    if (!id || strlen(id) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? id[i] != '-' : !isxdigit((unsigned char)id[i]))
            return false;
    }
    return true;
}

/* An exclusive lock on the drafts directory (created if needed): the fd,
 * or -1. Closing it releases the lock. */
static int lock_drafts(const char *data_dir, tr_error *err)
{
    char *dir = drafts_dir(data_dir);
    char *path = tr_xasprintf("%s/.lock", dir);
    int fd = -1;
    if (tr_mkdir_p(dir, 0755, err) != 0)
        goto out;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        tr_fail_errno(err, "cannot open %s", path);
        goto out;
    }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            tr_fail_errno(err, "cannot lock %s", path);
            close(fd);
            fd = -1;
            break;
        }
    }
out:
    free(dir);
    free(path);
    return fd;
}

static int save(const char *data_dir, const char *id, json_t *d, tr_error *err)
{
    char *dir = drafts_dir(data_dir);
    char *path = tr_xasprintf("%s/%s.json", dir, id);
    char *tmp = tr_xasprintf("%s/.%s.tmp", dir, id);
    char *text = json_dumps(d, JSON_COMPACT);
    int rc = -1;
    if (!text) {
        tr_fail(err, "cannot serialise the draft");
        goto out;
    }
    /* Written aside, synced and renamed: a crash leaves the old draft or
     * the new one, never half of either. */
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        tr_fail_errno(err, "cannot write %s", tmp);
        goto out;
    }
    size_t n = strlen(text);
    bool ok = fwrite(text, 1, n, f) == n;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        tr_fail_errno(err, "cannot write the draft %s", path);
        unlink(tmp);
        goto out;
    }
    rc = tr_fsync_path(dir, err);
out:
    free(text);
    free(dir);
    free(path);
    free(tmp);
    return rc;
}

/* 1 loaded, 0 no such draft, -1. */
static int load(const char *data_dir, const char *id, json_t **out, tr_error *err)
{
    *out = NULL;
    if (!tr_report_draft_id_valid(id))
        return 0;
    char *dir = drafts_dir(data_dir);
    char *path = tr_xasprintf("%s/%s.json", dir, id);
    free(dir);
    if (access(path, F_OK) != 0) {
        free(path);
        return 0;
    }
    json_error_t je;
    json_t *d = json_load_file(path, 0, &je);
    if (!json_is_object(d)) {
        tr_fail(err, "draft %s is unreadable: %s", path, je.text);
        json_decref(d);
        free(path);
        return -1;
    }
    free(path);
    *out = d;
    return 1;
}

static const char *str_at(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static bool add_ref(json_t *refs, json_t *seen, const char *id)
{
    if (!id || json_object_get(seen, id))
        return false;
    json_object_set_new(seen, id, json_true());
    json_array_append_new(refs, json_string(id));
    return true;
}

static bool kind_from_name(const char *name, tr_ioc_kind *out)
{
    for (int k = 0; k < TR_IOC_KIND_COUNT && name; k++)
        if (strcmp(tr_ioc_kind_name((tr_ioc_kind)k), name) == 0) {
            *out = (tr_ioc_kind)k;
            return true;
        }
    return false;
}

/* Types an analyst may add as a new named object (select text -> type). */
static bool named_type(const char *t)
{
    static const char *const types[] = {"malware", "intrusion-set", "threat-actor", "tool",
                                        "campaign", NULL};
    for (size_t i = 0; t && types[i]; i++)
        if (strcmp(types[i], t) == 0)
            return true;
    return false;
}

static json_t *named_object(const char *type, const char *name, const char *now, json_t *markings,
                            char id[128], tr_error *err)
{
    /* The id is over the lowercased name: the same malware named in two
     * reports is one object. */
    char *key = tr_xasprintf("%s:%s", type, name);
    for (char *p = key; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    int rc = report_minted_id(type, key, id, err);
    free(key);
    if (rc != 0)
        return NULL;
    json_t *o = json_pack("{s:s, s:s, s:s}", "type", type, "id", id, "name", name);
    if (!o) {
        tr_fail(err, "cannot build the %s '%s'", type, name);
        return NULL;
    }
    if (strcmp(type, "malware") == 0)
        json_object_set_new(o, "is_family", json_true());
    report_common(o, now, markings);
    return o;
}

json_t *tr_report_review_bundle(json_t *d, tr_error *err)
{
    err->msg[0] = 0;
    json_t *report = json_deep_copy(json_object_get(d, "report"));
    if (!json_is_object(report)) {
        json_decref(report);
        tr_fail(err, "the draft has no report");
        return NULL;
    }
    char now[32];
    tr_stix_now(now);
    json_t *markings = json_object_get(report, "object_marking_refs");
    markings = json_is_array(markings) ? json_incref(markings) : json_array();
    const char *published = str_at(report, "published");
    json_t *objects = json_array(), *refs = json_array(), *seen = json_object();
    json_t *ents = json_object_get(d, "entities");
    size_t i;
    json_t *v;

    json_array_foreach(json_object_get(json_object_get(d, "bundle"), "objects"), i, v) {
        const char *t = str_at(v, "type");
        if (!t || strcmp(t, "artifact") != 0)
            continue;
        json_t *a = json_deep_copy(v);
        if (json_array_size(markings))
            json_object_set(a, "object_marking_refs", markings);
        else
            json_object_del(a, "object_marking_refs");
        add_ref(refs, seen, str_at(a, "id"));
        json_array_append_new(objects, a);
    }

    json_array_foreach(json_object_get(d, "extractions"), i, v) {
        if (!json_is_true(json_object_get(v, "accepted")))
            continue;
        tr_ioc_kind kind;
        const char *value = str_at(v, "value");
        if (!value || !kind_from_name(str_at(v, "kind"), &kind))
            continue;
        if (kind == TR_IOC_CVE) {
            /* The knowledge base's own vulnerability when the text names it. */
            const char *known = NULL;
            size_t k;
            json_t *e;
            json_array_foreach(ents, k, e) {
                const char *t = str_at(e, "type"), *n = str_at(e, "name");
                if (t && n && strcmp(t, "vulnerability") == 0 && strcasecmp(n, value) == 0)
                    known = str_at(e, "id");
            }
            if (known) {
                add_ref(refs, seen, known);
                continue;
            }
        }
        json_t *obj;
        char id[128];
        int made = report_ioc_object(kind, value, published ? published : now, &obj, id, err);
        if (made < 0)
            goto fail;
        if (made == 0)
            continue;
        if (!add_ref(refs, seen, id)) {
            json_decref(obj);
            continue;
        }
        report_common(obj, now, markings);
        json_array_append_new(objects, obj);
    }

    json_array_foreach(ents, i, v) {
        if (json_is_true(json_object_get(v, "accepted")))
            add_ref(refs, seen, str_at(v, "id"));
    }

    json_array_foreach(json_object_get(d, "candidates"), i, v) {
        if (!json_is_true(json_object_get(v, "accepted")))
            continue;
        const char *t = str_at(v, "type"), *n = str_at(v, "name");
        char id[128];
        json_t *obj = named_object(named_type(t) ? t : "malware", n ? n : "", now, markings, id,
                                   err);
        if (!obj)
            goto fail;
        if (add_ref(refs, seen, id))
            json_array_append_new(objects, obj);
        else
            json_decref(obj);
    }

    json_array_foreach(json_object_get(d, "proposals"), i, v) {
        if (!json_is_true(json_object_get(v, "accepted")))
            continue;
        const char *rel = str_at(v, "relationship_type"), *src = str_at(v, "source_ref"),
                   *dst = str_at(v, "target_ref");
        if (!rel || !src || !dst)
            continue;
        char *key = tr_xasprintf("%s|%s|%s", src, rel, dst);
        char id[128];
        int rc = report_minted_id("relationship", key, id, err);
        free(key);
        if (rc != 0)
            goto fail;
        json_t *obj = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "relationship", "id", id,
                                "relationship_type", rel, "source_ref", src, "target_ref", dst);
        if (!obj) {
            tr_fail(err, "cannot build the relationship %s %s %s", src, rel, dst);
            goto fail;
        }
        if (str_at(v, "sentence"))
            json_object_set_new(obj, "description", json_string(str_at(v, "sentence")));
        report_common(obj, now, markings);
        add_ref(refs, seen, src);
        add_ref(refs, seen, dst);
        if (add_ref(refs, seen, id))
            json_array_append_new(objects, obj);
        else
            json_decref(obj);
    }

    json_object_set(report, "object_refs", refs);
    json_object_set_new(report, "modified", json_string(now));
    if (tr_stix_ts_cmp(str_at(report, "created") ? str_at(report, "created") : now, now) > 0)
        json_object_set_new(report, "created", json_string(now));
    if (json_array_size(markings))
        json_object_set(report, "object_marking_refs", markings);
    else
        json_object_del(report, "object_marking_refs");
    json_array_insert_new(objects, 0, report);
    report = NULL;
    char u[37], bid[128];
    tr_stix_uuid4(u);
    snprintf(bid, sizeof bid, "bundle--%s", u);
    json_t *b = json_pack("{s:s, s:s, s:O}", "type", "bundle", "id", bid, "objects", objects);
    json_decref(objects);
    json_decref(refs);
    json_decref(seen);
    json_decref(markings);
    return b;
fail:
    json_decref(report);
    json_decref(objects);
    json_decref(refs);
    json_decref(seen);
    json_decref(markings);
    return NULL;
}

/* Sets each listed element's "accepted"; indices are checked first. */
static int decide(json_t *arr, json_t *idx, bool accept, const char *what, bool by_id,
                  tr_error *err)
{
    if (!idx)
        return 0;
    if (!json_is_array(idx))
        return tr_fail(err, "'%s' wants an array of indices", what);
    size_t i;
    json_t *v;
    json_array_foreach(idx, i, v) {
        json_int_t n = json_integer_value(v);
        if (!json_is_integer(v) || n < 0 || (size_t)n >= json_array_size(arr))
            return tr_fail(err, "'%s': no element %s in the draft's %zu", what,
                           json_is_integer(v) ? "with that index" : "(not an integer)",
                           json_array_size(arr));
        json_t *el = json_array_get(arr, (size_t)n);
        if (!by_id) {
            json_object_set_new(el, "accepted", json_boolean(accept));
            continue;
        }
        /* An entity is one object however often the text names it. */
        const char *id = str_at(el, "id");
        size_t k;
        json_t *e;
        json_array_foreach(arr, k, e) {
            const char *eid = str_at(e, "id");
            if (eid && id && strcmp(eid, id) == 0)
                json_object_set_new(e, "accepted", json_boolean(accept));
        }
    }
    return 0;
}

/* Where value is in the text, so an addition is highlighted too. */
static void place(json_t *add, const char *text, const char *value)
{
    const char *p = text && *value ? strstr(text, value) : NULL;
    if (!p)
        return;
    json_object_set_new(add, "offset", json_integer((json_int_t)(p - text)));
    json_object_set_new(add, "length", json_integer((json_int_t)strlen(value)));
}

static int add_one(json_t *d, json_t *a, tr_error *err)
{
    const char *kind = str_at(a, "kind"), *value = str_at(a, "value");
    if (!json_is_object(a) || !kind || !value)
        return tr_fail(err, "an addition is {\"kind\": ..., \"value\": ...}");
    while (isspace((unsigned char)*value))
        value++;
    size_t n = strlen(value);
    while (n && isspace((unsigned char)value[n - 1]))
        n--;
    if (n == 0 || n > 65536)
        return tr_fail(err, "an addition of kind '%s' needs a value (at most 64 KB)", kind);
    char *val = tr_xasprintf("%.*s", (int)n, value);
    const char *text = str_at(d, "text");
    json_t *off = json_object_get(a, "offset"), *len = json_object_get(a, "length");
    if ((off || len) &&
        (!json_is_integer(off) || !json_is_integer(len) || json_integer_value(off) < 0 ||
         json_integer_value(len) <= 0 ||
         (size_t)(json_integer_value(off) + json_integer_value(len)) > (text ? strlen(text) : 0))) {
        free(val);
        return tr_fail(err, "an addition's offset and length must lie in the text");
    }
    json_t *e;
    tr_ioc_kind k;
    if (kind_from_name(kind, &k)) {
        /* The extractor's own reading of what was typed: refanged and
         * normalised when it recognises a value of that kind. */
        tr_ioc_list l = {0};
        char *norm = NULL;
        if (tr_ioc_extract(val, n, &l, err) == 0)
            for (size_t i = 0; i < l.n && !norm; i++)
                if (l.v[i].kind == k && l.v[i].offset == 0 && l.v[i].length == n)
                    norm = tr_xstrdup(l.v[i].value);
        tr_ioc_list_free(&l);
        err->msg[0] = 0;
        e = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:b}", "kind", kind, "value",
                      norm ? norm : val, "class",
                      k == TR_IOC_CVE || k == TR_IOC_ATTACK ? "reference" : "indicator", "reason",
                      "added by the analyst", "defanged", norm && strcmp(norm, val) != 0,
                      "accepted", 1, "added", 1);
        free(norm);
        if (e && off) {
            json_object_set(e, "offset", off);
            json_object_set(e, "length", len);
        } else if (e) {
            place(e, text, val);
        }
        if (!e) {
            free(val);
            return tr_fail(err, "an addition's value must be UTF-8 text");
        }
        json_array_append_new(json_object_get(d, "extractions"), e);
    } else if (named_type(kind)) {
        e = json_pack("{s:s, s:s, s:s, s:[], s:b, s:b}", "name", val, "type", kind, "reason",
                      "added by the analyst", "offsets", "accepted", 1, "added", 1);
        if (!e) {
            free(val);
            return tr_fail(err, "an addition's value must be UTF-8 text");
        }
        const char *p = off ? text + json_integer_value(off) : text ? strstr(text, val) : NULL;
        if (p)
            json_array_append_new(json_object_get(e, "offsets"),
                                  json_integer((json_int_t)(p - text)));
        if (!json_is_array(json_object_get(d, "candidates")))
            json_object_set_new(d, "candidates", json_array());
        json_array_append_new(json_object_get(d, "candidates"), e);
    } else {
        free(val);
        return tr_fail(err, "cannot add a '%s': an indicator kind (ipv4, domain, url, sha256, ...) "
                            "or malware, intrusion-set, threat-actor, tool, campaign", kind);
    }
    free(val);
    return 0;
}

static int edit_report(json_t *d, json_t *c, tr_error *err)
{
    json_t *report = json_object_get(d, "report");
    json_t *v;
    if ((v = json_object_get(c, "name"))) {
        if (!json_is_string(v) || !json_string_length(v))
            return tr_fail(err, "'name' wants a non-empty string");
        json_object_set(report, "name", v);
    }
    if ((v = json_object_get(c, "labels"))) {
        size_t i;
        json_t *l;
        if (!json_is_array(v))
            return tr_fail(err, "'labels' wants an array of strings");
        json_array_foreach(v, i, l) {
            if (!json_is_string(l) || !json_string_length(l))
                return tr_fail(err, "'labels' wants an array of strings");
        }
        if (json_array_size(v))
            json_object_set_new(report, "labels", json_deep_copy(v));
        else
            json_object_del(report, "labels");
    }
    if ((v = json_object_get(c, "marking"))) {
        const char *m = json_string_value(v);
        if (!json_is_null(v) && !m)
            return tr_fail(err, "'marking' wants a TLP name or null");
        if (m && *m) {
            const char *id = tr_report_marking_id(m);
            if (!id)
                return tr_fail(err, "unknown marking '%s' (TLP:CLEAR, TLP:GREEN, TLP:AMBER, "
                                    "TLP:AMBER+STRICT, TLP:RED, TLP:WHITE)", m);
            json_object_set_new(report, "object_marking_refs", json_pack("[s]", id));
        } else {
            json_object_del(report, "object_marking_refs");
        }
    }
    if ((v = json_object_get(c, "published"))) {
        const char *p = json_string_value(v);
        char *ts = p ? report_published_from(p, err) : NULL;
        if (!ts)
            return p ? -1 : tr_fail(err, "'published' wants a date or a STIX timestamp");
        json_object_set_new(report, "published", json_string(ts));
        free(ts);
    }
    return 0;
}

int tr_report_review_apply(json_t *draft, json_t *changes, tr_error *err)
{
    static const char *const known[] = {
        "accept", "reject", "accept_entities", "reject_entities", "accept_candidates",
        "reject_candidates", "accept_proposals", "reject_proposals", "add", "name", "labels",
        "marking", "published", NULL};
    err->msg[0] = 0;
    if (!json_is_object(changes))
        return tr_fail(err, "the changes are a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(changes, key, v) {
        bool ok = false;
        for (size_t i = 0; known[i]; i++)
            ok = ok || strcmp(known[i], key) == 0;
        if (!ok)
            return tr_fail(err, "unknown change '%s' (accept, reject, accept_entities, "
                                "reject_entities, accept_candidates, reject_candidates, "
                                "accept_proposals, reject_proposals, add, name, labels, "
                                "marking, published)", key);
    }
    /* Worked on a copy: a refused change leaves the draft as it was. */
    json_t *d = json_deep_copy(draft);
    static const struct {
        const char *arr, *acc, *rej;
        bool by_id;
    } lists[] = {{"extractions", "accept", "reject", false},
                 {"entities", "accept_entities", "reject_entities", true},
                 {"candidates", "accept_candidates", "reject_candidates", false},
                 {"proposals", "accept_proposals", "reject_proposals", false}};
    int rc = 0;
    for (size_t i = 0; i < sizeof lists / sizeof lists[0] && rc == 0; i++) {
        json_t *arr = json_object_get(d, lists[i].arr);
        /* Rejections after acceptances: naming both rejects. */
        rc = decide(arr, json_object_get(changes, lists[i].acc), true, lists[i].acc,
                    lists[i].by_id, err);
        if (rc == 0)
            rc = decide(arr, json_object_get(changes, lists[i].rej), false, lists[i].rej,
                        lists[i].by_id, err);
    }
    json_t *adds = json_object_get(changes, "add");
    if (rc == 0 && adds && !json_is_array(adds))
        rc = tr_fail(err, "'add' wants an array of {\"kind\", \"value\"}");
    size_t i;
    json_array_foreach(adds, i, v) {
        if (rc == 0)
            rc = add_one(d, v, err);
    }
    if (rc == 0)
        rc = edit_report(d, changes, err);
    json_t *bundle = rc == 0 ? tr_report_review_bundle(d, err) : NULL;
    if (!bundle) {
        json_decref(d);
        return -1;
    }
    json_object_set(d, "report", json_array_get(json_object_get(bundle, "objects"), 0));
    json_object_set_new(d, "bundle", bundle);
    json_object_update(draft, d);
    json_decref(d);
    return 0;
}

static void stamp(json_t *d, const char *key)
{
    char now[32];
    tr_stix_now(now);
    json_object_set_new(json_object_get(d, "draft"), key, json_string(now));
}

int tr_report_draft_create(const char *data_dir, json_t *draft, const char *by, char id[37],
                           tr_error *err)
{
    err->msg[0] = 0;
    tr_stix_uuid4(id);
    char now[32];
    tr_stix_now(now);
    json_object_set_new(draft, "draft",
                        json_pack("{s:s, s:s, s:s, s:s, s:s?}", "id", id, "status", "open",
                                  "created", now, "updated", now, "created_by", by));
    /* Defaults the review starts from: entities the knowledge base knows
     * are in, candidates and proposals are out until accepted. */
    static const struct {
        const char *arr;
        bool on;
    } defaults[] = {{"entities", true}, {"candidates", false}, {"proposals", false}};
    for (size_t k = 0; k < sizeof defaults / sizeof defaults[0]; k++) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(draft, defaults[k].arr), i, v) {
            if (!json_object_get(v, "accepted"))
                json_object_set_new(v, "accepted", json_boolean(defaults[k].on));
        }
    }
    int fd = lock_drafts(data_dir, err);
    if (fd < 0)
        return -1;
    int rc = save(data_dir, id, draft, err);
    close(fd);
    return rc;
}

int tr_report_draft_get(const char *data_dir, const char *id, json_t **out, tr_error *err)
{
    err->msg[0] = 0;
    return load(data_dir, id, out, err);
}

static int by_created_desc(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    const char *cx = str_at(x, "created"), *cy = str_at(y, "created");
    int c = strcmp(cy ? cy : "", cx ? cx : "");
    return c ? c : strcmp(str_at(x, "id"), str_at(y, "id"));
}

json_t *tr_report_draft_summary(json_t *d)
{
    json_t *meta = json_object_get(d, "draft"), *report = json_object_get(d, "report");
    size_t accepted = 0, i;
    json_t *v;
    json_array_foreach(json_object_get(d, "extractions"), i, v) {
        accepted += json_is_true(json_object_get(v, "accepted"));
    }
    json_t *s = json_pack(
        "{s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:I, s:I, s:I, s:I, s:I}", "id",
        str_at(meta, "id"), "status", str_at(meta, "status"), "name", str_at(report, "name"),
        "created", str_at(meta, "created"), "updated", str_at(meta, "updated"), "format",
        str_at(json_object_get(d, "document"), "format"), "report_id", str_at(report, "id"),
        "extractions", (json_int_t)json_array_size(json_object_get(d, "extractions")), "accepted",
        (json_int_t)accepted, "entities",
        (json_int_t)json_array_size(json_object_get(d, "entities")), "candidates",
        (json_int_t)json_array_size(json_object_get(d, "candidates")), "proposals",
        (json_int_t)json_array_size(json_object_get(d, "proposals")));
    if (s && json_object_get(meta, "committed"))
        json_object_set(s, "committed", json_object_get(meta, "committed"));
    return s;
}

int tr_report_drafts_list(const char *data_dir, json_t **out, tr_error *err)
{
    err->msg[0] = 0;
    char *dir = drafts_dir(data_dir);
    DIR *dh = opendir(dir);
    free(dir);
    json_t **v = NULL;
    size_t n = 0, cap = 0;
    if (dh) {
        struct dirent *de;
        while ((de = readdir(dh))) {
            size_t l = strlen(de->d_name);
            if (l != 41 || strcmp(de->d_name + 36, ".json") != 0)
                continue;
            char id[37];
            memcpy(id, de->d_name, 36);
            id[36] = 0;
            json_t *d;
            /* An unreadable draft is left out of the list, not fatal to it. */
            if (load(data_dir, id, &d, err) != 1)
                continue;
            json_t *s = tr_report_draft_summary(d);
            json_decref(d);
            if (!s)
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                v = tr_xrealloc(v, cap * sizeof *v);
            }
            v[n++] = s;
        }
        closedir(dh);
    }
    err->msg[0] = 0;
    if (n)
        qsort(v, n, sizeof *v, by_created_desc);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, v[i]);
    free(v);
    *out = a;
    return 0;
}

int tr_report_draft_delete(const char *data_dir, const char *id, tr_error *err)
{
    err->msg[0] = 0;
    if (!tr_report_draft_id_valid(id))
        return 0;
    int fd = lock_drafts(data_dir, err);
    if (fd < 0)
        return -1;
    char *dir = drafts_dir(data_dir);
    char *path = tr_xasprintf("%s/%s.json", dir, id);
    int rc = 1;
    if (unlink(path) != 0) {
        if (errno == ENOENT)
            rc = 0;
        else
            rc = tr_fail_errno(err, "cannot delete %s", path);
    } else if (tr_fsync_path(dir, err) != 0) {
        rc = -1;
    }
    free(dir);
    free(path);
    close(fd);
    return rc;
}

int tr_report_draft_review(const char *data_dir, const char *id, json_t *changes, json_t **out,
                           tr_error *err)
{
    err->msg[0] = 0;
    *out = NULL;
    int fd = lock_drafts(data_dir, err);
    if (fd < 0)
        return -1;
    json_t *d = NULL;
    int rc = load(data_dir, id, &d, err);
    const char *status = rc == 1 ? str_at(json_object_get(d, "draft"), "status") : NULL;
    if (rc == 1 && (!status || strcmp(status, "open") != 0)) {
        tr_fail(err, "draft %s is already committed", id);
        rc = TR_DRAFT_CONFLICT;
    }
    if (rc == 1 && tr_report_review_apply(d, changes, err) != 0)
        rc = -1;
    if (rc == 1) {
        stamp(d, "updated");
        if (save(data_dir, id, d, err) != 0)
            rc = -1;
    }
    close(fd);
    if (rc == 1)
        *out = d;
    else
        json_decref(d);
    return rc;
}

int tr_report_draft_commit(const char *data_dir, tr_stix_db *db, const char *id, json_t **out,
                           tr_error *err)
{
    err->msg[0] = 0;
    *out = NULL;
    int fd = lock_drafts(data_dir, err);
    if (fd < 0)
        return -1;
    json_t *d = NULL, *bundle = NULL;
    char *text = NULL;
    int rc = load(data_dir, id, &d, err);
    if (rc != 1)
        goto out;
    const char *status = str_at(json_object_get(d, "draft"), "status");
    if (!status || strcmp(status, "open") != 0) {
        tr_fail(err, "draft %s is already committed", id);
        rc = TR_DRAFT_CONFLICT;
        goto out;
    }
    rc = -1;
    if (!(bundle = tr_report_review_bundle(d, err)))
        goto out;
    if (!(text = json_dumps(bundle, JSON_COMPACT))) {
        tr_fail(err, "cannot serialise the bundle");
        goto out;
    }
    /* The report and every accepted object in one transaction of the
     * knowledge base: all of them or none. */
    tr_stix_import_result ir;
    if (tr_stix_import(db, text, strlen(text), NULL, &ir, err) != 0)
        goto out;
    json_t *report = json_array_get(json_object_get(bundle, "objects"), 0);
    json_object_set(d, "report", report);
    json_object_set(d, "bundle", bundle);
    json_t *meta = json_object_get(d, "draft");
    json_object_set_new(meta, "status", json_string("committed"));
    json_object_set_new(meta, "committed",
                        json_pack("{s:s, s:I, s:I}", "report", str_at(report, "id"), "objects",
                                  (json_int_t)ir.total, "added", (json_int_t)ir.added));
    stamp(d, "updated");
    stamp(d, "committed_at");
    /* Imported but not marked (a crash here): committing again re-imports
     * the same ids as new versions, never duplicates. */
    if (save(data_dir, id, d, err) != 0)
        goto out;
    rc = 1;
out:
    close(fd);
    free(text);
    json_decref(bundle);
    if (rc == 1)
        *out = d;
    else
        json_decref(d);
    return rc;
}
