/* The Cowrie log importer: JSON lines, timestamps, addresses, sessions. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sensor/sensor.h"
#include "sensor/sensor_internal.h"

static int sink(void *ctx, tr_event *e, tr_error *err)
{
    json_t *j = tr_event_to_json(e);
    json_decref(j);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    FILE *fp = fmemopen((void *)data, size, "r");
    if (!fp)
        return 0;
    tr_import_stats st;
    tr_error err;
    tr_cowrie_import_fp(fp, NULL, sink, NULL, &st, &err);
    return 0;
}
