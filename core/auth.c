/* auth.c - the authentication service: throttle, Lua `auth` hook, passwd
 * file, and the log line of every attempt.
 *
 * A password check is a request that moves through stages: the hook (a
 * Lua call that may wait), then the hash (a job on the thread pool), then
 * done. The request is found again by the callbacks through the pointer
 * they were given; a cancelled request lives on, detached from its
 * caller, until the stage it is in ends, so no callback ever sees freed
 * memory. The service itself is reference-counted by its requests for the
 * same reason. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include <moonpost/log.h>
#include <moonpost/lua.h>
#include <moonpost/pool.h>
#include <moonpost/recipient.h>

#include "addr.h"
#include "auth-cache.h"
#include "auth-private.h"
#include "auth-throttle.h"
#include "passwd.h"
#include "password.h"

/* Entries per throttle table: 16384 addresses, accounts and known-good
 * pairs, about 1.5 MB at most; an attacker with more addresses than that
 * pushes out the quietest ones, never memory. */
#define THROTTLE_ENTRIES 16384
/* Accounts whose last good password is remembered: 72 bytes each, 1.2 MB
 * in all; more accounts than this share slots, and a login evicts. */
#define CACHE_SLOTS 16384
/* RFC 5321 4.5.3.1.3: no account name is longer. */
#define USER_MAX 254

/* Checked when the account does not exist, so that an unknown user costs
 * what a known one does. A yescrypt hash at libxcrypt's default cost, as
 * `moonpost user add` makes them, of a password nobody knows. */
static const char dummy_hash[] = "{YESCRYPT}$y$j9T$Ez8.qFj8jmC5P3Osqp.6a1$"
				 "xdaJoZwsUv1atvB5tagVySR6A7z4qG7AahwsF.i0YG3";

struct mp_auth {
	int refs; /* the owner and each request in flight */
	struct ev_loop *loop;
	struct mp_pool *pool;
	struct mp_config *config;
	struct mp_lua *lua; /* NULL: no hook */
	struct mp_accounts *accounts;
	struct mp_auth_throttle *throttle;
	struct mp_auth_cache *cache; /* NULL: none could be made */
	struct mp_auth_request *requests; /* in flight */
};

enum stage { STAGE_START, STAGE_HOOK, STAGE_HASH, STAGE_DONE };

struct mp_auth_request {
	struct mp_auth *auth;
	struct mp_auth_request *prev, *next; /* in auth->requests */
	enum stage stage;
	bool cancelled;
	mp_auth_done_fn *done;
	void *ctx;

	char *user; /* lower case */
	char *password;
	char *service, *ip, *session, *mechanism;
	uint8_t ip_key[16];
	struct mp_auth_throttle_ticket ticket;
	struct mp_lua_call *call;

	char *stored; /* the credentials checked, or the dummy */
	bool exists;
	bool matched; /* set by the worker */
};

static void auth_unref(struct mp_auth **authp);

const char *
mp_auth_result_name(enum mp_auth_result result)
{
	static const char *const names[] = {"ok", "failed", "throttled",
					    "tempfail"};

	return (size_t)result < MP_NELEMS(names) ? names[result] : "unknown";
}

/* ---- small helpers --------------------------------------------------- */

static char *
lower_dup(const char *s)
{
	char *p = mp_xstrdup(s != NULL ? s : "");

	for (char *q = p; *q != '\0'; q++)
		*q = (char)tolower((unsigned char)*q);
	return p;
}

/* No account can have an empty, overlong or control-character name. */
static bool
user_plausible(const char *user)
{
	size_t n = strnlen(user, USER_MAX + 1);

	if (n == 0 || n > USER_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)user[i] < 0x20 || user[i] == 0x7f)
			return false;
	}
	return true;
}

/* The throttle's key of a textual address; all zero when it is not one,
 * so that such clients share one bucket. */
static void
ip_key_of(const char *ip, uint8_t key[16])
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	memset(key, 0, 16);
	if (ip == NULL)
		return;
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		return;
	mp_addr_limit_key((const struct sockaddr *)&ss, key);
}

static void
log_attempt(enum mp_auth_result result, const char *user, const char *ip,
	    const char *service, const char *session, const char *mechanism,
	    const char *reason)
{
	mp_log(result == MP_AUTH_OK ? MP_LOG_INFO : MP_LOG_WARN,
	       "%s%s%sevent=auth result=%s user=%s ip=%s service=%s "
	       "mechanism=%s reason=%s",
	       session != NULL ? "session=" : "",
	       session != NULL ? mp_q(session) : "", session != NULL ? " " : "",
	       mp_auth_result_name(result), mp_q(user), mp_q(ip), mp_q(service),
	       mp_q(mechanism), reason);
}

static struct mp_auth_throttle_limits
throttle_limits(const struct mp_config *cfg)
{
	const struct mp_cfg_auth *a = mp_config_auth(cfg);

	return (struct mp_auth_throttle_limits){
		.max_per_ip = (unsigned)a->max_failures_per_ip,
		.max_per_account = (unsigned)a->max_failures_per_account,
		.window_ms = a->window,
		.known_good_ms = a->known_good,
		.max_entries = THROTTLE_ENTRIES,
	};
}

/* ---- requests -------------------------------------------------------- */

static struct mp_auth_request *
request_new(struct mp_auth *auth, const char *user, const char *password,
	    const struct mp_auth_info *info)
{
	struct mp_auth_request *req = mp_xcalloc(1, sizeof(*req));

	req->auth = auth;
	auth->refs++;
	req->next = auth->requests;
	if (auth->requests != NULL)
		auth->requests->prev = req;
	auth->requests = req;
	req->user = lower_dup(user);
	req->password = mp_xstrdup(password != NULL ? password : "");
	req->service = mp_xstrdup(info->service);
	req->ip = mp_xstrdup(info->ip);
	req->session = mp_xstrdup(info->session);
	req->mechanism = mp_xstrdup(info->mechanism);
	ip_key_of(info->ip, req->ip_key);
	return req;
}

static void
request_free(struct mp_auth_request *req)
{
	struct mp_auth *auth = req->auth;

	if (req->prev != NULL)
		req->prev->next = req->next;
	else
		auth->requests = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	explicit_bzero(req->password, strlen(req->password));
	free(req->password);
	free(req->user);
	free(req->service);
	free(req->ip);
	free(req->session);
	free(req->mechanism);
	free(req->stored);
	auth_unref(&req->auth);
	free(req);
}

static enum mp_auth_throttle_outcome
outcome_of(enum mp_auth_result result)
{
	switch (result) {
	case MP_AUTH_OK:
		return MP_AUTH_THROTTLE_OK;
	case MP_AUTH_FAILED:
		return MP_AUTH_THROTTLE_FAILED;
	default:
		return MP_AUTH_THROTTLE_NEUTRAL;
	}
}

/* Settles the throttle, logs, tells the caller, frees (or leaves that to
 * mp_auth_verify_password() when the request ends before it returns). */
static void
request_finish(struct mp_auth_request *req, enum mp_auth_result result,
	       const char *reason)
{
	bool starting = req->stage == STAGE_START;

	mp_auth_throttle_end(req->auth->throttle, req->ip_key, req->user,
			     &req->ticket, outcome_of(result), mp_now_ms());
	log_attempt(result, req->user, req->ip, req->service, req->session,
		    req->mechanism, reason);
	req->stage = STAGE_DONE;
	if (!req->cancelled)
		req->done(result, req->user, req->ctx);
	if (!starting)
		request_free(req);
}

/* ---- the hash -------------------------------------------------------- */

static void
hash_work(void *arg)
{
	struct mp_auth_request *req = arg;

	req->matched = mp_password_verify(req->password, req->stored);
}

static void
hash_done(void *arg)
{
	struct mp_auth_request *req = arg;

	struct mp_auth *auth = req->auth;

	if (!req->exists) {
		request_finish(req, MP_AUTH_FAILED, "unknown_user");
	} else if (!req->matched) {
		if (auth->cache != NULL)
			mp_auth_cache_forget(auth->cache, req->user);
		request_finish(req, MP_AUTH_FAILED, "bad_password");
	} else {
		if (auth->cache != NULL &&
		    mp_config_auth(auth->config)->cache_ttl > 0)
			mp_auth_cache_add(auth->cache, req->user, req->stored,
					  req->password, mp_now_ms());
		request_finish(req, MP_AUTH_OK, "password");
	}
}

/* The password was found right a short while ago (auth-cache.h). */
static bool
cached(struct mp_auth_request *req, const struct mp_passwd_entry *e)
{
	struct mp_auth *auth = req->auth;
	uint64_t ttl = mp_config_auth(auth->config)->cache_ttl;

	return e != NULL && auth->cache != NULL && ttl > 0 &&
	       mp_auth_cache_check(auth->cache, req->user, e->hash,
				   req->password, mp_now_ms(), ttl);
}

static void
hash_start(struct mp_auth_request *req)
{
	const struct mp_passwd *pw = mp_accounts_passwd(req->auth->accounts);
	const struct mp_passwd_entry *e;

	if (pw == NULL) {
		request_finish(req, MP_AUTH_TEMPFAIL, "no_passwd_file");
		return;
	}
	e = mp_passwd_find(pw, req->user);
	if (cached(req, e)) {
		request_finish(req, MP_AUTH_OK, "password_cached");
		return;
	}
	req->exists = e != NULL;
	req->stored = mp_xstrdup(e != NULL ? e->hash : dummy_hash);
	req->stage = STAGE_HASH;
	mp_pool_submit_slow(req->auth->pool, hash_work, hash_done, req);
}

/* ---- the hook -------------------------------------------------------- */

static void
push_field(lua_State *L, const char *key, const char *value)
{
	if (value == NULL)
		return;
	lua_pushstring(L, value);
	lua_setfield(L, -2, key);
}

/* [-0, +1, m] The handler's one argument. */
static int
hook_push(lua_State *L, void *ctx)
{
	struct mp_auth_request *req = ctx;

	lua_createtable(L, 0, 6);
	push_field(L, "user", req->user);
	push_field(L, "password", req->password);
	push_field(L, "service", req->service);
	push_field(L, "ip", req->ip);
	push_field(L, "mechanism", req->mechanism);
	push_field(L, "session", req->session);
	return 1;
}

static void
hook_done(const struct mp_verdict *v, void *ctx)
{
	struct mp_auth_request *req = ctx;

	req->call = NULL;
	switch (v->kind) {
	case MP_VERDICT_CONTINUE:
		hash_start(req);
		break;
	case MP_VERDICT_ACCEPT:
		request_finish(req, MP_AUTH_OK, "hook_accept");
		break;
	case MP_VERDICT_REJECT:
	case MP_VERDICT_DISCONNECT:
		request_finish(req, MP_AUTH_FAILED, "hook_reject");
		break;
	case MP_VERDICT_DEFER:
		request_finish(req, MP_AUTH_TEMPFAIL, "hook_defer");
		break;
	default:
		/* A script error is never a login. */
		request_finish(req, MP_AUTH_TEMPFAIL, "hook_error");
	}
}

static void
hook_start(struct mp_auth_request *req)
{
	struct mp_lua_call *call;

	call = mp_lua_call_hook(req->auth->lua, "auth", req->session, hook_push,
				hook_done, req);
	/* NULL: the call ended at once, and hook_done has run. */
	if (call != NULL)
		req->call = call;
}

/* ---- public ---------------------------------------------------------- */

struct mp_auth_request *
mp_auth_verify_password(struct mp_auth *auth, const char *user,
			const char *password, const struct mp_auth_info *info,
			mp_auth_done_fn *done, void *ctx)
{
	struct mp_auth_request *req = request_new(auth, user, password, info);
	enum mp_auth_throttle_verdict v;

	req->done = done;
	req->ctx = ctx;
	v = mp_auth_throttle_begin(auth->throttle, req->ip_key, req->user,
				   mp_now_ms(), &req->ticket);
	if (v != MP_AUTH_THROTTLE_PASS) {
		log_attempt(MP_AUTH_THROTTLED, req->user, req->ip, req->service,
			    req->session, req->mechanism,
			    v == MP_AUTH_THROTTLE_IP ? "ip_throttled"
						     : "account_throttled");
		done(MP_AUTH_THROTTLED, req->user, ctx);
		request_free(req);
		return NULL;
	}
	if (!user_plausible(req->user))
		request_finish(req, MP_AUTH_FAILED, "invalid_user");
	else if (auth->lua != NULL && mp_lua_has_hook(auth->lua, "auth"))
		hook_start(req);
	else
		hash_start(req);
	if (req->stage == STAGE_DONE) {
		request_free(req);
		return NULL;
	}
	if (req->stage == STAGE_START)
		req->stage = req->call != NULL ? STAGE_HOOK : STAGE_HASH;
	return req;
}

void
mp_auth_cancel(struct mp_auth_request **reqp)
{
	struct mp_auth_request *req = *reqp;

	*reqp = NULL;
	if (req == NULL)
		return;
	req->cancelled = true;
	if (req->stage != STAGE_HOOK)
		return; /* hash_done finishes it */
	mp_lua_call_cancel(&req->call);
	/* The charge of the attempt stays: it never got a verdict. */
	log_attempt(MP_AUTH_FAILED, req->user, req->ip, req->service,
		    req->session, req->mechanism, "abandoned");
	request_free(req);
}

struct mp_auth_request *
mp_auth_lookup_credential(struct mp_auth *auth, const char *user,
			  const char *scheme, const struct mp_auth_info *info,
			  mp_auth_credential_fn *done, void *ctx)
{
	char *lc = lower_dup(user);
	uint8_t key[16];
	const struct mp_passwd *pw;
	const struct mp_passwd_entry *e;
	struct mp_str cred = {0};
	char *copy;

	ip_key_of(info->ip, key);
	if (mp_auth_throttle_check(auth->throttle, key, lc, mp_now_ms()) !=
	    MP_AUTH_THROTTLE_PASS) {
		log_attempt(MP_AUTH_THROTTLED, lc, info->ip, info->service,
			    info->session, info->mechanism, "throttled");
		done(MP_AUTH_THROTTLED, lc, NULL, ctx);
		free(lc);
		return NULL;
	}
	pw = mp_accounts_passwd(auth->accounts);
	e = pw != NULL && user_plausible(lc) ? mp_passwd_find(pw, lc) : NULL;
	if (e != NULL)
		cred = mp_passwd_credential(e, scheme);
	copy = cred.p != NULL ? mp_xstrndup(cred.p, cred.len) : NULL;
	done(pw == NULL     ? MP_AUTH_TEMPFAIL
	     : copy != NULL ? MP_AUTH_OK
			    : MP_AUTH_FAILED,
	     lc, copy, ctx);
	if (copy != NULL) {
		explicit_bzero(copy, cred.len);
		free(copy);
	}
	free(lc);
	return NULL;
}

void
mp_auth_report(struct mp_auth *auth, const char *user,
	       const struct mp_auth_info *info, bool ok)
{
	char *lc = lower_dup(user);
	uint8_t key[16];

	ip_key_of(info->ip, key);
	mp_auth_throttle_record(auth->throttle, key, lc, ok, mp_now_ms());
	log_attempt(ok ? MP_AUTH_OK : MP_AUTH_FAILED, lc, info->ip,
		    info->service, info->session, info->mechanism,
		    ok ? "proof" : "bad_proof");
	free(lc);
}

enum mp_recipient_status
mp_recipient_resolve(struct mp_auth *auth, const char *address,
		     struct mp_recipient *r)
{
	return mp_accounts_resolve(auth->accounts, address, r);
}

/* ---- the service ----------------------------------------------------- */

/* Random bytes for the throttle's hash key. */
static void
make_seed(uint8_t seed[16])
{
	uint64_t t;

	if (getrandom(seed, 16, 0) == 16)
		return;
	/* Only the tables' resistance to chosen collisions depends on it. */
	t = mp_now_ms() ^ (uint64_t)getpid() << 32;
	memcpy(seed, &t, 8);
	memcpy(seed + 8, &seed, sizeof(void *));
}

struct mp_auth *
mp_auth_new(struct ev_loop *loop, struct mp_pool *pool,
	    const struct mp_config *cfg, char **error_r)
{
	struct mp_auth_throttle_limits limits = throttle_limits(cfg);
	struct mp_accounts *accounts = mp_accounts_new(cfg, error_r);
	struct mp_auth *auth;
	uint8_t seed[16];

	if (accounts == NULL)
		return NULL;
	make_seed(seed);
	auth = mp_xcalloc(1, sizeof(*auth));
	auth->refs = 1;
	auth->loop = loop;
	auth->pool = pool;
	auth->config = mp_config_ref(cfg);
	auth->accounts = accounts;
	auth->throttle = mp_auth_throttle_new(&limits, seed);
	auth->cache = mp_auth_cache_new(CACHE_SLOTS);
	mp_log(MP_LOG_INFO,
	       "event=auth_ready passwd=%s aliases=%s max_failures_per_ip=%u "
	       "max_failures_per_account=%u",
	       mp_q(mp_config_passwd_file(cfg)),
	       mp_q(mp_config_aliases_file(cfg)), limits.max_per_ip,
	       limits.max_per_account);
	return auth;
}

void
mp_auth_set_runtime(struct mp_auth *auth, const struct mp_config *cfg,
		    struct mp_lua *lua)
{
	struct mp_auth_throttle_limits limits = throttle_limits(cfg);

	if (cfg != auth->config) {
		mp_config_unref(&auth->config);
		auth->config = mp_config_ref(cfg);
		mp_accounts_set_config(auth->accounts, cfg);
		mp_auth_throttle_set_limits(auth->throttle, &limits);
	}
	if (lua != auth->lua) {
		mp_lua_unref(&auth->lua);
		auth->lua = lua != NULL ? mp_lua_ref(lua) : NULL;
	}
}

bool
mp_auth_check_files(const struct mp_config *cfg, char **error_r)
{
	return mp_accounts_check(cfg, error_r);
}

void
mp_auth_set_check_interval(struct mp_auth *auth, uint64_t ms)
{
	mp_accounts_set_interval(auth->accounts, ms);
}

size_t
mp_auth_throttle_size(const struct mp_auth *auth)
{
	return mp_auth_throttle_entries(auth->throttle);
}

static void
auth_unref(struct mp_auth **authp)
{
	struct mp_auth *auth = *authp;

	*authp = NULL;
	if (auth == NULL || --auth->refs > 0)
		return;
	mp_auth_throttle_free(&auth->throttle);
	mp_auth_cache_free(&auth->cache);
	mp_accounts_free(&auth->accounts);
	mp_lua_unref(&auth->lua);
	mp_config_unref(&auth->config);
	free(auth);
}

void
mp_auth_free(struct mp_auth **authp)
{
	struct mp_auth *auth = *authp;
	struct mp_auth_request *req, *next;

	if (auth == NULL)
		return;
	/* No callback runs from here on. A check on the pool keeps the
	 * service alive until it comes back, to be logged and counted. */
	for (req = auth->requests; req != NULL; req = next) {
		struct mp_auth_request *r = req;

		next = req->next;
		mp_auth_cancel(&r);
	}
	auth_unref(authp);
}
