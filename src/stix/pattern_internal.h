/* The parsed form of a STIX pattern, shared by the parser (pattern.c) and the
 * matcher (pattern_match.c). Not part of the module's interface. */
#ifndef TRAWL_STIX_PATTERN_INTERNAL_H
#define TRAWL_STIX_PATTERN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "stix/pattern.h"

/* A UTC instant; nanoseconds keep the literal's precision without the range
 * limits of a single 64-bit count. */
typedef struct sp_time {
    int64_t sec;               /* since 1970-01-01T00:00:00Z */
    int32_t nsec;
} sp_time;

typedef enum {
    SP_LIT_INT, SP_LIT_FLOAT, SP_LIT_STRING, SP_LIT_BOOL, SP_LIT_TIME, SP_LIT_BINARY, SP_LIT_HEX
} sp_lit_kind;

typedef struct sp_lit {
    sp_lit_kind kind;
    int64_t i;
    double f;
    bool b;
    sp_time t;
    char *s;                   /* string (NUL-terminated), or decoded bytes of b'' and h'' */
    size_t len;
    char *text;                /* float, timestamp, b'' and h'' as written, for formatting */
} sp_lit;

typedef enum { SP_STEP_KEY, SP_STEP_INDEX, SP_STEP_ANY } sp_step_kind;
typedef struct sp_step {
    sp_step_kind kind;
    char *key;
    int64_t index;
} sp_step;

typedef struct sp_path {
    char *type;
    sp_step *steps;            /* at least one: the first is always a key */
    size_t nsteps;
    char *canon;               /* canonical path without the type */
} sp_path;

typedef enum {
    SP_OP_EQ, SP_OP_NEQ, SP_OP_LT, SP_OP_LE, SP_OP_GT, SP_OP_GE, SP_OP_IN, SP_OP_LIKE,
    SP_OP_MATCHES, SP_OP_ISSUBSET, SP_OP_ISSUPERSET, SP_OP_EXISTS
} sp_op;

typedef struct sp_net {
    int family;                /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int prefix;
} sp_net;

/* AND and OR chains are n-ary, so that a long list of alternatives (feeds
 * write thousands) does not make a deep tree: only parentheses nest. */
typedef enum { SP_CMP_TEST, SP_CMP_AND, SP_CMP_OR } sp_cmp_kind;
typedef struct sp_cmp {
    sp_cmp_kind kind;
    struct sp_cmp **kids;
    size_t nkids;
    /* SP_CMP_TEST */
    sp_path path;
    sp_op op;
    bool negated;
    sp_lit *lits;              /* one, or the set of IN, none for EXISTS */
    size_t nlits;
    pcre2_code *re_text;       /* MATCHES over text (UTF) */
    pcre2_code *re_bytes;      /* MATCHES over binary properties (bytes) */
    sp_net net;                /* ISSUBSET / ISSUPERSET */
} sp_cmp;

typedef enum {
    SP_OBS_SIMPLE, SP_OBS_AND, SP_OBS_OR, SP_OBS_FOLLOWEDBY,
    SP_OBS_WITHIN, SP_OBS_REPEATS, SP_OBS_STARTSTOP
} sp_obs_kind;

typedef struct sp_obs {
    sp_obs_kind kind;
    sp_cmp *cmp;               /* SIMPLE */
    struct sp_obs **kids;      /* AND, OR, FOLLOWEDBY (in order) */
    size_t nkids;
    struct sp_obs *operand;    /* WITHIN, REPEATS, STARTSTOP */
    double within;             /* seconds */
    char *within_text;
    int64_t repeats;
    sp_lit start, stop;
} sp_obs;

struct tr_stix_pattern {
    sp_obs *root;
    tr_stix_path_ref *paths;
    size_t npaths;
    tr_stix_term *terms;
    size_t nterms;
    const char **types;
    size_t ntypes;
};

/* Parses an RFC 3339 UTC timestamp as STIX writes it ("...T..:..:..(.f)Z"):
 * 0, or -1 when malformed (month, day of that month, hour...). */
int sp_parse_time(const char *s, size_t n, sp_time *out);
int sp_time_cmp(sp_time a, sp_time b);
/* Parses "a.b.c.d[/n]" or an IPv6 address[/n]: 0 or -1. */
int sp_parse_net(const char *s, sp_net *out);

#endif
