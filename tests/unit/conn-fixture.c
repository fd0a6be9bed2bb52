/* conn-fixture.c - a moonpost server on its own thread with the echo
 * plugin, and a blocking client (plaintext or TLS), for the connection
 * tests. */
#include "config.h"

#include <arpa/inet.h>
#include <ev.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <moonpost/plugin.h>
#include <moonpost/server.h>

#include "conn-fixture.h"
#include "dev.h"

extern const struct mp_plugin moonpost_plugin; /* echo, linked in */

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

void
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

void
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

void
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

struct client *
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

bool
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

void
client_send(struct client *c, const char *data, size_t len)
{
	if (c->ssl != NULL)
		g_assert_cmpint(SSL_write(c->ssl, data, (int)len), ==,
				(int)len);
	else
		g_assert_cmpint(send(c->fd, data, len, MSG_NOSIGNAL), ==,
				(gssize)len);
}

void
client_puts(struct client *c, const char *s)
{
	client_send(c, s, strlen(s));
}

/* Reads more into the buffer; false at end of stream. */
bool
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
char *
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

void
expect_line(struct client *c, const char *prefix)
{
	char *line = client_line(c);

	if (line == NULL || !g_str_has_prefix(line, prefix))
		g_error("expected \"%s...\", got \"%s\"", prefix,
			line != NULL ? line : "(end of stream)");
	g_free(line);
}

bool
client_at_eof(struct client *c)
{
	return c->buf->len == 0 && !client_fill(c);
}

void
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
