/* The knowledge base tables in <data>/trawl.db, on the module's own
 * connection: one row per object version with its JSON text as received,
 * a pointer to each object's latest version, relationship edges, FTS5 over
 * names, aliases and descriptions, TAXII collections and statuses. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <sqlite3.h>

#include "stix/stix.h"
#include "stix/stix_internal.h"

struct tr_stix_db {
    sqlite3 *db;
};

static const char *const schema =
    "CREATE TABLE IF NOT EXISTS stix_objects("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id TEXT NOT NULL, type TEXT NOT NULL, created TEXT, modified TEXT,"
    " vkey TEXT NOT NULL,"                  /* the version, normalized for ordering */
    " spec_version TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0,"
    " date_added TEXT NOT NULL, json TEXT NOT NULL,"
    " UNIQUE(id, vkey));"
    "CREATE INDEX IF NOT EXISTS stix_objects_type ON stix_objects(type, seq);"
    "CREATE TABLE IF NOT EXISTS stix_latest("
    " id TEXT PRIMARY KEY, seq INTEGER NOT NULL, type TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS stix_latest_seq ON stix_latest(seq);"
    "CREATE TABLE IF NOT EXISTS stix_edges("
    " seq INTEGER NOT NULL, rel_id TEXT NOT NULL, rel_type TEXT NOT NULL,"
    " source TEXT NOT NULL, target TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS stix_edges_source ON stix_edges(source);"
    "CREATE INDEX IF NOT EXISTS stix_edges_target ON stix_edges(target);"
    /* A delete (an SCO replaced by a sync, a TAXII DELETE) finds its edges
     * and collection entries by seq: without these it read both tables
     * whole, seconds per object at a million objects. */
    "CREATE INDEX IF NOT EXISTS stix_edges_seq ON stix_edges(seq);"
    "CREATE VIRTUAL TABLE IF NOT EXISTS stix_fts USING fts5("
    " name, aliases, description, content='');"
    "CREATE TABLE IF NOT EXISTS stix_collections("
    " id TEXT PRIMARY KEY, title TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',"
    " read_level INTEGER NOT NULL DEFAULT 1, write_level INTEGER NOT NULL DEFAULT 2,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS stix_members("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL,"
    " obj_seq INTEGER NOT NULL, date_added TEXT NOT NULL, UNIQUE(collection, obj_seq));"
    "CREATE INDEX IF NOT EXISTS stix_members_obj ON stix_members(obj_seq);"
    "CREATE TABLE IF NOT EXISTS stix_status(id TEXT PRIMARY KEY, json TEXT NOT NULL,"
    " created INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS stix_status_created ON stix_status(created);"
    /* Deleted objects: their last version, under a seq taken from
     * stix_objects' sequence so the stream orders them with the rest. */
    /* Ids an SCO arrived with that are not its deterministic id (a UUIDv4
     * from a producer that did not derive one): the object is stored under
     * the deterministic id and the one it came with resolves to it, as
     * OpenCTI's x_opencti_stix_ids do. json: the object as it arrived. */
    "CREATE TABLE IF NOT EXISTS stix_aliases(alias TEXT PRIMARY KEY, id TEXT NOT NULL,"
    " json TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS stix_tombstones("
    " seq INTEGER PRIMARY KEY, id TEXT NOT NULL, type TEXT NOT NULL, created TEXT, modified TEXT,"
    " spec_version TEXT NOT NULL, deleted_at TEXT NOT NULL, json TEXT NOT NULL);";

/* Built-in read-only collections: fixed ids (UUIDv5 of their names in the
 * SCO namespace) so a client's configuration survives a reinstall. */
static const struct {
    const char *id, *title, *description, *type;
} builtins[] = {
    {"83fec7d0-08f3-53e0-bdb8-a9d26fb84a0b", "Knowledge base",
     "Every object of trawl's knowledge base (read-only).", NULL},
    {"55b11510-301d-510a-b40e-2fa6ebd64ff1", "Indicators",
     "Every indicator of trawl's knowledge base (read-only).", "indicator"},
    {"e7bb7cae-320e-5a51-9a10-0fae5d590b99", "Reports",
     "Every report of trawl's knowledge base (read-only).", "report"},
    /* What trawl's own data becomes (trawl kb sync): samples as file
     * objects, sensor sources as addresses. By type: an address a report
     * names is the same deterministic object as the one the sensors saw. */
    {"90a2c457-1c94-52d4-823b-2d0976744562", "Samples",
     "Every file object: trawl's stored samples, with their hashes (read-only).", "file"},
    {"12b17321-504d-5987-a05e-1e406d7f860a", "Noise",
     "Every IP address object: the sources trawl's sensors saw, among others (read-only).",
     "ipv4-addr,ipv6-addr"},
};
#define NBUILTIN (sizeof builtins / sizeof builtins[0])

/* The TLP marking definitions the spec (1.0) and the FIRST TLP 2.0 extension
 * fix, ids and all: every knowledge base holds them from the start, so
 * object_marking_refs to them resolve. */
static const char tlp_bundle[] =
    "{\"type\":\"bundle\",\"id\":\"bundle--3a8c4c1e-5d1b-4d0f-9a57-6b1b0f1f7e01\",\"objects\":["
    "{\"type\":\"marking-definition\",\"spec_version\":\"2.1\",\"id\":\"marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9\",\"created\":\"2017-01-20T00:00:00.000Z\",\"definition_type\":\"tlp\",\"name\":\"TLP:WHITE\",\"definition\":{\"tlp\":\"white\"}},"
    "{\"type\":\"marking-definition\",\"spec_version\":\"2.1\",\"id\":\"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da\",\"created\":\"2017-01-20T00:00:00.000Z\",\"definition_type\":\"tlp\",\"name\":\"TLP:GREEN\",\"definition\":{\"tlp\":\"green\"}},"
    "{\"type\":\"marking-definition\",\"spec_version\":\"2.1\",\"id\":\"marking-definition--f88d31f6-486f-44da-b317-01333bde0b82\",\"created\":\"2017-01-20T00:00:00.000Z\",\"definition_type\":\"tlp\",\"name\":\"TLP:AMBER\",\"definition\":{\"tlp\":\"amber\"}},"
    "{\"type\":\"marking-definition\",\"spec_version\":\"2.1\",\"id\":\"marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed\",\"created\":\"2017-01-20T00:00:00.000Z\",\"definition_type\":\"tlp\",\"name\":\"TLP:RED\",\"definition\":{\"tlp\":\"red\"}},"
    "{\"type\":\"marking-definition\",\"spec_version\":\"2.1\",\"id\":\"marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487\",\"created\":\"2022-10-01T00:00:00.000Z\",\"name\":\"TLP:CLEAR\",\"extensions\":{\"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d\":{\"extension_type\":\"property-extension\",\"tlp_2_0\":\"clear\"}}},"
    "{\"type\":\"marking-definition\",\"spec_version\":\"2.1\",\"id\":\"marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb\",\"created\":\"2022-10-01T00:00:00.000Z\",\"name\":\"TLP:GREEN\",\"extensions\":{\"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d\":{\"extension_type\":\"property-extension\",\"tlp_2_0\":\"green\"}}},"
    "{\"type\":\"marking-definition\",\"spec_version\":\"2.1\",\"id\":\"marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421\",\"created\":\"2022-10-01T00:00:00.000Z\",\"name\":\"TLP:AMBER\",\"extensions\":{\"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d\":{\"extension_type\":\"property-extension\",\"tlp_2_0\":\"amber\"}}},"
    "{\"type\":\"marking-definition\",\"spec_version\":\"2.1\",\"id\":\"marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003\",\"created\":\"2022-10-01T00:00:00.000Z\",\"name\":\"TLP:AMBER+STRICT\",\"extensions\":{\"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d\":{\"extension_type\":\"property-extension\",\"tlp_2_0\":\"amber+strict\"}}},"
    "{\"type\":\"marking-definition\",\"spec_version\":\"2.1\",\"id\":\"marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1\",\"created\":\"2022-10-01T00:00:00.000Z\",\"name\":\"TLP:RED\",\"extensions\":{\"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d\":{\"extension_type\":\"property-extension\",\"tlp_2_0\":\"red\"}}}"
    "]}";
#define TLP_LAST_ID "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"

static int db_fail(tr_stix_db *s, tr_error *err)
{
    return tr_fail(err, "knowledge base: %s", sqlite3_errmsg(s->db));
}

static int seed_markings(tr_stix_db *s, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM stix_latest WHERE id='" TLP_LAST_ID "'", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(s, err);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc != SQLITE_DONE)
        return db_fail(s, err);
    tr_stix_import_result res;
    return tr_stix_import(s, tlp_bundle, sizeof tlp_bundle - 1, NULL, &res, err);
}

int tr_stix_open(const char *data_dir, tr_stix_db **out, tr_error *err)
{
    if (tr_mkdir_p(data_dir, 0700, err) != 0)
        return -1;
    char *path = tr_xasprintf("%s/trawl.db", data_dir);
    tr_stix_db *s = tr_xcalloc(1, sizeof *s);
    int rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    free(path);
    if (rc != SQLITE_OK) {
        tr_fail(err, "cannot open the database: %s", s->db ? sqlite3_errmsg(s->db) : "out of memory");
        sqlite3_close(s->db);
        free(s);
        return -1;
    }
    sqlite3_busy_timeout(s->db, 30000);
    if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
                     NULL) != SQLITE_OK ||
        sqlite3_exec(s->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
        db_fail(s, err);
        tr_stix_close(s);
        return -1;
    }
    if (seed_markings(s, err) != 0) {
        tr_error_prefix(err, "TLP marking definitions");
        tr_stix_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void tr_stix_close(tr_stix_db *s)
{
    if (!s)
        return;
    sqlite3_close(s->db);
    free(s);
}

/* "YYYY-MM-DDTHH:MM:SS" + 9 fractional digits + "Z": equal instants compare
 * equal and order as text, whatever precision they were written with. */
static void ts_norm(const char *ts, char out[32])
{
    if (!ts || strlen(ts) < 19) {
        snprintf(out, 32, "%s", ts ? ts : "");
        return;
    }
    char frac[10] = "000000000";
    if (ts[19] == '.') {
        for (size_t i = 0; i < 9 && ts[20 + i] >= '0' && ts[20 + i] <= '9'; i++)
            frac[i] = ts[20 + i];
    }
    snprintf(out, 32, "%.19s.%sZ", ts, frac);
}

void tr_stix_uuid4(char out[37])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1)
        tr_die("no randomness from OpenSSL");
    b[6] = (unsigned char)((b[6] & 0x0F) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);
    char hex[33];
    tr_hex_encode(b, 16, hex);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

/* ---- import ------------------------------------------------------------------ */

static void join_strings(json_t *v, tr_buf *b)
{
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
        if (json_is_string(x)) {
            if (b->len)
                tr_buf_append(b, " ", 1);
            tr_buf_append(b, json_string_value(x), json_string_length(x));
        }
    }
}

static int prep(tr_stix_db *s, sqlite3_stmt **st, const char *sql, tr_error *err)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return db_fail(s, err);
    return 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static const char *alias_of(tr_stix_db *s, const char *id, char buf[128]);

typedef struct import_stmts {
    sqlite3_stmt *ins, *latest_get, *latest_set, *fts, *edge, *member, *find, *alias_get,
        *alias_set, *edge_source, *edge_target, *latest_json, *json_set;
} import_stmts;

static void import_stmts_free(import_stmts *x)
{
    sqlite3_finalize(x->ins);
    sqlite3_finalize(x->latest_get);
    sqlite3_finalize(x->latest_set);
    sqlite3_finalize(x->fts);
    sqlite3_finalize(x->edge);
    sqlite3_finalize(x->member);
    sqlite3_finalize(x->find);
    sqlite3_finalize(x->alias_get);
    sqlite3_finalize(x->alias_set);
    sqlite3_finalize(x->edge_source);
    sqlite3_finalize(x->edge_target);
    sqlite3_finalize(x->latest_json);
    sqlite3_finalize(x->json_set);
}

static int add_edge(import_stmts *x, int64_t seq, const char *rel_id, const char *rel_type,
                    const char *src, const char *dst)
{
    if (!src || !dst)
        return 0;
    sqlite3_reset(x->edge);
    sqlite3_bind_int64(x->edge, 1, seq);
    bind_text(x->edge, 2, rel_id);
    bind_text(x->edge, 3, rel_type);
    bind_text(x->edge, 4, src);
    bind_text(x->edge, 5, dst);
    return sqlite3_step(x->edge) == SQLITE_DONE ? 0 : -1;
}

static int store_one(tr_stix_db *s, import_stmts *x, const tr_stix_parsed_object *po,
                     const char *collection, const char *now, tr_stix_import_result *res,
                     tr_error *err)
{
    json_t *o = po->obj;
    const char *id = json_string_value(json_object_get(o, "id"));
    const char *type = json_string_value(json_object_get(o, "type"));
    const char *created = json_string_value(json_object_get(o, "created"));
    const char *modified = json_string_value(json_object_get(o, "modified"));
    const char *spec = json_string_value(json_object_get(o, "spec_version"));
    char vkey[32];
    ts_norm(modified ? modified : created, vkey);
    sqlite3_reset(x->ins);
    bind_text(x->ins, 1, id);
    bind_text(x->ins, 2, type);
    bind_text(x->ins, 3, created);
    bind_text(x->ins, 4, modified);
    bind_text(x->ins, 5, vkey);
    bind_text(x->ins, 6, spec ? spec : "2.1");
    sqlite3_bind_int(x->ins, 7, json_is_true(json_object_get(o, "revoked")));
    bind_text(x->ins, 8, now);
    sqlite3_bind_text(x->ins, 9, po->text, (int)po->len, SQLITE_STATIC);
    if (sqlite3_step(x->ins) != SQLITE_DONE)
        return db_fail(s, err);
    int64_t seq;
    if (sqlite3_changes(s->db) == 0) {
        res->duplicates++;
        sqlite3_reset(x->find);
        bind_text(x->find, 1, id);
        bind_text(x->find, 2, vkey);
        if (sqlite3_step(x->find) != SQLITE_ROW)
            return db_fail(s, err);
        seq = sqlite3_column_int64(x->find, 0);
    } else {
        seq = sqlite3_last_insert_rowid(s->db);
        res->added++;
        if (!res->first_seq)
            res->first_seq = seq;
        res->last_seq = seq;
        /* Latest = greatest version key; an older version arriving late
         * leaves the pointer alone. */
        sqlite3_reset(x->latest_get);
        bind_text(x->latest_get, 1, id);
        int rc = sqlite3_step(x->latest_get);
        bool newer = true;
        if (rc == SQLITE_ROW)
            newer = strcmp(vkey, (const char *)sqlite3_column_text(x->latest_get, 0)) > 0;
        else if (rc != SQLITE_DONE)
            return db_fail(s, err);
        if (newer) {
            sqlite3_reset(x->latest_set);
            bind_text(x->latest_set, 1, id);
            sqlite3_bind_int64(x->latest_set, 2, seq);
            bind_text(x->latest_set, 3, type);
            if (sqlite3_step(x->latest_set) != SQLITE_DONE)
                return db_fail(s, err);
        }
        tr_buf aliases = {0};
        join_strings(json_object_get(o, "aliases"), &aliases);
        join_strings(json_object_get(o, "x_mitre_aliases"), &aliases);
        join_strings(json_object_get(o, "x_opencti_aliases"), &aliases);
        const char *name = json_string_value(json_object_get(o, "name"));
        if (!name)
            name = json_string_value(json_object_get(o, "value"));
        sqlite3_reset(x->fts);
        sqlite3_bind_int64(x->fts, 1, seq);
        bind_text(x->fts, 2, name ? name : "");
        sqlite3_bind_text(x->fts, 3, aliases.data ? aliases.data : "", (int)aliases.len,
                          SQLITE_TRANSIENT);
        bind_text(x->fts, 4, json_string_value(json_object_get(o, "description")));
        rc = sqlite3_step(x->fts);
        tr_buf_free(&aliases);
        if (rc != SQLITE_DONE)
            return db_fail(s, err);
        /* Embedded references are edges too (a report's object_refs, a
         * malware's sample_refs...), named after their property; who made
         * an object and its markings are metadata, not neighbours. */
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v) {
            size_t kl = strlen(k);
            bool one = kl > 4 && strcmp(k + kl - 4, "_ref") == 0;
            bool many = kl > 5 && strcmp(k + kl - 5, "_refs") == 0;
            if ((!one && !many) || strcmp(k, "created_by_ref") == 0 ||
                strcmp(k, "object_marking_refs") == 0 || strcmp(type, "relationship") == 0 ||
                strcmp(type, "sighting") == 0)
                continue;
            size_t n = many ? json_array_size(v) : 1;
            for (size_t i = 0; i < n; i++) {
                const char *target = json_string_value(many ? json_array_get(v, i) : v);
                if (target && add_edge(x, seq, id, k, id, target) != 0)
                    return db_fail(s, err);
            }
        }
        if (strcmp(type, "relationship") == 0) {
            if (add_edge(x, seq, id, json_string_value(json_object_get(o, "relationship_type")),
                         json_string_value(json_object_get(o, "source_ref")),
                         json_string_value(json_object_get(o, "target_ref"))) != 0)
                return db_fail(s, err);
        } else if (strcmp(type, "sighting") == 0) {
            const char *of = json_string_value(json_object_get(o, "sighting_of_ref"));
            size_t i;
            json_t *w;
            json_array_foreach(json_object_get(o, "where_sighted_refs"), i, w) {
                if (add_edge(x, seq, id, "sighted-at", of, json_string_value(w)) != 0)
                    return db_fail(s, err);
            }
            json_array_foreach(json_object_get(o, "observed_data_refs"), i, w) {
                if (add_edge(x, seq, id, "sighted-in", of, json_string_value(w)) != 0)
                    return db_fail(s, err);
            }
        }
    }
    if (collection) {
        sqlite3_reset(x->member);
        bind_text(x->member, 1, collection);
        sqlite3_bind_int64(x->member, 2, seq);
        bind_text(x->member, 3, now);
        if (sqlite3_step(x->member) != SQLITE_DONE)
            return db_fail(s, err);
    }
    return 0;
}

typedef struct import_ctx {
    tr_stix_db *s;
    import_stmts *x;
    const char *collection, *now;
    tr_stix_import_result *res;
    json_t *aliases;          /* this bundle's SCO ids -> their deterministic ids */
    bool any_alias;           /* the bundle or the store has one: refs are looked up */
} import_ctx;

typedef struct alias_scan {
    json_t *map;              /* SCO id -> its deterministic id */
    json_t *deferred;         /* SCOs whose deterministic id depends on references */
} alias_scan;

/* Collects, while the bundle is validated, the SCOs whose id is not the
 * deterministic one of their ID contributing properties: the references to
 * them anywhere in the bundle (before or after them) are stored as
 * references to the deterministic id. A UUIDv5 id was checked to be the
 * deterministic one already. SCOs whose contributing properties are
 * references (a network-traffic's src_ref...) wait until those are known:
 * their id is derived from the references as they will be stored. */
static int collect_alias(void *arg, size_t index, json_t *obj, const char *text, size_t len,
                         tr_error *err)
{
    (void)index, (void)text, (void)len;
    alias_scan *a = arg;
    const char *type = json_string_value(json_object_get(obj, "type"));
    const char *id = json_string_value(json_object_get(obj, "id"));
    if (!type || !id || !tr_stix_is_sco_type(type))
        return 0;
    if (stix_sco_id_has_refs(type)) {
        if (json_array_append(a->deferred, obj) != 0)
            tr_die("out of memory");
        return 0;
    }
    const char *uuid = strstr(id, "--");
    if (uuid && strlen(uuid + 2) == 36 && uuid[2 + 14] == '5')
        return 0;
    char want[128];
    int r = tr_stix_sco_id(obj, want, err);
    if (r < 0)
        return -1;
    if (r == 1 && strcmp(want, id) != 0)
        json_object_set_new(a->map, id, json_string(want));
    return 0;
}

/* The deterministic id an SCO id stands for (this bundle's, or a stored
 * alias), or NULL. Only SCO ids have aliases. */
static const char *canonical_of(import_ctx *c, const char *id, char buf[128], int *err_rc)
{
    *err_rc = 0;
    const char *sep = strstr(id, "--");
    if (!sep || (size_t)(sep - id) >= 64)
        return NULL;
    char type[64];
    snprintf(type, sizeof type, "%.*s", (int)(sep - id), id);
    if (!tr_stix_is_sco_type(type))
        return NULL;
    json_t *m = json_object_get(c->aliases, id);
    if (m)
        return json_string_value(m);
    sqlite3_reset(c->x->alias_get);
    bind_text(c->x->alias_get, 1, id);
    int rc = sqlite3_step(c->x->alias_get);
    const char *out = NULL;
    if (rc == SQLITE_ROW) {
        snprintf(buf, 128, "%s", (const char *)sqlite3_column_text(c->x->alias_get, 0));
        out = buf;
    } else if (rc != SQLITE_DONE) {
        *err_rc = -1;
    }
    sqlite3_reset(c->x->alias_get);
    return out;
}

/* Rewrites the references (properties named *_ref / *_refs, at any depth:
 * extensions hold them too) to aliased SCOs. 1 changed, 0 not, -1 error. */
static int rewrite_refs(import_ctx *c, json_t *v, tr_error *err)
{
    int changed = 0;
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            int r = rewrite_refs(c, e, err);
            if (r < 0)
                return -1;
            changed |= r;
        }
        return changed;
    }
    if (!json_is_object(v))
        return 0;
    for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
        const char *k = json_object_iter_key(it);
        json_t *val = json_object_iter_value(it);
        size_t kl = strlen(k);
        bool one = kl >= 4 && strcmp(k + kl - 4, "_ref") == 0;
        bool many = kl >= 5 && strcmp(k + kl - 5, "_refs") == 0;
        size_t n = one ? 1 : many && json_is_array(val) ? json_array_size(val) : 0;
        for (size_t i = 0; i < n; i++) {
            json_t *ref = one ? val : json_array_get(val, i);
            if (!json_is_string(ref))
                continue;
            char buf[128];
            int erc;
            const char *to = canonical_of(c, json_string_value(ref), buf, &erc);
            if (erc)
                return db_fail(c->s, err);
            if (!to)
                continue;
            if (one)
                json_object_iter_set_new(v, it, json_string(to));
            else
                json_array_set_new(val, i, json_string(to));
            changed = 1;
        }
        if (!one && !many) {
            int r = rewrite_refs(c, val, err);
            if (r < 0)
                return -1;
            changed |= r;
        }
    }
    return changed;
}

/* The deterministic ids of the deferred SCOs, from a copy of each with its
 * references rewritten as they will be stored. */
static int resolve_deferred(import_ctx *c, json_t *deferred, tr_error *err)
{
    size_t i;
    json_t *obj;
    json_array_foreach(deferred, i, obj) {
        const char *id = json_string_value(json_object_get(obj, "id"));
        json_t *copy = json_deep_copy(obj);
        if (!copy)
            tr_die("out of memory");
        int rc = c->any_alias ? rewrite_refs(c, copy, err) : 0;
        char want[128];
        int r = rc < 0 ? -1 : tr_stix_sco_id(copy, want, err);
        json_decref(copy);
        if (r < 0)
            return -1;
        if (r == 1 && strcmp(want, id) != 0) {
            json_object_set_new(c->aliases, id, json_string(want));
            c->any_alias = true;
        }
    }
    return 0;
}

/* Lists id in obj's x_opencti_stix_ids (made when missing) unless it is
 * there already: true when it was added. */
static bool list_other_id(json_t *obj, const char *id)
{
    json_t *ids = json_object_get(obj, "x_opencti_stix_ids");
    if (!json_is_array(ids)) {
        ids = json_array();
        if (!ids)
            tr_die("out of memory");
        json_object_set_new(obj, "x_opencti_stix_ids", ids);
    }
    size_t i;
    json_t *e;
    json_array_foreach(ids, i, e) {
        if (json_is_string(e) && strcmp(json_string_value(e), id) == 0)
            return false;
    }
    json_array_append_new(ids, json_string(id));
    return true;
}

/* An aliased SCO is stored under its deterministic id, with the id it came
 * with listed in x_opencti_stix_ids (OpenCTI's property for the other ids
 * of an object) and its bytes kept in stix_aliases. */
static int canonicalize(import_ctx *c, json_t *obj, const char *text, size_t len, tr_error *err)
{
    const char *id = json_string_value(json_object_get(obj, "id"));
    json_t *to = id ? json_object_get(c->aliases, id) : NULL;
    if (!to)
        return 0;
    char *orig = tr_xstrdup(id);
    sqlite3_reset(c->x->alias_set);
    bind_text(c->x->alias_set, 1, orig);
    bind_text(c->x->alias_set, 2, json_string_value(to));
    sqlite3_bind_text(c->x->alias_set, 3, text, (int)len, SQLITE_STATIC);
    int rc = sqlite3_step(c->x->alias_set);
    sqlite3_reset(c->x->alias_set);
    /* A new alias: relationships stored before it, naming the id the SCO
     * came with, are found from the one object (neighbours, graph). Their
     * JSON keeps the name; x_opencti_stix_ids resolves it for readers. */
    bool fresh = rc == SQLITE_DONE && sqlite3_changes(c->s->db) > 0;
    for (int k = 0; fresh && rc == SQLITE_DONE && k < 2; k++) {
        sqlite3_stmt *up = k ? c->x->edge_target : c->x->edge_source;
        sqlite3_reset(up);
        bind_text(up, 1, json_string_value(to));
        bind_text(up, 2, orig);
        rc = sqlite3_step(up);
        sqlite3_reset(up);
    }
    if (rc != SQLITE_DONE) {
        free(orig);
        return db_fail(c->s, err);
    }
    list_other_id(obj, orig);
    json_object_set(obj, "id", to);
    free(orig);
    return fresh ? 2 : 1;
}

/* A new alias of an SCO stored before it (the deterministic copy came
 * first): the copy that brought the alias is a duplicate, or an older
 * version, so the object served is not the one canonicalize() listed it
 * in. The latest version gets the alias in its x_opencti_stix_ids, the one
 * property trawl rewrites in a stored object: it is trawl's record of the
 * object's other ids, not the producer's content. */
static int list_alias_on_latest(import_ctx *c, const char *id, const char *alias, tr_error *err)
{
    sqlite3_stmt *st = c->x->latest_json;
    sqlite3_reset(st);
    bind_text(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return db_fail(c->s, err);
    int64_t seq = sqlite3_column_int64(st, 0);
    json_t *obj = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
    sqlite3_reset(st);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return tr_fail(err, "stored object %s is not valid JSON", id);
    }
    if (!list_other_id(obj, alias)) {
        json_decref(obj);
        return 0;
    }
    char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (!text)
        tr_die("out of memory");
    st = c->x->json_set;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, seq);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    free(text);
    return rc == SQLITE_DONE ? 0 : db_fail(c->s, err);
}

static int import_one(void *arg, size_t index, json_t *obj, const char *text, size_t len,
                      tr_error *err)
{
    import_ctx *c = arg;
    tr_stix_parsed_object po = {.obj = obj, .text = (char *)text, .len = len};
    char *re = NULL;
    /* Before canonicalize() replaces it: the id the object came with. */
    const char *id = json_string_value(json_object_get(obj, "id"));
    char *came_as = c->any_alias && id ? tr_xstrdup(id) : NULL;
    int changed = c->any_alias ? canonicalize(c, obj, text, len, err) : 0;
    int r = changed < 0 ? -1 : c->any_alias ? rewrite_refs(c, obj, err) : 0;
    if (r < 0 || changed < 0) {
        changed = -1;
    } else if (changed || r) {
        re = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!re)
            tr_die("out of memory");
        po.text = re;
        po.len = strlen(re);
    }
    if (changed < 0 || store_one(c->s, c->x, &po, c->collection, c->now, c->res, err) != 0 ||
        (changed == 2 && list_alias_on_latest(c, json_string_value(json_object_get(obj, "id")),
                                              came_as, err) != 0)) {
        free(re);
        free(came_as);
        char prefix[200];
        snprintf(prefix, sizeof prefix, "object %zu (%.150s)", index,
                 json_string_value(json_object_get(obj, "id")));
        tr_error_prefix(err, prefix);
        return -1;
    }
    free(re);
    free(came_as);
    return 0;
}

int tr_stix_import(tr_stix_db *s, const char *text, size_t len, const char *collection,
                   tr_stix_import_result *res, tr_error *err)
{
    memset(res, 0, sizeof *res);
    /* Validation first, outside the write lock (trawl.db is shared with the
     * sample store); then the objects are read again and stored in one
     * transaction. Neither pass holds the whole bundle parsed. */
    json_t *aliases = json_object(), *deferred = json_array();
    if (!aliases || !deferred)
        tr_die("out of memory");
    alias_scan scan = {aliases, deferred};
    if (stix_bundle_each(text, len, true, collect_alias, &scan, &res->upgraded, &res->total,
                         err) != 0) {
        json_decref(aliases);
        json_decref(deferred);
        return -1;
    }
    import_stmts x = {0};
    char now[32];
    int rc = -1;
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        json_decref(aliases);
        json_decref(deferred);
        return db_fail(s, err);
    }
    /* The time is taken inside the write lock: date_added then never goes
     * backwards along seq, which TAXII's added_after paging relies on. */
    tr_stix_now(now);
    if (prep(s, &x.ins,
             "INSERT OR IGNORE INTO stix_objects(id, type, created, modified, vkey, spec_version,"
             " revoked, date_added, json) VALUES(?,?,?,?,?,?,?,?,?)", err) != 0 ||
        prep(s, &x.find, "SELECT seq FROM stix_objects WHERE id=? AND vkey=?", err) != 0 ||
        prep(s, &x.latest_get,
             "SELECT o.vkey FROM stix_latest l JOIN stix_objects o ON o.seq=l.seq WHERE l.id=?",
             err) != 0 ||
        prep(s, &x.latest_set, "INSERT OR REPLACE INTO stix_latest(id, seq, type) VALUES(?,?,?)",
             err) != 0 ||
        prep(s, &x.fts, "INSERT INTO stix_fts(rowid, name, aliases, description) VALUES(?,?,?,?)",
             err) != 0 ||
        prep(s, &x.edge,
             "INSERT INTO stix_edges(seq, rel_id, rel_type, source, target) VALUES(?,?,?,?,?)",
             err) != 0 ||
        prep(s, &x.member,
             "INSERT OR IGNORE INTO stix_members(collection, obj_seq, date_added) VALUES(?,?,?)",
             err) != 0 ||
        prep(s, &x.alias_get, "SELECT id FROM stix_aliases WHERE alias=?", err) != 0 ||
        prep(s, &x.alias_set, "INSERT OR IGNORE INTO stix_aliases(alias, id, json) VALUES(?,?,?)",
             err) != 0 ||
        prep(s, &x.edge_source, "UPDATE stix_edges SET source=? WHERE source=?", err) != 0 ||
        prep(s, &x.edge_target, "UPDATE stix_edges SET target=? WHERE target=?", err) != 0 ||
        prep(s, &x.latest_json,
             "SELECT o.seq, o.json FROM stix_latest l JOIN stix_objects o ON o.seq=l.seq"
             " WHERE l.id=?", err) != 0 ||
        prep(s, &x.json_set, "UPDATE stix_objects SET json=? WHERE seq=?", err) != 0)
        goto out;
    import_ctx c = {.s = s, .x = &x, .collection = collection, .now = now, .res = res,
                    .aliases = aliases, .any_alias = json_object_size(aliases) > 0};
    /* Most stores hold no alias: their imports look no reference up. */
    if (!c.any_alias) {
        sqlite3_stmt *st = NULL;
        if (prep(s, &st, "SELECT EXISTS(SELECT 1 FROM stix_aliases)", err) != 0)
            goto out;
        c.any_alias = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) != 0;
        sqlite3_finalize(st);
    }
    if (resolve_deferred(&c, deferred, err) != 0)
        goto out;
    bool upgraded;
    size_t n;
    if (stix_bundle_each(text, len, false, import_one, &c, &upgraded, &n, err) != 0)
        goto out;
    snprintf(res->first_added, sizeof res->first_added, "%s", now);
    snprintf(res->last_added, sizeof res->last_added, "%s", now);
    rc = 0;
out:
    import_stmts_free(&x);
    json_decref(aliases);
    json_decref(deferred);
    if (rc == 0 && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(s, err);
    if (rc != 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* ---- reading -------------------------------------------------------------- */

#define ROW_COLS \
    "o.seq, o.id, o.type, o.created, o.modified, o.spec_version, o.date_added, o.revoked, o.json"

static int emit_row(sqlite3_stmt *st, int64_t cursor, tr_stix_row_fn fn, void *arg)
{
    tr_stix_row r = {
        .seq = cursor,
        .id = (const char *)sqlite3_column_text(st, 1),
        .type = (const char *)sqlite3_column_text(st, 2),
        .created = (const char *)sqlite3_column_text(st, 3),
        .modified = (const char *)sqlite3_column_text(st, 4),
        .spec_version = (const char *)sqlite3_column_text(st, 5),
        .date_added = (const char *)sqlite3_column_text(st, 6),
        .revoked = sqlite3_column_int(st, 7) != 0,
        .json = (const char *)sqlite3_column_text(st, 8),
        .json_len = (size_t)sqlite3_column_bytes(st, 8),
    };
    return fn(arg, &r);
}

static int builtin_index(const char *id)
{
    for (size_t i = 0; id && i < NBUILTIN; i++)
        if (strcmp(builtins[i].id, id) == 0)
            return (int)i;
    return -1;
}

static void add_in_list(tr_buf *sql, const char *col, const char *const *vals, json_t *binds)
{
    tr_buf_printf(sql, " AND %s IN (", col);
    for (size_t i = 0; vals[i]; i++) {
        tr_buf_printf(sql, "%s?", i ? "," : "");
        json_array_append_new(binds, json_string(vals[i]));
    }
    tr_buf_append(sql, ")", 1);
}

int tr_stix_query_rows(tr_stix_db *s, const tr_stix_query *q, tr_stix_row_fn fn, void *arg,
                       bool *more, tr_error *err)
{
    tr_buf sql = {0};
    json_t *binds = json_array();
    if (!binds)
        tr_die("out of memory");
    int bi = builtin_index(q->collection);
    bool member = q->collection && bi < 0;
    const char *cursor = member ? "m.seq" : "o.seq";
    const char *added = member ? "m.date_added" : "o.date_added";
    /* The versions of one id that count: those in the collection. */
    const char *scope = member ? "FROM stix_members m2 JOIN stix_objects o2 ON o2.seq=m2.obj_seq"
                                 " WHERE m2.collection=m.collection AND o2.id=o.id"
                               : "FROM stix_objects o2 WHERE o2.id=o.id";
    tr_buf_printf(&sql, "SELECT " ROW_COLS ", %s, %s FROM ", cursor, added);
    if (member) {
        tr_buf_printf(&sql, "stix_members m JOIN stix_objects o ON o.seq=m.obj_seq"
                            " WHERE m.collection=?");
        json_array_append_new(binds, json_string(q->collection));
    } else {
        tr_buf_printf(&sql, "stix_objects o WHERE 1");
        if (bi >= 0 && builtins[bi].type) {
            /* "a,b": the types of a built-in collection */
            char *types = tr_xstrdup(builtins[bi].type), *list[8] = {0}, *save = NULL;
            size_t nt = 0;
            for (char *t = strtok_r(types, ",", &save); t && nt < 7; t = strtok_r(NULL, ",", &save))
                list[nt++] = t;
            add_in_list(&sql, "o.type", (const char *const *)list, binds);
            free(types);
        }
    }
    if (q->ids && q->ids[0]) {
        /* An aliased SCO id asks for the object stored under its
         * deterministic id. */
        size_t n = 0;
        while (q->ids[n])
            n++;
        const char **ids = tr_xmalloc((2 * n + 1) * sizeof *ids);
        char (*bufs)[128] = tr_xmalloc(n * sizeof *bufs);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            ids[k++] = q->ids[i];
            const char *to = alias_of(s, q->ids[i], bufs[i]);
            if (to)
                ids[k++] = to;
        }
        ids[k] = NULL;
        add_in_list(&sql, "o.id", ids, binds);
        free(ids);
        free(bufs);
    }
    if (q->types && q->types[0])
        add_in_list(&sql, "o.type", q->types, binds);
    if (q->spec_versions && q->spec_versions[0])
        add_in_list(&sql, "o.spec_version", q->spec_versions, binds);
    unsigned v = q->versions;
    bool have_ts = q->version_ts && q->version_ts[0];
    if (!v && !have_ts)
        v = TR_STIX_LATEST;
    if (!(v & TR_STIX_ALL)) {
        tr_buf_printf(&sql, " AND (0");
        if (v & TR_STIX_LATEST) {
            if (member)
                tr_buf_printf(&sql, " OR o.vkey=(SELECT max(o2.vkey) %s)", scope);
            else
                tr_buf_printf(&sql, " OR o.seq=(SELECT l.seq FROM stix_latest l WHERE l.id=o.id)");
        }
        if (v & TR_STIX_FIRST)
            tr_buf_printf(&sql, " OR o.vkey=(SELECT min(o2.vkey) %s)", scope);
        if (have_ts) {
            tr_buf_printf(&sql, " OR o.vkey IN (");
            for (size_t i = 0; q->version_ts[i]; i++) {
                char k[32];
                ts_norm(q->version_ts[i], k);
                tr_buf_printf(&sql, "%s?", i ? "," : "");
                json_array_append_new(binds, json_string(k));
            }
            tr_buf_append(&sql, ")", 1);
        }
        tr_buf_append(&sql, ")", 1);
    }
    if (q->added_after) {
        char k[32];
        ts_norm(q->added_after, k);
        tr_buf_printf(&sql, " AND %s > ?", added);
        json_array_append_new(binds, json_string(k));
    }
    if (q->modified_since) {
        char k[32];
        ts_norm(q->modified_since, k);
        tr_buf_printf(&sql, " AND o.vkey >= ?");
        json_array_append_new(binds, json_string(k));
    }
    if (q->after_seq > 0)
        tr_buf_printf(&sql, " AND %s > %lld", cursor, (long long)q->after_seq);
    tr_buf_printf(&sql, " ORDER BY %s", cursor);
    if (q->limit)
        tr_buf_printf(&sql, " LIMIT %zu", q->limit + 1);
    sqlite3_stmt *st = NULL;
    int rc = prep(s, &st, sql.data, err);
    tr_buf_free(&sql);
    if (rc != 0) {
        json_decref(binds);
        return -1;
    }
    for (size_t i = 0; i < json_array_size(binds); i++)
        bind_text(st, (int)i + 1, json_string_value(json_array_get(binds, i)));
    json_decref(binds);
    size_t n = 0;
    if (more)
        *more = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (q->limit && n == q->limit) {
            if (more)
                *more = true;
            break;
        }
        n++;
        /* The row's date_added is the collection's, not the object's. */
        tr_stix_row r = {
            .seq = sqlite3_column_int64(st, 9),
            .id = (const char *)sqlite3_column_text(st, 1),
            .type = (const char *)sqlite3_column_text(st, 2),
            .created = (const char *)sqlite3_column_text(st, 3),
            .modified = (const char *)sqlite3_column_text(st, 4),
            .spec_version = (const char *)sqlite3_column_text(st, 5),
            .date_added = (const char *)sqlite3_column_text(st, 10),
            .revoked = sqlite3_column_int(st, 7) != 0,
            .json = (const char *)sqlite3_column_text(st, 8),
            .json_len = (size_t)sqlite3_column_bytes(st, 8),
        };
        if (fn(arg, &r) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        db_fail(s, err);
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    return 0;
}

int tr_stix_changes(tr_stix_db *s, int64_t after_seq, size_t limit, tr_stix_change_fn fn,
                    void *arg, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (prep(s, &st,
             "SELECT seq, id, type, created, modified, spec_version, date_added, revoked, json, kind"
             " FROM (SELECT " ROW_COLS ", CASE WHEN (SELECT min(x.seq) FROM stix_objects x"
             " WHERE x.id=o.id)=o.seq THEN 0 ELSE 1 END AS kind FROM stix_objects o WHERE o.seq>?1"
             " UNION ALL SELECT t.seq, t.id, t.type, t.created, t.modified, t.spec_version,"
             " t.deleted_at, 0, t.json, 2 FROM stix_tombstones t WHERE t.seq>?1)"
             " ORDER BY seq LIMIT ?2", err) != 0)
        return -1;
    sqlite3_bind_int64(st, 1, after_seq);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        tr_stix_row r = {
            .seq = sqlite3_column_int64(st, 0),
            .id = (const char *)sqlite3_column_text(st, 1),
            .type = (const char *)sqlite3_column_text(st, 2),
            .created = (const char *)sqlite3_column_text(st, 3),
            .modified = (const char *)sqlite3_column_text(st, 4),
            .spec_version = (const char *)sqlite3_column_text(st, 5),
            .date_added = (const char *)sqlite3_column_text(st, 6),
            .revoked = sqlite3_column_int(st, 7) != 0,
            .json = (const char *)sqlite3_column_text(st, 8),
            .json_len = (size_t)sqlite3_column_bytes(st, 8),
        };
        int kind = sqlite3_column_int(st, 9);
        if (fn(arg, &r, kind == 0 ? TR_STIX_CREATE : kind == 1 ? TR_STIX_UPDATE : TR_STIX_DELETE) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(s, err);
}

int64_t tr_stix_last_seq(tr_stix_db *s, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (prep(s, &st, "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name='stix_objects'), 0)",
             err) != 0)
        return -1;
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    if (v < 0)
        return db_fail(s, err);
    return v;
}

static int exec_id(tr_stix_db *s, const char *sql, const char *id, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (prep(s, &st, sql, err) != 0)
        return -1;
    bind_text(st, 1, id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(s, err);
}

int64_t tr_stix_delete(tr_stix_db *s, const char *id, tr_error *err)
{
    if (strncmp(id, "marking-definition--", 20) == 0 && strstr(tlp_bundle, id))
        return tr_fail(err, "%s is one of the fixed TLP markings: it stays", id);
    char abuf[128];
    const char *canon = alias_of(s, id, abuf);
    if (canon)
        id = canon;
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(s, err);
    int64_t n = -1;
    sqlite3_stmt *st = NULL;
    if (prep(s, &st, "SELECT count(*) FROM stix_objects WHERE id=?", err) != 0)
        goto out;
    bind_text(st, 1, id);
    n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    st = NULL;
    if (n <= 0) {
        if (n < 0)
            db_fail(s, err);
        goto out;
    }
    char now[32];
    tr_stix_now(now);
    /* The deletion takes the next seq of stix_objects' own sequence. */
    int64_t seq = -1;
    if (prep(s, &st, "UPDATE sqlite_sequence SET seq=seq+1 WHERE name='stix_objects' RETURNING seq",
             err) != 0)
        goto fail;
    if (sqlite3_step(st) == SQLITE_ROW)
        seq = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (seq < 0) {
        db_fail(s, err);
        goto fail;
    }
    if (prep(s, &st, "INSERT INTO stix_tombstones(seq, id, type, created, modified, spec_version,"
                     " deleted_at, json) SELECT ?1, o.id, o.type, o.created, o.modified,"
                     " o.spec_version, ?2, o.json FROM stix_latest l JOIN stix_objects o"
                     " ON o.seq=l.seq WHERE l.id=?3", err) != 0)
        goto fail;
    sqlite3_bind_int64(st, 1, seq);
    bind_text(st, 2, now);
    bind_text(st, 3, id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_DONE) {
        db_fail(s, err);
        goto fail;
    }
    /* Its FTS rows stay behind, unreachable: search goes through
     * stix_latest, and contentless FTS5 tables cannot delete here. */
    if (exec_id(s, "DELETE FROM stix_members WHERE obj_seq IN (SELECT seq FROM stix_objects WHERE id=?)",
                id, err) != 0 ||
        exec_id(s, "DELETE FROM stix_edges WHERE seq IN (SELECT seq FROM stix_objects WHERE id=?)",
                id, err) != 0 ||
        exec_id(s, "DELETE FROM stix_latest WHERE id=?", id, err) != 0 ||
        exec_id(s, "DELETE FROM stix_objects WHERE id=?", id, err) != 0)
        goto fail;
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        db_fail(s, err);
        goto fail;
    }
    return n;
fail:
    n = -1;
out:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return n;
}

static bool fts_query_nonempty(const char *text)
{
    return text[strspn(text, " \t\n")] != '\0';
}

/* Free text becomes a conjunction of quoted FTS5 terms: the user's words,
 * never FTS5 syntax. */
static char *fts_query(const char *text)
{
    tr_buf b = {0};
    const char *p = text;
    while (*p) {
        while (*p && (*p == ' ' || *p == '\t' || *p == '\n'))
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n')
            p++;
        if (b.len)
            tr_buf_append(&b, " ", 1);
        tr_buf_append(&b, "\"", 1);
        for (const char *c = start; c < p; c++) {
            if (*c == '"')
                tr_buf_append(&b, "\"", 1);
            tr_buf_append(&b, c, 1);
        }
        tr_buf_append(&b, "\"", 1);
    }
    if (!b.len) {
        tr_buf_free(&b);
        return NULL;
    }
    return b.data;
}

int tr_stix_search_ex(tr_stix_db *s, const tr_stix_search_opts *o, tr_stix_row_fn fn, void *arg,
                      tr_error *err)
{
    char *q = o->text ? fts_query(o->text) : NULL;
    bool any_filter = o->type || o->label || o->marking || o->created_after || o->created_before ||
                      o->modified_after || o->modified_before;
    if (!q && !any_filter)
        return tr_fail(err, "nothing to search for: give text or a filter");
    tr_buf sql = {0};
    json_t *binds = json_array();
    if (!binds)
        tr_die("out of memory");
    if (q) {
        tr_buf_printf(&sql, "SELECT " ROW_COLS " FROM stix_fts f JOIN stix_latest l ON l.seq=f.rowid"
                            " JOIN stix_objects o ON o.seq=f.rowid WHERE stix_fts MATCH ?");
        json_array_append_new(binds, json_string(q));
        free(q);
    } else {
        tr_buf_printf(&sql, "SELECT " ROW_COLS " FROM stix_latest l JOIN stix_objects o ON o.seq=l.seq"
                            " WHERE 1");
    }
    if (o->type) {
        tr_buf_printf(&sql, " AND o.type=?");
        json_array_append_new(binds, json_string(o->type));
    }
    if (o->label) {
        tr_buf_printf(&sql, " AND EXISTS (SELECT 1 FROM json_each(o.json, '$.labels') WHERE value=?)");
        json_array_append_new(binds, json_string(o->label));
    }
    if (o->marking) {
        tr_buf_printf(&sql, " AND EXISTS (SELECT 1 FROM json_each(o.json, '$.object_marking_refs')"
                            " WHERE value=?)");
        json_array_append_new(binds, json_string(o->marking));
    }
    if (o->created_after) {
        tr_buf_printf(&sql, " AND substr(o.created, 1, 19) >= substr(?, 1, 19)");
        json_array_append_new(binds, json_string(o->created_after));
    }
    if (o->created_before) {
        tr_buf_printf(&sql, " AND substr(o.created, 1, 19) <= substr(?, 1, 19)");
        json_array_append_new(binds, json_string(o->created_before));
    }
    char k1[32], k2[32];
    if (o->modified_after) {
        ts_norm(o->modified_after, k1);
        tr_buf_printf(&sql, " AND o.vkey >= ?");
        json_array_append_new(binds, json_string(k1));
    }
    if (o->modified_before) {
        ts_norm(o->modified_before, k2);
        tr_buf_printf(&sql, " AND o.vkey <= ?");
        json_array_append_new(binds, json_string(k2));
    }
    /* Names weigh most, then aliases, then descriptions. */
    tr_buf_printf(&sql, q ? " ORDER BY bm25(stix_fts, 50.0, 20.0, 1.0)" : " ORDER BY o.vkey DESC, o.seq DESC");
    tr_buf_printf(&sql, " LIMIT %zu", o->limit ? o->limit : 50);
    sqlite3_stmt *st = NULL;
    int rc = prep(s, &st, sql.data, err);
    tr_buf_free(&sql);
    if (rc != 0) {
        json_decref(binds);
        return -1;
    }
    for (size_t i = 0; i < json_array_size(binds); i++)
        bind_text(st, (int)i + 1, json_string_value(json_array_get(binds, i)));
    json_decref(binds);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (emit_row(st, sqlite3_column_int64(st, 0), fn, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    if (rc != SQLITE_DONE) {
        db_fail(s, err);
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    return 0;
}

int tr_stix_search(tr_stix_db *s, const char *text, const char *type, size_t limit,
                   tr_stix_row_fn fn, void *arg, tr_error *err)
{
    if (!text || !fts_query_nonempty(text))
        return tr_fail(err, "nothing to search for");
    tr_stix_search_opts o = {.text = text, .type = type, .limit = limit};
    return tr_stix_search_ex(s, &o, fn, arg, err);
}

/* The deterministic id an SCO id that arrived instead of it stands for
 * (stix_aliases), copied into buf; NULL when id is no alias. */
static const char *alias_of(tr_stix_db *s, const char *id, char buf[128])
{
    sqlite3_stmt *st;
    if (!id || sqlite3_prepare_v2(s->db, "SELECT id FROM stix_aliases WHERE alias=?", -1, &st,
                                  NULL) != SQLITE_OK)
        return NULL;
    bind_text(st, 1, id);
    const char *out = NULL;
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(buf, 128, "%s", (const char *)sqlite3_column_text(st, 0));
        out = buf;
    }
    sqlite3_finalize(st);
    return out;
}

static int get_latest(tr_stix_db *s, const char *id, tr_stix_row_fn fn, void *arg, tr_error *err);

/* An alias is looked up only when the id itself is not stored: the common
 * case costs nothing more. */
int tr_stix_get(tr_stix_db *s, const char *id, tr_stix_row_fn fn, void *arg, tr_error *err)
{
    int found = get_latest(s, id, fn, arg, err);
    char buf[128];
    const char *to = found == 0 ? alias_of(s, id, buf) : NULL;
    return to ? get_latest(s, to, fn, arg, err) : found;
}

static int get_latest(tr_stix_db *s, const char *id, tr_stix_row_fn fn, void *arg, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (prep(s, &st, "SELECT " ROW_COLS " FROM stix_latest l JOIN stix_objects o ON o.seq=l.seq"
                     " WHERE l.id=?", err) != 0)
        return -1;
    bind_text(st, 1, id);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        found = 1;
        emit_row(st, sqlite3_column_int64(st, 0), fn, arg);
    } else if (rc != SQLITE_DONE) {
        found = db_fail(s, err);
    }
    sqlite3_finalize(st);
    return found;
}

static int versions_of(tr_stix_db *s, const char *id, tr_stix_row_fn fn, void *arg, size_t *n,
                       tr_error *err);

int tr_stix_versions_of(tr_stix_db *s, const char *id, tr_stix_row_fn fn, void *arg, size_t *n,
                        tr_error *err)
{
    if (versions_of(s, id, fn, arg, n, err) != 0)
        return -1;
    char buf[128];
    const char *to = *n == 0 ? alias_of(s, id, buf) : NULL;
    return to ? versions_of(s, to, fn, arg, n, err) : 0;
}

static int versions_of(tr_stix_db *s, const char *id, tr_stix_row_fn fn, void *arg, size_t *n,
                       tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (prep(s, &st, "SELECT " ROW_COLS " FROM stix_objects o WHERE o.id=? ORDER BY o.vkey", err) != 0)
        return -1;
    bind_text(st, 1, id);
    int rc;
    *n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        (*n)++;
        if (emit_row(st, sqlite3_column_int64(st, 0), fn, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE) {
        db_fail(s, err);
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    return 0;
}

static int collect_json(void *arg, const tr_stix_row *r)
{
    json_t *arr = arg;
    json_t *o = json_loadb(r->json, r->json_len, 0, NULL);
    if (o)
        json_array_append_new(arr, o);
    return 0;
}

#define NEIGHBOURS_MAX 2000

int tr_stix_neighbours(tr_stix_db *s, const char *id, int depth, json_t **out, tr_error *err)
{
    bool truncated = false;
    char abuf[128];
    const char *canon = alias_of(s, id, abuf);
    if (canon)
        id = canon;
    if (depth < 1)
        depth = 1;
    if (depth > 5)
        depth = 5;
    json_t *nodes = json_array(), *edges = json_array(), *seen = json_object(), *seen_rel = json_object();
    json_t *frontier = json_array();
    if (!nodes || !edges || !seen || !seen_rel || !frontier)
        tr_die("out of memory");
    int rc = tr_stix_get(s, id, collect_json, nodes, err);
    sqlite3_stmt *st = NULL;
    if (rc <= 0)
        goto fail;
    json_object_set_new(seen, id, json_true());
    json_array_append_new(frontier, json_string(id));
    /* Current relationships only: the latest version of each, not revoked. */
    if (prep(s, &st,
             "SELECT e.rel_id, e.rel_type, e.source, e.target FROM stix_edges e"
             " JOIN stix_latest l ON l.seq=e.seq JOIN stix_objects o ON o.seq=e.seq"
             " WHERE e.source=?1 AND o.revoked=0"
             " UNION ALL SELECT e.rel_id, e.rel_type, e.source, e.target FROM stix_edges e"
             " JOIN stix_latest l ON l.seq=e.seq JOIN stix_objects o ON o.seq=e.seq"
             " WHERE e.target=?1 AND o.revoked=0", err) != 0) {
        rc = -1;
        goto fail;
    }
    for (int d = 0; d < depth && json_array_size(frontier); d++) {
        json_t *next = json_array();
        if (!next)
            tr_die("out of memory");
        for (size_t i = 0; i < json_array_size(frontier); i++) {
            sqlite3_reset(st);
            bind_text(st, 1, json_string_value(json_array_get(frontier, i)));
            int step;
            while ((step = sqlite3_step(st)) == SQLITE_ROW) {
                const char *rel = (const char *)sqlite3_column_text(st, 0);
                const char *rtype = (const char *)sqlite3_column_text(st, 1);
                const char *src = (const char *)sqlite3_column_text(st, 2);
                const char *dst = (const char *)sqlite3_column_text(st, 3);
                char key[400];
                snprintf(key, sizeof key, "%s|%s|%s", rel, src, dst);
                if (!json_object_get(seen_rel, key)) {
                    json_object_set_new(seen_rel, key, json_true());
                    json_array_append_new(edges, json_pack("{ss ss ss ss}", "id", rel,
                                                           "relationship_type", rtype,
                                                           "source_ref", src, "target_ref", dst));
                }
                const char *other = strcmp(src, json_string_value(json_array_get(frontier, i))) == 0 ? dst : src;
                if (!json_object_get(seen, other)) {
                    json_object_set_new(seen, other, json_true());
                    json_array_append_new(next, json_string(other));
                }
            }
            if (step != SQLITE_DONE) {
                json_decref(next);
                rc = db_fail(s, err);
                goto fail;
            }
        }
        /* A hub (a popular tool, a big report) at depth 3 would otherwise
         * pull in most of the knowledge base. */
        if (json_array_size(nodes) + json_array_size(next) > NEIGHBOURS_MAX) {
            truncated = true;
            while (json_array_size(nodes) + json_array_size(next) > NEIGHBOURS_MAX)
                json_array_remove(next, json_array_size(next) - 1);
        }
        for (size_t i = 0; i < json_array_size(next); i++)
            if (tr_stix_get(s, json_string_value(json_array_get(next, i)), collect_json, nodes, err) < 0) {
                json_decref(next);
                rc = -1;
                goto fail;
            }
        json_decref(frontier);
        frontier = next;
        if (truncated)
            break;
    }
    sqlite3_finalize(st);
    json_decref(seen);
    json_decref(seen_rel);
    json_decref(frontier);
    /* Edges whose far end was cut off go too. */
    if (truncated) {
        json_t *kept = json_object();
        size_t i;
        json_t *o;
        json_array_foreach(nodes, i, o) json_object_set_new(kept, json_string_value(json_object_get(o, "id")), json_true());
        for (i = json_array_size(edges); i-- > 0;) {
            json_t *e = json_array_get(edges, i);
            if (!json_object_get(kept, json_string_value(json_object_get(e, "source_ref"))) ||
                !json_object_get(kept, json_string_value(json_object_get(e, "target_ref"))))
                json_array_remove(edges, i);
        }
        json_decref(kept);
    }
    *out = json_pack("{so so sb}", "nodes", nodes, "edges", edges, "truncated", truncated);
    return 1;
fail:
    sqlite3_finalize(st);
    json_decref(nodes);
    json_decref(edges);
    json_decref(seen);
    json_decref(seen_rel);
    json_decref(frontier);
    return rc;
}

/* ---- collections ---------------------------------------------------------- */

static void fill_builtin(size_t i, tr_stix_collection *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", builtins[i].id);
    snprintf(c->title, sizeof c->title, "%s", builtins[i].title);
    snprintf(c->description, sizeof c->description, "%s", builtins[i].description);
    c->can_read = true;
    c->builtin = true;
    c->read_level = 1;
    c->write_level = 99;
}

static void fill_user(sqlite3_stmt *st, tr_stix_collection *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(c->title, sizeof c->title, "%s", (const char *)sqlite3_column_text(st, 1));
    snprintf(c->description, sizeof c->description, "%s", (const char *)sqlite3_column_text(st, 2));
    c->can_read = c->can_write = true;
    c->read_level = (unsigned)sqlite3_column_int(st, 3);
    c->write_level = (unsigned)sqlite3_column_int(st, 4);
}

int tr_stix_collections(tr_stix_db *s, tr_stix_collection **out, size_t *n, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (prep(s, &st, "SELECT id, title, description, read_level, write_level FROM stix_collections ORDER BY created, id", err) != 0)
        return -1;
    size_t cap = NBUILTIN + 8, k = 0;
    tr_stix_collection *v = tr_xcalloc(cap, sizeof *v);
    for (size_t i = 0; i < NBUILTIN; i++)
        fill_builtin(i, &v[k++]);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (k == cap) {
            cap *= 2;
            v = tr_xrealloc(v, cap * sizeof *v);
        }
        fill_user(st, &v[k++]);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(v);
        return db_fail(s, err);
    }
    *out = v;
    *n = k;
    return 0;
}

int tr_stix_collection_get(tr_stix_db *s, const char *id, tr_stix_collection *out, tr_error *err)
{
    int bi = builtin_index(id);
    if (bi >= 0) {
        fill_builtin((size_t)bi, out);
        return 1;
    }
    sqlite3_stmt *st = NULL;
    if (prep(s, &st, "SELECT id, title, description, read_level, write_level FROM stix_collections WHERE id=?", err) != 0)
        return -1;
    bind_text(st, 1, id);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        fill_user(st, out);
        found = 1;
    } else if (rc != SQLITE_DONE) {
        found = db_fail(s, err);
    }
    sqlite3_finalize(st);
    return found;
}

int tr_stix_collection_create(tr_stix_db *s, const char *title, const char *description,
                              unsigned read_level, unsigned write_level, tr_stix_collection *out,
                              tr_error *err)
{
    if (!title || !*title)
        return tr_fail(err, "a collection needs a title");
    if (read_level < 1 || read_level > 3 || write_level < 2 || write_level > 3)
        return tr_fail(err, "a collection is read by readers, analysts or admins and written by "
                       "analysts or admins");
    /* Its objects join the knowledge base, which every reader reads (by
     * id, search, export, the stream, the built-in collections): a
     * collection that said "admins only" would only hide where they came
     * from. */
    if (read_level > 1)
        return tr_fail(err, TR_STIX_READ_ROLE_MSG);
    char id[37];
    tr_stix_uuid4(id);
    sqlite3_stmt *st = NULL;
    if (prep(s, &st, "INSERT INTO stix_collections(id, title, description, read_level, write_level,"
                     " created) VALUES(?,?,?,?,?,?)", err) != 0)
        return -1;
    bind_text(st, 1, id);
    bind_text(st, 2, title);
    bind_text(st, 3, description ? description : "");
    sqlite3_bind_int(st, 4, (int)read_level);
    sqlite3_bind_int(st, 5, (int)write_level);
    sqlite3_bind_int64(st, 6, tr_now_unix());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(s, err);
    return tr_stix_collection_get(s, id, out, err) == 1 ? 0 : -1;
}

int64_t tr_stix_collection_remove(tr_stix_db *s, const char *collection, const char *id,
                                  const char *const *version_ts, tr_error *err)
{
    tr_buf sql = {0};
    tr_buf_printf(&sql, "DELETE FROM stix_members WHERE collection=?1 AND obj_seq IN"
                        " (SELECT seq FROM stix_objects WHERE id=?2");
    size_t nv = 0;
    if (version_ts && version_ts[0]) {
        tr_buf_printf(&sql, " AND vkey IN (");
        for (; version_ts[nv]; nv++)
            tr_buf_printf(&sql, "%s?%zu", nv ? "," : "", nv + 3);
        tr_buf_append(&sql, ")", 1);
    }
    tr_buf_append(&sql, ")", 1);
    sqlite3_stmt *st = NULL;
    int rc = prep(s, &st, sql.data, err);
    tr_buf_free(&sql);
    if (rc != 0)
        return -1;
    bind_text(st, 1, collection);
    bind_text(st, 2, id);
    for (size_t i = 0; i < nv; i++) {
        char k[32];
        ts_norm(version_ts[i], k);
        sqlite3_bind_text(st, (int)i + 3, k, -1, SQLITE_TRANSIENT);
    }
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(s, err);
    return sqlite3_changes(s->db);
}

int tr_stix_status_save(tr_stix_db *s, const char *status_id, json_t *status, tr_error *err)
{
    char *text = json_dumps(status, JSON_COMPACT);
    if (!text)
        tr_die("out of memory");
    sqlite3_stmt *st = NULL;
    if (prep(s, &st, "INSERT OR REPLACE INTO stix_status(id, json, created) VALUES(?,?,?)", err) != 0) {
        free(text);
        return -1;
    }
    int64_t now = tr_now_unix();
    bind_text(st, 1, status_id);
    bind_text(st, 2, text);
    sqlite3_bind_int64(st, 3, now);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    free(text);
    if (rc != SQLITE_DONE)
        return db_fail(s, err);
    if (prep(s, &st, "DELETE FROM stix_status WHERE created < ?", err) != 0)
        return -1;
    sqlite3_bind_int64(st, 1, now - TR_STIX_STATUS_KEEP);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(s, err);
}

int tr_stix_status_load(tr_stix_db *s, const char *status_id, json_t **out, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (prep(s, &st, "SELECT json FROM stix_status WHERE id=?", err) != 0)
        return -1;
    bind_text(st, 1, status_id);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        *out = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
        found = *out ? 1 : tr_fail(err, "a stored status is not JSON");
    } else if (rc != SQLITE_DONE) {
        found = db_fail(s, err);
    }
    sqlite3_finalize(st);
    return found;
}
