/* mime-parser.c - the streaming MIME parser: bytes in, a part tree out.
 *
 * The parser never holds a body. It reads line by line; in a body it keeps
 * only the start of each line (enough to tell a boundary), in a header the
 * line and the field being unfolded, both capped. The parts on the path
 * from the root to the current part form a stack; a boundary line of any
 * open multipart ends every part above it, so a missing close delimiter
 * costs nothing but a flag. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mime-private.h"

/* White space allowed after a boundary on its line (RFC 2046 "transport
 * padding"); a line with more is body, so a line is never held whole. */
#define MIME_PAD_MAX 128
/* The longest line that can still be a boundary line. */
#define MIME_PEEK_MAX (2 + MP_MIME_BOUNDARY_CAP + 2 + MIME_PAD_MAX + 2)
/* Longest field name kept: every field we interpret has a shorter one. */
#define MIME_NAME_MAX 64

enum mime_state { ST_HEADER, ST_BODY };

/* A part on the path from the root to the current part. */
struct mime_open {
	struct mp_mime_part *part;
	struct mp_mime_part *last_child;
	bool active; /* a multipart whose boundary can still match */
};

struct mp_mime_parser {
	struct mp_mime_limits lim;
	struct mp_mime_arena *arena;
	struct mp_mime_message *msg;
	struct mime_open *open; /* [0] is the root, [depth] the current part */
	int depth;
	uint32_t n_active; /* open multiparts before their close delimiter */
	enum mime_state state;

	uint64_t pos;      /* offset of the next byte */
	uint64_t lf_count; /* LFs before pos */
	uint64_t last_eol; /* where the last line ending (CRLF or LF) began */
	char last_byte;
	bool bol; /* the next byte begins a line */

	uint64_t line_start;    /* where the current line began */
	uint64_t line_lf;       /* LFs before it */
	uint64_t line_prev_eol; /* where the ending of the line before began */
	uint64_t line_len;      /* bytes of it so far, even those not kept */

	bool peeking; /* the start of a body line is held in peek */
	size_t peek_len;
	char peek[MIME_PEEK_MAX];

	struct mp_buf line; /* the header line being read, capped */
	size_t line_cap;

	bool field_on;   /* a field is open, kept or not */
	bool field_keep; /* ... and worth unfolding */
	size_t name_len;
	char name[MIME_NAME_MAX];
	struct mp_buf value; /* its unfolded value, capped */
	uint32_t n_fields;
	struct mime_hdr_ctx hdr;
};

static uint32_t
limit_or(uint32_t value, uint32_t dflt, uint32_t cap)
{
	if (value == 0)
		value = dflt;
	return value > cap ? cap : value;
}

void
mp_mime_limits_default(struct mp_mime_limits *limits_r)
{
	*limits_r = (struct mp_mime_limits){
		.max_depth = 32,
		.max_parts = 5000,
		.max_header_fields = 2000,
		.max_field_size = 64 * 1024,
		.max_boundary_len = MP_MIME_BOUNDARY_CAP,
		.max_params = 64,
		.max_result_size = 4 * 1024 * 1024,
	};
}

static void
limits_fill(struct mp_mime_limits *lim, const struct mp_mime_limits *in)
{
	struct mp_mime_limits d;

	mp_mime_limits_default(&d);
	if (in == NULL)
		in = &d;
	lim->max_depth =
		limit_or(in->max_depth, d.max_depth, MP_MIME_DEPTH_CAP);
	lim->max_parts = limit_or(in->max_parts, d.max_parts, UINT32_MAX);
	lim->max_header_fields = limit_or(in->max_header_fields,
					  d.max_header_fields, UINT32_MAX);
	lim->max_field_size =
		limit_or(in->max_field_size, d.max_field_size, UINT32_MAX);
	lim->max_boundary_len = limit_or(
		in->max_boundary_len, d.max_boundary_len, MP_MIME_BOUNDARY_CAP);
	lim->max_params = limit_or(in->max_params, d.max_params, UINT32_MAX);
	lim->max_result_size =
		limit_or(in->max_result_size, d.max_result_size, UINT32_MAX);
}

/* --- the part stack ----------------------------------------------------- */

static bool
part_in_digest(const struct mp_mime_part *parent)
{
	return parent != NULL && (parent->flags & MP_MIME_PART_MULTIPART) &&
	       mime_str_ieq(parent->subtype.p, parent->subtype.len, "digest");
}

/* Makes the next child of open[k]; NULL over the part limit. */
static struct mp_mime_part *
part_new(struct mp_mime_parser *p, int k)
{
	struct mime_open *o = &p->open[k];
	struct mp_mime_part *part;

	if (p->msg->n_parts >= p->lim.max_parts) {
		p->msg->flags |= MP_MIME_TRUNCATED;
		return NULL;
	}
	part = mime_arena_alloc(p->arena, sizeof(*part));
	part->parent = o->part;
	part->index = p->msg->n_parts++;
	if (o->last_child == NULL)
		o->part->children = part;
	else
		o->last_child->next = part;
	o->last_child = part;
	o->part->n_children++;
	return part;
}

/* Pushes part and starts reading its header at offset. */
static void
header_begin(struct mp_mime_parser *p, struct mp_mime_part *part,
	     uint64_t offset)
{
	bool message_header = part->parent == NULL ||
			      (part->parent->flags & MP_MIME_PART_MESSAGE);

	p->open[++p->depth] = (struct mime_open){.part = part};
	part->header_offset = offset;
	p->state = ST_HEADER;
	p->field_on = false;
	p->n_fields = 0;
	p->hdr.part = part;
	p->hdr.seen = 0;
	p->hdr.env = NULL;
	if (message_header) {
		p->hdr.env = mime_arena_alloc(p->arena, sizeof(*p->hdr.env));
		part->envelope = p->hdr.env;
	}
}

/* LFs before offset end, which is in the current line or its ending. */
static uint64_t
lf_before(const struct mp_mime_parser *p, uint64_t end)
{
	if (end >= p->pos)
		return p->lf_count;
	if (end >= p->line_start)
		return p->line_lf;
	return p->line_lf - 1;
}

static const struct mp_mime_param *
param_find(const struct mp_mime_part *part, const char *name)
{
	for (uint32_t i = 0; i < part->n_params; i++) {
		if (mime_str_ieq(part->params[i].name.p,
				 part->params[i].name.len, name))
			return &part->params[i];
	}
	return NULL;
}

static bool
part_is_type(const struct mp_mime_part *part, const char *type)
{
	return mime_str_ieq(part->type.p, part->type.len, type);
}

/* A multipart with a usable boundary: its body is read for delimiters. */
static void
open_multipart(struct mp_mime_parser *p, struct mp_mime_part *part)
{
	const struct mp_mime_param *b = param_find(part, "boundary");

	if (b == NULL || b->value.len == 0 ||
	    b->value.len > p->lim.max_boundary_len) {
		p->msg->flags |= MP_MIME_BROKEN;
		return;
	}
	part->flags |= MP_MIME_PART_MULTIPART;
	part->boundary = b->value;
	p->open[p->depth].active = true;
	p->n_active++;
}

/* message/rfc822 in base64 is a leaf: its structure cannot be seen
 * without decoding it, and RFC 2046 forbids that encoding anyway. */
static bool
is_message(const struct mp_mime_part *part)
{
	const struct mp_str *e = &part->encoding;

	if (!part_is_type(part, "message") ||
	    !(mime_str_ieq(part->subtype.p, part->subtype.len, "rfc822") ||
	      mime_str_ieq(part->subtype.p, part->subtype.len, "global")))
		return false;
	return mime_str_ieq(e->p, e->len, "7bit") ||
	       mime_str_ieq(e->p, e->len, "8bit") ||
	       mime_str_ieq(e->p, e->len, "binary");
}

static void
open_message(struct mp_mime_parser *p, struct mp_mime_part *part)
{
	struct mp_mime_part *child = part_new(p, p->depth);

	if (child == NULL)
		return;
	part->flags |= MP_MIME_PART_MESSAGE;
	header_begin(p, child, part->body_offset);
}

static void
field_end(struct mp_mime_parser *p)
{
	if (p->field_on && p->field_keep)
		mime_header_field(&p->hdr, p->name, p->name_len, p->value.data,
				  p->value.len);
	p->field_on = false;
}

/* The header of the current part ends at end: settle its type, then read
 * its body, which may open a multipart or an encapsulated message. */
static void
header_end(struct mp_mime_parser *p, uint64_t end)
{
	struct mp_mime_part *part = p->open[p->depth].part;
	bool multipart;

	field_end(p);
	part->header_size = end - part->header_offset;
	part->body_offset = end;
	/* Until the part closes, body_lines holds the LFs before its body. */
	part->body_lines = lf_before(p, end);
	mime_header_defaults(&p->hdr, part_in_digest(part->parent));
	p->state = ST_BODY;

	multipart = part_is_type(part, "multipart");
	if (!multipart && !is_message(part))
		return;
	if (p->depth >= (int)p->lim.max_depth) {
		p->msg->flags |= MP_MIME_TRUNCATED;
		return;
	}
	if (multipart)
		open_multipart(p, part);
	else
		open_message(p, part);
}

/* Ends the part on top of the stack at end and pops it. */
static void
part_close(struct mp_mime_parser *p, uint64_t end)
{
	struct mime_open *o = &p->open[p->depth];
	struct mp_mime_part *part = o->part;
	uint64_t start_lf = part->body_lines;

	/* A header cut short by a boundary gives its last CRLF to it. */
	if (part->header_size > end - part->header_offset)
		part->header_size = end - part->header_offset;
	part->body_offset = part->header_offset + part->header_size;
	part->body_size = end - part->body_offset;
	part->body_lines =
		part->body_size == 0 ? 0 : lf_before(p, end) - start_lf;
	if (o->active) {
		part->flags |= MP_MIME_PART_NO_END;
		p->msg->flags |= MP_MIME_BROKEN;
		p->n_active--;
	}
	p->depth--;
}

/* Ends every part above level k at e: the start of a delimiter's CRLF,
 * or the end of the input. Nested parts all end at the same offset, so a
 * child never reaches past its parent. */
static void
close_above(struct mp_mime_parser *p, int k, uint64_t e)
{
	uint64_t end;

	while (p->depth > k && p->state == ST_HEADER) {
		uint64_t hoff = p->open[p->depth].part->header_offset;
		header_end(p, e > hoff ? e : hoff);
	}
	if (p->depth <= k)
		return;
	end = p->open[p->depth].part->header_offset;
	if (e > end)
		end = e;
	while (p->depth > k)
		part_close(p, end);
}

static void
on_delimiter(struct mp_mime_parser *p, int k, bool close)
{
	struct mp_mime_part *child;

	close_above(p, k, p->line_prev_eol);
	p->state = ST_BODY;
	if (close) {
		p->open[k].active = false;
		p->n_active--;
		return;
	}
	/* Over the part limit the text up to the next boundary stays in the
	 * multipart's body, like a preamble. */
	child = part_new(p, k);
	if (child != NULL)
		header_begin(p, child, p->pos);
}

/* True when line (at most MIME_PEEK_MAX bytes, its LF included) is a
 * delimiter of an open multipart: "--" boundary ["--"], then only white
 * space. The innermost match wins, as RFC 2046 asks. */
static bool
match_delimiter(const struct mp_mime_parser *p, const char *l, size_t len,
		int *k_r, bool *close_r)
{
	if (len > MIME_PEEK_MAX || len < 3 || l[0] != '-' || l[1] != '-')
		return false;
	while (len > 2 && (l[len - 1] == ' ' || l[len - 1] == '\t' ||
			   l[len - 1] == '\r' || l[len - 1] == '\n'))
		len--;
	l += 2;
	len -= 2;
	for (int k = p->depth; k >= 0; k--) {
		const struct mp_str *b = &p->open[k].part->boundary;

		if (!p->open[k].active || len < b->len ||
		    memcmp(l, b->p, b->len) != 0)
			continue;
		if (len == b->len)
			*close_r = false;
		else if (len == b->len + 2 && l[b->len] == '-' &&
			 l[b->len + 1] == '-')
			*close_r = true;
		else
			continue;
		*k_r = k;
		return true;
	}
	return false;
}

/* --- header lines ------------------------------------------------------- */

static void
value_append(struct mp_mime_parser *p, const char *d, size_t n)
{
	size_t room = p->lim.max_field_size - p->value.len;

	if (n > room) {
		p->msg->flags |= MP_MIME_TRUNCATED;
		n = room;
	}
	mp_buf_append(&p->value, d, n);
}

static void
field_begin(struct mp_mime_parser *p, const char *l, size_t len,
	    const char *colon)
{
	size_t name_len = (size_t)(colon - l);

	while (name_len > 0 &&
	       (l[name_len - 1] == ' ' || l[name_len - 1] == '\t'))
		name_len--;
	p->field_on = true;
	p->field_keep = false;
	if (++p->n_fields > p->lim.max_header_fields) {
		p->msg->flags |= MP_MIME_TRUNCATED;
		return;
	}
	if (name_len == 0 || name_len > MIME_NAME_MAX ||
	    !mime_field_wanted(l, name_len, p->hdr.env != NULL))
		return;
	p->field_keep = true;
	memcpy(p->name, l, name_len);
	p->name_len = name_len;
	mp_buf_reset(&p->value);
	value_append(p, colon + 1, len - (size_t)(colon + 1 - l));
}

/* A complete header line (or the last, unterminated one at the end). */
static void
header_line(struct mp_mime_parser *p)
{
	const char *l = p->line.data != NULL ? p->line.data : "";
	size_t len = p->line.len;
	const char *colon;
	int k;
	bool close;

	if (p->n_active > 0 && p->line_len <= MIME_PEEK_MAX &&
	    match_delimiter(p, l, len, &k, &close)) {
		on_delimiter(p, k, close);
		return;
	}
	if (len > 0 && l[len - 1] == '\n')
		len--;
	if (len > 0 && l[len - 1] == '\r')
		len--;
	if (len == 0) {
		header_end(p, p->pos);
		return;
	}
	if (l[0] == ' ' || l[0] == '\t') {
		if (p->field_on && p->field_keep)
			value_append(p, l, len);
		return;
	}
	field_end(p);
	colon = memchr(l, ':', len);
	if (colon == NULL) {
		/* As Dovecot: not a field, but not the end of the header. */
		p->msg->flags |= MP_MIME_BROKEN;
		return;
	}
	field_begin(p, l, len, colon);
}

/* --- bytes -------------------------------------------------------------- */

/* Counts n bytes that end at the first LF, if there is one. */
static void
account(struct mp_mime_parser *p, const char *d, size_t n)
{
	const uint32_t seen = MP_MIME_HAS_NUL | MP_MIME_8BIT;

	for (size_t i = 0; i < n && (p->msg->flags & seen) != seen; i++) {
		if (d[i] == '\0')
			p->msg->flags |= MP_MIME_HAS_NUL;
		else if ((unsigned char)d[i] >= 0x80)
			p->msg->flags |= MP_MIME_8BIT;
	}
	if (d[n - 1] == '\n') {
		char prev = n >= 2 ? d[n - 2] : p->last_byte;

		p->lf_count++;
		p->last_eol = p->pos + n - 1;
		if (prev == '\r')
			p->last_eol--;
		else
			p->msg->flags |= MP_MIME_BARE_LF;
	}
	p->pos += n;
	p->line_len += n;
	p->last_byte = d[n - 1];
}

static void
body_scan(struct mp_mime_parser *p, const char *d, size_t n)
{
	struct mp_mime_part *part = p->open[p->depth].part;
	const uint32_t both = MP_MIME_PART_BODY_8BIT | MP_MIME_PART_BODY_NUL;

	if (part->flags & (MP_MIME_PART_MULTIPART | MP_MIME_PART_MESSAGE))
		return;
	for (size_t i = 0; i < n && (part->flags & both) != both; i++) {
		if (d[i] == '\0')
			part->flags |= MP_MIME_PART_BODY_NUL;
		else if ((unsigned char)d[i] >= 0x80)
			part->flags |= MP_MIME_PART_BODY_8BIT;
	}
}

/* Hands bytes of the current line, already counted, to the header or the
 * body; eol says they end the line. */
static void
consume(struct mp_mime_parser *p, const char *d, size_t n, bool eol)
{
	if (p->state == ST_HEADER) {
		size_t room = p->line_cap - p->line.len;

		if (n > room) {
			p->msg->flags |= MP_MIME_TRUNCATED;
			n = room;
		}
		mp_buf_append(&p->line, d, n);
		if (eol)
			header_line(p);
	} else {
		body_scan(p, d, n);
	}
	if (eol)
		p->bol = true;
}

static void
line_begin(struct mp_mime_parser *p)
{
	p->bol = false;
	p->line_start = p->pos;
	p->line_lf = p->lf_count;
	p->line_prev_eol = p->last_eol;
	p->line_len = 0;
	p->peek_len = 0;
	p->peeking = p->state == ST_BODY && p->n_active > 0;
	mp_buf_reset(&p->line);
}

/* The held start of a body line is not a boundary: it is body. */
static void
peek_release(struct mp_mime_parser *p)
{
	p->peeking = false;
	if (p->peek_len > 0)
		consume(p, p->peek, p->peek_len,
			p->peek[p->peek_len - 1] == '\n');
}

static void
peek_line_done(struct mp_mime_parser *p)
{
	int k;
	bool close;

	if (!match_delimiter(p, p->peek, p->peek_len, &k, &close)) {
		peek_release(p);
		return;
	}
	p->peeking = false;
	on_delimiter(p, k, close);
	p->bol = true;
}

static size_t
feed_peek(struct mp_mime_parser *p, const char *d, size_t len)
{
	size_t n = MIME_PEEK_MAX - p->peek_len;
	const char *lf;

	/* Most lines are told apart by their first two bytes. */
	for (size_t i = p->peek_len; i < 2 && i - p->peek_len < len; i++) {
		if (d[i - p->peek_len] != '-') {
			peek_release(p);
			return 0;
		}
	}
	if (len < n)
		n = len;
	lf = memchr(d, '\n', n);
	if (lf != NULL)
		n = (size_t)(lf - d) + 1;
	memcpy(p->peek + p->peek_len, d, n);
	p->peek_len += n;
	account(p, d, n);
	if (lf != NULL)
		peek_line_done(p);
	else if (p->peek_len == MIME_PEEK_MAX)
		peek_release(p);
	return n;
}

static size_t
feed_line(struct mp_mime_parser *p, const char *d, size_t len)
{
	const char *lf = memchr(d, '\n', len);
	size_t n = lf != NULL ? (size_t)(lf - d) + 1 : len;

	account(p, d, n);
	consume(p, d, n, lf != NULL);
	return n;
}

/* --- API ---------------------------------------------------------------- */

struct mp_mime_parser *
mp_mime_parser_new(const struct mp_mime_limits *limits)
{
	struct mp_mime_parser *p = mp_xcalloc(1, sizeof(*p));

	limits_fill(&p->lim, limits);
	/* Room for a whole field of the largest size on its first line. */
	p->line_cap = p->lim.max_field_size + MIME_NAME_MAX + 2;
	if (p->line_cap < MIME_PEEK_MAX)
		p->line_cap = MIME_PEEK_MAX;
	p->arena = mime_arena_new(p->lim.max_result_size, 0);
	p->msg = mime_arena_alloc(p->arena, sizeof(*p->msg));
	p->msg->arena = p->arena;
	p->open = mp_xcalloc(p->lim.max_depth + 1, sizeof(*p->open));
	p->depth = -1;
	p->bol = true;
	p->hdr.arena = p->arena;
	p->hdr.limits = &p->lim;
	p->hdr.msg_flags = &p->msg->flags;
	p->msg->root = mime_arena_alloc(p->arena, sizeof(*p->msg->root));
	p->msg->n_parts = 1;
	header_begin(p, p->msg->root, 0);
	return p;
}

void
mp_mime_parser_feed(struct mp_mime_parser *p, const void *data, size_t len)
{
	const char *d = data;

	while (len > 0) {
		size_t n;

		if (p->bol)
			line_begin(p);
		n = p->peeking ? feed_peek(p, d, len) : feed_line(p, d, len);
		d += n;
		len -= n;
	}
}

struct mp_mime_message *
mp_mime_parser_finish(struct mp_mime_parser **parser)
{
	struct mp_mime_parser *p = *parser;
	struct mp_mime_message *msg = p->msg;

	/* The last line had no LF: it is still a line. */
	if (!p->bol && p->peeking)
		peek_line_done(p);
	else if (!p->bol && p->state == ST_HEADER)
		header_line(p);
	close_above(p, -1, p->pos);
	msg->size = p->pos;
	if (p->arena->over)
		msg->flags |= MP_MIME_TRUNCATED;
	p->msg = NULL;
	mp_mime_parser_free(parser);
	return msg;
}

void
mp_mime_parser_free(struct mp_mime_parser **parser)
{
	struct mp_mime_parser *p = *parser;

	if (p == NULL)
		return;
	if (p->msg != NULL)
		mime_arena_free(p->arena);
	free(p->open);
	mp_buf_free(&p->line);
	mp_buf_free(&p->value);
	free(p);
	*parser = NULL;
}
