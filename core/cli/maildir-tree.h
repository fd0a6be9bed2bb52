/* maildir-tree.h - what `import maildir` and `export maildir` share: the
 * control files Dovecot and Courier keep in a Maildir++ tree, and opening
 * an account's mail under the data directory.
 *
 * dovecot-uidlist (per folder) maps file base names to UIDs under the
 * folder's UIDVALIDITY; version 3 ("3 V<uidvalidity> N<nextuid> G<guid>",
 * then "<uid> [fields] :<file name>") and version 1 ("1 <uidvalidity>
 * <nextuid>", then "<uid> <file name>"), which is also the format of
 * Courier's courierimapuiddb, are read.
 * dovecot-keywords (per folder) names the letters a-z of file names'
 * info: "<index> <keyword>" lines, 0 for a. At the root, Dovecot's
 * `subscriptions` ("V\t2\n\n", then one name a line with levels separated
 * by TAB; or, in the old format, one name a line with '.' between levels)
 * and Courier's `courierimapsubscribed` ("INBOX.Foo.Bar") list the
 * subscribed names, in modified UTF-7. */
#ifndef MOONPOST_MAILDIR_TREE_H
#define MOONPOST_MAILDIR_TREE_H

#include <moonpost/common.h>

struct ms_store;
struct ms_user;

struct mp_maildir_uid {
	char *key; /* the file name up to its info (":2,...") */
	uint32_t uid;
};

struct mp_maildir_uidlist {
	uint32_t uidvalidity; /* 0: no usable dovecot-uidlist */
	uint32_t uidnext;
	struct mp_maildir_uid *v; /* sorted by key */
	size_t n;
};

/* Reads folder/dovecot-uidlist, or else folder/courierimapuiddb, into ul.
 * No file: ul is empty, and that is no error. False with *error_r (caller
 * frees) when something is wrong: an unknown header leaves ul empty,
 * malformed lines are skipped. */
bool mp_maildir_uidlist_read(const char *folder, struct mp_maildir_uidlist *ul,
			     char **error_r);
/* The UID listed for key, 0 when none. */
uint32_t mp_maildir_uidlist_find(const struct mp_maildir_uidlist *ul,
				 const char *key);
/* Frees what ul holds; it is empty afterwards. */
void mp_maildir_uidlist_free(struct mp_maildir_uidlist *ul);

/* True when path is a Maildir folder (it has cur/). */
bool mp_maildir_is_folder(const char *path);
/* The system flags (MS_FLAG_*) of a message file name's info
 * (":2,FLAGS[,...]"); the keywords its letters a-z stand for (names[i]
 * for 'a' + i, NULL: unknown, skipped) are added to kws. */
uint32_t mp_maildir_info_flags(const char *file, char *const names[26],
			       struct mp_strlist *kws);
/* Reads fd to its end: *raw_r bytes, *crlf_r once every bare LF is CRLF
 * (what the store will hold); then rewinds it. False on a read error. */
bool mp_maildir_measure(int fd, uint64_t *raw_r, uint64_t *crlf_r);

/* Reads folder/dovecot-keywords: names[i] (caller frees each) is the
 * keyword of letter 'a' + i, or NULL. False with *error_r (caller frees)
 * when the file exists but cannot be read; lines that make no sense are
 * skipped. */
bool mp_maildir_keywords_read(const char *folder, char *names[26],
			      char **error_r);

/* Adds the mailbox names subscribed in root/subscriptions and
 * root/courierimapsubscribed to names; *found_r tells whether either file
 * exists. Names that do not decode are skipped. False with *error_r
 * (caller frees) when a file exists but cannot be read. */
bool mp_maildir_subscriptions_read(const char *root, struct mp_strlist *names,
				   bool *found_r, char **error_r);
/* The text of a Dovecot `subscriptions` file (version 2) for names.
 * Caller frees. */
char *mp_maildir_subscriptions_format(const struct mp_strlist *names);

/* Creates path (mode 0600, it must not exist) with len bytes of data. False
 * with *error_r (caller frees). */
bool mp_maildir_write_file(const char *path, const void *data, size_t len,
			   char **error_r);

/* The mail of one account: <data_dir>/mail, as the server keeps it. */
struct mp_maildir_account {
	struct ms_store *store;
	struct ms_user *user;
};

/* Opens address's mail. With must_exist, an account that has no mail yet
 * is EX_NOUSER instead of being created. Returns a sysexits code after a
 * message. */
int mp_maildir_account_open(const char *data_dir, const char *address,
			    bool must_exist, struct mp_maildir_account *a);
/* Releases what mp_maildir_account_open opened. */
void mp_maildir_account_close(struct mp_maildir_account *a);

/* Checks address and writes its lower-case form to out. EX_OK, or
 * EX_DATAERR after a message. */
int mp_maildir_check_address(const char *address, char out[static 256]);

#endif
