/* ms-index.c - message rows: UIDs, MODSEQs, quota, the append commit. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ms-private.h"

enum ms_result
ms_index_quota_check(struct ms_user *u, uint64_t count, uint64_t bytes,
		     struct ms_error *err)
{
	struct ms_store *store = u->store;
	struct {
		uint64_t quota_bytes, quota_messages;
	} limits, *s = &limits;
	sqlite3_stmt *st;
	uint64_t have_bytes = 0, have_msgs = 0;
	int rc;

	pthread_mutex_lock(&store->lock);
	limits.quota_bytes = store->quota_bytes;
	limits.quota_messages = store->quota_messages;
	pthread_mutex_unlock(&store->lock);
	if (s->quota_bytes == 0 && s->quota_messages == 0)
		return MS_OK;
	st = ms_db_prepare(
		u->wdb, "SELECT total(bytes), total(messages) FROM mailboxes",
		err);
	if (st == NULL)
		return err->code;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		have_bytes = (uint64_t)sqlite3_column_int64(st, 0);
		have_msgs = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return ms_db_error(u->wdb, "quota", err);
	if ((s->quota_bytes > 0 && have_bytes + bytes > s->quota_bytes) ||
	    (s->quota_messages > 0 && have_msgs + count > s->quota_messages))
		return ms_fail(err, MS_ERR_OVER_QUOTA,
			       "quota exceeded (%llu of %llu bytes, %llu of "
			       "%llu messages in use)",
			       (unsigned long long)have_bytes,
			       (unsigned long long)s->quota_bytes,
			       (unsigned long long)have_msgs,
			       (unsigned long long)s->quota_messages);
	return MS_OK;
}

enum ms_result
ms_index_next_modseq(struct ms_user *u, int64_t mailbox, uint64_t *modseq_r,
		     struct ms_error *err)
{
	int64_t modseq = -1;
	sqlite3_stmt *st;
	enum ms_result r;

	r = ms_db_int(u->wdb,
		      "SELECT highestmodseq + 1 FROM mailboxes WHERE id = ?",
		      mailbox, &modseq, err);
	if (r != MS_OK)
		return r;
	if (modseq < 0)
		return ms_fail(err, MS_ERR_NOT_FOUND, "mailbox is gone");
	st = ms_db_prepare(
		u->wdb, "UPDATE mailboxes SET highestmodseq = ? WHERE id = ?",
		err);
	if (st == NULL)
		return err->code;
	sqlite3_bind_int64(st, 1, modseq);
	sqlite3_bind_int64(st, 2, mailbox);
	r = ms_db_step_done(st, err);
	sqlite3_finalize(st);
	*modseq_r = (uint64_t)modseq;
	return r;
}

/* Takes want (0: the next UID) as the message's UID and moves UIDNEXT past
 * it; a chosen UID must not be below UIDNEXT, or it could repeat one that
 * was handed out before. */
static enum ms_result
take_uid(struct ms_user *u, int64_t mailbox, uint32_t want, uint32_t *uid_r,
	 struct ms_error *err)
{
	int64_t uid = -1;
	sqlite3_stmt *st;
	enum ms_result r;

	r = ms_db_int(u->wdb, "SELECT uidnext FROM mailboxes WHERE id = ?",
		      mailbox, &uid, err);
	if (r != MS_OK)
		return r;
	if (uid < 0)
		return ms_fail(err, MS_ERR_NOT_FOUND, "mailbox is gone");
	if (want != 0 && want < uid)
		return ms_fail(err, MS_ERR_EXISTS,
			       "UID %u is below UIDNEXT %lld", want,
			       (long long)uid);
	if (want != 0)
		uid = want;
	/* RFC 3501 2.3.1.1: UIDs are 32-bit; past that the mailbox would
	 * need a new UIDVALIDITY. */
	if (uid >= UINT32_MAX)
		return ms_fail(err, MS_ERR_LIMIT, "mailbox has used all UIDs");
	st = ms_db_prepare(
		u->wdb, "UPDATE mailboxes SET uidnext = ? WHERE id = ?", err);
	if (st == NULL)
		return err->code;
	sqlite3_bind_int64(st, 1, uid + 1);
	sqlite3_bind_int64(st, 2, mailbox);
	r = ms_db_step_done(st, err);
	sqlite3_finalize(st);
	*uid_r = (uint32_t)uid;
	return r;
}

static enum ms_result
insert_mime(struct ms_user *u, int64_t mailbox, uint32_t uid,
	    const struct ms_new_message *m, struct ms_error *err)
{
	sqlite3_stmt *st;
	enum ms_result r;

	if (m->mime == NULL)
		return MS_OK;
	st = ms_db_prepare(u->wdb, "INSERT INTO mime VALUES (?, ?, ?)", err);
	if (st == NULL)
		return err->code;
	sqlite3_bind_int64(st, 1, mailbox);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_blob(st, 3, m->mime, (int)m->mime_len, SQLITE_STATIC);
	r = ms_db_step_done(st, err);
	sqlite3_finalize(st);
	return r;
}

static enum ms_result
insert_row(struct ms_mailbox *mb, const struct ms_new_message *m, uint32_t want,
	   uint32_t *uid_r, struct ms_error *err)
{
	struct ms_user *u = mb->user;
	uint64_t modseq = 0;
	sqlite3_stmt *st;
	enum ms_result r;

	if ((r = take_uid(u, mb->id, want, uid_r, err)) != MS_OK ||
	    (r = ms_index_next_modseq(u, mb->id, &modseq, err)) != MS_OK)
		return r;
	st = ms_db_prepare(u->wdb,
			   "INSERT INTO messages(mailbox, uid, file, size, "
			   "internal_date, tz, save_date, flags, keywords, "
			   "modseq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			   err);
	if (st == NULL)
		return err->code;
	sqlite3_bind_int64(st, 1, mb->id);
	sqlite3_bind_int64(st, 2, *uid_r);
	sqlite3_bind_text(st, 3, m->file, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (int64_t)m->size);
	sqlite3_bind_int64(st, 5, m->internal_date);
	sqlite3_bind_int(st, 6, m->tz_minutes);
	sqlite3_bind_int64(st, 7, (int64_t)time(NULL));
	sqlite3_bind_int(st, 8, (int)(m->flags & MS_FLAGS_ALL));
	sqlite3_bind_text(st, 9, m->keywords != NULL ? m->keywords : "", -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, (int64_t)modseq);
	r = ms_db_step_done(st, err);
	sqlite3_finalize(st);
	if (r == MS_OK)
		r = insert_mime(u, mb->id, *uid_r, m, err);
	return r;
}

enum ms_result
ms_index_insert(struct ms_mailbox *mb, const struct ms_new_message *m,
		uint32_t *uid_r, struct ms_error *err)
{
	return insert_row(mb, m, 0, uid_r, err);
}

/* Records that the folder's cur/ was scanned as of after, if nothing but
 * this append changed it since the last scan (mtime was before). Another
 * writer's rename in between leaves the mark alone, so the next open still
 * scans for what that writer may have left uncommitted. */
static enum ms_result
advance_scan_mark(struct ms_mailbox *mb, int64_t before, int64_t after,
		  struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(mb->user->wdb,
					 "UPDATE mailboxes SET scan_cur = ? "
					 "WHERE id = ? AND scan_cur = ?",
					 err);
	enum ms_result r;

	if (st == NULL)
		return err->code;
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, mb->id);
	sqlite3_bind_int64(st, 3, before);
	r = ms_db_step_done(st, err);
	sqlite3_finalize(st);
	return r;
}

/* Inside the transaction: move the file into place and make it durable. */
static enum ms_result
place_file(struct ms_mailbox *mb, const struct ms_new_message *m,
	   const char *dest, struct ms_error *err)
{
	char *cur = mp_xasprintf("%s/cur", mb->path);
	int64_t before = ms_fs_mtime_ns(cur), after;
	enum ms_result r = MS_OK;

	if (rename(m->tmp_path, dest) != 0)
		r = ms_fail_errno(err, "rename", dest);
	else if (!ms_fs_sync_dir(cur, err))
		r = err->code;
	after = ms_fs_mtime_ns(cur);
	free(cur);
	if (r == MS_OK)
		r = advance_scan_mark(mb, before, after, err);
	return r;
}

enum ms_result
ms_index_add_uid(struct ms_mailbox *mb, const struct ms_new_message *m,
		 uint32_t uid, ms_index_hook_fn *hook, void *hook_ctx,
		 uint32_t *uid_r, struct ms_error *err)
{
	struct ms_user *u = mb->user;
	char *file = mp_xasprintf("cur/%s,S=%llu:2,", m->base,
				  (unsigned long long)m->size);
	char *dest = mp_xasprintf("%s/%s", mb->path, file);
	struct ms_new_message row = *m;
	bool placed = false;
	enum ms_result r;

	row.file = file;
	/* One write transaction from before the rename to the commit: the
	 * UID, the row and the scan mark all belong to this file. */
	if ((r = ms_db_begin(u, err)) != MS_OK)
		goto out;
	r = ms_index_quota_check(u, 1, m->size, err);
	if (r == MS_OK && (r = place_file(mb, m, dest, err)) == MS_OK)
		placed = true;
	if (r == MS_OK)
		r = insert_row(mb, &row, uid, uid_r, err);
	if (r == MS_OK && hook != NULL)
		r = hook(mb, *uid_r, hook_ctx, err);
	if (r == MS_OK)
		r = ms_db_commit(u, err);
	else
		ms_db_rollback(u);
	/* Not committed: the file must not be adopted later, or a client
	 * told "failed" would find the message anyway and send it again. */
	if (r != MS_OK && placed)
		unlink(dest);
out:
	free(file);
	free(dest);
	return r;
}

enum ms_result
ms_index_add(struct ms_mailbox *mb, const struct ms_new_message *m,
	     uint32_t *uid_r, struct ms_error *err)
{
	return ms_index_add_uid(mb, m, 0, NULL, NULL, uid_r, err);
}
