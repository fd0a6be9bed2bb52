/* http.c - URLs, requests and the response parser of the HTTP client
 * (pure: no sockets; lua-http.c drives them). */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

/* A chunk-size or trailer line (RFC 9112 7.1): generous for extensions,
 * small enough that a server cannot make us buffer much. */
#define CHUNK_LINE_MAX 1024
/* Trailer fields after the last chunk, which we read and drop. */
#define TRAILERS_MAX 64

/* ---- URLs -------------------------------------------------------------- */

static bool
host_valid(const char *h, size_t len)
{
	if (len == 0 || len > MP_HTTP_HOST_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)h[i];

		if (!isalnum(c) && c != '-' && c != '.' && c != '_')
			return false;
	}
	return true;
}

static bool
port_parse(const char *p, size_t len, int *port_r)
{
	int port = 0;

	if (len == 0 || len > 5)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		port = port * 10 + (p[i] - '0');
	}
	*port_r = port;
	return port > 0 && port <= 65535;
}

/* Splits "host[:port]" or "[v6][:port]"; false with *error_r. */
static bool
authority_parse(const char *a, size_t len, struct mp_http_url *u,
		const char **error_r)
{
	const char *host = a, *colon;
	size_t hlen;
	unsigned char buf[sizeof(struct in6_addr)];

	if (memchr(a, '@', len) != NULL) {
		*error_r = "user names in URLs are not supported";
		return false;
	}
	if (len > 0 && a[0] == '[') {
		const char *end = memchr(a, ']', len);
		if (end == NULL) {
			*error_r = "unterminated [IPv6] address";
			return false;
		}
		host = a + 1;
		hlen = (size_t)(end - host);
		colon = end + 1 < a + len ? end + 1 : NULL;
		if (colon != NULL && *colon != ':') {
			*error_r = "bad host";
			return false;
		}
	} else {
		colon = memchr(a, ':', len);
		hlen = colon != NULL ? (size_t)(colon - a) : len;
	}
	u->port = 80;
	if (colon != NULL &&
	    !port_parse(colon + 1, (size_t)(a + len - colon - 1), &u->port)) {
		*error_r = "bad port";
		return false;
	}
	if (hlen > MP_HTTP_HOST_MAX ||
	    (a[0] != '[' && !host_valid(host, hlen))) {
		*error_r = "bad host";
		return false;
	}
	memcpy(u->host, host, hlen);
	u->host[hlen] = '\0';
	u->host_is_ip = inet_pton(AF_INET, u->host, buf) == 1 ||
			inet_pton(AF_INET6, u->host, buf) == 1;
	if (a[0] == '[' && !u->host_is_ip) {
		*error_r = "bad IPv6 address";
		return false;
	}
	return true;
}

bool
mp_http_url_parse(const char *url, struct mp_http_url *u, const char **error_r)
{
	size_t len = strlen(url), alen;
	const char *a, *rest;

	memset(u, 0, sizeof(*u));
	if (strncasecmp(url, "https://", 8) == 0) {
		*error_r = "https is not supported yet (use http://)";
		return false;
	}
	if (strncasecmp(url, "http://", 7) != 0) {
		*error_r = "URL must start with http://";
		return false;
	}
	if (len > MP_HTTP_URL_MAX) {
		*error_r = "URL too long";
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)url[i];
		if (c <= 0x20 || c == 0x7f || c == '#') {
			*error_r = "URL holds a space, a control character "
				   "or a fragment";
			return false;
		}
	}
	a = url + 7;
	alen = strcspn(a, "/?");
	rest = a + alen;
	if (!authority_parse(a, alen, u, error_r))
		return false;
	u->path = mp_xasprintf("%s%s", *rest == '/' ? "" : "/", rest);
	return true;
}

/* ---- requests ---------------------------------------------------------- */

static bool
token_char(unsigned char c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

bool
mp_http_header_valid(const char *name, const char *value, const char **error_r)
{
	static const char *const ours[] = {"host", "content-length",
					   "connection", "transfer-encoding"};

	if (name[0] == '\0' || strlen(name) > 256) {
		*error_r = "bad header name";
		return false;
	}
	for (const char *p = name; *p != '\0'; p++) {
		if (!token_char((unsigned char)*p)) {
			*error_r = "bad header name";
			return false;
		}
	}
	for (size_t i = 0; i < MP_NELEMS(ours); i++) {
		if (strcasecmp(name, ours[i]) == 0) {
			*error_r = "that header is set by moonpost.http";
			return false;
		}
	}
	if (strpbrk(value, "\r\n") != NULL || strlen(value) > 4096) {
		*error_r = "header value holds CR or LF, or is too long";
		return false;
	}
	return true;
}

void
mp_http_request_build(struct mp_buf *out, const char *method,
		      const struct mp_http_url *u,
		      const struct mp_http_header *headers, size_t n,
		      const char *body, size_t body_len)
{
	bool v6 = strchr(u->host, ':') != NULL;

	mp_buf_printf(out, "%s %s HTTP/1.1\r\nHost: %s%s%s", method, u->path,
		      v6 ? "[" : "", u->host, v6 ? "]" : "");
	if (u->port != 80)
		mp_buf_printf(out, ":%d", u->port);
	mp_buf_puts(out, "\r\nConnection: close\r\n");
	if (body != NULL)
		mp_buf_printf(out, "Content-Length: %zu\r\n", body_len);
	for (size_t i = 0; i < n; i++)
		mp_buf_printf(out, "%s: %s\r\n", headers[i].name,
			      headers[i].value);
	mp_buf_puts(out, "\r\n");
	if (body != NULL)
		mp_buf_append(out, body, body_len);
}

/* ---- responses: the head ------------------------------------------------ */

void
mp_http_response_init(struct mp_http_response *r)
{
	memset(r, 0, sizeof(*r));
	r->length = -1;
}

void
mp_http_response_clear(struct mp_http_response *r)
{
	mp_buf_free(&r->head);
	mp_buf_free(&r->body);
	mp_buf_free(&r->line);
}

static enum mp_http_state
fail(struct mp_http_response *r, const char *error)
{
	r->error = error;
	r->state = MP_HTTP_ERROR;
	return r->state;
}

/* Where the head ends (after the empty line), or 0. Bare LF line ends are
 * taken too, as most clients do. */
static size_t
head_end(const char *p, size_t len, size_t from)
{
	for (size_t i = from; i < len; i++) {
		if (p[i] != '\n')
			continue;
		if (i + 1 < len && p[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && p[i + 1] == '\r' && p[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

struct head_scan {
	struct mp_http_response *r;
	const char *error;
	bool have_length;
};

static bool
length_parse(const char *v, size_t len, int64_t *out)
{
	int64_t n = 0;

	if (len == 0 || len > 18)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		n = n * 10 + (v[i] - '0');
	}
	*out = n;
	return true;
}

static bool
ends_with_chunked(const char *v, size_t len)
{
	return len >= 7 && strncasecmp(v + len - 7, "chunked", 7) == 0;
}

static void
head_field(const char *name, size_t nlen, const char *v, size_t vlen, void *ctx)
{
	struct head_scan *h = ctx;
	int64_t n;

	if (nlen == 14 && strncasecmp(name, "Content-Length", 14) == 0) {
		if (!length_parse(v, vlen, &n) ||
		    (h->have_length && n != h->r->length)) {
			h->error = "bad Content-Length";
			return;
		}
		h->r->length = n;
		h->have_length = true;
	} else if (nlen == 17 &&
		   strncasecmp(name, "Transfer-Encoding", 17) == 0) {
		h->r->chunked = ends_with_chunked(v, vlen);
		if (!h->r->chunked)
			h->error = "unsupported Transfer-Encoding";
	}
}

/* "HTTP/1.x DDD ..." */
static bool
status_parse(struct mp_http_response *r)
{
	const char *p = r->head.data;

	if (r->head.len < 12 || memcmp(p, "HTTP/1.", 7) != 0 ||
	    !isdigit((unsigned char)p[7]) || p[8] != ' ')
		return false;
	for (int i = 9; i < 12; i++) {
		if (!isdigit((unsigned char)p[i]))
			return false;
	}
	if (r->head.len > 12 && p[12] != ' ' && p[12] != '\r' && p[12] != '\n')
		return false;
	r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	return r->status >= 100;
}

static enum mp_http_state
head_done(struct mp_http_response *r)
{
	struct head_scan h = {.r = r};

	if (!status_parse(r))
		return fail(r, "malformed status line");
	mp_http_response_headers(r, head_field, &h);
	if (h.error != NULL)
		return fail(r, h.error);
	if (r->chunked)
		r->length = -1; /* RFC 9112 6.3: chunked wins */
	if (r->length > MP_HTTP_BODY_MAX)
		return fail(r, "response body too large");
	r->in_body = true;
	if (r->status == 204 || r->status == 304 || r->length == 0)
		r->state = MP_HTTP_DONE;
	return r->state;
}

/* Takes bytes into the head; *used_r says how many belonged to it. */
static enum mp_http_state
head_feed(struct mp_http_response *r, const char *data, size_t len,
	  size_t *used_r)
{
	size_t old = r->head.len;
	size_t end;

	mp_buf_append(&r->head, data, len);
	end = head_end(r->head.data, r->head.len, old > 3 ? old - 3 : 0);
	if (end == 0) {
		*used_r = len;
		if (r->head.len > MP_HTTP_HEAD_MAX)
			return fail(r, "response header too large");
		return MP_HTTP_MORE;
	}
	if (end > MP_HTTP_HEAD_MAX)
		return fail(r, "response header too large");
	*used_r = end - old;
	r->head.len = end;
	r->head.data[end] = '\0';
	if (head_done(r) != MP_HTTP_MORE || r->status >= 200)
		return r->state;
	/* 1xx (RFC 9110 15.2): an interim response; the real one follows. */
	mp_buf_reset(&r->head);
	r->in_body = false;
	r->length = -1;
	r->chunked = false;
	return MP_HTTP_MORE;
}

void
mp_http_response_headers(const struct mp_http_response *r,
			 void (*fn)(const char *name, size_t name_len,
				    const char *value, size_t value_len,
				    void *ctx),
			 void *ctx)
{
	const char *p = r->head.data, *end = p + r->head.len;
	const char *nl = memchr(p, '\n', r->head.len);

	/* Each line after the status line; continuation lines (obsolete,
	 * RFC 9112 5.2) are not joined: they are rare and we read only
	 * Content-Length and Transfer-Encoding ourselves. */
	while (nl != NULL && nl + 1 < end) {
		const char *line = nl + 1, *colon, *v, *ve;

		nl = memchr(line, '\n', (size_t)(end - line));
		ve = nl != NULL ? nl : end;
		if (ve > line && ve[-1] == '\r')
			ve--;
		colon = memchr(line, ':', (size_t)(ve - line));
		if (colon == NULL || colon == line)
			continue;
		v = colon + 1;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		fn(line, (size_t)(colon - line), v, (size_t)(ve - v), ctx);
	}
}

/* ---- responses: the body ------------------------------------------------ */

static enum mp_http_state
body_add(struct mp_http_response *r, const char *data, size_t len)
{
	if (r->body.len + len > MP_HTTP_BODY_MAX)
		return fail(r, "response body too large");
	mp_buf_append(&r->body, data, len);
	return MP_HTTP_MORE;
}

/* Reads a line into r->line: 1 when it is whole (CRLF cut off), 0 when
 * more is needed, -1 when it is too long. */
static int
line_take(struct mp_http_response *r, const char **data, size_t *len)
{
	const char *nl = memchr(*data, '\n', *len);
	size_t n = nl != NULL ? (size_t)(nl - *data) + 1 : *len;

	if (r->line.len + n > CHUNK_LINE_MAX)
		return -1;
	mp_buf_append(&r->line, *data, n);
	*data += n;
	*len -= n;
	if (nl == NULL)
		return 0;
	r->line.len--;
	if (r->line.len > 0 && r->line.data[r->line.len - 1] == '\r')
		r->line.len--;
	return 1;
}

static bool
chunk_size_parse(const struct mp_buf *line, uint64_t *size_r)
{
	uint64_t n = 0;
	size_t i = 0;

	for (; i < line->len && isxdigit((unsigned char)line->data[i]); i++) {
		int c = tolower((unsigned char)line->data[i]);
		if (i >= 15)
			return false;
		n = n * 16 + (uint64_t)(isdigit(c) ? c - '0' : c - 'a' + 10);
	}
	if (i == 0 || (i < line->len && line->data[i] != ';' &&
		       line->data[i] != ' ' && line->data[i] != '\t'))
		return false;
	*size_r = n;
	return true;
}

/* One step of the chunked decoder at a line boundary. */
static enum mp_http_state
chunk_line(struct mp_http_response *r)
{
	switch (r->chunk_phase) {
	case 0:
		if (!chunk_size_parse(&r->line, &r->chunk_left))
			return fail(r, "bad chunk size");
		if (r->chunk_left > MP_HTTP_BODY_MAX)
			return fail(r, "response body too large");
		r->chunk_phase = r->chunk_left == 0 ? 3 : 1;
		break;
	case 2:
		if (r->line.len != 0)
			return fail(r, "chunk not followed by CRLF");
		r->chunk_phase = 0;
		break;
	case 3:
		if (r->line.len == 0)
			r->state = MP_HTTP_DONE;
		else if (++r->chunk_left > TRAILERS_MAX)
			return fail(r, "too many trailer fields");
		break;
	}
	mp_buf_reset(&r->line);
	return r->state;
}

static enum mp_http_state
chunked_feed(struct mp_http_response *r, const char *data, size_t len)
{
	while (len > 0 && r->state == MP_HTTP_MORE) {
		if (r->chunk_phase == 1) {
			size_t n = r->chunk_left < len ? (size_t)r->chunk_left
						       : len;
			if (body_add(r, data, n) != MP_HTTP_MORE)
				return r->state;
			data += n;
			len -= n;
			r->chunk_left -= n;
			if (r->chunk_left == 0)
				r->chunk_phase = 2;
			continue;
		}
		int got = line_take(r, &data, &len);
		if (got < 0)
			return fail(r, "chunk line too long");
		if (got > 0)
			chunk_line(r);
	}
	return r->state;
}

static enum mp_http_state
body_feed(struct mp_http_response *r, const char *data, size_t len)
{
	if (r->chunked)
		return chunked_feed(r, data, len);
	if (r->length >= 0) {
		uint64_t left = (uint64_t)r->length - r->body.len;
		size_t n = len < left ? len : (size_t)left;

		/* Bytes past Content-Length are ignored (Connection:
		 * close: there is no next response). */
		if (body_add(r, data, n) == MP_HTTP_MORE &&
		    r->body.len == (size_t)r->length)
			r->state = MP_HTTP_DONE;
		return r->state;
	}
	return body_add(r, data, len);
}

enum mp_http_state
mp_http_response_feed(struct mp_http_response *r, const char *data, size_t len)
{
	while (len > 0 && r->state == MP_HTTP_MORE) {
		size_t used = len;

		if (!r->in_body) {
			if (head_feed(r, data, len, &used) != MP_HTTP_MORE)
				break;
		} else {
			body_feed(r, data, len);
		}
		data += used;
		len -= used;
	}
	return r->state;
}

enum mp_http_state
mp_http_response_eof(struct mp_http_response *r)
{
	if (r->state != MP_HTTP_MORE)
		return r->state;
	if (!r->in_body)
		return fail(r, "connection closed before the response header "
			       "ended");
	if (r->chunked || r->length >= 0)
		return fail(r, "connection closed before the response body "
			       "ended");
	r->state = MP_HTTP_DONE;
	return r->state;
}
