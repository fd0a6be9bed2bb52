/* recipient.h - where mail for an address goes: local accounts, aliases,
 * subaddresses and catch-alls.
 *
 * Only addresses in the config's `domains` are local; any other address is
 * external, as it is. A local address resolves, in this order, to:
 *   1. the alias of that exact address, if the alias file has one (an alias
 *      wins over an account of the same name, as Postfix's virtual aliases
 *      do; an alias may list its own address to keep delivering to the
 *      account too);
 *   2. the account of that address;
 *   3. with a recipient_delimiter, alice+tag@example.org is tried as
 *      alice@example.org (alias, then account), and "tag" is reported as
 *      the detail;
 *   4. the domain's catch-all (`@example.org: ...`), when the address is
 *      neither an alias nor an account;
 *   5. otherwise: no such user.
 * Alias targets resolve by the same rules, recursively (at most
 * MP_ALIAS_DEPTH_MAX deep, MP_ALIAS_TARGETS_MAX targets in all, each once).
 * A target that resolves to nothing is skipped with a warning in the log.
 * Domains compare without case; local parts of local addresses are
 * lower-cased. The alias file is re-read when it changes. */
#ifndef MOONPOST_RECIPIENT_H
#define MOONPOST_RECIPIENT_H

#include <moonpost/common.h>

/* Nesting of aliases (an alias of an alias...). Real tables need two or
 * three levels; a deeper chain is a mistake in the file. */
#define MP_ALIAS_DEPTH_MAX 8
/* Local and external targets of one address together: bounds the work one
 * RCPT TO can cause, a list of 1000 being far above any real team. */
#define MP_ALIAS_TARGETS_MAX 1000

struct mp_auth;

enum mp_recipient_status {
	MP_RECIPIENT_OK = 0,  /* local and/or external hold the targets */
	MP_RECIPIENT_UNKNOWN, /* no such user (SMTP 550 5.1.1) */
	MP_RECIPIENT_ERROR,   /* the alias table is broken for this address
				 (a loop, too deep, too many targets): defer
				 (451 4.3.0); error says why */
};

/* The result of a resolution. Zero it before the first use. */
struct mp_recipient {
	struct mp_strlist local;    /* accounts, lower case, each once */
	struct mp_strlist external; /* addresses elsewhere, as written */
	char *detail;               /* "tag" of alice+tag@..., or NULL */
	char *error;                /* MP_RECIPIENT_ERROR: why, for the log */
};

/* Resolves address with the server's accounts and alias file. r is
 * cleared first and owned by the caller (mp_recipient_clear). */
MP_API enum mp_recipient_status mp_recipient_resolve(struct mp_auth *auth,
						     const char *address,
						     struct mp_recipient *r);
/* Frees what r holds; r is empty (zeroed) afterwards. */
MP_API void mp_recipient_clear(struct mp_recipient *r);

#endif
