/* main.c - the moonpost command: dispatch to a subcommand. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{"serve", mp_cmd_serve,
	 "run the server (--dev: a ready-made dev server)"},
	{"check-config", mp_cmd_check_config, "check a config file and exit"},
	{"user", mp_cmd_user, "manage accounts: add, passwd, del, list"},
	{"deliver", mp_cmd_deliver, "deliver a message from stdin (an LDA)"},
	{"import", mp_cmd_import, "import a Dovecot or Courier Maildir"},
	{"export", mp_cmd_export, "export an account's mail as a Maildir"},
};

static void
usage(FILE *out)
{
	fprintf(out, "usage: moonpost COMMAND [OPTIONS]\n\n"
		     "moonpost is a mail server: SMTP, POP3 and IMAP, scripted "
		     "in Lua.\n\ncommands:\n");
	for (size_t i = 0; i < MP_NELEMS(commands); i++)
		fprintf(out, "  %-14s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(out,
		"\nEvery command takes -c CONFIG (default %s)\n"
		"or --data-dir DIR (a dev data directory), and --help.\n"
		"Try: moonpost serve --dev\n",
		MP_CLI_DEFAULT_CONFIG);
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EX_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return EX_OK;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("moonpost %s\n", PACKAGE_VERSION);
		return EX_OK;
	}
	for (size_t i = 0; i < MP_NELEMS(commands); i++) {
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	}
	mp_cli_error("unknown command '%s' (try: moonpost --help)", argv[1]);
	return EX_USAGE;
}
