/* The sync described in kblink.h. */
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hunt/hunt.h"
#include "kblink/kblink.h"
#include "kblink/kblink_internal.h"
#include "noise/noise.h"
#include "stix/stix.h"
#include "store/store.h"

/* UUIDv5 namespace of the ids trawl derives for its SDOs and SROs. */
#define KB_NAMESPACE "3f1d2c4b-8a7e-5f60-9b1c-2d3e4f5a6b7c"
/* A fixed creation time keeps the identity one version forever. */
#define KB_EPOCH "2024-01-01T00:00:00.000Z"
/* Bounds a sync's work on one noise address: the first CVEs and sensors. */
#define KB_MAX_PER_IP 50

/* Keys are what an object stands for ("malware:emotet"); the table says
 * which id the key has now. A revoked object may not get new versions
 * (STIX 2.1 3.6), so a key that comes back after being retired gets a new
 * id (its generation is counted). SCO ids are their deterministic ids and
 * never change: an SCO is marked, not revoked. */
static const char *const kb_schema =
    "CREATE TABLE IF NOT EXISTS kblink_objects(key TEXT PRIMARY KEY, id TEXT NOT NULL,"
    " gen INTEGER NOT NULL, live INTEGER NOT NULL, sco INTEGER NOT NULL) WITHOUT ROWID;";

typedef struct kb_key {
    char *id;
    int64_t gen;
    bool live, sco, seen, dirty;
} kb_key;

typedef struct kb_sync {
    const char *data_dir;
    sqlite3 *db;
    tr_stix_db *kb;
    json_t *keys;             /* key -> index into k */
    kb_key *k;
    char **knames;
    size_t nk, capk;
    json_t *want;             /* id -> object */
    json_t *sha_file;         /* sha256 -> file SCO id */
    json_t *sha_malware;      /* sha256 -> malware SDO id */
    char now[32];
} kb_sync;

static int db_fail(sqlite3 *db, tr_error *err)
{
    return tr_fail(err, "knowledge-base links: %s", sqlite3_errmsg(db));
}

static size_t key_slot(kb_sync *s, const char *key)
{
    json_t *v = json_object_get(s->keys, key);
    if (v)
        return (size_t)json_integer_value(v);
    if (s->nk == s->capk) {
        s->capk = s->capk ? s->capk * 2 : 256;
        s->k = tr_xrealloc(s->k, s->capk * sizeof *s->k);
        s->knames = tr_xrealloc(s->knames, s->capk * sizeof *s->knames);
    }
    memset(&s->k[s->nk], 0, sizeof s->k[s->nk]);
    s->knames[s->nk] = tr_xstrdup(key);
    json_object_set_new(s->keys, key, json_integer((json_int_t)s->nk));
    return s->nk++;
}

static int load_keys(kb_sync *s, tr_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT key, id, gen, live, sco FROM kblink_objects", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(s->db, err);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t i = key_slot(s, (const char *)sqlite3_column_text(st, 0));
        s->k[i].id = tr_xstrdup((const char *)sqlite3_column_text(st, 1));
        s->k[i].gen = sqlite3_column_int64(st, 2);
        s->k[i].live = sqlite3_column_int(st, 3) != 0;
        s->k[i].sco = sqlite3_column_int(st, 4) != 0;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(s->db, err);
}

/* The id of the SDO/SRO standing for key, of this type. */
static const char *sdo_id(kb_sync *s, const char *type, const char *key)
{
    size_t i = key_slot(s, key);
    kb_key *k = &s->k[i];
    if (k->id && (k->live || k->seen)) {
        if (!k->live) {
            k->live = true;
            k->dirty = true;
        }
        k->seen = true;
        return k->id;
    }
    if (k->id) {
        k->gen++;
        free(k->id);
        k->id = NULL;
    }
    char *name = k->gen ? tr_xasprintf("%s#%lld", key, (long long)k->gen) : tr_xstrdup(key);
    char uuid[37];
    tr_error e;
    if (tr_stix_uuid5(KB_NAMESPACE, name, strlen(name), uuid, &e) != 0)
        tr_die("uuid5: %s", e.msg);
    free(name);
    k->id = tr_xasprintf("%s--%s", type, uuid);
    k->live = k->seen = k->dirty = true;
    return k->id;
}

static void sco_seen(kb_sync *s, const char *id)
{
    size_t i = key_slot(s, id);
    kb_key *k = &s->k[i];
    if (!k->id || !k->live || !k->sco)
        k->dirty = true;
    if (!k->id)
        k->id = tr_xstrdup(id);
    k->live = k->sco = k->seen = true;
}

static void want(kb_sync *s, json_t *obj)
{
    const char *id = json_string_value(json_object_get(obj, "id"));
    json_object_set_new(s->want, id, obj);
}

static json_t *sdo(kb_sync *s, const char *type, const char *key)
{
    json_t *o = json_pack("{ss ss ss ss}", "type", type, "spec_version", "2.1", "id",
                          sdo_id(s, type, key), "created_by_ref", TR_KBLINK_IDENTITY);
    if (!o)
        tr_die("out of memory");
    return o;
}

static void ts_of(int64_t unix_s, char out[32])
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

static void lower(const char *in, char *out, size_t n)
{
    size_t i = 0;
    for (; in[i] && i + 1 < n; i++)
        out[i] = (char)((in[i] >= 'A' && in[i] <= 'Z') ? in[i] + 32 : in[i]);
    out[i] = 0;
}

static json_t *held(kb_sync *s, const char *id, tr_error *err, int *rc);

/* ---- samples and signatures ------------------------------------------------- */

typedef struct found_obj {
    json_t *list;             /* objects of other producers named like the signature */
    const char *name;
} found_obj;

static int collect_named(void *arg, const tr_stix_row *row)
{
    found_obj *f = arg;
    json_t *o = json_loadb(row->json, row->json_len, 0, NULL);
    if (!o)
        return 0;
    const char *by = json_string_value(json_object_get(o, "created_by_ref"));
    bool match = false;
    if (!(by && strcmp(by, TR_KBLINK_IDENTITY) == 0) && !json_is_true(json_object_get(o, "revoked"))) {
        const char *n = json_string_value(json_object_get(o, "name"));
        match = n && strcasecmp(n, f->name) == 0;
        json_t *al = json_object_get(o, "aliases"), *v;
        size_t i;
        json_array_foreach(al, i, v) if (json_is_string(v) &&
                                         strcasecmp(json_string_value(v), f->name) == 0) match = true;
        al = json_object_get(o, "x_mitre_aliases");
        json_array_foreach(al, i, v) if (json_is_string(v) &&
                                         strcasecmp(json_string_value(v), f->name) == 0) match = true;
    }
    if (match)
        json_array_append_new(f->list, json_string(row->id));
    json_decref(o);
    return 0;
}

static int link_signature(kb_sync *s, const char *sig, const char *malware_id, tr_error *err)
{
    static const char *const types[] = {"malware", "intrusion-set"};
    for (size_t t = 0; t < 2; t++) {
        found_obj f = {json_array(), sig};
        tr_stix_search_opts o = {.text = sig, .type = types[t], .limit = 200};
        if (tr_stix_search_ex(s->kb, &o, collect_named, &f, err) != 0) {
            json_decref(f.list);
            return -1;
        }
        size_t i;
        json_t *v;
        json_array_foreach(f.list, i, v) {
            const char *other = json_string_value(v);
            char *key = tr_xasprintf("rel:%s:%s", malware_id, other);
            json_t *r = sdo(s, "relationship", key);
            free(key);
            /* An intrusion set uses the family; a malware object of another
             * producer named the same is the same family seen elsewhere. */
            if (t == 1)
                json_object_set_new(r, "relationship_type", json_string("uses")),
                    json_object_set_new(r, "source_ref", json_string(other)),
                    json_object_set_new(r, "target_ref", json_string(malware_id));
            else
                json_object_set_new(r, "relationship_type", json_string("related-to")),
                    json_object_set_new(r, "source_ref", json_string(malware_id)),
                    json_object_set_new(r, "target_ref", json_string(other));
            json_object_set_new(r, "description",
                                json_sprintf("trawl's signature %s matches this object's name or alias",
                                             sig));
            want(s, r);
        }
        json_decref(f.list);
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int derive_samples(kb_sync *s, tr_error *err)
{
    tr_store *st;
    if (tr_store_open(s->data_dir, 0, &st, err) != 0)
        return -1;
    tr_sample **list = NULL;
    size_t n = 0;
    tr_sample_filter f = {0};
    if (tr_store_list(st, &f, &list, &n, err) != 0) {
        tr_store_close(st);
        return -1;
    }
    json_t *families = json_object();   /* lower(signature) -> malware SDO */
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const tr_sample *x = list[i];
        json_t *file = kblink_file_sco(x, err);
        if (!file) {
            rc = -1;
            break;
        }
        char id[128];
        snprintf(id, sizeof id, "%s", json_string_value(json_object_get(file, "id")));
        sco_seen(s, id);
        want(s, file);
        json_object_set_new(s->sha_file, x->d.sha256, json_string(id));
        if (!x->signature || !*x->signature)
            continue;
        char low[256];
        lower(x->signature, low, sizeof low);
        json_t *m = json_object_get(families, low);
        if (!m) {
            char *key = tr_xasprintf("malware:%s", low);
            m = sdo(s, "malware", key);
            free(key);
            json_object_set_new(m, "name", json_string(x->signature));
            json_object_set_new(m, "is_family", json_true());
            json_object_set_new(m, "sample_refs", json_array());
            json_object_set_new(families, low, m);
            rc = link_signature(s, x->signature, json_string_value(json_object_get(m, "id")), err);
        }
        json_array_append_new(json_object_get(m, "sample_refs"), json_string(id));
        json_object_set(s->sha_malware, x->d.sha256, json_object_get(m, "id"));
    }
    const char *k;
    json_t *m;
    json_object_foreach(families, k, m) {
        /* Newest-first listing order would make sample_refs churn. */
        json_t *refs = json_object_get(m, "sample_refs");
        size_t nr = json_array_size(refs);
        const char **v = tr_xmalloc((nr ? nr : 1) * sizeof *v);
        for (size_t i = 0; i < nr; i++)
            v[i] = json_string_value(json_array_get(refs, i));
        qsort(v, nr, sizeof *v, cmp_str);
        json_t *sorted = json_array();
        for (size_t i = 0; i < nr; i++)
            json_array_append_new(sorted, json_string(v[i]));
        free(v);
        json_object_set_new(m, "sample_refs", sorted);
        json_incref(m);
        want(s, m);
    }
    json_decref(families);
    tr_sample_list_free(list, n);
    tr_store_close(st);
    return rc;
}

/* ---- rules: live rule sets and finished hunts ------------------------------- */

/* The indicator's sightings (one per sample, with the observed-data that
 * names the file) and its indicates relationships (one per family). */
static void indicator_links(kb_sync *s, const char *ind_id, const char *sha256, int64_t when,
                            json_t *families)
{
    const char *file = json_string_value(json_object_get(s->sha_file, sha256));
    if (!file)
        return;               /* the sample is gone: its sighting retires */
    char ts[32];
    ts_of(when, ts);
    char *key = tr_xasprintf("od:%s:%s", ind_id, sha256);
    json_t *od = sdo(s, "observed-data", key);
    free(key);
    json_object_set_new(od, "first_observed", json_string(ts));
    json_object_set_new(od, "last_observed", json_string(ts));
    json_object_set_new(od, "number_observed", json_integer(1));
    json_object_set_new(od, "object_refs", json_pack("[s]", file));
    key = tr_xasprintf("sighting:%s:%s", ind_id, sha256);
    json_t *si = sdo(s, "sighting", key);
    free(key);
    json_object_set_new(si, "sighting_of_ref", json_string(ind_id));
    json_object_set_new(si, "observed_data_refs",
                        json_pack("[O]", json_object_get(od, "id")));
    json_object_set_new(si, "where_sighted_refs", json_pack("[s]", TR_KBLINK_IDENTITY));
    json_object_set_new(si, "first_seen", json_string(ts));
    json_object_set_new(si, "last_seen", json_string(ts));
    json_object_set_new(si, "count", json_integer(1));
    want(s, od);
    want(s, si);
    const char *mal = json_string_value(json_object_get(s->sha_malware, sha256));
    if (mal)
        json_object_set_new(families, mal, json_true());
}

static void indicates(kb_sync *s, const char *ind_id, json_t *families)
{
    const char *mal;
    json_t *v;
    json_object_foreach(families, mal, v) {
        char *key = tr_xasprintf("rel:%s:%s", ind_id, mal);
        json_t *r = sdo(s, "relationship", key);
        free(key);
        json_object_set_new(r, "relationship_type", json_string("indicates"));
        json_object_set_new(r, "source_ref", json_string(ind_id));
        json_object_set_new(r, "target_ref", json_string(mal));
        want(s, r);
    }
}

static int derive_live(kb_sync *s, tr_error *err)
{
    tr_live_ruleset *rs = NULL;
    size_t n = 0;
    if (tr_live_list(s->data_dir, &rs, &n, err) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *text = NULL;
        int got = tr_live_get_text(s->data_dir, rs[i].name, &text, err);
        if (got < 0) {
            rc = -1;
            break;
        }
        if (!got)
            continue;
        char *key = tr_xasprintf("live:%s", rs[i].name);
        json_t *ind = sdo(s, "indicator", key);
        free(key);
        char ts[32];
        ts_of(rs[i].created, ts);
        json_object_set_new(ind, "name", json_string(rs[i].name));
        json_object_set_new(ind, "description",
                            json_string(rs[i].enabled ? "trawl live rule set (enabled)"
                                                      : "trawl live rule set (disabled)"));
        json_object_set_new(ind, "indicator_types", json_pack("[s]", "malicious-activity"));
        json_object_set_new(ind, "pattern", json_string(text));
        json_object_set_new(ind, "pattern_type", json_string("yara"));
        json_object_set_new(ind, "valid_from", json_string(ts));
        free(text);
        const char *ind_id = json_string_value(json_object_get(ind, "id"));
        want(s, ind);
        tr_live_hit *hits = NULL;
        size_t nh = 0;
        if (tr_live_hits_for_ruleset(s->data_dir, rs[i].name, 0, &hits, &nh, err) != 0) {
            rc = -1;
            break;
        }
        /* One sighting per sample, dated by its first hit (hits come
         * newest first). */
        json_t *fam = json_object(), *families = json_object();
        for (size_t j = nh; j-- > 0;) {
            if (json_object_get(fam, hits[j].sha256))
                continue;
            json_object_set_new(fam, hits[j].sha256, json_true());
            indicator_links(s, ind_id, hits[j].sha256, hits[j].created, families);
        }
        indicates(s, ind_id, families);
        json_decref(families);
        json_decref(fam);
        tr_live_hits_free(hits, nh);
    }
    tr_live_list_free(rs, n);
    return rc;
}

/* The sightings and indicates relationships of a finished hunt's matches. */
static int hunt_sightings(kb_sync *s, const tr_hunt_job *job, const char *ind_id, tr_error *err)
{
    char **sha = NULL;
    size_t ns = 0;
    if (tr_hunt_matched_samples(s->data_dir, job->id, &sha, &ns, err) != 0)
        return -1;
    json_t *families = json_object();
    int64_t when = job->finished ? job->finished : job->created;
    for (size_t j = 0; j < ns; j++) {
        indicator_links(s, ind_id, sha[j], when, families);
        free(sha[j]);
    }
    free(sha);
    indicates(s, ind_id, families);
    json_decref(families);
    return 0;
}

static int derive_hunts(kb_sync *s, tr_error *err)
{
    tr_hunt_job *jobs = NULL;
    size_t n = 0;
    if (tr_hunt_list(s->data_dir, &jobs, &n, err) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (jobs[i].status != TR_HUNT_DONE && jobs[i].status != TR_HUNT_CANCELLED)
            continue;
        json_t *rules = tr_hunt_rules_json(s->data_dir, jobs[i].id, err);
        if (!rules) {
            rc = -1;
            break;
        }
        tr_buf text = {0};
        size_t k;
        json_t *v;
        json_array_foreach(rules, k, v) {
            const char *t = json_string_value(json_object_get(v, "text"));
            if (t) {
                if (text.len)
                    tr_buf_append(&text, "\n", 1);
                tr_buf_append(&text, t, strlen(t));
            }
        }
        json_decref(rules);
        if (!text.len) {
            tr_buf_free(&text);
            continue;
        }
        tr_buf_append(&text, "", 1);
        /* A hunt that ran a stored YARA indicator (trawl kb match) sights
         * that indicator rather than standing for a new one. */
        const char *rn = jobs[i].rules_name;
        if (rn && strncmp(rn, "indicator--", 11) == 0 && !strchr(rn, ',')) {
            int got;
            json_t *have = held(s, rn, err, &got);
            if (got < 0) {
                tr_buf_free(&text);
                rc = -1;
                break;
            }
            const char *pt = json_string_value(json_object_get(have, "pattern_type"));
            bool theirs = have && pt && strcmp(pt, "yara") == 0 &&
                          !json_is_true(json_object_get(have, "revoked"));
            json_decref(have);
            if (theirs) {
                tr_buf_free(&text);
                rc = hunt_sightings(s, &jobs[i], rn, err);
                continue;
            }
        }
        char *key = tr_xasprintf("hunt:%lld", (long long)jobs[i].id);
        json_t *ind = sdo(s, "indicator", key);
        free(key);
        char ts[32];
        ts_of(jobs[i].created, ts);
        json_object_set_new(ind, "name", json_sprintf("hunt %lld: %s", (long long)jobs[i].id,
                                                      jobs[i].rules_name ? jobs[i].rules_name : ""));
        json_object_set_new(ind, "description", json_string("trawl retrohunt rules"));
        json_object_set_new(ind, "indicator_types", json_pack("[s]", "malicious-activity"));
        json_object_set_new(ind, "pattern", json_string(text.data));
        json_object_set_new(ind, "pattern_type", json_string("yara"));
        json_object_set_new(ind, "valid_from", json_string(ts));
        tr_buf_free(&text);
        const char *ind_id = json_string_value(json_object_get(ind, "id"));
        want(s, ind);
        rc = hunt_sightings(s, &jobs[i], ind_id, err);
    }
    tr_hunt_list_free(jobs, n);
    return rc;
}

/* ---- noise ------------------------------------------------------------------ */

static json_t *stix_time(json_t *t)
{
    const char *v = json_string_value(t);
    return json_string(v && tr_stix_ts_valid(v) ? v : KB_EPOCH);
}

static int derive_noise(kb_sync *s, tr_error *err)
{
    tr_noise *nz;
    if (tr_noise_open(s->data_dir, &nz, err) != 0)
        return -1;
    char **ips = NULL;
    size_t n = 0;
    int rc = tr_noise_ip_list(nz, &ips, &n, err);
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *rec = NULL;
        int got = tr_noise_ip(nz, ips[i], &rec, err);
        if (got < 0) {
            rc = -1;
            break;
        }
        if (!got)
            continue;
        json_t *ip = json_pack("{ss ss ss}", "type", strchr(ips[i], ':') ? "ipv6-addr" : "ipv4-addr",
                               "spec_version", "2.1", "value", ips[i]);
        char id[128];
        if (tr_stix_sco_id(ip, id, err) != 1) {
            json_decref(ip);
            json_decref(rec);
            rc = -1;
            break;
        }
        json_object_set_new(ip, "id", json_string(id));
        sco_seen(s, id);
        want(s, ip);
        char *key = tr_xasprintf("noise-od:%s", ips[i]);
        json_t *od = sdo(s, "observed-data", key);
        free(key);
        json_int_t events = json_integer_value(json_object_get(rec, "events"));
        json_object_set_new(od, "first_observed", stix_time(json_object_get(rec, "first_seen_time")));
        json_object_set_new(od, "last_observed", stix_time(json_object_get(rec, "last_seen_time")));
        json_object_set_new(od, "number_observed", json_integer(events > 0 ? events : 1));
        json_object_set_new(od, "object_refs", json_pack("[s]", id));
        const char *od_id = json_string_value(json_object_get(od, "id"));
        want(s, od);
        /* The sensors that saw it, as identities where it was sighted. */
        json_t *where = json_array();
        size_t k;
        json_t *v;
        json_array_foreach(json_object_get(rec, "sensors"), k, v) {
            const char *name = json_string_value(json_object_get(v, "name"));
            if (!name || k >= KB_MAX_PER_IP)
                continue;
            char *skey = tr_xasprintf("sensor:%s", name);
            json_t *ident = sdo(s, "identity", skey);
            free(skey);
            json_object_set_new(ident, "name", json_string(name));
            json_object_set_new(ident, "identity_class", json_string("system"));
            json_object_set_new(ident, "description", json_string("a trawl sensor"));
            json_array_append(where, json_object_get(ident, "id"));
            want(s, ident);
        }
        if (!json_array_size(where))
            json_array_append_new(where, json_string(TR_KBLINK_IDENTITY));
        json_array_foreach(json_object_get(rec, "cve"), k, v) {
            const char *cve = json_string_value(v);
            if (!cve || k >= KB_MAX_PER_IP)
                continue;
            char *vkey = tr_xasprintf("cve:%s", cve);
            json_t *vul = sdo(s, "vulnerability", vkey);
            free(vkey);
            json_object_set_new(vul, "name", json_string(cve));
            json_object_set_new(vul, "external_references",
                                json_pack("[{ss ss}]", "source_name", "cve", "external_id", cve));
            const char *vul_id = json_string_value(json_object_get(vul, "id"));
            char *sk = tr_xasprintf("noise-sighting:%s:%s", ips[i], cve);
            json_t *si = sdo(s, "sighting", sk);
            free(sk);
            json_object_set_new(si, "sighting_of_ref", json_string(vul_id));
            json_object_set_new(si, "observed_data_refs", json_pack("[s]", od_id));
            json_object_set_new(si, "where_sighted_refs", json_deep_copy(where));
            json_object_set(si, "first_seen", json_object_get(od, "first_observed"));
            json_object_set(si, "last_seen", json_object_get(od, "last_observed"));
            json_object_set_new(si, "count", json_integer(events > 0 ? events : 1));
            want(s, vul);
            want(s, si);
        }
        json_decref(where);
        json_decref(rec);
    }
    for (size_t i = 0; i < n; i++)
        free(ips[i]);
    free(ips);
    tr_noise_close(nz);
    return rc;
}

/* ---- reconcile --------------------------------------------------------------- */

static int keep_row(void *arg, const tr_stix_row *row)
{
    json_t **o = arg;
    *o = json_loadb(row->json, row->json_len, 0, NULL);
    return 0;
}

static json_t *held(kb_sync *s, const char *id, tr_error *err, int *rc)
{
    json_t *o = NULL;
    *rc = tr_stix_get(s->kb, id, keep_row, &o, err);
    if (*rc < 0)
        return NULL;
    return o;
}

static bool same_content(json_t *want_obj, json_t *have)
{
    json_t *a = json_copy(want_obj), *b = json_copy(have);
    static const char *const skip[] = {"created", "modified"};
    for (size_t i = 0; i < 2; i++) {
        json_object_del(a, skip[i]);
        json_object_del(b, skip[i]);
    }
    bool eq = json_equal(a, b);
    json_decref(a);
    json_decref(b);
    return eq;
}

typedef struct change_set {
    json_t *objects;          /* to import */
    json_t *replace;          /* SCO ids to delete first */
} change_set;

/* Puts obj (a want, or a retirement) in the change set unless held as it is. */
static int reconcile(kb_sync *s, json_t *obj, bool is_sco, change_set *cs, tr_kblink_stats *st,
                     bool retiring, tr_error *err)
{
    const char *id = json_string_value(json_object_get(obj, "id"));
    int rc;
    json_t *have = held(s, id, err, &rc);
    if (rc < 0)
        return -1;
    if (have && same_content(obj, have)) {
        if (!retiring)
            st->unchanged++;
        json_decref(have);
        return 0;
    }
    if (have && !is_sco && json_is_true(json_object_get(have, "revoked"))) {
        /* Revoked by hand: the spec forbids new versions. */
        json_decref(have);
        return 0;
    }
    if (is_sco) {
        if (have)
            json_array_append_new(cs->replace, json_string(id));
    } else {
        /* An object with fixed times of its own (trawl's identity) keeps them
         * when it is first stored. */
        const char *created = have ? json_string_value(json_object_get(have, "created")) : NULL;
        if (created || !json_object_get(obj, "created"))
            json_object_set_new(obj, "created", json_string(created ? created : s->now));
        if (have || !json_object_get(obj, "modified"))
            json_object_set_new(obj, "modified", json_string(s->now));
    }
    if (retiring)
        st->retired++;
    else if (have)
        st->updated++;
    else
        st->added++;
    json_decref(have);
    json_array_append(cs->objects, obj);
    return 0;
}

static int save_keys_in(kb_sync *s, tr_error *err);

/* One transaction: a commit per key was an fdatasync per linked object
 * (41k of them on the benchmark store, most of a first sync's time). A crash
 * before the commit loses only the bookkeeping: the next sync finds the
 * objects held as they are. */
static int save_keys(kb_sync *s, tr_error *err)
{
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(s->db, err);
    int rc = save_keys_in(s, err);
    if (rc == 0 && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(s->db, err);
    if (rc != 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int save_keys_in(kb_sync *s, tr_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT OR REPLACE INTO kblink_objects(key, id, gen, live, sco)"
                           " VALUES(?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s->db, err);
    for (size_t i = 0; i < s->nk; i++) {
        kb_key *k = &s->k[i];
        if (!k->dirty || !k->id)
            continue;
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, s->knames[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, k->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, k->gen);
        sqlite3_bind_int(st, 4, k->live);
        sqlite3_bind_int(st, 5, k->sco);
        if (sqlite3_step(st) != SQLITE_DONE) {
            sqlite3_finalize(st);
            return db_fail(s->db, err);
        }
    }
    sqlite3_finalize(st);
    return 0;
}

static int apply(kb_sync *s, change_set *cs, tr_kblink_stats *st, tr_error *err)
{
    (void)st;
    if (!json_array_size(cs->objects))
        return 0;
    json_t *bundle = json_pack("{ss ss sO}", "type", "bundle", "id",
                               "bundle--00000000-0000-4000-8000-000000000000", "objects",
                               cs->objects);
    char uuid[37];
    tr_stix_uuid4(uuid);
    json_object_set_new(bundle, "id", json_sprintf("bundle--%s", uuid));
    char *text = json_dumps(bundle, JSON_COMPACT);
    json_decref(bundle);
    if (!text)
        tr_die("out of memory");
    /* Refused objects are refused before any SCO is taken out for its
     * replacement. */
    tr_stix_bundle parsed;
    if (tr_stix_bundle_parse(text, strlen(text), &parsed, err) != 0) {
        free(text);
        tr_error_prefix(err, "a linked object does not validate");
        return -1;
    }
    tr_stix_bundle_free(&parsed);
    size_t i;
    json_t *v;
    json_array_foreach(cs->replace, i, v) {
        if (tr_stix_delete(s->kb, json_string_value(v), err) < 0) {
            free(text);
            return -1;
        }
    }
    tr_stix_import_result res;
    int rc = tr_stix_import(s->kb, text, strlen(text), NULL, &res, err);
    free(text);
    return rc;
}

static int retire(kb_sync *s, change_set *cs, tr_kblink_stats *st, tr_error *err)
{
    for (size_t i = 0; i < s->nk; i++) {
        kb_key *k = &s->k[i];
        if (k->seen || !k->live || !k->id)
            continue;
        int rc;
        json_t *have = held(s, k->id, err, &rc);
        if (rc < 0)
            return -1;
        k->live = false;
        k->dirty = true;
        if (!have)
            continue;
        if (k->sco)
            json_object_set_new(have, "x_trawl_removed", json_true());
        else
            json_object_set_new(have, "revoked", json_true());
        rc = reconcile(s, have, k->sco, cs, st, true, err);
        json_decref(have);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static json_t *trawl_identity(void)
{
    return json_pack("{ss ss ss ss ss ss ss ss}", "type", "identity", "spec_version", "2.1", "id",
                     TR_KBLINK_IDENTITY, "created", KB_EPOCH, "modified", KB_EPOCH, "name", "trawl",
                     "identity_class", "system", "description",
                     "this trawl installation: the producer of the objects linked from its data");
}

int tr_kblink_sync(const char *data_dir, tr_kblink_stats *stp, tr_error *err)
{
    tr_kblink_stats st = {0};
    kb_sync s = {.data_dir = data_dir};
    s.keys = json_object();
    s.want = json_object();
    s.sha_file = json_object();
    s.sha_malware = json_object();
    change_set cs = {json_array(), json_array()};
    int rc = -1;
    /* Two syncs at once (the CLI and the server, or two requests) would both
     * store the same differences as two versions: one runs at a time. */
    char *lock_path = tr_xasprintf("%s/kblink.lock", data_dir);
    int lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(lock_path);
    char *path = tr_xasprintf("%s/trawl.db", data_dir);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX) != 0) {
        tr_fail_errno(err, "cannot lock %s/kblink.lock", data_dir);
        goto out;
    }
    /* Taken once the lock is held: versions follow the previous sync's. */
    tr_stix_now(s.now);
    if (sqlite3_open_v2(path, &s.db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        tr_fail(err, "cannot open %s: %s", path, s.db ? sqlite3_errmsg(s.db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(s.db, 30000);
    if (sqlite3_exec(s.db, kb_schema, NULL, NULL, NULL) != SQLITE_OK) {
        db_fail(s.db, err);
        goto out;
    }
    if (tr_stix_open(data_dir, &s.kb, err) != 0 || load_keys(&s, err) != 0)
        goto out;
    want(&s, trawl_identity());
    if (derive_samples(&s, err) != 0 || derive_live(&s, err) != 0 || derive_hunts(&s, err) != 0 ||
        derive_noise(&s, err) != 0)
        goto out;
    const char *id;
    json_t *o;
    json_object_foreach(s.want, id, o) {
        st.objects++;
        if (reconcile(&s, o, tr_stix_is_sco_type(json_string_value(json_object_get(o, "type"))),
                      &cs, &st, false, err) != 0)
            goto out;
    }
    if (retire(&s, &cs, &st, err) != 0 || apply(&s, &cs, &st, err) != 0 || save_keys(&s, err) != 0)
        goto out;
    rc = 0;
out:
    if (stp)
        *stp = st;
    json_decref(cs.objects);
    json_decref(cs.replace);
    for (size_t i = 0; i < s.nk; i++) {
        free(s.k[i].id);
        free(s.knames[i]);
    }
    free(s.k);
    free(s.knames);
    json_decref(s.keys);
    json_decref(s.want);
    json_decref(s.sha_file);
    json_decref(s.sha_malware);
    if (s.kb)
        tr_stix_close(s.kb);
    if (s.db)
        sqlite3_close(s.db);
    free(path);
    if (lock_fd >= 0)
        close(lock_fd);
    return rc;
}
