/* test-imap-search.c - SEARCH programs: parsing, matching, result lines.
 *
 * Commands go through the real IMAP command parser ("a SEARCH " + the
 * arguments, literals included), so what is tested is what the session
 * will hand over. Messages for content keys are stored as the mailstore
 * stores them (CRLF), parsed by the real MIME parser and sent through the
 * index blob and back, as in test-imap-fetch. */
#include "config.h"

#include <glib.h>
#include <string.h>

#include <moonpost/mime.h>

#include "imap-parser.h"
#include "imap-search.h"

#define NOW 1700000000 /* 2023-11-14 22:13:20 UTC */

/* --- parsing through the command parser ---------------------------------- */

static struct imap_search_context
default_ctx(void)
{
	struct imap_search_context ctx = {
		.messages = 10,
		.last_uid = 100,
		.now = NOW,
		.max_ranges = 100,
	};
	return ctx;
}

/* Runs "a SEARCH <args>" through the parser (lines split at CRLF, held
 * literals fed whole) and its arguments through imap_search_parse(). */
static enum imap_search_status
parse_ctx(const struct imap_search_context *ctx, const char *args,
	  struct imap_search_program **prog_r, struct imap_search_error *err)
{
	struct imap_parser_limits lim;
	struct imap_parser *p;
	char *cmd = g_strconcat("a SEARCH ", args, NULL);
	const char *pos = cmd, *end = cmd + strlen(cmd);
	enum imap_parse_result r = IMAP_PARSE_ERROR;
	enum imap_search_status st;

	imap_parser_limits_init(&lim, true);
	lim.depth_max = IMAP_DEPTH_CAP;
	p = imap_parser_new(&lim, IMAP_PARSER_UTF8 | IMAP_PARSER_LITERAL_PLUS);
	for (;;) {
		const char *nl = strstr(pos, "\r\n");
		size_t len = nl != NULL ? (size_t)(nl - pos) : strlen(pos);
		const struct imap_literal *lit;

		r = imap_parser_feed_line(p, pos, len, 0);
		pos += len + (nl != NULL ? 2 : 0);
		if (r != IMAP_PARSE_NEED_LITERAL)
			break;
		/* the line after a literal may be empty */
		lit = imap_parser_literal(p);
		g_assert_cmpint(lit->use, ==, IMAP_LITERAL_HOLD);
		g_assert_cmpuint(lit->size, <=, (size_t)(end - pos));
		r = imap_parser_literal_data(p, pos, lit->size);
		g_assert_cmpint(r, ==, IMAP_PARSE_NEED_LINE);
		pos += lit->size;
	}
	if (r != IMAP_PARSE_COMPLETE)
		g_error("parser: %s: %s", args, imap_parser_error(p)->text);
	st = imap_search_parse(imap_parser_command(p)->args,
			       imap_parser_command(p)->count, ctx, prog_r, err);
	imap_parser_free(&p);
	g_free(cmd);
	return st;
}

static struct imap_search_program *
parse_ok(const char *args)
{
	struct imap_search_context ctx = default_ctx();
	struct imap_search_program *prog;
	struct imap_search_error err;

	if (parse_ctx(&ctx, args, &prog, &err) != IMAP_SEARCH_OK)
		g_error("%s: %s", args, err.text);
	return prog;
}

/* Parses args, which must fail with st, code (NULL: none) and a text
 * containing text_part. */
static void
parse_fails(const struct imap_search_context *ctx, const char *args,
	    enum imap_search_status want, const char *code,
	    const char *text_part)
{
	struct imap_search_program *prog = (void *)1;
	struct imap_search_error err;
	enum imap_search_status st = parse_ctx(ctx, args, &prog, &err);

	if (st != want)
		g_error("%s: status %d, want %d", args, st, want);
	g_assert_null(prog);
	g_assert_cmpstr(err.code, ==, code);
	g_assert_nonnull(err.text);
	if (strstr(err.text, text_part) == NULL)
		g_error("%s: \"%s\" lacks \"%s\"", args, err.text, text_part);
}

static void
bad(const char *args, const char *code, const char *text_part)
{
	struct imap_search_context ctx = default_ctx();

	parse_fails(&ctx, args, IMAP_SEARCH_BAD, code, text_part);
}

static void
test_parse_keys(void)
{
	static const char *const ok[] = {
		"ALL",
		"all",
		"ANSWERED BCC x BEFORE 1-Feb-1994 BODY \"y z\" CC x",
		"DELETED DRAFT FLAGGED FROM {3+}\r\nabc",
		"HEADER X-Spam \"\" KEYWORD $Junk LARGER 100 NEW NOT SEEN",
		"OLD ON 01-jan-2020 OR SEEN FLAGGED RECENT SEEN",
		"SENTBEFORE \"1-Feb-1994\" SENTON 2-FEB-1994 SENTSINCE "
		"3-Mar-1999",
		"SINCE 29-Feb-2000 SMALLER 0 SUBJECT hello TEXT x TO y",
		"UID 1:*,5 UNANSWERED UNDELETED UNDRAFT UNFLAGGED",
		"UNKEYWORD foo UNSEEN 1,3:5,*",
		"(SEEN (FLAGGED (DRAFT))) NOT (OR 1 2)",
		"MODSEQ 0",
		"MODSEQ \"/flags/\\\\draft\" all 620162338",
		"MODSEQ \"/flags/$Junk\" priv 9223372036854775807",
		"OLDER 3600 YOUNGER 1",
		"CHARSET UTF-8 SUBJECT \"\xc3\xa4\"",
		"CHARSET us-ascii ALL",
		"CHARSET \"UTF-8\" ALL",
		"RETURN (MIN MAX ALL COUNT SAVE) ALL",
		"RETURN () CHARSET UTF-8 ALL",
		"LARGER 9223372036854775807",
		"HEADER {7+}\r\nSubject {0+}\r\n",
	};
	struct imap_search_program *prog;

	for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
		prog = parse_ok(ok[i]);
		imap_search_program_free(&prog);
		g_assert_null(prog);
	}
	imap_search_program_free(&prog); /* NULL is fine */
}

static void
test_parse_bad(void)
{
	bad("FOO", NULL, "Unknown search key");
	bad("NOT", NULL, "Missing search key");
	bad("OR SEEN", NULL, "Missing search key");
	bad("BEFORE", NULL, "date");
	bad("BEFORE 1-Foo-2000", NULL, "Invalid search date");
	bad("BEFORE 32-Jan-2000", NULL, "Invalid search date");
	bad("BEFORE 1-Jan-20", NULL, "Invalid search date");
	bad("BEFORE 001-Jan-2000", NULL, "Invalid search date");
	bad("SINCE 1-Jan-2000x", NULL, "Invalid search date");
	bad("LARGER x", NULL, "number");
	bad("LARGER -1", NULL, "number");
	bad("LARGER 9223372036854775808", NULL, "number");
	bad("HEADER", NULL, "string");
	bad("HEADER Subject", NULL, "string");
	bad("HEADER \"\" x", NULL, "header field name");
	bad("HEADER \"a:b\" x", NULL, "header field name");
	bad("SUBJECT (x)", NULL, "string");
	bad("KEYWORD \"x\"", NULL, "flag keyword");
	bad("OLDER 0", NULL, "interval");
	bad("YOUNGER x", NULL, "number");
	bad("UID", NULL, "sequence set");
	bad("UID x", NULL, "");
	bad("0", NULL, "");
	bad("1:0", NULL, "");
	bad("()", NULL, "Empty");
	bad("\"ALL\"", NULL, "Search key expected");
	bad("MODSEQ", NULL, "mod-sequence");
	bad("MODSEQ x", NULL, "mod-sequence");
	bad("MODSEQ \"/flags/x\" 5", NULL, "entry type");
	bad("MODSEQ \"/flags/x\" bogus 5", NULL, "entry type");
	bad("MODSEQ \"/flags/x\" all", NULL, "mod-sequence");
	bad("RETURN (FOO) ALL", NULL, "RETURN option");
	bad("RETURN ALL", NULL, "RETURN needs");
	bad("RETURN (MIN)", NULL, "Missing search keys");
	bad("CHARSET", NULL, "CHARSET needs");
	bad("CHARSET UTF-8", NULL, "Missing search keys");
	bad("CHARSET UTF-8 RETURN (ALL) ALL", NULL, "Unknown search key");
	bad("ALLX", NULL, "Unknown search key");
	bad("VERYLONGUNKNOWNKEYWORD", NULL, "Unknown search key");
}

static void
test_parse_empty(void)
{
	struct imap_search_context ctx = default_ctx();
	struct imap_search_program *prog = (void *)1;
	struct imap_search_error err;

	g_assert_cmpint(imap_search_parse(NULL, 0, &ctx, &prog, &err), ==,
			IMAP_SEARCH_BAD);
	g_assert_null(prog);
	g_assert_cmpstr(err.text, ==, "Missing search keys");
}

static void
test_charset(void)
{
	struct imap_search_context ctx = default_ctx();
	struct imap_search_program *prog;
	struct imap_search_error err;

	parse_fails(&ctx, "CHARSET ISO-8859-1 ALL", IMAP_SEARCH_NO,
		    "BADCHARSET (UTF-8 US-ASCII)", "charset");
	parse_fails(&ctx, "CHARSET {5+}\r\nUTF-7 ALL", IMAP_SEARCH_NO,
		    "BADCHARSET (UTF-8 US-ASCII)", "charset");
	parse_fails(&ctx, "RETURN (ALL) CHARSET UTF8 ALL", IMAP_SEARCH_NO,
		    "BADCHARSET (UTF-8 US-ASCII)", "charset");
	/* IMAP4rev2 still takes CHARSET (RFC 9051 6.4.4) */
	ctx.flags = IMAP_SEARCH_REV2;
	g_assert_cmpint(parse_ctx(&ctx, "CHARSET UTF-8 ALL", &prog, &err), ==,
			IMAP_SEARCH_OK);
	imap_search_program_free(&prog);
	parse_fails(&ctx, "CHARSET KOI8-R ALL", IMAP_SEARCH_NO,
		    "BADCHARSET (UTF-8 US-ASCII)", "charset");
	/* RFC 6855 3: after ENABLE UTF8=ACCEPT a charset label conflicts */
	ctx.flags = IMAP_SEARCH_UTF8_ACCEPT;
	parse_fails(&ctx, "CHARSET US-ASCII ALL", IMAP_SEARCH_BAD, NULL,
		    "UTF8=ACCEPT");
	parse_fails(&ctx, "CHARSET KOI8-R ALL", IMAP_SEARCH_BAD, NULL,
		    "UTF8=ACCEPT");
	g_assert_cmpint(parse_ctx(&ctx, "CHARSET utf-8 ALL", &prog, &err), ==,
			IMAP_SEARCH_OK);
	imap_search_program_free(&prog);
}

static GString *
repeat(const char *s, unsigned n)
{
	GString *g = g_string_new(NULL);

	for (unsigned i = 0; i < n; i++)
		g_string_append(g, s);
	return g;
}

static void
test_limits(void)
{
	struct imap_search_context ctx = default_ctx();
	struct imap_search_program *prog;
	GString *s;

	/* NOT chains nest without parentheses: 64 deep is fine, 65 not */
	s = repeat("NOT ", 64);
	g_string_append(s, "SEEN");
	prog = parse_ok(s->str);
	imap_search_program_free(&prog);
	g_string_prepend(s, "NOT ");
	bad(s->str, "LIMIT", "too deep");
	g_string_free(s, TRUE);

	s = repeat("OR SEEN ", 100);
	g_string_append(s, "SEEN");
	bad(s->str, "LIMIT", "too deep");
	g_string_free(s, TRUE);

	/* a flat OR chain within depth, but too many keys */
	s = repeat("SEEN ", 1000);
	g_string_append(s, "SEEN");
	bad(s->str, "LIMIT", "Too many search keys");
	g_string_truncate(s, s->len - 5);
	prog = parse_ok(s->str);
	imap_search_program_free(&prog);
	g_string_free(s, TRUE);
	(void)ctx;
}

static void
test_limits_keys(void)
{
	struct imap_search_context ctx = default_ctx();
	struct imap_search_program *prog;
	struct imap_search_error err;

	ctx.keys_max = 3;
	g_assert_cmpint(parse_ctx(&ctx, "OR SEEN DRAFT", &prog, &err), ==,
			IMAP_SEARCH_OK);
	imap_search_program_free(&prog);
	parse_fails(&ctx, "OR SEEN (DRAFT)", IMAP_SEARCH_BAD, "LIMIT",
		    "Too many search keys");
	parse_fails(&ctx, "SEEN SEEN SEEN SEEN", IMAP_SEARCH_BAD, "LIMIT",
		    "Too many search keys");
}

static void
test_seqsets(void)
{
	struct imap_search_context ctx = default_ctx();
	struct imap_search_program *prog;
	struct imap_search_error err;
	struct imap_seqset saved = {0};
	GString *s;

	/* RFC 9051 9: a sequence number above the count is BAD */
	parse_fails(&ctx, "11", IMAP_SEARCH_BAD, NULL, "");
	parse_fails(&ctx, "1:11", IMAP_SEARCH_BAD, NULL, "");
	parse_fails(&ctx, "NOT 5,11", IMAP_SEARCH_BAD, NULL, "");
	prog = parse_ok("1:10,*");
	imap_search_program_free(&prog);
	/* UIDs above the last one are fine: they match nothing */
	prog = parse_ok("UID 1:500");
	imap_search_program_free(&prog);
	ctx.messages = 0;
	parse_fails(&ctx, "*", IMAP_SEARCH_BAD, NULL, "");
	ctx.messages = 10;

	ctx.max_ranges = 3;
	parse_fails(&ctx, "1,2,3,4", IMAP_SEARCH_BAD, "LIMIT", "");
	parse_fails(&ctx, "UID 1,2,3,4", IMAP_SEARCH_BAD, "LIMIT", "");
	g_assert_cmpint(parse_ctx(&ctx, "1,2,3", &prog, &err), ==,
			IMAP_SEARCH_OK);
	imap_search_program_free(&prog);
	ctx.max_ranges = 100;
	s = repeat("1,", 200);
	g_string_append(s, "2");
	parse_fails(&ctx, s->str, IMAP_SEARCH_BAD, "LIMIT", "");
	g_string_free(s, TRUE);

	/* "$" without a saved result matches nothing (Dovecot) */
	g_assert_cmpint(parse_ctx(&ctx, "UID $", &prog, &err), ==,
			IMAP_SEARCH_OK);
	imap_search_program_free(&prog);
	ctx.saved = &saved;
	g_assert_cmpint(parse_ctx(&ctx, "$ UID $ OR $ 1", &prog, &err), ==,
			IMAP_SEARCH_OK);
	g_assert_true(imap_search_uses_saved(prog));
	imap_search_program_free(&prog);
	g_assert_cmpint(parse_ctx(&ctx, "1 UID 2", &prog, &err), ==,
			IMAP_SEARCH_OK);
	g_assert_false(imap_search_uses_saved(prog));
	imap_search_program_free(&prog);
	parse_fails(&ctx, "$,1", IMAP_SEARCH_BAD, NULL, "");
}

static void
test_return(void)
{
	struct imap_search_context ctx = default_ctx();
	struct imap_search_program *prog;
	struct imap_search_error err;

	prog = parse_ok("ALL");
	g_assert_cmpuint(imap_search_return_options(prog), ==, 0);
	g_assert_false(imap_search_esearch(prog));
	g_assert_false(imap_search_save(prog));
	g_assert_false(imap_search_uses_modseq(prog));
	imap_search_program_free(&prog);

	prog = parse_ok("RETURN () ALL");
	g_assert_cmpuint(imap_search_return_options(prog), ==,
			 IMAP_SEARCH_RETURN_ALL);
	g_assert_true(imap_search_esearch(prog));
	imap_search_program_free(&prog);

	prog = parse_ok("return (min Max) ALL");
	g_assert_cmpuint(imap_search_return_options(prog), ==,
			 IMAP_SEARCH_RETURN_MIN | IMAP_SEARCH_RETURN_MAX);
	imap_search_program_free(&prog);

	prog = parse_ok("RETURN (SAVE) SEEN");
	g_assert_cmpuint(imap_search_return_options(prog), ==,
			 IMAP_SEARCH_RETURN_SAVE);
	g_assert_true(imap_search_save(prog));
	imap_search_program_free(&prog);

	prog = parse_ok("NOT MODSEQ 5");
	g_assert_true(imap_search_uses_modseq(prog));
	imap_search_program_free(&prog);

	/* IMAP4rev2: SEARCH answers ESEARCH, as RETURN (ALL) */
	ctx.flags = IMAP_SEARCH_REV2;
	g_assert_cmpint(parse_ctx(&ctx, "SEEN", &prog, &err), ==,
			IMAP_SEARCH_OK);
	g_assert_true(imap_search_esearch(prog));
	g_assert_cmpuint(imap_search_return_options(prog), ==,
			 IMAP_SEARCH_RETURN_ALL);
	imap_search_program_free(&prog);
	g_assert_cmpint(parse_ctx(&ctx, "RETURN (COUNT) SEEN", &prog, &err), ==,
			IMAP_SEARCH_OK);
	g_assert_cmpuint(imap_search_return_options(prog), ==,
			 IMAP_SEARCH_RETURN_COUNT);
	imap_search_program_free(&prog);
}

/* --- result lines -------------------------------------------------------- */

static char *
esearch(const char *args, const char *tag, bool uid, const uint32_t *nums,
	const uint64_t *modseqs, size_t n)
{
	struct imap_search_program *prog = parse_ok(args);
	struct mp_buf out = {0};
	struct mp_str t = {tag, tag != NULL ? strlen(tag) : 0};
	bool sent = imap_search_format_esearch(&out, prog, t, uid, nums,
					       modseqs, n);

	imap_search_program_free(&prog);
	if (!sent) {
		g_assert_cmpuint(out.len, ==, 0);
		return g_strdup("-");
	}
	return mp_buf_steal(&out);
}

static void
check_esearch(const char *args, const char *tag, bool uid, const uint32_t *nums,
	      const uint64_t *modseqs, size_t n, const char *want)
{
	char *got = esearch(args, tag, uid, nums, modseqs, n);

	g_assert_cmpstr(got, ==, want);
	free(got);
}

static void
test_format(void)
{
	static const uint32_t nums[] = {1, 2, 3, 9};
	static const uint64_t ms[] = {50, 70, 60, 55};
	struct imap_search_program *prog = parse_ok("ALL");
	struct mp_buf out = {0};

	imap_search_format_search(&out, prog, nums, ms, 4);
	g_assert_cmpstr(out.data, ==, "* SEARCH 1 2 3 9");
	mp_buf_reset(&out);
	imap_search_format_search(&out, prog, NULL, NULL, 0);
	g_assert_cmpstr(out.data, ==, "* SEARCH");
	imap_search_program_free(&prog);

	/* RFC 7162 3.1.5: the highest MODSEQ of the matched messages */
	prog = parse_ok("MODSEQ 10");
	mp_buf_reset(&out);
	imap_search_format_search(&out, prog, nums, ms, 4);
	g_assert_cmpstr(out.data, ==, "* SEARCH 1 2 3 9 (MODSEQ 70)");
	mp_buf_reset(&out);
	imap_search_format_search(&out, prog, nums, ms, 0);
	g_assert_cmpstr(out.data, ==, "* SEARCH");
	imap_search_program_free(&prog);
	mp_buf_free(&out);

	check_esearch("RETURN (MIN MAX ALL COUNT) ALL", "a1", true, nums, ms, 4,
		      "* ESEARCH (TAG \"a1\") UID MIN 1 MAX 9 ALL 1:3,9 "
		      "COUNT 4");
	check_esearch("RETURN () ALL", "A282", false, nums, ms, 4,
		      "* ESEARCH (TAG \"A282\") ALL 1:3,9");
	check_esearch("RETURN (MIN MAX ALL COUNT) ALL", "t", false, nums, ms, 0,
		      "* ESEARCH (TAG \"t\") COUNT 0");
	check_esearch("RETURN (MIN) ALL", "t", false, nums, ms, 0,
		      "* ESEARCH (TAG \"t\")");
	check_esearch("RETURN (SAVE) ALL", "t", false, nums, ms, 4, "-");
	check_esearch("RETURN (SAVE MIN) ALL", "t", false, nums, ms, 4,
		      "* ESEARCH (TAG \"t\") MIN 1");
	check_esearch("RETURN (COUNT) ALL", NULL, false, nums, ms, 4,
		      "* ESEARCH COUNT 4");
	/* MODSEQ: of MIN and MAX alone when only they are asked for */
	check_esearch("RETURN (MIN MAX) MODSEQ 1", "t", true, nums, ms, 4,
		      "* ESEARCH (TAG \"t\") UID MIN 1 MAX 9 MODSEQ 55");
	check_esearch("RETURN (MIN) MODSEQ 1", "t", true, nums, ms, 4,
		      "* ESEARCH (TAG \"t\") UID MIN 1 MODSEQ 50");
	check_esearch("RETURN (MIN COUNT) MODSEQ 1", "t", true, nums, ms, 4,
		      "* ESEARCH (TAG \"t\") UID MIN 1 COUNT 4 MODSEQ 70");
	check_esearch("RETURN (ALL) MODSEQ 1", "t", false, nums, ms, 0,
		      "* ESEARCH (TAG \"t\")");
}

static void
check_saved(const char *args, const uint32_t *uids, size_t n, const char *want)
{
	struct imap_search_program *prog = parse_ok(args);
	struct imap_seqset set = {0};
	struct mp_buf out = {0};

	imap_seqset_add(&set, 99, 99); /* emptied first */
	imap_search_saved_result(prog, uids, n, &set);
	imap_seqset_format(&out, set.ranges, set.count);
	g_assert_cmpstr(out.data != NULL ? out.data : "", ==, want);
	mp_buf_free(&out);
	imap_seqset_free(&set);
	imap_search_program_free(&prog);
}

static void
test_saved(void)
{
	static const uint32_t uids[] = {4, 5, 6, 20, 31};

	check_saved("RETURN (SAVE) ALL", uids, 5, "4:6,20,31");
	check_saved("RETURN (SAVE MIN) ALL", uids, 5, "4");
	check_saved("RETURN (SAVE MAX) ALL", uids, 5, "31");
	check_saved("RETURN (SAVE MIN MAX) ALL", uids, 5, "4,31");
	check_saved("RETURN (SAVE MIN COUNT) ALL", uids, 5, "4:6,20,31");
	check_saved("RETURN (SAVE MIN) ALL", uids, 0, "");
}

/* --- messages --------------------------------------------------------------
 */

struct tmsg {
	struct ms_msg meta;
	bool recent;
	GString *data;                /* stored bytes, CRLF; may be NULL */
	struct mp_mime_message *mime; /* parsed from data */
	size_t max_read;              /* bytes per read call; 0: any */
	bool fail_mime, fail_read;
	unsigned mime_calls, read_calls;
};

static const struct mp_mime_message *
tmsg_mime(void *ctx, const char **error_r)
{
	struct tmsg *m = ctx;

	m->mime_calls++;
	if (m->fail_mime || m->mime == NULL) {
		*error_r = "no structure";
		return NULL;
	}
	return m->mime;
}

static ssize_t
tmsg_read(void *ctx, uint64_t off, void *buf, size_t len, const char **error_r)
{
	struct tmsg *m = ctx;

	m->read_calls++;
	if (m->fail_read || m->data == NULL) {
		*error_r = "read failed";
		return -1;
	}
	if (off >= m->data->len)
		return 0;
	if (len > m->data->len - off)
		len = m->data->len - (size_t)off;
	if (m->max_read > 0 && len > m->max_read)
		len = m->max_read;
	memcpy(buf, m->data->str + off, len);
	return (ssize_t)len;
}

static GString *
to_crlf(const char *in, size_t len)
{
	GString *out = g_string_sized_new(len + len / 16);
	bool last_cr = false;

	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\n' && !last_cr)
			g_string_append_c(out, '\r');
		g_string_append_c(out, in[i]);
		last_cr = in[i] == '\r';
	}
	return out;
}

/* Stores text as the mailstore would and parses it through the index
 * blob. */
static void
tmsg_set_text(struct tmsg *m, const char *text, size_t len)
{
	struct mp_mime_parser *p = mp_mime_parser_new(NULL);
	struct mp_mime_message *parsed;
	struct mp_buf blob = {0};
	const char *error = NULL;

	m->data = to_crlf(text, len);
	mp_mime_parser_feed(p, m->data->str, m->data->len);
	parsed = mp_mime_parser_finish(&p);
	mp_mime_serialize(parsed, &blob);
	m->mime =
		mp_mime_deserialize(blob.data, blob.len, m->data->len, &error);
	g_assert_nonnull(m->mime);
	mp_mime_message_free(&parsed);
	mp_buf_free(&blob);
	m->meta.size = m->data->len;
}

static void
tmsg_clear(struct tmsg *m)
{
	if (m->data != NULL)
		g_string_free(m->data, TRUE);
	mp_mime_message_free(&m->mime);
	m->data = NULL;
}

static enum imap_search_match
tmsg_match(struct imap_search_program *prog, struct tmsg *m, uint32_t seq)
{
	struct imap_search_msg msg = {
		.seq = seq,
		.meta = &m->meta,
		.recent = m->recent,
		.mime = tmsg_mime,
		.read = tmsg_read,
		.ctx = m,
	};
	const char *error = NULL;
	enum imap_search_match r = imap_search_match(prog, &msg, &error);

	g_assert_true((r == IMAP_SEARCH_ERROR) == (error != NULL));
	return r;
}

static int64_t
utc(int y, int mo, int d, int h, int mi, int s)
{
	GDateTime *dt = g_date_time_new_utc(y, mo, d, h, mi, s);
	int64_t t = g_date_time_to_unix(dt);

	g_date_time_unref(dt);
	return t;
}

/* Five messages with metadata only: content keys see no structure. */
static struct tmsg meta_box[5];

static void
meta_box_init(void)
{
	static const char *const kws[] = {"", "$Junk", "$forwarded work",
					  "work", ""};

	memset(meta_box, 0, sizeof(meta_box));
	for (int i = 0; i < 5; i++) {
		struct ms_msg *m = &meta_box[i].meta;

		m->uid = 10 * (i + 1);
		m->modseq = 100 + 10 * i;
		m->size = 1000 * (i + 1);
		m->keywords = kws[i];
		meta_box[i].recent = i >= 3;
	}
	meta_box[0].meta.flags = MS_FLAG_SEEN;
	meta_box[1].meta.flags = MS_FLAG_SEEN | MS_FLAG_ANSWERED;
	meta_box[2].meta.flags = MS_FLAG_FLAGGED | MS_FLAG_DELETED;
	meta_box[3].meta.flags = MS_FLAG_DRAFT;
	meta_box[4].meta.flags = 0;
	/* 1: 2003-07-01 23:30 UTC, stored in +0200: 2 Jul there */
	meta_box[0].meta.internal_date = utc(2003, 7, 1, 23, 30, 0);
	meta_box[0].meta.tz_minutes = 120;
	/* 2: 2003-07-02 00:30 UTC, stored in -0500: 1 Jul there */
	meta_box[1].meta.internal_date = utc(2003, 7, 2, 0, 30, 0);
	meta_box[1].meta.tz_minutes = -300;
	meta_box[2].meta.internal_date = utc(2003, 7, 2, 12, 0, 0);
	/* 4: exactly an hour before NOW; 5: a day before */
	meta_box[3].meta.internal_date = NOW - 3600;
	meta_box[4].meta.internal_date = NOW - 86400;
}

/* The sequence numbers of meta_box that match args, "1 3"; checks that
 * a metadata-only program called no content callback. */
static char *
meta_search(const char *args)
{
	struct imap_search_context ctx = default_ctx();
	struct imap_search_program *prog;
	struct imap_search_error err;
	struct imap_seqset saved = {0};
	GString *out = g_string_new(NULL);
	bool content;

	ctx.messages = 5;
	ctx.last_uid = 50;
	imap_seqset_add(&saved, 20, 30);
	ctx.saved = &saved;
	if (parse_ctx(&ctx, args, &prog, &err) != IMAP_SEARCH_OK)
		g_error("%s: %s", args, err.text);
	content = imap_search_needs_content(prog);
	for (uint32_t i = 0; i < 5; i++) {
		meta_box[i].mime_calls = meta_box[i].read_calls = 0;
		if (tmsg_match(prog, &meta_box[i], i + 1) == IMAP_SEARCH_MATCH)
			g_string_append_printf(out, "%s%u", out->len ? " " : "",
					       i + 1);
		if (!content) {
			g_assert_cmpuint(meta_box[i].mime_calls, ==, 0);
			g_assert_cmpuint(meta_box[i].read_calls, ==, 0);
		}
	}
	imap_search_program_free(&prog);
	imap_seqset_free(&saved);
	return g_string_free(out, FALSE);
}

static void
check_meta(const char *args, const char *want)
{
	char *got = meta_search(args);

	if (strcmp(got, want) != 0)
		g_error("SEARCH %s: got \"%s\", want \"%s\"", args, got, want);
	g_free(got);
}

static void
test_match_meta(void)
{
	meta_box_init();
	check_meta("ALL", "1 2 3 4 5");
	check_meta("SEEN", "1 2");
	check_meta("UNSEEN", "3 4 5");
	check_meta("ANSWERED", "2");
	check_meta("UNANSWERED", "1 3 4 5");
	check_meta("FLAGGED", "3");
	check_meta("UNFLAGGED", "1 2 4 5");
	check_meta("DELETED", "3");
	check_meta("UNDELETED", "1 2 4 5");
	check_meta("DRAFT", "4");
	check_meta("UNDRAFT", "1 2 3 5");
	check_meta("RECENT", "4 5");
	check_meta("NEW", "4 5");
	check_meta("OLD", "1 2 3");
	check_meta("KEYWORD work", "3 4");
	check_meta("KEYWORD $JUNK", "2");
	check_meta("KEYWORD wor", "");
	check_meta("UNKEYWORD work", "1 2 5");
	check_meta("KEYWORD $Forwarded", "3");
	check_meta("LARGER 2000", "3 4 5");
	check_meta("SMALLER 2000", "1");
	check_meta("LARGER 1000 SMALLER 4000", "2 3");
	check_meta("MODSEQ 120", "3 4 5");
	check_meta("MODSEQ \"/flags/\\\\Seen\" shared 130", "4 5");
	check_meta("2:3", "2 3");
	check_meta("*", "5");
	check_meta("4:*", "4 5");
	check_meta("UID 20,40:*", "2 4 5");
	check_meta("UID 60:*", "5"); /* '*' is the last UID: 50:60 */
	check_meta("UID 51:55", "");
	check_meta("$", "2 3");
	check_meta("UID $", "2 3");
	check_meta("NOT $", "1 4 5");
	/* internal dates in the zone they were stored with */
	check_meta("ON 2-Jul-2003", "1 3");
	check_meta("ON 1-Jul-2003", "2");
	check_meta("BEFORE 2-Jul-2003", "2");
	check_meta("SINCE 2-Jul-2003", "1 3 4 5");
	check_meta("SINCE 02-JUL-2003 BEFORE \"3-jul-2003\"", "1 3");
	/* WITHIN: OLDER takes the bound itself, as Dovecot */
	check_meta("YOUNGER 3600", "4");
	check_meta("YOUNGER 3599", "");
	check_meta("OLDER 3600", "1 2 3 4 5");
	check_meta("OLDER 3601", "1 2 3 5");
	check_meta("YOUNGER 90000 OLDER 4000", "5");
}

/* No saved result: "$" matches nothing. */
static void
test_match_unsaved(void)
{
	struct imap_search_context ctx = default_ctx();
	struct imap_search_program *prog;
	struct imap_search_error err;

	meta_box_init();
	g_assert_cmpint(parse_ctx(&ctx, "$", &prog, &err), ==, IMAP_SEARCH_OK);
	for (uint32_t i = 0; i < 5; i++)
		g_assert_cmpint(tmsg_match(prog, &meta_box[i], i + 1), ==,
				IMAP_SEARCH_NOMATCH);
	imap_search_program_free(&prog);
	g_assert_cmpint(parse_ctx(&ctx, "NOT UID $", &prog, &err), ==,
			IMAP_SEARCH_OK);
	g_assert_cmpint(tmsg_match(prog, &meta_box[1], 2), ==,
			IMAP_SEARCH_MATCH);
	imap_search_program_free(&prog);
}

static void
test_match_logic(void)
{
	meta_box_init();
	check_meta("SEEN FLAGGED", "");
	check_meta("OR SEEN FLAGGED", "1 2 3");
	check_meta("NOT SEEN", "3 4 5");
	check_meta("NOT NOT SEEN", "1 2");
	check_meta("NOT (SEEN ANSWERED)", "1 3 4 5");
	check_meta("OR (SEEN ANSWERED) DRAFT", "2 4");
	check_meta("OR OR 1 2 3", "1 2 3");
	check_meta("OR 1 OR 2 OR 3 4", "1 2 3 4");
	check_meta("NOT OR 1 NOT 2", "2");
	check_meta("(((SEEN)))", "1 2");
	check_meta("1:4 NOT 2 UNSEEN", "3 4");
	check_meta("OR NOT RECENT FLAGGED KEYWORD work", "3");
}

/* Deep chains match as they parse: NOT^64 and nested ORs. */
static void
test_match_deep(void)
{
	GString *s;
	char *got;

	meta_box_init();
	s = repeat("NOT ", 64);
	g_string_append(s, "SEEN");
	got = meta_search(s->str);
	g_assert_cmpstr(got, ==, "1 2");
	g_free(got);
	g_string_free(s, TRUE);

	s = repeat("OR 1 ", 63);
	g_string_append(s, "5");
	got = meta_search(s->str);
	g_assert_cmpstr(got, ==, "1 5");
	g_free(got);
	g_string_free(s, TRUE);
}

/* --- content ----------------------------------------------------------- */

static const char mail_multi[] =
	"From: =?iso-8859-1?q?J=F6rg_M=FCller?= <jm@example.org>\n"
	"To: alice@example.org, \"Bob B.\" <bob@example.net>\n"
	"Cc: =?utf-8?b?w4FsdmFybw==?= <alvaro@example.es>\n"
	"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus =?ISO-8859-7?B?wcjH3U4=?=\n"
	"Date: Tue, 1 Jul 2003 23:52:37 -0700 (PDT)\n"
	"X-Empty:\n"
	"X-Folded: first\n"
	"  second\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/mixed; boundary=\"xx\"\n"
	"\n"
	"preamble needle-pre\n"
	"--xx\n"
	"Content-Type: text/plain; charset=iso-8859-1\n"
	"Content-Transfer-Encoding: quoted-printable\n"
	"\n"
	"Gr=FC=DFe aus K=F6ln, caf=E9 au lait. Soft=\n"
	"break here.\n"
	"--xx\n"
	"Content-Type: text/html; charset=utf-8\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"PHA+zqPOmc6jzqTOl86czpEg0J/RgNC40LLQtdGCINC80LjRgDwvcD4=\n"
	"--xx\n"
	"Content-Type: application/octet-stream\n"
	"\n"
	"attachment-secret\n"
	"--xx\n"
	"Content-Type: text/plain; charset=x-unknown-charset\n"
	"\n"
	"raw \xe9t\xe9 bytes\n"
	"--xx\n"
	"Content-Type: message/rfc822\n"
	"\n"
	"Subject: inner subject\n"
	"\n"
	"inner body words\n"
	"--xx--\n";

static const char mail_plain[] = "From: someone@example.com\n"
				 "Subject: no date here\n"
				 "\n"
				 "Just text.\n";

struct content_box {
	struct tmsg m[2];
};

static void
content_init(struct content_box *b)
{
	memset(b, 0, sizeof(*b));
	tmsg_set_text(&b->m[0], mail_multi, sizeof(mail_multi) - 1);
	tmsg_set_text(&b->m[1], mail_plain, sizeof(mail_plain) - 1);
	b->m[0].meta.uid = 1;
	b->m[1].meta.uid = 2;
	b->m[0].meta.keywords = b->m[1].meta.keywords = "";
	/* 2003-07-03 01:00 UTC, +0000 */
	b->m[0].meta.internal_date = utc(2003, 7, 3, 1, 0, 0);
	/* 2010-05-05 23:00 UTC stored at -0100: still 5 May there */
	b->m[1].meta.internal_date = utc(2010, 5, 5, 23, 0, 0);
	b->m[1].meta.tz_minutes = -60;
}

static void
content_clear(struct content_box *b)
{
	tmsg_clear(&b->m[0]);
	tmsg_clear(&b->m[1]);
}

static char *
content_search(struct content_box *b, const char *args)
{
	struct imap_search_program *prog = parse_ok(args);
	GString *out = g_string_new(NULL);

	for (uint32_t i = 0; i < 2; i++) {
		enum imap_search_match r = tmsg_match(prog, &b->m[i], i + 1);

		g_assert_cmpint(r, !=, IMAP_SEARCH_ERROR);
		if (r == IMAP_SEARCH_MATCH)
			g_string_append_printf(out, "%s%u", out->len ? " " : "",
					       i + 1);
	}
	imap_search_program_free(&prog);
	return g_string_free(out, FALSE);
}

static void
check_content(struct content_box *b, const char *args, const char *want)
{
	char *got = content_search(b, args);

	if (strcmp(got, want) != 0)
		g_error("SEARCH %s: got \"%s\", want \"%s\"", args, got, want);
	g_free(got);
}

static void
test_match_header(void)
{
	struct content_box b;

	content_init(&b);
	check_content(&b, "FROM jm@example", "1");
	check_content(&b, "FROM \"j\xc3\xb6rg m\xc3\xbcller\"", "1");
	check_content(&b, "FROM \"J\xc3\x96RG\"", "1"); /* Ö folds to ö */
	check_content(&b, "FROM SOMEONE", "2");
	check_content(&b, "FROM \"=?iso\"", "");
	check_content(&b, "TO bob@example.net", "1");
	check_content(&b, "TO \"Bob B.\"", "1");
	check_content(&b, "CC \"\xc3\xa1lvaro\"", "1");
	check_content(&b, "CC \"\xc3\x81LVARO\"", "1");
	check_content(&b, "BCC x", "");
	check_content(&b,
		      "SUBJECT \"gr\xc3\xbc\xc3\x9f"
		      "e\"",
		      "1");
	/* "ΑΘΗέN" in ISO-8859-7, folded */
	check_content(&b, "SUBJECT \"\xce\xb1\xce\xb8\xce\xb7\"", "1");
	check_content(&b, "SUBJECT \"no DATE\"", "2");
	check_content(&b, "SUBJECT inner", "");
	check_content(&b, "HEADER X-Empty \"\"", "1");
	check_content(&b, "HEADER x-empty x", "");
	check_content(&b, "HEADER X-Folded first", "1");
	check_content(&b, "HEADER X-Folded second", "1");
	check_content(&b, "HEADER X-Missing \"\"", "");
	check_content(&b, "HEADER Subject \"\"", "1 2");
	check_content(&b, "HEADER {4+}\r\nDATE {4+}\r\n2003", "1");
	check_content(&b, "OR FROM jm SUBJECT date", "1 2");
	check_content(&b, "NOT FROM jm", "2");
	content_clear(&b);
}

static void
test_match_sent(void)
{
	struct content_box b;

	content_init(&b);
	/* the Date's own day, 1 Jul in -0700, though 2 Jul in UTC */
	check_content(&b, "SENTON 1-Jul-2003", "1");
	check_content(&b, "SENTBEFORE 2-Jul-2003", "1");
	check_content(&b, "SENTSINCE 2-Jul-2003", "2");
	/* no Date: the internal date, in its zone */
	check_content(&b, "SENTON 5-May-2010", "2");
	check_content(&b, "SENTON 6-May-2010", "");
	check_content(&b, "ON 3-Jul-2003", "1");
	check_content(&b, "SENTSINCE 1-Jul-2003 SENTBEFORE 1-Jan-2004", "1");
	content_clear(&b);
}

static void
test_match_body(void)
{
	struct content_box b;

	content_init(&b);
	/* QP in ISO-8859-1, soft line break undone */
	check_content(&b,
		      "BODY \"gr\xc3\xbc\xc3\x9f"
		      "e aus k\xc3\xb6ln\"",
		      "1");
	check_content(&b, "BODY \"CAF\xc3\x89 AU LAIT\"", "1");
	check_content(&b, "BODY \"softbreak\"", "1");
	check_content(&b, "BODY \"=FC\"", "");
	/* base64 UTF-8: Greek and Cyrillic folded */
	check_content(&b, "BODY \"\xcf\x83\xce\xb9\xcf\x83\xcf\x84\xce\xb7\"",
		      "1");
	check_content(&b, "BODY \"\xd0\x9f\xd0\xa0\xd0\x98\xd0\x92\xd0\x95\"",
		      "1");
	check_content(&b, "BODY \"<P>\"", "1");
	check_content(&b, "BODY PHA", "");
	/* an unknown charset is searched as raw bytes */
	check_content(&b, "BODY {7+}\r\nraw \xe9t\xe9", "1");
	/* not text: not searched */
	check_content(&b, "BODY attachment-secret", "");
	/* parts of an attached message are */
	check_content(&b, "BODY \"inner body\"", "1");
	/* BODY is not the header; TEXT is both */
	check_content(&b, "BODY alice", "");
	check_content(&b, "TEXT alice", "1");
	check_content(&b, "TEXT \"m\xc3\xbcller\"", "1");
	check_content(&b, "TEXT \"JUST TEXT\"", "2");
	check_content(&b, "TEXT \"subject: no date\"", "2");
	/* TEXT also reads the header of an attached message */
	check_content(&b, "TEXT \"inner subject\"", "1");
	check_content(&b, "BODY \"inner subject\"", "");
	check_content(&b, "BODY \"\"", "1 2");
	check_content(&b, "TEXT \"\"", "1 2");
	check_content(&b, "NOT BODY just", "1");
	check_content(&b, "BODY preamble", "");
	content_clear(&b);
}

/* A body whose needle straddles the read chunk edge at every offset
 * around it, in plain, QP and base64 bodies, read in short pieces. */
static GString *
big_body(size_t at, const char *needle, const char *cte)
{
	GString *body = g_string_new(NULL), *mail;
	char *enc;

	for (size_t i = 0; body->len < at; i++)
		g_string_append_c(body, "abcdefghij"[i % 10]);
	g_string_truncate(body, at);
	g_string_append(body, needle);
	for (size_t i = 0; i < 3000; i++)
		g_string_append_c(body, 'z');
	mail = g_string_new(NULL);
	g_string_append_printf(mail,
			       "Subject: big\nContent-Type: text/plain; "
			       "charset=utf-8\nContent-Transfer-Encoding: "
			       "%s\n\n",
			       cte);
	if (strcmp(cte, "base64") == 0) {
		enc = g_base64_encode((const guchar *)body->str, body->len);
		for (size_t i = 0, n = strlen(enc); i < n; i += 76)
			g_string_append_printf(mail, "%.76s\n", enc + i);
		g_free(enc);
	} else {
		g_string_append_len(mail, body->str, (gssize)body->len);
		g_string_append_c(mail, '\n');
	}
	g_string_free(body, TRUE);
	return mail;
}

static void
chunk_case(const char *cte, size_t at, size_t max_read)
{
	/* "Ünïcödé" across the edge: multi-byte characters split */
	static const char needle[] = "\xc3\x9cn\xc3\xaf"
				     "c\xc3\xb6"
				     "d\xc3\xa9";
	GString *mail = big_body(at, needle, cte);
	struct tmsg m = {0};
	struct imap_search_program *hit = parse_ok("BODY \"\xc3\xbcN\xc3\x8f"
						   "C\xc3\x96"
						   "D\xc3\x89\"");
	struct imap_search_program *miss = parse_ok("BODY \"\xc3\xbcn\xc3\xaf"
						    "cx\"");

	m.meta.keywords = "";
	tmsg_set_text(&m, mail->str, mail->len);
	m.max_read = max_read;
	g_assert_cmpint(tmsg_match(hit, &m, 1), ==, IMAP_SEARCH_MATCH);
	g_assert_cmpint(tmsg_match(miss, &m, 1), ==, IMAP_SEARCH_NOMATCH);
	imap_search_program_free(&hit);
	imap_search_program_free(&miss);
	tmsg_clear(&m);
	g_string_free(mail, TRUE);
}

static void
test_match_chunks(void)
{
	/* Chunks of IMAP_SEARCH_CHUNK (8192) stored bytes from the body's
	 * start: the needle (12 bytes) at every offset around the first and
	 * second edges; base64 chunks decode to 6066 bytes or so. */
	for (size_t at = 8175; at < 8195; at++)
		chunk_case("8bit", at, 0);
	for (size_t at = 16368; at < 16388; at++)
		chunk_case("8bit", at, 0);
	for (size_t at = 6040; at < 6090; at++)
		chunk_case("base64", at, 0);
	for (size_t at = 100; at < 120; at++)
		chunk_case("quoted-printable", at, 7);
	chunk_case("8bit", 50000, 1000);
}

static void
test_match_latin1_chunks(void)
{
	/* An ISO-8859-1 part whose conversion grows each byte to two */
	GString *mail = g_string_new("Content-Type: text/plain; "
				     "charset=ISO-8859-1\n\n");
	struct imap_search_program *prog;
	struct tmsg m = {0};

	for (int i = 0; i < 9000; i++)
		g_string_append_c(mail, (char)0xe9);
	g_string_append(mail, "\xc5\xd8ksne\n");
	prog = parse_ok("BODY \"\xc3\xa9\xc3\xa9\xc3\xa5\xc3\xb8KSNE\"");
	tmsg_set_text(&m, mail->str, mail->len);
	m.meta.keywords = "";
	g_assert_cmpint(tmsg_match(prog, &m, 1), ==, IMAP_SEARCH_MATCH);
	imap_search_program_free(&prog);
	tmsg_clear(&m);
	g_string_free(mail, TRUE);
}

/* A two-byte Shift_JIS character cut by the chunk edge is put together
 * again before conversion. */
static void
test_match_sjis_chunks(void)
{
	GString *mail = g_string_new("Content-Type: text/plain; "
				     "charset=Shift_JIS\n\nx");
	size_t body_start = mail->len - 1;
	struct imap_search_program *prog;
	struct tmsg m = {0};

	/* "x", then あ (82 a0) until the edge, い (82 a2) across it */
	while (mail->len - body_start < 8190)
		g_string_append(mail, "\x82\xa0");
	g_assert_cmpuint((mail->len - body_start) % 2, ==, 1);
	g_string_append(mail, "\x82\xa2\x82\xa0\n");
	g_assert_cmpuint(mail->len - body_start, >, 8192);
	prog = parse_ok("BODY \"\xe3\x81\x82\xe3\x81\x84\xe3\x81\x82\"");
	tmsg_set_text(&m, mail->str, mail->len);
	m.meta.keywords = "";
	g_assert_cmpint(tmsg_match(prog, &m, 1), ==, IMAP_SEARCH_MATCH);
	imap_search_program_free(&prog);
	tmsg_clear(&m);
	g_string_free(mail, TRUE);
}

static void
test_match_errors(void)
{
	struct content_box b;
	struct imap_search_program *prog;

	content_init(&b);
	b.m[0].fail_read = true;
	prog = parse_ok("BODY x");
	g_assert_cmpint(tmsg_match(prog, &b.m[0], 1), ==, IMAP_SEARCH_ERROR);
	imap_search_program_free(&prog);
	prog = parse_ok("FROM x");
	g_assert_cmpint(tmsg_match(prog, &b.m[0], 1), ==, IMAP_SEARCH_ERROR);
	imap_search_program_free(&prog);
	/* SENTON needs the structure only, not the file */
	prog = parse_ok("SENTON 1-Jul-2003");
	g_assert_cmpint(tmsg_match(prog, &b.m[0], 1), ==, IMAP_SEARCH_MATCH);
	imap_search_program_free(&prog);
	/* a cheap false key decides before the file is read */
	b.m[0].read_calls = 0;
	prog = parse_ok("BODY x SEEN");
	g_assert_true(imap_search_needs_content(prog));
	g_assert_cmpint(tmsg_match(prog, &b.m[0], 1), ==, IMAP_SEARCH_NOMATCH);
	g_assert_cmpuint(b.m[0].read_calls, ==, 0);
	imap_search_program_free(&prog);
	prog = parse_ok("OR BODY x UNSEEN");
	g_assert_cmpint(tmsg_match(prog, &b.m[0], 1), ==, IMAP_SEARCH_MATCH);
	g_assert_cmpuint(b.m[0].read_calls, ==, 0);
	imap_search_program_free(&prog);
	prog = parse_ok("NOT BODY x");
	g_assert_cmpint(tmsg_match(prog, &b.m[0], 1), ==, IMAP_SEARCH_ERROR);
	imap_search_program_free(&prog);
	/* the structure decides before the file is read */
	prog = parse_ok("BODY x SENTON 2-Jul-2003");
	g_assert_cmpint(tmsg_match(prog, &b.m[0], 1), ==, IMAP_SEARCH_NOMATCH);
	imap_search_program_free(&prog);
	prog = parse_ok("BODY x SENTON 1-Jul-2003");
	g_assert_cmpint(tmsg_match(prog, &b.m[0], 1), ==, IMAP_SEARCH_ERROR);
	imap_search_program_free(&prog);
	b.m[0].fail_read = false;
	b.m[0].fail_mime = true;
	prog = parse_ok("SENTON 1-Jul-2003");
	g_assert_cmpint(tmsg_match(prog, &b.m[0], 1), ==, IMAP_SEARCH_ERROR);
	imap_search_program_free(&prog);
	content_clear(&b);
}

static void
test_needs_content(void)
{
	static const struct {
		const char *args;
		bool content;
	} cases[] = {
		{"ALL", false},
		{"SEEN NOT (OR 1 UID 5) KEYWORD x LARGER 5 ON 1-Jan-2000",
		 false},
		{"OLDER 5 YOUNGER 9 MODSEQ 4 NEW OLD RECENT", false},
		{"SENTON 1-Jan-2000", true},
		{"NOT SUBJECT x", true},
		{"OR SEEN BODY x", true},
		{"HEADER x y", true},
		{"TEXT x", true},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct imap_search_program *prog = parse_ok(cases[i].args);

		g_assert_cmpint(imap_search_needs_content(prog), ==,
				cases[i].content);
		imap_search_program_free(&prog);
	}
}

/* --- helpers ------------------------------------------------------------- */

static char *
fold(const char *s)
{
	struct mp_buf b = {0};

	g_assert_cmpuint(imap_search_fold(s, strlen(s), true, &b), ==,
			 strlen(s));
	return b.data != NULL ? mp_buf_steal(&b) : g_strdup("");
}

static void
check_fold(const char *in, const char *want)
{
	char *got = fold(in);

	g_assert_cmpstr(got, ==, want);
	free(got);
}

static void
test_fold(void)
{
	struct mp_buf b = {0};

	check_fold("ABC xyz 09", "abc xyz 09");
	check_fold("\xc3\x80\xc3\x89\xc3\x96\xc3\x9e", /* ÀÉÖÞ */
		   "\xc3\xa0\xc3\xa9\xc3\xb6\xc3\xbe");
	check_fold("\xc3\x97\xc3\x9f", "\xc3\x97\xc3\x9f"); /* × ß kept */
	check_fold("\xc4\x80\xc5\x81\xc5\xb8\xc5\xbd",      /* ĀŁŸŽ */
		   "\xc4\x81\xc5\x82\xc3\xbf\xc5\xbe");
	check_fold("\xc4\xb0", "i");                   /* İ */
	check_fold("\xce\x91\xce\xa9\xce\x86\xcf\x82", /* ΑΩΆς */
		   "\xce\xb1\xcf\x89\xce\xac\xcf\x83");
	check_fold("\xd0\x81\xd0\x96\xd0\xaf\xd1\x8f", /* ЁЖЯя */
		   "\xd1\x91\xd0\xb6\xd1\x8f\xd1\x8f");
	check_fold("\xe1\xba\xa0", "\xe1\xba\xa1"); /* Ạ */
	check_fold("\xe4\xb8\xad", "\xe4\xb8\xad");
	/* invalid bytes are copied */
	check_fold("A\xff\xc3(B", "a\xff\xc3(b");
	check_fold("\xed\xa0\x80", "\xed\xa0\x80"); /* a surrogate */
	/* an incomplete sequence at the end waits for more */
	g_assert_cmpuint(imap_search_fold("A\xc3", 2, false, &b), ==, 1);
	g_assert_cmpuint(imap_search_fold("\xe2\x82", 2, false, &b), ==, 0);
	g_assert_cmpuint(imap_search_fold("\xe2\x82", 2, true, &b), ==, 2);
	g_assert_cmpuint(b.len, ==, 3);
	mp_buf_free(&b);
}

static void
check_date(const char *s, int y, int m, int d, int64_t want_time)
{
	int32_t day;
	int64_t t;
	GDateTime *dt;

	if (!imap_search_parse_rfc5322_date(s, strlen(s), &day, &t))
		g_error("not parsed: %s", s);
	dt = g_date_time_new_utc(y, m, d, 0, 0, 0);
	g_assert_cmpint(day, ==, g_date_time_to_unix(dt) / 86400);
	g_date_time_unref(dt);
	if (want_time != 0)
		g_assert_cmpint(t, ==, want_time);
}

static void
test_rfc5322_date(void)
{
	static const char *const bad_dates[] = {
		"",
		"garbage",
		"32 Jan 2003 10:00 +0000",
		"1 Foo 2003 10:00 +0000",
		"1 Jan 2003",
		"1 Jan 2003 25:00",
		"1 Jan 2003 10:61",
		"Tue, Jul 1 2003 10:00:00 +0000",
		"1 Jan 3 10:00 +0000",
	};
	int32_t day;
	int64_t t;

	check_date("Tue, 1 Jul 2003 10:52:37 +0200", 2003, 7, 1,
		   utc(2003, 7, 1, 8, 52, 37));
	check_date("1 Jul 2003 23:52:37 -0700", 2003, 7, 1,
		   utc(2003, 7, 2, 6, 52, 37));
	check_date("tue,01 jul 2003 10:52 GMT", 2003, 7, 1,
		   utc(2003, 7, 1, 10, 52, 0));
	check_date("Tue , 1 Jul 03 10:52:37 EDT", 2003, 7, 1,
		   utc(2003, 7, 1, 14, 52, 37));
	check_date("1 Jul 99 10:52:37 PST", 1999, 7, 1,
		   utc(1999, 7, 1, 18, 52, 37));
	check_date("1 Jul 103 10:52:37 Z", 2003, 7, 1,
		   utc(2003, 7, 1, 10, 52, 37));
	check_date("Tue (day), 1 (the first) Jul 2003 10 : 52 : 37 +0000 "
		   "(UTC)",
		   2003, 7, 1, utc(2003, 7, 1, 10, 52, 37));
	check_date("29 Feb 2000 00:00:00", 2000, 2, 29, 0);
	check_date("1 Jan 1960 00:00:00 +0000", 1960, 1, 1,
		   utc(1960, 1, 1, 0, 0, 0));
	for (size_t i = 0; i < G_N_ELEMENTS(bad_dates); i++) {
		if (imap_search_parse_rfc5322_date(
			    bad_dates[i], strlen(bad_dates[i]), &day, &t))
			g_error("parsed: %s", bad_dates[i]);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/imap/search/parse/keys", test_parse_keys);
	g_test_add_func("/imap/search/parse/bad", test_parse_bad);
	g_test_add_func("/imap/search/parse/empty", test_parse_empty);
	g_test_add_func("/imap/search/parse/charset", test_charset);
	g_test_add_func("/imap/search/parse/limits", test_limits);
	g_test_add_func("/imap/search/parse/limits/keys", test_limits_keys);
	g_test_add_func("/imap/search/parse/seqset", test_seqsets);
	g_test_add_func("/imap/search/parse/return", test_return);
	g_test_add_func("/imap/search/format", test_format);
	g_test_add_func("/imap/search/format/saved", test_saved);
	g_test_add_func("/imap/search/match/meta", test_match_meta);
	g_test_add_func("/imap/search/match/unsaved", test_match_unsaved);
	g_test_add_func("/imap/search/match/logic", test_match_logic);
	g_test_add_func("/imap/search/match/deep", test_match_deep);
	g_test_add_func("/imap/search/match/header", test_match_header);
	g_test_add_func("/imap/search/match/sent", test_match_sent);
	g_test_add_func("/imap/search/match/body", test_match_body);
	g_test_add_func("/imap/search/match/chunks", test_match_chunks);
	g_test_add_func("/imap/search/match/latin1-chunks",
			test_match_latin1_chunks);
	g_test_add_func("/imap/search/match/sjis-chunks",
			test_match_sjis_chunks);
	g_test_add_func("/imap/search/match/errors", test_match_errors);
	g_test_add_func("/imap/search/needs-content", test_needs_content);
	g_test_add_func("/imap/search/fold", test_fold);
	g_test_add_func("/imap/search/rfc5322-date", test_rfc5322_date);
	return g_test_run();
}
