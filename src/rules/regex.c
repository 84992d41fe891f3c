/* A parser for YARA 4.2.3 regular expressions (the body between the slashes).
 * It accepts exactly the shapes libyara's re_grammar accepts as far as the
 * conformance corpus shows, and builds a small AST whose only consumer is the
 * planner: byte sets are therefore supersets wherever libyara's exact
 * reading of an escape is uncertain (soundness before precision). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/ast.h"

#define RE_MAX_RANGE 32767
#define RE_MAX_DEPTH 300

typedef struct {
    const char *s;
    size_t len, pos;
    bool nocase;
    char *msg;
    size_t msgsz;
    bool failed;
    int depth;
    int quant_flags;     /* 1: a greedy quantifier seen, 2: a non-greedy one */
} re_parser;

static re_node *node_new(re_kind k)
{
    re_node *n = tr_xcalloc(1, sizeof *n);
    n->kind = k;
    return n;
}

static void node_push(re_node *p, re_node *c)
{
    p->sub = tr_xrealloc(p->sub, (p->n + 1) * sizeof *p->sub);
    p->sub[p->n++] = c;
}

void tr_re_free(re_node *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        tr_re_free(r->sub[i]);
    free(r->sub);
    free(r);
}

static re_node *fail(re_parser *p, const char *m)
{
    if (!p->failed)
        snprintf(p->msg, p->msgsz, "%s", m);
    p->failed = true;
    return NULL;
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

static void set_range(tr_byteset *s, unsigned lo, unsigned hi)
{
    for (unsigned b = lo; b <= hi; b++)
        tr_byteset_add(s, b);
}

static void set_word(tr_byteset *s)
{
    set_range(s, 'a', 'z');
    set_range(s, 'A', 'Z');
    set_range(s, '0', '9');
    tr_byteset_add(s, '_');
}

static void set_space(tr_byteset *s)
{
    set_range(s, 9, 13);
    tr_byteset_add(s, ' ');
}

static void set_invert(tr_byteset *s)
{
    for (int i = 0; i < 4; i++)
        s->w[i] = ~s->w[i];
}

static void set_fold(tr_byteset *s)
{
    for (unsigned c = 'a'; c <= 'z'; c++) {
        unsigned u = c - 32;
        if (tr_byteset_has(s, c) || tr_byteset_has(s, u)) {
            tr_byteset_add(s, c);
            tr_byteset_add(s, u);
        }
    }
}

/* Reads a shorthand class (\w \W \s \S \d \D) into s; false if not one. */
static bool shorthand(int c, tr_byteset *s)
{
    tr_byteset t = {{0}};
    switch (c) {
    case 'w': case 'W': set_word(&t); break;
    case 's': case 'S': set_space(&t); break;
    case 'd': case 'D': set_range(&t, '0', '9'); break;
    default: return false;
    }
    if (c == 'W' || c == 'S' || c == 'D')
        set_invert(&t);
    for (int i = 0; i < 4; i++)
        s->w[i] |= t.w[i];
    return true;
}

/* Parses the escape after a backslash at p->pos (which points past '\').
 * Returns a single byte value in *byte, or fills *set for a shorthand or an
 * escape whose meaning we do not pin down (then the set is "any byte"). */
static int escape(re_parser *p, int *byte, tr_byteset *set)
{
    if (p->pos >= p->len) {
        fail(p, "illegal escape sequence");
        return -1;
    }
    int c = (unsigned char)p->s[p->pos++];
    if (c == 'x') {
        int h1 = p->pos < p->len ? hexval((unsigned char)p->s[p->pos]) : -1;
        int h2 = p->pos + 1 < p->len ? hexval((unsigned char)p->s[p->pos + 1]) : -1;
        if (h1 < 0 || h2 < 0) {
            fail(p, "illegal escape sequence");
            return -1;
        }
        p->pos += 2;
        *byte = h1 * 16 + h2;
        return 0;
    }
    if (shorthand(c, set))
        return 1;
    switch (c) {
    case 'n': *byte = '\n'; return 0;
    case 't': *byte = '\t'; return 0;
    case 'r': *byte = '\r'; return 0;
    case 'f': *byte = '\f'; return 0;
    case 'a': *byte = 7; return 0;
    }
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        /* Unknown letter or digit escape: we do not assume its meaning. */
        tr_byteset_fill(set);
        return 1;
    }
    *byte = c;
    return 0;
}

static re_node *parse_class(re_parser *p)
{
    /* p->pos is past '['. */
    re_node *n = node_new(RE_SET);
    bool neg = false;
    if (p->pos < p->len && p->s[p->pos] == '^') {
        neg = true;
        p->pos++;
    }
    bool first = true;
    int prev = -1;   /* last single char, usable as a range start */
    for (;;) {
        if (p->pos >= p->len) {
            tr_re_free(n);
            return fail(p, "unterminated character class");
        }
        int c = (unsigned char)p->s[p->pos];
        if (c == ']' && !first) {
            p->pos++;
            break;
        }
        first = false;
        p->pos++;
        int b = -1;
        tr_byteset sh = {{0}};
        if (c == '\\') {
            int r = escape(p, &b, &sh);
            if (r < 0) {
                tr_re_free(n);
                return NULL;
            }
            if (r == 1) {
                for (int i = 0; i < 4; i++)
                    n->set.w[i] |= sh.w[i];
                prev = -1;
                continue;
            }
        } else if (c == '-' && prev >= 0 && p->pos < p->len && p->s[p->pos] != ']') {
            /* a range prev-end */
            int e = (unsigned char)p->s[p->pos++];
            if (e == '\\') {
                tr_byteset sh2 = {{0}};
                int r = escape(p, &e, &sh2);
                if (r < 0) {
                    tr_re_free(n);
                    return NULL;
                }
                if (r == 1) {
                    /* "a-\w": '-' and the class are literal members */
                    tr_byteset_add(&n->set, '-');
                    for (int i = 0; i < 4; i++)
                        n->set.w[i] |= sh2.w[i];
                    prev = -1;
                    continue;
                }
            }
            if (e < prev) {
                tr_re_free(n);
                return fail(p, "bad character range");
            }
            set_range(&n->set, (unsigned)prev, (unsigned)e);
            prev = -1;
            continue;
        } else {
            b = c;
        }
        tr_byteset_add(&n->set, (unsigned)b);
        prev = b;
    }
    if (p->nocase)
        set_fold(&n->set);
    if (neg)
        set_invert(&n->set);
    return n;
}

/* {n} {n,} {,m} {n,m} {,}; returns false (and leaves pos) when the text is not
 * a quantifier, in which case '{' is a literal. */
static bool parse_range(re_parser *p, int *lo, int *hi, bool *err)
{
    size_t i = p->pos + 1;
    long a = -1, b = -1;
    bool comma = false;
    long v = 0;
    bool digits = false;
    *err = false;
    for (; i < p->len; i++) {
        char c = p->s[i];
        if (c >= '0' && c <= '9') {
            if (v < 100000000)
                v = v * 10 + (c - '0');
            digits = true;
        } else if (c == ',' && !comma) {
            comma = true;
            a = digits ? v : -1;
            v = 0;
            digits = false;
        } else if (c == '}') {
            break;
        } else {
            return false;
        }
    }
    if (i >= p->len)
        return false;
    if (!comma) {
        if (!digits)
            return false;
        a = b = v;
    } else {
        b = digits ? v : -1;
    }
    p->pos = i + 1;
    long l = a < 0 ? 0 : a;
    if (!comma && a == 0) {
        *err = true;
        fail(p, "bad repeat interval");
        return true;
    }
    if (b >= 0 && (b < l || b == 0)) {
        *err = true;
        fail(p, "bad repeat interval");
        return true;
    }
    if (l > RE_MAX_RANGE || b > RE_MAX_RANGE) {
        *err = true;
        fail(p, "repeat interval too large");
        return true;
    }
    *lo = (int)l;
    *hi = (int)b;
    return true;
}

static re_node *parse_alt(re_parser *p);

/* One atom with its quantifier. Returns NULL at ')' '|' or end (not an error). */
static re_node *parse_repeat(re_parser *p, bool *end)
{
    *end = false;
    if (p->pos >= p->len) {
        *end = true;
        return NULL;
    }
    int c = (unsigned char)p->s[p->pos];
    re_node *atom = NULL;
    bool quantifiable = true;
    switch (c) {
    case '|':
    case ')':
        *end = true;
        return NULL;
    case '(':
        p->pos++;
        if (++p->depth > RE_MAX_DEPTH)
            return fail(p, "regular expression nested too deeply");
        atom = parse_alt(p);
        p->depth--;
        if (!atom)
            return NULL;
        if (p->pos >= p->len || p->s[p->pos] != ')') {
            tr_re_free(atom);
            return fail(p, "missing closing parenthesis");
        }
        p->pos++;
        break;
    case '[':
        p->pos++;
        atom = parse_class(p);
        if (!atom)
            return NULL;
        break;
    case '.':
        p->pos++;
        atom = node_new(RE_SET);
        tr_byteset_fill(&atom->set);
        atom->is_dot = true;
        break;
    case '^':
    case '$':
        p->pos++;
        atom = node_new(RE_ASSERT);
        quantifiable = false;
        break;
    case '*': case '+': case '?':
        return fail(p, "syntax error");
    case '\\': {
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == 'b' || p->s[p->pos] == 'B')) {
            p->pos++;
            atom = node_new(RE_ASSERT);
            quantifiable = false;
            break;
        }
        int b = -1;
        tr_byteset sh = {{0}};
        int r = escape(p, &b, &sh);
        if (r < 0)
            return NULL;
        atom = node_new(RE_SET);
        if (r == 1) {
            atom->set = sh;
        } else {
            tr_byteset_add(&atom->set, (unsigned)b);
            if (p->nocase)
                set_fold(&atom->set);
        }
        break;
    }
    default:
        p->pos++;
        atom = node_new(RE_SET);
        tr_byteset_add(&atom->set, (unsigned)c);
        if (p->nocase)
            set_fold(&atom->set);
        break;
    }
    if (p->pos >= p->len)
        return atom;
    c = (unsigned char)p->s[p->pos];
    int lo = -2, hi = -2;
    if (c == '*') {
        lo = 0, hi = -1;
        p->pos++;
    } else if (c == '+') {
        lo = 1, hi = -1;
        p->pos++;
    } else if (c == '?') {
        lo = 0, hi = 1;
        p->pos++;
    } else if (c == '{') {
        bool err;
        if (parse_range(p, &lo, &hi, &err)) {
            if (err) {
                tr_re_free(atom);
                return NULL;
            }
        } else {
            lo = -2;
        }
    }
    if (lo == -2)
        return atom;
    if (!quantifiable) {
        tr_re_free(atom);
        return fail(p, "syntax error");
    }
    if (p->pos < p->len && p->s[p->pos] == '?') {
        p->pos++;            /* non-greedy: same language */
        p->quant_flags |= 2;
    } else {
        p->quant_flags |= 1;
    }
    /* A second quantifier is a syntax error in libyara's grammar. */
    if (p->pos < p->len) {
        char d = p->s[p->pos];
        bool again = d == '*' || d == '+' || d == '?';
        if (d == '{') {
            size_t save = p->pos;
            int l2, h2;
            bool e2;
            if (parse_range(p, &l2, &h2, &e2))
                again = true;
            p->pos = save;
            if (e2)
                p->failed = false;
        }
        if (again) {
            tr_re_free(atom);
            return fail(p, "syntax error");
        }
    }
    re_node *r = node_new(RE_REPEAT);
    r->min = lo;
    r->max = hi;
    node_push(r, atom);
    return r;
}

static re_node *parse_cat(re_parser *p)
{
    re_node *cat = node_new(RE_CAT);
    for (;;) {
        bool end;
        re_node *r = parse_repeat(p, &end);
        if (!r) {
            if (!end || p->failed) {
                tr_re_free(cat);
                return NULL;
            }
            break;
        }
        node_push(cat, r);
    }
    if (cat->n == 0) {
        tr_re_free(cat);
        return fail(p, "syntax error");
    }
    return cat;
}

static re_node *parse_alt(re_parser *p)
{
    re_node *first = parse_cat(p);
    if (!first)
        return NULL;
    if (p->pos >= p->len || p->s[p->pos] != '|')
        return first;
    re_node *alt = node_new(RE_ALT);
    node_push(alt, first);
    while (p->pos < p->len && p->s[p->pos] == '|') {
        p->pos++;
        if (p->pos >= p->len || p->s[p->pos] == '|' || p->s[p->pos] == ')') {
            node_push(alt, node_new(RE_EMPTY));   /* "abc|" is legal */
            continue;
        }
        re_node *c = parse_cat(p);
        if (!c) {
            tr_re_free(alt);
            return NULL;
        }
        node_push(alt, c);
    }
    return alt;
}

re_node *tr_re_parse(const char *src, size_t len, bool nocase, int *quant_flags, char *msg,
                     size_t msgsz)
{
    re_parser p = {.s = src, .len = len, .nocase = nocase, .msg = msg, .msgsz = msgsz};
    if (msgsz)
        msg[0] = 0;
    re_node *r = parse_alt(&p);
    if (r && p.pos < p.len) {
        tr_re_free(r);
        return fail(&p, "syntax error");   /* an unmatched ')' */
    }
    if (!r && !p.failed)
        fail(&p, "syntax error");
    if (quant_flags)
        *quant_flags = p.quant_flags;
    return r;
}
