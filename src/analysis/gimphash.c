/* gimphash: an imphash for Go binaries (Nextron Systems). Go links its
 * dependencies in, and the pclntab (the runtime's function table) names
 * every function; the hash is over the names that say which packages the
 * program uses.
 *
 * The rules are those of the reference implementations (C and Go, which
 * agree): functions in table order; drop "go." and "type." names; cut
 * everything up to the last "vendor/"; drop names containing "internal/" and
 * those starting with runtime, sync, syscall, type, time, unicode, reflect or
 * strconv; drop unexported functions and methods (the first letter of the
 * part after the package, and of the part after its next ".", is lowercase);
 * SHA-256 of the kept names concatenated. The project's README describes an
 * older variant (package names, sorted); Bazaar's values follow the code.
 *
 * The table is found as the reference does: an ELF's .gopclntab section, else
 * a scan of the file for a table header, accepted only when every function
 * name it points at lies inside the table. */
#define _GNU_SOURCE /* memmem */
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis.h"
#include "analysis/analysis_internal.h"

enum { GO12 = 12, GO116 = 116, GO118 = 118 };

typedef struct pcln {
    const unsigned char *p;
    size_t n;
    unsigned ps;              /* pointer size */
    int ver;
} pcln;

static uint64_t le(const pcln *t, uint64_t off, unsigned width, bool *ok)
{
    if (off > t->n || width > t->n - off) {
        *ok = false;
        return 0;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < width; i++)
        v |= (uint64_t)t->p[off + i] << (8 * i);
    return v;
}

/* Little-endian header: magic, two zero bytes, instruction quantum, pointer size. */
static int header_version(const unsigned char *p, size_t n)
{
    if (n < 16 || p[4] != 0 || p[5] != 0 || (p[6] != 1 && p[6] != 2 && p[6] != 4) ||
        (p[7] != 4 && p[7] != 8) || p[1] != 0xff || p[2] != 0xff || p[3] != 0xff)
        return 0;
    switch (p[0]) {
    case 0xfb: return GO12;
    case 0xfa: return GO116;
    case 0xf0:                /* Go 1.18, 1.19 */
    case 0xf1: return GO118;  /* Go 1.20 on: same layout */
    default: return 0;
    }
}

static bool lower_first_alnum(const char *s)
{
    for (; *s; s++) {
        if (*s >= 'a' && *s <= 'z')
            return true;
        if ((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9'))
            return false;
    }
    return false;
}

static const char *const skipped_prefixes[] = {
    "runtime", "sync", "syscall", "type", "time", "unicode", "reflect", "strconv",
};

/* The name as gimphash keeps it, or NULL when its rules drop it. */
static const char *kept_name(const char *name)
{
    if (strncmp(name, "go.", 3) == 0 || strncmp(name, "type.", 5) == 0)
        return NULL;
    for (const char *v; (v = strstr(name, "vendor/")) != NULL;)
        name = v + 7;
    if (strstr(name, "internal/"))
        return NULL;
    for (size_t i = 0; i < sizeof skipped_prefixes / sizeof skipped_prefixes[0]; i++)
        if (strncmp(name, skipped_prefixes[i], strlen(skipped_prefixes[i])) == 0)
            return NULL;
    const char *pkg_end = strrchr(name, '/');
    pkg_end = pkg_end ? pkg_end + 1 : name;
    const char *dot = strchr(pkg_end, '.');
    const char *base = dot ? dot + 1 : pkg_end;
    if (lower_first_alnum(base))
        return NULL;
    const char *member = strchr(base, '.');
    if (member && lower_first_alnum(member))
        return NULL;
    return name;
}

/* The kept names, "\n"-joined and concatenated, or -1 when the table does
 * not hold together. */
static int parse_table(const pcln *t, tr_buf *names, tr_buf *concat)
{
    bool ok = true;
    uint64_t nfunc, nametab, functab, funcdata;
    unsigned field;
#define WORD(k) le(t, 8 + (uint64_t)(k) * t->ps, t->ps, &ok)
    if (t->ver == GO118) {
        nfunc = WORD(0);
        nametab = WORD(3);
        functab = funcdata = WORD(7);
        field = 4;
    } else if (t->ver == GO116) {
        nfunc = WORD(0);
        nametab = WORD(2);
        functab = funcdata = WORD(6);
        field = t->ps;
    } else {
        nfunc = WORD(0);
        nametab = 0;
        funcdata = 0;
        functab = 8 + t->ps;
        field = t->ps;
    }
#undef WORD
    if (!ok || nfunc == 0 || functab > t->n || nametab > t->n || funcdata > t->n ||
        nfunc > (t->n - functab) / field / 2)
        return -1;
    for (uint64_t i = 0; i < nfunc; i++) {
        uint64_t funcoff = le(t, functab + (2 * i + 1) * field, field, &ok);
        if (!ok || funcoff > t->n - funcdata)
            return -1;
        /* The func record: its entry (a field), then the name offset (int32). */
        uint64_t nameoff = le(t, funcdata + funcoff + field, 4, &ok);
        if (!ok || nameoff > t->n - nametab)
            return -1;
        const char *name = (const char *)t->p + nametab + nameoff;
        size_t room = t->n - nametab - nameoff;
        if (!memchr(name, '\0', room))
            return -1;
        const char *kept = kept_name(name);
        if (!kept)
            continue;
        if (names->len)
            tr_buf_append(names, "\n", 1);
        tr_buf_append(names, kept, strlen(kept));
        tr_buf_append(concat, kept, strlen(kept));
    }
    return 0;
}

static int try_table(const unsigned char *p, size_t n, tr_buf *names, tr_buf *concat)
{
    int ver = header_version(p, n);
    if (!ver)
        return -1;
    pcln t = {p, n, p[7], ver};
    names->len = concat->len = 0;
    return parse_table(&t, names, concat);
}

/* Go 1.13 on write this build-info marker; older binaries name the
 * toolchain. Either tells a Go binary from others before any scan. */
static bool looks_like_go(const unsigned char *p, size_t n)
{
    static const char buildinf[] = "\xff Go buildinf:";
    static const char buildid[] = "Go build ID: \"";
    return memmem(p, n, buildinf, sizeof buildinf - 1) != NULL ||
           memmem(p, n, buildid, sizeof buildid - 1) != NULL;
}

/* 1 with the table's kept names (names: "\n"-joined, concat: as hashed). */
static int find_names(const unsigned char *p, size_t n, tr_buf *names, tr_buf *concat)
{
    size_t off, size;
    if (elf_section_by_name(p, n, ".gopclntab", &off, &size) &&
        try_table(p + off, size, names, concat) == 0)
        return 1;
    /* From the end, as the reference does: the table sits late in the
     * read-only data, and a stray header earlier is likelier a false hit. */
    if (n < 16 || !looks_like_go(p, n))
        return 0;
    for (size_t i = n - 16 + 1; i-- > 0;) {
        if (p[i + 3] != 0xff || p[i + 2] != 0xff || p[i + 1] != 0xff)
            continue;
        if (try_table(p + i, n - i, names, concat) == 0)
            return 1;
    }
    return 0;
}

int tr_gimphash_names(const unsigned char *p, size_t n, char **out)
{
    tr_buf names = {0}, concat = {0};
    int found = find_names(p, n, &names, &concat);
    tr_buf_free(&concat);
    if (!found) {
        tr_buf_free(&names);
        *out = NULL;
        return 0;
    }
    tr_buf_append(&names, "", 1);
    *out = names.data;
    return 1;
}

int tr_gimphash(const unsigned char *p, size_t n, char out[TR_SHA256_HEX])
{
    out[0] = '\0';
    tr_buf names = {0}, concat = {0};
    /* A table with no kept name gives no gimphash rather than the digest
     * of nothing, which every such binary would share. */
    int rc = find_names(p, n, &names, &concat) && concat.len ? 1 : 0;
    if (rc)
        tr_sha256_hex(concat.data, concat.len, out);
    tr_buf_free(&names);
    tr_buf_free(&concat);
    return rc;
}
