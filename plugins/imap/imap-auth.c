/* imap-auth.c - STARTTLS (RFC 9051 6.2.1), AUTHENTICATE with SASL-IR
 * (6.2.2, RFC 4959) and LOGIN (6.2.3).
 *
 * Passwords are checked by the auth service on the thread pool; SCRAM
 * secrets are looked up there and the proof checked by the mechanism
 * (core/sasl.c). Plaintext passwords are taken only over TLS or from
 * loopback: elsewhere LOGIN is disabled (LOGINDISABLED) and PLAIN and
 * LOGIN are not offered. Failures answer NO [AUTHENTICATIONFAILED]; a
 * throttled or undecided check NO [UNAVAILABLE] (RFC 5530), so that clients
 * retry later instead of asking for a new password. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moonpost/auth.h>
#include <moonpost/base64.h>
#include <moonpost/events.h>
#include <moonpost/log.h>
#include <moonpost/sasl.h>
#include <moonpost/server.h>

#include "imap-private.h"

#define TEXT_FAILED "Authentication failed"
#define TEXT_TEMP   "Temporary authentication failure, try again later"

static void step(struct imap_session *s, const void *in, size_t len,
		 bool have_input);

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
	mp_sasl_free(&s->sasl);
	MP_FREE(s->sasl_user);
	s->sasl_final = false;
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
succeed(struct imap_session *s, const char *user)
{
	char *account = mp_xstrdup(user);
	char *mech = mp_xstrdup(mp_sasl_mech_name(s->sasl));

	end_exchange(s);
	imap_event_login(s, account, mech);
	free(mech);
	free(account);
}

static void
challenge(struct imap_session *s, const struct mp_buf *out)
{
	struct mp_buf line = {0};

	mp_buf_puts(&line, "+ ");
	mp_base64_encode(out->data != NULL ? out->data : "", out->len, &line);
	mp_buf_puts(&line, "\r\n");
	mp_conn_write(s->conn, line.data, line.len);
	mp_buf_free(&line);
	s->authenticating = true;
	mp_conn_set_max_line(s->conn, IMAP_SASL_LINE_MAX);
	mp_conn_resume(s->conn);
}

static void
verify_done(enum mp_auth_result result, const char *user, void *ctx)
{
	struct imap_session *s = ctx;

	s->auth_req = NULL;
	mp_sasl_verified(s->sasl, result == MP_AUTH_OK);
	if (result == MP_AUTH_OK) {
		/* The canonical name, whatever case the client typed. */
		free(s->sasl_user);
		s->sasl_user = mp_xstrdup(user);
		step(s, NULL, 0, false);
	} else if (result == MP_AUTH_FAILED) {
		fail(s, "NO", "AUTHENTICATIONFAILED", TEXT_FAILED);
	} else {
		fail(s, "NO", "UNAVAILABLE", TEXT_TEMP);
	}
}

static void
secret_done(enum mp_auth_result result, const char *user,
	    const char *credential, void *ctx)
{
	struct imap_session *s = ctx;
	const char *why = NULL;

	s->auth_req = NULL;
	if (result == MP_AUTH_THROTTLED || result == MP_AUTH_TEMPFAIL) {
		fail(s, "NO", "UNAVAILABLE", TEXT_TEMP);
		return;
	}
	if (!mp_sasl_set_secret(s->sasl,
				result == MP_AUTH_OK ? credential : NULL, &why))
		mp_conn_log(s->conn, MP_LOG_WARN,
			    "event=scram_secret_bad user=%s error=%s",
			    mp_q(user), mp_q(why));
	free(s->sasl_user);
	s->sasl_user = mp_xstrdup(user);
	step(s, NULL, 0, false);
}

static bool
is_scram(const struct imap_session *s)
{
	return strcmp(mp_sasl_mech_name(s->sasl), "SCRAM-SHA-256") == 0;
}

static void
on_success(struct imap_session *s, const struct mp_buf *out)
{
	struct mp_auth_info info = auth_info(s, mp_sasl_mech_name(s->sasl));
	const char *user =
		s->sasl_user != NULL ? s->sasl_user : mp_sasl_username(s->sasl);

	if (is_scram(s))
		mp_auth_report(mp_server_auth(s->server), user, &info, true);
	if (out->len > 0) {
		/* RFC 9051 6.2.2 allows the data in the OK's code, but
		 * clients expect a last challenge answered with an empty
		 * line, as Dovecot sends it. */
		if (s->sasl_user == NULL)
			s->sasl_user = mp_xstrdup(user);
		s->sasl_final = true;
		challenge(s, out);
		return;
	}
	succeed(s, user);
}

static void
on_fail(struct imap_session *s)
{
	struct mp_auth_info info = auth_info(s, mp_sasl_mech_name(s->sasl));
	const char *user = mp_sasl_username(s->sasl);

	if (is_scram(s) && user != NULL)
		mp_auth_report(mp_server_auth(s->server), user, &info, false);
	mp_conn_log(s->conn, MP_LOG_INFO, "event=imap_auth_failed reason=%s",
		    mp_q(mp_sasl_error(s->sasl)));
	fail(s, "NO", "AUTHENTICATIONFAILED", TEXT_FAILED);
}

static void
step(struct imap_session *s, const void *in, size_t len, bool have_input)
{
	struct mp_auth *auth = mp_server_auth(s->server);
	struct mp_auth_info info = auth_info(s, mp_sasl_mech_name(s->sasl));
	struct mp_buf out = {0};

	switch (mp_sasl_step(s->sasl, in, len, have_input, &out)) {
	case MP_SASL_CHALLENGE:
		challenge(s, &out);
		break;
	case MP_SASL_VERIFY_PASSWORD:
		s->auth_req = mp_auth_verify_password(
			auth, mp_sasl_username(s->sasl),
			mp_sasl_password(s->sasl), &info, verify_done, s);
		break;
	case MP_SASL_NEED_SECRET:
		s->auth_req = mp_auth_lookup_credential(
			auth, mp_sasl_username(s->sasl), "SCRAM-SHA-256", &info,
			secret_done, s);
		break;
	case MP_SASL_SUCCESS:
		on_success(s, &out);
		break;
	case MP_SASL_FAIL:
		on_fail(s);
		break;
	}
	mp_buf_free(&out);
}

/* Decodes a client response; false after the reply. */
static bool
decode(struct imap_session *s, const char *text, size_t len, struct mp_buf *out)
{
	if (len == 1 && text[0] == '=')
		return true; /* an empty initial response (RFC 4959 3) */
	if (mp_base64_decode(text, len, out, NULL))
		return true;
	fail(s, "BAD", NULL, "Invalid base64 data");
	return false;
}

/* Input stays held while the password, the login hook or the opening of
 * the account is still to answer. */
static bool
waiting(const struct imap_session *s)
{
	return s->auth_req != NULL || s->login_check != NULL || s->job != NULL;
}

static enum mp_status
cmd_authenticate(struct imap_session *s, const struct imap_command *cmd)
{
	struct mp_str mech_arg, ir;
	struct mp_buf in = {0};
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
	    (s->sasl = mp_sasl_new(mech, NULL)) == NULL) {
		imap_cmd_done(s, "NO", "PRIVACYREQUIRED",
			      "Plaintext authentication disallowed on "
			      "non-secure connections");
		return MP_OK;
	}
	if (cmd->count == 1)
		step(s, NULL, 0, false);
	else if (decode(s, ir.p, ir.len, &in))
		step(s, in.data, in.len, true);
	mp_buf_free(&in);
	/* Input goes on for the exchange's lines; a password check holds
	 * it (imap_auth_line returns MP_AGAIN meanwhile). */
	return waiting(s) ? MP_AGAIN : MP_OK;
}

enum mp_status
imap_auth_line(struct imap_session *s, const char *line, size_t len,
	       unsigned flags)
{
	struct mp_buf in = {0};

	if (flags & MP_LINE_TOO_LONG) {
		fail(s, "BAD", NULL, "Response too long");
		return MP_OK;
	}
	s->authenticating = false;
	if (s->sasl_final) {
		/* After the last challenge: the client's empty answer. */
		if (len != 0)
			fail(s, "NO", "AUTHENTICATIONFAILED", TEXT_FAILED);
		else
			succeed(s, s->sasl_user);
		/* The `login` hook may still be deciding. */
		return waiting(s) ? MP_AGAIN : MP_OK;
	}
	if (len == 1 && line[0] == '*') {
		fail(s, "BAD", NULL, "Authentication cancelled");
		return MP_OK;
	}
	if (decode(s, line, len, &in))
		step(s, in.data, in.len, true);
	mp_buf_free(&in);
	return waiting(s) ? MP_AGAIN : MP_OK;
}

void
imap_auth_abort(struct imap_session *s)
{
	mp_auth_cancel(&s->auth_req);
	mp_login_check_cancel(&s->login_check);
	mp_sasl_free(&s->sasl);
}

const struct imap_cmd_def imap_auth_cmds[] = {
	{"STARTTLS", IMAP_S_NOT_AUTH, IMAP_CMD_NO_ARGS, cmd_starttls},
	{"LOGIN", IMAP_S_NOT_AUTH, 0, cmd_login},
	{"AUTHENTICATE", IMAP_S_NOT_AUTH, 0, cmd_authenticate},
	{NULL, 0, 0, NULL},
};
