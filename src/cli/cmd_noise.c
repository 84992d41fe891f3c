/* trawl noise: the noise module's commands (import, ip, tags, tag, actor,
 * tor, retention, config). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "noise/noise.h"
#include "sensor/sensor.h"
#include "store/store.h"

static const char usage_text[] =
    "usage: trawl noise import [--format jsonl|pcap|cowrie] FILE...\n"
    "                                  store events: JSON lines, a capture (pcap or\n"
    "                                  pcapng), or a Cowrie JSON log\n"
    "       trawl noise ip IP [IP...] [--json]            the record of source addresses\n"
    "       trawl noise ip - [--json]                     ... one per line from stdin (JSON lines)\n"
    "       trawl noise events [--ip IP] [--tag NAME] [--limit N] [--json]   stored events\n"
    "       trawl noise tags [--json]                     tags with their IP counts\n"
    "       trawl noise tag add FILE...                   add or replace tags (YARA rules)\n"
    "       trawl noise tag rm NAME                       remove a tag\n"
    "       trawl noise tag test FILE [--limit N] [--json]  judge stored events, save nothing\n"
    "       trawl noise actor add NAME --cidr C [--cidr C2] [--rdns-suffix S] --benign|--malicious\n"
    "       trawl noise actor ls [--json] | actor rm NAME\n"
    "       trawl noise tor import FILE                   replace the Tor exit list\n"
    "       trawl noise retention [--days N] [--apply]    days of raw events kept (default 90)\n"
    "       trawl noise config KEY [VALUE]                mmdb, geoip, rdns, retention_days\n"
    "       trawl noise query 'GNQL' [--size N] [--scroll T] [--json]   IPs matching a GNQL query\n"
    "       trawl noise stats 'GNQL' [--count N] [--json] aggregates of the matching IPs\n"
    "       trawl noise riot import FILE                  replace the RIOT allow-list (CSV:\n"
    "                                  CIDR,name,category,trust_level[,description[,reference]])\n"
    "       trawl noise riot IP [--json]                  is an address on the RIOT list\n"
    "Adding a tag re-judges the stored events; new events are judged as they arrive.\n";

/* Commands that write make the data directory as `trawl add` would. */
static int open_noise(const cli_ctx *ctx, bool create, tr_noise **n)
{
    tr_error err;
    if (create) {
        tr_store *s = NULL;
        if (tr_store_open(ctx->data_dir, TR_STORE_CREATE, &s, &err) != 0) {
            cli_error("%s", err.msg);
            return CLI_FAIL;
        }
        tr_store_close(s);
    }
    if (tr_noise_open(ctx->data_dir, n, &err) != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    return CLI_OK;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s)
        puts(s);
    free(s);
}

static int import_jsonl(tr_noise_batch *b, const char *path, uint64_t *bad, tr_error *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f)
        return tr_fail_errno(err, "cannot open %s", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    uint64_t lineno = 0;
    int rc = 0;
    while (rc == 0 && (got = getline(&line, &cap, f)) > 0) {
        lineno++;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
            line[--got] = 0;
        if (got == 0)
            continue;
        json_error_t jerr;
        json_t *j = json_loadb(line, (size_t)got, 0, &jerr);
        tr_event e;
        tr_error e2;
        if (!j) {
            fprintf(stderr, "trawl: %s:%llu: invalid JSON: %s (column %d)\n", path,
                    (unsigned long long)lineno, jerr.text, jerr.column);
            (*bad)++;
            continue;
        }
        if (tr_event_from_json(j, &e, &e2) != 0) {
            fprintf(stderr, "trawl: %s:%llu: %s\n", path, (unsigned long long)lineno, e2.msg);
            (*bad)++;
            json_decref(j);
            continue;
        }
        json_decref(j);
        rc = tr_noise_batch_add(b, &e, err);
        tr_event_clear(&e);
    }
    free(line);
    if (f != stdin)
        fclose(f);
    return rc;
}

static int cmd_import(const cli_ctx *ctx, int argc, char **argv)
{
    const char *format = "jsonl";
    int first = 1;
    for (; first < argc && argv[first][0] == '-' && argv[first][1]; first++) {
        if (strcmp(argv[first], "--format") == 0 && first + 1 < argc)
            format = argv[++first];
        else if (strncmp(argv[first], "--format=", 9) == 0)
            format = argv[first] + 9;
        else {
            cli_error("unknown option %s; 'trawl noise --help'", argv[first]);
            return CLI_USAGE;
        }
    }
    if (first >= argc) {
        cli_error("noise import needs at least one FILE");
        return CLI_USAGE;
    }
    bool jsonl = strcmp(format, "jsonl") == 0, pcap = strcmp(format, "pcap") == 0,
         cowrie = strcmp(format, "cowrie") == 0;
    if (!jsonl && !pcap && !cowrie) {
        cli_error("unknown format '%s' (jsonl, pcap, cowrie)", format);
        return CLI_USAGE;
    }
    tr_noise *n = NULL;
    int st = open_noise(ctx, true, &n);
    if (st != CLI_OK)
        return st;
    tr_noise_batch *b = tr_noise_batch_new(n, 1000);
    tr_error err;
    uint64_t bad = 0;
    int rc = 0;
    for (int i = first; i < argc && rc == 0; i++) {
        if (jsonl) {
            rc = import_jsonl(b, argv[i], &bad, &err);
            continue;
        }
        /* Captures and Cowrie logs: the sensor module decodes, the batch
         * stores; bad records are counted and the valid ones around them kept. */
        tr_import_stats is = {0};
        rc = pcap ? tr_pcap_import(argv[i], "import", tr_noise_batch_sink, b, &is, &err)
                  : tr_cowrie_import(argv[i], "cowrie", tr_noise_batch_sink, b, &is, &err);
        if (is.bad) {
            cli_error("%s: %llu bad records skipped, the first: %s", argv[i],
                      (unsigned long long)is.bad, is.first_bad);
            bad += is.bad;
        }
    }
    tr_noise_stats total;
    if (rc == 0)
        rc = tr_noise_batch_flush(b, &total, &err);
    tr_noise_batch_free(b);
    tr_noise_close(n);
    if (rc != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    printf("%llu events stored (%llu tagged, %llu new addresses)", (unsigned long long)total.events,
           (unsigned long long)total.tagged, (unsigned long long)total.new_ips);
    if (bad)
        printf(", %llu bad lines skipped", (unsigned long long)bad);
    if (total.unjudged)
        printf(", %llu not fully judged by the tag rules (see the warnings)",
               (unsigned long long)total.unjudged);
    printf("\n");
    return bad ? CLI_FAIL : CLI_OK;
}

static void print_list(const char *label, json_t *a, const char *key)
{
    if (json_array_size(a) == 0)
        return;
    printf("%-16s", label);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        const char *s = key ? json_string_value(json_object_get(v, key)) : json_string_value(v);
        printf("%s%s", i ? ", " : "", s ? s : "");
        if (i >= 19 && json_array_size(a) > 20) {
            printf(", ... (%zu in all)", json_array_size(a));
            break;
        }
    }
    printf("\n");
}

/* One address's record: JSON (one line each when several are asked) or
 * text (a blank line between records). Returns 0, or 1 for a bad address. */
static int show_ip(tr_noise *n, const char *ip, bool json, bool many, bool first)
{
    tr_error err;
    json_t *r = NULL;
    int found = tr_noise_ip(n, ip, &r, &err);
    if (found < 0) {
        cli_error("%s", err.msg);
        return 1;
    }
    if (!json && many && !first)
        putchar('\n');
    if (found == 0) {
        if (json) {
            json_t *o = json_pack("{s:s, s:b}", "ip", ip, "seen", 0);
            char *t = json_dumps(o, JSON_PRESERVE_ORDER | (many ? JSON_COMPACT : 0));
            if (t)
                puts(t);
            free(t);
            json_decref(o);
        } else {
            printf("%s: never seen by trawl's sensors\n", ip);
        }
        return 0;
    }
    if (json && many) {
        char *t = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (t)
            puts(t);
        free(t);
    } else if (json) {
        print_json(r);
    } else {
    json_t *m = json_object_get(r, "metadata");
    printf("%-16s%s\n", "ip", json_string_value(json_object_get(r, "ip")));
    printf("%-16s%s\n", "classification",
           json_string_value(json_object_get(r, "classification")));
    printf("%-16s%s\n", "actor", json_string_value(json_object_get(r, "actor")));
    printf("%-16s%s\n", "first seen", json_string_value(json_object_get(r, "first_seen_time")));
    printf("%-16s%s\n", "last seen", json_string_value(json_object_get(r, "last_seen_time")));
    printf("%-16s%lld\n", "events", (long long)json_integer_value(json_object_get(r, "events")));
    printf("%-16s%s\n", "spoofable",
           json_is_true(json_object_get(r, "spoofable")) ? "yes" : "no");
    const char *cc = json_string_value(json_object_get(m, "country_code"));
    if (cc && *cc)
        printf("%-16s%s (%s)\n", "country",
               json_string_value(json_object_get(m, "country")), cc);
    if (json_is_true(json_object_get(m, "tor")))
        printf("%-16s%s\n", "tor", "exit node");
    print_list("tags", json_object_get(r, "tags"), NULL);
    print_list("cves", json_object_get(r, "cve"), NULL);
    json_t *scan = json_object_get(json_object_get(r, "raw_data"), "scan"), *ports = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(scan, i, v)
        json_array_append_new(ports, json_sprintf("%lld/%s",
                                                  (long long)json_integer_value(json_object_get(v, "port")),
                                                  json_string_value(json_object_get(v, "protocol"))));
    print_list("ports", ports, NULL);
    json_decref(ports);
    json_t *raw = json_object_get(r, "raw_data");
    print_list("paths", json_object_get(json_object_get(raw, "web"), "paths"), NULL);
    print_list("user agents", json_object_get(json_object_get(raw, "web"), "useragents"), NULL);
    print_list("ja3", json_object_get(raw, "ja3"), "fingerprint");
    print_list("hassh", json_object_get(raw, "hassh"), "fingerprint");
    print_list("ssh clients", json_object_get(r, "ssh_clients"), NULL);
    json_t *creds = json_array();
    json_array_foreach(json_object_get(r, "credentials"), i, v)
        json_array_append_new(creds, json_sprintf("%s:%s",
                                                  json_string_value(json_object_get(v, "username")),
                                                  json_string_value(json_object_get(v, "password"))));
    print_list("credentials", creds, NULL);
    json_decref(creds);
    print_list("sensors", json_object_get(r, "sensors"), "name");
    }
    json_decref(r);
    return 0;
}

/* trawl noise ip IP [IP...] | -: one process answers many addresses (a
 * log's worth from stdin), so a script pays the process start once. */
static int cmd_ip(const cli_ctx *ctx, int argc, char **argv)
{
    bool json;
    int rc = cli_json_options(argc, argv, usage_text, &json);
    if (rc >= 0)
        return rc;
    if (optind >= argc) {
        cli_error("noise ip needs an IP address (several, or - to read them from stdin)");
        return CLI_USAGE;
    }
    bool from_stdin = optind == argc - 1 && strcmp(argv[optind], "-") == 0;
    tr_noise *n = NULL;
    if ((rc = open_noise(ctx, false, &n)) != CLI_OK)
        return rc;
    int bad = 0;
    size_t shown = 0;
    if (from_stdin) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, stdin)) >= 0) {
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
                               line[len - 1] == ' ' || line[len - 1] == '\t'))
                line[--len] = 0;
            char *ip = line;
            while (*ip == ' ' || *ip == '\t')
                ip++;
            if (!*ip || *ip == '#')
                continue;
            bad |= show_ip(n, ip, json, true, shown++ == 0);
        }
        free(line);
    } else {
        bool many = argc - optind > 1;
        for (int i = optind; i < argc; i++)
            bad |= show_ip(n, argv[i], json, many, i == optind);
    }
    tr_noise_close(n);
    return bad ? CLI_FAIL : CLI_OK;
}

static int cmd_events(const cli_ctx *ctx, int argc, char **argv)
{
    const char *ip = NULL, *tag = NULL;
    long long limit = 20;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--ip") == 0 && i + 1 < argc)
            ip = argv[++i];
        else if (strcmp(argv[i], "--tag") == 0 && i + 1 < argc)
            tag = argv[++i];
        else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc)
            limit = strtoll(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else {
            cli_error("usage: trawl noise events [--ip IP] [--tag NAME] [--limit N] [--json]");
            return CLI_USAGE;
        }
    }
    if (limit < 1 || limit > 10000) {
        cli_error("--limit is 1 to 10000");
        return CLI_USAGE;
    }
    tr_noise *n = NULL;
    int rc = open_noise(ctx, false, &n);
    if (rc != CLI_OK)
        return rc;
    tr_error err;
    json_t *evs = NULL;
    rc = tr_noise_events(n, ip, tag, limit, &evs, &err);
    tr_noise_close(n);
    if (rc != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    if (json) {
        print_json(evs);
    } else {
        size_t i;
        json_t *e;
        json_array_foreach(evs, i, e) {
            printf("%s  %s:%lld -> %s:%lld  %s/%s", json_string_value(json_object_get(e, "time")),
                   json_string_value(json_object_get(e, "src_ip")),
                   (long long)json_integer_value(json_object_get(e, "src_port")),
                   json_string_value(json_object_get(e, "dst_ip")),
                   (long long)json_integer_value(json_object_get(e, "dst_port")),
                   json_string_value(json_object_get(e, "transport")),
                   json_string_value(json_object_get(e, "proto")));
            size_t k;
            json_t *t;
            json_array_foreach(json_object_get(e, "tags"), k, t)
                printf("%s%s", k ? ", " : "  [", json_string_value(t));
            printf("%s\n", json_array_size(json_object_get(e, "tags")) ? "]" : "");
        }
    }
    json_decref(evs);
    return CLI_OK;
}

static int cmd_tags(const cli_ctx *ctx, int argc, char **argv)
{
    bool json;
    int rc = cli_json_options(argc, argv, usage_text, &json);
    if (rc >= 0)
        return rc;
    tr_noise *n = NULL;
    if ((rc = open_noise(ctx, false, &n)) != CLI_OK)
        return rc;
    tr_error err;
    json_t *tags = NULL;
    if (tr_noise_tags(n, &tags, &err) != 0) {
        tr_noise_close(n);
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    tr_noise_close(n);
    if (json) {
        print_json(tags);
    } else {
        size_t i;
        json_t *t;
        printf("%6s  %-13s %-9s  %s\n", "IPS", "CATEGORY", "INTENTION", "TAG");
        json_array_foreach(tags, i, t)
            printf("%6lld  %-13s %-9s  %s\n", (long long)json_integer_value(json_object_get(t, "ips")),
                   json_string_value(json_object_get(t, "category")),
                   json_string_value(json_object_get(t, "intention")),
                   json_string_value(json_object_get(t, "name")));
    }
    json_decref(tags);
    return CLI_OK;
}

static int cmd_tag_test(const cli_ctx *ctx, int argc, char **argv)
{
    const char *file = NULL;
    long long limit = 0;
    bool json = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc)
            limit = strtoll(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (argv[i][0] != '-' && !file)
            file = argv[i];
        else {
            cli_error("usage: trawl noise tag test FILE [--limit N] [--json]");
            return CLI_USAGE;
        }
    }
    if (!file || limit < 0) {
        cli_error("usage: trawl noise tag test FILE [--limit N] [--json]");
        return CLI_USAGE;
    }
    tr_noise *n = NULL;
    int rc = open_noise(ctx, false, &n);
    if (rc != CLI_OK)
        return rc;
    tr_error err;
    char *text = NULL;
    size_t len = 0;
    json_t *res = NULL;
    if (tr_read_file(file, &text, &len, &err) != 0 ||
        tr_noise_tag_test(n, file, text, len, limit, &res, &err) != 0) {
        free(text);
        tr_noise_close(n);
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    free(text);
    tr_noise_close(n);
    if (json) {
        print_json(res);
    } else {
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(res, "matches"), i, m)
            printf("%s  %-15s  event %lld  %s\n", json_string_value(json_object_get(m, "time")),
                   json_string_value(json_object_get(m, "src_ip")),
                   (long long)json_integer_value(json_object_get(m, "event_id")),
                   json_string_value(json_object_get(m, "tag")));
        printf("%lld of the %lld newest events matched; nothing was saved\n",
               (long long)json_integer_value(json_object_get(res, "events_matched")),
               (long long)json_integer_value(json_object_get(res, "events_scanned")));
    }
    json_decref(res);
    return CLI_OK;
}

static int cmd_tag(const cli_ctx *ctx, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "test") == 0)
        return cmd_tag_test(ctx, argc, argv);
    if (argc < 3 || (strcmp(argv[1], "add") != 0 && strcmp(argv[1], "rm") != 0)) {
        cli_error("usage: trawl noise tag add FILE... | tag rm NAME | tag test FILE");
        return CLI_USAGE;
    }
    tr_noise *n = NULL;
    int rc = open_noise(ctx, strcmp(argv[1], "add") == 0, &n);
    if (rc != CLI_OK)
        return rc;
    tr_error err;
    if (strcmp(argv[1], "rm") == 0) {
        int r = tr_noise_tag_rm(n, argv[2], &err);
        tr_noise_close(n);
        if (r < 0) {
            cli_error("%s", err.msg);
            return CLI_FAIL;
        }
        if (r == 0) {
            cli_error("no tag named '%s'", argv[2]);
            return CLI_FAIL;
        }
        printf("removed tag '%s'\n", argv[2]);
        return CLI_OK;
    }
    for (int i = 2; i < argc; i++) {
        char *text = NULL;
        size_t len = 0;
        json_t *added = NULL;
        if (tr_read_file(argv[i], &text, &len, &err) != 0 ||
            tr_noise_tag_add(n, argv[i], text, len, &added, &err) != 0) {
            free(text);
            tr_noise_close(n);
            cli_error("%s", err.msg);
            return CLI_FAIL;
        }
        free(text);
        size_t k;
        json_t *v;
        json_array_foreach(json_object_get(added, "tags"), k, v)
            printf("tag '%s' added\n", json_string_value(v));
        printf("re-judged the stored events: %lld matched, %lld addresses tagged\n",
               (long long)json_integer_value(json_object_get(added, "events_matched")),
               (long long)json_integer_value(json_object_get(added, "ips")));
        json_decref(added);
    }
    tr_noise_close(n);
    return CLI_OK;
}

static int cmd_actor(const cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2) {
        cli_error("usage: trawl noise actor add|ls|rm");
        return CLI_USAGE;
    }
    const char *sub = argv[1];
    tr_noise *n = NULL;
    tr_error err;
    int rc;
    if (strcmp(sub, "ls") == 0) {
        bool json;
        if ((rc = cli_json_options(argc - 1, argv + 1, usage_text, &json)) >= 0)
            return rc;
        if ((rc = open_noise(ctx, false, &n)) != CLI_OK)
            return rc;
        json_t *a = NULL;
        rc = tr_noise_actors(n, &a, &err);
        tr_noise_close(n);
        if (rc != 0) {
            cli_error("%s", err.msg);
            return CLI_FAIL;
        }
        if (json) {
            print_json(a);
        } else {
            size_t i;
            json_t *v;
            json_array_foreach(a, i, v) {
                char *c = json_dumps(json_object_get(v, "cidrs"), JSON_COMPACT);
                char *r = json_dumps(json_object_get(v, "rdns_suffixes"), JSON_COMPACT);
                printf("%-24s %-9s %6lld IPs  cidrs %s  rdns %s\n",
                       json_string_value(json_object_get(v, "name")),
                       json_is_true(json_object_get(v, "benign")) ? "benign" : "malicious",
                       (long long)json_integer_value(json_object_get(v, "ips")), c, r);
                free(c);
                free(r);
            }
        }
        json_decref(a);
        return CLI_OK;
    }
    if (strcmp(sub, "rm") == 0) {
        if (argc != 3) {
            cli_error("usage: trawl noise actor rm NAME");
            return CLI_USAGE;
        }
        if ((rc = open_noise(ctx, false, &n)) != CLI_OK)
            return rc;
        int r = tr_noise_actor_rm(n, argv[2], &err);
        tr_noise_close(n);
        if (r <= 0) {
            if (r < 0)
                cli_error("%s", err.msg);
            else
                cli_error("no actor named '%s'", argv[2]);
            return CLI_FAIL;
        }
        printf("removed actor '%s'\n", argv[2]);
        return CLI_OK;
    }
    if (strcmp(sub, "add") != 0) {
        cli_error("unknown actor subcommand '%s' (add, ls, rm)", sub);
        return CLI_USAGE;
    }
    const char *name = NULL;
    const char **cidrs = tr_xcalloc((size_t)argc, sizeof *cidrs);
    const char **rdns = tr_xcalloc((size_t)argc, sizeof *rdns);
    size_t nc = 0, nr = 0;
    int benign = -1;
    rc = CLI_OK;
    for (int i = 2; i < argc && rc == CLI_OK; i++) {
        if (strcmp(argv[i], "--cidr") == 0 && i + 1 < argc)
            cidrs[nc++] = argv[++i];
        else if (strcmp(argv[i], "--rdns-suffix") == 0 && i + 1 < argc)
            rdns[nr++] = argv[++i];
        else if (strcmp(argv[i], "--benign") == 0)
            benign = 1;
        else if (strcmp(argv[i], "--malicious") == 0)
            benign = 0;
        else if (argv[i][0] != '-' && !name)
            name = argv[i];
        else {
            cli_error("unexpected argument %s; 'trawl noise --help'", argv[i]);
            rc = CLI_USAGE;
        }
    }
    if (rc == CLI_OK && (!name || benign < 0)) {
        cli_error("actor add needs a NAME and --benign or --malicious");
        rc = CLI_USAGE;
    }
    if (rc == CLI_OK && (rc = open_noise(ctx, true, &n)) == CLI_OK) {
        if (tr_noise_actor_add(n, name, cidrs, nc, rdns, nr, benign == 1, &err) != 0) {
            cli_error("%s", err.msg);
            rc = CLI_FAIL;
        } else {
            printf("actor '%s' (%s) saved\n", name, benign ? "benign" : "malicious");
            char *rd = NULL;
            if (nr && tr_noise_setting(n, "rdns", &rd, &err) == 0 && strcmp(rd, "on") != 0)
                fprintf(stderr, "trawl: reverse DNS is off, so --rdns-suffix matches nothing "
                                "until 'trawl noise config rdns on' (looked up when an address "
                                "is first seen)\n");
            free(rd);
        }
        tr_noise_close(n);
    }
    free(cidrs);
    free(rdns);
    return rc;
}

static int cmd_tor(const cli_ctx *ctx, int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "import") != 0) {
        cli_error("usage: trawl noise tor import FILE");
        return CLI_USAGE;
    }
    tr_noise *n = NULL;
    int rc = open_noise(ctx, true, &n);
    if (rc != CLI_OK)
        return rc;
    tr_error err;
    uint64_t count = 0, bad = 0;
    rc = tr_noise_tor_import(n, argv[2], &count, &bad, &err);
    tr_noise_close(n);
    if (rc != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    printf("%llu Tor exit addresses imported\n", (unsigned long long)count);
    if (bad)
        fprintf(stderr, "trawl: %s:%llu: not an address or ExitAddress line (skipped, and any "
                        "other such line)\n", argv[2], (unsigned long long)bad);
    return CLI_OK;
}

static int cmd_retention(const cli_ctx *ctx, int argc, char **argv)
{
    const char *days = NULL;
    bool apply = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--days") == 0 && i + 1 < argc)
            days = argv[++i];
        else if (strcmp(argv[i], "--apply") == 0)
            apply = true;
        else {
            cli_error("usage: trawl noise retention [--days N] [--apply]");
            return CLI_USAGE;
        }
    }
    tr_noise *n = NULL;
    int rc = open_noise(ctx, days != NULL, &n);
    if (rc != CLI_OK)
        return rc;
    tr_error err;
    int d;
    uint64_t old;
    if ((days && tr_noise_set(n, "retention_days", days, &err) != 0) ||
        tr_noise_retention(n, apply, &d, &old, &err) != 0) {
        tr_noise_close(n);
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    tr_noise_close(n);
    printf("events are kept %d days; %llu older events %s\n", d, (unsigned long long)old,
           apply ? "deleted" : "would be deleted (--apply)");
    return CLI_OK;
}

static int cmd_config(const cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        cli_error("usage: trawl noise config KEY [VALUE]");
        return CLI_USAGE;
    }
    tr_noise *n = NULL;
    int rc = open_noise(ctx, argc == 3, &n);
    if (rc != CLI_OK)
        return rc;
    tr_error err;
    char *v = NULL;
    if (argc == 3)
        rc = tr_noise_set(n, argv[1], argv[2], &err);
    if (rc == 0)
        rc = tr_noise_setting(n, argv[1], &v, &err);
    tr_noise_close(n);
    if (rc != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    printf("%s = %s\n", argv[1], v);
    free(v);
    return CLI_OK;
}

/* trawl noise query 'GNQL': one line per IP, or GreyNoise's v3 answer. */
static int cmd_query(const cli_ctx *ctx, int argc, char **argv)
{
    const char *q = NULL, *scroll = NULL;
    long long size = 0;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
            size = strtoll(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--scroll") == 0 && i + 1 < argc)
            scroll = argv[++i];
        else if (!q && (argv[i][0] != '-' || argv[i][1] != '-'))
            q = argv[i];
        else {
            cli_error("usage: trawl noise query 'GNQL' [--size N] [--scroll T] [--json]");
            return CLI_USAGE;
        }
    }
    if (!q) {
        cli_error("usage: trawl noise query 'GNQL' [--size N] [--scroll T] [--json]");
        return CLI_USAGE;
    }
    tr_noise *n = NULL;
    int rc = open_noise(ctx, false, &n);
    if (rc != CLI_OK)
        return rc;
    /* One query per process: building the in-memory index (seconds at 1M
     * IPs) would cost more than SQL's answer; the server keeps one. */
    tr_noise_gnql_engine(n, true);
    tr_error err;
    json_t *res = NULL;
    if (tr_noise_gnql(n, q, size, scroll, &res, &err) != 0) {
        tr_noise_close(n);
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    json_t *data = json_array();
    size_t i;
    json_t *ip;
    json_array_foreach(json_object_get(res, "ips"), i, ip) {
        json_t *r = NULL;
        if (tr_noise_ip(n, json_string_value(ip), &r, &err) == 1)
            json_array_append_new(data, r);
    }
    tr_noise_close(n);
    if (json) {
        json_t *o = json_pack("{s:O, s:{s:O, s:O, s:O}}", "data", data, "request_metadata",
                              "count", json_object_get(res, "count"), "complete",
                              json_object_get(res, "complete"), "scroll",
                              json_object_get(res, "scroll"));
        json_object_set(json_object_get(o, "request_metadata"), "query",
                        json_object_get(res, "query"));
        print_json(o);
        json_decref(o);
    } else {
        json_t *r;
        json_array_foreach(data, i, r) {
            printf("%-40s %-10s %s  %s", json_string_value(json_object_get(r, "ip")),
                   json_string_value(json_object_get(r, "classification")),
                   json_string_value(json_object_get(r, "last_seen")),
                   json_string_value(json_object_get(r, "actor")));
            size_t k;
            json_t *t;
            json_array_foreach(json_object_get(r, "tags"), k, t)
                printf("%s%s", k ? ", " : "  ", json_string_value(t));
            putchar('\n');
        }
        printf("%lld matching IPs%s%s\n",
               (long long)json_integer_value(json_object_get(res, "count")),
               json_is_true(json_object_get(res, "complete")) ? "" : "; next page: --scroll ",
               json_string_value(json_object_get(res, "scroll")));
    }
    json_decref(data);
    json_decref(res);
    return CLI_OK;
}

/* trawl noise stats 'GNQL': the top values of each aggregate. */
static int cmd_stats(const cli_ctx *ctx, int argc, char **argv)
{
    const char *q = NULL;
    long long count = 10;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
            count = strtoll(argv[++i], NULL, 10);
        else if (!q && (argv[i][0] != '-' || argv[i][1] != '-'))
            q = argv[i];
        else {
            cli_error("usage: trawl noise stats 'GNQL' [--count N] [--json]");
            return CLI_USAGE;
        }
    }
    if (!q) {
        cli_error("usage: trawl noise stats 'GNQL' [--count N] [--json]");
        return CLI_USAGE;
    }
    tr_noise *n = NULL;
    int rc = open_noise(ctx, false, &n);
    if (rc != CLI_OK)
        return rc;
    tr_noise_gnql_engine(n, true);      /* as for query: one question per process */
    tr_error err;
    json_t *res = NULL;
    rc = tr_noise_gnql_stats(n, q, count, &res, &err);
    tr_noise_close(n);
    if (rc != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    if (json) {
        print_json(res);
        json_decref(res);
        return CLI_OK;
    }
    printf("%lld matching IPs\n", (long long)json_integer_value(json_object_get(res, "count")));
    const char *key;
    json_t *list;
    json_object_foreach(json_object_get(res, "stats"), key, list) {
        if (json_array_size(list) == 0)
            continue;
        printf("%s:\n", key);
        size_t i;
        json_t *row;
        json_array_foreach(list, i, row) {
            const char *k;
            json_t *v, *label = NULL;
            json_object_foreach(row, k, v) if (strcmp(k, "count") != 0) label = v;
            char *text = json_is_object(label)
                             ? tr_xstrdup(json_string_value(json_object_get(label, "name")))
                             : json_is_string(label) ? tr_xstrdup(json_string_value(label))
                             : json_is_boolean(label) ? tr_xstrdup(json_is_true(label) ? "true"
                                                                                        : "false")
                             : tr_xasprintf("%lld", (long long)json_integer_value(label));
            printf("  %-40s %lld\n", text,
                   (long long)json_integer_value(json_object_get(row, "count")));
            free(text);
        }
    }
    json_decref(res);
    return CLI_OK;
}

/* trawl noise riot import FILE | riot IP: the admin's RIOT allow-list. */
static int cmd_riot(const cli_ctx *ctx, int argc, char **argv)
{
    bool json = argc == 3 && strcmp(argv[2], "--json") == 0;
    if (argc < 2 || (strcmp(argv[1], "import") == 0 && argc != 3) ||
        (strcmp(argv[1], "import") != 0 && argc != 2 && !json)) {
        cli_error("usage: trawl noise riot import FILE | trawl noise riot IP [--json]");
        return CLI_USAGE;
    }
    bool import = strcmp(argv[1], "import") == 0;
    tr_noise *n = NULL;
    int rc = open_noise(ctx, import, &n);
    if (rc != CLI_OK)
        return rc;
    tr_error err;
    if (import) {
        uint64_t count, bad;
        rc = tr_noise_riot_import(n, argv[2], &count, &bad, &err);
        tr_noise_close(n);
        if (rc != 0) {
            cli_error("%s", err.msg);
            return CLI_FAIL;
        }
        printf("RIOT list: %llu networks\n", (unsigned long long)count);
        if (bad) {
            cli_error("%s:%llu: not CIDR,name,category,trust_level(1|2); bad lines skipped",
                      argv[2], (unsigned long long)bad);
            return CLI_FAIL;
        }
        return CLI_OK;
    }
    json_t *r = NULL;
    int found = tr_noise_riot(n, argv[1], &r, &err);
    tr_noise_close(n);
    if (found < 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    if (json) {
        json_t *o = found ? json_pack("{s:s, s:b, s:O}", "ip", argv[1], "riot", 1, "entry", r)
                          : json_pack("{s:s, s:b}", "ip", argv[1], "riot", 0);
        print_json(o);
        json_decref(o);
    } else if (found) {
        printf("%s: RIOT %s (%s, trust level %s, %s)\n", argv[1],
               json_string_value(json_object_get(r, "name")),
               json_string_value(json_object_get(r, "category")),
               json_string_value(json_object_get(r, "trust_level")),
               json_string_value(json_object_get(r, "cidr")));
    } else {
        printf("%s: not on the RIOT list\n", argv[1]);
    }
    json_decref(r);
    return CLI_OK;
}

int cli_cmd_noise(const cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2) {
        cli_error("noise needs a subcommand; 'trawl noise --help'");
        return CLI_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(usage_text, stdout);
        return CLI_OK;
    }
    static const struct {
        const char *name;
        int (*fn)(const cli_ctx *, int, char **);
    } subs[] = {{"import", cmd_import}, {"ip", cmd_ip},       {"events", cmd_events},
                {"tags", cmd_tags},
                {"tag", cmd_tag},       {"actor", cmd_actor}, {"tor", cmd_tor},
                {"retention", cmd_retention}, {"config", cmd_config},
                {"query", cmd_query},   {"stats", cmd_stats},   {"riot", cmd_riot}};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(sub, subs[i].name) == 0)
            return subs[i].fn(ctx, argc - 1, argv + 1);
    cli_error("unknown noise subcommand '%s'; 'trawl noise --help'", sub);
    return CLI_USAGE;
}
