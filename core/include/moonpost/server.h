/* server.h - the running server: loop, listeners, pool, Lua, config.
 *
 * There is one struct mp_server per process. It is passed to plugins (init)
 * and reachable from a connection; nothing reaches it through a global. */
#ifndef MOONPOST_SERVER_H
#define MOONPOST_SERVER_H

#include <moonpost/common.h>
#include <moonpost/config.h>

struct ev_loop;
struct mp_auth;
struct mp_server;
struct mp_pool;
struct mp_dns;
struct mp_lua;
struct mp_plugin;
struct ms_store;
struct mp_deliver_env;

/* How to start a server. */
struct mp_server_settings {
	const char *config_path; /* file to load, or NULL with config_source */
	const char *config_source; /* Lua text (dev mode), used when no path */
	const char *config_name;   /* name for errors with config_source */
	const char *config_dir;    /* base of relative paths in the source */
	const char *plugin_dir;    /* overrides the config and the default */
	bool dev;                  /* dev mode: skip listeners without plugin */
	bool no_signals;           /* leave SIGTERM/SIGHUP alone (tests) */
	/* check-config: load and check everything (config, plugins, roles,
	 * certificates, scripts) but bind nothing and start nothing. */
	bool check_only;
	/* Plugins linked into the program (tests), NULL-terminated; looked
	 * up before plugin_dir. */
	const struct mp_plugin *const *builtin_plugins;
};

/* Loads the config and plugins, binds every listener, drops privileges and
 * loads the Lua scripts. Returns NULL and sets *error_r (caller frees) when
 * anything fails; nothing is left bound. The caller owns the server. */
MP_API struct mp_server *mp_server_new(const struct mp_server_settings *set,
				       char **error_r);
/* Runs the loop until SIGTERM/SIGINT and the graceful stop are done. */
MP_API int mp_server_run(struct mp_server *server);
/* Starts a graceful stop, as SIGTERM does. */
MP_API void mp_server_stop(struct mp_server *server);
/* Reloads config and scripts, as SIGHUP does; false (with *error_r, caller
 * frees) leaves the running generation in place. */
MP_API bool mp_server_reload(struct mp_server *server, char **error_r);
/* Closes everything and frees the server; sets *server NULL. */
MP_API void mp_server_free(struct mp_server **server);

/* The event loop (borrowed). */
MP_API struct ev_loop *mp_server_loop(struct mp_server *server);
/* The thread pool for blocking work (borrowed). */
MP_API struct mp_pool *mp_server_pool(struct mp_server *server);
/* The DNS resolver (borrowed; lives as long as the server, its settings
 * follow reloads). */
MP_API struct mp_dns *mp_server_dns(struct mp_server *server);
/* The mailstore (borrowed). */
MP_API struct ms_store *mp_server_store(struct mp_server *server);
/* Fills env with what mp_deliver() needs from this server (all borrowed;
 * the Lua runtime is the current generation). */
MP_API void mp_server_deliver_env(struct mp_server *server,
				  struct mp_deliver_env *env);
/* The current Lua runtime generation (borrowed; mp_lua_ref() to keep it). */
MP_API struct mp_lua *mp_server_lua(struct mp_server *server);
/* The authentication service: password checks, throttling, recipient
 * resolution (borrowed; lives as long as the server). */
MP_API struct mp_auth *mp_server_auth(struct mp_server *server);
/* The current config generation (borrowed; mp_config_ref() to keep it). */
MP_API const struct mp_config *mp_server_config(struct mp_server *server);
/* True once a graceful stop has begun. */
MP_API bool mp_server_is_stopping(const struct mp_server *server);
/* Number of open client connections. */
MP_API size_t mp_server_conn_count(const struct mp_server *server);
/* Number of sockets listening. */
MP_API size_t mp_server_listener_count(const struct mp_server *server);
/* The i-th listening socket: its record (borrowed) and, in *address_r, the
 * address it is bound to. */
MP_API const struct mp_cfg_listener *
mp_server_listener(const struct mp_server *server, size_t i,
		   const char **address_r);

/* Where plugins are looked for when neither the command line nor the config
 * says: the build tree when this binary runs from it, else $(pkglibdir).
 * Static string. */
MP_API const char *mp_default_plugin_dir(void);

#endif
