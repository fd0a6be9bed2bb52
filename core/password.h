/* password.h - password hashes in the {SCHEME}hash form of the passwd file,
 * and SCRAM-SHA-256 secrets.
 *
 * Hashing is slow on purpose (tens of ms): on the server, call these from the
 * thread pool, never on the loop thread. */
#ifndef MOONPOST_PASSWORD_H
#define MOONPOST_PASSWORD_H

#include <moonpost/common.h>

/* The longest password accepted, in bytes: libxcrypt refuses longer ones
 * (CRYPT_MAX_PASSPHRASE_SIZE - 1). Empty passwords are refused too. */
#define MP_PASSWORD_MAX 511

/* Hashes password with scheme ("yescrypt", "bcrypt", "sha512-crypt"; NULL
 * means yescrypt) and a fresh random salt. Returns "{YESCRYPT}$y$..." etc.
 * (caller frees), or NULL with *error_r (static) set. */
MP_API char *mp_password_hash(const char *password, const char *scheme,
			      const char **error_r);
/* True when password matches stored: one credential ("{SCHEME}hash" as
 * written by mp_password_hash(), {CRYPT} with any hash libxcrypt knows, or
 * a {SCRAM-SHA-256} secret) or several separated by spaces, as the passwd
 * file holds them. Of several, the first crypt-style one decides, or the
 * first {SCRAM-SHA-256} one when there is none; others are not tried, so
 * one weak credential cannot stand in for a strong one. Unknown schemes and
 * malformed hashes never match. */
MP_API bool mp_password_verify(const char *password, const char *stored);
/* Fills out (size >= 17) with a random password of size-1 characters from
 * an unambiguous alphabet. False if the system RNG fails. */
MP_API bool mp_password_generate(char *out, size_t size);

/* SCRAM-SHA-256 (RFC 5802 3, RFC 7677) secrets in Dovecot's form, so that
 * a Dovecot passwd-file line can be pasted in and `doveadm pw -s
 * SCRAM-SHA-256` output works:
 *   {SCRAM-SHA-256}<iterations>,<salt>,<StoredKey>,<ServerKey>
 * with the salt and both keys in base64. The password is used as the UTF-8
 * bytes given, without SASLprep (RFC 4013) normalisation, as Dovecot does:
 * ASCII passwords, the vast majority, are unchanged by SASLprep anyway. */
#define MP_SCRAM_SCHEME  "SCRAM-SHA-256"
#define MP_SCRAM_KEY_LEN 32 /* SHA-256 output */
/* Our salts: 16 random bytes, as Dovecot makes them. */
#define MP_SCRAM_SALT_LEN 16
/* Other tools may use longer salts; past this it is not a salt. */
#define MP_SCRAM_SALT_MAX 64
/* RFC 7677 4 asks for at least 4096; Dovecot refuses less too. */
#define MP_SCRAM_ITERATIONS_DEFAULT 4096
#define MP_SCRAM_ITERATIONS_MIN     4096
/* Each login costs the client this many HMACs, and a PLAIN login against
 * a SCRAM-only account costs us as many on the thread pool: a larger count
 * is a typo or a way to stall the pool (about 5 s per login here). */
#define MP_SCRAM_ITERATIONS_MAX 10000000

struct mp_scram_secret {
	unsigned iterations;
	size_t salt_len;
	unsigned char salt[MP_SCRAM_SALT_MAX];
	unsigned char stored_key[MP_SCRAM_KEY_LEN];
	unsigned char server_key[MP_SCRAM_KEY_LEN];
};

/* A new "{SCRAM-SHA-256}..." secret for password with a fresh random salt
 * and iterations (0: MP_SCRAM_ITERATIONS_DEFAULT). Caller frees; NULL with
 * *error_r (static) for an unacceptable password or iteration count, or
 * when the system RNG fails. */
MP_API char *mp_scram_secret_new(const char *password, unsigned iterations,
				 const char **error_r);
/* Computes the keys of password (len bytes) with salt and iterations into
 * secret_r (RFC 5802 3). False only when OpenSSL fails. The caller wipes
 * secret_r when done. */
MP_API bool mp_scram_secret_derive(const char *password, size_t len,
				   const unsigned char *salt, size_t salt_len,
				   unsigned iterations,
				   struct mp_scram_secret *secret_r);
/* The "{SCRAM-SHA-256}..." form of secret; caller frees. */
MP_API char *mp_scram_secret_format(const struct mp_scram_secret *secret);
/* Parses the credential "{SCRAM-SHA-256}..." (len bytes, scheme in any
 * case) into secret_r. False with *error_r (static) when it is malformed.
 * The caller wipes secret_r when done. */
MP_API bool mp_scram_secret_parse(const char *credential, size_t len,
				  struct mp_scram_secret *secret_r,
				  const char **error_r);

#endif
