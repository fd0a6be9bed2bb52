/* config-eval.c - runs a config file in a Lua sandbox.
 *
 * The file gets a fresh lua_State with a capped allocator and an
 * instruction budget, and only the safe parts of the standard library. Its
 * _ENV is a proxy: assigning a global hands a setting to the caller's item
 * callback (then stores it, so it can be read back), and each section name
 * is a function that hands its table over. Values are copied out of Lua as
 * they are given, so the caller never sees the lua_State and can check each
 * item while its line is still known. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "config-private.h"

/* A config is a page of settings; 16 MB leaves room for generated tables
 * while stopping `string.rep("x", 1e9)` long before it hurts the host. */
#define EVAL_MEMORY_MAX (16 * 1024 * 1024)
/* A tenth of a second or so: plenty for loops that build listeners, and
 * a bound on `while true do end`. Long-running C calls (a pathological
 * string.find) are not counted; the file is the operator's own. */
#define EVAL_STEPS_MAX  10000000
#define EVAL_HOOK_EVERY 1000
/* Sections hold lists at most; deeper tables are only typed, which also
 * makes cycles harmless. */
#define VALUE_DEPTH_MAX 2
/* Bound the copy of one item: a table or string referenced from many
 * keys is copied again for each, so the copy can outgrow the sandbox. */
#define VALUE_NODES_MAX 200000
#define VALUE_BYTES_MAX EVAL_MEMORY_MAX

struct eval_ctx {
	const struct mp_cfg_eval_params *params;
	lua_State *L;
	size_t memory;
	uint64_t steps;
	int budget_line; /* > 0 once the budget ran out */
	int oom_line;    /* line of the last refused allocation */
	int error_line;  /* line of the last runtime error */
	char *error;     /* our first error: sticky, pcall cannot hide it */
	char short_src[LUA_IDSIZE];
};

struct value_copy {
	lua_State *L;
	size_t nodes;
	size_t bytes;
	const char *error; /* static */
};

static struct eval_ctx *
ctx_of(lua_State *L)
{
	void *ud;

	lua_getallocf(L, &ud);
	return ud;
}

/* The line running at stack level (1: whoever called this C function). */
static int
line_at(lua_State *L, int level)
{
	lua_Debug ar;

	for (; lua_getstack(L, level, &ar); level++) {
		if (lua_getinfo(L, "l", &ar) && ar.currentline > 0)
			return ar.currentline;
	}
	return 0;
}

static void *
eval_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct eval_ctx *ctx = ud;
	size_t old = ptr != NULL ? osize : 0;
	void *p;

	if (nsize == 0) {
		ctx->memory -= old;
		free(ptr);
		return NULL;
	}
	if (nsize > old && nsize - old > EVAL_MEMORY_MAX - ctx->memory) {
		/* Reading the stack allocates nothing, so it is safe here. */
		if (ctx->L != NULL)
			ctx->oom_line = line_at(ctx->L, 0);
		return NULL;
	}
	p = realloc(ptr, nsize);
	if (p != NULL)
		ctx->memory = ctx->memory - old + nsize;
	return p;
}

static void
eval_hook(lua_State *L, lua_Debug *ar)
{
	struct eval_ctx *ctx = ctx_of(L);

	ctx->steps += EVAL_HOOK_EVERY;
	if (ctx->steps < EVAL_STEPS_MAX)
		return;
	if (ctx->budget_line == 0 && lua_getinfo(L, "l", ar))
		ctx->budget_line = ar->currentline > 0 ? ar->currentline : -1;
	/* From now on every instruction fails, so a pcall that catches the
	 * error cannot go on running. */
	lua_sethook(L, eval_hook, LUA_MASKCOUNT, 1);
	lua_pushliteral(L, "config evaluation took too long");
	lua_error(L);
}

/* Keeps the first error and raises it. */
static int
raise_error(lua_State *L, char *error)
{
	struct eval_ctx *ctx = ctx_of(L);

	if (ctx->error == NULL)
		ctx->error = error;
	else
		free(error);
	lua_pushstring(L, ctx->error);
	return lua_error(L);
}

static int raise_at(lua_State *L, int line, const char *fmt, ...)
	MP_PRINTF(3, 4);

static int
raise_at(lua_State *L, int line, const char *fmt, ...)
{
	struct eval_ctx *ctx = ctx_of(L);
	struct mp_buf buf = {0};
	char *error;
	va_list ap;

	va_start(ap, fmt);
	mp_buf_vprintf(&buf, fmt, ap);
	va_end(ap);
	error = mp_cfg_error_at(ctx->params->name, line, "%s", buf.data);
	mp_buf_free(&buf);
	return raise_error(L, error);
}

/* ---- copying values out ---- */

static bool copy_value(struct value_copy *c, int idx, int depth,
		       struct mp_cfg_value *v);

static int
kind_rank(enum mp_cfg_vkind kind)
{
	return kind == MP_CFGV_INT ? 0 : kind == MP_CFGV_STRING ? 2 : 1;
}

static int
pair_cmp(const void *a, const void *b)
{
	const struct mp_cfg_value *x = &((const struct mp_cfg_pair *)a)->key;
	const struct mp_cfg_value *y = &((const struct mp_cfg_pair *)b)->key;
	int rx = kind_rank(x->kind), ry = kind_rank(y->kind);
	size_t n;
	int r;

	if (rx != ry)
		return rx - ry;
	if (x->kind == MP_CFGV_INT)
		return (x->u.i > y->u.i) - (x->u.i < y->u.i);
	if (x->kind != MP_CFGV_STRING)
		return 0;
	n = x->u.s.len < y->u.s.len ? x->u.s.len : y->u.s.len;
	r = memcmp(x->u.s.p, y->u.s.p, n);
	return r != 0 ? r
		      : (x->u.s.len > y->u.s.len) - (x->u.s.len < y->u.s.len);
}

static struct mp_cfg_pair *
table_add(struct mp_cfg_value *v, size_t *cap)
{
	struct mp_cfg_pair *p;

	if (v->u.t.n == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		v->u.t.v = mp_xrealloc(v->u.t.v, *cap * sizeof(*v->u.t.v));
	}
	p = &v->u.t.v[v->u.t.n++];
	memset(p, 0, sizeof(*p));
	return p;
}

/* Never raises a Lua error: a longjmp would leak the copy. */
static bool
copy_table(struct value_copy *c, int idx, int depth, struct mp_cfg_value *v)
{
	size_t cap = 0;

	v->kind = MP_CFGV_TABLE;
	if (depth >= VALUE_DEPTH_MAX)
		return true;
	if (!lua_checkstack(c->L, 4)) {
		c->error = "out of Lua stack";
		return false;
	}
	lua_pushnil(c->L);
	while (lua_next(c->L, idx) != 0) {
		struct mp_cfg_pair *p = table_add(v, &cap);
		if (++c->nodes > VALUE_NODES_MAX)
			c->error = "too many values";
		if (c->error != NULL ||
		    !copy_value(c, lua_absindex(c->L, -2), depth + 1,
				&p->key) ||
		    !copy_value(c, lua_absindex(c->L, -1), depth + 1,
				&p->value)) {
			lua_pop(c->L, 2);
			return false;
		}
		lua_pop(c->L, 1);
	}
	if (v->u.t.n > 1)
		qsort(v->u.t.v, v->u.t.n, sizeof(*v->u.t.v), pair_cmp);
	return true;
}

static bool
copy_value(struct value_copy *c, int idx, int depth, struct mp_cfg_value *v)
{
	const char *s;

	switch (lua_type(c->L, idx)) {
	case LUA_TNIL:
		v->kind = MP_CFGV_NIL;
		return true;
	case LUA_TBOOLEAN:
		v->kind = MP_CFGV_BOOL;
		v->u.b = lua_toboolean(c->L, idx);
		return true;
	case LUA_TNUMBER:
		v->kind =
			lua_isinteger(c->L, idx) ? MP_CFGV_INT : MP_CFGV_FLOAT;
		if (v->kind == MP_CFGV_INT)
			v->u.i = lua_tointeger(c->L, idx);
		else
			v->u.f = lua_tonumber(c->L, idx);
		return true;
	case LUA_TSTRING:
		s = lua_tolstring(c->L, idx, &v->u.s.len);
		c->bytes += v->u.s.len;
		if (c->bytes > VALUE_BYTES_MAX) {
			c->error = "too much text";
			return false;
		}
		v->u.s.p = mp_xstrndup(s, v->u.s.len);
		v->kind = MP_CFGV_STRING;
		return true;
	case LUA_TTABLE:
		return copy_table(c, idx, depth, v);
	default:
		v->kind = MP_CFGV_OTHER;
		v->u.type_name = lua_typename(c->L, lua_type(c->L, idx));
		return true;
	}
}

/* Copies the value at idx and gives it to the item callback; raises on
 * any error. */
static int
deliver(lua_State *L, int idx, const char *name, bool is_section)
{
	struct eval_ctx *ctx = ctx_of(L);
	struct value_copy c = {.L = L};
	struct mp_cfg_value value = {0};
	struct mp_cfg_item item = {name, line_at(L, 1), is_section, &value};
	char *msg = NULL, *error;
	bool ok;

	if (!copy_value(&c, lua_absindex(L, idx), 0, &value))
		msg = mp_xasprintf("%s: %s to copy", name, c.error);
	ok = msg == NULL && ctx->params->item(ctx->params->ctx, &item, &msg);
	mp_cfg_value_free(&value);
	if (ok)
		return 0;
	error = mp_cfg_error_at(ctx->params->name, item.line, "%s", msg);
	free(msg);
	return raise_error(L, error);
}

void
mp_cfg_value_free(struct mp_cfg_value *v)
{
	if (v->kind == MP_CFGV_STRING) {
		free(v->u.s.p);
	} else if (v->kind == MP_CFGV_TABLE) {
		for (size_t i = 0; i < v->u.t.n; i++) {
			mp_cfg_value_free(&v->u.t.v[i].key);
			mp_cfg_value_free(&v->u.t.v[i].value);
		}
		free(v->u.t.v);
	}
	memset(v, 0, sizeof(*v));
}

/* ---- what the file can call ---- */

static bool
is_section(const struct eval_ctx *ctx, const char *name)
{
	for (const char *const *s = ctx->params->sections; *s != NULL; s++) {
		if (strcmp(*s, name) == 0)
			return true;
	}
	return false;
}

/* __newindex of _ENV: (proxy, key, value). A setting. Its line is where
 * Lua stores the value: for a table over several lines, the last one. */
static int
env_newindex(lua_State *L)
{
	const char *name;

	/* Checked first: lua_tostring() would turn a number into a name. */
	if (lua_type(L, 2) != LUA_TSTRING)
		return raise_at(L, line_at(L, 1),
				"only named settings can be assigned");
	name = lua_tostring(L, 2);
	if (is_section(ctx_of(L), name))
		return raise_at(L, line_at(L, 1),
				"%s is a section: write %s { ... }", name,
				name);
	deliver(L, 3, name, false);
	/* Kept so that later lines can read it back. */
	lua_rawset(L, lua_upvalueindex(1));
	return 0;
}

/* A section: name { ... }. Upvalue 1 is the name. */
static int
section_call(lua_State *L)
{
	const char *name = lua_tostring(L, lua_upvalueindex(1));

	if (lua_gettop(L) != 1 || lua_type(L, 1) != LUA_TTABLE)
		return raise_at(L, line_at(L, 1),
				"%s: expected one table, as in %s { ... }",
				name, name);
	return deliver(L, 1, name, true);
}

static int
unknown_section(lua_State *L, const char *name)
{
	struct mp_cfg_suggest sg;

	mp_cfg_suggest_init(&sg, name);
	for (const char *const *s = ctx_of(L)->params->sections; *s; s++)
		mp_cfg_suggest_try(&sg, *s);
	return raise_at(L, line_at(L, 1), "unknown section '%s'%s", name,
			mp_cfg_suggest_text(&sg));
}

/* __call of nil: (nil, args...). Calling an undefined global with a table
 * is a section this config does not know: refused with its name, or
 * skipped when plugins are not loaded. Anything else reads as Lua's own
 * message would. */
static int
nil_call(lua_State *L)
{
	struct eval_ctx *ctx = ctx_of(L);
	lua_Debug ar;
	const char *name = NULL, *namewhat = "";

	/* Lua names the callee from the caller's code: "global 'smtpp'". */
	if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) &&
	    ar.name != NULL) {
		name = ar.name;
		namewhat = ar.namewhat;
	}
	if (name != NULL && strcmp(namewhat, "global") == 0 &&
	    lua_gettop(L) == 2 && lua_istable(L, 2)) {
		if (ctx->params->ignore_unknown_sections)
			return 0;
		return unknown_section(L, name);
	}
	/* A plain runtime error, which pcall may catch like any other. */
	if (name != NULL)
		return luaL_error(L, "attempt to call a nil value (%s '%s')",
				  namewhat, name);
	return luaL_error(L, "attempt to call a nil value");
}

/* A finalizer runs with hooks off, so one that loops would escape the
 * budget: metatables with __gc are refused. */
static int
safe_setmetatable(lua_State *L)
{
	if (lua_istable(L, 2)) {
		lua_pushliteral(L, "__gc");
		if (lua_rawget(L, 2) != LUA_TNIL)
			return luaL_error(L,
					  "__gc metamethods are not allowed");
	}
	lua_settop(L, 2);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, 2, 1);
	return 1;
}

/* ---- the sandbox ---- */

/* The base functions a config may use: nothing that reads files, loads
 * code, prints or steers the collector. */
static const char *const base_allowed[] = {
	"assert",   "error",    "getmetatable", "ipairs", "next",     "pairs",
	"pcall",    "rawequal", "rawget",       "rawlen", "rawset",   "select",
	"tonumber", "tostring", "type",         "xpcall", "_VERSION",
};

static const luaL_Reg libs[] = {
	{LUA_STRLIBNAME, luaopen_string},
	{LUA_TABLIBNAME, luaopen_table},
	{LUA_MATHLIBNAME, luaopen_math},
	{LUA_UTF8LIBNAME, luaopen_utf8},
};

/* Pushes the table the file's globals fall back to. */
static void
push_library(lua_State *L)
{
	lua_newtable(L);
	luaL_requiref(L, "_G", luaopen_base, 0);
	for (size_t i = 0; i < MP_NELEMS(base_allowed); i++) {
		lua_getfield(L, -1, base_allowed[i]);
		lua_setfield(L, -3, base_allowed[i]);
	}
	lua_getfield(L, -1, "setmetatable");
	lua_pushcclosure(L, safe_setmetatable, 1);
	lua_setfield(L, -3, "setmetatable");
	lua_pop(L, 1);
	for (size_t i = 0; i < MP_NELEMS(libs); i++) {
		luaL_requiref(L, libs[i].name, libs[i].func, 0);
		lua_setfield(L, -2, libs[i].name);
	}
}

static void
add_sections(lua_State *L, const char *const *sections)
{
	for (; *sections != NULL; sections++) {
		lua_pushstring(L, *sections);
		lua_pushcclosure(L, section_call, 1);
		lua_setfield(L, -2, *sections);
	}
}

static void
set_nil_call(lua_State *L)
{
	lua_pushnil(L);
	lua_newtable(L);
	lua_pushcfunction(L, nil_call);
	lua_setfield(L, -2, "__call");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, -2);
	lua_pop(L, 1);
}

/* Pushes the _ENV of the file: an empty proxy whose reads go to the
 * settings assigned so far, then to the library, and whose writes go
 * through env_newindex. Protected with protected metatables so the file
 * cannot unhook it. */
static int
push_env(lua_State *L)
{
	push_library(L); /* lib */
	add_sections(L, ctx_of(L)->params->sections);
	lua_newtable(L); /* lib store */
	lua_newtable(L); /* lib store mt */
	lua_pushvalue(L, -3);
	lua_setfield(L, -2, "__index");
	lua_setmetatable(L, -2); /* lib store */
	lua_newtable(L);         /* lib store env */
	lua_newtable(L);         /* ... env mt */
	lua_pushvalue(L, -3);
	lua_setfield(L, -2, "__index");
	lua_pushvalue(L, -3);
	lua_pushcclosure(L, env_newindex, 1);
	lua_setfield(L, -2, "__newindex");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, -2); /* lib store env */
	lua_pushvalue(L, -1);
	lua_setfield(L, -4, "_G");
	set_nil_call(L);
	return 1;
}

/* Message handler: notes where a runtime error came from, for error
 * objects that do not say. */
static int
eval_msgh(lua_State *L)
{
	ctx_of(L)->error_line = line_at(L, 1);
	return 1;
}

/* Lua shortens long chunk names in its messages; learn how it writes ours
 * so that the full name can be put back. */
static void
learn_short_src(struct eval_ctx *ctx, const char *chunkname)
{
	lua_Debug ar;

	if (luaL_loadbufferx(ctx->L, "", 0, chunkname, "t") != LUA_OK) {
		lua_pop(ctx->L, 1);
		return;
	}
	lua_getinfo(ctx->L, ">S", &ar);
	snprintf(ctx->short_src, sizeof(ctx->short_src), "%s", ar.short_src);
}

/* Lua's message for an error, with the full file name in front. */
static char *
runtime_message(struct eval_ctx *ctx)
{
	const char *name = ctx->params->name;
	const char *msg = lua_tostring(ctx->L, -1);
	size_t n = strlen(ctx->short_src);

	if (lua_type(ctx->L, -1) != LUA_TSTRING)
		return mp_cfg_error_at(name, ctx->error_line,
				       "error object is a %s value",
				       luaL_typename(ctx->L, -1));
	if (n > 0 && strncmp(msg, ctx->short_src, n) == 0 && msg[n] == ':')
		return mp_xasprintf("%s%s", name, msg + n);
	return mp_cfg_error_at(name, ctx->error_line, "%s", msg);
}

static char *
eval_error(struct eval_ctx *ctx, int status)
{
	const char *name = ctx->params->name;
	char *error = ctx->error;

	if (error != NULL) {
		ctx->error = NULL;
		return error;
	}
	if (ctx->budget_line != 0)
		return mp_cfg_error_at(
			name, ctx->budget_line > 0 ? ctx->budget_line : 0,
			"config evaluation took too long");
	if (status == LUA_ERRMEM)
		return mp_cfg_error_at(name, ctx->oom_line,
				       "config evaluation ran out of memory "
				       "(limit %dM)",
				       EVAL_MEMORY_MAX / (1024 * 1024));
	return runtime_message(ctx);
}

/* Loads the file with its _ENV below it on the stack. */
static int
load_chunk(struct eval_ctx *ctx)
{
	const struct mp_cfg_eval_params *p = ctx->params;
	char *chunkname = mp_xasprintf("@%s", p->name);
	int status;

	learn_short_src(ctx, chunkname);
	/* Text only: a precompiled chunk can crash the VM. */
	status = luaL_loadbufferx(ctx->L, p->source, p->len, chunkname, "t");
	free(chunkname);
	if (status != LUA_OK)
		return status;
	lua_pushvalue(ctx->L, -2);
	if (lua_setupvalue(ctx->L, -2, 1) == NULL)
		lua_pop(ctx->L, 1);
	return LUA_OK;
}

static bool
eval_run(struct eval_ctx *ctx, char **error_r)
{
	lua_State *L = ctx->L;
	int status;

	lua_pushcfunction(L, eval_msgh);
	lua_pushcfunction(L, push_env);
	status = lua_pcall(L, 0, 1, 1);
	if (status == LUA_OK)
		status = load_chunk(ctx);
	if (status == LUA_OK) {
		lua_sethook(L, eval_hook, LUA_MASKCOUNT, EVAL_HOOK_EVERY);
		status = lua_pcall(L, 0, 0, 1);
		lua_sethook(L, NULL, 0, 0);
	}
	if (status == LUA_OK && ctx->error == NULL && ctx->budget_line == 0)
		return true;
	*error_r = eval_error(ctx, status);
	return false;
}

bool
mp_cfg_eval(const struct mp_cfg_eval_params *params, char **error_r)
{
	struct eval_ctx ctx = {.params = params};
	bool ok;

	ctx.L = lua_newstate(eval_alloc, &ctx);
	if (ctx.L == NULL) {
		*error_r = mp_cfg_error_at(params->name, 0,
					   "cannot create a Lua state");
		return false;
	}
	ok = eval_run(&ctx, error_r);
	lua_close(ctx.L);
	free(ctx.error);
	return ok;
}
