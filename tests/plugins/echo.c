/* echo.c - a test protocol that exercises every part of the plugin API.
 *
 * Not installed. The core's unit and e2e tests drive it over real sockets:
 * line framing, byte mode, STARTTLS, the thread pool, Lua hooks,
 * authentication, backpressure, timeouts and shutdown. Replies start with
 * "+OK" or "-ERR". */
#include "config.h"

#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <moonpost/auth.h>
#include <moonpost/conn.h>
#include <moonpost/lua.h>
#include <moonpost/plugin.h>
#include <moonpost/pool.h>
#include <moonpost/server.h>

/* Bytes BIG writes per on_writable() round. */
#define BIG_STEP (16 * 1024)

struct echo_config {
	char *greeting;
	uint64_t timeout;
	int64_t max_line;
};

struct echo_session {
	struct mp_conn *conn;
	struct mp_lua_call *call;
	struct mp_auth_request *auth;
	uint64_t bytes_total;
	uint64_t bytes_left;
	uint32_t sum;
	uint64_t big_left;
	bool noise; /* BIG writes pseudo-random bytes, not 'x' */
	uint32_t noise_state;
	size_t max_queued; /* the most output seen queued during BIG */
	int file_fd;       /* FILE: the file sent in pieces, or -1 */
	unsigned file_next, file_pieces;
	bool file_short; /* FILE ... short: the last range overruns the file */
	char hook_arg[256];
};

struct slow_job {
	struct mp_conn *conn;
	unsigned ms;
};

static void
echo_defaults(void *p)
{
	struct echo_config *c = p;

	c->greeting = strdup("echo ready");
	c->timeout = 60000;
	c->max_line = 200;
}

static const struct mp_cfg_field echo_fields[] = {
	{"greeting", MP_CFG_STRING, offsetof(struct echo_config, greeting), 0,
	 0, NULL, false, "first line sent to clients"},
	{"timeout", MP_CFG_DURATION, offsetof(struct echo_config, timeout), 10,
	 0, NULL, false, "idle timeout"},
	{"max_line", MP_CFG_INT, offsetof(struct echo_config, max_line), 8,
	 65536, NULL, false, "longest command line"},
};

static const struct mp_cfg_section echo_section = {
	.name = "echo",
	.fields = echo_fields,
	.n_fields = sizeof(echo_fields) / sizeof(echo_fields[0]),
	.struct_size = sizeof(struct echo_config),
	.set_defaults = echo_defaults,
};

static const char *const echo_hooks[] = {"echo.command", NULL};

static struct echo_session *
session(struct mp_conn *conn)
{
	return mp_conn_data(conn);
}

static enum mp_status
echo_open(struct mp_conn *conn)
{
	const struct echo_config *cfg = mp_conn_plugin_config(conn);
	struct echo_session *s = calloc(1, sizeof(*s));

	s->conn = conn;
	s->file_fd = -1;
	mp_conn_set_data(conn, s);
	mp_conn_set_timeout(conn, cfg->timeout);
	mp_conn_set_max_line(conn, (size_t)cfg->max_line);
	mp_conn_printf(conn, "+OK %s session=%s\r\n", cfg->greeting,
		       mp_conn_id(conn));
	return MP_OK;
}

static void
slow_work(void *arg)
{
	struct slow_job *job = arg;

	usleep(job->ms * 1000);
}

static void
slow_done(void *arg)
{
	struct slow_job *job = arg;

	if (!mp_conn_is_closed(job->conn)) {
		mp_conn_printf(job->conn, "+OK slow %u\r\n", job->ms);
		mp_conn_resume(job->conn);
	}
	mp_conn_unref(&job->conn);
	free(job);
}

static enum mp_status
cmd_slow(struct mp_conn *conn, const char *arg)
{
	struct slow_job *job = calloc(1, sizeof(*job));

	job->conn = mp_conn_ref(conn);
	job->ms = (unsigned)strtoul(arg, NULL, 10);
	mp_pool_submit(mp_server_pool(mp_conn_server(conn)), slow_work,
		       slow_done, job);
	return MP_AGAIN;
}

static int
hook_push(lua_State *L, void *ctx)
{
	struct echo_session *s = ctx;

	lua_pushstring(L, s->hook_arg);
	lua_newtable(L);
	lua_pushstring(L, mp_conn_id(s->conn));
	lua_setfield(L, -2, "session");
	lua_pushstring(L, mp_conn_peer_ip(s->conn));
	lua_setfield(L, -2, "ip");
	return 2;
}

static void
hook_done(const struct mp_verdict *v, void *ctx)
{
	struct echo_session *s = ctx;

	s->call = NULL;
	mp_conn_printf(s->conn,
		       "+OK verdict=%s code=%d enhanced=%s text=%s\r\n",
		       mp_verdict_name(v->kind), v->code,
		       v->enhanced[0] != '\0' ? v->enhanced : "-",
		       v->text[0] != '\0' ? v->text : "-");
	if (v->kind == MP_VERDICT_DISCONNECT)
		mp_conn_close(s->conn, "hook said disconnect");
	else
		mp_conn_resume(s->conn);
}

static enum mp_status
cmd_hook(struct mp_conn *conn, const char *arg)
{
	struct echo_session *s = session(conn);
	struct mp_lua *lua = mp_server_lua(mp_conn_server(conn));

	snprintf(s->hook_arg, sizeof(s->hook_arg), "%s", arg);
	s->call = mp_lua_call_hook(lua, "echo.command", mp_conn_id(conn),
				   hook_push, hook_done, s);
	/* done may already have run and resumed: pausing then would hang. */
	return s->call != NULL ? MP_AGAIN : MP_OK;
}

static void
auth_done(enum mp_auth_result result, const char *user, void *ctx)
{
	struct echo_session *s = ctx;

	s->auth = NULL;
	if (result == MP_AUTH_OK) {
		mp_conn_set_user(s->conn, user);
		mp_conn_printf(s->conn, "+OK auth=ok user=%s\r\n", user);
	} else {
		mp_conn_printf(s->conn, "-ERR auth=%s\r\n",
			       mp_auth_result_name(result));
	}
	mp_conn_resume(s->conn);
}

/* AUTH user password: the password is the rest of the line. */
static enum mp_status
cmd_auth(struct mp_conn *conn, const char *arg)
{
	struct echo_session *s = session(conn);
	const char *space = strchr(arg, ' ');
	struct mp_auth_info info = {.service = "echo",
				    .ip = mp_conn_peer_ip(conn),
				    .session = mp_conn_id(conn),
				    .mechanism = "PLAIN"};
	char user[256];

	if (space == NULL || (size_t)(space - arg) >= sizeof(user)) {
		mp_conn_puts(conn, "-ERR usage: AUTH user password\r\n");
		return MP_OK;
	}
	snprintf(user, sizeof(user), "%.*s", (int)(space - arg), arg);
	s->auth = mp_auth_verify_password(mp_server_auth(mp_conn_server(conn)),
					  user, space + 1, &info, auth_done, s);
	/* As for HOOK: done may have run already. */
	return s->auth != NULL ? MP_AGAIN : MP_OK;
}

/* xorshift32 from seed 1: incompressible output the test can regenerate. */
static void
noise_fill(struct echo_session *s, char *chunk, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		s->noise_state ^= s->noise_state << 13;
		s->noise_state ^= s->noise_state >> 17;
		s->noise_state ^= s->noise_state << 5;
		chunk[i] = (char)(s->noise_state & 0xff);
	}
}

static void
big_step(struct mp_conn *conn)
{
	struct echo_session *s = session(conn);
	char chunk[BIG_STEP];

	memset(chunk, 'x', sizeof(chunk));
	while (s->big_left > 0 && !mp_conn_output_full(conn)) {
		size_t n = s->big_left < sizeof(chunk) ? (size_t)s->big_left
						       : sizeof(chunk);
		if (s->noise)
			noise_fill(s, chunk, n);
		mp_conn_write(conn, chunk, n);
		s->big_left -= n;
		if (mp_conn_output_size(conn) > s->max_queued)
			s->max_queued = mp_conn_output_size(conn);
	}
	if (s->big_left > 0) {
		mp_conn_want_writable(conn);
		return;
	}
	if (s->noise)
		mp_conn_printf(conn, "\r\n+OK big done max_queued=%zu\r\n",
			       s->max_queued);
	else
		mp_conn_puts(conn, "\r\n+OK big done\r\n");
	mp_conn_resume(conn);
}

/* Piece i of FILE: "[i]" from memory, then FILE_PIECE bytes of the file
 * by mp_conn_send_file(), the byte at offset o being 'a' + o % 26. */
#define FILE_PIECE 65536

static void
file_step(struct mp_conn *conn)
{
	struct echo_session *s = session(conn);

	bool refused = false;

	while (s->file_next < s->file_pieces && !mp_conn_output_full(conn)) {
		uint64_t len = FILE_PIECE;

		if (s->file_short && s->file_next + 1 == s->file_pieces)
			len += 1000;
		mp_conn_printf(conn, "[%u]", s->file_next);
		if (!mp_conn_send_file(conn, s->file_fd,
				       (uint64_t)s->file_next * FILE_PIECE,
				       len)) {
			refused = true;
			s->file_next = s->file_pieces;
			break;
		}
		s->file_next++;
	}
	if (s->file_next < s->file_pieces) {
		mp_conn_want_writable(conn);
		return;
	}
	close(s->file_fd); /* the connection has its own descriptors */
	s->file_fd = -1;
	mp_conn_puts(conn, refused ? "\r\n-ERR no sendfile\r\n"
				   : "\r\n+OK file done\r\n");
	mp_conn_resume(conn);
}

/* FILE k [short]: k pieces of a temporary file interleaved with text. */
static enum mp_status
cmd_file(struct mp_conn *conn, const char *arg)
{
	struct echo_session *s = session(conn);
	char chunk[FILE_PIECE];
	FILE *f = tmpfile();

	s->file_pieces = (unsigned)strtoul(arg, NULL, 10);
	s->file_short = strstr(arg, "short") != NULL;
	s->file_next = 0;
	if (f == NULL || s->file_pieces == 0 || s->file_pieces > 256) {
		if (f != NULL)
			fclose(f);
		mp_conn_puts(conn, "-ERR bad FILE\r\n");
		return MP_OK;
	}
	for (unsigned i = 0; i < s->file_pieces; i++) {
		for (size_t j = 0; j < sizeof(chunk); j++)
			chunk[j] = (char)('a' + ((size_t)i * FILE_PIECE + j) % 26);
		fwrite(chunk, 1, sizeof(chunk), f);
	}
	fflush(f);
	s->file_fd = dup(fileno(f));
	fclose(f);
	mp_conn_puts(conn, "+OK file\r\n");
	file_step(conn);
	return s->file_next < s->file_pieces ? MP_AGAIN : MP_OK;
}

/* BIG n: n bytes of 'x'; NOISE n: n pseudo-random bytes. */
static enum mp_status
cmd_big(struct mp_conn *conn, const char *arg, bool noise)
{
	struct echo_session *s = session(conn);

	s->big_left = strtoull(arg, NULL, 10);
	s->noise = noise;
	s->noise_state = 1;
	s->max_queued = 0;
	big_step(conn);
	return s->big_left > 0 ? MP_AGAIN : MP_OK;
}

static enum mp_status
cmd_bytes(struct mp_conn *conn, const char *arg)
{
	struct echo_session *s = session(conn);

	s->bytes_total = s->bytes_left = strtoull(arg, NULL, 10);
	s->sum = 0;
	mp_conn_puts(conn, "+OK go\r\n");
	if (s->bytes_left > 0)
		mp_conn_read_bytes(conn, s->bytes_left);
	return MP_OK;
}

static enum mp_status
cmd_starttls(struct mp_conn *conn)
{
	if (!mp_conn_can_starttls(conn)) {
		mp_conn_puts(conn, "-ERR TLS not available\r\n");
		return MP_OK;
	}
	mp_conn_puts(conn, "+OK begin TLS\r\n");
	mp_conn_starttls(conn);
	return MP_OK;
}

/* As IMAP COMPRESS DEFLATE: the OK leaves uncompressed, then both
 * directions are compressed. */
static enum mp_status
cmd_compress(struct mp_conn *conn)
{
	if (!mp_conn_can_compress(conn)) {
		mp_conn_puts(conn, "-ERR compression not available\r\n");
		return MP_OK;
	}
	mp_conn_puts(conn, "+OK DEFLATE active\r\n");
	if (!mp_conn_compress(conn))
		return MP_ERROR;
	return MP_OK;
}

static enum mp_status
cmd_peer(struct mp_conn *conn)
{
	const struct mp_cfg_listener *l = mp_conn_listener(conn);

	mp_conn_printf(
		conn, "+OK ip=%s loopback=%d listener=%s tls=%s deflate=%d\r\n",
		mp_conn_peer_ip(conn), mp_conn_is_loopback(conn), l->name,
		mp_conn_is_tls(conn) ? mp_conn_tls_version(conn) : "none",
		mp_conn_is_compressed(conn));
	return MP_OK;
}

static bool
is_cmd(const char *line, size_t len, const char *name, const char **arg_r)
{
	size_t n = strlen(name);

	if (len < n || strncasecmp(line, name, n) != 0)
		return false;
	if (len == n) {
		*arg_r = "";
		return true;
	}
	if (line[n] != ' ')
		return false;
	*arg_r = line + n + 1;
	return true;
}

static enum mp_status
echo_line(struct mp_conn *conn, const char *data, size_t len, unsigned flags)
{
	char line[1024];
	const char *arg;

	if (flags & MP_LINE_TOO_LONG) {
		mp_conn_puts(conn, "-ERR line too long\r\n");
		return MP_OK;
	}
	snprintf(line, sizeof(line), "%.*s", (int)len, data);
	if (is_cmd(line, len, "QUIT", &arg)) {
		mp_conn_puts(conn, "+OK bye\r\n");
		mp_conn_close(conn, "quit");
		return MP_OK;
	}
	if (is_cmd(line, len, "STARTTLS", &arg))
		return cmd_starttls(conn);
	if (is_cmd(line, len, "PEER", &arg))
		return cmd_peer(conn);
	if (is_cmd(line, len, "COMPRESS", &arg))
		return cmd_compress(conn);
	if (is_cmd(line, len, "BYTES", &arg))
		return cmd_bytes(conn, arg);
	if (is_cmd(line, len, "SLOW", &arg))
		return cmd_slow(conn, arg);
	if (is_cmd(line, len, "HOOK", &arg))
		return cmd_hook(conn, arg);
	if (is_cmd(line, len, "AUTH", &arg))
		return cmd_auth(conn, arg);
	if (is_cmd(line, len, "FILE", &arg))
		return cmd_file(conn, arg);
	if (is_cmd(line, len, "BIG", &arg))
		return cmd_big(conn, arg, false);
	if (is_cmd(line, len, "NOISE", &arg))
		return cmd_big(conn, arg, true);
	mp_conn_printf(conn, "%s %s\r\n",
		       (flags & MP_LINE_BARE_LF) ? "+LF" : "+OK", line);
	return MP_OK;
}

static enum mp_status
echo_bytes(struct mp_conn *conn, const uint8_t *data, size_t len,
	   size_t *consumed_r)
{
	struct echo_session *s = session(conn);

	for (size_t i = 0; i < len; i++)
		s->sum = s->sum * 31 + data[i];
	s->bytes_left -= len;
	*consumed_r = len;
	if (s->bytes_left == 0)
		mp_conn_printf(conn, "+OK got %llu sum=%u\r\n",
			       (unsigned long long)s->bytes_total, s->sum);
	return MP_OK;
}

static void
echo_writable(struct mp_conn *conn)
{
	if (session(conn)->file_fd >= 0)
		file_step(conn);
	else
		big_step(conn);
}

static void
echo_timeout(struct mp_conn *conn)
{
	mp_conn_puts(conn, "-ERR idle timeout\r\n");
}

static void
echo_shutdown(struct mp_conn *conn)
{
	mp_conn_puts(conn, "-ERR server shutting down\r\n");
	mp_conn_close(conn, "shutdown");
}

static void
echo_close(struct mp_conn *conn)
{
	struct echo_session *s = session(conn);

	if (s->call != NULL)
		mp_lua_call_cancel(&s->call);
	if (s->auth != NULL)
		mp_auth_cancel(&s->auth);
	if (s->file_fd >= 0)
		close(s->file_fd);
	free(s);
}

MP_PLUGIN_DEFINE(.name = "echo", .version = "test", .hooks = echo_hooks,
		 .config = &echo_section, .busy_reply = "-ERR busy\r\n",
		 .max_line = 200, .on_open = echo_open, .on_line = echo_line,
		 .on_bytes = echo_bytes, .on_writable = echo_writable,
		 .on_timeout = echo_timeout, .on_shutdown = echo_shutdown,
		 .on_close = echo_close);
