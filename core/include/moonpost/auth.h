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

#endif
