/* auth-cache.h - passwords verified a short while ago, so that a client
 * that logs in again (IMAP clients open several connections, POP3 clients
 * poll every few minutes) does not cost another deliberately slow hash.
 *
 * Only a keyed digest is kept: HMAC-SHA-256 under a key drawn at random
 * when the cache is made, over the account, its stored hash and the
 * password. Without the key, which never leaves the process, an entry
 * cannot be tested against guesses offline. A changed password changes
 * the stored hash, so an entry for the old one never matches again. The
 * cache is a fixed array of slots, one per account at most (a colliding
 * account takes the slot over): its memory never grows. Loop thread only. */
#ifndef MOONPOST_AUTH_CACHE_H
#define MOONPOST_AUTH_CACHE_H

#include <moonpost/common.h>

struct mp_auth_cache;

/* A cache of slots entries with a fresh random key, or NULL when no
 * random key can be had; free with mp_auth_cache_free. */
struct mp_auth_cache *mp_auth_cache_new(size_t slots);
/* Frees *c; sets it NULL. */
void mp_auth_cache_free(struct mp_auth_cache **c);
/* True when password was found right for user against stored no more
 * than ttl_ms before now_ms. */
bool mp_auth_cache_check(struct mp_auth_cache *c, const char *user,
			 const char *stored, const char *password,
			 uint64_t now_ms, uint64_t ttl_ms);
/* Remembers that password is right for user against stored. */
void mp_auth_cache_add(struct mp_auth_cache *c, const char *user,
		       const char *stored, const char *password,
		       uint64_t now_ms);
/* Forgets user (a failed attempt may mean the password changed). */
void mp_auth_cache_forget(struct mp_auth_cache *c, const char *user);

#endif
