/* lua-hook.c - the hook registry and hook calls.
 *
 * A call runs the handlers of one hook in registration order, each in a new
 * coroutine with its own copy of the arguments, until one returns a verdict
 * other than continue. C drives a call in steps: a step runs inside
 * mp_lua_protect() until the call waits or ends, and what follows (logging,
 * done, freeing) happens outside Lua, so that done may start another call
 * or drop the last reference to the runtime. */
#include "config.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include <moonpost/log.h>

#include "lua-private.h"

/* What the client is told when a script fails; the details go to the log,
 * not to the network. */
#define TEMPFAIL_TEXT "temporary local problem"

/* ---- registry -------------------------------------------------------- */

int
mp_lua_hook_find(const struct mp_lua *lua, const char *name)
{
	for (size_t i = 0; i < lua->hooks.n; i++) {
		if (strcmp(lua->hooks.v[i], name) == 0)
			return (int)i;
	}
	return -1;
}

void
mp_lua_hook_add(lua_State *L, struct mp_lua *lua, int hook, int fn)
{
	fn = lua_absindex(L, fn);
	lua_rawgeti(L, LUA_REGISTRYINDEX, lua->handlers_ref);
	if (lua_rawgeti(L, -1, hook + 1) == LUA_TNIL) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_rawseti(L, -3, hook + 1);
	}
	lua_pushvalue(L, fn);
	lua_rawseti(L, -2, (lua_Integer)lua->nhandlers[hook] + 1);
	lua->nhandlers[hook]++;
	lua_pop(L, 2);
}

const char *
mp_verdict_name(enum mp_verdict_kind kind)
{
	static const char *const names[] = {
		"continue", "accept",     "reject",
		"defer",    "disconnect", "tempfail",
	};

	if ((size_t)kind < MP_NELEMS(names))
		return names[kind];
	return "unknown";
}

/* ---- call state ------------------------------------------------------ */

static void call_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

static void
call_init(struct mp_lua_call *call, struct mp_lua *lua)
{
	memset(call, 0, sizeof(*call));
	call->lua = lua;
	call->args_ref = LUA_NOREF;
	call->chunk_ref = LUA_NOREF;
	call->co_ref = LUA_NOREF;
	call->handler = 1;
	call->deadline = UINT64_MAX;
	if (lua->timeout_ms > 0)
		call->deadline = mp_now_ms() + lua->timeout_ms;
	ev_timer_init(&call->timer, call_timer_cb, 0.0, 0.0);
	call->timer.data = call;
}

static void
verdict_tempfail(struct mp_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->kind = MP_VERDICT_TEMPFAIL;
	snprintf(v->text, sizeof(v->text), "%s", TEMPFAIL_TEXT);
}

static void
call_drop_co(struct mp_lua_call *call)
{
	luaL_unref(call->lua->L, LUA_REGISTRYINDEX, call->co_ref);
	call->co_ref = LUA_NOREF;
	call->co = NULL;
}

/* Stops what the call waits on; the wake will never come. */
static void
call_cancel_wait(struct mp_lua_call *call)
{
	struct mp_lua_wait wait = call->wait;

	if (!call->waiting)
		return;
	call->waiting = false;
	memset(&call->wait, 0, sizeof(call->wait));
	wait.cancel(wait.data);
}

/* Releases everything the call holds in Lua and in the loop. */
static void
call_clear(struct mp_lua_call *call)
{
	call_cancel_wait(call);
	if (call->lua->loop != NULL)
		ev_timer_stop(call->lua->loop, &call->timer);
	call_drop_co(call);
	luaL_unref(call->lua->L, LUA_REGISTRYINDEX, call->args_ref);
	call->args_ref = LUA_NOREF;
	call->args = NULL;
	MP_FREE(call->error);
	MP_FREE(call->traceback);
	MP_FREE(call->session);
}

static struct mp_lua_call *
call_new(struct mp_lua *lua, int hook, const char *session_id)
{
	struct mp_lua_call *call = mp_xmalloc(sizeof(*call));

	call_init(call, lua);
	call->lua = mp_lua_ref(lua);
	call->hook = lua->hooks.v[hook];
	call->hook_index = (size_t)hook;
	call->nhandlers = lua->nhandlers[hook];
	call->session = mp_xstrdup(session_id);
	call->next = lua->calls;
	if (lua->calls != NULL)
		lua->calls->prev = call;
	lua->calls = call;
	lua->ncalls++;
	return call;
}

/* Frees a hook call; the caller still holds the runtime reference the call
 * had and drops it once done has run. */
static void
call_free(struct mp_lua_call *call)
{
	struct mp_lua *lua = call->lua;

	call_clear(call);
	if (call->prev != NULL)
		call->prev->next = call->next;
	else
		lua->calls = call->next;
	if (call->next != NULL)
		call->next->prev = call->prev;
	lua->ncalls--;
	free(call);
}

/* Ends the call with TEMPFAIL unless it already ended. */
static void
call_fail(struct mp_lua_call *call, const char *msg)
{
	if (call->state == MP_LUA_CALL_DONE)
		return;
	call_cancel_wait(call);
	if (call->error == NULL)
		call->error = mp_xstrdup(msg);
	verdict_tempfail(&call->verdict);
	call->state = MP_LUA_CALL_DONE;
}

/* [-0, +0, m] Keeps a traceback of co for the debug log. */
static void
call_take_traceback(lua_State *L, struct mp_lua_call *call)
{
	/* A load error goes back to the caller, which logs nothing. */
	if (call->loading || call->co == NULL || call->traceback != NULL ||
	    !mp_log_enabled(MP_LOG_DEBUG))
		return;
	luaL_traceback(L, call->co, call->error, 0);
	call->traceback = mp_xstrdup(lua_tostring(L, -1));
	lua_pop(L, 1);
}

/* ---- a step ---------------------------------------------------------- */

/* [-1, +n, e] Runs on the call's argument thread: the caller's push. */
static int
args_trampoline(lua_State *T)
{
	struct mp_lua_call *call = lua_touserdata(T, 1);
	int n;

	lua_settop(T, 0);
	n = call->push(T, call->ctx);
	assert(n >= 0 && n <= lua_gettop(T));
	return n;
}

/* [-0, +0, e] Calls push once; every handler gets a copy of what it left
 * on the argument thread. */
static void
args_push(lua_State *L, struct mp_lua_call *call)
{
	lua_State *T = lua_newthread(L);

	call->args_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	call->args = T;
	lua_pushcfunction(T, args_trampoline);
	lua_pushlightuserdata(T, call);
	if (lua_pcall(T, 1, LUA_MULTRET, 0) != LUA_OK) {
		lua_pushfstring(L, "cannot push the arguments of %s: %s",
				call->hook, lua_tostring(T, -1));
		lua_error(L);
	}
	call->nargs = lua_gettop(T);
}

/* [-0, +1, -] Pushes the function of handler number i. */
static void
handler_push_fn(lua_State *L, struct mp_lua_call *call, size_t i)
{
	if (call->loading) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, call->chunk_ref);
		return;
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, call->lua->handlers_ref);
	lua_rawgeti(L, -1, (lua_Integer)call->hook_index + 1);
	lua_rawgeti(L, -1, (lua_Integer)i);
	lua_replace(L, -3);
	lua_pop(L, 1);
}

/* [-0, +0, e] Starts the next handler in a new coroutine, or ends the call
 * with continue when none is left. */
static void
handler_start(lua_State *L, struct mp_lua_call *call)
{
	lua_State *co;

	if (call->handler > call->nhandlers) {
		memset(&call->verdict, 0, sizeof(call->verdict));
		call->state = MP_LUA_CALL_DONE;
		return;
	}
	co = lua_newthread(L);
	call->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	call->co = co;
	mp_lua_bound_thread(call->lua, co);
	if (!lua_checkstack(co, call->nargs + 1) ||
	    (call->args != NULL && !lua_checkstack(call->args, call->nargs)))
		luaL_error(L, "too many arguments for %s", call->hook);
	handler_push_fn(L, call, call->handler);
	lua_xmove(L, co, 1);
	for (int i = 1; i <= call->nargs; i++)
		lua_pushvalue(call->args, i);
	if (call->nargs > 0)
		lua_xmove(call->args, co, call->nargs);
	call->resume_nargs = call->nargs;
	call->handler++;
}

/* Writes "path:line:" for the handler that ran last: where its coroutine
 * stopped, else where its function is defined. */
static void
handler_where(lua_State *L, struct mp_lua_call *call, char *buf, size_t size)
{
	lua_Debug ar;

	mp_lua_where(call->co, buf, size);
	if (buf[0] != '\0')
		return;
	handler_push_fn(L, call, call->handler - 1);
	if (lua_getinfo(L, ">S", &ar) && ar.linedefined > 0)
		snprintf(buf, size, "%s:%d:", ar.short_src, ar.linedefined);
}

/* Ends the call with TEMPFAIL, "path:line: what" as the error. */
static void
handler_fail_at(lua_State *L, struct mp_lua_call *call, const char *what)
{
	char where[MP_LUA_WHERE_MAX];
	char *msg;

	handler_where(L, call, where, sizeof(where));
	msg = mp_xasprintf("%s%s%s", where, where[0] != '\0' ? " " : "", what);
	call_fail(call, msg);
	free(msg);
}

/* [-0, +0, m] The handler failed: error, bound, or a yield with nothing
 * to wait on. */
static void
handler_failed(lua_State *L, struct mp_lua_call *call, int status)
{
	lua_State *co = call->co;
	char what[128];

	if (call->killed) {
		call_fail(call, call->kill_msg);
	} else if (call->mem_over) {
		snprintf(what, sizeof(what),
			 "not enough memory (a call may hold %llu bytes)",
			 (unsigned long long)call->lua->memory);
		handler_fail_at(L, call, what);
	} else if (status == LUA_ERRMEM) {
		handler_fail_at(L, call, "not enough memory");
	} else if (status == LUA_YIELD) {
		handler_fail_at(L, call,
				"handler yielded with nothing to "
				"wait on");
	} else if (lua_type(co, -1) == LUA_TSTRING) {
		call_fail(call, lua_tostring(co, -1));
	} else {
		snprintf(what, sizeof(what), "(error object is a %s value)",
			 luaL_typename(co, -1));
		handler_fail_at(L, call, what);
	}
	call_take_traceback(L, call);
}

/* [-0, +0, m] The handler returned nres values on its coroutine. */
static void
handler_returned(lua_State *L, struct mp_lua_call *call, int nres)
{
	const struct mp_verdict *v = NULL;
	char what[160];

	if (!call->loading && nres > 0 && !lua_isnil(call->co, -nres)) {
		v = mp_lua_to_verdict(call->co, -nres);
		if (v == NULL) {
			snprintf(what, sizeof(what),
				 "handler returned a %s value, not a verdict "
				 "(return nothing or a moonpost verdict such "
				 "as moonpost.accept())",
				 luaL_typename(call->co, -nres));
			handler_fail_at(L, call, what);
			return;
		}
	}
	if (v == NULL || v->kind == MP_VERDICT_CONTINUE) {
		call_drop_co(call);
		return;
	}
	call->verdict = *v;
	call->state = MP_LUA_CALL_DONE;
}

/* [-0, +0, e] Resumes the current handler and sorts out how it stopped. */
static void
handler_resume(lua_State *L, struct mp_lua_call *call)
{
	int nargs = call->resume_nargs;
	int nres = 0;
	int status;

	call->resume_nargs = 0;
	status = mp_lua_resume(call, L, nargs, &nres);
	if (status == LUA_YIELD && call->waiting && !call->killed &&
	    !call->mem_over) {
		lua_pop(call->co, nres);
		call->state = MP_LUA_CALL_WAITING;
		return;
	}
	if (status != LUA_OK || call->killed || call->mem_over) {
		handler_failed(L, call, status);
		return;
	}
	handler_returned(L, call, nres);
}

/* [-0, +0, e] The values a finished wait hands back to the handler. */
static void
wake_push(lua_State *L, struct mp_lua_call *call)
{
	int base = lua_gettop(L);
	int n = call->wake_push(L, call->wake_ctx);

	call->wake_push = NULL;
	assert(n >= 0 && n <= lua_gettop(L) - base);
	if (!lua_checkstack(call->co, n))
		luaL_error(L, "too many results for a wait");
	lua_xmove(L, call->co, n);
	lua_settop(L, base);
	call->resume_nargs = n;
}

/* [-1, +0, e] Protected: runs the call until it waits or ends. */
static int
call_step(lua_State *L)
{
	struct mp_lua_call *call = lua_touserdata(L, 1);

	if (call->args_ref == LUA_NOREF && call->push != NULL)
		args_push(L, call);
	if (call->wake_push != NULL)
		wake_push(L, call);
	while (call->state == MP_LUA_CALL_RUNNING) {
		if (call->co == NULL)
			handler_start(L, call);
		else
			handler_resume(L, call);
	}
	return 0;
}

/* ---- driving a call -------------------------------------------------- */

static bool
call_expired(const struct mp_lua_call *call)
{
	return call->deadline != UINT64_MAX && mp_now_ms() >= call->deadline;
}

static void
call_arm_timer(struct mp_lua_call *call)
{
	uint64_t now = mp_now_ms();

	if (call->deadline == UINT64_MAX || ev_is_active(&call->timer))
		return;
	assert(call->lua->loop != NULL);
	ev_timer_set(&call->timer, (double)(call->deadline - now) / 1000.0,
		     0.0);
	ev_timer_start(call->lua->loop, &call->timer);
}

/* [-1, +0, m] Protected: the traceback of a call that timed out. */
static int
timeout_traceback(lua_State *L)
{
	call_take_traceback(L, lua_touserdata(L, 1));
	return 0;
}

/* The call ran out of time while waiting on what: it is abandoned. */
static void
call_time_out(struct mp_lua_call *call, const char *what)
{
	char where[MP_LUA_WHERE_MAX];
	char *msg;
	char *error = NULL;

	mp_lua_where(call->co, where, sizeof(where));
	msg = mp_xasprintf("%s%stimed out after %llu ms (waiting on %s)", where,
			   where[0] != '\0' ? " " : "",
			   (unsigned long long)call->lua->timeout_ms, what);
	call_fail(call, msg);
	free(msg);
	if (!mp_lua_protect(call->lua, timeout_traceback, call, &error))
		free(error);
}

static void
call_log_traceback(const struct mp_lua_call *call)
{
	const char *line = strchr(call->traceback, '\n');

	/* The first line is the error, logged already. */
	while (line != NULL) {
		const char *start = line + 1 + (line[1] == '\t');
		const char *end = strchr(start, '\n');
		size_t len = end ? (size_t)(end - start) : strlen(start);

		line = end;
		if (len == 16 && memcmp(start, "stack traceback:", 16) == 0)
			continue;
		mp_log(MP_LOG_DEBUG,
		       "event=lua_traceback hook=%s session=%s frame=%s",
		       mp_q(call->hook), mp_q(call->session),
		       mp_qn(start, len));
	}
}

/* Logs and frees the call, then tells the caller. */
static void
call_finish(struct mp_lua_call *call)
{
	struct mp_lua *lua = call->lua;
	mp_lua_done_fn *done = call->done;
	void *ctx = call->ctx;
	struct mp_verdict verdict = call->verdict;

	if (call->error != NULL) {
		mp_log(MP_LOG_ERROR,
		       "event=lua_error hook=%s session=%s "
		       "error=%s",
		       mp_q(call->hook), mp_q(call->session),
		       mp_q(call->error));
		if (call->traceback != NULL)
			call_log_traceback(call);
	}
	call_free(call);
	done(&verdict, ctx);
	mp_lua_unref(&lua);
}

/* Moves call on until it waits or ends. Returns true when it ended: done
 * has run and call is freed. */
static bool
call_drive(struct mp_lua_call *call)
{
	char *error = NULL;

	if (call->state == MP_LUA_CALL_RUNNING &&
	    !mp_lua_protect(call->lua, call_step, call, &error)) {
		call_fail(call, error);
		free(error);
	}
	if (call->state == MP_LUA_CALL_WAITING) {
		if (!call_expired(call)) {
			call_arm_timer(call);
			return false;
		}
		call_time_out(call, call->wait.what);
	}
	call_finish(call);
	return true;
}

static void
call_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct mp_lua_call *call = w->data;

	/* The loop's clock may lag the one the deadline was set by: wait
	 * for the rest rather than end the call early. */
	if (!call_expired(call)) {
		call_arm_timer(call);
		return;
	}
	call_time_out(call, call->wait.what);
	call_finish(call);
}

/* ---- waiting --------------------------------------------------------- */

struct mp_lua_call *
mp_lua_call_current(lua_State *L)
{
	return mp_lua_from_state(L)->running;
}

struct mp_lua_call *
mp_lua_call_can_wait(lua_State *L, const char *what)
{
	struct mp_lua_call *call = mp_lua_call_current(L);

	if (call == NULL || call->loading)
		luaL_error(L,
			   "%s: only a hook handler can wait, not a "
			   "script's top level",
			   what);
	if (mp_lua_from_state(L)->loop == NULL)
		luaL_error(L, "%s: no event loop to wait on", what);
	if (!lua_isyieldable(L))
		luaL_error(L,
			   "%s: cannot wait inside a function called "
			   "from C (a table.sort comparator, a metamethod)",
			   what);
	return call;
}

int
mp_lua_call_wait(lua_State *L, struct mp_lua_call *call,
		 const struct mp_lua_wait *wait)
{
	return mp_lua_call_waitk(L, call, wait, 0, NULL);
}

int
mp_lua_call_waitk(lua_State *L, struct mp_lua_call *call,
		  const struct mp_lua_wait *wait, lua_KContext kctx,
		  lua_KFunction k)
{
	assert(!call->waiting && wait->cancel != NULL);
	call->wait = *wait;
	call->waiting = true;
	return lua_yieldk(L, 0, kctx, k);
}

void
mp_lua_call_wake(struct mp_lua_call *call, mp_lua_push_fn *push, void *ctx)
{
	const char *what = call->wait.what;

	assert(call->waiting && call->state == MP_LUA_CALL_WAITING);
	call->waiting = false;
	memset(&call->wait, 0, sizeof(call->wait));
	call->state = MP_LUA_CALL_RUNNING;
	if (call_expired(call)) {
		call_time_out(call, what);
	} else {
		call->wake_push = push;
		call->wake_ctx = ctx;
	}
	call_drive(call);
}

/* ---- public ---------------------------------------------------------- */

struct mp_lua_call *
mp_lua_call_hook(struct mp_lua *lua, const char *hook, const char *session_id,
		 mp_lua_push_fn *push, mp_lua_done_fn *done, void *ctx)
{
	int i = mp_lua_hook_find(lua, hook);
	struct mp_lua_call *call;

	if (i < 0 || lua->nhandlers[i] == 0) {
		struct mp_verdict verdict = {.kind = MP_VERDICT_CONTINUE};

		done(&verdict, ctx);
		return NULL;
	}
	call = call_new(lua, i, session_id);
	call->push = push;
	call->done = done;
	call->ctx = ctx;
	return call_drive(call) ? NULL : call;
}

void
mp_lua_call_cancel(struct mp_lua_call **callp)
{
	struct mp_lua_call *call = *callp;
	struct mp_lua *lua;

	*callp = NULL;
	if (call == NULL)
		return;
	assert(call->state == MP_LUA_CALL_WAITING);
	lua = call->lua;
	call_free(call);
	mp_lua_unref(&lua);
}

size_t
mp_lua_calls_pending(const struct mp_lua *lua)
{
	return lua->ncalls;
}

bool
mp_lua_run_chunk(struct mp_lua *lua, int chunk_ref, char **error_r)
{
	struct mp_lua_call call;
	char *error = NULL;
	bool ok;

	call_init(&call, lua);
	call.loading = true;
	call.chunk_ref = chunk_ref;
	call.nhandlers = 1;
	if (!mp_lua_protect(lua, call_step, &call, &error))
		call_fail(&call, error);
	free(error);
	/* Waiting is refused while loading; this is a safety net. */
	call_fail(&call, "a script's top level cannot wait");
	ok = call.error == NULL;
	if (!ok) {
		*error_r = call.error;
		call.error = NULL;
	}
	call_clear(&call);
	return ok;
}
