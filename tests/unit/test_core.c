/* core: digests against published and reference-tool vectors, helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <zip.h>

#include "fixture.h"

#include "core/core.h"

/* The input the ssdeep and TLSH vectors below were computed on with the
 * reference tools (`ssdeep -b`, `tlsh_unittest -f`): 20000 bytes of an LCG. */
static unsigned char *vector_input(size_t *n)
{
    *n = 20000;
    unsigned char *p = tr_xmalloc(*n);
    uint32_t x = 12345;
    for (size_t i = 0; i < *n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (unsigned char)(((x >> 16) & 0x3f) | 0x40);
    }
    return p;
}

static void test_digests_abc(void **state)
{
    (void)state;
    tr_digests d;
    tr_digest_buffer("abc", 3, &d);
    assert_string_equal(d.md5, "900150983cd24fb0d6963f7d28e17f72");
    assert_string_equal(d.sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_string_equal(d.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_string_equal(d.sha3_384, "ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e49be4b2"
                                    "98d88cea927ac7f539f1edf228376d25");
    assert_int_equal(d.size, 3);
    /* TLSH declines inputs this short; ssdeep still answers. */
    assert_string_equal(d.tlsh, "");
    assert_string_equal(d.ssdeep, "3:uG:uG"); /* ssdeep -b on "abc" */
}

static void test_digests_empty(void **state)
{
    (void)state;
    tr_digests d;
    tr_digest_buffer("", 0, &d);
    assert_string_equal(d.md5, "d41d8cd98f00b204e9800998ecf8427e");
    assert_string_equal(d.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(d.size, 0);
}

static void test_fuzzy_vectors(void **state)
{
    (void)state;
    size_t n;
    unsigned char *p = vector_input(&n);
    tr_digests d;
    tr_digest_buffer(p, n, &d);
    assert_string_equal(d.sha256, "f5a4fe54d4844f65f97441f3954227ff4be304d9d7a6e9d656ae83b4fe5a1715");
    assert_string_equal(d.sha3_384, "5d435d11f549f982cec8c2bfded77640651cfdc15dc0c90b3dd4ac70a646d412"
                                    "722c6eaae60e3928727335a797cc8b4b");
    assert_string_equal(d.ssdeep, "384:7JVqJDC9rsYYiPb1OOmw3PHrnvkjURMTZLh69GKg2KUm5+19/:"
                                  "7rbrsYYiPbkwfrnMwGR+11");
    assert_string_equal(d.tlsh, "T17492D0159CC2EE90E9E54458F94A37C07C07C4A28CD628733B9A7B66FECB50A849CB45");
    free(p);
}

/* Feeding the bytes in odd-sized pieces must give the one-shot answer. */
static void test_streaming_equals_oneshot(void **state)
{
    (void)state;
    size_t n;
    unsigned char *p = vector_input(&n);
    tr_digests one, many;
    tr_digest_buffer(p, n, &one);
    tr_hasher *h = tr_hasher_new();
    size_t off = 0, step = 1;
    while (off < n) {
        size_t k = step < n - off ? step : n - off;
        tr_hasher_update(h, p + off, k);
        off += k;
        step = step * 3 + 1;
    }
    tr_hasher_final(h, &many);
    tr_hasher_free(h);
    assert_memory_equal(&one, &many, sizeof one);
    free(p);
}

static void test_hash_normalize(void **state)
{
    (void)state;
    char out[TR_SHA256_HEX];
    assert_int_equal(tr_hash_normalize("900150983CD24FB0D6963F7D28E17F72", out, sizeof out), 32);
    assert_string_equal(out, "900150983cd24fb0d6963f7d28e17f72");
    assert_int_equal(tr_hash_normalize("a9993e364706816aba3e25717850c26c9cd0d89d", out, sizeof out), 40);
    assert_int_equal(tr_hash_normalize("xyz", out, sizeof out), 0);
    assert_int_equal(tr_hash_normalize("900150983cd24fb0d6963f7d28e17f7g", out, sizeof out), 0);
    assert_int_equal(tr_hash_normalize("900150983cd24fb0d6963f7d28e17f7", out, sizeof out), 0);
}

static void test_error_prefix(void **state)
{
    (void)state;
    tr_error e;
    tr_fail(&e, "disk full");
    tr_error_prefix(&e, "/data/x");
    assert_string_equal(e.msg, "/data/x: disk full");
    char longp[2000];
    memset(longp, 'p', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    tr_error_prefix(&e, longp);
    assert_int_equal(strlen(e.msg), sizeof e.msg - 1);
}

static void test_buf_and_time(void **state)
{
    (void)state;
    tr_buf b = {0};
    for (int i = 0; i < 1000; i++)
        tr_buf_printf(&b, "%d,", i);
    assert_int_equal(b.len, strlen(b.data));
    assert_memory_equal(b.data + b.len - 4, "999,", 4);
    tr_buf_free(&b);
    char t[32];
    tr_format_time(0, t);
    assert_string_equal(t, "1970-01-01 00:00:00");
    tr_format_time(1764244800, t);
    assert_string_equal(t, "2025-11-27 12:00:00");
}

/* An AES-256 zip that libzip itself opens only with the right password. */
static void test_zip_aes(void **state)
{
    (void)state;
    char dir[] = "/tmp/trawl-test-zip-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *in = tr_xasprintf("%s/in.bin", dir), *out = tr_xasprintf("%s/out.zip", dir);
    FILE *f = fopen(in, "wb");
    assert_non_null(f);
    fputs("MZ pretend malware", f);
    fclose(f);
    tr_zip_entry e = {"sample.exe", in};
    tr_error err;
    assert_int_equal(tr_zip_write_aes(out, &e, 1, "infected", &err), 0);
    int zerr = 0;
    zip_t *za = zip_open(out, ZIP_RDONLY, &zerr);
    assert_non_null(za);
    assert_int_equal(zip_get_num_entries(za, 0), 1);
    zip_stat_t st;
    assert_int_equal(zip_stat_index(za, 0, 0, &st), 0);
    assert_int_equal(st.encryption_method, ZIP_EM_AES_256);
    assert_null(zip_fopen_index_encrypted(za, 0, 0, "wrong"));
    zip_file_t *zf = zip_fopen_index_encrypted(za, 0, 0, "infected");
    assert_non_null(zf);
    char buf[64] = {0};
    assert_int_equal(zip_fread(zf, buf, sizeof buf), 18);
    assert_string_equal(buf, "MZ pretend malware");
    zip_fclose(zf);
    zip_close(za);
    e.path = "/nonexistent/file";
    assert_int_equal(tr_zip_write_aes(out, &e, 1, "infected", &err), -1);
    char *cmd = tr_xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(in);
    free(out);
}

/* The streamed archive, read in odd piece sizes, is exactly as long as
 * announced, and libzip (an independent reader) opens every entry with the
 * right password only, bytes intact: empty, one byte, and several 64 KiB
 * chunks long. */
static void test_zip_stream(void **state)
{
    (void)state;
    char dir[] = "/tmp/trawl-test-zips-XXXXXX";
    assert_non_null(mkdtemp(dir));
    static const size_t sizes[] = {0, 1, 3 * 65536 + 5, 65536};
    enum { N = sizeof sizes / sizeof sizes[0] };
    tr_zip_entry e[N];
    char *paths[N], *names[N];
    unsigned char *data[N];
    uint64_t seed = 42;
    for (size_t i = 0; i < N; i++) {
        paths[i] = tr_xasprintf("%s/in%zu", dir, i);
        names[i] = tr_xasprintf("s\xc3\xa9%zu.bin", i);
        data[i] = tr_xmalloc(sizes[i] + 1);
        for (size_t k = 0; k < sizes[i]; k++)
            data[i][k] = (unsigned char)fixture_rnd(&seed);
        FILE *f = fopen(paths[i], "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(data[i], 1, sizes[i], f), sizes[i]);
        fclose(f);
        e[i] = (tr_zip_entry){names[i], paths[i]};
    }
    tr_error err;
    tr_zip_stream *z = NULL;
    assert_int_equal(tr_zip_stream_new(e, N, "infected", &z, &err), 0);
    uint64_t size = tr_zip_stream_size(z);
    char *out = tr_xasprintf("%s/out.zip", dir);
    FILE *f = fopen(out, "wb");
    assert_non_null(f);
    static const size_t pieces[] = {1, 7, 4093, 65536, 100000};
    char *buf = tr_xmalloc(100000);
    uint64_t total = 0;
    for (size_t k = 0;; k++) {
        ssize_t n = tr_zip_stream_read(z, buf, pieces[k % 5], &err);
        assert_true(n >= 0);
        if (n == 0)
            break;
        assert_int_equal(fwrite(buf, 1, (size_t)n, f), (size_t)n);
        total += (uint64_t)n;
    }
    fclose(f);
    tr_zip_stream_free(z);
    assert_int_equal(total, size);
    int zerr = 0;
    zip_t *za = zip_open(out, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
    assert_non_null(za);
    assert_int_equal(zip_get_num_entries(za, 0), N);
    for (size_t i = 0; i < N; i++) {
        zip_stat_t st;
        assert_int_equal(zip_stat_index(za, i, 0, &st), 0);
        assert_string_equal(st.name, names[i]);
        assert_int_equal(st.size, sizes[i]);
        assert_int_equal(st.encryption_method, ZIP_EM_AES_256);
        assert_null(zip_fopen_index_encrypted(za, i, 0, "wrong"));
        zip_file_t *zf = zip_fopen_index_encrypted(za, i, 0, "infected");
        assert_non_null(zf);
        unsigned char *got = tr_xmalloc(sizes[i] + 1);
        assert_int_equal(zip_fread(zf, got, sizes[i] + 1), (zip_int64_t)sizes[i]);
        assert_memory_equal(got, data[i], sizes[i]);
        zip_fclose(zf);
        free(got);
    }
    zip_close(za);
    /* A file gone since the listing fails the stream, not the process. */
    assert_int_equal(tr_zip_stream_new(e, N, "infected", &z, &err), 0);
    unlink(paths[2]);
    ssize_t n;
    while ((n = tr_zip_stream_read(z, buf, 65536, &err)) > 0)
        ;
    assert_int_equal(n, -1);
    tr_zip_stream_free(z);
    for (size_t i = 0; i < N; i++) {
        free(paths[i]);
        free(names[i]);
        free(data[i]);
    }
    free(buf);
    char *cmd = tr_xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digests_abc),
        cmocka_unit_test(test_digests_empty),
        cmocka_unit_test(test_fuzzy_vectors),
        cmocka_unit_test(test_streaming_equals_oneshot),
        cmocka_unit_test(test_hash_normalize),
        cmocka_unit_test(test_error_prefix),
        cmocka_unit_test(test_buf_and_time),
        cmocka_unit_test(test_zip_aes),
        cmocka_unit_test(test_zip_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
