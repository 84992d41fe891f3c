/* trawl sensor: the live low-interaction listener. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sensor/sensor.h"

static const char usage_text[] =
    "usage: trawl sensor [--tcp PORTS] [--udp PORTS] [--bind ADDR] [--name NAME]\n"
    "                    [--out FILE.jsonl] [--upstream URL --key KEY] [--spool DIR]\n"
    "                    [--idle SECONDS] [--max-conns N] [--batch-seconds N]\n"
    "Listens on the given ports and writes one event per connection or datagram\n"
    "as a JSON line (--out FILE, '-' for stdout) and/or posts them in batches to a\n"
    "trawl server (--upstream http://HOST:PORT, analyst key from --key or\n"
    "$TRAWL_SENSOR_KEY), spooling in --spool DIR (default DATA/sensor-spool) while\n"
    "it is unreachable. PORTS is PORT[/ROLE],... with ROLE ssh, telnet or redis\n"
    "for a port whose number does not say so (22/2222 ssh, 23/2323 telnet,\n"
    "6379 redis). Defaults: --tcp %s\n"
    "--udp %s --bind 0.0.0.0 --name HOSTNAME --idle 30 --max-conns 4096.\n";

int cli_cmd_sensor(const cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"tcp", required_argument, NULL, 't'},       {"udp", required_argument, NULL, 'u'},
        {"bind", required_argument, NULL, 'b'},      {"name", required_argument, NULL, 'n'},
        {"out", required_argument, NULL, 'o'},       {"upstream", required_argument, NULL, 'U'},
        {"key", required_argument, NULL, 'k'},       {"spool", required_argument, NULL, 's'},
        {"idle", required_argument, NULL, 'i'},      {"max-conns", required_argument, NULL, 'm'},
        {"batch-seconds", required_argument, NULL, 'B'}, {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0}};
    const char *tcp = tr_sensor_default_tcp, *udp = tr_sensor_default_udp;
    char host[64] = "sensor";
    gethostname(host, sizeof host - 1);
    tr_sensor_opts o = {.name = host, .bind = "0.0.0.0", .idle_seconds = 30, .max_conns = 4096,
                        .max_memory = 256u << 20, .batch_seconds = 2,
                        .key = getenv("TRAWL_SENSOR_KEY")};
    char *spool = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        long v;
        switch (c) {
        case 't': tcp = optarg; break;
        case 'u': udp = optarg; break;
        case 'b': o.bind = optarg; break;
        case 'n': o.name = optarg; break;
        case 'o': o.out_path = optarg; break;
        case 'U': o.upstream = optarg; break;
        case 'k': o.key = optarg; break;
        case 's': o.spool_dir = optarg; break;
        case 'i':
        case 'm':
        case 'B':
            v = strtol(optarg, NULL, 10);
            if (v < 1 || v > 1000000) {
                cli_error("--%s takes a number from 1 to 1000000",
                          c == 'i' ? "idle" : c == 'm' ? "max-conns" : "batch-seconds");
                return CLI_USAGE;
            }
            if (c == 'i')
                o.idle_seconds = (int)v;
            else if (c == 'm')
                o.max_conns = (size_t)v;
            else
                o.batch_seconds = (int)v;
            break;
        case 'h': printf(usage_text, tr_sensor_default_tcp, tr_sensor_default_udp); return CLI_OK;
        default: return CLI_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("sensor takes no operands");
        return CLI_USAGE;
    }
    if (!o.out_path && !o.upstream) {
        cli_error("sensor needs --out FILE and/or --upstream URL");
        return CLI_USAGE;
    }
    if (o.upstream && (!o.key || !*o.key)) {
        cli_error("--upstream needs --key KEY (or $TRAWL_SENSOR_KEY)");
        return CLI_USAGE;
    }
    if (strlen(o.name) >= 64) {
        cli_error("--name is limited to 63 bytes");
        return CLI_USAGE;
    }
    tr_error err;
    tr_sensor_port *tp = NULL, *up = NULL;
    size_t ntp = 0, nup = 0;
    if ((*tcp && tr_sensor_parse_ports(tcp, &tp, &ntp, &err) != 0) ||
        (*udp && tr_sensor_parse_ports(udp, &up, &nup, &err) != 0)) {
        cli_error("%s", err.msg);
        free(tp);
        return CLI_USAGE;
    }
    o.tcp = tp;
    o.ntcp = ntp;
    o.udp = up;
    o.nudp = nup;
    if (!o.spool_dir) {
        spool = tr_xasprintf("%s/sensor-spool", ctx->data_dir);
        o.spool_dir = spool;
    }
    int rc = tr_sensor_run(&o, &err);
    if (rc != 0)
        cli_error("%s", err.msg);
    free(tp);
    free(up);
    free(spool);
    return rc == 0 ? CLI_OK : CLI_FAIL;
}
