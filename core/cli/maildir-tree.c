/* maildir-tree.c - Dovecot's and Courier's Maildir++ control files, and an
 * account's mail, for `import maildir` and `export maildir`. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <moonpost/mailstore-import.h>

#include "cli.h"
#include "maildir-tree.h"
#include "passwd.h"

/* Dovecot's subscriptions file, version 2 (subscription-file.c). */
#define SUBS_V2_HEADER "V\t2\n\n"

/* Opens folder/name for reading: NULL with *error_r set when it exists
 * but cannot be read, NULL with *error_r NULL when it does not exist. */
static FILE *
open_control(const char *folder, const char *name, char **error_r)
{
	char *path = mp_xasprintf("%s/%s", folder, name);
	FILE *f = fopen(path, "re");

	*error_r = NULL;
	if (f == NULL && errno != ENOENT)
		*error_r = mp_xasprintf("%s: %s", path, strerror(errno));
	free(path);
	return f;
}

/* The next line without its end; NULL at the end of the file. */
static char *
next_line(FILE *f, char **buf, size_t *size)
{
	ssize_t n = getline(buf, size, f);

	if (n < 0)
		return NULL;
	while (n > 0 && ((*buf)[n - 1] == '\n' || (*buf)[n - 1] == '\r'))
		(*buf)[--n] = '\0';
	return *buf;
}

/* --- dovecot-uidlist ------------------------------------------------------ */

static bool
parse_u32(const char *s, const char **end_r, uint32_t *v_r)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	*end_r = end;
	*v_r = (uint32_t)v;
	return errno == 0 && v < UINT32_MAX;
}

/* "3 V<uidvalidity> N<nextuid> ..." (other fields ignored) or
 * "1 <uidvalidity> <nextuid>". Returns the version, 0 when malformed. */
static int
parse_header(const char *line, struct mp_maildir_uidlist *ul)
{
	int version = line[0] - '0';
	const char *p = line + 2;

	if ((version != 1 && version != 3) || line[1] != ' ')
		return 0;
	if (version == 1) {
		if (!parse_u32(p, &p, &ul->uidvalidity) || *p++ != ' ' ||
		    !parse_u32(p, &p, &ul->uidnext))
			return 0;
	}
	while (version == 3 && *p != '\0') {
		char key = *p++;

		if ((key == 'V' && !parse_u32(p, &p, &ul->uidvalidity)) ||
		    (key == 'N' && !parse_u32(p, &p, &ul->uidnext)))
			return 0;
		p += strcspn(p, " ");
		p += strspn(p, " ");
	}
	return ul->uidvalidity != 0 && ul->uidnext != 0 ? version : 0;
}

/* "<uid> <file>" (version 1) or "<uid> [fields] :<file>" (version 3). */
static bool
parse_record(const char *line, int version, struct mp_maildir_uidlist *ul)
{
	const char *p;
	uint32_t uid;

	if (!parse_u32(line, &p, &uid) || uid == 0 || *p != ' ')
		return false;
	p += strspn(p, " ");
	/* Extension fields ("W2481") come first; the name starts at the
	 * first field that starts with ':'. */
	while (version == 3 && *p != '\0' && *p != ':') {
		p += strcspn(p, " ");
		p += strspn(p, " ");
	}
	if (version == 3 && *p++ != ':')
		return false;
	if (*p == '\0' || *p == ':' || strchr(p, '/') != NULL)
		return false;
	ul->v = mp_xrealloc(ul->v, (ul->n + 1) * sizeof(*ul->v));
	ul->v[ul->n].key = mp_xstrndup(p, strcspn(p, ":"));
	ul->v[ul->n++].uid = uid;
	return true;
}

static int
cmp_uid_key(const void *a, const void *b)
{
	const struct mp_maildir_uid *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c != 0 ? c : x->uid < y->uid ? -1 : x->uid > y->uid;
}

static bool
read_uidlist(FILE *f, const char *path, struct mp_maildir_uidlist *ul,
	     char **error_r)
{
	char *buf = NULL, *line;
	size_t size = 0, bad = 0;
	int version = 0;

	if ((line = next_line(f, &buf, &size)) != NULL)
		version = parse_header(line, ul);
	if (version == 0) {
		free(buf);
		memset(ul, 0, sizeof(*ul));
		*error_r = mp_xasprintf("%s: unknown header; its UIDs are not "
					"kept",
					path);
		return false;
	}
	while ((line = next_line(f, &buf, &size)) != NULL) {
		if (line[0] != '\0' && !parse_record(line, version, ul))
			bad++;
	}
	free(buf);
	if (ul->n > 0)
		qsort(ul->v, ul->n, sizeof(*ul->v), cmp_uid_key);
	if (bad == 0)
		return true;
	*error_r = mp_xasprintf("%s: %zu malformed lines ignored", path, bad);
	return false;
}

bool
mp_maildir_uidlist_read(const char *folder, struct mp_maildir_uidlist *ul,
			char **error_r)
{
	/* Courier's file is version 1 of Dovecot's (maildir-uidlist.c). */
	static const char *const names[] = {"dovecot-uidlist",
					    "courierimapuiddb"};

	memset(ul, 0, sizeof(*ul));
	for (size_t i = 0; i < MP_NELEMS(names); i++) {
		FILE *f = open_control(folder, names[i], error_r);
		char *path;
		bool ok;

		if (f == NULL && *error_r != NULL)
			return false;
		if (f == NULL)
			continue;
		path = mp_xasprintf("%s/%s", folder, names[i]);
		ok = read_uidlist(f, path, ul, error_r);
		fclose(f);
		free(path);
		return ok;
	}
	return true;
}

uint32_t
mp_maildir_uidlist_find(const struct mp_maildir_uidlist *ul, const char *key)
{
	size_t lo = 0, hi = ul->n;

	/* The last line for a file wins, as in Dovecot: the highest UID of
	 * the run of equal keys. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(ul->v[mid].key, key) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || strcmp(ul->v[lo - 1].key, key) != 0)
		return 0;
	return ul->v[lo - 1].uid;
}

void
mp_maildir_uidlist_free(struct mp_maildir_uidlist *ul)
{
	for (size_t i = 0; i < ul->n; i++)
		free(ul->v[i].key);
	free(ul->v);
	memset(ul, 0, sizeof(*ul));
}

/* --- message files ------------------------------------------------------- */

bool
mp_maildir_is_folder(const char *path)
{
	char *cur = mp_xasprintf("%s/cur", path);
	struct stat st;
	bool yes = stat(cur, &st) == 0 && S_ISDIR(st.st_mode);

	free(cur);
	return yes;
}

uint32_t
mp_maildir_info_flags(const char *file, char *const names[26],
		      struct mp_strlist *kws)
{
	static const struct {
		char c;
		uint32_t flag;
	} letters[] = {{'S', MS_FLAG_SEEN},
		       {'R', MS_FLAG_ANSWERED},
		       {'F', MS_FLAG_FLAGGED},
		       {'T', MS_FLAG_DELETED},
		       {'D', MS_FLAG_DRAFT}};
	const char *info = strstr(file, ":2,");
	uint32_t flags = 0;

	/* Dovecot may add ",fields" after the flags. */
	for (info = info != NULL ? info + 3 : ""; *info != '\0' && *info != ',';
	     info++) {
		if (*info >= 'a' && *info <= 'z' && names[*info - 'a'] != NULL)
			mp_strlist_add(kws, names[*info - 'a']);
		for (size_t i = 0; i < MP_NELEMS(letters); i++) {
			if (*info == letters[i].c)
				flags |= letters[i].flag;
		}
	}
	return flags;
}

bool
mp_maildir_measure(int fd, uint64_t *raw_r, uint64_t *crlf_r)
{
	char buf[32768];
	bool last_cr = false;
	ssize_t n;

	*raw_r = *crlf_r = 0;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return false;
		for (ssize_t i = 0; i < n; i++) {
			*crlf_r += buf[i] == '\n' && !last_cr ? 2 : 1;
			last_cr = buf[i] == '\r';
		}
		*raw_r += (uint64_t)n;
	}
	return lseek(fd, 0, SEEK_SET) == 0;
}

/* --- dovecot-keywords ----------------------------------------------------- */

bool
mp_maildir_keywords_read(const char *folder, char *names[26], char **error_r)
{
	FILE *f = open_control(folder, "dovecot-keywords", error_r);
	char *buf = NULL, *line;
	size_t size = 0;

	for (size_t i = 0; i < 26; i++)
		names[i] = NULL;
	if (f == NULL)
		return *error_r == NULL;
	while ((line = next_line(f, &buf, &size)) != NULL) {
		const char *p;
		uint32_t i;

		if (!parse_u32(line, &p, &i) || i >= 26 || *p != ' ' ||
		    p[1] == '\0')
			continue;
		free(names[i]);
		names[i] = mp_xstrdup(p + 1);
	}
	free(buf);
	fclose(f);
	return true;
}

/* --- subscriptions -------------------------------------------------------- */

static void
add_name(struct mp_strlist *names, char *name)
{
	if (name == NULL)
		return;
	if (strcasecmp(name, "INBOX") == 0)
		strcpy(name, "INBOX");
	if (!mp_strlist_contains(names, name))
		mp_strlist_add(names, name);
	free(name);
}

/* An old-style line: '.' between levels ('/' if that is what it holds).
 * Courier writes "INBOX.Foo" for Foo; in Dovecot "INBOX.Foo" is a folder
 * .INBOX.Foo, so the prefix goes when no such folder exists. */
static char *
old_style_name(const char *root, char *line)
{
	size_t len = strlen(line);
	char sep = strchr(line, '/') != NULL ? '/' : '.';
	char *dir;
	struct stat st;

	while (len > 0 && line[len - 1] == sep)
		line[--len] = '\0';
	if (strncasecmp(line, "INBOX", 5) != 0 || line[5] != sep)
		return ms_maildir_name_decode(line, sep);
	dir = mp_xasprintf("%s/.%s", root, line);
	if (sep == '/' || stat(dir, &st) != 0)
		line += 6;
	free(dir);
	return ms_maildir_name_decode(line, sep);
}

static void
read_subs(FILE *f, const char *root, struct mp_strlist *names)
{
	char *buf = NULL, *line;
	size_t size = 0;
	bool v2 = false;

	if ((line = next_line(f, &buf, &size)) != NULL &&
	    strcmp(line, "V\t2") == 0) {
		v2 = true;
		line = next_line(f, &buf, &size); /* the empty line */
		line = line != NULL ? next_line(f, &buf, &size) : NULL;
	}
	for (; line != NULL; line = next_line(f, &buf, &size)) {
		/* \001 escapes control characters, which no name has. */
		if (line[0] == '\0' || strchr(line, '\001') != NULL)
			continue;
		add_name(names, v2 ? ms_maildir_name_decode(line, '\t')
				   : old_style_name(root, line));
	}
	free(buf);
}

bool
mp_maildir_subscriptions_read(const char *root, struct mp_strlist *names,
			      bool *found_r, char **error_r)
{
	static const char *const files[] = {"subscriptions",
					    "courierimapsubscribed"};

	*found_r = false;
	for (size_t i = 0; i < MP_NELEMS(files); i++) {
		FILE *f = open_control(root, files[i], error_r);

		if (f == NULL && *error_r != NULL)
			return false;
		if (f == NULL)
			continue;
		*found_r = true;
		read_subs(f, root, names);
		fclose(f);
	}
	return true;
}

char *
mp_maildir_subscriptions_format(const struct mp_strlist *names)
{
	struct mp_buf out = {0};

	mp_buf_puts(&out, SUBS_V2_HEADER);
	for (size_t i = 0; i < names->n; i++) {
		char *line = ms_maildir_name_encode(names->v[i], '\t');

		mp_buf_printf(&out, "%s\n", line);
		free(line);
	}
	return mp_buf_steal(&out);
}

/* --- files and accounts --------------------------------------------------- */

bool
mp_maildir_write_file(const char *path, const void *data, size_t len,
		      char **error_r)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	const char *p = data;

	while (fd >= 0 && len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		p += n;
		len -= (size_t)n;
	}
	if (fd < 0 || len > 0 || close(fd) != 0) {
		*error_r = mp_xasprintf("%s: %s", path, strerror(errno));
		if (fd >= 0 && len > 0)
			close(fd);
		return false;
	}
	return true;
}

/* Whether the store holds an index for address (mailstore.h: accounts
 * live in <root>/<domain>/<localpart>/index.sqlite). */
static bool
account_exists(const char *root, const char *address)
{
	const char *at = strrchr(address, '@');
	char *index = mp_xasprintf("%s/%s/%.*s/index.sqlite", root, at + 1,
				   (int)(at - address), address);
	struct stat st;
	bool yes = stat(index, &st) == 0;

	free(index);
	return yes;
}

int
mp_maildir_account_open(const char *data_dir, const char *address,
			bool must_exist, struct mp_maildir_account *a)
{
	char *root = mp_xasprintf("%s/mail", data_dir);
	struct ms_store_settings set = {.root = root};
	struct ms_error err;
	int rc = EX_OK;

	memset(a, 0, sizeof(*a));
	if (must_exist && !account_exists(root, address)) {
		mp_cli_error("no mail for %s in %s", address, root);
		rc = EX_NOUSER;
	} else if ((a->store = ms_store_new(&set, &err)) == NULL) {
		mp_cli_error("%s: %s", root, err.text);
		rc = EX_CANTCREAT;
	} else if ((a->user = ms_user_open(a->store, address, &err)) == NULL) {
		mp_cli_error("mail of %s: %s", address, err.text);
		rc = err.code == MS_ERR_TEMP ? EX_TEMPFAIL : EX_DATAERR;
		ms_store_free(&a->store);
	}
	free(root);
	return rc;
}

void
mp_maildir_account_close(struct mp_maildir_account *a)
{
	ms_user_unref(&a->user);
	ms_store_free(&a->store);
}

int
mp_maildir_check_address(const char *address, char out[static 256])
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
