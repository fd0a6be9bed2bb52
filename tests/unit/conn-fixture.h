/* conn-fixture.h - the connection tests' server thread and client. */
#ifndef MOONPOST_TEST_CONN_FIXTURE_H
#define MOONPOST_TEST_CONN_FIXTURE_H

#include <ev.h>
#include <glib.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdbool.h>

struct fixture {
	char *dir;
	int port_plain, port_starttls, port_tls;
	struct mp_server *server;
	pthread_t thread;
	ev_async stop;
	int exit_code;
};

struct client {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	GString *buf;
};

/* Starts a server with listeners plain, starttls and tls (implicit) on
 * free loopback ports; extra is appended to the config. */
void fixture_start(struct fixture *fx, const char *extra);
/* Stops the server, checks its exit code, removes its directory. */
void fixture_stop(struct fixture *fx);
/* Removes a directory tree. */
void rm_rf(const char *path);

/* A blocking client on 127.0.0.1:port (30 s receive timeout). */
struct client *client_connect(int port);
/* Runs a TLS handshake on the client; false when it failed. */
bool client_tls(struct client *c, int max_version, const char *sni);
/* Sends len bytes (asserts they all went). */
void client_send(struct client *c, const char *data, size_t len);
/* Sends a string. */
void client_puts(struct client *c, const char *s);
/* Reads more into c->buf; false at end of stream. */
bool client_fill(struct client *c);
/* The next line without CRLF (caller frees), or NULL at end of stream. */
char *client_line(struct client *c);
/* Fails the test unless the next line starts with prefix. */
void expect_line(struct client *c, const char *prefix);
/* True when nothing is buffered and the server closed. */
bool client_at_eof(struct client *c);
/* Closes and frees the client. */
void client_free(struct client *c);

#endif
