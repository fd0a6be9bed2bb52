/* test-conn-compress.c - the connection's DEFLATE layer (RFC 4978) over
 * loopback: the echo plugin's COMPRESS command switches a connection, and
 * the client speaks raw deflate with zlib directly. Lines, byte mode,
 * backpressure with incompressible output, TLS underneath, input already
 * buffered behind the command, split input, a corrupt stream and a
 * decompression bomb. */
#include "config.h"

#include <arpa/inet.h>
#include <glib.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <zlib.h>

#include "conn-fixture.h"

struct zclient {
	struct client *c;
	z_stream def;
	z_stream inf;
	GString *plain; /* inflated, not yet read */
};

/* --- a compressing client ------------------------------------------------ */

static void
zc_init_streams(struct zclient *z)
{
	g_assert_cmpint(deflateInit2(&z->def, 6, Z_DEFLATED, -15, 8,
				     Z_DEFAULT_STRATEGY),
			==, Z_OK);
	g_assert_cmpint(inflateInit2(&z->inf, -15), ==, Z_OK);
	z->plain = g_string_new(NULL);
}

/* Sends COMPRESS on c (whose greeting was read) and takes over c. */
static struct zclient *
zc_start(struct client *c)
{
	struct zclient *z = g_new0(struct zclient, 1);

	z->c = c;
	zc_init_streams(z);
	client_puts(c, "COMPRESS\r\n");
	expect_line(c, "+OK DEFLATE active");
	return z;
}

/* Connects in plaintext and switches to compression. */
static struct zclient *
zc_connect(int port)
{
	struct client *c = client_connect(port);

	expect_line(c, "+OK echo ready");
	return zc_start(c);
}

/* As zc_connect(), with a 32 KB receive buffer: the kernel cannot then
 * absorb a multi-megabyte response (send buffers stop at tcp_wmem's
 * maximum, 4 MB by default), so the server's queue must fill. */
static struct zclient *
zc_connect_small(int port)
{
	struct client *c = g_new0(struct client, 1);
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = 30};
	int rcvbuf = 32 * 1024;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	g_assert_cmpint(connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)),
			==, 0);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	c->buf = g_string_new(NULL);
	expect_line(c, "+OK echo ready");
	return zc_start(c);
}

/* Deflates data and appends the output to out. */
static void
zc_deflate(struct zclient *z, const void *data, size_t len, int flush,
	   GString *out)
{
	char chunk[65536];

	z->def.next_in = (Bytef *)(uintptr_t)data;
	z->def.avail_in = (uInt)len;
	do {
		z->def.next_out = (Bytef *)chunk;
		z->def.avail_out = sizeof(chunk);
		g_assert_cmpint(deflate(&z->def, flush), !=, Z_STREAM_ERROR);
		g_string_append_len(out, chunk,
				    (gssize)(sizeof(chunk) - z->def.avail_out));
	} while (z->def.avail_out == 0 || z->def.avail_in > 0);
}

static void
zc_send(struct zclient *z, const char *data, size_t len)
{
	GString *out = g_string_new(NULL);

	zc_deflate(z, data, len, Z_SYNC_FLUSH, out);
	client_send(z->c, out->str, out->len);
	g_string_free(out, TRUE);
}

static void
zc_puts(struct zclient *z, const char *s)
{
	zc_send(z, s, strlen(s));
}

/* Inflates what the client has buffered; false at end of stream. */
static bool
zc_fill(struct zclient *z)
{
	char chunk[65536];
	int ret;

	if (z->c->buf->len == 0 && !client_fill(z->c))
		return false;
	z->inf.next_in = (Bytef *)z->c->buf->str;
	z->inf.avail_in = (uInt)z->c->buf->len;
	do {
		z->inf.next_out = (Bytef *)chunk;
		z->inf.avail_out = sizeof(chunk);
		ret = inflate(&z->inf, Z_NO_FLUSH);
		if (ret != Z_OK && ret != Z_BUF_ERROR)
			g_error("inflate: %d %s", ret,
				z->inf.msg != NULL ? z->inf.msg : "");
		g_string_append_len(z->plain, chunk,
				    (gssize)(sizeof(chunk) - z->inf.avail_out));
	} while (z->inf.avail_out == 0);
	g_assert_cmpuint(z->inf.avail_in, ==, 0);
	g_string_truncate(z->c->buf, 0);
	return true;
}

static char *
zc_line(struct zclient *z)
{
	char *nl, *line;

	while ((nl = memchr(z->plain->str, '\n', z->plain->len)) == NULL) {
		if (!zc_fill(z))
			return NULL;
	}
	line = g_strndup(z->plain->str, (gsize)(nl - z->plain->str));
	g_string_erase(z->plain, 0, nl - z->plain->str + 1);
	if (strlen(line) > 0 && line[strlen(line) - 1] == '\r')
		line[strlen(line) - 1] = '\0';
	return line;
}

static void
zc_expect(struct zclient *z, const char *prefix)
{
	char *line = zc_line(z);

	if (line == NULL || !g_str_has_prefix(line, prefix))
		g_error("expected \"%s...\", got \"%s\"", prefix,
			line != NULL ? line : "(end of stream)");
	g_free(line);
}

/* True when the server closed without sending anything more. */
static bool
zc_at_eof(struct zclient *z)
{
	while (z->plain->len == 0) {
		if (!zc_fill(z))
			return true;
	}
	return false;
}

static void
zc_free(struct zclient *z)
{
	deflateEnd(&z->def);
	inflateEnd(&z->inf);
	g_string_free(z->plain, TRUE);
	client_free(z->c);
	g_free(z);
}

/* The echo plugin's NOISE generator (xorshift32 from 1). */
static void
noise_fill(uint32_t *state, char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		*state ^= *state << 13;
		*state ^= *state >> 17;
		*state ^= *state << 5;
		buf[i] = (char)(*state & 0xff);
	}
}

/* Reads `total` NOISE bytes, slowly at first, and checks every byte;
 * returns the server's max_queued figure. */
static size_t
zc_read_noise(struct zclient *z, size_t total)
{
	uint32_t state = 1;
	size_t got = 0, max_queued = 0;
	char want[65536];
	char *line;

	usleep(200 * 1000); /* the server must hold back meanwhile */
	while (got < total) {
		size_t n = MIN(z->plain->len, MIN(total - got, sizeof(want)));

		if (n == 0) {
			g_assert_true(zc_fill(z));
			continue;
		}
		noise_fill(&state, want, n);
		g_assert_true(memcmp(z->plain->str, want, n) == 0);
		g_string_erase(z->plain, 0, (gssize)n);
		got += n;
	}
	zc_expect(z, "");
	line = zc_line(z);
	g_assert_nonnull(line);
	g_assert_true(
		sscanf(line, "+OK big done max_queued=%zu", &max_queued) == 1);
	g_free(line);
	return max_queued;
}

/* --- tests -------------------------------------------------------------- */

static void
test_lines(void)
{
	struct fixture fx;
	struct zclient *z;
	GString *batch = g_string_new(NULL);

	fixture_start(&fx, NULL);
	z = zc_connect(fx.port_starttls);
	zc_puts(z, "PEER\r\n");
	zc_expect(z, "+OK ip=127.0.0.1 loopback=1 listener=starttls "
		     "tls=none deflate=1");
	for (int i = 0; i < 500; i++)
		g_string_append_printf(batch, "line %d\r\n", i);
	zc_send(z, batch->str, batch->len);
	for (int i = 0; i < 500; i++) {
		char *want = g_strdup_printf("+OK line %d", i);
		char *got = zc_line(z);
		g_assert_cmpstr(got, ==, want);
		g_free(want);
		g_free(got);
	}
	/* No second COMPRESS, no STARTTLS under compression. */
	zc_puts(z, "COMPRESS\r\n");
	zc_expect(z, "-ERR compression not available");
	zc_puts(z, "STARTTLS\r\n");
	zc_expect(z, "-ERR TLS not available");
	zc_puts(z, "QUIT\r\n");
	zc_expect(z, "+OK bye");
	g_assert_true(zc_at_eof(z));
	zc_free(z);
	g_string_free(batch, TRUE);
	fixture_stop(&fx);
}

static void
test_split_input(void)
{
	struct fixture fx;
	struct zclient *z;
	GString *wire = g_string_new(NULL);
	GRand *rand = g_rand_new_with_seed(4978);

	fixture_start(&fx, NULL);
	z = zc_connect(fx.port_plain);
	/* Each line its own sync-flushed block, and the wire bytes sent in
	 * pieces of 1 to 7 bytes: inflate sees every split point. */
	for (int i = 0; i < 200; i++) {
		char *line = g_strdup_printf("split %d\r\n", i);
		zc_deflate(z, line, strlen(line),
			   i % 3 == 0 ? Z_NO_FLUSH : Z_SYNC_FLUSH, wire);
		g_free(line);
	}
	zc_deflate(z, "", 0, Z_SYNC_FLUSH, wire);
	for (size_t off = 0; off < wire->len;) {
		size_t n = MIN(wire->len - off,
			       (size_t)g_rand_int_range(rand, 1, 8));
		client_send(z->c, wire->str + off, n);
		off += n;
	}
	for (int i = 0; i < 200; i++) {
		char *want = g_strdup_printf("+OK split %d", i);
		char *got = zc_line(z);
		g_assert_cmpstr(got, ==, want);
		g_free(want);
		g_free(got);
	}
	zc_free(z);
	g_rand_free(rand);
	g_string_free(wire, TRUE);
	fixture_stop(&fx);
}

static void
test_bytes(void)
{
	struct fixture fx;
	struct zclient *z;
	const size_t big = 1000000;
	char *data = g_malloc(big);
	uint32_t state = 1, sum = 0;
	char *want;

	fixture_start(&fx, NULL);
	z = zc_connect(fx.port_plain);
	/* A literal holding CRLF, followed by a command in the same block. */
	zc_puts(z, "BYTES 7\r\nab\r\ncdeNEXT\r\n");
	zc_expect(z, "+OK go");
	zc_expect(z, "+OK got 7 sum=");
	zc_expect(z, "+OK NEXT");
	/* A 1 MB literal of incompressible bytes, then a line. */
	noise_fill(&state, data, big);
	for (size_t i = 0; i < big; i++)
		sum = sum * 31 + (uint8_t)data[i];
	zc_puts(z, "BYTES 1000000\r\n");
	zc_expect(z, "+OK go");
	zc_send(z, data, big);
	zc_puts(z, "AFTER\r\n");
	want = g_strdup_printf("+OK got 1000000 sum=%u", sum);
	zc_expect(z, want);
	zc_expect(z, "+OK AFTER");
	g_free(want);
	g_free(data);
	zc_free(z);
	fixture_stop(&fx);
}

static void
test_backpressure(void)
{
	struct fixture fx;
	struct zclient *z;
	const size_t total = 6 * 1024 * 1024;
	size_t max_queued;

	fixture_start(&fx, NULL);
	z = zc_connect_small(fx.port_plain);
	/* Incompressible output: the compressed queue must stop the
	 * producer at the high-water mark (256 KB) plus one step and one
	 * deflate piece; it must never hold the whole response. */
	zc_puts(z, "NOISE 6291456\r\nAFTER\r\n");
	max_queued = zc_read_noise(z, total);
	g_assert_cmpuint(max_queued, >=, 128 * 1024);
	g_assert_cmpuint(max_queued, <, 512 * 1024);
	zc_expect(z, "+OK AFTER");
	/* Compressible output flows too, at a fraction of the wire size. */
	zc_puts(z, "BIG 4194304\r\n");
	for (size_t got = 0; got < 4194304;) {
		size_t n = MIN(z->plain->len, 4194304 - got);

		for (size_t i = 0; i < n; i++)
			g_assert_cmpint(z->plain->str[i], ==, 'x');
		g_string_erase(z->plain, 0, (gssize)n);
		got += n;
		if (got < 4194304)
			g_assert_true(zc_fill(z));
	}
	zc_expect(z, "");
	zc_expect(z, "+OK big done");
	zc_free(z);
	fixture_stop(&fx);
}

static void
test_tls(void)
{
	struct fixture fx;
	struct client *c;
	struct zclient *z;

	fixture_start(&fx, NULL);
	c = client_connect(fx.port_tls);
	g_assert_true(client_tls(c, 0, "localhost"));
	expect_line(c, "+OK echo ready");
	z = zc_start(c);
	zc_puts(z, "PEER\r\n");
	zc_expect(z, "+OK ip=127.0.0.1 loopback=1 listener=tls tls=TLSv1.3 "
		     "deflate=1");
	zc_puts(z, "NOISE 1048576\r\n");
	zc_read_noise(z, 1048576);
	zc_puts(z, "BYTES 5\r\nhelloNEXT\r\n");
	zc_expect(z, "+OK go");
	zc_expect(z, "+OK got 5 sum=");
	zc_expect(z, "+OK NEXT");
	zc_free(z);

	/* After STARTTLS as well. */
	c = client_connect(fx.port_starttls);
	expect_line(c, "+OK");
	client_puts(c, "STARTTLS\r\n");
	expect_line(c, "+OK begin TLS");
	g_assert_true(client_tls(c, 0, NULL));
	z = zc_start(c);
	zc_puts(z, "PEER\r\n");
	zc_expect(z, "+OK ip=127.0.0.1 loopback=1 listener=starttls tls=TLS");
	zc_free(z);
	fixture_stop(&fx);
}

static void
test_buffered_after_command(void)
{
	struct fixture fx;
	struct client *c;
	struct zclient *z = g_new0(struct zclient, 1);
	GString *wire = g_string_new("COMPRESS\r\n");

	fixture_start(&fx, NULL);
	c = client_connect(fx.port_plain);
	expect_line(c, "+OK");
	/* The command and compressed commands behind it in one write, before
	 * the OK was seen (as Dovecot, the server takes them as compressed). */
	z->c = c;
	zc_init_streams(z);
	zc_deflate(z, "PEER\r\nECHOED\r\n", 14, Z_SYNC_FLUSH, wire);
	client_send(c, wire->str, wire->len);
	expect_line(c, "+OK DEFLATE active");
	zc_expect(z, "+OK ip=127.0.0.1 loopback=1 listener=plain tls=none "
		     "deflate=1");
	zc_expect(z, "+OK ECHOED");
	zc_free(z);
	g_string_free(wire, TRUE);
	fixture_stop(&fx);
}

static void
test_corrupt(void)
{
	struct fixture fx;
	struct zclient *z;
	/* First byte 0xff: a final block of the reserved type 3. */
	static const char junk[] = "\xff\xff\xff\xff\xff\xff\xff\xff";

	fixture_start(&fx, NULL);
	z = zc_connect(fx.port_plain);
	zc_puts(z, "FIRST\r\n");
	zc_expect(z, "+OK FIRST");
	client_send(z->c, junk, sizeof(junk) - 1);
	g_assert_true(zc_at_eof(z));
	zc_free(z);
	fixture_stop(&fx);
}

/* This process's resident set, in KB. */
static long
rss_kb(const char *field)
{
	char *status = NULL, *p;
	long kb = -1;

	g_assert_true(
		g_file_get_contents("/proc/self/status", &status, NULL, NULL));
	p = strstr(status, field);
	if (p != NULL)
		kb = strtol(p + strlen(field), NULL, 10);
	g_free(status);
	return kb;
}

/* Resets VmHWM to the current RSS (Linux 4.0 and newer). */
static void
reset_peak_rss(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");

	g_assert_nonnull(f);
	g_assert_cmpint(fputs("5", f), >=, 0);
	g_assert_cmpint(fclose(f), ==, 0);
}

static void
test_bomb(void)
{
	struct fixture fx;
	struct zclient *z;
	GString *wire = g_string_new(NULL);
	char *zeros = g_malloc0(1024 * 1024);
	long before, peak;

	fixture_start(&fx, NULL);
	z = zc_connect(fx.port_plain);
	zc_puts(z, "FIRST\r\n");
	zc_expect(z, "+OK FIRST");
	/* 100 MB of zeros as one "line" (~100 KB on the wire), then a
	 * command: the line is cut at max_line, the rest skipped, and the
	 * server never holds more than a few pieces of it. */
	for (int i = 0; i < 100; i++)
		zc_deflate(z, zeros, 1024 * 1024, Z_NO_FLUSH, wire);
	zc_deflate(z, "\r\nAFTER\r\n", 9, Z_SYNC_FLUSH, wire);
	g_assert_cmpuint(wire->len, <, 200 * 1024);
	g_free(zeros);
	/* Peak RSS from here on (writing 5 resets VmHWM). */
	reset_peak_rss();
	before = rss_kb("VmRSS:");
	client_send(z->c, wire->str, wire->len);
	zc_expect(z, "-ERR line too long");
	zc_expect(z, "+OK AFTER");
	peak = rss_kb("VmHWM:");
	g_test_message("rss before=%ld KB peak=%ld KB", before, peak);
	g_assert_cmpint(peak - before, <, 8 * 1024);
	g_string_free(wire, TRUE);
	zc_free(z);
	fixture_stop(&fx);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/core/conn/compress/lines", test_lines);
	g_test_add_func("/core/conn/compress/split-input", test_split_input);
	g_test_add_func("/core/conn/compress/bytes", test_bytes);
	g_test_add_func("/core/conn/compress/backpressure", test_backpressure);
	g_test_add_func("/core/conn/compress/tls", test_tls);
	g_test_add_func("/core/conn/compress/buffered-after-command",
			test_buffered_after_command);
	g_test_add_func("/core/conn/compress/corrupt", test_corrupt);
	g_test_add_func("/core/conn/compress/bomb", test_bomb);
	return g_test_run();
}
