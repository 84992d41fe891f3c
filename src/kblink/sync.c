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
    " gen INTEGER NOT NULL, live INTEGER NOT NULL, sco INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS kblink_objects_id ON kblink_objects(id);"
    /* The change log the triggers below feed: what changed in trawl's data
     * since the last sync consumed it (source: sample, live, hunt, noise,
     * kb). Append-only on the writers' side, the cheapest a trigger can do. */
    "CREATE TABLE IF NOT EXISTS kblink_changes(seq INTEGER PRIMARY KEY, source TEXT NOT NULL,"
    " key TEXT);"
    /* What the last sync derived per sample: an incremental sync needs the
     * file ids and families of the samples it does not read again. */
    "CREATE TABLE IF NOT EXISTS kblink_samples(sha256 TEXT PRIMARY KEY, file_id TEXT NOT NULL,"
    " family TEXT) WITHOUT ROWID;"
    /* The samples a live hit or a finished hunt names (stored or not) at the
     * last derivation of the indicators: only a change to one of those
     * changes an indicator's sightings or indicates relationships. */
    "CREATE TABLE IF NOT EXISTS kblink_sighted(sha256 TEXT PRIMARY KEY) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS kblink_state(key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    /* The keys of the noise addresses' objects (noise-ip:IP, noise-od:IP,
     * noise-sighting:IP:CVE), apart from kblink_objects: a sync reads only
     * the rows of the addresses it derives (a range per address), never the
     * millions of a large sensor network's. */
    "CREATE TABLE IF NOT EXISTS kblink_noise(key TEXT PRIMARY KEY, id TEXT NOT NULL,"
    " gen INTEGER NOT NULL, live INTEGER NOT NULL, sco INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS kblink_noise_id ON kblink_noise(id);";

/* The triggers that feed kblink_changes, created by kblink on the tables it
 * reads (docs/kb.md says why not by their modules). They name only key
 * columns, and a missing one (its table not created yet, or dropped and
 * recreated by a migration) is recreated and answered by a full pass. */
static const struct {
    const char *name, *table, *body;
} kb_triggers[] = {
#define LOG(src, key) " BEGIN INSERT INTO kblink_changes(source, key) VALUES('" src "', " key "); END"
/* By sample id, not a lookup of its sha256: a trigger naming another table
 * would break a migration that drops and renames that table. */
#define LOG_SAMPLE(id) LOG("sample_id", id)
    {"kblink_log_samples_ins", "samples", "AFTER INSERT ON samples" LOG("sample", "NEW.sha256")},
    {"kblink_log_samples_del", "samples", "AFTER DELETE ON samples" LOG("sample", "OLD.sha256")},
    /* Only a change of what the objects are made of: a re-upload rewrites
     * the signature with itself and moves last_seen, the indexer sets a flag. */
    {"kblink_log_samples_upd", "samples",
     "AFTER UPDATE ON samples WHEN NEW.sha256 IS NOT OLD.sha256 OR NEW.md5 IS NOT OLD.md5"
     " OR NEW.sha1 IS NOT OLD.sha1 OR NEW.sha3_384 IS NOT OLD.sha3_384"
     " OR NEW.ssdeep IS NOT OLD.ssdeep OR NEW.tlsh IS NOT OLD.tlsh OR NEW.size IS NOT OLD.size"
     " OR NEW.mime IS NOT OLD.mime OR NEW.signature IS NOT OLD.signature"
     LOG("sample", "NEW.sha256")},
    {"kblink_log_names_ins", "sample_names", "AFTER INSERT ON sample_names" LOG_SAMPLE("NEW.sample_id")},
    {"kblink_log_names_del", "sample_names", "AFTER DELETE ON sample_names" LOG_SAMPLE("OLD.sample_id")},
    {"kblink_log_tags_ins", "sample_tags", "AFTER INSERT ON sample_tags" LOG_SAMPLE("NEW.sample_id")},
    {"kblink_log_tags_del", "sample_tags", "AFTER DELETE ON sample_tags" LOG_SAMPLE("OLD.sample_id")},
    {"kblink_log_live_ins", "live_rulesets", "AFTER INSERT ON live_rulesets" LOG("live", "NEW.name")},
    {"kblink_log_live_upd", "live_rulesets", "AFTER UPDATE ON live_rulesets" LOG("live", "NEW.name")},
    {"kblink_log_live_del", "live_rulesets", "AFTER DELETE ON live_rulesets" LOG("live", "OLD.name")},
    {"kblink_log_hits_ins", "live_hits", "AFTER INSERT ON live_hits" LOG("live", "NEW.ruleset")},
    {"kblink_log_hits_del", "live_hits", "AFTER DELETE ON live_hits" LOG("live", "OLD.ruleset")},
    {"kblink_log_hunts_ins", "hunts", "AFTER INSERT ON hunts" LOG("hunt", "NEW.id")},
    {"kblink_log_hunts_del", "hunts", "AFTER DELETE ON hunts" LOG("hunt", "OLD.id")},
    /* Not the progress counters a running hunt updates all the time. */
    {"kblink_log_hunts_upd", "hunts",
     "AFTER UPDATE OF status, rules_name, rules_json, finished ON hunts" LOG("hunt", "NEW.id")},
    {"kblink_log_noise_ins", "noise_ips", "AFTER INSERT ON noise_ips" LOG("noise", "NEW.ip")},
    {"kblink_log_noise_upd", "noise_ips", "AFTER UPDATE ON noise_ips" LOG("noise", "NEW.ip")},
    {"kblink_log_noise_del", "noise_ips", "AFTER DELETE ON noise_ips" LOG("noise", "OLD.ip")},
    /* The knowledge base itself: a hand edit or deletion of a linked object,
     * or an imported malware/intrusion set a signature may be named like
     * (stix_latest is written with INSERT OR REPLACE: a new version is an
     * insert). Either makes the next sync a full pass. */
    {"kblink_log_kb_ins2", "stix_latest",
     "AFTER INSERT ON stix_latest WHEN NEW.type IN ('malware', 'intrusion-set')"
     " OR EXISTS (SELECT 1 FROM kblink_objects WHERE id=NEW.id)"
     " OR EXISTS (SELECT 1 FROM kblink_noise WHERE id=NEW.id)" LOG("kb", "NEW.id")},
    {"kblink_log_kb_del2", "stix_latest",
     "AFTER DELETE ON stix_latest WHEN EXISTS (SELECT 1 FROM kblink_objects WHERE id=OLD.id)"
     " OR EXISTS (SELECT 1 FROM kblink_noise WHERE id=OLD.id)" LOG("kb", "OLD.id")},
#undef LOG
#undef LOG_SAMPLE
};

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
    /* What this run derives: everything (full), or the samples changed since
     * the last sync with their families, and the indicators and noise
     * records when anything they are made of changed. */
    bool full, do_ind, do_noise;
    int64_t max_seq;          /* the last change this run consumes */
    json_t *touched;          /* sha256 -> true */
    json_t *touched_ids;      /* sample id -> true (names and tags) */
    json_t *sighted;          /* sha256 -> true: named by the indicators derived */
    json_t *fam_of;           /* sha256 -> lower-case signature */
    json_t *scope_files;      /* file ids the touched samples had */
    json_t *scope_fams;       /* lower-case signature -> true */
    json_t *scope_malids;     /* those families' malware ids before this run */
    bool noise_all;           /* every noise address, not only tagged/classified ones */
    /* Which keys a retirement may judge: the main pass's, a noise batch's
     * addresses, or (after a full noise pass) the sensors and CVEs. */
    enum { PHASE_MAIN, PHASE_BATCH, PHASE_TAIL } phase;
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

static void sco_seen_key(kb_sync *s, const char *key, const char *id)
{
    size_t i = key_slot(s, key);
    kb_key *k = &s->k[i];
    if (!k->id || !k->live || !k->sco || strcmp(k->id, id) != 0)
        k->dirty = true;
    if (!k->id || strcmp(k->id, id) != 0) {
        free(k->id);
        k->id = tr_xstrdup(id);
    }
    k->live = k->sco = k->seen = true;
}

static void sco_seen(kb_sync *s, const char *id)
{
    sco_seen_key(s, id, id);
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

/* Adds a sample to its signature's malware SDO (made on first sight). */
static int family_add(kb_sync *s, json_t *families, const tr_sample *x, const char *file_id,
                      tr_error *err)
{
    if (!x->signature || !*x->signature)
        return 0;
    char low[256];
    lower(x->signature, low, sizeof low);
    json_object_set_new(s->fam_of, x->d.sha256, json_string(low));
    int rc = 0;
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
    json_array_append_new(json_object_get(m, "sample_refs"), json_string(file_id));
    json_object_set(s->sha_malware, x->d.sha256, json_object_get(m, "id"));
    return rc;
}

static void families_want(kb_sync *s, json_t *families)
{
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
}

/* The file SCO of a sample, wanted and remembered by its sha256. */
static int sample_file(kb_sync *s, const tr_sample *x, char id[128], tr_error *err)
{
    json_t *file = kblink_file_sco(x, err);
    if (!file)
        return -1;
    snprintf(id, 128, "%s", json_string_value(json_object_get(file, "id")));
    sco_seen(s, id);
    want(s, file);
    json_object_set_new(s->sha_file, x->d.sha256, json_string(id));
    return 0;
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
        char id[128];
        rc = sample_file(s, list[i], id, err);
        if (rc == 0)
            rc = family_add(s, families, list[i], id, err);
    }
    families_want(s, families);
    json_decref(families);
    tr_sample_list_free(list, n);
    tr_store_close(st);
    return rc;
}

/* What the last sync derived for the samples this run does not read. */
static int load_samples_cache(kb_sync *s, tr_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT sha256, file_id, family FROM kblink_samples", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(s->db, err);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *sha = (const char *)sqlite3_column_text(st, 0);
        json_object_set_new(s->sha_file, sha,
                            json_string((const char *)sqlite3_column_text(st, 1)));
        const char *fam = (const char *)sqlite3_column_text(st, 2);
        if (!fam)
            continue;
        json_object_set_new(s->fam_of, sha, json_string(fam));
        char *key = tr_xasprintf("malware:%s", fam);
        json_t *slot = json_object_get(s->keys, key);
        free(key);
        const kb_key *k = slot ? &s->k[json_integer_value(slot)] : NULL;
        if (k && k->live && k->id)
            json_object_set_new(s->sha_malware, sha, json_string(k->id));
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(s->db, err);
}

/* The touched samples' file SCOs, and every sample of each family one of
 * them enters or leaves (a malware SDO lists all its samples). */
static int derive_samples_touched(kb_sync *s, tr_error *err)
{
    if (!json_object_size(s->touched))
        return 0;
    tr_store *st;
    if (tr_store_open(s->data_dir, 0, &st, err) != 0)
        return -1;
    int rc = 0;
    const char *sha;
    json_t *v;
    json_object_foreach(s->touched, sha, v) {
        json_t *fam = json_object_get(s->fam_of, sha);
        if (fam)
            json_object_set_new(s->scope_fams, json_string_value(fam), json_true());
        json_t *fid = json_object_get(s->sha_file, sha);
        if (fid)
            json_object_set_new(s->scope_files, json_string_value(fid), json_true());
        json_object_del(s->sha_file, sha);
        json_object_del(s->sha_malware, sha);
        json_object_del(s->fam_of, sha);
        tr_sample *x = NULL;
        int got = tr_store_get(st, sha, &x, err);
        if (got < 0) {
            rc = -1;
            break;
        }
        if (!got)
            continue;             /* removed: its file SCO retires */
        char id[128];
        rc = sample_file(s, x, id, err);
        if (rc == 0 && x->signature && *x->signature) {
            char low[256];
            lower(x->signature, low, sizeof low);
            json_object_set_new(s->scope_fams, low, json_true());
        }
        tr_sample_free(x);
        if (rc != 0)
            break;
    }
    json_t *families = json_object();
    const char *low;
    json_object_foreach(s->scope_fams, low, v) {
        if (rc != 0)
            break;
        char *key = tr_xasprintf("malware:%s", low);
        json_t *slot = json_object_get(s->keys, key);
        free(key);
        if (slot && s->k[json_integer_value(slot)].id)
            json_object_set_new(s->scope_malids, s->k[json_integer_value(slot)].id, json_true());
        tr_sample **list = NULL;
        size_t n = 0;
        tr_sample_filter f = {.signature = low};
        if (tr_store_list(st, &f, &list, &n, err) != 0) {
            rc = -1;
            break;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            char id[128];
            json_t *have = json_object_get(s->sha_file, list[i]->d.sha256);
            if (have)
                snprintf(id, sizeof id, "%s", json_string_value(have));
            else              /* not in the cache: made as a full pass would */
                rc = sample_file(s, list[i], id, err);
            if (rc == 0)
                rc = family_add(s, families, list[i], id, err);
        }
        tr_sample_list_free(list, n);
    }
    families_want(s, families);
    json_decref(families);
    tr_store_close(st);
    return rc;
}

/* ---- rules: live rule sets and finished hunts ------------------------------- */

/* The indicator's sightings (one per sample, with the observed-data that
 * names the file) and its indicates relationships (one per family). */
static void indicator_links(kb_sync *s, const char *ind_id, const char *sha256, int64_t when,
                            json_t *families)
{
    json_object_set_new(s->sighted, sha256, json_true());
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

/* Addresses derived, read and committed at a time: a sync holds one batch's
 * objects and keys, whatever the number of addresses. */
#define KB_NOISE_BATCH 1000

static bool ip_key(const char *key)
{
    return strncmp(key, "noise-ip:", 9) == 0 || strncmp(key, "noise-od:", 9) == 0 ||
           strncmp(key, "noise-sighting:", 15) == 0;
}

/* An analyst wants the addresses that say something, not every address that
 * knocked once: tagged ones and those classified malicious or benign. An
 * unknown untagged address is left out unless the data directory's noise
 * scope is "all" (tr_kblink_set_noise_scope); `trawl kb match` looks any
 * address up without it. */
static bool noise_deserves(const kb_sync *s, json_t *rec)
{
    if (s->noise_all || json_array_size(json_object_get(rec, "tags")))
        return true;
    const char *c = json_string_value(json_object_get(rec, "classification"));
    return c && (strcmp(c, "malicious") == 0 || strcmp(c, "benign") == 0);
}

/* A UTC day ("YYYY-MM-DD") as a STIX timestamp at its start or end. */
static json_t *day_time(json_t *day, bool end)
{
    const char *d = json_string_value(day);
    char ts[40];
    if (d && strlen(d) == 10)
        snprintf(ts, sizeof ts, "%sT%s", d, end ? "23:59:59.999Z" : "00:00:00.000Z");
    return json_string(d && strlen(d) == 10 && tr_stix_ts_valid(ts) ? ts : KB_EPOCH);
}

/* The objects one noise address stands for. Its observed-data and CVE
 * sightings carry the days it was seen, not its event count or the second
 * of its last event: they are versioned objects (a change is a new version,
 * STIX 2.1 3.6), so they change at most once per day of activity rather
 * than with every event (docs/kb.md). */
static int derive_ip(kb_sync *s, const char *ipt, json_t *rec, tr_error *err)
{
    json_t *ip = json_pack("{ss ss ss}", "type", strchr(ipt, ':') ? "ipv6-addr" : "ipv4-addr",
                           "spec_version", "2.1", "value", ipt);
    char id[128];
    if (tr_stix_sco_id(ip, id, err) != 1) {
        json_decref(ip);
        return -1;
    }
    json_object_set_new(ip, "id", json_string(id));
    char *key = tr_xasprintf("noise-ip:%s", ipt);
    sco_seen_key(s, key, id);
    free(key);
    want(s, ip);
    key = tr_xasprintf("noise-od:%s", ipt);
    json_t *od = sdo(s, "observed-data", key);
    free(key);
    size_t days = json_object_size(json_object_get(rec, "events_per_day"));
    json_object_set_new(od, "first_observed", day_time(json_object_get(rec, "first_seen"), false));
    json_object_set_new(od, "last_observed", day_time(json_object_get(rec, "last_seen"), true));
    json_object_set_new(od, "number_observed", json_integer(days ? (json_int_t)days : 1));
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
        char *sk = tr_xasprintf("noise-sighting:%s:%s", ipt, cve);
        json_t *si = sdo(s, "sighting", sk);
        free(sk);
        json_object_set_new(si, "sighting_of_ref", json_string(vul_id));
        json_object_set_new(si, "observed_data_refs", json_pack("[s]", od_id));
        json_object_set_new(si, "where_sighted_refs", json_deep_copy(where));
        json_object_set(si, "first_seen", json_object_get(od, "first_observed"));
        json_object_set(si, "last_seen", json_object_get(od, "last_observed"));
        json_object_set(si, "count", json_object_get(od, "number_observed"));
        want(s, vul);
        want(s, si);
    }
    json_decref(where);
    return 0;
}

static void key_fill(kb_sync *s, sqlite3_stmt *st)
{
    size_t i = key_slot(s, (const char *)sqlite3_column_text(st, 0));
    free(s->k[i].id);
    s->k[i].id = tr_xstrdup((const char *)sqlite3_column_text(st, 1));
    s->k[i].gen = sqlite3_column_int64(st, 2);
    s->k[i].live = sqlite3_column_int(st, 3) != 0;
    s->k[i].sco = sqlite3_column_int(st, 4) != 0;
}

/* The keys of one address: two point lookups and one range. */
static int load_ip_keys(kb_sync *s, sqlite3_stmt *q, const char *ip, tr_error *err)
{
    char *lo = tr_xasprintf("noise-sighting:%s:", ip);
    char *hi = tr_xasprintf("noise-sighting:%s;", ip);
    size_t nlo = strlen(lo);
    sqlite3_reset(q);
    sqlite3_bind_text(q, 1, ip, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, lo, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, hi, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(q, 0);
        /* An IPv6 address can be another's prefix up to a colon: a CVE
         * name has none. */
        if (strncmp(key, "noise-sighting:", 15) == 0 && strchr(key + nlo, ':'))
            continue;
        key_fill(s, q);
    }
    sqlite3_reset(q);
    free(lo);
    free(hi);
    return rc == SQLITE_DONE ? 0 : db_fail(s->db, err);
}

/* Forgets the batch's address keys (saved by then), keeping the sensor and
 * CVE keys a batch made: they are shared by every address. */
static void drop_ip_keys(kb_sync *s, size_t mark)
{
    size_t w = mark;
    for (size_t i = mark; i < s->nk; i++) {
        if (ip_key(s->knames[i])) {
            json_object_del(s->keys, s->knames[i]);
            free(s->k[i].id);
            free(s->knames[i]);
            continue;
        }
        if (w != i) {
            s->k[w] = s->k[i];
            s->knames[w] = s->knames[i];
            json_object_set_new(s->keys, s->knames[w], json_integer((json_int_t)w));
        }
        w++;
    }
    s->nk = w;
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
static int save_key_rows(kb_sync *s, tr_error *err);
static int consume_changes(kb_sync *s, const change_set *cs, tr_error *err);
static int consume_kb_rows(kb_sync *s, const change_set *cs, tr_error *err);

/* One transaction: a commit per key was an fdatasync per linked object
 * (41k of them on the benchmark store, most of a first sync's time). The
 * change log is consumed in it too: a crash before the commit loses only the
 * bookkeeping, and the next sync derives the same changes again and finds the
 * objects held as they are. */
static int save_keys(kb_sync *s, const change_set *cs, tr_error *err)
{
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(s->db, err);
    int rc = save_keys_in(s, err);
    if (rc == 0)
        rc = consume_changes(s, cs, err);
    if (rc == 0 && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(s->db, err);
    if (rc != 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int exec_sql(kb_sync *s, const char *sql, tr_error *err)
{
    return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : db_fail(s->db, err);
}

/* The per-sample cache: rewritten whole by a full pass, the touched samples
 * only otherwise (the families' other members kept file id and family). */
static int save_samples(kb_sync *s, tr_error *err)
{
    if (s->full && exec_sql(s, "DELETE FROM kblink_samples", err) != 0)
        return -1;
    sqlite3_stmt *del = NULL, *ins = NULL;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM kblink_samples WHERE sha256=?", -1, &del, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "INSERT OR REPLACE INTO kblink_samples(sha256, file_id, family)"
                           " VALUES(?,?,?)",
                           -1, &ins, NULL) != SQLITE_OK) {
        sqlite3_finalize(del);
        return db_fail(s->db, err);
    }
    int rc = 0;
    const char *sha;
    json_t *v;
    json_t *which = s->full ? s->sha_file : s->touched;
    json_object_foreach(which, sha, v) {
        json_t *fid = json_object_get(s->sha_file, sha);
        sqlite3_stmt *q = fid ? ins : del;
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, sha, -1, SQLITE_STATIC);
        if (fid) {
            sqlite3_bind_text(q, 2, json_string_value(fid), -1, SQLITE_STATIC);
            json_t *fam = json_object_get(s->fam_of, sha);
            if (fam)
                sqlite3_bind_text(q, 3, json_string_value(fam), -1, SQLITE_STATIC);
            else
                sqlite3_bind_null(q, 3);
        }
        if (sqlite3_step(q) != SQLITE_DONE) {
            rc = db_fail(s->db, err);
            break;
        }
    }
    sqlite3_finalize(del);
    sqlite3_finalize(ins);
    return rc;
}

/* The changes this run answered: those it read, and the knowledge-base
 * rows its own import logged (they are not hand edits). */
static int consume_changes(kb_sync *s, const change_set *cs, tr_error *err)
{
    sqlite3_stmt *st;
    /* The noise rows are the noise pass's, consumed when it ends (it runs
     * after this commit). */
    if (sqlite3_prepare_v2(s->db, "DELETE FROM kblink_changes WHERE seq <= ? AND source != 'noise'",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s->db, err);
    sqlite3_bind_int64(st, 1, s->max_seq);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(s->db, err);
    sqlite3_finalize(st);
    if (rc != 0)
        return -1;
    return consume_kb_rows(s, cs, err);
}

/* The knowledge-base rows a sync's own import logged: not hand edits. */
static int consume_kb_rows(kb_sync *s, const change_set *cs, tr_error *err)
{
    if (!json_array_size(cs->objects) && !json_array_size(cs->replace))
        return 0;
    /* The ids into a temporary table, then one delete over the rows logged
     * since the change log was read (those before were consumed): a
     * delete per id read the whole log each time, and a busy sensor's log
     * holds a row per address per batch. */
    if (exec_sql(s, "CREATE TEMP TABLE IF NOT EXISTS kb_ids(id TEXT PRIMARY KEY) WITHOUT ROWID;"
                    " DELETE FROM temp.kb_ids;", err) != 0)
        return -1;
    sqlite3_stmt *st;
    int rc = 0;
    if (sqlite3_prepare_v2(s->db, "INSERT OR IGNORE INTO temp.kb_ids(id) VALUES(?)", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(s->db, err);
    json_t *lists[2] = {cs->objects, cs->replace};
    for (size_t l = 0; l < 2 && rc == 0; l++) {
        size_t i;
        json_t *v;
        json_array_foreach(lists[l], i, v) {
            const char *id = json_is_string(v) ? json_string_value(v)
                                               : json_string_value(json_object_get(v, "id"));
            if (!id)
                continue;
            sqlite3_reset(st);
            sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
            if (sqlite3_step(st) != SQLITE_DONE) {
                rc = db_fail(s->db, err);
                break;
            }
        }
    }
    sqlite3_finalize(st);
    if (rc != 0)
        return -1;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM kblink_changes WHERE seq > ? AND source='kb'"
                                  " AND key IN (SELECT id FROM temp.kb_ids)", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(s->db, err);
    sqlite3_bind_int64(st, 1, s->max_seq);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(s->db, err);
    sqlite3_finalize(st);
    return rc;
}

static int save_sighted(kb_sync *s, tr_error *err)
{
    if (!s->do_ind)
        return 0;
    if (exec_sql(s, "DELETE FROM kblink_sighted", err) != 0)
        return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "INSERT OR IGNORE INTO kblink_sighted(sha256) VALUES(?)", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(s->db, err);
    int rc = 0;
    const char *sha;
    json_t *v;
    json_object_foreach(s->sighted, sha, v) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_fail(s->db, err);
            break;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static int save_keys_in(kb_sync *s, tr_error *err)
{
    if (save_samples(s, err) != 0 || save_sighted(s, err) != 0)
        return -1;
    return save_key_rows(s, err);
}

static int save_key_rows(kb_sync *s, tr_error *err)
{
    sqlite3_stmt *sts[2] = {NULL, NULL};
    if (sqlite3_prepare_v2(s->db,
                           "INSERT OR REPLACE INTO kblink_objects(key, id, gen, live, sco)"
                           " VALUES(?,?,?,?,?)",
                           -1, &sts[0], NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "INSERT OR REPLACE INTO kblink_noise(key, id, gen, live, sco)"
                           " VALUES(?,?,?,?,?)",
                           -1, &sts[1], NULL) != SQLITE_OK) {
        sqlite3_finalize(sts[0]);
        return db_fail(s->db, err);
    }
    for (size_t i = 0; i < s->nk; i++) {
        kb_key *k = &s->k[i];
        if (!k->dirty || !k->id)
            continue;
        sqlite3_stmt *st = sts[ip_key(s->knames[i])];
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, s->knames[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, k->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, k->gen);
        sqlite3_bind_int(st, 4, k->live);
        sqlite3_bind_int(st, 5, k->sco);
        if (sqlite3_step(st) != SQLITE_DONE) {
            int rc = db_fail(s->db, err);
            sqlite3_finalize(sts[0]);
            sqlite3_finalize(sts[1]);
            return rc;
        }
        k->dirty = false;
    }
    sqlite3_finalize(sts[0]);
    sqlite3_finalize(sts[1]);
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

static bool prefixed(const char *key, const char *p)
{
    return strncmp(key, p, strlen(p)) == 0;
}

/* Whether this run derived what key stands for: only then does not having
 * seen it mean it is gone. */
static bool in_scope(const kb_sync *s, const char *key, const kb_key *k)
{
    if (ip_key(key))
        return s->phase == PHASE_BATCH;
    /* Seen or not only once every address was derived. */
    if (prefixed(key, "cve:") || prefixed(key, "sensor:"))
        return s->phase == PHASE_TAIL;
    if (s->phase != PHASE_MAIN)
        return false;
    if (s->full)
        return true;
    if (k->sco)
        return prefixed(key, "file--") && json_object_get(s->scope_files, key) != NULL;
    if (prefixed(key, "malware:"))
        return json_object_get(s->scope_fams, key + 8) != NULL;
    if (prefixed(key, "rel:malware--")) {
        const char *end = strchr(key + 4, ':');
        if (!end)
            return false;
        char *mal = tr_xasprintf("%.*s", (int)(end - (key + 4)), key + 4);
        bool in = json_object_get(s->scope_malids, mal) != NULL;
        free(mal);
        return in;
    }
    if (prefixed(key, "live:") || prefixed(key, "hunt:") || prefixed(key, "od:") ||
        prefixed(key, "sighting:") || prefixed(key, "rel:indicator--"))
        return s->do_ind;
    return false;
}

static int retire(kb_sync *s, size_t from, change_set *cs, tr_kblink_stats *st, tr_error *err)
{
    for (size_t i = from; i < s->nk; i++) {
        kb_key *k = &s->k[i];
        if (k->seen || !k->live || !k->id || !in_scope(s, s->knames[i], k))
            continue;
        int rc;
        json_t *have = held(s, k->id, err, &rc);
        if (rc < 0)
            return -1;
        k->live = false;
        k->dirty = true;
        /* An address's SCO says only that the address exists: its revoked
         * observed-data and sightings say trawl no longer reports it.
         * Marking it would replace it (SCOs have no versions: a delete and
         * a create) every time an address leaves or re-enters the scope. */
        if (!have || (k->sco && ip_key(s->knames[i]))) {
            json_decref(have);
            continue;
        }
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

/* ---- the noise pass ------------------------------------------------------------ */

/* Commits one batch's objects and keys, and takes its own knowledge-base
 * rows out of the change log. */
static int noise_commit(kb_sync *s, change_set *cs, tr_kblink_stats *st, tr_error *err)
{
    if (apply(s, cs, st, err) != 0)
        return -1;
    if (exec_sql(s, "BEGIN IMMEDIATE", err) != 0)
        return -1;
    int rc = save_key_rows(s, err);
    if (rc == 0)
        rc = consume_kb_rows(s, cs, err);
    if (rc == 0 && exec_sql(s, "COMMIT", err) != 0)
        rc = -1;
    if (rc != 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int reconcile_wanted(kb_sync *s, change_set *cs, tr_kblink_stats *st, tr_error *err)
{
    const char *id;
    json_t *o;
    json_object_foreach(s->want, id, o) {
        st->objects++;
        if (reconcile(s, o, tr_stix_is_sco_type(json_string_value(json_object_get(o, "type"))),
                      cs, st, false, err) != 0)
            return -1;
    }
    return 0;
}

/* Derives, compares and stores the objects of a batch of addresses, then
 * forgets them. */
static int noise_batch(kb_sync *s, tr_noise *nz, sqlite3_stmt *keyq, char **ips, size_t n,
                       tr_kblink_stats *st, tr_error *err)
{
    size_t mark = s->nk;
    for (size_t i = 0; i < n; i++)
        if (load_ip_keys(s, keyq, ips[i], err) != 0)
            return -1;
    json_decref(s->want);
    s->want = json_object();
    if (tr_noise_read_begin(nz, err) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *rec = NULL;
        int got = tr_noise_ip(nz, ips[i], &rec, err);
        if (got < 0)
            rc = -1;
        else if (got && noise_deserves(s, rec))
            rc = derive_ip(s, ips[i], rec, err);
        json_decref(rec);
    }
    tr_noise_read_end(nz);
    change_set cs = {json_array(), json_array()};
    s->phase = PHASE_BATCH;
    if (rc == 0)
        rc = reconcile_wanted(s, &cs, st, err);
    if (rc == 0)
        rc = retire(s, mark, &cs, st, err);
    if (rc == 0)
        rc = noise_commit(s, &cs, st, err);
    json_decref(cs.objects);
    json_decref(cs.replace);
    drop_ip_keys(s, mark);
    return rc;
}

/* The addresses a pass derives: every address with a record or with objects
 * (a full pass), or those the change log names, in a temporary table read a
 * page at a time. */
static int noise_todo(kb_sync *s, tr_error *err)
{
    if (exec_sql(s, "CREATE TEMP TABLE IF NOT EXISTS kb_noise_todo(ip TEXT PRIMARY KEY)"
                    " WITHOUT ROWID; DELETE FROM temp.kb_noise_todo;", err) != 0)
        return -1;
    if (s->full)
        return exec_sql(s, "INSERT OR IGNORE INTO temp.kb_noise_todo SELECT ip FROM noise_ips;"
                           "INSERT OR IGNORE INTO temp.kb_noise_todo SELECT substr(key, 10)"
                           " FROM kblink_noise WHERE key GLOB 'noise-ip:*' OR key GLOB 'noise-od:*';",
                        err);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "INSERT OR IGNORE INTO temp.kb_noise_todo SELECT key FROM"
                                  " kblink_changes WHERE source='noise' AND seq <= ? AND key IS"
                                  " NOT NULL", -1, &st, NULL) != SQLITE_OK)
        return db_fail(s->db, err);
    sqlite3_bind_int64(st, 1, s->max_seq);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(s->db, err);
    sqlite3_finalize(st);
    return rc;
}

static int noise_pass(kb_sync *s, tr_kblink_stats *st, tr_error *err)
{
    if (noise_todo(s, err) != 0)
        return -1;
    tr_noise *nz;
    if (tr_noise_open(s->data_dir, &nz, err) != 0)
        return -1;
    sqlite3_stmt *page = NULL, *keyq = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT ip FROM temp.kb_noise_todo WHERE ip > ? ORDER BY ip"
                                  " LIMIT ?", -1, &page, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "SELECT key, id, gen, live, sco FROM kblink_noise WHERE key IN"
                                  " ('noise-ip:' || ?1, 'noise-od:' || ?1) UNION ALL"
                                  " SELECT key, id, gen, live, sco FROM kblink_noise"
                                  " WHERE key > ?2 AND key < ?3", -1, &keyq, NULL) != SQLITE_OK)
        rc = db_fail(s->db, err);
    char *ips[KB_NOISE_BATCH];
    char *after = tr_xstrdup("");
    while (rc == 0) {
        size_t n = 0;
        sqlite3_reset(page);
        sqlite3_bind_text(page, 1, after, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(page, 2, KB_NOISE_BATCH);
        int r;
        while ((r = sqlite3_step(page)) == SQLITE_ROW)
            ips[n++] = tr_xstrdup((const char *)sqlite3_column_text(page, 0));
        /* No read transaction stays open across the batch's writes. */
        sqlite3_reset(page);
        if (r != SQLITE_DONE)
            rc = db_fail(s->db, err);
        if (n == 0 || rc != 0) {
            for (size_t i = 0; i < n; i++)
                free(ips[i]);
            break;
        }
        free(after);
        after = tr_xstrdup(ips[n - 1]);
        rc = noise_batch(s, nz, keyq, ips, n, st, err);
        for (size_t i = 0; i < n; i++)
            free(ips[i]);
    }
    free(after);
    sqlite3_finalize(page);
    sqlite3_finalize(keyq);
    tr_noise_close(nz);
    if (rc != 0)
        return -1;
    /* After a full pass, a sensor or CVE no address names any more retires. */
    if (s->full) {
        json_decref(s->want);
        s->want = json_object();
        change_set cs = {json_array(), json_array()};
        s->phase = PHASE_TAIL;
        rc = retire(s, 0, &cs, st, err);
        if (rc == 0)
            rc = noise_commit(s, &cs, st, err);
        json_decref(cs.objects);
        json_decref(cs.replace);
        if (rc != 0)
            return -1;
    }
    char sql[200];
    snprintf(sql, sizeof sql, "DELETE FROM kblink_changes WHERE source='noise' AND seq <= %lld;"
                              " DELETE FROM temp.kb_noise_todo;", (long long)s->max_seq);
    if (exec_sql(s, sql, err) != 0)
        return -1;
    if (s->full) {
        snprintf(sql, sizeof sql,
                 "INSERT OR REPLACE INTO kblink_state(key, value) VALUES('last_full', %lld)",
                 (long long)time(NULL));
        return exec_sql(s, sql, err);
    }
    return 0;
}

/* Moves the noise keys of a database synced before kblink_noise existed
 * (the address SCO was keyed by its id then) and asks for a full pass,
 * which derives every address under the new keys. Once. */
static int migrate_noise_keys(kb_sync *s, tr_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM kblink_state WHERE key='noise_keys'", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(s->db, err);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r == SQLITE_ROW)
        return 0;
    if (r != SQLITE_DONE)
        return db_fail(s->db, err);
    static const char *const sql =
        "BEGIN IMMEDIATE;"
        "INSERT OR REPLACE INTO kblink_noise(key, id, gen, live, sco) SELECT key, id, gen, live, sco"
        " FROM kblink_objects WHERE key GLOB 'noise-od:*' OR key GLOB 'noise-sighting:*';"
        "INSERT OR REPLACE INTO kblink_noise(key, id, gen, live, sco)"
        " SELECT 'noise-ip:' || json_extract(o.json, '$.value'), k.id, k.gen, k.live, 1"
        " FROM kblink_objects k JOIN stix_latest l ON l.id = k.id JOIN stix_objects o"
        " ON o.seq = l.seq WHERE k.sco = 1 AND k.key NOT GLOB 'file--*'"
        " AND json_extract(o.json, '$.value') IS NOT NULL;"
        "DELETE FROM kblink_objects WHERE key GLOB 'noise-od:*' OR key GLOB 'noise-sighting:*'"
        " OR (sco = 1 AND key NOT GLOB 'file--*');"
        "DELETE FROM kblink_state WHERE key = 'last_full';"
        "DROP TRIGGER IF EXISTS kblink_log_kb_ins;"
        "DROP TRIGGER IF EXISTS kblink_log_kb_del;"
        "INSERT INTO kblink_state(key, value) VALUES('noise_keys', 1);"
        "COMMIT;";
    if (exec_sql(s, sql, err) != 0) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

static bool state_flag(kb_sync *s, const char *key)
{
    sqlite3_stmt *st;
    bool v = false;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM kblink_state WHERE key=?", -1, &st, NULL) !=
        SQLITE_OK)
        return false;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0) != 0;
    sqlite3_finalize(st);
    return v;
}

static json_t *trawl_identity(void)
{
    return json_pack("{ss ss ss ss ss ss ss ss}", "type", "identity", "spec_version", "2.1", "id",
                     TR_KBLINK_IDENTITY, "created", KB_EPOCH, "modified", KB_EPOCH, "name", "trawl",
                     "identity_class", "system", "description",
                     "this trawl installation: the producer of the objects linked from its data");
}

/* Creates the change-log triggers the database lacks on the tables that
 * exist (a table that does not exist yet holds no data to miss). *created:
 * some were missing, so changes may have gone unlogged. */
static int ensure_triggers(kb_sync *s, bool *created, tr_error *err)
{
    *created = false;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT type, name FROM sqlite_master WHERE type IN"
                                  " ('table', 'trigger')", -1, &st, NULL) != SQLITE_OK)
        return db_fail(s->db, err);
    json_t *have = json_object();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_object_set_new(have, (const char *)sqlite3_column_text(st, 1), json_true());
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(have);
        return db_fail(s->db, err);
    }
    rc = 0;
    for (size_t i = 0; i < sizeof kb_triggers / sizeof kb_triggers[0] && rc == 0; i++) {
        if (json_object_get(have, kb_triggers[i].name) ||
            !json_object_get(have, kb_triggers[i].table))
            continue;
        char *sql = tr_xasprintf("CREATE TRIGGER IF NOT EXISTS %s %s", kb_triggers[i].name,
                                 kb_triggers[i].body);
        rc = exec_sql(s, sql, err);
        free(sql);
        *created = true;
    }
    json_decref(have);
    return rc;
}

/* Reads the change log; a change to the knowledge base's own objects (or a
 * new malware/intrusion set) asks for a full pass. */
static int read_changes(kb_sync *s, bool *kb_changed, tr_error *err)
{
    *kb_changed = false;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT seq, source, key FROM kblink_changes ORDER BY seq", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(s->db, err);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        s->max_seq = sqlite3_column_int64(st, 0);
        const char *src = (const char *)sqlite3_column_text(st, 1);
        const char *key = (const char *)sqlite3_column_text(st, 2);
        if (strcmp(src, "sample") == 0 && key)
            json_object_set_new(s->touched, key, json_true());
        else if (strcmp(src, "sample_id") == 0 && key)
            json_object_set_new(s->touched_ids, key, json_true());
        else if (strcmp(src, "live") == 0 || strcmp(src, "hunt") == 0)
            s->do_ind = true;
        else if (strcmp(src, "noise") == 0)
            s->do_noise = true;
        else
            *kb_changed = true;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(s->db, err);
}

/* The samples whose names or tags changed, by sha256. One gone since is
 * left out: its removal logged its sha256. */
static int resolve_sample_ids(kb_sync *s, tr_error *err)
{
    if (!json_object_size(s->touched_ids))
        return 0;
    tr_store *st;
    if (tr_store_open(s->data_dir, 0, &st, err) != 0)
        return -1;
    int rc = 0;
    const char *id;
    json_t *v;
    json_object_foreach(s->touched_ids, id, v) {
        tr_sample *x = NULL;
        int got = tr_store_get_by_id(st, strtoll(id, NULL, 10), &x, err);
        if (got < 0) {
            rc = -1;
            break;
        }
        if (got) {
            json_object_set_new(s->touched, x->d.sha256, json_true());
            tr_sample_free(x);
        }
    }
    tr_store_close(st);
    return rc;
}

/* Sets do_ind when a touched sample is one the indicators name. */
static int any_sighted(kb_sync *s, tr_error *err)
{
    if (!json_object_size(s->touched))
        return 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM kblink_sighted WHERE sha256=?", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(s->db, err);
    int rc = 0;
    const char *sha;
    json_t *v;
    json_object_foreach(s->touched, sha, v) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            s->do_ind = true;
            break;
        }
        if (r != SQLITE_DONE) {
            rc = db_fail(s->db, err);
            break;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static int64_t last_full(kb_sync *s)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM kblink_state WHERE key='last_full'", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Opening the modules creates their tables, so their triggers exist from
 * the first sync on instead of costing a second full pass later. */
static int prime_modules(const char *data_dir, tr_error *err)
{
    tr_store *st;
    if (tr_store_open(data_dir, 0, &st, err) != 0)
        return -1;
    tr_store_close(st);
    tr_noise *nz;
    if (tr_noise_open(data_dir, &nz, err) != 0)
        return -1;
    tr_noise_close(nz);
    tr_live_ruleset *rs = NULL;
    size_t n = 0;
    if (tr_live_list(data_dir, &rs, &n, err) != 0)
        return -1;
    tr_live_list_free(rs, n);
    tr_stix_db *kb;
    if (tr_stix_open(data_dir, &kb, err) != 0)
        return -1;
    tr_stix_close(kb);
    return 0;
}

int tr_kblink_noise_scope(const char *data_dir, const char *set, bool *all, tr_error *err)
{
    bool want_all = set && strcmp(set, "all") == 0;
    if (set && !want_all && strcmp(set, "classified") != 0)
        return tr_fail(err, "noise scope '%.40s': expected all or classified", set);
    kb_sync s = {.data_dir = data_dir};
    char *path = tr_xasprintf("%s/trawl.db", data_dir);
    int rc = -1;
    if (sqlite3_open_v2(path, &s.db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        tr_fail(err, "cannot open %s: %s", path, s.db ? sqlite3_errmsg(s.db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(s.db, 30000);
    if (exec_sql(&s, kb_schema, err) != 0)
        goto out;
    bool was = state_flag(&s, "noise_all");
    if (set && was != want_all) {
        char sql[200];
        snprintf(sql, sizeof sql, "BEGIN IMMEDIATE; INSERT OR REPLACE INTO kblink_state(key, value)"
                                  " VALUES('noise_all', %d); DELETE FROM kblink_state WHERE"
                                  " key='last_full'; COMMIT;", want_all ? 1 : 0);
        if (exec_sql(&s, sql, err) != 0) {
            sqlite3_exec(s.db, "ROLLBACK", NULL, NULL, NULL);
            goto out;
        }
    }
    if (all)
        *all = set ? want_all : was;
    rc = 0;
out:
    if (s.db)
        sqlite3_close(s.db);
    free(path);
    return rc;
}

int tr_kblink_sync(const char *data_dir, tr_kblink_stats *stp, tr_error *err)
{
    return tr_kblink_sync_mode(data_dir, TR_KBLINK_AUTO, stp, err);
}

int tr_kblink_sync_mode(const char *data_dir, tr_kblink_mode mode, tr_kblink_stats *stp,
                        tr_error *err)
{
    tr_kblink_stats st = {0};
    kb_sync s = {.data_dir = data_dir};
    s.keys = json_object();
    s.want = json_object();
    s.sha_file = json_object();
    s.sha_malware = json_object();
    s.touched = json_object();
    s.touched_ids = json_object();
    s.sighted = json_object();
    s.fam_of = json_object();
    s.scope_files = json_object();
    s.scope_fams = json_object();
    s.scope_malids = json_object();
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
    bool created, kb_changed;
    if (exec_sql(&s, kb_schema, err) != 0 || prime_modules(data_dir, err) != 0 ||
        migrate_noise_keys(&s, err) != 0 || ensure_triggers(&s, &created, err) != 0 ||
        read_changes(&s, &kb_changed, err) != 0 ||
        resolve_sample_ids(&s, err) != 0)
        goto out;
    int64_t full_at = last_full(&s);
    s.noise_all = state_flag(&s, "noise_all");
    s.full = mode == TR_KBLINK_FULL || created || kb_changed || full_at < 0 ||
             time(NULL) - full_at >= TR_KBLINK_FULL_EVERY;
    /* A sample's sightings name its file and its family: the indicators are
     * derived again when a sample they name changed. */
    if (!s.do_ind && any_sighted(&s, err) != 0)
        goto out;
    if (s.full)
        s.do_ind = s.do_noise = true;
    st.full = s.full;
    if (!s.full && !s.do_ind && !s.do_noise && !json_object_size(s.touched)) {
        rc = 0;               /* nothing changed: nothing to read, nothing to commit */
        goto out;
    }
    if (tr_stix_open(data_dir, &s.kb, err) != 0 || load_keys(&s, err) != 0)
        goto out;
    want(&s, trawl_identity());
    if (s.full ? derive_samples(&s, err) != 0
               : (s.do_ind || json_object_size(s.touched)) &&
                     (load_samples_cache(&s, err) != 0 || derive_samples_touched(&s, err) != 0))
        goto out;
    if (s.do_ind && (derive_live(&s, err) != 0 || derive_hunts(&s, err) != 0))
        goto out;
    s.phase = PHASE_MAIN;
    if (reconcile_wanted(&s, &cs, &st, err) != 0 || retire(&s, 0, &cs, &st, err) != 0 ||
        apply(&s, &cs, &st, err) != 0 || save_keys(&s, &cs, err) != 0)
        goto out;
    if (s.do_noise && noise_pass(&s, &st, err) != 0)
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
    json_decref(s.touched);
    json_decref(s.touched_ids);
    json_decref(s.sighted);
    json_decref(s.fam_of);
    json_decref(s.scope_files);
    json_decref(s.scope_fams);
    json_decref(s.scope_malids);
    if (s.kb)
        tr_stix_close(s.kb);
    if (s.db)
        sqlite3_close(s.db);
    free(path);
    if (lock_fd >= 0)
        close(lock_fd);
    return rc;
}
