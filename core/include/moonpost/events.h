/* events.h - the `login`, `logout` and `mailbox.*` Lua hooks, which POP3,
 * IMAP and local delivery share.
 *
 * `login` is a check: it runs after the password (or SASL exchange) was
 * accepted and before the session counts as logged in, and may refuse.
 * Everything else is a notification, fired after the mailstore committed
 * the change: it is queued, and each runs later on the loop thread in its
 * own coroutine with the normal budgets; what a handler returns (or how it
 * fails) changes nothing but a log line. The queue is bounded
 * (MP_EVENTS_QUEUE_MAX): past it, notifications are dropped and counted,
 * so a slow script cannot grow memory without end.
 *
 * Every function here is cheap when no script registered the hook: it
 * returns (or, for login, calls done) at once, allocating nothing.
 *
 * A protocol calls, with lua = mp_server_lua(server) at the time of the
 * event (the runtime is referenced while events wait for it):
 *
 *   after authentication      mp_event_login(lua, &info, done, ctx)
 *                             and mp_login_check_cancel() if the session
 *                             closes before done
 *   when the session ends     mp_event_logout(lua, &info, reason, counters)
 *   CREATE / DELETE / RENAME  mp_event_mailbox_create/delete/rename()
 *   APPEND, COPY/MOVE target  mp_event_mailbox_append() once per message
 *   EXPUNGE, CLOSE, MOVE src  mp_event_mailbox_expunge() with the UIDs that
 *                             went (ms_change_list.uids)
 *   STORE                     mp_event_mailbox_flags() with the UIDs that
 *                             changed (ms_change_list.msgs)
 *
 * IMAP (see docs/lua.md for the tables the handlers get) would, for
 * example, after a STORE +FLAGS (\Seen) that committed:
 *
 *   struct mp_event_who who = {"imap", s->account, mp_conn_id(s->conn)};
 *   struct mp_event_flags f = {.mailbox = name, .uidvalidity = uv,
 *       .uids = uids, .n = n, .mode = MP_EVENT_FLAGS_ADD,
 *       .flags = MS_FLAG_SEEN};
 *   mp_event_mailbox_flags(mp_server_lua(s->server), &who, &f);
 */
#ifndef MOONPOST_EVENTS_H
#define MOONPOST_EVENTS_H

#include <moonpost/common.h>

struct mp_lua;
struct mp_login_check;

/* Notifications waiting or running, per Lua runtime, past which new ones
 * are dropped (and counted): bounds the memory a slow handler (a webhook
 * that hangs) can make the server hold. */
#define MP_EVENTS_QUEUE_MAX 10000
/* Notification calls running at once; the rest wait in the queue, in
 * order. Bounds the sockets and coroutines a burst of mail can open. */
#define MP_EVENTS_RUNNING_MAX 32

/* A logged-in session, as `login` and `logout` see it. Strings are
 * borrowed for the duration of the call that takes them. */
struct mp_session_info {
	const char *service;    /* "imap", "pop3" */
	const char *user;       /* the account, as the auth service names it */
	const char *session_id; /* what the log lines carry */
	const char *ip;         /* the client */
	int port;
	const char *local_ip; /* the address the client connected to */
	int local_port;
	bool tls;
	const char *mechanism; /* "USER", "LOGIN", "PLAIN", "SCRAM-SHA-256" */
};

enum mp_login_result {
	MP_LOGIN_OK = 0,     /* continue or accept: log the session in */
	MP_LOGIN_REFUSED,    /* reject: a permanent authentication failure */
	MP_LOGIN_TEMPFAIL,   /* defer, or the script failed: try later */
	MP_LOGIN_DISCONNECT, /* disconnect: refuse and close the connection */
};

/* The outcome of a login check; text is the handler's reply text ("" when
 * it gave none; a script failure gives ""), borrowed for the call. */
typedef void mp_login_done_fn(enum mp_login_result result, const char *text,
			      void *ctx);

/* Runs the `login` handlers for info. done is called exactly once unless
 * the check is cancelled, possibly before this returns (always, when no
 * handler is registered or lua is NULL); then NULL is returned, otherwise
 * a handle for mp_login_check_cancel(). A script error or timeout gives
 * MP_LOGIN_TEMPFAIL (and a log line with file:line), never MP_LOGIN_OK. */
MP_API struct mp_login_check *mp_event_login(struct mp_lua *lua,
					     const struct mp_session_info *info,
					     mp_login_done_fn *done, void *ctx);
/* Abandons a login check (the session closed): done will not be called.
 * Sets *check NULL; NULL is fine. */
MP_API void mp_login_check_cancel(struct mp_login_check **check);

/* A named number the protocol reports at logout ("retrieved", "deleted"). */
struct mp_event_counter {
	const char *name;
	uint64_t value;
};

/* Queues a `logout` notification. reason: "quit", "timeout",
 * "disconnected", "shutdown"... counters (n of them, may be NULL) are
 * copied. */
MP_API void mp_event_logout(struct mp_lua *lua,
			    const struct mp_session_info *info,
			    const char *reason,
			    const struct mp_event_counter *counters, size_t n);

/* Who made a mailbox change. session_id may be NULL (delivery by
 * `moonpost deliver`). */
struct mp_event_who {
	const char *service; /* "imap", "pop3", "deliver" */
	const char *user;    /* the account whose mailbox changed */
	const char *session_id;
};

/* Queue `mailbox.create`, `mailbox.delete` and `mailbox.rename`. */
MP_API void mp_event_mailbox_create(struct mp_lua *lua,
				    const struct mp_event_who *who,
				    const char *mailbox);
MP_API void mp_event_mailbox_delete(struct mp_lua *lua,
				    const struct mp_event_who *who,
				    const char *mailbox);
MP_API void mp_event_mailbox_rename(struct mp_lua *lua,
				    const struct mp_event_who *who,
				    const char *old_name, const char *new_name);

/* One message added to a mailbox. */
struct mp_event_append {
	const char *mailbox;
	uint32_t uid;
	uint32_t uidvalidity;
	uint64_t size;        /* bytes stored */
	uint32_t flags;       /* MS_FLAG_* */
	const char *keywords; /* space-separated; NULL or "" for none */
	/* Deliveries only (NULL otherwise): the envelope sender ("" for
	 * <>) and, when the header has them, From, Subject (RFC 2047
	 * decoded) and Message-ID. */
	const char *sender;
	const char *from;
	const char *subject;
	const char *message_id;
};

/* Queues `mailbox.append`; everything in a is copied. */
MP_API void mp_event_mailbox_append(struct mp_lua *lua,
				    const struct mp_event_who *who,
				    const struct mp_event_append *a);
/* Queues `mailbox.expunge` for the n UIDs (copied) that went. */
MP_API void mp_event_mailbox_expunge(struct mp_lua *lua,
				     const struct mp_event_who *who,
				     const char *mailbox, uint32_t uidvalidity,
				     const uint32_t *uids, size_t n);

enum mp_event_flags_mode {
	MP_EVENT_FLAGS_ADD = 0, /* flags were set on the messages */
	MP_EVENT_FLAGS_REMOVE,  /* flags were cleared */
	MP_EVENT_FLAGS_REPLACE, /* the messages now have exactly flags */
};

/* Flags changed on some messages. */
struct mp_event_flags {
	const char *mailbox;
	uint32_t uidvalidity;
	const uint32_t *uids; /* the messages that actually changed */
	size_t n;
	enum mp_event_flags_mode mode;
	uint32_t flags;       /* MS_FLAG_* */
	const char *keywords; /* space-separated; NULL or "" for none */
};

/* Queues `mailbox.flags`; everything in f is copied. */
MP_API void mp_event_mailbox_flags(struct mp_lua *lua,
				   const struct mp_event_who *who,
				   const struct mp_event_flags *f);

/* Notifications queued or running on lua (0 for NULL). */
MP_API size_t mp_events_pending(const struct mp_lua *lua);
/* Notifications dropped on lua because the queue was full. */
MP_API uint64_t mp_events_dropped(const struct mp_lua *lua);

#endif
