/* pop3-dot.c - a message's bytes into the body of a multi-line response. */
#include "config.h"

#include <string.h>

#include "pop3-dot.h"

void
pop3_dot_init(struct pop3_dot *d, bool top, uint32_t body_lines)
{
	memset(d, 0, sizeof(*d));
	d->line_start = true;
	d->top = top;
	d->in_header = true;
	d->lines_left = body_lines;
	/* TOP 0 of a message that is all header stops nowhere: it passes
	 * the whole header, as RETR would. */
}

bool
pop3_dot_done(const struct pop3_dot *d)
{
	return d->done;
}

/* A line ended (its LF was passed): counts it for TOP. */
static void
line_ended(struct pop3_dot *d)
{
	bool blank = d->line_len == 0 || (d->line_len == 1 && d->line_cr);

	d->line_start = true;
	d->line_len = 0;
	d->line_cr = false;
	if (!d->top)
		return;
	if (d->in_header) {
		if (!blank)
			return;
		d->in_header = false; /* the blank line is passed too */
		if (d->lines_left == 0)
			d->done = true;
		return;
	}
	if (--d->lines_left == 0)
		d->done = true;
}

/* The bytes of one line, or of the start or rest of one, from p: up to and
 * including its LF, or to end. */
static size_t
segment(const char *p, const char *end, bool *has_lf)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));

	*has_lf = lf != NULL;
	return lf != NULL ? (size_t)(lf - p) + 1 : (size_t)(end - p);
}

size_t
pop3_dot_feed(struct pop3_dot *d, const char *in, size_t len,
	      struct mp_buf *out)
{
	const char *p = in, *end = in + len, *run = in;

	/* Unchanged runs are appended whole; only a "." at the start of a
	 * line breaks one. */
	while (p < end && !d->done) {
		bool has_lf;
		size_t n = segment(p, end, &has_lf);

		if (d->line_start && p[0] == '.') {
			mp_buf_append(out, run, (size_t)(p - run));
			mp_buf_append(out, ".", 1);
			run = p;
		}
		if (has_lf) {
			if (n >= 2)
				d->line_cr = p[n - 2] == '\r';
			else if (d->line_start)
				d->line_cr = false;
			d->line_len += n - 1;
			line_ended(d);
		} else {
			d->line_start = false;
			d->line_len += n;
			d->line_cr = p[n - 1] == '\r';
		}
		p += n;
	}
	mp_buf_append(out, run, (size_t)(p - run));
	return (size_t)(p - in);
}

void
pop3_dot_finish(struct pop3_dot *d, struct mp_buf *out)
{
	if (!d->line_start)
		mp_buf_append(out, "\r\n", 2);
	mp_buf_append(out, ".\r\n", 3);
	d->line_start = true;
	d->done = true;
}

size_t
pop3_dot_find(const char *p, size_t len, bool line_start)
{
	size_t i = 0;

	if (len > 0 && line_start && p[0] == '.')
		return 0;
	/* Dots are rare at the start of a line and absent from base64, the
	 * bulk of a large message: a vectorised search for '.' and a look
	 * back beats searching for the two bytes "\n." (memmem goes a byte at
	 * a time for needles that short). */
	while (i < len) {
		const char *dot = memchr(p + i, '.', len - i);

		if (dot == NULL)
			break;
		i = (size_t)(dot - p);
		if (i > 0 && p[i - 1] == '\n')
			return i;
		i++;
	}
	return len;
}

const char *
pop3_dot_tail(bool line_start)
{
	return line_start ? ".\r\n" : "\r\n.\r\n";
}
