/* The kinds of similarity, their index files, and queries by sample. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "similar/similar_internal.h"

/* A TLSH-valued hash another module stores in its own column plugs in with
 * one line here; a kind whose column the store lacks simply has no index. */
static const struct sim_kind {
    const char *name, *column;
    int type;
} kinds[] = {
    {"tlsh", "tlsh", SIM_TLSH},
    {"ssdeep", "ssdeep", SIM_SSDEEP},
    {"imphash", "imphash", SIM_EXACT},
    {"telfhash", "telfhash", SIM_TLSH},
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

size_t tr_similar_kind_count(void)
{
    return N_KINDS;
}

const char *tr_similar_kind_name(size_t i)
{
    return i < N_KINDS ? kinds[i].name : NULL;
}

const char *tr_similar_kind_column(size_t i)
{
    return i < N_KINDS ? kinds[i].column : NULL;
}

int tr_similar_kind_find(const char *name)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (strcmp(kinds[i].name, name) == 0)
            return (int)i;
    return -1;
}

bool tr_similar_kind_is_score(size_t kind)
{
    return kind < N_KINDS && kinds[kind].type == SIM_SSDEEP;
}

int sim_kind_type(size_t kind)
{
    return kind < N_KINDS ? kinds[kind].type : SIM_EXACT;
}

/* ---- index files --------------------------------------------------------- */

#define FILE_MAGIC "TRSIMIX1"

typedef struct file_header {
    char magic[8];
    uint32_t type, node_size;
    int64_t last_id, count;
    uint64_t n, npost, bloblen;
    uint64_t reserved[2];
} file_header;

static char *index_path(tr_store *s, size_t kind)
{
    return tr_xasprintf("%s/similar/%s.idx", tr_store_dir(s), kinds[kind].name);
}

static size_t pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static int write_index(tr_store *s, const tr_simix *ix, tr_error *err)
{
    char *dir = tr_xasprintf("%s/similar", tr_store_dir(s));
    if (tr_mkdir_p(dir, 0755, err) != 0) {
        free(dir);
        return -1;
    }
    char *path = index_path(s, ix->kind);
    char *tmp = tr_xasprintf("%s.tmp.%ld", path, (long)getpid());
    file_header h = {.type = (uint32_t)ix->type,
                     .node_size = ix->type == SIM_TLSH ? sizeof(sim_vp_node) : sizeof(sim_ng_entry),
                     .last_id = ix->last_id,
                     .count = ix->count,
                     .n = ix->n,
                     .npost = ix->type == SIM_TLSH ? SIM_GRAPH_DEGREE : ix->npost,
                     .bloblen = ix->bloblen};
    memcpy(h.magic, FILE_MAGIC, 8);
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        tr_fail_errno(err, "cannot create %s", tmp);
        goto out;
    }
    static const char zeros[8];
    bool ok = tr_write_all(fd, &h, sizeof h) == 0;
    if (ix->type == SIM_TLSH) {
        ok = ok && tr_write_all(fd, ix->nodes, ix->n * sizeof *ix->nodes) == 0 &&
             tr_write_all(fd, ix->graph, ix->n * SIM_GRAPH_DEGREE * sizeof *ix->graph) == 0;
    } else {
        ok = ok && tr_write_all(fd, ix->ents, ix->n * sizeof *ix->ents) == 0 &&
             tr_write_all(fd, ix->blob, ix->bloblen) == 0 &&
             tr_write_all(fd, zeros, pad8(ix->bloblen) - ix->bloblen) == 0 &&
             tr_write_all(fd, ix->keys, ix->npost * sizeof *ix->keys) == 0 &&
             tr_write_all(fd, ix->idx, ix->npost * sizeof *ix->idx) == 0;
    }
    if (!ok || fsync(fd) != 0) {
        tr_fail_errno(err, "cannot write %s", tmp);
        close(fd);
        unlink(tmp);
        goto out;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        tr_fail_errno(err, "cannot rename %s", tmp);
        unlink(tmp);
        goto out;
    }
    rc = tr_fsync_path(dir, err);
out:
    free(dir);
    free(path);
    free(tmp);
    return rc;
}

/* Maps kind's index file: 1 loaded, 0 absent or unusable (rebuilt by the
 * caller in memory), -1 error. */
static int load_index(tr_store *s, tr_simix *ix)
{
    char *path = index_path(s, ix->kind);
    tr_error e;
    int rc = tr_map_open(&ix->map, path, &e);
    free(path);
    if (rc != 0)
        return 0;
    const unsigned char *p = ix->map.data;
    size_t len = ix->map.len;
    file_header h;
    if (len < sizeof h)
        goto bad;
    memcpy(&h, p, sizeof h);
    if (memcmp(h.magic, FILE_MAGIC, 8) != 0 || h.type != (uint32_t)ix->type)
        goto bad;
    size_t off = sizeof h;
    if (ix->type == SIM_TLSH) {
        size_t per = sizeof(sim_vp_node) + SIM_GRAPH_DEGREE * sizeof(uint32_t);
        if (h.node_size != sizeof(sim_vp_node) || h.npost != SIM_GRAPH_DEGREE ||
            h.n > (len - off) / per || off + h.n * per != len)
            goto bad;
        ix->nodes = (const sim_vp_node *)(p + off);
        ix->graph = (const uint32_t *)(p + off + h.n * sizeof(sim_vp_node));
    } else {
        if (h.node_size != sizeof(sim_ng_entry) || h.n > (len - off) / sizeof(sim_ng_entry))
            goto bad;
        ix->ents = (const sim_ng_entry *)(p + off);
        off += h.n * sizeof(sim_ng_entry);
        if (h.bloblen > len - off || h.npost > len)
            goto bad;
        ix->blob = (const char *)(p + off);
        if (h.bloblen && ix->blob[h.bloblen - 1] != '\0')
            goto bad;
        off += pad8(h.bloblen);
        if (off > len || (len - off) / 8 != h.npost || (len - off) % 8 != 0)
            goto bad;
        ix->keys = (const uint32_t *)(p + off);
        ix->idx = (const uint32_t *)(p + off + h.npost * 4);
        ix->bloblen = h.bloblen;
        ix->npost = h.npost;
        /* Offsets must land inside the blob, whose last byte is a NUL. */
        for (size_t i = 0; i < h.n; i++)
            if (ix->ents[i].off >= h.bloblen)
                goto bad;
    }
    ix->n = h.n;
    ix->last_id = h.last_id;
    ix->count = h.count;
    return 1;
bad:
    tr_log(TR_LOG_WARN, "similar: ignoring damaged index file of %s (rebuild it with "
                        "`trawl similar --rebuild`)", kinds[ix->kind].name);
    tr_map_close(&ix->map);
    ix->nodes = NULL;
    ix->graph = NULL;
    ix->ents = NULL;
    ix->blob = NULL;
    ix->keys = ix->idx = NULL;
    ix->n = ix->npost = ix->bloblen = 0;
    return 0;
}

static int check_kind(tr_store *s, size_t kind, tr_error *err)
{
    if (kind >= N_KINDS)
        return tr_fail(err, "no such kind of similarity");
    int has = tr_store_has_column(s, kinds[kind].column);
    if (has < 0)
        return tr_fail(err, "cannot read the store's columns");
    if (has == 0)
        return tr_fail(err, "this store has no %s values (nothing computes them yet)",
                       kinds[kind].name);
    return 0;
}

/* Builds kind's index in memory from every value in the store. */
static int build_index(tr_store *s, tr_simix *ix, tr_error *err)
{
    int64_t max_id, count;
    if (tr_store_hash_value_stats(s, kinds[ix->kind].column, &max_id, &count, err) != 0)
        return -1;
    tr_hash_value *v = NULL;
    size_t n = 0;
    if (tr_store_hash_values(s, kinds[ix->kind].column, 0, &v, &n, err) != 0)
        return -1;
    /* Values committed between the two reads are left to the tail. */
    size_t keep = n;
    while (keep > 0 && v[keep - 1].id > max_id)
        keep--;
    if (ix->type == SIM_SSDEEP)
        sim_build_ssdeep(ix, v, keep);
    else
        sim_build_tlsh(ix, v, keep);
    free(v);
    ix->last_id = max_id;
    ix->count = (int64_t)keep;
    return 0;
}

int tr_simix_open(tr_store *s, size_t kind, tr_simix **out, tr_error *err)
{
    if (check_kind(s, kind, err) != 0)
        return -1;
    if (kinds[kind].type == SIM_EXACT)
        return tr_fail(err, "%s matches exactly through the store's own index",
                       kinds[kind].name);
    tr_simix *ix = tr_xcalloc(1, sizeof *ix);
    ix->kind = kind;
    ix->type = kinds[kind].type;
    ix->slack = SIM_DEFAULT_SLACK;
    ix->effort = SIM_DEFAULT_EFFORT;
    if (load_index(s, ix) == 0 && build_index(s, ix, err) != 0) {
        tr_simix_close(ix);
        return -1;
    }
    tr_hash_value *tail = NULL;
    size_t ntail = 0;
    if (tr_store_hash_values(s, kinds[kind].column, ix->last_id, &tail, &ntail, err) != 0) {
        tr_simix_close(ix);
        return -1;
    }
    sim_set_tail(ix, tail, ntail);
    *out = ix;
    return 0;
}

int tr_similar_rebuild(tr_store *s, size_t kind, tr_error *err)
{
    for (size_t k = 0; k < N_KINDS; k++) {
        if (kind != SIZE_MAX && k != kind)
            continue;
        if (kinds[k].type == SIM_EXACT)
            continue;
        int has = tr_store_has_column(s, kinds[k].column);
        if (has < 0)
            return tr_fail(err, "cannot read the store's columns");
        if (has == 0) {
            if (kind == k)
                return check_kind(s, k, err);
            continue;
        }
        tr_simix *ix = tr_xcalloc(1, sizeof *ix);
        ix->kind = k;
        ix->type = kinds[k].type;
        int rc = build_index(s, ix, err);
        if (rc == 0)
            rc = write_index(s, ix, err);
        tr_simix_close(ix);
        if (rc != 0) {
            tr_error_prefix(err, kinds[k].name);
            return -1;
        }
    }
    return 0;
}

int tr_similar_refresh(tr_store *s, tr_error *err)
{
    for (size_t k = 0; k < N_KINDS; k++) {
        if (kinds[k].type == SIM_EXACT)
            continue;
        int has = tr_store_has_column(s, kinds[k].column);
        if (has < 0)
            return tr_fail(err, "cannot read the store's columns");
        if (has == 0)
            continue;
        int64_t max_id, count;
        if (tr_store_hash_value_stats(s, kinds[k].column, &max_id, &count, err) != 0)
            return -1;
        tr_simix probe = {.kind = k, .type = kinds[k].type};
        int loaded = load_index(s, &probe);
        bool current = loaded == 1;
        if (current && (probe.last_id != max_id || probe.count != count)) {
            /* Rebuilding the 41k-file corpus's TLSH graph takes seconds: a
             * short tail is compared one by one instead, and removed
             * entries stay as waypoints (answers leave them out). */
            tr_hash_value *tail = NULL;
            size_t ntail = 0;
            if (tr_store_hash_values(s, kinds[k].column, probe.last_id, &tail, &ntail, err) != 0) {
                sim_index_free_parts(&probe);
                return -1;
            }
            free(tail);
            int64_t removed = probe.count + (int64_t)ntail - count;
            current = ntail <= SIM_TAIL_MAX && removed * 8 <= probe.count;
        }
        sim_index_free_parts(&probe);
        if (!current && tr_similar_rebuild(s, k, err) != 0)
            return -1;
    }
    return 0;
}

/* ---- queries by sample ----------------------------------------------------- */

static int exact_query(tr_store *s, const char *value, int64_t id, size_t max,
                       tr_similar_hit **out, size_t *n, tr_error *err)
{
    tr_sample_filter f = {.imphash = value, .limit = (int64_t)max + 1};
    tr_sample **list = NULL;
    size_t nl = 0;
    if (tr_store_list(s, &f, &list, &nl, err) != 0)
        return -1;
    tr_similar_hit *h = tr_xcalloc(nl ? nl : 1, sizeof *h);
    size_t m = 0;
    for (size_t i = 0; i < nl && m < max; i++)
        if (list[i]->id != id)
            h[m++] = (tr_similar_hit){.id = list[i]->id, .distance = 0};
    tr_sample_list_free(list, nl);
    *out = h;
    *n = m;
    return 0;
}

static int id_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int tr_similar_query(tr_store *s, size_t kind, int64_t id, size_t max, tr_similar_hit **out,
                     size_t *n, tr_error *err)
{
    *out = NULL;
    *n = 0;
    if (check_kind(s, kind, err) != 0)
        return -1;
    char value[TR_SSDEEP_MAX];
    int found = tr_store_hash_value_of(s, kinds[kind].column, id, value, sizeof value, err);
    if (found <= 0)
        return found < 0 ? -1 : tr_fail(err, "no sample with id %lld", (long long)id);
    if (!*value || max == 0) {
        *out = tr_xcalloc(1, sizeof **out);
        return 0;
    }
    if (kinds[kind].type == SIM_EXACT)
        return exact_query(s, value, id, max, out, n, err);

    tr_simix *ix = NULL;
    if (tr_simix_open(s, kind, &ix, err) != 0)
        return -1;
    int64_t max_id, count;
    if (tr_store_hash_value_stats(s, kinds[kind].column, &max_id, &count, err) != 0) {
        tr_simix_close(ix);
        return -1;
    }
    /* Samples removed since the build are still in the file: ask for that
     * many more and drop those the store no longer has. */
    int64_t held = ix->count + (int64_t)ix->ntail;
    size_t gone = held > count ? (size_t)(held - count) : 0;
    size_t want = max + gone;
    tr_similar_hit *h = tr_xcalloc(want, sizeof *h);
    size_t m = tr_simix_knn(ix, value, want, id, h);
    tr_simix_close(ix);
    if (gone && m) {
        int64_t *ids = tr_xmalloc(m * sizeof *ids);
        for (size_t i = 0; i < m; i++)
            ids[i] = h[i].id;
        qsort(ids, m, sizeof *ids, id_cmp);
        tr_sample_brief *b = NULL;
        size_t nb = 0;
        if (tr_store_briefs(s, ids, m, &b, &nb, err) != 0) {
            free(ids);
            free(h);
            return -1;
        }
        size_t k = 0;
        for (size_t i = 0; i < m; i++) {
            bool live = false;
            for (size_t j = 0; j < nb && !live; j++)
                live = b[j].id == h[i].id;
            if (live)
                h[k++] = h[i];
        }
        m = k;
        tr_sample_briefs_free(b, nb);
        free(ids);
    }
    if (m > max)
        m = max;
    *out = h;
    *n = m;
    return 0;
}

/* ---- the answer, as the API and the CLI print it ------------------------- */

struct json_t *tr_similar_answer(tr_store *s, size_t kind, const tr_sample *x, size_t max,
                                 tr_error *err)
{
    tr_similar_hit *h = NULL;
    size_t n = 0;
    if (tr_similar_query(s, kind, x->id, max, &h, &n, err) != 0)
        return NULL;
    char value[TR_SSDEEP_MAX] = "";
    if (tr_store_hash_value_of(s, kinds[kind].column, x->id, value, sizeof value, err) < 0) {
        free(h);
        return NULL;
    }
    int64_t *ids = tr_xmalloc((n ? n : 1) * sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = h[i].id;
    qsort(ids, n, sizeof *ids, id_cmp);
    tr_sample_brief *b = NULL;
    size_t nb = 0;
    if (tr_store_briefs(s, ids, n, &b, &nb, err) != 0) {
        free(ids);
        free(h);
        return NULL;
    }
    const char *metric = tr_similar_kind_is_score(kind) ? "score" : "distance";
    json_t *results = json_array();
    for (size_t i = 0; i < n; i++) {
        const tr_sample_brief *br = NULL;
        for (size_t j = 0; j < nb && !br; j++)
            if (b[j].id == h[i].id)
                br = &b[j];
        if (!br)
            continue;      /* removed while we looked */
        char hv[TR_SSDEEP_MAX] = "";
        if (tr_store_hash_value_of(s, kinds[kind].column, br->id, hv, sizeof hv, err) < 0) {
            json_decref(results);
            results = NULL;
            break;
        }
        json_t *o = json_object();
        json_object_set_new(o, "sha256_hash", json_string(br->sha256));
        json_object_set_new(o, "file_name", br->name ? json_string(br->name) : json_null());
        json_object_set_new(o, "file_type", json_string(br->file_type ? br->file_type : ""));
        json_object_set_new(o, "file_size", json_integer((json_int_t)br->size));
        json_object_set_new(o, kinds[kind].name, json_string(hv));
        json_object_set_new(o, metric, json_integer(h[i].distance));
        json_array_append_new(results, o);
    }
    tr_sample_briefs_free(b, nb);
    free(ids);
    free(h);
    if (!results)
        return NULL;
    json_t *ans = json_object();
    json_object_set_new(ans, "sha256_hash", json_string(x->d.sha256));
    json_object_set_new(ans, "by", json_string(kinds[kind].name));
    json_object_set_new(ans, "value", *value ? json_string(value) : json_null());
    json_object_set_new(ans, "metric", json_string(metric));
    json_object_set_new(ans, "results", results);
    return ans;
}
