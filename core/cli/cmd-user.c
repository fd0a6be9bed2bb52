/* cmd-user.c - `moonpost user add|passwd|del|list`: edit the account file. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "passwd.h"
#include "password.h"

/* A password line: the password, a '\r' a Windows pipe may add, a NUL. */
#define PASSWORD_BUF (MP_PASSWORD_MAX + 2)

enum user_action { ACTION_ADD, ACTION_PASSWD, ACTION_DEL, ACTION_LIST };

struct user_args {
	enum user_action action;
	const char *address; /* NULL for list; lower case once checked */
	const char *config_path;
	const char *data_dir;
	const char *scheme; /* NULL: yescrypt */
	bool password_stdin;
	bool no_scram; /* store the hash alone, without a SCRAM secret */
};

static const char usage_text[] =
	"usage: moonpost user add ADDRESS [--password-stdin] [--scheme "
	"SCHEME] [--no-scram]\n"
	"       moonpost user passwd ADDRESS [--password-stdin] [--no-scram]\n"
	"       moonpost user del ADDRESS\n"
	"       moonpost user list\n"
	"\n"
	"Manages the accounts of the passwd file. Every form also takes:\n"
	"  -c, --config FILE   the config file (default " MP_CLI_DEFAULT_CONFIG
	")\n"
	"      --data-dir DIR  the data directory of `serve --dev` instead\n"
	"  -h, --help          show this help\n"
	"\n"
	"SCHEME is yescrypt (the default), bcrypt or sha512-crypt. Without\n"
	"--password-stdin the password is asked twice on the terminal.\n"
	"Besides the hash, a SCRAM-SHA-256 secret is stored so that clients\n"
	"can log in without sending the password; --no-scram stores only the\n"
	"hash (SCRAM logins then fail for that account).\n";

static const char *const action_names[] = {"add", "passwd", "del", "list"};
static const char *const scheme_names[] = {"yescrypt", "bcrypt",
					   "sha512-crypt"};

enum { OPT_DATA_DIR = 256, OPT_PASSWORD_STDIN, OPT_SCHEME, OPT_NO_SCRAM };

static const struct option long_options[] = {
	{"config", required_argument, NULL, 'c'},
	{"data-dir", required_argument, NULL, OPT_DATA_DIR},
	{"password-stdin", no_argument, NULL, OPT_PASSWORD_STDIN},
	{"scheme", required_argument, NULL, OPT_SCHEME},
	{"no-scram", no_argument, NULL, OPT_NO_SCRAM},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static int usage_error(const char *fmt, ...) MP_PRINTF(1, 2);

/* One line with a hint, as users of any CLI expect after a typo. */
static int
usage_error(const char *fmt, ...)
{
	struct mp_buf msg = {0};
	va_list ap;

	va_start(ap, fmt);
	mp_buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	mp_cli_error("user: %s; see 'moonpost user --help'", msg.data);
	mp_buf_free(&msg);
	return EX_USAGE;
}

static bool
name_index(const char *const *names, size_t n, const char *name, int *i_r)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i], name) == 0) {
			*i_r = (int)i;
			return true;
		}
	}
	return false;
}

/* The action, then the address: whatever is not an option, in order. */
static int
take_positional(struct user_args *args, const char *arg, int *n_pos)
{
	int action;

	if (*n_pos == 0) {
		if (!name_index(action_names, MP_NELEMS(action_names), arg,
				&action))
			return usage_error("unknown action '%s'", arg);
		args->action = (enum user_action)action;
	} else if (*n_pos == 1 && args->action != ACTION_LIST) {
		args->address = arg;
	} else {
		return usage_error("unexpected argument '%s'", arg);
	}
	(*n_pos)++;
	return EX_OK;
}

static int
bad_option(char **argv, int c)
{
	/* optopt is the short option, 0 for an unknown long one, or our
	 * OPT_* value for a long one without its value. */
	char opt[3] = {'-', (char)optopt, '\0'};
	const char *name = optopt > 0 && optopt < 256 ? opt : argv[optind - 1];

	if (c == ':')
		return usage_error("option '%s' needs a value", name);
	return usage_error("unknown option '%s'", name);
}

/* One getopt_long() result; EX_OK to go on, or an exit code (-1: help). */
static int
take_option(int c, char **argv, struct user_args *args, int *n_pos)
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
	case OPT_PASSWORD_STDIN:
		args->password_stdin = true;
		return EX_OK;
	case OPT_SCHEME:
		args->scheme = optarg;
		return EX_OK;
	case OPT_NO_SCRAM:
		args->no_scram = true;
		return EX_OK;
	case 'h':
		return -1;
	default:
		return bad_option(argv, c);
	}
}

/* Options that make no sense together or for this action. */
static int
check_args(const struct user_args *args, int n_pos)
{
	int i;

	if (n_pos == 0)
		return usage_error("missing action (add, passwd, del or list)");
	if (args->action != ACTION_LIST && args->address == NULL)
		return usage_error("missing ADDRESS");
	if (args->config_path != NULL && args->data_dir != NULL)
		return usage_error("-c and --data-dir exclude each other");
	if (args->scheme != NULL && args->action != ACTION_ADD)
		return usage_error("--scheme is only for add");
	if (args->password_stdin && args->action != ACTION_ADD &&
	    args->action != ACTION_PASSWD)
		return usage_error("--password-stdin is only for add and "
				   "passwd");
	if (args->no_scram && args->action != ACTION_ADD &&
	    args->action != ACTION_PASSWD)
		return usage_error("--no-scram is only for add and passwd");
	if (args->scheme != NULL &&
	    !name_index(scheme_names, MP_NELEMS(scheme_names), args->scheme,
			&i))
		return usage_error("unknown scheme '%s' (yescrypt, bcrypt or "
				   "sha512-crypt)",
				   args->scheme);
	return EX_OK;
}

/* EX_OK, an exit code, or -1 after printing the help. */
static int
parse_args(int argc, char **argv, struct user_args *args)
{
	int c, rc, n_pos = 0;

	memset(args, 0, sizeof(*args));
	/* 0 makes glibc start over: main() may have run getopt already.
	 * A leading '-' hands back non-options in order, so options may come
	 * anywhere even under POSIXLY_CORRECT; ':' reports a missing value. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "-:c:h", long_options, NULL)) !=
	       -1) {
		if ((rc = take_option(c, argv, args, &n_pos)) != EX_OK)
			return rc;
	}
	rc = check_args(args, n_pos);
	if (rc == EX_OK && args->config_path == NULL && args->data_dir == NULL)
		args->config_path = MP_CLI_DEFAULT_CONFIG;
	return rc;
}

/* What terminal state to put back if a signal ends a prompt. */
static struct termios saved_termios;

static void
restore_and_reraise(int sig)
{
	tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
	raise(sig); /* SA_RESETHAND: the default action now */
}

static const int prompt_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void
set_prompt_signals(bool on, struct sigaction *old)
{
	struct sigaction sa = {.sa_handler = restore_and_reraise,
			       .sa_flags = SA_RESETHAND};

	for (size_t i = 0; i < MP_NELEMS(prompt_signals); i++) {
		if (on)
			sigaction(prompt_signals[i], &sa, &old[i]);
		else
			sigaction(prompt_signals[i], &old[i], NULL);
	}
}

static int
password_too_long(void)
{
	mp_cli_error("password longer than %d bytes (the most libxcrypt "
		     "accepts)",
		     MP_PASSWORD_MAX);
	return EX_DATAERR;
}

/* Reads one line from stdin a byte at a time, so nothing after it is
 * consumed, into buf (PASSWORD_BUF bytes) without "\n" or "\r\n".
 * EX_OK or an exit code after a message. */
static int
read_line(char *buf)
{
	size_t len = 0;
	ssize_t n;
	char c;

	while ((n = read(STDIN_FILENO, &c, 1)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			mp_cli_error("cannot read the password: %s",
				     strerror(errno));
			return EX_IOERR;
		}
		if (c == '\n')
			break;
		if (c == '\0') {
			/* crypt(3) would hash only what precedes it. */
			mp_cli_error("NUL byte in the password");
			return EX_DATAERR;
		}
		if (len == PASSWORD_BUF - 1)
			return password_too_long();
		buf[len++] = c;
	}
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	return len > MP_PASSWORD_MAX ? password_too_long() : EX_OK;
}

static int
check_password(const char *buf)
{
	if (buf[0] == '\0') {
		mp_cli_error("empty password");
		return EX_DATAERR;
	}
	return EX_OK;
}

/* Reads a line from the terminal with echo off. */
static int
prompt_line(const char *prompt, char *buf)
{
	struct sigaction old[MP_NELEMS(prompt_signals)];
	struct termios quiet;
	int rc;

	if (tcgetattr(STDIN_FILENO, &saved_termios) < 0) {
		mp_cli_error("cannot read the terminal: %s", strerror(errno));
		return EX_IOERR;
	}
	quiet = saved_termios;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	fputs(prompt, stderr);
	set_prompt_signals(true, old);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	rc = read_line(buf);
	tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
	set_prompt_signals(false, old);
	return rc;
}

static int
prompt_password(const char *address, char *buf)
{
	char again[PASSWORD_BUF];
	char *prompt = mp_xasprintf("Password for %s: ", address);
	int rc = prompt_line(prompt, buf);

	free(prompt);
	if (rc == EX_OK)
		rc = check_password(buf);
	if (rc == EX_OK)
		rc = prompt_line("Again: ", again);
	if (rc == EX_OK && strcmp(buf, again) != 0) {
		mp_cli_error("the passwords do not match");
		rc = EX_DATAERR;
	}
	explicit_bzero(again, sizeof(again));
	return rc;
}

/* The new password into buf (PASSWORD_BUF bytes). */
static int
get_password(const struct user_args *args, char *buf)
{
	int rc;

	if (args->password_stdin) {
		rc = read_line(buf);
		return rc == EX_OK ? check_password(buf) : rc;
	}
	if (!isatty(STDIN_FILENO)) {
		mp_cli_error("stdin is not a terminal; "
			     "pipe the password in with --password-stdin");
		return EX_USAGE;
	}
	return prompt_password(args->address, buf);
}

/* The credentials of password: its hash, then (unless --no-scram) its
 * SCRAM-SHA-256 secret after a space. NULL after a message. */
static char *
credentials(const struct user_args *args, const char *password)
{
	const char *error;
	char *hash, *scram, *both;

	if ((hash = mp_password_hash(password, args->scheme, &error)) == NULL) {
		mp_cli_error("%s", error);
		return NULL;
	}
	if (args->no_scram)
		return hash;
	scram = mp_scram_secret_new(password, 0, &error);
	if (scram == NULL) {
		mp_cli_error("%s", error);
		free(hash);
		return NULL;
	}
	both = mp_xasprintf("%s %s", hash, scram);
	free(hash);
	free(scram);
	return both;
}

/* The credentials of a new password, or NULL after a message with *rc_r
 * set. */
static char *
new_hash(const struct user_args *args, int *rc_r)
{
	char password[PASSWORD_BUF];
	char *hash = NULL;

	*rc_r = get_password(args, password);
	if (*rc_r == EX_OK && (hash = credentials(args, password)) == NULL)
		*rc_r = EX_SOFTWARE;
	explicit_bzero(password, sizeof(password));
	return hash;
}

static int
read_accounts(const char *path, struct mp_passwd *pw)
{
	char *error;

	if (mp_passwd_read(path, pw, &error))
		return EX_OK;
	/* passwd.h: errno 0 means the file is malformed, not unreadable. */
	mp_cli_error("%s", error);
	free(error);
	return errno == 0 ? EX_DATAERR : EX_IOERR;
}

/* Whether the action can go ahead given what pw holds. */
static int
check_presence(const struct mp_passwd *pw, const struct user_args *args,
	       const char *path)
{
	bool exists = mp_passwd_find(pw, args->address) != NULL;

	if (args->action == ACTION_ADD && exists) {
		mp_cli_error("%s already exists (use 'moonpost user passwd' "
			     "to change its password)",
			     args->address);
		return EX_DATAERR;
	}
	if (args->action != ACTION_ADD && !exists) {
		mp_cli_error("no account %s in %s", args->address, path);
		return EX_NOUSER;
	}
	return EX_OK;
}

/* Reads without the lock to fail before asking for a password; the real
 * check is done again under the lock. */
static int
precheck(const char *path, const struct user_args *args)
{
	struct mp_passwd pw = {0};
	int rc = read_accounts(path, &pw);

	if (rc == EX_OK)
		rc = check_presence(&pw, args, path);
	mp_passwd_free(&pw);
	return rc;
}

static int
change_and_write(const char *path, struct mp_passwd *pw,
		 const struct user_args *args, const char *hash)
{
	char *error;
	int rc = check_presence(pw, args, path);

	if (rc != EX_OK)
		return rc;
	if (args->action == ACTION_DEL)
		mp_passwd_remove(pw, args->address);
	else
		mp_passwd_set(pw, args->address, hash);
	if (!mp_passwd_write(path, pw, &error)) {
		mp_cli_error("%s", error);
		free(error);
		return EX_IOERR;
	}
	return EX_OK;
}

/* The read-modify-write cycle, under the lock; hash is NULL for del. */
static int
update(const char *path, const struct user_args *args, const char *hash)
{
	struct mp_passwd pw = {0};
	char *error;
	int lock, rc;

	lock = mp_passwd_lock(path, &error);
	if (lock < 0) {
		mp_cli_error("%s", error);
		free(error);
		return EX_CANTCREAT;
	}
	rc = read_accounts(path, &pw);
	if (rc == EX_OK)
		rc = change_and_write(path, &pw, args, hash);
	mp_passwd_free(&pw);
	close(lock);
	return rc;
}

static int
check_domain(const struct mp_config *cfg, const char *address)
{
	const struct mp_strlist *domains = mp_config_domains(cfg);
	const char *domain = strchr(address, '@') + 1;
	struct mp_buf list = {0};

	if (mp_config_is_local_domain(cfg, domain))
		return EX_OK;
	for (size_t i = 0; domains != NULL && i < domains->n; i++)
		mp_buf_printf(&list, "%s%s", i > 0 ? ", " : "", domains->v[i]);
	if (list.len > 0)
		mp_cli_error("%s is not a local domain (local domains: %s)",
			     domain, list.data);
	else
		mp_cli_error("%s is not a local domain (no domains are "
			     "configured)",
			     domain);
	mp_buf_free(&list);
	return EX_DATAERR;
}

static int
cmd_add_or_passwd(const struct mp_config *cfg, const char *path,
		  const struct user_args *args)
{
	char *hash;
	int rc;

	if (args->action == ACTION_ADD &&
	    (rc = check_domain(cfg, args->address)) != EX_OK)
		return rc;
	if ((rc = precheck(path, args)) != EX_OK)
		return rc;
	/* Hashing takes a while: do it before taking the lock. */
	if ((hash = new_hash(args, &rc)) == NULL)
		return rc;
	rc = update(path, args, hash);
	free(hash);
	if (rc == EX_OK && args->action == ACTION_ADD)
		printf("added %s\n", args->address);
	else if (rc == EX_OK)
		printf("changed the password of %s\n", args->address);
	return rc;
}

static int
cmd_del(const struct mp_config *cfg, const char *path,
	const struct user_args *args)
{
	int rc = update(path, args, NULL);

	if (rc == EX_OK)
		printf("removed %s (its mail in %s is kept)\n", args->address,
		       mp_config_data_dir(cfg));
	return rc;
}

static int
str_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
cmd_list(const char *path)
{
	struct mp_passwd pw = {0};
	const char **addresses;
	size_t n = 0;
	int rc = read_accounts(path, &pw);

	if (rc != EX_OK)
		return rc;
	addresses = mp_xcalloc(pw.n, sizeof(*addresses));
	for (size_t i = 0; i < pw.n; i++) {
		if (pw.v[i].address != NULL)
			addresses[n++] = pw.v[i].address;
	}
	qsort(addresses, n, sizeof(*addresses), str_ptr_cmp);
	for (size_t i = 0; i < n; i++)
		printf("%s\n", addresses[i]);
	free(addresses);
	mp_passwd_free(&pw);
	return EX_OK;
}

static int
run_action(const struct mp_config *cfg, const struct user_args *args)
{
	const char *path = mp_config_passwd_file(cfg);

	if (path == NULL) {
		mp_cli_error("the config sets no passwd file");
		return EX_CONFIG;
	}
	switch (args->action) {
	case ACTION_ADD:
	case ACTION_PASSWD:
		return cmd_add_or_passwd(cfg, path, args);
	case ACTION_DEL:
		return cmd_del(cfg, path, args);
	case ACTION_LIST:
		return cmd_list(path);
	}
	return EX_SOFTWARE;
}

/* A valid address fits (254 bytes); the lower-case copy goes to out. */
static int
check_address(const char *address, char out[static 256])
{
	size_t i;

	if (!mp_address_is_valid(address)) {
		mp_cli_error("invalid address '%s'", address);
		return EX_DATAERR;
	}
	for (i = 0; address[i] != '\0'; i++)
		out[i] = (char)tolower((unsigned char)address[i]);
	out[i] = '\0';
	return EX_OK;
}

int
mp_cmd_user(int argc, char **argv)
{
	struct user_args args;
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
	if (args.address != NULL) {
		if ((rc = check_address(args.address, address)) != EX_OK)
			return rc;
		args.address = address;
	}
	cfg = mp_cli_load_config(args.config_path, args.data_dir, &error);
	if (cfg == NULL) {
		mp_cli_error("%s", error);
		free(error);
		return EX_CONFIG;
	}
	rc = run_action(cfg, &args);
	mp_config_unref(&cfg);
	if (fflush(stdout) != 0 && rc == EX_OK)
		rc = EX_IOERR;
	return rc;
}
