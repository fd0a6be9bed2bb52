/* fuzz-imap-search.c - SEARCH programs from arbitrary command lines.
 *
 * Byte 0 picks the session: bit 0 IMAP4rev2, bit 1 a saved result
 * exists, bit 2 small limits (8 ranges a set, 16 keys), bit 3 UTF8=ACCEPT
 * (UTF-8 in quoted strings). Bytes 1-2 are the message count, byte 3 the last
 * UID above it. The rest is what the client sent: lines ending in LF, literal
 * bytes after a line announcing them, all fed to the real command parser.
 * The arguments of every complete command, whatever its name, go to
 * imap_search_parse().
 *
 * Checks: no crash, no leak; an error has a printable text and a known
 * code, NO only for BADCHARSET; a program is matched against a few
 * messages (a fixed multipart one for content keys), and a program that
 * needs no content never calls the content callbacks; the result lines
 * are formatted. */
#include "config.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "imap-search.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char message[] =
	"From: =?iso-8859-1?q?J=F6rg?= <j@example.org>\r\n"
	"To: a@example.org, \"B\" <b@example.org>\r\n"
	"Subject: Hello =?utf-8?b?w4FsdmFybw==?=\r\n"
	"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"b\"\r\n"
	"\r\n"
	"--b\r\n"
	"Content-Type: text/plain; charset=iso-8859-1\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"Gr=FC=DFe aus K=F6ln, caf=E9 =\r\n"
	"soft break\r\n"
	"--b\r\n"
	"Content-Type: text/html; charset=utf-8\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"PHA+zqPOuc+Dz4bOvyDQn9GA0LjQstC10YI8L3A+\r\n"
	"--b--\r\n";

struct fmsg {
	struct mp_mime_message *mime;
	unsigned calls;
};

static const struct mp_mime_message *
fmsg_mime(void *ctx, const char **error_r)
{
	struct fmsg *m = ctx;

	m->calls++;
	(void)error_r;
	return m->mime;
}

static ssize_t
fmsg_read(void *ctx, uint64_t off, void *buf, size_t len, const char **error_r)
{
	struct fmsg *m = ctx;
	size_t total = sizeof(message) - 1;

	m->calls++;
	(void)error_r;
	if (off >= total)
		return 0;
	if (len > total - off)
		len = total - (size_t)off;
	if (len > 7) /* short reads, to cross chunk edges */
		len = 7 + (size_t)(off % 5);
	memcpy(buf, message + off, len);
	return (ssize_t)len;
}

static struct mp_mime_message *
fixed_message(void)
{
	static struct mp_mime_message *msg;

	if (msg == NULL) {
		struct mp_mime_parser *p = mp_mime_parser_new(NULL);

		mp_mime_parser_feed(p, message, sizeof(message) - 1);
		msg = mp_mime_parser_finish(&p);
	}
	return msg;
}

static void
check_error(enum imap_search_status st, const struct imap_search_error *e)
{
	const char *t;

	assert(e->text != NULL && e->text[0] != '\0');
	for (t = e->text; *t != '\0'; t++)
		assert(*t >= 0x20 && *t < 0x7f);
	if (st == IMAP_SEARCH_NO) {
		assert(e->code != NULL &&
		       strcmp(e->code, "BADCHARSET (UTF-8 US-ASCII)") == 0);
		return;
	}
	assert(e->code == NULL || strcmp(e->code, "LIMIT") == 0);
}

static void
run_program(struct imap_search_program *prog, uint32_t messages)
{
	static const char *const kws[] = {"", "$Junk", "a b $Forwarded"};
	uint32_t nums[3];
	uint64_t modseqs[3];
	size_t n = 0;
	bool content = imap_search_needs_content(prog);
	struct mp_buf out = {0};
	struct imap_seqset saved = {0};

	for (uint32_t i = 0; i < 3; i++) {
		struct ms_msg meta = {
			.uid = 10 + i * 7,
			.flags = i * 11 & MS_FLAGS_ALL,
			.modseq = 100 + i,
			.size = sizeof(message) - 1,
			.internal_date = 1057000000 + (int64_t)i * 86400 * 40,
			.tz_minutes = (int16_t)(i * 90 - 120),
			.keywords = kws[i],
		};
		struct fmsg fm = {.mime = fixed_message()};
		struct imap_search_msg msg = {
			.seq = i + 1 <= messages ? i + 1 : messages,
			.meta = &meta,
			.recent = i == 1,
			.mime = fmsg_mime,
			.read = fmsg_read,
			.ctx = &fm,
		};
		const char *error = NULL;

		if (imap_search_match(prog, &msg, &error) ==
		    IMAP_SEARCH_MATCH) {
			nums[n] = meta.uid;
			modseqs[n++] = meta.modseq;
		}
		assert(content || fm.calls == 0);
	}
	imap_search_format_search(&out, prog, nums, modseqs, n);
	imap_search_format_esearch(&out, prog, (struct mp_str){"t", 1}, true,
				   nums, modseqs, n);
	imap_search_saved_result(prog, nums, n, &saved);
	assert(saved.count <= n);
	imap_seqset_free(&saved);
	mp_buf_free(&out);
}

static void
on_command(const struct imap_command *cmd, const uint8_t *h)
{
	struct imap_seqset saved = {0};
	struct imap_search_context ctx = {
		.messages = (uint32_t)h[1] << 8 | h[2],
		.now = 1700000000,
		.max_ranges = (h[0] & 4) ? 8 : 1000,
		.keys_max = (h[0] & 4) ? 16 : 0,
		.flags = ((h[0] & 1) ? IMAP_SEARCH_REV2 : 0) |
			 ((h[0] & 8) ? IMAP_SEARCH_UTF8_ACCEPT : 0),
	};
	struct imap_search_program *prog;
	struct imap_search_error err;
	enum imap_search_status st;

	ctx.last_uid = ctx.messages + h[3];
	if (h[0] & 2) {
		imap_seqset_add(&saved, 3, 9);
		ctx.saved = &saved;
	}
	st = imap_search_parse(cmd->args, cmd->count, &ctx, &prog, &err);
	if (st == IMAP_SEARCH_OK) {
		assert(prog != NULL);
		run_program(prog, ctx.messages);
		imap_search_program_free(&prog);
	} else {
		assert(prog == NULL);
		check_error(st, &err);
	}
	imap_seqset_free(&saved);
}

/* Feeds the literals the parser asks for; returns the last result, or
 * SKIPPED when the input ran out (the command is dropped). */
static enum imap_parse_result
literals(struct imap_parser *p, enum imap_parse_result r, const uint8_t *data,
	 size_t size, size_t *pos)
{
	const struct imap_literal *lit;

	while ((lit = imap_parser_literal(p)) != NULL &&
	       (r == IMAP_PARSE_NEED_LITERAL || r == IMAP_PARSE_ERROR)) {
		if (lit->size > size - *pos) {
			imap_parser_reset(p);
			*pos = size;
			return IMAP_PARSE_SKIPPED;
		}
		if (lit->use == IMAP_LITERAL_HOLD)
			r = imap_parser_literal_data(p, data + *pos,
						     (size_t)lit->size);
		else
			r = imap_parser_literal_consumed(p);
		*pos += (size_t)lit->size;
	}
	return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parser_limits lim;
	struct imap_parser *p;
	size_t pos = 4;

	if (size < 4)
		return 0;
	imap_parser_limits_init(&lim, true);
	p = imap_parser_new(&lim, (data[0] & 8) ? IMAP_PARSER_UTF8 : 0);
	while (pos < size) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t len =
			nl != NULL ? (size_t)(nl - data - pos) : size - pos;
		size_t next = pos + len + (nl != NULL);
		enum imap_parse_result r;

		if (len > 0 && data[pos + len - 1] == '\r')
			len--;
		r = imap_parser_feed_line(p, (const char *)data + pos, len, 0);
		pos = next;
		r = literals(p, r, data, size, &pos);
		if (r == IMAP_PARSE_COMPLETE)
			on_command(imap_parser_command(p), data);
	}
	imap_parser_free(&p);
	return 0;
}
