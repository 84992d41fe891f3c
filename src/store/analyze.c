/* Per-sample analysis: libmagic for the type, libyara's pe module for the
 * import table behind imphash. Both libraries keep per-handle state, hence
 * one tr_analyzer per thread. */
#include "store/store.h"
#include "analysis/analysis.h"
#include "analysis/yara_pe.h"

#include <ctype.h>
#include <magic.h>
#include <stdlib.h>
#include <string.h>
#include <yara.h>

struct tr_analyzer {
    magic_t magic;
    YR_RULES *pe_rules;
};

int tr_analyzer_new(tr_analyzer **out, tr_error *err)
{
    tr_analyzer *a = tr_xcalloc(1, sizeof *a);
    a->magic = magic_open(MAGIC_NONE | MAGIC_ERROR);
    if (!a->magic) {
        free(a);
        return tr_fail(err, "libmagic: cannot open a handle");
    }
    if (magic_load(a->magic, NULL) != 0) {
        tr_fail(err, "libmagic: cannot load its database (%s); install libmagic-mgc",
                magic_error(a->magic));
        magic_close(a->magic);
        free(a);
        return -1;
    }
    if (tr_yara_init(err) != 0) {
        magic_close(a->magic);
        free(a);
        return -1;
    }
    if (tr_yara_pe_probe(&a->pe_rules, err) != 0) {
        tr_analyzer_free(a);
        return -1;
    }
    *out = a;
    return 0;
}

void tr_analyzer_free(tr_analyzer *a)
{
    if (!a)
        return;
    if (a->pe_rules)
        yr_rules_destroy(a->pe_rules);
    tr_yara_fini();
    if (a->magic)
        magic_close(a->magic);
    free(a);
}

/* ---- imphash ------------------------------------------------------------ */

typedef struct imphash_ctx {
    tr_buf text;             /* "kernel32.exitprocess,ws2_32.socket,..." */
} imphash_ctx;

static void append_lower(tr_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = (char)tolower((unsigned char)s[i]);
        tr_buf_append(b, &c, 1);
    }
}

/* pefile's rule, which YARA follows: drop the extension only when it is
 * .dll, .ocx or .sys. */
static size_t library_stem_len(const char *name, size_t n)
{
    const char *dot = NULL;
    for (size_t i = 0; i < n; i++)
        if (name[i] == '.')
            dot = name + i;
    if (!dot)
        return n;
    size_t ext = n - (size_t)(dot - name);
    if (ext == 4 && (strncasecmp(dot, ".dll", 4) == 0 || strncasecmp(dot, ".ocx", 4) == 0 ||
                     strncasecmp(dot, ".sys", 4) == 0))
        return (size_t)(dot - name);
    return n;
}

static SIZED_STRING *string_value(YR_OBJECT *o)
{
    return o && o->type == OBJECT_TYPE_STRING ? o->value.ss : NULL;
}

static void collect_imports(YR_OBJECT *pe, imphash_ctx *ctx)
{
    YR_OBJECT *libs = tr_yo_member(pe, "import_details");
    for (int lib = 0; lib < tr_yo_array_length(libs); lib++) {
        YR_OBJECT *entry = tr_yo_array_item(libs, lib);
        SIZED_STRING *libname = string_value(tr_yo_member(entry, "library_name"));
        YR_OBJECT *funcs = tr_yo_member(entry, "functions");
        if (!libname)
            continue;
        size_t stem = library_stem_len(libname->c_string, libname->length);
        for (int f = 0; f < tr_yo_array_length(funcs); f++) {
            SIZED_STRING *fn = string_value(tr_yo_member(tr_yo_array_item(funcs, f), "name"));
            if (!fn)
                continue;
            if (ctx->text.len)
                tr_buf_append(&ctx->text, ",", 1);
            append_lower(&ctx->text, libname->c_string, stem);
            tr_buf_append(&ctx->text, ".", 1);
            append_lower(&ctx->text, fn->c_string, fn->length);
        }
    }
}

static int imphash_callback(YR_SCAN_CONTEXT *sc, int message, void *data, void *user)
{
    (void)sc;
    if (message == CALLBACK_MSG_MODULE_IMPORTED) {
        YR_OBJECT_STRUCTURE *mod = data;
        if (mod->identifier && strcmp(mod->identifier, "pe") == 0)
            collect_imports((YR_OBJECT *)mod, user);
    }
    return CALLBACK_CONTINUE;
}

void tr_imphash(tr_analyzer *a, const unsigned char *p, size_t n, char out[TR_MD5_HEX])
{
    out[0] = '\0';
    if (n < 64 || p[0] != 'M' || p[1] != 'Z')
        return;
    imphash_ctx ctx = {0};
    int rc = yr_rules_scan_mem(a->pe_rules, p, n, SCAN_FLAGS_FAST_MODE, imphash_callback, &ctx, 60);
    if (rc == ERROR_SUCCESS && ctx.text.len)
        tr_md5_hex(ctx.text.data, ctx.text.len, out);
    tr_buf_free(&ctx.text);
}

/* ---- type --------------------------------------------------------------- */

void tr_analyze_buffer(tr_analyzer *a, const unsigned char *p, size_t n, tr_analysis *out)
{
    memset(out, 0, sizeof *out);
    /* libmagic reads a bounded prefix itself; a bigger window only costs time. */
    size_t window = n < (4u << 20) ? n : (4u << 20);
    const void *buf = window ? (const void *)p : (const void *)"";
    magic_setflags(a->magic, MAGIC_MIME_TYPE | MAGIC_ERROR);
    const char *mime = magic_buffer(a->magic, buf, window);
    snprintf(out->mime, sizeof out->mime, "%s", mime ? mime : "application/octet-stream");
    magic_setflags(a->magic, MAGIC_NONE | MAGIC_ERROR);
    const char *desc = magic_buffer(a->magic, buf, window);
    snprintf(out->magic, sizeof out->magic, "%s", desc ? desc : "data");
    snprintf(out->file_type, sizeof out->file_type, "%s",
             tr_filetype_classify(out->mime, out->magic, p, n));
    tr_imphash(a, p, n, out->imphash);
}
