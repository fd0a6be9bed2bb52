/* conn.c - a client connection: life cycle, input dispatch, plugin API.
 *
 * Three rules keep this file simple:
 * - A connection is torn down only from a top-level event (I/O, timer, the
 *   work list), never from inside a call the plugin made, so a plugin never
 *   sees its session freed under its feet.
 * - Plugin calls that change what the connection should do (write, resume,
 *   close, starttls) only set state and put the connection on the server's
 *   work list; the work list runs before the loop next waits, so all replies
 *   a batch of pipelined commands produced leave in one write.
 * - Input goes to the plugin straight from the read buffer; only a partial
 *   line or unconsumed bytes are copied into the connection. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <moonpost/conn.h>
#include <moonpost/log.h>

#include "conn-private.h"
#include "iplimit.h"
#include "tls.h"

/* Until the plugin sets its own, a connection may idle this long. */
#define CONN_DEFAULT_TIMEOUT_MS (5 * 60 * 1000)
/* Passes over one connection per event before yielding to others. */
#define CONN_MAX_ROUNDS 4
/* Compressed input is inflated in pieces of this size, and at most
 * CONN_INFLATE_BUDGET bytes of it per pass: a decompression bomb (1000:1
 * for zeros) then costs loop rounds shared with other connections, not
 * memory. */
#define CONN_INFLATE_PIECE  16384
#define CONN_INFLATE_BUDGET (256 * 1024)

static void conn_run(struct mp_conn *conn);

static uint64_t
out_pending(const struct mp_conn *conn)
{
	return mp_conn_queued(conn);
}

static size_t
input_limit(const struct mp_conn *conn)
{
	return MP_CONN_INPUT_SLACK + conn->framer.max_line + 2;
}

static bool
reading_wanted(const struct mp_conn *conn)
{
	/* Compressed input still to inflate is read no further: the
	 * socket buffer, not our memory, holds what the peer sends. */
	return conn->state == CONN_OPEN && !conn->paused && !conn->starttls &&
	       !conn->peer_eof && out_pending(conn) < MP_CONN_HIGH_WATER &&
	       conn->in.len < input_limit(conn) &&
	       !mp_conn_zlib_has_input(conn);
}

static void
update_events(struct mp_conn *conn)
{
	struct ev_loop *loop = conn->server->loop;
	int ev = 0;

	if (conn->state == CONN_DEAD)
		return;
	if (conn->state == CONN_HANDSHAKE) {
		ev = conn->hs_want;
	} else {
		if (reading_wanted(conn) || conn->tls_write_wants_read)
			ev |= EV_READ;
		if (conn->write_blocked || conn->tls_read_wants_write)
			ev |= EV_WRITE;
	}
	if (ev == conn->io_events)
		return;
	ev_io_stop(loop, &conn->io);
	if (ev != 0) {
		ev_io_set(&conn->io, conn->fd, ev);
		ev_io_start(loop, &conn->io);
	}
	conn->io_events = ev;
}

static void
arm_timer(struct mp_conn *conn, uint64_t ms)
{
	struct ev_loop *loop = conn->server->loop;

	if (ms == 0) {
		ev_timer_stop(loop, &conn->timer);
		return;
	}
	conn->timer.repeat = (double)ms / 1000.0;
	ev_timer_again(loop, &conn->timer);
}

static void
conn_free(struct mp_conn *conn)
{
	mp_conn_zlib_end(conn);
	mp_config_unref(&conn->config);
	mp_tls_unref(&conn->tls);
	free(conn->user);
	free(conn);
}

static void
unlink_conn(struct mp_conn *conn)
{
	struct mp_server *server = conn->server;

	if (conn->prev != NULL)
		conn->prev->next = conn->next;
	else
		server->conns = conn->next;
	if (conn->next != NULL)
		conn->next->prev = conn->prev;
	conn->prev = conn->next = NULL;
	server->n_conns--;
	mp_iplimit_release(server->iplimit, conn->limit_key);
}

static void
teardown(struct mp_conn *conn, const char *reason)
{
	struct mp_server *server = conn->server;

	if (conn->state == CONN_DEAD)
		return;
	conn->state = CONN_DEAD;
	ev_io_stop(server->loop, &conn->io);
	ev_timer_stop(server->loop, &conn->timer);
	mp_conn_zlib_end(conn); /* logs its byte counts */
	if (conn->file_sent > 0)
		mp_conn_log(conn, MP_LOG_INFO, "event=sendfile bytes=%llu",
			    (unsigned long long)conn->file_sent);
	mp_conn_log(
		conn, MP_LOG_INFO, "event=disconnect reason=%s",
		mp_q(conn->close_reason != NULL ? conn->close_reason : reason));
	mp_conn_io_tls_shutdown(conn);
	if (conn->ssl != NULL) {
		SSL_free(conn->ssl);
		conn->ssl = NULL;
	}
	close(conn->fd);
	conn->fd = -1;
	mp_buf_free(&conn->in);
	mp_buf_free(&conn->out);
	mp_conn_io_drop_files(conn);
	unlink_conn(conn);
	if (conn->opened && conn->plugin->on_close != NULL)
		conn->plugin->on_close(conn);
	conn->data = NULL;
	if (server->stopping && server->n_conns == 0)
		mp_server_conns_drained(server);
	mp_conn_unref(&conn); /* the reference the server list held */
}

static void
begin_close(struct mp_conn *conn, const char *reason)
{
	if (conn->state != CONN_OPEN && conn->state != CONN_HANDSHAKE)
		return;
	conn->state = CONN_CLOSING;
	if (conn->close_reason == NULL)
		conn->close_reason = reason;
	conn->paused = true;
	arm_timer(conn, MP_CONN_CLOSE_TIMEOUT_MS);
	mp_conn_schedule(conn);
}

/* Applies what a callback returned. MP_AGAIN pauses input, unless the
 * plugin already resumed during the callback (its async work finished at
 * once): then the resume stands. */
static void
apply_status(struct mp_conn *conn, enum mp_status status)
{
	bool resumed = conn->resume_pending;

	conn->resume_pending = false;
	if (status == MP_AGAIN && !resumed)
		conn->paused = true;
	else if (status == MP_ERROR)
		begin_close(conn, "protocol error");
}

static bool
may_dispatch(const struct mp_conn *conn)
{
	return conn->state == CONN_OPEN && !conn->paused && !conn->starttls &&
	       out_pending(conn) < MP_CONN_HIGH_WATER;
}

/* Hands one frame to the plugin; returns the bytes it used and sets
 * *stall when the plugin wants more input before it can go on. */
static size_t
deliver_frame(struct mp_conn *conn, const struct mp_frame *frame, bool *stall)
{
	const struct mp_plugin *p = conn->plugin;
	enum mp_frame_mode mode = conn->framer.mode;
	enum mp_status status;
	size_t used = 0;

	conn->in_callback = true;
	conn->resume_pending = false;
	if (frame->kind == MP_FRAME_LINE) {
		used = frame->consumed;
		status =
			p->on_line(conn, frame->data, frame->len, frame->flags);
	} else {
		status = p->on_bytes(conn, (const uint8_t *)frame->data,
				     frame->len, &used);
		if (used > frame->len)
			used = frame->len;
		mp_framer_bytes_used(&conn->framer, used);
		*stall = used < frame->len && status == MP_OK &&
			 conn->framer.mode == mode;
	}
	conn->in_callback = false;
	apply_status(conn, status);
	return used;
}

/* Feeds data to the plugin for as long as it takes it; returns how many
 * bytes were used up. */
static size_t
dispatch(struct mp_conn *conn, const char *data, size_t len)
{
	size_t off = 0;
	bool stall = false;
	struct mp_frame frame;

	conn->dispatching = true;
	while (!stall && may_dispatch(conn) && !conn->compress_switch) {
		mp_framer_next(&conn->framer, data + off, len - off, &frame);
		if (frame.kind == MP_FRAME_NEED_MORE)
			break;
		if (frame.kind == MP_FRAME_SKIP) {
			off += frame.consumed;
			continue;
		}
		off += deliver_frame(conn, &frame, &stall);
	}
	conn->dispatching = false;
	/* The plugin turned compression on: what follows its command is
	 * compressed, even if it came before the client saw the reply. */
	if (conn->compress_switch) {
		conn->compress_switch = false;
		mp_conn_zlib_feed(conn, data + off, len - off);
		off = len;
	}
	/* Whatever came in plaintext behind STARTTLS is thrown away: it was
	 * sent before the upgrade and cannot be trusted after it. */
	if (conn->starttls && off < len) {
		mp_conn_log(conn, MP_LOG_INFO,
			    "event=starttls_discard bytes=%zu", len - off);
		off = len;
	}
	return off;
}

static void
dispatch_buffered(struct mp_conn *conn)
{
	size_t used;

	if (conn->in.len == 0 || !may_dispatch(conn))
		return;
	used = dispatch(conn, conn->in.data, conn->in.len);
	if (used >= conn->in.len)
		mp_buf_free(&conn->in);
	else if (used > 0)
		mp_buf_consume(&conn->in, used);
}

static void
take_input(struct mp_conn *conn, const char *data, size_t len)
{
	size_t used;

	if (conn->in.len > 0) {
		mp_buf_append(&conn->in, data, len);
		dispatch_buffered(conn);
		return;
	}
	used = dispatch(conn, data, len);
	if (used < len)
		mp_buf_append(&conn->in, data + used, len - used);
}

/* Checks the input buffer after adding to it; false when it overflowed
 * and the connection is closing. */
static bool
input_fits(struct mp_conn *conn)
{
	if (conn->in.len < input_limit(conn))
		return true;
	mp_conn_log(conn, MP_LOG_WARN, "event=input_overflow");
	begin_close(conn, "input overflow");
	return false;
}

/* Inflates compressed input and hands it to the plugin for as long as it
 * takes it, CONN_INFLATE_BUDGET bytes at most (more_to_do() brings us
 * back for the rest). */
static void
inflate_input(struct mp_conn *conn)
{
	char piece[CONN_INFLATE_PIECE];
	size_t budget = CONN_INFLATE_BUDGET;

	while (budget > 0 && mp_conn_zlib_has_input(conn) &&
	       may_dispatch(conn)) {
		const char *error = NULL;
		size_t n;

		if (!mp_conn_zlib_inflate(conn, piece, sizeof(piece), &n,
					  &error)) {
			mp_conn_log(conn, MP_LOG_WARN,
				    "event=inflate_error error=%s",
				    mp_q(error));
			begin_close(conn, "corrupt compressed input");
			return;
		}
		if (n == 0)
			break; /* all input went into zlib's state */
		budget -= n < budget ? n : budget;
		take_input(conn, piece, n);
		if (!input_fits(conn))
			return;
	}
}

static void
conn_read(struct mp_conn *conn)
{
	char *scratch = conn->server->scratch;

	for (int i = 0; i < CONN_MAX_ROUNDS && reading_wanted(conn); i++) {
		ssize_t n = mp_conn_io_read(conn, scratch, MP_READ_CHUNK);

		if (n == -1)
			return;
		if (n == -2) {
			teardown(conn, "read error");
			return;
		}
		if (n == 0) {
			conn->peer_eof = true;
			return;
		}
		if (conn->timeout_ms > 0)
			ev_timer_again(conn->server->loop, &conn->timer);
		if (conn->z != NULL) {
			mp_conn_zlib_feed(conn, scratch, (size_t)n);
			inflate_input(conn);
		} else {
			take_input(conn, scratch, (size_t)n);
			if (!input_fits(conn))
				return;
		}
		/* Plain sockets are level-triggered: the loop calls again.
		 * TLS may hold decrypted bytes the socket no longer shows. */
		if (conn->ssl == NULL || !SSL_has_pending(conn->ssl))
			return;
	}
}

static void
conn_open(struct mp_conn *conn)
{
	enum mp_status status;

	conn->state = CONN_OPEN;
	conn->opened = true;
	conn->timeout_ms = CONN_DEFAULT_TIMEOUT_MS;
	arm_timer(conn, conn->timeout_ms);
	conn->in_callback = true;
	conn->resume_pending = false;
	status = conn->plugin->on_open(conn);
	conn->in_callback = false;
	if (status == MP_ERROR)
		begin_close(conn, "refused by protocol");
	else
		apply_status(conn, status);
}

/* Returns false when the connection died. */
static bool
run_handshake(struct mp_conn *conn)
{
	enum mp_status status = mp_conn_io_handshake(conn);

	if (status == MP_ERROR) {
		teardown(conn, "tls handshake failed");
		return false;
	}
	if (status == MP_AGAIN)
		return true;
	mp_conn_log(conn, MP_LOG_INFO, "event=tls version=%s cipher=%s",
		    mp_conn_tls_version(conn), mp_conn_tls_cipher(conn));
	if (!conn->opened) {
		conn_open(conn);
	} else {
		conn->state = CONN_OPEN;
		mp_framer_lines(&conn->framer);
		conn->framer.discarding = false;
		arm_timer(conn, conn->timeout_ms);
	}
	return true;
}

static void
start_tls(struct mp_conn *conn)
{
	conn->starttls = false;
	if (!mp_conn_io_tls_start(conn)) {
		teardown(conn, "tls setup failed");
		return;
	}
	arm_timer(conn, MP_CONN_HANDSHAKE_TIMEOUT_MS);
}

static void
call_writable(struct mp_conn *conn)
{
	conn->want_writable = false;
	conn->in_callback = true;
	conn->resume_pending = false;
	conn->plugin->on_writable(conn);
	conn->in_callback = false;
}

/* One pass of output and state changes; false when the connection died. */
static bool
run_output(struct mp_conn *conn)
{
	if (!mp_conn_io_flush(conn)) {
		teardown(conn, "write error");
		return false;
	}
	if (conn->state == CONN_CLOSING && out_pending(conn) == 0) {
		teardown(conn, "closed");
		return false;
	}
	if (conn->starttls && out_pending(conn) == 0 &&
	    conn->state == CONN_OPEN)
		start_tls(conn);
	if (conn->state == CONN_HANDSHAKE)
		return run_handshake(conn);
	return conn->state != CONN_DEAD;
}

static bool
more_to_do(const struct mp_conn *conn)
{
	if (conn->state != CONN_OPEN)
		return false;
	if (conn->want_writable && out_pending(conn) < MP_CONN_LOW_WATER)
		return true;
	if (conn->ssl != NULL && SSL_has_pending(conn->ssl) &&
	    reading_wanted(conn))
		return true;
	return (conn->in.len > 0 || mp_conn_zlib_has_input(conn)) &&
	       may_dispatch(conn);
}

static void
conn_run(struct mp_conn *conn)
{
	int round;

	for (round = 0; round < CONN_MAX_ROUNDS; round++) {
		if (conn->state == CONN_OPEN) {
			dispatch_buffered(conn);
			inflate_input(conn);
			if (conn->ssl != NULL && SSL_has_pending(conn->ssl))
				conn_read(conn);
		}
		if (conn->state == CONN_DEAD || !run_output(conn))
			return;
		if (conn->want_writable && conn->state == CONN_OPEN &&
		    out_pending(conn) < MP_CONN_LOW_WATER)
			call_writable(conn);
		if (!more_to_do(conn))
			break;
	}
	if (round == CONN_MAX_ROUNDS)
		mp_conn_schedule(conn); /* let other connections have a turn */
	/* The client closed its side: once nothing it sent is left to
	 * handle, send what is queued and close. */
	if (conn->peer_eof && conn->state == CONN_OPEN && !conn->paused &&
	    !more_to_do(conn))
		begin_close(conn, "client closed connection");
	update_events(conn);
}

static void
io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct mp_conn *conn = mp_conn_ref(w->data);

	if ((revents & EV_READ) != 0 && reading_wanted(conn))
		conn_read(conn);
	if (conn->state != CONN_DEAD)
		conn_run(conn);
	mp_conn_unref(&conn);
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct mp_conn *conn = mp_conn_ref(w->data);

	switch (conn->state) {
	case CONN_OPEN:
		mp_conn_log(conn, MP_LOG_INFO, "event=timeout");
		if (conn->plugin->on_timeout != NULL) {
			conn->in_callback = true;
			conn->resume_pending = false;
			conn->plugin->on_timeout(conn);
			conn->in_callback = false;
		}
		begin_close(conn, "timeout");
		conn_run(conn);
		break;
	case CONN_HANDSHAKE:
		teardown(conn, "tls handshake timeout");
		break;
	case CONN_CLOSING:
		teardown(conn, "close timeout");
		break;
	case CONN_DEAD:
		break;
	}
	mp_conn_unref(&conn);
}

void
mp_conn_schedule(struct mp_conn *conn)
{
	struct mp_server *server = conn->server;

	if (conn->on_work_list || conn->state == CONN_DEAD)
		return;
	conn->on_work_list = true;
	conn->work_next = NULL;
	mp_conn_ref(conn);
	if (server->work_tail != NULL)
		server->work_tail->work_next = conn;
	else
		server->work = conn;
	server->work_tail = conn;
}

void
mp_conn_run_work(struct mp_server *server)
{
	struct mp_conn *list = server->work;

	server->work = server->work_tail = NULL;
	while (list != NULL) {
		struct mp_conn *conn = list;

		list = conn->work_next;
		conn->work_next = NULL;
		conn->on_work_list = false;
		if (conn->state != CONN_DEAD)
			conn_run(conn);
		mp_conn_unref(&conn);
	}
	if (server->work != NULL)
		ev_idle_start(server->loop, &server->work_idle);
	else
		ev_idle_stop(server->loop, &server->work_idle);
}

static void
make_id(struct mp_server *server, char id[16])
{
	/* Crockford base32 of 60 bits: 20 random bits chosen at start, then
	 * a counter; unique within a run, unlikely to repeat across runs. */
	static const char alphabet[] = "0123456789BCDFGHJKLMNPQRSTVWXYZ";
	uint64_t v = (server->id_seed << 40) |
		     (++server->id_counter & ((1ULL << 40) - 1));

	for (int i = 11; i >= 0; i--) {
		id[i] = alphabet[v % 31];
		v /= 31;
	}
	id[12] = '\0';
}

static void
refuse(struct mp_listener *listener, int fd, const struct sockaddr *peer,
       const char *reason)
{
	char ip[MP_ADDR_TEXT_MAX];
	const char *reply = listener->plugin->busy_reply;

	mp_addr_ntop(peer, ip, sizeof(ip));
	mp_log(MP_LOG_WARN, "event=refused listener=%s ip=%s reason=%s",
	       mp_q(listener->rec.name), ip, reason);
	if (reply != NULL && listener->rec.tls != MP_TLS_IMPLICIT)
		(void)!send(fd, reply, strlen(reply),
			    MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

static struct mp_conn *
conn_new(struct mp_listener *listener, int fd, const struct sockaddr *peer,
	 socklen_t peer_len)
{
	struct mp_server *server = listener->server;
	struct mp_conn *conn = mp_xcalloc(1, sizeof(*conn));
	struct sockaddr_storage local;
	socklen_t local_len = sizeof(local);

	conn->server = server;
	conn->listener = listener;
	conn->plugin = listener->plugin;
	conn->config = mp_config_ref(server->config);
	conn->tls = server->tls != NULL ? mp_tls_ref(server->tls) : NULL;
	conn->refcount = 1;
	conn->fd = fd;
	make_id(server, conn->id);
	memcpy(&conn->peer, peer, peer_len);
	conn->peer_port =
		mp_addr_ntop(peer, conn->peer_ip, sizeof(conn->peer_ip));
	if (getsockname(fd, (struct sockaddr *)&local, &local_len) == 0)
		conn->local_port =
			mp_addr_ntop((struct sockaddr *)&local, conn->local_ip,
				     sizeof(conn->local_ip));
	mp_addr_limit_key(peer, conn->limit_key);
	mp_framer_init(&conn->framer, conn->plugin->max_line > 0
					      ? conn->plugin->max_line
					      : 1000);
	ev_io_init(&conn->io, io_cb, fd, 0);
	conn->io.data = conn;
	ev_init(&conn->timer, timer_cb);
	conn->timer.data = conn;
	return conn;
}

void
mp_conn_accept(struct mp_listener *listener, int fd,
	       const struct sockaddr *peer, socklen_t peer_len)
{
	struct mp_server *server = listener->server;
	const struct mp_cfg_limits *limits = mp_config_limits(server->config);
	uint8_t key[16];
	struct mp_conn *conn;

	if (server->n_conns >= (size_t)limits->connections) {
		refuse(listener, fd, peer, "too_many_connections");
		return;
	}
	mp_addr_limit_key(peer, key);
	if (!mp_iplimit_acquire(server->iplimit, key,
				(unsigned)limits->connections_per_ip)) {
		refuse(listener, fd, peer, "too_many_connections_from_ip");
		return;
	}
	conn = conn_new(listener, fd, peer, peer_len);
	conn->next = server->conns;
	if (server->conns != NULL)
		server->conns->prev = conn;
	server->conns = conn;
	server->n_conns++;
	mp_conn_log(conn, MP_LOG_INFO,
		    "event=connect listener=%s ip=%s port=%d local=%s:%d",
		    mp_q(listener->rec.name), conn->peer_ip, conn->peer_port,
		    conn->local_ip, conn->local_port);

	if (listener->rec.tls == MP_TLS_IMPLICIT) {
		if (conn->tls == NULL || !mp_conn_io_tls_start(conn)) {
			teardown(conn, "tls setup failed");
			return;
		}
		arm_timer(conn, MP_CONN_HANDSHAKE_TIMEOUT_MS);
	} else {
		conn_open(conn);
	}
	mp_conn_schedule(conn);
}

static void
conn_shutdown(struct mp_conn *conn)
{
	switch (conn->state) {
	case CONN_HANDSHAKE:
		teardown(conn, "server shutting down");
		return;
	case CONN_OPEN:
		if (conn->plugin->on_shutdown != NULL) {
			conn->in_callback = true;
			conn->resume_pending = false;
			conn->plugin->on_shutdown(conn);
			conn->in_callback = false;
		} else {
			begin_close(conn, "server shutting down");
		}
		mp_conn_schedule(conn);
		return;
	case CONN_CLOSING:
	case CONN_DEAD:
		return;
	}
}

void
mp_conn_shutdown_all(struct mp_server *server)
{
	/* A snapshot with references: shutting one down may close others'
	 * neighbours in the list, or the connection itself. */
	size_t n = 0, cap = server->n_conns;
	struct mp_conn **all = mp_xcalloc(cap, sizeof(*all));

	for (struct mp_conn *c = server->conns; c != NULL && n < cap;
	     c = c->next)
		all[n++] = mp_conn_ref(c);
	for (size_t i = 0; i < n; i++) {
		conn_shutdown(all[i]);
		mp_conn_unref(&all[i]);
	}
	free(all);
}

void
mp_conn_abort(struct mp_conn *conn, const char *reason)
{
	teardown(conn, reason);
}

/* --- public API that needs the life cycle --------------------------- */

void
mp_conn_set_timeout(struct mp_conn *conn, uint64_t ms)
{
	conn->timeout_ms = ms;
	if (conn->state == CONN_OPEN)
		arm_timer(conn, ms);
}

void
mp_conn_close(struct mp_conn *conn, const char *reason)
{
	begin_close(conn, reason != NULL ? reason : "closed by server");
}

struct mp_conn *
mp_conn_ref(struct mp_conn *conn)
{
	conn->refcount++;
	return conn;
}

void
mp_conn_unref(struct mp_conn **connp)
{
	struct mp_conn *conn = *connp;

	*connp = NULL;
	if (conn != NULL && --conn->refcount == 0)
		conn_free(conn);
}
