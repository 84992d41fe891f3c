/* GNQL: lexer, recursive-descent parser and the compiler to SQL. */
#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "noise/gnql.h"
#include "noise/noise_internal.h"

static const struct {
    const char *name;
    gnql_field f;
} fields[] = {
    {"ip", GNQL_IP},
    {"classification", GNQL_CLASSIFICATION},
    {"spoofable", GNQL_SPOOFABLE},
    {"actor", GNQL_ACTOR},
    {"first_seen", GNQL_FIRST_SEEN},
    {"last_seen", GNQL_LAST_SEEN},
    {"tags", GNQL_TAGS},
    {"tag", GNQL_TAGS},
    {"cve", GNQL_CVE},
    {"sensor", GNQL_SENSOR},
    {"metadata.country", GNQL_COUNTRY},
    {"metadata.source_country", GNQL_COUNTRY},
    {"metadata.country_code", GNQL_COUNTRY_CODE},
    {"metadata.source_country_code", GNQL_COUNTRY_CODE},
    {"metadata.city", GNQL_CITY},
    {"metadata.source_city", GNQL_CITY},
    {"metadata.region", GNQL_REGION},
    {"metadata.asn", GNQL_ASN},
    {"metadata.organization", GNQL_ORG},
    {"metadata.rdns", GNQL_RDNS},
    {"metadata.tor", GNQL_TOR},
    {"raw_data.scan.port", GNQL_PORT},
    {"raw_data.scan.protocol", GNQL_PROTOCOL},
    {"raw_data.web.paths", GNQL_PATH},
    {"raw_data.web.useragents", GNQL_USERAGENT},
    {"raw_data.ja3.fingerprint", GNQL_JA3},
    {"raw_data.hassh.fingerprint", GNQL_HASSH},
    {"raw_data.tls.ja4", GNQL_JA4},
    {"vpn", GNQL_VPN},
    {"bot", GNQL_BOT},
};
#define NFIELD_NAMES (sizeof fields / sizeof fields[0])

const char *tr_gnql_field_name(gnql_field f)
{
    for (size_t i = 0; i < NFIELD_NAMES; i++)
        if (fields[i].f == f)
            return fields[i].name;
    return "?";
}

static bool field_is_time(gnql_field f)
{
    return f == GNQL_FIRST_SEEN || f == GNQL_LAST_SEEN;
}

static bool field_is_bool(gnql_field f)
{
    return f == GNQL_SPOOFABLE || f == GNQL_TOR || f == GNQL_VPN || f == GNQL_BOT;
}

/* ---- parser -------------------------------------------------------------- */

typedef struct parser {
    const char *q;
    size_t i, len;
    int64_t now_s;
    int depth;
    tr_gnql *g;
    tr_error *err;
} parser;

static int perr(parser *p, size_t at, const char *fmt, ...) TR_PRINTF(3, 4);
static int perr(parser *p, size_t at, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tr_fail(p->err, "GNQL: %s at position %zu", msg, at + 1);
}

static void skip_space(parser *p)
{
    while (p->i < p->len && isspace((unsigned char)p->q[p->i]))
        p->i++;
}

static void node_free(gnql_node *n)
{
    if (!n)
        return;
    node_free(n->a);
    node_free(n->b);
    free(n->value);
    free(n);
}

void tr_gnql_free(tr_gnql *g)
{
    if (!g)
        return;
    node_free(g->root);
    free(g);
}

/* A bare word: up to space or a parenthesis. */
static size_t word_end(parser *p, size_t from)
{
    size_t e = from;
    while (e < p->len && !isspace((unsigned char)p->q[e]) && p->q[e] != '(' && p->q[e] != ')')
        e++;
    return e;
}

static bool is_keyword(parser *p, const char *kw)
{
    size_t k = strlen(kw), e = word_end(p, p->i);
    return e - p->i == k && strncasecmp(p->q + p->i, kw, k) == 0;
}

/* A value at p->i: quoted (\" and \\ escapes) or bare. */
static int read_value(parser *p, char **out, bool stop_bracket)
{
    size_t start = p->i;
    if (p->i < p->len && p->q[p->i] == '"') {
        p->i++;
        char *buf = tr_xmalloc(p->len - p->i + 1);
        size_t n = 0;
        while (p->i < p->len && p->q[p->i] != '"') {
            if (p->q[p->i] == '\\' && p->i + 1 < p->len)
                p->i++;
            buf[n++] = p->q[p->i++];
        }
        if (p->i >= p->len) {
            free(buf);
            return perr(p, start, "unterminated quoted value");
        }
        p->i++;
        buf[n] = 0;
        *out = buf;
        return 0;
    }
    size_t e = p->i;
    while (e < p->len && !isspace((unsigned char)p->q[e]) && p->q[e] != ')' &&
           !(stop_bracket && p->q[e] == ']'))
        e++;
    if (e == p->i)
        return perr(p, start, "expected a value");
    *out = tr_xmalloc(e - p->i + 1);
    memcpy(*out, p->q + p->i, e - p->i);
    (*out)[e - p->i] = 0;
    p->i = e;
    return 0;
}

/* "2026-11-28" (a UTC day) to Unix seconds; -1 if not a date. */
static int64_t parse_date(const char *s)
{
    int y, m, d;
    char extra;
    if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &extra) != 3 || m < 1 ||
        m > 12 || d < 1 || d > 31 || y < 1970 || y > 9999)
        return -1;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    time_t t = timegm(&tm);
    struct tm back;
    gmtime_r(&t, &back);
    if (back.tm_mday != d)     /* 2026-02-31 */
        return -1;
    return (int64_t)t;
}

/* "7d", "12h", "2w": seconds; -1 if not a relative time. */
static int64_t parse_relative(const char *s)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return -1;
    long long v = strtoll(s, &end, 10);
    if (v < 0 || v > 100000 || end[0] == 0 || end[1] != 0)
        return -1;
    switch (end[0]) {
    case 'h': return v * 3600;
    case 'd': return v * 86400;
    case 'w': return v * 7 * 86400;
    case 'm': return v * 30 * 86400;
    case 'y': return v * 365 * 86400;
    default: return -1;
    }
}

static int parse_port(parser *p, size_t at, const char *s, int64_t *v)
{
    char *end;
    long x = strtol(s, &end, 10);
    if (!*s || *end || x < 0 || x > 65535)
        return perr(p, at, "'%.40s' is not a port number", s);
    *v = x;
    return 0;
}

/* Gives a term its typed form. */
static int type_term(parser *p, gnql_node *t, const char *hi_text)
{
    size_t at = (size_t)t->pos - 1;
    const char *v = t->value;
    if (field_is_time(t->field)) {
        if (t->wildcard)
            return perr(p, at, "%s takes a date or a relative time, not a wildcard",
                        tr_gnql_field_name(t->field));
        int64_t rel = parse_relative(v);
        if (rel >= 0) {
            if (t->op != GNQL_EQ)
                return perr(p, at, "a relative time ('%s') takes no comparison", v);
            t->lo = (p->now_s - rel) * 1000000;
            t->hi = INT64_MAX;
            return 0;
        }
        int64_t d = parse_date(v);
        if (d < 0)
            return perr(p, at, "'%.40s' is neither a date (YYYY-MM-DD) nor a relative time (7d)",
                        v);
        t->lo = INT64_MIN;
        t->hi = INT64_MAX;
        switch (t->op) {
        case GNQL_EQ: t->lo = d * 1000000; t->hi = (d + 86400) * 1000000; break;
        case GNQL_GT: t->lo = (d + 86400) * 1000000; break;
        case GNQL_GE: t->lo = d * 1000000; break;
        case GNQL_LT: t->hi = d * 1000000; break;
        case GNQL_LE: t->hi = (d + 86400) * 1000000; break;
        case GNQL_RANGE: {
            int64_t e = parse_date(hi_text);
            if (e < 0)
                return perr(p, at, "'%.40s' is not a date (YYYY-MM-DD)", hi_text);
            t->lo = d * 1000000;
            t->hi = (e + 86400) * 1000000;
            break;
        }
        }
        return 0;
    }
    if (t->field == GNQL_PORT) {
        if (t->wildcard)
            return perr(p, at, "a port is a number, not a wildcard");
        int64_t x = 0, y = 0;
        if (parse_port(p, at, v, &x) != 0 || (t->op == GNQL_RANGE && parse_port(p, at, hi_text, &y)))
            return -1;
        t->lo = 0;
        t->hi = 65535;
        switch (t->op) {
        case GNQL_EQ: t->lo = t->hi = x; break;
        case GNQL_GT: t->lo = x + 1; break;
        case GNQL_GE: t->lo = x; break;
        case GNQL_LT: t->hi = x - 1; break;
        case GNQL_LE: t->hi = x; break;
        case GNQL_RANGE: t->lo = x; t->hi = y; break;
        }
        return 0;
    }
    if (t->op != GNQL_EQ)
        return perr(p, at, "%s takes no comparison or range", tr_gnql_field_name(t->field));
    if (field_is_bool(t->field)) {
        if (strcasecmp(v, "true") == 0)
            t->flag = true;
        else if (strcasecmp(v, "false") == 0)
            t->flag = false;
        else
            return perr(p, at, "%s is true or false, not '%.40s'", tr_gnql_field_name(t->field),
                        v);
        return 0;
    }
    if (t->field == GNQL_IP && !t->wildcard) {
        if (noise_parse_cidr(v, &t->family, t->addr, &t->bits) != 0)
            return perr(p, at, "'%.60s' is not an IP address or CIDR", v);
        /* Host bits off: 10.1.2.3/8 means 10.0.0.0/8. */
        int nb = t->family == 4 ? 4 : 16;
        for (int k = 0; k < nb; k++) {
            int keep = t->bits - k * 8;
            uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
            t->addr[k] &= mask;
        }
    }
    if (t->field == GNQL_ASN && (v[0] == 'A' || v[0] == 'a') && (v[1] == 'S' || v[1] == 's'))
        memmove(t->value, t->value + 2, strlen(t->value + 2) + 1);
    return 0;
}

static gnql_node *new_node(gnql_kind k, gnql_node *a, gnql_node *b)
{
    gnql_node *n = tr_xcalloc(1, sizeof *n);
    n->kind = k;
    n->a = a;
    n->b = b;
    return n;
}

static int parse_term(parser *p, gnql_node **out)
{
    size_t start = p->i, e = p->i;
    while (e < p->len && (isalnum((unsigned char)p->q[e]) || p->q[e] == '_' || p->q[e] == '.'))
        e++;
    gnql_node *t = new_node(GNQL_TERM, NULL, NULL);
    t->pos = (int)start + 1;
    char *hi = NULL;
    /* A bare IPv6 address has colons too: a word that is an address is one. */
    bool bare_ip = false;
    if (e < p->len && p->q[e] == ':') {
        size_t we = word_end(p, start);
        char w[80];
        int fam, bits;
        uint8_t a[16];
        if (we - start < sizeof w) {
            memcpy(w, p->q + start, we - start);
            w[we - start] = 0;
            bare_ip = noise_parse_cidr(w, &fam, a, &bits) == 0;
        }
    }
    if (!bare_ip && e < p->len && p->q[e] == ':' && e > start) {
        size_t k;
        for (k = 0; k < NFIELD_NAMES; k++)
            if (strlen(fields[k].name) == e - start &&
                strncasecmp(fields[k].name, p->q + start, e - start) == 0)
                break;
        if (k == NFIELD_NAMES) {
            node_free(t);
            return perr(p, start, "unknown field '%.*s'", (int)(e - start), p->q + start);
        }
        t->field = fields[k].f;
        p->i = e + 1;
        const char *c = p->q + p->i;
        if (p->i < p->len && c[0] == '[') {
            p->i++;
            skip_space(p);
            t->op = GNQL_RANGE;
            if (read_value(p, &t->value, true) != 0) {
                node_free(t);
                return -1;
            }
            skip_space(p);
            if (!(p->i + 2 < p->len && strncasecmp(p->q + p->i, "TO", 2) == 0 &&
                  isspace((unsigned char)p->q[p->i + 2]))) {
                node_free(t);
                return perr(p, p->i, "expected 'TO' in a range [A TO B]");
            }
            p->i += 2;
            skip_space(p);
            if (read_value(p, &hi, true) != 0) {
                node_free(t);
                return -1;
            }
            skip_space(p);
            if (p->i >= p->len || p->q[p->i] != ']') {
                free(hi);
                node_free(t);
                return perr(p, p->i, "expected ']' closing the range");
            }
            p->i++;
        } else {
            if (p->i < p->len && (c[0] == '>' || c[0] == '<')) {
                bool eq = p->i + 1 < p->len && c[1] == '=';
                t->op = c[0] == '>' ? (eq ? GNQL_GE : GNQL_GT) : (eq ? GNQL_LE : GNQL_LT);
                p->i += eq ? 2 : 1;
            }
            if (read_value(p, &t->value, false) != 0) {
                node_free(t);
                return -1;
            }
        }
    } else {
        /* A bare address or CIDR searches ip; any other bare word is a mistake. */
        t->field = GNQL_IP;
        if (read_value(p, &t->value, false) != 0) {
            node_free(t);
            return -1;
        }
        int fam, bits;
        uint8_t a[16];
        if (noise_parse_cidr(t->value, &fam, a, &bits) != 0) {
            int r = perr(p, start, "'%.40s' is not FIELD:VALUE (nor an IP address)", t->value);
            node_free(t);
            return r;
        }
    }
    t->wildcard = strchr(t->value, '*') != NULL || (hi && strchr(hi, '*'));
    if (field_is_time(t->field))
        p->g->has_time = true;
    int rc = type_term(p, t, hi);
    free(hi);
    if (rc != 0) {
        node_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

static int parse_or(parser *p, gnql_node **out);

static int parse_unary(parser *p, gnql_node **out)
{
    skip_space(p);
    if (p->i >= p->len)
        return perr(p, p->i, "expected a term");
    if (++p->depth > GNQL_MAX_DEPTH)
        return perr(p, p->i, "nested too deeply");
    char c = p->q[p->i];
    int rc;
    if (c == '-' || (is_keyword(p, "NOT"))) {
        p->i += c == '-' ? 1 : 3;
        if (c == '-' && (p->i >= p->len || isspace((unsigned char)p->q[p->i])))
            rc = perr(p, p->i - 1, "'-' must stick to the term it negates");
        else {
            gnql_node *a = NULL;
            rc = parse_unary(p, &a);
            if (rc == 0)
                *out = new_node(GNQL_NOT, a, NULL);
        }
    } else if (c == '(') {
        size_t open = p->i++;
        gnql_node *a = NULL;
        rc = parse_or(p, &a);
        if (rc == 0) {
            skip_space(p);
            if (p->i >= p->len || p->q[p->i] != ')') {
                node_free(a);
                rc = perr(p, open, "unclosed '('");
            } else {
                p->i++;
                *out = a;
            }
        }
    } else if (c == ')') {
        rc = perr(p, p->i, "unexpected ')'");
    } else if (is_keyword(p, "AND") || is_keyword(p, "OR")) {
        rc = perr(p, p->i, "expected a term before '%.*s'", (int)(word_end(p, p->i) - p->i),
                  p->q + p->i);
    } else {
        rc = parse_term(p, out);
    }
    p->depth--;
    return rc;
}

static bool at_and_end(parser *p)
{
    skip_space(p);
    return p->i >= p->len || p->q[p->i] == ')' || is_keyword(p, "OR");
}

static int parse_and(parser *p, gnql_node **out)
{
    gnql_node *l = NULL;
    if (parse_unary(p, &l) != 0)
        return -1;
    while (!at_and_end(p)) {
        if (is_keyword(p, "AND")) {
            p->i += 3;
            skip_space(p);
        }
        gnql_node *r = NULL;
        if (parse_unary(p, &r) != 0) {
            node_free(l);
            return -1;
        }
        l = new_node(GNQL_AND, l, r);
    }
    *out = l;
    return 0;
}

static int parse_or(parser *p, gnql_node **out)
{
    gnql_node *l = NULL;
    if (parse_and(p, &l) != 0)
        return -1;
    skip_space(p);
    while (is_keyword(p, "OR")) {
        p->i += 2;
        gnql_node *r = NULL;
        if (parse_and(p, &r) != 0) {
            node_free(l);
            return -1;
        }
        l = new_node(GNQL_OR, l, r);
        skip_space(p);
    }
    *out = l;
    return 0;
}

int tr_gnql_parse(const char *q, int64_t now_s, tr_gnql **out, tr_error *err)
{
    size_t len = strlen(q);
    if (len > GNQL_MAX_LEN)
        return tr_fail(err, "GNQL: the query is longer than %d characters", GNQL_MAX_LEN);
    tr_gnql *g = tr_xcalloc(1, sizeof *g);
    parser p = {.q = q, .len = len, .now_s = now_s, .g = g, .err = err};
    skip_space(&p);
    if (p.i < p.len) {
        if (parse_or(&p, &g->root) != 0) {
            tr_gnql_free(g);
            return -1;
        }
        skip_space(&p);
        if (p.i < p.len) {
            tr_gnql_free(g);
            return perr(&p, p.i, "unexpected '%c'", q[p.i]);
        }
    }
    *out = g;
    return 0;
}

/* ---- canonical text ------------------------------------------------------ */

static void fmt_node(const gnql_node *n, tr_buf *b)
{
    static const char *const ops[] = {"", ">", ">=", "<", "<="};
    switch (n->kind) {
    case GNQL_AND:
    case GNQL_OR: {
        /* "a b c" is a left-deep chain: printed flat, not nested 64 deep. */
        size_t k = 0, len = 0;
        const gnql_node *x;
        for (x = n; x->kind == n->kind; x = x->a)
            len++;
        const gnql_node **chain = tr_xmalloc(len * sizeof *chain);
        for (x = n; x->kind == n->kind; x = x->a)
            chain[k++] = x;
        tr_buf_append(b, "(", 1);
        fmt_node(x, b);
        while (k-- > 0) {
            tr_buf_printf(b, " %s ", n->kind == GNQL_AND ? "AND" : "OR");
            fmt_node(chain[k]->b, b);
        }
        free(chain);
        tr_buf_append(b, ")", 1);
        break;
    }
    case GNQL_NOT:
        tr_buf_append(b, "-", 1);
        fmt_node(n->a, b);
        break;
    case GNQL_TERM:
        tr_buf_printf(b, "%s:", tr_gnql_field_name(n->field));
        if (n->op == GNQL_RANGE) {
            /* Ranges keep only their typed bounds. */
            if (field_is_time(n->field)) {
                char d1[16], d2[16];
                time_t t1 = (time_t)(n->lo / 1000000), t2 = (time_t)(n->hi / 1000000 - 86400);
                struct tm tm;
                gmtime_r(&t1, &tm);
                strftime(d1, sizeof d1, "%Y-%m-%d", &tm);
                gmtime_r(&t2, &tm);
                strftime(d2, sizeof d2, "%Y-%m-%d", &tm);
                tr_buf_printf(b, "[%s TO %s]", d1, d2);
            } else {
                tr_buf_printf(b, "[%" PRId64 " TO %" PRId64 "]", n->lo, n->hi);
            }
            break;
        }
        tr_buf_printf(b, "%s\"", ops[n->op]);
        for (const char *c = n->value; *c; c++) {
            if (*c == '"' || *c == '\\')
                tr_buf_append(b, "\\", 1);
            tr_buf_append(b, c, 1);
        }
        tr_buf_append(b, "\"", 1);
        break;
    }
}

char *tr_gnql_format(const tr_gnql *g)
{
    tr_buf b = {0};
    if (g->root)
        fmt_node(g->root, &b);
    tr_buf_append(&b, "", 1);
    return (char *)b.data;
}

/* ---- SQL ----------------------------------------------------------------- */

/* How a term on the per-IP sets is written. The first one of the top-level
 * AND chain lists its IPs from the (kind, value) index and drives the
 * query (IN); the others, and every one under NOT, are probed for each
 * candidate IP through the (ip, kind) primary key (EXISTS): SQLite would
 * otherwise build each IN list in full, hundreds of thousands of IPs for a
 * common port or tag, only to test a few candidates against it. Terms
 * under OR keep their lists (each alternative may drive). */
typedef enum { SET_DRIVE, SET_PROBE, SET_LIST } set_mode;

typedef struct compiler {
    tr_buf sql;
    json_t *params;
    set_mode mode;
} compiler;

/* The mode for the next set term, and what it leaves for the ones after. */
static set_mode set_term_mode(compiler *c)
{
    set_mode m = c->mode;
    if (m == SET_DRIVE)
        c->mode = SET_PROBE;
    return m;
}

static int param_str(compiler *c, const char *s)
{
    json_array_append_new(c->params, json_string(s));
    return (int)json_array_size(c->params);
}

static int param_int(compiler *c, int64_t v)
{
    json_array_append_new(c->params, json_integer((json_int_t)v));
    return (int)json_array_size(c->params);
}

/* '*' to LIKE's '%', LIKE's own specials escaped with '\'. */
static char *like_pattern(const char *v)
{
    char *out = tr_xmalloc(strlen(v) * 2 + 1), *o = out;
    for (; *v; v++) {
        if (*v == '*')
            *o++ = '%';
        else {
            if (*v == '%' || *v == '_' || *v == '\\')
                *o++ = '\\';
            *o++ = *v;
        }
    }
    *o = 0;
    return out;
}

/* "expr matches the term's value": case-insensitive, wildcards by LIKE. */
static void match_text(compiler *c, const gnql_node *t, const char *expr)
{
    if (t->wildcard) {
        char *pat = like_pattern(t->value);
        tr_buf_printf(&c->sql, "%s LIKE ?%d ESCAPE '\\'", expr, param_str(c, pat));
        free(pat);
    } else {
        tr_buf_printf(&c->sql, "%s = ?%d COLLATE NOCASE", expr, param_str(c, t->value));
    }
}

/* "the IP has a row of kind where": a list or a probe (set_mode). */
static void set_open(compiler *c, const char *kind)
{
    if (set_term_mode(c) == SET_PROBE)
        tr_buf_printf(&c->sql,
                       "EXISTS (SELECT 1 FROM noise_ip_values v WHERE v.ip = i.ip"
                       " AND v.kind = '%s' AND ",
                       kind);
    else
        tr_buf_printf(&c->sql,
                       "i.ip IN (SELECT v.ip FROM noise_ip_values v WHERE v.kind = '%s' AND ",
                       kind);
}

/* IPs having a value of one kind that matches. */
static void match_value(compiler *c, const gnql_node *t, const char *kind)
{
    set_open(c, kind);
    match_text(c, t, "v.value");
    tr_buf_append(&c->sql, ")", 1);
}

static void compile(compiler *c, const gnql_node *n)
{
    tr_buf *s = &c->sql;
    switch (n->kind) {
    case GNQL_AND:
    case GNQL_OR: {
        set_mode outer = c->mode;
        if (n->kind == GNQL_OR && outer == SET_DRIVE)
            c->mode = SET_LIST;
        tr_buf_append(s, "(", 1);
        compile(c, n->a);
        tr_buf_printf(s, n->kind == GNQL_AND ? " AND " : " OR ");
        compile(c, n->b);
        tr_buf_append(s, ")", 1);
        if (n->kind == GNQL_OR && outer == SET_DRIVE)
            c->mode = SET_PROBE;       /* the OR drives */
        return;
    }
    case GNQL_NOT: {
        set_mode outer = c->mode;
        c->mode = SET_PROBE;
        tr_buf_printf(s, "NOT (");
        compile(c, n->a);
        tr_buf_append(s, ")", 1);
        c->mode = outer;
        return;
    }
    case GNQL_TERM:
        break;
    }
    switch (n->field) {
    case GNQL_IP:
        if (n->wildcard) {
            match_text(c, n, "i.ip");
        } else if (n->bits == (n->family == 4 ? 32 : 128)) {
            char canon[64];
            inet_ntop(n->family == 4 ? AF_INET : AF_INET6, n->addr, canon, sizeof canon);
            tr_buf_printf(s, "i.ip = ?%d", param_str(c, canon));
        } else if (n->family == 4 && n->bits % 8 == 0) {
            /* Octet-aligned: a range of the text primary key. "1.2." up to
             * "1.2/" ('/' follows '.') holds exactly the 1.2.x.y texts. */
            char lo[32] = "", hi[32];
            for (int k = 0; k < n->bits / 8; k++)
                snprintf(lo + strlen(lo), sizeof lo - strlen(lo), "%u.", n->addr[k]);
            if (n->bits == 0) {
                tr_buf_printf(s, "i.family = 4");
                return;
            }
            snprintf(hi, sizeof hi, "%.*s/", (int)strlen(lo) - 1, lo);
            int a = param_str(c, lo), b = param_str(c, hi);
            tr_buf_printf(s, "(i.family = 4 AND i.ip >= ?%d AND i.ip < ?%d)", a, b);
        } else {
            char canon[64], net[80];
            inet_ntop(n->family == 4 ? AF_INET : AF_INET6, n->addr, canon, sizeof canon);
            snprintf(net, sizeof net, "%s/%d", canon, n->bits);
            if (n->family == 4 && n->bits >= 8) {
                /* The enclosing octet-aligned range first, so that only its
                 * texts are tested bit by bit rather than every address. */
                char lo[32] = "", hi[32];
                for (int k = 0; k < n->bits / 8; k++)
                    snprintf(lo + strlen(lo), sizeof lo - strlen(lo), "%u.", n->addr[k]);
                snprintf(hi, sizeof hi, "%.*s/", (int)strlen(lo) - 1, lo);
                int a = param_str(c, lo), b = param_str(c, hi);
                tr_buf_printf(s, "(i.family = 4 AND i.ip >= ?%d AND i.ip < ?%d AND ", a, b);
                tr_buf_printf(s, "gnql_cidr(i.ip, ?%d))", param_str(c, net));
            } else {
                tr_buf_printf(s, "gnql_cidr(i.ip, ?%d)", param_str(c, net));
            }
        }
        return;
    case GNQL_CLASSIFICATION: match_text(c, n, "i.classification"); return;
    case GNQL_ACTOR: match_text(c, n, "ifnull(i.actor, '')"); return;
    case GNQL_COUNTRY:
        tr_buf_append(s, "(", 1);
        match_text(c, n, "ifnull(i.country, '')");
        tr_buf_printf(s, " OR ");
        match_text(c, n, "ifnull(i.country_code, '')");
        tr_buf_append(s, ")", 1);
        return;
    case GNQL_COUNTRY_CODE: match_text(c, n, "ifnull(i.country_code, '')"); return;
    case GNQL_CITY: match_text(c, n, "ifnull(i.city, '')"); return;
    case GNQL_REGION: match_text(c, n, "ifnull(i.region, '')"); return;
    case GNQL_ASN: match_text(c, n, "ifnull(i.asn, '')"); return;
    case GNQL_ORG: match_text(c, n, "ifnull(i.organization, '')"); return;
    case GNQL_RDNS: match_text(c, n, "ifnull(i.rdns, '')"); return;
    case GNQL_SPOOFABLE: tr_buf_printf(s, "i.spoofable = %d", n->flag); return;
    case GNQL_TOR:
        tr_buf_printf(s, "%sEXISTS (SELECT 1 FROM noise_tor t WHERE t.ip = i.ip)",
                       n->flag ? "" : "NOT ");
        return;
    case GNQL_VPN:
    case GNQL_BOT: tr_buf_printf(s, "%d", !n->flag); return;
    case GNQL_FIRST_SEEN:
    case GNQL_LAST_SEEN: {
        const char *col = n->field == GNQL_FIRST_SEEN ? "i.first_seen" : "i.last_seen";
        int a = param_int(c, n->lo), b = param_int(c, n->hi);
        tr_buf_printf(s, "(%s >= ?%d AND %s < ?%d)", col, a, col, b);
        return;
    }
    case GNQL_PORT: {
        int a = param_int(c, n->lo), b = param_int(c, n->hi);
        set_open(c, "scan");
        tr_buf_printf(s, "v.port BETWEEN ?%d AND ?%d)", a, b);
        return;
    }
    case GNQL_TAGS: match_value(c, n, "tag"); return;
    case GNQL_SENSOR: match_value(c, n, "sensor"); return;
    case GNQL_PROTOCOL: match_value(c, n, "scan"); return;
    case GNQL_PATH: match_value(c, n, "path"); return;
    case GNQL_USERAGENT: match_value(c, n, "useragent"); return;
    case GNQL_JA3: match_value(c, n, "ja3"); return;
    case GNQL_HASSH: match_value(c, n, "hassh"); return;
    case GNQL_JA4: match_value(c, n, "ja4"); return;
    case GNQL_CVE:
        /* A tag's CVEs are one comma-separated text: split it with json_each. */
        if (set_term_mode(c) == SET_PROBE)
            tr_buf_printf(s, "EXISTS (SELECT 1 FROM noise_ip_values v JOIN noise_tags t"
                              " ON t.name = v.value WHERE v.ip = i.ip AND v.kind = 'tag'");
        else
            tr_buf_printf(s, "i.ip IN (SELECT v.ip FROM noise_ip_values v JOIN noise_tags t"
                              " ON t.name = v.value WHERE v.kind = 'tag'");
        tr_buf_printf(s, " AND t.cves <> '' AND EXISTS"
                          " (SELECT 1 FROM json_each('[\"' || replace(t.cves, ',', '\",\"')"
                          " || '\"]') j WHERE ");
        match_text(c, n, "j.value");
        tr_buf_printf(s, "))");
        return;
    case GNQL_NFIELDS: break;
    }
    tr_buf_printf(s, "0");
}

int tr_gnql_sql(const tr_gnql *g, int64_t now_s, char **sql, json_t **params, tr_error *err)
{
    (void)err;
    compiler c = {{0}, NULL, SET_DRIVE};
    c.params = json_array();
    if (g->root) {
        tr_buf_append(&c.sql, "(", 1);
        compile(&c, g->root);
        tr_buf_append(&c.sql, ")", 1);
    } else {
        tr_buf_append(&c.sql, "1", 1);
    }
    if (!g->has_time)
        tr_buf_printf(&c.sql, " AND i.last_seen >= ?%d",
                       param_int(&c, (now_s - (int64_t)GNQL_DEFAULT_DAYS * 86400) * 1000000));
    tr_buf_append(&c.sql, "", 1);
    *sql = (char *)c.sql.data;
    *params = c.params;
    return 0;
}
