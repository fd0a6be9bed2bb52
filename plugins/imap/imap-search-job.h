/* imap-search-job.h - matching the selected mailbox against a search
 * program on the thread pool: the part SEARCH, SORT and THREAD share
 * (imap-cmd-search.c).
 *
 * On the loop the command parses its program under the context
 * imap_search_job_context() gives, then imap_search_job_submit() lends
 * the view's mailbox to the job with a copy of its sequence map. On the
 * pool, its work function calls imap_search_job_run(), which matches
 * every message the client knows of, in sequence order, and keeps the
 * matches; on_match, when set, sees each one while its content can still
 * be read. Back on the loop, imap_search_job_finish() gives the mailbox
 * back and answers a failure; the command writes its result.
 *
 * A command's own job struct starts with struct imap_search_job, as this
 * one starts with struct imap_job. */
#ifndef IMAP_SEARCH_JOB_H
#define IMAP_SEARCH_JOB_H

#include <moonpost/mailstore.h>
#include <moonpost/mime.h>

#include "imap-private.h"
#include "imap-search.h"

struct imap_search_job;

/* Called on the pool for the match just kept at index i of the results
 * (nums[i], match_uids[i], modseqs[i]); m is its index row. False stops
 * the search as a failure, with job->error set. */
typedef bool imap_search_job_match_fn(struct imap_search_job *job,
				      const struct ms_msg *m, size_t i);

struct imap_search_job {
	struct imap_job head;
	struct ms_mailbox *mb;
	struct imap_search_program *prog;
	bool uid; /* UID SEARCH, UID SORT, UID THREAD */
	/* The view's sequence map when the command started. */
	uint32_t *uids;
	size_t n;
	uint32_t first_recent;
	/* The message being matched: its content, read when asked for. */
	uint32_t cur_uid;
	struct mp_mime_message *mime;
	struct ms_msg_list mime_meta;
	int fd;
	struct ms_error cur_err;
	/* Results, in sequence order: sequence numbers (UIDs for the UID
	 * forms), UIDs and MODSEQs of the matches. */
	uint32_t *nums;
	uint32_t *match_uids;
	uint64_t *modseqs;
	size_t count;
	enum ms_result result;
	bool match_error;
	char error[200];
	/* Set by the command before submitting; may be NULL. */
	imap_search_job_match_fn *on_match;
	/* Frees what the command's own struct holds (not the struct). */
	void (*destroy)(struct imap_search_job *job);
};

/* Fills ctx for parsing a program against the selected mailbox of s. */
void imap_search_job_context(struct imap_session *s,
			     struct imap_search_context *ctx);
/* Sets up a zeroed job (the command's struct, allocated by it). */
void imap_search_job_init(struct imap_search_job *job);
/* Starts job (its prog parsed) on the pool: enables CONDSTORE when the
 * program used MODSEQ, copies the view, lends its mailbox. work calls
 * imap_search_job_run(); done runs on the loop. The command returns
 * MP_AGAIN after this. */
void imap_search_job_submit(struct imap_session *s, struct imap_search_job *job,
			    void (*work)(void *), void (*done)(void *));
/* On the pool: matches the messages, filling the results. */
void imap_search_job_run(struct imap_search_job *job);
/* For on_match: the MIME structure of the message being matched (read
 * once from the index), or NULL with *error_r. */
const struct mp_mime_message *imap_search_job_mime(struct imap_search_job *job,
						   const char **error_r);
/* For on_match: reads the stored file of the message being matched, as
 * imap_section_read_fn does. */
ssize_t imap_search_job_read(void *ctx, uint64_t offset, void *buf, size_t len,
			     const char **error_r);
/* On the loop, first thing in done: gives the mailbox back. Returns the
 * session when the command is to write its result and answer; otherwise
 * the search failed (it answered NO or BYE, emptied "$" for a SAVE) or
 * the session is gone, and the job was freed. */
struct imap_session *imap_search_job_finish(struct imap_search_job *job);
/* Frees the job (destroy first), whatever it started as. */
void imap_search_job_free(struct imap_search_job *job);

#endif
