/* server.c - start, run, reload and stop the server.
 *
 * Start order matters: the config is read and the plugins it names are
 * loaded, certificates are read and sockets bound while still privileged,
 * then privileges are dropped, and only then are the account files read
 * (by the auth service), plugins initialised and Lua scripts loaded, so
 * that a reload (which runs unprivileged) sees the same files the start
 * did. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <moonpost/deliver.h>
#include <moonpost/dns.h>
#include <moonpost/log.h>
#include <moonpost/mailstore.h>
#include <moonpost/lua.h>
#include <moonpost/pool.h>

#include "auth-private.h"
#include "events-private.h"
#include "iplimit.h"
#include "plugin-loader.h"
#include "server-private.h"
#include "tls.h"

/* Hooks the core itself fires; plugins add theirs in their descriptor. */
static const char *const core_hooks[] = {
	"auth",
	"deliver",
	"login",
	"logout",
	"mailbox.create",
	"mailbox.delete",
	"mailbox.rename",
	"mailbox.append",
	"mailbox.expunge",
	"mailbox.flags",
	NULL,
};

const char *
mp_default_plugin_dir(void)
{
	/* A binary run from the build tree uses the plugins built beside
	 * it; libtool puts the real binary in .libs/. */
	static char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return PKGLIBDIR;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash == NULL)
		return PKGLIBDIR;
	*slash = '\0';
	if (strcmp(exe, BUILD_DIR) == 0 || strcmp(exe, BUILD_DIR "/.libs") == 0)
		return BUILD_DIR "/plugins/.libs";
	return PKGLIBDIR;
}

struct mp_config *
mp_server_load_config(struct mp_server *server,
		      const struct mp_cfg_section *const *sections,
		      char **error_r)
{
	const struct mp_server_settings *set = &server->settings;

	if (set->config_path != NULL)
		return mp_config_load(set->config_path, sections, error_r);
	return mp_config_load_string(set->config_name, set->config_source,
				     set->config_dir, sections, error_r);
}

static bool
check_role(const struct mp_config *cfg, const struct mp_cfg_listener *rec,
	   const struct mp_plugin *p, char **error_r)
{
	const char *file = mp_config_file(cfg);

	if (p->roles == NULL) {
		if (rec->role == NULL)
			return true;
		*error_r = mp_xasprintf("%s:%d: listener %s: plugin %s takes "
					"no role",
					file, rec->line, rec->name, p->name);
		return false;
	}
	for (size_t i = 0; rec->role != NULL && p->roles[i] != NULL; i++) {
		if (strcmp(p->roles[i], rec->role) == 0)
			return true;
	}
	struct mp_buf roles = {0};
	for (size_t i = 0; p->roles[i] != NULL; i++)
		mp_buf_printf(&roles, "%s%s", i > 0 ? ", " : "", p->roles[i]);
	*error_r =
		mp_xasprintf("%s:%d: listener %s: plugin %s needs a role, "
			     "one of: %s",
			     file, rec->line, rec->name, p->name, roles.data);
	mp_buf_free(&roles);
	return false;
}

/* Finds the plugin a listener names; NULL with *error_r NULL means "skip
 * this listener" (dev mode, plugin not built). */
static const struct mp_plugin *
listener_plugin(struct mp_server *server, const struct mp_cfg_listener *rec,
		char **error_r)
{
	const struct mp_plugin *p =
		mp_plugin_find(server->plugins, rec->protocol);
	char *why = NULL;

	*error_r = NULL;
	if (p != NULL)
		return p;
	if (server->settings.dev &&
	    !mp_plugin_exists(server->plugin_dir, rec->protocol)) {
		mp_log(MP_LOG_INFO,
		       "event=listener_skipped listener=%s reason=%s",
		       mp_q(rec->name), mp_q("plugin not built yet"));
		return NULL;
	}
	p = mp_plugin_load(server->plugins, server->plugin_dir, rec->protocol,
			   &why);
	if (p == NULL) {
		*error_r = mp_xasprintf("%s:%d: listener %s: %s",
					mp_config_file(server->config),
					rec->line, rec->name, why);
		free(why);
	}
	return p;
}

static void
add_listener(struct mp_server *server, const struct mp_cfg_listener *rec,
	     const struct mp_plugin *p, const char *address)
{
	struct mp_listener *l;

	server->listeners = mp_xrealloc(server->listeners,
					(server->n_listeners + 1) *
						sizeof(*server->listeners));
	l = &server->listeners[server->n_listeners++];
	memset(l, 0, sizeof(*l));
	l->server = server;
	l->plugin = p;
	l->fd = -1;
	l->address = mp_xstrdup(address);
	l->rec.name = mp_xstrdup(rec->name);
	l->rec.protocol = mp_xstrdup(rec->protocol);
	l->rec.role = mp_xstrdup(rec->role);
	l->rec.tls = rec->tls;
	l->rec.line = rec->line;
	for (size_t i = 0; i < rec->address.n; i++)
		mp_strlist_add(&l->rec.address, rec->address.v[i]);
}

static bool
setup_plugins(struct mp_server *server, char **error_r)
{
	const struct mp_config *cfg = server->config;
	const struct mp_plugin *const *b = server->settings.builtin_plugins;

	for (size_t i = 0; b != NULL && b[i] != NULL; i++) {
		if (mp_plugin_add_builtin(server->plugins, b[i], error_r) ==
		    NULL)
			return false;
	}
	for (size_t i = 0; i < mp_config_listener_count(cfg); i++) {
		const struct mp_cfg_listener *rec = mp_config_listener(cfg, i);
		const struct mp_plugin *p =
			listener_plugin(server, rec, error_r);
		if (p == NULL) {
			if (*error_r != NULL)
				return false;
			continue;
		}
		if (!check_role(cfg, rec, p, error_r))
			return false;
		for (size_t j = 0; j < rec->address.n; j++)
			add_listener(server, rec, p, rec->address.v[j]);
	}
	return true;
}

/* Creates a missing data directory for the account the server will run
 * as: after the switch it could not make one itself. An existing one is
 * left as the operator made it. */
static bool
prepare_data_dir(const char *dir, const struct passwd *pw, char **error_r)
{
	if (mkdir(dir, 0750) != 0) {
		if (errno == EEXIST)
			return true;
		*error_r =
			mp_xasprintf("data_dir %s: %s", dir, strerror(errno));
		return false;
	}
	if (chown(dir, pw->pw_uid, pw->pw_gid) != 0) {
		*error_r = mp_xasprintf("data_dir %s: chown: %s", dir,
					strerror(errno));
		return false;
	}
	mp_log(MP_LOG_INFO, "event=data_dir_created dir=%s user=%s", mp_q(dir),
	       mp_q(pw->pw_name));
	return true;
}

/* Each connection costs a descriptor (two while a message file is open),
 * and the soft limit is often 1024: raise it to the hard limit, as far as
 * the connection limit needs, and say so when even that is too low. */
static void
raise_fd_limit(const struct mp_config *cfg)
{
	rlim_t want = (rlim_t)mp_config_limits(cfg)->connections * 2 + 256;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want
			      ? want
			      : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
		mp_log(MP_LOG_WARN,
		       "event=fd_limit_low limit=%llu wanted=%llu "
		       "hint=\"raise LimitNOFILE or ulimit -n\"",
		       (unsigned long long)rl.rlim_cur,
		       (unsigned long long)want);
}

static bool
drop_privileges(const struct mp_config *cfg, bool dev, char **error_r)
{
	const char *user = mp_config_user(cfg);
	struct passwd *pw;

	if (user == NULL) {
		if (geteuid() != 0 || dev)
			return true;
		*error_r = mp_xstrdup("refusing to run as root: set `user = "
				      "\"moonpost\"` (or another account) in "
				      "the config");
		return false;
	}
	pw = getpwnam(user);
	if (pw == NULL) {
		*error_r = mp_xasprintf("user %s: no such account", user);
		return false;
	}
	if (pw->pw_uid == geteuid())
		return true; /* already that user (tests, containers) */
	if (!prepare_data_dir(mp_config_data_dir(cfg), pw, error_r))
		return false;
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 ||
	    setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
		*error_r = mp_xasprintf("cannot switch to user %s: %s", user,
					strerror(errno));
		return false;
	}
	if (pw->pw_uid != 0 && setuid(0) == 0) {
		*error_r = mp_xstrdup("privileges could be regained");
		return false;
	}
	mp_log(MP_LOG_INFO, "event=privileges_dropped user=%s uid=%u",
	       mp_q(user), (unsigned)pw->pw_uid);
	return true;
}

void
mp_server_log_level_from(const struct mp_config *cfg)
{
	mp_log_set_level((enum mp_log_level)mp_config_log(cfg)->level);
}

static void
collect_hooks(struct mp_server *server)
{
	mp_strlist_free(&server->hook_names);
	for (size_t i = 0; core_hooks[i] != NULL; i++)
		mp_strlist_add(&server->hook_names, core_hooks[i]);
	for (size_t i = 0; i < mp_plugin_count(server->plugins); i++) {
		const char *const *h = mp_plugin_at(server->plugins, i)->hooks;

		for (size_t j = 0; h != NULL && h[j] != NULL; j++) {
			if (!mp_strlist_contains(&server->hook_names, h[j]))
				mp_strlist_add(&server->hook_names, h[j]);
		}
	}
}

const char *const *
mp_server_hook_names(struct mp_server *server)
{
	static const char *const none[] = {NULL};

	return server->hook_names.n > 0
		       ? (const char *const *)server->hook_names.v
		       : none;
}

static bool
init_plugins(struct mp_server *server, char **error_r)
{
	for (size_t i = 0; i < mp_plugin_count(server->plugins); i++) {
		const struct mp_plugin *p = mp_plugin_at(server->plugins, i);
		const char *why = NULL;

		if (p->init != NULL && !p->init(server, &why)) {
			*error_r =
				mp_xasprintf("plugin %s: %s", p->name,
					     why != NULL ? why : "init failed");
			return false;
		}
		server->plugins_inited++;
		mp_log(MP_LOG_DEBUG, "event=plugin_loaded name=%s version=%s",
		       p->name, mp_q(p->version));
	}
	return true;
}

static void work_cb(struct ev_loop *loop, ev_prepare *w, int revents);
static void idle_cb(struct ev_loop *loop, ev_idle *w, int revents);
static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents);
static void grace_cb(struct ev_loop *loop, ev_timer *w, int revents);

static void
init_watchers(struct mp_server *server)
{
	struct ev_loop *loop = server->loop;

	ev_prepare_init(&server->work_watcher, work_cb);
	server->work_watcher.data = server;
	ev_prepare_start(loop, &server->work_watcher);
	ev_unref(loop); /* only connections and listeners keep ev_run up */
	ev_idle_init(&server->work_idle, idle_cb);
	server->work_idle.data = server;
	ev_init(&server->grace, grace_cb);
	server->grace.data = server;
	/* OpenSSL writes with write(2), which raises SIGPIPE on a closed
	 * connection; plain sends use MSG_NOSIGNAL. */
	signal(SIGPIPE, SIG_IGN);
	if (server->settings.no_signals)
		return;
	ev_signal_init(&server->sig_term, signal_cb, SIGTERM);
	ev_signal_init(&server->sig_int, signal_cb, SIGINT);
	ev_signal_init(&server->sig_hup, signal_cb, SIGHUP);
	server->sig_term.data = server->sig_int.data = server->sig_hup.data =
		server;
	ev_signal_start(loop, &server->sig_term);
	ev_signal_start(loop, &server->sig_int);
	ev_signal_start(loop, &server->sig_hup);
}

static void
copy_settings(struct mp_server *server, const struct mp_server_settings *set)
{
	server->settings = *set;
	server->settings.config_path = mp_xstrdup(set->config_path);
	server->settings.config_source = mp_xstrdup(set->config_source);
	server->settings.config_name = mp_xstrdup(
		set->config_name != NULL ? set->config_name : "<config>");
	server->settings.config_dir =
		mp_xstrdup(set->config_dir != NULL ? set->config_dir : ".");
	server->settings.plugin_dir = mp_xstrdup(set->plugin_dir);
}

/* Everything up to and including binding, run with the privileges the
 * process started with. */
static bool
start_privileged(struct mp_server *server, char **error_r)
{
	const char *dir;

	server->config = mp_server_load_config(server, NULL, error_r);
	if (server->config == NULL)
		return false;
	mp_server_log_level_from(server->config);
	dir = server->settings.plugin_dir;
	if (dir == NULL)
		dir = mp_config_plugin_dir(server->config);
	server->plugin_dir =
		mp_xstrdup(dir != NULL ? dir : mp_default_plugin_dir());
	if (!setup_plugins(server, error_r))
		return false;
	/* Again, now that the plugins' sections can be checked. */
	mp_config_unref(&server->config);
	server->config = mp_server_load_config(
		server, mp_plugin_sections(server->plugins), error_r);
	if (server->config == NULL)
		return false;
	server->tls = mp_tls_new(server->config, error_r);
	if (server->tls == NULL && *error_r != NULL)
		return false;
	collect_hooks(server);
	if (server->settings.check_only)
		return true;
	return mp_listeners_open(server, error_r);
}

/* The mailstore under data_dir/mail, opened unprivileged so that every
 * file in it belongs to the server's user. */
static bool
open_store(struct mp_server *server, char **error_r)
{
	const struct mp_cfg_quota *q = mp_config_quota(server->config);
	char *root =
		mp_xasprintf("%s/mail", mp_config_data_dir(server->config));
	struct ms_store_settings set = {
		.root = root,
		.quota_bytes = q->storage,
		.quota_messages = (uint64_t)q->messages,
		.loop = server->loop,
	};
	struct ms_error err;

	server->store = ms_store_new(&set, &err);
	if (server->store == NULL)
		*error_r = mp_xasprintf("mailstore %s: %s", root, err.text);
	free(root);
	return server->store != NULL;
}

struct mp_server *
mp_server_new(const struct mp_server_settings *set, char **error_r)
{
	struct mp_server *server = mp_xcalloc(1, sizeof(*server));
	uint32_t seed = 0;

	*error_r = NULL;
	copy_settings(server, set);
	server->loop = ev_loop_new(EVFLAG_AUTO);
	server->plugins = mp_plugin_set_new();
	server->iplimit = mp_iplimit_new();
	server->scratch = mp_xmalloc(MP_READ_CHUNK);
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint32_t)getpid();
	server->id_seed = seed & 0xfffff;
	init_watchers(server);

	if (!start_privileged(server, error_r))
		goto fail;
	if (set->check_only) {
		server->lua =
			mp_lua_new(server->loop, mp_config_lua(server->config),
				   mp_server_hook_names(server), error_r);
		if (server->lua == NULL ||
		    !mp_auth_check_files(server->config, error_r))
			goto fail;
		return server;
	}
	raise_fd_limit(server->config);
	if (!drop_privileges(server->config, set->dev, error_r))
		goto fail;
	server->pool = mp_pool_new(server->loop,
				   (unsigned)mp_config_threads(server->config));
	server->dns = mp_dns_new(server->loop, mp_config_dns(server->config),
				 error_r);
	if (server->dns == NULL)
		goto fail;
	server->auth = mp_auth_new(server->loop, server->pool, server->config,
				   error_r);
	if (server->auth == NULL || !open_store(server, error_r) ||
	    !init_plugins(server, error_r))
		goto fail;
	server->lua = mp_lua_new(server->loop, mp_config_lua(server->config),
				 mp_server_hook_names(server), error_r);
	if (server->lua == NULL)
		goto fail;
	mp_lua_set_pool(server->lua, server->pool);
	mp_lua_set_dns(server->lua, server->dns);
	mp_auth_set_runtime(server->auth, server->config, server->lua);
	return server;
fail:
	mp_server_free(&server);
	return NULL;
}

int
mp_server_run(struct mp_server *server)
{
	mp_listeners_start(server);
	mp_log(MP_LOG_INFO, "event=started pid=%d listeners=%zu config=%s",
	       (int)getpid(), server->n_listeners,
	       mp_q(mp_config_file(server->config)));
	ev_run(server->loop, 0);
	mp_log(MP_LOG_INFO, "event=stopped");
	return server->exit_code;
}

void
mp_server_conns_drained(struct mp_server *server)
{
	ev_timer_stop(server->loop, &server->grace);
	ev_break(server->loop, EVBREAK_ALL);
}

static void
abort_all(struct mp_server *server, const char *reason)
{
	while (server->conns != NULL)
		mp_conn_abort(server->conns, reason);
}

void
mp_server_stop(struct mp_server *server)
{
	const struct mp_cfg_limits *limits;

	if (server->stopping) {
		abort_all(server, "second stop request");
		return;
	}
	server->stopping = true;
	mp_listeners_close(server);
	mp_log(MP_LOG_INFO, "event=stopping connections=%zu", server->n_conns);
	if (server->n_conns == 0) {
		mp_server_conns_drained(server);
		return;
	}
	limits = mp_config_limits(server->config);
	ev_timer_set(&server->grace, (double)limits->shutdown_grace / 1000.0,
		     0);
	ev_timer_start(server->loop, &server->grace);
	mp_conn_shutdown_all(server);
}

static void
grace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct mp_server *server = w->data;

	mp_log(MP_LOG_WARN, "event=shutdown_grace_over connections=%zu",
	       server->n_conns);
	abort_all(server, "shutdown grace period over");
}

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct mp_server *server = w->data;
	char *error = NULL;

	if (w->signum != SIGHUP) {
		mp_log(MP_LOG_INFO, "event=signal signal=%s",
		       w->signum == SIGTERM ? "TERM" : "INT");
		mp_server_stop(server);
		return;
	}
	mp_log(MP_LOG_INFO, "event=signal signal=HUP");
	if (!mp_server_reload(server, &error)) {
		mp_log(MP_LOG_ERROR, "event=reload_failed error=%s",
		       mp_q(error));
		free(error);
	}
}

static void
work_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	mp_conn_run_work(w->data);
}

static void
idle_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	/* Nothing: being active keeps ev_run from blocking while the work
	 * list still has entries for the next ev_prepare. */
}

static void
stop_signals(struct mp_server *server)
{
	if (server->settings.no_signals)
		return;
	ev_signal_stop(server->loop, &server->sig_term);
	ev_signal_stop(server->loop, &server->sig_int);
	ev_signal_stop(server->loop, &server->sig_hup);
}

static void
free_listeners(struct mp_server *server)
{
	mp_listeners_close(server);
	for (size_t i = 0; i < server->n_listeners; i++) {
		struct mp_listener *l = &server->listeners[i];

		free(l->address);
		free(l->rec.name);
		free(l->rec.protocol);
		free(l->rec.role);
		mp_strlist_free(&l->rec.address);
	}
	MP_FREE(server->listeners);
	server->n_listeners = 0;
}

static void
deinit_plugins(struct mp_server *server)
{
	for (size_t i = server->plugins_inited; i > 0; i--) {
		const struct mp_plugin *p =
			mp_plugin_at(server->plugins, i - 1);

		if (p->deinit != NULL)
			p->deinit(server);
	}
	server->plugins_inited = 0;
}

static void
free_settings(struct mp_server_settings *set)
{
	free((char *)set->config_path);
	free((char *)set->config_source);
	free((char *)set->config_name);
	free((char *)set->config_dir);
	free((char *)set->plugin_dir);
}

void
mp_server_free(struct mp_server **serverp)
{
	struct mp_server *server = *serverp;

	if (server == NULL)
		return;
	server->stopping = true;
	abort_all(server, "server freed");
	mp_conn_run_work(server);
	free_listeners(server);
	/* No login may call back into a plugin from here on. */
	mp_auth_free(&server->auth);
	/* Blocking work still running (an fsync) finishes first. */
	mp_pool_free(&server->pool);
	/* Notifications still queued or waiting (a webhook that hangs) are
	 * not worth holding the exit for; nothing else owns them. */
	mp_events_abandon(server->lua);
	mp_lua_unref(&server->lua);
	deinit_plugins(server);
	/* After everything that may hold a query: none is called back. */
	mp_dns_free(&server->dns);
	ms_store_free(&server->store);
	stop_signals(server);
	ev_ref(server->loop);
	ev_prepare_stop(server->loop, &server->work_watcher);
	ev_idle_stop(server->loop, &server->work_idle);
	ev_timer_stop(server->loop, &server->grace);
	ev_loop_destroy(server->loop);
	mp_tls_unref(&server->tls);
	mp_config_unref(&server->config);
	mp_plugin_set_free(&server->plugins);
	mp_iplimit_free(&server->iplimit);
	mp_strlist_free(&server->hook_names);
	free(server->scratch);
	free(server->plugin_dir);
	free_settings(&server->settings);
	free(server);
	*serverp = NULL;
}
