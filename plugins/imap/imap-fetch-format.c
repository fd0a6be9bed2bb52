/* imap-fetch-format.c - FETCH ENVELOPE, BODY and BODYSTRUCTURE from the
 * stored MIME structure. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "imap-fetch-format.h"

/* A multipart must hold one body at least (RFC 3501 body-type-mpart); one
 * whose boundary never came is given an empty text/plain, as Dovecot does. */
#define EMPTY_BODY                                                             \
	"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)"
#define EMPTY_BODYSTRUCTURE                                                    \
	"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 " \
	"NIL NIL NIL NIL)"
#define EMPTY_ENVELOPE "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"

/* --- strings ------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF) at p, or 0. */
static size_t
utf8_len(const unsigned char *p, size_t len)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	if (len < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++) {
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	}
	return n;
}

static bool
utf8_valid(const char *p, size_t len)
{
	const unsigned char *u = (const unsigned char *)p;

	for (size_t i = 0; i < len;) {
		size_t n = u[i] < 0x80 ? 1 : utf8_len(u + i, len - i);

		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

/* Whether len bytes (no NUL among them) cannot go in a quoted string. */
static bool
needs_literal(const char *p, size_t len, enum imap_format_flags flags)
{
	const unsigned char *u = (const unsigned char *)p;
	unsigned int escapes = 0;

	if (len > IMAP_FORMAT_QUOTED_MAX)
		return true;
	for (size_t i = 0; i < len; i++) {
		size_t n;

		if (u[i] == '\r' || u[i] == '\n')
			return true;
		if ((u[i] == '"' || u[i] == '\\') &&
		    ++escapes > IMAP_FORMAT_QUOTED_MAX_ESCAPES)
			return true;
		if (u[i] < 0x80)
			continue;
		if (!(flags & IMAP_FORMAT_UTF8))
			return true;
		n = utf8_len(u + i, len - i);
		if (n == 0)
			return true;
		i += n - 1;
	}
	return false;
}

static void
append_nonul(struct mp_buf *out, const void *data, size_t len,
	     enum imap_format_flags flags)
{
	const char *p = data;

	if (needs_literal(p, len, flags)) {
		mp_buf_printf(out, "{%zu}\r\n", len);
		mp_buf_append(out, p, len);
		return;
	}
	mp_buf_append(out, "\"", 1);
	for (size_t i = 0, run = 0; i <= len; i++) {
		if (i < len && p[i] != '"' && p[i] != '\\')
			continue;
		mp_buf_append(out, p + run, i - run);
		if (i < len)
			mp_buf_append(out, "\\", 1);
		run = i;
	}
	mp_buf_append(out, "\"", 1);
}

void
imap_fetch_format_string(struct mp_buf *out, const void *data, size_t len,
			 enum imap_format_flags flags)
{
	struct mp_buf tmp = {0};

	if (len == 0 || memchr(data, '\0', len) == NULL) {
		append_nonul(out, data, len, flags);
		return;
	}
	/* No IMAP string can carry a NUL; Dovecot sends 0x80 instead. */
	mp_buf_append(&tmp, data, len);
	for (size_t i = 0; i < len; i++) {
		if (tmp.data[i] == '\0')
			tmp.data[i] = (char)0x80;
	}
	append_nonul(out, tmp.data, len, flags);
	mp_buf_free(&tmp);
}

void
imap_fetch_format_nstring(struct mp_buf *out, struct mp_str s,
			  enum imap_format_flags flags)
{
	if (s.p == NULL)
		mp_buf_puts(out, "NIL");
	else
		imap_fetch_format_string(out, s.p, s.len, flags);
}

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Content-ID, -Description, -MD5, -Location: CR and LF dropped, a space put
 * where a line break was not followed by one (Dovecot's nstring_nolf). */
static void
append_nolf(struct mp_buf *out, struct mp_str s, enum imap_format_flags flags)
{
	struct mp_buf tmp = {0};

	if (s.p == NULL || (memchr(s.p, '\r', s.len) == NULL &&
			    memchr(s.p, '\n', s.len) == NULL)) {
		imap_fetch_format_nstring(out, s, flags);
		return;
	}
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] != '\r' && s.p[i] != '\n')
			mp_buf_append(&tmp, s.p + i, 1);
		else if (i + 1 < s.len && !is_wsp(s.p[i + 1]))
			mp_buf_append(&tmp, " ", 1);
	}
	imap_fetch_format_string(out, tmp.data != NULL ? tmp.data : "", tmp.len,
				 flags);
	mp_buf_free(&tmp);
}

/* Subject and display names, tidied as Dovecot's "string for humans": each
 * run of SP, HT, CR, LF becomes one space, none at either end. A value of
 * white space only is "" (present, empty), not NIL. */
static void
append_human(struct mp_buf *out, struct mp_str s, enum imap_format_flags flags)
{
	struct mp_buf tmp = {0};
	bool space = false;

	if (s.p == NULL) {
		mp_buf_puts(out, "NIL");
		return;
	}
	for (size_t i = 0; i < s.len; i++) {
		if (is_wsp(s.p[i])) {
			space = tmp.len > 0;
			continue;
		}
		if (space)
			mp_buf_append(&tmp, " ", 1);
		space = false;
		mp_buf_append(&tmp, s.p + i, 1);
	}
	imap_fetch_format_string(out, tmp.data != NULL ? tmp.data : "", tmp.len,
				 flags);
	mp_buf_free(&tmp);
}

/* --- envelope ----------------------------------------------------------- */

static void
append_address(struct mp_buf *out, const struct mp_mime_address *a,
	       enum imap_format_flags flags)
{
	switch (a->kind) {
	case MP_MIME_ADDR_GROUP_START:
		/* RFC 3501: (NIL NIL "group name" NIL) */
		mp_buf_puts(out, "(NIL NIL ");
		imap_fetch_format_nstring(out, a->mailbox, flags);
		mp_buf_puts(out, " NIL)");
		return;
	case MP_MIME_ADDR_GROUP_END:
		mp_buf_puts(out, "(NIL NIL NIL NIL)");
		return;
	case MP_MIME_ADDR_MAILBOX:
		break;
	}
	mp_buf_append(out, "(", 1);
	append_human(out, a->name, flags);
	mp_buf_append(out, " ", 1);
	imap_fetch_format_nstring(out, a->adl, flags);
	mp_buf_append(out, " ", 1);
	imap_fetch_format_nstring(out, a->mailbox, flags);
	mp_buf_append(out, " ", 1);
	imap_fetch_format_nstring(out, a->host, flags);
	mp_buf_append(out, ")", 1);
}

static void
append_addresses(struct mp_buf *out, const struct mp_mime_addrlist *l,
		 enum imap_format_flags flags)
{
	if (l->n == 0) {
		mp_buf_puts(out, "NIL");
		return;
	}
	mp_buf_append(out, "(", 1);
	for (uint32_t i = 0; i < l->n; i++)
		append_address(out, &l->v[i], flags);
	mp_buf_append(out, ")", 1);
}

void
imap_fetch_format_envelope(struct mp_buf *out,
			   const struct mp_mime_envelope *env,
			   enum imap_format_flags flags)
{
	/* Sender and Reply-To fall back to From (RFC 3501 7.4.2); the
	 * parser has done it, this covers a structure built by hand. */
	const struct mp_mime_addrlist *sender, *reply_to;

	if (env == NULL) {
		mp_buf_puts(out, EMPTY_ENVELOPE);
		return;
	}
	sender = env->sender.n > 0 ? &env->sender : &env->from;
	reply_to = env->reply_to.n > 0 ? &env->reply_to : &env->from;
	mp_buf_append(out, "(", 1);
	imap_fetch_format_nstring(out, env->date, flags);
	mp_buf_append(out, " ", 1);
	append_human(out, env->subject, flags);
	mp_buf_append(out, " ", 1);
	append_addresses(out, &env->from, flags);
	mp_buf_append(out, " ", 1);
	append_addresses(out, sender, flags);
	mp_buf_append(out, " ", 1);
	append_addresses(out, reply_to, flags);
	mp_buf_append(out, " ", 1);
	append_addresses(out, &env->to, flags);
	mp_buf_append(out, " ", 1);
	append_addresses(out, &env->cc, flags);
	mp_buf_append(out, " ", 1);
	append_addresses(out, &env->bcc, flags);
	mp_buf_append(out, " ", 1);
	imap_fetch_format_nstring(out, env->in_reply_to, flags);
	mp_buf_append(out, " ", 1);
	imap_fetch_format_nstring(out, env->message_id, flags);
	mp_buf_append(out, ")", 1);
}

/* --- body parameters ---------------------------------------------------- */

static bool
str_is(struct mp_str s, const char *want)
{
	size_t n = strlen(want);

	if (s.p == NULL || s.len != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s.p[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != want[i])
			return false;
	}
	return true;
}

/* RFC 2231 attribute-char: a CHAR that is not SPACE, a CTL, "*", "'", "%"
 * or a tspecial (RFC 2045). */
static bool
rfc2231_plain(unsigned char c)
{
	return c > 0x20 && c < 0x7f &&
	       strchr("*'%()<>@,;:\\\"/[]?=", c) == NULL;
}

/* A value the parser decoded from RFC 2231 to UTF-8 (or raw UTF-8 sent in
 * the header) goes back as name*=utf-8''%XX..., the form Dovecot returns
 * and every client decodes; see the test for why not raw UTF-8. */
static void
append_param_2231(struct mp_buf *out, const struct mp_mime_param *prm,
		  enum imap_format_flags flags)
{
	struct mp_buf tmp = {0};
	bool starred =
		prm->name.len > 0 && prm->name.p[prm->name.len - 1] == '*';

	mp_buf_append(&tmp, prm->name.p, prm->name.len);
	if (!starred)
		mp_buf_append(&tmp, "*", 1);
	imap_fetch_format_string(out, tmp.data, tmp.len, flags);
	mp_buf_reset(&tmp);
	mp_buf_puts(&tmp, "utf-8''");
	for (size_t i = 0; i < prm->value.len; i++) {
		unsigned char c = (unsigned char)prm->value.p[i];

		if (rfc2231_plain(c))
			mp_buf_append(&tmp, &prm->value.p[i], 1);
		else
			mp_buf_printf(&tmp, "%%%02X", c);
	}
	mp_buf_append(out, " ", 1);
	imap_fetch_format_string(out, tmp.data, tmp.len, flags);
	mp_buf_free(&tmp);
}

static bool
has_8bit(struct mp_str s)
{
	for (size_t i = 0; i < s.len; i++) {
		if ((unsigned char)s.p[i] >= 0x80)
			return true;
	}
	return false;
}

static void
append_param(struct mp_buf *out, const struct mp_mime_param *prm,
	     enum imap_format_flags flags)
{
	struct mp_str name = prm->name, value = prm->value;

	if (name.p == NULL)
		name = (struct mp_str){"", 0};
	if (value.p == NULL)
		value = (struct mp_str){"", 0};
	/* 8-bit that is not UTF-8 has no charset to name: sent as it is, in
	 * a literal, as Dovecot does with every 8-bit value. */
	if (has_8bit(value) && utf8_valid(value.p, value.len)) {
		struct mp_mime_param p = {name, value};

		append_param_2231(out, &p, flags);
		return;
	}
	imap_fetch_format_string(out, name.p, name.len, flags);
	mp_buf_append(out, " ", 1);
	imap_fetch_format_string(out, value.p, value.len, flags);
}

/* body-fld-param; a text part without a charset gets charset=us-ascii, the
 * RFC 2045 section 5.2 default, as Dovecot adds it. */
static void
append_params(struct mp_buf *out, const struct mp_mime_param *v, uint32_t n,
	      bool text, enum imap_format_flags flags)
{
	bool charset = false;

	if (n == 0 && !text) {
		mp_buf_puts(out, "NIL");
		return;
	}
	mp_buf_append(out, "(", 1);
	for (uint32_t i = 0; i < n; i++) {
		if (i > 0)
			mp_buf_append(out, " ", 1);
		append_param(out, &v[i], flags);
		charset |= str_is(v[i].name, "charset");
	}
	if (text && !charset)
		mp_buf_puts(out, n > 0 ? " \"charset\" \"us-ascii\""
				       : "\"charset\" \"us-ascii\"");
	mp_buf_append(out, ")", 1);
}

/* --- body structure ----------------------------------------------------- */

static void append_part(struct mp_buf *out, const struct mp_mime_part *part,
			bool ext, enum imap_format_flags flags);

static void
append_str_or(struct mp_buf *out, struct mp_str s, const char *dflt,
	      enum imap_format_flags flags)
{
	if (s.p == NULL)
		s = (struct mp_str){dflt, strlen(dflt)};
	imap_fetch_format_string(out, s.p, s.len, flags);
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc */
static void
append_ext_common(struct mp_buf *out, const struct mp_mime_part *part,
		  enum imap_format_flags flags)
{
	mp_buf_append(out, " ", 1);
	if (part->disposition.p == NULL) {
		mp_buf_puts(out, "NIL");
	} else {
		mp_buf_append(out, "(", 1);
		imap_fetch_format_nstring(out, part->disposition, flags);
		mp_buf_append(out, " ", 1);
		append_params(out, part->disposition_params,
			      part->n_disposition_params, false, flags);
		mp_buf_append(out, ")", 1);
	}
	mp_buf_append(out, " ", 1);
	if (part->n_language == 0) {
		mp_buf_puts(out, "NIL");
	} else {
		/* Always a list, even of one, as Dovecot writes it. */
		mp_buf_append(out, "(", 1);
		for (uint32_t i = 0; i < part->n_language; i++) {
			if (i > 0)
				mp_buf_append(out, " ", 1);
			append_str_or(out, part->language[i], "", flags);
		}
		mp_buf_append(out, ")", 1);
	}
	mp_buf_append(out, " ", 1);
	append_nolf(out, part->location, flags);
}

static void
append_multipart(struct mp_buf *out, const struct mp_mime_part *part, bool ext,
		 enum imap_format_flags flags)
{
	if (part->children == NULL)
		mp_buf_puts(out, ext ? EMPTY_BODYSTRUCTURE : EMPTY_BODY);
	for (const struct mp_mime_part *c = part->children; c; c = c->next)
		append_part(out, c, ext, flags);
	mp_buf_append(out, " ", 1);
	append_str_or(out, part->subtype, "mixed", flags);
	if (!ext)
		return;
	mp_buf_append(out, " ", 1);
	append_params(out, part->params, part->n_params, false, flags);
	append_ext_common(out, part, flags);
}

/* message/rfc822 (or message/global) parsed as a message: envelope, body
 * and lines follow the basic fields. */
static void
append_message_tail(struct mp_buf *out, const struct mp_mime_part *part,
		    bool ext, enum imap_format_flags flags)
{
	const struct mp_mime_part *child = part->children;

	mp_buf_append(out, " ", 1);
	imap_fetch_format_envelope(out, child != NULL ? child->envelope : NULL,
				   flags);
	mp_buf_append(out, " ", 1);
	if (child != NULL)
		append_part(out, child, ext, flags);
	else
		mp_buf_puts(out, ext ? EMPTY_BODYSTRUCTURE : EMPTY_BODY);
	mp_buf_printf(out, " %llu", (unsigned long long)part->body_lines);
}

/* A part parsed as an attached message whose structure the client's
 * grammar can take. */
static bool
as_message(const struct mp_mime_part *part, enum imap_format_flags flags)
{
	if (!(part->flags & MP_MIME_PART_MESSAGE))
		return false;
	return (flags & IMAP_FORMAT_MESSAGE_GLOBAL) ||
	       !str_is(part->subtype, "global");
}

static void
append_leaf(struct mp_buf *out, const struct mp_mime_part *part, bool ext,
	    enum imap_format_flags flags)
{
	bool text = part->type.p == NULL || str_is(part->type, "text");

	append_str_or(out, part->type, "text", flags);
	mp_buf_append(out, " ", 1);
	append_str_or(out, part->subtype, text ? "plain" : "unknown", flags);
	mp_buf_append(out, " ", 1);
	append_params(out, part->params, part->n_params, text, flags);
	mp_buf_append(out, " ", 1);
	append_nolf(out, part->id, flags);
	mp_buf_append(out, " ", 1);
	append_nolf(out, part->description, flags);
	mp_buf_append(out, " ", 1);
	append_str_or(out, part->encoding, "7bit", flags);
	mp_buf_printf(out, " %llu", (unsigned long long)part->body_size);
	if (as_message(part, flags))
		append_message_tail(out, part, ext, flags);
	else if (text)
		mp_buf_printf(out, " %llu",
			      (unsigned long long)part->body_lines);
	if (!ext)
		return;
	mp_buf_append(out, " ", 1);
	append_nolf(out, part->md5, flags);
	append_ext_common(out, part, flags);
}

static void
append_part(struct mp_buf *out, const struct mp_mime_part *part, bool ext,
	    enum imap_format_flags flags)
{
	mp_buf_append(out, "(", 1);
	if (part->flags & MP_MIME_PART_MULTIPART)
		append_multipart(out, part, ext, flags);
	else
		append_leaf(out, part, ext, flags);
	mp_buf_append(out, ")", 1);
}

void
imap_fetch_format_body(struct mp_buf *out, const struct mp_mime_part *part,
		       enum imap_format_flags flags)
{
	append_part(out, part, false, flags);
}

void
imap_fetch_format_bodystructure(struct mp_buf *out,
				const struct mp_mime_part *part,
				enum imap_format_flags flags)
{
	append_part(out, part, true, flags);
}
