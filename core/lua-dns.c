/* lua-dns.c - `moonpost.dns`: DNS lookups for scripts.
 *
 *   moonpost.dns.a(name [, "ipv4" | "ipv6"])  -> { "192.0.2.1", "2001:db8::1" }
 *   moonpost.dns.txt(name)   -> { "v=spf1 -all", ... }
 *   moonpost.dns.mx(name)    -> { {preference = 10, host = "mx.example.org"} }
 *   moonpost.dns.ptr(ip)     -> { "host.example.org", ... }
 *   moonpost.dns.reverse_ip(ip) -> "4.3.2.1" (nibbles for IPv6)
 *
 * A lookup suspends the handler's coroutine while the query runs, so only
 * a hook handler can make one. A name that does not exist (NXDOMAIN) or
 * has no such records (NODATA) gives an empty table; a lookup that could
 * not be answered (timeout, SERVFAIL, a bad name) gives nil and a message,
 * so a script can tell "not listed" from "could not check".
 *
 * The wait lives in a userdata on the handler's stack. The resolver's
 * answer is copied into it in C, and the Lua table is built when the
 * handler resumes, on its coroutine, so the table counts against the
 * call's memory cap. If the call times out or is cancelled first, the
 * query is cancelled with it; the userdata's __gc frees what is left. */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include <moonpost/dns.h>

#include "lua-private.h"

#define WAIT_MT "moonpost.dns.wait"

enum wait_kind { WAIT_A, WAIT_TXT, WAIT_MX, WAIT_PTR };

/* A lookup a handler waits on. */
struct dns_wait {
	struct mp_dns_req *req; /* while the query runs */
	struct mp_lua_call *call;
	enum wait_kind kind;
	/* The answer, copied from the resolver's result. */
	enum mp_dns_status status;
	const char *error; /* static */
	size_t n;
	struct mp_str *items;
	int *prefs; /* MX */
};

void
mp_lua_set_dns(struct mp_lua *lua, struct mp_dns *dns)
{
	lua->dns = dns;
}

static void
wait_clear(struct dns_wait *w)
{
	mp_dns_cancel(&w->req);
	for (size_t i = 0; w->items != NULL && i < w->n; i++)
		free((char *)w->items[i].p);
	MP_FREE(w->items);
	MP_FREE(w->prefs);
	w->n = 0;
}

/* __gc of a wait [-1, +0, -] */
static int
wait_gc(lua_State *L)
{
	wait_clear(lua_touserdata(L, 1));
	return 0;
}

/* The call gave up (timeout, cancel): no answer may reach it now. */
static void
wait_cancel(void *data)
{
	struct dns_wait *w = data;

	mp_dns_cancel(&w->req);
	w->call = NULL;
}

/* ---- copying an answer ------------------------------------------------- */

static void
copy_item(struct mp_str *item, const char *p, size_t len)
{
	item->p = mp_xstrndup(p, len);
	item->len = len;
}

static void
copy_ip(struct mp_str *item, const struct mp_dns_ip *ip)
{
	char text[INET6_ADDRSTRLEN];

	inet_ntop(ip->family, &ip->u, text, sizeof(text));
	copy_item(item, text, strlen(text));
}

static void
copy_one(struct dns_wait *w, const struct mp_dns_result *res, size_t i)
{
	switch (w->kind) {
	case WAIT_A:
		copy_ip(&w->items[i], &res->ips[i]);
		break;
	case WAIT_TXT:
		copy_item(&w->items[i], res->txt[i].p, res->txt[i].len);
		break;
	case WAIT_MX:
		w->prefs[i] = res->mx[i].preference;
		copy_item(&w->items[i], res->mx[i].host,
			  strlen(res->mx[i].host));
		break;
	case WAIT_PTR:
		copy_item(&w->items[i], res->names[i], strlen(res->names[i]));
		break;
	}
}

/* The resolver answered: keep the answer and wake the handler. */
static void
wait_done(const struct mp_dns_result *res, void *ctx)
{
	struct dns_wait *w = ctx;

	w->req = NULL;
	w->status = res->status;
	w->error = res->error;
	if (res->status == MP_DNS_OK) {
		w->items = mp_xcalloc(res->n, sizeof(*w->items));
		if (w->kind == WAIT_MX)
			w->prefs = mp_xcalloc(res->n, sizeof(*w->prefs));
		for (w->n = 0; w->n < res->n; w->n++)
			copy_one(w, res, w->n);
	}
	mp_lua_call_wake(w->call, NULL, NULL);
}

/* ---- back in the handler ----------------------------------------------- */

/* [-0, +1, m] */
static void
push_item(lua_State *L, const struct dns_wait *w, size_t i)
{
	if (w->kind != WAIT_MX) {
		lua_pushlstring(L, w->items[i].p, w->items[i].len);
		return;
	}
	lua_createtable(L, 0, 2);
	lua_pushinteger(L, w->prefs[i]);
	lua_setfield(L, -2, "preference");
	lua_pushlstring(L, w->items[i].p, w->items[i].len);
	lua_setfield(L, -2, "host");
}

/* [-0, +1|2, m] The answer: a table, or nil and the reason. */
static int
push_answer(lua_State *L, struct dns_wait *w)
{
	if (w->status == MP_DNS_TEMPFAIL || w->status == MP_DNS_ERROR) {
		lua_pushnil(L);
		lua_pushstring(L, w->error);
		wait_clear(w);
		return 2;
	}
	lua_createtable(L, (int)w->n, 0);
	for (size_t i = 0; i < w->n; i++) {
		push_item(L, w, i);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	wait_clear(w);
	return 1;
}

/* Continuation after the wait [-0, +1|2, m]. */
static int
wait_resume(lua_State *L, int status, lua_KContext ctx)
{
	return push_answer(L, lua_touserdata(L, (int)ctx));
}

/* ---- starting a lookup ------------------------------------------------- */

/* [-0, +0, e] Raises unless a hook handler calls; returns its call. */
static struct mp_lua_call *
need_handler(lua_State *L, const char *what)
{
	struct mp_lua_call *call = mp_lua_call_current(L);

	if (call == NULL || call->loading)
		luaL_error(L, "moonpost.dns: only inside a hook");
	return mp_lua_call_can_wait(L, what);
}

/* [-0, +1, m] Pushes a new wait of kind. */
static struct dns_wait *
wait_new(lua_State *L, enum wait_kind kind)
{
	struct dns_wait *w = lua_newuserdatauv(L, sizeof(*w), 0);

	memset(w, 0, sizeof(*w));
	w->kind = kind;
	luaL_setmetatable(L, WAIT_MT);
	return w;
}

/* The handler waits for w, at the top of the stack, to be answered.
 * Only as `return wait_yield(...)`. */
static int
wait_yield(lua_State *L, struct mp_lua_call *call, struct dns_wait *w,
	   const char *what)
{
	struct mp_lua_wait wait = {
		.what = what, .cancel = wait_cancel, .data = w};

	w->call = call;
	return mp_lua_call_waitk(L, call, &wait, (lua_KContext)lua_gettop(L),
				 wait_resume);
}

/* [-0, +2, -] No resolver (a tool such as `moonpost deliver`). */
static int
no_resolver(lua_State *L)
{
	lua_pushnil(L);
	lua_pushliteral(L, "no resolver in this program");
	return 2;
}

/* [-0, +0, e] The name argument, without NULs. */
static const char *
check_name(lua_State *L, int arg)
{
	size_t len;
	const char *name = luaL_checklstring(L, arg, &len);

	luaL_argcheck(L, strlen(name) == len, arg, "name holds a NUL");
	return name;
}

static int
family_arg(lua_State *L, int arg)
{
	static const char *const names[] = {"any", "ipv4", "ipv6", NULL};
	static const int families[] = {AF_UNSPEC, AF_INET, AF_INET6};

	return families[luaL_checkoption(L, arg, "any", names)];
}

/* moonpost.dns.a(name [, family]) [-1|2, +1|2, e]; waits */
static int
dns_a(lua_State *L)
{
	const char *name = check_name(L, 1);
	int family = family_arg(L, 2);
	struct mp_lua_call *call = need_handler(L, "moonpost.dns.a");
	struct mp_dns *dns = mp_lua_from_state(L)->dns;
	struct dns_wait *w;

	if (dns == NULL)
		return no_resolver(L);
	w = wait_new(L, WAIT_A);
	w->req = mp_dns_lookup_a(dns, name, family, wait_done, w);
	return wait_yield(L, call, w, "moonpost.dns.a");
}

/* moonpost.dns.txt(name) [-1, +1|2, e]; waits */
static int
dns_txt(lua_State *L)
{
	const char *name = check_name(L, 1);
	struct mp_lua_call *call = need_handler(L, "moonpost.dns.txt");
	struct mp_dns *dns = mp_lua_from_state(L)->dns;
	struct dns_wait *w;

	if (dns == NULL)
		return no_resolver(L);
	w = wait_new(L, WAIT_TXT);
	w->req = mp_dns_lookup_txt(dns, name, wait_done, w);
	return wait_yield(L, call, w, "moonpost.dns.txt");
}

/* moonpost.dns.mx(name) [-1, +1|2, e]; waits */
static int
dns_mx(lua_State *L)
{
	const char *name = check_name(L, 1);
	struct mp_lua_call *call = need_handler(L, "moonpost.dns.mx");
	struct mp_dns *dns = mp_lua_from_state(L)->dns;
	struct dns_wait *w;

	if (dns == NULL)
		return no_resolver(L);
	w = wait_new(L, WAIT_MX);
	w->req = mp_dns_lookup_mx(dns, name, wait_done, w);
	return wait_yield(L, call, w, "moonpost.dns.mx");
}

/* The IP address in s, into ss; false when s is not one. */
static bool
parse_ip(const char *s, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return true;
	}
	return false;
}

/* moonpost.dns.ptr(ip) [-1, +1|2, e]; waits */
static int
dns_ptr(lua_State *L)
{
	const char *ip = luaL_checkstring(L, 1);
	struct mp_lua_call *call = need_handler(L, "moonpost.dns.ptr");
	struct mp_dns *dns = mp_lua_from_state(L)->dns;
	struct sockaddr_storage ss;
	struct dns_wait *w;

	if (!parse_ip(ip, &ss)) {
		lua_pushnil(L);
		lua_pushliteral(L, "not an IP address");
		return 2;
	}
	if (dns == NULL)
		return no_resolver(L);
	w = wait_new(L, WAIT_PTR);
	w->req = mp_dns_lookup_ptr(dns, (struct sockaddr *)&ss, wait_done, w);
	return wait_yield(L, call, w, "moonpost.dns.ptr");
}

/* moonpost.dns.reverse_ip(ip) [-1, +1, e] */
static int
dns_reverse_ip(lua_State *L)
{
	const char *ip = luaL_checkstring(L, 1);
	struct sockaddr_storage ss;
	char buf[MP_DNS_REVERSE_MAX];

	luaL_argcheck(L, parse_ip(ip, &ss), 1, "IP address expected");
	mp_dns_reverse((struct sockaddr *)&ss, buf, sizeof(buf));
	lua_pushstring(L, buf);
	return 1;
}

static const luaL_Reg dns_funcs[] = {
	{"a", dns_a},
	{"txt", dns_txt},
	{"mx", dns_mx},
	{"ptr", dns_ptr},
	{"reverse_ip", dns_reverse_ip},
	{NULL, NULL},
};

void
mp_lua_open_dns(lua_State *L)
{
	luaL_newmetatable(L, WAIT_MT);
	lua_pushcfunction(L, wait_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
	luaL_newlib(L, dns_funcs);
}
