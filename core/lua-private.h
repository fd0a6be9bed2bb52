/* lua-private.h - what the Lua runtime, hook calls and the moonpost module
 * share: the runtime and call structs, the protected entry point, waits.
 *
 * Lua's own headers must be included before this one. */
#ifndef MOONPOST_LUA_PRIVATE_H
#define MOONPOST_LUA_PRIVATE_H

#include <ev.h>

#include <moonpost/lua.h>

/* Metatable name of the verdict userdata (which holds a struct mp_verdict). */
#define MP_LUA_VERDICT_MT "moonpost.verdict"

/* Room for "path:line:" as lua_getinfo() gives it (short_src is at most
 * LUA_IDSIZE bytes) plus the line number. */
#define MP_LUA_WHERE_MAX (LUA_IDSIZE + 24)

struct mp_lua {
	lua_State *L;
	struct ev_loop *loop;
	struct mp_pool *pool; /* for blocking work; NULL: run it inline */
	struct mp_dns *dns;   /* for moonpost.dns; NULL: lookups fail */
	uint64_t generation;  /* unique per runtime, checked by handles */
	int refs;
	/* Limits copied from the config; 0 means no limit. */
	uint64_t memory;
	uint64_t memory_total;
	int64_t instructions;
	uint64_t timeout_ms;
	int hook_step; /* instructions between two count-hook ticks */

	size_t total;                /* bytes the state holds now */
	struct mp_lua_call *running; /* call whose coroutine runs now */
	lua_State *running_co;       /* and that coroutine */
	bool loading;                /* scripts run their top level */

	struct mp_strlist hooks; /* hook names that exist */
	size_t *nhandlers;       /* handlers per hook, same order */
	bool any_hook;           /* hook_names was NULL: names unchecked */
	int handlers_ref;        /* registry: {[hook index + 1] = {fn, ...}} */
	int env_mt_ref;          /* registry: metatable of every script _ENV */

	struct mp_lua_call *calls; /* calls in flight */
	size_t ncalls;
	struct mp_events *events; /* notifications (events-queue.c), or NULL */
};

/* What a suspended call waits on, and how to stop waiting. */
struct mp_lua_wait {
	const char
		*what; /* static string ("sleep") naming the wait in messages */
	void (*cancel)(void *data); /* stops it; the wake will never come */
	void *data;
};

enum mp_lua_call_state {
	MP_LUA_CALL_RUNNING = 0,
	MP_LUA_CALL_WAITING,
	MP_LUA_CALL_DONE,
};

/* One hook call, or the top level of a script while it loads. */
struct mp_lua_call {
	struct mp_lua *lua;
	struct mp_lua_call *prev, *next;
	enum mp_lua_call_state state;
	bool loading;     /* a script's top level, not a hook call */
	const char *hook; /* borrowed from lua->hooks; NULL while loading */
	size_t hook_index;
	char *session; /* NULL when the caller gave none */
	mp_lua_push_fn *push;
	mp_lua_done_fn *done;
	void *ctx;

	lua_State *args; /* thread holding the arguments push gave */
	int args_ref;
	int nargs;
	int chunk_ref; /* loading: the script's main function */
	lua_State *co; /* coroutine of the handler running or waiting */
	int co_ref;
	size_t handler; /* 1-based index of the next handler to start */
	size_t nhandlers;
	int resume_nargs;
	mp_lua_push_fn *wake_push; /* values a finished wait hands back */
	void *wake_ctx;

	/* Bounds, shared by every handler of the call. */
	int64_t executed;
	int64_t mem; /* net bytes allocated while running, never below 0 */
	bool mem_over;
	uint64_t deadline; /* mp_now_ms() value; UINT64_MAX without timeout */
	bool killed;
	char kill_msg[MP_LUA_WHERE_MAX + 96];

	bool waiting;
	struct mp_lua_wait wait;
	ev_timer timer; /* the call's timeout while it waits */

	struct mp_verdict verdict;
	char *error;     /* why it failed, "path:line: message" */
	char *traceback; /* debug logging only */
};

/* lua-runtime.c */

/* The runtime that owns L (any thread of the state). */
struct mp_lua *mp_lua_from_state(lua_State *L);
/* The single way C enters Lua: runs fn on the main thread in protected mode
 * with lightuserdata ud as its only argument, a message handler that turns
 * any error into a string, and (debug builds) a check that the stack is
 * balanced. Hook coroutines are resumed from inside fn with
 * mp_lua_resume(), which applies the budget and the memory cap. Returns
 * false and *error_r (caller frees) when fn raised an error. */
bool mp_lua_protect(struct mp_lua *lua, lua_CFunction fn, void *ud,
		    char **error_r);
/* Resumes call->co with nargs values, attributing its instructions and
 * allocations to call. Same results as lua_resume(). */
int mp_lua_resume(struct mp_lua_call *call, lua_State *from, int nargs,
		  int *nresults_r);
/* Prepares a new handler coroutine: installs the instruction-count hook. */
void mp_lua_bound_thread(struct mp_lua *lua, lua_State *co);
/* Writes "path:line:" of the innermost Lua function on co's stack, or ""
 * when there is none. Allocates nothing. */
void mp_lua_where(lua_State *co, char *buf, size_t size);
/* Registry-held table: the metatable given to each script's _ENV. */
void mp_lua_push_env_mt(lua_State *L, struct mp_lua *lua);

/* lua-hook.c */

/* Index of a hook name in lua->hooks, or -1. */
int mp_lua_hook_find(const struct mp_lua *lua, const char *name);
/* [-0, +0, e] Appends the function at index fn to the handlers of hook. */
void mp_lua_hook_add(lua_State *L, struct mp_lua *lua, int hook, int fn);
/* Runs a script's main function (a registry ref) as a bounded call.
 * Returns false with *error_r ("path:line: message", caller frees). */
bool mp_lua_run_chunk(struct mp_lua *lua, int chunk_ref, char **error_r);
/* The call whose handler runs on L now, or NULL (scripts loading give the
 * load call, whose ->loading is set). */
struct mp_lua_call *mp_lua_call_current(lua_State *L);
/* How a C function that Lua called waits (moonpost.sleep, moonpost.dns):
 *
 *   call = mp_lua_call_can_wait(L, "moonpost.sleep");  may raise
 *   start the timer or the query; nothing may raise from here on
 *   return mp_lua_call_wait(L, call, &wait);
 *
 * and, from the loop callback that sees the result, after releasing what
 * the wait held, mp_lua_call_wake(call, push, ctx). */

/* Raises an error unless the handler running on L can wait now (a hook
 * handler, not a script's top level, with no C function such as
 * table.sort in between); returns the call. */
struct mp_lua_call *mp_lua_call_can_wait(lua_State *L, const char *what);
/* Suspends the handler until mp_lua_call_wake(), recording wait so that a
 * timeout or a cancel can stop it (wait->cancel then runs instead of the
 * wake). Only as `return mp_lua_call_wait(...)`. */
int mp_lua_call_wait(lua_State *L, struct mp_lua_call *call,
		     const struct mp_lua_wait *wait);
/* mp_lua_call_wait() that goes on in k (with kctx) when woken, as
 * lua_yieldk() does: k runs on the handler's coroutine, so what it
 * allocates counts against the call and an error it raises names the
 * script line. */
int mp_lua_call_waitk(lua_State *L, struct mp_lua_call *call,
		      const struct mp_lua_wait *wait, lua_KContext kctx,
		      lua_KFunction k);
/* Ends the wait of call and runs the handler on; push (may be NULL) gives
 * the values the waiting function returns. From a loop callback only,
 * never before the handler has yielded. The call may finish, and its done
 * run, before this returns. */
void mp_lua_call_wake(struct mp_lua_call *call, mp_lua_push_fn *push,
		      void *ctx);

/* lua-pool.c: blocking work (a query, a hash) on the thread pool while
 * the handler waits:
 *
 *   check the arguments (may raise)
 *   j = mp_lua_job_new(L, sizeof(*j));     pushes its holder; may raise
 *   fill j->job.what/work/finish/release and the rest (nothing raises)
 *   return mp_lua_job_run(L, &j->job);
 *
 * work runs on a worker thread, then finish on the handler's coroutine.
 * At a script's top level, or in a runtime without a pool, work runs
 * inline instead. The holder frees the job in every case, through
 * release, once neither Lua nor a worker uses it. */
struct mp_lua_job {
	const char *what; /* static: names the wait ("db:query") */
	/* On a worker: the blocking part; touches no Lua and no loop
	 * state. Polls mp_lua_job_stopped() if it may run long. */
	void (*work)(struct mp_lua_job *job);
	/* [-0, +n, e] On the handler's coroutine: pushes the results and
	 * returns n, or raises the job's error. */
	int (*finish)(lua_State *L, struct mp_lua_job *job);
	/* Frees the job (NULL: free() it); on the loop thread. */
	void (*release)(struct mp_lua_job *job);

	/* Private to lua-pool.c. */
	int refs;   /* the holder, and the pool while it has the job */
	int holder; /* stack index of the holder */
	int stop;   /* atomic: nobody waits for the result any more */
	bool cancelled;
	struct mp_lua_call *call;
};

/* [-0, +1, m] Pushes the holder of a new zeroed job of size bytes (a
 * struct whose first member is a struct mp_lua_job) and returns it. */
void *mp_lua_job_new(lua_State *L, size_t size);
/* Runs job (see above). Only as `return mp_lua_job_run(L, job)`. */
int mp_lua_job_run(lua_State *L, struct mp_lua_job *job);
/* True once the result of job is not wanted (the call timed out or was
 * cancelled); safe on a worker thread. */
bool mp_lua_job_stopped(const struct mp_lua_job *job);
/* moonpost.password_verify(password, stored) [-2, +1, e]; may wait. */
int mp_lua_password_verify(lua_State *L);

/* lua-sqlite.c */

/* [-0, +1, m] Pushes the `moonpost.sqlite` module table (not frozen) and
 * registers the database handle's metatable. */
void mp_lua_open_sqlite(lua_State *L);

/* lua-dns.c */

/* [-0, +1, m] Pushes the `moonpost.dns` module table (not frozen) and
 * registers the metatable of its waits. */
void mp_lua_open_dns(lua_State *L);

/* lua-http.c */

/* [-0, +1, m] Pushes the `moonpost.http` module table (not frozen) and
 * registers the metatable of its requests. */
void mp_lua_open_http(lua_State *L);

/* lua-moonpost.c */

/* [-0, +1, m] Pushes the `moonpost` module table (not yet frozen) and
 * registers the verdict metatable. */
void mp_lua_open_moonpost(lua_State *L);
/* The verdict at idx, or NULL when the value is not one. */
const struct mp_verdict *mp_lua_to_verdict(lua_State *L, int idx);

#endif
