/* test-imap-parser.c - the IMAP command parser and sequence sets. */
#include "config.h"

#include <glib.h>
#include <string.h>

#include <moonpost/plugin.h>

#include "frame.h"
#include "imap-parser.h"
#include "imap-seqset.h"

/* A literal and its length, NUL bytes included. */
#define S(lit) lit, sizeof(lit) - 1

#define X8  "xxxxxxxx"
#define X32 X8 X8 X8 X8
#define P4  "(((("
#define C4  "))))"
#define P16 P4 P4 P4 P4
#define C16 C4 C4 C4 C4

enum lim_kind {
	LIM_AUTH = 0, /* imap_parser_limits_init(true) */
	LIM_PRE,      /* imap_parser_limits_init(false) */
	LIM_TINY,     /* every limit small */
};

enum split {
	SPLIT_WHOLE = 0, /* all input at once; discarded bytes handed over */
	SPLIT_BYTES,     /* one byte at a time; discards consumed */
	SPLIT_RANDOM,    /* random chunks */
};

/* A session in miniature: input goes through the real framer; lines go
 * to the parser, literal bytes to the parser, a stream or the bin as the
 * parser says; what happened is recorded as text. */
struct drv {
	struct imap_parser *p;
	struct imap_parser_limits lim;
	struct mp_framer f;
	GString *in;
	GString *log;
	GPtrArray *streams; /* GString per streamed literal, by index */
	enum split split;
	enum imap_literal_use use;
	uint64_t left;
	bool closed;
};

static void
limits_for(enum lim_kind kind, struct imap_parser_limits *lim)
{
	imap_parser_limits_init(lim, kind != LIM_PRE);
	if (kind != LIM_TINY)
		return;
	lim->line_max = 40;
	lim->command_max = 100;
	lim->literal_max = 10;
	lim->drain_max = 20;
	lim->depth_max = 2;
	lim->args_max = 6;
}

static void
log_sep(struct drv *d)
{
	if (d->log->len > 0)
		g_string_append(d->log, " | ");
}

static void
render_bytes(GString *out, const char *p, size_t len, bool quote)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (quote && (ch == '"' || ch == '\\'))
			g_string_append_c(out, '\\');
		if (ch < 0x20 || ch == 0x7f)
			g_string_append_printf(out, "\\x%02x", ch);
		else
			g_string_append_c(out, (char)ch);
	}
}

static void render_args(struct drv *d, GString *out,
			const struct imap_arg *args, size_t n);

static void
render_arg(struct drv *d, GString *out, const struct imap_arg *a)
{
	const struct imap_fetch_section *s;
	GString *st;

	switch (a->type) {
	case IMAP_ARG_ATOM:
		g_string_append_len(out, a->str.p, (gssize)a->str.len);
		break;
	case IMAP_ARG_NIL:
		g_string_append(out, "NIL");
		break;
	case IMAP_ARG_QUOTED:
		g_string_append_c(out, '"');
		render_bytes(out, a->str.p, a->str.len, true);
		g_string_append_c(out, '"');
		break;
	case IMAP_ARG_LITERAL:
		g_string_append_printf(out, "%s{%zu}",
				       (a->flags & IMAP_ARG_BINARY) ? "~" : "",
				       a->str.len);
		render_bytes(out, a->str.p, a->str.len, false);
		break;
	case IMAP_ARG_LITERAL_STREAMED:
		g_assert_cmpuint(a->literal.index, <, d->streams->len);
		st = g_ptr_array_index(d->streams, a->literal.index);
		g_assert_cmpuint(st->len, ==, a->literal.size);
		g_string_append_printf(
			out, "<%s#%u:", (a->flags & IMAP_ARG_BINARY) ? "~" : "",
			a->literal.index);
		render_bytes(out, st->str, st->len, false);
		g_string_append_c(out, '>');
		break;
	case IMAP_ARG_LIST:
		g_string_append_c(out, '(');
		render_args(d, out, a->list.args, a->list.count);
		g_string_append_c(out, ')');
		break;
	case IMAP_ARG_FETCH_ATT:
		s = a->section;
		g_string_append_len(out, a->str.p, (gssize)a->str.len);
		g_string_append_c(out, '[');
		g_string_append_len(out, s->spec.p, (gssize)s->spec.len);
		if (s->fields != NULL) {
			g_string_append(out, " (");
			render_args(d, out, s->fields, s->nfields);
			g_string_append_c(out, ')');
		}
		g_string_append_c(out, ']');
		if (s->partial)
			g_string_append_printf(out,
					       "<%" G_GUINT64_FORMAT
					       ".%" G_GUINT64_FORMAT ">",
					       s->offset, s->count);
		break;
	}
}

static void
render_args(struct drv *d, GString *out, const struct imap_arg *args, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (i > 0)
			g_string_append_c(out, ' ');
		render_arg(d, out, &args[i]);
	}
}

static bool
inside(struct mp_str v, struct mp_str store)
{
	return v.p >= store.p && v.len <= store.len &&
	       (size_t)(v.p - store.p) <= store.len - v.len;
}

/* Every view of the command lies in the parser's storage. */
static void
check_views(struct mp_str store, const struct imap_arg *args, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct imap_arg *a = &args[i];

		if (a->type == IMAP_ARG_LIST) {
			check_views(store, a->list.args, a->list.count);
			continue;
		}
		if (a->type == IMAP_ARG_LITERAL_STREAMED)
			continue;
		g_assert_true(inside(a->str, store));
		if (a->type == IMAP_ARG_FETCH_ATT) {
			g_assert_true(inside(a->section->spec, store));
			check_views(store, a->section->fields,
				    a->section->nfields);
		}
	}
}

static void on_result(struct drv *d, enum imap_parse_result r);

static void
literal_finished(struct drv *d, enum imap_parse_result r)
{
	if (r == IMAP_PARSE_ERROR)
		on_result(d, r);
	else
		g_assert_cmpint(r, ==, IMAP_PARSE_NEED_LINE);
	g_assert_null(imap_parser_literal(d->p));
}

static void
start_literal(struct drv *d, const struct imap_literal *lit)
{
	d->use = lit->use;
	d->left = lit->size;
	if (lit->use == IMAP_LITERAL_STREAM) {
		g_assert_cmpuint(lit->index, ==, d->streams->len);
		g_ptr_array_add(d->streams, g_string_new(NULL));
	}
	if (lit->size > 0) {
		mp_framer_expect_bytes(&d->f, lit->size);
		return;
	}
	if (lit->use == IMAP_LITERAL_HOLD)
		literal_finished(d, imap_parser_literal_data(d->p, NULL, 0));
	else
		literal_finished(d, imap_parser_literal_consumed(d->p));
}

static void
on_result(struct drv *d, enum imap_parse_result r)
{
	const struct imap_parse_error *e;
	const struct imap_command *cmd;
	const struct imap_literal *lit;

	switch (r) {
	case IMAP_PARSE_COMPLETE:
		cmd = imap_parser_command(d->p);
		check_views(imap_parser_storage(d->p), cmd->args, cmd->count);
		g_assert_true(inside(cmd->tag, imap_parser_storage(d->p)));
		log_sep(d);
		g_string_append_len(d->log, cmd->tag.p, (gssize)cmd->tag.len);
		g_string_append_printf(d->log, " %s", cmd->name);
		if (cmd->count > 0)
			g_string_append_c(d->log, ' ');
		render_args(d, d->log, cmd->args, cmd->count);
		g_ptr_array_set_size(d->streams, 0);
		break;
	case IMAP_PARSE_NEED_LITERAL:
		lit = imap_parser_literal(d->p);
		g_assert_nonnull(lit);
		if (lit->sync) {
			log_sep(d);
			g_string_append_c(d->log, '+');
		}
		if (lit->use == IMAP_LITERAL_DISCARD) {
			log_sep(d);
			g_string_append_printf(
				d->log, "drop=%" G_GUINT64_FORMAT, lit->size);
		}
		start_literal(d, lit);
		break;
	case IMAP_PARSE_ERROR:
		e = imap_parser_error(d->p);
		log_sep(d);
		g_string_append(d->log, "BAD ");
		if (e->tag.p != NULL)
			g_string_append_len(d->log, e->tag.p,
					    (gssize)e->tag.len);
		else
			g_string_append_c(d->log, '*');
		if (e->code != NULL)
			g_string_append_printf(d->log, " [%s]", e->code);
		g_string_append_printf(d->log, " %s", e->text);
		if (e->drain > 0)
			g_string_append_printf(
				d->log, " drain=%" G_GUINT64_FORMAT, e->drain);
		if (e->close)
			g_string_append(d->log, " close");
		g_ptr_array_set_size(d->streams, 0);
		if (e->close)
			d->closed = true;
		else if (e->drain > 0)
			start_literal(d, imap_parser_literal(d->p));
		break;
	case IMAP_PARSE_SKIPPED:
		log_sep(d);
		g_string_append(d->log, "skip");
		break;
	default:
		g_assert_not_reached();
	}
}

static void
on_bytes(struct drv *d, const char *data, size_t len)
{
	enum imap_parse_result r;

	d->left -= len;
	switch (d->use) {
	case IMAP_LITERAL_HOLD:
		r = imap_parser_literal_data(d->p, data, len);
		if (d->left > 0)
			g_assert_cmpint(r, ==, IMAP_PARSE_NEED_DATA);
		else
			literal_finished(d, r);
		return;
	case IMAP_LITERAL_STREAM:
		g_string_append_len(
			g_ptr_array_index(d->streams, d->streams->len - 1),
			data, (gssize)len);
		if (d->left == 0)
			literal_finished(d, imap_parser_literal_consumed(d->p));
		return;
	case IMAP_LITERAL_DISCARD:
		if (d->split == SPLIT_WHOLE) {
			r = imap_parser_literal_data(d->p, data, len);
			g_assert_cmpint(r, ==,
					d->left > 0 ? IMAP_PARSE_NEED_DATA
						    : IMAP_PARSE_NEED_LINE);
		} else if (d->left == 0) {
			literal_finished(d, imap_parser_literal_consumed(d->p));
		}
		return;
	}
}

static void
pump(struct drv *d)
{
	size_t off = 0;

	while (!d->closed) {
		struct mp_frame fr;

		mp_framer_next(&d->f, d->in->str + off, d->in->len - off, &fr);
		if (fr.kind == MP_FRAME_NEED_MORE)
			break;
		if (fr.kind == MP_FRAME_SKIP) {
			off += fr.consumed;
		} else if (fr.kind == MP_FRAME_LINE) {
			off += fr.consumed;
			on_result(d, imap_parser_feed_line(d->p, fr.data,
							   fr.len, fr.flags));
		} else {
			on_bytes(d, fr.data, fr.len);
			off += fr.len;
			mp_framer_bytes_used(&d->f, fr.len);
		}
	}
	g_string_erase(d->in, 0, (gssize)off);
}

static void
free_stream(gpointer s)
{
	g_string_free(s, TRUE);
}

static void
drv_init(struct drv *d, enum lim_kind kind, unsigned flags, enum split split)
{
	memset(d, 0, sizeof(*d));
	limits_for(kind, &d->lim);
	d->p = imap_parser_new(&d->lim, flags);
	/* The framer allows twice the parser's line, so both limits show. */
	mp_framer_init(&d->f, d->lim.line_max * 2);
	d->in = g_string_new(NULL);
	d->log = g_string_new(NULL);
	d->streams = g_ptr_array_new_with_free_func(free_stream);
	d->split = split;
}

static char *
drv_free(struct drv *d)
{
	imap_parser_free(&d->p);
	g_assert_null(d->p);
	g_string_free(d->in, TRUE);
	g_ptr_array_free(d->streams, TRUE);
	return g_string_free(d->log, FALSE);
}

/* Feeds input as the split says and returns the log. */
static char *
run(enum lim_kind kind, unsigned flags, const char *input, size_t len,
    enum split split, guint32 seed)
{
	GRand *rand = g_rand_new_with_seed(seed);
	struct drv d;
	size_t pos = 0;

	drv_init(&d, kind, flags, split);
	while (pos < len && !d.closed) {
		size_t n = len - pos;
		size_t r = (size_t)g_rand_int_range(rand, 1, 24);

		if (split == SPLIT_BYTES)
			n = 1;
		else if (split == SPLIT_RANDOM && r < n)
			n = r;
		g_string_append_len(d.in, input + pos, (gssize)n);
		pos += n;
		pump(&d);
	}
	g_rand_free(rand);
	return drv_free(&d);
}

#define UTF8  IMAP_PARSER_UTF8
#define PLUS  IMAP_PARSER_LITERAL_PLUS
#define MINUS IMAP_PARSER_LITERAL_MINUS

struct pcase {
	const char *name;
	enum lim_kind lim;
	unsigned flags;
	const char *input;
	size_t len;
	const char *expect;
};

static const struct pcase cases[] = {
	/* Tags and command names */
	{"basic/noop", 0, 0, S("a1 NOOP\r\n"), "a1 NOOP"},
	{"basic/lower-case", 0, 0, S("a1 noop\r\n"), "a1 NOOP"},
	{"basic/bare-lf", 0, 0, S("a NOOP\n"), "a NOOP"},
	{"basic/trailing-space", 0, 0, S("a NOOP \r\n"), "a NOOP"},
	{"basic/extra-spaces", 0, 0, S("a  LOGIN  u   p \r\n"), "a LOGIN u p"},
	{"basic/pipelined", 0, 0, S("a NOOP\r\nb CAPABILITY\r\n"),
	 "a NOOP | b CAPABILITY"},
	{"tag/odd-chars", 0, 0, S("]x~!#$&'-_=;:<>,.?/|`^[ NOOP\r\n"),
	 "]x~!#$&'-_=;:<>,.?/|`^[ NOOP"},
	{"tag/plus", 0, 0, S("a+b NOOP\r\n"), "BAD * Invalid character in tag"},
	{"tag/star", 0, 0, S("* OK hi\r\n"), "BAD * Invalid character in tag"},
	{"tag/percent", 0, 0, S("a% NOOP\r\n"),
	 "BAD * Invalid character in tag"},
	{"tag/paren", 0, 0, S("a(b NOOP\r\n"),
	 "BAD * Invalid character in tag"},
	{"tag/quote", 0, 0, S("a\" NOOP\r\n"),
	 "BAD * Invalid character in tag"},
	{"tag/brace", 0, 0, S("{3}\r\n"), "BAD * Invalid character in tag"},
	{"tag/8bit", 0, 0, S("\xc3\xa9 NOOP\r\n"),
	 "BAD * Invalid character in tag"},
	{"tag/nul", 0, 0, S("a\0 NOOP\r\n"), "BAD * Invalid character in tag"},
	{"tag/empty-line", 0, 0, S("\r\n"), "BAD * Empty command line"},
	{"tag/leading-space", 0, 0, S(" a NOOP\r\n"), "BAD * Missing tag"},
	{"tag/alone", 0, 0, S("a\r\n"), "BAD a Missing command"},
	{"tag/space", 0, 0, S("a \r\n"), "BAD a Missing command"},
	{"tag/then-good", 0, 0, S("a\r\nb NOOP\r\n"),
	 "BAD a Missing command | b NOOP"},
	{"name/invalid", 0, 0, S("a NO(OP\r\n"),
	 "BAD a Invalid character in command name"},
	{"name/literal", 0, 0, S("a {4}\r\n"),
	 "BAD a Invalid character in command name"},
	{"name/longest", 0, 0, S("a " X32 "\r\n"),
	 "a XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"},
	{"name/too-long", 0, 0, S("a " X32 "x\r\n"),
	 "BAD a Command name too long"},
	{"uid/fetch", 0, 0, S("a uid fetch 1:* FLAGS\r\n"),
	 "a UID FETCH 1:* FLAGS"},
	{"uid/spaces", 0, 0, S("a UID  MOVE 1 X\r\n"), "a UID MOVE 1 X"},
	{"uid/missing", 0, 0, S("a UID\r\n"),
	 "BAD a Missing command after UID"},
	{"uid/bad", 0, 0, S("a UID F(\r\n"),
	 "BAD a Invalid character in command name"},
	{"idle", 0, 0, S("a IDLE\r\n"), "a IDLE"},
	{"idle/done-is-no-command", 0, 0, S("DONE\r\n"),
	 "BAD DONE Missing command"},
	{"authenticate/ir", 0, 0, S("a AUTHENTICATE PLAIN =\r\n"),
	 "a AUTHENTICATE PLAIN ="},
	{"enable", 0, 0, S("a ENABLE QRESYNC UTF8=ACCEPT\r\n"),
	 "a ENABLE QRESYNC UTF8=ACCEPT"},
	/* Atoms */
	{"atom/flags", 0, 0,
	 S("a STORE 1 +FLAGS.SILENT (\\Seen \\Deleted $Junk \\*)\r\n"),
	 "a STORE 1 +FLAGS.SILENT (\\Seen \\Deleted $Junk \\*)"},
	{"atom/lone-backslash", 0, 0, S("a STORE 1 +FLAGS (\\)\r\n"),
	 "BAD a Invalid flag"},
	{"atom/inner-backslash", 0, 0, S("a STORE 1 FLAGS (a\\b)\r\n"),
	 "BAD a Invalid character in atom"},
	{"atom/8bit", 0, UTF8, S("a SELECT f\xc3\xa9\r\n"),
	 "BAD a Invalid character in atom"},
	{"atom/control", 0, 0, S("a SELECT f\x01o\r\n"),
	 "BAD a Invalid character in atom"},
	{"atom/tab", 0, 0, S("a SELECT\tINBOX\r\n"),
	 "BAD a Invalid character in command name"},
	{"atom/nil", 0, 0, S("a X nil NIL Nil NILS\r\n"),
	 "a X NIL NIL NIL NILS"},
	{"atom/brace", 0, 0, S("a SELECT a{b\r\n"),
	 "BAD a Invalid character in atom"},
	{"atom/quote", 0, 0, S("a SELECT a\"b\"\r\n"),
	 "BAD a Invalid character in atom"},
	{"atom/list-wildcards", 0, 0, S("a LIST \"\" %/[Gmail]/*\r\n"),
	 "a LIST \"\" %/[Gmail]/*"},
	{"atom/brackets-outside-fetch", 0, 0, S("a SELECT [Gmail]/Sent\r\n"),
	 "a SELECT [Gmail]/Sent"},
	{"atom/open-bracket", 0, 0, S("a SELECT a[b\r\n"), "a SELECT a[b"},
	{"atom/searchres", 0, 0, S("a UID FETCH $ (FLAGS)\r\n"),
	 "a UID FETCH $ (FLAGS)"},
	{"atom/tilde", 0, 0, S("a SELECT ~peter/mail\r\n"),
	 "a SELECT ~peter/mail"},
	/* Separators and lists */
	{"sep/after-quoted", 0, 0, S("a LOGIN \"a\"\"b\"\r\n"),
	 "BAD a Missing space between arguments"},
	{"sep/after-list", 0, 0, S("a X (a)(b)\r\n"),
	 "BAD a Missing space between arguments"},
	{"sep/atom-paren", 0, 0, S("a X a(b)\r\n"),
	 "BAD a Invalid character in atom"},
	{"sep/inside-parens", 0, 0, S("a X ( a  b ) \r\n"), "a X (a b)"},
	{"list/empty", 0, 0, S("a X () (())\r\n"), "a X () (())"},
	{"list/unexpected-close", 0, 0, S("a X a)\r\n"),
	 "BAD a Unexpected ')'"},
	{"list/unclosed", 0, 0, S("a X (a (b)\r\n"), "BAD a Missing ')'"},
	{"list/status", 0, 0, S("a STATUS \"INBOX\" (MESSAGES UIDNEXT)\r\n"),
	 "a STATUS \"INBOX\" (MESSAGES UIDNEXT)"},
	{"list/qresync", 0, 0, S("a SELECT INBOX (QRESYNC (1 2 1:5))\r\n"),
	 "a SELECT INBOX (QRESYNC (1 2 1:5))"},
	{"list/depth-16", 0, 0, S("a SEARCH " P16 "x" C16 "\r\n"),
	 "a SEARCH " P16 "x" C16},
	{"list/depth-17", 0, 0, S("a SEARCH (" P16 "x" C16 "))\r\n"),
	 "BAD a [LIMIT] Lists nested over 16 deep"},
	{"list/depth-pre-4", LIM_PRE, 0, S("a ID ((((x))))\r\n"),
	 "a ID ((((x))))"},
	{"list/depth-pre-5", LIM_PRE, 0, S("a ID (((((x)))))\r\n"),
	 "BAD a [LIMIT] Lists nested over 4 deep"},
	{"args/limit", LIM_TINY, 0, S("a X 1 (2 3) 4 5\r\n"),
	 "a X 1 (2 3) 4 5"},
	{"args/over", LIM_TINY, 0, S("a X 1 (2 3) 4 5 6\r\n"),
	 "BAD a [LIMIT] Over 6 arguments"},
	/* Quoted strings */
	{"quoted/escapes", 0, 0, S("a LOGIN \"user\" \"p\\\"a\\\\ss\"\r\n"),
	 "a LOGIN \"user\" \"p\\\"a\\\\ss\""},
	{"quoted/empty", 0, 0, S("a LOGIN \"\" \"\"\r\n"), "a LOGIN \"\" \"\""},
	{"quoted/tab", 0, 0, S("a X \"a\tb\"\r\n"), "a X \"a\\x09b\""},
	{"quoted/unterminated", 0, 0, S("a LOGIN \"abc\r\n"),
	 "BAD a Unterminated quoted string"},
	{"quoted/bad-escape", 0, 0, S("a LOGIN \"a\\nb\"\r\n"),
	 "BAD a Invalid escape in quoted string"},
	{"quoted/escape-at-end", 0, 0, S("a LOGIN \"a\\\r\n"),
	 "BAD a Invalid escape in quoted string"},
	{"quoted/nul", 0, 0, S("a LOGIN \"a\0b\"\r\n"),
	 "BAD a Invalid character in quoted string"},
	{"quoted/cr", 0, 0, S("a LOGIN \"a\rb\"\r\n"),
	 "BAD a Invalid character in quoted string"},
	{"quoted/8bit", 0, 0, S("a SELECT \"f\xc3\xa9\"\r\n"),
	 "BAD a 8-bit character in quoted string"},
	{"quoted/8bit-utf8", 0, UTF8,
	 S("a SELECT \"f\xc3\xa9\xf0\x9f\x98\x80\"\r\n"),
	 "a SELECT \"f\xc3\xa9\xf0\x9f\x98\x80\""},
	{"quoted/utf8-bad", 0, UTF8, S("a SELECT \"\xc3\x28\"\r\n"),
	 "BAD a Invalid UTF-8 in quoted string"},
	{"quoted/utf8-overlong", 0, UTF8, S("a SELECT \"\xc0\xaf\"\r\n"),
	 "BAD a Invalid UTF-8 in quoted string"},
	{"quoted/utf8-surrogate", 0, UTF8, S("a SELECT \"\xed\xa0\x80\"\r\n"),
	 "BAD a Invalid UTF-8 in quoted string"},
	{"quoted/utf8-truncated", 0, UTF8, S("a SELECT \"\xe6\x97\"\r\n"),
	 "BAD a Invalid UTF-8 in quoted string"},
	{"quoted/utf8-too-big", 0, UTF8, S("a SELECT \"\xf4\x90\x80\x80\"\r\n"),
	 "BAD a Invalid UTF-8 in quoted string"},
	/* Literals */
	{"literal/sync", 0, 0, S("a LOGIN {4}\r\nuser {4}\r\npass\r\n"),
	 "+ | + | a LOGIN {4}user {4}pass"},
	{"literal/non-sync", 0, PLUS,
	 S("a LOGIN {4+}\r\nuser {4+}\r\npass\r\n"), "a LOGIN {4}user {4}pass"},
	{"literal/non-sync-minus", 0, MINUS, S("a LOGIN {4+}\r\nuser x\r\n"),
	 "a LOGIN {4}user x"},
	{"literal/non-sync-unadvertised", 0, 0,
	 S("a LOGIN {4+}\r\nuser x\r\nb NOOP\r\n"),
	 "BAD a Non-synchronizing literal not allowed drain=4 | skip | b NOOP"},
	{"literal/in-list", 0, 0, S("a X (a {3}\r\nabc b)\r\n"),
	 "+ | a X (a {3}abc b)"},
	{"literal/search", 0, 0,
	 S("a SEARCH CHARSET UTF-8 OR (FROM \"a\" SUBJECT {3}\r\nabc) NOT "
	   "SEEN\r\n"),
	 "+ | a SEARCH CHARSET UTF-8 OR (FROM \"a\" SUBJECT {3}abc) NOT SEEN"},
	{"literal/empty", 0, 0, S("a LOGIN {0}\r\n {0}\r\n\r\n"),
	 "+ | + | a LOGIN {0} {0}"},
	{"literal/leading-zeros", 0, 0, S("a LOGIN {003}\r\nabc\r\n"),
	 "+ | a LOGIN {3}abc"},
	{"literal/8bit", 0, 0, S("a LOGIN {2}\r\n\xc3\xa9\r\n"),
	 "+ | a LOGIN {2}\xc3\xa9"},
	{"literal/crlf-inside", 0, 0, S("a LOGIN {4}\r\na\r\nb\r\n"),
	 "+ | a LOGIN {4}a\\x0d\\x0ab"},
	{"literal/nul", 0, 0, S("a LOGIN {3}\r\na\0b x\r\nb NOOP\r\n"),
	 "+ | BAD a NUL in literal | skip | b NOOP"},
	{"literal/no-space-after", 0, 0, S("a LOGIN {3}\r\nabcx\r\n"),
	 "+ | BAD a Missing space between arguments"},
	{"literal/text-after", 0, 0, S("a LOGIN {3} x\r\n"),
	 "BAD a Text after literal size"},
	{"literal/no-digits", 0, 0, S("a LOGIN {}\r\n"),
	 "BAD a Invalid literal size"},
	{"literal/letters", 0, 0, S("a LOGIN {x}\r\n"),
	 "BAD a Invalid literal size"},
	{"literal/unclosed", 0, 0, S("a LOGIN {3\r\n"),
	 "BAD a Invalid literal size"},
	{"literal/unclosed-plus", 0, PLUS, S("a LOGIN {3+\r\n"),
	 "BAD a Invalid literal size"},
	{"literal/minus-sign", 0, 0, S("a LOGIN {-1}\r\n"),
	 "BAD a Invalid literal size"},
	{"literal/size-overflow", 0, 0,
	 S("a LOGIN {99999999999999999999}\r\nb NOOP\r\n"),
	 "BAD a Literal size too large | b NOOP"},
	{"literal/size-overflow-non-sync", 0, PLUS,
	 S("a LOGIN {99999999999999999999+}\r\n"),
	 "BAD a Literal size too large close"},
	{"literal/too-big", 0, 0, S("a LOGIN {65537}\r\nb NOOP\r\n"),
	 "BAD a [TOOBIG] Literal over 65536 octets | b NOOP"},
	{"literal/too-big-pre-auth", LIM_PRE, 0, S("a LOGIN {4097}\r\n"),
	 "BAD a [TOOBIG] Literal over 4096 octets"},
	{"literal/too-big-non-sync", LIM_TINY, PLUS,
	 S("a LOGIN {11+}\r\nxxxxxxxxxxx\r\nb NOOP\r\n"),
	 "BAD a [TOOBIG] Literal over 10 octets drain=11 | skip | b NOOP"},
	{"literal/too-big-to-drain", LIM_TINY, PLUS,
	 S("a LOGIN {21+}\r\nxxxxxxxxxxxxxxxxxxxxx\r\n"),
	 "BAD a [TOOBIG] Literal over 10 octets close"},
	{"literal/minus-over-4096", LIM_TINY, MINUS, S("a X {4097+}\r\n"),
	 "BAD a [TOOBIG] Non-synchronizing literal over 4096 octets close"},
	{"literal/drain-chain", 0, PLUS,
	 S("a X \x01 {2+}\r\nab {3+}\r\nabc {1}\r\nb NOOP\r\n"),
	 "BAD a Invalid character in atom drain=2 | drop=3 | skip | b NOOP"},
	{"literal/error-before-sync", 0, 0, S("a X \x01 {2}\r\nb NOOP\r\n"),
	 "BAD a Invalid character in atom | b NOOP"},
	{"literal/binary-outside-append", 0, 0, S("a LOGIN ~{3}\r\n"),
	 "BAD a Binary literal not allowed here"},
	{"literal/command-max", LIM_TINY, 0,
	 S("a X {10}\r\n0123456789 {10}\r\n0123456789 {10}\r\n0123456789 "
	   "{10}\r\n0123456789 {10}\r\n0123456789 {10}\r\n0123456789 "
	   "{10}\r\n"),
	 "+ | + | + | + | + | + | BAD a [LIMIT] Command over 100 octets"},
	/* APPEND */
	{"append/stream", 0, 0,
	 S("a APPEND INBOX (\\Seen) \"7-Feb-1994 21:52:25 -0800\" {5}\r\n"
	   "hello\r\n"),
	 "+ | a APPEND INBOX (\\Seen) \"7-Feb-1994 21:52:25 -0800\" "
	 "<#0:hello>"},
	{"append/mailbox-literal", 0, 0,
	 S("a APPEND {5}\r\nINBOX {3}\r\nabc\r\n"),
	 "+ | + | a APPEND {5}INBOX <#0:abc>"},
	{"append/binary", 0, 0, S("a APPEND INBOX ~{5}\r\nh\0llo\r\n"),
	 "+ | a APPEND INBOX <~#0:h\\x00llo>"},
	{"append/multi", 0, PLUS,
	 S("a APPEND INBOX {3+}\r\nabc (\\Seen) {2+}\r\nxy\r\n"),
	 "a APPEND INBOX <#0:abc> (\\Seen) <#1:xy>"},
	{"append/catenate", 0, 0,
	 S("a APPEND Drafts CATENATE (URL \"/Drafts;UID=20\" TEXT {3}\r\nabc "
	   "URL {4}\r\n/x;y TEXT {2}\r\nde)\r\n"),
	 "+ | + | + | a APPEND Drafts CATENATE (URL \"/Drafts;UID=20\" TEXT "
	 "<#0:abc> URL {4}/x;y TEXT <#1:de>)"},
	{"append/utf8", 0, UTF8 | PLUS,
	 S("a APPEND INBOX UTF8 (~{5+}\r\nhello)\r\n"),
	 "a APPEND INBOX UTF8 (<~#0:hello>)"},
	{"append/empty-message", 0, 0, S("a APPEND INBOX {0}\r\n\r\n"),
	 "+ | a APPEND INBOX <#0:>"},
	{"append/binary-in-flags", 0, 0, S("a APPEND INBOX (~{3}\r\n"),
	 "BAD a Binary literal not allowed here"},
	{"append/pre-auth-held", LIM_PRE, 0,
	 S("a APPEND INBOX {5}\r\nhello\r\n"), "+ | a APPEND INBOX {5}hello"},
	{"append/pre-auth-too-big", LIM_PRE, 0, S("a APPEND INBOX {4097}\r\n"),
	 "BAD a [TOOBIG] Literal over 4096 octets"},
	{"append/streamed-over-command-max", LIM_TINY, 0,
	 S("a APPEND INBOX {30}\r\n" X8 X8 X8 "xxxxxx\r\n"),
	 "+ | a APPEND INBOX <#0:" X8 X8 X8 "xxxxxx>"},
	/* FETCH items */
	{"fetch/peek-fields-not", 0, 0,
	 S("a FETCH 1 BODY.PEEK[1.2.HEADER.FIELDS.NOT (X-A)]<10.20>\r\n"),
	 "a FETCH 1 BODY.PEEK[1.2.HEADER.FIELDS.NOT (X-A)]<10.20>"},
	{"fetch/list", 0, 0,
	 S("a UID FETCH 1:* (FLAGS BODY[HEADER.FIELDS (A B)]<0.100> BODY[] "
	   "BINARY.PEEK[1]<0.5>) (CHANGEDSINCE 5)\r\n"),
	 "a UID FETCH 1:* (FLAGS BODY[HEADER.FIELDS (A B)]<0.100> BODY[] "
	 "BINARY.PEEK[1]<0.5>) (CHANGEDSINCE 5)"},
	{"fetch/lower-case", 0, 0,
	 S("a fetch 1 body.peek[header.fields (a)]\r\n"),
	 "a FETCH 1 body.peek[header.fields (a)]"},
	{"fetch/quoted-field", 0, 0,
	 S("a FETCH 1 BODY[HEADER.FIELDS (\"X-A\" b NIL)]\r\n"),
	 "a FETCH 1 BODY[HEADER.FIELDS (\"X-A\" b NIL)]"},
	{"fetch/literal-field", 0, 0,
	 S("a FETCH 1 BODY[HEADER.FIELDS ({3}\r\nX-A)]<0.1>\r\n"),
	 "+ | a FETCH 1 BODY[HEADER.FIELDS ({3}X-A)]<0.1>"},
	{"fetch/missing-list", 0, 0, S("a FETCH 1 BODY[HEADER.FIELDS]\r\n"),
	 "BAD a Missing header list"},
	{"fetch/missing-list-space", 0, 0,
	 S("a FETCH 1 BODY[HEADER.FIELDS  (A)]\r\n"),
	 "BAD a Missing header list"},
	{"fetch/unexpected-list", 0, 0, S("a FETCH 1 BODY[TEXT (A)]\r\n"),
	 "BAD a Unexpected header list"},
	{"fetch/not-a-suffix", 0, 0,
	 S("a FETCH 1 BODY[XHEADER.FIELDS (A)]\r\n"),
	 "BAD a Unexpected header list"},
	{"fetch/empty-list", 0, 0, S("a FETCH 1 BODY[HEADER.FIELDS ()]\r\n"),
	 "BAD a Empty header list"},
	{"fetch/nested-list", 0, 0,
	 S("a FETCH 1 BODY[HEADER.FIELDS ((A))]\r\n"),
	 "BAD a Nested list in header list"},
	{"fetch/unterminated", 0, 0, S("a FETCH 1 BODY[1.2\r\n"),
	 "BAD a Unterminated section"},
	{"fetch/bad-char", 0, 0, S("a FETCH 1 BODY[1-2]\r\n"),
	 "BAD a Invalid character in section"},
	{"fetch/missing-bracket", 0, 0,
	 S("a FETCH 1 BODY[HEADER.FIELDS (A)\r\n"),
	 "BAD a Missing ']' after header list"},
	{"fetch/wildcard-field", 0, 0,
	 S("a FETCH 1 BODY[HEADER.FIELDS (A*)]\r\n"),
	 "BAD a Invalid header field name"},
	{"fetch/binary-field", 0, 0,
	 S("a FETCH 1 BODY[HEADER.FIELDS (~{1}\r\n"),
	 "BAD a Binary literal not allowed here"},
	{"fetch/partial-zero", 0, 0, S("a FETCH 1 BODY[]<0.0>\r\n"),
	 "BAD a Invalid partial range"},
	{"fetch/partial-one-number", 0, 0, S("a FETCH 1 BODY[]<1>\r\n"),
	 "BAD a Invalid partial range"},
	{"fetch/partial-open", 0, 0, S("a FETCH 1 BODY[]<1.2\r\n"),
	 "BAD a Invalid partial range"},
	{"fetch/no-name", 0, 0, S("a FETCH 1 [1]\r\n"),
	 "BAD a Missing name before '['"},
	{"fetch/after-section", 0, 0, S("a FETCH 1 BODY[]x\r\n"),
	 "BAD a Missing space between arguments"},
	{"fetch/flag-bracket", 0, 0, S("a FETCH 1 \\a[b]\r\n"),
	 "a FETCH 1 \\a[b]"},
	/* Line and command limits */
	{"line/longest", LIM_TINY, 0, S("a X " X32 "xxxx\r\n"),
	 "a X " X32 "xxxx"},
	{"line/over", LIM_TINY, 0, S("a X " X32 "xxxxx\r\nb NOOP\r\n"),
	 "BAD a [LIMIT] Line over 40 octets | b NOOP"},
	{"line/over-non-sync", LIM_TINY, PLUS,
	 S("a X " X32 "xxxx {3+}\r\nabc\r\nb NOOP\r\n"),
	 "BAD a [LIMIT] Line over 40 octets drain=3 | skip | b NOOP"},
	{"line/truncated", LIM_TINY, 0, S("a X " X32 X32 X32 "\r\nb NOOP\r\n"),
	 "BAD a [LIMIT] Line too long close"},
};

static void
test_case(gconstpointer data)
{
	const struct pcase *c = data;
	enum split split;

	for (split = SPLIT_WHOLE; split <= SPLIT_RANDOM; split++) {
		guint32 seed;

		for (seed = 1; seed <= (split == SPLIT_RANDOM ? 8u : 1u);
		     seed++) {
			char *got = run(c->lim, c->flags, c->input, c->len,
					split, seed);

			if (strcmp(got, c->expect) != 0)
				g_test_message("split %d seed %u", split, seed);
			g_assert_cmpstr(got, ==, c->expect);
			g_free(got);
		}
	}
}

/* --- the API as a session uses it ------------------------------------------
 */

static struct imap_parser *
parser_auth(unsigned flags)
{
	struct imap_parser_limits lim;

	imap_parser_limits_init(&lim, true);
	return imap_parser_new(&lim, flags);
}

static enum imap_parse_result
feed(struct imap_parser *p, const char *line)
{
	return imap_parser_feed_line(p, line, strlen(line), 0);
}

static void
test_command_fields(void)
{
	struct imap_parser *p = parser_auth(0);
	const struct imap_command *cmd;

	g_assert_cmpint(feed(p, "t1 uid Fetch 1:* (FLAGS)"), ==,
			IMAP_PARSE_COMPLETE);
	cmd = imap_parser_command(p);
	g_assert_cmpuint(cmd->tag.len, ==, 2);
	g_assert_cmpmem(cmd->tag.p, 2, "t1", 2);
	g_assert_cmpstr(cmd->name, ==, "UID FETCH");
	g_assert_cmpstr(cmd->verb, ==, "FETCH");
	g_assert_true(cmd->uid);
	g_assert_cmpuint(cmd->count, ==, 2);
	g_assert_cmpint(cmd->args[1].type, ==, IMAP_ARG_LIST);
	g_assert_cmpuint(cmd->args[1].list.count, ==, 1);
	g_assert_cmpint(feed(p, "t2 CAPABILITY"), ==, IMAP_PARSE_COMPLETE);
	cmd = imap_parser_command(p);
	g_assert_cmpstr(cmd->name, ==, "CAPABILITY");
	g_assert_false(cmd->uid);
	g_assert_cmpuint(cmd->count, ==, 0);
	g_assert_null(cmd->args);
	imap_parser_free(&p);
	imap_parser_free(&p);
}

static void
test_accessors(void)
{
	struct imap_parser *p = parser_auth(0);
	const struct imap_command *cmd;
	const struct imap_arg *a, *list;
	struct mp_str v;
	uint64_t n;
	size_t count;

	g_assert_cmpint(feed(p, "a X atom \"q\" {3}"), ==,
			IMAP_PARSE_NEED_LITERAL);
	g_assert_cmpint(imap_parser_literal_data(p, "a", 1), ==,
			IMAP_PARSE_NEED_DATA);
	g_assert_cmpint(imap_parser_literal_data(p, "bc", 2), ==,
			IMAP_PARSE_NEED_LINE);
	g_assert_cmpint(
		feed(p, " nil (l) \\Flag % ]x 123 99999999999999999999"), ==,
		IMAP_PARSE_COMPLETE);
	cmd = imap_parser_command(p);
	a = cmd->args;
	g_assert_cmpuint(cmd->count, ==, 10);
	g_assert_true(imap_arg_get_atom(&a[0], &v));
	g_assert_true(imap_arg_get_astring(&a[0], &v));
	g_assert_false(imap_arg_get_string(&a[0], &v));
	g_assert_true(imap_arg_atom_equals(&a[0], "ATOM"));
	g_assert_false(imap_arg_atom_equals(&a[0], "ATO"));
	g_assert_false(imap_arg_get_atom(&a[1], &v));
	g_assert_true(imap_arg_get_string(&a[1], &v));
	g_assert_cmpmem(v.p, v.len, "q", 1);
	g_assert_true(imap_arg_get_astring(&a[2], &v));
	g_assert_cmpmem(v.p, v.len, "abc", 3);
	g_assert_true(imap_arg_get_nstring(&a[3], &v));
	g_assert_null(v.p);
	g_assert_true(imap_arg_get_astring(&a[3], &v));
	g_assert_cmpmem(v.p, v.len, "nil", 3);
	g_assert_true(imap_arg_get_list(&a[4], &list, &count));
	g_assert_cmpuint(count, ==, 1);
	g_assert_true(imap_arg_atom_equals(&list[0], "L"));
	g_assert_false(imap_arg_get_list(&a[3], &list, &count));
	g_assert_true(imap_arg_get_atom(&a[5], &v));
	g_assert_true(a[5].flags & IMAP_ARG_BACKSLASH);
	g_assert_false(imap_arg_get_astring(&a[5], &v));
	g_assert_false(imap_arg_get_list_mailbox(&a[5], &v));
	g_assert_false(imap_arg_get_astring(&a[6], &v));
	g_assert_true(imap_arg_get_list_mailbox(&a[6], &v));
	g_assert_true(imap_arg_get_astring(&a[7], &v));
	g_assert_true(a[7].flags & IMAP_ARG_RBRACKET);
	g_assert_true(imap_arg_get_number(&a[8], &n));
	g_assert_cmpuint(n, ==, 123);
	g_assert_false(imap_arg_get_number(&a[9], &n));
	g_assert_false(imap_arg_get_number(&a[0], &n));
	g_assert_false(imap_arg_get_atom(NULL, &v));
	imap_parser_free(&p);
}

static void
test_reject_literal(void)
{
	struct imap_parser *p = parser_auth(IMAP_PARSER_LITERAL_PLUS);
	const struct imap_literal *lit;

	/* Synchronising: the client waits for "+" and gets the reply. */
	g_assert_cmpint(feed(p, "a APPEND INBOX {100000000}"), ==,
			IMAP_PARSE_NEED_LITERAL);
	lit = imap_parser_literal(p);
	g_assert_cmpint(lit->use, ==, IMAP_LITERAL_STREAM);
	g_assert_cmpstr(lit->name, ==, "APPEND");
	g_assert_cmpmem(lit->tag.p, lit->tag.len, "a", 1);
	g_assert_cmpuint(imap_parser_reject_literal(p), ==, 0);
	g_assert_null(imap_parser_literal(p));
	g_assert_cmpint(feed(p, "b NOOP"), ==, IMAP_PARSE_COMPLETE);
	/* Non-synchronising: the bytes come anyway, then the rest. */
	g_assert_cmpint(feed(p, "c LOGIN {5+}"), ==, IMAP_PARSE_NEED_LITERAL);
	g_assert_cmpint(imap_parser_literal(p)->use, ==, IMAP_LITERAL_HOLD);
	g_assert_cmpuint(imap_parser_reject_literal(p), ==, 5);
	lit = imap_parser_literal(p);
	g_assert_nonnull(lit);
	g_assert_cmpint(lit->use, ==, IMAP_LITERAL_DISCARD);
	g_assert_cmpint(imap_parser_literal_consumed(p), ==,
			IMAP_PARSE_NEED_LINE);
	g_assert_cmpint(feed(p, " {2+}"), ==, IMAP_PARSE_NEED_LITERAL);
	g_assert_cmpint(imap_parser_literal_data(p, "xy", 2), ==,
			IMAP_PARSE_NEED_LINE);
	g_assert_cmpint(feed(p, ""), ==, IMAP_PARSE_SKIPPED);
	g_assert_cmpint(feed(p, "d NOOP"), ==, IMAP_PARSE_COMPLETE);
	imap_parser_free(&p);
}

static void
test_append_mailbox(void)
{
	struct imap_parser *p = parser_auth(IMAP_PARSER_LITERAL_PLUS);
	struct mp_str name;

	/* An atom, then a quoted string with an escape, then a held
	 * literal: each is the mailbox while the message is pending. */
	g_assert_cmpint(feed(p, "a APPEND Drafts (\\Seen) {10}"), ==,
			IMAP_PARSE_NEED_LITERAL);
	g_assert_true(imap_parser_append_mailbox(p, &name));
	g_assert_cmpmem(name.p, name.len, "Drafts", 6);
	g_assert_cmpint(imap_parser_literal_consumed(p), ==,
			IMAP_PARSE_NEED_LINE);
	g_assert_false(imap_parser_append_mailbox(p, &name));
	g_assert_cmpint(feed(p, ""), ==, IMAP_PARSE_COMPLETE);
	g_assert_cmpint(feed(p, "b APPEND \"a\\\"b\" {3+}"), ==,
			IMAP_PARSE_NEED_LITERAL);
	g_assert_true(imap_parser_append_mailbox(p, &name));
	g_assert_cmpmem(name.p, name.len, "a\"b", 3);
	g_assert_cmpint(imap_parser_literal_consumed(p), ==,
			IMAP_PARSE_NEED_LINE);
	g_assert_cmpint(feed(p, ""), ==, IMAP_PARSE_COMPLETE);
	g_assert_cmpint(feed(p, "c APPEND {3+}"), ==, IMAP_PARSE_NEED_LITERAL);
	/* The mailbox literal itself is held, not the message. */
	g_assert_false(imap_parser_append_mailbox(p, &name));
	g_assert_cmpint(imap_parser_literal_data(p, "Box", 3), ==,
			IMAP_PARSE_NEED_LINE);
	g_assert_cmpint(feed(p, " UTF8 (~{4+}"), ==, IMAP_PARSE_NEED_LITERAL);
	g_assert_true(imap_parser_append_mailbox(p, &name));
	g_assert_cmpmem(name.p, name.len, "Box", 3);
	g_assert_cmpint(imap_parser_literal_consumed(p), ==,
			IMAP_PARSE_NEED_LINE);
	g_assert_cmpint(feed(p, ")"), ==, IMAP_PARSE_COMPLETE);
	/* A list or a flag is no mailbox. */
	g_assert_cmpint(feed(p, "d APPEND (x) {3+}"), ==,
			IMAP_PARSE_NEED_LITERAL);
	g_assert_false(imap_parser_append_mailbox(p, &name));
	imap_parser_reset(p);
	g_assert_cmpint(feed(p, "e APPEND \\Seen {3+}"), ==,
			IMAP_PARSE_NEED_LITERAL);
	g_assert_false(imap_parser_append_mailbox(p, &name));
	imap_parser_reset(p);
	/* Not an APPEND: nothing is streamed. */
	g_assert_cmpint(feed(p, "f LOGIN a {3+}"), ==, IMAP_PARSE_NEED_LITERAL);
	g_assert_false(imap_parser_append_mailbox(p, &name));
	imap_parser_free(&p);
}

static void
test_reset(void)
{
	struct imap_parser *p = parser_auth(0);

	g_assert_cmpint(feed(p, "a LOGIN {5}"), ==, IMAP_PARSE_NEED_LITERAL);
	imap_parser_reset(p);
	g_assert_null(imap_parser_literal(p));
	g_assert_cmpint(feed(p, "b NOOP"), ==, IMAP_PARSE_COMPLETE);
	g_assert_cmpint(feed(p, "c X (a"), ==, IMAP_PARSE_ERROR);
	imap_parser_reset(p);
	g_assert_cmpint(feed(p, "d NOOP"), ==, IMAP_PARSE_COMPLETE);
	imap_parser_free(&p);
}

static void
test_flags_and_limits(void)
{
	struct imap_parser_limits lim, got;
	struct imap_parser *p = imap_parser_new(NULL, 0);

	g_assert_cmpint(feed(p, "a SELECT \"f\xc3\xa9\""), ==,
			IMAP_PARSE_ERROR);
	imap_parser_set_flags(p, IMAP_PARSER_UTF8);
	g_assert_cmpint(feed(p, "a SELECT \"f\xc3\xa9\""), ==,
			IMAP_PARSE_COMPLETE);
	g_assert_true(imap_parser_command(p)->args[0].flags & IMAP_ARG_8BIT);
	/* Before LOGIN: held, at most 4096; after: streamed. */
	g_assert_cmpint(feed(p, "b APPEND INBOX {5000}"), ==, IMAP_PARSE_ERROR);
	g_assert_cmpstr(imap_parser_error(p)->code, ==, "TOOBIG");
	imap_parser_limits_init(&lim, true);
	imap_parser_set_limits(p, &lim);
	g_assert_cmpint(feed(p, "b APPEND INBOX {5000}"), ==,
			IMAP_PARSE_NEED_LITERAL);
	g_assert_cmpint(imap_parser_literal(p)->use, ==, IMAP_LITERAL_STREAM);
	imap_parser_free(&p);

	imap_parser_limits_init(&got, false);
	g_assert_cmpuint(got.literal_max, ==, 4096);
	g_assert_false(got.stream);
	imap_parser_limits_init(&got, true);
	g_assert_cmpuint(got.depth_max, ==, 16);
	g_assert_cmpuint(got.seqset_ranges_max, ==, 10000);
	g_assert_true(got.stream);
	/* Zero fields take the defaults; the depth is capped. */
	memset(&lim, 0, sizeof(lim));
	lim.depth_max = 1000;
	p = imap_parser_new(&lim, 0);
	g_assert_cmpint(feed(p, "a X " P16 P16 P16 P16 "x" C16 C16 C16 C16), ==,
			IMAP_PARSE_COMPLETE);
	g_assert_cmpint(
		feed(p, "a X (" P16 P16 P16 P16 "x" C16 C16 C16 C16 ")"), ==,
		IMAP_PARSE_ERROR);
	g_assert_cmpint(feed(p, "a LOGIN {4097}"), ==, IMAP_PARSE_ERROR);
	imap_parser_free(&p);
}

static void
test_idle_done(void)
{
	g_assert_true(imap_line_is_done(S("DONE")));
	g_assert_true(imap_line_is_done(S("done")));
	g_assert_false(imap_line_is_done(S("DONE ")));
	g_assert_false(imap_line_is_done(S("DON")));
	g_assert_false(imap_line_is_done(S("a DONE")));
}

/* Big literals, built here rather than spelled out in the table. */
static char *
run_big(unsigned flags, const char *head, size_t n, char fill, const char *tail,
	enum split split)
{
	GString *in = g_string_new(head);
	char *got;

	while (n-- > 0)
		g_string_append_c(in, fill);
	g_string_append(in, tail);
	got = run(LIM_AUTH, flags, in->str, in->len, split, 7);
	g_string_free(in, TRUE);
	return got;
}

static void
test_big_literals(void)
{
	enum split split;

	for (split = SPLIT_WHOLE; split <= SPLIT_RANDOM; split++) {
		char *got;

		got = run_big(0, "a APPEND INBOX {70000}\r\n", 70000, 'm',
			      "\r\nb NOOP\r\n", split);
		g_assert_true(
			g_str_has_prefix(got, "+ | a APPEND INBOX <#0:m"));
		g_assert_true(g_str_has_suffix(got, "m> | b NOOP"));
		g_free(got);
		got = run_big(0, "a LOGIN {65536}\r\n", 65536, 'p', " x\r\n",
			      split);
		g_assert_true(g_str_has_prefix(got, "+ | a LOGIN {65536}p"));
		g_assert_true(g_str_has_suffix(got, "p x"));
		g_free(got);
		got = run_big(IMAP_PARSER_LITERAL_MINUS, "a LOGIN {4097+}\r\n",
			      4097, 'p', " x\r\nb NOOP\r\n", split);
		g_assert_cmpstr(got, ==,
				"BAD a [TOOBIG] Non-synchronizing literal over "
				"4096 octets drain=4097 | skip | b NOOP");
		g_free(got);
		got = run_big(IMAP_PARSER_LITERAL_MINUS, "a LOGIN {4096+}\r\n",
			      4096, 'p', "\r\n", split);
		g_assert_true(g_str_has_prefix(got, "a LOGIN {4096}p"));
		g_free(got);
	}
}

/* Storage a big command needed is given back before the next one. */
static void
test_storage_shrinks(void)
{
	struct imap_parser *p = parser_auth(0);
	char *big = g_malloc(60000);

	g_assert_cmpint(feed(p, "a LOGIN {60000}"), ==,
			IMAP_PARSE_NEED_LITERAL);
	memset(big, 'x', 60000);
	g_assert_cmpint(imap_parser_literal_data(p, big, 60000), ==,
			IMAP_PARSE_NEED_LINE);
	g_assert_cmpint(feed(p, ""), ==, IMAP_PARSE_COMPLETE);
	g_assert_cmpuint(imap_parser_storage(p).len, >=, 60000);
	g_assert_cmpint(feed(p, "b NOOP"), ==, IMAP_PARSE_COMPLETE);
	g_assert_cmpuint(imap_parser_storage(p).len, ==, 6);
	g_free(big);
	imap_parser_free(&p);
}

/* --- sequence sets ------------------------------------------------------- */

struct scase {
	const char *input;
	uint32_t max;
	enum imap_seqset_kind kind;
	size_t max_ranges;
	const char *expect; /* formatted set, "$", or "E<status>" */
};

#define SEQ IMAP_SEQSET_SEQ
#define UID IMAP_SEQSET_UID

static const struct scase scases[] = {
	{"1:5,7,9:*", 10, SEQ, 0, "1:5,7,9:10"},
	{"*", 10, SEQ, 0, "10"},
	{"*:*", 5, UID, 0, "5"},
	{"*", 0, SEQ, 0, "E2"},
	{"1:*", 0, UID, 0, "E2"},
	{"5:2", 10, SEQ, 0, "2:5"},
	{"1,2,3,5,4", 10, SEQ, 0, "1:5"},
	{"1:3,4:6,10,8:9", 10, SEQ, 0, "1:6,8:10"},
	{"5,1:10", 10, SEQ, 0, "1:10"},
	{"3:*", 2, SEQ, 0, "E2"},
	{"3:*", 2, UID, 0, "2:3"},
	{"559:*", 500, UID, 0, "500:559"},
	{"11", 10, SEQ, 0, "E2"},
	{"11", 10, UID, 0, "11"},
	{"4294967295", 10, UID, 0, "4294967295"},
	{"4294967294:4294967295,1", 10, UID, 0, "1,4294967294:4294967295"},
	{"4294967296", 10, UID, 0, "E1"},
	{"99999999999", 10, UID, 0, "E1"},
	{"0", 10, SEQ, 0, "E1"},
	{"0:5", 10, SEQ, 0, "E1"},
	{"1:0", 10, SEQ, 0, "E1"},
	{"01", 10, SEQ, 0, "E1"},
	{"", 10, SEQ, 0, "E1"},
	{"1,", 10, SEQ, 0, "E1"},
	{",1", 10, SEQ, 0, "E1"},
	{"1,,2", 10, SEQ, 0, "E1"},
	{"1:", 10, SEQ, 0, "E1"},
	{":1", 10, SEQ, 0, "E1"},
	{"1:2:3", 10, SEQ, 0, "E1"},
	{"1 2", 10, SEQ, 0, "E1"},
	{"-1", 10, SEQ, 0, "E1"},
	{"**", 10, SEQ, 0, "E1"},
	{"a", 10, SEQ, 0, "E1"},
	{"$", 10, SEQ, 0, "$"},
	{"$", 0, UID, 0, "$"},
	{"$,1", 10, SEQ, 0, "E1"},
	{"1,$", 10, SEQ, 0, "E1"},
	{"1,2,3", 10, SEQ, 2, "E3"},
	{"1,2,3", 10, SEQ, 3, "1:3"},
};

static char *
seqset_result(const struct scase *c, struct imap_seqset *set)
{
	enum imap_seqset_status st;
	const char *error = NULL;
	struct mp_buf out = {0};

	st = imap_seqset_parse(set, c->input, strlen(c->input), c->max, c->kind,
			       c->max_ranges, &error);
	if (st != IMAP_SEQSET_OK) {
		g_assert_nonnull(error);
		g_assert_cmpuint(set->count, ==, 0);
		return g_strdup_printf("E%d", st);
	}
	if (set->saved)
		return g_strdup("$");
	imap_seqset_format(&out, set->ranges, set->count);
	return mp_buf_steal(&out);
}

static void
test_seqset_cases(void)
{
	struct imap_seqset set = {0};
	size_t i;

	for (i = 0; i < MP_NELEMS(scases); i++) {
		char *got = seqset_result(&scases[i], &set);

		if (strcmp(got, scases[i].expect) != 0)
			g_test_message("input \"%s\"", scases[i].input);
		g_assert_cmpstr(got, ==, scases[i].expect);
		free(got);
	}
	imap_seqset_free(&set);
	g_assert_null(set.ranges);
}

static void
test_seqset_huge(void)
{
	struct imap_seqset set = {0};
	const char *error;
	GString *s = g_string_new("1");
	unsigned i;

	for (i = 1; i < 10001; i++)
		g_string_append_printf(s, ",%u", 2 * i + 1);
	g_assert_cmpint(imap_seqset_parse(&set, s->str, s->len, 100000, SEQ,
					  10000, &error),
			==, IMAP_SEQSET_LIMIT);
	g_assert_cmpint(imap_seqset_parse(&set, s->str, s->len, 100000, SEQ,
					  10001, &error),
			==, IMAP_SEQSET_OK);
	g_assert_cmpuint(set.count, ==, 10001);
	g_assert_cmpuint(imap_seqset_count(&set), ==, 10001);
	g_assert_true(imap_seqset_contains(&set, 1));
	g_assert_true(imap_seqset_contains(&set, 20001));
	g_assert_false(imap_seqset_contains(&set, 2));
	g_assert_false(imap_seqset_contains(&set, 20003));
	g_string_free(s, TRUE);
	imap_seqset_free(&set);
}

static void
test_seqset_build(void)
{
	static const uint32_t nums[] = {3, 4,  5,           9,          8,
					7, 10, 4294967294u, 4294967295u};
	struct imap_seqset set = {0};
	struct mp_buf out = {0};

	imap_seqset_add(&set, 10, 8);
	imap_seqset_add(&set, 1, 1);
	imap_seqset_add(&set, 2, 3);
	imap_seqset_add(&set, 11, 11);
	imap_seqset_normalize(&set);
	imap_seqset_format(&out, set.ranges, set.count);
	g_assert_cmpstr(out.data, ==, "1:3,8:11");
	g_assert_cmpuint(imap_seqset_count(&set), ==, 7);
	g_assert_false(imap_seqset_contains(&set, 4));
	g_assert_true(imap_seqset_contains(&set, 9));
	mp_buf_reset(&out);
	imap_seqset_format_numbers(&out, nums, MP_NELEMS(nums));
	g_assert_cmpstr(out.data, ==, "3:5,9,8,7,10,4294967294:4294967295");
	mp_buf_reset(&out);
	imap_seqset_format_numbers(&out, nums, 0);
	imap_seqset_format(&out, set.ranges, 0);
	g_assert_cmpuint(out.len, ==, 0);
	mp_buf_free(&out);
	imap_seqset_free(&set);
}

int
main(int argc, char **argv)
{
	size_t i;

	g_test_init(&argc, &argv, NULL);
	g_test_set_nonfatal_assertions();
	for (i = 0; i < MP_NELEMS(cases); i++) {
		char *path = g_strdup_printf("/imap/parser/%s", cases[i].name);

		g_test_add_data_func(path, &cases[i], test_case);
		g_free(path);
	}
	g_test_add_func("/imap/parser/api/command", test_command_fields);
	g_test_add_func("/imap/parser/api/accessors", test_accessors);
	g_test_add_func("/imap/parser/api/reject-literal", test_reject_literal);
	g_test_add_func("/imap/parser/api/append-mailbox", test_append_mailbox);
	g_test_add_func("/imap/parser/api/reset", test_reset);
	g_test_add_func("/imap/parser/api/flags-limits", test_flags_and_limits);
	g_test_add_func("/imap/parser/api/idle-done", test_idle_done);
	g_test_add_func("/imap/parser/literal/big", test_big_literals);
	g_test_add_func("/imap/parser/storage-shrinks", test_storage_shrinks);
	g_test_add_func("/imap/seqset/cases", test_seqset_cases);
	g_test_add_func("/imap/seqset/huge", test_seqset_huge);
	g_test_add_func("/imap/seqset/build", test_seqset_build);
	return g_test_run();
}
