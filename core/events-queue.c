/* events-queue.c - notification arguments and the bounded queue that runs
 * their handlers.
 *
 * A notification is copied into C (struct mp_event) when it is fired, so
 * the caller's buffers may go at once, and turned into a Lua table only
 * when its call starts. Calls start from a zero-delay timer, never inside
 * the caller's stack: a protocol firing an event from a mailstore callback
 * does not run Lua there. At most MP_EVENTS_RUNNING_MAX run at once, the
 * rest wait in order; past MP_EVENTS_QUEUE_MAX waiting or running, new
 * ones are dropped and counted. Each queued event holds a reference to
 * its runtime, so a reload lets the old generation finish its queue. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include <moonpost/log.h>
#include <moonpost/mailstore.h>

#include "events-private.h"
#include "lua-private.h"

/* One line per this many drops after the first, so a storm of them does
 * not become a storm of log lines. */
#define DROP_LOG_EVERY 1000

struct mp_events {
	struct ev_loop *loop;
	ev_timer kick;
	struct mp_event *head, *tail;
	size_t queued;           /* waiting in head..tail */
	struct mp_event *active; /* started and not yet done, a list */
	size_t running;
	uint64_t dropped;
};

/* ---- building ---------------------------------------------------------- */

struct mp_event *
mp_event_new(const char *hook, const char *session)
{
	struct mp_event *e = mp_xcalloc(1, sizeof(*e));

	e->hook = hook;
	e->session = mp_xstrdup(session);
	return e;
}

void
mp_event_free(struct mp_event **ep)
{
	struct mp_event *e = *ep;

	if (e == NULL)
		return;
	for (size_t i = 0; i < e->nf; i++) {
		struct mp_event_field *f = &e->f[i];

		for (size_t k = 0; f->names != NULL && k < f->n; k++)
			free(f->names[k]);
		free(f->names);
		free(f->v);
		free(f->s);
	}
	free(e->session);
	free(e);
	*ep = NULL;
}

static struct mp_event_field *
field_add(struct mp_event *e, const char *key, enum mp_event_field_kind kind)
{
	struct mp_event_field *f;

	/* A programmer error: the events are fixed in events.c. */
	if (e->nf >= MP_EVENT_FIELDS_MAX)
		abort();
	f = &e->f[e->nf++];
	f->key = key;
	f->kind = kind;
	return f;
}

void
mp_event_str(struct mp_event *e, const char *key, const char *s)
{
	if (s != NULL)
		field_add(e, key, MP_EF_STR)->s = mp_xstrdup(s);
}

void
mp_event_int(struct mp_event *e, const char *key, int64_t i)
{
	field_add(e, key, MP_EF_INT)->i = i;
}

void
mp_event_bool(struct mp_event *e, const char *key, bool b)
{
	field_add(e, key, MP_EF_BOOL)->i = b;
}

void
mp_event_uids(struct mp_event *e, const char *key, const uint32_t *uids,
	      size_t n)
{
	struct mp_event_field *f = field_add(e, key, MP_EF_INTS);

	f->v = mp_xcalloc(n > 0 ? n : 1, sizeof(*f->v));
	for (size_t i = 0; i < n; i++)
		f->v[i] = uids[i];
	f->n = n;
}

static void
names_add(struct mp_event_field *f, const char *s, size_t len)
{
	f->names = mp_xrealloc(f->names, (f->n + 1) * sizeof(*f->names));
	f->names[f->n++] = mp_xstrndup(s, len);
}

void
mp_event_flags(struct mp_event *e, const char *key, uint32_t flags,
	       const char *keywords)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} system[] = {
		{MS_FLAG_SEEN, "\\Seen"},
		{MS_FLAG_ANSWERED, "\\Answered"},
		{MS_FLAG_FLAGGED, "\\Flagged"},
		{MS_FLAG_DELETED, "\\Deleted"},
		{MS_FLAG_DRAFT, "\\Draft"},
	};
	struct mp_event_field *f = field_add(e, key, MP_EF_STRS);
	const char *p = keywords != NULL ? keywords : "";

	for (size_t i = 0; i < MP_NELEMS(system); i++) {
		if (flags & system[i].bit)
			names_add(f, system[i].name, strlen(system[i].name));
	}
	while (*p != '\0') {
		size_t len = strcspn(p, " ");

		if (len > 0)
			names_add(f, p, len);
		p += len + (p[len] == ' ');
	}
}

void
mp_event_counters(struct mp_event *e, const char *key,
		  const struct mp_event_counter *c, size_t n)
{
	struct mp_event_field *f = field_add(e, key, MP_EF_COUNTERS);

	f->v = mp_xcalloc(n > 0 ? n : 1, sizeof(*f->v));
	for (size_t i = 0; i < n; i++) {
		names_add(f, c[i].name, strlen(c[i].name));
		f->v[i] = c[i].value;
	}
}

/* [-0, +1, m] */
static void
field_push(lua_State *L, const struct mp_event_field *f)
{
	switch (f->kind) {
	case MP_EF_STR:
		lua_pushstring(L, f->s);
		return;
	case MP_EF_INT:
		lua_pushinteger(L, f->i);
		return;
	case MP_EF_BOOL:
		lua_pushboolean(L, f->i != 0);
		return;
	case MP_EF_INTS:
	case MP_EF_STRS:
		lua_createtable(L, (int)f->n, 0);
		for (size_t k = 0; k < f->n; k++) {
			if (f->kind == MP_EF_INTS)
				lua_pushinteger(L, (lua_Integer)f->v[k]);
			else
				lua_pushstring(L, f->names[k]);
			lua_rawseti(L, -2, (lua_Integer)k + 1);
		}
		return;
	case MP_EF_COUNTERS:
		lua_createtable(L, 0, (int)f->n);
		for (size_t k = 0; k < f->n; k++) {
			lua_pushinteger(L, (lua_Integer)f->v[k]);
			lua_setfield(L, -2, f->names[k]);
		}
		return;
	}
}

void
mp_event_push(lua_State *L, const struct mp_event *e)
{
	lua_createtable(L, 0, (int)e->nf);
	for (size_t i = 0; i < e->nf; i++) {
		field_push(L, &e->f[i]);
		lua_setfield(L, -2, e->f[i].key);
	}
}

/* ---- the queue --------------------------------------------------------- */

static void kick_cb(struct ev_loop *loop, ev_timer *w, int revents);

static struct mp_events *
events_get(struct mp_lua *lua)
{
	struct mp_events *q = lua->events;

	if (q != NULL)
		return q;
	q = mp_xcalloc(1, sizeof(*q));
	q->loop = lua->loop;
	ev_timer_init(&q->kick, kick_cb, 0.0, 0.0);
	q->kick.data = lua;
	lua->events = q;
	return q;
}

void
mp_events_free(struct mp_lua *lua)
{
	struct mp_events *q = lua->events;

	if (q == NULL)
		return;
	if (q->loop != NULL)
		ev_timer_stop(q->loop, &q->kick);
	while (q->head != NULL) {
		struct mp_event *e = q->head;

		q->head = e->next;
		mp_event_free(&e);
	}
	free(q);
	lua->events = NULL;
}

static int
event_push_cb(struct lua_State *L, void *ctx)
{
	mp_event_push(L, ctx);
	return 1;
}

/* A notification's handlers are done; the verdict does not matter (a
 * failure was logged by the call). */
static void
active_remove(struct mp_events *q, struct mp_event *e)
{
	struct mp_event **p = &q->active;

	while (*p != e)
		p = &(*p)->next;
	*p = e->next;
	q->running--;
}

static void
event_done(const struct mp_verdict *v, void *ctx)
{
	struct mp_event *e = ctx;
	struct mp_lua *lua = e->lua;

	(void)v;
	active_remove(lua->events, e);
	mp_event_free(&e);
	if (lua->events->queued > 0 && lua->loop != NULL)
		ev_timer_start(lua->loop, &lua->events->kick);
	mp_lua_unref(&lua);
}

static void
start_one(struct mp_lua *lua)
{
	struct mp_events *q = lua->events;
	struct mp_event *e = q->head;
	struct mp_lua_call *call;

	q->head = e->next;
	if (q->head == NULL)
		q->tail = NULL;
	q->queued--;
	q->running++;
	e->next = q->active;
	q->active = e;
	call = mp_lua_call_hook(lua, e->hook, e->session, event_push_cb,
				event_done, e);
	if (call != NULL)
		e->call = call; /* waiting; NULL: done ran and e is gone */
}

/* Starts waiting events up to the running bound. */
static void
events_run(struct mp_lua *lua)
{
	/* A finishing call may drop the last other reference. */
	mp_lua_ref(lua);
	while (lua->events->queued > 0 &&
	       lua->events->running < MP_EVENTS_RUNNING_MAX)
		start_one(lua);
	mp_lua_unref(&lua);
}

static void
kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	events_run(w->data);
}

static void
log_drop(const struct mp_events *q, const struct mp_event *e)
{
	if (q->dropped != 1 && q->dropped % DROP_LOG_EVERY != 0)
		return;
	mp_log(MP_LOG_WARN,
	       "session=%s event=events_dropped hook=%s dropped=%llu "
	       "queue_max=%d",
	       e->session != NULL ? e->session : "-", e->hook,
	       (unsigned long long)q->dropped, MP_EVENTS_QUEUE_MAX);
}

void
mp_events_queue(struct mp_lua *lua, struct mp_event *e)
{
	struct mp_events *q = events_get(lua);

	if (q->queued + q->running >= MP_EVENTS_QUEUE_MAX) {
		q->dropped++;
		log_drop(q, e);
		mp_event_free(&e);
		return;
	}
	e->lua = mp_lua_ref(lua);
	e->next = NULL;
	if (q->tail != NULL)
		q->tail->next = e;
	else
		q->head = e;
	q->tail = e;
	q->queued++;
	if (lua->loop == NULL) {
		/* A tool without a loop: run now (handlers cannot wait). */
		events_run(lua);
		return;
	}
	ev_timer_start(lua->loop, &q->kick);
}

/* Frees e and drops the reference it held. */
static void
event_drop(struct mp_event *e)
{
	struct mp_lua *lua = e->lua;

	mp_event_free(&e);
	mp_lua_unref(&lua);
}

void
mp_events_abandon(struct mp_lua *lua)
{
	struct mp_events *q = lua != NULL ? lua->events : NULL;
	size_t n;

	if (q == NULL || q->queued + q->running == 0)
		return;
	n = q->queued + q->running;
	mp_log(MP_LOG_WARN, "event=events_abandoned count=%zu", n);
	mp_lua_ref(lua); /* the last drop must not free q under us */
	if (q->loop != NULL)
		ev_timer_stop(q->loop, &q->kick);
	while (q->head != NULL) {
		struct mp_event *e = q->head;

		q->head = e->next;
		q->queued--;
		event_drop(e);
	}
	q->tail = NULL;
	while (q->active != NULL) {
		struct mp_event *e = q->active;

		q->active = e->next;
		q->running--;
		mp_lua_call_cancel(&e->call);
		event_drop(e);
	}
	mp_lua_unref(&lua);
}

size_t
mp_events_pending(const struct mp_lua *lua)
{
	if (lua == NULL || lua->events == NULL)
		return 0;
	return lua->events->queued + lua->events->running;
}

uint64_t
mp_events_dropped(const struct mp_lua *lua)
{
	if (lua == NULL || lua->events == NULL)
		return 0;
	return lua->events->dropped;
}
