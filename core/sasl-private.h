/* sasl-private.h - what the SASL mechanisms share with sasl.c. */
#ifndef MOONPOST_SASL_PRIVATE_H
#define MOONPOST_SASL_PRIVATE_H

#include <moonpost/sasl.h>

#include "password.h"

/* What the exchange waits for between steps. */
enum sasl_wait {
	WAIT_NONE,       /* a client message, or nothing more */
	WAIT_VERIFY,     /* mp_sasl_verified() */
	WAIT_VERIFIED,   /* it came: step without input */
	WAIT_SECRET,     /* mp_sasl_set_secret() */
	WAIT_SECRET_SET, /* it came: step without input */
};

struct mp_sasl;
struct sasl_scram;

struct sasl_mech {
	const char *name;
	/* One step; in is NULL when the client sent nothing (it is never
	 * NULL for an empty message), and its length is checked already. */
	enum mp_sasl_status (*step)(struct mp_sasl *s, const char *in,
				    size_t len, struct mp_buf *out);
};

struct mp_sasl {
	const struct sasl_mech *mech;
	bool (*random)(void *ctx, void *buf, size_t len);
	void *random_ctx;
	unsigned char fake_key[MP_SASL_FAKE_KEY_LEN];
	size_t max_message, max_username;

	unsigned stage; /* the mechanism's own: which message is next */
	enum sasl_wait wait;
	bool verified_ok;
	bool done;
	char *username, *authzid, *password;
	const char *error;
	struct sasl_scram *scram; /* SCRAM's state, NULL for the others */
};

extern const struct sasl_mech sasl_mech_scram_sha256;

/* Records reason (static) as the error; returns MP_SASL_FAIL. */
enum mp_sasl_status sasl_fail(struct mp_sasl *s, const char *reason);
/* NULL when name (len bytes) may be a username or authzid: not empty, not
 * too long, valid UTF-8 without control characters (the part of SASLprep,
 * RFC 4013, that matters for account names); else why not. */
const char *sasl_name_error(const struct mp_sasl *s, const char *name,
			    size_t len);
/* True when a and b are equal but for ASCII case. */
bool sasl_names_equal(const char *a, const char *b);
/* Wipes and frees SCRAM's state. */
void sasl_scram_free(struct mp_sasl *s);

#endif
