/* pop3-auth.c - logging in: USER/PASS (RFC 1939 7) and AUTH (RFC 5034).
 *
 * Passwords are checked by the auth service (on the thread pool); SCRAM
 * secrets are looked up there and the proof checked by the mechanism
 * (core/sasl.c, pure). Plaintext passwords, USER/PASS and AUTH PLAIN or
 * LOGIN, are taken only over TLS or from loopback. Failures answer
 * -ERR [AUTH]; a throttled or undecided check -ERR [SYS/TEMP] (RFC 3206),
 * so that clients retry later instead of asking for a new password. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moonpost/auth.h>
#include <moonpost/log.h>
#include <moonpost/sasl.h>
#include <moonpost/server.h>

#include "pop3-private.h"

#define TEXT_PLAINTEXT                                                         \
	"Plaintext authentication disallowed on non-secure connections"
#define TEXT_FAILED "Authentication failed"
#define TEXT_TEMP   "Temporary authentication failure, try again later"

static struct mp_auth_info
auth_info(const struct pop3_session *s, const char *mechanism)
{
	return (struct mp_auth_info){
		.service = "pop3",
		.ip = mp_conn_peer_ip(s->conn),
		.session = mp_conn_id(s->conn),
		.mechanism = mechanism,
	};
}

/* The `login` hook said no: back to AUTHORIZATION, as after a wrong
 * password (RFC 2449 8.1.2 codes: [AUTH] for a refusal, [SYS/TEMP] for a
 * failure the client should retry). The script's text is shown when it
 * gave one. */
static void
login_refused(struct pop3_session *s, enum mp_login_result result,
	      const char *text)
{
	MP_FREE(s->mechanism);
	s->state = POP3_S_AUTHORIZATION;
	mp_conn_set_max_line(s->conn, POP3_LINE_MAX);
	switch (result) {
	case MP_LOGIN_REFUSED:
		pop3_reply_error(s, "AUTH",
				 text[0] != '\0' ? text : TEXT_FAILED);
		break;
	case MP_LOGIN_DISCONNECT:
		pop3_close_err(s, "AUTH", text[0] != '\0' ? text : TEXT_FAILED);
		return;
	default:
		pop3_reply(s, false, "SYS/TEMP",
			   text[0] != '\0' ? text : TEXT_TEMP);
		break;
	}
	pop3_resume(s);
}

static void
login_done(enum mp_login_result result, const char *text, void *ctx)
{
	struct pop3_session *s = ctx;
	char *account = s->login_account;

	s->login_account = NULL;
	s->login_check = NULL;
	if (result != MP_LOGIN_OK) {
		mp_conn_log(s->conn, MP_LOG_INFO,
			    "event=pop3_login_refused user=%s result=%s",
			    mp_q(account),
			    result == MP_LOGIN_REFUSED      ? "refused"
			    : result == MP_LOGIN_DISCONNECT ? "disconnect"
							    : "tempfail");
		login_refused(s, result, text);
	} else if (s->shutdown_after) {
		pop3_close_err(s, "SYS/TEMP", "Server shutting down");
	} else {
		pop3_login(s, account);
	}
	free(account);
}

/* The password was right: ask the `login` hook, then open the maildrop,
 * unless the server stops. */
static void
logged_in(struct pop3_session *s, const char *account, const char *mechanism)
{
	struct mp_session_info info;

	if (s->shutdown_after) {
		pop3_close_err(s, "SYS/TEMP", "Server shutting down");
		return;
	}
	free(s->mechanism);
	s->mechanism = mp_xstrdup(mechanism);
	pop3_session_info(s, &info);
	info.user = account;
	free(s->login_account);
	s->login_account = mp_xstrdup(account);
	s->login_check =
		mp_event_login(mp_server_lua(s->server), &info, login_done, s);
}

/* --- USER / PASS ------------------------------------------------------ */

enum mp_status
pop3_cmd_user(struct pop3_session *s, const struct pop3_cmd *c)
{
	if (!pop3_secure(s)) {
		pop3_reply_error(s, "AUTH", TEXT_PLAINTEXT);
		return MP_OK;
	}
	free(s->user);
	s->user = mp_xstrndup(c->arg.p, c->arg.len);
	/* The same answer for every name: nothing to learn here. */
	pop3_reply(s, true, NULL, NULL);
	return MP_OK;
}

static void
pass_done(enum mp_auth_result result, const char *user, void *ctx)
{
	struct pop3_session *s = ctx;

	s->auth_req = NULL;
	if (result == MP_AUTH_OK) {
		logged_in(s, user, "USER");
		return;
	}
	if (result == MP_AUTH_FAILED)
		pop3_reply_error(s, "AUTH", TEXT_FAILED);
	else
		pop3_reply(s, false, "SYS/TEMP", TEXT_TEMP);
	pop3_resume(s);
}

enum mp_status
pop3_cmd_pass(struct pop3_session *s, const struct pop3_cmd *c)
{
	struct mp_auth_info info = auth_info(s, "USER");
	char *password, *user;

	if (!pop3_secure(s)) {
		pop3_reply_error(s, "AUTH", TEXT_PLAINTEXT);
		return MP_OK;
	}
	if (s->user == NULL) {
		pop3_reply_error(s, NULL, "Send USER first");
		return MP_OK;
	}
	/* A name is good for one PASS (RFC 1939 7: after -ERR the client
	 * starts again with USER). */
	user = s->user;
	s->user = NULL;
	password = mp_xstrndup(c->arg.p, c->arg.len);
	s->auth_req = mp_auth_verify_password(mp_server_auth(s->server), user,
					      password, &info, pass_done, s);
	explicit_bzero(password, c->arg.len);
	free(password);
	free(user);
	return MP_AGAIN;
}

/* --- AUTH --------------------------------------------------------------- */

/* Ends the exchange, back to commands. */
static void
end_exchange(struct pop3_session *s)
{
	mp_auth_sasl_free(&s->sasl);
	s->state = POP3_S_AUTHORIZATION;
	mp_conn_set_max_line(s->conn, POP3_LINE_MAX);
	pop3_resume(s);
}

static void
fail(struct pop3_session *s, const char *code, const char *text)
{
	pop3_reply_error(s, code, text);
	end_exchange(s);
}

static void
sasl_challenge(void *ctx, const char *base64)
{
	struct pop3_session *s = ctx;

	mp_conn_printf(s->conn, "+ %s\r\n", base64);
	pop3_resume(s);
}

static void
sasl_end(void *ctx, enum mp_auth_sasl_end end, const char *account,
	 const char *reason)
{
	struct pop3_session *s = ctx;
	char *mech;

	switch (end) {
	case MP_AUTH_SASL_OK:
		mech = mp_xstrdup(mp_auth_sasl_mech(s->sasl));
		mp_auth_sasl_free(&s->sasl);
		logged_in(s, account, mech);
		free(mech);
		return;
	case MP_AUTH_SASL_FAILED:
		if (reason != NULL)
			mp_conn_log(s->conn, MP_LOG_INFO,
				    "event=pop3_auth_failed reason=%s",
				    mp_q(reason));
		fail(s, "AUTH", TEXT_FAILED);
		return;
	case MP_AUTH_SASL_TEMPFAIL:
		pop3_reply(s, false, "SYS/TEMP", TEXT_TEMP);
		end_exchange(s);
		return;
	case MP_AUTH_SASL_CANCELLED:
		fail(s, NULL, "Authentication cancelled");
		return;
	case MP_AUTH_SASL_BAD_BASE64:
		fail(s, NULL, "Invalid base64 data");
		return;
	}
}

static const struct mp_auth_sasl_ops sasl_ops = {
	.challenge = sasl_challenge,
	.end = sasl_end,
};

/* A bare AUTH: the mechanisms, one per line, as clients asked before CAPA
 * (RFC 1734's form; Outlook still sends it). */
static enum mp_status
list_mechanisms(struct pop3_session *s)
{
	const char *const *mechs = mp_sasl_mechanisms(pop3_secure(s));
	struct mp_buf out = {0};

	mp_buf_puts(&out, "+OK\r\n");
	for (size_t i = 0; mechs[i] != NULL; i++)
		mp_buf_printf(&out, "%s\r\n", mechs[i]);
	mp_buf_puts(&out, ".\r\n");
	mp_conn_write(s->conn, out.data, out.len);
	mp_buf_free(&out);
	return MP_OK;
}

enum mp_status
pop3_cmd_auth(struct pop3_session *s, const struct pop3_cmd *c)
{
	struct mp_auth_info info = auth_info(s, NULL);
	char mech[POP3_MECH_MAX + 1];

	if (c->arg.p == NULL)
		return list_mechanisms(s);
	snprintf(mech, sizeof(mech), "%.*s", (int)c->arg.len, c->arg.p);
	if (!mp_sasl_mechanism_offered(mech, true)) {
		pop3_reply_error(s, NULL,
				 "Unsupported authentication "
				 "mechanism");
		return MP_OK;
	}
	if (!mp_sasl_mechanism_offered(mech, pop3_secure(s)) ||
	    (s->sasl = mp_auth_sasl_new(mp_server_auth(s->server), s->conn,
					mech, &info, &sasl_ops, s)) == NULL) {
		pop3_reply_error(s, "AUTH", TEXT_PLAINTEXT);
		return MP_OK;
	}
	MP_FREE(s->user);
	s->state = POP3_S_SASL;
	mp_conn_set_max_line(s->conn, POP3_AUTH_LINE_MAX);
	mp_auth_sasl_start(s->sasl, c->auth_response.p, c->auth_response.len);
	return MP_AGAIN;
}

enum mp_status
pop3_auth_line(struct pop3_session *s, const char *line, size_t len,
	       unsigned flags)
{
	if (mp_auth_sasl_busy(s->sasl) || s->sasl == NULL)
		return MP_AGAIN; /* cannot happen: input is held meanwhile */
	if (flags & MP_LINE_TOO_LONG) {
		fail(s, NULL, "Response too long");
		return MP_AGAIN;
	}
	mp_auth_sasl_input(s->sasl, line, len);
	return MP_AGAIN;
}

void
pop3_auth_abort(struct pop3_session *s)
{
	mp_auth_cancel(&s->auth_req);
	mp_auth_sasl_free(&s->sasl);
	mp_login_check_cancel(&s->login_check);
	MP_FREE(s->login_account);
}
