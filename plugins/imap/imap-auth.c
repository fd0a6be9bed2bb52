/* imap-auth.c - STARTTLS (RFC 9051 6.2.1), AUTHENTICATE with SASL-IR
 * (6.2.2, RFC 4959) and LOGIN (6.2.3).
 *
 * Passwords are checked by the auth service on the thread pool; SCRAM
 * secrets are looked up there and the proof checked by the mechanism; the
 * core drives the exchange (mp_auth_sasl in auth.h). Plaintext passwords are
 * taken only over TLS or from loopback: elsewhere LOGIN is disabled
 * (LOGINDISABLED) and PLAIN and LOGIN are not offered. Failures answer NO
 * [AUTHENTICATIONFAILED]; a throttled or undecided check NO [UNAVAILABLE] (RFC
 * 5530), so that clients retry later instead of asking for a new password. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moonpost/auth.h>
#include <moonpost/events.h>
#include <moonpost/log.h>
#include <moonpost/sasl.h>
#include <moonpost/server.h>

#include "imap-private.h"

#define TEXT_FAILED "Authentication failed"
#define TEXT_TEMP   "Temporary authentication failure, try again later"

static struct mp_auth_info
auth_info(const struct imap_session *s, const char *mechanism)
{
	return (struct mp_auth_info){
		.service = "imap",
		.ip = mp_conn_peer_ip(s->conn),
		.session = mp_conn_id(s->conn),
		.mechanism = mechanism,
	};
}

static void
auth_failed(struct imap_session *s, enum mp_auth_result result)
{
	if (result == MP_AUTH_FAILED)
		imap_cmd_done(s, "NO", "AUTHENTICATIONFAILED", TEXT_FAILED);
	else
		imap_cmd_done(s, "NO", "UNAVAILABLE", TEXT_TEMP);
}

/* --- STARTTLS --------------------------------------------------------------
 */

static enum mp_status
cmd_starttls(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	if (!mp_conn_can_starttls(s->conn)) {
		imap_cmd_bad(s, NULL, "TLS is not available here");
		return MP_OK;
	}
	imap_cmd_done(s, "OK", NULL, "Begin TLS negotiation now");
	/* Plaintext the client pipelined after the command is dropped by
	 * the core; so is a command the parser had begun. */
	imap_parser_reset(s->parser);
	mp_conn_starttls(s->conn);
	return MP_OK;
}

/* --- LOGIN ---------------------------------------------------------------- */

static void
login_done(enum mp_auth_result result, const char *user, void *ctx)
{
	struct imap_session *s = ctx;

	s->auth_req = NULL;
	if (result == MP_AUTH_OK)
		imap_event_login(s, user, "LOGIN");
	else
		auth_failed(s, result);
}

static enum mp_status
cmd_login(struct imap_session *s, const struct imap_command *cmd)
{
	struct mp_auth_info info = auth_info(s, "LOGIN");
	struct mp_str user, pass;
	char *u, *p;

	if (cmd->count != 2 || !imap_arg_get_astring(&cmd->args[0], &user) ||
	    !imap_arg_get_astring(&cmd->args[1], &pass)) {
		imap_cmd_bad(s, NULL, "LOGIN needs a user name and a password");
		return MP_OK;
	}
	if (!imap_secure(s)) {
		imap_cmd_done(s, "NO", "PRIVACYREQUIRED",
			      "Plaintext authentication disallowed on "
			      "non-secure connections");
		return MP_OK;
	}
	u = mp_xstrndup(user.p, user.len);
	p = mp_xstrndup(pass.p, pass.len);
	s->auth_req = mp_auth_verify_password(mp_server_auth(s->server), u, p,
					      &info, login_done, s);
	explicit_bzero(p, pass.len);
	free(p);
	free(u);
	return MP_AGAIN;
}

/* --- AUTHENTICATE ------------------------------------------------------- */

/* Ends the exchange: back to commands. */
static void
end_exchange(struct imap_session *s)
{
	mp_auth_sasl_free(&s->sasl);
	s->authenticating = false;
	mp_conn_set_max_line(s->conn, IMAP_LINE_MAX_PRE);
}

static void
fail(struct imap_session *s, const char *status, const char *code,
     const char *text)
{
	end_exchange(s);
	if (strcmp(status, "BAD") == 0)
		imap_cmd_bad(s, code, text);
	else
		imap_cmd_done(s, status, code, text);
}

static void
sasl_challenge(void *ctx, const char *base64)
{
	struct imap_session *s = ctx;

	mp_conn_printf(s->conn, "+ %s\r\n", base64);
	s->authenticating = true;
	mp_conn_set_max_line(s->conn, IMAP_SASL_LINE_MAX);
	mp_conn_resume(s->conn);
}

static void
sasl_end(void *ctx, enum mp_auth_sasl_end end, const char *account,
	 const char *reason)
{
	struct imap_session *s = ctx;
	char *mech;

	switch (end) {
	case MP_AUTH_SASL_OK:
		mech = mp_xstrdup(mp_auth_sasl_mech(s->sasl));
		end_exchange(s);
		imap_event_login(s, account, mech);
		free(mech);
		return;
	case MP_AUTH_SASL_FAILED:
		if (reason != NULL)
			mp_conn_log(s->conn, MP_LOG_INFO,
				    "event=imap_auth_failed reason=%s",
				    mp_q(reason));
		fail(s, "NO", "AUTHENTICATIONFAILED", TEXT_FAILED);
		return;
	case MP_AUTH_SASL_TEMPFAIL:
		fail(s, "NO", "UNAVAILABLE", TEXT_TEMP);
		return;
	case MP_AUTH_SASL_CANCELLED:
		fail(s, "BAD", NULL, "Authentication cancelled");
		return;
	case MP_AUTH_SASL_BAD_BASE64:
		fail(s, "BAD", NULL, "Invalid base64 data");
		return;
	}
}

static const struct mp_auth_sasl_ops sasl_ops = {
	.challenge = sasl_challenge,
	.end = sasl_end,
};

/* Input stays held while the password, the login hook or the opening of
 * the account is still to answer. */
static bool
waiting(const struct imap_session *s)
{
	return s->auth_req != NULL || mp_auth_sasl_busy(s->sasl) ||
	       s->login_check != NULL || s->job != NULL;
}

static enum mp_status
cmd_authenticate(struct imap_session *s, const struct imap_command *cmd)
{
	struct mp_auth_info info = auth_info(s, NULL);
	struct mp_str mech_arg, ir = {NULL, 0};
	char mech[32];

	if (cmd->count < 1 || cmd->count > 2 ||
	    !imap_arg_get_atom(&cmd->args[0], &mech_arg) ||
	    mech_arg.len >= sizeof(mech) ||
	    (cmd->count == 2 && !imap_arg_get_atom(&cmd->args[1], &ir))) {
		imap_cmd_bad(s, NULL, "AUTHENTICATE needs a mechanism name");
		return MP_OK;
	}
	snprintf(mech, sizeof(mech), "%.*s", (int)mech_arg.len, mech_arg.p);
	if (!mp_sasl_mechanism_offered(mech, true)) {
		imap_cmd_done(s, "NO", "CANNOT",
			      "Unsupported authentication mechanism");
		return MP_OK;
	}
	if (!mp_sasl_mechanism_offered(mech, imap_secure(s)) ||
	    (s->sasl = mp_auth_sasl_new(mp_server_auth(s->server), s->conn,
					mech, &info, &sasl_ops, s)) == NULL) {
		imap_cmd_done(s, "NO", "PRIVACYREQUIRED",
			      "Plaintext authentication disallowed on "
			      "non-secure connections");
		return MP_OK;
	}
	mp_auth_sasl_start(s->sasl, cmd->count == 2 ? ir.p : NULL, ir.len);
	/* Input goes on for the exchange's lines; a password check holds
	 * it (imap_auth_line returns MP_AGAIN meanwhile). */
	return waiting(s) ? MP_AGAIN : MP_OK;
}

enum mp_status
imap_auth_line(struct imap_session *s, const char *line, size_t len,
	       unsigned flags)
{
	if (flags & MP_LINE_TOO_LONG) {
		fail(s, "BAD", NULL, "Response too long");
		return MP_OK;
	}
	s->authenticating = false;
	if (s->sasl != NULL)
		mp_auth_sasl_input(s->sasl, line, len);
	/* The `login` hook may still be deciding. */
	return waiting(s) ? MP_AGAIN : MP_OK;
}

void
imap_auth_abort(struct imap_session *s)
{
	mp_auth_cancel(&s->auth_req);
	mp_login_check_cancel(&s->login_check);
	mp_auth_sasl_free(&s->sasl);
}

const struct imap_cmd_def imap_auth_cmds[] = {
	{"STARTTLS", IMAP_S_NOT_AUTH, IMAP_CMD_NO_ARGS, cmd_starttls},
	{"LOGIN", IMAP_S_NOT_AUTH, 0, cmd_login},
	{"AUTHENTICATE", IMAP_S_NOT_AUTH, 0, cmd_authenticate},
	{NULL, 0, 0, NULL},
};
