/* base64.c - strict RFC 4648 base64 encoding and decoding. */
#include "config.h"

#include <moonpost/base64.h>

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The value of an alphabet character, or -1 ('=' included). */
static int
char_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

size_t
mp_base64_encoded_len(size_t len)
{
	return (len + 2) / 3 * 4;
}

void
mp_base64_encode(const void *in, size_t len, struct mp_buf *out)
{
	const unsigned char *p = in;
	char quad[4];

	for (size_t i = 0; i < len; i += 3) {
		size_t left = len - i;
		uint32_t v = (uint32_t)p[i] << 16;

		if (left > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (left > 2)
			v |= p[i + 2];
		quad[0] = alphabet[v >> 18];
		quad[1] = alphabet[(v >> 12) & 63];
		quad[2] = left > 1 ? alphabet[(v >> 6) & 63] : '=';
		quad[3] = left > 2 ? alphabet[v & 63] : '=';
		mp_buf_append(out, quad, 4);
	}
	if (len == 0)
		mp_buf_append(out, "", 0); /* data is a string even then */
}

/* The 24 bits that n (2 to 4) characters of q encode, high bits first. */
static bool
decode_chars(const char *q, size_t n, uint32_t *v_r, const char **error_r)
{
	uint32_t v = 0;

	for (size_t i = 0; i < n; i++) {
		int c = char_value((unsigned char)q[i]);

		if (c < 0) {
			*error_r = q[i] == '=' ? "misplaced padding"
					       : "invalid character";
			return false;
		}
		v = v << 6 | (uint32_t)c;
	}
	*v_r = v << 6 * (4 - n);
	return true;
}

/* Decodes the last quad, which may end in "=" or "=="; returns how many
 * bytes it holds (1 to 3), or 0 with *error_r. */
static size_t
decode_last(const char *q, unsigned char bytes[3], const char **error_r)
{
	size_t n_chars = q[3] != '=' ? 4 : q[2] != '=' ? 3 : 2;
	uint32_t v;

	if (!decode_chars(q, n_chars, &v, error_r))
		return 0;
	/* Bits below the last byte must be zero, or two encodings would
	 * decode alike and the input would not be canonical. */
	if ((n_chars == 2 && (v & 0xffff) != 0) ||
	    (n_chars == 3 && (v & 0xff) != 0)) {
		*error_r = "non-zero bits after the last byte";
		return 0;
	}
	bytes[0] = (unsigned char)(v >> 16);
	bytes[1] = (unsigned char)(v >> 8);
	bytes[2] = (unsigned char)v;
	return n_chars - 1;
}

/* Puts out back to len bytes after a failed decode. */
static bool
undo(struct mp_buf *out, size_t len)
{
	out->len = len;
	if (out->data != NULL)
		out->data[len] = '\0';
	return false;
}

bool
mp_base64_decode(const char *in, size_t len, struct mp_buf *out,
		 const char **error_r)
{
	const char *unused, **err = error_r != NULL ? error_r : &unused;
	size_t old_len = out->len, n;
	unsigned char bytes[3];
	uint32_t v;

	if (len % 4 != 0) {
		*err = "length is not a multiple of 4";
		return false;
	}
	mp_buf_append(out, "", 0); /* data is a string even when empty */
	if (len == 0)
		return true;
	for (size_t i = 0; i + 4 < len; i += 4) {
		if (!decode_chars(in + i, 4, &v, err))
			return undo(out, old_len);
		bytes[0] = (unsigned char)(v >> 16);
		bytes[1] = (unsigned char)(v >> 8);
		bytes[2] = (unsigned char)v;
		mp_buf_append(out, bytes, 3);
	}
	if ((n = decode_last(in + len - 4, bytes, err)) == 0)
		return undo(out, old_len);
	mp_buf_append(out, bytes, n);
	return true;
}
