/* A document's text: formats told apart by their bytes, charsets
 * converted with iconv, HTML through libxml2's forgiving parser, PDF
 * through poppler, e-mail through GMime. Everything comes out as UTF-8. */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <gmime/gmime.h>
#include <libxml/HTMLparser.h>
#include <poppler.h>

#include "report/report_internal.h"

const char *tr_doc_format_name(tr_doc_format f)
{
    static const char *names[] = {"text", "markdown", "html", "pdf", "eml"};
    return (unsigned)f < sizeof names / sizeof names[0] ? names[f] : "?";
}

void tr_doc_free(tr_doc *d)
{
    free(d->text);
    free(d->title);
    free(d->published);
    for (size_t i = 0; i < d->nlinks; i++)
        free(d->links[i]);
    free(d->links);
    memset(d, 0, sizeof *d);
}

void report_doc_add_link(tr_doc *d, char *url)
{
    /* Capacity doubles at each power of two: a page with 300,000 links
     * must not copy the array 300,000 times. */
    size_t n = d->nlinks;
    if ((n & (n - 1)) == 0)
        d->links = tr_xrealloc(d->links, (n ? n * 2 : 1) * sizeof *d->links);
    d->links[d->nlinks++] = url;
}

static void add_link(tr_doc *d, const char *url)
{
    report_doc_add_link(d, tr_xstrdup(url));
}

/* ---- charsets ------------------------------------------------------------------ */

static bool utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        size_t k;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (p[i + j] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + j] & 0x3Fu);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k + 1;
    }
    return true;
}

/* Strict conversion: 0, or -1 when the bytes are not in that charset. */
static int convert(const char *from, const unsigned char *data, size_t len, char **out,
                   size_t *outlen)
{
    iconv_t cd = iconv_open("UTF-8", from);
    if (cd == (iconv_t)-1)
        return -1;
    size_t cap = len * 3 + 16;
    char *buf = tr_xmalloc(cap + 1);
    char *in = (char *)data, *o = buf;
    size_t inleft = len, oleft = cap;
    while (inleft > 0) {
        if (iconv(cd, &in, &inleft, &o, &oleft) == (size_t)-1) {
            if (errno == E2BIG) {
                size_t used = (size_t)(o - buf);
                cap *= 2;
                buf = tr_xrealloc(buf, cap + 1);
                o = buf + used;
                oleft = cap - used;
                continue;
            }
            iconv_close(cd);
            free(buf);
            return -1;
        }
    }
    iconv_close(cd);
    *o = 0;
    *out = buf;
    *outlen = (size_t)(o - buf);
    return 0;
}

int tr_text_to_utf8(const unsigned char *data, size_t len, char **out, size_t *outlen,
                    const char **charset, tr_error *err)
{
    if (len >= 2 && data[0] == 0xFF && data[1] == 0xFE) {
        *charset = "UTF-16LE";
        if (convert("UTF-16LE", data + 2, len - 2, out, outlen) != 0)
            return tr_fail(err, "the UTF-16LE text (byte-order mark) is corrupt");
        return 0;
    }
    if (len >= 2 && data[0] == 0xFE && data[1] == 0xFF) {
        *charset = "UTF-16BE";
        if (convert("UTF-16BE", data + 2, len - 2, out, outlen) != 0)
            return tr_fail(err, "the UTF-16BE text (byte-order mark) is corrupt");
        return 0;
    }
    if (len >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF) {
        data += 3;
        len -= 3;
    }
    if (utf8_valid(data, len)) {
        *charset = "UTF-8";
        *out = tr_xmalloc(len + 1);
        memcpy(*out, data, len);
        (*out)[len] = 0;
        *outlen = len;
        return 0;
    }
    /* Shift_JIS lead bytes 0x81-0x9F never occur in EUC-JP (bar the
     * single-shift bytes 0x8E and 0x8F), so they decide which to try first. */
    size_t sjis_only = 0;
    for (size_t i = 0; i < len; i++)
        if (data[i] >= 0x80 && data[i] <= 0x9F && data[i] != 0x8E && data[i] != 0x8F)
            sjis_only++;
    const char *order[2][2] = {{"EUC-JP", "EUC-JP"}, {"CP932", "SHIFT_JIS"}};
    int first = sjis_only ? 1 : 0;
    for (int t = 0; t < 2; t++) {
        int k = t == 0 ? first : !first;
        if (convert(order[k][0], data, len, out, outlen) == 0) {
            *charset = order[k][1];
            return 0;
        }
    }
    *charset = "WINDOWS-1252";
    if (convert("WINDOWS-1252", data, len, out, outlen) == 0)
        return 0;
    *charset = "ISO-8859-1";
    if (convert("ISO-8859-1", data, len, out, outlen) == 0)
        return 0;
    return tr_fail(err, "the text is in no charset trawl can read");
}

/* ---- titles and dates ----------------------------------------------------------- */

static char *first_line(const char *t, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (t[i] == ' ' || t[i] == '\t' || t[i] == '\r' || t[i] == '\n' ||
                         t[i] == '#' || t[i] == '='))
            i++;
        size_t e = i;
        while (e < n && t[e] != '\n' && t[e] != '\r')
            e++;
        size_t b = e;
        while (b > i && (t[b - 1] == ' ' || t[b - 1] == '\t'))
            b--;
        if (b > i) {
            size_t l = b - i;
            if (l > 200) {
                l = 200;
                /* Never cut a UTF-8 sequence. */
                while (l > 0 && ((unsigned char)t[i + l] & 0xC0) == 0x80)
                    l--;
            }
            char *r = tr_xmalloc(l + 1);
            memcpy(r, t + i, l);
            r[l] = 0;
            return r;
        }
        i = e;
    }
    return NULL;
}

static char *stix_time(time_t t)
{
    struct tm tm;
    char buf[32];
    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    return tr_xstrdup(buf);
}

/* ---- HTML ----------------------------------------------------------------------- */

static bool tag_is(const xmlNode *n, const char *const *names)
{
    for (size_t i = 0; names[i]; i++)
        if (strcasecmp((const char *)n->name, names[i]) == 0)
            return true;
    return false;
}

static void html_walk(xmlNode *n, tr_buf *b, tr_doc *d)
{
    static const char *const hidden[] = {"script", "style", "noscript", "template", "head",
                                         "iframe", "object", "svg", NULL};
    static const char *const block[] = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5",
                                        "h6", "tr", "table", "section", "article", "pre",
                                        "blockquote", "ul", "ol", "header", "footer", "hr",
                                        "dt", "dd", "title", NULL};
    for (; n; n = n->next) {
        if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
            if (n->content)
                tr_buf_append(b, n->content, strlen((const char *)n->content));
            continue;
        }
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (strcasecmp((const char *)n->name, "title") == 0 && !d->title) {
            xmlChar *t = xmlNodeGetContent(n);
            if (t) {
                d->title = first_line((const char *)t, strlen((const char *)t));
                xmlFree(t);
            }
        }
        if (strcasecmp((const char *)n->name, "meta") == 0 && !d->published) {
            xmlChar *prop = xmlGetProp(n, (const xmlChar *)"property");
            xmlChar *content = xmlGetProp(n, (const xmlChar *)"content");
            if (prop && content && strcmp((const char *)prop, "article:published_time") == 0 &&
                strlen((const char *)content) >= 10) {
                const char *c = (const char *)content;
                /* Dates only: the time zone forms vary too much to trust. */
                bool date = c[4] == '-' && c[7] == '-';
                for (int k = 0; k < 10 && date; k++)
                    date = k == 4 || k == 7 || isdigit((unsigned char)c[k]);
                if (date) {
                    d->published = tr_xasprintf("%.10sT00:00:00.000Z", c);
                    if (!tr_stix_ts_valid(d->published)) {
                        free(d->published);
                        d->published = NULL;
                    }
                }
            }
            xmlFree(prop);
            xmlFree(content);
        }
        if (tag_is(n, hidden)) {
            /* The head is not shown, but holds the title and the date. */
            if (strcasecmp((const char *)n->name, "head") == 0) {
                tr_buf ignored = {0};
                html_walk(n->children, &ignored, d);
                tr_buf_free(&ignored);
            }
            continue;
        }
        if (strcasecmp((const char *)n->name, "a") == 0) {
            xmlChar *href = xmlGetProp(n, (const xmlChar *)"href");
            if (href && (strncasecmp((const char *)href, "http", 4) == 0 ||
                         strncasecmp((const char *)href, "ftp", 3) == 0))
                add_link(d, (const char *)href);
            xmlFree(href);
        }
        bool blk = tag_is(n, block);
        if (blk && b->len && b->data[b->len - 1] != '\n')
            tr_buf_append(b, "\n", 1);
        html_walk(n->children, b, d);
        if (blk && b->len && b->data[b->len - 1] != '\n')
            tr_buf_append(b, "\n", 1);
        else if (!blk && (strcasecmp((const char *)n->name, "td") == 0 ||
                          strcasecmp((const char *)n->name, "th") == 0))
            tr_buf_append(b, " ", 1);
    }
}

static int html_text(const unsigned char *data, size_t len, tr_doc *d, tr_error *err)
{
    if (len > (size_t)INT32_MAX)
        return tr_fail(err, "the HTML page is too large");
    htmlDocPtr doc = htmlReadMemory((const char *)data, (int)len, NULL, NULL,
                                    HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
                                        HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
    if (!doc)
        return tr_fail(err, "the HTML page cannot be parsed");
    tr_buf b = {0};
    html_walk(xmlDocGetRootElement(doc), &b, d);
    /* The title element sits in head, which is hidden from the text. */
    xmlFreeDoc(doc);
    tr_buf_append(&b, "", 1);
    d->text = b.data;
    d->len = b.len - 1;
    snprintf(d->charset, sizeof d->charset, "HTML");
    return 0;
}

/* ---- PDF ------------------------------------------------------------------------- */

/* poppler-glib is opened on the first PDF, not linked: with its 50-odd
 * dependencies (cairo, fontconfig, NSS...) it was most of every trawl
 * command's start-up, and only report import reads PDFs. TR_POPPLER_SONAME
 * is the library's soname, read at configure time. */
typedef struct poppler_api {
    __typeof__(poppler_document_new_from_bytes) *new_from_bytes;
    __typeof__(poppler_document_get_n_pages) *get_n_pages;
    __typeof__(poppler_document_get_page) *get_page;
    __typeof__(poppler_page_get_text) *page_get_text;
    __typeof__(poppler_document_get_title) *get_title;
    __typeof__(poppler_document_get_creation_date) *get_creation_date;
    __typeof__(poppler_error_quark) *error_quark;
    char error[256];          /* why it could not be loaded; "" when loaded */
} poppler_api;

static poppler_api poppler;
static pthread_once_t poppler_once = PTHREAD_ONCE_INIT;

static void poppler_load(void)
{
    void *h = dlopen(TR_POPPLER_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(poppler.error, sizeof poppler.error,
                 "PDF text needs poppler-glib (Debian package libpoppler-glib8): %s", dlerror());
        return;
    }
    struct {
        void **fn;
        const char *name;
    } syms[] = {
        {(void **)&poppler.new_from_bytes, "poppler_document_new_from_bytes"},
        {(void **)&poppler.get_n_pages, "poppler_document_get_n_pages"},
        {(void **)&poppler.get_page, "poppler_document_get_page"},
        {(void **)&poppler.page_get_text, "poppler_page_get_text"},
        {(void **)&poppler.get_title, "poppler_document_get_title"},
        {(void **)&poppler.get_creation_date, "poppler_document_get_creation_date"},
        {(void **)&poppler.error_quark, "poppler_error_quark"},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        *syms[i].fn = dlsym(h, syms[i].name);
        if (!*syms[i].fn) {
            snprintf(poppler.error, sizeof poppler.error, "%s has no %s", TR_POPPLER_SONAME,
                     syms[i].name);
            return;       /* the handle stays open: harmless, and dlclose races other threads */
        }
    }
}

static int pdf_text(const unsigned char *data, size_t len, tr_doc *d, tr_error *err)
{
    pthread_once(&poppler_once, poppler_load);
    if (poppler.error[0])
        return tr_fail(err, "%s", poppler.error);
    GBytes *bytes = g_bytes_new(data, len);
    GError *gerr = NULL;
    PopplerDocument *doc = poppler.new_from_bytes(bytes, NULL, &gerr);
    g_bytes_unref(bytes);
    if (!doc) {
        int r;
        if (gerr && gerr->domain == poppler.error_quark() && gerr->code == POPPLER_ERROR_ENCRYPTED)
            r = tr_fail(err, "the PDF is encrypted (a password is needed): nothing imported");
        else
            r = tr_fail(err, "the PDF is corrupt: %s", gerr ? gerr->message : "unreadable");
        if (gerr)
            g_error_free(gerr);
        return r;
    }
    tr_buf b = {0};
    int pages = poppler.get_n_pages(doc);
    for (int i = 0; i < pages; i++) {
        PopplerPage *page = poppler.get_page(doc, i);
        if (!page)
            continue;
        char *t = poppler.page_get_text(page);
        if (t) {
            tr_buf_append(&b, t, strlen(t));
            tr_buf_append(&b, "\n", 1);
            g_free(t);
        }
        g_object_unref(page);
    }
    char *title = poppler.get_title(doc);
    if (title && *title)
        d->title = tr_xstrdup(title);
    g_free(title);
    time_t created = poppler.get_creation_date(doc);
    if (created > 0)
        d->published = stix_time(created);
    g_object_unref(doc);
    tr_buf_append(&b, "", 1);
    d->text = b.data;
    d->len = b.len - 1;
    snprintf(d->charset, sizeof d->charset, "PDF");
    return 0;
}

/* ---- e-mail ---------------------------------------------------------------------- */

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_start(void)
{
    g_mime_init();
}

/* g_mime_init is not safe to race: every user goes through this once. */
void report_gmime_init(void)
{
    pthread_once(&gmime_once, gmime_start);
}

typedef struct eml_walk {
    tr_buf *b;
    tr_doc *d;
} eml_walk;

static void eml_part(GMimeObject *parent, GMimeObject *part, gpointer user)
{
    (void)parent;
    eml_walk *w = user;
    if (!GMIME_IS_PART(part))
        return;
    GMimePart *p = (GMimePart *)part;
    GMimeContentType *ct = g_mime_object_get_content_type(part);
    const char *fname = g_mime_part_get_filename(p);
    if (fname) {
        tr_buf_printf(w->b, "\nAttachment: %s\n", fname);
    }
    if (!ct || !g_mime_content_type_is_type(ct, "text", "*"))
        return;
    GMimeDataWrapper *content = g_mime_part_get_content(p);
    if (!content)
        return;
    GMimeStream *mem = g_mime_stream_mem_new();
    g_mime_data_wrapper_write_to_stream(content, mem);
    GByteArray *arr = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)mem);
    const char *cs = g_mime_content_type_get_parameter(ct, "charset");
    char *u = NULL;
    size_t ul = 0;
    if (arr && arr->len) {
        if (cs && strcasecmp(cs, "utf-8") != 0 && strcasecmp(cs, "us-ascii") != 0 &&
            convert(cs, arr->data, arr->len, &u, &ul) == 0) {
            /* converted */
        } else {
            const char *det;
            tr_error e2;
            if (tr_text_to_utf8(arr->data, arr->len, &u, &ul, &det, &e2) != 0)
                u = NULL;
        }
    }
    if (u) {
        tr_buf_append(w->b, "\n", 1);
        if (g_mime_content_type_is_type(ct, "text", "html")) {
            tr_doc h = {0};
            tr_error e3;
            if (html_text((const unsigned char *)u, ul, &h, &e3) == 0) {
                tr_buf_append(w->b, h.text, h.len);
                for (size_t i = 0; i < h.nlinks; i++)
                    add_link(w->d, h.links[i]);
            }
            tr_doc_free(&h);
        } else {
            tr_buf_append(w->b, u, ul);
        }
        free(u);
    }
    g_object_unref(mem);
}

static int eml_text(const unsigned char *data, size_t len, tr_doc *d, tr_error *err)
{
    report_gmime_init();
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer((const char *)data, len);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
    g_object_unref(parser);
    g_object_unref(stream);
    if (!msg)
        return tr_fail(err, "the e-mail message is corrupt: no headers");
    tr_buf b = {0};
    GMimeHeaderList *hl = g_mime_object_get_header_list((GMimeObject *)msg);
    int nh = hl ? g_mime_header_list_get_count(hl) : 0;
    for (int i = 0; i < nh; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
        const char *name = g_mime_header_get_name(h);
        const char *value = g_mime_header_get_value(h);
        tr_buf_printf(&b, "%s: %s\n", name ? name : "", value ? value : "");
    }
    const char *subject = g_mime_message_get_subject(msg);
    if (subject && *subject)
        d->title = tr_xstrdup(subject);
    GDateTime *date = g_mime_message_get_date(msg);
    if (date)
        d->published = stix_time((time_t)g_date_time_to_unix(date));
    eml_walk w = {&b, d};
    /* Visits a single-part body too, so nothing else is needed. */
    g_mime_message_foreach(msg, eml_part, &w);
    g_object_unref(msg);
    if (nh < 1) {
        tr_buf_free(&b);
        return tr_fail(err, "the e-mail message is corrupt: no headers");
    }
    tr_buf_append(&b, "", 1);
    d->text = b.data;
    d->len = b.len - 1;
    snprintf(d->charset, sizeof d->charset, "MIME");
    return 0;
}

/* Parsers of HTML, PDF and mail pass on what the document holds: NULs
 * become spaces and invalid UTF-8 U+FFFD, so the text is a C string and
 * valid JSON. */
static void sanitize(char **text, size_t *len)
{
    if (utf8_valid((const unsigned char *)*text, *len) && strlen(*text) == *len)
        return;
    tr_buf b = {0};
    const unsigned char *p = (const unsigned char *)*text;
    size_t i = 0;
    while (i < *len) {
        if (p[i] == 0) {
            tr_buf_append(&b, " ", 1);
            i++;
            continue;
        }
        size_t k = p[i] < 0x80 ? 1 : (p[i] & 0xE0) == 0xC0 ? 2 : (p[i] & 0xF0) == 0xE0 ? 3
                                                         : (p[i] & 0xF8) == 0xF0 ? 4 : 0;
        if (k && i + k <= *len && utf8_valid(p + i, k)) {
            tr_buf_append(&b, p + i, k);
            i += k;
        } else {
            tr_buf_append(&b, "\xef\xbf\xbd", 3);
            i++;
        }
    }
    tr_buf_append(&b, "", 1);
    free(*text);
    *text = b.data;
    *len = b.len - 1;
}

static void sanitize_str(char **s)
{
    size_t n = strlen(*s);
    sanitize(s, &n);
}

/* A text's own date: the first YYYY-MM-DD, YYYY/MM/DD or YYYY年M月D日 in
 * its first kilobyte, where bylines and titles put it. */
static char *date_near_top(const char *t, size_t n)
{
    size_t lim = n < 1024 ? n : 1024;
    for (size_t i = 0; i + 8 <= lim; i++) {
        if (!isdigit((unsigned char)t[i]) || (i > 0 && isdigit((unsigned char)t[i - 1])))
            continue;
        size_t p = i;
        unsigned v[3] = {0, 0, 0};
        bool ok = true;
        for (int part = 0; part < 3 && ok; part++) {
            size_t st = p;
            while (p < n && isdigit((unsigned char)t[p]) && p - st < 4)
                v[part] = v[part] * 10 + (unsigned)(t[p++] - '0');
            size_t nd = p - st;
            ok = part == 0 ? nd == 4 : nd >= 1 && nd <= 2;
            if (!ok || part == 2)
                break;
            /* The separator: '-', '/', or 年 then 月 (3 bytes each in UTF-8). */
            if (p < n && (t[p] == '-' || t[p] == '/'))
                p++;
            else if (p + 3 <= n && memcmp(t + p, part == 0 ? "\xe5\xb9\xb4" : "\xe6\x9c\x88", 3) == 0)
                p += 3;
            else
                ok = false;
        }
        if (!ok || (p < n && isdigit((unsigned char)t[p])))
            continue;
        char *ts = tr_xasprintf("%04u-%02u-%02uT00:00:00.000Z", v[0], v[1], v[2]);
        if (v[0] >= 1990 && v[0] <= 2100 && tr_stix_ts_valid(ts))
            return ts;
        free(ts);
    }
    return NULL;
}

/* ---- detection ---------------------------------------------------------------------- */

static bool ends_with(const char *name, const char *ext)
{
    if (!name)
        return false;
    size_t n = strlen(name), e = strlen(ext);
    return n > e && strcasecmp(name + n - e, ext) == 0;
}

static bool looks_html(const unsigned char *p, size_t n)
{
    size_t i = 0;
    if (n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
        i = 3;
    while (i < n && isspace(p[i]))
        i++;
    size_t rest = n - i;
    const char *s = (const char *)p + i;
    return (rest >= 9 && strncasecmp(s, "<!doctype", 9) == 0 &&
            rest >= 14 && strncasecmp(s + 10, "html", 4) == 0) ||
           (rest >= 5 && strncasecmp(s, "<html", 5) == 0);
}

/* Mail starts with a header block: at least two known fields before the
 * first blank line. */
static bool looks_eml(const unsigned char *p, size_t n)
{
    static const char *const fields[] = {"from:", "to:", "subject:", "date:", "received:",
                                         "return-path:", "message-id:", "mime-version:",
                                         "delivered-to:", "x-", "content-type:", NULL};
    size_t i = 0, known = 0;
    while (i < n && known < 2) {
        size_t e = i;
        while (e < n && p[e] != '\n')
            e++;
        if (e == i || (e == i + 1 && p[i] == '\r'))
            break;
        if (p[i] != ' ' && p[i] != '\t') {
            bool hit = false;
            for (size_t k = 0; fields[k]; k++) {
                size_t l = strlen(fields[k]);
                if (e - i >= l && strncasecmp((const char *)p + i, fields[k], l) == 0)
                    hit = true;
            }
            if (!hit) {
                /* A header line is "Name: value". */
                const unsigned char *colon = memchr(p + i, ':', e - i);
                if (!colon)
                    return false;
                for (const unsigned char *q = p + i; q < colon; q++)
                    if (*q <= ' ' || *q >= 0x7f)
                        return false;
            }
            known += hit;
        }
        i = e + 1;
    }
    return known >= 2;
}

int report_doc_size_check(size_t len, tr_error *err)
{
    if (len == 0)
        return tr_fail(err, "the document is empty: nothing imported");
    if (len > TR_REPORT_MAX_INPUT)
        return tr_fail(err, "the document is too large (%zu bytes; the limit is %u)", len,
                       TR_REPORT_MAX_INPUT);
    return 0;
}

int tr_doc_extract(const unsigned char *data, size_t len, const char *name, tr_doc *out,
                   tr_error *err)
{
    memset(out, 0, sizeof *out);
    if (report_doc_size_check(len, err) != 0)
        return -1;
    int r;
    if (len >= 5 && memcmp(data, "%PDF-", 5) == 0) {
        out->format = TR_DOC_PDF;
        r = pdf_text(data, len, out, err);
    } else if (ends_with(name, ".pdf")) {
        return tr_fail(err, "the PDF is corrupt: no %%PDF- header");
    } else if (looks_html(data, len) || ends_with(name, ".html") || ends_with(name, ".htm")) {
        out->format = TR_DOC_HTML;
        r = html_text(data, len, out, err);
    } else if (ends_with(name, ".eml") || looks_eml(data, len)) {
        out->format = TR_DOC_EML;
        r = eml_text(data, len, out, err);
    } else {
        out->format = ends_with(name, ".md") || ends_with(name, ".markdown") ? TR_DOC_MARKDOWN
                                                                              : TR_DOC_TEXT;
        const char *cs;
        r = tr_text_to_utf8(data, len, &out->text, &out->len, &cs, err);
        if (r == 0)
            snprintf(out->charset, sizeof out->charset, "%s", cs);
        if (r == 0 && memchr(out->text, 0, out->len)) {
            tr_doc_free(out);
            return tr_fail(err, "the document is binary, not text: nothing imported");
        }
    }
    if (r != 0) {
        tr_doc_free(out);
        return -1;
    }
    if (out->format != TR_DOC_TEXT && out->format != TR_DOC_MARKDOWN)
        sanitize(&out->text, &out->len);
    if (out->title)
        sanitize_str(&out->title);
    for (size_t i = 0; i < out->nlinks; i++)
        sanitize_str(&out->links[i]);
    size_t k = 0;
    while (k < out->len && isspace((unsigned char)out->text[k]))
        k++;
    if (k == out->len) {
        tr_doc_free(out);
        return tr_fail(err, "the document holds no text: nothing imported");
    }
    if (!out->title)
        out->title = first_line(out->text, out->len);
    if (!out->published && (out->format == TR_DOC_TEXT || out->format == TR_DOC_MARKDOWN))
        out->published = date_near_top(out->text, out->len);
    return 0;
}
