// The TLSH library Debian ships is a C++ class; this is its C face.
// Debian's TLSH (3.4.4) predates the "T1" version prefix of TLSH 4, which
// MalwareBazaar and VirusTotal print; the 70 hex digits are the same, so the
// prefix is added here.
#include <new>
#include <string.h>
#include <tlsh.h>

extern "C" {
#include "core/core.h"
}

struct tr_tlsh {
    Tlsh t;
};

extern "C" tr_tlsh *tr_tlsh_new(void)
{
    return new (std::nothrow) tr_tlsh();
}

extern "C" void tr_tlsh_update(tr_tlsh *t, const unsigned char *p, size_t n)
{
    while (n > 0) {
        unsigned int chunk = n > (1u << 30) ? (1u << 30) : (unsigned int)n;
        t->t.update(p, chunk);
        p += chunk;
        n -= chunk;
    }
}

extern "C" void tr_tlsh_final(tr_tlsh *t, char *out, size_t outsz)
{
    char buf[TLSH_STRING_BUFFER_LEN];
    t->t.final();
    const char *h = t->t.getHash(buf, sizeof buf);
    if (!h || !*h || outsz < strlen(h) + 3) {
        if (outsz)
            out[0] = '\0';
        return;
    }
    out[0] = 'T';
    out[1] = '1';
    strcpy(out + 2, h);
}

extern "C" void tr_tlsh_free(tr_tlsh *t)
{
    delete t;
}

// libtlsh's own distance of two digests (with the length term), for checking
// faster implementations against it; -1 when either does not parse.
extern "C" int tr_tlsh_diff(const char *a, const char *b)
{
    Tlsh x, y;
    if (a[0] == 'T' && a[1] == '1')
        a += 2;
    if (b[0] == 'T' && b[1] == '1')
        b += 2;
    if (x.fromTlshStr(a) != 0 || y.fromTlshStr(b) != 0)
        return -1;
    return x.totalDiff(&y, true);
}
