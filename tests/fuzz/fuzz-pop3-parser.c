/* fuzz-pop3-parser.c - the POP3 command parser and the dot filter against
 * arbitrary bytes.
 *
 * The first byte picks the limits (bits 0-1: NULL, the defaults, tiny,
 * one octet) and how the dot filter is run (bit 2: TOP, bits 3-7: its
 * line count and the size of the pieces fed). The rest is the line, as
 * the framer would hand it over, and also a message body. Checks the
 * promises of pop3-parser.h and pop3-dot.h: only MP_OK or MP_DECLINED; a
 * declined line gets a printable text and formats to one reply line;
 * every view lies inside the line and every limit holds; parsing is
 * deterministic; the dot filter's output unstuffs to its input, never
 * holds the terminator early, and is the same however the input is cut;
 * RETR by sendfile (pop3_dot_find over pieces of any size, and
 * pop3_dot_tail) sends exactly what the filter does. */
#include "config.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "pop3-dot.h"
#include "pop3-parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct pop3_limits *
pick_limits(uint8_t sel, struct pop3_limits *lim, struct pop3_limits *eff)
{
	static const struct pop3_limits tiny = {4, 4, 4};
	static const struct pop3_limits one = {1, 1, 1};

	pop3_parser_limits_init(eff);
	switch (sel & 3) {
	case 0:
		return NULL;
	case 1:
		*lim = *eff;
		return lim;
	case 2:
		*lim = *eff = tiny;
		return lim;
	default:
		*lim = *eff = one;
		return lim;
	}
}

static bool
inside(struct mp_str v, const char *line, size_t len)
{
	if (v.p == NULL)
		return v.len == 0;
	return v.p >= line && v.len <= len &&
	       (size_t)(v.p - line) <= len - v.len;
}

static bool
printable(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s < 32 || *s > 126)
			return false;
	}
	return true;
}

static void
check_reply(bool ok, const char *code, const char *text)
{
	struct mp_buf b = {0};

	pop3_reply_format(&b, ok, code, text);
	assert(b.len <= POP3_REPLY_LINE_MAX);
	assert(strchr(b.data, '\r') == b.data + b.len - 2);
	assert(strchr(b.data, '\n') == b.data + b.len - 1);
	mp_buf_free(&b);
}

static void
check_cmd(const struct pop3_cmd *cmd, const char *line, size_t len,
	  const struct pop3_limits *lim)
{
	assert(cmd->verb != POP3_VERB_NONE);
	assert(inside(cmd->arg, line, len));
	assert(inside(cmd->auth_response, line, len));
	switch (cmd->verb) {
	case POP3_VERB_USER:
		assert(cmd->arg.len > 0 && cmd->arg.len <= lim->user_max);
		assert(memchr(cmd->arg.p, ' ', cmd->arg.len) == NULL);
		break;
	case POP3_VERB_PASS:
		assert(cmd->arg.len > 0 && cmd->arg.len <= lim->pass_max);
		assert(memchr(cmd->arg.p, '\0', cmd->arg.len) == NULL);
		break;
	case POP3_VERB_AUTH:
		assert(cmd->arg.len <= POP3_MECH_MAX);
		assert(cmd->auth_response.len <= lim->auth_response_max);
		assert(cmd->auth_response.p == NULL || cmd->arg.len > 0);
		break;
	case POP3_VERB_RETR:
	case POP3_VERB_DELE:
	case POP3_VERB_TOP:
		assert(cmd->has_msg);
		/* fall through */
	case POP3_VERB_LIST:
	case POP3_VERB_UIDL:
		assert(!cmd->has_msg || cmd->msg >= 1);
		break;
	default:
		assert(cmd->arg.p == NULL && !cmd->has_msg);
		break;
	}
	if (cmd->verb != POP3_VERB_TOP)
		assert(cmd->lines == 0);
}

/* Runs the dot filter over in, cut every `step` bytes. */
static void
dot_run(const char *in, size_t len, bool top, uint32_t lines, size_t step,
	struct mp_buf *out, size_t *used_r)
{
	struct pop3_dot d;
	size_t off = 0, used = 0;

	pop3_dot_init(&d, top, lines);
	while (off < len && !pop3_dot_done(&d)) {
		size_t n = len - off < step ? len - off : step;
		size_t u = pop3_dot_feed(&d, in + off, n, out);

		assert(u <= n);
		assert(u == n || pop3_dot_done(&d));
		used += u;
		off += n;
	}
	pop3_dot_finish(&d, out);
	*used_r = used;
}

/* Undoes the stuffing of a response body; false if the terminator shows
 * up anywhere but at the end. */
static bool
unstuff(const struct mp_buf *out, struct mp_buf *plain)
{
	size_t i = 0;
	bool line_start = true;

	assert(out->len >= 3 &&
	       memcmp(out->data + out->len - 3, ".\r\n", 3) == 0);
	while (i < out->len - 3) {
		char c = out->data[i];

		if (line_start && c == '.') {
			if (i + 1 >= out->len - 3 || out->data[i + 1] != '.')
				return false;
			i++;
		}
		mp_buf_append(plain, &out->data[i], 1);
		line_start = out->data[i] == '\n';
		i++;
	}
	return line_start;
}

/* The response body as RETR by sendfile builds it, reading the message
 * piece bytes at a time. */
static void
find_run(const char *in, size_t len, size_t piece, struct mp_buf *out)
{
	size_t next = 0;
	bool line_start = true;

	while (next < len) {
		size_t n = len - next < piece ? len - next : piece;
		size_t at = pop3_dot_find(in + next, n, line_start);

		assert(at <= n);
		mp_buf_append(out, in + next, at);
		if (at < n) {
			assert(in[next + at] == '.');
			assert(next + at == 0 || in[next + at - 1] == '\n');
			mp_buf_append(out, ".", 1);
			next += at;
			line_start = false;
		} else {
			next += n;
			line_start = in[next - 1] == '\n';
		}
	}
	mp_buf_append(out, pop3_dot_tail(line_start),
		      strlen(pop3_dot_tail(line_start)));
}

static void
check_dot(const char *in, size_t len, uint8_t sel)
{
	bool top = (sel & 4) != 0;
	uint32_t lines = (sel >> 3) & 3;
	size_t step = 1 + (sel >> 5);
	struct mp_buf whole = {0}, cut = {0}, plain = {0};
	size_t used_whole, used_cut;

	dot_run(in, len, top, lines, len > 0 ? len : 1, &whole, &used_whole);
	dot_run(in, len, top, lines, step, &cut, &used_cut);
	assert(whole.len == cut.len &&
	       memcmp(whole.data, cut.data, whole.len) == 0);
	assert(used_whole == used_cut);
	assert(top || used_whole == len);
	assert(unstuff(&whole, &plain));
	/* What went in comes out, plus a CRLF when its last line had no
	 * break. */
	assert(plain.len >= used_whole);
	assert(used_whole == 0 || memcmp(plain.data, in, used_whole) == 0);
	assert(plain.len == used_whole || plain.len == used_whole + 2);
	if (!top) {
		struct mp_buf scanned = {0};

		find_run(in, len, step, &scanned);
		assert(scanned.len == whole.len &&
		       memcmp(scanned.data, whole.data, whole.len) == 0);
		mp_buf_free(&scanned);
	}
	mp_buf_free(&whole);
	mp_buf_free(&cut);
	mp_buf_free(&plain);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pop3_cmd cmd, again;
	struct pop3_limits storage, eff;
	const struct pop3_limits *lim;
	const char *line = (const char *)data + 1;
	enum mp_status st;
	char *text;

	if (size == 0)
		return 0;
	lim = pick_limits(data[0], &storage, &eff);
	st = pop3_parser_parse(line, size - 1, lim, &cmd);
	assert(st == MP_OK || st == MP_DECLINED);
	if (st == MP_OK) {
		check_cmd(&cmd, line, size - 1, &eff);
	} else {
		assert(cmd.error[0] != '\0' && printable(cmd.error));
		check_reply(false, NULL, cmd.error);
	}
	assert(pop3_parser_parse(line, size - 1, lim, &again) == st);
	assert(memcmp(&cmd, &again, sizeof(cmd)) == 0);
	text = strndup(line, size - 1);
	check_reply(data[0] & 1, data[0] & 2 ? "SYS/TEMP" : NULL, text);
	free(text);
	check_dot(line, size - 1, data[0]);
	return 0;
}
