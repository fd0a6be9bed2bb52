/* pop3-cmd-list.c - LIST and UIDL (RFC 1939 5, 7).
 *
 * With a message number they answer in one line. Without, they list every
 * message not deleted: for a large maildrop that is megabytes, so the
 * lines are produced as the client takes them, like a message body. */
#include "config.h"

#include <stdio.h>

#include "pop3-private.h"

static void
list_line(struct mp_buf *out, const struct pop3_maildrop *d, size_t i,
	  bool uidl)
{
	char id[17];

	if (!uidl) {
		mp_buf_printf(out, "%zu %llu\r\n", i + 1,
			      (unsigned long long)d->msgs[i].size);
		return;
	}
	pop3_uidl_format(id, d->msgs[i].uid, d->uidvalidity);
	mp_buf_printf(out, "%zu %s\r\n", i + 1, id);
}

static bool
list_step(struct pop3_session *s)
{
	const struct pop3_maildrop *d = s->drop;
	struct pop3_stream *st = &s->stream;
	struct mp_buf *out = &st->out;

	if (d->n == 0)
		mp_conn_puts(s->conn, ".\r\n");
	while (st->next < d->n && !mp_conn_output_full(s->conn)) {
		size_t stop = d->n - st->next > POP3_LIST_STEP
				      ? st->next + POP3_LIST_STEP
				      : d->n;

		for (; st->next < stop; st->next++) {
			if (!d->msgs[st->next].deleted)
				list_line(out, d, st->next, st->uidl);
		}
		if (st->next == d->n)
			mp_buf_puts(out, ".\r\n");
		mp_conn_write(s->conn, out->data, out->len);
		mp_buf_reset(out);
	}
	return st->next == d->n;
}

static enum mp_status
one_line(struct pop3_session *s, const struct pop3_cmd *c, bool uidl)
{
	const struct pop3_msg *m = pop3_message(s, c->msg);
	struct mp_buf line = {0};

	if (m == NULL)
		return MP_OK;
	mp_buf_puts(&line, "+OK ");
	list_line(&line, s->drop, c->msg - 1, uidl);
	mp_conn_write(s->conn, line.data, line.len);
	mp_buf_free(&line);
	return MP_OK;
}

enum mp_status
pop3_cmd_list(struct pop3_session *s, const struct pop3_cmd *c)
{
	const struct pop3_maildrop *d = s->drop;
	char text[80];

	if (c->has_msg)
		return one_line(s, c, false);
	snprintf(text, sizeof(text), "%zu messages (%llu octets)",
		 d->n - d->n_deleted,
		 (unsigned long long)(d->size - d->del_size));
	pop3_reply(s, true, NULL, text);
	s->stream.uidl = false;
	return pop3_stream_start(s, list_step);
}

enum mp_status
pop3_cmd_uidl(struct pop3_session *s, const struct pop3_cmd *c)
{
	if (c->has_msg)
		return one_line(s, c, true);
	pop3_reply(s, true, NULL, NULL);
	s->stream.uidl = true;
	return pop3_stream_start(s, list_step);
}
