/* config.c - loading a config file, and the loaded, immutable config. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config-private.h"

/* A config is a page or two; a bigger file is a mistake (a log, a
 * mailbox) and should not be read into memory. */
#define CONFIG_FILE_MAX (4 * 1024 * 1024)

static const struct mp_cfg_section *const core_slots[MP_CFG_SLOT_CORE] = {
	[MP_CFG_SLOT_LIMITS] = &mp_cfg_limits_schema,
	[MP_CFG_SLOT_LUA] = &mp_cfg_lua_schema,
	[MP_CFG_SLOT_LOG] = &mp_cfg_log_schema,
	[MP_CFG_SLOT_AUTH] = &mp_cfg_auth_schema,
	[MP_CFG_SLOT_QUOTA] = &mp_cfg_quota_schema,
	[MP_CFG_SLOT_DNS] = &mp_cfg_dns_schema,
};

void *
mp_cfg_record(const struct mp_cfg_records *r, size_t i)
{
	return r->v + i * r->schema->struct_size;
}

static void
records_free(struct mp_cfg_records *r)
{
	for (size_t i = 0; i < r->n; i++)
		mp_cfg_section_clear(r->schema, mp_cfg_record(r, i));
	MP_FREE(r->v);
	r->n = 0;
}

static void
config_free(struct mp_config *cfg)
{
	mp_cfg_section_free(&mp_cfg_settings_schema, cfg->settings);
	for (size_t i = 0; i < cfg->n_slots; i++)
		mp_cfg_section_free(cfg->slots[i].schema, cfg->slots[i].data);
	free(cfg->slots);
	records_free(&cfg->listeners);
	records_free(&cfg->tls);
	free(cfg->file);
	free(cfg->base_dir);
	free(cfg);
}

/* ---- building ---- */

static bool
name_taken(const struct mp_config *cfg, const char *name)
{
	if (mp_cfg_field_find(&mp_cfg_settings_schema, name) != NULL ||
	    strcmp(name, mp_cfg_listen_schema.name) == 0 ||
	    strcmp(name, mp_cfg_tls_schema.name) == 0)
		return true;
	for (size_t i = 0; i < cfg->n_slots; i++) {
		if (strcmp(cfg->slots[i].schema->name, name) == 0)
			return true;
	}
	return false;
}

static bool
add_plugin_slots(struct mp_config *cfg,
		 const struct mp_cfg_section *const *plugins, char **error_r)
{
	size_t n = 0;

	while (plugins != NULL && plugins[n] != NULL)
		n++;
	cfg->slots = mp_xcalloc(MP_CFG_SLOT_CORE + n, sizeof(*cfg->slots));
	for (size_t i = 0; i < MP_CFG_SLOT_CORE + n; i++) {
		const struct mp_cfg_section *s =
			i < MP_CFG_SLOT_CORE ? core_slots[i]
					     : plugins[i - MP_CFG_SLOT_CORE];
		if (name_taken(cfg, s->name)) {
			*error_r = mp_cfg_error_at(cfg->file, 0,
						   "a plugin's section '%s' "
						   "clashes with another name",
						   s->name);
			return false;
		}
		/* A plugin section is one struct, even if the schema says
		 * repeatable: mp_config_section() returns one. */
		cfg->slots[i].schema = s;
		cfg->slots[i].data = mp_cfg_section_new(s);
		cfg->n_slots++;
	}
	return true;
}

static struct mp_config *
config_new(const char *file, const char *base_dir,
	   const struct mp_cfg_section *const *plugins, char **error_r)
{
	struct mp_config *cfg = mp_xcalloc(1, sizeof(*cfg));

	cfg->refcount = 1;
	cfg->file = mp_xstrdup(file);
	cfg->base_dir = mp_xstrdup(base_dir);
	cfg->settings = mp_cfg_section_new(&mp_cfg_settings_schema);
	cfg->listeners.schema = &mp_cfg_listen_schema;
	cfg->listeners.line_offset = offsetof(struct mp_cfg_listener, line);
	cfg->tls.schema = &mp_cfg_tls_schema;
	cfg->tls.line_offset = offsetof(struct mp_cfg_tls, line);
	if (!add_plugin_slots(cfg, plugins, error_r)) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* The names the file may call: every slot, then the records. */
static const char **
section_names(const struct mp_config *cfg)
{
	const char **names = mp_xcalloc(cfg->n_slots + 3, sizeof(*names));
	size_t n = 0;

	for (size_t i = 0; i < cfg->n_slots; i++)
		names[n++] = cfg->slots[i].schema->name;
	names[n++] = mp_cfg_listen_schema.name;
	names[n++] = mp_cfg_tls_schema.name;
	return names;
}

/* ---- taking items from the evaluator ---- */

static bool
take_setting(struct mp_config *cfg, const struct mp_cfg_item *item,
	     char **error_r)
{
	const struct mp_cfg_section *s = &mp_cfg_settings_schema;
	const struct mp_cfg_field *f = mp_cfg_field_find(s, item->name);
	struct mp_cfg_suggest sg;
	int *line;

	if (f == NULL) {
		mp_cfg_suggest_init(&sg, item->name);
		for (size_t i = 0; i < s->n_fields; i++)
			mp_cfg_suggest_try(&sg, s->fields[i].key);
		*error_r = mp_xasprintf("unknown setting '%s'%s", item->name,
					mp_cfg_suggest_text(&sg));
		return false;
	}
	line = &cfg->setting_lines[f - s->fields];
	if (*line != 0) {
		*error_r = mp_xasprintf("%s: set twice (first at line %d)",
					item->name, *line);
		return false;
	}
	*line = item->line;
	return mp_cfg_field_set(f, item->value, cfg->settings, item->name,
				cfg->base_dir, error_r);
}

static bool
take_record(struct mp_config *cfg, struct mp_cfg_records *r,
	    const struct mp_cfg_item *item, char **error_r)
{
	size_t size = r->schema->struct_size;
	void *rec;

	r->v = mp_xrealloc(r->v, (r->n + 1) * size);
	rec = mp_cfg_record(r, r->n++);
	memset(rec, 0, size);
	if (r->schema->set_defaults != NULL)
		r->schema->set_defaults(rec);
	*(int *)((char *)rec + r->line_offset) = item->line;
	if (!mp_cfg_section_fill(r->schema, item->value, rec, cfg->base_dir,
				 error_r))
		return false;
	return r != &cfg->listeners || mp_cfg_listener_finish(rec, error_r);
}

static bool
take_section(struct mp_config *cfg, const struct mp_cfg_item *item,
	     char **error_r)
{
	struct mp_cfg_slot *slot = NULL;

	if (strcmp(item->name, mp_cfg_listen_schema.name) == 0)
		return take_record(cfg, &cfg->listeners, item, error_r);
	if (strcmp(item->name, mp_cfg_tls_schema.name) == 0)
		return take_record(cfg, &cfg->tls, item, error_r);
	for (size_t i = 0; i < cfg->n_slots && slot == NULL; i++) {
		if (strcmp(cfg->slots[i].schema->name, item->name) == 0)
			slot = &cfg->slots[i];
	}
	/* The evaluator only calls for names it was given. */
	if (slot == NULL) {
		*error_r = mp_xasprintf("unknown section '%s'", item->name);
		return false;
	}
	if (slot->line != 0) {
		*error_r = mp_xasprintf("%s: given twice (first at line %d)",
					item->name, slot->line);
		return false;
	}
	slot->line = item->line;
	return mp_cfg_section_fill(slot->schema, item->value, slot->data,
				   cfg->base_dir, error_r);
}

static bool
take_item(void *ctx, const struct mp_cfg_item *item, char **error_r)
{
	struct mp_config *cfg = ctx;

	if (item->is_section)
		return take_section(cfg, item, error_r);
	return take_setting(cfg, item, error_r);
}

/* ---- loading ---- */

static bool
check_slots(const struct mp_config *cfg, char **error_r)
{
	for (size_t i = 0; i < cfg->n_slots; i++) {
		const struct mp_cfg_slot *slot = &cfg->slots[i];
		const char *msg = NULL;

		if (slot->schema->check == NULL ||
		    slot->schema->check(slot->data, &msg))
			continue;
		*error_r = mp_cfg_error_at(cfg->file, slot->line, "%s: %s",
					   slot->schema->name,
					   msg != NULL ? msg : "invalid");
		return false;
	}
	return true;
}

static bool
evaluate(struct mp_config *cfg, const char *source, size_t len,
	 bool ignore_unknown, char **error_r)
{
	const char **names = section_names(cfg);
	struct mp_cfg_eval_params params = {
		.name = cfg->file,
		.source = source,
		.len = len,
		.sections = names,
		.ignore_unknown_sections = ignore_unknown,
		.item = take_item,
		.ctx = cfg,
	};
	bool ok = mp_cfg_eval(&params, error_r);

	free(names);
	return ok;
}

static struct mp_config *
load_source(const char *name, const char *source, size_t len,
	    const char *base_dir, const struct mp_cfg_section *const *plugins,
	    char **error_r)
{
	struct mp_config *cfg = config_new(name, base_dir, plugins, error_r);

	if (cfg == NULL)
		return NULL;
	if (!evaluate(cfg, source, len, plugins == NULL, error_r)) {
		config_free(cfg);
		return NULL;
	}
	mp_cfg_core_finish(cfg);
	if (!mp_cfg_core_check(cfg, error_r) || !check_slots(cfg, error_r)) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* dir made absolute against the working directory. Caller frees. */
static char *
absolute_dir(const char *dir)
{
	char *cwd, *abs;

	if (dir != NULL && dir[0] == '/')
		return mp_xstrdup(dir);
	cwd = getcwd(NULL, 0);
	if (cwd == NULL)
		cwd = mp_xstrdup("/");
	if (dir == NULL || strcmp(dir, ".") == 0 || dir[0] == '\0')
		return cwd;
	abs = mp_cfg_path_resolve(cwd, dir);
	free(cwd);
	return abs;
}

static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir, *abs;

	if (slash == NULL)
		return absolute_dir(NULL);
	dir = mp_xstrndup(path, slash == path ? 1 : (size_t)(slash - path));
	abs = absolute_dir(dir);
	free(dir);
	return abs;
}

static bool
read_all(FILE *f, const char *path, struct mp_buf *buf, char **error_r)
{
	char chunk[8192];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf->len + n > CONFIG_FILE_MAX) {
			*error_r = mp_cfg_error_at(path, 0,
						   "too large (over %d bytes)",
						   CONFIG_FILE_MAX);
			return false;
		}
		mp_buf_append(buf, chunk, n);
	}
	if (ferror(f)) {
		*error_r = mp_cfg_error_at(path, 0, "cannot read: %s",
					   strerror(errno));
		return false;
	}
	return true;
}

static bool
read_file(const char *path, struct mp_buf *buf, char **error_r)
{
	FILE *f = fopen(path, "r");
	bool ok;

	if (f == NULL) {
		*error_r = mp_cfg_error_at(path, 0, "cannot open: %s",
					   strerror(errno));
		return false;
	}
	ok = read_all(f, path, buf, error_r);
	fclose(f);
	return ok;
}

struct mp_config *
mp_config_load(const char *path,
	       const struct mp_cfg_section *const *plugin_sections,
	       char **error_r)
{
	struct mp_buf source = {0};
	struct mp_config *cfg = NULL;
	char *base_dir;

	if (!read_file(path, &source, error_r)) {
		mp_buf_free(&source);
		return NULL;
	}
	base_dir = dir_of(path);
	cfg = load_source(path, source.data != NULL ? source.data : "",
			  source.len, base_dir, plugin_sections, error_r);
	free(base_dir);
	mp_buf_free(&source);
	return cfg;
}

struct mp_config *
mp_config_load_string(const char *name, const char *source,
		      const char *base_dir,
		      const struct mp_cfg_section *const *plugin_sections,
		      char **error_r)
{
	char *dir = absolute_dir(base_dir);
	struct mp_config *cfg = load_source(name, source, strlen(source), dir,
					    plugin_sections, error_r);

	free(dir);
	return cfg;
}

/* ---- the loaded config ---- */

struct mp_config *
mp_config_ref(const struct mp_config *cfg)
{
	/* The count is bookkeeping, not part of the config's value: a
	 * borrowed const generation may be kept with a reference. */
	struct mp_config *c = (struct mp_config *)cfg;

	if (c != NULL)
		__atomic_add_fetch(&c->refcount, 1, __ATOMIC_RELAXED);
	return c;
}

void
mp_config_unref(struct mp_config **cfg)
{
	struct mp_config *c = *cfg;

	*cfg = NULL;
	if (c != NULL &&
	    __atomic_sub_fetch(&c->refcount, 1, __ATOMIC_ACQ_REL) == 0)
		config_free(c);
}

const char *
mp_config_file(const struct mp_config *cfg)
{
	return cfg->file;
}

const char *
mp_config_hostname(const struct mp_config *cfg)
{
	return cfg->settings->hostname;
}

const char *
mp_config_data_dir(const struct mp_config *cfg)
{
	return cfg->settings->data_dir;
}

const char *
mp_config_user(const struct mp_config *cfg)
{
	return cfg->settings->user;
}

const char *
mp_config_plugin_dir(const struct mp_config *cfg)
{
	return cfg->settings->plugin_dir;
}

const char *
mp_config_passwd_file(const struct mp_config *cfg)
{
	return cfg->settings->passwd;
}

const char *
mp_config_aliases_file(const struct mp_config *cfg)
{
	return cfg->settings->aliases;
}

const char *
mp_config_recipient_delimiter(const struct mp_config *cfg)
{
	return cfg->settings->recipient_delimiter;
}

const struct mp_strlist *
mp_config_domains(const struct mp_config *cfg)
{
	return &cfg->settings->domains;
}

bool
mp_config_is_local_domain(const struct mp_config *cfg, const char *domain)
{
	return mp_strlist_contains_icase(&cfg->settings->domains, domain);
}

int
mp_config_threads(const struct mp_config *cfg)
{
	return (int)cfg->settings->threads;
}

const struct mp_cfg_limits *
mp_config_limits(const struct mp_config *cfg)
{
	return cfg->slots[MP_CFG_SLOT_LIMITS].data;
}

const struct mp_cfg_lua *
mp_config_lua(const struct mp_config *cfg)
{
	return cfg->slots[MP_CFG_SLOT_LUA].data;
}

const struct mp_cfg_log *
mp_config_log(const struct mp_config *cfg)
{
	return cfg->slots[MP_CFG_SLOT_LOG].data;
}

const struct mp_cfg_quota *
mp_config_quota(const struct mp_config *cfg)
{
	return cfg->slots[MP_CFG_SLOT_QUOTA].data;
}

const struct mp_cfg_auth *
mp_config_auth(const struct mp_config *cfg)
{
	return cfg->slots[MP_CFG_SLOT_AUTH].data;
}

const struct mp_cfg_dns *
mp_config_dns(const struct mp_config *cfg)
{
	return cfg->slots[MP_CFG_SLOT_DNS].data;
}

size_t
mp_config_listener_count(const struct mp_config *cfg)
{
	return cfg->listeners.n;
}

const struct mp_cfg_listener *
mp_config_listener(const struct mp_config *cfg, size_t i)
{
	return i < cfg->listeners.n ? mp_cfg_record(&cfg->listeners, i) : NULL;
}

size_t
mp_config_tls_count(const struct mp_config *cfg)
{
	return cfg->tls.n;
}

const struct mp_cfg_tls *
mp_config_tls(const struct mp_config *cfg, size_t i)
{
	return i < cfg->tls.n ? mp_cfg_record(&cfg->tls, i) : NULL;
}

static const struct mp_cfg_slot *
plugin_slot(const struct mp_config *cfg, const char *name)
{
	for (size_t i = MP_CFG_SLOT_CORE; i < cfg->n_slots; i++) {
		if (strcmp(cfg->slots[i].schema->name, name) == 0)
			return &cfg->slots[i];
	}
	return NULL;
}

const void *
mp_config_section(const struct mp_config *cfg, const char *name)
{
	const struct mp_cfg_slot *slot = plugin_slot(cfg, name);

	return slot != NULL ? slot->data : NULL;
}

int
mp_config_section_line(const struct mp_config *cfg, const char *name)
{
	const struct mp_cfg_slot *slot = plugin_slot(cfg, name);

	return slot != NULL ? slot->line : 0;
}
