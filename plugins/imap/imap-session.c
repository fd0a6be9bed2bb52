/* imap-session.c - the IMAP plugin: descriptor, connection life, input,
 * replies.
 *
 * Input goes line by line to the parser. A literal switches the connection
 * to exact-byte mode for its octets (after a "+" for a synchronising one);
 * a refused command's literal is read and dropped so that the next command
 * is found where the client puts it. Replies are written as they are made;
 * a handler that waits returns MP_AGAIN and input stays held until its
 * command is answered. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moonpost/log.h>
#include <moonpost/mailstore.h>
#include <moonpost/pool.h>
#include <moonpost/sasl.h>
#include <moonpost/server.h>

#include "imap-private.h"

static struct imap_session *
session(struct mp_conn *conn)
{
	return mp_conn_data(conn);
}

bool
imap_secure(const struct imap_session *s)
{
	/* Loopback counts as secure, as in Dovecot (DESIGN.md). */
	return mp_conn_is_tls(s->conn) || mp_conn_is_loopback(s->conn);
}

/* --- output ------------------------------------------------------------- */

void
imap_write(struct imap_session *s, const void *data, size_t len)
{
	mp_conn_write(s->conn, data, len);
}

void
imap_untagged(struct imap_session *s, const char *fmt, ...)
{
	struct mp_buf line = {0};
	va_list ap;

	mp_buf_puts(&line, "* ");
	va_start(ap, fmt);
	mp_buf_vprintf(&line, fmt, ap);
	va_end(ap);
	mp_buf_puts(&line, "\r\n");
	mp_conn_write(s->conn, line.data, line.len);
	mp_buf_free(&line);
}

void
imap_bye(struct imap_session *s, const char *text)
{
	imap_untagged(s, "BYE %s", text);
	mp_conn_close(s->conn, text);
	s->quitting = true;
}

static void
request_clear(struct imap_session *s)
{
	MP_FREE(s->req.tag);
	s->req.def = NULL;
	s->req.uid = false;
	s->req.running = false;
}

void
imap_cmd_done(struct imap_session *s, const char *status, const char *code,
	      const char *text)
{
	struct mp_buf line = {0};

	if (s->quitting) {
		request_clear(s);
		return;
	}
	if (s->view != NULL && strcmp(status, "BAD") != 0)
		imap_view_sync(
			s, s->req.def == NULL || s->req.uid ||
				   !(s->req.def->flags & IMAP_CMD_NO_EXPUNGE));
	mp_buf_printf(&line, "%s %s ", s->req.tag != NULL ? s->req.tag : "*",
		      status);
	if (code != NULL)
		mp_buf_printf(&line, "[%s] ", code);
	mp_buf_printf(&line, "%s\r\n", text);
	mp_conn_write(s->conn, line.data, line.len);
	mp_buf_free(&line);
	if (strcmp(status, "BAD") != 0)
		s->errors = 0;
	request_clear(s);
	if (s->shutdown_after) {
		imap_bye(s, "Server shutting down");
		return;
	}
	/* Input was held if the command waited; resuming is harmless if
	 * it did not (the core resumes after the callback returns). */
	mp_conn_resume(s->conn);
}

void
imap_cmd_ok(struct imap_session *s)
{
	char text[64];

	snprintf(text, sizeof(text), "%s%s completed", s->req.uid ? "UID " : "",
		 s->req.def != NULL ? s->req.def->name : "Command");
	imap_cmd_done(s, "OK", NULL, text);
}

void
imap_cmd_bad(struct imap_session *s, const char *code, const char *text)
{
	/* A client that only sends garbage is cut off, as Dovecot does
	 * after ten BADs in a row. */
	if (++s->errors >= (unsigned)s->cfg->max_errors) {
		mp_conn_log(s->conn, MP_LOG_INFO, "event=imap_too_many_errors");
		imap_cmd_done(s, "BAD", code, text);
		imap_bye(s, "Too many invalid commands");
		return;
	}
	imap_cmd_done(s, "BAD", code, text);
}

/* --- the parser ---------------------------------------------------------- */

void
imap_parser_update(struct imap_session *s)
{
	unsigned flags = IMAP_PARSER_LITERAL_PLUS;
	bool login = s->state & IMAP_S_LOGIN;

	if (s->enabled & (IMAP_EN_REV2 | IMAP_EN_UTF8))
		flags |= IMAP_PARSER_UTF8;
	imap_parser_limits_init(&s->limits, login);
	/* After login APPEND messages stream into the mailstore
	 * (imap-append.c); before it they are held, and refused. */
	s->limits.stream = login;
	imap_parser_set_limits(s->parser, &s->limits);
	imap_parser_set_flags(s->parser, flags);
	mp_conn_set_max_line(s->conn,
			     login ? IMAP_LINE_MAX_AUTH : IMAP_LINE_MAX_PRE);
}

/* Opening an account on the thread pool. */
struct login_job {
	struct imap_job head;
	struct ms_store *store;
	char *account;
	struct ms_user *user;
	struct ms_error err;
};

static void
login_work(void *arg)
{
	struct login_job *job = arg;

	job->user = ms_user_open(job->store, job->account, &job->err);
}

static void
login_open_done(void *arg)
{
	struct login_job *job = arg;
	struct imap_session *s = job->head.s;
	struct mp_buf caps = {0};

	if (s == NULL)
		goto out; /* the client left meanwhile */
	s->job = NULL;
	if (job->user == NULL) {
		mp_conn_log(s->conn, MP_LOG_WARN,
			    "event=imap_open_failed user=%s error=%s",
			    mp_q(job->account), mp_q(job->err.text));
		imap_cmd_done(s, "NO", "UNAVAILABLE",
			      "Cannot open the mailbox, try again later");
		goto out;
	}
	s->user = job->user;
	job->user = NULL;
	free(s->account);
	s->account = mp_xstrdup(job->account);
	mp_conn_set_user(s->conn, s->account);
	mp_conn_log(s->conn, MP_LOG_INFO, "event=imap_login");
	s->state = IMAP_S_AUTH;
	mp_conn_set_timeout(s->conn, s->cfg->timeout);
	imap_parser_update(s);
	mp_buf_puts(&caps, "CAPABILITY ");
	imap_capabilities(s, &caps);
	imap_cmd_done(s, "OK", caps.data, "Logged in");
	mp_buf_free(&caps);
out:
	ms_user_unref(&job->user);
	free(job->account);
	free(job);
}

void
imap_session_login(struct imap_session *s, const char *account)
{
	struct login_job *job = mp_xcalloc(1, sizeof(*job));

	job->head.s = s;
	job->store = mp_server_store(s->server);
	job->account = mp_xstrdup(account);
	s->job = &job->head;
	mp_pool_submit(mp_server_pool(s->server), login_work, login_open_done,
		       job);
}

/* --- input ------------------------------------------------------------- */

static enum mp_status handle(struct imap_session *s, enum imap_parse_result r);

/* Reads the pending literal's octets in byte mode. */
static enum mp_status
literal_start(struct imap_session *s)
{
	const struct imap_literal *lit = imap_parser_literal(s->parser);

	if ((lit->use == IMAP_LITERAL_STREAM ||
	     (lit->name != NULL && strcmp(lit->name, "APPEND") == 0)) &&
	    !imap_append_literal(s, lit)) {
		lit = imap_parser_literal(s->parser);
		if (lit == NULL || s->quitting)
			return MP_OK;
	}
	if (lit->sync && lit->use != IMAP_LITERAL_DISCARD)
		mp_conn_puts(s->conn, "+ Ready for literal data\r\n");
	s->lit_use = lit->use;
	s->lit_left = lit->size;
	if (lit->size == 0) {
		if (lit->use == IMAP_LITERAL_HOLD)
			return handle(s, imap_parser_literal_data(s->parser,
								  NULL, 0));
		return handle(s, imap_parser_literal_consumed(s->parser));
	}
	s->in_literal = true;
	mp_conn_read_bytes(s->conn, lit->size);
	return MP_OK;
}

static enum mp_status
parse_error(struct imap_session *s)
{
	const struct imap_parse_error *e = imap_parser_error(s->parser);

	imap_append_abort(s);
	free(s->req.tag);
	s->req.tag =
		e->tag.p != NULL ? mp_xstrndup(e->tag.p, e->tag.len) : NULL;
	if (e->close) {
		imap_cmd_done(s, "BAD", e->code, e->text);
		imap_bye(s, "Cannot go on after that command");
		return MP_OK;
	}
	imap_cmd_bad(s, e->code, e->text);
	if (!s->quitting && imap_parser_literal(s->parser) != NULL)
		return literal_start(s);
	return MP_OK;
}

static enum mp_status
handle(struct imap_session *s, enum imap_parse_result r)
{
	switch (r) {
	case IMAP_PARSE_COMPLETE:
		s->n_commands++;
		return imap_dispatch(s, imap_parser_command(s->parser));
	case IMAP_PARSE_NEED_LITERAL:
		return literal_start(s);
	case IMAP_PARSE_ERROR:
		return parse_error(s);
	case IMAP_PARSE_NEED_LINE:
	case IMAP_PARSE_NEED_DATA:
	case IMAP_PARSE_SKIPPED:
		break;
	}
	return MP_OK;
}

static enum mp_status
imap_on_line(struct mp_conn *conn, const char *line, size_t len, unsigned flags)
{
	struct imap_session *s = session(conn);

	if (s->quitting)
		return MP_OK;
	if (s->authenticating)
		return imap_auth_line(s, line, len, flags);
	if (s->idling) {
		s->idling = false;
		if (imap_line_is_done(line, len))
			imap_cmd_ok(s);
		else
			imap_cmd_bad(s, NULL, "Expected DONE");
		return MP_OK;
	}
	return handle(s, imap_parser_feed_line(s->parser, line, len, flags));
}

static enum mp_status
imap_on_bytes(struct mp_conn *conn, const uint8_t *data, size_t len,
	      size_t *consumed_r)
{
	struct imap_session *s = session(conn);
	size_t n = len < s->lit_left ? len : (size_t)s->lit_left;
	enum imap_parse_result r = IMAP_PARSE_NEED_DATA;

	*consumed_r = n;
	s->lit_left -= n;
	if (s->lit_use == IMAP_LITERAL_HOLD)
		r = imap_parser_literal_data(s->parser, data, n);
	else if (s->lit_use == IMAP_LITERAL_STREAM)
		imap_append_data(s, data, n);
	if (s->lit_left > 0)
		return MP_OK;
	s->in_literal = false;
	if (s->lit_use != IMAP_LITERAL_HOLD)
		r = imap_parser_literal_consumed(s->parser);
	if (s->quitting)
		return MP_OK;
	return handle(s, r);
}

/* --- life ------------------------------------------------------------- */

void
imap_capabilities(const struct imap_session *s, struct mp_buf *out)
{
	bool secure = imap_secure(s);

	mp_buf_puts(out, "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE");
	if (!(s->state & IMAP_S_LOGIN)) {
		if (mp_conn_can_starttls(s->conn))
			mp_buf_puts(out, " STARTTLS");
		if (!secure)
			mp_buf_puts(out, " LOGINDISABLED");
		for (const char *const *m = mp_sasl_mechanisms(secure);
		     *m != NULL; m++)
			mp_buf_printf(out, " AUTH=%s", *m);
		return;
	}
	mp_buf_puts(out, " NAMESPACE UNSELECT CONDSTORE QRESYNC UTF8=ACCEPT"
			 " CHILDREN SPECIAL-USE CREATE-SPECIAL-USE"
			 " LIST-EXTENDED LIST-STATUS STATUS=SIZE QUOTA"
			 " QUOTA=RES-STORAGE QUOTA=RES-MESSAGE UIDPLUS MOVE"
			 " BINARY ESEARCH SEARCHRES SORT SORT=DISPLAY ESORT"
			 " THREAD=ORDEREDSUBJECT THREAD=REFERENCES");
	if (mp_conn_can_compress(s->conn))
		mp_buf_puts(out, " COMPRESS=DEFLATE"); /* RFC 4978 */
	if (s->cfg->append_limit > 0)                  /* RFC 7889 */
		mp_buf_printf(out, " APPENDLIMIT=%lld",
			      (long long)s->cfg->append_limit);
}

static enum mp_status
imap_on_open(struct mp_conn *conn)
{
	struct imap_session *s = mp_xcalloc(1, sizeof(*s));
	struct mp_buf caps = {0};

	s->conn = conn;
	s->server = mp_conn_server(conn);
	s->cfg = mp_conn_plugin_config(conn);
	s->state = IMAP_S_NOT_AUTH;
	s->parser = imap_parser_new(NULL, 0);
	mp_conn_set_data(conn, s);
	imap_parser_update(s);
	mp_conn_set_timeout(conn, s->cfg->timeout_preauth);
	imap_capabilities(s, &caps);
	imap_untagged(s, "OK [CAPABILITY %s] moonpost ready", caps.data);
	mp_buf_free(&caps);
	return MP_OK;
}

static void
imap_on_writable(struct mp_conn *conn)
{
	struct imap_session *s = session(conn);

	if (s->on_writable == NULL)
		return;
	/* A client that takes a large response slowly is not idle. */
	mp_conn_set_timeout(conn, s->cfg->timeout);
	s->on_writable(s);
}

static void
imap_on_timeout(struct mp_conn *conn)
{
	struct imap_session *s = session(conn);

	imap_untagged(s, "BYE Disconnected for inactivity");
	s->quitting = true;
	s->end_reason = "timeout";
}

static void
imap_on_shutdown(struct mp_conn *conn)
{
	struct imap_session *s = session(conn);

	/* A command under way is answered first (its work may be on the
	 * thread pool); IDLE and the rest hear it now. */
	s->end_reason = "shutdown";
	/* A pending `login` check is part of its LOGIN or AUTHENTICATE. */
	if ((s->req.running || s->login_check != NULL) && !s->idling) {
		s->shutdown_after = true;
		return;
	}
	imap_bye(s, "Server shutting down");
}

static void
imap_on_close(struct mp_conn *conn)
{
	struct imap_session *s = session(conn);

	imap_auth_abort(s);
	imap_append_abort(s);
	if (s->job != NULL) {
		s->job->s = NULL; /* its completion frees it */
		atomic_store(&s->job->cancelled, true);
		if (s->job->abort != NULL)
			s->job->abort(s->job);
	}
	imap_view_close(s);
	if (s->account != NULL)
		mp_conn_log(conn, MP_LOG_INFO, "event=imap_logout");
	imap_event_logout(s);
	ms_user_unref(&s->user);
	imap_parser_free(&s->parser);
	request_clear(s);
	free(s->account);
	free(s->login_account);
	free(s->mechanism);
	free(s);
}

MP_PLUGIN_DEFINE(.name = "imap", .version = PACKAGE_VERSION,
		 .config = &imap_config_section,
		 .busy_reply = "* BYE [UNAVAILABLE] Too many connections, try "
			       "later\r\n",
		 .max_line = IMAP_LINE_MAX_PRE, .on_open = imap_on_open,
		 .on_line = imap_on_line, .on_bytes = imap_on_bytes,
		 .on_writable = imap_on_writable, .on_timeout = imap_on_timeout,
		 .on_shutdown = imap_on_shutdown, .on_close = imap_on_close);
