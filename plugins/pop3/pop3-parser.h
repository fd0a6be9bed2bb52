/* pop3-parser.h - POP3 command lines in, commands or -ERR texts out.
 *
 * The parser is pure: it gets one command line as the framer cut it (CRLF
 * removed, any byte possible, NUL included) and the limits in force, and
 * fills a struct pop3_cmd. It never allocates, never logs and never replies:
 * on a bad line it fills cmd->error with the text of the -ERR the session
 * should send.
 *
 * Strings in a command are views (struct mp_str) into the line, valid while
 * the line is. A view that is absent has p == NULL and len 0.
 *
 * What the parser does not know it leaves to the session: whether the
 * command is allowed in the current state, whether a message number exists
 * in the maildrop or was deleted, and whether plaintext logins are allowed
 * on this connection. */
#ifndef POP3_PARSER_H
#define POP3_PARSER_H

#include <moonpost/common.h>

/* Room for an -ERR text in struct pop3_cmd, NUL included. */
#define POP3_ERROR_TEXT_MAX 80
/* Longest SASL mechanism name (RFC 4422 3.1: 1*20 characters). */
#define POP3_MECH_MAX 20
/* Longest reply line, CRLF included (RFC 2449 4: 512 octets). */
#define POP3_REPLY_LINE_MAX 512

enum pop3_verb {
	POP3_VERB_NONE = 0, /* not recognized */
	POP3_VERB_AUTH,
	POP3_VERB_CAPA,
	POP3_VERB_DELE,
	POP3_VERB_LIST,
	POP3_VERB_NOOP,
	POP3_VERB_PASS,
	POP3_VERB_QUIT,
	POP3_VERB_RETR,
	POP3_VERB_RSET,
	POP3_VERB_STAT,
	POP3_VERB_STLS,
	POP3_VERB_TOP,
	POP3_VERB_UIDL,
	POP3_VERB_USER,
};

/* What the parser enforces. A field left 0 takes the default shown. */
struct pop3_limits {
	/* Octets of the USER name (255: an address is at most 254, RFC 5321
	 * 4.5.3.1.3; the auth service refuses anything longer anyway). */
	size_t user_max;
	/* Octets of the PASS argument (511: the longest password the
	 * account file stores; a stranger's longer one only costs a hash). */
	size_t pass_max;
	/* Octets of the AUTH initial response, base64 (2732: the base64 of
	 * MP_SASL_MESSAGE_MAX, the largest SASL message we take). */
	size_t auth_response_max;
};

struct pop3_cmd {
	enum pop3_verb verb; /* NONE only when the verb was not recognized */
	/* USER: the name. PASS: the password, the rest of the line after one
	 * space, spaces included. AUTH: the mechanism, case as sent; absent
	 * for a bare AUTH (the client asks for the mechanism list). */
	struct mp_str arg;
	/* AUTH: the initial response as sent, base64 or "=" for an empty
	 * one; p == NULL when none was given. */
	struct mp_str auth_response;
	/* LIST, UIDL: whether a message number was given. RETR, DELE, TOP:
	 * always true on success. */
	bool has_msg;
	uint32_t msg; /* the message number, 1 or more */
	/* TOP: body lines wanted; larger numbers are cut to UINT32_MAX,
	 * which is the whole body anyway. */
	uint32_t lines;
	/* Set when the parse was declined: the -ERR text, printable ASCII. */
	char error[POP3_ERROR_TEXT_MAX];
};

/* Fills lim with the defaults. */
void pop3_parser_limits_init(struct pop3_limits *lim);

/* Parses one command line of len bytes (no CRLF) under lim (NULL: the
 * defaults). Verbs are matched without regard to case; arguments are
 * separated by one or more spaces, and trailing spaces are ignored (except
 * in PASS, whose argument is the rest of the line). Returns MP_OK with cmd
 * filled, or MP_DECLINED with cmd->error holding the text of the -ERR
 * (cmd->verb tells which command it was when the verb was recognized). cmd
 * is cleared first and needs no clean-up. */
enum mp_status pop3_parser_parse(const char *line, size_t len,
				 const struct pop3_limits *lim,
				 struct pop3_cmd *cmd);

/* The verb's name in upper case ("RETR"), or "" for NONE. */
const char *pop3_verb_name(enum pop3_verb verb);

/* Appends one status line to out: "+OK text\r\n", or "-ERR [CODE] text\r\n"
 * when ok is false. code (RFC 2449 8: "AUTH", "SYS/TEMP", "IN-USE"...) may
 * be NULL; text may be NULL or empty. Control characters in text become
 * spaces, and a line longer than POP3_REPLY_LINE_MAX is cut at a UTF-8
 * character boundary. */
void pop3_reply_format(struct mp_buf *out, bool ok, const char *code,
		       const char *text);

/* The UIDL of a message: Dovecot's default pop3_uidl_format, "%08Xu%08Xv",
 * so that accounts imported from Dovecot with their UIDs keep their UIDLs
 * and clients do not download everything again. out gets 16 characters
 * and a NUL. */
void pop3_uidl_format(char out[17], uint32_t uid, uint32_t uidvalidity);

#endif
