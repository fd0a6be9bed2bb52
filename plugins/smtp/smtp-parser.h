/* smtp-parser.h - SMTP command lines in, commands or exact replies out.
 *
 * The parser is pure: it gets one command line as the framer cut it (CRLF
 * removed, any byte possible, NUL included) and the limits in force, and
 * fills a struct smtp_cmd. It never allocates, never logs and never replies:
 * on a bad line it fills cmd->error with the reply the session should send.
 *
 * Strings in a command are views (struct mp_str) into the line, valid while
 * the line is; canonical forms that differ from the line live in fixed
 * buffers inside the command, so a command may be copied by value. A view
 * that is absent has p == NULL and len 0.
 *
 * What the parser does not know it leaves to the session: whether a command
 * is allowed in the current state (503), whether an extension was offered
 * (HELO clients, AUTH before STARTTLS), whether a RCPT's UTF-8 address
 * belongs to a SMTPUTF8 transaction, and policy (relay, VRFY disabled). */
#ifndef SMTP_PARSER_H
#define SMTP_PARSER_H

#include <moonpost/common.h>

/* Longest path (brackets included) any limit may allow: the canonical
 * mailbox and the decoded AUTH= value live in buffers this big. RFC 5321
 * 4.5.3.1.3 allows 256; larger limits are clamped to this. */
#define SMTP_PATH_CAP 1024
/* Room for a reply text in struct smtp_error, NUL included. */
#define SMTP_ERROR_TEXT_MAX 96
/* Longest SASL mechanism name (RFC 4422 3.1: 1*20 characters). */
#define SMTP_MECH_MAX 20

enum smtp_verb {
	SMTP_VERB_NONE = 0, /* not recognized */
	SMTP_VERB_AUTH,
	SMTP_VERB_BDAT,
	SMTP_VERB_DATA,
	SMTP_VERB_EHLO,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELO,
	SMTP_VERB_HELP,
	SMTP_VERB_MAIL,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_RCPT,
	SMTP_VERB_RSET,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_VRFY,
};

/* What the parser enforces. A field left 0 takes the default shown, which
 * is also what smtp_parser_limits_init() gives before authentication. The
 * session keeps one set for before AUTH and one for after. */
struct smtp_limits {
	/* Octets of a local part, quotes included (64, RFC 5321 4.5.3.1.1).
	 * Real clients sometimes send more; relax it rather than trust the
	 * sender to stop at 64. */
	size_t local_part_max;
	/* Octets of a domain or address literal (255, RFC 5321 4.5.3.1.2);
	 * also bounds the EHLO/HELO argument. */
	size_t domain_max;
	/* Octets of a whole path, brackets and source route included (256,
	 * RFC 5321 4.5.3.1.3). Clamped to SMTP_PATH_CAP. */
	size_t path_max;
	/* Parameters on one MAIL or RCPT (8 before AUTH, 16 after): the
	 * per-command work a client can cause before it is known. */
	size_t params_max;
	/* Octets of the VRFY, EXPN, HELP and NOOP argument (256 before AUTH,
	 * 1000 after): echoed in logs, so kept short for strangers. */
	size_t arg_max;
	/* Octets of the AUTH initial response (12288: RFC 4954 4 lets a
	 * client send lines this long during AUTH). */
	size_t auth_response_max;
	/* Largest MAIL SIZE= accepted (10240000, Postfix's default); above
	 * it the reply is 552 5.3.4 (RFC 1870 6.1). Set from the config. */
	uint64_t message_size_max;
	/* Largest BDAT chunk (message_size_max): one chunk larger than the
	 * whole message may be can only fail. */
	uint64_t bdat_chunk_max;
};

/* The reply a bad command earns. code is one of 500, 501, 552, 553, 555;
 * enhanced (RFC 3463, static string) one of 5.5.2, 5.5.4, 5.5.6, 5.1.3,
 * 5.1.7, 5.3.4, 5.6.7; text is printable ASCII without CR or LF. */
struct smtp_error {
	int code;
	const char *enhanced;
	char text[SMTP_ERROR_TEXT_MAX];
};

/* A reverse-path (MAIL) or forward-path (RCPT), RFC 5321 4.1.2. */
struct smtp_path {
	/* Between the angle brackets, as sent, source route included. */
	struct mp_str raw;
	/* The local part as sent: a dot-string or a quoted-string with its
	 * quotes and backslashes. Empty for the null path. */
	struct mp_str local;
	/* The domain or address literal (brackets included) as sent. Empty
	 * for the null path and for <Postmaster>. */
	struct mp_str domain;
	/* local@domain without the source route, the local part unquoted when
	 * quoting was unnecessary ("a"@x gives a@x) and otherwise quoted with
	 * the fewest backslashes. NUL-terminated; "" for the null path. The
	 * domain is kept as sent: compare it without regard to case. */
	char mailbox[SMTP_PATH_CAP];
	size_t mailbox_len;
	/* Length of the local part at the start of mailbox. */
	size_t mailbox_local_len;
	bool null;       /* "<>" (MAIL only) */
	bool postmaster; /* "<Postmaster>", any case, no domain (RCPT only,
			    RFC 5321 4.5.1) */
	bool quoted;     /* the local part was a quoted-string */
	bool literal;    /* the domain is an address literal */
	bool route;      /* a source route was given, and ignored (4.1.1.3) */
	bool utf8;       /* non-ASCII octets (valid UTF-8) in the path: a
			    RCPT's needs a SMTPUTF8 transaction, see
			    smtp_error_set_need_smtputf8() */
};

enum smtp_body {
	SMTP_BODY_NONE = 0, /* no BODY= given */
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME, /* RFC 6152 */
};

/* MAIL parameters. DSN ones (RET, ENVID) are refused as unknown (555). */
struct smtp_mail_params {
	bool has_size;
	uint64_t size; /* SIZE= (RFC 1870), <= message_size_max */
	enum smtp_body body;
	bool smtputf8; /* SMTPUTF8 (RFC 6531) */
	/* AUTH= (RFC 4954 5): has_auth when given; auth_null for AUTH=<>;
	 * otherwise auth_raw is the xtext as sent and auth the decoded value
	 * (NUL-terminated, no control characters, valid UTF-8). The sender
	 * claimed it: believe it only from a trusted, authenticated client. */
	bool has_auth;
	bool auth_null;
	struct mp_str auth_raw;
	char auth[SMTP_PATH_CAP];
	size_t auth_len;
};

struct smtp_bdat {
	bool size_known; /* size holds the chunk size the client announced */
	uint64_t size;
	bool last;
};

struct smtp_cmd {
	enum smtp_verb verb; /* NONE only when the verb was not recognized */
	/* EHLO/HELO: the domain or address literal as sent (validated
	 * loosely). VRFY/EXPN: the string (never empty). HELP/NOOP: the
	 * optional argument (p == NULL when none). AUTH: the mechanism name,
	 * case as sent. Leading and trailing blanks are not part of it. */
	struct mp_str arg;
	/* AUTH: the initial response as sent, base64 or "=" for an empty
	 * one; p == NULL when none was given. The session decodes it. */
	struct mp_str auth_response;
	struct smtp_path path;        /* MAIL, RCPT */
	struct smtp_mail_params mail; /* MAIL */
	/* BDAT. Also filled, when it could be read, for a BDAT that was
	 * refused: the client sends its chunk without waiting for the reply
	 * (RFC 3030), so the session skips bdat.size bytes before it reads
	 * the next command. When !size_known it cannot find the end of the
	 * chunk and should close the connection after the reply. */
	struct smtp_bdat bdat;
	struct smtp_error error; /* set when the parse was declined */
};

/* Fills lim with the defaults before (authenticated = false) or after
 * authentication. The session then sets message_size_max and
 * bdat_chunk_max from its config. */
void smtp_parser_limits_init(struct smtp_limits *lim, bool authenticated);
/* Copies lim to out with every 0 field given its default and path_max
 * clamped to SMTP_PATH_CAP: the limits the parser really applies. */
void smtp_parser_limits_resolve(const struct smtp_limits *lim,
				struct smtp_limits *out);

/* Parses one command line of len bytes (no CRLF) under lim (NULL: the
 * defaults). Verbs are matched without regard to case; blanks (SP, HTAB)
 * around the verb and between arguments may be doubled. Returns MP_OK with
 * cmd filled, or MP_DECLINED with cmd->error holding the reply (cmd->verb
 * tells which command it was when the verb was recognized). cmd is cleared
 * first and needs no clean-up. */
enum mp_status smtp_parser_parse(const char *line, size_t len,
				 const struct smtp_limits *lim,
				 struct smtp_cmd *cmd);

/* Sets err to 553 5.6.7, the reply to an address with UTF-8 in a
 * transaction without SMTPUTF8 (RFC 6531, code X.6.7). The parser gives it
 * for MAIL itself; for RCPT the session checks cmd->path.utf8. */
void smtp_error_set_need_smtputf8(struct smtp_error *err);

/* Appends one reply line, "250 2.1.0 Ok\r\n", to out. enhanced may be NULL
 * (greeting, EHLO); text may be NULL or empty. Control characters in text
 * become spaces and a text too long for a 512-octet reply line (RFC 5321
 * 4.5.3.1.5) is cut at a UTF-8 character boundary. */
void smtp_reply_format(struct mp_buf *out, int code, const char *enhanced,
		       const char *text);
/* Appends a multi-line reply: "250-" before every line but the last, which
 * gets "250 ". n must be at least 1. Lines are cleaned as above. */
void smtp_reply_format_lines(struct mp_buf *out, int code, const char *enhanced,
			     const char *const *lines, size_t n);

/* Appends the xtext decoding (RFC 3461 4: "+XX" for a byte) of len bytes
 * of in to out. False, with out as it was, on anything but xtext; hex
 * digits may be of either case. */
bool smtp_xtext_decode(const char *in, size_t len, struct mp_buf *out);
/* Appends the xtext form of len bytes of in to out: bytes outside "!".."~",
 * '+' and '=' become "+XX" with upper-case hex digits. */
void smtp_xtext_encode(const char *in, size_t len, struct mp_buf *out);

#endif
