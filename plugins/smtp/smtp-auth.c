/* smtp-auth.c - AUTH (RFC 4954): a SASL exchange over 334 challenges.
 *
 * The mechanism (core/sasl.c) is pure; this file moves its messages in
 * base64, asks the auth service to check passwords (on the thread pool)
 * or to look up SCRAM secrets, and answers 235 or 535. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moonpost/auth.h>
#include <moonpost/base64.h>
#include <moonpost/log.h>
#include <moonpost/sasl.h>
#include <moonpost/server.h>

#include "smtp-private.h"

static void step(struct smtp_session *s, const void *in, size_t len,
		 bool have_input);

static struct mp_auth_info
auth_info(const struct smtp_session *s)
{
	return (struct mp_auth_info){
		.service = "smtp",
		.ip = smtp_client_ip(s),
		.session = mp_conn_id(s->conn),
		.mechanism = mp_sasl_mech_name(s->sasl),
	};
}

/* Ends the exchange, back to commands. */
static void
end_exchange(struct smtp_session *s)
{
	mp_sasl_free(&s->sasl);
	s->state = SMTP_S_READY;
	mp_conn_set_max_line(s->conn, SMTP_LINE_MAX);
	smtp_resume(s);
}

static void
fail(struct smtp_session *s, int code, const char *enhanced, const char *text)
{
	smtp_reply_error(s, code, enhanced, text);
	end_exchange(s);
}

static void
auth_hook_done(struct smtp_session *s, const struct mp_verdict *v)
{
	if (smtp_verdict_refuses(s, v, 535)) {
		mp_conn_log(s->conn, MP_LOG_INFO,
			    "event=smtp_auth_refused_by_hook user=%s",
			    mp_q(s->user));
		MP_FREE(s->user);
		mp_conn_set_user(s->conn, NULL);
		end_exchange(s);
		return;
	}
	smtp_parser_limits_init(&s->limits, true);
	s->limits.message_size_max = s->cfg->max_message_size;
	s->limits.bdat_chunk_max = s->cfg->max_message_size;
	smtp_reply(s, 235, "2.7.0", "Authentication successful");
	end_exchange(s);
}

static void
succeed(struct smtp_session *s, const char *user)
{
	s->user = mp_xstrdup(user);
	mp_conn_set_user(s->conn, user);
	smtp_hook(s, "smtp.auth", user, auth_hook_done);
}

static void
verify_done(enum mp_auth_result result, const char *user, void *ctx)
{
	struct smtp_session *s = ctx;

	s->auth_req = NULL;
	if (result == MP_AUTH_OK) {
		/* The canonical name: what the passwd file calls the
		 * account, whatever case the client typed. */
		mp_sasl_verified(s->sasl, true);
		free(s->hook_arg);
		s->hook_arg = mp_xstrdup(user);
		step(s, NULL, 0, false);
		return;
	}
	mp_sasl_verified(s->sasl, false);
	if (result == MP_AUTH_FAILED)
		fail(s, 535, "5.7.8", "Authentication credentials invalid");
	else
		fail(s, 454, "4.7.0", "Temporary authentication failure");
}

static void
secret_done(enum mp_auth_result result, const char *user,
	    const char *credential, void *ctx)
{
	struct smtp_session *s = ctx;
	const char *why = NULL;

	s->auth_req = NULL;
	if (result == MP_AUTH_THROTTLED || result == MP_AUTH_TEMPFAIL) {
		fail(s, 454, "4.7.0", "Temporary authentication failure");
		return;
	}
	if (!mp_sasl_set_secret(s->sasl,
				result == MP_AUTH_OK ? credential : NULL, &why))
		mp_conn_log(s->conn, MP_LOG_WARN,
			    "event=scram_secret_bad user=%s error=%s",
			    mp_q(user), mp_q(why));
	free(s->hook_arg);
	s->hook_arg = mp_xstrdup(user);
	step(s, NULL, 0, false);
}

static void
challenge(struct smtp_session *s, const struct mp_buf *out)
{
	struct mp_buf line = {0};

	mp_buf_puts(&line, "334 ");
	mp_base64_encode(out->data != NULL ? out->data : "", out->len, &line);
	mp_buf_puts(&line, "\r\n");
	mp_conn_write(s->conn, line.data, line.len);
	mp_buf_free(&line);
	smtp_resume(s);
}

static void
on_success(struct smtp_session *s, const struct mp_buf *out)
{
	struct mp_auth_info info = auth_info(s);
	const char *user =
		s->hook_arg != NULL ? s->hook_arg : mp_sasl_username(s->sasl);

	/* SCRAM checked the proof itself: tell the throttle. */
	if (strcmp(mp_sasl_mech_name(s->sasl), "SCRAM-SHA-256") == 0)
		mp_auth_report(mp_server_auth(s->server), user, &info, true);
	if (out->len > 0) {
		/* RFC 4954 4: data with success goes in a last 334, answered
		 * by an empty line. */
		s->user = mp_xstrdup(user);
		challenge(s, out);
		return;
	}
	succeed(s, user);
}

static void
on_fail(struct smtp_session *s)
{
	struct mp_auth_info info = auth_info(s);
	const char *user = mp_sasl_username(s->sasl);

	if (strcmp(mp_sasl_mech_name(s->sasl), "SCRAM-SHA-256") == 0 &&
	    user != NULL)
		mp_auth_report(mp_server_auth(s->server), user, &info, false);
	mp_conn_log(s->conn, MP_LOG_INFO, "event=smtp_auth_failed reason=%s",
		    mp_q(mp_sasl_error(s->sasl)));
	fail(s, 535, "5.7.8", "Authentication credentials invalid");
}

static void
step(struct smtp_session *s, const void *in, size_t len, bool have_input)
{
	struct mp_auth *auth = mp_server_auth(s->server);
	struct mp_auth_info info = auth_info(s);
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
decode(struct smtp_session *s, const char *text, size_t len, struct mp_buf *out)
{
	if (len == 1 && text[0] == '=')
		return true; /* an empty initial response (RFC 4954 4) */
	if (mp_base64_decode(text, len, out, NULL))
		return true;
	fail(s, 501, "5.5.2", "Cannot decode response");
	return false;
}

enum mp_status
smtp_cmd_auth(struct smtp_session *s, const struct smtp_cmd *c)
{
	char mech[SMTP_MECH_MAX + 1];
	struct mp_buf ir = {0};

	if (s->user != NULL) {
		smtp_reply_error(s, 503, "5.5.1", "Already authenticated");
		return MP_OK;
	}
	if (!smtp_auth_offered(s)) {
		if (s->role == SMTP_ROLE_MX)
			smtp_reply_error(s, 503, "5.5.1", "AUTH not available");
		else
			smtp_reply_error(s, 530, "5.7.0",
					 "Must issue a STARTTLS command first");
		return MP_OK;
	}
	snprintf(mech, sizeof(mech), "%.*s", (int)c->arg.len, c->arg.p);
	if (!mp_sasl_mechanism_offered(mech, true) ||
	    (s->sasl = mp_sasl_new(mech, NULL)) == NULL) {
		smtp_reply_error(s, 504, "5.5.4",
				 "Unrecognized authentication type");
		return MP_OK;
	}
	s->state = SMTP_S_AUTH;
	mp_conn_set_max_line(s->conn, SMTP_AUTH_LINE_MAX);
	if (c->auth_response.p == NULL) {
		step(s, NULL, 0, false);
	} else if (decode(s, c->auth_response.p, c->auth_response.len, &ir)) {
		step(s, ir.data, ir.len, true);
	}
	mp_buf_free(&ir);
	return MP_AGAIN;
}

enum mp_status
smtp_auth_line(struct smtp_session *s, const char *line, size_t len)
{
	struct mp_buf in = {0};

	if (s->auth_req != NULL)
		return MP_AGAIN; /* cannot happen: input is held meanwhile */
	if (s->user != NULL) {
		/* After the final 334: the client's empty answer. */
		if (len != 0) {
			MP_FREE(s->user);
			fail(s, 535, "5.7.8", "Authentication failed");
			return MP_AGAIN;
		}
		char *user = s->user;
		s->user = NULL;
		succeed(s, user);
		free(user);
		return MP_AGAIN;
	}
	if (len == 1 && line[0] == '*') {
		fail(s, 501, "5.0.0", "Authentication cancelled");
		return MP_AGAIN;
	}
	if (decode(s, line, len, &in))
		step(s, in.data, in.len, true);
	mp_buf_free(&in);
	return MP_AGAIN;
}

void
smtp_auth_abort(struct smtp_session *s)
{
	mp_auth_cancel(&s->auth_req);
	mp_sasl_free(&s->sasl);
}
