/* deliver-private.h - what the delivery pipeline, its append worker and
 * the Lua message binding share. */
#ifndef MOONPOST_DELIVER_PRIVATE_H
#define MOONPOST_DELIVER_PRIVATE_H

#include <moonpost/deliver.h>

struct lua_State;
struct mp_lua;

/* Longest header block read for rules and loop checks; a longer one is
 * seen cut (its first fields are the ones that matter: Received, From,
 * Subject). Bounds memory per delivery whatever a sender sends. */
#define MP_DELIVER_HEADER_MAX (256 * 1024)
/* Actions one handler run may ask for (copies, header edits). */
#define MP_DELIVER_ACTIONS_MAX 32

/* What the `deliver` handlers decided for one account. Without fileinto,
 * discard or redirect, the message is kept in INBOX (Sieve's implicit
 * keep). */
struct mp_deliver_actions {
	bool keep;    /* explicit keep: INBOX, besides any fileinto */
	bool discard; /* cancels the implicit keep */
	struct mp_strlist fileinto;
	struct mp_strlist fileinto_create; /* those that may be created */
	struct mp_strlist redirect;
	uint32_t flags; /* MS_FLAG_* */
	struct mp_strlist keywords;
	struct mp_strlist add_headers;    /* "Name: value" */
	struct mp_strlist remove_headers; /* names, lower case */
};

/* The message as a `deliver` handler sees it. */
struct mp_deliver_view {
	const char *sender;
	const char *recipient;          /* the account */
	const char *original_recipient; /* as the envelope said */
	const char *detail;             /* subaddress tag, or NULL */
	uint64_t size;
	const char *header; /* the header block, cut at MP_DELIVER_HEADER_MAX */
	size_t header_len;
	struct mp_deliver_actions *actions;
};

/* deliver-actions.c */

/* Frees what the actions hold; they are empty afterwards. */
void mp_deliver_actions_clear(struct mp_deliver_actions *a);
/* Number of actions recorded (bounded by MP_DELIVER_ACTIONS_MAX). */
size_t mp_deliver_actions_count(const struct mp_deliver_actions *a);
/* Checks a header field name (RFC 5322 ftext) and value (no CR, LF or
 * NUL; bounded); false with *error_r (static) when bad. */
bool mp_deliver_header_valid(const char *name, const char *value,
			     const char **error_r);

/* lua-message.c: the message object handed to `deliver` handlers. */

/* Pushes a message object for view onto L; it is valid until
 * mp_lua_message_release() with the returned id. */
uint64_t mp_lua_message_push(struct lua_State *L, struct mp_deliver_view *v);
/* Makes the object with id invalid: a script holding it gets an error. */
void mp_lua_message_release(struct lua_State *L, uint64_t id);

/* deliver-append.c: the mailstore side, run on the thread pool. */

/* One copy committed, for the `mailbox.append` notification. */
struct mp_deliver_copy {
	char *mailbox;
	uint32_t uid;
	uint32_t uidvalidity;
	uint64_t size;
};

struct mp_deliver_append {
	/* in */
	struct ms_store *store;
	char *account;
	int fd;
	uint64_t size;
	size_t header_len; /* bytes of the original header block read */
	bool header_complete;
	struct mp_buf prefix; /* header lines to put first */
	const struct mp_deliver_actions *actions;
	/* out */
	struct mp_deliver_result result;
	struct mp_strlist stored;       /* "mailbox:uid" for the log */
	struct mp_deliver_copy *copies; /* the same, for notifications */
	size_t n_copies;
	struct mp_strlist created; /* mailboxes fileinto created */
};

/* Appends the message to every mailbox the actions name. Blocking. */
void mp_deliver_append_run(struct mp_deliver_append *job);

/* deliver-notify.c */

/* What a `mailbox.append` notification tells of the delivery. */
struct mp_deliver_notify {
	const char *session_id; /* may be NULL */
	const char *sender;
	const char *header; /* the header block the rules saw */
	size_t header_len;
};

/* Queues `mailbox.create` for each mailbox job created and
 * `mailbox.append` for each copy it committed (loop thread). */
void mp_deliver_notify(struct mp_lua *lua, const struct mp_deliver_notify *n,
		       const struct mp_deliver_append *job);
/* Frees job->copies and job->created. */
void mp_deliver_copies_free(struct mp_deliver_append *job);

#endif
