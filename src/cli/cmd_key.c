/* trawl key add|ls|rm: API keys for the server. */
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "cli/cli.h"
#include "store/store.h"

static int usage(void)
{
    printf("usage: trawl key add --role reader|analyst|admin NAME\n"
           "       trawl key ls\n"
           "       trawl key rm NAME\n"
           "A new key is printed once; only its hash is kept.\n");
    return CLI_OK;
}

int cli_cmd_key(const cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        if (argc < 2) {
            cli_error("key needs a subcommand: add, ls or rm");
            return CLI_USAGE;
        }
        return usage();
    }
    const char *sub = argv[1];
    const char *role = NULL, *name = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
            role = argv[++i];
        else if (strncmp(argv[i], "--role=", 7) == 0)
            role = argv[i] + 7;
        else if (argv[i][0] == '-') {
            cli_error("unknown option %s; 'trawl key --help'", argv[i]);
            return CLI_USAGE;
        } else if (!name)
            name = argv[i];
        else {
            cli_error("too many arguments; 'trawl key --help'");
            return CLI_USAGE;
        }
    }
    bool add = strcmp(sub, "add") == 0, ls = strcmp(sub, "ls") == 0, rm = strcmp(sub, "rm") == 0;
    if (!add && !ls && !rm) {
        cli_error("unknown key subcommand '%s' (add, ls, rm)", sub);
        return CLI_USAGE;
    }
    if ((add || rm) && !name) {
        cli_error("key %s needs a NAME", sub);
        return CLI_USAGE;
    }
    if (add && tr_role_parse(role) == TR_ROLE_NONE) {
        cli_error("key add needs --role reader, analyst or admin");
        return CLI_USAGE;
    }
    tr_error err;
    tr_store *s = NULL;
    /* The store creates the data directory and database the keys live in. */
    if (tr_store_open(ctx->data_dir, add ? TR_STORE_CREATE : 0, &s, &err) != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    tr_store_close(s);
    tr_auth *a = NULL;
    if (tr_auth_open(ctx->data_dir, &a, &err) != 0) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    int status = CLI_OK;
    if (add) {
        char key[TR_KEY_LEN];
        if (tr_auth_add_key(a, name, tr_role_parse(role), key, &err) != 0) {
            cli_error("%s", err.msg);
            status = CLI_FAIL;
        } else {
            printf("%s\n", key);
            fprintf(stderr, "trawl: key '%s' (%s) created; it is shown only this once\n", name,
                    role);
        }
    } else if (rm) {
        int rc = tr_auth_remove_key(a, name, &err);
        if (rc < 0)
            cli_error("%s", err.msg);
        else if (rc == 0)
            cli_error("no key named '%s'", name);
        else
            printf("removed key %s\n", name);
        status = rc == 1 ? CLI_OK : CLI_FAIL;
    } else {
        tr_key_info *keys = NULL;
        size_t n = 0;
        if (tr_auth_list_keys(a, &keys, &n, &err) != 0) {
            cli_error("%s", err.msg);
            status = CLI_FAIL;
        }
        for (size_t i = 0; i < n; i++) {
            char created[32], used[32];
            tr_format_time(keys[i].created, created);
            tr_format_time(keys[i].last_used, used);
            printf("%-24s %-8s created %s  last used %s\n", keys[i].name,
                   tr_role_name(keys[i].role), created, keys[i].last_used ? used : "never");
        }
        free(keys);
    }
    tr_auth_close(a);
    return status;
}
