/* smtp-hooks.c - running the smtp.* Lua hooks, and the transaction object
 * their handlers receive.
 *
 * The object (a userdata holding an id) shows the client, the session and
 * the transaction so far. Like the deliver hook's message, it is looked up
 * by id on every use: a script that keeps it past the call gets an error,
 * never a freed session. tx.notes is a table that lives as long as the
 * transaction, for handlers to pass notes along (MAIL to RCPT to DATA). */
#include "config.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <moonpost/mime.h>
#include <moonpost/server.h>

#include "smtp-private.h"

#define TX_MT    "moonpost.smtp.tx"
#define TX_LIVE  "moonpost.smtp.tx.live"
#define TX_NEXT  "moonpost.smtp.tx.next"
#define TX_NOTES "moonpost.smtp.tx.notes"

/* What tx:body() and tx:header() read of the message at most: enough for
 * any header and a content check, bounded whatever the message is. */
#define TX_READ_MAX (1024 * 1024)

const char *const smtp_hook_names[] = {
	"smtp.connect", "smtp.helo", "smtp.auth",   "smtp.mail",
	"smtp.rcpt",    "smtp.data", "smtp.queued", NULL,
};

struct tx_ud {
	uint64_t id;
};

/* [-0, +0] The session behind the object at index 1, or an error. */
static struct smtp_session *
check_tx(lua_State *L)
{
	struct tx_ud *ud = luaL_checkudata(L, 1, TX_MT);
	struct smtp_session *s;

	lua_getfield(L, LUA_REGISTRYINDEX, TX_LIVE);
	lua_rawgeti(L, -1, (lua_Integer)ud->id);
	s = lua_touserdata(L, -1);
	lua_pop(L, 2);
	if (s == NULL)
		luaL_error(L,
			   "this SMTP transaction object is no longer valid");
	return s;
}

/* [-0, +1] Reads up to max bytes of the spooled message from offset. */
static int
push_spool(lua_State *L, struct smtp_session *s, uint64_t off, size_t max)
{
	luaL_Buffer b;
	char *p;
	ssize_t n;

	if (s->tx.spool_fd < 0 || off >= s->tx.spool_size) {
		lua_pushliteral(L, "");
		return 1;
	}
	if (max > s->tx.spool_size - off)
		max = (size_t)(s->tx.spool_size - off);
	p = luaL_buffinitsize(L, &b, max);
	n = pread(s->tx.spool_fd, p, max, (off_t)off);
	luaL_pushresultsize(&b, n > 0 ? (size_t)n : 0);
	return 1;
}

/* tx:body([max]) -> the message as received, up to max (64 KB) bytes,
 * at most 1 MB [-0|1, +1] */
static int
l_body(lua_State *L)
{
	struct smtp_session *s = check_tx(L);
	lua_Integer max = luaL_optinteger(L, 2, 64 * 1024);

	if (max < 0 || max > TX_READ_MAX)
		max = TX_READ_MAX;
	return push_spool(L, s, 0, (size_t)max);
}

/* tx:header(name) -> first value of the field in the message, or nil
 * [-1, +1] */
static int
l_header(lua_State *L)
{
	struct smtp_session *s = check_tx(L);
	const char *name = luaL_checkstring(L, 2);
	struct mp_mime_header_iter it;
	struct mp_str n, v;
	size_t len;
	const char *hdr;

	push_spool(L, s, 0, TX_READ_MAX);
	hdr = lua_tolstring(L, -1, &len);
	mp_mime_header_iter_init(&it, hdr, len);
	while (mp_mime_header_iter_next(&it, &n, &v)) {
		if (n.len == strlen(name) &&
		    strncasecmp(n.p, name, n.len) == 0) {
			lua_pushlstring(L, v.p, v.len);
			mp_mime_header_iter_deinit(&it);
			return 1;
		}
	}
	mp_mime_header_iter_deinit(&it);
	lua_pushnil(L);
	return 1;
}

/* [-0, +1] tx.notes: created on first use, kept per transaction. */
static void
push_notes(lua_State *L, struct smtp_session *s)
{
	if (s->tx.notes_ref != LUA_NOREF && s->tx.notes_ref != 0) {
		lua_getfield(L, LUA_REGISTRYINDEX, TX_NOTES);
		lua_rawgeti(L, -1, s->tx.notes_ref);
		lua_remove(L, -2);
		if (lua_istable(L, -1))
			return;
		lua_pop(L, 1);
	}
	lua_getfield(L, LUA_REGISTRYINDEX, TX_NOTES);
	lua_newtable(L);
	lua_pushvalue(L, -1);
	s->tx.notes_ref = luaL_ref(L, -3);
	lua_remove(L, -2);
}

static void
push_recipients(lua_State *L, const struct smtp_session *s)
{
	lua_createtable(L, (int)s->tx.rcpts.n, 0);
	for (size_t i = 0; i < s->tx.rcpts.n; i++) {
		lua_pushstring(L, s->tx.rcpts.v[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
}

static const char *const role_names[] = {"mx", "submission", "submissions"};

/* [-0, +1] Plain fields; false when key is not one. */
static bool
push_field(lua_State *L, struct smtp_session *s, const char *key)
{
	struct mp_conn *c = s->conn;

	if (strcmp(key, "ip") == 0)
		lua_pushstring(L, mp_conn_peer_ip(c));
	else if (strcmp(key, "port") == 0)
		lua_pushinteger(L, mp_conn_peer_port(c));
	else if (strcmp(key, "rdns") == 0)
		lua_pushstring(L, s->rdns);
	else if (strcmp(key, "helo") == 0)
		lua_pushstring(L, s->helo);
	else if (strcmp(key, "tls") == 0)
		lua_pushboolean(L, mp_conn_is_tls(c));
	else if (strcmp(key, "tls_version") == 0)
		lua_pushstring(L, mp_conn_tls_version(c));
	else if (strcmp(key, "tls_cipher") == 0)
		lua_pushstring(L, mp_conn_tls_cipher(c));
	else if (strcmp(key, "user") == 0)
		lua_pushstring(L, s->user);
	else if (strcmp(key, "role") == 0)
		lua_pushstring(L, role_names[s->role]);
	else if (strcmp(key, "session") == 0)
		lua_pushstring(L, mp_conn_id(c));
	else if (strcmp(key, "sender") == 0)
		lua_pushstring(L, s->tx.sender);
	else if (strcmp(key, "size") == 0)
		lua_pushinteger(L, (lua_Integer)s->tx.spool_size);
	else
		return false;
	return true;
}

/* [-0, +1] */
static int
l_index(lua_State *L)
{
	struct smtp_session *s = check_tx(L);
	const char *key = luaL_checkstring(L, 2);

	if (push_field(L, s, key))
		return 1;
	if (strcmp(key, "recipients") == 0) {
		push_recipients(L, s);
	} else if (strcmp(key, "notes") == 0) {
		push_notes(L, s);
	} else if (strcmp(key, "body") == 0) {
		lua_pushcfunction(L, l_body);
	} else if (strcmp(key, "header") == 0) {
		lua_pushcfunction(L, l_header);
	} else {
		lua_pushnil(L);
	}
	return 1;
}

/* [-0, +0] The metatable and registry tables, once per Lua state. */
static void
ensure_metatable(lua_State *L)
{
	if (luaL_newmetatable(L, TX_MT)) {
		lua_pushcfunction(L, l_index);
		lua_setfield(L, -2, "__index");
		lua_pushliteral(L, "smtp transaction");
		lua_setfield(L, -2, "__name");
		lua_pushboolean(L, 0);
		lua_setfield(L, -2, "__metatable");
		lua_newtable(L);
		lua_setfield(L, LUA_REGISTRYINDEX, TX_LIVE);
		lua_newtable(L);
		lua_setfield(L, LUA_REGISTRYINDEX, TX_NOTES);
		lua_pushinteger(L, 1);
		lua_setfield(L, LUA_REGISTRYINDEX, TX_NEXT);
	}
	lua_pop(L, 1);
}

static int
push_args(lua_State *L, void *ctx)
{
	struct smtp_session *s = ctx;
	struct tx_ud *ud;

	ensure_metatable(L);
	lua_getfield(L, LUA_REGISTRYINDEX, TX_NEXT);
	s->lua_tx_id = (uint64_t)lua_tointeger(L, -1);
	lua_pop(L, 1);
	lua_pushinteger(L, (lua_Integer)s->lua_tx_id + 1);
	lua_setfield(L, LUA_REGISTRYINDEX, TX_NEXT);
	lua_getfield(L, LUA_REGISTRYINDEX, TX_LIVE);
	lua_pushlightuserdata(L, s);
	lua_rawseti(L, -2, (lua_Integer)s->lua_tx_id);
	lua_pop(L, 1);
	ud = lua_newuserdatauv(L, sizeof(*ud), 0);
	ud->id = s->lua_tx_id;
	luaL_setmetatable(L, TX_MT);
	if (s->hook_arg == NULL)
		return 1;
	lua_pushstring(L, s->hook_arg);
	return 2;
}

static void
release_tx(struct smtp_session *s)
{
	lua_State *L;

	if (s->call_lua == NULL)
		return;
	L = mp_lua_state(s->call_lua);
	lua_getfield(L, LUA_REGISTRYINDEX, TX_LIVE);
	if (lua_istable(L, -1)) {
		lua_pushnil(L);
		lua_rawseti(L, -2, (lua_Integer)s->lua_tx_id);
	}
	lua_pop(L, 1);
}

static void
hook_done(const struct mp_verdict *v, void *ctx)
{
	struct smtp_session *s = ctx;
	void (*next)(struct smtp_session *, const struct mp_verdict *) =
		s->hook_next;

	s->call = NULL;
	release_tx(s);
	s->hook_next = NULL;
	next(s, v);
}

enum mp_status
smtp_hook(struct smtp_session *s, const char *hook, const char *extra,
	  void (*next)(struct smtp_session *s, const struct mp_verdict *v))
{
	struct mp_lua *lua = mp_server_lua(s->server);
	static const struct mp_verdict go_on = {.kind = MP_VERDICT_CONTINUE};

	if (lua == NULL || !mp_lua_has_hook(lua, hook)) {
		next(s, &go_on);
		return MP_AGAIN; /* next resumed the session already */
	}
	if (extra != s->hook_arg) {
		free(s->hook_arg);
		s->hook_arg = mp_xstrdup(extra);
	}
	if (s->call_lua != lua) {
		smtp_hook_tx_done(s); /* notes of an older runtime */
		if (s->call_lua != NULL)
			mp_lua_unref(&s->call_lua);
		s->call_lua = mp_lua_ref(lua);
	}
	s->hook_next = next;
	s->call = mp_lua_call_hook(lua, hook, mp_conn_id(s->conn), push_args,
				   hook_done, s);
	/* Whether done ran already or will, it resumes the session. */
	return MP_AGAIN;
}

bool
smtp_verdict_refuses(struct smtp_session *s, const struct mp_verdict *v,
		     int reject_code)
{
	const char *text = v->text[0] != '\0' ? v->text : NULL;

	switch (v->kind) {
	case MP_VERDICT_CONTINUE:
	case MP_VERDICT_ACCEPT:
		return false;
	case MP_VERDICT_REJECT:
		smtp_reply(s, v->code != 0 ? v->code : reject_code,
			   v->enhanced[0] != '\0' ? v->enhanced : "5.7.1",
			   text != NULL ? text : "Rejected");
		return true;
	case MP_VERDICT_DEFER:
		smtp_reply(s, v->code != 0 ? v->code : 451,
			   v->enhanced[0] != '\0' ? v->enhanced : "4.7.1",
			   text != NULL ? text : "Try again later");
		return true;
	case MP_VERDICT_DISCONNECT:
		smtp_close_421(s, "4.7.0", text != NULL ? text : "Goodbye");
		return true;
	case MP_VERDICT_TEMPFAIL:
		/* The script failed: never an accept (it is logged with
		 * file:line by the runtime). */
		smtp_reply(s, 451, "4.3.0", "Temporary local problem");
		return true;
	}
	return false;
}

void
smtp_hook_cancel(struct smtp_session *s)
{
	if (s->call != NULL) {
		mp_lua_call_cancel(&s->call);
		release_tx(s);
	}
	s->hook_next = NULL;
}

void
smtp_hook_tx_done(struct smtp_session *s)
{
	lua_State *L;

	if (s->call_lua == NULL || s->tx.notes_ref == LUA_NOREF ||
	    s->tx.notes_ref == 0)
		goto out;
	L = mp_lua_state(s->call_lua);
	lua_getfield(L, LUA_REGISTRYINDEX, TX_NOTES);
	if (lua_istable(L, -1))
		luaL_unref(L, -1, s->tx.notes_ref);
	lua_pop(L, 1);
out:
	s->tx.notes_ref = LUA_NOREF;
}
