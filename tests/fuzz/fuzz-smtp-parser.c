/* fuzz-smtp-parser.c - the SMTP command parser against arbitrary lines.
 *
 * The first byte picks the limits (bits 0-2: NULL, before AUTH, after AUTH,
 * tiny, relaxed, all zero, one octet, tiny sizes); the rest is the line, as
 * the framer would hand it over. Checks the promises of smtp-parser.h: only
 * MP_OK or MP_DECLINED; a declined line gets one of the allowed replies,
 * printable and one line long; every view lies inside the line; every limit
 * holds; a canonical mailbox parses back to itself; parsing is
 * deterministic. The line also goes through the mailbox parser, xtext both
 * ways and the reply formatter. */
#include "config.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "smtp-address.h"
#include "smtp-parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct smtp_limits *
pick_limits(uint8_t sel, struct smtp_limits *lim)
{
	static const struct smtp_limits tiny = {
		.local_part_max = 8,
		.domain_max = 16,
		.path_max = 32,
		.params_max = 1,
		.arg_max = 8,
		.auth_response_max = 8,
		.message_size_max = 1000,
		.bdat_chunk_max = 100,
	};
	static const struct smtp_limits one = {
		.local_part_max = 1,
		.domain_max = 1,
		.path_max = 1,
		.params_max = 1,
		.arg_max = 1,
		.auth_response_max = 1,
		.message_size_max = 1,
		.bdat_chunk_max = 1,
	};

	smtp_parser_limits_init(lim, (sel & 7) == 2);
	switch (sel & 7) {
	case 0:
		return NULL;
	case 3:
		*lim = tiny;
		break;
	case 4:
		lim->local_part_max = 100000;
		lim->domain_max = 100000;
		lim->path_max = 100000;
		lim->message_size_max = UINT64_MAX;
		lim->bdat_chunk_max = UINT64_MAX;
		break;
	case 5:
		memset(lim, 0, sizeof(*lim));
		break;
	case 6:
		*lim = one;
		break;
	case 7:
		lim->message_size_max = 1;
		lim->bdat_chunk_max = 1;
		break;
	}
	return lim;
}

static bool
inside(struct mp_str v, const char *line, size_t len)
{
	if (v.p == NULL)
		return v.len == 0;
	return v.p >= line && v.len <= len &&
	       (size_t)(v.p - line) <= len - v.len;
}

static bool
printable(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s < 32 || *s > 126)
			return false;
	}
	return true;
}

static bool
has_8bit(struct mp_str v)
{
	for (size_t i = 0; i < v.len; i++) {
		if ((unsigned char)v.p[i] >= 0x80)
			return true;
	}
	return false;
}

/* The codes smtp-parser.h promises, in the pairs the parser uses. */
static bool
error_allowed(int code, const char *enh)
{
	static const struct {
		int code;
		const char *enh;
	} ok[] = {
		{500, "5.5.2"}, {500, "5.5.6"}, {501, "5.5.4"},
		{501, "5.5.2"}, {501, "5.1.7"}, {501, "5.1.3"},
		{552, "5.3.4"}, {553, "5.6.7"}, {555, "5.5.4"},
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (ok[i].code == code && strcmp(ok[i].enh, enh) == 0)
			return true;
	}
	return false;
}

static void
check_reply(int code, const char *enh, const char *text)
{
	struct mp_buf b = {0};

	smtp_reply_format(&b, code, enh, text);
	assert(b.len <= 512);
	assert(strchr(b.data, '\r') == b.data + b.len - 2);
	assert(strchr(b.data, '\n') == b.data + b.len - 1);
	mp_buf_free(&b);
}

static void
check_error(const struct smtp_cmd *cmd)
{
	const struct smtp_error *e = &cmd->error;

	assert(e->enhanced != NULL && error_allowed(e->code, e->enhanced));
	assert(e->text[0] != '\0' && printable(e->text));
	assert((cmd->verb == SMTP_VERB_NONE) ==
	       (e->code == 500 && strcmp(e->enhanced, "5.5.2") == 0));
	if (cmd->verb == SMTP_VERB_BDAT && cmd->bdat.size_known &&
	    e->code == 501)
		assert(strcmp(e->enhanced, "5.5.4") == 0);
	check_reply(e->code, e->enhanced, e->text);
}

/* A canonical mailbox is a mailbox, and its own canonical form. */
static void
check_canonical(const struct smtp_path *p)
{
	struct smtp_limits big = {.local_part_max = SMTP_PATH_CAP,
				  .domain_max = SMTP_PATH_CAP,
				  .path_max = SMTP_PATH_CAP};
	static struct smtp_path again;

	assert(smtp_address_parse_mailbox(p->mailbox, p->mailbox_len, &big,
					  &again) == SMTP_ADDR_OK);
	assert(again.mailbox_len == p->mailbox_len);
	assert(memcmp(again.mailbox, p->mailbox, p->mailbox_len) == 0);
	assert(again.mailbox_local_len == p->mailbox_local_len);
	assert(again.utf8 == p->utf8 || p->route);
}

static void
check_path(const struct smtp_cmd *cmd, const char *line, size_t len,
	   const struct smtp_limits *lim)
{
	const struct smtp_path *p = &cmd->path;

	assert(inside(p->raw, line, len) && inside(p->local, line, len) &&
	       inside(p->domain, line, len));
	assert(p->raw.len + 2 <= lim->path_max);
	assert(p->local.len <= lim->local_part_max);
	assert(p->domain.len <= lim->domain_max);
	assert(strlen(p->mailbox) == p->mailbox_len);
	assert(p->mailbox_len <= p->raw.len);
	assert(p->mailbox_local_len <= p->mailbox_len);
	assert(p->utf8 == has_8bit(p->raw));
	assert(cmd->verb == SMTP_VERB_MAIL ? !p->postmaster : !p->null);
	if (p->null)
		assert(p->raw.len == 0 && p->mailbox_len == 0);
	else if (!p->postmaster)
		check_canonical(p);
}

static void
check_mail(const struct smtp_mail_params *m, const char *line, size_t len,
	   const struct smtp_limits *lim, bool utf8)
{
	assert(!m->has_size || m->size <= lim->message_size_max);
	assert(!utf8 || m->smtputf8);
	assert(inside(m->auth_raw, line, len));
	assert(m->has_auth || (!m->auth_null && m->auth_len == 0));
	if (m->has_auth && !m->auth_null) {
		assert(strlen(m->auth) == m->auth_len && m->auth_len > 0);
		assert(m->auth_len <= lim->path_max);
		assert(m->auth_len <= m->auth_raw.len);
	}
}

static void
check_cmd(const struct smtp_cmd *cmd, const char *line, size_t len,
	  const struct smtp_limits *lim)
{
	assert(cmd->verb != SMTP_VERB_NONE);
	assert(inside(cmd->arg, line, len));
	assert(inside(cmd->auth_response, line, len));
	switch (cmd->verb) {
	case SMTP_VERB_MAIL:
		check_path(cmd, line, len, lim);
		check_mail(&cmd->mail, line, len, lim, cmd->path.utf8);
		break;
	case SMTP_VERB_RCPT:
		check_path(cmd, line, len, lim);
		break;
	case SMTP_VERB_BDAT:
		assert(cmd->bdat.size_known);
		assert(cmd->bdat.size <= lim->bdat_chunk_max);
		break;
	case SMTP_VERB_AUTH:
		assert(cmd->arg.len > 0 && cmd->arg.len <= SMTP_MECH_MAX);
		assert(cmd->auth_response.len <= lim->auth_response_max);
		break;
	case SMTP_VERB_EHLO:
	case SMTP_VERB_HELO:
		assert(cmd->arg.len > 0 && cmd->arg.len <= lim->domain_max);
		break;
	case SMTP_VERB_VRFY:
	case SMTP_VERB_EXPN:
		assert(cmd->arg.len > 0);
		/* fall through */
	case SMTP_VERB_HELP:
	case SMTP_VERB_NOOP:
		assert(cmd->arg.len <= lim->arg_max);
		break;
	default:
		assert(cmd->arg.p == NULL);
		break;
	}
}

static void
check_xtext(const char *in, size_t len)
{
	struct mp_buf a = {0}, b = {0}, c = {0};

	if (smtp_xtext_decode(in, len, &a)) {
		smtp_xtext_encode(a.data, a.len, &b);
		assert(smtp_xtext_decode(b.data, b.len, &c));
		assert(c.len == a.len &&
		       (a.len == 0 || memcmp(c.data, a.data, a.len) == 0));
	}
	mp_buf_reset(&b);
	mp_buf_reset(&c);
	smtp_xtext_encode(in, len, &b);
	assert(smtp_xtext_decode(b.data, b.len, &c));
	assert(c.len == len && (len == 0 || memcmp(c.data, in, len) == 0));
	mp_buf_free(&a);
	mp_buf_free(&b);
	mp_buf_free(&c);
}

static void
check_mailbox(const char *in, size_t len, const struct smtp_limits *lim)
{
	static struct smtp_path p;
	struct smtp_limits r;

	if (smtp_address_parse_mailbox(in, len, lim, &p) != SMTP_ADDR_OK)
		return;
	smtp_parser_limits_resolve(lim, &r);
	assert(inside(p.raw, in, len) && p.raw.len == len);
	assert(len + 2 <= r.path_max);
	assert(!p.null && !p.postmaster && !p.route);
	check_canonical(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct smtp_cmd cmd, again;
	struct smtp_limits storage, resolved;
	const struct smtp_limits *lim;
	const char *line = (const char *)data + 1;
	enum mp_status st;
	char *text;

	if (size == 0)
		return 0;
	lim = pick_limits(data[0], &storage);
	smtp_parser_limits_resolve(lim, &resolved);
	st = smtp_parser_parse(line, size - 1, lim, &cmd);
	assert(st == MP_OK || st == MP_DECLINED);
	if (st == MP_OK)
		check_cmd(&cmd, line, size - 1, &resolved);
	else
		check_error(&cmd);
	assert(smtp_parser_parse(line, size - 1, lim, &again) == st);
	assert(memcmp(&cmd, &again, sizeof(cmd)) == 0);
	check_mailbox(line, size - 1, lim);
	check_xtext(line, size - 1);
	text = strndup(line, size - 1);
	check_reply(250, data[0] & 8 ? "2.0.0" : NULL, text);
	free(text);
	return 0;
}
