/* mime-header.c - header fields: unfolding, Content-* with parameters
 * (RFC 2045, 2183, 2231); envelope address lists are in mime-address.c. */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime-private.h"

/* RFC 2231 sections past this are ignored: a real filename needs a few,
 * and the bound keeps joining them linear. */
#define MIME_SECTION_MAX 999

/* strchr() for a set of bytes, where a NUL byte is never in the set. */
bool
mime_in_set(const char *set, char c)
{
	return c != '\0' && strchr(set, c) != NULL;
}

static void
lower(char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] >= 'A' && p[i] <= 'Z')
			p[i] = (char)(p[i] - 'A' + 'a');
	}
}

/* --- lexing (RFC 5322 CFWS, quoted strings; RFC 2045 tokens) ------------ */

void
mime_lex_init(struct mime_lex *lx, const char *p, size_t len)
{
	*lx = (struct mime_lex){.p = p, .end = p + len};
}

/* Skips a comment, nested or not; an unclosed one runs to the end. */
static void
lex_comment(struct mime_lex *lx)
{
	const char *start = ++lx->p;
	size_t depth = 1;

	while (lx->p < lx->end && depth > 0) {
		if (*lx->p == '\\' && lx->p + 1 < lx->end)
			lx->p++;
		else if (*lx->p == '(')
			depth++;
		else if (*lx->p == ')')
			depth--;
		lx->p++;
	}
	lx->comment = mime_trim(start, (size_t)(lx->p - start) - (depth == 0));
}

void
mime_lex_cfws(struct mime_lex *lx)
{
	while (lx->p < lx->end) {
		char c = *lx->p;

		if (c == '(')
			lex_comment(lx);
		else if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			lx->p++;
		else
			return;
		lx->ws = true;
	}
}

/* At a '"': reads the quoted string, unescaped into out (may be NULL);
 * an unclosed one runs to the end. */
void
mime_lex_quoted(struct mime_lex *lx, struct mp_buf *out)
{
	lx->p++;
	while (lx->p < lx->end && *lx->p != '"') {
		if (*lx->p == '\\' && lx->p + 1 < lx->end)
			lx->p++;
		if (out != NULL)
			mp_buf_append(out, lx->p, 1);
		lx->p++;
	}
	if (lx->p < lx->end)
		lx->p++;
}

static bool
is_token_char(char c)
{
	return c > ' ' && c < 127 && !mime_in_set("()<>@,;:\\\"/[]?=", c);
}

static struct mp_str
lex_token(struct mime_lex *lx)
{
	const char *start = lx->p;

	while (lx->p < lx->end && is_token_char(*lx->p))
		lx->p++;
	return (struct mp_str){start, (size_t)(lx->p - start)};
}

/* Skips to the next ';' outside a quoted string (junk in a parameter). */
static void
lex_skip_param(struct mime_lex *lx)
{
	while (lx->p < lx->end && *lx->p != ';') {
		if (*lx->p == '"')
			mime_lex_quoted(lx, NULL);
		else if (*lx->p == '(')
			lex_comment(lx);
		else
			lx->p++;
	}
}

static void
arena_lower(struct mime_hdr_ctx *ctx, struct mp_str s, struct mp_str *out)
{
	char *copy = mime_arena_str(ctx->arena, s.p, s.len, out);

	if (copy != NULL)
		lower(copy, s.len);
}

/* --- parameters and RFC 2231 -------------------------------------------- */

/* A parameter as sent; strings are offsets into the scratch buffer. */
struct raw_param {
	size_t name, name_len; /* base name, lower-cased */
	size_t value, value_len;
	uint32_t section; /* "name*N": N */
	bool has_section;
	bool ext; /* "name*" or "name*N*": charset'lang'%XX */
};

struct params {
	struct raw_param *v;
	uint32_t n;
	struct mp_buf text;
};

/* Splits "title*1*" into base "title", section 1, extended. A name that
 * does not fit the RFC 2231 pattern is a plain name. */
static void
split_name(struct raw_param *rp, const char *name)
{
	const char *star = memchr(name, '*', rp->name_len);
	const char *end = name + rp->name_len, *q;
	uint32_t n = 0;

	if (star == NULL || star == name)
		return;
	q = star + 1;
	if (q < end && *q >= '0' && *q <= '9') {
		if (*q == '0' && q + 1 < end && q[1] != '*')
			return;
		for (;
		     q < end && *q >= '0' && *q <= '9' && n <= MIME_SECTION_MAX;
		     q++)
			n = n * 10 + (uint32_t)(*q - '0');
		if (n > MIME_SECTION_MAX)
			return;
		rp->has_section = true;
		rp->section = n;
		if (q < end && *q == '*') {
			rp->ext = true;
			q++;
		}
	} else {
		rp->ext = true;
	}
	if (q != end) {
		rp->has_section = rp->ext = false;
		return;
	}
	rp->name_len = (size_t)(star - name);
}

/* Reads "name=value" after a ';'; false when it is junk. */
static bool
param_read(struct mime_lex *lx, struct params *ps, struct raw_param *rp)
{
	struct mp_str name;
	const char *start;

	mime_lex_cfws(lx);
	name = lex_token(lx);
	mime_lex_cfws(lx);
	if (name.len == 0 || lx->p >= lx->end || *lx->p != '=')
		return false;
	lx->p++;
	mime_lex_cfws(lx);
	rp->name = ps->text.len;
	rp->name_len = name.len;
	mp_buf_append(&ps->text, name.p, name.len);
	lower(ps->text.data + rp->name, name.len);
	split_name(rp, ps->text.data + rp->name);
	rp->value = ps->text.len;
	if (lx->p < lx->end && *lx->p == '"') {
		mime_lex_quoted(lx, &ps->text);
	} else {
		/* Not only tokens: unquoted boundaries with '=' and '?' are
		 * common, so a value runs to white space or ';'. */
		start = lx->p;
		while (lx->p < lx->end && !mime_in_set(" \t\r\n;\"(", *lx->p))
			lx->p++;
		mp_buf_append(&ps->text, start, (size_t)(lx->p - start));
	}
	rp->value_len = ps->text.len - rp->value;
	return true;
}

static void
params_read(struct mime_hdr_ctx *ctx, struct mime_lex *lx, struct params *ps)
{
	struct raw_param rp;

	for (;;) {
		mime_lex_cfws(lx);
		if (lx->p >= lx->end)
			return;
		if (*lx->p != ';') {
			*ctx->msg_flags |= MP_MIME_BROKEN;
			lex_skip_param(lx);
			continue;
		}
		lx->p++;
		rp = (struct raw_param){0};
		if (!param_read(lx, ps, &rp)) {
			lex_skip_param(lx);
			continue;
		}
		if (ps->n >= ctx->limits->max_params) {
			*ctx->msg_flags |= MP_MIME_TRUNCATED;
			return;
		}
		/* Room for 4, then doubled at 4, 8, 16... */
		if (ps->n == 0)
			ps->v = mp_xrealloc(ps->v, 4 * sizeof(*ps->v));
		else if (ps->n >= 4 && (ps->n & (ps->n - 1)) == 0)
			ps->v = mp_xrealloc(ps->v, ps->n * 2 * sizeof(*ps->v));
		ps->v[ps->n++] = rp;
	}
}

static const struct raw_param *
section_find(const struct params *ps, const struct raw_param *base,
	     uint32_t section)
{
	for (uint32_t i = 0; i < ps->n; i++) {
		const struct raw_param *rp = &ps->v[i];

		if (rp->has_section && rp->section == section &&
		    rp->name_len == base->name_len &&
		    memcmp(ps->text.data + rp->name, ps->text.data + base->name,
			   base->name_len) == 0)
			return rp;
	}
	return NULL;
}

/* Joins the sections of base's name in order (stopping at a gap) and
 * decodes them to UTF-8 into out. */
static void
join_sections(const struct params *ps, const struct raw_param *base,
	      struct mp_buf *out)
{
	char charset[MIME_CHARSET_MAX] = "";
	struct mp_buf raw = {0};
	const struct raw_param *rp;
	bool ext = false;

	for (uint32_t s = 0; (rp = section_find(ps, base, s)) != NULL; s++) {
		const char *v = ps->text.data + rp->value;

		if (rp->ext)
			mime_ext_value(v, rp->value_len, s == 0, charset, &raw);
		else
			mp_buf_append(&raw, v, rp->value_len);
		ext |= rp->ext;
	}
	if (ext)
		mp_mime_charset_to_utf8(charset, raw.data, raw.len, out);
	else
		mp_buf_append(out, raw.data, raw.len);
	mp_buf_free(&raw);
}

/* True when an earlier parameter already stood for rp's sections. */
static bool
sections_done(const struct params *ps, const struct raw_param *rp)
{
	for (const struct raw_param *q = ps->v; q < rp; q++) {
		if (q->has_section && q->name_len == rp->name_len &&
		    memcmp(ps->text.data + q->name, ps->text.data + rp->name,
			   rp->name_len) == 0)
			return true;
	}
	return false;
}

/* The decoded value of raw parameter rp into out; false to drop it. */
static bool
param_value(const struct params *ps, const struct raw_param *rp,
	    struct mp_buf *out)
{
	char charset[MIME_CHARSET_MAX] = "";
	struct mp_buf raw = {0};

	if (rp->has_section) {
		if (sections_done(ps, rp))
			return false;
		join_sections(ps, rp, out);
	} else if (rp->ext) {
		mime_ext_value(ps->text.data + rp->value, rp->value_len, true,
			       charset, &raw);
		mp_mime_charset_to_utf8(charset, raw.data, raw.len, out);
		mp_buf_free(&raw);
	} else {
		mp_buf_append(out, ps->text.data + rp->value, rp->value_len);
	}
	return true;
}

/* Turns the raw parameters into the arena list *v_r / *n_r. */
static void
params_store(struct mime_hdr_ctx *ctx, const struct params *ps,
	     const struct mp_mime_param **v_r, uint32_t *n_r)
{
	struct mp_mime_param *v;
	struct mp_buf value = {0};
	uint32_t n = 0;

	if (ps->n == 0 ||
	    (v = mime_arena_take(ctx->arena, ps->n * sizeof(*v))) == NULL)
		return;
	for (uint32_t i = 0; i < ps->n; i++) {
		const struct raw_param *rp = &ps->v[i];

		mp_buf_reset(&value);
		if (!param_value(ps, rp, &value))
			continue;
		mime_arena_str(ctx->arena, ps->text.data + rp->name,
			       rp->name_len, &v[n].name);
		mime_arena_str(ctx->arena, value.data != NULL ? value.data : "",
			       value.len, &v[n].value);
		n++;
	}
	mp_buf_free(&value);
	*v_r = v;
	*n_r = n;
}

static void
params_free(struct params *ps)
{
	free(ps->v);
	mp_buf_free(&ps->text);
}

/* --- Content-* fields ----------------------------------------------------- */

static void
content_type(struct mime_hdr_ctx *ctx, const char *value, size_t len)
{
	struct mp_mime_part *part = ctx->part;
	struct params ps = {0};
	struct mp_str type, subtype;
	struct mime_lex lx;

	mime_lex_init(&lx, value, len);
	mime_lex_cfws(&lx);
	type = lex_token(&lx);
	mime_lex_cfws(&lx);
	if (type.len == 0 || lx.p >= lx.end || *lx.p != '/') {
		/* RFC 2045 section 5.2: read as the default type. */
		*ctx->msg_flags |= MP_MIME_BROKEN;
		return;
	}
	lx.p++;
	mime_lex_cfws(&lx);
	subtype = lex_token(&lx);
	if (subtype.len == 0) {
		*ctx->msg_flags |= MP_MIME_BROKEN;
		return;
	}
	arena_lower(ctx, type, &part->type);
	arena_lower(ctx, subtype, &part->subtype);
	params_read(ctx, &lx, &ps);
	params_store(ctx, &ps, &part->params, &part->n_params);
	params_free(&ps);
}

static void
content_disposition(struct mime_hdr_ctx *ctx, const char *value, size_t len)
{
	struct mp_mime_part *part = ctx->part;
	struct params ps = {0};
	struct mp_str type;
	struct mime_lex lx;

	mime_lex_init(&lx, value, len);
	mime_lex_cfws(&lx);
	type = lex_token(&lx);
	if (type.len == 0)
		return;
	arena_lower(ctx, type, &part->disposition);
	params_read(ctx, &lx, &ps);
	params_store(ctx, &ps, &part->disposition_params,
		     &part->n_disposition_params);
	params_free(&ps);
}

static void
content_encoding(struct mime_hdr_ctx *ctx, const char *value, size_t len)
{
	struct mp_str token;
	struct mime_lex lx;

	mime_lex_init(&lx, value, len);
	mime_lex_cfws(&lx);
	token = lex_token(&lx);
	if (token.len > 0)
		arena_lower(ctx, token, &ctx->part->encoding);
}

/* Content-Language (RFC 3282): a comma list of tags. */
static void
content_language(struct mime_hdr_ctx *ctx, const char *value, size_t len)
{
	struct mp_str *v, tags[64];
	uint32_t n = 0, max = ctx->limits->max_params;
	struct mime_lex lx;

	if (max > MP_NELEMS(tags))
		max = MP_NELEMS(tags);
	mime_lex_init(&lx, value, len);
	for (;;) {
		struct mp_str tag;

		mime_lex_cfws(&lx);
		if (lx.p >= lx.end)
			break;
		tag = lex_token(&lx);
		if (tag.len > 0 && n == max) {
			*ctx->msg_flags |= MP_MIME_TRUNCATED;
			break;
		}
		if (tag.len > 0)
			tags[n++] = tag;
		else
			lx.p++;
	}
	if (n == 0 || (v = mime_arena_take(ctx->arena, n * sizeof(*v))) == NULL)
		return;
	for (uint32_t i = 0; i < n; i++)
		mime_arena_str(ctx->arena, tags[i].p, tags[i].len, &v[i]);
	ctx->part->language = v;
	ctx->part->n_language = n;
}

static void
raw_value(struct mime_hdr_ctx *ctx, const char *value, size_t len,
	  struct mp_str *out)
{
	struct mp_str v = mime_trim(value, len);

	mime_arena_str(ctx->arena, v.p, v.len, out);
}

/* --- dispatch ------------------------------------------------------------- */

enum field_kind {
	K_TYPE,
	K_ENCODING,
	K_DISPOSITION,
	K_LANGUAGE,
	K_RAW,
	K_ADDR
};

/* The fields we interpret. Those after "date" count only in a message
 * header; where is the offset of their member in the part or envelope. */
static const struct field {
	const char *name;
	enum field_kind kind;
	size_t where;
} fields[] = {
	{"content-type", K_TYPE, 0},
	{"content-transfer-encoding", K_ENCODING, 0},
	{"content-disposition", K_DISPOSITION, 0},
	{"content-language", K_LANGUAGE, 0},
	{"content-id", K_RAW, offsetof(struct mp_mime_part, id)},
	{"content-description", K_RAW,
	 offsetof(struct mp_mime_part, description)},
	{"content-md5", K_RAW, offsetof(struct mp_mime_part, md5)},
	{"content-location", K_RAW, offsetof(struct mp_mime_part, location)},
#define FIELDS_ENVELOPE 8
	{"date", K_RAW, offsetof(struct mp_mime_envelope, date)},
	{"subject", K_RAW, offsetof(struct mp_mime_envelope, subject)},
	{"message-id", K_RAW, offsetof(struct mp_mime_envelope, message_id)},
	{"in-reply-to", K_RAW, offsetof(struct mp_mime_envelope, in_reply_to)},
	{"from", K_ADDR, offsetof(struct mp_mime_envelope, from)},
	{"sender", K_ADDR, offsetof(struct mp_mime_envelope, sender)},
	{"reply-to", K_ADDR, offsetof(struct mp_mime_envelope, reply_to)},
	{"to", K_ADDR, offsetof(struct mp_mime_envelope, to)},
	{"cc", K_ADDR, offsetof(struct mp_mime_envelope, cc)},
	{"bcc", K_ADDR, offsetof(struct mp_mime_envelope, bcc)},
};

static int
field_lookup(const char *name, size_t len, bool message_header)
{
	size_t n = message_header ? MP_NELEMS(fields) : FIELDS_ENVELOPE;

	for (size_t i = 0; i < n; i++) {
		if (mime_str_ieq(name, len, fields[i].name))
			return (int)i;
	}
	return -1;
}

bool
mime_field_wanted(const char *name, size_t len, bool message_header)
{
	return field_lookup(name, len, message_header) >= 0;
}

void
mime_header_field(struct mime_hdr_ctx *ctx, const char *name, size_t name_len,
		  const char *value, size_t value_len)
{
	int id = field_lookup(name, name_len, ctx->env != NULL);
	const struct field *f;
	char *base;

	if (id < 0 || (ctx->seen & (1u << id)))
		return;
	ctx->seen |= 1u << id;
	f = &fields[id];
	base = id < FIELDS_ENVELOPE ? (char *)ctx->part : (char *)ctx->env;
	if (value == NULL)
		value = "";
	switch (f->kind) {
	case K_TYPE:
		content_type(ctx, value, value_len);
		break;
	case K_ENCODING:
		content_encoding(ctx, value, value_len);
		break;
	case K_DISPOSITION:
		content_disposition(ctx, value, value_len);
		break;
	case K_LANGUAGE:
		content_language(ctx, value, value_len);
		break;
	case K_RAW:
		raw_value(ctx, value, value_len,
			  (struct mp_str *)(base + f->where));
		break;
	case K_ADDR:
		mime_address_list(ctx, value, value_len,
				  (struct mp_mime_addrlist *)(base + f->where));
	}
}

void
mime_header_defaults(struct mime_hdr_ctx *ctx, bool in_digest)
{
	static const struct mp_mime_param us_ascii = {
		{"charset", 7},
		{"us-ascii", 8},
	};
	struct mp_mime_part *part = ctx->part;

	if (part->type.p == NULL || part->subtype.p == NULL)
		part->type = (struct mp_str){NULL, 0};
	if (part->type.p == NULL && in_digest) {
		part->type = (struct mp_str){"message", 7};
		part->subtype = (struct mp_str){"rfc822", 6};
	} else if (part->type.p == NULL) {
		part->type = (struct mp_str){"text", 4};
		part->subtype = (struct mp_str){"plain", 5};
		part->params = &us_ascii;
		part->n_params = 1;
	}
	if (part->encoding.p == NULL)
		part->encoding = (struct mp_str){"7bit", 4};
	if (ctx->env == NULL)
		return;
	if (ctx->env->sender.n == 0)
		ctx->env->sender = ctx->env->from;
	if (ctx->env->reply_to.n == 0)
		ctx->env->reply_to = ctx->env->from;
}
