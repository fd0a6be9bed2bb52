/* ms-append.c - adding a message: tmp/, fsync, rename, fsync, commit.
 *
 * Bytes are converted to CRLF and handed to the MIME parser as they are
 * written, so the message is read once, while it arrives, and never again
 * to answer FETCH. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <moonpost/mime.h>

#include "ms-private.h"

/* Bytes gathered before a write(2). */
#define APPEND_BUF (64 * 1024)

struct ms_append {
	struct ms_user *user;
	struct ms_mailbox mb;
	int fd;
	char *base; /* unique file name, without size and info */
	char *tmp_path;
	char buf[APPEND_BUF];
	size_t buf_len;
	uint64_t size;
	bool last_cr;
	struct mp_mime_parser *parser;
	uint32_t flags;
	char *keywords;
	int64_t internal_date;
	int tz_minutes;
	bool failed;
};

struct ms_append *
ms_append_begin(struct ms_user *u, const char *mailbox, struct ms_error *err)
{
	struct ms_append *a = mp_xcalloc(1, sizeof(*a));
	bool noselect = false;
	enum ms_result r;

	a->fd = -1;
	pthread_mutex_lock(&u->rlock);
	r = ms_mailbox_lookup(u, u->rdb, mailbox, &a->mb, &noselect, err);
	pthread_mutex_unlock(&u->rlock);
	if (r == MS_OK && noselect)
		r = ms_fail(err, MS_ERR_NOT_FOUND, "%s cannot be selected",
			    mailbox);
	if (r != MS_OK) {
		free(a->mb.name);
		free(a->mb.path);
		free(a);
		return NULL;
	}
	a->user = ms_user_ref(u);
	a->base = ms_fs_unique_name(u->store);
	a->tmp_path = mp_xasprintf("%s/tmp/%s", a->mb.path, a->base);
	a->fd = open(a->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		     0600);
	if (a->fd < 0) {
		ms_fail_errno(err, "create", a->tmp_path);
		ms_append_abort(&a);
		return NULL;
	}
	a->keywords = mp_xstrdup("");
	a->parser = mp_mime_parser_new(NULL);
	return a;
}

static bool
write_all(struct ms_append *a, const char *p, size_t n, struct ms_error *err)
{
	while (n > 0) {
		ssize_t w = write(a->fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			ms_fail_errno(err, "write", a->tmp_path);
			a->failed = true;
			return false;
		}
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static bool
flush_buf(struct ms_append *a, struct ms_error *err)
{
	if (a->buf_len == 0)
		return true;
	mp_mime_parser_feed(a->parser, a->buf, a->buf_len);
	if (!write_all(a, a->buf, a->buf_len, err))
		return false;
	a->size += a->buf_len;
	a->buf_len = 0;
	return true;
}

enum ms_result
ms_append_write(struct ms_append *a, const void *data, size_t len,
		struct ms_error *err)
{
	const char *p = data;

	if (a->failed)
		return ms_fail(err, MS_ERR_TEMP, "earlier write failed");
	while (len > 0) {
		/* Each input byte may become two. */
		size_t room = (sizeof(a->buf) - a->buf_len) / 2;
		size_t n = len < room ? len : room;

		if (n == 0) {
			if (!flush_buf(a, err))
				return err->code;
			continue;
		}
		a->buf_len += ms_crlf(p, n, a->buf + a->buf_len, &a->last_cr);
		p += n;
		len -= n;
	}
	return MS_OK;
}

enum ms_result
ms_append_set(struct ms_append *a, uint32_t flags,
	      const struct mp_strlist *keywords, int64_t internal_date,
	      int tz_minutes, struct ms_error *err)
{
	char *kw = ms_keywords_apply("", MS_FLAGS_REPLACE, keywords, err);

	if (kw == NULL)
		return err->code;
	free(a->keywords);
	a->keywords = kw;
	a->flags = flags & MS_FLAGS_ALL;
	a->internal_date = internal_date;
	a->tz_minutes = tz_minutes;
	return MS_OK;
}

uint64_t
ms_append_size(const struct ms_append *a)
{
	return a->size + a->buf_len;
}

void
ms_append_abort(struct ms_append **ap)
{
	struct ms_append *a = *ap;

	if (a == NULL)
		return;
	if (a->fd >= 0) {
		close(a->fd);
		unlink(a->tmp_path);
	}
	if (a->parser != NULL) {
		struct mp_mime_message *m = mp_mime_parser_finish(&a->parser);
		mp_mime_message_free(&m);
	}
	ms_user_unref(&a->user);
	free(a->mb.name);
	free(a->mb.path);
	free(a->base);
	free(a->tmp_path);
	free(a->keywords);
	free(a);
	*ap = NULL;
}

/* Writes the rest, fsyncs and closes the temp file, and serializes the
 * structure into blob. */
static enum ms_result
finish_file(struct ms_append *a, struct mp_buf *blob, struct ms_error *err)
{
	struct mp_mime_message *m;

	if (a->failed)
		return ms_fail(err, MS_ERR_TEMP, "earlier write failed");
	if (!flush_buf(a, err))
		return err->code;
	if (fsync(a->fd) != 0) {
		ms_fail_errno(err, "fsync", a->tmp_path);
		return err->code;
	}
	if (close(a->fd) != 0) {
		a->fd = -1;
		unlink(a->tmp_path);
		return ms_fail_errno(err, "close", a->tmp_path);
	}
	a->fd = -2; /* closed; the temp file is still there */
	m = mp_mime_parser_finish(&a->parser);
	mp_mime_serialize(m, blob);
	mp_mime_message_free(&m);
	return MS_OK;
}

enum ms_result
ms_append_commit(struct ms_append **ap, uint32_t *uid_r,
		 uint32_t *uidvalidity_r, struct ms_error *err)
{
	struct ms_append *a = *ap;
	struct mp_buf blob = {0};
	struct ms_new_message msg;
	enum ms_result r = finish_file(a, &blob, err);

	if (r == MS_OK) {
		msg = (struct ms_new_message){
			.tmp_path = a->tmp_path,
			.base = a->base,
			.size = a->size,
			.internal_date = a->internal_date != 0
						 ? a->internal_date
						 : (int64_t)time(NULL),
			.tz_minutes = a->tz_minutes,
			.flags = a->flags,
			.keywords = a->keywords,
			.mime = blob.data,
			.mime_len = blob.len,
		};
		r = ms_index_add(&a->mb, &msg, uid_r, err);
	}
	if (r == MS_OK) {
		*uidvalidity_r = a->mb.uidvalidity;
		a->fd = -1; /* the file now belongs to the mailbox */
		ms_notify_changed(a->user, a->mb.name);
	} else if (a->fd == -2) {
		unlink(a->tmp_path);
		a->fd = -1;
	}
	mp_buf_free(&blob);
	ms_append_abort(ap);
	return r;
}
