/* The YARA 4.2.3 lexer and recursive-descent parser, with the semantic checks
 * libyara makes while compiling (duplicates, undefined and unreferenced
 * strings, undefined identifiers, unknown modules, types, constant folding
 * overflow). Its verdict must equal libyara's: the conformance tests compare
 * both on every public rule file and on libyara's own compile-error cases.
 * On top of that it rejects the shapes known to crash libyara 4.2.3. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/ast.h"
#include "rules/rules.h"

#define MAX_INCLUDE_DEPTH 16
#define MAX_EXPR_DEPTH 200
#define MAX_HEX_DEPTH 32
#define MAX_LOOP_VARS 32
#define YR_MAX_ATOM_JUMP_IN_ALT 200

/* ---- tokens ------------------------------------------------------------------ */
enum {
    TK_EOF, TK_IDENT, TK_STRID, TK_STRID_WILD, TK_STRCOUNT, TK_STROFF, TK_STRLEN,
    TK_INT, TK_FLOAT, TK_TEXT, TK_REGEX, TK_HEX,
    /* keywords */
    K_ALL, K_AND, K_ANY, K_ASCII, K_AT, K_BASE64, K_BASE64WIDE, K_CONDITION, K_CONTAINS,
    K_DEFINED, K_ENDSWITH, K_ENTRYPOINT, K_FALSE, K_FILESIZE, K_FOR, K_FULLWORD, K_GLOBAL,
    K_IMPORT, K_ICONTAINS, K_IENDSWITH, K_IEQUALS, K_IN, K_INCLUDE, K_ISTARTSWITH,
    K_MATCHES, K_META, K_NOCASE, K_NONE, K_NOT, K_OF, K_OR, K_PRIVATE, K_RULE,
    K_STARTSWITH, K_STRINGS, K_THEM, K_TRUE, K_WIDE, K_XOR, K_INTFUNC,
    /* punctuation */
    P_LPAREN, P_RPAREN, P_LBRACK, P_RBRACK, P_LBRACE, P_RBRACE, P_COLON, P_COMMA, P_ASSIGN,
    P_DOT, P_DOTDOT, P_PLUS, P_MINUS, P_STAR, P_BACKSLASH, P_PERCENT, P_AMP, P_PIPE,
    P_CARET, P_TILDE, P_SHL, P_SHR, P_LT, P_LE, P_GT, P_GE, P_EQ, P_NE,
};

static const struct {
    const char *w;
    int k;
} keywords[] = {
    {"all", K_ALL}, {"and", K_AND}, {"any", K_ANY}, {"ascii", K_ASCII}, {"at", K_AT},
    {"base64", K_BASE64}, {"base64wide", K_BASE64WIDE}, {"condition", K_CONDITION},
    {"contains", K_CONTAINS}, {"defined", K_DEFINED}, {"endswith", K_ENDSWITH},
    {"entrypoint", K_ENTRYPOINT}, {"false", K_FALSE}, {"filesize", K_FILESIZE},
    {"for", K_FOR}, {"fullword", K_FULLWORD}, {"global", K_GLOBAL}, {"import", K_IMPORT},
    {"icontains", K_ICONTAINS}, {"iendswith", K_IENDSWITH}, {"iequals", K_IEQUALS},
    {"in", K_IN}, {"include", K_INCLUDE}, {"istartswith", K_ISTARTSWITH},
    {"matches", K_MATCHES}, {"meta", K_META}, {"nocase", K_NOCASE}, {"none", K_NONE},
    {"not", K_NOT}, {"of", K_OF}, {"or", K_OR}, {"private", K_PRIVATE}, {"rule", K_RULE},
    {"startswith", K_STARTSWITH}, {"strings", K_STRINGS}, {"them", K_THEM},
    {"true", K_TRUE}, {"wide", K_WIDE}, {"xor", K_XOR},
    {"int8", K_INTFUNC}, {"int16", K_INTFUNC}, {"int32", K_INTFUNC}, {"uint8", K_INTFUNC},
    {"uint16", K_INTFUNC}, {"uint32", K_INTFUNC}, {"int8be", K_INTFUNC},
    {"int16be", K_INTFUNC}, {"int32be", K_INTFUNC}, {"uint8be", K_INTFUNC},
    {"uint16be", K_INTFUNC}, {"uint32be", K_INTFUNC},
};

/* The modules compiled into Debian's libyara 4.2.3. */
static const char *const known_modules[] = {
    "pe", "elf", "math", "hash", "dotnet", "time", "cuckoo", "magic", "dex", "macho",
    "console", "tests",
};

typedef struct tok {
    int kind;
    int line, col;
    char *text;          /* names, decoded text, regex source, hex body */
    size_t len;
    size_t off, end;     /* byte span in the file's text */
    int64_t ival;
    double fval;
    bool re_i, re_s;
} tok;

typedef struct lexer {
    const char *file;
    const char *s;
    size_t len, pos;
    int line;
    size_t line_start;
    tok *toks;
    size_t ntok, cap;
} lexer;

/* ---- shared state across one parse (all included files) ----------------------- */
typedef struct pctx {
    tr_ruleset *rs;
    tr_error *err;
    bool failed;
    char *stack[MAX_INCLUDE_DEPTH];   /* real paths of the files being parsed */
    size_t depth;
    char **wild;                      /* rule-name prefixes used in rule sets */
    size_t nwild;
    const char *const *externals;
    size_t nexternals;
    bool allow_includes;
    size_t include_bytes;             /* read so far, against TR_RULES_MAX_INCLUDE_BYTES */
    tr_buf *flat;                     /* when set: the text with includes inlined */
} pctx;

typedef struct parser {
    pctx *c;
    const char *file;
    const char *dir;
    tok *t;
    size_t n, pos;
    tr_rule *rule;
    const char *vars[MAX_LOOP_VARS];
    val_type vtypes[MAX_LOOP_VARS];
    size_t nvars;
    int in_for_of;
    int in_defined;
    int depth;
} parser;

static int failf(pctx *c, const char *file, int line, int col, const char *fmt, ...)
    TR_PRINTF(5, 6);
static int failf(pctx *c, const char *file, int line, int col, const char *fmt, ...)
{
    if (c->failed)
        return -1;
    c->failed = true;
    char m[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    return tr_fail(c->err, "%s:%d:%d: %s", file, line, col, m);
}

/* ---- lexer -------------------------------------------------------------------- */
static tok *tok_push(lexer *lx, int kind, size_t start)
{
    if (lx->ntok == lx->cap) {
        lx->cap = lx->cap ? lx->cap * 2 : 256;
        lx->toks = tr_xrealloc(lx->toks, lx->cap * sizeof *lx->toks);
    }
    tok *t = &lx->toks[lx->ntok++];
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->off = start;
    t->line = lx->line;
    t->col = (int)(start - lx->line_start) + 1;
    return t;
}

static void free_tokens(tok *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(t[i].text);
    free(t);
}

static int lex_fail(pctx *c, lexer *lx, size_t at, const char *msg)
{
    return failf(c, lx->file, lx->line, (int)(at - lx->line_start) + 1, "%s", msg);
}

static bool is_ident_start(int ch) { return ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'); }
static bool is_ident_char(int ch) { return is_ident_start(ch) || (ch >= '0' && ch <= '9'); }

static int hexdig(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static void newline(lexer *lx, size_t at)
{
    lx->line++;
    lx->line_start = at + 1;
}

/* A text string: decodes the escapes libyara knows. */
static int lex_text(pctx *c, lexer *lx, size_t start)
{
    tr_buf b = {0};
    size_t i = start + 1;
    for (;;) {
        if (i >= lx->len || lx->s[i] == '\n') {
            tr_buf_free(&b);
            return lex_fail(c, lx, start, "unterminated string");
        }
        char ch = lx->s[i];
        if (ch == '"')
            break;
        if (ch == '\\') {
            char e = i + 1 < lx->len ? lx->s[i + 1] : 0;
            char out;
            switch (e) {
            case 't': out = '\t'; break;
            case 'n': out = '\n'; break;
            case 'r': out = '\r'; break;
            case '"': out = '"'; break;
            case '\\': out = '\\'; break;
            case 'x': {
                int h1 = i + 2 < lx->len ? hexdig((unsigned char)lx->s[i + 2]) : -1;
                int h2 = i + 3 < lx->len ? hexdig((unsigned char)lx->s[i + 3]) : -1;
                if (h1 < 0 || h2 < 0) {
                    tr_buf_free(&b);
                    return lex_fail(c, lx, i, "illegal escape sequence");
                }
                out = (char)(h1 * 16 + h2);
                i += 2;
                break;
            }
            default:
                tr_buf_free(&b);
                return lex_fail(c, lx, i, "illegal escape sequence");
            }
            tr_buf_append(&b, &out, 1);
            i += 2;
            continue;
        }
        tr_buf_append(&b, &ch, 1);
        i++;
    }
    tok *t = tok_push(lx, TK_TEXT, start);
    t->len = b.len;
    t->text = tr_xmalloc(b.len + 1);
    if (b.len)
        memcpy(t->text, b.data, b.len);
    t->text[b.len] = 0;
    tr_buf_free(&b);
    lx->pos = i + 1;
    return 0;
}

static int lex_regex(pctx *c, lexer *lx, size_t start)
{
    size_t i = start + 1;
    for (;;) {
        if (i >= lx->len || lx->s[i] == '\n')
            return lex_fail(c, lx, start, "unterminated regular expression");
        if (lx->s[i] == '\\') {
            if (i + 1 >= lx->len || lx->s[i + 1] == '\n')
                return lex_fail(c, lx, start, "unterminated regular expression");
            i += 2;
            continue;
        }
        if (lx->s[i] == '/')
            break;
        i++;
    }
    tok *t = tok_push(lx, TK_REGEX, start);
    t->len = i - start - 1;
    t->text = tr_xmalloc(t->len + 1);
    memcpy(t->text, lx->s + start + 1, t->len);
    t->text[t->len] = 0;
    i++;
    /* libyara's lexer takes the flags in this order only: /re/is */
    if (i < lx->len && lx->s[i] == 'i') {
        t->re_i = true;
        i++;
    }
    if (i < lx->len && lx->s[i] == 's') {
        t->re_s = true;
        i++;
    }
    lx->pos = i;
    return 0;
}

/* A hex string body up to the closing brace; comments inside are allowed. */
static int lex_hex(pctx *c, lexer *lx, size_t start)
{
    size_t i = start + 1;
    int line0 = lx->line;
    size_t ls0 = lx->line_start;
    for (;;) {
        if (i >= lx->len)
            return failf(c, lx->file, line0, (int)(start - ls0) + 1, "unterminated hex string");
        char ch = lx->s[i];
        if (ch == '}')
            break;
        if (ch == '/' && i + 1 < lx->len && lx->s[i + 1] == '*') {
            size_t j = i + 2;
            while (j + 1 < lx->len && !(lx->s[j] == '*' && lx->s[j + 1] == '/'))
                j++;
            if (j + 1 >= lx->len)
                return failf(c, lx->file, line0, (int)(start - ls0) + 1, "unterminated comment");
            i = j + 2;
            continue;
        }
        if (ch == '/' && i + 1 < lx->len && lx->s[i + 1] == '/') {
            while (i < lx->len && lx->s[i] != '\n')
                i++;
            continue;
        }
        i++;
    }
    /* the token is positioned at the opening brace */
    int save_line = lx->line;
    size_t save_ls = lx->line_start;
    lx->line = line0;
    lx->line_start = ls0;
    tok *t = tok_push(lx, TK_HEX, start);
    lx->line = save_line;
    lx->line_start = save_ls;
    t->len = i - start - 1;
    t->text = tr_xmalloc(t->len + 1);
    memcpy(t->text, lx->s + start + 1, t->len);
    t->text[t->len] = 0;
    for (size_t j = start; j < i; j++)
        if (lx->s[j] == '\n')
            newline(lx, j);
    lx->pos = i + 1;
    return 0;
}

static int lex_number(pctx *c, lexer *lx, size_t start)
{
    const char *s = lx->s;
    size_t i = start;
    uint64_t v = 0;
    bool overflow = false;
    if (s[i] == '0' && i + 2 < lx->len + 1 && i + 1 < lx->len && (s[i + 1] == 'x' || s[i + 1] == 'X') &&
        i + 2 < lx->len && hexdig((unsigned char)s[i + 2]) >= 0) {
        i += 2;
        while (i < lx->len && hexdig((unsigned char)s[i]) >= 0) {
            if (v >> 60)
                overflow = true;
            v = v * 16 + (uint64_t)hexdig((unsigned char)s[i]);
            i++;
        }
    } else if (s[i] == '0' && i + 2 < lx->len && s[i + 1] == 'o' && s[i + 2] >= '0' && s[i + 2] <= '7') {
        i += 2;
        while (i < lx->len && s[i] >= '0' && s[i] <= '7') {
            if (v >> 61)
                overflow = true;
            v = v * 8 + (uint64_t)(s[i] - '0');
            i++;
        }
    } else {
        while (i < lx->len && s[i] >= '0' && s[i] <= '9') {
            if (v > (UINT64_MAX - 9) / 10)
                overflow = true;
            v = v * 10 + (uint64_t)(s[i] - '0');
            i++;
        }
        if (i + 1 < lx->len && s[i] == '.' && s[i + 1] >= '0' && s[i + 1] <= '9') {
            size_t j = i + 1;
            while (j < lx->len && s[j] >= '0' && s[j] <= '9')
                j++;
            char buf[128];
            size_t n = j - start < sizeof buf - 1 ? j - start : sizeof buf - 1;
            memcpy(buf, s + start, n);
            buf[n] = 0;
            tok *t = tok_push(lx, TK_FLOAT, start);
            t->fval = strtod(buf, NULL);
            lx->pos = j;
            return 0;
        }
        if (i + 1 < lx->len && (s[i] == 'K' || s[i] == 'M') && s[i + 1] == 'B') {
            uint64_t mul = s[i] == 'K' ? 1024 : 1048576;
            if (v > (uint64_t)INT64_MAX / mul)
                overflow = true;
            v *= mul;
            i += 2;
        }
    }
    if (overflow || v > (uint64_t)INT64_MAX)
        return lex_fail(c, lx, start, "integer overflow");
    tok *t = tok_push(lx, TK_INT, start);
    t->ival = (int64_t)v;
    lx->pos = i;
    return 0;
}

static int lex_all(pctx *c, lexer *lx)
{
    const char *s = lx->s;
    while (lx->pos < lx->len) {
        size_t i = lx->pos;
        if (lx->ntok && lx->toks[lx->ntok - 1].end == 0)
            lx->toks[lx->ntok - 1].end = i;
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n') {
            newline(lx, i);
            lx->pos++;
            continue;
        }
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v') {
            lx->pos++;
            continue;
        }
        if (ch == '/' && i + 1 < lx->len && s[i + 1] == '/') {
            while (lx->pos < lx->len && s[lx->pos] != '\n')
                lx->pos++;
            continue;
        }
        if (ch == '/' && i + 1 < lx->len && s[i + 1] == '*') {
            size_t j = i + 2;
            while (j + 1 < lx->len && !(s[j] == '*' && s[j + 1] == '/')) {
                if (s[j] == '\n')
                    newline(lx, j);
                j++;
            }
            if (j + 1 >= lx->len)
                return lex_fail(c, lx, i, "unterminated comment");
            lx->pos = j + 2;
            continue;
        }
        if (ch == '"') {
            if (lex_text(c, lx, i) < 0)
                return -1;
            continue;
        }
        if (ch == '/') {
            if (lex_regex(c, lx, i) < 0)
                return -1;
            continue;
        }
        if (ch == '{' && lx->ntok >= 2 && lx->toks[lx->ntok - 1].kind == P_ASSIGN &&
            lx->toks[lx->ntok - 2].kind == TK_STRID) {
            if (lex_hex(c, lx, i) < 0)
                return -1;
            continue;
        }
        if (ch >= '0' && ch <= '9') {
            if (lex_number(c, lx, i) < 0)
                return -1;
            continue;
        }
        if (is_ident_start(ch)) {
            size_t j = i;
            while (j < lx->len && is_ident_char((unsigned char)s[j]))
                j++;
            size_t n = j - i;
            int kind = TK_IDENT;
            for (size_t k = 0; k < sizeof keywords / sizeof *keywords; k++)
                if (strlen(keywords[k].w) == n && memcmp(keywords[k].w, s + i, n) == 0) {
                    kind = keywords[k].k;
                    break;
                }
            if (n > 128)
                return lex_fail(c, lx, i, "identifier too long");
            tok *t = tok_push(lx, kind, i);
            t->text = tr_xmalloc(n + 1);
            memcpy(t->text, s + i, n);
            t->text[n] = 0;
            t->len = n;
            lx->pos = j;
            continue;
        }
        if (ch == '$' || ch == '#' || ch == '@' || ch == '!') {
            if (ch == '!' && i + 1 < lx->len && s[i + 1] == '=') {
                tok_push(lx, P_NE, i);
                lx->pos += 2;
                continue;
            }
            size_t j = i + 1;
            while (j < lx->len && is_ident_char((unsigned char)s[j]))
                j++;
            int kind = ch == '$' ? TK_STRID : ch == '#' ? TK_STRCOUNT : ch == '@' ? TK_STROFF : TK_STRLEN;
            size_t end = j;
            if (ch == '$' && j < lx->len && s[j] == '*') {
                kind = TK_STRID_WILD;
                end = j + 1;
            }
            tok *t = tok_push(lx, kind, i);
            /* stored with a leading '$' so every form names the same string */
            t->len = j - i;
            t->text = tr_xmalloc(t->len + 1);
            t->text[0] = '$';
            memcpy(t->text + 1, s + i + 1, t->len - 1);
            t->text[t->len] = 0;
            lx->pos = end;
            continue;
        }
        int kind = -1;
        size_t n = 1;
        char nx = i + 1 < lx->len ? s[i + 1] : 0;
        switch (ch) {
        case '(': kind = P_LPAREN; break;
        case ')': kind = P_RPAREN; break;
        case '[': kind = P_LBRACK; break;
        case ']': kind = P_RBRACK; break;
        case '{': kind = P_LBRACE; break;
        case '}': kind = P_RBRACE; break;
        case ':': kind = P_COLON; break;
        case ',': kind = P_COMMA; break;
        case '.':
            kind = nx == '.' ? P_DOTDOT : P_DOT;
            n = nx == '.' ? 2 : 1;
            break;
        case '+': kind = P_PLUS; break;
        case '-': kind = P_MINUS; break;
        case '*': kind = P_STAR; break;
        case '\\': kind = P_BACKSLASH; break;
        case '%': kind = P_PERCENT; break;
        case '&': kind = P_AMP; break;
        case '|': kind = P_PIPE; break;
        case '^': kind = P_CARET; break;
        case '~': kind = P_TILDE; break;
        case '=':
            kind = nx == '=' ? P_EQ : P_ASSIGN;
            n = nx == '=' ? 2 : 1;
            break;
        case '<':
            kind = nx == '<' ? P_SHL : nx == '=' ? P_LE : P_LT;
            n = (nx == '<' || nx == '=') ? 2 : 1;
            break;
        case '>':
            kind = nx == '>' ? P_SHR : nx == '=' ? P_GE : P_GT;
            n = (nx == '>' || nx == '=') ? 2 : 1;
            break;
        }
        if (kind < 0) {
            char m[64];
            if (ch >= 0x20 && ch < 0x7f)
                snprintf(m, sizeof m, "unexpected character '%c'", ch);
            else
                snprintf(m, sizeof m, "unexpected byte 0x%02x", ch);
            return lex_fail(c, lx, i, m);
        }
        tok_push(lx, kind, i);
        lx->pos += n;
    }
    if (lx->ntok && lx->toks[lx->ntok - 1].end == 0)
        lx->toks[lx->ntok - 1].end = lx->pos;
    tok_push(lx, TK_EOF, lx->pos);
    return 0;
}

/* ---- parser helpers ---------------------------------------------------------------- */
static const char *tok_desc(const tok *t, char *buf, size_t bufsz)
{
    switch (t->kind) {
    case TK_EOF: return "end of input";
    case TK_INT: return "a number";
    case TK_FLOAT: return "a floating point number";
    case TK_TEXT: return "a text string";
    case TK_REGEX: return "a regular expression";
    case TK_HEX: return "a hex string";
    default: break;
    }
    if (t->text) {
        snprintf(buf, bufsz, "'%.60s'", t->text);
        return buf;
    }
    static const char *const punct[] = {
        "(", ")", "[", "]", "{", "}", ":", ",", "=", ".", "..", "+", "-", "*", "\\", "%",
        "&", "|", "^", "~", "<<", ">>", "<", "<=", ">", ">=", "==", "!=",
    };
    if (t->kind >= P_LPAREN && t->kind <= P_NE) {
        snprintf(buf, bufsz, "'%s'", punct[t->kind - P_LPAREN]);
        return buf;
    }
    return "token";
}

static tok *cur(parser *p) { return &p->t[p->pos]; }
static tok *peek(parser *p, size_t k)
{
    size_t i = p->pos + k;
    return &p->t[i < p->n ? i : p->n - 1];
}
static bool at(parser *p, int kind) { return cur(p)->kind == kind; }
static tok *advance(parser *p)
{
    tok *t = cur(p);
    if (p->pos + 1 < p->n)
        p->pos++;
    return t;
}

static int err_at(parser *p, const tok *t, const char *fmt, ...) TR_PRINTF(3, 4);
static int err_at(parser *p, const tok *t, const char *fmt, ...)
{
    char m[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    return failf(p->c, p->file, t->line, t->col, "%s", m);
}

static int unexpected(parser *p, const char *expected)
{
    char b[96];
    return err_at(p, cur(p), "syntax error: unexpected %s, expected %s", tok_desc(cur(p), b, sizeof b),
                  expected);
}

static int expect(parser *p, int kind, const char *what)
{
    if (!at(p, kind))
        return unexpected(p, what);
    advance(p);
    return 0;
}

/* ---- expressions ------------------------------------------------------------------- */
static expr *enew(parser *p, expr_kind k, const tok *t)
{
    tr_ruleset *rs = p->c->rs;
    expr *e = tr_xcalloc(1, sizeof *e);
    e->kind = k;
    e->line = t->line;
    e->col = t->col;
    e->sidx = -1;
    e->ridx = -1;
    if (rs->npool == rs->poolcap) {
        rs->poolcap = rs->poolcap ? rs->poolcap * 2 : 256;
        rs->pool = tr_xrealloc(rs->pool, rs->poolcap * sizeof *rs->pool);
    }
    rs->pool[rs->npool++] = e;
    return e;
}

static void eadd(expr *e, expr *c)
{
    e->a = tr_xrealloc(e->a, (e->na + 1) * sizeof *e->a);
    e->a[e->na++] = c;
}

static void expr_free(expr *e)
{
    free(e->text);
    free(e->set);
    free(e->a);
    tr_re_free(e->re);
    free(e);
}

/* "primary" mirrors libyara's grammar: arithmetic and comparisons take only
 * primary expressions; boolean results are not primary (so "1 < 2 < 3" and
 * "(1 < 2) == true" are syntax errors there, and here). */
typedef struct {
    expr *e;
    bool prim;
} pexpr;

static pexpr parse_expr(parser *p, int minprec);

static bool is_numeric(val_type t) { return t == T_INT || t == T_FLOAT || t == T_UNKNOWN; }
static bool is_intish(val_type t) { return t == T_INT || t == T_UNKNOWN; }
static bool is_strish(val_type t) { return t == T_STR || t == T_UNKNOWN; }

static int find_string(parser *p, const char *id)
{
    for (size_t i = 0; i < p->rule->nstrings; i++)
        if (strcmp(p->rule->strings[i].id, id) == 0)
            return (int)i;
    return -1;
}

/* Resolves $a / #a / @a / !a, or the anonymous form inside for..of. */
static int resolve_string(parser *p, const tok *t, int *sidx)
{
    if (strcmp(t->text, "$") == 0) {
        if (!p->in_for_of)
            return err_at(p, t, "wrong use of anonymous string");
        *sidx = -1;
        return 0;
    }
    int i = find_string(p, t->text);
    if (i < 0)
        return err_at(p, t, "undefined string \"%s\"", t->text);
    p->rule->strings[i].referenced = true;
    *sidx = i;
    return 0;
}

static int parse_range(parser *p, expr **out)
{
    tok *t = cur(p);
    if (expect(p, P_LPAREN, "'(' starting a range") < 0)
        return -1;
    pexpr lo = parse_expr(p, 6);
    if (!lo.e)
        return -1;
    if (expect(p, P_DOTDOT, "'..'") < 0)
        return -1;
    pexpr hi = parse_expr(p, 6);
    if (!hi.e)
        return -1;
    if (expect(p, P_RPAREN, "')' closing the range") < 0)
        return -1;
    if (!lo.prim || !hi.prim)
        return err_at(p, t, "syntax error: range bounds must be integer expressions");
    if (!is_intish(lo.e->type) || !is_intish(hi.e->type))
        return err_at(p, t, "wrong type for range");
    if (lo.e->is_const && hi.e->is_const && lo.e->ival > hi.e->ival)
        return err_at(p, t, "invalid range");
    expr *r = enew(p, E_RANGE, t);
    eadd(r, lo.e);
    eadd(r, hi.e);
    *out = r;
    return 0;
}

static bool prefix_match(const char *name, const char *prefix)
{
    return strncmp(name, prefix, strlen(prefix)) == 0;
}

/* them | ( $a, $b*, ... ) | ( rule, prefix*, ... ). */
static int parse_set(parser *p, expr *e, bool strings_only)
{
    tok *t0 = cur(p);
    tr_rule *r = p->rule;
    if (at(p, K_THEM)) {
        advance(p);
        if (r->nstrings == 0)
            return err_at(p, t0, "undefined string \"$*\"");
        for (size_t i = 0; i < r->nstrings; i++) {
            e->set = tr_xrealloc(e->set, (e->nset + 1) * sizeof *e->set);
            e->set[e->nset++] = (int)i;
            r->strings[i].referenced = true;
        }
        return 0;
    }
    if (expect(p, P_LPAREN, "'them' or '(' starting a set") < 0)
        return -1;
    bool rules = at(p, TK_IDENT);
    if (rules && strings_only)
        return unexpected(p, "a string identifier");
    e->set_is_rules = rules;
    for (;;) {
        tok *t = cur(p);
        if (!rules && (t->kind == TK_STRID || t->kind == TK_STRID_WILD)) {
            advance(p);
            bool wild = t->kind == TK_STRID_WILD;
            size_t hits = 0;
            for (size_t i = 0; i < r->nstrings; i++) {
                bool m = wild ? prefix_match(r->strings[i].id, t->text)
                              : strcmp(r->strings[i].id, t->text) == 0;
                if (!m)
                    continue;
                hits++;
                r->strings[i].referenced = true;
                e->set = tr_xrealloc(e->set, (e->nset + 1) * sizeof *e->set);
                e->set[e->nset++] = (int)i;
            }
            if (!hits || (!wild && strcmp(t->text, "$") == 0))
                return err_at(p, t, "undefined string \"%s%s\"", t->text, wild ? "*" : "");
        } else if (rules && t->kind == TK_IDENT) {
            advance(p);
            bool wild = at(p, P_STAR);
            if (wild)
                advance(p);
            size_t hits = 0;
            tr_ruleset *rs = p->c->rs;
            for (size_t i = 0; i <= rs->nrules; i++) {
                bool m = wild ? prefix_match(rs->rules[i].name, t->text)
                              : strcmp(rs->rules[i].name, t->text) == 0;
                if (!m)
                    continue;
                hits++;
                e->set = tr_xrealloc(e->set, (e->nset + 1) * sizeof *e->set);
                e->set[e->nset++] = (int)i;
            }
            if (!hits)
                return err_at(p, t, "undefined identifier \"%s%s\"", t->text, wild ? "*" : "");
            if (wild) {
                p->c->wild = tr_xrealloc(p->c->wild, (p->c->nwild + 1) * sizeof *p->c->wild);
                p->c->wild[p->c->nwild++] = tr_xstrdup(t->text);
            }
        } else {
            return unexpected(p, rules ? "a rule name" : "a string identifier");
        }
        if (at(p, P_COMMA)) {
            advance(p);
            continue;
        }
        return expect(p, P_RPAREN, "',' or ')' closing the set");
    }
}

/* The tests module's containers matter to libyara's loop arity checks. */
static int tests_container(const char *member)
{
    static const char *const arrays[] = {"integer_array", "string_array", "struct_array"};
    static const char *const dicts[] = {"integer_dict", "string_dict", "struct_dict"};
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(member, arrays[i]) == 0)
            return 1;
        if (strcmp(member, dicts[i]) == 0)
            return 2;
    }
    return 0;
}

static int parse_identifier(parser *p, pexpr *out)
{
    tok *t = advance(p);
    expr *e = NULL;
    for (size_t i = p->nvars; i-- > 0;)
        if (strcmp(p->vars[i], t->text) == 0) {
            e = enew(p, E_VAR, t);
            e->type = p->vtypes[i];
            e->text = tr_xstrdup(t->text);
            break;
        }
    if (!e) {
        tr_ruleset *rs = p->c->rs;
        /* libyara declares a rule before parsing its condition: it can name itself. */
        for (size_t i = 0; i <= rs->nrules && !e; i++)
            if (strcmp(rs->rules[i].name, t->text) == 0) {
                e = enew(p, E_RULE, t);
                e->ridx = (int)i;
                e->type = T_BOOL;
            }
        for (size_t i = 0; i < p->c->nexternals && !e; i++)
            if (strcmp(p->c->externals[i], t->text) == 0) {
                e = enew(p, E_MODULE, t);
                e->type = T_UNKNOWN;
                e->text = tr_xstrdup(t->text);
                out->e = e;
                out->prim = true;
                return 0;
            }
        for (size_t i = 0; i < rs->nimports && !e; i++)
            if (strcmp(rs->imports[i], t->text) == 0) {
                e = enew(p, E_MODULE, t);
                e->type = T_UNKNOWN;
                e->text = tr_xstrdup(t->text);
            }
    }
    if (!e)
        return err_at(p, t, "undefined identifier \"%s\"", t->text);
    /* loop variables over module containers are structures we do not model */
    bool is_module = e->kind == E_MODULE || (e->kind == E_VAR && e->type == T_UNKNOWN);
    for (;;) {
        if (at(p, P_DOT)) {
            tok *d = advance(p);
            if (!at(p, TK_IDENT))
                return unexpected(p, "an identifier after '.'");
            tok *m = advance(p);
            if (!is_module)
                return err_at(p, d, "invalid field name \"%s\"", m->text);
            expr *x = enew(p, E_MEMBER, m);
            x->type = T_UNKNOWN;
            x->text = tr_xstrdup(m->text);
            eadd(x, e);
            e = x;
        } else if (at(p, P_LBRACK)) {
            tok *b = advance(p);
            if (!is_module)
                return err_at(p, b, "'%s' is not an array or dictionary", t->text);
            pexpr ix = parse_expr(p, 6);
            if (!ix.e)
                return -1;
            if (!ix.prim)
                return err_at(p, b, "syntax error: invalid index");
            if (expect(p, P_RBRACK, "']'") < 0)
                return -1;
            expr *x = enew(p, E_INDEX, b);
            x->type = T_UNKNOWN;
            eadd(x, e);
            eadd(x, ix.e);
            e = x;
        } else if (at(p, P_LPAREN)) {
            tok *b = advance(p);
            if (!is_module)
                return err_at(p, b, "'%s' is not a function", t->text);
            expr *x = enew(p, E_CALL, b);
            x->type = T_UNKNOWN;
            eadd(x, e);
            if (!at(p, P_RPAREN)) {
                for (;;) {
                    if (at(p, TK_REGEX)) {
                        /* module functions take regexps, e.g. cuckoo.sync.mutex(/x/) */
                        tok *rt = advance(p);
                        char m[256];
                        expr *re = enew(p, E_REGEX, rt);
                        re->type = T_REGEX;
                        re->re = tr_re_parse(rt->text, rt->len, rt->re_i, NULL, m, sizeof m);
                        if (!re->re)
                            return err_at(p, rt, "invalid regular expression: %s", m);
                        re->text = tr_xstrdup(rt->text);
                        eadd(x, re);
                    } else {
                        pexpr a = parse_expr(p, 0);
                        if (!a.e)
                            return -1;
                        eadd(x, a.e);
                    }
                    if (at(p, P_COMMA)) {
                        advance(p);
                        continue;
                    }
                    break;
                }
            }
            if (expect(p, P_RPAREN, "')' closing the arguments") < 0)
                return -1;
            e = x;
        } else {
            break;
        }
    }
    out->e = e;
    out->prim = true;
    return 0;
}

static int parse_for(parser *p, pexpr *out)
{
    tok *t = advance(p);   /* 'for' */
    expr *e = NULL;
    quant_kind q = Q_EXPR;
    expr *qe = NULL;
    if (at(p, K_ALL) || at(p, K_ANY) || at(p, K_NONE)) {
        q = at(p, K_ALL) ? Q_ALL : at(p, K_ANY) ? Q_ANY : Q_NONE;
        advance(p);
    } else {
        pexpr x = parse_expr(p, 6);
        if (!x.e)
            return -1;
        if (!x.prim || !is_intish(x.e->type))
            return err_at(p, t, "syntax error: invalid quantifier");
        qe = x.e;
    }
    if (at(p, K_OF)) {
        advance(p);
        e = enew(p, E_FOR_OF, t);
        e->quant = q;
        if (qe)
            eadd(e, qe);
        else
            eadd(e, NULL);
        if (parse_set(p, e, true) < 0)
            return -1;
        if (expect(p, P_COLON, "':'") < 0 || expect(p, P_LPAREN, "'('") < 0)
            return -1;
        p->in_for_of++;
        pexpr body = parse_expr(p, 0);
        p->in_for_of--;
        if (!body.e)
            return -1;
        if (expect(p, P_RPAREN, "')'") < 0)
            return -1;
        eadd(e, body.e);
        e->type = T_BOOL;
        out->e = e;
        out->prim = false;
        return 0;
    }
    if (!at(p, TK_IDENT))
        return unexpected(p, "'of' or a loop variable");
    size_t base = p->nvars;
    size_t nv = 0;
    for (;;) {
        if (!at(p, TK_IDENT))
            return unexpected(p, "a loop variable");
        tok *v = advance(p);
        if (p->nvars >= MAX_LOOP_VARS)
            return err_at(p, v, "too many loop variables");
        for (size_t i = 0; i < p->nvars; i++)
            if (strcmp(p->vars[i], v->text) == 0)
                return err_at(p, v, "duplicated loop identifier \"%s\"", v->text);
        tr_ruleset *rs = p->c->rs;
        for (size_t i = 0; i < rs->nrules; i++)
            if (strcmp(rs->rules[i].name, v->text) == 0)
                return err_at(p, v, "duplicated identifier \"%s\"", v->text);
        p->vars[p->nvars] = v->text;
        p->vtypes[p->nvars] = T_UNKNOWN;
        p->nvars++;
        nv++;
        if (at(p, P_COMMA)) {
            advance(p);
            continue;
        }
        break;
    }
    tok *in = cur(p);
    if (expect(p, K_IN, "'in'") < 0)
        return -1;
    e = enew(p, E_FOR_IN, t);
    e->quant = q;
    e->nvars = nv;
    eadd(e, qe);
    expr *iter = NULL;
    val_type vt = T_UNKNOWN;
    if (at(p, P_LPAREN)) {
        tok *lp = advance(p);
        /* the variables are not in scope inside their own iterator */
        size_t saved = p->nvars;
        p->nvars = base;
        pexpr first = parse_expr(p, 6);
        if (!first.e)
            return -1;
        if (!first.prim)
            return err_at(p, lp, "syntax error in iterator");
        if (at(p, P_DOTDOT)) {
            advance(p);
            pexpr hi = parse_expr(p, 6);
            if (!hi.e)
                return -1;
            if (!hi.prim || !is_intish(first.e->type) || !is_intish(hi.e->type))
                return err_at(p, lp, "wrong type in range");
            if (expect(p, P_RPAREN, "')' closing the range") < 0)
                return -1;
            iter = enew(p, E_RANGE, lp);
            eadd(iter, first.e);
            eadd(iter, hi.e);
            vt = T_INT;
        } else {
            iter = enew(p, E_ENUM, lp);
            eadd(iter, first.e);
            vt = first.e->type;
            while (at(p, P_COMMA)) {
                advance(p);
                pexpr x = parse_expr(p, 6);
                if (!x.e)
                    return -1;
                if (!x.prim)
                    return err_at(p, lp, "syntax error in enumeration");
                if (x.e->type != vt && x.e->type != T_UNKNOWN && vt != T_UNKNOWN)
                    return err_at(p, lp, "type mismatch in enumeration");
                eadd(iter, x.e);
            }
            if (expect(p, P_RPAREN, "')' closing the enumeration") < 0)
                return -1;
            if (vt != T_INT && vt != T_STR && vt != T_UNKNOWN)
                return err_at(p, lp, "wrong type in enumeration");
        }
        p->nvars = saved;
        if (nv != 1)
            return err_at(p, in, "syntax error: expected 1 loop variable for this iterator");
    } else if (at(p, TK_IDENT)) {
        size_t saved = p->nvars;
        p->nvars = base;
        tok *it = cur(p);
        pexpr x;
        if (parse_identifier(p, &x) < 0)
            return -1;
        p->nvars = saved;
        iter = x.e;
        if (iter->kind != E_MODULE && iter->kind != E_MEMBER && iter->kind != E_INDEX &&
            iter->kind != E_CALL)
            return err_at(p, it, "wrong type: not an iterable object");
        /* libyara knows every module's containers; we know the tests module's. */
        if (iter->kind == E_MEMBER && iter->na == 1 && iter->a[0]->kind == E_MODULE &&
            strcmp(iter->a[0]->text, "tests") == 0) {
            int kind = tests_container(iter->text);
            if ((kind == 1 && nv != 1) || (kind == 2 && nv != 2))
                return err_at(p, in, "syntax error: wrong number of loop variables");
            if (strcmp(iter->text, "integer_array") == 0)
                vt = T_INT;
            else if (strcmp(iter->text, "string_array") == 0)
                vt = T_STR;
        } else if (nv > 2) {
            return err_at(p, in, "syntax error: too many loop variables");
        }
    } else {
        return unexpected(p, "an iterator");
    }
    if (nv == 1)
        p->vtypes[base] = vt;
    eadd(e, iter);
    if (expect(p, P_COLON, "':'") < 0 || expect(p, P_LPAREN, "'('") < 0)
        return -1;
    pexpr body = parse_expr(p, 0);
    if (!body.e)
        return -1;
    if (expect(p, P_RPAREN, "')'") < 0)
        return -1;
    p->nvars = base;
    eadd(e, body.e);
    e->type = T_BOOL;
    out->e = e;
    out->prim = false;
    return 0;
}

static int parse_of_tail(parser *p, const tok *t, quant_kind q, expr *qe, bool pct, pexpr *out)
{
    advance(p);   /* 'of' */
    expr *e = enew(p, pct ? E_PCT_OF : E_OF, t);
    e->quant = q;
    eadd(e, qe);
    if (parse_set(p, e, false) < 0)
        return -1;
    if (qe && !is_intish(qe->type))
        return err_at(p, t, "wrong type for quantifier");
    if (pct && qe->is_const && (qe->ival < 1 || qe->ival > 100))
        return err_at(p, t, "invalid percentage");
    if (at(p, K_IN)) {
        if (e->set_is_rules || pct)
            return unexpected(p, "end of expression");
        advance(p);
        expr *r;
        if (parse_range(p, &r) < 0)
            return -1;
        eadd(e, r);
    }
    e->type = T_BOOL;
    out->e = e;
    out->prim = false;
    return 0;
}

static int parse_nud(parser *p, pexpr *out)
{
    tok *t = cur(p);
    out->prim = true;
    switch (t->kind) {
    case K_TRUE:
    case K_FALSE:
        advance(p);
        out->e = enew(p, t->kind == K_TRUE ? E_TRUE : E_FALSE, t);
        out->e->type = T_BOOL;
        out->prim = false;
        return 0;
    case K_NOT:
    case K_DEFINED: {
        advance(p);
        if (t->kind == K_DEFINED)
            p->in_defined++;
        pexpr x = parse_expr(p, 3);
        if (t->kind == K_DEFINED)
            p->in_defined--;
        if (!x.e)
            return -1;
        out->e = enew(p, t->kind == K_NOT ? E_NOT : E_DEFINED, t);
        eadd(out->e, x.e);
        out->e->type = T_BOOL;
        out->prim = false;
        return 0;
    }
    case P_MINUS:
    case P_TILDE: {
        advance(p);
        pexpr x = parse_expr(p, 12);
        if (!x.e)
            return -1;
        if (!x.prim)
            return err_at(p, t, "syntax error: operand of '%s' is not an arithmetic expression",
                          t->kind == P_MINUS ? "-" : "~");
        bool neg = t->kind == P_MINUS;
        if (neg ? !is_numeric(x.e->type) : !is_intish(x.e->type))
            return err_at(p, t, "wrong type for '%s'", neg ? "-" : "~");
        expr *e = enew(p, neg ? E_NEG : E_BITNOT, t);
        eadd(e, x.e);
        e->type = x.e->type;
        if (x.e->is_const) {
            if (neg && x.e->ival == INT64_MIN)
                return err_at(p, t, "integer overflow");
            e->is_const = true;
            e->ival = neg ? -x.e->ival : ~x.e->ival;
        }
        out->e = e;
        return 0;
    }
    case P_LPAREN: {
        advance(p);
        pexpr x = parse_expr(p, 0);
        if (!x.e)
            return -1;
        if (expect(p, P_RPAREN, "')'") < 0)
            return -1;
        *out = x;
        return 0;
    }
    case TK_INT:
        advance(p);
        out->e = enew(p, E_INT, t);
        out->e->type = T_INT;
        out->e->is_const = true;
        out->e->ival = t->ival;
        return 0;
    case TK_FLOAT:
        advance(p);
        out->e = enew(p, E_FLOAT, t);
        out->e->type = T_FLOAT;
        out->e->fval = t->fval;
        return 0;
    case TK_TEXT:
        advance(p);
        out->e = enew(p, E_TEXT, t);
        out->e->type = T_STR;
        out->e->text = tr_xmalloc(t->len + 1);
        memcpy(out->e->text, t->text, t->len + 1);
        out->e->len = t->len;
        return 0;
    case K_FILESIZE:
    case K_ENTRYPOINT:
        advance(p);
        out->e = enew(p, t->kind == K_FILESIZE ? E_FILESIZE : E_ENTRYPOINT, t);
        out->e->type = T_INT;
        return 0;
    case K_INTFUNC: {
        advance(p);
        if (expect(p, P_LPAREN, "'('") < 0)
            return -1;
        pexpr x = parse_expr(p, 0);
        if (!x.e)
            return -1;
        if (expect(p, P_RPAREN, "')'") < 0)
            return -1;
        if (!x.prim)
            return err_at(p, t, "syntax error: invalid argument of %s", t->text);
        if (!is_intish(x.e->type))
            return err_at(p, t, "wrong type for %s argument", t->text);
        out->e = enew(p, E_INTFUNC, t);
        out->e->text = tr_xstrdup(t->text);
        out->e->type = T_INT;
        eadd(out->e, x.e);
        return 0;
    }
    case TK_STRID: {
        advance(p);
        int sidx;
        if (resolve_string(p, t, &sidx) < 0)
            return -1;
        expr *e;
        if (at(p, K_AT)) {
            tok *a = advance(p);
            pexpr x = parse_expr(p, 6);
            if (!x.e)
                return -1;
            if (!x.prim || !is_intish(x.e->type))
                return err_at(p, a, "wrong type for 'at'");
            e = enew(p, E_STR_AT, t);
            eadd(e, x.e);
        } else if (at(p, K_IN)) {
            advance(p);
            expr *r;
            if (parse_range(p, &r) < 0)
                return -1;
            e = enew(p, E_STR_IN, t);
            eadd(e, r);
        } else {
            e = enew(p, E_STR, t);
        }
        e->sidx = sidx;
        e->type = T_BOOL;
        out->e = e;
        out->prim = false;
        return 0;
    }
    case TK_STRCOUNT: {
        advance(p);
        int sidx;
        if (resolve_string(p, t, &sidx) < 0)
            return -1;
        expr *e;
        if (at(p, K_IN)) {
            advance(p);
            expr *r;
            if (parse_range(p, &r) < 0)
                return -1;
            e = enew(p, E_COUNT_IN, t);
            eadd(e, r);
        } else {
            e = enew(p, E_COUNT, t);
        }
        e->sidx = sidx;
        e->type = T_INT;
        out->e = e;
        return 0;
    }
    case TK_STROFF:
    case TK_STRLEN: {
        advance(p);
        int sidx;
        if (resolve_string(p, t, &sidx) < 0)
            return -1;
        expr *e = enew(p, t->kind == TK_STROFF ? E_OFFSET : E_LENGTH, t);
        e->sidx = sidx;
        e->type = T_INT;
        if (at(p, P_LBRACK)) {
            tok *b = advance(p);
            pexpr x = parse_expr(p, 6);
            if (!x.e)
                return -1;
            if (!x.prim || !is_intish(x.e->type))
                return err_at(p, b, "wrong type for index");
            if (expect(p, P_RBRACK, "']'") < 0)
                return -1;
            eadd(e, x.e);
        }
        out->e = e;
        return 0;
    }
    case TK_IDENT:
        return parse_identifier(p, out);
    case K_ALL:
    case K_ANY:
    case K_NONE: {
        advance(p);
        if (!at(p, K_OF))
            return unexpected(p, "'of'");
        quant_kind q = t->kind == K_ALL ? Q_ALL : t->kind == K_ANY ? Q_ANY : Q_NONE;
        return parse_of_tail(p, t, q, NULL, false, out);
    }
    case K_FOR:
        return parse_for(p, out);
    default:
        return unexpected(p, "an expression");
    }
}

typedef struct {
    int tk;
    int prec;
    expr_kind kind;
} binop;

static const binop binops[] = {
    {K_OR, 1, E_OR}, {K_AND, 2, E_AND},
    {P_EQ, 4, E_EQ}, {P_NE, 4, E_NE}, {K_CONTAINS, 4, E_CONTAINS},
    {K_ICONTAINS, 4, E_ICONTAINS}, {K_STARTSWITH, 4, E_STARTSWITH},
    {K_ISTARTSWITH, 4, E_ISTARTSWITH}, {K_ENDSWITH, 4, E_ENDSWITH},
    {K_IENDSWITH, 4, E_IENDSWITH}, {K_IEQUALS, 4, E_IEQUALS}, {K_MATCHES, 4, E_MATCHES},
    {P_LT, 5, E_LT}, {P_LE, 5, E_LE}, {P_GT, 5, E_GT}, {P_GE, 5, E_GE},
    {P_PIPE, 6, E_BOR}, {P_CARET, 7, E_BXOR}, {P_AMP, 8, E_BAND},
    {P_SHL, 9, E_SHL}, {P_SHR, 9, E_SHR},
    {P_PLUS, 10, E_ADD}, {P_MINUS, 10, E_SUB},
    {P_STAR, 11, E_MUL}, {P_BACKSLASH, 11, E_DIV}, {P_PERCENT, 11, E_MOD},
};

static const binop *find_binop(int tk)
{
    for (size_t i = 0; i < sizeof binops / sizeof *binops; i++)
        if (binops[i].tk == tk)
            return &binops[i];
    return NULL;
}

static bool add_ovf(int64_t a, int64_t b, int64_t *r) { return __builtin_add_overflow(a, b, r); }
static bool sub_ovf(int64_t a, int64_t b, int64_t *r) { return __builtin_sub_overflow(a, b, r); }
static bool mul_ovf(int64_t a, int64_t b, int64_t *r) { return __builtin_mul_overflow(a, b, r); }

/* ---- integer ranges: which divisions libyara 4.2.3 can die on ----------------
 * x \ y and x % y raise SIGFPE in libyara 4.2.3 when x is INT64_MIN and y is
 * -1 at scan time (no check, plain C division). A sound interval for every
 * integer expression says when that can happen; anything not modelled is the
 * full range, so the check can only refuse too much, never too little. */
typedef struct irange {
    int64_t lo, hi;
} irange;

static const irange IR_FULL = {INT64_MIN, INT64_MAX};

static irange ir_of(const expr *e, int depth);

static irange ir_bin(expr_kind k, irange a, irange b)
{
    int64_t x, y, z, w;
    switch (k) {
    case E_ADD:
        if (add_ovf(a.lo, b.lo, &x) || add_ovf(a.hi, b.hi, &y))
            return IR_FULL;
        return (irange){x, y};
    case E_SUB:
        if (sub_ovf(a.lo, b.hi, &x) || sub_ovf(a.hi, b.lo, &y))
            return IR_FULL;
        return (irange){x, y};
    case E_MUL:
        if (mul_ovf(a.lo, b.lo, &x) || mul_ovf(a.lo, b.hi, &y) || mul_ovf(a.hi, b.lo, &z) ||
            mul_ovf(a.hi, b.hi, &w))
            return IR_FULL;
        return (irange){x < y ? (x < z ? (x < w ? x : w) : (z < w ? z : w))
                              : (y < z ? (y < w ? y : w) : (z < w ? z : w)),
                        x > y ? (x > z ? (x > w ? x : w) : (z > w ? z : w))
                              : (y > z ? (y > w ? y : w) : (z > w ? z : w))};
    case E_DIV:
        /* A positive divisor only shrinks magnitudes, keeping the sign. */
        if (b.lo >= 1) {
            int64_t lo = a.lo < 0 ? a.lo / b.lo : a.lo / b.hi;
            int64_t hi = a.hi < 0 ? a.hi / b.hi : a.hi / b.lo;
            return (irange){lo, hi};
        }
        return IR_FULL;
    case E_MOD: {
        /* |x % y| < |y|, with the sign of x. */
        if (b.lo == INT64_MIN)
            return IR_FULL;
        int64_t m = -b.lo > b.hi ? -b.lo : b.hi;
        if (m <= 0)
            return IR_FULL;
        return (irange){a.lo >= 0 ? 0 : -(m - 1), a.hi <= 0 ? 0 : m - 1};
    }
    case E_SHR:
        if (a.lo >= 0)
            return (irange){0, a.hi};
        return IR_FULL;
    case E_BAND:
        if (a.lo >= 0 && b.lo >= 0)
            return (irange){0, a.hi < b.hi ? a.hi : b.hi};
        if (a.lo >= 0)
            return (irange){0, a.hi};
        if (b.lo >= 0)
            return (irange){0, b.hi};
        return IR_FULL;
    default:
        return IR_FULL;
    }
}

static irange ir_of(const expr *e, int depth)
{
    if (e->is_const)
        return (irange){e->ival, e->ival};
    if (e->type != T_INT || depth > MAX_EXPR_DEPTH)
        return IR_FULL;
    switch (e->kind) {
    case E_FILESIZE:
    case E_ENTRYPOINT:
    case E_COUNT:
    case E_COUNT_IN:
    case E_OFFSET:
    case E_LENGTH:
        /* Sizes, counts and offsets within a scanned file: no file is 2^53 bytes. */
        return (irange){0, (int64_t)1 << 53};
    case E_INTFUNC: {
        const char *f = e->text ? e->text : "";
        int bits = strstr(f, "32") ? 32 : strstr(f, "16") ? 16 : 8;
        if (f[0] == 'u')
            return (irange){0, (int64_t)((1ull << bits) - 1)};
        return (irange){-(int64_t)(1ull << (bits - 1)), (int64_t)((1ull << (bits - 1)) - 1)};
    }
    case E_NEG: {
        irange a = ir_of(e->a[0], depth + 1);
        if (a.lo == INT64_MIN)
            return IR_FULL;
        return (irange){-a.hi, -a.lo};
    }
    case E_BITNOT: {
        irange a = ir_of(e->a[0], depth + 1);
        return (irange){~a.hi, ~a.lo};
    }
    case E_ADD: case E_SUB: case E_MUL: case E_DIV: case E_MOD: case E_SHR: case E_BAND:
        if (e->na != 2)
            return IR_FULL;
        return ir_bin(e->kind, ir_of(e->a[0], depth + 1), ir_of(e->a[1], depth + 1));
    default:
        return IR_FULL;
    }
}

/* Checks a binary arithmetic node, folds constants, rejects crashers. */
static int arith(parser *p, const tok *t, expr *e, expr *l, expr *r)
{
    expr_kind k = e->kind;
    bool int_only = k == E_MOD || k == E_SHL || k == E_SHR || k == E_BAND || k == E_BOR || k == E_BXOR;
    if (int_only ? !(is_intish(l->type) && is_intish(r->type))
                 : !(is_numeric(l->type) && is_numeric(r->type)))
        return err_at(p, t, "wrong type for arithmetic operator");
    if (l->type == T_UNKNOWN || r->type == T_UNKNOWN)
        e->type = T_UNKNOWN;
    else if (l->type == T_FLOAT || r->type == T_FLOAT)
        e->type = T_FLOAT;
    else
        e->type = T_INT;
    if ((k == E_DIV || k == E_MOD) && r->type != T_FLOAT) {
        if (r->is_const && r->ival == 0)
            return err_at(p, t, "division by zero");
        if (r->is_const && r->ival == -1 && l->type != T_FLOAT &&
            !(l->is_const && l->ival != INT64_MIN))
            return err_at(p, t, "division by -1 of a value that may be INT64_MIN crashes libyara "
                                "4.2.3 (SIGFPE); rewrite as a negation");
        if (!r->is_const && p->in_defined)
            return err_at(p, t, "division by a non-constant inside 'defined' crashes libyara 4.2.3 "
                                "(SIGFPE); not accepted");
        if (l->type != T_FLOAT && !r->is_const) {
            irange x = ir_of(l, 0), y = ir_of(r, 0);
            if (x.lo == INT64_MIN && y.lo <= -1 && y.hi >= -1)
                return err_at(p, t, "division of a value that may be INT64_MIN by a value that "
                                    "may be -1 crashes libyara 4.2.3 (SIGFPE); bound the "
                                    "operands");
        }
    }
    if ((k == E_SHL || k == E_SHR) && r->is_const && r->ival < 0)
        return err_at(p, t, "invalid operand: negative shift");
    if (!(l->is_const && r->is_const))
        return 0;
    int64_t a = l->ival, b = r->ival, v = 0;
    bool ovf = false;
    switch (k) {
    case E_ADD: ovf = add_ovf(a, b, &v); break;
    case E_SUB: ovf = sub_ovf(a, b, &v); break;
    case E_MUL: ovf = mul_ovf(a, b, &v) || v == INT64_MIN; break;   /* libyara's check is that strict */
    case E_DIV: v = a / b; break;
    case E_MOD: v = a % b; break;
    case E_SHL: v = b >= 64 ? 0 : (int64_t)((uint64_t)a << b); break;
    case E_SHR: v = b >= 64 ? 0 : a >> b; break;
    case E_BAND: v = a & b; break;
    case E_BOR: v = a | b; break;
    case E_BXOR: v = a ^ b; break;
    default: return 0;
    }
    if (ovf)
        return err_at(p, t, "integer overflow");
    e->is_const = true;
    e->ival = v;
    return 0;
}

static pexpr fail_pexpr(void)
{
    pexpr x = {NULL, false};
    return x;
}

static pexpr parse_expr(parser *p, int minprec)
{
    if (++p->depth > MAX_EXPR_DEPTH) {
        err_at(p, cur(p), "expression nested too deeply");
        p->depth--;
        return fail_pexpr();
    }
    pexpr lhs;
    if (parse_nud(p, &lhs) < 0) {
        p->depth--;
        return fail_pexpr();
    }
    for (;;) {
        tok *t = cur(p);
        /* "N of set" and "N% of set" start a boolean expression. */
        if (t->kind == K_OF && lhs.prim && minprec <= 4) {
            if (!is_intish(lhs.e->type)) {
                err_at(p, t, "wrong type for quantifier");
                break;
            }
            if (parse_of_tail(p, t, Q_EXPR, lhs.e, false, &lhs) < 0)
                break;
            continue;
        }
        if (t->kind == P_PERCENT && peek(p, 1)->kind == K_OF) {
            /* libyara's LALR parser reduces under '*' '\\' '%' and unary
             * operators (so "1050%100% of" works) but shifts under weaker
             * ones (so "1 + 50% of" is a syntax error). */
            if (minprec >= 12) {
                p->depth--;
                return lhs;
            }
            if (!lhs.prim || minprec > 4) {
                unexpected(p, "an expression");
                break;
            }
            advance(p);
            if (parse_of_tail(p, t, Q_EXPR, lhs.e, true, &lhs) < 0)
                break;
            continue;
        }
        const binop *op = find_binop(t->kind);
        if (!op || op->prec < minprec) {
            p->depth--;
            return lhs;
        }
        advance(p);
        expr *e = enew(p, op->kind, t);
        if (op->kind == E_AND || op->kind == E_OR) {
            pexpr rhs = parse_expr(p, op->prec + 1);
            if (!rhs.e)
                break;
            eadd(e, lhs.e);
            eadd(e, rhs.e);
            e->type = T_BOOL;
            lhs.e = e;
            lhs.prim = false;
            continue;
        }
        if (!lhs.prim) {
            err_at(p, t, "syntax error: left operand of %s is not a primary expression",
                   tok_desc(t, (char[64]){0}, 64));
            break;
        }
        if (op->kind == E_MATCHES) {
            if (!at(p, TK_REGEX)) {
                unexpected(p, "a regular expression");
                break;
            }
            tok *rt = advance(p);
            char m[256];
            e->re = tr_re_parse(rt->text, rt->len, rt->re_i, NULL, m, sizeof m);
            if (!e->re) {
                err_at(p, rt, "invalid regular expression: %s", m);
                break;
            }
            if (!is_strish(lhs.e->type)) {
                err_at(p, t, "wrong type for 'matches'");
                break;
            }
            e->text = tr_xstrdup(rt->text);
            eadd(e, lhs.e);
            e->type = T_BOOL;
            lhs.e = e;
            lhs.prim = false;
            continue;
        }
        pexpr rhs = parse_expr(p, op->prec + 1);
        if (!rhs.e)
            break;
        if (!rhs.prim) {
            err_at(p, t, "syntax error: right operand of %s is not a primary expression",
                   tok_desc(t, (char[64]){0}, 64));
            break;
        }
        eadd(e, lhs.e);
        eadd(e, rhs.e);
        if (op->prec == 4 || op->prec == 5) {
            val_type a = lhs.e->type, b = rhs.e->type;
            bool str_op = op->kind >= E_CONTAINS && op->kind <= E_IEQUALS;
            if (str_op) {
                if (!is_strish(a) || !is_strish(b)) {
                    err_at(p, t, "wrong type for string operator");
                    break;
                }
            } else if (!(a == T_UNKNOWN || b == T_UNKNOWN || (a == T_STR && b == T_STR) ||
                         ((a == T_INT || a == T_FLOAT) && (b == T_INT || b == T_FLOAT)))) {
                err_at(p, t, "type mismatch");
                break;
            }
            e->type = T_BOOL;
            lhs.e = e;
            lhs.prim = false;
            continue;
        }
        if (arith(p, t, e, lhs.e, rhs.e) < 0)
            break;
        lhs.e = e;
        lhs.prim = true;
    }
    p->depth--;
    return fail_pexpr();
}

/* ---- hex strings ------------------------------------------------------------------------- */
typedef struct hexp {
    const char *s;
    size_t len, pos;
    char msg[160];
    int depth;
} hexp;

void tr_hex_free(hex_seq *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        if (s->items[i].kind == HEX_ALT) {
            for (size_t j = 0; j < s->items[i].nalt; j++)
                tr_hex_free(s->items[i].alt[j]);
            free(s->items[i].alt);
        }
    free(s->items);
    free(s);
}

static void hex_skip(hexp *h)
{
    while (h->pos < h->len) {
        char ch = h->s[h->pos];
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
            h->pos++;
        } else if (ch == '/' && h->pos + 1 < h->len && h->s[h->pos + 1] == '*') {
            size_t j = h->pos + 2;
            while (j + 1 < h->len && !(h->s[j] == '*' && h->s[j + 1] == '/'))
                j++;
            h->pos = j + 2;
        } else if (ch == '/' && h->pos + 1 < h->len && h->s[h->pos + 1] == '/') {
            while (h->pos < h->len && h->s[h->pos] != '\n')
                h->pos++;
        } else {
            break;
        }
    }
}

static hex_item *hex_push(hex_seq *s)
{
    s->items = tr_xrealloc(s->items, (s->n + 1) * sizeof *s->items);
    hex_item *it = &s->items[s->n++];
    memset(it, 0, sizeof *it);
    return it;
}

static bool hex_num(hexp *h, long *v)
{
    hex_skip(h);
    if (h->pos >= h->len || h->s[h->pos] < '0' || h->s[h->pos] > '9')
        return false;
    long x = 0;
    while (h->pos < h->len && h->s[h->pos] >= '0' && h->s[h->pos] <= '9') {
        if (x < 100000000)
            x = x * 10 + (h->s[h->pos] - '0');
        h->pos++;
    }
    *v = x;
    return true;
}

static hex_seq *hex_fail(hexp *h, hex_seq *s, const char *m)
{
    if (!h->msg[0])
        snprintf(h->msg, sizeof h->msg, "%s", m);
    tr_hex_free(s);
    return NULL;
}

static hex_seq *hex_parse_seq(hexp *h, bool in_alt)
{
    hex_seq *s = tr_xcalloc(1, sizeof *s);
    if (++h->depth > MAX_HEX_DEPTH)
        return hex_fail(h, s, "hex string nested too deeply");
    int adjacent_jumps = 0;
    bool adjacent_unbounded = false;
    for (;;) {
        hex_skip(h);
        if (h->pos >= h->len)
            break;
        char ch = h->s[h->pos];
        if (ch == '|' || ch == ')')
            break;
        if (ch == '[') {
            h->pos++;
            long lo = 0, hi = -1;
            bool has_lo = hex_num(h, &lo);
            hex_skip(h);
            if (h->pos < h->len && h->s[h->pos] == '-') {
                h->pos++;
                long v;
                if (hex_num(h, &v))
                    hi = v;
                else
                    hi = -1;
                if (!has_lo)
                    lo = 0;
            } else {
                if (!has_lo)
                    return hex_fail(h, s, "syntax error in jump");
                if (lo == 0)
                    return hex_fail(h, s, "invalid jump length");
                hi = lo;
            }
            hex_skip(h);
            if (h->pos >= h->len || h->s[h->pos] != ']')
                return hex_fail(h, s, "syntax error in jump");
            h->pos++;
            if (hi >= 0 && hi < lo)
                return hex_fail(h, s, "invalid jump range");
            if (lo > INT_MAX / 2 || hi > INT_MAX / 2)
                return hex_fail(h, s, "jump too large");
            if (s->n == 0)
                return hex_fail(h, s, "syntax error: a hex string cannot start with a jump");
            if (in_alt && hi < 0)
                return hex_fail(h, s, "unbounded jumps not allowed inside alternation (|)");
            if (in_alt && hi > YR_MAX_ATOM_JUMP_IN_ALT)
                return hex_fail(h, s, "jumps over 200 not allowed inside alternation (|)");
            adjacent_jumps++;
            if (hi < 0)
                adjacent_unbounded = true;
            if (adjacent_jumps >= 2 && adjacent_unbounded)
                return hex_fail(h, s, "adjacent jumps including an unbounded one abort libyara "
                                      "4.2.3 while scanning; merge them into one jump");
            hex_item *it = hex_push(s);
            it->kind = HEX_JUMP;
            it->lo = (int)lo;
            it->hi = (int)hi;
            continue;
        }
        adjacent_jumps = 0;
        adjacent_unbounded = false;
        if (ch == '(') {
            h->pos++;
            hex_item *it = hex_push(s);
            it->kind = HEX_ALT;
            for (;;) {
                hex_seq *a = hex_parse_seq(h, true);
                if (!a)
                    return hex_fail(h, s, "syntax error");
                it->alt = tr_xrealloc(it->alt, (it->nalt + 1) * sizeof *it->alt);
                it->alt[it->nalt++] = a;
                hex_skip(h);
                if (h->pos < h->len && h->s[h->pos] == '|') {
                    h->pos++;
                    continue;
                }
                break;
            }
            if (h->pos >= h->len || h->s[h->pos] != ')')
                return hex_fail(h, s, "syntax error: missing ')'");
            h->pos++;
            /* A group of one alternative, "(BB)", is valid: libyara 4.2.3's
             * grammar has alternatives : tokens | alternatives '|' tokens. */
            continue;
        }
        int n1 = ch == '?' ? -2 : hexdig((unsigned char)ch);
        if (n1 == -1) {
            char m[64];
            snprintf(m, sizeof m, "syntax error: unexpected '%c'", ch);
            return hex_fail(h, s, m);
        }
        h->pos++;
        char c2 = h->pos < h->len ? h->s[h->pos] : 0;
        int n2 = c2 == '?' ? -2 : c2 ? hexdig((unsigned char)c2) : -1;
        if (n2 == -1)
            return hex_fail(h, s, "uneven number of digits in hex string");
        h->pos++;
        hex_item *it = hex_push(s);
        it->kind = HEX_BYTE;
        it->value = (uint8_t)(((n1 < 0 ? 0 : n1) << 4) | (n2 < 0 ? 0 : n2));
        it->mask = (uint8_t)(((n1 < 0) ? 0 : 0xf0) | ((n2 < 0) ? 0 : 0x0f));
    }
    h->depth--;
    if (s->n == 0)
        return hex_fail(h, s, "syntax error: empty hex string or alternative");
    if (s->items[s->n - 1].kind == HEX_JUMP)
        return hex_fail(h, s, "syntax error: a hex string cannot end with a jump");
    return s;
}

static hex_seq *parse_hex(const char *body, size_t len, char *msg, size_t msgsz)
{
    hexp h = {.s = body, .len = len};
    hex_seq *s = hex_parse_seq(&h, false);
    if (s && h.pos < h.len) {
        tr_hex_free(s);
        s = NULL;
        snprintf(h.msg, sizeof h.msg, "syntax error: unexpected '%c'", body[h.pos]);
    }
    if (!s)
        snprintf(msg, msgsz, "%s", h.msg[0] ? h.msg : "syntax error");
    return s;
}

/* ---- rules ---------------------------------------------------------------------------------- */
static void string_free(tr_string *s)
{
    free(s->id);
    free(s->text);
    free(s->b64_alpha);
    free(s->b64w_alpha);
    tr_hex_free(s->hex);
    tr_re_free(s->re);
}

static void rule_free(tr_rule *r)
{
    free(r->name);
    for (size_t i = 0; i < r->ntags; i++)
        free(r->tags[i]);
    free(r->tags);
    for (size_t i = 0; i < r->nmeta; i++) {
        free(r->meta[i].key);
        free(r->meta[i].sval);
    }
    free(r->meta);
    for (size_t i = 0; i < r->nstrings; i++)
        string_free(&r->strings[i]);
    free(r->strings);
    free(r->file);
    memset(r, 0, sizeof *r);
}

void tr_ruleset_free(tr_ruleset *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->nrules; i++)
        rule_free(&rs->rules[i]);
    free(rs->rules);
    for (size_t i = 0; i < rs->nimports; i++)
        free(rs->imports[i]);
    free(rs->imports);
    for (size_t i = 0; i < rs->npool; i++)
        expr_free(rs->pool[i]);
    free(rs->pool);
    free(rs);
}

static const struct {
    int tk;
    unsigned bit;
    const char *name;
} modifiers[] = {
    {K_NOCASE, MOD_NOCASE, "nocase"}, {K_WIDE, MOD_WIDE, "wide"}, {K_ASCII, MOD_ASCII, "ascii"},
    {K_FULLWORD, MOD_FULLWORD, "fullword"}, {K_PRIVATE, MOD_PRIVATE, "private"},
    {K_XOR, MOD_XOR, "xor"}, {K_BASE64, MOD_BASE64, "base64"},
    {K_BASE64WIDE, MOD_BASE64WIDE, "base64wide"},
};

static int parse_modifiers(parser *p, tr_string *s)
{
    unsigned allowed = s->kind == STR_TEXT ? 0xff
                     : s->kind == STR_REGEX ? (MOD_NOCASE | MOD_WIDE | MOD_ASCII | MOD_FULLWORD | MOD_PRIVATE)
                                            : MOD_PRIVATE;
    s->xor_lo = 0;
    s->xor_hi = 255;
    for (;;) {
        tok *t = cur(p);
        size_t m = 0;
        while (m < sizeof modifiers / sizeof *modifiers && modifiers[m].tk != t->kind)
            m++;
        if (m == sizeof modifiers / sizeof *modifiers)
            break;
        unsigned bit = modifiers[m].bit;
        if (!(allowed & bit))
            return err_at(p, t, "syntax error: modifier '%s' is not allowed on %s strings",
                          modifiers[m].name, s->kind == STR_REGEX ? "regular expression" : "hex");
        if (s->mods & bit)
            return err_at(p, t, "duplicated modifier '%s'", modifiers[m].name);
        advance(p);
        s->mods |= bit;
        if (bit == MOD_XOR && at(p, P_LPAREN)) {
            advance(p);
            if (!at(p, TK_INT))
                return unexpected(p, "a number");
            int64_t lo = advance(p)->ival, hi = lo;
            if (at(p, P_MINUS)) {
                advance(p);
                if (!at(p, TK_INT))
                    return unexpected(p, "a number");
                hi = advance(p)->ival;
            }
            if (expect(p, P_RPAREN, "')'") < 0)
                return -1;
            if (lo < 0 || lo > 255 || hi < 0 || hi > 255)
                return err_at(p, t, "invalid modifier: xor range value out of 0-255");
            if (hi < lo)
                return err_at(p, t, "invalid modifier: xor lower bound exceeds upper bound");
            s->xor_lo = (int)lo;
            s->xor_hi = (int)hi;
        }
        if ((bit == MOD_BASE64 || bit == MOD_BASE64WIDE) && at(p, P_LPAREN)) {
            advance(p);
            if (!at(p, TK_TEXT))
                return unexpected(p, "an alphabet string");
            tok *a = advance(p);
            if (expect(p, P_RPAREN, "')'") < 0)
                return -1;
            if (a->len != 64)
                return err_at(p, a, "invalid modifier: length of base64 alphabet must be 64");
            char *al = tr_xmalloc(65);
            memcpy(al, a->text, 64);
            al[64] = 0;
            if (bit == MOD_BASE64)
                s->b64_alpha = al;
            else
                s->b64w_alpha = al;
        }
    }
    unsigned md = s->mods;
    if ((md & MOD_XOR) && (md & MOD_NOCASE))
        return err_at(p, cur(p), "invalid modifier combination: xor nocase");
    if (md & (MOD_BASE64 | MOD_BASE64WIDE)) {
        if (md & (MOD_NOCASE | MOD_XOR | MOD_FULLWORD))
            return err_at(p, cur(p), "invalid modifier combination with base64");
        if ((md & MOD_BASE64) && (md & MOD_BASE64WIDE)) {
            const char *a = s->b64_alpha, *b = s->b64w_alpha;
            if ((a == NULL) != (b == NULL) || (a && memcmp(a, b, 64) != 0))
                return err_at(p, cur(p), "invalid modifier: different base64 alphabets");
        }
    }
    return 0;
}

static int parse_strings(parser *p)
{
    tr_rule *r = p->rule;
    do {
        tok *id = cur(p);
        if (id->kind != TK_STRID)
            return unexpected(p, "a string identifier");
        advance(p);
        if (strcmp(id->text, "$") != 0)
            for (size_t i = 0; i < r->nstrings; i++)
                if (strcmp(r->strings[i].id, id->text) == 0)
                    return err_at(p, id, "duplicated string identifier \"%s\"", id->text);
        if (expect(p, P_ASSIGN, "'='") < 0)
            return -1;
        r->strings = tr_xrealloc(r->strings, (r->nstrings + 1) * sizeof *r->strings);
        tr_string *s = &r->strings[r->nstrings++];
        memset(s, 0, sizeof *s);
        s->id = tr_xstrdup(id->text);
        s->line = id->line;
        s->col = id->col;
        tok *v = cur(p);
        if (v->kind == TK_TEXT) {
            s->kind = STR_TEXT;
        } else if (v->kind == TK_REGEX) {
            s->kind = STR_REGEX;
        } else if (v->kind == TK_HEX) {
            s->kind = STR_HEX;
        } else {
            return unexpected(p, "a text string, hex string or regular expression");
        }
        advance(p);
        s->len = v->len;
        s->text = tr_xmalloc(v->len + 1);
        memcpy(s->text, v->text, v->len + 1);
        s->re_nocase = v->re_i;
        s->re_dotall = v->re_s;
        if (parse_modifiers(p, s) < 0)
            return -1;
        char msg[200];
        if (s->kind == STR_TEXT && s->len == 0)
            return err_at(p, v, "empty string \"%s\"", s->id);
        if (s->kind == STR_HEX) {
            s->hex = parse_hex(v->text, v->len, msg, sizeof msg);
            if (!s->hex)
                return err_at(p, v, "invalid hex string \"%s\": %s", s->id, msg);
        }
        if (s->kind == STR_REGEX) {
            int qf = 0;
            s->re = tr_re_parse(v->text, v->len, s->re_nocase || (s->mods & MOD_NOCASE), &qf, msg,
                                sizeof msg);
            if (!s->re)
                return err_at(p, v, "invalid regular expression \"%s\": %s", s->id, msg);
            if (qf == 3)
                return err_at(p, v, "invalid regular expression \"%s\": greedy and ungreedy "
                                    "quantifiers can't be mixed", s->id);
        }
    } while (at(p, TK_STRID));
    return 0;
}

static int parse_rule(parser *p)
{
    tr_ruleset *rs = p->c->rs;
    tok *start = cur(p);
    bool is_private = false, is_global = false;
    while (at(p, K_PRIVATE) || at(p, K_GLOBAL)) {
        if (at(p, K_PRIVATE))
            is_private = true;
        else
            is_global = true;
        advance(p);
    }
    if (expect(p, K_RULE, "'rule', 'import' or 'include'") < 0)
        return -1;
    if (!at(p, TK_IDENT))
        return unexpected(p, "a rule name");
    tok *name = advance(p);
    for (size_t i = 0; i < rs->nrules; i++)
        if (strcmp(rs->rules[i].name, name->text) == 0)
            return err_at(p, name, "duplicated identifier \"%s\"", name->text);
    for (size_t i = 0; i < rs->nimports; i++)
        if (strcmp(rs->imports[i], name->text) == 0)
            return err_at(p, name, "duplicated identifier \"%s\"", name->text);
    for (size_t i = 0; i < p->c->nwild; i++)
        if (prefix_match(name->text, p->c->wild[i]))
            return err_at(p, name, "rule identifier \"%s\" matches previously used wildcard rule set",
                          name->text);
    if (rs->nrules == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 16;
        rs->rules = tr_xrealloc(rs->rules, rs->cap * sizeof *rs->rules);
    }
    tr_rule *r = &rs->rules[rs->nrules];
    memset(r, 0, sizeof *r);
    p->rule = r;
    r->name = tr_xstrdup(name->text);
    r->is_private = is_private;
    r->is_global = is_global;
    r->file = tr_xstrdup(p->file);
    r->line = start->line;
    r->col = start->col;
    int rc = -1;
    if (at(p, P_COLON)) {
        advance(p);
        if (!at(p, TK_IDENT)) {
            unexpected(p, "a tag");
            goto out;
        }
        while (at(p, TK_IDENT)) {
            tok *t = advance(p);
            for (size_t i = 0; i < r->ntags; i++)
                if (strcmp(r->tags[i], t->text) == 0) {
                    err_at(p, t, "duplicated tag identifier \"%s\"", t->text);
                    goto out;
                }
            r->tags = tr_xrealloc(r->tags, (r->ntags + 1) * sizeof *r->tags);
            r->tags[r->ntags++] = tr_xstrdup(t->text);
        }
    }
    if (expect(p, P_LBRACE, "'{'") < 0)
        goto out;
    if (at(p, K_META)) {
        advance(p);
        if (expect(p, P_COLON, "':' after 'meta'") < 0)
            goto out;
        if (!at(p, TK_IDENT)) {
            unexpected(p, "a meta identifier");
            goto out;
        }
        while (at(p, TK_IDENT)) {
            tok *k = advance(p);
            if (expect(p, P_ASSIGN, "'='") < 0)
                goto out;
            tr_meta m = {0};
            m.key = tr_xstrdup(k->text);
            tok *v = cur(p);
            if (v->kind == TK_TEXT) {
                m.type = 0;
                m.sval = tr_xmalloc(v->len + 1);
                memcpy(m.sval, v->text, v->len + 1);
                advance(p);
            } else if (v->kind == TK_INT) {
                m.type = 1;
                m.ival = v->ival;
                advance(p);
            } else if (v->kind == P_MINUS && peek(p, 1)->kind == TK_INT) {
                advance(p);
                m.type = 1;
                m.ival = -advance(p)->ival;
            } else if (v->kind == K_TRUE || v->kind == K_FALSE) {
                m.type = 2;
                m.ival = v->kind == K_TRUE;
                advance(p);
            } else {
                free(m.key);
                unexpected(p, "a string, number or boolean meta value");
                goto out;
            }
            r->meta = tr_xrealloc(r->meta, (r->nmeta + 1) * sizeof *r->meta);
            r->meta[r->nmeta++] = m;
        }
    }
    if (at(p, K_STRINGS)) {
        advance(p);
        if (expect(p, P_COLON, "':' after 'strings'") < 0)
            goto out;
        if (parse_strings(p) < 0)
            goto out;
    }
    if (expect(p, K_CONDITION, "'condition'") < 0)
        goto out;
    if (expect(p, P_COLON, "':' after 'condition'") < 0)
        goto out;
    pexpr c = parse_expr(p, 0);
    if (!c.e)
        goto out;
    r->cond = c.e;
    if (expect(p, P_RBRACE, "'}' closing the rule") < 0)
        goto out;
    for (size_t i = 0; i < r->nstrings; i++)
        if (!r->strings[i].referenced) {
            failf(p->c, p->file, r->strings[i].line, r->strings[i].col, "unreferenced string \"%s\"",
                  r->strings[i].id);
            goto out;
        }
    rs->nrules++;
    rc = 0;
out:
    if (rc < 0)
        rule_free(r);
    p->rule = NULL;
    return rc;
}

static int parse_text(pctx *c, const char *file, const char *dir, const char *text, size_t len);

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return tr_xstrdup(".");
    if (slash == path)
        return tr_xstrdup("/");
    size_t n = (size_t)(slash - path);
    char *d = tr_xmalloc(n + 1);
    memcpy(d, path, n);
    d[n] = 0;
    return d;
}

static int parse_include(parser *p, const tok *t, const char *rel)
{
    pctx *c = p->c;
    /* An include reads a file of the machine the parser runs on: that is the
     * local user's to ask for, never a remote client's. Refused here, before
     * any path is looked at, so no error can tell what exists. */
    if (!c->allow_includes)
        return err_at(p, t, "include is not allowed here: paste the included rules instead");
    if (strlen(rel) != t->len || t->len == 0)
        return err_at(p, t, "can't open include file: invalid name");
    char *path = rel[0] == '/' ? tr_xstrdup(rel) : tr_xasprintf("%s/%s", p->dir, rel);
    char *real = realpath(path, NULL);
    if (!real) {
        int rc = err_at(p, t, "can't open include file: %s: %s", path, strerror(errno));
        free(path);
        return rc;
    }
    for (size_t i = 0; i < c->depth; i++)
        if (strcmp(c->stack[i], real) == 0) {
            int rc = err_at(p, t, "include loop: %s includes itself", path);
            free(path);
            free(real);
            return rc;
        }
    if (c->depth >= MAX_INCLUDE_DEPTH) {
        int rc = err_at(p, t, "includes nested too deeply");
        free(path);
        free(real);
        return rc;
    }
    char *text = NULL;
    size_t len = 0;
    tr_error e2;
    if (tr_read_file_max(real, TR_RULES_MAX_INCLUDE_BYTES - c->include_bytes, &text, &len, &e2) < 0) {
        int rc = err_at(p, t, "can't open include file: %s", e2.msg);
        free(path);
        free(real);
        return rc;
    }
    c->include_bytes += len;
    c->stack[c->depth++] = real;
    char *dir = dir_of(real);
    /* Newlines around the inlined text keep a trailing line comment of the
     * included file from swallowing what follows the include. */
    if (c->flat)
        tr_buf_append(c->flat, "\n", 1);
    int rc = parse_text(c, path, dir, text, len);
    if (c->flat)
        tr_buf_append(c->flat, "\n", 1);
    c->depth--;
    free(dir);
    free(real);
    free(text);
    free(path);
    return rc;
}

static int parse_text(pctx *c, const char *file, const char *dir, const char *text, size_t len)
{
    if (memchr(text, 0, len)) {
        /* libyara's lexer stops at a NUL; we refuse rather than guess. */
        const char *z = memchr(text, 0, len);
        int line = 1;
        const char *ls = text;
        for (const char *q = text; q < z; q++)
            if (*q == '\n') {
                line++;
                ls = q + 1;
            }
        return failf(c, file, line, (int)(z - ls) + 1, "unexpected NUL byte in rule text");
    }
    lexer lx = {.file = file, .s = text, .len = len, .line = 1};
    if (lex_all(c, &lx) < 0) {
        free_tokens(lx.toks, lx.ntok);
        return -1;
    }
    parser p = {.c = c, .file = file, .dir = dir, .t = lx.toks, .n = lx.ntok};
    int rc = 0;
    size_t copied = 0;           /* of text, into c->flat */
    while (!at(&p, TK_EOF)) {
        if (at(&p, K_IMPORT)) {
            advance(&p);
            if (!at(&p, TK_TEXT)) {
                rc = unexpected(&p, "a module name string");
                break;
            }
            tok *m = advance(&p);
            bool known = false;
            for (size_t i = 0; i < sizeof known_modules / sizeof *known_modules; i++)
                if (strlen(m->text) == m->len && strcmp(known_modules[i], m->text) == 0)
                    known = true;
            if (!known) {
                rc = err_at(&p, m, m->len == 0 || strlen(m->text) != m->len
                                       ? "invalid module name"
                                       : "unknown module \"%s\"",
                            m->text);
                break;
            }
            bool dup = false;
            for (size_t i = 0; i < c->rs->nimports; i++)
                if (strcmp(c->rs->imports[i], m->text) == 0)
                    dup = true;
            if (!dup) {
                c->rs->imports = tr_xrealloc(c->rs->imports, (c->rs->nimports + 1) * sizeof(char *));
                c->rs->imports[c->rs->nimports++] = tr_xstrdup(m->text);
            }
            continue;
        }
        if (at(&p, K_INCLUDE)) {
            tok *kw = advance(&p);
            if (!at(&p, TK_TEXT)) {
                rc = unexpected(&p, "a file name string");
                break;
            }
            tok *f = advance(&p);
            if (c->flat)
                tr_buf_append(c->flat, text + copied, kw->off - copied);
            if ((rc = parse_include(&p, f, f->text)) < 0)
                break;
            copied = f->end;
            continue;
        }
        if ((rc = parse_rule(&p)) < 0)
            break;
    }
    if (rc == 0 && c->flat)
        tr_buf_append(c->flat, text + copied, len - copied);
    free_tokens(lx.toks, lx.ntok);
    return rc;
}

int tr_rules_parse_buffer(const char *name, const char *text, size_t len, tr_ruleset **out,
                          tr_error *err)
{
    return tr_rules_parse_opts(name, text, len, NULL, out, err);
}

int tr_rules_parse_many(const tr_rules_text *src, size_t n, const tr_rules_options *o,
                        char **flat, tr_ruleset **out, tr_error *err)
{
    static const tr_rules_options none = {0};
    if (!o)
        o = &none;
    *out = NULL;
    for (size_t i = 0; flat && i < n; i++)
        flat[i] = NULL;
    tr_ruleset *rs = tr_xcalloc(1, sizeof *rs);
    pctx c = {.rs = rs, .err = err, .externals = o->externals, .nexternals = o->nexternals,
              .allow_includes = o->allow_includes};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0 && !c.failed; i++) {
        tr_buf fb = {0};
        c.flat = flat ? &fb : NULL;
        c.include_bytes = 0;
        c.depth = 0;
        char *real = o->allow_includes ? realpath(src[i].name, NULL) : NULL;
        if (real)
            c.stack[c.depth++] = real;
        char *dir = dir_of(src[i].name);
        rc = parse_text(&c, src[i].name, dir, src[i].text, src[i].len);
        free(dir);
        free(real);
        if (flat) {
            tr_buf_append(&fb, "", 1);
            flat[i] = fb.data;
        }
    }
    for (size_t i = 0; i < c.nwild; i++)
        free(c.wild[i]);
    free(c.wild);
    if (rc < 0 || c.failed) {
        if (!c.failed)
            tr_fail(err, "%s:1:1: parse failed", n ? src[0].name : "rules");
        tr_ruleset_free(rs);
        for (size_t i = 0; flat && i < n; i++) {
            free(flat[i]);
            flat[i] = NULL;
        }
        return -1;
    }
    *out = rs;
    return 0;
}

int tr_rules_parse_opts(const char *name, const char *text, size_t len,
                        const tr_rules_options *o, tr_ruleset **out, tr_error *err)
{
    tr_rules_text t = {name, text, len};
    return tr_rules_parse_many(&t, 1, o, NULL, out, err);
}

int tr_rules_parse_string(const char *name, const char *text, tr_ruleset **out, tr_error *err)
{
    return tr_rules_parse_buffer(name, text, strlen(text), out, err);
}

int tr_rules_parse_file(const char *path, const tr_rules_options *o, tr_ruleset **out,
                        tr_error *err)
{
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    if (tr_read_file_max(path, TR_RULES_MAX_INCLUDE_BYTES, &text, &len, err) < 0)
        return -1;
    tr_rules_options local = {.allow_includes = true};
    if (o) {
        local = *o;
        local.allow_includes = true;
    }
    int rc = tr_rules_parse_opts(path, text, len, &local, out, err);
    free(text);
    return rc;
}

/* ---- accessors ------------------------------------------------------------------------------ */
size_t tr_ruleset_count(const tr_ruleset *rs) { return rs->nrules; }
const char *tr_ruleset_rule_name(const tr_ruleset *rs, size_t i) { return rs->rules[i].name; }
bool tr_ruleset_rule_is_private(const tr_ruleset *rs, size_t i) { return rs->rules[i].is_private; }
bool tr_ruleset_rule_is_global(const tr_ruleset *rs, size_t i) { return rs->rules[i].is_global; }
const char *tr_ruleset_rule_file(const tr_ruleset *rs, size_t i)
{
    return rs->rules[i].file ? rs->rules[i].file : "";
}
size_t tr_ruleset_rule_tag_count(const tr_ruleset *rs, size_t i) { return rs->rules[i].ntags; }
const char *tr_ruleset_rule_tag(const tr_ruleset *rs, size_t i, size_t t) { return rs->rules[i].tags[t]; }
size_t tr_ruleset_rule_meta_count(const tr_ruleset *rs, size_t i) { return rs->rules[i].nmeta; }
const char *tr_ruleset_rule_meta_key(const tr_ruleset *rs, size_t i, size_t m)
{
    return rs->rules[i].meta[m].key;
}
const char *tr_ruleset_rule_meta_value(const tr_ruleset *rs, size_t i, size_t m, char *tmp,
                                       size_t tmpsz)
{
    const tr_meta *x = &rs->rules[i].meta[m];
    if (x->type == 0)
        return x->sval;
    if (x->type == 2)
        return x->ival ? "true" : "false";
    snprintf(tmp, tmpsz, "%lld", (long long)x->ival);
    return tmp;
}
size_t tr_ruleset_rule_string_count(const tr_ruleset *rs, size_t i) { return rs->rules[i].nstrings; }
size_t tr_ruleset_import_count(const tr_ruleset *rs) { return rs->nimports; }
const char *tr_ruleset_import(const tr_ruleset *rs, size_t i) { return rs->imports[i]; }
