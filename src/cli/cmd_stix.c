/* trawl stix import|export|search|show|neighbours|collections: the STIX 2.1
 * knowledge base from the command line. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "cli/cli.h"
#include "stix/stix.h"
#include "store/store.h"

static const char usage_text[] =
    "usage: trawl stix import FILE...                 each file one bundle (- reads stdin), stored whole or not at all\n"
    "       trawl stix export [--type T]... [--id ID]... [--since TS] [--all-versions] > bundle.json\n"
    "       trawl stix search [TEXT] [--type T] [--label L] [--marking ID] [--limit N] [--json]\n"
    "                         [--created-after TS] [--created-before TS]\n"
    "                         [--modified-after TS] [--modified-before TS]\n"
    "       trawl stix show ID [--json] [--versions]\n"
    "       trawl stix neighbours ID [--depth N (1)] [--json]\n"
    "       trawl stix rm ID                          every version; the live stream tells\n"
    "       trawl stix collections [--json]           TAXII collections\n"
    "       trawl stix collection-add TITLE [DESCRIPTION] [--write-role analyst|admin]\n"
    "                                 (every reader reads a collection: its objects are the\n"
    "                                 knowledge base's)\n"
    "STIX 2.0 bundles (e.g. MITRE ATT&CK's) are upgraded to 2.1 on import.\n";

static int open_kb(const cli_ctx *ctx, bool create, tr_stix_db **db)
{
    tr_error err;
    if (create) {
        /* The store lays out the data directory the knowledge base lives in. */
        tr_store *s = NULL;
        if (tr_store_open(ctx->data_dir, TR_STORE_CREATE, &s, &err) != 0) {
            cli_error("%s", err.msg);
            return -1;
        }
        tr_store_close(s);
    } else {
        char *path = tr_xasprintf("%s/trawl.db", ctx->data_dir);
        int missing = access(path, F_OK) != 0;
        free(path);
        if (missing) {
            cli_error("no trawl data in %s (import a bundle first)", ctx->data_dir);
            return -1;
        }
    }
    if (tr_stix_open(ctx->data_dir, db, &err) != 0) {
        cli_error("%s", err.msg);
        return -1;
    }
    return 0;
}

/* "-": a bundle piped in (trawl stix export | ... | trawl stix import -). */
static int read_stdin(char **out, size_t *len, tr_error *err)
{
    tr_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
        tr_buf_append(&b, chunk, n);
    if (ferror(stdin)) {
        tr_buf_free(&b);
        return tr_fail_errno(err, "cannot read standard input");
    }
    if (!b.data)
        tr_buf_append(&b, "", 0);
    *out = b.data;
    *len = b.len;
    return 0;
}

static int cmd_import(const cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2) {
        cli_error("stix import needs at least one FILE");
        return CLI_USAGE;
    }
    tr_stix_db *db;
    if (open_kb(ctx, true, &db) != 0)
        return CLI_FAIL;
    int status = CLI_OK;
    for (int i = 1; i < argc; i++) {
        char *text = NULL;
        size_t len = 0;
        tr_error err;
        tr_stix_import_result res;
        int rd = strcmp(argv[i], "-") == 0 ? read_stdin(&text, &len, &err)
                                           : tr_read_file(argv[i], &text, &len, &err);
        if (rd != 0 || tr_stix_import(db, text, len, NULL, &res, &err) != 0) {
            cli_error("%s: %s", argv[i], err.msg);
            free(text);
            status = CLI_FAIL;
            break;
        }
        free(text);
        printf("%s: %zu objects, %zu new, %zu already held%s\n", argv[i], res.total, res.added,
               res.duplicates, res.upgraded ? " (upgraded from STIX 2.0)" : "");
    }
    tr_stix_close(db);
    return status;
}

typedef struct export_state {
    size_t n;
} export_state;

static int export_row(void *arg, const tr_stix_row *r)
{
    export_state *st = arg;
    fputs(st->n++ ? ",\n" : "\n", stdout);
    fwrite(r->json, 1, r->json_len, stdout);
    return 0;
}

#define MAXLIST 64

static int cmd_export(const cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"type", required_argument, NULL, 't'}, {"id", required_argument, NULL, 'i'},
        {"since", required_argument, NULL, 's'}, {"all-versions", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    const char *types[MAXLIST + 1] = {0}, *ids[MAXLIST + 1] = {0};
    size_t nt = 0, ni = 0;
    tr_stix_query q = {0};
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "t:i:s:ah", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (nt == MAXLIST)
                return cli_error("at most %d --type", MAXLIST), CLI_USAGE;
            types[nt++] = optarg;
            break;
        case 'i':
            if (ni == MAXLIST)
                return cli_error("at most %d --id", MAXLIST), CLI_USAGE;
            ids[ni++] = optarg;
            break;
        case 's':
            if (!tr_stix_ts_valid(optarg)) {
                cli_error("--since takes a STIX timestamp like 2024-01-31T00:00:00Z");
                return CLI_USAGE;
            }
            q.modified_since = optarg;
            break;
        case 'a': q.versions = TR_STIX_ALL; break;
        case 'h': fputs(usage_text, stdout); return CLI_OK;
        default: return CLI_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("stix export takes no arguments but options");
        return CLI_USAGE;
    }
    q.types = nt ? types : NULL;
    q.ids = ni ? ids : NULL;
    tr_stix_db *db;
    if (open_kb(ctx, false, &db) != 0)
        return CLI_FAIL;
    char uuid[37];
    tr_stix_uuid4(uuid);
    printf("{\"type\":\"bundle\",\"id\":\"bundle--%s\",\"objects\":[", uuid);
    export_state st = {0};
    tr_error err;
    int rc = tr_stix_query_rows(db, &q, export_row, &st, NULL, &err);
    tr_stix_close(db);
    printf("\n]}\n");
    if (rc != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    fprintf(stderr, "trawl: exported %zu objects\n", st.n);
    return CLI_OK;
}

static const char *display_name(json_t *o)
{
    const char *keys[] = {"name", "value", "relationship_type", "pattern", "path", "key", NULL};
    for (size_t i = 0; keys[i]; i++) {
        const char *v = json_string_value(json_object_get(o, keys[i]));
        if (v)
            return v;
    }
    return "";
}

typedef struct print_state {
    bool json;
    json_t *all;
    size_t n;
} print_state;

static int search_row(void *arg, const tr_stix_row *r)
{
    print_state *st = arg;
    json_t *o = json_loadb(r->json, r->json_len, 0, NULL);
    if (!o)
        return 0;
    st->n++;
    if (st->json) {
        json_array_append_new(st->all, o);
        return 0;
    }
    printf("%s\t%s\t%s%s\n", r->id, r->type, display_name(o), r->revoked ? "\t(revoked)" : "");
    json_decref(o);
    return 0;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s)
        puts(s);
    free(s);
}

static int cmd_search(const cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"type", required_argument, NULL, 't'}, {"limit", required_argument, NULL, 'n'},
        {"label", required_argument, NULL, 'l'}, {"marking", required_argument, NULL, 'm'},
        {"created-after", required_argument, NULL, 'A'},
        {"created-before", required_argument, NULL, 'B'},
        {"modified-after", required_argument, NULL, 'M'},
        {"modified-before", required_argument, NULL, 'N'},
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    tr_stix_search_opts o = {.limit = 50};
    print_state st = {0};
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "t:n:l:m:A:B:M:N:jh", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 't': o.type = optarg; break;
        case 'l': o.label = optarg; break;
        case 'm': o.marking = optarg; break;
        case 'A': case 'B': case 'M': case 'N':
            if (!tr_stix_ts_valid(optarg)) {
                cli_error("dates are STIX timestamps like 2024-01-31T00:00:00Z");
                return CLI_USAGE;
            }
            *(c == 'A' ? &o.created_after : c == 'B' ? &o.created_before
              : c == 'M' ? &o.modified_after : &o.modified_before) = optarg;
            break;
        case 'n': {
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > 10000) {
                cli_error("--limit takes a number from 1 to 10000");
                return CLI_USAGE;
            }
            o.limit = (size_t)v;
            break;
        }
        case 'j': st.json = true; break;
        case 'h': fputs(usage_text, stdout); return CLI_OK;
        default: return CLI_USAGE;
        }
    }
    tr_buf text = {0};
    for (int i = optind; i < argc; i++)
        tr_buf_printf(&text, "%s%s", i > optind ? " " : "", argv[i]);
    o.text = text.data;
    if (!o.text && !o.type && !o.label && !o.marking && !o.created_after && !o.created_before &&
        !o.modified_after && !o.modified_before) {
        cli_error("stix search needs TEXT or a filter");
        return CLI_USAGE;
    }
    tr_stix_db *db;
    if (open_kb(ctx, false, &db) != 0) {
        tr_buf_free(&text);
        return CLI_FAIL;
    }
    st.all = json_array();
    tr_error err;
    int rc = tr_stix_search_ex(db, &o, search_row, &st, &err);
    tr_stix_close(db);
    tr_buf_free(&text);
    if (rc != 0) {
        json_decref(st.all);
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    if (st.json)
        print_json(st.all);
    json_decref(st.all);
    return CLI_OK;
}

static void print_value(const char *k, json_t *v)
{
    if (json_is_array(v) && json_array_size(v) && !json_is_object(json_array_get(v, 0))) {
        printf("%-20s ", k);
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            char *s = json_is_string(x) ? NULL : json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT);
            printf("%s%s", i ? ", " : "", s ? s : json_string_value(x));
            free(s);
        }
        putchar('\n');
    } else if (json_is_string(v)) {
        printf("%-20s %s\n", k, json_string_value(v));
    } else {
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        printf("%-20s %s\n", k, s ? s : "?");
        free(s);
    }
}

static int show_row(void *arg, const tr_stix_row *r)
{
    print_state *st = arg;
    json_t *o = json_loadb(r->json, r->json_len, 0, NULL);
    if (!o)
        return 0;
    st->n++;
    if (st->json) {
        json_array_append_new(st->all, o);
        return 0;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (strcmp(k, "external_references") == 0)
            printf("%-20s %zu\n", k, json_array_size(v));
        else
            print_value(k, v);
    }
    printf("%-20s %s\n", "(date_added)", r->date_added);
    json_decref(o);
    return 0;
}

static int version_row(void *arg, const tr_stix_row *r)
{
    print_state *st = arg;
    if (st->json)
        return show_row(arg, r);
    st->n++;
    printf("%s\tadded %s%s\n", r->modified ? r->modified : r->created ? r->created : "-",
           r->date_added, r->revoked ? "\trevoked" : "");
    return 0;
}

static int cmd_show(const cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"versions", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    print_state st = {0};
    bool versions = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "jvh", opts, NULL)) != -1) {
        switch (c) {
        case 'j': st.json = true; break;
        case 'v': versions = true; break;
        case 'h': fputs(usage_text, stdout); return CLI_OK;
        default: return CLI_USAGE;
        }
    }
    if (optind + 1 != argc) {
        cli_error("stix show needs one ID");
        return CLI_USAGE;
    }
    const char *id = argv[optind];
    tr_stix_db *db;
    if (open_kb(ctx, false, &db) != 0)
        return CLI_FAIL;
    st.all = json_array();
    tr_error err;
    int rc;
    if (versions) {
        size_t n = 0;
        rc = tr_stix_versions_of(db, id, version_row, &st, &n, &err);
        if (rc == 0)
            rc = n > 0;
    } else {
        rc = tr_stix_get(db, id, show_row, &st, &err);
    }
    tr_stix_close(db);
    if (rc < 0) {
        json_decref(st.all);
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    if (rc == 0) {
        json_decref(st.all);
        cli_error("no object %s in the knowledge base", id);
        return CLI_FAIL;
    }
    if (st.json)
        print_json(versions ? st.all : json_array_get(st.all, 0));
    json_decref(st.all);
    return CLI_OK;
}

static int cmd_neighbours(const cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"depth", required_argument, NULL, 'd'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    long depth = 1;
    bool json = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "d:jh", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'd':
            depth = strtol(optarg, &end, 10);
            if (!*optarg || *end || depth < 1 || depth > 5) {
                cli_error("--depth takes a number from 1 to 5");
                return CLI_USAGE;
            }
            break;
        case 'j': json = true; break;
        case 'h': fputs(usage_text, stdout); return CLI_OK;
        default: return CLI_USAGE;
        }
    }
    if (optind + 1 != argc) {
        cli_error("stix neighbours needs one ID");
        return CLI_USAGE;
    }
    tr_stix_db *db;
    if (open_kb(ctx, false, &db) != 0)
        return CLI_FAIL;
    json_t *g = NULL;
    tr_error err;
    int rc = tr_stix_neighbours(db, argv[optind], (int)depth, &g, &err);
    tr_stix_close(db);
    if (rc < 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    if (rc == 0) {
        cli_error("no object %s in the knowledge base", argv[optind]);
        return CLI_FAIL;
    }
    if (json) {
        print_json(g);
    } else {
        json_t *names = json_object(), *nodes = json_object_get(g, "nodes");
        size_t i;
        json_t *o;
        json_array_foreach(nodes, i, o) {
            const char *id = json_string_value(json_object_get(o, "id"));
            if (id)
                json_object_set_new(names, id, json_sprintf("%s (%s)", display_name(o),
                                                            json_string_value(json_object_get(o, "type"))));
        }
        json_array_foreach(json_object_get(g, "edges"), i, o) {
            const char *src = json_string_value(json_object_get(o, "source_ref"));
            const char *dst = json_string_value(json_object_get(o, "target_ref"));
            json_t *sn = json_object_get(names, src), *dn = json_object_get(names, dst);
            printf("%s\t%s\t%s\n", sn ? json_string_value(sn) : src,
                   json_string_value(json_object_get(o, "relationship_type")),
                   dn ? json_string_value(dn) : dst);
        }
        json_decref(names);
    }
    json_decref(g);
    return CLI_OK;
}

static int cmd_collections(const cli_ctx *ctx, int argc, char **argv)
{
    bool json = false;
    int rc = cli_json_options(argc, argv, usage_text, &json);
    if (rc >= 0)
        return rc;
    tr_stix_db *db;
    if (open_kb(ctx, true, &db) != 0)
        return CLI_FAIL;
    tr_stix_collection *v = NULL;
    size_t n = 0;
    tr_error err;
    if (tr_stix_collections(db, &v, &n, &err) != 0) {
        tr_stix_close(db);
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    tr_stix_close(db);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (json)
            json_array_append_new(arr, json_pack("{ss ss ss sb ss ss*}", "id", v[i].id, "title",
                                                 v[i].title, "description", v[i].description,
                                                 "builtin", v[i].builtin, "read_role",
                                                 tr_role_name((tr_role)v[i].read_level), "write_role",
                                                 v[i].can_write ? tr_role_name((tr_role)v[i].write_level)
                                                                : NULL));
        else if (v[i].can_write)
            printf("%s\tread %s, write %s\t%s\n", v[i].id, tr_role_name((tr_role)v[i].read_level),
                   tr_role_name((tr_role)v[i].write_level), v[i].title);
        else
            printf("%s\tread %s, read-only\t%s\n", v[i].id, tr_role_name((tr_role)v[i].read_level),
                   v[i].title);
    }
    if (json)
        print_json(arr);
    json_decref(arr);
    free(v);
    return CLI_OK;
}

static int cmd_collection_add(const cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"read-role", required_argument, NULL, 'r'}, {"write-role", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    tr_role read = TR_ROLE_READER, write = TR_ROLE_ANALYST;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "r:w:h", opts, NULL)) != -1) {
        switch (c) {
        case 'r': read = tr_role_parse(optarg); break;
        case 'w': write = tr_role_parse(optarg); break;
        case 'h': fputs(usage_text, stdout); return CLI_OK;
        default: return CLI_USAGE;
        }
    }
    if (read == TR_ROLE_NONE || write < TR_ROLE_ANALYST) {
        cli_error("--read-role is reader; --write-role analyst or admin");
        return CLI_USAGE;
    }
    if (read > TR_ROLE_READER) {
        cli_error("%s", TR_STIX_READ_ROLE_MSG);
        return CLI_USAGE;
    }
    if (argc - optind < 1 || argc - optind > 2) {
        cli_error("stix collection-add needs TITLE [DESCRIPTION]");
        return CLI_USAGE;
    }
    tr_stix_db *db;
    if (open_kb(ctx, true, &db) != 0)
        return CLI_FAIL;
    tr_stix_collection col;
    tr_error err;
    int rc = tr_stix_collection_create(db, argv[optind], argc - optind > 1 ? argv[optind + 1] : "",
                                       read, write, &col, &err);
    tr_stix_close(db);
    if (rc != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    printf("%s\n", col.id);
    return CLI_OK;
}

static int cmd_rm(const cli_ctx *ctx, int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        cli_error("stix rm needs one ID");
        return CLI_USAGE;
    }
    tr_stix_db *db;
    if (open_kb(ctx, false, &db) != 0)
        return CLI_FAIL;
    tr_error err;
    int64_t n = tr_stix_delete(db, argv[1], &err);
    tr_stix_close(db);
    if (n < 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    if (n == 0) {
        cli_error("no object %s in the knowledge base", argv[1]);
        return CLI_FAIL;
    }
    printf("deleted %s (%lld version%s)\n", argv[1], (long long)n, n == 1 ? "" : "s");
    return CLI_OK;
}

int cli_cmd_stix(const cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2) {
        cli_error("stix needs a subcommand: import, export, search, show, neighbours, rm, collections");
        return CLI_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(usage_text, stdout);
        return CLI_OK;
    }
    if (strcmp(sub, "import") == 0)
        return cmd_import(ctx, argc - 1, argv + 1);
    if (strcmp(sub, "export") == 0)
        return cmd_export(ctx, argc - 1, argv + 1);
    if (strcmp(sub, "search") == 0)
        return cmd_search(ctx, argc - 1, argv + 1);
    if (strcmp(sub, "show") == 0)
        return cmd_show(ctx, argc - 1, argv + 1);
    if (strcmp(sub, "neighbours") == 0 || strcmp(sub, "neighbors") == 0)
        return cmd_neighbours(ctx, argc - 1, argv + 1);
    if (strcmp(sub, "collections") == 0)
        return cmd_collections(ctx, argc - 1, argv + 1);
    if (strcmp(sub, "rm") == 0)
        return cmd_rm(ctx, argc - 1, argv + 1);
    if (strcmp(sub, "collection-add") == 0)
        return cmd_collection_add(ctx, argc - 1, argv + 1);
    cli_error("unknown stix subcommand '%s'; 'trawl stix --help'", sub);
    return CLI_USAGE;
}
