/* mime-decode.c - what IMAP uses on stored bytes at FETCH and SEARCH time:
 * header fields unfolded, RFC 2047 encoded words and charsets to UTF-8, and
 * the base64 / quoted-printable body decoders. */
#include "config.h"

#include <errno.h>
#include <iconv.h>
#include <string.h>
#include <strings.h>

#include "mime-private.h"

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, nothing past U+10FFFF), or 0. */
static size_t
utf8_seq(const unsigned char *s, size_t len)
{
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;

	if (s[0] < 0x80)
		return 1;
	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0;
	n = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	}
	return n;
}

/* Appends UTF-8 text, each invalid byte replaced by U+FFFD. */
static void
utf8_append(struct mp_buf *out, const char *p, size_t len)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t run = 0;

	if (len == 0)
		return;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq(s + i, len - i);

		if (n > 0) {
			i += n;
			run += n;
			continue;
		}
		mp_buf_append(out, s + i - run, run);
		mp_buf_append(out, replacement, 3);
		run = 0;
		i++;
	}
	mp_buf_append(out, s + len - run, run);
}

/* Names iconv does not know, or knows by a narrower charset than the one
 * mail actually uses under that label. */
static const char *
charset_alias(const char *name)
{
	static const char *const aliases[][2] = {
		{"ks_c_5601-1987", "CP949"},
		{"gb2312", "GB18030"},
		{"gbk", "GB18030"},
		{"x-gbk", "GB18030"},
		{"iso-8859-8-i", "ISO-8859-8"},
		{"x-sjis", "SHIFT_JIS"},
		{"iso-8859-1", "WINDOWS-1252"},
		{"us-ascii", "UTF-8"},
		{"ascii", "UTF-8"},
		{"utf8", "UTF-8"},
		{"unicode-1-1-utf-7", "UTF-7"},
	};

	for (size_t i = 0; i < MP_NELEMS(aliases); i++) {
		if (strcasecmp(name, aliases[i][0]) == 0)
			return aliases[i][1];
	}
	return name;
}

static void
iconv_append(iconv_t cd, const char *p, size_t len, struct mp_buf *out)
{
	/* iconv(3) takes char ** for its input but never writes it. */
	char *in = (char *)p, buf[1024], *o;
	size_t inleft = len, oleft;

	while (inleft > 0) {
		o = buf;
		oleft = sizeof(buf);
		if (iconv(cd, &in, &inleft, &o, &oleft) != (size_t)-1 ||
		    errno == E2BIG) {
			mp_buf_append(out, buf, (size_t)(o - buf));
			continue;
		}
		/* EILSEQ, or EINVAL for a sequence cut at the end. */
		mp_buf_append(out, buf, (size_t)(o - buf));
		mp_buf_append(out, replacement, 3);
		in++;
		inleft--;
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	o = buf;
	oleft = sizeof(buf);
	iconv(cd, NULL, NULL, &o, &oleft);
	mp_buf_append(out, buf, (size_t)(o - buf));
}

bool
mp_mime_charset_to_utf8(const char *charset, const void *data, size_t len,
			struct mp_buf *out)
{
	const char *name;
	iconv_t cd;

	if (len == 0)
		return true;
	if (charset == NULL || *charset == '\0') {
		utf8_append(out, data, len);
		return true;
	}
	name = charset_alias(charset);
	if (strcasecmp(name, "UTF-8") == 0) {
		utf8_append(out, data, len);
		return true;
	}
	cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1) {
		utf8_append(out, data, len);
		return false;
	}
	iconv_append(cd, data, len, out);
	iconv_close(cd);
	return true;
}

struct mp_str
mime_trim(const char *p, size_t len)
{
	while (len > 0 &&
	       (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
		p++;
		len--;
	}
	while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t' ||
			   p[len - 1] == '\r' || p[len - 1] == '\n'))
		len--;
	return (struct mp_str){p, len};
}

bool
mime_str_ieq(const char *p, size_t len, const char *s)
{
	return p != NULL && strlen(s) == len && strncasecmp(p, s, len) == 0;
}

/* --- header fields ------------------------------------------------------- */

void
mp_mime_header_iter_init(struct mp_mime_header_iter *iter, const void *data,
			 size_t len)
{
	iter->p = data;
	iter->end = iter->p + len;
	iter->value = (struct mp_buf){0};
}

/* The next line of the header, without its CR LF; false at the end. */
static bool
iter_line(struct mp_mime_header_iter *iter, struct mp_str *line_r)
{
	const char *lf;
	size_t len;

	if (iter->p >= iter->end)
		return false;
	lf = memchr(iter->p, '\n', (size_t)(iter->end - iter->p));
	len = lf != NULL ? (size_t)(lf - iter->p)
			 : (size_t)(iter->end - iter->p);
	*line_r = (struct mp_str){iter->p, len};
	if (len > 0 && iter->p[len - 1] == '\r')
		line_r->len--;
	iter->p = lf != NULL ? lf + 1 : iter->end;
	return true;
}

bool
mp_mime_header_iter_next(struct mp_mime_header_iter *iter,
			 struct mp_str *name_r, struct mp_str *value_r)
{
	struct mp_str line, name;
	const char *colon;

	for (;;) {
		if (!iter_line(iter, &line) || line.len == 0) {
			iter->p = iter->end;
			return false;
		}
		colon = memchr(line.p, ':', line.len);
		if (line.p[0] == ' ' || line.p[0] == '\t' || colon == NULL)
			continue;
		name = mime_trim(line.p, (size_t)(colon - line.p));
		if (name.len > 0)
			break;
	}
	mp_buf_reset(&iter->value);
	mp_buf_append(&iter->value, colon + 1,
		      line.len - (size_t)(colon + 1 - line.p));
	while (iter->p < iter->end && (*iter->p == ' ' || *iter->p == '\t')) {
		iter_line(iter, &line);
		mp_buf_append(&iter->value, line.p, line.len);
	}
	*name_r = name;
	*value_r = mime_trim(iter->value.data, iter->value.len);
	return true;
}

void
mp_mime_header_iter_deinit(struct mp_mime_header_iter *iter)
{
	mp_buf_free(&iter->value);
}

/* --- RFC 2231 ------------------------------------------------------------- */

static void
percent_decode(const char *p, size_t len, struct mp_buf *out)
{
	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (p[i] == '%' && i + 2 < len &&
		    (hi = mime_hexval(p[i + 1])) >= 0 &&
		    (lo = mime_hexval(p[i + 2])) >= 0) {
			char c = (char)(hi << 4 | lo);

			mp_buf_append(out, &c, 1);
			i += 2;
		} else {
			mp_buf_append(out, &p[i], 1);
		}
	}
}

/* Appends one extended value "charset'lang'%XX" (the prefix only in the
 * first section) to out; the charset goes to charset_r. */
void
mime_ext_value(const char *p, size_t len, bool first, char *charset_r,
	       struct mp_buf *out)
{
	const char *q1, *q2;

	if (first && (q1 = memchr(p, '\'', len)) != NULL &&
	    (q2 = memchr(q1 + 1, '\'', len - (size_t)(q1 + 1 - p))) != NULL) {
		size_t clen = (size_t)(q1 - p);

		if (clen < MIME_CHARSET_MAX) {
			memcpy(charset_r, p, clen);
			charset_r[clen] = '\0';
		}
		len -= (size_t)(q2 + 1 - p);
		p = q2 + 1;
	}
	percent_decode(p, len, out);
}

/* --- RFC 2047 ------------------------------------------------------------- */

struct eword {
	char charset[MIME_CHARSET_MAX];
	char enc; /* 'b' or 'q' */
	struct mp_str text;
	size_t end; /* offset just past "?=" */
};

static bool
is_enc(char c)
{
	return c == 'B' || c == 'b' || c == 'Q' || c == 'q';
}

static bool
is_lwsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Reads "=?charset[*lang]?B|Q?text?=" at v[i]; text holds no white
 * space, so a stray "=?" in plain text cannot swallow what follows. */
static bool
eword_parse(const char *v, size_t len, size_t i, struct eword *w)
{
	size_t cs = i + 2, q, t;

	if (i + 2 > len || v[i] != '=' || v[i + 1] != '?')
		return false;
	for (q = cs; q < len && v[q] != '?'; q++) {
		if (v[q] == ' ' || v[q] == '\t' ||
		    q - cs >= MIME_CHARSET_MAX - 1)
			return false;
	}
	if (q == cs || q + 3 > len || v[q + 2] != '?' || !is_enc(v[q + 1]))
		return false;
	memcpy(w->charset, v + cs, q - cs);
	w->charset[q - cs] = '\0';
	if (strchr(w->charset, '*') != NULL) /* RFC 2231 section 5 */
		*strchr(w->charset, '*') = '\0';
	w->enc = (char)(v[q + 1] | 0x20);
	for (t = q + 3; t + 1 < len && !(v[t] == '?' && v[t + 1] == '='); t++) {
		if (is_lwsp(v[t]))
			return false;
	}
	if (t + 1 >= len)
		return false;
	w->text = (struct mp_str){v + q + 3, t - (q + 3)};
	w->end = t + 2;
	return true;
}

int
mime_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void
q_decode(const struct mp_str *t, struct mp_buf *out)
{
	for (size_t i = 0; i < t->len; i++) {
		char c = t->p[i];
		int hi, lo;

		if (c == '_') {
			c = ' ';
		} else if (c == '=' && i + 2 < t->len &&
			   (hi = mime_hexval(t->p[i + 1])) >= 0 &&
			   (lo = mime_hexval(t->p[i + 2])) >= 0) {
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		mp_buf_append(out, &c, 1);
	}
}

static void
b_decode(const struct mp_str *t, struct mp_buf *out)
{
	struct mp_mime_body_decoder dec;

	mp_mime_body_decoder_init(&dec, MP_MIME_CTE_BASE64);
	mp_mime_body_decoder_feed(&dec, t->p, t->len, out);
}

/* Decoded bytes waiting for the next word: adjacent words in one charset
 * are joined first, as a character may be split between them. */
struct pending {
	char charset[MIME_CHARSET_MAX];
	struct mp_buf bytes;
};

static void
pending_flush(struct pending *pd, struct mp_buf *out)
{
	if (pd->bytes.len > 0)
		mp_mime_charset_to_utf8(pd->charset, pd->bytes.data,
					pd->bytes.len, out);
	mp_buf_reset(&pd->bytes);
}

/* Plain text between words; CR and LF of a folded value are dropped. */
static void
plain_append(const char *p, size_t len, struct mp_buf *out)
{
	size_t start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i == len || p[i] == '\r' || p[i] == '\n') {
			utf8_append(out, p + start, i - start);
			start = i + 1;
		}
	}
}

void
mp_mime_decode_header(const void *value, size_t len, struct mp_buf *out)
{
	const char *v = value;
	struct pending pd = {.charset = ""};
	struct eword w;
	size_t i = 0, j;

	mp_buf_append(out, "", 0);
	while (i < len) {
		if (eword_parse(v, len, i, &w)) {
			if (strcasecmp(pd.charset, w.charset) != 0) {
				pending_flush(&pd, out);
				memcpy(pd.charset, w.charset,
				       sizeof(pd.charset));
			}
			(w.enc == 'b' ? b_decode : q_decode)(&w.text,
							     &pd.bytes);
			/* White space between two words is dropped. */
			for (i = j = w.end; j < len && is_lwsp(v[j]); j++)
				;
			if (j > i && eword_parse(v, len, j, &w))
				i = j;
			continue;
		}
		pending_flush(&pd, out);
		for (j = i + 1; j < len && !(v[j] == '=' && j + 1 < len &&
					     v[j + 1] == '?');
		     j++)
			;
		plain_append(v + i, j - i, out);
		i = j;
	}
	pending_flush(&pd, out);
	mp_buf_free(&pd.bytes);
}

/* --- body decoders -------------------------------------------------------- */

enum mp_mime_cte
mp_mime_cte_parse(struct mp_str encoding)
{
	struct mp_str e =
		mime_trim(encoding.p != NULL ? encoding.p : "", encoding.len);

	if (e.len == 0 || mime_str_ieq(e.p, e.len, "7bit") ||
	    mime_str_ieq(e.p, e.len, "8bit") ||
	    mime_str_ieq(e.p, e.len, "binary"))
		return MP_MIME_CTE_IDENTITY;
	if (mime_str_ieq(e.p, e.len, "base64"))
		return MP_MIME_CTE_BASE64;
	if (mime_str_ieq(e.p, e.len, "quoted-printable"))
		return MP_MIME_CTE_QP;
	return MP_MIME_CTE_UNKNOWN;
}

void
mp_mime_body_decoder_init(struct mp_mime_body_decoder *dec,
			  enum mp_mime_cte cte)
{
	*dec = (struct mp_mime_body_decoder){.cte = cte};
}

/* Output gathered in a small buffer: one append per run, not per byte. */
struct obuf {
	struct mp_buf *out;
	size_t n;
	char b[512];
};

static void
obuf_flush(struct obuf *o)
{
	mp_buf_append(o->out, o->b, o->n);
	o->n = 0;
}

static void
obuf_put(struct obuf *o, char c)
{
	if (o->n == sizeof(o->b))
		obuf_flush(o);
	o->b[o->n++] = c;
}

static int
b64val(char c)
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

/* Characters outside the alphabet are ignored (RFC 2045 section 6.8); "="
 * ends the data, so what follows the padding is not decoded. */
static void
b64_feed(struct mp_mime_body_decoder *dec, const char *p, size_t len,
	 struct obuf *o)
{
	for (size_t i = 0; i < len && !dec->done; i++) {
		int v = b64val(p[i]);

		if (p[i] == '=') {
			dec->done = true;
		} else if (v >= 0) {
			dec->bits = (dec->bits << 6 | (uint32_t)v) & 0xffffff;
			dec->n_bits += 6;
			if (dec->n_bits >= 8) {
				dec->n_bits -= 8;
				obuf_put(o, (char)(dec->bits >> dec->n_bits));
			}
		}
	}
}

static void
qp_ws_flush(struct mp_mime_body_decoder *dec, struct obuf *o)
{
	for (uint32_t i = 0; i < dec->n_ws; i++)
		obuf_put(o, dec->ws[i]);
	dec->n_ws = 0;
}

/* After "=": two hex digits, or a soft line break ("=" [white space]
 * CRLF), or else the "=" was literal. Returns false when c is not used. */
static bool
qp_escape(struct mp_mime_body_decoder *dec, char c, struct obuf *o)
{
	int v = mime_hexval(c);

	if (dec->eq_len == 3) { /* soft break: skip to the LF */
		if (c == ' ' || c == '\t' || c == '\r')
			return true;
		dec->eq_len = 0;
		return c == '\n';
	}
	if (dec->eq_len == 1 && (c == ' ' || c == '\t' || c == '\r')) {
		dec->eq_len = 3;
		return true;
	}
	if (dec->eq_len == 1 && c == '\n') {
		dec->eq_len = 0;
		return true;
	}
	if (v >= 0 && dec->eq_len == 1) {
		dec->eq[0] = c;
		dec->eq_len = 2;
		return true;
	}
	if (v >= 0) {
		obuf_put(o, (char)(mime_hexval(dec->eq[0]) << 4 | v));
		dec->eq_len = 0;
		return true;
	}
	/* Not an escape: the "=" and what followed it are literal. */
	obuf_put(o, '=');
	if (dec->eq_len == 2)
		obuf_put(o, dec->eq[0]);
	dec->eq_len = 0;
	return false;
}

static void
qp_byte(struct mp_mime_body_decoder *dec, char c, struct obuf *o)
{
	if (dec->eq_len > 0 && qp_escape(dec, c, o))
		return;
	if (c == ' ' || c == '\t' || c == '\r') {
		/* Held: white space at the end of a line is deleted. */
		if (dec->n_ws == sizeof(dec->ws))
			qp_ws_flush(dec, o);
		dec->ws[dec->n_ws++] = c;
		return;
	}
	if (c == '\n') {
		if (dec->n_ws > 0 && dec->ws[dec->n_ws - 1] == '\r')
			obuf_put(o, '\r');
		dec->n_ws = 0;
		obuf_put(o, '\n');
		return;
	}
	qp_ws_flush(dec, o);
	if (c == '=')
		dec->eq_len = 1;
	else
		obuf_put(o, c);
}

void
mp_mime_body_decoder_feed(struct mp_mime_body_decoder *dec, const void *data,
			  size_t len, struct mp_buf *out)
{
	struct obuf o = {.out = out};
	const char *p = data;

	switch (dec->cte) {
	case MP_MIME_CTE_BASE64:
		b64_feed(dec, p, len, &o);
		break;
	case MP_MIME_CTE_QP:
		for (size_t i = 0; i < len; i++)
			qp_byte(dec, p[i], &o);
		break;
	default:
		mp_buf_append(out, data, len);
	}
	obuf_flush(&o);
}

void
mp_mime_body_decoder_finish(struct mp_mime_body_decoder *dec,
			    struct mp_buf *out)
{
	struct obuf o = {.out = out};

	if (dec->cte == MP_MIME_CTE_QP && dec->eq_len > 0 && dec->eq_len < 3) {
		obuf_put(&o, '=');
		if (dec->eq_len == 2)
			obuf_put(&o, dec->eq[0]);
	}
	/* Trailing white space of the last line goes, as on every line. */
	mp_mime_body_decoder_init(dec, dec->cte);
	obuf_flush(&o);
}
