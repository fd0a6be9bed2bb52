/* accounts.c - the passwd and alias files, kept in memory and re-read when
 * they change.
 *
 * At most once per interval a file is stat()ed; when its inode, size or
 * modification time differ from the last look, it is read again. The
 * read runs on the loop thread: both files are small and local (a few
 * hundred bytes per account, in the page cache after the first read), so
 * a read costs about what handing it to the pool and back would, and
 * doing it in place means no login or RCPT ever sees a half-swapped table
 * or waits in a queue behind one. `moonpost user` replaces the passwd
 * file by rename, so a read sees the old file or the new one, never a
 * mix; a hand edit caught halfway fails to parse, is logged, and the
 * table in use stays until the next change. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <moonpost/log.h>
#include <moonpost/recipient.h>

#include "aliases.h"
#include "auth-private.h"
#include "passwd.h"

/* What a file looked like at the last look. */
struct watch {
	char *path;
	bool looked;      /* the fields below are valid */
	uint64_t checked; /* mp_now_ms() of the last look */
	int err;          /* errno of a failed stat, 0 when it worked */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct mp_accounts {
	uint64_t interval;
	struct mp_config *config; /* domains and recipient_delimiter */
	struct watch passwd_watch;
	struct mp_passwd passwd;
	bool passwd_ok; /* passwd holds a table read without error */
	struct watch aliases_watch;
	struct mp_aliases *aliases; /* NULL until one is read */
};

/* ---- watching -------------------------------------------------------- */

static bool
same_file(const struct watch *a, const struct watch *b)
{
	return a->err == b->err && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* True when w's file changed since the last look, or was never looked at;
 * looks at most once per interval. A file that stays missing or
 * unreadable is not a change: its error is logged once. */
static bool
watch_changed(struct watch *w, uint64_t interval)
{
	uint64_t now = mp_now_ms();
	struct watch seen = *w;
	struct stat st;

	if (w->looked && now - w->checked < interval)
		return false;
	memset(&st, 0, sizeof(st));
	seen.err = stat(w->path, &st) == 0 ? 0 : errno;
	seen.dev = st.st_dev;
	seen.ino = st.st_ino;
	seen.size = st.st_size;
	seen.mtime = st.st_mtim;
	seen.looked = true;
	seen.checked = now;
	if (w->looked && same_file(w, &seen)) {
		w->checked = now;
		return false;
	}
	*w = seen;
	return true;
}

static void
watch_set_path(struct watch *w, const char *path)
{
	if (w->path != NULL && strcmp(w->path, path) == 0)
		return;
	free(w->path);
	memset(w, 0, sizeof(*w));
	w->path = mp_xstrdup(path);
}

/* ---- loading --------------------------------------------------------- */

static size_t
passwd_count(const struct mp_passwd *pw)
{
	size_t n = 0;

	for (size_t i = 0; i < pw->n; i++)
		n += pw->v[i].address != NULL;
	return n;
}

/* Reads the passwd file; on error logs it and keeps the table in use. */
static void
passwd_reload(struct mp_accounts *a)
{
	struct mp_passwd pw = {0};
	char *error = NULL;

	if (!mp_passwd_read(a->passwd_watch.path, &pw, &error)) {
		mp_log(MP_LOG_ERROR, "event=passwd_error error=%s kept=%s",
		       mp_q(error), a->passwd_ok ? "previous" : "none");
		free(error);
		return;
	}
	mp_passwd_free(&a->passwd);
	a->passwd = pw;
	a->passwd_ok = true;
	mp_log(MP_LOG_INFO, "event=passwd_loaded file=%s accounts=%zu",
	       mp_q(a->passwd_watch.path), passwd_count(&pw));
}

static void
aliases_reload(struct mp_accounts *a)
{
	struct mp_aliases *al = NULL;
	char *error = NULL;

	if (!mp_aliases_read(a->aliases_watch.path, &al, &error)) {
		mp_log(MP_LOG_ERROR, "event=aliases_error error=%s kept=%s",
		       mp_q(error), a->aliases != NULL ? "previous" : "none");
		free(error);
		return;
	}
	mp_aliases_free(&a->aliases);
	a->aliases = al;
	mp_log(MP_LOG_INFO, "event=aliases_loaded file=%s aliases=%zu",
	       mp_q(a->aliases_watch.path), mp_aliases_count(al));
}

static void
refresh(struct mp_accounts *a)
{
	if (watch_changed(&a->passwd_watch, a->interval))
		passwd_reload(a);
	if (watch_changed(&a->aliases_watch, a->interval))
		aliases_reload(a);
}

/* ---- public ---------------------------------------------------------- */

struct mp_accounts *
mp_accounts_new(const struct mp_config *cfg, char **error_r)
{
	struct mp_accounts *a = mp_xcalloc(1, sizeof(*a));

	a->interval = MP_AUTH_CHECK_INTERVAL_MS;
	a->config = mp_config_ref(cfg);
	watch_set_path(&a->passwd_watch, mp_config_passwd_file(cfg));
	watch_set_path(&a->aliases_watch, mp_config_aliases_file(cfg));
	/* Look before reading: a change while reading is seen next time. */
	watch_changed(&a->passwd_watch, 0);
	watch_changed(&a->aliases_watch, 0);
	if (!mp_passwd_read(a->passwd_watch.path, &a->passwd, error_r) ||
	    !mp_aliases_read(a->aliases_watch.path, &a->aliases, error_r)) {
		mp_accounts_free(&a);
		return NULL;
	}
	a->passwd_ok = true;
	return a;
}

void
mp_accounts_set_config(struct mp_accounts *a, const struct mp_config *cfg)
{
	mp_config_unref(&a->config);
	a->config = mp_config_ref(cfg);
	/* A new name is looked at on the next use; until it reads cleanly,
	 * the table in use stays. */
	watch_set_path(&a->passwd_watch, mp_config_passwd_file(cfg));
	watch_set_path(&a->aliases_watch, mp_config_aliases_file(cfg));
}

void
mp_accounts_set_interval(struct mp_accounts *a, uint64_t ms)
{
	a->interval = ms;
}

const struct mp_passwd *
mp_accounts_passwd(struct mp_accounts *a)
{
	refresh(a);
	return a->passwd_ok ? &a->passwd : NULL;
}

static bool
is_account(void *ctx, const char *address)
{
	struct mp_accounts *a = ctx;

	return mp_passwd_find(&a->passwd, address) != NULL;
}

enum mp_recipient_status
mp_accounts_resolve(struct mp_accounts *a, const char *address,
		    struct mp_recipient *r)
{
	struct mp_resolve_params p = {
		.domains = mp_config_domains(a->config),
		.delimiter = mp_config_recipient_delimiter(a->config),
		.is_account = is_account,
		.ctx = a,
	};

	refresh(a);
	if (!a->passwd_ok) {
		mp_recipient_clear(r);
		r->error = mp_xstrdup("the passwd file could not be read");
		return MP_RECIPIENT_ERROR;
	}
	p.aliases = a->aliases;
	return mp_aliases_resolve(&p, address, r);
}

bool
mp_accounts_check(const struct mp_config *cfg, char **error_r)
{
	struct mp_accounts *a = mp_accounts_new(cfg, error_r);
	bool ok = a != NULL;

	mp_accounts_free(&a);
	return ok;
}

void
mp_accounts_free(struct mp_accounts **ap)
{
	struct mp_accounts *a = *ap;

	if (a == NULL)
		return;
	mp_passwd_free(&a->passwd);
	mp_aliases_free(&a->aliases);
	free(a->passwd_watch.path);
	free(a->aliases_watch.path);
	mp_config_unref(&a->config);
	free(a);
	*ap = NULL;
}
