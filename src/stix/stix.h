/* stix: the STIX 2.1 knowledge base. Objects are validated on the way in
 * (the OASIS JSON schemas compiled into the binary plus the spec's rules the
 * schemas cannot express), stored one row per version in trawl.db with each
 * object's original JSON text, searched with FTS5, walked through
 * relationships, and grouped into TAXII collections. */
#ifndef TRAWL_STIX_H
#define TRAWL_STIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"

/* ---- model and validation ------------------------------------------------ */

/* RFC 8785 (JSON Canonicalization Scheme) serialization of v into out. */
int tr_stix_jcs(json_t *v, tr_buf *out, tr_error *err);

/* A random (version 4) UUID. */
void tr_stix_uuid4(char out[37]);
/* UUIDv5 (RFC 4122, SHA-1) of name in namespace ns ("xxxxxxxx-xxxx-..."). */
int tr_stix_uuid5(const char *ns, const void *name, size_t len, char out[37], tr_error *err);

/* The deterministic id of a SCO: "type--UUIDv5" over its ID contributing
 * properties (namespace 00abedb4-aa42-466c-9c01-fed23315a9b7). 1 with out
 * filled, 0 when the type has no contributing properties or none is present
 * (the spec then wants a UUIDv4), -1 on error. */
int tr_stix_sco_id(json_t *obj, char out[128], tr_error *err);

/* True for the SCO types of the spec. */
bool tr_stix_is_sco_type(const char *type);

/* Compares STIX timestamps ("2016-04-06T20:03:48.123Z"): <0, 0, >0. */
int tr_stix_ts_cmp(const char *a, const char *b);
/* Checks the STIX timestamp form and that the date exists. */
bool tr_stix_ts_valid(const char *ts);
/* Now as a STIX timestamp with microseconds (TAXII's date_added). */
void tr_stix_now(char out[32]);

/* Validates one STIX 2.1 object: its schema and the spec's other rules.
 * On refusal err names the property. */
int tr_stix_validate_object(json_t *obj, tr_error *err);

/* Upgrades a STIX 2.0 object to 2.1 in place (spec_version, the 2.0 labels
 * that 2.1 turned into *_types, is_family...), as OpenCTI does on import.
 * Returns 1 when it changed something. */
int tr_stix_upgrade_20(json_t *obj);

/* A parsed and validated bundle (or TAXII envelope: {"objects": [...]}).
 * Each object keeps its original bytes unless the 2.0 upgrade rewrote it. */
typedef struct tr_stix_parsed_object {
    json_t *obj;              /* a reference of its own */
    char *text;               /* the object's JSON as stored */
    size_t len;
} tr_stix_parsed_object;

typedef struct tr_stix_bundle {
    tr_stix_parsed_object *objects;
    size_t n, cap;
    bool upgraded;            /* a STIX 2.0 bundle */
} tr_stix_bundle;

/* Accepts or refuses the whole bundle: a refusal names the object (index
 * and id) and the property. */
int tr_stix_bundle_parse(const char *text, size_t len, tr_stix_bundle *out, tr_error *err);
void tr_stix_bundle_free(tr_stix_bundle *b);

/* ---- store ----------------------------------------------------------------- */

typedef struct tr_stix_db tr_stix_db;
/* Opens (creating if needed) the knowledge base tables in DIR/trawl.db. */
int tr_stix_open(const char *data_dir, tr_stix_db **out, tr_error *err);
void tr_stix_close(tr_stix_db *db);

typedef struct tr_stix_import_result {
    size_t total;             /* objects in the bundle */
    size_t added;             /* new versions stored */
    size_t duplicates;        /* versions already held */
    bool upgraded;
    int64_t first_seq, last_seq;
    char first_added[32], last_added[32];
} tr_stix_import_result;

/* Parses, validates and stores a bundle in one transaction; collection is
 * NULL or a user collection's id that the objects are also added to. */
int tr_stix_import(tr_stix_db *db, const char *text, size_t len, const char *collection,
                   tr_stix_import_result *res, tr_error *err);

/* One stored object version. Strings live until the callback returns. */
typedef struct tr_stix_row {
    int64_t seq;              /* monotonic: TAXII paging cursor, stream event id */
    const char *id, *type, *created, *modified, *spec_version, *date_added;
    bool revoked;
    const char *json;
    size_t json_len;
} tr_stix_row;
/* Return non-zero to stop. */
typedef int (*tr_stix_row_fn)(void *arg, const tr_stix_row *row);

typedef enum tr_stix_versions {
    TR_STIX_LATEST = 1, TR_STIX_FIRST = 2, TR_STIX_ALL = 4,
} tr_stix_versions;

typedef struct tr_stix_query {
    const char *collection;   /* NULL: the whole knowledge base */
    const char *const *ids;   /* match[id], NULL-terminated or NULL */
    const char *const *types; /* match[type] */
    const char *const *spec_versions;
    unsigned versions;        /* TR_STIX_* bits; 0: latest */
    const char *const *version_ts; /* match[version] timestamps */
    const char *added_after;  /* date_added > this */
    const char *modified_since; /* modified >= this (export --since) */
    int64_t after_seq;        /* paging cursor */
    size_t limit;             /* 0: no limit */
} tr_stix_query;

/* Rows in seq order; *more tells whether rows remain past limit. */
int tr_stix_query_rows(tr_stix_db *db, const tr_stix_query *q, tr_stix_row_fn fn, void *arg,
                       bool *more, tr_error *err);

/* The changes after after_seq in seq order (the live stream), at most
 * limit: each stored version (a create when it is its object's first
 * version held, else an update) and each deletion (the row is the deleted
 * object's last version, date_added the time of deletion). */
typedef enum tr_stix_change { TR_STIX_CREATE, TR_STIX_UPDATE, TR_STIX_DELETE } tr_stix_change;
typedef int (*tr_stix_change_fn)(void *arg, const tr_stix_row *row, tr_stix_change kind);
int tr_stix_changes(tr_stix_db *db, int64_t after_seq, size_t limit, tr_stix_change_fn fn,
                    void *arg, tr_error *err);
/* The greatest seq given out, 0 when none. */
int64_t tr_stix_last_seq(tr_stix_db *db, tr_error *err);

/* Deletes every version of an object from the knowledge base (and from
 * every collection), leaving a deletion event for the stream. Returns the
 * number of versions deleted (0: no such object), or -1. The fixed TLP
 * markings cannot be deleted. */
int64_t tr_stix_delete(tr_stix_db *db, const char *id, tr_error *err);

/* Full-text search over names, aliases and descriptions (latest versions);
 * type may be NULL. Best match first. */
int tr_stix_search(tr_stix_db *db, const char *text, const char *type, size_t limit,
                   tr_stix_row_fn fn, void *arg, tr_error *err);

/* The same with every filter; each NULL field is no filter. Without text
 * the latest versions that pass the filters come newest-modified first. */
typedef struct tr_stix_search_opts {
    const char *text;
    const char *type;
    const char *label;               /* one of the object's labels */
    const char *marking;             /* one of its object_marking_refs */
    const char *created_after, *created_before;     /* inclusive, to the second */
    const char *modified_after, *modified_before;   /* inclusive */
    size_t limit;                    /* 0: 50 */
} tr_stix_search_opts;
int tr_stix_search_ex(tr_stix_db *db, const tr_stix_search_opts *o, tr_stix_row_fn fn, void *arg,
                      tr_error *err);

/* Latest version of one object (1), or 0 when absent. */
int tr_stix_get(tr_stix_db *db, const char *id, tr_stix_row_fn fn, void *arg, tr_error *err);
/* Every version of one object, oldest first; the count in *n. */
int tr_stix_versions_of(tr_stix_db *db, const char *id, tr_stix_row_fn fn, void *arg, size_t *n,
                        tr_error *err);

/* The neighbourhood of an object to depth hops through relationships and
 * sightings: {"nodes":[obj...], "edges":[{"id","relationship_type","source_ref","target_ref"}],
 * "truncated": bool}, at most 2,000 nodes (truncated says some were left out). */
int tr_stix_neighbours(tr_stix_db *db, const char *id, int depth, json_t **out, tr_error *err);

/* ---- TAXII collections ----------------------------------------------------- */
typedef struct tr_stix_collection {
    char id[37];
    char title[256];
    char description[512];
    bool can_read, can_write;  /* at all: built-in collections are never written */
    bool builtin;
    /* The least role (auth's tr_role values: 1 reader, 2 analyst, 3 admin)
     * that may read and write it. */
    unsigned read_level, write_level;
} tr_stix_collection;

int tr_stix_collections(tr_stix_db *db, tr_stix_collection **out, size_t *n, tr_error *err);
/* 1 found, 0 not. */
int tr_stix_collection_get(tr_stix_db *db, const char *id, tr_stix_collection *out, tr_error *err);
/* Why a collection is always readable by readers: its objects are the
 * knowledge base's, which readers read. */
#define TR_STIX_READ_ROLE_MSG                                                              \
    "a collection cannot be closed to readers: its objects join the knowledge base, which " \
    "every reader reads (read role: reader; write role: analyst or admin)"
int tr_stix_collection_create(tr_stix_db *db, const char *title, const char *description,
                              unsigned read_level, unsigned write_level, tr_stix_collection *out,
                              tr_error *err);
/* Removes versions of an object from a user collection (all versions, or
 * those whose modified is in version_ts). Returns how many, or -1. */
int64_t tr_stix_collection_remove(tr_stix_db *db, const char *collection, const char *id,
                                  const char *const *version_ts, tr_error *err);

/* TAXII status resources of POSTs to collections. Each is kept
 * TR_STIX_STATUS_KEEP seconds: saving one forgets those older (TAXII lets a
 * server drop statuses; a connector posting every minute would otherwise
 * add half a million a year, each listing its objects' ids). */
#define TR_STIX_STATUS_KEEP (7 * 86400)
int tr_stix_status_save(tr_stix_db *db, const char *status_id, json_t *status, tr_error *err);
/* 1 found (*out set), 0 not. */
int tr_stix_status_load(tr_stix_db *db, const char *status_id, json_t **out, tr_error *err);

#endif
