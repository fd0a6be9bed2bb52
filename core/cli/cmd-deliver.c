/* cmd-deliver.c - `moonpost deliver`: a local delivery agent.
 *
 * Reads one message on stdin and delivers it as the server would: the
 * recipient is resolved through aliases, the `deliver` rules run, and the
 * message lands in the mailstore. For use as another MTA's delivery
 * command (Postfix's mailbox_command, an LDA). Exit codes are the ones
 * MTAs understand (sysexits): 0 delivered, 67 no such user, 75 try again
 * later, 77 refused by a rule. */
#include "config.h"

#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <moonpost/deliver.h>
#include <moonpost/dns.h>
#include <moonpost/events.h>
#include <moonpost/log.h>
#include <moonpost/lua.h>
#include <moonpost/mailstore.h>
#include <moonpost/pool.h>

#include "auth-private.h"
#include "cli.h"

/* Largest message read from stdin: a runaway producer must not fill the
 * disk. SMTP has its own, configurable limit; this one only guards the
 * pipe. */
#define DELIVER_MAX_SIZE (256ULL * 1024 * 1024)

struct deliver_opts {
	const char *config;
	const char *data_dir;
	const char *recipient;
	const char *sender;
};

struct deliver_run {
	struct ev_loop *loop;
	struct mp_deliver_result result;
	bool done;
};

static void
deliver_usage(FILE *out)
{
	fprintf(out,
		"usage: moonpost deliver -r RECIPIENT [-f SENDER] "
		"[-c CONFIG | --data-dir DIR] < message\n\n"
		"Delivers one message from stdin to RECIPIENT's mailboxes, "
		"through aliases\nand the Lua `deliver` rules. Exit codes: "
		"0 delivered, 67 no such user,\n75 temporary failure (the "
		"caller should retry), 77 refused by a rule,\n64 usage, 78 "
		"config error.\n");
}

/* Copies stdin into an unlinked temp file in dir; returns its fd. */
static int
spool_stdin(const char *dir, uint64_t *size_r)
{
	char *path = mp_xasprintf("%s/deliver.XXXXXX", dir);
	char buf[65536];
	ssize_t n;
	int fd = mkstemp(path);

	*size_r = 0;
	if (fd < 0) {
		mp_cli_error("deliver: cannot create a spool file in %s: %s",
			     dir, strerror(errno));
		free(path);
		return -1;
	}
	unlink(path);
	free(path);
	while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0) {
		*size_r += (uint64_t)n;
		if (*size_r > DELIVER_MAX_SIZE ||
		    write(fd, buf, (size_t)n) != n) {
			mp_cli_error("deliver: message too large or disk "
				     "full");
			close(fd);
			return -1;
		}
	}
	if (n < 0) {
		mp_cli_error("deliver: reading stdin: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void
on_done(const struct mp_deliver_result *r, void *ctx)
{
	struct deliver_run *run = ctx;

	run->result = *r;
	run->done = true;
	ev_break(run->loop, EVBREAK_ALL);
}

static int
exit_code(const struct mp_deliver_result *r)
{
	switch (r->status) {
	case MP_DELIVERED:
		return EX_OK;
	case MP_DELIVER_UNKNOWN:
		return EX_NOUSER;
	case MP_DELIVER_REJECT:
		return EX_NOPERM;
	case MP_DELIVER_TEMPFAIL:
		return EX_TEMPFAIL;
	}
	return EX_SOFTWARE;
}

struct deliver_parts {
	struct ev_loop *loop;
	struct mp_pool *pool;
	struct mp_auth *auth;
	struct mp_lua *lua;
	struct mp_dns *dns; /* for moonpost.dns and moonpost.http; or NULL */
	struct ms_store *store;
};

static void
parts_free(struct deliver_parts *p)
{
	mp_lua_unref(&p->lua);
	mp_dns_free(&p->dns);
	mp_auth_free(&p->auth);
	mp_pool_free(&p->pool);
	ms_store_free(&p->store);
	if (p->loop != NULL)
		ev_loop_destroy(p->loop);
}

/* A resolver for scripts; without one (c-ares cannot start) their
 * lookups fail, which is no reason to refuse the message. */
static void
deliver_dns(struct deliver_parts *p, const struct mp_config *cfg)
{
	char *error = NULL;

	p->dns = mp_dns_new(p->loop, mp_config_dns(cfg), &error);
	if (p->dns == NULL) {
		mp_log(MP_LOG_WARN, "event=dns_unavailable error=%s",
		       mp_q(error));
		free(error);
		return;
	}
	mp_lua_set_dns(p->lua, p->dns);
}

/* Builds what a delivery needs from cfg; false after a message. */
static bool
parts_new(const struct mp_config *cfg, struct deliver_parts *p)
{
	struct ms_store_settings set = {0};
	struct ms_error err = {0};
	char *error = NULL, *root;

	p->loop = ev_loop_new(EVFLAG_AUTO);
	p->pool = mp_pool_new(p->loop, 1);
	/* Scripts may register for hooks of plugins this command does not
	 * load: names are not checked here (check-config does). */
	p->lua = mp_lua_new(p->loop, mp_config_lua(cfg), NULL, &error);
	if (p->lua != NULL)
		mp_lua_set_pool(p->lua, p->pool);
	if (p->lua != NULL)
		deliver_dns(p, cfg);
	if (p->lua != NULL)
		p->auth = mp_auth_new(p->loop, p->pool, cfg, &error);
	if (p->auth != NULL)
		mp_auth_set_runtime(p->auth, cfg, p->lua);
	root = mp_xasprintf("%s/mail", mp_config_data_dir(cfg));
	set.root = root;
	set.quota_bytes = mp_config_quota(cfg)->storage;
	set.quota_messages = (uint64_t)mp_config_quota(cfg)->messages;
	if (p->auth != NULL && (p->store = ms_store_new(&set, &err)) == NULL)
		error = mp_xasprintf("mailstore %s: %s", root, err.text);
	free(root);
	if (error == NULL)
		return true;
	mp_cli_error("%s", error);
	free(error);
	return false;
}

static int
run(const struct deliver_opts *o, const struct mp_config *cfg)
{
	struct deliver_parts parts = {0};
	struct deliver_run state = {0};
	struct mp_deliver_msg msg = {.sender = o->sender};
	struct mp_deliver_env env;
	int fd;

	if (!parts_new(cfg, &parts)) {
		parts_free(&parts);
		return EX_TEMPFAIL;
	}
	fd = spool_stdin(mp_config_data_dir(cfg), &msg.size);
	if (fd < 0) {
		parts_free(&parts);
		return EX_TEMPFAIL;
	}
	msg.fd = fd;
	state.loop = parts.loop;
	env = (struct mp_deliver_env){parts.loop, parts.pool, parts.lua,
				      parts.auth, parts.store};
	mp_deliver(&env, &msg, o->recipient, on_done, &state);
	while (!state.done)
		ev_run(parts.loop, EVRUN_ONCE);
	/* Notifications (mailbox.append) of what was stored run here, in
	 * this process, before it exits; each is bounded by lua.timeout, so
	 * the exit is delayed by at most that (they run side by side). */
	while (mp_events_pending(parts.lua) > 0)
		ev_run(parts.loop, EVRUN_ONCE);
	close(fd);
	parts_free(&parts);
	if (state.result.status != MP_DELIVERED)
		mp_cli_error("deliver: %d %s %s", state.result.code,
			     state.result.enhanced, state.result.text);
	return exit_code(&state.result);
}

static int
parse(int argc, char **argv, struct deliver_opts *o)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"data-dir", required_argument, NULL, 'D'},
		{"recipient", required_argument, NULL, 'r'},
		{"from", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:r:f:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 'D':
			o->data_dir = optarg;
			break;
		case 'r':
			o->recipient = optarg;
			break;
		case 'f':
			o->sender = optarg;
			break;
		case 'h':
			deliver_usage(stdout);
			return EX_OK;
		default:
			deliver_usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind < argc || o->recipient == NULL ||
	    (o->config != NULL && o->data_dir != NULL)) {
		deliver_usage(stderr);
		return EX_USAGE;
	}
	if (o->sender == NULL)
		o->sender = "";
	if (strcmp(o->sender, "<>") == 0)
		o->sender = "";
	return -1;
}

int
mp_cmd_deliver(int argc, char **argv)
{
	struct deliver_opts o = {0};
	struct mp_config *cfg;
	char *error = NULL;
	int code = parse(argc, argv, &o);

	if (code >= 0)
		return code;
	cfg = mp_cli_load_config(o.config, o.data_dir, &error);
	if (cfg == NULL) {
		mp_cli_error("%s", error);
		free(error);
		return EX_CONFIG;
	}
	mp_log_set_level((enum mp_log_level)mp_config_log(cfg)->level);
	code = run(&o, cfg);
	mp_config_unref(&cfg);
	return code;
}
