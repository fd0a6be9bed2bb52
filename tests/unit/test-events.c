/* test-events.c - unit tests of the login check and the notification
 * queue (core/events*.c) on a real Lua runtime and loop. */
#include "config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <glib.h>

#include <moonpost/events.h>
#include <moonpost/log.h>
#include <moonpost/lua.h>
#include <moonpost/mailstore.h>

#include "events-private.h"

static const char *const hook_names[] = {
	"login",           "logout",         "mailbox.create",
	"mailbox.delete",  "mailbox.rename", "mailbox.append",
	"mailbox.expunge", "mailbox.flags",  NULL,
};

#define GUARD_SECONDS 60.0

struct fx {
	char *dir;
	char *log_path;
	int log_fd;
	struct ev_loop *loop;
	struct mp_cfg_lua cfg;
	struct mp_lua *lua;
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
fx_setup(struct fx *fx, gconstpointer data)
{
	GError *error = NULL;

	memset(fx, 0, sizeof(*fx));
	fx->dir = g_dir_make_tmp("mp-events-XXXXXX", &error);
	g_assert_no_error(error);
	fx->log_path = g_build_filename(fx->dir, "log", NULL);
	fx->log_fd = open(fx->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	g_assert_cmpint(fx->log_fd, >=, 0);
	mp_log_set_fd(fx->log_fd);
	mp_log_set_level(MP_LOG_INFO);
	fx->loop = ev_loop_new(EVFLAG_AUTO);
	fx->cfg.memory = 8u << 20;
	fx->cfg.memory_total = 256u << 20;
	fx->cfg.instructions = 1000000;
	fx->cfg.timeout = 30000;
}

static void
fx_teardown(struct fx *fx, gconstpointer data)
{
	mp_lua_unref(&fx->lua);
	mp_strlist_free(&fx->cfg.scripts);
	ev_loop_destroy(fx->loop);
	mp_log_set_fd(STDERR_FILENO);
	close(fx->log_fd);
	nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	g_free(fx->log_path);
	g_free(fx->dir);
}

static void
load(struct fx *fx, const char *source)
{
	char *path = g_build_filename(fx->dir, "events.lua", NULL);
	GError *gerr = NULL;
	char *error = NULL;

	g_file_set_contents(path, source, -1, &gerr);
	g_assert_no_error(gerr);
	mp_strlist_add(&fx->cfg.scripts, path);
	g_free(path);
	fx->lua = mp_lua_new(fx->loop, &fx->cfg, hook_names, &error);
	if (fx->lua == NULL)
		g_error("mp_lua_new: %s", error);
}

static char *
log_text(struct fx *fx)
{
	char *text = NULL;
	GError *error = NULL;

	g_file_get_contents(fx->log_path, &text, NULL, &error);
	g_assert_no_error(error);
	return text;
}

static void
assert_log_has(struct fx *fx, const char *needle)
{
	char *text = log_text(fx);

	if (strstr(text, needle) == NULL)
		g_error("log lacks \"%s\":\n%s", needle, text);
	g_free(text);
}

static void
assert_log_lacks(struct fx *fx, const char *needle)
{
	char *text = log_text(fx);

	if (strstr(text, needle) != NULL)
		g_error("log has \"%s\":\n%s", needle, text);
	g_free(text);
}

static void
guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	g_error("the loop did not finish in %g s", GUARD_SECONDS);
}

/* Runs the loop until no notification is queued or running. */
static void
drain(struct fx *fx)
{
	ev_timer guard;

	ev_timer_init(&guard, guard_cb, GUARD_SECONDS, 0.0);
	ev_timer_start(fx->loop, &guard);
	while (mp_events_pending(fx->lua) > 0)
		ev_run(fx->loop, EVRUN_ONCE);
	ev_timer_stop(fx->loop, &guard);
}

static const struct mp_event_who who = {"imap", "alice@example.org",
					"SESSION1"};
static const uint32_t uids[] = {3, 5, 8};

/* ---- the queue -------------------------------------------------------- */

static void
test_queue_bound(struct fx *fx, gconstpointer data)
{
	size_t extra = 5;

	load(fx, "local n = 0\n"
		 "moonpost.hook('mailbox.expunge', function(e)\n"
		 "  n = n + 1\n"
		 "  if n % 10000 == 0 or n > 10000 then\n"
		 "    moonpost.log('count=' .. n)\n"
		 "  end\n"
		 "end)\n");
	/* Nothing runs before the loop does: the queue fills. */
	for (size_t i = 0; i < MP_EVENTS_QUEUE_MAX + extra; i++)
		mp_event_mailbox_expunge(fx->lua, &who, "INBOX", 1, uids, 3);
	g_assert_cmpuint(mp_events_pending(fx->lua), ==, MP_EVENTS_QUEUE_MAX);
	g_assert_cmpuint(mp_events_dropped(fx->lua), ==, extra);
	assert_log_has(fx, "event=events_dropped hook=mailbox.expunge "
			   "dropped=1 queue_max=10000");
	drain(fx);
	assert_log_has(fx, "msg=\"count=10000\"");
	assert_log_lacks(fx, "count=10001");
	/* Room again once drained. */
	mp_event_mailbox_expunge(fx->lua, &who, "INBOX", 1, uids, 3);
	drain(fx);
	assert_log_has(fx, "msg=\"count=10001\"");
}

static void
test_queue_running_bound(struct fx *fx, gconstpointer data)
{
	load(fx, "local active, most, done = 0, 0, 0\n"
		 "moonpost.hook('mailbox.create', function(e)\n"
		 "  active = active + 1\n"
		 "  if active > most then most = active end\n"
		 "  moonpost.sleep(0.001)\n"
		 "  active = active - 1\n"
		 "  done = done + 1\n"
		 "  if done == 100 then moonpost.log('most=' .. most) end\n"
		 "end)\n");
	for (int i = 0; i < 100; i++)
		mp_event_mailbox_create(fx->lua, &who, "Archive");
	drain(fx);
	assert_log_has(fx, "msg=\"most=32\"");
}

static void
test_no_handler_is_free(struct fx *fx, gconstpointer data)
{
	load(fx, "moonpost.hook('logout', function() end)\n");
	mp_event_mailbox_expunge(fx->lua, &who, "INBOX", 1, uids, 3);
	mp_event_mailbox_create(NULL, &who, "INBOX");
	g_assert_cmpuint(mp_events_pending(fx->lua), ==, 0);
	g_assert_cmpuint(mp_events_pending(NULL), ==, 0);
}

/* A failing handler is logged with file:line and the queue goes on. */
static void
test_failing_handler(struct fx *fx, gconstpointer data)
{
	load(fx, "moonpost.hook('mailbox.delete', function(e)\n"
		 "  if e.mailbox == 'bad' then error('boom') end\n"
		 "  moonpost.log('deleted ' .. e.mailbox)\n"
		 "end)\n");
	mp_event_mailbox_delete(fx->lua, &who, "bad");
	mp_event_mailbox_delete(fx->lua, &who, "good");
	drain(fx);
	assert_log_has(fx, "event=lua_error hook=mailbox.delete "
			   "session=SESSION1 error=");
	assert_log_has(fx, "events.lua:2: boom");
	assert_log_has(fx, "msg=\"deleted good\"");
}

/* The runtime may be dropped (a reload) with events queued: they run on
 * it, then it goes. */
static void
test_unref_while_queued(struct fx *fx, gconstpointer data)
{
	struct mp_lua *lua;

	load(fx, "moonpost.hook('mailbox.rename', function(e)\n"
		 "  moonpost.sleep(0)\n"
		 "  moonpost.log('renamed ' .. e.old .. ' ' .. e.new)\n"
		 "end)\n");
	lua = fx->lua;
	mp_event_mailbox_rename(lua, &who, "A", "B");
	mp_lua_unref(&fx->lua);
	while (ev_run(fx->loop, EVRUN_ONCE))
		;
	assert_log_has(fx, "msg=\"renamed A B\"");
}

/* Queued and waiting notifications can be dropped at once (the server
 * stops); nothing of them is left on the loop. */
static void
test_abandon(struct fx *fx, gconstpointer data)
{
	load(fx, "moonpost.hook('mailbox.create', function(e)\n"
		 "  moonpost.sleep(30)\n"
		 "  moonpost.log('woke')\n"
		 "end)\n");
	for (int i = 0; i < 40; i++)
		mp_event_mailbox_create(fx->lua, &who, "Archive");
	ev_run(fx->loop, EVRUN_NOWAIT); /* 32 start and sleep */
	g_assert_cmpuint(mp_events_pending(fx->lua), ==, 40);
	mp_events_abandon(fx->lua);
	g_assert_cmpuint(mp_events_pending(fx->lua), ==, 0);
	ev_run(fx->loop, 0); /* returns at once: no watcher is left */
	assert_log_has(fx, "event=events_abandoned count=40");
	assert_log_lacks(fx, "woke");
	mp_events_abandon(fx->lua); /* nothing left: a no-op */
}

/* ---- what the handlers get ------------------------------------------ */

static void
test_fields(struct fx *fx, gconstpointer data)
{
	const struct mp_event_append a = {
		.mailbox = "INBOX",
		.uid = 42,
		.uidvalidity = 1700000000,
		.size = 2048,
		.flags = MS_FLAG_SEEN | MS_FLAG_FLAGGED,
		.keywords = "$Junk work",
		.sender = "ann@example.org",
		.subject = "Lunch?",
	};
	const struct mp_event_flags f = {
		.mailbox = "INBOX",
		.uidvalidity = 7,
		.uids = uids,
		.n = 3,
		.mode = MP_EVENT_FLAGS_REMOVE,
		.flags = MS_FLAG_DELETED,
	};
	const struct mp_session_info info = {
		.service = "pop3",
		.user = "alice@example.org",
		.session_id = "S2",
		.ip = "192.0.2.7",
		.port = 4242,
		.local_ip = "127.0.0.1",
		.local_port = 110,
		.tls = true,
		.mechanism = "PLAIN",
	};
	const struct mp_event_counter counters[] = {{"retrieved", 3},
						    {"deleted", 1}};

	load(fx, "moonpost.hook('mailbox.append', function(e)\n"
		 "  moonpost.log(string.format('append %s %s %s %d %d %d %s "
		 "%s %s %s %s', e.user, e.service, e.mailbox, e.uid, "
		 "e.uidvalidity, e.size, table.concat(e.flags, ','), "
		 "e.sender, e.subject, tostring(e.from), e.session))\n"
		 "end)\n"
		 "moonpost.hook('mailbox.flags', function(e)\n"
		 "  moonpost.log(string.format('flags %s %s %s %d', e.mode, "
		 "table.concat(e.flags, ','), table.concat(e.uids, ','), "
		 "e.uidvalidity))\n"
		 "end)\n"
		 "moonpost.hook('logout', function(s)\n"
		 "  moonpost.log(string.format('logout %s %s %s %d %s %d %s "
		 "%s %d %d', s.user, s.service, s.ip, s.port, s.local_ip, "
		 "s.local_port, tostring(s.tls), s.reason, "
		 "s.counters.retrieved, s.counters.deleted))\n"
		 "end)\n");
	mp_event_mailbox_append(fx->lua, &who, &a);
	mp_event_mailbox_flags(fx->lua, &who, &f);
	mp_event_logout(fx->lua, &info, "quit", counters, 2);
	drain(fx);
	assert_log_has(fx, "append alice@example.org imap INBOX 42 "
			   "1700000000 2048 "
			   "\\\\Seen,\\\\Flagged,$Junk,work ann@example.org "
			   "Lunch? nil SESSION1");
	assert_log_has(fx, "flags remove \\\\Deleted 3,5,8 7");
	assert_log_has(fx, "logout alice@example.org pop3 192.0.2.7 4242 "
			   "127.0.0.1 110 true quit 3 1");
}

/* ---- login ------------------------------------------------------------ */

struct login_result {
	int calls;
	enum mp_login_result result;
	char text[256];
};

static void
login_done(enum mp_login_result result, const char *text, void *ctx)
{
	struct login_result *r = ctx;

	r->calls++;
	r->result = result;
	snprintf(r->text, sizeof(r->text), "%s", text);
}

static const struct mp_session_info login_info = {
	.service = "pop3",
	.user = "bob@example.org",
	.session_id = "S3",
	.ip = "127.0.0.1",
	.mechanism = "USER",
};

static void
login_run(struct fx *fx, struct login_result *r)
{
	struct mp_login_check *c =
		mp_event_login(fx->lua, &login_info, login_done, r);
	ev_timer guard;

	if (c == NULL) {
		g_assert_cmpint(r->calls, ==, 1);
		return;
	}
	ev_timer_init(&guard, guard_cb, GUARD_SECONDS, 0.0);
	ev_timer_start(fx->loop, &guard);
	while (r->calls == 0)
		ev_run(fx->loop, EVRUN_ONCE);
	ev_timer_stop(fx->loop, &guard);
	g_assert_cmpint(r->calls, ==, 1);
}

static void
test_login_no_hook(struct fx *fx, gconstpointer data)
{
	struct login_result r = {0};

	load(fx, "moonpost.hook('logout', function() end)\n");
	g_assert_null(mp_event_login(fx->lua, &login_info, login_done, &r));
	g_assert_cmpint(r.calls, ==, 1);
	g_assert_cmpint(r.result, ==, MP_LOGIN_OK);
	memset(&r, 0, sizeof(r));
	g_assert_null(mp_event_login(NULL, &login_info, login_done, &r));
	g_assert_cmpint(r.result, ==, MP_LOGIN_OK);
}

static const struct login_case {
	const char *body;
	enum mp_login_result result;
	const char *text;
} login_cases[] = {
	{"return nil", MP_LOGIN_OK, ""},
	{"return moonpost.accept()", MP_LOGIN_OK, ""},
	{"return moonpost.reject('go away')", MP_LOGIN_REFUSED, "go away"},
	{"return moonpost.defer('later')", MP_LOGIN_TEMPFAIL, "later"},
	{"return moonpost.disconnect('bye')", MP_LOGIN_DISCONNECT, "bye"},
	{"moonpost.sleep(0) return moonpost.reject('slow no')",
	 MP_LOGIN_REFUSED, "slow no"},
	{"error('oops')", MP_LOGIN_TEMPFAIL, ""},
	{"while true do end", MP_LOGIN_TEMPFAIL, ""},
	{"if s.mechanism == 'USER' and s.user == 'bob@example.org' and "
	 "s.service == 'pop3' and s.session == 'S3' then "
	 "return moonpost.reject('fields ok') end",
	 MP_LOGIN_REFUSED, "fields ok"},
};

static void
test_login_verdicts(struct fx *fx, gconstpointer data)
{
	for (size_t i = 0; i < G_N_ELEMENTS(login_cases); i++) {
		const struct login_case *c = &login_cases[i];
		struct login_result r = {0};
		char *src = g_strdup_printf("moonpost.hook('login', "
					    "function(s)\n%s\nend)\n",
					    c->body);

		mp_lua_unref(&fx->lua);
		mp_strlist_free(&fx->cfg.scripts);
		load(fx, src);
		g_free(src);
		login_run(fx, &r);
		if (r.result != c->result)
			g_error("%s: result %d", c->body, r.result);
		g_assert_cmpstr(r.text, ==, c->text);
	}
	assert_log_has(fx, "event=lua_error hook=login session=S3 "
			   "error=\"");
	assert_log_has(fx, "events.lua:2: oops");
}

static void
test_login_cancel(struct fx *fx, gconstpointer data)
{
	struct login_result r = {0};
	struct mp_login_check *c;

	load(fx, "moonpost.hook('login', function(s)\n"
		 "  moonpost.sleep(0.01)\n"
		 "  return moonpost.reject('no')\n"
		 "end)\n");
	c = mp_event_login(fx->lua, &login_info, login_done, &r);
	g_assert_nonnull(c);
	mp_login_check_cancel(&c);
	g_assert_null(c);
	while (ev_run(fx->loop, EVRUN_ONCE))
		;
	g_assert_cmpint(r.calls, ==, 0);
	mp_login_check_cancel(&c); /* NULL is fine */
}

/* ---- moonpost.http against a server on the same loop ------------------ */

/* A one-connection HTTP server: reads a request, answers `reply`. With
 * reply NULL it accepts and never answers. */
struct web {
	int lfd, fd;
	int port;
	ev_io accept_io, io;
	const char *reply;
	GString *request;
	struct ev_loop *loop;
};

static bool
request_whole(const GString *r)
{
	const char *end = strstr(r->str, "\r\n\r\n");
	const char *cl = strstr(r->str, "Content-Length: ");

	if (end == NULL)
		return false;
	return cl == NULL || r->len >= (size_t)(end + 4 - r->str) +
					       strtoul(cl + 16, NULL, 10);
}

static void
web_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct web *web = w->data;
	char buf[4096];
	ssize_t n = read(web->fd, buf, sizeof(buf));

	if (n > 0)
		g_string_append_len(web->request, buf, n);
	if (n == 0 || (n > 0 && request_whole(web->request))) {
		ev_io_stop(loop, w);
		if (web->reply != NULL) {
			g_assert_cmpint(
				write(web->fd, web->reply, strlen(web->reply)),
				==, (ssize_t)strlen(web->reply));
			close(web->fd);
			web->fd = -1;
		}
	}
}

static void
web_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct web *web = w->data;

	web->fd = accept4(web->lfd, NULL, NULL, SOCK_NONBLOCK);
	g_assert_cmpint(web->fd, >=, 0);
	ev_io_stop(loop, w);
	ev_io_init(&web->io, web_read, web->fd, EV_READ);
	web->io.data = web;
	ev_io_start(loop, &web->io);
}

static void
web_start(struct web *web, struct ev_loop *loop, const char *reply)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);

	memset(web, 0, sizeof(*web));
	web->loop = loop;
	web->reply = reply;
	web->fd = -1;
	web->request = g_string_new("");
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	web->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	g_assert_cmpint(bind(web->lfd, (struct sockaddr *)&sin, len), ==, 0);
	g_assert_cmpint(listen(web->lfd, 4), ==, 0);
	getsockname(web->lfd, (struct sockaddr *)&sin, &len);
	web->port = ntohs(sin.sin_port);
	ev_io_init(&web->accept_io, web_accept, web->lfd, EV_READ);
	web->accept_io.data = web;
	ev_io_start(loop, &web->accept_io);
}

static void
web_stop(struct web *web)
{
	ev_io_stop(web->loop, &web->accept_io);
	ev_io_stop(web->loop, &web->io);
	if (web->fd >= 0)
		close(web->fd);
	close(web->lfd);
	g_string_free(web->request, TRUE);
}

/* Loads a login handler that makes the request `call` (Lua, with PORT
 * replaced) and rejects with what it got, and runs it. */
static void
http_login(struct fx *fx, int port, const char *call, struct login_result *r)
{
	char *src = g_strdup_printf(
		"moonpost.hook('login', function(s)\n"
		"  local url = 'http://127.0.0.1:%d/hook?x=1'\n"
		"  local status, body, headers = %s\n"
		"  if status == nil then return moonpost.reject('error: ' .. "
		"body) end\n"
		"  return moonpost.reject(status .. ' ' .. body .. ' ' .. "
		"tostring(headers['x-one']))\n"
		"end)\n",
		port, call);

	mp_lua_unref(&fx->lua);
	mp_strlist_free(&fx->cfg.scripts);
	load(fx, src);
	g_free(src);
	memset(r, 0, sizeof(*r));
	login_run(fx, r);
}

static void
test_http_post(struct fx *fx, gconstpointer data)
{
	struct web web;
	struct login_result r;

	web_start(&web, fx->loop,
		  "HTTP/1.1 201 Created\r\nX-One: 1\r\nx-one: 2\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n3\r\nyes\r\n0\r\n\r\n");
	http_login(fx, web.port,
		   "moonpost.http.post(url, '{\"a\":1}', {content_type = "
		   "'application/json', headers = {['X-Token'] = 'abc'}})",
		   &r);
	g_assert_cmpint(r.result, ==, MP_LOGIN_REFUSED);
	g_assert_cmpstr(r.text, ==, "201 yes 1, 2");
	g_assert_nonnull(
		strstr(web.request->str, "POST /hook?x=1 HTTP/1.1\r\n"));
	g_assert_nonnull(
		strstr(web.request->str, "Content-Type: application/json\r\n"));
	g_assert_nonnull(strstr(web.request->str, "X-Token: abc\r\n"));
	g_assert_true(g_str_has_suffix(web.request->str,
				       "Content-Length: 7\r\n"
				       "Content-Type: application/json\r\n"
				       "X-Token: abc\r\n\r\n{\"a\":1}"));
	web_stop(&web);
}

static void
test_http_get_eof(struct fx *fx, gconstpointer data)
{
	struct web web;
	struct login_result r;

	web_start(&web, fx->loop, "HTTP/1.0 404 Not Found\r\n\r\nnope");
	http_login(fx, web.port, "moonpost.http.get(url)", &r);
	g_assert_cmpstr(r.text, ==, "404 nope nil");
	g_assert_true(g_str_has_prefix(web.request->str,
				       "GET /hook?x=1 HTTP/1.1\r\n"));
	web_stop(&web);
}

static void
test_http_errors(struct fx *fx, gconstpointer data)
{
	struct web web;
	struct login_result r;
	int port;

	/* Nothing listens: refused. */
	web_start(&web, fx->loop, NULL);
	port = web.port;
	web_stop(&web);
	http_login(fx, port, "moonpost.http.get(url)", &r);
	g_assert_true(g_str_has_prefix(r.text, "error: connecting to "
					       "127.0.0.1:"));
	g_assert_nonnull(strstr(r.text, "refused"));
	/* A server that never answers: the request's own timeout. */
	web_start(&web, fx->loop, NULL);
	http_login(fx, web.port, "moonpost.http.get(url, {timeout = 0.05})",
		   &r);
	g_assert_true(g_str_has_suffix(r.text, "timed out after 0.05 s"));
	web_stop(&web);
	/* Garbage. */
	web_start(&web, fx->loop, "SMTP/1.0 220 hello\r\n\r\n");
	http_login(fx, web.port, "moonpost.http.get(url)", &r);
	g_assert_cmpstr(r.text, ==, "error: malformed status line");
	web_stop(&web);
	/* No resolver in this runtime. */
	http_login(fx, 80, "moonpost.http.get('http://example.org/')", &r);
	g_assert_nonnull(strstr(r.text, "no resolver"));
}

/* The call's own timeout ends a request that hangs: the call fails (and
 * the socket is closed, which valgrind and ASan check). */
static void
test_http_call_timeout(struct fx *fx, gconstpointer data)
{
	struct web web;
	struct login_result r;

	fx->cfg.timeout = 100;
	web_start(&web, fx->loop, NULL);
	http_login(fx, web.port, "moonpost.http.get(url, {timeout = 60})", &r);
	g_assert_cmpint(r.result, ==, MP_LOGIN_TEMPFAIL);
	assert_log_has(fx, "timed out after 100 ms (waiting on "
			   "moonpost.http)");
	web_stop(&web);
}

static void
test_http_bad_args(struct fx *fx, gconstpointer data)
{
	static const char *const calls[] = {
		"moonpost.http.get('https://example.org/')",
		"moonpost.http.get('ftp://x/')",
		"moonpost.http.post(url, {})",
		"moonpost.http.post(url, 'x', {headers = {Host = 'evil'}})",
		"moonpost.http.post(url, 'x', {headers = {['X-A'] = 'a\\r\\nB: "
		"c'}})",
		"moonpost.http.get(url, {timeout = -1})",
		"moonpost.http.get(url, 5)",
	};

	for (size_t i = 0; i < G_N_ELEMENTS(calls); i++) {
		struct login_result r;

		http_login(fx, 9, calls[i], &r);
		if (r.result != MP_LOGIN_TEMPFAIL)
			g_error("%s: result %d %s", calls[i], r.result, r.text);
	}
	assert_log_has(fx, "https is not supported yet");
	assert_log_has(fx, "events.lua:3:");
}

static void
test_http_top_level(struct fx *fx, gconstpointer data)
{
	char *error = NULL;
	char *path = g_build_filename(fx->dir, "top.lua", NULL);

	g_file_set_contents(path, "moonpost.http.get('http://127.0.0.1/')\n",
			    -1, NULL);
	mp_strlist_add(&fx->cfg.scripts, path);
	g_free(path);
	g_assert_null(mp_lua_new(fx->loop, &fx->cfg, hook_names, &error));
	g_assert_nonnull(strstr(error, "only inside a hook"));
	free(error);
}

#define ADD(path, fn)                                                          \
	g_test_add(path, struct fx, NULL, fx_setup, fn, fx_teardown)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("/events/queue/bound", test_queue_bound);
	ADD("/events/queue/running-bound", test_queue_running_bound);
	ADD("/events/queue/no-handler", test_no_handler_is_free);
	ADD("/events/queue/failing-handler", test_failing_handler);
	ADD("/events/queue/unref-while-queued", test_unref_while_queued);
	ADD("/events/queue/abandon", test_abandon);
	ADD("/events/fields", test_fields);
	ADD("/events/login/no-hook", test_login_no_hook);
	ADD("/events/login/verdicts", test_login_verdicts);
	ADD("/events/login/cancel", test_login_cancel);
	ADD("/events/http/post", test_http_post);
	ADD("/events/http/get-eof", test_http_get_eof);
	ADD("/events/http/errors", test_http_errors);
	ADD("/events/http/call-timeout", test_http_call_timeout);
	ADD("/events/http/bad-args", test_http_bad_args);
	ADD("/events/http/top-level", test_http_top_level);
	return g_test_run();
}
