/* cmd-export.c - `moonpost export maildir`: an account's mail as a standard
 * Maildir++ tree, with the control files Dovecot reads.
 *
 * Each mailbox becomes a folder (INBOX the root, "Foo/Bar" .Foo.Bar, names
 * in modified UTF-7), each message a file in cur/ named
 * "<date>.M<uid>V<uidvalidity>.<host>,S=<size>:2,<flags>" whose time is
 * its internal date. dovecot-uidlist keeps UIDs and UIDVALIDITY,
 * dovecot-keywords names the keyword letters, `subscriptions` the
 * subscriptions: `moonpost import maildir` (or Dovecot) reading the tree
 * gives back the same mailboxes. */
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

/* Letters a-z are all a Maildir file name has for keywords. */
#define KEYWORD_LETTERS 26

struct export_args {
	const char *address; /* lower case once checked */
	const char *dest;
	const char *config_path;
	const char *data_dir;
	bool lf;
};

static const char usage_text[] =
	"usage: moonpost export maildir ADDRESS DEST [--lf]\n"
	"\n"
	"Writes the mail of ADDRESS as a Maildir++ tree at DEST (which must\n"
	"not exist, or be empty): INBOX at DEST, Foo/Bar in DEST/.Foo.Bar,\n"
	"flags and keywords in the file names, received dates as file times,\n"
	"and Dovecot's dovecot-uidlist, dovecot-keywords and subscriptions,\n"
	"so that Dovecot or `moonpost import maildir` keep UIDs, UIDVALIDITY\n"
	"and subscriptions.\n"
	"\n"
	"  -c, --config FILE   the config file (default " MP_CLI_DEFAULT_CONFIG
	")\n"
	"      --data-dir DIR  the data directory of `serve --dev` instead\n"
	"      --lf            write LF line ends (most Maildir tools expect\n"
	"                      them); by default messages keep the CRLF the\n"
	"                      store has, which Dovecot reads as well\n"
	"  -h, --help          show this help\n"
	"\n"
	"A '.' inside a mailbox name is written as \\2e, as Dovecot's\n"
	"listescape plugin does. Keywords past the 26 a Maildir can name are\n"
	"left off and reported (exit status 65).\n";

enum { OPT_DATA_DIR = 256, OPT_LF };

static const struct option long_options[] = {
	{"config", required_argument, NULL, 'c'},
	{"data-dir", required_argument, NULL, OPT_DATA_DIR},
	{"lf", no_argument, NULL, OPT_LF},
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
	mp_cli_error("export: %s; see 'moonpost export --help'", msg.data);
	mp_buf_free(&msg);
	return EX_USAGE;
}

/* The format, ADDRESS, then DEST. */
static int
take_positional(struct export_args *args, const char *arg, int *n_pos)
{
	if (*n_pos == 0 && strcmp(arg, "maildir") != 0)
		return usage_error("unknown format '%s' (only maildir)", arg);
	if (*n_pos == 1)
		args->address = arg;
	else if (*n_pos == 2)
		args->dest = arg;
	else if (*n_pos > 2)
		return usage_error("unexpected argument '%s'", arg);
	(*n_pos)++;
	return EX_OK;
}

static int
take_option(int c, char **argv, struct export_args *args, int *n_pos)
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
	case OPT_LF:
		args->lf = true;
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
parse_args(int argc, char **argv, struct export_args *args)
{
	int c, rc, n_pos = 0;

	memset(args, 0, sizeof(*args));
	optind = 0; /* as in cmd-user.c */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "-:c:h", long_options, NULL)) !=
	       -1) {
		if ((rc = take_option(c, argv, args, &n_pos)) != EX_OK)
			return rc;
	}
	if (n_pos == 0)
		return usage_error("missing format (maildir)");
	if (args->address == NULL)
		return usage_error("missing ADDRESS");
	if (args->dest == NULL)
		return usage_error("missing DEST");
	if (args->config_path != NULL && args->data_dir != NULL)
		return usage_error("-c and --data-dir exclude each other");
	if (args->config_path == NULL && args->data_dir == NULL)
		args->config_path = MP_CLI_DEFAULT_CONFIG;
	return EX_OK;
}

/* --- one message ---------------------------------------------------------- */

struct run {
	const struct export_args *args;
	struct ms_user *user;
	char host[64];
	struct mp_strlist problems;
	struct mp_buf summary;
	bool failed; /* DEST cannot be written: stop */
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

/* CRLF to LF; a CR at the end of a chunk waits for the next one. */
static size_t
to_lf(const char *in, size_t n, char *out, bool *pending_cr)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (*pending_cr && in[i] != '\n')
			out[o++] = '\r';
		*pending_cr = in[i] == '\r';
		if (!*pending_cr)
			out[o++] = in[i];
	}
	return o;
}

static bool
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Copies in to out, as LF with lf; *size_r gets the bytes written. */
static bool
copy_body(int in, int out, bool lf, uint64_t *size_r)
{
	char buf[32768], conv[32768 + 1];
	bool pending_cr = false;
	ssize_t n;

	*size_r = 0;
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		size_t o = (size_t)n;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return false;
		if (lf)
			o = to_lf(buf, (size_t)n, conv, &pending_cr);
		if (!write_all(out, lf ? conv : buf, o))
			return false;
		*size_r += o;
	}
	if (pending_cr && !write_all(out, "\r", 1))
		return false;
	*size_r += pending_cr;
	return true;
}

/* Writes the message to path with date as its time. */
static bool
write_message(struct run *run, int in, const char *path, int64_t date,
	      uint64_t *size_r)
{
	struct timespec times[2] = {{.tv_sec = date}, {.tv_sec = date}};
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	bool ok = fd >= 0 && copy_body(in, fd, run->args->lf, size_r) &&
		  futimens(fd, times) == 0;

	if (fd >= 0 && close(fd) != 0)
		ok = false;
	return ok;
}

static bool
has_keyword(const char *stored, const char *kw)
{
	size_t len = strlen(kw);

	for (const char *p = stored; (p = strstr(p, kw)) != NULL; p += len) {
		if ((p == stored || p[-1] == ' ') &&
		    (p[len] == ' ' || p[len] == '\0'))
			return true;
	}
	return false;
}

/* ":2," and the flags in ASCII order, as the Maildir specification asks:
 * system flags (capitals), then keyword letters. */
static void
put_info(struct mp_buf *name, const struct ms_msg *m,
	 const struct mp_strlist *letters)
{
	static const struct {
		char c;
		uint32_t flag;
	} flags[] = {{'D', MS_FLAG_DRAFT},
		     {'F', MS_FLAG_FLAGGED},
		     {'R', MS_FLAG_ANSWERED},
		     {'S', MS_FLAG_SEEN},
		     {'T', MS_FLAG_DELETED}};

	mp_buf_puts(name, ":2,");
	for (size_t i = 0; i < MP_NELEMS(flags); i++) {
		if (m->flags & flags[i].flag)
			mp_buf_append(name, &flags[i].c, 1);
	}
	for (size_t i = 0; i < letters->n; i++) {
		char c = (char)('a' + i);

		if (has_keyword(m->keywords, letters->v[i]))
			mp_buf_append(name, &c, 1);
	}
}

struct box {
	const char *name;
	const char *dir;
	struct ms_mailbox *mb;
	struct mp_strlist letters; /* keyword of letter a + i */
	struct mp_buf uidlist;
	size_t messages;
	uint64_t bytes;
};

/* The file name: S= is the size written, W= the size as CRLF (RFC822.SIZE)
 * when they differ. */
static char *
file_name(struct run *run, struct box *b, const struct ms_msg *m, uint64_t size)
{
	struct mp_buf name = {0};

	mp_buf_printf(&name, "%lld.M%uV%u.%s,S=%llu",
		      (long long)m->internal_date, m->uid,
		      ms_mailbox_uidvalidity(b->mb), run->host,
		      (unsigned long long)size);
	if (size != m->size)
		mp_buf_printf(&name, ",W=%llu", (unsigned long long)m->size);
	put_info(&name, m, &b->letters);
	return mp_buf_steal(&name);
}

static void
export_msg(struct run *run, struct box *b, const struct ms_msg *m)
{
	char *tmp = mp_xasprintf("%s/tmp/%u", b->dir, m->uid);
	char *name = NULL, *dest;
	struct ms_error err;
	uint64_t size = 0;
	int in = ms_message_open(b->mb, m->uid, &err);

	if (in < 0) {
		problem(run, b->name, "UID %u: %s", m->uid, err.text);
		free(tmp);
		return;
	}
	if (write_message(run, in, tmp, m->internal_date, &size)) {
		name = file_name(run, b, m, size);
		dest = mp_xasprintf("%s/cur/%s", b->dir, name);
		if (rename(tmp, dest) != 0)
			MP_FREE(name);
		free(dest);
	}
	if (name == NULL) {
		problem(run, b->name, "UID %u: %s", m->uid, strerror(errno));
		run->failed = true;
		unlink(tmp);
	} else {
		mp_buf_printf(&b->uidlist, "%u :%s\n", m->uid, name);
		b->messages++;
		b->bytes += size;
	}
	close(in);
	free(name);
	free(tmp);
}

/* --- one mailbox ---------------------------------------------------------- */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every keyword used, sorted; the first 26 get letters. */
static void
assign_letters(struct run *run, struct box *b, const struct ms_msg_list *list)
{
	struct mp_strlist all = {0};

	for (size_t i = 0; i < list->n; i++) {
		char *copy = mp_xstrdup(list->v[i].keywords), *save = NULL;

		for (char *w = strtok_r(copy, " ", &save); w != NULL;
		     w = strtok_r(NULL, " ", &save)) {
			if (!mp_strlist_contains(&all, w))
				mp_strlist_add(&all, w);
		}
		free(copy);
	}
	if (all.n > 0)
		qsort(all.v, all.n, sizeof(*all.v), cmp_str);
	for (size_t i = 0; i < all.n && i < KEYWORD_LETTERS; i++)
		mp_strlist_add(&b->letters, all.v[i]);
	if (all.n > KEYWORD_LETTERS)
		problem(run, b->name,
			"%zu keywords past the %d a Maildir can name are left "
			"off, from %s on",
			all.n - KEYWORD_LETTERS, KEYWORD_LETTERS,
			all.v[KEYWORD_LETTERS]);
	mp_strlist_free(&all);
}

static void
write_control(struct run *run, struct box *b, const char *file,
	      const struct mp_buf *text)
{
	char *path = mp_xasprintf("%s/%s", b->dir, file);
	char *error;

	if (!mp_maildir_write_file(path, text->data, text->len, &error)) {
		problem(run, b->name, "%s", error);
		run->failed = true;
		free(error);
	}
	free(path);
}

static void
write_keywords(struct run *run, struct box *b)
{
	struct mp_buf text = {0};

	for (size_t i = 0; i < b->letters.n; i++)
		mp_buf_printf(&text, "%zu %s\n", i, b->letters.v[i]);
	if (text.len > 0)
		write_control(run, b, "dovecot-keywords", &text);
	mp_buf_free(&text);
}

static void
export_messages(struct run *run, struct box *b)
{
	struct ms_msg_list list = {0};
	struct ms_status st;
	struct ms_error err;

	if (ms_mailbox_get_status(b->mb, &st, &err) != MS_OK ||
	    ms_mailbox_messages(b->mb, NULL, &list, &err) != MS_OK) {
		problem(run, b->name, "%s", err.text);
		return;
	}
	assign_letters(run, b, &list);
	mp_buf_printf(&b->uidlist, "3 V%u N%u\n", st.uidvalidity, st.uidnext);
	for (size_t i = 0; i < list.n && !run->failed; i++)
		export_msg(run, b, &list.v[i]);
	write_keywords(run, b);
	write_control(run, b, "dovecot-uidlist", &b->uidlist);
	ms_msg_list_free(&list);
}

static bool
make_maildir(const char *dir)
{
	static const char *const subs[] = {"cur", "new", "tmp"};
	bool ok = mkdir(dir, 0700) == 0 || errno == EEXIST;

	for (size_t i = 0; ok && i < MP_NELEMS(subs); i++) {
		char *path = mp_xasprintf("%s/%s", dir, subs[i]);

		ok = mkdir(path, 0700) == 0;
		free(path);
	}
	return ok;
}

static char *
folder_dir(const char *dest, const char *name)
{
	char *storage, *dir;

	if (strcmp(name, "INBOX") == 0)
		return mp_xstrdup(dest);
	storage = ms_maildir_name_encode(name, '.');
	dir = mp_xasprintf("%s/.%s", dest, storage);
	free(storage);
	return dir;
}

static void
export_mailbox(struct run *run, const char *name)
{
	char *dir = folder_dir(run->args->dest, name);
	struct box b = {.name = name, .dir = dir};
	struct ms_error err;

	if (!make_maildir(dir)) {
		problem(run, name, "%s: %s", dir, strerror(errno));
		run->failed = true;
	} else if ((b.mb = ms_mailbox_open(run->user, name, &err)) == NULL) {
		problem(run, name, "%s", err.text);
	} else {
		export_messages(run, &b);
	}
	mp_buf_printf(&run->summary, "%8zu %12llu  %s\n", b.messages,
		      (unsigned long long)b.bytes, name);
	ms_mailbox_close(&b.mb);
	mp_strlist_free(&b.letters);
	mp_buf_free(&b.uidlist);
	free(dir);
}

/* --- the whole run
 * ------------------------------------------------------------ */

static void
export_subscriptions(struct run *run)
{
	struct mp_strlist subs = {0};
	struct ms_error err;
	char *text, *path, *error;

	if (ms_subscriptions(run->user, &subs, &err) != MS_OK) {
		problem(run, "subscriptions", "%s", err.text);
		return;
	}
	text = mp_maildir_subscriptions_format(&subs);
	path = mp_xasprintf("%s/subscriptions", run->args->dest);
	if (!mp_maildir_write_file(path, text, strlen(text), &error)) {
		problem(run, "subscriptions", "%s", error);
		run->failed = true;
		free(error);
	}
	free(path);
	free(text);
	mp_strlist_free(&subs);
}

/* One syncfs(2) for the whole tree instead of an fsync per file. */
static void
sync_dest(struct run *run)
{
	int fd = open(run->args->dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || syncfs(fd) != 0) {
		problem(run, run->args->dest, "sync: %s", strerror(errno));
		run->failed = true;
	}
	if (fd >= 0)
		close(fd);
}

static void
safe_host(char *out, size_t size)
{
	char host[256] = "localhost";
	size_t n = 0;

	gethostname(host, sizeof(host) - 1);
	/* '/' and ':' cannot be in a Maildir name, ',' starts its fields. */
	for (const char *s = host; *s != '\0' && n + 1 < size; s++)
		out[n++] = strchr("/:,", *s) != NULL ? '_' : *s;
	out[n] = '\0';
}

static int
export_all(struct run *run)
{
	struct ms_mailbox_list boxes = {0};
	struct ms_error err;

	if (ms_mailbox_list(run->user, &boxes, &err) != MS_OK) {
		mp_cli_error("mailboxes of %s: %s", run->args->address,
			     err.text);
		return EX_TEMPFAIL;
	}
	/* A \Noselect mailbox holds nothing; its children's folders imply
	 * it. */
	for (size_t i = 0; i < boxes.n && !run->failed; i++) {
		if (!boxes.v[i].noselect)
			export_mailbox(run, boxes.v[i].name);
	}
	ms_mailbox_list_free(&boxes);
	if (!run->failed)
		export_subscriptions(run);
	if (!run->failed)
		sync_dest(run);
	return EX_OK;
}

static void
print_summary(struct run *run)
{
	printf("export of %s to %s:\n"
	       "  MESSAGES        BYTES  MAILBOX\n%s",
	       run->args->address, run->args->dest,
	       run->summary.data != NULL ? run->summary.data : "");
	if (run->problems.n == 0)
		return;
	printf("problems:\n");
	for (size_t i = 0; i < run->problems.n; i++)
		printf("  %s\n", run->problems.v[i]);
}

/* DEST must be new, or an empty directory. */
static int
prepare_dest(const char *dest)
{
	DIR *d = opendir(dest);
	struct dirent *e;
	bool empty = true;

	if (d == NULL && errno == ENOENT && mkdir(dest, 0700) == 0)
		return EX_OK;
	if (d == NULL) {
		mp_cli_error("%s: %s", dest, strerror(errno));
		return EX_CANTCREAT;
	}
	while (empty && (e = readdir(d)) != NULL)
		empty = strcmp(e->d_name, ".") == 0 ||
			strcmp(e->d_name, "..") == 0;
	closedir(d);
	if (empty)
		return EX_OK;
	mp_cli_error("%s exists and is not empty", dest);
	return EX_CANTCREAT;
}

static int
run_export(const struct mp_config *cfg, const struct export_args *args)
{
	struct run run = {.args = args};
	struct mp_maildir_account account;
	int rc = mp_maildir_account_open(mp_config_data_dir(cfg), args->address,
					 true, &account);

	if (rc != EX_OK || (rc = prepare_dest(args->dest)) != EX_OK) {
		mp_maildir_account_close(&account);
		return rc;
	}
	run.user = account.user;
	safe_host(run.host, sizeof(run.host));
	rc = export_all(&run);
	mp_maildir_account_close(&account);
	if (rc == EX_OK) {
		print_summary(&run);
		rc = run.failed           ? EX_IOERR
		     : run.problems.n > 0 ? EX_DATAERR
					  : EX_OK;
	}
	if (run.problems.n > 0)
		mp_cli_error("export: %zu problems; see the summary",
			     run.problems.n);
	mp_strlist_free(&run.problems);
	mp_buf_free(&run.summary);
	return rc;
}

int
mp_cmd_export(int argc, char **argv)
{
	struct export_args args;
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
	rc = run_export(cfg, &args);
	mp_config_unref(&cfg);
	if (fflush(stdout) != 0 && rc == EX_OK)
		rc = EX_IOERR;
	return rc;
}
