/* imap-mutf7.c - modified UTF-7 mailbox names (RFC 3501 5.1.3) <-> UTF-8. */
#include "config.h"

#include <string.h>

#include "imap-mutf7.h"

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
b64_value(unsigned char ch)
{
	const char *p = ch != '\0' ? strchr(b64, ch) : NULL;

	return p != NULL ? (int)(p - b64) : -1;
}

static bool
printable(unsigned char ch)
{
	return ch >= 0x20 && ch <= 0x7e;
}

static void
put_utf8(struct mp_buf *out, uint32_t cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	mp_buf_append(out, u, n);
}

/* Decodes the shift whose BASE64 starts at in[*pos], up to and including
 * its '-'. */
static const char *
decode_shift(const char *in, size_t len, size_t *pos, struct mp_buf *out)
{
	uint32_t bits = 0, high = 0;
	unsigned nbits = 0;
	size_t start = *pos;
	int v;

	for (; *pos < len && (v = b64_value((unsigned char)in[*pos])) >= 0;
	     (*pos)++) {
		uint32_t unit;

		bits = (bits << 6 | (uint32_t)v) & 0xffffff;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		unit = bits >> nbits & 0xffff;
		if (high != 0) {
			if (unit < 0xdc00 || unit > 0xdfff)
				return "Unpaired UTF-16 surrogate";
			put_utf8(out, 0x10000 + ((high - 0xd800) << 10) +
					      (unit - 0xdc00));
			high = 0;
		} else if (unit >= 0xd800 && unit <= 0xdbff) {
			high = unit;
		} else if (unit >= 0xdc00 && unit <= 0xdfff) {
			return "Unpaired UTF-16 surrogate";
		} else if (unit == 0) {
			return "U+0000 in mailbox name";
		} else if (unit < 0x80 && printable((unsigned char)unit)) {
			return "Printable ASCII in a shifted sequence";
		} else {
			put_utf8(out, unit);
		}
	}
	if (*pos == len || in[*pos] != '-')
		return "Unterminated shifted sequence";
	(*pos)++;
	if (*pos - start == 1)
		return NULL; /* "&-" */
	if (high != 0)
		return "Unpaired UTF-16 surrogate";
	/* A canonical encoder pads with 0 bits to a BASE64 character and
	 * stops: at most 4 bits left over, all zero. */
	if (nbits >= 6 || (bits & ((1u << nbits) - 1)) != 0)
		return "Non-canonical shifted sequence";
	if (*pos < len && in[*pos] == '&' &&
	    !(*pos + 1 < len && in[*pos + 1] == '-'))
		return "Adjacent shifted sequences";
	return NULL;
}

bool
imap_mutf7_to_utf8(const char *in, size_t len, struct mp_buf *out,
		   const char **error_r)
{
	size_t pos = 0, keep = out->len;

	while (pos < len) {
		unsigned char ch = (unsigned char)in[pos];
		const char *err = NULL;

		if (ch == '&') {
			size_t mark = out->len;

			pos++;
			err = decode_shift(in, len, &pos, out);
			if (err == NULL && out->len == mark)
				mp_buf_append(out, "&", 1);
		} else if (!printable(ch)) {
			err = "Invalid character in mailbox name";
		} else {
			mp_buf_append(out, &in[pos++], 1);
		}
		if (err != NULL) {
			out->len = keep;
			if (out->data != NULL)
				out->data[keep] = '\0';
			*error_r = err;
			return false;
		}
	}
	if (out->data == NULL)
		mp_buf_append(out, "", 0);
	return true;
}

/* Decodes one strict UTF-8 character; 0 on an invalid sequence. */
static size_t
get_utf8(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len, i;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, *cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, *cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, *cp = s[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*cp = *cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && *cp < 0x800) || (len == 4 && *cp < 0x10000) ||
	    *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return len;
}

struct b64_out {
	uint32_t bits;
	unsigned nbits;
};

static void
put_unit(struct mp_buf *out, struct b64_out *b, uint32_t unit)
{
	b->bits = (b->bits << 16 | unit) & 0xffffff;
	b->nbits += 16;
	while (b->nbits >= 6) {
		b->nbits -= 6;
		mp_buf_append(out, &b64[b->bits >> b->nbits & 0x3f], 1);
	}
}

static void
end_shift(struct mp_buf *out, struct b64_out *b)
{
	if (b->nbits > 0)
		mp_buf_append(out, &b64[b->bits << (6 - b->nbits) & 0x3f], 1);
	mp_buf_append(out, "-", 1);
	b->nbits = 0;
	b->bits = 0;
}

bool
imap_utf8_to_mutf7(const char *in, size_t len, struct mp_buf *out,
		   const char **error_r)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t pos = 0, keep = out->len;
	struct b64_out b = {0, 0};
	bool shifted = false;

	while (pos < len) {
		uint32_t cp;
		size_t n = get_utf8(s + pos, len - pos, &cp);

		if (n == 0 || cp == 0) {
			out->len = keep;
			if (out->data != NULL)
				out->data[keep] = '\0';
			*error_r = n == 0 ? "Invalid UTF-8 in mailbox name"
					  : "U+0000 in mailbox name";
			return false;
		}
		pos += n;
		if (cp < 0x80 && printable((unsigned char)cp)) {
			if (shifted)
				end_shift(out, &b);
			shifted = false;
			if (cp == '&')
				mp_buf_append(out, "&-", 2);
			else
				mp_buf_append(out, &s[pos - 1], 1);
			continue;
		}
		if (!shifted)
			mp_buf_append(out, "&", 1);
		shifted = true;
		if (cp >= 0x10000) {
			put_unit(out, &b, 0xd800 + ((cp - 0x10000) >> 10));
			put_unit(out, &b, 0xdc00 + ((cp - 0x10000) & 0x3ff));
		} else {
			put_unit(out, &b, cp);
		}
	}
	if (shifted)
		end_shift(out, &b);
	if (out->data == NULL)
		mp_buf_append(out, "", 0);
	return true;
}

bool
imap_utf8_needs_mutf7(const char *in, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!printable((unsigned char)in[i]) || in[i] == '&')
			return true;
	return false;
}
