/* The JSON-Schema validator for the subset the OASIS STIX 2.1 schemas use,
 * over the schemas compiled into the binary (src/stix/schemas/). Internal to
 * the stix module. */
#ifndef TRAWL_STIX_SCHEMA_H
#define TRAWL_STIX_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/core.h"

typedef struct tr_stix_schema_file {
    const char *path;          /* relative to schemas/, e.g. "common/core.json" */
    const char *data;
    size_t len;
} tr_stix_schema_file;

/* Generated at build time; ends with a NULL path. */
extern const tr_stix_schema_file tr_stix_schema_files[];

/* Loads and compiles the schemas once per process; -1 when they are broken
 * (a build problem, not a user error). Thread-safe. */
int stix_schema_init(tr_error *err);

/* The schema file that describes objects of this type ("sdos/malware.json"),
 * or NULL for a type the spec does not define (a custom object). */
const char *stix_schema_for_type(const char *type);

/* Validates inst against the schema file. 1 valid, 0 invalid with
 * *where set to the JSON pointer of the failing value inside inst ("" for
 * inst itself) and why to a sentence, -1 on an internal error. */
int stix_schema_validate(const char *schema_path, json_t *inst, char *where, size_t where_sz,
                         char *why, size_t why_sz, tr_error *err);

#endif
