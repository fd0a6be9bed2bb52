/* imap-store.c - STORE and UID STORE (RFC 9051 6.4.6), with CONDSTORE's
 * UNCHANGEDSINCE (RFC 7162 3.1.3).
 *
 * The arguments are checked on the loop; the change itself writes the
 * index, so it runs on the thread pool with the view's mailbox handle lent
 * to the job. Back on the loop the session writes the FETCH responses of
 * what it changed, then imap_cmd_done() reports what others did. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <moonpost/log.h>
#include <moonpost/mailstore.h>
#include <moonpost/pool.h>
#include <moonpost/server.h>

#include "imap-private.h"

struct store_job {
	struct imap_job head;
	struct ms_mailbox *mb;
	struct imap_seqset uids; /* the messages asked for */
	enum ms_flag_mode mode;
	uint32_t flags;
	struct mp_strlist keywords;
	bool silent;
	bool conditional; /* UNCHANGEDSINCE given */
	uint64_t unchangedsince;
	bool by_seq; /* STORE, not UID STORE */
	/* results */
	struct ms_change_list changed, modified;
	bool gone; /* a message of the set was expunged meanwhile */
	enum ms_result result;
	struct ms_error err;
};

/* --- the view's mailbox, lent to a job ---------------------------------- */

/* The job owns the handle while it runs on the pool: if the session goes
 * away meanwhile, closing the view must not free what the job uses. */
struct ms_mailbox *
imap_view_lend(struct imap_session *s)
{
	struct ms_mailbox *mb = s->view->mb;

	s->view->mb = NULL;
	return mb;
}

void
imap_view_give_back(struct imap_session *s, struct ms_mailbox **mb)
{
	if (s != NULL && s->view != NULL && s->view->mb == NULL) {
		s->view->mb = *mb;
		*mb = NULL;
	}
	ms_mailbox_close(mb);
}

/* --- arguments ---------------------------------------------------------- */

static const struct {
	const char *name;
	uint32_t flag;
} system_flags[] = {
	{"\\Seen", MS_FLAG_SEEN},       {"\\Answered", MS_FLAG_ANSWERED},
	{"\\Flagged", MS_FLAG_FLAGGED}, {"\\Deleted", MS_FLAG_DELETED},
	{"\\Draft", MS_FLAG_DRAFT},
};

/* An atom a keyword may be (RFC 9051 9: flag-keyword = atom), as the
 * mailstore stores them. */
static bool
keyword_chars_ok(const struct mp_str *w)
{
	for (size_t i = 0; i < w->len; i++) {
		unsigned char c = (unsigned char)w->p[i];

		if (c <= ' ' || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return w->len > 0;
}

/* Adds one flag; false after a BAD or NO. */
static bool
parse_flag(struct imap_session *s, const struct imap_arg *arg,
	   struct store_job *job)
{
	struct mp_str w;
	char *kw;

	if (!imap_arg_get_atom(arg, &w)) {
		imap_cmd_bad(s, NULL, "Invalid flag");
		return false;
	}
	if (w.len > 0 && w.p[0] == '\\') {
		for (size_t i = 0; i < MP_NELEMS(system_flags); i++) {
			const char *name = system_flags[i].name;

			if (strlen(name) == w.len &&
			    strncasecmp(name, w.p, w.len) == 0) {
				job->flags |= system_flags[i].flag;
				return true;
			}
		}
		/* \Recent is the server's to set (RFC 3501 2.3.2), and no
		 * other system flag exists. */
		imap_cmd_bad(s, NULL, "Invalid system flag");
		return false;
	}
	if (!keyword_chars_ok(&w)) {
		imap_cmd_bad(s, NULL, "Invalid keyword");
		return false;
	}
	if (w.len > MS_KEYWORD_MAX) {
		imap_cmd_done(s, "NO", "LIMIT", "Keyword too long");
		return false;
	}
	kw = mp_xstrndup(w.p, w.len);
	if (!mp_strlist_contains(&job->keywords, kw)) {
		if (job->keywords.n >= MS_KEYWORDS_MAX) {
			free(kw);
			imap_cmd_done(s, "NO", "LIMIT", "Too many keywords");
			return false;
		}
		mp_strlist_add(&job->keywords, kw);
	}
	free(kw);
	return true;
}

/* "FLAGS", "+FLAGS.SILENT", ...; false after a BAD. */
static bool
parse_item(struct imap_session *s, const struct imap_arg *arg,
	   struct store_job *job)
{
	struct mp_str w;
	size_t i = 0;

	if (!imap_arg_get_atom(arg, &w) || w.len == 0)
		goto bad;
	job->mode = MS_FLAGS_REPLACE;
	if (w.p[0] == '+' || w.p[0] == '-') {
		job->mode = w.p[0] == '+' ? MS_FLAGS_ADD : MS_FLAGS_REMOVE;
		i = 1;
	}
	if (w.len - i == 5 && strncasecmp(w.p + i, "FLAGS", 5) == 0)
		return true;
	if (w.len - i == 12 && strncasecmp(w.p + i, "FLAGS.SILENT", 12) == 0) {
		job->silent = true;
		return true;
	}
bad:
	imap_cmd_bad(s, NULL, "Invalid STORE data item");
	return false;
}

/* "(UNCHANGEDSINCE n)" (RFC 7162 3.1.3); false after a BAD. */
static bool
parse_modifiers(struct imap_session *s, const struct imap_arg *arg,
		struct store_job *job)
{
	const struct imap_arg *mods;
	size_t n;

	if (!imap_arg_get_list(arg, &mods, &n) || n != 2 ||
	    !imap_arg_atom_equals(&mods[0], "UNCHANGEDSINCE") ||
	    !imap_arg_get_number(&mods[1], &job->unchangedsince) ||
	    job->unchangedsince > INT64_MAX) {
		imap_cmd_bad(s, NULL, "Invalid STORE modifier");
		return false;
	}
	job->conditional = true;
	/* RFC 7162 3.1: a CONDSTORE-enabling command. */
	s->enabled |= IMAP_EN_CONDSTORE;
	return true;
}

static bool
parse_store(struct imap_session *s, const struct imap_command *cmd,
	    struct store_job *job)
{
	const struct imap_arg *flags = NULL;
	size_t i = 1, nflags = 0;

	if (cmd->count < 3) {
		imap_cmd_bad(s, NULL, "STORE needs a set, an item and flags");
		return false;
	}
	if (cmd->args[1].type == IMAP_ARG_LIST) {
		if (!parse_modifiers(s, &cmd->args[1], job))
			return false;
		i = 2;
	}
	if (i + 1 >= cmd->count) {
		imap_cmd_bad(s, NULL, "STORE needs flags");
		return false;
	}
	if (!parse_item(s, &cmd->args[i++], job))
		return false;
	/* A flag list, or flags without parentheses (RFC 9051 9). */
	if (cmd->args[i].type == IMAP_ARG_LIST) {
		if (i + 1 != cmd->count) {
			imap_cmd_bad(s, NULL, "Unexpected arguments");
			return false;
		}
		imap_arg_get_list(&cmd->args[i], &flags, &nflags);
	} else {
		flags = &cmd->args[i];
		nflags = cmd->count - i;
	}
	for (size_t k = 0; k < nflags; k++)
		if (!parse_flag(s, &flags[k], job))
			return false;
	return imap_view_uidset(s, &cmd->args[0], s->req.uid, &job->uids);
}

/* --- the change ---------------------------------------------------------- */

static void
job_free(struct store_job *job)
{
	ms_mailbox_close(&job->mb);
	imap_seqset_free(&job->uids);
	mp_strlist_free(&job->keywords);
	ms_change_list_free(&job->changed);
	ms_change_list_free(&job->modified);
	free(job);
}

/* UNCHANGEDSINCE 0 fails for every message (RFC 7162 3.1.3: every
 * message has a MODSEQ above 0): nothing is changed. */
static void
all_modified(struct store_job *job)
{
	for (size_t i = 0; i < job->uids.count; i++)
		for (uint64_t u = job->uids.ranges[i].lo;
		     u <= job->uids.ranges[i].hi; u++) {
			struct ms_change_list *m = &job->modified;

			m->uids = mp_xrealloc(
				m->uids, (m->n_uids + 1) * sizeof(*m->uids));
			m->uids[m->n_uids++] = (uint32_t)u;
		}
}

/* A STORE by sequence number names messages as the client was told of
 * them; another session may have expunged some since, and this command
 * may not say so (RFC 9051 7.5.1). True when some of set is gone: the
 * tagged reply then tells the client to look. Read after the change, on
 * the pool, like the change itself. */
static bool
set_has_gone(struct store_job *job, const struct ms_uidset *set)
{
	struct ms_msg_list present = {0};
	struct ms_error err;
	uint64_t asked = 0;
	bool gone;

	for (size_t i = 0; i < set->n; i++)
		asked += (uint64_t)set->v[i].hi - set->v[i].lo + 1;
	/* The change is made either way; without the read, the client
	 * just learns of the expunge at its next command. */
	if (ms_mailbox_messages(job->mb, set, &present, &err) != MS_OK)
		return false;
	gone = present.n < asked;
	ms_msg_list_free(&present);
	return gone;
}

static void
store_work(void *arg)
{
	struct store_job *job = arg;
	struct ms_uidset set = {
		.v = (const struct ms_uid_range *)job->uids.ranges,
		.n = job->uids.count,
	};

	if (job->conditional && job->unchangedsince == 0) {
		all_modified(job);
		job->result = MS_OK;
		return;
	}
	job->result = ms_message_store(
		job->mb, &set, job->mode, job->flags, &job->keywords,
		job->unchangedsince, &job->changed, &job->modified, &job->err);
	if (job->result == MS_OK && job->by_seq)
		job->gone = set_has_gone(job, &set);
}

/* "* 3 FETCH (UID 9 FLAGS (\Seen) MODSEQ (12))" for a message this STORE
 * changed. */
static void
write_fetch(struct imap_session *s, struct mp_buf *out, uint32_t seq,
	    const struct ms_msg *m, bool silent)
{
	bool condstore = s->enabled & IMAP_EN_CONDSTORE;
	const char *sep = "";

	mp_buf_printf(out, "* %u FETCH (", seq);
	if (s->req.uid || (s->enabled & IMAP_EN_QRESYNC)) {
		mp_buf_printf(out, "UID %u", m->uid);
		sep = " ";
	}
	if (!silent) {
		mp_buf_printf(out, "%sFLAGS ", sep);
		imap_write_flags(out, m, imap_view_recent(s->view, m->uid));
		sep = " ";
	}
	if (condstore)
		mp_buf_printf(out, "%sMODSEQ (%llu)", sep,
			      (unsigned long long)m->modseq);
	mp_buf_puts(out, ")\r\n");
}

static void
write_changes(struct imap_session *s, struct store_job *job)
{
	struct imap_view *v = s->view;
	struct mp_buf out = {0};

	/* RFC 7162 3.1.3: with CONDSTORE on, a changed message's new MODSEQ
	 * is sent even after .SILENT. */
	if (job->silent && !(s->enabled & IMAP_EN_CONDSTORE))
		return;
	for (size_t i = 0; i < job->changed.msgs.n; i++) {
		const struct ms_msg *m = &job->changed.msgs.v[i];
		uint32_t seq = imap_view_seq(v, m->uid);

		if (seq != 0)
			write_fetch(s, &out, seq, m, job->silent);
	}
	if (out.len > 0)
		imap_write(s, out.data, out.len);
	mp_buf_free(&out);
}

/* "MODIFIED 2,5:7": sequence numbers for STORE, UIDs for UID STORE
 * (RFC 7162 3.1.3). */
static char *
modified_code(struct imap_session *s, const struct ms_change_list *mod)
{
	struct imap_seqset set = {0};
	struct mp_buf code = {0};

	for (size_t i = 0; i < mod->n_uids; i++) {
		uint32_t n = s->req.uid ? mod->uids[i]
					: imap_view_seq(s->view, mod->uids[i]);

		if (n != 0)
			imap_seqset_add(&set, n, n);
	}
	if (set.count == 0)
		return NULL;
	imap_seqset_normalize(&set);
	mp_buf_puts(&code, "MODIFIED ");
	imap_seqset_format(&code, set.ranges, set.count);
	imap_seqset_free(&set);
	return mp_buf_steal(&code);
}

static void
store_failed(struct imap_session *s, struct store_job *job)
{
	switch (job->result) {
	case MS_ERR_LIMIT:
		imap_cmd_done(s, "NO", "LIMIT", "Too many keywords");
		return;
	case MS_ERR_BAD_NAME:
		imap_cmd_done(s, "NO", "CANNOT", "Invalid keyword");
		return;
	case MS_ERR_NOT_FOUND:
		imap_bye(s, "Selected mailbox was deleted");
		return;
	default:
		mp_conn_log(s->conn, MP_LOG_WARN,
			    "event=imap_store_failed error=%s",
			    mp_q(job->err.text));
		imap_cmd_done(s, "NO", "UNAVAILABLE",
			      "Cannot change flags now, try again later");
	}
}

static void
store_done(void *arg)
{
	struct store_job *job = arg;
	struct imap_session *s = job->head.s;
	char *code;

	imap_view_give_back(s, &job->mb);
	if (s == NULL) {
		job_free(job);
		return;
	}
	s->job = NULL;
	if (job->result != MS_OK) {
		store_failed(s, job);
		job_free(job);
		return;
	}
	write_changes(s, job);
	imap_event_flags(s, s->view->name, s->view->uidvalidity, &job->changed,
			 job->mode, job->flags, &job->keywords);
	/* What we just wrote need not be reported again by the sync, but
	 * only if nobody else committed a change in between: skipping past
	 * theirs would lose it. A duplicate FETCH is harmless. */
	if (job->changed.modseq != 0 &&
	    job->changed.modseq == s->view->modseq + 1)
		s->view->modseq = job->changed.modseq;
	code = modified_code(s, &job->modified);
	if (code != NULL)
		imap_cmd_done(s, "OK", code, "Conditional STORE completed");
	else if (job->gone)
		/* RFC 5530 EXPUNGEISSUED, with the words Dovecot 2.3 ends
		 * such a FETCH with: the rest of the set was changed, the
		 * gone message cannot be (RFC 2180 4.2), and the EXPUNGE
		 * comes with the client's next command. OK, not NO: the
		 * STORE did what it could. */
		imap_cmd_done(s, "OK", "EXPUNGEISSUED",
			      "Some messages were already expunged");
	else
		imap_cmd_ok(s);
	free(code);
	job_free(job);
}

static enum mp_status
cmd_store(struct imap_session *s, const struct imap_command *cmd)
{
	struct store_job *job = mp_xcalloc(1, sizeof(*job));

	if (!parse_store(s, cmd, job)) {
		job_free(job);
		return MP_OK;
	}
	/* RFC 9051 6.3.3: EXAMINE is read-only. Dovecot answers "OK Store
	 * ignored" (NO only with UNCHANGEDSINCE); a NO in every case tells
	 * the client that its change did not happen. */
	if (s->view->readonly) {
		job_free(job);
		imap_cmd_done(s, "NO", "READ-ONLY", "Mailbox is read-only");
		return MP_OK;
	}
	if (job->uids.count == 0) {
		job_free(job);
		imap_cmd_ok(s);
		return MP_OK;
	}
	job->head.s = s;
	job->by_seq = !s->req.uid;
	job->mb = imap_view_lend(s);
	s->job = &job->head;
	mp_pool_submit(mp_server_pool(s->server), store_work, store_done, job);
	return MP_AGAIN;
}

const struct imap_cmd_def imap_store_cmds[] = {
	{"STORE", IMAP_S_SELECTED, IMAP_CMD_UID | IMAP_CMD_NO_EXPUNGE,
	 cmd_store},
	{NULL, 0, 0, NULL},
};
