/* passwd.c - the account file: read strictly, rewrite atomically. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "passwd.h"

/* A line holds an address (254 bytes, RFC 5321 4.5.3.1.3) and a hash (a
 * few hundred bytes at most); anything longer is not an account file. */
#define PASSWD_LINE_MAX 1024
/* RFC 5321 4.5.3.1.1 and 4.5.3.1.2. */
#define ADDRESS_MAX 254
#define LOCAL_MAX   64
#define LABEL_MAX   63

/* While reading: where each address was, to report duplicates by line. */
struct seen {
	const char *address;
	unsigned line;
};

/* dot-atom text of RFC 5322 3.2.3, without '/' and '\\': the mailstore
 * names directories after accounts, so a local part must not be able to
 * climb out of one. */
static bool
is_local_char(char c)
{
	return isalnum((unsigned char)c) || strchr("!#$%&'*+-=?^_`{|}~.", c);
}

static bool
local_part_is_valid(const char *s, size_t len)
{
	if (len == 0 || len > LOCAL_MAX)
		return false;
	/* A leading '#' would turn the line into a comment. */
	if (s[0] == '.' || s[0] == '#' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!is_local_char(s[i]) || (s[i] == '.' && s[i + 1] == '.'))
			return false;
	}
	return true;
}

static bool
label_is_valid(const char *s, size_t len)
{
	if (len == 0 || len > LABEL_MAX || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	}
	return true;
}

/* Host names only: no address literals, IDNs in their xn-- form. */
static bool
domain_is_valid(const char *s)
{
	const char *dot;

	while ((dot = strchr(s, '.')) != NULL) {
		if (!label_is_valid(s, (size_t)(dot - s)))
			return false;
		s = dot + 1;
	}
	return label_is_valid(s, strlen(s));
}

bool
mp_address_is_valid(const char *address)
{
	const char *at;

	if (address == NULL || strnlen(address, ADDRESS_MAX + 1) > ADDRESS_MAX)
		return false;
	at = strchr(address, '@');
	if (at == NULL || strchr(at + 1, '@') != NULL)
		return false;
	return local_part_is_valid(address, (size_t)(at - address)) &&
	       domain_is_valid(at + 1);
}

static char *
lower_dup(const char *s)
{
	char *p = mp_xstrdup(s);

	for (char *q = p; *q != '\0'; q++)
		*q = (char)tolower((unsigned char)*q);
	return p;
}

static bool
is_blank(const char *line)
{
	for (; *line != '\0'; line++) {
		if (*line != ' ' && *line != '\t')
			return false;
	}
	return true;
}

/* {SCHEME}hash, the first len bytes of cred: which schemes verify is
 * mp_password_verify()'s business; here only the shape, so that a typo is
 * reported with its line. */
static const char *
credential_error(const char *cred, size_t len)
{
	/* Searched past len so that a space inside {SCHEME} is named. */
	const char *end = strchr(cred, '}');

	if (cred[0] != '{' || end == NULL || end == cred + 1)
		return "hash must start with {SCHEME}";
	for (const char *p = cred + 1; p < end; p++) {
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return "bad character in {SCHEME}";
	}
	if (end + 1 == cred + len)
		return "empty hash after {SCHEME}";
	for (const char *p = end + 1; p < cred + len; p++) {
		if (*p == ':')
			return "unexpected ':' after the hash (only "
			       "address:{SCHEME}hash is supported)";
		if (*p <= ' ' || *p > '~')
			return "space or control character in the hash";
	}
	return NULL;
}

/* True when a credential of list before cred has the scheme of cred. */
static bool
scheme_seen(const char *list, const char *cred)
{
	size_t n = (size_t)(strchr(cred, '}') - cred) + 1;

	for (const char *p = list; p < cred; p += strcspn(p, " ") + 1) {
		if (strncasecmp(p, cred, n) == 0)
			return true;
	}
	return false;
}

/* One credential, or several separated by one space:
 * {YESCRYPT}$y$... {SCRAM-SHA-256}4096,... */
static const char *
credentials_error(const char *list)
{
	const char *p = list, *error;

	for (;;) {
		size_t len = strcspn(p, " ");

		/* After a space, anything but {SCHEME} is a stray space. */
		if (p != list && p[0] != '{')
			return "space or control character in the hash "
			       "(credentials are separated by one space)";
		if ((error = credential_error(p, len)) != NULL)
			return error;
		if (scheme_seen(list, p))
			return "two credentials of the same {SCHEME}";
		if (p[len] == '\0')
			return NULL;
		p += len + 1;
	}
}

static void
entry_add(struct mp_passwd *pw, char *address, char *hash)
{
	pw->v = mp_xrealloc(pw->v, (pw->n + 1) * sizeof(*pw->v));
	pw->v[pw->n].address = address;
	pw->v[pw->n].hash = hash;
	pw->n++;
}

/* Parses one line (without its newline); NULL or a static message. */
static const char *
parse_line(struct mp_passwd *pw, const char *line)
{
	const char *colon, *error;
	char *address;

	if (line[0] == '#' || is_blank(line)) {
		entry_add(pw, NULL, mp_xstrdup(line));
		return NULL;
	}
	colon = strchr(line, ':');
	if (colon == NULL)
		return "expected address:{SCHEME}hash";
	address = mp_xstrndup(line, (size_t)(colon - line));
	if (!mp_address_is_valid(address)) {
		free(address);
		return "invalid address";
	}
	if ((error = credentials_error(colon + 1)) != NULL) {
		free(address);
		return error;
	}
	entry_add(pw, lower_dup(address), mp_xstrdup(colon + 1));
	free(address);
	return NULL;
}

enum read_result { LINE_OK, LINE_EOF, LINE_TOO_LONG, LINE_NUL, LINE_ERROR };

/* Reads one line into buf (size PASSWD_LINE_MAX + 1) without its "\n". A
 * byte at a time so that a huge line costs no memory; the file is small. */
static enum read_result
read_line(FILE *f, char *buf)
{
	size_t len = 0;
	int c;

	while ((c = getc(f)) != EOF && c != '\n') {
		if (c == '\0')
			return LINE_NUL;
		if (len == PASSWD_LINE_MAX)
			return LINE_TOO_LONG;
		buf[len++] = (char)c;
	}
	buf[len] = '\0';
	if (c == EOF && ferror(f))
		return LINE_ERROR;
	if (c == EOF && len == 0)
		return LINE_EOF;
	return LINE_OK;
}

static int
seen_cmp(const void *a, const void *b)
{
	const struct seen *x = a, *y = b;
	int r = strcmp(x->address, y->address);

	if (r != 0)
		return r;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* Sorting beats comparing every pair once a file has thousands of lines. */
static char *
check_duplicates(const char *path, struct seen *seen, size_t n)
{
	if (n < 2)
		return NULL; /* seen may be NULL, which qsort() must not get */
	qsort(seen, n, sizeof(*seen), seen_cmp);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(seen[i - 1].address, seen[i].address) == 0)
			return mp_xasprintf(
				"%s:%u: duplicate address %s (first on line "
				"%u)",
				path, seen[i].line, seen[i].address,
				seen[i - 1].line);
	}
	return NULL;
}

static const char *
read_result_error(enum read_result r)
{
	switch (r) {
	case LINE_TOO_LONG:
		return "line longer than 1024 bytes";
	case LINE_NUL:
		return "NUL byte in line";
	default:
		return NULL;
	}
}

/* Reads every line of f into pw; NULL or an error (caller frees) with
 * *err_r the errno of a failed read, 0 for a malformed line. */
static char *
read_lines(FILE *f, const char *path, struct mp_passwd *pw,
	   struct seen **seen_r, size_t *n_seen_r, int *err_r)
{
	char buf[PASSWD_LINE_MAX + 1];
	enum read_result r;
	const char *error;
	unsigned line = 0;

	*err_r = 0;
	while ((r = read_line(f, buf)) == LINE_OK) {
		line++;
		if ((error = parse_line(pw, buf)) != NULL)
			return mp_xasprintf("%s:%u: %s", path, line, error);
		if (pw->v[pw->n - 1].address == NULL)
			continue;
		*seen_r = mp_xrealloc(*seen_r,
				      (*n_seen_r + 1) * sizeof(**seen_r));
		(*seen_r)[*n_seen_r].address = pw->v[pw->n - 1].address;
		(*seen_r)[(*n_seen_r)++].line = line;
	}
	if (r == LINE_ERROR) {
		*err_r = errno;
		return mp_xasprintf("%s: %s", path, strerror(*err_r));
	}
	if ((error = read_result_error(r)) != NULL)
		return mp_xasprintf("%s:%u: %s", path, line + 1, error);
	return NULL;
}

bool
mp_passwd_read(const char *path, struct mp_passwd *pw, char **error_r)
{
	struct seen *seen = NULL;
	size_t n_seen = 0;
	char *error;
	int err;
	FILE *f;

	f = fopen(path, "re");
	if (f == NULL && errno == ENOENT)
		return true;
	if (f == NULL) {
		err = errno;
		*error_r = mp_xasprintf("%s: %s", path, strerror(err));
		errno = err;
		return false;
	}
	error = read_lines(f, path, pw, &seen, &n_seen, &err);
	if (error == NULL)
		error = check_duplicates(path, seen, n_seen);
	free(seen);
	fclose(f);
	if (error == NULL)
		return true;
	mp_passwd_free(pw);
	*error_r = error;
	errno = err;
	return false;
}

static void
format_entries(const struct mp_passwd *pw, struct mp_buf *buf)
{
	for (size_t i = 0; i < pw->n; i++) {
		if (pw->v[i].address != NULL)
			mp_buf_printf(buf, "%s:", pw->v[i].address);
		mp_buf_printf(buf, "%s\n", pw->v[i].hash);
	}
}

static bool
write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return false;
		data += n;
		len -= (size_t)n;
	}
	return true;
}

/* Makes a rename in the directory of path survive a crash. */
static bool
fsync_dir_of(const char *path)
{
	char *copy = mp_xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool ok = fd >= 0 && fsync(fd) == 0;
	int err = errno;

	if (fd >= 0)
		close(fd);
	free(copy);
	errno = err;
	return ok;
}

/* The server reads the file after dropping privileges, so a rewrite by
 * root must keep the owner and group the admin gave it. */
static bool
keep_owner(int fd, const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return errno == ENOENT;
	return fchown(fd, st.st_uid, st.st_gid) == 0;
}

/* "cannot <what> <file>: <errno text>"; caller frees. */
static char *
sys_error(const char *what, const char *file, int err)
{
	return mp_xasprintf("cannot %s %s: %s", what, file, strerror(err));
}

/* Writes data into a new temp file beside path, flushed to disk and
 * closed. NULL or an error (caller frees); no temp file is left behind. */
static char *
write_temp(const char *path, char *tmp, const struct mp_buf *data)
{
	int fd = mkostemp(tmp, O_CLOEXEC);
	const char *what = NULL;
	char *error;
	int err = 0;

	if (fd < 0)
		return sys_error("create", tmp, errno);
	if (fchmod(fd, 0640) < 0)
		what = "chmod";
	else if (!keep_owner(fd, path))
		what = "give the old file's owner to";
	else if (!write_all(fd, data->data, data->len))
		what = "write";
	else if (fsync(fd) < 0)
		what = "fsync";
	err = errno;
	if (close(fd) < 0 && what == NULL) {
		what = "close";
		err = errno;
	}
	if (what == NULL)
		return NULL;
	error = sys_error(what, tmp, err);
	unlink(tmp);
	return error;
}

bool
mp_passwd_write(const char *path, const struct mp_passwd *pw, char **error_r)
{
	char *tmp = mp_xasprintf("%s.XXXXXX", path);
	struct mp_buf data = {0};
	char *error;

	format_entries(pw, &data);
	error = write_temp(path, tmp, &data);
	mp_buf_free(&data);
	if (error == NULL && rename(tmp, path) < 0) {
		error = sys_error("rename", tmp, errno);
		unlink(tmp);
	}
	if (error == NULL && !fsync_dir_of(path))
		error = sys_error("fsync the directory of", path, errno);
	free(tmp);
	if (error != NULL)
		*error_r = error;
	return error == NULL;
}

const struct mp_passwd_entry *
mp_passwd_find(const struct mp_passwd *pw, const char *address)
{
	for (size_t i = 0; i < pw->n; i++) {
		if (pw->v[i].address != NULL &&
		    strcasecmp(pw->v[i].address, address) == 0)
			return &pw->v[i];
	}
	return NULL;
}

void
mp_passwd_set(struct mp_passwd *pw, const char *address, const char *hash)
{
	struct mp_passwd_entry *e =
		(struct mp_passwd_entry *)mp_passwd_find(pw, address);

	if (e == NULL) {
		entry_add(pw, lower_dup(address), mp_xstrdup(hash));
		return;
	}
	free(e->hash);
	e->hash = mp_xstrdup(hash);
}

bool
mp_passwd_remove(struct mp_passwd *pw, const char *address)
{
	const struct mp_passwd_entry *e = mp_passwd_find(pw, address);
	size_t i;

	if (e == NULL)
		return false;
	i = (size_t)(e - pw->v);
	free(pw->v[i].address);
	free(pw->v[i].hash);
	memmove(&pw->v[i], &pw->v[i + 1], (pw->n - i - 1) * sizeof(*pw->v));
	pw->n--;
	return true;
}

struct mp_str
mp_passwd_credential(const struct mp_passwd_entry *e, const char *scheme)
{
	size_t n = strlen(scheme);
	const char *p;

	if (e == NULL || e->address == NULL)
		return (struct mp_str){NULL, 0};
	for (p = e->hash;;) {
		size_t len = strcspn(p, " ");

		if (len > n + 2 && p[0] == '{' && p[n + 1] == '}' &&
		    strncasecmp(p + 1, scheme, n) == 0)
			return (struct mp_str){p, len};
		if (p[len] == '\0')
			return (struct mp_str){NULL, 0};
		p += len + 1;
	}
}

void
mp_passwd_free(struct mp_passwd *pw)
{
	for (size_t i = 0; i < pw->n; i++) {
		free(pw->v[i].address);
		free(pw->v[i].hash);
	}
	MP_FREE(pw->v);
	pw->n = 0;
}

int
mp_passwd_lock(const char *path, char **error_r)
{
	char *lock_path = mp_xasprintf("%s.lock", path);
	int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		      0600);

	if (fd < 0) {
		*error_r = mp_xasprintf("%s: %s", lock_path, strerror(errno));
		free(lock_path);
		return -1;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		*error_r = mp_xasprintf("cannot lock %s: %s", lock_path,
					strerror(errno));
		close(fd);
		free(lock_path);
		return -1;
	}
	free(lock_path);
	return fd;
}
