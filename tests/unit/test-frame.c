/* test-frame.c - the framer: lines, byte runs, limits, any split point. */
#include "config.h"

#include <glib.h>
#include <string.h>

#include <moonpost/plugin.h>

#include "frame.h"

/* A consumer that mimics the connection: a buffer that input is appended
 * to, frames taken from its start, and what they said recorded as text. */
struct feeder {
	struct mp_framer f;
	GString *buf;
	GString *log;
	/* After a line equal to this, switch to exact mode for n bytes. */
	const char *bytes_after;
	uint64_t bytes_n;
};

static void
feeder_init(struct feeder *fd, size_t max_line)
{
	memset(fd, 0, sizeof(*fd));
	mp_framer_init(&fd->f, max_line);
	fd->buf = g_string_new(NULL);
	fd->log = g_string_new(NULL);
}

static void
feeder_free(struct feeder *fd)
{
	g_string_free(fd->buf, TRUE);
	g_string_free(fd->log, TRUE);
}

static void
record_line(struct feeder *fd, const struct mp_frame *fr)
{
	g_string_append_printf(fd->log, "L%s%s[",
			       (fr->flags & MP_LINE_BARE_LF) ? "b" : "",
			       (fr->flags & MP_LINE_TOO_LONG) ? "!" : "");
	g_string_append_len(fd->log, fr->data, (gssize)fr->len);
	g_string_append_c(fd->log, ']');
	if (fd->bytes_after != NULL && fr->len == strlen(fd->bytes_after) &&
	    memcmp(fr->data, fd->bytes_after, fr->len) == 0)
		mp_framer_expect_bytes(&fd->f, fd->bytes_n);
}

/* Bytes of consecutive BYTES frames are merged in the log so that the
 * result does not depend on where reads were split. */
static void
record_bytes(struct feeder *fd, const struct mp_frame *fr)
{
	if (fd->log->len == 0 || fd->log->str[fd->log->len - 1] != '}')
		g_string_append(fd->log, "B{}");
	g_string_insert_len(fd->log, (gssize)fd->log->len - 1, fr->data,
			    (gssize)fr->len);
}

static void
feed(struct feeder *fd, const char *data, size_t len)
{
	struct mp_frame fr;

	g_string_append_len(fd->buf, data, (gssize)len);
	for (;;) {
		mp_framer_next(&fd->f, fd->buf->str, fd->buf->len, &fr);
		if (fr.kind == MP_FRAME_NEED_MORE)
			return;
		if (fr.kind == MP_FRAME_LINE)
			record_line(fd, &fr);
		if (fr.kind == MP_FRAME_BYTES) {
			record_bytes(fd, &fr);
			fr.consumed = fr.len;
			mp_framer_bytes_used(&fd->f, fr.len);
		}
		g_string_erase(fd->buf, 0, (gssize)fr.consumed);
	}
}

struct frame_case {
	const char *name;
	const char *input;
	size_t input_len;
	size_t max_line;
	const char *bytes_after;
	uint64_t bytes_n;
	const char *expect;
	size_t expect_len;
};

/* A literal and its length, NUL bytes included. */
#define S(lit) lit, sizeof(lit) - 1

static const struct frame_case cases[] = {
	{"crlf", S("A\r\nBB\r\n"), 10, NULL, 0, S("L[A]L[BB]")},
	{"bare-lf", S("A\nB\r\n"), 10, NULL, 0, S("Lb[A]L[B]")},
	{"empty-lines", S("\r\n\n"), 10, NULL, 0, S("L[]Lb[]")},
	{"cr-inside", S("A\rB\r\n"), 10, NULL, 0, S("L[A\rB]")},
	{"incomplete-tail", S("A\r\nB"), 10, NULL, 0, S("L[A]")},
	{"exactly-max", S("0123456789\r\n"), 10, NULL, 0, S("L[0123456789]")},
	{"max-bare-lf", S("0123456789\n"), 10, NULL, 0, S("Lb[0123456789]")},
	{"one-over-bare", S("0123456789X\n"), 10, NULL, 0,
	 S("Lb![0123456789]")},
	{"too-long-then-ok", S("0123456789ABCDEFGHIJ\r\nok\r\n"), 10, NULL, 0,
	 S("L![0123456789]L[ok]")},
	{"too-long-huge-tail",
	 S("0123456789012345678901234567890123456789\r\nnext\r\n"), 10, NULL, 0,
	 S("L![0123456789]L[next]")},
	{"nul-byte", S("a\0b\r\n"), 10, NULL, 0, S("L[a\0b]")},
	{"literal", S("APPEND {5}\r\nhello\r\nDONE\r\n"), 20, "APPEND {5}", 5,
	 S("L[APPEND {5}]B{hello}L[]L[DONE]")},
	{"literal-with-crlf", S("X\r\na\r\nb\r\nY\r\n"), 20, "X", 4,
	 S("L[X]B{a\r\nb}L[]L[Y]")},
	{"literal-longer-than-max", S("X\r\n0123456789ABCDEFGHIJ\r\n"), 4, "X",
	 20, S("L[X]B{0123456789ABCDEFGHIJ}L[]")},
};

static void
assert_log(const struct feeder *fd, const struct frame_case *c)
{
	if (fd->log->len != c->expect_len ||
	    memcmp(fd->log->str, c->expect, c->expect_len) != 0)
		g_error("%s: got \"%s\", want \"%s\"", c->name, fd->log->str,
			c->expect);
}

static void
run_case(const struct frame_case *c, int mode, GRand *rnd)
{
	size_t len = c->input_len;
	struct feeder fd;
	size_t off = 0;

	feeder_init(&fd, c->max_line);
	fd.bytes_after = c->bytes_after;
	fd.bytes_n = c->bytes_n;
	while (off < len) {
		size_t n = mode == 0 ? len
			   : mode == 1
				   ? 1
				   : (size_t)g_rand_int_range(
					     rnd, 1, (gint32)(len - off) + 1);
		if (n > len - off)
			n = len - off;
		feed(&fd, c->input + off, n);
		off += n;
	}
	assert_log(&fd, c);
	feeder_free(&fd);
}

static void
test_cases(gconstpointer data)
{
	int mode = GPOINTER_TO_INT(data);
	GRand *rnd = g_rand_new_with_seed(42);

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		int rounds = mode == 2 ? 50 : 1;
		for (int r = 0; r < rounds; r++)
			run_case(&cases[i], mode, rnd);
	}
	g_rand_free(rnd);
}

/* The framer never asks to keep more than one maximal line buffered:
 * the connection's memory stays bounded whatever a client sends. */
static void
test_bounded(void)
{
	struct mp_framer f;
	struct mp_frame fr;
	char data[100];

	memset(data, 'x', sizeof(data));
	mp_framer_init(&f, 10);
	mp_framer_next(&f, data, 11, &fr);
	g_assert_cmpint(fr.kind, ==, MP_FRAME_NEED_MORE);
	mp_framer_next(&f, data, 12, &fr);
	g_assert_cmpint(fr.kind, ==, MP_FRAME_LINE);
	g_assert_true(fr.flags & MP_LINE_TOO_LONG);
	g_assert_cmpuint(fr.consumed, ==, 12);
	/* The tail is skipped as it comes, without waiting for a LF. */
	mp_framer_next(&f, data, sizeof(data), &fr);
	g_assert_cmpint(fr.kind, ==, MP_FRAME_SKIP);
	g_assert_cmpuint(fr.consumed, ==, sizeof(data));
}

static void
test_stream_mode(void)
{
	struct mp_framer f;
	struct mp_frame fr;

	mp_framer_init(&f, 10);
	mp_framer_stream(&f);
	mp_framer_next(&f, "abc\r\n.\r\nQUIT\r\n", 14, &fr);
	g_assert_cmpint(fr.kind, ==, MP_FRAME_BYTES);
	g_assert_cmpuint(fr.len, ==, 14);
	/* The receiver found its end marker after 8 bytes and went back. */
	mp_framer_bytes_used(&f, 8);
	mp_framer_lines(&f);
	mp_framer_next(&f, "QUIT\r\n", 6, &fr);
	g_assert_cmpint(fr.kind, ==, MP_FRAME_LINE);
	g_assert_cmpmem(fr.data, fr.len, "QUIT", 4);
	mp_framer_next(&f, "", 0, &fr);
	g_assert_cmpint(fr.kind, ==, MP_FRAME_NEED_MORE);
}

static void
test_exact_zero(void)
{
	struct mp_framer f;
	struct mp_frame fr;

	mp_framer_init(&f, 10);
	mp_framer_expect_bytes(&f, 0);
	mp_framer_next(&f, "A\r\n", 3, &fr);
	g_assert_cmpint(fr.kind, ==, MP_FRAME_LINE);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_data_func("/core/frame/whole", GINT_TO_POINTER(0),
			     test_cases);
	g_test_add_data_func("/core/frame/byte-by-byte", GINT_TO_POINTER(1),
			     test_cases);
	g_test_add_data_func("/core/frame/random-splits", GINT_TO_POINTER(2),
			     test_cases);
	g_test_add_func("/core/frame/too-long/bounded", test_bounded);
	g_test_add_func("/core/frame/stream", test_stream_mode);
	g_test_add_func("/core/frame/exact-zero", test_exact_zero);
	return g_test_run();
}
