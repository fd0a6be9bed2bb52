/* pop3-private.h - the POP3 plugin's session and what its files share. */
#ifndef POP3_PRIVATE_H
#define POP3_PRIVATE_H

#include <moonpost/conn.h>
#include <moonpost/events.h>
#include <moonpost/plugin.h>

#include "pop3-dot.h"
#include "pop3-parser.h"

struct mp_auth_request;
struct mp_login_check;
struct mp_auth_sasl;
struct ms_mailbox;
struct ms_user;
struct pop3_job;
struct pop3_session;

/* Longest command line. RFC 2449 4 says 255 octets, but an AUTH with an
 * initial response (RFC 5034 4) and long passwords go past it; the parser
 * bounds every argument on its own. */
#define POP3_LINE_MAX 1024
/* During AUTH a response line may be this long: the base64 of the largest
 * SASL message we take (MP_SASL_MESSAGE_MAX), with room to spare. */
#define POP3_AUTH_LINE_MAX 4096
/* Bytes of a message file read per step of RETR and TOP: with stuffing at
 * most 1.5 times that is queued beyond the connection's high-water mark. */
#define POP3_READ_CHUNK (64 * 1024)
/* RETR of a message this large goes by sendfile(2) when it can. */
#define POP3_SENDFILE_MIN (64 * 1024)
/* ... and queues file ranges at most this long. */
#define POP3_SENDFILE_RANGE (1024 * 1024)
/* Lines of LIST or UIDL queued per step, for the same reason. */
#define POP3_LIST_STEP 2048
/* The lock file in the account's directory: one POP3 session at a time. */
#define POP3_LOCK_FILE "pop3.lock"

/* The `pop3 { ... }` section. */
struct pop3_config {
	uint64_t timeout;     /* ms of silence before the connection ends */
	int64_t max_errors;   /* client errors before it ends */
	int64_t max_messages; /* messages of INBOX a session shows */
	int64_t expire;       /* EXPIRE days, or -1 for NEVER */
	bool sendfile;        /* RETR by sendfile(2) when it can */
};

extern const struct mp_cfg_section pop3_config_section;

enum pop3_state {
	POP3_S_AUTHORIZATION = 0, /* RFC 1939: before login */
	POP3_S_SASL,              /* an AUTH exchange is under way */
	POP3_S_LOGIN,             /* authenticated, the maildrop opens */
	POP3_S_TRANSACTION,       /* RFC 1939: logged in */
	POP3_S_UPDATE,            /* RFC 1939: QUIT commits deletions */
};

/* One message of the snapshot taken at login. */
struct pop3_msg {
	uint64_t size; /* octets as sent: the stored file, CRLF already */
	uint32_t uid;
	bool deleted;   /* DELE in this session */
	bool retrieved; /* RETR in this session: \Seen at QUIT */
};

/* The maildrop: INBOX as it was at login, and the lock that keeps a second
 * session out. */
struct pop3_maildrop {
	struct ms_user *user;
	struct ms_mailbox *mb;
	int lock_fd;
	uint32_t uidvalidity;
	struct pop3_msg *msgs; /* in UID order; message number i is msgs[i-1] */
	size_t n;
	uint64_t size;     /* octets of all of them */
	size_t n_deleted;  /* marked with DELE */
	uint64_t del_size; /* octets of those */
};

/* A multi-line response sent in pieces as output drains. */
struct pop3_stream {
	/* Queues the next piece; true once the whole response is queued. */
	bool (*step)(struct pop3_session *s);
	size_t next; /* LIST, UIDL: index of the next message */
	bool uidl;   /* UIDL rather than LIST */
	int fd;      /* RETR, TOP: the message file, or -1 */
	uint64_t off;
	uint64_t next_off; /* RETR by sendfile: read up to here */
	struct pop3_dot dot;
	char *chunk; /* RETR, TOP: read buffer */
	/* RETR by sendfile: the file's size, and whether next_off starts a
	 * line (off is what is queued). */
	uint64_t size;
	bool line_start;
	struct mp_buf out; /* what a step queues, kept between steps */
};

struct pop3_session {
	struct mp_conn *conn;
	struct mp_server *server;
	const struct pop3_config *cfg;
	enum pop3_state state;
	struct pop3_limits limits;
	unsigned errors;
	char *user;          /* the USER name waiting for PASS */
	char *account;       /* the authenticated account */
	bool quitting;       /* closing after the pending reply */
	bool shutdown_after; /* the server stops: close when idle */

	/* Async work in flight; each is cancelled when the session closes. */
	struct mp_auth_request *auth_req;
	struct mp_auth_sasl *sasl; /* AUTH under way */
	struct pop3_job *job;      /* opening or updating the maildrop */
	struct mp_login_check *login_check; /* the `login` hook decides */
	char *login_account; /* the account the `login` hook is asked about */
	char *mechanism;     /* of the login, for the hooks */

	/* For the `logout` hook: set once the session is logged in. */
	bool logged_in;
	const char *end_reason; /* static: "quit", "timeout"... */
	uint64_t n_retrieved, n_deleted, n_expunged;

	struct pop3_maildrop *drop; /* TRANSACTION: the snapshot */
	bool streaming;             /* a multi-line response is under way */
	struct pop3_stream stream;
};

/* pop3-session.c */

/* The session as the `login` and `logout` hooks see it (borrowed). */
void pop3_session_info(const struct pop3_session *s,
		       struct mp_session_info *info);

/* Sends "+OK text" or "-ERR [code] text". */
void pop3_reply(struct pop3_session *s, bool ok, const char *code,
		const char *text);
/* Sends "-ERR text" for a client error and counts it; past max_errors
 * the connection ends instead. */
void pop3_reply_error(struct pop3_session *s, const char *code,
		      const char *text);
/* Sends "-ERR [code] text" and closes (shutdown, too many errors). */
void pop3_close_err(struct pop3_session *s, const char *code, const char *text);
/* Resumes reading commands after async work or a multi-line response. */
void pop3_resume(struct pop3_session *s);
/* True when plaintext passwords may be sent: TLS, or loopback (as
 * Dovecot: DESIGN.md, Authentication). */
bool pop3_secure(const struct pop3_session *s);
/* Starts a multi-line response produced by step; returns MP_OK when it
 * was queued at once, MP_AGAIN when it goes on in on_writable(). */
enum mp_status pop3_stream_start(struct pop3_session *s,
				 bool (*step)(struct pop3_session *s));
/* Ends a stream: closes its file and frees its buffer. */
void pop3_stream_end(struct pop3_session *s);

/* pop3-commands.c: one handler per command; each returns MP_OK (next
 * command) or MP_AGAIN (the session resumes itself later). */
enum mp_status pop3_command(struct pop3_session *s, const struct pop3_cmd *c);
/* The message with number n that is not deleted, or NULL after -ERR. */
struct pop3_msg *pop3_message(struct pop3_session *s, uint32_t n);

/* pop3-cmd-list.c */
enum mp_status pop3_cmd_list(struct pop3_session *s, const struct pop3_cmd *c);
enum mp_status pop3_cmd_uidl(struct pop3_session *s, const struct pop3_cmd *c);

/* pop3-cmd-retr.c: RETR and TOP */
enum mp_status pop3_cmd_retr(struct pop3_session *s, const struct pop3_cmd *c);

/* pop3-auth.c: USER/PASS and AUTH (RFC 5034). */
enum mp_status pop3_cmd_user(struct pop3_session *s, const struct pop3_cmd *c);
enum mp_status pop3_cmd_pass(struct pop3_session *s, const struct pop3_cmd *c);
enum mp_status pop3_cmd_auth(struct pop3_session *s, const struct pop3_cmd *c);
/* A line of a SASL exchange (state SASL); flags as on_line() got them. */
enum mp_status pop3_auth_line(struct pop3_session *s, const char *line,
			      size_t len, unsigned flags);
/* Ends a SASL exchange or password check early (the session closes). */
void pop3_auth_abort(struct pop3_session *s);

/* pop3-maildrop.c: the snapshot, the lock, and UPDATE. */

/* Logs account in: locks and opens the maildrop on the thread pool, then
 * answers +OK (TRANSACTION) or -ERR (back to AUTHORIZATION) and resumes. */
void pop3_login(struct pop3_session *s, const char *account);
/* QUIT in TRANSACTION: commits the deletions on the thread pool, then
 * answers and closes. */
void pop3_update(struct pop3_session *s);
/* The session goes away: work in flight finishes without it, the
 * maildrop is released on the thread pool. Nothing is deleted. */
void pop3_maildrop_abandon(struct pop3_session *s);

#endif
