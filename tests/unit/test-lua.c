/* test-lua.c - unit tests of the Lua runtime, its sandbox and hook calls. */
#include "config.h"

#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <glib.h>
#include <lauxlib.h>
#include <lua.h>

#include <moonpost/log.h>
#include <moonpost/lua.h>

static const char *const hook_names[] = {
	"smtp.connect", "smtp.helo", "smtp.mail", "smtp.rcpt",
	"smtp.data",    "deliver",   NULL,
};

/* Upper bound for anything the loop waits on; tests never assert a
 * duration, this only turns a hang into a failure. */
#define GUARD_SECONDS 60.0

/* ---- fixture --------------------------------------------------------- */

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
	fx->dir = g_dir_make_tmp("mp-lua-XXXXXX", &error);
	g_assert_no_error(error);
	fx->log_path = g_build_filename(fx->dir, "log", NULL);
	fx->log_fd = open(fx->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	g_assert_cmpint(fx->log_fd, >=, 0);
	mp_log_set_fd(fx->log_fd);
	mp_log_set_level(MP_LOG_INFO);
	fx->loop = ev_loop_new(EVFLAG_AUTO);
	g_assert_nonnull(fx->loop);
	fx->cfg.memory = 8u << 20;
	fx->cfg.memory_total = 64u << 20;
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
	mp_log_set_level(MP_LOG_INFO);
	close(fx->log_fd);
	nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	g_free(fx->log_path);
	g_free(fx->dir);
}

/* Writes a script into the test directory and appends it to the config. */
static void
add_script(struct fx *fx, const char *name, const char *source)
{
	char *path = g_build_filename(fx->dir, name, NULL);
	GError *error = NULL;

	g_file_set_contents(path, source, -1, &error);
	g_assert_no_error(error);
	mp_strlist_add(&fx->cfg.scripts, path);
	g_free(path);
}

static void
load(struct fx *fx)
{
	char *error = NULL;

	fx->lua = mp_lua_new(fx->loop, &fx->cfg, hook_names, &error);
	if (fx->lua == NULL)
		g_error("mp_lua_new: %s", error);
	g_assert_null(error);
}

/* Loads, expecting failure; returns the message (caller frees). */
static char *
load_error(struct fx *fx)
{
	char *error = NULL;

	fx->lua = mp_lua_new(fx->loop, &fx->cfg, hook_names, &error);
	g_assert_null(fx->lua);
	g_assert_nonnull(error);
	return error;
}

/* Replaces the scripts with one file, case.lua, that registers body as the
 * smtp.rcpt handler, and loads it. */
static void
load_handler(struct fx *fx, const char *body)
{
	char *src = g_strdup_printf("moonpost.hook(\"smtp.rcpt\", "
				    "function(...)\n%s\nend)\n",
				    body);

	mp_lua_unref(&fx->lua);
	mp_strlist_free(&fx->cfg.scripts);
	add_script(fx, "case.lua", src);
	g_free(src);
	load(fx);
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
log_clear(struct fx *fx)
{
	g_assert_cmpint(ftruncate(fx->log_fd, 0), ==, 0);
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

/* Returns the watchers-left state of the loop: ev_run() without flags
 * returns at once only when nothing is active. Used after a call ended to
 * prove its timers are gone (a leak would fire later and touch freed
 * memory, or hang here until the guard in the caller's test fails). */
static void
assert_loop_idle(struct fx *fx)
{
	ev_run(fx->loop, 0);
}

/* ---- calls ----------------------------------------------------------- */

struct result {
	int calls;
	int pushes;
	struct mp_verdict v;
	const char *args[4];
	int nargs;
	bool push_fails;
	struct mp_lua **drop; /* unref this in done */
	struct fx *chain;     /* start a smtp.mail call in done */
	struct result *chained;
};

static int
push_args(lua_State *L, void *ctx)
{
	struct result *r = ctx;

	r->pushes++;
	if (r->push_fails)
		return luaL_error(L, "no arguments today");
	for (int i = 0; i < r->nargs; i++)
		lua_pushstring(L, r->args[i]);
	lua_pushinteger(L, 42);
	return r->nargs + 1;
}

static void on_done(const struct mp_verdict *v, void *ctx);

static void
on_done(const struct mp_verdict *v, void *ctx)
{
	struct result *r = ctx;

	r->calls++;
	r->v = *v;
	if (r->drop != NULL)
		mp_lua_unref(r->drop);
	if (r->chain != NULL) {
		struct mp_lua_call *c =
			mp_lua_call_hook(r->chain->lua, "smtp.mail", "S2",
					 push_args, on_done, r->chained);
		g_assert_null(c);
	}
}

static struct mp_lua_call *
start(struct fx *fx, const char *hook, struct result *r)
{
	return mp_lua_call_hook(fx->lua, hook, "S1", push_args, on_done, r);
}

/* Calls hook, expecting the verdict before the call returns. */
static void
call_sync(struct fx *fx, const char *hook, struct result *r)
{
	memset(&r->v, 0xa5, sizeof(r->v));
	g_assert_null(start(fx, hook, r));
	g_assert_cmpint(r->calls, ==, 1);
}

static void
guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	*(bool *)w->data = true;
}

/* Runs the loop until r has its verdict. */
static void
run_until_done(struct fx *fx, struct result *r, int calls)
{
	bool expired = false;
	ev_timer guard;

	ev_timer_init(&guard, guard_cb, GUARD_SECONDS, 0.0);
	guard.data = &expired;
	ev_timer_start(fx->loop, &guard);
	while (r->calls < calls && !expired)
		ev_run(fx->loop, EVRUN_ONCE);
	ev_timer_stop(fx->loop, &guard);
	g_assert_false(expired);
	g_assert_cmpint(r->calls, ==, calls);
}

/* Calls hook, expecting it to wait, and runs the loop until it ends. */
static void
call_async(struct fx *fx, const char *hook, struct result *r)
{
	g_assert_nonnull(start(fx, hook, r));
	g_assert_cmpint(r->calls, ==, 0);
	run_until_done(fx, r, 1);
}

static void
assert_verdict(const struct mp_verdict *v, enum mp_verdict_kind kind, int code,
	       const char *enhanced, const char *text)
{
	g_assert_cmpstr(mp_verdict_name(v->kind), ==, mp_verdict_name(kind));
	g_assert_cmpint(v->code, ==, code);
	g_assert_cmpstr(v->enhanced, ==, enhanced);
	g_assert_cmpstr(v->text, ==, text);
}

static void
assert_tempfail(const struct mp_verdict *v)
{
	g_assert_cmpstr(mp_verdict_name(v->kind), ==, "tempfail");
	g_assert_cmpint(v->code, ==, 0);
	g_assert_cmpstr(v->text, !=, "");
}

/* Loads body as the smtp.rcpt handler and expects TEMPFAIL, synchronously,
 * with needle in the error line. */
static void
expect_tempfail(struct fx *fx, const char *body, const char *needle)
{
	struct result r = {0};

	log_clear(fx);
	load_handler(fx, body);
	call_sync(fx, "smtp.rcpt", &r);
	if (r.v.kind != MP_VERDICT_TEMPFAIL)
		g_error("%s: got %s, not tempfail", body,
			mp_verdict_name(r.v.kind));
	assert_tempfail(&r.v);
	assert_log_has(fx, "event=lua_error");
	if (needle != NULL)
		assert_log_has(fx, needle);
}

/* Loads body as the smtp.rcpt handler and expects ACCEPT. */
static void
expect_accept(struct fx *fx, const char *body)
{
	struct result r = {0};

	load_handler(fx, body);
	call_sync(fx, "smtp.rcpt", &r);
	if (r.v.kind != MP_VERDICT_ACCEPT)
		g_error("%s: got %s (%s)", body, mp_verdict_name(r.v.kind),
			r.v.text);
}

/* ---- loading --------------------------------------------------------- */

static void
test_load_ok(struct fx *fx, gconstpointer data)
{
	add_script(fx, "a.lua", "moonpost.hook('smtp.rcpt', function() end)\n");
	add_script(fx, "b.lua",
		   "moonpost.hook('smtp.rcpt', function() end)\n"
		   "moonpost.hook('deliver', function() end)\n");
	load(fx);
	g_assert_true(mp_lua_has_hook(fx->lua, "smtp.rcpt"));
	g_assert_true(mp_lua_has_hook(fx->lua, "deliver"));
	g_assert_false(mp_lua_has_hook(fx->lua, "smtp.mail"));
	g_assert_false(mp_lua_has_hook(fx->lua, "no.such.hook"));
	g_assert_nonnull(mp_lua_state(fx->lua));
	g_assert_cmpuint(mp_lua_calls_pending(fx->lua), ==, 0);
}

static void
test_load_no_scripts(struct fx *fx, gconstpointer data)
{
	struct result r = {0};

	load(fx);
	call_sync(fx, "smtp.rcpt", &r);
	assert_verdict(&r.v, MP_VERDICT_CONTINUE, 0, "", "");
}

static const struct load_error_case {
	const char *source;
	const char *needle;
} load_error_cases[] = {
	{"local x = = 1\n", "bad.lua:1:"},
	{"local x = 1\nlocal t = nil\nlocal y = t.field\n",
	 "bad.lua:3: attempt to index a nil value"},
	{"\nerror('boom')\n", "bad.lua:2: boom"},
	{"moonpost.hook('smtp.rcp', function() end)\n",
	 "bad.lua:1: unknown hook 'smtp.rcp'"},
	{"moonpost.hook('smtp.rcpt', 42)\n", "function expected"},
	{"moonpost.hook(nil, function() end)\n", "string expected"},
	{"string.upper = nil\n", "bad.lua:1: cannot set 'upper'"},
	{"moonpost.sleep(0)\n", "only a hook handler can wait"},
	{"while true do end\n", "bad.lua:1: instruction budget"},
	{"local t = {}\nfor i = 1, 1e8 do t[i] = i end\n",
	 "bad.lua:2: not enough memory"},
	{"local s = string.rep('x', 1e9)\n", "not enough memory"},
	{"require('os')\n", "bad.lua:1:"},
};

static void
test_load_errors(struct fx *fx, gconstpointer data)
{
	for (size_t i = 0; i < G_N_ELEMENTS(load_error_cases); i++) {
		const struct load_error_case *c = &load_error_cases[i];
		char *error;

		mp_strlist_free(&fx->cfg.scripts);
		add_script(fx, "bad.lua", c->source);
		error = load_error(fx);
		if (strstr(error, c->needle) == NULL)
			g_error("case %zu: \"%s\" lacks \"%s\"", i, error,
				c->needle);
		g_free(error);
	}
}

static void
test_load_missing_file(struct fx *fx, gconstpointer data)
{
	char *error;

	mp_strlist_add(&fx->cfg.scripts, "/nonexistent/rules.lua");
	error = load_error(fx);
	g_assert_nonnull(strstr(error, "cannot open /nonexistent/rules.lua"));
	g_free(error);
}

static void
test_load_second_fails(struct fx *fx, gconstpointer data)
{
	char *error;

	add_script(fx, "good.lua",
		   "moonpost.hook('smtp.rcpt', function() "
		   "end)\n");
	add_script(fx, "worse.lua", "\n\nlocal x = nil + 1\n");
	error = load_error(fx);
	g_assert_nonnull(strstr(error, "worse.lua:3:"));
	g_free(error);
}

static void
test_load_total_too_small(struct fx *fx, gconstpointer data)
{
	char *error;

	fx->cfg.memory_total = 4096;
	error = load_error(fx);
	g_assert_cmpstr(error, !=, "");
	g_free(error);
}

/* ---- hook calls ------------------------------------------------------ */

static void
test_hook_none(struct fx *fx, gconstpointer data)
{
	struct result r = {0};

	add_script(fx, "a.lua",
		   "moonpost.hook('smtp.rcpt', function() "
		   "return moonpost.accept() end)\n");
	load(fx);
	call_sync(fx, "smtp.mail", &r);
	assert_verdict(&r.v, MP_VERDICT_CONTINUE, 0, "", "");
	g_assert_cmpint(r.pushes, ==, 0);
	r.calls = 0;
	call_sync(fx, "no.such.hook", &r);
	g_assert_cmpint(r.v.kind, ==, MP_VERDICT_CONTINUE);
	g_assert_cmpuint(mp_lua_calls_pending(fx->lua), ==, 0);
}

static void
test_hook_register_late(struct fx *fx, gconstpointer data)
{
	expect_tempfail(fx, "moonpost.hook('smtp.mail', function() end)",
			"only be registered while scripts load");
	assert_log_has(fx, "case.lua:2:");
}

static void
test_hook_order(struct fx *fx, gconstpointer data)
{
	struct result r = {0};
	char *text, *h1, *h2, *h3;

	add_script(fx, "a.lua",
		   "moonpost.hook('smtp.rcpt', function() "
		   "moonpost.log('h1') end)\n"
		   "moonpost.hook('smtp.rcpt', function() "
		   "moonpost.log('h2') return moonpost.continue() end)\n");
	add_script(fx, "b.lua",
		   "moonpost.hook('smtp.rcpt', function() moonpost.log('h3') "
		   "return moonpost.reject(550, 'from h3') end)\n"
		   "moonpost.hook('smtp.rcpt', function() moonpost.log('h4') "
		   "return moonpost.accept() end)\n");
	load(fx);
	call_sync(fx, "smtp.rcpt", &r);
	assert_verdict(&r.v, MP_VERDICT_REJECT, 550, "", "from h3");
	text = log_text(fx);
	h1 = strstr(text, "msg=h1");
	h2 = strstr(text, "msg=h2");
	h3 = strstr(text, "msg=h3");
	g_assert_nonnull(h1);
	g_assert_true(h1 < h2 && h2 < h3);
	g_assert_null(strstr(text, "msg=h4"));
	g_free(text);
}

static void
test_hook_args(struct fx *fx, gconstpointer data)
{
	struct result r = {.args = {"x@example.org", "y"}, .nargs = 2};

	add_script(fx, "a.lua",
		   "moonpost.hook('smtp.rcpt', function(a, b, n)\n"
		   "  if a ~= 'x@example.org' or b ~= 'y' or n ~= 42 then\n"
		   "    error('first handler saw ' .. tostring(a))\n"
		   "  end\n"
		   "  a = 'changed'\n"
		   "end)\n"
		   "moonpost.hook('smtp.rcpt', function(a, b, n, extra)\n"
		   "  assert(extra == nil)\n"
		   "  return moonpost.reject(550, a .. ' ' .. b .. ' ' .. n)\n"
		   "end)\n");
	load(fx);
	call_sync(fx, "smtp.rcpt", &r);
	assert_verdict(&r.v, MP_VERDICT_REJECT, 550, "", "x@example.org y 42");
	g_assert_cmpint(r.pushes, ==, 1);
}

static void
test_hook_push_fails(struct fx *fx, gconstpointer data)
{
	struct result r = {.push_fails = true};

	add_script(fx, "a.lua",
		   "moonpost.hook('smtp.rcpt', function() "
		   "return moonpost.accept() end)\n");
	load(fx);
	call_sync(fx, "smtp.rcpt", &r);
	assert_tempfail(&r.v);
	assert_log_has(fx, "no arguments today");
}

static void
test_hook_session_in_logs(struct fx *fx, gconstpointer data)
{
	struct result r = {0};

	add_script(fx, "a.lua",
		   "moonpost.log('loading')\n"
		   "moonpost.hook('smtp.rcpt', function()\n"
		   "  moonpost.log('plain')\n"
		   "  moonpost.log('warn', 'two\\r\\nlines')\n"
		   "  moonpost.log('debug', 'hidden')\n"
		   "  moonpost.log('ERROR', 'loud')\n"
		   "end)\n");
	load(fx);
	call_sync(fx, "smtp.rcpt", &r);
	g_assert_cmpint(r.v.kind, ==, MP_VERDICT_CONTINUE);
	assert_log_has(fx, "level=info event=script hook=- session=- "
			   "msg=loading");
	assert_log_has(fx, "level=info event=script hook=smtp.rcpt "
			   "session=S1 msg=plain\n");
	assert_log_has(fx, "level=warn event=script hook=smtp.rcpt "
			   "session=S1 msg=\"two\\r\\nlines\"\n");
	assert_log_has(fx, "level=error event=script hook=smtp.rcpt "
			   "session=S1 msg=loud\n");
	assert_log_lacks(fx, "hidden");
	expect_tempfail(fx, "moonpost.log('loudest', 'x')", "level must be");
}

static void
test_hook_reentrant_done(struct fx *fx, gconstpointer data)
{
	struct result second = {0};
	struct result first = {.chain = fx, .chained = &second};

	add_script(fx, "a.lua",
		   "moonpost.hook('smtp.rcpt', function() "
		   "return moonpost.reject(550, 'one') end)\n"
		   "moonpost.hook('smtp.mail', function() "
		   "return moonpost.reject(551, 'two') end)\n");
	load(fx);
	call_sync(fx, "smtp.rcpt", &first);
	assert_verdict(&first.v, MP_VERDICT_REJECT, 550, "", "one");
	g_assert_cmpint(second.calls, ==, 1);
	assert_verdict(&second.v, MP_VERDICT_REJECT, 551, "", "two");
}

/* ---- verdicts -------------------------------------------------------- */

static const struct verdict_case {
	const char *expr;
	enum mp_verdict_kind kind;
	int code;
	const char *enhanced;
	const char *text;
} verdict_cases[] = {
	{"nil", MP_VERDICT_CONTINUE, 0, "", ""},
	{"moonpost.continue()", MP_VERDICT_CONTINUE, 0, "", ""},
	{"moonpost.accept()", MP_VERDICT_ACCEPT, 0, "", ""},
	{"moonpost.reject('go away')", MP_VERDICT_REJECT, 0, "", "go away"},
	{"moonpost.reject(550, 'go away')", MP_VERDICT_REJECT, 550, "",
	 "go away"},
	{"moonpost.reject(550, '5.7.1', 'go away')", MP_VERDICT_REJECT, 550,
	 "5.7.1", "go away"},
	{"moonpost.reject(553, '5.1.10', 'bad')", MP_VERDICT_REJECT, 553,
	 "5.1.10", "bad"},
	{"moonpost.reject(554, '5.123.456', 'x')", MP_VERDICT_REJECT, 554,
	 "5.123.456", "x"},
	{"moonpost.reject(450, '4.2.0', 'busy')", MP_VERDICT_REJECT, 450,
	 "4.2.0", "busy"},
	{"moonpost.reject(550.0, 'float')", MP_VERDICT_REJECT, 550, "",
	 "float"},
	{"moonpost.reject(599, '')", MP_VERDICT_REJECT, 599, "", ""},
	{"moonpost.defer()", MP_VERDICT_DEFER, 0, "", ""},
	{"moonpost.defer('greylisted')", MP_VERDICT_DEFER, 0, "", "greylisted"},
	{"moonpost.defer(451, '4.7.1', 'greylisted')", MP_VERDICT_DEFER, 451,
	 "4.7.1", "greylisted"},
	{"moonpost.disconnect()", MP_VERDICT_DISCONNECT, 0, "", ""},
	{"moonpost.disconnect('bye')", MP_VERDICT_DISCONNECT, 0, "", "bye"},
};

static void
test_verdict_kinds(struct fx *fx, gconstpointer data)
{
	for (size_t i = 0; i < G_N_ELEMENTS(verdict_cases); i++) {
		const struct verdict_case *c = &verdict_cases[i];
		char *body = g_strdup_printf("return %s", c->expr);
		struct result r = {0};

		load_handler(fx, body);
		call_sync(fx, "smtp.rcpt", &r);
		assert_verdict(&r.v, c->kind, c->code, c->enhanced, c->text);
		g_free(body);
	}
}

static const char *const bad_verdict_args[] = {
	"moonpost.reject()",
	"moonpost.reject(550)",
	"moonpost.reject(250, 'ok')",
	"moonpost.reject(399, 'x')",
	"moonpost.reject(600, 'x')",
	"moonpost.reject(550.5, 'x')",
	"moonpost.reject('550', 'x')",
	"moonpost.reject(550, '4.7.1', 'class differs')",
	"moonpost.reject(550, '5.7', 'x')",
	"moonpost.reject(550, '5.7.', 'x')",
	"moonpost.reject(550, '5..1', 'x')",
	"moonpost.reject(550, '5.1234.1', 'x')",
	"moonpost.reject(550, '5.1.1234', 'x')",
	"moonpost.reject(550, '5.7.1 ', 'x')",
	"moonpost.reject(550, '5.7.1\\0', 'x')",
	"moonpost.reject(550, 'x.7.1', 'x')",
	"moonpost.reject(550, 5.71, 'x')",
	"moonpost.reject(550, '5.7.1', 42)",
	"moonpost.reject(550, '5.7.1', 'x', 'y')",
	"moonpost.defer(550, 'must be 4xx')",
	"moonpost.accept('no text')",
	"moonpost.continue(1)",
	"moonpost.disconnect('a', 'b')",
	"moonpost.disconnect(false)",
};

static void
test_verdict_bad_args(struct fx *fx, gconstpointer data)
{
	for (size_t i = 0; i < G_N_ELEMENTS(bad_verdict_args); i++) {
		char *body = g_strdup_printf("return %s", bad_verdict_args[i]);

		expect_tempfail(fx, body, "case.lua:2:");
		g_free(body);
	}
}

static const char *const bad_returns[] = {
	"return 42",    "return 'accept'",        "return {}",
	"return false", "return moonpost.accept", "return true, 1",
};

static void
test_verdict_bad_return(struct fx *fx, gconstpointer data)
{
	for (size_t i = 0; i < G_N_ELEMENTS(bad_returns); i++)
		expect_tempfail(fx, bad_returns[i], "not a verdict");
	/* The message names the handler that returned it. */
	assert_log_has(fx, "case.lua:1: handler returned a boolean value");
}

static void
test_verdict_sanitize(struct fx *fx, gconstpointer data)
{
	struct result r = {0};
	char want[MP_VERDICT_TEXT_MAX];

	load_handler(fx, "return moonpost.reject(550, '5.7.1', "
			 "'no\\r\\n250 OK\\0\\tend\\127!')");
	call_sync(fx, "smtp.rcpt", &r);
	assert_verdict(&r.v, MP_VERDICT_REJECT, 550, "5.7.1", "no250 OKend!");

	r.calls = 0;
	load_handler(fx, "return moonpost.defer(string.rep('a', 1000))");
	call_sync(fx, "smtp.rcpt", &r);
	g_assert_cmpuint(strlen(r.v.text), ==, MP_VERDICT_TEXT_MAX - 1);

	/* A two-byte character that does not fit whole is left out. */
	r.calls = 0;
	load_handler(fx, "return moonpost.defer(string.rep('a', 254) .. "
			 "'\\u{e9}')");
	call_sync(fx, "smtp.rcpt", &r);
	memset(want, 'a', 254);
	want[254] = '\0';
	g_assert_cmpstr(r.v.text, ==, want);

	r.calls = 0;
	load_handler(fx, "return moonpost.defer(string.rep('a', 253) .. "
			 "'\\u{e9}')");
	call_sync(fx, "smtp.rcpt", &r);
	memcpy(want + 253, "\xc3\xa9", 3);
	g_assert_cmpstr(r.v.text, ==, want);
}

static void
test_verdict_readable(struct fx *fx, gconstpointer data)
{
	expect_accept(fx, "local v = moonpost.reject(550, '5.7.1', 'no')\n"
			  "assert(v.kind == 'reject' and v.code == 550)\n"
			  "assert(v.enhanced == '5.7.1' and v.text == 'no')\n"
			  "assert(tostring(v) == 'reject 550 5.7.1 no')\n"
			  "assert(v.other == nil)\n"
			  "assert(getmetatable(v) == false)\n"
			  "assert(not pcall(function() v.code = 250 end))\n"
			  "return moonpost.accept()");
}

static void
test_verdict_names(void)
{
	g_assert_cmpstr(mp_verdict_name(MP_VERDICT_CONTINUE), ==, "continue");
	g_assert_cmpstr(mp_verdict_name(MP_VERDICT_ACCEPT), ==, "accept");
	g_assert_cmpstr(mp_verdict_name(MP_VERDICT_REJECT), ==, "reject");
	g_assert_cmpstr(mp_verdict_name(MP_VERDICT_DEFER), ==, "defer");
	g_assert_cmpstr(mp_verdict_name(MP_VERDICT_DISCONNECT), ==,
			"disconnect");
	g_assert_cmpstr(mp_verdict_name(MP_VERDICT_TEMPFAIL), ==, "tempfail");
	g_assert_cmpstr(mp_verdict_name((enum mp_verdict_kind)99), ==,
			"unknown");
}

/* ---- errors ---------------------------------------------------------- */

static void
test_error_file_line(struct fx *fx, gconstpointer data)
{
	struct result r = {0};

	add_script(fx, "err.lua",
		   "moonpost.hook('smtp.rcpt', function()\n"
		   "  local t = nil\n"
		   "  return t.field\n"
		   "end)\n");
	load(fx);
	call_sync(fx, "smtp.rcpt", &r);
	assert_tempfail(&r.v);
	assert_log_has(fx, "level=error event=lua_error hook=smtp.rcpt "
			   "session=S1 error=\"");
	assert_log_has(fx, "err.lua:3: attempt to index a nil value");
	assert_log_lacks(fx, "event=lua_traceback");
}

static void
test_error_object(struct fx *fx, gconstpointer data)
{
	expect_tempfail(fx, "error({})",
			"case.lua:2: (error object is a table value)");
	expect_tempfail(fx, "error('bare', 0)", "error=bare\n");
}

static void
test_error_traceback(struct fx *fx, gconstpointer data)
{
	struct result r = {0};

	mp_log_set_level(MP_LOG_DEBUG);
	add_script(fx, "err.lua",
		   "local function inner()\n"
		   "  error('deep')\n"
		   "end\n"
		   "moonpost.hook('smtp.rcpt', function()\n"
		   "  inner()\n"
		   "end)\n");
	load(fx);
	call_sync(fx, "smtp.rcpt", &r);
	assert_tempfail(&r.v);
	assert_log_has(fx, "err.lua:2: deep");
	assert_log_has(fx, "level=debug event=lua_traceback hook=smtp.rcpt "
			   "session=S1 frame=");
	assert_log_has(fx, "err.lua:5: in function");
}

/* ---- bounds ---------------------------------------------------------- */

static void
test_budget_loop(struct fx *fx, gconstpointer data)
{
	fx->cfg.instructions = 100000;
	expect_tempfail(fx, "local n = 0\nwhile true do n = n + 1 end",
			"case.lua:3: instruction budget of 100000 exceeded");
}

static void
test_budget_pcall(struct fx *fx, gconstpointer data)
{
	fx->cfg.instructions = 100000;
	/* Nothing after the caught error runs, not even to log. */
	expect_tempfail(fx,
			"pcall(function() while true do end end)\n"
			"moonpost.log('survived')\n"
			"return moonpost.accept()",
			"instruction budget");
	assert_log_lacks(fx, "survived");
	expect_tempfail(fx,
			"for i = 1, 100 do\n"
			"  xpcall(function() while true do end end,\n"
			"         function(e) return e end)\n"
			"end\n"
			"return moonpost.accept()",
			"instruction budget");
	expect_tempfail(fx,
			"local ok = false\n"
			"while not ok do ok = pcall(function() end) end\n"
			"pcall(function() while true do end end)\n"
			"return",
			"instruction budget");
}

static void
test_budget_per_call(struct fx *fx, gconstpointer data)
{
	struct result r = {0};

	/* One FORLOOP instruction per iteration: 60% of the budget. */
	fx->cfg.instructions = 200000;
	add_script(fx, "a.lua",
		   "local function work() for i = 1, 120000 do end end\n"
		   "moonpost.hook('smtp.mail', function() work() end)\n"
		   "moonpost.hook('smtp.rcpt', function() work() end)\n"
		   "moonpost.hook('smtp.rcpt', function() work() end)\n");
	load(fx);
	/* Each call has its own budget... */
	for (int i = 0; i < 3; i++) {
		call_sync(fx, "smtp.mail", &r);
		g_assert_cmpint(r.v.kind, ==, MP_VERDICT_CONTINUE);
		r.calls = 0;
	}
	/* ...which the handlers of one call share. */
	call_sync(fx, "smtp.rcpt", &r);
	assert_tempfail(&r.v);
	assert_log_has(fx, "a.lua:1: instruction budget");
}

static void
test_memory_call_cap(struct fx *fx, gconstpointer data)
{
	struct result r = {0};

	fx->cfg.memory = 1u << 20;
	add_script(fx, "mem.lua",
		   "moonpost.hook('smtp.rcpt', function()\n"
		   "  local t = {}\n"
		   "  for i = 1, 1e8 do t[i] = i end\n"
		   "end)\n"
		   "moonpost.hook('smtp.mail', function()\n"
		   "  local t = {}\n"
		   "  for i = 1, 1000 do t[i] = tostring(i) end\n"
		   "  return moonpost.reject(550, t[1000])\n"
		   "end)\n");
	load(fx);
	for (int i = 0; i < 3; i++) {
		r.calls = 0;
		call_sync(fx, "smtp.rcpt", &r);
		assert_tempfail(&r.v);
		r.calls = 0;
		call_sync(fx, "smtp.mail", &r);
		assert_verdict(&r.v, MP_VERDICT_REJECT, 550, "", "1000");
	}
	assert_log_has(fx, "mem.lua:3: not enough memory");
}

static void
test_memory_string_rep(struct fx *fx, gconstpointer data)
{
	fx->cfg.memory = 1u << 20;
	expect_tempfail(fx, "return moonpost.reject(550, string.rep('x', 1e9))",
			"case.lua:2: not enough memory");
	/* A pcall cannot hide it, whether or not more code runs. */
	expect_tempfail(fx,
			"local ok = pcall(string.rep, 'x', 1e9)\n"
			"moonpost.log('survived')\n"
			"return moonpost.accept()",
			"case.lua:3: not enough memory");
	assert_log_lacks(fx, "survived");
	expect_tempfail(fx, "return (pcall(string.rep, 'x', 1e9)) and nil",
			"not enough memory");
	expect_accept(fx, "local s = string.rep('x', 1e5)\n"
			  "return moonpost.accept()");
}

static void
test_memory_total(struct fx *fx, gconstpointer data)
{
	struct result r = {0};

	fx->cfg.memory = 0;
	fx->cfg.memory_total = 4u << 20;
	add_script(fx, "total.lua",
		   "moonpost.hook('smtp.rcpt', function()\n"
		   "  local t = {}\n"
		   "  for i = 1, 1e8 do t[i] = i end\n"
		   "end)\n"
		   "moonpost.hook('smtp.mail', function()\n"
		   "  return moonpost.reject(550, string.rep('y', 3))\n"
		   "end)\n");
	load(fx);
	for (int i = 0; i < 3; i++) {
		r.calls = 0;
		call_sync(fx, "smtp.rcpt", &r);
		assert_tempfail(&r.v);
		r.calls = 0;
		call_sync(fx, "smtp.mail", &r);
		assert_verdict(&r.v, MP_VERDICT_REJECT, 550, "", "yyy");
	}
	assert_log_has(fx, "total.lua:3: not enough memory");
}

static void
test_timeout_sleep(struct fx *fx, gconstpointer data)
{
	struct result r = {0};

	fx->cfg.timeout = 100;
	mp_log_set_level(MP_LOG_DEBUG);
	add_script(fx, "sleep.lua",
		   "moonpost.hook('smtp.rcpt', function()\n"
		   "  moonpost.sleep(10)\n"
		   "  return moonpost.accept()\n"
		   "end)\n");
	load(fx);
	g_assert_nonnull(start(fx, "smtp.rcpt", &r));
	g_assert_cmpint(r.calls, ==, 0);
	g_assert_cmpuint(mp_lua_calls_pending(fx->lua), ==, 1);
	run_until_done(fx, &r, 1);
	assert_tempfail(&r.v);
	g_assert_cmpuint(mp_lua_calls_pending(fx->lua), ==, 0);
	assert_log_has(fx, "sleep.lua:2: timed out after 100 ms (waiting on "
			   "sleep)");
	assert_log_has(fx, "sleep.lua:2: in function");
	assert_loop_idle(fx);
}

static void
test_timeout_cpu(struct fx *fx, gconstpointer data)
{
	/* No budget to speak of: only the clock stops this loop. */
	fx->cfg.instructions = 0;
	fx->cfg.timeout = 100;
	expect_tempfail(fx, "while true do end",
			"case.lua:2: timed out after 100 ms");
}

/* ---- waiting --------------------------------------------------------- */

static void
test_sleep_resumes(struct fx *fx, gconstpointer data)
{
	struct result r = {0};

	add_script(fx, "sleep.lua",
		   "moonpost.hook('smtp.rcpt', function()\n"
		   "  local t0 = moonpost.now()\n"
		   "  moonpost.sleep(0.01)\n"
		   "  assert(pcall(moonpost.sleep, 0))\n"
		   "  moonpost.sleep(0)\n"
		   "  assert(moonpost.now() >= t0)\n"
		   "end)\n"
		   "moonpost.hook('smtp.rcpt', function(rcpt)\n"
		   "  moonpost.sleep(0.001)\n"
		   "  return moonpost.reject(550, 'slept ' .. rcpt)\n"
		   "end)\n");
	load(fx);
	r.args[0] = "x";
	r.nargs = 1;
	call_async(fx, "smtp.rcpt", &r);
	assert_verdict(&r.v, MP_VERDICT_REJECT, 550, "", "slept x");
	g_assert_cmpint(r.pushes, ==, 1);
	g_assert_cmpuint(mp_lua_calls_pending(fx->lua), ==, 0);
	assert_loop_idle(fx);
}

static void
test_sleep_concurrent(struct fx *fx, gconstpointer data)
{
	struct result a = {.args = {"a"}, .nargs = 1};
	struct result b = {.args = {"b"}, .nargs = 1};

	add_script(fx, "sleep.lua",
		   "moonpost.hook('smtp.rcpt', function(who)\n"
		   "  moonpost.sleep(who == 'a' and 0.02 or 0)\n"
		   "  return moonpost.reject(550, who)\n"
		   "end)\n");
	load(fx);
	g_assert_nonnull(start(fx, "smtp.rcpt", &a));
	g_assert_nonnull(start(fx, "smtp.rcpt", &b));
	g_assert_cmpuint(mp_lua_calls_pending(fx->lua), ==, 2);
	run_until_done(fx, &a, 1);
	run_until_done(fx, &b, 1);
	assert_verdict(&a.v, MP_VERDICT_REJECT, 550, "", "a");
	assert_verdict(&b.v, MP_VERDICT_REJECT, 550, "", "b");
	g_assert_cmpuint(mp_lua_calls_pending(fx->lua), ==, 0);
}

static void
test_sleep_bad(struct fx *fx, gconstpointer data)
{
	expect_tempfail(fx,
			"table.sort({3, 2, 1}, function(a, b)\n"
			"  moonpost.sleep(0)\n"
			"  return a < b\n"
			"end)",
			"cannot wait inside a function called from C");
	expect_tempfail(fx, "moonpost.sleep(-1)", "bad argument #1");
	expect_tempfail(fx, "moonpost.sleep(0/0)", "bad argument #1");
	expect_tempfail(fx, "moonpost.sleep(math.huge)", "bad argument #1");
	expect_tempfail(fx, "moonpost.sleep('soon')", "bad argument #1");
	assert_loop_idle(fx);
}

static void
test_cancel_sleeping(struct fx *fx, gconstpointer data)
{
	struct result r = {0};
	struct mp_lua_call *call;

	add_script(fx, "sleep.lua",
		   "moonpost.hook('smtp.rcpt', function()\n"
		   "  moonpost.sleep(0.05)\n"
		   "  return moonpost.accept()\n"
		   "end)\n");
	load(fx);
	call = start(fx, "smtp.rcpt", &r);
	g_assert_nonnull(call);
	mp_lua_call_cancel(&call);
	g_assert_null(call);
	mp_lua_call_cancel(&call);
	g_assert_cmpuint(mp_lua_calls_pending(fx->lua), ==, 0);
	assert_loop_idle(fx);
	g_assert_cmpint(r.calls, ==, 0);
	/* The runtime goes on working. */
	call = start(fx, "smtp.rcpt", &r);
	g_assert_nonnull(call);
	run_until_done(fx, &r, 1);
	g_assert_cmpint(r.v.kind, ==, MP_VERDICT_ACCEPT);
}

/* ---- sandbox --------------------------------------------------------- */

static void
test_sandbox_removed(struct fx *fx, gconstpointer data)
{
	expect_accept(
		fx,
		"for _, n in ipairs({'io', 'os', 'require', 'dofile',\n"
		"    'loadfile', 'load', 'print', 'debug', 'package', 'warn',\n"
		"    'coroutine', 'loadstring', 'module', 'setfenv',\n"
		"    'getfenv', 'newproxy'}) do\n"
		"  if _ENV[n] ~= nil then error(n .. ' is there') end\n"
		"end\n"
		"assert(string.dump == nil)\n"
		"for _, n in ipairs({'string', 'table', 'math', 'utf8',\n"
		"    'pairs', 'ipairs', 'pcall', 'xpcall', 'error', 'assert',\n"
		"    'select', 'tostring', 'tonumber', 'type', 'next',\n"
		"    'rawget', 'rawset', 'rawequal', 'rawlen', "
		"'setmetatable',\n"
		"    'getmetatable', 'collectgarbage', 'moonpost'}) do\n"
		"  if _ENV[n] == nil then error(n .. ' is missing') end\n"
		"end\n"
		"assert(('abc'):upper() == 'ABC')\n"
		"assert(string.format('%d', 7) == '7')\n"
		"assert(math.floor(2.5) == 2 and utf8.char(233) == '\\u{e9}')\n"
		"assert(table.concat({1, 2}, ',') == '1,2')\n"
		"return moonpost.accept()");
}

static const char *const frozen_writes[] = {
	"string.upper = nil",
	"string.new = 1",
	"math.pi = 3",
	"table.insert = nil",
	"utf8.char = nil",
	"moonpost.accept = moonpost.reject",
	"rawset(string, 'upper', string.lower)",
	"rawset(moonpost, 'x', 1)",
	"setmetatable(string, {})",
	"getmetatable('').__index = {}",
	"getmetatable('').__index.upper = nil",
	"setmetatable({}, {__gc = function() end})",
	"collectgarbage('stop')",
	"collectgarbage()",
	"setmetatable(_ENV, nil)",
};

static void
test_sandbox_frozen(struct fx *fx, gconstpointer data)
{
	for (size_t i = 0; i < G_N_ELEMENTS(frozen_writes); i++)
		expect_tempfail(fx, frozen_writes[i], "case.lua:2:");
	expect_accept(fx, "assert(getmetatable('') == false)\n"
			  "assert(getmetatable(string) == false)\n"
			  "assert(collectgarbage('count') > 0)\n"
			  "local mt = {__index = {x = 1}}\n"
			  "assert(setmetatable({}, mt).x == 1)\n"
			  "local t = {}\n"
			  "rawset(t, 'k', 'v')\n"
			  "assert(t.k == 'v')\n"
			  "local n = 0\n"
			  "for k, v in pairs(string) do n = n + 1 end\n"
			  "assert(n > 10 and next(string) == nil)\n"
			  "local f, s = pairs(math)\n"
			  "assert(rawequal(s, math) and f(s, nil) ~= nil)\n"
			  "return moonpost.accept()");
}

static void
test_sandbox_isolated(struct fx *fx, gconstpointer data)
{
	struct result r = {0};

	add_script(fx, "a.lua",
		   "counter = 1\n"
		   "assert(_G == _ENV)\n"
		   "pcall(function() string.upper = nil end)\n"
		   "pcall(rawset, string, 'upper', nil)\n"
		   "moonpost.hook('smtp.mail', function()\n"
		   "  counter = counter + 1\n"
		   "  return moonpost.reject(550, counter .. ' ' .. "
		   "tostring(mine))\n"
		   "end)\n");
	add_script(fx, "b.lua",
		   "mine = 'b'\n"
		   "moonpost.hook('smtp.rcpt', function()\n"
		   "  assert(counter == nil and _G.counter == nil)\n"
		   "  assert(string.upper('a') == 'A')\n"
		   "  return moonpost.accept()\n"
		   "end)\n");
	load(fx);
	call_sync(fx, "smtp.mail", &r);
	assert_verdict(&r.v, MP_VERDICT_REJECT, 550, "", "2 nil");
	r.calls = 0;
	call_sync(fx, "smtp.mail", &r);
	assert_verdict(&r.v, MP_VERDICT_REJECT, 550, "", "3 nil");
	r.calls = 0;
	call_sync(fx, "smtp.rcpt", &r);
	g_assert_cmpint(r.v.kind, ==, MP_VERDICT_ACCEPT);
}

/* ---- references ------------------------------------------------------ */

static void
test_ref_unref_while_sleeping(struct fx *fx, gconstpointer data)
{
	struct result r = {0};
	struct mp_lua *extra;

	add_script(fx, "sleep.lua",
		   "moonpost.hook('smtp.rcpt', function()\n"
		   "  moonpost.sleep(0.01)\n"
		   "  return moonpost.reject(550, 'late')\n"
		   "end)\n");
	load(fx);
	extra = mp_lua_ref(fx->lua);
	g_assert_true(extra == fx->lua);
	mp_lua_unref(&extra);
	g_assert_null(extra);
	g_assert_nonnull(start(fx, "smtp.rcpt", &r));
	/* The server swaps runtimes on reload; old calls finish. */
	mp_lua_unref(&fx->lua);
	g_assert_null(fx->lua);
	run_until_done(fx, &r, 1);
	assert_verdict(&r.v, MP_VERDICT_REJECT, 550, "", "late");
	assert_loop_idle(fx);
}

static void
test_ref_cancel_last(struct fx *fx, gconstpointer data)
{
	struct result r = {0};
	struct mp_lua_call *call;

	add_script(fx, "sleep.lua",
		   "moonpost.hook('smtp.rcpt', function() "
		   "moonpost.sleep(5) end)\n");
	load(fx);
	call = start(fx, "smtp.rcpt", &r);
	g_assert_nonnull(call);
	mp_lua_unref(&fx->lua);
	/* The cancel drops the last reference: the runtime goes with it. */
	mp_lua_call_cancel(&call);
	assert_loop_idle(fx);
	g_assert_cmpint(r.calls, ==, 0);
}

static void
test_ref_done_drops_last(struct fx *fx, gconstpointer data)
{
	struct result r = {.drop = &fx->lua};

	add_script(fx, "a.lua",
		   "moonpost.hook('smtp.rcpt', function() "
		   "return moonpost.accept() end)\n");
	load(fx);
	call_sync(fx, "smtp.rcpt", &r);
	g_assert_null(fx->lua);
	g_assert_cmpint(r.v.kind, ==, MP_VERDICT_ACCEPT);
}

static void
test_now(struct fx *fx, gconstpointer data)
{
	struct result r = {0};

	load_handler(fx, "return moonpost.reject(550, "
			 "string.format('%.3f', moonpost.now()))");
	ev_now_update(fx->loop);
	call_sync(fx, "smtp.rcpt", &r);
	g_assert_cmpfloat(
		fabs(g_ascii_strtod(r.v.text, NULL) - ev_now(fx->loop)), <,
		0.01);
}

/* ---- main ------------------------------------------------------------ */

#define ADD(path, fn)                                                          \
	g_test_add(path, struct fx, NULL, fx_setup, fn, fx_teardown)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("/lua/load/ok", test_load_ok);
	ADD("/lua/load/no-scripts", test_load_no_scripts);
	ADD("/lua/load/errors", test_load_errors);
	ADD("/lua/load/missing-file", test_load_missing_file);
	ADD("/lua/load/second-fails", test_load_second_fails);
	ADD("/lua/load/total-too-small", test_load_total_too_small);
	ADD("/lua/hook/none", test_hook_none);
	ADD("/lua/hook/register-late", test_hook_register_late);
	ADD("/lua/hook/order", test_hook_order);
	ADD("/lua/hook/args", test_hook_args);
	ADD("/lua/hook/push-fails", test_hook_push_fails);
	ADD("/lua/hook/log", test_hook_session_in_logs);
	ADD("/lua/hook/reentrant-done", test_hook_reentrant_done);
	ADD("/lua/verdict/kinds", test_verdict_kinds);
	ADD("/lua/verdict/bad-args", test_verdict_bad_args);
	ADD("/lua/verdict/bad-return", test_verdict_bad_return);
	ADD("/lua/verdict/sanitize", test_verdict_sanitize);
	ADD("/lua/verdict/readable", test_verdict_readable);
	g_test_add_func("/lua/verdict/names", test_verdict_names);
	ADD("/lua/error/file-line", test_error_file_line);
	ADD("/lua/error/object", test_error_object);
	ADD("/lua/error/traceback", test_error_traceback);
	ADD("/lua/budget/loop", test_budget_loop);
	ADD("/lua/budget/pcall-cannot-swallow", test_budget_pcall);
	ADD("/lua/budget/per-call", test_budget_per_call);
	ADD("/lua/memory/call-cap", test_memory_call_cap);
	ADD("/lua/memory/string-rep", test_memory_string_rep);
	ADD("/lua/memory/total", test_memory_total);
	ADD("/lua/timeout/sleep", test_timeout_sleep);
	ADD("/lua/timeout/cpu", test_timeout_cpu);
	ADD("/lua/sleep/resumes", test_sleep_resumes);
	ADD("/lua/sleep/concurrent", test_sleep_concurrent);
	ADD("/lua/sleep/bad", test_sleep_bad);
	ADD("/lua/cancel/sleeping", test_cancel_sleeping);
	ADD("/lua/sandbox/removed", test_sandbox_removed);
	ADD("/lua/sandbox/frozen", test_sandbox_frozen);
	ADD("/lua/sandbox/isolated", test_sandbox_isolated);
	ADD("/lua/ref/unref-while-sleeping", test_ref_unref_while_sleeping);
	ADD("/lua/ref/cancel-last", test_ref_cancel_last);
	ADD("/lua/ref/done-drops-last", test_ref_done_drops_last);
	ADD("/lua/now", test_now);
	return g_test_run();
}
