/* auth.h - the authentication service: password checks, SCRAM secrets,
 * failed-login throttling and the Lua `auth` hook.
 *
 * The server owns one (mp_server_auth()). A password check goes:
 *   1. throttle: too many recent failures from the client's address, or
 *      for the account from an address it never logged in from, gives
 *      THROTTLED at once (see the `auth` section of the config);
 *   2. the Lua `auth` hook, when a script registered a handler: accept,
 *      reject or defer decide; continue (or nothing) goes on;
 *   3. the passwd file: the hash is checked on the thread pool. An unknown
 *      account costs a hash too, so timing does not tell which exist.
 * Every attempt is logged as one line
 *   event=auth result=ok|failed|throttled|tempfail user= ip= service=
 *   mechanism= reason=
 * and never with the password. A check counts as a failure from the moment
 * it starts and is refunded when it succeeds, so a client that hangs up
 * while its password is checked gains nothing.
 *
 * The passwd and alias files are kept in memory and re-read when they
 * change (checked at most once a second), so `moonpost user add|passwd|del`
 * take effect on a running server. */
#ifndef MOONPOST_AUTH_H
#define MOONPOST_AUTH_H

#include <moonpost/common.h>

struct mp_auth;
struct mp_auth_request;
struct mp_conn;

enum mp_auth_result {
	MP_AUTH_OK = 0,    /* authenticated */
	MP_AUTH_FAILED,    /* wrong password, unknown user, hook said no */
	MP_AUTH_THROTTLED, /* refused without a check: too many failures */
	MP_AUTH_TEMPFAIL,  /* no verdict now (hook error or defer, accounts
			      unreadable): tell the client to retry later */
};

/* Who asks, for the throttle, the hook and the log. Strings are copied. */
struct mp_auth_info {
	const char *service;   /* "imap", "pop3", "smtp" */
	const char *ip;        /* the client's address (mp_conn_peer_ip) */
	const char *session;   /* the session id, or NULL */
	const char *mechanism; /* "PLAIN", "LOGIN", "SCRAM-SHA-256"... */
};

/* The end of a password check. user is the account name as the server
 * knows it (lower case), valid during the call. */
typedef void mp_auth_done_fn(enum mp_auth_result result, const char *user,
			     void *ctx);
/* The end of a credential lookup: OK with credential ("{SCHEME}...",
 * valid during the call), FAILED when the account or its credential of
 * that scheme does not exist, THROTTLED or TEMPFAIL. */
typedef void mp_auth_credential_fn(enum mp_auth_result result, const char *user,
				   const char *credential, void *ctx);

/* Checks password for user. done is called exactly once unless the
 * request is cancelled, possibly before this returns (then NULL is
 * returned); otherwise the request is returned for mp_auth_cancel(). */
MP_API struct mp_auth_request *
mp_auth_verify_password(struct mp_auth *auth, const char *user,
			const char *password, const struct mp_auth_info *info,
			mp_auth_done_fn *done, void *ctx);
/* Looks up the stored credential of scheme ("SCRAM-SHA-256", any case) for
 * user, for a mechanism that checks a proof itself. THROTTLED is logged
 * here; any other result is not: the mechanism reports its outcome with
 * mp_auth_report(). done is called as for mp_auth_verify_password() (the
 * passwd file is in memory: today always before this returns). */
MP_API struct mp_auth_request *
mp_auth_lookup_credential(struct mp_auth *auth, const char *user,
			  const char *scheme, const struct mp_auth_info *info,
			  mp_auth_credential_fn *done, void *ctx);
/* Abandons a request: done will not be called. Sets *req NULL. The
 * attempt still counts as a failure unless a check already running on
 * the thread pool finds the password right. */
MP_API void mp_auth_cancel(struct mp_auth_request **req);
/* Records and logs the outcome of an attempt the caller checked itself
 * (a SCRAM proof), so that it feeds the throttle too. */
MP_API void mp_auth_report(struct mp_auth *auth, const char *user,
			   const struct mp_auth_info *info, bool ok);
/* "ok", "failed", "throttled" or "tempfail"; static. */
MP_API const char *mp_auth_result_name(enum mp_auth_result result);

/* --- SASL exchanges (auth-sasl.c) ----------------------------------------
 *
 * SMTP AUTH, POP3 AUTH and IMAP AUTHENTICATE frame SASL differently
 * ("334 " or "+ " challenges) and answer its end with their own replies;
 * everything in between is the same and lives here: base64 both ways ("="
 * is an empty initial response, "*" a cancel), the mechanism's steps
 * (sasl.h), password checks and SCRAM secret lookups through the auth
 * service, the account's canonical name, the throttle told of SCRAM's
 * outcome, and the empty response that must answer SCRAM's final data
 * (sent as a last challenge: none of the three has room for it in the
 * success reply that clients read). */

struct mp_auth_sasl;

enum mp_auth_sasl_end {
	MP_AUTH_SASL_OK,         /* authenticated */
	MP_AUTH_SASL_FAILED,     /* wrong credentials or a failed proof */
	MP_AUTH_SASL_TEMPFAIL,   /* throttled, or no verdict now */
	MP_AUTH_SASL_CANCELLED,  /* the client sent "*" */
	MP_AUTH_SASL_BAD_BASE64, /* a response that is not base64 */
};

struct mp_auth_sasl_ops {
	/* Sends a challenge: base64 text (NUL-terminated, maybe empty) for
	 * the protocol to frame; the client's answer goes to
	 * mp_auth_sasl_input(). */
	void (*challenge)(void *ctx, const char *base64);
	/* The exchange is over. account is the auth service's name for the
	 * client with MP_AUTH_SASL_OK, else NULL; reason is why a mechanism
	 * failed, for the log, or NULL. Both are valid during the call only.
	 * Called once, last: it may free the exchange. */
	void (*end)(void *ctx, enum mp_auth_sasl_end end, const char *account,
		    const char *reason);
};

/* A new exchange of the mechanism mech (any case; the caller checked it is
 * offered) for the client described by info (copied), against the auth
 * service auth; NULL when mech is not one we have. conn is for the log
 * and must outlive the exchange. Free with mp_auth_sasl_free(). */
MP_API struct mp_auth_sasl *
mp_auth_sasl_new(struct mp_auth *auth, struct mp_conn *conn, const char *mech,
		 const struct mp_auth_info *info,
		 const struct mp_auth_sasl_ops *ops, void *ctx);
/* Starts the exchange with the initial response ir (len bytes as the
 * client sent it: base64, or "=" for an empty one), or without one when
 * ir is NULL. Ends in challenge() or end(), maybe later (on the pool). */
MP_API void mp_auth_sasl_start(struct mp_auth_sasl *x, const char *ir,
			       size_t len);
/* The client's answer (one line, CRLF removed) to the last challenge. */
MP_API void mp_auth_sasl_input(struct mp_auth_sasl *x, const char *line,
			       size_t len);
/* True while a password check or a lookup runs: hold the client's input. */
MP_API bool mp_auth_sasl_busy(const struct mp_auth_sasl *x);
/* The mechanism's name, upper case (static). */
MP_API const char *mp_auth_sasl_mech(const struct mp_auth_sasl *x);
/* Cancels any check in flight, wipes secrets, frees *x, sets it NULL.
 * NULL is harmless. */
MP_API void mp_auth_sasl_free(struct mp_auth_sasl **x);

#endif
