/* ms-copy.c - COPY and MOVE: hard links and one transaction.
 *
 * Message files are immutable, so a copy is a hard link under a new name;
 * the destination rows, and for a move the source tombstones, commit
 * together. A move is therefore atomic: after a crash the messages are in
 * one mailbox or the other, never both, never neither. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ms-private.h"

struct copy_src {
	uint32_t uid;
	uint32_t flags;
	char *file;
	char *keywords;
	uint64_t size;
	int64_t internal_date;
	int tz;
	char *new_file; /* "cur/NAME" in the destination */
};

struct copy_job {
	struct ms_mailbox *src;
	struct ms_mailbox dest;
	struct copy_src *v;
	size_t n;
	size_t linked;
	uint64_t bytes;
};

static void
job_free(struct copy_job *job)
{
	for (size_t i = 0; i < job->n; i++) {
		free(job->v[i].file);
		free(job->v[i].keywords);
		free(job->v[i].new_file);
	}
	free(job->v);
	free(job->dest.name);
	free(job->dest.path);
}

static enum ms_result
load_sources(struct copy_job *job, const struct ms_uidset *set,
	     struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(
		job->src->user->wdb,
		"SELECT uid, flags, file, keywords, size, internal_date, tz "
		"FROM messages WHERE mailbox = ? AND uid BETWEEN ? AND ? "
		"ORDER BY uid",
		err);
	size_t ranges = set != NULL ? set->n : 1;
	int rc = SQLITE_DONE;

	if (st == NULL)
		return err->code;
	for (size_t i = 0; i < ranges && rc == SQLITE_DONE; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, job->src->id);
		sqlite3_bind_int64(st, 2, set != NULL ? set->v[i].lo : 0);
		sqlite3_bind_int64(st, 3,
				   set != NULL ? set->v[i].hi : UINT32_MAX);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct copy_src *c;

			job->v = mp_xrealloc(job->v,
					     (job->n + 1) * sizeof(*job->v));
			c = &job->v[job->n++];
			memset(c, 0, sizeof(*c));
			c->uid = (uint32_t)sqlite3_column_int64(st, 0);
			c->flags = (uint32_t)sqlite3_column_int(st, 1);
			c->file = mp_xstrdup(
				(const char *)sqlite3_column_text(st, 2));
			c->keywords = mp_xstrdup(
				(const char *)sqlite3_column_text(st, 3));
			c->size = (uint64_t)sqlite3_column_int64(st, 4);
			c->internal_date = sqlite3_column_int64(st, 5);
			c->tz = sqlite3_column_int(st, 6);
			job->bytes += c->size;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE
		       ? MS_OK
		       : ms_db_error(job->src->user->wdb, "copy", err);
}

static enum ms_result
link_files(struct copy_job *job, struct ms_error *err)
{
	struct ms_store *store = job->src->user->store;

	for (; job->linked < job->n; job->linked++) {
		struct copy_src *c = &job->v[job->linked];
		char *base = ms_fs_unique_name(store);
		char *from = mp_xasprintf("%s/%s", job->src->path, c->file);
		char *to;
		int rc;

		c->new_file = mp_xasprintf("cur/%s,S=%llu:2,", base,
					   (unsigned long long)c->size);
		to = mp_xasprintf("%s/%s", job->dest.path, c->new_file);
		rc = link(from, to);
		if (rc != 0)
			ms_fail_errno(err, "link", to);
		free(base);
		free(from);
		free(to);
		if (rc != 0)
			return err->code;
	}
	return MS_OK;
}

static void
unlink_links(struct copy_job *job)
{
	for (size_t i = 0; i < job->linked; i++) {
		char *to = mp_xasprintf("%s/%s", job->dest.path,
					job->v[i].new_file);
		unlink(to);
		free(to);
	}
}

static enum ms_result
copy_mime(struct copy_job *job, uint32_t src_uid, uint32_t dest_uid,
	  struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(
		job->src->user->wdb,
		"INSERT INTO mime SELECT ?, ?, data FROM mime WHERE "
		"mailbox = ? AND uid = ?",
		err);
	enum ms_result r;

	if (st == NULL)
		return err->code;
	sqlite3_bind_int64(st, 1, job->dest.id);
	sqlite3_bind_int64(st, 2, dest_uid);
	sqlite3_bind_int64(st, 3, job->src->id);
	sqlite3_bind_int64(st, 4, src_uid);
	r = ms_db_step_done(st, err);
	sqlite3_finalize(st);
	return r;
}

static enum ms_result
insert_copies(struct copy_job *job, struct ms_change_list *out,
	      struct ms_error *err)
{
	enum ms_result r = MS_OK;

	out->uids = mp_xcalloc(job->n, sizeof(*out->uids));
	out->src_uids = mp_xcalloc(job->n, sizeof(*out->src_uids));
	for (size_t i = 0; r == MS_OK && i < job->n; i++) {
		const struct copy_src *c = &job->v[i];
		struct ms_new_message m = {
			.file = c->new_file,
			.size = c->size,
			.internal_date = c->internal_date,
			.tz_minutes = c->tz,
			.flags = c->flags,
			.keywords = c->keywords,
		};
		uint32_t uid = 0;

		r = ms_index_insert(&job->dest, &m, &uid, err);
		if (r == MS_OK)
			r = copy_mime(job, c->uid, uid, err);
		out->uids[i] = uid;
		out->src_uids[i] = c->uid;
		out->n_uids = i + 1;
	}
	return r;
}

/* For a move: tombstones for the sources, their files to remove after the
 * commit, and their rows gone. */
static enum ms_result
remove_sources(struct copy_job *job, uint64_t *modseq_r, struct ms_error *err)
{
	struct ms_mailbox *src = job->src;
	sqlite3 *db = src->user->wdb;
	enum ms_result r =
		ms_index_next_modseq(src->user, src->id, modseq_r, err);
	sqlite3_stmt *tomb = NULL, *pend = NULL, *del = NULL;

	if (r == MS_OK &&
	    ((tomb = ms_db_prepare(db,
				   "INSERT OR REPLACE INTO expunged VALUES "
				   "(?, ?, ?)",
				   err)) == NULL ||
	     (pend = ms_db_prepare(db,
				   "INSERT OR IGNORE INTO pending_remove "
				   "VALUES (?)",
				   err)) == NULL ||
	     (del = ms_db_prepare(db,
				  "DELETE FROM messages WHERE mailbox = ? AND "
				  "uid = ?",
				  err)) == NULL))
		r = err->code;
	for (size_t i = 0; r == MS_OK && i < job->n; i++) {
		char *path = mp_xasprintf("%s/%s", src->path, job->v[i].file);

		sqlite3_reset(tomb);
		sqlite3_bind_int64(tomb, 1, src->id);
		sqlite3_bind_int64(tomb, 2, job->v[i].uid);
		sqlite3_bind_int64(tomb, 3, (int64_t)*modseq_r);
		sqlite3_reset(pend);
		sqlite3_bind_text(pend, 1, path, -1, SQLITE_TRANSIENT);
		sqlite3_reset(del);
		sqlite3_bind_int64(del, 1, src->id);
		sqlite3_bind_int64(del, 2, job->v[i].uid);
		if ((r = ms_db_step_done(tomb, err)) == MS_OK &&
		    (r = ms_db_step_done(pend, err)) == MS_OK)
			r = ms_db_step_done(del, err);
		free(path);
	}
	sqlite3_finalize(tomb);
	sqlite3_finalize(pend);
	sqlite3_finalize(del);
	return r;
}

enum ms_result
ms_message_copy(struct ms_mailbox *mb, const struct ms_uidset *set,
		const char *dest, bool move, struct ms_change_list *out,
		uint32_t *dest_uidvalidity_r, struct ms_error *err)
{
	struct copy_job job = {.src = mb};
	struct ms_user *u = mb->user;
	bool noselect = false;
	uint64_t src_modseq = 0;
	char *cur = NULL;
	enum ms_result r;

	memset(out, 0, sizeof(*out));
	if ((r = ms_db_begin(u, err)) != MS_OK)
		return r;
	r = ms_mailbox_lookup(u, u->wdb, dest, &job.dest, &noselect, err);
	if (r == MS_OK && noselect)
		r = ms_fail(err, MS_ERR_NOT_FOUND, "%s cannot be selected",
			    dest);
	if (r == MS_OK && move && job.dest.id == mb->id)
		r = ms_fail(err, MS_ERR_NOT_ALLOWED,
			    "cannot move messages into their own mailbox");
	if (r == MS_OK)
		r = load_sources(&job, set, err);
	if (r == MS_OK && !move)
		r = ms_index_quota_check(u, job.n, job.bytes, err);
	if (r == MS_OK)
		r = link_files(&job, err);
	if (r == MS_OK && job.n > 0) {
		cur = mp_xasprintf("%s/cur", job.dest.path);
		if (!ms_fs_sync_dir(cur, err))
			r = err->code;
	}
	if (r == MS_OK)
		r = insert_copies(&job, out, err);
	if (r == MS_OK && move && job.n > 0)
		r = remove_sources(&job, &src_modseq, err);
	if (r == MS_OK)
		r = ms_db_commit(u, err);
	else
		ms_db_rollback(u);
	if (r != MS_OK) {
		unlink_links(&job);
		ms_change_list_free(out);
	} else {
		*dest_uidvalidity_r = job.dest.uidvalidity;
		out->modseq = src_modseq;
		if (move)
			ms_sync_pending_removals(u);
		ms_notify_changed(u, job.dest.name);
		if (move)
			ms_notify_changed(u, mb->name);
	}
	free(cur);
	job_free(&job);
	return r;
}

/* RFC 3501 6.3.5: renaming INBOX moves its messages to a new mailbox and
 * leaves INBOX, and its children, where they are. */
enum ms_result
ms_inbox_rename(struct ms_user *u, const char *to, struct ms_error *err)
{
	struct ms_change_list moved;
	struct ms_mailbox *inbox;
	uint32_t uidvalidity = 0;
	enum ms_result r;

	if (ms_name_is_inbox(to))
		return ms_fail(err, MS_ERR_EXISTS, "mailbox INBOX exists");
	if ((r = ms_mailbox_create(u, to, 0, err)) != MS_OK)
		return r;
	inbox = ms_mailbox_open(u, "INBOX", err);
	if (inbox == NULL)
		return err->code;
	r = ms_message_copy(inbox, NULL, to, true, &moved, &uidvalidity, err);
	if (r == MS_OK)
		ms_change_list_free(&moved);
	ms_mailbox_close(&inbox);
	return r;
}
