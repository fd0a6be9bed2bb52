/* deliver-append.c - writing a delivered message into an account's
 * mailboxes. Runs on the thread pool: it fsyncs. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <moonpost/log.h>
#include <moonpost/mailstore.h>

#include "deliver-private.h"

#define COPY_CHUNK (64 * 1024)

static void
set_result(struct mp_deliver_append *job, enum mp_deliver_status status,
	   int code, const char *enhanced, const char *text)
{
	/* The first failure decides; a later one does not hide it. */
	if (job->result.status != MP_DELIVERED)
		return;
	job->result.status = status;
	job->result.code = code;
	snprintf(job->result.enhanced, sizeof(job->result.enhanced), "%s",
		 enhanced);
	snprintf(job->result.text, sizeof(job->result.text), "%s", text);
}

static void
fail_from(struct mp_deliver_append *job, const struct ms_error *err)
{
	char text[256];

	if (err->code == MS_ERR_OVER_QUOTA) {
		/* Dovecot's and Postfix's answer: the sender learns now,
		 * rather than the message bouncing days later. */
		set_result(job, MP_DELIVER_REJECT, 552, "5.2.2",
			   "mailbox full");
		return;
	}
	snprintf(text, sizeof(text), "local delivery failed (%s)",
		 ms_result_name(err->code));
	set_result(job, MP_DELIVER_TEMPFAIL, 451, "4.3.0", text);
}

/* Length of the header field starting at p (continuation lines
 * included), within end. */
static size_t
field_len(const char *p, const char *end)
{
	const char *q = p;

	for (;;) {
		const char *nl = memchr(q, '\n', (size_t)(end - q));
		if (nl == NULL)
			return (size_t)(end - p);
		q = nl + 1;
		if (q >= end || (*q != ' ' && *q != '\t'))
			return (size_t)(q - p);
	}
}

static bool
removed(const struct mp_deliver_actions *a, const char *field, size_t len)
{
	const char *colon = memchr(field, ':', len);
	size_t n;

	if (colon == NULL)
		return false;
	n = (size_t)(colon - field);
	while (n > 0 && (field[n - 1] == ' ' || field[n - 1] == '\t'))
		n--;
	for (size_t i = 0; i < a->remove_headers.n; i++) {
		const char *name = a->remove_headers.v[i];
		if (strlen(name) == n && strncasecmp(name, field, n) == 0)
			return true;
	}
	return false;
}

/* Writes the original header block, without the fields the rules
 * removed. */
static enum ms_result
write_header(struct mp_deliver_append *job, struct ms_append *a,
	     const char *hdr, size_t len, struct ms_error *err)
{
	const char *p = hdr, *end = hdr + len;
	enum ms_result r = MS_OK;

	while (p < end && r == MS_OK) {
		size_t n = field_len(p, end);

		if (!removed(job->actions, p, n))
			r = ms_append_write(a, p, n, err);
		p += n;
	}
	return r;
}

static enum ms_result
copy_range(struct mp_deliver_append *job, struct ms_append *a, uint64_t from,
	   struct ms_error *err, char *buf)
{
	while (from < job->size) {
		size_t want = job->size - from < COPY_CHUNK
				      ? (size_t)(job->size - from)
				      : COPY_CHUNK;
		ssize_t n = pread(job->fd, buf, want, (off_t)from);

		if (n <= 0) {
			err->code = MS_ERR_TEMP;
			snprintf(err->text, sizeof(err->text),
				 "reading the spool: %s",
				 n < 0 ? strerror(errno) : "short file");
			return MS_ERR_TEMP;
		}
		enum ms_result r = ms_append_write(a, buf, (size_t)n, err);
		if (r != MS_OK)
			return r;
		from += (uint64_t)n;
	}
	return MS_OK;
}

static enum ms_result
write_message(struct mp_deliver_append *job, struct ms_append *a,
	      struct ms_error *err)
{
	char *buf = mp_xmalloc(COPY_CHUNK > MP_DELIVER_HEADER_MAX
				       ? COPY_CHUNK
				       : MP_DELIVER_HEADER_MAX);
	enum ms_result r =
		ms_append_write(a, job->prefix.data, job->prefix.len, err);
	size_t hlen = job->header_len;

	/* Only a header block read whole is filtered; a cut one is copied
	 * as it is. */
	if (r == MS_OK && job->actions->remove_headers.n > 0 &&
	    job->header_complete) {
		ssize_t n = pread(job->fd, buf, hlen, 0);
		if (n == (ssize_t)hlen) {
			r = write_header(job, a, buf, hlen, err);
		} else {
			snprintf(err->text, sizeof(err->text),
				 "reading the spool header failed");
			r = err->code = MS_ERR_TEMP;
		}
		if (r == MS_OK)
			r = copy_range(job, a, hlen, err, buf);
	} else if (r == MS_OK) {
		r = copy_range(job, a, 0, err, buf);
	}
	free(buf);
	return r;
}

static void
copy_add(struct mp_deliver_append *job, const char *mailbox, uint32_t uid,
	 uint32_t uidvalidity, uint64_t size)
{
	struct mp_deliver_copy *c;

	job->copies = mp_xrealloc(job->copies,
				  (job->n_copies + 1) * sizeof(*job->copies));
	c = &job->copies[job->n_copies++];
	c->mailbox = mp_xstrdup(mailbox);
	c->uid = uid;
	c->uidvalidity = uidvalidity;
	c->size = size;
}

static enum ms_result
store_one(struct mp_deliver_append *job, struct ms_user *u, const char *mailbox,
	  struct ms_error *err)
{
	const struct mp_deliver_actions *acts = job->actions;
	struct ms_append *a = ms_append_begin(u, mailbox, err);
	uint32_t uid = 0, uidvalidity = 0;
	uint64_t size;
	enum ms_result r;

	if (a == NULL)
		return err->code;
	r = write_message(job, a, err);
	if (r == MS_OK)
		r = ms_append_set(a, acts->flags, &acts->keywords, 0, 0, err);
	if (r != MS_OK) {
		ms_append_abort(&a);
		return r;
	}
	size = ms_append_size(a);
	r = ms_append_commit(&a, &uid, &uidvalidity, err);
	if (r == MS_OK) {
		char *entry = mp_xasprintf("%s:%u", mailbox, uid);
		mp_strlist_add(&job->stored, entry);
		free(entry);
		copy_add(job, mailbox, uid, uidvalidity, size);
	}
	return r;
}

/* A fileinto target that does not exist and may not be created goes to
 * INBOX instead, as Sieve's fileinto does when it fails. */
static const char *
target_mailbox(struct mp_deliver_append *job, struct ms_user *u,
	       const char *name, struct ms_error *err)
{
	struct ms_status st;
	bool create = mp_strlist_contains(&job->actions->fileinto_create, name);

	if (ms_mailbox_status(u, name, &st, err) == MS_OK)
		return name;
	if (create && ms_mailbox_create(u, name, 0, err) == MS_OK) {
		mp_strlist_add(&job->created, name);
		return name;
	}
	if (create && err->code == MS_ERR_EXISTS)
		return name;
	mp_log(MP_LOG_WARN,
	       "event=fileinto_failed user=%s mailbox=%s error=%s "
	       "fallback=INBOX",
	       mp_q(job->account), mp_q(name), mp_q(err->text));
	return "INBOX";
}

void
mp_deliver_append_run(struct mp_deliver_append *job)
{
	const struct mp_deliver_actions *acts = job->actions;
	struct ms_error err = {0};
	struct ms_user *u;
	bool kept = acts->keep || (!acts->discard && acts->fileinto.n == 0 &&
				   acts->redirect.n == 0);

	job->result.status = MP_DELIVERED;
	u = ms_user_open(job->store, job->account, &err);
	if (u == NULL) {
		fail_from(job, &err);
		return;
	}
	for (size_t i = 0; i < acts->fileinto.n; i++) {
		const char *mb =
			target_mailbox(job, u, acts->fileinto.v[i], &err);
		if (strcmp(mb, "INBOX") == 0)
			kept = true;
		else if (store_one(job, u, mb, &err) != MS_OK)
			fail_from(job, &err);
	}
	if (kept && store_one(job, u, "INBOX", &err) != MS_OK)
		fail_from(job, &err);
	ms_user_unref(&u);
}
