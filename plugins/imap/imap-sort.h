/* imap-sort.h - what SORT and THREAD compute (RFC 5256, RFC 5957), with
 * no session, socket or mailstore handle: the base subject, the sort keys
 * of a message and their order, Message-ID lists, and threads built over
 * an array of messages.
 *
 * SORT, in short (the session matches with imap-search and feeds each
 * match's index row and envelope):
 *
 *   imap_sort_parse(arg, &prog, &err);          the "(REVERSE DATE ...)"
 *   set = imap_sort_set_new(&prog);
 *   for each match in sequence order: imap_sort_set_add(set, &msg);
 *   order = imap_sort_set_sort(set);            indices in answer order
 *   imap_sort_set_free(&set);
 *
 * THREAD:
 *
 *   imap_thread_alg_parse(arg, &alg);
 *   set = imap_thread_set_new(alg);
 *   for each match in sequence order: imap_thread_set_add(set, &msg);
 *   imap_thread_set_format(set, &out);          "(1)(2 3 (4)(5))"
 *   imap_thread_set_free(&set);
 *
 * Where the RFCs leave a choice we take Dovecot's:
 * - strings collate as i;unicode-casemap (RFC 5051) would, within what
 *   we know of Unicode: simple case folding for the scripts
 *   imap_search_fold() folds, canonical decomposition for the Latin-1
 *   and Latin Extended-A letters ("\xc3\x89" is "E" + U+0301), ASCII
 *   titlecase; other code points compare as they are;
 * - FROM, TO and CC compare the local part of the first address, without
 *   its quotes, under i;ascii-casemap; group markers are skipped;
 * - DISPLAYFROM and DISPLAYTO (RFC 5957 3) take the first address's
 *   display name, RFC 2047 decoded, or else "mailbox@host";
 * - a sent date (RFC 5256 2.2) comes from the Date: header, or from the
 *   internal date when it has none we can parse;
 * - ORDEREDSUBJECT puts every message without a base subject into one
 *   thread; REFERENCES gathers root threads by subject (step 5) only when
 *   the subject is not empty. Sibling sets sort by sent date, then by
 *   sequence order; ties of SORT fall back on sequence order too. */
#ifndef IMAP_SORT_H
#define IMAP_SORT_H

#include <moonpost/common.h>
#include <moonpost/mailstore.h>
#include <moonpost/mime.h>

#include "imap-parser.h"

/* Criteria in one SORT: the grammar sets no bound, but past the nine
 * keys a criterion can only repeat one, which orders nothing more. */
#define IMAP_SORT_CRITERIA_MAX 16
/* Bytes of a string key kept for comparison (after folding): bounds the
 * memory a SORT over a mailbox of huge subjects holds per message. Keys
 * alike in this many bytes compare equal. */
#define IMAP_SORT_KEY_MAX 1024
/* References kept per message for REFERENCES threading: the last ones,
 * which name its nearest ancestors. A hostile header of thousands of
 * Message-IDs costs no more than this many links. */
#define IMAP_THREAD_REFS_MAX 100
/* Bytes of one normalized Message-ID (RFC 5322 2.1.1: a line of 998);
 * longer ones are not valid IDs. */
#define IMAP_THREAD_ID_MAX 998
/* Bytes of Message-IDs one THREAD keeps in all; past it, messages lose
 * their IDs and references (they become threads of their own) rather
 * than the command its memory bound. */
#define IMAP_THREAD_ID_BYTES_MAX (64u * 1024 * 1024)
/* Ancestors walked when checking that a new link makes no loop (RFC 5256
 * 3, step 1). Messages that arrive in or against thread order need only
 * a step or two; a link whose check would climb further is not made, as
 * if it made a loop, so hostile headers cannot make the build quadratic
 * in the depth of a thread. */
#define IMAP_THREAD_CLIMB_MAX 2048

/* --- text ----------------------------------------------------------------- */

/* Appends the base subject (RFC 5256 2.1) of a raw Subject: value: RFC
 * 2047 words decoded to UTF-8, white space folded to single spaces,
 * "Re:", "Fwd:", "Fw:" leaders, "[blob]" prefixes, "(fwd)" trailers and
 * "[fwd: ...]" wrappers removed (ASCII case ignored). Returns true when it
 * removed a reply or forward marker (a subj-refwd, a "(fwd)" trailer or a
 * "[fwd: ]" wrapper), which THREAD=REFERENCES uses. Any bytes in. */
bool imap_sort_base_subject(const char *subject, size_t len,
			    struct mp_buf *out);
/* Appends the collation key of UTF-8 text: strings compare as their keys
 * compare with memcmp(), shorter first when one is a prefix of the other.
 * At most IMAP_SORT_KEY_MAX bytes are appended. */
void imap_sort_collate(const char *s, size_t len, struct mp_buf *out);
/* The sent date of a message (RFC 5256 2.2): of env's Date:, else the
 * internal date of meta; seconds since the epoch, UTC. env may be NULL. */
int64_t imap_sort_sent_date(const struct ms_msg *meta,
			    const struct mp_mime_envelope *env);

/* Sorts the n indices of v with cmp (a total order, ties broken inside
 * it) by a stable merge sort: no recursion, O(n log n) whatever the input. */
void imap_sort_indices(uint32_t *v, size_t n,
		       int (*cmp)(const void *ctx, uint32_t a, uint32_t b),
		       const void *ctx);

/* --- SORT ----------------------------------------------------------------- */

enum imap_sort_key {
	IMAP_SORT_ARRIVAL = 0,
	IMAP_SORT_CC,
	IMAP_SORT_DATE,
	IMAP_SORT_FROM,
	IMAP_SORT_SIZE,
	IMAP_SORT_SUBJECT,
	IMAP_SORT_TO,
	IMAP_SORT_DISPLAYFROM, /* RFC 5957 */
	IMAP_SORT_DISPLAYTO,
	IMAP_SORT_KEY_COUNT
};

struct imap_sort_criterion {
	enum imap_sort_key key;
	bool reverse;
};

struct imap_sort_program {
	struct imap_sort_criterion c[IMAP_SORT_CRITERIA_MAX];
	unsigned n; /* at least 1 */
};

/* Parses sort-criteria (RFC 5256 5, RFC 5957 5): a list of keys, each
 * after an optional REVERSE, any case. False with *error_r (static, for a
 * BAD) when it is no such list; *limit_r is set when it was only too long
 * ([LIMIT]). */
bool imap_sort_parse(const struct imap_arg *arg, struct imap_sort_program *prog,
		     const char **error_r, bool *limit_r);

/* One matched message as SORT sees it. */
struct imap_sort_msg {
	uint32_t num;                       /* in the answer: seq or UID */
	const struct ms_msg *meta;          /* size, internal date */
	const struct mp_mime_envelope *env; /* NULL: no header fields */
};

struct imap_sort_set;

/* An empty set for prog (copied); free it with imap_sort_set_free(). */
struct imap_sort_set *imap_sort_set_new(const struct imap_sort_program *prog);
/* Adds the next message, in sequence order: its keys are computed now,
 * so msg need not outlive the call. */
void imap_sort_set_add(struct imap_sort_set *set,
		       const struct imap_sort_msg *msg);
/* The number of messages added. */
size_t imap_sort_set_count(const struct imap_sort_set *set);
/* Sorts: returns the indices (order of addition) of the messages in the
 * order of the answer, owned by the set. */
const uint32_t *imap_sort_set_sort(struct imap_sort_set *set);
/* The num of message i (order of addition). */
uint32_t imap_sort_set_num(const struct imap_sort_set *set, uint32_t i);
/* Frees *setp and sets it to NULL; NULL is fine. */
void imap_sort_set_free(struct imap_sort_set **setp);

/* --- THREAD --------------------------------------------------------------- */

enum imap_thread_alg {
	IMAP_THREAD_ORDEREDSUBJECT = 0,
	IMAP_THREAD_REFERENCES,
};

/* Parses a thread-alg atom, any case; false for any other. */
bool imap_thread_alg_parse(const struct imap_arg *arg,
			   enum imap_thread_alg *alg_r);

/* Finds the next msg-id ("<left@right>") in s from *pos on and appends its
 * normalized form to out: quotes, quoted-pairs, comments and white space
 * removed, so <"a.b"@c> and <a.b@c> are the same ID (RFC 5256 3). Skips
 * what is no valid ID (no '@', an empty side, a bad character, over
 * IMAP_THREAD_ID_MAX). Returns false when none is left; *pos moves past
 * what was read. Any bytes in; linear in len. */
bool imap_thread_next_msgid(const char *s, size_t len, size_t *pos,
			    struct mp_buf *out);

/* One matched message as THREAD sees it: raw header values as stored in
 * the envelope (p NULL: absent). */
struct imap_thread_msg {
	uint32_t num; /* in the answer: seq or UID */
	int64_t sent; /* imap_sort_sent_date() */
	struct mp_str subject;
	struct mp_str message_id;
	struct mp_str references; /* REFERENCES only */
	struct mp_str in_reply_to;
};

struct imap_thread_set;

/* An empty set; free it with imap_thread_set_free(). */
struct imap_thread_set *imap_thread_set_new(enum imap_thread_alg alg);
/* Adds the next message, in sequence order; what it needs is copied. */
void imap_thread_set_add(struct imap_thread_set *set,
			 const struct imap_thread_msg *msg);
/* Builds the threads and appends them (RFC 5256 4: "(2)(3 6 (4 23)(44 7
 * 96))", nothing when no message was added) to out; no recursion,
 * whatever the depth of the threads. */
void imap_thread_set_format(struct imap_thread_set *set, struct mp_buf *out);
/* Frees *setp and sets it to NULL; NULL is fine. */
void imap_thread_set_free(struct imap_thread_set **setp);

#endif
