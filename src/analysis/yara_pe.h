/* Reading libyara's pe module from C: the rule set that only makes the
 * module parse a file, and readers of the objects it fills. The store's
 * imphash and this module's signatures and icons both walk them. */
#ifndef TRAWL_ANALYSIS_YARA_PE_H
#define TRAWL_ANALYSIS_YARA_PE_H

#include <string.h>
#include <yara.h>

#include "core/core.h"

/* A rule set with no strings that is never true: scanning with it only
 * runs the pe module's parse, whose objects a callback then reads. */
int tr_yara_pe_probe(YR_RULES **out, tr_error *err);

/* libyara exports no object accessors (yr_object_get_* are internal to the
 * shared library), so the module's data is walked through the structures
 * its public header yara/types.h defines. */
static inline YR_OBJECT *tr_yo_member(YR_OBJECT *structure, const char *name)
{
    if (!structure || structure->type != OBJECT_TYPE_STRUCTURE)
        return NULL;
    for (YR_STRUCTURE_MEMBER *m = object_as_structure(structure)->members; m; m = m->next)
        if (m->object->identifier && strcmp(m->object->identifier, name) == 0)
            return m->object;
    return NULL;
}

static inline int tr_yo_array_length(YR_OBJECT *array)
{
    if (!array || array->type != OBJECT_TYPE_ARRAY || !object_as_array(array)->items)
        return 0;
    return object_as_array(array)->items->length;
}

static inline YR_OBJECT *tr_yo_array_item(YR_OBJECT *array, int i)
{
    if (i < 0 || i >= tr_yo_array_length(array))
        return NULL;
    return object_as_array(array)->items->objects[i];
}

#endif
