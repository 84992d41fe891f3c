/* Shared by the stix module's files only. */
#ifndef TRAWL_STIX_INTERNAL_H
#define TRAWL_STIX_INTERNAL_H

#include <stdbool.h>

#include <jansson.h>

#include "core/core.h"

/* Called for each object of a bundle (validated first when asked), with
 * the text to store; non-zero stops the walk (err filled). cb may be NULL
 * to validate only. A refusal names the object's index, id and property. */
typedef int (*stix_object_cb)(void *arg, size_t index, json_t *obj, const char *text, size_t len,
                              tr_error *err);
int stix_bundle_each(const char *text, size_t len, bool validate, stix_object_cb cb, void *arg,
                     bool *upgraded, size_t *count, tr_error *err);

bool stix_is_sdo_type(const char *type);

/* The validation of indicator.pattern when pattern_type is "stix". */
int stix_check_indicator_pattern(const char *pattern, tr_error *err);

/* True for SCO types whose ID contributing properties include a reference
 * (email-message from_ref, file parent_directory_ref, network-traffic
 * src_ref/dst_ref): their deterministic id depends on what those name. */
bool stix_sco_id_has_refs(const char *type);

#endif
