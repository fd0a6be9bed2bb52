/* iplimit.c - counting open connections per client address.
 *
 * A chained hash table that grows with the number of distinct addresses and
 * drops an entry when its count returns to zero, so a scan from many
 * addresses leaves nothing behind. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "iplimit.h"

struct ip_entry {
	struct ip_entry *next;
	uint8_t key[16];
	unsigned count;
};

struct mp_iplimit {
	struct ip_entry **buckets;
	size_t n_buckets; /* a power of two */
	size_t n_entries;
};

static size_t
key_hash(const uint8_t key[16])
{
	/* FNV-1a: the keys are addresses, not attacker-chosen collisions of
	 * note; an attacker controls at most their own prefix. */
	uint64_t h = 1469598103934665603ULL;

	for (int i = 0; i < 16; i++) {
		h ^= key[i];
		h *= 1099511628211ULL;
	}
	return (size_t)(h ^ (h >> 32));
}

struct mp_iplimit *
mp_iplimit_new(void)
{
	struct mp_iplimit *t = mp_xcalloc(1, sizeof(*t));

	t->n_buckets = 256;
	t->buckets = mp_xcalloc(t->n_buckets, sizeof(*t->buckets));
	return t;
}

static struct ip_entry **
find_slot(const struct mp_iplimit *t, const uint8_t key[16])
{
	struct ip_entry **p = &t->buckets[key_hash(key) & (t->n_buckets - 1)];

	while (*p != NULL && memcmp((*p)->key, key, 16) != 0)
		p = &(*p)->next;
	return p;
}

static void
grow(struct mp_iplimit *t)
{
	size_t n = t->n_buckets * 2;
	struct ip_entry **b = mp_xcalloc(n, sizeof(*b));

	for (size_t i = 0; i < t->n_buckets; i++) {
		struct ip_entry *e = t->buckets[i], *next;
		for (; e != NULL; e = next) {
			size_t h = key_hash(e->key) & (n - 1);
			next = e->next;
			e->next = b[h];
			b[h] = e;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->n_buckets = n;
}

bool
mp_iplimit_acquire(struct mp_iplimit *t, const uint8_t key[16], unsigned max)
{
	struct ip_entry **slot = find_slot(t, key);

	if (*slot != NULL) {
		if ((*slot)->count >= max)
			return false;
		(*slot)->count++;
		return true;
	}
	if (max == 0)
		return false;
	*slot = mp_xcalloc(1, sizeof(**slot));
	memcpy((*slot)->key, key, 16);
	(*slot)->count = 1;
	if (++t->n_entries > t->n_buckets * 2)
		grow(t);
	return true;
}

void
mp_iplimit_release(struct mp_iplimit *t, const uint8_t key[16])
{
	struct ip_entry **slot = find_slot(t, key);
	struct ip_entry *e = *slot;

	if (e == NULL)
		return;
	if (--e->count == 0) {
		*slot = e->next;
		free(e);
		t->n_entries--;
	}
}

unsigned
mp_iplimit_count(const struct mp_iplimit *t, const uint8_t key[16])
{
	struct ip_entry *e = *find_slot(t, key);

	return e != NULL ? e->count : 0;
}

void
mp_iplimit_free(struct mp_iplimit **tp)
{
	struct mp_iplimit *t = *tp;

	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n_buckets; i++) {
		struct ip_entry *e = t->buckets[i], *next;
		for (; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(t->buckets);
	free(t);
	*tp = NULL;
}
