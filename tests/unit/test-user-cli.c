/* test-user-cli.c - `moonpost user` exit codes and effects, fake config. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "cli.h"
#include "passwd.h"
#include "password.h"

/* ---- fakes of the config and of cli.c ------------------------------------ */

struct mp_config {
	char *passwd;
	char *data_dir;
	struct mp_strlist domains;
};

/* What the last mp_cli_load_config() call was given. */
static char *seen_config_path, *seen_data_dir;
/* The directory a good -c config points at. */
static const char *fake_data_dir;
static int live_configs;

static struct mp_config *
fake_config(const char *data_dir)
{
	struct mp_config *cfg = mp_xcalloc(1, sizeof(*cfg));

	cfg->data_dir = mp_xstrdup(data_dir);
	cfg->passwd = mp_xasprintf("%s/passwd", data_dir);
	mp_strlist_add(&cfg->domains, "example.test");
	mp_strlist_add(&cfg->domains, "example.org");
	live_configs++;
	return cfg;
}

struct mp_config *
mp_cli_load_config(const char *config_path, const char *data_dir,
		   char **error_r)
{
	g_free(seen_config_path);
	g_free(seen_data_dir);
	seen_config_path = g_strdup(config_path);
	seen_data_dir = g_strdup(data_dir);
	if (data_dir != NULL) {
		if (!g_file_test(data_dir, G_FILE_TEST_IS_DIR)) {
			*error_r =
				mp_xasprintf("%s: no such directory", data_dir);
			return NULL;
		}
		return fake_config(data_dir);
	}
	if (strcmp(config_path, "good.conf") == 0)
		return fake_config(fake_data_dir);
	*error_r = mp_xasprintf("%s:1: syntax error", config_path);
	return NULL;
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

void
mp_config_unref(struct mp_config **cfg)
{
	if (*cfg == NULL)
		return;
	free((*cfg)->passwd);
	free((*cfg)->data_dir);
	mp_strlist_free(&(*cfg)->domains);
	MP_FREE(*cfg);
	live_configs--;
}

const char *
mp_config_passwd_file(const struct mp_config *cfg)
{
	return cfg->passwd;
}

const char *
mp_config_data_dir(const struct mp_config *cfg)
{
	return cfg->data_dir;
}

const struct mp_strlist *
mp_config_domains(const struct mp_config *cfg)
{
	return &cfg->domains;
}

bool
mp_config_is_local_domain(const struct mp_config *cfg, const char *domain)
{
	return mp_strlist_contains_icase(&cfg->domains, domain);
}

/* ---- running the command ------------------------------------------------- */

struct run {
	int rc;
	char *out;
	char *err;
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static char *
slurp_fd(int fd)
{
	GString *s = g_string_new(NULL);
	char buf[512];
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		g_string_append_len(s, buf, n);
	close(fd);
	return g_string_free(s, FALSE);
}

/* stdin from len bytes of input (NULL: /dev/null, not a terminal). */
static int
stdin_from(const char *input, size_t len)
{
	int p[2];

	if (input == NULL)
		return open("/dev/null", O_RDONLY);
	g_assert_cmpint(pipe(p), ==, 0);
	/* Small inputs fit in the pipe buffer, so no writer thread. */
	g_assert_cmpint(write(p[1], input, len), ==, (ssize_t)len);
	close(p[1]);
	return p[0];
}

/* An anonymous file to catch stdout or stderr. */
static int
tmp_fd(void)
{
	GError *error = NULL;
	char *name = NULL;
	int fd = g_file_open_tmp("test-user-cli-out-XXXXXX", &name, &error);

	g_assert_no_error(error);
	unlink(name);
	g_free(name);
	return fd;
}

static void
redirect(int fd, int target, int *saved)
{
	*saved = dup(target);
	g_assert_cmpint(dup2(fd, target), ==, target);
}

static void
restore(int saved, int target)
{
	dup2(saved, target);
	close(saved);
}

/* Runs `user ARGS...` (NULL-terminated) with input on stdin. */
static struct run
run_userv(const char *input, size_t len, va_list ap)
{
	GPtrArray *args = g_ptr_array_new_with_free_func(g_free);
	int in = stdin_from(input, len), out = tmp_fd(), err = tmp_fd();
	int saved_in, saved_out, saved_err;
	struct run r;
	const char *a;

	g_ptr_array_add(args, g_strdup("user"));
	while ((a = va_arg(ap, const char *)) != NULL)
		g_ptr_array_add(args, g_strdup(a));
	g_ptr_array_add(args, NULL);

	fflush(stdout);
	redirect(in, STDIN_FILENO, &saved_in);
	redirect(out, STDOUT_FILENO, &saved_out);
	redirect(err, STDERR_FILENO, &saved_err);
	r.rc = mp_cmd_user((int)args->len - 1, (char **)args->pdata);
	fflush(stdout);
	fflush(stderr);
	restore(saved_in, STDIN_FILENO);
	restore(saved_out, STDOUT_FILENO);
	restore(saved_err, STDERR_FILENO);
	close(in);
	r.out = slurp_fd(out);
	r.err = slurp_fd(err);
	g_test_message("rc=%d out=[%s] err=[%s]", r.rc, r.out, r.err);
	g_assert_cmpint(live_configs, ==, 0);
	g_ptr_array_free(args, TRUE);
	return r;
}

static G_GNUC_NULL_TERMINATED struct run
run_user(const char *input, ...)
{
	struct run r;
	va_list ap;

	va_start(ap, input);
	r = run_userv(input, input != NULL ? strlen(input) : 0, ap);
	va_end(ap);
	return r;
}

/* run_user() for input that holds a NUL. */
static G_GNUC_NULL_TERMINATED struct run
run_user_n(const char *input, size_t len, ...)
{
	struct run r;
	va_list ap;

	va_start(ap, len);
	r = run_userv(input, len, ap);
	va_end(ap);
	return r;
}

static void
run_free(struct run *r)
{
	g_free(r->out);
	g_free(r->err);
}

/* Runs and checks the exit code and a piece of stderr (NULL: empty). */
static G_GNUC_NULL_TERMINATED void
check_run(int rc, const char *err, const char *input, ...)
{
	struct run r;
	va_list ap;

	va_start(ap, input);
	r = run_userv(input, input != NULL ? strlen(input) : 0, ap);
	va_end(ap);
	g_assert_cmpint(r.rc, ==, rc);
	if (err == NULL)
		g_assert_cmpstr(r.err, ==, "");
	else
		g_assert_nonnull(strstr(r.err, err));
	run_free(&r);
}

#define CHECK_RUN(rc, err, input, ...)                                         \
	check_run(rc, err, input, __VA_ARGS__, (const char *)NULL)

struct fixture {
	char *dir;
	char *passwd;
};

static void
fixture_setup(struct fixture *f, gconstpointer data)
{
	GError *error = NULL;

	f->dir = g_dir_make_tmp("test-user-cli-XXXXXX", &error);
	g_assert_no_error(error);
	f->passwd = g_build_filename(f->dir, "passwd", NULL);
	fake_data_dir = f->dir;
}

static void
fixture_teardown(struct fixture *f, gconstpointer data)
{
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	g_free(f->dir);
	g_free(f->passwd);
	g_clear_pointer(&seen_config_path, g_free);
	g_clear_pointer(&seen_data_dir, g_free);
}

static char *
hash_of(struct fixture *f, const char *address)
{
	struct mp_passwd pw = {0};
	const struct mp_passwd_entry *e;
	char *error = NULL, *hash;

	if (!mp_passwd_read(f->passwd, &pw, &error))
		g_error("%s", error);
	e = mp_passwd_find(&pw, address);
	hash = e != NULL ? g_strdup(e->hash) : NULL;
	mp_passwd_free(&pw);
	return hash;
}

static void
add_account(struct fixture *f, const char *address, const char *password)
{
	char *line = g_strconcat(password, "\n", NULL);

	CHECK_RUN(EX_OK, NULL, line, "add", address, "--data-dir", f->dir,
		  "--password-stdin");
	g_free(line);
}

/* ---- tests --------------------------------------------------------------- */

static void
test_help(struct fixture *f, gconstpointer data)
{
	struct run r = run_user(NULL, "--help", NULL);

	g_assert_cmpint(r.rc, ==, EX_OK);
	g_assert_true(g_str_has_prefix(r.out, "usage: moonpost user add"));
	g_assert_nonnull(strstr(r.out, "--no-scram"));
	g_assert_cmpstr(r.err, ==, "");
	run_free(&r);
	r = run_user(NULL, "add", "-h", NULL);
	g_assert_cmpint(r.rc, ==, EX_OK);
	g_assert_true(g_str_has_prefix(r.out, "usage:"));
	run_free(&r);
}

static void
test_usage_errors(struct fixture *f, gconstpointer data)
{
	const char *d = f->dir;

	CHECK_RUN(EX_USAGE, "missing action", NULL, "--data-dir", d);
	CHECK_RUN(EX_USAGE, "unknown action 'frob'", NULL, "frob");
	CHECK_RUN(EX_USAGE, "unknown option '--frob'", NULL, "list", "--frob");
	CHECK_RUN(EX_USAGE, "unknown option '-x'", NULL, "list", "-x");
	CHECK_RUN(EX_USAGE, "option '-c' needs a value", NULL, "list", "-c");
	CHECK_RUN(EX_USAGE, "option '--data-dir' needs a value", NULL, "list",
		  "--data-dir");
	CHECK_RUN(EX_USAGE, "exclude each other", NULL, "list", "-c",
		  "good.conf", "--data-dir", d);
	CHECK_RUN(EX_USAGE, "missing ADDRESS", NULL, "add", "--data-dir", d);
	CHECK_RUN(EX_USAGE, "missing ADDRESS", NULL, "del");
	CHECK_RUN(EX_USAGE, "unexpected argument 'a@example.test'", NULL,
		  "list", "a@example.test");
	CHECK_RUN(EX_USAGE, "unexpected argument 'b@example.test'", NULL, "del",
		  "a@example.test", "b@example.test");
	CHECK_RUN(EX_USAGE, "--scheme is only for add", NULL, "passwd",
		  "a@example.test", "--scheme", "bcrypt");
	CHECK_RUN(EX_USAGE, "unknown scheme 'md5'", NULL, "add",
		  "a@example.test", "--scheme", "md5");
	CHECK_RUN(EX_USAGE, "--password-stdin is only for", NULL, "del",
		  "a@example.test", "--password-stdin");
	CHECK_RUN(EX_USAGE, "--no-scram is only for add and passwd", NULL,
		  "del", "a@example.test", "--no-scram");
	CHECK_RUN(EX_USAGE, "--no-scram is only for add and passwd", NULL,
		  "list", "--no-scram");
	/* The hint is one line, after "moonpost: ". */
	{
		struct run r = run_user(NULL, "frob", NULL);

		g_assert_cmpstr(r.err, ==,
				"moonpost: user: unknown action 'frob'; see "
				"'moonpost user --help'\n");
		g_assert_cmpstr(r.out, ==, "");
		run_free(&r);
	}
	g_assert_false(g_file_test(f->passwd, G_FILE_TEST_EXISTS));
}

static void
test_config_errors(struct fixture *f, gconstpointer data)
{
	char *missing = g_build_filename(f->dir, "nope", NULL);

	/* Neither -c nor --data-dir: the default config file. */
	CHECK_RUN(EX_CONFIG, "moonpost: " MP_CLI_DEFAULT_CONFIG ":1: syntax",
		  NULL, "list");
	g_assert_cmpstr(seen_config_path, ==, MP_CLI_DEFAULT_CONFIG);
	g_assert_null(seen_data_dir);
	CHECK_RUN(EX_CONFIG, "bad.conf:1: syntax error", NULL, "list", "-c",
		  "bad.conf");
	CHECK_RUN(EX_CONFIG, "no such directory", NULL, "list", "--data-dir",
		  missing);
	g_assert_null(seen_config_path);
	g_assert_cmpstr(seen_data_dir, ==, missing);
	CHECK_RUN(EX_OK, NULL, NULL, "--config=good.conf", "list");
	g_assert_cmpstr(seen_config_path, ==, "good.conf");
	g_free(missing);
}

static void
test_add(struct fixture *f, gconstpointer data)
{
	struct run r;
	char *hash;

	/* Options before, between and after; the address is lower-cased. */
	r = run_user("s3cret pass\n", "--data-dir", f->dir, "add",
		     "--password-stdin", "Alice@Example.TEST", NULL);
	g_assert_cmpint(r.rc, ==, EX_OK);
	g_assert_cmpstr(r.out, ==, "added alice@example.test\n");
	g_assert_cmpstr(r.err, ==, "");
	run_free(&r);
	hash = hash_of(f, "alice@example.test");
	g_assert_true(g_str_has_prefix(hash, "{YESCRYPT}$y$"));
	g_assert_true(mp_password_verify("s3cret pass", hash));
	g_free(hash);
	g_assert_cmpint(g_file_test(f->passwd, G_FILE_TEST_EXISTS), ==, TRUE);

	CHECK_RUN(EX_DATAERR, "alice@example.test already exists", "x\n", "add",
		  "ALICE@example.test", "--data-dir", f->dir,
		  "--password-stdin");
	CHECK_RUN(EX_DATAERR,
		  "example.net is not a local domain (local domains: "
		  "example.test, example.org)",
		  "x\n", "add", "bob@example.net", "--data-dir", f->dir,
		  "--password-stdin");
	CHECK_RUN(EX_DATAERR, "invalid address 'bob'", "x\n", "add", "bob",
		  "--data-dir", f->dir, "--password-stdin");
	CHECK_RUN(EX_DATAERR, "invalid address", "x\n", "add",
		  "b:ob@example.test", "--data-dir", f->dir,
		  "--password-stdin");
	g_assert_null(hash_of(f, "bob@example.net"));
}

struct scheme_case {
	const char *scheme;
	const char *prefix;
};

static const struct scheme_case scheme_cases[] = {
	{"yescrypt", "{YESCRYPT}$y$"},
	{"bcrypt", "{BLF-CRYPT}$2b$"},
	{"sha512-crypt", "{SHA512-CRYPT}$6$"},
};

static void
test_add_schemes(struct fixture *f, gconstpointer data)
{
	for (size_t i = 0; i < G_N_ELEMENTS(scheme_cases); i++) {
		char *address = g_strdup_printf("u%zu@example.org", i);
		char *hash;

		CHECK_RUN(EX_OK, NULL, "pw\n", "add", address, "--scheme",
			  scheme_cases[i].scheme, "--data-dir", f->dir,
			  "--password-stdin");
		hash = hash_of(f, address);
		g_assert_true(g_str_has_prefix(hash, scheme_cases[i].prefix));
		g_assert_true(mp_password_verify("pw", hash));
		g_free(hash);
		g_free(address);
	}
}

static void
test_password_input(struct fixture *f, gconstpointer data)
{
	char *long_pw = g_strnfill(MP_PASSWORD_MAX + 1, 'p');
	char *long_line = g_strconcat(long_pw, "\n", NULL);
	char *max_line = g_strconcat(long_pw + 1, "\r\n", NULL);
	struct run r;
	char *hash;

	CHECK_RUN(EX_DATAERR, "empty password", "\n", "add", "a@example.test",
		  "--data-dir", f->dir, "--password-stdin");
	CHECK_RUN(EX_DATAERR, "empty password", "", "add", "a@example.test",
		  "--data-dir", f->dir, "--password-stdin");
	CHECK_RUN(EX_DATAERR, "password longer than 511 bytes", long_line,
		  "add", "a@example.test", "--data-dir", f->dir,
		  "--password-stdin");
	CHECK_RUN(EX_USAGE, "--password-stdin", NULL, "add", "a@example.test",
		  "--data-dir", f->dir);
	g_assert_false(g_file_test(f->passwd, G_FILE_TEST_EXISTS));

	/* 511 bytes is allowed, even before a "\r\n"; so is a missing
	 * newline. */
	CHECK_RUN(EX_OK, NULL, max_line, "add", "a@example.test", "--data-dir",
		  f->dir, "--password-stdin");
	hash = hash_of(f, "a@example.test");
	g_assert_true(mp_password_verify(long_pw + 1, hash));
	g_free(hash);
	r = run_user_n("ab\0cd\n", 6, "add", "d@example.test", "--data-dir",
		       f->dir, "--password-stdin", NULL);
	g_assert_cmpint(r.rc, ==, EX_DATAERR);
	g_assert_nonnull(strstr(r.err, "NUL byte in the password"));
	run_free(&r);
	CHECK_RUN(EX_OK, NULL, "crlf\r\nsecond line\n", "add", "b@example.test",
		  "--data-dir", f->dir, "--password-stdin");
	hash = hash_of(f, "b@example.test");
	g_assert_true(mp_password_verify("crlf", hash));
	g_free(hash);
	CHECK_RUN(EX_OK, NULL, "no-newline", "add", "c@example.test",
		  "--data-dir", f->dir, "--password-stdin");
	hash = hash_of(f, "c@example.test");
	g_assert_true(mp_password_verify("no-newline", hash));
	g_free(hash);
	g_free(long_pw);
	g_free(long_line);
	g_free(max_line);
}

/* The credential of scheme in the account of address; caller frees. */
static char *
credential_of(struct fixture *f, const char *address, const char *scheme)
{
	struct mp_passwd pw = {0};
	struct mp_str cred;
	char *error = NULL, *copy;

	if (!mp_passwd_read(f->passwd, &pw, &error))
		g_error("%s", error);
	cred = mp_passwd_credential(mp_passwd_find(&pw, address), scheme);
	copy = cred.p != NULL ? g_strndup(cred.p, cred.len) : NULL;
	mp_passwd_free(&pw);
	return copy;
}

/* Both a hash and a SCRAM secret by default; the hash alone with
 * --no-scram. Each verifies the password on its own. */
static void
test_add_scram(struct fixture *f, gconstpointer data)
{
	struct mp_scram_secret secret;
	const char *error = NULL;
	char *hash, *scram;

	add_account(f, "a@example.test", "s3cret");
	hash = hash_of(f, "a@example.test");
	g_assert_true(g_regex_match_simple(
		"^\\{YESCRYPT\\}\\$y\\$\\S+ \\{SCRAM-SHA-256\\}4096,\\S+$",
		hash, 0, 0));
	g_free(hash);
	scram = credential_of(f, "a@example.test", "SCRAM-SHA-256");
	g_assert_nonnull(scram);
	g_assert_true(
		mp_scram_secret_parse(scram, strlen(scram), &secret, &error));
	g_assert_true(mp_password_verify("s3cret", scram));
	g_assert_false(mp_password_verify("s3creT", scram));
	g_free(scram);
	scram = credential_of(f, "a@example.test", "YESCRYPT");
	g_assert_true(mp_password_verify("s3cret", scram));
	g_free(scram);

	CHECK_RUN(EX_OK, NULL, "pw\n", "add", "b@example.test", "--no-scram",
		  "--scheme", "bcrypt", "--data-dir", f->dir,
		  "--password-stdin");
	hash = hash_of(f, "b@example.test");
	g_assert_true(g_str_has_prefix(hash, "{BLF-CRYPT}$2b$"));
	g_assert_null(strchr(hash, ' '));
	g_assert_null(credential_of(f, "b@example.test", "SCRAM-SHA-256"));
	g_free(hash);

	/* passwd replaces both, or drops the secret with --no-scram. */
	CHECK_RUN(EX_OK, NULL, "new\n", "passwd", "a@example.test",
		  "--data-dir", f->dir, "--password-stdin");
	scram = credential_of(f, "a@example.test", "SCRAM-SHA-256");
	g_assert_true(mp_password_verify("new", scram));
	g_assert_false(mp_password_verify("s3cret", scram));
	g_free(scram);
	CHECK_RUN(EX_OK, NULL, "newer\n", "passwd", "a@example.test",
		  "--no-scram", "--data-dir", f->dir, "--password-stdin");
	g_assert_null(credential_of(f, "a@example.test", "SCRAM-SHA-256"));
	hash = hash_of(f, "a@example.test");
	g_assert_true(mp_password_verify("newer", hash));
	g_free(hash);
	CHECK_RUN(EX_OK, NULL, "pw\n", "passwd", "b@example.test", "--data-dir",
		  f->dir, "--password-stdin");
	scram = credential_of(f, "b@example.test", "SCRAM-SHA-256");
	g_assert_true(mp_password_verify("pw", scram));
	g_free(scram);
}

static void
test_passwd(struct fixture *f, gconstpointer data)
{
	struct run r;
	char *hash;

	add_account(f, "a@example.test", "old");
	r = run_user("new\n", "passwd", "A@example.test", "--data-dir", f->dir,
		     "--password-stdin", NULL);
	g_assert_cmpint(r.rc, ==, EX_OK);
	g_assert_cmpstr(r.out, ==, "changed the password of a@example.test\n");
	run_free(&r);
	hash = hash_of(f, "a@example.test");
	g_assert_true(mp_password_verify("new", hash));
	g_assert_false(mp_password_verify("old", hash));
	g_free(hash);

	CHECK_RUN(EX_NOUSER, "no account b@example.test in", "x\n", "passwd",
		  "b@example.test", "--data-dir", f->dir, "--password-stdin");
	CHECK_RUN(EX_DATAERR, "invalid address", "x\n", "passwd", "nope",
		  "--data-dir", f->dir, "--password-stdin");
	g_assert_null(hash_of(f, "b@example.test"));
}

static void
test_del(struct fixture *f, gconstpointer data)
{
	struct run r;
	char *want;

	add_account(f, "a@example.test", "pw");
	add_account(f, "b@example.test", "pw");
	r = run_user(NULL, "del", "A@Example.test", "--data-dir", f->dir, NULL);
	want = g_strdup_printf(
		"removed a@example.test (its mail in %s is kept)\n", f->dir);
	g_assert_cmpint(r.rc, ==, EX_OK);
	g_assert_cmpstr(r.out, ==, want);
	g_free(want);
	run_free(&r);
	g_assert_null(hash_of(f, "a@example.test"));
	g_assert_nonnull(strstr(want = hash_of(f, "b@example.test"), "$y$"));
	g_free(want);

	CHECK_RUN(EX_NOUSER, "no account a@example.test", NULL, "del",
		  "a@example.test", "--data-dir", f->dir);
	CHECK_RUN(EX_DATAERR, "invalid address", NULL, "del", "@example.test",
		  "--data-dir", f->dir);
}

static void
test_list(struct fixture *f, gconstpointer data)
{
	GError *error = NULL;
	struct run r;

	r = run_user(NULL, "list", "--data-dir", f->dir, NULL);
	g_assert_cmpint(r.rc, ==, EX_OK);
	g_assert_cmpstr(r.out, ==, "");
	run_free(&r);

	g_file_set_contents(f->passwd,
			    "# zed@example.test:{CRYPT}x\n"
			    "carol@example.test:{CRYPT}x\n"
			    "\n"
			    "Alice@example.test:{CRYPT}x\n"
			    "bob@example.org:{CRYPT}x\n",
			    -1, &error);
	g_assert_no_error(error);
	r = run_user(NULL, "-c", "good.conf", "list", NULL);
	g_assert_cmpint(r.rc, ==, EX_OK);
	g_assert_cmpstr(r.out, ==,
			"alice@example.test\nbob@example.org\n"
			"carol@example.test\n");
	g_assert_cmpstr(r.err, ==, "");
	run_free(&r);
}

static void
test_bad_file(struct fixture *f, gconstpointer data)
{
	GError *error = NULL;
	char *want =
		g_strdup_printf("moonpost: %s:2: expected address", f->passwd);

	g_file_set_contents(f->passwd, "# ok\ngarbage\n", -1, &error);
	g_assert_no_error(error);
	CHECK_RUN(EX_DATAERR, want, NULL, "list", "--data-dir", f->dir);
	CHECK_RUN(EX_DATAERR, want, "pw\n", "add", "a@example.test",
		  "--data-dir", f->dir, "--password-stdin");
	CHECK_RUN(EX_DATAERR, want, NULL, "del", "a@example.test", "--data-dir",
		  f->dir);
	g_free(want);
	/* Untouched. */
	{
		char *text = NULL;

		g_file_get_contents(f->passwd, &text, NULL, NULL);
		g_assert_cmpstr(text, ==, "# ok\ngarbage\n");
		g_free(text);
	}
}

/* A directory where the passwd file should be: reading fails. */
static void
test_io_errors(struct fixture *f, gconstpointer data)
{
	char *sub = g_build_filename(f->dir, "sub", NULL);

	g_assert_cmpint(mkdir(f->passwd, 0700), ==, 0);
	CHECK_RUN(EX_IOERR, f->passwd, NULL, "list", "--data-dir", f->dir);
	CHECK_RUN(EX_IOERR, f->passwd, "pw\n", "add", "a@example.test",
		  "--data-dir", f->dir, "--password-stdin");

	/* No write permission on the directory: the lock file cannot be
	 * created. Root ignores permissions, so only as a normal user. */
	g_assert_cmpint(mkdir(sub, 0500), ==, 0);
	if (geteuid() != 0) {
		CHECK_RUN(EX_CANTCREAT, "passwd.lock", "pw\n", "add",
			  "a@example.test", "--data-dir", sub,
			  "--password-stdin");
	} else {
		g_test_message("running as root: lock test skipped");
	}
	g_free(sub);
}

/* The password never shows up in any output. */
static void
test_no_password_echo(struct fixture *f, gconstpointer data)
{
	const char *secret = "Sup3rS3cretValue";
	char *line = g_strconcat(secret, "\n", NULL);
	struct run r;

	r = run_user(line, "add", "a@example.test", "--data-dir", f->dir,
		     "--password-stdin", NULL);
	g_assert_null(strstr(r.out, secret));
	g_assert_null(strstr(r.err, secret));
	run_free(&r);
	r = run_user(line, "add", "a@example.test", "--data-dir", f->dir,
		     "--password-stdin", NULL);
	g_assert_cmpint(r.rc, ==, EX_DATAERR);
	g_assert_null(strstr(r.err, secret));
	run_free(&r);
	g_free(line);
}

static void
add_test(const char *name, void (*fn)(struct fixture *, gconstpointer))
{
	g_test_add(name, struct fixture, NULL, fixture_setup, fn,
		   fixture_teardown);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	add_test("/cli/user/help", test_help);
	add_test("/cli/user/usage-errors", test_usage_errors);
	add_test("/cli/user/config-errors", test_config_errors);
	add_test("/cli/user/add", test_add);
	add_test("/cli/user/add/schemes", test_add_schemes);
	add_test("/cli/user/add/password-input", test_password_input);
	add_test("/cli/user/add/scram", test_add_scram);
	add_test("/cli/user/passwd", test_passwd);
	add_test("/cli/user/del", test_del);
	add_test("/cli/user/list", test_list);
	add_test("/cli/user/bad-file", test_bad_file);
	add_test("/cli/user/io-errors", test_io_errors);
	add_test("/cli/user/no-password-echo", test_no_password_echo);
	return g_test_run();
}
