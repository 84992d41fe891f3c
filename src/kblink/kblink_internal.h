/* kblink's own helpers, shared by its sync and its pattern lookups. */
#ifndef TRAWL_KBLINK_INTERNAL_H
#define TRAWL_KBLINK_INTERNAL_H

#include <jansson.h>

#include "core/core.h"
#include "store/store.h"

/* The file SCO a stored sample stands for, with its deterministic id: the
 * same object whether the sync stores it or a pattern lookup matches it.
 * NULL (err set) when no id can be derived. */
json_t *kblink_file_sco(const tr_sample *x, tr_error *err);

#endif
