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
#include <moonpost/base64.h>
#include <moonpost/log.h>
#include <moonpost/sasl.h>
#include <moonpost/server.h>

#include "pop3-private.h"

#define TEXT_PLAINTEXT                                                         \
	"Plaintext authentication disallowed on non-secure connections"
#define TEXT_FAILED "Authentication failed"
#define TEXT_TEMP   "Temporary authentication failure, try again later"

static void step(struct pop3_session *s, const void *in, size_t len,
		 bool have_input);

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
	mp_sasl_free(&s->sasl);
	MP_FREE(s->sasl_user);
	s->sasl_final = false;
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
tempfail(struct pop3_session *s)
{
	pop3_reply(s, false, "SYS/TEMP", TEXT_TEMP);
	end_exchange(s);
}

static void
succeed(struct pop3_session *s, const char *user)
{
	char *account = mp_xstrdup(user);
	char *mech = mp_xstrdup(mp_sasl_mech_name(s->sasl));

	mp_sasl_free(&s->sasl);
	MP_FREE(s->sasl_user);
	s->sasl_final = false;
	logged_in(s, account, mech);
	free(mech);
	free(account);
}

static void
challenge(struct pop3_session *s, const struct mp_buf *out)
{
	struct mp_buf line = {0};

	mp_buf_puts(&line, "+ ");
	mp_base64_encode(out->data != NULL ? out->data : "", out->len, &line);
	mp_buf_puts(&line, "\r\n");
	mp_conn_write(s->conn, line.data, line.len);
	mp_buf_free(&line);
	pop3_resume(s);
}

static void
verify_done(enum mp_auth_result result, const char *user, void *ctx)
{
	struct pop3_session *s = ctx;

	s->auth_req = NULL;
	mp_sasl_verified(s->sasl, result == MP_AUTH_OK);
	if (result == MP_AUTH_OK) {
		/* The canonical name: what the passwd file calls the
		 * account, whatever case the client typed. */
		free(s->sasl_user);
		s->sasl_user = mp_xstrdup(user);
		step(s, NULL, 0, false);
	} else if (result == MP_AUTH_FAILED) {
		fail(s, "AUTH", TEXT_FAILED);
	} else {
		tempfail(s);
	}
}

static void
secret_done(enum mp_auth_result result, const char *user,
	    const char *credential, void *ctx)
{
	struct pop3_session *s = ctx;
	const char *why = NULL;

	s->auth_req = NULL;
	if (result == MP_AUTH_THROTTLED || result == MP_AUTH_TEMPFAIL) {
		tempfail(s);
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
is_scram(const struct pop3_session *s)
{
	return strcmp(mp_sasl_mech_name(s->sasl), "SCRAM-SHA-256") == 0;
}

static void
on_success(struct pop3_session *s, const struct mp_buf *out)
{
	struct mp_auth_info info = auth_info(s, mp_sasl_mech_name(s->sasl));
	const char *user =
		s->sasl_user != NULL ? s->sasl_user : mp_sasl_username(s->sasl);

	/* SCRAM checked the proof itself: tell the throttle. */
	if (is_scram(s))
		mp_auth_report(mp_server_auth(s->server), user, &info, true);
	if (out->len > 0) {
		/* RFC 5034 4: no data with +OK, so it goes in a last
		 * challenge that the client answers with an empty line. */
		if (s->sasl_user == NULL)
			s->sasl_user = mp_xstrdup(user);
		s->sasl_final = true;
		challenge(s, out);
		return;
	}
	succeed(s, user);
}

static void
on_fail(struct pop3_session *s)
{
	struct mp_auth_info info = auth_info(s, mp_sasl_mech_name(s->sasl));
	const char *user = mp_sasl_username(s->sasl);

	if (is_scram(s) && user != NULL)
		mp_auth_report(mp_server_auth(s->server), user, &info, false);
	mp_conn_log(s->conn, MP_LOG_INFO, "event=pop3_auth_failed reason=%s",
		    mp_q(mp_sasl_error(s->sasl)));
	fail(s, "AUTH", TEXT_FAILED);
}

static void
step(struct pop3_session *s, const void *in, size_t len, bool have_input)
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

/* Decodes a client message; false after a reply. */
static bool
decode(struct pop3_session *s, const char *text, size_t len, struct mp_buf *out)
{
	if (len == 1 && text[0] == '=')
		return true; /* an empty initial response (RFC 5034 4) */
	if (mp_base64_decode(text, len, out, NULL))
		return true;
	fail(s, NULL, "Invalid base64 data");
	return false;
}

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
	char mech[POP3_MECH_MAX + 1];
	struct mp_buf ir = {0};

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
	    (s->sasl = mp_sasl_new(mech, NULL)) == NULL) {
		pop3_reply_error(s, "AUTH", TEXT_PLAINTEXT);
		return MP_OK;
	}
	MP_FREE(s->user);
	s->state = POP3_S_SASL;
	mp_conn_set_max_line(s->conn, POP3_AUTH_LINE_MAX);
	if (c->auth_response.p == NULL) {
		step(s, NULL, 0, false);
	} else if (decode(s, c->auth_response.p, c->auth_response.len, &ir)) {
		step(s, ir.data, ir.len, true);
	}
	mp_buf_free(&ir);
	return MP_AGAIN;
}

enum mp_status
pop3_auth_line(struct pop3_session *s, const char *line, size_t len,
	       unsigned flags)
{
	struct mp_buf in = {0};

	if (s->auth_req != NULL)
		return MP_AGAIN; /* cannot happen: input is held meanwhile */
	if (flags & MP_LINE_TOO_LONG) {
		fail(s, NULL, "Response too long");
		return MP_AGAIN;
	}
	if (s->sasl_final) {
		/* After the last challenge: the client's empty answer. */
		if (len != 0)
			fail(s, "AUTH", TEXT_FAILED);
		else
			succeed(s, s->sasl_user);
		return MP_AGAIN;
	}
	if (len == 1 && line[0] == '*') {
		fail(s, NULL, "Authentication cancelled");
		return MP_AGAIN;
	}
	if (decode(s, line, len, &in))
		step(s, in.data, in.len, true);
	mp_buf_free(&in);
	return MP_AGAIN;
}

void
pop3_auth_abort(struct pop3_session *s)
{
	mp_auth_cancel(&s->auth_req);
	mp_sasl_free(&s->sasl);
	mp_login_check_cancel(&s->login_check);
	MP_FREE(s->login_account);
}
