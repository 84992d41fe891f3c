/* dhash_icon: the difference hash of a PE's main icon. The icon is the one
 * an icon reader shows for the first RT_GROUP_ICON: its largest image (then
 * the deepest colour), an RT_ICON holding a PNG (decoded by libpng) or a DIB
 * (1, 4, 8, 24 or 32 bits per pixel, read here). It is turned grey with the
 * ITU-R 601 weights (alpha ignored), scaled down to 9x8 by area averaging,
 * and each row's 8 neighbour pairs give one bit each, set when the right
 * pixel is brighter: 64 bits, first row first, printed as 16 hex digits. */
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis.h"
#include "analysis/analysis_internal.h"

#define MAX_SIDE 1024

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static unsigned grey_of(unsigned r, unsigned g, unsigned b)
{
    /* Fixed point, rounded: the luma PIL's convert("L") computes. */
    return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

/* Grey pixels of a PNG, or NULL. */
static unsigned char *decode_png(const unsigned char *p, size_t n, unsigned *w, unsigned *h)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, p, n))
        return NULL;
    if (img.width == 0 || img.height == 0 || img.width > MAX_SIDE || img.height > MAX_SIDE) {
        png_image_free(&img);
        return NULL;
    }
    /* RGBA keeps the colour of transparent pixels as stored: grey from RGB
     * alone, as for a DIB. */
    img.format = PNG_FORMAT_RGBA;
    size_t stride = (size_t)img.width * 4;
    unsigned char *rgba = tr_xmalloc(stride * img.height);
    if (!png_image_finish_read(&img, NULL, rgba, (png_int_32)stride, NULL)) {
        png_image_free(&img);
        free(rgba);
        return NULL;
    }
    unsigned char *grey = tr_xmalloc((size_t)img.width * img.height);
    for (size_t i = 0; i < (size_t)img.width * img.height; i++)
        grey[i] = (unsigned char)grey_of(rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]);
    free(rgba);
    *w = img.width;
    *h = img.height;
    png_image_free(&img);
    return grey;
}

/* Grey pixels of an icon DIB (BITMAPINFOHEADER, height doubled for the AND
 * mask, rows bottom-up), or NULL. */
static unsigned char *decode_dib(const unsigned char *p, size_t n, unsigned *w, unsigned *h)
{
    if (n < 40)
        return NULL;
    uint32_t hdr = le32(p);
    int32_t width = (int32_t)le32(p + 4), height = (int32_t)le32(p + 8);
    unsigned bpp = p[14] | (unsigned)p[15] << 8;
    uint32_t compression = le32(p + 16), used = le32(p + 32);
    if (hdr < 40 || hdr > n || width <= 0 || height <= 1 || width > MAX_SIDE ||
        height / 2 > MAX_SIDE || compression != 0 ||
        (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 24 && bpp != 32))
        return NULL;
    unsigned iw = (unsigned)width, ih = (unsigned)height / 2;
    size_t colours = bpp <= 8 ? (used && used < (1u << bpp) ? used : (1u << bpp)) : 0;
    const unsigned char *palette = p + hdr;
    if (colours * 4 > n - hdr)
        return NULL;
    const unsigned char *bits = palette + colours * 4;
    size_t stride = (((size_t)iw * bpp + 31) / 32) * 4;
    if (stride * ih > (size_t)(p + n - bits))
        return NULL;
    unsigned char *grey = tr_xmalloc((size_t)iw * ih);
    for (unsigned y = 0; y < ih; y++) {
        const unsigned char *row = bits + stride * (ih - 1 - y);
        for (unsigned x = 0; x < iw; x++) {
            unsigned r, g, b;
            if (bpp >= 24) {
                const unsigned char *px = row + (size_t)x * (bpp / 8);
                b = px[0], g = px[1], r = px[2];
            } else {
                unsigned shift = 8 - bpp - (x * bpp) % 8;
                unsigned idx = (row[(size_t)x * bpp / 8] >> shift) & ((1u << bpp) - 1);
                if (idx >= colours)
                    idx = 0;
                b = palette[4 * idx], g = palette[4 * idx + 1], r = palette[4 * idx + 2];
            }
            grey[(size_t)y * iw + x] = (unsigned char)grey_of(r, g, b);
        }
    }
    *w = iw;
    *h = ih;
    return grey;
}

/* Area average of the source pixels each of the 9x8 cells covers. */
static void downscale(const unsigned char *g, unsigned w, unsigned h, double out[8][9])
{
    for (unsigned cy = 0; cy < 8; cy++)
        for (unsigned cx = 0; cx < 9; cx++) {
            double y0 = (double)cy * h / 8, y1 = (double)(cy + 1) * h / 8;
            double x0 = (double)cx * w / 9, x1 = (double)(cx + 1) * w / 9;
            double sum = 0, area = 0;
            for (unsigned y = (unsigned)y0; y < h && y < y1; y++) {
                double fy = (y + 1 < y1 ? y + 1 : y1) - (y > y0 ? y : y0);
                for (unsigned x = (unsigned)x0; x < w && x < x1; x++) {
                    double fx = (x + 1 < x1 ? x + 1 : x1) - (x > x0 ? x : x0);
                    sum += fx * fy * g[(size_t)y * w + x];
                    area += fx * fy;
                }
            }
            out[cy][cx] = area > 0 ? sum / area : 0;
        }
}

int tr_icon_image_dhash(const unsigned char *p, size_t n, char out[TR_DHASH_HEX])
{
    out[0] = '\0';
    unsigned w = 0, h = 0;
    unsigned char *grey = n >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0
                              ? decode_png(p, n, &w, &h)
                              : decode_dib(p, n, &w, &h);
    if (!grey)
        return 0;
    double cells[8][9];
    downscale(grey, w, h, cells);
    free(grey);
    uint64_t bits = 0;
    for (unsigned y = 0; y < 8; y++)
        for (unsigned x = 0; x < 8; x++)
            bits = bits << 1 | (cells[y][x + 1] > cells[y][x] ? 1u : 0u);
    snprintf(out, TR_DHASH_HEX, "%016llx", (unsigned long long)bits);
    return 1;
}

static const tr_pe_resource *find_icon(const tr_pe_resource *r, size_t nr, int64_t id)
{
    for (size_t i = 0; i < nr; i++)
        if (r[i].type == 3 /* RT_ICON */ && r[i].id == id)
            return &r[i];
    return NULL;
}

int icon_dhash_from_resources(const unsigned char *p, size_t n, const tr_pe_resource *r,
                              size_t nr, char out[TR_DHASH_HEX])
{
    out[0] = '\0';
    const tr_pe_resource *group = NULL;
    for (size_t i = 0; i < nr && !group; i++)
        if (r[i].type == 14 /* RT_GROUP_ICON */)
            group = &r[i];
    if (!group || group->offset < 0 || group->length < 6 || (uint64_t)group->offset > n ||
        (uint64_t)group->length > n - (uint64_t)group->offset)
        return 0;
    /* GRPICONDIR: reserved, type 1, count; then 14-byte entries: width,
     * height (0 meaning 256), colours, reserved, planes, bit count, size,
     * and the RT_ICON id. */
    const unsigned char *g = p + group->offset;
    size_t count = g[4] | (size_t)g[5] << 8;
    if (count > ((size_t)group->length - 6) / 14)
        count = ((size_t)group->length - 6) / 14;
    const tr_pe_resource *best = NULL;
    unsigned best_area = 0, best_bpp = 0;
    for (size_t i = 0; i < count; i++) {
        const unsigned char *e = g + 6 + 14 * i;
        unsigned w = e[0] ? e[0] : 256, h = e[1] ? e[1] : 256;
        unsigned bpp = e[6] | (unsigned)e[7] << 8;
        const tr_pe_resource *img = find_icon(r, nr, e[12] | (int64_t)e[13] << 8);
        if (!img || img->offset < 0 || (uint64_t)img->offset > n ||
            img->length <= 0 || (uint64_t)img->length > n - (uint64_t)img->offset)
            continue;
        if (!best || w * h > best_area || (w * h == best_area && bpp > best_bpp)) {
            best = img;
            best_area = w * h;
            best_bpp = bpp;
        }
    }
    if (!best)
        return 0;
    return tr_icon_image_dhash(p + best->offset, (size_t)best->length, out);
}
