/* libFuzzer target: the noise module's list parsers (Tor exit lists, one
 * line at a time, and actor CIDRs). Must never crash or leak; an address it
 * accepts must read back as itself. */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "noise/noise_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char cidr[80];
        snprintf(cidr, sizeof cidr, "%s", line);
        int fam, bits;
        uint8_t a[16];
        if (noise_parse_cidr(cidr, &fam, a, &bits) == 0 &&
            (bits < 0 || bits > (fam == 4 ? 32 : 128)))
            abort();
        char canon[46];
        if (noise_tor_line(line, canon) == 1) {
            uint8_t b[16];
            if (inet_pton(strchr(canon, ':') ? AF_INET6 : AF_INET, canon, b) != 1)
                abort();
        }
    }
    free(text);
    return 0;
}
