/* imap-append.c - APPEND (RFC 9051 6.3.12) with LITERAL+ (RFC 7888),
 * APPENDUID (RFC 4315 3), APPENDLIMIT (RFC 7889), the UTF8 form (RFC 6855
 * 4) and literal8 (RFC 3516 4.4).
 *
 * The message is not held in memory: once logged in, the parser hands the
 * message literal to the session (IMAP_LITERAL_STREAM), which calls
 * imap_append_literal() before the first byte and imap_append_data() for
 * each chunk. The first checks what can be checked from the size and the
 * mailbox (APPENDLIMIT, quota, the mailbox exists) before a "+" is sent,
 * and opens the file in tmp/; the chunks go to the page cache from the
 * loop, as SMTP's spool does. Flags and the date come after the literal,
 * so only the complete command (cmd_append) knows them; it sets them and
 * the commit (fsync, rename, index) runs on the thread pool. Anything that
 * ends the command otherwise (a BAD, the connection gone) aborts the file:
 * nothing half-written becomes visible.
 *
 * MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469) are not offered: a second
 * message literal or a CATENATE list is refused and nothing is saved. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <moonpost/log.h>
#include <moonpost/mailstore.h>
#include <moonpost/pool.h>
#include <moonpost/server.h>

#include "imap-private.h"

/* The message being streamed for the command being read. */
struct imap_append {
	struct ms_append *ma;
	bool binary; /* literal8: NUL allowed */
	bool nul;    /* a NUL in a literal that is no literal8 */
	bool failed; /* a write failed: err says why */
	struct ms_error err;
};

/* The commit on the thread pool. */
struct append_job {
	struct imap_job head;
	struct ms_append *ma;
	char *mailbox; /* for the log */
	uint64_t size;
	uint32_t uid, uidvalidity;
	uint32_t flags; /* for the mailbox.append hook */
	char *keywords;
	enum ms_result result;
	struct ms_error err;
};

/* What the complete command asks for. */
struct append_args {
	char *mailbox;
	uint32_t flags;
	struct mp_strlist keywords;
	int64_t date; /* 0: now */
	int tz_minutes;
	const struct imap_arg *msg; /* the literal (held or streamed) */
};

void
imap_append_abort(struct imap_session *s)
{
	if (s->append == NULL)
		return;
	ms_append_abort(&s->append->ma);
	MP_FREE(s->append);
}

/* --- refusing before the literal ---------------------------------------- */

/* Tells the parser the pending literal is refused (after the reply). The
 * client sends a non-synchronising one anyway: the session reads and drops
 * it, or closes when it is too big even for that (RFC 7888 4 leaves the
 * server no other way to find the next command). */
static void
drop_literal(struct imap_session *s)
{
	uint64_t drain = imap_parser_reject_literal(s->parser);

	if (drain > s->limits.drain_max && !s->quitting)
		imap_bye(s, "Literal too big to skip");
}

/* Replies with the literal's tag and refuses the literal. */
static void
refuse(struct imap_session *s, const struct imap_literal *lit,
       const char *status, const char *code, const char *text)
{
	imap_append_abort(s);
	free(s->req.tag);
	s->req.tag = mp_xstrndup(lit->tag.p, lit->tag.len);
	if (strcmp(status, "BAD") == 0)
		imap_cmd_bad(s, code, text);
	else
		imap_cmd_done(s, status, code, text);
	drop_literal(s);
}

/* RFC 7889 and the account's quota, from the size alone. True when it
 * fits; otherwise *code_r and *text_r say why. */
static bool
size_fits(struct imap_session *s, uint64_t size, const char **code_r,
	  const char **text_r)
{
	struct ms_quota q;
	struct ms_error err;

	if (s->cfg->append_limit > 0 && size > (uint64_t)s->cfg->append_limit) {
		*code_r = "TOOBIG";
		*text_r = "Message over APPENDLIMIT";
		return false;
	}
	/* The commit checks again, under the index's write lock: this only
	 * spares the client sending what cannot be kept. */
	if (ms_quota_get(s->user, &q, &err) != MS_OK)
		return true;
	if ((q.limit_bytes > 0 && q.bytes + size > q.limit_bytes) ||
	    (q.limit_messages > 0 && q.messages + 1 > q.limit_messages)) {
		*code_r = "OVERQUOTA";
		*text_r = "Quota exceeded";
		return false;
	}
	return true;
}

/* The response code and text of a NO for a mailstore error. A client
 * cannot cause the others (I/O, locks): logged, and [UNAVAILABLE]. */
static void
store_error(struct imap_session *s, enum ms_result r,
	    const struct ms_error *err, const char **code_r,
	    const char **text_r)
{
	switch (r) {
	case MS_ERR_NOT_FOUND:
		/* RFC 9051 6.3.12: the client may CREATE and retry. */
		*code_r = "TRYCREATE";
		*text_r = "Mailbox does not exist";
		return;
	case MS_ERR_OVER_QUOTA:
		*code_r = "OVERQUOTA";
		*text_r = "Quota exceeded";
		return;
	case MS_ERR_LIMIT:
		*code_r = "LIMIT";
		*text_r = "Too many keywords";
		return;
	case MS_ERR_BAD_NAME:
		*code_r = "CANNOT";
		*text_r = "Invalid keyword";
		return;
	default:
		break;
	}
	mp_conn_log(s->conn, MP_LOG_WARN, "event=imap_append_failed error=%s",
		    mp_q(err->text));
	*code_r = "UNAVAILABLE";
	*text_r = "Cannot save the message, try again later";
}

/* Decodes the mailbox of the pending APPEND; false after a reply. */
static bool
stream_mailbox(struct imap_session *s, const struct imap_literal *lit,
	       char **name_r)
{
	struct imap_arg arg = {.type = IMAP_ARG_QUOTED};

	if (!imap_parser_append_mailbox(s->parser, &arg.str)) {
		refuse(s, lit, "BAD", NULL, "Invalid mailbox name");
		return false;
	}
	/* imap_mailbox_arg() replies with the running tag itself. */
	free(s->req.tag);
	s->req.tag = mp_xstrndup(lit->tag.p, lit->tag.len);
	if (imap_mailbox_arg(s, &arg, name_r))
		return true;
	drop_literal(s);
	return false;
}

bool
imap_append_literal(struct imap_session *s, const struct imap_literal *lit)
{
	struct ms_error err;
	const char *code, *text;
	char *name;

	if (s->state == IMAP_S_NOT_AUTH) {
		/* The parser holds literals before LOGIN: refuse the
		 * command before a stranger makes us read any of it. */
		refuse(s, lit, "BAD", NULL, "Not logged in");
		return false;
	}
	if (lit->use != IMAP_LITERAL_STREAM)
		return true; /* the mailbox name as a literal */
	if (lit->index > 0) {
		refuse(s, lit, "BAD", NULL, "MULTIAPPEND is not supported");
		return false;
	}
	imap_append_abort(s);
	if (lit->size == 0) {
		refuse(s, lit, "NO", NULL, "Cannot save an empty message");
		return false;
	}
	if (!size_fits(s, lit->size, &code, &text)) {
		refuse(s, lit, "NO", code, text);
		return false;
	}
	if (!stream_mailbox(s, lit, &name))
		return false;
	s->append = mp_xcalloc(1, sizeof(*s->append));
	s->append->binary = lit->binary;
	s->append->ma = ms_append_begin(s->user, name, &err);
	free(name);
	if (s->append->ma == NULL) {
		store_error(s, err.code, &err, &code, &text);
		refuse(s, lit, "NO", code, text);
		return false;
	}
	return true;
}

void
imap_append_data(struct imap_session *s, const void *data, size_t len)
{
	struct imap_append *a = s->append;

	if (a == NULL || a->failed)
		return;
	/* RFC 3516 4.4: only a literal8 may hold NUL. */
	if (!a->binary && memchr(data, '\0', len) != NULL)
		a->nul = true;
	if (ms_append_write(a->ma, data, len, &a->err) != MS_OK)
		a->failed = true;
}

/* --- arguments --------------------------------------------------------- */

static void
args_free(struct append_args *aa)
{
	free(aa->mailbox);
	mp_strlist_free(&aa->keywords);
}

/* One flag of the list; false after a reply. */
static bool
parse_flag(struct imap_session *s, const struct imap_arg *arg,
	   struct append_args *aa)
{
	static const struct {
		const char *name;
		uint32_t flag;
	} sys[] = {
		{"\\Seen", MS_FLAG_SEEN},
		{"\\Answered", MS_FLAG_ANSWERED},
		{"\\Flagged", MS_FLAG_FLAGGED},
		{"\\Deleted", MS_FLAG_DELETED},
		{"\\Draft", MS_FLAG_DRAFT},
	};
	struct mp_str atom;
	char *word;

	if (arg->type != IMAP_ARG_ATOM || !imap_arg_get_atom(arg, &atom) ||
	    (arg->flags & (IMAP_ARG_WILDCARD | IMAP_ARG_RBRACKET))) {
		imap_cmd_bad(s, NULL, "Invalid flag");
		return false;
	}
	if (arg->flags & IMAP_ARG_BACKSLASH) {
		for (size_t i = 0; i < MP_NELEMS(sys); i++)
			if (imap_arg_atom_equals(arg, sys[i].name)) {
				aa->flags |= sys[i].flag;
				return true;
			}
		/* RFC 9051 2.3.2: \Recent is the server's to set. */
		imap_cmd_bad(s, NULL,
			     imap_arg_atom_equals(arg, "\\Recent")
				     ? "\\Recent cannot be set"
				     : "Invalid system flag");
		return false;
	}
	if (atom.len > MS_KEYWORD_MAX || aa->keywords.n >= MS_KEYWORDS_MAX) {
		imap_cmd_done(s, "NO", "LIMIT",
			      "Too many or too long keywords");
		return false;
	}
	word = mp_xstrndup(atom.p, atom.len);
	if (!mp_strlist_contains_icase(&aa->keywords, word))
		mp_strlist_add(&aa->keywords, word);
	free(word);
	return true;
}

static bool
parse_flags(struct imap_session *s, const struct imap_arg *arg,
	    struct append_args *aa)
{
	const struct imap_arg *v;
	size_t n;

	imap_arg_get_list(arg, &v, &n);
	for (size_t i = 0; i < n; i++)
		if (!parse_flag(s, &v[i], aa))
			return false;
	return true;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's
 * days_from_civil), so no time zone of the process gets in. */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int64_t)doe - 719468;
}

static bool
digits(const char *p, size_t n, unsigned *r)
{
	*r = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		*r = *r * 10 + (unsigned)(p[i] - '0');
	}
	return true;
}

static unsigned
month_days(unsigned y, unsigned m)
{
	static const unsigned days[] = {31, 28, 31, 30, 31, 30,
					31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/* date-time (RFC 9051 9): "dd-Mon-yyyy hh:mm:ss +zzzz", the day as two
 * digits or a space and one. Exactly that, nothing looser. */
static bool
parse_date_time(const char *p, size_t len, int64_t *t_r, int *tz_r)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	unsigned d, mon = 0, y, hh, mm, ss, zh, zm;
	int64_t days;
	int tz;

	if (len != 26 || p[2] != '-' || p[6] != '-' || p[11] != ' ' ||
	    p[14] != ':' || p[17] != ':' || p[20] != ' ' ||
	    (p[21] != '+' && p[21] != '-'))
		return false;
	if (!(p[0] == ' ' ? digits(p + 1, 1, &d) : digits(p, 2, &d)) ||
	    !digits(p + 7, 4, &y) || !digits(p + 12, 2, &hh) ||
	    !digits(p + 15, 2, &mm) || !digits(p + 18, 2, &ss) ||
	    !digits(p + 22, 2, &zh) || !digits(p + 24, 2, &zm))
		return false;
	for (unsigned i = 0; i < 12; i++)
		if (strncasecmp(p + 3, months + 3 * i, 3) == 0)
			mon = i + 1;
	/* Seconds up to 60 for a leap second; zones to +-23:59. */
	if (mon == 0 || d < 1 || d > month_days(y, mon) || hh > 23 || mm > 59 ||
	    ss > 60 || zh > 23 || zm > 59)
		return false;
	tz = (int)(zh * 60 + zm) * (p[21] == '-' ? -1 : 1);
	days = days_from_civil(y, mon, d);
	*t_r = days * 86400 + hh * 3600 + mm * 60 + ss - (int64_t)tz * 60;
	*tz_r = tz;
	return true;
}

static int
local_tz_minutes(void)
{
	time_t now = time(NULL);
	struct tm tm;

	if (localtime_r(&now, &tm) == NULL)
		return 0;
	return (int)(tm.tm_gmtoff / 60);
}

/* The message argument: a literal, or UTF8 (literal8) under UTF8=ACCEPT
 * (RFC 6855 4). NULL after a reply. */
static const struct imap_arg *
message_arg(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	const struct imap_arg *v;
	size_t vn;

	if (n == 1 && (args[0].type == IMAP_ARG_LITERAL ||
		       args[0].type == IMAP_ARG_LITERAL_STREAMED))
		return &args[0];
	if (n == 2 && imap_arg_atom_equals(&args[0], "UTF8") &&
	    imap_arg_get_list(&args[1], &v, &vn) && vn == 1 &&
	    (v[0].flags & IMAP_ARG_BINARY) &&
	    (v[0].type == IMAP_ARG_LITERAL ||
	     v[0].type == IMAP_ARG_LITERAL_STREAMED)) {
		if (!(s->enabled & IMAP_EN_UTF8)) {
			imap_cmd_bad(s, NULL, "UTF8=ACCEPT is not enabled");
			return NULL;
		}
		return &v[0];
	}
	imap_cmd_bad(s, NULL, "Invalid APPEND arguments");
	return NULL;
}

/* mailbox [flag-list] [date-time] message; false after a reply. */
static bool
parse_args(struct imap_session *s, const struct imap_command *cmd,
	   struct append_args *aa)
{
	size_t i = 1;
	struct mp_str date;

	if (cmd->count < 2) {
		imap_cmd_bad(s, NULL, "APPEND needs a mailbox and a message");
		return false;
	}
	if (!imap_mailbox_arg(s, &cmd->args[0], &aa->mailbox))
		return false;
	if (cmd->args[i].type == IMAP_ARG_LIST &&
	    !parse_flags(s, &cmd->args[i++], aa))
		return false;
	aa->tz_minutes = local_tz_minutes();
	if (i < cmd->count && cmd->args[i].type == IMAP_ARG_QUOTED) {
		imap_arg_get_string(&cmd->args[i++], &date);
		if (!parse_date_time(date.p, date.len, &aa->date,
				     &aa->tz_minutes)) {
			imap_cmd_bad(s, NULL, "Invalid date-time");
			return false;
		}
	}
	aa->msg = message_arg(s, cmd->args + i, cmd->count - i);
	return aa->msg != NULL;
}

/* Space-separated, as the hooks take them. */
static char *
join_keywords(const struct mp_strlist *kw)
{
	struct mp_buf b = {0};

	mp_buf_puts(&b, "");
	for (size_t i = 0; i < kw->n; i++)
		mp_buf_printf(&b, "%s%s", i > 0 ? " " : "", kw->v[i]);
	return mp_buf_steal(&b);
}

/* --- the commit ---------------------------------------------------------- */

static void
append_work(void *arg)
{
	struct append_job *job = arg;

	job->result = ms_append_commit(&job->ma, &job->uid, &job->uidvalidity,
				       &job->err);
}

static void
append_done(void *arg)
{
	struct append_job *job = arg;
	struct imap_session *s = job->head.s;
	const char *code, *text;
	char buf[64];

	if (s == NULL) {
		free(job->mailbox);
		free(job->keywords);
		free(job);
		return;
	}
	s->job = NULL;
	if (job->result == MS_OK) {
		mp_conn_log(s->conn, MP_LOG_INFO,
			    "event=imap_append mailbox=%s uid=%u size=%llu",
			    mp_q(job->mailbox), job->uid,
			    (unsigned long long)job->size);
		/* RFC 4315 3. imap_cmd_done() reports the new message as
		 * EXISTS first when it went to the selected mailbox. */
		imap_event_append(s, job->mailbox, job->uidvalidity, job->uid,
				  job->size, job->flags, job->keywords);
		snprintf(buf, sizeof(buf), "APPENDUID %u %u", job->uidvalidity,
			 job->uid);
		imap_cmd_done(s, "OK", buf, "APPEND completed");
	} else {
		store_error(s, job->result, &job->err, &code, &text);
		imap_cmd_done(s, "NO", code, text);
	}
	free(job->mailbox);
	free(job->keywords);
	free(job);
}

/* The message held by the parser (before streaming was on): saved from
 * memory. False after a reply. */
static bool
begin_held(struct imap_session *s, const struct append_args *aa)
{
	const char *code, *text;
	struct ms_error err;

	if (aa->msg->str.len == 0) {
		imap_cmd_done(s, "NO", NULL, "Cannot save an empty message");
		return false;
	}
	if (!size_fits(s, aa->msg->str.len, &code, &text)) {
		imap_cmd_done(s, "NO", code, text);
		return false;
	}
	s->append = mp_xcalloc(1, sizeof(*s->append));
	s->append->binary = aa->msg->flags & IMAP_ARG_BINARY;
	s->append->ma = ms_append_begin(s->user, aa->mailbox, &err);
	if (s->append->ma == NULL) {
		store_error(s, err.code, &err, &code, &text);
		imap_cmd_done(s, "NO", code, text);
		return false;
	}
	imap_append_data(s, aa->msg->str.p, aa->msg->str.len);
	return true;
}

/* Flags, date, and the checks that waited for the end of the literal.
 * False after a reply. */
static bool
finish(struct imap_session *s, const struct append_args *aa)
{
	struct imap_append *a = s->append;
	const char *code, *text;
	struct ms_error err;
	enum ms_result r;

	if (a->nul) {
		imap_cmd_bad(s, NULL, "NUL in literal");
		return false;
	}
	if (a->failed) {
		store_error(s, a->err.code, &a->err, &code, &text);
		imap_cmd_done(s, "NO", code, text);
		return false;
	}
	r = ms_append_set(a->ma, aa->flags, &aa->keywords, aa->date,
			  aa->tz_minutes, &err);
	if (r != MS_OK) {
		store_error(s, r, &err, &code, &text);
		imap_cmd_done(s, "NO", code, text);
		return false;
	}
	return true;
}

static enum mp_status
cmd_append(struct imap_session *s, const struct imap_command *cmd)
{
	struct append_args aa = {0};
	struct append_job *job;

	if (!parse_args(s, cmd, &aa))
		goto refused;
	if (aa.msg->type == IMAP_ARG_LITERAL && !begin_held(s, &aa))
		goto refused;
	/* A streamed message always has its file: the literal was refused
	 * otherwise and the command never completed. */
	if (s->append == NULL) {
		imap_cmd_done(s, "NO", "UNAVAILABLE", "Message not received");
		goto refused;
	}
	if (!finish(s, &aa))
		goto refused;
	job = mp_xcalloc(1, sizeof(*job));
	job->head.s = s;
	job->ma = s->append->ma;
	job->size = ms_append_size(job->ma);
	job->mailbox = aa.mailbox;
	aa.mailbox = NULL;
	job->flags = aa.flags;
	job->keywords = join_keywords(&aa.keywords);
	MP_FREE(s->append);
	args_free(&aa);
	s->job = &job->head;
	mp_pool_submit(mp_server_pool(s->server), append_work, append_done,
		       job);
	return MP_AGAIN;
refused:
	imap_append_abort(s);
	args_free(&aa);
	return MP_OK;
}

const struct imap_cmd_def imap_append_cmds[] = {
	{"APPEND", IMAP_S_LOGIN, 0, cmd_append},
	{NULL, 0, 0, NULL},
};
