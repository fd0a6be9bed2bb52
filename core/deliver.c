/* deliver.c - local delivery of one message to one envelope recipient.
 *
 * For each account the recipient resolves to: the Lua `deliver` handlers
 * run (in a coroutine, maybe waiting), then the append runs on the thread
 * pool, then the next account. The result gathers them: one temporary
 * failure defers the whole recipient (the sender retries; an account that
 * already has its copy may get a second, which is better than none). */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <moonpost/log.h>
#include <moonpost/lua.h>
#include <moonpost/mime.h>
#include <moonpost/pool.h>
#include <moonpost/recipient.h>

#include "deliver-private.h"

struct mp_delivery {
	struct mp_deliver_env env;
	struct mp_lua *lua; /* referenced: a reload must not free it under us */
	int fd;
	uint64_t size;
	char *sender;
	char *recipient;
	char *session_id;
	mp_deliver_done_fn *done;
	void *ctx;

	struct mp_recipient rcpt;
	size_t next;  /* account being delivered to */
	char *prefix; /* the receiver's header lines */
	char *header; /* prefix + the message's header block */
	size_t header_len;
	size_t file_header_len; /* the part of header that is in the file */
	bool header_complete;

	struct mp_deliver_actions actions;
	struct mp_deliver_view view;
	uint64_t message_id; /* the Lua object, while a call runs */
	struct mp_lua_call *call;
	struct mp_deliver_append *job; /* on the pool */

	struct mp_deliver_result tempfail, reject;
	size_t delivered, rejected, deferred;
	bool starting;  /* inside mp_deliver() */
	bool finished;  /* done has been called */
	bool cancelled; /* free when the pool job returns */
};

static void run_account(struct mp_delivery *d);

const char *
mp_deliver_status_name(enum mp_deliver_status status)
{
	static const char *const names[] = {"delivered", "unknown", "rejected",
					    "tempfail"};

	return (size_t)status < MP_NELEMS(names) ? names[status] : "?";
}

static void
result_set(struct mp_deliver_result *r, enum mp_deliver_status status, int code,
	   const char *enhanced, const char *text)
{
	r->status = status;
	r->code = code;
	snprintf(r->enhanced, sizeof(r->enhanced), "%s", enhanced);
	snprintf(r->text, sizeof(r->text), "%s", text);
}

static void
delivery_free(struct mp_delivery *d)
{
	mp_recipient_clear(&d->rcpt);
	mp_deliver_actions_clear(&d->actions);
	mp_lua_unref(&d->lua);
	if (d->fd >= 0)
		close(d->fd);
	free(d->header);
	free(d->prefix);
	free(d->sender);
	free(d->recipient);
	free(d->session_id);
	free(d);
}

static const char *
account(const struct mp_delivery *d)
{
	return d->rcpt.local.v[d->next];
}

static void
log_account(struct mp_delivery *d, const char *result, const char *detail)
{
	mp_log(MP_LOG_INFO,
	       "session=%s event=deliver from=%s to=%s user=%s result=%s%s%s",
	       d->session_id != NULL ? d->session_id : "-",
	       mp_q(d->sender[0] != '\0' ? d->sender : "<>"),
	       mp_q(d->recipient), mp_q(account(d)), result,
	       detail != NULL ? " detail=" : "",
	       detail != NULL ? mp_q(detail) : "");
}

/* Records the outcome for the current account and moves to the next. */
static void
account_done(struct mp_delivery *d, const struct mp_deliver_result *r,
	     const char *detail)
{
	switch (r->status) {
	case MP_DELIVERED:
		d->delivered++;
		break;
	case MP_DELIVER_REJECT:
	case MP_DELIVER_UNKNOWN:
		if (d->rejected++ == 0)
			d->reject = *r;
		break;
	case MP_DELIVER_TEMPFAIL:
		if (d->deferred++ == 0)
			d->tempfail = *r;
		break;
	}
	log_account(d, mp_deliver_status_name(r->status),
		    detail != NULL ? detail : r->text);
	mp_deliver_actions_clear(&d->actions);
	d->next++;
	run_account(d);
}

static void
finish(struct mp_delivery *d)
{
	struct mp_deliver_result r;

	if (d->deferred > 0)
		r = d->tempfail;
	else if (d->delivered == 0 && d->rejected > 0)
		r = d->reject;
	else
		result_set(&r, MP_DELIVERED, 250, "2.0.0", "delivered");
	mp_log(MP_LOG_INFO,
	       "session=%s event=delivery from=%s to=%s result=%s code=%d "
	       "enhanced=%s accounts=%zu",
	       d->session_id != NULL ? d->session_id : "-",
	       mp_q(d->sender[0] != '\0' ? d->sender : "<>"),
	       mp_q(d->recipient), mp_deliver_status_name(r.status), r.code,
	       r.enhanced, d->rcpt.local.n);
	d->finished = true;
	d->done(&r, d->ctx);
	if (!d->starting)
		delivery_free(d);
}

/* Length of the header block at the start of buf: up to and including the
 * line end before the empty line (CRLF or LF), or len when there is
 * none; *complete_r tells whether the empty line was found. */
static size_t
header_block_len(const char *buf, size_t len, bool *complete_r)
{
	for (size_t i = 0; i < len; i++) {
		size_t j = i + 1;

		if (buf[i] != '\n')
			continue;
		if (j < len && buf[j] == '\r')
			j++;
		if (j < len && buf[j] == '\n') {
			*complete_r = true;
			return i + 1;
		}
	}
	return len;
}

/* Reads the header block: what rules see and what loop checks scan, the
 * receiver's own lines (the prefix) first. */
static void
read_header(struct mp_delivery *d, const char *prefix)
{
	size_t plen = prefix != NULL ? strlen(prefix) : 0;
	size_t want = d->size < MP_DELIVER_HEADER_MAX ? (size_t)d->size
						      : MP_DELIVER_HEADER_MAX;
	ssize_t n;

	d->header = mp_xmalloc(plen + want + 1);
	memcpy(d->header, prefix != NULL ? prefix : "", plen);
	n = pread(d->fd, d->header + plen, want, 0);
	d->header_complete = d->size <= MP_DELIVER_HEADER_MAX;
	d->file_header_len = header_block_len(
		d->header + plen, n > 0 ? (size_t)n : 0, &d->header_complete);
	d->header_len = plen + d->file_header_len;
	d->header[d->header_len] = '\0';
	d->prefix = mp_xstrndup(d->header, plen);
}

/* A copy that already passed through this account: a forwarding loop. */
static bool
is_loop(const struct mp_delivery *d, const char *acct)
{
	struct mp_mime_header_iter it;
	struct mp_str name, value;
	bool loop = false;

	mp_mime_header_iter_init(&it, d->header, d->header_len);
	while (!loop && mp_mime_header_iter_next(&it, &name, &value)) {
		loop = name.len == 12 &&
		       strncasecmp(name.p, "Delivered-To", 12) == 0 &&
		       value.len == strlen(acct) &&
		       strncasecmp(value.p, acct, value.len) == 0;
	}
	mp_mime_header_iter_deinit(&it);
	return loop;
}

static void
append_work(void *arg)
{
	mp_deliver_append_run(((struct mp_delivery *)arg)->job);
}

static void
append_done(void *arg)
{
	struct mp_delivery *d = arg;
	struct mp_deliver_append *job = d->job;
	struct mp_deliver_result r = job->result;
	char *stored = NULL;
	struct mp_buf list = {0};

	d->job = NULL;
	/* Committed, whether or not the delivery is still wanted. */
	mp_deliver_notify(d->lua,
			  &(struct mp_deliver_notify){d->session_id, d->sender,
						      d->header, d->header_len},
			  job);
	mp_deliver_copies_free(job);
	for (size_t i = 0; i < job->stored.n; i++)
		mp_buf_printf(&list, "%s%s", i > 0 ? "," : "",
			      job->stored.v[i]);
	stored = mp_buf_steal(&list);
	mp_buf_free(&job->prefix);
	mp_strlist_free(&job->stored);
	free(job->account);
	free(job);
	if (d->cancelled) {
		free(stored);
		delivery_free(d);
		return;
	}
	account_done(d, &r,
		     r.status == MP_DELIVERED && stored[0] != '\0' ? stored
		     : r.status == MP_DELIVERED                    ? "discarded"
								   : NULL);
	free(stored);
}

static void
start_append(struct mp_delivery *d)
{
	struct mp_deliver_append *job = mp_xcalloc(1, sizeof(*job));

	job->store = d->env.store;
	job->account = mp_xstrdup(account(d));
	job->fd = d->fd;
	job->size = d->size;
	job->header_len = d->file_header_len;
	job->header_complete = d->header_complete;
	job->actions = &d->actions;
	mp_buf_printf(&job->prefix, "Return-Path: <%s>\r\nDelivered-To: %s\r\n",
		      d->sender, account(d));
	for (size_t i = 0; i < d->actions.add_headers.n; i++)
		mp_buf_printf(&job->prefix, "%s\r\n",
			      d->actions.add_headers.v[i]);
	mp_buf_puts(&job->prefix, d->prefix);
	d->job = job;
	mp_pool_submit(d->env.pool, append_work, append_done, d);
}

static void
after_rules(struct mp_delivery *d)
{
	struct mp_deliver_result r;

	if (d->actions.redirect.n > 0) {
		/* Until the outbound queue exists a redirect cannot be done
		 * safely; deferring keeps the message with the sender. */
		result_set(&r, MP_DELIVER_TEMPFAIL, 451, "4.3.0",
			   "redirect needs the outbound queue, which this "
			   "server does not have yet");
		account_done(d, &r, NULL);
		return;
	}
	start_append(d);
}

static int
hook_push(struct lua_State *L, void *ctx)
{
	struct mp_delivery *d = ctx;

	d->message_id = mp_lua_message_push(L, &d->view);
	return 1;
}

static void
hook_done(const struct mp_verdict *v, void *ctx)
{
	struct mp_delivery *d = ctx;
	struct mp_deliver_result r;
	char text[MP_VERDICT_TEXT_MAX];

	d->call = NULL;
	mp_lua_message_release(mp_lua_state(d->lua), d->message_id);
	switch (v->kind) {
	case MP_VERDICT_CONTINUE:
	case MP_VERDICT_ACCEPT:
		after_rules(d);
		return;
	case MP_VERDICT_REJECT:
		snprintf(text, sizeof(text), "%s",
			 v->text[0] != '\0' ? v->text : "rejected");
		result_set(&r, MP_DELIVER_REJECT, v->code != 0 ? v->code : 550,
			   v->enhanced[0] != '\0' ? v->enhanced : "5.7.1",
			   text);
		break;
	default: /* defer, disconnect, or the script failed */
		snprintf(text, sizeof(text), "%s",
			 v->text[0] != '\0' ? v->text
					    : "temporary local problem");
		result_set(&r, MP_DELIVER_TEMPFAIL,
			   v->kind == MP_VERDICT_DEFER && v->code != 0 ? v->code
								       : 451,
			   v->kind == MP_VERDICT_DEFER && v->enhanced[0] != '\0'
				   ? v->enhanced
				   : "4.3.0",
			   text);
		break;
	}
	account_done(d, &r, NULL);
}

static void
run_account(struct mp_delivery *d)
{
	struct mp_deliver_result r;

	if (d->next >= d->rcpt.local.n) {
		finish(d);
		return;
	}
	if (is_loop(d, account(d))) {
		result_set(&r, MP_DELIVER_REJECT, 554, "5.4.6",
			   "mail forwarding loop");
		account_done(d, &r, NULL);
		return;
	}
	d->view = (struct mp_deliver_view){
		.sender = d->sender,
		.recipient = account(d),
		.original_recipient = d->recipient,
		.detail = d->rcpt.detail,
		.size = d->size,
		.header = d->header,
		.header_len = d->header_len,
		.actions = &d->actions,
	};
	if (d->lua == NULL || !mp_lua_has_hook(d->lua, "deliver")) {
		after_rules(d);
		return;
	}
	d->call = mp_lua_call_hook(d->lua, "deliver", d->session_id, hook_push,
				   hook_done, d);
}

/* The recipient resolved to nothing deliverable here; the result is known
 * without any account. */
static bool
resolve(struct mp_delivery *d)
{
	struct mp_deliver_result *r = &d->tempfail;

	switch (mp_recipient_resolve(d->env.auth, d->recipient, &d->rcpt)) {
	case MP_RECIPIENT_OK:
		break;
	case MP_RECIPIENT_UNKNOWN:
		result_set(&d->reject, MP_DELIVER_UNKNOWN, 550, "5.1.1",
			   "no such user here");
		d->rejected = 1;
		return false;
	case MP_RECIPIENT_ERROR:
		result_set(r, MP_DELIVER_TEMPFAIL, 451, "4.3.0",
			   "alias configuration problem");
		mp_log(MP_LOG_ERROR,
		       "session=%s event=alias_error to=%s "
		       "error=%s",
		       d->session_id != NULL ? d->session_id : "-",
		       mp_q(d->recipient), mp_q(d->rcpt.error));
		d->deferred = 1;
		return false;
	}
	if (d->rcpt.external.n > 0) {
		/* A copy would have to leave through the outbound queue;
		 * without it, defer rather than deliver only part. */
		result_set(r, MP_DELIVER_TEMPFAIL, 451, "4.3.0",
			   "forwarding needs the outbound queue, which this "
			   "server does not have yet");
		d->deferred = 1;
		return false;
	}
	return true;
}

struct mp_delivery *
mp_deliver(const struct mp_deliver_env *env, const struct mp_deliver_msg *msg,
	   const char *recipient, mp_deliver_done_fn *done, void *ctx)
{
	struct mp_delivery *d = mp_xcalloc(1, sizeof(*d));

	d->env = *env;
	d->lua = env->lua != NULL ? mp_lua_ref(env->lua) : NULL;
	/* Our own descriptor: an append still running on the pool after a
	 * cancel must not read a number the caller has closed and reused. */
	d->fd = fcntl(msg->fd, F_DUPFD_CLOEXEC, 0);
	d->size = msg->size;
	d->sender = mp_xstrdup(msg->sender != NULL ? msg->sender : "");
	d->recipient = mp_xstrdup(recipient);
	d->session_id = mp_xstrdup(msg->session_id);
	d->done = done;
	d->ctx = ctx;
	d->starting = true;
	if (d->fd < 0) {
		result_set(&d->tempfail, MP_DELIVER_TEMPFAIL, 451, "4.3.0",
			   "out of file descriptors");
		d->deferred = 1;
		finish(d);
	} else {
		read_header(d, msg->prefix);
		if (resolve(d))
			run_account(d);
		else
			finish(d);
	}
	d->starting = false;
	if (d->finished) {
		delivery_free(d);
		return NULL;
	}
	return d;
}

void
mp_delivery_cancel(struct mp_delivery **dp)
{
	struct mp_delivery *d = *dp;

	*dp = NULL;
	if (d == NULL)
		return;
	if (d->call != NULL) {
		mp_lua_call_cancel(&d->call);
		mp_lua_message_release(mp_lua_state(d->lua), d->message_id);
	}
	if (d->job != NULL) {
		d->cancelled = true; /* freed when the append returns */
		return;
	}
	delivery_free(d);
}
