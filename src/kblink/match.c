/* A STIX pattern looked up against the samples and noise records trawl holds. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kblink/kblink.h"
#include "kblink/kblink_internal.h"
#include "noise/noise.h"
#include "stix/pattern.h"
#include "stix/stix.h"
#include "store/store.h"

/* Bounds an ISSUBSET term's walk over the noise records. */
#define MATCH_MAX_RESULTS 1000
/* A lookup is one request's work, so what a pattern may ask is bounded:
 * every term may cost a store or noise lookup and every matcher run costs
 * time in proportion to the terms; the ranges are checked against every
 * recorded address; and the addresses inside them that go through the
 * matcher are counted (an indicator covering 0.0.0.0/0 asks for all). */
#define MATCH_MAX_TERMS 1000
#define MATCH_MAX_RANGE_TERMS 64
#define MATCH_MAX_CANDIDATES 10000

/* 1 when the pattern matches the SCO alone, 0 not, -1 error. */
static int matches(const tr_stix_pattern *p, json_t *sco, tr_error *err)
{
    json_t *obs = json_pack("[O]", sco);
    int rc = tr_stix_pattern_match(p, obs, err);
    json_decref(obs);
    return rc;
}

static bool listed(json_t *arr, const char *key, const char *v)
{
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) if (strcmp(json_string_value(json_object_get(x, key)), v) == 0)
        return true;
    return false;
}

static int match_samples(const char *data_dir, const tr_stix_pattern *p, const tr_stix_term *t,
                         size_t nt, json_t *out, size_t *used, tr_error *err)
{
    tr_store *st = NULL;
    int rc = 0;
    for (size_t i = 0; i < nt && rc == 0; i++) {
        if (t[i].kind != TR_STIX_TERM_EQUALS || strcmp(t[i].type, "file") != 0 ||
            strncmp(t[i].path, "hashes.", 7) != 0)
            continue;
        /* The store looks up these three; others are confirmed by the matcher
         * once a candidate is found through one of them. */
        if (strcasecmp(t[i].prop, "MD5") != 0 && strcasecmp(t[i].prop, "SHA-1") != 0 &&
            strcasecmp(t[i].prop, "SHA-256") != 0)
            continue;
        (*used)++;
        if (!st && tr_store_open(data_dir, 0, &st, err) != 0)
            return -1;
        tr_sample *x = NULL;
        int got = tr_store_get(st, t[i].value, &x, err);
        if (got < 0) {
            rc = -1;
            break;
        }
        if (!got || listed(out, "sha256", x->d.sha256)) {
            tr_sample_free(x);
            continue;
        }
        json_t *f = kblink_file_sco(x, err);
        int m = f ? matches(p, f, err) : -1;
        if (m < 0)
            rc = -1;
        else if (m)
        {
            json_t *hit = json_object();
            json_object_set_new(hit, "sha256", json_string(x->d.sha256));
            json_object_set_new(hit, "name", x->n_names ? json_string(x->names[0]) : json_null());
            json_object_set(hit, "file_id", json_object_get(f, "id"));
            json_array_append_new(out, hit);
        }
        json_decref(f);
        tr_sample_free(x);
    }
    if (st)
        tr_store_close(st);
    return rc;
}

static json_t *ip_sco(const char *ip)
{
    json_t *o = json_pack("{ss ss ss}", "type", strchr(ip, ':') ? "ipv6-addr" : "ipv4-addr",
                          "spec_version", "2.1", "value", ip);
    char id[128];
    tr_error e;
    if (tr_stix_sco_id(o, id, &e) == 1)
        json_object_set_new(o, "id", json_string(id));
    return o;
}

static int add_ip(tr_noise *nz, const tr_stix_pattern *p, const char *ip, json_t *out,
                  tr_error *err)
{
    if (listed(out, "ip", ip))
        return 0;
    json_t *rec = NULL;
    int got = tr_noise_ip(nz, ip, &rec, err);
    if (got <= 0)
        return got;
    json_t *sco = ip_sco(ip);
    int m = matches(p, sco, err);
    if (m > 0)
        json_array_append_new(out, json_pack("{ss sO sO}", "ip", ip, "classification",
                                             json_object_get(rec, "classification"), "ip_id",
                                             json_object_get(sco, "id")));
    json_decref(sco);
    json_decref(rec);
    return m < 0 ? -1 : 0;
}

/* An ISSUBSET term's network, for the cheap test that picks which
 * addresses the (costly) matcher looks at. */
typedef struct net_range {
    int family;
    uint8_t addr[16];
    int bits;
} net_range;

static bool parse_range(const char *v, net_range *r)
{
    char host[64];
    const char *slash = strchr(v, '/');
    size_t hl = slash ? (size_t)(slash - v) : strlen(v);
    if (hl == 0 || hl >= sizeof host)
        return false;
    memcpy(host, v, hl);
    host[hl] = 0;
    r->family = strchr(host, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(r->family, host, r->addr) != 1)
        return false;
    int max = r->family == AF_INET ? 32 : 128;
    r->bits = max;
    if (slash) {
        char *end = NULL;
        long b = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || b < 0 || b > max)
            return false;
        r->bits = (int)b;
    }
    return true;
}

typedef struct range_walk {
    tr_noise *nz;
    const tr_stix_pattern *p;
    json_t *out;
    bool *truncated;
    size_t tried;
    tr_error *err;
} range_walk;

static int try_in_range(void *arg, const char *ip)
{
    range_walk *w = arg;
    if (json_array_size(w->out) >= MATCH_MAX_RESULTS || w->tried >= MATCH_MAX_CANDIDATES) {
        *w->truncated = true;
        return 1;
    }
    w->tried++;
    json_t *sco = ip_sco(ip);
    int m = matches(w->p, sco, w->err);
    json_decref(sco);
    if (m < 0)
        return -1;
    return m && add_ip(w->nz, w->p, ip, w->out, w->err) != 0 ? -1 : 0;
}

static int match_ips(const char *data_dir, const tr_stix_pattern *p, const tr_stix_term *t,
                     size_t nt, json_t *out, size_t *used, bool *truncated, tr_error *err)
{
    tr_noise *nz = NULL;
    net_range ranges[MATCH_MAX_RANGE_TERMS];
    size_t nranges = 0;
    int rc = 0;
    for (size_t i = 0; i < nt && rc == 0; i++) {
        if ((strcmp(t[i].type, "ipv4-addr") != 0 && strcmp(t[i].type, "ipv6-addr") != 0) ||
            strcmp(t[i].path, "value") != 0)
            continue;
        (*used)++;
        if (!nz && tr_noise_open(data_dir, &nz, err) != 0)
            return -1;
        if (t[i].kind == TR_STIX_TERM_EQUALS) {
            /* A literal that is not an address (a CIDR written with =) just
             * finds nothing. */
            unsigned char a[16];
            if (inet_pton(strchr(t[i].value, ':') ? AF_INET6 : AF_INET, t[i].value, a) == 1)
                rc = add_ip(nz, p, t[i].value, out, err);
            continue;
        }
        /* The parser has checked the network; one that still does not
         * read here can match no address. */
        if (nranges < MATCH_MAX_RANGE_TERMS && parse_range(t[i].value, &ranges[nranges]))
            nranges++;
    }
    /* Each range reads only the recorded addresses inside it; each of them
     * goes through the matcher, which knows what the pattern says about
     * it. An address in two ranges is tried in each but listed once. */
    range_walk w = {.nz = nz, .p = p, .out = out, .truncated = truncated, .err = err};
    for (size_t k = 0; k < nranges && rc == 0 && !*truncated; k++)
        if (tr_noise_ips_in_network(nz, ranges[k].family == AF_INET ? 4 : 6, ranges[k].addr,
                                    ranges[k].bits, try_in_range, &w, err) < 0)
            rc = -1;
    if (nz)
        tr_noise_close(nz);
    return rc;
}

int tr_kblink_match_pattern(const char *data_dir, const char *pattern, json_t **out,
                            tr_error *err)
{
    tr_stix_pattern *p = tr_stix_pattern_parse(pattern, err);
    if (!p)
        return -1;
    const tr_stix_term *t;
    size_t nt = tr_stix_pattern_terms(p, &t), used = 0, nranges = 0;
    for (size_t i = 0; i < nt; i++)
        nranges += t[i].kind == TR_STIX_TERM_SUBSET;
    if (nt > MATCH_MAX_TERMS || nranges > MATCH_MAX_RANGE_TERMS) {
        tr_stix_pattern_free(p);
        return tr_fail(err, "pattern: a lookup takes at most %d terms, %d of them ISSUBSET"
                            " ranges (this one has %zu, %zu ranges)",
                       MATCH_MAX_TERMS, MATCH_MAX_RANGE_TERMS, nt, nranges);
    }
    json_t *samples = json_array(), *ips = json_array();
    bool truncated = false;
    int rc = match_samples(data_dir, p, t, nt, samples, &used, err);
    if (rc == 0)
        rc = match_ips(data_dir, p, t, nt, ips, &used, &truncated, err);
    if (rc == 0 && used == 0)
        rc = tr_fail(err, "the pattern names no file MD5/SHA-1/SHA-256 hash and no IP address"
                          " or range to look up");
    tr_stix_pattern_free(p);
    if (rc != 0) {
        json_decref(samples);
        json_decref(ips);
        return -1;
    }
    *out = json_pack("{so so sI}", "samples", samples, "ips", ips, "terms", (json_int_t)used);
    if (truncated)
        json_object_set_new(*out, "truncated", json_true());
    return 0;
}
