/* test-smtp-data.c - the DATA decoder: end of data, smuggling, dots, bare
 * CR/LF, limits; every case whole, byte by byte and at any split point. */
#include "config.h"

#include <glib.h>
#include <inttypes.h>
#include <string.h>

#include "smtp-data.h"

enum {
	F_LF = 1 << 0,  /* bare_lf_seen */
	F_CR = 1 << 1,  /* bare_cr_seen */
	F_BIG = 1 << 2, /* too_big */
	F_NUL = 1 << 3, /* nul_seen */
};

#define N SMTP_DATA_NORMALIZE
#define X SMTP_DATA_STRICT

/* A literal and its length, NUL bytes included. */
#define S(lit) lit, sizeof(lit) - 1

struct data_case {
	const char *name;
	enum smtp_data_mode mode;
	uint64_t max_size;
	const char *input;
	size_t input_len;
	const char *expect;
	size_t expect_len;
	size_t consumed;
	bool done;
	unsigned flags;
	uint64_t lines;
	uint64_t longest;
};

/* Smuggling payload (43 bytes): what a client hides behind a fake end. */
#define SMUGGLE "MAIL FROM:<ceo@bank>\r\nRCPT TO:<v@x>\r\nDATA\r\n"

static const struct data_case cases[] = {
	{"simple", N, 0, S("Subject: hi\r\n\r\nbody\r\n.\r\n"),
	 S("Subject: hi\r\n\r\nbody\r\n"), 24, true, 0, 3, 11},
	{"simple-strict", X, 0, S("Subject: hi\r\n\r\nbody\r\n.\r\n"),
	 S("Subject: hi\r\n\r\nbody\r\n"), 24, true, 0, 3, 11},
	{"empty", N, 0, S(".\r\n"), S(""), 3, true, 0, 0, 0},
	{"empty-strict", X, 0, S(".\r\n"), S(""), 3, true, 0, 0, 0},
	{"empty-then-quit", N, 0, S(".\r\nQUIT\r\n"), S(""), 3, true, 0, 0, 0},
	{"crlf-at-start", N, 0, S("\r\n.\r\n"), S("\r\n"), 5, true, 0, 1, 0},
	{"crlf-crlf-at-start", N, 0, S("\r\n\r\n.\r\n"), S("\r\n\r\n"), 7, true,
	 0, 2, 0},
	{"leading-dots", N, 0, S("..leading\r\n.\r\n"), S(".leading\r\n"), 14,
	 true, 0, 1, 8},
	{"lone-dotdot", N, 0, S("a\r\n..\r\n.\r\n"), S("a\r\n.\r\n"), 10, true,
	 0, 2, 1},
	{"triple-dot", N, 0, S("...\r\n.\r\n"), S("..\r\n"), 8, true, 0, 1, 2},
	{"dot-then-text", N, 0, S(".x\r\n. y\r\n.\r\n"), S("x\r\n y\r\n"), 12,
	 true, 0, 2, 2},
	{"dot-not-at-start", N, 0, S("a.b\r\nx.\r\n.\r\n"), S("a.b\r\nx.\r\n"),
	 12, true, 0, 2, 3},
	{"dotdot-crlf-is-not-end", N, 0, S("a\r\n..\r\nb"), S("a\r\n.\r\nb"), 8,
	 false, 0, 2, 1},
	/* "text." then CRLF is a line holding "text.", not an end: a
	 * message not ending in CRLF cannot be sent with DATA at all. */
	{"text-dot-crlf", N, 0, S("text.\r\n"), S("text.\r\n"), 7, false, 0, 1,
	 5},
	{"text-dot-crlf-then-end", N, 0, S("text.\r\n.\r\n"), S("text.\r\n"),
	 10, true, 0, 1, 5},
	{"incomplete-dot-cr", N, 0, S("a\r\n.\r"), S("a\r\n"), 5, false, 0, 1,
	 1},
	{"incomplete-cr", N, 0, S("a\r"), S("a"), 2, false, 0, 0, 1},
	{"pipelined-quit", N, 0, S("a\r\n.\r\nQUIT\r\n"), S("a\r\n"), 6, true,
	 0, 1, 1},
	{"pipelined-next-transaction", N, 0,
	 S("a\r\n.\r\nMAIL FROM:<x>\r\nRCPT TO:<y>\r\nDATA\r\n"), S("a\r\n"), 6,
	 true, 0, 1, 1},
	{"pipelined-second-end", N, 0, S("a\r\n.\r\n.\r\n"), S("a\r\n"), 6,
	 true, 0, 1, 1},

	/* Smuggling: each fake end is content in both modes; the data ends
	 * only at the real CRLF.CRLF behind it. */
	{"smuggle-lf-dot-lf", N, 0, S("a\n.\n" SMUGGLE "b\r\n.\r\n"),
	 S("a\r\n\r\n" SMUGGLE "b\r\n"), 53, true, F_LF, 6, 20},
	{"smuggle-lf-dot-lf-strict", X, 0, S("a\n.\n" SMUGGLE "b\r\n.\r\n"),
	 S("a"), 53, true, F_LF, 4, 24},
	{"smuggle-lf-dot-lf-no-end", N, 0, S("a\n.\n" SMUGGLE),
	 S("a\r\n\r\n" SMUGGLE), 47, false, F_LF, 5, 20},
	{"smuggle-lf-dot-lf-no-end-strict", X, 0, S("a\n.\n" SMUGGLE), S("a"),
	 47, false, F_LF, 3, 24},
	{"smuggle-crlf-dot-lf", N, 0, S("a\r\n.\n" SMUGGLE "b\r\n.\r\n"),
	 S("a\r\n\r\n" SMUGGLE "b\r\n"), 54, true, F_LF, 6, 20},
	{"smuggle-crlf-dot-lf-strict", X, 0, S("a\r\n.\n" SMUGGLE "b\r\n.\r\n"),
	 S("a\r\n"), 54, true, F_LF, 5, 21},
	{"smuggle-lf-dot-crlf", N, 0, S("a\n.\r\n" SMUGGLE "b\r\n.\r\n"),
	 S("a\r\n\r\n" SMUGGLE "b\r\n"), 54, true, F_LF, 6, 20},
	{"smuggle-lf-dot-crlf-strict", X, 0, S("a\n.\r\n" SMUGGLE "b\r\n.\r\n"),
	 S("a"), 54, true, F_LF, 5, 20},
	{"smuggle-cr-dot-crlf", N, 0, S("a\r.\r\n" SMUGGLE "b\r\n.\r\n"),
	 S("a\r.\r\n" SMUGGLE "b\r\n"), 54, true, F_CR, 5, 20},
	{"smuggle-cr-dot-crlf-strict", X, 0, S("a\r.\r\n" SMUGGLE "b\r\n.\r\n"),
	 S("a"), 54, true, F_CR, 5, 20},
	{"smuggle-cr-dot-cr", N, 0, S("a\r.\r" SMUGGLE "b\r\n.\r\n"),
	 S("a\r.\r" SMUGGLE "b\r\n"), 53, true, F_CR, 4, 24},
	{"smuggle-crlf-dot-cr", N, 0, S("a\r\n.\r" SMUGGLE "b\r\n.\r\n"),
	 S("a\r\n\r" SMUGGLE "b\r\n"), 54, true, F_CR, 5, 21},
	{"smuggle-crlf-dot-cr-strict", X, 0, S("a\r\n.\r" SMUGGLE "b\r\n.\r\n"),
	 S("a\r\n"), 54, true, F_CR, 5, 21},
	{"smuggle-lf-dot-lf-at-start", N, 0, S(".\n" SMUGGLE "b\r\n.\r\n"),
	 S("\r\n" SMUGGLE "b\r\n"), 51, true, F_LF, 5, 20},
	{"smuggle-dot-cr-at-start", N, 0, S(".\r" SMUGGLE "b\r\n.\r\n"),
	 S("\r" SMUGGLE "b\r\n"), 51, true, F_CR, 4, 21},
	/* A real CRLF.CRLF right behind bare newlines does end the data:
	 * any CRLF-conforming sender sees the end there too. */
	{"bare-lf-then-real-end", N, 0, S("a\n\r\n.\r\nQUIT\r\n"),
	 S("a\r\n\r\n"), 7, true, F_LF, 2, 1},
	{"bare-lf-then-real-end-strict", X, 0, S("a\n\r\n.\r\nQUIT\r\n"),
	 S("a"), 7, true, F_LF, 1, 2},
	{"bare-cr-then-real-end", N, 0, S("a\r\r\n.\r\n"), S("a\r\r\n"), 7,
	 true, F_CR, 1, 2},
	{"dot-cr-then-real-end", N, 0, S(".\r\r\n.\r\n"), S("\r\r\n"), 7, true,
	 F_CR, 1, 1},

	/* Dots after bare newlines. Normalize: a bare LF starts a line, so
	 * its leading dot is unstuffed; a bare CR does not. Strict: neither
	 * starts a line, and the output stopped anyway. */
	{"dotdot-after-bare-lf", N, 0, S("a\n..b\r\n.\r\n"), S("a\r\n.b\r\n"),
	 10, true, F_LF, 2, 2},
	{"dotdot-after-bare-lf-strict", X, 0, S("a\n..b\r\n.\r\n"), S("a"), 10,
	 true, F_LF, 1, 5},
	{"dot-after-bare-cr", N, 0, S("a\r..b\r\n.\r\n"), S("a\r..b\r\n"), 10,
	 true, F_CR, 1, 5},

	{"bare-lf", N, 0, S("a\nb\r\n.\r\n"), S("a\r\nb\r\n"), 8, true, F_LF, 2,
	 1},
	{"bare-lf-strict", X, 0, S("a\nb\r\n.\r\n"), S("a"), 8, true, F_LF, 1,
	 3},
	{"bare-cr", N, 0, S("a\rb\r\n.\r\n"), S("a\rb\r\n"), 8, true, F_CR, 1,
	 3},
	{"bare-cr-strict", X, 0, S("a\rb\r\n.\r\n"), S("a"), 8, true, F_CR, 1,
	 3},
	{"bare-lf-first-byte", N, 0, S("\nx\r\n.\r\n"), S("\r\nx\r\n"), 7, true,
	 F_LF, 2, 1},
	{"both-bare-strict", X, 0, S("ok\r\na\rb\nc\r\n.\r\n"), S("ok\r\na"),
	 14, true, F_LF | F_CR, 2, 5},

	{"size-exact", N, 5, S("abc\r\n.\r\n"), S("abc\r\n"), 8, true, 0, 1, 3},
	{"size-over-by-one", N, 4, S("abc\r\n.\r\n"), S("abc\r"), 8, true,
	 F_BIG, 1, 3},
	{"size-over-then-quit", N, 2, S("abc\r\n.\r\nQUIT\r\n"), S("ab"), 8,
	 true, F_BIG, 1, 3},
	{"size-empty-message", N, 1, S(".\r\n"), S(""), 3, true, 0, 0, 0},
	{"size-unstuffed-fits", N, 4, S("..a\r\n.\r\n"), S(".a\r\n"), 8, true,
	 0, 1, 2},
	{"size-bare-lf-counts-two", N, 3, S("ab\n.\r\n"), S("ab\r"), 6, false,
	 F_LF | F_BIG, 2, 2},
	{"size-over-strict", X, 3, S("abcd\r\n.\r\n"), S("abc"), 9, true, F_BIG,
	 1, 4},

	{"nul", N, 0, S("a\0b\r\n\0\r\n.\r\n"), S("a\0b\r\n\0\r\n"), 11, true,
	 F_NUL, 2, 3},
	{"8bit", N, 0, S("\xc3\xa9t\xe9\xff\x80\r\n.\r\n"),
	 S("\xc3\xa9t\xe9\xff\x80\r\n"), 11, true, 0, 1, 6},
};

struct result {
	GString *out;
	size_t consumed;
	bool done;
	struct smtp_data d;
};

/* Feeds the input in chunks ending at splits[] (then at the end), the
 * way the session does: drain the output, stop at done. */
static void
feed_all(const struct data_case *c, const size_t *splits, size_t nsplits,
	 struct result *r)
{
	struct mp_buf out = {0};
	size_t off = 0, i = 0;

	smtp_data_init(&r->d, c->mode, c->max_size);
	r->out = g_string_new(NULL);
	r->done = false;
	while (off < c->input_len || i == 0) {
		size_t end = i < nsplits ? splits[i] : c->input_len;
		size_t used;

		i++;
		used = smtp_data_feed(&r->d, c->input + off, end - off, &out,
				      &r->done);
		g_assert_cmpuint(used, <=, end - off);
		g_string_append_len(r->out, out.data, (gssize)out.len);
		mp_buf_reset(&out);
		off += used;
		if (r->done)
			break;
		g_assert_cmpuint(off, ==, end);
	}
	r->consumed = off;
	mp_buf_free(&out);
}

static unsigned
flags_of(const struct smtp_data *d)
{
	return (d->bare_lf_seen ? F_LF : 0) | (d->bare_cr_seen ? F_CR : 0) |
	       (d->too_big ? F_BIG : 0) | (d->nul_seen ? F_NUL : 0);
}

/* Printable text for messages; the caller frees it. */
static char *
escape(const char *p, size_t len)
{
	GString *s = g_string_new(NULL);

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch == '\r')
			g_string_append(s, "\\r");
		else if (ch == '\n')
			g_string_append(s, "\\n");
		else if (ch < 0x20 || ch >= 0x7f)
			g_string_append_printf(s, "\\x%02x", ch);
		else
			g_string_append_c(s, (char)ch);
	}
	return g_string_free(s, FALSE);
}

static void
check_output(const char *name, const char *how, const char *got, size_t got_len,
	     const char *want, size_t want_len)
{
	char *g, *w;

	if (got_len == want_len &&
	    (want_len == 0 || memcmp(got, want, want_len) == 0))
		return;
	g = escape(got, got_len);
	w = escape(want, want_len);
	g_printerr("%s (%s): got \"%s\", want \"%s\"\n", name, how, g, w);
	g_free(g);
	g_free(w);
	g_test_fail();
}

/* Reports every mismatch, not only the first, and fails the test. */
static void
check(const struct data_case *c, struct result *r, const char *how)
{
	check_output(c->name, how, r->out->str, r->out->len, c->expect,
		     c->expect_len);
	if (r->consumed != c->consumed || r->done != c->done ||
	    flags_of(&r->d) != c->flags || r->d.lines != c->lines ||
	    r->d.longest_line != c->longest) {
		g_printerr("%s (%s): consumed %zu done %d flags %#x lines "
			   "%" PRIu64 " longest %" PRIu64 "; want %zu %d %#x "
			   "%" PRIu64 " %" PRIu64 "\n",
			   c->name, how, r->consumed, r->done, flags_of(&r->d),
			   r->d.lines, r->d.longest_line, c->consumed, c->done,
			   c->flags, c->lines, c->longest);
		g_test_fail();
	}
	g_assert_cmpuint(r->d.bytes_in, ==, r->consumed);
	if (smtp_data_result(&r->d) == SMTP_DATA_OK)
		g_assert_cmpuint(r->d.bytes_out, ==, r->out->len);
	g_string_free(r->out, TRUE);
}

static void
test_whole(void)
{
	struct result r;

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		feed_all(&cases[i], NULL, 0, &r);
		check(&cases[i], &r, "whole");
	}
}

static void
test_byte_by_byte(void)
{
	struct result r;

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		const struct data_case *c = &cases[i];
		size_t *splits = g_new(size_t, c->input_len + 1);

		for (size_t k = 0; k < c->input_len; k++)
			splits[k] = k + 1;
		feed_all(c, splits, c->input_len, &r);
		check(c, &r, "byte by byte");
		g_free(splits);
	}
}

/* Two chunks cut at every position: the terminator and every CR/LF pair
 * split across every possible boundary. Three chunks for short inputs. */
static void
test_every_split(void)
{
	struct result r;

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		const struct data_case *c = &cases[i];

		for (size_t a = 0; a <= c->input_len; a++) {
			size_t two[] = {a};
			feed_all(c, two, 1, &r);
			check(c, &r, "two chunks");
			if (c->input_len > 20)
				continue;
			for (size_t b = a; b <= c->input_len; b++) {
				size_t three[] = {a, b};
				feed_all(c, three, 2, &r);
				check(c, &r, "three chunks");
			}
		}
	}
}

static void
test_random_splits(void)
{
	GRand *rnd = g_rand_new_with_seed(42);
	size_t splits[64];
	struct result r;

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		const struct data_case *c = &cases[i];

		for (int round = 0; round < 50; round++) {
			size_t n = 0, off = 0;
			while (off < c->input_len && n < G_N_ELEMENTS(splits)) {
				off += (size_t)g_rand_int_range(rnd, 0, 6);
				splits[n++] = MIN(off, c->input_len);
			}
			feed_all(c, splits, n, &r);
			check(c, &r, "random splits");
		}
	}
	g_rand_free(rnd);
}

/* RFC 5321 §4.5.3.1.6 allows 1000 octets with CRLF; longer lines are
 * kept and reported, and the decoder holds none of them in memory. */
static void
test_long_line(void)
{
	const size_t n = 200000;
	GString *in = g_string_new(NULL);
	struct mp_buf out = {0};
	struct smtp_data d;
	bool done;
	size_t used;

	g_string_append(in, "short\r\n.");
	for (size_t i = 0; i < n; i++)
		g_string_append_c(in, (char)('a' + i % 26));
	g_string_append(in, "\r\n.\r\n");
	smtp_data_init(&d, SMTP_DATA_STRICT, 0);
	used = smtp_data_feed(&d, in->str, in->len, &out, &done);
	g_assert_true(done);
	g_assert_cmpuint(used, ==, in->len);
	g_assert_cmpuint(d.longest_line, ==, n);
	g_assert_cmpuint(d.lines, ==, 2);
	g_assert_cmpuint(out.len, ==, 7 + n + 2);
	g_assert_cmpmem(out.data + 7, n, in->str + 8, n);
	g_assert_cmpint(smtp_data_result(&d), ==, SMTP_DATA_OK);
	mp_buf_free(&out);
	g_string_free(in, TRUE);
}

static void
test_after_done(void)
{
	struct mp_buf out = {0};
	struct smtp_data d;
	bool done = false;

	smtp_data_init(&d, SMTP_DATA_NORMALIZE, 0);
	g_assert_cmpuint(smtp_data_feed(&d, ".\r", 2, &out, &done), ==, 2);
	g_assert_false(done);
	g_assert_false(smtp_data_done(&d));
	g_assert_cmpuint(smtp_data_feed(&d, "\nQUIT\r\n", 7, &out, &done), ==,
			 1);
	g_assert_true(done);
	g_assert_true(smtp_data_done(&d));
	done = false;
	g_assert_cmpuint(smtp_data_feed(&d, "QUIT\r\n", 6, &out, &done), ==, 0);
	g_assert_true(done);
	g_assert_cmpuint(smtp_data_feed(&d, "", 0, &out, &done), ==, 0);
	g_assert_cmpuint(out.len, ==, 0);
	mp_buf_free(&out);
}

static void
test_result(void)
{
	struct mp_buf out = {0};
	struct smtp_data d;
	bool done;

	smtp_data_init(&d, SMTP_DATA_NORMALIZE, 3);
	smtp_data_feed(&d, S("a\nbcd\r\n.\r\n"), &out, &done);
	g_assert_true(done);
	g_assert_cmpint(smtp_data_result(&d), ==, SMTP_DATA_TOO_BIG);

	smtp_data_init(&d, SMTP_DATA_STRICT, 3);
	smtp_data_feed(&d, S("a\nbcd\r\n.\r\n"), &out, &done);
	g_assert_true(d.too_big);
	g_assert_cmpint(smtp_data_result(&d), ==, SMTP_DATA_BARE_NEWLINE);

	smtp_data_init(&d, SMTP_DATA_NORMALIZE, 0);
	smtp_data_feed(&d, S("a\nb\rc\0\r\n.\r\n"), &out, &done);
	g_assert_cmpint(smtp_data_result(&d), ==, SMTP_DATA_OK);
	g_assert_cmpuint(d.nuls, ==, 1);
	g_assert_cmpuint(d.bytes_in, ==, 11);
	g_assert_cmpuint(d.bytes_out, ==, 9);
	mp_buf_free(&out);
}

/* Dot-stuffs msg as a sender does (at the start and after CRLF) and adds
 * the terminator; msg is empty or ends in CRLF. */
static GString *
stuff(const char *msg, size_t len)
{
	GString *s = g_string_new(NULL);

	for (size_t i = 0; i < len; i++) {
		bool bol = i == 0 ||
			   (i >= 2 && msg[i - 2] == '\r' && msg[i - 1] == '\n');
		if (bol && msg[i] == '.')
			g_string_append_c(s, '.');
		g_string_append_c(s, msg[i]);
	}
	g_string_append(s, ".\r\n");
	return s;
}

/* What is stored decodes back to itself once stuffed again, and a BDAT
 * carrying it stores the same bytes: relaying the message is safe and
 * both commands agree. */
static void
test_round_trip(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		const struct data_case *c = &cases[i];
		struct mp_buf out = {0}, raw = {0};
		struct smtp_data d;
		GString *in;
		bool done;

		if (!c->done || (c->flags & F_BIG) ||
		    (c->mode == SMTP_DATA_STRICT && (c->flags & (F_LF | F_CR))))
			continue;
		in = stuff(c->expect, c->expect_len);
		smtp_data_init(&d, c->mode, 0);
		g_assert_cmpuint(
			smtp_data_feed(&d, in->str, in->len, &out, &done), ==,
			in->len);
		g_assert_true(done);
		g_assert_false(d.bare_lf_seen);
		check_output(c->name, "round trip", out.data, out.len,
			     c->expect, c->expect_len);

		smtp_data_init(&d, c->mode, 0);
		smtp_data_feed_raw(&d, c->expect, c->expect_len, &raw);
		smtp_data_finish_raw(&d, &raw);
		check_output(c->name, "as bdat", raw.data, raw.len, c->expect,
			     c->expect_len);
		mp_buf_free(&out);
		mp_buf_free(&raw);
		g_string_free(in, TRUE);
	}
}

struct raw_case {
	const char *name;
	enum smtp_data_mode mode;
	uint64_t max_size;
	const char *input;
	size_t input_len;
	const char *expect;
	size_t expect_len;
	unsigned flags;
};

static const struct raw_case raw_cases[] = {
	{"plain", N, 0, S("a\r\nb\r\n"), S("a\r\nb\r\n"), 0},
	{"no-dots-no-end", N, 0, S("..a\r\n.\r\nb"), S("..a\r\n.\r\nb"), 0},
	{"bare-lf", N, 0, S("a\nb\n"), S("a\r\nb\r\n"), F_LF},
	{"bare-lf-strict", X, 0, S("a\r\nb\nc"), S("a\r\nb"), F_LF},
	{"bare-cr", N, 0, S("a\rb"), S("a\rb"), F_CR},
	{"bare-cr-strict", X, 0, S("a\rb"), S("a"), F_CR},
	{"cr-at-end", N, 0, S("a\r\nb\r"), S("a\r\nb\r"), F_CR},
	{"cr-at-end-strict", X, 0, S("a\r\nb\r"), S("a\r\nb"), F_CR},
	{"crlf-at-end", X, 0, S("a\r\n"), S("a\r\n"), 0},
	{"size-exact", N, 3, S("a\r\n"), S("a\r\n"), 0},
	{"size-over", N, 3, S("a\nb"), S("a\r\n"), F_LF | F_BIG},
	{"nul", N, 0, S("\0\0"), S("\0\0"), F_NUL},
	{"empty", N, 0, S(""), S(""), 0},
};

/* Chunks [0,a), [a,b), [b,len): a BDAT each, the last one finishing. */
static void
run_raw(const struct raw_case *c, size_t a, size_t b)
{
	struct mp_buf out = {0};
	struct smtp_data d;

	smtp_data_init(&d, c->mode, c->max_size);
	smtp_data_feed_raw(&d, c->input, a, &out);
	smtp_data_feed_raw(&d, c->input + a, b - a, &out);
	smtp_data_feed_raw(&d, c->input + b, c->input_len - b, &out);
	smtp_data_finish_raw(&d, &out);
	check_output(c->name, "bdat", out.data, out.len, c->expect,
		     c->expect_len);
	if (flags_of(&d) != c->flags) {
		g_printerr("bdat %s at %zu,%zu: flags %#x, want %#x\n", c->name,
			   a, b, flags_of(&d), c->flags);
		g_test_fail();
	}
	g_assert_true(smtp_data_done(&d));
	g_assert_cmpuint(d.bytes_in, ==, c->input_len);
	mp_buf_free(&out);
}

static void
test_raw(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(raw_cases); i++) {
		const struct raw_case *c = &raw_cases[i];
		for (size_t a = 0; a <= c->input_len; a++)
			for (size_t b = a; b <= c->input_len; b++)
				run_raw(c, a, b);
	}
}

/* A client whose lines end in bare LF and who stuffs dots after them
 * stores, in normalize mode, what the same message sent by BDAT stores. */
static void
test_bare_lf_client(void)
{
	static const char data[] = "A: b\n\n..dot\nx\n\r\n.\r\n";
	static const char msg[] = "A: b\n\n.dot\nx\n";
	struct mp_buf out = {0}, raw = {0};
	struct smtp_data d;
	bool done;

	smtp_data_init(&d, SMTP_DATA_NORMALIZE, 0);
	smtp_data_feed(&d, S(data), &out, &done);
	g_assert_true(done);
	smtp_data_init(&d, SMTP_DATA_NORMALIZE, 0);
	smtp_data_feed_raw(&d, S(msg), &raw);
	smtp_data_finish_raw(&d, &raw);
	/* The "\r\n" before the terminator is a line of its own. */
	mp_buf_append(&raw, "\r\n", 2);
	g_assert_cmpmem(out.data, out.len, raw.data, raw.len);
	g_assert_cmpmem(out.data, out.len, "A: b\r\n\r\n.dot\r\nx\r\n\r\n", 19);
	mp_buf_free(&out);
	mp_buf_free(&raw);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/smtp/data/whole", test_whole);
	g_test_add_func("/smtp/data/byte-by-byte", test_byte_by_byte);
	g_test_add_func("/smtp/data/every-split", test_every_split);
	g_test_add_func("/smtp/data/random-splits", test_random_splits);
	g_test_add_func("/smtp/data/long-line", test_long_line);
	g_test_add_func("/smtp/data/after-done", test_after_done);
	g_test_add_func("/smtp/data/result", test_result);
	g_test_add_func("/smtp/data/round-trip", test_round_trip);
	g_test_add_func("/smtp/data/bdat/splits", test_raw);
	g_test_add_func("/smtp/data/bdat/same-as-data", test_bare_lf_client);
	return g_test_run();
}
