/* cmd-import.c - `moonpost import maildir`: a Dovecot or Courier Maildir++
 * tree into an account, keeping UIDs, flags, keywords and subscriptions.
 *
 * Each folder is read (dovecot-uidlist, dovecot-keywords, cur/ and new/),
 * its messages are added through the mailstore's import API, and then the
 * store is read back to check that every message of the source is there
 * with the size it should have once its line ends are CRLF. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <moonpost/mailstore-import.h>

#include "cli.h"
#include "maildir-tree.h"
#include "passwd.h"

struct import_args {
	const char *src;
	const char *address; /* lower case once checked */
	const char *config_path;
	const char *data_dir;
	bool quiet;
	bool force;
};

static const char usage_text[] =
	"usage: moonpost import maildir SRC ADDRESS [--quiet] [--force]\n"
	"\n"
	"Imports the Maildir++ tree SRC, as Dovecot or Courier keep it, into\n"
	"the mail of ADDRESS: SRC itself is INBOX, SRC/.Foo.Bar is Foo/Bar.\n"
	"Flags, keywords (dovecot-keywords), received dates (file times),\n"
	"subscriptions (subscriptions, courierimapsubscribed) and, from\n"
	"dovecot-uidlist, UIDs and UIDVALIDITY are kept, so IMAP clients do\n"
	"not download everything again. Running it twice adds nothing.\n"
	"\n"
	"  -c, --config FILE   the config file (default " MP_CLI_DEFAULT_CONFIG
	")\n"
	"      --data-dir DIR  the data directory of `serve --dev` instead\n"
	"  -q, --quiet         no progress line on the terminal\n"
	"      --force         import even if ADDRESS has no account\n"
	"  -h, --help          show this help\n"
	"\n"
	"A summary compares, per mailbox, the messages and bytes of SRC with\n"
	"what the mailstore then holds (bytes as CRLF, as the store keeps\n"
	"them); the exit status is 65 when anything is missing or differs.\n";

enum { OPT_DATA_DIR = 256, OPT_FORCE };

static const struct option long_options[] = {
	{"config", required_argument, NULL, 'c'},
	{"data-dir", required_argument, NULL, OPT_DATA_DIR},
	{"quiet", no_argument, NULL, 'q'},
	{"force", no_argument, NULL, OPT_FORCE},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static int usage_error(const char *fmt, ...) MP_PRINTF(1, 2);

static int
usage_error(const char *fmt, ...)
{
	struct mp_buf msg = {0};
	va_list ap;

	va_start(ap, fmt);
	mp_buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	mp_cli_error("import: %s; see 'moonpost import --help'", msg.data);
	mp_buf_free(&msg);
	return EX_USAGE;
}

/* The format, SRC, then ADDRESS. */
static int
take_positional(struct import_args *args, const char *arg, int *n_pos)
{
	if (*n_pos == 0 && strcmp(arg, "maildir") != 0)
		return usage_error("unknown format '%s' (only maildir)", arg);
	if (*n_pos == 1)
		args->src = arg;
	else if (*n_pos == 2)
		args->address = arg;
	else if (*n_pos > 2)
		return usage_error("unexpected argument '%s'", arg);
	(*n_pos)++;
	return EX_OK;
}

/* One getopt_long() result; EX_OK to go on, or an exit code (-1: help). */
static int
take_option(int c, char **argv, struct import_args *args, int *n_pos)
{
	switch (c) {
	case 1:
		return take_positional(args, optarg, n_pos);
	case 'c':
		args->config_path = optarg;
		return EX_OK;
	case OPT_DATA_DIR:
		args->data_dir = optarg;
		return EX_OK;
	case 'q':
		args->quiet = true;
		return EX_OK;
	case OPT_FORCE:
		args->force = true;
		return EX_OK;
	case 'h':
		return -1;
	case ':':
		return usage_error("option '%s' needs a value",
				   argv[optind - 1]);
	default:
		return usage_error("unknown option '%s'", argv[optind - 1]);
	}
}

static int
parse_args(int argc, char **argv, struct import_args *args)
{
	int c, rc, n_pos = 0;

	memset(args, 0, sizeof(*args));
	/* As in cmd-user.c: start over, options anywhere, ':' for a missing
	 * value. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "-:c:qh", long_options, NULL)) !=
	       -1) {
		if ((rc = take_option(c, argv, args, &n_pos)) != EX_OK)
			return rc;
	}
	if (n_pos == 0)
		return usage_error("missing format (maildir)");
	if (args->src == NULL)
		return usage_error("missing SRC");
	if (args->address == NULL)
		return usage_error("missing ADDRESS");
	if (args->config_path != NULL && args->data_dir != NULL)
		return usage_error("-c and --data-dir exclude each other");
	if (args->config_path == NULL && args->data_dir == NULL)
		args->config_path = MP_CLI_DEFAULT_CONFIG;
	return EX_OK;
}

/* --- the source tree ------------------------------------------------------ */

struct src_msg {
	char *file;       /* "cur/NAME" or "new/NAME" */
	char *key;        /* NAME up to the info (":2,...") */
	uint32_t src_uid; /* from dovecot-uidlist; 0 when not listed */
	bool is_new;
	bool readable;
	uint64_t raw, crlf; /* bytes as stored, and with CRLF line ends */
	uint32_t dest_uid;  /* 0 while not in the store */
};

struct folder {
	char *path; /* the folder's directory */
	char *name; /* its mailbox name */
	struct mp_maildir_uidlist uidlist;
	char *keywords[26]; /* dovecot-keywords: letter a + i */
	struct src_msg *msgs;
	size_t n;
	bool opened;  /* its mailbox could be opened for the import */
	size_t added; /* messages this run added */
};

struct run {
	const struct import_args *args;
	struct mp_maildir_account account;
	struct ms_user *user;
	struct mp_strlist problems; /* "MAILBOX: what" */
	struct mp_buf summary;
	struct mp_strlist imported; /* mailboxes that took part */
	bool progress;
	uint64_t progress_ms;
	unsigned mismatches;
};

static void problem(struct run *run, const char *mailbox, const char *fmt, ...)
	MP_PRINTF(3, 4);

static void
problem(struct run *run, const char *mailbox, const char *fmt, ...)
{
	struct mp_buf b = {0};
	va_list ap;

	mp_buf_printf(&b, "%s: ", mailbox);
	va_start(ap, fmt);
	mp_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	mp_strlist_add(&run->problems, b.data);
	mp_buf_free(&b);
}

static int
cmp_msgs(const void *a, const void *b)
{
	const struct src_msg *x = a, *y = b;

	/* Listed messages in UID order, then the others by name (Maildir
	 * names start with the delivery time). */
	if ((x->src_uid == 0) != (y->src_uid == 0))
		return x->src_uid == 0 ? 1 : -1;
	if (x->src_uid != y->src_uid)
		return x->src_uid < y->src_uid ? -1 : 1;
	return strcmp(x->file, y->file);
}

static void
add_msg(struct folder *f, const char *sub, const char *name, uint64_t size)
{
	struct src_msg *m;

	f->msgs = mp_xrealloc(f->msgs, (f->n + 1) * sizeof(*f->msgs));
	m = &f->msgs[f->n++];
	memset(m, 0, sizeof(*m));
	m->file = mp_xasprintf("%s/%s", sub, name);
	m->key = mp_xstrndup(name, strcspn(name, ":"));
	m->is_new = strcmp(sub, "new") == 0;
	m->raw = m->crlf = size; /* until it is read */
	m->src_uid = mp_maildir_uidlist_find(&f->uidlist, m->key);
}

/* Regular files of cur/ or new/ (dot files are Maildir's temporary ones). */
static void
scan_sub(struct folder *f, const char *sub)
{
	char *dir = mp_xasprintf("%s/%s", f->path, sub);
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL) {
		char *path = mp_xasprintf("%s/%s", dir, e->d_name);
		struct stat st;

		if (e->d_name[0] != '.' && stat(path, &st) == 0 &&
		    S_ISREG(st.st_mode))
			add_msg(f, sub, e->d_name, (uint64_t)st.st_size);
		free(path);
	}
	if (d != NULL)
		closedir(d);
	free(dir);
}

static void
load_folder(struct run *run, struct folder *f)
{
	char *error = NULL;

	if (!mp_maildir_uidlist_read(f->path, &f->uidlist, &error)) {
		mp_cli_error("import: warning: %s", error);
		free(error);
	}
	if (!mp_maildir_keywords_read(f->path, f->keywords, &error)) {
		mp_cli_error("import: warning: %s", error);
		free(error);
	}
	scan_sub(f, "cur");
	scan_sub(f, "new");
	if (f->n > 0)
		qsort(f->msgs, f->n, sizeof(*f->msgs), cmp_msgs);
	/* A UID listed for two files is kept by the first only. */
	for (size_t i = 1; i < f->n; i++) {
		if (f->msgs[i].src_uid != 0 &&
		    f->msgs[i].src_uid == f->msgs[i - 1].src_uid)
			f->msgs[i].src_uid = 0;
	}
	if (f->n > 0)
		qsort(f->msgs, f->n, sizeof(*f->msgs), cmp_msgs);
}

static void
folder_free(struct folder *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->msgs[i].file);
		free(f->msgs[i].key);
	}
	for (size_t i = 0; i < MP_NELEMS(f->keywords); i++)
		free(f->keywords[i]);
	mp_maildir_uidlist_free(&f->uidlist);
	free(f->msgs);
	free(f->path);
	free(f->name);
}

/* --- progress ------------------------------------------------------------- */

static void
progress(struct run *run, const char *name, size_t done, size_t total)
{
	uint64_t now = mp_now_ms();

	if (!run->progress || (done < total && now - run->progress_ms < 100))
		return;
	run->progress_ms = now;
	fprintf(stderr, "\rimporting %s: %zu/%zu messages\033[K", name, done,
		total);
}

static void
progress_end(struct run *run)
{
	if (run->progress)
		fputs("\r\033[K", stderr);
}

/* --- one message ---------------------------------------------------------- */

struct box {
	struct folder *f;
	struct ms_import *imp;
	bool uids_kept;
	uint32_t uidnext; /* as far as this import knows */
	uint32_t first_new_uid;
	size_t imported;
	size_t renumbered;      /* listed, but their UID is taken or past */
	struct ms_msg_list had; /* what the mailbox held before */
};

static void
add_one(struct run *run, struct box *b, struct src_msg *m, int fd,
	const struct stat *st)
{
	struct mp_strlist kws = {0};
	struct ms_import_msg msg = {.key = m->key,
				    .internal_date = st->st_mtime};
	struct ms_import_result res;
	struct ms_error err;

	/* A UID below UIDNEXT cannot be given: IMAP clients look for new
	 * messages from UIDNEXT on. */
	if (b->uids_kept && m->src_uid != 0 && m->src_uid >= b->uidnext)
		msg.uid = m->src_uid;
	else if (b->uids_kept && m->src_uid != 0)
		b->renumbered++;
	msg.flags = mp_maildir_info_flags(m->file, b->f->keywords, &kws);
	msg.keywords = &kws;
	if (ms_import_add(b->imp, fd, &msg, &res, &err) != MS_OK) {
		problem(run, b->f->name, "%s: %s", m->file, err.text);
	} else {
		m->dest_uid = res.uid;
		b->uidnext = res.uid + 1;
		b->imported++;
		if (m->is_new && b->first_new_uid == 0)
			b->first_new_uid = res.uid;
		if (res.dropped_keywords > 0)
			problem(run, b->f->name, "%s: %u keywords left off",
				m->file, res.dropped_keywords);
	}
	mp_strlist_free(&kws);
}

static int
cmp_uid(const void *key, const void *elem)
{
	uint32_t uid = *(const uint32_t *)key;
	const struct ms_msg *m = elem;

	return uid < m->uid ? -1 : uid > m->uid;
}

static const struct ms_msg *
find_uid(const struct ms_msg_list *list, uint32_t uid)
{
	if (uid == 0 || list->n == 0)
		return NULL;
	return bsearch(&uid, list->v, list->n, sizeof(*list->v), cmp_uid);
}

/* Whether m is there already: imported by an earlier run (its key), or,
 * when UIDs are kept, a message with its UID was in the mailbox. */
static bool
already_there(struct run *run, struct box *b, struct src_msg *m)
{
	struct ms_error err;

	if (ms_import_key_uid(b->imp, m->key, &m->dest_uid, &err) != MS_OK) {
		problem(run, b->f->name, "%s: %s", m->file, err.text);
		return true;
	}
	if (m->dest_uid == 0 && b->uids_kept &&
	    find_uid(&b->had, m->src_uid) != NULL)
		m->dest_uid = m->src_uid;
	return m->dest_uid != 0;
}

static void
import_msg(struct run *run, struct box *b, struct src_msg *m)
{
	char *path = mp_xasprintf("%s/%s", b->f->path, m->file);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	m->readable = fd >= 0 && fstat(fd, &st) == 0 &&
		      mp_maildir_measure(fd, &m->raw, &m->crlf);
	if (!m->readable)
		problem(run, b->f->name, "%s: cannot read: %s", m->file,
			strerror(errno));
	else if (!already_there(run, b, m))
		add_one(run, b, m, fd, &st);
	if (fd >= 0)
		close(fd);
	free(path);
}

/* --- one folder ----------------------------------------------------------- */

/* The messages the mailbox holds before the import. */
static bool
load_had(struct ms_user *u, struct box *b, struct ms_error *err)
{
	struct ms_mailbox *mb = ms_mailbox_open(u, b->f->name, err);
	bool ok = mb != NULL &&
		  ms_mailbox_messages(mb, NULL, &b->had, err) == MS_OK;

	ms_mailbox_close(&mb);
	return ok;
}

static bool
open_box(struct run *run, struct box *b)
{
	uint32_t uidvalidity = 0;
	struct ms_error err;

	b->imp =
		ms_import_begin(run->user, b->f->name,
				b->f->uidlist.uidvalidity, &b->uids_kept, &err);
	if (b->imp == NULL) {
		problem(run, b->f->name, "%s", err.text);
		return false;
	}
	if (b->f->uidlist.uidvalidity != 0 && !b->uids_kept)
		mp_cli_error("import: warning: %s already holds messages "
			     "under another UIDVALIDITY; the imported ones "
			     "get new UIDs",
			     b->f->name);
	if (ms_import_status(b->imp, &b->uidnext, &uidvalidity, &err) ==
		    MS_OK &&
	    load_had(run->user, b, &err))
		return true;
	problem(run, b->f->name, "%s", err.text);
	ms_import_free(&b->imp);
	return false;
}

/* UIDs the old server gave out must not come again: messages it did not
 * list start at its NEXTUID. */
static void
raise_uidnext(struct run *run, struct box *b)
{
	struct ms_error err;
	uint32_t next = b->f->uidlist.uidnext;

	if (!b->uids_kept || next <= b->uidnext)
		return;
	if (ms_import_raise_uidnext(b->imp, next, &err) != MS_OK)
		problem(run, b->f->name, "%s", err.text);
	else
		b->uidnext = next;
}

static void
import_folder(struct run *run, struct folder *f)
{
	struct box b = {.f = f};
	struct ms_error err;
	bool raised = false;

	if (!(f->opened = open_box(run, &b)))
		return;
	mp_strlist_add(&run->imported, f->name);
	for (size_t i = 0; i < f->n; i++) {
		if (f->msgs[i].src_uid == 0 && !raised) {
			raise_uidnext(run, &b);
			raised = true;
		}
		import_msg(run, &b, &f->msgs[i]);
		progress(run, f->name, i + 1, f->n);
	}
	if (!raised)
		raise_uidnext(run, &b);
	/* Only what came from new/ is recent (RFC 3501 \Recent). */
	if (ms_import_end(&b.imp, b.first_new_uid, &err) != MS_OK)
		problem(run, f->name, "%s", err.text);
	f->added = b.imported;
	if (b.renumbered > 0) {
		progress_end(run);
		mp_cli_error("import: warning: %s: %zu messages got new UIDs: "
			     "theirs were below the mailbox's UIDNEXT",
			     f->name, b.renumbered);
	}
	ms_msg_list_free(&b.had);
}

/* --- verification --------------------------------------------------------- */

struct tally {
	size_t messages, stored;
	uint64_t raw, crlf, stored_bytes;
};

static void
check_msg(struct run *run, const struct folder *f, const struct src_msg *m,
	  const struct ms_msg_list *list, struct tally *t)
{
	const struct ms_msg *s = find_uid(list, m->dest_uid);

	if (s == NULL) {
		if (m->readable && m->dest_uid != 0)
			problem(run, f->name,
				"%s: not in the store (UID %u is gone)",
				m->file, m->dest_uid);
		return;
	}
	t->stored++;
	t->stored_bytes += s->size;
	if (s->size != m->crlf)
		problem(run, f->name,
			"%s: stored as UID %u with %llu bytes, not %llu",
			m->file, s->uid, (unsigned long long)s->size,
			(unsigned long long)m->crlf);
}

static void
report_line(struct run *run, const struct folder *f, const struct tally *t,
	    const char *result)
{
	mp_buf_printf(&run->summary,
		      "%8zu %12llu %12llu %8zu %12llu %8zu  %-8s  %s\n",
		      t->messages, (unsigned long long)t->raw,
		      (unsigned long long)t->crlf, t->stored,
		      (unsigned long long)t->stored_bytes, f->added, result,
		      f->name);
}

/* Reads the mailbox back: is every message of the source there, with the
 * size it has as CRLF? */
static void
verify_folder(struct run *run, struct folder *f)
{
	struct ms_msg_list list = {0};
	struct tally t = {.messages = f->n};
	struct ms_error err;
	struct ms_mailbox *mb = NULL;
	bool ok;

	if (f->opened &&
	    ((mb = ms_mailbox_open(run->user, f->name, &err)) == NULL ||
	     ms_mailbox_messages(mb, NULL, &list, &err) != MS_OK))
		problem(run, f->name, "cannot read back: %s", err.text);
	for (size_t i = 0; i < f->n; i++) {
		t.raw += f->msgs[i].raw;
		t.crlf += f->msgs[i].crlf;
		if (f->opened)
			check_msg(run, f, &f->msgs[i], &list, &t);
	}
	if (f->opened && t.stored != t.messages)
		problem(run, f->name,
			"%zu messages in the source, %zu of them in the store",
			t.messages, t.stored);
	ok = f->opened && t.stored == t.messages && t.stored_bytes == t.crlf;
	run->mismatches += !ok;
	report_line(run, f, &t, !f->opened ? "FAILED" : ok ? "ok" : "MISMATCH");
	ms_msg_list_free(&list);
	ms_mailbox_close(&mb);
}

/* --- folders and subscriptions -------------------------------------------- */

static int
cmp_folders(const void *a, const void *b)
{
	const struct folder *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static void
add_folder(struct run *run, struct folder **v, size_t *n, const char *path,
	   const char *storage)
{
	char *name = storage != NULL ? ms_maildir_name_decode(storage, '.')
				     : mp_xstrdup("INBOX");

	if (name == NULL) {
		problem(run, path, "not a valid folder name");
		return;
	}
	*v = mp_xrealloc(*v, (*n + 1) * sizeof(**v));
	memset(&(*v)[*n], 0, sizeof(**v));
	(*v)[*n].path = mp_xstrdup(path);
	(*v)[*n].name = name;
	(*n)++;
}

/* SRC as INBOX, and every .NAME directory that is a Maildir. */
static size_t
list_folders(struct run *run, struct folder **v)
{
	const char *src = run->args->src;
	DIR *d = opendir(src);
	struct dirent *e;
	size_t n = 0;

	*v = NULL;
	add_folder(run, v, &n, src, NULL);
	while (d != NULL && (e = readdir(d)) != NULL) {
		char *path;

		if (e->d_name[0] != '.' || strcmp(e->d_name, ".") == 0 ||
		    strcmp(e->d_name, "..") == 0)
			continue;
		path = mp_xasprintf("%s/%s", src, e->d_name);
		if (mp_maildir_is_folder(path))
			add_folder(run, v, &n, path, e->d_name + 1);
		free(path);
	}
	if (d != NULL)
		closedir(d);
	qsort(*v + 1, n - 1, sizeof(**v), cmp_folders);
	return n;
}

static void
subscribe(struct run *run, const char *name, bool on)
{
	struct ms_error err;

	if (ms_mailbox_subscribe(run->user, name, on, &err) != MS_OK)
		mp_cli_error("import: warning: cannot %ssubscribe %s: %s",
			     on ? "" : "un", name, err.text);
}

/* With a subscriptions file, the imported mailboxes are subscribed as it
 * says; without one (a plain Maildir), all of them are. */
static void
import_subscriptions(struct run *run)
{
	struct mp_strlist subs = {0};
	char *error = NULL;
	bool have_file = false;

	if (!mp_maildir_subscriptions_read(run->args->src, &subs, &have_file,
					   &error)) {
		mp_cli_error("import: warning: %s", error);
		free(error);
	}
	for (size_t i = 0; i < run->imported.n; i++) {
		const char *name = run->imported.v[i];

		subscribe(run, name,
			  !have_file || mp_strlist_contains(&subs, name));
	}
	for (size_t i = 0; i < subs.n; i++) {
		if (!mp_strlist_contains(&run->imported, subs.v[i]))
			subscribe(run, subs.v[i], true);
	}
	mp_strlist_free(&subs);
}

/* --- the whole run -------------------------------------------------------- */

static void
print_summary(struct run *run)
{
	printf("import of %s into %s:\n"
	       "  SOURCE        BYTES      AS CRLF   STORED        BYTES      "
	       "NEW  RESULT    MAILBOX\n%s",
	       run->args->src, run->args->address,
	       run->summary.data != NULL ? run->summary.data : "");
	if (run->problems.n == 0)
		return;
	printf("problems:\n");
	for (size_t i = 0; i < run->problems.n; i++)
		printf("  %s\n", run->problems.v[i]);
}

static int
import_all(struct run *run)
{
	struct folder *folders;
	size_t n = list_folders(run, &folders);

	for (size_t i = 0; i < n; i++) {
		load_folder(run, &folders[i]);
		import_folder(run, &folders[i]);
		progress_end(run);
		verify_folder(run, &folders[i]);
		folder_free(&folders[i]);
	}
	free(folders);
	import_subscriptions(run);
	print_summary(run);
	if (run->problems.n == 0 && run->mismatches == 0)
		return EX_OK;
	mp_cli_error("import: %zu problems; see the summary", run->problems.n);
	return EX_DATAERR;
}

static int
check_account(const struct mp_config *cfg, const struct import_args *args)
{
	struct mp_passwd pw = {0};
	const char *path = mp_config_passwd_file(cfg);
	char *error = NULL;
	int rc = EX_OK;

	if (args->force)
		return EX_OK;
	if (path == NULL || !mp_passwd_read(path, &pw, &error)) {
		mp_cli_error("%s", error != NULL ? error : "no passwd file");
		free(error);
		return EX_CONFIG;
	}
	if (mp_passwd_find(&pw, args->address) == NULL) {
		mp_cli_error("no account %s in %s: its mail could not be "
			     "read (add it with 'moonpost user add', or "
			     "import anyway with --force)",
			     args->address, path);
		rc = EX_NOUSER;
	}
	mp_passwd_free(&pw);
	return rc;
}

static int
run_import(const struct mp_config *cfg, const struct import_args *args)
{
	struct run run = {.args = args};
	int rc;

	if (!mp_maildir_is_folder(args->src)) {
		mp_cli_error("%s is not a Maildir (it has no cur/)", args->src);
		return EX_NOINPUT;
	}
	if ((rc = check_account(cfg, args)) != EX_OK)
		return rc;
	run.progress = !args->quiet && isatty(STDERR_FILENO);
	rc = mp_maildir_account_open(mp_config_data_dir(cfg), args->address,
				     false, &run.account);
	if (rc != EX_OK)
		return rc;
	run.user = run.account.user;
	rc = import_all(&run);
	mp_maildir_account_close(&run.account);
	mp_strlist_free(&run.problems);
	mp_strlist_free(&run.imported);
	mp_buf_free(&run.summary);
	return rc;
}

int
mp_cmd_import(int argc, char **argv)
{
	struct import_args args;
	struct mp_config *cfg;
	char address[256];
	char *error;
	int rc = parse_args(argc, argv, &args);

	if (rc == -1) {
		fputs(usage_text, stdout);
		return EX_OK;
	}
	if (rc != EX_OK)
		return rc;
	if ((rc = mp_maildir_check_address(args.address, address)) != EX_OK)
		return rc;
	args.address = address;
	cfg = mp_cli_load_config(args.config_path, args.data_dir, &error);
	if (cfg == NULL) {
		mp_cli_error("%s", error);
		free(error);
		return EX_CONFIG;
	}
	rc = run_import(cfg, &args);
	mp_config_unref(&cfg);
	if (fflush(stdout) != 0 && rc == EX_OK)
		rc = EX_IOERR;
	return rc;
}
