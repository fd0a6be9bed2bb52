/* lua-runtime.c - the Lua state: allocator, bounds, sandbox, scripts, refs.
 *
 * The sandbox: the shared globals hold the safe parts of the base library
 * and read-only proxies of string, table, math, utf8 and moonpost; the
 * globals themselves are reached only through another read-only proxy.
 * Each script gets its own _ENV whose metatable reads through to that
 * proxy, so a script's globals stay its own and no script can change what
 * another one sees. */
#include "config.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <moonpost/log.h>

#include "events-private.h"
#include "lua-private.h"

/* Instructions between two ticks of the count hook: often enough that a
 * runaway loop stops close to its budget and its deadline, rarely enough
 * that the hook and its clock read cost nothing measurable. */
#define HOOK_STEP 1000

struct mp_lua *
mp_lua_from_state(lua_State *L)
{
	void *ud;

	lua_getallocf(L, &ud);
	return ud;
}

/* ---- allocator ------------------------------------------------------- */

static void count_hook(lua_State *co, lua_Debug *ar);

/* The running call went over its cap. Growth keeps failing for the rest of
 * the call, and the next instruction raises an error that names the script
 * position, so that a pcall around the allocation cannot hide it. */
static void
call_over_memory(struct mp_lua *lua, struct mp_lua_call *call)
{
	call->mem_over = true;
	if (lua->running_co != NULL)
		lua_sethook(lua->running_co, count_hook, LUA_MASKCOUNT, 1);
}

/* Whether the state may grow by n bytes now. The call's own cap comes
 * first: going over it is sticky, the total cap is not (the state may be
 * full of other scripts' garbage that a collection frees). */
static bool
alloc_allowed(struct mp_lua *lua, size_t n)
{
	struct mp_lua_call *call = lua->running;

	if (call != NULL && lua->memory > 0 &&
	    (call->mem_over || (uint64_t)call->mem > lua->memory ||
	     n > lua->memory - (uint64_t)call->mem)) {
		call_over_memory(lua, call);
		return false;
	}
	return lua->memory_total == 0 || (lua->total <= lua->memory_total &&
					  n <= lua->memory_total - lua->total);
}

static void
alloc_account(struct mp_lua *lua, size_t freed, size_t got)
{
	struct mp_lua_call *call = lua->running;

	lua->total = lua->total - freed + got;
	if (call == NULL)
		return;
	/* Frees of garbage older than the call would otherwise give it
	 * credit to hold more than its cap. */
	call->mem += (int64_t)got - (int64_t)freed;
	if (call->mem < 0)
		call->mem = 0;
}

static void *
state_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct mp_lua *lua = ud;
	/* For a new block, osize tells the object type, not a size. */
	size_t old = ptr != NULL ? osize : 0;
	void *p;

	if (nsize == 0) {
		free(ptr);
		alloc_account(lua, old, 0);
		return NULL;
	}
	if (nsize > old && !alloc_allowed(lua, nsize - old))
		return NULL;
	p = realloc(ptr, nsize);
	if (p != NULL)
		alloc_account(lua, old, nsize);
	return p;
}

static int
panic(lua_State *L)
{
	mp_log(MP_LOG_ERROR, "event=lua_panic error=%s",
	       mp_q(lua_tostring(L, -1)));
	abort();
}

/* ---- bounds ---------------------------------------------------------- */

void
mp_lua_where(lua_State *co, char *buf, size_t size)
{
	lua_Debug ar;

	buf[0] = '\0';
	for (int level = 0; lua_getstack(co, level, &ar); level++) {
		if (lua_getinfo(co, "Sl", &ar) && ar.currentline > 0) {
			snprintf(buf, size, "%s:%d:", ar.short_src,
				 ar.currentline);
			return;
		}
	}
}

static void
call_kill(struct mp_lua_call *call, lua_State *co, const char *what)
{
	char where[MP_LUA_WHERE_MAX];

	mp_lua_where(co, where, sizeof(where));
	snprintf(call->kill_msg, sizeof(call->kill_msg), "%s%s%s", where,
		 where[0] != '\0' ? " " : "", what);
	call->killed = true;
}

/* Counts a tick against the call; true (and kill_msg set) when it has
 * gone over a bound. */
static bool
bounds_crossed(struct mp_lua *lua, struct mp_lua_call *call, lua_State *co)
{
	char what[96];

	call->executed += lua->hook_step;
	if (lua->instructions > 0 && call->executed > lua->instructions)
		snprintf(what, sizeof(what),
			 "instruction budget of %lld exceeded",
			 (long long)lua->instructions);
	else if (call->mem_over)
		snprintf(what, sizeof(what),
			 "not enough memory (a call may hold %llu bytes)",
			 (unsigned long long)lua->memory);
	else if (mp_now_ms() >= call->deadline)
		snprintf(what, sizeof(what), "timed out after %llu ms",
			 (unsigned long long)lua->timeout_ms);
	else
		return false;
	call_kill(call, co, what);
	return true;
}

static void
count_hook(lua_State *co, lua_Debug *ar)
{
	struct mp_lua *lua = mp_lua_from_state(co);
	struct mp_lua_call *call = lua->running;

	if (call == NULL || (!call->killed && !bounds_crossed(lua, call, co)))
		return;
	/* From now on raise at every instruction, as Redis does: a pcall
	 * in the script catches one of these errors, never all of them. */
	lua_sethook(co, count_hook, LUA_MASKCOUNT, 1);
	lua_pushstring(co, call->kill_msg);
	lua_error(co);
}

void
mp_lua_bound_thread(struct mp_lua *lua, lua_State *co)
{
	lua_sethook(co, count_hook, LUA_MASKCOUNT, lua->hook_step);
}

int
mp_lua_resume(struct mp_lua_call *call, lua_State *from, int nargs,
	      int *nresults_r)
{
	struct mp_lua *lua = call->lua;
	int status;

	/* One handler runs at a time: the allocator charges lua->running. */
	assert(lua->running == NULL);
	lua->running = call;
	lua->running_co = call->co;
	status = lua_resume(call->co, from, nargs, nresults_r);
	lua->running = NULL;
	lua->running_co = NULL;
	return status;
}

/* ---- the entry point ------------------------------------------------- */

/* [-1, +1, -] Any error value becomes a string. Calling __tostring here
 * would run script code outside any bound, so a type name has to do. */
static int
message_handler(lua_State *L)
{
	if (lua_type(L, 1) != LUA_TSTRING)
		lua_pushfstring(L, "(error object is a %s value)",
				luaL_typename(L, 1));
	return 1;
}

bool
mp_lua_protect(struct mp_lua *lua, lua_CFunction fn, void *ud, char **error_r)
{
	lua_State *L = lua->L;
	int base = lua_gettop(L);
	int status;

	lua_pushcfunction(L, message_handler);
	lua_pushcfunction(L, fn);
	lua_pushlightuserdata(L, ud);
	status = lua_pcall(L, 1, 0, base + 1);
	if (status != LUA_OK) {
		const char *msg = lua_tostring(L, -1);

		*error_r = mp_xstrdup(msg != NULL ? msg : "unknown error");
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	assert(lua_gettop(L) == base);
	return status == LUA_OK;
}

/* ---- sandbox --------------------------------------------------------- */

/* [-3, +0, e] __newindex of every frozen table. */
static int
frozen_newindex(lua_State *L)
{
	if (lua_type(L, 2) == LUA_TSTRING)
		return luaL_error(L, "cannot set '%s': the table is read-only",
				  lua_tostring(L, 2));
	return luaL_error(L, "cannot modify a read-only table");
}

/* [-2, +2|1, e] next() over the frozen table (upvalue 1). */
static int
frozen_next(lua_State *L)
{
	lua_settop(L, 2);
	if (lua_next(L, lua_upvalueindex(1)))
		return 2;
	lua_pushnil(L);
	return 1;
}

/* [-1, +3, -] __pairs: iterates without handing out the real table. */
static int
frozen_pairs(lua_State *L)
{
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushvalue(L, 1);
	lua_pushnil(L);
	return 3;
}

/* [-1, +1, m] Replaces the table on top with a read-only proxy of it. */
static void
freeze(lua_State *L)
{
	lua_newtable(L);          /* t proxy */
	lua_createtable(L, 0, 4); /* t proxy mt */
	lua_pushvalue(L, -3);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, frozen_newindex);
	lua_setfield(L, -2, "__newindex");
	lua_pushvalue(L, -3);
	lua_pushcclosure(L, frozen_next, 1);
	lua_pushcclosure(L, frozen_pairs, 1);
	lua_setfield(L, -2, "__pairs");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, -2); /* t proxy */
	lua_remove(L, -2);
}

/* True when the table at idx is a frozen proxy. */
static bool
is_frozen(lua_State *L, int idx)
{
	bool frozen;

	if (!lua_getmetatable(L, idx))
		return false;
	lua_pushliteral(L, "__newindex");
	lua_rawget(L, -2);
	frozen = lua_tocfunction(L, -1) == frozen_newindex;
	lua_pop(L, 2);
	return frozen;
}

/* [-3, +1, e] rawset() that cannot write around a frozen proxy's
 * __newindex. */
static int
safe_rawset(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checkany(L, 2);
	luaL_checkany(L, 3);
	if (is_frozen(L, 1))
		return luaL_error(L, "cannot modify a read-only table");
	lua_settop(L, 3);
	lua_rawset(L, 1);
	return 1;
}

/* [-2, +1, e] setmetatable() without __gc: a finalizer runs whenever the
 * collector gets to it, inside another script's call or outside any call
 * (lua_close), where no budget would stop it. */
static int
safe_setmetatable(lua_State *L)
{
	int t = lua_type(L, 2);

	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2,
			 "nil or table");
	if (t == LUA_TTABLE) {
		lua_pushliteral(L, "__gc");
		if (lua_rawget(L, 2) != LUA_TNIL)
			return luaL_error(L, "__gc metamethods are not allowed "
					     "in scripts");
		lua_pop(L, 1);
	}
	if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
		return luaL_error(L, "cannot change a protected metatable");
	lua_settop(L, 2);
	lua_setmetatable(L, 1);
	return 1;
}

/* [-0|1, +1, e] collectgarbage("count") only: "stop" in one script would
 * stop collection for all of them, and "collect" costs a full collection
 * of the shared heap for one instruction of budget. */
static int
safe_collectgarbage(lua_State *L)
{
	const char *opt = luaL_optstring(L, 1, "collect");
	int kb, bytes;

	if (strcmp(opt, "count") != 0)
		return luaL_error(L, "collectgarbage: only \"count\" is "
				     "allowed in scripts");
	kb = lua_gc(L, LUA_GCCOUNT);
	bytes = lua_gc(L, LUA_GCCOUNTB);
	lua_pushnumber(L, (lua_Number)kb + (lua_Number)bytes / 1024);
	return 1;
}

static const luaL_Reg sandbox_libs[] = {
	{LUA_GNAME, luaopen_base},       {LUA_STRLIBNAME, luaopen_string},
	{LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
	{LUA_UTF8LIBNAME, luaopen_utf8},
};

/* File access, the loader and stdout (moonpost.log replaces print and
 * warn). _G is set per script to its own _ENV. */
static const char *const sandbox_removed[] = {
	"dofile", "loadfile", "load", "require", "print", "warn", "_G",
};

static const luaL_Reg sandbox_replaced[] = {
	{"rawset", safe_rawset},
	{"setmetatable", safe_setmetatable},
	{"collectgarbage", safe_collectgarbage},
	{NULL, NULL},
};

static const char *const sandbox_frozen[] = {
	LUA_STRLIBNAME,  LUA_TABLIBNAME, LUA_MATHLIBNAME,
	LUA_UTF8LIBNAME, "moonpost",
};

/* [-0, +0, m] Strings share one metatable whose __index is the real
 * string table; scripts must neither see nor change it. */
static void
protect_string_metatable(lua_State *L)
{
	lua_pushliteral(L, "");
	lua_getmetatable(L, -1);
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 2);
}

/* [-1, +0, m] Fills the shared globals table G (on top), minus what the
 * sandbox removes, with library proxies. */
static void
sandbox_fill(lua_State *L)
{
	for (size_t i = 0; i < MP_NELEMS(sandbox_removed); i++) {
		lua_pushnil(L);
		lua_setfield(L, -2, sandbox_removed[i]);
	}
	luaL_setfuncs(L, sandbox_replaced, 0);
	/* Bytecode is of no use without load(); keep it out of reach. */
	lua_getfield(L, -1, LUA_STRLIBNAME);
	lua_pushnil(L);
	lua_setfield(L, -2, "dump");
	lua_pop(L, 1);
	mp_lua_open_moonpost(L);
	/* A sub-table of a frozen table is not frozen with it. */
	mp_lua_open_sqlite(L);
	freeze(L);
	lua_setfield(L, -2, "sqlite");
	mp_lua_open_dns(L);
	freeze(L);
	lua_setfield(L, -2, "dns");
	mp_lua_open_http(L);
	freeze(L);
	lua_setfield(L, -2, "http");
	lua_setfield(L, -2, "moonpost");
	for (size_t i = 0; i < MP_NELEMS(sandbox_frozen); i++) {
		lua_getfield(L, -1, sandbox_frozen[i]);
		freeze(L);
		lua_setfield(L, -2, sandbox_frozen[i]);
	}
}

/* [-1, +0, m] Protected: opens the libraries and builds the sandbox. */
static int
sandbox_open(lua_State *L)
{
	struct mp_lua *lua = lua_touserdata(L, 1);

	for (size_t i = 0; i < MP_NELEMS(sandbox_libs); i++) {
		luaL_requiref(L, sandbox_libs[i].name, sandbox_libs[i].func, 1);
		lua_pop(L, 1);
	}
	protect_string_metatable(L);
	lua_pushglobaltable(L);
	sandbox_fill(L);
	freeze(L);
	lua_createtable(L, 0, 2); /* proxy env_mt */
	lua_insert(L, -2);
	lua_setfield(L, -2, "__index");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua->env_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_newtable(L);
	lua->handlers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return 0;
}

void
mp_lua_push_env_mt(lua_State *L, struct mp_lua *lua)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, lua->env_mt_ref);
}

/* ---- scripts --------------------------------------------------------- */

struct script_load {
	struct mp_lua *lua;
	const char *path;
	int chunk_ref;
};

/* [-1, +0, e] Protected: compiles a script (text only: bytecode can crash
 * the VM) and gives it a fresh _ENV. */
static int
script_compile(lua_State *L)
{
	struct script_load *s = lua_touserdata(L, 1);

	/* The chunk name is "@path", so messages read "path:line: ...". */
	if (luaL_loadfilex(L, s->path, "t") != LUA_OK)
		return lua_error(L);
	lua_createtable(L, 0, 1);
	lua_pushvalue(L, -1);
	lua_setfield(L, -2, "_G");
	mp_lua_push_env_mt(L, s->lua);
	lua_setmetatable(L, -2);
	/* A main chunk's one upvalue is _ENV. */
	if (lua_setupvalue(L, -2, 1) == NULL)
		lua_pop(L, 1);
	s->chunk_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return 0;
}

static bool
script_load(struct mp_lua *lua, const char *path, char **error_r)
{
	struct script_load s = {.lua = lua, .path = path};
	bool ok;

	s.chunk_ref = LUA_NOREF;
	if (!mp_lua_protect(lua, script_compile, &s, error_r))
		return false;
	ok = mp_lua_run_chunk(lua, s.chunk_ref, error_r);
	luaL_unref(lua->L, LUA_REGISTRYINDEX, s.chunk_ref);
	return ok;
}

static bool
scripts_load(struct mp_lua *lua, const struct mp_strlist *scripts,
	     char **error_r)
{
	bool ok = true;

	lua->loading = true;
	for (size_t i = 0; ok && i < scripts->n; i++)
		ok = script_load(lua, scripts->v[i], error_r);
	lua->loading = false;
	return ok;
}

/* ---- lifetime -------------------------------------------------------- */

static struct mp_lua *
runtime_alloc(struct ev_loop *loop, const struct mp_cfg_lua *cfg,
	      const char *const *hook_names)
{
	/* Runtimes are made on the loop thread only. */
	static uint64_t generations;
	struct mp_lua *lua = mp_xcalloc(1, sizeof(*lua));

	lua->loop = loop;
	lua->generation = ++generations;
	lua->refs = 1;
	lua->memory = cfg->memory;
	lua->memory_total = cfg->memory_total;
	lua->instructions = cfg->instructions > 0 ? cfg->instructions : 0;
	lua->timeout_ms = cfg->timeout;
	lua->hook_step = HOOK_STEP;
	if (lua->instructions > 0 && lua->instructions < HOOK_STEP)
		lua->hook_step = (int)lua->instructions;
	lua->any_hook = hook_names == NULL;
	for (size_t i = 0; hook_names != NULL && hook_names[i] != NULL; i++)
		mp_strlist_add(&lua->hooks, hook_names[i]);
	lua->nhandlers = mp_xcalloc(lua->hooks.n + 1, sizeof(size_t));
	lua->handlers_ref = LUA_NOREF;
	lua->env_mt_ref = LUA_NOREF;
	return lua;
}

static void
runtime_free(struct mp_lua *lua)
{
	assert(lua->ncalls == 0);
	mp_events_free(lua);
	if (lua->L != NULL)
		lua_close(lua->L);
	assert(lua->total == 0);
	mp_strlist_free(&lua->hooks);
	free(lua->nhandlers);
	free(lua);
}

struct mp_lua *
mp_lua_new(struct ev_loop *loop, const struct mp_cfg_lua *cfg,
	   const char *const *hook_names, char **error_r)
{
	struct mp_lua *lua = runtime_alloc(loop, cfg, hook_names);
	char *error = NULL;

	lua->L = lua_newstate(state_alloc, lua);
	if (lua->L == NULL) {
		*error_r = mp_xstrdup("cannot create the Lua state: "
				      "lua.memory_total is too small");
		runtime_free(lua);
		return NULL;
	}
	lua_atpanic(lua->L, panic);
	if (!mp_lua_protect(lua, sandbox_open, lua, &error) ||
	    !scripts_load(lua, &cfg->scripts, &error)) {
		*error_r = error;
		runtime_free(lua);
		return NULL;
	}
	return lua;
}

struct mp_lua *
mp_lua_ref(struct mp_lua *lua)
{
	lua->refs++;
	return lua;
}

void
mp_lua_unref(struct mp_lua **luap)
{
	struct mp_lua *lua = *luap;

	*luap = NULL;
	if (lua == NULL)
		return;
	assert(lua->refs > 0);
	/* Each call in flight holds a reference, so the last one going
	 * means no call is left. */
	if (--lua->refs == 0)
		runtime_free(lua);
}

bool
mp_lua_has_hook(const struct mp_lua *lua, const char *hook)
{
	int i = mp_lua_hook_find(lua, hook);

	return i >= 0 && lua->nhandlers[i] > 0;
}

struct lua_State *
mp_lua_state(struct mp_lua *lua)
{
	return lua->L;
}
