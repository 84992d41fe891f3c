/* The analysis module on real files built here: shared objects from gcc
 * (telfhash), and a PE signed with osslsigncode under a certificate made
 * with openssl (code-signing certificates). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <png.h>
#include <sqlite3.h>

#include "fixture.h"
#include "analysis/analysis.h"
#include "store/store.h"

static char *scratch;

static int setup(void **state)
{
    (void)state;
    scratch = fixture_scratch_dir("analysis");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return fixture_rm_rf(scratch);
}

static char *path_in(const char *name)
{
    return tr_xasprintf("%s/%s", scratch, name);
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static int run(const char *cmd)
{
    char *quiet = tr_xasprintf("%s >/dev/null 2>&1", cmd);
    int rc = system(quiet);
    free(quiet);
    return rc;
}

static bool have(const char *tool)
{
    char *cmd = tr_xasprintf("command -v %s", tool);
    bool yes = run(cmd) == 0;
    free(cmd);
    return yes;
}

/* Functions telfhash keeps and those its rules drop, in one shared object
 * without libc (no imported symbols beside them). */
static const char *const so_source =
    "void Alpha_Func(void) {}\n"
    "void zeta_func(void) {}\n"
    "void _under(void) {}\n"                       /* starts with _ */
    "void strthing(void) {}\n"                     /* ^str */
    "void memthing(void) {}\n"                     /* ^mem */
    "void thing64(void) {}\n"                      /* 64$ */
    "void puts(void) {}\n"                         /* listed name */
    "void main(void) {}\n"
    "__attribute__((visibility(\"hidden\"))) void hidden_fn(void) {}\n"
    "__attribute__((weak)) void weak_fn(void) {}\n"
    "static void local_fn(void) {}\n"
    "void (*keep)(void) = local_fn;\n"             /* data, not a function */
    "%s";

static char *build_so(const char *name, const char *extra, const char *flags)
{
    char *src = path_in("so.c");
    char *text = tr_xasprintf(so_source, extra);
    write_file(src, text, strlen(text));
    free(text);
    char *out = path_in(name);
    char *cmd = tr_xasprintf("gcc %s -shared -fPIC -nostdlib -o '%s' '%s'", flags, out, src);
    int rc = run(cmd);
    free(cmd);
    free(src);
    if (rc != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static void test_telfhash_symbol_rules(void **state)
{
    (void)state;
    if (!have("gcc"))
        skip();
    char *so = build_so("rules.so", "", "");
    assert_non_null(so);
    size_t n;
    unsigned char *p = fixture_read_file(so, &n);
    char *list = NULL;
    assert_int_equal(tr_telfhash_symbols(p, n, &list), 1);
    assert_string_equal(list, "alpha_func,zeta_func");
    free(list);
    /* Too little text for TLSH (Debian's libtlsh needs 256 bytes). */
    char h[TR_TELFHASH_MAX];
    assert_int_equal(tr_telfhash(p, n, h), 0);
    assert_string_equal(h, "");
    free(p);
    free(so);
}

/* The digest is TLSH of the symbol text as the tlsh tool computes it for the
 * same bytes, lowercased with the "t1" prefix telfhash prints. */
static void test_telfhash_digest(void **state)
{
    (void)state;
    if (!have("gcc") || !have("tlsh")) {
        printf("skipped: needs gcc and tlsh (tlsh-tools)\n");
        skip();
    }
    tr_buf extra = {0}, expect = {0};
    /* Declared out of order: the list must come out sorted. */
    for (int i = 29; i >= 0; i--)
        tr_buf_printf(&extra, "void Telfhash_Probe_Function_%02d(void) {}\n", i);
    tr_buf_append(&extra, "", 1);
    tr_buf_printf(&expect, "alpha_func");
    for (int i = 0; i < 30; i++)
        tr_buf_printf(&expect, ",telfhash_probe_function_%02d", i);
    tr_buf_printf(&expect, ",zeta_func");
    tr_buf_append(&expect, "", 1);
    static const char *const flavours[][2] = {{"64.so", ""}, {"32.so", "-m32"}};
    for (size_t f = 0; f < 2; f++) {
        char *so = build_so(flavours[f][0], extra.data, flavours[f][1]);
        if (!so) {
            printf("note: gcc %s cannot build here; that flavour is not checked\n",
                   flavours[f][1]);
            assert_int_not_equal(f, 0);
            continue;
        }
        size_t n;
        unsigned char *p = fixture_read_file(so, &n);
        char *list = NULL;
        assert_int_equal(tr_telfhash_symbols(p, n, &list), 1);
        assert_string_equal(list, expect.data);

        char *lf = path_in("list.txt");
        write_file(lf, list, strlen(list));
        char *cmd = tr_xasprintf("tlsh -f '%s'", lf);
        FILE *pipe = popen(cmd, "r");
        assert_non_null(pipe);
        char line[256] = "";
        assert_non_null(fgets(line, sizeof line, pipe));
        pclose(pipe);
        line[strcspn(line, "\t \n")] = '\0';
        assert_int_equal(strlen(line), 70);
        char want[TR_TELFHASH_MAX] = "t1";
        for (size_t i = 0; line[i]; i++)
            want[2 + i] = (char)(line[i] >= 'A' && line[i] <= 'F' ? line[i] - 'A' + 'a' : line[i]);

        char h[TR_TELFHASH_MAX];
        assert_int_equal(tr_telfhash(p, n, h), 1);
        assert_string_equal(h, want);
        free(cmd);
        free(lf);
        free(list);
        free(p);
        free(so);
    }
    tr_buf_free(&extra);
    tr_buf_free(&expect);
}

static void test_telfhash_not_elf(void **state)
{
    (void)state;
    static const unsigned char junk[] = "\x7f" "ELF\x02\x01\x01 not really an ELF file at all......";
    char *list = NULL;
    char h[TR_TELFHASH_MAX];
    assert_int_equal(tr_telfhash_symbols(junk, sizeof junk, &list), 0);
    assert_null(list);
    assert_int_equal(tr_telfhash((const unsigned char *)"MZ", 2, h), 0);
}

/* A minimal PE32: headers, one .text section holding "ret". */
static void write_min_pe(const char *path)
{
    unsigned char b[0x400] = {0};
#define LE16(o, v) (b[o] = (unsigned char)(v), b[(o) + 1] = (unsigned char)((v) >> 8))
#define LE32(o, v) (LE16(o, (v) & 0xffff), LE16((o) + 2, ((uint32_t)(v)) >> 16))
    b[0] = 'M', b[1] = 'Z';
    LE32(0x3c, 0x40);
    memcpy(b + 0x40, "PE\0\0", 4);
    LE16(0x44, 0x14c);     /* i386 */
    LE16(0x46, 1);         /* one section */
    LE16(0x54, 0xe0);      /* optional header size */
    LE16(0x56, 0x0102);    /* executable, 32-bit */
    unsigned o = 0x58;
    LE16(o, 0x10b);
    LE32(o + 4, 0x200);             /* SizeOfCode */
    LE32(o + 16, 0x1000);           /* AddressOfEntryPoint */
    LE32(o + 20, 0x1000);           /* BaseOfCode */
    LE32(o + 24, 0x1000);           /* BaseOfData */
    LE32(o + 28, 0x400000);         /* ImageBase */
    LE32(o + 32, 0x1000);           /* SectionAlignment */
    LE32(o + 36, 0x200);            /* FileAlignment */
    LE16(o + 40, 4);                /* OS version */
    LE16(o + 48, 4);                /* subsystem version */
    LE32(o + 56, 0x2000);           /* SizeOfImage */
    LE32(o + 60, 0x200);            /* SizeOfHeaders */
    LE16(o + 68, 2);                /* GUI */
    LE32(o + 72, 0x100000);
    LE32(o + 76, 0x1000);
    LE32(o + 80, 0x100000);
    LE32(o + 84, 0x1000);
    LE32(o + 92, 16);               /* data directories */
    unsigned sh = o + 0xe0;
    memcpy(b + sh, ".text", 5);
    LE32(sh + 8, 0x200);
    LE32(sh + 12, 0x1000);
    LE32(sh + 16, 0x200);
    LE32(sh + 20, 0x200);
    LE32(sh + 36, 0x60000020);
    b[0x200] = 0xc3;
#undef LE16
#undef LE32
    write_file(path, b, sizeof b);
}

static void test_pe_certificates(void **state)
{
    (void)state;
    if (!have("openssl") || !have("osslsigncode")) {
        printf("skipped: needs openssl and osslsigncode\n");
        skip();
    }
    char *pe = path_in("min.exe"), *signed_pe = path_in("signed.exe");
    char *key = path_in("k.pem"), *crt = path_in("c.pem");
    write_min_pe(pe);
    char *cmd = tr_xasprintf("openssl req -x509 -newkey rsa:2048 -nodes -keyout '%s' -out '%s'"
                             " -days 30 -subj '/C=XX/O=Trawl Test/CN=Trawl Test Signer'"
                             " -set_serial 0x0A1234ABCD",
                             key, crt);
    assert_int_equal(run(cmd), 0);
    free(cmd);
    cmd = tr_xasprintf("osslsigncode sign -certs '%s' -key '%s' -in '%s' -out '%s'", crt, key, pe,
                       signed_pe);
    assert_int_equal(run(cmd), 0);
    free(cmd);
    /* The thumbprint as openssl computes it: SHA-256 of the DER certificate
     * (Bazaar's thumbprint_algorithm "SHA256"). */
    cmd = tr_xasprintf("openssl x509 -in '%s' -noout -fingerprint -sha256", crt);
    FILE *pipe = popen(cmd, "r");
    assert_non_null(pipe);
    char line[256] = "";
    assert_non_null(fgets(line, sizeof line, pipe));
    pclose(pipe);
    free(cmd);
    char thumb[80] = "";
    size_t w = 0;
    for (const char *c = strchr(line, '=') + 1; *c && *c != '\n'; c++)
        if (*c != ':' && w < sizeof thumb - 1)
            thumb[w++] = (char)(*c >= 'A' && *c <= 'F' ? *c - 'A' + 'a' : *c);
    thumb[w] = '\0';
    assert_int_equal(strlen(thumb), 64);

    tr_error err;
    tr_binan *a = NULL;
    assert_int_equal(tr_binan_new(&a, &err), 0);
    size_t n;
    unsigned char *p = fixture_read_file(pe, &n);
    tr_bin_info *b = tr_bin_analyze(a, p, n);
    assert_int_equal(b->n_certs, 0);
    tr_bin_info_free(b);
    free(p);

    p = fixture_read_file(signed_pe, &n);
    b = tr_bin_analyze(a, p, n);
    assert_int_equal(b->n_certs, 1);
    const tr_cert *c = &b->certs[0];
    assert_string_equal(c->serial, "0a1234abcd");
    assert_string_equal(c->subject_cn, "Trawl Test Signer");
    assert_string_equal(c->issuer_cn, "Trawl Test Signer");
    assert_non_null(strstr(c->subject, "O=Trawl Test"));
    assert_string_equal(c->thumbprint, thumb);
    assert_string_equal(c->algorithm, "sha256WithRSAEncryption");
    assert_true(c->valid_to - c->valid_from == 30 * 86400);
    assert_true(c->valid_from <= tr_now_unix() && c->valid_from > tr_now_unix() - 3600);
    assert_string_equal(b->telfhash, "");

    json_t *j = json_object();
    tr_bin_info_to_bazaar_json(b, j);
    json_t *cs = json_array_get(json_object_get(j, "code_sign"), 0);
    assert_string_equal(json_string_value(json_object_get(cs, "serial_number")), "0a1234abcd");
    assert_string_equal(json_string_value(json_object_get(cs, "thumbprint")), thumb);
    assert_string_equal(json_string_value(json_object_get(cs, "thumbprint_algorithm")), "SHA256");
    assert_string_equal(json_string_value(json_object_get(cs, "subject_cn")), "Trawl Test Signer");
    assert_true(json_is_null(json_object_get(j, "telfhash")));
    json_decref(j);
    tr_bin_info_free(b);
    free(p);

    /* Dual signing: a second signature nested in the first one's
     * unauthenticated attributes; its certificate gets its SHA-256 too. */
    char *key2 = path_in("k2.pem"), *crt2 = path_in("c2.pem"), *nested = path_in("nested.exe");
    cmd = tr_xasprintf("openssl req -x509 -newkey rsa:2048 -nodes -keyout '%s' -out '%s'"
                       " -days 30 -subj '/CN=Trawl Nested Signer' -set_serial 0x0B0B",
                       key2, crt2);
    assert_int_equal(run(cmd), 0);
    free(cmd);
    cmd = tr_xasprintf("osslsigncode sign -nest -h sha1 -certs '%s' -key '%s' -in '%s' -out '%s'",
                       crt2, key2, signed_pe, nested);
    assert_int_equal(run(cmd), 0);
    free(cmd);
    cmd = tr_xasprintf("openssl x509 -in '%s' -noout -fingerprint -sha256", crt2);
    pipe = popen(cmd, "r");
    assert_non_null(pipe);
    assert_non_null(fgets(line, sizeof line, pipe));
    pclose(pipe);
    free(cmd);
    char thumb2[80] = "";
    w = 0;
    for (const char *c2 = strchr(line, '=') + 1; *c2 && *c2 != '\n'; c2++)
        if (*c2 != ':' && w < sizeof thumb2 - 1)
            thumb2[w++] = (char)(*c2 >= 'A' && *c2 <= 'F' ? *c2 - 'A' + 'a' : *c2);
    thumb2[w] = '\0';
    p = fixture_read_file(nested, &n);
    b = tr_bin_analyze(a, p, n);
    assert_int_equal(b->n_certs, 2);
    for (size_t i = 0; i < 2; i++)
        assert_string_equal(b->certs[i].thumbprint,
                            strcmp(b->certs[i].serial, "0b0b") == 0 ? thumb2 : thumb);
    assert_string_not_equal(b->certs[0].serial, b->certs[1].serial);
    tr_bin_info_free(b);
    free(p);
    free(key2);
    free(crt2);
    free(nested);

    tr_binan_free(a);
    free(pe);
    free(signed_pe);
    free(key);
    free(crt);
}

static void test_cert_cn(void **state)
{
    (void)state;
    char *cn = tr_cert_cn("/C=US/O=Example Corp/CN=Example Signing CA/OU=x");
    assert_string_equal(cn, "Example Signing CA");
    free(cn);
    cn = tr_cert_cn("/C=US/O=No Common Name");
    assert_string_equal(cn, "/C=US/O=No Common Name");
    free(cn);
}

/* The store keeps what the analysis found for a new sample, and finds the
 * sample back by each key. */
static void test_store_keeps_results(void **state)
{
    (void)state;
    if (!have("gcc"))
        skip();
    tr_buf extra = {0};
    for (int i = 0; i < 30; i++)
        tr_buf_printf(&extra, "void stored_probe_function_%02d(void) {}\n", i);
    tr_buf_append(&extra, "", 1);
    char *so = build_so("stored.so", extra.data, "");
    tr_buf_free(&extra);
    assert_non_null(so);
    size_t n;
    unsigned char *p = fixture_read_file(so, &n);
    char want[TR_TELFHASH_MAX];
    assert_int_equal(tr_telfhash(p, n, want), 1);
    free(p);

    char *dir = path_in("store");
    tr_error err;
    tr_store *s = NULL;
    assert_int_equal(tr_store_open(dir, TR_STORE_CREATE, &s, &err), 0);
    tr_analyzer *an = NULL;
    assert_int_equal(tr_analyzer_new(&an, &err), 0);
    tr_staged st;
    assert_int_equal(tr_store_stage_path(s, an, so, &st, &err), 0);
    /* Analysed while staging (ingest's parallel workers); the commit keeps it. */
    assert_non_null(st.bin);
    assert_string_equal(st.bin->telfhash, want);
    tr_ingest_meta m = {.file_name = "stored.so"};
    tr_ingest_result res;
    assert_int_equal(tr_store_commit(s, &st, &m, 1, &res, &err), 0);
    int64_t *ids = NULL;
    size_t nids = 0;
    char upper[TR_TELFHASH_MAX];
    for (size_t i = 0; i < sizeof upper; i++)
        upper[i] = (char)(want[i] >= 'a' && want[i] <= 'f' ? want[i] - 'a' + 'A' : want[i]);
    assert_int_equal(tr_store_analysis_ids(s, TR_AKEY_TELFHASH, upper, 10, &ids, &nids, &err), 0);
    assert_int_equal(nids, 1);
    assert_int_equal(ids[0], res.id);
    free(ids);
    tr_sample *x = NULL;
    assert_int_equal(tr_store_get_by_id(s, res.id, &x, &err), 1);
    assert_non_null(x->bin);
    assert_string_equal(x->bin->telfhash, want);
    json_t *j = tr_sample_to_json(x);
    assert_string_equal(json_string_value(json_object_get(j, "telfhash")), want);
    assert_true(json_is_null(json_object_get(j, "code_sign")));
    json_decref(j);
    tr_sample_free(x);

    /* A backfill has nothing to do for an analysed sample; --all redoes it. */
    int64_t done = -1;
    assert_int_equal(tr_store_analyze_backfill(s, false, NULL, NULL, &done, NULL, &err), 0);
    assert_int_equal(done, 0);
    assert_int_equal(tr_store_analyze_backfill(s, true, NULL, NULL, &done, NULL, &err), 0);
    assert_int_equal(done, 1);
    tr_analyzer_free(an);
    tr_store_close(s);
    free(dir);
    free(so);
}

/* A store filled by an older trawl: `trawl analyze` derives the type columns
 * again (and says how many changed); a script type the upload's file name
 * gave stays. */
static void stage_commit(tr_store *s, tr_analyzer *an, const char *name, const char *text,
                         int64_t *id)
{
    char *path = path_in(name);
    write_file(path, text, strlen(text));
    tr_error err;
    tr_staged st;
    assert_int_equal(tr_store_stage_path(s, an, path, &st, &err), 0);
    tr_ingest_meta m = {.file_name = name};
    tr_ingest_result res;
    assert_int_equal(tr_store_commit(s, &st, &m, 1, &res, &err), 0);
    *id = res.id;
    free(path);
}

static void types_of(tr_store *s, int64_t id, char out[3][256])
{
    tr_sample *x = NULL;
    tr_error err;
    assert_int_equal(tr_store_get_by_id(s, id, &x, &err), 1);
    snprintf(out[0], 256, "%s", x->mime);
    snprintf(out[1], 256, "%s", x->magic);
    snprintf(out[2], 256, "%s", x->file_type);
    tr_sample_free(x);
}

static void test_backfill_rederives_types(void **state)
{
    (void)state;
    char *dir = path_in("retype");
    tr_error err;
    tr_store *s = NULL;
    assert_int_equal(tr_store_open(dir, TR_STORE_CREATE, &s, &err), 0);
    tr_analyzer *an = NULL;
    assert_int_equal(tr_analyzer_new(&an, &err), 0);
    int64_t txt, js;
    stage_commit(s, an, "notes.txt", "plain words for a plain text file\n", &txt);
    stage_commit(s, an, "dropper.js", "var a = 1;\nvar b = a + 1;\n", &js);
    char want_txt[3][256], want_js[3][256], got[3][256];
    types_of(s, txt, want_txt);
    types_of(s, js, want_js);
    assert_string_equal(want_txt[2], "txt");
    assert_string_equal(want_js[2], "js");
    tr_store_close(s);

    /* What an older version left: other answers, an older analysis. */
    char *db_path = tr_xasprintf("%s/trawl.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    char *sql = sqlite3_mprintf(
        "UPDATE samples SET mime='application/octet-stream', magic='data', file_type='bin'"
        " WHERE id=%lld; UPDATE samples SET magic='old answer' WHERE id=%lld;"
        " UPDATE sample_analysis SET version=%d",
        (long long)txt, (long long)js, TR_ANALYSIS_VERSION - 1);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_free(sql);
    sqlite3_close(db);
    free(db_path);

    assert_int_equal(tr_store_open(dir, 0, &s, &err), 0);
    int64_t done = -1, retyped = -1;
    assert_int_equal(tr_store_analyze_backfill(s, false, NULL, NULL, &done, &retyped, &err), 0);
    assert_int_equal(done, 2);
    assert_int_equal(retyped, 2);
    types_of(s, txt, got);
    for (int c = 0; c < 3; c++)
        assert_string_equal(got[c], want_txt[c]);
    types_of(s, js, got);
    for (int c = 0; c < 3; c++)
        assert_string_equal(got[c], want_js[c]);
    /* Nothing left to do; redoing all changes no type. */
    assert_int_equal(tr_store_analyze_backfill(s, false, NULL, NULL, &done, &retyped, &err), 0);
    assert_int_equal(done, 0);
    assert_int_equal(tr_store_analyze_backfill(s, true, NULL, NULL, &done, &retyped, &err), 0);
    assert_int_equal(done, 2);
    assert_int_equal(retyped, 0);
    tr_analyzer_free(an);
    tr_store_close(s);
    free(dir);
}

/* A pclntab as the Go linker lays it out, for names chosen to exercise
 * gimphash's rules, behind Go's build-info marker (as in any Go binary). */
static size_t build_pclntab(int ver, const char *const *names, size_t nnames, unsigned char *out)
{
    size_t ps = 8, field = ver == 118 ? 4 : ps;
    unsigned char *t = out + 16;
    memcpy(out, "\xff Go buildinf:", 14);
    out[14] = out[15] = 0;
    memset(t, 0, 8);
    t[0] = ver == 118 ? 0xf0 : ver == 116 ? 0xfa : 0xfb;
    t[1] = t[2] = t[3] = 0xff;
    t[6] = 1;
    t[7] = (unsigned char)ps;
#define PUT(off, v, w)                                                                 \
    do {                                                                               \
        for (size_t k_ = 0; k_ < (w); k_++)                                            \
            t[(off) + k_] = (unsigned char)((uint64_t)(v) >> (8 * k_));                \
    } while (0)
    size_t nametab = ver == 12 ? 0 : 8 + 8 * ps;
    size_t pos = ver == 12 ? 8 + ps + (2 * nnames + 1) * field : nametab;
    size_t nameoff[16];
    size_t names_at = pos;
    for (size_t i = 0; i < nnames; i++) {
        nameoff[i] = pos - nametab;
        memcpy(t + pos, names[i], strlen(names[i]) + 1);
        pos += strlen(names[i]) + 1;
    }
    (void)names_at;
    size_t functab = ver == 12 ? 8 + ps : pos;
    size_t funcdata = ver == 12 ? 0 : functab;
    if (ver != 12)
        pos = functab + (2 * nnames + 1) * field;
    for (size_t i = 0; i < nnames; i++) {
        size_t rec = pos;
        PUT(functab + 2 * i * field, 0x1000 + 16 * i, field);
        PUT(functab + (2 * i + 1) * field, rec - funcdata, field);
        PUT(rec, 0x1000 + 16 * i, field);
        PUT(rec + field, nameoff[i], 4);
        pos = rec + field + 4;
    }
    PUT(8, nnames, ps);
    if (ver == 118) {
        PUT(8 + 3 * ps, nametab, ps);
        PUT(8 + 7 * ps, functab, ps);
    } else if (ver == 116) {
        PUT(8 + 2 * ps, nametab, ps);
        PUT(8 + 6 * ps, functab, ps);
    }
#undef PUT
    return 16 + pos;
}

static void test_gimphash_rules(void **state)
{
    (void)state;
    static const char *const names[] = {
        "main.Run",                                   /* kept */
        "main.run",                                   /* unexported */
        "github.com/x/y.(*Client).Do",                /* kept */
        "github.com/x/y.(*Client).do",                /* unexported method */
        "vendor/golang.org/x/net/http2.NewFramer",    /* kept without vendor/ */
        "internal/poll.Open",                         /* internal */
        "runtime.Gosched",                            /* runtime */
        "timeout.Set",                                /* "time" prefix: dropped too */
        "go.buildid",                                 /* compiler artefact */
        "type..eq.main.T",                            /* compiler artefact */
        "fmt.Println",                                /* kept */
    };
    const char *want = "main.Run\ngithub.com/x/y.(*Client).Do\ngolang.org/x/net/http2.NewFramer"
                       "\nfmt.Println";
    char digest[TR_SHA256_HEX];
    const char *concat = "main.Rungithub.com/x/y.(*Client).Dogolang.org/x/net/http2.NewFramer"
                         "fmt.Println";
    tr_sha256_hex(concat, strlen(concat), digest);
    static const int versions[] = {12, 116, 118};
    for (size_t v = 0; v < 3; v++) {
        unsigned char buf[4096] = {0};
        size_t n = build_pclntab(versions[v], names, sizeof names / sizeof names[0], buf);
        char *list = NULL;
        assert_int_equal(tr_gimphash_names(buf, n, &list), 1);
        assert_string_equal(list, want);
        free(list);
        char h[TR_SHA256_HEX];
        assert_int_equal(tr_gimphash(buf, n, h), 1);
        assert_string_equal(h, digest);
        if (v == 2) {
            char *seed = path_in("pclntab.bin");
            write_file(seed, buf, n);
            free(seed);
        }
        /* A name offset past the table's end: not a table. */
        buf[n - 1] = 0x7f;
        assert_int_equal(tr_gimphash(buf, n, h), 0);
    }
}

/* ---- icons ------------------------------------------------------------- */

typedef struct icon_image {
    unsigned w, h, bpp, id;
    unsigned char *data;
    size_t len;
} icon_image;

/* Grey level of the pattern at pixel (x, y) of a w x h image made of 9x8
 * uniform cells; flip: the mirror image (so its dhash differs). */
static unsigned cell_value(unsigned cx, unsigned cy, bool flip)
{
    if (flip)
        cx = 8 - cx;
    return (cx * 37 + cy * 91 + (cx * cy) % 7 * 29) % 256;
}

static unsigned pattern(unsigned x, unsigned y, unsigned w, unsigned h, bool flip)
{
    return cell_value(x * 9 / w, y * 8 / h, flip);
}

/* The dhash the pattern must give, from its cells alone. */
static void pattern_dhash(bool flip, char out[TR_DHASH_HEX])
{
    uint64_t bits = 0;
    for (unsigned y = 0; y < 8; y++)
        for (unsigned x = 0; x < 8; x++)
            bits = bits << 1 | (cell_value(x + 1, y, flip) > cell_value(x, y, flip));
    snprintf(out, TR_DHASH_HEX, "%016llx", (unsigned long long)bits);
}

/* An icon DIB: header, palette for 8 bpp (grey ramp), XOR rows bottom-up,
 * AND mask. */
static icon_image dib_icon(unsigned w, unsigned h, unsigned bpp, unsigned id, bool flip)
{
    size_t colours = bpp == 8 ? 256 : 0;
    size_t stride = ((size_t)w * bpp + 31) / 32 * 4, mask = ((size_t)w + 31) / 32 * 4;
    size_t len = 40 + colours * 4 + stride * h + mask * h;
    unsigned char *d = tr_xcalloc(1, len);
    d[0] = 40;
    d[4] = (unsigned char)w;
    d[8] = (unsigned char)(2 * h);
    d[9] = (unsigned char)((2 * h) >> 8);
    d[12] = 1;
    d[14] = (unsigned char)bpp;
    for (size_t c = 0; c < colours; c++)
        d[40 + 4 * c] = d[41 + 4 * c] = d[42 + 4 * c] = (unsigned char)c;
    unsigned char *bits = d + 40 + colours * 4;
    for (unsigned y = 0; y < h; y++) {
        unsigned char *row = bits + stride * (h - 1 - y);
        for (unsigned x = 0; x < w; x++) {
            unsigned v = pattern(x, y, w, h, flip);
            if (bpp == 8)
                row[x] = (unsigned char)v;
            else
                for (unsigned k = 0; k < bpp / 8; k++)
                    row[x * (bpp / 8) + k] = (unsigned char)(k == 3 ? 255 : v);
        }
    }
    return (icon_image){w, h, bpp, id, d, len};
}

static icon_image png_icon(unsigned w, unsigned h, unsigned id, bool flip)
{
    unsigned char *rgba = tr_xmalloc((size_t)w * h * 4);
    for (unsigned y = 0; y < h; y++)
        for (unsigned x = 0; x < w; x++) {
            unsigned char *px = rgba + ((size_t)y * w + x) * 4;
            px[0] = px[1] = px[2] = (unsigned char)pattern(x, y, w, h, flip);
            px[3] = 255;
        }
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = w;
    img.height = h;
    img.format = PNG_FORMAT_RGBA;
    png_alloc_size_t len = 0;
    assert_true(png_image_write_to_memory(&img, NULL, &len, 0, rgba, 0, NULL));
    unsigned char *d = tr_xmalloc(len);
    assert_true(png_image_write_to_memory(&img, d, &len, 0, rgba, 0, NULL));
    free(rgba);
    return (icon_image){w, h, 32, id, d, len};
}

#define LE16(b, o, v) ((b)[o] = (unsigned char)(v), (b)[(o) + 1] = (unsigned char)((v) >> 8))
#define LE32(b, o, v) (LE16(b, o, (v) & 0xffff), LE16(b, (o) + 2, ((uint32_t)(v)) >> 16))

/* A PE32 with .text and a .rsrc holding one RT_GROUP_ICON (id 1) over the
 * images, each an RT_ICON with its own id. Written to path. */
static void write_icon_pe(const char *path, const icon_image *img, size_t n)
{
    /* .rsrc: root (2 types), RT_ICON dir (n names), RT_GROUP_ICON dir (1),
     * a language dir per resource, data entries, then the data. */
    size_t nres = n + 1;
    size_t root = 0, dir_icon = 16 + 2 * 8, dir_group = dir_icon + 16 + n * 8;
    size_t langs = dir_group + 16 + 8, entries = langs + nres * (16 + 8);
    size_t data = entries + nres * 16;
    size_t group_len = 6 + 14 * n, total = data + group_len;
    for (size_t i = 0; i < n; i++)
        total += img[i].len + 8;
    size_t raw = (total + 0x1ff) & ~(size_t)0x1ff;
    unsigned char *b = tr_xcalloc(1, 0x400 + raw);
    unsigned char *r = b + 0x400;
    const uint32_t rva = 0x2000;
    LE16(r, root + 14, 2);
    LE32(r, root + 16, 3);
    LE32(r, root + 20, 0x80000000u | (uint32_t)dir_icon);
    LE32(r, root + 24, 14);
    LE32(r, root + 28, 0x80000000u | (uint32_t)dir_group);
    LE16(r, dir_icon + 14, n);
    LE16(r, dir_group + 14, 1);
    size_t at = data + group_len;
    for (size_t k = 0; k < nres; k++) {
        size_t lang = langs + k * 24, entry = entries + k * 16;
        if (k < n) {
            LE32(r, dir_icon + 16 + k * 8, img[k].id);
            LE32(r, dir_icon + 20 + k * 8, 0x80000000u | (uint32_t)lang);
        } else {
            LE32(r, dir_group + 16, 1);
            LE32(r, dir_group + 20, 0x80000000u | (uint32_t)lang);
        }
        LE16(r, lang + 14, 1);
        LE32(r, lang + 16, 0x409);
        LE32(r, lang + 20, entry);
        if (k < n) {
            memcpy(r + at, img[k].data, img[k].len);
            LE32(r, entry, rva + at);
            LE32(r, entry + 4, img[k].len);
            at += (img[k].len + 7) & ~(size_t)7;
        } else {
            LE32(r, entry, rva + data);
            LE32(r, entry + 4, group_len);
        }
    }
    unsigned char *g = r + data;
    LE16(g, 2, 1);
    LE16(g, 4, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char *e = g + 6 + 14 * i;
        e[0] = (unsigned char)(img[i].w & 0xff);
        e[1] = (unsigned char)(img[i].h & 0xff);
        LE16(e, 4, 1);
        LE16(e, 6, img[i].bpp);
        LE32(e, 8, img[i].len);
        LE16(e, 12, img[i].id);
    }
    /* Headers as write_min_pe, plus a second section and the resource
     * data directory. */
    b[0] = 'M', b[1] = 'Z';
    LE32(b, 0x3c, 0x40);
    memcpy(b + 0x40, "PE\0\0", 4);
    LE16(b, 0x44, 0x14c);
    LE16(b, 0x46, 2);
    LE16(b, 0x54, 0xe0);
    LE16(b, 0x56, 0x0102);
    unsigned o = 0x58;
    LE16(b, o, 0x10b);
    LE32(b, o + 4, 0x200);
    LE32(b, o + 16, 0x1000);
    LE32(b, o + 20, 0x1000);
    LE32(b, o + 24, 0x2000);
    LE32(b, o + 28, 0x400000);
    LE32(b, o + 32, 0x1000);
    LE32(b, o + 36, 0x200);
    LE16(b, o + 40, 4);
    LE16(b, o + 48, 4);
    LE32(b, o + 56, 0x2000 + ((raw + 0xfff) & ~(size_t)0xfff));
    LE32(b, o + 60, 0x200);
    LE16(b, o + 68, 2);
    LE32(b, o + 92, 16);
    LE32(b, o + 96 + 2 * 8, rva);
    LE32(b, o + 100 + 2 * 8, total);
    unsigned sh = o + 0xe0;
    memcpy(b + sh, ".text", 5);
    LE32(b, sh + 8, 0x200);
    LE32(b, sh + 12, 0x1000);
    LE32(b, sh + 16, 0x200);
    LE32(b, sh + 20, 0x200);
    LE32(b, sh + 36, 0x60000020);
    sh += 40;
    memcpy(b + sh, ".rsrc", 5);
    LE32(b, sh + 8, total);
    LE32(b, sh + 12, rva);
    LE32(b, sh + 16, raw);
    LE32(b, sh + 20, 0x400);
    LE32(b, sh + 36, 0x40000040);
    b[0x200] = 0xc3;
    write_file(path, b, 0x400 + raw);
    free(b);
}

static void test_dhash_icon(void **state)
{
    (void)state;
    char want[TR_DHASH_HEX], mirrored[TR_DHASH_HEX];
    pattern_dhash(false, want);
    pattern_dhash(true, mirrored);
    assert_string_not_equal(want, mirrored);
    tr_error err;
    tr_binan *a = NULL;
    assert_int_equal(tr_binan_new(&a, &err), 0);
    /* The largest image is the icon, whatever its encoding or position;
     * the smaller ones carry the mirrored pattern. 18x16 and 36x32 divide
     * into the 9x8 cells exactly. */
    icon_image sets[][3] = {
        {dib_icon(18, 16, 32, 1, true), png_icon(36, 32, 2, false), dib_icon(18, 16, 8, 3, true)},
        {png_icon(18, 16, 7, true), dib_icon(36, 32, 24, 5, false), dib_icon(18, 16, 32, 6, true)},
        {dib_icon(18, 16, 24, 9, true), dib_icon(18, 16, 32, 8, true), dib_icon(36, 32, 8, 4, false)},
    };
    for (size_t s = 0; s < 3; s++) {
        char *path = path_in("icon.exe");
        write_icon_pe(path, sets[s], 3);
        size_t n;
        unsigned char *p = fixture_read_file(path, &n);
        tr_bin_info *b = tr_bin_analyze(a, p, n);
        assert_string_equal(b->dhash_icon, want);
        json_t *j = json_object();
        tr_bin_info_to_bazaar_json(b, j);
        assert_string_equal(json_string_value(json_object_get(j, "dhash_icon")), want);
        json_decref(j);
        tr_bin_info_free(b);
        free(p);
        free(path);
        for (size_t i = 0; i < 3; i++) {
            char h[TR_DHASH_HEX];
            assert_int_equal(tr_icon_image_dhash(sets[s][i].data, sets[s][i].len, h), 1);
            assert_string_equal(h, sets[s][i].w == 36 ? want : mirrored);
            free(sets[s][i].data);
        }
    }
    /* No icon: no dhash. */
    char *pe = path_in("plain.exe");
    write_min_pe(pe);
    size_t n;
    unsigned char *p = fixture_read_file(pe, &n);
    tr_bin_info *b = tr_bin_analyze(a, p, n);
    assert_string_equal(b->dhash_icon, "");
    tr_bin_info_free(b);
    free(p);
    free(pe);
    char h[TR_DHASH_HEX];
    assert_int_equal(tr_icon_image_dhash((const unsigned char *)"\x89PNG\r\n\x1a\nbroken", 14, h), 0);
    tr_binan_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_telfhash_symbol_rules),
        cmocka_unit_test(test_telfhash_digest),
        cmocka_unit_test(test_telfhash_not_elf),
        cmocka_unit_test(test_pe_certificates),
        cmocka_unit_test(test_cert_cn),
        cmocka_unit_test(test_store_keeps_results),
        cmocka_unit_test(test_backfill_rederives_types),
        cmocka_unit_test(test_gimphash_rules),
        cmocka_unit_test(test_dhash_icon),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
