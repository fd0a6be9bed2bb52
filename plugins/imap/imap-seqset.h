/* imap-seqset.h - IMAP sequence sets: parsing, resolving '*', formatting.
 *
 * sequence-set (RFC 9051 9): "1:5,7,9:*", or "$" (SEARCHRES, RFC 5182).
 * A parsed set is a sorted array of disjoint, non-adjacent ranges ("1:3,4"
 * becomes 1:4), with '*' replaced by the largest number in use:
 *
 *   message sequence numbers: the number of messages. A number above it is
 *   an error (RFC 9051 9, seq-number: "tagged BAD ... a message sequence
 *   number greater than the number of messages"), "*" in an empty mailbox
 *   included;
 *   UIDs: the UID of the last message, or UIDNEXT for an empty mailbox
 *   (RFC 9051 9). Numbers above it are kept (they match nothing), and a
 *   range that ends in '*' always holds the last UID: "559:*" with the last
 *   UID 500 is 500:559 (RFC 9051 6.4.9).
 *
 * Ranges may be given either way round ("5:2" is 2:5). "$" is accepted only
 * as the whole set, as Dovecot does: the set is then empty with saved set,
 * and the session substitutes the result it saved. */
#ifndef IMAP_SEQSET_H
#define IMAP_SEQSET_H

#include <moonpost/common.h>

struct imap_range {
	uint32_t lo, hi; /* lo <= hi, both >= 1 */
};

struct imap_seqset {
	struct imap_range *ranges; /* owned; sorted, merged */
	size_t count;
	size_t cap;
	bool saved; /* "$": the saved search result (RFC 5182) */
};

enum imap_seqset_kind {
	IMAP_SEQSET_SEQ = 0, /* message sequence numbers */
	IMAP_SEQSET_UID,     /* UIDs */
};

enum imap_seqset_status {
	IMAP_SEQSET_OK = 0,
	IMAP_SEQSET_SYNTAX, /* not a sequence-set (0, overflow, "1,,2") */
	IMAP_SEQSET_RANGE,  /* a sequence number above the message count */
	IMAP_SEQSET_LIMIT,  /* more than max_ranges elements: [LIMIT] */
};

/* Parses len bytes of s into set (emptied first, memory kept). max is the
 * value of '*' (see above); max_ranges bounds the elements as sent, before
 * merging (0: no bound). On failure *error_r (static, for a BAD reply) says
 * why and set is empty. */
enum imap_seqset_status
imap_seqset_parse(struct imap_seqset *set, const char *s, size_t len,
		  uint32_t max, enum imap_seqset_kind kind, size_t max_ranges,
		  const char **error_r);
/* Frees the ranges; the set is empty and reusable. */
void imap_seqset_free(struct imap_seqset *set);

/* Adds lo:hi (either order, both >= 1) at the end, unsorted: call
 * imap_seqset_normalize() after a batch. */
void imap_seqset_add(struct imap_seqset *set, uint32_t lo, uint32_t hi);
/* Sorts and merges overlapping and adjacent ranges. */
void imap_seqset_normalize(struct imap_seqset *set);
/* True when n is in the (normalized) set. */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n);
/* How many numbers the (normalized) set holds. */
uint64_t imap_seqset_count(const struct imap_seqset *set);

/* Appends "1:5,7" for n ranges as they are (not re-sorted); nothing when
 * n is 0. For ESEARCH ALL and VANISHED (RFC 7162 3.2.10). */
void imap_seqset_format(struct mp_buf *out, const struct imap_range *ranges,
			size_t n);
/* Appends n numbers in their order, runs of consecutive ascending numbers
 * joined ("3,4,5,9" gives "3:5,9"): the order matters for COPYUID, whose
 * two sets are matched up element by element (RFC 4315 3). */
void imap_seqset_format_numbers(struct mp_buf *out, const uint32_t *nums,
				size_t n);

#endif
