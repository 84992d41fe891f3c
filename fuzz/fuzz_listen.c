/* Text from the command line and URLs: listen addresses and hash arguments. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/core.h"
#include "http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    struct sockaddr_storage addr;
    tr_error err;
    tr_parse_listen(s, &addr, &err);
    char out[TR_SHA256_HEX];
    tr_hash_normalize(s, out, sizeof out);
    free(s);
    return 0;
}
