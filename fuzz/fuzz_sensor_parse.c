/* The sensor's protocol parsers: the first byte picks one (or the dispatcher),
 * the rest is what a client sent. Every field must survive the JSON form. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "sensor/sensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    tr_event e;
    tr_event_init(&e);
    e.dst_port = (uint16_t)(data[0] * 31);
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] % 8) {
    case 0: tr_parse_ssh(&e, p, n); break;
    case 1: tr_parse_tls(&e, p, n); break;
    case 2: tr_parse_http(&e, p, n); break;
    case 3: tr_parse_telnet(&e, p, n); break;
    case 4: tr_parse_smb(&e, p, n); break;
    case 5: tr_parse_rdp(&e, p, n); break;
    case 6: tr_parse_redis(&e, p, n); break;
    default: tr_sensor_parse(&e, p, n); break;
    }
    json_t *j = tr_event_to_json(&e);
    if (json_object_size(json_object_get(j, "fields")) != e.nfields)
        abort();   /* a field value that is not valid UTF-8 */
    json_decref(j);
    tr_event_clear(&e);
    return 0;
}
