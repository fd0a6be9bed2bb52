/* aliases.c - the alias file and recipient resolution.
 *
 * The table is an array sorted by key, searched by bisection; it is built
 * once per change of the file and never modified, so a resolution needs no
 * lock and no copy. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moonpost/log.h>

#include "aliases.h"
#include "passwd.h"

/* An alias file is a few hundred lines; one of many megabytes is not an
 * alias file (a mailbox, a log) and is not read into memory. */
#define ALIASES_FILE_MAX (16 * 1024 * 1024)
/* A line of MP_ALIAS_TARGETS_MAX addresses of 64 bytes fits. */
#define ALIASES_LINE_MAX (64 * 1024)

struct alias {
	char *key; /* lower case: "local@domain", or "@domain" */
	struct mp_strlist targets;
	unsigned line;
};

struct mp_aliases {
	struct alias *v;
	size_t n;
};

/* ---- parsing --------------------------------------------------------- */

struct parser {
	const char *path;
	struct mp_aliases *a;
	unsigned line;
	char *error; /* "path:line: message" */
};

static void parse_fail(struct parser *ps, const char *fmt, ...) MP_PRINTF(2, 3);

static void
parse_fail(struct parser *ps, const char *fmt, ...)
{
	struct mp_buf msg = {0};
	va_list ap;

	va_start(ap, fmt);
	mp_buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	ps->error = mp_xasprintf("%s:%u: %s", ps->path, ps->line, msg.data);
	mp_buf_free(&msg);
}

static void
lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* s[0..len) without white space around it; caller frees. */
static char *
trimmed(const char *s, size_t len)
{
	while (len > 0 && is_space(*s)) {
		s++;
		len--;
	}
	while (len > 0 && is_space(s[len - 1]))
		len--;
	return mp_xstrndup(s, len);
}

/* Lower-cases a key in place; NULL when it is valid, else why not. */
static const char *
key_error(char *key)
{
	char *probe;
	bool ok;

	lower(key);
	if (key[0] != '@')
		return mp_address_is_valid(key) ? NULL : "invalid address";
	/* A catch-all: the domain must be one an address may have. */
	probe = mp_xasprintf("x%s", key);
	ok = mp_address_is_valid(probe);
	free(probe);
	return ok ? NULL : "invalid domain after '@'";
}

/* Adds one target to e; false (and ps->error) when it is refused. */
static bool
target_add(struct parser *ps, struct alias *e, char *t)
{
	char *at;

	if (t[0] == '|' || t[0] == '/' || strncmp(t, ":include:", 9) == 0) {
		parse_fail(ps,
			   "'%s': only addresses are supported (no pipes, "
			   "files or :include:)",
			   t);
		return false;
	}
	if (!mp_address_is_valid(t)) {
		parse_fail(ps, "invalid target address '%s'", t);
		return false;
	}
	if (e->targets.n >= MP_ALIAS_TARGETS_MAX) {
		parse_fail(ps, "%s: more than %d targets", e->key,
			   MP_ALIAS_TARGETS_MAX);
		return false;
	}
	at = strrchr(t, '@');
	lower(at);
	mp_strlist_add(&e->targets, t);
	return true;
}

/* Adds the comma-separated targets in s[0..len) to e. */
static bool
targets_parse(struct parser *ps, struct alias *e, const char *s, size_t len)
{
	const char *end = s + len;

	while (s < end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		const char *stop = comma != NULL ? comma : end;
		char *t = trimmed(s, (size_t)(stop - s));
		bool ok = t[0] == '\0' || target_add(ps, e, t);

		free(t);
		if (!ok)
			return false;
		s = stop + (comma != NULL);
	}
	return true;
}

static bool
entry_parse(struct parser *ps, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	struct alias *e;
	const char *why;
	char *key;

	if (colon == NULL) {
		parse_fail(ps, "expected 'address: target, ...'");
		return false;
	}
	key = trimmed(line, (size_t)(colon - line));
	if ((why = key_error(key)) != NULL) {
		parse_fail(ps, "%s '%s'", why, key);
		free(key);
		return false;
	}
	ps->a->v = mp_xrealloc(ps->a->v, (ps->a->n + 1) * sizeof(*ps->a->v));
	e = &ps->a->v[ps->a->n++];
	memset(e, 0, sizeof(*e));
	e->key = key;
	e->line = ps->line;
	return targets_parse(ps, e, colon + 1,
			     len - (size_t)(colon + 1 - line));
}

static bool
line_parse(struct parser *ps, const char *line, size_t len)
{
	size_t i = 0;

	if (len > ALIASES_LINE_MAX) {
		parse_fail(ps, "line longer than %d bytes", ALIASES_LINE_MAX);
		return false;
	}
	if (memchr(line, '\0', len) != NULL) {
		parse_fail(ps, "NUL byte in line");
		return false;
	}
	while (i < len && is_space(line[i]))
		i++;
	if (i == len || line[i] == '#')
		return true;
	if (i == 0)
		return entry_parse(ps, line, len);
	/* A continuation, as in aliases(5). */
	if (ps->a->n == 0) {
		parse_fail(ps, "continuation line without an entry above it");
		return false;
	}
	return targets_parse(ps, &ps->a->v[ps->a->n - 1], line, len);
}

static int
alias_cmp(const void *x, const void *y)
{
	const struct alias *a = x, *b = y;
	int r = strcmp(a->key, b->key);

	if (r != 0)
		return r;
	return a->line < b->line ? -1 : a->line > b->line;
}

/* Every entry has a target, no key is there twice; sorts the table. */
static bool
table_check(struct parser *ps)
{
	struct mp_aliases *a = ps->a;

	for (size_t i = 0; i < a->n; i++) {
		if (a->v[i].targets.n > 0)
			continue;
		ps->line = a->v[i].line;
		parse_fail(ps, "%s: no targets", a->v[i].key);
		return false;
	}
	if (a->n > 1)
		qsort(a->v, a->n, sizeof(*a->v), alias_cmp);
	for (size_t i = 1; i < a->n; i++) {
		if (strcmp(a->v[i - 1].key, a->v[i].key) != 0)
			continue;
		ps->line = a->v[i].line;
		parse_fail(ps, "%s is given twice (first on line %u)",
			   a->v[i].key, a->v[i - 1].line);
		return false;
	}
	return true;
}

struct mp_aliases *
mp_aliases_parse(const char *path, const char *text, size_t len, char **error_r)
{
	struct parser ps = {.path = path};
	const char *end = text + len;
	bool ok = true;

	ps.a = mp_xcalloc(1, sizeof(*ps.a));
	while (ok && text < end) {
		const char *nl = memchr(text, '\n', (size_t)(end - text));
		size_t n = (size_t)((nl != NULL ? nl : end) - text);

		ps.line++;
		ok = line_parse(&ps, text,
				n > 0 && text[n - 1] == '\r' ? n - 1 : n);
		text += n + (nl != NULL);
	}
	if (ok)
		ok = table_check(&ps);
	if (ok)
		return ps.a;
	mp_aliases_free(&ps.a);
	*error_r = ps.error;
	return NULL;
}

static bool
read_all(FILE *f, const char *path, struct mp_buf *buf, char **error_r)
{
	char chunk[8192];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf->len + n > ALIASES_FILE_MAX) {
			*error_r = mp_xasprintf("%s: larger than %d bytes",
						path, ALIASES_FILE_MAX);
			return false;
		}
		mp_buf_append(buf, chunk, n);
	}
	if (ferror(f)) {
		*error_r = mp_xasprintf("%s: %s", path, strerror(errno));
		return false;
	}
	return true;
}

bool
mp_aliases_read(const char *path, struct mp_aliases **aliases_r, char **error_r)
{
	FILE *f = fopen(path, "re");
	struct mp_buf buf = {0};
	bool ok;

	*aliases_r = NULL;
	if (f == NULL && errno == ENOENT) {
		*aliases_r = mp_xcalloc(1, sizeof(**aliases_r));
		return true;
	}
	if (f == NULL) {
		*error_r = mp_xasprintf("%s: %s", path, strerror(errno));
		return false;
	}
	ok = read_all(f, path, &buf, error_r);
	fclose(f);
	if (ok) {
		*aliases_r =
			mp_aliases_parse(path, buf.data != NULL ? buf.data : "",
					 buf.len, error_r);
		ok = *aliases_r != NULL;
	}
	mp_buf_free(&buf);
	return ok;
}

size_t
mp_aliases_count(const struct mp_aliases *aliases)
{
	return aliases->n;
}

void
mp_aliases_free(struct mp_aliases **ap)
{
	struct mp_aliases *a = *ap;

	if (a == NULL)
		return;
	for (size_t i = 0; i < a->n; i++) {
		free(a->v[i].key);
		mp_strlist_free(&a->v[i].targets);
	}
	free(a->v);
	free(a);
	*ap = NULL;
}

static const struct alias *
alias_find(const struct mp_aliases *a, const char *key)
{
	size_t lo = 0, hi = a != NULL ? a->n : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(key, a->v[mid].key);

		if (r == 0)
			return &a->v[mid];
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* ---- resolution ------------------------------------------------------ */

struct resolver {
	const struct mp_resolve_params *p;
	struct mp_recipient *r;
	const struct alias *path[MP_ALIAS_DEPTH_MAX]; /* being expanded */
	size_t depth;
	struct mp_strlist expanded; /* keys expanded already: each once */
};

enum step { STEP_OK, STEP_UNKNOWN, STEP_ERROR };

static enum step resolve_address(struct resolver *rs, const char *address,
				 const struct alias *parent);

static enum step
fail(struct resolver *rs, char *error)
{
	if (rs->r->error == NULL)
		rs->r->error = error;
	else
		free(error);
	return STEP_ERROR;
}

static enum step
add_target(struct resolver *rs, struct mp_strlist *list, const char *address)
{
	if (mp_strlist_contains(list, address))
		return STEP_OK;
	if (rs->r->local.n + rs->r->external.n >= MP_ALIAS_TARGETS_MAX)
		return fail(rs, mp_xasprintf("more than %d targets",
					     MP_ALIAS_TARGETS_MAX));
	mp_strlist_add(list, address);
	return STEP_OK;
}

/* "alias loop: a -> b -> a" for a loop back to e. */
static char *
loop_text(const struct resolver *rs, const struct alias *e)
{
	struct mp_buf buf = {0};

	mp_buf_puts(&buf, "alias loop: ");
	for (size_t i = 0; i < rs->depth; i++)
		mp_buf_printf(&buf, "%s -> ", rs->path[i]->key);
	mp_buf_puts(&buf, e->key);
	return mp_buf_steal(&buf);
}

static enum step
expand(struct resolver *rs, const struct alias *e)
{
	enum step st = STEP_OK;

	for (size_t i = 0; i < rs->depth; i++) {
		if (rs->path[i] == e)
			return fail(rs, loop_text(rs, e));
	}
	if (mp_strlist_contains(&rs->expanded, e->key))
		return STEP_OK; /* its targets are in the result already */
	if (rs->depth == MP_ALIAS_DEPTH_MAX)
		return fail(rs, mp_xasprintf("aliases nested deeper than %d "
					     "at %s",
					     MP_ALIAS_DEPTH_MAX, e->key));
	mp_strlist_add(&rs->expanded, e->key);
	rs->path[rs->depth++] = e;
	for (size_t i = 0; i < e->targets.n && st != STEP_ERROR; i++) {
		st = resolve_address(rs, e->targets.v[i], e);
		if (st == STEP_UNKNOWN)
			mp_log(MP_LOG_WARN,
			       "event=alias_target_unknown alias=%s target=%s "
			       "line=%u",
			       mp_q(e->key), mp_q(e->targets.v[i]), e->line);
	}
	rs->depth--;
	return st == STEP_ERROR ? STEP_ERROR : STEP_OK;
}

/* The alias of key unless it is parent, whose own address it is. */
static const struct alias *
alias_of(const struct resolver *rs, const char *key, const struct alias *parent)
{
	const struct alias *e = alias_find(rs->p->aliases, key);

	return e == parent ? NULL : e;
}

static bool
is_account(const struct resolver *rs, const char *address)
{
	return rs->p->is_account(rs->p->ctx, address);
}

/* alice+tag@d as alice@d (caller frees), with the detail in *detail_r
 * (borrowed from address); NULL when address has no detail. */
static char *
strip_detail(const struct resolver *rs, const char *address,
	     const char **detail_r)
{
	const char *d = rs->p->delimiter;
	const char *at = strrchr(address, '@');
	size_t n;

	if (d == NULL || d[0] == '\0')
		return NULL;
	n = strcspn(address, d);
	/* A delimiter first is no subaddress: there is nothing before it. */
	if (n == 0 || address + n >= at)
		return NULL;
	*detail_r = address + n + 1;
	return mp_xasprintf("%.*s%s", (int)n, address, at);
}

/* The subaddress rule: alias or account of the address without its detail.
 * STEP_UNKNOWN when neither exists. */
static enum step
resolve_base(struct resolver *rs, const char *address,
	     const struct alias *parent)
{
	const char *detail = NULL;
	char *base = strip_detail(rs, address, &detail);
	const struct alias *e;
	enum step st = STEP_UNKNOWN;

	if (base == NULL)
		return STEP_UNKNOWN;
	if ((e = alias_of(rs, base, parent)) != NULL)
		st = expand(rs, e);
	else if (is_account(rs, base))
		st = add_target(rs, &rs->r->local, base);
	if (st != STEP_UNKNOWN && rs->depth == 0 && rs->r->detail == NULL) {
		const char *at = strrchr(detail, '@');
		rs->r->detail = mp_xstrndup(detail, (size_t)(at - detail));
	}
	free(base);
	return st;
}

/* address: lower case, in a local domain. An alias that lists its own
 * address means the account of that name, never the catch-all. */
static enum step
resolve_local(struct resolver *rs, const char *address,
	      const struct alias *parent)
{
	bool self = parent != NULL && strcmp(parent->key, address) == 0;
	const struct alias *e = alias_of(rs, address, parent);
	enum step st;

	if (e != NULL)
		return expand(rs, e);
	if (is_account(rs, address))
		return add_target(rs, &rs->r->local, address);
	if ((st = resolve_base(rs, address, parent)) != STEP_UNKNOWN)
		return st;
	if (!self && (e = alias_of(rs, strrchr(address, '@'), parent)) != NULL)
		return expand(rs, e);
	return STEP_UNKNOWN;
}

static bool
is_local_domain(const struct resolver *rs, const char *domain)
{
	return rs->p->domains != NULL &&
	       mp_strlist_contains_icase(rs->p->domains, domain);
}

static enum step
resolve_address(struct resolver *rs, const char *address,
		const struct alias *parent)
{
	const char *at = strrchr(address, '@');
	char *lc;
	enum step st;

	if (at == NULL || at == address || at[1] == '\0')
		return STEP_UNKNOWN;
	if (!is_local_domain(rs, at + 1))
		return add_target(rs, &rs->r->external, address);
	lc = mp_xstrdup(address);
	lower(lc);
	st = resolve_local(rs, lc, parent);
	free(lc);
	return st;
}

void
mp_recipient_clear(struct mp_recipient *r)
{
	mp_strlist_free(&r->local);
	mp_strlist_free(&r->external);
	MP_FREE(r->detail);
	MP_FREE(r->error);
}

enum mp_recipient_status
mp_aliases_resolve(const struct mp_resolve_params *p, const char *address,
		   struct mp_recipient *r)
{
	struct resolver rs = {.p = p, .r = r};
	enum step st;

	mp_recipient_clear(r);
	st = resolve_address(&rs, address, NULL);
	mp_strlist_free(&rs.expanded);
	if (st == STEP_ERROR) {
		mp_strlist_free(&r->local);
		mp_strlist_free(&r->external);
		MP_FREE(r->detail);
		return MP_RECIPIENT_ERROR;
	}
	if (r->local.n + r->external.n == 0) {
		MP_FREE(r->detail);
		return MP_RECIPIENT_UNKNOWN;
	}
	return MP_RECIPIENT_OK;
}
