/* frame.h - splitting a byte stream into lines or byte runs.
 *
 * Pure: no sockets, no allocation. The connection feeds it whatever bytes it
 * has buffered and gets back one frame at a time; the unit tests feed it
 * byte by byte and at random split points. */
#ifndef MOONPOST_FRAME_H
#define MOONPOST_FRAME_H

#include <moonpost/common.h>

enum mp_frame_mode {
	MP_FRAME_MODE_LINES = 0, /* CRLF (or bare LF) terminated lines */
	MP_FRAME_MODE_EXACT,     /* a fixed number of bytes, then lines */
	MP_FRAME_MODE_STREAM,    /* every byte, until switched back */
};

enum mp_frame_kind {
	MP_FRAME_NEED_MORE = 0, /* nothing complete: read more, same data */
	MP_FRAME_SKIP,          /* drop `consumed` bytes (over-long tail) */
	MP_FRAME_LINE,          /* a line; flags may hold MP_LINE_* */
	MP_FRAME_BYTES,         /* raw bytes; the receiver says how many it
				   used with mp_framer_bytes_used() */
};

struct mp_framer {
	enum mp_frame_mode mode;
	size_t max_line;    /* longest line content, CRLF excluded */
	uint64_t remaining; /* EXACT: bytes still to deliver */
	bool discarding;    /* inside the tail of an over-long line */
	size_t scanned;     /* bytes already searched for LF */
};

struct mp_frame {
	enum mp_frame_kind kind;
	const char *data; /* LINE: content without CRLF; BYTES: the bytes */
	size_t len;
	unsigned flags;  /* LINE: enum mp_line_flags */
	size_t consumed; /* LINE/SKIP: input bytes the frame used up */
};

/* Starts in line mode with the given maximum line length. */
void mp_framer_init(struct mp_framer *f, size_t max_line);
/* Finds the next frame at the start of data. After NEED_MORE, call again
 * with the same start and more bytes appended. For LINE and SKIP, drop
 * frame->consumed bytes before the next call. */
void mp_framer_next(struct mp_framer *f, const char *data, size_t len,
		    struct mp_frame *frame);
/* Switches to exact mode for n bytes (n = 0 stays in line mode). */
void mp_framer_expect_bytes(struct mp_framer *f, uint64_t n);
/* Switches to stream mode. */
void mp_framer_stream(struct mp_framer *f);
/* Switches back to line mode. */
void mp_framer_lines(struct mp_framer *f);
/* Records that n bytes of a BYTES frame were used (and dropped by the
 * caller); in exact mode this may end the run and return to lines. */
void mp_framer_bytes_used(struct mp_framer *f, size_t n);

#endif
