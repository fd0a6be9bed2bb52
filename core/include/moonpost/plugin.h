/* plugin.h - the descriptor a protocol plugin exports.
 *
 * A plugin is a shared object that exports one `const struct mp_plugin`
 * named MP_PLUGIN_SYMBOL, best written with MP_PLUGIN_DEFINE. A listener in
 * the config names the plugin that serves it (`protocol = "imap"`).
 *
 * ABI rules (Varnish style): the first three fields never move. Adding a field
 * at the end bumps the minor version; changing or removing anything bumps the
 * major. The loader accepts a plugin when its major equals the core's, its
 * minor is not newer than the core's, and its struct_size is the size the
 * core knows for that minor. */
#ifndef MOONPOST_PLUGIN_H
#define MOONPOST_PLUGIN_H

#include <moonpost/common.h>
#include <moonpost/config.h>

#define MP_PLUGIN_ABI_MAJOR 1
#define MP_PLUGIN_ABI_MINOR 0
#define MP_PLUGIN_SYMBOL    "moonpost_plugin"

struct mp_conn;
struct mp_server;

/* Flags passed with each line to on_line(). */
enum mp_line_flags {
	/* The line ended with a bare LF rather than CRLF. SMTP must not treat
	 * such a line as the end of DATA (the 2023 smuggling attacks). */
	MP_LINE_BARE_LF = 1 << 0,
	/* The line was longer than the connection's maximum. `line` holds its
	 * first max bytes; the rest, up to the next LF, is thrown away without
	 * another call. */
	MP_LINE_TOO_LONG = 1 << 1,
};

struct mp_plugin {
	/* --- never move: the loader reads these before anything else --- */
	uint16_t abi_major;
	uint16_t abi_minor;
	uint32_t struct_size;

	/* --- ABI 1.0 --- */
	const char *name;    /* the `protocol` listeners name: "smtp" */
	const char *version; /* free text, logged at load */
	/* Roles a listener may give, NULL-terminated; NULL: the plugin takes
	 * no role, and a listener must not set one. */
	const char *const *roles;
	/* Lua hooks the plugin fires ("smtp.rcpt"), NULL-terminated, or NULL.
	 * Scripts may only register for hooks some component declares. */
	const char *const *hooks;
	/* The plugin's config section (named after the plugin), or NULL. */
	const struct mp_cfg_section *config;
	/* Sent, then the connection closed, when a plaintext connection is
	 * refused over a connection limit. Implicit TLS ones are just closed.
	 */
	const char *busy_reply;
	/* Largest line accepted before authentication; changed per connection
	 * with mp_conn_set_max_line(). */
	size_t max_line;

	/* Called once after loading, on the loop thread. Returns false with
	 * *error_r (static) set to refuse to start. May be NULL. */
	bool (*init)(struct mp_server *server, const char **error_r);
	/* Called once before unloading. May be NULL. */
	void (*deinit)(struct mp_server *server);

	/* A connection was accepted (and, on implicit TLS, its handshake is
	 * done). Send the greeting here. MP_ERROR closes it. */
	enum mp_status (*on_open)(struct mp_conn *conn);
	/* One input line, CRLF or LF removed. MP_OK: go on with the next
	 * line. MP_AGAIN: hold further input until mp_conn_resume() (which may
	 * already have been called during this callback, when the async work
	 * finished at once: input then goes on). MP_ERROR: flush pending
	 * output and close. */
	enum mp_status (*on_line)(struct mp_conn *conn, const char *line,
				  size_t len, unsigned flags);
	/* Input in byte mode (mp_conn_read_bytes / mp_conn_read_stream).
	 * *consumed_r says how much was used; what is left is offered again
	 * (after mp_conn_read_lines(), as lines). Statuses as for on_line. */
	enum mp_status (*on_bytes)(struct mp_conn *conn, const uint8_t *data,
				   size_t len, size_t *consumed_r);
	/* Pending output fell below the low-water mark after the plugin asked
	 * with mp_conn_want_writable(): produce more of a long response. */
	void (*on_writable)(struct mp_conn *conn);
	/* The timeout set with mp_conn_set_timeout() passed without input.
	 * Write a goodbye if the protocol has one; the core then closes. */
	void (*on_timeout)(struct mp_conn *conn);
	/* The server is stopping (SIGTERM). Finish or tempfail what is in
	 * progress and close with the protocol's goodbye (421, BYE). The core
	 * closes what is still open when the grace period ends. */
	void (*on_shutdown)(struct mp_conn *conn);
	/* The connection is gone; free the session. Called exactly once for
	 * every connection on_open() was called for. */
	void (*on_close)(struct mp_conn *conn);
};

/* Defines the exported descriptor. Use once per plugin:
 *   MP_PLUGIN_DEFINE(.name = "pop3", .on_line = pop3_on_line, ...); */
#define MP_PLUGIN_DEFINE(...)                                                  \
	MP_API const struct mp_plugin moonpost_plugin = {                      \
		.abi_major = MP_PLUGIN_ABI_MAJOR,                              \
		.abi_minor = MP_PLUGIN_ABI_MINOR,                              \
		.struct_size = sizeof(struct mp_plugin),                       \
		__VA_ARGS__}

#endif
