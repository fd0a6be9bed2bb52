/* auth-throttle.c - failed-login throttling per address and per account.
 *
 * Three tables of the same shape: address buckets, account buckets and
 * known-good (account, address) pairs. Each is a chained hash table with
 * a list in order of last change, so the entry to evict when the table is
 * full is always at hand. Bucket levels are kept in thousandths of a
 * failure so that slow drains do not round away. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "auth-throttle.h"

/* One failure, in the units a bucket level is kept in. */
#define UNIT 1000
/* Account names are addresses (RFC 5321 4.5.3.1.3: 254 bytes); longer
 * keys are cut, which only merges names no account can have. */
#define KEY_MAX (16 + 256)

struct entry {
	struct entry *chain;         /* next in the hash bucket */
	struct entry *older, *newer; /* order of last change */
	uint64_t stamp;              /* ms of the last change */
	uint64_t level;              /* failures * UNIT as of stamp */
	uint64_t hash;
	size_t keylen;
	uint8_t key[];
};

struct table {
	struct entry **buckets;
	size_t n_buckets; /* a power of two */
	size_t n;
	struct entry *oldest, *newest;
};

struct mp_auth_throttle {
	struct mp_auth_throttle_limits limits;
	uint64_t k0, k1; /* SipHash key */
	struct table ips;
	struct table accounts;
	struct table good; /* key: address key, then the account */
};

/* ---- SipHash-1-3: keyed, so account names cannot be picked to collide */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void
sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = ROTL(v[1], 13) ^ v[0];
	v[0] = ROTL(v[0], 32);
	v[2] += v[3];
	v[3] = ROTL(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = ROTL(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = ROTL(v[1], 17) ^ v[2];
	v[2] = ROTL(v[2], 32);
}

static uint64_t
siphash(uint64_t k0, uint64_t k1, const uint8_t *p, size_t len)
{
	uint64_t v[4] = {k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
			 k0 ^ 0x6c7967656e657261ULL,
			 k1 ^ 0x7465646279746573ULL};
	uint64_t b = (uint64_t)len << 56, m;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&m, p + i, 8);
		v[3] ^= m;
		sip_round(v);
		v[0] ^= m;
	}
	for (size_t j = 0; i + j < len; j++)
		b |= (uint64_t)p[i + j] << (8 * j);
	v[3] ^= b;
	sip_round(v);
	v[0] ^= b;
	v[2] ^= 0xff;
	sip_round(v);
	sip_round(v);
	sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* ---- tables ---------------------------------------------------------- */

static void
table_init(struct table *tb)
{
	memset(tb, 0, sizeof(*tb));
	tb->n_buckets = 64;
	tb->buckets = mp_xcalloc(tb->n_buckets, sizeof(*tb->buckets));
}

static void
table_clear(struct table *tb)
{
	struct entry *e = tb->oldest, *next;

	for (; e != NULL; e = next) {
		next = e->newer;
		free(e);
	}
	free(tb->buckets);
	memset(tb, 0, sizeof(*tb));
}

static struct entry **
table_slot(const struct table *tb, uint64_t hash, const uint8_t *key,
	   size_t len)
{
	struct entry **p = &tb->buckets[hash & (tb->n_buckets - 1)];

	while (*p != NULL && ((*p)->hash != hash || (*p)->keylen != len ||
			      memcmp((*p)->key, key, len) != 0))
		p = &(*p)->chain;
	return p;
}

static void
order_unlink(struct table *tb, struct entry *e)
{
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		tb->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		tb->newest = e->older;
	e->older = e->newer = NULL;
}

static void
order_append(struct table *tb, struct entry *e)
{
	e->older = tb->newest;
	e->newer = NULL;
	if (tb->newest != NULL)
		tb->newest->newer = e;
	else
		tb->oldest = e;
	tb->newest = e;
}

static void
table_remove(struct table *tb, struct entry *e)
{
	struct entry **p = table_slot(tb, e->hash, e->key, e->keylen);

	*p = e->chain;
	order_unlink(tb, e);
	tb->n--;
	free(e);
}

static void
table_grow(struct table *tb)
{
	size_t n = tb->n_buckets * 2;
	struct entry **b = mp_xcalloc(n, sizeof(*b));

	for (struct entry *e = tb->oldest; e != NULL; e = e->newer) {
		e->chain = b[e->hash & (n - 1)];
		b[e->hash & (n - 1)] = e;
	}
	free(tb->buckets);
	tb->buckets = b;
	tb->n_buckets = n;
}

/* Marks e as changed at now: it becomes the last to be evicted. */
static void
table_touch(struct table *tb, struct entry *e, uint64_t now)
{
	e->stamp = now;
	order_unlink(tb, e);
	order_append(tb, e);
}

static struct entry *
table_find(const struct table *tb, uint64_t hash, const uint8_t *key,
	   size_t len)
{
	return *table_slot(tb, hash, key, len);
}

/* The entry for key, made (level 0, stamp now) when missing; the oldest
 * entry goes first when the table is full. */
static struct entry *
table_get(struct table *tb, size_t max, uint64_t hash, const uint8_t *key,
	  size_t len, uint64_t now)
{
	struct entry *e = table_find(tb, hash, key, len);

	if (e != NULL)
		return e;
	while (tb->n > 0 && tb->n >= max)
		table_remove(tb, tb->oldest);
	e = mp_xcalloc(1, sizeof(*e) + len);
	e->hash = hash;
	e->keylen = len;
	e->stamp = now;
	memcpy(e->key, key, len);
	e->chain = *table_slot(tb, hash, key, len);
	*table_slot(tb, hash, key, len) = e;
	order_append(tb, e);
	if (++tb->n > tb->n_buckets)
		table_grow(tb);
	return e;
}

/* ---- keys ------------------------------------------------------------ */

struct key {
	uint8_t b[KEY_MAX];
	size_t len;
	uint64_t hash;
};

static void
key_hash(const struct mp_auth_throttle *t, struct key *k)
{
	k->hash = siphash(t->k0, t->k1, k->b, k->len);
}

static void
key_ip(const struct mp_auth_throttle *t, const uint8_t ip[16], struct key *k)
{
	memcpy(k->b, ip, 16);
	k->len = 16;
	key_hash(t, k);
}

static void
key_account(const struct mp_auth_throttle *t, const char *account,
	    struct key *k)
{
	k->len = strnlen(account, KEY_MAX);
	memcpy(k->b, account, k->len);
	key_hash(t, k);
}

static void
key_pair(const struct mp_auth_throttle *t, const uint8_t ip[16],
	 const char *account, struct key *k)
{
	size_t n = strnlen(account, KEY_MAX - 16);

	memcpy(k->b, ip, 16);
	memcpy(k->b + 16, account, n);
	k->len = 16 + n;
	key_hash(t, k);
}

/* ---- buckets --------------------------------------------------------- */

/* The level of e at now, drained at max failures per window since its
 * stamp. Reading it changes nothing, so a client polling while throttled
 * does not stop the drain by rounding it away. */
static uint64_t
bucket_level(const struct entry *e, unsigned max, uint64_t window, uint64_t now)
{
	uint64_t elapsed = now > e->stamp ? now - e->stamp : 0;
	unsigned __int128 drain;

	if (max == 0 || window == 0 || elapsed >= window)
		return 0;
	drain = (unsigned __int128)elapsed * max * UNIT / window;
	return drain >= e->level ? 0 : e->level - (uint64_t)drain;
}

/* True when the bucket of key has no room for one more failure at now. */
static bool
bucket_full(const struct table *tb, const struct key *k, unsigned max,
	    uint64_t window, uint64_t now)
{
	const struct entry *e = table_find(tb, k->hash, k->b, k->len);

	return max > 0 && e != NULL &&
	       bucket_level(e, max, window, now) > (uint64_t)(max - 1) * UNIT;
}

/* Adds (delta > 0) or refunds (delta < 0) failures to the bucket of key. */
static void
bucket_add(struct mp_auth_throttle *t, struct table *tb, const struct key *k,
	   unsigned max, int delta, uint64_t now)
{
	uint64_t window = t->limits.window_ms;
	uint64_t cap = (uint64_t)max * UNIT;
	struct entry *e;

	if (max == 0)
		return;
	if (delta < 0) {
		/* A refund for an entry evicted meanwhile has nothing to do. */
		e = table_find(tb, k->hash, k->b, k->len);
		if (e == NULL)
			return;
		e->level = bucket_level(e, max, window, now);
		e->level = e->level > UNIT ? e->level - UNIT : 0;
	} else {
		e = table_get(tb, t->limits.max_entries, k->hash, k->b, k->len,
			      now);
		e->level = bucket_level(e, max, window, now);
		e->level = e->level + UNIT > cap ? cap : e->level + UNIT;
	}
	table_touch(tb, e, now);
}

static void
good_mark(struct mp_auth_throttle *t, const uint8_t ip[16], const char *account,
	  uint64_t now)
{
	struct key k;
	struct entry *e;

	if (t->limits.known_good_ms == 0)
		return;
	key_pair(t, ip, account, &k);
	e = table_get(&t->good, t->limits.max_entries, k.hash, k.b, k.len, now);
	table_touch(&t->good, e, now);
}

/* ---- public ---------------------------------------------------------- */

struct mp_auth_throttle *
mp_auth_throttle_new(const struct mp_auth_throttle_limits *limits,
		     const uint8_t seed[16])
{
	struct mp_auth_throttle *t = mp_xcalloc(1, sizeof(*t));

	mp_auth_throttle_set_limits(t, limits);
	memcpy(&t->k0, seed, 8);
	memcpy(&t->k1, seed + 8, 8);
	table_init(&t->ips);
	table_init(&t->accounts);
	table_init(&t->good);
	return t;
}

void
mp_auth_throttle_set_limits(struct mp_auth_throttle *t,
			    const struct mp_auth_throttle_limits *limits)
{
	t->limits = *limits;
	if (t->limits.max_entries == 0)
		t->limits.max_entries = 1;
}

bool
mp_auth_throttle_known_good(const struct mp_auth_throttle *t,
			    const uint8_t ip[16], const char *account,
			    uint64_t now)
{
	struct key k;
	const struct entry *e;

	if (t->limits.known_good_ms == 0)
		return false;
	key_pair(t, ip, account, &k);
	e = table_find(&t->good, k.hash, k.b, k.len);
	return e != NULL &&
	       (now < e->stamp || now - e->stamp < t->limits.known_good_ms);
}

enum mp_auth_throttle_verdict
mp_auth_throttle_check(const struct mp_auth_throttle *t, const uint8_t ip[16],
		       const char *account, uint64_t now)
{
	const struct mp_auth_throttle_limits *l = &t->limits;
	struct key k;

	key_ip(t, ip, &k);
	if (bucket_full(&t->ips, &k, l->max_per_ip, l->window_ms, now))
		return MP_AUTH_THROTTLE_IP;
	key_account(t, account, &k);
	if (bucket_full(&t->accounts, &k, l->max_per_account, l->window_ms,
			now) &&
	    !mp_auth_throttle_known_good(t, ip, account, now))
		return MP_AUTH_THROTTLE_ACCOUNT;
	return MP_AUTH_THROTTLE_PASS;
}

enum mp_auth_throttle_verdict
mp_auth_throttle_begin(struct mp_auth_throttle *t, const uint8_t ip[16],
		       const char *account, uint64_t now,
		       struct mp_auth_throttle_ticket *ticket_r)
{
	const struct mp_auth_throttle_limits *l = &t->limits;
	enum mp_auth_throttle_verdict v =
		mp_auth_throttle_check(t, ip, account, now);
	bool good = mp_auth_throttle_known_good(t, ip, account, now);
	struct key kip, kacc;

	memset(ticket_r, 0, sizeof(*ticket_r));
	if (v != MP_AUTH_THROTTLE_PASS)
		return v;
	key_ip(t, ip, &kip);
	key_account(t, account, &kacc);
	bucket_add(t, &t->ips, &kip, l->max_per_ip, 1, now);
	ticket_r->ip = l->max_per_ip > 0;
	/* The user mistyping at home must not lock themselves out on the
	 * road: a known-good address does not fill the account's bucket. */
	if (!good) {
		bucket_add(t, &t->accounts, &kacc, l->max_per_account, 1, now);
		ticket_r->account = l->max_per_account > 0;
	}
	return MP_AUTH_THROTTLE_PASS;
}

void
mp_auth_throttle_end(struct mp_auth_throttle *t, const uint8_t ip[16],
		     const char *account,
		     const struct mp_auth_throttle_ticket *ticket,
		     enum mp_auth_throttle_outcome outcome, uint64_t now)
{
	struct key k;

	if (outcome == MP_AUTH_THROTTLE_FAILED)
		return;
	if (ticket->ip) {
		key_ip(t, ip, &k);
		bucket_add(t, &t->ips, &k, t->limits.max_per_ip, -1, now);
	}
	if (ticket->account) {
		key_account(t, account, &k);
		bucket_add(t, &t->accounts, &k, t->limits.max_per_account, -1,
			   now);
	}
	if (outcome == MP_AUTH_THROTTLE_OK)
		good_mark(t, ip, account, now);
}

void
mp_auth_throttle_record(struct mp_auth_throttle *t, const uint8_t ip[16],
			const char *account, bool ok, uint64_t now)
{
	struct key k;

	if (ok) {
		good_mark(t, ip, account, now);
		return;
	}
	key_ip(t, ip, &k);
	bucket_add(t, &t->ips, &k, t->limits.max_per_ip, 1, now);
	if (mp_auth_throttle_known_good(t, ip, account, now))
		return;
	key_account(t, account, &k);
	bucket_add(t, &t->accounts, &k, t->limits.max_per_account, 1, now);
}

size_t
mp_auth_throttle_entries(const struct mp_auth_throttle *t)
{
	return t->ips.n + t->accounts.n + t->good.n;
}

void
mp_auth_throttle_free(struct mp_auth_throttle **tp)
{
	struct mp_auth_throttle *t = *tp;

	if (t == NULL)
		return;
	table_clear(&t->ips);
	table_clear(&t->accounts);
	table_clear(&t->good);
	free(t);
	*tp = NULL;
}
