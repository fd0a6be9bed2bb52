/* test-imap-fetch.c - FETCH data items from the stored MIME structure:
 * ENVELOPE, BODY, BODYSTRUCTURE, section items, header filtering, BINARY.
 *
 * Corpus: each tests/mime/NAME.eml is stored as the mailstore stores it
 * (every LF without a CR before it becomes CRLF), parsed, sent through the
 * index blob and back, and its ENVELOPE, BODY and BODYSTRUCTURE compared
 * with tests/imap/NAME.fetch. `test-imap-fetch --dump FILE...` prints them
 * (read before you commit: a recorded wrong answer is still wrong).
 *
 * Where RFC 3501/9051 leave a choice, we take Dovecot's, except as noted:
 * - Strings are quoted unless they hold CR, LF, 8-bit (without UTF8=ACCEPT)
 *   or more than 4 '"' and '\' (Dovecot's rule); we also send strings over
 *   1024 bytes as literals (long-header.fetch), which Dovecot does not.
 * - Subject and display names are tidied as Dovecot's "for humans" (white
 *   space runs made one space, ends trimmed); Dovecot then always writes
 *   them as literals when it changed anything or they hold '"', we quote
 *   with escapes when the general rule allows (addresses.fetch: "Giant;
 *   \"Big\" Box" where Dovecot writes {16}).
 * - A text part without a charset gets ("charset" "us-ascii"), as Dovecot
 *   adds it (nested-multipart.fetch); languages are always a list.
 * - RFC 2231: the index keeps values joined and decoded to UTF-8. An ASCII
 *   value goes back under its plain name (RFC 9051 7.5.2: continuations
 *   decoded, "baz*0 baz*1" returned as "baz"). A non-ASCII one goes back as
 *   name*=utf-8''%XX (rfc2231.fetch): Dovecot returns every extended value
 *   still encoded under "name*" (its charset'lang' kept), and clients
 *   decode that form; RFC 9051 suggests the decoded UTF-8 under "foo*",
 *   which a client that RFC 2231-decodes "foo*" (all of them, since that is
 *   what servers send) would show as garbage. Charset and language of the
 *   original are not in the index; UTF-8 is exact.
 * - A multipart that never saw its boundary holds one empty text/plain
 *   (boundary-never.fetch), as Dovecot writes.
 * - A multipart without a boundary, or message/rfc822 in base64, is a
 *   leaf: written as a basic body of its own type (multipart-no-boundary,
 *   rfc822-base64), as Dovecot does; the grammar's media-basic allows any
 *   type string.
 * - A section that names no part is NIL (as Gmail); Dovecot sends an
 *   empty literal. Both are nstrings; NIL says what happened. BINARY.SIZE
 *   of it is 0 (Dovecot; the grammar wants a number).
 * - N.MIME of a single-part message's part 1 is the message header
 *   (Dovecot; UW-IMAP sends ""); HEADER/TEXT of a part that is not a
 *   message/rfc822 is NIL (RFC 3501 6.4.5 allows them only there).
 * - BINARY undoes a leaf's encoding only: a multipart or message part goes
 *   as stored (Dovecot also decodes the leaves inside and rewrites their
 *   headers), BINARY[] is the message as stored.
 * - Field names are echoed upper-cased (Dovecot); a partial must be
 *   <o.n>, n > 0, as the grammar says (Dovecot also takes <o>). */
#include "config.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>

#include <moonpost/mime.h>

#include "imap-fetch-format.h"
#include "imap-section.h"

static const char *
srcdir(void)
{
	const char *dir = g_getenv("MOONPOST_SRCDIR");

	return dir != NULL ? dir : ".";
}

/* --- a stored message --------------------------------------------------- */

struct stored {
	GString *data; /* the bytes as stored: CRLF */
	struct mp_mime_message *msg;
};

/* LF without CR becomes CRLF: the mailstore's ms_crlf(). */
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

/* Parses, then takes the structure back from its index blob, so what is
 * tested is what FETCH serves. */
static void
store(struct stored *s, const char *data, size_t len)
{
	struct mp_mime_parser *p = mp_mime_parser_new(NULL);
	struct mp_mime_message *parsed;
	struct mp_buf blob = {0};
	const char *error = NULL;

	s->data = to_crlf(data, len);
	mp_mime_parser_feed(p, s->data->str, s->data->len);
	parsed = mp_mime_parser_finish(&p);
	mp_mime_serialize(parsed, &blob);
	s->msg = mp_mime_deserialize(blob.data, blob.len, s->data->len, &error);
	g_assert_null(error);
	g_assert_nonnull(s->msg);
	mp_mime_message_free(&parsed);
	mp_buf_free(&blob);
}

static void
store_file(struct stored *s, const char *path)
{
	char *text;
	gsize len;

	g_assert_true(g_file_get_contents(path, &text, &len, NULL));
	store(s, text, len);
	g_free(text);
}

static void
store_corpus(struct stored *s, const char *name)
{
	char *path = g_strdup_printf("%s/tests/mime/%s.eml", srcdir(), name);

	store_file(s, path);
	g_free(path);
}

static void
stored_free(struct stored *s)
{
	mp_mime_message_free(&s->msg);
	g_string_free(s->data, TRUE);
}

static GString *
fetch_dump(const struct mp_mime_message *msg, enum imap_format_flags flags)
{
	struct mp_buf b = {0};
	GString *out;

	mp_buf_puts(&b, "ENVELOPE ");
	imap_fetch_format_envelope(&b, msg->root->envelope, flags);
	mp_buf_puts(&b, "\nBODY ");
	imap_fetch_format_body(&b, msg->root, flags);
	mp_buf_puts(&b, "\nBODYSTRUCTURE ");
	imap_fetch_format_bodystructure(&b, msg->root, flags);
	mp_buf_puts(&b, "\n");
	out = g_string_new_len(b.data, (gssize)b.len);
	mp_buf_free(&b);
	return out;
}

/* --- the corpus --------------------------------------------------------- */

/* No corpus header holds raw 8-bit, so UTF8=ACCEPT changes nothing. */
static void
test_corpus(gconstpointer data)
{
	const char *name = data;
	char *exp = g_strdup_printf("%s/tests/imap/%s.fetch", srcdir(), name);
	char *want;
	gsize want_len;
	GString *got, *got8;
	struct stored s;

	store_corpus(&s, name);
	g_assert_true(g_file_get_contents(exp, &want, &want_len, NULL));
	got = fetch_dump(s.msg, 0);
	g_assert_cmpmem(got->str, got->len, want, want_len);
	g_assert_null(memchr(got->str, '\0', got->len));
	got8 = fetch_dump(s.msg, IMAP_FORMAT_UTF8);
	g_assert_cmpmem(got8->str, got8->len, got->str, got->len);
	g_string_free(got, TRUE);
	g_string_free(got8, TRUE);
	g_free(want);
	g_free(exp);
	stored_free(&s);
}

static void
add_corpus_tests(void)
{
	char *dir = g_strdup_printf("%s/tests/mime", srcdir());
	GDir *d = g_dir_open(dir, 0, NULL);
	GPtrArray *names = g_ptr_array_new();
	const char *entry;

	g_assert_nonnull(d);
	while ((entry = g_dir_read_name(d)) != NULL) {
		if (g_str_has_suffix(entry, ".eml"))
			g_ptr_array_add(names,
					g_strndup(entry, strlen(entry) - 4));
	}
	g_dir_close(d);
	g_ptr_array_sort(names, (GCompareFunc)g_strcmp0);
	g_assert_cmpuint(names->len, >=, 20);
	for (guint i = 0; i < names->len; i++) {
		char *path = g_strdup_printf("/imap/fetch/corpus/%s",
					     (char *)names->pdata[i]);

		/* The names live as long as the test program. */
		g_test_add_data_func(path, names->pdata[i], test_corpus);
		g_free(path);
	}
	g_ptr_array_free(names, TRUE);
	g_free(dir);
}

static void
free_gstring(gpointer s)
{
	g_string_free(s, TRUE);
}

/* --- tables in tests/imap/ --------------------------------------------- */

/* A field in double quotes, C-escaped (\\ \" \r \n \t \NNN octal). */
static GString *
unescape(const char *s, size_t n)
{
	static const char from[] = "rnt", to[] = "\r\n\t";
	GString *out = g_string_new(NULL);

	for (size_t i = 1; i + 1 < n; i++) {
		char c = s[i];
		const char *k;

		if (c == '\\' && s[i + 1] >= '0' && s[i + 1] <= '7') {
			c = (char)((s[i + 1] - '0') * 64 +
				   (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 3;
		} else if (c == '\\') {
			c = s[++i];
			k = strchr(from, c);
			c = k != NULL && c != '\0' ? to[k - from] : c;
		}
		g_string_append_c(out, c);
	}
	return out;
}

/* The rows of tests/imap/NAME: TAB-separated fields, each a GString (a
 * quoted one unescaped); '#' lines and empty lines are comments. */
static GPtrArray *
load_table(const char *name)
{
	char *path = g_strdup_printf("%s/tests/imap/%s", srcdir(), name);
	GPtrArray *rows = g_ptr_array_new_with_free_func(
		(GDestroyNotify)g_ptr_array_unref);
	char *text, **lines;

	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l != NULL; l++) {
		char **f = g_strsplit(*l, "\t", -1);
		GPtrArray *row = g_ptr_array_new_with_free_func(free_gstring);

		for (char **v = f; **l != '#' && **l != '\0' && *v; v++) {
			size_t n = strlen(*v);

			g_ptr_array_add(row, n >= 2 && **v == '"' &&
							     (*v)[n - 1] == '"'
						     ? unescape(*v, n)
						     : g_string_new(*v));
		}
		if (row->len > 0)
			g_ptr_array_add(rows, row);
		else
			g_ptr_array_unref(row);
		g_strfreev(f);
	}
	g_strfreev(lines);
	g_free(text);
	g_free(path);
	return rows;
}

static const char *
field(GPtrArray *row, guint i)
{
	return ((GString *)row->pdata[i])->str;
}

/* --- strings ------------------------------------------------------------ */

static void
check_string(const char *in, size_t len, enum imap_format_flags flags,
	     const char *want)
{
	struct mp_buf b = {0};

	imap_fetch_format_string(&b, in, len, flags);
	g_assert_cmpmem(b.data, b.len, want, strlen(want));
	mp_buf_free(&b);
}

static void
test_strings(void)
{
	static const struct {
		const char *in, *want;
		enum imap_format_flags flags;
	} cases[] = {
		{"", "\"\"", 0},
		{"plain", "\"plain\"", 0},
		{"a \"b\" \\c\\", "\"a \\\"b\\\" \\\\c\\\\\"", 0},
		/* a fifth special: the literal is shorter (Dovecot) */
		{"\"\"\"\"\"", "{5}\r\n\"\"\"\"\"", 0},
		{"two\r\nlines", "{10}\r\ntwo\r\nlines", 0},
		{"bare\rcr", "{7}\r\nbare\rcr", 0},
		{"Gr\303\274\303\237e", "{7}\r\nGr\303\274\303\237e", 0},
		{"Gr\303\274\303\237e", "\"Gr\303\274\303\237e\"",
		 IMAP_FORMAT_UTF8},
		{"\xf0\x9f\x93\xa7", "\"\xf0\x9f\x93\xa7\"", IMAP_FORMAT_UTF8},
		/* not UTF-8: latin-1, overlong, surrogate, truncated */
		{"caf\xe9", "{4}\r\ncaf\xe9", IMAP_FORMAT_UTF8},
		{"\xc0\xaf", "{2}\r\n\xc0\xaf", IMAP_FORMAT_UTF8},
		{"\xed\xa0\x80", "{3}\r\n\xed\xa0\x80", IMAP_FORMAT_UTF8},
		{"\xe2\x9c", "{2}\r\n\xe2\x9c", IMAP_FORMAT_UTF8},
		{"\xf4\x90\x80\x80", "{4}\r\n\xf4\x90\x80\x80",
		 IMAP_FORMAT_UTF8},
	};
	GString *big = g_string_new(NULL);
	char *want;

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
		check_string(cases[i].in, strlen(cases[i].in), cases[i].flags,
			     cases[i].want);
	/* NUL cannot be sent: 0x80, so a literal even with UTF8 */
	check_string("a\0b", 3, IMAP_FORMAT_UTF8, "{3}\r\na\200b");
	/* IMAP_FORMAT_QUOTED_MAX bytes are quoted, one more is a literal */
	for (int i = 0; i < IMAP_FORMAT_QUOTED_MAX; i++)
		g_string_append_c(big, 'x');
	want = g_strdup_printf("\"%s\"", big->str);
	check_string(big->str, big->len, 0, want);
	g_free(want);
	g_string_append_c(big, 'x');
	want = g_strdup_printf("{%zu}\r\n%s", big->len, big->str);
	check_string(big->str, big->len, 0, want);
	g_free(want);
	g_string_free(big, TRUE);
}

static char *
envelope_of(const struct mp_mime_envelope *env, enum imap_format_flags flags)
{
	struct mp_buf b = {0};

	imap_fetch_format_envelope(&b, env, flags);
	return mp_buf_steal(&b);
}

#define S(lit) ((struct mp_str){lit, sizeof(lit) - 1})

/* NIL versus "", human tidying, groups and the From fallback on a
 * hand-built envelope. */
static void
test_envelope(void)
{
	static const struct mp_mime_address from[] = {
		{MP_MIME_ADDR_MAILBOX, S("  J\tDoe  "), {0}, S("j"), S("x.y")},
	};
	static const struct mp_mime_address to[] = {
		{MP_MIME_ADDR_GROUP_START, {0}, {0}, S("Team"), {0}},
		{MP_MIME_ADDR_MAILBOX, S(" "), S("@r.example"), S("a"), S("")},
		{MP_MIME_ADDR_GROUP_END, {0}, {0}, {0}, {0}},
	};
	struct mp_mime_envelope env = {
		.date = S("Mon, 1 Jan 2024 00:00:00 +0000"),
		.subject = S("  Re:\t hello \r\n world  "),
		.message_id = S(""),
		.from = {from, 1},
		.to = {to, 3},
	};
	char *got = envelope_of(&env, 0);

	g_assert_cmpstr(got, ==,
			"(\"Mon, 1 Jan 2024 00:00:00 +0000\" \"Re: hello "
			"world\" ((\"J Doe\" NIL \"j\" \"x.y\")) ((\"J Doe\" "
			"NIL \"j\" \"x.y\")) ((\"J Doe\" NIL \"j\" \"x.y\")) "
			"((NIL NIL \"Team\" NIL)(\"\" \"@r.example\" \"a\" "
			"\"\")(NIL NIL NIL NIL)) NIL NIL NIL \"\")");
	free(got);
	got = envelope_of(NULL, 0);
	g_assert_cmpstr(got, ==, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	free(got);
	env = (struct mp_mime_envelope){.subject = S("caf\xc3\xa9")};
	got = envelope_of(&env, 0);
	g_assert_cmpstr(got, ==,
			"(NIL {5}\r\ncaf\xc3\xa9 NIL NIL NIL NIL NIL NIL NIL "
			"NIL)");
	free(got);
	got = envelope_of(&env, IMAP_FORMAT_UTF8);
	g_assert_cmpstr(
		got, ==,
		"(NIL \"caf\xc3\xa9\" NIL NIL NIL NIL NIL NIL NIL NIL)");
	free(got);
}

static char *
bodystructure_of(const char *msg, enum imap_format_flags flags)
{
	struct stored s;
	struct mp_buf b = {0};

	store(&s, msg, strlen(msg));
	imap_fetch_format_bodystructure(&b, s.msg->root, flags);
	stored_free(&s);
	return mp_buf_steal(&b);
}

/* Parameters with 8-bit values, CR/LF in the "nolf" fields. */
static void
test_params(void)
{
	char *got;

	/* raw UTF-8 is re-encoded as RFC 2231; raw latin-1 has no charset
	 * to name and goes as it is, in a literal */
	got = bodystructure_of("Content-Type: application/x-a;\n"
			       " name=\"caf\xc3\xa9.txt\"; n2=\"caf\xe9\"\n"
			       "Content-ID: <a@b>\n\nx\n",
			       IMAP_FORMAT_UTF8);
	g_assert_cmpstr(got, ==,
			"(\"application\" \"x-a\" (\"name*\" "
			"\"utf-8''caf%C3%A9.txt\" \"n2\" {4}\r\ncaf\xe9) "
			"\"<a@b>\" NIL \"7bit\" 3 NIL NIL NIL NIL)");
	free(got);
	/* a text part with params but no charset gets one at the end */
	got = bodystructure_of("Content-Type: text/plain; format=flowed\n"
			       "Content-Description: two\n words\n\nx\n",
			       0);
	g_assert_cmpstr(got, ==,
			"(\"text\" \"plain\" (\"format\" \"flowed\" "
			"\"charset\" \"us-ascii\") NIL \"two words\" \"7bit\" "
			"3 1 NIL NIL NIL NIL)");
	free(got);
}

/* message/global: a message only where the client's grammar has it so. */
static void
test_message_global(void)
{
	static const char msg[] = "Content-Type: message/global\n\n"
				  "Subject: \xc3\xbc\n\nhi\n";
	char *got;

	/* IMAP4rev1 (RFC 3501 media-message is RFC822 only): basic */
	got = bodystructure_of(msg, 0);
	g_assert_cmpstr(got, ==,
			"(\"message\" \"global\" NIL NIL NIL \"7bit\" 19 "
			"NIL NIL NIL NIL)");
	free(got);
	got = bodystructure_of(msg, IMAP_FORMAT_UTF8);
	g_assert_cmpstr(got, ==,
			"(\"message\" \"global\" NIL NIL NIL \"7bit\" 19 "
			"NIL NIL NIL NIL)");
	free(got);
	/* IMAP4rev2, UTF8=ACCEPT: as message/rfc822 */
	got = bodystructure_of(msg, IMAP_FORMAT_UTF8 |
					    IMAP_FORMAT_MESSAGE_GLOBAL);
	g_assert_cmpstr(got, ==,
			"(\"message\" \"global\" NIL NIL NIL \"7bit\" 19 "
			"(NIL \"\xc3\xbc\" NIL NIL NIL NIL NIL NIL NIL NIL) "
			"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
			"\"7bit\" 4 1 NIL NIL NIL NIL) 3 NIL NIL NIL NIL)");
	free(got);
	/* message/rfc822 is a message in every case */
	got = bodystructure_of("Content-Type: message/rfc822\n\n"
			       "Subject: a\n\nhi\n",
			       0);
	g_assert_nonnull(strstr(got, "(NIL \"a\" NIL"));
	free(got);
}

/* --- section parsing ---------------------------------------------------- */

/* "BODY.PEEK [1.2] MIME 14": item, peek, part, text, bytes consumed. */
static char *
describe(const struct imap_section *sec, size_t consumed)
{
	static const char *const items[] = {
		"BODY",   "BINARY",        "BINARY.SIZE",
		"RFC822", "RFC822.HEADER", "RFC822.TEXT",
	};
	static const char *const texts[] = {
		"FULL", "HEADER", "FIELDS", "FIELDS.NOT", "TEXT", "MIME",
	};

	return g_strdup_printf("%s%s [%s] %s %zu", items[sec->item],
			       sec->peek ? ".PEEK" : "", sec->part,
			       texts[sec->text], consumed);
}

static void
check_invalid(const char *in, size_t len)
{
	struct imap_section sec;
	const char *error = NULL;
	size_t consumed = 12345;

	g_test_message("%.*s", (int)(len > 80 ? 80 : len), in);
	g_assert_false(imap_section_parse(in, len, &sec, &consumed, &error));
	g_assert_nonnull(error);
	g_assert_cmpuint(consumed, ==, 12345);
	g_assert_null(sec.part);
	g_assert_cmpuint(sec.fields.n, ==, 0);
}

static void
check_valid(GString *in, const char *name, const char *what)
{
	struct imap_section sec;
	struct mp_buf b = {0};
	const char *error = "unset";
	size_t consumed = 0;
	char *got;

	g_assert_true(
		imap_section_parse(in->str, in->len, &sec, &consumed, &error));
	g_assert_null(error);
	got = describe(&sec, consumed);
	g_assert_cmpstr(got, ==, what);
	imap_section_write_name(&sec, &b);
	g_assert_cmpstr(b.data, ==, name);
	g_free(got);
	mp_buf_free(&b);
	imap_section_clear(&sec);
}

/* tests/imap/section-parse.txt, then what is too big to write there. */
static void
test_parse(void)
{
	GPtrArray *rows = load_table("section-parse.txt");
	GString *s = g_string_new("BODY[1");
	char *want;

	g_assert_cmpuint(rows->len, >=, 80);
	for (guint i = 0; i < rows->len; i++) {
		GPtrArray *f = rows->pdata[i];
		GString *in = f->pdata[0];

		g_test_message("%s", in->str);
		if (f->len == 2 && strcmp(field(f, 1), "BAD") == 0)
			check_invalid(in->str, in->len);
		else if (f->len == 3)
			check_valid(in, field(f, 1), field(f, 2));
		else
			g_assert_not_reached();
	}
	g_ptr_array_free(rows, TRUE);
	/* a NUL in a quoted name */
	check_invalid("BODY[HEADER.FIELDS (\"a\0b\")]", 27);
	/* deeper than any stored structure */
	for (int i = 1; i < IMAP_SECTION_PARTS_MAX; i++)
		g_string_append(s, ".1");
	g_string_append(s, "]");
	/* "BODY [1.1...1] FULL n": the part text ends with "]" already */
	want = g_strdup_printf("BODY [%s FULL %zu", s->str + 5, s->len);
	check_valid(s, s->str, want);
	g_free(want);
	g_string_insert(s, 5, "1.");
	check_invalid(s->str, s->len);
	/* more names than IMAP_SECTION_FIELDS_MAX */
	g_string_assign(s, "BODY[HEADER.FIELDS (A");
	for (int i = 1; i <= IMAP_SECTION_FIELDS_MAX; i++)
		g_string_append(s, " A");
	g_string_append(s, ")]");
	check_invalid(s->str, s->len);
	g_string_free(s, TRUE);
}

/* The command parser's pieces: a literal name, no text parsing. */
static void
test_from_parts(void)
{
	static const struct mp_str fields[] = {S("x-\xc3\xa9t\xc3\xa9"),
					       S("Date")};
	struct imap_section_parts in = {
		.name = S("BODY.PEEK"),
		.bracket = true,
		.spec = S("2.header.fields"),
		.fields = fields,
		.nfields = 2,
		.partial = true,
		.offset = 3,
		.size = 4,
	};
	struct imap_section sec;
	struct mp_buf name = {0};
	const char *error;

	g_assert_true(imap_section_from_parts(&in, &sec, &error));
	imap_section_write_name(&sec, &name);
	g_assert_cmpstr(name.data, ==,
			"BODY[2.HEADER.FIELDS (\"X-\xc3\xa9T\xc3\xa9\" DATE)]"
			"<3>");
	mp_buf_free(&name);
	imap_section_clear(&sec);
	in.nfields = 0;
	g_assert_false(imap_section_from_parts(&in, &sec, &error));
	g_assert_cmpstr(error, ==, "Missing header field list");
	in = (struct imap_section_parts){.name = S("rfc822.text")};
	g_assert_true(imap_section_from_parts(&in, &sec, &error));
	g_assert_cmpint(sec.text, ==, IMAP_SECTION_TEXT);
	imap_section_clear(&sec);
	imap_section_clear(&sec); /* twice is fine */
}

/* --- resolving, filtering, clipping ------------------------------------- */

/* A pread over memory giving at most max bytes per call. */
struct mem {
	const char *data;
	size_t len, max;
	bool fail;
};

static ssize_t
mem_read(void *ctx, uint64_t offset, void *buf, size_t len,
	 const char **error_r)
{
	struct mem *m = ctx;

	if (m->fail) {
		*error_r = "read failed";
		return -1;
	}
	if (offset >= m->len)
		return 0;
	if (len > m->len - offset)
		len = m->len - (size_t)offset;
	if (len > m->max)
		len = m->max;
	memcpy(buf, m->data + offset, len);
	return (ssize_t)len;
}

/* What a FETCH of item would send for the message, as the session would
 * put it together: the bytes, "NIL", "[UNKNOWN-CTE]", or BINARY.SIZE's
 * number. Reads max bytes at a time. */
static GString *
fetch_item(const struct stored *s, const char *item, size_t max)
{
	struct mem m = {s->data->str, s->data->len, max, false};
	struct imap_section sec;
	struct imap_section_plan plan;
	struct imap_binary_reader r;
	struct mp_buf b = {0};
	GString *out = g_string_new(NULL);
	const char *error = NULL;
	uint64_t off, len, size;
	size_t consumed;
	enum mp_status st;

	g_assert_true(imap_section_parse(item, strlen(item), &sec, &consumed,
					 &error));
	imap_section_resolve(&sec, s->msg, &plan);
	if (plan.source == IMAP_SOURCE_UNKNOWN_CTE) {
		g_string_assign(out, "[UNKNOWN-CTE]");
	} else if (sec.item == IMAP_SECTION_ITEM_BINARY_SIZE) {
		g_assert_true(imap_binary_size(&plan, mem_read, &m, &size, NULL,
					       &error));
		g_string_printf(out, "%llu", (unsigned long long)size);
	} else if (plan.source == IMAP_SOURCE_NIL) {
		g_string_assign(out, "NIL");
	} else if (plan.source == IMAP_SOURCE_BYTES) {
		g_assert_cmpuint(plan.offset + plan.size, <=, s->data->len);
		g_string_append_len(out, s->data->str + plan.offset,
				    (gssize)plan.size);
	} else if (plan.source == IMAP_SOURCE_HEADER_FIELDS) {
		imap_header_filter(
			s->data->str + plan.offset, plan.size, &sec.fields,
			sec.text == IMAP_SECTION_HEADER_FIELDS_NOT, &b);
		imap_section_clip(&sec, b.len, &off, &len);
		g_string_append_len(out, b.data + off, (gssize)len);
	} else {
		g_assert_true(imap_binary_size(&plan, mem_read, &m, &size, NULL,
					       &error));
		imap_section_clip(&sec, size, &off, &len);
		imap_binary_reader_init(&r, &plan, off, len);
		do {
			st = imap_binary_reader_read(&r, mem_read, &m, &b,
						     &error);
		} while (st == MP_AGAIN);
		g_assert_cmpint(st, ==, MP_OK);
		g_assert_cmpuint(b.len, ==, len);
		g_string_append_len(out, b.data, (gssize)b.len);
		imap_binary_reader_deinit(&r);
	}
	mp_buf_free(&b);
	imap_section_clear(&sec);
	return out;
}

/* Every case of tests/imap/sections.txt: NAME, ITEM, "what is sent";
 * read whole chunks at a time, then 1 and 3 bytes at a time (the BINARY
 * decoder across reads). */
static void
test_fetch_items(void)
{
	GPtrArray *rows = load_table("sections.txt");

	g_assert_cmpuint(rows->len, >=, 60);
	for (guint i = 0; i < rows->len; i++) {
		GPtrArray *f = rows->pdata[i];
		GString *want = f->pdata[2];
		struct stored s;

		g_assert_cmpuint(f->len, ==, 3);
		g_test_message("%s %s", field(f, 0), field(f, 1));
		store_corpus(&s, field(f, 0));
		for (size_t max = 1; max <= 3 * IMAP_BINARY_CHUNK; max *= 3) {
			GString *got = fetch_item(&s, field(f, 1), max);

			g_assert_cmpmem(got->str, got->len, want->str,
					want->len);
			g_string_free(got, TRUE);
			if (max == 3)
				max = IMAP_BINARY_CHUNK;
		}
		stored_free(&s);
	}
	g_ptr_array_free(rows, TRUE);
}

/* The numbers of every part find its header and body: "N" the body,
 * "N.MIME" the header; the root's header is HEADER. */
static void
check_part_ranges(const struct stored *s, const struct mp_mime_part *part,
		  const char *num)
{
	struct imap_section sec;
	struct imap_section_plan plan;
	const char *error;
	size_t consumed;
	char item[1024];
	uint32_t i = 1;

	g_snprintf(item, sizeof(item), "BODY[%s]", num);
	g_assert_true(imap_section_parse(item, strlen(item), &sec, &consumed,
					 &error));
	imap_section_resolve(&sec, s->msg, &plan);
	g_assert_cmpint(plan.source, ==, IMAP_SOURCE_BYTES);
	g_assert_cmpuint(plan.offset, ==, part->body_offset);
	g_assert_cmpuint(plan.size, ==, part->body_size);
	imap_section_clear(&sec);
	g_snprintf(item, sizeof(item), "BODY[%s.MIME]", num);
	g_assert_true(imap_section_parse(item, strlen(item), &sec, &consumed,
					 &error));
	imap_section_resolve(&sec, s->msg, &plan);
	g_assert_true(plan.part == part);
	g_assert_cmpuint(plan.offset, ==, part->header_offset);
	g_assert_cmpuint(plan.size, ==, part->header_size);
	imap_section_clear(&sec);
	if (part->flags & MP_MIME_PART_MESSAGE) {
		const struct mp_mime_part *m = part->children;

		/* a multipart inside has the message part's number */
		if (m->flags & MP_MIME_PART_MULTIPART)
			part = m;
		else
			part = m, i = 0;
	}
	if (!(part->flags & MP_MIME_PART_MULTIPART)) {
		if (i == 0) { /* the message's body is its part 1 */
			g_snprintf(item, sizeof(item), "%s.1", num);
			check_part_ranges(s, part, item);
		}
		return;
	}
	for (const struct mp_mime_part *c = part->children; c; c = c->next) {
		g_snprintf(item, sizeof(item), "%s.%u", num, i++);
		check_part_ranges(s, c, item);
	}
}

static void
test_part_ranges(gconstpointer data)
{
	const struct mp_mime_part *root;
	struct stored s;

	store_corpus(&s, data);
	root = s.msg->root;
	if (root->flags & MP_MIME_PART_MULTIPART) {
		uint32_t i = 1;

		for (const struct mp_mime_part *c = root->children; c;
		     c = c->next) {
			char num[16];

			g_snprintf(num, sizeof(num), "%u", i++);
			check_part_ranges(&s, c, num);
		}
	} else {
		check_part_ranges(&s, root, "1");
	}
	stored_free(&s);
}

/* tests/imap/header-filter.txt: FIELDS|NOT, names, header, result. */
static void
test_header_filter(void)
{
	GPtrArray *rows = load_table("header-filter.txt");

	g_assert_cmpuint(rows->len, >=, 16);
	for (guint i = 0; i < rows->len; i++) {
		GPtrArray *f = rows->pdata[i];
		GString *hdr = f->pdata[2], *want = f->pdata[3];
		struct mp_strlist names = {0};
		char **v = g_strsplit(field(f, 1), " ", -1);
		struct mp_buf out = {0};

		g_assert_cmpuint(f->len, ==, 4);
		for (char **n = v; *n != NULL; n++)
			mp_strlist_add(&names, *n);
		imap_header_filter(hdr->str, hdr->len, &names,
				   strcmp(field(f, 0), "NOT") == 0, &out);
		g_assert_cmpmem(out.data, out.len, want->str, want->len);
		mp_buf_free(&out);
		mp_strlist_free(&names);
		g_strfreev(v);
	}
	g_ptr_array_free(rows, TRUE);
}

static void
test_clip(void)
{
	static const struct {
		bool partial;
		uint64_t o, n, total, off, len;
	} cases[] = {
		{false, 0, 0, 10, 0, 10},        {true, 0, 4, 10, 0, 4},
		{true, 8, 4, 10, 8, 2},          {true, 10, 4, 10, 10, 0},
		{true, 11, 4, 10, 10, 0},        {true, 0, 1, 0, 0, 0},
		{true, 3, UINT64_MAX, 10, 3, 7},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct imap_section sec = {.partial = cases[i].partial,
					   .partial_offset = cases[i].o,
					   .partial_size = cases[i].n};
		uint64_t off, len;

		imap_section_clip(&sec, cases[i].total, &off, &len);
		g_assert_cmpuint(off, ==, cases[i].off);
		g_assert_cmpuint(len, ==, cases[i].len);
	}
}

/* --- BINARY on messages made here --------------------------------------- */

static void
test_binary(void)
{
	static const char msg[] =
		"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
		"Content-Transfer-Encoding: x-uuencode\n\nbegin\n--b\n"
		"Content-Transfer-Encoding: quoted-printable\n\n"
		"a=00b=\nc  \nd\n--b\n"
		"Content-Transfer-Encoding: base64\n\nAA==\n--b--\n";
	struct stored s;
	GString *got;
	struct imap_section sec;
	struct imap_section_plan plan;
	struct mem m;
	const char *error = NULL;
	uint64_t size;
	size_t consumed;
	bool nul;

	store(&s, msg, sizeof(msg) - 1);
	got = fetch_item(&s, "BINARY[1]", 100);
	g_assert_cmpstr(got->str, ==, "[UNKNOWN-CTE]");
	g_string_free(got, TRUE);
	got = fetch_item(&s, "BINARY.SIZE[1]", 100);
	g_assert_cmpstr(got->str, ==, "[UNKNOWN-CTE]");
	g_string_free(got, TRUE);
	got = fetch_item(&s, "BODY[1]", 100); /* BODY does not decode */
	g_assert_cmpstr(got->str, ==, "begin");
	g_string_free(got, TRUE);
	/* QP: soft break joins, trailing white space goes, CRLF stays */
	got = fetch_item(&s, "BINARY[2]", 2);
	g_assert_cmpmem(got->str, got->len, "a\0bc\r\nd", 7);
	g_string_free(got, TRUE);
	/* the decoded size, and whether it holds a NUL (literal8) */
	g_assert_true(
		imap_section_parse("BINARY[2]", 9, &sec, &consumed, &error));
	imap_section_resolve(&sec, s.msg, &plan);
	g_assert_cmpint(plan.source, ==, IMAP_SOURCE_DECODE);
	m = (struct mem){s.data->str, s.data->len, 5, false};
	g_assert_true(
		imap_binary_size(&plan, mem_read, &m, &size, &nul, &error));
	g_assert_cmpuint(size, ==, 7);
	g_assert_true(nul);
	/* a read error, and a file shorter than the index */
	m.fail = true;
	g_assert_false(
		imap_binary_size(&plan, mem_read, &m, &size, &nul, &error));
	g_assert_cmpstr(error, ==, "read failed");
	m = (struct mem){s.data->str, plan.offset + 3, 5, false};
	g_assert_false(
		imap_binary_size(&plan, mem_read, &m, &size, &nul, &error));
	g_assert_nonnull(error);
	imap_section_clear(&sec);
	got = fetch_item(&s, "BINARY[3]", 1);
	g_assert_cmpmem(got->str, got->len, "\0", 1);
	g_string_free(got, TRUE);
	stored_free(&s);
}

/* --- main --------------------------------------------------------------- */

static int
dump(int argc, char **argv)
{
	for (int i = 2; i < argc; i++) {
		struct stored s;
		GString *text;

		store_file(&s, argv[i]);
		text = fetch_dump(s.msg, 0);
		fwrite(text->str, 1, text->len, stdout);
		g_string_free(text, TRUE);
		stored_free(&s);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const char *const ranged[] = {
		"alternative",       "boundary-prefix",
		"deep-nesting",      "digest",
		"mixed-attachments", "nested-multipart",
		"rfc822-attachment", "simple-text",
		"top-rfc822",        "header-ends-at-boundary",
	};

	if (argc > 1 && strcmp(argv[1], "--dump") == 0)
		return dump(argc, argv);
	g_test_init(&argc, &argv, NULL);
	add_corpus_tests();
	g_test_add_func("/imap/fetch/strings", test_strings);
	g_test_add_func("/imap/fetch/envelope", test_envelope);
	g_test_add_func("/imap/fetch/params", test_params);
	g_test_add_func("/imap/fetch/message-global", test_message_global);
	g_test_add_func("/imap/section/parse", test_parse);
	g_test_add_func("/imap/section/parse/from-parts", test_from_parts);
	g_test_add_func("/imap/section/fetch", test_fetch_items);
	for (size_t i = 0; i < G_N_ELEMENTS(ranged); i++) {
		char *path =
			g_strdup_printf("/imap/section/ranges/%s", ranged[i]);

		g_test_add_data_func(path, ranged[i], test_part_ranges);
		g_free(path);
	}
	g_test_add_func("/imap/section/header-filter", test_header_filter);
	g_test_add_func("/imap/section/clip", test_clip);
	g_test_add_func("/imap/section/binary", test_binary);
	return g_test_run();
}
