/* lua-http.c - `moonpost.http`: a small non-blocking HTTP/1.1 client.
 *
 *   moonpost.http.post(url, body [, opts]) -> status, body, headers
 *   moonpost.http.get(url [, opts])        -> status, body, headers
 *       or nil, message when no response came (refused, timeout, ...)
 *   opts = {headers = {["X-Name"] = "value"}, timeout = seconds,
 *           content_type = "application/json"}
 *
 * http:// only (https is not supported yet). A host name is resolved
 * through the server's resolver (DNS only: no /etc/hosts, so "localhost"
 * does not resolve; write 127.0.0.1). One request per connection
 * (Connection: close), the body sent with Content-Length, the response read
 * until its length, its last chunk or the close, bounded by http.h.
 *
 * As in lua-dns.c the request lives in a userdata on the handler's stack;
 * the socket is libev-driven and the handler's coroutine waits. A call
 * that times out or is cancelled closes the socket; __gc frees the rest. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include <moonpost/dns.h>

#include "http.h"
#include "lua-private.h"

#define WAIT_MT "moonpost.http.wait"

/* Default and largest timeout of one request, in seconds; the handler's
 * lua.timeout bounds it too. */
#define HTTP_TIMEOUT_DEFAULT 5.0
#define HTTP_TIMEOUT_MAX     300.0
/* Largest request body: a notification, not an upload. */
#define HTTP_REQUEST_BODY_MAX (1024 * 1024)
/* Extra request headers a script may add. */
#define HTTP_HEADERS_MAX 32
#define READ_CHUNK       16384

struct http_wait {
	struct mp_lua_call *call; /* set once the handler waits */
	struct ev_loop *loop;
	struct mp_dns_req *req;
	int fd;
	ev_io io;
	ev_timer timer;
	bool connected;
	struct mp_buf out;
	size_t sent;
	struct mp_http_url url;
	struct mp_http_response resp;
	bool finished;
	const char *error; /* static, or errbuf */
	char errbuf[MP_HTTP_HOST_MAX + 256];
	double timeout;
};

/* ---- ending --------------------------------------------------------- */

/* Stops everything that could call back; idempotent. */
static void
wait_stop(struct http_wait *w)
{
	mp_dns_cancel(&w->req);
	if (w->loop != NULL) {
		ev_io_stop(w->loop, &w->io);
		ev_timer_stop(w->loop, &w->timer);
	}
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

/* __gc [-1, +0, -] */
static int
wait_gc(lua_State *L)
{
	struct http_wait *w = lua_touserdata(L, 1);

	wait_stop(w);
	mp_buf_free(&w->out);
	mp_http_response_clear(&w->resp);
	MP_FREE(w->url.path);
	return 0;
}

/* The call gave up (timeout, cancel): no wake may reach it. */
static void
wait_cancel(void *data)
{
	struct http_wait *w = data;

	wait_stop(w);
	w->call = NULL;
}

/* The request is over, with error NULL when a response came. */
static void
finish(struct http_wait *w, const char *error)
{
	struct mp_lua_call *call = w->call;

	wait_stop(w);
	w->finished = true;
	w->error = error;
	if (call != NULL)
		mp_lua_call_wake(call, NULL, NULL);
}

static void
finish_errno(struct http_wait *w, const char *what, int err)
{
	snprintf(w->errbuf, sizeof(w->errbuf), "%s %s:%d: %s", what,
		 w->url.host, w->url.port, strerror(err));
	finish(w, w->errbuf);
}

/* ---- the socket ----------------------------------------------------- */

static void
on_read(struct http_wait *w)
{
	char buf[READ_CHUNK];
	ssize_t n = recv(w->fd, buf, sizeof(buf), 0);
	enum mp_http_state st;

	if (n < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n < 0) {
		finish_errno(w, "reading from", errno);
		return;
	}
	st = n == 0 ? mp_http_response_eof(&w->resp)
		    : mp_http_response_feed(&w->resp, buf, (size_t)n);
	if (st == MP_HTTP_DONE)
		finish(w, NULL);
	else if (st == MP_HTTP_ERROR)
		finish(w, w->resp.error);
}

static void
on_write(struct http_wait *w)
{
	ssize_t n;

	if (!w->connected) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0) {
			finish_errno(w, "connecting to", err);
			return;
		}
		w->connected = true;
	}
	n = send(w->fd, w->out.data + w->sent, w->out.len - w->sent,
		 MSG_NOSIGNAL);
	if (n < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n < 0) {
		finish_errno(w, "writing to", errno);
		return;
	}
	w->sent += (size_t)n;
	if (w->sent < w->out.len)
		return;
	ev_io_stop(w->loop, &w->io);
	ev_io_set(&w->io, w->fd, EV_READ);
	ev_io_start(w->loop, &w->io);
}

static void
io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct http_wait *w = io->data;

	(void)loop;
	if (revents & EV_WRITE)
		on_write(w);
	else if (revents & EV_READ)
		on_read(w);
}

static void
timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct http_wait *w = t->data;

	(void)loop;
	(void)revents;
	snprintf(w->errbuf, sizeof(w->errbuf), "%s:%d: timed out after %g s",
		 w->url.host, w->url.port, w->timeout);
	finish(w, w->errbuf);
}

/* Starts connecting to ss; false with the request finished (error). */
static bool
connect_to(struct http_wait *w, struct sockaddr_storage *ss, socklen_t len)
{
	w->fd = socket(ss->ss_family,
		       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (w->fd < 0) {
		finish_errno(w, "socket for", errno);
		return false;
	}
	if (connect(w->fd, (struct sockaddr *)ss, len) < 0 &&
	    errno != EINPROGRESS) {
		finish_errno(w, "connecting to", errno);
		return false;
	}
	ev_io_init(&w->io, io_cb, w->fd, EV_WRITE);
	w->io.data = w;
	ev_io_start(w->loop, &w->io);
	return true;
}

static socklen_t
sockaddr_fill(struct sockaddr_storage *ss, int family, const void *addr,
	      int port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		memcpy(&in->sin_addr, addr, sizeof(in->sin_addr));
		return sizeof(*in);
	}
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons((uint16_t)port);
	memcpy(&in6->sin6_addr, addr, sizeof(in6->sin6_addr));
	return sizeof(*in6);
}

static bool
connect_literal(struct http_wait *w)
{
	struct sockaddr_storage ss;
	unsigned char addr[sizeof(struct in6_addr)];
	int family =
		inet_pton(AF_INET, w->url.host, addr) == 1 ? AF_INET : AF_INET6;

	if (family == AF_INET6)
		inet_pton(AF_INET6, w->url.host, addr);
	return connect_to(w, &ss,
			  sockaddr_fill(&ss, family, addr, w->url.port));
}

static void
dns_done(const struct mp_dns_result *res, void *ctx)
{
	struct http_wait *w = ctx;
	struct sockaddr_storage ss;

	w->req = NULL;
	if (res->status != MP_DNS_OK || res->n == 0) {
		snprintf(w->errbuf, sizeof(w->errbuf), "cannot resolve %s: %s",
			 w->url.host,
			 res->status == MP_DNS_OK ? "no address"
			 : res->error != NULL
				 ? res->error
				 : mp_dns_status_name(res->status));
		finish(w, w->errbuf);
		return;
	}
	connect_to(w, &ss,
		   sockaddr_fill(&ss, res->ips[0].family, &res->ips[0].u,
				 w->url.port));
}

/* ---- back in the handler -------------------------------------------- */

static void
header_to_table(const char *name, size_t nlen, const char *v, size_t vlen,
		void *ctx)
{
	lua_State *L = ctx;
	char key[257];

	if (nlen >= sizeof(key))
		return;
	for (size_t i = 0; i < nlen; i++)
		key[i] =
			(char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32
								  : name[i]);
	key[nlen] = '\0';
	/* Repeated fields are joined as RFC 9110 5.3 allows. */
	if (lua_getfield(L, -1, key) == LUA_TSTRING) {
		lua_pushliteral(L, ", ");
		lua_pushlstring(L, v, vlen);
		lua_concat(L, 3);
	} else {
		lua_pop(L, 1);
		lua_pushlstring(L, v, vlen);
	}
	lua_setfield(L, -2, key);
}

/* [-0, +2|3, m] */
static int
push_result(lua_State *L, struct http_wait *w)
{
	if (w->error != NULL) {
		lua_pushnil(L);
		lua_pushstring(L, w->error);
		return 2;
	}
	lua_pushinteger(L, w->resp.status);
	lua_pushlstring(L, w->resp.body.data != NULL ? w->resp.body.data : "",
			w->resp.body.len);
	lua_newtable(L);
	mp_http_response_headers(&w->resp, header_to_table, L);
	return 3;
}

/* Continuation after the wait [-0, +2|3, m]. */
static int
wait_resume(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	return push_result(L, lua_touserdata(L, (int)ctx));
}

/* ---- starting a request --------------------------------------------- */

/* [-0, +0, e] Checks opts.headers and appends them to list. */
static size_t
opt_headers(lua_State *L, int opts, struct mp_http_header *list, size_t n)
{
	const char *error;

	if (lua_getfield(L, opts, "headers") == LUA_TNIL) {
		lua_pop(L, 1);
		return n;
	}
	luaL_argcheck(L, lua_istable(L, -1), 3, "headers must be a table");
	lua_pushnil(L);
	while (lua_next(L, -2) != 0) {
		luaL_argcheck(L,
			      lua_type(L, -2) == LUA_TSTRING &&
				      lua_type(L, -1) == LUA_TSTRING,
			      3, "headers: names and values must be strings");
		luaL_argcheck(L, n < HTTP_HEADERS_MAX, 3, "too many headers");
		list[n].name = lua_tostring(L, -2);
		list[n].value = lua_tostring(L, -1);
		if (!mp_http_header_valid(list[n].name, list[n].value, &error))
			luaL_argerror(L, 3, error);
		n++;
		lua_pop(L, 1); /* the value: the table keeps both alive */
	}
	lua_pop(L, 1); /* the headers table stays in opts */
	return n;
}

static double
opt_timeout(lua_State *L, int opts)
{
	double t = HTTP_TIMEOUT_DEFAULT;

	if (opts != 0 && lua_getfield(L, opts, "timeout") != LUA_TNIL) {
		t = luaL_checknumber(L, -1);
		luaL_argcheck(L, t > 0 && isfinite(t) && t <= HTTP_TIMEOUT_MAX,
			      3, "timeout must be more than 0 and at most 300");
	}
	if (opts != 0)
		lua_pop(L, 1);
	return t;
}

/* [-0, +1, e] The wait for a request, its bytes built; raises on bad
 * arguments. */
static struct http_wait *
wait_new(lua_State *L, const char *method, const char *body, size_t body_len,
	 int opts)
{
	struct mp_http_header headers[HTTP_HEADERS_MAX + 1];
	const char *error, *url = luaL_checkstring(L, 1);
	size_t n = 0;
	struct http_wait *w;

	if (opts != 0 && !lua_isnoneornil(L, opts))
		luaL_checktype(L, opts, LUA_TTABLE);
	else
		opts = 0;
	if (body != NULL) {
		const char *ct = "application/octet-stream";
		if (opts != 0 &&
		    lua_getfield(L, opts, "content_type") != LUA_TNIL)
			ct = luaL_checkstring(L, -1);
		if (opts != 0)
			lua_pop(L, 1); /* still referenced by opts */
		headers[n].name = "Content-Type";
		headers[n++].value = ct;
		if (!mp_http_header_valid("Content-Type", ct, &error))
			luaL_argerror(L, 3, error);
	}
	if (opts != 0)
		n = opt_headers(L, opts, headers, n);
	w = lua_newuserdatauv(L, sizeof(*w), 0);
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	luaL_setmetatable(L, WAIT_MT);
	w->timeout = opt_timeout(L, opts);
	if (!mp_http_url_parse(url, &w->url, &error))
		luaL_argerror(L, 1, error);
	mp_http_response_init(&w->resp);
	mp_http_request_build(&w->out, method, &w->url, headers, n, body,
			      body_len);
	return w;
}

/* Sends the request of w (top of the stack) and waits for the answer.
 * Only as `return request_start(...)`. */
static int
request_start(lua_State *L, struct mp_lua_call *call, struct http_wait *w)
{
	struct mp_lua *lua = mp_lua_from_state(L);
	struct mp_lua_wait wait = {
		.what = "moonpost.http", .cancel = wait_cancel, .data = w};

	w->loop = lua->loop;
	ev_timer_init(&w->timer, timer_cb, w->timeout, 0.0);
	w->timer.data = w;
	if (w->url.host_is_ip) {
		if (!connect_literal(w))
			return push_result(L, w);
	} else if (lua->dns == NULL) {
		lua_pushnil(L);
		lua_pushliteral(L, "no resolver in this program: use an IP "
				   "address");
		return 2;
	} else {
		w->req = mp_dns_lookup_a(lua->dns, w->url.host, AF_UNSPEC,
					 dns_done, w);
	}
	ev_timer_start(w->loop, &w->timer);
	w->call = call;
	return mp_lua_call_waitk(L, call, &wait, (lua_KContext)lua_gettop(L),
				 wait_resume);
}

/* [-0, +0, e] Raises unless a hook handler calls; returns its call. */
static struct mp_lua_call *
need_handler(lua_State *L, const char *what)
{
	struct mp_lua_call *call = mp_lua_call_current(L);

	if (call == NULL || call->loading)
		luaL_error(L, "%s: only inside a hook", what);
	return mp_lua_call_can_wait(L, what);
}

/* moonpost.http.post(url, body [, opts]) [-2|3, +2|3, e]; waits */
static int
http_post(lua_State *L)
{
	size_t len;
	const char *body = luaL_checklstring(L, 2, &len);
	struct mp_lua_call *call;
	struct http_wait *w;

	luaL_argcheck(L, len <= HTTP_REQUEST_BODY_MAX, 2, "body too large");
	w = wait_new(L, "POST", body, len, 3);
	call = need_handler(L, "moonpost.http.post");
	return request_start(L, call, w);
}

/* moonpost.http.get(url [, opts]) [-1|2, +2|3, e]; waits */
static int
http_get(lua_State *L)
{
	struct http_wait *w = wait_new(L, "GET", NULL, 0, 2);
	struct mp_lua_call *call = need_handler(L, "moonpost.http.get");

	return request_start(L, call, w);
}

static const luaL_Reg http_funcs[] = {
	{"post", http_post},
	{"get", http_get},
	{NULL, NULL},
};

void
mp_lua_open_http(lua_State *L)
{
	luaL_newmetatable(L, WAIT_MT);
	lua_pushcfunction(L, wait_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
	luaL_newlib(L, http_funcs);
}
