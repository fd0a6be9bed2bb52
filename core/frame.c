/* frame.c - splitting a byte stream into lines or byte runs. */
#include "config.h"

#include <string.h>

#include <moonpost/plugin.h>

#include "frame.h"

void
mp_framer_init(struct mp_framer *f, size_t max_line)
{
	memset(f, 0, sizeof(*f));
	f->max_line = max_line;
}

void
mp_framer_expect_bytes(struct mp_framer *f, uint64_t n)
{
	f->scanned = 0;
	f->remaining = n;
	f->mode = n > 0 ? MP_FRAME_MODE_EXACT : MP_FRAME_MODE_LINES;
}

void
mp_framer_stream(struct mp_framer *f)
{
	f->scanned = 0;
	f->mode = MP_FRAME_MODE_STREAM;
}

void
mp_framer_lines(struct mp_framer *f)
{
	f->scanned = 0;
	f->remaining = 0;
	f->mode = MP_FRAME_MODE_LINES;
}

void
mp_framer_bytes_used(struct mp_framer *f, size_t n)
{
	if (f->mode != MP_FRAME_MODE_EXACT)
		return;
	f->remaining -= n <= f->remaining ? n : f->remaining;
	if (f->remaining == 0)
		f->mode = MP_FRAME_MODE_LINES;
}

static void
frame_set(struct mp_frame *frame, enum mp_frame_kind kind, const char *data,
	  size_t len, size_t consumed)
{
	frame->kind = kind;
	frame->data = data;
	frame->len = len;
	frame->flags = 0;
	frame->consumed = consumed;
}

/* In the tail of an over-long line: drop everything up to and including
 * the next LF. */
static void
next_discard(struct mp_framer *f, const char *data, size_t len,
	     struct mp_frame *frame)
{
	const char *lf = memchr(data, '\n', len);

	if (lf == NULL) {
		frame_set(frame, len > 0 ? MP_FRAME_SKIP : MP_FRAME_NEED_MORE,
			  NULL, 0, len);
		return;
	}
	f->discarding = false;
	frame_set(frame, MP_FRAME_SKIP, NULL, 0, (size_t)(lf - data) + 1);
}

static void
next_line(struct mp_framer *f, const char *data, size_t len,
	  struct mp_frame *frame)
{
	/* A line may hold max_line bytes of content, then CR and LF. */
	size_t window = f->max_line + 2;
	size_t limit = len < window ? len : window;
	size_t from = f->scanned < limit ? f->scanned : limit;
	const char *lf = memchr(data + from, '\n', limit - from);
	size_t content;

	if (lf == NULL) {
		if (len < window) {
			f->scanned = len;
			frame_set(frame, MP_FRAME_NEED_MORE, NULL, 0, 0);
			return;
		}
		/* No LF where one had to be: report the line once and drop
		 * the rest of it as it arrives. */
		f->scanned = 0;
		f->discarding = true;
		frame_set(frame, MP_FRAME_LINE, data, f->max_line, window);
		frame->flags = MP_LINE_TOO_LONG;
		return;
	}
	f->scanned = 0;
	content = (size_t)(lf - data);
	frame_set(frame, MP_FRAME_LINE, data, content, content + 1);
	if (content > 0 && data[content - 1] == '\r')
		frame->len--;
	else
		frame->flags |= MP_LINE_BARE_LF;
	if (frame->len > f->max_line) {
		frame->len = f->max_line;
		frame->flags |= MP_LINE_TOO_LONG;
	}
}

void
mp_framer_next(struct mp_framer *f, const char *data, size_t len,
	       struct mp_frame *frame)
{
	switch (f->mode) {
	case MP_FRAME_MODE_LINES:
		if (f->discarding)
			next_discard(f, data, len, frame);
		else
			next_line(f, data, len, frame);
		return;
	case MP_FRAME_MODE_EXACT:
		if (len > f->remaining)
			len = (size_t)f->remaining;
		/* fall through */
	case MP_FRAME_MODE_STREAM:
		frame_set(frame, len > 0 ? MP_FRAME_BYTES : MP_FRAME_NEED_MORE,
			  data, len, 0);
		return;
	}
}
