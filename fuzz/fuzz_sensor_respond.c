/* The live sensor's responders: the first byte picks the port's role and the
 * piece size, the rest arrives in pieces as a client would send it. */
#include <stddef.h>
#include <stdint.h>

#include "sensor/sensor_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int role = data[0] & 3;
    size_t step = (size_t)(data[0] >> 2) + 1;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    tr_responder r;
    tr_buf out = {0};
    tr_responder_init(&r, role, &out);
    for (size_t have = step < n ? step : n; have <= n; have += step) {
        if (tr_responder_step(&r, p, have, &out) || have == n)
            break;
        if (have + step > n)
            have = n - step;
    }
    tr_buf_free(&out);
    return 0;
}
