/* conn-api.c - the connection API plugins call: identity, TLS facts,
 * input modes and output. Life-cycle calls live in conn.c. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <moonpost/conn.h>
#include <moonpost/log.h>

#include "conn-private.h"

const char *
mp_conn_id(const struct mp_conn *conn)
{
	return conn->id;
}

struct mp_server *
mp_conn_server(const struct mp_conn *conn)
{
	return conn->server;
}

const struct mp_config *
mp_conn_config(const struct mp_conn *conn)
{
	return conn->config;
}

const void *
mp_conn_plugin_config(const struct mp_conn *conn)
{
	return mp_config_section(conn->config, conn->plugin->name);
}

const struct mp_cfg_listener *
mp_conn_listener(const struct mp_conn *conn)
{
	return &conn->listener->rec;
}

const char *
mp_conn_role(const struct mp_conn *conn)
{
	const char *role = conn->listener->rec.role;

	return role != NULL ? role : "";
}

const char *
mp_conn_peer_ip(const struct mp_conn *conn)
{
	return conn->peer_ip;
}

int
mp_conn_peer_port(const struct mp_conn *conn)
{
	return conn->peer_port;
}

const struct sockaddr *
mp_conn_peer_addr(const struct mp_conn *conn)
{
	return (const struct sockaddr *)&conn->peer;
}

const char *
mp_conn_local_ip(const struct mp_conn *conn)
{
	return conn->local_ip;
}

int
mp_conn_local_port(const struct mp_conn *conn)
{
	return conn->local_port;
}

bool
mp_conn_is_loopback(const struct mp_conn *conn)
{
	return mp_addr_is_loopback((const struct sockaddr *)&conn->peer);
}

bool
mp_conn_is_tls(const struct mp_conn *conn)
{
	return conn->ssl != NULL && SSL_is_init_finished(conn->ssl);
}

const char *
mp_conn_tls_version(const struct mp_conn *conn)
{
	return mp_conn_is_tls(conn) ? SSL_get_version(conn->ssl) : NULL;
}

const char *
mp_conn_tls_cipher(const struct mp_conn *conn)
{
	return mp_conn_is_tls(conn) ? SSL_get_cipher_name(conn->ssl) : NULL;
}

bool
mp_conn_can_starttls(const struct mp_conn *conn)
{
	return conn->listener->rec.tls == MP_TLS_STARTTLS &&
	       conn->tls != NULL && conn->ssl == NULL && !conn->starttls &&
	       conn->z == NULL && conn->state == CONN_OPEN;
}

bool
mp_conn_starttls(struct mp_conn *conn)
{
	if (!mp_conn_can_starttls(conn))
		return false;
	conn->starttls = true;
	mp_conn_schedule(conn);
	return true;
}

void
mp_conn_set_max_line(struct mp_conn *conn, size_t max)
{
	conn->framer.max_line = max;
	conn->framer.scanned = 0;
}

void
mp_conn_read_bytes(struct mp_conn *conn, uint64_t n)
{
	mp_framer_expect_bytes(&conn->framer, n);
	mp_conn_schedule(conn);
}

void
mp_conn_read_stream(struct mp_conn *conn)
{
	mp_framer_stream(&conn->framer);
	mp_conn_schedule(conn);
}

void
mp_conn_read_lines(struct mp_conn *conn)
{
	mp_framer_lines(&conn->framer);
	mp_conn_schedule(conn);
}

void
mp_conn_pause(struct mp_conn *conn)
{
	conn->paused = true;
}

void
mp_conn_resume(struct mp_conn *conn)
{
	if (conn->state != CONN_OPEN)
		return;
	conn->paused = false;
	if (conn->in_callback)
		conn->resume_pending = true;
	mp_conn_schedule(conn);
}

void
mp_conn_write(struct mp_conn *conn, const void *data, size_t len)
{
	if (conn->state == CONN_CLOSING || conn->state == CONN_DEAD)
		return;
	if (conn->z != NULL)
		mp_conn_zlib_write(conn, data, len);
	else
		mp_buf_append(&conn->out, data, len);
	mp_conn_schedule(conn);
}

void
mp_conn_puts(struct mp_conn *conn, const char *s)
{
	mp_conn_write(conn, s, strlen(s));
}

void
mp_conn_printf(struct mp_conn *conn, const char *fmt, ...)
{
	va_list ap;

	if (conn->state == CONN_CLOSING || conn->state == CONN_DEAD)
		return;
	va_start(ap, fmt);
	if (conn->z != NULL) {
		struct mp_buf text = {0};

		mp_buf_vprintf(&text, fmt, ap);
		mp_conn_zlib_write(conn, text.data, text.len);
		mp_buf_free(&text);
	} else {
		mp_buf_vprintf(&conn->out, fmt, ap);
	}
	va_end(ap);
	mp_conn_schedule(conn);
}

bool
mp_conn_can_send_file(const struct mp_conn *conn)
{
	return conn->state == CONN_OPEN && conn->ssl == NULL &&
	       conn->z == NULL && !conn->starttls;
}

bool
mp_conn_send_file(struct mp_conn *conn, int fd, uint64_t off, uint64_t len)
{
	if (!mp_conn_can_send_file(conn) ||
	    !mp_conn_io_queue_file(conn, fd, off, len))
		return false;
	mp_conn_schedule(conn);
	return true;
}

size_t
mp_conn_output_size(const struct mp_conn *conn)
{
	uint64_t n = mp_conn_queued(conn);

	return n > SIZE_MAX ? SIZE_MAX : (size_t)n;
}

bool
mp_conn_output_full(const struct mp_conn *conn)
{
	return mp_conn_queued(conn) >= MP_CONN_HIGH_WATER ||
	       conn->n_files >= MP_CONN_MAX_FILES;
}

void
mp_conn_want_writable(struct mp_conn *conn)
{
	conn->want_writable = true;
	mp_conn_schedule(conn);
}

bool
mp_conn_is_closed(const struct mp_conn *conn)
{
	return conn->state == CONN_CLOSING || conn->state == CONN_DEAD;
}

void
mp_conn_set_data(struct mp_conn *conn, void *data)
{
	conn->data = data;
}

void *
mp_conn_data(const struct mp_conn *conn)
{
	return conn->data;
}

void
mp_conn_set_action(struct mp_conn *conn, const char *action)
{
	conn->action = action;
}

void
mp_conn_set_user(struct mp_conn *conn, const char *user)
{
	free(conn->user);
	conn->user = mp_xstrdup(user);
}

void
mp_conn_log(const struct mp_conn *conn, enum mp_log_level level,
	    const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (!mp_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	mp_log(level, "session=%s %s%s%s%s%s", conn->id, msg,
	       conn->user != NULL ? " user=" : "",
	       conn->user != NULL ? mp_q(conn->user) : "",
	       conn->action != NULL ? " action=" : "",
	       conn->action != NULL ? mp_q(conn->action) : "");
}
