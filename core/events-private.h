/* events-private.h - a notification's arguments, kept in C until its
 * handlers run, and the queue that runs them (events-queue.c). */
#ifndef MOONPOST_EVENTS_PRIVATE_H
#define MOONPOST_EVENTS_PRIVATE_H

#include <moonpost/events.h>

struct lua_State;

/* Fields of the largest event table (mailbox.append). */
#define MP_EVENT_FIELDS_MAX 16

enum mp_event_field_kind {
	MP_EF_STR,      /* s */
	MP_EF_INT,      /* i */
	MP_EF_BOOL,     /* i != 0 */
	MP_EF_INTS,     /* v[0..n): an array of integers */
	MP_EF_STRS,     /* names[0..n): an array of strings */
	MP_EF_COUNTERS, /* {names[k] = v[k]} */
};

struct mp_event_field {
	const char *key; /* static */
	enum mp_event_field_kind kind;
	char *s;
	int64_t i;
	uint64_t *v;
	char **names;
	size_t n;
};

/* One hook's argument: a table of fields. */
struct mp_event {
	struct mp_event *next;
	struct mp_lua *lua;       /* queued or running: a reference */
	struct mp_lua_call *call; /* running and waiting */
	const char *hook;         /* static */
	char *session;
	struct mp_event_field f[MP_EVENT_FIELDS_MAX];
	size_t nf;
};

/* A new empty event for hook (static string); caller owns it. */
struct mp_event *mp_event_new(const char *hook, const char *session);
/* Frees e and what its fields hold; sets *e NULL. */
void mp_event_free(struct mp_event **e);
/* Adds fields (s may be NULL: the field is left out). */
void mp_event_str(struct mp_event *e, const char *key, const char *s);
void mp_event_int(struct mp_event *e, const char *key, int64_t i);
void mp_event_bool(struct mp_event *e, const char *key, bool b);
void mp_event_uids(struct mp_event *e, const char *key, const uint32_t *uids,
		   size_t n);
/* flags (MS_FLAG_*) as "\\Seen"... then the space-separated keywords. */
void mp_event_flags(struct mp_event *e, const char *key, uint32_t flags,
		    const char *keywords);
void mp_event_counters(struct mp_event *e, const char *key,
		       const struct mp_event_counter *c, size_t n);
/* [-0, +1, m] Pushes e as a table. */
void mp_event_push(struct lua_State *L, const struct mp_event *e);

/* Queues e (taking it) for lua's handlers of e->hook; drops it, counted,
 * when the queue is full. */
void mp_events_queue(struct mp_lua *lua, struct mp_event *e);
/* Drops what lua has queued and cancels what runs (the server stops):
 * handlers waiting (an HTTP request) are abandoned. Logs how many. */
void mp_events_abandon(struct mp_lua *lua);
/* Frees the queue state of a runtime being freed (nothing is queued: each
 * queued event holds a reference). */
void mp_events_free(struct mp_lua *lua);

#endif
