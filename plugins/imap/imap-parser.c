/* imap-parser.c - IMAP client commands in, argument trees or BAD texts out. */
#include "config.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <moonpost/plugin.h>

#include "imap-parser.h"

/* Defaults; struct imap_parser_limits says where each comes from. */
#define PRE_LINE_MAX     8192
#define PRE_COMMAND_MAX  16384
#define PRE_LITERAL_MAX  4096
#define PRE_DRAIN_MAX    65536
#define PRE_DEPTH_MAX    4
#define PRE_ARGS_MAX     128
#define PRE_RANGES_MAX   100
#define AUTH_LINE_MAX    65536
#define AUTH_COMMAND_MAX (1024 * 1024)
#define AUTH_LITERAL_MAX 65536
#define AUTH_DRAIN_MAX   (64 * 1024 * 1024)
#define AUTH_DEPTH_MAX   16
#define AUTH_ARGS_MAX    10000
#define AUTH_RANGES_MAX  10000
/* number64 (RFC 9051 9): literal sizes and partial ranges. */
#define NUMBER64_MAX ((uint64_t)INT64_MAX)
/* Buffers bigger than this are freed between commands, so an idle
 * connection does not keep what its largest command needed. */
#define KEEP_STORE 16384
#define KEEP_NODES 256
/* Longest tag kept for the reply to a line over the limits. */
#define TAG_KEEP_MAX 256
#define NONE         UINT32_MAX

enum state {
	ST_IDLE = 0, /* the next line starts a command */
	ST_ARGS,     /* the next line continues the command */
	ST_LITERAL,  /* literal bytes are expected */
	ST_SKIP,     /* the next line continues a refused command */
};

/* An argument while the command is read: offsets, not pointers, since
 * the storage may move until the command is complete. Nodes are kept in
 * the order they were read; the tree is laid out at the end. */
struct node {
	enum imap_arg_type type;
	unsigned flags;
	size_t off, len;
	uint32_t count;   /* LIST, FETCH_ATT: direct children */
	uint32_t subtree; /* LIST, FETCH_ATT: all nodes below */
	uint64_t size;    /* LITERAL_STREAMED */
	unsigned index;   /* LITERAL_STREAMED: ordinal; FETCH_ATT: slot */
};

struct sect {
	size_t spec_off, spec_len;
	bool partial;
	uint64_t offset, count;
};

/* An open list (or the header list of a FETCH section). */
struct level {
	uint32_t node; /* the list's node */
	uint32_t prev; /* the node before the list in its parent, or NONE */
	uint32_t last; /* the list's last child so far, or NONE */
	bool section;
};

/* The line being parsed; s points into the storage. */
struct cur {
	char *s;
	size_t len;
	size_t pos;
};

struct imap_parser {
	struct imap_parser_limits lim;
	unsigned flags;
	enum state state;
	struct mp_buf store;
	struct node *nodes;
	size_t nnodes, nodes_cap;
	struct sect *secs;
	size_t nsecs, secs_cap;
	struct level stack[IMAP_DEPTH_CAP];
	unsigned depth;
	uint32_t top_count, top_last;
	bool need_sep;
	bool append, fetch, have_tag, have_name;
	size_t tag_off, tag_len;
	char name[IMAP_NAME_MAX * 2 + 6];
	unsigned streamed;
	struct imap_literal lit;
	bool lit_pending, lit_nul;
	uint64_t remaining;
	uint32_t lit_node;
	struct imap_arg *args;
	size_t args_cap, next_free;
	struct imap_fetch_section *fsecs;
	size_t fsecs_cap;
	struct imap_command cmd;
	struct imap_parse_error err;
};

void
imap_parser_limits_init(struct imap_parser_limits *lim, bool authenticated)
{
	lim->line_max = authenticated ? AUTH_LINE_MAX : PRE_LINE_MAX;
	lim->command_max = authenticated ? AUTH_COMMAND_MAX : PRE_COMMAND_MAX;
	lim->literal_max = authenticated ? AUTH_LITERAL_MAX : PRE_LITERAL_MAX;
	lim->drain_max = authenticated ? AUTH_DRAIN_MAX : PRE_DRAIN_MAX;
	lim->depth_max = authenticated ? AUTH_DEPTH_MAX : PRE_DEPTH_MAX;
	lim->args_max = authenticated ? AUTH_ARGS_MAX : PRE_ARGS_MAX;
	lim->seqset_ranges_max =
		authenticated ? AUTH_RANGES_MAX : PRE_RANGES_MAX;
	lim->stream = authenticated;
}

void
imap_parser_set_limits(struct imap_parser *p,
		       const struct imap_parser_limits *lim)
{
	struct imap_parser_limits def;

	imap_parser_limits_init(&def, false);
	if (lim == NULL)
		lim = &def;
	p->lim = *lim;
	if (p->lim.line_max == 0)
		p->lim.line_max = def.line_max;
	if (p->lim.command_max == 0)
		p->lim.command_max = def.command_max;
	if (p->lim.literal_max == 0)
		p->lim.literal_max = def.literal_max;
	if (p->lim.drain_max == 0)
		p->lim.drain_max = def.drain_max;
	if (p->lim.depth_max == 0 || p->lim.depth_max > IMAP_DEPTH_CAP)
		p->lim.depth_max =
			p->lim.depth_max == 0 ? def.depth_max : IMAP_DEPTH_CAP;
	if (p->lim.args_max == 0 || p->lim.args_max >= NONE)
		p->lim.args_max =
			p->lim.args_max == 0 ? def.args_max : NONE - 1;
	if (p->lim.seqset_ranges_max == 0)
		p->lim.seqset_ranges_max = def.seqset_ranges_max;
}

struct imap_parser *
imap_parser_new(const struct imap_parser_limits *lim, unsigned flags)
{
	struct imap_parser *p = mp_xcalloc(1, sizeof(*p));

	imap_parser_set_limits(p, lim);
	p->flags = flags;
	return p;
}

void
imap_parser_free(struct imap_parser **pp)
{
	struct imap_parser *p = *pp;

	if (p == NULL)
		return;
	mp_buf_free(&p->store);
	free(p->nodes);
	free(p->secs);
	free(p->args);
	free(p->fsecs);
	MP_FREE(*pp);
}

void
imap_parser_set_flags(struct imap_parser *p, unsigned flags)
{
	p->flags = flags;
}

/* Forgets the previous command; its views die here. */
static void
command_reset(struct imap_parser *p)
{
	if (p->store.cap > KEEP_STORE)
		mp_buf_free(&p->store);
	mp_buf_reset(&p->store);
	if (p->nodes_cap > KEEP_NODES) {
		MP_FREE(p->nodes);
		MP_FREE(p->args);
		p->nodes_cap = p->args_cap = 0;
	}
	if (p->secs_cap > KEEP_NODES) {
		MP_FREE(p->secs);
		MP_FREE(p->fsecs);
		p->secs_cap = p->fsecs_cap = 0;
	}
	p->nnodes = p->nsecs = 0;
	p->depth = 0;
	p->top_count = 0;
	p->top_last = NONE;
	p->need_sep = false;
	p->append = p->fetch = p->have_tag = p->have_name = false;
	p->name[0] = '\0';
	p->streamed = 0;
	p->lit_pending = false;
	memset(&p->cmd, 0, sizeof(p->cmd));
	memset(&p->err, 0, sizeof(p->err));
}

void
imap_parser_reset(struct imap_parser *p)
{
	command_reset(p);
	p->state = ST_IDLE;
}

static struct mp_str
tag_view(const struct imap_parser *p)
{
	struct mp_str v = {NULL, 0};

	if (p->have_tag) {
		v.p = p->store.data + p->tag_off;
		v.len = p->tag_len;
	}
	return v;
}

/* --- errors and literals still to come --------------------------------- */

/* Finds "{n}" / "{n+}" / "~{n}" at the end of a line. Returns false when
 * there is none; *size_r is UINT64_MAX when the number is too large. */
static bool
tail_literal(const char *s, size_t len, uint64_t *size_r, bool *sync_r)
{
	size_t i, end;
	uint64_t n = 0;

	if (len < 3 || s[len - 1] != '}')
		return false;
	end = len - 1;
	*sync_r = s[end - 1] != '+';
	if (!*sync_r)
		end--;
	for (i = end; i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9'; i--)
		;
	if (i == end || i == 0 || s[i - 1] != '{')
		return false;
	for (; i < end; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		n = n > (NUMBER64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
		if (n == UINT64_MAX)
			break;
	}
	*size_r = n;
	return true;
}

/* After a refusal: when the line ends with a non-synchronising literal,
 * the client sends its bytes anyway; they are to be dropped, and the lines
 * after them skipped. Otherwise the command ends here. */
static void
expect_drain(struct imap_parser *p, const char *line, size_t len)
{
	uint64_t size;
	bool sync;

	p->state = ST_IDLE;
	if (!tail_literal(line, len, &size, &sync) || sync)
		return;
	if (size > p->lim.drain_max) {
		p->err.close = true;
		return;
	}
	if (size == 0) {
		/* No bytes to drop, but the command goes on: skip it. */
		p->state = ST_SKIP;
		return;
	}
	p->err.drain = size;
	memset(&p->lit, 0, sizeof(p->lit));
	p->lit.tag = tag_view(p);
	p->lit.size = size;
	p->lit.use = IMAP_LITERAL_DISCARD;
	p->lit_pending = true;
	p->remaining = size;
	p->state = ST_LITERAL;
}

static void set_error(struct imap_parser *p, const char *code, const char *fmt,
		      va_list ap) MP_PRINTF(3, 0);

static void
set_error(struct imap_parser *p, const char *code, const char *fmt, va_list ap)
{
	p->err.tag = tag_view(p);
	p->err.name = p->have_name ? p->name : NULL;
	p->err.code = code;
	vsnprintf(p->err.text, sizeof(p->err.text), fmt, ap);
	p->err.drain = 0;
	p->err.close = false;
}

static void set_error_text(struct imap_parser *p, const char *code,
			   const char *fmt, ...) MP_PRINTF(3, 4);

static void
set_error_text(struct imap_parser *p, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_error(p, code, fmt, ap);
	va_end(ap);
}

static enum imap_parse_result fail(struct imap_parser *p, const struct cur *c,
				   const char *code, const char *fmt, ...)
	MP_PRINTF(4, 5);

/* Refuses the command being read from line c. */
static enum imap_parse_result
fail(struct imap_parser *p, const struct cur *c, const char *code,
     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_error(p, code, fmt, ap);
	va_end(ap);
	p->lit_pending = false;
	expect_drain(p, c->s, c->len);
	return IMAP_PARSE_ERROR;
}

static enum imap_parse_result fail_close(struct imap_parser *p, const char *fmt,
					 ...) MP_PRINTF(2, 3);

static enum imap_parse_result
fail_close(struct imap_parser *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_error(p, "LIMIT", fmt, ap);
	va_end(ap);
	p->err.close = true;
	p->state = ST_IDLE;
	return IMAP_PARSE_ERROR;
}

/* --- characters ---------------------------------------------------------- */

/* ATOM-CHAR (RFC 9051 9): CHAR except atom-specials. */
static bool
atom_char(unsigned char ch)
{
	return ch > 0x20 && ch < 0x7f && strchr("(){%*\"\\]", ch) == NULL;
}

/* tag = 1*<any ASTRING-CHAR except "+"> */
static bool
tag_char(unsigned char ch)
{
	return (atom_char(ch) && ch != '+') || ch == ']';
}

static bool
ends_token(const struct cur *c)
{
	return c->pos == c->len || c->s[c->pos] == ' ' || c->s[c->pos] == ')';
}

/* Length of the strict UTF-8 sequence at s (RFC 3629 4), 0 if invalid. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* --- nodes ---------------------------------------------------------------- */

static uint32_t *
last_slot(struct imap_parser *p)
{
	return p->depth > 0 ? &p->stack[p->depth - 1].last : &p->top_last;
}

/* Appends an argument to the open list (or the top level). Returns NONE
 * when the argument limit is reached. */
static uint32_t
node_add(struct imap_parser *p, enum imap_arg_type type, size_t off, size_t len)
{
	struct node *n;
	uint32_t id = (uint32_t)p->nnodes;

	if (p->nnodes >= p->lim.args_max)
		return NONE;
	if (p->nnodes == p->nodes_cap) {
		p->nodes_cap = p->nodes_cap ? p->nodes_cap * 2 : 32;
		p->nodes =
			mp_xrealloc(p->nodes, p->nodes_cap * sizeof(*p->nodes));
	}
	n = &p->nodes[p->nnodes++];
	memset(n, 0, sizeof(*n));
	n->type = type;
	n->off = off;
	n->len = len;
	if (p->depth > 0)
		p->nodes[p->stack[p->depth - 1].node].count++;
	else
		p->top_count++;
	*last_slot(p) = id;
	return id;
}

static enum imap_parse_result
fail_args(struct imap_parser *p, const struct cur *c)
{
	return fail(p, c, "LIMIT", "Over %u arguments", p->lim.args_max);
}

static bool
node_is_atom(const struct imap_parser *p, uint32_t id, const char *word)
{
	const struct node *n;

	if (id == NONE)
		return false;
	n = &p->nodes[id];
	return n->type == IMAP_ARG_ATOM && n->len == strlen(word) &&
	       strncasecmp(p->store.data + n->off, word, n->len) == 0;
}

/* True when a literal here is (part of) an APPEND message: any argument
 * after the mailbox (RFC 3501 6.3.11, RFC 3502), the literal after TEXT
 * in CATENATE (RFC 4469 5) and the one in UTF8 (...) (RFC 6855 4). */
static bool
message_position(const struct imap_parser *p)
{
	const struct level *l;

	if (!p->append)
		return false;
	if (p->depth == 0)
		return p->top_count >= 1;
	l = &p->stack[p->depth - 1];
	if (l->section)
		return false;
	if (node_is_atom(p, l->prev, "UTF8"))
		return p->nodes[l->node].count == 0;
	return node_is_atom(p, l->prev, "CATENATE") &&
	       node_is_atom(p, l->last, "TEXT");
}

/* --- tokens --------------------------------------------------------------- */

static enum imap_parse_result
lex_quoted(struct imap_parser *p, struct cur *c)
{
	char *s = c->s;
	size_t start = ++c->pos, out = start;
	unsigned flags = 0;
	uint32_t id;

	for (;;) {
		unsigned char ch;
		size_t n;

		if (c->pos == c->len)
			return fail(p, c, NULL, "Unterminated quoted string");
		ch = (unsigned char)s[c->pos];
		if (ch == '"')
			break;
		if (ch == '\\') {
			if (c->pos + 1 == c->len ||
			    (s[c->pos + 1] != '"' && s[c->pos + 1] != '\\'))
				return fail(p, c, NULL,
					    "Invalid escape in quoted string");
			s[out++] = s[c->pos + 1];
			c->pos += 2;
			continue;
		}
		if (ch == '\0' || ch == '\r' || ch == '\n')
			return fail(p, c, NULL,
				    "Invalid character in quoted string");
		n = 1;
		if (ch >= 0x80) {
			if (!(p->flags & IMAP_PARSER_UTF8))
				return fail(p, c, NULL,
					    "8-bit character in quoted string");
			n = utf8_len((unsigned char *)s + c->pos,
				     c->len - c->pos);
			if (n == 0)
				return fail(p, c, NULL,
					    "Invalid UTF-8 in quoted string");
			flags |= IMAP_ARG_8BIT;
		}
		memmove(s + out, s + c->pos, n);
		out += n;
		c->pos += n;
	}
	c->pos++;
	id = node_add(p, IMAP_ARG_QUOTED, (size_t)(s - p->store.data) + start,
		      out - start);
	if (id == NONE)
		return fail_args(p, c);
	p->nodes[id].flags = flags;
	return IMAP_PARSE_NEED_LINE;
}

/* Reads 1*DIGIT as a number64; false on no digits or overflow. */
static bool
lex_number(struct cur *c, uint64_t *r)
{
	size_t start = c->pos;
	uint64_t n = 0;

	while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9') {
		unsigned d = (unsigned)(c->s[c->pos++] - '0');

		if (n > (NUMBER64_MAX - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*r = n;
	return c->pos > start;
}

static bool
spec_wants_fields(const char *s, size_t len)
{
	static const char *const ends[] = {"HEADER.FIELDS",
					   "HEADER.FIELDS.NOT"};
	size_t i;

	for (i = 0; i < MP_NELEMS(ends); i++) {
		size_t n = strlen(ends[i]);

		if (len >= n && strncasecmp(s + len - n, ends[i], n) == 0 &&
		    (len == n || s[len - n - 1] == '.'))
			return true;
	}
	return false;
}

/* "<" number64 "." nz-number64 ">" after a section, if there. */
static enum imap_parse_result
lex_partial(struct imap_parser *p, struct cur *c, struct sect *sec)
{
	if (c->pos == c->len || c->s[c->pos] != '<')
		return IMAP_PARSE_NEED_LINE;
	c->pos++;
	if (!lex_number(c, &sec->offset) || c->pos == c->len ||
	    c->s[c->pos++] != '.' || !lex_number(c, &sec->count) ||
	    sec->count == 0 || c->pos == c->len || c->s[c->pos++] != '>')
		return fail(p, c, NULL, "Invalid partial range");
	sec->partial = true;
	return IMAP_PARSE_NEED_LINE;
}

/* The header list of a section was closed: check it, then "]" and the
 * partial range. */
static enum imap_parse_result
section_close(struct imap_parser *p, struct cur *c, const struct level *l)
{
	const struct node *att = &p->nodes[l->node];
	uint32_t i;

	if (att->count == 0)
		return fail(p, c, NULL, "Empty header list");
	for (i = 1; i <= att->count; i++) {
		const struct node *f = &p->nodes[l->node + i];

		if (f->type == IMAP_ARG_ATOM &&
		    (f->flags & (IMAP_ARG_WILDCARD | IMAP_ARG_BACKSLASH)))
			return fail(p, c, NULL, "Invalid header field name");
	}
	if (c->pos == c->len || c->s[c->pos] != ']')
		return fail(p, c, NULL, "Missing ']' after header list");
	c->pos++;
	return lex_partial(p, c, &p->secs[att->index]);
}

/* Opens the list whose node id was just added; prev is the argument
 * before it in its parent, which APPEND message positions depend on. */
static enum imap_parse_result
open_list(struct imap_parser *p, struct cur *c, uint32_t id, uint32_t prev,
	  bool section)
{
	struct level *l;

	if (p->depth >= p->lim.depth_max)
		return fail(p, c, "LIMIT", "Lists nested over %u deep",
			    p->lim.depth_max);
	l = &p->stack[p->depth++];
	l->node = id;
	l->prev = prev;
	l->last = NONE;
	l->section = section;
	return IMAP_PARSE_NEED_LINE;
}

/* name "[" spec ["SP" header-list] "]" [partial], in FETCH. */
static enum imap_parse_result
lex_fetch_att(struct imap_parser *p, struct cur *c, size_t start)
{
	size_t base = (size_t)(c->s - p->store.data), spec;
	struct sect *sec;
	uint32_t id;

	if (c->pos == start)
		return fail(p, c, NULL, "Missing name before '['");
	id = node_add(p, IMAP_ARG_FETCH_ATT, base + start, c->pos - start);
	if (id == NONE)
		return fail_args(p, c);
	spec = ++c->pos;
	while (c->pos < c->len &&
	       (c->s[c->pos] == '.' ||
		(c->s[c->pos] >= '0' && c->s[c->pos] <= '9') ||
		((c->s[c->pos] | 0x20) >= 'a' && (c->s[c->pos] | 0x20) <= 'z')))
		c->pos++;
	if (p->nsecs == p->secs_cap) {
		p->secs_cap = p->secs_cap ? p->secs_cap * 2 : 8;
		p->secs = mp_xrealloc(p->secs, p->secs_cap * sizeof(*p->secs));
	}
	sec = &p->secs[p->nsecs];
	memset(sec, 0, sizeof(*sec));
	sec->spec_off = base + spec;
	sec->spec_len = c->pos - spec;
	p->nodes[id].index = (unsigned)p->nsecs++;
	if (c->pos == c->len)
		return fail(p, c, NULL, "Unterminated section");
	if (c->s[c->pos] == ']') {
		if (spec_wants_fields(c->s + spec, c->pos - spec))
			return fail(p, c, NULL, "Missing header list");
		c->pos++;
		return lex_partial(p, c, sec);
	}
	if (c->s[c->pos] != ' ')
		return fail(p, c, NULL, "Invalid character in section");
	if (!spec_wants_fields(c->s + spec, c->pos - spec))
		return fail(p, c, NULL, "Unexpected header list");
	if (++c->pos == c->len || c->s[c->pos] != '(')
		return fail(p, c, NULL, "Missing header list");
	c->pos++;
	return open_list(p, c, id, NONE, true);
}

static bool
in_section(const struct imap_parser *p)
{
	return p->depth > 0 && p->stack[p->depth - 1].section;
}

static enum imap_parse_result
lex_atom(struct imap_parser *p, struct cur *c)
{
	size_t start = c->pos;
	unsigned flags = 0;
	uint32_t id;

	if (c->s[c->pos] == '\\') {
		flags |= IMAP_ARG_BACKSLASH;
		c->pos++;
	}
	for (; c->pos < c->len; c->pos++) {
		unsigned char ch = (unsigned char)c->s[c->pos];

		if (ch == '[' && p->fetch && !in_section(p) && flags == 0)
			return lex_fetch_att(p, c, start);
		if (ch == '%' || ch == '*')
			flags |= IMAP_ARG_WILDCARD;
		else if (ch == ']')
			flags |= IMAP_ARG_RBRACKET;
		else if (!atom_char(ch))
			break;
	}
	if ((flags & IMAP_ARG_BACKSLASH) && c->pos == start + 1)
		return fail(p, c, NULL, "Invalid flag");
	if (c->pos == start || !ends_token(c))
		return fail(p, c, NULL, "Invalid character in atom");
	id = node_add(p, IMAP_ARG_ATOM, (size_t)(c->s - p->store.data) + start,
		      c->pos - start);
	if (id == NONE)
		return fail_args(p, c);
	p->nodes[id].flags = flags;
	if (c->pos - start == 3 && strncasecmp(c->s + start, "NIL", 3) == 0)
		p->nodes[id].type = IMAP_ARG_NIL;
	return IMAP_PARSE_NEED_LINE;
}

/* "{" number64 ["+"] "}" at the end of the line (RFC 9051 9, RFC 7888),
 * or "~{...}" (RFC 3516 literal8). */
static enum imap_parse_result
lex_literal(struct imap_parser *p, struct cur *c)
{
	struct imap_literal *lit = &p->lit;
	bool binary = c->s[c->pos] == '~', msg;
	size_t start;
	uint64_t size;
	uint32_t id;

	c->pos += binary ? 2 : 1;
	start = c->pos;
	if (!lex_number(c, &size))
		return fail(p, c, NULL,
			    c->pos > start ? "Literal size too large"
					   : "Invalid literal size");
	if (c->pos == c->len)
		return fail(p, c, NULL, "Invalid literal size");
	memset(lit, 0, sizeof(*lit));
	lit->sync = c->s[c->pos] != '+';
	if (!lit->sync)
		c->pos++;
	if (c->pos == c->len || c->s[c->pos++] != '}')
		return fail(p, c, NULL, "Invalid literal size");
	if (c->pos != c->len)
		return fail(p, c, NULL, "Text after literal size");
	msg = message_position(p);
	if (binary && !msg)
		return fail(p, c, NULL, "Binary literal not allowed here");
	if (!lit->sync && !(p->flags & (IMAP_PARSER_LITERAL_PLUS |
					IMAP_PARSER_LITERAL_MINUS)))
		return fail(p, c, NULL,
			    "Non-synchronizing literal not allowed");
	if (!lit->sync && !(p->flags & IMAP_PARSER_LITERAL_PLUS) &&
	    size > IMAP_LITERAL_MINUS_MAX)
		return fail(p, c, "TOOBIG",
			    "Non-synchronizing literal over %u octets",
			    IMAP_LITERAL_MINUS_MAX);
	lit->use =
		msg && p->lim.stream ? IMAP_LITERAL_STREAM : IMAP_LITERAL_HOLD;
	if (lit->use == IMAP_LITERAL_HOLD && size > p->lim.literal_max)
		return fail(p, c, "TOOBIG", "Literal over %zu octets",
			    p->lim.literal_max);
	if (lit->use == IMAP_LITERAL_HOLD &&
	    size > p->lim.command_max - p->store.len)
		return fail(p, c, "LIMIT", "Command over %zu octets",
			    p->lim.command_max);
	id = node_add(p,
		      lit->use == IMAP_LITERAL_HOLD ? IMAP_ARG_LITERAL
						    : IMAP_ARG_LITERAL_STREAMED,
		      p->store.len, 0);
	if (id == NONE)
		return fail_args(p, c);
	p->nodes[id].flags = binary ? IMAP_ARG_BINARY : 0;
	p->nodes[id].size = size;
	p->nodes[id].index = p->streamed;
	lit->tag = tag_view(p);
	lit->name = p->name;
	lit->size = size;
	lit->binary = binary;
	lit->index = p->streamed;
	p->lit_node = id;
	p->lit_pending = true;
	p->lit_nul = false;
	p->remaining = size;
	p->state = ST_LITERAL;
	return IMAP_PARSE_NEED_LITERAL;
}

/* --- the tree ------------------------------------------------------------ */

static void
convert(struct imap_parser *p, uint32_t j, struct imap_arg *a)
{
	const struct node *n = &p->nodes[j];

	memset(a, 0, sizeof(*a));
	a->type = n->type;
	a->flags = n->flags;
	if (n->type == IMAP_ARG_LITERAL_STREAMED) {
		a->literal.size = n->size;
		a->literal.index = n->index;
	} else if (n->type != IMAP_ARG_LIST) {
		a->str.p = p->store.data + n->off;
		a->str.len = n->len;
	}
}

/* Lays out count siblings starting at node j at args[dest], each list's
 * elements together after them (recursion depth <= depth_max). */
static void
place(struct imap_parser *p, uint32_t first, size_t count, size_t dest)
{
	uint32_t j = first;
	size_t k;

	for (k = 0; k < count; k++, j += 1 + p->nodes[j].subtree)
		convert(p, j, &p->args[dest + k]);
	for (k = 0, j = first; k < count; k++, j += 1 + p->nodes[j].subtree) {
		const struct node *n = &p->nodes[j];
		struct imap_arg *a = &p->args[dest + k];
		size_t at = p->next_free;

		if (n->type != IMAP_ARG_LIST && n->type != IMAP_ARG_FETCH_ATT)
			continue;
		p->next_free += n->count;
		if (n->type == IMAP_ARG_LIST) {
			a->list.args = n->count > 0 ? p->args + at : NULL;
			a->list.count = n->count;
		} else {
			struct imap_fetch_section *fs = &p->fsecs[n->index];
			const struct sect *sec = &p->secs[n->index];

			fs->spec.p = p->store.data + sec->spec_off;
			fs->spec.len = sec->spec_len;
			fs->fields = n->count > 0 ? p->args + at : NULL;
			fs->nfields = n->count;
			fs->partial = sec->partial;
			fs->offset = sec->offset;
			fs->count = sec->count;
			a->section = fs;
		}
		place(p, j + 1, n->count, at);
	}
}

static enum imap_parse_result
complete(struct imap_parser *p)
{
	if (p->nnodes > p->args_cap) {
		p->args_cap = p->nodes_cap;
		p->args = mp_xrealloc(p->args, p->args_cap * sizeof(*p->args));
	}
	if (p->nsecs > p->fsecs_cap) {
		p->fsecs_cap = p->secs_cap;
		p->fsecs =
			mp_xrealloc(p->fsecs, p->fsecs_cap * sizeof(*p->fsecs));
	}
	p->next_free = p->top_count;
	place(p, 0, p->top_count, 0);
	assert(p->next_free == p->nnodes);
	p->cmd.tag = tag_view(p);
	p->cmd.name = p->name;
	p->cmd.uid = strncmp(p->name, "UID ", 4) == 0;
	p->cmd.verb = p->name + (p->cmd.uid ? 4 : 0);
	p->cmd.args = p->top_count > 0 ? p->args : NULL;
	p->cmd.count = p->top_count;
	p->cmd.streamed = p->streamed;
	p->state = ST_IDLE;
	return IMAP_PARSE_COMPLETE;
}

/* --- lines -----------------------------------------------------------------
 */

static enum imap_parse_result
close_list(struct imap_parser *p, struct cur *c)
{
	struct level l;

	if (p->depth == 0)
		return fail(p, c, NULL, "Unexpected ')'");
	l = p->stack[--p->depth];
	c->pos++;
	p->nodes[l.node].subtree = (uint32_t)(p->nnodes - l.node - 1);
	if (l.section)
		return section_close(p, c, &l);
	return IMAP_PARSE_NEED_LINE;
}

static enum imap_parse_result
lex_token(struct imap_parser *p, struct cur *c)
{
	char ch = c->s[c->pos];
	uint32_t id, prev;

	if (ch == '(') {
		if (in_section(p))
			return fail(p, c, NULL, "Nested list in header list");
		prev = *last_slot(p);
		id = node_add(p, IMAP_ARG_LIST, 0, 0);
		if (id == NONE)
			return fail_args(p, c);
		c->pos++;
		return open_list(p, c, id, prev, false);
	}
	if (ch == '"')
		return lex_quoted(p, c);
	if (ch == '{' ||
	    (ch == '~' && c->pos + 1 < c->len && c->s[c->pos + 1] == '{'))
		return lex_literal(p, c);
	return lex_atom(p, c);
}

static enum imap_parse_result
parse_args(struct imap_parser *p, struct cur *c)
{
	while (c->pos < c->len) {
		unsigned depth = p->depth;
		enum imap_parse_result r;

		if (c->s[c->pos] == ' ') {
			c->pos++;
			p->need_sep = false;
			continue;
		}
		if (c->s[c->pos] == ')')
			r = close_list(p, c);
		else if (p->need_sep)
			return fail(p, c, NULL,
				    "Missing space between arguments");
		else
			r = lex_token(p, c);
		if (r != IMAP_PARSE_NEED_LINE)
			return r;
		/* After "(" the next argument may follow at once. */
		p->need_sep = p->depth <= depth;
	}
	if (p->depth > 0)
		return fail(p, c, NULL, "Missing ')'");
	return complete(p);
}

/* Reads an atom into the name buffer at *at, upper-cased. */
static enum imap_parse_result
lex_name(struct imap_parser *p, struct cur *c, size_t at)
{
	size_t start = c->pos, i;

	while (c->pos < c->len && atom_char((unsigned char)c->s[c->pos]))
		c->pos++;
	if (c->pos < c->len && c->s[c->pos] != ' ')
		return fail(p, c, NULL, "Invalid character in command name");
	if (c->pos - start > IMAP_NAME_MAX)
		return fail(p, c, NULL, "Command name too long");
	for (i = start; i < c->pos; i++) {
		char ch = c->s[i];

		p->name[at++] = ch >= 'a' && ch <= 'z' ? ch - 'a' + 'A' : ch;
	}
	p->name[at] = '\0';
	p->have_name = true;
	return IMAP_PARSE_NEED_LINE;
}

static void
skip_spaces(struct cur *c)
{
	while (c->pos < c->len && c->s[c->pos] == ' ')
		c->pos++;
}

/* tag SP command-name [SP "UID" ...], RFC 9051 9 (command, tag). */
static enum imap_parse_result
parse_start(struct imap_parser *p, struct cur *c)
{
	enum imap_parse_result r;

	if (c->len == 0)
		return fail(p, c, NULL, "Empty command line");
	while (c->pos < c->len && tag_char((unsigned char)c->s[c->pos]))
		c->pos++;
	if (c->pos == 0 && c->s[0] == ' ')
		return fail(p, c, NULL, "Missing tag");
	if (c->pos == 0 || (c->pos < c->len && c->s[c->pos] != ' '))
		return fail(p, c, NULL, "Invalid character in tag");
	p->tag_off = (size_t)(c->s - p->store.data);
	p->tag_len = c->pos;
	p->have_tag = true;
	skip_spaces(c);
	if (c->pos == c->len)
		return fail(p, c, NULL, "Missing command");
	if ((r = lex_name(p, c, 0)) != IMAP_PARSE_NEED_LINE)
		return r;
	if (strcmp(p->name, "UID") == 0) {
		skip_spaces(c);
		if (c->pos == c->len)
			return fail(p, c, NULL, "Missing command after UID");
		p->name[3] = ' ';
		if ((r = lex_name(p, c, 4)) != IMAP_PARSE_NEED_LINE)
			return r;
	}
	p->append = strcmp(p->name, "APPEND") == 0;
	p->fetch = strcmp(p->name, "FETCH") == 0 ||
		   strcmp(p->name, "UID FETCH") == 0;
	p->state = ST_ARGS;
	return IMAP_PARSE_NEED_LINE;
}

/* A line of a refused command: more bytes to drop, or the end. */
static enum imap_parse_result
skip_line(struct imap_parser *p, const char *line, size_t len, unsigned flags)
{
	if (flags & MP_LINE_TOO_LONG) {
		p->have_tag = false;
		return fail_close(p, "Line too long");
	}
	expect_drain(p, line, len);
	if (p->err.close) {
		p->have_tag = false;
		return fail_close(p, "Literal too big to skip");
	}
	return p->state == ST_LITERAL ? IMAP_PARSE_NEED_LITERAL
				      : IMAP_PARSE_SKIPPED;
}

/* Copies the tag of a line that is not kept, for the reply. */
static void
keep_tag(struct imap_parser *p, const char *line, size_t len)
{
	size_t n = 0;

	while (n < len && n < TAG_KEEP_MAX && tag_char((unsigned char)line[n]))
		n++;
	if (n == 0 || n == TAG_KEEP_MAX || (n < len && line[n] != ' '))
		return;
	p->tag_off = p->store.len;
	p->tag_len = n;
	p->have_tag = true;
	mp_buf_append(&p->store, line, n);
}

static enum imap_parse_result
line_over(struct imap_parser *p, const struct cur *c, unsigned flags)
{
	if (p->state == ST_IDLE)
		keep_tag(p, c->s, c->len);
	if (flags & MP_LINE_TOO_LONG)
		return fail_close(p, "Line too long");
	if (c->len > p->lim.line_max)
		return fail(p, c, "LIMIT", "Line over %zu octets",
			    p->lim.line_max);
	return fail(p, c, "LIMIT", "Command over %zu octets",
		    p->lim.command_max);
}

enum imap_parse_result
imap_parser_feed_line(struct imap_parser *p, const char *line, size_t len,
		      unsigned flags)
{
	struct cur c = {(char *)line, len, 0};
	size_t off;

	assert(!p->lit_pending);
	if (p->state == ST_SKIP) {
		command_reset(p);
		return skip_line(p, line, len, flags);
	}
	if (p->state == ST_IDLE)
		command_reset(p);
	if ((flags & MP_LINE_TOO_LONG) || len > p->lim.line_max ||
	    len > p->lim.command_max - p->store.len)
		return line_over(p, &c, flags);
	off = p->store.len;
	mp_buf_append(&p->store, line, len);
	c.s = p->store.data + off;
	if (p->state == ST_IDLE) {
		enum imap_parse_result r = parse_start(p, &c);

		if (r != IMAP_PARSE_NEED_LINE)
			return r;
	}
	return parse_args(p, &c);
}

static enum imap_parse_result
literal_done(struct imap_parser *p)
{
	p->lit_pending = false;
	if (p->lit.use == IMAP_LITERAL_DISCARD) {
		p->state = ST_SKIP;
		return IMAP_PARSE_NEED_LINE;
	}
	if (p->lit.use == IMAP_LITERAL_STREAM)
		p->streamed++;
	p->nodes[p->lit_node].len =
		p->lit.use == IMAP_LITERAL_HOLD ? (size_t)p->lit.size : 0;
	p->state = ST_ARGS;
	p->need_sep = true;
	return IMAP_PARSE_NEED_LINE;
}

enum imap_parse_result
imap_parser_literal_data(struct imap_parser *p, const void *data, size_t len)
{
	assert(p->lit_pending && p->lit.use != IMAP_LITERAL_STREAM);
	assert(len <= p->remaining);
	if (p->lit.use == IMAP_LITERAL_HOLD && len > 0) {
		struct node *n = &p->nodes[p->lit_node];
		const unsigned char *d = data;
		size_t i;

		mp_buf_append(&p->store, data, len);
		for (i = 0; i < len; i++) {
			if (d[i] >= 0x80)
				n->flags |= IMAP_ARG_8BIT;
			else if (d[i] == 0 && !p->lit.binary)
				p->lit_nul = true;
			else if (d[i] == 0)
				n->flags |= IMAP_ARG_NUL;
		}
	}
	p->remaining -= len;
	if (p->remaining > 0)
		return IMAP_PARSE_NEED_DATA;
	if (p->lit.use == IMAP_LITERAL_HOLD && p->lit_nul) {
		/* The client goes on with the rest of the command. */
		p->lit_pending = false;
		p->state = ST_SKIP;
		set_error_text(p, NULL, "NUL in literal");
		return IMAP_PARSE_ERROR;
	}
	return literal_done(p);
}

enum imap_parse_result
imap_parser_literal_consumed(struct imap_parser *p)
{
	assert(p->lit_pending && p->lit.use != IMAP_LITERAL_HOLD);
	p->remaining = 0;
	return literal_done(p);
}

uint64_t
imap_parser_reject_literal(struct imap_parser *p)
{
	assert(p->lit_pending && p->lit.use != IMAP_LITERAL_DISCARD);
	if (p->lit.sync) {
		p->lit_pending = false;
		p->state = ST_IDLE;
		return 0;
	}
	p->lit.use = IMAP_LITERAL_DISCARD;
	p->lit.name = NULL;
	p->remaining = p->lit.size;
	if (p->lit.size == 0)
		literal_done(p); /* nothing to drop: the rest is skipped */
	return p->lit.size;
}

bool
imap_parser_append_mailbox(const struct imap_parser *p, struct mp_str *name_r)
{
	const struct node *n;

	if (!p->lit_pending || p->lit.use != IMAP_LITERAL_STREAM ||
	    p->nnodes == 0)
		return false;
	/* Node 0 is the first top-level argument: nodes are kept in the
	 * order they were read and a stream literal is never the first. */
	n = &p->nodes[0];
	switch (n->type) {
	case IMAP_ARG_ATOM:
	case IMAP_ARG_NIL:
		if (n->flags & (IMAP_ARG_WILDCARD | IMAP_ARG_BACKSLASH))
			return false;
		break;
	case IMAP_ARG_QUOTED:
	case IMAP_ARG_LITERAL:
		break;
	default:
		return false;
	}
	name_r->p = p->store.data + n->off;
	name_r->len = n->len;
	return true;
}

const struct imap_command *
imap_parser_command(const struct imap_parser *p)
{
	return &p->cmd;
}

const struct imap_literal *
imap_parser_literal(const struct imap_parser *p)
{
	return p->lit_pending ? &p->lit : NULL;
}

const struct imap_parse_error *
imap_parser_error(const struct imap_parser *p)
{
	return &p->err;
}

struct mp_str
imap_parser_storage(const struct imap_parser *p)
{
	struct mp_str s = {p->store.data, p->store.len};

	return s;
}

bool
imap_line_is_done(const char *line, size_t len)
{
	return len == 4 && strncasecmp(line, "DONE", 4) == 0;
}

/* --- accessors ------------------------------------------------------------ */

bool
imap_arg_get_atom(const struct imap_arg *arg, struct mp_str *r)
{
	if (arg == NULL ||
	    (arg->type != IMAP_ARG_ATOM && arg->type != IMAP_ARG_NIL))
		return false;
	*r = arg->str;
	return true;
}

bool
imap_arg_get_string(const struct imap_arg *arg, struct mp_str *r)
{
	if (arg == NULL ||
	    (arg->type != IMAP_ARG_QUOTED && arg->type != IMAP_ARG_LITERAL))
		return false;
	*r = arg->str;
	return true;
}

bool
imap_arg_get_astring(const struct imap_arg *arg, struct mp_str *r)
{
	if (arg != NULL &&
	    (arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_NIL)) {
		if (arg->flags & (IMAP_ARG_WILDCARD | IMAP_ARG_BACKSLASH))
			return false;
		*r = arg->str;
		return true;
	}
	return imap_arg_get_string(arg, r);
}

bool
imap_arg_get_nstring(const struct imap_arg *arg, struct mp_str *r)
{
	if (arg != NULL && arg->type == IMAP_ARG_NIL) {
		r->p = NULL;
		r->len = 0;
		return true;
	}
	return imap_arg_get_string(arg, r);
}

bool
imap_arg_get_list_mailbox(const struct imap_arg *arg, struct mp_str *r)
{
	if (arg != NULL && arg->type == IMAP_ARG_ATOM &&
	    !(arg->flags & IMAP_ARG_BACKSLASH)) {
		*r = arg->str;
		return true;
	}
	return imap_arg_get_astring(arg, r);
}

bool
imap_arg_get_list(const struct imap_arg *arg, const struct imap_arg **args_r,
		  size_t *count_r)
{
	if (arg == NULL || arg->type != IMAP_ARG_LIST)
		return false;
	*args_r = arg->list.args;
	*count_r = arg->list.count;
	return true;
}

bool
imap_arg_get_number(const struct imap_arg *arg, uint64_t *r)
{
	struct cur c;
	uint64_t n;

	if (arg == NULL || arg->type != IMAP_ARG_ATOM)
		return false;
	c.s = (char *)arg->str.p;
	c.len = arg->str.len;
	c.pos = 0;
	if (!lex_number(&c, &n) || c.pos != c.len)
		return false;
	*r = n;
	return true;
}

bool
imap_arg_atom_equals(const struct imap_arg *arg, const char *word)
{
	return arg != NULL &&
	       (arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_NIL) &&
	       arg->str.len == strlen(word) &&
	       strncasecmp(arg->str.p, word, arg->str.len) == 0;
}
