/* auth-throttle.h - failed-login throttling per client address and per
 * account. Pure: no clock, no I/O; the caller passes the time in.
 *
 * Each address (an IPv4 address or an IPv6 /64, as mp_addr_limit_key()
 * gives it) and each account has a leaky bucket: a failed login adds one,
 * and the bucket drains by `max` over `window`, so at most `max` failures
 * per window get through in the long run and nothing is locked for ever.
 * A full address bucket refuses that address for every account. A full
 * account bucket refuses that account, except from addresses where it
 * logged in successfully within `known_good`: an attacker cannot lock the
 * real user out from the places they usually log in from.
 *
 * An attempt is charged as a failure when it begins and refunded when it
 * succeeds, so that a client cannot escape the count by hanging up while
 * its password is being checked, nor guess in parallel on many
 * connections. Every table is capped; when full, the entry changed least
 * recently goes. */
#ifndef MOONPOST_AUTH_THROTTLE_H
#define MOONPOST_AUTH_THROTTLE_H

#include <moonpost/common.h>

struct mp_auth_throttle;

struct mp_auth_throttle_limits {
	unsigned max_per_ip;      /* failures per window; 0: no limit */
	unsigned max_per_account; /* failures per window; 0: no limit */
	uint64_t window_ms;       /* the time a full bucket takes to drain */
	uint64_t known_good_ms;   /* 0: no address is ever known good */
	size_t max_entries;       /* per table (addresses, accounts, pairs) */
};

enum mp_auth_throttle_verdict {
	MP_AUTH_THROTTLE_PASS = 0, /* go on and check the password */
	MP_AUTH_THROTTLE_IP,       /* too many failures from the address */
	MP_AUTH_THROTTLE_ACCOUNT,  /* too many failures for the account */
};

enum mp_auth_throttle_outcome {
	MP_AUTH_THROTTLE_FAILED = 0, /* wrong password: the charge stays */
	MP_AUTH_THROTTLE_OK,         /* refunded; the address is known good */
	MP_AUTH_THROTTLE_NEUTRAL,    /* no verdict (tempfail): refunded */
};

/* What an attempt was charged, to be refunded by mp_auth_throttle_end(). */
struct mp_auth_throttle_ticket {
	bool ip;
	bool account;
};

/* A new throttle; seed keys the hash of the tables (pass random bytes, so
 * that nobody can pick account names that collide). Caller frees. */
struct mp_auth_throttle *
mp_auth_throttle_new(const struct mp_auth_throttle_limits *limits,
		     const uint8_t seed[16]);
/* Changes the limits (a reload); the counts already made stay. */
void mp_auth_throttle_set_limits(struct mp_auth_throttle *t,
				 const struct mp_auth_throttle_limits *limits);
/* Whether an attempt to log in as account (lower case) from ip (a limit
 * key) at now (ms, any monotonic origin) may go on; charges nothing. */
enum mp_auth_throttle_verdict
mp_auth_throttle_check(const struct mp_auth_throttle *t, const uint8_t ip[16],
		       const char *account, uint64_t now);
/* mp_auth_throttle_check(), and on PASS the attempt is charged as a
 * failure, with *ticket_r saying what to refund. */
enum mp_auth_throttle_verdict
mp_auth_throttle_begin(struct mp_auth_throttle *t, const uint8_t ip[16],
		       const char *account, uint64_t now,
		       struct mp_auth_throttle_ticket *ticket_r);
/* Settles an attempt that mp_auth_throttle_begin() let pass. */
void mp_auth_throttle_end(struct mp_auth_throttle *t, const uint8_t ip[16],
			  const char *account,
			  const struct mp_auth_throttle_ticket *ticket,
			  enum mp_auth_throttle_outcome outcome, uint64_t now);
/* Records the outcome of an attempt that was not begun here (a SCRAM
 * exchange checks its proof itself). */
void mp_auth_throttle_record(struct mp_auth_throttle *t, const uint8_t ip[16],
			     const char *account, bool ok, uint64_t now);
/* True when account logged in from ip within known_good of now. */
bool mp_auth_throttle_known_good(const struct mp_auth_throttle *t,
				 const uint8_t ip[16], const char *account,
				 uint64_t now);
/* Entries held in all tables together (for tests of the cap). */
size_t mp_auth_throttle_entries(const struct mp_auth_throttle *t);
/* Frees the throttle; sets *t NULL. */
void mp_auth_throttle_free(struct mp_auth_throttle **t);

#endif
