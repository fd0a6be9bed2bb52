/* imap-thread-private.h - what the two halves of THREAD share: the set
 * of messages (imap-thread.c) and the REFERENCES algorithm over it
 * (imap-thread-refs.c). */
#ifndef IMAP_THREAD_PRIVATE_H
#define IMAP_THREAD_PRIVATE_H

#include "imap-sort.h"

#define NIL UINT32_MAX

/* A string table: open addressing, keys are bytes of a pool found by
 * offset, so the pool may move. */
struct imap_thread_slot {
	size_t off;
	uint32_t len;
	uint32_t val; /* NIL: empty */
};

struct imap_thread_map {
	struct imap_thread_slot *v;
	size_t cap, used;
};

/* The slot of key in m (keys in pool): its val is NIL when the key is
 * new, and the caller then sets off, len (the key's place in the pool)
 * and val, and counts it in used. */
struct imap_thread_slot *imap_thread_map_get(struct imap_thread_map *m,
					     const char *pool, const char *key,
					     size_t len);
void imap_thread_map_free(struct imap_thread_map *m);

struct tmsg {
	uint32_t num;
	int64_t sent;
	size_t subj_off; /* the base subject's collation key, in pool */
	uint32_t subj_len;
	bool reply;
	uint32_t id;               /* its Message-ID's number, or NIL */
	uint32_t ref_first, nrefs; /* in refs: numbers of IDs, oldest first */
};

struct imap_thread_set {
	enum imap_thread_alg alg;
	struct tmsg *v;
	size_t n, cap;
	/* Every distinct Message-ID gets a number: its slot's val. */
	struct imap_thread_map ids;
	uint32_t nids;
	size_t id_bytes;
	uint32_t *refs;
	size_t nrefs, refs_cap;
	struct mp_buf pool; /* subject keys and IDs */
	struct mp_buf scratch;
};

/* Appends the threads of REFERENCES (RFC 5256 3) over the n > 0
 * messages of set. */
void imap_thread_references(const struct imap_thread_set *set,
			    struct mp_buf *out);

#endif
