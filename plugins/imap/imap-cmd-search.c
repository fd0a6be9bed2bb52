/* imap-cmd-search.c - SEARCH and UID SEARCH (RFC 9051 6.4.4), with
 * ESEARCH's RETURN (RFC 4731), SEARCHRES's SAVE and "$" (RFC 5182) and
 * CONDSTORE's MODSEQ key (RFC 7162 3.1.5); and the search job SORT and
 * THREAD share with it (imap-search-job.h).
 *
 * The program is parsed on the loop (imap-search-parse.c). Matching reads
 * the index and, for BODY, TEXT, HEADER and the like, every message's MIME
 * structure and file: a big mailbox would hold the loop for long, so the
 * whole match runs on the thread pool with the view's mailbox handle lent
 * to the job and a copy of the view's UID map (the session may close
 * meanwhile). Back on the loop the result is written and, for SAVE, kept
 * in the view as "$". */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <moonpost/log.h>
#include <moonpost/mailstore.h>
#include <moonpost/mime.h>
#include <moonpost/pool.h>
#include <moonpost/server.h>

#include "imap-private.h"
#include "imap-search-job.h"
#include "imap-search.h"

static void
content_release(struct imap_search_job *job)
{
	mp_mime_message_free(&job->mime);
	ms_msg_list_free(&job->mime_meta);
	if (job->fd >= 0)
		close(job->fd);
	job->fd = -1;
}

void
imap_search_job_init(struct imap_search_job *job)
{
	job->fd = -1;
}

void
imap_search_job_free(struct imap_search_job *job)
{
	if (job->destroy != NULL)
		job->destroy(job);
	content_release(job);
	ms_mailbox_close(&job->mb);
	imap_search_program_free(&job->prog);
	free(job->uids);
	free(job->nums);
	free(job->match_uids);
	free(job->modseqs);
	free(job);
}

/* --- the content of the message being matched --------------------------- */

const struct mp_mime_message *
imap_search_job_mime(struct imap_search_job *job, const char **error_r)
{
	if (job->mime == NULL) {
		ms_msg_list_free(&job->mime_meta);
		if (ms_message_get(job->mb, job->cur_uid, &job->mime_meta,
				   &job->mime, &job->cur_err) != MS_OK ||
		    job->mime == NULL) {
			*error_r =
				job->cur_err.text[0] != '\0'
					? job->cur_err.text
					: "Cannot read the message structure";
			return NULL;
		}
	}
	return job->mime;
}

static const struct mp_mime_message *
search_mime(void *ctx, const char **error_r)
{
	return imap_search_job_mime(ctx, error_r);
}

/* The stored file, as FETCH reads it (imap-fetch-items.c). */
ssize_t
imap_search_job_read(void *ctx, uint64_t offset, void *buf, size_t len,
		     const char **error_r)
{
	struct imap_search_job *job = ctx;
	ssize_t n;

	if (job->fd < 0) {
		job->fd = ms_message_open(job->mb, job->cur_uid, &job->cur_err);
		if (job->fd < 0) {
			*error_r = job->cur_err.text;
			return -1;
		}
	}
	do
		n = pread(job->fd, buf, len, (off_t)offset);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		*error_r = strerror(errno);
	return n;
}

/* --- the match ------------------------------------------------------------ */

/* The sequence number of uid in the job's copy of the view, or 0. */
static uint32_t
job_seq(const struct imap_search_job *job, uint32_t uid)
{
	size_t lo = 0, hi = job->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (job->uids[mid] == uid)
			return (uint32_t)mid + 1;
		if (job->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* Keeps m (sequence number seq) as a match; false when on_match failed. */
static bool
keep_match(struct imap_search_job *job, const struct ms_msg *m, uint32_t seq)
{
	size_t i = job->count++;

	job->nums[i] = job->uid ? m->uid : seq;
	job->match_uids[i] = m->uid;
	job->modseqs[i] = m->modseq;
	if (job->on_match == NULL || job->on_match(job, m, i))
		return true;
	job->match_error = true;
	return false;
}

static bool
match_one(struct imap_search_job *job, const struct ms_msg *m, uint32_t seq)
{
	struct imap_search_msg msg = {
		.seq = seq,
		.meta = m,
		.recent = job->first_recent != 0 && m->uid >= job->first_recent,
		.mime = search_mime,
		.read = imap_search_job_read,
		.ctx = job,
	};
	const char *error = NULL;
	enum imap_search_match r;
	bool ok = true;

	job->cur_uid = m->uid;
	r = imap_search_match(job->prog, &msg, &error);
	if (r == IMAP_SEARCH_ERROR) {
		job->match_error = true;
		snprintf(job->error, sizeof(job->error), "%s",
			 error != NULL ? error : "unknown");
		ok = false;
	} else if (r == IMAP_SEARCH_MATCH) {
		ok = keep_match(job, m, seq);
	}
	content_release(job);
	return ok;
}

void
imap_search_job_run(struct imap_search_job *job)
{
	struct ms_msg_list all = {0};
	struct ms_error err = {0};

	job->result = ms_mailbox_messages(job->mb, NULL, &all, &err);
	if (job->result != MS_OK) {
		snprintf(job->error, sizeof(job->error), "%s", err.text);
		return;
	}
	job->nums = mp_xcalloc(all.n + 1, sizeof(*job->nums));
	job->match_uids = mp_xcalloc(all.n + 1, sizeof(*job->match_uids));
	job->modseqs = mp_xcalloc(all.n + 1, sizeof(*job->modseqs));
	for (size_t i = 0; i < all.n; i++) {
		/* Messages the client has not been told of yet are not
		 * there for it (RFC 9051 7.5.1); expunged ones it still
		 * sees are gone from the index and match nothing. */
		uint32_t seq = job_seq(job, all.v[i].uid);

		/* Nobody waits for the answer any more. */
		if (atomic_load_explicit(&job->head.cancelled,
					 memory_order_relaxed))
			break;
		if (seq != 0 && !match_one(job, &all.v[i], seq))
			break;
	}
	ms_msg_list_free(&all);
}

struct imap_session *
imap_search_job_finish(struct imap_search_job *job)
{
	struct imap_session *s = job->head.s;

	imap_view_give_back(s, &job->mb);
	if (s == NULL) {
		imap_search_job_free(job);
		return NULL;
	}
	s->job = NULL;
	if (s->view == NULL) {
		/* Cannot happen while the command runs, but never write
		 * through a view that is gone. */
		imap_cmd_done(s, "NO", "UNAVAILABLE", "Mailbox is gone");
		imap_search_job_free(job);
		return NULL;
	}
	if (job->result == MS_OK && !job->match_error)
		return s;
	mp_conn_log(s->conn, MP_LOG_WARN, "event=imap_search_failed error=%s",
		    mp_q(job->error));
	/* RFC 5182 2.1: a failed SAVE empties "$". */
	if (imap_search_save(job->prog))
		imap_seqset_free(&s->view->saved);
	if (job->result == MS_ERR_NOT_FOUND)
		imap_bye(s, "Selected mailbox was deleted");
	else
		imap_cmd_done(s, "NO", "UNAVAILABLE",
			      "Cannot search now, try again later");
	imap_search_job_free(job);
	return NULL;
}

/* --- starting ------------------------------------------------------------- */

/* '*' of UID sets: the last UID, or UIDNEXT when the mailbox is empty. */
static uint32_t
last_uid(struct imap_session *s)
{
	struct ms_status st = {0};
	struct ms_error err = {0};

	if (s->view->n > 0)
		return s->view->uids[s->view->n - 1];
	if (ms_mailbox_get_status(s->view->mb, &st, &err) == MS_OK &&
	    st.uidnext > 0)
		return st.uidnext;
	return 1;
}

void
imap_search_job_context(struct imap_session *s, struct imap_search_context *ctx)
{
	struct imap_view *v = s->view;

	*ctx = (struct imap_search_context){
		.messages = (uint32_t)v->n,
		.last_uid = last_uid(s),
		/* Empty until the first SAVE: "$" then matches nothing. */
		.saved = &v->saved,
		.now = (int64_t)time(NULL),
		.max_ranges = s->limits.seqset_ranges_max,
	};
	if (s->enabled & IMAP_EN_REV2)
		ctx->flags |= IMAP_SEARCH_REV2;
	if (s->enabled & IMAP_EN_UTF8)
		ctx->flags |= IMAP_SEARCH_UTF8_ACCEPT;
}

void
imap_search_job_submit(struct imap_session *s, struct imap_search_job *job,
		       void (*work)(void *), void (*done)(void *))
{
	struct imap_view *v = s->view;

	/* RFC 7162 3.1: a CONDSTORE-enabling command. */
	if (imap_search_uses_modseq(job->prog))
		s->enabled |= IMAP_EN_CONDSTORE;
	job->uid = s->req.uid;
	job->n = v->n;
	job->uids = mp_xcalloc(v->n + 1, sizeof(*job->uids));
	if (v->n > 0)
		memcpy(job->uids, v->uids, v->n * sizeof(*job->uids));
	job->first_recent = v->first_recent;
	job->head.s = s;
	job->mb = imap_view_lend(s);
	s->job = &job->head;
	mp_pool_submit(mp_server_pool(s->server), work, done, job);
}

/* --- SEARCH --------------------------------------------------------------- */

static void
write_result(struct imap_session *s, struct imap_search_job *job)
{
	const struct imap_search_program *prog = job->prog;
	struct mp_buf out = {0};
	bool modseq = imap_search_uses_modseq(prog);
	const uint64_t *modseqs = modseq ? job->modseqs : NULL;
	bool any = true;

	if (imap_search_esearch(prog)) {
		struct mp_str tag = {s->req.tag, strlen(s->req.tag)};

		any = imap_search_format_esearch(&out, prog, tag, job->uid,
						 job->nums, modseqs,
						 job->count);
	} else {
		imap_search_format_search(&out, prog, job->nums, modseqs,
					  job->count);
	}
	if (any) {
		mp_buf_puts(&out, "\r\n");
		imap_write(s, out.data, out.len);
	}
	mp_buf_free(&out);
}

static void
search_work(void *arg)
{
	imap_search_job_run(arg);
}

static void
search_done(void *arg)
{
	struct imap_search_job *job = arg;
	struct imap_session *s = imap_search_job_finish(job);

	if (s == NULL)
		return;
	write_result(s, job);
	if (imap_search_save(job->prog))
		imap_search_saved_result(job->prog, job->match_uids, job->count,
					 &s->view->saved);
	imap_cmd_ok(s);
	imap_search_job_free(job);
}

static enum mp_status
cmd_search(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_search_context ctx;
	struct imap_search_error err = {0};
	struct imap_search_job *job;
	enum imap_search_status st;

	imap_search_job_context(s, &ctx);
	job = mp_xcalloc(1, sizeof(*job));
	imap_search_job_init(job);
	st = imap_search_parse(cmd->args, cmd->count, &ctx, &job->prog, &err);
	if (st != IMAP_SEARCH_OK) {
		imap_search_job_free(job);
		if (st == IMAP_SEARCH_BAD)
			imap_cmd_bad(s, err.code, err.text);
		else
			imap_cmd_done(s, "NO", err.code, err.text);
		return MP_OK;
	}
	imap_search_job_submit(s, job, search_work, search_done);
	return MP_AGAIN;
}

const struct imap_cmd_def imap_search_cmds[] = {
	{"SEARCH", IMAP_S_SELECTED, IMAP_CMD_UID | IMAP_CMD_NO_EXPUNGE,
	 cmd_search},
	{NULL, 0, 0, NULL},
};
