/* smtp-data.c - the DATA content decoder: end of data, dot-unstuffing,
 * bare CR/LF policy and size accounting. */
#include "config.h"

#include <assert.h>
#include <string.h>

#include "smtp-data.h"

void
smtp_data_init(struct smtp_data *d, enum smtp_data_mode mode, uint64_t max_size)
{
	memset(d, 0, sizeof(*d));
	d->mode = mode;
	d->state = SMTP_DATA_S_BOL;
	d->max_size = max_size;
}

static bool
storing(const struct smtp_data *d)
{
	if (d->too_big)
		return false;
	return d->mode != SMTP_DATA_STRICT ||
	       !(d->bare_lf_seen || d->bare_cr_seen);
}

/* Counts n decoded bytes and appends as many as still fit, so that what is
 * stored is always a prefix of the content, whatever the chunking. */
static void
emit(struct smtp_data *d, const char *p, size_t n, struct mp_buf *out)
{
	if (storing(d)) {
		uint64_t room = d->max_size == 0 ? UINT64_MAX
						 : d->max_size - d->bytes_out;
		mp_buf_append(out, p, n < room ? n : (size_t)room);
	}
	d->bytes_out += n;
	if (d->max_size != 0 && d->bytes_out > d->max_size)
		d->too_big = true;
}

static void
content(struct smtp_data *d, const char *p, size_t n, struct mp_buf *out)
{
	emit(d, p, n, out);
	d->line_len += n;
	if (d->line_len > d->longest_line)
		d->longest_line = d->line_len;
}

static void
line_end(struct smtp_data *d, struct mp_buf *out)
{
	emit(d, "\r\n", 2, out);
	d->lines++;
	d->line_len = 0;
}

/* The CR held back was not followed by LF. The flag goes first so that
 * strict mode stores nothing from the bare CR on. */
static void
bare_cr(struct smtp_data *d, struct mp_buf *out)
{
	d->bare_cr_seen = true;
	content(d, "\r", 1, out);
	d->state = SMTP_DATA_S_TEXT;
}

/* Normalize: a line end whose next line may be dot-stuffed but can never
 * start the terminator. Strict: content of the current line. */
static void
bare_lf(struct smtp_data *d, struct mp_buf *out)
{
	d->bare_lf_seen = true;
	if (d->mode == SMTP_DATA_STRICT) {
		content(d, "\n", 1, out);
		d->state = SMTP_DATA_S_TEXT;
		return;
	}
	line_end(d, out);
	d->state = SMTP_DATA_S_BOL_LF;
}

/* Takes the longest run of bytes that are neither CR nor LF. */
static size_t
text_run(struct smtp_data *d, const char *in, size_t len, struct mp_buf *out)
{
	size_t n;

	for (n = 0; n < len; n++) {
		if (in[n] == '\r' || in[n] == '\n')
			break;
		if (in[n] == '\0') {
			d->nuls++;
			d->nul_seen = true;
		}
	}
	content(d, in, n, out);
	return n;
}

static size_t
step_cr(struct smtp_data *d, char c, struct mp_buf *out, bool dots)
{
	if (c != '\n') {
		bare_cr(d, out);
		return 0;
	}
	if (d->state == SMTP_DATA_S_DOT_CR) {
		d->state = SMTP_DATA_S_DONE;
		return 1;
	}
	line_end(d, out);
	d->state = dots ? SMTP_DATA_S_BOL : SMTP_DATA_S_TEXT;
	return 1;
}

/* One transition of the state machine on in[0..len), len > 0. Returns the
 * bytes used; 0 when only the state changed (the next step then uses at
 * least one byte, so the loop always advances). dots is false for BDAT. */
static size_t
step(struct smtp_data *d, const char *in, size_t len, struct mp_buf *out,
     bool dots)
{
	char c = in[0];

	switch (d->state) {
	case SMTP_DATA_S_BOL:
		d->state =
			dots && c == '.' ? SMTP_DATA_S_DOT : SMTP_DATA_S_TEXT;
		return d->state == SMTP_DATA_S_DOT ? 1 : 0;
	case SMTP_DATA_S_BOL_LF:
		/* Unstuffed, but the line cannot begin the terminator. */
		d->state = SMTP_DATA_S_TEXT;
		return dots && c == '.' ? 1 : 0;
	case SMTP_DATA_S_DOT:
		d->state = c == '\r' ? SMTP_DATA_S_DOT_CR : SMTP_DATA_S_TEXT;
		return d->state == SMTP_DATA_S_DOT_CR ? 1 : 0;
	case SMTP_DATA_S_CR:
	case SMTP_DATA_S_DOT_CR:
		return step_cr(d, c, out, dots);
	case SMTP_DATA_S_TEXT:
		if (c == '\r') {
			d->state = SMTP_DATA_S_CR;
			return 1;
		}
		if (c == '\n') {
			bare_lf(d, out);
			return 1;
		}
		return text_run(d, in, len, out);
	case SMTP_DATA_S_DONE:
		break;
	}
	assert(!"smtp_data: step after done");
	return len;
}

size_t
smtp_data_feed(struct smtp_data *d, const char *in, size_t len,
	       struct mp_buf *out, bool *done_r)
{
	size_t used = 0;

	while (used < len && d->state != SMTP_DATA_S_DONE)
		used += step(d, in + used, len - used, out, true);
	d->bytes_in += used;
	*done_r = d->state == SMTP_DATA_S_DONE;
	return used;
}

void
smtp_data_feed_raw(struct smtp_data *d, const char *in, size_t len,
		   struct mp_buf *out)
{
	size_t used = 0;

	assert(d->state != SMTP_DATA_S_DONE);
	while (used < len)
		used += step(d, in + used, len - used, out, false);
	d->bytes_in += used;
}

void
smtp_data_finish_raw(struct smtp_data *d, struct mp_buf *out)
{
	if (d->state == SMTP_DATA_S_CR)
		bare_cr(d, out);
	d->state = SMTP_DATA_S_DONE;
}

bool
smtp_data_done(const struct smtp_data *d)
{
	return d->state == SMTP_DATA_S_DONE;
}

enum smtp_data_result
smtp_data_result(const struct smtp_data *d)
{
	if (d->mode == SMTP_DATA_STRICT && (d->bare_lf_seen || d->bare_cr_seen))
		return SMTP_DATA_BARE_NEWLINE;
	if (d->too_big)
		return SMTP_DATA_TOO_BIG;
	return SMTP_DATA_OK;
}
