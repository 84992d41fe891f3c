/* Text from the network: form fields, file names, query parameters and the
 * messages that quote them must be UTF-8 before they reach JSON (jansson
 * refuses anything else, and a refused string used to cost the whole
 * reply). */
#include <string.h>

#include "http/http_internal.h"

/* Length of the well-formed UTF-8 sequence at s (n bytes left), 0 if there
 * is none: no overlong forms, no surrogates, nothing past U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;              /* overlong */
        else if (c == 0xED)
            hi = 0x9F;              /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;              /* overlong */
        else if (c == 0xF4)
            hi = 0x8F;              /* past U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

const char *http_text_problem(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (p[i] == 0)
            return "contains a NUL byte";
        size_t k = utf8_seq(p + i, n - i);
        if (!k)
            return "is not valid UTF-8";
        i += k;
    }
    return NULL;
}

void http_text_sanitize(const char *in, char *out, size_t outsz)
{
    if (!outsz)
        return;
    const unsigned char *p = (const unsigned char *)in;
    size_t n = strlen(in), o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(p + i, n - i);
        const char *put = k ? (const char *)p + i : "\xEF\xBF\xBD";   /* U+FFFD */
        size_t plen = k ? k : 3;
        if (o + plen >= outsz)
            break;
        memcpy(out + o, put, plen);
        o += plen;
        i += k ? k : 1;
    }
    out[o] = '\0';
}
