/* server-private.h - the server's state, shared by server.c, listener.c
 * and conn.c. Nothing outside core/ sees these structs. */
#ifndef MOONPOST_SERVER_PRIVATE_H
#define MOONPOST_SERVER_PRIVATE_H

#include <ev.h>
#include <sys/socket.h>

#include <moonpost/plugin.h>
#include <moonpost/server.h>

struct mp_conn;
struct mp_iplimit;
struct mp_tls;
struct mp_plugin_set;
struct ms_store;

/* Size of the buffer every read goes into first. Complete lines are handed
 * to the plugin straight from it; only a partial tail is copied into the
 * connection, so an idle connection holds no input buffer at all. */
#define MP_READ_CHUNK (64 * 1024)

/* One listening socket. A `listen` record with several addresses makes one
 * of these per address. */
struct mp_listener {
	struct mp_server *server;
	const struct mp_plugin *plugin;
	struct mp_cfg_listener rec; /* own copy: outlives config reloads */
	char *address;              /* as written in the config */
	int fd;
	ev_io io;
	ev_timer pause; /* accepting paused after EMFILE/ENFILE */
};

struct mp_server {
	struct ev_loop *loop;
	struct mp_config *config; /* current generation */
	struct mp_tls *tls;       /* current certificates, or NULL */
	struct mp_lua *lua;       /* current scripts */
	struct mp_pool *pool;
	struct mp_dns *dns;
	struct ms_store *store;
	struct mp_auth *auth;
	struct mp_plugin_set *plugins;
	size_t plugins_inited; /* the first n had init() called */
	struct mp_strlist hook_names;
	struct mp_server_settings settings; /* strings owned */
	char *plugin_dir;

	struct mp_listener *listeners;
	size_t n_listeners;

	struct mp_iplimit *iplimit;
	struct mp_conn *conns; /* every open connection, a list */
	size_t n_conns;
	struct mp_conn *work; /* connections with input or output to handle */
	struct mp_conn *work_tail;
	ev_prepare work_watcher;
	ev_idle work_idle; /* keeps the loop from blocking while work waits */

	ev_signal sig_term;
	ev_signal sig_int;
	ev_signal sig_hup;
	ev_timer grace;
	bool stopping;
	int exit_code;

	char *scratch; /* MP_READ_CHUNK bytes, see above */
	uint64_t id_seed;
	uint64_t id_counter;
};

/* Accepts fd (already non-blocking) as a new connection on listener. */
void mp_conn_accept(struct mp_listener *listener, int fd,
		    const struct sockaddr *peer, socklen_t peer_len);
/* Handles every connection on the work list (from an ev_prepare). */
void mp_conn_run_work(struct mp_server *server);
/* Asks every connection to finish: the plugin's on_shutdown, or a close. */
void mp_conn_shutdown_all(struct mp_server *server);
/* Closes a connection now, without flushing. */
void mp_conn_abort(struct mp_conn *conn, const char *reason);
/* Called by conn.c when the last connection is gone during a stop. */
void mp_server_conns_drained(struct mp_server *server);

/* server.c, for server-reload.c */

/* Loads the config the server was started with (file or dev source),
 * checking plugin sections against sections; NULL with *error_r. */
struct mp_config *
mp_server_load_config(struct mp_server *server,
		      const struct mp_cfg_section *const *sections,
		      char **error_r);
/* The Lua hook names the core and the loaded plugins declare. */
const char *const *mp_server_hook_names(struct mp_server *server);
/* Sets the log level the config asks for. */
void mp_server_log_level_from(const struct mp_config *cfg);

/* Opens every listener of the config; false with *error_r (caller frees). */
bool mp_listeners_open(struct mp_server *server, char **error_r);
/* Starts accepting on every listener. */
void mp_listeners_start(struct mp_server *server);
/* Stops accepting and closes every listening socket. */
void mp_listeners_close(struct mp_server *server);

#endif
