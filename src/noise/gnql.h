/* GNQL, GreyNoise Query Language: parsed into a tree, compiled to SQL over
 * the per-IP aggregates (noise_ips, noise_ip_values), never over the raw
 * events. docs/greynoise.md lists the fields.
 *
 *   query  := or
 *   or     := and (OR and)*
 *   and    := unary ((AND)? unary)*        space is AND
 *   unary  := '-' unary | NOT unary | '(' or ')' | term
 *   term   := FIELD ':' [op] value | FIELD ':' '[' value TO value ']' | IP | CIDR
 *   op     := '>' | '>=' | '<' | '<='
 *   value  := word | '"' text '"'          '*' in a value is a wildcard
 *
 * The tree is public so that tests can judge records with it directly. */
#ifndef TRAWL_NOISE_GNQL_H
#define TRAWL_NOISE_GNQL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

typedef enum gnql_field {
    GNQL_IP,
    GNQL_CLASSIFICATION,
    GNQL_SPOOFABLE,
    GNQL_ACTOR,
    GNQL_FIRST_SEEN,
    GNQL_LAST_SEEN,
    GNQL_TAGS,
    GNQL_CVE,
    GNQL_SENSOR,
    GNQL_COUNTRY,        /* metadata.country / source_country: name or code */
    GNQL_COUNTRY_CODE,
    GNQL_CITY,
    GNQL_REGION,
    GNQL_ASN,            /* "AS13335" or "13335" */
    GNQL_ORG,
    GNQL_RDNS,
    GNQL_TOR,
    GNQL_PORT,           /* raw_data.scan.port */
    GNQL_PROTOCOL,       /* raw_data.scan.protocol */
    GNQL_PATH,           /* raw_data.web.paths */
    GNQL_USERAGENT,      /* raw_data.web.useragents */
    GNQL_JA3,            /* raw_data.ja3.fingerprint */
    GNQL_HASSH,          /* raw_data.hassh.fingerprint */
    GNQL_JA4,            /* raw_data.tls.ja4 */
    GNQL_VPN,            /* trawl knows no VPN: never true */
    GNQL_BOT,            /* likewise */
    GNQL_NFIELDS
} gnql_field;

typedef enum gnql_op { GNQL_EQ, GNQL_GT, GNQL_GE, GNQL_LT, GNQL_LE, GNQL_RANGE } gnql_op;

typedef enum gnql_kind { GNQL_TERM, GNQL_AND, GNQL_OR, GNQL_NOT } gnql_kind;

typedef struct gnql_node gnql_node;
struct gnql_node {
    gnql_kind kind;
    gnql_node *a, *b;         /* AND/OR: both; NOT: a */
    /* TERM */
    gnql_field field;
    gnql_op op;
    char *value;              /* as written, quotes removed */
    bool wildcard;            /* value holds '*' */
    /* Typed forms, filled by the parser: */
    int64_t lo, hi;           /* times (µs, [lo, hi)) and ports ([lo, hi]) */
    int family, bits;         /* ip */
    uint8_t addr[16];
    bool flag;                /* booleans */
    int pos;                  /* 1-based position of the term in the query */
};

typedef struct tr_gnql {
    gnql_node *root;          /* NULL for an empty query */
    bool has_time;            /* a first_seen/last_seen term was given */
} tr_gnql;

#define GNQL_DEFAULT_DAYS 90  /* GreyNoise's window when no time term is given */
#define GNQL_MAX_LEN 4096
#define GNQL_MAX_DEPTH 64

/* Parses q; relative times count back from now_s (Unix seconds). Errors say
 * "at position N" (1-based character). */
int tr_gnql_parse(const char *q, int64_t now_s, tr_gnql **out, tr_error *err);
void tr_gnql_free(tr_gnql *g);
/* A canonical text of the tree (fully parenthesised), which parses back to
 * the same tree: for tests and the fuzz target. Caller frees. */
char *tr_gnql_format(const tr_gnql *g);
const char *tr_gnql_field_name(gnql_field f);

/* SQL: a condition over "i" (a noise_ips row) with ?NNN parameters, in
 * *sql; the parameters' values, in order, in *params (an array of strings
 * and integers). The default window is added when the query has no time
 * term. */
int tr_gnql_sql(const tr_gnql *g, int64_t now_s, char **sql, json_t **params, tr_error *err);

#endif
