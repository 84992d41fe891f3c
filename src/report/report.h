/* report: documents (threat reports, news, e-mails) become draft STIX
 * reports. Three stages, each usable alone: the document's text is
 * extracted (any of the supported formats, converted to UTF-8), indicators
 * of compromise are found in that text by a hand-written scanner that
 * undoes defanging and classifies what it finds, and entities of the
 * knowledge base are recognised by name and alias. The draft ties them
 * together as a STIX bundle that the stix store can import. */
#ifndef TRAWL_REPORT_H
#define TRAWL_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/core.h"
#include "stix/stix.h"

/* ---- indicators of compromise ------------------------------------------- */

typedef enum tr_ioc_kind {
    TR_IOC_IPV4, TR_IOC_IPV6, TR_IOC_DOMAIN, TR_IOC_URL, TR_IOC_EMAIL,
    TR_IOC_MD5, TR_IOC_SHA1, TR_IOC_SHA256, TR_IOC_SHA512, TR_IOC_SSDEEP,
    TR_IOC_CVE, TR_IOC_ATTACK, TR_IOC_BITCOIN, TR_IOC_FILENAME, TR_IOC_REGKEY,
    TR_IOC_YARA,
    TR_IOC_KIND_COUNT
} tr_ioc_kind;

/* What the extractor thinks a match is. Only INDICATOR and REFERENCE go
 * into a draft by default; the others are shown so the analyst sees why. */
typedef enum tr_ioc_class {
    TR_IOCC_INDICATOR,      /* an observable worth an indicator */
    TR_IOCC_REFERENCE,      /* a CVE or ATT&CK id: a link, not an observable */
    TR_IOCC_DOCUMENTATION,  /* RFC 5737/3849 addresses, example.com, .test */
    TR_IOCC_PRIVATE,        /* RFC 1918, loopback, link-local, ULA */
    TR_IOCC_RESERVED,       /* 0/8, 240/4, multicast, broadcast, CGNAT */
    TR_IOCC_VERSION,        /* a version number that looks like an address */
    TR_IOCC_LOOKALIKE,      /* a file name in prose, a placeholder hash */
    TR_IOCC_BENIGN,         /* a well-known system binary or service */
    TR_IOCC_COUNT
} tr_ioc_class;

typedef struct tr_ioc {
    tr_ioc_kind kind;
    tr_ioc_class cls;
    char *value;            /* refanged, normalised (lowercase where case is noise) */
    size_t offset, length;  /* bytes of the original UTF-8 text */
    bool defanged;          /* the original spelling differs from value */
    const char *reason;     /* one short English phrase, static */
} tr_ioc;

typedef struct tr_ioc_list {
    tr_ioc *v;
    size_t n, cap;
} tr_ioc_list;

/* Every match in text (UTF-8; invalid bytes are treated as separators),
 * in order of offset. Never fails on content; -1 only when the Public
 * Suffix List cannot be loaded. */
int tr_ioc_extract(const char *text, size_t len, tr_ioc_list *out, tr_error *err);
void tr_ioc_list_free(tr_ioc_list *l);

const char *tr_ioc_kind_name(tr_ioc_kind k);    /* "ipv4", "sha256", ... */
const char *tr_ioc_class_name(tr_ioc_class c);  /* "indicator", "private", ... */

/* The NFKC-like folding and refanging the extractor scans: full-width
 * ASCII to ASCII, "[.]"/"(.)"/"[dot]" to ".", "hxxp" to "http", "[@]" to
 * "@". map (len *out_len + 1, caller frees) gives each output byte's
 * offset in the input; map[*out_len] == len. */
char *tr_ioc_fold(const char *text, size_t len, size_t *out_len, size_t **map);

/* ---- text extraction -------------------------------------------------- */

#define TR_REPORT_MAX_INPUT (32u << 20)   /* bytes of one document */

typedef enum tr_doc_format {
    TR_DOC_TEXT, TR_DOC_MARKDOWN, TR_DOC_HTML, TR_DOC_PDF, TR_DOC_EML,
} tr_doc_format;

typedef struct tr_doc {
    tr_doc_format format;
    char *text;             /* UTF-8, NUL-terminated */
    size_t len;
    char *title;            /* NULL when the document has none */
    char *published;        /* STIX timestamp from the document, or NULL */
    char charset[16];       /* what the bytes were ("UTF-8", "SHIFT_JIS", ...) */
    char **links;           /* HTML hrefs, e-mail links: candidate URLs */
    size_t nlinks;
} tr_doc;

/* Detects the format (from the bytes; name's extension breaks ties) and
 * extracts the text. Empty, too large, encrypted or corrupt input fails
 * with a sentence saying which. */
int tr_doc_extract(const unsigned char *data, size_t len, const char *name, tr_doc *out,
                   tr_error *err);
void tr_doc_free(tr_doc *d);
const char *tr_doc_format_name(tr_doc_format f);

/* tr_doc_extract in a process of its own (isolate.c): trawl's binary
 * (/proc/self/exe) run as "trawl __extract-document NAME", the document on
 * its standard input, the answer on its output. A crash, a hang past
 * TR_DOC_EXTRACT_SECONDS or memory past TR_DOC_EXTRACT_MEMORY is an error
 * for this document alone. Every program that calls it must start with:
 *     if (tr_doc_helper_requested(argc, argv)) return tr_doc_helper_main(argc, argv); */
#define TR_DOC_HELPER_ARG "__extract-document"
#define TR_DOC_EXTRACT_SECONDS 120
#define TR_DOC_EXTRACT_MEMORY ((unsigned long long)4 << 30)
int tr_doc_extract_isolated(const unsigned char *data, size_t len, const char *name, tr_doc *out,
                            tr_error *err);
bool tr_doc_helper_requested(int argc, char **argv);
int tr_doc_helper_main(int argc, char **argv);
/* The helper's answer: a document, or (d NULL) an extraction error. The
 * decoder checks every length and refuses NULs in every string. */
void tr_doc_encode(const tr_doc *d, const char *error, tr_buf *out);
int tr_doc_decode(const unsigned char *p, size_t n, tr_doc *out, tr_error *err);

/* Decodes bytes in a detected charset (BOM'd UTF-16, UTF-8, Shift_JIS,
 * EUC-JP, else Latin-1) to UTF-8. *charset is static. */
int tr_text_to_utf8(const unsigned char *data, size_t len, char **out, size_t *outlen,
                    const char **charset, tr_error *err);

/* A multipart/form-data body: the 'file' part and small text fields. */
typedef struct tr_report_form {
    unsigned char *data;
    size_t len;
    char *filename;
    char **keys, **values;
    size_t nfields;
} tr_report_form;
int tr_report_form_parse(const char *content_type, const void *body, size_t len,
                         tr_report_form *out, tr_error *err);
const char *tr_report_form_field(const tr_report_form *f, const char *key);
void tr_report_form_free(tr_report_form *f);

/* ---- entities ------------------------------------------------------------ */

typedef struct tr_gazetteer tr_gazetteer;

/* Names and aliases of the knowledge base's intrusion sets, threat actors,
 * malware, tools, campaigns, vulnerabilities, locations and sectors
 * (identities of class "class"), each resolving to its object. */
int tr_gazetteer_load(tr_stix_db *db, tr_gazetteer **out, tr_error *err);
/* Adds one name (for tests and for objects not stored yet). */
void tr_gazetteer_add(tr_gazetteer *g, const char *name, const char *id, const char *type,
                      const char *canonical);
tr_gazetteer *tr_gazetteer_new(void);
size_t tr_gazetteer_size(const tr_gazetteer *g);
void tr_gazetteer_free(tr_gazetteer *g);

typedef struct tr_entity_hit {
    const char *id, *type, *name;   /* the object; owned by the gazetteer */
    const char *matched;            /* the alias as spelled in the gazetteer */
    size_t offset, length;
} tr_entity_hit;

typedef struct tr_entity_list {
    tr_entity_hit *v;
    size_t n, cap;
} tr_entity_list;

/* Every mention, longest match first at each position. Word boundaries are
 * required only against ASCII letters and digits, so "Contiが" matches. */
void tr_gazetteer_match(const tr_gazetteer *g, const char *text, size_t len, tr_entity_list *out);
void tr_entity_list_free(tr_entity_list *l);

/* ---- the draft ------------------------------------------------------------ */

typedef struct tr_report_opts {
    const char *name;           /* else the document's title, else the file name */
    const char *published;      /* else the document's date, else now */
    const char *const *labels;  /* NULL-terminated or NULL */
    const char *marking;        /* "TLP:GREEN", "TLP:AMBER+STRICT"... or NULL */
    const char *filename;       /* for the artifact and the fallback name */
    bool in_process;            /* tr_doc_extract here, not isolated: fuzzing only */
} tr_report_opts;

struct tr_store;

/* Builds the draft: {"document": {...}, "text": ..., "extractions": [...],
 * "entities": [...], "candidates": [...], "proposals": [...],
 * "report": {...}, "bundle": {...}}. The bundle holds the report, the
 * original as an artifact and the new objects for accepted extractions;
 * entities are referenced by id. Candidates and proposals stay out of the
 * bundle: they are for review. g and store may be NULL (no entities; no
 * links to stored samples). */
int tr_report_draft(const unsigned char *data, size_t len, const tr_report_opts *o,
                    const tr_gazetteer *g, struct tr_store *store, json_t **out,
                    tr_error *err);

/* Keeps an original too large (over 1 MB) to travel inside its artifact at
 * DATA/reports/<sha256>, which the artifact's url ("trawl:reports/<sha256>")
 * names. A no-op for small originals. Call it before committing a draft. */
int tr_report_keep_original(const char *data_dir, const unsigned char *data, size_t len,
                            tr_error *err);

/* ---- review ----------------------------------------------------------------
 * Drafts kept at DATA/reports/drafts/<id>.json until committed. Each of
 * extractions[], entities[], candidates[] and proposals[] carries
 * "accepted"; "draft" holds {id, status ("open", "committed"), created,
 * updated, created_by, committed}. Functions returning an int give 1 done,
 * 0 no such draft, TR_DRAFT_CONFLICT when the draft is already committed,
 * -1 on failure. */
#define TR_DRAFT_CONFLICT (-2)

bool tr_report_draft_id_valid(const char *id);
/* Stores a draft built by tr_report_draft (which gains its "draft"
 * member and the review's defaults); id receives its UUID. 0 or -1. */
int tr_report_draft_create(const char *data_dir, json_t *draft, const char *by, char id[37],
                           tr_error *err);
int tr_report_draft_get(const char *data_dir, const char *id, json_t **out, tr_error *err);
/* Summaries of every draft, newest first. 0 or -1. */
int tr_report_drafts_list(const char *data_dir, json_t **out, tr_error *err);
json_t *tr_report_draft_summary(json_t *draft);
int tr_report_draft_delete(const char *data_dir, const char *id, tr_error *err);
/* Applies changes: {"accept": [i...], "reject": [...], "accept_entities",
 * "reject_entities" (an entity's every mention), "accept_candidates",
 * "reject_candidates", "accept_proposals", "reject_proposals" (indices
 * into the draft's arrays), "add": [{"kind", "value"[, "offset",
 * "length"]}] (an indicator kind, or malware, intrusion-set, threat-actor,
 * tool, campaign for a new named object), "name", "labels", "marking"
 * (a TLP name or null), "published"}. All or nothing; the draft's report
 * and bundle are rebuilt. 0 or -1. */
int tr_report_review_apply(json_t *draft, json_t *changes, tr_error *err);
/* The bundle a commit of the draft would import now. */
json_t *tr_report_review_bundle(json_t *draft, tr_error *err);
/* Loads, applies changes, saves; *out the updated draft. */
int tr_report_draft_review(const char *data_dir, const char *id, json_t *changes, json_t **out,
                           tr_error *err);
/* Imports the report and the accepted objects in one transaction, then
 * marks the draft committed; *out the committed draft. */
int tr_report_draft_commit(const char *data_dir, tr_stix_db *db, const char *id, json_t **out,
                           tr_error *err);

/* Marking id of "TLP:GREEN" etc. (TLP 2.0 names; TLP 1.0's "TLP:WHITE"
 * maps to its 1.0 definition), or NULL. */
const char *tr_report_marking_id(const char *tlp);

#endif
