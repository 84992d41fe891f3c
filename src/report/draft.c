/* The draft: a document's text, every extraction with its place in the
 * text, and the STIX bundle that committing it would import. Ids of new
 * objects are UUIDv5 over what they say (an indicator's pattern, a CVE id),
 * so importing the same document twice adds versions, not duplicates. */
#include <ctype.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "report/report_internal.h"
#include "store/store.h"

/* Namespace of the ids trawl's report importer mints. */
#define REPORT_NS "0be99ecf-cf5b-4519-8cec-5dcf6e4f3546"

const char *tr_report_marking_id(const char *tlp)
{
    static const struct {
        const char *name, *id;
    } ids[] = {
        {"TLP:CLEAR", "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"},
        {"TLP:GREEN", "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"},
        {"TLP:AMBER", "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"},
        {"TLP:AMBER+STRICT", "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"},
        {"TLP:RED", "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"},
        {"TLP:WHITE", "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (strcasecmp(tlp, ids[i].name) == 0)
            return ids[i].id;
    return NULL;
}

static char *pattern_string(const char *v)
{
    tr_buf b = {0};
    tr_buf_append(&b, "'", 1);
    for (const char *p = v; *p; p++) {
        if (*p == '\'' || *p == '\\')
            tr_buf_append(&b, "\\", 1);
        tr_buf_append(&b, p, 1);
    }
    tr_buf_append(&b, "'", 2);
    return b.data;
}

/* The STIX pattern of an accepted observable, NULL for kinds that are
 * references (CVE, ATT&CK) rather than indicators. */
static char *pattern_of(const tr_ioc *x)
{
    const char *path;
    switch (x->kind) {
    case TR_IOC_IPV4: path = "ipv4-addr:value"; break;
    case TR_IOC_IPV6: path = "ipv6-addr:value"; break;
    case TR_IOC_DOMAIN: path = "domain-name:value"; break;
    case TR_IOC_URL: path = "url:value"; break;
    case TR_IOC_EMAIL: path = "email-addr:value"; break;
    case TR_IOC_MD5: path = "file:hashes.MD5"; break;
    case TR_IOC_SHA1: path = "file:hashes.'SHA-1'"; break;
    case TR_IOC_SHA256: path = "file:hashes.'SHA-256'"; break;
    case TR_IOC_SHA512: path = "file:hashes.'SHA-512'"; break;
    case TR_IOC_SSDEEP: path = "file:hashes.SSDEEP"; break;
    case TR_IOC_FILENAME: path = "file:name"; break;
    case TR_IOC_REGKEY: path = "windows-registry-key:key"; break;
    case TR_IOC_BITCOIN: path = "cryptocurrency-wallet:value"; break;
    case TR_IOC_YARA: return tr_xstrdup(x->value);
    default: return NULL;
    }
    char *s = pattern_string(x->value);
    char *r = tr_xasprintf("[%s = %s]", path, s);
    free(s);
    return r;
}

static int minted_id(const char *type, const char *key, char out[128], tr_error *err)
{
    char u[37];
    if (tr_stix_uuid5(REPORT_NS, key, strlen(key), u, err) != 0)
        return -1;
    snprintf(out, 128, "%s--%s", type, u);
    return 0;
}

/* object_refs without duplicates: seen is a jansson object used as a hash
 * set, as a long report names hundreds of thousands of observables. */
static bool add_ref(json_t *refs, json_t *seen, const char *id)
{
    if (json_object_get(seen, id))
        return false;
    json_object_set_new(seen, id, json_true());
    json_array_append_new(refs, json_string(id));
    return true;
}

static void common(json_t *obj, const char *now, json_t *markings)
{
    json_object_set_new(obj, "spec_version", json_string("2.1"));
    json_object_set_new(obj, "created", json_string(now));
    json_object_set_new(obj, "modified", json_string(now));
    if (json_array_size(markings))
        json_object_set(obj, "object_marking_refs", markings);
}

char *report_published_from(const char *s, tr_error *err)
{
    if (tr_stix_ts_valid(s))
        return tr_xstrdup(s);
    if (strlen(s) == 10) {
        char *t = tr_xasprintf("%sT00:00:00Z", s);
        if (tr_stix_ts_valid(t))
            return t;
        free(t);
    }
    tr_fail(err, "--published wants a date (2021-10-17) or a STIX timestamp, not '%s'", s);
    return NULL;
}

/* Originals up to this size travel inside the artifact (payload_bin). The
 * stix module's schema check of payload_bin is a PCRE2 pattern over the
 * whole string; since its JIT stack grows on demand (up to 64 MB) it
 * accepts the base64 of originals of 4 MB and refuses 8 MB, so the 3 KB
 * this once was is long obsolete, but the largest documents (32 MB) still
 * cannot go inline. Those are kept at DATA/reports/<sha256> by
 * tr_report_keep_original and the artifact names them by url, as every
 * original over 3 KB was before: such artifacts and files stay valid. */
#define INLINE_MAX (1u << 20)

static json_t *artifact_of(const unsigned char *data, size_t len, const tr_doc *doc,
                           json_t *markings, tr_error *err)
{
    static const char *const mime[] = {"text/plain", "text/markdown", "text/html",
                                       "application/pdf", "message/rfc822"};
    char sha[TR_SHA256_HEX];
    tr_sha256_hex(data, len, sha);
    json_t *a = json_pack("{s:s, s:s, s:s, s:{s:s}}", "type", "artifact", "spec_version", "2.1",
                          "mime_type", mime[doc->format], "hashes", "SHA-256", sha);
    if (len <= INLINE_MAX) {
        unsigned char *b64 = tr_xmalloc(4 * ((len + 2) / 3) + 1);
        EVP_EncodeBlock(b64, data, (int)len);
        json_object_set_new(a, "payload_bin", json_string((const char *)b64));
        free(b64);
    } else {
        char *url = tr_xasprintf("trawl:reports/%s", sha);
        json_object_set_new(a, "url", json_string(url));
        free(url);
    }
    if (json_array_size(markings))
        json_object_set(a, "object_marking_refs", markings);
    char id[128];
    if (tr_stix_sco_id(a, id, err) != 1) {
        json_decref(a);
        if (!err->msg[0])
            tr_fail(err, "no id for the artifact");
        return NULL;
    }
    json_object_set_new(a, "id", json_string(id));
    return a;
}

int tr_report_keep_original(const char *data_dir, const unsigned char *data, size_t len,
                            tr_error *err)
{
    if (len <= INLINE_MAX)
        return 0;
    char sha[TR_SHA256_HEX];
    tr_sha256_hex(data, len, sha);
    char *dir = tr_xasprintf("%s/reports", data_dir);
    char *path = tr_xasprintf("%s/%s", dir, sha);
    char *tmp = tr_xasprintf("%s/.%s.tmp", dir, sha);
    int rc = -1;
    if (tr_mkdir_p(dir, 0755, err) != 0)
        goto out;
    if (access(path, F_OK) == 0) {
        rc = 0;
        goto out;
    }
    /* Written aside and renamed: a crash never leaves half an original. */
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        tr_fail_errno(err, "cannot write %s", tmp);
        goto out;
    }
    bool ok = fwrite(data, 1, len, f) == len;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        tr_fail_errno(err, "cannot store the original at %s", path);
        unlink(tmp);
        goto out;
    }
    rc = tr_fsync_path(dir, err);
out:
    free(dir);
    free(path);
    free(tmp);
    return rc;
}

int report_minted_id(const char *type, const char *key, char out[128], tr_error *err)
{
    return minted_id(type, key, out, err);
}

void report_common(json_t *obj, const char *now, json_t *markings)
{
    common(obj, now, markings);
}

int report_ioc_object(tr_ioc_kind kind, const char *value, const char *valid_from, json_t **out,
                      char id[128], tr_error *err)
{
    json_t *obj = NULL;
    *out = NULL;
    if (kind == TR_IOC_CVE) {
        if (minted_id("vulnerability", value, id, err) != 0)
            return -1;
        obj = json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}]}", "type", "vulnerability", "id", id,
                        "name", value, "external_references", "source_name", "cve",
                        "external_id", value);
    } else if (kind == TR_IOC_ATTACK) {
        if (minted_id("attack-pattern", value, id, err) != 0)
            return -1;
        obj = json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}]}", "type", "attack-pattern", "id", id,
                        "name", value, "external_references", "source_name", "mitre-attack",
                        "external_id", value);
    } else {
        tr_ioc x = {.kind = kind, .value = (char *)value};
        char *pattern = pattern_of(&x);
        if (!pattern)
            return 0;
        if (minted_id("indicator", pattern, id, err) != 0) {
            free(pattern);
            return -1;
        }
        obj = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[s]}", "type", "indicator", "id", id,
                        "name", kind == TR_IOC_YARA ? "YARA rule" : value, "pattern", pattern,
                        "pattern_type", kind == TR_IOC_YARA ? "yara" : "stix", "valid_from",
                        valid_from, "indicator_types", "malicious-activity");
        if (obj && kind == TR_IOC_YARA) {
            /* The rule's own name is the useful one. */
            const char *r = strstr(pattern, "rule ");
            if (r) {
                r += 5;
                size_t n = 0;
                while (isalnum((unsigned char)r[n]) || r[n] == '_')
                    n++;
                json_object_set_new(obj, "name", json_stringn(r, n));
            }
        }
        free(pattern);
    }
    if (!obj) {
        tr_fail(err, "cannot build the object for '%s' (not valid UTF-8?)", value);
        return -1;
    }
    *out = obj;
    return 1;
}

/* The few distinct kind, class and reason strings of a draft's records,
 * made once and shared (a record's three allocations less each). */
typedef struct shared_strings {
    json_t *kind[TR_IOC_KIND_COUNT], *cls[TR_IOCC_COUNT];
    const char *reason_key[64];
    json_t *reason[64];
    size_t nreason;
} shared_strings;

static json_t *shared(json_t **slot, const char *s)
{
    if (!*slot)
        *slot = json_string_nocheck(s);
    return json_incref(*slot);
}

static json_t *shared_reason(shared_strings *ss, const char *r)
{
    for (size_t i = 0; i < ss->nreason; i++)
        if (ss->reason_key[i] == r)
            return json_incref(ss->reason[i]);
    if (ss->nreason == sizeof ss->reason / sizeof ss->reason[0])
        return json_string_nocheck(r);
    ss->reason_key[ss->nreason] = r;
    return shared(&ss->reason[ss->nreason++], r);
}

static void shared_free(shared_strings *ss)
{
    for (size_t i = 0; i < TR_IOC_KIND_COUNT; i++)
        json_decref(ss->kind[i]);
    for (size_t i = 0; i < TR_IOCC_COUNT; i++)
        json_decref(ss->cls[i]);
    for (size_t i = 0; i < ss->nreason; i++)
        json_decref(ss->reason[i]);
}

static json_t *extraction_json(const tr_ioc *x, const char *text, tr_store *store,
                               shared_strings *ss)
{
    /* Built by hand rather than with json_pack: a dense document has a
     * record per 70 bytes, and parsing the format and checking the
     * constant keys each time was a tenth of a draft's time. Only the
     * value comes from the text and is checked. */
    json_t *e = json_object();
    json_t *value = json_string(x->value);
    if (!value)
        value = json_string("");
    json_object_set_new_nocheck(e, "kind", shared(&ss->kind[x->kind], tr_ioc_kind_name(x->kind)));
    json_object_set_new_nocheck(e, "value", value);
    json_object_set_new_nocheck(e, "offset", json_integer((json_int_t)x->offset));
    json_object_set_new_nocheck(e, "length", json_integer((json_int_t)x->length));
    json_object_set_new_nocheck(e, "class", shared(&ss->cls[x->cls], tr_ioc_class_name(x->cls)));
    json_object_set_new_nocheck(e, "reason", shared_reason(ss, x->reason));
    json_object_set_new_nocheck(e, "defanged", json_boolean(x->defanged));
    json_object_set_new_nocheck(e, "accepted",
                                json_boolean(x->cls == TR_IOCC_INDICATOR ||
                                             x->cls == TR_IOCC_REFERENCE));
    if (text && x->defanged) {
        json_t *orig = json_stringn(text + x->offset, x->length);
        if (orig)
            json_object_set_new(e, "original", orig);
    }
    bool hash = x->kind == TR_IOC_MD5 || x->kind == TR_IOC_SHA1 || x->kind == TR_IOC_SHA256;
    if (store && hash) {
        tr_sample *s = NULL;
        tr_error err;
        if (tr_store_get(store, x->value, &s, &err) == 1) {
            json_object_set_new(e, "sample",
                                json_pack("{s:s, s:I, s:s?}", "sha256_hash", s->d.sha256,
                                          "id", (json_int_t)s->id, "signature", s->signature));
            tr_sample_free(s);
        }
    }
    return e;
}

int tr_report_draft(const unsigned char *data, size_t len, const tr_report_opts *o,
                    const tr_gazetteer *g, struct tr_store *store, json_t **out, tr_error *err)
{
    err->msg[0] = 0;
    const char *marking = NULL;
    if (o->marking && !(marking = tr_report_marking_id(o->marking)))
        return tr_fail(err, "unknown marking '%s' (TLP:CLEAR, TLP:GREEN, TLP:AMBER, "
                            "TLP:AMBER+STRICT, TLP:RED, TLP:WHITE)", o->marking);
    char *published = NULL;
    if (o->published && !(published = report_published_from(o->published, err)))
        return -1;
    tr_doc doc;
    if ((o->in_process ? tr_doc_extract : tr_doc_extract_isolated)(data, len, o->filename, &doc,
                                                                    err) != 0) {
        free(published);
        return -1;
    }
    tr_ioc_list iocs;
    if (tr_ioc_extract(doc.text, doc.len, &iocs, err) != 0) {
        tr_doc_free(&doc);
        free(published);
        return -1;
    }
    /* Links of an HTML page or a mail are candidates too: scan each alone. */
    tr_ioc_list *linkiocs = tr_xcalloc(doc.nlinks ? doc.nlinks : 1, sizeof *linkiocs);
    for (size_t i = 0; i < doc.nlinks; i++)
        if (tr_ioc_extract(doc.links[i], strlen(doc.links[i]), &linkiocs[i], err) != 0)
            memset(&linkiocs[i], 0, sizeof linkiocs[i]);
    tr_entity_list ents = {0};
    if (g)
        tr_gazetteer_match(g, doc.text, doc.len, &ents);

    char now[32];
    tr_stix_now(now);
    if (!published)
        published = tr_xstrdup(doc.published ? doc.published : now);
    json_t *markings = json_array();
    if (marking)
        json_array_append_new(markings, json_string(marking));

    json_t *objects = json_array(), *refs = json_array(), *extractions = json_array();
    json_t *seen = json_object();
    json_t *made_for = json_object();   /* kind:value of objects already made */
    shared_strings ss = {0};
    int rc = 0;
    json_t *artifact = artifact_of(data, len, &doc, markings, err);
    if (!artifact) {
        rc = -1;
        goto done;
    }
    add_ref(refs, seen, json_string_value(json_object_get(artifact, "id")));
    json_array_append_new(objects, artifact);

    for (size_t pass = 0; pass <= doc.nlinks; pass++) {
        tr_ioc_list *l = pass == 0 ? &iocs : &linkiocs[pass - 1];
        for (size_t i = 0; i < l->n; i++) {
            const tr_ioc *x = &l->v[i];
            json_t *e = extraction_json(x, pass == 0 ? doc.text : NULL, store, &ss);
            if (pass > 0) {
                /* Not in the text: the offsets are the link's. */
                json_object_set_new(e, "source", json_string("link"));
                json_object_set_new(e, "link", json_string(doc.links[pass - 1]));
            }
            json_array_append_new(extractions, e);
            if (x->cls != TR_IOCC_INDICATOR && x->cls != TR_IOCC_REFERENCE)
                continue;
            char id[128];
            json_t *obj = NULL;
            /* A value named again makes the same object: skip the pattern,
             * the id's SHA-1 and the object (most of a long report's
             * mentions repeat an indicator). */
            char *key = tr_xasprintf("%d:%s", (int)x->kind, x->value);
            bool again = json_object_get(made_for, key) != NULL;
            if (!again)
                json_object_set_new(made_for, key, json_true());
            free(key);
            if (again)
                continue;
            if (x->kind == TR_IOC_CVE) {
                const char *known = NULL;
                for (size_t k = 0; k < ents.n; k++)
                    if (strcmp(ents.v[k].type, "vulnerability") == 0 &&
                        strcasecmp(ents.v[k].name, x->value) == 0)
                        known = ents.v[k].id;
                if (known) {
                    add_ref(refs, seen, known);
                    continue;
                }
            }
            int made = report_ioc_object(x->kind, x->value, published, &obj, id, err);
            if (made < 0)
                goto fail;
            if (made == 0)
                continue;
            if (!obj)
                goto fail_json;
            if (!add_ref(refs, seen, id)) {
                json_decref(obj);
                continue;
            }
            common(obj, now, markings);
            json_array_append_new(objects, obj);
        }
    }

    json_t *entities = json_array();
    for (size_t k = 0; k < ents.n; k++) {
        const tr_entity_hit *h = &ents.v[k];
        json_array_append_new(entities,
                              json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "id", h->id, "type",
                                        h->type, "name", h->name, "matched", h->matched,
                                        "offset", (json_int_t)h->offset, "length",
                                        (json_int_t)h->length));
        add_ref(refs, seen, h->id);
    }

    const char *name = o->name ? o->name : doc.title ? doc.title : o->filename ? o->filename
                                                                                : "Imported report";
    char rid[128], u[37];
    tr_stix_uuid4(u);
    snprintf(rid, sizeof rid, "report--%s", u);
    json_t *report = json_pack("{s:s, s:s, s:s, s:s, s:s, s:[s], s:O}", "type", "report", "id",
                               rid, "name", name, "published", published, "description",
                               doc.text, "report_types", "threat-report", "object_refs", refs);
    if (!report) {
        json_decref(entities);
        goto fail_json;
    }
    common(report, now, markings);
    if (o->labels && o->labels[0]) {
        json_t *labels = json_array();
        for (size_t k = 0; o->labels[k]; k++)
            json_array_append_new(labels, json_string(o->labels[k]));
        json_object_set_new(report, "labels", labels);
    }
    json_array_insert(objects, 0, report);

    char bid[128];
    tr_stix_uuid4(u);
    snprintf(bid, sizeof bid, "bundle--%s", u);
    json_t *d = json_object();
    json_object_set_new(d, "document",
                        json_pack("{s:s, s:s, s:s?, s:s?, s:I, s:I}", "format",
                                  tr_doc_format_name(doc.format), "charset", doc.charset,
                                  "title", doc.title, "published", doc.published, "bytes",
                                  (json_int_t)len, "text_length", (json_int_t)doc.len));
    json_object_set_new(d, "text", json_string(doc.text));
    json_object_set_new(d, "extractions", extractions);
    extractions = NULL;
    json_object_set_new(d, "entities", entities);
    json_object_set_new(d, "candidates", report_candidates(doc.text, doc.len, &ents));
    json_object_set_new(d, "proposals", report_proposals(doc.text, doc.len, &ents));
    json_object_set_new(d, "report", report);
    json_object_set_new(d, "bundle",
                        json_pack("{s:s, s:s, s:O}", "type", "bundle", "id", bid, "objects",
                                  objects));
    *out = d;
    goto done;

fail_json:
    tr_fail(err, "cannot build the draft (text not valid UTF-8?)");
fail:
    rc = -1;
done:
    json_decref(objects);
    json_decref(refs);
    json_decref(seen);
    json_decref(made_for);
    shared_free(&ss);
    json_decref(extractions);
    json_decref(markings);
    for (size_t i = 0; i < doc.nlinks; i++)
        tr_ioc_list_free(&linkiocs[i]);
    free(linkiocs);
    tr_ioc_list_free(&iocs);
    tr_entity_list_free(&ents);
    tr_doc_free(&doc);
    free(published);
    return rc;
}
