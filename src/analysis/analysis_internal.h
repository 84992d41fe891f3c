/* Shared by the analysis module's files only. */
#ifndef TRAWL_ANALYSIS_INTERNAL_H
#define TRAWL_ANALYSIS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/* The file range of the ELF section with this name, checked to lie inside
 * the buffer: true when found. */
bool elf_section_by_name(const unsigned char *p, size_t n, const char *name, size_t *off,
                         size_t *size);

#endif
