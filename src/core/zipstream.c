/* A zip of files encrypted with WinZip AES-256 (AE-2), produced as a byte
 * stream in order: no temporary copy, memory bounded by one chunk. libzip
 * can only write whole archives to files, so the format is written here.
 *
 * Each entry is stored (malware is mostly packed; compressing it buys
 * little), so every size is known before the first byte: the archive's
 * length is exact up front and no data descriptors are needed. Layout per
 * entry: local header (method 99, the AES extra field 0x9901, zip64 sizes
 * when needed), then salt (16), password verifier (2), the file encrypted
 * with AES-256 in WinZip's CTR mode (little-endian block counter from 1),
 * and the first 10 bytes of HMAC-SHA1 over the ciphertext. Keys come from
 * PBKDF2-HMAC-SHA1 (1000 rounds) over the password and salt: 32 bytes AES
 * key, 32 bytes HMAC key, 2 bytes verifier. AE-2 stores CRC 0: the HMAC
 * authenticates the data. Then the central directory, zip64 end records
 * when sizes, offsets or counts need them, and the end record. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "core/core.h"

#define SALT_LEN 16
#define PV_LEN 2
#define AUTH_LEN 10
#define OVERHEAD (SALT_LEN + PV_LEN + AUTH_LEN)
#define CHUNK (64 * 1024)
#define MAX32 0xFFFFFFFFu

typedef struct zentry {
    char *name;
    char *path;
    uint64_t size;             /* plaintext bytes */
    uint64_t offset;           /* of its local header */
} zentry;

typedef enum phase { PH_HEADER, PH_DATA, PH_AUTH, PH_CENTRAL, PH_DONE } phase;

struct tr_zip_stream {
    zentry *e;
    size_t n;
    char *password;
    uint64_t total;
    uint16_t dos_time, dos_date;
    /* Where the stream is. */
    size_t cur;
    phase ph;
    tr_buf out;                /* bytes made and not yet read */
    size_t out_pos;
    int fd;
    uint64_t left;             /* plaintext bytes of the current entry still to read */
    uint64_t counter;          /* CTR block counter */
    EVP_CIPHER_CTX *aes;
    EVP_MAC *mac;
    EVP_MAC_CTX *hmac;
    unsigned char *plain, *ks;
};

static void put16(tr_buf *b, uint16_t v)
{
    unsigned char x[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    tr_buf_append(b, x, 2);
}

static void put32(tr_buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    tr_buf_append(b, x, 4);
}

static void put64(tr_buf *b, uint64_t v)
{
    put32(b, (uint32_t)v);
    put32(b, (uint32_t)(v >> 32));
}

static bool sizes_need64(const zentry *e)
{
    return e->size + OVERHEAD >= MAX32;
}

static size_t local_extra_len(const zentry *e)
{
    return 11 + (sizes_need64(e) ? 20 : 0);
}

static size_t central_extra_len(const zentry *e)
{
    size_t z = (sizes_need64(e) ? 16 : 0) + (e->offset >= MAX32 ? 8 : 0);
    return 11 + (z ? 4 + z : 0);
}

static void aes_extra(tr_buf *b)
{
    put16(b, 0x9901);
    put16(b, 7);
    put16(b, 2);               /* AE-2 */
    tr_buf_append(b, "AE", 2);
    unsigned char strength = 3;      /* AES-256 */
    tr_buf_append(b, &strength, 1);
    put16(b, 0);               /* stored */
}

static void local_header(tr_zip_stream *z, const zentry *e)
{
    tr_buf *b = &z->out;
    bool big = sizes_need64(e);
    put32(b, 0x04034b50);
    put16(b, big ? 51 : 51);   /* 5.1: AES */
    put16(b, 0x0801);          /* encrypted, UTF-8 name */
    put16(b, 99);
    put16(b, z->dos_time);
    put16(b, z->dos_date);
    put32(b, 0);
    put32(b, big ? MAX32 : (uint32_t)(e->size + OVERHEAD));
    put32(b, big ? MAX32 : (uint32_t)e->size);
    put16(b, (uint16_t)strlen(e->name));
    put16(b, (uint16_t)local_extra_len(e));
    tr_buf_append(b, e->name, strlen(e->name));
    if (big) {
        put16(b, 0x0001);
        put16(b, 16);
        put64(b, e->size);
        put64(b, e->size + OVERHEAD);
    }
    aes_extra(b);
}

static void central(tr_zip_stream *z)
{
    tr_buf *b = &z->out;
    uint64_t cd_start = 0;
    for (size_t i = 0; i < z->n; i++)
        cd_start += 30 + strlen(z->e[i].name) + local_extra_len(&z->e[i]) + z->e[i].size +
                    OVERHEAD;
    uint64_t cd_size = 0;
    for (size_t i = 0; i < z->n; i++) {
        const zentry *e = &z->e[i];
        bool big = sizes_need64(e), far = e->offset >= MAX32;
        size_t before = b->len;
        put32(b, 0x02014b50);
        put16(b, 0x033F);      /* made on Unix, spec 6.3 */
        put16(b, 51);
        put16(b, 0x0801);
        put16(b, 99);
        put16(b, z->dos_time);
        put16(b, z->dos_date);
        put32(b, 0);
        put32(b, big ? MAX32 : (uint32_t)(e->size + OVERHEAD));
        put32(b, big ? MAX32 : (uint32_t)e->size);
        put16(b, (uint16_t)strlen(e->name));
        put16(b, (uint16_t)central_extra_len(e));
        put16(b, 0);           /* comment */
        put16(b, 0);           /* disk */
        put16(b, 0);           /* internal attributes */
        put32(b, (uint32_t)0100644 << 16);
        put32(b, far ? MAX32 : (uint32_t)e->offset);
        tr_buf_append(b, e->name, strlen(e->name));
        if (big || far) {
            put16(b, 0x0001);
            put16(b, (uint16_t)((big ? 16 : 0) + (far ? 8 : 0)));
            if (big) {
                put64(b, e->size);
                put64(b, e->size + OVERHEAD);
            }
            if (far)
                put64(b, e->offset);
        }
        aes_extra(b);
        cd_size += b->len - before;
    }
    bool z64 = z->n >= 0xFFFF || cd_start >= MAX32 || cd_size >= MAX32;
    if (z64) {
        uint64_t rec = cd_start + cd_size;
        put32(b, 0x06064b50);
        put64(b, 44);
        put16(b, 0x033F);
        put16(b, 45);
        put32(b, 0);
        put32(b, 0);
        put64(b, z->n);
        put64(b, z->n);
        put64(b, cd_size);
        put64(b, cd_start);
        put32(b, 0x07064b50);
        put32(b, 0);
        put64(b, rec);
        put32(b, 1);
    }
    put32(b, 0x06054b50);
    put16(b, 0);
    put16(b, 0);
    put16(b, z64 ? 0xFFFF : (uint16_t)z->n);
    put16(b, z64 ? 0xFFFF : (uint16_t)z->n);
    put32(b, z64 ? MAX32 : (uint32_t)cd_size);
    put32(b, z64 ? MAX32 : (uint32_t)cd_start);
    put16(b, 0);
}

static uint64_t central_len(const tr_zip_stream *z)
{
    uint64_t cd_start = 0, cd_size = 0;
    for (size_t i = 0; i < z->n; i++) {
        const zentry *e = &z->e[i];
        cd_start += 30 + strlen(e->name) + local_extra_len(e) + e->size + OVERHEAD;
        cd_size += 46 + strlen(e->name) + central_extra_len(e);
    }
    bool z64 = z->n >= 0xFFFF || cd_start >= MAX32 || cd_size >= MAX32;
    return cd_size + (z64 ? 56 + 20 : 0) + 22;
}

void tr_zip_stream_free(tr_zip_stream *z)
{
    if (!z)
        return;
    for (size_t i = 0; i < z->n; i++) {
        free(z->e[i].name);
        free(z->e[i].path);
    }
    free(z->e);
    if (z->password) {
        OPENSSL_cleanse(z->password, strlen(z->password));
        free(z->password);
    }
    if (z->fd >= 0)
        close(z->fd);
    EVP_CIPHER_CTX_free(z->aes);
    EVP_MAC_CTX_free(z->hmac);
    EVP_MAC_free(z->mac);
    free(z->plain);
    free(z->ks);
    tr_buf_free(&z->out);
    free(z);
}

int tr_zip_stream_new(const tr_zip_entry *entries, size_t n, const char *password,
                      tr_zip_stream **out, tr_error *err)
{
    *out = NULL;
    tr_zip_stream *z = tr_xcalloc(1, sizeof *z);
    z->fd = -1;
    z->e = tr_xcalloc(n ? n : 1, sizeof *z->e);
    z->password = tr_xstrdup(password);
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (strlen(entries[i].name) > 0xFFFF - 1) {
            tr_zip_stream_free(z);
            return tr_fail(err, "a name in the archive is too long");
        }
        if (stat(entries[i].path, &st) != 0) {
            tr_fail_errno(err, "cannot read %s", entries[i].path);
            tr_zip_stream_free(z);
            return -1;
        }
        z->e[i].name = tr_xstrdup(entries[i].name);
        z->e[i].path = tr_xstrdup(entries[i].path);
        z->e[i].size = (uint64_t)st.st_size;
        z->e[i].offset = off;
        z->n = i + 1;
        off += 30 + strlen(z->e[i].name) + local_extra_len(&z->e[i]) + z->e[i].size + OVERHEAD;
    }
    z->total = off + central_len(z);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    z->dos_time = (uint16_t)((tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec / 2));
    z->dos_date = (uint16_t)(((tm.tm_year - 80) << 9) | ((tm.tm_mon + 1) << 5) | tm.tm_mday);
    z->aes = EVP_CIPHER_CTX_new();
    z->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    z->hmac = z->mac ? EVP_MAC_CTX_new(z->mac) : NULL;
    z->plain = tr_xmalloc(CHUNK);
    z->ks = tr_xmalloc(CHUNK);
    if (!z->aes || !z->hmac) {
        tr_zip_stream_free(z);
        return tr_fail(err, "OpenSSL: cannot set up AES and HMAC");
    }
    z->ph = n ? PH_HEADER : PH_CENTRAL;
    *out = z;
    return 0;
}

uint64_t tr_zip_stream_size(const tr_zip_stream *z)
{
    return z->total;
}

/* Header, salt and verifier of the current entry; keys set up. */
static int begin_entry(tr_zip_stream *z, tr_error *err)
{
    zentry *e = &z->e[z->cur];
    z->fd = open(e->path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (z->fd < 0 || fstat(z->fd, &st) != 0)
        return tr_fail_errno(err, "cannot read %s", e->path);
    if ((uint64_t)st.st_size != e->size)
        return tr_fail(err, "%s changed size while being archived", e->path);
    unsigned char salt[SALT_LEN], keys[2 * 32 + PV_LEN];
    if (RAND_bytes(salt, sizeof salt) != 1 ||
        PKCS5_PBKDF2_HMAC_SHA1(z->password, (int)strlen(z->password), salt, sizeof salt, 1000,
                               sizeof keys, keys) != 1)
        return tr_fail(err, "OpenSSL: cannot derive the archive keys");
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA1", 0),
                           OSSL_PARAM_construct_end()};
    int ok = EVP_EncryptInit_ex(z->aes, EVP_aes_256_ecb(), NULL, keys, NULL) == 1 &&
             EVP_CIPHER_CTX_set_padding(z->aes, 0) == 1 &&
             EVP_MAC_init(z->hmac, keys + 32, 32, params) == 1;
    local_header(z, e);
    tr_buf_append(&z->out, salt, sizeof salt);
    tr_buf_append(&z->out, keys + 64, PV_LEN);
    OPENSSL_cleanse(keys, sizeof keys);
    if (!ok)
        return tr_fail(err, "OpenSSL: cannot start AES-256 and HMAC-SHA1");
    z->left = e->size;
    z->counter = 1;
    z->ph = PH_DATA;
    return 0;
}

/* The next chunk of the current entry, encrypted. */
static int data_chunk(tr_zip_stream *z, tr_error *err)
{
    size_t want = z->left < CHUNK ? (size_t)z->left : CHUNK;
    size_t got = 0;
    while (got < want) {
        ssize_t r = read(z->fd, z->plain + got, want - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return tr_fail_errno(err, "cannot read %s", z->e[z->cur].path);
        got += (size_t)r;
    }
    /* WinZip's CTR: AES of a 16-byte little-endian block counter. */
    size_t blocks = (want + 15) / 16;
    memset(z->ks, 0, blocks * 16);
    for (size_t i = 0; i < blocks; i++) {
        uint64_t c = z->counter + i;
        for (int k = 0; k < 8; k++)
            z->ks[i * 16 + (size_t)k] = (unsigned char)(c >> (8 * k));
    }
    int outl = 0;
    if (EVP_EncryptUpdate(z->aes, z->ks, &outl, z->ks, (int)(blocks * 16)) != 1)
        return tr_fail(err, "OpenSSL: AES failed");
    z->counter += blocks;
    for (size_t i = 0; i < want; i++)
        z->plain[i] ^= z->ks[i];
    if (EVP_MAC_update(z->hmac, z->plain, want) != 1)
        return tr_fail(err, "OpenSSL: HMAC failed");
    tr_buf_append(&z->out, z->plain, want);
    z->left -= want;
    if (z->left == 0)
        z->ph = PH_AUTH;
    return 0;
}

static int end_entry(tr_zip_stream *z, tr_error *err)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    if (EVP_MAC_final(z->hmac, mac, &maclen, sizeof mac) != 1 || maclen < AUTH_LEN)
        return tr_fail(err, "OpenSSL: HMAC failed");
    tr_buf_append(&z->out, mac, AUTH_LEN);
    close(z->fd);
    z->fd = -1;
    z->cur++;
    z->ph = z->cur < z->n ? PH_HEADER : PH_CENTRAL;
    return 0;
}

ssize_t tr_zip_stream_read(tr_zip_stream *z, char *buf, size_t max, tr_error *err)
{
    size_t done = 0;
    while (done < max) {
        if (z->out_pos < z->out.len) {
            size_t k = z->out.len - z->out_pos;
            if (k > max - done)
                k = max - done;
            memcpy(buf + done, z->out.data + z->out_pos, k);
            z->out_pos += k;
            done += k;
            continue;
        }
        z->out.len = 0;
        z->out_pos = 0;
        int rc = 0;
        switch (z->ph) {
        case PH_HEADER: rc = begin_entry(z, err); break;
        case PH_DATA: rc = data_chunk(z, err); break;
        case PH_AUTH: rc = end_entry(z, err); break;
        case PH_CENTRAL:
            central(z);
            z->ph = PH_DONE;
            break;
        case PH_DONE: return (ssize_t)done;
        }
        if (rc != 0)
            return -1;
    }
    return (ssize_t)done;
}
