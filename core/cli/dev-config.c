/* dev-config.c - the built-in config of `serve --dev`.
 *
 * It is Lua text run through the same loader as any config file, so dev mode
 * cannot drift from what the loader accepts. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "dev.h"

/* Appends s as a Lua string literal. */
static void
lua_quote(struct mp_buf *buf, const char *s)
{
	mp_buf_puts(buf, "\"");
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			mp_buf_printf(buf, "\\%c", c);
		else if (c < ' ' || c == 0x7f)
			mp_buf_printf(buf, "\\%03u", c);
		else
			mp_buf_append(buf, s, 1);
	}
	mp_buf_puts(buf, "\"");
}

struct dev_listener {
	const char *name;
	const char *protocol;
	const char *role;
	int port;
	const char *tls;
};

static const struct dev_listener dev_listeners[] = {
	{"mx", "smtp", "mx", 25, "starttls"},
	{"submission", "smtp", "submission", 587, "starttls"},
	{"submissions", "smtp", "submissions", 465, "implicit"},
	{"imap", "imap", NULL, 143, "starttls"},
	{"imaps", "imap", NULL, 993, "implicit"},
	{"pop3", "pop3", NULL, 110, "starttls"},
	{"pop3s", "pop3", NULL, 995, "implicit"},
};

char *
mp_dev_config_source(const char *dir, int port_offset)
{
	struct mp_buf buf = {0};

	mp_buf_puts(&buf, "-- moonpost serve --dev: built in, not read from a "
			  "file\nhostname = \"localhost\"\ndata_dir = ");
	lua_quote(&buf, dir);
	mp_buf_puts(&buf, "\ndomains = { \"example.test\", \"localhost\" }\n"
			  "tls { cert = \"tls/cert.pem\", key = "
			  "\"tls/key.pem\" }\n");
	for (size_t i = 0; i < MP_NELEMS(dev_listeners); i++) {
		const struct dev_listener *l = &dev_listeners[i];

		mp_buf_printf(&buf,
			      "listen { name = \"%s\", protocol = \"%s\", ",
			      l->name, l->protocol);
		if (l->role != NULL)
			mp_buf_printf(&buf, "role = \"%s\", ", l->role);
		mp_buf_printf(&buf,
			      "address = \"127.0.0.1:%d\", tls = \"%s\" }\n",
			      l->port + port_offset, l->tls);
	}
	return mp_buf_steal(&buf);
}
