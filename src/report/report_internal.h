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

/* Initialises GMime once per process (mail and form bodies). */
void report_gmime_init(void);

#endif
