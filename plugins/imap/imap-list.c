/* imap-list.c - LIST and LSUB (RFC 9051 6.3.9, RFC 3501 6.3.8-9) with
 * LIST-EXTENDED (RFC 5258), SPECIAL-USE (RFC 6154) and LIST-STATUS
 * (RFC 5819).
 *
 * The command is parsed on the loop; the listing, the matching and any
 * STATUS data are made on the thread pool into one buffer, so an account
 * with MS_MAILBOXES_MAX mailboxes and LIST-STATUS never holds up the loop.
 *
 * Patterns are decoded to UTF-8 first and matched against the stored
 * names by a dynamic-programming matcher: O(name x pattern) per name,
 * whatever the wildcards, never exponential backtracking. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <moonpost/log.h>
#include <moonpost/mailstore.h>
#include <moonpost/pool.h>
#include <moonpost/server.h>

#include "imap-mbox.h"
#include "imap-mutf7.h"
#include "imap-private.h"

/* Bytes of one reference + pattern, and of all of a command's patterns
 * together: each costs pattern x name steps for every name listed. */
#define LIST_PATTERN_MAX        512
#define LIST_PATTERNS_BYTES_MAX 1024
/* Patterns in one LIST (RFC 5258 3 lets a client send a list). */
#define LIST_PATTERNS_MAX 16

enum list_sel {
	SEL_SUBSCRIBED = 1 << 0,
	SEL_RECURSIVE = 1 << 1,
	SEL_SPECIAL = 1 << 2,
	SEL_REMOTE = 1 << 3,
};

enum list_ret {
	RET_SUBSCRIBED = 1 << 0,
	RET_CHILDREN = 1 << 1,
	RET_SPECIAL = 1 << 2,
	RET_STATUS = 1 << 3,
};

struct list_job {
	struct imap_job head;
	struct ms_user *user;
	bool lsub;
	bool extended; /* LIST-EXTENDED syntax or IMAP4rev2 */
	unsigned sel, ret, status_items;
	unsigned enabled;
	int64_t append_limit;
	struct mp_strlist patterns; /* UTF-8, reference prepended */
	struct mp_buf out;
	enum ms_result result;
	struct ms_error err;
};

/* A name that may be listed: a mailbox, a subscription, or a parent of
 * one. */
struct entry {
	const char *name;
	const struct ms_mailbox_info *info; /* NULL: no such mailbox */
	bool subscribed;
	bool child_subscribed; /* a descendant is subscribed */
};

struct entries {
	struct entry *v;
	size_t n, cap;
	struct mp_strlist owned; /* names made up for parents */
};

/* --- matching ------------------------------------------------------------- */

static bool
is_inbox_name(const char *name)
{
	return strncmp(name, "INBOX", 5) == 0 &&
	       (name[5] == '\0' || name[5] == '/');
}

/* True when name matches pat: '*' matches anything, '%' anything but the
 * separator (RFC 9051 6.3.9). The INBOX part of a name matches in any
 * case. Row j of the table: pat[0..j) matches name[0..i). */
static bool
list_match(const char *pat, const char *name)
{
	bool a[LIST_PATTERN_MAX + 1], b[LIST_PATTERN_MAX + 1];
	bool *cur = a, *next = b, *tmp, any;
	size_t m = strlen(pat);
	size_t inbox = is_inbox_name(name) ? 5 : 0;

	if (m > LIST_PATTERN_MAX)
		return false;
	cur[0] = true;
	for (size_t j = 1; j <= m; j++)
		cur[j] = cur[j - 1] && (pat[j - 1] == '*' || pat[j - 1] == '%');
	for (size_t i = 0; name[i] != '\0'; i++) {
		char c = name[i];

		next[0] = false;
		any = false;
		for (size_t j = 1; j <= m; j++) {
			char p = pat[j - 1];

			if (p == '*')
				next[j] = next[j - 1] || cur[j];
			else if (p == '%')
				next[j] = next[j - 1] || (cur[j] && c != '/');
			else if (i < inbox)
				next[j] = cur[j - 1] &&
					  (p == c || (p ^ 0x20) == c);
			else
				next[j] = cur[j - 1] && p == c;
			any |= next[j];
		}
		if (!any)
			return false;
		tmp = cur, cur = next, next = tmp;
	}
	return cur[m];
}

static bool
match_any(const struct list_job *job, const char *name)
{
	for (size_t i = 0; i < job->patterns.n; i++)
		if (list_match(job->patterns.v[i], name))
			return true;
	return false;
}

/* RFC 3501 6.3.9: with '%' last, LSUB lists a parent of a subscribed
 * name that is not itself subscribed, as \Noselect. */
static bool
match_parent(const struct list_job *job, const char *name)
{
	for (size_t i = 0; i < job->patterns.n; i++) {
		const char *p = job->patterns.v[i];
		size_t len = strlen(p);

		if (len > 0 && p[len - 1] == '%' && list_match(p, name))
			return true;
	}
	return false;
}

/* --- the candidates --------------------------------------------------------
 */

static int
name_cmp(const char *a, const char *b)
{
	bool ia = strcmp(a, "INBOX") == 0, ib = strcmp(b, "INBOX") == 0;

	if (ia || ib)
		return ib - ia;
	return strcmp(a, b);
}

static int
entry_cmp(const void *a, const void *b)
{
	return name_cmp(((const struct entry *)a)->name,
			((const struct entry *)b)->name);
}

/* Looks name up among the first n entries, which are sorted. */
static struct entry *
entries_find(struct entries *e, size_t n, const char *name)
{
	struct entry key = {.name = name};

	return bsearch(&key, e->v, n, sizeof(*e->v), entry_cmp);
}

static struct entry *
entries_add(struct entries *e, const char *name)
{
	if (e->n == e->cap) {
		e->cap = e->cap > 0 ? e->cap * 2 : 64;
		e->v = mp_xrealloc(e->v, e->cap * sizeof(*e->v));
	}
	e->v[e->n] = (struct entry){.name = name};
	return &e->v[e->n++];
}

/* Adds the parents of a subscribed name that are not among the first n
 * entries (duplicates are merged later). */
static void
add_parents(struct entries *e, size_t n, const char *name)
{
	char *copy = mp_xstrdup(name);

	for (char *p = strrchr(copy, '/'); p != NULL; p = strrchr(copy, '/')) {
		*p = '\0';
		if (entries_find(e, n, copy) != NULL)
			continue;
		mp_strlist_add(&e->owned, copy);
		entries_add(e, e->owned.v[e->owned.n - 1]);
	}
	free(copy);
}

/* Sorts the entries and merges those with one name. */
static void
entries_sort(struct entries *e)
{
	size_t w = 0;

	qsort(e->v, e->n, sizeof(*e->v), entry_cmp);
	for (size_t r = 0; r < e->n; r++) {
		if (w > 0 && strcmp(e->v[w - 1].name, e->v[r].name) == 0) {
			struct entry *x = &e->v[w - 1];

			if (x->info == NULL)
				x->info = e->v[r].info;
			x->subscribed |= e->v[r].subscribed;
			continue;
		}
		e->v[w++] = e->v[r];
	}
	e->n = w;
}

/* Every mailbox, every subscribed name and every parent of one, sorted,
 * with child_subscribed set on the parents. */
static void
entries_build(struct entries *e, const struct ms_mailbox_list *boxes,
	      const struct mp_strlist *subs)
{
	size_t nboxes;

	for (size_t i = 0; i < boxes->n; i++) {
		struct entry *x = entries_add(e, boxes->v[i].name);

		x->info = &boxes->v[i];
		x->subscribed = boxes->v[i].subscribed;
	}
	entries_sort(e);
	nboxes = e->n;
	for (size_t i = 0; i < subs->n; i++) {
		if (entries_find(e, nboxes, subs->v[i]) == NULL)
			entries_add(e, subs->v[i])->subscribed = true;
		add_parents(e, nboxes, subs->v[i]);
	}
	entries_sort(e);
	for (size_t i = 0; i < subs->n; i++) {
		char *copy = mp_xstrdup(subs->v[i]);

		for (char *p = strrchr(copy, '/'); p != NULL;
		     p = strrchr(copy, '/')) {
			struct entry *x;

			*p = '\0';
			if ((x = entries_find(e, e->n, copy)) != NULL)
				x->child_subscribed = true;
		}
		free(copy);
	}
}

static void
entries_free(struct entries *e)
{
	free(e->v);
	mp_strlist_free(&e->owned);
}

/* --- output --------------------------------------------------------------- */

static void
write_special(struct mp_buf *attrs, unsigned use)
{
	static const struct {
		unsigned bit;
		const char *name;
	} uses[] = {
		{MS_SPECIAL_ALL, "\\All"},
		{MS_SPECIAL_ARCHIVE, "\\Archive"},
		{MS_SPECIAL_DRAFTS, "\\Drafts"},
		{MS_SPECIAL_FLAGGED, "\\Flagged"},
		{MS_SPECIAL_JUNK, "\\Junk"},
		{MS_SPECIAL_SENT, "\\Sent"},
		{MS_SPECIAL_TRASH, "\\Trash"},
	};

	for (size_t i = 0; i < MP_NELEMS(uses); i++)
		if (use & uses[i].bit)
			mp_buf_printf(attrs, " %s", uses[i].name);
}

static void
write_attrs(const struct list_job *job, const struct entry *x,
	    struct mp_buf *out)
{
	struct mp_buf a = {0};
	const struct ms_mailbox_info *info = x->info;

	if (job->lsub && !x->subscribed)
		/* RFC 3501 6.3.9: a parent listed for a subscribed child. */
		mp_buf_puts(&a, " \\Noselect");
	else if (info == NULL)
		/* RFC 5258 3: \NonExistent implies \Noselect; clients of the
		 * old syntax only know the latter. */
		mp_buf_puts(&a, job->extended && !job->lsub ? " \\NonExistent"
							    : " \\Noselect");
	else if (info->noselect)
		mp_buf_puts(&a, " \\Noselect");
	if (info != NULL && !job->lsub)
		mp_buf_puts(&a, info->has_children ? " \\HasChildren"
						   : " \\HasNoChildren");
	if (x->subscribed && !job->lsub &&
	    (job->sel & SEL_SUBSCRIBED || job->ret & RET_SUBSCRIBED))
		mp_buf_puts(&a, " \\Subscribed");
	if (info != NULL && !job->lsub)
		write_special(&a, info->special_use);
	mp_buf_printf(out, "(%s)", a.len > 0 ? (const char *)a.data + 1 : "");
	mp_buf_free(&a);
}

static void
write_entry(struct list_job *job, const struct entry *x, bool childinfo)
{
	struct mp_buf *out = &job->out;
	struct ms_status st;
	struct ms_error err;

	mp_buf_printf(out, "* %s ", job->lsub ? "LSUB" : "LIST");
	write_attrs(job, x, out);
	mp_buf_puts(out, " \"/\" ");
	imap_mbox_write_name(out, x->name, job->enabled);
	/* RFC 5258 3.5 */
	if (childinfo)
		mp_buf_puts(out, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	mp_buf_puts(out, "\r\n");
	/* RFC 5819 2: STATUS for selectable mailboxes only; one that went
	 * away since the listing is left out. */
	if (!(job->ret & RET_STATUS) || x->info == NULL || x->info->noselect)
		return;
	if (ms_mailbox_status(job->user, x->name, &st, &err) == MS_OK)
		imap_status_write(out, x->name, job->enabled, job->status_items,
				  &st, job->append_limit);
}

/* Whether x is listed, and with CHILDINFO. */
static bool
selected(const struct list_job *job, const struct entry *x, bool *childinfo)
{
	bool recursive = job->sel & SEL_RECURSIVE;

	*childinfo = false;
	if (job->lsub)
		return x->subscribed ||
		       (x->child_subscribed && match_parent(job, x->name));
	if (job->sel & SEL_SUBSCRIBED) {
		*childinfo = recursive && x->child_subscribed;
		if (!x->subscribed && !*childinfo)
			return false;
	} else if (x->info == NULL) {
		return false;
	}
	if (job->sel & SEL_SPECIAL)
		return x->info != NULL && x->info->special_use != 0;
	return true;
}

static void
list_work(void *arg)
{
	struct list_job *job = arg;
	struct ms_mailbox_list boxes = {0};
	struct mp_strlist subs = {0};
	struct entries e = {0};
	bool childinfo;

	job->result = ms_mailbox_list(job->user, &boxes, &job->err);
	if (job->result == MS_OK)
		job->result = ms_subscriptions(job->user, &subs, &job->err);
	if (job->result != MS_OK) {
		ms_mailbox_list_free(&boxes);
		return;
	}
	entries_build(&e, &boxes, &subs);
	for (size_t i = 0; i < e.n; i++)
		if (match_any(job, e.v[i].name) &&
		    selected(job, &e.v[i], &childinfo))
			write_entry(job, &e.v[i], childinfo);
	entries_free(&e);
	mp_strlist_free(&subs);
	ms_mailbox_list_free(&boxes);
}

static void
list_job_free(struct list_job *job)
{
	ms_user_unref(&job->user);
	mp_strlist_free(&job->patterns);
	mp_buf_free(&job->out);
	free(job);
}

static void
list_done(void *arg)
{
	struct list_job *job = arg;
	struct imap_session *s = job->head.s;

	if (s == NULL) {
		list_job_free(job);
		return;
	}
	s->job = NULL;
	if (job->result != MS_OK) {
		mp_conn_log(s->conn, MP_LOG_WARN,
			    "event=imap_list_failed error=%s",
			    mp_q(job->err.text));
		imap_cmd_done(s, "NO", "UNAVAILABLE",
			      "Cannot list mailboxes, try again later");
	} else {
		if (job->out.len > 0)
			imap_write(s, job->out.data, job->out.len);
		imap_cmd_ok(s);
	}
	list_job_free(job);
}

/* --- parsing ----------------------------------------------------------------
 */

/* Adds reference + pattern, decoded to UTF-8, to job->patterns. A pattern
 * that is no valid modified UTF-7 matches nothing and is dropped. False
 * when it is too long. */
static bool
add_pattern(struct imap_session *s, struct list_job *job,
	    const struct mp_str *ref, const struct mp_str *pat, size_t *total)
{
	struct mp_buf raw = {0}, name = {0};
	const char *error = NULL;
	bool ok;

	*total += ref->len + pat->len;
	if (ref->len + pat->len > LIST_PATTERN_MAX ||
	    *total > LIST_PATTERNS_BYTES_MAX)
		return false;
	mp_buf_append(&raw, ref->p, ref->len);
	mp_buf_append(&raw, pat->p, pat->len);
	if (s->enabled & (IMAP_EN_UTF8 | IMAP_EN_REV2) &&
	    imap_utf8_needs_mutf7(raw.data, raw.len)) {
		mp_buf_append(&name, raw.data, raw.len);
		ok = true;
	} else {
		ok = imap_mutf7_to_utf8(raw.data, raw.len, &name, &error);
	}
	mp_buf_free(&raw);
	if (!ok)
		return true;
	mp_buf_append(&name, "", 1);
	/* "inbox" and "Inbox/x" name INBOX (RFC 9051 5.1). */
	if (strncasecmp(name.data, "INBOX", 5) == 0 &&
	    (((char *)name.data)[5] == '\0' || ((char *)name.data)[5] == '/'))
		memcpy(name.data, "INBOX", 5);
	mp_strlist_add(&job->patterns, name.data);
	mp_buf_free(&name);
	return true;
}

static bool
parse_selection(struct list_job *job, const struct imap_arg *arg)
{
	const struct imap_arg *v;
	size_t n;

	if (!imap_arg_get_list(arg, &v, &n))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (imap_arg_atom_equals(&v[i], "SUBSCRIBED"))
			job->sel |= SEL_SUBSCRIBED;
		else if (imap_arg_atom_equals(&v[i], "REMOTE"))
			job->sel |= SEL_REMOTE; /* no remote mailboxes */
		else if (imap_arg_atom_equals(&v[i], "RECURSIVEMATCH"))
			job->sel |= SEL_RECURSIVE;
		else if (imap_arg_atom_equals(&v[i], "SPECIAL-USE"))
			job->sel |= SEL_SPECIAL;
		else
			return false; /* RFC 5258 3: BAD for unknown ones */
	}
	/* RFC 5258 3.1: RECURSIVEMATCH alone (or with REMOTE) is BAD. */
	return !(job->sel & SEL_RECURSIVE) ||
	       job->sel & (SEL_SUBSCRIBED | SEL_SPECIAL);
}

static bool
parse_return(struct imap_session *s, struct list_job *job,
	     const struct imap_arg *arg)
{
	const struct imap_arg *v;
	size_t n;

	if (!imap_arg_get_list(arg, &v, &n))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (imap_arg_atom_equals(&v[i], "SUBSCRIBED")) {
			job->ret |= RET_SUBSCRIBED;
		} else if (imap_arg_atom_equals(&v[i], "CHILDREN")) {
			job->ret |= RET_CHILDREN; /* always sent anyway */
		} else if (imap_arg_atom_equals(&v[i], "SPECIAL-USE")) {
			job->ret |= RET_SPECIAL; /* always sent anyway */
		} else if (imap_arg_atom_equals(&v[i], "STATUS") && i + 1 < n &&
			   imap_status_items_parse(&v[i + 1],
						   &job->status_items)) {
			job->ret |= RET_STATUS;
			i++;
		} else {
			return false;
		}
	}
	/* RFC 7162 3.1: STATUS HIGHESTMODSEQ enables CONDSTORE. */
	if (job->status_items & IMAP_ST_HIGHESTMODSEQ)
		s->enabled |= IMAP_EN_CONDSTORE;
	return true;
}

/* Parses "[(sel)] ref pattern|(patterns) [RETURN (ret)]"; false after a
 * reply. */
static bool
parse_list(struct imap_session *s, const struct imap_command *cmd,
	   struct list_job *job)
{
	const struct imap_arg *a = cmd->args, *pats = NULL;
	size_t n = cmd->count, npats = 1, total = 0;
	struct mp_str ref, pat;

	if (!job->lsub && n > 0 && a[0].type == IMAP_ARG_LIST) {
		if (!parse_selection(job, &a[0]))
			goto bad;
		job->extended = true;
		a++, n--;
	}
	if (!job->lsub && n == 4 && imap_arg_atom_equals(&a[2], "RETURN")) {
		if (!parse_return(s, job, &a[3]))
			goto bad;
		job->extended = true;
		n -= 2;
	}
	if (n != 2 || !imap_arg_get_astring(&a[0], &ref))
		goto bad;
	if (!job->lsub && a[1].type == IMAP_ARG_LIST) {
		imap_arg_get_list(&a[1], &pats, &npats);
		job->extended = true;
		if (npats == 0)
			goto bad;
	} else {
		pats = &a[1];
	}
	if (npats > LIST_PATTERNS_MAX) {
		imap_cmd_bad(s, "LIMIT", "Too many patterns");
		return false;
	}
	for (size_t i = 0; i < npats; i++) {
		if (!imap_arg_get_list_mailbox(&pats[i], &pat))
			goto bad;
		if (!add_pattern(s, job, &ref, &pat, &total)) {
			imap_cmd_done(s, "NO", "LIMIT", "Pattern too long");
			return false;
		}
	}
	return true;
bad:
	imap_cmd_bad(s, NULL, "Invalid LIST arguments");
	return false;
}

/* LIST "" "": the hierarchy separator and the root (RFC 9051 6.3.9). */
static bool
list_root(struct imap_session *s, const struct imap_command *cmd, bool lsub)
{
	struct mp_str ref, pat;

	if (cmd->count != 2 || !imap_arg_get_astring(&cmd->args[0], &ref) ||
	    !imap_arg_get_list_mailbox(&cmd->args[1], &pat) || pat.len != 0)
		return false;
	imap_untagged(s, "%s (\\Noselect) \"/\" \"\"", lsub ? "LSUB" : "LIST");
	imap_cmd_ok(s);
	return true;
}

static enum mp_status
cmd_list(struct imap_session *s, const struct imap_command *cmd)
{
	bool lsub = strcmp(cmd->verb, "LSUB") == 0;
	struct list_job *job;

	if (list_root(s, cmd, lsub))
		return MP_OK;
	job = mp_xcalloc(1, sizeof(*job));
	job->lsub = lsub;
	/* RFC 9051 6.3.9: IMAP4rev2's LIST is the extended one. */
	job->extended = !lsub && (s->enabled & IMAP_EN_REV2);
	if (!parse_list(s, cmd, job)) {
		list_job_free(job);
		return MP_OK;
	}
	job->head.s = s;
	job->user = ms_user_ref(s->user);
	job->enabled = s->enabled;
	job->append_limit = s->cfg->append_limit;
	s->job = &job->head;
	mp_pool_submit(mp_server_pool(s->server), list_work, list_done, job);
	return MP_AGAIN;
}

const struct imap_cmd_def imap_list_cmds[] = {
	{"LIST", IMAP_S_LOGIN, 0, cmd_list},
	{"LSUB", IMAP_S_LOGIN, 0, cmd_list},
	{NULL, 0, 0, NULL},
};
