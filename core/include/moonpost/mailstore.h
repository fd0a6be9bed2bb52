/* mailstore.h - accounts' mail: Maildir++ bodies, an SQLite index.
 *
 * Per account, <root>/<domain>/<localpart>/ holds a Maildir++ tree (INBOX in
 * cur/ new/ tmp/, "Foo/Bar" in .Foo.Bar/) and index.sqlite, the authority
 * for everything but the bodies: mailboxes, UIDs, flags, keywords, MODSEQs,
 * sizes, dates and the MIME structure parsed once at append.
 *
 * Message files are stored with CRLF line ends, exactly the bytes IMAP and
 * POP3 send: sizes are RFC822.SIZE and part offsets are direct reads.
 *
 * Durability: a message is written to tmp/, fsynced, renamed into cur/, the
 * directory fsynced, and only then is the index row committed; commit
 * returns after all of that. A file without an index row (a crash between
 * rename and commit, or a file another program dropped into new/) is adopted
 * when its mailbox is next opened. Expunge commits before it unlinks.
 *
 * Threads: every function blocks. Functions marked "writes" fsync; a server
 * calls them from the thread pool, never on the loop thread. Reads (listing,
 * metadata, opening a message file) are cheap local-file work and may run
 * on the loop. One struct ms_user may be used from several threads at once;
 * concurrent processes (a second daemon, `moonpost deliver`) are safe too:
 * UIDs are allocated inside SQLite write transactions and never repeat. */
#ifndef MOONPOST_MAILSTORE_H
#define MOONPOST_MAILSTORE_H

#include <moonpost/common.h>

struct ev_loop;
struct mp_mime_message;
struct ms_store;
struct ms_user;
struct ms_mailbox;
struct ms_append;
struct ms_watch;

/* System flags, as stored. \Recent is a session matter (see recent). */
#define MS_FLAG_SEEN     (1u << 0)
#define MS_FLAG_ANSWERED (1u << 1)
#define MS_FLAG_FLAGGED  (1u << 2)
#define MS_FLAG_DELETED  (1u << 3)
#define MS_FLAG_DRAFT    (1u << 4)
#define MS_FLAGS_ALL     0x1fu

/* RFC 6154 special-use attributes. */
#define MS_SPECIAL_ALL     (1u << 0)
#define MS_SPECIAL_ARCHIVE (1u << 1)
#define MS_SPECIAL_DRAFTS  (1u << 2)
#define MS_SPECIAL_FLAGGED (1u << 3)
#define MS_SPECIAL_JUNK    (1u << 4)
#define MS_SPECIAL_SENT    (1u << 5)
#define MS_SPECIAL_TRASH   (1u << 6)

/* Bounds on what clients may create (IMAP turns these into [LIMIT]). */
#define MS_MAILBOX_NAME_MAX  255  /* bytes of UTF-8, separators included */
#define MS_MAILBOX_DEPTH_MAX 16   /* levels of "a/b/c" */
#define MS_MAILBOXES_MAX     2000 /* per account */
#define MS_KEYWORD_MAX       64   /* bytes of one keyword */
#define MS_KEYWORDS_MAX      64   /* keywords on one message */

enum ms_result {
	MS_OK = 0,
	MS_ERR_NOT_FOUND,   /* no such mailbox or message: [NONEXISTENT] */
	MS_ERR_EXISTS,      /* the name is taken: [ALREADYEXISTS] */
	MS_ERR_BAD_NAME,    /* not a valid mailbox name or keyword */
	MS_ERR_NOT_ALLOWED, /* e.g. deleting INBOX: [CANNOT] */
	MS_ERR_OVER_QUOTA,  /* [OVERQUOTA] */
	MS_ERR_LIMIT,       /* a bound above was hit: [LIMIT] */
	MS_ERR_MODIFIED,    /* CONDSTORE: changed since UNCHANGEDSINCE */
	MS_ERR_TEMP,        /* I/O error, disk full, lock timeout: retry */
};

/* What went wrong, for logs and protocol replies; filled by the callee. */
struct ms_error {
	enum ms_result code;
	char text[200];
};

struct ms_store_settings {
	const char *root;        /* accounts live under here */
	uint64_t quota_bytes;    /* per account; 0 = none */
	uint64_t quota_messages; /* per account; 0 = none */
	/* Loop that change notifications are delivered on; NULL (tools):
	 * no notifications. */
	struct ev_loop *loop;
	/* Accounts kept open while nobody uses them, so the next delivery or
	 * login finds its index ready; 0: the default (128). */
	size_t max_idle_accounts;
};

/* --- store and accounts ------------------------------------------------- */

/* Opens the store rooted at set->root (created if missing). NULL with err
 * filled on failure. The caller owns it. */
MP_API struct ms_store *ms_store_new(const struct ms_store_settings *set,
				     struct ms_error *err);
/* Changes the per-account quota (a config reload); checks that start
 * afterwards use it. */
MP_API void ms_store_set_quota(struct ms_store *store, uint64_t bytes,
			       uint64_t messages);
/* Frees the store; every account handle must be released first. */
MP_API void ms_store_free(struct ms_store **store);
/* Opens an account by address (lower-cased), creating its directory, index
 * and default mailboxes (INBOX, Sent, Drafts, Trash, Junk, Archive) on first
 * use. Handles are shared: opening an open account adds a reference. Writes
 * on first use. NULL with err filled on failure; release with
 * ms_user_unref. */
MP_API struct ms_user *ms_user_open(struct ms_store *store, const char *address,
				    struct ms_error *err);
/* Adds a reference; returns u. */
MP_API struct ms_user *ms_user_ref(struct ms_user *u);
/* Drops a reference; sets *u NULL. The account stays open, idle, until
 * other accounts push it out or the store is freed: this never blocks. */
MP_API void ms_user_unref(struct ms_user **u);
/* The account's address; owned by the handle. */
MP_API const char *ms_user_address(const struct ms_user *u);
/* The account's directory; owned by the handle. */
MP_API const char *ms_user_dir(const struct ms_user *u);

/* --- mailboxes ---------------------------------------------------------- */

struct ms_mailbox_info {
	char *name;           /* UTF-8, "/" between levels; "INBOX" */
	unsigned special_use; /* MS_SPECIAL_* */
	bool subscribed;
	bool noselect; /* a deleted parent that still has children */
	bool has_children;
};

struct ms_mailbox_list {
	struct ms_mailbox_info *v;
	size_t n;
};

/* Every mailbox of the account, sorted by name (INBOX first). */
MP_API enum ms_result ms_mailbox_list(struct ms_user *u,
				      struct ms_mailbox_list *out,
				      struct ms_error *err);
/* Frees a list filled by ms_mailbox_list. */
MP_API void ms_mailbox_list_free(struct ms_mailbox_list *list);
/* Creates name (and missing parents, as \Noselect-free plain mailboxes).
 * Writes. */
MP_API enum ms_result ms_mailbox_create(struct ms_user *u, const char *name,
					unsigned special_use,
					struct ms_error *err);
/* Deletes name and its messages. A mailbox with children becomes
 * \Noselect instead (RFC 3501 6.3.4). INBOX cannot be deleted. Writes. */
MP_API enum ms_result ms_mailbox_delete(struct ms_user *u, const char *name,
					struct ms_error *err);
/* Renames a mailbox and its children. Renaming INBOX moves its messages
 * into a new mailbox and leaves INBOX empty (RFC 3501 6.3.5). Writes. */
MP_API enum ms_result ms_mailbox_rename(struct ms_user *u, const char *from,
					const char *to, struct ms_error *err);
/* Adds or removes a subscription (the name need not exist). Writes. */
MP_API enum ms_result ms_mailbox_subscribe(struct ms_user *u, const char *name,
					   bool subscribe,
					   struct ms_error *err);
/* Subscribed names, sorted; out is filled (caller frees with
 * mp_strlist_free). */
MP_API enum ms_result ms_subscriptions(struct ms_user *u,
				       struct mp_strlist *out,
				       struct ms_error *err);

struct ms_status {
	uint32_t messages;
	uint32_t unseen;
	uint32_t recent; /* UIDs at or above the first-recent mark */
	uint32_t deleted;
	uint32_t uidnext;
	uint32_t uidvalidity;
	uint64_t size; /* bytes, as RFC822.SIZE adds up */
	uint64_t highestmodseq;
};

/* A mailbox's counters, without opening it. */
MP_API enum ms_result ms_mailbox_status(struct ms_user *u, const char *name,
					struct ms_status *st,
					struct ms_error *err);

/* --- an open mailbox ---------------------------------------------------- */

/* Opens a mailbox for reading and changing messages, first adopting files
 * that have no index row yet (which may write). NULL with err filled. */
MP_API struct ms_mailbox *ms_mailbox_open(struct ms_user *u, const char *name,
					  struct ms_error *err);
/* Releases a handle; sets *mb NULL. */
MP_API void ms_mailbox_close(struct ms_mailbox **mb);
/* The mailbox's name (as opened); owned by the handle. */
MP_API const char *ms_mailbox_name(const struct ms_mailbox *mb);
/* Its UIDVALIDITY, fixed for the mailbox's life. */
MP_API uint32_t ms_mailbox_uidvalidity(const struct ms_mailbox *mb);
/* Current counters of an open mailbox. */
MP_API enum ms_result ms_mailbox_get_status(struct ms_mailbox *mb,
					    struct ms_status *st,
					    struct ms_error *err);
/* Marks everything now in the mailbox as no longer recent and returns the
 * first UID that was recent, or 0 when none was (IMAP rev1 \Recent: the
 * first session to select sees them). Writes when something was recent
 * (cheap: no fsync of bodies). */
MP_API enum ms_result ms_mailbox_take_recent(struct ms_mailbox *mb,
					     uint32_t *first_recent_r,
					     struct ms_error *err);

/* One message's per-message state. */
struct ms_msg {
	uint32_t uid;
	uint32_t flags; /* MS_FLAG_* */
	uint64_t modseq;
	uint64_t size;         /* bytes of the stored file: RFC822.SIZE */
	int64_t internal_date; /* seconds since the epoch */
	int16_t tz_minutes;    /* the zone INTERNALDATE is shown in */
	const char *keywords;  /* space-separated, sorted; "" for none */
};

struct ms_msg_list {
	struct ms_msg *v;
	size_t n;
	char *strings; /* keywords of all entries */
};

/* A set of UIDs as sorted, non-overlapping, inclusive ranges. */
struct ms_uid_range {
	uint32_t lo, hi;
};
struct ms_uidset {
	const struct ms_uid_range *v;
	size_t n;
};

/* Messages with uid in set (NULL: all), in UID order. For SELECT, POP3's
 * snapshot and FETCH FLAGS. */
MP_API enum ms_result ms_mailbox_messages(struct ms_mailbox *mb,
					  const struct ms_uidset *set,
					  struct ms_msg_list *out,
					  struct ms_error *err);
/* Frees a list. */
MP_API void ms_msg_list_free(struct ms_msg_list *list);

/* One message's metadata (meta gets one entry; free it with
 * ms_msg_list_free) and, when mime_r is not NULL, its MIME structure (owned
 * by the caller: mp_mime_message_free). MS_ERR_NOT_FOUND when there is no
 * such UID (any more). */
MP_API enum ms_result ms_message_get(struct ms_mailbox *mb, uint32_t uid,
				     struct ms_msg_list *meta,
				     struct mp_mime_message **mime_r,
				     struct ms_error *err);
/* Opens the message file read-only; returns an fd the caller closes, or -1
 * with err filled. */
MP_API int ms_message_open(struct ms_mailbox *mb, uint32_t uid,
			   struct ms_error *err);

/* --- changing messages -------------------------------------------------- */

enum ms_flag_mode {
	MS_FLAGS_ADD,
	MS_FLAGS_REMOVE,
	MS_FLAGS_REPLACE,
};

/* What a change did, for the session that made it (its own FETCH
 * responses) and for COPYUID/APPENDUID. */
struct ms_change_list {
	struct ms_msg_list msgs; /* changed messages, new state */
	uint32_t *uids;          /* expunged UIDs, or the UIDs a copy made */
	size_t n_uids;
	uint32_t *src_uids; /* copy: the source of each of uids */
	uint64_t modseq;    /* the MODSEQ the change committed at */
};

/* Frees what a change list holds. */
MP_API void ms_change_list_free(struct ms_change_list *c);

/* Changes flags and keywords of the messages in set; each message actually
 * changed gets a new MODSEQ. With unchangedsince > 0 (CONDSTORE), messages
 * whose MODSEQ is higher are left alone and listed in *modified (caller
 * frees with ms_change_list_free). Writes. */
MP_API enum ms_result
ms_message_store(struct ms_mailbox *mb, const struct ms_uidset *set,
		 enum ms_flag_mode mode, uint32_t flags,
		 const struct mp_strlist *keywords, uint64_t unchangedsince,
		 struct ms_change_list *changed,
		 struct ms_change_list *modified, struct ms_error *err);
/* Copies (or, with move, moves atomically) the messages in set to the
 * mailbox named dest, keeping flags, keywords and dates. Files are
 * hard-linked, not copied. out->uids/src_uids give the new UIDs (COPYUID);
 * *dest_uidvalidity_r the destination's UIDVALIDITY. Writes. */
MP_API enum ms_result
ms_message_copy(struct ms_mailbox *mb, const struct ms_uidset *set,
		const char *dest, bool move, struct ms_change_list *out,
		uint32_t *dest_uidvalidity_r, struct ms_error *err);
/* Expunges the messages in set that have \Deleted (set NULL: all of them);
 * out->uids lists what went. The index commits first, then the files are
 * unlinked. Writes. */
MP_API enum ms_result ms_message_expunge(struct ms_mailbox *mb,
					 const struct ms_uidset *set,
					 struct ms_change_list *out,
					 struct ms_error *err);
/* Changes since modseq: messages whose MODSEQ is higher (out->msgs),
 * UIDs expunged at a higher MODSEQ (out->uids) and the mailbox's
 * HIGHESTMODSEQ in the same snapshot (out->modseq). For IDLE, NOOP,
 * QRESYNC. */
MP_API enum ms_result ms_mailbox_changes(struct ms_mailbox *mb, uint64_t modseq,
					 struct ms_change_list *out,
					 struct ms_error *err);

/* --- appending ---------------------------------------------------------- */

/* Starts a message for mailbox: a file in tmp/. NULL with err filled (the
 * mailbox does not exist: MS_ERR_NOT_FOUND, which IMAP answers with
 * [TRYCREATE]). */
MP_API struct ms_append *ms_append_begin(struct ms_user *u, const char *mailbox,
					 struct ms_error *err);
/* Adds bytes of the message. Bare LF becomes CRLF; the MIME structure is
 * parsed as the bytes go by. */
MP_API enum ms_result ms_append_write(struct ms_append *a, const void *data,
				      size_t len, struct ms_error *err);
/* Sets flags, keywords (may be NULL) and the internal date (0: now). */
MP_API enum ms_result ms_append_set(struct ms_append *a, uint32_t flags,
				    const struct mp_strlist *keywords,
				    int64_t internal_date, int tz_minutes,
				    struct ms_error *err);
/* Makes the message durable and visible: fsync, rename, directory fsync,
 * index commit, in that order. Returns its UID and the mailbox's
 * UIDVALIDITY. *a is freed either way. Writes. */
MP_API enum ms_result ms_append_commit(struct ms_append **a, uint32_t *uid_r,
				       uint32_t *uidvalidity_r,
				       struct ms_error *err);
/* Throws an unfinished message away; sets *a NULL. */
MP_API void ms_append_abort(struct ms_append **a);
/* Bytes written so far (after CRLF conversion). */
MP_API uint64_t ms_append_size(const struct ms_append *a);

/* --- quota -------------------------------------------------------------- */

struct ms_quota {
	uint64_t bytes, messages;             /* in use */
	uint64_t limit_bytes, limit_messages; /* 0: none */
};

/* What the account uses and may use. */
MP_API enum ms_result ms_quota_get(struct ms_user *u, struct ms_quota *q,
				   struct ms_error *err);

/* --- change notification ------------------------------------------------ */

/* Called on the store's loop thread after a change to one of the account's
 * mailboxes committed, in this process or another. The receiver asks
 * ms_mailbox_changes() what changed. mailbox is the name, or NULL when the
 * change came from another process and the mailbox is not known. */
typedef void ms_watch_fn(struct ms_user *u, const char *mailbox, void *ctx);

/* Watches an account's mailboxes (loop thread only). The watch holds a
 * reference to u. Remove it with ms_watch_remove. */
MP_API struct ms_watch *ms_watch_add(struct ms_user *u, ms_watch_fn *fn,
				     void *ctx);
/* Stops a watch; sets *w NULL. */
MP_API void ms_watch_remove(struct ms_watch **w);

/* Names of a result code ("not found"); static string. */
MP_API const char *ms_result_name(enum ms_result r);

#endif
