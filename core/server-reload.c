/* server-reload.c - SIGHUP: a new config generation, certificates,
 * resolver and Lua scripts, swapped in only when all of them loaded. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <moonpost/dns.h>
#include <moonpost/log.h>
#include <moonpost/lua.h>
#include <moonpost/mailstore.h>

#include "auth-private.h"
#include "plugin-loader.h"
#include "server-private.h"
#include "tls.h"

static bool
listeners_equal(const struct mp_server *server, const struct mp_config *cfg)
{
	size_t n = 0;

	for (size_t i = 0; i < mp_config_listener_count(cfg); i++) {
		const struct mp_cfg_listener *rec = mp_config_listener(cfg, i);

		for (size_t j = 0; j < rec->address.n; j++, n++) {
			const struct mp_listener *l;

			if (n >= server->n_listeners)
				return false;
			l = &server->listeners[n];
			if (strcmp(l->address, rec->address.v[j]) != 0 ||
			    strcmp(l->rec.protocol, rec->protocol) != 0 ||
			    l->rec.tls != rec->tls)
				return false;
		}
	}
	return n == server->n_listeners;
}

static void
swap_tls(struct mp_server *server, const struct mp_config *cfg)
{
	char *error = NULL;
	struct mp_tls *tls = mp_tls_new(cfg, &error);

	if (error != NULL) {
		/* Often a key only root can read: keep serving with the
		 * certificates loaded at start. */
		mp_log(MP_LOG_WARN, "event=reload_tls_kept_old error=%s",
		       mp_q(error));
		free(error);
		return;
	}
	mp_tls_unref(&server->tls);
	server->tls = tls;
}

static void
reconfigure_dns(struct mp_server *server, const struct mp_config *cfg)
{
	char *error = NULL;

	if (mp_dns_reconfigure(server->dns, mp_config_dns(cfg), &error))
		return;
	mp_log(MP_LOG_WARN, "event=reload_dns_kept_old error=%s", mp_q(error));
	free(error);
}

bool
mp_server_reload(struct mp_server *server, char **error_r)
{
	struct mp_config *cfg;
	struct mp_lua *lua;

	cfg = mp_server_load_config(server, mp_plugin_sections(server->plugins),
				    error_r);
	if (cfg == NULL)
		return false;
	lua = mp_lua_new(server->loop, mp_config_lua(cfg),
			 mp_server_hook_names(server), error_r);
	if (lua == NULL) {
		mp_config_unref(&cfg);
		return false;
	}
	if (!server->settings.dev && !listeners_equal(server, cfg))
		mp_log(MP_LOG_WARN,
		       "event=reload_listeners_unchanged "
		       "reason=%s",
		       mp_q("listener changes take effect on restart"));
	swap_tls(server, cfg);
	reconfigure_dns(server, cfg);
	mp_lua_set_pool(lua, server->pool);
	mp_lua_set_dns(lua, server->dns);
	mp_lua_unref(&server->lua);
	server->lua = lua;
	mp_config_unref(&server->config);
	server->config = cfg;
	mp_auth_set_runtime(server->auth, cfg, lua);
	mp_server_log_level_from(cfg);
	mp_log(MP_LOG_INFO, "event=reloaded config=%s",
	       mp_q(mp_config_file(cfg)));
	return true;
}
