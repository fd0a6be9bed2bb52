/* imap-search.h - SEARCH and UID SEARCH: the search program, matching one
 * message against it, and the result lines.
 *
 * Three steps, none of which touches a socket or the session:
 * - imap_search_parse(): the command's arguments (imap-parser.h) into a
 *   program: RETURN options (ESEARCH RFC 4731, SAVE RFC 5182), CHARSET,
 *   every key of RFC 3501 / RFC 9051 6.4.4, MODSEQ (CONDSTORE RFC 7162
 *   3.1.5), OLDER / YOUNGER (WITHIN RFC 5032) and "$" (SEARCHRES);
 * - imap_search_match(): one message, seen through struct
 *   imap_search_msg, against the program. Keys that need only the index
 *   row are evaluated first; the MIME structure and the file are asked
 *   for only when a key still undecided needs them;
 * - imap_search_format_search() / imap_search_format_esearch(): the
 *   untagged "* SEARCH" or "* ESEARCH" line for the matched messages.
 *
 * The session, in short:
 *
 *   st = imap_search_parse(cmd->args, cmd->count, &ctx, &prog, &err);
 *   (BAD or NO with err.code / err.text unless st is OK)
 *   for each message in sequence order:
 *       r = imap_search_match(prog, &msg, &error);
 *       MATCH: keep its number (UID for UID SEARCH) and, when
 *       imap_search_uses_modseq(prog), its MODSEQ; also its UID when
 *       imap_search_save(prog); ERROR: stop, "NO" (and "$" becomes
 *       empty when SAVE was asked for, RFC 5182 2.1)
 *   imap_search_esearch(prog) ? imap_search_format_esearch(...)
 *                             : imap_search_format_search(...)
 *   imap_search_save(prog): imap_search_saved_result(prog, uids, ...)
 *   imap_search_program_free(&prog);
 *
 * Where the RFCs leave a choice we take Dovecot's:
 * - FROM, TO, CC, BCC, SUBJECT and HEADER match a substring of each field
 *   of the message's top-level header after RFC 2047 decoding, without
 *   regard to case; address fields are matched as decoded text, not as
 *   parsed addresses. HEADER name "" matches when the field is there.
 * - BODY searches the text/<any> leaf parts (those inside attached
 *   messages included) after undoing their Content-Transfer-Encoding and
 *   converting their charset to UTF-8; a charset iconv does not know is
 *   searched as raw bytes. TEXT searches the top-level header (decoded as
 *   above, one "Name: value" line per field) and then what BODY does.
 * - Case is folded for ASCII, Latin-1, Latin Extended-A/B/Additional,
 *   Greek and Cyrillic (simple case folding, one code point to one), by a
 *   table of our own: the process locale plays no part.
 * - SENTBEFORE / SENTON / SENTSINCE take the day of the Date: header in
 *   the header's own zone; a message without a Date: we can parse uses
 *   its internal date. BEFORE / ON / SINCE take the day of the internal
 *   date in the zone it was stored with. OLDER n matches messages at
 *   least n seconds old, YOUNGER n those at most n seconds old.
 * - MODSEQ's entry name and type ("/flags/\\Seen" all) are checked and
 *   ignored: the message's MODSEQ is compared, as Dovecot does.
 * - "$" matches nothing while no result is saved (Dovecot); RFC 5182 2.1
 *   has SELECT and a failed SAVE empty it, so the session may as well
 *   pass NULL until the first SAVE. */
#ifndef IMAP_SEARCH_H
#define IMAP_SEARCH_H

#include <sys/types.h>

#include <moonpost/common.h>
#include <moonpost/mailstore.h>
#include <moonpost/mime.h>

#include "imap-parser.h"
#include "imap-section.h"
#include "imap-seqset.h"

/* NOT, OR and parenthesised lists nested in one another. The command
 * parser bounds parentheses, but "NOT NOT NOT ..." and "OR OR OR ..."
 * nest without any; matching recurses this deep. */
#define IMAP_SEARCH_DEPTH_MAX 64
/* Keys in a program when the context gives none: each costs a node and
 * is evaluated for every message of the mailbox. */
#define IMAP_SEARCH_KEYS_MAX 1000
/* Bytes of a message's top-level header that header keys look at; the
 * rest of a header larger than this is not searched. Bounds the memory
 * one search holds (the mime parser keeps 2000 fields of 64 KiB). */
#define IMAP_SEARCH_HEADER_MAX (1024 * 1024)
/* Stored bytes read per call while searching a body. */
#define IMAP_SEARCH_CHUNK 8192

enum imap_search_flags {
	/* IMAP4rev2 is enabled (RFC 9051): SEARCH answers ESEARCH even
	 * without RETURN (as RETURN (ALL)). */
	IMAP_SEARCH_REV2 = 1 << 0,
	/* UTF8=ACCEPT is enabled (RFC 6855 3): a CHARSET other than UTF-8
	 * conflicts with the strings' label and is BAD. CHARSET UTF-8 is
	 * let through, as under IMAP4rev2. */
	IMAP_SEARCH_UTF8_ACCEPT = 1 << 1,
};

/* What the parse needs to know about the session and the mailbox. */
struct imap_search_context {
	uint32_t messages; /* EXISTS: '*' of sequence sets, their bound */
	/* The UID of the last message, or UIDNEXT when the mailbox is empty:
	 * '*' of UID sets (RFC 9051 9). */
	uint32_t last_uid;
	/* The saved result ("$", RFC 5182), as UIDs; NULL when there is
	 * none. Copied into the program. */
	const struct imap_seqset *saved;
	int64_t now;       /* seconds since the epoch, for OLDER/YOUNGER */
	size_t max_ranges; /* per sequence set (imap_seqset_parse); 0: none */
	unsigned keys_max; /* keys in a program; 0: IMAP_SEARCH_KEYS_MAX */
	unsigned flags;    /* enum imap_search_flags */
};

/* RETURN options (RFC 4731 3.1, RFC 5182 2). */
enum imap_search_return {
	IMAP_SEARCH_RETURN_MIN = 1 << 0,
	IMAP_SEARCH_RETURN_MAX = 1 << 1,
	IMAP_SEARCH_RETURN_ALL = 1 << 2,
	IMAP_SEARCH_RETURN_COUNT = 1 << 3,
	IMAP_SEARCH_RETURN_SAVE = 1 << 4,
};

enum imap_search_status {
	IMAP_SEARCH_OK = 0,
	IMAP_SEARCH_BAD, /* "<tag> BAD [code] text" */
	IMAP_SEARCH_NO,  /* "<tag> NO [code] text": an unknown CHARSET */
};

struct imap_search_error {
	/* Response code without brackets, or NULL: "BADCHARSET (UTF-8
	 * US-ASCII)" (RFC 9051 7.1), "LIMIT" (RFC 5530). Static. */
	const char *code;
	const char *text; /* static, printable ASCII */
};

struct imap_search_program;

/* Parses the arguments of SEARCH or UID SEARCH (args[0 .. count), what
 * follows the command name) under ctx. On OK *prog_r is a program the
 * caller frees with imap_search_program_free(); it keeps no pointer into
 * args or ctx. Otherwise *prog_r is NULL and *error_r says what to reply:
 * BAD for syntax, a sequence number above ctx->messages, a set over
 * max_ranges ([LIMIT]), too many keys or too deep ([LIMIT]); NO
 * [BADCHARSET ...] for a charset other than UTF-8 and US-ASCII. */
enum imap_search_status imap_search_parse(const struct imap_arg *args,
					  size_t count,
					  const struct imap_search_context *ctx,
					  struct imap_search_program **prog_r,
					  struct imap_search_error *error_r);
/* The same for SORT and THREAD (RFC 5256 5): args[0 .. count) is what
 * follows the sort criteria or the algorithm, "charset 1*search-key"
 * with the charset mandatory and no CHARSET keyword. ret_list is the
 * option list after SORT's RETURN (ESORT, RFC 5267 3.1), or NULL; without
 * it the program is no ESEARCH one whatever ctx->flags say. */
enum imap_search_status imap_search_parse_criteria(
	const struct imap_arg *args, size_t count,
	const struct imap_arg *ret_list, const struct imap_search_context *ctx,
	struct imap_search_program **prog_r, struct imap_search_error *error_r);
/* Frees *progp and sets it to NULL; NULL is fine. */
void imap_search_program_free(struct imap_search_program **progp);

/* The RETURN options (enum imap_search_return); 0 without RETURN. An
 * empty "RETURN ()" gives ALL; under IMAP_SEARCH_REV2 no RETURN gives ALL
 * too. */
unsigned imap_search_return_options(const struct imap_search_program *prog);
/* True when the answer is "* ESEARCH" (RETURN was given, or IMAP4rev2),
 * false for the classic "* SEARCH". */
bool imap_search_esearch(const struct imap_search_program *prog);
/* True when the session must save the result as "$" (RETURN (SAVE ...));
 * see imap_search_saved_result() for what to save. */
bool imap_search_save(const struct imap_search_program *prog);
/* True when a MODSEQ key was used: the session enables CONDSTORE (RFC
 * 7162 3.1) and passes the matched messages' MODSEQs to the formatters. */
bool imap_search_uses_modseq(const struct imap_search_program *prog);
/* True when "$" was used: the session must not start the search before
 * a command that will SAVE a new result has finished (RFC 5182 2.1). */
bool imap_search_uses_saved(const struct imap_search_program *prog);
/* True when some key needs the MIME structure or the message file; false
 * for programs matched from struct ms_msg and the recent flag alone. */
bool imap_search_needs_content(const struct imap_search_program *prog);

/* Reads the MIME structure of the message (parsed at delivery, from the
 * index): NULL with *error_r on failure. Owned by the caller of
 * imap_search_match(); it must stay valid until that returns. */
typedef const struct mp_mime_message *imap_search_mime_fn(void *ctx,
							  const char **error_r);

/* One message as the matcher sees it. */
struct imap_search_msg {
	uint32_t seq;
	const struct ms_msg *meta; /* uid, flags, keywords, size, dates */
	bool recent;               /* \Recent in this session */
	imap_search_mime_fn *mime;
	/* The stored file (CRLF), as for FETCH. */
	imap_section_read_fn *read;
	void *ctx; /* for mime and read */
};

enum imap_search_match {
	IMAP_SEARCH_NOMATCH = 0,
	IMAP_SEARCH_MATCH,
	/* A key that decides the answer could not be evaluated: the content
	 * could not be read. The session answers NO for the command. */
	IMAP_SEARCH_ERROR,
};

/* Matches msg against prog. Not reentrant on one program: it keeps
 * buffers in prog between calls, so one search uses one program at a
 * time. *error_r (static or from a callback) is set on ERROR. */
enum imap_search_match imap_search_match(struct imap_search_program *prog,
					 const struct imap_search_msg *msg,
					 const char **error_r);

/* Appends the classic response "* SEARCH 1 2 3" (no CRLF) for the count
 * matched numbers nums (UIDs for UID SEARCH, else sequence numbers),
 * ascending. When the program used MODSEQ and something matched, appends
 * " (MODSEQ n)" with the highest of modseqs (parallel to nums; may be
 * NULL otherwise), RFC 7162 3.1.5. */
void imap_search_format_search(struct mp_buf *out,
			       const struct imap_search_program *prog,
			       const uint32_t *nums, const uint64_t *modseqs,
			       size_t count);
/* The same with another response name: "* SORT 3 1 2 (MODSEQ n)" (RFC
 * 5256 4, RFC 7162 3.1.5); nums in the order given. */
void imap_search_format_numbers(struct mp_buf *out, const char *name,
				const struct imap_search_program *prog,
				const uint32_t *nums, const uint64_t *modseqs,
				size_t count);
/* Appends "* ESEARCH (TAG "a1") UID MIN 1 MAX 9 ALL 1:3,9 COUNT 4" (no
 * CRLF) for the RETURN options: MIN, MAX and ALL only when something
 * matched, COUNT always; "UID" for UID SEARCH. MIN and MAX are the first
 * and last of nums and ALL keeps their order, joining only ascending
 * runs, so a sorted nums gives ESORT's answer (RFC 5267 3.1, 3.2). With MODSEQ,
 * " MODSEQ n": the highest MODSEQ of the messages MIN and MAX name when they
 * are asked for without ALL or COUNT, else of all matched ones (RFC 4731 3.2).
 * Appends nothing and returns false when there is nothing to send (SAVE
 * was the only option: RFC 5182 2.1), else true. */
bool imap_search_format_esearch(struct mp_buf *out,
				const struct imap_search_program *prog,
				struct mp_str tag, bool uid,
				const uint32_t *nums, const uint64_t *modseqs,
				size_t count);
/* What to save as "$" (RFC 5182 2.1): given the matched UIDs (ascending),
 * fills saved (emptied first, normalized) with all of them, or with only
 * the lowest and/or highest when SAVE came with MIN and/or MAX but
 * without ALL and COUNT. */
void imap_search_saved_result(const struct imap_search_program *prog,
			      const uint32_t *uids, size_t count,
			      struct imap_seqset *saved);

/* Helpers, exposed for tests and for SORT. */

/* Parses an RFC 5322 date ("Tue, 1 Jul 2003 10:52:37 +0200", obsolete
 * forms: two- and three-digit years, zone names, comments, no day of
 * week or seconds). Gives the calendar day as written, in the header's
 * own zone, as days since 1970-01-01, and the instant in seconds since
 * the epoch. False when it is no date. */
bool imap_search_parse_rfc5322_date(const char *s, size_t len, int32_t *day_r,
				    int64_t *time_r);
/* Appends s folded for comparison: UTF-8 in, each code point replaced by
 * its simple case folding (the scripts above); bytes that are no valid
 * UTF-8 are copied. Returns the bytes of s consumed: all but an
 * incomplete UTF-8 sequence at the end, which is kept for the next call
 * when more is to come (final false). */
size_t imap_search_fold(const char *s, size_t len, bool final,
			struct mp_buf *out);

#endif
