/* trawl import report FILE...: documents become draft STIX reports, shown
 * for review or (--commit) imported into the knowledge base. */
#include <getopt.h>
#include <pthread.h>
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

static void print_text(const char *file, json_t *d, bool numbered)
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
        if (numbered)
            printf("%4zu", i);
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
        if (numbered)
            printf("%4zu %s", i, json_is_false(json_object_get(v, "accepted")) ? "-" : "+");
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
        if (numbered)
            printf("%4zu %s", i, json_is_true(json_object_get(v, "accepted")) ? "+" : "-");
        printf("  %s (%zu mentions)\n", json_string_value(json_object_get(v, "name")),
               json_array_size(json_object_get(v, "offsets")));
    }
    json_t *pr = json_object_get(d, "proposals");
    printf("relationship proposals (%zu):\n", json_array_size(pr));
    json_array_foreach(pr, i, v) {
        if (numbered)
            printf("%4zu %s", i, json_is_true(json_object_get(v, "accepted")) ? "+" : "-");
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
        tr_doc_extract_isolated((const unsigned char *)data, len, path, &doc, &err) != 0) {
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

/* A draft's members serialised on both cores: a long document's draft
 * is megabytes of escaped text (the text, the report's description twice)
 * and a record per extraction, and serialising it was a third of the
 * time. Workers take the next member until none is left; jansson's dump
 * only reads the tree, so members sharing an object (the report is in
 * "report" and in the bundle) may be dumped at once. */
typedef struct dump_job {
    json_t **values;
    char **out;
    size_t n;
    size_t next;               /* under lock */
    pthread_mutex_t lock;
} dump_job;

static void *dump_worker(void *arg)
{
    dump_job *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->lock);
        size_t i = j->next++;
        pthread_mutex_unlock(&j->lock);
        if (i >= j->n)
            return NULL;
        j->out[i] = json_dumps(j->values[i], JSON_COMPACT | JSON_ENCODE_ANY);
    }
}

static int print_json(json_t *d)
{
    if (!json_is_object(d)) {
        char *out = json_dumps(d, JSON_INDENT(1) | JSON_ENCODE_ANY);
        if (!out) {
            cli_error("cannot serialise the answer");
            return CLI_FAIL;
        }
        puts(out);
        free(out);
        return CLI_OK;
    }
    size_t n = json_object_size(d), i = 0;
    dump_job j = {.values = tr_xcalloc(n ? n : 1, sizeof *j.values),
                  .out = tr_xcalloc(n ? n : 1, sizeof *j.out), .n = n};
    const char **keys = tr_xcalloc(n ? n : 1, sizeof *keys);
    const char *key;
    json_t *v;
    json_object_foreach(d, key, v) {
        keys[i] = key;
        j.values[i++] = v;
    }
    pthread_mutex_init(&j.lock, NULL);
    pthread_t t;
    bool threaded = n > 1 && pthread_create(&t, NULL, dump_worker, &j) == 0;
    dump_worker(&j);
    if (threaded)
        pthread_join(t, NULL);
    pthread_mutex_destroy(&j.lock);
    int status = CLI_OK;
    tr_buf b = {0};
    tr_buf_append(&b, "{", 1);
    for (i = 0; i < n && status == CLI_OK; i++) {
        json_t *ks = json_string(keys[i]);
        char *kq = ks ? json_dumps(ks, JSON_ENCODE_ANY) : NULL;
        json_decref(ks);
        if (!kq || !j.out[i]) {
            free(kq);
            cli_error("cannot serialise the draft");
            status = CLI_FAIL;
            break;
        }
        if (i)
            tr_buf_append(&b, ",\n", 2);
        tr_buf_append(&b, kq, strlen(kq));
        tr_buf_append(&b, ": ", 2);
        tr_buf_append(&b, j.out[i], strlen(j.out[i]));
        free(kq);
    }
    tr_buf_append(&b, "}\n", 2);
    if (status == CLI_OK)
        fwrite(b.data, 1, b.len, stdout);
    tr_buf_free(&b);
    for (i = 0; i < n; i++)
        free(j.out[i]);
    free(j.out);
    free(j.values);
    free(keys);
    return status;
}

/* keep: each document becomes a draft kept for review (trawl report draft). */
static int cmd_report(const cli_ctx *ctx, int argc, char **argv, bool keep)
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
    if (keep && (commit || counts_only)) {
        cli_error("report draft keeps drafts for review: no --commit or --summary");
        free(labels);
        return CLI_USAGE;
    }
    if (commit || keep || have_data) {
        if (tr_store_open(ctx->data_dir, commit || keep ? TR_STORE_CREATE : TR_STORE_READONLY, &store,
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
        if ((commit || keep) && tr_report_keep_original(ctx->data_dir, (const unsigned char *)data, len,
                                              &err) != 0) {
            cli_error("%s: %s", argv[i], err.msg);
            free(data);
            json_decref(d);
            status = CLI_FAIL;
            break;
        }
        free(data);
        char id[37];
        if (keep) {
            if (tr_report_draft_create(ctx->data_dir, d, NULL, id, &err) != 0) {
                cli_error("%s: %s", argv[i], err.msg);
                status = CLI_FAIL;
            } else if (!json) {
                json_t *sum = tr_report_draft_summary(d);
                printf("%s: draft %s (%lld extractions, %lld accepted, %lld entity mentions)\n",
                       argv[i], id, (long long)json_integer_value(json_object_get(sum, "extractions")),
                       (long long)json_integer_value(json_object_get(sum, "accepted")),
                       (long long)json_integer_value(json_object_get(sum, "entities")));
                json_decref(sum);
            }
        }
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
            status = print_json(d);
        } else if (!commit && !keep && status == CLI_OK) {
            print_text(argv[i], d, false);
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
        return cmd_report(ctx, argc - 1, argv + 1, false);
    cli_error("unknown import kind '%s' (report)", argv[1]);
    return CLI_USAGE;
}

/* ---- trawl report: drafts kept for review ---------------------------------- */

static const char report_usage[] =
    "usage: trawl report draft FILE... [--name N] [--published D] [--label L]... [--marking TLP:X]\n"
    "                                  [--json]   keep each document as a draft for review\n"
    "       trawl report drafts [--json]                      list drafts, newest first\n"
    "       trawl report show ID [--json]                     the draft, numbered\n"
    "       trawl report review ID [--accept N,M] [--reject K] [--accept-entity N]\n"
    "                              [--reject-entity N] [--accept-candidate N]\n"
    "                              [--reject-candidate N] [--accept-proposal N]\n"
    "                              [--reject-proposal N] [--add KIND:VALUE]...\n"
    "                              [--name N] [--label L]... [--no-labels] [--marking TLP:X|none]\n"
    "                              [--published D] [--commit] [--json]\n"
    "       trawl report commit ID [--json]    the report and accepted objects, one transaction\n"
    "       trawl report rm ID\n"
    "Numbers are the indices 'trawl report show' prints. KIND is an indicator kind (ipv4,\n"
    "domain, url, sha256, ...) or malware, intrusion-set, threat-actor, tool, campaign.\n";

/* "1,4,7" appended to a JSON array of integers. */
static int add_indices(json_t *changes, const char *key, const char *list)
{
    json_t *arr = json_object_get(changes, key);
    if (!arr) {
        arr = json_array();
        json_object_set_new(changes, key, arr);
    }
    const char *p = list;
    while (*p) {
        char *end;
        long n = strtol(p, &end, 10);
        if (end == p || n < 0 || (*end && *end != ',')) {
            cli_error("--%s wants numbers separated by commas, not '%s'", key, list);
            return -1;
        }
        json_array_append_new(arr, json_integer(n));
        p = *end ? end + 1 : end;
    }
    return 0;
}

static int draft_failed(int rc, const char *id, const tr_error *err)
{
    if (rc == 0)
        cli_error("no draft %s", id);
    else
        cli_error("%s", err->msg);
    return CLI_FAIL;
}

static int report_commit(const cli_ctx *ctx, const char *id, bool json)
{
    tr_error err;
    tr_store *store = NULL;
    tr_stix_db *db = NULL;
    json_t *d = NULL;
    /* The store lays out the data directory the knowledge base lives in. */
    if (tr_store_open(ctx->data_dir, TR_STORE_CREATE, &store, &err) != 0 ||
        tr_stix_open(ctx->data_dir, &db, &err) != 0) {
        cli_error("%s", err.msg);
        if (store)
            tr_store_close(store);
        return CLI_FAIL;
    }
    int rc = tr_report_draft_commit(ctx->data_dir, db, id, &d, &err);
    tr_stix_close(db);
    tr_store_close(store);
    if (rc != 1)
        return draft_failed(rc, id, &err);
    int status = CLI_OK;
    if (json) {
        status = print_json(d);
    } else {
        json_t *c = json_object_get(json_object_get(d, "draft"), "committed");
        printf("draft %s committed: %s (%lld objects, %lld new)\n", id,
               json_string_value(json_object_get(c, "report")),
               (long long)json_integer_value(json_object_get(c, "objects")),
               (long long)json_integer_value(json_object_get(c, "added")));
    }
    json_decref(d);
    return status;
}

static int report_review(const cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"accept", required_argument, NULL, 'a'},
        {"reject", required_argument, NULL, 'r'},
        {"accept-entity", required_argument, NULL, 'E'},
        {"reject-entity", required_argument, NULL, 'e'},
        {"accept-candidate", required_argument, NULL, 'C'},
        {"reject-candidate", required_argument, NULL, 'c'},
        {"accept-proposal", required_argument, NULL, 'P'},
        {"reject-proposal", required_argument, NULL, 'p'},
        {"add", required_argument, NULL, 'A'},
        {"name", required_argument, NULL, 'n'},
        {"label", required_argument, NULL, 'l'},
        {"no-labels", no_argument, NULL, 'L'},
        {"marking", required_argument, NULL, 'm'},
        {"published", required_argument, NULL, 'd'},
        {"commit", no_argument, NULL, 'K'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0}};
    json_t *changes = json_object();
    bool json = false, commit = false;
    int c, status = CLI_USAGE;
    optind = 0;
    while ((c = getopt_long(argc, argv, "a:r:E:e:C:c:P:p:A:n:l:Lm:d:Kjh", opts, NULL)) != -1) {
        const char *key = NULL;
        switch (c) {
        case 'a': key = "accept"; break;
        case 'r': key = "reject"; break;
        case 'E': key = "accept_entities"; break;
        case 'e': key = "reject_entities"; break;
        case 'C': key = "accept_candidates"; break;
        case 'c': key = "reject_candidates"; break;
        case 'P': key = "accept_proposals"; break;
        case 'p': key = "reject_proposals"; break;
        case 'A': {
            const char *colon = strchr(optarg, ':');
            if (!colon || colon == optarg) {
                cli_error("--add wants KIND:VALUE (domain:evil.example.net), not '%s'", optarg);
                goto out;
            }
            json_t *adds = json_object_get(changes, "add");
            if (!adds) {
                adds = json_array();
                json_object_set_new(changes, "add", adds);
            }
            json_array_append_new(adds, json_pack("{s:s#, s:s}", "kind", optarg,
                                                  (int)(colon - optarg), "value", colon + 1));
            break;
        }
        case 'n': json_object_set_new(changes, "name", json_string(optarg)); break;
        case 'l':
            if (!json_is_array(json_object_get(changes, "labels")))
                json_object_set_new(changes, "labels", json_array());
            json_array_append_new(json_object_get(changes, "labels"), json_string(optarg));
            break;
        case 'L': json_object_set_new(changes, "labels", json_array()); break;
        case 'm':
            json_object_set_new(changes, "marking",
                                strcmp(optarg, "none") == 0 ? json_null() : json_string(optarg));
            break;
        case 'd': json_object_set_new(changes, "published", json_string(optarg)); break;
        case 'K': commit = true; break;
        case 'j': json = true; break;
        case 'h':
            fputs(report_usage, stdout);
            status = CLI_OK;
            goto out;
        default: goto out;
        }
        if (key && add_indices(changes, key, optarg) != 0)
            goto out;
    }
    if (optind + 1 != argc) {
        cli_error("report review needs one draft ID");
        goto out;
    }
    const char *id = argv[optind];
    tr_error err;
    json_t *d = NULL;
    int rc = tr_report_draft_review(ctx->data_dir, id, changes, &d, &err);
    if (rc != 1) {
        status = draft_failed(rc, id, &err);
        goto out;
    }
    status = CLI_OK;
    if (commit) {
        json_decref(d);
        status = report_commit(ctx, id, json);
    } else if (json) {
        status = print_json(d);
        json_decref(d);
    } else {
        print_text(id, d, true);
        json_decref(d);
    }
out:
    json_decref(changes);
    return status;
}

static void print_drafts(json_t *list)
{
    size_t i;
    json_t *v;
    if (!json_array_size(list))
        printf("no drafts\n");
    json_array_foreach(list, i, v) {
        printf("%s  %-9s %s  %4lld/%-4lld accepted  %s\n",
               json_string_value(json_object_get(v, "id")),
               json_string_value(json_object_get(v, "status")),
               json_string_value(json_object_get(v, "created")),
               (long long)json_integer_value(json_object_get(v, "accepted")),
               (long long)json_integer_value(json_object_get(v, "extractions")),
               json_string_value(json_object_get(v, "name")));
    }
}

int cli_cmd_report(const cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(report_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "draft") == 0)
        return cmd_report(ctx, argc - 1, argv + 1, true);
    if (strcmp(sub, "review") == 0)
        return report_review(ctx, argc - 1, argv + 1);
    bool json = false;
    int rc = cli_json_options(argc - 1, argv + 1, report_usage, &json);
    if (rc >= 0)
        return rc;
    int first = optind + 1;   /* cli_json_options saw argv + 1 */
    tr_error err;
    json_t *d = NULL;
    if (strcmp(sub, "drafts") == 0) {
        if (first != argc) {
            cli_error("report drafts takes no operands");
            return CLI_USAGE;
        }
        if (tr_report_drafts_list(ctx->data_dir, &d, &err) != 0) {
            cli_error("%s", err.msg);
            return CLI_FAIL;
        }
        int status = CLI_OK;
        if (json)
            status = print_json(d);
        else
            print_drafts(d);
        json_decref(d);
        return status;
    }
    bool show = strcmp(sub, "show") == 0, commit = strcmp(sub, "commit") == 0,
         rm = strcmp(sub, "rm") == 0;
    if (!show && !commit && !rm) {
        cli_error("unknown report command '%s' (draft drafts show review commit rm)", sub);
        return CLI_USAGE;
    }
    if (first + 1 != argc) {
        cli_error("report %s needs one draft ID", sub);
        return CLI_USAGE;
    }
    const char *id = argv[first];
    if (commit)
        return report_commit(ctx, id, json);
    if (rm) {
        int r = tr_report_draft_delete(ctx->data_dir, id, &err);
        if (r != 1)
            return draft_failed(r, id, &err);
        if (json)
            printf("{\"deleted\": \"%s\"}\n", id);
        else
            printf("draft %s deleted\n", id);
        return CLI_OK;
    }
    int r = tr_report_draft_get(ctx->data_dir, id, &d, &err);
    if (r != 1)
        return draft_failed(r, id, &err);
    int status = CLI_OK;
    if (json) {
        status = print_json(d);
    } else {
        json_t *meta = json_object_get(d, "draft");
        printf("draft %s: %s\n", id, json_string_value(json_object_get(meta, "status")));
        print_text(id, d, true);
    }
    json_decref(d);
    return status;
}
