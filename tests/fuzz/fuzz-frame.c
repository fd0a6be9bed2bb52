/* fuzz-frame.c - the framer against arbitrary input and mode switches.
 *
 * The first byte picks the maximum line length, the second where the input
 * is split; a line starting with "{" switches to exact mode for the number
 * after it, as an IMAP literal does. Checks the framer's promises: it never
 * reads out of bounds (ASan), every frame uses up bytes or asks for more,
 * and it never asks to buffer more than one maximal line. */
#include "config.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
on_line(struct mp_framer *f, const struct mp_frame *fr)
{
	if (fr->len > 1 && fr->data[0] == '{')
		mp_framer_expect_bytes(f, strtoull(fr->data + 1, NULL, 10) %
						  100000);
	assert(fr->len <= f->max_line);
}

/* Frames what the buffer holds; returns bytes used up. */
static size_t
drain(struct mp_framer *f, const char *buf, size_t len)
{
	size_t off = 0;
	struct mp_frame fr;

	for (;;) {
		mp_framer_next(f, buf + off, len - off, &fr);
		if (fr.kind == MP_FRAME_NEED_MORE)
			break;
		if (fr.kind == MP_FRAME_BYTES) {
			assert(fr.len > 0 && fr.len <= len - off);
			mp_framer_bytes_used(f, fr.len);
			off += fr.len;
			continue;
		}
		assert(fr.consumed > 0 && fr.consumed <= len - off);
		if (fr.kind == MP_FRAME_LINE)
			on_line(f, &fr);
		off += fr.consumed;
	}
	/* Unused input stays below one line and its CRLF. */
	assert(f->mode != MP_FRAME_MODE_LINES || len - off <= f->max_line + 1);
	return off;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mp_framer f;
	char *buf;
	size_t split, have = 0, used;

	if (size < 2)
		return 0;
	mp_framer_init(&f, 1 + data[0] % 64);
	split = 2 + data[1] % 16;
	data += 2;
	size -= 2;
	buf = malloc(size + 1);
	for (size_t off = 0; off < size; off += split) {
		size_t n = size - off < split ? size - off : split;
		memcpy(buf + have, data + off, n);
		have += n;
		used = drain(&f, buf, have);
		memmove(buf, buf + used, have - used);
		have -= used;
	}
	free(buf);
	return 0;
}
