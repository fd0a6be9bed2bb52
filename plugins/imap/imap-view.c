/* imap-view.c - the selected mailbox: SELECT, EXAMINE, CLOSE, UNSELECT,
 * and keeping the session's view of it up to date.
 *
 * Opening a mailbox may adopt files and taking \Recent writes the index,
 * so SELECT runs on the thread pool. The view then holds what the client
 * was told: the UID of each sequence number and the MODSEQ up to which
 * changes were reported. imap_view_sync() asks the mailstore what changed
 * since that MODSEQ (a read, fine on the loop) and reports it: expunges
 * (EXPUNGE, or VANISHED under QRESYNC), new messages (EXISTS), and flag
 * changes (FETCH). Sync runs before each tagged reply and, in IDLE, as
 * soon as the mailstore's change notification arrives. While a command
 * may not report expunges (RFC 9051 7.5.1), nothing is reported at all
 * if there are some: sequence numbers stay as the client knows them. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <moonpost/log.h>
#include <moonpost/mailstore.h>
#include <moonpost/pool.h>
#include <moonpost/server.h>

#include "imap-mutf7.h"
#include "imap-private.h"

/* Distinct keywords listed in FLAGS after SELECT. */
#define VIEW_KEYWORDS_MAX 256

/* QRESYNC parameters of SELECT (RFC 7162 3.2.5). */
struct qresync {
	bool on;
	uint32_t uidvalidity;
	uint64_t modseq;
	struct imap_seqset known; /* known-uids, or empty: all */
};

/* A SELECT or EXAMINE on the thread pool. */
struct select_job {
	struct imap_job head;
	struct ms_user *user;
	char *name;
	bool readonly;
	bool want_recent; /* rev1 \Recent: SELECT takes it */
	struct qresync qr;
	/* results */
	struct ms_mailbox *mb;
	struct ms_msg_list msgs;
	struct ms_status st;
	struct ms_change_list changes; /* QRESYNC: since qr.modseq */
	uint32_t first_recent;
	struct mp_strlist keywords;
	enum ms_result result;
	struct ms_error err;
};

/* --- helpers ------------------------------------------------------------ */

uint32_t
imap_view_seq(const struct imap_view *v, uint32_t uid)
{
	size_t lo = 0, hi = v->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->n && v->uids[lo] == uid ? (uint32_t)lo + 1 : 0;
}

bool
imap_view_recent(const struct imap_view *v, uint32_t uid)
{
	return v->first_recent != 0 && uid >= v->first_recent;
}

void
imap_write_flags(struct mp_buf *out, const struct ms_msg *m, bool recent)
{
	static const struct {
		uint32_t flag;
		const char *name;
	} sys[] = {
		{MS_FLAG_SEEN, "\\Seen"},
		{MS_FLAG_ANSWERED, "\\Answered"},
		{MS_FLAG_FLAGGED, "\\Flagged"},
		{MS_FLAG_DELETED, "\\Deleted"},
		{MS_FLAG_DRAFT, "\\Draft"},
	};
	bool first = true;

	mp_buf_puts(out, "(");
	for (size_t i = 0; i < MP_NELEMS(sys); i++) {
		if (!(m->flags & sys[i].flag))
			continue;
		mp_buf_printf(out, "%s%s", first ? "" : " ", sys[i].name);
		first = false;
	}
	if (recent) {
		mp_buf_printf(out, "%s\\Recent", first ? "" : " ");
		first = false;
	}
	if (m->keywords != NULL && m->keywords[0] != '\0')
		mp_buf_printf(out, "%s%s", first ? "" : " ", m->keywords);
	mp_buf_puts(out, ")");
}

static void
uids_push(struct imap_view *v, uint32_t uid)
{
	if (v->n == v->cap) {
		v->cap = v->cap > 0 ? v->cap * 2 : 64;
		v->uids = mp_xrealloc(v->uids, v->cap * sizeof(*v->uids));
	}
	v->uids[v->n++] = uid;
}

static bool
condstore(const struct imap_session *s)
{
	return s->enabled & IMAP_EN_CONDSTORE;
}

static bool
qresync(const struct imap_session *s)
{
	return s->enabled & IMAP_EN_QRESYNC;
}

/* "* 3 FETCH (UID 9 FLAGS (\Seen) MODSEQ (12))" for a flag change. */
static void
write_fetch_flags(struct imap_session *s, struct mp_buf *out, uint32_t seq,
		  const struct ms_msg *m)
{
	struct imap_view *v = s->view;

	mp_buf_printf(out, "* %u FETCH (", seq);
	/* RFC 7162 3.2.4: under QRESYNC every FETCH carries the UID; a UID
	 * command's responses do anyway (RFC 9051 6.4.9). */
	if (qresync(s) || s->req.uid)
		mp_buf_printf(out, "UID %u ", m->uid);
	mp_buf_puts(out, "FLAGS ");
	imap_write_flags(out, m, imap_view_recent(v, m->uid));
	if (condstore(s))
		mp_buf_printf(out, " MODSEQ (%llu)",
			      (unsigned long long)m->modseq);
	mp_buf_puts(out, ")\r\n");
}

/* --- sync ---------------------------------------------------------------- */

/* Removes the expunged UIDs the view holds and reports them; returns how
 * many there were. */
static size_t
report_expunges(struct imap_session *s, const struct ms_change_list *ch,
		struct mp_buf *out)
{
	struct imap_view *v = s->view;
	struct imap_seqset gone = {0};
	size_t n = 0;

	/* From the highest down: removing one leaves the lower sequence
	 * numbers, still to be written, as they were. */
	for (size_t i = ch->n_uids; i-- > 0;) {
		uint32_t seq = imap_view_seq(v, ch->uids[i]);

		if (seq == 0)
			continue;
		n++;
		if (qresync(s))
			imap_seqset_add(&gone, ch->uids[i], ch->uids[i]);
		else
			mp_buf_printf(out, "* %u EXPUNGE\r\n", seq);
		memmove(&v->uids[seq - 1], &v->uids[seq],
			(v->n - seq) * sizeof(*v->uids));
		v->n--;
	}
	if (gone.count > 0) {
		imap_seqset_normalize(&gone);
		mp_buf_puts(out, "* VANISHED ");
		imap_seqset_format(out, gone.ranges, gone.count);
		mp_buf_puts(out, "\r\n");
	}
	imap_seqset_free(&gone);
	return n;
}

static bool
any_known(const struct imap_view *v, const struct ms_change_list *ch)
{
	for (size_t i = 0; i < ch->n_uids; i++)
		if (imap_view_seq(v, ch->uids[i]) != 0)
			return true;
	return false;
}

void
imap_view_sync(struct imap_session *s, bool expunge)
{
	struct imap_view *v = s->view;
	struct ms_change_list ch;
	struct ms_error err;
	struct mp_buf out = {0};
	uint32_t last, added = 0;
	enum ms_result r;

	if (v == NULL || s->quitting)
		return;
	r = ms_mailbox_changes(v->mb, v->modseq, &ch, &err);
	if (r == MS_ERR_NOT_FOUND) {
		imap_bye(s, "Selected mailbox was deleted");
		return;
	}
	if (r != MS_OK) {
		mp_conn_log(s->conn, MP_LOG_WARN,
			    "event=imap_sync_failed error=%s", mp_q(err.text));
		return;
	}
	if (!expunge && any_known(v, &ch)) {
		ms_change_list_free(&ch);
		return;
	}
	v->dirty = false;
	report_expunges(s, &ch, &out);
	last = v->n > 0 ? v->uids[v->n - 1] : 0;
	for (size_t i = 0; i < ch.msgs.n; i++) {
		const struct ms_msg *m = &ch.msgs.v[i];

		if (m->uid > last) {
			uids_push(v, m->uid);
			added++;
			/* Mail that arrives while we have the mailbox
			 * selected is recent to us (RFC 3501 2.3.2). */
			if (!v->readonly && v->first_recent == 0)
				v->first_recent = m->uid;
			continue;
		}
		uint32_t seq = imap_view_seq(v, m->uid);

		if (seq != 0)
			write_fetch_flags(s, &out, seq, m);
	}
	if (added > 0) {
		mp_buf_printf(&out, "* %zu EXISTS\r\n", v->n);
		if (!(s->enabled & IMAP_EN_REV2)) {
			uint32_t total = 0;

			for (size_t i = 0; i < v->n; i++)
				total += imap_view_recent(v, v->uids[i]);
			mp_buf_printf(&out, "* %u RECENT\r\n", total);
		}
	}
	if (ch.modseq > v->modseq)
		v->modseq = ch.modseq;
	ms_change_list_free(&ch);
	if (out.len > 0)
		imap_write(s, out.data, out.len);
	mp_buf_free(&out);
}

static void
on_change(struct ms_user *u, const char *mailbox, void *ctx)
{
	struct imap_session *s = ctx;

	(void)u;
	if (s->view == NULL ||
	    (mailbox != NULL && strcmp(mailbox, s->view->name) != 0))
		return;
	s->view->dirty = true;
	/* In IDLE the client hears of it now; otherwise with the next
	 * command's reply. */
	if (s->idling)
		imap_view_sync(s, true);
}

/* --- sets ----------------------------------------------------------------- */

/* Adds the UIDs of the view that are in uids (normalized) to out. */
static void
intersect(const struct imap_view *v, const struct imap_seqset *uids,
	  struct imap_seqset *out)
{
	size_t r = 0;

	for (size_t i = 0; i < v->n && r < uids->count; i++) {
		uint32_t uid = v->uids[i];

		while (r < uids->count && uids->ranges[r].hi < uid)
			r++;
		if (r < uids->count && uids->ranges[r].lo <= uid)
			imap_seqset_add(out, uid, uid);
	}
	imap_seqset_normalize(out);
}

bool
imap_view_uidset(struct imap_session *s, const struct imap_arg *arg, bool uid,
		 struct imap_seqset *out)
{
	struct imap_view *v = s->view;
	struct imap_seqset set = {0};
	const char *error = NULL;
	struct mp_str text;
	uint32_t max;

	memset(out, 0, sizeof(*out));
	if (!imap_arg_get_atom(arg, &text)) {
		imap_cmd_bad(s, NULL, "Invalid sequence set");
		return false;
	}
	if (uid)
		max = v->n > 0 ? v->uids[v->n - 1] : 1;
	else
		max = (uint32_t)v->n;
	switch (imap_seqset_parse(&set, text.p, text.len, max,
				  uid ? IMAP_SEQSET_UID : IMAP_SEQSET_SEQ,
				  s->limits.seqset_ranges_max, &error)) {
	case IMAP_SEQSET_OK:
		break;
	case IMAP_SEQSET_LIMIT:
		imap_cmd_bad(s, "LIMIT", error);
		imap_seqset_free(&set);
		return false;
	default:
		imap_cmd_bad(s, NULL, error);
		imap_seqset_free(&set);
		return false;
	}
	if (set.saved) {
		intersect(v, &v->saved, out);
	} else if (uid) {
		intersect(v, &set, out);
	} else {
		for (size_t i = 0; i < set.count; i++)
			for (uint32_t q = set.ranges[i].lo;
			     q <= set.ranges[i].hi; q++)
				imap_seqset_add(out, v->uids[q - 1],
						v->uids[q - 1]);
		imap_seqset_normalize(out);
	}
	imap_seqset_free(&set);
	return true;
}

/* --- closing ------------------------------------------------------------- */

static void
view_free(struct imap_view **vp)
{
	struct imap_view *v = *vp;

	if (v == NULL)
		return;
	ms_watch_remove(&v->watch);
	ms_mailbox_close(&v->mb);
	imap_seqset_free(&v->saved);
	free(v->uids);
	free(v->name);
	free(v);
	*vp = NULL;
}

void
imap_view_close(struct imap_session *s)
{
	view_free(&s->view);
	if (s->state == IMAP_S_SELECTED)
		s->state = IMAP_S_AUTH;
}

/* --- SELECT and EXAMINE ------------------------------------------------ */

static void
job_free(struct select_job *job)
{
	ms_mailbox_close(&job->mb);
	ms_user_unref(&job->user);
	ms_msg_list_free(&job->msgs);
	ms_change_list_free(&job->changes);
	mp_strlist_free(&job->keywords);
	imap_seqset_free(&job->qr.known);
	free(job->name);
	free(job);
}

static void
collect_keywords(struct select_job *job)
{
	for (size_t i = 0; i < job->msgs.n; i++) {
		const char *k = job->msgs.v[i].keywords;

		while (k != NULL && *k != '\0' &&
		       job->keywords.n < VIEW_KEYWORDS_MAX) {
			size_t len = strcspn(k, " ");
			char *word = mp_xstrndup(k, len);

			if (!mp_strlist_contains(&job->keywords, word))
				mp_strlist_add(&job->keywords, word);
			free(word);
			k += len;
			k += *k == ' ';
		}
	}
}

static void
select_work(void *arg)
{
	struct select_job *job = arg;

	job->mb = ms_mailbox_open(job->user, job->name, &job->err);
	if (job->mb == NULL) {
		job->result = job->err.code;
		return;
	}
	job->result = MS_OK;
	if (job->want_recent)
		job->result = ms_mailbox_take_recent(
			job->mb, &job->first_recent, &job->err);
	if (job->result == MS_OK)
		job->result =
			ms_mailbox_get_status(job->mb, &job->st, &job->err);
	if (job->result == MS_OK)
		job->result = ms_mailbox_messages(job->mb, NULL, &job->msgs,
						  &job->err);
	if (job->result == MS_OK && job->qr.on &&
	    job->qr.uidvalidity == job->st.uidvalidity)
		job->result = ms_mailbox_changes(job->mb, job->qr.modseq,
						 &job->changes, &job->err);
	if (job->result == MS_OK)
		collect_keywords(job);
}

/* QRESYNC: what changed since the client's MODSEQ (RFC 7162 3.2.5.1). */
static void
write_qresync(struct imap_session *s, struct select_job *job,
	      struct mp_buf *out)
{
	struct imap_seqset gone = {0};
	const struct imap_seqset *known = &job->qr.known;

	for (size_t i = 0; i < job->changes.n_uids; i++) {
		uint32_t uid = job->changes.uids[i];

		if (known->count == 0 || imap_seqset_contains(known, uid))
			imap_seqset_add(&gone, uid, uid);
	}
	if (gone.count > 0) {
		imap_seqset_normalize(&gone);
		mp_buf_puts(out, "* VANISHED (EARLIER) ");
		imap_seqset_format(out, gone.ranges, gone.count);
		mp_buf_puts(out, "\r\n");
	}
	imap_seqset_free(&gone);
	for (size_t i = 0; i < job->changes.msgs.n; i++) {
		const struct ms_msg *m = &job->changes.msgs.v[i];
		uint32_t seq = imap_view_seq(s->view, m->uid);

		if (seq != 0)
			write_fetch_flags(s, out, seq, m);
	}
}

static uint32_t
first_unseen(const struct ms_msg_list *msgs)
{
	for (size_t i = 0; i < msgs->n; i++)
		if (!(msgs->v[i].flags & MS_FLAG_SEEN))
			return (uint32_t)i + 1;
	return 0;
}

static void
select_answer(struct imap_session *s, struct select_job *job)
{
	struct imap_view *v = mp_xcalloc(1, sizeof(*v));
	struct mp_buf out = {0};
	uint32_t recent = 0, unseen;
	bool rev2 = s->enabled & IMAP_EN_REV2;

	v->mb = job->mb;
	job->mb = NULL;
	v->name = mp_xstrdup(job->name);
	v->readonly = job->readonly;
	v->uidvalidity = job->st.uidvalidity;
	v->first_recent = job->first_recent;
	v->modseq = job->st.highestmodseq;
	for (size_t i = 0; i < job->msgs.n; i++) {
		uids_push(v, job->msgs.v[i].uid);
		recent += imap_view_recent(v, job->msgs.v[i].uid);
	}
	s->view = v;
	s->state = IMAP_S_SELECTED;
	v->watch = ms_watch_add(s->user, on_change, s);

	mp_buf_puts(&out, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen "
			  "\\Draft");
	for (size_t i = 0; i < job->keywords.n; i++)
		mp_buf_printf(&out, " %s", job->keywords.v[i]);
	mp_buf_puts(&out, ")\r\n* OK [PERMANENTFLAGS (\\Answered \\Flagged "
			  "\\Deleted \\Seen \\Draft");
	for (size_t i = 0; i < job->keywords.n; i++)
		mp_buf_printf(&out, " %s", job->keywords.v[i]);
	mp_buf_printf(&out, " \\*)] Flags permitted\r\n* %zu EXISTS\r\n", v->n);
	if (!rev2) {
		mp_buf_printf(&out, "* %u RECENT\r\n", recent);
		if ((unseen = first_unseen(&job->msgs)) != 0)
			mp_buf_printf(&out, "* OK [UNSEEN %u] First unseen\r\n",
				      unseen);
	}
	mp_buf_printf(&out,
		      "* OK [UIDVALIDITY %u] UIDs valid\r\n"
		      "* OK [UIDNEXT %u] Predicted next UID\r\n",
		      job->st.uidvalidity, job->st.uidnext);
	/* RFC 7162 3.1.2.1: sent whenever CONDSTORE is on; cheap, and it
	 * lets a client turn CONDSTORE on later without reselecting. */
	mp_buf_printf(&out, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
		      (unsigned long long)job->st.highestmodseq);
	if (job->qr.on && job->qr.uidvalidity == job->st.uidvalidity)
		write_qresync(s, job, &out);
	imap_write(s, out.data, out.len);
	mp_buf_free(&out);
	imap_cmd_done(s, "OK", v->readonly ? "READ-ONLY" : "READ-WRITE",
		      "Select completed");
}

static void
select_done(void *arg)
{
	struct select_job *job = arg;
	struct imap_session *s = job->head.s;

	if (s == NULL) {
		job_free(job);
		return;
	}
	s->job = NULL;
	if (job->result == MS_OK) {
		select_answer(s, job);
	} else if (job->result == MS_ERR_NOT_FOUND) {
		imap_cmd_done(s, "NO", "NONEXISTENT", "Mailbox does not exist");
	} else {
		mp_conn_log(s->conn, MP_LOG_WARN,
			    "event=imap_select_failed mailbox=%s error=%s",
			    mp_q(job->name), mp_q(job->err.text));
		imap_cmd_done(s, "NO", "SERVERBUG",
			      "Cannot open the mailbox, try again later");
	}
	job_free(job);
}

/* Parses "(QRESYNC (uidvalidity modseq [known-uids [seq-match]]))" or
 * "(CONDSTORE)"; false after a BAD. */
static bool
select_params(struct imap_session *s, const struct imap_arg *arg,
	      struct qresync *qr)
{
	const struct imap_arg *params, *q;
	size_t n, qn;
	uint64_t num;
	const char *error = NULL;

	if (!imap_arg_get_list(arg, &params, &n))
		goto bad;
	for (size_t i = 0; i < n; i++) {
		if (imap_arg_atom_equals(&params[i], "CONDSTORE")) {
			s->enabled |= IMAP_EN_CONDSTORE;
			continue;
		}
		if (!imap_arg_atom_equals(&params[i], "QRESYNC") || i + 1 >= n)
			goto bad;
		if (!(s->enabled & IMAP_EN_QRESYNC)) {
			imap_cmd_bad(s, NULL, "QRESYNC is not enabled");
			return false;
		}
		if (!imap_arg_get_list(&params[++i], &q, &qn) || qn < 2 ||
		    qn > 4 || !imap_arg_get_number(&q[0], &num) || num == 0 ||
		    num > UINT32_MAX)
			goto bad;
		qr->uidvalidity = (uint32_t)num;
		if (!imap_arg_get_number(&q[1], &qr->modseq) || qr->modseq == 0)
			goto bad;
		if (qn >= 3 && q[2].type != IMAP_ARG_LIST) {
			struct mp_str text;

			if (!imap_arg_get_atom(&q[2], &text) ||
			    imap_seqset_parse(&qr->known, text.p, text.len,
					      UINT32_MAX, IMAP_SEQSET_UID,
					      s->limits.seqset_ranges_max,
					      &error) != IMAP_SEQSET_OK)
				goto bad;
		}
		/* The sequence-match data only saves a server work when
		 * expunged UIDs are forgotten; ours are kept. */
		qr->on = true;
	}
	return true;
bad:
	imap_cmd_bad(s, NULL,
		     error != NULL ? error : "Invalid SELECT parameters");
	return false;
}

/* Decodes a mailbox name argument to UTF-8 (modified UTF-7 unless the
 * client enabled UTF-8); false after a BAD or NO. The caller frees *name. */
bool
imap_mailbox_arg(struct imap_session *s, const struct imap_arg *arg,
		 char **name_r)
{
	struct mp_buf name = {0};
	const char *error = NULL;
	struct mp_str text;

	if (!imap_arg_get_astring(arg, &text)) {
		imap_cmd_bad(s, NULL, "Invalid mailbox name");
		return false;
	}
	if (text.len == 5 && strncasecmp(text.p, "INBOX", 5) == 0) {
		*name_r = mp_xstrdup("INBOX");
		return true;
	}
	if (s->enabled & (IMAP_EN_UTF8 | IMAP_EN_REV2) &&
	    imap_utf8_needs_mutf7(text.p, text.len)) {
		/* Under UTF8=ACCEPT names are UTF-8 as they are; the parser
		 * checked the encoding of quoted strings. */
		mp_buf_append(&name, text.p, text.len);
	} else if (!imap_mutf7_to_utf8(text.p, text.len, &name, &error)) {
		mp_buf_free(&name);
		imap_cmd_done(s, "NO", "CANNOT",
			      "Invalid mailbox name encoding");
		return false;
	}
	mp_buf_append(&name, "", 1);
	/* "INBOX/sub" keeps INBOX's canonical case. */
	if (strncasecmp(name.data, "INBOX/", 6) == 0)
		memcpy(name.data, "INBOX", 5);
	*name_r = (char *)name.data;
	return true;
}

static enum mp_status
cmd_select(struct imap_session *s, const struct imap_command *cmd)
{
	bool examine = strcmp(cmd->verb, "EXAMINE") == 0;
	struct select_job *job;
	char *name;

	if (cmd->count < 1 || cmd->count > 2) {
		imap_cmd_bad(s, NULL, "SELECT needs a mailbox name");
		return MP_OK;
	}
	if (!imap_mailbox_arg(s, &cmd->args[0], &name))
		return MP_OK;
	job = mp_xcalloc(1, sizeof(*job));
	job->name = name;
	if (cmd->count == 2 && !select_params(s, &cmd->args[1], &job->qr)) {
		job_free(job);
		return MP_OK;
	}
	/* RFC 9051 6.3.1: a SELECT while one is selected first closes it,
	 * without expunging, and says so with [CLOSED]. */
	if (s->view != NULL) {
		imap_view_close(s);
		imap_untagged(s, "OK [CLOSED] Previous mailbox closed");
	}
	job->head.s = s;
	job->user = ms_user_ref(s->user);
	job->readonly = examine;
	job->want_recent = !examine;
	s->job = &job->head;
	mp_pool_submit(mp_server_pool(s->server), select_work, select_done,
		       job);
	return MP_AGAIN;
}

/* --- CLOSE, UNSELECT ------------------------------------------------------ */

struct close_job {
	struct imap_job head;
	struct ms_mailbox *mb;
	char *name; /* for the mailbox.expunge hook */
	uint32_t uidvalidity;
	struct ms_change_list out;
	enum ms_result result;
	struct ms_error err;
};

static void
close_work(void *arg)
{
	struct close_job *job = arg;

	job->result = ms_message_expunge(job->mb, NULL, &job->out, &job->err);
	ms_mailbox_close(&job->mb);
}

static void
close_done(void *arg)
{
	struct close_job *job = arg;
	struct imap_session *s = job->head.s;

	if (s != NULL) {
		s->job = NULL;
		if (job->result != MS_OK)
			mp_conn_log(s->conn, MP_LOG_WARN,
				    "event=imap_close_expunge_failed error=%s",
				    mp_q(job->err.text));
		else
			imap_event_expunge(s, job->name, job->uidvalidity,
					   job->out.uids, job->out.n_uids);
		imap_cmd_ok(s);
	}
	ms_change_list_free(&job->out);
	free(job->name);
	free(job);
}

static enum mp_status
cmd_close(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_view *v = s->view;
	struct close_job *job;

	/* UNSELECT (RFC 3691) leaves without expunging; so does CLOSE of a
	 * read-only mailbox. CLOSE sends no EXPUNGE responses. */
	if (strcmp(cmd->verb, "UNSELECT") == 0 || v->readonly) {
		imap_view_close(s);
		imap_cmd_ok(s);
		return MP_OK;
	}
	job = mp_xcalloc(1, sizeof(*job));
	job->head.s = s;
	job->mb = v->mb;
	v->mb = NULL;
	job->name = mp_xstrdup(v->name);
	job->uidvalidity = v->uidvalidity;
	imap_view_close(s);
	s->job = &job->head;
	mp_pool_submit(mp_server_pool(s->server), close_work, close_done, job);
	return MP_AGAIN;
}

const struct imap_cmd_def imap_view_cmds[] = {
	{"SELECT", IMAP_S_LOGIN, 0, cmd_select},
	{"EXAMINE", IMAP_S_LOGIN, 0, cmd_select},
	{"CLOSE", IMAP_S_SELECTED, IMAP_CMD_NO_ARGS, cmd_close},
	{"UNSELECT", IMAP_S_SELECTED, IMAP_CMD_NO_ARGS, cmd_close},
	{NULL, 0, 0, NULL},
};
