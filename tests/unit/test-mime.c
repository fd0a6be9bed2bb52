/* test-mime.c - the MIME parser, header decoding, and the index blob.
 *
 * Corpus: each tests/mime/NAME.eml is parsed and dumped as text, compared
 * with NAME.expect; it is also fed byte by byte and at random split points,
 * and sent through serialize / deserialize, and each must give the same
 * result. `test-mime --dump FILE...` prints the dump, to write an .expect
 * (read it before you commit it: a recorded wrong answer is still wrong). */
#include "config.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>

#include <moonpost/mime.h>

/* --- dumping ------------------------------------------------------------ */

static void
dump_str(GString *out, struct mp_str s)
{
	if (s.p == NULL) {
		g_string_append(out, "NIL");
		return;
	}
	g_string_append_c(out, '"');
	for (size_t i = 0; i < s.len; i++) {
		if (i == 64 && s.len > 200) {
			g_string_append_printf(out, "...(%zu bytes)", s.len);
			break;
		}
		unsigned char c = (unsigned char)s.p[i];

		if (c == '"' || c == '\\')
			g_string_append_printf(out, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			g_string_append_printf(out, "\\x%02x", c);
		else
			g_string_append_c(out, (char)c);
	}
	g_string_append_c(out, '"');
}

static void
dump_params(GString *out, const char *label, const struct mp_mime_param *v,
	    uint32_t n)
{
	if (n == 0)
		return;
	g_string_append_printf(out, " %s=(", label);
	for (uint32_t i = 0; i < n; i++) {
		if (i > 0)
			g_string_append_c(out, ' ');
		dump_str(out, v[i].name);
		g_string_append_c(out, '=');
		dump_str(out, v[i].value);
	}
	g_string_append_c(out, ')');
}

static void
dump_opt(GString *out, const char *label, struct mp_str s)
{
	if (s.p == NULL)
		return;
	g_string_append_printf(out, " %s=", label);
	dump_str(out, s);
}

/* The IMAP section number that finds part, "" for a multipart root and
 * for a multipart inside a message/rfc822 (its number is the message's). */
static void
section_of(const struct mp_mime_part *part, GString *out)
{
	const struct mp_mime_part *parent = part->parent, *c;
	bool multi = part->flags & MP_MIME_PART_MULTIPART;
	uint32_t i = 1;

	if (parent == NULL) {
		g_string_assign(out, multi ? "" : "1");
		return;
	}
	section_of(parent, out);
	if (parent->flags & MP_MIME_PART_MESSAGE) {
		if (!multi)
			g_string_append(out, ".1");
		return;
	}
	for (c = parent->children; c != part; c = c->next)
		i++;
	g_string_append_printf(out, "%s%u", out->len > 0 ? "." : "", i);
}

static void
dump_addrs(GString *out, int indent, const char *label,
	   const struct mp_mime_addrlist *l)
{
	if (l->n == 0)
		return;
	g_string_append_printf(out, "%*s%s:", indent, "", label);
	for (uint32_t i = 0; i < l->n; i++) {
		const struct mp_mime_address *a = &l->v[i];

		g_string_append_printf(out, " (%s ",
				       a->kind == MP_MIME_ADDR_MAILBOX ? ""
				       : a->kind == MP_MIME_ADDR_GROUP_START
					       ? "group "
					       : "end ");
		dump_str(out, a->name);
		g_string_append_c(out, ' ');
		dump_str(out, a->adl);
		g_string_append_c(out, ' ');
		dump_str(out, a->mailbox);
		g_string_append_c(out, ' ');
		dump_str(out, a->host);
		g_string_append_c(out, ')');
	}
	g_string_append_c(out, '\n');
}

static void
dump_envelope(GString *out, int indent, const struct mp_mime_envelope *env)
{
	g_string_append_printf(out, "%*senvelope", indent, "");
	dump_opt(out, "date", env->date);
	dump_opt(out, "subject", env->subject);
	dump_opt(out, "message-id", env->message_id);
	dump_opt(out, "in-reply-to", env->in_reply_to);
	g_string_append_c(out, '\n');
	dump_addrs(out, indent, "from", &env->from);
	if (env->sender.v != env->from.v)
		dump_addrs(out, indent, "sender", &env->sender);
	if (env->reply_to.v != env->from.v)
		dump_addrs(out, indent, "reply-to", &env->reply_to);
	dump_addrs(out, indent, "to", &env->to);
	dump_addrs(out, indent, "cc", &env->cc);
	dump_addrs(out, indent, "bcc", &env->bcc);
}

static void
dump_flags(GString *out, uint32_t flags, const char *const *names)
{
	bool any = false;

	for (int i = 0; names[i] != NULL; i++) {
		if (flags & (1u << i)) {
			g_string_append_printf(out, "%s%s",
					       any ? "," : " flags=", names[i]);
			any = true;
		}
	}
}

static void
dump_part(GString *out, const struct mp_mime_part *part)
{
	static const char *const names[] = {"multipart", "message", "no-end",
					    "8bit",      "nul",     NULL};
	GString *sec = g_string_new(NULL);
	int depth = 0;

	for (const struct mp_mime_part *p = part->parent; p; p = p->parent)
		depth++;
	section_of(part, sec);
	g_string_append_printf(out, "%*spart %u [%s] %.*s/%.*s", depth * 2, "",
			       part->index, sec->str, (int)part->type.len,
			       part->type.p, (int)part->subtype.len,
			       part->subtype.p);
	dump_params(out, "params", part->params, part->n_params);
	g_string_append_printf(out, " enc=%.*s", (int)part->encoding.len,
			       part->encoding.p);
	g_string_append_printf(
		out,
		" header=%" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT
		" body=%" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT
		" lines=%" G_GUINT64_FORMAT,
		part->header_offset, part->header_size, part->body_offset,
		part->body_size, part->body_lines);
	dump_opt(out, "id", part->id);
	dump_opt(out, "desc", part->description);
	dump_opt(out, "md5", part->md5);
	dump_opt(out, "disp", part->disposition);
	dump_params(out, "disp-params", part->disposition_params,
		    part->n_disposition_params);
	for (uint32_t i = 0; i < part->n_language; i++)
		dump_opt(out, "lang", part->language[i]);
	dump_opt(out, "loc", part->location);
	dump_opt(out, "boundary", part->boundary);
	dump_flags(out, part->flags, names);
	g_string_append_c(out, '\n');
	if (part->envelope != NULL)
		dump_envelope(out, depth * 2 + 4, part->envelope);
	g_string_free(sec, TRUE);
}

static char *
dump_message(const struct mp_mime_message *msg)
{
	static const char *const names[] = {"truncated", "broken", "bare-lf",
					    "nul",       "8bit",   NULL};
	GString *out = g_string_new(NULL);

	g_string_append_printf(out,
			       "message size=%" G_GUINT64_FORMAT " parts=%u",
			       msg->size, msg->n_parts);
	dump_flags(out, msg->flags, names);
	g_string_append_c(out, '\n');
	for (const struct mp_mime_part *p = msg->root; p != NULL;
	     p = mp_mime_part_next(p))
		dump_part(out, p);
	return g_string_free(out, FALSE);
}

/* --- helpers -------------------------------------------------------------- */

static struct mp_mime_message *
parse_split(const char *data, size_t len, const struct mp_mime_limits *lim,
	    GRand *rand, size_t step)
{
	struct mp_mime_parser *p = mp_mime_parser_new(lim);

	for (size_t off = 0; off < len;) {
		size_t n = rand != NULL ? (size_t)g_rand_int_range(rand, 1, 64)
					: step;

		if (n > len - off)
			n = len - off;
		mp_mime_parser_feed(p, data + off, n);
		off += n;
	}
	return mp_mime_parser_finish(&p);
}

static struct mp_mime_message *
parse(const char *data, size_t len, const struct mp_mime_limits *lim)
{
	return parse_split(data, len, lim, NULL, len > 0 ? len : 1);
}

static struct mp_mime_message *
parse_str(const char *s)
{
	return parse(s, strlen(s), NULL);
}

static GString *
blob_of(const struct mp_mime_message *msg)
{
	struct mp_buf b = {0};
	GString *s;

	mp_mime_serialize(msg, &b);
	s = g_string_new_len(b.data, (gssize)b.len);
	mp_buf_free(&b);
	return s;
}

static void
assert_same(const struct mp_mime_message *a, const struct mp_mime_message *b)
{
	GString *ba = blob_of(a), *bb = blob_of(b);
	char *da = dump_message(a), *db = dump_message(b);

	g_assert_cmpstr(da, ==, db);
	g_assert_true(g_string_equal(ba, bb));
	g_free(da);
	g_free(db);
	g_string_free(ba, TRUE);
	g_string_free(bb, TRUE);
}

/* Every part is found by its number; a multipart inside a message/rfc822
 * has none of its own, its number finds the message/rfc822 part. */
static void
assert_sections(const struct mp_mime_message *msg)
{
	GString *sec = g_string_new(NULL);

	for (const struct mp_mime_part *p = msg->root; p != NULL;
	     p = mp_mime_part_next(p)) {
		const struct mp_mime_part *found = NULL, *want = p;

		if ((p->flags & MP_MIME_PART_MULTIPART) && p->parent != NULL &&
		    (p->parent->flags & MP_MIME_PART_MESSAGE))
			want = p->parent;
		section_of(p, sec);
		g_assert_true(mp_mime_part_find(msg->root, sec->str, &found));
		g_assert_true(found == want);
	}
	g_string_free(sec, TRUE);
}

/* Parses data whole, byte by byte and at random splits; checks they agree
 * and survive the blob. Returns the whole-buffer result. */
static struct mp_mime_message *
parse_checked(const char *data, size_t len, const struct mp_mime_limits *lim)
{
	struct mp_mime_message *whole = parse(data, len, lim), *other;
	GRand *rand = g_rand_new_with_seed((guint32)len);
	const char *error = NULL;
	GString *blob;

	other = parse_split(data, len, lim, NULL, 1);
	assert_same(whole, other);
	mp_mime_message_free(&other);
	for (int i = 0; i < 8; i++) {
		other = parse_split(data, len, lim, rand, 0);
		assert_same(whole, other);
		mp_mime_message_free(&other);
	}
	g_rand_free(rand);
	blob = blob_of(whole);
	other = mp_mime_deserialize(blob->str, blob->len, len, &error);
	g_assert_null(error);
	g_assert_nonnull(other);
	assert_same(whole, other);
	assert_sections(other);
	mp_mime_message_free(&other);
	g_string_free(blob, TRUE);
	assert_sections(whole);
	return whole;
}

static const char *
srcdir(void)
{
	const char *dir = g_getenv("MOONPOST_SRCDIR");

	return dir != NULL ? dir : ".";
}

/* --- the corpus ------------------------------------------------------------
 */

static void
test_corpus(gconstpointer data)
{
	const char *name = data;
	char *eml = g_strdup_printf("%s/tests/mime/%s.eml", srcdir(), name);
	char *exp = g_strdup_printf("%s/tests/mime/%s.expect", srcdir(), name);
	char *text, *want, *got;
	gsize len;
	struct mp_mime_message *msg;

	g_assert_true(g_file_get_contents(eml, &text, &len, NULL));
	g_assert_true(g_file_get_contents(exp, &want, NULL, NULL));
	msg = parse_checked(text, len, NULL);
	got = dump_message(msg);
	g_assert_cmpstr(got, ==, want);
	mp_mime_message_free(&msg);
	g_free(got);
	g_free(want);
	g_free(text);
	g_free(eml);
	g_free(exp);
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
		char *path = g_strdup_printf("/mime/corpus/%s",
					     (char *)names->pdata[i]);

		/* The names live as long as the test program. */
		g_test_add_data_func(path, names->pdata[i], test_corpus);
		g_free(path);
	}
	g_ptr_array_free(names, TRUE);
	g_free(dir);
}

/* --- parser ----------------------------------------------------------------
 */

#define CRLF "\r\n"

/* Offsets, worked out by hand: the CRLF before a boundary is the
 * boundary's, a part's header includes its blank line. */
static void
test_offsets(void)
{
	static const char m[] =
		"Content-Type: multipart/mixed; boundary=b" CRLF /* 0..42 */
			CRLF                                     /* 43 */
		"--b" CRLF                                       /* 45 */
		"Content-Type: text/plain" CRLF                  /* 50 */
			CRLF                                     /* 76 */
		"one" CRLF                                       /* 78 */
		"two" CRLF                                       /* 83 */
		"--b" CRLF                                       /* 88 */
			CRLF                                     /* 93 */
		"x" CRLF                                         /* 95 */
		"--b--" CRLF                                     /* 98 */
		"epilogue" CRLF;                                 /* 105 */
	struct mp_mime_message *msg = parse_checked(m, strlen(m), NULL);
	const struct mp_mime_part *root = msg->root, *a, *b;

	g_assert_cmpuint(msg->size, ==, 115);
	g_assert_cmpuint(msg->flags, ==, 0);
	g_assert_cmpuint(root->header_size, ==, 45);
	g_assert_cmpuint(root->body_offset, ==, 45);
	g_assert_cmpuint(root->body_size, ==, 70);
	g_assert_cmpuint(root->n_children, ==, 2);
	a = root->children;
	b = a->next;
	g_assert_cmpuint(a->header_offset, ==, 50);
	g_assert_cmpuint(a->header_size, ==, 28);
	g_assert_cmpuint(a->body_offset, ==, 78);
	g_assert_cmpuint(a->body_size, ==, 8); /* "one\\r\\ntwo" */
	g_assert_cmpuint(a->body_lines, ==, 1);
	g_assert_cmpuint(b->header_offset, ==, 93);
	g_assert_cmpuint(b->header_size, ==, 2);
	g_assert_cmpuint(b->body_size, ==, 1);
	g_assert_cmpuint(b->body_lines, ==, 0);
	g_assert_cmpstr(b->type.p, ==, "text");
	g_assert_cmpstr(b->params[0].value.p, ==, "us-ascii");
	mp_mime_message_free(&msg);
}

static void
test_boundary_prefix(void)
{
	static const char m[] =
		"Content-Type: multipart/mixed; boundary=a" CRLF CRLF "--a" CRLF
		"Content-Type: multipart/mixed; boundary=aa" CRLF CRLF
		"--aa" CRLF CRLF "in" CRLF "--a" CRLF CRLF "out" CRLF
		"--a--" CRLF;
	struct mp_mime_message *msg = parse_checked(m, strlen(m), NULL);
	const struct mp_mime_part *inner = msg->root->children;

	/* "--a" closes the inner multipart although it never ended. */
	g_assert_cmpuint(msg->root->n_children, ==, 2);
	g_assert_cmpuint(inner->n_children, ==, 1);
	g_assert_true(inner->flags & MP_MIME_PART_NO_END);
	g_assert_cmpuint(inner->children->body_size, ==, 2);
	g_assert_true(msg->flags & MP_MIME_BROKEN);
	mp_mime_message_free(&msg);
}

static void
test_same_boundary(void)
{
	static const char m[] =
		"Content-Type: multipart/mixed; boundary=a" CRLF CRLF "--a" CRLF
		"Content-Type: multipart/mixed; boundary=a" CRLF CRLF
		"--a" CRLF CRLF "x" CRLF "--a--" CRLF "--a" CRLF CRLF "y" CRLF;
	struct mp_mime_message *msg = parse_checked(m, strlen(m), NULL);

	/* The innermost multipart owns a shared boundary (RFC 2046). */
	g_assert_cmpuint(msg->root->n_children, ==, 2);
	g_assert_cmpuint(msg->root->children->n_children, ==, 1);
	mp_mime_message_free(&msg);
}

static GString *
nested(int levels)
{
	GString *m = g_string_new(NULL);

	for (int i = 0; i < levels; i++)
		g_string_append_printf(m,
				       "Content-Type: multipart/mixed; "
				       "boundary=b%d" CRLF CRLF "--b%d" CRLF,
				       i, i);
	g_string_append(m, "Content-Type: message/rfc822" CRLF CRLF
			   "Subject: deep" CRLF CRLF "x" CRLF);
	return m;
}

static void
test_limit_depth(void)
{
	struct mp_mime_limits lim = {.max_depth = 5};
	GString *m = nested(10);
	struct mp_mime_message *msg = parse_checked(m->str, m->len, &lim);
	int depth = 0;

	g_assert_true(msg->flags & MP_MIME_TRUNCATED);
	for (const struct mp_mime_part *p = msg->root; p != NULL;
	     p = p->children)
		depth++;
	g_assert_cmpint(depth, ==, 6);
	mp_mime_message_free(&msg);
	g_string_free(m, TRUE);

	m = nested(3);
	msg = parse_checked(m->str, m->len, &lim);
	g_assert_false(msg->flags & MP_MIME_TRUNCATED);
	g_assert_cmpuint(msg->n_parts, ==, 5);
	mp_mime_message_free(&msg);
	g_string_free(m, TRUE);
}

static void
test_limit_parts(void)
{
	struct mp_mime_limits lim = {.max_parts = 4};
	GString *m = g_string_new(
		"Content-Type: multipart/mixed; boundary=p" CRLF CRLF);
	struct mp_mime_message *msg;
	const struct mp_mime_part *last;

	for (int i = 0; i < 10; i++)
		g_string_append_printf(m, "--p" CRLF CRLF "part %d" CRLF, i);
	g_string_append(m, "--p--" CRLF "epilogue" CRLF);
	msg = parse_checked(m->str, m->len, &lim);
	g_assert_true(msg->flags & MP_MIME_TRUNCATED);
	g_assert_cmpuint(msg->n_parts, ==, 4);
	g_assert_cmpuint(msg->root->n_children, ==, 3);
	/* The third child ends at the next boundary; the rest is the
	 * multipart's own body, like a preamble. */
	last = msg->root->children->next->next;
	g_assert_cmpuint(last->body_size, ==, strlen("part 2"));
	g_assert_false(msg->root->flags & MP_MIME_PART_NO_END);
	mp_mime_message_free(&msg);
	g_string_free(m, TRUE);
}

static void
test_limit_fields(void)
{
	struct mp_mime_limits lim = {.max_header_fields = 3,
				     .max_field_size = 10};
	static const char m[] = "X-A: 1" CRLF "X-B: 2" CRLF "Subject: s" CRLF
				"Content-Type: text/html" CRLF CRLF "b" CRLF;
	static const char m2[] = "Subject: 0123456789abcdef" CRLF CRLF;
	struct mp_mime_message *msg = parse_checked(m, strlen(m), &lim);

	g_assert_true(msg->flags & MP_MIME_TRUNCATED);
	g_assert_cmpstr(msg->root->envelope->subject.p, ==, "s");
	g_assert_cmpstr(msg->root->subtype.p, ==, "plain");
	mp_mime_message_free(&msg);
	msg = parse_checked(m2, strlen(m2), &lim);
	g_assert_true(msg->flags & MP_MIME_TRUNCATED);
	g_assert_cmpstr(msg->root->envelope->subject.p, ==, "012345678");
	mp_mime_message_free(&msg);
}

static void
test_limit_params(void)
{
	struct mp_mime_limits lim = {.max_params = 2};
	static const char m[] = "Content-Type: text/plain; a=1; b=2; c=3" CRLF
				"Content-Language: en, fr, de" CRLF CRLF;
	struct mp_mime_message *msg = parse_checked(m, strlen(m), &lim);

	g_assert_true(msg->flags & MP_MIME_TRUNCATED);
	g_assert_cmpuint(msg->root->n_params, ==, 2);
	g_assert_cmpuint(msg->root->n_language, ==, 2);
	mp_mime_message_free(&msg);
}

static void
test_limit_result(void)
{
	struct mp_mime_limits lim = {.max_result_size = 100};
	GString *m = g_string_new("Subject: ");
	struct mp_mime_message *msg;

	g_string_append_printf(m, "%0200d" CRLF "To: a@b" CRLF CRLF, 0);
	msg = parse_checked(m->str, m->len, &lim);
	g_assert_true(msg->flags & MP_MIME_TRUNCATED);
	g_assert_null(msg->root->envelope->subject.p);
	g_assert_cmpuint(msg->root->envelope->to.n, ==, 1);
	mp_mime_message_free(&msg);
	g_string_free(m, TRUE);
}

static void
test_boundary_too_long(void)
{
	GString *m = g_string_new("Content-Type: multipart/mixed; boundary=");
	struct mp_mime_message *msg;

	for (int i = 0; i < MP_MIME_BOUNDARY_CAP + 1; i++)
		g_string_append_c(m, 'x');
	g_string_append(m, CRLF CRLF "--x" CRLF);
	msg = parse_checked(m->str, m->len, NULL);
	g_assert_false(msg->root->flags & MP_MIME_PART_MULTIPART);
	g_assert_cmpuint(msg->n_parts, ==, 1);
	mp_mime_message_free(&msg);
	g_string_free(m, TRUE);
}

/* The example of RFC 3501 section 6.4.5, built as a message. */
static void
test_sections(void)
{
	static const char m[] =
		"Content-Type: multipart/mixed; boundary=0" CRLF CRLF
		"--0" CRLF CRLF "1" CRLF "--0" CRLF
		"Content-Type: application/octet-stream" CRLF CRLF "2" CRLF
		"--0" CRLF "Content-Type: message/rfc822" CRLF CRLF
		"Content-Type: multipart/mixed; boundary=3" CRLF CRLF
		"--3" CRLF CRLF "3.1" CRLF "--3" CRLF
		"Content-Type: application/octet-stream" CRLF CRLF "3.2" CRLF
		"--3--" CRLF "--0" CRLF
		"Content-Type: multipart/mixed; boundary=4" CRLF CRLF "--4" CRLF
		"Content-Type: image/gif" CRLF CRLF "4.1" CRLF "--4" CRLF
		"Content-Type: message/rfc822" CRLF CRLF
		"Content-Type: multipart/mixed; boundary=42" CRLF CRLF
		"--42" CRLF CRLF "4.2.1" CRLF "--42" CRLF
		"Content-Type: multipart/alternative; boundary=422" CRLF CRLF
		"--422" CRLF CRLF "4.2.2.1" CRLF "--422" CRLF
		"Content-Type: text/richtext" CRLF CRLF "4.2.2.2" CRLF
		"--422--" CRLF "--42--" CRLF "--4--" CRLF "--0--" CRLF;
	static const struct {
		const char *section, *type, *body;
	} cases[] = {
		{"1", "text/plain", "1"},
		{"2", "application/octet-stream", "2"},
		{"3", "message/rfc822", NULL},
		{"3.1", "text/plain", "3.1"},
		{"3.2", "application/octet-stream", "3.2"},
		{"4", "multipart/mixed", NULL},
		{"4.1", "image/gif", "4.1"},
		{"4.2", "message/rfc822", NULL},
		{"4.2.1", "text/plain", "4.2.1"},
		{"4.2.2", "multipart/alternative", NULL},
		{"4.2.2.1", "text/plain", "4.2.2.1"},
		{"4.2.2.2", "text/richtext", "4.2.2.2"},
	};
	static const char *const missing[] = {"5",    "0",     "01",  "1.1",
					      "3.3",  "4.2.3", "1.",  ".1",
					      "4..1", "x",     "2.1", "4.1.1"};
	struct mp_mime_message *msg = parse_checked(m, strlen(m), NULL);
	const struct mp_mime_part *part;

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *type;

		g_assert_true(
			mp_mime_part_find(msg->root, cases[i].section, &part));
		type = g_strdup_printf("%s/%s", part->type.p, part->subtype.p);
		g_assert_cmpstr(type, ==, cases[i].type);
		if (cases[i].body != NULL) {
			g_assert_cmpuint(part->body_size, ==,
					 strlen(cases[i].body));
			g_assert_cmpmem(m + part->body_offset, part->body_size,
					cases[i].body, strlen(cases[i].body));
		}
		g_free(type);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(missing); i++)
		g_assert_false(mp_mime_part_find(msg->root, missing[i], &part));
	g_assert_true(mp_mime_part_find(msg->root, "", &part));
	g_assert_true(part == msg->root);
	mp_mime_message_free(&msg);

	/* A message that is not multipart has only a part 1, its body. */
	msg = parse_str("Subject: x" CRLF CRLF "body" CRLF);
	g_assert_true(mp_mime_part_find(msg->root, "1", &part));
	g_assert_true(part == msg->root);
	g_assert_false(mp_mime_part_find(msg->root, "1.1", &part));
	g_assert_false(mp_mime_part_find(msg->root, "2", &part));
	mp_mime_message_free(&msg);
}

static void
test_no_crlf_boundary_at_eof(void)
{
	static const char m[] =
		"Content-Type: multipart/mixed; boundary=e" CRLF CRLF
		"--e" CRLF CRLF "x" CRLF "--e";
	struct mp_mime_message *msg = parse_checked(m, strlen(m), NULL);

	/* A delimiter at the very end opens one last, empty part. */
	g_assert_cmpuint(msg->root->n_children, ==, 2);
	g_assert_cmpuint(msg->root->children->body_size, ==, 1);
	g_assert_cmpuint(msg->root->children->next->header_offset, ==,
			 strlen(m));
	mp_mime_message_free(&msg);
}

/* --- headers ----------------------------------------------------------------
 */

static void
test_header_iter(void)
{
	static const char h[] =
		"From: a@b" CRLF "no colon here" CRLF "Subject: one" CRLF
		"\ttwo " CRLF " three" CRLF "X-Empty:" CRLF "Bad Name : v" CRLF
		"X-Bare: lf\n" CRLF "Body: not a header" CRLF;
	static const char *const want[][2] = {
		{"From", "a@b"},  {"Subject", "one\ttwo  three"},
		{"X-Empty", ""},  {"Bad Name", "v"},
		{"X-Bare", "lf"},
	};
	struct mp_mime_header_iter it;
	struct mp_str name, value;
	size_t i = 0;

	mp_mime_header_iter_init(&it, h, strlen(h));
	while (mp_mime_header_iter_next(&it, &name, &value)) {
		g_assert_cmpuint(i, <, G_N_ELEMENTS(want));
		g_assert_cmpmem(name.p, name.len, want[i][0],
				strlen(want[i][0]));
		g_assert_cmpmem(value.p, value.len, want[i][1],
				strlen(want[i][1]));
		i++;
	}
	g_assert_cmpuint(i, ==, G_N_ELEMENTS(want));
	g_assert_false(mp_mime_header_iter_next(&it, &name, &value));
	mp_mime_header_iter_deinit(&it);
}

static const struct mp_mime_param *
param(const struct mp_mime_param *v, uint32_t n, const char *name)
{
	for (uint32_t i = 0; i < n; i++) {
		if (strcmp(v[i].name.p, name) == 0)
			return &v[i];
	}
	return NULL;
}

static void
test_params(void)
{
	static const struct {
		const char *header, *name, *value;
	} cases[] = {
		{"text/plain; charset=\"UTF-8\"", "charset", "UTF-8"},
		{"text/plain; CharSet = utf-8 (comment)", "charset", "utf-8"},
		{"text/plain; name=\"a \\\"q\\\" b\"", "name", "a \"q\" b"},
		{"multipart/mixed; boundary=----=_NextPart_000_0012",
		 "boundary", "----=_NextPart_000_0012"},
		{"text/plain; junk; name=x", "name", "x"},
		{"a/b; t*=utf-8''%E2%9C%93", "t", "\xe2\x9c\x93"},
		{"a/b; t*=iso-8859-1'fr'caf%E9", "t", "caf\xc3\xa9"},
		{"a/b; t*=''plain%20text", "t", "plain text"},
		{"a/b; t*=%FF", "t", "\xef\xbf\xbd"},
		{"a/b; t*=x-no-such-charset''ok%C3%A9", "t", "ok\xc3\xa9"},
		{"a/b; t*0=a; t*2=c; t*1=b", "t", "abc"},
		{"a/b; t*0=a; t*2=c", "t", "a"},
		{"a/b; t*1=b; t*0*=utf-8''%C3; t*2*=%A9", "t",
		 "\xef\xbf\xbd"
		 "b\xef\xbf\xbd"},
		{"a/b; t*0*=utf-8''%C3; t*1*=%A9", "t", "\xc3\xa9"},
		{"a/b; t*00=x", "t*00", "x"},
		{"a/b; t=%41", "t", "%41"},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *m = g_strdup_printf("Content-Type: %s" CRLF CRLF,
					  cases[i].header);
		struct mp_mime_message *msg = parse_checked(m, strlen(m), NULL);
		const struct mp_mime_param *p = param(
			msg->root->params, msg->root->n_params, cases[i].name);

		g_assert_nonnull(p);
		g_assert_cmpstr(p->value.p, ==, cases[i].value);
		mp_mime_message_free(&msg);
		g_free(m);
	}
}

static void
test_content_fields(void)
{
	static const char m[] =
		"Content-Type: TEXT/HTML (comment) ; a=1; b=\"2\"" CRLF
		"Content-Type: image/png" CRLF
		"Content-Transfer-Encoding:  (x) BASE64 " CRLF
		"Content-Disposition: ATTACHMENT; filename=\"f.txt\"" CRLF
		"Content-ID:  <id@x> " CRLF
		"Content-Language: en-US, (c) fr" CRLF CRLF;
	struct mp_mime_message *msg = parse_checked(m, strlen(m), NULL);
	const struct mp_mime_part *p = msg->root;

	g_assert_cmpstr(p->type.p, ==, "text");
	g_assert_cmpstr(p->subtype.p, ==, "html");
	g_assert_cmpuint(p->n_params, ==, 2);
	g_assert_cmpstr(p->params[1].value.p, ==, "2");
	g_assert_cmpstr(p->encoding.p, ==, "base64");
	g_assert_cmpstr(p->disposition.p, ==, "attachment");
	g_assert_cmpstr(p->disposition_params[0].value.p, ==, "f.txt");
	g_assert_cmpstr(p->id.p, ==, "<id@x>");
	g_assert_cmpuint(p->n_language, ==, 2);
	g_assert_cmpstr(p->language[1].p, ==, "fr");
	g_assert_null(p->description.p);
	mp_mime_message_free(&msg);
}

/* One address list: "kind name adl mailbox host" per address. */
static char *
addr_text(const struct mp_mime_addrlist *l)
{
	GString *out = g_string_new(NULL);

	for (uint32_t i = 0; i < l->n; i++) {
		const struct mp_mime_address *a = &l->v[i];

		if (i > 0)
			g_string_append(out, " | ");
		g_string_append(out, a->kind == MP_MIME_ADDR_MAILBOX ? "M"
				     : a->kind == MP_MIME_ADDR_GROUP_START
					     ? "G"
					     : "E");
		g_string_append_c(out, ' ');
		dump_str(out, a->name);
		g_string_append_c(out, ' ');
		dump_str(out, a->adl);
		g_string_append_c(out, ' ');
		dump_str(out, a->mailbox);
		g_string_append_c(out, ' ');
		dump_str(out, a->host);
	}
	return g_string_free(out, FALSE);
}

static void
test_addresses(void)
{
	static const struct {
		const char *value, *want;
	} cases[] = {
		{"a@b", "M NIL NIL \"a\" \"b\""},
		{"John Doe <jd@x.example>",
		 "M \"John Doe\" NIL \"jd\" \"x.example\""},
		{"\"Doe, John\" <jd@x>", "M \"Doe, John\" NIL \"jd\" \"x\""},
		{"jd@x (John Doe)", "M \"John Doe\" NIL \"jd\" \"x\""},
		{"(c) jd@x", "M \"c\" NIL \"jd\" \"x\""},
		{"=?utf-8?q?J=C3=B6rg?= <j@x>",
		 "M \"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"x\""},
		{"<@r1.example,@r2.example:u@h>",
		 "M NIL \"@r1.example,@r2.example\" \"u\" \"h\""},
		{"\"quoted local\"@x",
		 "M NIL NIL \"\\\"quoted local\\\"\" \"x\""},
		{"john . doe @ x . example",
		 "M NIL NIL \"john.doe\" \"x.example\""},
		{"root", "M NIL NIL \"root\" \"\""},
		{"<>", "M NIL NIL \"\" \"\""},
		{"g: a@b, c@d;",
		 "G NIL NIL \"g\" NIL | M NIL NIL \"a\" \"b\" | "
		 "M NIL NIL \"c\" \"d\" | E NIL NIL NIL NIL"},
		{"undisclosed-recipients:;",
		 "G NIL NIL \"undisclosed-recipients\" NIL | E NIL NIL NIL "
		 "NIL"},
		{"g: a@b", "G NIL NIL \"g\" NIL | M NIL NIL \"a\" \"b\" | "
			   "E NIL NIL NIL NIL"},
		{"a@b,,, c@d", "M NIL NIL \"a\" \"b\" | M NIL NIL \"c\" \"d\""},
		{"x@y <x@y>", "M \"x@y\" NIL \"x\" \"y\""},
		{"Q. Public <q@x", "M \"Q. Public\" NIL \"q\" \"x\""},
		{"A <a@x, b@y",
		 "M \"A\" NIL \"a\" \"x\" | M NIL NIL \"b\" \"y\""},
		{"a@[127.0.0.1]", "M NIL NIL \"a\" \"[127.0.0.1]\""},
		{"", ""},
		{" ,; ", ""},
		{"\"unclosed", "M NIL NIL \"unclosed\" \"\""},
		{"a@b (unclosed comment",
		 "M \"unclosed comment\" NIL \"a\" \"b\""},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *m = g_strdup_printf("To: %s" CRLF CRLF, cases[i].value);
		struct mp_mime_message *msg = parse_checked(m, strlen(m), NULL);
		char *got = addr_text(&msg->root->envelope->to);

		g_assert_cmpstr(got, ==, cases[i].want);
		mp_mime_message_free(&msg);
		g_free(got);
		g_free(m);
	}
}

static void
test_envelope_defaults(void)
{
	struct mp_mime_message *msg =
		parse_str("From: a@b" CRLF "Sender:" CRLF "Reply-To: r@s" CRLF
			  "Subject:  hi  " CRLF "Subject: second" CRLF CRLF);
	const struct mp_mime_envelope *env = msg->root->envelope;

	g_assert_true(env->sender.v == env->from.v);
	g_assert_cmpuint(env->sender.n, ==, 1);
	g_assert_cmpstr(env->reply_to.v[0].mailbox.p, ==, "r");
	g_assert_cmpstr(env->subject.p, ==, "hi");
	g_assert_null(env->date.p);
	mp_mime_message_free(&msg);
}

/* --- decoding ------------------------------------------------------------- */

static void
test_rfc2047(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"plain text", "plain text"},
		{"=?UTF-8?B?SGVsbG8=?=", "Hello"},
		{"=?utf-8?q?caf=C3=A9_au_lait?=", "caf\xc3\xa9 au lait"},
		{"=?ISO-8859-1?Q?Keld_J=F8rn?=", "Keld J\xc3\xb8rn"},
		{"=?utf-8?q?a?= =?utf-8?q?b?=", "ab"},
		{"=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab"},
		{"=?utf-8?q?a?= b =?utf-8?q?c?=", "a b c"},
		{"=?utf-8?b?4pw=?= =?utf-8?b?kw==?=", "\xe2\x9c\x93"},
		{"=?iso-8859-1?q?=E9?= =?utf-8?q?=C3=A9?=", "\xc3\xa9\xc3\xa9"},
		{"=?utf-8*en?q?lang?=", "lang"},
		{"=?utf-8?q?bad=ZZ?=", "bad=ZZ"},
		{"=?utf-8?q?not closed", "=?utf-8?q?not closed"},
		{"=?utf-8?x?bad-enc?=", "=?utf-8?x?bad-enc?="},
		{"=??q?empty-charset?=", "=??q?empty-charset?="},
		{"=?unknown-cs?q?ok?=", "ok"},
		{"=?utf-8?q?=FF?=", "\xef\xbf\xbd"},
		{"raw \xff latin1", "raw \xef\xbf\xbd latin1"},
		{"a=?utf-8?q?b?=c", "abc"},
		{"=?utf-8?q?x?=  ", "x  "},
		{"=?ISO-2022-JP?B?GyRCJEYkOSRIGyhC?=",
		 "\xe3\x81\xa6\xe3\x81\x99\xe3\x81\xa8"},
		{"=?", "=?"},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct mp_buf out = {0};

		mp_mime_decode_header(cases[i].in, strlen(cases[i].in), &out);
		g_assert_cmpstr(out.data, ==, cases[i].out);
		mp_buf_free(&out);
	}
}

static void
decode_check(enum mp_mime_cte cte, const char *in, const char *want)
{
	size_t len = strlen(in);

	/* Whole, then split at every point: the same bytes out. */
	for (size_t split = 0; split <= len; split++) {
		struct mp_mime_body_decoder dec;
		struct mp_buf out = {0};

		mp_mime_body_decoder_init(&dec, cte);
		mp_mime_body_decoder_feed(&dec, in, split, &out);
		mp_mime_body_decoder_feed(&dec, in + split, len - split, &out);
		mp_mime_body_decoder_finish(&dec, &out);
		g_assert_cmpmem(out.data, out.len, want, strlen(want));
		mp_buf_free(&out);
	}
}

static void
test_body_decoder(void)
{
	static const char *const b64[][2] = {
		{"SGVsbG8sIHdvcmxkIQ==", "Hello, world!"},
		{"SGVs\r\nbG8s IHdv\r\ncmxk", "Hello, world"},
		{"SGVsbG8=\r\nIGFnYWlu", "Hello"},
		{"S*G!V#s", "Hel"},
		{"", ""},
	};
	static const char *const qp[][2] = {
		{"a=3Db", "a=b"},
		{"caf=E9=\r\nsoft", "caf\xe9soft"},
		{"line  \r\nnext\t\r\n", "line\r\nnext\r\n"},
		{"soft= \t\r\nbreak", "softbreak"},
		{"bad=zz=", "bad=zz="},
		{"=4", "=4"},
		{"lf=\nx", "lfx"},
		{"a=3d=3D", "a=="},
		{"tail  ", "tail"},
		{"cr\rx", "cr\rx"},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(b64); i++)
		decode_check(MP_MIME_CTE_BASE64, b64[i][0], b64[i][1]);
	for (size_t i = 0; i < G_N_ELEMENTS(qp); i++)
		decode_check(MP_MIME_CTE_QP, qp[i][0], qp[i][1]);
	decode_check(MP_MIME_CTE_IDENTITY, "as is=20", "as is=20");
	g_assert_cmpint(mp_mime_cte_parse((struct mp_str){" Base64 ", 8}), ==,
			MP_MIME_CTE_BASE64);
	g_assert_cmpint(mp_mime_cte_parse((struct mp_str){"x-uue", 5}), ==,
			MP_MIME_CTE_UNKNOWN);
	g_assert_cmpint(mp_mime_cte_parse((struct mp_str){NULL, 0}), ==,
			MP_MIME_CTE_IDENTITY);
}

/* --- the blob ----------------------------------------------------------------
 */

static GString *
sample_blob(size_t *size_r)
{
	char *path = g_strdup_printf("%s/tests/mime/rfc822-attachment.eml",
				     srcdir());
	char *text;
	gsize len;
	struct mp_mime_message *msg;
	GString *blob;

	g_assert_true(g_file_get_contents(path, &text, &len, NULL));
	msg = parse(text, len, NULL);
	blob = blob_of(msg);
	*size_r = len;
	mp_mime_message_free(&msg);
	g_free(text);
	g_free(path);
	return blob;
}

static void
test_blob_truncated(void)
{
	size_t size;
	GString *blob = sample_blob(&size);
	const char *error;

	for (size_t len = 0; len < blob->len; len++) {
		error = NULL;
		g_assert_null(
			mp_mime_deserialize(blob->str, len, size, &error));
		g_assert_nonnull(error);
	}
	error = NULL;
	g_assert_null(
		mp_mime_deserialize(blob->str, blob->len, size + 1, &error));
	g_assert_cmpstr(error, ==, "blob is for a message of another size");
	g_string_append_c(blob, 0);
	g_assert_null(mp_mime_deserialize(blob->str, blob->len, size, &error));
	/* What sqlite3_column_blob() gives for an empty BLOB. */
	error = NULL;
	g_assert_null(mp_mime_deserialize(NULL, 0, size, &error));
	g_assert_nonnull(error);
	g_string_free(blob, TRUE);
}

/* Every single-byte change either fails cleanly or gives a tree the
 * checks accept; ASan watches the rest. */
static void
test_blob_corrupt(void)
{
	size_t size;
	GString *blob = sample_blob(&size);
	static const uint8_t values[] = {0x00, 0x01, 0x7f, 0x80, 0xff};

	for (size_t i = 0; i < blob->len; i++) {
		char saved = blob->str[i];

		for (size_t v = 0; v < G_N_ELEMENTS(values); v++) {
			const char *error = NULL;
			struct mp_mime_message *msg;

			blob->str[i] = (char)values[v];
			msg = mp_mime_deserialize(blob->str, blob->len, size,
						  &error);
			g_assert_true((msg == NULL) == (error != NULL));
			if (msg != NULL) {
				GString *again = blob_of(msg);

				g_assert_true(g_string_equal(again, blob));
				g_string_free(again, TRUE);
				mp_mime_message_free(&msg);
			}
		}
		blob->str[i] = saved;
	}
	g_string_free(blob, TRUE);
}

static int
dump_files(int argc, char **argv)
{
	for (int i = 2; i < argc; i++) {
		char *text, *dump;
		gsize len;
		struct mp_mime_message *msg;

		if (!g_file_get_contents(argv[i], &text, &len, NULL)) {
			fprintf(stderr, "cannot read %s\n", argv[i]);
			return 1;
		}
		msg = parse(text, len, NULL);
		dump = dump_message(msg);
		fputs(dump, stdout);
		g_free(dump);
		mp_mime_message_free(&msg);
		g_free(text);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--dump") == 0)
		return dump_files(argc, argv);
	g_test_init(&argc, &argv, NULL);
	add_corpus_tests();
	g_test_add_func("/mime/parser/offsets", test_offsets);
	g_test_add_func("/mime/parser/boundary/prefix", test_boundary_prefix);
	g_test_add_func("/mime/parser/boundary/same", test_same_boundary);
	g_test_add_func("/mime/parser/boundary/too-long",
			test_boundary_too_long);
	g_test_add_func("/mime/parser/boundary/at-eof",
			test_no_crlf_boundary_at_eof);
	g_test_add_func("/mime/parser/limit/depth", test_limit_depth);
	g_test_add_func("/mime/parser/limit/parts", test_limit_parts);
	g_test_add_func("/mime/parser/limit/fields", test_limit_fields);
	g_test_add_func("/mime/parser/limit/params", test_limit_params);
	g_test_add_func("/mime/parser/limit/result", test_limit_result);
	g_test_add_func("/mime/section/rfc3501", test_sections);
	g_test_add_func("/mime/header/iter", test_header_iter);
	g_test_add_func("/mime/header/params", test_params);
	g_test_add_func("/mime/header/content", test_content_fields);
	g_test_add_func("/mime/header/addresses", test_addresses);
	g_test_add_func("/mime/header/envelope-defaults",
			test_envelope_defaults);
	g_test_add_func("/mime/decode/rfc2047", test_rfc2047);
	g_test_add_func("/mime/decode/body", test_body_decoder);
	g_test_add_func("/mime/blob/truncated", test_blob_truncated);
	g_test_add_func("/mime/blob/corrupt", test_blob_corrupt);
	return g_test_run();
}
