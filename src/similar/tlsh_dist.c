/* TLSH digests decoded once and compared without libtlsh's string parsing:
 * a query compares against hundreds of entries, brute force against all. */
#include <pthread.h>
#include <string.h>

#include "similar/similar.h"

/* Distance of two body bytes: four 2-bit quartile codes, where a difference
 * of 3 (lowest vs highest quartile) weighs 6, as in libtlsh's h_distance. */
static uint8_t byte_diff[256][256];
static pthread_once_t byte_diff_once = PTHREAD_ONCE_INIT;

static void byte_diff_init(void)
{
    for (int a = 0; a < 256; a++)
        for (int b = 0; b < 256; b++) {
            int d = 0;
            for (int s = 0; s < 8; s += 2) {
                int x = (a >> s) & 3, y = (b >> s) & 3;
                int e = x > y ? x - y : y - x;
                d += e == 3 ? 6 : e;
            }
            byte_diff[a][b] = (uint8_t)d;
        }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static uint8_t swap_nibbles(uint8_t b)
{
    return (uint8_t)((b >> 4) | (b << 4));
}

int tr_tlsh_decode(const char *hex, tr_tlsh_code *out)
{
    pthread_once(&byte_diff_once, byte_diff_init);
    if ((hex[0] == 'T' || hex[0] == 't') && hex[1] == '1')
        hex += 2;
    if (strlen(hex) != 70)
        return -1;
    uint8_t raw[35];
    for (int i = 0; i < 35; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        raw[i] = (uint8_t)(hi << 4 | lo);
    }
    /* The printed form swaps the nibbles of the header bytes (checksum,
     * L-value, Q ratios) and reverses the body; the body's order does not
     * matter to a position-wise distance. */
    out->checksum = raw[0];
    out->lvalue = swap_nibbles(raw[1]);
    out->q1 = raw[2] >> 4;
    out->q2 = raw[2] & 15;
    memcpy(out->body, raw + 3, 32);
    return 0;
}

static int mod_diff(int x, int y, int range)
{
    int d = x > y ? x - y : y - x;
    return d < range - d ? d : range - d;
}

int tr_tlsh_distance(const tr_tlsh_code *a, const tr_tlsh_code *b)
{
    int d = 0;
    int ld = mod_diff(a->lvalue, b->lvalue, 256);
    d += ld <= 1 ? ld : ld * 12;
    int q = mod_diff(a->q1, b->q1, 16);
    d += q <= 1 ? q : (q - 1) * 12;
    q = mod_diff(a->q2, b->q2, 16);
    d += q <= 1 ? q : (q - 1) * 12;
    if (a->checksum != b->checksum)
        d++;
    for (int i = 0; i < 32; i++)
        d += byte_diff[a->body[i]][b->body[i]];
    return d;
}
