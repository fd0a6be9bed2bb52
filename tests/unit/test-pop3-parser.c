/* test-pop3-parser.c - the POP3 command parser, replies, UIDLs and the
 * byte-stuffing filter of RETR and TOP. */
#include "config.h"

#include <glib.h>
#include <string.h>

#include "pop3-dot.h"
#include "pop3-parser.h"

/* A literal and its length, NUL bytes included. */
#define S(lit) lit, sizeof(lit) - 1

#define X8   "xxxxxxxx"
#define X64  X8 X8 X8 X8 X8 X8 X8 X8
#define X256 X64 X64 X64 X64

struct pcase {
	const char *name;
	const char *line;
	size_t len;
	/* What render() gives: "VERB arg=[...] ir=[...] msg=N lines=N" or
	 * "-ERR text". */
	const char *expect;
};

static const struct pcase cases[] = {
	/* Verbs */
	{"verb/unknown", S("FOO"), "-ERR Unknown command"},
	{"verb/empty", S(""), "-ERR Unknown command"},
	{"verb/spaces-only", S("   "), "-ERR Unknown command"},
	{"verb/leading-space", S(" STAT"), "-ERR Unknown command"},
	{"verb/prefix", S("STA"), "-ERR Unknown command"},
	{"verb/longer", S("STATS"), "-ERR Unknown command"},
	{"verb/tab", S("STAT\t"), "-ERR Unknown command"},
	{"verb/nul", S("ST\0AT"), "-ERR Unknown command"},
	{"verb/8bit", S("STAT\xc3\xa9"), "-ERR Unknown command"},
	{"verb/apop", S("APOP mrose c4c9334bac560ecc979e58001b3e22fb"),
	 "-ERR Unknown command"},
	{"verb/last", S("LAST"), "-ERR Unknown command"},
	{"verb/lower-case", S("stat"), "STAT"},
	{"verb/mixed-case", S("sTaT"), "STAT"},
	{"verb/trailing-spaces", S("STAT   "), "STAT"},
	/* Commands without arguments */
	{"capa/ok", S("CAPA"), "CAPA"},
	{"capa/argument", S("CAPA x"), "-ERR CAPA takes no arguments"},
	{"noop/ok", S("NOOP"), "NOOP"},
	{"noop/argument", S("NOOP 1"), "-ERR NOOP takes no arguments"},
	{"quit/ok", S("QUIT"), "QUIT"},
	{"quit/argument", S("QUIT now"), "-ERR QUIT takes no arguments"},
	{"rset/ok", S("RSET"), "RSET"},
	{"stat/argument", S("STAT 1"), "-ERR STAT takes no arguments"},
	{"stls/ok", S("stls"), "STLS"},
	{"stls/argument", S("STLS x"), "-ERR STLS takes no arguments"},
	/* LIST, UIDL */
	{"list/all", S("LIST"), "LIST"},
	{"list/one", S("LIST 1"), "LIST msg=1"},
	{"list/spaces", S("LIST   7  "), "LIST msg=7"},
	{"list/leading-zero", S("LIST 007"), "LIST msg=7"},
	{"list/zero", S("LIST 0"), "-ERR Invalid message number"},
	{"list/negative", S("LIST -1"), "-ERR Invalid message number"},
	{"list/plus", S("LIST +1"), "-ERR Invalid message number"},
	{"list/hex", S("LIST 0x1"), "-ERR Invalid message number"},
	{"list/max", S("LIST 4294967295"), "LIST msg=4294967295"},
	{"list/overflow", S("LIST 4294967296"), "-ERR Invalid message number"},
	{"list/huge", S("LIST 99999999999999999999999999"),
	 "-ERR Invalid message number"},
	{"list/two", S("LIST 1 2"), "-ERR Too many arguments"},
	{"list/nul", S("LIST 1\0"), "-ERR Invalid message number"},
	{"list/tab", S("LIST\t1"), "-ERR Unknown command"},
	{"uidl/all", S("UIDL"), "UIDL"},
	{"uidl/one", S("uidl 12"), "UIDL msg=12"},
	{"uidl/word", S("UIDL abc"), "-ERR Invalid message number"},
	/* RETR, DELE */
	{"retr/ok", S("RETR 1"), "RETR msg=1"},
	{"retr/missing", S("RETR"), "-ERR Missing message number"},
	{"retr/missing-spaces", S("RETR   "), "-ERR Missing message number"},
	{"retr/zero", S("RETR 0"), "-ERR Invalid message number"},
	{"retr/two", S("RETR 1 2"), "-ERR Too many arguments"},
	{"retr/8bit", S("RETR \xd9\xa1"), "-ERR Invalid message number"},
	{"dele/ok", S("DELE 3"), "DELE msg=3"},
	{"dele/missing", S("DELE"), "-ERR Missing message number"},
	/* TOP */
	{"top/ok", S("TOP 1 10"), "TOP msg=1 lines=10"},
	{"top/zero-lines", S("TOP 2 0"), "TOP msg=2 lines=0"},
	{"top/lower-case", S("top 2 0"), "TOP msg=2 lines=0"},
	{"top/huge-lines", S("TOP 1 99999999999999999999"),
	 "TOP msg=1 lines=4294967295"},
	{"top/missing", S("TOP"), "-ERR Usage: TOP message lines"},
	{"top/no-lines", S("TOP 1"), "-ERR Missing number of lines"},
	{"top/bad-lines", S("TOP 1 x"), "-ERR Invalid number of lines"},
	{"top/negative-lines", S("TOP 1 -1"), "-ERR Invalid number of lines"},
	{"top/bad-msg", S("TOP x 1"), "-ERR Invalid message number"},
	{"top/three", S("TOP 1 2 3"), "-ERR Too many arguments"},
	/* USER */
	{"user/ok", S("USER demo@example.test"),
	 "USER arg=[demo@example.test]"},
	{"user/utf8", S("USER j\xc3\xb6rg@example.test"),
	 "USER arg=[j\xc3\xb6rg@example.test]"},
	{"user/trailing-spaces", S("USER bob  "), "USER arg=[bob]"},
	{"user/missing", S("USER"), "-ERR Missing user name"},
	{"user/spaces-only", S("USER   "), "-ERR Missing user name"},
	{"user/two-words", S("USER a b"), "-ERR User names have no spaces"},
	{"user/control",
	 S("USER a\x01"
	   "b"),
	 "-ERR Invalid characters in user name"},
	{"user/nul", S("USER a\0b"), "-ERR Invalid characters in user name"},
	{"user/del", S("USER a\x7f"), "-ERR Invalid characters in user name"},
	{"user/longest",
	 S("USER " X64 X64 X64 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
	 "USER arg=[" X64 X64 X64 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	 "xxxxxxxxxxxxxxxxxxxxx]"},
	{"user/too-long", S("USER " X256), "-ERR User name too long"},
	/* PASS: the rest of the line, spaces and all */
	{"pass/ok", S("PASS secret"), "PASS arg=[secret]"},
	{"pass/spaces", S("PASS  two words  "), "PASS arg=[ two words  ]"},
	{"pass/utf8", S("PASS p\xc3\xa4ss"), "PASS arg=[p\xc3\xa4ss]"},
	{"pass/tab", S("PASS a\tb"), "PASS arg=[a\tb]"},
	{"pass/lower-case", S("pass x"), "PASS arg=[x]"},
	{"pass/missing", S("PASS"), "-ERR Missing password"},
	{"pass/space-only", S("PASS "), "-ERR Missing password"},
	{"pass/nul", S("PASS a\0b"), "-ERR Invalid characters in password"},
	{"pass/cr", S("PASS a\rb"), "-ERR Invalid characters in password"},
	{"pass/longest",
	 S("PASS " X256 X64 X64 X64 "xxxxxxxxxxxxxxxxxxxxxxxx"
	   "xxxxxxx"),
	 "PASS arg=[" X256 X64 X64 X64 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx]"},
	{"pass/too-long", S("PASS " X256 X256), "-ERR Password too long"},
	/* AUTH (RFC 5034) */
	{"auth/bare", S("AUTH"), "AUTH"},
	{"auth/bare-space", S("AUTH "), "AUTH"},
	{"auth/mech", S("AUTH PLAIN"), "AUTH arg=[PLAIN]"},
	{"auth/mech-lower", S("auth scram-sha-256"),
	 "AUTH arg=[scram-sha-256]"},
	{"auth/ir", S("AUTH PLAIN AGRlbW8AeA=="),
	 "AUTH arg=[PLAIN] ir=[AGRlbW8AeA==]"},
	{"auth/ir-empty", S("AUTH PLAIN ="), "AUTH arg=[PLAIN] ir=[=]"},
	{"auth/ir-trailing-space", S("AUTH PLAIN abcd "),
	 "AUTH arg=[PLAIN] ir=[abcd]"},
	{"auth/ir-bad", S("AUTH PLAIN a*b"), "-ERR Invalid base64 data"},
	{"auth/ir-two", S("AUTH PLAIN abcd efgh"), "-ERR Too many arguments"},
	{"auth/mech-bad", S("AUTH PL@IN"), "-ERR Invalid mechanism name"},
	{"auth/mech-20", S("AUTH ABCDEFGHIJKLMNOPQRST"),
	 "AUTH arg=[ABCDEFGHIJKLMNOPQRST]"},
	{"auth/mech-21", S("AUTH ABCDEFGHIJKLMNOPQRSTU"),
	 "-ERR Unsupported authentication mechanism"},
};

static char *
render(enum mp_status st, const struct pop3_cmd *cmd)
{
	GString *s = g_string_new(NULL);

	if (st != MP_OK) {
		g_string_append_printf(s, "-ERR %s", cmd->error);
		return g_string_free(s, FALSE);
	}
	g_string_append(s, pop3_verb_name(cmd->verb));
	if (cmd->arg.p != NULL) {
		g_string_append(s, " arg=[");
		g_string_append_len(s, cmd->arg.p, (gssize)cmd->arg.len);
		g_string_append_c(s, ']');
	}
	if (cmd->auth_response.p != NULL) {
		g_string_append(s, " ir=[");
		g_string_append_len(s, cmd->auth_response.p,
				    (gssize)cmd->auth_response.len);
		g_string_append_c(s, ']');
	}
	if (cmd->has_msg)
		g_string_append_printf(s, " msg=%u", cmd->msg);
	if (cmd->verb == POP3_VERB_TOP)
		g_string_append_printf(s, " lines=%u", cmd->lines);
	return g_string_free(s, FALSE);
}

static bool
view_inside(struct mp_str v, const char *line, size_t len)
{
	return v.p == NULL || (v.p >= line && v.len <= len &&
			       v.p - line <= (ptrdiff_t)(len - v.len));
}

static void
test_case(gconstpointer data)
{
	const struct pcase *c = data;
	/* A copy in the heap: a read past the end is caught by ASan. */
	char *line = g_memdup2(c->line, c->len);
	struct pop3_cmd cmd;
	enum mp_status st = pop3_parser_parse(line, c->len, NULL, &cmd);
	char *got = render(st, &cmd);

	g_assert_cmpstr(got, ==, c->expect);
	g_assert_true(st == MP_OK || st == MP_DECLINED);
	if (st == MP_OK) {
		g_assert_true(view_inside(cmd.arg, line, c->len));
		g_assert_true(view_inside(cmd.auth_response, line, c->len));
	} else {
		g_assert_cmpuint(strlen(cmd.error), >, 0);
	}
	g_free(got);
	g_free(line);
}

static void
test_null_line(void)
{
	struct pop3_cmd cmd;

	g_assert_cmpint(pop3_parser_parse(NULL, 0, NULL, &cmd), ==,
			MP_DECLINED);
	g_assert_cmpstr(cmd.error, ==, "Unknown command");
}

static void
test_limits(void)
{
	struct pop3_limits lim = {
		.user_max = 3, .pass_max = 4, .auth_response_max = 4};
	struct pop3_cmd cmd;

	g_assert_cmpint(pop3_parser_parse(S("USER abc"), &lim, &cmd), ==,
			MP_OK);
	g_assert_cmpint(pop3_parser_parse(S("USER abcd"), &lim, &cmd), ==,
			MP_DECLINED);
	g_assert_cmpint(pop3_parser_parse(S("PASS a cd"), &lim, &cmd), ==,
			MP_OK);
	g_assert_cmpint(pop3_parser_parse(S("PASS abcde"), &lim, &cmd), ==,
			MP_DECLINED);
	g_assert_cmpint(pop3_parser_parse(S("AUTH PLAIN abcd"), &lim, &cmd), ==,
			MP_OK);
	g_assert_cmpint(pop3_parser_parse(S("AUTH PLAIN abcde"), &lim, &cmd),
			==, MP_DECLINED);
	g_assert_cmpstr(cmd.error, ==, "Initial response too long");
	/* 0 means the default. */
	lim = (struct pop3_limits){0};
	g_assert_cmpint(pop3_parser_parse(S("USER " X64 X64 X64), &lim, &cmd),
			==, MP_OK);
	pop3_parser_limits_init(&lim);
	g_assert_cmpuint(lim.user_max, ==, 255);
	g_assert_cmpuint(lim.pass_max, ==, 511);
}

/* A used command struct is cleared by the next parse. */
static void
test_reused_cmd(void)
{
	struct pop3_cmd cmd;

	pop3_parser_parse(S("TOP 5 6"), NULL, &cmd);
	pop3_parser_parse(S("STAT"), NULL, &cmd);
	g_assert_false(cmd.has_msg);
	g_assert_cmpuint(cmd.lines, ==, 0);
	pop3_parser_parse(S("AUTH PLAIN abcd"), NULL, &cmd);
	pop3_parser_parse(S("AUTH"), NULL, &cmd);
	g_assert_null(cmd.arg.p);
	g_assert_null(cmd.auth_response.p);
}

static void
test_verb_names(void)
{
	g_assert_cmpstr(pop3_verb_name(POP3_VERB_RETR), ==, "RETR");
	g_assert_cmpstr(pop3_verb_name(POP3_VERB_TOP), ==, "TOP");
	g_assert_cmpstr(pop3_verb_name(POP3_VERB_NONE), ==, "");
}

static void
test_reply(void)
{
	struct mp_buf b = {0};

	pop3_reply_format(&b, true, NULL, NULL);
	g_assert_cmpstr(b.data, ==, "+OK\r\n");
	mp_buf_reset(&b);
	pop3_reply_format(&b, true, NULL, "2 320");
	g_assert_cmpstr(b.data, ==, "+OK 2 320\r\n");
	mp_buf_reset(&b);
	pop3_reply_format(&b, false, "IN-USE", "locked");
	g_assert_cmpstr(b.data, ==, "-ERR [IN-USE] locked\r\n");
	mp_buf_reset(&b);
	pop3_reply_format(&b, false, "SYS/TEMP", "");
	g_assert_cmpstr(b.data, ==, "-ERR [SYS/TEMP]\r\n");
	mp_buf_reset(&b);
	pop3_reply_format(&b, false, NULL, "a\r\nb\0c");
	g_assert_cmpstr(b.data, ==, "-ERR a  b\r\n");
	mp_buf_free(&b);
}

/* RFC 2449 4: a status line is at most 512 octets, CRLF included; the
 * cut does not split a UTF-8 character. */
static void
test_reply_long(void)
{
	struct mp_buf b = {0};
	GString *text = g_string_new(NULL);

	for (int i = 0; i < 400; i++)
		g_string_append(text, "\xc3\xa9");
	pop3_reply_format(&b, false, "AUTH", text->str);
	g_assert_cmpuint(b.len, <=, POP3_REPLY_LINE_MAX);
	g_assert_cmpuint(b.len, >=, POP3_REPLY_LINE_MAX - 2);
	g_assert_true(g_str_has_suffix(b.data, "\xc3\xa9\r\n"));
	g_assert_true(g_utf8_validate(b.data, (gssize)b.len, NULL));
	g_assert_true(strchr(b.data, '\r') == b.data + b.len - 2);
	g_string_free(text, TRUE);
	mp_buf_free(&b);
}

/* Dovecot's pop3_uidl_format default, %08Xu%08Xv. */
static void
test_uidl(void)
{
	char id[17];

	pop3_uidl_format(id, 1, 0x5f3a1b2c);
	g_assert_cmpstr(id, ==, "000000015F3A1B2C");
	pop3_uidl_format(id, 0xffffffffu, 1);
	g_assert_cmpstr(id, ==, "FFFFFFFF00000001");
}

/* --- the dot filter --------------------------------------------------- */

struct dcase {
	const char *name;
	const char *in;
	bool top;
	uint32_t lines;
	const char *expect; /* the response body, terminator included */
};

static const struct dcase dcases[] = {
	{"empty", "", false, 0, ".\r\n"},
	{"plain", "a\r\nb\r\n", false, 0, "a\r\nb\r\n.\r\n"},
	{"no-final-break", "a\r\nb", false, 0, "a\r\nb\r\n.\r\n"},
	{"first-line-dot", ".a\r\n", false, 0, "..a\r\n.\r\n"},
	{"dot-lines", "a\r\n.\r\n..\r\n.b\r\nc.d\r\n", false, 0,
	 "a\r\n..\r\n...\r\n..b\r\nc.d\r\n.\r\n"},
	{"only-dot", ".", false, 0, "..\r\n.\r\n"},
	{"dots-adjacent", "\n.\n.\n..", false, 0, "\n..\n..\n...\r\n.\r\n"},
	{"dot-last", "a\r\n.", false, 0, "a\r\n..\r\n.\r\n"},
	{"bare-lf", "a\n.b\n", false, 0, "a\n..b\n.\r\n"},
	{"cr-not-a-break", "a\r.b\r\n", false, 0, "a\r.b\r\n.\r\n"},
	{"top-0", "H: 1\r\nH: 2\r\n\r\nbody\r\n", true, 0,
	 "H: 1\r\nH: 2\r\n\r\n.\r\n"},
	{"top-1", "H: 1\r\n\r\none\r\ntwo\r\n", true, 1,
	 "H: 1\r\n\r\none\r\n.\r\n"},
	{"top-more", "H: 1\r\n\r\none\r\ntwo", true, 5,
	 "H: 1\r\n\r\none\r\ntwo\r\n.\r\n"},
	{"top-stuffed", "H: 1\r\n\r\n.one\r\n.two\r\n", true, 1,
	 "H: 1\r\n\r\n..one\r\n.\r\n"},
	{"top-no-body", "H: 1\r\nH: 2\r\n", true, 0, "H: 1\r\nH: 2\r\n.\r\n"},
	{"top-empty-header", "\r\nbody\r\n", true, 0, "\r\n.\r\n"},
	{"top-bare-lf-blank", "H: 1\n\nbody\n", true, 0, "H: 1\n\n.\r\n"},
	{"top-cr-line-not-blank", "H: 1\r\n \r\nX: 2\r\n\r\nb\r\n", true, 0,
	 "H: 1\r\n \r\nX: 2\r\n\r\n.\r\n"},
};

/* Feeds in as pieces of step bytes (0: whole); returns the output. */
static char *
run_dot(const struct dcase *c, size_t step, GRand *rnd)
{
	struct pop3_dot d;
	struct mp_buf out = {0};
	size_t len = strlen(c->in), off = 0;

	pop3_dot_init(&d, c->top, c->lines);
	while (off < len && !pop3_dot_done(&d)) {
		size_t n = step == 0 ? len - off : step;
		if (rnd != NULL)
			n = (size_t)g_rand_int_range(rnd, 1, 8);
		if (n > len - off)
			n = len - off;
		char *piece = g_memdup2(c->in + off, n);
		size_t used = pop3_dot_feed(&d, piece, n, &out);
		g_free(piece);
		g_assert_cmpuint(used, <=, n);
		if (used < n)
			g_assert_true(pop3_dot_done(&d));
		off += n;
	}
	pop3_dot_finish(&d, &out);
	return out.data != NULL ? mp_buf_steal(&out) : g_strdup("");
}

/* What RETR by sendfile sends: the runs between the lines to stuff, a
 * '.' before each of those, and the tail; the message read in pieces of
 * piece bytes (0: all at once). */
static char *
run_find(const char *in, size_t piece)
{
	GString *out = g_string_new(NULL);
	size_t len = strlen(in), next = 0;
	bool line_start = true;

	while (next < len) {
		size_t n =
			piece == 0 || len - next < piece ? len - next : piece;
		size_t at = pop3_dot_find(in + next, n, line_start);

		g_assert_cmpuint(at, <=, n);
		g_string_append_len(out, in + next, (gssize)at);
		if (at < n) {
			g_assert_cmpint(in[next + at], ==, '.');
			g_assert_true(next + at == 0 ||
				      in[next + at - 1] == '\n');
			g_string_append_c(out, '.');
			next += at;
			/* The '.' is read again, not as a line start. */
			line_start = false;
		} else {
			next += n;
			line_start = in[next - 1] == '\n';
		}
	}
	g_string_append(out, pop3_dot_tail(line_start));
	return g_string_free(out, FALSE);
}

static void
test_dot(gconstpointer data)
{
	const struct dcase *c = data;
	GRand *rnd = g_rand_new_with_seed(7);
	char *got;

	for (size_t w = 0; w < 4 && !c->top; w++) {
		got = run_find(c->in, w);
		g_assert_cmpstr(got, ==, c->expect);
		g_free(got);
	}

	got = run_dot(c, 0, NULL);
	g_assert_cmpstr(got, ==, c->expect);
	free(got);
	got = run_dot(c, 1, NULL);
	g_assert_cmpstr(got, ==, c->expect);
	free(got);
	for (int i = 0; i < 20; i++) {
		got = run_dot(c, 0, rnd);
		g_assert_cmpstr(got, ==, c->expect);
		free(got);
	}
	g_rand_free(rnd);
}

/* TOP stops using input once it has what it wants. */
static void
test_dot_used(void)
{
	struct pop3_dot d;
	struct mp_buf out = {0};
	const char in[] = "H: 1\r\n\r\none\r\ntwo\r\n";

	pop3_dot_init(&d, true, 1);
	g_assert_cmpuint(pop3_dot_feed(&d, S(in), &out), ==,
			 strlen("H: 1\r\n\r\none\r\n"));
	g_assert_true(pop3_dot_done(&d));
	g_assert_cmpuint(pop3_dot_feed(&d, S("more\r\n"), &out), ==, 0);
	mp_buf_free(&out);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *path = g_strconcat("/pop3/parser/", cases[i].name, NULL);

		g_test_add_data_func(path, &cases[i], test_case);
		g_free(path);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(dcases); i++) {
		char *path = g_strconcat("/pop3/dot/", dcases[i].name, NULL);

		g_test_add_data_func(path, &dcases[i], test_dot);
		g_free(path);
	}
	g_test_add_func("/pop3/parser/null-line", test_null_line);
	g_test_add_func("/pop3/parser/limits", test_limits);
	g_test_add_func("/pop3/parser/reused-cmd", test_reused_cmd);
	g_test_add_func("/pop3/parser/verb-names", test_verb_names);
	g_test_add_func("/pop3/reply/one-line", test_reply);
	g_test_add_func("/pop3/reply/too-long", test_reply_long);
	g_test_add_func("/pop3/uidl/format", test_uidl);
	g_test_add_func("/pop3/dot/used", test_dot_used);
	return g_test_run();
}
