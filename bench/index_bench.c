/* Index benchmark driver (built and run by bench/index.sh).
 *   index_bench INDEXDIR KINDS < file-list
 * Indexes every listed file (doc id = line number), compacts, prints sizes
 * per gram kind against the corpus, the codec comparison, throughput, peak
 * RSS, warm query latencies, and the machine's read ceilings. Figures for
 * ursadb are the ones measured on the same corpus (../shared/DESIGN.md). */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "index/index.h"

#define URSA_PCT 151.0
#define URSA_MBS 6.8
#define URSA_RSS_MB 3750.0

static size_t read_into(const char *path, unsigned char **buf, size_t *cap)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return SIZE_MAX;
    size_t n = 0;
    for (;;) {
        if (n == *cap) {
            *cap = *cap ? *cap * 2 : 1 << 20;
            *buf = tr_xrealloc(*buf, *cap);
        }
        ssize_t r = read(fd, *buf + n, *cap - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    return n;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

typedef struct bq {
    const char *name;
    tr_query *q;
} bq;

static tr_query *nocase(const char *s, bool wide)
{
    size_t n = strlen(s), m = wide ? 2 * n : n;
    tr_byteset *p = tr_xcalloc(m, sizeof *p);
    for (size_t i = 0; i < n; i++) {
        size_t j = wide ? 2 * i : i;
        unsigned char c = (unsigned char)s[i];
        tr_byteset_add(&p[j], c);
        if (c >= 'a' && c <= 'z')
            tr_byteset_add(&p[j], c - 32u);
        if (c >= 'A' && c <= 'Z')
            tr_byteset_add(&p[j], c + 32u);
        if (wide)
            tr_byteset_add(&p[j + 1], 0);
    }
    tr_query *q = tr_query_seq(p, m);
    free(p);
    return q;
}

/* Hex string: "4D 5A ?? ?? 50 45" (?? = any byte). */
static tr_query *hex(const char *s)
{
    tr_byteset p[64];
    size_t n = 0;
    memset(p, 0, sizeof p);
    while (*s && n < 64) {
        if (*s == ' ') {
            s++;
            continue;
        }
        if (s[0] == '?')
            tr_byteset_fill(&p[n]);
        else
            tr_byteset_add(&p[n], (unsigned)strtoul((char[]){s[0], s[1], 0}, NULL, 16));
        n++;
        s += 2;
    }
    return tr_query_seq(p, n);
}

static tr_query *lit(const char *s) { return tr_query_literal((const unsigned char *)s, strlen(s)); }

static double now(void) { return tr_monotonic(); }

/* One writer per thread, each on every nth file (WRITERS=N). */
typedef struct lane {
    tr_index *ix;
    char **files;
    size_t nfiles, index, nlanes;
    int rc;
} lane;

static void *lane_main(void *arg)
{
    lane *l = arg;
    tr_error err;
    tr_index_writer *w;
    unsigned char *buf = NULL;
    size_t bcap = 0;
    if (tr_index_writer_begin(l->ix, &w, &err) < 0) {
        fprintf(stderr, "writer: %s\n", err.msg);
        l->rc = 1;
        return NULL;
    }
    for (size_t i = l->index; i < l->nfiles; i += l->nlanes) {
        size_t n = read_into(l->files[i], &buf, &bcap);
        if (n == SIZE_MAX)
            continue;
        if (tr_index_writer_add(w, (uint32_t)(i + 1), buf, n, &err) < 0) {
            fprintf(stderr, "add: %s\n", err.msg);
            tr_index_writer_abort(w);
            free(buf);
            l->rc = 1;
            return NULL;
        }
    }
    free(buf);
    if (tr_index_writer_commit(w, &err) < 0) {
        fprintf(stderr, "commit: %s\n", err.msg);
        l->rc = 1;
    }
    return NULL;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: index_bench INDEXDIR KINDS(gram3,text4,wide4) < files\n");
        return 2;
    }
    const char *dir = argv[1];
    tr_index_opts o = {0};
    if (strstr(argv[2], "gram3"))
        o.kinds |= TR_KIND_BIT(TR_GRAM3);
    if (strstr(argv[2], "text4"))
        o.kinds |= TR_KIND_BIT(TR_TEXT4);
    if (strstr(argv[2], "wide4"))
        o.kinds |= TR_KIND_BIT(TR_WIDE4);
    char **files = NULL;
    size_t nfiles = 0, cap = 0;
    char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        if (!*line)
            continue;
        if (nfiles == cap) {
            cap = cap ? 2 * cap : 1024;
            files = tr_xrealloc(files, cap * sizeof *files);
        }
        files[nfiles++] = tr_xstrdup(line);
    }
    /* One writer uses every core (its flush runs on worker threads), as
     * trawl's ingest does. WRITERS=N (default 1) interleaves the files
     * between N writers sharing the default memory bound, for comparison. */
    long nlanes = getenv("WRITERS") ? atol(getenv("WRITERS")) : 1;
    if (nlanes < 1 || nlanes > 16)
        nlanes = 1;
    /* CHUNK_MPAIRS: the writers' memory bound in M pairs (default: the index's). */
    size_t mpairs = getenv("CHUNK_MPAIRS") ? (size_t)atol(getenv("CHUNK_MPAIRS")) : 0;
    o.chunk_pairs = (mpairs ? mpairs << 20 : (size_t)40 << 20) / (size_t)nlanes;
    tr_error err;
    tr_index *ix;
    if (tr_index_open_opts(dir, &o, &ix, &err) < 0) {
        fprintf(stderr, "open: %s\n", err.msg);
        return 1;
    }
    unsigned char *buf = NULL;
    size_t bcap = 0;

    /* Ceiling 1: page-cache read speed (files were read once by the caller's warm-up). */
    double t0 = now();
    uint64_t corpus = 0;
    for (size_t i = 0; i < nfiles; i++) {
        size_t n = read_into(files[i], &buf, &bcap);
        if (n != SIZE_MAX)
            corpus += n;
    }
    double t_read = now() - t0;

    t0 = now();
    double c0 = cpu_seconds();
    lane lanes[16];
    pthread_t th[16];
    for (long k = 0; k < nlanes; k++) {
        lanes[k] = (lane){ix, files, nfiles, (size_t)k, (size_t)nlanes, 0};
        if (pthread_create(&th[k], NULL, lane_main, &lanes[k]) != 0)
            return 1;
    }
    for (long k = 0; k < nlanes; k++) {
        pthread_join(th[k], NULL);
        if (lanes[k].rc)
            return 1;
    }
    double t_index = now() - t0, c_index = cpu_seconds() - c0;
    free(buf);
    tr_index_status st0;
    tr_index_get_status(ix, &st0, &err);
    double rss_index = peak_rss_mb();
    if (getenv("INDEX_ONLY")) {   /* profiling the writer alone */
        double mb = corpus / 1e6;
        printf("indexing (%ld writers): %.1f s wall, %.1f s CPU: %.1f MB/s, %.1f MB per CPU-second; "
               "%zu segments; peak RSS %.0f MB\n", nlanes, t_index, c_index, mb / t_index, mb / c_index,
               st0.segments, rss_index);
        tr_index_close(ix);
        return 0;
    }
    t0 = now();
    c0 = cpu_seconds();
    if (tr_index_compact(ix, &err) < 0) {
        fprintf(stderr, "compact: %s\n", err.msg);
        return 1;
    }
    double t_compact = now() - t0, c_compact = cpu_seconds() - c0;
    double rss = peak_rss_mb();   /* before the memory probe below inflates it */
    /* Ceiling 2: memory read speed over a 512 MiB buffer. */
    size_t mlen = (size_t)512 << 20;
    uint64_t *mem = tr_xmalloc(mlen);
    memset(mem, 1, mlen);
    t0 = now();
    uint64_t acc = 0;
    for (int rep = 0; rep < 4; rep++)
        for (size_t i = 0; i < mlen / 8; i += 4)
            acc += mem[i] ^ mem[i + 1] ^ mem[i + 2] ^ mem[i + 3];
    double t_mem = (now() - t0) / 4;
    free(mem);

    tr_index_status st;
    tr_index_get_status(ix, &st, &err);
    double mb = corpus / 1e6;
    printf("corpus: %zu files, %.1f MB\n", nfiles, mb);
    printf("ceiling: page-cache read %.0f MB/s, memory read %.0f MB/s (acc %llu)\n", mb / t_read,
           mlen / 1e6 / t_mem, (unsigned long long)(acc & 1));
    printf("indexing (%ld writers): %.1f s wall, %.1f s CPU: %.1f MB/s (ursadb %.1f MB/s: x%.1f), %.1f MB per CPU-second; "
           "%zu segments before merge\n",
           nlanes, t_index, c_index, mb / t_index, URSA_MBS, mb / t_index / URSA_MBS, mb / c_index, st0.segments);
    printf("compaction: %.1f s wall, %.1f s CPU\n", t_compact, c_compact);
    printf("peak RSS: %.0f MB after indexing, %.0f MB after compaction incl. mapped segment pages "
           "(ursadb %.0f MB)\n", rss_index, rss, URSA_RSS_MB);
    printf("size: total %.1f MB = %.1f%% of corpus (ursadb %.0f%%: x%.1f smaller)\n", st.bytes_total / 1e6,
           100.0 * st.bytes_total / corpus, URSA_PCT, URSA_PCT / (100.0 * st.bytes_total / corpus));
    for (int k = 0; k < TR_GRAM_KINDS; k++)
        if (st.kind_keys[k])
            printf("  %-6s %8.1f MB %5.1f%%  keys %9llu  postings %11llu  %.2f bytes/posting\n",
                   tr_gram_kind_name(k), st.kind_bytes[k] / 1e6, 100.0 * st.kind_bytes[k] / corpus,
                   (unsigned long long)st.kind_keys[k], (unsigned long long)st.postings[k],
                   st.postings[k] ? (double)st.kind_bytes[k] / st.postings[k] : 0);
    tr_index_codec_report r;
    if (tr_index_codec_compare(ix, &r, &err) == 0) {
        printf("codecs over %llu lists / %llu postings (lists only, %% of corpus):\n",
               (unsigned long long)r.lists, (unsigned long long)r.postings);
        printf("  varint (ursadb) %6.1f%%\n  roaring         %6.1f%%\n  pack128         %6.1f%%\n"
               "  bitmap          %6.1f%%\n  adaptive (kept) %6.1f%%\n  Elias-Fano/bitmap floor %6.1f%%\n",
               100.0 * r.varint / corpus, 100.0 * r.roaring / corpus, 100.0 * r.pack / corpus,
               100.0 * r.bitmap / corpus, 100.0 * r.adaptive / corpus, 100.0 * r.elias_fano / corpus);
    }

    bq qs[] = {
        {"literal8 \"kernel32\"", lit("kernel32")},
        {"literal8 \"GetTickC\"", lit("GetTickC")},
        {"literal \"This program cannot be run\"", lit("This program cannot be run")},
        {"literal \"http://\"", lit("http://")},
        {"hex {4D 5A ?? ?? 50 45}", hex("4D5A????5045")},
        {"hex {E8 ?? ?? ?? ?? 5D C3}", hex("E8????????5DC3")},
        {"hex {6A 40 68 00 30 00 00}", hex("6A406800300000")},
        {"nocase \"createremotethread\"", nocase("createremotethread", false)},
        {"nocase \"virtualalloc\"", nocase("virtualalloc", false)},
        {"wide nocase \"kernel32\"", nocase("kernel32", true)},
        {"literal2 \"MZ\" (widens)", lit("MZ")},
    };
    printf("queries (warm, median of 7):\n");
    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) {
        double t[7];
        size_t n = 0;
        bool wide = false;
        uint64_t est = 0;
        for (int rep = 0; rep < 8; rep++) {
            uint32_t *ids;
            double a = now();
            if (tr_index_query(ix, qs[i].q, &ids, &n, &wide, &err) < 0) {
                fprintf(stderr, "query: %s\n", err.msg);
                return 1;
            }
            if (rep)
                t[rep - 1] = now() - a;
            free(ids);
        }
        tr_index_estimate(ix, qs[i].q, &est, &err);
        qsort(t, 7, sizeof *t, cmp_d);
        printf("  %-40s %7.2f ms  %6zu candidates (%.1f%%)  estimate %llu%s\n", qs[i].name, t[3] * 1e3, n,
               100.0 * n / (nfiles ? nfiles : 1), (unsigned long long)est, wide ? "  WIDENED" : "");
        tr_query_free(qs[i].q);
    }
    tr_index_close(ix);
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    return 0;
}
