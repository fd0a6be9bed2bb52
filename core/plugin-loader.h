/* plugin-loader.h - finding, checking and loading protocol plugins. */
#ifndef MOONPOST_PLUGIN_LOADER_H
#define MOONPOST_PLUGIN_LOADER_H

#include <moonpost/plugin.h>

struct mp_plugin_set;

/* An empty set; the caller owns it. */
MP_API struct mp_plugin_set *mp_plugin_set_new(void);
/* Checks a descriptor against the core's ABI: same major, minor not newer,
 * the struct size known for that minor, a name, and the callbacks a
 * protocol needs. False with *error_r (caller frees) naming `origin`. */
MP_API bool mp_plugin_check(const struct mp_plugin *plugin, const char *origin,
			    char **error_r);
/* Loads dir/NAME.so, checks it and adds it to the set; a name already in
 * the set returns the loaded one. NULL with *error_r (caller frees). */
MP_API const struct mp_plugin *mp_plugin_load(struct mp_plugin_set *set,
					      const char *dir, const char *name,
					      char **error_r);
/* Loads the shared object at path (any file name); as mp_plugin_load. */
MP_API const struct mp_plugin *mp_plugin_load_file(struct mp_plugin_set *set,
						   const char *path,
						   char **error_r);
/* Adds a descriptor linked into the program (tests); as mp_plugin_load. */
MP_API const struct mp_plugin *mp_plugin_add_builtin(struct mp_plugin_set *set,
						     const struct mp_plugin *p,
						     char **error_r);
/* The plugin of that name in the set, or NULL. */
MP_API const struct mp_plugin *mp_plugin_find(const struct mp_plugin_set *set,
					      const char *name);
/* True when dir/NAME.so exists. */
MP_API bool mp_plugin_exists(const char *dir, const char *name);
/* Number of plugins in the set. */
MP_API size_t mp_plugin_count(const struct mp_plugin_set *set);
/* The i-th plugin in load order. */
MP_API const struct mp_plugin *mp_plugin_at(const struct mp_plugin_set *set,
					    size_t i);
/* The config schemas of the set's plugins, NULL-terminated; owned by the
 * set and valid until the next load. */
MP_API const struct mp_cfg_section *const *
mp_plugin_sections(struct mp_plugin_set *set);
/* Unloads everything (deinit must have been called); sets *set NULL. */
MP_API void mp_plugin_set_free(struct mp_plugin_set **set);

#endif
