/* config-schema.c - checks a value tree against a schema and fills the
 * C struct it describes.
 *
 * Converters return NULL when the value fits, else a message without the
 * key's name ("expected a size like 10M, got true"), which
 * mp_cfg_field_set() puts behind the label. The struct is valid at every
 * step, holding defaults or converted values, so a failure half-way is
 * cleaned up by freeing it as usual. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-private.h"

#define K          ((uint64_t)1024)
#define MS_PER_DAY (86400 * (uint64_t)1000)

/* Longest part of a string value quoted in an error. */
#define DESCRIBE_MAX 40
/* Names longer than this are not worth suggesting for. */
#define SUGGEST_LEN_MAX 64

char *
mp_cfg_error_at(const char *file, int line, const char *fmt, ...)
{
	struct mp_buf buf = {0};
	va_list ap;

	if (line > 0)
		mp_buf_printf(&buf, "%s:%d: ", file, line);
	else
		mp_buf_printf(&buf, "%s: ", file);
	va_start(ap, fmt);
	mp_buf_vprintf(&buf, fmt, ap);
	va_end(ap);
	return mp_buf_steal(&buf);
}

static char *why(const char *fmt, ...) MP_PRINTF(1, 2);

static char *
why(const char *fmt, ...)
{
	struct mp_buf buf = {0};
	va_list ap;

	va_start(ap, fmt);
	mp_buf_vprintf(&buf, fmt, ap);
	va_end(ap);
	return mp_buf_steal(&buf);
}

/* ---- suggestions ---- */

static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[SUGGEST_LEN_MAX + 1];

	if (la > SUGGEST_LEN_MAX || lb > SUGGEST_LEN_MAX)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

void
mp_cfg_suggest_init(struct mp_cfg_suggest *sg, const char *word)
{
	sg->word = word;
	sg->best = NULL;
	sg->distance = SIZE_MAX;
}

void
mp_cfg_suggest_try(struct mp_cfg_suggest *sg, const char *candidate)
{
	size_t d = edit_distance(sg->word, candidate);

	if (d < sg->distance) {
		sg->distance = d;
		sg->best = candidate;
	}
}

const char *
mp_cfg_suggest_text(struct mp_cfg_suggest *sg)
{
	static __thread char text[SUGGEST_LEN_MAX + 32];

	/* One edit, or two in a longer word: enough for typos, while "imap"
	 * does not turn into "smtp". */
	size_t allowed = strlen(sg->word) >= 6 ? 2 : 1;

	if (sg->best == NULL || sg->distance > allowed ||
	    sg->distance >= strlen(sg->word))
		return "";
	snprintf(text, sizeof(text), "; did you mean '%s'?", sg->best);
	return text;
}

/* ---- describing values in errors ---- */

static const char *
kind_name(const struct mp_cfg_value *v)
{
	switch (v->kind) {
	case MP_CFGV_NIL:
		return "nil";
	case MP_CFGV_BOOL:
		return "boolean";
	case MP_CFGV_INT:
	case MP_CFGV_FLOAT:
		return "number";
	case MP_CFGV_STRING:
		return "string";
	case MP_CFGV_TABLE:
		return "table";
	default:
		return v->u.type_name;
	}
}

/* Numbers and strings as written ('10X'), anything else by its type. */
static const char *
describe(const struct mp_cfg_value *v, char *buf, size_t size)
{
	size_t len, n = 0;

	if (v->kind == MP_CFGV_INT)
		snprintf(buf, size, "%lld", (long long)v->u.i);
	else if (v->kind == MP_CFGV_FLOAT)
		snprintf(buf, size, "%.14g", v->u.f);
	else if (v->kind != MP_CFGV_STRING)
		snprintf(buf, size, "%s", kind_name(v));
	if (v->kind != MP_CFGV_STRING)
		return buf;
	len = v->u.s.len < DESCRIBE_MAX ? v->u.s.len : DESCRIBE_MAX;
	buf[n++] = '\'';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v->u.s.p[i];
		buf[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	snprintf(buf + n, size - n, "%s'", len < v->u.s.len ? "..." : "");
	return buf;
}

#define DESCRIBE(v) describe((v), (char[DESCRIBE_MAX + 8]){0}, DESCRIBE_MAX + 8)

/* ---- sizes and durations ---- */

static bool
parse_digits(const char *s, uint64_t *n_r, const char **end_r)
{
	uint64_t n = 0;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (n > (UINT64_MAX - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*n_r = n;
	*end_r = s;
	return true;
}

static bool
scale(uint64_t n, uint64_t mult, uint64_t *r)
{
	if (n > UINT64_MAX / mult)
		return false;
	*r = n * mult;
	return true;
}

bool
mp_cfg_parse_size(const char *s, uint64_t *bytes_r)
{
	static const char units[] = "KMG";
	const char *end, *unit;
	uint64_t n, mult = 1;

	if (!parse_digits(s, &n, &end))
		return false;
	if (*end == '\0')
		return scale(n, 1, bytes_r);
	unit = strchr(units, *end & ~0x20); /* k, m, g too: no ambiguity */
	if (unit == NULL || *unit == '\0' || end[1] != '\0')
		return false;
	for (const char *u = units; u <= unit; u++)
		mult *= K;
	return scale(n, mult, bytes_r);
}

bool
mp_cfg_parse_duration(const char *s, uint64_t *ms_r)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = {
		{"", 1000},   {"ms", 1},          {"s", 1000},
		{"m", 60000}, {"h", 3600 * 1000}, {"d", MS_PER_DAY},
	};
	const char *end;
	uint64_t n;

	if (!parse_digits(s, &n, &end))
		return false;
	for (size_t i = 0; i < MP_NELEMS(units); i++) {
		if (strcmp(end, units[i].suffix) == 0)
			return scale(n, units[i].ms, ms_r);
	}
	return false;
}

static void
format_scaled(char *buf, size_t size, uint64_t v, const uint64_t *mults,
	      const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (v != 0 && v % mults[i] == 0) {
			snprintf(buf, size, "%llu%s",
				 (unsigned long long)(v / mults[i]), names[i]);
			return;
		}
	}
	snprintf(buf, size, "%llu", (unsigned long long)v);
}

/* Sizes and durations in errors read as the operator writes them. */
static const char *
format_value(enum mp_cfg_type type, int64_t v, char *buf, size_t size)
{
	static const uint64_t size_mults[] = {K * K * K, K * K, K};
	static const char *const size_names[] = {"G", "M", "K"};
	static const uint64_t ms_mults[] = {MS_PER_DAY, 3600000, 60000, 1000,
					    1};
	static const char *const ms_names[] = {"d", "h", "m", "s", "ms"};

	if (type == MP_CFG_SIZE && v >= 0)
		format_scaled(buf, size, (uint64_t)v, size_mults, size_names,
			      MP_NELEMS(size_mults));
	else if (type == MP_CFG_DURATION && v >= 0)
		format_scaled(buf, size, (uint64_t)v, ms_mults, ms_names,
			      MP_NELEMS(ms_mults));
	else
		snprintf(buf, size, "%lld", (long long)v);
	return buf;
}

#define FORMAT(type, v) format_value((type), (v), (char[32]){0}, 32)

/* ---- converters ---- */

static bool
value_int(const struct mp_cfg_value *v, int64_t *i_r)
{
	if (v->kind == MP_CFGV_INT) {
		*i_r = v->u.i;
		return true;
	}
	/* 1e6 is a float in Lua, and a fine integer in a config. */
	if (v->kind != MP_CFGV_FLOAT || !(v->u.f >= -0x1p63 && v->u.f < 0x1p63))
		return false;
	*i_r = (int64_t)v->u.f;
	return (double)*i_r == v->u.f;
}

static bool
value_cstring(const struct mp_cfg_value *v)
{
	return v->kind == MP_CFGV_STRING && strlen(v->u.s.p) == v->u.s.len;
}

static char *
check_range(const struct mp_cfg_field *f, int64_t v)
{
	if (v >= f->min && (f->max == 0 || v <= f->max))
		return NULL;
	if (f->max == 0)
		return why("must be at least %s, got %s",
			   FORMAT(f->type, f->min), FORMAT(f->type, v));
	return why("must be between %s and %s, got %s", FORMAT(f->type, f->min),
		   FORMAT(f->type, f->max), FORMAT(f->type, v));
}

static char *
conv_int(const struct mp_cfg_field *f, const struct mp_cfg_value *v, void *dst)
{
	int64_t i;
	char *error;

	if (!value_int(v, &i))
		return why("expected an integer, got %s", DESCRIBE(v));
	if ((error = check_range(f, i)) != NULL)
		return error;
	*(int64_t *)dst = i;
	return NULL;
}

/* SIZE and DURATION: a number (bytes or seconds) or a string with a unit. */
static char *
conv_amount(const struct mp_cfg_field *f, const struct mp_cfg_value *v,
	    void *dst)
{
	bool is_size = f->type == MP_CFG_SIZE;
	uint64_t u = 0;
	int64_t i;
	bool ok;
	char *error;

	if (value_cstring(v))
		ok = is_size ? mp_cfg_parse_size(v->u.s.p, &u)
			     : mp_cfg_parse_duration(v->u.s.p, &u);
	else
		ok = value_int(v, &i) && i >= 0 &&
		     scale((uint64_t)i, is_size ? 1 : 1000, &u);
	if (!ok || u > INT64_MAX)
		return why(is_size ? "expected a size like 10M, got %s"
				   : "expected a duration like 30s, got %s",
			   DESCRIBE(v));
	if ((error = check_range(f, (int64_t)u)) != NULL)
		return error;
	*(uint64_t *)dst = u;
	return NULL;
}

static char *
conv_bool(const struct mp_cfg_field *f, const struct mp_cfg_value *v, void *dst)
{
	if (v->kind != MP_CFGV_BOOL)
		return why("expected true or false, got %s", DESCRIBE(v));
	*(bool *)dst = v->u.b;
	return NULL;
}

static char *
conv_string(const struct mp_cfg_field *f, const struct mp_cfg_value *v,
	    void *dst)
{
	char **p = dst;

	if (v->kind == MP_CFGV_STRING && !value_cstring(v))
		return why("contains a NUL byte");
	if (v->kind != MP_CFGV_STRING)
		return why("expected a string, got %s", DESCRIBE(v));
	free(*p);
	*p = mp_xstrdup(v->u.s.p);
	return NULL;
}

static char *
conv_path(const struct mp_cfg_field *f, const struct mp_cfg_value *v, void *dst,
	  const char *base_dir)
{
	char **p = dst;

	if (!value_cstring(v) || v->u.s.len == 0)
		return why("expected a path, got %s", DESCRIBE(v));
	free(*p);
	*p = mp_cfg_path_resolve(base_dir, v->u.s.p);
	return NULL;
}

static char *
conv_enum(const struct mp_cfg_field *f, const struct mp_cfg_value *v, void *dst)
{
	struct mp_buf names = {0};
	char *error;

	for (int i = 0; value_cstring(v) && f->choices[i] != NULL; i++) {
		if (strcmp(v->u.s.p, f->choices[i]) == 0) {
			*(int *)dst = i;
			return NULL;
		}
	}
	for (int i = 0; f->choices[i] != NULL; i++)
		mp_buf_printf(&names, "%s%s", i > 0 ? ", " : "", f->choices[i]);
	error = why("expected one of %s; got %s", names.data, DESCRIBE(v));
	mp_buf_free(&names);
	return error;
}

/* Items of a list table: keys 1..n, each a string. */
static char *
list_items(const struct mp_cfg_value *v, struct mp_strlist *list)
{
	for (size_t i = 0; i < v->u.t.n; i++) {
		const struct mp_cfg_pair *p = &v->u.t.v[i];
		if (p->key.kind != MP_CFGV_INT)
			return why("expected a list of strings, got key %s",
				   DESCRIBE(&p->key));
		if (p->key.u.i != (int64_t)i + 1)
			return why("[%zu] is nil: a list cannot have holes",
				   i + 1);
		if (!value_cstring(&p->value))
			return why("[%zu]: expected a string, got %s", i + 1,
				   DESCRIBE(&p->value));
		mp_strlist_add(list, p->value.u.s.p);
	}
	return NULL;
}

static char *
conv_strlist(const struct mp_cfg_field *f, const struct mp_cfg_value *v,
	     void *dst)
{
	struct mp_strlist list = {0};
	char *error = NULL;

	if (value_cstring(v))
		mp_strlist_add(&list, v->u.s.p);
	else if (v->kind == MP_CFGV_TABLE)
		error = list_items(v, &list);
	else
		error = why("expected a string or a list of strings, got %s",
			    DESCRIBE(v));
	if (error != NULL) {
		mp_strlist_free(&list);
		return error;
	}
	mp_strlist_free(dst);
	*(struct mp_strlist *)dst = list;
	return NULL;
}

static char *
convert(const struct mp_cfg_field *f, const struct mp_cfg_value *v, void *dst,
	const char *base_dir)
{
	switch (f->type) {
	case MP_CFG_BOOL:
		return conv_bool(f, v, dst);
	case MP_CFG_INT:
		return conv_int(f, v, dst);
	case MP_CFG_SIZE:
	case MP_CFG_DURATION:
		return conv_amount(f, v, dst);
	case MP_CFG_STRING:
		return conv_string(f, v, dst);
	case MP_CFG_PATH:
		return conv_path(f, v, dst, base_dir);
	case MP_CFG_ENUM:
		return conv_enum(f, v, dst);
	case MP_CFG_STRLIST:
		return conv_strlist(f, v, dst);
	}
	return why("the schema gives this key an unknown type");
}

bool
mp_cfg_field_set(const struct mp_cfg_field *f, const struct mp_cfg_value *v,
		 void *data, const char *label, const char *base_dir,
		 char **error_r)
{
	char *error = convert(f, v, (char *)data + f->offset, base_dir);

	if (error == NULL)
		return true;
	/* "domains[2]: ..." for an item, "domains: ..." for the value. */
	*error_r = mp_xasprintf("%s%s%s", label, error[0] == '[' ? "" : ": ",
				error);
	free(error);
	return false;
}

/* ---- sections ---- */

const struct mp_cfg_field *
mp_cfg_field_find(const struct mp_cfg_section *s, const char *key)
{
	for (size_t i = 0; i < s->n_fields; i++) {
		if (strcmp(s->fields[i].key, key) == 0)
			return &s->fields[i];
	}
	return NULL;
}

static bool
unknown_key(const struct mp_cfg_section *s, const struct mp_cfg_value *key,
	    char **error_r)
{
	struct mp_cfg_suggest sg;

	if (key->kind == MP_CFGV_INT) {
		*error_r = why("%s: unexpected value without a key "
			       "(write key = value)",
			       s->name);
		return false;
	}
	if (!value_cstring(key)) {
		*error_r = why("%s: keys must be names, got %s", s->name,
			       DESCRIBE(key));
		return false;
	}
	mp_cfg_suggest_init(&sg, key->u.s.p);
	for (size_t i = 0; i < s->n_fields; i++)
		mp_cfg_suggest_try(&sg, s->fields[i].key);
	*error_r = why("%s: unknown key '%s'%s", s->name, key->u.s.p,
		       mp_cfg_suggest_text(&sg));
	return false;
}

static bool
table_has(const struct mp_cfg_value *v, const char *key)
{
	for (size_t i = 0; i < v->u.t.n; i++) {
		const struct mp_cfg_value *k = &v->u.t.v[i].key;
		if (value_cstring(k) && strcmp(k->u.s.p, key) == 0)
			return true;
	}
	return false;
}

static bool
check_required(const struct mp_cfg_section *s, const struct mp_cfg_value *v,
	       const void *data, char **error_r)
{
	for (size_t i = 0; i < s->n_fields; i++) {
		const struct mp_cfg_field *f = &s->fields[i];
		const struct mp_strlist *list =
			(const void *)((const char *)data + f->offset);
		if (!f->required)
			continue;
		if (!table_has(v, f->key)) {
			*error_r = why("%s: missing required key '%s'", s->name,
				       f->key);
			return false;
		}
		if (f->type == MP_CFG_STRLIST && list->n == 0) {
			*error_r = why("%s.%s: must not be empty", s->name,
				       f->key);
			return false;
		}
	}
	return true;
}

bool
mp_cfg_section_fill(const struct mp_cfg_section *s,
		    const struct mp_cfg_value *v, void *data,
		    const char *base_dir, char **error_r)
{
	if (v->kind != MP_CFGV_TABLE) {
		*error_r = why("%s: expected a table", s->name);
		return false;
	}
	for (size_t i = 0; i < v->u.t.n; i++) {
		const struct mp_cfg_pair *p = &v->u.t.v[i];
		const struct mp_cfg_field *f = NULL;
		char *label;
		bool ok;

		if (value_cstring(&p->key))
			f = mp_cfg_field_find(s, p->key.u.s.p);
		if (f == NULL)
			return unknown_key(s, &p->key, error_r);
		label = why("%s.%s", s->name, f->key);
		ok = mp_cfg_field_set(f, &p->value, data, label, base_dir,
				      error_r);
		free(label);
		if (!ok)
			return false;
	}
	return check_required(s, v, data, error_r);
}

void *
mp_cfg_section_new(const struct mp_cfg_section *s)
{
	void *data = mp_xcalloc(1, s->struct_size);

	if (s->set_defaults != NULL)
		s->set_defaults(data);
	return data;
}

void
mp_cfg_section_clear(const struct mp_cfg_section *s, void *data)
{
	for (size_t i = 0; i < s->n_fields; i++) {
		void *field = (char *)data + s->fields[i].offset;

		if (s->fields[i].type == MP_CFG_STRING ||
		    s->fields[i].type == MP_CFG_PATH)
			MP_FREE(*(char **)field);
		else if (s->fields[i].type == MP_CFG_STRLIST)
			mp_strlist_free(field);
	}
}

void
mp_cfg_section_free(const struct mp_cfg_section *s, void *data)
{
	if (data == NULL)
		return;
	mp_cfg_section_clear(s, data);
	free(data);
}

char *
mp_cfg_path_resolve(const char *base_dir, const char *path)
{
	size_t n = strlen(base_dir);

	if (path[0] == '/')
		return mp_xstrdup(path);
	return mp_xasprintf("%s%s%s", base_dir,
			    n > 0 && base_dir[n - 1] == '/' ? "" : "/", path);
}
