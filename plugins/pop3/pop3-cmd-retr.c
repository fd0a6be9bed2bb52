/* pop3-cmd-retr.c - RETR and TOP (RFC 1939 7): a message streamed from its
 * file.
 *
 * The file is read in chunks on the loop thread (a local read, which the
 * mailstore allows there), byte-stuffed and queued only while the client
 * keeps up: a 20 MB message never sits whole in memory. The mailstore
 * keeps CRLF line ends, so the octets sent are the octets LIST announced,
 * plus a CRLF when the message does not end with one.
 *
 * On a plaintext connection RETR of a large message copies nothing into
 * the output queue: the file is read through one small buffer only to find
 * the lines that start with a '.', and the runs between them go to the
 * socket with sendfile(2), each stuffing '.' written in between. TOP and
 * small messages take the chunk path. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <moonpost/log.h>
#include <moonpost/mailstore.h>

#include "pop3-private.h"

/* A read failed after +OK: the response cannot be finished honestly, so
 * the connection ends (the client retries; nothing was deleted). */
static bool
read_failed(struct pop3_session *s, const char *why)
{
	mp_conn_log(s->conn, MP_LOG_ERROR, "event=pop3_read_failed error=%s",
		    mp_q(why));
	mp_conn_close(s->conn, "message read error");
	s->quitting = true;
	return true;
}

static bool
retr_step(struct pop3_session *s)
{
	struct pop3_stream *st = &s->stream;
	struct mp_buf *out = &st->out;
	bool finished = false;

	while (!finished && !mp_conn_output_full(s->conn)) {
		ssize_t n = pread(st->fd, st->chunk, POP3_READ_CHUNK,
				  (off_t)st->off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return read_failed(s, strerror(errno));
		st->off += (uint64_t)n;
		pop3_dot_feed(&st->dot, st->chunk, (size_t)n, out);
		finished = n == 0 || pop3_dot_done(&st->dot);
		if (finished)
			pop3_dot_finish(&st->dot, out);
		mp_conn_write(s->conn, out->data, out->len);
		mp_buf_reset(out);
	}
	return finished;
}

/* RETR by sendfile: reads ahead from st->next_off to the next line to stuff
 * (at most a window past what is queued), queues the file up to there as
 * one range, then the stuffing '.'; at the end, the terminator. */
static bool
retr_sendfile_step(struct pop3_session *s)
{
	struct pop3_stream *st = &s->stream;

	while (!mp_conn_output_full(s->conn)) {
		uint64_t limit = st->size - st->off > POP3_SENDFILE_RANGE
					 ? st->off + POP3_SENDFILE_RANGE
					 : st->size;
		bool found = false;

		if (mp_conn_is_closed(s->conn))
			return true;
		while (st->next_off < limit && !found) {
			size_t want = limit - st->next_off > POP3_READ_CHUNK
					      ? POP3_READ_CHUNK
					      : (size_t)(limit - st->next_off);
			ssize_t n = pread(st->fd, st->chunk, want,
					  (off_t)st->next_off);
			size_t at;

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return read_failed(s, n < 0 ? strerror(errno)
							    : "file shrank");
			at = pop3_dot_find(st->chunk, (size_t)n,
					   st->line_start);
			found = at < (size_t)n;
			st->next_off += found ? at : (uint64_t)n;
			if (!found)
				st->line_start = st->chunk[n - 1] == '\n';
		}
		if (st->next_off > st->off &&
		    !mp_conn_send_file(s->conn, st->fd, st->off,
				       st->next_off - st->off))
			return read_failed(s, "cannot queue the file");
		st->off = st->next_off;
		if (found) {
			/* The '.' at st->next_off goes with the next range; it
			 * is not a line start to the next search. */
			mp_conn_write(s->conn, ".", 1);
			st->line_start = false;
		} else if (st->off == st->size) {
			mp_conn_puts(s->conn, pop3_dot_tail(st->line_start));
			return true;
		}
	}
	return false;
}

/* True when RETR should go by sendfile: a plaintext connection and a
 * message large enough for it to pay. */
static bool
sendfile_wanted(struct pop3_session *s, int fd)
{
	struct stat sb;

	if (!s->cfg->sendfile || !mp_conn_can_send_file(s->conn) ||
	    fstat(fd, &sb) < 0 ||
	    sb.st_size < POP3_SENDFILE_MIN)
		return false;
	s->stream.size = (uint64_t)sb.st_size;
	return true;
}

/* Opens the file of m; -1 after an -ERR. */
static int
open_message(struct pop3_session *s, const struct pop3_msg *m)
{
	struct ms_error err;
	int fd = ms_message_open(s->drop->mb, m->uid, &err);

	if (fd >= 0)
		return fd;
	if (err.code == MS_ERR_NOT_FOUND) {
		/* An IMAP session expunged it since the snapshot. */
		pop3_reply(s, false, NULL, "Message was expunged meanwhile");
		return -1;
	}
	mp_conn_log(s->conn, MP_LOG_WARN,
		    "event=pop3_open_message_failed uid=%u error=%s", m->uid,
		    mp_q(err.text));
	pop3_reply(s, false, "SYS/TEMP", "Cannot read the message");
	return -1;
}

enum mp_status
pop3_cmd_retr(struct pop3_session *s, const struct pop3_cmd *c)
{
	struct pop3_msg *m = pop3_message(s, c->msg);
	struct pop3_stream *st = &s->stream;
	bool top = c->verb == POP3_VERB_TOP;
	char text[64];
	int fd;

	if (m == NULL || (fd = open_message(s, m)) < 0)
		return MP_OK;
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (top) {
		pop3_reply(s, true, NULL, "Top of message follows");
	} else {
		m->retrieved = true;
		snprintf(text, sizeof(text), "%llu octets",
			 (unsigned long long)m->size);
		pop3_reply(s, true, NULL, text);
	}
	st->fd = fd;
	st->off = 0;
	st->next_off = 0;
	st->line_start = true;
	st->chunk = mp_xmalloc(POP3_READ_CHUNK);
	if (!top && sendfile_wanted(s, fd))
		return pop3_stream_start(s, retr_sendfile_step);
	pop3_dot_init(&st->dot, top, c->lines);
	return pop3_stream_start(s, retr_step);
}
