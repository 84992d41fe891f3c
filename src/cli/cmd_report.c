/* trawl import report FILE...: documents become draft STIX reports, shown
 * for review or (--commit) imported into the knowledge base. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "report/report.h"
#include "stix/stix.h"
#include "store/store.h"

static const char usage_text[] =
    "usage: trawl import report FILE... [--name NAME] [--published DATE] [--label L]...\n"
    "                                   [--marking TLP:GREEN] [--json] [--commit]\n"
    "       trawl import report --summary FILE...   counts per kind and class, no draft\n"
    "Each FILE (text in any charset, Markdown, HTML, PDF or .eml) becomes a draft STIX\n"
    "report: its indicators of compromise (defanged forms restored), the knowledge base's\n"
    "actors, malware and tools it names, new malware candidates and relationship proposals.\n"
    "Without --commit the draft is printed for review; with it the report, the original as\n"
    "an artifact and the accepted objects are imported as one bundle.\n";

static void print_text(const char *file, json_t *d)
{
    json_t *doc = json_object_get(d, "document");
    json_t *report = json_object_get(d, "report");
    printf("%s: %s, %s, %lld bytes of text\n", file,
           json_string_value(json_object_get(doc, "format")),
           json_string_value(json_object_get(doc, "charset")),
           (long long)json_integer_value(json_object_get(doc, "text_length")));
    printf("report: %s\n  name: %s\n  published: %s\n",
           json_string_value(json_object_get(report, "id")),
           json_string_value(json_object_get(report, "name")),
           json_string_value(json_object_get(report, "published")));
    size_t i;
    json_t *v;
    json_t *ex = json_object_get(d, "extractions");
    printf("extractions (%zu):\n", json_array_size(ex));
    json_array_foreach(ex, i, v) {
        const char *val = json_string_value(json_object_get(v, "value"));
        const char *nl = strchr(val, '\n');
        printf("  %s %7lld+%-4lld %-16s %-13s %.*s%s  (%s%s)\n",
               json_is_true(json_object_get(v, "accepted")) ? "+" : "-",
               (long long)json_integer_value(json_object_get(v, "offset")),
               (long long)json_integer_value(json_object_get(v, "length")),
               json_string_value(json_object_get(v, "kind")),
               json_string_value(json_object_get(v, "class")),
               nl ? (int)(nl - val) : (int)strlen(val), val, nl ? " ..." : "",
               json_string_value(json_object_get(v, "reason")),
               json_is_true(json_object_get(v, "defanged")) ? "; defanged" : "");
        json_t *s = json_object_get(v, "sample");
        if (s)
            printf("      stored sample %s\n",
                   json_string_value(json_object_get(s, "sha256_hash")));
    }
    json_t *en = json_object_get(d, "entities");
    printf("entities (%zu mentions):\n", json_array_size(en));
    json_array_foreach(en, i, v) {
        printf("  %7lld+%-4lld %-14s %s%s%s  %s\n",
               (long long)json_integer_value(json_object_get(v, "offset")),
               (long long)json_integer_value(json_object_get(v, "length")),
               json_string_value(json_object_get(v, "type")),
               json_string_value(json_object_get(v, "name")),
               strcmp(json_string_value(json_object_get(v, "name")),
                      json_string_value(json_object_get(v, "matched"))) ? " as " : "",
               strcmp(json_string_value(json_object_get(v, "name")),
                      json_string_value(json_object_get(v, "matched")))
                   ? json_string_value(json_object_get(v, "matched"))
                   : "",
               json_string_value(json_object_get(v, "id")));
    }
    json_t *ca = json_object_get(d, "candidates");
    printf("new malware candidates (%zu):\n", json_array_size(ca));
    json_array_foreach(ca, i, v) {
        printf("  %s (%zu mentions)\n", json_string_value(json_object_get(v, "name")),
               json_array_size(json_object_get(v, "offsets")));
    }
    json_t *pr = json_object_get(d, "proposals");
    printf("relationship proposals (%zu):\n", json_array_size(pr));
    json_array_foreach(pr, i, v) {
        printf("  %s %s %s\n", json_string_value(json_object_get(v, "source_name")),
               json_string_value(json_object_get(v, "relationship_type")),
               json_string_value(json_object_get(v, "target_name")));
    }
}

/* Counts only: what a document holds at a glance, and the extraction's
 * own speed without the draft's JSON (bench/import.sh). */
static int summary(const char *path, const tr_gazetteer *g)
{
    char *data = NULL;
    size_t len = 0;
    tr_error err;
    tr_doc doc;
    tr_ioc_list l;
    if (tr_read_file(path, &data, &len, &err) != 0 ||
        tr_doc_extract((const unsigned char *)data, len, path, &doc, &err) != 0) {
        cli_error("%s: %s", path, err.msg);
        free(data);
        return CLI_FAIL;
    }
    free(data);
    if (tr_ioc_extract(doc.text, doc.len, &l, &err) != 0) {
        cli_error("%s: %s", path, err.msg);
        tr_doc_free(&doc);
        return CLI_FAIL;
    }
    size_t counts[TR_IOC_KIND_COUNT][TR_IOCC_COUNT] = {{0}};
    for (size_t i = 0; i < l.n; i++)
        counts[l.v[i].kind][l.v[i].cls]++;
    tr_entity_list e = {0};
    if (g)
        tr_gazetteer_match(g, doc.text, doc.len, &e);
    printf("%s: %s, %s, %zu bytes of text, %zu extractions, %zu entity mentions\n", path,
           tr_doc_format_name(doc.format), doc.charset, doc.len, l.n, e.n);
    for (int k = 0; k < TR_IOC_KIND_COUNT; k++)
        for (int c = 0; c < TR_IOCC_COUNT; c++)
            if (counts[k][c])
                printf("  %-17s %-13s %zu\n", tr_ioc_kind_name((tr_ioc_kind)k),
                       tr_ioc_class_name((tr_ioc_class)c), counts[k][c]);
    tr_entity_list_free(&e);
    tr_ioc_list_free(&l);
    tr_doc_free(&doc);
    return CLI_OK;
}

static int cmd_report(const cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},      {"published", required_argument, NULL, 'p'},
        {"label", required_argument, NULL, 'l'},     {"marking", required_argument, NULL, 'm'},
        {"json", no_argument, NULL, 'j'},            {"commit", no_argument, NULL, 'c'},
        {"summary", no_argument, NULL, 's'},         {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0}};
    tr_report_opts o = {0};
    const char **labels = tr_xcalloc((size_t)argc + 1, sizeof *labels);
    size_t nlabels = 0;
    bool json = false, commit = false, counts_only = false;
    int c, status = CLI_OK;
    optind = 0;
    while ((c = getopt_long(argc, argv, "n:p:l:m:jcsh", opts, NULL)) != -1) {
        switch (c) {
        case 'n': o.name = optarg; break;
        case 'p': o.published = optarg; break;
        case 'l': labels[nlabels++] = optarg; break;
        case 'm': o.marking = optarg; break;
        case 'j': json = true; break;
        case 'c': commit = true; break;
        case 's': counts_only = true; break;
        case 'h':
            fputs(usage_text, stdout);
            free(labels);
            return CLI_OK;
        default:
            free(labels);
            return CLI_USAGE;
        }
    }
    o.labels = labels;
    if (optind >= argc) {
        cli_error("import report needs at least one FILE");
        free(labels);
        return CLI_USAGE;
    }
    tr_error err;
    tr_stix_db *db = NULL;
    tr_store *store = NULL;
    tr_gazetteer *g = NULL;
    char *dbpath = tr_xasprintf("%s/trawl.db", ctx->data_dir);
    bool have_data = access(dbpath, F_OK) == 0;
    free(dbpath);
    /* The store lays out the data directory the knowledge base lives in. */
    if (commit || have_data) {
        if (tr_store_open(ctx->data_dir, commit ? TR_STORE_CREATE : TR_STORE_READONLY, &store,
                          &err) != 0) {
            cli_error("%s", err.msg);
            free(labels);
            return CLI_FAIL;
        }
        have_data = true;
    }
    /* Without a knowledge base there are still indicators, just no entities. */
    if (have_data) {
        if (tr_stix_open(ctx->data_dir, &db, &err) != 0 || tr_gazetteer_load(db, &g, &err) != 0) {
            cli_error("%s", err.msg);
            status = CLI_FAIL;
            goto out;
        }
    }
    for (int i = optind; i < argc && status == CLI_OK && counts_only; i++)
        status = summary(argv[i], g);
    for (int i = optind; i < argc && status == CLI_OK && !counts_only; i++) {
        char *data = NULL;
        size_t len = 0;
        json_t *d = NULL;
        o.filename = argv[i];
        if (tr_read_file(argv[i], &data, &len, &err) != 0 ||
            tr_report_draft((const unsigned char *)data, len, &o, g, store, &d, &err) != 0) {
            cli_error("%s: %s", argv[i], err.msg);
            free(data);
            status = CLI_FAIL;
            break;
        }
        if (commit && tr_report_keep_original(ctx->data_dir, (const unsigned char *)data, len,
                                              &err) != 0) {
            cli_error("%s: %s", argv[i], err.msg);
            free(data);
            json_decref(d);
            status = CLI_FAIL;
            break;
        }
        free(data);
        if (commit) {
            char *text = json_dumps(json_object_get(d, "bundle"), JSON_COMPACT);
            tr_stix_import_result res;
            if (!text || tr_stix_import(db, text, strlen(text), NULL, &res, &err) != 0) {
                cli_error("%s: %s", argv[i], text ? err.msg : "cannot serialise the bundle");
                status = CLI_FAIL;
            } else {
                json_t *r = json_object_get(d, "report");
                json_object_set_new(d, "committed",
                                    json_pack("{s:I, s:I}", "objects", (json_int_t)res.total,
                                              "added", (json_int_t)res.added));
                if (!json)
                    printf("%s: committed %s (%zu objects, %zu new)\n", argv[i],
                           json_string_value(json_object_get(r, "id")), res.total, res.added);
            }
            free(text);
        }
        if (json && status == CLI_OK) {
            /* One write: json_dumpf writes token by token. */
            char *out = json_dumps(d, JSON_INDENT(1));
            if (out) {
                fputs(out, stdout);
                fputc('\n', stdout);
                free(out);
            } else {
                cli_error("%s: cannot serialise the draft", argv[i]);
                status = CLI_FAIL;
            }
        } else if (!commit && status == CLI_OK) {
            print_text(argv[i], d);
        }
        json_decref(d);
    }
out:
    tr_gazetteer_free(g);
    if (db)
        tr_stix_close(db);
    if (store)
        tr_store_close(store);
    free(labels);
    return status;
}

int cli_cmd_import(const cli_ctx *ctx, int argc, char **argv)
{
    static const char import_usage[] =
        "usage: trawl import report FILE... [options]   (trawl import report --help)\n";
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(import_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "report") == 0)
        return cmd_report(ctx, argc - 1, argv + 1);
    cli_error("unknown import kind '%s' (report)", argv[1]);
    return CLI_USAGE;
}
