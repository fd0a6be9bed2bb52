/* smtp-auth.c - AUTH (RFC 4954): a SASL exchange over 334 challenges.
 *
 * The exchange itself (base64, the mechanism, password checks on the
 * thread pool, SCRAM secrets) is the core's (mp_auth_sasl in auth.h);
 * this file frames its challenges and answers 235, 535 or 454. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moonpost/auth.h>
#include <moonpost/log.h>
#include <moonpost/sasl.h>
#include <moonpost/server.h>

#include "smtp-private.h"

/* Ends the exchange, back to commands. */
static void
end_exchange(struct smtp_session *s)
{
	mp_auth_sasl_free(&s->sasl);
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
sasl_challenge(void *ctx, const char *base64)
{
	struct smtp_session *s = ctx;

	mp_conn_printf(s->conn, "334 %s\r\n", base64);
	smtp_resume(s);
}

static void
sasl_end(void *ctx, enum mp_auth_sasl_end end, const char *account,
	 const char *reason)
{
	struct smtp_session *s = ctx;

	switch (end) {
	case MP_AUTH_SASL_OK:
		/* The `smtp.auth` hook has the last word. */
		s->user = mp_xstrdup(account);
		mp_conn_set_user(s->conn, account);
		smtp_hook(s, "smtp.auth", account, auth_hook_done);
		return;
	case MP_AUTH_SASL_FAILED:
		if (reason != NULL)
			mp_conn_log(s->conn, MP_LOG_INFO,
				    "event=smtp_auth_failed reason=%s",
				    mp_q(reason));
		fail(s, 535, "5.7.8", "Authentication credentials invalid");
		return;
	case MP_AUTH_SASL_TEMPFAIL:
		fail(s, 454, "4.7.0", "Temporary authentication failure");
		return;
	case MP_AUTH_SASL_CANCELLED:
		fail(s, 501, "5.0.0", "Authentication cancelled");
		return;
	case MP_AUTH_SASL_BAD_BASE64:
		fail(s, 501, "5.5.2", "Cannot decode response");
		return;
	}
}

static const struct mp_auth_sasl_ops sasl_ops = {
	.challenge = sasl_challenge,
	.end = sasl_end,
};

static struct mp_auth_info
auth_info(const struct smtp_session *s)
{
	return (struct mp_auth_info){
		.service = "smtp",
		.ip = smtp_client_ip(s),
		.session = mp_conn_id(s->conn),
	};
}

enum mp_status
smtp_cmd_auth(struct smtp_session *s, const struct smtp_cmd *c)
{
	struct mp_auth_info info = auth_info(s);
	char mech[SMTP_MECH_MAX + 1];

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
	    (s->sasl = mp_auth_sasl_new(mp_server_auth(s->server), s->conn,
					mech, &info, &sasl_ops, s)) == NULL) {
		smtp_reply_error(s, 504, "5.5.4",
				 "Unrecognized authentication type");
		return MP_OK;
	}
	s->state = SMTP_S_AUTH;
	mp_conn_set_max_line(s->conn, SMTP_AUTH_LINE_MAX);
	mp_auth_sasl_start(s->sasl, c->auth_response.p, c->auth_response.len);
	return MP_AGAIN;
}

enum mp_status
smtp_auth_line(struct smtp_session *s, const char *line, size_t len)
{
	if (mp_auth_sasl_busy(s->sasl) || s->user != NULL)
		return MP_AGAIN; /* cannot happen: input is held meanwhile */
	mp_auth_sasl_input(s->sasl, line, len);
	return MP_AGAIN;
}

void
smtp_auth_abort(struct smtp_session *s)
{
	mp_auth_sasl_free(&s->sasl);
}
