/* imap-private.h - the IMAP plugin's session and what its files share.
 *
 * One struct imap_session per connection. Lines and literals from the core
 * go through the pure parser (imap-parser.c); a complete command is looked
 * up in the command table (imap-commands.c) and run by its handler. A
 * handler either finishes at once (imap_cmd_done() and MP_OK) or returns
 * MP_AGAIN and finishes later from a thread-pool completion or from
 * on_writable, after which input resumes. One command runs at a time:
 * pipelined commands wait in the connection's buffer, answered in order.
 *
 * The selected mailbox is a struct imap_view (imap-view.c): the session's
 * own sequence-number map and what it has told the client, brought up to
 * date by imap_view_sync() before each tagged reply. */
#ifndef IMAP_PRIVATE_H
#define IMAP_PRIVATE_H

#include <stdatomic.h>

#include <moonpost/conn.h>
#include <moonpost/plugin.h>

#include "imap-parser.h"
#include "imap-seqset.h"

struct imap_session;
struct imap_append;
struct imap_view;
struct ms_msg;
struct mp_auth_request;
struct mp_auth_sasl;
struct ms_user;
struct ms_change_list;
struct mp_login_check;
struct mp_session_info;

/* Before authentication a line or command is small (the parser's own
 * limits apply on top); after it, APPEND data is streamed and only the
 * command text counts. */
#define IMAP_LINE_MAX_PRE  8192
#define IMAP_LINE_MAX_AUTH 65536
/* Octets of the base64 client response of an AUTHENTICATE exchange. */
#define IMAP_SASL_LINE_MAX 8192

/* The `imap { ... }` section. */
struct imap_config {
	uint64_t timeout_preauth; /* ms of silence before login */
	uint64_t timeout;         /* ms of silence after (RFC: >= 30 min) */
	int64_t max_errors;       /* BAD replies in a row before closing */
	int64_t append_limit;     /* APPENDLIMIT: octets of one message */
};

extern const struct mp_cfg_section imap_config_section;

enum imap_state {
	IMAP_S_NOT_AUTH = 1 << 0,
	IMAP_S_AUTH = 1 << 1,
	IMAP_S_SELECTED = 1 << 2,
	IMAP_S_LOGOUT = 1 << 3,
};
#define IMAP_S_ANY   (IMAP_S_NOT_AUTH | IMAP_S_AUTH | IMAP_S_SELECTED)
#define IMAP_S_LOGIN (IMAP_S_AUTH | IMAP_S_SELECTED)

/* ENABLEd extensions (RFC 5161) and those a command turned on. */
enum imap_enabled {
	IMAP_EN_REV2 = 1 << 0,      /* IMAP4rev2 (RFC 9051) */
	IMAP_EN_UTF8 = 1 << 1,      /* UTF8=ACCEPT (RFC 6855) */
	IMAP_EN_CONDSTORE = 1 << 2, /* RFC 7162 3.1 */
	IMAP_EN_QRESYNC = 1 << 3,   /* RFC 7162 3.2 (implies CONDSTORE) */
};

enum imap_cmd_flags {
	/* May be prefixed with UID. */
	IMAP_CMD_UID = 1 << 0,
	/* RFC 9051 7.5.1: no EXPUNGE while answering FETCH, STORE or SEARCH
	 * by sequence number; they are held until a later command. */
	IMAP_CMD_NO_EXPUNGE = 1 << 1,
	/* Takes no arguments: anything after the name is BAD. */
	IMAP_CMD_NO_ARGS = 1 << 2,
};

/* A command the table knows. run() returns MP_OK when it answered
 * (imap_cmd_done() was called) and MP_AGAIN when it answers later. */
struct imap_cmd_def {
	const char *name; /* upper case, without "UID " */
	unsigned states;  /* enum imap_state: where it may run */
	unsigned flags;   /* enum imap_cmd_flags */
	enum mp_status (*run)(struct imap_session *s,
			      const struct imap_command *cmd);
};

/* A table of commands, ended by an entry with name NULL. Each file that
 * implements commands exports one; imap-commands.c lists them all. */
extern const struct imap_cmd_def imap_session_cmds[];
extern const struct imap_cmd_def imap_auth_cmds[];
extern const struct imap_cmd_def imap_view_cmds[];
extern const struct imap_cmd_def imap_mailbox_cmds[];
extern const struct imap_cmd_def imap_list_cmds[];
extern const struct imap_cmd_def imap_store_cmds[];
extern const struct imap_cmd_def imap_copy_cmds[];
extern const struct imap_cmd_def imap_fetch_cmds[];
extern const struct imap_cmd_def imap_append_cmds[];
extern const struct imap_cmd_def imap_search_cmds[];
extern const struct imap_cmd_def imap_sort_cmds[];

/* The selected mailbox as this session sees it (imap-view.c). */
struct imap_view {
	struct ms_mailbox *mb;
	struct ms_watch *watch;
	char *name; /* UTF-8, as the mailstore names it */
	bool readonly;
	uint32_t uidvalidity;
	/* Message sequence number i is uids[i - 1]: the messages the
	 * client has been told of, expunges it has not heard of included. */
	uint32_t *uids;
	size_t n, cap;
	/* UIDs at or above this are \Recent in this session; 0: none. */
	uint32_t first_recent;
	/* Every change up to this MODSEQ has been reported. */
	uint64_t modseq;
	/* A change notification arrived since the last sync. */
	bool dirty;
	/* SEARCHRES (RFC 5182): the saved result, as UIDs. */
	struct imap_seqset saved;
};

/* Work of a command on the thread pool. Each job struct starts with
 * this; when the session goes away first, s becomes NULL and the job's
 * completion only frees it. */
struct imap_job {
	struct imap_session *s;
	/* Set on the loop as the session closes; work on the pool that
	 * may run long (a search of a big mailbox) checks it and stops. */
	atomic_bool cancelled;
	/* When set, called as the session closes (after s is cleared):
	 * for a command whose state lives on without pool work to free it
	 * (a response streaming on on_writable). */
	void (*abort)(struct imap_job *job);
};

/* The command being answered. */
struct imap_request {
	char *tag; /* owned copy: the parser's storage moves on */
	const struct imap_cmd_def *def;
	bool uid;     /* UID FETCH and friends */
	bool running; /* between dispatch and imap_cmd_done() */
	const struct imap_command *cmd; /* valid while running: input is
					   held, the parser keeps it */
};

struct imap_session {
	struct mp_conn *conn;
	struct mp_server *server;
	const struct imap_config *cfg;
	enum imap_state state;
	unsigned enabled; /* enum imap_enabled */
	unsigned errors;  /* BAD replies in a row */
	bool quitting;
	bool shutdown_after; /* the server stops: BYE once idle */

	struct imap_parser *parser;
	struct imap_parser_limits limits;
	/* Input of the literal being read: its use, octets still due. */
	enum imap_literal_use lit_use;
	uint64_t lit_left;
	bool in_literal;
	/* APPEND: the message being streamed into the mailstore. */
	struct imap_append *append;

	struct imap_request req;

	/* Logging in. */
	struct mp_auth_request *auth_req;
	struct mp_auth_sasl *sasl; /* AUTHENTICATE under way */
	bool authenticating;       /* lines are SASL responses */
	char *account;
	struct ms_user *user;
	/* The `login` hook deciding (imap-events.c), and what it decides
	 * on: the account and mechanism. */
	struct mp_login_check *login_check;
	char *login_account;
	char *mechanism;
	/* Why the session ends, for the `logout` hook; NULL: dropped. */
	const char *end_reason;
	/* Counters the `logout` hook reports. */
	uint64_t n_commands, n_appended, n_expunged;

	/* The running command's work on the thread pool, or NULL. */
	struct imap_job *job;

	/* SELECTED */
	struct imap_view *view;
	bool idling; /* between IDLE's "+" and DONE */

	/* A long response in progress (FETCH): called when output drains
	 * below the low-water mark after mp_conn_want_writable(). */
	void (*on_writable)(struct imap_session *s);
};

/* --- imap-session.c: replies and the command's end --------------------- */

/* Writes "* " text CRLF. */
void imap_untagged(struct imap_session *s, const char *fmt, ...)
	MP_PRINTF(2, 3);
/* Writes len raw bytes (a response built in a buffer). */
void imap_write(struct imap_session *s, const void *data, size_t len);
/* Ends the running command: brings the selected mailbox up to date (when
 * status is OK or NO), writes "tag status [code] text" and resumes input
 * if the command had waited. code may be NULL. */
void imap_cmd_done(struct imap_session *s, const char *status, const char *code,
		   const char *text);
/* imap_cmd_done(s, "OK", NULL, "<NAME> completed"). */
void imap_cmd_ok(struct imap_session *s);
/* A BAD for the running command, counted against max_errors. */
void imap_cmd_bad(struct imap_session *s, const char *code, const char *text);
/* Writes "* BYE text" and closes after it. */
void imap_bye(struct imap_session *s, const char *text);
/* True when a password may be sent in the clear: TLS, or loopback. */
bool imap_secure(const struct imap_session *s);
/* The parser flags and limits for the session's state and extensions. */
void imap_parser_update(struct imap_session *s);
/* The login was accepted: opens the account on the thread pool (its first
 * use creates the index, which writes), then enters the authenticated
 * state and answers OK [CAPABILITY ...], or NO [UNAVAILABLE] when the
 * account cannot be opened. */
void imap_session_login(struct imap_session *s, const char *account);
/* Appends the CAPABILITY list (without "* CAPABILITY ") for the state. */
void imap_capabilities(const struct imap_session *s, struct mp_buf *out);

/* --- imap-commands.c --------------------------------------------------- */

/* Looks the command up and runs it. */
enum mp_status imap_dispatch(struct imap_session *s,
			     const struct imap_command *cmd);

/* --- imap-auth.c -------------------------------------------------------- */

/* A line of an AUTHENTICATE exchange. */
enum mp_status imap_auth_line(struct imap_session *s, const char *line,
			      size_t len, unsigned flags);
/* Cancels a password check or exchange in flight (the session closes). */
void imap_auth_abort(struct imap_session *s);

/* --- imap-view.c: the selected mailbox --------------------------------- */

/* Brings the view up to date and writes EXPUNGE/VANISHED, EXISTS,
 * RECENT and FETCH FLAGS for what changed. With expunge false, nothing is
 * reported while there are expunges the client has not heard of. */
void imap_view_sync(struct imap_session *s, bool expunge);
/* Decodes a mailbox name argument to the mailstore's UTF-8 (modified
 * UTF-7 unless UTF-8 was enabled; "inbox" in any case is INBOX). False
 * after a BAD or NO; the caller frees *name_r. */
bool imap_mailbox_arg(struct imap_session *s, const struct imap_arg *arg,
		      char **name_r);
/* Leaves the selected mailbox (CLOSE, UNSELECT, SELECT, LOGOUT). */
void imap_view_close(struct imap_session *s);
/* Resolves a sequence set or UID set argument of the running command to
 * UID ranges of messages in the view (UIDs that are not there dropped).
 * False after a BAD or NO reply. out is owned by the caller
 * (imap_seqset_free). */
bool imap_view_uidset(struct imap_session *s, const struct imap_arg *arg,
		      bool uid, struct imap_seqset *out);
/* The sequence number of uid in the view, or 0. */
uint32_t imap_view_seq(const struct imap_view *v, uint32_t uid);
/* Writes the flags of m as an IMAP list "(\Seen $Label)" (with \Recent
 * when recent). */
void imap_write_flags(struct mp_buf *out, const struct ms_msg *m, bool recent);
/* True when uid is \Recent in this session. */
bool imap_view_recent(const struct imap_view *v, uint32_t uid);

/* --- imap-store.c: the view's mailbox handle, lent to a job ------------- */

/* Hands the view's mailbox to a thread-pool job (the view holds NULL
 * until it is given back), so closing the session meanwhile cannot free
 * it under the job. */
struct ms_mailbox *imap_view_lend(struct imap_session *s);
/* Gives *mb back to the view of s, or closes it when s (NULL: the
 * session went away) has no view waiting for it; sets *mb NULL. */
void imap_view_give_back(struct imap_session *s, struct ms_mailbox **mb);
/* --- imap-append.c ------------------------------------------------------ */

/* A literal of an APPEND before its bytes: checks the size and mailbox of
 * a STREAM one and starts saving, refuses any before LOGIN. False when it
 * replied and refused the literal (the parser then has a DISCARD literal
 * pending, or none). */
/* imap-events.c: the Lua hooks (core/include/moonpost/events.h). */
void imap_session_info(const struct imap_session *s,
		       struct mp_session_info *info);
void imap_event_login(struct imap_session *s, const char *account,
		      const char *mechanism);
void imap_event_logout(struct imap_session *s);
void imap_event_expunge(struct imap_session *s, const char *mailbox,
			uint32_t uidvalidity, const uint32_t *uids, size_t n);
void imap_event_flags(struct imap_session *s, const char *mailbox,
		      uint32_t uidvalidity,
		      const struct ms_change_list *changed, int mode,
		      uint32_t flags, const struct mp_strlist *keywords);
void imap_event_append(struct imap_session *s, const char *mailbox,
		       uint32_t uidvalidity, uint32_t uid, uint64_t size,
		       uint32_t flags, const char *keywords);
void imap_event_mailbox(struct imap_session *s, const char *op,
			const char *name, const char *to);

bool imap_append_literal(struct imap_session *s,
			 const struct imap_literal *lit);
/* Bytes of the STREAM literal started by imap_append_literal(). */
void imap_append_data(struct imap_session *s, const void *data, size_t len);
/* Throws away a message being streamed (a refused command, a close). */
void imap_append_abort(struct imap_session *s);

#endif
