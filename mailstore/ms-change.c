/* ms-change.c - changing messages: flags, copy, move, expunge; and
 * reading what changed since a MODSEQ.
 *
 * Every change is one write transaction that takes one new MODSEQ for the
 * mailbox it touches. Expunged UIDs leave a tombstone with that MODSEQ so
 * that a client resynchronising (QRESYNC, or a session woken by IDLE)
 * learns of them. Files are unlinked only after the commit. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ms-private.h"

/* A source row of a copy or an expunge. */
struct row {
	uint32_t uid;
	uint32_t flags;
	uint64_t modseq;
	char *file;
	char *keywords;
	uint64_t size;
	int64_t internal_date;
	int tz;
};

struct rows {
	struct row *v;
	size_t n;
};

static void
rows_free(struct rows *rows)
{
	for (size_t i = 0; i < rows->n; i++) {
		free(rows->v[i].file);
		free(rows->v[i].keywords);
	}
	MP_FREE(rows->v);
	rows->n = 0;
}

static void
rows_add(struct rows *rows, sqlite3_stmt *st)
{
	struct row *r;

	rows->v = mp_xrealloc(rows->v, (rows->n + 1) * sizeof(*rows->v));
	r = &rows->v[rows->n++];
	r->uid = (uint32_t)sqlite3_column_int64(st, 0);
	r->flags = (uint32_t)sqlite3_column_int(st, 1);
	r->modseq = (uint64_t)sqlite3_column_int64(st, 2);
	r->file = mp_xstrdup((const char *)sqlite3_column_text(st, 3));
	r->keywords = mp_xstrdup((const char *)sqlite3_column_text(st, 4));
	r->size = (uint64_t)sqlite3_column_int64(st, 5);
	r->internal_date = sqlite3_column_int64(st, 6);
	r->tz = sqlite3_column_int(st, 7);
}

/* Rows of mb in set (NULL: all), optionally only those with \Deleted, on
 * the writer connection (inside a transaction). */
static enum ms_result
select_rows(struct ms_mailbox *mb, const struct ms_uidset *set,
	    bool deleted_only, struct rows *out, struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(
		mb->user->wdb,
		deleted_only
			? "SELECT uid, flags, modseq, file, keywords, size, "
			  "internal_date, tz FROM messages WHERE mailbox = ? "
			  "AND uid BETWEEN ? AND ? AND (flags & 8) != 0 "
			  "ORDER BY uid"
			: "SELECT uid, flags, modseq, file, keywords, size, "
			  "internal_date, tz FROM messages WHERE mailbox = ? "
			  "AND uid BETWEEN ? AND ? ORDER BY uid",
		err);
	size_t ranges = set != NULL ? set->n : 1;
	int rc = SQLITE_DONE;

	if (st == NULL)
		return err->code;
	for (size_t i = 0; i < ranges && rc == SQLITE_DONE; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, mb->id);
		sqlite3_bind_int64(st, 2, set != NULL ? set->v[i].lo : 0);
		sqlite3_bind_int64(st, 3,
				   set != NULL ? set->v[i].hi : UINT32_MAX);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			rows_add(out, st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		rows_free(out);
		return ms_db_error(mb->user->wdb, "select", err);
	}
	return MS_OK;
}

/* Re-reads the given UIDs into list (their state after the change). */
static enum ms_result
reread(struct ms_mailbox *mb, const uint32_t *uids, size_t n,
       struct ms_msg_list *list, struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(
		mb->user->wdb,
		"SELECT uid, flags, modseq, size, internal_date, tz, keywords "
		"FROM messages WHERE mailbox = ? AND uid = ?",
		err);
	struct mp_buf kw = {0};
	int rc = SQLITE_DONE;

	if (st == NULL)
		return err->code;
	for (size_t i = 0; i < n && (rc == SQLITE_DONE || rc == SQLITE_ROW);
	     i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, mb->id);
		sqlite3_bind_int64(st, 2, uids[i]);
		if ((rc = sqlite3_step(st)) == SQLITE_ROW)
			ms_msgs_add_row(list, &kw, st, 0);
	}
	sqlite3_finalize(st);
	ms_msgs_finish(list, &kw);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return ms_db_error(mb->user->wdb, "reread", err);
	return MS_OK;
}

static void
uids_add(uint32_t **v, size_t *n, uint32_t uid)
{
	*v = mp_xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = uid;
}

static uint32_t
apply_flags(uint32_t old, enum ms_flag_mode mode, uint32_t flags)
{
	switch (mode) {
	case MS_FLAGS_ADD:
		return old | flags;
	case MS_FLAGS_REMOVE:
		return old & ~flags;
	case MS_FLAGS_REPLACE:
		return flags & MS_FLAGS_ALL;
	}
	return old;
}

static enum ms_result
update_row(struct ms_mailbox *mb, const struct row *row, uint32_t flags,
	   const char *kw, uint64_t modseq, struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(
		mb->user->wdb,
		"UPDATE messages SET flags = ?, keywords = ?, modseq = ? "
		"WHERE mailbox = ? AND uid = ?",
		err);
	enum ms_result r;

	if (st == NULL)
		return err->code;
	sqlite3_bind_int(st, 1, (int)flags);
	sqlite3_bind_text(st, 2, kw, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)modseq);
	sqlite3_bind_int64(st, 4, mb->id);
	sqlite3_bind_int64(st, 5, row->uid);
	r = ms_db_step_done(st, err);
	sqlite3_finalize(st);
	return r;
}

struct store_req {
	enum ms_flag_mode mode;
	uint32_t flags;
	const struct mp_strlist *keywords;
	uint64_t unchangedsince;
};

/* Changes one row if it needs changing; the MODSEQ is taken at the first
 * real change, so a STORE that changes nothing changes no MODSEQ. */
static enum ms_result
store_row(struct ms_mailbox *mb, const struct row *row,
	  const struct store_req *req, uint64_t *modseq,
	  struct ms_change_list *changed, struct ms_change_list *modified,
	  struct ms_error *err)
{
	uint32_t flags = apply_flags(row->flags, req->mode, req->flags);
	char *kw =
		ms_keywords_apply(row->keywords, req->mode, req->keywords, err);
	enum ms_result r = MS_OK;

	if (kw == NULL)
		return err->code;
	if (req->unchangedsince > 0 && row->modseq > req->unchangedsince) {
		uids_add(&modified->uids, &modified->n_uids, row->uid);
	} else if (flags != row->flags || strcmp(kw, row->keywords) != 0) {
		if (*modseq == 0)
			r = ms_index_next_modseq(mb->user, mb->id, modseq, err);
		if (r == MS_OK)
			r = update_row(mb, row, flags, kw, *modseq, err);
		if (r == MS_OK)
			uids_add(&changed->uids, &changed->n_uids, row->uid);
	}
	free(kw);
	return r;
}

enum ms_result
ms_message_store(struct ms_mailbox *mb, const struct ms_uidset *set,
		 enum ms_flag_mode mode, uint32_t flags,
		 const struct mp_strlist *keywords, uint64_t unchangedsince,
		 struct ms_change_list *changed,
		 struct ms_change_list *modified, struct ms_error *err)
{
	struct store_req req = {mode, flags, keywords, unchangedsince};
	struct rows rows = {0};
	uint64_t modseq = 0;
	enum ms_result r;

	memset(changed, 0, sizeof(*changed));
	memset(modified, 0, sizeof(*modified));
	if ((r = ms_db_begin(mb->user, err)) != MS_OK)
		return r;
	r = select_rows(mb, set, false, &rows, err);
	for (size_t i = 0; r == MS_OK && i < rows.n; i++)
		r = store_row(mb, &rows.v[i], &req, &modseq, changed, modified,
			      err);
	if (r == MS_OK)
		r = reread(mb, changed->uids, changed->n_uids, &changed->msgs,
			   err);
	rows_free(&rows);
	if (r == MS_OK && modseq > 0) {
		r = ms_db_commit(mb->user, err);
	} else {
		ms_db_rollback(mb->user);
	}
	if (r != MS_OK) {
		ms_change_list_free(changed);
		ms_change_list_free(modified);
		return r;
	}
	changed->modseq = modseq;
	if (modseq > 0)
		ms_notify_changed(mb->user, mb->name);
	return MS_OK;
}

static enum ms_result
bind_exec(sqlite3 *db, const char *sql, int64_t a, int64_t b, int64_t c,
	  const char *text, struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(db, sql, err);
	enum ms_result r;

	if (st == NULL)
		return err->code;
	sqlite3_bind_int64(st, 1, a);
	sqlite3_bind_int64(st, 2, b);
	if (sqlite3_bind_parameter_count(st) >= 3)
		sqlite3_bind_int64(st, 3, c);
	if (text != NULL)
		sqlite3_bind_text(st, sqlite3_bind_parameter_count(st), text,
				  -1, SQLITE_STATIC);
	r = ms_db_step_done(st, err);
	sqlite3_finalize(st);
	return r;
}

/* Removes rows from mb inside a transaction: tombstones, pending file
 * removals, then the rows. */
static enum ms_result
remove_rows(struct ms_mailbox *mb, const struct rows *rows, uint64_t modseq,
	    struct ms_error *err)
{
	sqlite3 *db = mb->user->wdb;
	enum ms_result r = MS_OK;

	for (size_t i = 0; r == MS_OK && i < rows->n; i++) {
		char *path = mp_xasprintf("%s/%s", mb->path, rows->v[i].file);

		r = bind_exec(
			db, "INSERT OR REPLACE INTO expunged VALUES (?, ?, ?)",
			mb->id, rows->v[i].uid, (int64_t)modseq, NULL, err);
		if (r == MS_OK)
			r = bind_exec(db,
				      "INSERT OR IGNORE INTO pending_remove "
				      "VALUES (?)",
				      0, 0, 0, path, err);
		if (r == MS_OK)
			r = bind_exec(db,
				      "DELETE FROM messages WHERE mailbox = ? "
				      "AND uid = ?",
				      mb->id, rows->v[i].uid, 0, NULL, err);
		free(path);
	}
	return r;
}

enum ms_result
ms_message_expunge(struct ms_mailbox *mb, const struct ms_uidset *set,
		   struct ms_change_list *out, struct ms_error *err)
{
	struct rows rows = {0};
	uint64_t modseq = 0;
	enum ms_result r;

	memset(out, 0, sizeof(*out));
	if ((r = ms_db_begin(mb->user, err)) != MS_OK)
		return r;
	r = select_rows(mb, set, true, &rows, err);
	if (r == MS_OK && rows.n > 0)
		r = ms_index_next_modseq(mb->user, mb->id, &modseq, err);
	if (r == MS_OK)
		r = remove_rows(mb, &rows, modseq, err);
	if (r == MS_OK && rows.n > 0)
		r = ms_db_commit(mb->user, err);
	else
		ms_db_rollback(mb->user);
	for (size_t i = 0; r == MS_OK && i < rows.n; i++)
		uids_add(&out->uids, &out->n_uids, rows.v[i].uid);
	out->modseq = modseq;
	rows_free(&rows);
	if (r == MS_OK && modseq > 0) {
		ms_sync_pending_removals(mb->user);
		ms_notify_changed(mb->user, mb->name);
	}
	return r;
}

static enum ms_result
changed_msgs(struct ms_mailbox *mb, sqlite3 *db, uint64_t modseq,
	     struct ms_msg_list *out, struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(
		db,
		"SELECT uid, flags, modseq, size, internal_date, tz, keywords "
		"FROM messages WHERE mailbox = ? AND modseq > ? ORDER BY uid",
		err);
	struct mp_buf kw = {0};
	int rc;

	if (st == NULL)
		return err->code;
	sqlite3_bind_int64(st, 1, mb->id);
	sqlite3_bind_int64(st, 2, (int64_t)modseq);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		ms_msgs_add_row(out, &kw, st, 0);
	sqlite3_finalize(st);
	ms_msgs_finish(out, &kw);
	return rc == SQLITE_DONE ? MS_OK : ms_db_error(db, "changes", err);
}

static enum ms_result
expunged_since(struct ms_mailbox *mb, sqlite3 *db, uint64_t modseq,
	       struct ms_change_list *out, struct ms_error *err)
{
	sqlite3_stmt *st =
		ms_db_prepare(db,
			      "SELECT uid FROM expunged WHERE "
			      "mailbox = ? AND modseq > ? ORDER BY uid",
			      err);
	int rc;

	if (st == NULL)
		return err->code;
	sqlite3_bind_int64(st, 1, mb->id);
	sqlite3_bind_int64(st, 2, (int64_t)modseq);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		uids_add(&out->uids, &out->n_uids,
			 (uint32_t)sqlite3_column_int64(st, 0));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? MS_OK : ms_db_error(db, "expunged", err);
}

static enum ms_result
highest_modseq(struct ms_mailbox *mb, sqlite3 *db, uint64_t *modseq_r,
	       struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(
		db, "SELECT highestmodseq FROM mailboxes WHERE id = ?", err);
	int rc;

	if (st == NULL)
		return err->code;
	sqlite3_bind_int64(st, 1, mb->id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*modseq_r = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return MS_OK;
	if (rc == SQLITE_DONE)
		return ms_fail(err, MS_ERR_NOT_FOUND, "mailbox is gone");
	return ms_db_error(db, "highestmodseq", err);
}

enum ms_result
ms_mailbox_changes(struct ms_mailbox *mb, uint64_t modseq,
		   struct ms_change_list *out, struct ms_error *err)
{
	sqlite3 *db = mb->user->rdb;
	enum ms_result r;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&mb->user->rlock);
	/* One read transaction: both queries see the same snapshot. */
	r = ms_db_exec(db, "BEGIN", err);
	if (r == MS_OK)
		r = highest_modseq(mb, db, &out->modseq, err);
	if (r == MS_OK)
		r = changed_msgs(mb, db, modseq, &out->msgs, err);
	if (r == MS_OK)
		r = expunged_since(mb, db, modseq, out, err);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	pthread_mutex_unlock(&mb->user->rlock);
	if (r != MS_OK)
		ms_change_list_free(out);
	return r;
}
