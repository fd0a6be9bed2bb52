/* smtp-session.c - the SMTP plugin: descriptor, connection life, replies.
 *
 * One struct smtp_session per connection. Commands arrive as lines from the
 * core, are parsed by smtp-parser.c (pure) and carried out by the handlers
 * in smtp-commands.c; a handler that waits (a Lua hook, a password check,
 * a delivery) returns MP_AGAIN and the session resumes itself. Pipelined
 * commands simply wait in the connection's buffer meanwhile. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <moonpost/auth.h>
#include <moonpost/config.h>
#include <moonpost/dns.h>
#include <moonpost/log.h>
#include <moonpost/server.h>

#include "smtp-private.h"

static const char *const smtp_roles[] = {"mx", "submission", "submissions",
					 NULL};

static struct smtp_session *
session(struct mp_conn *conn)
{
	return mp_conn_data(conn);
}

const char *
smtp_client_ip(const struct smtp_session *s)
{
	return mp_conn_peer_ip(s->conn);
}

bool
smtp_auth_required(const struct smtp_session *s)
{
	return s->role != SMTP_ROLE_MX;
}

bool
smtp_auth_offered(const struct smtp_session *s)
{
	/* Postfix's smtpd_tls_auth_only: never over plaintext, not even
	 * from loopback; and not on the MX port at all. */
	return s->role != SMTP_ROLE_MX && mp_conn_is_tls(s->conn) &&
	       s->user == NULL;
}

void
smtp_reply(struct smtp_session *s, int code, const char *enhanced,
	   const char *text)
{
	struct mp_buf line = {0};

	smtp_reply_format(&line, code, enhanced, text);
	mp_conn_write(s->conn, line.data, line.len);
	mp_buf_free(&line);
}

void
smtp_close_421(struct smtp_session *s, const char *enhanced, const char *text)
{
	smtp_reply(s, 421, enhanced, text);
	mp_conn_close(s->conn, text);
	s->quitting = true;
}

void
smtp_reply_error(struct smtp_session *s, int code, const char *enhanced,
		 const char *text)
{
	/* The error that reaches the limit is answered with the goodbye
	 * instead (Postfix's smtpd_hard_error_limit). */
	if (++s->errors >= (unsigned)s->cfg->max_errors) {
		mp_conn_log(s->conn, MP_LOG_INFO, "event=smtp_too_many_errors");
		smtp_close_421(s, "4.7.0", "Too many errors");
		return;
	}
	smtp_reply(s, code, enhanced, text);
}

void
smtp_resume(struct smtp_session *s)
{
	if (s->shutdown_after && s->state != SMTP_S_DATA &&
	    s->state != SMTP_S_BDAT) {
		smtp_close_421(s, "4.3.2", "Service shutting down");
		return;
	}
	mp_conn_resume(s->conn);
}

void
smtp_tx_reset(struct smtp_session *s)
{
	struct smtp_tx *tx = &s->tx;

	smtp_hook_tx_done(s);
	MP_FREE(tx->sender);
	mp_strlist_free(&tx->rcpts);
	if (tx->spool_fd >= 0)
		close(tx->spool_fd);
	mp_buf_free(&tx->pending);
	MP_FREE(s->prefix);
	unsigned number = tx->number;
	memset(tx, 0, sizeof(*tx));
	tx->spool_fd = -1;
	tx->number = number;
	if (s->state != SMTP_S_START && s->state != SMTP_S_AUTH)
		s->state = SMTP_S_READY;
}

static enum smtp_role
role_of(struct mp_conn *conn)
{
	const char *role = mp_conn_role(conn);

	if (strcmp(role, "submission") == 0)
		return SMTP_ROLE_SUBMISSION;
	if (strcmp(role, "submissions") == 0)
		return SMTP_ROLE_SUBMISSIONS;
	return SMTP_ROLE_MX;
}

static void
greet(struct smtp_session *s, const struct mp_verdict *v)
{
	char text[300];

	if (v->kind != MP_VERDICT_CONTINUE && v->kind != MP_VERDICT_ACCEPT) {
		/* Refused at connect: say so and hang up (RFC 5321 3.1
		 * allows 554 here; nothing the client could send helps). */
		int code = v->kind == MP_VERDICT_REJECT
				   ? (v->code != 0 ? v->code : 554)
				   : 421;
		smtp_reply(s, code,
			   v->enhanced[0] != '\0' ? v->enhanced
			   : code / 100 == 5      ? "5.7.1"
						  : "4.7.0",
			   v->text[0] != '\0' ? v->text
					      : "Service unavailable");
		mp_conn_close(s->conn, "refused at connect");
		s->quitting = true;
		return;
	}
	snprintf(text, sizeof(text), "%s %s",
		 mp_config_hostname(mp_conn_config(s->conn)),
		 s->cfg->banner != NULL ? s->cfg->banner
					: "ESMTP moonpost ready");
	smtp_reply(s, 220, NULL, text);
	smtp_resume(s);
}

static void
rdns_done(const struct mp_dns_result *res, void *ctx)
{
	struct smtp_session *s = ctx;

	s->dns_req = NULL;
	if (res->status == MP_DNS_OK)
		s->rdns = mp_xstrdup(res->name);
	mp_conn_log(s->conn, MP_LOG_DEBUG, "event=rdns result=%s name=%s",
		    mp_dns_status_name(res->status), mp_q(s->rdns));
	if (s->connect_waits) {
		s->connect_waits = false;
		smtp_hook(s, "smtp.connect", NULL, greet);
	}
}

/* Looks the client's name up (forward-confirmed, as Postfix does) for the
 * Received header and the hooks. Only a connect hook waits for it: the
 * greeting should not wait on somebody else's DNS. */
static enum mp_status
start_rdns(struct smtp_session *s)
{
	struct mp_dns *dns = mp_server_dns(s->server);
	struct mp_lua *lua = mp_server_lua(s->server);

	if (mp_conn_is_loopback(s->conn)) {
		s->rdns = mp_xstrdup("localhost");
		return smtp_hook(s, "smtp.connect", NULL, greet);
	}
	if (dns != NULL)
		s->dns_req = mp_dns_rdns(dns, mp_conn_peer_addr(s->conn),
					 rdns_done, s);
	if (s->dns_req != NULL && lua != NULL &&
	    mp_lua_has_hook(lua, "smtp.connect")) {
		s->connect_waits = true;
		return MP_AGAIN;
	}
	return smtp_hook(s, "smtp.connect", NULL, greet);
}

static enum mp_status
smtp_on_open(struct mp_conn *conn)
{
	struct smtp_session *s = mp_xcalloc(1, sizeof(*s));

	s->conn = conn;
	s->server = mp_conn_server(conn);
	s->cfg = mp_conn_plugin_config(conn);
	s->role = role_of(conn);
	s->tx.spool_fd = -1;
	mp_conn_set_data(conn, s);
	mp_conn_set_max_line(conn, SMTP_LINE_MAX);
	mp_conn_set_timeout(conn, s->cfg->timeout);
	smtp_parser_limits_init(&s->limits, false);
	s->limits.message_size_max = s->cfg->max_message_size;
	s->limits.bdat_chunk_max = s->cfg->max_message_size;
	return start_rdns(s);
}

void
smtp_skip_chunk(struct smtp_session *s, const struct smtp_cmd *c)
{
	if (c->verb != SMTP_VERB_BDAT || s->quitting)
		return;
	/* A refused BDAT still sends its chunk (RFC 3030 2): read it and
	 * drop it, or the next command would be found in its bytes. */
	if (!c->bdat.size_known) {
		smtp_close_421(s, "4.5.0", "Cannot find the end of the chunk");
		return;
	}
	if (c->bdat.size == 0)
		return;
	s->tx.bdat_skip = c->bdat.size;
	mp_conn_read_bytes(s->conn, c->bdat.size);
}

static enum mp_status
command_line(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_cmd cmd;

	if (smtp_parser_parse(line, len, &s->limits, &cmd) != MP_OK) {
		smtp_reply_error(s, cmd.error.code, cmd.error.enhanced,
				 cmd.error.text);
		smtp_skip_chunk(s, &cmd);
		return MP_OK;
	}
	return smtp_command(s, &cmd);
}

static enum mp_status
smtp_on_line(struct mp_conn *conn, const char *line, size_t len, unsigned flags)
{
	struct smtp_session *s = session(conn);

	if (s->quitting)
		return MP_OK;
	if (s->state == SMTP_S_AUTH)
		return smtp_auth_line(s, line, len);
	if (++s->commands > (unsigned)s->cfg->max_commands) {
		smtp_close_421(s, "4.7.0", "Too many commands");
		return MP_OK;
	}
	if (flags & MP_LINE_TOO_LONG) {
		smtp_reply_error(s, 500, "5.5.2", "Line too long");
		return MP_OK;
	}
	if ((flags & MP_LINE_BARE_LF) &&
	    s->cfg->bare_lf == SMTP_BARE_LF_STRICT) {
		smtp_reply_error(s, 500, "5.5.2", "Bare LF received");
		return MP_OK;
	}
	return command_line(s, line, len);
}

static enum mp_status
smtp_on_bytes(struct mp_conn *conn, const uint8_t *data, size_t len,
	      size_t *consumed_r)
{
	struct smtp_session *s = session(conn);

	if (s->tx.bdat_skip > 0) {
		/* The chunk of a refused BDAT: read and dropped. */
		size_t n =
			len < s->tx.bdat_skip ? len : (size_t)s->tx.bdat_skip;
		s->tx.bdat_skip -= n;
		*consumed_r = n;
		return MP_OK;
	}
	return smtp_message_bytes(s, data, len, consumed_r);
}

static void
smtp_on_timeout(struct mp_conn *conn)
{
	struct smtp_session *s = session(conn);

	smtp_reply(s, 421, "4.4.2", "Timeout exceeded");
}

static void
smtp_on_shutdown(struct mp_conn *conn)
{
	struct smtp_session *s = session(conn);

	/* A delivery under way finishes and answers first; everything else
	 * learns now that the server is going away. */
	if (s->delivery != NULL || s->call != NULL ||
	    mp_auth_sasl_busy(s->sasl)) {
		s->shutdown_after = true;
		return;
	}
	smtp_close_421(s, "4.3.2", "Service shutting down");
}

static void
smtp_on_close(struct mp_conn *conn)
{
	struct smtp_session *s = session(conn);

	mp_dns_cancel(&s->dns_req);
	smtp_hook_cancel(s);
	smtp_auth_abort(s);
	smtp_message_abort(s);
	smtp_tx_reset(s);
	mp_lua_unref(&s->call_lua);
	free(s->helo);
	free(s->rdns);
	free(s->user);
	free(s->hook_arg);
	free(s);
}

/* The spool holds messages while they arrive; files there are unlinked
 * (O_TMPFILE), so a crash leaves nothing behind. */
static bool
smtp_init(struct mp_server *server, const char **error_r)
{
	const char *data_dir = mp_config_data_dir(mp_server_config(server));
	char *spool = mp_xasprintf("%s/spool", data_dir);
	bool ok = mkdir(spool, 0700) == 0 || errno == EEXIST;

	if (!ok)
		*error_r = "cannot create the spool directory";
	free(spool);
	return ok;
}

MP_PLUGIN_DEFINE(.name = "smtp", .version = PACKAGE_VERSION,
		 .roles = smtp_roles, .hooks = smtp_hook_names,
		 .config = &smtp_config_section,
		 .busy_reply = "421 4.7.0 Too many connections, try later\r\n",
		 .max_line = SMTP_LINE_MAX, .init = smtp_init,
		 .on_open = smtp_on_open, .on_line = smtp_on_line,
		 .on_bytes = smtp_on_bytes, .on_timeout = smtp_on_timeout,
		 .on_shutdown = smtp_on_shutdown, .on_close = smtp_on_close);
