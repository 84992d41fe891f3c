/* sensor/event: one observation of one source, as the sensor module hands it
 * on. A listener makes one per connection or datagram, the pcap decoder one
 * per flow (or per SYN-only probe), an importer one per log record. The noise
 * module consumes them; the JSON form is the wire format of
 * POST /api/noise/events and of the sensor's disk spool.
 *
 * Field names are the YARA external variables that tag rules see (docs/noise.md),
 * so the same word means the same thing in an event, a tag rule and the API. */
#ifndef TRAWL_SENSOR_EVENT_H
#define TRAWL_SENSOR_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define TR_EVENT_PAYLOAD_MAX (64 * 1024)   /* first bytes received, capped */
#define TR_EVENT_FIELDS_MAX 64             /* parsed fields per event */

/* A parsed protocol field: http_method, http_path, http_query, http_user_agent,
 * http_host, ssh_client, hassh, ja3, ja3_hash, ja4, tls_sni, smb_dialects,
 * smb_compression, rdp_cookie, redis_command, username, password, command,
 * download_url, ... Values are NUL-free UTF-8 (invalid bytes escaped as \xNN). */
typedef struct tr_event_field {
    char *key;
    char *value;
} tr_event_field;

typedef struct tr_event {
    int64_t time_us;           /* UTC, microseconds since the epoch */
    char sensor[64];           /* the sensor's name */
    int family;                /* 4 or 6 */
    uint8_t src_ip[16];        /* network order; IPv4 in the first 4 bytes */
    uint8_t dst_ip[16];
    uint16_t src_port, dst_port;
    char transport[8];         /* "tcp", "udp", "icmp" */
    char proto[16];            /* "ssh" "telnet" "http" "tls" "smb" "rdp" "redis"
                                * "raw" (unparsed bytes) "syn" (no handshake) ... */
    /* Packet evidence, from a capture; -1 where unknown (listener events). */
    int32_t ip_id, ttl, tcp_window, tcp_flags;
    int64_t tcp_seq;
    char tcp_options[64];      /* option kinds in order, e.g. "2,4,8,1,3" ("" none) */
    bool handshake;            /* a TCP handshake completed (or UDP/log: true) */
    unsigned packets;          /* packets folded into this event (>= 1) */
    /* First bytes the source sent, at most TR_EVENT_PAYLOAD_MAX. Owned. */
    uint8_t *payload;
    size_t payload_len;
    /* Bit i: fields[i]'s key and value are static strings, not freed (see
     * tr_event_set_static). Meaningful below nfields only; every added field
     * sets its bit, so a copied event's stale bits never matter. */
    uint64_t borrowed;
    tr_event_field fields[TR_EVENT_FIELDS_MAX];
    size_t nfields;
} tr_event;

/* Sets every number to its "unknown" value and empties the rest. */
void tr_event_init(tr_event *e);
/* Frees payload and fields; the event can be initialised again. */
void tr_event_clear(tr_event *e);
/* Adds (or, for an existing key, replaces) a field; copies both strings.
 * Fields past TR_EVENT_FIELDS_MAX are dropped: returns -1 then. */
int tr_event_set(tr_event *e, const char *key, const char *value);
/* The same for strings with static storage (literals, constant tables):
 * borrowed, never copied or freed, so an event that carries them can move
 * anywhere in the process. Not for anything that is freed or changed. */
int tr_event_set_static(tr_event *e, const char *key, const char *value);
const char *tr_event_get(const tr_event *e, const char *key);
/* Copies at most TR_EVENT_PAYLOAD_MAX bytes as the payload. */
void tr_event_set_payload(tr_event *e, const void *p, size_t n);

/* "198.51.100.7" / "2001:db8::1" */
void tr_event_src_text(const tr_event *e, char out[46]);
void tr_event_dst_text(const tr_event *e, char out[46]);

/* JSON form: {"time": "2026-11-28T18:00:00.123456Z", "sensor", "src_ip",
 * "src_port", "dst_ip", "dst_port", "transport", "proto", "ip_id", "ttl",
 * "tcp_window", "tcp_flags", "tcp_seq", "tcp_options", "handshake", "packets",
 * "payload_b64", "fields": {key: value}}; unknown numbers are omitted. */
json_t *tr_event_to_json(const tr_event *e);
/* Appends that form as compact JSON text (no newline): the same bytes as
 * json_dumps(tr_event_to_json(e), JSON_COMPACT), without building the tree. */
void tr_event_json_line(const tr_event *e, tr_buf *out);
/* Fills e (initialised here) from that form; -1 with a message naming the
 * bad property. */
int tr_event_from_json(const json_t *j, tr_event *e, tr_error *err);

#endif
