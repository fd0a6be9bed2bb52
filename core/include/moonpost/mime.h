/* mime.h - the streaming MIME parser and the structure it leaves behind.
 *
 * A message is parsed once, while it streams to disk on delivery or APPEND.
 * The result - every part's offsets and sizes, content type and parameters,
 * the envelope of the message and of each message/rfc822 part - is
 * serialized into the index, so FETCH (ENVELOPE, BODYSTRUCTURE, BODY[...],
 * BINARY), SEARCH and POP3 never parse the message again.
 *
 * Every offset and size is a byte offset into the bytes that were fed (the
 * stored file, CRLF line ends). A part's header range includes the blank
 * line that ends it; its body follows directly. The CRLF before a boundary
 * line belongs to the boundary (RFC 2046), not to the part before it.
 *
 * Strings are views (struct mp_str) owned by the message; `p == NULL` means
 * absent (IMAP NIL), `len == 0` with p set means present but empty. They are
 * NUL-terminated for convenience, but may hold any byte: use len.
 *
 * Broken input never makes parsing fail. A structure over a limit becomes
 * body of the part that holds it and sets MP_MIME_TRUNCATED. */
#ifndef MOONPOST_MIME_H
#define MOONPOST_MIME_H

#include <moonpost/common.h>

/* Deepest nesting of multipart and message/rfc822 parts any limit may ask
 * for: consumers (BODYSTRUCTURE writers, free, compare) may recurse this
 * deep, and the deserializer refuses deeper trees from a corrupt row. */
#define MP_MIME_DEPTH_CAP 128
/* Longest boundary any limit may ask for. RFC 2046 allows 70; real mail
 * goes a little past that. Longer boundaries are not boundaries. */
#define MP_MIME_BOUNDARY_CAP 250

/* Structure limits. A field left 0 takes its default. */
struct mp_mime_limits {
	/* Multipart and message/rfc822 nesting (32): a recursion bomb
	 * becomes one leaf part. Clamped to MP_MIME_DEPTH_CAP. */
	uint32_t max_depth;
	/* Parts in the whole message, root included (5000). */
	uint32_t max_parts;
	/* Header fields looked at per part (2000); later ones are skipped. */
	uint32_t max_header_fields;
	/* Bytes of one unfolded header field kept for parsing (64 KiB); the
	 * rest is cut, not refused. */
	uint32_t max_field_size;
	/* Longest boundary (250); longer ones are ignored, so the multipart
	 * becomes a leaf. Clamped to MP_MIME_BOUNDARY_CAP. */
	uint32_t max_boundary_len;
	/* Parameters per Content-Type or Content-Disposition, and languages
	 * per Content-Language (64, languages never more): a header full of
	 * ";a=b" stays small. */
	uint32_t max_params;
	/* Bytes of strings and lists in the parsed result (4 MiB), so a
	 * message of thousands of parts with huge headers cannot make an
	 * index row of hundreds of megabytes. Strings past it are left out
	 * (NIL), lists empty. Parts are bounded by max_parts instead. */
	uint32_t max_result_size;
};

/* Message flags (struct mp_mime_message.flags). */
enum {
	/* A limit was reached: some structure was left unparsed. */
	MP_MIME_TRUNCATED = 1 << 0,
	/* Broken structure was tolerated: a multipart without its close
	 * delimiter, a header line without a colon, a bad Content-Type. */
	MP_MIME_BROKEN = 1 << 1,
	/* A LF without a CR before it. */
	MP_MIME_BARE_LF = 1 << 2,
	/* A NUL byte somewhere. */
	MP_MIME_HAS_NUL = 1 << 3,
	/* A byte >= 0x80 somewhere (header or body). */
	MP_MIME_8BIT = 1 << 4,
};

/* Part flags (struct mp_mime_part.flags). */
enum {
	/* Parsed as multipart (it had a usable boundary): children are its
	 * body parts. It may have none (boundary never seen, limits): IMAP
	 * then writes one empty text/plain part, as the grammar needs one. */
	MP_MIME_PART_MULTIPART = 1 << 0,
	/* message/rfc822 or message/global parsed as a message: exactly one
	 * child, the encapsulated message (its header and body). Without this
	 * flag (a limit, or a base64 or quoted-printable encoding, which RFC
	 * 2046 forbids) such a part is a leaf: IMAP writes it as a basic
	 * body, since it has no envelope to show. */
	MP_MIME_PART_MESSAGE = 1 << 1,
	/* A multipart whose close delimiter never came. */
	MP_MIME_PART_NO_END = 1 << 2,
	/* The body of this leaf part holds a byte >= 0x80. */
	MP_MIME_PART_BODY_8BIT = 1 << 3,
	/* The body of this leaf part holds a NUL byte. */
	MP_MIME_PART_BODY_NUL = 1 << 4,
};

/* A parameter; RFC 2231 values are joined and decoded to UTF-8, others are
 * kept as sent (quotes removed). Names are lower-cased. */
struct mp_mime_param {
	struct mp_str name;
	struct mp_str value;
};

enum mp_mime_addr_kind {
	MP_MIME_ADDR_MAILBOX = 0,
	MP_MIME_ADDR_GROUP_START, /* mailbox = the group's name, host NIL */
	MP_MIME_ADDR_GROUP_END,   /* mailbox and host NIL */
};

/* One IMAP ENVELOPE address (RFC 3501 section 7.4.2). */
struct mp_mime_address {
	enum mp_mime_addr_kind kind;
	/* The display name as sent: quoted-strings unquoted, runs of white
	 * space made one space, encoded words left encoded. For a bare
	 * "user@host (Comment)" the comment. NIL when there is none. */
	struct mp_str name;
	/* The obsolete source route ("@a.example,@b.example"), usually NIL. */
	struct mp_str adl;
	/* The local part as sent (a quoted local part keeps its quotes). */
	struct mp_str mailbox;
	/* The domain; "" (not NIL) when the address had none, since NIL
	 * means a group marker to IMAP clients. */
	struct mp_str host;
};

struct mp_mime_addrlist {
	const struct mp_mime_address *v;
	uint32_t n;
};

/* The envelope of a message header. Strings are raw: unfolded, leading and
 * trailing white space trimmed, encoded words left encoded (IMAP returns
 * them so). NIL when the field is absent; the first occurrence counts. */
struct mp_mime_envelope {
	struct mp_str date;
	struct mp_str subject;
	struct mp_str message_id;
	struct mp_str in_reply_to;
	struct mp_mime_addrlist from;
	/* Sender and Reply-To are already filled from From when absent or
	 * empty, as RFC 3501 asks (then .v == from.v). */
	struct mp_mime_addrlist sender;
	struct mp_mime_addrlist reply_to;
	struct mp_mime_addrlist to;
	struct mp_mime_addrlist cc;
	struct mp_mime_addrlist bcc;
};

struct mp_mime_part {
	struct mp_mime_part *parent;   /* NULL for the root */
	struct mp_mime_part *children; /* first child */
	struct mp_mime_part *next;     /* next sibling */
	uint32_t index;                /* position in pre-order; root is 0 */
	uint32_t n_children;
	uint32_t flags; /* MP_MIME_PART_* */

	uint64_t header_offset; /* the MIME header, or the message header */
	uint64_t header_size;   /* blank line included when there was one */
	uint64_t body_offset;   /* header_offset + header_size */
	uint64_t body_size;
	/* LFs in the body: the "lines" of BODYSTRUCTURE. As in Dovecot, a
	 * last line ended by a boundary's CRLF is not counted. */
	uint64_t body_lines;

	/* Lower-cased; "text"/"plain" with charset=us-ascii when absent or
	 * invalid (RFC 2045 section 5.2), "message"/"rfc822" in a
	 * multipart/digest (RFC 2046 section 5.1.5). */
	struct mp_str type;
	struct mp_str subtype;
	const struct mp_mime_param *params;
	uint32_t n_params;
	/* Content-Transfer-Encoding, lower-cased; "7bit" when absent. */
	struct mp_str encoding;
	/* Content-ID, -Description, -MD5, -Location: raw, NIL when absent. */
	struct mp_str id;
	struct mp_str description;
	struct mp_str md5;
	struct mp_str location;
	/* Content-Disposition type, lower-cased, and its parameters. */
	struct mp_str disposition;
	const struct mp_mime_param *disposition_params;
	uint32_t n_disposition_params;
	/* Content-Language tags, in order. */
	const struct mp_str *language;
	uint32_t n_language;
	/* The boundary of a multipart (MP_MIME_PART_MULTIPART). */
	struct mp_str boundary;
	/* The envelope when this part's header is a message header: the root
	 * and the child of each MP_MIME_PART_MESSAGE part; else NULL. */
	const struct mp_mime_envelope *envelope;
};

struct mp_mime_arena;

struct mp_mime_message {
	uint32_t flags;   /* MP_MIME_* */
	uint32_t n_parts; /* root included */
	uint64_t size;    /* bytes parsed */
	struct mp_mime_part *root;
	struct mp_mime_arena *arena; /* private: owns everything above */
};

struct mp_mime_parser;

/* Fills limits_r with the defaults. */
MP_API void mp_mime_limits_default(struct mp_mime_limits *limits_r);

/* Starts parsing a message; limits may be NULL for the defaults. The caller
 * owns the parser and ends it with mp_mime_parser_finish(). */
MP_API struct mp_mime_parser *
mp_mime_parser_new(const struct mp_mime_limits *limits);
/* Parses the next len bytes; chunks may be split anywhere. Never fails. */
MP_API void mp_mime_parser_feed(struct mp_mime_parser *parser, const void *data,
				size_t len);
/* Ends the input, frees the parser and sets *parser to NULL. Returns the
 * message; the caller frees it with mp_mime_message_free(). */
MP_API struct mp_mime_message *
mp_mime_parser_finish(struct mp_mime_parser **parser);
/* Frees a parser without a result (delivery aborted); NULL is fine. */
MP_API void mp_mime_parser_free(struct mp_mime_parser **parser);
/* Frees a message and everything in it; sets *msg to NULL. */
MP_API void mp_mime_message_free(struct mp_mime_message **msg);

/* Finds a part by IMAP section number ("2.1.3", RFC 3501 section 6.4.5):
 * in a multipart N is the Nth child; a non-multipart message has only part
 * 1, its body; under a message/rfc822 part the numbers go on into the
 * encapsulated message. "" finds the root. Only digits and dots: the
 * caller strips ".MIME", ".HEADER" and the like. False when there is no
 * such part; *part_r is borrowed from the message. */
MP_API bool mp_mime_part_find(const struct mp_mime_part *root,
			      const char *section,
			      const struct mp_mime_part **part_r);
/* The part after part in pre-order, NULL after the last: walks a tree
 * without recursion. */
MP_API const struct mp_mime_part *
mp_mime_part_next(const struct mp_mime_part *part);

/* Appends the compact binary form of msg (for an index BLOB) to out. */
MP_API void mp_mime_serialize(const struct mp_mime_message *msg,
			      struct mp_buf *out);
/* Rebuilds a message from a blob made by mp_mime_serialize() for a message
 * of message_size bytes. Every count, length and offset is checked: a
 * corrupt or foreign blob gives NULL and *error_r (a static string), never
 * a crash. The caller frees the result with mp_mime_message_free(). */
MP_API struct mp_mime_message *mp_mime_deserialize(const void *blob, size_t len,
						   uint64_t message_size,
						   const char **error_r);

/* --- headers ------------------------------------------------------------ */

/* Walks the fields of a header block held in memory (for SEARCH HEADER,
 * SORT, HEADER.FIELDS). Lines without a colon are skipped, as the parser
 * does; the walk stops at the blank line or the end of the data. */
struct mp_mime_header_iter {
	const char *p, *end;
	struct mp_buf value; /* private */
};

/* Starts a walk over len bytes; the data must outlive the iterator. */
MP_API void mp_mime_header_iter_init(struct mp_mime_header_iter *iter,
				     const void *data, size_t len);
/* Gives the next field: its name as sent, and its value unfolded with the
 * white space around it trimmed. Both views stay valid until the next call.
 * False at the end of the header. */
MP_API bool mp_mime_header_iter_next(struct mp_mime_header_iter *iter,
				     struct mp_str *name_r,
				     struct mp_str *value_r);
/* Releases the iterator's memory. */
MP_API void mp_mime_header_iter_deinit(struct mp_mime_header_iter *iter);

/* Appends the value of a header field to out as UTF-8, with RFC 2047
 * encoded words (B and Q, any charset iconv knows) decoded; white space
 * between adjacent encoded words dropped (RFC 2047 section 6.2); bytes that
 * are not valid in their charset become U+FFFD. For SEARCH and display. */
MP_API void mp_mime_decode_header(const void *value, size_t len,
				  struct mp_buf *out);
/* Appends len bytes in charset to out as UTF-8; invalid bytes become
 * U+FFFD. An unknown charset is read as UTF-8 and false is returned. */
MP_API bool mp_mime_charset_to_utf8(const char *charset, const void *data,
				    size_t len, struct mp_buf *out);

/* --- body decoding (BINARY, SEARCH BODY) -------------------------------- */

enum mp_mime_cte {
	MP_MIME_CTE_IDENTITY = 0, /* 7bit, 8bit, binary */
	MP_MIME_CTE_BASE64,
	MP_MIME_CTE_QP,
	MP_MIME_CTE_UNKNOWN, /* IMAP BINARY answers [UNKNOWN-CTE] */
};

/* Which decoder a Content-Transfer-Encoding value needs. */
MP_API enum mp_mime_cte mp_mime_cte_parse(struct mp_str encoding);

/* A streaming decoder of one body; no allocation, fields are private. */
struct mp_mime_body_decoder {
	enum mp_mime_cte cte;
	uint32_t bits;  /* base64: bits not yet written */
	uint8_t n_bits; /* base64: how many */
	bool done;      /* base64: padding seen, the rest is ignored */
	uint8_t eq_len; /* qp: bytes of an "=XX" or soft break held */
	char eq[2];     /* qp: the held bytes after "=" */
	uint32_t n_ws;  /* qp: white space held until we know it is not
			   trailing (RFC 2045 section 6.7 rule 3) */
	char ws[64];
};

/* Starts decoding a body in encoding cte. */
MP_API void mp_mime_body_decoder_init(struct mp_mime_body_decoder *dec,
				      enum mp_mime_cte cte);
/* Decodes the next len bytes of the body, appending to out. */
MP_API void mp_mime_body_decoder_feed(struct mp_mime_body_decoder *dec,
				      const void *data, size_t len,
				      struct mp_buf *out);
/* Ends the body, appending what was held back. */
MP_API void mp_mime_body_decoder_finish(struct mp_mime_body_decoder *dec,
					struct mp_buf *out);

#endif
