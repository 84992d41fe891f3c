/* telfhash (Trend Micro): the TLSH of an ELF's function symbol names.
 * Their reference tool takes the first non-empty SHT_DYNSYM or SHT_SYMTAB
 * section in section order, keeps global default-visibility functions with
 * a name outside a fixed exclusion list, lowercases them, sorts them and
 * joins them with ","; the digest is TLSH of that text, lowercased.
 *
 * The ELF is read here directly (sections, symbols, string table) with every
 * offset checked against the buffer: the bytes are untrusted. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis.h"
#include "analysis/analysis_internal.h"

typedef struct elf_view {
    const unsigned char *p;
    size_t n;
    bool is64, big;
} elf_view;

static uint64_t rd(const elf_view *e, uint64_t off, unsigned width, bool *ok)
{
    if (off > e->n || width > e->n - off) {
        *ok = false;
        return 0;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < width; i++) {
        unsigned shift = e->big ? 8 * (width - 1 - i) : 8 * i;
        v |= (uint64_t)e->p[off + i] << shift;
    }
    return v;
}

typedef struct section {
    uint32_t name, type, link;
    uint64_t offset, size, entsize;
} section;

static bool read_section(const elf_view *e, uint64_t shoff, uint64_t shentsize, uint64_t i,
                         section *s)
{
    bool ok = true;
    uint64_t b = shoff + i * shentsize;
    s->name = (uint32_t)rd(e, b, 4, &ok);
    s->type = (uint32_t)rd(e, b + 4, 4, &ok);
    s->link = (uint32_t)rd(e, b + (e->is64 ? 40 : 24), 4, &ok);
    if (e->is64) {
        s->offset = rd(e, b + 24, 8, &ok);
        s->size = rd(e, b + 32, 8, &ok);
        s->entsize = rd(e, b + 56, 8, &ok);
    } else {
        s->offset = rd(e, b + 16, 4, &ok);
        s->size = rd(e, b + 20, 4, &ok);
        s->entsize = rd(e, b + 36, 4, &ok);
    }
    return ok;
}

static const char *const excluded_names[] = {
    "__libc_start_main", "main", "abort", "cachectl", "cacheflush", "puts", "atol", "malloc_trim",
};

/* The reference's patterns: ^[_.], 64$, ^str, ^mem, and the names above. */
static bool excluded(const char *name, size_t len)
{
    if (name[0] == '_' || name[0] == '.')
        return true;
    if (len >= 2 && name[len - 2] == '6' && name[len - 1] == '4')
        return true;
    if (strncmp(name, "str", 3) == 0 || strncmp(name, "mem", 3) == 0)
        return true;
    for (size_t i = 0; i < sizeof excluded_names / sizeof excluded_names[0]; i++)
        if (strlen(excluded_names[i]) == len && memcmp(excluded_names[i], name, len) == 0)
            return true;
    return false;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The ELF header's fields both users need; false when not a usable ELF. */
static bool elf_open(const unsigned char *p, size_t n, elf_view *e, uint64_t *shoff,
                     uint64_t *shentsize, uint64_t *shnum)
{
    if (n < 52 || memcmp(p, "\x7f" "ELF", 4) != 0 || (p[4] != 1 && p[4] != 2) ||
        (p[5] != 1 && p[5] != 2))
        return false;
    *e = (elf_view){p, n, p[4] == 2, p[5] == 2};
    bool ok = true;
    *shoff = rd(e, e->is64 ? 0x28 : 0x20, e->is64 ? 8 : 4, &ok);
    *shentsize = rd(e, e->is64 ? 0x3a : 0x2e, 2, &ok);
    *shnum = rd(e, e->is64 ? 0x3c : 0x30, 2, &ok);
    return ok && *shoff != 0 && *shnum != 0 && *shentsize >= (e->is64 ? 64u : 40u);
}

bool elf_section_by_name(const unsigned char *p, size_t n, const char *name, size_t *off,
                         size_t *size)
{
    elf_view e;
    uint64_t shoff, shentsize, shnum;
    if (!elf_open(p, n, &e, &shoff, &shentsize, &shnum))
        return false;
    bool ok = true;
    uint64_t shstrndx = rd(&e, e.is64 ? 0x3e : 0x32, 2, &ok);
    section names;
    if (!ok || shstrndx >= shnum || !read_section(&e, shoff, shentsize, shstrndx, &names) ||
        names.offset > n || names.size > n - names.offset)
        return false;
    size_t want = strlen(name) + 1;
    for (uint64_t i = 0; i < shnum; i++) {
        section s;
        if (!read_section(&e, shoff, shentsize, i, &s))
            return false;
        if (s.name >= names.size || names.size - s.name < want ||
            memcmp(p + names.offset + s.name, name, want) != 0)
            continue;
        if (s.type == 8 /* SHT_NOBITS */ || s.offset > n || s.size > n - s.offset)
            return false;
        *off = (size_t)s.offset;
        *size = (size_t)s.size;
        return true;
    }
    return false;
}

int tr_telfhash_symbols(const unsigned char *p, size_t n, char **out)
{
    *out = NULL;
    elf_view e;
    uint64_t shoff, shentsize, shnum;
    if (!elf_open(p, n, &e, &shoff, &shentsize, &shnum))
        return 0;
    bool ok = true;
    section sym = {0}, str = {0};
    bool found = false;
    for (uint64_t i = 0; i < shnum && !found; i++) {
        section s;
        if (!read_section(&e, shoff, shentsize, i, &s))
            return 0;
        if (s.size == 0 || (s.type != 11 /* SHT_DYNSYM */ && s.type != 2 /* SHT_SYMTAB */))
            continue;
        sym = s;
        found = true;
    }
    if (!found || sym.link >= shnum || !read_section(&e, shoff, shentsize, sym.link, &str))
        return 0;
    if (str.offset > n || str.size > n - str.offset)
        str.size = str.offset > n ? 0 : n - str.offset;
    uint64_t entsize = sym.entsize ? sym.entsize : (e.is64 ? 24 : 16);
    if (entsize < (e.is64 ? 24u : 16u))
        return 0;
    uint64_t count = sym.size / entsize;
    if (sym.offset > n || count > (n - sym.offset) / entsize)
        count = sym.offset > n ? 0 : (n - sym.offset) / entsize;

    char **names = NULL;
    size_t nn = 0, cap = 0;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t b = sym.offset + i * entsize;
        uint64_t name_off = rd(&e, b, 4, &ok);
        unsigned info = (unsigned)rd(&e, b + (e.is64 ? 4 : 12), 1, &ok);
        unsigned other = (unsigned)rd(&e, b + (e.is64 ? 5 : 13), 1, &ok);
        if (!ok)
            break;
        if ((info & 0xf) != 2 /* STT_FUNC */ || (info >> 4) != 1 /* STB_GLOBAL */ ||
            (other & 3) != 0 /* STV_DEFAULT */ || name_off >= str.size)
            continue;
        const char *name = (const char *)p + str.offset + name_off;
        const char *end = memchr(name, '\0', str.size - name_off);
        size_t len = end ? (size_t)(end - name) : str.size - name_off;
        if (len == 0 || excluded(name, len))
            continue;
        if (nn == cap) {
            cap = cap ? cap * 2 : 64;
            names = tr_xrealloc(names, cap * sizeof *names);
        }
        char *lower = tr_xmalloc(len + 1);
        for (size_t k = 0; k < len; k++)
            lower[k] = (char)tolower((unsigned char)name[k]);
        lower[len] = '\0';
        names[nn++] = lower;
    }
    if (nn)
        qsort(names, nn, sizeof *names, cmp_str);
    tr_buf b = {0};
    for (size_t i = 0; i < nn; i++) {
        if (i)
            tr_buf_append(&b, ",", 1);
        tr_buf_append(&b, names[i], strlen(names[i]));
        free(names[i]);
    }
    free(names);
    tr_buf_append(&b, "", 1);
    *out = b.data;
    return 1;
}

int tr_telfhash_of_list(const char *list, size_t len, char out[TR_TELFHASH_MAX])
{
    out[0] = '\0';
    tr_tlsh *t = tr_tlsh_new();
    if (!t)
        tr_die("out of memory for TLSH");
    tr_tlsh_update(t, (const unsigned char *)list, len);
    tr_tlsh_final(t, out, TR_TELFHASH_MAX);
    tr_tlsh_free(t);
    for (char *c = out; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return out[0] != '\0';
}

int tr_telfhash(const unsigned char *p, size_t n, char out[TR_TELFHASH_MAX])
{
    out[0] = '\0';
    char *list = NULL;
    if (!tr_telfhash_symbols(p, n, &list))
        return 0;
    int rc = list[0] ? tr_telfhash_of_list(list, strlen(list), out) : 0;
    free(list);
    return rc;
}
