/* pop3-parser.c - POP3 command lines in, commands or -ERR texts out. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pop3-parser.h"

/* Defaults; struct pop3_limits says where each comes from. */
#define DEFAULT_USER_MAX          255
#define DEFAULT_PASS_MAX          511
#define DEFAULT_AUTH_RESPONSE_MAX 2732

/* The part of the line a command parser has not eaten yet. */
struct cursor {
	const char *p;
	size_t len;
	size_t pos;
};

typedef enum mp_status parse_fn(struct cursor *c, const struct pop3_limits *lim,
				struct pop3_cmd *cmd);

struct verb_def {
	const char *name;
	enum pop3_verb verb;
	parse_fn *parse;
};

static enum mp_status fail(struct pop3_cmd *cmd, const char *fmt, ...)
	MP_PRINTF(2, 3);

static enum mp_status
fail(struct pop3_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd->error, sizeof(cmd->error), fmt, ap);
	va_end(ap);
	return MP_DECLINED;
}

void
pop3_parser_limits_init(struct pop3_limits *lim)
{
	lim->user_max = DEFAULT_USER_MAX;
	lim->pass_max = DEFAULT_PASS_MAX;
	lim->auth_response_max = DEFAULT_AUTH_RESPONSE_MAX;
}

static void
resolve_limits(const struct pop3_limits *lim, struct pop3_limits *out)
{
	struct pop3_limits d;

	pop3_parser_limits_init(&d);
	if (lim == NULL) {
		*out = d;
		return;
	}
	out->user_max = lim->user_max != 0 ? lim->user_max : d.user_max;
	out->pass_max = lim->pass_max != 0 ? lim->pass_max : d.pass_max;
	out->auth_response_max = lim->auth_response_max != 0
					 ? lim->auth_response_max
					 : d.auth_response_max;
}

static bool
at_end(const struct cursor *c)
{
	return c->pos >= c->len;
}

static void
skip_spaces(struct cursor *c)
{
	while (!at_end(c) && c->p[c->pos] == ' ')
		c->pos++;
}

/* The next run of non-spaces; the spaces after it are skipped. */
static struct mp_str
take_word(struct cursor *c)
{
	size_t start = c->pos;
	struct mp_str w;

	while (!at_end(c) && c->p[c->pos] != ' ')
		c->pos++;
	w = (struct mp_str){c->p + start, c->pos - start};
	skip_spaces(c);
	return w;
}

/* True when s holds no control character (NUL, CR, LF, TAB included). */
static bool
printable(struct mp_str s)
{
	for (size_t i = 0; i < s.len; i++) {
		unsigned char ch = (unsigned char)s.p[i];

		if (ch < 0x20 || ch == 0x7f)
			return false;
	}
	return true;
}

static bool
is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* Parses digits into *value_r, saturating at UINT32_MAX; false when w is
 * not all digits. */
static bool
parse_number(struct mp_str w, uint32_t *value_r, bool *overflow_r)
{
	uint64_t v = 0;

	*overflow_r = false;
	if (w.len == 0)
		return false;
	for (size_t i = 0; i < w.len; i++) {
		if (!is_digit(w.p[i]))
			return false;
		v = v * 10 + (uint64_t)(w.p[i] - '0');
		if (v > UINT32_MAX) {
			v = UINT32_MAX;
			*overflow_r = true;
		}
	}
	*value_r = (uint32_t)v;
	return true;
}

/* A message-number (RFC 1939 3): a decimal number from 1. */
static enum mp_status
take_msg(struct cursor *c, struct pop3_cmd *cmd)
{
	struct mp_str w = take_word(c);
	bool overflow;

	if (!parse_number(w, &cmd->msg, &overflow) || cmd->msg == 0 || overflow)
		return fail(cmd, "Invalid message number");
	cmd->has_msg = true;
	return MP_OK;
}

static enum mp_status
no_more(struct cursor *c, struct pop3_cmd *cmd)
{
	if (!at_end(c))
		return fail(cmd, "Too many arguments");
	return MP_OK;
}

static enum mp_status
parse_none(struct cursor *c, const struct pop3_limits *lim,
	   struct pop3_cmd *cmd)
{
	if (!at_end(c))
		return fail(cmd, "%s takes no arguments",
			    pop3_verb_name(cmd->verb));
	return MP_OK;
}

/* LIST [msg], UIDL [msg]. */
static enum mp_status
parse_optional_msg(struct cursor *c, const struct pop3_limits *lim,
		   struct pop3_cmd *cmd)
{
	if (at_end(c))
		return MP_OK;
	if (take_msg(c, cmd) != MP_OK)
		return MP_DECLINED;
	return no_more(c, cmd);
}

/* RETR msg, DELE msg. */
static enum mp_status
parse_msg(struct cursor *c, const struct pop3_limits *lim, struct pop3_cmd *cmd)
{
	if (at_end(c))
		return fail(cmd, "Missing message number");
	if (take_msg(c, cmd) != MP_OK)
		return MP_DECLINED;
	return no_more(c, cmd);
}

/* TOP msg n (RFC 1939 7). */
static enum mp_status
parse_top(struct cursor *c, const struct pop3_limits *lim, struct pop3_cmd *cmd)
{
	bool overflow;

	if (at_end(c))
		return fail(cmd, "Usage: TOP message lines");
	if (take_msg(c, cmd) != MP_OK)
		return MP_DECLINED;
	if (at_end(c))
		return fail(cmd, "Missing number of lines");
	if (!parse_number(take_word(c), &cmd->lines, &overflow))
		return fail(cmd, "Invalid number of lines");
	return no_more(c, cmd);
}

static enum mp_status
parse_user(struct cursor *c, const struct pop3_limits *lim,
	   struct pop3_cmd *cmd)
{
	if (at_end(c))
		return fail(cmd, "Missing user name");
	cmd->arg = take_word(c);
	if (!at_end(c))
		return fail(cmd, "User names have no spaces");
	if (cmd->arg.len > lim->user_max)
		return fail(cmd, "User name too long");
	if (!printable(cmd->arg))
		return fail(cmd, "Invalid characters in user name");
	return MP_OK;
}

/* The password is everything after "PASS ": spaces in passwords are real
 * (RFC 1939 7 leaves it open; Dovecot and Courier do the same). */
static enum mp_status
parse_pass(struct cursor *c, const struct pop3_limits *lim,
	   struct pop3_cmd *cmd)
{
	cmd->arg = (struct mp_str){c->p + c->pos, c->len - c->pos};
	if (cmd->arg.len == 0)
		return fail(cmd, "Missing password");
	if (cmd->arg.len > lim->pass_max)
		return fail(cmd, "Password too long");
	if (memchr(cmd->arg.p, '\0', cmd->arg.len) != NULL ||
	    memchr(cmd->arg.p, '\r', cmd->arg.len) != NULL)
		return fail(cmd, "Invalid characters in password");
	return MP_OK;
}

static bool
mech_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	       is_digit(ch) || ch == '-' || ch == '_';
}

static bool
base64_token(struct mp_str w)
{
	if (w.len == 1 && w.p[0] == '=')
		return true;
	for (size_t i = 0; i < w.len; i++) {
		char ch = w.p[i];

		if (!mech_char(ch) && ch != '+' && ch != '/' && ch != '=')
			return false;
	}
	return true;
}

/* AUTH [mechanism [initial-response]] (RFC 5034 4). A bare AUTH asks for
 * the list of mechanisms, as clients did before CAPA. */
static enum mp_status
parse_auth(struct cursor *c, const struct pop3_limits *lim,
	   struct pop3_cmd *cmd)
{
	if (at_end(c))
		return MP_OK;
	cmd->arg = take_word(c);
	if (cmd->arg.len > POP3_MECH_MAX)
		return fail(cmd, "Unsupported authentication mechanism");
	for (size_t i = 0; i < cmd->arg.len; i++) {
		if (!mech_char(cmd->arg.p[i]))
			return fail(cmd, "Invalid mechanism name");
	}
	if (at_end(c))
		return MP_OK;
	cmd->auth_response = take_word(c);
	if (cmd->auth_response.len > lim->auth_response_max)
		return fail(cmd, "Initial response too long");
	if (!base64_token(cmd->auth_response))
		return fail(cmd, "Invalid base64 data");
	return no_more(c, cmd);
}

/* Sorted by name. */
static const struct verb_def verbs[] = {
	{"AUTH", POP3_VERB_AUTH, parse_auth},
	{"CAPA", POP3_VERB_CAPA, parse_none},
	{"DELE", POP3_VERB_DELE, parse_msg},
	{"LIST", POP3_VERB_LIST, parse_optional_msg},
	{"NOOP", POP3_VERB_NOOP, parse_none},
	{"PASS", POP3_VERB_PASS, parse_pass},
	{"QUIT", POP3_VERB_QUIT, parse_none},
	{"RETR", POP3_VERB_RETR, parse_msg},
	{"RSET", POP3_VERB_RSET, parse_none},
	{"STAT", POP3_VERB_STAT, parse_none},
	{"STLS", POP3_VERB_STLS, parse_none},
	{"TOP", POP3_VERB_TOP, parse_top},
	{"UIDL", POP3_VERB_UIDL, parse_optional_msg},
	{"USER", POP3_VERB_USER, parse_user},
};

const char *
pop3_verb_name(enum pop3_verb verb)
{
	for (size_t i = 0; i < MP_NELEMS(verbs); i++) {
		if (verbs[i].verb == verb)
			return verbs[i].name;
	}
	return "";
}

/* True when s is word (upper case), in any case. */
static bool
word_is(struct mp_str s, const char *word)
{
	size_t n = strlen(word);

	if (s.len != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s.p[i];

		if (ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 32);
		if (ch != word[i])
			return false;
	}
	return true;
}

static const struct verb_def *
find_verb(struct mp_str w)
{
	for (size_t i = 0; i < MP_NELEMS(verbs); i++) {
		if (word_is(w, verbs[i].name))
			return &verbs[i];
	}
	return NULL;
}

/* Trailing spaces are noise, except in PASS where they may be part of the
 * password: the command parser sees the line without them otherwise. */
static size_t
trim_end(const char *line, size_t len)
{
	while (len > 0 && line[len - 1] == ' ')
		len--;
	return len;
}

enum mp_status
pop3_parser_parse(const char *line, size_t len, const struct pop3_limits *lim,
		  struct pop3_cmd *cmd)
{
	struct pop3_limits r;
	struct cursor c = {line != NULL ? line : "", line != NULL ? len : 0, 0};
	const struct verb_def *def;
	struct mp_str verb;

	memset(cmd, 0, sizeof(*cmd));
	resolve_limits(lim, &r);
	verb = take_word(&c);
	def = find_verb(verb);
	if (def == NULL)
		return fail(cmd, "Unknown command");
	cmd->verb = def->verb;
	if (def->verb == POP3_VERB_PASS) {
		/* Exactly one space separates PASS from its argument. */
		c.pos = verb.len + (verb.len < c.len ? 1 : 0);
	} else {
		c.len = trim_end(c.p, c.len);
		if (c.pos > c.len)
			c.pos = c.len;
	}
	return def->parse(&c, &r, cmd);
}

/* Length of the longest prefix of s, at most max bytes, that does not end
 * inside a UTF-8 sequence. */
static size_t
utf8_cut(const char *s, size_t len, size_t max)
{
	size_t n;

	if (len <= max)
		return len;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

void
pop3_reply_format(struct mp_buf *out, bool ok, const char *code,
		  const char *text)
{
	size_t start = out->len, room, n;

	mp_buf_puts(out, ok ? "+OK" : "-ERR");
	if (code != NULL && code[0] != '\0')
		mp_buf_printf(out, " [%s]", code);
	if (text != NULL && text[0] != '\0') {
		size_t used = out->len - start + 1;

		room = POP3_REPLY_LINE_MAX - 2 > used
			       ? POP3_REPLY_LINE_MAX - 2 - used
			       : 0;
		n = utf8_cut(text, strlen(text), room);
		mp_buf_puts(out, " ");
		for (size_t i = 0; i < n; i++) {
			unsigned char ch = (unsigned char)text[i];
			char clean = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;

			mp_buf_append(out, &clean, 1);
		}
	}
	mp_buf_puts(out, "\r\n");
}

void
pop3_uidl_format(char out[17], uint32_t uid, uint32_t uidvalidity)
{
	snprintf(out, 17, "%08X%08X", uid, uidvalidity);
}
