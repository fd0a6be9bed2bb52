/* imap-copy.c - COPY (RFC 9051 6.4.7), MOVE (RFC 6851), EXPUNGE
 * (RFC 9051 6.4.3) and their UID forms, with UIDPLUS's COPYUID and
 * UID EXPUNGE (RFC 4315).
 *
 * Each writes the index, so the work runs on the thread pool with the
 * view's mailbox handle lent to the job. The EXPUNGE (or VANISHED)
 * responses are not written here: imap_cmd_done() runs imap_view_sync(),
 * which reads the expunges back from the mailstore and reports them once,
 * before the tagged reply. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <moonpost/log.h>
#include <moonpost/mailstore.h>
#include <moonpost/pool.h>
#include <moonpost/server.h>

#include "imap-private.h"

struct copy_job {
	struct imap_job head;
	struct ms_mailbox *mb;
	struct imap_seqset uids; /* the messages asked for */
	char *dest;
	bool move;
	bool expunge; /* EXPUNGE or UID EXPUNGE */
	bool all;     /* EXPUNGE: every \Deleted message */
	/* results */
	struct ms_change_list out;
	uint32_t dest_uidvalidity;
	/* The copies as stored, for the mailbox.append hook. */
	struct ms_user *user;
	struct ms_msg_list copies;
	enum ms_result result;
	struct ms_error err;
};

static void
job_free(struct copy_job *job)
{
	ms_mailbox_close(&job->mb);
	imap_seqset_free(&job->uids);
	ms_change_list_free(&job->out);
	ms_msg_list_free(&job->copies);
	ms_user_unref(&job->user);
	free(job->dest);
	free(job);
}

static struct ms_uidset
job_set(const struct copy_job *job)
{
	/* struct imap_range and struct ms_uid_range are both {lo, hi}. */
	struct ms_uidset set = {
		.v = (const struct ms_uid_range *)job->uids.ranges,
		.n = job->uids.count,
	};

	return set;
}

/* MOVE within one mailbox: the mailstore moves only between two, so it
 * is a copy, then the sources are marked \Deleted and expunged (RFC 6851
 * 3.3 allows a non-atomic MOVE; Dovecot does the same). */
static enum ms_result
move_here(struct copy_job *job, const struct ms_uidset *set)
{
	struct ms_change_list changed, modified, gone;
	enum ms_result r;

	r = ms_message_copy(job->mb, set, job->dest, false, &job->out,
			    &job->dest_uidvalidity, &job->err);
	if (r != MS_OK || job->out.n_uids == 0)
		return r;
	r = ms_message_store(job->mb, set, MS_FLAGS_ADD, MS_FLAG_DELETED, NULL,
			     0, &changed, &modified, &job->err);
	ms_change_list_free(&changed);
	ms_change_list_free(&modified);
	if (r != MS_OK)
		return r;
	r = ms_message_expunge(job->mb, set, &gone, &job->err);
	ms_change_list_free(&gone);
	return r;
}

/* Reads back what the copy stored: the hook reports size, flags and
 * keywords. The new UIDs are consecutive (one transaction allocated them),
 * so one range holds them and nothing else. */
static void
read_copies(struct copy_job *job)
{
	struct ms_uid_range r = {UINT32_MAX, 0};
	struct ms_uidset set = {&r, 1};
	struct ms_mailbox *dest;
	struct ms_error err;

	for (size_t i = 0; i < job->out.n_uids; i++) {
		if (job->out.uids[i] < r.lo)
			r.lo = job->out.uids[i];
		if (job->out.uids[i] > r.hi)
			r.hi = job->out.uids[i];
	}
	dest = ms_mailbox_open(job->user, job->dest, &err);
	if (dest == NULL)
		return;
	if (ms_mailbox_messages(dest, &set, &job->copies, &err) != MS_OK)
		ms_msg_list_free(&job->copies);
	ms_mailbox_close(&dest);
}

static void
copy_work(void *arg)
{
	struct copy_job *job = arg;
	struct ms_uidset set = job_set(job);

	if (job->expunge) {
		job->result = ms_message_expunge(
			job->mb, job->all ? NULL : &set, &job->out, &job->err);
	} else if (job->move &&
		   strcmp(job->dest, ms_mailbox_name(job->mb)) == 0) {
		job->result = move_here(job, &set);
	} else {
		job->result = ms_message_copy(
			job->mb, &set, job->dest, job->move, &job->out,
			&job->dest_uidvalidity, &job->err);
	}
	if (!job->expunge && job->result == MS_OK && job->out.n_uids > 0)
		read_copies(job);
}

/* The hooks, once the change committed. */
static void
fire_events(struct imap_session *s, const struct copy_job *job)
{
	const struct imap_view *v = s->view;

	if (v == NULL)
		return;
	if (job->expunge) {
		imap_event_expunge(s, v->name, v->uidvalidity, job->out.uids,
				   job->out.n_uids);
		return;
	}
	for (size_t i = 0; i < job->copies.n; i++) {
		const struct ms_msg *m = &job->copies.v[i];

		imap_event_append(s, job->dest, job->dest_uidvalidity, m->uid,
				  m->size, m->flags, m->keywords);
	}
	if (job->move)
		imap_event_expunge(s, v->name, v->uidvalidity,
				   job->out.src_uids, job->out.n_uids);
}

/* "COPYUID 7 3:5 10:12" (RFC 4315 3): the two sets element by element. */
static char *
copyuid_code(const struct copy_job *job)
{
	struct mp_buf code = {0};

	mp_buf_printf(&code, "COPYUID %u ", job->dest_uidvalidity);
	imap_seqset_format_numbers(&code, job->out.src_uids, job->out.n_uids);
	mp_buf_puts(&code, " ");
	imap_seqset_format_numbers(&code, job->out.uids, job->out.n_uids);
	return mp_buf_steal(&code);
}

static void
copy_failed(struct imap_session *s, struct copy_job *job)
{
	if (job->expunge && job->result == MS_ERR_NOT_FOUND) {
		imap_bye(s, "Selected mailbox was deleted");
		return;
	}
	switch (job->result) {
	case MS_ERR_NOT_FOUND:
		/* RFC 9051 6.4.7: the client may CREATE it and retry. */
		imap_cmd_done(s, "NO", "TRYCREATE",
			      "Destination mailbox does not exist");
		return;
	case MS_ERR_OVER_QUOTA:
		imap_cmd_done(s, "NO", "OVERQUOTA", "Quota exceeded");
		return;
	case MS_ERR_LIMIT:
		imap_cmd_done(s, "NO", "LIMIT", job->err.text);
		return;
	case MS_ERR_NOT_ALLOWED:
		imap_cmd_done(s, "NO", "CANNOT", job->err.text);
		return;
	default:
		mp_conn_log(s->conn, MP_LOG_WARN,
			    "event=imap_%s_failed error=%s",
			    job->expunge ? "expunge"
			    : job->move  ? "move"
					 : "copy",
			    mp_q(job->err.text));
		imap_cmd_done(s, "NO", "UNAVAILABLE",
			      "Cannot do that now, try again later");
	}
}

static void
copy_done(void *arg)
{
	struct copy_job *job = arg;
	struct imap_session *s = job->head.s;
	char *code = NULL;

	imap_view_give_back(s, &job->mb);
	if (s == NULL) {
		job_free(job);
		return;
	}
	s->job = NULL;
	if (job->result != MS_OK) {
		copy_failed(s, job);
		job_free(job);
		return;
	}
	if (!job->expunge && job->out.n_uids == 0 && job->uids.count > 0) {
		/* Every message asked for was expunged by another session
		 * since this one was told of it (RFC 5530 EXPUNGEISSUED). */
		imap_cmd_done(s, "NO", "EXPUNGEISSUED",
			      "The messages no longer exist");
		job_free(job);
		return;
	}
	fire_events(s, job);
	if (!job->expunge && job->out.n_uids > 0)
		code = copyuid_code(job);
	if (code != NULL && job->move) {
		/* RFC 6851 4.3: COPYUID in an untagged OK before the
		 * expunges, which the sync writes before the tagged OK. */
		imap_untagged(s, "OK [%s] Moved", code);
		MP_FREE(code);
	}
	if (code != NULL)
		imap_cmd_done(s, "OK", code, "Copy completed");
	else
		imap_cmd_ok(s);
	free(code);
	job_free(job);
}

static void
submit(struct imap_session *s, struct copy_job *job)
{
	job->head.s = s;
	job->mb = imap_view_lend(s);
	job->user = ms_user_ref(s->user);
	s->job = &job->head;
	mp_pool_submit(mp_server_pool(s->server), copy_work, copy_done, job);
}

static enum mp_status
cmd_copy(struct imap_session *s, const struct imap_command *cmd)
{
	struct copy_job *job;

	if (cmd->count != 2) {
		imap_cmd_bad(s, NULL, "Expected a set and a mailbox name");
		return MP_OK;
	}
	job = mp_xcalloc(1, sizeof(*job));
	job->move = strcmp(cmd->verb, "MOVE") == 0;
	if (!imap_view_uidset(s, &cmd->args[0], s->req.uid, &job->uids) ||
	    !imap_mailbox_arg(s, &cmd->args[1], &job->dest)) {
		job_free(job);
		return MP_OK;
	}
	/* MOVE expunges from the source: not in an EXAMINEd mailbox. */
	if (job->move && s->view->readonly) {
		job_free(job);
		imap_cmd_done(s, "NO", "READ-ONLY", "Mailbox is read-only");
		return MP_OK;
	}
	submit(s, job);
	return MP_AGAIN;
}

static enum mp_status
cmd_expunge(struct imap_session *s, const struct imap_command *cmd)
{
	struct copy_job *job;

	if (cmd->count != (s->req.uid ? 1u : 0u)) {
		imap_cmd_bad(s, NULL,
			     s->req.uid ? "UID EXPUNGE needs a UID set"
					: "Unexpected arguments");
		return MP_OK;
	}
	job = mp_xcalloc(1, sizeof(*job));
	job->expunge = true;
	job->all = !s->req.uid;
	if (s->req.uid &&
	    !imap_view_uidset(s, &cmd->args[0], true, &job->uids)) {
		job_free(job);
		return MP_OK;
	}
	if (s->view->readonly) {
		job_free(job);
		imap_cmd_done(s, "NO", "READ-ONLY", "Mailbox is read-only");
		return MP_OK;
	}
	if (!job->all && job->uids.count == 0) {
		job_free(job);
		imap_cmd_ok(s);
		return MP_OK;
	}
	submit(s, job);
	return MP_AGAIN;
}

const struct imap_cmd_def imap_copy_cmds[] = {
	{"COPY", IMAP_S_SELECTED, IMAP_CMD_UID, cmd_copy},
	{"MOVE", IMAP_S_SELECTED, IMAP_CMD_UID, cmd_copy},
	{"EXPUNGE", IMAP_S_SELECTED, IMAP_CMD_UID, cmd_expunge},
	{NULL, 0, 0, NULL},
};
