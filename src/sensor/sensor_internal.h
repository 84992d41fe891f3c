/* sensor internals shared by its files and its fuzz targets; not for other modules. */
#ifndef TRAWL_SENSOR_INTERNAL_H
#define TRAWL_SENSOR_INTERNAL_H

#include <stdio.h>

#include "sensor/sensor.h"

/* Sets a field from raw bytes, escaping anything but printable ASCII as \xNN. */
void tr_sensor_set_text(tr_event *e, const char *key, const void *v, size_t n);
/* Removes telnet IAC sequences; out holds at least n bytes. Returns its length. */
size_t tr_telnet_strip(const uint8_t *p, size_t n, uint8_t *out);

/* The importers over an open stream; name is used in messages. */
int tr_pcap_import_fp(FILE *fp, const char *name, const char *sensor_name, tr_event_sink sink,
                      void *ctx, tr_import_stats *st, tr_error *err);
int tr_cowrie_import_fp(FILE *fp, const char *sensor_name, tr_event_sink sink, void *ctx,
                        tr_import_stats *st, tr_error *err);

#endif
