/* test-imap-mutf7.c - modified UTF-7 mailbox names both ways. */
#include "config.h"

#include <glib.h>
#include <string.h>

#include "imap-mutf7.h"

/* A literal and its length, NUL bytes included. */
#define S(lit) lit, sizeof(lit) - 1

struct pair {
	const char *mutf7;
	const char *utf8;
};

/* Canonical pairs: each side converts to the other. */
static const struct pair pairs[] = {
	{"", ""},
	{"INBOX", "INBOX"},
	{"~peter/mail/&U,BTFw-/&ZeVnLIqe-",
	 "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/"
	 "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"},
	{"&-", "&"},
	{"a&-b", "a&b"},
	{"&-&-", "&&"},
	{"&AOk-", "\xc3\xa9"},
	{"&AOkA6Q-", "\xc3\xa9\xc3\xa9"},
	{"&AOk-a", "\xc3\xa9"
		   "a"},
	{"a&AOk-&-b", "a\xc3\xa9&b"},
	{"&-&AOk-", "&\xc3\xa9"},
	{"&2D3eAA-", "\xf0\x9f\x98\x80"},
	{"&2D3eANg93gA-", "\xf0\x9f\x98\x80\xf0\x9f\x98\x80"},
	{"&AAE-", "\x01"},
	{"&AH8-", "\x7f"},
	{"Sent &- Drafts", "Sent & Drafts"},
	{"&-&--", "&&-"},
};

struct bad {
	const char *in;
	size_t len;
	const char *error;
};

static const struct bad bad_mutf7[] = {
	{S("&"), "Unterminated shifted sequence"},
	{S("a&AOk"), "Unterminated shifted sequence"},
	{S("&AOk_-"), "Unterminated shifted sequence"},
	{S("&/wA-"), "Unterminated shifted sequence"},
	{S("&AGE-"), "Printable ASCII in a shifted sequence"},
	{S("&ACY-"), "Printable ASCII in a shifted sequence"},
	{S("&AOk-&AOk-"), "Adjacent shifted sequences"},
	{S("&AOl-"), "Non-canonical shifted sequence"},
	{S("&AOkA-"), "Non-canonical shifted sequence"},
	{S("&AA-"), "Non-canonical shifted sequence"},
	{S("&2D0-"), "Unpaired UTF-16 surrogate"},
	{S("&3gA-"), "Unpaired UTF-16 surrogate"},
	{S("&2D3YPQ-"), "Unpaired UTF-16 surrogate"},
	{S("&AAA-"), "U+0000 in mailbox name"},
	{S("a\x01"), "Invalid character in mailbox name"},
	{S("a\x7f"), "Invalid character in mailbox name"},
	{S("\xc3\xa9"), "Invalid character in mailbox name"},
	{S("a\0b"), "Invalid character in mailbox name"},
};

static const struct bad bad_utf8[] = {
	{S("\xff"), "Invalid UTF-8 in mailbox name"},
	{S("a\xc0\x80"), "Invalid UTF-8 in mailbox name"},
	{S("\xe0\x80\xaf"), "Invalid UTF-8 in mailbox name"},
	{S("\xed\xa0\x80"), "Invalid UTF-8 in mailbox name"},
	{S("\xe6\x97"), "Invalid UTF-8 in mailbox name"},
	{S("\xf4\x90\x80\x80"), "Invalid UTF-8 in mailbox name"},
	{S("\x80"), "Invalid UTF-8 in mailbox name"},
	{S("a\0b"), "U+0000 in mailbox name"},
};

static void
test_pairs(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(pairs); i++) {
		struct mp_buf out = {0};
		const char *error = NULL;

		g_assert_true(imap_mutf7_to_utf8(
			pairs[i].mutf7, strlen(pairs[i].mutf7), &out, &error));
		g_assert_cmpstr(out.data, ==, pairs[i].utf8);
		mp_buf_reset(&out);
		g_assert_true(imap_utf8_to_mutf7(
			pairs[i].utf8, strlen(pairs[i].utf8), &out, &error));
		g_assert_cmpstr(out.data, ==, pairs[i].mutf7);
		g_assert_null(error);
		mp_buf_free(&out);
	}
}

/* A refusal names its reason and leaves what was in out alone. */
static void
check_bad(const struct bad *b, size_t n,
	  bool (*conv)(const char *, size_t, struct mp_buf *, const char **))
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct mp_buf out = {0};
		const char *error = NULL;

		mp_buf_puts(&out, "keep");
		if (conv(b[i].in, b[i].len, &out, &error))
			g_test_message("accepted entry %zu", i);
		g_assert_cmpstr(error, ==, b[i].error);
		g_assert_cmpstr(out.data, ==, "keep");
		g_assert_cmpuint(out.len, ==, 4);
		mp_buf_free(&out);
	}
}

static void
test_reject_mutf7(void)
{
	check_bad(bad_mutf7, G_N_ELEMENTS(bad_mutf7), imap_mutf7_to_utf8);
}

static void
test_reject_utf8(void)
{
	check_bad(bad_utf8, G_N_ELEMENTS(bad_utf8), imap_utf8_to_mutf7);
}

static void
test_appends(void)
{
	struct mp_buf out = {0};
	const char *error;

	mp_buf_puts(&out, "x/");
	g_assert_true(imap_utf8_to_mutf7(S("\xc3\xa9"), &out, &error));
	g_assert_cmpstr(out.data, ==, "x/&AOk-");
	g_assert_true(imap_mutf7_to_utf8(S("&AOk-"), &out, &error));
	g_assert_cmpstr(out.data, ==, "x/&AOk-\xc3\xa9");
	mp_buf_free(&out);
}

static void
test_needs(void)
{
	g_assert_false(imap_utf8_needs_mutf7(S("")));
	g_assert_false(imap_utf8_needs_mutf7(S("INBOX")));
	g_assert_false(imap_utf8_needs_mutf7(S("~peter/mail [x]")));
	g_assert_true(imap_utf8_needs_mutf7(S("a&b")));
	g_assert_true(imap_utf8_needs_mutf7(S("\xc3\xa9")));
	g_assert_true(imap_utf8_needs_mutf7(S("a\tb")));
	g_assert_true(imap_utf8_needs_mutf7(S("a\x7f")));
}

static void
put_cp(GString *s, gunichar cp)
{
	char u[8];

	g_string_append_len(s, u, g_unichar_to_utf8(cp, u));
}

/* Converts UTF-8 there and back; the mUTF-7 is printable ASCII and, read
 * back, written the same way (one encoding per name). */
static void
round_trip(const GString *utf8)
{
	struct mp_buf m = {0}, u = {0}, m2 = {0};
	const char *error = NULL;
	size_t i;

	g_assert_true(imap_utf8_to_mutf7(utf8->str, utf8->len, &m, &error));
	for (i = 0; i < m.len; i++)
		g_assert_true(m.data[i] >= 0x20 && m.data[i] <= 0x7e);
	g_assert_true(imap_mutf7_to_utf8(m.data, m.len, &u, &error));
	g_assert_cmpmem(u.data, u.len, utf8->str, utf8->len);
	g_assert_true(imap_utf8_to_mutf7(u.data, u.len, &m2, &error));
	g_assert_cmpmem(m2.data, m2.len, m.data, m.len);
	g_assert_cmpint(imap_utf8_needs_mutf7(utf8->str, utf8->len), ==,
			m.len != utf8->len ||
				memcmp(m.data, utf8->str, m.len) != 0);
	mp_buf_free(&m);
	mp_buf_free(&u);
	mp_buf_free(&m2);
}

/* Every code point alone, and between ASCII. */
static void
test_every_code_point(void)
{
	GString *s = g_string_new(NULL);
	gunichar cp;

	for (cp = 1; cp <= 0x10ffff; cp += cp < 0x10000 ? 1 : 97) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		g_string_truncate(s, 0);
		put_cp(s, cp);
		round_trip(s);
		g_string_assign(s, "a");
		put_cp(s, cp);
		g_string_append_c(s, 'b');
		round_trip(s);
	}
	g_string_free(s, TRUE);
}

static gunichar
random_cp(GRand *r)
{
	switch (g_rand_int_range(r, 0, 4)) {
	case 0:
		return (gunichar)g_rand_int_range(r, 0x20, 0x7f);
	case 1:
		return g_rand_boolean(r) ? '&' : '-';
	case 2:
		return (gunichar)g_rand_int_range(r, 1, 0xd800);
	default:
		return (gunichar)g_rand_int_range(r, 0xe000, 0x110000);
	}
}

static void
test_random_round_trips(void)
{
	GRand *r = g_rand_new_with_seed(42);
	GString *s = g_string_new(NULL);
	int i, j;

	for (i = 0; i < 20000; i++) {
		int n = g_rand_int_range(r, 0, 12);

		g_string_truncate(s, 0);
		for (j = 0; j < n; j++)
			put_cp(s, random_cp(r));
		round_trip(s);
	}
	g_string_free(s, TRUE);
	g_rand_free(r);
}

/* Random pieces of shifts: whatever is accepted must be canonical. */
static void
test_random_decode(void)
{
	static const char *const pieces[] = {
		"&",      "-",   "&-",  "A",      "AOk",  "A6Q",
		"2D3eAA", "2D0", "3gA", "U,BTFw", "ZeVn", "LIqe",
		"a",      "/",   "+",   ",",      "\x01"};
	GRand *r = g_rand_new_with_seed(7);
	GString *in = g_string_new(NULL);
	int i, shifted = 0;

	for (i = 0; i < 200000; i++) {
		struct mp_buf u = {0}, m = {0};
		const char *error;
		int n = g_rand_int_range(r, 0, 8), k;

		g_string_truncate(in, 0);
		for (k = 0; k < n; k++)
			g_string_append(in,
					pieces[g_rand_int_range(
						r, 0, G_N_ELEMENTS(pieces))]);
		if (imap_mutf7_to_utf8(in->str, in->len, &u, &error)) {
			g_assert_true(
				imap_utf8_to_mutf7(u.data, u.len, &m, &error));
			g_assert_cmpmem(m.data, m.len, in->str, in->len);
			shifted += imap_utf8_needs_mutf7(u.data, u.len);
		}
		mp_buf_free(&u);
		mp_buf_free(&m);
	}
	g_string_free(in, TRUE);
	g_rand_free(r);
	/* Not only ASCII was accepted: the check had shifts to look at. */
	g_assert_cmpint(shifted, >, 1000);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/imap/mutf7/pairs", test_pairs);
	g_test_add_func("/imap/mutf7/reject-mutf7", test_reject_mutf7);
	g_test_add_func("/imap/mutf7/reject-utf8", test_reject_utf8);
	g_test_add_func("/imap/mutf7/appends", test_appends);
	g_test_add_func("/imap/mutf7/needs-encoding", test_needs);
	g_test_add_func("/imap/mutf7/every-code-point", test_every_code_point);
	g_test_add_func("/imap/mutf7/random-round-trips",
			test_random_round_trips);
	g_test_add_func("/imap/mutf7/random-decode", test_random_decode);
	return g_test_run();
}
