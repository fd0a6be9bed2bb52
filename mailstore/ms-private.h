/* ms-private.h - the mailstore's internals, shared by its ms-*.c files. */
#ifndef MOONPOST_MS_PRIVATE_H
#define MOONPOST_MS_PRIVATE_H

#include <pthread.h>
#include <sqlite3.h>

#include <moonpost/mailstore.h>

/* Accounts kept open with no one using them (ms_store_settings can say
 * otherwise): each holds two SQLite connections and their WAL. */
#define MS_IDLE_ACCOUNTS 128
/* Time SQLite waits for another process's write lock before MS_ERR_TEMP. */
#define MS_BUSY_TIMEOUT_MS 30000
/* A tmp/ file older than this was left by a crash (Maildir's 36 hours). */
#define MS_TMP_MAX_AGE_S (36 * 3600)
/* The index file and the file other processes' changes are announced by. */
#define MS_INDEX_FILE   "index.sqlite"
#define MS_CHANGES_FILE "changes"

struct ms_notify_queue;

struct ms_store {
	char *root;
	uint64_t quota_bytes;
	uint64_t quota_messages;
	struct ev_loop *loop;
	pthread_mutex_t lock;  /* users list and refcounts */
	struct ms_user *users; /* open accounts, in use or idle */
	size_t n_idle;         /* of them with no reference */
	size_t max_idle;
	uint64_t use_clock;       /* for last_used */
	struct ms_notify *notify; /* NULL without a loop */
	uint32_t counter;         /* file names; under lock */
	char host[64];            /* for file names, made safe */
};

struct ms_user {
	struct ms_store *store;
	struct ms_user *next;
	unsigned refcount;  /* under store->lock; 0: idle, kept open */
	uint64_t last_used; /* store->use_clock when it went idle */
	char *address;
	char *dir;
	/* Two connections: readers never wait for a writer's fsync (WAL). */
	sqlite3 *rdb;
	pthread_mutex_t rlock;
	sqlite3 *wdb;
	pthread_mutex_t wlock;
	int watch_count; /* loop thread only */
	int inotify_wd;
	/* The changes file's time as this process last set it: inotify
	 * reports our own touches too, and those are already announced. */
	int64_t self_touch_ns; /* atomic */
};

struct ms_mailbox {
	struct ms_user *user;
	int64_t id;
	char *name;
	char *path; /* absolute path of the Maildir folder */
	uint32_t uidvalidity;
};

/* ms-db.c: SQLite helpers. Each returns MS_OK or fills err. */

/* Opens (creating and migrating) an account's index. */
enum ms_result ms_db_open(const char *path, bool writer, sqlite3 **db_r,
			  struct ms_error *err);
/* Runs SQL without results. */
enum ms_result ms_db_exec(sqlite3 *db, const char *sql, struct ms_error *err);
/* Prepares a statement; NULL with err filled. */
sqlite3_stmt *ms_db_prepare(sqlite3 *db, const char *sql, struct ms_error *err);
/* Steps a statement that returns no row (or whose rows are ignored). */
enum ms_result ms_db_step_done(sqlite3_stmt *st, struct ms_error *err);
/* Fills err from the connection's last error. */
enum ms_result ms_db_error(sqlite3 *db, const char *what, struct ms_error *err);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK on the writer connection. */
enum ms_result ms_db_begin(struct ms_user *u, struct ms_error *err);
enum ms_result ms_db_commit(struct ms_user *u, struct ms_error *err);
void ms_db_rollback(struct ms_user *u);
/* Reads an integer column of a one-row query with one int64 parameter
 * (-1 for none); *value_r untouched when there is no row. */
enum ms_result ms_db_int(sqlite3 *db, const char *sql, int64_t param,
			 int64_t *value_r, struct ms_error *err);

/* ms-error.c */

/* Fills err and returns code. */
enum ms_result ms_fail(struct ms_error *err, enum ms_result code,
		       const char *fmt, ...) MP_PRINTF(3, 4);
/* Fills err from errno for an operation on path; ENOSPC and EDQUOT are
 * temporary, like every I/O error. */
enum ms_result ms_fail_errno(struct ms_error *err, const char *what,
			     const char *path);

/* ms-name.c: mailbox names and their folders. */

/* True when name is a valid mailbox name; otherwise fills err. */
bool ms_name_valid(const char *name, struct ms_error *err);
/* True when name is INBOX in any case. */
bool ms_name_is_inbox(const char *name);
/* The Maildir++ folder for a new mailbox: "" for INBOX, ".Foo.Bar" with
 * bytes outside a safe set written as ~XX. Caller frees. */
char *ms_name_to_dir(const char *name);
/* Validates a keyword (an IMAP atom without \ or wildcards). */
bool ms_keyword_valid(const char *kw);

/* ms-fs.c: files and directories. */

/* Creates dir (0700) with cur/ new/ tmp/; false with err filled. */
bool ms_fs_make_maildir(const char *dir, struct ms_error *err);
/* fsyncs a directory. */
bool ms_fs_sync_dir(const char *dir, struct ms_error *err);
/* A new unique base name for a message file (Maildir rules). Caller
 * frees. */
char *ms_fs_unique_name(struct ms_store *store);
/* Removes a message file or a folder tree left by a delete; missing is
 * fine. */
void ms_fs_remove(const char *path);
/* Modification time of path in nanoseconds, 0 when it cannot be read. */
int64_t ms_fs_mtime_ns(const char *path);
/* Copies n bytes to out (room for 2n) turning bare LF into CRLF; *last_cr
 * carries whether the previous chunk ended in CR. Returns bytes written. */
size_t ms_crlf(const char *in, size_t n, char *out, bool *last_cr);

/* ms-mailbox.c */

/* Looks a mailbox up by name (INBOX case-insensitively) on the given
 * connection; fills id, folder path and uidvalidity. */
enum ms_result ms_mailbox_lookup(struct ms_user *u, sqlite3 *db,
				 const char *name, struct ms_mailbox *mb,
				 bool *noselect_r, struct ms_error *err);
/* Creates the default mailboxes of a new account (inside a
 * transaction). */
enum ms_result ms_mailbox_create_defaults(struct ms_user *u,
					  struct ms_error *err);

/* ms-index.c: message rows. */

/* A message about to get its index row. */
struct ms_new_message {
	const char *tmp_path; /* append: the file in tmp/ to rename */
	const char *base;     /* append: its unique name */
	const char *file;     /* adoption: "cur/NAME", already in place */
	uint64_t size;
	int64_t internal_date;
	int tz_minutes;
	uint32_t flags;
	const char *keywords;
	const void *mime;
	size_t mime_len;
};

/* Renames an appended file into cur/, fsyncs the folder and commits its
 * row with the next UID: the durable end of an append. */
enum ms_result ms_index_add(struct ms_mailbox *mb,
			    const struct ms_new_message *m, uint32_t *uid_r,
			    struct ms_error *err);
/* Called inside ms_index_add_uid's transaction once the row is in. */
typedef enum ms_result ms_index_hook_fn(struct ms_mailbox *mb, uint32_t uid,
					void *ctx, struct ms_error *err);
/* ms_index_add with a chosen UID (0: the next), which must not be below
 * UIDNEXT (MS_ERR_EXISTS); UIDNEXT becomes uid + 1. hook (may be NULL)
 * adds to the same transaction. */
enum ms_result ms_index_add_uid(struct ms_mailbox *mb,
				const struct ms_new_message *m, uint32_t uid,
				ms_index_hook_fn *hook, void *hook_ctx,
				uint32_t *uid_r, struct ms_error *err);
/* Inserts a row for a file already in cur/, with the next UID and a new
 * MODSEQ; inside a write transaction. */
enum ms_result ms_index_insert(struct ms_mailbox *mb,
			       const struct ms_new_message *m, uint32_t *uid_r,
			       struct ms_error *err);
/* Checks that count more messages of bytes more fit the quota; inside a
 * write transaction. */
enum ms_result ms_index_quota_check(struct ms_user *u, uint64_t count,
				    uint64_t bytes, struct ms_error *err);
/* The next MODSEQ of a mailbox, bumping its HIGHESTMODSEQ; inside a write
 * transaction. */
enum ms_result ms_index_next_modseq(struct ms_user *u, int64_t mailbox,
				    uint64_t *modseq_r, struct ms_error *err);

/* ms-message.c: message lists. */

/* Appends the message columns of st (from first_col: uid, flags, modseq,
 * size, internal_date, tz, keywords) to list; keywords go into kw. */
void ms_msgs_add_row(struct ms_msg_list *list, struct mp_buf *kw,
		     sqlite3_stmt *st, int first_col);
/* Hands kw to the list and turns keyword offsets into pointers. */
void ms_msgs_finish(struct ms_msg_list *list, struct mp_buf *kw);
/* Runs sql (mailbox id as ?1, a UID range as ?2 and ?3) for every range of
 * set (NULL: all UIDs) and collects the rows into out. */
enum ms_result ms_msgs_query(sqlite3 *db, const char *sql, int64_t mailbox,
			     const struct ms_uidset *set,
			     struct ms_msg_list *out, struct ms_error *err);
/* The file of uid relative to the folder (caller frees), or NULL with err
 * filled. */
char *ms_message_file(struct ms_mailbox *mb, sqlite3 *db, uint32_t uid,
		      struct ms_error *err);

/* ms-copy.c */

/* Renames INBOX the RFC 3501 way: a new mailbox gets its messages. */
enum ms_result ms_inbox_rename(struct ms_user *u, const char *to,
			       struct ms_error *err);

/* ms-sync.c */

/* Adopts files of mb that have no index row and drops rows whose file is
 * gone. Takes the write lock when there is anything to do. */
enum ms_result ms_sync_mailbox(struct ms_mailbox *mb, struct ms_error *err);
/* Unlinks what an interrupted expunge or delete left (pending_remove). */
void ms_sync_pending_removals(struct ms_user *u);

/* ms-notify.c */

struct ms_notify *ms_notify_new(struct ev_loop *loop);
void ms_notify_free(struct ms_notify **n);
/* Announces a committed change of mailbox (any thread): to watchers in
 * this process through the loop, to other processes through the changes
 * file. */
void ms_notify_changed(struct ms_user *u, const char *mailbox);

/* ms-keywords.c */

/* Applies mode to a stored keyword string; returns a new sorted,
 * space-separated string (caller frees), or NULL with err filled when the
 * result would break a limit. */
char *ms_keywords_apply(const char *stored, enum ms_flag_mode mode,
			const struct mp_strlist *kws, struct ms_error *err);

#endif
