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

#include "conn-fixture.h"
#include "dev.h"

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

/* Reads n bytes from c (asserting the stream goes on) into out. */
static void
client_read_n(struct client *c, GString *out, size_t n)
{
	while (c->buf->len < n)
		g_assert_true(client_fill(c));
	g_string_append_len(out, c->buf->str, (gssize)n);
	g_string_erase(c->buf, 0, (gssize)n);
}

/* File ranges go out in order with the writes around them. */
static void
test_send_file(void)
{
	struct fixture fx;
	struct client *c;
	const unsigned pieces = 40; /* 2.5 MB: far above high water */

	fixture_start(&fx, NULL);
	c = client_connect(fx.port_plain);
	expect_line(c, "+OK");
	client_puts(c, "FILE 40\r\nAFTER\r\n");
	expect_line(c, "+OK file");
	usleep(200 * 1000); /* the server must wait for the client */
	for (unsigned i = 0; i < pieces; i++) {
		char marker[16];
		GString *got = g_string_new(NULL);

		snprintf(marker, sizeof(marker), "[%u]", i);
		client_read_n(c, got, strlen(marker) + 65536);
		g_assert_true(g_str_has_prefix(got->str, marker));
		for (size_t j = 0; j < 65536; j++) {
			char want = (char)('a' + ((size_t)i * 65536 + j) % 26);
			if (got->str[strlen(marker) + j] != want)
				g_error("piece %u byte %zu: %c", i, j,
					got->str[strlen(marker) + j]);
		}
		g_string_free(got, TRUE);
	}
	expect_line(c, "");
	expect_line(c, "+OK file done");
	expect_line(c, "+OK AFTER");
	client_free(c);
	fixture_stop(&fx);
}

/* A file shorter than the range queued ends the connection: the bytes
 * announced cannot be sent. Over TLS nothing is queued. */
static void
test_send_file_short_and_tls(void)
{
	struct fixture fx;
	struct client *c;
	GString *got = g_string_new(NULL);

	fixture_start(&fx, NULL);
	c = client_connect(fx.port_plain);
	expect_line(c, "+OK");
	client_puts(c, "FILE 2 short\r\n");
	expect_line(c, "+OK file");
	client_read_n(c, got, 3 + 65536 + 3 + 65536);
	g_assert_true(g_str_has_prefix(got->str, "[0]"));
	g_assert_cmpint(got->str[3 + 65536], ==, '[');
	while (client_fill(c))
		;
	g_assert_cmpuint(c->buf->len, ==, 0);
	client_free(c);

	c = client_connect(fx.port_tls);
	g_assert_true(client_tls(c, 0, "localhost"));
	expect_line(c, "+OK echo ready");
	client_puts(c, "FILE 1\r\nAFTER\r\n");
	expect_line(c, "+OK file");
	expect_line(c, "[0]");
	expect_line(c, "-ERR no sendfile");
	expect_line(c, "+OK AFTER");
	client_free(c);
	g_string_free(got, TRUE);
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
	g_test_add_func("/core/conn/send-file", test_send_file);
	g_test_add_func("/core/conn/send-file/short-and-tls",
			test_send_file_short_and_tls);
	g_test_add_func("/core/conn/limits/per-ip", test_per_ip_limit);
	g_test_add_func("/core/conn/limits/global", test_global_limit);
	g_test_add_func("/core/conn/timeout", test_idle_timeout);
	g_test_add_func("/core/conn/shutdown", test_graceful_shutdown);
	return g_test_run();
}
