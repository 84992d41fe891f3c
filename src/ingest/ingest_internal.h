/* ingest's own shared helpers. */
#ifndef TRAWL_INGEST_INTERNAL_H
#define TRAWL_INGEST_INTERNAL_H

#include "index/index.h"

/* <data>/index */
int ingest_open_index(const char *data_dir, tr_index **ix, tr_error *err);

#endif
