/* Shared by the analysis module's files only. */
#ifndef TRAWL_ANALYSIS_INTERNAL_H
#define TRAWL_ANALYSIS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analysis/analysis.h"

/* The file range of the ELF section with this name, checked to lie inside
 * the buffer: true when found. */
bool elf_section_by_name(const unsigned char *p, size_t n, const char *name, size_t *off,
                         size_t *size);

/* A PE resource as libyara's pe module lists it (offset: in the file). */
typedef struct tr_pe_resource {
    int64_t type, id, offset, length;
} tr_pe_resource;

/* dhash of the main icon among a PE's resources: 1 computed, 0 none. */
int icon_dhash_from_resources(const unsigned char *p, size_t n, const tr_pe_resource *r,
                              size_t nr, char out[17]);

/* Replaces each certificate's SHA-1 thumbprint (libyara's) by the SHA-256
 * of the same certificate, read from the PE's own certificate table
 * (authenticode.c); a certificate not found there keeps its SHA-1. */
void authenticode_sha256_thumbprints(const unsigned char *p, size_t n, tr_bin_info *out);
/* imphash (pefile's, as YARA's pe.imphash()) of the import table in the pe
 * module's object; "" when it lists no imported function by name. */
struct YR_OBJECT;
void pe_imphash_from_module(struct YR_OBJECT *pe, char out[33]);

#endif
