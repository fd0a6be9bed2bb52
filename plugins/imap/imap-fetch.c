/* imap-fetch.c - FETCH and UID FETCH (RFC 3501 6.4.5, RFC 9051 6.4.5,
 * BINARY RFC 3516, CONDSTORE/QRESYNC RFC 7162 3.1.4 and 3.2.6).
 *
 * Everything comes from the index (flags, dates, sizes, the stored MIME
 * structure) and from byte ranges of the immutable message file: a
 * message is never parsed again. The response is produced message by
 * message and literal by literal in chunks, stopping whenever the
 * connection's output is over its high-water mark and going on from
 * on_writable, so a FETCH 1:* of a large mailbox or of a huge body holds
 * no more than a chunk in memory.
 *
 * A non-PEEK body fetch sets \Seen (RFC 9051 6.4.5). That is a mailstore
 * write, done once for the whole command on the thread pool before any
 * response is written; the messages it changed get FLAGS in their
 * response. The item parsing and the per-message writing are in
 * imap-fetch-items.c. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <moonpost/log.h>
#include <moonpost/mailstore.h>
#include <moonpost/mime.h>
#include <moonpost/pool.h>
#include <moonpost/server.h>

#include "imap-fetch.h"

/* --- life of the command ------------------------------------------------ */

static void
fetch_free(struct imap_fetch *f)
{
	imap_fetch_message_close(f);
	for (size_t i = 0; i < f->n; i++)
		imap_section_clear(&f->items[i].sec);
	free(f->items);
	imap_seqset_free(&f->uids);
	imap_seqset_free(&f->seen);
	free(f->unseen);
	ms_change_list_free(&f->changed);
	ms_user_unref(&f->user);
	free(f->mbname);
	mp_buf_free(&f->out);
	free(f);
}

/* The session closes while the response streams: nothing else will. */
static void
fetch_abort(struct imap_job *job)
{
	struct imap_fetch *f = (struct imap_fetch *)job;

	if (!f->in_pool)
		fetch_free(f);
}

static void
fetch_finish(struct imap_session *s, struct imap_fetch *f)
{
	s->on_writable = NULL;
	s->job = NULL;
	if (f->unknown_cte)
		/* RFC 3516 4.3 */
		imap_cmd_done(s, "NO", "UNKNOWN-CTE",
			      "Cannot decode the part's content transfer "
			      "encoding");
	else if (f->failed)
		imap_cmd_done(s, "NO", "SERVERBUG",
			      "Some messages could not be read");
	else if (f->expunged && !s->req.uid)
		/* RFC 5530 3; Dovecot answers the same way. A UID FETCH
		 * just leaves them out: the expunges are reported before
		 * its OK, so the client learns why. */
		imap_cmd_done(s, "NO", "EXPUNGEISSUED",
			      "Some messages were expunged");
	else
		imap_cmd_ok(s);
	fetch_free(f);
}

/* Reading failed inside a literal whose length was already sent: the
 * client cannot find the end of the response any more. */
static void
fetch_broken(struct imap_session *s, struct imap_fetch *f, const char *error)
{
	mp_conn_log(s->conn, MP_LOG_WARN,
		    "event=imap_fetch_failed uid=%u error=%s", f->cur.uid,
		    mp_q(error));
	s->on_writable = NULL;
	s->job = NULL;
	fetch_free(f);
	mp_conn_close(s->conn, "fetch failed");
	s->quitting = true;
}

static void fetch_resume(struct imap_session *s);

/* Writes until done or until the client has to read first. True when
 * the command was answered (or the session closed). */
static bool
fetch_run(struct imap_session *s, struct imap_fetch *f)
{
	const char *error = NULL;

	for (;;) {
		if (mp_conn_output_full(s->conn)) {
			s->on_writable = fetch_resume;
			mp_conn_want_writable(s->conn);
			return false;
		}
		if (f->lit != IMAP_FETCH_LIT_NONE) {
			if (!imap_fetch_literal_step(s, f, &error)) {
				fetch_broken(s, f, error);
				return true;
			}
			continue;
		}
		if (!f->open) {
			if (!imap_fetch_message_next(s, f)) {
				fetch_finish(s, f);
				return true;
			}
			continue;
		}
		if (!imap_fetch_items_step(s, f, &error)) {
			fetch_broken(s, f, error);
			return true;
		}
	}
}

static void
fetch_resume(struct imap_session *s)
{
	struct imap_fetch *f = (struct imap_fetch *)s->job;

	s->on_writable = NULL;
	fetch_run(s, f);
}

/* --- implicit \Seen ----------------------------------------------------- */

static void
seen_work(void *arg)
{
	struct imap_fetch *f = arg;
	struct ms_uidset set = {f->unseen, f->n_unseen};
	struct ms_change_list modified;
	struct ms_mailbox *mb;

	/* Our own handle: the session's may be closed while we run. */
	mb = ms_mailbox_open(f->user, f->mbname, &f->err);
	if (mb == NULL) {
		f->result = f->err.code;
		return;
	}
	f->result = ms_message_store(mb, &set, MS_FLAGS_ADD, MS_FLAG_SEEN, NULL,
				     0, &f->changed, &modified, &f->err);
	ms_change_list_free(&modified);
	ms_mailbox_close(&mb);
}

static void
seen_done(void *arg)
{
	struct imap_fetch *f = arg;
	struct imap_session *s = f->head.s;

	f->in_pool = false;
	if (s == NULL) {
		fetch_free(f);
		return;
	}
	if (f->result != MS_OK) {
		/* The data can still be sent; the flag will be missing. */
		mp_conn_log(s->conn, MP_LOG_WARN,
			    "event=imap_fetch_seen_failed error=%s",
			    mp_q(f->err.text));
	} else {
		for (size_t i = 0; i < f->changed.msgs.n; i++) {
			uint32_t uid = f->changed.msgs.v[i].uid;

			imap_seqset_add(&f->seen, uid, uid);
		}
		imap_seqset_normalize(&f->seen);
		imap_event_flags(s, f->mbname, s->view->uidvalidity,
				 &f->changed, MS_FLAGS_ADD, MS_FLAG_SEEN, NULL);
		/* Our own change is reported in the FETCH responses; if
		 * nobody else changed anything meanwhile, sync need not
		 * report it again. */
		if (f->changed.msgs.n > 0 &&
		    f->changed.modseq == s->view->modseq + 1)
			s->view->modseq = f->changed.modseq;
	}
	fetch_run(s, f);
}

/* Lists the messages of the set that the fetch will mark \Seen. */
static bool
collect_unseen(struct imap_session *s, struct imap_fetch *f)
{
	struct ms_msg_list list;
	struct ms_uid_range *r;
	struct ms_uidset set;
	struct ms_error err;
	size_t n = 0;

	r = mp_xcalloc(f->uids.count, sizeof(*r));
	for (size_t i = 0; i < f->uids.count; i++) {
		r[i].lo = f->uids.ranges[i].lo;
		r[i].hi = f->uids.ranges[i].hi;
	}
	set.v = r;
	set.n = f->uids.count;
	if (ms_mailbox_messages(s->view->mb, &set, &list, &err) != MS_OK) {
		free(r);
		return false;
	}
	free(r);
	f->unseen = mp_xcalloc(list.n > 0 ? list.n : 1, sizeof(*f->unseen));
	for (size_t i = 0; i < list.n; i++) {
		const struct ms_msg *m = &list.v[i];

		if (m->flags & MS_FLAG_SEEN || m->modseq <= f->changedsince)
			continue;
		f->unseen[n].lo = f->unseen[n].hi = m->uid;
		n++;
	}
	f->n_unseen = n;
	ms_msg_list_free(&list);
	return n > 0;
}

/* --- VANISHED (EARLIER) ------------------------------------------------- */

/* RFC 7162 3.2.6: expunged UIDs of the set since CHANGEDSINCE, before the
 * FETCH responses. */
static void
write_vanished(struct imap_session *s, struct imap_fetch *f)
{
	struct imap_seqset gone = {0};
	struct ms_change_list ch;
	struct ms_error err;
	struct mp_buf out = {0};

	if (ms_mailbox_changes(s->view->mb, f->changedsince, &ch, &err) !=
	    MS_OK)
		return;
	for (size_t i = 0; i < ch.n_uids; i++)
		if (imap_seqset_contains(&f->asked, ch.uids[i]))
			imap_seqset_add(&gone, ch.uids[i], ch.uids[i]);
	if (gone.count > 0) {
		imap_seqset_normalize(&gone);
		mp_buf_puts(&out, "* VANISHED (EARLIER) ");
		imap_seqset_format(&out, gone.ranges, gone.count);
		mp_buf_puts(&out, "\r\n");
		imap_write(s, out.data, out.len);
	}
	mp_buf_free(&out);
	imap_seqset_free(&gone);
	ms_change_list_free(&ch);
}

/* --- the command -------------------------------------------------------- */

static enum mp_status
cmd_fetch(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_fetch *f = mp_xcalloc(1, sizeof(*f));

	f->head.s = s;
	f->head.abort = fetch_abort;
	f->cur.fd = -1;
	if (!imap_fetch_parse(s, cmd, f)) {
		fetch_free(f);
		return MP_OK;
	}
	if (!imap_view_uidset(s, &cmd->args[0], cmd->uid, &f->uids)) {
		fetch_free(f);
		return MP_OK;
	}
	if (f->vanished)
		write_vanished(s, f);
	imap_seqset_free(&f->asked);
	f->range = 0;
	f->next = f->uids.count > 0 ? f->uids.ranges[0].lo : 0;
	s->job = &f->head;
	if (f->sets_seen && !s->view->readonly && collect_unseen(s, f)) {
		f->user = ms_user_ref(s->user);
		f->mbname = mp_xstrdup(s->view->name);
		f->in_pool = true;
		mp_pool_submit(mp_server_pool(s->server), seen_work, seen_done,
			       f);
		return MP_AGAIN;
	}
	return fetch_run(s, f) ? MP_OK : MP_AGAIN;
}

const struct imap_cmd_def imap_fetch_cmds[] = {
	{"FETCH", IMAP_S_SELECTED, IMAP_CMD_UID | IMAP_CMD_NO_EXPUNGE,
	 cmd_fetch},
	{NULL, 0, 0, NULL},
};
