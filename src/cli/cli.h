/* cli: the `trawl` command and its subcommands. Parses arguments, calls the
 * library, prints. No business logic lives here. */
#ifndef TRAWL_CLI_H
#define TRAWL_CLI_H

#include <stdbool.h>

/* Exit codes: 0 success, 1 failure, 2 usage error. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

typedef struct cli_ctx {
    const char *data_dir;     /* --data DIR, $TRAWL_DATA, or ./var */
    bool stderr_tty;          /* progress bars only on a terminal */
} cli_ctx;

/* Each subcommand receives argv with argv[0] = its own name. */
int cli_cmd_add(const cli_ctx *ctx, int argc, char **argv);
int cli_cmd_info(const cli_ctx *ctx, int argc, char **argv);
int cli_cmd_ls(const cli_ctx *ctx, int argc, char **argv);
int cli_cmd_similar(const cli_ctx *ctx, int argc, char **argv);
int cli_cmd_rm(const cli_ctx *ctx, int argc, char **argv);
int cli_cmd_fsck(const cli_ctx *ctx, int argc, char **argv);
int cli_cmd_serve(const cli_ctx *ctx, int argc, char **argv);
int cli_cmd_index(const cli_ctx *ctx, int argc, char **argv);
int cli_cmd_plan(const cli_ctx *ctx, int argc, char **argv);
int cli_cmd_key(const cli_ctx *ctx, int argc, char **argv);
int cli_cmd_hunt(const cli_ctx *ctx, int argc, char **argv);
int cli_cmd_hunts(const cli_ctx *ctx, int argc, char **argv);
int cli_cmd_results(const cli_ctx *ctx, int argc, char **argv);
int cli_cmd_rules(const cli_ctx *ctx, int argc, char **argv);
int cli_cmd_sensor(const cli_ctx *ctx, int argc, char **argv);
int cli_cmd_noise(const cli_ctx *ctx, int argc, char **argv);
int cli_cmd_stix(const cli_ctx *ctx, int argc, char **argv);
int cli_cmd_kb(const cli_ctx *ctx, int argc, char **argv);
int cli_cmd_import(const cli_ctx *ctx, int argc, char **argv);
int cli_cmd_export(const cli_ctx *ctx, int argc, char **argv);
int cli_cmd_report(const cli_ctx *ctx, int argc, char **argv);
int cli_cmd_analyze(const cli_ctx *ctx, int argc, char **argv);

/* Options of a command that takes only --json and --help: returns -1 to go
 * on (optind at the first operand), else the exit code (help printed to
 * stdout, or a usage error). */
int cli_json_options(int argc, char **argv, const char *usage, bool *json);

/* Prints "trawl: <msg>" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
