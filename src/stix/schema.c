/* A JSON-Schema (2020-12 subset) validator for the OASIS STIX 2.1 schemas:
 * $ref (relative files and #/ pointers), allOf/anyOf/oneOf/not, if/then/else,
 * type, enum, const, properties, patternProperties, additionalProperties,
 * required, min/maxProperties, propertyNames, dependencies/dependentRequired,
 * items, contains (min/maxContains), min/maxItems, uniqueItems, min/maxLength, pattern, minimum/maximum
 * (and the exclusive forms). "format" is an annotation in 2020-12 and is not
 * asserted, as the reference validators do by default. Regular expressions
 * are ECMA-262 in the schemas; PCRE2 reads that subset the same way. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "stix/schema.h"

typedef struct sdoc {
    const char *path;
    json_t *root;
} sdoc;

/* Immutable once built by init_once. */
static struct {
    sdoc *docs;
    size_t ndocs;
    json_t *pattern_index;     /* pattern text -> integer index into codes */
    pcre2_code **codes;
    size_t ncodes;
    char error[512];
} G;

static pthread_once_t init_guard = PTHREAD_ONCE_INIT;

static void add_pattern(const char *p)
{
    if (json_object_get(G.pattern_index, p))
        return;
    int ec = 0;
    PCRE2_SIZE off = 0;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)p, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &off, NULL);
    if (!code) {
        if (!G.error[0]) {
            PCRE2_UCHAR buf[256];
            pcre2_get_error_message(ec, buf, sizeof buf);
            snprintf(G.error, sizeof G.error, "schema pattern '%s' does not compile: %s", p,
                     (const char *)buf);
        }
        return;
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);   /* best effort: interpreted otherwise */
    G.codes = tr_xrealloc(G.codes, (G.ncodes + 1) * sizeof *G.codes);
    G.codes[G.ncodes] = code;
    json_object_set_new(G.pattern_index, p, json_integer((json_int_t)G.ncodes));
    G.ncodes++;
}

static void collect_patterns(json_t *s)
{
    if (json_is_array(s)) {
        size_t i;
        json_t *v;
        json_array_foreach(s, i, v) collect_patterns(v);
        return;
    }
    if (!json_is_object(s))
        return;
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v) {
        if (strcmp(k, "pattern") == 0 && json_is_string(v))
            add_pattern(json_string_value(v));
        if (strcmp(k, "patternProperties") == 0 && json_is_object(v)) {
            const char *pk;
            json_t *pv;
            json_object_foreach(v, pk, pv) add_pattern(pk);
        }
        collect_patterns(v);
    }
}

static void init_once(void)
{
    G.pattern_index = json_object();
    if (!G.pattern_index)
        tr_die("out of memory");
    size_t n = 0;
    while (tr_stix_schema_files[n].path)
        n++;
    G.docs = tr_xcalloc(n ? n : 1, sizeof *G.docs);
    for (size_t i = 0; i < n; i++) {
        json_error_t je;
        json_t *root = json_loadb(tr_stix_schema_files[i].data, tr_stix_schema_files[i].len, 0, &je);
        if (!root) {
            snprintf(G.error, sizeof G.error, "embedded schema %s: %s (line %d)",
                     tr_stix_schema_files[i].path, je.text, je.line);
            return;
        }
        G.docs[G.ndocs].path = tr_stix_schema_files[i].path;
        G.docs[G.ndocs].root = root;
        G.ndocs++;
        collect_patterns(root);
    }
}

int stix_schema_init(tr_error *err)
{
    pthread_once(&init_guard, init_once);
    if (G.error[0])
        return tr_fail(err, "%s", G.error);
    if (G.ndocs == 0)
        return tr_fail(err, "no STIX schemas were compiled into this binary");
    return 0;
}

static const sdoc *find_doc(const char *path)
{
    for (size_t i = 0; i < G.ndocs; i++)
        if (strcmp(G.docs[i].path, path) == 0)
            return &G.docs[i];
    return NULL;
}

static const struct {
    const char *type, *path;
} type_schemas[] = {
    {"attack-pattern", "sdos/attack-pattern.json"}, {"campaign", "sdos/campaign.json"},
    {"course-of-action", "sdos/course-of-action.json"}, {"grouping", "sdos/grouping.json"},
    {"identity", "sdos/identity.json"}, {"incident", "sdos/incident.json"},
    {"indicator", "sdos/indicator.json"}, {"infrastructure", "sdos/infrastructure.json"},
    {"intrusion-set", "sdos/intrusion-set.json"}, {"location", "sdos/location.json"},
    {"malware", "sdos/malware.json"}, {"malware-analysis", "sdos/malware-analysis.json"},
    {"note", "sdos/note.json"}, {"observed-data", "sdos/observed-data.json"},
    {"opinion", "sdos/opinion.json"}, {"report", "sdos/report.json"},
    {"threat-actor", "sdos/threat-actor.json"}, {"tool", "sdos/tool.json"},
    {"vulnerability", "sdos/vulnerability.json"},
    {"artifact", "observables/artifact.json"},
    {"autonomous-system", "observables/autonomous-system.json"},
    {"directory", "observables/directory.json"}, {"domain-name", "observables/domain-name.json"},
    {"email-addr", "observables/email-addr.json"},
    {"email-message", "observables/email-message.json"}, {"file", "observables/file.json"},
    {"ipv4-addr", "observables/ipv4-addr.json"}, {"ipv6-addr", "observables/ipv6-addr.json"},
    {"mac-addr", "observables/mac-addr.json"}, {"mutex", "observables/mutex.json"},
    {"network-traffic", "observables/network-traffic.json"},
    {"process", "observables/process.json"}, {"software", "observables/software.json"},
    {"url", "observables/url.json"}, {"user-account", "observables/user-account.json"},
    {"windows-registry-key", "observables/windows-registry-key.json"},
    {"x509-certificate", "observables/x509-certificate.json"},
    {"relationship", "sros/relationship.json"}, {"sighting", "sros/sighting.json"},
    {"marking-definition", "common/marking-definition.json"},
    {"language-content", "common/language-content.json"},
    {"extension-definition", "common/extension-definition.json"},
};

const char *stix_schema_for_type(const char *type)
{
    for (size_t i = 0; i < sizeof type_schemas / sizeof type_schemas[0]; i++)
        if (strcmp(type_schemas[i].type, type) == 0)
            return type_schemas[i].path;
    return NULL;
}

/* ---- validation --------------------------------------------------------- */

typedef struct vctx {
    char where[512];           /* deepest failure so far */
    char why[512];
    int have;
    int depth;
} vctx;

static bool validate(vctx *c, const sdoc *doc, json_t *schema, json_t *inst, const char *ipath);

static bool fail(vctx *c, const char *ipath, const char *fmt, ...) TR_PRINTF(3, 4);
static bool fail(vctx *c, const char *ipath, const char *fmt, ...)
{
    /* The deepest failure is the most telling one: "aliases/2 must be a
     * string" beats "the object matches none of the types". */
    size_t len = strlen(ipath);
    if (c->have && len < strlen(c->where))
        return false;
    if (c->have && len == strlen(c->where))
        return false;                  /* first at a given depth wins */
    snprintf(c->where, sizeof c->where, "%s", ipath);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
    c->have = 1;
    return false;
}

static bool type_is(json_t *inst, const char *t)
{
    if (strcmp(t, "string") == 0)
        return json_is_string(inst);
    if (strcmp(t, "object") == 0)
        return json_is_object(inst);
    if (strcmp(t, "array") == 0)
        return json_is_array(inst);
    if (strcmp(t, "boolean") == 0)
        return json_is_boolean(inst);
    if (strcmp(t, "null") == 0)
        return json_is_null(inst);
    if (strcmp(t, "number") == 0)
        return json_is_number(inst);
    if (strcmp(t, "integer") == 0) {
        if (json_is_integer(inst))
            return true;
        if (json_is_real(inst)) {
            double d = json_real_value(inst);
            return d == (double)(long long)d;
        }
        return false;
    }
    return false;
}

static size_t utf8_len(const char *s, size_t n)
{
    size_t cps = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            cps++;
    return cps;
}

/* 1 match, 0 no match, -1 unknown pattern (cannot happen after init). */
static int re_match(const char *pattern, const char *s, size_t n)
{
    json_t *ix = json_object_get(G.pattern_index, pattern);
    if (!ix)
        return -1;
    pcre2_code *code = G.codes[json_integer_value(ix)];
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    if (!md)
        tr_die("out of memory");
    int rc = pcre2_match(code, (PCRE2_SPTR)s, n, 0, PCRE2_NO_UTF_CHECK, md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
        /* A repeated group over a long value (the base64 of a binary
         * property: an artifact's payload_bin) outgrows JIT's default 32 KB
         * stack, which is not a "no match". Again with room for it. */
        pcre2_jit_stack *js = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, NULL);
        pcre2_match_context *mc = pcre2_match_context_create(NULL);
        if (!js || !mc)
            tr_die("out of memory");
        pcre2_jit_stack_assign(mc, NULL, js);
        rc = pcre2_match(code, (PCRE2_SPTR)s, n, 0, PCRE2_NO_UTF_CHECK, md, mc);
        pcre2_match_context_free(mc);
        pcre2_jit_stack_free(js);
    }
    pcre2_match_data_free(md);
    return rc >= 0 ? 1 : 0;
}

static double num(json_t *j)
{
    return json_number_value(j);
}

/* Resolves "other.json", "../dir/other.json", "#/definitions/x" and their
 * combinations against the current document. */
static json_t *resolve_ref(const sdoc *doc, const char *ref, const sdoc **out_doc)
{
    const char *hash = strchr(ref, '#');
    size_t flen = hash ? (size_t)(hash - ref) : strlen(ref);
    const sdoc *target = doc;
    if (flen) {
        char path[256];
        const char *slash = strrchr(doc->path, '/');
        size_t dlen = slash ? (size_t)(slash - doc->path) : 0;
        snprintf(path, sizeof path, "%.*s", (int)dlen, doc->path);
        const char *r = ref;
        size_t rlen = flen;
        while (rlen >= 3 && strncmp(r, "../", 3) == 0) {
            char *up = strrchr(path, '/');
            if (up)
                *up = '\0';
            else
                path[0] = '\0';
            r += 3;
            rlen -= 3;
        }
        while (rlen >= 2 && strncmp(r, "./", 2) == 0) {
            r += 2;
            rlen -= 2;
        }
        char full[512];
        snprintf(full, sizeof full, "%s%s%.*s", path, path[0] ? "/" : "", (int)rlen, r);
        target = find_doc(full);
        if (!target)
            return NULL;
    }
    json_t *node = target->root;
    if (hash && hash[1]) {
        const char *p = hash + 1;
        while (*p == '/') {
            p++;
            const char *end = strchr(p, '/');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            char key[256];
            snprintf(key, sizeof key, "%.*s", (int)len, p);
            node = json_is_object(node) ? json_object_get(node, key) : NULL;
            if (!node)
                return NULL;
            p += len;
        }
    }
    *out_doc = target;
    return node;
}

static void child_path(char *out, size_t sz, const char *base, const char *key)
{
    /* JSON pointer escaping: ~ and / inside a key. No snprintf: this runs
     * for every property of every object validated. */
    size_t n = strlen(base);
    if (n + 2 > sz)
        n = sz - 2;
    memcpy(out, base, n);
    out[n++] = '/';
    for (const char *k = key; *k && n + 3 < sz; k++) {
        if (*k == '~') {
            out[n++] = '~';
            out[n++] = '0';
        } else if (*k == '/') {
            out[n++] = '~';
            out[n++] = '1';
        } else {
            out[n++] = *k;
        }
    }
    out[n < sz ? n : sz - 1] = '\0';
}

/* Runs a subschema whose failure must not leave its error behind (anyOf
 * branches, not, if). */
static bool try_schema(vctx *c, const sdoc *doc, json_t *s, json_t *inst, const char *ipath,
                       vctx *trial)
{
    *trial = *c;
    trial->have = 0;
    trial->where[0] = trial->why[0] = '\0';
    return validate(trial, doc, s, inst, ipath);
}

static void adopt(vctx *c, const vctx *trial)
{
    if (!trial->have)
        return;
    if (!c->have || strlen(trial->where) > strlen(c->where)) {
        memcpy(c->where, trial->where, sizeof c->where);
        memcpy(c->why, trial->why, sizeof c->why);
        c->have = 1;
    }
}

static bool validate_object(vctx *c, const sdoc *doc, json_t *s, json_t *inst, const char *ipath)
{
    bool ok = true;
    json_t *props = json_object_get(s, "properties");
    json_t *pprops = json_object_get(s, "patternProperties");
    json_t *addl = json_object_get(s, "additionalProperties");
    json_t *pnames = json_object_get(s, "propertyNames");
    const char *k;
    json_t *v;
    char cp[512];
    json_object_foreach(inst, k, v) {
        child_path(cp, sizeof cp, ipath, k);
        bool matched = false;
        json_t *ps = props ? json_object_get(props, k) : NULL;
        if (ps) {
            matched = true;
            if (!validate(c, doc, ps, v, cp))
                ok = false;
        }
        if (pprops) {
            const char *pk;
            json_t *pv;
            json_object_foreach(pprops, pk, pv) {
                if (re_match(pk, k, strlen(k)) == 1) {
                    matched = true;
                    if (!validate(c, doc, pv, v, cp))
                        ok = false;
                }
            }
        }
        if (!matched && addl) {
            if (json_is_false(addl)) {
                ok = fail(c, cp, "property '%s' is not allowed here", k);
            } else if (json_is_object(addl) && !validate(c, doc, addl, v, cp)) {
                ok = false;
            }
        }
        if (pnames) {
            json_t *name = json_string(k);
            if (!name)
                tr_die("out of memory");
            vctx t;
            if (!try_schema(c, doc, pnames, name, cp, &t)) {
                ok = fail(c, cp, "property name '%s' is not allowed: %s", k, t.why);
            }
            json_decref(name);
        }
    }
    json_t *req = json_object_get(s, "required");
    size_t i;
    json_array_foreach(req, i, v) {
        if (json_is_string(v) && !json_object_get(inst, json_string_value(v))) {
            child_path(cp, sizeof cp, ipath, json_string_value(v));
            ok = fail(c, cp, "required property '%s' is missing", json_string_value(v));
        }
    }
    json_t *minp = json_object_get(s, "minProperties");
    if (minp && json_object_size(inst) < (size_t)json_integer_value(minp))
        ok = fail(c, ipath, "needs at least %lld properties", (long long)json_integer_value(minp));
    json_t *maxp = json_object_get(s, "maxProperties");
    if (maxp && json_object_size(inst) > (size_t)json_integer_value(maxp))
        ok = fail(c, ipath, "allows at most %lld properties", (long long)json_integer_value(maxp));
    json_t *deps = json_object_get(s, "dependencies");
    json_t *dreq = json_object_get(s, "dependentRequired");
    for (int pass = 0; pass < 2; pass++) {
        json_t *d = pass ? dreq : deps;
        json_object_foreach(d, k, v) {
            if (!json_object_get(inst, k))
                continue;
            if (json_is_array(v)) {
                size_t j;
                json_t *need;
                json_array_foreach(v, j, need) {
                    if (json_is_string(need) && !json_object_get(inst, json_string_value(need))) {
                        child_path(cp, sizeof cp, ipath, json_string_value(need));
                        ok = fail(c, cp, "property '%s' is required when '%s' is present",
                                  json_string_value(need), k);
                    }
                }
            } else if (json_is_object(v) && !validate(c, doc, v, inst, ipath)) {
                ok = false;
            }
        }
    }
    return ok;
}

static bool validate_array(vctx *c, const sdoc *doc, json_t *s, json_t *inst, const char *ipath)
{
    bool ok = true;
    size_t n = json_array_size(inst);
    json_t *items = json_object_get(s, "items");
    char cp[512];
    if (items && (json_is_object(items) || json_is_boolean(items))) {
        for (size_t i = 0; i < n; i++) {
            snprintf(cp, sizeof cp, "%s/%zu", ipath, i);
            if (!validate(c, doc, items, json_array_get(inst, i), cp))
                ok = false;
        }
    }
    json_t *contains = json_object_get(s, "contains");
    if (contains) {
        json_t *minc = json_object_get(s, "minContains"), *maxc = json_object_get(s, "maxContains");
        size_t want = minc ? (size_t)json_integer_value(minc) : 1, have = 0;
        for (size_t i = 0; i < n; i++) {
            vctx t;
            snprintf(cp, sizeof cp, "%s/%zu", ipath, i);
            if (try_schema(c, doc, contains, json_array_get(inst, i), cp, &t))
                have++;
        }
        if (have < want)
            ok = fail(c, ipath, "needs %zu item%s of the required form", want, want == 1 ? "" : "s");
        if (maxc && have > (size_t)json_integer_value(maxc))
            ok = fail(c, ipath, "has more than %lld items of the limited form",
                      (long long)json_integer_value(maxc));
    }
    json_t *mini = json_object_get(s, "minItems");
    if (mini && n < (size_t)json_integer_value(mini))
        ok = fail(c, ipath, "needs at least %lld item%s", (long long)json_integer_value(mini),
                  json_integer_value(mini) == 1 ? "" : "s");
    json_t *maxi = json_object_get(s, "maxItems");
    if (maxi && n > (size_t)json_integer_value(maxi))
        ok = fail(c, ipath, "allows at most %lld items", (long long)json_integer_value(maxi));
    if (json_is_true(json_object_get(s, "uniqueItems"))) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++)
                if (json_equal(json_array_get(inst, i), json_array_get(inst, j))) {
                    snprintf(cp, sizeof cp, "%s/%zu", ipath, j);
                    return fail(c, cp, "repeats item %zu", i);
                }
    }
    return ok;
}

static bool validate(vctx *c, const sdoc *doc, json_t *s, json_t *inst, const char *ipath)
{
    if (json_is_true(s))
        return true;
    if (json_is_false(s))
        return fail(c, ipath, "no value is allowed here");
    if (!json_is_object(s))
        return true;
    if (++c->depth > 64) {
        c->depth--;
        return fail(c, ipath, "schema nesting too deep");
    }
    bool ok = true;
    json_t *ref = json_object_get(s, "$ref");
    if (json_is_string(ref)) {
        const sdoc *rdoc = NULL;
        json_t *target = resolve_ref(doc, json_string_value(ref), &rdoc);
        if (!target)
            ok = fail(c, ipath, "schema reference %s is not among the compiled schemas",
                      json_string_value(ref));
        else if (!validate(c, rdoc, target, inst, ipath))
            ok = false;
    }
    json_t *type = json_object_get(s, "type");
    if (json_is_string(type) && !type_is(inst, json_string_value(type))) {
        ok = fail(c, ipath, "must be %s %s", strchr("aeio", json_string_value(type)[0]) ? "an" : "a",
                  json_string_value(type));
        c->depth--;
        return false;                   /* the rest would only repeat this */
    }
    if (json_is_array(type)) {
        bool any = false;
        size_t i;
        json_t *t;
        json_array_foreach(type, i, t) any = any || (json_is_string(t) && type_is(inst, json_string_value(t)));
        if (!any) {
            c->depth--;
            return fail(c, ipath, "has the wrong type");
        }
    }
    json_t *en = json_object_get(s, "enum");
    if (json_is_array(en)) {
        bool found = false;
        size_t i;
        json_t *e;
        json_array_foreach(en, i, e) found = found || json_equal(e, inst);
        if (!found) {
            char *allowed = json_dumps(en, JSON_COMPACT);
            ok = fail(c, ipath, "must be one of %s", allowed ? allowed : "the listed values");
            free(allowed);
        }
    }
    json_t *cst = json_object_get(s, "const");
    if (cst && !json_equal(cst, inst)) {
        char *want = json_dumps(cst, JSON_COMPACT | JSON_ENCODE_ANY);
        ok = fail(c, ipath, "must be %s", want ? want : "the constant value");
        free(want);
    }
    if (json_is_string(inst)) {
        const char *str = json_string_value(inst);
        size_t len = json_string_length(inst);
        json_t *minl = json_object_get(s, "minLength"), *maxl = json_object_get(s, "maxLength");
        if (minl && utf8_len(str, len) < (size_t)json_integer_value(minl))
            ok = fail(c, ipath, "must be at least %lld characters long", (long long)json_integer_value(minl));
        if (maxl && utf8_len(str, len) > (size_t)json_integer_value(maxl))
            ok = fail(c, ipath, "must be at most %lld characters long", (long long)json_integer_value(maxl));
        json_t *pat = json_object_get(s, "pattern");
        if (json_is_string(pat)) {
            int m = re_match(json_string_value(pat), str, len);
            if (m == 0) {
                json_t *title = json_object_get(s, "title");
                if (json_is_string(title))
                    ok = fail(c, ipath, "'%.80s' does not match %s (%s)", str,
                              json_string_value(pat), json_string_value(title));
                else
                    ok = fail(c, ipath, "'%.80s' does not match the pattern %s", str,
                              json_string_value(pat));
            } else if (m < 0) {
                ok = fail(c, ipath, "pattern %s was not compiled", json_string_value(pat));
            }
        }
    }
    if (json_is_number(inst)) {
        double x = num(inst);
        json_t *b;
        if ((b = json_object_get(s, "minimum")) && x < num(b))
            ok = fail(c, ipath, "must be >= %g", num(b));
        if ((b = json_object_get(s, "maximum")) && x > num(b))
            ok = fail(c, ipath, "must be <= %g", num(b));
        if ((b = json_object_get(s, "exclusiveMinimum")) && json_is_number(b) && x <= num(b))
            ok = fail(c, ipath, "must be > %g", num(b));
        if ((b = json_object_get(s, "exclusiveMaximum")) && json_is_number(b) && x >= num(b))
            ok = fail(c, ipath, "must be < %g", num(b));
    }
    if (json_is_object(inst) && !validate_object(c, doc, s, inst, ipath))
        ok = false;
    if (json_is_array(inst) && !validate_array(c, doc, s, inst, ipath))
        ok = false;
    json_t *all = json_object_get(s, "allOf");
    size_t i;
    json_t *sub;
    json_array_foreach(all, i, sub) {
        if (!validate(c, doc, sub, inst, ipath))
            ok = false;
    }
    json_t *any = json_object_get(s, "anyOf");
    if (json_is_array(any)) {
        bool found = false;
        vctx best = {0};
        json_array_foreach(any, i, sub) {
            vctx t;
            if (try_schema(c, doc, sub, inst, ipath, &t)) {
                found = true;
                break;
            }
            adopt(&best, &t);
        }
        if (!found) {
            if (best.have && strlen(best.where) > strlen(ipath))
                adopt(c, &best);
            else
                fail(c, ipath, "matches none of the allowed forms%s%s", best.have ? ": " : "", best.why);
            ok = false;
        }
    }
    json_t *one = json_object_get(s, "oneOf");
    if (json_is_array(one)) {
        size_t matches = 0;
        vctx best = {0};
        json_array_foreach(one, i, sub) {
            vctx t;
            if (try_schema(c, doc, sub, inst, ipath, &t))
                matches++;
            else
                adopt(&best, &t);
        }
        if (matches == 0) {
            if (best.have && strlen(best.where) > strlen(ipath))
                adopt(c, &best);
            else
                fail(c, ipath, "matches none of the allowed forms%s%s", best.have ? ": " : "", best.why);
            ok = false;
        } else if (matches > 1) {
            ok = fail(c, ipath, "matches more than one of the exclusive forms");
        }
    }
    json_t *nt = json_object_get(s, "not");
    if (nt) {
        vctx t;
        if (try_schema(c, doc, nt, inst, ipath, &t)) {
            json_t *title = json_object_get(nt, "title");
            ok = fail(c, ipath, "is a form that is not allowed here%s%s",
                      json_is_string(title) ? ": " : "", json_is_string(title) ? json_string_value(title) : "");
        }
    }
    json_t *iff = json_object_get(s, "if");
    if (iff) {
        vctx t;
        json_t *branch = try_schema(c, doc, iff, inst, ipath, &t) ? json_object_get(s, "then")
                                                                   : json_object_get(s, "else");
        if (branch && !validate(c, doc, branch, inst, ipath))
            ok = false;
    }
    c->depth--;
    return ok;
}

int stix_schema_validate(const char *schema_path, json_t *inst, char *where, size_t where_sz,
                         char *why, size_t why_sz, tr_error *err)
{
    if (stix_schema_init(err) != 0)
        return -1;
    const sdoc *doc = find_doc(schema_path);
    if (!doc)
        return tr_fail(err, "no compiled schema %s", schema_path);
    vctx c;
    memset(&c, 0, sizeof c);
    if (validate(&c, doc, doc->root, inst, ""))
        return 1;
    snprintf(where, where_sz, "%s", c.where);
    snprintf(why, why_sz, "%s", c.have ? c.why : "does not match its schema");
    return 0;
}
