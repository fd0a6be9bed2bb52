/* ms-mailbox.c - listing, creating, deleting and renaming mailboxes.
 *
 * A mailbox's folder name is chosen when it is created and never changes:
 * a rename is one index transaction, atomic whatever happens, and no
 * directory is moved under a reader. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ms-private.h"

static const struct {
	const char *name;
	unsigned special_use;
} default_mailboxes[] = {
	{"INBOX", 0},
	{"Sent", MS_SPECIAL_SENT},
	{"Drafts", MS_SPECIAL_DRAFTS},
	{"Trash", MS_SPECIAL_TRASH},
	{"Junk", MS_SPECIAL_JUNK},
	{"Archive", MS_SPECIAL_ARCHIVE},
};

/* "inbox/x" is "INBOX/x": the first level is case-insensitive for INBOX
 * only. Caller frees. */
static char *
canonical_name(const char *name)
{
	size_t n = strcspn(name, "/");

	if (n == 5 && strncasecmp(name, "INBOX", 5) == 0)
		return mp_xasprintf("INBOX%s", name + 5);
	return mp_xstrdup(name);
}

enum ms_result
ms_mailbox_lookup(struct ms_user *u, sqlite3 *db, const char *name,
		  struct ms_mailbox *mb, bool *noselect_r, struct ms_error *err)
{
	char *canon = canonical_name(name);
	sqlite3_stmt *st = ms_db_prepare(
		db,
		"SELECT id, dir, uidvalidity, noselect FROM mailboxes "
		"WHERE name = ?",
		err);
	int rc;

	if (st == NULL) {
		free(canon);
		return err->code;
	}
	sqlite3_bind_text(st, 1, canon, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *dir = (const char *)sqlite3_column_text(st, 1);
		mb->user = u;
		mb->id = sqlite3_column_int64(st, 0);
		mb->name = canon;
		mb->path = dir[0] == '\0' ? mp_xstrdup(u->dir)
					  : mp_xasprintf("%s/%s", u->dir, dir);
		mb->uidvalidity = (uint32_t)sqlite3_column_int64(st, 2);
		if (noselect_r != NULL)
			*noselect_r = sqlite3_column_int(st, 3) != 0;
		canon = NULL;
	}
	sqlite3_finalize(st);
	free(canon);
	if (rc == SQLITE_ROW)
		return MS_OK;
	if (rc == SQLITE_DONE)
		return ms_fail(err, MS_ERR_NOT_FOUND, "no mailbox %s", name);
	return ms_db_error(db, "lookup", err);
}

static uint32_t
next_uidvalidity(struct ms_user *u, struct ms_error *err)
{
	int64_t last = 0;
	int64_t now = (int64_t)time(NULL);
	uint32_t v;
	sqlite3_stmt *st;

	/* Time-based, and never reused: a mailbox deleted and created again
	 * in the same second gets a new UIDVALIDITY. */
	if (ms_db_int(u->wdb,
		      "SELECT value FROM meta WHERE key = 'last_uidvalidity'",
		      -1, &last, err) != MS_OK)
		return 0;
	v = (uint32_t)(now > last ? now : last + 1);
	st = ms_db_prepare(u->wdb,
			   "INSERT OR REPLACE INTO meta VALUES "
			   "('last_uidvalidity', ?)",
			   err);
	if (st == NULL)
		return 0;
	sqlite3_bind_int64(st, 1, v);
	if (ms_db_step_done(st, err) != MS_OK)
		v = 0;
	sqlite3_finalize(st);
	return v;
}

/* A folder name no other mailbox has and that is free on disk. */
static char *
free_dir(struct ms_user *u, const char *name, struct ms_error *err)
{
	char *base = ms_name_to_dir(name), *dir = mp_xstrdup(base);

	for (int i = 2; dir[0] != '\0'; i++) {
		int64_t taken = 0;
		char *path = mp_xasprintf("%s/%s", u->dir, dir);
		struct stat st;
		bool on_disk = stat(path, &st) == 0;

		free(path);
		sqlite3_stmt *q = ms_db_prepare(
			u->wdb, "SELECT count(*) FROM mailboxes WHERE dir = ?",
			err);
		if (q == NULL)
			break;
		sqlite3_bind_text(q, 1, dir, -1, SQLITE_STATIC);
		if (sqlite3_step(q) == SQLITE_ROW)
			taken = sqlite3_column_int64(q, 0);
		sqlite3_finalize(q);
		if (!on_disk && taken == 0)
			break;
		free(dir);
		dir = mp_xasprintf("%s~%d", base, i);
	}
	free(base);
	return dir;
}

/* Adds one mailbox row and its folder; inside a write transaction. */
static enum ms_result
insert_mailbox(struct ms_user *u, const char *name, unsigned special_use,
	       struct ms_error *err)
{
	uint32_t uidvalidity = next_uidvalidity(u, err);
	char *dir, *path;
	sqlite3_stmt *st;
	enum ms_result r;

	if (uidvalidity == 0)
		return err->code;
	dir = free_dir(u, name, err);
	path = dir[0] == '\0' ? mp_xstrdup(u->dir)
			      : mp_xasprintf("%s/%s", u->dir, dir);
	r = ms_fs_make_maildir(path, err) && ms_fs_sync_dir(u->dir, err)
		    ? MS_OK
		    : err->code;
	free(path);
	st = r == MS_OK ? ms_db_prepare(u->wdb,
					"INSERT INTO mailboxes(name, dir, "
					"uidvalidity, special_use) VALUES "
					"(?, ?, ?, ?)",
					err)
			: NULL;
	if (st != NULL) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, dir, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, uidvalidity);
		sqlite3_bind_int(st, 4, (int)special_use);
		r = ms_db_step_done(st, err);
		sqlite3_finalize(st);
	} else if (r == MS_OK) {
		r = err->code;
	}
	free(dir);
	return r;
}

enum ms_result
ms_mailbox_create_defaults(struct ms_user *u, struct ms_error *err)
{
	for (size_t i = 0; i < MP_NELEMS(default_mailboxes); i++) {
		enum ms_result r =
			insert_mailbox(u, default_mailboxes[i].name,
				       default_mailboxes[i].special_use, err);
		if (r == MS_OK)
			r = ms_db_exec(u->wdb,
				       "INSERT OR IGNORE INTO subscriptions "
				       "SELECT name FROM mailboxes",
				       err);
		if (r != MS_OK)
			return r;
	}
	return MS_OK;
}

/* State of a name inside a write transaction: 0 absent, 1 exists,
 * 2 exists as \Noselect, -1 error (err filled). */
static int
lookup_state(struct ms_user *u, const char *name, struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(
		u->wdb, "SELECT noselect FROM mailboxes WHERE name = ?", err);
	int rc, state = 0;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		state = sqlite3_column_int(st, 0) ? 2 : 1;
	else if (rc != SQLITE_DONE)
		state = -1;
	sqlite3_finalize(st);
	if (state < 0)
		ms_db_error(u->wdb, "lookup", err);
	return state;
}

static enum ms_result
check_count(struct ms_user *u, struct ms_error *err)
{
	int64_t n = 0;

	if (ms_db_int(u->wdb, "SELECT count(*) FROM mailboxes", -1, &n, err) !=
	    MS_OK)
		return err->code;
	if (n >= MS_MAILBOXES_MAX)
		return ms_fail(err, MS_ERR_LIMIT, "at most %d mailboxes",
			       MS_MAILBOXES_MAX);
	return MS_OK;
}

/* Creates the missing parents of name, inside a transaction. */
static enum ms_result
create_parents(struct ms_user *u, const char *name, struct ms_error *err)
{
	char *copy = mp_xstrdup(name);
	enum ms_result r = MS_OK;

	for (char *p = strchr(copy, '/'); p != NULL && r == MS_OK;
	     p = strchr(p + 1, '/')) {
		int state;

		*p = '\0';
		state = lookup_state(u, copy, err);
		if (state < 0)
			r = err->code;
		else if (state == 0 && (r = check_count(u, err)) == MS_OK)
			r = insert_mailbox(u, copy, 0, err);
		*p = '/';
	}
	free(copy);
	return r;
}

static enum ms_result
create_locked(struct ms_user *u, const char *name, unsigned special_use,
	      struct ms_error *err)
{
	int state = lookup_state(u, name, err);
	sqlite3_stmt *st;
	enum ms_result r;

	if (state < 0)
		return err->code;
	if (state == 1 || ms_name_is_inbox(name))
		return ms_fail(err, MS_ERR_EXISTS, "mailbox exists");
	if (state == 2) {
		/* A \Noselect parent becomes a real mailbox again; its UIDs
		 * go on from where they were, so UIDVALIDITY may stay. */
		st = ms_db_prepare(u->wdb,
				   "UPDATE mailboxes SET noselect = 0, "
				   "special_use = ? WHERE name = ?",
				   err);
		if (st == NULL)
			return err->code;
		sqlite3_bind_int(st, 1, (int)special_use);
		sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
		r = ms_db_step_done(st, err);
		sqlite3_finalize(st);
		return r;
	}
	if ((r = check_count(u, err)) != MS_OK ||
	    (r = create_parents(u, name, err)) != MS_OK)
		return r;
	return insert_mailbox(u, name, special_use, err);
}

enum ms_result
ms_mailbox_create(struct ms_user *u, const char *name, unsigned special_use,
		  struct ms_error *err)
{
	char *canon;
	enum ms_result r;

	if (!ms_name_valid(name, err))
		return err->code;
	if ((special_use & ~0x7fu) != 0)
		return ms_fail(err, MS_ERR_BAD_NAME, "unknown special use");
	canon = canonical_name(name);
	if ((r = ms_db_begin(u, err)) == MS_OK) {
		r = create_locked(u, canon, special_use, err);
		if (r == MS_OK)
			r = ms_db_commit(u, err);
		else
			ms_db_rollback(u);
	}
	if (r == MS_OK)
		ms_notify_changed(u, canon);
	free(canon);
	return r;
}

static enum ms_result
exec_id(struct ms_user *u, const char *sql, int64_t id, struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(u->wdb, sql, err);
	enum ms_result r;

	if (st == NULL)
		return err->code;
	sqlite3_bind_int64(st, 1, id);
	r = ms_db_step_done(st, err);
	sqlite3_finalize(st);
	return r;
}

static enum ms_result
has_children(struct ms_user *u, const char *name, bool *yes_r,
	     struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(
		u->wdb,
		"SELECT count(*) FROM mailboxes WHERE substr(name, 1, ?) = ?",
		err);
	char *prefix = mp_xasprintf("%s/", name);
	int rc;

	if (st == NULL) {
		free(prefix);
		return err->code;
	}
	sqlite3_bind_int(st, 1, (int)strlen(prefix));
	sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*yes_r = rc == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0;
	sqlite3_finalize(st);
	free(prefix);
	return rc == SQLITE_ROW ? MS_OK : ms_db_error(u->wdb, "children", err);
}

static enum ms_result
delete_locked(struct ms_user *u, struct ms_mailbox *mb, bool noselect,
	      struct ms_error *err)
{
	bool children = false;
	enum ms_result r = has_children(u, mb->name, &children, err);
	char *folder;

	if (r != MS_OK)
		return r;
	if (noselect && children)
		return ms_fail(err, MS_ERR_NOT_ALLOWED,
			       "mailbox has children and no messages");
	/* The files go after the commit; pending_remove makes sure of it
	 * even across a crash, and keeps them from being adopted. */
	folder = mp_xasprintf("%s/", mb->path);
	sqlite3_stmt *st = ms_db_prepare(
		u->wdb,
		"INSERT OR IGNORE INTO pending_remove SELECT ? || file "
		"FROM messages WHERE mailbox = ?",
		err);
	if (st == NULL) {
		free(folder);
		return err->code;
	}
	sqlite3_bind_text(st, 1, folder, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, mb->id);
	r = ms_db_step_done(st, err);
	sqlite3_finalize(st);
	free(folder);
	if (r == MS_OK)
		r = exec_id(u, "DELETE FROM messages WHERE mailbox = ?", mb->id,
			    err);
	if (r == MS_OK)
		r = exec_id(u, "DELETE FROM expunged WHERE mailbox = ?", mb->id,
			    err);
	if (r != MS_OK)
		return r;
	if (children)
		return exec_id(u,
			       "UPDATE mailboxes SET noselect = 1, "
			       "special_use = 0 WHERE id = ?",
			       mb->id, err);
	st = ms_db_prepare(u->wdb,
			   "INSERT OR IGNORE INTO pending_remove "
			   "VALUES (?)",
			   err);
	if (st == NULL)
		return err->code;
	sqlite3_bind_text(st, 1, mb->path, -1, SQLITE_STATIC);
	r = ms_db_step_done(st, err);
	sqlite3_finalize(st);
	if (r == MS_OK)
		r = exec_id(u, "DELETE FROM mailboxes WHERE id = ?", mb->id,
			    err);
	return r;
}

enum ms_result
ms_mailbox_delete(struct ms_user *u, const char *name, struct ms_error *err)
{
	struct ms_mailbox mb = {0};
	bool noselect = false;
	enum ms_result r;

	if (ms_name_is_inbox(name))
		return ms_fail(err, MS_ERR_NOT_ALLOWED,
			       "INBOX cannot be deleted");
	if ((r = ms_db_begin(u, err)) != MS_OK)
		return r;
	r = ms_mailbox_lookup(u, u->wdb, name, &mb, &noselect, err);
	if (r == MS_OK)
		r = delete_locked(u, &mb, noselect, err);
	if (r == MS_OK)
		r = ms_db_commit(u, err);
	else
		ms_db_rollback(u);
	if (r == MS_OK) {
		ms_sync_pending_removals(u);
		ms_notify_changed(u, mb.name);
	}
	free(mb.name);
	free(mb.path);
	return r;
}

/* Renames from and its children to to; inside a transaction. */
static enum ms_result
rename_tree(struct ms_user *u, const char *from, const char *to,
	    struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(
		u->wdb,
		"UPDATE mailboxes SET name = ?3 || substr(name, ?4) "
		"WHERE name = ?1 OR substr(name, 1, ?2) = ?1 || '/'",
		err);
	enum ms_result r;

	if (st == NULL)
		return err->code;
	sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)strlen(from) + 1);
	sqlite3_bind_text(st, 3, to, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, (int)strlen(from) + 1);
	r = ms_db_step_done(st, err);
	sqlite3_finalize(st);
	return r;
}

static enum ms_result
rename_locked(struct ms_user *u, const char *from, const char *to,
	      struct ms_error *err)
{
	size_t n = strlen(from);
	bool children = false;
	int state;
	enum ms_result r;

	if (strncmp(to, from, n) == 0 && to[n] == '/')
		return ms_fail(err, MS_ERR_NOT_ALLOWED,
			       "cannot move a mailbox into itself");
	state = lookup_state(u, to, err);
	if (state < 0)
		return err->code;
	if (state > 0 || ms_name_is_inbox(to))
		return ms_fail(err, MS_ERR_EXISTS, "mailbox %s exists", to);
	if ((r = has_children(u, to, &children, err)) != MS_OK)
		return r;
	if (children)
		return ms_fail(err, MS_ERR_EXISTS, "mailbox %s has children",
			       to);
	state = lookup_state(u, from, err);
	if (state <= 0)
		return state < 0 ? err->code
				 : ms_fail(err, MS_ERR_NOT_FOUND,
					   "no mailbox %s", from);
	if ((r = create_parents(u, to, err)) != MS_OK)
		return r;
	return rename_tree(u, from, to, err);
}

enum ms_result
ms_mailbox_rename(struct ms_user *u, const char *from, const char *to,
		  struct ms_error *err)
{
	char *f, *t;
	enum ms_result r;

	if (!ms_name_valid(to, err) || !ms_name_valid(from, err))
		return err->code;
	t = canonical_name(to);
	if (ms_name_is_inbox(from)) {
		r = ms_inbox_rename(u, t, err);
		free(t);
		return r;
	}
	f = canonical_name(from);
	if ((r = ms_db_begin(u, err)) == MS_OK) {
		r = rename_locked(u, f, t, err);
		if (r == MS_OK)
			r = ms_db_commit(u, err);
		else
			ms_db_rollback(u);
	}
	if (r == MS_OK)
		ms_notify_changed(u, t);
	free(f);
	free(t);
	return r;
}

enum ms_result
ms_mailbox_subscribe(struct ms_user *u, const char *name, bool subscribe,
		     struct ms_error *err)
{
	char *canon;
	sqlite3_stmt *st;
	enum ms_result r;

	if (!ms_name_valid(name, err))
		return err->code;
	canon = canonical_name(name);
	if ((r = ms_db_begin(u, err)) != MS_OK) {
		free(canon);
		return r;
	}
	st = ms_db_prepare(u->wdb,
			   subscribe
				   ? "INSERT OR IGNORE INTO subscriptions "
				     "VALUES (?)"
				   : "DELETE FROM subscriptions WHERE name = ?",
			   err);
	r = st != NULL ? MS_OK : err->code;
	if (st != NULL) {
		sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
		r = ms_db_step_done(st, err);
		sqlite3_finalize(st);
	}
	free(canon);
	if (r == MS_OK)
		return ms_db_commit(u, err);
	ms_db_rollback(u);
	return r;
}

enum ms_result
ms_subscriptions(struct ms_user *u, struct mp_strlist *out,
		 struct ms_error *err)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&u->rlock);
	st = ms_db_prepare(u->rdb,
			   "SELECT name FROM subscriptions ORDER BY "
			   "name != 'INBOX', name",
			   err);
	if (st == NULL) {
		pthread_mutex_unlock(&u->rlock);
		return err->code;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		mp_strlist_add(out, (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		ms_db_error(u->rdb, "subscriptions", err);
	pthread_mutex_unlock(&u->rlock);
	return rc == SQLITE_DONE ? MS_OK : err->code;
}

static void
list_add(struct ms_mailbox_list *out, sqlite3_stmt *st)
{
	struct ms_mailbox_info *info;

	out->v = mp_xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
	info = &out->v[out->n++];
	info->name = mp_xstrdup((const char *)sqlite3_column_text(st, 0));
	info->special_use = (unsigned)sqlite3_column_int(st, 1);
	info->noselect = sqlite3_column_int(st, 2) != 0;
	info->has_children = sqlite3_column_int(st, 3) != 0;
	info->subscribed = sqlite3_column_int(st, 4) != 0;
}

enum ms_result
ms_mailbox_list(struct ms_user *u, struct ms_mailbox_list *out,
		struct ms_error *err)
{
	sqlite3_stmt *st;
	int rc;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&u->rlock);
	st = ms_db_prepare(
		u->rdb,
		"SELECT m.name, m.special_use, m.noselect, "
		"  EXISTS(SELECT 1 FROM mailboxes c WHERE "
		"    substr(c.name, 1, length(m.name) + 1) = m.name || '/'), "
		"  EXISTS(SELECT 1 FROM subscriptions s WHERE s.name = m.name) "
		"FROM mailboxes m ORDER BY m.name != 'INBOX', m.name",
		err);
	if (st == NULL) {
		pthread_mutex_unlock(&u->rlock);
		return err->code;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		list_add(out, st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		ms_db_error(u->rdb, "list", err);
	pthread_mutex_unlock(&u->rlock);
	if (rc != SQLITE_DONE)
		ms_mailbox_list_free(out);
	return rc == SQLITE_DONE ? MS_OK : err->code;
}

void
ms_mailbox_list_free(struct ms_mailbox_list *list)
{
	for (size_t i = 0; i < list->n; i++)
		free(list->v[i].name);
	MP_FREE(list->v);
	list->n = 0;
}

static enum ms_result
status_by_id(struct ms_user *u, int64_t id, struct ms_status *s,
	     struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(
		u->rdb,
		"SELECT messages, unseen, deleted, uidnext, uidvalidity, "
		"bytes, highestmodseq, (SELECT count(*) FROM messages WHERE "
		"mailbox = ?1 AND uid >= first_recent) "
		"FROM mailboxes WHERE id = ?1",
		err);
	int rc;

	if (st == NULL)
		return err->code;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		s->messages = (uint32_t)sqlite3_column_int64(st, 0);
		s->unseen = (uint32_t)sqlite3_column_int64(st, 1);
		s->deleted = (uint32_t)sqlite3_column_int64(st, 2);
		s->uidnext = (uint32_t)sqlite3_column_int64(st, 3);
		s->uidvalidity = (uint32_t)sqlite3_column_int64(st, 4);
		s->size = (uint64_t)sqlite3_column_int64(st, 5);
		s->highestmodseq = (uint64_t)sqlite3_column_int64(st, 6);
		s->recent = (uint32_t)sqlite3_column_int64(st, 7);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return MS_OK;
	if (rc == SQLITE_DONE)
		return ms_fail(err, MS_ERR_NOT_FOUND, "mailbox is gone");
	return ms_db_error(u->rdb, "status", err);
}

enum ms_result
ms_mailbox_status(struct ms_user *u, const char *name, struct ms_status *st,
		  struct ms_error *err)
{
	struct ms_mailbox mb = {0};
	bool noselect = false;
	enum ms_result r;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&u->rlock);
	r = ms_mailbox_lookup(u, u->rdb, name, &mb, &noselect, err);
	if (r == MS_OK && noselect)
		r = ms_fail(err, MS_ERR_NOT_FOUND, "%s cannot be selected",
			    name);
	if (r == MS_OK)
		r = status_by_id(u, mb.id, st, err);
	pthread_mutex_unlock(&u->rlock);
	free(mb.name);
	free(mb.path);
	return r;
}

struct ms_mailbox *
ms_mailbox_open(struct ms_user *u, const char *name, struct ms_error *err)
{
	struct ms_mailbox *mb = mp_xcalloc(1, sizeof(*mb));
	bool noselect = false;
	enum ms_result r;

	pthread_mutex_lock(&u->rlock);
	r = ms_mailbox_lookup(u, u->rdb, name, mb, &noselect, err);
	pthread_mutex_unlock(&u->rlock);
	if (r == MS_OK && noselect)
		r = ms_fail(err, MS_ERR_NOT_FOUND, "%s cannot be selected",
			    name);
	mb->user = ms_user_ref(u);
	if (r == MS_OK)
		r = ms_sync_mailbox(mb, err);
	if (r != MS_OK)
		ms_mailbox_close(&mb);
	return mb;
}

void
ms_mailbox_close(struct ms_mailbox **mbp)
{
	struct ms_mailbox *mb = *mbp;

	if (mb == NULL)
		return;
	ms_user_unref(&mb->user);
	free(mb->name);
	free(mb->path);
	free(mb);
	*mbp = NULL;
}

const char *
ms_mailbox_name(const struct ms_mailbox *mb)
{
	return mb->name;
}

uint32_t
ms_mailbox_uidvalidity(const struct ms_mailbox *mb)
{
	return mb->uidvalidity;
}

enum ms_result
ms_mailbox_get_status(struct ms_mailbox *mb, struct ms_status *st,
		      struct ms_error *err)
{
	enum ms_result r;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&mb->user->rlock);
	r = status_by_id(mb->user, mb->id, st, err);
	pthread_mutex_unlock(&mb->user->rlock);
	return r;
}

enum ms_result
ms_mailbox_take_recent(struct ms_mailbox *mb, uint32_t *first_recent_r,
		       struct ms_error *err)
{
	struct ms_user *u = mb->user;
	int64_t first = 0;
	enum ms_result r;

	if ((r = ms_db_begin(u, err)) != MS_OK)
		return r;
	r = ms_db_int(u->wdb,
		      "SELECT CASE WHEN first_recent < uidnext THEN "
		      "first_recent ELSE 0 END FROM mailboxes WHERE id = ?",
		      mb->id, &first, err);
	/* Nothing recent (the common case of a client that reconnects):
	 * no write, so no fsync on every SELECT. */
	if (r == MS_OK && first == 0) {
		ms_db_rollback(u);
		*first_recent_r = 0;
		return MS_OK;
	}
	if (r == MS_OK)
		r = exec_id(u,
			    "UPDATE mailboxes SET first_recent = uidnext "
			    "WHERE id = ?",
			    mb->id, err);
	if (r != MS_OK) {
		ms_db_rollback(u);
		return r;
	}
	*first_recent_r = (uint32_t)first;
	return ms_db_commit(u, err);
}
