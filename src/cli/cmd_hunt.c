/* trawl hunt / hunts / results / rules: retrohunt and livehunt from the shell. */
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "core/core.h"
#include "hunt/hunt.h"

static void print_json_line(const json_t *o, bool pretty)
{
    char *s = json_dumps(o, pretty ? JSON_INDENT(2) : JSON_COMPACT);
    if (s) {
        puts(s);
        free(s);
    }
}

static bool parse_count(const char *s, int64_t *out)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < 0)
        return false;
    *out = v;
    return true;
}

static void human_bytes(uint64_t b, char *out, size_t n)
{
    if (b >= (uint64_t)1 << 30)
        snprintf(out, n, "%.1f GB", (double)b / (1 << 30));
    else if (b >= (uint64_t)1 << 20)
        snprintf(out, n, "%.1f MB", (double)b / (1 << 20));
    else if (b >= 1024)
        snprintf(out, n, "%.1f KB", (double)b / 1024);
    else
        snprintf(out, n, "%llu B", (unsigned long long)b);
}

/* ---- trawl hunt ---------------------------------------------------------------- */

/* The SIGINT handler's only way to reach the running hunt. */
static _Atomic(tr_hunt *) running_hunt;

static void on_sigint(int sig)
{
    (void)sig;
    tr_hunt *h = atomic_load(&running_hunt);
    if (h)
        tr_hunt_cancel(h);
}

typedef struct hunt_out {
    bool json, quiet, tty;
    bool progress_shown;
} hunt_out;

static void clear_progress(hunt_out *o)
{
    if (o->progress_shown) {
        fputs("\r\033[K", stderr);
        o->progress_shown = false;
    }
}

static void cb_notice(void *arg, const char *msg)
{
    hunt_out *o = arg;
    if (o->quiet)
        return;
    clear_progress(o);
    fprintf(stderr, "trawl: %s\n", msg);
}

static void cb_match(void *arg, const tr_hunt_match *m)
{
    hunt_out *o = arg;
    clear_progress(o);
    if (o->json)
        print_json_line(m->json, false);
    else
        printf("%s %s\n", m->rule, m->sha256);
    fflush(stdout);
}

static void cb_progress(void *arg, const tr_hunt_progress *p)
{
    hunt_out *o = arg;
    if (!o->tty || o->quiet || !p->scanning)
        return;
    double rate = p->elapsed > 0 ? (double)p->scanned_bytes / p->elapsed : 0;
    char eta[32] = "?";
    if (rate > 0 && p->candidate_bytes >= p->scanned_bytes)
        snprintf(eta, sizeof eta, "%.0f s", (double)(p->candidate_bytes - p->scanned_bytes) / rate);
    fprintf(stderr, "\r\033[Kcandidates %llu, scanned %llu (%.0f%%), matched %llu, %.1f MB/s, ETA %s",
            (unsigned long long)p->candidates, (unsigned long long)p->scanned,
            p->candidates ? 100.0 * (double)p->scanned / (double)p->candidates : 100.0,
            (unsigned long long)p->matches, rate / 1e6, eta);
    o->progress_shown = true;
}

static void hunt_usage(FILE *f)
{
    fprintf(f,
            "usage: trawl hunt [--json] [--limit N] [--tag T] [--threads N] [--timeout SEC]\n"
            "                  [--time-limit SEC] [--detach] [--quiet] RULES.yar...\n"
            "Finds the stored samples matching YARA rules: the index narrows the candidates,\n"
            "libyara verifies each one. Prints 'RULE SHA256' per match (--json: one object per\n"
            "match with meta, hashes, names and matched strings). Every hunt is kept as a job\n"
            "('trawl hunts', 'trawl results ID'). --limit stops after N matches, --tag only\n"
            "looks at samples with that tag, --timeout bounds libyara per sample (60 s),\n"
            "--time-limit the whole hunt. --detach queues the job for the server.\n"
            "Externals filename, filepath, extension, filetype and owner are set per sample.\n");
}

static int read_sources(char **paths, int n, tr_hunt_source *src, char **texts)
{
    for (int i = 0; i < n; i++) {
        tr_error err;
        size_t len = 0;
        if (tr_read_file(paths[i], &texts[i], &len, &err) != 0) {
            cli_error("%s", err.msg);
            return -1;
        }
        src[i] = (tr_hunt_source){paths[i], texts[i], len};
    }
    return 0;
}

int cli_cmd_hunt(const cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},       {"limit", required_argument, NULL, 'n'},
        {"tag", required_argument, NULL, 't'},  {"threads", required_argument, NULL, 'p'},
        {"timeout", required_argument, NULL, 'T'},
        {"time-limit", required_argument, NULL, 'L'},
        {"detach", no_argument, NULL, 'd'},     {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},       {0, 0, 0, 0}};
    tr_hunt_params p = {0};
    hunt_out out = {.tty = ctx->stderr_tty};
    bool detach = false;
    int c;
    int64_t v;
    optind = 0;
    while ((c = getopt_long(argc, argv, "jn:t:p:T:L:dqh", opts, NULL)) != -1) {
        switch (c) {
        case 'j': out.json = true; break;
        case 't': p.tag = optarg; break;
        case 'd': detach = true; break;
        case 'q': out.quiet = true; break;
        case 'n':
        case 'p':
        case 'T':
        case 'L':
            if (!parse_count(optarg, &v)) {
                cli_error("hunt: --%s needs a number >= 0",
                          c == 'n' ? "limit" : c == 'p' ? "threads" : c == 'T' ? "timeout"
                                                                                : "time-limit");
                return CLI_USAGE;
            }
            if (c == 'n')
                p.limit = v;
            else if (c == 'p')
                p.threads = (size_t)v;
            else if (c == 'T')
                p.sample_timeout = (int)(v > 3600 ? 3600 : v);
            else
                p.time_limit = (double)v;
            break;
        case 'h': hunt_usage(stdout); return CLI_OK;
        default: hunt_usage(stderr); return CLI_USAGE;
        }
    }
    if (optind >= argc) {
        cli_error("hunt needs at least one rule file");
        hunt_usage(stderr);
        return CLI_USAGE;
    }
    int nsrc = argc - optind;
    tr_hunt_source *src = tr_xcalloc((size_t)nsrc, sizeof *src);
    char **texts = tr_xcalloc((size_t)nsrc, sizeof *texts);
    int rc = CLI_FAIL;
    tr_hunt *h = NULL;
    if (read_sources(argv + optind, nsrc, src, texts) != 0)
        goto out;
    p.sources = src;
    p.nsources = (size_t)nsrc;
    p.allow_includes = true;    /* files the local user named */
    tr_error err;
    int64_t id;
    if (tr_hunt_submit(ctx->data_dir, &p, &id, &err) != 0) {
        cli_error("%s", err.msg);
        goto out;
    }
    if (detach) {
        printf("%lld\n", (long long)id);
        fprintf(stderr, "trawl: hunt %lld queued; a running 'trawl serve' picks it up "
                        "('trawl results %lld' shows it)\n",
                (long long)id, (long long)id);
        rc = CLI_OK;
        goto out;
    }
    if (tr_hunt_open(ctx->data_dir, id, &h, &err) != 0) {
        cli_error("%s", err.msg);
        goto out;
    }
    tr_hunt_callbacks cb = {.arg = &out, .on_notice = cb_notice, .on_match = cb_match,
                            .on_progress = cb_progress};
    tr_hunt_set_callbacks(h, &cb);
    atomic_store(&running_hunt, h);
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int hrc = tr_hunt_run(h, &err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    atomic_store(&running_hunt, NULL);
    clear_progress(&out);
    tr_hunt_job job;
    if (tr_hunt_get(ctx->data_dir, id, &job, &err) == 1) {
        char sb[32], fb[32];
        human_bytes(job.scanned_bytes, sb, sizeof sb);
        tr_hunt_progress pr;
        tr_hunt_get_progress(h, &pr);
        human_bytes(pr.sample_bytes, fb, sizeof fb);
        if (!out.quiet || job.status == TR_HUNT_FAILED)
            fprintf(stderr,
                    "hunt %lld %s: %llu candidates, %llu scanned (%s), %llu matches, %.2f s; "
                    "a full scan would read %llu files (%s)%s%s\n",
                    (long long)id, tr_hunt_status_name(job.status),
                    (unsigned long long)job.candidates, (unsigned long long)job.scanned, sb,
                    (unsigned long long)job.matches, job.seconds,
                    (unsigned long long)job.samples, fb, job.error ? "; " : "",
                    job.error ? job.error : "");
        if (job.errors)
            fprintf(stderr, "trawl: %llu samples could not be verified (see above)\n",
                    (unsigned long long)job.errors);
        bool interrupted = job.status == TR_HUNT_CANCELLED && job.error &&
                           strcmp(job.error, "cancelled") == 0;
        rc = hrc == 0 && !interrupted ? CLI_OK : CLI_FAIL;
        tr_hunt_job_clear(&job);
    } else if (hrc != 0) {
        cli_error("%s", err.msg);
    }
out:
    tr_hunt_free(h);
    for (int i = 0; i < nsrc; i++)
        free(texts[i]);
    free(texts);
    free(src);
    return rc;
}

/* ---- trawl hunts / results ---------------------------------------------------- */

int cli_cmd_hunts(const cli_ctx *ctx, int argc, char **argv)
{
    bool json = false;
    int opt = cli_json_options(argc, argv, "usage: trawl hunts [--json]\nLists hunt jobs, newest first.\n", &json);
    if (opt >= 0)
        return opt;
    if (optind < argc) {
        cli_error("hunts takes no arguments (did you mean 'trawl results %s'?)", argv[optind]);
        return CLI_USAGE;
    }
    tr_hunt_job *jobs;
    size_t n;
    tr_error err;
    if (tr_hunt_list(ctx->data_dir, &jobs, &n, &err) != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, tr_hunt_job_json(&jobs[i]));
        print_json_line(arr, true);
        json_decref(arr);
    } else {
        if (n)
            printf("%-5s %-9s %-19s %8s %12s %8s  %s\n", "ID", "STATUS", "CREATED", "SECONDS",
                   "CANDIDATES", "MATCHES", "RULES");
        for (size_t i = 0; i < n; i++) {
            char t[32];
            tr_format_time(jobs[i].created, t);
            printf("%-5lld %-9s %-19s %8.2f %12llu %8llu  %s\n", (long long)jobs[i].id,
                   tr_hunt_status_name(jobs[i].status), t, jobs[i].seconds,
                   (unsigned long long)jobs[i].candidates, (unsigned long long)jobs[i].matches,
                   jobs[i].rules_name ? jobs[i].rules_name : "");
        }
    }
    tr_hunt_list_free(jobs, n);
    return CLI_OK;
}

int cli_cmd_results(const cli_ctx *ctx, int argc, char **argv)
{
    bool json = false;
    int opt = cli_json_options(argc, argv, "usage: trawl results [--json] ID\nShows one hunt job and its matches.\n", &json);
    if (opt >= 0)
        return opt;
    int64_t id;
    if (optind + 1 != argc || !parse_count(argv[optind], &id)) {
        cli_error("results needs one hunt id ('trawl hunts' lists them)");
        return CLI_USAGE;
    }
    tr_hunt_job job;
    tr_error err;
    int g = tr_hunt_get(ctx->data_dir, id, &job, &err);
    if (g <= 0) {
        if (g == 0)
            cli_error("no hunt %lld", (long long)id);
        else
            cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    json_t *res = NULL;
    if (tr_hunt_results(ctx->data_dir, id, &res, &err) != 0) {
        cli_error("%s", err.msg);
        tr_hunt_job_clear(&job);
        return CLI_FAIL;
    }
    if (json) {
        json_t *o = tr_hunt_job_json(&job);
        json_t *rules = tr_hunt_rules_json(ctx->data_dir, id, &err);
        json_object_set_new(o, "rule_files", rules ? rules : json_null());
        json_object_set_new(o, "results", res);
        print_json_line(o, true);
        json_decref(o);
    } else {
        char t[32];
        tr_format_time(job.created, t);
        printf("hunt %lld: %s, created %s, %.2f s, rules %s\n", (long long)job.id,
               tr_hunt_status_name(job.status), t, job.seconds,
               job.rules_name ? job.rules_name : "");
        printf("  %llu candidates of %llu samples, %llu scanned, %llu matches, %llu errors, "
               "%llu rules not accelerated\n",
               (unsigned long long)job.candidates, (unsigned long long)job.samples,
               (unsigned long long)job.scanned, (unsigned long long)job.matches,
               (unsigned long long)job.errors, (unsigned long long)job.full_scan_rules);
        if (job.error)
            printf("  note: %s\n", job.error);
        size_t i;
        json_t *m;
        json_array_foreach(res, i, m)
        {
            printf("%s %s\n", json_string_value(json_object_get(m, "rule")),
                   json_string_value(json_object_get(json_object_get(m, "sample"), "sha256")));
        }
        json_decref(res);
    }
    tr_hunt_job_clear(&job);
    return CLI_OK;
}

/* ---- trawl rules ------------------------------------------------------------------ */

static void rules_usage(FILE *f)
{
    fprintf(f, "usage: trawl rules add [--retro] [--replace] NAME FILE\n"
               "       trawl rules ls [--json]\n"
               "       trawl rules rm NAME\n"
               "       trawl rules enable|disable NAME\n"
               "       trawl rules hits [--json] [--limit N] NAME\n"
               "Saved (live) rule sets: every sample added from now on is scanned against the\n"
               "enabled ones and its hits are stored with it ('trawl info' shows them).\n"
               "--retro also hunts the new rule set over the samples already stored.\n");
}

static int rules_add(const cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"retro", no_argument, NULL, 'r'},
                                         {"replace", no_argument, NULL, 'R'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0, 0, 0, 0}};
    bool retro = false, replace = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "rRh", opts, NULL)) != -1) {
        if (c == 'r')
            retro = true;
        else if (c == 'R')
            replace = true;
        else if (c == 'h') {
            rules_usage(stdout);
            return CLI_OK;
        } else
            return CLI_USAGE;
    }
    if (argc - optind != 2) {
        cli_error("rules add needs NAME and FILE");
        return CLI_USAGE;
    }
    const char *name = argv[optind], *path = argv[optind + 1];
    char *text = NULL;
    size_t len = 0;
    tr_error err;
    if (tr_read_file(path, &text, &len, &err) != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    if (tr_live_add(ctx->data_dir, name, path, text, len, true, replace, &err) != 0) {
        cli_error("%s", err.msg);
        free(text);
        return CLI_FAIL;
    }
    printf("rule set %s saved and enabled\n", name);
    int rc = CLI_OK;
    if (retro) {
        tr_hunt_source src = {path, text, len};
        tr_hunt_params p = {.sources = &src, .nsources = 1, .live_ruleset = name,
                            .allow_includes = true};
        int64_t id;
        tr_hunt *h = NULL;
        hunt_out out = {.tty = ctx->stderr_tty, .quiet = true};
        if (tr_hunt_submit(ctx->data_dir, &p, &id, &err) != 0 ||
            tr_hunt_open(ctx->data_dir, id, &h, &err) != 0) {
            cli_error("%s", err.msg);
            free(text);
            return CLI_FAIL;
        }
        tr_hunt_callbacks cb = {.arg = &out, .on_match = cb_match, .on_progress = cb_progress};
        tr_hunt_set_callbacks(h, &cb);
        atomic_store(&running_hunt, h);
        struct sigaction sa = {0}, old;
        sa.sa_handler = on_sigint;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old);
        if (tr_hunt_run(h, &err) != 0) {
            cli_error("retrohunt: %s", err.msg);
            rc = CLI_FAIL;
        }
        sigaction(SIGINT, &old, NULL);
        atomic_store(&running_hunt, NULL);
        clear_progress(&out);
        tr_hunt_progress pr;
        tr_hunt_get_progress(h, &pr);
        fprintf(stderr, "retrohunt %lld: %llu matches in %llu candidates of %llu samples\n",
                (long long)id, (unsigned long long)pr.matches,
                (unsigned long long)pr.candidates, (unsigned long long)pr.samples);
        tr_hunt_free(h);
    }
    free(text);
    return rc;
}

static int rules_ls(const cli_ctx *ctx, int argc, char **argv)
{
    bool json = argc > 1 && strcmp(argv[1], "--json") == 0;
    if (argc > (json ? 2 : 1)) {
        cli_error("rules ls takes only --json");
        return CLI_USAGE;
    }
    tr_live_ruleset *l;
    size_t n;
    tr_error err;
    if (tr_live_list(ctx->data_dir, &l, &n, &err) != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    json_t *arr = json ? json_array() : NULL;
    if (!json && n)
        printf("%-24s %-8s %6s %8s  %s\n", "NAME", "STATE", "RULES", "HITS", "ADDED");
    for (size_t i = 0; i < n; i++) {
        char t[32];
        tr_format_time(l[i].created, t);
        if (json) {
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(l[i].name));
            json_object_set_new(o, "enabled", json_boolean(l[i].enabled));
            json_object_set_new(o, "rules", json_integer((json_int_t)l[i].rules));
            json_object_set_new(o, "hits", json_integer((json_int_t)l[i].hits));
            json_object_set_new(o, "created", json_string(t));
            json_t *failure = json_null();
            if (l[i].failure) {
                char ft[32];
                tr_format_time(l[i].failed_at, ft);
                failure = json_pack("{s:s, s:s}", "time", ft, "message", l[i].failure);
            }
            json_object_set_new(o, "last_failure", failure ? failure : json_null());
            json_array_append_new(arr, o);
        } else {
            printf("%-24s %-8s %6zu %8llu  %s\n", l[i].name, l[i].enabled ? "enabled" : "disabled",
                   l[i].rules, (unsigned long long)l[i].hits, t);
            if (l[i].failure) {
                char ft[32];
                tr_format_time(l[i].failed_at, ft);
                printf("  last failure %s: %s\n", ft, l[i].failure);
            }
        }
    }
    if (json) {
        print_json_line(arr, true);
        json_decref(arr);
    }
    tr_live_list_free(l, n);
    return CLI_OK;
}

static int rules_hits(const cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"limit", required_argument, NULL, 'n'},
                                         {0, 0, 0, 0}};
    bool json = false;
    int64_t limit = 0;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "jn:", opts, NULL)) != -1) {
        if (c == 'j') {
            json = true;
        } else if (c == 'n') {
            if (!parse_count(optarg, &limit)) {
                cli_error("rules hits: --limit needs a number >= 0");
                return CLI_USAGE;
            }
        } else {
            return CLI_USAGE;
        }
    }
    if (argc - optind != 1) {
        cli_error("rules hits needs a rule set NAME");
        return CLI_USAGE;
    }
    tr_live_hit *h;
    size_t n;
    tr_error err;
    char *text = NULL;
    int g = tr_live_get_text(ctx->data_dir, argv[optind], &text, &err);
    free(text);
    if (g <= 0) {
        cli_error("%s", g == 0 ? "no such rule set ('trawl rules ls' lists them)" : err.msg);
        return CLI_FAIL;
    }
    if (tr_live_hits_for_ruleset(ctx->data_dir, argv[optind], limit, &h, &n, &err) != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    json_t *arr = json ? json_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        char t[32];
        tr_format_time(h[i].created, t);
        if (json) {
            json_t *o = json_object();
            json_object_set_new(o, "rule_name", json_string(h[i].rule));
            json_object_set_new(o, "sha256", json_string(h[i].sha256));
            json_object_set_new(o, "author", h[i].author ? json_string(h[i].author) : json_null());
            json_object_set_new(o, "description",
                                h[i].description ? json_string(h[i].description) : json_null());
            json_object_set_new(o, "reference",
                                h[i].reference ? json_string(h[i].reference) : json_null());
            json_object_set_new(o, "created", json_string(t));
            json_array_append_new(arr, o);
        } else {
            printf("%s %s %s\n", h[i].rule, h[i].sha256, t);
        }
    }
    if (json) {
        print_json_line(arr, true);
        json_decref(arr);
    }
    tr_live_hits_free(h, n);
    return CLI_OK;
}

int cli_cmd_rules(const cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2) {
        rules_usage(stderr);
        return CLI_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        rules_usage(stdout);
        return CLI_OK;
    }
    if (strcmp(sub, "add") == 0)
        return rules_add(ctx, argc - 1, argv + 1);
    if (strcmp(sub, "ls") == 0)
        return rules_ls(ctx, argc - 1, argv + 1);
    if (strcmp(sub, "hits") == 0)
        return rules_hits(ctx, argc - 1, argv + 1);
    if (strcmp(sub, "rm") == 0 || strcmp(sub, "enable") == 0 || strcmp(sub, "disable") == 0) {
        if (argc != 3) {
            cli_error("rules %s needs a rule set NAME", sub);
            return CLI_USAGE;
        }
        tr_error err;
        int r = strcmp(sub, "rm") == 0
                    ? tr_live_remove(ctx->data_dir, argv[2], &err)
                    : tr_live_enable(ctx->data_dir, argv[2], strcmp(sub, "enable") == 0, &err);
        if (r < 0) {
            cli_error("%s", err.msg);
            return CLI_FAIL;
        }
        if (r == 0) {
            cli_error("no rule set named %s ('trawl rules ls' lists them)", argv[2]);
            return CLI_FAIL;
        }
        return CLI_OK;
    }
    cli_error("rules: unknown subcommand '%s'", sub);
    rules_usage(stderr);
    return CLI_USAGE;
}
