/* test-conn.c - connections over loopback: framing through real sockets,
 * TLS, STARTTLS (and plaintext injected before it), limits, timeouts,
 * backpressure, the thread pool and graceful shutdown.
 *
 * The server runs on its own thread with the echo test plugin linked in;
 * the test talks to it with blocking sockets and OpenSSL. */
#include "config.h"

#include <arpa/inet.h>
#include <ev.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <moonpost/plugin.h>
#include <moonpost/server.h>

#include "dev.h"

extern const struct mp_plugin moonpost_plugin; /* echo, linked in */

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

/* --- the server thread -------------------------------------------------- */

static int
free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	g_assert_cmpint(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
	g_assert_cmpint(getsockname(fd, (struct sockaddr *)&sin, &len), ==, 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static void
stop_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct fixture *fx = w->data;

	ev_async_stop(loop, w);
	mp_server_stop(fx->server);
}

static void *
server_thread(void *arg)
{
	struct fixture *fx = arg;

	fx->exit_code = mp_server_run(fx->server);
	return NULL;
}

static void
fixture_start(struct fixture *fx, const char *extra)
{
	static const struct mp_plugin *const builtins[] = {&moonpost_plugin,
							   NULL};
	struct mp_server_settings set = {.no_signals = true,
					 .builtin_plugins = builtins};
	char *password = NULL, *error = NULL, *source;

	memset(fx, 0, sizeof(*fx));
	fx->dir = g_dir_make_tmp("moonpost-conn-XXXXXX", NULL);
	g_assert_true(mp_dev_prepare(fx->dir, &password, &error));
	free(password);
	fx->port_plain = free_port();
	fx->port_starttls = free_port();
	fx->port_tls = free_port();
	source = g_strdup_printf(
		"data_dir = \"%s\"\nuser = \"%s\"\n"
		"tls { cert = \"tls/cert.pem\", key = \"tls/key.pem\" }\n"
		"listen { name = \"plain\", protocol = \"echo\", address = "
		"\"127.0.0.1:%d\" }\n"
		"listen { name = \"starttls\", protocol = \"echo\", address = "
		"\"127.0.0.1:%d\", tls = \"starttls\" }\n"
		"listen { name = \"tls\", protocol = \"echo\", address = "
		"\"127.0.0.1:%d\", tls = \"implicit\" }\n"
		"log { level = \"warn\" }\n%s",
		fx->dir, g_get_user_name(), fx->port_plain, fx->port_starttls,
		fx->port_tls, extra != NULL ? extra : "");
	set.config_source = source;
	set.config_name = "test.conf";
	set.config_dir = fx->dir;
	fx->server = mp_server_new(&set, &error);
	if (fx->server == NULL)
		g_error("server: %s", error);
	g_free(source);
	ev_async_init(&fx->stop, stop_cb);
	fx->stop.data = fx;
	ev_async_start(mp_server_loop(fx->server), &fx->stop);
	g_assert_cmpint(pthread_create(&fx->thread, NULL, server_thread, fx),
			==, 0);
}

static void
rm_rf(const char *path)
{
	GDir *d = g_dir_open(path, 0, NULL);
	const char *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		char *sub = g_build_filename(path, name, NULL);
		if (g_file_test(sub, G_FILE_TEST_IS_DIR))
			rm_rf(sub);
		else
			g_unlink(sub);
		g_free(sub);
	}
	if (d != NULL)
		g_dir_close(d);
	g_rmdir(path);
}

static void
fixture_stop(struct fixture *fx)
{
	ev_async_send(mp_server_loop(fx->server), &fx->stop);
	pthread_join(fx->thread, NULL);
	g_assert_cmpint(fx->exit_code, ==, 0);
	mp_server_free(&fx->server);
	rm_rf(fx->dir);
	g_free(fx->dir);
}

/* --- a blocking client -------------------------------------------------- */

static struct client *
client_connect(int port)
{
	struct client *c = g_new0(struct client, 1);
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = 30};

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	g_assert_cmpint(connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)),
			==, 0);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	c->buf = g_string_new(NULL);
	return c;
}

static bool
client_tls(struct client *c, int max_version, const char *sni)
{
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (max_version != 0) {
		/* Let the client offer old versions; the server must say no. */
		SSL_CTX_set_security_level(c->ctx, 0);
		SSL_CTX_set_min_proto_version(c->ctx, TLS1_VERSION);
		SSL_CTX_set_max_proto_version(c->ctx, max_version);
	}
	c->ssl = SSL_new(c->ctx);
	if (sni != NULL)
		SSL_set_tlsext_host_name(c->ssl, sni);
	SSL_set_fd(c->ssl, c->fd);
	return SSL_connect(c->ssl) == 1;
}

static void
client_send(struct client *c, const char *data, size_t len)
{
	if (c->ssl != NULL)
		g_assert_cmpint(SSL_write(c->ssl, data, (int)len), ==,
				(int)len);
	else
		g_assert_cmpint(send(c->fd, data, len, MSG_NOSIGNAL), ==,
				(gssize)len);
}

static void
client_puts(struct client *c, const char *s)
{
	client_send(c, s, strlen(s));
}

/* Reads more into the buffer; false at end of stream. */
static bool
client_fill(struct client *c)
{
	char chunk[65536];
	int n = c->ssl != NULL ? SSL_read(c->ssl, chunk, sizeof(chunk))
			       : (int)recv(c->fd, chunk, sizeof(chunk), 0);

	if (n <= 0)
		return false;
	g_string_append_len(c->buf, chunk, n);
	return true;
}

/* The next line without CRLF (caller frees), or NULL at end of stream. */
static char *
client_line(struct client *c)
{
	char *nl, *line;

	while ((nl = memchr(c->buf->str, '\n', c->buf->len)) == NULL) {
		if (!client_fill(c))
			return NULL;
	}
	line = g_strndup(c->buf->str, (gsize)(nl - c->buf->str));
	g_string_erase(c->buf, 0, nl - c->buf->str + 1);
	if (strlen(line) > 0 && line[strlen(line) - 1] == '\r')
		line[strlen(line) - 1] = '\0';
	return line;
}

static void
expect_line(struct client *c, const char *prefix)
{
	char *line = client_line(c);

	if (line == NULL || !g_str_has_prefix(line, prefix))
		g_error("expected \"%s...\", got \"%s\"", prefix,
			line != NULL ? line : "(end of stream)");
	g_free(line);
}

static bool
client_at_eof(struct client *c)
{
	return c->buf->len == 0 && !client_fill(c);
}

static void
client_free(struct client *c)
{
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	if (c->ctx != NULL)
		SSL_CTX_free(c->ctx);
	close(c->fd);
	g_string_free(c->buf, TRUE);
	g_free(c);
}

/* --- tests -------------------------------------------------------------- */

static void
test_lines_pipelined(void)
{
	struct fixture fx;
	struct client *c;
	GString *batch = g_string_new(NULL);

	fixture_start(&fx, NULL);
	c = client_connect(fx.port_plain);
	expect_line(c, "+OK echo ready session=");
	for (int i = 0; i < 500; i++)
		g_string_append_printf(batch, "line %d\r\n", i);
	client_send(c, batch->str, batch->len);
	for (int i = 0; i < 500; i++) {
		char *want = g_strdup_printf("+OK line %d", i);
		char *got = client_line(c);
		g_assert_cmpstr(got, ==, want);
		g_free(want);
		g_free(got);
	}
	client_puts(c, "bare\nQUIT\r\n");
	expect_line(c, "+LF bare");
	expect_line(c, "+OK bye");
	g_assert_true(client_at_eof(c));
	client_free(c);
	g_string_free(batch, TRUE);
	fixture_stop(&fx);
}

static void
test_line_too_long(void)
{
	struct fixture fx;
	struct client *c;
	char big[5000];

	fixture_start(&fx, NULL);
	c = client_connect(fx.port_plain);
	expect_line(c, "+OK");
	memset(big, 'a', sizeof(big));
	client_send(c, big, sizeof(big));
	client_puts(c, "\r\nafter\r\n");
	expect_line(c, "-ERR line too long");
	expect_line(c, "+OK after");
	client_free(c);
	fixture_stop(&fx);
}

static void
test_bytes_mode(void)
{
	struct fixture fx;
	struct client *c;
	char *line;

	fixture_start(&fx, NULL);
	c = client_connect(fx.port_plain);
	expect_line(c, "+OK");
	/* The byte run may hold CRLF and is followed by a command in the
	 * same write. */
	client_puts(c, "BYTES 7\r\nab\r\ncdeNEXT\r\n");
	expect_line(c, "+OK go");
	line = client_line(c);
	g_assert_true(g_str_has_prefix(line, "+OK got 7 sum="));
	g_free(line);
	expect_line(c, "+OK NEXT");
	client_free(c);
	fixture_stop(&fx);
}

static void
test_tls_implicit(void)
{
	struct fixture fx;
	struct client *c;

	fixture_start(&fx, NULL);
	c = client_connect(fx.port_tls);
	g_assert_true(client_tls(c, 0, "localhost"));
	expect_line(c, "+OK echo ready");
	client_puts(c, "PEER\r\n");
	expect_line(c, "+OK ip=127.0.0.1 loopback=1 listener=tls tls=TLSv1.3");
	client_free(c);

	c = client_connect(fx.port_tls);
	g_assert_true(client_tls(c, TLS1_2_VERSION, NULL));
	expect_line(c, "+OK echo ready");
	client_puts(c, "PEER\r\n");
	expect_line(c, "+OK ip=127.0.0.1 loopback=1 listener=tls tls=TLSv1.2");
	client_free(c);

	/* TLS 1.1 and older are refused. */
	c = client_connect(fx.port_tls);
	g_assert_false(client_tls(c, TLS1_1_VERSION, NULL));
	ERR_clear_error();
	client_free(c);
	fixture_stop(&fx);
}

static void
test_starttls(void)
{
	struct fixture fx;
	struct client *c;

	fixture_start(&fx, NULL);
	c = client_connect(fx.port_starttls);
	expect_line(c, "+OK");
	client_puts(c, "PEER\r\n");
	expect_line(c,
		    "+OK ip=127.0.0.1 loopback=1 listener=starttls tls=none");
	client_puts(c, "STARTTLS\r\n");
	expect_line(c, "+OK begin TLS");
	g_assert_true(client_tls(c, 0, NULL));
	client_puts(c, "PEER\r\n");
	expect_line(c, "+OK ip=127.0.0.1 loopback=1 listener=starttls tls=TLS");
	/* No second upgrade. */
	client_puts(c, "STARTTLS\r\n");
	expect_line(c, "-ERR TLS not available");
	client_free(c);

	/* The plaintext listener has no STARTTLS. */
	c = client_connect(fx.port_plain);
	expect_line(c, "+OK");
	client_puts(c, "STARTTLS\r\n");
	expect_line(c, "-ERR TLS not available");
	client_free(c);
	fixture_stop(&fx);
}

static void
test_starttls_injection(void)
{
	struct fixture fx;
	struct client *c;

	fixture_start(&fx, NULL);
	c = client_connect(fx.port_starttls);
	expect_line(c, "+OK");
	/* A man in the middle appends a command to the client's STARTTLS:
	 * it arrives in plaintext before the upgrade and must be dropped,
	 * not answered inside the TLS session. */
	client_puts(c, "STARTTLS\r\nINJECTED\r\n");
	expect_line(c, "+OK begin TLS");
	g_assert_cmpuint(c->buf->len, ==, 0);
	g_assert_true(client_tls(c, 0, NULL));
	client_puts(c, "AFTER\r\n");
	expect_line(c, "+OK AFTER");
	client_free(c);
	fixture_stop(&fx);
}

static void
test_sni(void)
{
	struct fixture fx;
	struct client *c;
	char *source;
	char *cert_dir;
	char *pw = NULL, *error = NULL;
	X509 *peer;
	char cn[128];

	/* A second certificate (another dev dir's) chosen by name. */
	cert_dir = g_dir_make_tmp("moonpost-sni-XXXXXX", NULL);
	g_assert_true(mp_dev_prepare(cert_dir, &pw, &error));
	free(pw);
	source =
		g_strdup_printf("tls { names = { \"other.test\", "
				"\"*.wild.test\" }, cert = \"%s/tls/cert.pem\","
				" key = \"%s/tls/key.pem\" }\n",
				cert_dir, cert_dir);
	fixture_start(&fx, source);
	for (int i = 0; i < 3; i++) {
		const char *sni = i == 0   ? "other.test"
				  : i == 1 ? "a.wild.test"
					   : "localhost";
		X509 *mine;
		FILE *f;
		char *path = g_strdup_printf("%s/tls/cert.pem",
					     i < 2 ? cert_dir : fx.dir);

		c = client_connect(fx.port_tls);
		g_assert_true(client_tls(c, 0, sni));
		peer = SSL_get1_peer_certificate(c->ssl);
		f = fopen(path, "r");
		mine = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
		g_assert_cmpint(X509_cmp(peer, mine), ==, 0);
		X509_NAME_get_text_by_NID(X509_get_subject_name(peer),
					  NID_commonName, cn, sizeof(cn));
		X509_free(mine);
		X509_free(peer);
		g_free(path);
		client_free(c);
	}
	fixture_stop(&fx);
	rm_rf(cert_dir);
	g_free(cert_dir);
	g_free(source);
}

static void
test_pool_and_order(void)
{
	struct fixture fx;
	struct client *c;

	fixture_start(&fx, NULL);
	c = client_connect(fx.port_plain);
	expect_line(c, "+OK");
	/* Input behind a command waiting on the pool waits with it. */
	client_puts(c, "SLOW 50\r\nSECOND\r\nSLOW 1\r\nTHIRD\r\n");
	expect_line(c, "+OK slow 50");
	expect_line(c, "+OK SECOND");
	expect_line(c, "+OK slow 1");
	expect_line(c, "+OK THIRD");
	client_free(c);
	fixture_stop(&fx);
}

static void
test_backpressure(void)
{
	struct fixture fx;
	struct client *c;
	const size_t total = 8 * 1024 * 1024;
	size_t got = 0;

	fixture_start(&fx, NULL);
	c = client_connect(fx.port_plain);
	expect_line(c, "+OK");
	client_puts(c, "BIG 8388608\r\nAFTER\r\n");
	/* Read slowly at first so the server must hold back. */
	usleep(200 * 1000);
	while (got < total) {
		size_t n = MIN(c->buf->len, total - got);
		got += n;
		g_string_erase(c->buf, 0, (gssize)n);
		if (got < total)
			g_assert_true(client_fill(c));
	}
	expect_line(c, "");
	expect_line(c, "+OK big done");
	expect_line(c, "+OK AFTER");
	client_free(c);
	fixture_stop(&fx);
}

static void
test_per_ip_limit(void)
{
	struct fixture fx;
	struct client *a, *b, *c;

	fixture_start(&fx, "limits { connections_per_ip = 2 }\n");
	a = client_connect(fx.port_plain);
	expect_line(a, "+OK");
	b = client_connect(fx.port_plain);
	expect_line(b, "+OK");
	c = client_connect(fx.port_plain);
	expect_line(c, "-ERR busy");
	g_assert_true(client_at_eof(c));
	client_free(c);
	/* A slot frees up when a connection ends. */
	client_puts(a, "QUIT\r\n");
	expect_line(a, "+OK bye");
	g_assert_true(client_at_eof(a));
	client_free(a);
	c = client_connect(fx.port_plain);
	expect_line(c, "+OK");
	client_free(c);
	client_free(b);
	fixture_stop(&fx);
}

static void
test_global_limit(void)
{
	struct fixture fx;
	struct client *a, *c;

	fixture_start(&fx, "limits { connections = 1 }\n");
	a = client_connect(fx.port_plain);
	expect_line(a, "+OK");
	c = client_connect(fx.port_tls);
	/* Implicit TLS: no plaintext reply, just a close. */
	g_assert_false(client_tls(c, 0, NULL));
	ERR_clear_error();
	client_free(c);
	client_free(a);
	fixture_stop(&fx);
}

static void
test_idle_timeout(void)
{
	struct fixture fx;
	struct client *c;

	fixture_start(&fx, "echo { timeout = \"300ms\" }\n");
	c = client_connect(fx.port_plain);
	expect_line(c, "+OK");
	expect_line(c, "-ERR idle timeout");
	g_assert_true(client_at_eof(c));
	client_free(c);
	fixture_stop(&fx);
}

static void
test_graceful_shutdown(void)
{
	struct fixture fx;
	struct client *c, *t;

	fixture_start(&fx, NULL);
	c = client_connect(fx.port_plain);
	expect_line(c, "+OK");
	t = client_connect(fx.port_tls);
	g_assert_true(client_tls(t, 0, NULL));
	expect_line(t, "+OK");
	ev_async_send(mp_server_loop(fx.server), &fx.stop);
	expect_line(c, "-ERR server shutting down");
	g_assert_true(client_at_eof(c));
	expect_line(t, "-ERR server shutting down");
	g_assert_true(client_at_eof(t));
	pthread_join(fx.thread, NULL);
	g_assert_cmpint(fx.exit_code, ==, 0);
	client_free(c);
	client_free(t);
	mp_server_free(&fx.server);
	rm_rf(fx.dir);
	g_free(fx.dir);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/core/conn/lines/pipelined", test_lines_pipelined);
	g_test_add_func("/core/conn/lines/too-long", test_line_too_long);
	g_test_add_func("/core/conn/bytes", test_bytes_mode);
	g_test_add_func("/core/conn/tls/implicit", test_tls_implicit);
	g_test_add_func("/core/conn/tls/starttls", test_starttls);
	g_test_add_func("/core/conn/tls/starttls-injection",
			test_starttls_injection);
	g_test_add_func("/core/conn/tls/sni", test_sni);
	g_test_add_func("/core/conn/pool/order", test_pool_and_order);
	g_test_add_func("/core/conn/backpressure", test_backpressure);
	g_test_add_func("/core/conn/limits/per-ip", test_per_ip_limit);
	g_test_add_func("/core/conn/limits/global", test_global_limit);
	g_test_add_func("/core/conn/timeout", test_idle_timeout);
	g_test_add_func("/core/conn/shutdown", test_graceful_shutdown);
	return g_test_run();
}
