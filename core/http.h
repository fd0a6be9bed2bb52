/* http.h - the pure parts of the HTTP/1.1 client behind moonpost.http:
 * URLs, the request, and an incremental response parser (bytes in, "need
 * more", "done" or an error out; no sockets), so they are unit-tested on
 * their own. */
#ifndef MOONPOST_HTTP_H
#define MOONPOST_HTTP_H

#include <moonpost/common.h>

/* Longest status line plus header block: what a misbehaving server can
 * make us buffer before the body. */
#define MP_HTTP_HEAD_MAX (16 * 1024)
/* Longest response body a script gets; a longer one is an error, not a
 * silent cut. Bounds per-call memory whatever the server sends. */
#define MP_HTTP_BODY_MAX (64 * 1024)
/* Longest URL and host name taken. */
#define MP_HTTP_URL_MAX  2048
#define MP_HTTP_HOST_MAX 253

struct mp_http_url {
	char host[MP_HTTP_HOST_MAX + 1]; /* name or IP, without [] */
	int port;                        /* 80 unless given */
	bool host_is_ip;
	char *path; /* "/..." with the query; caller frees */
};

/* Parses "http://host[:port][/path][?query]" into u. https:// is refused
 * (not supported yet), as are user:password@, fragments, and anything
 * with spaces or control characters. False with *error_r (static). */
bool mp_http_url_parse(const char *url, struct mp_http_url *u,
		       const char **error_r);

/* One extra request header; name and value checked by
 * mp_http_header_valid(). */
struct mp_http_header {
	const char *name;
	const char *value;
};

/* True when name is an HTTP token and value holds no CR, LF or NUL (a
 * header injection otherwise); false with *error_r (static). Host,
 * Content-Length, Connection and Transfer-Encoding are ours to set. */
bool mp_http_header_valid(const char *name, const char *value,
			  const char **error_r);

/* Appends the request to out: "METHOD path HTTP/1.1", Host, Connection:
 * close, Content-Length when body is not NULL, the extra headers. */
void mp_http_request_build(struct mp_buf *out, const char *method,
			   const struct mp_http_url *u,
			   const struct mp_http_header *headers, size_t n,
			   const char *body, size_t body_len);

enum mp_http_state {
	MP_HTTP_MORE = 0, /* feed more, or call mp_http_response_eof() */
	MP_HTTP_DONE,     /* the response is complete */
	MP_HTTP_ERROR,    /* malformed or over a bound */
};

struct mp_http_response {
	/* results */
	int status;
	struct mp_buf head; /* status line and headers, CRLFs and all */
	struct mp_buf body;
	const char *error; /* static, with MP_HTTP_ERROR */
	/* parser state */
	enum mp_http_state state;
	bool in_body;
	int64_t length; /* Content-Length, or -1 */
	bool chunked;
	int chunk_phase; /* chunked: 0 size line, 1 data, 2 CRLF, 3 trailer */
	uint64_t chunk_left;
	struct mp_buf line; /* a chunk size or trailer line being read */
};

/* Prepares r for a response. */
void mp_http_response_init(struct mp_http_response *r);
/* Frees what r holds. */
void mp_http_response_clear(struct mp_http_response *r);
/* Takes the next len bytes; returns the state. After DONE or ERROR more
 * bytes are ignored. */
enum mp_http_state mp_http_response_feed(struct mp_http_response *r,
					 const char *data, size_t len);
/* The server closed the connection: a response without a length ends
 * here; anything else cut short is an error. */
enum mp_http_state mp_http_response_eof(struct mp_http_response *r);
/* Calls fn for each header field of a finished head, name as sent. */
void mp_http_response_headers(const struct mp_http_response *r,
			      void (*fn)(const char *name, size_t name_len,
					 const char *value, size_t value_len,
					 void *ctx),
			      void *ctx);

#endif
