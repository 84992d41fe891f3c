/* ole_information on compound files written here with libgsf's writer: a
 * plain Word-like file, one with a VBA project (a "dir" stream naming a
 * module and the module's source, both MS-OVBA compressed), and a docm-like
 * zip carrying that project as vbaProject.bin. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <gsf/gsf.h>
#include <jansson.h>

#include "analysis/analysis.h"

/* MS-OVBA "compressed container" made only of literal tokens: signature
 * byte, one chunk header, then groups of a zero flag byte and up to 8 bytes.
 * Valid for up to 4096 bytes, a single chunk. */
static GByteArray *ovba_literal(const char *text, size_t n)
{
    assert_true(n <= 4096);
    GByteArray *out = g_byte_array_new();
    guint8 sig = 1, hdr[2] = {0, 0};
    g_byte_array_append(out, &sig, 1);
    g_byte_array_append(out, hdr, 2);
    for (size_t i = 0; i < n; i += 8) {
        guint8 flag = 0;
        g_byte_array_append(out, &flag, 1);
        g_byte_array_append(out, (const guint8 *)text + i, (guint)(n - i < 8 ? n - i : 8));
    }
    size_t chunk = out->len - 1;          /* header and data */
    guint16 h = (guint16)(((chunk - 3) & 0x0fff) | 0x3000 | 0x8000);
    out->data[1] = (guint8)h;
    out->data[2] = (guint8)(h >> 8);
    return out;
}

static void rec(GByteArray *b, guint16 tag, const void *p, guint32 len)
{
    guint8 h[6] = {(guint8)tag, (guint8)(tag >> 8), (guint8)len, (guint8)(len >> 8),
                   (guint8)(len >> 16), (guint8)(len >> 24)};
    g_byte_array_append(b, h, 6);
    if (len)
        g_byte_array_append(b, p, len);
}

static void put(GsfOutfile *dir, const char *name, const void *p, size_t n)
{
    GsfOutput *o = gsf_outfile_new_child(dir, name, FALSE);
    assert_non_null(o);
    assert_true(gsf_output_write(o, n, p));
    assert_true(gsf_output_close(o));
    g_object_unref(o);
}

static const char module_src[] = "Attribute VB_Name = \"Dropper\"\r\n"
                                 "Sub Document_Open()\r\n"
                                 "    Shell \"calc.exe\"\r\n"
                                 "End Sub\r\n";

/* The VBA storage's streams under dir: _VBA_PROJECT, dir, the module. */
static void write_vba(GsfOutfile *vba)
{
    static const guint8 vba_project[7] = {0xcc, 0x61, 0xff, 0xff, 0x00, 0x00, 0x00};
    put(vba, "_VBA_PROJECT", vba_project, sizeof vba_project);
    GByteArray *dir = g_byte_array_new();
    guint32 zero = 0;
    rec(dir, 0x19, "Dropper", 7);
    rec(dir, 0x1a, "Dropper", 7);
    rec(dir, 0x31, &zero, 4);
    rec(dir, 0x10, NULL, 0);
    GByteArray *cdir = ovba_literal((const char *)dir->data, dir->len);
    put(vba, "dir", cdir->data, cdir->len);
    GByteArray *src = ovba_literal(module_src, sizeof module_src - 1);
    put(vba, "Dropper", src->data, src->len);
    g_byte_array_free(dir, TRUE);
    g_byte_array_free(cdir, TRUE);
    g_byte_array_free(src, TRUE);
}

/* An OLE2 file in memory; with_macros adds Macros/VBA. Caller frees. */
static guint8 *ole_file(bool with_macros, size_t *n)
{
    GsfOutput *mem = gsf_output_memory_new();
    GsfOutfile *root = gsf_outfile_msole_new(mem);
    static const char body[] = "not really a Word document, but a stream named like one";
    put(root, "WordDocument", body, sizeof body);
    if (with_macros) {
        GsfOutput *macros = gsf_outfile_new_child(root, "Macros", TRUE);
        GsfOutput *vba = gsf_outfile_new_child(GSF_OUTFILE(macros), "VBA", TRUE);
        write_vba(GSF_OUTFILE(vba));
        gsf_output_close(vba);
        gsf_output_close(macros);
        g_object_unref(vba);
        g_object_unref(macros);
    }
    assert_true(gsf_output_close(GSF_OUTPUT(root)));
    g_object_unref(root);
    *n = (size_t)gsf_output_size(mem);
    guint8 *out = g_memdup2(gsf_output_memory_get_bytes(GSF_OUTPUT_MEMORY(mem)), *n);
    gsf_output_close(mem);
    g_object_unref(mem);
    return out;
}

/* A zip with word/vbaProject.bin: a compound file whose VBA storage is at
 * the root's "VBA", as Office writes it. */
static guint8 *docm_file(size_t *n)
{
    GsfOutput *pmem = gsf_output_memory_new();
    GsfOutfile *proj = gsf_outfile_msole_new(pmem);
    GsfOutput *vba = gsf_outfile_new_child(proj, "VBA", TRUE);
    write_vba(GSF_OUTFILE(vba));
    gsf_output_close(vba);
    g_object_unref(vba);
    gsf_output_close(GSF_OUTPUT(proj));
    g_object_unref(proj);

    GsfOutput *mem = gsf_output_memory_new();
    GsfOutfile *zip = gsf_outfile_zip_new(mem, NULL);
    assert_non_null(zip);
    static const char types[] = "<?xml version=\"1.0\"?><Types/>";
    put(zip, "[Content_Types].xml", types, sizeof types - 1);
    GsfOutput *word = gsf_outfile_new_child(zip, "word", TRUE);
    put(GSF_OUTFILE(word), "vbaProject.bin", gsf_output_memory_get_bytes(GSF_OUTPUT_MEMORY(pmem)),
        (size_t)gsf_output_size(pmem));
    gsf_output_close(word);
    g_object_unref(word);
    gsf_output_close(GSF_OUTPUT(zip));
    g_object_unref(zip);
    gsf_output_close(pmem);
    g_object_unref(pmem);
    *n = (size_t)gsf_output_size(mem);
    guint8 *out = g_memdup2(gsf_output_memory_get_bytes(GSF_OUTPUT_MEMORY(mem)), *n);
    gsf_output_close(mem);
    g_object_unref(mem);
    return out;
}

static json_t *info_of(const guint8 *p, size_t n)
{
    char *text = tr_ole_info_json(p, n);
    if (!text)
        return NULL;
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(j);
    return j;
}

static bool has_stream(json_t *info, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(info, "streams"), i, s)
        if (strcmp(json_string_value(json_object_get(s, "name")), name) == 0)
            return true;
    return false;
}

static void test_plain_ole(void **state)
{
    (void)state;
    size_t n;
    guint8 *p = ole_file(false, &n);
    json_t *j = info_of(p, n);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "container")), "ole2");
    assert_true(json_is_false(json_object_get(j, "macros")));
    assert_true(json_is_false(json_object_get(j, "vba_project")));
    assert_int_equal(json_array_size(json_object_get(j, "vba_modules")), 0);
    assert_true(has_stream(j, "WordDocument"));
    json_decref(j);
    g_free(p);
}

static void test_ole_with_macros(void **state)
{
    (void)state;
    size_t n;
    guint8 *p = ole_file(true, &n);
    json_t *j = info_of(p, n);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "macros")));
    assert_true(json_is_true(json_object_get(j, "vba_project")));
    assert_true(has_stream(j, "Macros/VBA/dir"));
    assert_true(has_stream(j, "Macros/VBA/_VBA_PROJECT"));
    json_t *mods = json_object_get(j, "vba_modules");
    assert_int_equal(json_array_size(mods), 1);
    assert_string_equal(json_string_value(json_array_get(mods, 0)), "Dropper");

    /* Through the analyser and Bazaar's field. */
    tr_binan *a = NULL;
    tr_error err;
    assert_int_equal(tr_binan_new(&a, &err), 0);
    tr_bin_info *b = tr_bin_analyze(a, p, n);
    json_t *sample = json_object();
    tr_bin_info_to_bazaar_json(b, sample);
    assert_true(json_equal(json_object_get(sample, "ole_information"), j));
    json_decref(sample);
    tr_bin_info_free(b);
    /* Not Office: an empty list, as Bazaar answers. */
    b = tr_bin_analyze(a, (const unsigned char *)"plain text, no container", 25);
    sample = json_object();
    tr_bin_info_to_bazaar_json(b, sample);
    assert_true(json_is_array(json_object_get(sample, "ole_information")));
    assert_int_equal(json_array_size(json_object_get(sample, "ole_information")), 0);
    json_decref(sample);
    tr_bin_info_free(b);
    tr_binan_free(a);
    json_decref(j);
    g_free(p);
}

static void test_docm(void **state)
{
    (void)state;
    size_t n;
    guint8 *p = docm_file(&n);
    json_t *j = info_of(p, n);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "container")), "ooxml");
    assert_true(json_is_true(json_object_get(j, "vba_project")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "vba_modules"), 0)),
                        "Dropper");
    json_decref(j);
    g_free(p);
}

static void test_not_office(void **state)
{
    (void)state;
    static const unsigned char ole_head[512] = {0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1};
    assert_null(tr_ole_info_json(ole_head, sizeof ole_head));
    assert_null(tr_ole_info_json((const unsigned char *)"PK\x03\x04 not a zip at all........", 34));
    assert_null(tr_ole_info_json((const unsigned char *)"MZ", 2));
}

/* TRAWL_WRITE_SEEDS=DIR: also leave the files for the fuzz target there. */
static void write_seeds(void)
{
    const char *dir = getenv("TRAWL_WRITE_SEEDS");
    if (!dir)
        return;
    size_t n;
    guint8 *p = ole_file(true, &n);
    char *path = tr_xasprintf("%s/macros.doc", dir);
    g_file_set_contents(path, (const char *)p, (gssize)n, NULL);
    free(path);
    g_free(p);
    p = docm_file(&n);
    path = tr_xasprintf("%s/project.docm", dir);
    g_file_set_contents(path, (const char *)p, (gssize)n, NULL);
    free(path);
    g_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_ole),
        cmocka_unit_test(test_ole_with_macros),
        cmocka_unit_test(test_docm),
        cmocka_unit_test(test_not_office),
    };
    gsf_init();
    write_seeds();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
