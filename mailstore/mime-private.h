/* mime-private.h - what the MIME parser's files share: the result arena and
 * the interpretation of header fields. */
#ifndef MIME_PRIVATE_H
#define MIME_PRIVATE_H

#include <moonpost/mime.h>

/* Bump allocator that owns a whole parsed message: freeing it is a few
 * free() calls, whatever the number of parts and strings. */
struct mp_mime_arena {
	struct mime_chunk *chunk; /* newest first */
	size_t used;              /* bytes handed out, for the budget */
	size_t budget;            /* 0: none */
	size_t next_size;
	bool over; /* an allocation was refused */
};

/* Creates an arena whose first chunk holds first_size bytes; allocations
 * past budget bytes (0: no budget) fail. */
struct mp_mime_arena *mime_arena_new(size_t budget, size_t first_size);
/* Frees the arena and everything allocated from it. */
void mime_arena_free(struct mp_mime_arena *arena);
/* Zeroed, 8-byte aligned memory for structure the limits already bound
 * (parts, envelopes); not counted against the budget, never NULL. */
void *mime_arena_alloc(struct mp_mime_arena *arena, size_t size);
/* Zeroed memory counted against the budget (strings, lists); NULL, and
 * arena->over set, when it would pass it. */
void *mime_arena_take(struct mp_mime_arena *arena, size_t size);
/* Copies len bytes (and a NUL) into the arena as *str_r and returns the
 * copy, still writable; over the budget *str_r becomes NIL and NULL is
 * returned. */
char *mime_arena_str(struct mp_mime_arena *arena, const void *p, size_t len,
		     struct mp_str *str_r);

/* Where the fields of one header go while the parser reads it. */
struct mime_hdr_ctx {
	struct mp_mime_arena *arena;
	const struct mp_mime_limits *limits;
	struct mp_mime_part *part;
	struct mp_mime_envelope *env; /* NULL unless a message header */
	uint32_t seen;                /* fields taken: the first one wins */
	uint32_t *msg_flags;          /* MP_MIME_TRUNCATED, MP_MIME_BROKEN */
};

/* True when a field of this name is worth unfolding and keeping. */
bool mime_field_wanted(const char *name, size_t len, bool message_header);
/* Interprets one complete, unfolded field into ctx->part / ctx->env. */
void mime_header_field(struct mime_hdr_ctx *ctx, const char *name,
		       size_t name_len, const char *value, size_t value_len);
/* Applies the defaults at the end of a header: text/plain (or
 * message/rfc822 inside a multipart/digest), 7bit, Sender and Reply-To. */
void mime_header_defaults(struct mime_hdr_ctx *ctx, bool in_digest);

/* A cursor over one field value, shared by the Content-* fields and the
 * address lists. */
struct mime_lex {
	const char *p, *end;
	bool ws;               /* white space or a comment was skipped */
	struct mp_str comment; /* the last comment, parentheses dropped */
};

/* strchr() for a set of bytes, where a NUL byte is never in the set. */
bool mime_in_set(const char *set, char c);
/* Starts lx on the len bytes at p. */
void mime_lex_init(struct mime_lex *lx, const char *p, size_t len);
/* Skips white space and comments (RFC 5322 CFWS); sets lx->ws when it
 * skipped any and lx->comment to the last comment. */
void mime_lex_cfws(struct mime_lex *lx);
/* At a '"': reads the quoted string, unescaped into out (may be NULL);
 * an unclosed one runs to the end. */
void mime_lex_quoted(struct mime_lex *lx, struct mp_buf *out);

/* Reads an address list (From, To, Cc...: RFC 5322 section 3.4, with the
 * obsolete forms) into out, allocated from ctx->arena; out is left alone
 * when there is no address or the arena is over its budget. */
void mime_address_list(struct mime_hdr_ctx *ctx, const char *value, size_t len,
		       struct mp_mime_addrlist *out);

/* Charset names longer than this are unknown (the longest IANA name is 45
 * bytes). */
#define MIME_CHARSET_MAX 64

/* The value of a hex digit, or -1. */
int mime_hexval(char c);
/* Appends an RFC 2231 extended value (RFC 2231 section 4) to out,
 * percent-decoded; in the first section its "charset'lang'" prefix is
 * taken off and the charset copied to charset_r (MIME_CHARSET_MAX bytes). */
void mime_ext_value(const char *p, size_t len, bool first, char *charset_r,
		    struct mp_buf *out);

/* Trims white space (SP, HT, CR, LF) from both ends of a view. */
struct mp_str mime_trim(const char *p, size_t len);
/* ASCII case-insensitive comparison of a view with a C string. */
bool mime_str_ieq(const char *p, size_t len, const char *s);

#endif
