/* imap-search-parse.c - SEARCH arguments into a program (RFC 3501 6.4.4,
 * RFC 9051 6.4.4, RFC 4731, RFC 5032, RFC 5182, RFC 7162 3.1.5). */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap-search-private.h"

struct sp {
	const struct imap_search_context *ctx;
	const struct imap_arg *args;
	size_t count, pos;
	unsigned keys, keys_max;
	bool modseq;
	bool saved; /* "$" used */
	struct imap_search_error *err;
};

static bool
fail(struct sp *p, const char *code, const char *text)
{
	p->err->code = code;
	p->err->text = text;
	return false;
}

static const struct imap_arg *
next_arg(struct sp *p)
{
	return p->pos < p->count ? &p->args[p->pos++] : NULL;
}

static struct sk *
key_new(enum sk_type type, enum sk_cost cost)
{
	struct sk *k = mp_xcalloc(1, sizeof(*k));

	k->type = type;
	k->cost = cost;
	return k;
}

void
imap_search_key_free(struct sk *k)
{
	while (k != NULL) {
		struct sk *next = k->next;

		imap_search_key_free(k->child);
		if (k->type == SK_SEQSET || k->type == SK_UIDSET)
			imap_seqset_free(&k->u.set);
		if (k->type == SK_HEADER || k->type == SK_BODY ||
		    k->type == SK_TEXT || k->type == SK_KEYWORD) {
			free(k->u.str.field);
			free(k->u.str.needle);
		}
		free(k);
		k = next;
	}
}

/* --- argument kinds ----------------------------------------------------- */

/* An astring; literal8 is refused: search strings are text. */
static bool
get_string(struct sp *p, struct mp_str *r)
{
	const struct imap_arg *a = next_arg(p);

	if (!imap_arg_get_astring(a, r) || (a->flags & IMAP_ARG_BINARY))
		return fail(p, NULL, "Search key needs a string argument");
	return true;
}

static bool
get_number(struct sp *p, uint64_t *r)
{
	if (!imap_arg_get_number(next_arg(p), r))
		return fail(p, NULL, "Search key needs a number argument");
	return true;
}

/* date = date-text / DQUOTE date-text DQUOTE; date-text = date-day "-"
 * date-month "-" date-year, date-day 1 or 2 digits. */
static bool
get_date(struct sp *p, int32_t *day_r)
{
	struct mp_str s;
	size_t i = 0;
	int d = 0, m, y = 0, n;

	if (!get_string(p, &s))
		return fail(p, NULL, "Search key needs a date argument");
	for (n = 0; i < s.len && s.p[i] >= '0' && s.p[i] <= '9' && n < 2; n++)
		d = d * 10 + (s.p[i++] - '0');
	if (n == 0 || d < 1 || d > 31 || s.len != i + 9 || s.p[i] != '-' ||
	    s.p[i + 4] != '-')
		return fail(p, NULL, "Invalid search date");
	if ((m = imap_search_month(s.p + i + 1, 3)) == 0)
		return fail(p, NULL, "Invalid search date");
	for (i += 5; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return fail(p, NULL, "Invalid search date");
		y = y * 10 + (s.p[i] - '0');
	}
	*day_r = imap_search_days(y, m, d);
	return true;
}

static bool
get_set(struct sp *p, struct sk *k, enum imap_seqset_kind kind)
{
	const struct imap_search_context *ctx = p->ctx;
	const char *error;
	struct mp_str s;
	enum imap_seqset_status st;

	if (!imap_arg_get_atom(next_arg(p), &s))
		return fail(p, NULL, "Search key needs a sequence set");
	st = imap_seqset_parse(&k->u.set, s.p, s.len,
			       kind == IMAP_SEQSET_UID ? ctx->last_uid
						       : ctx->messages,
			       kind, ctx->max_ranges, &error);
	if (st != IMAP_SEQSET_OK)
		return fail(p, st == IMAP_SEQSET_LIMIT ? "LIMIT" : NULL, error);
	if (!k->u.set.saved)
		return true;
	/* "$": the saved UIDs, whichever kind of set it stands for; none
	 * saved matches nothing (Dovecot). */
	k->type = SK_UIDSET;
	p->saved = true;
	for (size_t i = 0; ctx->saved != NULL && i < ctx->saved->count; i++)
		imap_seqset_add(&k->u.set, ctx->saved->ranges[i].lo,
				ctx->saved->ranges[i].hi);
	imap_seqset_normalize(&k->u.set);
	return true;
}

static char *
fold_dup(struct mp_str s, size_t *len_r)
{
	struct mp_buf b = {0};

	imap_search_fold(s.p, s.len, true, &b);
	*len_r = b.len;
	if (b.data == NULL)
		return mp_xstrdup("");
	return mp_buf_steal(&b);
}

/* --- keys --------------------------------------------------------------- */

static struct sk *parse_key(struct sp *p, unsigned depth);
static struct sk *parse_list(struct sp *p, const struct imap_arg *args,
			     size_t count, unsigned depth);

struct flag_key {
	const char *name;
	uint32_t mask, want;
};

static const struct flag_key flag_keys[] = {
	{"ANSWERED", MS_FLAG_ANSWERED, MS_FLAG_ANSWERED},
	{"DELETED", MS_FLAG_DELETED, MS_FLAG_DELETED},
	{"DRAFT", MS_FLAG_DRAFT, MS_FLAG_DRAFT},
	{"FLAGGED", MS_FLAG_FLAGGED, MS_FLAG_FLAGGED},
	{"SEEN", MS_FLAG_SEEN, MS_FLAG_SEEN},
	{"UNANSWERED", MS_FLAG_ANSWERED, 0},
	{"UNDELETED", MS_FLAG_DELETED, 0},
	{"UNDRAFT", MS_FLAG_DRAFT, 0},
	{"UNFLAGGED", MS_FLAG_FLAGGED, 0},
	{"UNSEEN", MS_FLAG_SEEN, 0},
};

struct simple_key {
	const char *name;
	enum sk_type type;
	enum sk_cost cost;
};

/* Keys taking one argument whose kind the type tells. */
static const struct simple_key simple_keys[] = {
	{"BEFORE", SK_BEFORE, COST_META},
	{"ON", SK_ON, COST_META},
	{"SINCE", SK_SINCE, COST_META},
	{"SENTBEFORE", SK_SENTBEFORE, COST_MIME},
	{"SENTON", SK_SENTON, COST_MIME},
	{"SENTSINCE", SK_SENTSINCE, COST_MIME},
	{"LARGER", SK_LARGER, COST_META},
	{"SMALLER", SK_SMALLER, COST_META},
	{"OLDER", SK_OLDER, COST_META},
	{"YOUNGER", SK_YOUNGER, COST_META},
	{"BODY", SK_BODY, COST_BODY},
	{"TEXT", SK_TEXT, COST_BODY},
	{"KEYWORD", SK_KEYWORD, COST_META},
	{"UNKEYWORD", SK_KEYWORD, COST_META},
};

static const char *const header_keys[] = {"BCC", "CC", "FROM", "SUBJECT", "TO"};

static bool
parse_interval(struct sp *p, struct sk *k)
{
	uint64_t n;

	if (!get_number(p, &n))
		return false;
	if (n == 0)
		return fail(p, NULL, "Invalid search interval");
	/* OLDER: internal date <= now - n; YOUNGER: >= now - n. Both take
	 * the bound itself, as Dovecot does. */
	k->u.time = p->ctx->now - (int64_t)n;
	return true;
}

static bool
parse_keyword(struct sp *p, struct sk *k, const char *name)
{
	struct mp_str s;

	if (!imap_arg_get_atom(next_arg(p), &s))
		return fail(p, NULL, "KEYWORD needs a flag keyword");
	k->neg = name[0] == 'U';
	k->u.str.needle = mp_xstrndup(s.p, s.len);
	k->u.str.len = s.len;
	return true;
}

static bool
parse_simple_arg(struct sp *p, struct sk *k, const char *name)
{
	struct mp_str s;

	switch (k->type) {
	case SK_BEFORE:
	case SK_ON:
	case SK_SINCE:
	case SK_SENTBEFORE:
	case SK_SENTON:
	case SK_SENTSINCE:
		return get_date(p, &k->u.day);
	case SK_LARGER:
	case SK_SMALLER:
		return get_number(p, &k->u.num);
	case SK_OLDER:
	case SK_YOUNGER:
		return parse_interval(p, k);
	case SK_KEYWORD:
		return parse_keyword(p, k, name);
	default: /* BODY, TEXT */
		if (!get_string(p, &s))
			return false;
		k->u.str.needle = fold_dup(s, &k->u.str.len);
		return true;
	}
}

static bool
parse_header(struct sp *p, struct sk *k, const char *field)
{
	struct mp_str name, value;

	if (field == NULL) {
		if (!get_string(p, &name))
			return false;
		if (name.len == 0 || memchr(name.p, ':', name.len) != NULL ||
		    memchr(name.p, '\0', name.len) != NULL)
			return fail(p, NULL, "Invalid header field name");
	} else {
		name.p = field;
		name.len = strlen(field);
	}
	if (!get_string(p, &value))
		return false;
	k->u.str.field = mp_xstrndup(name.p, name.len);
	k->u.str.needle = fold_dup(value, &k->u.str.len);
	return true;
}

/* MODSEQ [entry-name entry-type-req] mod-sequence-valzer (RFC 7162
 * 3.1.5); the entry is checked and ignored, as Dovecot does. */
static bool
parse_modseq(struct sp *p, struct sk *k)
{
	const struct imap_arg *a = p->pos < p->count ? &p->args[p->pos] : NULL;

	if (a != NULL &&
	    (a->type == IMAP_ARG_QUOTED || a->type == IMAP_ARG_LITERAL)) {
		p->pos++;
		a = next_arg(p);
		if (!imap_arg_atom_equals(a, "priv") &&
		    !imap_arg_atom_equals(a, "shared") &&
		    !imap_arg_atom_equals(a, "all"))
			return fail(p, NULL, "Invalid MODSEQ entry type");
	}
	if (!imap_arg_get_number(next_arg(p), &k->u.num))
		return fail(p, NULL, "MODSEQ needs a mod-sequence");
	p->modseq = true;
	return true;
}

static struct sk *
parse_named(struct sp *p, const char *name)
{
	struct sk *k;
	size_t i;

	for (i = 0; i < MP_NELEMS(flag_keys); i++) {
		if (strcasecmp(name, flag_keys[i].name) == 0) {
			k = key_new(SK_FLAGS, COST_META);
			k->u.flags.mask = flag_keys[i].mask;
			k->u.flags.want = flag_keys[i].want;
			return k;
		}
	}
	for (i = 0; i < MP_NELEMS(simple_keys); i++) {
		if (strcasecmp(name, simple_keys[i].name) == 0) {
			k = key_new(simple_keys[i].type, simple_keys[i].cost);
			if (parse_simple_arg(p, k, simple_keys[i].name))
				return k;
			imap_search_key_free(k);
			return NULL;
		}
	}
	for (i = 0; i < MP_NELEMS(header_keys); i++) {
		if (strcasecmp(name, header_keys[i]) == 0)
			break;
	}
	if (i < MP_NELEMS(header_keys) || strcasecmp(name, "HEADER") == 0) {
		k = key_new(SK_HEADER, COST_HEADER);
		if (parse_header(p, k,
				 i < MP_NELEMS(header_keys) ? header_keys[i]
							    : NULL))
			return k;
		imap_search_key_free(k);
		return NULL;
	}
	return NULL;
}

/* Orders an AND's children cheapest first (stable), so a message is
 * refused on its index row before its file is opened. */
static struct sk *
sort_by_cost(struct sk *list, enum sk_cost *max_r)
{
	struct sk *out = NULL, **tail = &out;
	enum sk_cost c, max = COST_META;

	for (c = COST_META; c <= COST_BODY; c++) {
		struct sk **pp = &list;

		while (*pp != NULL) {
			struct sk *k = *pp;

			if (k->cost != c) {
				pp = &k->next;
				continue;
			}
			*pp = k->next;
			k->next = NULL;
			*tail = k;
			tail = &k->next;
			max = c;
		}
	}
	*max_r = max;
	return out;
}

static struct sk *
parse_or(struct sp *p, unsigned depth)
{
	struct sk *k = key_new(SK_OR, COST_META), *a, *b;

	if ((a = parse_key(p, depth + 1)) == NULL ||
	    (b = parse_key(p, depth + 1)) == NULL) {
		imap_search_key_free(a);
		imap_search_key_free(k);
		return NULL;
	}
	if (b->cost < a->cost) { /* OR commutes: cheaper side first */
		struct sk *t = a;
		a = b;
		b = t;
	}
	k->child = a;
	a->next = b;
	k->cost = b->cost;
	return k;
}

static struct sk *
parse_not(struct sp *p, unsigned depth)
{
	struct sk *k, *c = parse_key(p, depth + 1);

	if (c == NULL)
		return NULL;
	k = key_new(SK_NOT, c->cost);
	k->child = c;
	return k;
}

static struct sk *
parse_recent(const char *name)
{
	struct sk *k = key_new(SK_RECENT, COST_META), *and, *unseen;

	if (strcasecmp(name, "OLD") == 0) {
		k->neg = true;
		return k;
	}
	if (strcasecmp(name, "NEW") != 0)
		return k;
	/* NEW is RECENT UNSEEN */
	unseen = key_new(SK_FLAGS, COST_META);
	unseen->u.flags.mask = MS_FLAG_SEEN;
	and = key_new(SK_AND, COST_META);
	and->child = k;
	k->next = unseen;
	return and;
}

static struct sk *
parse_atom_key(struct sp *p, struct mp_str atom, unsigned depth)
{
	char name[16];
	struct sk *k;

	if ((atom.p[0] >= '0' && atom.p[0] <= '9') || atom.p[0] == '*' ||
	    atom.p[0] == '$') {
		p->pos--;
		k = key_new(SK_SEQSET, COST_META);
		if (get_set(p, k, IMAP_SEQSET_SEQ))
			return k;
		imap_search_key_free(k);
		return NULL;
	}
	if (atom.len >= sizeof(name)) {
		fail(p, NULL, "Unknown search key");
		return NULL;
	}
	memcpy(name, atom.p, atom.len);
	name[atom.len] = '\0';
	if (strcasecmp(name, "ALL") == 0)
		return key_new(SK_ALL, COST_META);
	if (strcasecmp(name, "RECENT") == 0 || strcasecmp(name, "NEW") == 0 ||
	    strcasecmp(name, "OLD") == 0)
		return parse_recent(name);
	if (strcasecmp(name, "NOT") == 0)
		return parse_not(p, depth);
	if (strcasecmp(name, "OR") == 0)
		return parse_or(p, depth);
	if (strcasecmp(name, "UID") == 0) {
		k = key_new(SK_UIDSET, COST_META);
		if (get_set(p, k, IMAP_SEQSET_UID))
			return k;
		imap_search_key_free(k);
		return NULL;
	}
	if (strcasecmp(name, "MODSEQ") == 0) {
		k = key_new(SK_MODSEQ, COST_META);
		if (parse_modseq(p, k))
			return k;
		imap_search_key_free(k);
		return NULL;
	}
	k = parse_named(p, name);
	if (k == NULL && p->err->text == NULL)
		fail(p, NULL, "Unknown search key");
	return k;
}

static struct sk *
parse_key(struct sp *p, unsigned depth)
{
	const struct imap_arg *a, *list;
	struct mp_str atom;
	size_t n;

	if (depth > IMAP_SEARCH_DEPTH_MAX) {
		fail(p, "LIMIT", "Search program nested too deep");
		return NULL;
	}
	if (++p->keys > p->keys_max) {
		fail(p, "LIMIT", "Too many search keys");
		return NULL;
	}
	a = next_arg(p);
	if (a == NULL) {
		fail(p, NULL, "Missing search key");
		return NULL;
	}
	if (imap_arg_get_list(a, &list, &n)) {
		if (n == 0) {
			fail(p, NULL, "Empty search key list");
			return NULL;
		}
		return parse_list(p, list, n, depth + 1);
	}
	if (a->type != IMAP_ARG_ATOM || !imap_arg_get_atom(a, &atom)) {
		fail(p, NULL, "Search key expected");
		return NULL;
	}
	return parse_atom_key(p, atom, depth);
}

/* Parses args[0 .. count) as keys ANDed together, then restores the
 * cursor: used for the top level and for "(...)". */
static struct sk *
parse_list(struct sp *p, const struct imap_arg *args, size_t count,
	   unsigned depth)
{
	const struct imap_arg *save_args = p->args;
	size_t save_count = p->count, save_pos = p->pos;
	struct sk *and = key_new(SK_AND, COST_META), **tail = &and->child;

	p->args = args;
	p->count = count;
	p->pos = 0;
	while (p->pos < p->count) {
		struct sk *k = parse_key(p, depth);

		if (k == NULL) {
			imap_search_key_free(and);
			and = NULL;
			break;
		}
		*tail = k;
		tail = &k->next;
	}
	p->args = save_args;
	p->count = save_count;
	p->pos = save_pos;
	if (and != NULL)
		and->child = sort_by_cost(and->child, &and->cost);
	return and;
}

/* --- RETURN and CHARSET ------------------------------------------------- */

static bool
parse_return(struct sp *p, const struct imap_arg *arg, unsigned *ret_r)
{
	static const struct {
		const char *name;
		unsigned bit;
	} opts[] = {
		{"MIN", IMAP_SEARCH_RETURN_MIN},
		{"MAX", IMAP_SEARCH_RETURN_MAX},
		{"ALL", IMAP_SEARCH_RETURN_ALL},
		{"COUNT", IMAP_SEARCH_RETURN_COUNT},
		{"SAVE", IMAP_SEARCH_RETURN_SAVE},
	};
	const struct imap_arg *list;
	size_t n, i, j;

	if (!imap_arg_get_list(arg, &list, &n))
		return fail(p, NULL, "RETURN needs a list of options");
	*ret_r = 0;
	for (i = 0; i < n; i++) {
		for (j = 0; j < MP_NELEMS(opts); j++) {
			if (imap_arg_atom_equals(&list[i], opts[j].name))
				break;
		}
		if (j == MP_NELEMS(opts))
			return fail(p, NULL, "Unknown RETURN option");
		*ret_r |= opts[j].bit;
	}
	if (*ret_r == 0) /* RFC 4731 3.1: "RETURN ()" is "RETURN (ALL)" */
		*ret_r = IMAP_SEARCH_RETURN_ALL;
	return true;
}

static bool
parse_charset(struct sp *p)
{
	struct mp_str cs;

	if (!get_string(p, &cs))
		return fail(p, NULL, "CHARSET needs a charset name");
	if (cs.len == 5 && strncasecmp(cs.p, "UTF-8", 5) == 0)
		return true;
	if (p->ctx->flags & IMAP_SEARCH_UTF8_ACCEPT)
		return fail(p, NULL, "CHARSET conflicts with UTF8=ACCEPT");
	if (cs.len == 8 && strncasecmp(cs.p, "US-ASCII", 8) == 0)
		return true;
	return fail(p, "BADCHARSET (UTF-8 US-ASCII)", "Unsupported charset");
}

static bool
parse_prefix(struct sp *p, struct imap_search_program *prog)
{
	if (imap_arg_atom_equals(&p->args[0], "RETURN")) {
		p->pos++;
		if (!parse_return(p, next_arg(p), &prog->ret))
			return false;
		prog->esearch = true;
	} else if (p->ctx->flags & IMAP_SEARCH_REV2) {
		prog->ret = IMAP_SEARCH_RETURN_ALL;
		prog->esearch = true;
	}
	if (p->pos < p->count &&
	    imap_arg_atom_equals(&p->args[p->pos], "CHARSET")) {
		p->pos++;
		if (!parse_charset(p))
			return false;
	}
	if (p->pos == p->count)
		return fail(p, NULL, "Missing search keys");
	return true;
}

/* Parses the keys from p->pos on, after the prefix, into prog: the
 * status to return, with *prog_r set on OK and prog freed otherwise. */
static enum imap_search_status
parse_keys(struct sp *p, struct imap_search_program *prog,
	   struct imap_search_program **prog_r)
{
	if (p->err->text == NULL)
		prog->root =
			parse_list(p, p->args + p->pos, p->count - p->pos, 0);
	if (prog->root == NULL) {
		imap_search_program_free(&prog);
		return p->err->code != NULL && strncmp(p->err->code,
						       "BADCHARSET", 10) == 0
			       ? IMAP_SEARCH_NO
			       : IMAP_SEARCH_BAD;
	}
	prog->modseq = p->modseq;
	prog->uses_saved = p->saved;
	*prog_r = prog;
	return IMAP_SEARCH_OK;
}

static void
sp_init(struct sp *p, const struct imap_arg *args, size_t count,
	const struct imap_search_context *ctx,
	struct imap_search_program **prog_r, struct imap_search_error *error_r)
{
	*p = (struct sp){
		.ctx = ctx,
		.args = args,
		.count = count,
		.keys_max =
			ctx->keys_max ? ctx->keys_max : IMAP_SEARCH_KEYS_MAX,
		.err = error_r,
	};
	memset(error_r, 0, sizeof(*error_r));
	*prog_r = NULL;
}

enum imap_search_status
imap_search_parse(const struct imap_arg *args, size_t count,
		  const struct imap_search_context *ctx,
		  struct imap_search_program **prog_r,
		  struct imap_search_error *error_r)
{
	struct imap_search_program *prog = mp_xcalloc(1, sizeof(*prog));
	struct sp p;

	sp_init(&p, args, count, ctx, prog_r, error_r);
	if (count == 0)
		fail(&p, NULL, "Missing search keys");
	else
		(void)parse_prefix(&p, prog);
	return parse_keys(&p, prog, prog_r);
}

enum imap_search_status
imap_search_parse_criteria(const struct imap_arg *args, size_t count,
			   const struct imap_arg *ret_list,
			   const struct imap_search_context *ctx,
			   struct imap_search_program **prog_r,
			   struct imap_search_error *error_r)
{
	struct imap_search_program *prog = mp_xcalloc(1, sizeof(*prog));
	struct sp p;

	sp_init(&p, args, count, ctx, prog_r, error_r);
	if (ret_list != NULL) {
		prog->esearch = true;
		(void)parse_return(&p, ret_list, &prog->ret);
	}
	if (p.err->text == NULL && count == 0)
		fail(&p, NULL, "Missing charset");
	else if (p.err->text == NULL && parse_charset(&p) && p.pos == p.count)
		fail(&p, NULL, "Missing search keys");
	return parse_keys(&p, prog, prog_r);
}

void
imap_search_program_free(struct imap_search_program **progp)
{
	struct imap_search_program *prog = *progp;

	if (prog == NULL)
		return;
	imap_search_key_free(prog->root);
	mp_buf_free(&prog->raw);
	mp_buf_free(&prog->text);
	mp_buf_free(&prog->sub);
	free(prog->fields);
	mp_buf_free(&prog->chunk);
	mp_buf_free(&prog->dec);
	mp_buf_free(&prog->utf);
	mp_buf_free(&prog->win);
	MP_FREE(*progp);
}

unsigned
imap_search_return_options(const struct imap_search_program *prog)
{
	return prog->ret;
}

bool
imap_search_esearch(const struct imap_search_program *prog)
{
	return prog->esearch;
}

bool
imap_search_save(const struct imap_search_program *prog)
{
	return (prog->ret & IMAP_SEARCH_RETURN_SAVE) != 0;
}

bool
imap_search_uses_modseq(const struct imap_search_program *prog)
{
	return prog->modseq;
}

bool
imap_search_uses_saved(const struct imap_search_program *prog)
{
	return prog->uses_saved;
}

bool
imap_search_needs_content(const struct imap_search_program *prog)
{
	return prog->root->cost > COST_META;
}
