/* imap-search-match.c - one message against a search program. */
#include "config.h"

#include <errno.h>
#include <iconv.h>
#include <string.h>
#include <strings.h>

#include "imap-search-private.h"

/* What one imap_search_match() call has learnt about its message. */
struct mstate {
	struct imap_search_program *prog;
	const struct imap_search_msg *msg;
	const struct mp_mime_message *mime;
	bool mime_tried;
	bool header_loaded;
	bool sent_known;
	int32_t sent_day;
	const char *error;
};

static enum imap_search_match eval(struct mstate *st, const struct sk *k);

/* --- content access ----------------------------------------------------- */

static const struct mp_mime_message *
get_mime(struct mstate *st)
{
	const char *error = "Cannot read the message structure";

	if (!st->mime_tried) {
		st->mime_tried = true;
		st->mime = st->msg->mime(st->msg->ctx, &error);
		if (st->mime == NULL || st->mime->root == NULL) {
			st->mime = NULL;
			st->error = error;
		}
	}
	return st->mime;
}

/* Reads [off, off + len) into buf; false on a read error. A file shorter
 * than the structure says gives what is there (*got_r). */
static bool
read_bytes(struct mstate *st, uint64_t off, char *buf, size_t len,
	   size_t *got_r)
{
	const char *error = "Cannot read the message";
	size_t got = 0;

	while (got < len) {
		ssize_t n = st->msg->read(st->msg->ctx, off + got, buf + got,
					  len - got, &error);

		if (n < 0) {
			st->error = error;
			return false;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	*got_r = got;
	return true;
}

/* Appends "name: value\n" to out, both folded, the value RFC 2047
 * decoded; records the field in prog->fields when asked. */
static void
add_field(struct imap_search_program *prog, struct mp_str name,
	  struct mp_str value, struct mp_buf *out, bool record)
{
	struct search_field f;

	f.name_off = out->len;
	imap_search_fold(name.p, name.len, true, out);
	f.name_len = out->len - f.name_off;
	mp_buf_append(out, ": ", 2);
	mp_buf_reset(&prog->utf);
	mp_mime_decode_header(value.p, value.len, &prog->utf);
	f.value_off = out->len;
	imap_search_fold(prog->utf.data, prog->utf.len, true, out);
	f.value_len = out->len - f.value_off;
	mp_buf_append(out, "\n", 1);
	if (!record)
		return;
	if (prog->nfields == prog->fields_cap) {
		prog->fields_cap = prog->fields_cap ? prog->fields_cap * 2 : 32;
		prog->fields =
			mp_xrealloc(prog->fields, prog->fields_cap * sizeof(f));
	}
	prog->fields[prog->nfields++] = f;
}

/* Reads the header of part (at most IMAP_SEARCH_HEADER_MAX bytes) and
 * decodes its fields into out (emptied first). */
static bool
decode_header(struct mstate *st, const struct mp_mime_part *part,
	      struct mp_buf *out, bool record)
{
	struct imap_search_program *prog = st->prog;
	struct mp_mime_header_iter it;
	struct mp_str name, value;
	uint64_t size = part->header_size;
	size_t got;

	if (size > IMAP_SEARCH_HEADER_MAX)
		size = IMAP_SEARCH_HEADER_MAX;
	mp_buf_reset(out);
	if (prog->raw.cap < size + 1) {
		prog->raw.data = mp_xrealloc(prog->raw.data, size + 1);
		prog->raw.cap = size + 1;
	}
	if (!read_bytes(st, part->header_offset, prog->raw.data, (size_t)size,
			&got))
		return false;
	prog->raw.len = got;
	prog->raw.data[got] = '\0';
	mp_mime_header_iter_init(&it, prog->raw.data, prog->raw.len);
	while (mp_mime_header_iter_next(&it, &name, &value))
		add_field(prog, name, value, out, record);
	mp_mime_header_iter_deinit(&it);
	return true;
}

/* The top-level header, decoded once per message into prog->text. */
static bool
load_header(struct mstate *st)
{
	const struct mp_mime_message *mime;

	if (st->header_loaded)
		return true;
	if ((mime = get_mime(st)) == NULL)
		return false;
	st->prog->nfields = 0;
	if (!decode_header(st, mime->root, &st->prog->text, true))
		return false;
	st->header_loaded = true;
	return true;
}

/* --- bodies ------------------------------------------------------------- */

/* Names iconv does not know, or knows by a narrower charset than mail
 * uses under that label (as mime-decode.c). NULL: already UTF-8. */
static const char *
charset_name(const char *cs)
{
	static const char *const aliases[][2] = {
		{"us-ascii", NULL},
		{"ascii", NULL},
		{"utf-8", NULL},
		{"utf8", NULL},
		{"iso-8859-1", "WINDOWS-1252"},
		{"latin1", "WINDOWS-1252"},
		{"ks_c_5601-1987", "CP949"},
		{"gb2312", "GB18030"},
		{"gbk", "GB18030"},
		{"x-gbk", "GB18030"},
		{"iso-8859-8-i", "ISO-8859-8"},
		{"x-sjis", "SHIFT_JIS"},
	};

	for (size_t i = 0; i < MP_NELEMS(aliases); i++) {
		if (strcasecmp(cs, aliases[i][0]) == 0)
			return aliases[i][1];
	}
	return cs;
}

/* The converter of a part to UTF-8, or (iconv_t)-1 when its bytes are
 * searched as they are: UTF-8, ASCII, no charset, or one iconv does not
 * know. */
static iconv_t
part_iconv(const struct mp_mime_part *part)
{
	const char *name = NULL;

	for (uint32_t i = 0; i < part->n_params; i++) {
		if (part->params[i].name.p != NULL &&
		    strcmp(part->params[i].name.p, "charset") == 0 &&
		    part->params[i].value.p != NULL)
			name = charset_name(part->params[i].value.p);
	}
	if (name == NULL || *name == '\0')
		return (iconv_t)-1;
	return iconv_open("UTF-8", name);
}

/* Converts what in holds, leaving an incomplete sequence at its end for
 * the next call unless final; invalid bytes become U+FFFD. */
static void
convert(iconv_t cd, struct mp_buf *in, struct mp_buf *out, bool final)
{
	char *ip = in->data, obuf[4096], *op;
	size_t il = in->len, ol;

	while (il > 0) {
		op = obuf;
		ol = sizeof(obuf);
		if (iconv(cd, &ip, &il, &op, &ol) != (size_t)-1 ||
		    errno == E2BIG) {
			mp_buf_append(out, obuf, (size_t)(op - obuf));
			continue;
		}
		mp_buf_append(out, obuf, (size_t)(op - obuf));
		if (errno == EINVAL && !final)
			break;
		mp_buf_append(out, "\xef\xbf\xbd", 3);
		ip++;
		il--;
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	if (final) {
		op = obuf;
		ol = sizeof(obuf);
		iconv(cd, NULL, NULL, &op, &ol);
		mp_buf_append(out, obuf, (size_t)(op - obuf));
	}
	mp_buf_consume(in, in->len - il);
}

/* Moves decoded bytes through conversion and folding into the window and
 * looks for the needle there; keeps the window's last len - 1 bytes so a
 * match across two chunks is found. */
static bool
pump(struct imap_search_program *prog, iconv_t cd, const struct sk *k,
     bool final)
{
	struct mp_buf *src = &prog->dec;
	size_t keep = k->u.str.len - 1, used;
	bool found;

	if (cd != (iconv_t)-1) {
		convert(cd, &prog->dec, &prog->utf, final);
		src = &prog->utf;
	}
	used = imap_search_fold(src->data, src->len, final, &prog->win);
	mp_buf_consume(src, used);
	found = prog->win.len >= k->u.str.len &&
		memmem(prog->win.data, prog->win.len, k->u.str.needle,
		       k->u.str.len) != NULL;
	if (prog->win.len > keep)
		mp_buf_consume(&prog->win, prog->win.len - keep);
	return found;
}

static enum imap_search_match
part_search(struct mstate *st, const struct mp_mime_part *part,
	    const struct sk *k)
{
	struct imap_search_program *prog = st->prog;
	uint64_t pos = part->body_offset, end = pos + part->body_size;
	struct mp_mime_body_decoder dec;
	enum mp_mime_cte cte = mp_mime_cte_parse(part->encoding);
	iconv_t cd = part_iconv(part);
	enum imap_search_match r = IMAP_SEARCH_NOMATCH;
	size_t got;

	mp_mime_body_decoder_init(
		&dec, cte == MP_MIME_CTE_UNKNOWN ? MP_MIME_CTE_IDENTITY : cte);
	mp_buf_reset(&prog->dec);
	mp_buf_reset(&prog->utf);
	mp_buf_reset(&prog->win);
	if (prog->chunk.cap < IMAP_SEARCH_CHUNK) {
		prog->chunk.data =
			mp_xrealloc(prog->chunk.data, IMAP_SEARCH_CHUNK);
		prog->chunk.cap = IMAP_SEARCH_CHUNK;
	}
	while (pos < end && r == IMAP_SEARCH_NOMATCH) {
		size_t n = end - pos < IMAP_SEARCH_CHUNK ? (size_t)(end - pos)
							 : IMAP_SEARCH_CHUNK;

		if (!read_bytes(st, pos, prog->chunk.data, n, &got))
			r = IMAP_SEARCH_ERROR;
		else if (got == 0)
			break;
		else {
			pos += got;
			mp_mime_body_decoder_feed(&dec, prog->chunk.data, got,
						  &prog->dec);
			if (pump(prog, cd, k, false))
				r = IMAP_SEARCH_MATCH;
		}
	}
	if (r == IMAP_SEARCH_NOMATCH) {
		mp_mime_body_decoder_finish(&dec, &prog->dec);
		if (pump(prog, cd, k, true))
			r = IMAP_SEARCH_MATCH;
	}
	if (cd != (iconv_t)-1)
		iconv_close(cd);
	return r;
}

static bool
is_text_leaf(const struct mp_mime_part *part)
{
	return (part->flags &
		(MP_MIME_PART_MULTIPART | MP_MIME_PART_MESSAGE)) == 0 &&
	       part->type.p != NULL && strcmp(part->type.p, "text") == 0;
}

static bool
found_in(const struct mp_buf *b, const struct sk *k)
{
	return b->len > 0 &&
	       memmem(b->data, b->len, k->u.str.needle, k->u.str.len) != NULL;
}

/* TEXT: the header of a message inside the message (the child of a
 * message/rfc822 part). */
static enum imap_search_match
inner_header_search(struct mstate *st, const struct mp_mime_part *part,
		    const struct sk *k)
{
	if (part->parent == NULL ||
	    (part->parent->flags & MP_MIME_PART_MESSAGE) == 0)
		return IMAP_SEARCH_NOMATCH;
	if (!decode_header(st, part, &st->prog->sub, false))
		return IMAP_SEARCH_ERROR;
	return found_in(&st->prog->sub, k) ? IMAP_SEARCH_MATCH
					   : IMAP_SEARCH_NOMATCH;
}

static enum imap_search_match
eval_body(struct mstate *st, const struct sk *k)
{
	const struct mp_mime_message *mime;
	const struct mp_mime_part *part;
	enum imap_search_match r;

	if (k->u.str.len == 0) /* "" is in every text */
		return IMAP_SEARCH_MATCH;
	if (k->type == SK_TEXT) {
		if (!load_header(st))
			return IMAP_SEARCH_ERROR;
		if (found_in(&st->prog->text, k))
			return IMAP_SEARCH_MATCH;
	}
	if ((mime = get_mime(st)) == NULL)
		return IMAP_SEARCH_ERROR;
	for (part = mime->root; part != NULL; part = mp_mime_part_next(part)) {
		r = IMAP_SEARCH_NOMATCH;
		if (k->type == SK_TEXT)
			r = inner_header_search(st, part, k);
		if (r == IMAP_SEARCH_NOMATCH && is_text_leaf(part))
			r = part_search(st, part, k);
		if (r != IMAP_SEARCH_NOMATCH)
			return r;
	}
	return IMAP_SEARCH_NOMATCH;
}

/* --- headers and dates -------------------------------------------------- */

static enum imap_search_match
eval_header(struct mstate *st, const struct sk *k)
{
	const struct imap_search_program *prog = st->prog;
	size_t flen = strlen(k->u.str.field);

	if (!load_header(st))
		return IMAP_SEARCH_ERROR;
	for (size_t i = 0; i < prog->nfields; i++) {
		const struct search_field *f = &prog->fields[i];

		if (f->name_len != flen ||
		    strncasecmp(prog->text.data + f->name_off, k->u.str.field,
				flen) != 0)
			continue;
		if (k->u.str.len == 0 ||
		    memmem(prog->text.data + f->value_off, f->value_len,
			   k->u.str.needle, k->u.str.len) != NULL)
			return IMAP_SEARCH_MATCH;
	}
	return IMAP_SEARCH_NOMATCH;
}

static int32_t
internal_day(const struct ms_msg *meta)
{
	int64_t t = meta->internal_date + (int64_t)meta->tz_minutes * 60;
	int64_t d = t / 86400;

	if (t % 86400 < 0)
		d--;
	return (int32_t)d;
}

/* The day of the Date: header, or of the internal date without one. */
static bool
sent_day(struct mstate *st, int32_t *day_r)
{
	const struct mp_mime_message *mime;
	const struct mp_mime_envelope *env;
	int64_t t;

	if (!st->sent_known) {
		if ((mime = get_mime(st)) == NULL)
			return false;
		env = mime->root->envelope;
		if (env == NULL || env->date.p == NULL ||
		    !imap_search_parse_rfc5322_date(env->date.p, env->date.len,
						    &st->sent_day, &t))
			st->sent_day = internal_day(st->msg->meta);
		st->sent_known = true;
	}
	*day_r = st->sent_day;
	return true;
}

static bool
has_keyword(const char *list, const char *kw, size_t len)
{
	const char *p = list;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, ' ');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

		if (n == len && strncasecmp(p, kw, len) == 0)
			return true;
		p = end != NULL ? end + 1 : NULL;
	}
	return false;
}

static enum imap_search_match
to_match(bool b)
{
	return b ? IMAP_SEARCH_MATCH : IMAP_SEARCH_NOMATCH;
}

static enum imap_search_match
eval_date(struct mstate *st, const struct sk *k)
{
	int32_t day;

	if (k->type == SK_SENTBEFORE || k->type == SK_SENTON ||
	    k->type == SK_SENTSINCE) {
		if (!sent_day(st, &day))
			return IMAP_SEARCH_ERROR;
	} else {
		day = internal_day(st->msg->meta);
	}
	switch (k->type) {
	case SK_BEFORE:
	case SK_SENTBEFORE:
		return to_match(day < k->u.day);
	case SK_ON:
	case SK_SENTON:
		return to_match(day == k->u.day);
	default:
		return to_match(day >= k->u.day);
	}
}

/* --- the tree ----------------------------------------------------------- */

/* Three-valued: a false child decides an AND (a true one an OR) even
 * when another could not be read. */
static enum imap_search_match
eval_children(struct mstate *st, const struct sk *k, bool any)
{
	enum imap_search_match r,
		decided = any ? IMAP_SEARCH_MATCH : IMAP_SEARCH_NOMATCH;
	enum imap_search_match result =
		any ? IMAP_SEARCH_NOMATCH : IMAP_SEARCH_MATCH;

	for (const struct sk *c = k->child; c != NULL; c = c->next) {
		r = eval(st, c);
		if (r == decided)
			return r;
		if (r == IMAP_SEARCH_ERROR)
			result = r;
	}
	return result;
}

static enum imap_search_match
eval_meta(struct mstate *st, const struct sk *k)
{
	const struct ms_msg *m = st->msg->meta;

	switch (k->type) {
	case SK_SEQSET:
		return to_match(imap_seqset_contains(&k->u.set, st->msg->seq));
	case SK_UIDSET:
		return to_match(imap_seqset_contains(&k->u.set, m->uid));
	case SK_FLAGS:
		return to_match((m->flags & k->u.flags.mask) ==
				k->u.flags.want);
	case SK_KEYWORD:
		return to_match(has_keyword(m->keywords, k->u.str.needle,
					    k->u.str.len) != k->neg);
	case SK_RECENT:
		return to_match(st->msg->recent != k->neg);
	case SK_LARGER:
		return to_match(m->size > k->u.num);
	case SK_SMALLER:
		return to_match(m->size < k->u.num);
	case SK_OLDER:
		return to_match(m->internal_date <= k->u.time);
	case SK_YOUNGER:
		return to_match(m->internal_date >= k->u.time);
	case SK_MODSEQ:
		return to_match(m->modseq >= k->u.num);
	default:
		return IMAP_SEARCH_MATCH; /* SK_ALL */
	}
}

static enum imap_search_match
eval(struct mstate *st, const struct sk *k)
{
	enum imap_search_match r;

	switch (k->type) {
	case SK_AND:
		return eval_children(st, k, false);
	case SK_OR:
		return eval_children(st, k, true);
	case SK_NOT:
		r = eval(st, k->child);
		return r == IMAP_SEARCH_ERROR
			       ? r
			       : to_match(r != IMAP_SEARCH_MATCH);
	case SK_BEFORE:
	case SK_ON:
	case SK_SINCE:
	case SK_SENTBEFORE:
	case SK_SENTON:
	case SK_SENTSINCE:
		return eval_date(st, k);
	case SK_HEADER:
		return eval_header(st, k);
	case SK_BODY:
	case SK_TEXT:
		return eval_body(st, k);
	default:
		return eval_meta(st, k);
	}
}

enum imap_search_match
imap_search_match(struct imap_search_program *prog,
		  const struct imap_search_msg *msg, const char **error_r)
{
	struct mstate st = {.prog = prog, .msg = msg};
	enum imap_search_match r = eval(&st, prog->root);

	if (r == IMAP_SEARCH_ERROR)
		*error_r = st.error != NULL ? st.error : "Cannot read message";
	return r;
}
