/* libFuzzer target: STIX pattern text -> parse -> canonical text -> parse
 * again (must succeed and print the same) -> match. The input is a pattern,
 * optionally followed by a line "---" and observations as JSON; without
 * them the pattern is matched against a small fixed set. Must never crash,
 * leak or hang. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "stix/pattern.h"

static const char *fixed_observations =
    "[{\"first_observed\": \"2020-01-01T00:00:00Z\", \"last_observed\": \"2020-01-01T00:00:05Z\","
    "  \"number_observed\": 2, \"objects\": {"
    "  \"0\": {\"type\": \"file\", \"name\": \"a.exe\", \"size\": 10, \"hashes\": {\"MD5\": \"00\"},"
    "         \"magic_number_hex\": \"ffd8\", \"parent_directory_ref\": \"1\", \"x\": [1, [2, \"y\"], {\"z\": true}]},"
    "  \"1\": {\"type\": \"directory\", \"path\": \"C:\\\\tmp\"},"
    "  \"2\": {\"type\": \"ipv4-addr\", \"value\": \"198.51.100.7/31\"},"
    "  \"3\": {\"type\": \"artifact\", \"payload_bin\": \"1MOyoQ==\"}}},"
    " {\"type\": \"observed-data\", \"id\": \"observed-data--1\", \"first_observed\": \"2020-01-01T00:01:00Z\","
    "  \"last_observed\": \"2020-01-01T00:01:00Z\", \"number_observed\": 1, \"object_refs\": [\"ipv6-addr--1\"]},"
    " {\"type\": \"ipv6-addr\", \"id\": \"ipv6-addr--1\", \"value\": \"2001:db8::1\"},"
    " {\"type\": \"domain-name\", \"id\": \"domain-name--1\", \"value\": \"example.com\","
    "  \"resolves_to_refs\": [\"ipv6-addr--1\"]}]";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    const char *json = fixed_observations;
    char *sep = strstr(text, "\n---\n");
    if (sep) {
        *sep = '\0';
        json = sep + 5;
    }
    tr_error err;
    tr_stix_pattern *p = tr_stix_pattern_parse(text, &err);
    if (p) {
        char *canon = tr_stix_pattern_format(p);
        tr_stix_pattern *q = tr_stix_pattern_parse(canon, &err);
        if (!q) {
            fprintf(stderr, "canonical text refused: %s\n%s\n", canon, err.msg);
            abort();
        }
        char *again = tr_stix_pattern_format(q);
        if (strcmp(canon, again) != 0) {
            fprintf(stderr, "canonical text unstable:\n%s\n%s\n", canon, again);
            abort();
        }
        free(again);
        free(canon);
        tr_stix_pattern_free(q);
        const tr_stix_path_ref *paths;
        const tr_stix_term *terms;
        size_t np = tr_stix_pattern_paths(p, &paths), nt = tr_stix_pattern_terms(p, &terms);
        for (size_t i = 0; i < np; i++)
            if (!paths[i].type[0] || !paths[i].path[0])
                abort();
        for (size_t i = 0; i < nt; i++)
            if (!terms[i].value)
                abort();
        json_t *obs = json_loads(json, JSON_DECODE_ANY, NULL);
        if (obs) {
            int rc = tr_stix_pattern_match(p, obs, &err);
            if (rc < -1 || rc > 1)
                abort();
            json_decref(obs);
        }
        tr_stix_pattern_free(p);
    }
    free(text);
    return 0;
}
