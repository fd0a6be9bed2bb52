/* config-private.h - what the config loader's files share.
 *
 * Loading runs in three steps, one file each:
 *   config-eval.c    runs the Lua file in a sandbox and hands every setting
 *                    and section call, as a value tree with its line, to a
 *                    callback, while the file runs (so errors come in file
 *                    order);
 *   config-schema.c  turns a value tree into the C struct a schema
 *                    describes;
 *   config-core.c    the core's own schemas and the checks that span
 *                    several records;
 * and config.c ties them together and holds struct mp_config. */
#ifndef MOONPOST_CONFIG_PRIVATE_H
#define MOONPOST_CONFIG_PRIVATE_H

#include <moonpost/config.h>

/* ---- value trees: Lua values copied out of the sandbox ---- */

enum mp_cfg_vkind {
	MP_CFGV_NIL = 0,
	MP_CFGV_BOOL,
	MP_CFGV_INT,
	MP_CFGV_FLOAT,
	MP_CFGV_STRING,
	MP_CFGV_TABLE,
	MP_CFGV_OTHER, /* function, userdata...: only its type name is kept */
};

struct mp_cfg_pair;

struct mp_cfg_value {
	enum mp_cfg_vkind kind;
	union {
		bool b;
		int64_t i;
		double f;
		struct {
			char *p; /* NUL-terminated, but may hold NULs */
			size_t len;
		} s;
		struct {
			/* Sorted: integer keys first, in order, then string
			 * keys, so walking a table is deterministic. Tables
			 * nested deeper than a config ever needs are kept
			 * empty: only their kind matters. */
			struct mp_cfg_pair *v;
			size_t n;
		} t;
		const char *type_name; /* OTHER: a static Lua type name */
	} u;
};

struct mp_cfg_pair {
	struct mp_cfg_value key;
	struct mp_cfg_value value;
};

/* Frees what v holds; v is NIL afterwards. */
void mp_cfg_value_free(struct mp_cfg_value *v);

/* ---- evaluation (config-eval.c) ---- */

/* One top-level statement: `name = value` or `name { ... }`. */
struct mp_cfg_item {
	const char *name;
	int line;
	bool is_section;
	const struct mp_cfg_value *value; /* a TABLE for sections */
};

/* Takes one item. Returns false with *error_r (caller frees; no file:line,
 * the evaluator adds it) to stop the evaluation. */
typedef bool mp_cfg_item_fn(void *ctx, const struct mp_cfg_item *item,
			    char **error_r);

struct mp_cfg_eval_params {
	const char *name; /* file name, shown in errors */
	const char *source;
	size_t len;
	/* Names callable as sections, NULL-terminated. */
	const char *const *sections;
	/* Calls like `name { ... }` for any other name are ignored rather
	 * than refused (commands that do not load plugins). */
	bool ignore_unknown_sections;
	mp_cfg_item_fn *item;
	void *ctx;
};

/* Runs the file. Returns false with *error_r ("file:line: message", caller
 * frees) at the first error. */
bool mp_cfg_eval(const struct mp_cfg_eval_params *params, char **error_r);

/* ---- schemas (config-schema.c) ---- */

/* A zeroed struct for s with its defaults set; free with
 * mp_cfg_section_free(). */
void *mp_cfg_section_new(const struct mp_cfg_section *s);
/* Frees the strings and lists the fields of s own in data. */
void mp_cfg_section_clear(const struct mp_cfg_section *s, void *data);
/* mp_cfg_section_clear(), then frees data itself (NULL is fine). */
void mp_cfg_section_free(const struct mp_cfg_section *s, void *data);
/* The field named key, or NULL. */
const struct mp_cfg_field *mp_cfg_field_find(const struct mp_cfg_section *s,
					     const char *key);
/* Converts v into field f of data. label names the value in errors
 * ("hostname", "limits.connections"); relative paths resolve against
 * base_dir. False with *error_r (caller frees) when v does not fit. */
bool mp_cfg_field_set(const struct mp_cfg_field *f,
		      const struct mp_cfg_value *v, void *data,
		      const char *label, const char *base_dir, char **error_r);
/* Fills data (holding defaults) from the table v. False with *error_r
 * (caller frees) on an unknown key, a bad value or a missing one. */
bool mp_cfg_section_fill(const struct mp_cfg_section *s,
			 const struct mp_cfg_value *v, void *data,
			 const char *base_dir, char **error_r);
/* base_dir/path, or a copy of path when it is absolute. Caller frees. */
char *mp_cfg_path_resolve(const char *base_dir, const char *path);
/* "file:line: message" ("file: message" when line is 0). Caller frees. */
char *mp_cfg_error_at(const char *file, int line, const char *fmt, ...)
	MP_PRINTF(3, 4);

/* Finds the closest of several names to a misspelt one. */
struct mp_cfg_suggest {
	const char *word;
	const char *best;
	size_t distance;
};

void mp_cfg_suggest_init(struct mp_cfg_suggest *sg, const char *word);
void mp_cfg_suggest_try(struct mp_cfg_suggest *sg, const char *candidate);
/* "; did you mean 'x'?" when a name is close enough, else "". Static or
 * borrowed: use it before the next call. */
const char *mp_cfg_suggest_text(struct mp_cfg_suggest *sg);

/* ---- the loaded config (config.c) and the core schemas (config-core.c) */

/* The top-level settings, filled like a section. */
struct mp_cfg_settings {
	char *hostname;
	char *data_dir;
	char *user;
	char *plugin_dir;
	char *passwd;
	char *aliases;
	char *recipient_delimiter;
	struct mp_strlist domains;
	int64_t threads;
};

extern const struct mp_cfg_section mp_cfg_settings_schema;
extern const struct mp_cfg_section mp_cfg_limits_schema;
extern const struct mp_cfg_section mp_cfg_lua_schema;
extern const struct mp_cfg_section mp_cfg_log_schema;
extern const struct mp_cfg_section mp_cfg_auth_schema;
extern const struct mp_cfg_section mp_cfg_quota_schema;
extern const struct mp_cfg_section mp_cfg_dns_schema;
extern const struct mp_cfg_section mp_cfg_listen_schema;
extern const struct mp_cfg_section mp_cfg_tls_schema;

/* A section that appears at most once: a core one or a plugin's. */
struct mp_cfg_slot {
	const struct mp_cfg_section *schema;
	void *data; /* always allocated, holding defaults until written */
	int line;   /* 0 while the file has not written it */
};

/* The records of one repeatable section, in file order. */
struct mp_cfg_records {
	const struct mp_cfg_section *schema;
	size_t line_offset; /* of the `int line` field in each struct */
	char *v;            /* n structs of schema->struct_size bytes */
	size_t n;
};

enum {
	MP_CFG_SLOT_LIMITS,
	MP_CFG_SLOT_LUA,
	MP_CFG_SLOT_LOG,
	MP_CFG_SLOT_AUTH,
	MP_CFG_SLOT_QUOTA,
	MP_CFG_SLOT_DNS,
	MP_CFG_SLOT_CORE
};

struct mp_config {
	int refcount; /* atomic: generations are shared across threads */
	char *file;
	char *base_dir;
	struct mp_cfg_settings *settings;
	int setting_lines[16]; /* by field index of mp_cfg_settings_schema */
	struct mp_cfg_slot *slots; /* MP_CFG_SLOT_* first, then plugins */
	size_t n_slots;
	struct mp_cfg_records listeners;
	struct mp_cfg_records tls;
};

/* The i-th record of r. */
void *mp_cfg_record(const struct mp_cfg_records *r, size_t i);

/* Completes and checks one `listen` record just read (default name,
 * address syntax). False with *error_r (caller frees, no file:line). */
bool mp_cfg_listener_finish(struct mp_cfg_listener *l, char **error_r);
/* Fills the defaults that depend on other settings and resolves paths. */
void mp_cfg_core_finish(struct mp_config *cfg);
/* The checks that span several records. False with *error_r
 * ("file:line: message", caller frees). */
bool mp_cfg_core_check(const struct mp_config *cfg, char **error_r);

#endif
