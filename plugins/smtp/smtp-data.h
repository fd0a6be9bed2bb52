/* smtp-data.h - the DATA content decoder: end of data, dot-unstuffing,
 * bare CR/LF policy and size accounting (RFC 5321 §4.1.4, §4.5.2).
 *
 * Pure and streaming: no sockets, no allocation of its own, O(1) state. The
 * session feeds it whatever bytes the framer hands over in stream mode, in
 * chunks of any size; the result never depends on where the chunks split.
 *
 * End of data. The ONLY end is CRLF "." CRLF where the first CRLF ends the
 * previous line (or ".\r\n" at the very start: an empty message). "\n.\n",
 * "\r\n.\n", "\n.\r\n", "\r.\r\n" and the like never end DATA in either
 * mode: accepting them is what made SMTP smuggling possible
 * (CVE-2023-51764, -51765, -51766). Equivalently: the data ends right after
 * the first "\r\n.\r\n" in the input, or after a leading ".\r\n".
 *
 * Stored content. Everything before the terminator's "." (so the CRLF that
 * ends the last line is part of the message; a message is empty or ends in
 * CRLF). A "." at the start of a line is removed (dot-unstuffing), whatever
 * follows it. "text.\r\n" is an ordinary line: the dot is not at a line
 * start, so a message whose last line does not end in CRLF cannot be
 * terminated - by definition such a message cannot be sent with DATA.
 *
 * Bare LF (LF without CR before it) and bare CR (CR without LF after it):
 *
 *   SMTP_DATA_NORMALIZE (Postfix >= 3.9 "normalize"): accepted. A bare LF
 *   is stored as CRLF and starts a new line, so a "." right after it is
 *   unstuffed like any line-leading dot; but such a line start is not a
 *   real one and can never begin the terminator ("\n.\r\n" stores an empty
 *   line and goes on). A bare CR is stored as is and never ends a line; a
 *   "." after it is plain content.
 *
 *   SMTP_DATA_STRICT: the first bare LF or CR stops the output (what was
 *   appended before it stays, the caller discards it) and the decoder keeps
 *   consuming up to the real terminator, so that the session can answer
 *   550 5.5.2 in sync with the client. Lines end only at CRLF; a "." after
 *   a bare LF is content.
 *
 * Either way the stored bytes of a message that was accepted decode back to
 * themselves: dot-stuffing them and appending ".\r\n" gives input that
 * stores the same bytes and ends exactly at its last byte.
 *
 * BDAT (RFC 3030) chunks go through smtp_data_feed_raw(): no dots and no
 * terminator, but the same bare CR/LF policy and size accounting, so that
 * a message stores the same bytes whichever command carried it. */
#ifndef SMTP_DATA_H
#define SMTP_DATA_H

#include <moonpost/common.h>

enum smtp_data_mode {
	SMTP_DATA_NORMALIZE = 0, /* bare LF becomes CRLF, bare CR is kept */
	SMTP_DATA_STRICT,        /* a bare LF or CR rejects the message */
};

/* What the session should answer once the end was reached. */
enum smtp_data_result {
	SMTP_DATA_OK = 0,
	/* Strict mode saw a bare LF or CR: 550 5.5.2. Checked first: the
	 * output stopped there, so the client's framing is the problem. */
	SMTP_DATA_BARE_NEWLINE,
	/* More content than max_size: 552 5.3.4 (RFC 1870, RFC 3463). */
	SMTP_DATA_TOO_BIG,
};

/* Private: where the decoder is relative to lines, dots and CRs. */
enum smtp_data_state {
	SMTP_DATA_S_BOL = 0, /* at a real line start: after CRLF or at 0 */
	SMTP_DATA_S_BOL_LF,  /* at a line start after a bare LF (normalize) */
	SMTP_DATA_S_TEXT,    /* inside a line */
	SMTP_DATA_S_CR,      /* inside a line, a CR held back */
	SMTP_DATA_S_DOT,     /* a line-leading "." dropped at a real start */
	SMTP_DATA_S_DOT_CR,  /* ".", then a CR held back */
	SMTP_DATA_S_DONE,    /* the terminator was consumed */
};

/* The decoder. Initialise with smtp_data_init(); the fields below the
 * state are counters and flags the caller may read at any time. */
struct smtp_data {
	enum smtp_data_mode mode;
	enum smtp_data_state state;
	uint64_t max_size; /* content bytes allowed; 0 = no limit */

	uint64_t bytes_in;     /* input consumed, terminator included */
	uint64_t bytes_out;    /* decoded content size, stored or not */
	uint64_t lines;        /* line ends in the content */
	uint64_t nuls;         /* NUL bytes in the content */
	uint64_t line_len;     /* content bytes of the current line */
	uint64_t longest_line; /* longest content line, CRLF excluded */
	bool bare_lf_seen;
	bool bare_cr_seen;
	bool nul_seen;
	bool too_big; /* bytes_out > max_size; output stopped at max_size */
};

/* Starts a message. max_size = 0 means no limit (as SIZE=0, RFC 1870);
 * otherwise at most max_size bytes are ever appended and too_big is set
 * when the content is larger. */
void smtp_data_init(struct smtp_data *d, enum smtp_data_mode mode,
		    uint64_t max_size);

/* Decodes DATA input in[0..len): appends content to out (which the caller
 * may drain between calls) and returns the bytes consumed. *done_r becomes
 * true once the terminator was consumed; the returned count then stops
 * right after it and the rest of in belongs to the next command. Before
 * that, everything is consumed. After done, returns 0 and consumes nothing.
 * Appending stops, while consuming goes on, when the content is too big or
 * strict mode saw a bare LF/CR. */
size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t len,
		      struct mp_buf *out, bool *done_r);

/* Decodes one BDAT chunk's content in[0..len) (all of it is consumed): no
 * dot-unstuffing and no terminator, the same bare CR/LF policy and size
 * accounting as DATA. A CR at the end of a chunk is held back until the
 * next byte tells whether it is bare. Do not mix with smtp_data_feed(). */
void smtp_data_feed_raw(struct smtp_data *d, const char *in, size_t len,
			struct mp_buf *out);

/* After the LAST chunk: a CR still held back is a bare CR at the very end
 * of the message and is appended as is (normalize) or rejects (strict).
 * Afterwards the decoder counts as done. */
void smtp_data_finish_raw(struct smtp_data *d, struct mp_buf *out);

/* True once the DATA terminator was consumed or the raw input finished. */
bool smtp_data_done(const struct smtp_data *d);

/* The answer the content calls for; meaningful once done. */
enum smtp_data_result smtp_data_result(const struct smtp_data *d);

#endif
