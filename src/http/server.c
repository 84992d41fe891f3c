#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http/http_internal.h"

struct tr_server {
    struct MHD_Daemon *mhd;
    char *data_dir;
    unsigned port;
};

int tr_parse_listen(const char *spec, struct sockaddr_storage *out, tr_error *err)
{
    memset(out, 0, sizeof *out);
    char host[256];
    const char *colon;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':')
            return tr_fail(err, "bad listen address '%s' (want [ADDR]:PORT)", spec);
        snprintf(host, sizeof host, "%.*s", (int)(close - spec - 1), spec + 1);
        colon = close + 1;
    } else {
        colon = strrchr(spec, ':');
        if (!colon)
            return tr_fail(err, "bad listen address '%s' (want ADDR:PORT)", spec);
        snprintf(host, sizeof host, "%.*s", (int)(colon - spec), spec);
    }
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 0 || port > 65535)
        return tr_fail(err, "bad port in listen address '%s'", spec);
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        return 0;
    }
    return tr_fail(err, "bad address '%s' in '%s' (want a numeric IPv4 or IPv6 address)", host, spec);
}

enum MHD_Result http_send_text(http_request *r, unsigned status, const char *content_type,
                               const char *body, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", content_type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    enum MHD_Result rc = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result http_send_json(http_request *r, unsigned status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    if (!text)
        return MHD_NO;
    enum MHD_Result rc = http_send_text(r, status, "application/json", text, strlen(text));
    free(text);
    return rc;
}

enum MHD_Result http_send_error(http_request *r, unsigned status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *body = json_pack("{s:s, s:s}", "query_status", "error", "error", msg);
    if (!body)
        return MHD_NO;
    return http_send_json(r, status, body);
}

const char *http_query(http_request *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result route(void *cls, struct MHD_Connection *conn, const char *url,
                             const char *method, const char *version, const char *upload_data,
                             size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    tr_server *srv = cls;
    /* First call per request: headers only; nothing to keep yet. */
    if (*con_cls == NULL) {
        *con_cls = srv;
        return MHD_YES;
    }
    if (*upload_size) {
        /* No endpoint takes a body yet: drain it and answer at the end. */
        *upload_size = 0;
        return MHD_YES;
    }
    http_request r = {conn, method, url, srv->data_dir};
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (strcmp(url, "/api/health") == 0)
        return get ? api_health(&r) : http_send_error(&r, 405, "use GET");
    if (strcmp(url, "/api/samples") == 0 || strncmp(url, "/api/samples/", 13) == 0) {
        if (!get)
            return http_send_error(&r, 405, "use GET");
        return api_samples(&r, url[12] == '/' ? url + 13 : "");
    }
    if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)
        return get ? ui_index(&r) : http_send_error(&r, 405, "use GET");
    if (strncmp(url, "/api/", 5) == 0)
        return http_send_error(&r, 404, "no API endpoint %s", url);
    return http_send_text(&r, 404, "text/plain; charset=utf-8", "not found\n", 10);
}

int tr_server_start(const tr_http_config *cfg, tr_server **out, tr_error *err)
{
    struct sockaddr_storage addr;
    if (tr_parse_listen(cfg->listen, &addr, err) != 0)
        return -1;
    tr_server *srv = tr_xcalloc(1, sizeof *srv);
    srv->data_dir = tr_xstrdup(cfg->data_dir);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    srv->mhd = MHD_start_daemon(flags, 0, NULL, NULL, route, srv,
                                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->threads ? cfg->threads : 4),
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024),
                                MHD_OPTION_END);
    if (!srv->mhd) {
        free(srv->data_dir);
        free(srv);
        return tr_fail(err, "cannot listen on %s (address in use, or not this machine's?)",
                       cfg->listen);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    *out = srv;
    return 0;
}

unsigned tr_server_port(const tr_server *srv)
{
    return srv->port;
}

void tr_server_stop(tr_server *srv)
{
    if (!srv)
        return;
    MHD_stop_daemon(srv->mhd);
    free(srv->data_dir);
    free(srv);
}
