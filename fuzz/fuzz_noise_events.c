/* libFuzzer target: a POST /api/noise/events body or a jsonl line -> events
 * -> JSON -> events again. Must never crash or leak, and a valid event must
 * survive the round trip unchanged (the spool and the API depend on it). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sensor/event.h"

static void round_trip(const json_t *j)
{
    tr_event e, e2;
    tr_error err;
    if (tr_event_from_json(j, &e, &err) != 0)
        return;
    json_t *out = tr_event_to_json(&e);
    if (tr_event_from_json(out, &e2, &err) != 0)
        abort();                       /* what we wrote, we must read */
    json_t *out2 = tr_event_to_json(&e2);
    char *a = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    char *b = json_dumps(out2, JSON_COMPACT | JSON_SORT_KEYS);
    if (!a || !b || strcmp(a, b) != 0)
        abort();
    free(a);
    free(b);
    json_decref(out);
    json_decref(out2);
    tr_event_clear(&e);
    tr_event_clear(&e2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20)
        return 0;
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    if (!j)
        return 0;
    json_t *evs = json_object_get(j, "events");
    if (json_is_array(evs)) {
        size_t i;
        json_t *v;
        json_array_foreach(evs, i, v) round_trip(v);
    } else {
        round_trip(j);
    }
    json_decref(j);
    return 0;
}
