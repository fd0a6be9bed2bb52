/* ms-sync.c - bringing a folder and its index rows back into agreement.
 *
 * Files without rows are adopted: a crash between an append's rename and
 * its commit leaves one, and so does a program that delivers into new/.
 * Rows without files (a file deleted behind our back) are expunged. Files
 * listed in pending_remove were expunged and are unlinked, never adopted.
 *
 * Each folder records the modification times of cur/ and new/ as of its
 * last full scan; opening a mailbox whose directories have not changed
 * since costs two stat(2) calls. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <moonpost/log.h>
#include <moonpost/mime.h>

#include "ms-private.h"

void
ms_sync_pending_removals(struct ms_user *u)
{
	struct ms_error err;
	struct mp_strlist paths = {0};
	sqlite3_stmt *st;

	if (ms_db_begin(u, &err) != MS_OK)
		return;
	st = ms_db_prepare(u->wdb, "SELECT path FROM pending_remove", &err);
	while (st != NULL && sqlite3_step(st) == SQLITE_ROW)
		mp_strlist_add(&paths,
			       (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	for (size_t i = 0; i < paths.n; i++)
		ms_fs_remove(paths.v[i]);
	if (paths.n > 0)
		ms_db_exec(u->wdb, "DELETE FROM pending_remove", &err);
	ms_db_commit(u, &err);
	mp_strlist_free(&paths);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
in_sorted(const struct mp_strlist *set, const char *s)
{
	return set->n > 0 &&
	       bsearch(&s, set->v, set->n, sizeof(*set->v), cmp_str) != NULL;
}

static void
list_dir(const char *path, struct mp_strlist *out)
{
	DIR *d = opendir(path);
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			mp_strlist_add(out, e->d_name);
	}
	if (d != NULL)
		closedir(d);
	if (out->n > 0)
		qsort(out->v, out->n, sizeof(*out->v), cmp_str);
}

/* Moves what other programs delivered into new/ over to cur/, with the
 * Maildir info suffix the specification asks for. */
static void
take_new(const char *folder)
{
	struct mp_strlist names = {0};
	char *dir = mp_xasprintf("%s/new", folder);

	list_dir(dir, &names);
	for (size_t i = 0; i < names.n; i++) {
		char *from = mp_xasprintf("%s/new/%s", folder, names.v[i]);
		char *to =
			strchr(names.v[i], ':') != NULL
				? mp_xasprintf("%s/cur/%s", folder, names.v[i])
				: mp_xasprintf("%s/cur/%s:2,", folder,
					       names.v[i]);
		if (rename(from, to) != 0)
			mp_log(MP_LOG_WARN,
			       "event=maildir_new_move file=%s "
			       "error=%s",
			       mp_q(from), mp_q(strerror(errno)));
		free(from);
		free(to);
	}
	mp_strlist_free(&names);
	free(dir);
}

static uint32_t
maildir_flags(const char *name)
{
	const char *info = strstr(name, ":2,");
	uint32_t flags = 0;

	for (info = info != NULL ? info + 3 : ""; *info != '\0'; info++) {
		switch (*info) {
		case 'S':
			flags |= MS_FLAG_SEEN;
			break;
		case 'R':
			flags |= MS_FLAG_ANSWERED;
			break;
		case 'F':
			flags |= MS_FLAG_FLAGGED;
			break;
		case 'T':
			flags |= MS_FLAG_DELETED;
			break;
		case 'D':
			flags |= MS_FLAG_DRAFT;
			break;
		default:
			break;
		}
	}
	return flags;
}

/* Reads in_fd to its end, feeding the parser and, with out_fd >= 0,
 * writing a CRLF copy there. *bare_lf_r tells whether any LF lacked its
 * CR. */
static bool
pump(int in_fd, int out_fd, struct mp_mime_parser *p, uint64_t *size_r,
     bool *bare_lf_r)
{
	char in[32768], out[65536];
	bool last_cr = false;
	ssize_t n;

	*size_r = 0;
	*bare_lf_r = false;
	while ((n = read(in_fd, in, sizeof(in))) > 0) {
		size_t o = ms_crlf(in, (size_t)n, out, &last_cr);

		*bare_lf_r |= o != (size_t)n;
		if (out_fd >= 0 && write(out_fd, out, o) != (ssize_t)o)
			return false;
		mp_mime_parser_feed(p, out_fd >= 0 ? out : in,
				    out_fd >= 0 ? o : (size_t)n);
		*size_r += out_fd >= 0 ? o : (uint64_t)n;
	}
	return n == 0;
}

/* Rewrites a foreign LF file as CRLF under a new name in cur/, keeping its
 * Maildir info. Returns the new "cur/NAME" (caller frees) or NULL. */
static char *
convert_to_crlf(struct ms_mailbox *mb, int in_fd, const char *name,
		struct mp_mime_parser *p, uint64_t *size_r,
		struct ms_error *err)
{
	const char *info = strstr(name, ":2,");
	char *base = ms_fs_unique_name(mb->user->store);
	char *tmp = mp_xasprintf("%s/tmp/%s", mb->path, base);
	char *file = NULL, *dest;
	bool bare;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0 || lseek(in_fd, 0, SEEK_SET) != 0 ||
	    !pump(in_fd, fd, p, size_r, &bare) || fsync(fd) != 0) {
		ms_fail_errno(err, "convert", tmp);
		goto out;
	}
	file = mp_xasprintf("cur/%s,S=%llu%s", base,
			    (unsigned long long)*size_r,
			    info != NULL ? info : ":2,");
	dest = mp_xasprintf("%s/%s", mb->path, file);
	if (rename(tmp, dest) != 0) {
		ms_fail_errno(err, "rename", dest);
		MP_FREE(file);
	}
	free(dest);
out:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	free(base);
	return file;
}

/* Reads (and if need be converts) cur/name and gives it a row. */
static enum ms_result
adopt(struct ms_mailbox *mb, const char *name, struct ms_error *err)
{
	char *path = mp_xasprintf("%s/cur/%s", mb->path, name);
	char *file = mp_xasprintf("cur/%s", name);
	struct mp_mime_parser *p = mp_mime_parser_new(NULL);
	struct ms_new_message m = {.flags = maildir_flags(name),
				   .keywords = ""};
	struct mp_mime_message *mime;
	struct mp_buf blob = {0};
	struct stat st;
	enum ms_result r = MS_OK;
	bool bare = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) != 0 || !pump(fd, -1, p, &m.size, &bare))
		r = ms_fail_errno(err, "read", path);
	if (r == MS_OK && bare) {
		/* Stored messages are CRLF: sizes and offsets must be what
		 * IMAP sends. Parse the converted copy instead. */
		struct mp_mime_message *old = mp_mime_parser_finish(&p);
		char *converted;

		mp_mime_message_free(&old);
		p = mp_mime_parser_new(NULL);
		converted = convert_to_crlf(mb, fd, name, p, &m.size, err);
		if (converted == NULL) {
			r = err->code;
		} else {
			unlink(path);
			free(file);
			file = converted;
		}
	}
	mime = mp_mime_parser_finish(&p);
	if (r == MS_OK) {
		uint32_t uid;

		mp_mime_serialize(mime, &blob);
		m.file = file;
		m.internal_date = st.st_mtim.tv_sec;
		m.mime = blob.data;
		m.mime_len = blob.len;
		r = ms_index_insert(mb, &m, &uid, err);
		if (r == MS_OK)
			mp_log(MP_LOG_INFO,
			       "event=message_adopted user=%s mailbox=%s "
			       "uid=%u "
			       "file=%s",
			       mp_q(mb->user->address), mp_q(mb->name), uid,
			       mp_q(file));
	}
	mp_mime_message_free(&mime);
	mp_buf_free(&blob);
	if (fd >= 0)
		close(fd);
	free(path);
	free(file);
	return r;
}

static enum ms_result
load_strings(sqlite3 *db, const char *sql, int64_t id, const char *prefix,
	     struct mp_strlist *out, struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(db, sql, err);
	size_t plen = prefix != NULL ? strlen(prefix) : 0;
	int rc;

	if (st == NULL)
		return err->code;
	sqlite3_bind_int64(st, 1, id);
	if (prefix != NULL)
		sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);

		mp_strlist_add(out, v + plen);
	}
	sqlite3_finalize(st);
	if (out->n > 0)
		qsort(out->v, out->n, sizeof(*out->v), cmp_str);
	return rc == SQLITE_DONE ? MS_OK : ms_db_error(db, "sync", err);
}

/* Rows whose file is gone are expunged, with a tombstone. */
static enum ms_result
drop_missing(struct ms_mailbox *mb, const struct mp_strlist *disk,
	     const struct mp_strlist *rows, struct ms_error *err)
{
	uint64_t modseq = 0;
	enum ms_result r = MS_OK;

	for (size_t i = 0; r == MS_OK && i < rows->n; i++) {
		sqlite3_stmt *st;

		if (in_sorted(disk, rows->v[i]))
			continue;
		if (modseq == 0 &&
		    (r = ms_index_next_modseq(mb->user, mb->id, &modseq,
					      err)) != MS_OK)
			break;
		st = ms_db_prepare(
			mb->user->wdb,
			"INSERT OR REPLACE INTO expunged SELECT mailbox, uid, "
			"?3 "
			"FROM messages WHERE mailbox = ?1 AND file = ?2",
			err);
		if (st == NULL)
			return err->code;
		char *file = mp_xasprintf("cur/%s", rows->v[i]);
		sqlite3_bind_int64(st, 1, mb->id);
		sqlite3_bind_text(st, 2, file, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 3, (int64_t)modseq);
		r = ms_db_step_done(st, err);
		sqlite3_finalize(st);
		st = r == MS_OK ? ms_db_prepare(mb->user->wdb,
						"DELETE FROM messages WHERE "
						"mailbox = ? AND file = ?",
						err)
				: NULL;
		if (st != NULL) {
			sqlite3_bind_int64(st, 1, mb->id);
			sqlite3_bind_text(st, 2, file, -1, SQLITE_TRANSIENT);
			r = ms_db_step_done(st, err);
			sqlite3_finalize(st);
		}
		mp_log(MP_LOG_WARN,
		       "event=message_file_missing user=%s mailbox=%s file=%s",
		       mp_q(mb->user->address), mp_q(mb->name), mp_q(file));
		free(file);
	}
	return r;
}

static void
clean_tmp(const char *folder)
{
	struct mp_strlist names = {0};
	char *dir = mp_xasprintf("%s/tmp", folder);
	time_t now = time(NULL);

	list_dir(dir, &names);
	for (size_t i = 0; i < names.n; i++) {
		char *path = mp_xasprintf("%s/%s", dir, names.v[i]);
		struct stat st;

		if (stat(path, &st) == 0 &&
		    now - st.st_mtime > MS_TMP_MAX_AGE_S)
			unlink(path);
		free(path);
	}
	mp_strlist_free(&names);
	free(dir);
}

/* The full scan, inside the write transaction. */
static enum ms_result
scan(struct ms_mailbox *mb, struct ms_error *err)
{
	char *cur = mp_xasprintf("%s/cur", mb->path);
	char *new = mp_xasprintf("%s/new", mb->path);
	char *prefix = mp_xasprintf("%s/cur/", mb->path);
	struct mp_strlist disk = {0}, rows = {0}, pending = {0};
	int64_t mark_cur, mark_new;
	enum ms_result r;

	take_new(mb->path);
	mark_new = ms_fs_mtime_ns(new);
	mark_cur = ms_fs_mtime_ns(cur);
	list_dir(cur, &disk);
	r = load_strings(
		mb->user->wdb,
		"SELECT substr(file, 5) FROM messages WHERE mailbox = ?",
		mb->id, NULL, &rows, err);
	if (r == MS_OK)
		r = load_strings(mb->user->wdb,
				 "SELECT substr(path, length(?2) + 1) FROM "
				 "pending_remove WHERE ?1 >= 0 AND "
				 "substr(path, 1, length(?2)) = ?2",
				 mb->id, prefix, &pending, err);
	for (size_t i = 0; r == MS_OK && i < disk.n; i++) {
		if (!in_sorted(&rows, disk.v[i]) &&
		    !in_sorted(&pending, disk.v[i]))
			r = adopt(mb, disk.v[i], err);
	}
	if (r == MS_OK)
		r = drop_missing(mb, &disk, &rows, err);
	if (r == MS_OK) {
		sqlite3_stmt *st = ms_db_prepare(
			mb->user->wdb,
			"UPDATE mailboxes SET scan_cur = ?, scan_new = ? "
			"WHERE id = ?",
			err);
		r = st != NULL ? MS_OK : err->code;
		if (st != NULL) {
			sqlite3_bind_int64(st, 1, mark_cur);
			sqlite3_bind_int64(st, 2, mark_new);
			sqlite3_bind_int64(st, 3, mb->id);
			r = ms_db_step_done(st, err);
			sqlite3_finalize(st);
		}
	}
	clean_tmp(mb->path);
	mp_strlist_free(&disk);
	mp_strlist_free(&rows);
	mp_strlist_free(&pending);
	free(prefix);
	free(cur);
	free(new);
	return r;
}

static bool
marks_current(struct ms_mailbox *mb, sqlite3 *db, struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(
		db, "SELECT scan_cur, scan_new FROM mailboxes WHERE id = ?",
		err);
	char *cur = mp_xasprintf("%s/cur", mb->path);
	char *new = mp_xasprintf("%s/new", mb->path);
	bool same = false;

	if (st != NULL) {
		sqlite3_bind_int64(st, 1, mb->id);
		if (sqlite3_step(st) == SQLITE_ROW)
			same = sqlite3_column_int64(st, 0) ==
				       ms_fs_mtime_ns(cur) &&
			       sqlite3_column_int64(st, 1) ==
				       ms_fs_mtime_ns(new);
		sqlite3_finalize(st);
	}
	free(cur);
	free(new);
	return same;
}

enum ms_result
ms_sync_mailbox(struct ms_mailbox *mb, struct ms_error *err)
{
	struct ms_user *u = mb->user;
	bool same;
	enum ms_result r;

	pthread_mutex_lock(&u->rlock);
	same = marks_current(mb, u->rdb, err);
	pthread_mutex_unlock(&u->rlock);
	if (same)
		return MS_OK;
	if ((r = ms_db_begin(u, err)) != MS_OK)
		return r;
	/* Another writer may have scanned while we waited for the lock. */
	if (marks_current(mb, u->wdb, err)) {
		ms_db_rollback(u);
		return MS_OK;
	}
	r = scan(mb, err);
	if (r == MS_OK)
		r = ms_db_commit(u, err);
	else
		ms_db_rollback(u);
	if (r == MS_OK)
		ms_notify_changed(u, mb->name);
	return r;
}
