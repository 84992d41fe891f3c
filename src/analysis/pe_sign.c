/* What libyara's pe module parses of a PE: the Authenticode signature
 * (pe.signatures[]) and the resource directory (pe.resources[]), whose icons
 * icon.c hashes. */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <yara.h>

#include "analysis/analysis.h"
#include "analysis/analysis_internal.h"
#include "analysis/yara_pe.h"

int tr_yara_pe_probe(YR_RULES **out, tr_error *err)
{
    YR_COMPILER *c = NULL;
    if (yr_compiler_create(&c) != ERROR_SUCCESS)
        return tr_fail(err, "libyara: cannot create a compiler");
    if (yr_compiler_add_string(c, "import \"pe\" rule trawl_pe_probe { condition: false }",
                               NULL) != 0 ||
        yr_compiler_get_rules(c, out) != ERROR_SUCCESS) {
        yr_compiler_destroy(c);
        return tr_fail(err, "libyara: cannot compile the pe probe rule");
    }
    yr_compiler_destroy(c);
    return 0;
}

struct tr_binan {
    YR_RULES *pe_rules;
};

/* yr_initialize/yr_finalize keep an unlocked reference count. */
static pthread_mutex_t yara_lock = PTHREAD_MUTEX_INITIALIZER;

int tr_yara_init(tr_error *err)
{
    pthread_mutex_lock(&yara_lock);
    int rc = yr_initialize();
    pthread_mutex_unlock(&yara_lock);
    return rc == ERROR_SUCCESS ? 0 : tr_fail(err, "libyara: initialisation failed (%d)", rc);
}

void tr_yara_fini(void)
{
    pthread_mutex_lock(&yara_lock);
    yr_finalize();
    pthread_mutex_unlock(&yara_lock);
}

int tr_binan_new(tr_binan **out, tr_error *err)
{
    if (tr_yara_init(err) != 0)
        return -1;
    tr_binan *a = tr_xcalloc(1, sizeof *a);
    if (tr_yara_pe_probe(&a->pe_rules, err) != 0) {
        free(a);
        tr_yara_fini();
        return -1;
    }
    *out = a;
    return 0;
}

void tr_binan_free(tr_binan *a)
{
    if (!a)
        return;
    yr_rules_destroy(a->pe_rules);
    free(a);
    tr_yara_fini();
}

static char *string_dup(YR_OBJECT *o)
{
    if (!o || o->type != OBJECT_TYPE_STRING || !o->value.ss)
        return NULL;
    SIZED_STRING *s = o->value.ss;
    char *r = tr_xmalloc(s->length + 1);
    memcpy(r, s->c_string, s->length);
    r[s->length] = '\0';
    return r;
}

static int64_t int_value(YR_OBJECT *o)
{
    if (!o || o->type != OBJECT_TYPE_INTEGER || IS_UNDEFINED(o->value.i))
        return 0;
    return o->value.i;
}

char *tr_cert_cn(const char *name)
{
    if (!name)
        return NULL;
    /* "/C=US/O=Org/CN=Name": the last CN wins, as OpenSSL's oneline order
     * puts the most specific part last. */
    const char *cn = NULL;
    for (const char *q = name; (q = strstr(q, "/CN=")) != NULL; q += 4)
        cn = q + 4;
    if (!cn)
        return tr_xstrdup(name);
    size_t len = strcspn(cn, "/");
    char *r = tr_xmalloc(len + 1);
    memcpy(r, cn, len);
    r[len] = '\0';
    return r;
}

static char *serial_hex(const char *s)
{
    if (!s)
        return NULL;
    char *r = tr_xmalloc(strlen(s) + 1), *w = r;
    for (; *s; s++)
        if (isxdigit((unsigned char)*s))
            *w++ = (char)tolower((unsigned char)*s);
    *w = '\0';
    return r;
}

static void collect_signatures(YR_OBJECT *pe, tr_bin_info *out)
{
    YR_OBJECT *sigs = tr_yo_member(pe, "signatures");
    int n = tr_yo_array_length(sigs);
    for (int i = 0; i < n; i++) {
        YR_OBJECT *sig = tr_yo_array_item(sigs, i);
        char *serial = string_dup(tr_yo_member(sig, "serial"));
        char *thumb = string_dup(tr_yo_member(sig, "thumbprint"));
        if (!serial || !thumb) {
            free(serial);
            free(thumb);
            continue;
        }
        out->certs = tr_xrealloc(out->certs, (out->n_certs + 1) * sizeof *out->certs);
        tr_cert *c = &out->certs[out->n_certs++];
        memset(c, 0, sizeof *c);
        c->serial = serial_hex(serial);
        free(serial);
        c->thumbprint = thumb;
        c->issuer = string_dup(tr_yo_member(sig, "issuer"));
        c->subject = string_dup(tr_yo_member(sig, "subject"));
        c->issuer_cn = tr_cert_cn(c->issuer);
        c->subject_cn = tr_cert_cn(c->subject);
        c->algorithm = string_dup(tr_yo_member(sig, "algorithm"));
        c->valid_from = int_value(tr_yo_member(sig, "not_before"));
        c->valid_to = int_value(tr_yo_member(sig, "not_after"));
    }
}

typedef struct pe_scan {
    tr_bin_info *out;
    tr_pe_resource *res;      /* the icon resources */
    size_t nres;
} pe_scan;

static void collect_icons(YR_OBJECT *pe, pe_scan *ps)
{
    YR_OBJECT *res = tr_yo_member(pe, "resources");
    int n = tr_yo_array_length(res);
    for (int i = 0; i < n; i++) {
        YR_OBJECT *r = tr_yo_array_item(res, i);
        int64_t type = int_value(tr_yo_member(r, "type"));
        if (type != 3 && type != 14)
            continue;
        YR_OBJECT *id = tr_yo_member(r, "id");
        if (!id || id->type != OBJECT_TYPE_INTEGER || IS_UNDEFINED(id->value.i))
            continue;     /* named: icon groups refer to icons by number */
        ps->res = tr_xrealloc(ps->res, (ps->nres + 1) * sizeof *ps->res);
        ps->res[ps->nres++] = (tr_pe_resource){type, id->value.i,
                                               int_value(tr_yo_member(r, "offset")),
                                               int_value(tr_yo_member(r, "length"))};
    }
}

static int pe_callback(YR_SCAN_CONTEXT *sc, int message, void *data, void *user)
{
    (void)sc;
    if (message == CALLBACK_MSG_MODULE_IMPORTED) {
        YR_OBJECT_STRUCTURE *mod = data;
        pe_scan *ps = user;
        if (mod->identifier && strcmp(mod->identifier, "pe") == 0) {
            pe_imphash_from_module((YR_OBJECT *)mod, ps->out->imphash);
            collect_signatures((YR_OBJECT *)mod, ps->out);
            collect_icons((YR_OBJECT *)mod, ps);
        }
    }
    return CALLBACK_CONTINUE;
}

void tr_pe_analyze(tr_binan *a, const unsigned char *p, size_t n, tr_bin_info *out)
{
    if (n < 64 || p[0] != 'M' || p[1] != 'Z')
        return;
    pe_scan ps = {out, NULL, 0};
    if (yr_rules_scan_mem(a->pe_rules, p, n, SCAN_FLAGS_FAST_MODE, pe_callback, &ps, 60) !=
        ERROR_SUCCESS)
        out->imphash[0] = '\0';      /* an unfinished parse: no partial import list */
    authenticode_sha256_thumbprints(p, n, out);
    if (ps.nres)
        icon_dhash_from_resources(p, n, ps.res, ps.nres, out->dhash_icon);
    free(ps.res);
}
