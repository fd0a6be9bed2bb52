/* test-import.c - `moonpost import maildir` and `export maildir`: Dovecot
 * and Courier trees in, UIDs, flags, keywords and subscriptions kept, a
 * second run adding nothing, the summary and exit codes, and the round
 * trip export -> import; the Maildir++ name codec. Fake config. */
#include "config.h"

#include <fcntl.h>
#include <ftw.h>
#include <glib.h>
#include <linux/capability.h>
#include <pty.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <moonpost/mailstore-import.h>
#include <moonpost/mailstore.h>

#include "cli.h"

#define ALICE "alice@example.test"
#define BOB   "bob@example.test"
#define CAROL "carol@example.test"

/* ---- fakes of the config and of cli.c ------------------------------------ */

struct mp_config {
	char *data_dir;
	char *passwd;
};

static const char *good_data_dir; /* where -c good.conf points */
static int live_configs;

struct mp_config *
mp_cli_load_config(const char *config_path, const char *data_dir,
		   char **error_r)
{
	struct mp_config *cfg;

	if (data_dir == NULL && strcmp(config_path, "good.conf") == 0)
		data_dir = good_data_dir;
	if (data_dir == NULL || !g_file_test(data_dir, G_FILE_TEST_IS_DIR)) {
		*error_r = mp_xasprintf("%s: cannot load",
					data_dir ? data_dir : config_path);
		return NULL;
	}
	cfg = mp_xcalloc(1, sizeof(*cfg));
	cfg->data_dir = mp_xstrdup(data_dir);
	cfg->passwd = mp_xasprintf("%s/passwd", data_dir);
	live_configs++;
	return cfg;
}

void
mp_config_unref(struct mp_config **cfg)
{
	if (*cfg == NULL)
		return;
	free((*cfg)->data_dir);
	free((*cfg)->passwd);
	MP_FREE(*cfg);
	live_configs--;
}

const char *
mp_config_data_dir(const struct mp_config *cfg)
{
	return cfg->data_dir;
}

const char *
mp_config_passwd_file(const struct mp_config *cfg)
{
	return cfg->passwd;
}

void
mp_cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("moonpost: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- files --------------------------------------------------------------- */

struct fixture {
	char *dir;
	char *data; /* the data directory (passwd, mail/) */
	char *src;  /* the Maildir to import */
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
put_file(const char *path, const char *text, int64_t mtime)
{
	GError *error = NULL;

	g_file_set_contents(path, text, -1, &error);
	g_assert_no_error(error);
	if (mtime != 0) {
		struct timespec t[2] = {{.tv_sec = mtime}, {.tv_sec = mtime}};

		g_assert_cmpint(utimensat(AT_FDCWD, path, t, 0), ==, 0);
	}
}

static G_GNUC_PRINTF(3, 4) void put(struct fixture *f, const char *text,
				    const char *fmt, ...)
{
	va_list ap;
	char *rel, *path;

	va_start(ap, fmt);
	rel = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	path = g_build_filename(f->src, rel, NULL);
	put_file(path, text, 0);
	g_free(path);
	g_free(rel);
}

static void
make_maildir(struct fixture *f, const char *folder)
{
	static const char *const subs[] = {"cur", "new", "tmp"};

	for (size_t i = 0; i < 3; i++) {
		char *p = g_build_filename(f->src, folder, subs[i], NULL);

		g_assert_cmpint(g_mkdir_with_parents(p, 0700), ==, 0);
		g_free(p);
	}
}

/* A message file with the given time. */
static void
put_msg(struct fixture *f, const char *rel, const char *text, int64_t mtime)
{
	char *path = g_build_filename(f->src, rel, NULL);

	put_file(path, text, mtime);
	g_free(path);
}

static void
fixture_setup(struct fixture *f, gconstpointer data)
{
	GError *error = NULL;
	char *passwd;

	f->dir = g_dir_make_tmp("test-import-XXXXXX", &error);
	g_assert_no_error(error);
	f->data = g_build_filename(f->dir, "data", NULL);
	f->src = g_build_filename(f->dir, "Maildir", NULL);
	g_assert_cmpint(g_mkdir_with_parents(f->data, 0700), ==, 0);
	passwd = g_build_filename(f->data, "passwd", NULL);
	put_file(passwd,
		 ALICE ":{PLAIN}x\n" BOB ":{PLAIN}x\n" CAROL ":{PLAIN}x\n", 0);
	g_free(passwd);
	good_data_dir = f->data;
}

static void
fixture_teardown(struct fixture *f, gconstpointer data)
{
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	g_free(f->dir);
	g_free(f->data);
	g_free(f->src);
}

/* ---- running a command --------------------------------------------------- */

struct run {
	int rc;
	char *out;
	char *err;
};

static char *
slurp_fd(int fd)
{
	GString *s = g_string_new(NULL);
	char buf[4096];
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		g_string_append_len(s, buf, n);
	close(fd);
	return g_string_free(s, FALSE);
}

static char *
read_text(const char *path)
{
	char *text = NULL;

	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	return text;
}

static int
tmp_fd(void)
{
	char *name = NULL;
	int fd = g_file_open_tmp("test-import-out-XXXXXX", &name, NULL);

	g_assert_cmpint(fd, >=, 0);
	unlink(name);
	g_free(name);
	return fd;
}

typedef int cmd_fn(int argc, char **argv);

/* Runs cmd with argv (NULL-ended) and stdout, stderr to files; stderr to
 * err_fd instead when it is >= 0 (a terminal). */
static struct run
run_argv(cmd_fn *cmd, const char *const *argv, int err_fd)
{
	int out = tmp_fd(), err = err_fd >= 0 ? -1 : tmp_fd();
	int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
	int argc = 0;
	struct run r;

	while (argv[argc] != NULL)
		argc++;
	fflush(stdout);
	dup2(out, STDOUT_FILENO);
	dup2(err_fd >= 0 ? err_fd : err, STDERR_FILENO);
	r.rc = cmd(argc, (char **)argv);
	fflush(stdout);
	dup2(saved_out, STDOUT_FILENO);
	dup2(saved_err, STDERR_FILENO);
	close(saved_out);
	close(saved_err);
	r.out = slurp_fd(out);
	r.err = err >= 0 ? slurp_fd(err) : g_strdup("");
	g_test_message("rc=%d out=[%s] err=[%s]", r.rc, r.out, r.err);
	g_assert_cmpint(live_configs, ==, 0);
	return r;
}

#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

static void
run_free(struct run *r)
{
	g_free(r->out);
	g_free(r->err);
}

/* Fails unless text holds piece. */
static void
assert_has(const char *text, const char *piece)
{
	if (strstr(text, piece) == NULL)
		g_error("no [%s] in:\n%s", piece, text);
}

static struct run
import_into(struct fixture *f, const char *src, const char *address)
{
	return run_argv(
		mp_cmd_import,
		ARGV("import", "maildir", src, address, "--data-dir", f->data),
		-1);
}

static void
import_ok(struct fixture *f, const char *src, const char *address)
{
	struct run r = import_into(f, src, address);

	g_assert_cmpint(r.rc, ==, EX_OK);
	g_assert_cmpstr(r.err, ==, "");
	g_assert_null(strstr(r.out, "problems:"));
	g_assert_null(strstr(r.out, "MISMATCH"));
	run_free(&r);
}

/* ---- reading the store --------------------------------------------------- */

struct store {
	struct ms_store *store;
	struct ms_user *u;
	struct ms_error err;
};

static void
store_open(struct store *s, struct fixture *f, const char *address)
{
	char *root = g_build_filename(f->data, "mail", NULL);
	struct ms_store_settings set = {.root = root};

	s->store = ms_store_new(&set, &s->err);
	g_assert_nonnull(s->store);
	s->u = ms_user_open(s->store, address, &s->err);
	g_assert_nonnull(s->u);
	g_free(root);
}

static void
store_close(struct store *s)
{
	ms_user_unref(&s->u);
	ms_store_free(&s->store);
}

static char *
body_of(struct ms_mailbox *mb, uint32_t uid)
{
	struct ms_error err;
	int fd = ms_message_open(mb, uid, &err);

	g_assert_cmpint(fd, >=, 0);
	return slurp_fd(fd);
}

static void
snapshot_mailbox(GString *s, struct ms_user *u,
		 const struct ms_mailbox_info *info)
{
	struct ms_error err;
	struct ms_mailbox *mb = ms_mailbox_open(u, info->name, &err);
	struct ms_msg_list list = {0};
	struct ms_status st;

	g_assert_nonnull(mb);
	g_assert_cmpint(ms_mailbox_get_status(mb, &st, &err), ==, MS_OK);
	g_assert_cmpint(ms_mailbox_messages(mb, NULL, &list, &err), ==, MS_OK);
	g_string_append_printf(s, "%s use=%u sub=%d V=%u N=%u\n", info->name,
			       info->special_use, info->subscribed,
			       st.uidvalidity, st.uidnext);
	for (size_t i = 0; i < list.n; i++) {
		const struct ms_msg *m = &list.v[i];
		char *body = body_of(mb, m->uid);
		char *sum = g_compute_checksum_for_string(G_CHECKSUM_SHA256,
							  body, -1);

		g_string_append_printf(
			s, "  %u flags=%u kw=[%s] date=%lld size=%llu %.16s\n",
			m->uid, m->flags, m->keywords,
			(long long)m->internal_date,
			(unsigned long long)m->size, sum);
		g_free(sum);
		g_free(body);
	}
	ms_msg_list_free(&list);
	ms_mailbox_close(&mb);
}

/* Everything the round trip must keep, as text; skip (may be NULL) is a
 * mailbox left out. */
static char *
snapshot(struct fixture *f, const char *address, const char *skip)
{
	struct store s;
	struct ms_mailbox_list boxes = {0};
	struct mp_strlist subs = {0};
	GString *out = g_string_new(NULL);

	store_open(&s, f, address);
	g_assert_cmpint(ms_mailbox_list(s.u, &boxes, &s.err), ==, MS_OK);
	for (size_t i = 0; i < boxes.n; i++) {
		if (skip == NULL || strcmp(boxes.v[i].name, skip) != 0)
			snapshot_mailbox(out, s.u, &boxes.v[i]);
	}
	g_assert_cmpint(ms_subscriptions(s.u, &subs, &s.err), ==, MS_OK);
	g_string_append(out, "subscribed:");
	for (size_t i = 0; i < subs.n; i++)
		g_string_append_printf(out, " [%s]", subs.v[i]);
	mp_strlist_free(&subs);
	ms_mailbox_list_free(&boxes);
	store_close(&s);
	return g_string_free(out, FALSE);
}

/* One message's state; NULL meta->keywords when it is not there. */
static bool
get_msg(struct fixture *f, const char *address, const char *mailbox,
	uint32_t uid, struct ms_msg *out, char **kw_r)
{
	struct store s;
	struct ms_msg_list list = {0};
	struct ms_mailbox *mb;
	bool found;

	store_open(&s, f, address);
	mb = ms_mailbox_open(s.u, mailbox, &s.err);
	g_assert_nonnull(mb);
	found = ms_message_get(mb, uid, &list, NULL, &s.err) == MS_OK;
	if (found) {
		*out = list.v[0];
		*kw_r = g_strdup(list.v[0].keywords);
		out->keywords = NULL;
	}
	ms_msg_list_free(&list);
	ms_mailbox_close(&mb);
	store_close(&s);
	return found;
}

static struct ms_status
status_of(struct fixture *f, const char *address, const char *mailbox)
{
	struct store s;
	struct ms_status st;

	store_open(&s, f, address);
	g_assert_cmpint(ms_mailbox_status(s.u, mailbox, &st, &s.err), ==,
			MS_OK);
	store_close(&s);
	return st;
}

static void
check_msg(struct fixture *f, const char *mailbox, uint32_t uid, uint32_t flags,
	  const char *kw, int64_t date, size_t size)
{
	struct ms_msg m = {0};
	char *keywords = NULL;

	g_assert_true(get_msg(f, ALICE, mailbox, uid, &m, &keywords));
	g_assert_cmpuint(m.flags, ==, flags);
	g_assert_cmpstr(keywords, ==, kw);
	if (date != 0)
		g_assert_cmpint(m.internal_date, ==, date);
	g_assert_cmpuint(m.size, ==, size);
	g_free(keywords);
}

/* ---- the Dovecot tree ---------------------------------------------------- */

#define MSG_LF   "From: a@example.test\nSubject: lf\n\nline one\nline two\n"
#define MSG_LF2  "Subject: second\n\nhello\n"
#define MSG_CRLF "From: b@example.test\r\nSubject: crlf\r\n\r\nalready crlf\r\n"
#define MSG_NEW  "Subject: new\n\nunseen\n"

static size_t
crlf_size(const char *text)
{
	size_t n = strlen(text);

	for (const char *p = text; *p != '\0'; p++)
		n += *p == '\n' && (p == text || p[-1] != '\r');
	return n;
}

/* INBOX with dovecot-uidlist v3 and keywords, a stale uidlist entry and a
 * file it does not list; Entwürfe with v1; .A and .A.B without uidlists;
 * a directory that is no folder; Courier subscriptions. */
static void
build_tree(struct fixture *f)
{
	char *notafolder;

	make_maildir(f, "");
	put(f,
	    "3 V1234567 N20 G0123456789abcdef0123456789abcdef\n"
	    "3 :1000.M1P1.host,S=53:2,S\n"
	    "5 :0999.M1P1.host:2,S\n"
	    "7 W61 :1001.M2P1.host,S=22:2,R\n"
	    "9 :1003.M4P1.host\n",
	    "dovecot-uidlist");
	put(f, "0 $Junk\n1 NonJunk\n3 Work\n", "dovecot-keywords");
	put_msg(f, "cur/1000.M1P1.host,S=53:2,S", MSG_LF, 1500000000);
	put_msg(f, "cur/1001.M2P1.host,S=22:2,FRad", MSG_LF2, 1500000100);
	put_msg(f, "cur/1002.M3P1.host:2,", MSG_CRLF, 1500000200);
	put_msg(f, "new/1003.M4P1.host", MSG_NEW, 1500000300);

	make_maildir(f, ".Entw&APw-rfe");
	put(f, "1 555 4\n1 2000.E.host\n2 2001.F.host:2,D\n",
	    ".Entw&APw-rfe/dovecot-uidlist");
	put_msg(f, ".Entw&APw-rfe/cur/2000.E.host:2,D", MSG_LF, 1400000000);
	put_msg(f, ".Entw&APw-rfe/cur/2001.F.host:2,T", MSG_LF2, 1400000001);

	make_maildir(f, ".A");
	put_msg(f, ".A/cur/3000.G.host:2,S", MSG_LF2, 1300000000);
	make_maildir(f, ".A.B");
	put_msg(f, ".A.B/new/3001.H.host", MSG_CRLF, 1300000001);

	notafolder = g_build_filename(f->src, ".notafolder", NULL);
	g_assert_cmpint(g_mkdir_with_parents(notafolder, 0700), ==, 0);
	g_free(notafolder);
	put(f, "INBOX\nINBOX.A.B\nINBOX.Entw&APw-rfe\n",
	    "courierimapsubscribed");
}

static void
check_tree_imported(struct fixture *f)
{
	struct ms_status st = status_of(f, ALICE, "INBOX");

	g_assert_cmpuint(st.uidvalidity, ==, 1234567);
	g_assert_cmpuint(st.messages, ==, 4);
	g_assert_cmpuint(st.uidnext, ==, 21);
	/* new/ is recent; with one first-recent mark per mailbox, so is
	 * what comes after it (UID 20). */
	g_assert_cmpuint(st.recent, ==, 2);
	check_msg(f, "INBOX", 3, MS_FLAG_SEEN, "", 1500000000,
		  crlf_size(MSG_LF));
	/* The name in the uidlist has older flags: the base name matches. */
	check_msg(f, "INBOX", 7, MS_FLAG_FLAGGED | MS_FLAG_ANSWERED,
		  "$Junk Work", 1500000100, crlf_size(MSG_LF2));
	check_msg(f, "INBOX", 9, 0, "", 1500000300, crlf_size(MSG_NEW));
	/* Not listed: after the old server's NEXTUID. */
	check_msg(f, "INBOX", 20, 0, "", 1500000200, strlen(MSG_CRLF));

	st = status_of(f, ALICE, "Entwürfe");
	g_assert_cmpuint(st.uidvalidity, ==, 555);
	g_assert_cmpuint(st.uidnext, ==, 4);
	g_assert_cmpuint(st.recent, ==, 0);
	check_msg(f, "Entwürfe", 1, MS_FLAG_DRAFT, "", 1400000000,
		  crlf_size(MSG_LF));
	check_msg(f, "Entwürfe", 2, MS_FLAG_DELETED, "", 1400000001,
		  crlf_size(MSG_LF2));

	g_assert_cmpuint(status_of(f, ALICE, "A").messages, ==, 1);
	check_msg(f, "A/B", 1, 0, "", 1300000001, strlen(MSG_CRLF));
}

/* ---- tests: names -------------------------------------------------------- */

static void
test_names(void)
{
	static const struct {
		const char *storage, *name;
	} both[] = {
		{"Entw&APw-rfe", "Entwürfe"},
		{"A.B", "A/B"},
		{"x&-y", "x&y"},
		{"&ZeVnLIqe-", "日本語"},
		{"&2D3eAA-", "\xf0\x9f\x98\x80"},
		{"v1\\2e2.sub", "v1.2/sub"},
		{"a\\5c41", "a\\41"},
		{"INBOX", "INBOX"},
		{"Caf&AOk- &- Bar.&AOQA9gD8-", "Café & Bar/äöü"},
	};
	static const char *const bad[] = {
		"&Jjo",  "a..b", ".a",    "a.",    "&AC8-",  "x\\2fy",
		"&2D0-", "",     "&AAA-", "&3gA-", "&AGEA-",
	};

	for (size_t i = 0; i < G_N_ELEMENTS(both); i++) {
		char *name = ms_maildir_name_decode(both[i].storage, '.');
		char *storage = ms_maildir_name_encode(both[i].name, '.');

		g_assert_cmpstr(name, ==, both[i].name);
		g_assert_cmpstr(storage, ==, both[i].storage);
		free(name);
		free(storage);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		char *name = ms_maildir_name_decode(bad[i], '.');

		g_test_message("bad: %s", bad[i]);
		g_assert_null(name);
	}
	/* Dovecot's UTF-8 folder names, and TAB between levels. */
	char *name = ms_maildir_name_decode("Gr\xc3\xbc\xc3\x9f"
					    "e\tx.y",
					    '\t');
	g_assert_cmpstr(name, ==, "Grüße/x.y");
	free(name);
	name = ms_maildir_name_encode("a/b.c", '\t');
	g_assert_cmpstr(name, ==, "a\tb\\2ec");
	free(name);
}

/* ---- tests: import ------------------------------------------------------- */

static void
test_import_dovecot(struct fixture *f, gconstpointer data)
{
	struct run r;
	char *before, *after;

	build_tree(f);
	r = import_into(f, f->src, ALICE);
	g_assert_cmpint(r.rc, ==, EX_OK);
	/* Not a terminal: no progress line, nothing on stderr at all. */
	g_assert_cmpstr(r.err, ==, "");
	g_assert_true(g_str_has_prefix(r.out, "import of "));
	g_assert_nonnull(strstr(r.out, "  ok        INBOX\n"));
	g_assert_nonnull(strstr(r.out, "  ok        Entwürfe\n"));
	g_assert_nonnull(strstr(r.out, "  ok        A/B\n"));
	g_assert_null(strstr(r.out, "notafolder"));
	g_assert_null(strstr(r.out, "problems:"));
	run_free(&r);
	check_tree_imported(f);

	before = snapshot(f, ALICE, NULL);
	g_assert_nonnull(strstr(before, "subscribed: [INBOX] [A/B] [Archive] "
					"[Drafts] [Entwürfe] [Junk] [Sent] "
					"[Trash]"));
	/* Again: nothing new, and the summary still matches. */
	r = import_into(f, f->src, ALICE);
	g_assert_cmpint(r.rc, ==, EX_OK);
	assert_has(r.out, "  160        0  ok        INBOX\n");
	run_free(&r);
	after = snapshot(f, ALICE, NULL);
	g_assert_cmpstr(after, ==, before);
	g_free(before);
	g_free(after);
}

static void
test_import_summary(struct fixture *f, gconstpointer data)
{
	struct run r;
	char *line;
	size_t raw, crlf;

	build_tree(f);
	r = import_into(f, f->src, ALICE);
	/* SOURCE BYTES AS-CRLF STORED BYTES NEW RESULT MAILBOX */
	raw = strlen(MSG_LF) + strlen(MSG_LF2) + strlen(MSG_CRLF) +
	      strlen(MSG_NEW);
	crlf = crlf_size(MSG_LF) + crlf_size(MSG_LF2) + strlen(MSG_CRLF) +
	       crlf_size(MSG_NEW);
	line = g_strdup_printf("%8d %12zu %12zu %8d %12zu %8d  %-8s  %s\n", 4,
			       raw, crlf, 4, crlf, 4, "ok", "INBOX");
	assert_has(r.out, line);
	g_free(line);
	run_free(&r);

	/* A message expunged since is missing from what the source has. */
	{
		struct store s;
		struct ms_mailbox *mb;
		struct ms_uid_range one = {3, 3};
		struct ms_uidset set = {&one, 1};
		struct ms_change_list ch = {0}, mod = {0};

		store_open(&s, f, ALICE);
		mb = ms_mailbox_open(s.u, "INBOX", &s.err);
		g_assert_cmpint(ms_message_store(mb, &set, MS_FLAGS_ADD,
						 MS_FLAG_DELETED, NULL, 0, &ch,
						 &mod, &s.err),
				==, MS_OK);
		ms_change_list_free(&ch);
		ms_change_list_free(&mod);
		g_assert_cmpint(ms_message_expunge(mb, NULL, &ch, &s.err), ==,
				MS_OK);
		ms_change_list_free(&ch);
		ms_mailbox_close(&mb);
		store_close(&s);
	}
	r = import_into(f, f->src, ALICE);
	g_assert_cmpint(r.rc, ==, EX_DATAERR);
	assert_has(r.out, "MISMATCH  INBOX\n");
	assert_has(r.out, "problems:\n");
	assert_has(r.out, "INBOX: cur/1000.M1P1.host,S=53:2,S: not in the "
			  "store (UID 3 is gone)\n");
	assert_has(r.out, "INBOX: 4 messages in the source, 3 of them in "
			  "the store\n");
	assert_has(r.err, "problems; see the summary");
	/* It did not come back. */
	g_assert_cmpuint(status_of(f, ALICE, "INBOX").messages, ==, 3);
	run_free(&r);
}

static void
test_import_dovecot_v2_subscriptions(struct fixture *f, gconstpointer data)
{
	char *snap;

	build_tree(f);
	char *courier = g_build_filename(f->src, "courierimapsubscribed", NULL);

	g_assert_cmpint(unlink(courier), ==, 0);
	g_free(courier);
	put(f, "V\t2\n\nEntw&APw-rfe\nA\tB\nSent\n", "subscriptions");
	import_ok(f, f->src, ALICE);
	snap = snapshot(f, ALICE, NULL);
	/* The file rules the imported mailboxes (INBOX and A are not in it);
	 * the others keep theirs. */
	g_assert_nonnull(strstr(snap, "subscribed: [A/B] [Archive] [Drafts] "
				      "[Entwürfe] [Junk] [Sent] [Trash]"));
	g_free(snap);
}

static void
test_import_plain_maildir(struct fixture *f, gconstpointer data)
{
	char *snap;

	/* No control files at all: new UIDs, everything subscribed. */
	make_maildir(f, "");
	make_maildir(f, ".Lists.moonpost");
	put_msg(f, "cur/1.x:2,S", MSG_LF, 1000000000);
	put_msg(f, "new/2.x", MSG_LF2, 1000000001);
	put_msg(f, ".Lists.moonpost/cur/3.x:2,", MSG_CRLF, 1000000002);
	import_ok(f, f->src, ALICE);
	g_assert_cmpuint(status_of(f, ALICE, "INBOX").recent, ==, 1);
	import_ok(f, f->src, ALICE);
	snap = snapshot(f, ALICE, NULL);
	g_assert_nonnull(strstr(snap, "Lists/moonpost use=0 sub=1"));
	/* Made as a parent, not imported: left unsubscribed. */
	g_assert_nonnull(strstr(snap, "Lists use=0 sub=0"));
	g_assert_cmpuint(status_of(f, ALICE, "INBOX").messages, ==, 2);
	/* The second run took nothing, and \Recent from nothing. */
	g_assert_cmpuint(status_of(f, ALICE, "INBOX").recent, ==, 1);
	g_free(snap);
}

/* Courier's courierimapuiddb; dovecot-uidlist files with a broken line and
 * with a broken header: warnings, and what can be kept is. */
static void
test_import_courier_and_broken(struct fixture *f, gconstpointer data)
{
	struct run r;

	make_maildir(f, "");
	put(f, "1 777 5\n3 4000.C.host\n", "courierimapuiddb");
	put_msg(f, "cur/4000.C.host:2,S", MSG_LF, 1000000000);
	make_maildir(f, ".Half");
	put(f, "3 V99 N5\n2 :ok.file:2,\nnonsense\n", ".Half/dovecot-uidlist");
	put_msg(f, ".Half/cur/ok.file:2,S", MSG_LF, 1000000001);
	make_maildir(f, ".Broken");
	put(f, "7 what\n1 :x.file\n", ".Broken/dovecot-uidlist");
	put_msg(f, ".Broken/cur/x.file:2,", MSG_LF, 1000000002);
	r = import_into(f, f->src, ALICE);
	g_assert_cmpint(r.rc, ==, EX_OK);
	assert_has(r.err, "/.Half/dovecot-uidlist: 1 malformed lines ignored");
	assert_has(r.err, "/.Broken/dovecot-uidlist: unknown header; its UIDs "
			  "are not kept");
	run_free(&r);
	g_assert_cmpuint(status_of(f, ALICE, "INBOX").uidvalidity, ==, 777);
	g_assert_cmpuint(status_of(f, ALICE, "INBOX").uidnext, ==, 5);
	check_msg(f, "INBOX", 3, MS_FLAG_SEEN, "", 1000000000,
		  crlf_size(MSG_LF));
	g_assert_cmpuint(status_of(f, ALICE, "Half").uidvalidity, ==, 99);
	check_msg(f, "Half", 2, MS_FLAG_SEEN, "", 1000000001,
		  crlf_size(MSG_LF));
	g_assert_cmpuint(status_of(f, ALICE, "Broken").uidvalidity, !=, 1);
	check_msg(f, "Broken", 1, 0, "", 1000000002, crlf_size(MSG_LF));
}

/* INBOX already has mail under its own UIDVALIDITY: the imported messages
 * get new UIDs, with a warning, and a second run still adds nothing. */
static void
test_import_uidvalidity_taken(struct fixture *f, gconstpointer data)
{
	struct store s;
	struct ms_append *a;
	uint32_t uid, uidv, own;
	struct run r;

	store_open(&s, f, ALICE);
	a = ms_append_begin(s.u, "INBOX", &s.err);
	g_assert_nonnull(a);
	ms_append_write(a, MSG_CRLF, strlen(MSG_CRLF), &s.err);
	g_assert_cmpint(ms_append_commit(&a, &uid, &own, &s.err), ==, MS_OK);
	store_close(&s);

	build_tree(f);
	r = import_into(f, f->src, ALICE);
	g_assert_cmpint(r.rc, ==, EX_OK);
	assert_has(r.err, "INBOX already holds messages under another "
			  "UIDVALIDITY");
	run_free(&r);
	uidv = status_of(f, ALICE, "INBOX").uidvalidity;
	g_assert_cmpuint(uidv, ==, own);
	g_assert_cmpuint(status_of(f, ALICE, "INBOX").messages, ==, 5);
	r = import_into(f, f->src, ALICE);
	g_assert_cmpint(r.rc, ==, EX_OK);
	run_free(&r);
	g_assert_cmpuint(status_of(f, ALICE, "INBOX").messages, ==, 5);
	/* Entwürfe was empty: it took the source's UIDVALIDITY. */
	g_assert_cmpuint(status_of(f, ALICE, "Entwürfe").uidvalidity, ==, 555);
}

/* Drops the capabilities that let root read any file. */
static void
drop_dac_override(void)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct caps[2];

	if (syscall(SYS_capget, &hdr, caps) != 0)
		_exit(99);
	for (int i = 0; i < 2; i++) {
		caps[i].effective &= ~((1u << CAP_DAC_OVERRIDE) |
				       (1u << CAP_DAC_READ_SEARCH));
	}
	if (syscall(SYS_capset, &hdr, caps) != 0)
		_exit(99);
}

/* An unreadable file is reported; the others are imported. Run in a child
 * so that root can be made to fail reading it; the child leaves the
 * summary in a file. */
static void
test_import_unreadable(struct fixture *f, gconstpointer data)
{
	char *bad = g_build_filename(f->src, "cur",
				     "1001.M2P1.host,S=22:2,FRad", NULL);
	char *out = g_build_filename(f->dir, "child.out", NULL), *text;
	int status;
	pid_t pid;
	struct run r;

	build_tree(f);
	g_assert_cmpint(chmod(bad, 0), ==, 0);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		drop_dac_override();
		r = import_into(f, f->src, ALICE);
		put_file(out, r.out, 0);
		_exit(r.rc);
	}
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFEXITED(status));
	g_assert_cmpint(WEXITSTATUS(status), ==, EX_DATAERR);
	text = read_text(out);
	assert_has(text, "INBOX: cur/1001.M2P1.host,S=22:2,FRad: cannot "
			 "read: Permission denied\n");
	assert_has(text, "MISMATCH  INBOX\n");
	assert_has(text, "  ok        Entwürfe\n");
	g_free(text);
	g_assert_cmpuint(status_of(f, ALICE, "INBOX").messages, ==, 3);
	g_assert_cmpuint(status_of(f, ALICE, "Entwürfe").messages, ==, 2);

	/* Readable again: the next run brings it in, under a new UID since
	 * 7 is below UIDNEXT now, and says so. */
	chmod(bad, 0600);
	r = import_into(f, f->src, ALICE);
	g_assert_cmpint(r.rc, ==, EX_OK);
	assert_has(r.err, "INBOX: 1 messages got new UIDs");
	run_free(&r);
	check_msg(f, "INBOX", 21, MS_FLAG_FLAGGED | MS_FLAG_ANSWERED,
		  "$Junk Work", 1500000100, crlf_size(MSG_LF2));
	import_ok(f, f->src, ALICE);
	g_free(bad);
	g_free(out);
}

static void
test_import_bad_folders(struct fixture *f, gconstpointer data)
{
	struct run r;

	build_tree(f);
	make_maildir(f, ".bad&name");
	make_maildir(f, ".star*name");
	put_msg(f, ".star*name/cur/1.x:2,", MSG_LF, 0);
	r = import_into(f, f->src, ALICE);
	g_assert_cmpint(r.rc, ==, EX_DATAERR);
	assert_has(r.out, "/.bad&name: not a valid folder name\n");
	assert_has(r.out, "star*name: mailbox name has invalid characters");
	assert_has(r.out, "  FAILED    star*name\n");
	/* The rest went in. */
	assert_has(r.out, "  ok        Entwürfe\n");
	run_free(&r);
	check_tree_imported(f);
}

static void
test_import_errors(struct fixture *f, gconstpointer data)
{
	struct run r;
	char *missing = g_build_filename(f->dir, "nope", NULL);

	build_tree(f);
	r = run_argv(mp_cmd_import, ARGV("import", "--help"), -1);
	g_assert_cmpint(r.rc, ==, EX_OK);
	g_assert_true(
		g_str_has_prefix(r.out, "usage: moonpost import maildir"));
	run_free(&r);
	r = run_argv(mp_cmd_import, ARGV("import", "mbox", "x", ALICE), -1);
	g_assert_cmpint(r.rc, ==, EX_USAGE);
	assert_has(r.err, "unknown format 'mbox'");
	run_free(&r);
	r = run_argv(mp_cmd_import, ARGV("import", "maildir", f->src), -1);
	g_assert_cmpint(r.rc, ==, EX_USAGE);
	assert_has(r.err, "missing ADDRESS");
	run_free(&r);
	r = run_argv(mp_cmd_import,
		     ARGV("import", "maildir", f->src, ALICE, "-c", "good.conf",
			  "--data-dir", f->data),
		     -1);
	g_assert_cmpint(r.rc, ==, EX_USAGE);
	run_free(&r);
	r = run_argv(mp_cmd_import,
		     ARGV("import", "maildir", f->src, ALICE, "-c", "bad.conf"),
		     -1);
	g_assert_cmpint(r.rc, ==, EX_CONFIG);
	run_free(&r);
	r = run_argv(mp_cmd_import,
		     ARGV("import", "maildir", f->src, "not an address",
			  "--data-dir", f->data),
		     -1);
	g_assert_cmpint(r.rc, ==, EX_DATAERR);
	run_free(&r);
	r = import_into(f, missing, ALICE);
	g_assert_cmpint(r.rc, ==, EX_NOINPUT);
	assert_has(r.err, "is not a Maildir");
	run_free(&r);
	/* No such account: refused, unless forced. */
	r = import_into(f, f->src, "dave@example.test");
	g_assert_cmpint(r.rc, ==, EX_NOUSER);
	assert_has(r.err, "--force");
	run_free(&r);
	r = run_argv(mp_cmd_import,
		     ARGV("import", "maildir", f->src, "Dave@Example.TEST",
			  "-c", "good.conf", "--force"),
		     -1);
	g_assert_cmpint(r.rc, ==, EX_OK);
	run_free(&r);
	g_free(missing);
}

static void
test_import_progress(struct fixture *f, gconstpointer data)
{
	int master, slave;
	char buf[4096];
	ssize_t n;
	struct run r;

	build_tree(f);
	g_assert_cmpint(openpty(&master, &slave, NULL, NULL, NULL), ==, 0);
	r = run_argv(mp_cmd_import,
		     ARGV("import", "maildir", f->src, ALICE, "--data-dir",
			  f->data, "--quiet"),
		     slave);
	g_assert_cmpint(r.rc, ==, EX_OK);
	run_free(&r);
	fcntl(master, F_SETFL, O_NONBLOCK);
	g_assert_cmpint(read(master, buf, sizeof(buf)), <, 0);

	r = run_argv(
		mp_cmd_import,
		ARGV("import", "maildir", f->src, BOB, "--data-dir", f->data),
		slave);
	g_assert_cmpint(r.rc, ==, EX_OK);
	run_free(&r);
	n = 0;
	for (ssize_t got;
	     (got = read(master, buf + n, sizeof(buf) - 1 - n)) > 0;)
		n += got;
	g_assert_cmpint(n, >, 0);
	buf[n] = '\0';
	assert_has(buf, "\rimporting INBOX: 4/4 messages");
	assert_has(buf, "\rimporting Entwürfe: 2/2 messages");
	/* The line is wiped at the end. */
	g_assert_true(g_str_has_suffix(buf, "\r\033[K"));
	close(master);
	close(slave);
}

/* ---- tests: export ------------------------------------------------------- */

static char *
dest_file(const char *dest, const char *folder, const char *name)
{
	return g_build_filename(dest, folder, name, NULL);
}

/* Adds what the Dovecot tree lacks: a '.' in a name, an unsubscribed
 * default, keywords, a \Noselect parent. */
static void
enrich(struct fixture *f)
{
	struct store s;
	struct ms_mailbox *mb;
	struct mp_strlist kws = {0};
	struct ms_uid_range one = {20, 20};
	struct ms_uidset set = {&one, 1};
	struct ms_change_list ch = {0}, mod = {0};
	struct ms_append *a;
	uint32_t uid, uidv;

	store_open(&s, f, ALICE);
	g_assert_cmpint(ms_mailbox_create(s.u, "v1.2/x&y", 0, &s.err), ==,
			MS_OK);
	g_assert_cmpint(ms_mailbox_create(s.u, "gone/child", 0, &s.err), ==,
			MS_OK);
	g_assert_cmpint(ms_mailbox_delete(s.u, "gone", &s.err), ==, MS_OK);
	g_assert_cmpint(ms_mailbox_subscribe(s.u, "Junk", false, &s.err), ==,
			MS_OK);
	a = ms_append_begin(s.u, "v1.2/x&y", &s.err);
	ms_append_write(a, MSG_LF, strlen(MSG_LF), &s.err);
	mp_strlist_add(&kws, "$Label1");
	ms_append_set(a, MS_FLAG_SEEN, &kws, 1600000000, 0, &s.err);
	g_assert_cmpint(ms_append_commit(&a, &uid, &uidv, &s.err), ==, MS_OK);
	mb = ms_mailbox_open(s.u, "INBOX", &s.err);
	g_assert_cmpint(ms_message_store(mb, &set, MS_FLAGS_ADD, MS_FLAG_SEEN,
					 &kws, 0, &ch, &mod, &s.err),
			==, MS_OK);
	ms_change_list_free(&ch);
	ms_change_list_free(&mod);
	ms_mailbox_close(&mb);
	mp_strlist_free(&kws);
	store_close(&s);
}

static struct run
export_to(struct fixture *f, const char *address, const char *dest, bool lf)
{
	if (lf)
		return run_argv(mp_cmd_export,
				ARGV("export", "maildir", address, dest,
				     "--data-dir", f->data, "--lf"),
				-1);
	return run_argv(
		mp_cmd_export,
		ARGV("export", "maildir", address, dest, "--data-dir", f->data),
		-1);
}

static void
check_file(const char *dest, const char *folder, const char *name,
	   const char *want)
{
	char *path = dest_file(dest, folder, name);
	char *text = read_text(path);

	if (g_str_has_suffix(want, "...")) {
		char *prefix = g_strndup(want, strlen(want) - 3);

		g_assert_true(g_str_has_prefix(text, prefix));
		g_free(prefix);
	} else {
		g_assert_cmpstr(text, ==, want);
	}
	g_free(text);
	g_free(path);
}

static void
check_exported_tree(const char *dest)
{
	char *path;

	check_file(dest, "", "dovecot-uidlist",
		   "3 V1234567 N21\n3 :1500000000.M3V1234567....");
	check_file(dest, "", "dovecot-keywords",
		   "0 $Junk\n1 $Label1\n2 Work\n");
	check_file(dest, "", "subscriptions",
		   "V\t2\n\nINBOX\nA\tB\nArchive\nDrafts\nEntw&APw-rfe\n"
		   "Sent\nTrash\n");
	check_file(dest, ".Entw&APw-rfe", "dovecot-uidlist",
		   "3 V555 N4\n1 :1400000000.M1V555....");
	path = dest_file(dest, ".v1\\2e2.x&-y", "dovecot-uidlist");
	g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));
	g_free(path);
	/* A \Noselect mailbox has no folder; its child has. */
	path = dest_file(dest, ".gone", "cur");
	g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
	g_free(path);
	path = dest_file(dest, ".gone.child", "cur");
	g_assert_true(g_file_test(path, G_FILE_TEST_IS_DIR));
	g_free(path);
}

/* The file of UID uid in folder's cur/, found by its name's prefix. */
static char *
find_exported(const char *dest, const char *folder, const char *prefix)
{
	char *dir = dest_file(dest, folder, "cur");
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *name;
	char *found = NULL;

	g_assert_nonnull(d);
	while ((name = g_dir_read_name(d)) != NULL) {
		if (g_str_has_prefix(name, prefix))
			found = g_build_filename(dir, name, NULL);
	}
	g_dir_close(d);
	g_free(dir);
	g_assert_nonnull(found);
	return found;
}

static void
test_export_roundtrip(struct fixture *f, gconstpointer data)
{
	char *dest = g_build_filename(f->dir, "export", NULL);
	char *dest_lf = g_build_filename(f->dir, "export-lf", NULL);
	char *alice, *bob, *carol, *path, *text, *sizes;
	struct stat st;
	struct run r;

	build_tree(f);
	import_ok(f, f->src, ALICE);
	enrich(f);
	r = export_to(f, ALICE, dest, false);
	g_assert_cmpint(r.rc, ==, EX_OK);
	g_assert_cmpstr(r.err, ==, "");
	assert_has(r.out, "       4 ");
	run_free(&r);
	check_exported_tree(dest);

	/* Flags in ASCII order, then keyword letters; the file's time is
	 * the internal date. */
	path = find_exported(dest, "", "1500000100.M7V1234567.");
	g_assert_true(g_str_has_suffix(path, ":2,FRac"));
	g_assert_cmpint(stat(path, &st), ==, 0);
	g_assert_cmpint(st.st_mtime, ==, 1500000100);
	text = read_text(path);
	g_assert_nonnull(strstr(text, "\r\n")); /* CRLF kept */
	g_free(text);
	g_free(path);
	path = find_exported(dest, ".v1\\2e2.x&-y", "1600000000.M1V");
	g_assert_true(g_str_has_suffix(path, ":2,Sa"));
	g_free(path);

	/* Into a fresh account: the same mailboxes, UIDVALIDITYs, UIDs,
	 * flags, keywords, dates, bodies and subscriptions. The \Noselect
	 * parent comes back as an ordinary (empty) mailbox. */
	import_ok(f, dest, BOB);
	alice = snapshot(f, ALICE, "gone");
	bob = snapshot(f, BOB, "gone");
	g_test_message("%s", alice);
	g_assert_cmpstr(bob, ==, alice);
	g_assert_cmpuint(status_of(f, BOB, "gone").messages, ==, 0);

	/* LF files, with their CRLF size in W=; CRLF again once imported. */
	r = export_to(f, ALICE, dest_lf, true);
	g_assert_cmpint(r.rc, ==, EX_OK);
	run_free(&r);
	path = find_exported(dest_lf, "", "1500000200.M20V1234567.");
	text = read_text(path);
	g_assert_null(strchr(text, '\r'));
	sizes = g_strdup_printf(",S=%zu,W=%zu:2,", strlen(text),
				strlen(MSG_CRLF));
	g_assert_nonnull(strstr(path, sizes));
	g_free(sizes);
	g_free(text);
	g_free(path);
	import_ok(f, dest_lf, CAROL);
	carol = snapshot(f, CAROL, "gone");
	g_assert_cmpstr(carol, ==, alice);

	/* Exporting again into a non-empty directory is refused. */
	r = export_to(f, ALICE, dest, false);
	g_assert_cmpint(r.rc, ==, EX_CANTCREAT);
	assert_has(r.err, "exists and is not empty");
	run_free(&r);
	/* So is an account without mail; nothing is created for it. */
	r = export_to(f, "nobody@example.test", dest_lf, false);
	g_assert_cmpint(r.rc, ==, EX_NOUSER);
	run_free(&r);
	path = g_build_filename(f->data, "mail", "example.test", "nobody",
				NULL);
	g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
	g_free(path);
	g_free(alice);
	g_free(bob);
	g_free(carol);
	g_free(dest);
	g_free(dest_lf);
}

static void
test_export_errors(struct fixture *f, gconstpointer data)
{
	struct run r = run_argv(mp_cmd_export, ARGV("export", "-h"), -1);

	g_assert_cmpint(r.rc, ==, EX_OK);
	g_assert_true(
		g_str_has_prefix(r.out, "usage: moonpost export maildir"));
	run_free(&r);
	r = run_argv(mp_cmd_export, ARGV("export", "maildir", ALICE), -1);
	g_assert_cmpint(r.rc, ==, EX_USAGE);
	assert_has(r.err, "missing DEST");
	run_free(&r);
	r = run_argv(mp_cmd_export,
		     ARGV("export", "maildir", ALICE, "/x", "--lf=1"), -1);
	g_assert_cmpint(r.rc, ==, EX_USAGE);
	run_free(&r);
}

/* Keywords past the 26 letters are reported, not silently lost. */
static void
test_export_too_many_keywords(struct fixture *f, gconstpointer data)
{
	char *dest = g_build_filename(f->dir, "export", NULL);
	struct mp_strlist kws = {0};
	struct store s;
	struct ms_append *a;
	uint32_t uid, uidv;
	struct run r;

	for (int i = 0; i < 28; i++) {
		char kw[16];

		snprintf(kw, sizeof(kw), "k%02d", i);
		mp_strlist_add(&kws, kw);
	}
	store_open(&s, f, ALICE);
	a = ms_append_begin(s.u, "INBOX", &s.err);
	ms_append_write(a, MSG_CRLF, strlen(MSG_CRLF), &s.err);
	ms_append_set(a, 0, &kws, 0, 0, &s.err);
	g_assert_cmpint(ms_append_commit(&a, &uid, &uidv, &s.err), ==, MS_OK);
	store_close(&s);
	mp_strlist_free(&kws);
	r = export_to(f, ALICE, dest, false);
	g_assert_cmpint(r.rc, ==, EX_DATAERR);
	assert_has(r.out, "INBOX: 2 keywords past the 26 a Maildir can name "
			  "are left off, from k26 on\n");
	run_free(&r);
	g_free(dest);
}

static void
add(const char *name, void (*fn)(struct fixture *, gconstpointer))
{
	g_test_add(name, struct fixture, NULL, fixture_setup, fn,
		   fixture_teardown);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/import/names", test_names);
	add("/import/dovecot", test_import_dovecot);
	add("/import/summary", test_import_summary);
	add("/import/subscriptions-v2", test_import_dovecot_v2_subscriptions);
	add("/import/plain-maildir", test_import_plain_maildir);
	add("/import/courier-and-broken", test_import_courier_and_broken);
	add("/import/uidvalidity-taken", test_import_uidvalidity_taken);
	add("/import/unreadable", test_import_unreadable);
	add("/import/bad-folders", test_import_bad_folders);
	add("/import/errors", test_import_errors);
	add("/import/progress", test_import_progress);
	add("/export/roundtrip", test_export_roundtrip);
	add("/export/errors", test_export_errors);
	add("/export/too-many-keywords", test_export_too_many_keywords);
	return g_test_run();
}
