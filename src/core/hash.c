#include "core/core.h"

#include <ctype.h>
#include <fuzzy.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

struct tr_hasher {
    EVP_MD_CTX *md5, *sha1, *sha256, *sha3;
    struct fuzzy_state *ssdeep;
    tr_tlsh *tlsh;
    uint64_t size;
};

static EVP_MD_CTX *md_new(const EVP_MD *md)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || EVP_DigestInit_ex(c, md, NULL) != 1)
        tr_die("OpenSSL cannot initialise a digest");
    return c;
}

tr_hasher *tr_hasher_new(void)
{
    tr_hasher *h = tr_xcalloc(1, sizeof *h);
    h->md5 = md_new(EVP_md5());
    h->sha1 = md_new(EVP_sha1());
    h->sha256 = md_new(EVP_sha256());
    h->sha3 = md_new(EVP_sha3_384());
    h->ssdeep = fuzzy_new();
    h->tlsh = tr_tlsh_new();
    if (!h->ssdeep || !h->tlsh)
        tr_die("out of memory creating fuzzy hash state");
    return h;
}

void tr_hasher_update(tr_hasher *h, const void *p, size_t n)
{
    EVP_DigestUpdate(h->md5, p, n);
    EVP_DigestUpdate(h->sha1, p, n);
    EVP_DigestUpdate(h->sha256, p, n);
    EVP_DigestUpdate(h->sha3, p, n);
    fuzzy_update(h->ssdeep, p, n);
    tr_tlsh_update(h->tlsh, p, n);
    h->size += n;
}

void tr_hex_encode(const unsigned char *p, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static void md_final(EVP_MD_CTX *c, char *out)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(c, d, &n);
    tr_hex_encode(d, n, out);
}

void tr_hasher_final(tr_hasher *h, tr_digests *out)
{
    memset(out, 0, sizeof *out);
    md_final(h->md5, out->md5);
    md_final(h->sha1, out->sha1);
    md_final(h->sha256, out->sha256);
    md_final(h->sha3, out->sha3_384);
    char fz[FUZZY_MAX_RESULT];
    if (fuzzy_digest(h->ssdeep, fz, 0) == 0)
        snprintf(out->ssdeep, sizeof out->ssdeep, "%s", fz);
    tr_tlsh_final(h->tlsh, out->tlsh, sizeof out->tlsh);
    out->size = h->size;
}

void tr_hasher_free(tr_hasher *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->md5);
    EVP_MD_CTX_free(h->sha1);
    EVP_MD_CTX_free(h->sha256);
    EVP_MD_CTX_free(h->sha3);
    fuzzy_free(h->ssdeep);
    tr_tlsh_free(h->tlsh);
    free(h);
}

void tr_digest_buffer(const void *p, size_t n, tr_digests *out)
{
    tr_hasher *h = tr_hasher_new();
    tr_hasher_update(h, p, n);
    tr_hasher_final(h, out);
    tr_hasher_free(h);
}

static void one_digest(const EVP_MD *md, const void *p, size_t n, char *out)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(p, n, d, &len, md, NULL) != 1)
        tr_die("OpenSSL digest failed");
    tr_hex_encode(d, len, out);
}

void tr_sha256_hex(const void *p, size_t n, char out[TR_SHA256_HEX])
{
    one_digest(EVP_sha256(), p, n, out);
}

void tr_md5_hex(const void *p, size_t n, char out[TR_MD5_HEX])
{
    one_digest(EVP_md5(), p, n, out);
}

size_t tr_hash_normalize(const char *in, char *out, size_t outsz)
{
    size_t n = strlen(in);
    if ((n != 32 && n != 40 && n != 64) || outsz <= n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)in[i]))
            return 0;
        out[i] = (char)tolower((unsigned char)in[i]);
    }
    out[n] = '\0';
    return n;
}
