/* The UTF-8 check and repair applied to every text field from the network.
 * Properties: whatever the check accepts, jansson accepts too (the reply
 * can always be encoded); the repair always yields text the check accepts,
 * and leaves accepted text unchanged. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http/http_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    const char *why = http_text_problem(s, size);
    if (!why) {
        json_t *j = json_stringn(s, size);
        if (!j)
            abort();
        json_decref(j);
    }
    size_t cap = 3 * size + 1;
    char *out = malloc(cap);
    if (!out) {
        free(s);
        return 0;
    }
    http_text_sanitize(s, out, cap);
    if (http_text_problem(out, strlen(out)))
        abort();
    if (!why && strcmp(out, s) != 0)
        abort();
    /* Cut short, the repair must not split a character. */
    char small[7];
    http_text_sanitize(s, small, sizeof small);
    if (http_text_problem(small, strlen(small)))
        abort();
    free(out);
    free(s);
    return 0;
}
