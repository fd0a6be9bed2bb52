/* pop3-session.c - the POP3 plugin: descriptor, connection life, replies.
 *
 * One struct pop3_session per connection. Commands arrive as lines from the
 * core, are parsed by pop3-parser.c (pure) and carried out by the handlers
 * in pop3-commands.c. A handler that waits (a password check, opening or
 * updating the maildrop) or sends a long multi-line response (RETR, LIST)
 * returns MP_AGAIN; pipelined commands (RFC 2449 6.6) wait in the
 * connection's buffer meanwhile and are answered in order. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <moonpost/auth.h>
#include <moonpost/config.h>
#include <moonpost/log.h>
#include <moonpost/server.h>

#include "pop3-private.h"

static struct pop3_session *
session(struct mp_conn *conn)
{
	return mp_conn_data(conn);
}

bool
pop3_secure(const struct pop3_session *s)
{
	return mp_conn_is_tls(s->conn) || mp_conn_is_loopback(s->conn);
}

void
pop3_session_info(const struct pop3_session *s, struct mp_session_info *info)
{
	*info = (struct mp_session_info){
		.service = "pop3",
		.user = s->account,
		.session_id = mp_conn_id(s->conn),
		.ip = mp_conn_peer_ip(s->conn),
		.port = mp_conn_peer_port(s->conn),
		.local_ip = mp_conn_local_ip(s->conn),
		.local_port = mp_conn_local_port(s->conn),
		.tls = mp_conn_is_tls(s->conn),
		.mechanism = s->mechanism,
	};
}

void
pop3_reply(struct pop3_session *s, bool ok, const char *code, const char *text)
{
	struct mp_buf line = {0};

	pop3_reply_format(&line, ok, code, text);
	mp_conn_write(s->conn, line.data, line.len);
	mp_buf_free(&line);
}

void
pop3_close_err(struct pop3_session *s, const char *code, const char *text)
{
	pop3_reply(s, false, code, text);
	mp_conn_close(s->conn, text);
	s->quitting = true;
}

void
pop3_reply_error(struct pop3_session *s, const char *code, const char *text)
{
	/* The error that reaches the limit is answered with the goodbye
	 * instead, as the SMTP plugin does. */
	if (++s->errors >= (unsigned)s->cfg->max_errors) {
		mp_conn_log(s->conn, MP_LOG_INFO, "event=pop3_too_many_errors");
		pop3_close_err(s, NULL, "Too many errors");
		return;
	}
	pop3_reply(s, false, code, text);
}

void
pop3_resume(struct pop3_session *s)
{
	if (s->shutdown_after && !s->quitting) {
		s->end_reason = "shutdown";
		pop3_close_err(s, "SYS/TEMP", "Server shutting down");
		return;
	}
	mp_conn_resume(s->conn);
}

void
pop3_stream_end(struct pop3_session *s)
{
	struct pop3_stream *st = &s->stream;

	if (st->fd >= 0)
		close(st->fd);
	free(st->chunk);
	mp_buf_free(&st->out);
	memset(st, 0, sizeof(*st));
	st->fd = -1;
	s->streaming = false;
}

enum mp_status
pop3_stream_start(struct pop3_session *s, bool (*step)(struct pop3_session *s))
{
	s->stream.step = step;
	if (step(s)) {
		pop3_stream_end(s);
		return MP_OK;
	}
	s->streaming = true;
	mp_conn_want_writable(s->conn);
	return MP_AGAIN;
}

static void
pop3_on_writable(struct mp_conn *conn)
{
	struct pop3_session *s = session(conn);

	if (!s->streaming)
		return;
	/* A client that takes a large message slowly is not idle: output
	 * draining restarts the timer as input would. */
	mp_conn_set_timeout(conn, s->cfg->timeout);
	if (!s->stream.step(s)) {
		mp_conn_want_writable(conn);
		return;
	}
	pop3_stream_end(s);
	pop3_resume(s);
}

static enum mp_status
pop3_on_open(struct mp_conn *conn)
{
	struct pop3_session *s = mp_xcalloc(1, sizeof(*s));

	s->conn = conn;
	s->server = mp_conn_server(conn);
	s->cfg = mp_conn_plugin_config(conn);
	s->stream.fd = -1;
	pop3_parser_limits_init(&s->limits);
	mp_conn_set_data(conn, s);
	mp_conn_set_max_line(conn, POP3_LINE_MAX);
	mp_conn_set_timeout(conn, s->cfg->timeout);
	/* No APOP timestamp: APOP keeps passwords in the clear on the
	 * server, and we do not offer it. */
	pop3_reply(s, true, NULL, "POP3 server ready");
	return MP_OK;
}

static enum mp_status
pop3_on_line(struct mp_conn *conn, const char *line, size_t len, unsigned flags)
{
	struct pop3_session *s = session(conn);
	struct pop3_cmd cmd;

	if (s->quitting)
		return MP_OK;
	if (s->state == POP3_S_SASL)
		return pop3_auth_line(s, line, len, flags);
	if (flags & MP_LINE_TOO_LONG) {
		pop3_reply_error(s, NULL, "Line too long");
		return MP_OK;
	}
	if (pop3_parser_parse(line, len, &s->limits, &cmd) != MP_OK) {
		pop3_reply_error(s, NULL, cmd.error);
		return MP_OK;
	}
	return pop3_command(s, &cmd);
}

static void
pop3_on_timeout(struct mp_conn *conn)
{
	struct pop3_session *s = session(conn);

	/* RFC 1939 3: the autologout timer ends the session without
	 * entering UPDATE, so nothing is deleted. A multi-line response
	 * cannot take a status line in its middle. */
	if (!s->streaming)
		pop3_reply(s, false, NULL, "Disconnected for inactivity");
	s->quitting = true;
	s->end_reason = "timeout";
}

static void
pop3_on_shutdown(struct mp_conn *conn)
{
	struct pop3_session *s = session(conn);

	/* A login or an UPDATE under way finishes and answers first, and a
	 * message being sent is sent whole; everything else learns now
	 * that the server is going away. */
	if (s->job != NULL || s->auth_req != NULL || s->login_check != NULL ||
	    mp_auth_sasl_busy(s->sasl) || s->streaming) {
		s->shutdown_after = true;
		return;
	}
	s->end_reason = "shutdown";
	pop3_close_err(s, "SYS/TEMP", "Server shutting down");
}

/* After the maildrop: a QUIT's expunge notification goes first. */
static void
pop3_logout_event(struct pop3_session *s)
{
	struct mp_session_info info;
	const struct mp_event_counter counters[] = {
		{"retrieved", s->n_retrieved},
		{"deleted", s->n_deleted},
		{"expunged", s->n_expunged},
	};

	if (!s->logged_in)
		return;
	pop3_session_info(s, &info);
	mp_event_logout(mp_server_lua(s->server), &info,
			s->end_reason != NULL ? s->end_reason : "disconnected",
			counters, MP_NELEMS(counters));
}

static void
pop3_on_close(struct mp_conn *conn)
{
	struct pop3_session *s = session(conn);

	pop3_auth_abort(s);
	pop3_stream_end(s);
	pop3_maildrop_abandon(s);
	pop3_logout_event(s);
	free(s->user);
	free(s->mechanism);
	free(s->account);
	free(s);
}

MP_PLUGIN_DEFINE(.name = "pop3", .version = PACKAGE_VERSION,
		 .config = &pop3_config_section,
		 .busy_reply = "-ERR [SYS/TEMP] Too many connections, try "
			       "later\r\n",
		 .max_line = POP3_LINE_MAX, .on_open = pop3_on_open,
		 .on_line = pop3_on_line, .on_writable = pop3_on_writable,
		 .on_timeout = pop3_on_timeout, .on_shutdown = pop3_on_shutdown,
		 .on_close = pop3_on_close);
