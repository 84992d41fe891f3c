/* trawl serve: run the HTTP server until SIGINT or SIGTERM. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "cli/cli.h"
#include "http/http.h"
#include "analysis/analysis.h"
#include "store/store.h"

static bool key_exists(const char *data_dir)
{
    tr_auth *a = NULL;
    tr_error err;
    tr_key_info *keys = NULL;
    size_t n = 0;
    if (tr_auth_open(data_dir, &a, &err) == 0 && tr_auth_list_keys(a, &keys, &n, &err) == 0)
        free(keys);
    tr_auth_close(a);
    return n > 0;
}

int cli_cmd_serve(const cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"anonymous-read", no_argument, NULL, 'a'},
                                         {"max-upload", required_argument, NULL, 'm'},
                                         {"workers", required_argument, NULL, 'w'},
                                         {"live-queue", required_argument, NULL, 'q'},
                                         {"per-ip-connections", required_argument, NULL, 'p'},
                                         {"header-timeout", required_argument, NULL, 'T'},
                                         {"allowed-host", required_argument, NULL, 'H'},
                                         {"hunt-time-limit", required_argument, NULL, 'L'},
                                         {"kb-sync", required_argument, NULL, 'K'},
                                         {"clamav-db", required_argument, NULL, 'C'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0, 0, 0, 0}};
    tr_http_config cfg = {.data_dir = ctx->data_dir, .listen = "127.0.0.1:8080", .threads = 4};
    const char *clamav_db = getenv("TRAWL_CLAMAV_DB");
    const char *hosts[64];
    size_t nhosts = 0;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "l:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': cfg.listen = optarg; break;
        case 't': {
            long n = strtol(optarg, NULL, 10);
            if (n < 1 || n > 256) {
                cli_error("--threads takes a number from 1 to 256");
                return CLI_USAGE;
            }
            cfg.threads = (unsigned)n;
            break;
        }
        case 'a': cfg.anonymous_read = true; break;
        case 'w': {
            long n = strtol(optarg, NULL, 10);
            if (n < 1 || n > 256) {
                cli_error("--workers takes a number from 1 to 256");
                return CLI_USAGE;
            }
            cfg.workers = (unsigned)n;
            break;
        }
        case 'q': {
            long n = strtol(optarg, NULL, 10);
            if (n < 1 || n > 1000000) {
                cli_error("--live-queue takes a number from 1 to 1000000");
                return CLI_USAGE;
            }
            cfg.live_queue = (size_t)n;
            break;
        }
        case 'p': {
            long n = strtol(optarg, NULL, 10);
            if (n < 1 || n > 100000) {
                cli_error("--per-ip-connections takes a number from 1 to 100000");
                return CLI_USAGE;
            }
            cfg.per_ip_connections = (unsigned)n;
            break;
        }
        case 'H':
            if (nhosts == sizeof hosts / sizeof hosts[0]) {
                cli_error("--allowed-host: at most 64 names");
                return CLI_USAGE;
            }
            hosts[nhosts++] = optarg;
            cfg.allowed_hosts = hosts;
            cfg.n_allowed_hosts = nhosts;
            break;
        case 'L': {
            long n = strtol(optarg, NULL, 10);
            if (n < 1 || n > 7 * 86400) {
                cli_error("--hunt-time-limit takes seconds from 1 to 604800");
                return CLI_USAGE;
            }
            cfg.hunt_time_limit = (unsigned)n;
            break;
        }
        case 'C': clamav_db = optarg; break;
        case 'K': {
            char *end = NULL;
            long n = strtol(optarg, &end, 10);
            if (*end || n < 0 || n > 86400) {
                cli_error("--kb-sync takes seconds from 0 (never) to 86400");
                return CLI_USAGE;
            }
            cfg.kb_sync_seconds = n == 0 ? -1 : (int)n;
            break;
        }
        case 'T': {
            long n = strtol(optarg, NULL, 10);
            if (n < 1 || n > 3600) {
                cli_error("--header-timeout takes seconds from 1 to 3600");
                return CLI_USAGE;
            }
            cfg.header_timeout = (unsigned)n;
            break;
        }
        case 'm': {
            char *end = NULL;
            unsigned long long mb = strtoull(optarg, &end, 10);
            if (*end || mb == 0 || mb > 1024 * 1024) {
                cli_error("--max-upload takes a size in MB from 1 to 1048576");
                return CLI_USAGE;
            }
            cfg.max_upload = (uint64_t)mb << 20;
            break;
        }
        case 'h':
            printf("usage: trawl serve [--listen ADDR:PORT (127.0.0.1:8080)] [--threads N]\n"
                   "                   [--anonymous-read] [--max-upload MB (512)] [--workers N]\n"
                   "                   [--live-queue N (1024)] [--per-ip-connections N (64)]\n"
                   "                   [--header-timeout SECONDS (10)] [--allowed-host NAME]...\n"
                   "                   [--hunt-time-limit SECONDS (3600)] [--kb-sync SECONDS (120)]\n"
                   "                   [--clamav-db DIR ($TRAWL_CLAMAV_DB)]\n"
                   "Every write needs an API key ('trawl key add'); --anonymous-read lets\n"
                   "anyone who reaches the port list, search and download. Hunts run in the\n"
                   "server, two at a time, sharing N verification workers (default: cores), each\n"
                   "stopped at the hunt time limit (a request may ask for less, not more).\n"
                   "Uploads are scanned against the live rule sets behind the answer; past N\n"
                   "waiting, they are recorded in the database and scanned when the queue drains.\n"
                   "One client address may hold N connections; a connection that sends no\n"
                   "request within the header timeout is closed. Requests must name this server:\n"
                   "its address, localhost, or an --allowed-host NAME (others get 421).\n"
                   "docs/security.md has every limit. Every --kb-sync seconds, if anything was\n"
                   "stored since, trawl's data is linked into the knowledge base (trawl kb sync;\n"
                   "0: only when asked).\n"
                   "With a ClamAV database, new samples are scanned with it (intelligence.clamav,\n"
                   "get_clamavinfo; docs/analysis.md).\n");
            return CLI_OK;
        default:
            return CLI_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("serve takes no arguments");
        return CLI_USAGE;
    }
    tr_error err;
    struct sockaddr_storage probe;
    if (tr_parse_listen(cfg.listen, &probe, &err) != 0) {
        cli_error("%s", err.msg);
        return CLI_USAGE;
    }
    if (clamav_db && *clamav_db && tr_clamav_configure(clamav_db, &err) != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    /* Create the data directory up front so that every request can open
     * the store read-only. */
    tr_store *s;
    if (tr_store_open(ctx->data_dir, TR_STORE_CREATE, &s, &err) != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    tr_store_close(s);

    /* Signals are taken synchronously by this thread; the server's threads
     * inherit the blocked mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    tr_server *srv;
    if (tr_server_start(&cfg, &srv, &err) != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    const char *host = cfg.listen;
    const char *colon = strrchr(host, ':');
    printf("trawl: serving %s on http://%.*s:%u/\n", ctx->data_dir, (int)(colon - host), host,
           tr_server_port(srv));
    fflush(stdout);
    if (!key_exists(ctx->data_dir))
        fprintf(stderr, "trawl: no API keys yet: 'trawl --data %s key add --role admin NAME'"
                        " creates one\n", ctx->data_dir);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "trawl: %s received, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    tr_server_stop(srv);
    return CLI_OK;
}
