/* smtp-private.h - the SMTP plugin's session and what its files share. */
#ifndef SMTP_PRIVATE_H
#define SMTP_PRIVATE_H

#include <moonpost/conn.h>
#include <moonpost/deliver.h>
#include <moonpost/lua.h>
#include <moonpost/plugin.h>

#include "smtp-data.h"
#include "smtp-parser.h"

struct mp_auth_sasl;
struct mp_dns_req;

/* Longest command line (RFC 5321 4.5.3.1.4 says 512; Postfix accepts
 * 2048 because real clients exceed it with long AUTH= and SIZE= params). */
#define SMTP_LINE_MAX 2048
/* During AUTH a response line may be this long (RFC 4954 4). */
#define SMTP_AUTH_LINE_MAX 12288

enum smtp_role {
	SMTP_ROLE_MX = 0,      /* port 25: local mail only, no AUTH */
	SMTP_ROLE_SUBMISSION,  /* 587: STARTTLS, then AUTH required */
	SMTP_ROLE_SUBMISSIONS, /* 465: implicit TLS, then AUTH required */
};

enum smtp_bare_lf {
	SMTP_BARE_LF_NORMALIZE = 0,
	SMTP_BARE_LF_STRICT,
};

/* The `smtp { ... }` section. */
struct smtp_config {
	uint64_t max_message_size;
	int64_t max_recipients;
	int64_t max_commands;
	int64_t max_errors;
	uint64_t timeout;      /* ms between commands */
	uint64_t data_timeout; /* ms of silence inside DATA/BDAT */
	int bare_lf;           /* enum smtp_bare_lf */
	bool allow_sender_mismatch;
	char *banner;
};

extern const struct mp_cfg_section smtp_config_section;

enum smtp_state {
	SMTP_S_START = 0, /* no EHLO/HELO yet */
	SMTP_S_READY,     /* greeted, no transaction */
	SMTP_S_MAIL,      /* MAIL accepted, no recipient yet */
	SMTP_S_RCPT,      /* at least one recipient */
	SMTP_S_DATA,      /* reading DATA content */
	SMTP_S_BDAT,      /* between or inside BDAT chunks */
	SMTP_S_AUTH,      /* a SASL exchange is under way */
};

/* One mail transaction: MAIL to the end of DATA/BDAT or RSET. */
struct smtp_tx {
	char *sender; /* canonical mailbox; "" for <> */
	struct mp_strlist rcpts;
	bool smtputf8;
	uint64_t size_hint; /* MAIL SIZE= */
	int spool_fd;       /* -1 until DATA/BDAT */
	uint64_t spool_size;
	struct smtp_data data;
	struct mp_buf pending; /* decoded, not yet written to the spool */
	bool spool_failed;
	uint64_t bdat_skip; /* bytes of a refused chunk still to skip */
	uint64_t bdat_size; /* the chunk being read */
	uint64_t bdat_left; /* its bytes still to come */
	bool bdat_last;     /* the chunk being read is the LAST one */
	int notes_ref;      /* Lua registry ref of tx.notes, or LUA_NOREF */
	unsigned number;    /* transactions in this session, for ids */
};

struct smtp_session {
	struct mp_conn *conn;
	struct mp_server *server;
	const struct smtp_config *cfg;
	enum smtp_role role;
	enum smtp_state state;
	struct smtp_limits limits;
	char *helo;
	bool esmtp;
	char *rdns;         /* forward-confirmed name, or NULL */
	bool connect_waits; /* the connect hook waits for the rDNS lookup */
	char *user;         /* authenticated account */
	struct smtp_tx tx;
	unsigned commands;
	unsigned errors;
	bool quitting;       /* closing after the pending reply */
	bool shutdown_after; /* the server stops: close when idle */

	/* Async work in flight; each is cancelled when the session closes. */
	struct mp_lua_call *call;
	uint64_t lua_tx_id; /* the tx object registered for the call */
	struct mp_lua *call_lua;
	struct mp_auth_sasl *sasl; /* AUTH under way */
	struct mp_dns_req *dns_req;
	struct mp_delivery *delivery;
	size_t deliver_next;
	struct mp_deliver_result deliver_first_fail;
	size_t delivered, deferred, rejected;
	char *prefix; /* Received: (+ Message-ID:, Date:) for this message */
	/* What to do once a hook returns, and with which argument. */
	void (*hook_next)(struct smtp_session *s, const struct mp_verdict *v);
	char *hook_arg;
};

/* smtp-session.c */

/* Sends one reply line; a 4xx/5xx counts as a client error unless
 * the caller says it was not the client's fault. */
void smtp_reply(struct smtp_session *s, int code, const char *enhanced,
		const char *text);
/* Replies and counts an error; past max_errors the connection closes. */
void smtp_reply_error(struct smtp_session *s, int code, const char *enhanced,
		      const char *text);
/* Sends 421 and closes (shutdown, too many errors, hook said so). */
void smtp_close_421(struct smtp_session *s, const char *enhanced,
		    const char *text);
/* After a refused BDAT: reads its chunk and throws it away. */
void smtp_skip_chunk(struct smtp_session *s, const struct smtp_cmd *c);
/* Resumes reading commands after async work. */
void smtp_resume(struct smtp_session *s);
/* Ends the transaction (RSET, after DATA, on STARTTLS). */
void smtp_tx_reset(struct smtp_session *s);
/* True when this listener's role requires AUTH before MAIL. */
bool smtp_auth_required(const struct smtp_session *s);
/* True when AUTH may be offered and used now. */
bool smtp_auth_offered(const struct smtp_session *s);
/* The address of the session's client as text. */
const char *smtp_client_ip(const struct smtp_session *s);

/* smtp-commands.c: one handler per command; each returns MP_OK (next
 * command) or MP_AGAIN (the session resumes itself later). */
enum mp_status smtp_command(struct smtp_session *s, const struct smtp_cmd *c);
enum mp_status smtp_cmd_ehlo(struct smtp_session *s, const struct smtp_cmd *c);
enum mp_status smtp_cmd_mail(struct smtp_session *s, const struct smtp_cmd *c);
enum mp_status smtp_cmd_rcpt(struct smtp_session *s, const struct smtp_cmd *c);
enum mp_status smtp_cmd_data(struct smtp_session *s, const struct smtp_cmd *c);
enum mp_status smtp_cmd_bdat(struct smtp_session *s, const struct smtp_cmd *c);
enum mp_status smtp_cmd_auth(struct smtp_session *s, const struct smtp_cmd *c);
/* A line of a SASL exchange (state AUTH). */
enum mp_status smtp_auth_line(struct smtp_session *s, const char *line,
			      size_t len);
/* Ends a SASL exchange early (the session closes). */
void smtp_auth_abort(struct smtp_session *s);

/* smtp-message.c: the spool, end of data, delivery. */

/* Content bytes in stream or chunk mode. */
enum mp_status smtp_message_bytes(struct smtp_session *s, const uint8_t *data,
				  size_t len, size_t *consumed_r);
/* Opens the spool file for a new message; false after a reply. */
bool smtp_message_begin(struct smtp_session *s);
/* The message is complete: hooks, delivery, the reply. */
enum mp_status smtp_message_end(struct smtp_session *s);
/* Cancels a delivery in flight (the session closes). */
void smtp_message_abort(struct smtp_session *s);

/* smtp-received.c */

/* The Received: line (and, on submission, Message-ID:/Date: when the
 * message lacks them) to store before the message. Caller frees. */
char *smtp_received_prefix(struct smtp_session *s);

/* smtp-hooks.c: Lua hooks with the transaction object. */

/* Hook names this plugin fires. */
extern const char *const smtp_hook_names[];
/* Runs hook (extra: a second string argument, or NULL) and then next
 * with the verdict; when no script handles the hook, next runs now with
 * continue. next must end with smtp_resume() (or a close); the caller
 * returns what this returns, MP_AGAIN, to the core. */
enum mp_status
smtp_hook(struct smtp_session *s, const char *hook, const char *extra,
	  void (*next)(struct smtp_session *s, const struct mp_verdict *v));
/* Sends the reply a refusing verdict calls for, with defaults for the
 * stage; true when it was a refusal (the caller stops there). */
bool smtp_verdict_refuses(struct smtp_session *s, const struct mp_verdict *v,
			  int reject_code);
/* Cancels a hook call in flight. */
void smtp_hook_cancel(struct smtp_session *s);
/* Drops the transaction's notes table. */
void smtp_hook_tx_done(struct smtp_session *s);

#endif
