/* sasl-scram.c - the SCRAM-SHA-256 server mechanism (RFC 5802, RFC 7677).
 *
 * client-first  n,,n=user,r=CNONCE        -> NEED_SECRET
 * (secret set)                            -> server-first r=CNONCE SNONCE,
 *                                            s=SALT,i=ITERATIONS
 * client-final  c=biws,r=NONCE,p=PROOF    -> SUCCESS with v=SIGNATURE
 *
 * No channel binding: we never offer SCRAM-SHA-256-PLUS, so "n" and "y"
 * are both honest flags and "p=" is refused. Names are checked with the
 * practical part of SASLprep (valid UTF-8, no controls); the password is
 * never seen here, only the stored keys. */
#include "config.h"

#include <assert.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <moonpost/base64.h>

#include "sasl-private.h"

/* Our half of the nonce: printable characters but ',' (RFC 5802 7), 30
 * of them like RFC 7677's example, about 196 random bits. */
#define SNONCE_LEN         30
#define NONCE_ALPHABET_LEN 93 /* %x21-2B / %x2D-7E */
/* A random source that keeps giving bytes we drop is broken. */
#define NONCE_MAX_ROUNDS 64

enum {
	SCRAM_START,        /* no message yet */
	SCRAM_CLIENT_FIRST, /* sent an empty challenge, want client-first */
	SCRAM_SERVER_FIRST, /* have the secret, send server-first */
	SCRAM_CLIENT_FINAL, /* sent server-first, want client-final */
};

struct sasl_scram {
	struct mp_buf gs2_header; /* what c= must encode */
	struct mp_buf client_first_bare;
	struct mp_buf server_first;
	struct mp_buf nonce; /* the client's and ours */
	struct mp_scram_secret secret;
};

/* ---- fields ------------------------------------------------------------- */

/* Takes the next comma-separated field off *rest; false past the last. */
static bool
field_next(struct mp_str *rest, struct mp_str *f)
{
	const char *comma;

	if (rest->p == NULL)
		return false;
	comma = memchr(rest->p, ',', rest->len);
	if (comma == NULL) {
		*f = *rest;
		*rest = (struct mp_str){NULL, 0};
		return true;
	}
	*f = (struct mp_str){rest->p, (size_t)(comma - rest->p)};
	rest->len -= f->len + 1;
	rest->p = comma + 1;
	return true;
}

/* True when f is name=VALUE; *value_r is VALUE, possibly empty. */
static bool
attr_is(struct mp_str f, char name, struct mp_str *value_r)
{
	if (f.len < 2 || f.p[0] != name || f.p[1] != '=')
		return false;
	*value_r = (struct mp_str){f.p + 2, f.len - 2};
	return true;
}

/* Extensions we do not know are ignored (RFC 5802 7), but must at least
 * look like attr-val = ALPHA "=" 1*value-char. */
static const char *
skip_extensions(struct mp_str rest)
{
	struct mp_str f;

	while (field_next(&rest, &f)) {
		char c = f.len > 0 ? f.p[0] : '\0';

		if (f.len < 3 || f.p[1] != '=' ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
			return "malformed attribute";
	}
	return NULL;
}

/* saslname: ',' and '=' come as "=2C" and "=3D", and any other '=' fails
 * the exchange (RFC 5802 5.1). Unescaped into out. */
static const char *
saslname_unescape(struct mp_str in, struct mp_buf *out)
{
	for (size_t i = 0; i < in.len; i++) {
		if (in.p[i] != '=') {
			mp_buf_append(out, &in.p[i], 1);
		} else if (in.len - i >= 3 && memcmp(in.p + i, "=2C", 3) == 0) {
			mp_buf_puts(out, ",");
			i += 2;
		} else if (in.len - i >= 3 && memcmp(in.p + i, "=3D", 3) == 0) {
			mp_buf_puts(out, "=");
			i += 2;
		} else {
			return "bad '=' escape in name";
		}
	}
	mp_buf_append(out, "", 0);
	return NULL;
}

/* A saslname, unescaped and checked, as a new string in *name_r. */
static const char *
take_name(const struct mp_sasl *s, struct mp_str in, char **name_r)
{
	struct mp_buf name = {0};
	const char *error = saslname_unescape(in, &name);

	if (error == NULL)
		error = sasl_name_error(s, name.data, name.len);
	if (error == NULL)
		*name_r = mp_buf_steal(&name);
	mp_buf_free(&name);
	return error;
}

/* c-nonce = 1*printable: %x21-2B / %x2D-7E. */
static bool
nonce_is_valid(struct mp_str n)
{
	for (size_t i = 0; i < n.len; i++) {
		if (n.p[i] < 0x21 || n.p[i] > 0x7e || n.p[i] == ',')
			return false;
	}
	return n.len > 0;
}

/* ---- client-first ------------------------------------------------------- */

/* gs2-header = gs2-cbind-flag "," [ authzid ] "," */
static const char *
parse_gs2_header(struct mp_sasl *s, struct mp_str *rest)
{
	struct mp_str flag, zid, value;
	const char *start = rest->p, *error;

	if (!field_next(rest, &flag) || !field_next(rest, &zid) ||
	    rest->p == NULL)
		return "bad GS2 header";
	if (flag.len > 0 && flag.p[0] == 'p')
		return "channel binding requested (no -PLUS offered)";
	if (flag.len != 1 || (flag.p[0] != 'n' && flag.p[0] != 'y'))
		return "bad GS2 channel binding flag";
	if (zid.len > 0 && !attr_is(zid, 'a', &value))
		return "bad GS2 authzid";
	if (zid.len > 0 && (error = take_name(s, value, &s->authzid)) != NULL)
		return "bad authorization identity";
	mp_buf_append(&s->scram->gs2_header, start, (size_t)(rest->p - start));
	return NULL;
}

/* client-first-message-bare = [reserved-mext ","] username "," nonce
 *                             ["," extensions] */
static const char *
parse_bare(struct mp_sasl *s, struct mp_str rest)
{
	struct mp_str f, value;
	const char *error;

	mp_buf_append(&s->scram->client_first_bare, rest.p, rest.len);
	if (!field_next(&rest, &f))
		return "no username";
	if (attr_is(f, 'm', &value))
		return "mandatory extension we do not know";
	if (!attr_is(f, 'n', &value))
		return "no username";
	if ((error = take_name(s, value, &s->username)) != NULL)
		return error;
	if (!field_next(&rest, &f) || !attr_is(f, 'r', &value))
		return "no nonce";
	if (!nonce_is_valid(value))
		return "bad client nonce";
	mp_buf_append(&s->scram->nonce, value.p, value.len);
	return skip_extensions(rest);
}

static const char *
parse_client_first(struct mp_sasl *s, const char *in, size_t len)
{
	struct mp_str rest = {in, len};
	const char *error;

	if (memchr(in, '\0', len) != NULL)
		return "NUL in message";
	if ((error = parse_gs2_header(s, &rest)) != NULL ||
	    (error = parse_bare(s, rest)) != NULL)
		return error;
	if (s->authzid != NULL && !sasl_names_equal(s->authzid, s->username))
		return "authorization identity is not the username "
		       "(no proxy authorization)";
	return NULL;
}

/* ---- server-first ------------------------------------------------------- */

/* Index i of the nonce alphabet: printable ASCII without ','. */
static char
nonce_char(unsigned i)
{
	char c = (char)(0x21 + i);

	return c >= ',' ? (char)(c + 1) : c;
}

/* Appends SNONCE_LEN random nonce characters to out. Bytes from 186 up
 * are dropped so that every character is equally likely. */
static bool
append_snonce(struct mp_sasl *s, struct mp_buf *out)
{
	const unsigned limit = 256 - 256 % NONCE_ALPHABET_LEN;
	unsigned char rnd[SNONCE_LEN];
	size_t filled = 0;

	for (unsigned round = 0; round < NONCE_MAX_ROUNDS; round++) {
		size_t want = SNONCE_LEN - filled;

		if (!s->random(s->random_ctx, rnd, want))
			return false;
		for (size_t i = 0; i < want; i++) {
			char c = nonce_char(rnd[i] % NONCE_ALPHABET_LEN);

			if (rnd[i] < limit) {
				mp_buf_append(out, &c, 1);
				filled++;
			}
		}
		if (filled == SNONCE_LEN)
			return true;
	}
	return false;
}

static enum mp_sasl_status
send_server_first(struct mp_sasl *s, struct mp_buf *out)
{
	struct sasl_scram *sc = s->scram;

	if (!append_snonce(s, &sc->nonce))
		return sasl_fail(s, "no random bytes for the nonce");
	mp_buf_printf(&sc->server_first, "r=%s,s=", sc->nonce.data);
	mp_base64_encode(sc->secret.salt, sc->secret.salt_len,
			 &sc->server_first);
	mp_buf_printf(&sc->server_first, ",i=%u", sc->secret.iterations);
	mp_buf_append(out, sc->server_first.data, sc->server_first.len);
	s->stage = SCRAM_CLIENT_FINAL;
	return MP_SASL_CHALLENGE;
}

/* ---- client-final ------------------------------------------------------- */

static bool
hmac256(const unsigned char *key, const void *data, size_t len,
	unsigned char out[MP_SCRAM_KEY_LEN])
{
	unsigned out_len = 0;

	return HMAC(EVP_sha256(), key, MP_SCRAM_KEY_LEN, data, len, out,
		    &out_len) != NULL;
}

/* c= must encode the GS2 header as sent (no channel binding data, as no
 * -PLUS), and r= must be the whole nonce. */
static const char *
check_final_fields(struct mp_sasl *s, struct mp_str rest)
{
	struct sasl_scram *sc = s->scram;
	struct mp_buf cbind = {0};
	struct mp_str f, value;
	bool same;

	if (!field_next(&rest, &f) || !attr_is(f, 'c', &value))
		return "no channel binding";
	same = mp_base64_decode(value.p, value.len, &cbind, NULL) &&
	       cbind.len == sc->gs2_header.len &&
	       memcmp(cbind.data, sc->gs2_header.data, cbind.len) == 0;
	mp_buf_free(&cbind);
	if (!same)
		return "channel binding does not match the GS2 header";
	if (!field_next(&rest, &f) || !attr_is(f, 'r', &value))
		return "no nonce";
	if (value.len != sc->nonce.len ||
	    memcmp(value.p, sc->nonce.data, value.len) != 0)
		return "nonce mismatch";
	return skip_extensions(rest);
}

/* RFC 5802 3: ClientKey = proof XOR HMAC(StoredKey, AuthMessage), and the
 * proof is right when H(ClientKey) is StoredKey. */
static bool
proof_is_right(const struct mp_scram_secret *secret, const struct mp_buf *auth,
	       const unsigned char *proof)
{
	unsigned char key[MP_SCRAM_KEY_LEN], stored[MP_SCRAM_KEY_LEN];
	bool ok = hmac256(secret->stored_key, auth->data, auth->len, key);

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] ^= proof[i];
	ok = ok && SHA256(key, sizeof(key), stored) != NULL &&
	     CRYPTO_memcmp(stored, secret->stored_key, sizeof(stored)) == 0;
	OPENSSL_cleanse(key, sizeof(key));
	return ok;
}

/* AuthMessage = client-first-message-bare "," server-first-message ","
 *               client-final-message-without-proof */
static void
auth_message(const struct sasl_scram *sc, struct mp_str without_proof,
	     struct mp_buf *auth)
{
	mp_buf_printf(auth, "%s,%s,", sc->client_first_bare.data,
		      sc->server_first.data);
	mp_buf_append(auth, without_proof.p, without_proof.len);
}

/* Checks the proof (base64) and puts v=ServerSignature into out. */
static enum mp_sasl_status
finish(struct mp_sasl *s, struct mp_str without_proof, struct mp_str proof,
       struct mp_buf *out)
{
	unsigned char signature[MP_SCRAM_KEY_LEN];
	struct mp_buf auth = {0}, raw = {0};
	enum mp_sasl_status st = MP_SASL_SUCCESS;

	if (!mp_base64_decode(proof.p, proof.len, &raw, NULL) ||
	    raw.len != MP_SCRAM_KEY_LEN) {
		mp_buf_free(&raw);
		return sasl_fail(s, "malformed proof");
	}
	auth_message(s->scram, without_proof, &auth);
	if (!proof_is_right(&s->scram->secret, &auth,
			    (const unsigned char *)raw.data))
		st = sasl_fail(s, "wrong proof (password or user)");
	else if (!hmac256(s->scram->secret.server_key, auth.data, auth.len,
			  signature))
		st = sasl_fail(s, "HMAC failed");
	if (st == MP_SASL_SUCCESS) {
		mp_buf_puts(out, "v=");
		mp_base64_encode(signature, sizeof(signature), out);
	}
	mp_buf_free(&auth);
	mp_buf_free(&raw);
	return st;
}

/* client-final-message = client-final-message-without-proof "," proof,
 * the proof last. */
static enum mp_sasl_status
client_final(struct mp_sasl *s, const char *in, size_t len, struct mp_buf *out)
{
	const char *comma = memrchr(in, ',', len), *error;
	struct mp_str without_proof, proof;

	if (memchr(in, '\0', len) != NULL)
		return sasl_fail(s, "NUL in message");
	if (comma == NULL ||
	    !attr_is((struct mp_str){comma + 1, len - (size_t)(comma + 1 - in)},
		     'p', &proof))
		return sasl_fail(s, "no proof");
	without_proof = (struct mp_str){in, (size_t)(comma - in)};
	if ((error = check_final_fields(s, without_proof)) != NULL)
		return sasl_fail(s, error);
	return finish(s, without_proof, proof, out);
}

/* ---- the mechanism ------------------------------------------------------ */

static enum mp_sasl_status
scram_step(struct mp_sasl *s, const char *in, size_t len, struct mp_buf *out)
{
	const char *error;

	if (s->scram == NULL)
		s->scram = mp_xcalloc(1, sizeof(*s->scram));
	if (s->stage == SCRAM_START && in == NULL) {
		s->stage = SCRAM_CLIENT_FIRST;
		return MP_SASL_CHALLENGE;
	}
	if (s->stage == SCRAM_SERVER_FIRST)
		return send_server_first(s, out);
	if (in == NULL)
		return sasl_fail(s, "no response");
	if (s->stage == SCRAM_CLIENT_FINAL)
		return client_final(s, in, len, out);
	if ((error = parse_client_first(s, in, len)) != NULL)
		return sasl_fail(s, error);
	s->stage = SCRAM_SERVER_FIRST;
	s->wait = WAIT_SECRET;
	return MP_SASL_NEED_SECRET;
}

const struct sasl_mech sasl_mech_scram_sha256 = {"SCRAM-SHA-256", scram_step};

/* HMAC(fake_key, label NUL username) into out. */
static void
fake_bytes(const struct mp_sasl *s, const char *label,
	   unsigned char out[MP_SCRAM_KEY_LEN])
{
	struct mp_buf data = {0};

	mp_buf_append(&data, label, strlen(label) + 1);
	mp_buf_puts(&data, s->username);
	if (!hmac256(s->fake_key, data.data, data.len, out))
		memset(out, 0xa5, MP_SCRAM_KEY_LEN); /* fails all the same */
	mp_buf_free(&data);
}

/* The same username always gets the same salt and keys, shaped like the
 * ones mp_scram_secret_new() makes, so an unknown user looks like a
 * wrong password (RFC 5802 9). Nothing matches the keys' preimage. */
static void
fake_secret(const struct mp_sasl *s, struct mp_scram_secret *secret)
{
	unsigned char salt[MP_SCRAM_KEY_LEN];

	secret->iterations = MP_SCRAM_ITERATIONS_DEFAULT;
	secret->salt_len = MP_SCRAM_SALT_LEN;
	fake_bytes(s, "salt", salt);
	memcpy(secret->salt, salt, MP_SCRAM_SALT_LEN);
	fake_bytes(s, "stored-key", secret->stored_key);
	fake_bytes(s, "server-key", secret->server_key);
}

bool
mp_sasl_set_secret(struct mp_sasl *s, const char *credential,
		   const char **error_r)
{
	bool ok = true;

	assert(s->wait == WAIT_SECRET && s->scram != NULL);
	s->wait = WAIT_SECRET_SET;
	if (credential != NULL &&
	    (ok = mp_scram_secret_parse(credential, strlen(credential),
					&s->scram->secret, error_r)))
		return true;
	fake_secret(s, &s->scram->secret);
	return ok;
}

void
sasl_scram_free(struct mp_sasl *s)
{
	struct sasl_scram *sc = s->scram;

	if (sc == NULL)
		return;
	mp_buf_free(&sc->gs2_header);
	mp_buf_free(&sc->client_first_bare);
	mp_buf_free(&sc->server_first);
	mp_buf_free(&sc->nonce);
	OPENSSL_cleanse(sc, sizeof(*sc));
	MP_FREE(s->scram);
}
