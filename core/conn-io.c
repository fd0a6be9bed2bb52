/* conn-io.c - moving bytes for a connection: plaintext or TLS.
 *
 * Above this file nothing knows whether a connection is encrypted (nginx
 * swaps recv/send the same way). With OpenSSL on a non-blocking socket a
 * read may need the socket writable and a write may need it readable; the
 * two flags tls_read_wants_write / tls_write_wants_read carry that to the
 * event mask computed in conn.c. */
#include "config.h"

#include <errno.h>
#include <openssl/err.h>
#include <string.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <moonpost/log.h>

#include "conn-private.h"
#include "tls.h"

static ssize_t
plain_read(struct mp_conn *conn, char *buf, size_t size)
{
	ssize_t n = recv(conn->fd, buf, size, 0);

	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return -1;
	if (errno != ECONNRESET)
		mp_conn_log(conn, MP_LOG_INFO, "event=read_error error=%s",
			    mp_q(strerror(errno)));
	return -2;
}

static ssize_t
tls_read(struct mp_conn *conn, char *buf, size_t size)
{
	int n, err;

	conn->tls_read_wants_write = false;
	ERR_clear_error();
	n = SSL_read(conn->ssl, buf, size > INT32_MAX ? INT32_MAX : (int)size);
	if (n > 0)
		return n;
	err = SSL_get_error(conn->ssl, n);
	switch (err) {
	case SSL_ERROR_WANT_READ:
		return -1;
	case SSL_ERROR_WANT_WRITE:
		conn->tls_read_wants_write = true;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		/* EOF without close_notify: a truncation attack is harmless
		 * here, every protocol has its own end marker. */
		if (ERR_peek_error() == 0 && (n == 0 || errno == ECONNRESET))
			return 0;
		/* fall through */
	default:
		mp_conn_log(conn, MP_LOG_INFO, "event=tls_read_error error=%s",
			    mp_q(mp_tls_error_string("read failed")));
		return -2;
	}
}

ssize_t
mp_conn_io_read(struct mp_conn *conn, char *buf, size_t size)
{
	return conn->ssl != NULL ? tls_read(conn, buf, size)
				 : plain_read(conn, buf, size);
}

/* Sends one piece; >=0 bytes sent (0 = would block), -1 on error. */
static ssize_t
plain_write(struct mp_conn *conn, const char *data, size_t len)
{
	ssize_t n = send(conn->fd, data, len, MSG_NOSIGNAL);

	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return 0;
	if (errno != EPIPE && errno != ECONNRESET)
		mp_conn_log(conn, MP_LOG_INFO, "event=write_error error=%s",
			    mp_q(strerror(errno)));
	return -1;
}

static ssize_t
tls_write(struct mp_conn *conn, const char *data, size_t len)
{
	int n, err;

	conn->tls_write_wants_read = false;
	ERR_clear_error();
	n = SSL_write(conn->ssl, data, len > INT32_MAX ? INT32_MAX : (int)len);
	if (n > 0)
		return n;
	err = SSL_get_error(conn->ssl, n);
	if (err == SSL_ERROR_WANT_WRITE)
		return 0;
	if (err == SSL_ERROR_WANT_READ) {
		conn->tls_write_wants_read = true;
		return 0;
	}
	if (err != SSL_ERROR_SYSCALL || ERR_peek_error() != 0)
		mp_conn_log(conn, MP_LOG_INFO, "event=tls_write_error error=%s",
			    mp_q(mp_tls_error_string("write failed")));
	return -1;
}

/* Sends bytes of out up to end; false on a fatal error, *blocked_r when
 * the socket takes no more now. */
static bool
write_memory(struct mp_conn *conn, size_t end, bool *blocked_r)
{
	while (conn->out_off < end) {
		const char *p = conn->out.data + conn->out_off;
		size_t len = end - conn->out_off;
		ssize_t n = conn->ssl != NULL ? tls_write(conn, p, len)
					      : plain_write(conn, p, len);
		if (n < 0)
			return false;
		if (n == 0) {
			conn->write_blocked = !conn->tls_write_wants_read;
			*blocked_r = true;
			return true;
		}
		conn->out_off += (size_t)n;
		if (conn->files != NULL) {
			conn->files->before -= (size_t)n;
			conn->files_before -= (size_t)n;
		}
	}
	return true;
}

static void
file_pop(struct mp_conn *conn)
{
	struct mp_conn_file *f = conn->files;

	conn->files = f->next;
	if (conn->files == NULL)
		conn->files_last = NULL;
	conn->n_files--;
	conn->file_bytes -= f->left;
	conn->files_before -= f->before;
	close(f->fd);
	free(f);
}

/* Sends the head file range with sendfile(2); false on a fatal error. */
static bool
write_file(struct mp_conn *conn, bool *blocked_r)
{
	struct mp_conn_file *f = conn->files;

	while (f->left > 0) {
		size_t want =
			f->left > (1u << 30) ? (1u << 30) : (size_t)f->left;
		ssize_t n = sendfile(conn->fd, f->fd, &f->off, want);

		if (n > 0) {
			f->left -= (uint64_t)n;
			conn->file_bytes -= (uint64_t)n;
			conn->file_sent += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			conn->write_blocked = true;
			*blocked_r = true;
			return true;
		}
		/* 0: the file is shorter than the range queued. The response
		 * announced its size: it cannot be finished honestly. */
		if (n == 0 || (errno != EPIPE && errno != ECONNRESET))
			mp_conn_log(conn, MP_LOG_WARN,
				    "event=sendfile_error error=%s",
				    mp_q(n == 0 ? "file truncated"
						: strerror(errno)));
		return false;
	}
	file_pop(conn);
	return true;
}

/* Writes queued output, memory and file ranges in order, until the socket
 * takes no more; false on a fatal error. */
static bool
write_queued(struct mp_conn *conn)
{
	bool blocked = false;

	while (!blocked) {
		size_t end = conn->files != NULL
				     ? conn->out_off + conn->files->before
				     : conn->out.len;

		if (conn->out_off < end) {
			if (!write_memory(conn, end, &blocked))
				return false;
		} else if (conn->files != NULL) {
			if (!write_file(conn, &blocked))
				return false;
		} else {
			break;
		}
	}
	return true;
}

bool
mp_conn_io_queue_file(struct mp_conn *conn, int fd, uint64_t off, uint64_t len)
{
	struct mp_conn_file *f;
	int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);

	if (own < 0) {
		mp_conn_log(conn, MP_LOG_WARN,
			    "event=sendfile_dup_failed error=%s",
			    mp_q(strerror(errno)));
		return false;
	}
	f = mp_xcalloc(1, sizeof(*f));
	f->fd = own;
	f->off = (off_t)off;
	f->left = len;
	f->before = conn->out.len - conn->out_off - conn->files_before;
	if (conn->files_last != NULL)
		conn->files_last->next = f;
	else
		conn->files = f;
	conn->files_last = f;
	conn->n_files++;
	conn->file_bytes += len;
	conn->files_before += f->before;
	return true;
}

void
mp_conn_io_drop_files(struct mp_conn *conn)
{
	while (conn->files != NULL)
		file_pop(conn);
}

bool
mp_conn_io_flush(struct mp_conn *conn)
{
	conn->write_blocked = false;
	if (!write_queued(conn))
		return false;
	/* Compressed output: once the queue has drained, end the deflate
	 * block so the peer gets everything written so far. Flushing only
	 * then, not on every write, keeps blocks long while a large
	 * response streams into a slow socket. */
	if (conn->out_off == conn->out.len && mp_conn_zlib_sync(conn) &&
	    !write_queued(conn))
		return false;
	if (conn->out_off == conn->out.len) {
		mp_buf_free(&conn->out);
		conn->out_off = 0;
	} else if (conn->out_off > conn->out.len / 2) {
		mp_buf_consume(&conn->out, conn->out_off);
		conn->out_off = 0;
	}
	return true;
}

bool
mp_conn_io_tls_start(struct mp_conn *conn)
{
	conn->ssl = mp_tls_session_new(conn->tls, conn->fd);
	if (conn->ssl == NULL)
		return false;
	conn->state = CONN_HANDSHAKE;
	return true;
}

enum mp_status
mp_conn_io_handshake(struct mp_conn *conn)
{
	int n, err;

	conn->hs_want = 0;
	ERR_clear_error();
	n = SSL_do_handshake(conn->ssl);
	if (n == 1)
		return MP_OK;
	err = SSL_get_error(conn->ssl, n);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		conn->hs_want = err == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE;
		return MP_AGAIN;
	}
	mp_conn_log(conn, MP_LOG_INFO, "event=tls_handshake_failed error=%s",
		    mp_q(mp_tls_error_string(err == SSL_ERROR_SYSCALL
						     ? "connection closed"
						     : "handshake failed")));
	return MP_ERROR;
}

void
mp_conn_io_tls_shutdown(struct mp_conn *conn)
{
	if (conn->ssl == NULL || !SSL_is_init_finished(conn->ssl))
		return;
	/* One non-blocking attempt: we do not wait for the peer's reply. */
	ERR_clear_error();
	(void)SSL_shutdown(conn->ssl);
	ERR_clear_error();
}
