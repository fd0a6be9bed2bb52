/* imap-mailbox.c - CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS
 * and the QUOTA commands (RFC 9208).
 *
 * The writes run on the thread pool (mailstore.h "Writes"); STATUS and
 * the quota commands are index reads and answer on the loop.
 *
 * The selected mailbox, as Dovecot does it (cmd-delete.c, cmd-rename.c):
 * DELETE of it by this session closes it, the session is back in the
 * authenticated state (a deletion by another session is found by the next
 * sync, which says BYE); RENAME keeps it selected under its new name (the
 * view holds the mailbox, not its name; UIDVALIDITY stays). Renaming INBOX
 * moves its messages out (RFC 3501 6.3.5): a session that has INBOX
 * selected hears of them as expunges. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moonpost/log.h>
#include <moonpost/mailstore.h>
#include <moonpost/pool.h>
#include <moonpost/server.h>

#include "imap-fetch-format.h"
#include "imap-mbox.h"
#include "imap-mutf7.h"
#include "imap-private.h"

/* Quota usage is counted in units of 1024 octets (RFC 9208 5.1). */
#define QUOTA_UNIT 1024

/* --- shared helpers ------------------------------------------------------ */

void
imap_mbox_write_name(struct mp_buf *out, const char *name, unsigned enabled)
{
	struct mp_buf wire = {0};
	const char *error = NULL;
	size_t len = strlen(name);

	if (enabled & (IMAP_EN_UTF8 | IMAP_EN_REV2)) {
		/* RFC 6855 3 / RFC 9051: names go as UTF-8. */
		imap_fetch_format_string(out, name, len, IMAP_FORMAT_UTF8);
		return;
	}
	if (!imap_utf8_to_mutf7(name, len, &wire, &error)) {
		/* The mailstore only keeps valid UTF-8; should one slip
		 * through, the client still gets the bytes, as a literal. */
		imap_fetch_format_string(out, name, len, 0);
		return;
	}
	imap_fetch_format_string(out, wire.data, wire.len, 0);
	mp_buf_free(&wire);
}

static const struct {
	const char *name;
	unsigned item;
} status_names[] = {
	{"MESSAGES", IMAP_ST_MESSAGES},
	{"UIDNEXT", IMAP_ST_UIDNEXT},
	{"UIDVALIDITY", IMAP_ST_UIDVALIDITY},
	{"UNSEEN", IMAP_ST_UNSEEN},
	{"DELETED", IMAP_ST_DELETED},
	{"SIZE", IMAP_ST_SIZE},
	{"RECENT", IMAP_ST_RECENT},
	{"HIGHESTMODSEQ", IMAP_ST_HIGHESTMODSEQ},
	{"APPENDLIMIT", IMAP_ST_APPENDLIMIT},
};

bool
imap_status_items_parse(const struct imap_arg *arg, unsigned *items_r)
{
	const struct imap_arg *v;
	size_t n, k;

	if (!imap_arg_get_list(arg, &v, &n) || n == 0)
		return false;
	*items_r = 0;
	for (size_t i = 0; i < n; i++) {
		for (k = 0; k < MP_NELEMS(status_names); k++)
			if (imap_arg_atom_equals(&v[i], status_names[k].name))
				break;
		if (k == MP_NELEMS(status_names))
			return false;
		*items_r |= status_names[k].item;
	}
	return true;
}

static uint64_t
status_value(const struct ms_status *st, unsigned item)
{
	switch (item) {
	case IMAP_ST_MESSAGES:
		return st->messages;
	case IMAP_ST_UIDNEXT:
		return st->uidnext;
	case IMAP_ST_UIDVALIDITY:
		return st->uidvalidity;
	case IMAP_ST_UNSEEN:
		return st->unseen;
	case IMAP_ST_DELETED:
		return st->deleted;
	case IMAP_ST_SIZE:
		return st->size;
	case IMAP_ST_RECENT:
		return st->recent;
	default:
		return st->highestmodseq;
	}
}

void
imap_status_write(struct mp_buf *out, const char *name, unsigned enabled,
		  unsigned items, const struct ms_status *st,
		  int64_t append_limit)
{
	bool first = true;

	mp_buf_puts(out, "* STATUS ");
	imap_mbox_write_name(out, name, enabled);
	mp_buf_puts(out, " (");
	for (size_t k = 0; k < MP_NELEMS(status_names); k++) {
		unsigned item = status_names[k].item;

		if (!(items & item))
			continue;
		mp_buf_printf(out, "%s%s ", first ? "" : " ",
			      status_names[k].name);
		first = false;
		/* RFC 7889 3: NIL when there is no limit. */
		if (item == IMAP_ST_APPENDLIMIT && append_limit <= 0)
			mp_buf_puts(out, "NIL");
		else if (item == IMAP_ST_APPENDLIMIT)
			mp_buf_printf(out, "%" PRId64, append_limit);
		else
			mp_buf_printf(out, "%" PRIu64, status_value(st, item));
	}
	mp_buf_puts(out, ")\r\n");
}

const char *
imap_ms_code(enum ms_result r)
{
	switch (r) {
	case MS_ERR_NOT_FOUND:
		return "NONEXISTENT";
	case MS_ERR_EXISTS:
		return "ALREADYEXISTS";
	case MS_ERR_BAD_NAME:
	case MS_ERR_NOT_ALLOWED:
		return "CANNOT";
	case MS_ERR_OVER_QUOTA:
		return "OVERQUOTA";
	case MS_ERR_LIMIT:
		return "LIMIT";
	default:
		/* I/O errors and lock timeouts: the client may retry. */
		return "UNAVAILABLE";
	}
}

/* A failed mailstore call as the tagged NO; logs what the client cannot
 * have caused. */
static void
reply_error(struct imap_session *s, enum ms_result r, const char *what,
	    const struct ms_error *err)
{
	char text[256];

	if (r == MS_ERR_TEMP)
		mp_conn_log(s->conn, MP_LOG_WARN,
			    "event=imap_mailbox_failed command=%s error=%s",
			    what, mp_q(err->text));
	snprintf(text, sizeof(text), "%s failed: %s", what,
		 r == MS_ERR_TEMP ? "try again later" : err->text);
	imap_cmd_done(s, "NO", imap_ms_code(r), text);
}

/* --- the writes ---------------------------------------------------------- */

enum mbox_op {
	OP_CREATE,
	OP_DELETE,
	OP_RENAME,
	OP_SUBSCRIBE,
	OP_UNSUBSCRIBE,
};

struct mbox_job {
	struct imap_job head;
	struct ms_user *user;
	enum mbox_op op;
	char *name;
	char *to; /* RENAME */
	unsigned special_use;
	enum ms_result result;
	struct ms_error err;
};

static void
mbox_job_free(struct mbox_job *job)
{
	ms_user_unref(&job->user);
	free(job->name);
	free(job->to);
	free(job);
}

static void
mbox_work(void *arg)
{
	struct mbox_job *job = arg;

	switch (job->op) {
	case OP_CREATE:
		job->result = ms_mailbox_create(job->user, job->name,
						job->special_use, &job->err);
		break;
	case OP_DELETE:
		job->result =
			ms_mailbox_delete(job->user, job->name, &job->err);
		break;
	case OP_RENAME:
		job->result = ms_mailbox_rename(job->user, job->name, job->to,
						&job->err);
		break;
	case OP_SUBSCRIBE:
	case OP_UNSUBSCRIBE:
		job->result = ms_mailbox_subscribe(job->user, job->name,
						   job->op == OP_SUBSCRIBE,
						   &job->err);
		break;
	}
}

/* The selected mailbox after a DELETE or RENAME of this session. */
static void
mbox_update_view(struct imap_session *s, const struct mbox_job *job)
{
	struct imap_view *v = s->view;
	size_t n = strlen(job->name);
	char *name;

	if (v == NULL)
		return;
	if (job->op == OP_DELETE && strcmp(v->name, job->name) == 0) {
		imap_view_close(s);
		return;
	}
	/* INBOX stays where it is when renamed; its children do not
	 * move with it (RFC 3501 6.3.5). */
	if (job->op != OP_RENAME || strcmp(job->name, "INBOX") == 0 ||
	    strncmp(v->name, job->name, n) != 0 ||
	    (v->name[n] != '\0' && v->name[n] != '/'))
		return;
	name = mp_xasprintf("%s%s", job->to, v->name + n);
	free(v->name);
	v->name = name;
}

static void
mbox_done(void *arg)
{
	struct mbox_job *job = arg;
	struct imap_session *s = job->head.s;
	static const char *const names[] = {"CREATE", "DELETE", "RENAME",
					    "SUBSCRIBE", "UNSUBSCRIBE"};

	if (s == NULL) {
		mbox_job_free(job);
		return;
	}
	s->job = NULL;
	if (job->result == MS_OK) {
		mbox_update_view(s, job);
		if (job->op == OP_CREATE)
			imap_event_mailbox(s, "create", job->name, NULL);
		else if (job->op == OP_DELETE)
			imap_event_mailbox(s, "delete", job->name, NULL);
		else if (job->op == OP_RENAME)
			imap_event_mailbox(s, "rename", job->name, job->to);
		imap_cmd_ok(s);
	} else {
		reply_error(s, job->result, names[job->op], &job->err);
	}
	mbox_job_free(job);
}

static enum mp_status
mbox_submit(struct imap_session *s, enum mbox_op op, char *name, char *to,
	    unsigned special_use)
{
	struct mbox_job *job = mp_xcalloc(1, sizeof(*job));

	job->head.s = s;
	job->user = ms_user_ref(s->user);
	job->op = op;
	job->name = name;
	job->to = to;
	job->special_use = special_use;
	s->job = &job->head;
	mp_pool_submit(mp_server_pool(s->server), mbox_work, mbox_done, job);
	return MP_AGAIN;
}

/* RFC 6154 5.2: CREATE name (USE (\Sent ...)). False after a reply. */
static bool
create_params(struct imap_session *s, const struct imap_arg *arg,
	      unsigned *use_r)
{
	static const struct {
		const char *name;
		unsigned bit;
	} uses[] = {
		{"\\All", MS_SPECIAL_ALL},
		{"\\Archive", MS_SPECIAL_ARCHIVE},
		{"\\Drafts", MS_SPECIAL_DRAFTS},
		{"\\Flagged", MS_SPECIAL_FLAGGED},
		{"\\Junk", MS_SPECIAL_JUNK},
		{"\\Sent", MS_SPECIAL_SENT},
		{"\\Trash", MS_SPECIAL_TRASH},
	};
	const struct imap_arg *p, *u;
	size_t np, nu, k;

	if (!imap_arg_get_list(arg, &p, &np) || np != 2 ||
	    !imap_arg_atom_equals(&p[0], "USE") ||
	    !imap_arg_get_list(&p[1], &u, &nu)) {
		imap_cmd_bad(s, NULL, "Invalid CREATE parameters");
		return false;
	}
	for (size_t i = 0; i < nu; i++) {
		for (k = 0; k < MP_NELEMS(uses); k++)
			if (imap_arg_atom_equals(&u[i], uses[k].name))
				break;
		if (k == MP_NELEMS(uses)) {
			/* RFC 6154 5.3 */
			imap_cmd_done(s, "NO", "USEATTR",
				      "Unsupported special-use attribute");
			return false;
		}
		*use_r |= uses[k].bit;
	}
	return true;
}

static enum mp_status
cmd_create(struct imap_session *s, const struct imap_command *cmd)
{
	unsigned use = 0;
	char *name;
	size_t len;

	if (cmd->count < 1 || cmd->count > 2) {
		imap_cmd_bad(s, NULL, "CREATE needs a mailbox name");
		return MP_OK;
	}
	if (cmd->count == 2 && !create_params(s, &cmd->args[1], &use))
		return MP_OK;
	if (!imap_mailbox_arg(s, &cmd->args[0], &name))
		return MP_OK;
	/* RFC 3501 6.3.3: a trailing separator declares that names will
	 * be created under this one; the mailbox is the name without it. */
	len = strlen(name);
	if (len > 1 && name[len - 1] == '/')
		name[len - 1] = '\0';
	return mbox_submit(s, OP_CREATE, name, NULL, use);
}

static enum mp_status
cmd_delete(struct imap_session *s, const struct imap_command *cmd)
{
	char *name;

	if (cmd->count != 1) {
		imap_cmd_bad(s, NULL, "DELETE needs a mailbox name");
		return MP_OK;
	}
	if (!imap_mailbox_arg(s, &cmd->args[0], &name))
		return MP_OK;
	return mbox_submit(s, OP_DELETE, name, NULL, 0);
}

static enum mp_status
cmd_rename(struct imap_session *s, const struct imap_command *cmd)
{
	char *from, *to;

	if (cmd->count != 2) {
		imap_cmd_bad(s, NULL, "RENAME needs two mailbox names");
		return MP_OK;
	}
	if (!imap_mailbox_arg(s, &cmd->args[0], &from))
		return MP_OK;
	if (!imap_mailbox_arg(s, &cmd->args[1], &to)) {
		free(from);
		return MP_OK;
	}
	return mbox_submit(s, OP_RENAME, from, to, 0);
}

/* Subscriptions need not name a mailbox, so nothing else bounds them. */
static bool
subscriptions_full(struct imap_session *s, const char *name)
{
	struct mp_strlist subs = {0};
	struct ms_error err;
	bool full;

	if (ms_subscriptions(s->user, &subs, &err) != MS_OK)
		return false; /* the write will say what is wrong */
	full = subs.n >= MS_MAILBOXES_MAX && !mp_strlist_contains(&subs, name);
	mp_strlist_free(&subs);
	return full;
}

static enum mp_status
cmd_subscribe(struct imap_session *s, const struct imap_command *cmd)
{
	bool sub = strcmp(cmd->verb, "SUBSCRIBE") == 0;
	char *name;

	if (cmd->count != 1) {
		imap_cmd_bad(s, NULL, "Mailbox name expected");
		return MP_OK;
	}
	if (!imap_mailbox_arg(s, &cmd->args[0], &name))
		return MP_OK;
	if (sub && subscriptions_full(s, name)) {
		free(name);
		imap_cmd_done(s, "NO", "LIMIT", "Too many subscriptions");
		return MP_OK;
	}
	return mbox_submit(s, sub ? OP_SUBSCRIBE : OP_UNSUBSCRIBE, name, NULL,
			   0);
}

/* --- STATUS ------------------------------------------------------------- */

static enum mp_status
cmd_status(struct imap_session *s, const struct imap_command *cmd)
{
	struct mp_buf out = {0};
	struct ms_status st;
	struct ms_error err;
	unsigned items;
	enum ms_result r;
	char *name;

	if (cmd->count != 2 ||
	    !imap_status_items_parse(&cmd->args[1], &items)) {
		imap_cmd_bad(s, NULL, "STATUS needs a mailbox and items");
		return MP_OK;
	}
	if (!imap_mailbox_arg(s, &cmd->args[0], &name))
		return MP_OK;
	/* RFC 7162 3.1: asking for HIGHESTMODSEQ enables CONDSTORE. */
	if (items & IMAP_ST_HIGHESTMODSEQ)
		s->enabled |= IMAP_EN_CONDSTORE;
	/* A read of the index, also for the selected mailbox: its counters
	 * are the mailstore's now, not what the view has reported. */
	r = ms_mailbox_status(s->user, name, &st, &err);
	if (r != MS_OK) {
		free(name);
		reply_error(s, r, "STATUS", &err);
		return MP_OK;
	}
	imap_status_write(&out, name, s->enabled, items, &st,
			  s->cfg->append_limit);
	imap_write(s, out.data, out.len);
	mp_buf_free(&out);
	free(name);
	imap_cmd_ok(s);
	return MP_OK;
}

/* --- QUOTA (RFC 9208) --------------------------------------------------- */

/* "* QUOTA "" (STORAGE 10 512 MESSAGE 3 1000)": the one root, "", covers
 * the account; only resources with a limit are listed. */
static bool
write_quota(struct imap_session *s, struct mp_buf *out)
{
	struct ms_quota q;
	struct ms_error err;
	enum ms_result r = ms_quota_get(s->user, &q, &err);
	const char *sep = "";

	if (r != MS_OK) {
		reply_error(s, r, "GETQUOTA", &err);
		return false;
	}
	mp_buf_puts(out, "* QUOTA \"\" (");
	if (q.limit_bytes > 0) {
		mp_buf_printf(out, "STORAGE %" PRIu64 " %" PRIu64,
			      q.bytes / QUOTA_UNIT, q.limit_bytes / QUOTA_UNIT);
		sep = " ";
	}
	if (q.limit_messages > 0)
		mp_buf_printf(out, "%sMESSAGE %" PRIu64 " %" PRIu64, sep,
			      q.messages, q.limit_messages);
	mp_buf_puts(out, ")\r\n");
	return true;
}

static enum mp_status
cmd_getquota(struct imap_session *s, const struct imap_command *cmd)
{
	struct mp_buf out = {0};
	struct mp_str root;

	if (cmd->count != 1 || !imap_arg_get_astring(&cmd->args[0], &root)) {
		imap_cmd_bad(s, NULL, "GETQUOTA needs a quota root");
		return MP_OK;
	}
	if (root.len != 0) {
		imap_cmd_done(s, "NO", "NONEXISTENT", "No such quota root");
		return MP_OK;
	}
	if (write_quota(s, &out)) {
		imap_write(s, out.data, out.len);
		imap_cmd_ok(s);
	}
	mp_buf_free(&out);
	return MP_OK;
}

static enum mp_status
cmd_getquotaroot(struct imap_session *s, const struct imap_command *cmd)
{
	struct mp_buf out = {0};
	struct ms_status st;
	struct ms_error err;
	enum ms_result r;
	char *name;

	if (cmd->count != 1) {
		imap_cmd_bad(s, NULL, "GETQUOTAROOT needs a mailbox name");
		return MP_OK;
	}
	if (!imap_mailbox_arg(s, &cmd->args[0], &name))
		return MP_OK;
	r = ms_mailbox_status(s->user, name, &st, &err);
	if (r != MS_OK) {
		reply_error(s, r, "GETQUOTAROOT", &err);
		free(name);
		return MP_OK;
	}
	mp_buf_puts(&out, "* QUOTAROOT ");
	imap_mbox_write_name(&out, name, s->enabled);
	mp_buf_puts(&out, " \"\"\r\n");
	free(name);
	if (write_quota(s, &out)) {
		imap_write(s, out.data, out.len);
		imap_cmd_ok(s);
	}
	mp_buf_free(&out);
	return MP_OK;
}

static enum mp_status
cmd_setquota(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->count != 2) {
		imap_cmd_bad(s, NULL, "SETQUOTA needs a root and limits");
		return MP_OK;
	}
	/* Limits come from the configuration (docs/config.md, quota). */
	imap_cmd_done(s, "NO", "CANNOT", "Quota is set by the administrator");
	return MP_OK;
}

const struct imap_cmd_def imap_mailbox_cmds[] = {
	{"CREATE", IMAP_S_LOGIN, 0, cmd_create},
	{"DELETE", IMAP_S_LOGIN, 0, cmd_delete},
	{"RENAME", IMAP_S_LOGIN, 0, cmd_rename},
	{"SUBSCRIBE", IMAP_S_LOGIN, 0, cmd_subscribe},
	{"UNSUBSCRIBE", IMAP_S_LOGIN, 0, cmd_subscribe},
	{"STATUS", IMAP_S_LOGIN, 0, cmd_status},
	{"GETQUOTA", IMAP_S_LOGIN, 0, cmd_getquota},
	{"GETQUOTAROOT", IMAP_S_LOGIN, 0, cmd_getquotaroot},
	{"SETQUOTA", IMAP_S_LOGIN, 0, cmd_setquota},
	{NULL, 0, 0, NULL},
};
