/* pop3-dot.h - a message's bytes into the body of a multi-line response.
 *
 * Pure, like the parser: bytes of a message file in, in pieces of any size,
 * the bytes to send out. A line that starts with "." gets one more in front
 * (byte-stuffing, RFC 1939 3), and the end adds the terminating ".". For
 * TOP (RFC 1939 7) it passes the header, the blank line after it and then
 * only the number of body lines asked for. Lines end at LF; the mailstore
 * keeps CRLF, so the bytes go out as they are stored. */
#ifndef POP3_DOT_H
#define POP3_DOT_H

#include <moonpost/common.h>

struct pop3_dot {
	bool line_start;     /* the next byte begins a line */
	bool line_cr;        /* the current line's last byte so far is CR */
	uint64_t line_len;   /* bytes of the current line so far, LF excluded */
	bool top;            /* TOP: a limited number of body lines */
	bool in_header;      /* TOP: the blank line has not been seen yet */
	uint32_t lines_left; /* TOP: body lines still to pass */
	bool done;           /* TOP: all that was asked for has passed */
};

/* Starts a response: the whole message (top false), or its header and
 * body_lines lines of its body. */
void pop3_dot_init(struct pop3_dot *d, bool top, uint32_t body_lines);
/* Appends the stuffed form of the first bytes of in to out and returns how
 * many were used: all len, unless TOP has passed everything it wants
 * (then pop3_dot_done() is true and further input is ignored). */
size_t pop3_dot_feed(struct pop3_dot *d, const char *in, size_t len,
		     struct mp_buf *out);
/* True once TOP wants no more input. */
bool pop3_dot_done(const struct pop3_dot *d);
/* Appends the end of the response: CRLF when the last line had none (a
 * message that does not end in a line break), then ".\r\n". */
void pop3_dot_finish(struct pop3_dot *d, struct mp_buf *out);

/* For RETR by sendfile, which sends the unchanged runs between the lines
 * to stuff straight from the file and only reads it to find them: the
 * position of the first '.' in the piece p that starts a line, or len
 * when none does. line_start tells whether p[0] starts a line (the piece
 * is the start of the message or follows an LF). */
size_t pop3_dot_find(const char *p, size_t len, bool line_start);
/* The end of a RETR response: ".\r\n" when the message ended at the start
 * of a line (it is empty or its last byte is LF), else "\r\n.\r\n". */
const char *pop3_dot_tail(bool line_start);

#endif
