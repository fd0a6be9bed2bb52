/* ms-store.c - the store and its account handles. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <moonpost/log.h>

#include "ms-private.h"
#include "passwd.h"

static void
safe_host(char *out, size_t size)
{
	char host[256];
	size_t n = 0;

	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	/* '/' and ':' cannot appear in a Maildir file name (':' starts the
	 * info part); '.' is kept, the name is only ever split at the first
	 * dot by readers of the spec. */
	for (const char *s = host; *s != '\0' && n + 1 < size; s++)
		out[n++] = (*s == '/' || *s == ':' || *s == ',') ? '_' : *s;
	out[n] = '\0';
}

static bool
make_path(const char *path, struct ms_error *err)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
			ms_fail_errno(err, "mkdir", buf);
			return false;
		}
		*p = '/';
	}
	if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
		ms_fail_errno(err, "mkdir", buf);
		return false;
	}
	return true;
}

struct ms_store *
ms_store_new(const struct ms_store_settings *set, struct ms_error *err)
{
	struct ms_store *store;

	if (!make_path(set->root, err))
		return NULL;
	store = mp_xcalloc(1, sizeof(*store));
	store->root = mp_xstrdup(set->root);
	store->quota_bytes = set->quota_bytes;
	store->quota_messages = set->quota_messages;
	store->loop = set->loop;
	store->max_idle = set->max_idle_accounts > 0 ? set->max_idle_accounts
						     : MS_IDLE_ACCOUNTS;
	pthread_mutex_init(&store->lock, NULL);
	safe_host(store->host, sizeof(store->host));
	if (set->loop != NULL)
		store->notify = ms_notify_new(set->loop);
	return store;
}

void
ms_store_set_quota(struct ms_store *store, uint64_t bytes, uint64_t messages)
{
	pthread_mutex_lock(&store->lock);
	store->quota_bytes = bytes;
	store->quota_messages = messages;
	pthread_mutex_unlock(&store->lock);
}

static void evict_idle(struct ms_store *store);

void
ms_store_free(struct ms_store **storep)
{
	struct ms_store *store = *storep;

	if (store == NULL)
		return;
	ms_notify_free(&store->notify);
	store->max_idle = 0;
	evict_idle(store);
	if (store->users != NULL)
		mp_log(MP_LOG_ERROR, "event=mailstore_leak user=%s",
		       mp_q(store->users->address));
	pthread_mutex_destroy(&store->lock);
	free(store->root);
	free(store);
	*storep = NULL;
}

/* root/domain/localpart for a valid, lower-cased address. */
static char *
user_dir(const struct ms_store *store, const char *address)
{
	const char *at = strrchr(address, '@');

	return mp_xasprintf("%s/%s/%.*s", store->root, at + 1,
			    (int)(at - address), address);
}

static void
user_free(struct ms_user *u)
{
	sqlite3_close(u->rdb);
	sqlite3_close(u->wdb);
	pthread_mutex_destroy(&u->rlock);
	pthread_mutex_destroy(&u->wlock);
	free(u->address);
	free(u->dir);
	free(u);
}

static enum ms_result
init_account(struct ms_user *u, struct ms_error *err)
{
	int64_t n = 0;
	enum ms_result r;

	r = ms_db_int(u->wdb, "SELECT count(*) FROM mailboxes", -1, &n, err);
	if (r != MS_OK || n > 0)
		return r;
	if (!ms_fs_make_maildir(u->dir, err))
		return err->code;
	if ((r = ms_db_begin(u, err)) != MS_OK)
		return r;
	if ((r = ms_mailbox_create_defaults(u, err)) != MS_OK) {
		ms_db_rollback(u);
		return r;
	}
	return ms_db_commit(u, err);
}

static struct ms_user *
user_new(struct ms_store *store, const char *address, struct ms_error *err)
{
	struct ms_user *u = mp_xcalloc(1, sizeof(*u));
	char *index;

	u->store = store;
	u->refcount = 1;
	u->inotify_wd = -1;
	u->address = mp_xstrdup(address);
	u->dir = user_dir(store, address);
	pthread_mutex_init(&u->rlock, NULL);
	pthread_mutex_init(&u->wlock, NULL);
	if (!make_path(u->dir, err)) {
		user_free(u);
		return NULL;
	}
	index = mp_xasprintf("%s/" MS_INDEX_FILE, u->dir);
	if (ms_db_open(index, true, &u->wdb, err) != MS_OK ||
	    ms_db_open(index, false, &u->rdb, err) != MS_OK ||
	    init_account(u, err) != MS_OK) {
		free(index);
		user_free(u);
		return NULL;
	}
	free(index);
	ms_sync_pending_removals(u);
	return u;
}

static bool
normalize_address(const char *address, char *out, size_t size,
		  struct ms_error *err)
{
	size_t len = strlen(address);

	if (len >= size || !mp_address_is_valid(address)) {
		ms_fail(err, MS_ERR_BAD_NAME, "not a valid account address");
		return false;
	}
	for (size_t i = 0; i <= len; i++)
		out[i] = (char)tolower((unsigned char)address[i]);
	return true;
}

/* Closes accounts nobody uses beyond the idle allowance, oldest first.
 * Called where blocking is fine (opening an account runs off the loop):
 * closing an index checkpoints its WAL, which fsyncs. */
static void
evict_idle(struct ms_store *store)
{
	for (;;) {
		struct ms_user **oldest = NULL, *u;

		pthread_mutex_lock(&store->lock);
		if (store->n_idle > store->max_idle) {
			for (struct ms_user **p = &store->users; *p != NULL;
			     p = &(*p)->next) {
				if ((*p)->refcount == 0 &&
				    (oldest == NULL ||
				     (*p)->last_used < (*oldest)->last_used))
					oldest = p;
			}
		}
		u = oldest != NULL ? *oldest : NULL;
		if (u != NULL) {
			*oldest = u->next;
			store->n_idle--;
		}
		pthread_mutex_unlock(&store->lock);
		if (u == NULL)
			return;
		user_free(u);
	}
}

struct ms_user *
ms_user_open(struct ms_store *store, const char *address, struct ms_error *err)
{
	char addr[256];
	struct ms_user *u;

	if (!normalize_address(address, addr, sizeof(addr), err))
		return NULL;
	/* Held while a new account is set up, so two threads opening the
	 * same account share one handle. */
	pthread_mutex_lock(&store->lock);
	for (u = store->users; u != NULL; u = u->next) {
		if (strcmp(u->address, addr) == 0)
			break;
	}
	if (u != NULL) {
		if (u->refcount++ == 0)
			store->n_idle--;
	} else if ((u = user_new(store, addr, err)) != NULL) {
		u->next = store->users;
		store->users = u;
	}
	pthread_mutex_unlock(&store->lock);
	evict_idle(store);
	return u;
}

struct ms_user *
ms_user_ref(struct ms_user *u)
{
	pthread_mutex_lock(&u->store->lock);
	if (u->refcount++ == 0)
		u->store->n_idle--;
	pthread_mutex_unlock(&u->store->lock);
	return u;
}

void
ms_user_unref(struct ms_user **up)
{
	struct ms_user *u = *up;
	struct ms_store *store;

	*up = NULL;
	if (u == NULL)
		return;
	store = u->store;
	/* The last reference only parks the account: its index stays open
	 * for the next delivery or login (reopening one costs a WAL, its
	 * fsyncs and every prepared statement), and nothing is closed on
	 * the caller's thread, which may be the event loop. */
	pthread_mutex_lock(&store->lock);
	if (--u->refcount == 0) {
		store->n_idle++;
		u->last_used = ++store->use_clock;
	}
	pthread_mutex_unlock(&store->lock);
}

const char *
ms_user_address(const struct ms_user *u)
{
	return u->address;
}

const char *
ms_user_dir(const struct ms_user *u)
{
	return u->dir;
}

enum ms_result
ms_quota_get(struct ms_user *u, struct ms_quota *q, struct ms_error *err)
{
	sqlite3_stmt *st;
	int rc;

	memset(q, 0, sizeof(*q));
	pthread_mutex_lock(&u->store->lock);
	q->limit_bytes = u->store->quota_bytes;
	q->limit_messages = u->store->quota_messages;
	pthread_mutex_unlock(&u->store->lock);
	pthread_mutex_lock(&u->rlock);
	st = ms_db_prepare(
		u->rdb, "SELECT total(bytes), total(messages) FROM mailboxes",
		err);
	if (st == NULL) {
		pthread_mutex_unlock(&u->rlock);
		return err->code;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		q->bytes = (uint64_t)sqlite3_column_int64(st, 0);
		q->messages = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		ms_db_error(u->rdb, "quota", err);
	pthread_mutex_unlock(&u->rlock);
	return rc == SQLITE_ROW ? MS_OK : err->code;
}
