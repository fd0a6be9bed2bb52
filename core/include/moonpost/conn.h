/* conn.h - one client connection, as a protocol plugin sees it.
 *
 * The core owns the socket, TLS, framing, timers and output buffering. A
 * plugin receives lines (or bytes, in byte mode) through its descriptor's
 * callbacks and answers with mp_conn_write(). Output is sent when the loop
 * next goes idle, so pipelined replies leave in one write. When the peer
 * stops reading and output passes the high-water mark, input is held until
 * it drains (backpressure).
 *
 * Callbacks never run re-entrantly: calling mp_conn_* from inside on_line()
 * does not call back into the plugin before on_line() returns. */
#ifndef MOONPOST_CONN_H
#define MOONPOST_CONN_H

#include <moonpost/common.h>
#include <moonpost/config.h>
#include <moonpost/log.h>

struct mp_conn;
struct mp_server;
struct sockaddr;

/* --- identity ----------------------------------------------------------- */

/* The session id: 12 characters, unique within a run, logged everywhere.
 * Owned by the connection. */
MP_API const char *mp_conn_id(const struct mp_conn *conn);
/* The server that accepted the connection (borrowed). */
MP_API struct mp_server *mp_conn_server(const struct mp_conn *conn);
/* The config generation the connection started under (borrowed; stays valid
 * for the connection's life, even across a reload). */
MP_API const struct mp_config *mp_conn_config(const struct mp_conn *conn);
/* The plugin's own config section struct for that generation (borrowed). */
MP_API const void *mp_conn_plugin_config(const struct mp_conn *conn);
/* The listener record the connection arrived on (borrowed). */
MP_API const struct mp_cfg_listener *
mp_conn_listener(const struct mp_conn *conn);
/* The listener's role ("mx", "submission"...), or "" when it has none. */
MP_API const char *mp_conn_role(const struct mp_conn *conn);
/* The client's address as text ("192.0.2.7", "2001:db8::1"); owned by the
 * connection. */
MP_API const char *mp_conn_peer_ip(const struct mp_conn *conn);
/* The client's port. */
MP_API int mp_conn_peer_port(const struct mp_conn *conn);
/* The client's socket address (borrowed). */
MP_API const struct sockaddr *mp_conn_peer_addr(const struct mp_conn *conn);
/* The local address as text; owned by the connection. */
MP_API const char *mp_conn_local_ip(const struct mp_conn *conn);
/* The local port. */
MP_API int mp_conn_local_port(const struct mp_conn *conn);
/* True when the client is on a loopback address (127/8, ::1). */
MP_API bool mp_conn_is_loopback(const struct mp_conn *conn);

/* --- TLS ---------------------------------------------------------------- */

/* True when the connection is encrypted (implicit, or after STARTTLS). */
MP_API bool mp_conn_is_tls(const struct mp_conn *conn);
/* "TLSv1.3" or NULL without TLS; static string. */
MP_API const char *mp_conn_tls_version(const struct mp_conn *conn);
/* The negotiated cipher's name, or NULL without TLS; static string. */
MP_API const char *mp_conn_tls_cipher(const struct mp_conn *conn);
/* True when STARTTLS may be offered now: the listener is a starttls one, a
 * certificate is configured, and the connection is still plaintext and not
 * compressed. */
MP_API bool mp_conn_can_starttls(const struct mp_conn *conn);
/* Starts the TLS handshake once the output queued so far (the protocol's
 * "go ahead" reply) has been sent. Input already buffered is discarded: it
 * was sent in plaintext before the upgrade and cannot be trusted. Input is
 * held until the handshake ends; a failed handshake closes the connection.
 * Returns false (and changes nothing) when mp_conn_can_starttls() is false. */
MP_API bool mp_conn_starttls(struct mp_conn *conn);

/* --- compression (IMAP COMPRESS=DEFLATE, RFC 4978) ---------------------- */

/* True when mp_conn_compress() would succeed now: the connection is open,
 * not compressed yet, and no STARTTLS upgrade is pending. A plugin checks
 * this before it queues its "OK DEFLATE active" reply. */
MP_API bool mp_conn_can_compress(const struct mp_conn *conn);
/* Switches the connection to raw DEFLATE (RFC 1951, no zlib header) in
 * both directions, on top of TLS when TLS is on. Output queued before the
 * call (the protocol's OK) leaves uncompressed; output queued after it is
 * compressed and sync-flushed whenever the queue empties into the socket,
 * so the peer never waits on a partial block. Input not yet framed when the
 * call is made - the bytes after the current line when called from
 * on_line(), or everything buffered when called later - is compressed data
 * and is inflated before framing; lines, mp_conn_read_bytes() and
 * mp_conn_read_stream() work unchanged. mp_conn_output_size() and the
 * high-water mark count compressed bytes. A corrupt stream closes the
 * connection (logged). STARTTLS is refused from then on.
 *
 * Memory: about 80 KB of zlib state per compressed connection, freed at
 * close: deflate with a 4 KB window and memLevel 5 takes 39 KB, inflate
 * with the 32 KB window any client may use takes 40 KB. zlib's defaults
 * (window 15, memLevel 8) would take 268 KB for deflate, ~310 KB in all;
 * on IMAP FETCH responses they send ~16% fewer bytes (10.7% of the plain
 * size against 12.8%). The settings are constants in conn-compress.c.
 * Returns false (and changes nothing) when mp_conn_can_compress() is
 * false, which includes a second call, or when zlib cannot allocate its
 * state (logged). */
MP_API bool mp_conn_compress(struct mp_conn *conn);
/* True once mp_conn_compress() succeeded. */
MP_API bool mp_conn_is_compressed(const struct mp_conn *conn);

/* --- input -------------------------------------------------------------- */

/* Sets the longest line accepted (bytes, CRLF excluded). */
MP_API void mp_conn_set_max_line(struct mp_conn *conn, size_t max);
/* Delivers the next n bytes to on_bytes(), then returns to lines. For IMAP
 * literals and BDAT chunks. */
MP_API void mp_conn_read_bytes(struct mp_conn *conn, uint64_t n);
/* Delivers all input to on_bytes() until mp_conn_read_lines(). For SMTP
 * DATA, whose end the plugin finds itself. */
MP_API void mp_conn_read_stream(struct mp_conn *conn);
/* Returns to line mode. */
MP_API void mp_conn_read_lines(struct mp_conn *conn);
/* Holds input delivery (the same as returning MP_AGAIN from a callback). */
MP_API void mp_conn_pause(struct mp_conn *conn);
/* Resumes input delivery, starting with input already buffered. Safe to
 * call from any callback on the loop thread. */
MP_API void mp_conn_resume(struct mp_conn *conn);
/* Arms the inactivity timeout, in ms (0 disables it). Input restarts it. */
MP_API void mp_conn_set_timeout(struct mp_conn *conn, uint64_t ms);

/* --- output ------------------------------------------------------------- */

/* Queues len bytes for the client. Ignored once the connection is closing. */
MP_API void mp_conn_write(struct mp_conn *conn, const void *data, size_t len);
/* Queues a NUL-terminated string. */
MP_API void mp_conn_puts(struct mp_conn *conn, const char *s);
/* Queues formatted text. */
MP_API void mp_conn_printf(struct mp_conn *conn, const char *fmt, ...)
	MP_PRINTF(2, 3);
/* True when mp_conn_send_file() would queue a file range now: the
 * connection is open, plaintext and not compressed. */
MP_API bool mp_conn_can_send_file(const struct mp_conn *conn);
/* Queues len bytes of the file fd from offset off, after what is queued;
 * later writes follow them. They go with sendfile(2), never through
 * memory. The connection keeps its own duplicate of fd (the caller keeps
 * and closes fd). If the file turns out shorter than off + len, the
 * connection is closed: the bytes announced cannot be sent. Returns false
 * (and queues nothing) when mp_conn_can_send_file() is false or the
 * descriptor could not be duplicated; the caller writes the bytes itself. */
MP_API bool mp_conn_send_file(struct mp_conn *conn, int fd, uint64_t off,
			      uint64_t len);
/* Bytes queued and not yet sent (compressed bytes once compressed; file
 * ranges included). */
MP_API size_t mp_conn_output_size(const struct mp_conn *conn);
/* True when queued output is above the high-water mark (or many file
 * ranges are queued): a producer of a long response should stop and wait
 * for on_writable(). */
MP_API bool mp_conn_output_full(const struct mp_conn *conn);
/* Asks for one on_writable() call when output drains below low water. */
MP_API void mp_conn_want_writable(struct mp_conn *conn);

/* --- life --------------------------------------------------------------- */

/* Sends what is queued, then closes; no more input is delivered. reason is
 * logged (static string or NULL). */
MP_API void mp_conn_close(struct mp_conn *conn, const char *reason);
/* True once closing has started; a plugin holding a reference across async
 * work checks this before touching the connection. */
MP_API bool mp_conn_is_closed(const struct mp_conn *conn);
/* Keeps the connection object (not the socket) alive across async work;
 * returns conn. */
MP_API struct mp_conn *mp_conn_ref(struct mp_conn *conn);
/* Drops a reference taken with mp_conn_ref(); sets *conn to NULL. */
MP_API void mp_conn_unref(struct mp_conn **conn);
/* Attaches the plugin's session state (the plugin owns and frees it). */
MP_API void mp_conn_set_data(struct mp_conn *conn, void *data);
/* The session state set with mp_conn_set_data(). */
MP_API void *mp_conn_data(const struct mp_conn *conn);

/* --- logging ------------------------------------------------------------ */

/* Says what the session is doing ("reading DATA"); added to its log lines.
 * The string must be static. NULL clears it. */
MP_API void mp_conn_set_action(struct mp_conn *conn, const char *action);
/* Sets the authenticated user shown in log lines (copied; NULL clears). */
MP_API void mp_conn_set_user(struct mp_conn *conn, const char *user);
/* Logs a line tagged with the session id, user and action. */
MP_API void mp_conn_log(const struct mp_conn *conn, enum mp_log_level level,
			const char *fmt, ...) MP_PRINTF(3, 4);

#endif
