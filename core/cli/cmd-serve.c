/* cmd-serve.c - `moonpost serve`: run the server. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <moonpost/server.h>

#include "cli.h"
#include "dev.h"

struct serve_opts {
	const char *config;
	const char *data_dir;
	const char *plugin_dir;
	int port_offset;
	bool dev;
};

static void
serve_usage(FILE *out)
{
	fprintf(out,
		"usage: moonpost serve [-c CONFIG] [--plugin-dir DIR]\n"
		"       moonpost serve --dev [--data-dir DIR] [--port-offset "
		"N]\n"
		"\n"
		"Runs the server in the foreground until SIGTERM; SIGHUP "
		"reloads the config\nand the Lua scripts.\n\n"
		"  -c, --config FILE    config file (default %s)\n"
		"      --dev            no config file: a dev server on "
		"127.0.0.1 with a\n"
		"                       self-signed certificate and the "
		"account %s\n"
		"      --data-dir DIR   dev data directory (default %s)\n"
		"      --port-offset N  dev ports are the standard ones plus N "
		"(default %d):\n"
		"                       mx 10025, submission 10587, "
		"submissions 10465,\n"
		"                       imap 10143, imaps 10993, pop3 10110, "
		"pop3s 10995\n"
		"      --plugin-dir DIR where protocol plugins are (default "
		"%s)\n",
		MP_CLI_DEFAULT_CONFIG, MP_DEV_DEMO_ADDRESS,
		MP_CLI_DEFAULT_DEV_DIR, MP_DEV_DEFAULT_PORT_OFFSET,
		mp_default_plugin_dir());
}

static int
parse_offset(const char *s, int *offset_r)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v < 0 ||
	    v > MP_DEV_MAX_PORT_OFFSET)
		return -1;
	*offset_r = (int)v;
	return 0;
}

/* Returns -1 to go on, or an exit code. */
static int
parse_args(int argc, char **argv, struct serve_opts *o)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"dev", no_argument, NULL, 'd'},
		{"data-dir", required_argument, NULL, 'D'},
		{"port-offset", required_argument, NULL, 'p'},
		{"plugin-dir", required_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	o->port_offset = MP_DEV_DEFAULT_PORT_OFFSET;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 'd':
			o->dev = true;
			break;
		case 'D':
			o->data_dir = optarg;
			o->dev = true;
			break;
		case 'P':
			o->plugin_dir = optarg;
			break;
		case 'p':
			if (parse_offset(optarg, &o->port_offset) < 0) {
				mp_cli_error("--port-offset: expected 0..%d",
					     MP_DEV_MAX_PORT_OFFSET);
				return EX_USAGE;
			}
			o->dev = true;
			break;
		case 'h':
			serve_usage(stdout);
			return EX_OK;
		default:
			serve_usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind < argc) {
		mp_cli_error("serve: unexpected argument '%s'", argv[optind]);
		return EX_USAGE;
	}
	if (o->dev && o->config != NULL) {
		mp_cli_error("serve: --dev and -c exclude each other");
		return EX_USAGE;
	}
	return -1;
}

static void
print_banner(struct mp_server *server, const char *dir, const char *password)
{
	size_t n = mp_server_listener_count(server);

	printf("moonpost %s dev server, data in %s\n", PACKAGE_VERSION, dir);
	for (size_t i = 0; i < n; i++) {
		const char *address;
		const struct mp_cfg_listener *l =
			mp_server_listener(server, i, &address);
		printf("  %-12s %-16s %s%s\n", l->name, address, l->protocol,
		       l->tls == MP_TLS_IMPLICIT   ? ", implicit TLS"
		       : l->tls == MP_TLS_STARTTLS ? ", STARTTLS"
						   : "");
	}
	if (n == 0)
		printf("  (no protocol plugin is built yet: no listeners)\n");
	if (password != NULL)
		printf("account %s, password %s\n"
		       "  (shown this once; it is stored hashed in "
		       "%s/passwd)\n",
		       MP_DEV_DEMO_ADDRESS, password, dir);
	else
		printf("account %s (password shown at first start; "
		       "`moonpost user passwd --data-dir %s %s` sets a new "
		       "one)\n",
		       MP_DEV_DEMO_ADDRESS, dir, MP_DEV_DEMO_ADDRESS);
	fflush(stdout);
}

static int
run(struct mp_server_settings *set, const char *dev_dir, const char *password)
{
	char *error = NULL;
	struct mp_server *server = mp_server_new(set, &error);
	int code;

	if (server == NULL) {
		mp_cli_error("%s", error);
		free(error);
		return EX_CONFIG;
	}
	if (dev_dir != NULL)
		print_banner(server, dev_dir, password);
	code = mp_server_run(server);
	mp_server_free(&server);
	return code;
}

static int
serve_dev(const struct serve_opts *o, struct mp_server_settings *set)
{
	const char *dir_arg =
		o->data_dir ? o->data_dir : MP_CLI_DEFAULT_DEV_DIR;
	char *password = NULL, *error = NULL, *dir, *source;
	int code;

	if (!mp_dev_prepare(dir_arg, &password, &error) ||
	    (dir = mp_cli_absolute_dir(dir_arg, &error)) == NULL) {
		mp_cli_error("%s", error);
		free(error);
		free(password);
		return EX_CANTCREAT;
	}
	source = mp_dev_config_source(dir, o->port_offset);
	set->config_source = source;
	set->config_name = MP_DEV_CONFIG_NAME;
	set->config_dir = dir;
	set->dev = true;
	code = run(set, dir, password);
	if (password != NULL)
		memset(password, 0, strlen(password));
	free(password);
	free(source);
	free(dir);
	return code;
}

int
mp_cmd_serve(int argc, char **argv)
{
	struct serve_opts o = {0};
	struct mp_server_settings set = {0};
	int code = parse_args(argc, argv, &o);

	if (code >= 0)
		return code;
	set.plugin_dir = o.plugin_dir;
	if (o.dev)
		return serve_dev(&o, &set);
	set.config_path = o.config != NULL ? o.config : MP_CLI_DEFAULT_CONFIG;
	return run(&set, NULL, NULL);
}
