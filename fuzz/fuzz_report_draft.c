/* libFuzzer target: document bytes -> the whole draft with a small
 * gazetteer (entities, new malware candidates, relationship proposals, the
 * bundle). Must never crash, leak or hang; every entity, candidate and
 * proposal must point inside the text, and the bundle must serialise. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"

static tr_gazetteer *gazetteer(void)
{
    tr_gazetteer *g = tr_gazetteer_new();
    tr_gazetteer_add(g, "Conti", "malware--4dea7d8e-af94-4bfb-afe4-7ff54f59308b", "malware", "Conti");
    tr_gazetteer_add(g, "Sodinokibi", "malware--ac61f1f9-7bb1-465e-9b8a-c2ce8e88baf5", "malware", "REvil");
    tr_gazetteer_add(g, "FIN12", "intrusion-set--dd2d9ca6-505b-4860-a604-233685b802c7",
                     "intrusion-set", "Wizard Spider");
    tr_gazetteer_add(g, "Evil Corp", "intrusion-set--01e28736-2ffc-455b-9880-ed4d1407ae07",
                     "intrusion-set", "Indrik Spider");
    tr_gazetteer_add(g, "Operation X", "campaign--00000000-0000-4000-8000-000000000003",
                     "campaign", "Operation X");
    tr_gazetteer_add(g, "\xe3\x82\xb3\xe3\x83\xb3\xe3\x83\x86\xe3\x82\xa3",
                     "malware--4dea7d8e-af94-4bfb-afe4-7ff54f59308b", "malware", "Conti");
    return g;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 128 * 1024)
        return 0;
    tr_gazetteer *g = gazetteer();
    tr_report_opts o = {.filename = "doc.txt", .in_process = true};
    json_t *d;
    tr_error err;
    if (tr_report_draft(data, size, &o, g, NULL, &d, &err) == 0) {
        size_t tl = json_integer_value(json_object_get(json_object_get(d, "document"), "text_length"));
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(d, "entities"), i, v) {
            if ((size_t)json_integer_value(json_object_get(v, "offset")) +
                    (size_t)json_integer_value(json_object_get(v, "length")) > tl)
                abort();
        }
        json_array_foreach(json_object_get(d, "proposals"), i, v) {
            if ((size_t)json_integer_value(json_object_get(v, "offset")) > tl)
                abort();
        }
        char *s = json_dumps(d, JSON_COMPACT);
        if (!s)
            abort();
        free(s);
        json_decref(d);
    }
    tr_gazetteer_free(g);
    return 0;
}
