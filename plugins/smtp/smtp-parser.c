/* smtp-parser.c - SMTP command lines in, commands or exact replies out. */
#include "config.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "smtp-address.h"
#include "smtp-parser.h"

/* Defaults; struct smtp_limits says where each comes from. */
#define DEFAULT_LOCAL_PART_MAX    64
#define DEFAULT_DOMAIN_MAX        255
#define DEFAULT_PATH_MAX          256
#define DEFAULT_PARAMS_MAX        8
#define DEFAULT_PARAMS_MAX_AUTH   16
#define DEFAULT_ARG_MAX           256
#define DEFAULT_ARG_MAX_AUTH      1000
#define DEFAULT_AUTH_RESPONSE_MAX 12288
#define DEFAULT_MESSAGE_SIZE_MAX  10240000
/* Longest reply line, CRLF included (RFC 5321 4.5.3.1.5). */
#define REPLY_LINE_MAX 512
/* Most of a client's parameter name echoed back in a 555 reply. */
#define ECHO_MAX 32

#define TEXT_TOO_BIG "Message size exceeds fixed maximum message size"

/* The part of the line a command parser has not eaten yet. */
struct cursor {
	const char *p;
	size_t len;
	size_t pos;
};

struct verb_def;
typedef enum mp_status parse_fn(struct cursor *c, const struct verb_def *def,
				const struct smtp_limits *lim,
				struct smtp_cmd *cmd);

struct verb_def {
	const char *name;
	enum smtp_verb verb;
	parse_fn *parse;
	const char *usage; /* the 501 text when the arguments are wrong */
};

/* An esmtp-param: keyword, and value (p == NULL when no "="). */
struct param {
	struct mp_str key;
	struct mp_str value;
};

typedef enum mp_status param_fn(const struct param *prm,
				const struct smtp_limits *lim,
				struct smtp_cmd *cmd);

struct param_def {
	const char *name;
	param_fn *apply;
};

/* What differs between the MAIL and the RCPT path. */
struct path_role {
	const char *keyword;
	unsigned flags;
	const char *enhanced; /* RFC 3463 3.2: 5.1.7 sender, 5.1.3 rcpt */
	const char *bad_text;
	const char *long_text;
};

static enum mp_status fail(struct smtp_cmd *cmd, int code, const char *enhanced,
			   const char *fmt, ...) MP_PRINTF(4, 5);

static enum mp_status
fail(struct smtp_cmd *cmd, int code, const char *enhanced, const char *fmt, ...)
{
	va_list ap;

	cmd->error.code = code;
	cmd->error.enhanced = enhanced;
	va_start(ap, fmt);
	vsnprintf(cmd->error.text, sizeof(cmd->error.text), fmt, ap);
	va_end(ap);
	return MP_DECLINED;
}

static enum mp_status
usage(struct smtp_cmd *cmd, const struct verb_def *def)
{
	return fail(cmd, 501, "5.5.4", "%s", def->usage);
}

void
smtp_error_set_need_smtputf8(struct smtp_error *err)
{
	err->code = 553;
	err->enhanced = "5.6.7";
	snprintf(err->text, sizeof(err->text), "%s",
		 "Must declare SMTPUTF8 to send unicode address");
}

void
smtp_parser_limits_resolve(const struct smtp_limits *lim,
			   struct smtp_limits *out)
{
	struct smtp_limits r = {0};

	if (lim != NULL)
		r = *lim;
	if (r.local_part_max == 0)
		r.local_part_max = DEFAULT_LOCAL_PART_MAX;
	if (r.domain_max == 0)
		r.domain_max = DEFAULT_DOMAIN_MAX;
	if (r.path_max == 0)
		r.path_max = DEFAULT_PATH_MAX;
	if (r.path_max > SMTP_PATH_CAP)
		r.path_max = SMTP_PATH_CAP;
	if (r.params_max == 0)
		r.params_max = DEFAULT_PARAMS_MAX;
	if (r.arg_max == 0)
		r.arg_max = DEFAULT_ARG_MAX;
	if (r.auth_response_max == 0)
		r.auth_response_max = DEFAULT_AUTH_RESPONSE_MAX;
	if (r.message_size_max == 0)
		r.message_size_max = DEFAULT_MESSAGE_SIZE_MAX;
	if (r.bdat_chunk_max == 0)
		r.bdat_chunk_max = r.message_size_max;
	*out = r;
}

void
smtp_parser_limits_init(struct smtp_limits *lim, bool authenticated)
{
	smtp_parser_limits_resolve(NULL, lim);
	if (authenticated) {
		lim->params_max = DEFAULT_PARAMS_MAX_AUTH;
		lim->arg_max = DEFAULT_ARG_MAX_AUTH;
	}
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool
is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static bool
at_end(const struct cursor *c)
{
	return c->pos >= c->len;
}

static void
skip_blanks(struct cursor *c)
{
	while (!at_end(c) && is_blank(c->p[c->pos]))
		c->pos++;
}

/* The next run of non-blanks; the blanks after it are skipped. */
static struct mp_str
take_word(struct cursor *c)
{
	size_t start = c->pos;
	struct mp_str w;

	while (!at_end(c) && !is_blank(c->p[c->pos]))
		c->pos++;
	w = (struct mp_str){c->p + start, c->pos - start};
	skip_blanks(c);
	return w;
}

/* True when s is word (upper case), in any case. */
static bool
word_is(struct mp_str s, const char *word)
{
	size_t n = strlen(word);

	if (s.len != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s.p[i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 32);
		if (c != word[i])
			return false;
	}
	return true;
}

/* Bytes no SMTP command may hold: C0 controls but HTAB, and DEL. */
static bool
has_control(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return true;
	}
	return false;
}

/* 1*DIGIT into *v_r; *overflow_r when it does not fit 64 bits. */
static bool
parse_digits(struct mp_str s, uint64_t *v_r, bool *overflow_r)
{
	uint64_t v = 0;

	*overflow_r = false;
	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		unsigned d = (unsigned)(s.p[i] - '0');

		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
		if (v > (UINT64_MAX - d) / 10)
			*overflow_r = true;
		v = v * 10 + d;
	}
	*v_r = *overflow_r ? UINT64_MAX : v;
	return true;
}

static enum mp_status
parse_none(struct cursor *c, const struct verb_def *def,
	   const struct smtp_limits *lim, struct smtp_cmd *cmd)
{
	return at_end(c) ? MP_OK : usage(cmd, def);
}

static enum mp_status
parse_helo(struct cursor *c, const struct verb_def *def,
	   const struct smtp_limits *lim, struct smtp_cmd *cmd)
{
	struct mp_str w = take_word(c);

	if (w.len == 0 || !at_end(c))
		return usage(cmd, def);
	if (w.len > lim->domain_max || !smtp_address_helo_valid(w.p, w.len))
		return fail(cmd, 501, "5.5.4", "Error: invalid %s hostname",
			    def->name);
	cmd->arg = w;
	return MP_OK;
}

/* The rest of the line as one string (VRFY, EXPN, HELP, NOOP). */
static enum mp_status
parse_text(struct cursor *c, const struct verb_def *def,
	   const struct smtp_limits *lim, struct smtp_cmd *cmd, bool required)
{
	struct mp_str s = {c->p + c->pos, c->len - c->pos};

	if (s.len == 0)
		return required ? usage(cmd, def) : MP_OK;
	if (s.len > lim->arg_max)
		return fail(cmd, 501, "5.5.4", "Error: argument too long");
	if (!smtp_address_text_valid(s.p, s.len))
		return fail(cmd, 501, "5.5.4", "Error: invalid UTF-8");
	cmd->arg = s;
	return MP_OK;
}

static enum mp_status
parse_text_required(struct cursor *c, const struct verb_def *def,
		    const struct smtp_limits *lim, struct smtp_cmd *cmd)
{
	return parse_text(c, def, lim, cmd, true);
}

static enum mp_status
parse_text_optional(struct cursor *c, const struct verb_def *def,
		    const struct smtp_limits *lim, struct smtp_cmd *cmd)
{
	return parse_text(c, def, lim, cmd, false);
}

/* sasl-mech (RFC 4422 3.1), in either case as clients send it. */
static bool
mech_valid(struct mp_str m)
{
	if (m.len == 0 || m.len > SMTP_MECH_MAX)
		return false;
	for (size_t i = 0; i < m.len; i++) {
		if (!is_alnum(m.p[i]) && m.p[i] != '-' && m.p[i] != '_')
			return false;
	}
	return true;
}

/* "=" or base64 (RFC 4648 4): groups of four, '=' only to pad the last. */
static bool
base64_shaped(struct mp_str s)
{
	size_t pad = 0;

	if (s.len == 1 && s.p[0] == '=')
		return true;
	if (s.len == 0 || s.len % 4 != 0)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		char c = s.p[i];

		if (c == '=')
			pad++;
		else if (pad > 0 || !(is_alnum(c) || c == '+' || c == '/'))
			return false;
	}
	return pad <= 2;
}

static enum mp_status
parse_auth(struct cursor *c, const struct verb_def *def,
	   const struct smtp_limits *lim, struct smtp_cmd *cmd)
{
	struct mp_str mech = take_word(c), ir;

	if (!mech_valid(mech))
		return usage(cmd, def);
	cmd->arg = mech;
	if (at_end(c))
		return MP_OK;
	ir = take_word(c);
	if (!at_end(c))
		return usage(cmd, def);
	if (ir.len > lim->auth_response_max)
		return fail(cmd, 500, "5.5.6",
			    "Authentication exchange line is too long");
	if (!base64_shaped(ir))
		return fail(cmd, 501, "5.5.2", "Cannot decode response");
	cmd->auth_response = ir;
	return MP_OK;
}

static enum mp_status
parse_bdat(struct cursor *c, const struct verb_def *def,
	   const struct smtp_limits *lim, struct smtp_cmd *cmd)
{
	struct smtp_bdat *b = &cmd->bdat;
	bool overflow;

	if (!parse_digits(take_word(c), &b->size, &overflow))
		return usage(cmd, def);
	if (overflow)
		return fail(cmd, 552, "5.3.4", TEXT_TOO_BIG);
	b->size_known = true;
	if (!at_end(c)) {
		if (!word_is(take_word(c), "LAST") || !at_end(c))
			return usage(cmd, def);
		b->last = true;
	}
	if (b->size > lim->bdat_chunk_max)
		return fail(cmd, 552, "5.3.4", TEXT_TOO_BIG);
	return MP_OK;
}

/* "FROM:" or "TO:", blanks (a common sloppiness Postfix accepts too), then
 * the path and a blank or the end. */
static enum mp_status
parse_path(struct cursor *c, const struct verb_def *def,
	   const struct path_role *role, const struct smtp_limits *lim,
	   struct smtp_cmd *cmd)
{
	size_t klen = strlen(role->keyword), used;
	enum smtp_addr_status st;

	if (c->len - c->pos < klen ||
	    !word_is((struct mp_str){c->p + c->pos, klen}, role->keyword))
		return usage(cmd, def);
	c->pos += klen;
	skip_blanks(c);
	if (at_end(c) || c->p[c->pos] != '<')
		return usage(cmd, def);
	st = smtp_address_parse_path(c->p + c->pos, c->len - c->pos,
				     role->flags, lim, &cmd->path, &used);
	if (st == SMTP_ADDR_OK) {
		c->pos += used;
		if (at_end(c) || is_blank(c->p[c->pos])) {
			skip_blanks(c);
			return MP_OK;
		}
	}
	return fail(cmd, 501, role->enhanced, "%s",
		    st == SMTP_ADDR_TOO_LONG ? role->long_text
					     : role->bad_text);
}

/* esmtp-keyword: (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"). */
static bool
keyword_valid(struct mp_str k)
{
	if (k.len == 0 || !is_alnum(k.p[0]))
		return false;
	for (size_t i = 1; i < k.len; i++) {
		if (!is_alnum(k.p[i]) && k.p[i] != '-')
			return false;
	}
	return true;
}

/* esmtp-value: 1*(%d33-60 / %d62-126), and UTF-8 (RFC 6531 3.3). */
static bool
value_valid(struct mp_str v)
{
	size_t i = 0;

	if (v.len == 0)
		return false;
	while (i < v.len) {
		unsigned char c = (unsigned char)v.p[i];
		size_t n = 1;

		if (c >= 0x80)
			n = smtp_address_utf8_seq(v.p + i, v.len - i);
		else if (c < 33 || c > 126 || c == '=')
			n = 0;
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

static bool
split_param(struct mp_str w, struct param *prm)
{
	const char *eq = memchr(w.p, '=', w.len);
	size_t klen = eq != NULL ? (size_t)(eq - w.p) : w.len;

	prm->key = (struct mp_str){w.p, klen};
	prm->value = (struct mp_str){NULL, 0};
	if (eq != NULL)
		prm->value = (struct mp_str){eq + 1, w.len - klen - 1};
	return keyword_valid(prm->key) &&
	       (eq == NULL || value_valid(prm->value));
}

static enum mp_status
mail_size(const struct param *prm, const struct smtp_limits *lim,
	  struct smtp_cmd *cmd)
{
	bool overflow;

	if (!parse_digits(prm->value, &cmd->mail.size, &overflow))
		return fail(cmd, 501, "5.5.4", "Bad SIZE parameter syntax");
	if (overflow)
		return fail(cmd, 552, "5.3.4", TEXT_TOO_BIG);
	cmd->mail.has_size = true;
	return MP_OK;
}

static enum mp_status
mail_body(const struct param *prm, const struct smtp_limits *lim,
	  struct smtp_cmd *cmd)
{
	if (word_is(prm->value, "7BIT"))
		cmd->mail.body = SMTP_BODY_7BIT;
	else if (word_is(prm->value, "8BITMIME"))
		cmd->mail.body = SMTP_BODY_8BITMIME;
	else if (word_is(prm->value, "BINARYMIME"))
		return fail(cmd, 555, "5.5.4", "Unsupported BODY type");
	else
		return fail(cmd, 501, "5.5.4", "Bad BODY parameter syntax");
	return MP_OK;
}

static enum mp_status
mail_smtputf8(const struct param *prm, const struct smtp_limits *lim,
	      struct smtp_cmd *cmd)
{
	if (prm->value.p != NULL)
		return fail(cmd, 501, "5.5.4", "Bad SMTPUTF8 parameter syntax");
	cmd->mail.smtputf8 = true;
	return MP_OK;
}

/* AUTH=<> or an xtext mailbox (RFC 4954 5). Only decoded and cleaned:
 * RFC 4954 has it in RFC 5322 syntax and the session may ignore it. */
static enum mp_status
mail_auth(const struct param *prm, const struct smtp_limits *lim,
	  struct smtp_cmd *cmd)
{
	struct smtp_mail_params *m = &cmd->mail;
	size_t size = lim->path_max < sizeof(m->auth) ? lim->path_max + 1
						      : sizeof(m->auth);

	m->auth_raw = prm->value;
	if (prm->value.len == 2 && memcmp(prm->value.p, "<>", 2) == 0) {
		m->has_auth = m->auth_null = true;
		return MP_OK;
	}
	if (prm->value.p == NULL ||
	    !smtp_xtext_decode_buf(prm->value.p, prm->value.len, m->auth, size,
				   &m->auth_len) ||
	    !smtp_address_text_valid(m->auth, m->auth_len) ||
	    memchr(m->auth, '\t', m->auth_len) != NULL)
		return fail(cmd, 501, "5.5.4", "Bad AUTH parameter syntax");
	m->has_auth = true;
	return MP_OK;
}

/* Sorted; RCPT has none until DSN (NOTIFY, ORCPT) is offered. */
static const struct param_def mail_params[] = {
	{"AUTH", mail_auth},
	{"BODY", mail_body},
	{"SIZE", mail_size},
	{"SMTPUTF8", mail_smtputf8},
};

static size_t
find_param(const struct param_def *defs, size_t n, struct mp_str key)
{
	size_t i = 0;

	while (i < n && !word_is(key, defs[i].name))
		i++;
	return i;
}

/* Mail-parameters / Rcpt-parameters: esmtp-params separated by blanks. */
static enum mp_status
parse_params(struct cursor *c, const struct param_def *defs, size_t ndefs,
	     const struct smtp_limits *lim, struct smtp_cmd *cmd)
{
	unsigned seen = 0;
	struct param prm;
	enum mp_status st;

	for (size_t n = 1; !at_end(c); n++) {
		size_t i;

		if (n > lim->params_max)
			return fail(cmd, 501, "5.5.4", "Too many parameters");
		if (!split_param(take_word(c), &prm))
			return fail(cmd, 501, "5.5.4", "Bad parameter syntax");
		i = find_param(defs, ndefs, prm.key);
		if (i == ndefs)
			return fail(cmd, 555, "5.5.4",
				    "Unsupported parameter: %.*s",
				    (int)(prm.key.len < ECHO_MAX ? prm.key.len
								 : ECHO_MAX),
				    prm.key.p);
		if (seen & (1u << i))
			return fail(cmd, 501, "5.5.4",
				    "Duplicate parameter: %s", defs[i].name);
		seen |= 1u << i;
		st = defs[i].apply(&prm, lim, cmd);
		if (st != MP_OK)
			return st;
	}
	return MP_OK;
}

static const struct path_role sender_role = {
	"FROM:", SMTP_PATH_ALLOW_NULL, "5.1.7", "Bad sender address syntax",
	"Sender address too long"};
static const struct path_role rcpt_role = {
	"TO:", SMTP_PATH_ALLOW_POSTMASTER, "5.1.3",
	"Bad recipient address syntax", "Recipient address too long"};

static enum mp_status
parse_mail(struct cursor *c, const struct verb_def *def,
	   const struct smtp_limits *lim, struct smtp_cmd *cmd)
{
	enum mp_status st = parse_path(c, def, &sender_role, lim, cmd);

	if (st == MP_OK)
		st = parse_params(c, mail_params, MP_NELEMS(mail_params), lim,
				  cmd);
	if (st != MP_OK)
		return st;
	if (cmd->path.utf8 && !cmd->mail.smtputf8) {
		smtp_error_set_need_smtputf8(&cmd->error);
		return MP_DECLINED;
	}
	if (cmd->mail.has_size && cmd->mail.size > lim->message_size_max)
		return fail(cmd, 552, "5.3.4", TEXT_TOO_BIG);
	return MP_OK;
}

static enum mp_status
parse_rcpt(struct cursor *c, const struct verb_def *def,
	   const struct smtp_limits *lim, struct smtp_cmd *cmd)
{
	enum mp_status st = parse_path(c, def, &rcpt_role, lim, cmd);

	return st != MP_OK ? st : parse_params(c, NULL, 0, lim, cmd);
}

static const struct verb_def verbs[] = {
	{"AUTH", SMTP_VERB_AUTH, parse_auth,
	 "Syntax: AUTH mechanism [initial-response]"},
	{"BDAT", SMTP_VERB_BDAT, parse_bdat, "Syntax: BDAT count [LAST]"},
	{"DATA", SMTP_VERB_DATA, parse_none, "Syntax: DATA"},
	{"EHLO", SMTP_VERB_EHLO, parse_helo, "Syntax: EHLO hostname"},
	{"EXPN", SMTP_VERB_EXPN, parse_text_required, "Syntax: EXPN list"},
	{"HELO", SMTP_VERB_HELO, parse_helo, "Syntax: HELO hostname"},
	{"HELP", SMTP_VERB_HELP, parse_text_optional, "Syntax: HELP [topic]"},
	{"MAIL", SMTP_VERB_MAIL, parse_mail,
	 "Syntax: MAIL FROM:<address> [parameters]"},
	{"NOOP", SMTP_VERB_NOOP, parse_text_optional, "Syntax: NOOP"},
	{"QUIT", SMTP_VERB_QUIT, parse_none, "Syntax: QUIT"},
	{"RCPT", SMTP_VERB_RCPT, parse_rcpt, "Syntax: RCPT TO:<address>"},
	{"RSET", SMTP_VERB_RSET, parse_none, "Syntax: RSET"},
	{"STARTTLS", SMTP_VERB_STARTTLS, parse_none, "Syntax: STARTTLS"},
	{"VRFY", SMTP_VERB_VRFY, parse_text_required, "Syntax: VRFY address"},
};

static const struct verb_def *
find_verb(struct mp_str w)
{
	for (size_t i = 0; i < MP_NELEMS(verbs); i++) {
		if (word_is(w, verbs[i].name))
			return &verbs[i];
	}
	return NULL;
}

enum mp_status
smtp_parser_parse(const char *line, size_t len, const struct smtp_limits *lim,
		  struct smtp_cmd *cmd)
{
	struct cursor c = {line != NULL ? line : "", len, 0};
	const struct verb_def *def;
	struct smtp_limits r;

	memset(cmd, 0, sizeof(*cmd));
	smtp_parser_limits_resolve(lim, &r);
	while (c.len > 0 && is_blank(c.p[c.len - 1]))
		c.len--;
	skip_blanks(&c);
	def = find_verb(take_word(&c));
	if (def == NULL)
		return fail(cmd, 500, "5.5.2", "Error: command not recognized");
	cmd->verb = def->verb;
	if (has_control(c.p + c.pos, c.len - c.pos))
		return fail(cmd, 501, "5.5.4",
			    "Syntax error: control character in command");
	return def->parse(&c, def, &r, cmd);
}

/* Appends at most max bytes of text, control characters as spaces, and
 * never half a UTF-8 character. */
static void
append_clean(struct mp_buf *out, const char *text, size_t max)
{
	size_t n = strlen(text), start = out->len;

	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
			n--;
	}
	mp_buf_append(out, text, n);
	for (size_t i = start; i < out->len; i++) {
		unsigned char ch = (unsigned char)out->data[i];

		if (ch < 0x20 || ch == 0x7f)
			out->data[i] = ' ';
	}
}

static void
reply_line(struct mp_buf *out, int code, bool last, const char *enhanced,
	   const char *text)
{
	size_t start = out->len;
	bool has_text = text != NULL && text[0] != '\0';

	assert(code >= 200 && code <= 599);
	mp_buf_printf(out, "%d", code);
	if (!last)
		mp_buf_puts(out, "-");
	else if (enhanced != NULL || has_text)
		mp_buf_puts(out, " ");
	if (enhanced != NULL)
		mp_buf_printf(out, "%s%s", enhanced, has_text ? " " : "");
	if (has_text && out->len - start < REPLY_LINE_MAX - 2)
		append_clean(out, text,
			     REPLY_LINE_MAX - 2 - (out->len - start));
	mp_buf_append(out, "\r\n", 2);
}

void
smtp_reply_format(struct mp_buf *out, int code, const char *enhanced,
		  const char *text)
{
	reply_line(out, code, true, enhanced, text);
}

void
smtp_reply_format_lines(struct mp_buf *out, int code, const char *enhanced,
			const char *const *lines, size_t n)
{
	assert(n > 0);
	for (size_t i = 0; i < n; i++)
		reply_line(out, code, i + 1 == n, enhanced, lines[i]);
}
