/* trawl sensor: the live low-interaction listener. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "noise/noise.h"
#include "sensor/sensor.h"
#include "store/store.h"

static const char usage_text[] =
    "usage: trawl sensor import ...   (see trawl sensor import --help)\n"
    "       trawl sensor [--tcp PORTS] [--udp PORTS] [--bind ADDR] [--name NAME]\n"
    "                    [--out FILE.jsonl] [--upstream URL --key KEY] [--spool DIR]\n"
    "                    [--idle SECONDS] [--max-conns N] [--batch-seconds N]\n"
    "                    [--pcap IFACE] [--no-store] [--user USER]\n"
    "Listens on the given ports and records one event per connection or datagram:\n"
    "without --upstream, into the noise store of the data directory (--data DIR),\n"
    "committed in batches every --batch-seconds (default 2); with --upstream\n"
    "http://HOST:PORT, posted in batches to that trawl server (analyst key from\n"
    "--key or $TRAWL_SENSOR_KEY), spooling in --spool DIR (default\n"
    "DATA/sensor-spool) while it is unreachable. --out FILE also writes each event\n"
    "as a JSON line ('-' for stdout); with --no-store, only that (no store). PORTS is PORT[/ROLE],... with ROLE ssh, telnet or redis\n"
    "for a port whose number does not say so (22/2222 ssh, 23/2323 telnet,\n"
    "6379 redis). --pcap IFACE also captures packets (root or CAP_NET_RAW): SYN\n"
    "probes with their scanner fingerprints, and sessions to ports not listened on.\n"
    "--user USER: started as root, the sensor becomes USER once its ports and\n"
    "capture are open (the data directory, spool and --out must be USER's).\n"
    "Defaults: --tcp %s\n"
    "--udp %s --bind 0.0.0.0 --name HOSTNAME --idle 30 --max-conns 4096.\n";

static const char import_usage[] =
    "usage: trawl sensor import [--format pcap|cowrie] [--name NAME] [--out FILE.jsonl]\n"
    "                           [--count-only] FILE...\n"
    "Turns capture files (pcap, pcapng) or Cowrie logs (cowrie.json) into events, one\n"
    "JSON line each (stdout unless --out). The format defaults from the file's first\n"
    "bytes. Bad records are reported with their packet number and byte offset, or\n"
    "line number; every valid record is still converted (exit status 1 then).\n"
    "--count-only decodes and aggregates as usual but writes no events, only the\n"
    "counts (the capture side's own speed, without JSON or a store).\n";

/* --count-only: the decoder and its aggregation run in full; only the output is left out. */
static int count_only(void *ctx, tr_event *e, tr_error *err)
{
    (void)ctx;
    (void)e;
    (void)err;
    return 0;
}

static int write_line(void *ctx, tr_event *e, tr_error *err)
{
    FILE *out = ctx;
    json_t *j = tr_event_to_json(e);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s)
        return tr_fail(err, "out of memory");
    int bad = fprintf(out, "%s\n", s) < 0;
    free(s);
    return bad ? tr_fail_errno(err, "cannot write the events") : 0;
}

/* pcap (either byte order, nanosecond variant) or pcapng by magic; else Cowrie. */
static bool looks_like_capture(const char *path)
{
    unsigned char m[4] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    size_t n = fread(m, 1, 4, f);
    fclose(f);
    if (n < 4)
        return false;
    static const unsigned char magics[][4] = {{0xd4, 0xc3, 0xb2, 0xa1}, {0xa1, 0xb2, 0xc3, 0xd4},
                                              {0x4d, 0x3c, 0xb2, 0xa1}, {0xa1, 0xb2, 0x3c, 0x4d},
                                              {0x0a, 0x0d, 0x0d, 0x0a}};
    for (size_t i = 0; i < sizeof magics / sizeof magics[0]; i++)
        if (memcmp(m, magics[i], 4) == 0)
            return true;
    return false;
}

static int cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {{"format", required_argument, NULL, 'f'},
                                         {"name", required_argument, NULL, 'n'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"count-only", no_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0, 0, 0, 0}};
    const char *format = NULL, *name = NULL, *out_path = NULL;
    bool counting = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'f': format = optarg; break;
        case 'n': name = optarg; break;
        case 'o': out_path = optarg; break;
        case 'c': counting = true; break;
        case 'h': fputs(import_usage, stdout); return CLI_OK;
        default: return CLI_USAGE;
        }
    }
    if (format && strcmp(format, "pcap") != 0 && strcmp(format, "cowrie") != 0) {
        cli_error("--format is pcap or cowrie");
        return CLI_USAGE;
    }
    if (optind >= argc) {
        fputs(import_usage, stderr);
        return CLI_USAGE;
    }
    FILE *out = out_path ? fopen(out_path, "w") : stdout;
    if (!out) {
        cli_error("cannot open %s", out_path);
        return CLI_FAIL;
    }
    int rc = CLI_OK;
    for (int i = optind; i < argc; i++) {
        tr_import_stats st;
        tr_error err;
        bool pcap = format ? strcmp(format, "pcap") == 0 : looks_like_capture(argv[i]);
        tr_event_sink sink = counting ? count_only : write_line;
        int r = pcap ? tr_pcap_import(argv[i], name, sink, out, &st, &err)
                     : tr_cowrie_import(argv[i], name, sink, out, &st, &err);
        if (r != 0) {
            cli_error("%s", err.msg);
            rc = CLI_FAIL;
            continue;
        }
        fprintf(stderr, "%s: %llu %s, %llu events, %llu bad\n", argv[i],
                (unsigned long long)st.records, pcap ? "packets" : "lines",
                (unsigned long long)st.events, (unsigned long long)st.bad);
        if (st.bad) {
            cli_error("%s: %s", argv[i], st.first_bad);
            rc = CLI_FAIL;
        }
    }
    if (fflush(out) != 0 || (out != stdout && fclose(out) != 0)) {
        cli_error("cannot write %s", out_path ? out_path : "stdout");
        rc = CLI_FAIL;
    }
    return rc;
}

/* Local-store mode: the noise module's batch takes the events; the loop
 * commits it every --batch-seconds, and it commits by itself when full. The
 * store is opened by the sensor once it runs as --user, so its files are that
 * user's. */
typedef struct local_store {
    const char *data_dir;
    int batch_seconds;
    tr_noise *noise;
    tr_noise_batch *batch;
} local_store;

static int local_open(void *ctx, tr_error *err)
{
    local_store *l = ctx;
    tr_store *s = NULL;
    if (tr_store_open(l->data_dir, TR_STORE_CREATE, &s, err) != 0)
        return -1;
    tr_store_close(s);
    if (tr_noise_open(l->data_dir, &l->noise, err) != 0)
        return -1;
    l->batch = tr_noise_batch_new(l->noise, 10000);
    tr_log(TR_LOG_INFO,
           "sensor: events go to the noise store in %s, committed every %d s; killing the "
           "sensor (SIGKILL) loses at most the events of that interval",
           l->data_dir, l->batch_seconds);
    return 0;
}

static int local_sink(void *ctx, tr_event *e, tr_error *err)
{
    return tr_noise_batch_sink(((local_store *)ctx)->batch, e, err);
}

static int local_flush(void *ctx, tr_error *err)
{
    return tr_noise_batch_flush(((local_store *)ctx)->batch, NULL, err);
}

int cli_cmd_sensor(const cli_ctx *ctx, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "import") == 0)
        return cmd_import(argc - 1, argv + 1);

    static const struct option opts[] = {
        {"tcp", required_argument, NULL, 't'},       {"udp", required_argument, NULL, 'u'},
        {"bind", required_argument, NULL, 'b'},      {"name", required_argument, NULL, 'n'},
        {"out", required_argument, NULL, 'o'},       {"upstream", required_argument, NULL, 'U'},
        {"key", required_argument, NULL, 'k'},       {"spool", required_argument, NULL, 's'},
        {"idle", required_argument, NULL, 'i'},      {"max-conns", required_argument, NULL, 'm'},
        {"batch-seconds", required_argument, NULL, 'B'}, {"pcap", required_argument, NULL, 'p'},
        {"no-store", no_argument, NULL, 'N'},      {"user", required_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0}};
    const char *tcp = tr_sensor_default_tcp, *udp = tr_sensor_default_udp;
    char host[64] = "sensor";
    gethostname(host, sizeof host - 1);
    tr_sensor_opts o = {.name = host, .bind = "0.0.0.0", .idle_seconds = 30, .max_conns = 4096,
                        .max_memory = 256u << 20, .batch_seconds = 2,
                        .key = getenv("TRAWL_SENSOR_KEY")};
    char *spool = NULL;
    bool store = true;
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
        case 'p': o.pcap_iface = optarg; break;
        case 'N': store = false; break;
        case 'R': o.user = optarg; break;
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
    if (!store && !o.out_path) {
        cli_error("--no-store needs --out FILE (the events must go somewhere)");
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
    local_store local = {.data_dir = ctx->data_dir, .batch_seconds = o.batch_seconds};
    if (!o.upstream && store) {
        o.sink = local_sink;
        o.sink_flush = local_flush;
        o.sink_open = local_open;
        o.sink_ctx = &local;
    }
    int rc = tr_sensor_run(&o, &err);
    if (rc != 0)
        cli_error("%s", err.msg);
    if (local.batch) {
        tr_noise_stats ns = {0};
        if (tr_noise_batch_flush(local.batch, &ns, &err) != 0) {
            cli_error("%s", err.msg);
            rc = -1;
        } else {
            tr_log(TR_LOG_INFO, "sensor: %llu events stored (%llu tagged, %llu new addresses)",
                   (unsigned long long)ns.events, (unsigned long long)ns.tagged,
                   (unsigned long long)ns.new_ips);
        }
        tr_noise_batch_free(local.batch);
    }
    if (local.noise)
        tr_noise_close(local.noise);
    free(tp);
    free(up);
    free(spool);
    return rc == 0 ? CLI_OK : CLI_FAIL;
}
