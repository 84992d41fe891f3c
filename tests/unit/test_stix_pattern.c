/* STIX patterns: every published example parses and prints back to itself,
 * invalid patterns are refused at the right line:column, the paths and terms
 * a pattern reads, and the matcher's truth tables per operator, observation
 * operator and qualifier. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "stix/pattern.h"

/* Parses, prints, re-parses and re-prints: the canonical text must be stable. */
static void parses(const char *where, const char *text)
{
    tr_error err;
    tr_stix_pattern *p = tr_stix_pattern_parse(text, &err);
    if (!p) {
        printf("%s: refused: %s\n  %s\n", where, text, err.msg);
        fail();
    }
    char *canon = tr_stix_pattern_format(p);
    tr_stix_pattern *q = tr_stix_pattern_parse(canon, &err);
    if (!q) {
        printf("%s: canonical form refused: %s\n  %s\n", where, canon, err.msg);
        fail();
    }
    char *again = tr_stix_pattern_format(q);
    if (strcmp(canon, again) != 0)
        printf("%s: unstable:\n  %s\n  %s\n", where, canon, again);
    assert_string_equal(canon, again);
    free(again);
    free(canon);
    tr_stix_pattern_free(q);
    tr_stix_pattern_free(p);
}

/* Each non-comment line of a file is a pattern; returns how many. */
static int parse_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[8192];
    int n = 0, lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        char where[600];
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        parses(where, line);
        n++;
    }
    fclose(f);
    return n;
}

static void test_fixture_patterns(void **state)
{
    (void)state;
    assert_int_equal(parse_lines(TRAWL_SOURCE_DIR "/tests/fixtures/stix_patterns/spec_examples.txt"), 12);
}

static void test_spec_examples(void **state)
{
    (void)state;
    const char *path = TRAWL_SHARED_DIR "/data/stix/patterns/spec_examples_v21.txt";
    if (access(path, R_OK) != 0) {
        printf("skipped: %s is absent\n", path);
        skip();
    }
    assert_int_equal(parse_lines(path), 23);
}

static int walk_indicators(const char *file, json_t *v)
{
    int n = 0;
    if (json_is_object(v)) {
        const char *type = json_string_value(json_object_get(v, "type"));
        const char *pat = json_string_value(json_object_get(v, "pattern"));
        const char *ptype = json_string_value(json_object_get(v, "pattern_type"));
        if (type && strcmp(type, "indicator") == 0 && pat && (!ptype || strcmp(ptype, "stix") == 0)) {
            parses(file, pat);
            n++;
        }
        const char *k;
        json_t *c;
        json_object_foreach(v, k, c) n += walk_indicators(file, c);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) n += walk_indicators(file, c);
    }
    return n;
}

static int walk_dir(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char *p = tr_xasprintf("%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            n += walk_dir(p);
        } else if (strlen(p) > 5 && strcmp(p + strlen(p) - 5, ".json") == 0) {
            json_error_t je;
            json_t *root = json_load_file(p, 0, &je);
            if (!root)
                printf("%s: %s\n", p, je.text);
            assert_non_null(root);
            n += walk_indicators(p, root);
            json_decref(root);
        }
        free(p);
    }
    closedir(d);
    return n;
}

/* Every indicator of the OASIS examples and the TAXII test data. */
static void test_example_indicators(void **state)
{
    (void)state;
    const char *dirs[] = {TRAWL_SHARED_DIR "/data/stix/examples", TRAWL_SHARED_DIR "/data/stix/taxii"};
    int n = 0;
    for (size_t i = 0; i < 2; i++) {
        if (access(dirs[i], R_OK) != 0) {
            printf("skipped: %s is absent\n", dirs[i]);
            skip();
        }
        n += walk_dir(dirs[i]);
    }
    printf("%d indicators parsed\n", n);
    assert_true(n >= 40);
}

static void refused(const char *text, const char *want)
{
    tr_error err;
    tr_stix_pattern *p = tr_stix_pattern_parse(text, &err);
    if (p) {
        printf("accepted: %s\n", text);
        tr_stix_pattern_free(p);
        fail();
    }
    if (strncmp(err.msg, want, strlen(want)) != 0) {
        printf("pattern: %s\n got: %s\nwant: %s\n", text, err.msg, want);
        fail();
    }
}

static void test_errors(void **state)
{
    (void)state;
    refused("[file:name = 'a'", "pattern:1:17: expected ']' to close the '[' at 1:1, found end of pattern");
    refused("[file:name = 'a' AND]", "pattern:1:21: expected an object path (type:property), found ']'");
    refused("[file:name 'a']", "pattern:1:12: expected a comparison operator, found ''a''");
    refused("[file:hashes.SHA-256 = 'a']", "pattern:1:14: property name SHA-256 contains '-'");
    refused("[file name = 'a']", "pattern:1:7: expected ':' after the object type, found 'name'");
    refused("[file:name = 'a\\q']", "pattern:1:16: invalid escape in string literal");
    refused("[file:name = 'abc", "pattern:1:14: unterminated string literal");
    refused("[file:size > true]", "pattern:1:14: expected an orderable literal (not a boolean), found 'true'");
    refused("[file:name LIKE 5]", "pattern:1:17: expected a string literal, found '5'");
    refused("[file:name MATCHES '(']", "pattern:1:20: invalid regular expression");
    refused("[ipv4-addr:value ISSUBSET 'not-an-ip']", "pattern:1:27: ISSUBSET needs an IPv4 or IPv6");
    refused("[file:name = 'a'] WITHIN 0 SECONDS", "pattern:1:26: WITHIN needs more than 0 seconds");
    refused("[file:name = 'a'] WITHIN -5 SECONDS", "pattern:1:26: expected a positive number of seconds");
    refused("[file:name = 'a'] WITHIN 5 MINUTES", "pattern:1:28: expected SECONDS, found 'MINUTES'");
    refused("[file:name = 'a'] REPEATS 2.5 TIMES", "pattern:1:27: expected a positive integer after REPEATS");
    refused("[file:name = 'a'] START '2020-01-01T00:00:00Z' STOP t'2020-01-02T00:00:00Z'",
            "pattern:1:25: expected a timestamp t'...' after START");
    refused("[file:created = t'2020-02-30T00:00:00Z']", "pattern:1:17: invalid timestamp");
    refused("[file:created = t'2020-01-01 00:00:00Z']", "pattern:1:17: invalid timestamp");
    refused("[file:magic_number_hex = h'fff']", "pattern:1:26: invalid hex literal");
    refused("[artifact:payload_bin = b'abc']", "pattern:1:25: invalid base64 literal");
    refused("[file:size = 007]", "pattern:1:14: integer with a leading zero");
    refused("[file:size = 99999999999999999999]", "pattern:1:14: integer out of range");
    refused("[file:name = 'a'] [file:name = 'b']",
            "pattern:1:19: expected AND, OR, FOLLOWEDBY or a qualifier between observation expressions");
    refused("[file:name = 'a'] AND", "pattern:1:22: expected '[' or '(' to start an observation expression");
    refused("file:name = 'a'", "pattern:1:1: expected '[' or '(' to start");
    refused("[file:name = 'a']\n  AND\n  [file:name = 'b'\n]]", "pattern:4:2: expected end of pattern, found ']'");
    refused("[file:name = 'a'] /* open", "pattern:1:19: unterminated comment");
    refused("[file:name = 'é' AND file:x @ 1]", "pattern:1:29: unexpected '@'"); /* é is one column */
    refused("[file:name = 'a' AND (file:size = 1]", "pattern:1:36: expected ')' to close the '(' at 1:22");
    refused("[file:name NOT EXISTS]", "pattern:1:16: expected a comparison operator, found 'EXISTS'");
    refused("[file:name IN ('a' 'b')]", "pattern:1:20: expected ',' or ')' in the set");
    refused("[file:x[a] = 1]", "pattern:1:9: expected a list index or '*'");
    refused("", "pattern:1:1: expected '[' or '(' to start an observation expression, found end of pattern");
    /* nesting is bounded, so a hostile pattern cannot exhaust the stack */
    char deep[1024] = "";
    for (int i = 0; i < 150; i++)
        strcat(deep, "(");
    refused(deep, "pattern:1:101: nesting deeper than 100");
}

static void test_accepted_forms(void **state)
{
    (void)state;
    parses("t", "[file:name = 'a'] // trailing comment");
    parses("t", "/* c */ [file:name == 'a' AND file:size <> 3]");
    parses("t", "[file:size IN ()]");
    parses("t", "[file:x[-1] = +5 AND file:y = -.5 AND file:z = 007.25]");
    parses("t", "[file:'name' = 'it\\'s \\\\ done']");
    parses("t", "[a:b = 1] START t'2016-02-29T23:59:60.123Z' STOP t'2017-01-01T00:00:00Z' REPEATS 2 TIMES");
    parses("t", "[a:b = 1]\u00a0AND\u3000[a:c = 2]");
}

static void test_canonical_text(void **state)
{
    (void)state;
    struct {
        const char *in, *out;
    } cases[] = {
        {"[ file:name='a' ]", "[file:name = 'a']"},
        {"[file:hashes.'MD5' = 'x' or file:a = 1]", NULL},
        {"[file:hashes.'MD5' = 'x' OR file:a == 1 AND file:b = true]",
         "[file:hashes.MD5 = 'x' OR file:a = 1 AND file:b = true]"},
        {"([a:b = 1] OR [a:c = 2]) AND [a:d = 3]", "([a:b = 1] OR [a:c = 2]) AND [a:d = 3]"},
        {"[a:b = 1] OR [a:c = 2] AND [a:d = 3] FOLLOWEDBY [a:e = 4]",
         "[a:b = 1] OR [a:c = 2] AND [a:d = 3] FOLLOWEDBY [a:e = 4]"},
        {"[a:b = 1] AND ([a:c = 2] AND [a:d = 3])", "[a:b = 1] AND ([a:c = 2] AND [a:d = 3])"},
        {"([a:b = 1] AND [a:c = 2]) WITHIN 5.50 SECONDS", "([a:b = 1] AND [a:c = 2]) WITHIN 5.50 SECONDS"},
        {"[a:'x y'[*].'AND' NOT LIKE 'q%'] REPEATS +3 TIMES", "[a:'x y'[*].'AND' NOT LIKE 'q%'] REPEATS 3 TIMES"},
        {"[a:b IN ('x', 1, true, h'00FF', b'AAE=')]", "[a:b IN ('x', 1, true, h'00FF', b'AAE=')]"},
        {"[NOT EXISTS a:b]", "[NOT EXISTS a:b]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tr_error err;
        tr_stix_pattern *p = tr_stix_pattern_parse(cases[i].in, &err);
        if (!cases[i].out) {
            /* keywords are case-sensitive in the grammar */
            assert_null(p);
            continue;
        }
        if (!p)
            printf("%s: %s\n", cases[i].in, err.msg);
        assert_non_null(p);
        char *s = tr_stix_pattern_format(p);
        if (strcmp(s, cases[i].out) != 0)
            printf("in: %s\n", cases[i].in);
        assert_string_equal(s, cases[i].out);
        free(s);
        tr_stix_pattern_free(p);
    }
}

static void test_paths_and_terms(void **state)
{
    (void)state;
    tr_error err;
    tr_stix_pattern *p = tr_stix_pattern_parse(
        "[file:hashes.'SHA-256' = 'AB' OR file:hashes.MD5 = 'cd'] AND "
        "[ipv4-addr:value ISSUBSET '198.51.100.0/24' AND ipv4-addr:value NOT = '198.51.100.7'] "
        "FOLLOWEDBY [url:value IN ('http://a/', 'http://b/', 3) AND file:size > 10 "
        "AND file:hashes.'SHA-256' = 'ef' AND domain-name:value LIKE '%.example']",
        &err);
    assert_non_null(p);
    const tr_stix_path_ref *paths;
    size_t np = tr_stix_pattern_paths(p, &paths);
    const char *want_paths[][2] = {{"file", "hashes.'SHA-256'"}, {"file", "hashes.MD5"}, {"ipv4-addr", "value"},
                                   {"url", "value"}, {"file", "size"}, {"domain-name", "value"}};
    assert_int_equal(np, 6);
    for (size_t i = 0; i < np; i++) {
        assert_string_equal(paths[i].type, want_paths[i][0]);
        assert_string_equal(paths[i].path, want_paths[i][1]);
    }
    const char *const *types;
    size_t ntypes = tr_stix_pattern_types(p, &types);
    assert_int_equal(ntypes, 4);
    assert_string_equal(types[0], "file");
    assert_string_equal(types[1], "ipv4-addr");
    assert_string_equal(types[2], "url");
    assert_string_equal(types[3], "domain-name");
    const tr_stix_term *terms;
    size_t nt = tr_stix_pattern_terms(p, &terms);
    struct {
        tr_stix_term_kind kind;
        const char *type, *path, *prop, *value;
    } want[] = {
        {TR_STIX_TERM_EQUALS, "file", "hashes.'SHA-256'", "SHA-256", "AB"},
        {TR_STIX_TERM_EQUALS, "file", "hashes.MD5", "MD5", "cd"},
        {TR_STIX_TERM_SUBSET, "ipv4-addr", "value", "value", "198.51.100.0/24"},
        {TR_STIX_TERM_EQUALS, "url", "value", "value", "http://a/"},
        {TR_STIX_TERM_EQUALS, "url", "value", "value", "http://b/"},
        {TR_STIX_TERM_EQUALS, "file", "hashes.'SHA-256'", "SHA-256", "ef"},
    };
    assert_int_equal(nt, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < nt; i++) {
        assert_int_equal(terms[i].kind, want[i].kind);
        assert_string_equal(terms[i].type, want[i].type);
        assert_string_equal(terms[i].path, want[i].path);
        assert_string_equal(terms[i].prop, want[i].prop);
        assert_string_equal(terms[i].value, want[i].value);
    }
    tr_stix_pattern_free(p);
}

/* ---- matcher ---------------------------------------------------------------- */

/* Match result of pattern over observations written as JSON. */
static int match(const char *pattern, const char *json)
{
    tr_error err;
    tr_stix_pattern *p = tr_stix_pattern_parse(pattern, &err);
    if (!p) {
        printf("%s: %s\n", pattern, err.msg);
        fail();
    }
    json_error_t je;
    json_t *obs = json_loads(json, 0, &je);
    if (!obs) {
        printf("bad test JSON: %s\n", je.text);
        fail();
    }
    int rc = tr_stix_pattern_match(p, obs, &err);
    if (rc < 0)
        printf("%s: match error: %s\n", pattern, err.msg);
    json_decref(obs);
    tr_stix_pattern_free(p);
    return rc;
}

#define MATCHES(pat, obs) do { if (match(pat, obs) != 1) { printf("should match: %s\n", pat); fail(); } } while (0)
#define NO_MATCH(pat, obs) do { if (match(pat, obs) != 0) { printf("should not match: %s\n", pat); fail(); } } while (0)

/* One observation of a file, an address and a connection between them. */
static const char *OBS1 =
    "[{\"first_observed\": \"2020-01-01T00:00:00Z\", \"last_observed\": \"2020-01-01T00:00:00Z\","
    " \"number_observed\": 1, \"objects\": {"
    "  \"0\": {\"type\": \"file\", \"name\": \"Report.EXE\", \"size\": 371712, \"ratio\": 0.5,"
    "         \"hashes\": {\"MD5\": \"cead3f77f6cda6ec00f57d76c9a69faa\", \"SHA-256\": \"aa\"},"
    "         \"created\": \"2014-01-13T07:03:17.5Z\", \"is_encrypted\": false,"
    "         \"magic_number_hex\": \"FFD8\", \"parent_directory_ref\": \"3\","
    "         \"extensions\": {\"windows-pebinary-ext\": {\"sections\": [{\"entropy\": 7.5}, {\"entropy\": 2.0}]}}},"
    "  \"1\": {\"type\": \"ipv4-addr\", \"value\": \"198.51.100.7\"},"
    "  \"2\": {\"type\": \"network-traffic\", \"dst_ref\": \"1\", \"dst_port\": 443, \"protocols\": [\"tcp\", \"tls\"]},"
    "  \"3\": {\"type\": \"directory\", \"path\": \"C:\\\\Windows\\\\System32\"},"
    "  \"4\": {\"type\": \"artifact\", \"payload_bin\": \"1MOyoQIABAA=\"},"
    "  \"5\": {\"type\": \"ipv6-addr\", \"value\": \"2001:db8:dead:beef::1\"},"
    "  \"6\": {\"type\": \"file\", \"name\": \"other.txt\", \"size\": 10}"
    "}}]";

static void test_equality_and_order(void **state)
{
    (void)state;
    MATCHES("[file:name = 'Report.EXE']", OBS1);
    NO_MATCH("[file:name = 'report.exe']", OBS1);
    MATCHES("[file:name != 'x']", OBS1);
    NO_MATCH("[file:size != 371712 AND file:size != 10]", OBS1);
    MATCHES("[file:name NOT = 'x']", OBS1);
    NO_MATCH("[file:nothing != 'x']", OBS1);            /* absent property: neither = nor != */
    NO_MATCH("[file:size = '371712']", OBS1);           /* a string is not an integer */
    MATCHES("[file:size = 371712]", OBS1);
    MATCHES("[file:size = 371712.0]", OBS1);
    MATCHES("[file:size > 371711 AND file:size >= 371712 AND file:size < 371713 AND file:size <= 371712]", OBS1);
    NO_MATCH("[file:size > 371712 AND file:size < 11]", OBS1);
    MATCHES("[file:size < 11]", OBS1);                  /* the other file */
    MATCHES("[file:ratio < 0.6 AND file:ratio > .4]", OBS1);
    MATCHES("[file:name > 'Q' AND file:name < 'S']", OBS1);
    MATCHES("[file:is_encrypted = false]", OBS1);
    NO_MATCH("[file:is_encrypted = true]", OBS1);
    MATCHES("[file:created = t'2014-01-13T07:03:17.500Z']", OBS1);
    MATCHES("[file:created > t'2014-01-13T07:03:17Z' AND file:created < t'2014-01-13T07:03:18Z']", OBS1);
    NO_MATCH("[file:created = '2014-01-13T07:03:17.500Z']", OBS1);  /* as text, not as time */
    MATCHES("[file:magic_number_hex = h'ffd8']", OBS1);
    NO_MATCH("[file:magic_number_hex = h'ffd9']", OBS1);
    MATCHES("[artifact:payload_bin = b'1MOyoQIABAA=']", OBS1);
    MATCHES("[artifact:payload_bin = h'd4c3b2a102000400']", OBS1);
    MATCHES("[file:hashes.'SHA-256' = 'aa']", OBS1);
    MATCHES("[file:hashes.md5 = 'cead3f77f6cda6ec00f57d76c9a69faa']", OBS1); /* hash names loosely */
    NO_MATCH("[file:NAME = 'Report.EXE']", OBS1);      /* other property names exactly */
}

static void test_set_like_regex(void **state)
{
    (void)state;
    MATCHES("[file:name IN ('a', 'Report.EXE')]", OBS1);
    NO_MATCH("[file:name IN ('a', 'b')]", OBS1);
    NO_MATCH("[file:name IN ()]", OBS1);
    MATCHES("[file:name NOT IN ()]", OBS1);
    NO_MATCH("[file:nothing NOT IN ()]", OBS1);
    MATCHES("[file:name NOT IN ('a', 'b')]", OBS1);
    MATCHES("[file:size IN (1, 371712)]", OBS1);
    MATCHES("[file:name LIKE 'Rep%.EX_']", OBS1);
    MATCHES("[file:name LIKE '%']", OBS1);
    NO_MATCH("[file:name LIKE 'Rep%.EX']", OBS1);
    NO_MATCH("[file:name LIKE 'rep%']", OBS1);
    MATCHES("[file:name NOT LIKE 'rep%']", OBS1);
    MATCHES("[file:name MATCHES '^Rep.+\\\\.EXE$']", OBS1);
    NO_MATCH("[file:name MATCHES '^rep']", OBS1);
    MATCHES("[file:name MATCHES '(?i)^rep']", OBS1);
    MATCHES("[file:name NOT MATCHES '^rep']", OBS1);
    NO_MATCH("[file:size MATCHES '3']", OBS1);          /* MATCHES reads strings only */
    /* binary properties are matched byte by byte */
    MATCHES("[artifact:payload_bin MATCHES '^\\\\xd4\\\\xc3\\\\xb2\\\\xa1\\\\x02\\\\x00\\\\x04\\\\x00$']", OBS1);
    NO_MATCH("[artifact:payload_bin MATCHES '^\\\\xd5']", OBS1);
    /* characters, not bytes, for LIKE's _ */
    MATCHES("[file:name LIKE 'caf_']", "[{\"objects\": {\"0\": {\"type\": \"file\", \"name\": \"caf\\u00e9\"}}}]");
}

static void test_cidr(void **state)
{
    (void)state;
    MATCHES("[ipv4-addr:value ISSUBSET '198.51.100.0/24']", OBS1);
    MATCHES("[ipv4-addr:value ISSUBSET '198.51.100.7']", OBS1);
    NO_MATCH("[ipv4-addr:value ISSUBSET '198.51.101.0/24']", OBS1);
    MATCHES("[ipv4-addr:value ISSUBSET '0.0.0.0/0']", OBS1);
    MATCHES("[ipv4-addr:value NOT ISSUBSET '203.0.113.0/24']", OBS1);
    MATCHES("[ipv4-addr:value ISSUPERSET '198.51.100.7/32']", OBS1);
    NO_MATCH("[ipv4-addr:value ISSUPERSET '198.51.100.0/24']", OBS1);
    MATCHES("[ipv6-addr:value ISSUBSET '2001:0db8:dead:beef:0000:0000:0000:0000/64']", OBS1);
    NO_MATCH("[ipv6-addr:value ISSUBSET '2001:db8:dead:bee0::/64']", OBS1);
    NO_MATCH("[ipv6-addr:value ISSUBSET '198.51.100.0/24']", OBS1);
    const char *net = "[{\"objects\": {\"0\": {\"type\": \"ipv4-addr\", \"value\": \"198.51.100.0/25\"}}}]";
    MATCHES("[ipv4-addr:value ISSUBSET '198.51.100.0/24']", net);
    NO_MATCH("[ipv4-addr:value ISSUBSET '198.51.100.0/26']", net);
    MATCHES("[ipv4-addr:value ISSUPERSET '198.51.100.64/26']", net);
    NO_MATCH("[ipv4-addr:value ISSUPERSET '198.51.100.128/26']", net);
}

static void test_paths_refs_exists(void **state)
{
    (void)state;
    MATCHES("[file:extensions.'windows-pebinary-ext'.sections[*].entropy > 7.0]", OBS1);
    NO_MATCH("[file:extensions.'windows-pebinary-ext'.sections[*].entropy > 8.0]", OBS1);
    MATCHES("[file:extensions.'windows-pebinary-ext'.sections[1].entropy = 2.0]", OBS1);
    NO_MATCH("[file:extensions.'windows-pebinary-ext'.sections[0].entropy = 2.0]", OBS1);
    NO_MATCH("[file:extensions.'windows-pebinary-ext'.sections[2].entropy = 2.0]", OBS1);
    MATCHES("[network-traffic:protocols[*] = 'tls']", OBS1);
    MATCHES("[network-traffic:dst_ref.value = '198.51.100.7']", OBS1);
    MATCHES("[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_port = 443]", OBS1);
    MATCHES("[file:parent_directory_ref.path = 'C:\\\\Windows\\\\System32']", OBS1);
    MATCHES("[EXISTS file:hashes.MD5]", OBS1);
    MATCHES("[NOT EXISTS file:hashes]", OBS1);          /* the second file has none */
    NO_MATCH("[EXISTS file:hashes.SHA1]", OBS1);
    NO_MATCH("[NOT EXISTS ipv4-addr:value]", OBS1);
}

static void test_comparison_boolean(void **state)
{
    (void)state;
    /* AND over one type: the same SCO must satisfy both */
    NO_MATCH("[file:name = 'Report.EXE' AND file:size = 10]", OBS1);
    MATCHES("[file:name = 'Report.EXE' AND file:size = 371712]", OBS1);
    MATCHES("[file:name = 'Report.EXE' OR file:size = 1]", OBS1);
    NO_MATCH("[file:name = 'x' OR file:size = 1]", OBS1);
    MATCHES("[(file:name = 'x' OR file:name = 'other.txt') AND file:size = 10]", OBS1);
    /* AND across types never holds: no SCO is both (observation AND is the way) */
    NO_MATCH("[file:size = 10 AND ipv4-addr:value = '198.51.100.7']", OBS1);
    MATCHES("[file:size = 10] AND [ipv4-addr:value = '198.51.100.7']",
            "[{\"objects\": {\"0\": {\"type\": \"file\", \"size\": 10}}},"
            " {\"objects\": {\"0\": {\"type\": \"ipv4-addr\", \"value\": \"198.51.100.7\"}}}]");
    MATCHES("[file:size = 11 OR ipv4-addr:value = '198.51.100.7']", OBS1);
    MATCHES("[(file:size = 11 OR ipv4-addr:value = '198.51.100.7') AND ipv4-addr:value LIKE '198.%']", OBS1);
    NO_MATCH("[(file:size = 10 OR ipv4-addr:value = '198.51.100.7') AND file:name = 'Report.EXE']", OBS1);
    NO_MATCH("[mutex:name = 'x']", OBS1);
}

/* Three observations, 5 s apart: alice, bob, carol (the reference matcher's
 * own temporal fixture). */
static const char *PEOPLE =
    "[{\"first_observed\": \"1994-11-29T13:37:52Z\", \"last_observed\": \"1994-11-29T13:37:52Z\","
    "  \"number_observed\": 1, \"objects\": {\"0\": {\"type\": \"person\", \"name\": \"alice\"}}},"
    " {\"first_observed\": \"1994-11-29T13:37:57Z\", \"last_observed\": \"1994-11-29T13:37:57Z\","
    "  \"number_observed\": 1, \"objects\": {\"0\": {\"type\": \"person\", \"name\": \"bob\"}}},"
    " {\"first_observed\": \"1994-11-29T13:38:02Z\", \"last_observed\": \"1994-11-29T13:38:02Z\","
    "  \"number_observed\": 1, \"objects\": {\"0\": {\"type\": \"person\", \"name\": \"carol\"}}}]";

static void test_observation_operators(void **state)
{
    (void)state;
    MATCHES("[person:name = 'alice'] AND [person:name = 'bob']", PEOPLE);
    NO_MATCH("[person:name = 'alice'] AND [person:name = 'dave']", PEOPLE);
    /* AND needs distinct observations: alice cannot stand for both */
    NO_MATCH("[person:name = 'alice'] AND [person:name LIKE 'a%']", PEOPLE);
    MATCHES("[person:name = 'dave'] OR [person:name = 'carol']", PEOPLE);
    NO_MATCH("[person:name = 'dave'] OR [person:name = 'erin']", PEOPLE);
    MATCHES("[person:name = 'alice'] FOLLOWEDBY [person:name = 'carol']", PEOPLE);
    NO_MATCH("[person:name = 'carol'] FOLLOWEDBY [person:name = 'alice']", PEOPLE);
    MATCHES("[person:name = 'alice'] FOLLOWEDBY [person:name = 'bob'] FOLLOWEDBY [person:name = 'carol']", PEOPLE);
    NO_MATCH("[person:name = 'alice'] FOLLOWEDBY [person:name = 'carol'] FOLLOWEDBY [person:name = 'bob']", PEOPLE);
    MATCHES("([person:name = 'carol'] OR [person:name = 'alice']) FOLLOWEDBY [person:name = 'bob']", PEOPLE);
    NO_MATCH("[person:name = 'bob'] FOLLOWEDBY [person:name = 'bob']", PEOPLE);
}

static void test_qualifiers(void **state)
{
    (void)state;
    MATCHES("[person:name = 'bob'] WITHIN 1 SECONDS", PEOPLE);
    MATCHES("[person:name = 'bob'] WITHIN .0001 SECONDS", PEOPLE);
    MATCHES("([person:name = 'alice'] AND [person:name < 'carol']) WITHIN 5 SECONDS", PEOPLE);
    NO_MATCH("([person:name = 'alice'] AND [person:name < 'carol']) WITHIN 4.9999 SECONDS", PEOPLE);
    NO_MATCH("([person:name = 'alice'] AND [person:name = 'carol']) WITHIN 9 SECONDS", PEOPLE);
    MATCHES("([person:name = 'alice'] AND [person:name = 'carol']) WITHIN 10 SECONDS", PEOPLE);
    /* a qualifier binds to the expression right before it */
    MATCHES("[person:name = 'alice'] AND [person:name = 'carol'] WITHIN 1 SECONDS", PEOPLE);
    MATCHES("[person:name = 'bob'] START t'1994-11-29T13:37:57Z' STOP t'1994-11-29T13:37:58Z'", PEOPLE);
    NO_MATCH("[person:name = 'bob'] START t'1994-11-29T13:37:58Z' STOP t'1994-11-29T13:37:59Z'", PEOPLE);
    NO_MATCH("[person:name = 'bob'] START t'1994-11-29T13:37:50Z' STOP t'1994-11-29T13:37:57Z'", PEOPLE);
    MATCHES("([person:name LIKE 'a%'] AND [person:name = 'bob']) START t'1994-11-29T13:37:50Z' "
            "STOP t'1994-11-29T13:37:58Z'", PEOPLE);
    NO_MATCH("([person:name LIKE 'a%'] AND [person:name = 'bob']) START t'1994-11-29T13:37:50Z' "
             "STOP t'1994-11-29T13:37:57Z'", PEOPLE);
    MATCHES("[person:name MATCHES ''] REPEATS 3 TIMES", PEOPLE);
    NO_MATCH("[person:name MATCHES ''] REPEATS 4 TIMES", PEOPLE);
    MATCHES("[person:name MATCHES ''] REPEATS 2 TIMES START t'1994-11-29T13:37:50Z' STOP t'1994-11-29T13:37:58Z'",
            PEOPLE);
    NO_MATCH("[person:name MATCHES ''] REPEATS 3 TIMES START t'1994-11-29T13:37:50Z' STOP t'1994-11-29T13:37:58Z'",
             PEOPLE);
    MATCHES("[person:name MATCHES ''] REPEATS 2 TIMES WITHIN 5 SECONDS", PEOPLE);
    NO_MATCH("[person:name MATCHES ''] REPEATS 3 TIMES WITHIN 9 SECONDS", PEOPLE);
    MATCHES("[person:name MATCHES ''] REPEATS 3 TIMES WITHIN 10 SECONDS", PEOPLE);
    NO_MATCH("[person:name = 'bob'] REPEATS 2 TIMES", PEOPLE);
    /* an observed-data with number_observed N is N observations */
    const char *twice = "[{\"first_observed\": \"2020-01-01T00:00:00Z\", \"last_observed\": \"2020-01-01T00:10:00Z\","
                        "  \"number_observed\": 2, \"objects\": {\"0\": {\"type\": \"file\", \"name\": \"a\"}}},"
                        " {\"first_observed\": \"2020-01-01T01:00:00Z\", \"last_observed\": \"2020-01-01T01:00:00Z\","
                        "  \"number_observed\": 3, \"objects\": {\"0\": {\"type\": \"file\", \"name\": \"a\"}}}]";
    MATCHES("[file:name = 'a'] AND [file:name = 'a'] AND [file:name = 'a'] AND [file:name = 'a'] AND [file:name = 'a']",
            twice);
    NO_MATCH("[file:name = 'a'] REPEATS 6 TIMES", twice);
    MATCHES("[file:name = 'a'] REPEATS 5 TIMES", twice);
    MATCHES("([file:name = 'a'] REPEATS 2 TIMES) WITHIN 1 SECONDS", twice);
    MATCHES("([file:name = 'a'] REPEATS 3 TIMES) WITHIN 1 SECONDS", twice);
    NO_MATCH("([file:name = 'a'] REPEATS 4 TIMES) WITHIN 1 SECONDS", twice);
    MATCHES("([file:name = 'a'] REPEATS 4 TIMES) WITHIN 3000 SECONDS", twice);
    MATCHES("[file:name = 'a'] FOLLOWEDBY [file:name = 'a'] REPEATS 4 TIMES", twice);
    NO_MATCH("[file:name = 'a'] REPEATS 4 TIMES FOLLOWEDBY [file:name = 'a'] REPEATS 2 TIMES", twice);
    MATCHES("[file:name = 'a'] REPEATS 1000000 TIMES",
            "[{\"number_observed\": 1000000, \"objects\": {\"0\": {\"type\": \"file\", \"name\": \"a\"}}}]");
    /* number_observed counts toward REPEATS */
    MATCHES("[file:name = 'a'] REPEATS 5 TIMES",
            "[{\"first_observed\": \"2020-01-01T00:00:00Z\", \"last_observed\": \"2020-01-01T00:10:00Z\","
            "  \"number_observed\": 5, \"objects\": {\"0\": {\"type\": \"file\", \"name\": \"a\"}}}]");
    NO_MATCH("[file:name = 'a'] REPEATS 6 TIMES",
             "[{\"first_observed\": \"2020-01-01T00:00:00Z\", \"last_observed\": \"2020-01-01T00:10:00Z\","
             "  \"number_observed\": 5, \"objects\": {\"0\": {\"type\": \"file\", \"name\": \"a\"}}}]");
    /* an observation happened at some instant of [first_observed, last_observed]:
     * these two can be 10 minutes apart at the closest */
    const char *spans =
        "[{\"first_observed\": \"2020-01-01T00:00:00Z\", \"last_observed\": \"2020-01-01T00:10:00Z\","
        "  \"objects\": {\"0\": {\"type\": \"file\", \"name\": \"a\"}}},"
        " {\"first_observed\": \"2020-01-01T00:20:00Z\", \"last_observed\": \"2020-01-01T00:30:00Z\","
        "  \"objects\": {\"0\": {\"type\": \"file\", \"name\": \"b\"}}}]";
    MATCHES("[file:name = 'a'] WITHIN 1 SECONDS", spans);
    NO_MATCH("([file:name = 'a'] AND [file:name = 'b']) WITHIN 599 SECONDS", spans);
    MATCHES("([file:name = 'a'] AND [file:name = 'b']) WITHIN 600 SECONDS", spans);
    MATCHES("[file:name = 'a'] FOLLOWEDBY [file:name = 'b']", spans);
    NO_MATCH("[file:name = 'b'] FOLLOWEDBY [file:name = 'a']", spans);
    /* START/STOP: each interval overlaps [start, stop) */
    MATCHES("[file:name = 'a'] START t'2020-01-01T00:09:59Z' STOP t'2020-01-01T00:15:00Z'", spans);
    MATCHES("[file:name = 'a'] START t'2020-01-01T00:10:00Z' STOP t'2020-01-01T00:15:00Z'", spans);
    NO_MATCH("[file:name = 'a'] START t'2020-01-01T00:10:00.001Z' STOP t'2020-01-01T00:15:00Z'", spans);
    NO_MATCH("[file:name = 'b'] START t'2020-01-01T00:10:00Z' STOP t'2020-01-01T00:20:00Z'", spans);
    MATCHES("[file:name = 'b'] START t'2020-01-01T00:10:00Z' STOP t'2020-01-01T00:20:00.5Z'", spans);
    NO_MATCH("[file:name = 'a'] START t'2020-01-01T00:08:00Z' STOP t'2020-01-01T00:05:00Z'", spans);
    /* no timestamps: time qualifiers cannot be satisfied, the rest can */
    MATCHES("[file:name = 'a']", "[{\"type\": \"file\", \"name\": \"a\"}]");
    NO_MATCH("[file:name = 'a'] WITHIN 60 SECONDS", "[{\"type\": \"file\", \"name\": \"a\"}]");
}

/* STIX 2.1 observed-data with object_refs, inside a bundle, refs by id. */
static void test_stix21_bundle(void **state)
{
    (void)state;
    const char *bundle =
        "{\"type\": \"bundle\", \"id\": \"bundle--1\", \"objects\": ["
        " {\"type\": \"observed-data\", \"id\": \"observed-data--1\", \"first_observed\": \"2021-05-01T10:00:00Z\","
        "  \"last_observed\": \"2021-05-01T10:00:00Z\", \"number_observed\": 1,"
        "  \"object_refs\": [\"network-traffic--1\", \"ipv4-addr--1\"]},"
        " {\"type\": \"observed-data\", \"id\": \"observed-data--2\", \"first_observed\": \"2021-05-01T10:02:00Z\","
        "  \"last_observed\": \"2021-05-01T10:03:00Z\", \"number_observed\": 1,"
        "  \"object_refs\": [\"domain-name--1\"]},"
        " {\"type\": \"network-traffic\", \"id\": \"network-traffic--1\", \"dst_ref\": \"ipv4-addr--1\","
        "  \"protocols\": [\"tcp\"]},"
        " {\"type\": \"ipv4-addr\", \"id\": \"ipv4-addr--1\", \"value\": \"203.0.113.33\"},"
        " {\"type\": \"domain-name\", \"id\": \"domain-name--1\", \"value\": \"example.com\","
        "  \"resolves_to_refs\": [\"ipv4-addr--1\"]}"
        "]}";
    MATCHES("[network-traffic:dst_ref.value ISSUBSET '203.0.113.33/32']", bundle);
    NO_MATCH("[network-traffic:dst_ref.value = '203.0.113.33/32']", bundle);
    MATCHES("[domain-name:resolves_to_refs[*].value = '203.0.113.33']", bundle);
    MATCHES("([ipv4-addr:value = '203.0.113.33'] FOLLOWEDBY [domain-name:value = 'example.com']) WITHIN 120 SECONDS",
            bundle);
    NO_MATCH("([ipv4-addr:value = '203.0.113.33'] FOLLOWEDBY [domain-name:value = 'example.com']) WITHIN 119 SECONDS",
             bundle);
    NO_MATCH("[domain-name:value = 'example.com'] FOLLOWEDBY [ipv4-addr:value = '203.0.113.33']", bundle);
    NO_MATCH("[ipv4-addr:value = '203.0.113.33' AND domain-name:value = 'example.com']", bundle);
    NO_MATCH("[ipv4-addr:value = '203.0.113.33'] AND [domain-name:value = 'example.com'] AND [ipv4-addr:value LIKE '%']",
             bundle);
    /* a single container object works too */
    MATCHES("[file:name = 'x']", "{\"objects\": {\"0\": {\"type\": \"file\", \"name\": \"x\"}}}");
}

static void test_match_errors(void **state)
{
    (void)state;
    tr_error err;
    tr_stix_pattern *p = tr_stix_pattern_parse("[file:name = 'a']", &err);
    assert_non_null(p);
    const char *bad[] = {
        "42",
        "[1, 2]",
        "[{\"first_observed\": \"yesterday\", \"objects\": {}}]",
        "[{\"number_observed\": 0, \"objects\": {}}]",
        "[{\"type\": \"observed-data\", \"id\": \"observed-data--1\"}]",
        "[{\"first_observed\": \"2020-01-02T00:00:00Z\", \"last_observed\": \"2020-01-01T00:00:00Z\", \"objects\": {}}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        assert_non_null(j);
        if (tr_stix_pattern_match(p, j, &err) != -1) {
            printf("accepted: %s\n", bad[i]);
            fail();
        }
        json_decref(j);
    }
    tr_stix_pattern_free(p);
    /* the binding bound: 10 of 40 observations, each choice then joined with
     * another expression, is C(40,10) candidates */
    tr_buf b = {0};
    tr_buf_printf(&b, "[");
    for (int i = 0; i < 40; i++)
        tr_buf_printf(&b, "%s{\"first_observed\": \"2020-01-01T00:00:%02dZ\", \"objects\": "
                      "{\"0\": {\"type\": \"x\", \"v\": %d}}}", i ? "," : "", i, i);
    tr_buf_printf(&b, "]");
    tr_buf_append(&b, "", 1);
    p = tr_stix_pattern_parse("[x:v >= 0] REPEATS 10 TIMES AND [x:v >= 100]", &err);
    assert_non_null(p);
    json_t *j = json_loads(b.data, 0, NULL);
    assert_non_null(j);
    assert_int_equal(tr_stix_pattern_match(p, j, &err), -1);
    assert_non_null(strstr(err.msg, "bindings"));
    tr_stix_pattern_free(p);
    /* a window prunes the choices as they are formed */
    p = tr_stix_pattern_parse("[x:v >= 0] REPEATS 10 TIMES WITHIN 8.5 SECONDS", &err);
    assert_non_null(p);
    assert_int_equal(tr_stix_pattern_match(p, j, &err), 0);
    tr_stix_pattern_free(p);
    p = tr_stix_pattern_parse("([x:v >= 0] REPEATS 10 TIMES WITHIN 9 SECONDS) FOLLOWEDBY [x:v = 39]", &err);
    assert_non_null(p);
    assert_int_equal(tr_stix_pattern_match(p, j, &err), 1);
    tr_stix_pattern_free(p);
    p = tr_stix_pattern_parse("[x:v >= 0] REPEATS 10 TIMES START t'2020-01-01T00:00:20Z' STOP t'2020-01-01T00:00:29Z'",
                              &err);
    assert_non_null(p);
    assert_int_equal(tr_stix_pattern_match(p, j, &err), 0);
    tr_stix_pattern_free(p);
    /* asked only whether 10 exist, the matcher stops at the first choice */
    p = tr_stix_pattern_parse("[x:v >= 0] REPEATS 10 TIMES OR [x:v < 0]", &err);
    assert_non_null(p);
    assert_int_equal(tr_stix_pattern_match(p, j, &err), 1);
    json_decref(j);
    tr_stix_pattern_free(p);
    tr_buf_free(&b);
}

/* ---- docs/stix-patterns.md ------------------------------------------------- */

/* The value of "field:" in a block (continuation lines joined), or NULL. */
static char *block_field(const char *block, const char *field)
{
    static const char *const fields[] = {"pattern:", "observations:", "result:", "error:"};
    tr_buf b = {0};
    bool in = false;
    const char *line = block;
    while (*line) {
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        bool starts_field = false;
        for (size_t i = 0; i < 4; i++)
            if (strncmp(line, fields[i], strlen(fields[i])) == 0)
                starts_field = true;
        if (starts_field)
            in = strncmp(line, field, strlen(field)) == 0;
        if (in) {
            const char *v = starts_field ? line + strlen(field) : line;
            while (*v == ' ')
                v++;
            if (b.len)
                tr_buf_append(&b, "\n", 1);
            tr_buf_append(&b, v, (size_t)(line + n - v));
        }
        line += n + (eol ? 1 : 0);
    }
    if (!b.len)
        return NULL;
    tr_buf_append(&b, "", 1);
    return b.data;
}

static void test_doc_examples(void **state)
{
    (void)state;
    char *doc;
    size_t len;
    tr_error err;
    assert_int_equal(tr_read_file(TRAWL_SOURCE_DIR "/docs/stix-patterns.md", &doc, &len, &err), 0);
    int examples = 0, errors = 0;
    for (const char *p = doc; (p = strstr(p, "```stix-")) != NULL;) {
        bool is_error = strncmp(p, "```stix-error\n", 14) == 0;
        const char *body = strchr(p, '\n') + 1;
        const char *end = strstr(body, "```");
        assert_non_null(end);
        char *block = tr_xasprintf("%.*s", (int)(end - body), body);
        char *pattern = block_field(block, "pattern:");
        assert_non_null(pattern);
        if (is_error) {
            char *want = block_field(block, "error:");
            assert_non_null(want);
            refused(pattern, want);
            free(want);
            errors++;
        } else {
            char *obs = block_field(block, "observations:");
            char *result = block_field(block, "result:");
            assert_non_null(obs);
            assert_non_null(result);
            int want = strcmp(result, "match") == 0 ? 1 : strcmp(result, "no match") == 0 ? 0 : -2;
            assert_int_not_equal(want, -2);
            int got = match(pattern, obs);
            if (got != want)
                printf("docs example: %s\nwant %s, got %d\n", pattern, result, got);
            assert_int_equal(got, want);
            free(obs);
            free(result);
            examples++;
        }
        free(pattern);
        free(block);
        p = end + 3;
    }
    free(doc);
    assert_true(examples >= 10);
    assert_true(errors >= 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_patterns),
        cmocka_unit_test(test_spec_examples),
        cmocka_unit_test(test_example_indicators),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_accepted_forms),
        cmocka_unit_test(test_canonical_text),
        cmocka_unit_test(test_paths_and_terms),
        cmocka_unit_test(test_equality_and_order),
        cmocka_unit_test(test_set_like_regex),
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_paths_refs_exists),
        cmocka_unit_test(test_comparison_boolean),
        cmocka_unit_test(test_observation_operators),
        cmocka_unit_test(test_qualifiers),
        cmocka_unit_test(test_stix21_bundle),
        cmocka_unit_test(test_match_errors),
        cmocka_unit_test(test_doc_examples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
