/* smtp-config.c - the `smtp { ... }` config section. */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>

#include "smtp-private.h"

static const char *const bare_lf_modes[] = {"normalize", "strict", NULL};

#define FIELD(k, t, ...)                                                       \
	{                                                                      \
		.key = #k, .type = t,                                          \
		.offset = offsetof(struct smtp_config, k), __VA_ARGS__         \
	}

static const struct mp_cfg_field smtp_fields[] = {
	FIELD(max_message_size, MP_CFG_SIZE, .min = 1024,
	      .help = "largest message accepted (SIZE)"),
	FIELD(max_recipients, MP_CFG_INT, .min = 1, .max = 100000,
	      .help = "recipients per message"),
	FIELD(max_commands, MP_CFG_INT, .min = 10, .max = 10000000,
	      .help = "commands per connection"),
	FIELD(max_errors, MP_CFG_INT, .min = 1, .max = 1000,
	      .help = "errors before the connection is closed"),
	FIELD(timeout, MP_CFG_DURATION, .min = 1000,
	      .help = "time a client may take to send a command"),
	FIELD(data_timeout, MP_CFG_DURATION, .min = 1000,
	      .help = "time a client may pause while sending a message"),
	FIELD(bare_lf, MP_CFG_ENUM, .choices = bare_lf_modes,
	      .help = "normalize or strict: what a bare LF in a message does"),
	FIELD(allow_sender_mismatch, MP_CFG_BOOL,
	      .help = "let authenticated users send as any address"),
	FIELD(banner, MP_CFG_STRING, .help = "text after the 220 code"),
};

static void
smtp_defaults(void *p)
{
	struct smtp_config *c = p;

	/* Postfix's message_size_limit is 10 MB; mail has grown since. */
	c->max_message_size = 50ULL * 1024 * 1024;
	/* RFC 5321 4.5.3.1.8 asks for at least 100. */
	c->max_recipients = 100;
	c->max_commands = 10000;
	/* Postfix's smtpd_hard_error_limit is 20; bots rarely need more than
	 * a few tries to show what they are. */
	c->max_errors = 10;
	/* RFC 5321 4.5.3.2: five minutes for a command, ten for data. */
	c->timeout = 5 * 60 * 1000;
	c->data_timeout = 10 * 60 * 1000;
	c->bare_lf = SMTP_BARE_LF_NORMALIZE;
	c->allow_sender_mismatch = false;
	c->banner = NULL;
}

const struct mp_cfg_section smtp_config_section = {
	.name = "smtp",
	.fields = smtp_fields,
	.n_fields = MP_NELEMS(smtp_fields),
	.struct_size = sizeof(struct smtp_config),
	.set_defaults = smtp_defaults,
};
