/* libFuzzer target: the review's changes (a PATCH body from the network)
 * applied to a draft. Must never crash, leak or hang; a refused change must
 * leave the draft exactly as it was, and an accepted one must leave a
 * bundle that serialises with the report first. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"

static const char doc[] =
    "FIN12 uses Conti. The BlackFog ransomware beacons to hxxp://45.77.12[.]201/gate and\n"
    "evil-cdn[.]com; its loader drops drift.dll (CVE-2021-44228, T1059.001).\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    tr_gazetteer *g = tr_gazetteer_new();
    tr_gazetteer_add(g, "Conti", "malware--4dea7d8e-af94-4bfb-afe4-7ff54f59308b", "malware", "Conti");
    tr_gazetteer_add(g, "FIN12", "intrusion-set--dd2d9ca6-505b-4860-a604-233685b802c7",
                     "intrusion-set", "Wizard Spider");
    tr_report_opts o = {.filename = "doc.txt", .in_process = true};
    json_t *d = NULL, *changes = NULL;
    tr_error err;
    if (tr_report_draft((const unsigned char *)doc, sizeof doc - 1, &o, g, NULL, &d, &err) != 0)
        abort();
    changes = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (changes) {
        json_t *before = json_deep_copy(d);
        if (tr_report_review_apply(d, changes, &err) != 0) {
            if (!json_equal(before, d))
                abort();
        } else {
            json_t *objs = json_object_get(json_object_get(d, "bundle"), "objects");
            const char *t = json_string_value(json_object_get(json_array_get(objs, 0), "type"));
            if (!t || strcmp(t, "report") != 0)
                abort();
            char *s = json_dumps(d, JSON_COMPACT);
            if (!s)
                abort();
            free(s);
        }
        json_decref(before);
        json_decref(changes);
    }
    json_decref(d);
    tr_gazetteer_free(g);
    return 0;
}
