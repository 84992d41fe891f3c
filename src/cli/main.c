/* trawl: command-line entry point and subcommand dispatch. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/core.h"
#include "report/report.h"

#define TRAWL_VERSION "0.1.0"

typedef struct command {
    const char *name;
    int (*run)(const cli_ctx *, int, char **);
    const char *summary;
} command;

static const command commands[] = {
    {"add", cli_cmd_add, "add files or directories to the sample store"},
    {"info", cli_cmd_info, "show one sample by md5, sha1 or sha256"},
    {"ls", cli_cmd_ls, "list samples, newest first"},
    {"similar", cli_cmd_similar, "the samples nearest to one by tlsh, ssdeep, imphash, telfhash"},
    {"rm", cli_cmd_rm, "remove a sample"},
    {"fsck", cli_cmd_fsck, "check (and --repair) the store's consistency"},
    {"analyze", cli_cmd_analyze, "telfhash and code-signing certificates for stored samples"},
    {"index", cli_cmd_index, "index status, update, compact, verify"},
    {"hunt", cli_cmd_hunt, "find the samples matching YARA rules (retrohunt)"},
    {"hunts", cli_cmd_hunts, "list hunt jobs"},
    {"results", cli_cmd_results, "show one hunt job and its matches"},
    {"rules", cli_cmd_rules, "saved live rule sets: add ls rm enable disable hits"},
    {"plan", cli_cmd_plan, "show how YARA rules would be searched in the index"},
    {"serve", cli_cmd_serve, "run the HTTP server and web UI"},
    {"key", cli_cmd_key, "manage the server's API keys"},
    {"sensor", cli_cmd_sensor, "listen as a low-interaction sensor, emit events"},
    {"noise", cli_cmd_noise, "internet noise: import events, IP records, tags, actors"},
    {"stix", cli_cmd_stix, "STIX 2.1 knowledge base: import export search show neighbours rm"},
    {"kb", cli_cmd_kb, "knowledge-base links: sync trawl's data, match indicators"},
    {"import", cli_cmd_import, "import report FILE...: documents become draft STIX reports"},
    {"export", cli_cmd_export, "samples as MalwareBazaar's exports: CSV, JSON, hash lists, daily zip"},
    {"report", cli_cmd_report, "report drafts kept for review: draft drafts show review commit rm"},
};

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("trawl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_json_options(int argc, char **argv, const char *usage_text, bool *json)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    int c;
    *json = false;
    optind = 0;
    while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
        if (c == 'j') {
            *json = true;
        } else if (c == 'h') {
            fputs(usage_text, stdout);
            return CLI_OK;
        } else {
            return CLI_USAGE;
        }
    }
    return -1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: trawl [--data DIR] COMMAND [ARGS]\n\n"
               "A self-hosted threat-hunting platform: sample store, YARA hunting, intel.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nThe data directory is --data DIR, else $TRAWL_DATA, else ./var.\n"
               "Run 'trawl COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    /* Before anything else: the helper shares nothing with a trawl run. */
    if (tr_doc_helper_requested(argc, argv))
        return tr_doc_helper_main(argc, argv);
    tr_sqlite_process_setup();
    cli_ctx ctx = {0};
    ctx.data_dir = getenv("TRAWL_DATA");
    if (!ctx.data_dir || !*ctx.data_dir)
        ctx.data_dir = "./var";
    ctx.stderr_tty = isatty(STDERR_FILENO);

    /* --data may stand anywhere before "--"; it is taken out of argv. */
    int n = 0;
    bool rest = false;
    for (int i = 0; i < argc; i++) {
        if (!rest && strcmp(argv[i], "--") == 0)
            rest = true;
        if (!rest && strcmp(argv[i], "--data") == 0) {
            if (i + 1 >= argc) {
                cli_error("--data needs a directory");
                return CLI_USAGE;
            }
            ctx.data_dir = argv[++i];
            continue;
        }
        if (!rest && strncmp(argv[i], "--data=", 7) == 0) {
            ctx.data_dir = argv[i] + 7;
            continue;
        }
        argv[n++] = argv[i];
    }
    argc = n;
    argv[argc] = NULL;

    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("trawl %s\n", TRAWL_VERSION);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].run(&ctx, argc - 1, argv + 1);
    cli_error("unknown command '%s'; 'trawl --help' lists the commands", name);
    return CLI_USAGE;
}
