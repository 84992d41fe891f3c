/* The view of a document the IOC scanner reads: full-width forms folded to
 * ASCII and defanging undone, with a map back to the original offsets so
 * every extraction can be highlighted where the analyst wrote it. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"

typedef struct folder {
    char *out;
    size_t *map;
    size_t n, cap;
} folder;

static void put(folder *f, char c, size_t src)
{
    if (f->n + 2 > f->cap) {
        f->cap = f->cap ? f->cap * 2 : 256;
        f->out = tr_xrealloc(f->out, f->cap);
        f->map = tr_xrealloc(f->map, f->cap * sizeof *f->map);
    }
    f->out[f->n] = c;
    f->map[f->n] = src;
    f->n++;
}

/* Decodes one full-width or ideographic form at p to an ASCII byte; the
 * UTF-8 length in *used. 0 when p is not one. */
static char fold_wide(const unsigned char *p, const unsigned char *end, size_t *used)
{
    if (end - p < 3 || (p[0] != 0xEF && p[0] != 0xE3))
        return 0;
    unsigned cp = ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
    if ((p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
        return 0;
    *used = 3;
    if (cp >= 0xFF01 && cp <= 0xFF5E)
        return (char)(cp - 0xFEE0);
    if (cp == 0x3000)
        return ' ';
    return 0;
}

/* Case-insensitive literal at p, where the literal is ASCII. */
static bool lit(const char *p, const char *end, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(end - p) < n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)p[i]) != s[i])
            return false;
    return true;
}

/* Bracketed defang tokens: what they stand for. Spaces around the word
 * forms ("evil [dot] com") are eaten with them. */
static const struct {
    const char *tok, *rep;
    bool word;
} tokens[] = {
    {"[.]", ".", false},    {"(.)", ".", false},   {"{.}", ".", false},
    {"[dot]", ".", true},   {"(dot)", ".", true},  {"{dot}", ".", true},
    {"[:]", ":", false},    {"[://]", "://", false}, {"[/]", "/", false},
    {"[@]", "@", false},    {"(@)", "@", false},   {"[at]", "@", true},
    {"(at)", "@", true},    {"{@}", "@", false},   {"{at}", "@", true},
    {"[.", ".", false},    {".]", ".", false},
};

char *tr_ioc_fold(const char *text, size_t len, size_t *out_len, size_t **map)
{
    folder f = {0};
    const char *p = text, *end = text + len;
    while (p < end) {
        size_t src = (size_t)(p - text);
        unsigned char c = (unsigned char)*p;
        if (c == '[' || c == '(' || c == '{' || c == '.') {
            size_t k;
            for (k = 0; k < sizeof tokens / sizeof tokens[0]; k++)
                if (lit(p, end, tokens[k].tok))
                    break;
            /* "[." and ".]" only as halves of "[.]"-like spellings between
             * word characters: "1.2.3[.4" is rare, "see [.NET]" is not. */
            if (k < sizeof tokens / sizeof tokens[0] && (tokens[k].tok[0] == '[' &&
                                                        tokens[k].tok[2] == 0)) {
                bool ok = p > text && isalnum((unsigned char)p[-1]) && p + 2 < end &&
                          isalnum((unsigned char)p[2]);
                if (!ok)
                    k = sizeof tokens / sizeof tokens[0];
            } else if (k < sizeof tokens / sizeof tokens[0] && tokens[k].tok[0] == '.' ) {
                bool ok = p > text && isalnum((unsigned char)p[-1]) && p + 2 < end &&
                          isalnum((unsigned char)p[2]);
                if (!ok)
                    k = sizeof tokens / sizeof tokens[0];
            }
            if (k < sizeof tokens / sizeof tokens[0]) {
                if (tokens[k].word && f.n > 0 && f.out[f.n - 1] == ' ')
                    f.n--;
                for (const char *r = tokens[k].rep; *r; r++)
                    put(&f, *r, src);
                p += strlen(tokens[k].tok);
                if (tokens[k].word && p < end && *p == ' ')
                    p++;
                continue;
            }
        }
        if ((c == 'h' || c == 'H') && (lit(p, end, "hxxp") || lit(p, end, "hxxps"))) {
            const char *q = p + 4;
            if (q < end && (*q == 's' || *q == 'S'))
                q++;
            if (q < end && (*q == ':' || *q == '[')) {
                put(&f, 'h', src);
                put(&f, 't', src + 1);
                put(&f, 't', src + 2);
                put(&f, 'p', src + 3);
                p += 4;
                continue;
            }
        }
        if ((c == 'f' || c == 'F') && lit(p, end, "fxp") && p + 3 < end &&
            (p[3] == ':' || p[3] == '[')) {
            put(&f, 'f', src);
            put(&f, 't', src + 1);
            put(&f, 'p', src + 2);
            p += 3;
            continue;
        }
        if (c >= 0x80) {
            size_t used;
            char a = fold_wide((const unsigned char *)p, (const unsigned char *)end, &used);
            if (a) {
                put(&f, a, src);
                p += used;
                continue;
            }
        }
        put(&f, (char)c, src);
        p++;
    }
    put(&f, 0, len);
    f.n--;
    f.map[f.n] = len;
    *out_len = f.n;
    *map = f.map;
    return f.out;
}
