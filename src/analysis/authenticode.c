/* SHA-256 thumbprints of a PE's code-signing certificates.
 *
 * MalwareBazaar's code_sign entries carry "thumbprint_algorithm": "SHA256"
 * and the SHA-256 of the certificate's DER; libyara's pe module only gives
 * the SHA-1. This reads the certificate table (the security data directory)
 * itself, decodes each PKCS#7 SignedData with OpenSSL, digests every
 * certificate both ways, and swaps each SHA-1 libyara reported for the
 * SHA-256 of the same certificate. Every offset comes from the file, so
 * every one is checked against the buffer before use. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "analysis/analysis.h"
#include "analysis/analysis_internal.h"

#define WIN_CERT_TYPE_PKCS_SIGNED_DATA 2
/* SPC_NESTED_SIGNATURE_OBJID: further signatures (e.g. SHA-1 plus SHA-256
 * dual signing) ride in an unauthenticated attribute of the first. */
#define NESTED_SIGNATURE_OID "1.3.6.1.4.1.311.2.4.1"
#define MAX_NESTING 4
#define MAX_CERTS 256

typedef struct thumbs {
    char (*sha1)[41];
    char (*sha256)[TR_SHA256_HEX];
    size_t n;
} thumbs;

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t rd16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void hex(const unsigned char *d, unsigned n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static void add_cert(thumbs *t, X509 *x)
{
    unsigned char d1[EVP_MAX_MD_SIZE], d256[EVP_MAX_MD_SIZE];
    unsigned n1 = 0, n256 = 0;
    if (t->n >= MAX_CERTS || !X509_digest(x, EVP_sha1(), d1, &n1) ||
        !X509_digest(x, EVP_sha256(), d256, &n256) || n1 != 20 || n256 != 32)
        return;
    t->sha1 = tr_xrealloc(t->sha1, (t->n + 1) * sizeof *t->sha1);
    t->sha256 = tr_xrealloc(t->sha256, (t->n + 1) * sizeof *t->sha256);
    hex(d1, n1, t->sha1[t->n]);
    hex(d256, n256, t->sha256[t->n]);
    t->n++;
}

static void walk_pkcs7(const unsigned char *der, long len, int depth, thumbs *t);

static void walk_nested(PKCS7_SIGNER_INFO *si, int depth, thumbs *t)
{
    ASN1_OBJECT *nested = OBJ_txt2obj(NESTED_SIGNATURE_OID, 1);
    if (!nested)
        return;
    STACK_OF(X509_ATTRIBUTE) *attrs = si->unauth_attr;
    for (int i = 0; i < sk_X509_ATTRIBUTE_num(attrs); i++) {
        X509_ATTRIBUTE *a = sk_X509_ATTRIBUTE_value(attrs, i);
        if (OBJ_cmp(X509_ATTRIBUTE_get0_object(a), nested) != 0)
            continue;
        for (int v = 0; v < X509_ATTRIBUTE_count(a); v++) {
            ASN1_TYPE *ty = X509_ATTRIBUTE_get0_type(a, v);
            if (!ty || ty->type != V_ASN1_SEQUENCE || !ty->value.sequence)
                continue;
            walk_pkcs7(ASN1_STRING_get0_data(ty->value.sequence),
                       ASN1_STRING_length(ty->value.sequence), depth + 1, t);
        }
    }
    ASN1_OBJECT_free(nested);
}

static void walk_pkcs7(const unsigned char *der, long len, int depth, thumbs *t)
{
    if (depth > MAX_NESTING || len <= 0)
        return;
    const unsigned char *q = der;
    PKCS7 *p7 = d2i_PKCS7(NULL, &q, len);
    if (!p7)
        return;
    if (PKCS7_type_is_signed(p7) && p7->d.sign) {
        STACK_OF(X509) *certs = p7->d.sign->cert;
        for (int i = 0; i < sk_X509_num(certs); i++)
            add_cert(t, sk_X509_value(certs, i));
        STACK_OF(PKCS7_SIGNER_INFO) *sis = p7->d.sign->signer_info;
        for (int i = 0; i < sk_PKCS7_SIGNER_INFO_num(sis); i++)
            walk_nested(sk_PKCS7_SIGNER_INFO_value(sis, i), depth, t);
    }
    PKCS7_free(p7);
}

/* The certificate table's file range: 1 when the PE has one inside p. */
static int cert_table(const unsigned char *p, size_t n, size_t *off, size_t *size)
{
    if (n < 0x40 || p[0] != 'M' || p[1] != 'Z')
        return 0;
    size_t pe = rd32(p + 0x3c);
    if (pe > n || n - pe < 24 || memcmp(p + pe, "PE\0\0", 4) != 0)
        return 0;
    size_t opt = pe + 24, opt_size = rd16(p + pe + 20);
    if (opt_size > n - opt || opt_size < 2)
        return 0;
    size_t dirs, count_at;
    switch (rd16(p + opt)) {
    case 0x10b: count_at = 92; dirs = 96; break;     /* PE32 */
    case 0x20b: count_at = 108; dirs = 112; break;   /* PE32+ */
    default: return 0;
    }
    /* Entry 4 (IMAGE_DIRECTORY_ENTRY_SECURITY): its address is a file
     * offset, not an RVA. */
    size_t entry = dirs + 4 * 8;
    if (opt_size < entry + 8 || rd32(p + opt + count_at) <= 4)
        return 0;
    size_t va = rd32(p + opt + entry), sz = rd32(p + opt + entry + 4);
    if (va == 0 || sz < 8 || va >= n)
        return 0;
    *off = va;
    *size = sz > n - va ? n - va : sz;
    return 1;
}

static void collect(const unsigned char *p, size_t n, thumbs *t)
{
    size_t off, size;
    if (!cert_table(p, n, &off, &size))
        return;
    size_t pos = 0;
    /* WIN_CERTIFICATE entries: dwLength, wRevision, wCertificateType, then
     * the bytes; each starts on an 8-byte boundary. */
    while (size - pos >= 8) {
        const unsigned char *w = p + off + pos;
        size_t len = rd32(w);
        if (len < 8 || len > size - pos)
            break;
        if (rd16(w + 6) == WIN_CERT_TYPE_PKCS_SIGNED_DATA)
            walk_pkcs7(w + 8, (long)(len - 8), 0, t);
        size_t step = (len + 7) & ~(size_t)7;
        if (step > size - pos)
            break;
        pos += step;
    }
}

void authenticode_sha256_thumbprints(const unsigned char *p, size_t n, tr_bin_info *out)
{
    thumbs t = {NULL, NULL, 0};
    collect(p, n, &t);
    for (size_t i = 0; i < out->n_certs; i++) {
        tr_cert *c = &out->certs[i];
        for (size_t j = 0; c->thumbprint && j < t.n; j++)
            if (strcasecmp(c->thumbprint, t.sha1[j]) == 0) {
                free(c->thumbprint);
                c->thumbprint = tr_xstrdup(t.sha256[j]);
                break;
            }
    }
    free(t.sha1);
    free(t.sha256);
}

const char *tr_cert_thumbprint_algorithm(const char *thumbprint)
{
    return thumbprint && strlen(thumbprint) == 40 ? "SHA1" : "SHA256";
}
