/* lua-moonpost.c - the `moonpost` module that scripts see.
 *
 *   moonpost.hook(name, fn)        registers a handler (top level only)
 *   moonpost.log([level,] msg)     one log line tagged with hook and session
 *   moonpost.continue()            verdicts a handler returns
 *   moonpost.accept()
 *   moonpost.reject([code,] [enhanced,] text)
 *   moonpost.defer([[code,] [enhanced,] text])
 *   moonpost.disconnect([text])
 *   moonpost.sleep(seconds)        waits without blocking the loop
 *   moonpost.now()                 wall-clock seconds, as a float
 *   moonpost.password_verify(pw, stored)  checks a hash on the thread pool
 *   moonpost.sqlite                (lua-sqlite.c)
 *   moonpost.dns                   (lua-dns.c)
 *
 * A verdict is a userdata holding a struct mp_verdict, so a script can
 * read it (v.kind, v.code, v.enhanced, v.text) but not forge or change
 * one. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include <moonpost/log.h>

#include "lua-private.h"

/* ---- hook, log, now -------------------------------------------------- */

/* moonpost.hook(name, fn) [-2, +0, e] */
static int
moonpost_hook(lua_State *L)
{
	struct mp_lua *lua = mp_lua_from_state(L);
	const char *name;
	int hook;

	if (!lua->loading)
		return luaL_error(L, "moonpost.hook: handlers can only be "
				     "registered while scripts load");
	name = luaL_checkstring(L, 1);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	hook = mp_lua_hook_find(lua, name);
	if (hook < 0 && lua->any_hook) {
		/* A tool that loads no plugins takes any name; serve and
		 * check-config still catch typos. */
		mp_strlist_add(&lua->hooks, name);
		lua->nhandlers = mp_xrealloc(
			lua->nhandlers, (lua->hooks.n + 1) * sizeof(size_t));
		hook = (int)lua->hooks.n - 1;
		lua->nhandlers[hook] = 0;
	}
	if (hook < 0)
		return luaL_error(L, "unknown hook '%s'", name);
	mp_lua_hook_add(L, lua, hook, 2);
	return 0;
}

/* moonpost.log([level,] msg) [-1|2, +0, e] */
static int
moonpost_log(lua_State *L)
{
	struct mp_lua_call *call = mp_lua_call_current(L);
	enum mp_log_level level = MP_LOG_INFO;
	int arg = 1;
	const char *msg;
	size_t len;

	if (lua_gettop(L) >= 2) {
		if (!mp_log_level_parse(luaL_checkstring(L, 1), &level))
			return luaL_argerror(L, 1,
					     "level must be debug, info, "
					     "warn or error");
		arg = 2;
	}
	msg = luaL_checklstring(L, arg, &len);
	mp_log(level, "event=script hook=%s session=%s msg=%s",
	       mp_q(call != NULL ? call->hook : NULL),
	       mp_q(call != NULL ? call->session : NULL), mp_qn(msg, len));
	return 0;
}

/* moonpost.now() [-0, +1, -] */
static int
moonpost_now(lua_State *L)
{
	struct ev_loop *loop = mp_lua_from_state(L)->loop;

	lua_pushnumber(L, loop != NULL ? ev_now(loop) : ev_time());
	return 1;
}

/* ---- sleep ----------------------------------------------------------- */

struct sleep_wait {
	ev_timer timer;
	struct ev_loop *loop;
	struct mp_lua_call *call;
};

static void
sleep_done(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sleep_wait *s = w->data;
	struct mp_lua_call *call = s->call;

	free(s);
	mp_lua_call_wake(call, NULL, NULL);
}

static void
sleep_cancel(void *data)
{
	struct sleep_wait *s = data;

	ev_timer_stop(s->loop, &s->timer);
	free(s);
}

/* moonpost.sleep(seconds) [-1, +0, e]; the handler waits */
static int
moonpost_sleep(lua_State *L)
{
	lua_Number secs = luaL_checknumber(L, 1);
	struct mp_lua_call *call;
	struct sleep_wait *s;
	struct mp_lua_wait wait = {.what = "sleep", .cancel = sleep_cancel};

	luaL_argcheck(L, secs >= 0 && isfinite(secs), 1,
		      "seconds must be a finite number, 0 or more");
	call = mp_lua_call_can_wait(L, "moonpost.sleep");
	s = mp_xmalloc(sizeof(*s));
	s->loop = mp_lua_from_state(L)->loop;
	s->call = call;
	ev_timer_init(&s->timer, sleep_done, secs, 0.0);
	s->timer.data = s;
	ev_timer_start(s->loop, &s->timer);
	wait.data = s;
	return mp_lua_call_wait(L, call, &wait);
}

/* ---- verdicts -------------------------------------------------------- */

/* Length of s[0..n) without a UTF-8 sequence cut short at its end. */
static size_t
utf8_whole(const char *s, size_t n)
{
	size_t start = n;
	unsigned char lead;
	size_t need;

	while (start > 0 && n - start < 3 &&
	       ((unsigned char)s[start - 1] & 0xc0) == 0x80)
		start--;
	if (start == 0)
		return n;
	lead = (unsigned char)s[start - 1];
	if (lead < 0xc0)
		return n;
	need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
	return n - (start - 1) < need ? start - 1 : n;
}

/* Copies text for a reply line. Control characters go: CR and LF would let
 * a script end the reply and forge another one. A cut never splits a UTF-8
 * sequence. */
static void
text_sanitize(char *out, size_t size, const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 1 < size; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c != 0x7f)
			out[n++] = (char)c;
	}
	n = utf8_whole(out, n);
	out[n] = '\0';
}

/* RFC 3463: class.subject.detail, subject and detail of 1 to 3 digits;
 * the class must agree with the reply code (5.x.x goes with 5yz). */
static bool
enhanced_valid(const char *s, size_t len, int code)
{
	if (strlen(s) != len || s[0] - '0' != code / 100 || s[1] != '.')
		return false;
	s += 2;
	for (int part = 0; part < 2; part++) {
		int digits = 0;

		while (*s >= '0' && *s <= '9' && digits < 4) {
			s++;
			digits++;
		}
		if (digits < 1 || digits > 3)
			return false;
		if (part == 0 && *s++ != '.')
			return false;
	}
	return *s == '\0';
}

static int
verdict_code(lua_State *L, int arg, int lo, int hi)
{
	int isint = 0;
	lua_Integer code = lua_tointegerx(L, arg, &isint);

	if (lua_type(L, arg) != LUA_TNUMBER || !isint)
		luaL_argerror(L, arg,
			      "reply code expected (an integer "
			      "like 550)");
	if (code < lo || code > hi)
		luaL_argerror(L, arg,
			      lua_pushfstring(L, "reply code must be %d to %d",
					      lo, hi));
	return (int)code;
}

static void
verdict_enhanced(lua_State *L, int arg, struct mp_verdict *v)
{
	size_t len;
	const char *s;

	luaL_checktype(L, arg, LUA_TSTRING);
	s = lua_tolstring(L, arg, &len);
	if (!enhanced_valid(s, len, v->code))
		luaL_argerror(L, arg,
			      lua_pushfstring(L,
					      "enhanced status code like "
					      "\"%d.7.1\" expected",
					      v->code / 100));
	memcpy(v->enhanced, s, len + 1);
}

static void
verdict_text(lua_State *L, int arg, struct mp_verdict *v)
{
	size_t len;
	const char *s;

	luaL_checktype(L, arg, LUA_TSTRING);
	s = lua_tolstring(L, arg, &len);
	text_sanitize(v->text, sizeof(v->text), s, len);
}

/* Reads ([code,] [enhanced,] text); codes lie in lo..hi. */
static void
verdict_args(lua_State *L, struct mp_verdict *v, int lo, int hi,
	     bool text_required)
{
	int n = lua_gettop(L);
	int arg = 1;

	if (n > 3)
		luaL_error(L, "too many arguments: expected "
			      "([code,] [enhanced,] text)");
	if (n == 0) {
		if (text_required)
			luaL_argerror(L, 1, "text expected");
		return;
	}
	if (n >= 2)
		v->code = verdict_code(L, arg++, lo, hi);
	if (n == 3)
		verdict_enhanced(L, arg++, v);
	verdict_text(L, arg, v);
}

/* [-0, +1, m] Pushes a copy of v as a verdict userdata. */
static void
verdict_push(lua_State *L, const struct mp_verdict *v)
{
	struct mp_verdict *ud = lua_newuserdatauv(L, sizeof(*ud), 0);

	*ud = *v;
	luaL_setmetatable(L, MP_LUA_VERDICT_MT);
}

/* [-n, +1, e] A verdict of kind that takes no arguments. */
static int
verdict_bare(lua_State *L, enum mp_verdict_kind kind, const char *name)
{
	struct mp_verdict v = {.kind = kind};

	if (lua_gettop(L) > 0)
		return luaL_error(L, "moonpost.%s takes no arguments", name);
	verdict_push(L, &v);
	return 1;
}

/* moonpost.continue() [-0, +1, m] */
static int
moonpost_continue(lua_State *L)
{
	return verdict_bare(L, MP_VERDICT_CONTINUE, "continue");
}

/* moonpost.accept() [-0, +1, m] */
static int
moonpost_accept(lua_State *L)
{
	return verdict_bare(L, MP_VERDICT_ACCEPT, "accept");
}

/* moonpost.reject([code,] [enhanced,] text) [-1..3, +1, e] */
static int
moonpost_reject(lua_State *L)
{
	struct mp_verdict v = {.kind = MP_VERDICT_REJECT};

	verdict_args(L, &v, 400, 599, true);
	verdict_push(L, &v);
	return 1;
}

/* moonpost.defer([[code,] [enhanced,] text]) [-0..3, +1, e] */
static int
moonpost_defer(lua_State *L)
{
	struct mp_verdict v = {.kind = MP_VERDICT_DEFER};

	verdict_args(L, &v, 400, 499, false);
	verdict_push(L, &v);
	return 1;
}

/* moonpost.disconnect([text]) [-0|1, +1, e] */
static int
moonpost_disconnect(lua_State *L)
{
	struct mp_verdict v = {.kind = MP_VERDICT_DISCONNECT};

	if (lua_gettop(L) > 1)
		return luaL_error(L, "moonpost.disconnect takes one argument "
				     "at most (text)");
	if (lua_gettop(L) == 1)
		verdict_text(L, 1, &v);
	verdict_push(L, &v);
	return 1;
}

/* verdict.kind, .code, .enhanced, .text [-2, +1, m] */
static int
verdict_index(lua_State *L)
{
	const struct mp_verdict *v = luaL_checkudata(L, 1, MP_LUA_VERDICT_MT);
	const char *key = luaL_checkstring(L, 2);

	if (strcmp(key, "kind") == 0)
		lua_pushstring(L, mp_verdict_name(v->kind));
	else if (strcmp(key, "code") == 0)
		lua_pushinteger(L, v->code);
	else if (strcmp(key, "enhanced") == 0)
		lua_pushstring(L, v->enhanced);
	else if (strcmp(key, "text") == 0)
		lua_pushstring(L, v->text);
	else
		lua_pushnil(L);
	return 1;
}

/* tostring(verdict): "reject 550 5.7.1 text" [-1, +1, m] */
static int
verdict_tostring(lua_State *L)
{
	const struct mp_verdict *v = luaL_checkudata(L, 1, MP_LUA_VERDICT_MT);
	luaL_Buffer b;

	luaL_buffinit(L, &b);
	luaL_addstring(&b, mp_verdict_name(v->kind));
	if (v->code != 0) {
		lua_pushfstring(L, " %d", v->code);
		luaL_addvalue(&b);
	}
	if (v->enhanced[0] != '\0') {
		luaL_addchar(&b, ' ');
		luaL_addstring(&b, v->enhanced);
	}
	if (v->text[0] != '\0') {
		luaL_addchar(&b, ' ');
		luaL_addstring(&b, v->text);
	}
	luaL_pushresult(&b);
	return 1;
}

const struct mp_verdict *
mp_lua_to_verdict(lua_State *L, int idx)
{
	return luaL_testudata(L, idx, MP_LUA_VERDICT_MT);
}

/* ---- the module ------------------------------------------------------ */

static const luaL_Reg verdict_methods[] = {
	{"__index", verdict_index},
	{"__tostring", verdict_tostring},
	{NULL, NULL},
};

static const luaL_Reg moonpost_funcs[] = {
	{"hook", moonpost_hook},
	{"log", moonpost_log},
	{"continue", moonpost_continue},
	{"accept", moonpost_accept},
	{"reject", moonpost_reject},
	{"defer", moonpost_defer},
	{"disconnect", moonpost_disconnect},
	{"sleep", moonpost_sleep},
	{"now", moonpost_now},
	{"password_verify", mp_lua_password_verify},
	{NULL, NULL},
};

void
mp_lua_open_moonpost(lua_State *L)
{
	luaL_newmetatable(L, MP_LUA_VERDICT_MT);
	luaL_setfuncs(L, verdict_methods, 0);
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
	luaL_newlib(L, moonpost_funcs);
}
