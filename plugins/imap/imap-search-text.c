/* imap-search-text.c - what SEARCH compares: case folding and dates. */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "imap-search-private.h"

/* --- case folding ------------------------------------------------------- */

/* Pairs upper, lower at even, odd code points (Latin Extended-A from
 * U+0100, Cyrillic from U+0460...). */
static uint32_t
fold_pair_even(uint32_t c)
{
	return (c % 2 == 0) ? c + 1 : c;
}

static uint32_t
fold_pair_odd(uint32_t c)
{
	return (c % 2 == 1) ? c + 1 : c;
}

static uint32_t
fold_latin(uint32_t c)
{
	if (c >= 0xc0 && c <= 0xde && c != 0xd7)
		return c + 0x20;
	if (c == 0x130)
		return 'i';
	if (c == 0x178)
		return 0xff;
	if (c == 0x17f)
		return 's';
	if ((c >= 0x100 && c <= 0x12f) || (c >= 0x132 && c <= 0x137) ||
	    (c >= 0x14a && c <= 0x177))
		return fold_pair_even(c);
	if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
		return fold_pair_odd(c);
	if ((c >= 0x1cd && c <= 0x1dc))
		return fold_pair_odd(c);
	if ((c >= 0x1de && c <= 0x1ef) || (c >= 0x1f8 && c <= 0x21f) ||
	    (c >= 0x222 && c <= 0x233) || (c >= 0x1e00 && c <= 0x1e95) ||
	    (c >= 0x1ea0 && c <= 0x1eff))
		return fold_pair_even(c);
	return c;
}

static uint32_t
fold_greek(uint32_t c)
{
	if (c >= 0x391 && c <= 0x3ab && c != 0x3a2)
		return c + 0x20;
	if (c == 0x386)
		return 0x3ac;
	if (c >= 0x388 && c <= 0x38a)
		return c + 37;
	if (c == 0x38c)
		return 0x3cc;
	if (c == 0x38e || c == 0x38f)
		return c + 63;
	if (c == 0x3c2) /* final sigma */
		return 0x3c3;
	if (c >= 0x3d8 && c <= 0x3ef)
		return fold_pair_even(c);
	return c;
}

static uint32_t
fold_cyrillic(uint32_t c)
{
	if (c >= 0x410 && c <= 0x42f)
		return c + 0x20;
	if (c >= 0x400 && c <= 0x40f)
		return c + 0x50;
	if (c == 0x4c0)
		return 0x4cf;
	if (c >= 0x4c1 && c <= 0x4ce)
		return fold_pair_odd(c);
	if ((c >= 0x460 && c <= 0x481) || (c >= 0x48a && c <= 0x4bf) ||
	    (c >= 0x4d0 && c <= 0x52f))
		return fold_pair_even(c);
	return c;
}

static uint32_t
fold_cp(uint32_t c)
{
	if (c < 0x80)
		return (c >= 'A' && c <= 'Z') ? c + 0x20 : c;
	if (c < 0x370 || (c >= 0x1e00 && c <= 0x1eff))
		return fold_latin(c);
	if (c < 0x400)
		return fold_greek(c);
	if (c < 0x530)
		return fold_cyrillic(c);
	return c;
}

/* Length of the valid UTF-8 sequence at s (1-4), 0 when invalid, or -1
 * when it may be valid but is cut at the end. */
static int
utf8_decode(const unsigned char *s, size_t len, uint32_t *cp_r)
{
	int n;
	uint32_t c, min;

	if (s[0] < 0x80) {
		*cp_r = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2, c = s[0] & 0x1f, min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3, c = s[0] & 0x0f, min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4, c = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (int i = 1; i < n; i++) {
		if ((size_t)i >= len)
			return -1;
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp_r = c;
	return n;
}

static void
utf8_put(struct mp_buf *out, uint32_t c)
{
	char b[4];
	size_t n;

	if (c < 0x80) {
		b[0] = (char)c, n = 1;
	} else if (c < 0x800) {
		b[0] = (char)(0xc0 | (c >> 6));
		b[1] = (char)(0x80 | (c & 0x3f)), n = 2;
	} else if (c < 0x10000) {
		b[0] = (char)(0xe0 | (c >> 12));
		b[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		b[2] = (char)(0x80 | (c & 0x3f)), n = 3;
	} else {
		b[0] = (char)(0xf0 | (c >> 18));
		b[1] = (char)(0x80 | ((c >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((c >> 6) & 0x3f));
		b[3] = (char)(0x80 | (c & 0x3f)), n = 4;
	}
	mp_buf_append(out, b, n);
}

size_t
imap_search_fold(const char *s, size_t len, bool final, struct mp_buf *out)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run = 0;
	uint32_t c;
	int n;

	while (i < len) {
		if (u[i] < 0x80) {
			/* ASCII runs are copied in bulk, folded in place. */
			size_t start = out->len;

			for (run = i; run < len && u[run] < 0x80; run++)
				;
			mp_buf_append(out, s + i, run - i);
			for (size_t j = start; j < out->len; j++) {
				if (out->data[j] >= 'A' && out->data[j] <= 'Z')
					out->data[j] += 0x20;
			}
			i = run;
			continue;
		}
		n = utf8_decode(u + i, len - i, &c);
		if (n < 0 && !final)
			break;
		if (n <= 0) {
			mp_buf_append(out, s + i, 1);
			i++;
			continue;
		}
		utf8_put(out, fold_cp(c));
		i += (size_t)n;
	}
	return i;
}

/* --- dates -------------------------------------------------------------- */

int32_t
imap_search_days(int y, int m, int d)
{
	/* Howard Hinnant's days_from_civil. */
	int64_t yy = y - (m <= 2);
	int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
	int64_t yoe = yy - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return (int32_t)(era * 146097 + doe - 719468);
}

int
imap_search_month(const char *s, size_t len)
{
	static const char names[] = "janfebmaraprmayjunjulaugsepoctnovdec";

	if (len != 3)
		return 0;
	for (int i = 0; i < 12; i++) {
		if (strncasecmp(s, names + i * 3, 3) == 0)
			return i + 1;
	}
	return 0;
}

struct dcur {
	const char *s;
	size_t len, pos;
};

/* Skips white space and (nested) comments: CFWS. */
static void
skip_cfws(struct dcur *c)
{
	unsigned depth = 0;

	while (c->pos < c->len) {
		char ch = c->s[c->pos];

		if (ch == '(') {
			depth++;
		} else if (ch == ')' && depth > 0) {
			depth--;
		} else if (ch == '\\' && depth > 0 && c->pos + 1 < c->len) {
			c->pos++;
		} else if (depth == 0 && ch != ' ' && ch != '\t' &&
			   ch != '\r' && ch != '\n') {
			return;
		}
		c->pos++;
	}
}

static bool
take_number(struct dcur *c, size_t min, size_t max, int *r)
{
	size_t start;
	int n = 0;

	skip_cfws(c);
	start = c->pos;
	while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9' &&
	       c->pos - start < max)
		n = n * 10 + (c->s[c->pos++] - '0');
	if (c->pos - start < min)
		return false;
	*r = n;
	return true;
}

static size_t
take_word(struct dcur *c, const char **w_r)
{
	size_t start;

	skip_cfws(c);
	start = c->pos;
	while (c->pos < c->len &&
	       ((c->s[c->pos] >= 'a' && c->s[c->pos] <= 'z') ||
		(c->s[c->pos] >= 'A' && c->s[c->pos] <= 'Z')))
		c->pos++;
	*w_r = c->s + start;
	return c->pos - start;
}

static bool
take_char(struct dcur *c, char ch)
{
	skip_cfws(c);
	if (c->pos < c->len && c->s[c->pos] == ch) {
		c->pos++;
		return true;
	}
	return false;
}

/* obs-zone names (RFC 5322 4.3); military letters and unknown names
 * mean -0000 there, "no information": taken as UTC. */
static int
zone_name(const char *w, size_t n)
{
	static const struct {
		const char *name;
		int minutes;
	} zones[] = {
		{"UT", 0},        {"UTC", 0},       {"GMT", 0},
		{"EST", -5 * 60}, {"EDT", -4 * 60}, {"CST", -6 * 60},
		{"CDT", -5 * 60}, {"MST", -7 * 60}, {"MDT", -6 * 60},
		{"PST", -8 * 60}, {"PDT", -7 * 60},
	};

	for (size_t i = 0; i < MP_NELEMS(zones); i++) {
		if (strlen(zones[i].name) == n &&
		    strncasecmp(w, zones[i].name, n) == 0)
			return zones[i].minutes;
	}
	return 0;
}

static int
take_zone(struct dcur *c)
{
	const char *w;
	size_t n;
	int sign, hhmm;

	skip_cfws(c);
	if (c->pos < c->len && (c->s[c->pos] == '+' || c->s[c->pos] == '-')) {
		sign = c->s[c->pos++] == '-' ? -1 : 1;
		if (!take_number(c, 4, 4, &hhmm) || hhmm % 100 >= 60)
			return 0;
		return sign * ((hhmm / 100) * 60 + hhmm % 100);
	}
	n = take_word(c, &w);
	return n > 0 ? zone_name(w, n) : 0;
}

static int
full_year(int y, size_t digits)
{
	if (digits == 2) /* RFC 5322 4.3: 00-49 are 20xx */
		return y < 50 ? 2000 + y : 1900 + y;
	if (digits == 3)
		return 1900 + y;
	return y;
}

bool
imap_search_parse_rfc5322_date(const char *s, size_t len, int32_t *day_r,
			       int64_t *time_r)
{
	struct dcur c = {s, len, 0};
	int day, month, year, hh, mm, ss = 0;
	const char *w;
	size_t n, ystart;

	n = take_word(&c, &w);
	if (n > 0) { /* day-of-week, then ',' (optional in obs-day-of-week) */
		(void)take_char(&c, ',');
	}
	if (!take_number(&c, 1, 2, &day) || day < 1 || day > 31)
		return false;
	n = take_word(&c, &w);
	if ((month = imap_search_month(w, n)) == 0)
		return false;
	skip_cfws(&c);
	ystart = c.pos;
	if (!take_number(&c, 2, 4, &year))
		return false;
	year = full_year(year, c.pos - ystart);
	if (!take_number(&c, 1, 2, &hh) || !take_char(&c, ':') ||
	    !take_number(&c, 1, 2, &mm) || hh > 23 || mm > 59)
		return false;
	if (take_char(&c, ':') && (!take_number(&c, 1, 2, &ss) || ss > 60))
		return false;
	*day_r = imap_search_days(year, month, day);
	*time_r = (int64_t)*day_r * 86400 + hh * 3600 + mm * 60 + ss -
		  (int64_t)take_zone(&c) * 60;
	return true;
}
