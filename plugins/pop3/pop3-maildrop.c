/* pop3-maildrop.c - the maildrop: snapshot and lock at login, deletions at
 * QUIT (the UPDATE state, RFC 1939 6).
 *
 * Both run on the thread pool: opening INBOX may adopt files (it writes)
 * and expunging fsyncs. The session waits with its input held; a session
 * that goes away meanwhile leaves the job to finish and clean up alone.
 *
 * One POP3 session per account at a time: an flock() on a file in the
 * account's directory, taken before the snapshot and released after the
 * UPDATE committed, before the +OK. A second session gets [IN-USE] (RFC
 * 2449 8.1.2), as Dovecot's pop3_lock_session does. The lock is per open
 * file, so it holds between sessions of one process and between processes
 * alike, and the kernel drops it if the process dies. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <moonpost/log.h>
#include <moonpost/mailstore.h>
#include <moonpost/pool.h>
#include <moonpost/server.h>

#include "pop3-private.h"

struct pop3_job {
	struct pop3_session *s; /* NULL once the session is gone */
	struct ms_store *store;
	char *account;
	size_t max_messages;
	bool expire_retrieved;      /* EXPIRE 0: RETR means DELE */
	struct pop3_maildrop *drop; /* the job's while it runs */
	bool in_use;                /* another session holds the lock */
	enum ms_result result;
	struct ms_error err;
	size_t expunged;          /* UPDATE: messages that went */
	size_t seen;              /* UPDATE: messages marked \Seen */
	struct ms_error seen_err; /* UPDATE: why \Seen failed, code 0 */
	/* For the mailbox.* notifications, fired even when the session
	 * is gone: the change committed. */
	struct mp_server *server;
	char *session_id;
	uint32_t uidvalidity;
	uint32_t *expunged_uids;
	uint32_t *seen_uids;
	size_t n_seen_uids;
};

/* UIDs as ranges of consecutive numbers, for the mailstore. */
struct uid_ranges {
	struct ms_uid_range *v;
	size_t n, cap;
};

static void
ranges_add(struct uid_ranges *r, uint32_t uid)
{
	if (r->n > 0 && r->v[r->n - 1].hi + 1 == uid) {
		r->v[r->n - 1].hi = uid;
		return;
	}
	if (r->n == r->cap) {
		r->cap = r->cap > 0 ? r->cap * 2 : 16;
		r->v = mp_xrealloc(r->v, r->cap * sizeof(*r->v));
	}
	r->v[r->n++] = (struct ms_uid_range){uid, uid};
}

static void
drop_free(struct pop3_maildrop **dp)
{
	struct pop3_maildrop *d = *dp;

	if (d == NULL)
		return;
	ms_mailbox_close(&d->mb);
	ms_user_unref(&d->user);
	if (d->lock_fd >= 0)
		close(d->lock_fd); /* releases the flock */
	free(d->msgs);
	free(d);
	*dp = NULL;
}

static void
job_free(struct pop3_job *job)
{
	drop_free(&job->drop);
	free(job->account);
	free(job->session_id);
	free(job->expunged_uids);
	free(job->seen_uids);
	free(job);
}

static struct pop3_job *
job_new(struct pop3_session *s)
{
	struct pop3_job *job = mp_xcalloc(1, sizeof(*job));

	job->s = s;
	job->server = s->server;
	job->session_id = mp_xstrdup(mp_conn_id(s->conn));
	job->store = mp_server_store(s->server);
	job->account = mp_xstrdup(s->account);
	job->max_messages = (size_t)s->cfg->max_messages;
	job->expire_retrieved = s->cfg->expire == 0;
	s->job = job;
	return job;
}

/* --- login: lock and snapshot (thread pool) ------------------------- */

static bool
lock_take(struct pop3_job *job)
{
	struct pop3_maildrop *d = job->drop;
	char *path = mp_xasprintf("%s/" POP3_LOCK_FILE, ms_user_dir(d->user));
	bool ok = false;

	d->lock_fd =
		open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (d->lock_fd < 0) {
		job->result = MS_ERR_TEMP;
		snprintf(job->err.text, sizeof(job->err.text), "open %s: %s",
			 path, strerror(errno));
	} else if (flock(d->lock_fd, LOCK_EX | LOCK_NB) == 0) {
		ok = true;
	} else if (errno == EWOULDBLOCK) {
		job->in_use = true;
	} else {
		job->result = MS_ERR_TEMP;
		snprintf(job->err.text, sizeof(job->err.text), "flock %s: %s",
			 path, strerror(errno));
	}
	free(path);
	return ok;
}

/* The oldest max_messages messages: a client that deletes what it
 * fetched sees the next ones in its next session. */
static enum ms_result
snapshot(struct pop3_job *job)
{
	struct pop3_maildrop *d = job->drop;
	struct ms_msg_list list;
	enum ms_result r = ms_mailbox_messages(d->mb, NULL, &list, &job->err);

	if (r != MS_OK)
		return r;
	d->n = list.n < job->max_messages ? list.n : job->max_messages;
	d->msgs = mp_xcalloc(d->n > 0 ? d->n : 1, sizeof(*d->msgs));
	for (size_t i = 0; i < d->n; i++) {
		d->msgs[i].uid = list.v[i].uid;
		d->msgs[i].size = list.v[i].size;
		d->size += list.v[i].size;
	}
	ms_msg_list_free(&list);
	return MS_OK;
}

static void
open_work(void *arg)
{
	struct pop3_job *job = arg;
	struct pop3_maildrop *d = mp_xcalloc(1, sizeof(*d));

	d->lock_fd = -1;
	job->drop = d;
	job->result = MS_OK;
	d->user = ms_user_open(job->store, job->account, &job->err);
	if (d->user == NULL) {
		job->result = job->err.code;
	} else if (lock_take(job)) {
		d->mb = ms_mailbox_open(d->user, "INBOX", &job->err);
		if (d->mb == NULL)
			job->result = job->err.code;
		else if ((job->result = snapshot(job)) == MS_OK)
			d->uidvalidity = ms_mailbox_uidvalidity(d->mb);
	}
	if (job->result != MS_OK || job->in_use)
		drop_free(&job->drop);
}

static void
login_failed(struct pop3_session *s, const char *code, const char *text)
{
	pop3_reply(s, false, code, text);
	s->state = POP3_S_AUTHORIZATION;
	MP_FREE(s->account);
	mp_conn_set_user(s->conn, NULL);
}

static void
open_done(void *arg)
{
	struct pop3_job *job = arg;
	struct pop3_session *s = job->s;
	char text[100];

	if (s == NULL) {
		/* The client left while its maildrop opened. Rare enough
		 * to release here rather than queue another job. */
		job_free(job);
		return;
	}
	s->job = NULL;
	if (job->in_use) {
		mp_conn_log(s->conn, MP_LOG_INFO, "event=pop3_in_use");
		login_failed(s, "IN-USE",
			     "Mailbox is locked by another "
			     "POP3 session");
	} else if (job->result != MS_OK) {
		mp_conn_log(s->conn, MP_LOG_WARN,
			    "event=pop3_open_failed result=%s error=%s",
			    ms_result_name(job->result), mp_q(job->err.text));
		login_failed(s, "SYS/TEMP",
			     "Cannot open the mailbox, try "
			     "again later");
	} else {
		s->drop = job->drop;
		job->drop = NULL;
		s->state = POP3_S_TRANSACTION;
		s->logged_in = true;
		mp_conn_log(s->conn, MP_LOG_INFO,
			    "event=pop3_login messages=%zu size=%llu",
			    s->drop->n, (unsigned long long)s->drop->size);
		snprintf(text, sizeof(text),
			 "Logged in, %zu messages (%llu octets)", s->drop->n,
			 (unsigned long long)s->drop->size);
		pop3_reply(s, true, NULL, text);
	}
	job_free(job);
	pop3_resume(s);
}

void
pop3_login(struct pop3_session *s, const char *account)
{
	free(s->account);
	s->account = mp_xstrdup(account);
	mp_conn_set_user(s->conn, account);
	mp_conn_set_max_line(s->conn, POP3_LINE_MAX);
	s->state = POP3_S_LOGIN;
	mp_pool_submit(mp_server_pool(s->server), open_work, open_done,
		       job_new(s));
}

/* --- QUIT: UPDATE (thread pool) ------------------------------------- */

static bool
goes(const struct pop3_job *job, const struct pop3_msg *m)
{
	return m->deleted || (job->expire_retrieved && m->retrieved);
}

/* Flags the messages \Deleted and expunges exactly those: a message
 * another client flagged is not ours to expunge. */
static enum ms_result
expunge(struct pop3_job *job, const struct ms_uidset *set)
{
	struct pop3_maildrop *d = job->drop;
	struct ms_change_list changed, modified, out;
	enum ms_result r;

	r = ms_message_store(d->mb, set, MS_FLAGS_ADD, MS_FLAG_DELETED, NULL, 0,
			     &changed, &modified, &job->err);
	ms_change_list_free(&changed);
	ms_change_list_free(&modified);
	if (r != MS_OK)
		return r;
	r = ms_message_expunge(d->mb, set, &out, &job->err);
	job->expunged = out.n_uids;
	job->expunged_uids = out.uids; /* taken for the notification */
	out.uids = NULL;
	out.n_uids = 0;
	ms_change_list_free(&out);
	if (r != MS_OK) {
		/* Best effort: the messages stay, as they were. */
		struct ms_error ignored;
		if (ms_message_store(d->mb, set, MS_FLAGS_REMOVE,
				     MS_FLAG_DELETED, NULL, 0, &changed,
				     &modified, &ignored) == MS_OK) {
			ms_change_list_free(&changed);
			ms_change_list_free(&modified);
		}
	}
	return r;
}

/* RETR marks a message \Seen, for IMAP clients of the same account;
 * only at QUIT, so a session that breaks off changes nothing. */
static void
mark_seen(struct pop3_job *job, const struct ms_uidset *set)
{
	struct ms_change_list changed, modified;

	if (ms_message_store(job->drop->mb, set, MS_FLAGS_ADD, MS_FLAG_SEEN,
			     NULL, 0, &changed, &modified,
			     &job->seen_err) != MS_OK)
		return;
	job->seen = changed.msgs.n;
	job->seen_uids = mp_xcalloc(job->seen > 0 ? job->seen : 1,
				    sizeof(*job->seen_uids));
	for (size_t i = 0; i < job->seen; i++)
		job->seen_uids[i] = changed.msgs.v[i].uid;
	job->n_seen_uids = job->seen;
	ms_change_list_free(&changed);
	ms_change_list_free(&modified);
}

static void
update_work(void *arg)
{
	struct pop3_job *job = arg;
	struct pop3_maildrop *d = job->drop;
	struct uid_ranges del = {0}, seen = {0};

	for (size_t i = 0; i < d->n; i++) {
		if (goes(job, &d->msgs[i]))
			ranges_add(&del, d->msgs[i].uid);
		else if (d->msgs[i].retrieved)
			ranges_add(&seen, d->msgs[i].uid);
	}
	job->result = MS_OK;
	job->uidvalidity = d->uidvalidity;
	if (del.n > 0)
		job->result = expunge(job, &(struct ms_uidset){del.v, del.n});
	if (seen.n > 0)
		mark_seen(job, &(struct ms_uidset){seen.v, seen.n});
	free(del.v);
	free(seen.v);
	/* Unlocked before the +OK: a client that logs in again at once
	 * must not find its own old session in the way. */
	drop_free(&job->drop);
}

/* What UPDATE committed, for scripts: the expunge (also when a failure
 * came after it) and the \Seen that RETR left. */
static void
update_notify(const struct pop3_job *job)
{
	struct mp_lua *lua = mp_server_lua(job->server);
	struct mp_event_who who = {"pop3", job->account, job->session_id};
	struct mp_event_flags seen = {
		.mailbox = "INBOX",
		.uidvalidity = job->uidvalidity,
		.uids = job->seen_uids,
		.n = job->n_seen_uids,
		.mode = MP_EVENT_FLAGS_ADD,
		.flags = MS_FLAG_SEEN,
	};

	if (job->expunged_uids != NULL)
		mp_event_mailbox_expunge(lua, &who, "INBOX", job->uidvalidity,
					 job->expunged_uids, job->expunged);
	mp_event_mailbox_flags(lua, &who, &seen);
}

static void
update_done(void *arg)
{
	struct pop3_job *job = arg;
	struct pop3_session *s = job->s;
	char text[80];

	update_notify(job);
	if (s == NULL) {
		job_free(job);
		return;
	}
	s->n_expunged = job->expunged;
	s->job = NULL;
	if (job->seen_err.code != MS_OK)
		mp_conn_log(s->conn, MP_LOG_WARN,
			    "event=pop3_seen_failed error=%s",
			    mp_q(job->seen_err.text));
	if (job->result == MS_OK) {
		mp_conn_log(s->conn, MP_LOG_INFO,
			    "event=pop3_logout deleted=%zu", job->expunged);
		snprintf(text, sizeof(text),
			 "Logging out, %zu messages deleted", job->expunged);
		pop3_reply(s, true, NULL, text);
	} else {
		mp_conn_log(s->conn, MP_LOG_WARN,
			    "event=pop3_update_failed result=%s error=%s",
			    ms_result_name(job->result), mp_q(job->err.text));
		pop3_reply(s, false, "SYS/TEMP",
			   "Deleting messages failed, they are kept");
	}
	s->end_reason = "quit";
	mp_conn_close(s->conn, "quit");
	s->quitting = true;
	job_free(job);
}

/* What the session did, for the `logout` hook. */
static void
count_work(struct pop3_session *s, const struct pop3_maildrop *d)
{
	s->n_deleted = d->n_deleted;
	s->n_retrieved = 0;
	for (size_t i = 0; i < d->n; i++)
		s->n_retrieved += d->msgs[i].retrieved;
}

void
pop3_update(struct pop3_session *s)
{
	struct pop3_job *job = job_new(s);

	count_work(s, s->drop);
	s->state = POP3_S_UPDATE;
	job->drop = s->drop;
	s->drop = NULL;
	mp_pool_submit(mp_server_pool(s->server), update_work, update_done,
		       job);
}

/* --- a session that ends without QUIT ------------------------------- */

static void
release_work(void *arg)
{
	struct pop3_maildrop *d = arg;

	drop_free(&d);
}

void
pop3_maildrop_abandon(struct pop3_session *s)
{
	if (s->job != NULL) {
		s->job->s = NULL;
		s->job = NULL;
	}
	if (s->drop == NULL)
		return;
	count_work(s, s->drop);
	mp_conn_log(s->conn, MP_LOG_INFO,
		    "event=pop3_logout deleted=0 reason=no_quit");
	/* Closing the index may checkpoint it (a write): not on the loop. */
	mp_pool_submit(mp_server_pool(s->server), release_work, NULL, s->drop);
	s->drop = NULL;
}
