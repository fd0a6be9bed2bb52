/* cmd-check-config.c - `moonpost check-config`: validate and exit. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <moonpost/server.h>

#include "cli.h"
#include "dev.h"

static void
check_usage(FILE *out)
{
	fprintf(out,
		"usage: moonpost check-config [FILE | -c FILE | --data-dir DIR]"
		" [--plugin-dir DIR]\n\n"
		"Loads the config as `serve` would (plugins, their sections "
		"and roles,\ncertificates, Lua scripts) without binding "
		"anything, and prints\n\"FILE: ok\" or the first error as "
		"FILE:LINE: message (exit code 78).\n");
}

static int
check(const char *path, const char *data_dir, const char *plugin_dir)
{
	struct mp_server_settings set = {.check_only = true,
					 .no_signals = true,
					 .plugin_dir = plugin_dir};
	char *error = NULL, *dir = NULL, *source = NULL;
	struct mp_server *server;

	if (data_dir != NULL) {
		dir = mp_cli_absolute_dir(data_dir, &error);
		if (dir == NULL)
			goto fail;
		source = mp_dev_config_source(dir, MP_DEV_DEFAULT_PORT_OFFSET);
		set.config_source = source;
		set.config_name = MP_DEV_CONFIG_NAME;
		set.config_dir = dir;
		set.dev = true;
	} else {
		set.config_path = path;
	}
	server = mp_server_new(&set, &error);
	if (server == NULL)
		goto fail;
	printf("%s: ok\n", data_dir != NULL ? MP_DEV_CONFIG_NAME : path);
	mp_server_free(&server);
	free(source);
	free(dir);
	return EX_OK;
fail:
	mp_cli_error("%s", error);
	free(error);
	free(source);
	free(dir);
	return EX_CONFIG;
}

int
mp_cmd_check_config(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"data-dir", required_argument, NULL, 'D'},
		{"plugin-dir", required_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *path = NULL, *data_dir = NULL, *plugin_dir = NULL;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'D':
			data_dir = optarg;
			break;
		case 'P':
			plugin_dir = optarg;
			break;
		case 'h':
			check_usage(stdout);
			return EX_OK;
		default:
			check_usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind < argc && path == NULL)
		path = argv[optind++];
	if (optind < argc || (path != NULL && data_dir != NULL)) {
		check_usage(stderr);
		return EX_USAGE;
	}
	if (path == NULL && data_dir == NULL)
		path = MP_CLI_DEFAULT_CONFIG;
	return check(path, data_dir, plugin_dir);
}
