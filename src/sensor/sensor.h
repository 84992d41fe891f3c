/* sensor: what a source sent, turned into events. Protocol parsers (pure
 * functions over the first bytes a client sent), the pcap/pcapng decoder with
 * scanner fingerprints, the Cowrie log importer, and the live low-interaction
 * listener (`trawl sensor`) with its upstream spool. The sensor never
 * classifies or stores events and never executes or forwards anything: it
 * hands each event to a sink (a JSONL file, the upstream server, the noise
 * module). */
#ifndef TRAWL_SENSOR_H
#define TRAWL_SENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "sensor/event.h"

/* Receives each event; returns 0 to go on, -1 to stop (err filled). The sink
 * owns nothing: the event is cleared by the caller after the call. */
typedef int (*tr_event_sink)(void *ctx, tr_event *e, tr_error *err);

/* records read (packets, lines), events handed to the sink, bad records
 * skipped; first_bad names the first one ("packet 7 at byte offset 912: ...",
 * "line 3: ..."). */
typedef struct tr_import_stats {
    uint64_t records, events, bad;
    char first_bad[256];
} tr_import_stats;

/* Both return 0 once the file has been read as far as it can be (bad records
 * are counted in st, not fatal: every valid record before and after is kept),
 * -1 when the file cannot be opened or the sink stopped. sensor_name may be
 * NULL ("pcap"; for Cowrie, each line's own "sensor"). */
int tr_pcap_import(const char *path, const char *sensor_name, tr_event_sink sink, void *ctx,
                   tr_import_stats *st, tr_error *err);     /* pcap and pcapng */
int tr_cowrie_import(const char *path, const char *sensor_name, tr_event_sink sink, void *ctx,
                     tr_import_stats *st, tr_error *err);   /* cowrie.json lines */

/* ---- protocol parsers ----------------------------------------------------
 * Each reads the first bytes a client sent on one connection (or one
 * datagram) and, when they are its protocol, sets e->proto and the fields it
 * finds, returning 1; 0 when the bytes are not its protocol (e untouched).
 * Truncated input yields whatever fields were complete. */
int tr_parse_ssh(tr_event *e, const uint8_t *p, size_t n);     /* ssh_client, hassh */
int tr_parse_tls(tr_event *e, const uint8_t *p, size_t n);     /* tls_sni, ja3, ja3_hash, ja4 */
int tr_parse_http(tr_event *e, const uint8_t *p, size_t n);    /* http_* */
int tr_parse_telnet(tr_event *e, const uint8_t *p, size_t n);  /* username, password, command */
int tr_parse_smb(tr_event *e, const uint8_t *p, size_t n);     /* smb_dialects, smb_compression */
int tr_parse_rdp(tr_event *e, const uint8_t *p, size_t n);     /* rdp_cookie, rdp_protocols */
int tr_parse_redis(tr_event *e, const uint8_t *p, size_t n);   /* redis_command */

/* Picks the parser from the bytes themselves (and e->dst_port where bytes
 * alone are ambiguous: telnet, inline Redis), sets the payload, and marks
 * known Nmap service probes (scanner=nmap). proto "raw" when nothing fits. */
void tr_sensor_parse(tr_event *e, const uint8_t *p, size_t n);

/* ---- the live sensor -----------------------------------------------------*/
/* A port and what to play on it: "ssh" and "telnet" speak first (banner,
 * login prompt); "" picks by the well-known port number (22/2222 ssh, 23/2323
 * telnet) and otherwise by the client's first bytes. */
typedef struct tr_sensor_port {
    uint16_t port;
    char role[12];
} tr_sensor_port;

typedef struct tr_sensor_opts {
    const char *name;            /* sensor name in every event */
    const char *bind;            /* address to listen on ("0.0.0.0", "::") */
    const tr_sensor_port *tcp;
    size_t ntcp;
    const tr_sensor_port *udp;
    size_t nudp;
    const char *out_path;        /* JSON lines ("-" stdout), or NULL */
    const char *upstream;        /* http://host:port base URL, or NULL */
    const char *key;             /* API key for upstream */
    const char *spool_dir;       /* batches waiting for upstream */
    int idle_seconds;            /* per-connection idle timeout */
    size_t max_conns;            /* concurrent connections */
    size_t max_memory;           /* bytes buffered over all connections */
    int batch_seconds;           /* how long events gather before a batch is spooled */
    const char *pcap_iface;      /* also capture on this interface (SYN probes), or NULL */
    /* Ports below 1024 and capture need root; parsing what the internet sends
     * must not run as root. Once ports and capture are open, the sensor
     * becomes this user (started as root), or NULL: stays who it is. */
    const char *user;
    /* Also hands every event to this sink (the CLI's local noise store), and
     * calls sink_flush every batch_seconds and when stopping, so a batching
     * sink commits what it holds. NULL: none. */
    tr_event_sink sink;
    int (*sink_flush)(void *ctx, tr_error *err);
    /* Opens what the sink writes to, after `user` took effect, so the files it
     * creates are that user's. NULL: the sink is ready as given. */
    int (*sink_open)(void *ctx, tr_error *err);
    void *sink_ctx;
} tr_sensor_opts;

/* "22,23,8080/http,2222/ssh" into ports (caller frees *out). */
int tr_sensor_parse_ports(const char *list, tr_sensor_port **out, size_t *n, tr_error *err);
/* The default lists: the most-scanned TCP and UDP services. */
extern const char tr_sensor_default_tcp[];
extern const char tr_sensor_default_udp[];

/* Runs until SIGINT/SIGTERM; 0 on a clean stop, -1 when it cannot start. */
int tr_sensor_run(const tr_sensor_opts *o, tr_error *err);

#endif
