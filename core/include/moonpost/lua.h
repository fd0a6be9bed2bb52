/* lua.h - the Lua runtime and its hook registry.
 *
 * One lua_State per runtime generation (SIGHUP builds a new one and swaps it
 * in when the scripts load cleanly). Scripts register handlers by hook name:
 *
 *   moonpost.hook("smtp.rcpt", function(tx, rcpt)
 *       if rcpt == "old@example.org" then
 *           return moonpost.reject(550, "5.1.1", "gone")
 *       end
 *   end)
 *
 * Every hook call runs its handlers, in the order they were registered, each
 * in its own coroutine, until one returns a verdict other than continue.
 * A call is bounded by an instruction budget, a memory cap and a wall-clock
 * timeout; a handler may wait (moonpost.sleep, moonpost.dns) without blocking
 * the loop. A script that errs or goes over a bound is logged with file and
 * line and yields MP_VERDICT_TEMPFAIL: the caller defers, never accepts.
 *
 * Each script runs with its own _ENV over a frozen table of the safe
 * libraries (base without file access, string, table, math, utf8) and the
 * `moonpost` module. */
#ifndef MOONPOST_LUA_H
#define MOONPOST_LUA_H

#include <moonpost/common.h>
#include <moonpost/config.h>

struct ev_loop;
struct lua_State;
struct mp_lua;
struct mp_lua_call;
struct mp_pool;
struct mp_dns;

enum mp_verdict_kind {
	MP_VERDICT_CONTINUE = 0, /* no opinion: go on as if no hook ran */
	MP_VERDICT_ACCEPT,       /* accept now, skipping later handlers */
	MP_VERDICT_REJECT,       /* refuse permanently (code, enhanced, text) */
	MP_VERDICT_DEFER,        /* refuse for now; the client retries */
	MP_VERDICT_DISCONNECT,   /* refuse and drop the connection */
	MP_VERDICT_TEMPFAIL,     /* the script failed: error, budget, timeout */
};

#define MP_VERDICT_TEXT_MAX 256

struct mp_verdict {
	enum mp_verdict_kind kind;
	int code;          /* REJECT/DEFER: 0 = the protocol's default */
	char enhanced[16]; /* "5.7.1", or "" for the protocol's default */
	char text[MP_VERDICT_TEXT_MAX]; /* one line, CR/LF/NUL removed */
};

/* Pushes a hook's arguments onto L and returns how many it pushed. Called
 * once per hook call, before the first handler runs. */
typedef int mp_lua_push_fn(struct lua_State *L, void *ctx);
/* Receives the verdict of a hook call, exactly once unless cancelled. */
typedef void mp_lua_done_fn(const struct mp_verdict *verdict, void *ctx);

/* Builds a runtime and runs the scripts in cfg->scripts, which register
 * their handlers. hook_names (NULL-terminated) are the hooks that exist;
 * registering any other name is an error, which catches typos at load time.
 * NULL accepts any name (tools that load no plugins, like `deliver`).
 * Returns NULL with *error_r ("file:line: message", caller frees) when a
 * script fails to load. The caller owns the result (mp_lua_unref). */
MP_API struct mp_lua *mp_lua_new(struct ev_loop *loop,
				 const struct mp_cfg_lua *cfg,
				 const char *const *hook_names, char **error_r);
/* Adds a reference; returns lua. */
MP_API struct mp_lua *mp_lua_ref(struct mp_lua *lua);
/* Drops a reference; the runtime is freed with the last one and once no
 * call is in flight. Sets *lua NULL. */
MP_API void mp_lua_unref(struct mp_lua **lua);
/* True when at least one handler is registered for hook (callers skip
 * building arguments otherwise). */
MP_API bool mp_lua_has_hook(const struct mp_lua *lua, const char *hook);
/* Runs the handlers of hook. session_id (may be NULL) tags log lines.
 * done is called exactly once with the verdict, possibly before this
 * returns; returns NULL in that case, otherwise a handle that may be given to
 * mp_lua_call_cancel() while the call waits. */
MP_API struct mp_lua_call *
mp_lua_call_hook(struct mp_lua *lua, const char *hook, const char *session_id,
		 mp_lua_push_fn *push, mp_lua_done_fn *done, void *ctx);
/* Abandons a waiting call: done will not be called. Sets *call NULL. */
MP_API void mp_lua_call_cancel(struct mp_lua_call **call);
/* Calls in flight (waiting in a coroutine). */
MP_API size_t mp_lua_calls_pending(const struct mp_lua *lua);
/* Gives the runtime a thread pool (borrowed; it must outlive the
 * runtime's calls) for blocking work such as moonpost.sqlite queries and
 * moonpost.password_verify. Without one, that work runs on the calling
 * thread: fine for check-config and tests, not for a server. */
MP_API void mp_lua_set_pool(struct mp_lua *lua, struct mp_pool *pool);
/* Gives the runtime a resolver (borrowed; it must outlive the runtime's
 * calls) for moonpost.dns. Without one, lookups give nil and an error. */
MP_API void mp_lua_set_dns(struct mp_lua *lua, struct mp_dns *dns);
/* The runtime's main state, for binding objects (borrowed). */
MP_API struct lua_State *mp_lua_state(struct mp_lua *lua);
/* Name of a verdict kind ("reject"); static string. */
MP_API const char *mp_verdict_name(enum mp_verdict_kind kind);

#endif
