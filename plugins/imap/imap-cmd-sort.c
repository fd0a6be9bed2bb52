/* imap-cmd-sort.c - SORT and UID SORT (RFC 5256 3, RFC 5957's display
 * keys, ESORT's RETURN: RFC 5267 3), THREAD and UID THREAD (RFC 5256 3).
 *
 * Both search as SEARCH does, on the thread pool (imap-search-job.h).
 * Each match's envelope comes from the MIME structure the index keeps;
 * THREAD=REFERENCES also needs the References field, the one header
 * field the index does not keep, so it reads the message's top-level
 * header from the file. The sort or the threads are computed on the pool
 * too (imap-sort.h); the loop only writes the answer. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <moonpost/mime.h>

#include "imap-private.h"
#include "imap-search-job.h"
#include "imap-sort.h"

struct sort_job {
	struct imap_search_job sj; /* first: the job is one of these */
	bool thread;
	struct imap_sort_program sort;
	struct imap_sort_set *sort_set;
	enum imap_thread_alg alg;
	struct imap_thread_set *thread_set;
	struct mp_buf header;  /* the header read for References */
	struct mp_buf refs;    /* its References value */
	struct mp_buf threads; /* the answer of THREAD */
};

static void
sort_job_destroy(struct imap_search_job *sj)
{
	struct sort_job *job = (struct sort_job *)sj;

	imap_sort_set_free(&job->sort_set);
	imap_thread_set_free(&job->thread_set);
	mp_buf_free(&job->header);
	mp_buf_free(&job->refs);
	mp_buf_free(&job->threads);
}

/* --- on the pool: each match ------------------------------------------------
 */

/* The envelope of the message being matched, NULL when it has none;
 * false when its structure cannot be read. A message expunged since it
 * was listed has no header fields: it keeps its place in the answer. */
static bool
match_envelope(struct sort_job *job, const struct mp_mime_message **mime_r,
	       const struct mp_mime_envelope **env_r)
{
	const char *error = NULL;
	const struct mp_mime_message *mime =
		imap_search_job_mime(&job->sj, &error);

	*mime_r = mime;
	*env_r = NULL;
	if (mime != NULL) {
		*env_r = mime->root->envelope;
		return true;
	}
	if (job->sj.cur_err.code == MS_ERR_NOT_FOUND)
		return true;
	snprintf(job->sj.error, sizeof(job->sj.error), "%s",
		 error != NULL ? error : "Cannot read the message structure");
	return false;
}

static bool
needs_envelope(const struct imap_sort_program *prog)
{
	for (unsigned i = 0; i < prog->n; i++) {
		if (prog->c[i].key != IMAP_SORT_ARRIVAL &&
		    prog->c[i].key != IMAP_SORT_SIZE)
			return true;
	}
	return false;
}

static bool
sort_match(struct imap_search_job *sj, const struct ms_msg *m, size_t i)
{
	struct sort_job *job = (struct sort_job *)sj;
	const struct mp_mime_message *mime = NULL;
	struct imap_sort_msg msg = {.num = sj->nums[i], .meta = m};

	if (needs_envelope(&job->sort) && !match_envelope(job, &mime, &msg.env))
		return false;
	imap_sort_set_add(job->sort_set, &msg);
	return true;
}

/* Reads the top-level header (at most IMAP_SEARCH_HEADER_MAX bytes, as
 * SEARCH does) into job->header. */
static bool
read_header(struct sort_job *job, const struct mp_mime_part *root)
{
	uint64_t size = root->header_size;
	size_t got = 0;
	const char *error = "Cannot read the message";

	if (size > IMAP_SEARCH_HEADER_MAX)
		size = IMAP_SEARCH_HEADER_MAX;
	mp_buf_reset(&job->header);
	mp_buf_append(&job->header, "", 0);
	if (job->header.cap < size + 1) {
		job->header.data = mp_xrealloc(job->header.data, size + 1);
		job->header.cap = size + 1;
	}
	while (got < size) {
		ssize_t n = imap_search_job_read(
			&job->sj, root->header_offset + got,
			job->header.data + got, (size_t)size - got, &error);

		if (n < 0) {
			snprintf(job->sj.error, sizeof(job->sj.error), "%s",
				 error);
			return false;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	job->header.len = got;
	job->header.data[got] = '\0';
	return true;
}

/* The first References field's value into job->refs; p NULL when the
 * header has none. */
static bool
find_references(struct sort_job *job, const struct mp_mime_message *mime,
		struct mp_str *refs_r)
{
	struct mp_mime_header_iter it;
	struct mp_str name, value;

	*refs_r = (struct mp_str){NULL, 0};
	if (mime == NULL)
		return true;
	if (!read_header(job, mime->root))
		return false;
	mp_mime_header_iter_init(&it, job->header.data, job->header.len);
	while (mp_mime_header_iter_next(&it, &name, &value)) {
		if (name.len == 10 &&
		    strncasecmp(name.p, "References", 10) == 0) {
			mp_buf_reset(&job->refs);
			mp_buf_append(&job->refs, value.p, value.len);
			*refs_r =
				(struct mp_str){job->refs.data, job->refs.len};
			break;
		}
	}
	mp_mime_header_iter_deinit(&it);
	return true;
}

static bool
thread_match(struct imap_search_job *sj, const struct ms_msg *m, size_t i)
{
	struct sort_job *job = (struct sort_job *)sj;
	const struct mp_mime_message *mime;
	const struct mp_mime_envelope *env;
	struct imap_thread_msg msg = {.num = sj->nums[i]};

	if (!match_envelope(job, &mime, &env))
		return false;
	msg.sent = imap_sort_sent_date(m, env);
	if (env != NULL) {
		msg.subject = env->subject;
		msg.message_id = env->message_id;
		msg.in_reply_to = env->in_reply_to;
	}
	if (job->alg == IMAP_THREAD_REFERENCES &&
	    !find_references(job, mime, &msg.references))
		return false;
	imap_thread_set_add(job->thread_set, &msg);
	return true;
}

/* --- on the pool: the whole -------------------------------------------------
 */

/* Puts the results (numbers, UIDs, MODSEQs) in the sorted order. */
static void
apply_order(struct imap_search_job *sj, const uint32_t *order)
{
	uint32_t *nums = mp_xcalloc(sj->count + 1, sizeof(*nums));
	uint32_t *uids = mp_xcalloc(sj->count + 1, sizeof(*uids));
	uint64_t *modseqs = mp_xcalloc(sj->count + 1, sizeof(*modseqs));

	for (size_t k = 0; k < sj->count; k++) {
		nums[k] = sj->nums[order[k]];
		uids[k] = sj->match_uids[order[k]];
		modseqs[k] = sj->modseqs[order[k]];
	}
	free(sj->nums);
	free(sj->match_uids);
	free(sj->modseqs);
	sj->nums = nums;
	sj->match_uids = uids;
	sj->modseqs = modseqs;
}

static void
sort_work(void *arg)
{
	struct sort_job *job = arg;

	imap_search_job_run(&job->sj);
	if (job->sj.result != MS_OK || job->sj.match_error ||
	    atomic_load(&job->sj.head.cancelled))
		return;
	if (job->thread)
		imap_thread_set_format(job->thread_set, &job->threads);
	else
		apply_order(&job->sj, imap_sort_set_sort(job->sort_set));
}

/* --- on the loop: the answer ------------------------------------------------
 */

static void
write_sort(struct imap_session *s, struct sort_job *job)
{
	const struct imap_search_job *sj = &job->sj;
	const struct imap_search_program *prog = sj->prog;
	const uint64_t *modseqs =
		imap_search_uses_modseq(prog) ? sj->modseqs : NULL;
	struct mp_buf out = {0};
	bool any = true;

	if (imap_search_esearch(prog)) {
		struct mp_str tag = {s->req.tag, strlen(s->req.tag)};

		any = imap_search_format_esearch(&out, prog, tag, sj->uid,
						 sj->nums, modseqs, sj->count);
	} else {
		imap_search_format_numbers(&out, "SORT", prog, sj->nums,
					   modseqs, sj->count);
	}
	if (any) {
		mp_buf_puts(&out, "\r\n");
		imap_write(s, out.data, out.len);
	}
	mp_buf_free(&out);
	/* RFC 5182 with ESORT: MIN and MAX name the first and the last in
	 * sort order, which is what the sorted UIDs give. */
	if (imap_search_save(prog))
		imap_search_saved_result(prog, sj->match_uids, sj->count,
					 &s->view->saved);
}

static void
write_threads(struct imap_session *s, struct sort_job *job)
{
	struct mp_buf out = {0};

	mp_buf_puts(&out, "* THREAD");
	if (job->threads.len > 0) {
		mp_buf_append(&out, " ", 1);
		mp_buf_append(&out, job->threads.data, job->threads.len);
	}
	mp_buf_puts(&out, "\r\n");
	imap_write(s, out.data, out.len);
	mp_buf_free(&out);
}

static void
sort_done(void *arg)
{
	struct sort_job *job = arg;
	struct imap_session *s = imap_search_job_finish(&job->sj);

	if (s == NULL)
		return;
	if (job->thread)
		write_threads(s, job);
	else
		write_sort(s, job);
	imap_cmd_ok(s);
	imap_search_job_free(&job->sj);
}

/* --- the commands ------------------------------------------------------------
 */

static struct sort_job *
job_new(void)
{
	struct sort_job *job = mp_xcalloc(1, sizeof(*job));

	imap_search_job_init(&job->sj);
	job->sj.destroy = sort_job_destroy;
	return job;
}

/* Parses the search criteria after the sort criteria or the algorithm
 * and starts the job; answers and frees it when they are refused. */
static enum mp_status
start(struct imap_session *s, struct sort_job *job, const struct imap_arg *args,
      size_t count, const struct imap_arg *ret_list)
{
	struct imap_search_context ctx;
	struct imap_search_error err = {0};
	enum imap_search_status st;

	imap_search_job_context(s, &ctx);
	st = imap_search_parse_criteria(args, count, ret_list, &ctx,
					&job->sj.prog, &err);
	if (st != IMAP_SEARCH_OK) {
		imap_search_job_free(&job->sj);
		if (st == IMAP_SEARCH_BAD)
			imap_cmd_bad(s, err.code, err.text);
		else
			imap_cmd_done(s, "NO", err.code, err.text);
		return MP_OK;
	}
	imap_search_job_submit(s, &job->sj, sort_work, sort_done);
	return MP_AGAIN;
}

static enum mp_status
cmd_sort(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_arg *args = cmd->args, *ret_list = NULL;
	size_t count = cmd->count;
	struct sort_job *job;
	const char *error;
	bool limit;

	/* ESORT (RFC 5267 3): "SORT RETURN (...) (criteria) charset ..." */
	if (count > 0 && imap_arg_atom_equals(&args[0], "RETURN")) {
		if (count < 2) {
			imap_cmd_bad(s, NULL, "RETURN needs a list of options");
			return MP_OK;
		}
		ret_list = &args[1];
		args += 2;
		count -= 2;
	}
	if (count == 0) {
		imap_cmd_bad(s, NULL, "Missing sort criteria");
		return MP_OK;
	}
	job = job_new();
	if (!imap_sort_parse(&args[0], &job->sort, &error, &limit)) {
		imap_search_job_free(&job->sj);
		imap_cmd_bad(s, limit ? "LIMIT" : NULL, error);
		return MP_OK;
	}
	job->sort_set = imap_sort_set_new(&job->sort);
	job->sj.on_match = sort_match;
	return start(s, job, args + 1, count - 1, ret_list);
}

static enum mp_status
cmd_thread(struct imap_session *s, const struct imap_command *cmd)
{
	enum imap_thread_alg alg;
	struct sort_job *job;

	if (cmd->count == 0) {
		imap_cmd_bad(s, NULL, "Missing threading algorithm");
		return MP_OK;
	}
	if (!imap_thread_alg_parse(&cmd->args[0], &alg)) {
		imap_cmd_bad(s, NULL, "Unknown threading algorithm");
		return MP_OK;
	}
	job = job_new();
	job->thread = true;
	job->alg = alg;
	job->thread_set = imap_thread_set_new(alg);
	job->sj.on_match = thread_match;
	return start(s, job, cmd->args + 1, cmd->count - 1, NULL);
}

const struct imap_cmd_def imap_sort_cmds[] = {
	/* RFC 5256 3: no EXPUNGE while answering the sequence-number
	 * forms, as for SEARCH. */
	{"SORT", IMAP_S_SELECTED, IMAP_CMD_UID | IMAP_CMD_NO_EXPUNGE, cmd_sort},
	{"THREAD", IMAP_S_SELECTED, IMAP_CMD_UID | IMAP_CMD_NO_EXPUNGE,
	 cmd_thread},
	{NULL, 0, 0, NULL},
};
