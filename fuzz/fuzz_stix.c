/* libFuzzer target: bundle bytes -> parse, 2.0 upgrade, schema and spec
 * validation, each object's byte span, canonical JSON and SCO ids; then the
 * import into a knowledge base (SCO re-identification, reference rewriting,
 * versions). Must never crash, leak or hang; a stored object text that does
 * not read back as the object it came from is a bug (abort). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "stix/stix.h"

static tr_stix_db *kb;

static void open_kb(void)
{
    char tmpl[] = "/tmp/trawl-fuzz-stix-XXXXXX";
    tr_error err;
    if (!mkdtemp(tmpl) || tr_stix_open(tmpl, &kb, &err) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256 * 1024)
        return 0;
    tr_stix_bundle b;
    tr_error err;
    if (tr_stix_bundle_parse((const char *)data, size, &b, &err) != 0)
        return 0;
    for (size_t i = 0; i < b.n; i++) {
        json_t *back = json_loadb(b.objects[i].text, b.objects[i].len, 0, NULL);
        if (!back || !json_equal(back, b.objects[i].obj))
            abort();
        json_decref(back);
        tr_buf c = {0};
        (void)tr_stix_jcs(b.objects[i].obj, &c, &err);
        tr_buf_free(&c);
        char id[128];
        (void)tr_stix_sco_id(b.objects[i].obj, id, &err);
    }
    tr_stix_bundle_free(&b);
    if (!kb)
        open_kb();
    tr_stix_import_result res;
    (void)tr_stix_import(kb, (const char *)data, size, NULL, &res, &err);
    return 0;
}
