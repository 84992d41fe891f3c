/* stix: canonical JSON, deterministic SCO ids, the schema validator and the
 * spec's rules, whole-bundle import, versions, search and neighbours. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/core.h"
#include "stix/stix.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/trawl-test-stix-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = tr_xasprintf("rm -rf '%s'", dir);
    int rc = system(cmd);
    free(cmd);
    return rc;
}

static json_t *parse(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_jcs(void **state)
{
    (void)state;
    /* RFC 8785's own examples: member order by UTF-16 units, numbers as
     * ECMAScript prints them, minimal string escapes. */
    json_t *j = parse("{\"numbers\":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"
                      "\"string\":\"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\","
                      "\"literals\":[null,true,false]}");
    tr_buf b = {0};
    tr_error err;
    assert_int_equal(tr_stix_jcs(j, &b, &err), 0);
    assert_string_equal(b.data, "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,"
                                "4.5,0.002,1e-27],\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}");
    tr_buf_free(&b);
    json_decref(j);
    /* Sorting by UTF-16: U+1F600 (surrogates D83D..) sorts before U+FB33. */
    j = parse("{\"\\ufb33\":1,\"\\ud83d\\ude00\":2,\"a\":3}");
    assert_int_equal(tr_stix_jcs(j, &b, &err), 0);
    assert_string_equal(b.data, "{\"a\":3,\"\xf0\x9f\x98\x80\":2,\"\xef\xac\xb3\":1}");
    tr_buf_free(&b);
    json_decref(j);
}

static void test_sco_ids(void **state)
{
    (void)state;
    char id[128];
    tr_error err;
    /* The two vectors of the issue. */
    json_t *ip = parse("{\"type\":\"ipv4-addr\",\"value\":\"198.51.100.3\"}");
    assert_int_equal(tr_stix_sco_id(ip, id, &err), 1);
    assert_string_equal(id, "ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c4");
    json_decref(ip);
    json_t *f = parse("{\"type\":\"file\",\"name\":\"foo.exe\",\"size\":12}");
    assert_int_equal(tr_stix_sco_id(f, id, &err), 1);
    assert_string_equal(id, "file--7af1312c-4402-5d2f-b169-b118d73b85c4");
    json_decref(f);
    /* A process has no contributing properties: UUIDv4 territory. */
    json_t *p = parse("{\"type\":\"process\",\"pid\":4}");
    assert_int_equal(tr_stix_sco_id(p, id, &err), 0);
    json_decref(p);
    /* Only one hash contributes, MD5 first: adding SHA-256 keeps the id. */
    json_t *a = parse("{\"type\":\"file\",\"hashes\":{\"MD5\":\"d41d8cd98f00b204e9800998ecf8427e\"}}");
    json_t *b = parse("{\"type\":\"file\",\"hashes\":{\"SHA-256\":\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\","
                      "\"MD5\":\"d41d8cd98f00b204e9800998ecf8427e\"}}");
    char id2[128];
    assert_int_equal(tr_stix_sco_id(a, id, &err), 1);
    assert_int_equal(tr_stix_sco_id(b, id2, &err), 1);
    assert_string_equal(id, id2);
    json_decref(a);
    json_decref(b);
}

static void test_timestamps(void **state)
{
    (void)state;
    assert_true(tr_stix_ts_valid("2016-04-06T20:03:48.000Z"));
    assert_true(tr_stix_ts_valid("2016-02-29T20:03:48Z"));
    assert_false(tr_stix_ts_valid("2015-02-29T20:03:48Z"));
    assert_false(tr_stix_ts_valid("2016-04-06 20:03:48Z"));
    assert_false(tr_stix_ts_valid("2016-04-06T20:03:48+01:00"));
    assert_int_equal(tr_stix_ts_cmp("2016-04-06T20:03:48Z", "2016-04-06T20:03:48.000Z"), 0);
    assert_true(tr_stix_ts_cmp("2016-04-06T20:03:48.1Z", "2016-04-06T20:03:48.099Z") > 0);
    assert_true(tr_stix_ts_cmp("2016-04-06T20:03:47.9Z", "2016-04-06T20:03:48Z") < 0);
}

#define MAL(extra) \
    "{\"type\":\"malware\",\"spec_version\":\"2.1\",\"id\":\"malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b\"," \
    "\"created\":\"2020-01-01T00:00:00.000Z\",\"modified\":\"2020-01-01T00:00:00.000Z\",\"name\":\"X\"" extra "}"

static void expect_refused(const char *obj, const char *needle)
{
    json_t *j = parse(obj);
    tr_error err;
    assert_int_equal(tr_stix_validate_object(j, &err), -1);
    if (!strstr(err.msg, needle))
        fail_msg("refusal '%s' lacks '%s'", err.msg, needle);
    json_decref(j);
}

static void test_validation(void **state)
{
    (void)state;
    json_t *ok = parse(MAL(",\"is_family\":true,\"x_custom\":{\"deep\":[1,2]}"));
    tr_error err;
    assert_int_equal(tr_stix_validate_object(ok, &err), 0);
    json_decref(ok);
    expect_refused(MAL(""), "'is_family'");                              /* schema: required */
    expect_refused(MAL(",\"is_family\":\"yes\""), "'is_family': must be a boolean");
    expect_refused(MAL(",\"is_family\":true,\"aliases\":[]"), "needs at least 1 item");
    expect_refused(MAL(",\"is_family\":true,\"aliases\":[]"), "'aliases'");
    expect_refused(MAL(",\"is_family\":true,\"Bad\":1"), "'Bad'");      /* custom names are lowercase */
    expect_refused(MAL(",\"is_family\":true,\"created_by_ref\":\"tool--31b940d4-6f7f-459a-80ea-9c1f17b5891b\""),
                   "'created_by_ref'");
    expect_refused("{\"type\":\"tool\",\"spec_version\":\"2.1\",\"id\":\"malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b\","
                   "\"created\":\"2020-01-01T00:00:00.000Z\",\"modified\":\"2020-01-01T00:00:00.000Z\",\"name\":\"t\"}",
                   "'id'");
    expect_refused("{\"type\":\"tool\",\"spec_version\":\"2.1\",\"id\":\"tool--31b940d4-6f7f-459a-80ea-9c1f17b5891b\","
                   "\"created\":\"2020-01-02T00:00:00.000Z\",\"modified\":\"2020-01-01T00:00:00.000Z\",\"name\":\"t\"}",
                   "'modified'");
    expect_refused("{\"type\":\"relationship\",\"spec_version\":\"2.1\",\"id\":\"relationship--31b940d4-6f7f-459a-80ea-9c1f17b5891b\","
                   "\"created\":\"2020-01-01T00:00:00.000Z\",\"modified\":\"2020-01-01T00:00:00.000Z\",\"relationship_type\":\"uses\","
                   "\"source_ref\":\"malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b\","
                   "\"target_ref\":\"marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9\"}",
                   "'target_ref'");
    /* A UUIDv5 SCO id must be the deterministic one. */
    expect_refused("{\"type\":\"ipv4-addr\",\"spec_version\":\"2.1\",\"id\":\"ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c4\","
                   "\"value\":\"198.51.100.4\"}", "deterministic");
    expect_refused("{\"type\":\"ipv4-addr\",\"spec_version\":\"2.1\",\"id\":\"ipv4-addr--18bb3599-77cd-4a82-a950-b5bc3caf07c4\","
                   "\"value\":\"198.51.100.400\"}", "'value'");
    /* if/then/not with contains: extension_properties only for toplevel
     * property extensions. */
#define EXTDEF(types, extra) \
    "{\"type\":\"extension-definition\",\"spec_version\":\"2.1\"," \
    "\"id\":\"extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e\"," \
    "\"created\":\"2022-02-02T00:00:00.000Z\",\"modified\":\"2022-02-02T00:00:00.000Z\"," \
    "\"created_by_ref\":\"identity--11b76a96-5d2b-45e0-8a5a-f6994f370731\",\"name\":\"acme\"," \
    "\"schema\":\"https://example.com/acme.json\",\"version\":\"1.0\",\"extension_types\":" types extra "}"
    json_t *ext = parse(EXTDEF("[\"toplevel-property-extension\"]", ",\"extension_properties\":[\"x_acme\"]"));
    assert_int_equal(tr_stix_validate_object(ext, &err), 0);
    json_decref(ext);
    ext = parse(EXTDEF("[\"property-extension\"]", ""));
    assert_int_equal(tr_stix_validate_object(ext, &err), 0);
    json_decref(ext);
    expect_refused(EXTDEF("[\"property-extension\"]", ",\"extension_properties\":[\"x_acme\"]"),
                   "not allowed");
    expect_refused(EXTDEF("[\"new-thing\"]", ""), "'extension_types/0'");
    /* propertyNames: external reference hash names. */
    expect_refused(MAL(",\"is_family\":true,\"external_references\":[{\"source_name\":\"x\","
                       "\"url\":\"https://example.com/\",\"hashes\":{\"md5sum\":\"00\"}}]"),
                   "external_references/0");
    /* YARA indicators go through trawl's YARA parser; includes never. */
#define YIND(pattern) \
    "{\"type\":\"indicator\",\"spec_version\":\"2.1\",\"id\":\"indicator--31b940d4-6f7f-459a-80ea-9c1f17b5891b\"," \
    "\"created\":\"2020-01-01T00:00:00.000Z\",\"modified\":\"2020-01-01T00:00:00.000Z\",\"pattern\":\"" pattern "\"," \
    "\"pattern_type\":\"yara\",\"valid_from\":\"2020-01-01T00:00:00Z\"}"
    json_t *y = parse(YIND("rule gloom { strings: $a = \\\"gloomhaul\\\" condition: $a }"));
    if (tr_stix_validate_object(y, &err) != 0)
        fail_msg("valid YARA indicator refused: %s", err.msg);
    json_decref(y);
    expect_refused(YIND("rule gloom { condition: $a }"), "not valid YARA");
    expect_refused(YIND("include \\\"/etc/passwd\\\" rule x { condition: true }"), "include");
    expect_refused(YIND("rule x { condition: true } include \\\"/etc/passwd\\\""), "include is not allowed");
    /* the word in a string is no include */
    y = parse(YIND("rule inc { strings: $a = \\\"#include <stdio.h>\\\" condition: $a }"));
    if (tr_stix_validate_object(y, &err) != 0)
        fail_msg("a YARA string holding 'include' refused: %s", err.msg);
    json_decref(y);
    /* TLP 1.0 levels have fixed ids. */
    expect_refused("{\"type\":\"marking-definition\",\"spec_version\":\"2.1\",\"id\":\"marking-definition--11111111-1111-4111-8111-111111111111\","
                   "\"created\":\"2017-01-20T00:00:00.000Z\",\"definition_type\":\"tlp\",\"definition\":{\"tlp\":\"green\"}}",
                   "marking-definition");
    expect_refused("{\"type\":\"indicator\",\"spec_version\":\"2.1\",\"id\":\"indicator--31b940d4-6f7f-459a-80ea-9c1f17b5891b\","
                   "\"created\":\"2020-01-01T00:00:00.000Z\",\"modified\":\"2020-01-01T00:00:00.000Z\",\"pattern\":\"\","
                   "\"pattern_type\":\"stix\",\"valid_from\":\"2020-01-01T00:00:00Z\"}", "'pattern'");
}

static void test_upgrade(void **state)
{
    (void)state;
    json_t *o = parse("{\"type\":\"malware\",\"id\":\"malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b\","
                      "\"created\":\"2020-01-01T00:00:00Z\",\"modified\":\"2020-01-01T00:00:00.000Z\","
                      "\"name\":\"X\",\"labels\":[\"ransomware\"]}");
    assert_int_equal(tr_stix_upgrade_20(o), 1);
    assert_string_equal(json_string_value(json_object_get(o, "spec_version")), "2.1");
    assert_null(json_object_get(o, "labels"));
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "malware_types"), 0)), "ransomware");
    assert_true(json_is_true(json_object_get(o, "is_family")));
    assert_string_equal(json_string_value(json_object_get(o, "created")), "2020-01-01T00:00:00.000Z");
    tr_error err;
    assert_int_equal(tr_stix_validate_object(o, &err), 0);
    json_decref(o);
}

static int count_row(void *arg, const tr_stix_row *r)
{
    (void)r;
    (*(size_t *)arg)++;
    return 0;
}

static int keep_json(void *arg, const tr_stix_row *r)
{
    tr_buf *b = arg;
    b->len = 0;
    tr_buf_append(b, r->json, r->json_len);
    return 0;
}

static int count_kind(void *arg, const tr_stix_row *r, tr_stix_change kind)
{
    (void)r;
    ((int *)arg)[kind]++;
    return 0;
}

static void test_import_whole_or_nothing(void **state)
{
    (void)state;
    tr_stix_db *db;
    tr_error err;
    assert_int_equal(tr_stix_open(dir, &db, &err), 0);
    /* Custom property bytes come back as they went in (spacing, number forms). */
    const char *v1 = "{\"type\":\"bundle\",\"id\":\"bundle--31b940d4-6f7f-459a-80ea-9c1f17b5891b\",\"objects\":["
                     "{\"type\":\"malware\", \"spec_version\":\"2.1\",\"id\":\"malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b\","
                     "\"created\":\"2020-01-01T00:00:00.000Z\",\"modified\":\"2020-01-01T00:00:00.000Z\",\"name\":\"Gloomy\","
                     "\"is_family\":true,\"x_score\":1.50,\"description\":\"drops qwertyzzz\"}]}";
    tr_stix_import_result res;
    assert_int_equal(tr_stix_import(db, v1, strlen(v1), NULL, &res, &err), 0);
    assert_int_equal(res.added, 1);
    tr_buf got = {0};
    assert_int_equal(tr_stix_get(db, "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b", keep_json, &got, &err), 1);
    assert_non_null(strstr(got.data, "\"x_score\":1.50"));
    assert_non_null(strstr(got.data, "{\"type\":\"malware\", \"spec"));
    /* A bundle with one bad object stores nothing, and says which. */
    const char *bad = "{\"type\":\"bundle\",\"id\":\"bundle--31b940d4-6f7f-459a-80ea-9c1f17b5891c\",\"objects\":["
                      "{\"type\":\"malware\",\"spec_version\":\"2.1\",\"id\":\"malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b\","
                      "\"created\":\"2020-01-01T00:00:00.000Z\",\"modified\":\"2021-01-01T00:00:00.000Z\",\"name\":\"Gloomy 2\","
                      "\"is_family\":true},"
                      "{\"type\":\"tool\",\"spec_version\":\"2.1\",\"id\":\"tool--31b940d4-6f7f-459a-80ea-9c1f17b5891b\","
                      "\"created\":\"2020-01-01T00:00:00.000Z\",\"modified\":\"2020-01-01T00:00:00.000Z\",\"name\":7}]}";
    assert_int_equal(tr_stix_import(db, bad, strlen(bad), NULL, &res, &err), -1);
    assert_non_null(strstr(err.msg, "object 1 (tool--31b940d4-6f7f-459a-80ea-9c1f17b5891b)"));
    assert_non_null(strstr(err.msg, "'name'"));
    size_t n = 0, seen = 0;
    assert_int_equal(tr_stix_versions_of(db, "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b", count_row, &seen, &n, &err), 0);
    assert_int_equal(n, 1);
    /* A newer version: both kept, the newer is the latest. */
    const char *v2 = "{\"type\":\"bundle\",\"id\":\"bundle--31b940d4-6f7f-459a-80ea-9c1f17b5891d\",\"objects\":["
                     "{\"type\":\"malware\",\"spec_version\":\"2.1\",\"id\":\"malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b\","
                     "\"created\":\"2020-01-01T00:00:00.000Z\",\"modified\":\"2021-01-01T00:00:00.000Z\",\"name\":\"Gloomy 2\","
                     "\"is_family\":true}]}";
    assert_int_equal(tr_stix_import(db, v2, strlen(v2), NULL, &res, &err), 0);
    size_t cnt = 0;
    assert_int_equal(tr_stix_versions_of(db, "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b", count_row, &cnt, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(tr_stix_get(db, "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b", keep_json, &got, &err), 1);
    assert_non_null(strstr(got.data, "Gloomy 2"));
    /* Search sees the latest version only. */
    cnt = 0;
    assert_int_equal(tr_stix_search(db, "qwertyzzz", NULL, 10, count_row, &cnt, &err), 0);
    assert_int_equal(cnt, 0);
    cnt = 0;
    assert_int_equal(tr_stix_search(db, "gloomy", "malware", 10, count_row, &cnt, &err), 0);
    assert_int_equal(cnt, 1);
    /* Deleting: every version goes, one delete event stays. */
    assert_int_equal(tr_stix_delete(db, "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b", &err), 2);
    assert_int_equal(tr_stix_get(db, "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b", keep_json, &got, &err), 0);
    assert_int_equal(tr_stix_delete(db, "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b", &err), 0);
    int kinds[3] = {0};
    assert_int_equal(tr_stix_changes(db, 0, 100, count_kind, kinds, &err), 0);
    assert_int_equal(kinds[TR_STIX_DELETE], 1);
    assert_int_equal(kinds[TR_STIX_UPDATE], 0);       /* the versions are gone with it */
    assert_int_equal(kinds[TR_STIX_CREATE], 9);       /* the TLP markings */
    assert_true(tr_stix_last_seq(db, &err) >= 12);
    tr_buf_free(&got);
    tr_stix_close(db);
}

static void test_malformed_envelopes(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "[]", "{\"objects\":[]} x", "{\"objects\":[],\"objects\":[]}",
        "{\"objects\":[" MAL(",\"is_family\":true") " " MAL(",\"is_family\":true") "]}",
        "{\"objects\":[" MAL(",\"is_family\":true") ",]}",
        "{\"objects\":[{\"type\":\"malware\",\"type\":\"tool\"}]}",
        "{\"objects\":{}}", "{\"type\":\"bundle\",\"objects\":[]}",
        "{\"objects\":[" MAL(",\"is_family\":true"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tr_stix_bundle b;
        tr_error err;
        if (tr_stix_bundle_parse(bad[i], strlen(bad[i]), &b, &err) == 0)
            fail_msg("accepted malformed bundle %zu: %s", i, bad[i]);
    }
    /* A TAXII envelope is a bundle without type and id. */
    const char *env = "{\"more\":false, \"objects\" : [ " MAL(",\"is_family\":true") " ] }";
    tr_stix_bundle b;
    tr_error err;
    assert_int_equal(tr_stix_bundle_parse(env, strlen(env), &b, &err), 0);
    assert_int_equal(b.n, 1);
    assert_string_equal(b.objects[0].text, MAL(",\"is_family\":true"));
    tr_stix_bundle_free(&b);
}

/* A binary property's base64 is checked by the schema's regular expression;
 * a long one must not be taken for a mismatch (PCRE2's JIT stack ran out at
 * ~5 KB and refused every artifact of a real document). */
static void test_long_binary_property(void **state)
{
    (void)state;
    tr_stix_db *db;
    tr_error err;
    assert_int_equal(tr_stix_open(dir, &db, &err), 0);
    tr_buf b = {0};
    tr_buf_printf(&b, "{\"type\":\"bundle\",\"id\":\"bundle--5b940d41-6f7f-459a-80ea-9c1f17b5891b\","
                      "\"objects\":[{\"type\":\"artifact\",\"spec_version\":\"2.1\","
                      "\"id\":\"artifact--6b940d41-6f7f-459a-80ea-9c1f17b5891b\",\"payload_bin\":\"");
    for (int i = 0; i < 200000; i++)
        tr_buf_append(&b, "QUJD", 4);
    tr_buf_append(&b, "QUI=\"}]}", 8);
    tr_stix_import_result res;
    if (tr_stix_import(db, b.data, b.len, NULL, &res, &err) != 0)
        printf("%s\n", err.msg);
    assert_int_equal(res.added, 1);
    /* ...and a malformed one is still refused */
    b.len -= 8;
    tr_buf_append(&b, "QUI*\"}]}", 8);
    memcpy(strstr(b.data, "artifact--6b94"), "artifact--7b94", 14);
    assert_int_equal(tr_stix_import(db, b.data, b.len, NULL, &res, &err), -1);
    assert_non_null(strstr(err.msg, "payload_bin"));
    tr_buf_free(&b);
    tr_stix_close(db);
}

static void test_neighbours_capped(void **state)
{
    (void)state;
    /* One tool used by 2,100 intrusion sets: the walk stops at 2,000 nodes
     * and keeps no edge to a node it left out. */
    tr_buf b = {0};
    tr_buf_printf(&b, "{\"type\":\"bundle\",\"id\":\"bundle--31b940d4-6f7f-459a-80ea-9c1f17b5891b\",\"objects\":["
                      "{\"type\":\"tool\",\"spec_version\":\"2.1\",\"id\":\"tool--00000000-0000-4000-8000-000000000001\","
                      "\"created\":\"2020-01-01T00:00:00.000Z\",\"modified\":\"2020-01-01T00:00:00.000Z\",\"name\":\"hub\"}");
    for (int i = 0; i < 2100; i++)
        tr_buf_printf(&b, ",{\"type\":\"intrusion-set\",\"spec_version\":\"2.1\",\"id\":\"intrusion-set--00000000-0000-4000-8000-%012d\","
                          "\"created\":\"2020-01-01T00:00:00.000Z\",\"modified\":\"2020-01-01T00:00:00.000Z\",\"name\":\"set %d\"},"
                          "{\"type\":\"relationship\",\"spec_version\":\"2.1\",\"id\":\"relationship--00000000-0000-4000-8000-%012d\","
                          "\"created\":\"2020-01-01T00:00:00.000Z\",\"modified\":\"2020-01-01T00:00:00.000Z\",\"relationship_type\":\"uses\","
                          "\"source_ref\":\"intrusion-set--00000000-0000-4000-8000-%012d\",\"target_ref\":\"tool--00000000-0000-4000-8000-000000000001\"}",
                      i, i, i, i);
    tr_buf_printf(&b, "]}");
    tr_stix_db *db;
    tr_error err;
    assert_int_equal(tr_stix_open(dir, &db, &err), 0);
    tr_stix_import_result res;
    if (tr_stix_import(db, b.data, b.len, NULL, &res, &err) != 0)
        fail_msg("%s", err.msg);
    tr_buf_free(&b);
    json_t *g = NULL;
    assert_int_equal(tr_stix_neighbours(db, "tool--00000000-0000-4000-8000-000000000001", 1, &g, &err), 1);
    assert_true(json_is_true(json_object_get(g, "truncated")));
    assert_int_equal(json_array_size(json_object_get(g, "nodes")), 2000);
    assert_int_equal(json_array_size(json_object_get(g, "edges")), 1999);
    json_decref(g);
    tr_stix_close(db);
}

static void test_attack_bundle(void **state)
{
    (void)state;
    const char *path = TRAWL_SHARED_DIR "/data/attack/enterprise-attack-entities.json";
    if (access(path, R_OK) != 0) {
        print_message("skipped: %s is missing\n", path);
        skip();
    }
    char *text = NULL;
    size_t len = 0;
    tr_error err;
    assert_int_equal(tr_read_file(path, &text, &len, &err), 0);
    tr_stix_db *db;
    assert_int_equal(tr_stix_open(dir, &db, &err), 0);
    tr_stix_import_result res;
    if (tr_stix_import(db, text, len, NULL, &res, &err) != 0)
        fail_msg("ATT&CK import refused: %s", err.msg);
    free(text);
    assert_true(res.upgraded);
    assert_true(res.total > 2000);
    assert_int_equal(res.added, res.total);
    /* FIN12 is an alias of Wizard Spider... */
    tr_buf got = {0};
    assert_int_equal(tr_stix_search(db, "FIN12", "intrusion-set", 1, keep_json, &got, &err), 0);
    json_t *ws = json_loads(got.data, 0, NULL);
    assert_non_null(ws);
    assert_string_equal(json_string_value(json_object_get(ws, "name")), "Wizard Spider");
    json_decref(ws);
    /* ...which uses Conti and Ryuk. */
    json_t *g = NULL;
    assert_int_equal(tr_stix_neighbours(db, "intrusion-set--dd2d9ca6-505b-4860-a604-233685b802c7", 1, &g, &err), 1);
    bool conti = false, ryuk = false;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(g, "nodes"), i, o) {
        const char *name = json_string_value(json_object_get(o, "name"));
        const char *type = json_string_value(json_object_get(o, "type"));
        conti = conti || (name && strcmp(name, "Conti") == 0 && strcmp(type, "malware") == 0);
        ryuk = ryuk || (name && strcmp(name, "Ryuk") == 0 && strcmp(type, "malware") == 0);
    }
    assert_true(conti && ryuk);
    json_decref(g);
    tr_buf_free(&got);
    tr_stix_close(db);
}

/* A status is kept a week: saving one forgets those older, and only those. */
static void test_status_expires(void **state)
{
    (void)state;
    tr_stix_db *db;
    tr_error err;
    assert_int_equal(tr_stix_open(dir, &db, &err), 0);
    json_t *st = json_pack("{s:s,s:s}", "id", "old", "status", "complete");
    assert_int_equal(tr_stix_status_save(db, "old", st, &err), 0);
    assert_int_equal(tr_stix_status_save(db, "recent", st, &err), 0);
    /* Age them behind the store's back: 'old' past the week, 'recent' not. */
    char *path = tr_xasprintf("%s/trawl.db", dir);
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    char *sql = tr_xasprintf("UPDATE stix_status SET created = created - %d WHERE id = 'old';"
                             "UPDATE stix_status SET created = created - %d WHERE id = 'recent';",
                             TR_STIX_STATUS_KEEP + 60, TR_STIX_STATUS_KEEP - 3600);
    assert_int_equal(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    json_t *got = NULL;
    assert_int_equal(tr_stix_status_load(db, "old", &got, &err), 1);   /* not yet swept */
    json_decref(got);
    assert_int_equal(tr_stix_status_save(db, "new", st, &err), 0);
    assert_int_equal(tr_stix_status_load(db, "old", &got, &err), 0);
    assert_int_equal(tr_stix_status_load(db, "recent", &got, &err), 1);
    json_decref(got);
    assert_int_equal(tr_stix_status_load(db, "new", &got, &err), 1);
    json_decref(got);
    json_decref(st);
    free(sql);
    free(path);
    tr_stix_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jcs),
        cmocka_unit_test(test_sco_ids),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_upgrade),
        cmocka_unit_test(test_malformed_envelopes),
        cmocka_unit_test_setup_teardown(test_import_whole_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_binary_property, setup, teardown),
        cmocka_unit_test_setup_teardown(test_neighbours_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attack_bundle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_expires, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
