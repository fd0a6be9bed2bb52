/* cli.c - what the subcommands share: errors, finding the config. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "dev.h"

void
mp_cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("moonpost: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

char *
mp_cli_absolute_dir(const char *dir, char **error_r)
{
	char path[PATH_MAX];

	if (realpath(dir, path) == NULL) {
		*error_r = mp_xasprintf("%s: %s", dir, strerror(errno));
		return NULL;
	}
	return mp_xstrdup(path);
}

struct mp_config *
mp_cli_load_config(const char *config_path, const char *data_dir,
		   char **error_r)
{
	struct mp_config *cfg;
	char *dir, *source;

	if (data_dir == NULL)
		return mp_config_load(config_path != NULL
					      ? config_path
					      : MP_CLI_DEFAULT_CONFIG,
				      NULL, error_r);
	dir = mp_cli_absolute_dir(data_dir, error_r);
	if (dir == NULL)
		return NULL;
	source = mp_dev_config_source(dir, MP_DEV_DEFAULT_PORT_OFFSET);
	cfg = mp_config_load_string(MP_DEV_CONFIG_NAME, source, dir, NULL,
				    error_r);
	free(source);
	free(dir);
	return cfg;
}
