/* Bulk exports in the shapes MalwareBazaar publishes (bazaar.abuse.ch/export):
 * CSV and hash lists behind a block of '#' comment lines, and JSON. Parsers
 * written for those files skip the '#' lines and read the rest unchanged. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <zip.h>

#include "store/store.h"

static const char *const format_names[] = {"csv", "json", "sha256", "md5", "sha1"};

int tr_export_format_parse(const char *name)
{
    for (size_t i = 0; i < sizeof format_names / sizeof format_names[0]; i++)
        if (name && strcmp(name, format_names[i]) == 0)
            return (int)i;
    return -1;
}

static void header(tr_buf *out, const char *what, bool recent, int64_t now)
{
    char when[32];
    tr_format_time(now, when);
    char line1[128], line2[128];
    snprintf(line1, sizeof line1, "trawl %s samples (%s)", recent ? "recent" : "full", what);
    snprintf(line2, sizeof line2, "Last updated: %s UTC", when);
    tr_buf_printf(out, "################################################################\n");
    tr_buf_printf(out, "# %-60s #\n", line1);
    tr_buf_printf(out, "# %-60s #\n", line2);
    tr_buf_printf(out, "# %-60s #\n", "");
    tr_buf_printf(out, "# %-60s #\n",
                  recent ? "Samples first seen in the last 48 hours" : "Every sample in the store");
    tr_buf_printf(out, "################################################################\n#\n");
}

/* A CSV field as Bazaar writes them: always quoted, quotes doubled. */
static void csv_field(tr_buf *out, const char *v, bool last)
{
    tr_buf_append(out, "\"", 1);
    for (const char *p = v && *v ? v : "n/a"; *p; p++) {
        if (*p == '"')
            tr_buf_append(out, "\"", 1);
        /* One record per line: a name with a line break stays on its line. */
        tr_buf_append(out, *p == '\n' || *p == '\r' ? " " : p, 1);
    }
    tr_buf_append(out, last ? "\"\n" : "\", ", last ? 2 : 3);
}

int tr_store_export(tr_store *s, tr_export_format f, bool recent, int64_t now, tr_buf *out,
                    tr_error *err)
{
    tr_sample_filter flt = {.first_seen_after = recent ? now - 48 * 3600 : 0};
    tr_sample **items = NULL;
    size_t n = 0;
    if (tr_store_list(s, &flt, &items, &n, err) != 0)
        return -1;
    int rc = 0;
    if (f == TR_EXPORT_JSON) {
        json_t *data = json_array();
        for (size_t i = 0; i < n && rc == 0; i++) {
            tr_sample_bazaar bz;
            rc = tr_store_bazaar_get(s, items[i]->id, &bz, err);
            if (rc == 0)
                json_array_append_new(data, tr_sample_to_bazaar_json(items[i], &bz, NULL, false));
            tr_sample_bazaar_clear(&bz);
        }
        json_t *doc = json_pack("{s:s, s:o}", "query_status", n ? "ok" : "no_results", "data", data);
        char *text = json_dumps(doc, JSON_INDENT(1));
        json_decref(doc);
        if (!text)
            tr_die("out of memory building JSON");
        tr_buf_printf(out, "%s\n", text);
        free(text);
    } else if (f == TR_EXPORT_CSV) {
        header(out, "CSV", recent, now);
        tr_buf_printf(out, "# \"first_seen_utc\",\"sha256_hash\",\"md5_hash\",\"sha1_hash\","
                           "\"reporter\",\"file_name\",\"file_type_guess\",\"mime_type\","
                           "\"signature\",\"clamav\",\"vtpercent\",\"imphash\",\"ssdeep\",\"tlsh\"\n");
        for (size_t i = 0; i < n && rc == 0; i++) {
            const tr_sample *x = items[i];
            tr_sample_bazaar bz;
            rc = tr_store_bazaar_get(s, x->id, &bz, err);
            char first[32];
            tr_format_time(x->first_seen, first);
            csv_field(out, first, false);
            csv_field(out, x->d.sha256, false);
            csv_field(out, x->d.md5, false);
            csv_field(out, x->d.sha1, false);
            csv_field(out, bz.anonymous ? "anonymous" : x->reporter, false);
            csv_field(out, x->n_names ? x->names[0] : NULL, false);
            csv_field(out, x->file_type, false);
            csv_field(out, x->mime, false);
            csv_field(out, x->signature, false);
            csv_field(out, NULL, false);        /* clamav: no verdicts kept here */
            csv_field(out, NULL, false);        /* vtpercent: no VirusTotal */
            csv_field(out, x->imphash, false);
            csv_field(out, x->d.ssdeep, false);
            csv_field(out, x->d.tlsh, true);
            tr_sample_bazaar_clear(&bz);
        }
        tr_buf_printf(out, "# Number of entries: %zu\n", n);
    } else {
        const char *name = format_names[f];
        char what[32];
        snprintf(what, sizeof what, "%s hashes", name);
        for (char *p = what; *p && *p != ' '; p++)
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        header(out, what, recent, now);
        tr_buf_printf(out, "# %s_hash\n", name);
        for (size_t i = 0; i < n; i++) {
            const tr_sample *x = items[i];
            tr_buf_printf(out, "%s\n", f == TR_EXPORT_SHA256 ? x->d.sha256
                                       : f == TR_EXPORT_MD5  ? x->d.md5
                                                             : x->d.sha1);
        }
        tr_buf_printf(out, "# Number of entries: %zu\n", n);
    }
    tr_sample_list_free(items, n);
    if (!out->data)
        tr_buf_append(out, "", 0);
    return rc;
}

static const char *full_zip_name(tr_export_format f)
{
    switch (f) {
    case TR_EXPORT_CSV: return "full.csv";
    case TR_EXPORT_SHA256: return "full_sha256.txt";
    case TR_EXPORT_MD5: return "full_md5.txt";
    case TR_EXPORT_SHA1: return "full_sha1.txt";
    default: return NULL;
    }
}

static int zip_fail(tr_error *err, const char *what, zip_error_t *ze)
{
    tr_fail(err, "zip: %s: %s", what, zip_error_strerror(ze));
    zip_error_fini(ze);
    return -1;
}

/* out = a zip (deflated) holding data as the one file name, dated now. */
static int export_zip(const char *name, const void *data, size_t len, int64_t now, tr_buf *out,
                      tr_error *err)
{
    /* Built in memory: the archive is written into a buffer source that
     * zip_source_keep keeps alive past zip_close, then read back. */
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *mem = zip_source_buffer_create(NULL, 0, 0, &ze);
    if (!mem)
        return zip_fail(err, "cannot create a buffer", &ze);
    zip_t *za = zip_open_from_source(mem, ZIP_TRUNCATE, &ze);
    if (!za) {
        zip_source_free(mem);
        return zip_fail(err, "cannot open an archive", &ze);
    }
    zip_source_keep(mem);
    zip_source_t *file = zip_source_buffer(za, data, len, 0);
    zip_int64_t idx = file ? zip_file_add(za, name, file, ZIP_FL_ENC_UTF_8) : -1;
    if (idx < 0) {
        zip_source_free(file);
        tr_fail(err, "zip: cannot add %s: %s", name, zip_strerror(za));
        zip_discard(za);
        zip_source_free(mem);
        return -1;
    }
    zip_file_set_mtime(za, (zip_uint64_t)idx, (time_t)now, 0);
    if (zip_close(za) != 0) {
        tr_fail(err, "zip: cannot write the archive: %s", zip_strerror(za));
        zip_discard(za);
        zip_source_free(mem);
        return -1;
    }
    zip_stat_t st;
    int rc = -1;
    if (zip_source_stat(mem, &st) == 0 && (st.valid & ZIP_STAT_SIZE) && zip_source_open(mem) == 0) {
        unsigned char chunk[65536];
        zip_int64_t got;
        zip_uint64_t total = 0;
        while ((got = zip_source_read(mem, chunk, sizeof chunk)) > 0) {
            tr_buf_append(out, chunk, (size_t)got);
            total += (zip_uint64_t)got;
        }
        rc = got == 0 && total == st.size ? 0 : -1;
        zip_source_close(mem);
    }
    zip_source_free(mem);
    return rc == 0 ? 0 : tr_fail(err, "zip: cannot read the archive back");
}

int tr_store_day_zip(tr_store *s, int64_t day_start, tr_zip_entry **out, size_t *n,
                     tr_error *err)
{
    tr_sample_filter flt = {.first_seen_after = day_start};
    tr_sample **items = NULL;
    size_t m = 0;
    if (tr_store_list(s, &flt, &items, &m, err) != 0)
        return -1;
    tr_zip_entry *e = tr_xcalloc(m ? m : 1, sizeof *e);
    size_t k = 0;
    /* Newest first, from day_start on: those before the next day. */
    for (size_t i = 0; i < m; i++) {
        const tr_sample *smp = items[i];
        if (smp->first_seen < day_start + 86400) {
            const char *type = smp->file_type;
            /* Named as Bazaar names them: sha256 and the file type. */
            e[k].name = type && *type && strcmp(type, "unknown") != 0
                            ? tr_xasprintf("%s.%s", smp->d.sha256, type)
                            : tr_xstrdup(smp->d.sha256);
            e[k].path = tr_store_blob_path(s, smp->d.sha256);
            k++;
        }
    }
    tr_sample_list_free(items, m);
    *out = e;
    *n = k;
    return 0;
}

void tr_store_zip_entries_free(tr_zip_entry *e, size_t n)
{
    for (size_t i = 0; e && i < n; i++) {
        free((char *)e[i].name);
        free((char *)e[i].path);
    }
    free(e);
}

int tr_store_export_published(tr_store *s, tr_export_format f, bool recent, int64_t now,
                              tr_buf *out, bool *zipped, tr_error *err)
{
    const char *name = recent ? NULL : full_zip_name(f);
    *zipped = name != NULL;
    if (!name)
        return tr_store_export(s, f, recent, now, out, err);
    tr_buf plain = {0};
    int rc = tr_store_export(s, f, recent, now, &plain, err);
    if (rc == 0)
        rc = export_zip(name, plain.data, plain.len, now, out, err);
    tr_buf_free(&plain);
    return rc;
}
