/* test-imap-sort.c - SORT and THREAD without a server: base subjects
 * (RFC 5256 2.1), collation, sort criteria and the search criteria after
 * them, sort keys of real envelopes, Message-ID lists, and both thread
 * algorithms, loops, missing parents, dummies and deep chains included.
 *
 * Commands go through the real IMAP command parser, and envelopes come
 * from the real MIME parser, as the session would hand them over. */
#include "config.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>

#include <moonpost/mime.h>

#include "imap-parser.h"
#include "imap-search.h"
#include "imap-sort.h"

/* --- base subject --------------------------------------------------------- */

struct subj_case {
	const char *in, *base;
	bool reply;
};

static const struct subj_case subj_cases[] = {
	{"hello", "hello", false},
	{"Re: hello", "hello", true},
	{"RE: hello", "hello", true},
	{"re:hello", "hello", true},
	{"Fwd: hello", "hello", true},
	{"FW: hello", "hello", true},
	{"fwd : hello", "hello", true},
	{"Re: Re: RE: hello", "hello", true},
	{"Re[2]: hello", "hello", true},
	{"Re [2]: hello", "hello", true},
	{"[PATCH] hello", "hello", false},
	{"[PATCH]", "[PATCH]", false},
	{"[a] [b]", "[b]", false},
	{"[a][b][c] x", "x", false},
	{"[list] Re: hello", "hello", true},
	{"Re: [list] hello", "hello", true},
	{"[list] [x] Re: [y] Fw: z", "z", true},
	{"hello (fwd)", "hello", true},
	{"hello (FWD) (fwd)  ", "hello", true},
	{"hello(fwd)", "hello", true},
	{"[fwd: hello]", "hello", true},
	{"[Fwd: Re: hello]", "hello", true},
	{"Re: [fwd: hello] (fwd)", "hello", true},
	{"Re: [fwd: [PATCH] foo]", "foo", true},
	{"[fwd: [fwd: x]]", "x", true},
	{"[fwd:]", "", true},
	{"   hello    world  ", "hello world", false},
	{"hello\tworld", "hello world", false},
	{"hello \t\r\n world", "hello world", false},
	{"=?UTF-8?Q?Re=3A_caf=C3=A9?=", "caf\xc3\xa9", true},
	{"=?iso-8859-1?q?R=E9sum=E9?=", "R\xc3\xa9sum\xc3\xa9", false},
	{"Re: =?utf-8?b?w4FsdmFybw==?= (fwd)", "\xc3\x81lvaro", true},
	{"", "", false},
	{"Re:", "", true},
	{"Re: ", "", true},
	{"Ref: hello", "Ref: hello", false},
	{"Rehearsal: x", "Rehearsal: x", false},
	{"Re hello", "Re hello", false},
	{"[unclosed Re: x", "[unclosed Re: x", false},
	{"(fwd)", "", true},
	{"Re: (fwd)", "", true},
	{"Fwd: [fwd: Re: [x] y (fwd)] (fwd)", "y", true},
};

static void
test_base_subject(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(subj_cases); i++) {
		const struct subj_case *c = &subj_cases[i];
		struct mp_buf out = {0};
		bool reply;

		mp_buf_puts(&out, "x"); /* appends, keeps what was there */
		reply = imap_sort_base_subject(c->in, strlen(c->in), &out);
		if (strcmp(out.data + 1, c->base) != 0 || reply != c->reply)
			g_error("\"%s\": got \"%s\" %d, want \"%s\" %d", c->in,
				out.data + 1, reply, c->base, c->reply);
		g_assert_cmpint(out.data[0], ==, 'x');
		mp_buf_free(&out);
	}
}

/* Any bytes in, NUL included; the result is never longer. */
static void
test_base_subject_bytes(void)
{
	static const char raw[] = "Re: a\0b [x\0] \xff\xfe (fwd)";
	struct mp_buf out = {0};

	g_assert_true(imap_sort_base_subject(raw, sizeof(raw) - 1, &out));
	g_assert_cmpuint(out.len, <=, sizeof(raw) - 1);
	g_assert_cmpmem(out.data, 3, "a\0b", 3);
	mp_buf_free(&out);
}

/* Step (3) fails after a long run of blobs, and step (4) takes them off
 * one at a time: linear, not quadratic. */
static void
test_base_subject_blobs(void)
{
	GString *s = g_string_new("Re: ");
	struct mp_buf out = {0};
	GTimer *timer = g_timer_new();

	for (int i = 0; i < 50000; i++)
		g_string_append(s, "[a]");
	g_string_append(s, "x");
	g_assert_true(imap_sort_base_subject(s->str, s->len, &out));
	g_assert_cmpstr(out.data, ==, "x");
	g_test_message("50000 blobs: %.3f s", g_timer_elapsed(timer, NULL));
	mp_buf_reset(&out);
	g_string_truncate(s, 0);
	for (int i = 0; i < 20000; i++)
		g_string_append(s, "[fwd: ");
	g_string_append(s, "x");
	for (int i = 0; i < 20000; i++)
		g_string_append(s, "]");
	g_assert_true(imap_sort_base_subject(s->str, s->len, &out));
	g_assert_cmpstr(out.data, ==, "x");
	g_timer_destroy(timer);
	g_string_free(s, TRUE);
	mp_buf_free(&out);
}

/* --- collation ------------------------------------------------------------ */

static int
collate_cmp(const char *a, const char *b)
{
	struct mp_buf ka = {0}, kb = {0};
	size_t n;
	int r;

	imap_sort_collate(a, strlen(a), &ka);
	imap_sort_collate(b, strlen(b), &kb);
	n = ka.len < kb.len ? ka.len : kb.len;
	r = n > 0 ? memcmp(ka.data, kb.data, n) : 0;
	if (r == 0)
		r = ka.len < kb.len ? -1 : ka.len > kb.len;
	mp_buf_free(&ka);
	mp_buf_free(&kb);
	return r < 0 ? -1 : r > 0;
}

static void
test_collate(void)
{
	struct mp_buf k = {0};
	GString *big = g_string_new(NULL);

	g_assert_cmpint(collate_cmp("abc", "ABC"), ==, 0);
	g_assert_cmpint(collate_cmp("\xc3\xa9t\xc3\xa9", "\xc3\x89T\xc3\x89"),
			==, 0);
	g_assert_cmpint(collate_cmp("\xce\xa3", "\xcf\x83"), ==, 0);
	g_assert_cmpint(collate_cmp("a", "b"), ==, -1);
	g_assert_cmpint(collate_cmp("B", "a"), ==, 1);
	g_assert_cmpint(collate_cmp("", "a"), ==, -1);
	g_assert_cmpint(collate_cmp("ab", "abc"), ==, -1);
	/* decomposed: an accented letter sorts with its base letter */
	g_assert_cmpint(collate_cmp("\xc3\x89mile", "Bob"), ==, 1);
	g_assert_cmpint(collate_cmp("\xc3\x89mile", "Zed"), ==, -1);
	g_assert_cmpint(collate_cmp("\xc3\xa9mile", "Emile"), ==, 1);
	g_assert_cmpint(collate_cmp("\xc5\xbd", "\xc5\xbe"), ==, 0);
	g_assert_cmpint(collate_cmp("\xc4\x8c"
				    "apek",
				    "Dvo\xc5\x99\xc3\xa1k"),
			==, -1);
	g_assert_cmpint(collate_cmp("\xc4\x8c"
				    "apek",
				    "Cz"),
			==, 1);
	g_assert_cmpint(collate_cmp("\xc3\x9f", "T"), ==, 1); /* no ss */
	/* titlecase, as i;unicode-casemap: '_' sorts after the letters */
	g_assert_cmpint(collate_cmp("a", "_"), ==, -1);
	g_assert_cmpint(collate_cmp("Z", "_"), ==, -1);
	/* keys are bounded */
	for (int i = 0; i < 5000; i++)
		g_string_append(big, "\xc3\x89");
	imap_sort_collate(big->str, big->len, &k);
	g_assert_cmpuint(k.len, ==, IMAP_SORT_KEY_MAX);
	g_string_free(big, TRUE);
	mp_buf_free(&k);
}

/* --- commands through the parser ------------------------------------------ */

struct parsed {
	struct imap_parser *p;
	const struct imap_command *cmd;
};

static void
parse_command(const char *line, struct parsed *out)
{
	struct imap_parser_limits lim;
	enum imap_parse_result r;

	imap_parser_limits_init(&lim, true);
	out->p = imap_parser_new(&lim, IMAP_PARSER_UTF8);
	r = imap_parser_feed_line(out->p, line, strlen(line), 0);
	if (r != IMAP_PARSE_COMPLETE)
		g_error("parser: %s: %s", line,
			imap_parser_error(out->p)->text);
	out->cmd = imap_parser_command(out->p);
}

static void
test_sort_parse(void)
{
	static const struct {
		const char *args;
		unsigned n;
		enum imap_sort_key first;
		bool reverse;
	} ok[] = {
		{"(DATE)", 1, IMAP_SORT_DATE, false},
		{"(reverse size SUBJECT)", 2, IMAP_SORT_SIZE, true},
		{"(ARRIVAL CC FROM TO DISPLAYFROM DISPLAYTO)", 6,
		 IMAP_SORT_ARRIVAL, false},
		{"(REVERSE displayto date date)", 3, IMAP_SORT_DISPLAYTO, true},
	};
	static const char *const bad[] = {
		"DATE",
		"()",
		"(REVERSE)",
		"(FOO)",
		"(REVERSE REVERSE DATE)",
		"((DATE))",
		"(\"DATE\")",
		"(DATE REVERSE)",
	};
	struct imap_sort_program prog;
	const char *error;
	bool limit;

	for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
		struct parsed ps;
		char *line = g_strconcat("a SORT ", ok[i].args, NULL);

		parse_command(line, &ps);
		g_assert_true(imap_sort_parse(&ps.cmd->args[0], &prog, &error,
					      &limit));
		g_assert_cmpuint(prog.n, ==, ok[i].n);
		g_assert_cmpint(prog.c[0].key, ==, ok[i].first);
		g_assert_cmpint(prog.c[0].reverse, ==, ok[i].reverse);
		imap_parser_free(&ps.p);
		g_free(line);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		struct parsed ps;
		char *line = g_strconcat("a SORT ", bad[i], NULL);

		parse_command(line, &ps);
		if (imap_sort_parse(&ps.cmd->args[0], &prog, &error, &limit))
			g_error("%s: accepted", bad[i]);
		g_assert_nonnull(error);
		g_assert_false(limit);
		imap_parser_free(&ps.p);
		g_free(line);
	}
	{
		struct parsed ps;
		GString *line = g_string_new("a SORT (");

		for (int i = 0; i < IMAP_SORT_CRITERIA_MAX + 1; i++)
			g_string_append(line, i ? " DATE" : "DATE");
		g_string_append(line, ")");
		parse_command(line->str, &ps);
		g_assert_false(imap_sort_parse(&ps.cmd->args[0], &prog, &error,
					       &limit));
		g_assert_true(limit);
		imap_parser_free(&ps.p);
		g_string_free(line, TRUE);
	}
}

static enum imap_search_status
criteria(const char *args, bool with_return, struct imap_search_error *err,
	 struct imap_search_program **prog_r)
{
	struct imap_search_context ctx = {.messages = 10,
					  .last_uid = 100,
					  .now = 1700000000,
					  .max_ranges = 100};
	char *line = g_strconcat("a SORT ", args, NULL);
	struct parsed ps;
	enum imap_search_status st;
	size_t skip = with_return ? 2 : 0;

	parse_command(line, &ps);
	st = imap_search_parse_criteria(
		ps.cmd->args + skip, ps.cmd->count - skip,
		with_return ? &ps.cmd->args[1] : NULL, &ctx, prog_r, err);
	imap_parser_free(&ps.p);
	g_free(line);
	return st;
}

static void
test_criteria(void)
{
	struct imap_search_program *prog;
	struct imap_search_error err;

	g_assert_cmpint(criteria("UTF-8 ALL", false, &err, &prog), ==,
			IMAP_SEARCH_OK);
	g_assert_false(imap_search_esearch(prog));
	imap_search_program_free(&prog);
	g_assert_cmpint(
		criteria("\"us-ascii\" FROM x SEEN", false, &err, &prog), ==,
		IMAP_SEARCH_OK);
	imap_search_program_free(&prog);
	g_assert_cmpint(
		criteria("RETURN (MIN COUNT) UTF-8 ALL", true, &err, &prog), ==,
		IMAP_SEARCH_OK);
	g_assert_true(imap_search_esearch(prog));
	g_assert_cmpuint(imap_search_return_options(prog), ==,
			 IMAP_SEARCH_RETURN_MIN | IMAP_SEARCH_RETURN_COUNT);
	imap_search_program_free(&prog);
	g_assert_cmpint(criteria("RETURN () UTF-8 ALL", true, &err, &prog), ==,
			IMAP_SEARCH_OK);
	g_assert_cmpuint(imap_search_return_options(prog), ==,
			 IMAP_SEARCH_RETURN_ALL);
	imap_search_program_free(&prog);

	g_assert_cmpint(criteria("KOI8-R ALL", false, &err, &prog), ==,
			IMAP_SEARCH_NO);
	g_assert_null(prog);
	g_assert_cmpstr(err.code, ==, "BADCHARSET (UTF-8 US-ASCII)");
	g_assert_cmpint(criteria("UTF-8", false, &err, &prog), ==,
			IMAP_SEARCH_BAD);
	g_assert_cmpstr(err.text, ==, "Missing search keys");
	g_assert_cmpint(criteria("", false, &err, &prog), ==, IMAP_SEARCH_BAD);
	g_assert_cmpstr(err.text, ==, "Missing charset");
	/* CHARSET is no keyword here: it is taken as the charset name */
	g_assert_cmpint(criteria("CHARSET UTF-8 ALL", false, &err, &prog), ==,
			IMAP_SEARCH_NO);
	g_assert_cmpint(criteria("UTF-8 BOGUS", false, &err, &prog), ==,
			IMAP_SEARCH_BAD);
	g_assert_cmpint(criteria("RETURN (BOGUS) UTF-8 ALL", true, &err, &prog),
			==, IMAP_SEARCH_BAD);
	g_assert_cmpint(criteria("RETURN ALL UTF-8 ALL", true, &err, &prog), ==,
			IMAP_SEARCH_BAD);
	g_assert_cmpint(criteria("(ALL) ALL", false, &err, &prog), ==,
			IMAP_SEARCH_BAD);
	g_assert_null(prog);
}

static void
test_format_numbers(void)
{
	struct imap_search_program *prog;
	struct imap_search_error err;
	struct mp_buf out = {0};
	const uint32_t nums[] = {5, 3, 4, 1, 2, 9};
	const uint64_t modseqs[] = {10, 30, 20, 40, 50, 60};

	g_assert_cmpint(criteria("UTF-8 ALL", false, &err, &prog), ==,
			IMAP_SEARCH_OK);
	imap_search_format_numbers(&out, "SORT", prog, nums, NULL, 6);
	g_assert_cmpstr(out.data, ==, "* SORT 5 3 4 1 2 9");
	mp_buf_reset(&out);
	imap_search_format_numbers(&out, "SORT", prog, nums, NULL, 0);
	g_assert_cmpstr(out.data, ==, "* SORT");
	imap_search_program_free(&prog);

	/* ESORT: MIN and MAX are first and last in sort order, ALL keeps
	 * the order and joins only ascending runs (RFC 5267 3.2). */
	g_assert_cmpint(criteria("RETURN (MIN MAX ALL COUNT) UTF-8 MODSEQ 1",
				 true, &err, &prog),
			==, IMAP_SEARCH_OK);
	mp_buf_reset(&out);
	imap_search_format_esearch(&out, prog, (struct mp_str){"t1", 2}, true,
				   nums, modseqs, 6);
	g_assert_cmpstr(
		out.data, ==,
		"* ESEARCH (TAG \"t1\") UID MIN 5 MAX 9 ALL 5,3:4,1:2,9 "
		"COUNT 6 MODSEQ 60");
	imap_search_program_free(&prog);
	g_assert_cmpint(criteria("UTF-8 MODSEQ 1", false, &err, &prog), ==,
			IMAP_SEARCH_OK);
	mp_buf_reset(&out);
	imap_search_format_numbers(&out, "SORT", prog, nums, modseqs, 6);
	g_assert_cmpstr(out.data, ==, "* SORT 5 3 4 1 2 9 (MODSEQ 60)");
	imap_search_program_free(&prog);
	mp_buf_free(&out);
}

/* --- sort keys of real messages ------------------------------------------- */

static struct mp_mime_message *
parse_message(const char *text)
{
	struct mp_mime_parser *p = mp_mime_parser_new(NULL);

	mp_mime_parser_feed(p, text, strlen(text));
	return mp_mime_parser_finish(&p);
}

struct smsg {
	const char *header;
	uint64_t size;
	int64_t arrival;
};

/* Messages numbered 1.., sorted by the criteria in args; the answer. */
static char *
sort_messages(const struct smsg *msgs, size_t n, const char *args)
{
	struct imap_sort_program prog;
	struct imap_sort_set *set;
	struct parsed ps;
	GString *res = g_string_new(NULL);
	char *line = g_strconcat("a SORT ", args, NULL);
	const char *error;
	bool limit;
	const uint32_t *order;

	parse_command(line, &ps);
	if (!imap_sort_parse(&ps.cmd->args[0], &prog, &error, &limit))
		g_error("%s: %s", args, error);
	set = imap_sort_set_new(&prog);
	for (size_t i = 0; i < n; i++) {
		char *text = g_strconcat(msgs[i].header, "\r\nbody\r\n", NULL);
		struct mp_mime_message *mime = parse_message(text);
		struct ms_msg meta = {.uid = (uint32_t)(100 + i),
				      .size = msgs[i].size,
				      .internal_date = msgs[i].arrival};
		struct imap_sort_msg m = {(uint32_t)i + 1, &meta,
					  mime->root->envelope};

		imap_sort_set_add(set, &m);
		mp_mime_message_free(&mime);
		g_free(text);
	}
	g_assert_cmpuint(imap_sort_set_count(set), ==, n);
	order = imap_sort_set_sort(set);
	for (size_t i = 0; i < n; i++)
		g_string_append_printf(res, "%s%u", i ? " " : "",
				       imap_sort_set_num(set, order[i]));
	imap_sort_set_free(&set);
	g_assert_null(set);
	imap_parser_free(&ps.p);
	g_free(line);
	return g_string_free(res, FALSE);
}

static const struct smsg sort_msgs[] = {
	/* 1 */
	{"From: \"Zed\" <bob@example.org>\r\nTo: carol@example.org\r\n"
	 "Cc: Dan <dan@example.org>\r\n"
	 "Subject: Re: Budget\r\nDate: Wed, 1 Jan 2020 10:00:00 +0000\r\n",
	 300, 1000},
	/* 2 */
	{"From: alice@example.org\r\nTo: \"Bea\" <Zoe@example.org>\r\n"
	 "Subject: apples\r\nDate: Wed, 1 Jan 2020 09:00:00 -0200\r\n",
	 100, 3000},
	/* 3: no Date, no Cc: sent date is the arrival */
	{"From: =?utf-8?q?=C3=89mile?= <emile@example.org>\r\n"
	 "To: ann@example.org\r\nSubject: [list] budget\r\n",
	 200, 2000},
	/* 4: a group first, a quoted local part */
	{"From: Undisclosed:;, \"Bob \\\"B\\\"\"@example.org\r\n"
	 "To: <bert@example.org>\r\nCc: CAROL@example.org\r\n"
	 "Subject: Budget\r\nDate: Tue, 31 Dec 2019 23:00:00 -0500\r\n",
	 200, 500},
	/* 5: nothing but a date */
	{"Date: 1 Jan 2020 00:00 +0000", 50, 4000},
};

static void
check_sort(const char *args, const char *want)
{
	char *got = sort_messages(sort_msgs, G_N_ELEMENTS(sort_msgs), args);

	if (strcmp(got, want) != 0)
		g_error("SORT %s: got \"%s\", want \"%s\"", args, got, want);
	g_free(got);
}

static void
test_sort_keys(void)
{
	/* arrival: 4 500, 1 1000, 3 2000, 2 3000, 5 4000 */
	check_sort("(ARRIVAL)", "4 1 3 2 5");
	check_sort("(REVERSE ARRIVAL)", "5 2 3 1 4");
	/* sent: 5 00:00Z, 4 04:00Z, 1 10:00Z, 2 11:00Z; 3 (no Date) 2000 s */
	check_sort("(DATE)", "3 5 4 1 2");
	check_sort("(SIZE)", "5 2 3 4 1");
	check_sort("(REVERSE SIZE)", "1 3 4 2 5"); /* ties stay in order */
	/* base subjects: budget (1, 3, 4), apples (2), "" (5) */
	check_sort("(SUBJECT)", "5 2 1 3 4");
	check_sort("(SUBJECT REVERSE DATE)", "5 2 1 4 3");
	check_sort("(REVERSE SUBJECT)", "1 3 4 2 5");
	/* local parts: bob, alice, emile, Bob "B" (quotes gone), none */
	check_sort("(FROM)", "5 2 1 4 3");
	/* carol, Zoe, ann, bert */
	check_sort("(TO)", "5 3 4 1 2");
	/* dan, -, -, CAROL, - */
	check_sort("(CC)", "2 3 5 4 1");
	/* Zed, alice@example.org, Émile, Bob "B"@example.org, "" */
	check_sort("(DISPLAYFROM)", "5 2 4 3 1");
	/* carol@example.org, Bea, ann@example.org, bert@example.org */
	check_sort("(DISPLAYTO)", "5 3 2 4 1");
	check_sort("(REVERSE DISPLAYTO ARRIVAL)", "1 4 2 3 5");
	/* mixed: subject, then reverse arrival among budget (1 3 4) */
	check_sort("(SUBJECT REVERSE ARRIVAL)", "5 2 3 1 4");
	check_sort("(SIZE FROM)", "5 2 4 3 1");
}

/* --- Message-IDs ---------------------------------------------------------- */

static char *
msgids(const char *s)
{
	GString *res = g_string_new(NULL);
	struct mp_buf out = {0};
	size_t pos = 0, prev = 0;

	while (imap_thread_next_msgid(s, strlen(s), &pos, &out)) {
		g_string_append_printf(res, "%s[%.*s]", res->len ? " " : "",
				       (int)(out.len - prev), out.data + prev);
		prev = out.len;
		g_assert_cmpuint(pos, <=, strlen(s));
	}
	g_assert_cmpuint(pos, ==, strlen(s));
	g_assert_cmpuint(out.len, ==, prev);
	mp_buf_free(&out);
	return g_string_free(res, FALSE);
}

static void
test_msgid(void)
{
	static const char *const cases[][2] = {
		{"<a@b>", "[a@b]"},
		{"<\"a.b\"@c.example>", "[a.b@c.example]"},
		{"<\"01KF8JCEOCBS0045PS\"@mail.example.net>",
		 "[01KF8JCEOCBS0045PS@mail.example.net]"},
		{" <a@b>\r\n <c@d>\t<e@f>", "[a@b] [c@d] [e@f]"},
		{"<a@b><c@d>", "[a@b] [c@d]"},
		{"<a (comment (nested)) @b>", "[a@b]"},
		{"<a\r\n @b>", "[a@b]"},
		{"<\"a\\\"q\"@b>", "[a\"q@b]"},
		{"<a@[10.0.0.1]>", "[a@[10.0.0.1]]"},
		{"foo <a@b> (message from Joe)", "[a@b]"},
		{"<a@b", ""},
		{"<ab>", ""},
		{"<@b>", ""},
		{"<a@>", ""},
		{"<a@b@c>", ""},
		{"<a<b@c>", "[b@c]"},
		{"<a,b@c> <d@e>", "[d@e]"},
		{"<a:b@c>", ""},
		{"<\"unterminated@b>", ""},
		{"a@b", ""},
		{"", ""},
		{"<>", ""},
		{"<\xc3\xa9@b>", "[\xc3\xa9@b]"},
		{"<a\x01@b>", ""},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *got = msgids(cases[i][0]);

		if (strcmp(got, cases[i][1]) != 0)
			g_error("\"%s\": got \"%s\", want \"%s\"", cases[i][0],
				got, cases[i][1]);
		g_free(got);
	}
}

static void
test_msgid_long(void)
{
	GString *s = g_string_new("<");
	char *got;

	for (int i = 0; i < IMAP_THREAD_ID_MAX; i++)
		g_string_append_c(s, 'a');
	g_string_append(s, "@b> <ok@b>");
	got = msgids(s->str);
	g_assert_cmpstr(got, ==, "[ok@b]");
	g_free(got);
	g_string_free(s, TRUE);
}

/* --- threads -------------------------------------------------------------- */

struct tm_case {
	const char *subject, *id, *refs, *irt;
	int64_t sent;
};

static char *
thread_answer(enum imap_thread_alg alg, const struct tm_case *msgs, size_t n)
{
	struct imap_thread_set *set = imap_thread_set_new(alg);
	struct mp_buf out = {0};
	char *res;

	for (size_t i = 0; i < n; i++) {
		const struct tm_case *c = &msgs[i];
		struct imap_thread_msg m = {
			.num = (uint32_t)i + 1,
			.sent = c->sent,
			.subject = {c->subject,
				    c->subject ? strlen(c->subject) : 0},
			.message_id = {c->id, c->id ? strlen(c->id) : 0},
			.references = {c->refs, c->refs ? strlen(c->refs) : 0},
			.in_reply_to = {c->irt, c->irt ? strlen(c->irt) : 0},
		};
		imap_thread_set_add(set, &m);
	}
	imap_thread_set_format(set, &out);
	imap_thread_set_free(&set);
	g_assert_null(set);
	res = g_strdup(out.data != NULL ? out.data : "");
	mp_buf_free(&out);
	return res;
}

/* Checks the RFC 5256 4 grammar: thread-list = "(" (thread-members /
 * thread-nested) ")", thread-members = nz-number *(SP nz-number) [SP
 * thread-nested], thread-nested = 2*thread-list; every number 1..n
 * exactly once. */
static void
check_grammar(const char *s, size_t n)
{
	guint8 *seen = g_malloc0(n + 1);
	size_t depth = 0, count = 0;
	const char *p = s;
	/* per open list: numbers seen, nested lists seen */
	GArray *nums = g_array_new(FALSE, TRUE, sizeof(size_t));
	GArray *lists = g_array_new(FALSE, TRUE, sizeof(size_t));

	while (*p != '\0') {
		if (*p == '(') {
			if (depth > 0)
				g_array_index(lists, size_t, depth - 1)++;
			depth++;
			g_array_set_size(nums, depth);
			g_array_set_size(lists, depth);
			g_array_index(nums, size_t, depth - 1) = 0;
			g_array_index(lists, size_t, depth - 1) = 0;
			p++;
		} else if (*p == ')') {
			size_t ns, ls;

			g_assert_cmpuint(depth, >, 0);
			ns = g_array_index(nums, size_t, depth - 1);
			ls = g_array_index(lists, size_t, depth - 1);
			/* members, then nested lists: none or two and more;
			 * a list of lists only needs two and more */
			if (!((ns > 0 && ls != 1) || (ns == 0 && ls >= 2)))
				g_error("bad thread-list in %s at %zu", s,
					(size_t)(p - s));
			depth--;
			p++;
		} else if (*p == ' ') {
			g_assert_true((p[1] >= '1' && p[1] <= '9') ||
				      p[1] == '(');
			p++;
		} else {
			char *end;
			unsigned long v = strtoul(p, &end, 10);

			g_assert_cmpuint(depth, >, 0);
			g_assert_cmpuint(v, >=, 1);
			g_assert_cmpuint(v, <=, n);
			g_assert_cmpuint(seen[v], ==, 0);
			/* numbers come before nested lists */
			g_assert_cmpuint(
				g_array_index(lists, size_t, depth - 1), ==, 0);
			seen[v] = 1;
			count++;
			g_array_index(nums, size_t, depth - 1)++;
			p = end;
		}
	}
	g_assert_cmpuint(depth, ==, 0);
	g_assert_cmpuint(count, ==, n);
	g_array_free(nums, TRUE);
	g_array_free(lists, TRUE);
	g_free(seen);
}

static void
check_threads(enum imap_thread_alg alg, const struct tm_case *msgs, size_t n,
	      const char *want)
{
	char *got = thread_answer(alg, msgs, n);

	if (strcmp(got, want) != 0)
		g_error("got \"%s\", want \"%s\"", got, want);
	check_grammar(got, n);
	g_free(got);
}

static void
test_orderedsubject(void)
{
	static const struct tm_case msgs[] = {
		{"A", NULL, NULL, NULL, 100},         /* 1 */
		{"Re: a", NULL, NULL, NULL, 300},     /* 2 */
		{"B", NULL, NULL, NULL, 200},         /* 3 */
		{"[x] Re: A", NULL, NULL, NULL, 250}, /* 4 */
		{"C", NULL, NULL, NULL, 50},          /* 5 */
		{"b (fwd)", NULL, NULL, NULL, 400},   /* 6 */
		{NULL, NULL, NULL, NULL, 60},         /* 7 */
		{"", NULL, NULL, NULL, 500},          /* 8 */
	};

	/* threads by first date: 5 (50), "" 7 (60), A 1 (100), B 3 (200);
	 * A's messages by date: 1, 4 (250), 2 (300) */
	check_threads(IMAP_THREAD_ORDEREDSUBJECT, msgs, G_N_ELEMENTS(msgs),
		      "(5)(7 8)(1 (4)(2))(3 6)");
	check_threads(IMAP_THREAD_ORDEREDSUBJECT, msgs, 1, "(1)");
	check_threads(IMAP_THREAD_ORDEREDSUBJECT, msgs, 0, "");
}

/* A realistic conversation: replies with full References, one with only
 * In-Reply-To, replies to a message not in the mailbox, a reply by
 * subject alone, a Message-ID in quotes. */
static const struct tm_case conversation[] = {
	/* 1 */ {"Plan", "<1@x>", NULL, NULL, 100},
	/* 2 */ {"Re: Plan", "<2@x>", "<1@x>", "<1@x>", 200},
	/* 3 */ {"Re: Plan", "<3@x>", "<1@x> <2@x>", "<2@x>", 300},
	/* 4 */ {"RE: plan", "<4@x>", NULL, "<1@x> (sent by Ann)", 250},
	/* 5 */ {"Lunch", "<5@x>", NULL, NULL, 150},
	/* 6 */ {"Re: Other", "<6@x>", "<gone@x>", NULL, 400},
	/* 7 */ {"Re: Other", "<7@x>", "<gone@x>", NULL, 500},
	/* 8 */ {"Re: Lunch", "<8@x>", NULL, NULL, 600},
	/* 9 */ {"Re: Plan", "<9@x>", "<1@x> <\"3\"@x>", NULL, 350},
};

static void
test_references(void)
{
	check_threads(IMAP_THREAD_REFERENCES, conversation,
		      G_N_ELEMENTS(conversation),
		      "(1 (2 3 9)(4))(5 8)((6)(7))");
	/* ORDEREDSUBJECT on the same messages */
	check_threads(IMAP_THREAD_ORDEREDSUBJECT, conversation,
		      G_N_ELEMENTS(conversation), "(1 (2)(4)(3)(9))(5 8)(6 7)");
}

static void
test_references_subjects(void)
{
	static const struct tm_case msgs[] = {
		/* two originals alike: a dummy gathers them */
		/* 1 */ {"Lunch", "<1@x>", NULL, NULL, 100},
		/* 2 */ {"lunch", "<2@x>", NULL, NULL, 200},
		/* 3: reply to a dummy thread, subject of the dummy */
		/* 3 */ {"Re: Other", "<3@x>", "<gone@x>", NULL, 50},
		/* 4 */ {"Re: Other", "<4@x>", "<gone@x>", NULL, 60},
		/* 5 */ {"Other", "<5@x>", NULL, NULL, 70},
		/* 6: a reply that came first, then the original */
		/* 6 */ {"Re: Third", "<6@x>", NULL, NULL, 10},
		/* 7 */ {"Third", "<7@x>", NULL, NULL, 20},
	};

	/* roots by date: 6 (10), dummy(3, 4) (50), 5 (70), 1, 2. The
	 * table takes 6, then 7 (not a reply) replaces it and 6 goes
	 * under 7; 5 joins the dummy; 1 and 2 get a new dummy. */
	check_threads(IMAP_THREAD_REFERENCES, msgs, G_N_ELEMENTS(msgs),
		      "(7 6)((3)(4)(5))((1)(2))");
}

static void
test_references_loops(void)
{
	static const struct tm_case loop[] = {
		{"a", "<a@x>", "<b@x>", NULL, 100},
		{"b", "<b@x>", "<a@x>", NULL, 200},
	};
	static const struct tm_case self[] = {
		{"a", "<a@x>", "<a@x>", NULL, 100},
		{"b", "<b@x>", "<b@x> <a@x> <b@x>", NULL, 200},
	};
	static const struct tm_case cycle[] = {
		{"a", "<a@x>", "<c@x> <b@x>", NULL, 100},
		{"b", "<b@x>", "<a@x> <c@x>", NULL, 200},
		{"c", "<c@x>", "<b@x> <a@x>", NULL, 300},
	};
	static const struct tm_case dup[] = {
		{"a", "<a@x>", NULL, NULL, 100},
		{"b", "<a@x>", NULL, NULL, 200},
		{"c", "<c@x>", "<a@x>", NULL, 300},
	};

	/* 1 goes under b's dummy; 2 claims it and cannot go under 1 */
	check_threads(IMAP_THREAD_REFERENCES, loop, 2, "(2 1)");
	/* 1 is not its own parent; 2's "b a b" makes b a's parent, then
	 * neither a nor b can be b's */
	check_threads(IMAP_THREAD_REFERENCES, self, 2, "(2 1)");
	/* 1 builds c { b { a } }; every later link would close a loop */
	check_threads(IMAP_THREAD_REFERENCES, cycle, 3, "(3 2 1)");
	/* the second <a@x> is a message of its own */
	check_threads(IMAP_THREAD_REFERENCES, dup, 3, "(1 3)(2)");
}

static void
test_references_dummies(void)
{
	static const struct tm_case promote[] = {
		/* two missing ancestors, one child: the child is a root */
		{"a", "<1@x>", "<p@x> <q@x>", NULL, 100},
	};
	static const struct tm_case flatten[] = {
		/* p { 1, q { 2, 3 } }: all under the top dummy */
		{"a", "<1@x>", "<p@x>", NULL, 300},
		{"b", "<2@x>", "<p@x> <q@x>", NULL, 100},
		{"c", "<3@x>", "<q@x>", NULL, 200},
	};
	static const struct tm_case middle[] = {
		/* 1 { missing { 2, 3 } }: the dummy's children go up */
		{"a", "<1@x>", NULL, NULL, 100},
		{"b", "<2@x>", "<1@x> <m@x>", NULL, 300},
		{"c", "<3@x>", "<1@x> <m@x>", NULL, 200},
		{"d", "<4@x>", "<1@x> <m@x> <3@x> <n@x>", NULL, 250},
	};
	static const struct tm_case no_refs[] = {
		/* References without any valid ID: In-Reply-To counts */
		{"a", "<1@x>", NULL, NULL, 100},
		{"b", "<2@x>", "garbage <no-at-sign>", "<1@x> <9@x>", 200},
		{"c", NULL, NULL, NULL, 300},
		{"d", "not an id", NULL, "also not", 400},
	};

	check_threads(IMAP_THREAD_REFERENCES, promote, 1, "(1)");
	check_threads(IMAP_THREAD_REFERENCES, flatten, 3, "((2)(3)(1))");
	check_threads(IMAP_THREAD_REFERENCES, middle, 4, "(1 (3 4)(2))");
	check_threads(IMAP_THREAD_REFERENCES, no_refs, 4, "(1 2)(3)(4)");
}

/* A chain of count messages, each replying to the one before; given in
 * thread order or against it, with In-Reply-To only or full References
 * (of which the last IMAP_THREAD_REFS_MAX are kept). */
static void
deep_chain(size_t count, bool reverse, bool full)
{
	struct tm_case *msgs = g_new0(struct tm_case, count);
	char **strs = g_new0(char *, count * 2);
	GString *want = g_string_new("(");
	char *got;

	for (size_t k = 0; k < count; k++) {
		size_t i = reverse ? count - 1 - k : k; /* position */
		GString *refs = g_string_new(NULL);

		for (size_t j = full && k > 150 ? k - 150 : 0; full && j < k;
		     j++)
			g_string_append_printf(refs, " <%zu@chain>", j);
		if (!full && k > 0)
			g_string_append_printf(refs, "<%zu@chain>", k - 1);
		strs[2 * i] = g_strdup_printf("<%zu@chain>", k);
		strs[2 * i + 1] = g_string_free(refs, FALSE);
		msgs[i] = (struct tm_case){
			"Re: deep", strs[2 * i], full ? strs[2 * i + 1] : NULL,
			full ? NULL : strs[2 * i + 1], (int64_t)k};
	}
	for (size_t k = 0; k < count; k++)
		g_string_append_printf(want, "%s%zu", k ? " " : "",
				       reverse ? count - k : k + 1);
	g_string_append(want, ")");
	got = thread_answer(IMAP_THREAD_REFERENCES, msgs, count);
	g_assert_cmpstr(got, ==, want->str);
	check_grammar(got, count);
	g_free(got);
	g_string_free(want, TRUE);
	for (size_t i = 0; i < count * 2; i++)
		g_free(strs[i]);
	g_free(strs);
	g_free(msgs);
}

static void
test_deep_chains(void)
{
	deep_chain(100000, false, false);
	deep_chain(100000, true, false);
	deep_chain(20000, false, true);
	deep_chain(20000, true, true);
}

/* One message whose References hold 100,000 IDs: only the last
 * IMAP_THREAD_REFS_MAX are linked. */
static void
test_huge_references(void)
{
	GString *refs = g_string_new(NULL);
	struct tm_case msgs[2];
	char *got;

	for (int i = 0; i < 100000; i++)
		g_string_append_printf(refs, "<%d@huge> ", i);
	msgs[0] = (struct tm_case){"x", "<99999@huge>", NULL, NULL, 100};
	msgs[1] = (struct tm_case){"y", "<me@huge>", refs->str, NULL, 200};
	got = thread_answer(IMAP_THREAD_REFERENCES, msgs, 2);
	/* 99999 is the last reference: the parent */
	g_assert_cmpstr(got, ==, "(1 2)");
	g_free(got);
	msgs[0].id = "<99899@huge>"; /* 101st from the end: forgotten */
	got = thread_answer(IMAP_THREAD_REFERENCES, msgs, 2);
	g_assert_cmpstr(got, ==, "(1)(2)");
	g_free(got);
	msgs[0].id = "<99900@huge>"; /* 100th from the end: kept */
	got = thread_answer(IMAP_THREAD_REFERENCES, msgs, 2);
	g_assert_cmpstr(got, ==, "(1 2)");
	g_free(got);
	g_string_free(refs, TRUE);
}

/* Random messages over a small space of IDs and subjects: whatever the
 * links, loops and merges, every message is in the answer once and the
 * answer follows the grammar. */
static void
test_random(void)
{
	GRand *rnd = g_rand_new_with_seed(5256);

	for (int round = 0; round < 300; round++) {
		size_t n = (size_t)g_rand_int_range(rnd, 1, 60);
		struct tm_case *msgs = g_new0(struct tm_case, n);
		GPtrArray *strs = g_ptr_array_new_with_free_func(g_free);
		static const char *const subjects[] = {
			"a", "Re: a", "b",       "Fwd: b",
			"",  "[x] c", "c (fwd)", NULL,
		};

		for (size_t i = 0; i < n; i++) {
			GString *refs = g_string_new(NULL);
			int nrefs = g_rand_int_range(rnd, 0, 6);
			char *id =
				g_rand_boolean(rnd)
					? g_strdup_printf(
						  "<%d@r>",
						  g_rand_int_range(rnd, 0, 40))
					: NULL;

			for (int j = 0; j < nrefs; j++)
				g_string_append_printf(
					refs, "<%d@r> ",
					g_rand_int_range(rnd, 0, 40));
			msgs[i] = (struct tm_case){
				subjects[g_rand_int_range(
					rnd, 0, G_N_ELEMENTS(subjects))],
				id, refs->str, NULL,
				g_rand_int_range(rnd, 0, 20)};
			g_ptr_array_add(strs, id);
			g_ptr_array_add(strs, g_string_free(refs, FALSE));
		}
		for (int alg = 0; alg < 2; alg++) {
			char *got = thread_answer((enum imap_thread_alg)alg,
						  msgs, n);

			check_grammar(got, n);
			g_free(got);
		}
		g_ptr_array_free(strs, TRUE);
		g_free(msgs);
	}
	g_rand_free(rnd);
}

static void
test_alg_parse(void)
{
	struct parsed ps;
	enum imap_thread_alg alg;

	parse_command("a THREAD references orderedsubject REFS \"REFERENCES\"",
		      &ps);
	g_assert_true(imap_thread_alg_parse(&ps.cmd->args[0], &alg));
	g_assert_cmpint(alg, ==, IMAP_THREAD_REFERENCES);
	g_assert_true(imap_thread_alg_parse(&ps.cmd->args[1], &alg));
	g_assert_cmpint(alg, ==, IMAP_THREAD_ORDEREDSUBJECT);
	g_assert_false(imap_thread_alg_parse(&ps.cmd->args[2], &alg));
	g_assert_false(imap_thread_alg_parse(&ps.cmd->args[3], &alg));
	g_assert_false(imap_thread_alg_parse(NULL, &alg));
	imap_parser_free(&ps.p);
}

static int
cmp_u32(const void *ctx, uint32_t a, uint32_t b)
{
	const uint32_t *keys = ctx;

	if (keys[a] != keys[b])
		return keys[a] < keys[b] ? -1 : 1;
	return 0; /* ties: the sort must keep them in order */
}

static void
test_sort_indices(void)
{
	GRand *rnd = g_rand_new_with_seed(42);

	for (size_t n = 0; n < 300; n += 7) {
		uint32_t *keys = g_new(uint32_t, n + 1);
		uint32_t *v = g_new(uint32_t, n + 1);

		for (size_t i = 0; i < n; i++) {
			keys[i] = (uint32_t)g_rand_int_range(rnd, 0, 10);
			v[i] = (uint32_t)i;
		}
		imap_sort_indices(v, n, cmp_u32, keys);
		for (size_t i = 1; i < n; i++) {
			g_assert_cmpuint(keys[v[i - 1]], <=, keys[v[i]]);
			if (keys[v[i - 1]] == keys[v[i]])
				g_assert_cmpuint(v[i - 1], <, v[i]);
		}
		g_free(keys);
		g_free(v);
	}
	g_rand_free(rnd);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/imap/sort/base-subject", test_base_subject);
	g_test_add_func("/imap/sort/base-subject/bytes",
			test_base_subject_bytes);
	g_test_add_func("/imap/sort/base-subject/blobs",
			test_base_subject_blobs);
	g_test_add_func("/imap/sort/collate", test_collate);
	g_test_add_func("/imap/sort/indices", test_sort_indices);
	g_test_add_func("/imap/sort/parse", test_sort_parse);
	g_test_add_func("/imap/sort/criteria", test_criteria);
	g_test_add_func("/imap/sort/format", test_format_numbers);
	g_test_add_func("/imap/sort/keys", test_sort_keys);
	g_test_add_func("/imap/thread/alg", test_alg_parse);
	g_test_add_func("/imap/thread/msgid", test_msgid);
	g_test_add_func("/imap/thread/msgid/long", test_msgid_long);
	g_test_add_func("/imap/thread/orderedsubject", test_orderedsubject);
	g_test_add_func("/imap/thread/references", test_references);
	g_test_add_func("/imap/thread/references/subjects",
			test_references_subjects);
	g_test_add_func("/imap/thread/references/loops", test_references_loops);
	g_test_add_func("/imap/thread/references/dummies",
			test_references_dummies);
	g_test_add_func("/imap/thread/references/deep", test_deep_chains);
	g_test_add_func("/imap/thread/references/huge", test_huge_references);
	g_test_add_func("/imap/thread/random", test_random);
	return g_test_run();
}
