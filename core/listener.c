/* listener.c - listening sockets and accepting connections. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <moonpost/log.h>

#include "addr.h"
#include "server-private.h"

/* Pending connections the kernel may hold per listener. */
#define LISTEN_BACKLOG 1024
/* Connections accepted per readiness event before others get a turn. */
#define ACCEPT_BATCH 64
/* Pause before accepting again when out of file descriptors. */
#define ACCEPT_PAUSE_S 0.1

static int
open_socket(const struct sockaddr_storage *ss, socklen_t len,
	    const char **error_r)
{
	int one = 1;
	int fd = socket(ss->ss_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* "[::]:25" and "0.0.0.0:25" are two listeners, not one that
	 * collides with the other. */
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, len) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0) {
		*error_r = strerror(errno);
		close(fd);
		return -1;
	}
	return fd;
}

static void
pause_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct mp_listener *l = w->data;

	if (!l->server->stopping)
		ev_io_start(loop, &l->io);
}

static void
accept_failed(struct mp_listener *l, int err)
{
	struct ev_loop *loop = l->server->loop;

	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		/* Level-triggered accept would spin on the same error: stop
		 * for a moment and let connections finish. */
		mp_log(MP_LOG_WARN, "event=accept_paused listener=%s error=%s",
		       mp_q(l->rec.name), mp_q(strerror(err)));
		ev_io_stop(loop, &l->io);
		ev_timer_set(&l->pause, ACCEPT_PAUSE_S, 0);
		ev_timer_start(loop, &l->pause);
	}
	/* Anything else (ECONNABORTED, EINTR...) concerns one client. */
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct mp_listener *l = w->data;

	for (int i = 0; i < ACCEPT_BATCH && !l->server->stopping; i++) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		int fd = accept4(l->fd, (struct sockaddr *)&peer, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				accept_failed(l, errno);
			return;
		}
		/* A connection writes what a pass over its input produced
		 * in one go, so Nagle's algorithm would only hold back the
		 * end of a reply (the short last piece after a sendfile
		 * range, say) until the client's delayed ACK. */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1},
				 sizeof(int));
		mp_conn_accept(l, fd, (struct sockaddr *)&peer, len);
	}
}

bool
mp_listeners_open(struct mp_server *server, char **error_r)
{
	const char *file = mp_config_file(server->config);

	for (size_t i = 0; i < server->n_listeners; i++) {
		struct mp_listener *l = &server->listeners[i];
		struct sockaddr_storage ss;
		socklen_t len;
		const char *why = "not an IP:port address";

		if (mp_addr_parse(l->address, false, &ss, &len))
			l->fd = open_socket(&ss, len, &why);
		if (l->fd < 0) {
			*error_r = mp_xasprintf("%s:%d: listener %s: cannot "
						"listen on %s: %s",
						file, l->rec.line, l->rec.name,
						l->address, why);
			return false;
		}
		ev_io_init(&l->io, accept_cb, l->fd, EV_READ);
		l->io.data = l;
		ev_init(&l->pause, pause_cb);
		l->pause.data = l;
	}
	return true;
}

void
mp_listeners_start(struct mp_server *server)
{
	for (size_t i = 0; i < server->n_listeners; i++) {
		struct mp_listener *l = &server->listeners[i];

		ev_io_start(server->loop, &l->io);
		mp_log(MP_LOG_INFO,
		       "event=listening listener=%s protocol=%s role=%s "
		       "address=%s tls=%s",
		       mp_q(l->rec.name), l->plugin->name,
		       l->rec.role != NULL ? mp_q(l->rec.role) : "-",
		       l->address,
		       l->rec.tls == MP_TLS_IMPLICIT   ? "implicit"
		       : l->rec.tls == MP_TLS_STARTTLS ? "starttls"
						       : "none");
	}
}

void
mp_listeners_close(struct mp_server *server)
{
	for (size_t i = 0; i < server->n_listeners; i++) {
		struct mp_listener *l = &server->listeners[i];

		if (l->fd < 0)
			continue;
		ev_io_stop(server->loop, &l->io);
		ev_timer_stop(server->loop, &l->pause);
		close(l->fd);
		l->fd = -1;
	}
}
