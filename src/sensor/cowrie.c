/* sensor/cowrie: Cowrie honeypot JSON logs (cowrie.json, one event per line,
 * 2.x and 3.x) as events. A connect event carries the session's addresses;
 * later events of the session only name it, so the importer remembers them. */
#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sensor/sensor.h"
#include "sensor/sensor_internal.h"

#define SESSIONS 4096   /* direct-mapped: an old session's slot may be reused */

typedef struct session {
    char id[40];
    int family;
    uint8_t dst[16];
    uint16_t src_port, dst_port;
} session;

static int parse_ip(const char *s, int *family, uint8_t out[16])
{
    memset(out, 0, 16);
    if (!s)
        return -1;
    if (inet_pton(AF_INET, s, out) == 1) {
        *family = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, s, out) == 1) {
        *family = 6;
        return 0;
    }
    return -1;
}

/* "2026-06-23T14:15:26.253618Z" (Cowrie writes UTC with a Z). */
static int parse_time(const char *s, int64_t *us)
{
    struct tm tm = {0};
    int n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t frac = 0;
    const char *p = s + n;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++)
            if (digits++ < 6)
                frac = frac * 10 + (*p - '0');
        for (; digits < 6; digits++)
            frac *= 10;
    }
    if (*p != 'Z' && strcmp(p, "+00:00") != 0)
        return -1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *us = (int64_t)t * 1000000 + frac;
    return 0;
}

static unsigned slot(const char *id)
{
    uint32_t h = 2166136261u;
    for (; *id; id++)
        h = (h ^ (uint8_t)*id) * 16777619u;
    return h % SESSIONS;
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void set_str(tr_event *e, const char *key, const json_t *o, const char *k)
{
    const char *v = str(o, k);
    if (v)
        tr_sensor_set_text(e, key, v, strlen(v));
}

/* One line to one event; a message when the line is not a Cowrie event. */
static const char *line_event(const json_t *o, const char *sensor_name, session *sessions,
                              tr_event *e)
{
    if (!json_is_object(o))
        return "not a JSON object";
    const char *id = str(o, "eventid");
    if (!id || strncmp(id, "cowrie.", 7) != 0)
        return "'eventid' must be a cowrie.* string";
    tr_event_init(e);
    if (parse_ip(str(o, "src_ip"), &e->family, e->src_ip) != 0)
        return "'src_ip' must be an IP address";
    if (parse_time(str(o, "timestamp"), &e->time_us) != 0) {
        json_t *ep = json_object_get(o, "epoch");
        if (!json_is_integer(ep))
            return "'timestamp' must be an ISO 8601 UTC time";
        e->time_us = json_integer_value(ep) * 1000;
    }
    const char *sn = sensor_name && *sensor_name ? sensor_name : str(o, "sensor");
    snprintf(e->sensor, sizeof e->sensor, "%s", sn && *sn ? sn : "cowrie");
    strcpy(e->transport, "tcp");
    e->handshake = true;
    const char *proto = str(o, "protocol");
    snprintf(e->proto, sizeof e->proto, "%s",
             proto && (strcmp(proto, "ssh") == 0 || strcmp(proto, "telnet") == 0) ? proto : "ssh");

    const char *sid = str(o, "session");
    session *s = sid ? &sessions[slot(sid)] : NULL;
    int fam;
    uint8_t dst[16];
    if (parse_ip(str(o, "dst_ip"), &fam, dst) == 0 && fam == e->family) {
        memcpy(e->dst_ip, dst, 16);
        json_int_t sp = json_integer_value(json_object_get(o, "src_port"));
        json_int_t dp = json_integer_value(json_object_get(o, "dst_port"));
        e->src_port = sp > 0 && sp < 65536 ? (uint16_t)sp : 0;
        e->dst_port = dp > 0 && dp < 65536 ? (uint16_t)dp : 0;
        if (s && strlen(sid) < sizeof s->id) {
            strcpy(s->id, sid);
            s->family = fam;
            memcpy(s->dst, dst, 16);
            s->src_port = e->src_port;
            s->dst_port = e->dst_port;
        }
    } else if (s && strcmp(s->id, sid) == 0 && s->family == e->family) {
        memcpy(e->dst_ip, s->dst, 16);
        e->src_port = s->src_port;
        e->dst_port = s->dst_port;
    }

    tr_sensor_set_text(e, "cowrie_eventid", id, strlen(id));
    if (sid)
        tr_sensor_set_text(e, "cowrie_session", sid, strlen(sid));
    const char *ev = id + 7;
    if (strncmp(ev, "login.", 6) == 0) {
        set_str(e, "username", o, "username");
        set_str(e, "password", o, "password");
        tr_event_set(e, "login_result", strcmp(ev, "login.success") == 0 ? "success" : "failed");
    } else if (strcmp(ev, "command.input") == 0 || strcmp(ev, "command.failed") == 0) {
        set_str(e, "command", o, "input");
    } else if (strncmp(ev, "session.file_download", 21) == 0 ||
               strcmp(ev, "session.file_upload") == 0) {
        set_str(e, "download_url", o, "url");
        set_str(e, "download_sha256", o, "shasum");
    } else if (strcmp(ev, "client.version") == 0) {
        set_str(e, "ssh_client", o, "version");
    } else if (strcmp(ev, "client.kex") == 0) {
        set_str(e, "hassh", o, "hassh");
    } else if (strcmp(ev, "direct-tcpip.request") == 0) {
        const char *ip = str(o, "dst_ip");
        char v[80];
        snprintf(v, sizeof v, "%s:%lld", ip ? ip : "",
                 (long long)json_integer_value(json_object_get(o, "dst_port")));
        tr_event_set(e, "tunnel_dst", v);
    }
    return NULL;
}

int tr_cowrie_import_fp(FILE *fp, const char *sensor_name, tr_event_sink sink, void *ctx,
                        tr_import_stats *st, tr_error *err)
{
    memset(st, 0, sizeof *st);
    session *sessions = tr_xcalloc(SESSIONS, sizeof *sessions);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t lineno = 0;
    int rc = 0;
    while ((n = getline(&line, &cap, fp)) != -1) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (n == 0)
            continue;
        st->records++;
        json_error_t jerr;
        json_t *o = json_loadb(line, (size_t)n, 0, &jerr);
        char msg[200];
        const char *why = NULL;
        tr_event e;
        tr_event_init(&e);
        if (!o) {
            snprintf(msg, sizeof msg, "invalid JSON at column %d: %s", jerr.column, jerr.text);
            why = msg;
        } else {
            why = line_event(o, sensor_name, sessions, &e);
            json_decref(o);
        }
        if (why) {
            if (st->bad++ == 0)
                snprintf(st->first_bad, sizeof st->first_bad, "line %llu: %s",
                         (unsigned long long)lineno, why);
            tr_log(TR_LOG_WARN, "cowrie: line %llu: %s", (unsigned long long)lineno, why);
            tr_event_clear(&e);
            continue;
        }
        int r = sink(ctx, &e, err);
        tr_event_clear(&e);
        if (r != 0) {
            rc = -1;
            break;
        }
        st->events++;
    }
    free(line);
    free(sessions);
    fclose(fp);
    return rc;
}

int tr_cowrie_import(const char *path, const char *sensor_name, tr_event_sink sink, void *ctx,
                     tr_import_stats *st, tr_error *err)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        memset(st, 0, sizeof *st);
        return tr_fail_errno(err, "cannot open %s", path);
    }
    int r = tr_cowrie_import_fp(fp, sensor_name, sink, ctx, st, err);
    if (r != 0)
        tr_error_prefix(err, path);
    return r;
}
