/* report internals shared between its files. */
#ifndef TRAWL_REPORT_INTERNAL_H
#define TRAWL_REPORT_INTERNAL_H

#include "report/report.h"

/* Names next to a ransomware/malware word that no entity covers:
 * [{"name","type","reason","offsets":[...]}]. */
json_t *report_candidates(const char *text, size_t len, const tr_entity_list *ents);
/* Relationships stated by plain sentences, never asserted:
 * [{"relationship_type","source_ref","target_ref","status":"proposal",...}]. */
json_t *report_proposals(const char *text, size_t len, const tr_entity_list *ents);

/* The object an accepted extraction becomes (indicator, vulnerability,
 * attack-pattern) with its minted id: 1, 0 for kinds that make none, -1. */
int report_ioc_object(tr_ioc_kind kind, const char *value, const char *valid_from, json_t **out,
                      char id[128], tr_error *err);
/* "type--UUIDv5(trawl's report namespace, key)". */
int report_minted_id(const char *type, const char *key, char out[128], tr_error *err);
/* spec_version, created, modified and the markings of a new object. */
void report_common(json_t *obj, const char *now, json_t *markings);

/* A date (2021-10-17) or STIX timestamp as a STIX timestamp, or NULL. */
char *report_published_from(const char *s, tr_error *err);

/* 0, or -1 with the sentence for an empty or too large document: the
 * refusal tr_doc_extract and its isolated form share. */
int report_doc_size_check(size_t len, tr_error *err);

/* Appends url (taken over) to d's links. */
void report_doc_add_link(tr_doc *d, char *url);

/* Initialises GMime once per process (mail and form bodies). */
void report_gmime_init(void);

#endif
