/* auth-private.h - how the server makes, updates and frees its
 * authentication service (see moonpost/auth.h). */
#ifndef MOONPOST_AUTH_PRIVATE_H
#define MOONPOST_AUTH_PRIVATE_H

#include <moonpost/auth.h>
#include <moonpost/config.h>

struct ev_loop;
struct mp_lua;
struct mp_pool;

/* How often, at most, the passwd and alias files are looked at (stat) to
 * see whether they changed. */
#define MP_AUTH_CHECK_INTERVAL_MS 1000

/* A service for cfg whose password checks run on pool and complete on
 * loop. Reads the passwd and alias files now: NULL with *error_r (caller
 * frees, "path:line: message") when either is unreadable or malformed.
 * The caller owns the result (mp_auth_free). */
MP_API struct mp_auth *mp_auth_new(struct ev_loop *loop, struct mp_pool *pool,
				   const struct mp_config *cfg, char **error_r);
/* A new config generation and Lua runtime (NULL: no hook), as after a
 * reload; both are referenced. Requests in flight keep what they began
 * with. */
MP_API void mp_auth_set_runtime(struct mp_auth *auth,
				const struct mp_config *cfg,
				struct mp_lua *lua);
/* Reads the passwd and alias files of cfg once, for check-config: false
 * with *error_r (caller frees) when either has an error. */
bool mp_auth_check_files(const struct mp_config *cfg, char **error_r);
/* Changes MP_AUTH_CHECK_INTERVAL_MS (tests: 0 looks every time). */
void mp_auth_set_check_interval(struct mp_auth *auth, uint64_t ms);
/* Entries in the throttle's tables (tests). */
size_t mp_auth_throttle_size(const struct mp_auth *auth);
/* Cancels every request (no done callback runs after this) and frees the
 * service once the thread pool has given back the checks it still runs
 * (they are logged and counted then); sets *auth NULL. */
MP_API void mp_auth_free(struct mp_auth **auth);

/* ---- accounts.c: the passwd and alias files, kept in memory ---- */

struct mp_passwd;
struct mp_recipient;
struct mp_accounts;

/* Reads the files cfg names. NULL with *error_r (caller frees) when one
 * is unreadable or malformed. Caller frees (mp_accounts_free). */
struct mp_accounts *mp_accounts_new(const struct mp_config *cfg,
				    char **error_r);
/* A new config generation: file names, domains, recipient_delimiter. */
void mp_accounts_set_config(struct mp_accounts *a, const struct mp_config *cfg);
/* See mp_auth_set_check_interval(). */
void mp_accounts_set_interval(struct mp_accounts *a, uint64_t ms);
/* The passwd table, re-read first if the file changed, or NULL when no
 * good one could ever be read. A file that fails to parse is logged and
 * the table read before stays in use. Borrowed until the next call. */
const struct mp_passwd *mp_accounts_passwd(struct mp_accounts *a);
/* Resolves address (recipient.h), with both files re-read if changed. */
enum mp_recipient_status mp_accounts_resolve(struct mp_accounts *a,
					     const char *address,
					     struct mp_recipient *r);
/* Reads the files of cfg once; false with *error_r on the first error. */
bool mp_accounts_check(const struct mp_config *cfg, char **error_r);
/* Frees a; sets *a NULL. */
void mp_accounts_free(struct mp_accounts **a);

#endif
