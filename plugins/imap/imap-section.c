/* imap-section.c - FETCH section items: parsing, resolving against the
 * stored MIME structure, header field filtering and BINARY decoding. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap-section.h"

/* number64 of RFC 9051: 0 to 2^63 - 1. */
#define NUMBER64_MAX ((uint64_t)INT64_MAX)

/* The part of a text not read yet. */
struct cursor {
	const char *p;
	size_t len, pos;
};

static bool
at_end(const struct cursor *c)
{
	return c->pos >= c->len;
}

static char
peek(const struct cursor *c)
{
	return at_end(c) ? '\0' : c->p[c->pos];
}

/* Eats word (upper case) when the input starts with it in any case. */
static bool
eat(struct cursor *c, const char *word)
{
	size_t n = strlen(word);

	if (c->len - c->pos < n || strncasecmp(c->p + c->pos, word, n) != 0)
		return false;
	c->pos += n;
	return true;
}

/* Eats word when it is all that is left. */
static bool
eat_last(struct cursor *c, const char *word)
{
	size_t pos = c->pos;

	if (eat(c, word) && at_end(c))
		return true;
	c->pos = pos;
	return false;
}

static bool
is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool
is_name_char(char ch)
{
	return is_digit(ch) || ch == '.' || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= 'a' && ch <= 'z');
}

/* RFC 3501 number, at most max; nz: nz-number. No leading zero: "01" is
 * a number by the grammar, but no client writes one and a part "01"
 * would be ambiguous. */
static bool
parse_number(struct cursor *c, bool nz, uint64_t max, uint64_t *n_r)
{
	uint64_t n = 0;
	size_t start = c->pos;

	if (!is_digit(peek(c)) || (nz && peek(c) == '0'))
		return false;
	while (is_digit(peek(c))) {
		uint64_t d = (uint64_t)(c->p[c->pos++] - '0');

		if (n > (max - d) / 10)
			return false;
		n = n * 10 + d;
	}
	if (c->pos - start > 1 && c->p[start] == '0')
		return false;
	*n_r = n;
	return true;
}

/* ASTRING-CHAR (RFC 3501/9051): ATOM-CHAR or "]". */
static bool
is_astring_char(unsigned char ch)
{
	return ch > 0x20 && ch < 0x7f && strchr("(){%*\"\\", ch) == NULL;
}

/* --- meaning: the pieces of an item into struct imap_section ------------ */

static bool
set_item(const struct imap_section_parts *in, struct imap_section *sec)
{
	static const struct {
		const char *name;
		enum imap_section_item item;
		bool peek, bracket;
	} items[] = {
		{"BODY", IMAP_SECTION_ITEM_BODY, false, true},
		{"BODY.PEEK", IMAP_SECTION_ITEM_BODY, true, true},
		{"BINARY", IMAP_SECTION_ITEM_BINARY, false, true},
		{"BINARY.PEEK", IMAP_SECTION_ITEM_BINARY, true, true},
		{"BINARY.SIZE", IMAP_SECTION_ITEM_BINARY_SIZE, true, true},
		{"RFC822", IMAP_SECTION_ITEM_RFC822, false, false},
		{"RFC822.HEADER", IMAP_SECTION_ITEM_RFC822_HEADER, true, false},
		{"RFC822.TEXT", IMAP_SECTION_ITEM_RFC822_TEXT, false, false},
	};

	for (size_t i = 0; i < MP_NELEMS(items); i++) {
		if (in->name.len == strlen(items[i].name) &&
		    strncasecmp(in->name.p, items[i].name, in->name.len) == 0 &&
		    in->bracket == items[i].bracket) {
			sec->item = items[i].item;
			sec->peek = items[i].peek;
			return true;
		}
	}
	return false;
}

/* section-part: nz-number *("." nz-number), copied to sec->part. */
static bool
parse_part(struct cursor *c, struct imap_section *sec, const char **error_r)
{
	size_t start = c->pos, count = 0;
	uint64_t n;

	do {
		if (!parse_number(c, true, UINT32_MAX, &n)) {
			*error_r = "Invalid part number in section";
			return false;
		}
		if (++count > IMAP_SECTION_PARTS_MAX) {
			*error_r = "Section nests too deep";
			return false;
		}
	} while (c->pos + 1 < c->len && c->p[c->pos] == '.' &&
		 is_digit(c->p[c->pos + 1]) && eat(c, "."));
	free(sec->part);
	sec->part = mp_xstrndup(c->p + start, c->pos - start);
	return true;
}

/* section-msgtext, or "MIME" after part numbers; all of what is left. */
static bool
parse_text(struct cursor *c, struct imap_section *sec, bool after_part)
{
	if (eat_last(c, "HEADER.FIELDS.NOT"))
		sec->text = IMAP_SECTION_HEADER_FIELDS_NOT;
	else if (eat_last(c, "HEADER.FIELDS"))
		sec->text = IMAP_SECTION_HEADER_FIELDS;
	else if (eat_last(c, "HEADER"))
		sec->text = IMAP_SECTION_HEADER;
	else if (eat_last(c, "TEXT"))
		sec->text = IMAP_SECTION_TEXT;
	else if (after_part && eat_last(c, "MIME"))
		sec->text = IMAP_SECTION_MIME;
	else
		return false;
	return true;
}

/* What is between "[" and "]", header list excluded. BINARY takes part
 * numbers only (RFC 3516 section-binary). */
static bool
parse_spec(struct mp_str spec, struct imap_section *sec, const char **error_r)
{
	struct cursor c = {spec.p, spec.len, 0};
	bool binary = sec->item != IMAP_SECTION_ITEM_BODY;

	if (at_end(&c))
		return true;
	if (is_digit(peek(&c))) {
		if (!parse_part(&c, sec, error_r))
			return false;
		if (at_end(&c))
			return true;
		if (!binary && eat(&c, ".") && parse_text(&c, sec, true))
			return true;
	} else if (!binary && parse_text(&c, sec, false)) {
		return true;
	}
	*error_r =
		binary ? "BINARY takes part numbers only" : "Invalid section";
	return false;
}

static bool
copy_fields(const struct imap_section_parts *in, struct imap_section *sec,
	    const char **error_r)
{
	bool want = sec->text == IMAP_SECTION_HEADER_FIELDS ||
		    sec->text == IMAP_SECTION_HEADER_FIELDS_NOT;

	if (want != (in->nfields > 0)) {
		*error_r = want ? "Missing header field list"
				: "Header field list without HEADER.FIELDS";
		return false;
	}
	if (in->nfields > IMAP_SECTION_FIELDS_MAX) {
		*error_r = "Too many header field names";
		return false;
	}
	for (size_t i = 0; i < in->nfields; i++) {
		struct mp_str f = in->fields[i];
		char *up;

		if (f.len > 0 && memchr(f.p, '\0', f.len) != NULL) {
			*error_r = "Invalid header field name";
			return false;
		}
		up = mp_xstrndup(f.len > 0 ? f.p : "", f.len);
		for (char *s = up; *s != '\0'; s++) {
			if (*s >= 'a' && *s <= 'z')
				*s = (char)(*s - 'a' + 'A');
		}
		mp_strlist_add(&sec->fields, up);
		free(up);
	}
	return true;
}

static bool
set_partial(const struct imap_section_parts *in, struct imap_section *sec,
	    const char **error_r)
{
	if (!in->partial)
		return true;
	if (sec->item != IMAP_SECTION_ITEM_BODY &&
	    sec->item != IMAP_SECTION_ITEM_BINARY) {
		*error_r = "No partial allowed with this item";
		return false;
	}
	if (in->size == 0 || in->offset > NUMBER64_MAX ||
	    in->size > NUMBER64_MAX) {
		*error_r = "Invalid partial <offset.size>";
		return false;
	}
	sec->partial = true;
	sec->partial_offset = in->offset;
	sec->partial_size = in->size;
	return true;
}

bool
imap_section_from_parts(const struct imap_section_parts *in,
			struct imap_section *sec, const char **error_r)
{
	bool ok;

	*sec = (struct imap_section){0};
	*error_r = NULL;
	if (!set_item(in, sec)) {
		*error_r = "Not a FETCH section item";
		return false;
	}
	if (sec->item == IMAP_SECTION_ITEM_RFC822_HEADER)
		sec->text = IMAP_SECTION_HEADER;
	else if (sec->item == IMAP_SECTION_ITEM_RFC822_TEXT)
		sec->text = IMAP_SECTION_TEXT;
	ok = (!in->bracket || parse_spec(in->spec, sec, error_r)) &&
	     copy_fields(in, sec, error_r) && set_partial(in, sec, error_r);
	if (!ok) {
		imap_section_clear(sec);
		return false;
	}
	if (sec->part == NULL)
		sec->part = mp_xstrdup("");
	return true;
}

/* --- syntax: an item's text into its pieces ----------------------------- */

/* The names of a header list: their bytes one after another in names
 * (quotes and escapes removed), their views in v once the list is read. */
struct field_spans {
	struct mp_str v[IMAP_SECTION_FIELDS_MAX];
	size_t n;
	struct mp_buf names;
};

/* header-fld-name = astring: an atom or a quoted string here. */
static bool
parse_field_name(struct cursor *c, struct field_spans *fs)
{
	size_t start = fs->names.len;
	bool quoted = eat(c, "\"");

	for (; !at_end(c); c->pos++) {
		char ch = peek(c);

		if (!quoted && !is_astring_char((unsigned char)ch))
			break;
		if (quoted && ch == '"')
			break;
		if (quoted && ch == '\\' && c->pos + 1 < c->len &&
		    (c->p[c->pos + 1] == '"' || c->p[c->pos + 1] == '\\'))
			ch = c->p[++c->pos];
		else if (ch == '\\' || ch == '\r' || ch == '\n')
			return false;
		mp_buf_append(&fs->names, &ch, 1);
	}
	fs->v[fs->n++].len = fs->names.len - start;
	return quoted ? eat(c, "\"") : fs->names.len > start;
}

/* SP "(" header-fld-name *(SP header-fld-name) ")" */
static bool
parse_field_list(struct cursor *c, struct field_spans *fs, const char **error_r)
{
	const char *p;
	bool closed = false;

	if (!eat(c, " (")) {
		*error_r = "Missing header field list";
		return false;
	}
	do {
		if (fs->n == IMAP_SECTION_FIELDS_MAX) {
			*error_r = "Too many header field names";
			return false;
		}
		if (peek(c) == '{') {
			*error_r = "Literal in a header list: not supported";
			return false;
		}
		if (!parse_field_name(c, fs))
			break;
		closed = eat(c, ")");
	} while (!closed && eat(c, " "));
	if (!closed) {
		*error_r = "Invalid header field list";
		return false;
	}
	p = fs->names.data;
	for (size_t i = 0; i < fs->n; p += fs->v[i++].len)
		fs->v[i].p = p;
	return true;
}

/* name ["[" spec [SP "(" fields ")"] "]" ["<" number "." number ">"]] */
static bool
cut_item(struct cursor *c, struct imap_section_parts *in,
	 struct field_spans *fs, const char **error_r)
{
	size_t start = c->pos;

	while (is_name_char(peek(c)))
		c->pos++;
	in->name = (struct mp_str){c->p + start, c->pos - start};
	if (!eat(c, "["))
		return true;
	in->bracket = true;
	start = c->pos;
	while (is_name_char(peek(c)))
		c->pos++;
	in->spec = (struct mp_str){c->p + start, c->pos - start};
	/* a space only before the list of HEADER.FIELDS[.NOT] */
	if (peek(c) == ' ' && !parse_field_list(c, fs, error_r))
		return false;
	in->fields = fs->v;
	in->nfields = fs->n;
	if (!eat(c, "]")) {
		*error_r = "Missing ']' in section";
		return false;
	}
	if (!eat(c, "<"))
		return true;
	in->partial = true;
	if (!parse_number(c, false, NUMBER64_MAX, &in->offset) ||
	    !eat(c, ".") || !parse_number(c, false, NUMBER64_MAX, &in->size) ||
	    !eat(c, ">")) {
		*error_r = "Invalid partial <offset.size>";
		return false;
	}
	return true;
}

bool
imap_section_parse(const char *p, size_t len, struct imap_section *sec,
		   size_t *consumed_r, const char **error_r)
{
	struct cursor c = {p, len, 0};
	struct imap_section_parts in = {0};
	struct field_spans *fs = mp_xcalloc(1, sizeof(*fs));
	bool ok = cut_item(&c, &in, fs, error_r);

	*sec = (struct imap_section){0};
	if (ok && !at_end(&c) && peek(&c) != ' ' && peek(&c) != ')') {
		*error_r = "Unexpected data after FETCH section item";
		ok = false;
	}
	if (ok && imap_section_from_parts(&in, sec, error_r))
		*consumed_r = c.pos;
	else
		ok = false;
	mp_buf_free(&fs->names);
	free(fs);
	return ok;
}

void
imap_section_clear(struct imap_section *sec)
{
	MP_FREE(sec->part);
	mp_strlist_free(&sec->fields);
	*sec = (struct imap_section){0};
}

/* --- the response name -------------------------------------------------- */

static void
write_field_name(struct mp_buf *out, const char *name)
{
	bool atom = *name != '\0';

	for (const char *s = name; *s != '\0'; s++)
		atom = atom && is_astring_char((unsigned char)*s);
	if (atom) {
		mp_buf_puts(out, name);
		return;
	}
	mp_buf_append(out, "\"", 1);
	for (const char *s = name; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			mp_buf_append(out, "\\", 1);
		mp_buf_append(out, s, 1);
	}
	mp_buf_append(out, "\"", 1);
}

void
imap_section_write_name(const struct imap_section *sec, struct mp_buf *out)
{
	static const char *const items[] = {
		[IMAP_SECTION_ITEM_BODY] = "BODY[",
		[IMAP_SECTION_ITEM_BINARY] = "BINARY[",
		[IMAP_SECTION_ITEM_BINARY_SIZE] = "BINARY.SIZE[",
		[IMAP_SECTION_ITEM_RFC822] = "RFC822",
		[IMAP_SECTION_ITEM_RFC822_HEADER] = "RFC822.HEADER",
		[IMAP_SECTION_ITEM_RFC822_TEXT] = "RFC822.TEXT",
	};
	static const char *const texts[] = {
		[IMAP_SECTION_FULL] = "",
		[IMAP_SECTION_HEADER] = "HEADER",
		[IMAP_SECTION_HEADER_FIELDS] = "HEADER.FIELDS",
		[IMAP_SECTION_HEADER_FIELDS_NOT] = "HEADER.FIELDS.NOT",
		[IMAP_SECTION_TEXT] = "TEXT",
		[IMAP_SECTION_MIME] = "MIME",
	};
	const char *part = sec->part != NULL ? sec->part : "";

	mp_buf_puts(out, items[sec->item]);
	if (sec->item >= IMAP_SECTION_ITEM_RFC822)
		return;
	mp_buf_puts(out, part);
	if (*part != '\0' && sec->text != IMAP_SECTION_FULL)
		mp_buf_append(out, ".", 1);
	mp_buf_puts(out, texts[sec->text]);
	if (sec->text == IMAP_SECTION_HEADER_FIELDS ||
	    sec->text == IMAP_SECTION_HEADER_FIELDS_NOT) {
		mp_buf_puts(out, " (");
		for (size_t i = 0; i < sec->fields.n; i++) {
			if (i > 0)
				mp_buf_append(out, " ", 1);
			write_field_name(out, sec->fields.v[i]);
		}
		mp_buf_append(out, ")", 1);
	}
	mp_buf_append(out, "]", 1);
	if (sec->partial)
		mp_buf_printf(out, "<%llu>",
			      (unsigned long long)sec->partial_offset);
}

/* --- resolving ---------------------------------------------------------- */

void
imap_section_clip(const struct imap_section *sec, uint64_t total,
		  uint64_t *offset_r, uint64_t *len_r)
{
	uint64_t left;

	if (!sec->partial) {
		*offset_r = 0;
		*len_r = total;
		return;
	}
	if (sec->partial_offset >= total) {
		*offset_r = total;
		*len_r = 0;
		return;
	}
	left = total - sec->partial_offset;
	*offset_r = sec->partial_offset;
	*len_r = sec->partial_size < left ? sec->partial_size : left;
}

static void
plan_range(struct imap_section_plan *plan, enum imap_section_source source,
	   uint64_t offset, uint64_t size, const struct mp_mime_part *part)
{
	plan->source = source;
	plan->offset = offset;
	plan->size = size;
	plan->part = part;
}

/* BINARY of part P's body (or of the whole message when P is NULL). A
 * multipart or a message part has no encoding of its own to undo (RFC 2045
 * section 6.4 allows none but identity), so it goes as stored. */
static void
plan_binary(struct imap_section_plan *plan, const struct mp_mime_message *msg,
	    const struct mp_mime_part *p)
{
	enum mp_mime_cte cte = MP_MIME_CTE_IDENTITY;

	if (p == NULL) {
		plan_range(plan, IMAP_SOURCE_BYTES, 0, msg->size, msg->root);
		plan->nul = (msg->flags & MP_MIME_HAS_NUL) != 0;
		return;
	}
	plan_range(plan, IMAP_SOURCE_BYTES, p->body_offset, p->body_size, p);
	if (p->flags & (MP_MIME_PART_MULTIPART | MP_MIME_PART_MESSAGE)) {
		plan->nul = (msg->flags & MP_MIME_HAS_NUL) != 0;
		return;
	}
	plan->nul = (p->flags & MP_MIME_PART_BODY_NUL) != 0;
	cte = mp_mime_cte_parse(p->encoding);
	if (cte == MP_MIME_CTE_UNKNOWN)
		plan->source = IMAP_SOURCE_UNKNOWN_CTE;
	else if (cte != MP_MIME_CTE_IDENTITY)
		plan->source = IMAP_SOURCE_DECODE;
	plan->cte = cte;
}

/* HEADER, HEADER.FIELDS[.NOT], TEXT of message m (the root, or the child of
 * a message/rfc822 part). */
static void
plan_message_text(struct imap_section_plan *plan, enum imap_section_text text,
		  const struct mp_mime_part *m)
{
	switch (text) {
	case IMAP_SECTION_TEXT:
		plan_range(plan, IMAP_SOURCE_BYTES, m->body_offset,
			   m->body_size, m);
		break;
	case IMAP_SECTION_HEADER_FIELDS:
	case IMAP_SECTION_HEADER_FIELDS_NOT:
		plan_range(plan, IMAP_SOURCE_HEADER_FIELDS, m->header_offset,
			   m->header_size, m);
		break;
	default:
		plan_range(plan, IMAP_SOURCE_BYTES, m->header_offset,
			   m->header_size, m);
		break;
	}
}

static void
plan_body(struct imap_section_plan *plan, const struct imap_section *sec,
	  const struct mp_mime_message *msg, const struct mp_mime_part *p)
{
	if (p == NULL && sec->text == IMAP_SECTION_FULL) {
		plan_range(plan, IMAP_SOURCE_BYTES, 0, msg->size, msg->root);
		return;
	}
	if (p == NULL) {
		plan_message_text(plan, sec->text, msg->root);
		return;
	}
	switch (sec->text) {
	case IMAP_SECTION_FULL:
		plan_range(plan, IMAP_SOURCE_BYTES, p->body_offset,
			   p->body_size, p);
		return;
	case IMAP_SECTION_MIME:
		plan_range(plan, IMAP_SOURCE_BYTES, p->header_offset,
			   p->header_size, p);
		return;
	default:
		/* RFC 3501 6.4.5: only when the part is MESSAGE/RFC822. */
		if ((p->flags & MP_MIME_PART_MESSAGE) && p->children != NULL)
			plan_message_text(plan, sec->text, p->children);
		return;
	}
}

void
imap_section_resolve(const struct imap_section *sec,
		     const struct mp_mime_message *msg,
		     struct imap_section_plan *plan_r)
{
	const struct mp_mime_part *p = NULL;
	const char *part = sec->part != NULL ? sec->part : "";
	uint64_t off, len;

	*plan_r = (struct imap_section_plan){.source = IMAP_SOURCE_NIL};
	if (msg->root == NULL)
		return;
	if (*part != '\0' && !mp_mime_part_find(msg->root, part, &p))
		return;
	if (sec->item == IMAP_SECTION_ITEM_BINARY ||
	    sec->item == IMAP_SECTION_ITEM_BINARY_SIZE)
		plan_binary(plan_r, msg, p);
	else
		plan_body(plan_r, sec, msg, p);
	if (plan_r->source != IMAP_SOURCE_BYTES)
		return;
	imap_section_clip(sec, plan_r->size, &off, &len);
	plan_r->offset += off;
	plan_r->size = len;
}

/* --- header fields ------------------------------------------------------ */

static bool
name_listed(const struct mp_strlist *names, const char *name, size_t len)
{
	for (size_t i = 0; i < names->n; i++) {
		if (strlen(names->v[i]) == len &&
		    strncasecmp(names->v[i], name, len) == 0)
			return true;
	}
	return false;
}

/* Whether the field starting with line (len bytes, line end excluded) is
 * to be kept. */
static bool
field_kept(const char *line, size_t len, const struct mp_strlist *names,
	   bool exclude)
{
	const char *colon = memchr(line, ':', len);
	size_t n;

	if (colon == NULL)
		return exclude;
	n = (size_t)(colon - line);
	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		n--; /* obs-optional: "Subject : x" (RFC 5322 4.5) */
	return name_listed(names, line, n) != exclude;
}

void
imap_header_filter(const char *hdr, size_t len, const struct mp_strlist *names,
		   bool exclude, struct mp_buf *out)
{
	bool keep = exclude; /* continuation lines before any field: no field */

	for (size_t pos = 0; pos < len;) {
		const char *line = hdr + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t line_len =
			nl != NULL ? (size_t)(nl - line) + 1 : len - pos;
		size_t text = line_len - (nl != NULL);

		if (text > 0 && line[text - 1] == '\r')
			text--;
		if (text == 0) { /* the blank line that ends the header */
			mp_buf_append(out, line, line_len);
			return;
		}
		if (line[0] != ' ' && line[0] != '\t')
			keep = field_kept(line, text, names, exclude);
		if (keep)
			mp_buf_append(out, line, line_len);
		pos += line_len;
	}
}

/* --- BINARY ------------------------------------------------------------- */

void
imap_binary_reader_init(struct imap_binary_reader *r,
			const struct imap_section_plan *plan, uint64_t skip,
			uint64_t limit)
{
	bool decode = plan->source == IMAP_SOURCE_DECODE;

	*r = (struct imap_binary_reader){0};
	mp_mime_body_decoder_init(&r->dec,
				  decode ? plan->cte : MP_MIME_CTE_IDENTITY);
	r->pos = plan->offset;
	r->end = plan->offset + plan->size;
	r->skip = skip;
	r->left = limit;
	r->finished = !decode && plan->source != IMAP_SOURCE_BYTES;
}

/* Moves what the partial wants from r->tmp to out. */
static void
give(struct imap_binary_reader *r, struct mp_buf *out)
{
	size_t drop = r->skip < r->tmp.len ? (size_t)r->skip : r->tmp.len;
	size_t n = r->tmp.len - drop;

	r->skip -= drop;
	if (n > r->left)
		n = (size_t)r->left;
	mp_buf_append(out, r->tmp.data + drop, n);
	r->left -= n;
	mp_buf_reset(&r->tmp);
}

enum mp_status
imap_binary_reader_read(struct imap_binary_reader *r,
			imap_section_read_fn *read_fn, void *ctx,
			struct mp_buf *out, const char **error_r)
{
	char buf[IMAP_BINARY_CHUNK];
	uint64_t want = r->end - r->pos;
	ssize_t n = 0;

	if (r->finished || r->left == 0) {
		r->finished = true;
		return MP_OK;
	}
	if (want > sizeof(buf))
		want = sizeof(buf);
	if (want > 0) {
		n = read_fn(ctx, r->pos, buf, (size_t)want, error_r);
		if (n < 0)
			return MP_ERROR;
		if (n == 0 || (uint64_t)n > want) {
			*error_r =
				"message file is shorter than its index says";
			return MP_ERROR;
		}
		r->pos += (uint64_t)n;
		mp_mime_body_decoder_feed(&r->dec, buf, (size_t)n, &r->tmp);
	}
	if (r->pos >= r->end) {
		mp_mime_body_decoder_finish(&r->dec, &r->tmp);
		r->finished = true;
	}
	give(r, out);
	if (r->left == 0)
		r->finished = true;
	return r->finished ? MP_OK : MP_AGAIN;
}

void
imap_binary_reader_deinit(struct imap_binary_reader *r)
{
	mp_buf_free(&r->tmp);
}

bool
imap_binary_size(const struct imap_section_plan *plan,
		 imap_section_read_fn *read_fn, void *ctx, uint64_t *size_r,
		 bool *nul_r, const char **error_r)
{
	struct imap_binary_reader r;
	struct mp_buf out = {0};
	enum mp_status st;
	bool nul = false;
	uint64_t size = 0;

	*error_r = NULL;
	if (plan->source != IMAP_SOURCE_DECODE) {
		/* No decoding: the index knows. NIL: BINARY.SIZE 0. */
		bool bytes = plan->source == IMAP_SOURCE_BYTES;

		if (plan->source == IMAP_SOURCE_UNKNOWN_CTE ||
		    plan->source == IMAP_SOURCE_HEADER_FIELDS) {
			*error_r = "no decoded size for this section";
			return false;
		}
		*size_r = bytes ? plan->size : 0;
		if (nul_r != NULL)
			*nul_r = bytes && plan->nul;
		return true;
	}
	imap_binary_reader_init(&r, plan, 0, UINT64_MAX);
	do {
		st = imap_binary_reader_read(&r, read_fn, ctx, &out, error_r);
		size += out.len;
		nul = nul || (out.len > 0 && memchr(out.data, 0, out.len));
		mp_buf_reset(&out);
	} while (st == MP_AGAIN);
	imap_binary_reader_deinit(&r);
	mp_buf_free(&out);
	if (st != MP_OK)
		return false;
	*size_r = size;
	if (nul_r != NULL)
		*nul_r = nul;
	return true;
}
