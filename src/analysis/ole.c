/* Office documents (libgsf): the streams of an OLE2 compound file, whether
 * it carries macros, and its VBA project's modules. Office Open XML files
 * (docm, xlsm...) count when they carry a VBA project (vbaProject.bin), which
 * libgsf finds in the zip. Bazaar's ole_information is an object for Office
 * samples and [] for others; the object's fields are trawl's (see
 * docs/analysis.md). */
#include <gsf/gsf.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis.h"

#define MAX_STREAMS 1000
#define MAX_DEPTH 16

/* The largest vbaProject.bin inflated out of an OOXML zip. */
#define OLE_VBA_PROJECT_MAX ((gsf_off_t)64 << 20)

static pthread_once_t gsf_once = PTHREAD_ONCE_INIT;

static void gsf_setup(void)
{
    gsf_init();
}

typedef struct walk {
    json_t *streams;
    size_t count;
    bool vba, macros;
} walk;

static void visit(GsfInfile *dir, const char *prefix, int depth, walk *w)
{
    int n = gsf_infile_num_children(dir);
    for (int i = 0; i < n && w->count < MAX_STREAMS; i++) {
        const char *name = gsf_infile_name_by_index(dir, i);
        GsfInput *child = gsf_infile_child_by_index(dir, i);
        if (!child)
            continue;
        char *path = tr_xasprintf("%s%s", prefix, name ? name : "");
        /* Word keeps its project in Macros/, Excel in _VBA_PROJECT_CUR/,
         * and both have a VBA/ storage with a "dir" stream in it. */
        if (name && (strcmp(name, "Macros") == 0 || strcmp(name, "_VBA_PROJECT_CUR") == 0 ||
                     strcmp(name, "VBA") == 0))
            w->macros = true;
        if (name && strcmp(name, "_VBA_PROJECT") == 0)
            w->vba = true;
        if (GSF_IS_INFILE(child) && gsf_infile_num_children(GSF_INFILE(child)) >= 0) {
            if (depth < MAX_DEPTH) {
                char *sub = tr_xasprintf("%s/", path);
                visit(GSF_INFILE(child), sub, depth + 1, w);
                free(sub);
            }
        } else {
            w->count++;
            json_array_append_new(w->streams,
                                  json_pack("{s:s, s:I}", "name", path, "size",
                                            (json_int_t)gsf_input_size(child)));
        }
        free(path);
        g_object_unref(child);
    }
}

static int cmp_json_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The modules of the VBA project libgsf finds (OLE2 or OOXML). Only their
 * names: libgsf hands the sources over without their lengths. */
static void vba_modules(GsfInput *in, json_t *out)
{
    GError *err = NULL;
    GsfInfileMSVBA *vba = gsf_input_find_vba(in, &err);
    if (err)
        g_error_free(err);
    if (!vba) {
        /* An OOXML vbaProject.bin has its VBA storage at the root, where
         * gsf_input_find_vba does not look. */
        GsfInfile *root = gsf_infile_msole_new(in, NULL);
        GsfInput *dir = root ? gsf_infile_child_by_name(root, "VBA") : NULL;
        if (dir && GSF_IS_INFILE(dir)) {
            GsfInfile *v = gsf_infile_msvba_new(GSF_INFILE(dir), NULL);
            vba = v ? GSF_INFILE_MSVBA(v) : NULL;
        }
        if (dir)
            g_object_unref(dir);
        if (root)
            g_object_unref(root);
        if (!vba)
            return;
    }
    GHashTable *mods = gsf_infile_msvba_get_modules(vba);
    if (mods) {
        guint n = g_hash_table_size(mods);
        const char **names = tr_xcalloc(n ? n : 1, sizeof *names);
        GHashTableIter it;
        gpointer k;
        guint i = 0;
        g_hash_table_iter_init(&it, mods);
        while (g_hash_table_iter_next(&it, &k, NULL) && i < n)
            names[i++] = k;
        qsort(names, i, sizeof *names, cmp_json_name);
        for (guint j = 0; j < i; j++)
            json_array_append_new(out, json_string(names[j]));
        free(names);
    }
    g_object_unref(vba);
}

char *tr_ole_info_json(const unsigned char *p, size_t n)
{
    static const unsigned char ole_magic[8] = {0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1};
    bool ole = n >= 512 && memcmp(p, ole_magic, 8) == 0;
    bool zip = n >= 30 && memcmp(p, "PK\x03\x04", 4) == 0;
    if (!ole && !zip)
        return NULL;
    pthread_once(&gsf_once, gsf_setup);
    GsfInput *in = gsf_input_memory_new(p, (gsf_off_t)n, FALSE);
    if (!in)
        return NULL;
    walk w = {json_array(), 0, false, false};
    json_t *modules = json_array();
    if (ole) {
        GError *err = NULL;
        GsfInfile *root = gsf_infile_msole_new(in, &err);
        if (err)
            g_error_free(err);
        if (!root) {
            ole = false;
        } else {
            visit(root, "", 0, &w);
            g_object_unref(root);
            vba_modules(in, modules);
        }
    } else {
        /* OOXML keeps the project as a compound file in the zip. */
        GError *err = NULL;
        GsfInfile *z = gsf_infile_zip_new(in, &err);
        if (err)
            g_error_free(err);
        static const char *const parts[] = {"word", "xl", "ppt"};
        for (size_t i = 0; z && i < 3 && !json_array_size(modules); i++) {
            GsfInput *bin = gsf_infile_child_by_vname(z, parts[i], "vbaProject.bin", NULL);
            if (!bin)
                continue;
            /* The size is the zip header's claim: a crafted document says 2 GB
             * (fuzz_analysis_ole). Real projects are a few MB; larger ones
             * are left unread rather than inflated. */
            gsf_off_t size = gsf_input_size(bin);
            const guint8 *bytes =
                size > 0 && size <= OLE_VBA_PROJECT_MAX ? gsf_input_read(bin, size, NULL) : NULL;
            GsfInput *copy = bytes ? gsf_input_memory_new_clone(bytes, size) : NULL;
            g_object_unref(bin);
            if (!copy)
                continue;
            GsfInfile *proj = gsf_infile_msole_new(copy, NULL);
            if (proj) {
                char *prefix = tr_xasprintf("%s/vbaProject.bin/", parts[i]);
                visit(proj, prefix, 0, &w);
                free(prefix);
                g_object_unref(proj);
                vba_modules(copy, modules);
            }
            g_object_unref(copy);
        }
        if (z)
            g_object_unref(z);
    }
    g_object_unref(in);
    char *text = NULL;
    /* A zip is an Office document here only when it carries VBA. */
    if (ole || w.vba || json_array_size(modules) > 0) {
        bool has_vba = w.vba || json_array_size(modules) > 0;
        json_t *o = json_pack("{s:s, s:b, s:b, s:o, s:o}",
                              "container", ole ? "ole2" : "ooxml",
                              "macros", w.macros || has_vba,
                              "vba_project", has_vba,
                              "vba_modules", json_incref(modules),
                              "streams", json_incref(w.streams));
        if (!o)
            tr_die("out of memory building JSON");
        text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!text)
            tr_die("out of memory building JSON");
    }
    json_decref(w.streams);
    json_decref(modules);
    return text;
}
