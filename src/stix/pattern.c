/* STIX 2.1 pattern parser: a hand-written lexer and recursive-descent parser
 * for the OASIS ANTLR grammar (STIXPattern.g4), with errors that name the
 * line and column, and the canonical printer. The matcher is in
 * pattern_match.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stix/pattern_internal.h"

/* Parentheses, brackets and qualifiers nest at most this deep: the parser,
 * printer and matcher recurse along that depth. */
#define SP_MAX_DEPTH 100

typedef enum {
    T_EOF, T_LBRACK, T_RBRACK, T_LPAREN, T_RPAREN, T_COLON, T_DOT, T_COMMA, T_ASTERISK,
    T_EQ, T_NEQ, T_LT, T_LE, T_GT, T_GE,
    T_IDENT, T_STRING, T_INT, T_FLOAT, T_BOOL, T_TIME, T_HEX, T_BIN,
    T_AND, T_OR, T_NOT, T_FOLLOWEDBY, T_LIKE, T_MATCHES, T_ISSUPERSET, T_ISSUBSET,
    T_EXISTS, T_LAST, T_IN, T_START, T_STOP, T_SECONDS, T_WITHIN, T_REPEATS, T_TIMES
} tok_kind;

static const struct {
    const char *word;
    tok_kind kind;
} keywords[] = {
    {"AND", T_AND}, {"OR", T_OR}, {"NOT", T_NOT}, {"FOLLOWEDBY", T_FOLLOWEDBY},
    {"LIKE", T_LIKE}, {"MATCHES", T_MATCHES}, {"ISSUPERSET", T_ISSUPERSET},
    {"ISSUBSET", T_ISSUBSET}, {"EXISTS", T_EXISTS}, {"LAST", T_LAST}, {"IN", T_IN},
    {"START", T_START}, {"STOP", T_STOP}, {"SECONDS", T_SECONDS}, {"WITHIN", T_WITHIN},
    {"REPEATS", T_REPEATS}, {"TIMES", T_TIMES},
};

typedef struct tok {
    tok_kind kind;
    const char *start;
    size_t len;
    int line, col;
    bool hyphen;               /* identifier containing '-' (only object types may) */
    bool negative;             /* number written with '-' */
    sp_lit lit;                /* literal tokens; ownership moves to the tree */
} tok;

typedef struct parser {
    const char *p;             /* next unread byte */
    int line, col;
    tok cur;
    tr_error *err;
    bool failed;
    int depth;
} parser;

static int fail_at(parser *ps, int line, int col, const char *fmt, ...) TR_PRINTF(4, 5);
static int fail_at(parser *ps, int line, int col, const char *fmt, ...)
{
    if (ps->failed)
        return -1;
    ps->failed = true;
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tr_fail(ps->err, "pattern:%d:%d: %s", line, col, msg);
    return -1;
}

static void lit_free(sp_lit *l)
{
    free(l->s);
    free(l->text);
    memset(l, 0, sizeof *l);
}

/* ---- lexer ---------------------------------------------------------------- */

static void advance(parser *ps, size_t n)
{
    for (size_t i = 0; i < n && *ps->p; i++, ps->p++) {
        unsigned char c = (unsigned char)*ps->p;
        if (c == '\n') {
            ps->line++;
            ps->col = 1;
        } else if ((c & 0xC0) != 0x80) {
            ps->col++;     /* columns count characters, not UTF-8 bytes */
        }
    }
}

/* Length of the whitespace sequence at s (the grammar's WS set), or 0. */
static size_t space_len(const unsigned char *s)
{
    if (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        return 1;
    if (s[0] == 0xC2 && (s[1] == 0x85 || s[1] == 0xA0))
        return 2;
    if (s[0] == 0xE1 && s[1] == 0x9A && s[2] == 0x80)
        return 3;
    if (s[0] == 0xE2 && s[1] == 0x80 &&
        ((s[2] >= 0x80 && s[2] <= 0x8A) || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF))
        return 3;
    if (s[0] == 0xE2 && s[1] == 0x81 && s[2] == 0x9F)
        return 3;
    if (s[0] == 0xE3 && s[1] == 0x80 && s[2] == 0x80)
        return 3;
    return 0;
}

static int skip_space(parser *ps)
{
    for (;;) {
        size_t n = space_len((const unsigned char *)ps->p);
        if (n) {
            advance(ps, n);
        } else if (ps->p[0] == '/' && ps->p[1] == '*') {
            int line = ps->line, col = ps->col;
            const char *end = strstr(ps->p + 2, "*/");
            if (!end)
                return fail_at(ps, line, col, "unterminated comment");
            advance(ps, (size_t)(end + 2 - ps->p));
        } else if (ps->p[0] == '/' && ps->p[1] == '/') {
            while (*ps->p && *ps->p != '\n' && *ps->p != '\r')
                advance(ps, 1);
        } else {
            return 0;
        }
    }
}

/* Length of one valid UTF-8 sequence at s, 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n;
    uint32_t cp;
    if ((s[0] & 0xE0) == 0xC0) {
        n = 2;
        cp = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        n = 3;
        cp = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* The body of a quoted literal starting at ps->p (the quote): for strings
 * the decoded text, for the others the raw characters between the quotes. */
static int lex_quoted(parser *ps, bool escapes, tr_buf *out, int line, int col)
{
    advance(ps, 1);
    for (;;) {
        unsigned char c = (unsigned char)*ps->p;
        if (c == '\0')
            return fail_at(ps, line, col, "unterminated string literal");
        if (c == '\'') {
            advance(ps, 1);
            return 0;
        }
        if (c == '\\') {
            char next = ps->p[1];
            if (!escapes || (next != '\'' && next != '\\'))
                return fail_at(ps, ps->line, ps->col,
                               "invalid escape in string literal (only \\' and \\\\ are allowed)");
            tr_buf_append(out, &next, 1);
            advance(ps, 2);
            continue;
        }
        size_t n = utf8_len((const unsigned char *)ps->p);
        if (n == 0)
            return fail_at(ps, ps->line, ps->col, "invalid UTF-8 in string literal");
        tr_buf_append(out, ps->p, n);
        advance(ps, n);
    }
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict base64 as the grammar has it: whole quads, '=' padding only at the
 * end. Returns the decoded length, or -1. */
static long b64_decode(const char *s, size_t n, unsigned char *out)
{
    if (n % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else {
                if (pad)
                    return -1;
                v[k] = b64val((unsigned char)s[i + k]);
                if (v[k] < 0)
                    return -1;
            }
        }
        uint32_t q = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (unsigned char)(q >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(q >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)q;
    }
    return (long)o;
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int sp_parse_time(const char *s, size_t n, sp_time *out)
{
    /* YYYY-MM-DDTHH:MM:SS[.f+]Z */
    if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        s[n - 1] != 'Z')
        return -1;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    int h = digits(s + 11, 2), mi = digits(s + 14, 2), se = digits(s + 17, 2);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 ||
        se > 60)
        return -1;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int dim = mdays[mo - 1] + (mo == 2 && is_leap(y));
    if (d > dim)
        return -1;
    int32_t nsec = 0;
    if (n > 20) {
        if (s[19] != '.' || n == 21)
            return -1;
        int scale = 100000000;
        for (size_t i = 20; i < n - 1; i++) {
            if (s[i] < '0' || s[i] > '9')
                return -1;
            nsec += (int32_t)(s[i] - '0') * scale;
            scale /= 10;
        }
    }
    out->sec = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    out->nsec = nsec;
    return 0;
}

int sp_time_cmp(sp_time a, sp_time b)
{
    if (a.sec != b.sec)
        return a.sec < b.sec ? -1 : 1;
    if (a.nsec != b.nsec)
        return a.nsec < b.nsec ? -1 : 1;
    return 0;
}

int sp_parse_net(const char *s, sp_net *out)
{
    char buf[64];
    size_t n = strlen(s);
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, s, n + 1);
    char *slash = strchr(buf, '/');
    int prefix = -1;
    if (slash) {
        *slash = '\0';
        const char *q = slash + 1;
        if (!*q || strlen(q) > 3)
            return -1;
        prefix = 0;
        for (; *q; q++) {
            if (*q < '0' || *q > '9')
                return -1;
            prefix = prefix * 10 + (*q - '0');
        }
    }
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        if (prefix > 32)
            return -1;
        out->prefix = prefix < 0 ? 32 : prefix;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        if (prefix > 128)
            return -1;
        out->prefix = prefix < 0 ? 128 : prefix;
    } else {
        return -1;
    }
    return 0;
}

static bool is_ident_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident_char(int c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

static int lex_number(parser *ps, tok *t)
{
    const char *s = ps->p;
    size_t i = 0;
    if (s[i] == '+' || s[i] == '-')
        i++;
    size_t int_start = i;
    while (s[i] >= '0' && s[i] <= '9')
        i++;
    size_t int_digits = i - int_start;
    bool is_float = false;
    if (s[i] == '.' && s[i + 1] >= '0' && s[i + 1] <= '9') {
        is_float = true;
        i++;
        while (s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (!is_float && int_digits == 0)
        return fail_at(ps, t->line, t->col, "unexpected '%c'", s[0]);
    if (!is_float && int_digits > 1 && s[int_start] == '0')
        return fail_at(ps, t->line, t->col, "integer with a leading zero");
    t->negative = s[0] == '-';
    t->len = i;
    char *text = tr_xasprintf("%.*s", (int)i, s);
    if (is_float) {
        t->kind = T_FLOAT;
        t->lit.kind = SP_LIT_FLOAT;
        t->lit.f = strtod(text, NULL);
        if (!isfinite(t->lit.f)) {
            free(text);
            return fail_at(ps, t->line, t->col, "number out of range");
        }
        t->lit.text = text[0] == '+' ? tr_xstrdup(text + 1) : tr_xstrdup(text);
    } else {
        t->kind = T_INT;
        t->lit.kind = SP_LIT_INT;
        errno = 0;
        long long v = strtoll(text, NULL, 10);
        if (errno == ERANGE) {
            free(text);
            return fail_at(ps, t->line, t->col, "integer out of range");
        }
        t->lit.i = v;
    }
    free(text);
    advance(ps, i);
    return 0;
}

/* Reads the next token into ps->cur. */
static int next(parser *ps)
{
    lit_free(&ps->cur.lit);
    if (skip_space(ps) != 0)
        return -1;
    tok *t = &ps->cur;
    memset(t, 0, sizeof *t);
    t->start = ps->p;
    t->line = ps->line;
    t->col = ps->col;
    unsigned char c = (unsigned char)*ps->p;
    if (c == '\0') {
        t->kind = T_EOF;
        return 0;
    }
    static const struct {
        const char *s;
        tok_kind k;
    } punct[] = {
        {"==", T_EQ}, {"!=", T_NEQ}, {"<>", T_NEQ}, {"<=", T_LE}, {">=", T_GE},
        {"[", T_LBRACK}, {"]", T_RBRACK}, {"(", T_LPAREN}, {")", T_RPAREN}, {":", T_COLON},
        {",", T_COMMA}, {"*", T_ASTERISK}, {"=", T_EQ}, {"<", T_LT}, {">", T_GT},
    };
    for (size_t i = 0; i < sizeof punct / sizeof punct[0]; i++) {
        size_t n = strlen(punct[i].s);
        if (strncmp(ps->p, punct[i].s, n) == 0) {
            t->kind = punct[i].k;
            t->len = n;
            advance(ps, n);
            return 0;
        }
    }
    if (c == '.' && !(ps->p[1] >= '0' && ps->p[1] <= '9')) {
        t->kind = T_DOT;
        t->len = 1;
        advance(ps, 1);
        return 0;
    }
    if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.')
        return lex_number(ps, t);
    if (c == '\'') {
        tr_buf b = {0};
        tr_buf_append(&b, "", 1);
        b.len = 0;
        if (lex_quoted(ps, true, &b, t->line, t->col) != 0) {
            tr_buf_free(&b);
            return -1;
        }
        tr_buf_append(&b, "", 1);
        t->kind = T_STRING;
        t->lit.kind = SP_LIT_STRING;
        t->lit.s = b.data;
        t->lit.len = b.len - 1;
        t->len = (size_t)(ps->p - t->start);
        return 0;
    }
    if (is_ident_start(c)) {
        if ((c == 't' || c == 'h' || c == 'b') && ps->p[1] == '\'') {
            advance(ps, 1);
            tr_buf b = {0};
            tr_buf_append(&b, "", 1);
            b.len = 0;
            if (lex_quoted(ps, false, &b, t->line, t->col) != 0) {
                tr_buf_free(&b);
                return -1;
            }
            tr_buf_append(&b, "", 1);
            size_t n = b.len - 1;
            t->len = (size_t)(ps->p - t->start);
            t->lit.text = tr_xasprintf("%.*s", (int)t->len, t->start);
            if (c == 't') {
                t->kind = T_TIME;
                t->lit.kind = SP_LIT_TIME;
                int bad = sp_parse_time(b.data, n, &t->lit.t);
                tr_buf_free(&b);
                if (bad)
                    return fail_at(ps, t->line, t->col,
                                   "invalid timestamp (want t'YYYY-MM-DDTHH:MM:SS[.s]Z')");
            } else if (c == 'h') {
                t->kind = T_HEX;
                t->lit.kind = SP_LIT_HEX;
                if (n % 2) {
                    tr_buf_free(&b);
                    return fail_at(ps, t->line, t->col, "invalid hex literal (odd number of digits)");
                }
                t->lit.s = tr_xmalloc(n / 2 + 1);
                for (size_t i = 0; i < n; i += 2) {
                    int hi = hexval((unsigned char)b.data[i]), lo = hexval((unsigned char)b.data[i + 1]);
                    if (hi < 0 || lo < 0) {
                        tr_buf_free(&b);
                        return fail_at(ps, t->line, t->col, "invalid hex literal");
                    }
                    t->lit.s[i / 2] = (char)(hi << 4 | lo);
                }
                t->lit.len = n / 2;
                t->lit.s[t->lit.len] = '\0';
                tr_buf_free(&b);
            } else {
                t->kind = T_BIN;
                t->lit.kind = SP_LIT_BINARY;
                t->lit.s = tr_xmalloc(n / 4 * 3 + 1);
                long dn = b64_decode(b.data, n, (unsigned char *)t->lit.s);
                tr_buf_free(&b);
                if (dn < 0 || n == 0)
                    return fail_at(ps, t->line, t->col, "invalid base64 literal");
                t->lit.len = (size_t)dn;
                t->lit.s[dn] = '\0';
            }
            return 0;
        }
        size_t n = 1;
        while (is_ident_char((unsigned char)ps->p[n]) || ps->p[n] == '-') {
            if (ps->p[n] == '-')
                t->hyphen = true;
            n++;
        }
        t->len = n;
        t->kind = T_IDENT;
        for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++) {
            if (strlen(keywords[i].word) == n && memcmp(keywords[i].word, ps->p, n) == 0)
                t->kind = keywords[i].kind;
        }
        if ((n == 4 && memcmp(ps->p, "true", 4) == 0) || (n == 5 && memcmp(ps->p, "false", 5) == 0)) {
            t->kind = T_BOOL;
            t->lit.kind = SP_LIT_BOOL;
            t->lit.b = n == 4;
        }
        advance(ps, n);
        return 0;
    }
    if (c < 0x20 || c == 0x7F)
        return fail_at(ps, t->line, t->col, "invalid character 0x%02x", c);
    size_t n = utf8_len((const unsigned char *)ps->p);
    if (n == 0)
        return fail_at(ps, t->line, t->col, "invalid UTF-8");
    return fail_at(ps, t->line, t->col, "unexpected '%.*s'", (int)n, ps->p);
}

/* How the current token reads in an error message. */
static const char *tok_desc(const tok *t, char *buf, size_t bufsz)
{
    if (t->kind == T_EOF)
        return "end of pattern";
    size_t n = t->len;
    if (n > 24) {
        /* cut at a character boundary */
        n = 24;
        while (n > 0 && ((unsigned char)t->start[n] & 0xC0) == 0x80)
            n--;
        snprintf(buf, bufsz, "'%.*s...'", (int)n, t->start);
    } else {
        snprintf(buf, bufsz, "'%.*s'", (int)n, t->start);
    }
    return buf;
}

static int expected(parser *ps, const char *what)
{
    char buf[64];
    return fail_at(ps, ps->cur.line, ps->cur.col, "expected %s, found %s", what,
                   tok_desc(&ps->cur, buf, sizeof buf));
}

/* ---- tree ------------------------------------------------------------------ */

static void path_free(sp_path *p)
{
    free(p->type);
    for (size_t i = 0; i < p->nsteps; i++)
        free(p->steps[i].key);
    free(p->steps);
    free(p->canon);
}

static void cmp_free(sp_cmp *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nkids; i++)
        cmp_free(c->kids[i]);
    free(c->kids);
    path_free(&c->path);
    for (size_t i = 0; i < c->nlits; i++)
        lit_free(&c->lits[i]);
    free(c->lits);
    if (c->re_text)
        pcre2_code_free(c->re_text);
    if (c->re_bytes)
        pcre2_code_free(c->re_bytes);
    free(c);
}

static void obs_free(sp_obs *o)
{
    if (!o)
        return;
    cmp_free(o->cmp);
    for (size_t i = 0; i < o->nkids; i++)
        obs_free(o->kids[i]);
    free(o->kids);
    obs_free(o->operand);
    free(o->within_text);
    lit_free(&o->start);
    lit_free(&o->stop);
    free(o);
}

void tr_stix_pattern_free(tr_stix_pattern *p)
{
    if (!p)
        return;
    obs_free(p->root);
    free(p->paths);
    free(p->terms);
    free(p->types);
    free(p);
}

static bool is_keyword(const char *s)
{
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
        if (strcmp(keywords[i].word, s) == 0)
            return true;
    return strcmp(s, "true") == 0 || strcmp(s, "false") == 0;
}

static bool plain_key(const char *s)
{
    if (!is_ident_start((unsigned char)s[0]))
        return false;
    for (const char *q = s + 1; *q; q++)
        if (!is_ident_char((unsigned char)*q))
            return false;
    return !is_keyword(s);
}

static void put_string(tr_buf *b, const char *s, size_t n)
{
    tr_buf_append(b, "'", 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\'' || s[i] == '\\')
            tr_buf_append(b, "\\", 1);
        tr_buf_append(b, s + i, 1);
    }
    tr_buf_append(b, "'", 1);
}

static void put_key(tr_buf *b, const char *key)
{
    if (plain_key(key))
        tr_buf_append(b, key, strlen(key));
    else
        put_string(b, key, strlen(key));
}

static char *path_canon(const sp_path *p)
{
    tr_buf b = {0};
    for (size_t i = 0; i < p->nsteps; i++) {
        const sp_step *s = &p->steps[i];
        if (s->kind == SP_STEP_KEY) {
            if (i > 0)
                tr_buf_append(&b, ".", 1);
            put_key(&b, s->key);
        } else if (s->kind == SP_STEP_ANY) {
            tr_buf_append(&b, "[*]", 3);
        } else {
            tr_buf_printf(&b, "[%lld]", (long long)s->index);
        }
    }
    tr_buf_append(&b, "", 1);
    return b.data;
}

/* ---- parser ---------------------------------------------------------------- */

static void add_step(sp_path *p, sp_step s)
{
    p->steps = tr_xrealloc(p->steps, (p->nsteps + 1) * sizeof *p->steps);
    p->steps[p->nsteps++] = s;
}

/* A property name: an identifier without '-' or a quoted string. */
static int parse_key(parser *ps, sp_path *path, const char *after)
{
    if (ps->cur.kind == T_IDENT) {
        if (ps->cur.hyphen)
            return fail_at(ps, ps->cur.line, ps->cur.col,
                           "property name %.*s contains '-': quote it ('%.*s')", (int)ps->cur.len,
                           ps->cur.start, (int)ps->cur.len, ps->cur.start);
        add_step(path, (sp_step){SP_STEP_KEY, tr_xasprintf("%.*s", (int)ps->cur.len, ps->cur.start), 0});
    } else if (ps->cur.kind == T_STRING) {
        add_step(path, (sp_step){SP_STEP_KEY, tr_xstrdup(ps->cur.lit.s), 0});
    } else {
        char what[64];
        snprintf(what, sizeof what, "a property name after %s", after);
        return expected(ps, what);
    }
    return next(ps);
}

static int parse_path(parser *ps, sp_path *path)
{
    if (ps->cur.kind != T_IDENT)
        return expected(ps, "an object path (type:property)");
    path->type = tr_xasprintf("%.*s", (int)ps->cur.len, ps->cur.start);
    if (next(ps) != 0)
        return -1;
    if (ps->cur.kind != T_COLON)
        return expected(ps, "':' after the object type");
    if (next(ps) != 0 || parse_key(ps, path, "':'") != 0)
        return -1;
    for (;;) {
        if (ps->cur.kind == T_DOT) {
            if (next(ps) != 0 || parse_key(ps, path, "'.'") != 0)
                return -1;
        } else if (ps->cur.kind == T_LBRACK) {
            if (next(ps) != 0)
                return -1;
            if (ps->cur.kind == T_ASTERISK) {
                add_step(path, (sp_step){SP_STEP_ANY, NULL, 0});
            } else if (ps->cur.kind == T_INT) {
                add_step(path, (sp_step){SP_STEP_INDEX, NULL, ps->cur.lit.i});
            } else {
                return expected(ps, "a list index or '*'");
            }
            if (next(ps) != 0)
                return -1;
            if (ps->cur.kind != T_RBRACK)
                return expected(ps, "']' after the list index");
            if (next(ps) != 0)
                return -1;
        } else {
            break;
        }
    }
    path->canon = path_canon(path);
    return 0;
}

/* Takes the current literal token into *out if its kind is allowed. */
static int take_lit(parser *ps, sp_lit *out, bool allow_bool, bool only_string, const char *what)
{
    tok_kind k = ps->cur.kind;
    bool ok = only_string ? k == T_STRING
                          : (k == T_INT || k == T_FLOAT || k == T_STRING || k == T_TIME || k == T_HEX ||
                             k == T_BIN || (allow_bool && k == T_BOOL));
    if (!ok)
        return expected(ps, what);
    *out = ps->cur.lit;
    memset(&ps->cur.lit, 0, sizeof ps->cur.lit);
    return next(ps);
}

static int compile_regex(parser *ps, sp_cmp *c, int line, int col)
{
    int ec;
    PCRE2_SIZE off;
    c->re_text = pcre2_compile((PCRE2_SPTR)c->lits[0].s, c->lits[0].len, PCRE2_UTF, &ec, &off, NULL);
    if (!c->re_text) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return fail_at(ps, line, col, "invalid regular expression: %s at offset %zu", (char *)msg,
                       (size_t)off);
    }
    /* binary properties are matched byte by byte, each byte one character */
    c->re_bytes = pcre2_compile((PCRE2_SPTR)c->lits[0].s, c->lits[0].len, 0, &ec, &off, NULL);
    return 0;
}

static sp_cmp *parse_cmp_or(parser *ps);

static sp_cmp *parse_test(parser *ps)
{
    sp_cmp *c = tr_xcalloc(1, sizeof *c);
    c->kind = SP_CMP_TEST;
    if (ps->cur.kind == T_LPAREN) {
        int line = ps->cur.line, col = ps->cur.col;
        if (++ps->depth > SP_MAX_DEPTH) {
            fail_at(ps, line, col, "nesting deeper than %d", SP_MAX_DEPTH);
            goto bad;
        }
        free(c);
        c = NULL;
        if (next(ps) != 0)
            return NULL;
        sp_cmp *inner = parse_cmp_or(ps);
        if (!inner)
            return NULL;
        if (ps->cur.kind != T_RPAREN) {
            char buf[64];
            fail_at(ps, ps->cur.line, ps->cur.col,
                    "expected ')' to close the '(' at %d:%d, found %s", line, col,
                    tok_desc(&ps->cur, buf, sizeof buf));
            cmp_free(inner);
            return NULL;
        }
        ps->depth--;
        if (next(ps) != 0) {
            cmp_free(inner);
            return NULL;
        }
        return inner;
    }
    if (ps->cur.kind == T_NOT || ps->cur.kind == T_EXISTS) {
        if (ps->cur.kind == T_NOT) {
            c->negated = true;
            if (next(ps) != 0)
                goto bad;
            if (ps->cur.kind != T_EXISTS) {
                expected(ps, "EXISTS after NOT");
                goto bad;
            }
        }
        c->op = SP_OP_EXISTS;
        if (next(ps) != 0 || parse_path(ps, &c->path) != 0)
            goto bad;
        return c;
    }
    if (parse_path(ps, &c->path) != 0)
        goto bad;
    if (ps->cur.kind == T_NOT) {
        c->negated = true;
        if (next(ps) != 0)
            goto bad;
    }
    switch (ps->cur.kind) {
    case T_EQ: c->op = SP_OP_EQ; break;
    case T_NEQ: c->op = SP_OP_NEQ; break;
    case T_LT: c->op = SP_OP_LT; break;
    case T_LE: c->op = SP_OP_LE; break;
    case T_GT: c->op = SP_OP_GT; break;
    case T_GE: c->op = SP_OP_GE; break;
    case T_IN: c->op = SP_OP_IN; break;
    case T_LIKE: c->op = SP_OP_LIKE; break;
    case T_MATCHES: c->op = SP_OP_MATCHES; break;
    case T_ISSUBSET: c->op = SP_OP_ISSUBSET; break;
    case T_ISSUPERSET: c->op = SP_OP_ISSUPERSET; break;
    default:
        expected(ps, "a comparison operator");
        goto bad;
    }
    if (next(ps) != 0)
        goto bad;
    int lit_line = ps->cur.line, lit_col = ps->cur.col;
    switch (c->op) {
    case SP_OP_EQ:
    case SP_OP_NEQ:
        c->lits = tr_xcalloc(1, sizeof *c->lits);
        c->nlits = 1;
        if (take_lit(ps, &c->lits[0], true, false, "a literal") != 0)
            goto bad;
        break;
    case SP_OP_LT:
    case SP_OP_LE:
    case SP_OP_GT:
    case SP_OP_GE:
        c->lits = tr_xcalloc(1, sizeof *c->lits);
        c->nlits = 1;
        if (take_lit(ps, &c->lits[0], false, false, "an orderable literal (not a boolean)") != 0)
            goto bad;
        break;
    case SP_OP_IN:
        if (ps->cur.kind != T_LPAREN) {
            expected(ps, "'(' to open the set after IN");
            goto bad;
        }
        if (next(ps) != 0)
            goto bad;
        while (ps->cur.kind != T_RPAREN) {
            if (c->nlits > 0) {
                if (ps->cur.kind != T_COMMA) {
                    expected(ps, "',' or ')' in the set");
                    goto bad;
                }
                if (next(ps) != 0)
                    goto bad;
            }
            c->lits = tr_xrealloc(c->lits, (c->nlits + 1) * sizeof *c->lits);
            memset(&c->lits[c->nlits], 0, sizeof *c->lits);
            c->nlits++;
            if (take_lit(ps, &c->lits[c->nlits - 1], true, false, "a literal in the set") != 0)
                goto bad;
        }
        if (next(ps) != 0)
            goto bad;
        break;
    default:
        c->lits = tr_xcalloc(1, sizeof *c->lits);
        c->nlits = 1;
        if (take_lit(ps, &c->lits[0], false, true, "a string literal") != 0)
            goto bad;
        if (c->op == SP_OP_MATCHES && compile_regex(ps, c, lit_line, lit_col) != 0)
            goto bad;
        if ((c->op == SP_OP_ISSUBSET || c->op == SP_OP_ISSUPERSET) &&
            sp_parse_net(c->lits[0].s, &c->net) != 0) {
            fail_at(ps, lit_line, lit_col, "%s needs an IPv4 or IPv6 address or CIDR range",
                    c->op == SP_OP_ISSUBSET ? "ISSUBSET" : "ISSUPERSET");
            goto bad;
        }
        break;
    }
    return c;
bad:
    cmp_free(c);
    return NULL;
}

/* One level of an n-ary chain: kids joined by `op`, built flat. */
static sp_cmp *cmp_chain(parser *ps, tok_kind op, sp_cmp_kind kind, sp_cmp *(*sub)(parser *))
{
    sp_cmp *first = sub(ps);
    if (!first || ps->cur.kind != op)
        return first;
    sp_cmp *c = tr_xcalloc(1, sizeof *c);
    c->kind = kind;
    c->kids = tr_xmalloc(sizeof *c->kids);
    c->kids[0] = first;
    c->nkids = 1;
    while (ps->cur.kind == op) {
        if (next(ps) != 0) {
            cmp_free(c);
            return NULL;
        }
        sp_cmp *k = sub(ps);
        if (!k) {
            cmp_free(c);
            return NULL;
        }
        c->kids = tr_xrealloc(c->kids, (c->nkids + 1) * sizeof *c->kids);
        c->kids[c->nkids++] = k;
    }
    return c;
}

static sp_cmp *parse_cmp_and(parser *ps)
{
    return cmp_chain(ps, T_AND, SP_CMP_AND, parse_test);
}

static sp_cmp *parse_cmp_or(parser *ps)
{
    return cmp_chain(ps, T_OR, SP_CMP_OR, parse_cmp_and);
}

static sp_obs *parse_obs_fb(parser *ps);

static int parse_positive(parser *ps, const char *what)
{
    if ((ps->cur.kind != T_INT && ps->cur.kind != T_FLOAT) || ps->cur.negative)
        return expected(ps, what);
    return 0;
}

static sp_obs *parse_obs_primary(parser *ps)
{
    sp_obs *o = NULL;
    int line = ps->cur.line, col = ps->cur.col;
    if (ps->cur.kind == T_LBRACK || ps->cur.kind == T_LPAREN) {
        bool bracket = ps->cur.kind == T_LBRACK;
        if (++ps->depth > SP_MAX_DEPTH) {
            fail_at(ps, line, col, "nesting deeper than %d", SP_MAX_DEPTH);
            return NULL;
        }
        if (next(ps) != 0)
            return NULL;
        if (bracket) {
            o = tr_xcalloc(1, sizeof *o);
            o->kind = SP_OBS_SIMPLE;
            o->cmp = parse_cmp_or(ps);
            if (!o->cmp)
                goto bad;
        } else {
            o = parse_obs_fb(ps);
            if (!o)
                return NULL;
        }
        if (ps->cur.kind != (bracket ? T_RBRACK : T_RPAREN)) {
            char buf[64];
            fail_at(ps, ps->cur.line, ps->cur.col, "expected '%c' to close the '%c' at %d:%d, found %s",
                    bracket ? ']' : ')', bracket ? '[' : '(', line, col,
                    tok_desc(&ps->cur, buf, sizeof buf));
            goto bad;
        }
        ps->depth--;
        if (next(ps) != 0)
            goto bad;
    } else {
        expected(ps, "'[' or '(' to start an observation expression");
        return NULL;
    }
    /* qualifiers, any number, each applying to what precedes it */
    int quals = 0;
    for (;;) {
        tok_kind k = ps->cur.kind;
        if (k != T_WITHIN && k != T_REPEATS && k != T_START)
            break;
        if (++quals + ps->depth > SP_MAX_DEPTH) {
            fail_at(ps, ps->cur.line, ps->cur.col, "more than %d qualifiers", SP_MAX_DEPTH);
            goto bad;
        }
        sp_obs *q = tr_xcalloc(1, sizeof *q);
        q->operand = o;
        o = q;
        if (next(ps) != 0)
            goto bad;
        if (k == T_WITHIN) {
            q->kind = SP_OBS_WITHIN;
            if (parse_positive(ps, "a positive number of seconds after WITHIN") != 0)
                goto bad;
            q->within = ps->cur.kind == T_INT ? (double)ps->cur.lit.i : ps->cur.lit.f;
            q->within_text = ps->cur.kind == T_INT ? tr_xasprintf("%lld", (long long)ps->cur.lit.i)
                                                   : tr_xstrdup(ps->cur.lit.text);
            if (!(q->within > 0)) {
                fail_at(ps, ps->cur.line, ps->cur.col, "WITHIN needs more than 0 seconds");
                goto bad;
            }
            if (next(ps) != 0)
                goto bad;
            if (ps->cur.kind != T_SECONDS) {
                expected(ps, "SECONDS");
                goto bad;
            }
        } else if (k == T_REPEATS) {
            q->kind = SP_OBS_REPEATS;
            if (ps->cur.kind != T_INT || ps->cur.negative) {
                expected(ps, "a positive integer after REPEATS");
                goto bad;
            }
            q->repeats = ps->cur.lit.i;
            if (q->repeats < 1) {
                fail_at(ps, ps->cur.line, ps->cur.col, "REPEATS needs at least 1");
                goto bad;
            }
            if (next(ps) != 0)
                goto bad;
            if (ps->cur.kind != T_TIMES) {
                expected(ps, "TIMES");
                goto bad;
            }
        } else {
            q->kind = SP_OBS_STARTSTOP;
            if (ps->cur.kind != T_TIME) {
                expected(ps, "a timestamp t'...' after START");
                goto bad;
            }
            if (take_lit(ps, &q->start, false, false, "") != 0)
                goto bad;
            if (ps->cur.kind != T_STOP) {
                expected(ps, "STOP");
                goto bad;
            }
            if (next(ps) != 0)
                goto bad;
            if (ps->cur.kind != T_TIME) {
                expected(ps, "a timestamp t'...' after STOP");
                goto bad;
            }
            if (take_lit(ps, &q->stop, false, false, "") != 0)
                goto bad;
            continue;
        }
        if (next(ps) != 0)
            goto bad;
    }
    return o;
bad:
    obs_free(o);
    return NULL;
}

static sp_obs *obs_chain(parser *ps, tok_kind op, sp_obs_kind kind, sp_obs *(*sub)(parser *))
{
    sp_obs *first = sub(ps);
    if (!first || ps->cur.kind != op)
        return first;
    sp_obs *o = tr_xcalloc(1, sizeof *o);
    o->kind = kind;
    o->kids = tr_xmalloc(sizeof *o->kids);
    o->kids[0] = first;
    o->nkids = 1;
    while (ps->cur.kind == op) {
        if (next(ps) != 0) {
            obs_free(o);
            return NULL;
        }
        sp_obs *k = sub(ps);
        if (!k) {
            obs_free(o);
            return NULL;
        }
        o->kids = tr_xrealloc(o->kids, (o->nkids + 1) * sizeof *o->kids);
        o->kids[o->nkids++] = k;
    }
    return o;
}

static sp_obs *parse_obs_and(parser *ps)
{
    return obs_chain(ps, T_AND, SP_OBS_AND, parse_obs_primary);
}

static sp_obs *parse_obs_or(parser *ps)
{
    return obs_chain(ps, T_OR, SP_OBS_OR, parse_obs_and);
}

static sp_obs *parse_obs_fb(parser *ps)
{
    return obs_chain(ps, T_FOLLOWEDBY, SP_OBS_FOLLOWEDBY, parse_obs_or);
}

/* ---- paths and terms --------------------------------------------------- */

static void collect(tr_stix_pattern *p, const sp_cmp *c)
{
    if (c->kind != SP_CMP_TEST) {
        for (size_t i = 0; i < c->nkids; i++)
            collect(p, c->kids[i]);
        return;
    }
    bool seen = false;
    for (size_t i = 0; i < p->ntypes && !seen; i++)
        seen = strcmp(p->types[i], c->path.type) == 0;
    if (!seen) {
        p->types = tr_xrealloc(p->types, (p->ntypes + 1) * sizeof *p->types);
        p->types[p->ntypes++] = c->path.type;
    }
    seen = false;
    for (size_t i = 0; i < p->npaths && !seen; i++)
        seen = strcmp(p->paths[i].type, c->path.type) == 0 && strcmp(p->paths[i].path, c->path.canon) == 0;
    if (!seen) {
        p->paths = tr_xrealloc(p->paths, (p->npaths + 1) * sizeof *p->paths);
        p->paths[p->npaths++] = (tr_stix_path_ref){c->path.type, c->path.canon};
    }
    if (c->negated)
        return;
    tr_stix_term_kind kind;
    if (c->op == SP_OP_EQ || c->op == SP_OP_IN)
        kind = TR_STIX_TERM_EQUALS;
    else if (c->op == SP_OP_ISSUBSET)
        kind = TR_STIX_TERM_SUBSET;
    else
        return;
    const char *prop = NULL;
    for (size_t i = c->path.nsteps; i-- > 0 && !prop;)
        if (c->path.steps[i].kind == SP_STEP_KEY)
            prop = c->path.steps[i].key;
    for (size_t i = 0; i < c->nlits; i++) {
        if (c->lits[i].kind != SP_LIT_STRING)
            continue;
        p->terms = tr_xrealloc(p->terms, (p->nterms + 1) * sizeof *p->terms);
        p->terms[p->nterms++] = (tr_stix_term){kind, c->path.type, c->path.canon, prop, c->lits[i].s};
    }
}

static void collect_obs(tr_stix_pattern *p, const sp_obs *o)
{
    if (o->cmp)
        collect(p, o->cmp);
    for (size_t i = 0; i < o->nkids; i++)
        collect_obs(p, o->kids[i]);
    if (o->operand)
        collect_obs(p, o->operand);
}

size_t tr_stix_pattern_paths(const tr_stix_pattern *p, const tr_stix_path_ref **out)
{
    *out = p->paths;
    return p->npaths;
}

size_t tr_stix_pattern_types(const tr_stix_pattern *p, const char *const **out)
{
    *out = p->types;
    return p->ntypes;
}

size_t tr_stix_pattern_terms(const tr_stix_pattern *p, const tr_stix_term **out)
{
    *out = p->terms;
    return p->nterms;
}

tr_stix_pattern *tr_stix_pattern_parse(const char *text, tr_error *err)
{
    parser ps = {.p = text, .line = 1, .col = 1, .err = err};
    sp_obs *root = NULL;
    if (next(&ps) == 0)
        root = parse_obs_fb(&ps);
    if (root && ps.cur.kind != T_EOF) {
        char buf[64];
        const char *what = ps.cur.kind == T_LBRACK || ps.cur.kind == T_LPAREN
                               ? "AND, OR, FOLLOWEDBY or a qualifier between observation expressions"
                               : "end of pattern";
        fail_at(&ps, ps.cur.line, ps.cur.col, "expected %s, found %s", what,
                tok_desc(&ps.cur, buf, sizeof buf));
    }
    lit_free(&ps.cur.lit);
    if (ps.failed || !root) {
        obs_free(root);
        return NULL;
    }
    tr_stix_pattern *p = tr_xcalloc(1, sizeof *p);
    p->root = root;
    collect_obs(p, root);
    return p;
}

/* ---- canonical text ------------------------------------------------------- */

static void put_lit(tr_buf *b, const sp_lit *l)
{
    switch (l->kind) {
    case SP_LIT_INT: tr_buf_printf(b, "%lld", (long long)l->i); break;
    case SP_LIT_STRING: put_string(b, l->s, l->len); break;
    case SP_LIT_BOOL: tr_buf_printf(b, "%s", l->b ? "true" : "false"); break;
    default: tr_buf_printf(b, "%s", l->text); break;
    }
}

static const char *op_word(sp_op op)
{
    static const char *const w[] = {"=", "!=", "<", "<=", ">", ">=", "IN", "LIKE", "MATCHES",
                                    "ISSUBSET", "ISSUPERSET", "EXISTS"};
    return w[op];
}

static void put_cmp(tr_buf *b, const sp_cmp *c, bool parens)
{
    if (c->kind != SP_CMP_TEST) {
        if (parens)
            tr_buf_append(b, "(", 1);
        for (size_t i = 0; i < c->nkids; i++) {
            if (i)
                tr_buf_printf(b, " %s ", c->kind == SP_CMP_AND ? "AND" : "OR");
            /* an AND inside an OR binds tighter already; anything else nested keeps its parentheses */
            const sp_cmp *k = c->kids[i];
            put_cmp(b, k, k->kind != SP_CMP_TEST && !(c->kind == SP_CMP_OR && k->kind == SP_CMP_AND));
        }
        if (parens)
            tr_buf_append(b, ")", 1);
        return;
    }
    if (c->op == SP_OP_EXISTS) {
        tr_buf_printf(b, "%sEXISTS %s:%s", c->negated ? "NOT " : "", c->path.type, c->path.canon);
        return;
    }
    tr_buf_printf(b, "%s:%s %s%s ", c->path.type, c->path.canon, c->negated ? "NOT " : "", op_word(c->op));
    if (c->op == SP_OP_IN) {
        tr_buf_append(b, "(", 1);
        for (size_t i = 0; i < c->nlits; i++) {
            if (i)
                tr_buf_append(b, ", ", 2);
            put_lit(b, &c->lits[i]);
        }
        tr_buf_append(b, ")", 1);
    } else {
        put_lit(b, &c->lits[0]);
    }
}

static int obs_rank(const sp_obs *o)
{
    switch (o->kind) {
    case SP_OBS_FOLLOWEDBY: return 1;
    case SP_OBS_OR: return 2;
    case SP_OBS_AND: return 3;
    default: return 4;
    }
}

static void put_obs(tr_buf *b, const sp_obs *o)
{
    switch (o->kind) {
    case SP_OBS_SIMPLE:
        tr_buf_append(b, "[", 1);
        put_cmp(b, o->cmp, false);
        tr_buf_append(b, "]", 1);
        return;
    case SP_OBS_AND:
    case SP_OBS_OR:
    case SP_OBS_FOLLOWEDBY: {
        const char *w = o->kind == SP_OBS_AND ? "AND" : o->kind == SP_OBS_OR ? "OR" : "FOLLOWEDBY";
        for (size_t i = 0; i < o->nkids; i++) {
            if (i)
                tr_buf_printf(b, " %s ", w);
            bool par = obs_rank(o->kids[i]) <= obs_rank(o);
            if (par)
                tr_buf_append(b, "(", 1);
            put_obs(b, o->kids[i]);
            if (par)
                tr_buf_append(b, ")", 1);
        }
        return;
    }
    default:
        break;
    }
    bool par = obs_rank(o->operand) < 4;
    if (par)
        tr_buf_append(b, "(", 1);
    put_obs(b, o->operand);
    if (par)
        tr_buf_append(b, ")", 1);
    if (o->kind == SP_OBS_WITHIN)
        tr_buf_printf(b, " WITHIN %s SECONDS", o->within_text);
    else if (o->kind == SP_OBS_REPEATS)
        tr_buf_printf(b, " REPEATS %lld TIMES", (long long)o->repeats);
    else
        tr_buf_printf(b, " START %s STOP %s", o->start.text, o->stop.text);
}

char *tr_stix_pattern_format(const tr_stix_pattern *p)
{
    tr_buf b = {0};
    put_obs(&b, p->root);
    tr_buf_append(&b, "", 1);
    return b.data;
}
