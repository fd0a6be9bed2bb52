/* mime-address.c - RFC 5322 address lists for the envelope. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mime-private.h"

/* --- address lists (RFC 5322 section 3.4, with the obsolete forms) ------- */

enum tok_kind { T_END, T_WORD, T_QUOTED, T_LITERAL, T_SPECIAL };

struct tok {
	enum tok_kind kind;
	char c; /* T_SPECIAL */
	struct mp_str raw;
	bool ws; /* white space or a comment came before it */
};

/* One address being read. */
struct addr_acc {
	struct mp_buf phrase; /* display name as shown */
	struct mp_buf local, domain, adl;
	struct mp_str comment;
	bool at, angle, any;
};

struct addr_list {
	struct mp_mime_address *v;
	uint32_t n;
};

static void
tok_next(struct mime_lex *lx, struct tok *t)
{
	const char *start;

	lx->ws = false;
	mime_lex_cfws(lx);
	t->ws = lx->ws;
	start = lx->p;
	if (lx->p >= lx->end) {
		t->kind = T_END;
		return;
	}
	t->c = *lx->p;
	if (t->c == '"') {
		t->kind = T_QUOTED;
		mime_lex_quoted(lx, NULL);
	} else if (t->c == '[') {
		const char *close =
			memchr(lx->p, ']', (size_t)(lx->end - lx->p));

		t->kind = T_LITERAL;
		lx->p = close != NULL ? close + 1 : lx->end;
	} else if (mime_in_set("<>@,:;)]\\", t->c)) {
		t->kind = T_SPECIAL;
		lx->p++;
	} else {
		t->kind = T_WORD;
		do
			lx->p++;
		while (lx->p < lx->end &&
		       !mime_in_set(" \t\r\n()<>@,:;\"[]\\", *lx->p));
	}
	t->raw = (struct mp_str){start, (size_t)(lx->p - start)};
}

/* Adds a word to the display name: quoted strings unquoted, one space
 * where the source had white space. */
static void
phrase_add(struct mp_buf *phrase, const struct tok *t)
{
	struct mime_lex lx;

	if (t->ws && phrase->len > 0)
		mp_buf_append(phrase, " ", 1);
	if (t->kind != T_QUOTED) {
		mp_buf_append(phrase, t->raw.p, t->raw.len);
		return;
	}
	mime_lex_init(&lx, t->raw.p, t->raw.len);
	mime_lex_quoted(&lx, phrase);
}

static void
str_or_nil(struct mime_hdr_ctx *ctx, const struct mp_buf *b, bool nil,
	   struct mp_str *out)
{
	if (!nil)
		mime_arena_str(ctx->arena, b->data != NULL ? b->data : "",
			       b->len, out);
}

static void
addr_emit(struct mime_hdr_ctx *ctx, struct addr_list *l,
	  enum mp_mime_addr_kind kind, const struct addr_acc *a,
	  const struct mp_str *name)
{
	struct mp_mime_address *ad;

	/* Room for 16, then doubled at 16, 32, 64... */
	if (l->n == 0)
		l->v = mp_xrealloc(l->v, 16 * sizeof(*l->v));
	else if (l->n >= 16 && (l->n & (l->n - 1)) == 0)
		l->v = mp_xrealloc(l->v, l->n * 2 * sizeof(*l->v));
	ad = &l->v[l->n++];
	*ad = (struct mp_mime_address){.kind = kind};
	if (name != NULL && name->len > 0)
		mime_arena_str(ctx->arena, name->p, name->len, &ad->name);
	if (kind == MP_MIME_ADDR_GROUP_END)
		return;
	if (kind == MP_MIME_ADDR_GROUP_START) {
		str_or_nil(ctx, &a->phrase, false, &ad->mailbox);
		return;
	}
	str_or_nil(ctx, &a->adl, a->adl.len == 0, &ad->adl);
	str_or_nil(ctx, a->at || a->angle ? &a->local : &a->phrase, false,
		   &ad->mailbox);
	str_or_nil(ctx, &a->domain, false, &ad->host);
}

static void
acc_reset(struct addr_acc *a)
{
	mp_buf_reset(&a->phrase);
	mp_buf_reset(&a->local);
	mp_buf_reset(&a->domain);
	mp_buf_reset(&a->adl);
	a->comment = (struct mp_str){NULL, 0};
	a->at = a->angle = a->any = false;
}

/* The address read so far is complete (at ',', ';' or the end). */
static void
acc_flush(struct mime_hdr_ctx *ctx, struct addr_list *l, struct addr_acc *a)
{
	struct mp_str name = mime_trim(a->phrase.data, a->phrase.len);

	if (a->angle)
		addr_emit(ctx, l, MP_MIME_ADDR_MAILBOX, a, &name);
	else if (a->at)
		addr_emit(ctx, l, MP_MIME_ADDR_MAILBOX, a, &a->comment);
	else if (a->phrase.len > 0)
		addr_emit(ctx, l, MP_MIME_ADDR_MAILBOX, a, NULL);
	acc_reset(a);
}

/* Reads "<[@route,@route:]local@domain>" after the '<'. Returns the token
 * that ended it: '>' or the end, or a ',' after the domain when the '>'
 * is missing, which then ends the address. */
static char
angle_read(struct mime_lex *lx, struct addr_acc *a)
{
	enum { LOCAL, ROUTE, DOMAIN } where = LOCAL;
	bool first = true;
	struct tok t;

	for (;; first = false) {
		tok_next(lx, &t);
		if (t.kind == T_END)
			return '\0';
		if (t.kind != T_SPECIAL) {
			mp_buf_append(where == ROUTE    ? &a->adl
				      : where == DOMAIN ? &a->domain
							: &a->local,
				      t.raw.p, t.raw.len);
		} else if (t.c == '>') {
			return '>';
		} else if (t.c == '@' && (first || where == ROUTE)) {
			where = ROUTE;
			mp_buf_append(&a->adl, "@", 1);
		} else if (t.c == ',' && where == ROUTE) {
			mp_buf_append(&a->adl, ",", 1);
		} else if (t.c == ':' && where == ROUTE) {
			where = LOCAL;
		} else if (t.c == '@' && where == LOCAL) {
			where = DOMAIN;
		} else if (t.c == ',' && where == DOMAIN && a->domain.len > 0) {
			return ',';
		}
	}
}

/* A word, '@' or '<' inside one address. */
static void
acc_token(struct mime_lex *lx, struct addr_acc *a, const struct tok *t)
{
	if (a->angle)
		return; /* junk after "<...>" */
	if (t->kind == T_SPECIAL && t->c == '<') {
		a->angle = true;
		mp_buf_reset(&a->local);
		mp_buf_reset(&a->domain);
		if (angle_read(lx, a) == ',')
			lx->p--;
		return;
	}
	if (t->kind == T_SPECIAL && t->c != '@')
		return; /* stray '>' ')' '\' */
	if (t->kind == T_SPECIAL) {
		a->at = true;
		mp_buf_append(&a->phrase, "@", 1);
		return;
	}
	phrase_add(&a->phrase, t);
	mp_buf_append(a->at ? &a->domain : &a->local, t->raw.p, t->raw.len);
	if (lx->comment.p != NULL)
		a->comment = lx->comment;
}

void
mime_address_list(struct mime_hdr_ctx *ctx, const char *value, size_t len,
		  struct mp_mime_addrlist *out)
{
	struct addr_acc a = {0};
	struct addr_list l = {0};
	struct mp_mime_address *v;
	bool group = false;
	struct mime_lex lx;
	struct tok t;

	mime_lex_init(&lx, value, len);
	for (;;) {
		lx.comment = (struct mp_str){NULL, 0};
		tok_next(&lx, &t);
		if (t.kind == T_SPECIAL && t.c == ':' && !group && !a.at &&
		    !a.angle) {
			addr_emit(ctx, &l, MP_MIME_ADDR_GROUP_START, &a, NULL);
			acc_reset(&a);
			group = true;
		} else if (t.kind == T_END ||
			   (t.kind == T_SPECIAL && mime_in_set(",;", t.c))) {
			/* "user@host (Real Name)": the comment names it. */
			if (lx.comment.p != NULL)
				a.comment = lx.comment;
			acc_flush(ctx, &l, &a);
			if (group && (t.kind == T_END || t.c == ';')) {
				addr_emit(ctx, &l, MP_MIME_ADDR_GROUP_END, &a,
					  NULL);
				group = false;
			}
			if (t.kind == T_END)
				break;
		} else if (!(t.kind == T_SPECIAL && t.c == ':')) {
			acc_token(&lx, &a, &t);
		}
	}
	v = l.n > 0 ? mime_arena_take(ctx->arena, l.n * sizeof(*v)) : NULL;
	if (v != NULL) {
		memcpy(v, l.v, l.n * sizeof(*v));
		out->v = v;
		out->n = l.n;
	}

	free(l.v);
	mp_buf_free(&a.phrase);
	mp_buf_free(&a.local);
	mp_buf_free(&a.domain);
	mp_buf_free(&a.adl);
}
