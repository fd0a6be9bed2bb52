/* cli.h - what the subcommands of the moonpost binary share. */
#ifndef MOONPOST_CLI_H
#define MOONPOST_CLI_H

#include <sysexits.h>

#include <moonpost/config.h>

/* Default config file when neither -c nor --data-dir is given. */
#define MP_CLI_DEFAULT_CONFIG SYSCONFDIR "/moonpost/moonpost.conf"
/* Default dev data directory of `serve --dev`. */
#define MP_CLI_DEFAULT_DEV_DIR "./moonpost-dev"

/* Each subcommand: argv[0] is the subcommand's name. Returns a sysexits
 * code. */
int mp_cmd_serve(int argc, char **argv);
int mp_cmd_check_config(int argc, char **argv);
int mp_cmd_user(int argc, char **argv);
int mp_cmd_import(int argc, char **argv);
int mp_cmd_export(int argc, char **argv);
int mp_cmd_deliver(int argc, char **argv);

/* Loads the config a non-serve subcommand works on: the file given with -c,
 * or the dev config of the data directory given with --data-dir (which must
 * already exist: `serve --dev` creates it). Plugin sections are not checked
 * (that is check-config's job). NULL with *error_r (caller frees) on
 * failure. */
struct mp_config *mp_cli_load_config(const char *config_path,
				     const char *data_dir, char **error_r);

/* The absolute, resolved form of an existing directory; NULL with *error_r
 * (caller frees). Caller frees the result. */
char *mp_cli_absolute_dir(const char *dir, char **error_r);

/* Prints "moonpost: " and the message to stderr. */
void mp_cli_error(const char *fmt, ...) MP_PRINTF(1, 2);

#endif
