/* deliver.h - local delivery: one message, one envelope recipient.
 *
 * The steps: resolve the recipient (aliases, subaddress, catch-all), then,
 * for each account it reaches, run the Lua `deliver` handlers and carry
 * out what they decided (keep, fileinto, discard, flags, header edits,
 * reject, redirect), appending to the mailstore. The result is final only
 * when every copy is durable. Used by the SMTP plugin after DATA and by
 * `moonpost deliver`.
 *
 * Every account gets Return-Path and Delivered-To headers. A message that
 * already carries Delivered-To for an account is a mail loop and is
 * rejected for it (as Postfix's local delivery does). */
#ifndef MOONPOST_DELIVER_H
#define MOONPOST_DELIVER_H

#include <moonpost/common.h>

struct ev_loop;
struct mp_auth;
struct mp_lua;
struct mp_pool;
struct ms_store;
struct mp_delivery;

/* What delivery needs; a server fills it from its own parts. */
struct mp_deliver_env {
	struct ev_loop *loop;
	struct mp_pool *pool;   /* mailstore writes run here */
	struct mp_lua *lua;     /* `deliver` handlers; may be NULL */
	struct mp_auth *auth;   /* recipient resolution */
	struct ms_store *store; /* where accounts' mail lives */
};

/* The message, as received. */
struct mp_deliver_msg {
	int fd; /* read with pread(2) from offset 0 */
	uint64_t size;
	const char *sender;     /* envelope sender; "" for <> */
	const char *session_id; /* for the log; may be NULL */
	/* Header lines the receiver adds (Received:, and on submission
	 * Message-ID: and Date:), CRLF-terminated, stored after Return-Path
	 * and Delivered-To and before the message; NULL for none. Rules see
	 * them as part of the header. */
	const char *prefix;
};

enum mp_deliver_status {
	MP_DELIVERED = 0,   /* durable for every account (or discarded) */
	MP_DELIVER_UNKNOWN, /* no such recipient: 550 5.1.1 */
	MP_DELIVER_REJECT,  /* refused for good (a rule, a loop) */
	MP_DELIVER_TEMPFAIL /* try again later: 451 4.3.0 and the like */
};

struct mp_deliver_result {
	enum mp_deliver_status status;
	int code;          /* SMTP code for the reply: 250, 550, 451... */
	char enhanced[16]; /* "2.0.0" */
	char text[256];    /* one line */
};

/* Called once with the outcome, on the loop thread. */
typedef void mp_deliver_done_fn(const struct mp_deliver_result *result,
				void *ctx);

/* Delivers msg to recipient. done is called exactly once unless the
 * delivery is cancelled, possibly before this returns (then NULL is
 * returned). msg and msg->fd may go once this returns: the delivery keeps
 * its own duplicate of the descriptor. */
MP_API struct mp_delivery *mp_deliver(const struct mp_deliver_env *env,
				      const struct mp_deliver_msg *msg,
				      const char *recipient,
				      mp_deliver_done_fn *done, void *ctx);
/* Abandons a delivery: done will not be called. Appends already running on
 * the pool finish (they may deliver). Sets *d NULL. */
MP_API void mp_delivery_cancel(struct mp_delivery **d);
/* The name of a status ("tempfail"); static string. */
MP_API const char *mp_deliver_status_name(enum mp_deliver_status status);

#endif
