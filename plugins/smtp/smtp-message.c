/* smtp-message.c - DATA and BDAT: the message streams into an unlinked
 * spool file, then it is delivered to every recipient, then answered.
 *
 * The 250 goes out only when every recipient's copy is durable. One
 * temporary failure defers the whole message (the client retries; the
 * recipients that already have it may get it twice - never none). A mix of
 * delivered and refused recipients is deferred too: without an outbound
 * queue there is no bounce to tell the sender about the refused ones, and
 * a deferral at least keeps the message with someone who will. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <moonpost/config.h>
#include <moonpost/log.h>
#include <moonpost/server.h>

#include "smtp-private.h"

/* Decoded content gathered before a write(2) to the spool. */
#define SPOOL_FLUSH (64 * 1024)

static int
open_spool(struct smtp_session *s)
{
	const char *data_dir = mp_config_data_dir(mp_conn_config(s->conn));
	char *dir = mp_xasprintf("%s/spool", data_dir);
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
		/* No O_TMPFILE here: a named file, unlinked at once. */
		char *path = mp_xasprintf("%s/msg.XXXXXX", dir);
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
		free(path);
	}
	if (fd < 0)
		mp_conn_log(s->conn, MP_LOG_ERROR,
			    "event=spool_failed error=%s",
			    mp_q(strerror(errno)));
	free(dir);
	return fd;
}

bool
smtp_message_begin(struct smtp_session *s)
{
	enum smtp_data_mode mode = s->cfg->bare_lf == SMTP_BARE_LF_STRICT
					   ? SMTP_DATA_STRICT
					   : SMTP_DATA_NORMALIZE;

	if (s->tx.spool_fd >= 0)
		return true; /* a later BDAT chunk */
	s->tx.spool_fd = open_spool(s);
	if (s->tx.spool_fd < 0) {
		smtp_reply(s, 451, "4.3.0", "Temporary local problem");
		return false;
	}
	smtp_data_init(&s->tx.data, mode, s->cfg->max_message_size);
	mp_conn_set_timeout(s->conn, s->cfg->data_timeout);
	return true;
}

/* Writes what the decoder produced; a failure is remembered and answered
 * at the end of the message, so the stream stays in step. */
static void
flush_spool(struct smtp_session *s, bool all)
{
	struct smtp_tx *tx = &s->tx;
	size_t off = 0;

	if (tx->pending.len < (all ? 1 : SPOOL_FLUSH))
		return;
	while (!tx->spool_failed && off < tx->pending.len) {
		ssize_t n = write(tx->spool_fd, tx->pending.data + off,
				  tx->pending.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			mp_conn_log(s->conn, MP_LOG_ERROR,
				    "event=spool_write_failed error=%s",
				    mp_q(strerror(errno)));
			tx->spool_failed = true;
			break;
		}
		off += (size_t)n;
		tx->spool_size += (uint64_t)n;
	}
	mp_buf_reset(&tx->pending);
}

static enum mp_status bdat_chunk_read(struct smtp_session *s);

enum mp_status
smtp_message_bytes(struct smtp_session *s, const uint8_t *data, size_t len,
		   size_t *consumed_r)
{
	struct smtp_tx *tx = &s->tx;
	bool done = false;

	if (s->state == SMTP_S_DATA) {
		*consumed_r = smtp_data_feed(&tx->data, (const char *)data, len,
					     &tx->pending, &done);
		flush_spool(s, done);
		if (!done)
			return MP_OK;
		mp_conn_read_lines(s->conn);
		return smtp_message_end(s);
	}
	/* A BDAT chunk: the core hands over exactly its size, in pieces. */
	smtp_data_feed_raw(&tx->data, (const char *)data, len, &tx->pending);
	*consumed_r = len;
	tx->bdat_left -= len < tx->bdat_left ? len : tx->bdat_left;
	flush_spool(s, tx->bdat_left == 0);
	return tx->bdat_left == 0 ? bdat_chunk_read(s) : MP_OK;
}

enum mp_status
smtp_cmd_data(struct smtp_session *s, const struct smtp_cmd *c)
{
	if (!smtp_message_begin(s)) {
		smtp_tx_reset(s);
		return MP_OK;
	}
	smtp_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
	s->state = SMTP_S_DATA;
	mp_conn_set_action(s->conn, "reading DATA");
	mp_conn_read_stream(s->conn);
	return MP_OK;
}

/* A BDAT chunk is all in: answer it, or end the message after LAST. */
static enum mp_status
bdat_chunk_read(struct smtp_session *s)
{
	char text[80];

	if (!s->tx.bdat_last) {
		snprintf(text, sizeof(text), "%llu octets received",
			 (unsigned long long)s->tx.bdat_size);
		smtp_reply(s, 250, "2.0.0", text);
		return MP_OK;
	}
	smtp_data_finish_raw(&s->tx.data, &s->tx.pending);
	flush_spool(s, true);
	return smtp_message_end(s);
}

enum mp_status
smtp_cmd_bdat(struct smtp_session *s, const struct smtp_cmd *c)
{
	if (!smtp_message_begin(s)) {
		smtp_tx_reset(s);
		smtp_skip_chunk(s, c);
		return MP_OK;
	}
	s->state = SMTP_S_BDAT;
	s->tx.bdat_last = c->bdat.last;
	s->tx.bdat_size = c->bdat.size;
	s->tx.bdat_left = c->bdat.size;
	mp_conn_set_action(s->conn, "reading BDAT");
	if (c->bdat.size == 0)
		return bdat_chunk_read(s);
	mp_conn_read_bytes(s->conn, c->bdat.size);
	return MP_OK;
}

static void deliver_next(struct smtp_session *s);

static void
message_done(struct smtp_session *s, const struct mp_verdict *v)
{
	/* smtp.queued only observes: its verdict changes nothing. */
	smtp_tx_reset(s);
	smtp_resume(s);
}

static void
deliver_finish(struct smtp_session *s)
{
	const struct mp_deliver_result *f = &s->deliver_first_fail;
	char text[120];

	mp_conn_log(s->conn, MP_LOG_INFO,
		    "event=message from=%s rcpts=%zu size=%llu delivered=%zu "
		    "deferred=%zu rejected=%zu",
		    mp_q(s->tx.sender[0] != '\0' ? s->tx.sender : "<>"),
		    s->tx.rcpts.n, (unsigned long long)s->tx.spool_size,
		    s->delivered, s->deferred, s->rejected);
	if (s->deferred > 0 || (s->rejected > 0 && s->delivered == 0)) {
		smtp_reply(s, f->code, f->enhanced, f->text);
	} else if (s->rejected > 0) {
		smtp_reply(s, 451, "4.2.0",
			   "Some recipients cannot take this message now");
	} else {
		snprintf(text, sizeof(text), "Ok: delivered as %s.%u",
			 mp_conn_id(s->conn), s->tx.number);
		smtp_reply(s, 250, "2.0.0", text);
		smtp_hook(s, "smtp.queued", NULL, message_done);
		return;
	}
	smtp_tx_reset(s);
	smtp_resume(s);
}

static void
delivered(const struct mp_deliver_result *r, void *ctx)
{
	struct smtp_session *s = ctx;
	bool first_fail = s->deferred == 0 && s->rejected == 0;

	s->delivery = NULL;
	if (r->status == MP_DELIVERED) {
		s->delivered++;
	} else if (r->status == MP_DELIVER_TEMPFAIL) {
		/* A deferral decides the reply over a refusal. */
		if (s->deferred++ == 0)
			s->deliver_first_fail = *r;
	} else {
		if (s->rejected++ == 0 && first_fail)
			s->deliver_first_fail = *r;
	}
	s->deliver_next++;
	deliver_next(s);
}

static void
deliver_next(struct smtp_session *s)
{
	struct mp_deliver_env env;
	struct mp_deliver_msg msg = {
		.fd = s->tx.spool_fd,
		.size = s->tx.spool_size,
		.sender = s->tx.sender,
		.session_id = mp_conn_id(s->conn),
		.prefix = s->prefix,
	};
	struct mp_delivery *d;

	if (s->deliver_next >= s->tx.rcpts.n) {
		deliver_finish(s);
		return;
	}
	mp_server_deliver_env(s->server, &env);
	d = mp_deliver(&env, &msg, s->tx.rcpts.v[s->deliver_next], delivered,
		       s);
	/* NULL: it finished already, and delivered() went on from there. */
	if (d != NULL)
		s->delivery = d;
}

static void
data_hook_done(struct smtp_session *s, const struct mp_verdict *v)
{
	if (smtp_verdict_refuses(s, v, 550)) {
		smtp_tx_reset(s);
		smtp_resume(s);
		return;
	}
	s->deliver_next = 0;
	s->delivered = s->deferred = s->rejected = 0;
	mp_conn_set_action(s->conn, "delivering");
	deliver_next(s);
}

enum mp_status
smtp_message_end(struct smtp_session *s)
{
	struct smtp_tx *tx = &s->tx;

	mp_conn_set_timeout(s->conn, s->cfg->timeout);
	mp_conn_set_action(s->conn, NULL);
	if (tx->spool_failed) {
		smtp_reply(s, 451, "4.3.0", "Temporary local problem");
		smtp_tx_reset(s);
		return MP_OK;
	}
	switch (smtp_data_result(&tx->data)) {
	case SMTP_DATA_BARE_NEWLINE:
		smtp_reply_error(s, 550, "5.5.2",
				 "Message contains bare CR or LF");
		smtp_tx_reset(s);
		return MP_OK;
	case SMTP_DATA_TOO_BIG:
		smtp_reply_error(s, 552, "5.3.4", "Message too big");
		smtp_tx_reset(s);
		return MP_OK;
	case SMTP_DATA_OK:
		break;
	}
	s->prefix = smtp_received_prefix(s);
	/* The rest (hook, deliveries) may wait: further commands wait until
	 * this message is answered and the session resumes. */
	return smtp_hook(s, "smtp.data", NULL, data_hook_done);
}

void
smtp_message_abort(struct smtp_session *s)
{
	/* The client left before its answer: the message may have been
	 * delivered to some recipients already, as with any SMTP server
	 * whose 250 never reached the client. */
	mp_delivery_cancel(&s->delivery);
}
