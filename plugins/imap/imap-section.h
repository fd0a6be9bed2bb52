/* imap-section.h - FETCH section items: BODY[...], BODY.PEEK[...],
 * BINARY[...], BINARY.PEEK[...], BINARY.SIZE[...], RFC822, RFC822.HEADER
 * and RFC822.TEXT (RFC 3501 section 6.4.5, RFC 9051 section 6.4.5, RFC
 * 3516 section 4).
 *
 * Three steps, all without I/O of their own:
 * - imap_section_from_parts() (the pieces the command parser cut) or
 *   imap_section_parse() (an item's text): into a struct imap_section;
 * - imap_section_resolve(): the section against a message's stored MIME
 *   structure into a plan: a byte range of the stored file to send, a
 *   header range to filter, a range to decode (BINARY), NIL or an error;
 * - the transformations a plan may need, on bytes the caller reads:
 *   imap_header_filter() for HEADER.FIELDS[.NOT], and the BINARY decoder
 *   (imap_binary_size(), struct imap_binary_reader), which pull bytes
 *   through a read callback so a part is never held whole in memory.
 *
 * Offsets and sizes are those of the stored file (CRLF line ends), so they
 * are exact IMAP octet counts. */
#ifndef IMAP_SECTION_H
#define IMAP_SECTION_H

#include <sys/types.h>

#include <moonpost/common.h>
#include <moonpost/mime.h>

/* Numbers in a section part ("1.2.3" has 3). A stored structure is never
 * deeper than MP_MIME_DEPTH_CAP, and each level adds one number at most, so
 * a longer section names no part: refused, to bound the copy we keep. */
#define IMAP_SECTION_PARTS_MAX (MP_MIME_DEPTH_CAP + 1)
/* Names in a HEADER.FIELDS list. Filtering compares every header line
 * with every name: this bounds that work (Thunderbird asks for about 15). */
#define IMAP_SECTION_FIELDS_MAX 256

enum imap_section_item {
	IMAP_SECTION_ITEM_BODY = 0,      /* BODY[...], BODY.PEEK[...] */
	IMAP_SECTION_ITEM_BINARY,        /* BINARY[...], BINARY.PEEK[...] */
	IMAP_SECTION_ITEM_BINARY_SIZE,   /* BINARY.SIZE[...] */
	IMAP_SECTION_ITEM_RFC822,        /* RFC822: BODY[] */
	IMAP_SECTION_ITEM_RFC822_HEADER, /* RFC822.HEADER: BODY.PEEK[HEADER] */
	IMAP_SECTION_ITEM_RFC822_TEXT,   /* RFC822.TEXT: BODY[TEXT] */
};

/* What is asked of the message, or of the part the numbers name. */
enum imap_section_text {
	IMAP_SECTION_FULL = 0, /* []: the whole message; [1.2]: the body */
	IMAP_SECTION_HEADER,
	IMAP_SECTION_HEADER_FIELDS,
	IMAP_SECTION_HEADER_FIELDS_NOT,
	IMAP_SECTION_TEXT,
	IMAP_SECTION_MIME, /* only after part numbers */
};

struct imap_section {
	enum imap_section_item item;
	bool peek; /* .PEEK, BINARY.SIZE, RFC822.HEADER: \Seen is not set */
	/* The part numbers, "1.2.3", or "" for the message itself. Owned. */
	char *part;
	enum imap_section_text text;
	/* HEADER.FIELDS[.NOT]: the names, upper-cased (compared without
	 * regard to case, echoed upper-cased as Dovecot does). */
	struct mp_strlist fields;
	/* <offset.size>: bytes [offset, offset + size) of the result. */
	bool partial;
	uint64_t partial_offset, partial_size;
};

/* An item as the command parser cuts it (imap-parser.h gives FETCH items
 * so: IMAP_ARG_FETCH_ATT), before its meaning is checked. Views only. */
struct imap_section_parts {
	/* "BODY.PEEK", "BINARY.SIZE", "RFC822.HEADER"... any case */
	struct mp_str name;
	bool bracket;       /* a "[...]" followed the name */
	struct mp_str spec; /* between the brackets, header list excluded:
			       "1.2.HEADER.FIELDS", "" for BODY[] */
	const struct mp_str *fields; /* the header list's names */
	size_t nfields;
	bool partial; /* "<offset.size>" followed */
	uint64_t offset, size;
};

/* Checks an item's meaning and fills sec (release it with
 * imap_section_clear()): the name is one of the items above, the spec a
 * section RFC 3501 6.4.5 allows (part numbers only for BINARY, RFC 3516),
 * a header list exactly after HEADER.FIELDS[.NOT] (at most
 * IMAP_SECTION_FIELDS_MAX names, no NUL), a partial only on BODY and
 * BINARY, its size not 0. False with *error_r, a static text for the
 * tagged BAD, else true. BODY without "[", BODYSTRUCTURE, RFC822.SIZE are
 * not section items (the caller knows them) and are refused here. */
bool imap_section_from_parts(const struct imap_section_parts *in,
			     struct imap_section *sec, const char **error_r);

/* Parses the fetch-att text at p (len bytes), keywords in any case, e.g.
 * "body.peek[1.HEADER.FIELDS (From \"To\")]<0.512>", then checks it as
 * imap_section_from_parts() does. It stops at the end of the item, which
 * must be the end of the input, a space or ")"; *consumed_r tells where.
 * Field names are atoms or quoted strings; a literal among them is
 * refused (use imap_section_from_parts() with what the command parser
 * read). */
bool imap_section_parse(const char *p, size_t len, struct imap_section *sec,
			size_t *consumed_r, const char **error_r);

/* Frees what sec owns and zeroes it; a zeroed or cleared sec is fine. */
void imap_section_clear(struct imap_section *sec);

/* Appends the item's name as the FETCH response gives it: "BODY[1.MIME]",
 * "BODY[HEADER.FIELDS (FROM TO)]<0>" (a partial shows its origin only, RFC
 * 3501 section 7.4.2), "BINARY.SIZE[2]", "RFC822.TEXT". PEEK is dropped. */
void imap_section_write_name(const struct imap_section *sec,
			     struct mp_buf *out);

enum imap_section_source {
	/* No such part, or HEADER/TEXT of a part that is not a message:
	 * send NIL (BINARY.SIZE: 0, its grammar wants a number). RFC 3501
	 * and 9051 allow NIL here (nstring); Gmail sends it. */
	IMAP_SOURCE_NIL = 0,
	/* Send [offset, offset + size) of the stored file; the partial is
	 * applied already. For BINARY a part needing no decoding. */
	IMAP_SOURCE_BYTES,
	/* Read the header at [offset, offset + size), give it to
	 * imap_header_filter(), then apply the partial to the result with
	 * imap_section_clip(). */
	IMAP_SOURCE_HEADER_FIELDS,
	/* BINARY: decode [offset, offset + size) as cte with
	 * imap_binary_reader; the partial applies to the decoded bytes,
	 * whose count only imap_binary_size() can tell. */
	IMAP_SOURCE_DECODE,
	/* BINARY of a part whose encoding we cannot decode: the command
	 * fails, "NO [UNKNOWN-CTE]" (RFC 3516 section 4.3). */
	IMAP_SOURCE_UNKNOWN_CTE,
};

struct imap_section_plan {
	enum imap_section_source source;
	uint64_t offset, size;
	enum mp_mime_cte cte; /* DECODE */
	/* BYTES of a BINARY item: the bytes may hold a NUL, so they go as a
	 * literal8 "~{n}" (RFC 3516 section 4.2). BODY items never use
	 * literal8: NUL is not allowed in them, Dovecot sends 0x80. */
	bool nul;
	/* The part resolved to (borrowed from the message), NULL for NIL. */
	const struct mp_mime_part *part;
};

/* Works out what sec selects in msg. Never fails: a section naming nothing
 * gives IMAP_SOURCE_NIL. Sections are as RFC 3501 section 6.4.5 defines:
 * "" the message, "N" the body of part N, "N.MIME" its MIME header,
 * "N.HEADER", "N.TEXT", "N.HEADER.FIELDS" only when part N is a
 * message/rfc822 parsed as one (then of the message inside); "1" of a
 * non-multipart message is its body. The header of a part includes its
 * blank line when it had one. */
void imap_section_resolve(const struct imap_section *sec,
			  const struct mp_mime_message *msg,
			  struct imap_section_plan *plan_r);

/* Applies sec's partial to a text of total bytes: [*offset_r, + *len_r).
 * An origin at or past the end gives an empty text (RFC 3501 section
 * 6.4.5). Without a partial: 0 and total. */
void imap_section_clip(const struct imap_section *sec, uint64_t total,
		       uint64_t *offset_r, uint64_t *len_r);

/* Appends to out the fields of the header at hdr (len bytes: a header
 * block, its blank line included when it has one) whose names are in names
 * (exclude, for HEADER.FIELDS.NOT: are not), compared without regard to
 * case; each field whole, its continuation lines included, bytes as
 * stored. The blank line goes last when the header had one (RFC 3501: "the
 * blank line is always included"), even when no field matched. A line
 * without a colon is no field: left out, except by exclude, which keeps it
 * as Dovecot does. */
void imap_header_filter(const char *hdr, size_t len,
			const struct mp_strlist *names, bool exclude,
			struct mp_buf *out);

/* Reads up to len bytes at offset of the stored message into buf: returns
 * how many (0 only at the end of the file), or -1 with *error_r set. */
typedef ssize_t imap_section_read_fn(void *ctx, uint64_t offset, void *buf,
				     size_t len, const char **error_r);

/* Stored bytes read per call: all a BINARY fetch holds in memory, with
 * what they decode to (never more: base64 and QP only shrink). */
#define IMAP_BINARY_CHUNK 8192

/* Decodes a DECODE plan's bytes chunk by chunk; fields are private. */
struct imap_binary_reader {
	struct mp_mime_body_decoder dec;
	uint64_t pos, end; /* stored bytes still to read */
	uint64_t skip;     /* decoded bytes still to drop (partial origin) */
	uint64_t left;     /* decoded bytes still to give */
	bool finished;
	struct mp_buf tmp;
};

/* Starts decoding plan (DECODE, or BYTES: copied as they are) from decoded
 * byte skip, giving at most limit bytes (UINT64_MAX: all). For DECODE the
 * session takes skip and limit from imap_section_clip() applied to
 * imap_binary_size(); a BYTES plan has its partial applied already. */
void imap_binary_reader_init(struct imap_binary_reader *r,
			     const struct imap_section_plan *plan,
			     uint64_t skip, uint64_t limit);
/* Appends the next decoded bytes to out (it may append none while it
 * skips). MP_AGAIN: call again; MP_OK: done, everything was given;
 * MP_ERROR: read failed, or the file ended before the plan's range did
 * (*error_r). */
enum mp_status imap_binary_reader_read(struct imap_binary_reader *r,
				       imap_section_read_fn *read_fn, void *ctx,
				       struct mp_buf *out,
				       const char **error_r);
/* Releases the reader's memory. */
void imap_binary_reader_deinit(struct imap_binary_reader *r);

/* The decoded size of a DECODE plan, for BINARY.SIZE and for the literal
 * length of BINARY: the index cannot know it, so it is computed by
 * streaming the bytes through the decoder (one IMAP_BINARY_CHUNK of memory
 * at a time). *nul_r (may be NULL) tells whether a decoded byte is NUL
 * (send "~{n}"). A BYTES plan needs no reading: plan->size and plan->nul;
 * a NIL plan gives 0 (BINARY.SIZE of a missing part, as Dovecot). False
 * with *error_r when reading fails, or for UNKNOWN_CTE and HEADER_FIELDS
 * plans, which have no decoded size. */
bool imap_binary_size(const struct imap_section_plan *plan,
		      imap_section_read_fn *read_fn, void *ctx,
		      uint64_t *size_r, bool *nul_r, const char **error_r);

#endif
