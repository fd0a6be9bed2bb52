/* test-http.c - unit tests of the HTTP client's pure parts: URLs, request
 * headers and bytes, and the response parser fed whole, byte by byte and
 * at random split points. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "http.h"

/* ---- URLs ------------------------------------------------------------ */

static const struct url_case {
	const char *url;
	const char *host; /* NULL: refused */
	int port;
	const char *path;
	bool is_ip;
} url_cases[] = {
	{"http://127.0.0.1:8080/new-mail", "127.0.0.1", 8080, "/new-mail",
	 true},
	{"http://example.org", "example.org", 80, "/", false},
	{"HTTP://example.org?x=1", "example.org", 80, "/?x=1", false},
	{"http://hooks.example.org:81/a/b?c=d&e", "hooks.example.org", 81,
	 "/a/b?c=d&e", false},
	{"http://[::1]:9000/x", "::1", 9000, "/x", true},
	{"http://[::1]/", "::1", 80, "/", true},
	{"https://example.org/", NULL},
	{"ftp://example.org/", NULL},
	{"http://", NULL},
	{"http://user:pw@example.org/", NULL},
	{"http://example.org:0/", NULL},
	{"http://example.org:65536/", NULL},
	{"http://example.org:80a/", NULL},
	{"http://exa mple.org/", NULL},
	{"http://example.org/a b", NULL},
	{"http://example.org/\r\nX: y", NULL},
	{"http://example.org/#frag", NULL},
	{"http://[::1/", NULL},
	{"http://[nothost]/", NULL},
	{"http://ex%61mple.org/", NULL},
};

static void
test_url(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(url_cases); i++) {
		const struct url_case *c = &url_cases[i];
		struct mp_http_url u;
		const char *error = NULL;
		bool ok = mp_http_url_parse(c->url, &u, &error);

		if (c->host == NULL) {
			if (ok)
				g_error("%s: accepted", c->url);
			g_assert_nonnull(error);
			g_assert_null(u.path);
			continue;
		}
		if (!ok)
			g_error("%s: %s", c->url, error);
		g_assert_cmpstr(u.host, ==, c->host);
		g_assert_cmpint(u.port, ==, c->port);
		g_assert_cmpstr(u.path, ==, c->path);
		g_assert_cmpint(u.host_is_ip, ==, c->is_ip);
		free(u.path);
	}
}

static void
test_url_https_message(void)
{
	struct mp_http_url u;
	const char *error = NULL;

	g_assert_false(mp_http_url_parse("https://x/", &u, &error));
	g_assert_nonnull(strstr(error, "https is not supported"));
}

/* ---- requests -------------------------------------------------------- */

static void
test_request(void)
{
	struct mp_http_url u;
	const char *error = NULL;
	struct mp_buf out = {0};
	const struct mp_http_header h[] = {
		{"Content-Type", "application/json"},
		{"X-Token", "abc"},
	};

	g_assert_true(
		mp_http_url_parse("http://[::1]:8080/hook?a=1", &u, &error));
	mp_http_request_build(&out, "POST", &u, h, 2, "{}", 2);
	g_assert_cmpstr(out.data, ==,
			"POST /hook?a=1 HTTP/1.1\r\n"
			"Host: [::1]:8080\r\n"
			"Connection: close\r\n"
			"Content-Length: 2\r\n"
			"Content-Type: application/json\r\n"
			"X-Token: abc\r\n"
			"\r\n{}");
	mp_buf_reset(&out);
	free(u.path);
	g_assert_true(mp_http_url_parse("http://example.org", &u, &error));
	mp_http_request_build(&out, "GET", &u, NULL, 0, NULL, 0);
	g_assert_cmpstr(out.data, ==,
			"GET / HTTP/1.1\r\nHost: example.org\r\n"
			"Connection: close\r\n\r\n");
	free(u.path);
	mp_buf_free(&out);
}

static void
test_header_valid(void)
{
	const char *error = NULL;

	g_assert_true(mp_http_header_valid("X-Ok", "fine value", &error));
	g_assert_false(
		mp_http_header_valid("X-Bad", "a\r\nInjected: 1", &error));
	g_assert_false(mp_http_header_valid("X Bad", "v", &error));
	g_assert_false(mp_http_header_valid("", "v", &error));
	g_assert_false(mp_http_header_valid("Host", "evil", &error));
	g_assert_false(mp_http_header_valid("content-length", "1", &error));
	g_assert_false(
		mp_http_header_valid("Transfer-Encoding", "chunked", &error));
}

/* ---- responses ------------------------------------------------------- */

static const struct resp_case {
	const char *name;
	const char *input;
	bool eof;          /* the server closes after input */
	int status;        /* 0: an error is expected */
	const char *body;  /* expected body */
	const char *error; /* part of the expected error */
} resp_cases[] = {
	{"length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false,
	 200, "hello"},
	{"length-extra", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhello",
	 false, 200, "he"},
	{"no-length-eof", "HTTP/1.0 201 Created\r\nServer: x\r\n\r\nabc", true,
	 201, "abc"},
	{"empty-204", "HTTP/1.1 204 No Content\r\n\r\n", false, 204, ""},
	{"zero-length", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false,
	 200, ""},
	{"bare-lf", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", false, 200,
	 "ok"},
	{"interim-100",
	 "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\n"
	 "Content-Length: 1\r\n\r\nx",
	 false, 202, "x"},
	{"chunked",
	 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	 "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n",
	 false, 200, "hello world"},
	{"chunked-wins",
	 "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n"
	 "Transfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	 false, 200, "ok"},
	{"no-reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, 200,
	 ""},
	{"bad-status", "HTTP/2 200 OK\r\n\r\n", false, 0, NULL, "status line"},
	{"garbage", "hello there\r\n\r\n", false, 0, NULL, "status line"},
	{"bad-length", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", false,
	 0, NULL, "Content-Length"},
	{"two-lengths",
	 "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	 false, 0, NULL, "Content-Length"},
	{"unknown-te", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
	 false, 0, NULL, "Transfer-Encoding"},
	{"body-too-large", "HTTP/1.1 200 OK\r\nContent-Length: 65537\r\n\r\n",
	 false, 0, NULL, "too large"},
	{"chunk-too-large",
	 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10001\r\n",
	 false, 0, NULL, "too large"},
	{"bad-chunk",
	 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	 "zz\r\n",
	 false, 0, NULL, "chunk size"},
	{"chunk-no-crlf",
	 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	 "2\r\nokX\r\n",
	 false, 0, NULL, "CRLF"},
	{"cut-head", "HTTP/1.1 200 OK\r\nContent-", true, 0, NULL,
	 "before the response header"},
	{"cut-body", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", true, 0,
	 NULL, "before the response body"},
	{"cut-chunked",
	 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok", true,
	 0, NULL, "before the response body"},
};

enum split { WHOLE, BYTES, RANDOM };

static enum mp_http_state
feed_split(struct mp_http_response *r, const char *in, size_t len,
	   enum split how, GRand *rnd)
{
	size_t off = 0;

	while (off < len && r->state == MP_HTTP_MORE) {
		size_t n = how == WHOLE ? len - off
			   : how == BYTES
				   ? 1
				   : (size_t)g_rand_int_range(
					     rnd, 1, (gint32)(len - off) + 1);
		mp_http_response_feed(r, in + off, n);
		off += n;
	}
	return r->state;
}

static void
check_case(const struct resp_case *c, enum split how, GRand *rnd)
{
	struct mp_http_response r;
	enum mp_http_state st;

	mp_http_response_init(&r);
	st = feed_split(&r, c->input, strlen(c->input), how, rnd);
	if (st == MP_HTTP_MORE && c->eof)
		st = mp_http_response_eof(&r);
	if (c->status == 0) {
		if (st != MP_HTTP_ERROR)
			g_error("%s (split %d): no error", c->name, how);
		if (strstr(r.error, c->error) == NULL)
			g_error("%s: error \"%s\" lacks \"%s\"", c->name,
				r.error, c->error);
	} else {
		if (st != MP_HTTP_DONE)
			g_error("%s (split %d): state %d error %s", c->name,
				how, st, r.error != NULL ? r.error : "-");
		g_assert_cmpint(r.status, ==, c->status);
		g_assert_cmpmem(r.body.data != NULL ? r.body.data : "",
				r.body.len, c->body, strlen(c->body));
	}
	mp_http_response_clear(&r);
}

static void
test_response_cases(void)
{
	GRand *rnd = g_rand_new_with_seed(1234);

	for (size_t i = 0; i < G_N_ELEMENTS(resp_cases); i++) {
		check_case(&resp_cases[i], WHOLE, rnd);
		check_case(&resp_cases[i], BYTES, rnd);
		for (int k = 0; k < 20; k++)
			check_case(&resp_cases[i], RANDOM, rnd);
	}
	g_rand_free(rnd);
}

static void
test_response_head_too_large(void)
{
	struct mp_http_response r;
	char line[1024];

	memset(line, 'a', sizeof(line));
	memcpy(line, "X-Pad: ", 7);
	line[sizeof(line) - 2] = '\r';
	line[sizeof(line) - 1] = '\n';
	mp_http_response_init(&r);
	mp_http_response_feed(&r, "HTTP/1.1 200 OK\r\n", 17);
	for (int i = 0; i < 20 && r.state == MP_HTTP_MORE; i++)
		mp_http_response_feed(&r, line, sizeof(line));
	g_assert_cmpint(r.state, ==, MP_HTTP_ERROR);
	g_assert_nonnull(strstr(r.error, "header too large"));
	/* Bounded: what was kept is not much past the limit. */
	g_assert_cmpuint(r.head.len, <=, MP_HTTP_HEAD_MAX + sizeof(line));
	mp_http_response_clear(&r);
}

static void
test_response_body_bound_eof(void)
{
	struct mp_http_response r;
	char chunk[4096];

	memset(chunk, 'b', sizeof(chunk));
	mp_http_response_init(&r);
	mp_http_response_feed(&r, "HTTP/1.0 200 OK\r\n\r\n", 19);
	for (int i = 0; i < 17 && r.state == MP_HTTP_MORE; i++)
		mp_http_response_feed(&r, chunk, sizeof(chunk));
	g_assert_cmpint(r.state, ==, MP_HTTP_ERROR);
	g_assert_cmpuint(r.body.len, <=, MP_HTTP_BODY_MAX);
	mp_http_response_clear(&r);
}

static void
header_cb(const char *name, size_t nlen, const char *value, size_t vlen,
	  void *ctx)
{
	GString *s = ctx;

	g_string_append_printf(s, "[%.*s=%.*s]", (int)nlen, name, (int)vlen,
			       value);
}

static void
test_response_headers(void)
{
	static const char in[] = "HTTP/1.1 200 OK\r\nA: 1\r\nB:two  \r\n"
				 "junk line\r\nC:\r\nContent-Length: 0\r\n\r\n";
	struct mp_http_response r;
	GString *s = g_string_new("");

	mp_http_response_init(&r);
	g_assert_cmpint(mp_http_response_feed(&r, in, sizeof(in) - 1), ==,
			MP_HTTP_DONE);
	mp_http_response_headers(&r, header_cb, s);
	g_assert_cmpstr(s->str, ==, "[A=1][B=two][C=][Content-Length=0]");
	g_string_free(s, TRUE);
	mp_http_response_clear(&r);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/http/url/cases", test_url);
	g_test_add_func("/http/url/https", test_url_https_message);
	g_test_add_func("/http/request/build", test_request);
	g_test_add_func("/http/request/header-valid", test_header_valid);
	g_test_add_func("/http/response/cases", test_response_cases);
	g_test_add_func("/http/response/head-too-large",
			test_response_head_too_large);
	g_test_add_func("/http/response/body-too-large",
			test_response_body_bound_eof);
	g_test_add_func("/http/response/headers", test_response_headers);
	return g_test_run();
}
