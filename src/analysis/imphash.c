/* imphash from the import table libyara's pe module parsed: the same scan
 * that gives the signatures and icons (pe_sign.c), so a PE is parsed once. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yara.h>

#include "analysis/analysis.h"
#include "analysis/analysis_internal.h"
#include "analysis/yara_pe.h"

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

void pe_imphash_from_module(YR_OBJECT *pe, char out[TR_MD5_HEX])
{
    /* "kernel32.exitprocess,ws2_32.socket,..." */
    tr_buf text = {0};
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
            if (text.len)
                tr_buf_append(&text, ",", 1);
            append_lower(&text, libname->c_string, stem);
            tr_buf_append(&text, ".", 1);
            append_lower(&text, fn->c_string, fn->length);
        }
    }
    out[0] = '\0';
    if (text.len)
        tr_md5_hex(text.data, text.len, out);
    tr_buf_free(&text);
}

void tr_pe_imphash(tr_binan *a, const unsigned char *p, size_t n, char out[TR_MD5_HEX])
{
    tr_bin_info b = {0};
    tr_pe_analyze(a, p, n, &b);
    memcpy(out, b.imphash, TR_MD5_HEX);
    for (size_t i = 0; i < b.n_certs; i++)
        tr_cert_free(&b.certs[i]);
    free(b.certs);
}
