/* password.h - password hashes in the {SCHEME}hash form of the passwd file.
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
/* True when password matches stored ("{SCHEME}hash" as written by
 * mp_password_hash, or {CRYPT} with any hash libxcrypt knows). Unknown
 * schemes and malformed hashes never match. */
MP_API bool mp_password_verify(const char *password, const char *stored);
/* Fills out (size >= 17) with a random password of size-1 characters from
 * an unambiguous alphabet. False if the system RNG fails. */
MP_API bool mp_password_generate(char *out, size_t size);

#endif
