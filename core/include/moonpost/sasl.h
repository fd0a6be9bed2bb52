/* sasl.h - SASL server mechanisms: PLAIN, LOGIN and SCRAM-SHA-256.
 *
 * Pure state machines: whole client messages in, a status and bytes out.
 * No I/O, no blocking, no globals but one key (below); random bytes come
 * from the settings. The protocol layer decodes and encodes base64, turns
 * "=" into an empty initial response and "*" into a cancel (then it just
 * frees the exchange), and does the slow work asynchronously:
 *
 *   st = mp_sasl_step(s, ir, ir_len, have_ir, &out);
 *   CHALLENGE        send out; step again with the client's response.
 *   VERIFY_PASSWORD  (PLAIN, LOGIN) check mp_sasl_password() against the
 *                    account mp_sasl_username() on the thread pool, then
 *                    mp_sasl_verified(s, ok) and step again without input.
 *   NEED_SECRET      (SCRAM) look up the SCRAM secret of
 *                    mp_sasl_username() (mp_auth_lookup_credential()),
 *                    then mp_sasl_set_secret(s, credential or NULL, &err)
 *                    and step again without input.
 *   SUCCESS          authenticated as mp_sasl_username(). When out is not
 *                    empty (SCRAM's "v=..."), send it as additional data
 *                    with the success reply where the protocol has that,
 *                    else as a last challenge whose response must be empty.
 *   FAIL             mp_sasl_error() says why, for the log only: the
 *                    client gets the protocol's generic failure reply.
 *
 * An unknown user gets the same answers as a wrong password, in the same
 * shape and after the same work, so a client cannot probe for accounts. */
#ifndef MOONPOST_SASL_H
#define MOONPOST_SASL_H

#include <moonpost/common.h>

/* Before authentication a client holds our memory and CPU for free. A
 * SCRAM message is well under 1 KB with a 255-byte name and a long nonce,
 * and PLAIN's longest (two names and a password) is 1023 bytes. */
#define MP_SASL_MESSAGE_MAX 2048
/* An account name is an address, at most 254 bytes (RFC 5321 4.5.3.1.3). */
#define MP_SASL_USERNAME_MAX 255
/* The per-process key that fake SCRAM secrets are made with. */
#define MP_SASL_FAKE_KEY_LEN 32

enum mp_sasl_status {
	MP_SASL_CHALLENGE,       /* send out to the client */
	MP_SASL_VERIFY_PASSWORD, /* verify, mp_sasl_verified(), step */
	MP_SASL_NEED_SECRET,     /* look up, mp_sasl_set_secret(), step */
	MP_SASL_SUCCESS,         /* done; out may hold final server data */
	MP_SASL_FAIL,            /* done; mp_sasl_error() for the log */
};

struct mp_sasl_settings {
	/* Fills buf with len unpredictable bytes; false when it cannot.
	 * NULL: OpenSSL's RAND_bytes(). Tests inject fixed bytes here. */
	bool (*random)(void *ctx, void *buf, size_t len);
	void *random_ctx;
	/* MP_SASL_FAKE_KEY_LEN secret bytes that unknown users' fake SCRAM
	 * secrets are derived from (copied). NULL: a random key made once per
	 * process; a fake salt then changes on restart where a real one does
	 * not, so pass a persistent key to hide even that. */
	const unsigned char *fake_key;
	size_t max_message;  /* bytes per client message; 0: the default */
	size_t max_username; /* bytes; 0: MP_SASL_USERNAME_MAX */
};

struct mp_sasl;

/* A new exchange of the mechanism named mech_name (any case), or NULL when
 * it is not one we have. set may be NULL for the defaults; it is copied.
 * Free with mp_sasl_free(). */
MP_API struct mp_sasl *mp_sasl_new(const char *mech_name,
				   const struct mp_sasl_settings *set);
/* Feeds one client message (len raw bytes, already base64-decoded) when
 * have_input, or nothing: the first step without an initial response, or
 * the step after mp_sasl_verified() or mp_sasl_set_secret(). Empties out,
 * then fills it as the status says. Every status but CHALLENGE is final
 * or waits for an answer; stepping after SUCCESS or FAIL gives FAIL. */
MP_API enum mp_sasl_status mp_sasl_step(struct mp_sasl *s, const void *in,
					size_t len, bool have_input,
					struct mp_buf *out);
/* The answer to VERIFY_PASSWORD: whether the password is right for
 * mp_sasl_username(). The password is wiped from memory here. */
MP_API void mp_sasl_verified(struct mp_sasl *s, bool ok);
/* The answer to NEED_SECRET: the stored credential of mp_sasl_username(),
 * "{SCRAM-SHA-256}<iterations>,<salt>,<StoredKey>,<ServerKey>" (parsed
 * and copied), or NULL when there is no such user or no SCRAM secret.
 * Either way the exchange goes on to its end; without a usable secret it
 * runs with a fake one and fails. False, with *error_r (static) to log,
 * when the credential is malformed. */
MP_API bool mp_sasl_set_secret(struct mp_sasl *s, const char *credential,
			       const char **error_r);
/* The mechanism's name, in upper case. */
MP_API const char *mp_sasl_mech_name(const struct mp_sasl *s);
/* The authentication identity, as soon as the client has sent it: valid
 * UTF-8 without control characters, never empty. NULL before. */
MP_API const char *mp_sasl_username(const struct mp_sasl *s);
/* The authorization identity when the client sent a non-empty one, NULL
 * otherwise. It is always the username, but for ASCII case: proxy
 * authorization is refused. */
MP_API const char *mp_sasl_authzid(const struct mp_sasl *s);
/* The password to verify, while the status is VERIFY_PASSWORD; NULL at
 * any other time. No NUL inside, 1 to MP_PASSWORD_MAX bytes, the bytes the
 * client sent (no SASLprep). Never log it. */
MP_API const char *mp_sasl_password(const struct mp_sasl *s);
/* Why the exchange failed (static, no secrets in it), or NULL. */
MP_API const char *mp_sasl_error(const struct mp_sasl *s);
/* Wipes every secret, frees *s and sets it to NULL. NULL is harmless. */
MP_API void mp_sasl_free(struct mp_sasl **s);
/* The mechanisms to offer, best first, NULL-terminated and static: PLAIN
 * and LOGIN send the password itself, so only when secure (TLS, or what
 * the config counts as safe). */
MP_API const char *const *mp_sasl_mechanisms(bool secure);
/* True when mech_name (any case) is in mp_sasl_mechanisms(secure). */
MP_API bool mp_sasl_mechanism_offered(const char *mech_name, bool secure);

#endif
