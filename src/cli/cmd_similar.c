/* trawl similar: the nearest stored samples by tlsh, ssdeep, imphash or
 * telfhash; --rebuild rebuilds the indexes; --bench measures them. */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"
#include "similar/similar.h"
#include "store/store.h"

static const char usage_text[] =
    "usage: trawl similar [--by KIND] [--max N] [--json] HASH\n"
    "       trawl similar --rebuild [--by KIND]\n"
    "       trawl similar --bench QUERIES [--by KIND] [--k K] [--effort E] [--slack S]\n"
    "The stored samples nearest to the sample HASH (md5, sha1 or sha256), nearest first.\n"
    "KIND: tlsh (default; TLSH distance, lower is closer), ssdeep (score 1-100, higher\n"
    "is closer), imphash (equal import hash), telfhash (TLSH distance of ELF symbols).\n"
    "  --max N        at most N samples (default 10)\n"
    "  --rebuild      rebuild the similarity indexes (all kinds, or --by KIND)\n"
    "  --bench Q      Q queries drawn from the store: the index's k nearest against\n"
    "                 brute force's (recall, median latencies, speed ratio)\n";

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Recall with ties: an index answer counts when it is as near as brute
 * force's k-th, so equal distances do not count as misses. */
static double recall_of(bool score, const tr_similar_hit *ref, size_t nref,
                        const tr_similar_hit *got, size_t ngot)
{
    if (nref == 0)
        return 1.0;
    int kth = ref[nref - 1].distance;
    size_t ok = 0;
    for (size_t i = 0; i < ngot; i++)
        if (score ? got[i].distance >= kth : got[i].distance <= kth)
            ok++;
    return (double)(ok < nref ? ok : nref) / (double)nref;
}

static int run_bench(tr_store *s, size_t kind, size_t queries, size_t k, int slack, int effort)
{
    tr_simix *ix = NULL;
    tr_error err;
    double t0 = tr_monotonic();
    if (tr_simix_open(s, kind, &ix, &err) != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    double open_s = tr_monotonic() - t0;
    if (slack > -100001)
        tr_simix_set_slack(ix, slack);
    if (effort >= 0)
        tr_simix_set_effort(ix, effort);
    size_t n = tr_simix_size(ix);
    if (n < 2) {
        cli_error("the %s index holds %zu samples: nothing to measure", tr_similar_kind_name(kind), n);
        tr_simix_close(ix);
        return CLI_FAIL;
    }
    tr_similar_hit *ref = tr_xcalloc(k, sizeof *ref), *got = tr_xcalloc(k, sizeof *got);
    double *ti = tr_xcalloc(queries, sizeof *ti), *tb = tr_xcalloc(queries, sizeof *tb);
    double *kth = tr_xcalloc(queries, sizeof *kth);
    double recall_sum = 0, recall_min = 1, work = 0;
    bool score = tr_similar_kind_is_score(kind);
    uint64_t rng = 0x2545f4914f6cdd1dULL;
    for (size_t q = 0; q < queries; q++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t pick = (size_t)((rng >> 33) % n);
        const char *v0;
        int64_t id = tr_simix_entry(ix, pick, &v0);
        char value[TR_SSDEEP_MAX];
        snprintf(value, sizeof value, "%s", v0);
        double a = tr_monotonic();
        size_t ng = tr_simix_knn(ix, value, k, id, got);
        double b = tr_monotonic();
        work += (double)tr_simix_last_work(ix);
        size_t nr = tr_simix_brute(ix, value, k, id, ref);
        double c = tr_monotonic();
        ti[q] = b - a;
        kth[q] = nr ? ref[nr - 1].distance : 0;
        tb[q] = c - b;
        double r = recall_of(score, ref, nr, got, ng);
        recall_sum += r;
        if (r < recall_min)
            recall_min = r;
    }
    double p50i = median(ti, queries), p50b = median(tb, queries);
    printf("kind=%s entries=%zu queries=%zu k=%zu open_s=%.3f recall_mean=%.4f recall_min=%.2f "
           "p50_index_us=%.1f p50_brute_us=%.1f speedup=%.1f mean_compares=%.0f p50_kth=%.0f\n",
           tr_similar_kind_name(kind), n, queries, k, open_s, recall_sum / (double)queries,
           recall_min, p50i * 1e6, p50b * 1e6, p50i > 0 ? p50b / p50i : 0.0,
           work / (double)queries, median(kth, queries));
    free(ref);
    free(got);
    free(ti);
    free(tb);
    free(kth);
    tr_simix_close(ix);
    return CLI_OK;
}

static void print_text(const json_t *ans)
{
    const char *metric = json_string_value(json_object_get(ans, "metric"));
    const char *by = json_string_value(json_object_get(ans, "by"));
    const json_t *res = json_object_get(ans, "results");
    if (json_array_size(res) == 0) {
        printf("no similar samples by %s\n", by);
        return;
    }
    printf("%-8s  %-64s  %-8s  %10s  %s\n", metric, "sha256", "type", "size", "name");
    size_t i;
    const json_t *o;
    json_array_foreach(res, i, o) {
        const char *name = json_string_value(json_object_get(o, "file_name"));
        printf("%-8lld  %-64s  %-8s  %10lld  %s\n",
               (long long)json_integer_value(json_object_get(o, metric)),
               json_string_value(json_object_get(o, "sha256_hash")),
               json_string_value(json_object_get(o, "file_type")),
               (long long)json_integer_value(json_object_get(o, "file_size")), name ? name : "-");
    }
}

int cli_cmd_similar(const cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"by", required_argument, NULL, 'b'},    {"max", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},        {"rebuild", no_argument, NULL, 'r'},
        {"bench", required_argument, NULL, 'B'}, {"k", required_argument, NULL, 'k'},
        {"slack", required_argument, NULL, 's'}, {"effort", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0}};
    const char *by = "tlsh";
    long max = 10, bench = 0, k = 10, slack = -100001, effort = -1;
    bool json = false, rebuild = false, by_given = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "b:n:jh", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'b':
            by = optarg;
            by_given = true;
            break;
        case 'n':
        case 'B':
        case 'k':
        case 'e':
        case 's': {
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < (c == 's' ? -100000 : 0) || v > 100000) {
                cli_error("--%s needs a number from 0 to 100000",
                          c == 'n' ? "max" : c == 'B' ? "bench" : c == 'k' ? "k" : c == 'e' ? "effort" : "slack");
                return CLI_USAGE;
            }
            *(c == 'n' ? &max : c == 'B' ? &bench : c == 'k' ? &k : c == 'e' ? &effort : &slack) = v;
            break;
        }
        case 'j':
            json = true;
            break;
        case 'r':
            rebuild = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return CLI_OK;
        default:
            return CLI_USAGE;
        }
    }
    int kind = tr_similar_kind_find(by);
    if (kind < 0) {
        cli_error("--by %s: not one of tlsh, ssdeep, imphash, telfhash", by);
        return CLI_USAGE;
    }
    bool wants_hash = !rebuild && !bench;
    if (wants_hash ? optind != argc - 1 : optind != argc) {
        fputs(usage_text, stderr);
        return CLI_USAGE;
    }
    tr_store *s = NULL;
    tr_error err;
    if (tr_store_open(ctx->data_dir, rebuild ? 0 : TR_STORE_READONLY, &s, &err) != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    int status = CLI_OK;
    if (rebuild) {
        if (tr_similar_rebuild(s, by_given ? (size_t)kind : SIZE_MAX, &err) != 0) {
            cli_error("%s", err.msg);
            status = CLI_FAIL;
        }
    } else if (bench) {
        status = k < 1 ? (cli_error("--k must be at least 1"), CLI_USAGE)
                       : run_bench(s, (size_t)kind, (size_t)bench, (size_t)k, (int)slack, (int)effort);
    } else {
        char norm[TR_SHA256_HEX];
        tr_sample *x = NULL;
        int found = 0;
        if (!tr_hash_normalize(argv[optind], norm, sizeof norm)) {
            cli_error("'%s' is not an md5, sha1 or sha256 hash (32, 40 or 64 hex digits)",
                      argv[optind]);
            status = CLI_USAGE;
        } else if ((found = tr_store_get(s, norm, &x, &err)) <= 0) {
            if (found < 0)
                cli_error("%s", err.msg);
            else
                cli_error("no sample with hash %s", norm);
            status = CLI_FAIL;
        } else {
            json_t *ans = tr_similar_answer(s, (size_t)kind, x, (size_t)max, &err);
            if (!ans) {
                cli_error("%s", err.msg);
                status = CLI_FAIL;
            } else if (json) {
                char *text = json_dumps(ans, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                if (!text)
                    tr_die("out of memory printing JSON");
                puts(text);
                free(text);
            } else {
                print_text(ans);
            }
            json_decref(ans);
        }
        tr_sample_free(x);
    }
    tr_store_close(s);
    return status;
}
