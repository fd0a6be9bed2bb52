/* ms-message.c - reading message metadata and files. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <moonpost/mime.h>

#include "ms-private.h"

void
ms_msg_list_free(struct ms_msg_list *list)
{
	MP_FREE(list->v);
	MP_FREE(list->strings);
	list->n = 0;
}

void
ms_change_list_free(struct ms_change_list *c)
{
	ms_msg_list_free(&c->msgs);
	MP_FREE(c->uids);
	MP_FREE(c->src_uids);
	c->n_uids = 0;
}

/* Keywords are gathered in one string buffer; pointers are fixed up once
 * the list is complete, as the buffer moves while it grows. */
void
ms_msgs_add_row(struct ms_msg_list *list, struct mp_buf *kw, sqlite3_stmt *st,
		int first_col)
{
	struct ms_msg *m;
	const char *k;

	list->v = mp_xrealloc(list->v, (list->n + 1) * sizeof(*list->v));
	m = &list->v[list->n++];
	m->uid = (uint32_t)sqlite3_column_int64(st, first_col);
	m->flags = (uint32_t)sqlite3_column_int(st, first_col + 1);
	m->modseq = (uint64_t)sqlite3_column_int64(st, first_col + 2);
	m->size = (uint64_t)sqlite3_column_int64(st, first_col + 3);
	m->internal_date = sqlite3_column_int64(st, first_col + 4);
	m->tz_minutes = (int16_t)sqlite3_column_int(st, first_col + 5);
	k = (const char *)sqlite3_column_text(st, first_col + 6);
	/* Offset for now, made a pointer by ms_msgs_finish. */
	m->keywords = (const char *)(uintptr_t)kw->len;
	mp_buf_append(kw, k != NULL ? k : "", strlen(k != NULL ? k : "") + 1);
}

void
ms_msgs_finish(struct ms_msg_list *list, struct mp_buf *kw)
{
	if (kw->data == NULL)
		mp_buf_append(kw, "", 1);
	list->strings = mp_buf_steal(kw);
	for (size_t i = 0; i < list->n; i++)
		list->v[i].keywords =
			list->strings + (uintptr_t)list->v[i].keywords;
}

/* Runs a query whose rows are message columns from first_col on, with
 * the mailbox id bound to parameter 1 and the range to 2 and 3. */
enum ms_result
ms_msgs_query(sqlite3 *db, const char *sql, int64_t mailbox,
	      const struct ms_uidset *set, struct ms_msg_list *out,
	      struct ms_error *err)
{
	struct mp_buf kw = {0};
	size_t ranges = set != NULL ? set->n : 1;
	sqlite3_stmt *st = ms_db_prepare(db, sql, err);
	int rc = SQLITE_DONE;

	if (st == NULL)
		return err->code;
	for (size_t i = 0; i < ranges && rc == SQLITE_DONE; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, mailbox);
		sqlite3_bind_int64(st, 2, set != NULL ? set->v[i].lo : 0);
		sqlite3_bind_int64(st, 3,
				   set != NULL ? set->v[i].hi : UINT32_MAX);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			ms_msgs_add_row(out, &kw, st, 0);
	}
	sqlite3_finalize(st);
	ms_msgs_finish(out, &kw);
	if (rc != SQLITE_DONE) {
		ms_msg_list_free(out);
		return ms_db_error(db, "messages", err);
	}
	return MS_OK;
}

#define MSG_COLUMNS "uid, flags, modseq, size, internal_date, tz, keywords"

enum ms_result
ms_mailbox_messages(struct ms_mailbox *mb, const struct ms_uidset *set,
		    struct ms_msg_list *out, struct ms_error *err)
{
	enum ms_result r;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&mb->user->rlock);
	r = ms_msgs_query(mb->user->rdb,
			  "SELECT " MSG_COLUMNS " FROM messages WHERE "
			  "mailbox = ? AND uid BETWEEN ? AND ? ORDER BY uid",
			  mb->id, set, out, err);
	pthread_mutex_unlock(&mb->user->rlock);
	return r;
}

static enum ms_result
load_mime(struct ms_mailbox *mb, uint32_t uid, uint64_t size,
	  struct mp_mime_message **mime_r, struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(
		mb->user->rdb,
		"SELECT data FROM mime WHERE mailbox = ? AND uid = ?", err);
	const char *why = NULL;
	int rc;

	*mime_r = NULL;
	if (st == NULL)
		return err->code;
	sqlite3_bind_int64(st, 1, mb->id);
	sqlite3_bind_int64(st, 2, uid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*mime_r = mp_mime_deserialize(
			sqlite3_column_blob(st, 0),
			(size_t)sqlite3_column_bytes(st, 0), size, &why);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return ms_db_error(mb->user->rdb, "mime", err);
	if (*mime_r == NULL)
		return ms_fail(err, MS_ERR_TEMP, "structure of UID %u: %s", uid,
			       why != NULL ? why : "missing");
	return MS_OK;
}

enum ms_result
ms_message_get(struct ms_mailbox *mb, uint32_t uid, struct ms_msg_list *meta,
	       struct mp_mime_message **mime_r, struct ms_error *err)
{
	struct ms_uid_range one = {uid, uid};
	struct ms_uidset set = {&one, 1};
	enum ms_result r = ms_mailbox_messages(mb, &set, meta, err);

	if (r == MS_OK && meta->n == 0) {
		ms_msg_list_free(meta);
		return ms_fail(err, MS_ERR_NOT_FOUND, "no message with UID %u",
			       uid);
	}
	if (r != MS_OK || mime_r == NULL)
		return r;
	pthread_mutex_lock(&mb->user->rlock);
	r = load_mime(mb, uid, meta->v[0].size, mime_r, err);
	pthread_mutex_unlock(&mb->user->rlock);
	if (r != MS_OK)
		ms_msg_list_free(meta);
	return r;
}

/* The file of uid relative to the folder; caller frees. NULL when the UID
 * does not exist. */
char *
ms_message_file(struct ms_mailbox *mb, sqlite3 *db, uint32_t uid,
		struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(
		db, "SELECT file FROM messages WHERE mailbox = ? AND uid = ?",
		err);
	char *file = NULL;
	int rc;

	if (st == NULL)
		return NULL;
	sqlite3_bind_int64(st, 1, mb->id);
	sqlite3_bind_int64(st, 2, uid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		file = mp_xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		ms_fail(err, MS_ERR_NOT_FOUND, "no message with UID %u", uid);
	else if (rc != SQLITE_ROW)
		ms_db_error(db, "file", err);
	return file;
}

int
ms_message_open(struct ms_mailbox *mb, uint32_t uid, struct ms_error *err)
{
	char *file, *path;
	int fd;

	pthread_mutex_lock(&mb->user->rlock);
	file = ms_message_file(mb, mb->user->rdb, uid, err);
	pthread_mutex_unlock(&mb->user->rlock);
	if (file == NULL)
		return -1;
	path = mp_xasprintf("%s/%s", mb->path, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		ms_fail_errno(err, "open", path);
	free(path);
	free(file);
	return fd;
}
