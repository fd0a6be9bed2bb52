/* bad-abi.c - plugins the loader must refuse, one per -DBAD_* variant. */
#include "config.h"

#include <moonpost/plugin.h>

static __attribute__((unused)) enum mp_status
bad_open(struct mp_conn *conn)
{
	return MP_ERROR;
}

static __attribute__((unused)) enum mp_status
bad_line(struct mp_conn *conn, const char *line, size_t len, unsigned flags)
{
	return MP_ERROR;
}

#if defined(BAD_MAJOR)
MP_API const struct mp_plugin moonpost_plugin = {
	.abi_major = MP_PLUGIN_ABI_MAJOR + 1,
	.abi_minor = 0,
	.struct_size = sizeof(struct mp_plugin),
	.name = "badmajor",
	.on_open = bad_open,
	.on_line = bad_line,
};
#elif defined(BAD_MINOR)
MP_API const struct mp_plugin moonpost_plugin = {
	.abi_major = MP_PLUGIN_ABI_MAJOR,
	.abi_minor = MP_PLUGIN_ABI_MINOR + 1,
	.struct_size = sizeof(struct mp_plugin),
	.name = "badminor",
	.on_open = bad_open,
	.on_line = bad_line,
};
#elif defined(BAD_SIZE)
MP_API const struct mp_plugin moonpost_plugin = {
	.abi_major = MP_PLUGIN_ABI_MAJOR,
	.abi_minor = MP_PLUGIN_ABI_MINOR,
	.struct_size = sizeof(struct mp_plugin) - sizeof(void *),
	.name = "badsize",
	.on_open = bad_open,
	.on_line = bad_line,
};
#elif defined(BAD_NO_SYMBOL)
/* Exports something, but not the descriptor. */
MP_API int moonpost_plugin_typo = 1;
#elif defined(BAD_CORE_SYMBOL)
/* Needs a core function this build does not have. */
MP_API void mp_core_function_from_the_future(void);

static enum mp_status
future_open(struct mp_conn *conn)
{
	mp_core_function_from_the_future();
	return MP_OK;
}

MP_PLUGIN_DEFINE(.name = "future", .on_open = future_open, .on_line = bad_line);
#endif
