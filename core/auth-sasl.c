/* auth-sasl.c - one SASL exchange of a session, driven to its end (see
 * the last part of auth.h).
 *
 * Every path that may end the exchange calls ops->end() last and returns
 * without touching the exchange again: the protocol frees it there. The
 * auth service may answer before its call returns (a throttled client, a
 * cached password, the in-memory SCRAM secrets); such an answer comes back
 * with NULL for the request, which is then not stored. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <moonpost/auth.h>
#include <moonpost/base64.h>
#include <moonpost/conn.h>
#include <moonpost/log.h>
#include <moonpost/sasl.h>

struct mp_auth_sasl {
	struct mp_auth *auth;
	struct mp_conn *conn;
	struct mp_sasl *sasl;
	const struct mp_auth_sasl_ops *ops;
	void *ctx;
	char *service, *ip, *session;
	struct mp_auth_request *req;
	/* The auth service's name for the account, once it gave one. */
	char *account;
	bool final; /* SCRAM's final data was sent: an empty answer ends it */
};

static void step(struct mp_auth_sasl *x, const void *in, size_t len,
		 bool have_input);

static struct mp_auth_info
info(const struct mp_auth_sasl *x)
{
	return (struct mp_auth_info){
		.service = x->service,
		.ip = x->ip,
		.session = x->session,
		.mechanism = mp_sasl_mech_name(x->sasl),
	};
}

static bool
is_scram(const struct mp_auth_sasl *x)
{
	return strcmp(mp_sasl_mech_name(x->sasl), "SCRAM-SHA-256") == 0;
}

static void
end(struct mp_auth_sasl *x, enum mp_auth_sasl_end how, const char *reason)
{
	char *account = NULL;

	if (how == MP_AUTH_SASL_OK)
		account = mp_xstrdup(x->account != NULL
					     ? x->account
					     : mp_sasl_username(x->sasl));
	x->ops->end(x->ctx, how, account, reason); /* may free x */
	free(account);
}

static void
challenge(struct mp_auth_sasl *x, const struct mp_buf *out)
{
	struct mp_buf text = {0};

	mp_base64_encode(out->data != NULL ? out->data : "", out->len, &text);
	x->ops->challenge(x->ctx, text.data != NULL ? text.data : "");
	mp_buf_free(&text);
}

static void
set_account(struct mp_auth_sasl *x, const char *user)
{
	free(x->account);
	x->account = mp_xstrdup(user);
}

static void
verify_done(enum mp_auth_result result, const char *user, void *ctx)
{
	struct mp_auth_sasl *x = ctx;

	x->req = NULL;
	mp_sasl_verified(x->sasl, result == MP_AUTH_OK);
	if (result == MP_AUTH_OK) {
		/* The canonical name: what the passwd file calls the
		 * account, whatever case the client typed. */
		set_account(x, user);
		step(x, NULL, 0, false);
	} else {
		/* The auth service logged the attempt. */
		end(x,
		    result == MP_AUTH_FAILED ? MP_AUTH_SASL_FAILED
					     : MP_AUTH_SASL_TEMPFAIL,
		    NULL);
	}
}

static void
secret_done(enum mp_auth_result result, const char *user,
	    const char *credential, void *ctx)
{
	struct mp_auth_sasl *x = ctx;
	const char *why = NULL;

	x->req = NULL;
	if (result == MP_AUTH_THROTTLED || result == MP_AUTH_TEMPFAIL) {
		end(x, MP_AUTH_SASL_TEMPFAIL, NULL);
		return;
	}
	/* Without a secret the mechanism goes on with a fake one and fails
	 * at the proof, as it would for a wrong password. */
	if (!mp_sasl_set_secret(x->sasl,
				result == MP_AUTH_OK ? credential : NULL, &why))
		mp_conn_log(x->conn, MP_LOG_WARN,
			    "event=scram_secret_bad user=%s error=%s",
			    mp_q(user), mp_q(why));
	set_account(x, user);
	step(x, NULL, 0, false);
}

static void
succeeded(struct mp_auth_sasl *x, const struct mp_buf *out)
{
	struct mp_auth_info ai = info(x);

	if (x->account == NULL)
		set_account(x, mp_sasl_username(x->sasl));
	/* SCRAM checked the proof itself: the throttle is told here. */
	if (is_scram(x))
		mp_auth_report(x->auth, x->account, &ai, true);
	if (out->len > 0) {
		x->final = true;
		challenge(x, out);
		return;
	}
	end(x, MP_AUTH_SASL_OK, NULL);
}

static void
failed(struct mp_auth_sasl *x)
{
	struct mp_auth_info ai = info(x);
	const char *user = mp_sasl_username(x->sasl);

	if (is_scram(x) && user != NULL)
		mp_auth_report(x->auth, user, &ai, false);
	end(x, MP_AUTH_SASL_FAILED, mp_sasl_error(x->sasl));
}

static void
step(struct mp_auth_sasl *x, const void *in, size_t len, bool have_input)
{
	struct mp_auth_info ai = info(x);
	struct mp_auth_request *req = NULL;
	struct mp_buf out = {0};

	switch (mp_sasl_step(x->sasl, in, len, have_input, &out)) {
	case MP_SASL_CHALLENGE:
		challenge(x, &out);
		break;
	case MP_SASL_VERIFY_PASSWORD:
		req = mp_auth_verify_password(
			x->auth, mp_sasl_username(x->sasl),
			mp_sasl_password(x->sasl), &ai, verify_done, x);
		break;
	case MP_SASL_NEED_SECRET:
		req = mp_auth_lookup_credential(
			x->auth, mp_sasl_username(x->sasl), "SCRAM-SHA-256",
			&ai, secret_done, x);
		break;
	case MP_SASL_SUCCESS:
		succeeded(x, &out);
		break;
	case MP_SASL_FAIL:
		failed(x);
		break;
	}
	/* NULL when the answer came already (x may be gone since). */
	if (req != NULL)
		x->req = req;
	mp_buf_free(&out);
}

/* Steps with a client message as sent: base64, or "=" for an empty
 * initial response (RFC 4954 4, RFC 5034 4, RFC 4959 3; taken for an empty
 * response later too, as it is nothing else). */
static void
step_text(struct mp_auth_sasl *x, const char *text, size_t len)
{
	struct mp_buf in = {0};

	if (len == 1 && text[0] == '=') {
		step(x, "", 0, true);
		return;
	}
	if (!mp_base64_decode(text, len, &in, NULL)) {
		mp_buf_free(&in);
		end(x, MP_AUTH_SASL_BAD_BASE64, NULL);
		return;
	}
	step(x, in.data != NULL ? in.data : "", in.len, true);
	explicit_bzero(in.data, in.cap);
	mp_buf_free(&in);
}

struct mp_auth_sasl *
mp_auth_sasl_new(struct mp_auth *auth, struct mp_conn *conn, const char *mech,
		 const struct mp_auth_info *ai,
		 const struct mp_auth_sasl_ops *ops, void *ctx)
{
	struct mp_sasl *sasl = mp_sasl_new(mech, NULL);
	struct mp_auth_sasl *x;

	if (sasl == NULL)
		return NULL;
	x = mp_xcalloc(1, sizeof(*x));
	x->auth = auth;
	x->conn = conn;
	x->sasl = sasl;
	x->ops = ops;
	x->ctx = ctx;
	x->service = mp_xstrdup(ai->service != NULL ? ai->service : "");
	x->ip = mp_xstrdup(ai->ip != NULL ? ai->ip : "");
	x->session = ai->session != NULL ? mp_xstrdup(ai->session) : NULL;
	return x;
}

void
mp_auth_sasl_start(struct mp_auth_sasl *x, const char *ir, size_t len)
{
	if (ir == NULL)
		step(x, NULL, 0, false);
	else
		step_text(x, ir, len);
}

void
mp_auth_sasl_input(struct mp_auth_sasl *x, const char *line, size_t len)
{
	if (x->req != NULL)
		return; /* cannot happen: the protocol holds input */
	if (len == 1 && line[0] == '*') {
		end(x, MP_AUTH_SASL_CANCELLED, NULL);
		return;
	}
	if (x->final) {
		/* After the final data: only an empty answer completes it. */
		end(x, len == 0 ? MP_AUTH_SASL_OK : MP_AUTH_SASL_FAILED,
		    len == 0 ? NULL : "data after the final challenge");
		return;
	}
	step_text(x, line, len);
}

bool
mp_auth_sasl_busy(const struct mp_auth_sasl *x)
{
	return x != NULL && x->req != NULL;
}

const char *
mp_auth_sasl_mech(const struct mp_auth_sasl *x)
{
	return mp_sasl_mech_name(x->sasl);
}

void
mp_auth_sasl_free(struct mp_auth_sasl **xp)
{
	struct mp_auth_sasl *x = *xp;

	if (x == NULL)
		return;
	mp_auth_cancel(&x->req);
	mp_sasl_free(&x->sasl);
	free(x->account);
	free(x->service);
	free(x->ip);
	free(x->session);
	MP_FREE(*xp);
}
