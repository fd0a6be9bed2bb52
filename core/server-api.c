/* server-api.c - what plugins read off the running server. */
#include "config.h"

#include <moonpost/deliver.h>
#include <moonpost/server.h>

#include "server-private.h"

struct ms_store *
mp_server_store(struct mp_server *server)
{
	return server->store;
}

void
mp_server_deliver_env(struct mp_server *server, struct mp_deliver_env *env)
{
	env->loop = server->loop;
	env->pool = server->pool;
	env->lua = server->lua;
	env->auth = server->auth;
	env->store = server->store;
}

const struct mp_cfg_listener *
mp_server_listener(const struct mp_server *server, size_t i,
		   const char **address_r)
{
	*address_r = server->listeners[i].address;
	return &server->listeners[i].rec;
}

struct ev_loop *
mp_server_loop(struct mp_server *server)
{
	return server->loop;
}

struct mp_pool *
mp_server_pool(struct mp_server *server)
{
	return server->pool;
}

struct mp_dns *
mp_server_dns(struct mp_server *server)
{
	return server->dns;
}

struct mp_auth *
mp_server_auth(struct mp_server *server)
{
	return server->auth;
}

struct mp_lua *
mp_server_lua(struct mp_server *server)
{
	return server->lua;
}

const struct mp_config *
mp_server_config(struct mp_server *server)
{
	return server->config;
}

bool
mp_server_is_stopping(const struct mp_server *server)
{
	return server->stopping;
}

size_t
mp_server_conn_count(const struct mp_server *server)
{
	return server->n_conns;
}

size_t
mp_server_listener_count(const struct mp_server *server)
{
	return server->n_listeners;
}
