/* mailstore-import.h - bringing mail in from, and out to, foreign Maildirs.
 *
 * An import keeps what clients already know: a mailbox can take the
 * UIDVALIDITY of the server it comes from, and messages the UIDs they had
 * there, so a client that synced with the old server goes on without
 * downloading everything again. Each imported message is remembered by a
 * key (the source file's base name), in the same transaction as its row,
 * so running an import twice, or again after a crash, adds nothing.
 *
 * The name functions translate between mailbox names (UTF-8, "/" between
 * levels) and Maildir++ storage names as Dovecot and Courier write them:
 * levels in modified UTF-7 (RFC 3501 5.1.3), '.' between them, and a '.'
 * inside a level escaped as "\2e" (Dovecot's listescape plugin). */
#ifndef MOONPOST_MAILSTORE_IMPORT_H
#define MOONPOST_MAILSTORE_IMPORT_H

#include <moonpost/mailstore.h>

struct ms_import;

/* Opens mailbox name for an import, creating it (and its parents) when
 * missing. With uidvalidity != 0 the mailbox is to keep a foreign server's
 * UIDs: an empty mailbox takes that UIDVALIDITY (its UIDs start again at 1
 * and what it expunged or imported before is forgotten) and *uids_kept_r
 * is true; a mailbox that holds messages under another UIDVALIDITY keeps
 * it, and *uids_kept_r is false. NULL with err filled on failure. Free
 * with ms_import_end or ms_import_free. Writes. */
MP_API struct ms_import *ms_import_begin(struct ms_user *u, const char *name,
					 uint32_t uidvalidity,
					 bool *uids_kept_r,
					 struct ms_error *err);
/* The mailbox's UIDNEXT and UIDVALIDITY now. */
MP_API enum ms_result ms_import_status(struct ms_import *imp,
				       uint32_t *uidnext_r,
				       uint32_t *uidvalidity_r,
				       struct ms_error *err);
/* The UID a message with key was imported as, 0 when it never was (it may
 * have been expunged since). */
MP_API enum ms_result ms_import_key_uid(struct ms_import *imp, const char *key,
					uint32_t *uid_r, struct ms_error *err);

/* One message to import. */
struct ms_import_msg {
	uint32_t uid;   /* 0: the next UID; else at least UIDNEXT */
	uint32_t flags; /* MS_FLAG_* */
	const struct mp_strlist *keywords; /* NULL: none */
	int64_t internal_date;             /* seconds; 0: now */
	const char *key;                   /* NULL: not remembered */
};

/* What ms_import_add did. */
struct ms_import_result {
	uint32_t uid;
	uint64_t size;             /* bytes stored (CRLF) */
	unsigned dropped_keywords; /* invalid, or past MS_KEYWORDS_MAX */
};

/* Reads fd from where it is to its end as one message (bare LF becomes
 * CRLF) and adds it, durable like ms_append_commit. MS_ERR_EXISTS when
 * msg->uid is below UIDNEXT or msg->key was imported before. Writes. */
MP_API enum ms_result ms_import_add(struct ms_import *imp, int fd,
				    const struct ms_import_msg *msg,
				    struct ms_import_result *res,
				    struct ms_error *err);
/* Raises UIDNEXT to at least uidnext: UIDs the old server handed out and
 * expunged must not come back under its UIDVALIDITY. Writes. */
MP_API enum ms_result ms_import_raise_uidnext(struct ms_import *imp,
					      uint32_t uidnext,
					      struct ms_error *err);
/* Ends the import. When it added messages, those below first_recent (0:
 * all of them) stop being recent (the first-recent mark only moves up, so
 * older messages may stop being recent too, and a message from cur/ above
 * first_recent stays recent). Frees *imp either way and sets it NULL.
 * Writes. */
MP_API enum ms_result ms_import_end(struct ms_import **imp,
				    uint32_t first_recent,
				    struct ms_error *err);
/* Frees an import without ending it; sets *imp NULL. */
MP_API void ms_import_free(struct ms_import **imp);

/* The mailbox name for a Maildir++ storage name whose levels are separated
 * by sep ('.' for folders, without their leading '.'), or NULL when a
 * level is not valid modified UTF-7 or decodes to a '/'. Caller frees. */
MP_API char *ms_maildir_name_decode(const char *storage, char sep);
/* The Maildir++ storage name of a mailbox name, levels joined by sep.
 * Caller frees. */
MP_API char *ms_maildir_name_encode(const char *name, char sep);

#endif
