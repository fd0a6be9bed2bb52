/* aliases.h - the alias file and recipient resolution (see recipient.h).
 *
 * The file holds one entry per line, `#` starting a comment line:
 *   postmaster@example.org: alice@example.org, bob@example.org
 *   fwd@example.org: someone@elsewhere.net
 *   @example.org: catchall@example.org
 * A line that starts with white space continues the entry above it. */
#ifndef MOONPOST_ALIASES_H
#define MOONPOST_ALIASES_H

#include <moonpost/common.h>
#include <moonpost/recipient.h>

struct mp_aliases;

/* Parses len bytes of alias file text; path names it in errors. Returns
 * the table (caller frees) or NULL with *error_r ("path:line: message",
 * caller frees). */
struct mp_aliases *mp_aliases_parse(const char *path, const char *text,
				    size_t len, char **error_r);
/* Reads and parses path; a missing file is an empty table. False with
 * *error_r (caller frees) as mp_aliases_parse(), or "path: why". */
bool mp_aliases_read(const char *path, struct mp_aliases **aliases_r,
		     char **error_r);
/* Number of entries. */
size_t mp_aliases_count(const struct mp_aliases *aliases);
/* Frees the table; sets *aliases NULL. */
void mp_aliases_free(struct mp_aliases **aliases);

/* What a resolution consults. */
struct mp_resolve_params {
	const struct mp_aliases *aliases; /* NULL: no aliases */
	const struct mp_strlist *domains; /* the local domains, lower case */
	const char *delimiter; /* recipient_delimiter; NULL or "": none */
	/* True when address (lower case) is an account. */
	bool (*is_account)(void *ctx, const char *address);
	void *ctx;
};

/* Resolves address as recipient.h describes; r is cleared first. */
enum mp_recipient_status mp_aliases_resolve(const struct mp_resolve_params *p,
					    const char *address,
					    struct mp_recipient *r);

#endif
