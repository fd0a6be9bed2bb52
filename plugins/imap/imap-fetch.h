/* imap-fetch.h - what the FETCH command's two files share: the command's
 * state (imap-fetch.c runs it: the set, \Seen, streaming with
 * backpressure) and its items (imap-fetch-items.c: parsing them and
 * writing one message's response). */
#ifndef IMAP_FETCH_H
#define IMAP_FETCH_H

#include <moonpost/mailstore.h>

#include "imap-private.h"
#include "imap-section.h"

/* Stored bytes sent per write of a literal: what one message body costs
 * in memory however large it is. */
#define IMAP_FETCH_CHUNK (64 * 1024)
/* Data items in one FETCH. Clients ask for about 10; this bounds the
 * per-message work a single command line can ask for. */
#define IMAP_FETCH_ITEMS_MAX 100
/* Bytes of a header read into memory for HEADER.FIELDS[.NOT]. A header
 * larger than this (there is no blank line in a huge message, say) is
 * filtered over its first IMAP_FETCH_HEADER_MAX bytes only. */
#define IMAP_FETCH_HEADER_MAX (1024 * 1024)

enum imap_fetch_kind {
	IMAP_FETCH_UID = 0,
	IMAP_FETCH_FLAGS,
	IMAP_FETCH_INTERNALDATE,
	IMAP_FETCH_SIZE,
	IMAP_FETCH_ENVELOPE,
	IMAP_FETCH_BODY,
	IMAP_FETCH_BODYSTRUCTURE,
	IMAP_FETCH_MODSEQ,
	IMAP_FETCH_SECTION, /* BODY[...], BINARY[...], RFC822... */
};

struct imap_fetch_item {
	enum imap_fetch_kind kind;
	struct imap_section sec; /* SECTION */
	/* SECTION, per message: what to send, and for DECODE plans the
	 * decoded size and whether a decoded byte is NUL. */
	struct imap_section_plan plan;
	uint64_t decoded_size;
	bool decoded_nul;
};

enum imap_fetch_lit {
	IMAP_FETCH_LIT_NONE = 0,
	IMAP_FETCH_LIT_BYTES,  /* stored bytes [pos, pos + left) */
	IMAP_FETCH_LIT_DECODE, /* through the BINARY reader */
};

/* The message whose response is being written. */
struct imap_fetch_msg {
	uint32_t uid, seq;
	struct ms_msg_list meta;
	struct mp_mime_message *mime;
	int fd;      /* the message file, or -1 */
	size_t item; /* the next item to write */
	bool sep;    /* an item was written: the next needs a space */
};

struct imap_fetch {
	struct imap_job head; /* first: s->job points here */
	bool in_pool;         /* the \Seen job runs */

	struct imap_fetch_item *items;
	size_t n;
	unsigned want; /* 1 << enum imap_fetch_kind of the items asked */
	bool need_mime;
	bool sets_seen; /* a non-PEEK body item */
	uint64_t changedsince;
	bool changedsince_on;
	bool vanished;
	struct imap_seqset asked; /* VANISHED: the UID set as given */

	/* The messages, as UID ranges, and where the walk is. */
	struct imap_seqset uids;
	size_t range;
	uint32_t next; /* 0: done */

	/* \Seen: the UIDs to set it on, and those it was set on. */
	struct ms_uid_range *unseen;
	size_t n_unseen;
	struct imap_seqset seen;
	struct ms_user *user;
	char *mbname;
	struct ms_change_list changed;
	enum ms_result result;
	struct ms_error err;

	bool expunged;    /* a message of the set is gone */
	bool unknown_cte; /* a BINARY item could not be decoded */
	bool failed;      /* a message could not be read */

	bool open; /* cur holds a message */
	struct imap_fetch_msg cur;
	enum imap_fetch_lit lit;
	uint64_t pos, left;
	bool fix_nul; /* BODY bytes: NUL goes as 0x80 */
	struct imap_binary_reader reader;
	struct mp_buf out;
};

/* --- imap-fetch-items.c ------------------------------------------------- */

/* Parses the items and modifiers of cmd into f. False after a BAD. */
bool imap_fetch_parse(struct imap_session *s, const struct imap_command *cmd,
		      struct imap_fetch *f);
/* Opens the next message of the set and writes "* n FETCH (". False when
 * there is none left. Messages that are gone or cannot be sent are
 * skipped, with f->expunged, f->unknown_cte or f->failed set. */
bool imap_fetch_message_next(struct imap_session *s, struct imap_fetch *f);
/* Writes the open message's items up to the next literal's bytes, or to
 * the end of its response (then closes it). False when reading failed
 * (*error_r). */
bool imap_fetch_items_step(struct imap_session *s, struct imap_fetch *f,
			   const char **error_r);
/* Writes the next chunk of the literal in progress. False when reading
 * failed (*error_r). */
bool imap_fetch_literal_step(struct imap_session *s, struct imap_fetch *f,
			     const char **error_r);
/* Releases the open message, if any. */
void imap_fetch_message_close(struct imap_fetch *f);

#endif
