/* rules: the internal AST shared by the parser and the planner. Not a public
 * header: other modules go through rules.h. */
#ifndef TRAWL_RULES_AST_H
#define TRAWL_RULES_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "index/query.h"

/* ---- regular expressions ------------------------------------------------ */
typedef enum {
    RE_EMPTY,      /* matches the empty string (an empty trailing alternative) */
    RE_SET,        /* one byte from a set: literal, class, dot, \w ... */
    RE_ASSERT,     /* zero width: ^ $ \b \B */
    RE_CAT,
    RE_ALT,
    RE_REPEAT,
} re_kind;

typedef struct re_node re_node;
struct re_node {
    re_kind kind;
    tr_byteset set;          /* RE_SET, already case-folded when the regex is nocase */
    bool is_dot;             /* RE_SET from '.', whose set depends on the s flag */
    int min, max;            /* RE_REPEAT; max -1 = unbounded */
    size_t n;
    re_node **sub;
};

/* Parses a YARA 4.2.3 regex body; nocase folds ASCII letters in sets.
 * Returns NULL and fills msg on a syntax error. quant_flags (may be NULL)
 * receives bit 1 if a greedy and bit 2 if a non-greedy quantifier occurs. */
re_node *tr_re_parse(const char *src, size_t len, bool nocase, int *quant_flags, char *msg,
                     size_t msgsz);
void tr_re_free(re_node *r);

/* ---- hex strings ---------------------------------------------------------- */
typedef enum { HEX_BYTE, HEX_JUMP, HEX_ALT } hex_kind;
typedef struct hex_seq hex_seq;
typedef struct hex_item {
    hex_kind kind;
    uint8_t value, mask;     /* HEX_BYTE: byte b matches when (b & mask) == value */
    int lo, hi;              /* HEX_JUMP: hi -1 = unbounded */
    size_t nalt;             /* HEX_ALT */
    hex_seq **alt;
} hex_item;
struct hex_seq {
    size_t n;
    hex_item *items;
};
void tr_hex_free(hex_seq *s);

/* ---- strings ---------------------------------------------------------------- */
typedef enum { STR_TEXT, STR_HEX, STR_REGEX } str_kind;
enum {
    MOD_NOCASE = 1 << 0,
    MOD_WIDE = 1 << 1,
    MOD_ASCII = 1 << 2,
    MOD_FULLWORD = 1 << 3,
    MOD_PRIVATE = 1 << 4,
    MOD_XOR = 1 << 5,
    MOD_BASE64 = 1 << 6,
    MOD_BASE64WIDE = 1 << 7,
};

typedef struct tr_string {
    char *id;                 /* "$a", or "$" when anonymous */
    str_kind kind;
    unsigned char *text;      /* TEXT: decoded bytes; REGEX: the pattern source */
    size_t len;
    unsigned mods;
    int xor_lo, xor_hi;
    char *b64_alpha;          /* custom alphabets (64 chars) or NULL */
    char *b64w_alpha;
    bool re_nocase, re_dotall;  /* regex /i and /s */
    hex_seq *hex;
    re_node *re;
    int line, col;
    bool referenced;
} tr_string;

/* ---- conditions ----------------------------------------------------------------- */
typedef enum {
    T_BOOL, T_INT, T_FLOAT, T_STR, T_REGEX, T_UNKNOWN,
} val_type;

typedef enum {
    E_TRUE, E_FALSE, E_INT, E_FLOAT, E_TEXT, E_REGEX,
    E_FILESIZE, E_ENTRYPOINT,
    E_STR,          /* $a (sidx, or -1 for the $ of a for..of) */
    E_STR_AT,       /* $a at a[0] */
    E_STR_IN,       /* $a in a[0] (E_RANGE) */
    E_COUNT,        /* #a */
    E_COUNT_IN,     /* #a in a[0] */
    E_OFFSET,       /* @a or @a[a[0]] */
    E_LENGTH,       /* !a or !a[a[0]] */
    E_RULE,         /* reference to rule ridx */
    E_VAR,          /* loop variable */
    E_MODULE,       /* module or external or anything we do not model */
    E_MEMBER, E_INDEX, E_CALL,
    E_INTFUNC,      /* text holds the function name */
    E_NEG, E_BITNOT,
    E_ADD, E_SUB, E_MUL, E_DIV, E_MOD, E_SHL, E_SHR, E_BAND, E_BOR, E_BXOR,
    E_LT, E_LE, E_GT, E_GE, E_EQ, E_NE,
    E_CONTAINS, E_ICONTAINS, E_STARTSWITH, E_ISTARTSWITH, E_ENDSWITH, E_IENDSWITH,
    E_IEQUALS, E_MATCHES,
    E_AND, E_OR, E_NOT, E_DEFINED,
    E_OF,           /* quant of set [in range a[1]] */
    E_PCT_OF,       /* a[0]% of set */
    E_FOR_OF,       /* for quant of set : (a[1]) */
    E_FOR_IN,       /* for quant vars in iter a[1] : (a[2]) */
    E_RANGE,        /* (a[0] .. a[1]) */
    E_ENUM,         /* (a[0], a[1], ...) */
} expr_kind;

typedef enum { Q_EXPR, Q_ALL, Q_ANY, Q_NONE } quant_kind;

typedef struct expr expr;
struct expr {
    expr_kind kind;
    val_type type;
    bool is_const;            /* integer constant after folding: ival */
    int64_t ival;
    double fval;
    char *text;               /* E_TEXT (bytes, len), E_REGEX source, names */
    size_t len;
    re_node *re;              /* E_REGEX / E_MATCHES right side */
    int sidx;                 /* string index for E_STR.., -1 = the loop's $ */
    int ridx;                 /* E_RULE */
    quant_kind quant;         /* E_OF, E_FOR_OF, E_FOR_IN; Q_EXPR uses a[0] */
    bool set_is_rules;
    size_t nset;              /* E_OF/E_PCT_OF/E_FOR_OF: strings or rules */
    int *set;
    size_t nvars;             /* E_FOR_IN */
    size_t na;
    expr **a;
    int line, col;
};

typedef struct tr_meta {
    char *key;
    int type;                 /* 0 string, 1 int, 2 bool */
    char *sval;
    int64_t ival;
} tr_meta;

typedef struct tr_rule {
    char *name;
    bool is_private, is_global;
    char **tags;
    size_t ntags;
    tr_meta *meta;
    size_t nmeta;
    tr_string *strings;
    size_t nstrings;
    expr *cond;
    char *file;
    int line, col;
} tr_rule;

struct tr_ruleset {
    tr_rule *rules;
    size_t nrules, cap;
    char **imports;
    size_t nimports;
    expr **pool;              /* every expression node; freed with the set */
    size_t npool, poolcap;
};

#endif
