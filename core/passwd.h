/* passwd.h - the account file: one `address:CREDENTIALS` line per account.
 *
 * CREDENTIALS is one {SCHEME}hash or several separated by one space, each
 * scheme at most once, e.g. a hash for PLAIN and LOGIN and a secret for
 * SCRAM:
 *   alice@example.org:{YESCRYPT}$y$... {SCRAM-SHA-256}4096,...
 * Blank lines and lines starting with '#' are kept as they are when the file
 * is rewritten. Addresses are stored in lower case. */
#ifndef MOONPOST_PASSWD_H
#define MOONPOST_PASSWD_H

#include <moonpost/common.h>

struct mp_passwd_entry {
	char *address; /* lower case; NULL for a comment or blank line */
	char *hash;    /* CREDENTIALS; for a comment line, the line itself */
};

struct mp_passwd {
	struct mp_passwd_entry *v;
	size_t n;
};

/* Reads path into pw (which must be zeroed). A missing file is an empty
 * list. False with *error_r (caller frees, "path:line: ...") on a read error
 * or a malformed line; errno is then 0 for a malformed file, else the error
 * of the failed call (so a command can tell EX_DATAERR from EX_IOERR). */
MP_API bool mp_passwd_read(const char *path, struct mp_passwd *pw,
			   char **error_r);
/* Replaces path atomically (temp file, fsync, rename, directory fsync) with
 * mode 0640. False with *error_r (caller frees). */
MP_API bool mp_passwd_write(const char *path, const struct mp_passwd *pw,
			    char **error_r);
/* The entry for address (any case), or NULL. Borrowed from pw. */
MP_API const struct mp_passwd_entry *mp_passwd_find(const struct mp_passwd *pw,
						    const char *address);
/* The credential "{SCHEME}..." of e whose scheme is scheme (without
 * braces, any case), as a view into e; p is NULL when e has none. Give the
 * whole of e->hash to mp_password_verify() to check a password. */
MP_API struct mp_str mp_passwd_credential(const struct mp_passwd_entry *e,
					  const char *scheme);
/* Adds address with hash (CREDENTIALS), or replaces its hash when it
 * exists. */
MP_API void mp_passwd_set(struct mp_passwd *pw, const char *address,
			  const char *hash);
/* Removes address; false when it was not there. */
MP_API bool mp_passwd_remove(struct mp_passwd *pw, const char *address);
/* Frees every entry; pw is empty afterwards. */
MP_API void mp_passwd_free(struct mp_passwd *pw);
/* True when address is a plausible account name: local@domain, printable
 * ASCII without ':' or spaces, at most 254 bytes. */
MP_API bool mp_address_is_valid(const char *address);
/* Takes an exclusive lock on `path`.lock for a read-modify-write cycle.
 * Returns the lock fd (close it to release), or -1 with *error_r. */
MP_API int mp_passwd_lock(const char *path, char **error_r);

#endif
