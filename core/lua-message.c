/* lua-message.c - the message object `deliver` handlers receive.
 *
 * The userdata holds only an id. The C side registers the view under that
 * id for the length of the hook call and removes it afterwards, so a
 * script that keeps the object in a global gets a clean error later, never
 * freed memory. */
#include "config.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <moonpost/mailstore.h>
#include <moonpost/mime.h>

#include "deliver-private.h"

#define MESSAGE_MT   "moonpost.message"
#define MESSAGE_LIVE "moonpost.message.live"
#define MESSAGE_NEXT "moonpost.message.next"

struct message_ud {
	uint64_t id;
};

/* [-0, +0] The view behind the object at index 1, or a Lua error. */
static struct mp_deliver_view *
check_view(lua_State *L)
{
	struct message_ud *ud = luaL_checkudata(L, 1, MESSAGE_MT);
	struct mp_deliver_view *v;

	lua_getfield(L, LUA_REGISTRYINDEX, MESSAGE_LIVE);
	lua_rawgeti(L, -1, (lua_Integer)ud->id);
	v = lua_touserdata(L, -1);
	lua_pop(L, 2);
	if (v == NULL)
		luaL_error(L, "this message is no longer being delivered");
	return v;
}

static bool
name_is(struct mp_str name, const char *want)
{
	return name.len == strlen(want) &&
	       strncasecmp(name.p, want, name.len) == 0;
}

static void
push_value(lua_State *L, struct mp_str val, bool decode)
{
	struct mp_buf out = {0};

	if (!decode) {
		lua_pushlstring(L, val.p, val.len);
		return;
	}
	mp_mime_decode_header(val.p, val.len, &out);
	lua_pushlstring(L, out.data != NULL ? out.data : "", out.len);
	mp_buf_free(&out);
}

/* [-0, +1] Pushes the first value of field name, or nil; with all, an
 * array of every value. */
static int
push_header(lua_State *L, const struct mp_deliver_view *v, const char *name,
	    bool all, bool decode)
{
	struct mp_mime_header_iter it;
	struct mp_str n, val;
	lua_Integer found = 0;

	if (all)
		lua_newtable(L);
	mp_mime_header_iter_init(&it, v->header, v->header_len);
	while (mp_mime_header_iter_next(&it, &n, &val)) {
		if (!name_is(n, name))
			continue;
		push_value(L, val, decode);
		found++;
		if (!all)
			break;
		lua_rawseti(L, -2, found);
	}
	mp_mime_header_iter_deinit(&it);
	if (!all && found == 0)
		lua_pushnil(L);
	return 1;
}

/* msg:header(name) -> string or nil [-0, +1] */
static int
l_header(lua_State *L)
{
	struct mp_deliver_view *v = check_view(L);

	return push_header(L, v, luaL_checkstring(L, 2), false, false);
}

/* msg:header_text(name) -> UTF-8 with encoded words decoded, or nil
 * [-0, +1] */
static int
l_header_text(lua_State *L)
{
	struct mp_deliver_view *v = check_view(L);

	return push_header(L, v, luaL_checkstring(L, 2), false, true);
}

/* msg:headers(name) -> array of strings [-0, +1] */
static int
l_headers(lua_State *L)
{
	struct mp_deliver_view *v = check_view(L);

	return push_header(L, v, luaL_checkstring(L, 2), true, false);
}

static void
check_room(lua_State *L, const struct mp_deliver_view *v)
{
	if (mp_deliver_actions_count(v->actions) >= MP_DELIVER_ACTIONS_MAX)
		luaL_error(L, "too many actions (at most %d)",
			   MP_DELIVER_ACTIONS_MAX);
}

/* msg:keep() [-0, +0] */
static int
l_keep(lua_State *L)
{
	check_view(L)->actions->keep = true;
	return 0;
}

/* msg:discard() [-0, +0] */
static int
l_discard(lua_State *L)
{
	check_view(L)->actions->discard = true;
	return 0;
}

/* msg:fileinto(mailbox [, {create = true}]) [-0, +0] */
static int
l_fileinto(lua_State *L)
{
	struct mp_deliver_view *v = check_view(L);
	const char *mailbox = luaL_checkstring(L, 2);
	bool create = false;

	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		lua_getfield(L, 3, "create");
		create = lua_toboolean(L, -1);
		lua_pop(L, 1);
	}
	if (strlen(mailbox) == 0 || strlen(mailbox) > MS_MAILBOX_NAME_MAX)
		return luaL_error(L, "fileinto: bad mailbox name");
	check_room(L, v);
	if (!mp_strlist_contains(&v->actions->fileinto, mailbox))
		mp_strlist_add(&v->actions->fileinto, mailbox);
	if (create &&
	    !mp_strlist_contains(&v->actions->fileinto_create, mailbox))
		mp_strlist_add(&v->actions->fileinto_create, mailbox);
	return 0;
}

/* msg:redirect(address) [-0, +0] */
static int
l_redirect(lua_State *L)
{
	struct mp_deliver_view *v = check_view(L);
	const char *address = luaL_checkstring(L, 2);

	if (strchr(address, '@') == NULL || strlen(address) > 254 ||
	    strpbrk(address, " \t\r\n<>") != NULL)
		return luaL_error(L, "redirect: bad address");
	check_room(L, v);
	mp_strlist_add(&v->actions->redirect, address);
	return 0;
}

static const struct {
	const char *name;
	uint32_t flag;
} system_flags[] = {
	{"\\Seen", MS_FLAG_SEEN},       {"\\Answered", MS_FLAG_ANSWERED},
	{"\\Flagged", MS_FLAG_FLAGGED}, {"\\Deleted", MS_FLAG_DELETED},
	{"\\Draft", MS_FLAG_DRAFT},
};

/* msg:flag(name): a system flag ("\\Seen") or a keyword [-0, +0] */
static int
l_flag(lua_State *L)
{
	struct mp_deliver_view *v = check_view(L);
	const char *name = luaL_checkstring(L, 2);

	for (size_t i = 0; i < MP_NELEMS(system_flags); i++) {
		if (strcasecmp(name, system_flags[i].name) == 0) {
			v->actions->flags |= system_flags[i].flag;
			return 0;
		}
	}
	if (name[0] == '\\')
		return luaL_error(L, "flag: unknown system flag %s", name);
	if (strlen(name) == 0 || strlen(name) > MS_KEYWORD_MAX ||
	    strpbrk(name, " (){%*\"]\\") != NULL)
		return luaL_error(L, "flag: bad keyword");
	check_room(L, v);
	if (!mp_strlist_contains(&v->actions->keywords, name))
		mp_strlist_add(&v->actions->keywords, name);
	return 0;
}

/* msg:add_header(name, value) [-0, +0] */
static int
l_add_header(lua_State *L)
{
	struct mp_deliver_view *v = check_view(L);
	const char *name = luaL_checkstring(L, 2);
	const char *value = luaL_checkstring(L, 3);
	const char *why = NULL;
	char *line;

	if (!mp_deliver_header_valid(name, value, &why))
		return luaL_error(L, "add_header: %s", why);
	check_room(L, v);
	line = mp_xasprintf("%s: %s", name, value);
	mp_strlist_add(&v->actions->add_headers, line);
	free(line);
	return 0;
}

/* msg:remove_header(name) [-0, +0] */
static int
l_remove_header(lua_State *L)
{
	struct mp_deliver_view *v = check_view(L);
	const char *name = luaL_checkstring(L, 2);
	const char *why = NULL;
	char *lower;

	if (!mp_deliver_header_valid(name, NULL, &why))
		return luaL_error(L, "remove_header: %s", why);
	check_room(L, v);
	lower = mp_xstrdup(name);
	for (char *p = lower; *p != '\0'; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	if (!mp_strlist_contains(&v->actions->remove_headers, lower))
		mp_strlist_add(&v->actions->remove_headers, lower);
	free(lower);
	return 0;
}

static const luaL_Reg methods[] = {
	{"header", l_header},
	{"header_text", l_header_text},
	{"headers", l_headers},
	{"keep", l_keep},
	{"discard", l_discard},
	{"fileinto", l_fileinto},
	{"redirect", l_redirect},
	{"flag", l_flag},
	{"add_header", l_add_header},
	{"remove_header", l_remove_header},
	{NULL, NULL},
};

/* [-0, +1] Fields by name, methods otherwise. */
static int
l_index(lua_State *L)
{
	struct mp_deliver_view *v = check_view(L);
	const char *key = luaL_checkstring(L, 2);

	if (strcmp(key, "sender") == 0)
		lua_pushstring(L, v->sender);
	else if (strcmp(key, "recipient") == 0)
		lua_pushstring(L, v->recipient);
	else if (strcmp(key, "original_recipient") == 0)
		lua_pushstring(L, v->original_recipient);
	else if (strcmp(key, "detail") == 0)
		lua_pushstring(L, v->detail); /* nil when NULL */
	else if (strcmp(key, "size") == 0)
		lua_pushinteger(L, (lua_Integer)v->size);
	else if (luaL_getmetafield(L, 1, "methods") != LUA_TNIL) {
		lua_getfield(L, -1, key);
		lua_remove(L, -2);
	} else {
		lua_pushnil(L);
	}
	return 1;
}

/* [-0, +0] Creates the metatable and the registry tables once. */
static void
ensure_metatable(lua_State *L)
{
	if (luaL_newmetatable(L, MESSAGE_MT)) {
		lua_pushcfunction(L, l_index);
		lua_setfield(L, -2, "__index");
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "methods");
		lua_pushliteral(L, "message");
		lua_setfield(L, -2, "__name");
		lua_pushboolean(L, 0);
		lua_setfield(L, -2, "__metatable");
		lua_newtable(L);
		lua_setfield(L, LUA_REGISTRYINDEX, MESSAGE_LIVE);
		lua_pushinteger(L, 1);
		lua_setfield(L, LUA_REGISTRYINDEX, MESSAGE_NEXT);
	}
	lua_pop(L, 1);
}

uint64_t
mp_lua_message_push(lua_State *L, struct mp_deliver_view *v)
{
	struct message_ud *ud;
	uint64_t id;

	ensure_metatable(L);
	lua_getfield(L, LUA_REGISTRYINDEX, MESSAGE_NEXT);
	id = (uint64_t)lua_tointeger(L, -1);
	lua_pop(L, 1);
	lua_pushinteger(L, (lua_Integer)id + 1);
	lua_setfield(L, LUA_REGISTRYINDEX, MESSAGE_NEXT);

	lua_getfield(L, LUA_REGISTRYINDEX, MESSAGE_LIVE);
	lua_pushlightuserdata(L, v);
	lua_rawseti(L, -2, (lua_Integer)id);
	lua_pop(L, 1);

	ud = lua_newuserdatauv(L, sizeof(*ud), 0);
	ud->id = id;
	luaL_setmetatable(L, MESSAGE_MT);
	return id;
}

void
mp_lua_message_release(lua_State *L, uint64_t id)
{
	if (lua_getfield(L, LUA_REGISTRYINDEX, MESSAGE_LIVE) == LUA_TTABLE) {
		lua_pushnil(L);
		lua_rawseti(L, -2, (lua_Integer)id);
	}
	lua_pop(L, 1);
}
