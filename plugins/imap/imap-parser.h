/* imap-parser.h - IMAP client commands in, argument trees or BAD texts out.
 *
 * The parser is pure: it never reads from a socket, never replies and never
 * logs. The session gives it the framer's lines one at a time (CRLF
 * removed) and says what happened to each literal; every call returns what
 * the session has to do next:
 *
 *   imap_parser_feed_line()  -> COMPLETE       run imap_parser_command()
 *                            -> NEED_LITERAL   see imap_parser_literal()
 *                            -> ERROR          reply imap_parser_error()
 *                            -> SKIPPED        nothing: the line ended a
 *                                              command already refused
 *
 * A line ending with a literal marker ("{n}", "{n+}", "~{n}") gives
 * NEED_LITERAL. For a synchronising one the session first sends "+ ...".
 * Then, by struct imap_literal's use:
 *   HOLD     the bytes go to imap_parser_literal_data() (the parser keeps
 *            them: at most literal_max, counted in command_max);
 *   STREAM   the message of an APPEND (after the mailbox, or the part of a
 *            CATENATE TEXT or a UTF8 (...)): the session reads the bytes
 *            itself, straight into the mailstore, then calls
 *            imap_parser_literal_consumed(); the command gets an
 *            IMAP_ARG_LITERAL_STREAMED argument in its place. Only
 *            these literals may be larger than literal_max, and only
 *            when limits.stream;
 *   DISCARD  bytes of a refused command the client sends anyway (RFC 7888
 *            non-synchronising literals): read and drop them, then
 *            imap_parser_literal_consumed() (or hand them to
 *            imap_parser_literal_data(), which drops them).
 * A literal is finished when imap_parser_literal_data() returns NEED_LINE
 * (for 0 bytes: call it with len 0) or after imap_parser_literal_consumed();
 * then the next line continues the command.
 *
 * On ERROR the session replies "<tag> BAD [<code>] <text>" (untagged when
 * the tag is unknown). If error->drain > 0 it then reads that many bytes
 * and drops them as for DISCARD; further lines of the refused command give
 * SKIPPED or NEED_LITERAL(DISCARD). If error->close it closes the
 * connection after the reply: the parser cannot find where the command
 * ends.
 *
 * Everything in a command (views, arrays) lives in storage the parser owns
 * and stays valid until the next imap_parser_feed_line(),
 * imap_parser_reset() or imap_parser_free(). What imap_parser_literal() and
 * imap_parser_error() return is valid until the next call that feeds the
 * parser.
 *
 * The parser knows the grammar, not the commands: "Unknown command", the
 * arguments a command takes, the state it may run in and whether an
 * extension was enabled are the session's. It knows two commands by name
 * because their syntax cannot be tokenised without them: APPEND (which
 * literal is the message) and FETCH / UID FETCH (BODY[...]<...> items). */
#ifndef IMAP_PARSER_H
#define IMAP_PARSER_H

#include <moonpost/common.h>

/* Room for a BAD text in struct imap_parse_error, NUL included. */
#define IMAP_ERROR_TEXT_MAX 96
/* Longest command name; "UID " and a NUL come on top in the buffer. */
#define IMAP_NAME_MAX 32
/* Largest non-synchronising literal under LITERAL- (RFC 7888 5). */
#define IMAP_LITERAL_MINUS_MAX 4096
/* Deepest nesting any limit may allow (depth_max is clamped to it): the
 * tree is built recursively and clients need 3 or 4 levels. */
#define IMAP_DEPTH_CAP 64

enum imap_parse_result {
	IMAP_PARSE_NEED_LINE = 0, /* literal done: feed the next line */
	IMAP_PARSE_NEED_DATA,     /* more literal bytes expected */
	IMAP_PARSE_NEED_LITERAL,  /* imap_parser_literal() says what */
	IMAP_PARSE_COMPLETE,      /* imap_parser_command() is ready */
	IMAP_PARSE_ERROR,         /* reply imap_parser_error() */
	IMAP_PARSE_SKIPPED,       /* the rest of a refused command: no reply */
};

/* What the session has told the client; changed with
 * imap_parser_set_flags() (after ENABLE, say). */
enum imap_parser_flags {
	/* UTF8=ACCEPT enabled (RFC 6855 3) or IMAP4rev2 (RFC 9051 9,
	 * QUOTED-CHAR): quoted strings may hold UTF-8, checked strictly.
	 * Without it an 8-bit octet in a quoted string is an error. */
	IMAP_PARSER_UTF8 = 1 << 0,
	/* LITERAL+ advertised: "{n+}" of any size (RFC 7888 4). */
	IMAP_PARSER_LITERAL_PLUS = 1 << 1,
	/* LITERAL- advertised: "{n+}" up to IMAP_LITERAL_MINUS_MAX only
	 * (RFC 7888 5). Ignored with LITERAL_PLUS. */
	IMAP_PARSER_LITERAL_MINUS = 1 << 2,
};

/* What the parser enforces. A field left 0 takes the default shown (before
 * / after authentication), which imap_parser_limits_init() also gives. The
 * session keeps one set for before LOGIN and one for after. */
struct imap_parser_limits {
	/* Octets of one line, CRLF excluded (8192 / 65536). RFC 9051 4
	 * sets no limit; RFC 7162 4 asks for 8192 at least. */
	size_t line_max;
	/* Octets of a command: its lines and the literals the parser holds,
	 * streamed APPEND data excluded (16384 / 1 MiB): memory per
	 * command. */
	size_t command_max;
	/* Octets of one literal held in memory (4096 / 65536): larger ones
	 * are refused with [TOOBIG] unless they are streamed. */
	size_t literal_max;
	/* Largest literal read and dropped after a refusal (64 KiB /
	 * 64 MiB); above it the session closes instead (error->close). */
	uint64_t drain_max;
	/* Nesting of parenthesised lists (4 / 16, at most IMAP_DEPTH_CAP):
	 * SEARCH with deep OR/NOT trees is the only real use. */
	unsigned depth_max;
	/* Arguments at all depths (128 / 10000): each costs a node. ID
	 * needs 61 before LOGIN (RFC 2971 3.3: 30 field-value pairs). */
	unsigned args_max;
	/* Not used by the parser: the range bound the session passes to
	 * imap_seqset_parse() (100 / 10000). */
	unsigned seqset_ranges_max;
	/* APPEND messages may be streamed (false / true). Before LOGIN they
	 * are held like any literal, so a stranger can make the server keep
	 * no more than literal_max. */
	bool stream;
};

enum imap_arg_type {
	IMAP_ARG_ATOM = 1, /* str: the atom; see enum imap_arg_flags */
	IMAP_ARG_NIL,      /* NIL in any case; str: as sent */
	IMAP_ARG_QUOTED,   /* str: the string, escapes removed */
	IMAP_ARG_LITERAL,  /* str: the bytes of a literal the parser held */
	/* A literal the session streamed: literal.size bytes, the
	 * literal.index-th streamed one of the command (from 0). */
	IMAP_ARG_LITERAL_STREAMED,
	IMAP_ARG_LIST, /* list.args[0 .. list.count) */
	/* FETCH only: name[section]<partial>; str: the name before '['
	 * ("BODY.PEEK"), section: the rest. */
	IMAP_ARG_FETCH_ATT,
};

enum imap_arg_flags {
	IMAP_ARG_WILDCARD = 1 << 0,  /* atom with '%' or '*' (LIST, sets) */
	IMAP_ARG_RBRACKET = 1 << 1,  /* atom with ']': an astring, no atom */
	IMAP_ARG_BACKSLASH = 1 << 2, /* atom starting with '\': a flag */
	IMAP_ARG_8BIT = 1 << 3,      /* string or literal with 8-bit octets */
	IMAP_ARG_BINARY = 1 << 4,    /* literal8 "~{n}" (RFC 3516) */
	IMAP_ARG_NUL = 1 << 5,       /* literal8 holding a NUL */
};

struct imap_arg;

/* BODY[1.2.HEADER.FIELDS.NOT (X-A)]<10.20>, RFC 9051 6.4.5. The parser
 * checks the shape: spec holds only letters, digits and dots, and a
 * header list (of astrings, at least one) is there exactly when spec ends
 * in HEADER.FIELDS or HEADER.FIELDS.NOT. The meaning is FETCH's. */
struct imap_fetch_section {
	struct mp_str spec; /* "1.2.HEADER.FIELDS.NOT"; empty for BODY[] */
	const struct imap_arg *fields; /* the header list, or NULL */
	size_t nfields;
	bool partial; /* "<offset.count>" given; count > 0 */
	uint64_t offset;
	uint64_t count;
};

struct imap_arg {
	enum imap_arg_type type;
	unsigned flags; /* enum imap_arg_flags */
	struct mp_str str;
	union {
		struct {
			const struct imap_arg *args;
			size_t count;
		} list;
		struct {
			uint64_t size;
			unsigned index;
		} literal;
		const struct imap_fetch_section *section;
	};
};

struct imap_command {
	struct mp_str tag;
	/* Upper case, NUL-terminated: "FETCH", or "UID FETCH" after UID. */
	const char *name;
	const char *verb; /* name without "UID ": "FETCH" */
	bool uid;
	const struct imap_arg *args;
	size_t count;
	unsigned streamed; /* IMAP_ARG_LITERAL_STREAMED arguments */
};

enum imap_literal_use {
	IMAP_LITERAL_HOLD = 0, /* bytes to imap_parser_literal_data() */
	IMAP_LITERAL_STREAM,   /* session keeps them; literal_consumed() */
	IMAP_LITERAL_DISCARD,  /* session drops them; literal_consumed() */
};

struct imap_literal {
	struct mp_str tag;
	const char *name; /* as in struct imap_command; NULL for DISCARD */
	uint64_t size;
	bool sync;   /* send a continuation request before reading */
	bool binary; /* literal8: may hold NUL (STREAM only) */
	enum imap_literal_use use;
	unsigned index; /* STREAM: the index of its streamed argument */
};

struct imap_parse_error {
	struct mp_str tag; /* p == NULL: reply untagged, "* BAD" */
	const char *name;  /* the command name when it was read, or NULL */
	/* Response code (static) or NULL: "TOOBIG" for literals over a
	 * limit (RFC 7888 5, RFC 4469 5), "LIMIT" for other limits
	 * (RFC 5530 3). */
	const char *code;
	char text[IMAP_ERROR_TEXT_MAX]; /* printable ASCII */
	uint64_t drain; /* octets the client sends anyway: read, drop */
	bool close;     /* reply, then close the connection */
};

struct imap_parser;

/* Fills lim with the defaults before (authenticated = false) or after
 * authentication. */
void imap_parser_limits_init(struct imap_parser_limits *lim,
			     bool authenticated);

/* A parser under lim (copied; NULL: the defaults before authentication)
 * and flags (enum imap_parser_flags). Free it with imap_parser_free(). */
struct imap_parser *imap_parser_new(const struct imap_parser_limits *lim,
				    unsigned flags);
/* Frees *pp and sets it to NULL. */
void imap_parser_free(struct imap_parser **pp);
/* New limits (copied), from the next command on. */
void imap_parser_set_limits(struct imap_parser *p,
			    const struct imap_parser_limits *lim);
/* New flags, from the next line on. */
void imap_parser_set_flags(struct imap_parser *p, unsigned flags);
/* Drops any command in progress (after STARTTLS, or when the session gave
 * up on one); the next line starts a command. */
void imap_parser_reset(struct imap_parser *p);

/* Parses one line (len bytes, no CRLF, any byte). flags may hold
 * MP_LINE_TOO_LONG (plugin.h): a line the framer cut cannot be trusted
 * to say where the command ends, so it is refused with error->close. Must
 * not be called while a literal is pending. */
enum imap_parse_result imap_parser_feed_line(struct imap_parser *p,
					     const char *line, size_t len,
					     unsigned flags);
/* Hands over len bytes of a HOLD or DISCARD literal, no more than are
 * still expected. Returns NEED_DATA, NEED_LINE when the literal is done,
 * or ERROR when it was refused (a NUL in a literal that is no literal8):
 * reply BAD, then go on feeding lines, which the parser skips. */
enum imap_parse_result imap_parser_literal_data(struct imap_parser *p,
						const void *data, size_t len);
/* The session read the whole pending STREAM or DISCARD literal itself.
 * Returns NEED_LINE. */
enum imap_parse_result imap_parser_literal_consumed(struct imap_parser *p);
/* The session refuses the pending literal itself (APPEND before LOGIN,
 * over APPENDLIMIT, ...) and replies NO or BAD with the literal's tag.
 * Returns the octets the client sends anyway (0 for a synchronising
 * literal), which the session then handles as a DISCARD literal; when it
 * returns 0 no literal is pending any more. Further lines of the command
 * give SKIPPED. */
uint64_t imap_parser_reject_literal(struct imap_parser *p);

/* While an APPEND's STREAM literal is pending: its mailbox, the first
 * argument, as the astring it was sent as (escapes removed, not decoded
 * from modified UTF-7), so the session can start saving before the command
 * is complete. False when no STREAM literal is pending or the first
 * argument is no astring. The view lives as the command's storage does. */
bool imap_parser_append_mailbox(const struct imap_parser *p,
				struct mp_str *name_r);
/* The command after COMPLETE. */
const struct imap_command *imap_parser_command(const struct imap_parser *p);
/* The pending literal after NEED_LITERAL (or an ERROR with a drain), or
 * NULL when none is pending. */
const struct imap_literal *imap_parser_literal(const struct imap_parser *p);
/* The error after ERROR. */
const struct imap_parse_error *imap_parser_error(const struct imap_parser *p);
/* Where the views of the current command point: for tests. */
struct mp_str imap_parser_storage(const struct imap_parser *p);

/* True for the line that ends IDLE (RFC 2177 3: "DONE", any case). */
bool imap_line_is_done(const char *line, size_t len);

/* Argument accessors. Each returns false, leaving *r alone, when the
 * argument is not of the kind asked for (a NULL arg included). */

/* Any atom-like token as the lexer cut it: an atom, NIL, a flag ("\Seen",
 * "\*"), a sequence set ("1:*", "$"); enum imap_arg_flags tells which
 * specials it holds. */
bool imap_arg_get_atom(const struct imap_arg *arg, struct mp_str *r);
/* An astring: atom (']' allowed, no wildcards, no '\'), quoted or held
 * literal. A mailbox name, a user name. */
bool imap_arg_get_astring(const struct imap_arg *arg, struct mp_str *r);
/* A quoted string or held literal. */
bool imap_arg_get_string(const struct imap_arg *arg, struct mp_str *r);
/* A string, or NIL (r->p == NULL). */
bool imap_arg_get_nstring(const struct imap_arg *arg, struct mp_str *r);
/* A LIST pattern: an astring, or an atom with '%' and '*'. */
bool imap_arg_get_list_mailbox(const struct imap_arg *arg, struct mp_str *r);
/* A list; *args_r and *count_r get its elements. */
bool imap_arg_get_list(const struct imap_arg *arg,
		       const struct imap_arg **args_r, size_t *count_r);
/* An atom that is a number (RFC 9051 number64: at most 2^63-1). */
bool imap_arg_get_number(const struct imap_arg *arg, uint64_t *r);
/* True when arg is the atom word, compared without regard to ASCII case. */
bool imap_arg_atom_equals(const struct imap_arg *arg, const char *word);

#endif
