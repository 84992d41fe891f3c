/* analysis: what MalwareBazaar derives from a sample's bytes beyond its
 * digests: the code-signing certificates of a PE (libyara's pe module) and
 * the telfhash of an ELF (its function symbols, hashed with TLSH as Trend
 * Micro specifies), the gimphash of a Go binary and the dhash of a PE's
 * icon. Pure functions of the bytes; the store keeps the results
 * (see docs/analysis.md).
 *
 * libyara's global state is shared with the store's imphash: every user of
 * libyara in the process initialises it through tr_yara_init/tr_yara_fini,
 * which serialise yr_initialize/yr_finalize. */
#ifndef TRAWL_ANALYSIS_H
#define TRAWL_ANALYSIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Bumped when an analysis is added or its output changes: samples analysed
 * by an older version are analysed again by `trawl analyze`. */
#define TR_ANALYSIS_VERSION 3   /* 2: SHA-256 thumbprints; 3: types as file(1) answers them */

int tr_yara_init(tr_error *err);
void tr_yara_fini(void);

/* One certificate of an Authenticode signature, as libyara reports it
 * (the thumbprint from trawl's own read of the signature). */
typedef struct tr_cert {
    char *serial;             /* lowercase hex, no separators */
    char *issuer, *subject;   /* "/C=US/O=.../CN=..." */
    char *issuer_cn, *subject_cn;   /* the CN parts, or the whole name when none */
    char *thumbprint;         /* SHA-256 of the certificate's DER, lowercase hex
                               * (SHA-1 from analyses before version 2) */
    char *algorithm;          /* "sha256WithRSAEncryption" */
    int64_t valid_from, valid_to;   /* unix time */
} tr_cert;

#define TR_TELFHASH_MAX 80
#define TR_DHASH_HEX 17

typedef struct tr_bin_info {
    char imphash[TR_MD5_HEX];         /* 32 hex, or "" (not a PE, no named imports) */
    char telfhash[TR_TELFHASH_MAX];   /* "t1" + 70 hex, or "" */
    char gimphash[TR_SHA256_HEX];     /* 64 hex, or "" */
    char dhash_icon[TR_DHASH_HEX];    /* 16 hex, or "" */
    char *ole_json;                   /* Office documents: ole_information as JSON text */
    char **clamav;                    /* ClamAV signature names */
    size_t n_clamav;
    bool clamav_scanned;              /* false: no database was configured */
    tr_cert *certs;
    size_t n_certs;
} tr_bin_info;

void tr_bin_info_free(tr_bin_info *b);
void tr_cert_free(tr_cert *c);

/* A per-thread analyser (it holds compiled libyara rules). */
typedef struct tr_binan tr_binan;
int tr_binan_new(tr_binan **out, tr_error *err);
void tr_binan_free(tr_binan *a);

/* Every analysis that applies to the bytes; never NULL. */
tr_bin_info *tr_bin_analyze(tr_binan *a, const unsigned char *p, size_t n);

/* What libyara's pe module finds in a PE, from one parse: its imphash, its
 * code-signing certificates and its main icon's dhash (nothing when not a
 * PE). */
void tr_pe_analyze(tr_binan *a, const unsigned char *p, size_t n, tr_bin_info *out);
/* Only the imphash (pefile's and YARA's pe.imphash()); "" when none. */
void tr_pe_imphash(tr_binan *a, const unsigned char *p, size_t n, char out[TR_MD5_HEX]);

/* The difference hash of one icon image (an RT_ICON's bytes: PNG or DIB);
 * 1 computed, 0 not an image this reads. See icon.c. */
int tr_icon_image_dhash(const unsigned char *p, size_t n, char out[TR_DHASH_HEX]);

/* ---- ELF ---------------------------------------------------------------- */
/* The function symbols telfhash keeps, lowercased and sorted, joined by ","
 * (caller frees). 1 with a list (maybe empty), 0 not an ELF or no symbol
 * table (statically linked and stripped: telfhash then disassembles call
 * targets, which trawl does not do). */
int tr_telfhash_symbols(const unsigned char *p, size_t n, char **out);
/* telfhash of an ELF: 1 computed, 0 none (not an ELF, no symbols, or a
 * symbol list that TLSH cannot hash). */
int tr_telfhash(const unsigned char *p, size_t n, char out[TR_TELFHASH_MAX]);
/* TLSH of a symbol list as telfhash prints it ("t1" + lowercase hex). */
int tr_telfhash_of_list(const char *list, size_t len, char out[TR_TELFHASH_MAX]);

/* ---- Go ---------------------------------------------------------------- */
/* gimphash (Nextron Systems' reference implementation): the names of the
 * functions in a Go binary's pclntab, in table order, that its rules keep
 * (exported, not runtime, internal, vendored standard library...), joined
 * with "\n" here for inspection (caller frees); the digest is SHA-256 of the
 * names concatenated without separator. 1 with a pclntab found (the list
 * may be empty), 0 none. Little-endian Go 1.2 to 1.2x tables. */
int tr_gimphash_names(const unsigned char *p, size_t n, char **out);
int tr_gimphash(const unsigned char *p, size_t n, char out[TR_SHA256_HEX]);

/* ---- Office ------------------------------------------------------------ */
/* An OLE2 file, or an OOXML file carrying a VBA project, as a JSON object
 * (text, caller frees): container, macros, vba_project, vba_modules (their
 * names) and streams (name, size). NULL for anything else. */
char *tr_ole_info_json(const unsigned char *p, size_t n);

/* ---- ClamAV ------------------------------------------------------------ */
/* Loads a signature database (a directory or file, as clamscan -d takes)
 * into the process's one engine; later analyses scan with it. A second call
 * with another database fails. */
int tr_clamav_configure(const char *db, tr_error *err);
bool tr_clamav_enabled(void);
/* Every signature matching the bytes into out (clamav, clamav_scanned):
 * 0, or -1 when libclamav failed; nothing when no database is configured. */
int tr_clamav_scan(const unsigned char *p, size_t n, tr_bin_info *out);

/* ---- MalwareBazaar's fields -------------------------------------------- */
struct json_t;
/* Bazaar's code_sign array (NULL -> json null when there are none). */
struct json_t *tr_bin_code_sign_json(const tr_bin_info *b);
/* Sets code_sign, telfhash, gimphash, dhash_icon (null when unknown),
 * ole_information ([] when not an Office document) and intelligence.clamav
 * (null without detections) on a sample object. */
void tr_bin_info_to_bazaar_json(const tr_bin_info *b, struct json_t *sample);
/* Bazaar's thumbprint_algorithm for a stored thumbprint: "SHA256", or
 * "SHA1" for the 40 hex digits older analyses kept. */
const char *tr_cert_thumbprint_algorithm(const char *thumbprint);
/* The CN of an X.509 name in YARA's "/K=V/K=V" form; caller frees. */
char *tr_cert_cn(const char *name);

#endif
