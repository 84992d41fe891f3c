/* Raw HTTP requests against the real server, in process: routing, auth,
 * multipart uploads, JSON bodies and query strings. The token KEY in an
 * input is replaced by a valid analyst key so that inputs reach past auth. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/core.h"
#include "http/http.h"
#include "store/store.h"

static tr_server *server;
static unsigned port;
static char key[TR_KEY_LEN];

static void start(void)
{
    static char dir[] = "/tmp/trawl-fuzz-http-XXXXXX";
    tr_error err;
    tr_store *s;
    tr_auth *a;
    if (!mkdtemp(dir) || tr_store_open(dir, TR_STORE_CREATE, &s, &err) != 0)
        abort();
    tr_store_close(s);
    if (tr_auth_open(dir, &a, &err) != 0 || tr_auth_add_key(a, "fuzz", TR_ROLE_ANALYST, key, &err) != 0)
        abort();
    tr_auth_close(a);
    tr_http_config cfg = {.data_dir = dir, .listen = "127.0.0.1:0", .threads = 2, .max_upload = 1 << 20};
    if (tr_server_start(&cfg, &server, &err) != 0)
        abort();
    port = tr_server_port(server);
}

static void send_request(const uint8_t *data, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        tr_buf req = {0};
        for (size_t i = 0; i < size; i++) {
            if (i + 3 <= size && memcmp(data + i, "KEY", 3) == 0) {
                tr_buf_append(&req, key, strlen(key));
                i += 2;
            } else {
                tr_buf_append(&req, data + i, 1);
            }
        }
        if (req.len)
            tr_write_all(fd, req.data, req.len);
        tr_buf_free(&req);
        shutdown(fd, SHUT_WR);
        char buf[4096];
        /* Bounded: an event stream (/api/stix/stream) never ends by itself. */
        double deadline = tr_monotonic() + 4;
        while (read(fd, buf, sizeof buf) > 0 && tr_monotonic() < deadline)
            ;
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!server)
        start();
    send_request(data, size);
    return 0;
}
