/* auth-cache.c - see auth-cache.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "auth-cache.h"

#define KEY_LEN    32
#define DIGEST_LEN 32

struct slot {
	uint8_t user[DIGEST_LEN];   /* HMAC of the account name */
	uint8_t digest[DIGEST_LEN]; /* HMAC of account, stored, password */
	uint64_t added_ms;
	bool used;
};

struct mp_auth_cache {
	uint8_t key[KEY_LEN];
	struct slot *slots;
	size_t n;
};

struct mp_auth_cache *
mp_auth_cache_new(size_t slots)
{
	struct mp_auth_cache *c = mp_xcalloc(1, sizeof(*c));

	/* A guessable key would make entries testable offline: no key, no
	 * cache. */
	if (RAND_bytes(c->key, sizeof(c->key)) != 1 &&
	    getrandom(c->key, sizeof(c->key), 0) != sizeof(c->key)) {
		free(c);
		return NULL;
	}
	c->n = slots > 0 ? slots : 1;
	c->slots = mp_xcalloc(c->n, sizeof(*c->slots));
	return c;
}

void
mp_auth_cache_free(struct mp_auth_cache **cp)
{
	struct mp_auth_cache *c = *cp;

	if (c == NULL)
		return;
	OPENSSL_cleanse(c->key, sizeof(c->key));
	OPENSSL_cleanse(c->slots, c->n * sizeof(*c->slots));
	free(c->slots);
	free(c);
	*cp = NULL;
}

/* HMAC over the strings given, each with its NUL, so that no two
 * different lists give the same input. */
static void
mac(const struct mp_auth_cache *c, const char *const *parts, size_t n,
    uint8_t out[DIGEST_LEN])
{
	struct mp_buf in = {0};
	unsigned len = DIGEST_LEN;

	for (size_t i = 0; i < n; i++)
		mp_buf_append(&in, parts[i], strlen(parts[i]) + 1);
	if (HMAC(EVP_sha256(), c->key, KEY_LEN, (const uint8_t *)in.data,
		 in.len, out, &len) == NULL)
		memset(out, 0, DIGEST_LEN); /* matches no real entry */
	OPENSSL_cleanse(in.data, in.len);
	mp_buf_free(&in);
}

static struct slot *
slot_of(struct mp_auth_cache *c, const char *user, uint8_t tag[DIGEST_LEN])
{
	const char *parts[] = {"user", user};
	uint64_t h;

	mac(c, parts, 2, tag);
	memcpy(&h, tag, sizeof(h));
	return &c->slots[h % c->n];
}

bool
mp_auth_cache_check(struct mp_auth_cache *c, const char *user,
		    const char *stored, const char *password, uint64_t now_ms,
		    uint64_t ttl_ms)
{
	const char *parts[] = {"pass", user, stored, password};
	uint8_t tag[DIGEST_LEN], digest[DIGEST_LEN];
	struct slot *s = slot_of(c, user, tag);

	if (!s->used || memcmp(s->user, tag, DIGEST_LEN) != 0)
		return false;
	if (now_ms - s->added_ms > ttl_ms) {
		s->used = false;
		return false;
	}
	mac(c, parts, 4, digest);
	return CRYPTO_memcmp(s->digest, digest, DIGEST_LEN) == 0;
}

void
mp_auth_cache_add(struct mp_auth_cache *c, const char *user,
		  const char *stored, const char *password, uint64_t now_ms)
{
	const char *parts[] = {"pass", user, stored, password};
	uint8_t tag[DIGEST_LEN];
	struct slot *s = slot_of(c, user, tag);

	memcpy(s->user, tag, DIGEST_LEN);
	mac(c, parts, 4, s->digest);
	s->added_ms = now_ms;
	s->used = true;
}

void
mp_auth_cache_forget(struct mp_auth_cache *c, const char *user)
{
	uint8_t tag[DIGEST_LEN];
	struct slot *s = slot_of(c, user, tag);

	if (s->used && memcmp(s->user, tag, DIGEST_LEN) == 0)
		s->used = false;
}
