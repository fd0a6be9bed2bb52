/* fuzz-imap-parser.c - the IMAP command parser against arbitrary input.
 *
 * The first four bytes pick the session: byte 0 the flags (bit 0 UTF8,
 * 1 LITERAL+, 2 LITERAL-, 3 before LOGIN, 4 small limits from bytes 1-3,
 * 5 discarded bytes handed to the parser, 6 some streamed literals
 * refused); bytes 1-3 the small limits. The rest is what the client sent:
 * it goes through the real framer, and literals are held, streamed,
 * refused or dropped as the parser says, like the session does.
 *
 * Checks: no crash; every result is one the call may give; a BAD text is
 * printable; drains match the literal pending; every view lies inside the
 * parser's storage and every limit holds; the input fed whole and in
 * small pieces gives the same transcript; and each complete command,
 * written back canonically, parses to the same tree. */
#include "config.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <moonpost/plugin.h>

#include "frame.h"
#include "imap-parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct config {
	struct imap_parser_limits lim;
	unsigned flags;
	bool give_discards;
	bool refuse;
	size_t piece; /* input chunk size; 0: all at once */
};

struct fz {
	const struct config *cfg;
	struct imap_parser *p;
	struct mp_framer f;
	struct mp_buf in;
	struct mp_buf log;     /* the transcript */
	struct mp_buf streams; /* streamed literals, one after another */
	size_t stream_off[64]; /* where each starts in streams */
	enum imap_literal_use use;
	uint64_t left;
	unsigned completes;
	bool closed;
	bool check_reparse;
};

static void fz_result(struct fz *z, enum imap_parse_result r);

/* --- canonical form ----------------------------------------------------- */

/* Writes args the way a strict client would. On the wire (log false)
 * streamed literals are written with their bytes; in the log they are
 * marked, so the two kinds of literal cannot be confused. */
static void print_args(struct fz *z, struct mp_buf *out,
		       const struct imap_arg *args, size_t n, bool log);

static void
print_literal(struct mp_buf *out, const char *p, size_t len, bool binary,
	      const char *mark)
{
	mp_buf_printf(out, "%s%s{%zu}\r\n", mark, binary ? "~" : "", len);
	mp_buf_append(out, p, len);
}

static void
print_arg(struct fz *z, struct mp_buf *out, const struct imap_arg *a, bool log)
{
	const struct imap_fetch_section *s;
	size_t i, off;

	switch (a->type) {
	case IMAP_ARG_ATOM:
	case IMAP_ARG_NIL:
		mp_buf_append(out, a->str.p, a->str.len);
		break;
	case IMAP_ARG_QUOTED:
		mp_buf_append(out, "\"", 1);
		for (i = 0; i < a->str.len; i++) {
			if (a->str.p[i] == '"' || a->str.p[i] == '\\')
				mp_buf_append(out, "\\", 1);
			mp_buf_append(out, &a->str.p[i], 1);
		}
		mp_buf_append(out, "\"", 1);
		break;
	case IMAP_ARG_LITERAL:
		print_literal(out, a->str.p, a->str.len,
			      a->flags & IMAP_ARG_BINARY, "");
		break;
	case IMAP_ARG_LITERAL_STREAMED:
		assert(a->literal.index < 64);
		off = z->stream_off[a->literal.index];
		assert(off + a->literal.size <= z->streams.len);
		print_literal(out, z->streams.data + off,
			      (size_t)a->literal.size,
			      a->flags & IMAP_ARG_BINARY, log ? "S" : "");
		break;
	case IMAP_ARG_LIST:
		mp_buf_append(out, "(", 1);
		print_args(z, out, a->list.args, a->list.count, log);
		mp_buf_append(out, ")", 1);
		break;
	case IMAP_ARG_FETCH_ATT:
		s = a->section;
		mp_buf_append(out, a->str.p, a->str.len);
		mp_buf_append(out, "[", 1);
		mp_buf_append(out, s->spec.p, s->spec.len);
		if (s->fields != NULL) {
			mp_buf_append(out, " (", 2);
			print_args(z, out, s->fields, s->nfields, log);
			mp_buf_append(out, ")", 1);
		}
		mp_buf_append(out, "]", 1);
		if (s->partial)
			mp_buf_printf(out, "<%llu.%llu>",
				      (unsigned long long)s->offset,
				      (unsigned long long)s->count);
		break;
	default:
		abort();
	}
}

static void
print_args(struct fz *z, struct mp_buf *out, const struct imap_arg *args,
	   size_t n, bool log)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (i > 0)
			mp_buf_append(out, " ", 1);
		print_arg(z, out, &args[i], log);
	}
}

static void
print_command(struct fz *z, struct mp_buf *out, const struct imap_command *c,
	      bool log)
{
	mp_buf_append(out, c->tag.p, c->tag.len);
	mp_buf_printf(out, " %s", c->name);
	if (c->count > 0)
		mp_buf_append(out, " ", 1);
	print_args(z, out, c->args, c->count, log);
	mp_buf_append(out, "\r\n", 2);
}

/* --- checks on a complete command ---------------------------------------- */

static bool
inside(struct mp_str v, struct mp_str store)
{
	return v.p != NULL && v.p >= store.p && v.len <= store.len &&
	       (size_t)(v.p - store.p) <= store.len - v.len;
}

/* Every view in storage; depth, argument and literal limits kept.
 * Returns the number of arguments. */
static size_t
check_args(struct fz *z, const struct imap_arg *args, size_t n, unsigned depth)
{
	struct mp_str store = imap_parser_storage(z->p);
	size_t i, total = n;

	for (i = 0; i < n; i++) {
		const struct imap_arg *a = &args[i];

		switch (a->type) {
		case IMAP_ARG_LIST:
			assert(depth < z->cfg->lim.depth_max);
			assert((a->list.count == 0) == (a->list.args == NULL));
			total += check_args(z, a->list.args, a->list.count,
					    depth + 1);
			break;
		case IMAP_ARG_LITERAL_STREAMED:
			assert(z->cfg->lim.stream);
			break;
		case IMAP_ARG_FETCH_ATT:
			assert(depth < z->cfg->lim.depth_max ||
			       a->section->fields == NULL);
			assert(inside(a->str, store) && a->str.len > 0);
			assert(inside(a->section->spec, store));
			assert(!a->section->partial || a->section->count > 0);
			total += check_args(z, a->section->fields,
					    a->section->nfields, depth + 1);
			break;
		case IMAP_ARG_LITERAL:
			assert(a->str.len <= z->cfg->lim.literal_max);
			/* fall through */
		default:
			assert(inside(a->str, store));
			assert(a->type != IMAP_ARG_ATOM || a->str.len > 0);
		}
	}
	return total;
}

static void fz_feed(struct fz *z, const uint8_t *data, size_t size);

/* The canonical form of cmd, parsed again, is the same command. */
static void
check_reparse(struct fz *z, const struct imap_command *cmd)
{
	struct mp_buf wire = {0}, want = {0};
	struct config cfg = *z->cfg;
	struct fz again;

	print_command(z, &wire, cmd, false);
	print_command(z, &want, cmd, true);
	cfg.refuse = false;
	cfg.piece = 0;
	memset(&again, 0, sizeof(again));
	again.cfg = &cfg;
	fz_feed(&again, (const uint8_t *)wire.data, wire.len);
	assert(again.completes == 1 && !again.closed);
	/* The log holds "+" for each synchronising literal, then the
	 * command. */
	assert(again.log.len >= want.len);
	assert(memcmp(again.log.data + again.log.len - want.len, want.data,
		      want.len) == 0);
	mp_buf_free(&wire);
	mp_buf_free(&want);
	mp_buf_free(&again.log);
}

static void
on_complete(struct fz *z)
{
	const struct imap_command *cmd = imap_parser_command(z->p);
	struct mp_str store = imap_parser_storage(z->p);
	size_t nargs;

	assert(inside(cmd->tag, store) && cmd->tag.len > 0);
	assert(strlen(cmd->name) > 0 && cmd->verb >= cmd->name);
	assert(cmd->uid == (strncmp(cmd->name, "UID ", 4) == 0));
	assert((cmd->count == 0) == (cmd->args == NULL));
	assert(store.len <= z->cfg->lim.command_max);
	nargs = check_args(z, cmd->args, cmd->count, 0);
	assert(nargs <= z->cfg->lim.args_max);
	z->completes++;
	print_command(z, &z->log, cmd, true);
	if (z->check_reparse)
		check_reparse(z, cmd);
	z->streams.len = 0;
}

/* --- the session in miniature --------------------------------------------- */

static void
literal_end(struct fz *z, enum imap_parse_result r)
{
	if (r != IMAP_PARSE_NEED_LINE)
		fz_result(z, r);
	else
		assert(imap_parser_literal(z->p) == NULL);
}

static void
start_literal(struct fz *z, const struct imap_literal *lit)
{
	assert(lit != NULL);
	z->use = lit->use;
	z->left = lit->size;
	mp_buf_printf(&z->log, "L%d%d%llu\n", lit->use, lit->sync,
		      (unsigned long long)lit->size);
	if (lit->use == IMAP_LITERAL_STREAM) {
		assert(lit->index < 64 && lit->name != NULL);
		if (z->cfg->refuse && lit->index % 2 == 1) {
			uint64_t n = imap_parser_reject_literal(z->p);

			assert(n == (lit->sync ? 0 : lit->size));
			mp_buf_printf(&z->log, "R%llu\n",
				      (unsigned long long)n);
			if (n == 0)
				return;
			start_literal(z, imap_parser_literal(z->p));
			return;
		}
		z->stream_off[lit->index] = z->streams.len;
	}
	if (lit->use == IMAP_LITERAL_HOLD) {
		assert(lit->size <= z->cfg->lim.literal_max);
		assert(!lit->binary || z->cfg->lim.stream == false);
	}
	if (lit->size > 0)
		mp_framer_expect_bytes(&z->f, lit->size);
	else if (lit->use == IMAP_LITERAL_HOLD)
		literal_end(z, imap_parser_literal_data(z->p, NULL, 0));
	else
		literal_end(z, imap_parser_literal_consumed(z->p));
}

static void
on_error(struct fz *z)
{
	const struct imap_parse_error *e = imap_parser_error(z->p);
	size_t i;

	for (i = 0; e->text[i] != '\0'; i++)
		assert(e->text[i] >= 0x20 && e->text[i] < 0x7f);
	assert(i > 0 && i < IMAP_ERROR_TEXT_MAX);
	assert(e->code == NULL || strcmp(e->code, "TOOBIG") == 0 ||
	       strcmp(e->code, "LIMIT") == 0);
	assert(e->tag.p == NULL || inside(e->tag, imap_parser_storage(z->p)));
	mp_buf_printf(&z->log, "E%s %s %llu %d\n", e->code ? e->code : "-",
		      e->text, (unsigned long long)e->drain, e->close);
	z->streams.len = 0;
	if (e->close) {
		assert(e->drain == 0 && imap_parser_literal(z->p) == NULL);
		z->closed = true;
		return;
	}
	if (e->drain == 0) {
		assert(imap_parser_literal(z->p) == NULL);
		return;
	}
	assert(e->drain <= z->cfg->lim.drain_max);
	assert(imap_parser_literal(z->p)->use == IMAP_LITERAL_DISCARD);
	assert(imap_parser_literal(z->p)->size == e->drain);
	start_literal(z, imap_parser_literal(z->p));
}

static void
fz_result(struct fz *z, enum imap_parse_result r)
{
	switch (r) {
	case IMAP_PARSE_COMPLETE:
		on_complete(z);
		break;
	case IMAP_PARSE_NEED_LITERAL:
		start_literal(z, imap_parser_literal(z->p));
		break;
	case IMAP_PARSE_ERROR:
		on_error(z);
		break;
	case IMAP_PARSE_SKIPPED:
		mp_buf_append(&z->log, "S\n", 2);
		break;
	default:
		abort();
	}
}

static void
on_bytes(struct fz *z, const char *data, size_t len)
{
	enum imap_parse_result r;

	z->left -= len;
	if (z->use == IMAP_LITERAL_STREAM) {
		mp_buf_append(&z->streams, data, len);
		if (z->left == 0)
			literal_end(z, imap_parser_literal_consumed(z->p));
		return;
	}
	if (z->use == IMAP_LITERAL_DISCARD && !z->cfg->give_discards) {
		if (z->left == 0)
			literal_end(z, imap_parser_literal_consumed(z->p));
		return;
	}
	r = imap_parser_literal_data(z->p, data, len);
	if (z->left > 0)
		assert(r == IMAP_PARSE_NEED_DATA);
	else
		literal_end(z, r);
}

static void
pump(struct fz *z)
{
	size_t off = 0;

	while (!z->closed) {
		struct mp_frame fr;

		mp_framer_next(&z->f, z->in.data + off, z->in.len - off, &fr);
		if (fr.kind == MP_FRAME_NEED_MORE)
			break;
		if (fr.kind == MP_FRAME_SKIP) {
			off += fr.consumed;
		} else if (fr.kind == MP_FRAME_LINE) {
			off += fr.consumed;
			fz_result(z, imap_parser_feed_line(z->p, fr.data,
							   fr.len, fr.flags));
		} else {
			on_bytes(z, fr.data, fr.len);
			off += fr.len;
			mp_framer_bytes_used(&z->f, fr.len);
		}
	}
	mp_buf_consume(&z->in, off);
}

/* Runs the input through a fresh session; the transcript stays in
 * z->log for the caller to free. */
static void
fz_feed(struct fz *z, const uint8_t *data, size_t size)
{
	size_t pos = 0;

	z->p = imap_parser_new(&z->cfg->lim, z->cfg->flags);
	mp_framer_init(&z->f, z->cfg->lim.line_max * 2);
	while (pos < size && !z->closed) {
		size_t n = size - pos;

		if (z->cfg->piece > 0 && n > z->cfg->piece)
			n = z->cfg->piece;
		mp_buf_append(&z->in, data + pos, n);
		pos += n;
		pump(z);
	}
	imap_parser_free(&z->p);
	mp_buf_free(&z->in);
	mp_buf_free(&z->streams);
}

static void
pick_config(const uint8_t *h, struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	imap_parser_limits_init(&cfg->lim, !(h[0] & 8));
	cfg->flags = h[0] & 7;
	cfg->give_discards = h[0] & 32;
	cfg->refuse = h[0] & 64;
	if (h[0] & 16) {
		cfg->lim.line_max = 8 + h[1];
		cfg->lim.literal_max = h[2];
		cfg->lim.command_max = 64 + (size_t)h[2] * 8;
		cfg->lim.drain_max = (uint64_t)h[2] * 2;
		cfg->lim.depth_max = 1 + (h[3] & 7);
		cfg->lim.args_max = 1 + (h[3] >> 3) * 4;
	}
	/* What the parser applies: zero fields are never picked here. */
	if (cfg->lim.literal_max == 0)
		cfg->lim.literal_max = 4096;
	if (cfg->lim.drain_max == 0)
		cfg->lim.drain_max = 65536;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config whole, pieces;
	struct fz a, b;

	if (size < 4)
		return 0;
	pick_config(data, &whole);
	pieces = whole;
	pieces.piece = 1 + data[1] % 7;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.cfg = &whole;
	a.check_reparse = true;
	b.cfg = &pieces;
	fz_feed(&a, data + 4, size - 4);
	fz_feed(&b, data + 4, size - 4);
	assert(a.log.len == b.log.len &&
	       (a.log.len == 0 ||
		memcmp(a.log.data, b.log.data, a.log.len) == 0));
	mp_buf_free(&a.log);
	mp_buf_free(&b.log);
	return 0;
}
