/* imap-mbox.h - what the mailbox commands (imap-mailbox.c) and LIST
 * (imap-list.c) share: writing names and STATUS data, mailstore results
 * as response codes.
 *
 * These are pure functions of their arguments (no session), so LIST can
 * build its whole response on the thread pool. */
#ifndef IMAP_MBOX_H
#define IMAP_MBOX_H

#include <moonpost/mailstore.h>

#include "imap-parser.h"

/* STATUS items (RFC 9051 6.3.11, RFC 8438, RFC 7162 3.1.2, RFC 7889). */
enum imap_status_item {
	IMAP_ST_MESSAGES = 1 << 0,
	IMAP_ST_UIDNEXT = 1 << 1,
	IMAP_ST_UIDVALIDITY = 1 << 2,
	IMAP_ST_UNSEEN = 1 << 3,
	IMAP_ST_DELETED = 1 << 4,
	IMAP_ST_SIZE = 1 << 5,
	IMAP_ST_RECENT = 1 << 6,
	IMAP_ST_HIGHESTMODSEQ = 1 << 7,
	IMAP_ST_APPENDLIMIT = 1 << 8,
};

/* Appends a mailbox name (UTF-8, as stored) as the client reads names:
 * modified UTF-7 unless enabled (enum imap_enabled) holds UTF-8 or
 * IMAP4rev2; quoted or a literal. */
void imap_mbox_write_name(struct mp_buf *out, const char *name,
			  unsigned enabled);
/* Parses a list of STATUS items into *items_r; false when the list is
 * empty or holds an unknown item. */
bool imap_status_items_parse(const struct imap_arg *arg, unsigned *items_r);
/* Appends "* STATUS name (MESSAGES 3 ...)" CRLF. append_limit <= 0:
 * APPENDLIMIT NIL. */
void imap_status_write(struct mp_buf *out, const char *name, unsigned enabled,
		       unsigned items, const struct ms_status *st,
		       int64_t append_limit);
/* The RFC 5530 response code for a failed mailstore call. */
const char *imap_ms_code(enum ms_result r);

#endif
