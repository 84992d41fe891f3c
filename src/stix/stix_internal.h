/* Shared by the stix module's files only. */
#ifndef TRAWL_STIX_INTERNAL_H
#define TRAWL_STIX_INTERNAL_H

#include <stdbool.h>

#include "core/core.h"

bool stix_is_sdo_type(const char *type);

/* The validation of indicator.pattern when pattern_type is "stix". */
int stix_check_indicator_pattern(const char *pattern, tr_error *err);

#endif
