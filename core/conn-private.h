/* conn-private.h - the connection struct, shared by conn.c and conn-io.c. */
#ifndef MOONPOST_CONN_PRIVATE_H
#define MOONPOST_CONN_PRIVATE_H

#include <ev.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <moonpost/conn.h>

#include "addr.h"
#include "frame.h"
#include "server-private.h"

/* Output above this holds further input (the peer is not reading). */
#define MP_CONN_HIGH_WATER (256 * 1024)
/* Output below this wakes a producer waiting in on_writable(). */
#define MP_CONN_LOW_WATER (64 * 1024)
/* Input a connection may hold beyond one maximal line: one read's worth
 * left over when the plugin paused. More than that means the plugin is not
 * consuming what it asked for, and the connection is dropped. */
#define MP_CONN_INPUT_SLACK (MP_READ_CHUNK + 64 * 1024)
/* Time allowed for a TLS handshake, and for a closing connection to take
 * its last output. */
#define MP_CONN_HANDSHAKE_TIMEOUT_MS 30000
#define MP_CONN_CLOSE_TIMEOUT_MS     10000
/* File ranges a connection may have queued at once; output counts as full
 * beyond (each holds a descriptor). */
#define MP_CONN_MAX_FILES 32

/* A range of a file queued with mp_conn_send_file(), sent with sendfile(2)
 * once the bytes of conn->out before it have gone. */
struct mp_conn_file {
	struct mp_conn_file *next;
	int fd; /* the connection's own descriptor (a dup) */
	off_t off;
	uint64_t left;
	/* Bytes of conn->out to send first: counted from out_off for the
	 * head of the queue, from the previous range for the others. */
	size_t before;
};

enum conn_state {
	CONN_HANDSHAKE, /* TLS handshake before the session can go on */
	CONN_OPEN,      /* the session runs */
	CONN_CLOSING,   /* no more input: sending what is queued */
	CONN_DEAD,      /* socket gone; kept only by references */
};

struct mp_conn {
	struct mp_server *server;
	struct mp_listener *listener;
	const struct mp_plugin *plugin;
	struct mp_config *config; /* generation at accept, referenced */
	struct mp_tls *tls;       /* certificates for (START)TLS, referenced */
	unsigned refcount;
	enum conn_state state;
	int fd;
	ev_io io;
	ev_timer timer;
	int io_events; /* what io is armed for */

	char id[16];
	char peer_ip[MP_ADDR_TEXT_MAX];
	char local_ip[MP_ADDR_TEXT_MAX];
	int peer_port;
	int local_port;
	struct sockaddr_storage peer;
	uint8_t limit_key[16];

	SSL *ssl;
	struct mp_conn_zlib *z; /* DEFLATE streams once compressed */
	struct mp_framer framer;
	struct mp_buf in;  /* unconsumed input; released when empty */
	struct mp_buf out; /* unsent output from out_off on; released when
			      empty */
	size_t out_off;
	/* File ranges interleaved with out, in order (plaintext only). */
	struct mp_conn_file *files, *files_last;
	unsigned n_files;
	uint64_t file_bytes; /* left in all of them */
	size_t files_before; /* sum of their `before` */
	uint64_t file_sent;  /* bytes sent with sendfile(2), for the log */
	uint64_t timeout_ms;

	bool opened;         /* on_open was called: on_close is owed */
	bool paused;         /* the plugin holds input */
	bool starttls;       /* upgrade once output is flushed */
	bool want_writable;  /* the plugin waits for on_writable */
	bool in_callback;    /* inside a plugin callback */
	bool resume_pending; /* mp_conn_resume() ran inside the callback */
	bool peer_eof;       /* the client closed its side */
	bool write_blocked;  /* last write hit EAGAIN / WANT_WRITE */
	bool tls_write_wants_read; /* SSL_write needs the socket readable */
	bool tls_read_wants_write; /* SSL_read needs it writable */
	int hs_want;               /* the handshake waits for EV_READ/WRITE */
	bool on_work_list;
	bool dispatching;     /* inside dispatch(): framing a buffer */
	bool compress_switch; /* what dispatch() has not framed yet is
				 compressed */

	const char *action;
	const char *close_reason;
	char *user;
	void *data;

	struct mp_conn *prev, *next; /* server->conns */
	struct mp_conn *work_next;   /* server->work */
};

/* Output queued and not sent yet: bytes of out and of file ranges. */
static inline uint64_t
mp_conn_queued(const struct mp_conn *conn)
{
	return conn->out.len - conn->out_off + conn->file_bytes;
}

/* conn-io.c: moving bytes. */

/* Reads once into buf; >0 bytes, 0 at end of stream, -1 when nothing is
 * there now, -2 on error (logged). */
ssize_t mp_conn_io_read(struct mp_conn *conn, char *buf, size_t size);
/* Sends as much queued output as the socket takes; false on a fatal
 * error (logged). */
bool mp_conn_io_flush(struct mp_conn *conn);
/* Drives the TLS handshake; MP_OK when done, MP_AGAIN to wait, MP_ERROR
 * when it failed (logged). */
enum mp_status mp_conn_io_handshake(struct mp_conn *conn);
/* Starts TLS on the socket; false when no session could be made. */
bool mp_conn_io_tls_start(struct mp_conn *conn);
/* Queues a file range after what is queued; false when dup() failed. */
bool mp_conn_io_queue_file(struct mp_conn *conn, int fd, uint64_t off,
			   uint64_t len);
/* Closes every queued file range (teardown). */
void mp_conn_io_drop_files(struct mp_conn *conn);
/* Sends close_notify once, without waiting for the peer's. */
void mp_conn_io_tls_shutdown(struct mp_conn *conn);

/* conn-compress.c: the DEFLATE layer (conn->z). */

struct mp_conn_zlib;

/* Deflates len bytes into the output queue. */
void mp_conn_zlib_write(struct mp_conn *conn, const void *data, size_t len);
/* Ends the current deflate block with a sync flush, into the output queue,
 * when anything was deflated since the last one; true when it did. */
bool mp_conn_zlib_sync(struct mp_conn *conn);
/* Buffers compressed input for mp_conn_zlib_inflate(). */
void mp_conn_zlib_feed(struct mp_conn *conn, const char *data, size_t len);
/* True when inflating may produce more input now. */
bool mp_conn_zlib_has_input(const struct mp_conn *conn);
/* Inflates buffered input into out (at most size bytes, *produced_r
 * of them). False on a corrupt or ended stream, with *error_r (static). */
bool mp_conn_zlib_inflate(struct mp_conn *conn, char *out, size_t size,
			  size_t *produced_r, const char **error_r);
/* Logs the byte counts and frees the streams; no-op when not compressed. */
void mp_conn_zlib_end(struct mp_conn *conn);

/* conn.c */

/* Puts conn on the server's work list (runs before the loop next waits). */
void mp_conn_schedule(struct mp_conn *conn);

#endif
