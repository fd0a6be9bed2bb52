/* plugin-loader.c - finding, checking and loading protocol plugins. */
#include "config.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugin-loader.h"

struct loaded_plugin {
	const struct mp_plugin *desc;
	void *handle; /* NULL for built-in ones */
	char *origin;
};

struct mp_plugin_set {
	struct loaded_plugin *v;
	size_t n;
	const struct mp_cfg_section **sections;
};

/* The descriptor size of each minor version of the current major. When
 * ABI 1.1 appends fields, add offsetof(struct mp_plugin, first_new_field)
 * here for minor 0 and sizeof for minor 1. */
static const size_t abi_sizes[MP_PLUGIN_ABI_MINOR + 1] = {
	sizeof(struct mp_plugin),
};

struct mp_plugin_set *
mp_plugin_set_new(void)
{
	return mp_xcalloc(1, sizeof(struct mp_plugin_set));
}

static bool
check_abi(const struct mp_plugin *p, const char *origin, char **error_r)
{
	if (p->abi_major != MP_PLUGIN_ABI_MAJOR) {
		*error_r = mp_xasprintf(
			"%s: plugin ABI %u.%u is incompatible with this "
			"moonpost (ABI %u.%u): rebuild the plugin",
			origin, p->abi_major, p->abi_minor, MP_PLUGIN_ABI_MAJOR,
			MP_PLUGIN_ABI_MINOR);
		return false;
	}
	if (p->abi_minor > MP_PLUGIN_ABI_MINOR) {
		*error_r = mp_xasprintf(
			"%s: plugin needs ABI %u.%u but this moonpost has "
			"%u.%u: upgrade moonpost",
			origin, p->abi_major, p->abi_minor, MP_PLUGIN_ABI_MAJOR,
			MP_PLUGIN_ABI_MINOR);
		return false;
	}
	if (p->struct_size != abi_sizes[p->abi_minor]) {
		*error_r = mp_xasprintf(
			"%s: plugin descriptor is %u bytes, ABI %u.%u "
			"defines %zu: the plugin was built with other headers",
			origin, p->struct_size, p->abi_major, p->abi_minor,
			abi_sizes[p->abi_minor]);
		return false;
	}
	return true;
}

bool
mp_plugin_check(const struct mp_plugin *p, const char *origin, char **error_r)
{
	if (!check_abi(p, origin, error_r))
		return false;
	if (p->name == NULL || p->name[0] == '\0') {
		*error_r = mp_xasprintf("%s: plugin has no name", origin);
		return false;
	}
	if (p->on_open == NULL || p->on_line == NULL) {
		*error_r =
			mp_xasprintf("%s: plugin %s lacks on_open or on_line",
				     origin, p->name);
		return false;
	}
	if (p->config != NULL && strcmp(p->config->name, p->name) != 0) {
		*error_r = mp_xasprintf(
			"%s: plugin %s names its config section '%s'", origin,
			p->name, p->config->name);
		return false;
	}
	return true;
}

const struct mp_plugin *
mp_plugin_find(const struct mp_plugin_set *set, const char *name)
{
	for (size_t i = 0; i < set->n; i++) {
		if (strcmp(set->v[i].desc->name, name) == 0)
			return set->v[i].desc;
	}
	return NULL;
}

static const struct mp_plugin *
add(struct mp_plugin_set *set, const struct mp_plugin *p, void *handle,
    const char *origin, char **error_r)
{
	if (mp_plugin_find(set, p->name) != NULL) {
		*error_r = mp_xasprintf("%s: a plugin named %s is already "
					"loaded",
					origin, p->name);
		return NULL;
	}
	set->v = mp_xrealloc(set->v, (set->n + 1) * sizeof(*set->v));
	set->v[set->n].desc = p;
	set->v[set->n].handle = handle;
	set->v[set->n].origin = mp_xstrdup(origin);
	set->n++;
	return p;
}

const struct mp_plugin *
mp_plugin_add_builtin(struct mp_plugin_set *set, const struct mp_plugin *p,
		      char **error_r)
{
	if (!mp_plugin_check(p, "<builtin>", error_r))
		return NULL;
	return add(set, p, NULL, "<builtin>", error_r);
}

static const struct mp_plugin *
load_file(struct mp_plugin_set *set, const char *path, const char *expect,
	  char **error_r)
{
	const struct mp_plugin *p, *added;
	void *handle;

	/* RTLD_NOW: a plugin that needs a core function this build lacks
	 * fails here, with the symbol's name, not at its first call. */
	handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (handle == NULL) {
		*error_r = mp_xasprintf("cannot load plugin: %s", dlerror());
		return NULL;
	}
	p = dlsym(handle, MP_PLUGIN_SYMBOL);
	if (p == NULL) {
		*error_r = mp_xasprintf("%s: not a moonpost plugin (no "
					"symbol %s)",
					path, MP_PLUGIN_SYMBOL);
		dlclose(handle);
		return NULL;
	}
	if (!mp_plugin_check(p, path, error_r)) {
		dlclose(handle);
		return NULL;
	}
	if (expect != NULL && strcmp(p->name, expect) != 0) {
		*error_r = mp_xasprintf("%s: the plugin calls itself '%s'",
					path, p->name);
		dlclose(handle);
		return NULL;
	}
	added = add(set, p, handle, path, error_r);
	if (added == NULL)
		dlclose(handle);
	return added;
}

const struct mp_plugin *
mp_plugin_load_file(struct mp_plugin_set *set, const char *path, char **error_r)
{
	return load_file(set, path, NULL, error_r);
}

bool
mp_plugin_exists(const char *dir, const char *name)
{
	char *path = mp_xasprintf("%s/%s.so", dir, name);
	bool exists = access(path, F_OK) == 0;

	free(path);
	return exists;
}

const struct mp_plugin *
mp_plugin_load(struct mp_plugin_set *set, const char *dir, const char *name,
	       char **error_r)
{
	const struct mp_plugin *p = mp_plugin_find(set, name);
	char *path;

	if (p != NULL)
		return p;
	if (strchr(name, '/') != NULL || name[0] == '.') {
		*error_r = mp_xasprintf("bad plugin name '%s'", name);
		return NULL;
	}
	path = mp_xasprintf("%s/%s.so", dir, name);
	if (access(path, F_OK) != 0) {
		*error_r = mp_xasprintf("no plugin '%s' in %s", name, dir);
		free(path);
		return NULL;
	}
	p = load_file(set, path, name, error_r);
	free(path);
	return p;
}

size_t
mp_plugin_count(const struct mp_plugin_set *set)
{
	return set->n;
}

const struct mp_plugin *
mp_plugin_at(const struct mp_plugin_set *set, size_t i)
{
	return set->v[i].desc;
}

const struct mp_cfg_section *const *
mp_plugin_sections(struct mp_plugin_set *set)
{
	size_t n = 0;

	set->sections = mp_xrealloc(set->sections,
				    (set->n + 1) * sizeof(*set->sections));
	for (size_t i = 0; i < set->n; i++) {
		if (set->v[i].desc->config != NULL)
			set->sections[n++] = set->v[i].desc->config;
	}
	set->sections[n] = NULL;
	return set->sections;
}

void
mp_plugin_set_free(struct mp_plugin_set **setp)
{
	struct mp_plugin_set *set = *setp;

	if (set == NULL)
		return;
	for (size_t i = 0; i < set->n; i++) {
		if (set->v[i].handle != NULL)
			dlclose(set->v[i].handle);
		free(set->v[i].origin);
	}
	free(set->v);
	free(set->sections);
	free(set);
	*setp = NULL;
}
