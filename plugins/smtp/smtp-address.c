/* smtp-address.c - RFC 5321 paths and mailboxes: checked, made canonical. */
#include "config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <string.h>

#include "smtp-address.h"

/* Octets of an ASCII domain label (RFC 1035 2.3.4). */
#define LABEL_MAX 63

/* A position in the bytes being scanned. */
struct scan {
	const char *p;
	size_t len;
	size_t pos;
	bool utf8; /* a non-ASCII character was passed */
};

static bool
at(const struct scan *s, char c)
{
	return s->pos < s->len && s->p[s->pos] == c;
}

static bool
eat(struct scan *s, char c)
{
	if (!at(s, c))
		return false;
	s->pos++;
	return true;
}

static struct mp_str
view_from(const struct scan *s, size_t from)
{
	return (struct mp_str){s->p + from, s->pos - from};
}

static bool
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static bool
is_print(unsigned char c)
{
	return c >= 32 && c <= 126;
}

/* RFC 5321 atext; RFC 6531's UTF-8 is passed by scan_utf8(). */
static bool
is_atext(unsigned char c)
{
	return is_alnum(c) ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static unsigned char
lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* True when the scan continues with word (lower case), in any case. */
static bool
at_word_icase(const struct scan *s, const char *word)
{
	size_t n = strlen(word);

	if (s->len - s->pos < n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (lower((unsigned char)s->p[s->pos + i]) !=
		    (unsigned char)word[i])
			return false;
	}
	return true;
}

size_t
smtp_address_utf8_seq(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (len == 0)
		return 0;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (p[0] == 0xe0 || p[0] == 0xf0)
		lo = p[0] == 0xe0 ? 0xa0 : 0x90; /* overlong */
	else if (p[0] == 0xed)
		hi = 0x9f; /* UTF-16 surrogates */
	else if (p[0] == 0xf4)
		hi = 0x8f; /* past U+10FFFF */
	if (len < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	}
	return n;
}

/* Passes one non-ASCII character; false when it is not UTF-8. */
static bool
scan_utf8(struct scan *s)
{
	size_t n = smtp_address_utf8_seq(s->p + s->pos, s->len - s->pos);

	if (n == 0)
		return false;
	s->pos += n;
	s->utf8 = true;
	return true;
}

bool
smtp_address_text_valid(const char *s, size_t len)
{
	struct scan sc = {s, len, 0, false};

	while (sc.pos < len) {
		unsigned char c = (unsigned char)s[sc.pos];

		if (c >= 0x80) {
			if (!scan_utf8(&sc))
				return false;
		} else if (c == '\t' || is_print(c)) {
			sc.pos++;
		} else {
			return false;
		}
	}
	return true;
}

/* Dot-string: atoms joined by single dots. */
static bool
scan_dot_string(struct scan *s)
{
	bool need_atom = true;

	while (s->pos < s->len) {
		unsigned char c = (unsigned char)s->p[s->pos];

		if (c == '.') {
			if (need_atom)
				return false;
			need_atom = true;
			s->pos++;
		} else if (is_atext(c)) {
			need_atom = false;
			s->pos++;
		} else if (c >= 0x80 && scan_utf8(s)) {
			need_atom = false;
		} else {
			break;
		}
	}
	return !need_atom;
}

/* Quoted-string: qtextSMTP (printable but '"' and '\'), UTF-8, and
 * quoted-pairSMTP ('\' and a printable character). */
static bool
scan_quoted(struct scan *s)
{
	s->pos++;
	while (s->pos < s->len) {
		unsigned char c = (unsigned char)s->p[s->pos];

		if (c == '"') {
			s->pos++;
			return true;
		}
		if (c == '\\') {
			if (s->pos + 1 >= s->len ||
			    !is_print((unsigned char)s->p[s->pos + 1]))
				return false;
			s->pos += 2;
		} else if (c >= 0x80) {
			if (!scan_utf8(s))
				return false;
		} else if (is_print(c)) {
			s->pos++;
		} else {
			return false;
		}
	}
	return false;
}

/* sub-domain: letters, digits, '-' and UTF-8 (a U-label), neither first
 * nor last a '-'. Only ASCII labels are held to 63 octets: a U-label's
 * limit is that of its A-label, which we do not compute. */
static bool
scan_label(struct scan *s)
{
	size_t start = s->pos, n;
	bool ascii = true;

	while (s->pos < s->len) {
		unsigned char c = (unsigned char)s->p[s->pos];

		if (is_alnum(c) || c == '-') {
			s->pos++;
			continue;
		}
		if (c < 0x80 || !scan_utf8(s))
			break;
		ascii = false;
	}
	n = s->pos - start;
	return n > 0 && (n <= LABEL_MAX || !ascii) && s->p[start] != '-' &&
	       s->p[s->pos - 1] != '-';
}

static bool
scan_domain(struct scan *s)
{
	do {
		if (!scan_label(s))
			return false;
	} while (eat(s, '.'));
	return true;
}

/* An address literal's content: an IPv4 address, or "IPv6:" and an IPv6
 * address. A General-address-literal names nothing we could reach. */
static bool
literal_valid(const char *p, size_t n)
{
	unsigned char addr[sizeof(struct in6_addr)];
	char buf[INET6_ADDRSTRLEN];
	int af = AF_INET;
	struct scan s = {p, n, 0, false};

	if (at_word_icase(&s, "ipv6:")) {
		af = AF_INET6;
		p += 5;
		n -= 5;
	}
	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return inet_pton(af, buf, addr) == 1;
}

/* address-literal: "[" printable characters "]", whose dcontent
 * inet_pton() then checks; a NUL must not reach it, as it would end the
 * address early. */
static bool
scan_literal(struct scan *s)
{
	size_t start = ++s->pos;

	while (s->pos < s->len && s->p[s->pos] != ']') {
		unsigned char c = (unsigned char)s->p[s->pos];

		if (c < 33 || c > 126)
			return false;
		s->pos++;
	}
	if (!eat(s, ']'))
		return false;
	return literal_valid(s->p + start, s->pos - 1 - start);
}

/* A-d-l ":" - "@a,@b:" - checked, then ignored (RFC 5321 4.1.1.3). */
static bool
scan_route(struct scan *s)
{
	do {
		if (!eat(s, '@') || !scan_domain(s))
			return false;
	} while (eat(s, ','));
	return eat(s, ':');
}

/* Mailbox: Local-part "@" ( Domain / address-literal ). */
static enum smtp_addr_status
scan_mailbox(struct scan *s, const struct smtp_limits *lim,
	     struct smtp_path *path)
{
	size_t start = s->pos;
	bool ok;

	path->quoted = at(s, '"');
	ok = path->quoted ? scan_quoted(s) : scan_dot_string(s);
	path->local = view_from(s, start);
	if (!ok || !eat(s, '@'))
		return SMTP_ADDR_SYNTAX;
	start = s->pos;
	path->literal = at(s, '[');
	ok = path->literal ? scan_literal(s) : scan_domain(s);
	path->domain = view_from(s, start);
	if (!ok)
		return SMTP_ADDR_SYNTAX;
	if (path->local.len > lim->local_part_max ||
	    path->domain.len > lim->domain_max)
		return SMTP_ADDR_TOO_LONG;
	return SMTP_ADDR_OK;
}

/* What lies between the brackets: "", "Postmaster", or a mailbox with an
 * optional source route. */
static enum smtp_addr_status
scan_path_body(struct scan *s, unsigned flags, const struct smtp_limits *lim,
	       struct smtp_path *path)
{
	if ((flags & SMTP_PATH_ALLOW_NULL) && at(s, '>')) {
		path->null = true;
		path->local = view_from(s, s->pos);
		path->domain = path->local;
		return SMTP_ADDR_OK;
	}
	if ((flags & SMTP_PATH_ALLOW_POSTMASTER) &&
	    at_word_icase(s, "postmaster>")) {
		path->postmaster = true;
		path->local = (struct mp_str){s->p + s->pos, 10};
		s->pos += 10;
		path->domain = view_from(s, s->pos);
		return path->local.len > lim->local_part_max
			       ? SMTP_ADDR_TOO_LONG
			       : SMTP_ADDR_OK;
	}
	if (at(s, '@')) {
		if (!scan_route(s))
			return SMTP_ADDR_SYNTAX;
		path->route = true;
	}
	return scan_mailbox(s, lim, path);
}

/* Writes a quoted local part the shortest way: bare when the unquoted
 * text is a dot-string, else quoted with only '"' and '\' escaped. Never
 * longer than the local part as sent. */
static size_t
canon_quoted(struct mp_str local, char *out)
{
	char plain[SMTP_PATH_CAP];
	struct scan sc;
	size_t n = 0, o = 0;

	assert(local.len <= sizeof(plain));
	for (size_t i = 1; i + 1 < local.len; i++) {
		if (local.p[i] == '\\')
			i++;
		plain[n++] = local.p[i];
	}
	sc = (struct scan){plain, n, 0, false};
	if (scan_dot_string(&sc) && sc.pos == n) {
		memcpy(out, plain, n);
		return n;
	}
	out[o++] = '"';
	for (size_t i = 0; i < n; i++) {
		if (plain[i] == '"' || plain[i] == '\\')
			out[o++] = '\\';
		out[o++] = plain[i];
	}
	out[o++] = '"';
	return o;
}

/* Fills path->mailbox. Callers have bounded the mailbox to the buffer. */
static void
canonicalize(struct smtp_path *path)
{
	size_t n = path->local.len;

	assert(path->local.len + 1 + path->domain.len < sizeof(path->mailbox));
	if (path->quoted)
		n = canon_quoted(path->local, path->mailbox);
	else if (n > 0)
		memcpy(path->mailbox, path->local.p, n);
	path->mailbox_local_len = n;
	if (path->domain.len > 0) {
		path->mailbox[n++] = '@';
		memcpy(path->mailbox + n, path->domain.p, path->domain.len);
		n += path->domain.len;
	}
	path->mailbox[n] = '\0';
	path->mailbox_len = n;
}

enum smtp_addr_status
smtp_address_parse_path(const char *p, size_t len, unsigned flags,
			const struct smtp_limits *limits,
			struct smtp_path *path, size_t *used_r)
{
	struct scan s = {p, len, 0, false};
	struct smtp_limits lim;
	enum smtp_addr_status st;

	smtp_parser_limits_resolve(limits, &lim);
	memset(path, 0, sizeof(*path));
	if (!eat(&s, '<'))
		return SMTP_ADDR_SYNTAX;
	st = scan_path_body(&s, flags, &lim, path);
	if (st != SMTP_ADDR_OK)
		return st;
	if (!eat(&s, '>'))
		return SMTP_ADDR_SYNTAX;
	if (s.pos > lim.path_max)
		return SMTP_ADDR_TOO_LONG;
	path->raw = (struct mp_str){p + 1, s.pos - 2};
	path->utf8 = s.utf8;
	canonicalize(path);
	*used_r = s.pos;
	return SMTP_ADDR_OK;
}

enum smtp_addr_status
smtp_address_parse_mailbox(const char *p, size_t len,
			   const struct smtp_limits *limits,
			   struct smtp_path *path)
{
	struct scan s = {p, len, 0, false};
	struct smtp_limits lim;
	enum smtp_addr_status st;

	smtp_parser_limits_resolve(limits, &lim);
	memset(path, 0, sizeof(*path));
	st = scan_mailbox(&s, &lim, path);
	if (st != SMTP_ADDR_OK)
		return st;
	if (s.pos != len)
		return SMTP_ADDR_SYNTAX;
	if (len + 2 > lim.path_max)
		return SMTP_ADDR_TOO_LONG;
	path->raw = (struct mp_str){p, len};
	path->utf8 = s.utf8;
	canonicalize(path);
	return SMTP_ADDR_OK;
}

static bool
helo_literal_valid(const char *p, size_t len)
{
	if (len < 3 || p[len - 1] != ']')
		return false;
	for (size_t i = 1; i + 1 < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 33 || c > 126 || c == '[' || c == ']' || c == '\\')
			return false;
	}
	return true;
}

bool
smtp_address_helo_valid(const char *p, size_t len)
{
	struct scan s = {p, len, 0, false};

	if (len == 0)
		return false;
	if (p[0] == '[')
		return helo_literal_valid(p, len);
	while (s.pos < len) {
		unsigned char c = (unsigned char)p[s.pos];

		if (is_alnum(c) || c == '-' || c == '.' || c == '_')
			s.pos++;
		else if (c < 0x80 || !scan_utf8(&s))
			return false;
	}
	return true;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)lower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The byte the xtext at in[*pos] stands for, or -1 when it is not xtext;
 * *pos moves past it. */
static int
xtext_next(const char *in, size_t len, size_t *pos)
{
	unsigned char c = (unsigned char)in[*pos];
	int hi, lo;

	if (c == '+') {
		if (len - *pos < 3 || (hi = hex_value(in[*pos + 1])) < 0 ||
		    (lo = hex_value(in[*pos + 2])) < 0)
			return -1;
		*pos += 3;
		return hi << 4 | lo;
	}
	if (c < 33 || c > 126 || c == '=')
		return -1;
	(*pos)++;
	return c;
}

bool
smtp_xtext_decode_buf(const char *in, size_t len, char *out, size_t size,
		      size_t *len_r)
{
	size_t pos = 0, n = 0;

	while (pos < len) {
		int c = xtext_next(in, len, &pos);

		if (c < 0 || n + 1 >= size)
			return false;
		out[n++] = (char)c;
	}
	if (size == 0)
		return false;
	out[n] = '\0';
	*len_r = n;
	return true;
}

bool
smtp_xtext_decode(const char *in, size_t len, struct mp_buf *out)
{
	size_t pos = 0, start = out->len;

	while (pos < len) {
		int c = xtext_next(in, len, &pos);
		char ch = (char)c;

		if (c < 0) {
			out->len = start;
			if (out->data != NULL)
				out->data[start] = '\0';
			return false;
		}
		mp_buf_append(out, &ch, 1);
	}
	return true;
}

void
smtp_xtext_encode(const char *in, size_t len, struct mp_buf *out)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		char esc[3] = {'+', hex[c >> 4], hex[c & 15]};

		if (c >= 33 && c <= 126 && c != '+' && c != '=')
			mp_buf_append(out, &in[i], 1);
		else
			mp_buf_append(out, esc, 3);
	}
}
