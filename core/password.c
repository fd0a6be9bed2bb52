/* password.c - libxcrypt password hashes in {SCHEME}hash form. */
#include "config.h"

#include <assert.h>
#include <crypt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <openssl/crypto.h>

#include "password.h"

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

bool
mp_password_verify(const char *password, const char *stored)
{
	struct crypt_data *data;
	const char *hash, *computed;
	size_t len;
	bool ok = false;

	if (password == NULL || stored == NULL ||
	    !password_is_acceptable(password))
		return false;
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
