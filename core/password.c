/* password.c - libxcrypt password hashes in {SCHEME}hash form, SCRAM
 * secrets. */
#include "config.h"

#include <assert.h>
#include <crypt.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <moonpost/base64.h>

#include "password.h"

#define SCRAM_PREFIX "{" MP_SCRAM_SCHEME "}"

_Static_assert(
	MP_PASSWORD_MAX < CRYPT_MAX_PASSPHRASE_SIZE,
	"libxcrypt refuses passwords of CRYPT_MAX_PASSPHRASE_SIZE bytes");

struct scheme {
	const char *name;   /* as given to mp_password_hash() */
	const char *prefix; /* {NAME} in the passwd file */
	const char *crypt;  /* libxcrypt prefix of a new setting */
	const char *match;  /* what a stored hash must start with */
	unsigned long cost; /* 0: libxcrypt's default */
};

/* {BLF-CRYPT} and {SHA512-CRYPT} are Dovecot's names, so hashes from a
 * Dovecot passwd-file can be pasted in as they are. Costs aim at tens of
 * milliseconds per hash: bcrypt 10 is OpenBSD's default, and sha512-crypt's
 * default of 5000 rounds takes ~1 ms, far too cheap against a GPU. */
static const struct scheme schemes[] = {
	{"yescrypt", "{YESCRYPT}", "$y$", "$y$", 0},
	{"bcrypt", "{BLF-CRYPT}", "$2b$", "$2", 10},
	{"sha512-crypt", "{SHA512-CRYPT}", "$6$", "$6$", 100000},
};

/* Lower-case letters, upper-case letters and digits without 0/O, 1/l/I. */
static const char generate_alphabet[] =
	"23456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";

static const struct scheme *
scheme_by_name(const char *name)
{
	for (size_t i = 0; i < MP_NELEMS(schemes); i++) {
		if (strcmp(schemes[i].name, name) == 0)
			return &schemes[i];
	}
	return NULL;
}

/* Compute the hash of password with setting (a fresh salt or a stored
 * hash) into data->output; NULL when libxcrypt refuses the setting. */
static const char *
crypt_hash(const char *password, const char *setting, struct crypt_data *data)
{
	const char *out;

	memset(data, 0, sizeof(*data));
	out = crypt_rn(password, setting, data, sizeof(*data));
	/* crypt_rn() returns NULL on failure, but a failure token starts with
	 * '*' and must never be mistaken for a hash either way. */
	if (out == NULL || out[0] == '*' || out[0] == '\0')
		return NULL;
	return out;
}

static bool
password_is_acceptable(const char *password)
{
	size_t len = strnlen(password, MP_PASSWORD_MAX + 1);

	/* No account should ever accept an empty password. */
	return len > 0 && len <= MP_PASSWORD_MAX;
}

char *
mp_password_hash(const char *password, const char *scheme_name,
		 const char **error_r)
{
	const struct scheme *scheme;
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *data;
	const char *hash;
	char *result = NULL;

	scheme = scheme_by_name(scheme_name != NULL ? scheme_name : "yescrypt");
	if (scheme == NULL) {
		*error_r = "unknown password scheme "
			   "(use yescrypt, bcrypt or sha512-crypt)";
		return NULL;
	}
	if (!password_is_acceptable(password)) {
		*error_r = "password is empty or longer than 511 bytes";
		return NULL;
	}
	/* NULL rbytes: libxcrypt reads the salt from the OS RNG itself. */
	if (crypt_gensalt_rn(scheme->crypt, scheme->cost, NULL, 0, setting,
			     sizeof(setting)) == NULL) {
		*error_r = "cannot make a salt (system RNG failed?)";
		return NULL;
	}
	/* struct crypt_data is 32 KiB: too much for a thread pool's stack. */
	data = mp_xmalloc(sizeof(*data));
	hash = crypt_hash(password, setting, data);
	if (hash != NULL)
		result = mp_xasprintf("%s%s", scheme->prefix, hash);
	else
		*error_r = "libxcrypt failed to hash the password";
	explicit_bzero(data, sizeof(*data));
	free(data);
	return result;
}

/* The hash part of stored when its {SCHEME} is one we accept; NULL for an
 * unknown scheme or a hash that does not belong to its scheme. */
static const char *
stored_hash(const char *stored)
{
	if (strncasecmp(stored, "{CRYPT}", 7) == 0)
		return stored + 7;
	for (size_t i = 0; i < MP_NELEMS(schemes); i++) {
		size_t n = strlen(schemes[i].prefix);

		if (strncasecmp(stored, schemes[i].prefix, n) != 0)
			continue;
		/* {YESCRYPT}$6$... would otherwise verify, lying about how
		 * the account is protected. */
		if (strncmp(stored + n, schemes[i].match,
			    strlen(schemes[i].match)) != 0)
			return NULL;
		return stored + n;
	}
	return NULL;
}

/* True when the credential of len bytes starts with prefix, in any case. */
static bool
has_prefix(const char *cred, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && strncasecmp(cred, prefix, n) == 0;
}

/* A {CRYPT} credential or one of a libxcrypt scheme. */
static bool
is_crypt_style(const char *cred, size_t len)
{
	if (has_prefix(cred, len, "{CRYPT}"))
		return true;
	for (size_t i = 0; i < MP_NELEMS(schemes); i++) {
		if (has_prefix(cred, len, schemes[i].prefix))
			return true;
	}
	return false;
}

/* The credential of stored (one, or several separated by spaces) that
 * decides: the first crypt-style one, else the first SCRAM one. */
static bool
pick_credential(const char *stored, struct mp_str *cred_r)
{
	struct mp_str scram = {NULL, 0};
	const char *p = stored;

	while (*p != '\0') {
		size_t len = strcspn(p, " ");

		if (is_crypt_style(p, len)) {
			*cred_r = (struct mp_str){p, len};
			return true;
		}
		if (scram.p == NULL && has_prefix(p, len, SCRAM_PREFIX))
			scram = (struct mp_str){p, len};
		p += len + (p[len] == ' ');
	}
	*cred_r = scram;
	return scram.p != NULL;
}

static bool
crypt_verify(const char *password, const char *stored)
{
	struct crypt_data *data;
	const char *hash, *computed;
	size_t len;
	bool ok = false;

	hash = stored_hash(stored);
	/* "*" and "!" are the failure and locked-account markers of crypt(3)
	 * and shadow(5); an empty hash would match nothing useful. */
	if (hash == NULL || hash[0] == '\0' || hash[0] == '*' || hash[0] == '!')
		return false;
	len = strnlen(hash, CRYPT_OUTPUT_SIZE);
	if (len >= CRYPT_OUTPUT_SIZE)
		return false;
	data = mp_xmalloc(sizeof(*data));
	computed = crypt_hash(password, hash, data);
	if (computed != NULL && strlen(computed) == len)
		ok = CRYPTO_memcmp(computed, hash, len) == 0;
	explicit_bzero(data, sizeof(*data));
	free(data);
	return ok;
}

/* RFC 5802 3: the password is right when H(ClientKey) is StoredKey. */
static bool
scram_verify(const char *password, struct mp_str cred)
{
	struct mp_scram_secret stored, computed;
	const char *error;
	bool ok;

	if (!mp_scram_secret_parse(cred.p, cred.len, &stored, &error))
		return false;
	ok = mp_scram_secret_derive(password, strlen(password), stored.salt,
				    stored.salt_len, stored.iterations,
				    &computed) &&
	     CRYPTO_memcmp(computed.stored_key, stored.stored_key,
			   MP_SCRAM_KEY_LEN) == 0;
	OPENSSL_cleanse(&stored, sizeof(stored));
	OPENSSL_cleanse(&computed, sizeof(computed));
	return ok;
}

bool
mp_password_verify(const char *password, const char *stored)
{
	struct mp_str cred;
	char *one;
	bool ok;

	if (password == NULL || stored == NULL ||
	    !password_is_acceptable(password) ||
	    !pick_credential(stored, &cred))
		return false;
	if (has_prefix(cred.p, cred.len, SCRAM_PREFIX))
		return scram_verify(password, cred);
	one = mp_xstrndup(cred.p, cred.len);
	ok = crypt_verify(password, one);
	free(one);
	return ok;
}

/* Fills buf with size random bytes from the kernel. */
static bool
random_fill(unsigned char *buf, size_t size)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = getrandom(buf + done, size - done, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		done += (size_t)n;
	}
	return true;
}

bool
mp_password_generate(char *out, size_t size)
{
	const size_t n_alpha = sizeof(generate_alphabet) - 1;
	/* Bytes at or above limit are dropped so that every character is
	 * equally likely (a plain modulo would favour the first ones). */
	const unsigned limit = 256 - 256 % n_alpha;
	unsigned char rnd[64];
	size_t filled = 0;

	assert(size >= 17);
	while (filled < size - 1) {
		if (!random_fill(rnd, sizeof(rnd)))
			break;
		for (size_t i = 0; i < sizeof(rnd) && filled < size - 1; i++) {
			if (rnd[i] < limit)
				out[filled++] =
					generate_alphabet[rnd[i] % n_alpha];
		}
	}
	explicit_bzero(rnd, sizeof(rnd));
	out[filled] = '\0';
	if (filled < size - 1) {
		explicit_bzero(out, size);
		return false;
	}
	return true;
}

/* ---- SCRAM-SHA-256 secrets ---------------------------------------------- */

/* Both keys from the salted password (RFC 5802 3). */
static bool
scram_keys(const unsigned char *salted, struct mp_scram_secret *secret)
{
	unsigned char client_key[MP_SCRAM_KEY_LEN];
	unsigned len = 0;
	bool ok;

	ok = HMAC(EVP_sha256(), salted, MP_SCRAM_KEY_LEN,
		  (const unsigned char *)"Client Key", 10, client_key,
		  &len) != NULL &&
	     SHA256(client_key, sizeof(client_key), secret->stored_key) !=
		     NULL &&
	     HMAC(EVP_sha256(), salted, MP_SCRAM_KEY_LEN,
		  (const unsigned char *)"Server Key", 10, secret->server_key,
		  &len) != NULL;
	OPENSSL_cleanse(client_key, sizeof(client_key));
	return ok;
}

bool
mp_scram_secret_derive(const char *password, size_t len,
		       const unsigned char *salt, size_t salt_len,
		       unsigned iterations, struct mp_scram_secret *secret_r)
{
	unsigned char salted[MP_SCRAM_KEY_LEN];
	bool ok;

	assert(salt_len <= MP_SCRAM_SALT_MAX && iterations > 0 &&
	       iterations <= INT_MAX && len <= INT_MAX);
	memset(secret_r, 0, sizeof(*secret_r));
	secret_r->iterations = iterations;
	secret_r->salt_len = salt_len;
	memcpy(secret_r->salt, salt, salt_len);
	/* Hi() of RFC 5802 is PBKDF2 with HMAC and one block. */
	ok = PKCS5_PBKDF2_HMAC(password, (int)len, salt, (int)salt_len,
			       (int)iterations, EVP_sha256(), sizeof(salted),
			       salted) == 1 &&
	     scram_keys(salted, secret_r);
	OPENSSL_cleanse(salted, sizeof(salted));
	return ok;
}

char *
mp_scram_secret_format(const struct mp_scram_secret *secret)
{
	struct mp_buf buf = {0};

	mp_buf_printf(&buf, "%s%u,", SCRAM_PREFIX, secret->iterations);
	mp_base64_encode(secret->salt, secret->salt_len, &buf);
	mp_buf_puts(&buf, ",");
	mp_base64_encode(secret->stored_key, MP_SCRAM_KEY_LEN, &buf);
	mp_buf_puts(&buf, ",");
	mp_base64_encode(secret->server_key, MP_SCRAM_KEY_LEN, &buf);
	return mp_buf_steal(&buf);
}

char *
mp_scram_secret_new(const char *password, unsigned iterations,
		    const char **error_r)
{
	unsigned char salt[MP_SCRAM_SALT_LEN];
	struct mp_scram_secret secret;
	char *result = NULL;

	if (iterations == 0)
		iterations = MP_SCRAM_ITERATIONS_DEFAULT;
	if (iterations < MP_SCRAM_ITERATIONS_MIN ||
	    iterations > MP_SCRAM_ITERATIONS_MAX) {
		*error_r = "SCRAM iteration count out of range";
		return NULL;
	}
	if (!password_is_acceptable(password)) {
		*error_r = "password is empty or longer than 511 bytes";
		return NULL;
	}
	if (!random_fill(salt, sizeof(salt))) {
		*error_r = "cannot make a salt (system RNG failed?)";
		return NULL;
	}
	if (mp_scram_secret_derive(password, strlen(password), salt,
				   sizeof(salt), iterations, &secret))
		result = mp_scram_secret_format(&secret);
	else
		*error_r = "OpenSSL failed to compute the SCRAM keys";
	OPENSSL_cleanse(&secret, sizeof(secret));
	return result;
}

/* Decimal digits only, in range; no sign, no leading zero. */
static bool
parse_iterations(const char *p, size_t len, unsigned *iterations_r)
{
	unsigned long v = 0;

	if (len == 0 || len > 9 || p[0] == '0')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	*iterations_r = (unsigned)v;
	return v >= MP_SCRAM_ITERATIONS_MIN && v <= MP_SCRAM_ITERATIONS_MAX;
}

/* Decodes a base64 field of exactly want bytes (0: 1 to max) into out. */
static bool
parse_b64_field(const char *p, size_t len, unsigned char *out, size_t want,
		size_t max, size_t *len_r)
{
	struct mp_buf buf = {0};
	bool ok = mp_base64_decode(p, len, &buf, NULL) &&
		  (want != 0 ? buf.len == want : buf.len > 0 && buf.len <= max);

	if (ok)
		memcpy(out, buf.data, buf.len);
	if (ok && len_r != NULL)
		*len_r = buf.len;
	if (buf.data != NULL)
		OPENSSL_cleanse(buf.data, buf.len);
	mp_buf_free(&buf);
	return ok;
}

/* Splits p into exactly n fields at commas; false for another count. */
static bool
split_fields(const char *p, size_t len, struct mp_str *fields, size_t n)
{
	size_t i = 0, start = 0;

	for (size_t pos = 0; pos <= len; pos++) {
		if (pos < len && p[pos] != ',')
			continue;
		if (i == n)
			return false;
		fields[i++] = (struct mp_str){p + start, pos - start};
		start = pos + 1;
	}
	return i == n;
}

bool
mp_scram_secret_parse(const char *credential, size_t len,
		      struct mp_scram_secret *secret_r, const char **error_r)
{
	const size_t plen = strlen(SCRAM_PREFIX);
	struct mp_str f[4];

	memset(secret_r, 0, sizeof(*secret_r));
	if (!has_prefix(credential, len, SCRAM_PREFIX)) {
		*error_r = "not a {SCRAM-SHA-256} credential";
		return false;
	}
	if (!split_fields(credential + plen, len - plen, f, 4)) {
		*error_r = "expected iterations,salt,StoredKey,ServerKey";
		return false;
	}
	if (!parse_iterations(f[0].p, f[0].len, &secret_r->iterations))
		*error_r = "bad SCRAM iteration count";
	else if (!parse_b64_field(f[1].p, f[1].len, secret_r->salt, 0,
				  MP_SCRAM_SALT_MAX, &secret_r->salt_len))
		*error_r = "bad SCRAM salt";
	else if (!parse_b64_field(f[2].p, f[2].len, secret_r->stored_key,
				  MP_SCRAM_KEY_LEN, 0, NULL))
		*error_r = "bad SCRAM StoredKey";
	else if (!parse_b64_field(f[3].p, f[3].len, secret_r->server_key,
				  MP_SCRAM_KEY_LEN, 0, NULL))
		*error_r = "bad SCRAM ServerKey";
	else
		return true;
	OPENSSL_cleanse(secret_r, sizeof(*secret_r));
	return false;
}
