/* ms-notify.c - telling sessions that a mailbox changed.
 *
 * A change in this process (committed on any thread) is queued and handed
 * to the loop through ev_async. A change in another process (`moonpost
 * deliver`, a second daemon) is announced by touching the account's
 * "changes" file, which inotify reports. Either way a watcher only learns
 * "this account changed" and asks the index what changed since the MODSEQ
 * it knows, so a lost or doubled notice costs nothing but a query. */
#include "config.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <moonpost/log.h>

#include "ms-private.h"

struct pending {
	struct pending *next;
	struct ms_user *user; /* referenced */
	char *mailbox;
};

struct ms_watch {
	struct ms_notify *notify;
	struct ms_watch *next;
	struct ms_user *user; /* referenced */
	ms_watch_fn *fn;
	void *ctx;
	bool removed;
};

struct ms_notify {
	struct ev_loop *loop;
	ev_async async;
	pthread_mutex_t lock;
	struct pending *head, *tail;
	int inotify_fd;
	ev_io inotify_io;
	struct ms_watch *watches;
	int dispatching;
};

static char *
changes_path(const struct ms_user *u)
{
	return mp_xasprintf("%s/" MS_CHANGES_FILE, u->dir);
}

/* Bumps the changes file's time, creating it on first use, and remembers
 * the time set so our own inotify event can be recognised. */
static void
touch_changes(struct ms_user *u)
{
	char *path = changes_path(u);
	struct timespec now[2];
	int64_t ns;

	clock_gettime(CLOCK_REALTIME, &now[0]);
	now[1] = now[0];
	ns = (int64_t)now[0].tv_sec * 1000000000 + now[0].tv_nsec;
	__atomic_store_n(&u->self_touch_ns, ns, __ATOMIC_RELAXED);
	if (utimensat(AT_FDCWD, path, now, 0) != 0 && errno == ENOENT) {
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd >= 0) {
			futimens(fd, now);
			close(fd);
		}
	}
	free(path);
}

/* True when the changes file still carries the time this process set. */
static bool
self_touched(struct ms_user *u)
{
	char *path = changes_path(u);
	int64_t mtime = ms_fs_mtime_ns(path);

	free(path);
	return mtime == __atomic_load_n(&u->self_touch_ns, __ATOMIC_RELAXED);
}

static void
dispatch(struct ms_notify *n, struct ms_user *u, int wd, const char *mailbox)
{
	n->dispatching++;
	for (struct ms_watch *w = n->watches; w != NULL; w = w->next) {
		if (w->removed)
			continue;
		if (u != NULL && w->user == u)
			w->fn(w->user, mailbox, w->ctx);
		else if (u == NULL && w->user->inotify_wd == wd &&
			 !self_touched(w->user))
			w->fn(w->user, mailbox, w->ctx);
	}
	if (--n->dispatching > 0)
		return;
	for (struct ms_watch **p = &n->watches; *p != NULL;) {
		struct ms_watch *w = *p;

		if (!w->removed) {
			p = &w->next;
			continue;
		}
		*p = w->next;
		ms_user_unref(&w->user);
		free(w);
	}
}

static void
async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct ms_notify *n = w->data;
	struct pending *list;

	pthread_mutex_lock(&n->lock);
	list = n->head;
	n->head = n->tail = NULL;
	pthread_mutex_unlock(&n->lock);
	while (list != NULL) {
		struct pending *p = list;

		list = p->next;
		dispatch(n, p->user, -1, p->mailbox);
		ms_user_unref(&p->user);
		free(p->mailbox);
		free(p);
	}
}

static void
inotify_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ms_notify *n = w->data;
	char buf[4096]
		__attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t len = read(n->inotify_fd, buf, sizeof(buf));

	for (ssize_t off = 0; len > 0 && off < len;) {
		const struct inotify_event *e = (const void *)(buf + off);

		dispatch(n, NULL, e->wd, NULL);
		off += (ssize_t)(sizeof(*e) + e->len);
	}
}

struct ms_notify *
ms_notify_new(struct ev_loop *loop)
{
	struct ms_notify *n = mp_xcalloc(1, sizeof(*n));

	n->loop = loop;
	pthread_mutex_init(&n->lock, NULL);
	ev_async_init(&n->async, async_cb);
	n->async.data = n;
	ev_async_start(loop, &n->async);
	ev_unref(loop);
	n->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (n->inotify_fd >= 0) {
		ev_io_init(&n->inotify_io, inotify_cb, n->inotify_fd, EV_READ);
		n->inotify_io.data = n;
		ev_io_start(loop, &n->inotify_io);
		ev_unref(loop);
	} else {
		mp_log(MP_LOG_WARN, "event=inotify_unavailable error=%s",
		       mp_q(strerror(errno)));
	}
	return n;
}

void
ms_notify_free(struct ms_notify **np)
{
	struct ms_notify *n = *np;

	if (n == NULL)
		return;
	async_cb(n->loop, &n->async, 0);
	ev_ref(n->loop);
	ev_async_stop(n->loop, &n->async);
	if (n->inotify_fd >= 0) {
		ev_ref(n->loop);
		ev_io_stop(n->loop, &n->inotify_io);
		close(n->inotify_fd);
	}
	while (n->watches != NULL) {
		struct ms_watch *w = n->watches;
		n->watches = w->next;
		ms_user_unref(&w->user);
		free(w);
	}
	pthread_mutex_destroy(&n->lock);
	free(n);
	*np = NULL;
}

void
ms_notify_changed(struct ms_user *u, const char *mailbox)
{
	struct ms_notify *n = u->store->notify;
	struct pending *p;

	touch_changes(u);
	if (n == NULL)
		return;
	p = mp_xcalloc(1, sizeof(*p));
	p->user = ms_user_ref(u);
	p->mailbox = mp_xstrdup(mailbox);
	pthread_mutex_lock(&n->lock);
	if (n->tail != NULL)
		n->tail->next = p;
	else
		n->head = p;
	n->tail = p;
	pthread_mutex_unlock(&n->lock);
	ev_async_send(n->loop, &n->async);
}

struct ms_watch *
ms_watch_add(struct ms_user *u, ms_watch_fn *fn, void *ctx)
{
	struct ms_notify *n = u->store->notify;
	struct ms_watch *w;

	if (n == NULL)
		return NULL;
	w = mp_xcalloc(1, sizeof(*w));
	w->notify = n;
	w->user = ms_user_ref(u);
	w->fn = fn;
	w->ctx = ctx;
	w->next = n->watches;
	n->watches = w;
	if (u->watch_count++ == 0 && n->inotify_fd >= 0) {
		char *path = changes_path(u);

		touch_changes(u);
		u->inotify_wd = inotify_add_watch(n->inotify_fd, path,
						  IN_ATTRIB | IN_MODIFY);
		free(path);
	}
	return w;
}

void
ms_watch_remove(struct ms_watch **wp)
{
	struct ms_watch *w = *wp;
	struct ms_notify *n;

	if (w == NULL)
		return;
	*wp = NULL;
	n = w->notify;
	if (--w->user->watch_count == 0 && w->user->inotify_wd >= 0) {
		inotify_rm_watch(n->inotify_fd, w->user->inotify_wd);
		w->user->inotify_wd = -1;
	}
	w->removed = true;
	if (n->dispatching == 0)
		dispatch(n, NULL, -2, NULL); /* sweeps removed watches */
}
