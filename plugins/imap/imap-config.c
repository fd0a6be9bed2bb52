/* imap-config.c - the `imap { ... }` config section. */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>

#include "imap-private.h"

#define FIELD(k, t, ...)                                                       \
	{                                                                      \
		.key = #k, .type = t,                                          \
		.offset = offsetof(struct imap_config, k), __VA_ARGS__         \
	}

static const struct mp_cfg_field imap_fields[] = {
	FIELD(timeout_preauth, MP_CFG_DURATION, .min = 1000,
	      .help = "time a client may stay silent before logging in"),
	FIELD(timeout, MP_CFG_DURATION, .min = 60000,
	      .help = "time a logged-in client may stay silent (RFC 9051: "
		      "at least 30m)"),
	FIELD(max_errors, MP_CFG_INT, .min = 1, .max = 1000,
	      .help = "BAD replies in a row before the connection is closed"),
	FIELD(append_limit, MP_CFG_INT, .min = 0, .max = INT64_MAX,
	      .help = "largest message APPEND takes, in octets "
		      "(APPENDLIMIT; 0: no limit of its own)"),
};

static void
imap_defaults(void *p)
{
	struct imap_config *c = p;

	/* Dovecot gives a client 60 s to log in (login_timeout... in
	 * effect); RFC 9051 5.4 asks for 30 minutes after login. */
	c->timeout_preauth = 60 * 1000;
	c->timeout = 30 * 60 * 1000;
	/* Dovecot drops a client after 10 bad commands in a row. */
	c->max_errors = 10;
	c->append_limit = 64LL * 1024 * 1024;
}

const struct mp_cfg_section imap_config_section = {
	.name = "imap",
	.fields = imap_fields,
	.n_fields = MP_NELEMS(imap_fields),
	.struct_size = sizeof(struct imap_config),
	.set_defaults = imap_defaults,
};
