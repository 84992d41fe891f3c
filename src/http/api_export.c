/* GET /export/...: bulk exports under the URL shapes MalwareBazaar uses
 * (bazaar.abuse.ch/export/...), and the daily zip of the samples added on
 * one day (Bazaar's "datalake" batches), AES-encrypted, password "infected".
 *   csv/recent/  csv/full/  json/recent/  json/full/
 *   txt/sha256/recent/  txt/md5/recent/  txt/sha1/recent/  (and .../full/)
 *   daily/YYYY-MM-DD.zip
 * The full CSV and hash lists are zips of one file, as Bazaar serves them
 * (full.csv, full_sha256.txt...); the recent ones and JSON are plain. */
#define _GNU_SOURCE            /* timegm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/http_internal.h"
#include "store/store.h"

/* "a/b/" or "a/b": the next segment into seg; NULL at the end. */
static const char *segment(const char *p, char *seg, size_t segsz)
{
    if (!*p)
        return NULL;
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (n >= segsz)
        n = segsz - 1;
    memcpy(seg, p, n);
    seg[n] = '\0';
    return slash ? slash + 1 : p + strlen(p);
}

static enum MHD_Result daily(http_request *r, const char *name)
{
    int y, m, d;
    char tail[8] = "";
    if (sscanf(name, "%4d-%2d-%2d%7s", &y, &m, &d, tail) != 4 || strcmp(tail, ".zip") != 0 ||
        m < 1 || m > 12 || d < 1 || d > 31 || y < 1970)
        return http_send_error(r, 404, "no daily batch %s (YYYY-MM-DD.zip)", name);
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
    int64_t start = (int64_t)timegm(&tm);
    tr_store *s;
    tr_error err;
    if (tr_store_open(r->data_dir, TR_STORE_READONLY, &s, &err) != 0)
        return http_send_error(r, 503, "%s", err.msg);
    tr_zip_entry *entries = NULL;
    size_t n = 0;
    if (tr_store_day_zip(s, start, &entries, &n, &err) != 0) {
        tr_store_close(s);
        return http_send_error(r, 500, "%s", err.msg);
    }
    tr_store_close(s);
    if (n == 0) {
        tr_store_zip_entries_free(entries, n);
        return http_send_error(r, 404, "no samples were added on %.10s", name);
    }
    char download[32];
    snprintf(download, sizeof download, "%.10s.zip", name);
    enum MHD_Result sent = http_send_aes_zip(r, entries, n, download);
    tr_store_zip_entries_free(entries, n);
    return sent;
}

enum MHD_Result api_export(http_request *r)
{
    char a[16] = "", b[24] = "", c[16] = "";
    const char *p = segment(r->rest, a, sizeof a);
    if (p && strcmp(a, "daily") == 0)
        return daily(r, p);
    if (p)
        p = segment(p, b, sizeof b);
    int fmt = -1;
    const char *range = b;
    if (strcmp(a, "txt") == 0) {
        fmt = strcmp(b, "csv") == 0 || strcmp(b, "json") == 0 ? -1 : tr_export_format_parse(b);
        if (p)
            p = segment(p, c, sizeof c);
        range = c;
    } else if (strcmp(a, "csv") == 0 || strcmp(a, "json") == 0) {
        fmt = tr_export_format_parse(a);
    }
    bool recent = strcmp(range, "recent") == 0;
    if (fmt < 0 || (!recent && strcmp(range, "full") != 0) || (p && *p))
        return http_send_error(r, 404, "no export /export/%s", r->rest);
    tr_store *s;
    tr_error err;
    if (tr_store_open(r->data_dir, TR_STORE_READONLY, &s, &err) != 0)
        return http_send_error(r, 503, "%s", err.msg);
    tr_buf out = {0};
    int64_t now = tr_now_unix();
    bool zipped;
    int rc = tr_store_export_published(s, (tr_export_format)fmt, recent, now, &out, &zipped, &err);
    tr_store_close(s);
    if (rc != 0) {
        tr_buf_free(&out);
        return http_send_error(r, 500, "%s", err.msg);
    }
    const char *type = zipped ? "application/zip"
                       : fmt == TR_EXPORT_JSON ? "application/json"
                       : fmt == TR_EXPORT_CSV  ? "text/csv; charset=utf-8"
                                               : "text/plain; charset=utf-8";
    enum MHD_Result sent = http_send_text(r, 200, type, out.data, out.len);
    tr_buf_free(&out);
    return sent;
}
