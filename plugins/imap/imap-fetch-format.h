/* imap-fetch-format.h - FETCH ENVELOPE, BODY and BODYSTRUCTURE from the
 * stored MIME structure, and the IMAP strings they are made of.
 *
 * Everything here is a pure function of a struct mp_mime_message (parsed
 * once at delivery, read back from the index): no message file is read, no
 * message is parsed again. Output is appended to an mp_buf; it is the data
 * item's value only ("(...)"), the caller writes "ENVELOPE " before it.
 *
 * The output may hold literals ("{n}" CRLF and n bytes), so it may hold CR,
 * LF and 8-bit bytes; it never holds a NUL (a NUL in a stored string is sent
 * as 0x80, as Dovecot does, since no IMAP string may carry one). The caller
 * sends the bytes as they are. */
#ifndef IMAP_FETCH_FORMAT_H
#define IMAP_FETCH_FORMAT_H

#include <moonpost/common.h>
#include <moonpost/mime.h>

/* A string longer than this is sent as a literal rather than quoted. RFC
 * 3501 sets no limit, and Dovecot has none; Cyrus switches at 1024 bytes
 * (MAXQSTRING). A long quoted string makes one huge response line, which
 * line-oriented client parsers take worst; a literal of the same bytes
 * costs nothing more. */
#define IMAP_FORMAT_QUOTED_MAX 1024
/* Past this many '"' and '\' a literal is shorter than escaping them all
 * (Dovecot's QUOTED_MAX_ESCAPE_CHARS: "\" costs 1 each, "{nn}" CRLF 6). */
#define IMAP_FORMAT_QUOTED_MAX_ESCAPES 4

enum imap_format_flags {
	/* The client takes UTF-8 in quoted strings: it enabled UTF8=ACCEPT
	 * (RFC 6855 section 3) or IMAP4rev2 (RFC 9051, whose QUOTED-CHAR
	 * includes UTF8-2/3/4). Without it, and for invalid UTF-8 with it, a
	 * string holding a byte >= 0x80 is sent as a literal. */
	IMAP_FORMAT_UTF8 = 1 << 0,
	/* message/global (RFC 6532) is written as message/rfc822 is, with
	 * the envelope, body and lines of the message inside: IMAP4rev2
	 * (RFC 9051 7.5.2), and allowed under UTF8=ACCEPT (RFC 9755 7).
	 * Without it, it is a basic body, the only form RFC 3501's grammar
	 * has for it (media-message names RFC822 alone). */
	IMAP_FORMAT_MESSAGE_GLOBAL = 1 << 1,
};

/* Appends len bytes as an IMAP string: quoted ("..." with \" and \\) when
 * it can be, else a literal: when it holds CR or LF, a byte >= 0x80
 * (unless IMAP_FORMAT_UTF8 and valid UTF-8), more than
 * IMAP_FORMAT_QUOTED_MAX_ESCAPES quote-specials, or more than
 * IMAP_FORMAT_QUOTED_MAX bytes. NUL bytes are sent as 0x80. */
void imap_fetch_format_string(struct mp_buf *out, const void *data, size_t len,
			      enum imap_format_flags flags);

/* As imap_fetch_format_string(), or NIL when s.p is NULL. */
void imap_fetch_format_nstring(struct mp_buf *out, struct mp_str s,
			       enum imap_format_flags flags);

/* Appends an ENVELOPE (RFC 3501 section 7.4.2, RFC 9051 section 7.5.2):
 * "(date subject from sender reply-to to cc bcc in-reply-to message-id)".
 * env may be NULL (ten NILs, as Dovecot writes for a missing envelope).
 * Subject and display names are tidied as Dovecot does for "humans": runs
 * of white space become one space, leading and trailing space goes. */
void imap_fetch_format_envelope(struct mp_buf *out,
				const struct mp_mime_envelope *env,
				enum imap_format_flags flags);

/* Appends the BODY of a message (RFC 3501 section 7.4.2): BODYSTRUCTURE
 * without extension data. part is normally msg->root; any part may be
 * given (its subtree is written). */
void imap_fetch_format_body(struct mp_buf *out, const struct mp_mime_part *part,
			    enum imap_format_flags flags);

/* Appends the BODYSTRUCTURE of a message: BODY with the extension data
 * (MD5, disposition, language, location; and for a multipart its
 * parameters). */
void imap_fetch_format_bodystructure(struct mp_buf *out,
				     const struct mp_mime_part *part,
				     enum imap_format_flags flags);

#endif
