/* The samples list's query parameters as a client sends them (name=value
 * pairs joined by '&'): limit, offset, since/until dates, sort, order, a
 * full hash or a hash prefix and the field filters, through the parser
 * GET /api/samples uses (src/http/samples_query.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/samples_query.h"

#define MAX_PAIRS 32

typedef struct params {
    char *name[MAX_PAIRS], *value[MAX_PAIRS];
    size_t n;
} params;

static const char *get(void *ctx, const char *name)
{
    const params *p = ctx;
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->name[i], name) == 0)
            return p->value[i];
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    params p = {{0}, {0}, 0};
    for (char *save = NULL, *pair = strtok_r(text, "&", &save); pair && p.n < MAX_PAIRS;
         pair = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(pair, '=');
        p.name[p.n] = pair;
        p.value[p.n] = eq ? (*eq = '\0', eq + 1) : pair + strlen(pair);
        p.n++;
    }
    samples_query q;
    char msg[256];
    if (http_samples_query_parse(get, &p, &q, msg, sizeof msg) == 0) {
        /* What the list query then relies on. */
        if (q.f.limit < 1 || q.f.limit > 1000 || q.f.offset < 0)
            abort();
        size_t nl = strlen(q.norm);
        if (q.exact && nl != 32 && nl != 40 && nl != 64)
            abort();
        if (q.f.hash_prefix && (q.exact || strlen(q.f.hash_prefix) < 8))
            abort();
    } else if (!memchr(msg, '\0', sizeof msg) || !msg[0]) {
        abort();
    }
    free(text);
    return 0;
}
