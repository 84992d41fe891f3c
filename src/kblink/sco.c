/* A stored sample as a STIX file SCO. */
#include <string.h>

#include "kblink/kblink_internal.h"
#include "stix/stix.h"

/* trawl's TLSH digests carry TLSH 4's "T1" version prefix; STIX's hash
 * vocabulary (and the OASIS schema, ^[a-zA-Z0-9]{70}$) takes the 70-hex
 * digest without it. */
static const char *stix_tlsh(const char *tlsh)
{
    size_t n = strlen(tlsh);
    if (n == 72 && (tlsh[0] == 'T' || tlsh[0] == 't') && tlsh[1] == '1')
        return tlsh + 2;
    return n == 70 ? tlsh : NULL;
}

json_t *kblink_file_sco(const tr_sample *x, tr_error *err)
{
    json_t *h = json_pack("{ss ss ss ss}", "MD5", x->d.md5, "SHA-1", x->d.sha1, "SHA-256",
                          x->d.sha256, "SHA3-384", x->d.sha3_384);
    if (!h) {
        tr_fail(err, "out of memory building the file SCO of %s", x->d.sha256);
        return NULL;
    }
    if (x->d.ssdeep[0])
        json_object_set_new(h, "SSDEEP", json_string(x->d.ssdeep));
    const char *tlsh = x->d.tlsh[0] ? stix_tlsh(x->d.tlsh) : NULL;
    if (tlsh)
        json_object_set_new(h, "TLSH", json_string(tlsh));
    json_t *f = json_pack("{ss ss so sI}", "type", "file", "spec_version", "2.1", "hashes", h,
                          "size", (json_int_t)x->d.size);
    if (!f) {
        tr_fail(err, "out of memory building the file SCO of %s", x->d.sha256);
        return NULL;
    }
    /* The name is part of the deterministic id: the first of the sample's
     * names, so the id only moves when a name sorting before it arrives. */
    if (x->n_names)
        json_object_set_new(f, "name", json_string(x->names[0]));
    if (x->mime && *x->mime)
        json_object_set_new(f, "mime_type", json_string(x->mime));
    char id[128];
    if (tr_stix_sco_id(f, id, err) != 1) {
        json_decref(f);
        tr_fail(err, "no id for the file SCO of %s", x->d.sha256);
        return NULL;
    }
    json_object_set_new(f, "id", json_string(id));
    return f;
}
