/* pop3-config.c - the `pop3 { ... }` config section. */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>

#include "pop3-private.h"

#define FIELD(k, t, ...)                                                       \
	{                                                                      \
		.key = #k, .type = t,                                          \
		.offset = offsetof(struct pop3_config, k), __VA_ARGS__         \
	}

static const struct mp_cfg_field pop3_fields[] = {
	FIELD(timeout, MP_CFG_DURATION, .min = 1000,
	      .help = "time a client may stay silent (RFC 1939: at least 10m)"),
	FIELD(max_errors, MP_CFG_INT, .min = 1, .max = 1000,
	      .help = "client errors before the connection is closed"),
	FIELD(max_messages, MP_CFG_INT, .min = 1, .max = 10000000,
	      .help = "messages of INBOX one session shows (the oldest)"),
	FIELD(expire, MP_CFG_INT, .min = -1, .max = 100000,
	      .help = "days announced as EXPIRE (-1: NEVER; 0: messages "
		      "retrieved are deleted at QUIT)"),
	FIELD(sendfile, MP_CFG_BOOL,
	      .help = "send large messages with sendfile(2) when there is no "
		      "TLS (off for file systems where it misbehaves)"),
};

static void
pop3_defaults(void *p)
{
	struct pop3_config *c = p;

	/* RFC 1939 3: an autologout timer of at least 10 minutes. */
	c->timeout = 10 * 60 * 1000;
	/* Dovecot drops a client after 10 bad commands too. */
	c->max_errors = 10;
	/* A snapshot entry is 16 bytes: 100000 messages take 1.6 MB, and a
	 * client drains a larger INBOX over several sessions. */
	c->max_messages = 100000;
	c->expire = -1;
	c->sendfile = true;
}

const struct mp_cfg_section pop3_config_section = {
	.name = "pop3",
	.fields = pop3_fields,
	.n_fields = MP_NELEMS(pop3_fields),
	.struct_size = sizeof(struct pop3_config),
	.set_defaults = pop3_defaults,
};
