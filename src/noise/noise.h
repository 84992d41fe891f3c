/* noise: internet-noise intelligence. Stores the events sensors observe,
 * judges each with tag rules (YARA rules over the event: payload scanned,
 * fields as external variables), and keeps one record per source IP up to
 * date in the same transaction as the events: first/last seen, ports,
 * protocols, tags, CVEs, actor, classification, spoofable, web paths, user
 * agents, JA3/JA4, HASSH, SSH clients, credentials, sensors, events per day.
 *
 * Everything lives in <data>/trawl.db (tables noise_*), on the module's own
 * connection; the compiled tag set is cached in <data>/noise/. libyara runs
 * in a forked child, so a tag rule that crashes libyara costs an error, not
 * the calling process.
 *
 * A tr_noise handle is used by one thread at a time; open one per thread
 * (or per request). Several processes may ingest at once: SQLite serialises
 * the batches. */
#ifndef TRAWL_NOISE_H
#define TRAWL_NOISE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "sensor/event.h"

/* External variables every tag rule sees (docs/noise.md): integers default
 * to -1, strings to "". */
extern const char *const tr_noise_int_externals[];
extern const size_t tr_noise_int_nexternals;
extern const char *const tr_noise_str_externals[];
extern const size_t tr_noise_str_nexternals;

/* Bounds of the per-IP sets: the first values are kept, the rest counted. */
#define TR_NOISE_SET_MAX 100
#define TR_NOISE_RETENTION_DEFAULT 90     /* days of raw events */

typedef struct tr_noise tr_noise;

/* Opens (creating the tables and the default tag set when absent) the noise
 * store of a data directory whose trawl.db exists. */
int tr_noise_open(const char *data_dir, tr_noise **out, tr_error *err);
void tr_noise_close(tr_noise *n);

/* Many lookups (a multi call) read one snapshot in one read transaction:
 * cheaper than a snapshot per lookup. read_end ends it. */
int tr_noise_read_begin(tr_noise *n, tr_error *err);
void tr_noise_read_end(tr_noise *n);

typedef struct tr_noise_stats {
    uint64_t events;          /* stored */
    uint64_t tagged;          /* events that got at least one tag */
    uint64_t new_ips;         /* source addresses seen for the first time */
    uint64_t purged;          /* events dropped by the retention on the way */
    uint64_t unjudged;        /* events stored without (all) their tags: the tag
                               * rules failed on the batch (logged) */
} tr_noise_stats;

/* Judges and stores a batch: all of it in one transaction, or nothing.
 * Events must be valid (tr_event_from_json's checks). st may be NULL. */
int tr_noise_ingest(tr_noise *n, tr_event *evs, size_t nev, tr_noise_stats *st, tr_error *err);

/* A batch being filled from a stream of events (importers, sensors): events
 * are copied in and committed every `size` events (0: 1000). Matches
 * tr_event_sink's signature through tr_noise_batch_sink. */
typedef struct tr_noise_batch tr_noise_batch;
tr_noise_batch *tr_noise_batch_new(tr_noise *n, size_t size);
int tr_noise_batch_add(tr_noise_batch *b, const tr_event *e, tr_error *err);
/* Commits what is left; the totals so far in *st (may be NULL). */
int tr_noise_batch_flush(tr_noise_batch *b, tr_noise_stats *st, tr_error *err);
void tr_noise_batch_free(tr_noise_batch *b);
/* ctx is a tr_noise_batch *. */
int tr_noise_batch_sink(void *ctx, tr_event *e, tr_error *err);

/* The record of one IP (GreyNoise context fields plus trawl's own):
 * 1 found (*out set, caller decrefs), 0 never seen, -1 error (also for text
 * that is not an IP address: err says so). */
int tr_noise_ip(tr_noise *n, const char *ip, json_t **out, tr_error *err);

/* Each recorded source address inside the network addr/bits (family 4 or
 * 6, addr in network order) goes to fn, until fn returns nonzero: 1 stops
 * the walk (returned), -1 fails it. An IPv4 network reads only its own rows
 * (at most 128 ranges of the address index); IPv6 reads every IPv6 record.
 * 0 when the walk ended. */
typedef int (*tr_noise_ip_fn)(void *arg, const char *ip);
int tr_noise_ips_in_network(tr_noise *n, int family, const uint8_t *addr, int bits,
                            tr_noise_ip_fn fn, void *arg, tr_error *err);

/* Stored events (within the retention), newest first: of one source (ip,
 * may be NULL), carrying one tag (may be NULL), at most limit (0: 100, at
 * most 10,000). Each is the event's JSON form plus "id" and "tags". */
int tr_noise_events(tr_noise *n, const char *ip, const char *tag, int64_t limit, json_t **out,
                    tr_error *err);

/* ---- GNQL (gnql.h) --------------------------------------------------------- */
/* The IPs matching a GNQL query, in address-text order, a page of size (0:
 * 10,000, at most 10,000) after the scroll token of the previous page (NULL
 * or "": the first): {"query", "count" (all matches), "complete", "scroll",
 * "ips": [...]}. A malformed query fails with err starting "GNQL:". */
int tr_noise_gnql(tr_noise *n, const char *query, int64_t size, const char *scroll,
                  json_t **out, tr_error *err);
/* Aggregates of the matching IPs, GreyNoise's stats shape, each list the
 * top count (0: 10): {"query", "count", "stats": {"classifications",
 * "spoofable", "organizations", "actors", "countries", "source_countries",
 * "destination_countries", "tags", "operating_systems", "categories",
 * "asns", "ports", "sensors"}}. */
int tr_noise_gnql_stats(tr_noise *n, const char *query, int64_t count, json_t **out,
                        tr_error *err);
/* Builds (or brings up to date) this process's GNQL index now: a server
 * does it at start, so that its first query or quick check does not wait
 * seconds for it. *ips (may be NULL): the addresses it holds. */
int tr_noise_gnql_warm(tr_noise *n, size_t *ips, tr_error *err);

/* GNQL pages and stats come from an in-memory bitmap index of the per-IP
 * tables, one per data directory per process, built on the first query
 * (seconds at 1M IPs) and kept current from a trigger-fed change log.
 * Quick checks (tr_noise_quick) read it too. sql true answers them with SQL
 * over the tables instead (the slower path the tests compare the index
 * with; one-shot processes, which would pay the build for one answer). */
void tr_noise_gnql_engine(tr_noise *n, bool sql);

/* ---- GreyNoise's v3 extras (gnql_intel.c) --------------------------------- */
/* Events per day of one IP over the last days (1..90), labelled by a field
 * (classification, destination_port, protocol, sensor, http_path,
 * http_user_agent, tag_ids): {metadata{...}, results[{timestamp, label,
 * data}]}. */
int tr_noise_timeline(tr_noise *n, const char *ip, const char *field, int days, json_t **out,
                      tr_error *err);
/* The IP's activity per hour, newest first, at most limit hours:
 * {activity[{timestamp, ip, classification, events, destination_ports,
 * protocols, sensors, http_paths, http_user_agents, tags}]}. */
int tr_noise_hourly(tr_noise *n, const char *ip, int days, int limit, json_t **out,
                    tr_error *err);
/* IPs whose ports, paths, user agents, JA3, HASSH and tags are most alike
 * (mean Jaccard index, 0..1): 1 {ip{...}, similar_ips[{..., score,
 * features}], total}, 0 the IP was never seen, -1 error. */
int tr_noise_similar(tr_noise *n, const char *ip, int limit, double min_score, json_t **out,
                     tr_error *err);
/* Activity seen for a CVE through the tags naming it: 1 (GreyNoise's CVE
 * shape, the counts filled, what trawl does not know empty), 0 no tag names
 * it, -1 error. */
int tr_noise_cve(tr_noise *n, const char *cve, json_t **out, tr_error *err);

/* The few fields of a quick check: 1 seen (*out: {classification,
 * spoofable, last_seen (YYYY-MM-DD)}), 0 never seen, -1 error. */
int tr_noise_quick(tr_noise *n, const char *ip, json_t **out, tr_error *err);

/* For the web UI: each sensor's last event and event counts (1 h, 24 h,
 * 7 days) from the stored events, [{name, last_event, events_1h,
 * events_24h, ips_7d, events_7d}]; and a tag's distinct source IPs per UTC
 * day over the last days: {tag, days[{day, ips}]}. */
int tr_noise_sensors(tr_noise *n, json_t **out, tr_error *err);
int tr_noise_tag_days(tr_noise *n, const char *tag, int days, json_t **out, tr_error *err);

/* ---- RIOT and analysts' flags (riot.c) ------------------------------------ */
/* Replaces the RIOT allow-list ("common business services") with a file's:
 * CSV lines "CIDR,name,category,trust_level[,description[,reference]]",
 * '#' comments; trust_level 1 or 2. Bad lines: the first in *bad_line (0
 * none), skipped; a file without a good line leaves the list unchanged. */
int tr_noise_riot_import(tr_noise *n, const char *path, uint64_t *count, uint64_t *bad_line,
                         tr_error *err);
/* 1 listed (*out: {name, category, trust_level, description, reference,
 * cidr, last_updated}), 0 not, -1 error. */
int tr_noise_riot(tr_noise *n, const char *ip, json_t **out, tr_error *err);
/* An analyst flags an IP as interesting (GreyNoise's /v2/interesting). */
int tr_noise_interesting(tr_noise *n, const char *ip, const char *by, tr_error *err);

/* ---- tags ----------------------------------------------------------------- */
/* Each tag: {name, category, intention, cves[], description, references[],
 * builtin, source, ips, events}, sorted by name. */
int tr_noise_tags(tr_noise *n, json_t **out, tr_error *err);
/* Adds the tags (non-private rules) of a YARA text, or replaces tags of the
 * same names, then re-judges the stored events with them (retrohunt).
 * Errors name line:column (trawl's parser) or libyara's message. *added
 * (may be NULL) gets the names as a JSON array and the retro counts:
 * {"tags": [...], "events_matched": N, "ips": N}. */
int tr_noise_tag_add(tr_noise *n, const char *source_name, const char *text, size_t len,
                     json_t **added, tr_error *err);
/* Judges the newest stored events (at most max_events; 0: 10,000) with a
 * YARA text, saving nothing: {"tags": [...], "events_scanned": N,
 * "events_matched": N, "ips_shown": N, "matches": [{event_id, src_ip, time,
 * tag}] (the first 100)}. For writing a tag before adding it. */
int tr_noise_tag_test(tr_noise *n, const char *source_name, const char *text, size_t len,
                      int64_t max_events, json_t **out, tr_error *err);
/* 1 removed, 0 no such tag, -1 error (e.g. its source defines other tags). */
int tr_noise_tag_rm(tr_noise *n, const char *name, tr_error *err);

/* ---- actors, Tor ---------------------------------------------------------- */
int tr_noise_actor_add(tr_noise *n, const char *name, const char *const *cidrs, size_t ncidrs,
                       const char *const *rdns_suffixes, size_t nrdns, bool benign,
                       tr_error *err);
/* 1 removed, 0 not found, -1 error. */
int tr_noise_actor_rm(tr_noise *n, const char *name, tr_error *err);
/* [{name, benign, cidrs[], rdns_suffixes[], ips}] */
int tr_noise_actors(tr_noise *n, json_t **out, tr_error *err);
/* Replaces the Tor exit list with a file's: one address per line, or Tor's
 * exit-list format ("ExitAddress IP DATE TIME" lines). Bad lines are
 * reported in *bad_line (first one, 0 none) and skipped. */
int tr_noise_tor_import(tr_noise *n, const char *path, uint64_t *count, uint64_t *bad_line,
                        tr_error *err);

/* ---- settings ------------------------------------------------------------- */
/* Keys: retention_days (1..36500), mmdb (path of a MaxMind DB with ASN,
 * organisation and city; "" none), geoip (directory of libgeoip's
 * GeoIP.dat/GeoIPv6.dat; default Debian's /usr/share/GeoIP), rdns ("on" or
 * "off", the default). */
int tr_noise_setting(tr_noise *n, const char *key, char **value, tr_error *err);
int tr_noise_set(tr_noise *n, const char *key, const char *value, tr_error *err);

/* Events older than the retention: counted (apply false) or deleted. The
 * per-IP records are kept. */
int tr_noise_retention(tr_noise *n, bool apply, int *days, uint64_t *old_events,
                       tr_error *err);

#endif
