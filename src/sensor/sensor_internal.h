/* sensor internals shared by its files and its fuzz targets; not for other modules. */
#ifndef TRAWL_SENSOR_INTERNAL_H
#define TRAWL_SENSOR_INTERNAL_H

#include <stdio.h>

#include "sensor/sensor.h"

/* Sets a field from raw bytes, escaping anything but printable ASCII as \xNN. */
void tr_sensor_set_text(tr_event *e, const char *key, const void *v, size_t n);
/* Removes telnet IAC sequences; out holds at least n bytes. Returns its length. */
size_t tr_telnet_strip(const uint8_t *p, size_t n, uint8_t *out);

/* ---- the live sensor's answers ---------------------------------------------*/
enum { ROLE_AUTO, ROLE_SSH, ROLE_TELNET, ROLE_REDIS };

typedef struct tr_responder {
    int role;
    int telnet_state;     /* prompts sent: 0 login, 1 password, 2 done */
    size_t redis_done;    /* bytes of Redis commands already answered */
} tr_responder;

/* Starts a conversation; appends to reply what the server says first (SSH
 * banner and KEXINIT, telnet negotiation and login prompt). */
void tr_responder_init(tr_responder *r, int role, tr_buf *reply);
/* p/n is everything the client has sent so far (at most 64 KiB). Appends the
 * answer to what is new; returns 1 when the client has shown what its
 * protocol will show and the connection should end. */
int tr_responder_step(tr_responder *r, const uint8_t *p, size_t n, tr_buf *reply);

/* The importers over an open stream; name is used in messages. */
int tr_pcap_import_fp(FILE *fp, const char *name, const char *sensor_name, tr_event_sink sink,
                      void *ctx, tr_import_stats *st, tr_error *err);
int tr_cowrie_import_fp(FILE *fp, const char *sensor_name, tr_event_sink sink, void *ctx,
                        tr_import_stats *st, tr_error *err);

/* The packet decoder on its own, for a live capture: packets in, events to
 * the sink. Events of completed TCP sessions to a skipped port, and UDP to a
 * skipped port, are left out (a listener on that port records them); SYN
 * probes to it are still reported. off is the record's file offset, or -1. */
struct pcap_pkthdr;
typedef struct tr_pcap_decoder tr_pcap_decoder;
tr_pcap_decoder *tr_pcap_decoder_new(const char *sensor_name, tr_event_sink sink, void *ctx,
                                     tr_import_stats *st, tr_error *err);
int tr_pcap_decoder_skip_port(tr_pcap_decoder *d, int ipproto, uint16_t port);
int tr_pcap_decoder_packet(tr_pcap_decoder *d, int dlt, const struct pcap_pkthdr *h,
                           const uint8_t *b, long off);
void tr_pcap_decoder_tick(tr_pcap_decoder *d, int64_t now_us);   /* idle flows end */
/* Finishes every flow and probe (their events go out), frees; -1 if the sink stopped. */
int tr_pcap_decoder_free(tr_pcap_decoder *d);

/* ---- the store writer (sinkq.c) -------------------------------------------*/
/* A thread that hands events to sink, at most cap waiting, and calls flush
 * every flush_seconds and once more at the stop. */
typedef struct tr_sinkq tr_sinkq;
tr_sinkq *tr_sinkq_start(tr_event_sink sink, int (*flush)(void *ctx, tr_error *err), void *ctx,
                         int flush_seconds, size_t cap, tr_error *err);
/* Moves e's contents in (e is left empty); waits while the queue is full. */
void tr_sinkq_push(tr_sinkq *q, tr_event *e);
/* Hands over what waits, flushes, ends the thread, frees. */
void tr_sinkq_stop(tr_sinkq *q);

#endif
