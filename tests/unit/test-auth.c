/* test-auth.c - unit tests of the auth service: the throttle, aliases and
 * recipient resolution, password checks with the Lua `auth` hook, and the
 * Lua SQLite binding and password_verify that hooks use. */
#include "config.h"

#include <fcntl.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <glib.h>
#include <lauxlib.h>
#include <lua.h>

#include <moonpost/auth.h>
#include <moonpost/log.h>
#include <moonpost/lua.h>
#include <moonpost/pool.h>
#include <moonpost/recipient.h>

#include "aliases.h"
#include "auth-private.h"
#include "auth-throttle.h"
#include "passwd.h"
#include "password.h"

/* Only turns a hang into a failure; no test measures time with it. */
#define GUARD_SECONDS 60.0

/* ---- shared fixture: a directory, a log, a loop and a pool ------------ */

struct fx {
	char *dir;
	char *log_path;
	int log_fd;
	struct ev_loop *loop;
	struct mp_pool *pool;
	struct mp_config *cfg;
	struct mp_auth *auth;
	struct mp_lua *lua;
	struct mp_cfg_lua lua_cfg; /* for runtimes made without a config */
};

static const char *const hook_names[] = {"auth", "test", NULL};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
fx_setup(struct fx *fx, gconstpointer data)
{
	GError *error = NULL;

	memset(fx, 0, sizeof(*fx));
	fx->dir = g_dir_make_tmp("mp-auth-XXXXXX", &error);
	g_assert_no_error(error);
	fx->log_path = g_build_filename(fx->dir, "log", NULL);
	fx->log_fd = open(fx->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	g_assert_cmpint(fx->log_fd, >=, 0);
	mp_log_set_fd(fx->log_fd);
	mp_log_set_level(MP_LOG_INFO);
	fx->loop = ev_loop_new(EVFLAG_AUTO);
	fx->pool = mp_pool_new(fx->loop, 2);
	fx->lua_cfg.memory = 8u << 20;
	fx->lua_cfg.memory_total = 64u << 20;
	fx->lua_cfg.instructions = 1000000;
	fx->lua_cfg.timeout = 30000;
}

static void
fx_teardown(struct fx *fx, gconstpointer data)
{
	/* The pool hands back what it still runs before anything goes. */
	mp_pool_free(&fx->pool);
	mp_auth_free(&fx->auth);
	mp_lua_unref(&fx->lua);
	mp_config_unref(&fx->cfg);
	mp_strlist_free(&fx->lua_cfg.scripts);
	ev_loop_destroy(fx->loop);
	mp_log_set_fd(STDERR_FILENO);
	close(fx->log_fd);
	nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	g_free(fx->log_path);
	g_free(fx->dir);
}

static char *
fx_path(struct fx *fx, const char *name)
{
	return g_build_filename(fx->dir, name, NULL);
}

static void
write_file(struct fx *fx, const char *name, const char *text)
{
	char *path = fx_path(fx, name);
	GError *error = NULL;

	/* Through a temp file and rename, as editors and `moonpost user` do:
	 * a new inode, so the change is seen even within one clock tick. */
	g_file_set_contents(path, text, -1, &error);
	g_assert_no_error(error);
	g_free(path);
}

static char *
log_text(struct fx *fx)
{
	char *text = NULL;
	GError *error = NULL;

	g_file_get_contents(fx->log_path, &text, NULL, &error);
	g_assert_no_error(error);
	return text;
}

static void
assert_log_has(struct fx *fx, const char *needle)
{
	char *text = log_text(fx);

	if (strstr(text, needle) == NULL)
		g_error("log lacks \"%s\":\n%s", needle, text);
	g_free(text);
}

static void
assert_log_lacks(struct fx *fx, const char *needle)
{
	char *text = log_text(fx);

	if (strstr(text, needle) != NULL)
		g_error("log has \"%s\":\n%s", needle, text);
	g_free(text);
}

static void
log_clear(struct fx *fx)
{
	g_assert_cmpint(ftruncate(fx->log_fd, 0), ==, 0);
}

static void
guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	g_error("the loop waited more than %.0f s", GUARD_SECONDS);
}

/* Runs the loop until *flag is set. */
static void
run_until(struct fx *fx, const bool *flag)
{
	ev_timer guard;

	ev_timer_init(&guard, guard_cb, GUARD_SECONDS, 0);
	ev_timer_start(fx->loop, &guard);
	while (!*flag)
		ev_run(fx->loop, EVRUN_ONCE);
	ev_timer_stop(fx->loop, &guard);
}

/* Runs the loop until the pool has given back every job. */
static void
run_pool_empty(struct fx *fx)
{
	ev_timer guard;

	ev_timer_init(&guard, guard_cb, GUARD_SECONDS, 0);
	ev_timer_start(fx->loop, &guard);
	while (mp_pool_pending(fx->pool) > 0)
		ev_run(fx->loop, EVRUN_ONCE);
	ev_timer_stop(fx->loop, &guard);
}

/* ---- the throttle ---------------------------------------------------- */

static const uint8_t seed[16] = "0123456789abcdef";

static void
ip4(uint8_t key[16], int last)
{
	memset(key, 0, 16);
	key[12] = 192;
	key[14] = (uint8_t)(last >> 8);
	key[15] = (uint8_t)last;
}

enum act { BEGIN_FAIL, BEGIN_OK, BEGIN_NEUTRAL, RECORD_FAIL, RECORD_OK };

struct step {
	uint64_t t;
	int ip;
	const char *account;
	enum act act;
	enum mp_auth_throttle_verdict want; /* of the begin, or of a check */
};

struct throttle_case {
	const char *name;
	struct mp_auth_throttle_limits limits;
	struct step steps[24];
};

#define P    MP_AUTH_THROTTLE_PASS
#define TIP  MP_AUTH_THROTTLE_IP
#define TACC MP_AUTH_THROTTLE_ACCOUNT
#define LIM(ip, acc, win, good)                                                \
	{                                                                      \
		ip, acc, win, good, 1000                                       \
	}

static const struct throttle_case throttle_cases[] = {
	{"address limit covers every account",
	 LIM(3, 100, 60000, 0),
	 {{0, 1, "a", BEGIN_FAIL, P},
	  {1, 1, "b", BEGIN_FAIL, P},
	  {2, 1, "c", BEGIN_FAIL, P},
	  {3, 1, "d", BEGIN_OK, TIP},
	  {3, 1, "a", BEGIN_OK, TIP},
	  {3, 2, "a", BEGIN_FAIL, P}}},
	{"account limit covers every address",
	 LIM(100, 3, 60000, 0),
	 {{0, 1, "alice", BEGIN_FAIL, P},
	  {0, 2, "alice", BEGIN_FAIL, P},
	  {0, 3, "alice", BEGIN_FAIL, P},
	  {0, 4, "alice", BEGIN_OK, TACC},
	  {0, 1, "alice", BEGIN_OK, TACC},
	  {0, 4, "bob", BEGIN_OK, P}}},
	{"known-good address is exempt from the account limit",
	 LIM(100, 3, 60000, 3600000),
	 {{0, 9, "alice", BEGIN_OK, P},
	  {1, 1, "alice", BEGIN_FAIL, P},
	  {2, 2, "alice", BEGIN_FAIL, P},
	  {3, 3, "alice", BEGIN_FAIL, P},
	  {4, 4, "alice", BEGIN_OK, TACC},
	  {5, 9, "alice", BEGIN_OK, P},
	  /* mistakes at home do not fill the account's bucket */
	  {6, 9, "alice", BEGIN_FAIL, P},
	  {7, 9, "alice", BEGIN_FAIL, P},
	  {8, 9, "alice", BEGIN_OK, P},
	  /* and it was for alice only */
	  {9, 9, "bob", BEGIN_FAIL, P},
	  /* known good runs out */
	  {3600000 + 10, 1, "alice", BEGIN_FAIL, P},
	  {3600000 + 10, 2, "alice", BEGIN_FAIL, P},
	  {3600000 + 10, 3, "alice", BEGIN_FAIL, P},
	  {3600000 + 10, 9, "alice", BEGIN_OK, TACC}}},
	{"the address limit applies to known-good addresses too",
	 LIM(2, 100, 60000, 3600000),
	 {{0, 1, "alice", BEGIN_OK, P},
	  {1, 1, "alice", BEGIN_FAIL, P},
	  {2, 1, "alice", BEGIN_FAIL, P},
	  {3, 1, "alice", BEGIN_OK, TIP}}},
	{"buckets drain at max per window",
	 LIM(2, 100, 1000, 0),
	 {{0, 1, "a", BEGIN_FAIL, P},
	  {0, 1, "a", BEGIN_FAIL, P},
	  {0, 1, "a", BEGIN_OK, TIP},
	  {499, 1, "a", BEGIN_OK, TIP},
	  {500, 1, "a", BEGIN_FAIL, P},
	  {500, 1, "a", BEGIN_OK, TIP},
	  {2000, 1, "a", BEGIN_FAIL, P},
	  {2000, 1, "a", BEGIN_FAIL, P},
	  {2000, 1, "a", BEGIN_OK, TIP}}},
	{"polling while throttled does not stop the drain",
	 LIM(1, 100, 1000, 0),
	 {{0, 1, "a", BEGIN_FAIL, P},
	  {100, 1, "a", BEGIN_OK, TIP},
	  {200, 1, "a", BEGIN_OK, TIP},
	  {300, 1, "a", BEGIN_OK, TIP},
	  {999, 1, "a", BEGIN_OK, TIP},
	  {1000, 1, "a", BEGIN_OK, P}}},
	{"success and no verdict are refunded",
	 LIM(2, 2, 60000, 0),
	 {{0, 1, "a", BEGIN_OK, P},
	  {0, 1, "a", BEGIN_OK, P},
	  {0, 1, "a", BEGIN_NEUTRAL, P},
	  {0, 1, "a", BEGIN_NEUTRAL, P},
	  {0, 1, "a", BEGIN_OK, P},
	  {0, 1, "a", BEGIN_FAIL, P},
	  {0, 1, "a", BEGIN_FAIL, P},
	  {0, 1, "a", BEGIN_OK, TIP}}},
	{"reported outcomes count",
	 LIM(100, 2, 60000, 3600000),
	 {{0, 1, "a", RECORD_FAIL, P},
	  {0, 2, "a", RECORD_FAIL, TACC},
	  {0, 3, "a", BEGIN_OK, TACC},
	  {0, 4, "a", RECORD_OK, P},
	  {0, 4, "a", BEGIN_OK, P}}},
	{"no limits",
	 LIM(0, 0, 60000, 0),
	 {{0, 1, "a", BEGIN_FAIL, P},
	  {0, 1, "a", BEGIN_FAIL, P},
	  {0, 1, "a", BEGIN_FAIL, P},
	  {0, 1, "a", BEGIN_OK, P}}},
};

static void
throttle_step(struct mp_auth_throttle *t, const struct step *s, size_t i,
	      const char *name)
{
	static const enum mp_auth_throttle_outcome outcome[] = {
		[BEGIN_FAIL] = MP_AUTH_THROTTLE_FAILED,
		[BEGIN_OK] = MP_AUTH_THROTTLE_OK,
		[BEGIN_NEUTRAL] = MP_AUTH_THROTTLE_NEUTRAL,
	};
	struct mp_auth_throttle_ticket ticket;
	enum mp_auth_throttle_verdict v;
	uint8_t ip[16];

	ip4(ip, s->ip);
	if (s->act == RECORD_FAIL || s->act == RECORD_OK) {
		mp_auth_throttle_record(t, ip, s->account, s->act == RECORD_OK,
					s->t);
		v = mp_auth_throttle_check(t, ip, s->account, s->t);
	} else {
		v = mp_auth_throttle_begin(t, ip, s->account, s->t, &ticket);
		if (v == MP_AUTH_THROTTLE_PASS)
			mp_auth_throttle_end(t, ip, s->account, &ticket,
					     outcome[s->act], s->t);
	}
	if (v != s->want)
		g_error("%s: step %zu: verdict %d, expected %d", name, i, v,
			s->want);
}

static void
test_throttle_table(void)
{
	for (size_t c = 0; c < MP_NELEMS(throttle_cases); c++) {
		const struct throttle_case *tc = &throttle_cases[c];
		struct mp_auth_throttle *t =
			mp_auth_throttle_new(&tc->limits, seed);

		for (size_t i = 0;
		     i < MP_NELEMS(tc->steps) && tc->steps[i].account != NULL;
		     i++)
			throttle_step(t, &tc->steps[i], i, tc->name);
		mp_auth_throttle_free(&t);
		g_assert_null(t);
	}
}

static void
test_throttle_bounded(void)
{
	struct mp_auth_throttle_limits l = LIM(1, 1000000, 3600000, 3600000);
	struct mp_auth_throttle *t;
	struct mp_auth_throttle_ticket ticket;
	uint8_t ip[16];

	l.max_entries = 1000;
	t = mp_auth_throttle_new(&l, seed);
	/* 100000 addresses guessing at 100000 accounts, then successes. */
	for (int i = 0; i < 100000; i++) {
		char account[32];

		memset(ip, 0, 16);
		memcpy(ip, &i, sizeof(i));
		snprintf(account, sizeof(account), "user%d", i);
		g_assert_cmpint(mp_auth_throttle_begin(t, ip, account,
						       (uint64_t)i, &ticket),
				==, P);
		mp_auth_throttle_end(t, ip, account, &ticket,
				     i % 2 ? MP_AUTH_THROTTLE_OK
					   : MP_AUTH_THROTTLE_FAILED,
				     (uint64_t)i);
		g_assert_cmpuint(mp_auth_throttle_entries(t), <=, 3 * 1000);
	}
	/* The most recent ones are still counted, the oldest are gone. */
	memset(ip, 0, 16);
	{
		int last = 99998, first = 0;

		memcpy(ip, &last, sizeof(last));
		g_assert_cmpint(mp_auth_throttle_check(t, ip, "x", 100000), ==,
				TIP);
		memset(ip, 0, 16);
		memcpy(ip, &first, sizeof(first));
		g_assert_cmpint(mp_auth_throttle_check(t, ip, "x", 100000), ==,
				P);
	}
	mp_auth_throttle_free(&t);
}

static void
test_throttle_long_names(void)
{
	struct mp_auth_throttle_limits l = LIM(100, 1, 60000, 0);
	struct mp_auth_throttle *t = mp_auth_throttle_new(&l, seed);
	struct mp_auth_throttle_ticket ticket;
	char long_name[2000];
	uint8_t ip[16];

	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	ip4(ip, 1);
	g_assert_cmpint(mp_auth_throttle_begin(t, ip, long_name, 0, &ticket),
			==, P);
	mp_auth_throttle_end(t, ip, long_name, &ticket, MP_AUTH_THROTTLE_FAILED,
			     0);
	g_assert_cmpint(mp_auth_throttle_check(t, ip, long_name, 0), ==, TACC);
	mp_auth_throttle_free(&t);
}

/* ---- aliases: parsing ------------------------------------------------ */

struct parse_case {
	const char *text;
	const char *error; /* NULL: parses */
	size_t count;
};

static const struct parse_case parse_cases[] = {
	{"", NULL, 0},
	{"# only a comment\n\n   \n", NULL, 0},
	{"a@example.org: b@example.org\n", NULL, 1},
	{"A@Example.ORG : b@example.org , c@elsewhere.net,\r\n", NULL, 1},
	{"a@example.org: b@example.org\n  c@example.org, d@example.org\n"
	 "# comment\n@example.org: a@example.org",
	 NULL, 2},
	{"a@example.org b@example.org\n", "t:1: expected 'address: target", 0},
	{"\n\nnot an address: b@example.org\n", "t:3: invalid address", 0},
	{"@bad..domain: b@example.org\n", "t:1: invalid domain", 0},
	{"a@example.org: b@example.org\n\na@EXAMPLE.org: c@example.org\n",
	 "t:3: a@example.org is given twice (first on line 1)", 0},
	{"a@example.org:\n", "t:1: a@example.org: no targets", 0},
	{"a@example.org: , ,\n", "t:1: a@example.org: no targets", 0},
	{"a@example.org: |/usr/bin/prog\n",
	 "t:1: '|/usr/bin/prog': only "
	 "addresses",
	 0},
	{"a@example.org: /var/mail/a\n", "only addresses", 0},
	{"a@example.org: :include:/etc/list\n", "only addresses", 0},
	{"a@example.org: b@example.org, not valid\n",
	 "t:1: invalid target address 'not valid'", 0},
	{"  b@example.org\n", "t:1: continuation line without an entry", 0},
	{"a@example.org: b@example.org\nx\0y: z@example.org\n", "t:2: NUL byte",
	 0},
};

static void
test_aliases_parse(void)
{
	for (size_t i = 0; i < MP_NELEMS(parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		/* The NUL case holds a NUL: its length is up to "\n" after
		 * it. */
		size_t len = strlen(c->text);
		char *error = NULL;
		struct mp_aliases *a;

		if (c->error != NULL && strstr(c->error, "NUL") != NULL)
			len += 1 + strlen(c->text + len + 1);
		a = mp_aliases_parse("t", c->text, len, &error);
		if (c->error == NULL) {
			if (a == NULL)
				g_error("case %zu: %s", i, error);
			g_assert_cmpuint(mp_aliases_count(a), ==, c->count);
		} else {
			g_assert_null(a);
			if (error == NULL || strstr(error, c->error) == NULL)
				g_error("case %zu: got \"%s\", want "
					"\"...%s...\"",
					i, error, c->error);
		}
		mp_aliases_free(&a);
		free(error);
	}
}

static void
test_aliases_too_many_targets(void)
{
	GString *text = g_string_new("big@example.org: ");
	char *error = NULL;
	struct mp_aliases *a;

	for (int i = 0; i <= MP_ALIAS_TARGETS_MAX; i++)
		g_string_append_printf(text, "u%d@example.org, ", i);
	a = mp_aliases_parse("t", text->str, text->len, &error);
	g_assert_null(a);
	g_assert_cmpstr(error, ==,
			"t:1: big@example.org: more than 1000 "
			"targets");
	free(error);
	g_string_free(text, TRUE);
}

/* ---- aliases: resolution --------------------------------------------- */

static const char *const accounts[] = {
	"alice@example.org",     "bob@example.org",
	"carol@example.org",     "both@example.org",
	"catchall@example.org",  "dave@example.net",
	"plus+name@example.org", NULL,
};

static bool
is_account(void *ctx, const char *address)
{
	for (size_t i = 0; accounts[i] != NULL; i++) {
		if (strcmp(accounts[i], address) == 0)
			return true;
	}
	return false;
}

static const char alias_text[] =
	"postmaster@example.org: alice@example.org, bob@example.org\n"
	"team@example.org: alice@example.org, Carol@EXAMPLE.org, "
	"team2@example.org\n"
	"team2@example.org: bob@example.org, alice@example.org\n"
	"fwd@example.org: Someone@Elsewhere.NET\n"
	"both@example.org: both@example.org, alice@example.org\n"
	"bob@example.org: carol@example.org\n"
	"loop1@example.org: loop2@example.org\n"
	"loop2@example.org: loop3@example.org\n"
	"loop3@example.org: loop1@example.org\n"
	"self@example.org: self@example.org\n"
	"d1@example.org: d2@example.org\nd2@example.org: d3@example.org\n"
	"d3@example.org: d4@example.org\nd4@example.org: d5@example.org\n"
	"d5@example.org: d6@example.org\nd6@example.org: d7@example.org\n"
	"d7@example.org: d8@example.org\nd8@example.org: d9@example.org\n"
	"d9@example.org: alice@example.org\n"
	"e3@example.org: d7@example.org\n"
	"half@example.org: nobody@example.com, alice@example.org\n"
	"none@example.org: nobody@example.com\n"
	"list+x@example.org: carol@example.org\n"
	"list@example.org: alice@example.org\n"
	"@example.org: catchall@example.org\n"
	"@example.net: ext@elsewhere.net\n"
	"outside@elsewhere.net: alice@example.org\n";

struct resolve_case {
	const char *address;
	enum mp_recipient_status want;
	const char *local;    /* comma-separated, in order */
	const char *external; /* comma-separated, in order */
	const char *detail;   /* NULL: none */
	const char *error;    /* prefix of r.error */
};

#define OK      MP_RECIPIENT_OK
#define UNKNOWN MP_RECIPIENT_UNKNOWN
#define ERR     MP_RECIPIENT_ERROR

static const struct resolve_case resolve_cases[] = {
	/* accounts, any case */
	{"alice@example.org", OK, "alice@example.org", "", NULL, NULL},
	{"ALICE@Example.Org", OK, "alice@example.org", "", NULL, NULL},
	/* an alias */
	{"postmaster@example.org", OK, "alice@example.org,carol@example.org",
	 "", NULL, NULL},
	/* an alias wins over the account of the same name */
	{"bob@example.org", OK, "carol@example.org", "", NULL, NULL},
	/* an alias may list its own account */
	{"both@example.org", OK, "both@example.org,alice@example.org", "", NULL,
	 NULL},
	/* recursive, with duplicates once */
	{"team@example.org", OK, "alice@example.org,carol@example.org", "",
	 NULL, NULL},
	/* external targets as written, but for the domain's case */
	{"fwd@example.org", OK, "", "Someone@elsewhere.net", NULL, NULL},
	/* not a local domain: external, as given, aliases not consulted */
	{"Outside@Elsewhere.NET", OK, "", "Outside@Elsewhere.NET", NULL, NULL},
	/* the catch-all: neither account nor alias */
	{"random@example.org", OK, "catchall@example.org", "", NULL, NULL},
	{"dave@example.net", OK, "dave@example.net", "", NULL, NULL},
	{"nobody@example.net", OK, "", "ext@elsewhere.net", NULL, NULL},
	/* subaddresses */
	{"alice+folder@example.org", OK, "alice@example.org", "", "folder",
	 NULL},
	{"Alice+Folder@example.org", OK, "alice@example.org", "", "folder",
	 NULL},
	{"alice+@example.org", OK, "alice@example.org", "", "", NULL},
	{"alice+a+b@example.org", OK, "alice@example.org", "", "a+b", NULL},
	{"list+x@example.org", OK, "carol@example.org", "", NULL, NULL},
	{"list+y@example.org", OK, "alice@example.org", "", "y", NULL},
	{"plus+name@example.org", OK, "plus+name@example.org", "", NULL, NULL},
	{"+alice@example.org", OK, "catchall@example.org", "", NULL, NULL},
	/* a subaddress of nothing goes to the catch-all, detail and all */
	{"ghost+x@example.org", OK, "catchall@example.org", "", NULL, NULL},
	/* loops, depth */
	{"loop1@example.org", ERR, "", "", NULL,
	 "alias loop: loop1@example.org -> loop2@example.org -> "
	 "loop3@example.org -> loop1@example.org"},
	{"self@example.org", UNKNOWN, "", "", NULL, NULL},
	{"d2@example.org", OK, "alice@example.org", "", NULL, NULL},
	{"d1@example.org", ERR, "", "", NULL,
	 "aliases nested deeper than 8 at d9@example.org"},
	/* a target that resolves to nothing is skipped */
	{"half@example.org", OK, "alice@example.org", "", NULL, NULL},
	{"none@example.org", UNKNOWN, "", "", NULL, NULL},
	/* not addresses */
	{"alice", UNKNOWN, "", "", NULL, NULL},
	{"@example.org", UNKNOWN, "", "", NULL, NULL},
	{"alice@", UNKNOWN, "", "", NULL, NULL},
};

static char *
joined(const struct mp_strlist *l)
{
	GString *s = g_string_new("");

	for (size_t i = 0; i < l->n; i++)
		g_string_append_printf(s, "%s%s", i > 0 ? "," : "", l->v[i]);
	return g_string_free(s, FALSE);
}

static void
check_resolve(const struct mp_resolve_params *p, const struct resolve_case *c)
{
	struct mp_recipient r = {0};
	enum mp_recipient_status st = mp_aliases_resolve(p, c->address, &r);
	char *local = joined(&r.local), *external = joined(&r.external);

	if (st != c->want || strcmp(local, c->local) != 0 ||
	    strcmp(external, c->external) != 0 ||
	    g_strcmp0(r.detail, c->detail) != 0 ||
	    (c->error != NULL &&
	     (r.error == NULL || strcmp(r.error, c->error) != 0)))
		g_error("%s: status %d local \"%s\" external \"%s\" detail "
			"\"%s\" error \"%s\"",
			c->address, st, local, external, r.detail, r.error);
	g_free(local);
	g_free(external);
	mp_recipient_clear(&r);
	g_assert_null(r.detail);
	g_assert_cmpuint(r.local.n, ==, 0);
}

static void
test_aliases_resolve(struct fx *fx, gconstpointer data)
{
	char *error = NULL;
	struct mp_aliases *a =
		mp_aliases_parse("t", alias_text, strlen(alias_text), &error);
	struct mp_strlist domains = {0};
	struct mp_resolve_params p = {.aliases = a,
				      .domains = &domains,
				      .delimiter = "+",
				      .is_account = is_account};

	if (a == NULL)
		g_error("%s", error);
	mp_strlist_add(&domains, "example.org");
	mp_strlist_add(&domains, "example.net");
	mp_strlist_add(&domains, "example.com"); /* without a catch-all */
	for (size_t i = 0; i < MP_NELEMS(resolve_cases); i++)
		check_resolve(&p, &resolve_cases[i]);
	assert_log_has(fx, "event=alias_target_unknown alias=half@example.org "
			   "target=nobody@example.com");
	mp_strlist_free(&domains);
	mp_aliases_free(&a);
}

static void
test_aliases_delimiters(void)
{
	static const struct resolve_case off[] = {
		{"alice+x@example.org", UNKNOWN, "", "", NULL, NULL},
		{"alice@example.org", OK, "alice@example.org", "", NULL, NULL},
	};
	static const struct resolve_case two[] = {
		{"alice+x@example.org", OK, "alice@example.org", "", "x", NULL},
		{"alice-x@example.org", OK, "alice@example.org", "", "x", NULL},
		{"alice-x+y@example.org", OK, "alice@example.org", "", "x+y",
		 NULL},
	};
	struct mp_strlist domains = {0};
	struct mp_resolve_params p = {
		.domains = &domains, .delimiter = "", .is_account = is_account};

	mp_strlist_add(&domains, "example.org");
	for (size_t i = 0; i < MP_NELEMS(off); i++)
		check_resolve(&p, &off[i]);
	p.delimiter = "+-";
	for (size_t i = 0; i < MP_NELEMS(two); i++)
		check_resolve(&p, &two[i]);
	mp_strlist_free(&domains);
}

static void
test_aliases_total_bound(void)
{
	/* Two lists of 600 distinct externals: 1200 targets in all. */
	GString *text = g_string_new("big@example.org: l1@example.org, "
				     "l2@example.org\n");
	struct mp_strlist domains = {0};
	struct mp_resolve_params p = {.domains = &domains,
				      .delimiter = "+",
				      .is_account = is_account};
	struct mp_recipient r = {0};
	char *error = NULL;

	for (int l = 1; l <= 2; l++) {
		g_string_append_printf(text, "l%d@example.org: ", l);
		for (int i = 0; i < 600; i++)
			g_string_append_printf(text, "x%d.%d@ext.net,", l, i);
		g_string_append(text, "\n");
	}
	p.aliases = mp_aliases_parse("t", text->str, text->len, &error);
	g_assert_nonnull(p.aliases);
	mp_strlist_add(&domains, "example.org");
	g_assert_cmpint(mp_aliases_resolve(&p, "l1@example.org", &r), ==, OK);
	g_assert_cmpuint(r.external.n, ==, 600);
	g_assert_cmpint(mp_aliases_resolve(&p, "big@example.org", &r), ==, ERR);
	g_assert_cmpstr(r.error, ==, "more than 1000 targets");
	g_assert_cmpuint(r.external.n, ==, 0);
	mp_recipient_clear(&r);
	mp_aliases_free((struct mp_aliases **)&p.aliases);
	mp_strlist_free(&domains);
	g_string_free(text, TRUE);
}

/* ---- the auth service ------------------------------------------------ */

/* A config in the fixture's directory; extra is appended. */
static void
auth_config(struct fx *fx, const char *extra)
{
	char *source = g_strdup_printf("data_dir = \"%s\"\n"
				       "domains = { \"example.test\" }\n%s\n",
				       fx->dir, extra != NULL ? extra : "");
	char *error = NULL;

	mp_config_unref(&fx->cfg);
	fx->cfg = mp_config_load_string("test.conf", source, fx->dir, NULL,
					&error);
	if (fx->cfg == NULL)
		g_error("config: %s", error);
	g_free(source);
}

/* Writes the passwd file with the accounts and passwords given in pairs,
 * NULL-terminated. */
static void
passwd_write(struct fx *fx, ...)
{
	struct mp_passwd pw = {0};
	const char *user, *why = NULL;
	char *path = fx_path(fx, "passwd"), *error = NULL;
	va_list ap;

	va_start(ap, fx);
	while ((user = va_arg(ap, const char *)) != NULL) {
		char *hash = mp_password_hash(va_arg(ap, const char *),
					      "yescrypt", &why);
		g_assert_nonnull(hash);
		mp_passwd_set(&pw, user, hash);
		free(hash);
	}
	va_end(ap);
	if (!mp_passwd_write(path, &pw, &error))
		g_error("%s", error);
	mp_passwd_free(&pw);
	g_free(path);
}

static void
auth_start(struct fx *fx, const char *extra)
{
	char *error = NULL;

	auth_config(fx, extra);
	fx->auth = mp_auth_new(fx->loop, fx->pool, fx->cfg, &error);
	if (fx->auth == NULL)
		g_error("mp_auth_new: %s", error);
	mp_auth_set_check_interval(fx->auth, 0);
}

/* A Lua runtime with the config's scripts, handed to the service. */
static void
auth_lua(struct fx *fx)
{
	char *error = NULL;

	fx->lua = mp_lua_new(fx->loop, mp_config_lua(fx->cfg), hook_names,
			     &error);
	if (fx->lua == NULL)
		g_error("mp_lua_new: %s", error);
	mp_lua_set_pool(fx->lua, fx->pool);
	mp_auth_set_runtime(fx->auth, fx->cfg, fx->lua);
}

struct vres {
	bool done;
	int calls;
	enum mp_auth_result result;
	char user[300];
};

static void
vres_done(enum mp_auth_result result, const char *user, void *ctx)
{
	struct vres *v = ctx;

	v->calls++;
	v->done = true;
	v->result = result;
	snprintf(v->user, sizeof(v->user), "%s", user);
}

static struct mp_auth_request *
verify_start(struct fx *fx, const char *user, const char *password,
	     const char *ip, struct vres *v)
{
	struct mp_auth_info info = {.service = "test",
				    .ip = ip,
				    .session = "SESSION00001",
				    .mechanism = "PLAIN"};

	memset(v, 0, sizeof(*v));
	return mp_auth_verify_password(fx->auth, user, password, &info,
				       vres_done, v);
}

static enum mp_auth_result
verify_from(struct fx *fx, const char *user, const char *password,
	    const char *ip)
{
	struct vres v;
	struct mp_auth_request *req = verify_start(fx, user, password, ip, &v);

	g_assert_true(req != NULL || v.done);
	run_until(fx, &v.done);
	g_assert_cmpint(v.calls, ==, 1);
	return v.result;
}

static enum mp_auth_result
verify(struct fx *fx, const char *user, const char *password)
{
	return verify_from(fx, user, password, "192.0.2.1");
}

static void
test_auth_passwords(struct fx *fx, gconstpointer data)
{
	struct vres v;

	passwd_write(fx, "alice@example.test", "right pw", NULL);
	auth_start(fx, NULL);
	g_assert_cmpint(verify(fx, "alice@example.test", "right pw"), ==,
			MP_AUTH_OK);
	g_assert_cmpint(verify(fx, "alice@example.test", "wrong"), ==,
			MP_AUTH_FAILED);
	g_assert_cmpint(verify(fx, "nobody@example.test", "right pw"), ==,
			MP_AUTH_FAILED);
	g_assert_cmpint(verify(fx, "", "x"), ==, MP_AUTH_FAILED);
	g_assert_cmpint(verify(fx, "alice@example.test", ""), ==,
			MP_AUTH_FAILED);
	/* Any case logs in; the name given back is the account's. */
	g_assert_nonnull(verify_start(fx, "ALICE@Example.Test", "right pw",
				      "192.0.2.1", &v));
	run_until(fx, &v.done);
	g_assert_cmpint(v.result, ==, MP_AUTH_OK);
	g_assert_cmpstr(v.user, ==, "alice@example.test");
	assert_log_has(fx, "session=SESSION00001 event=auth result=ok "
			   "user=alice@example.test ip=192.0.2.1 "
			   "service=test mechanism=PLAIN reason=password");
	assert_log_has(fx, "event=auth result=failed user=alice@example.test "
			   "ip=192.0.2.1 service=test mechanism=PLAIN "
			   "reason=bad_password");
	assert_log_has(fx, "result=failed user=nobody@example.test "
			   "ip=192.0.2.1 service=test mechanism=PLAIN "
			   "reason=unknown_user");
	assert_log_lacks(fx, "right pw");
	assert_log_lacks(fx, "wrong");
}

static void
test_auth_passwd_changes(struct fx *fx, gconstpointer data)
{
	passwd_write(fx, "alice@example.test", "old", NULL);
	auth_start(fx, NULL);
	g_assert_cmpint(verify(fx, "alice@example.test", "old"), ==,
			MP_AUTH_OK);
	passwd_write(fx, "alice@example.test", "new", "bob@example.test",
		     "bobs", NULL);
	g_assert_cmpint(verify(fx, "alice@example.test", "new"), ==,
			MP_AUTH_OK);
	g_assert_cmpint(verify(fx, "alice@example.test", "old"), ==,
			MP_AUTH_FAILED);
	g_assert_cmpint(verify(fx, "bob@example.test", "bobs"), ==, MP_AUTH_OK);
	/* A broken file is logged and the table read before stays. */
	write_file(fx, "passwd", "bob@example.test:{YESCRYPT}$y$x\nbroken\n");
	g_assert_cmpint(verify(fx, "bob@example.test", "bobs"), ==, MP_AUTH_OK);
	assert_log_has(fx, "event=passwd_error error=");
	assert_log_has(fx, "/passwd:2: ");
	assert_log_has(fx, "kept=previous");
	/* Removed: nobody is left. */
	passwd_write(fx, NULL);
	g_assert_cmpint(verify(fx, "bob@example.test", "bobs"), ==,
			MP_AUTH_FAILED);
}

static unsigned
log_count(struct fx *fx, const char *needle)
{
	char *text = log_text(fx);
	unsigned n = 0;

	for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
		n++;
	g_free(text);
	return n;
}

/* A password found right a moment ago is not hashed again; a wrong one,
 * a changed password or a cache turned off always are. */
static void
test_auth_cache(struct fx *fx, gconstpointer data)
{
	struct vres v;

	passwd_write(fx, "alice@example.test", "right pw", NULL);
	auth_start(fx, NULL);
	g_assert_cmpint(verify(fx, "alice@example.test", "right pw"), ==,
			MP_AUTH_OK);
	g_assert_cmpuint(log_count(fx, "reason=password\n"), ==, 1);
	g_assert_cmpuint(log_count(fx, "reason=password_cached"), ==, 0);
	/* Remembered: answered before the call returns, no hash. */
	g_assert_null(verify_start(fx, "Alice@example.test", "right pw",
				   "192.0.2.7", &v));
	g_assert_true(v.done);
	g_assert_cmpint(v.result, ==, MP_AUTH_OK);
	g_assert_cmpstr(v.user, ==, "alice@example.test");
	g_assert_cmpuint(log_count(fx, "reason=password_cached"), ==, 1);
	/* Another password is checked in full, and fails. */
	g_assert_cmpint(verify(fx, "alice@example.test", "right pw "), ==,
			MP_AUTH_FAILED);
	/* The failure made the cache forget: the next one is hashed. */
	g_assert_cmpint(verify(fx, "alice@example.test", "right pw"), ==,
			MP_AUTH_OK);
	g_assert_cmpuint(log_count(fx, "reason=password_cached"), ==, 1);
	/* A changed password: the remembered one no longer matches. */
	passwd_write(fx, "alice@example.test", "new pw", NULL);
	g_assert_cmpint(verify(fx, "alice@example.test", "right pw"), ==,
			MP_AUTH_FAILED);
	g_assert_cmpint(verify(fx, "alice@example.test", "new pw"), ==,
			MP_AUTH_OK);
	g_assert_cmpint(verify(fx, "alice@example.test", "new pw"), ==,
			MP_AUTH_OK);
	g_assert_cmpuint(log_count(fx, "reason=password_cached"), ==, 2);
	assert_log_lacks(fx, "right pw");

	/* cache_ttl = 0: every login is hashed. */
	mp_auth_free(&fx->auth);
	auth_start(fx, "auth { cache_ttl = 0 }");
	g_assert_cmpint(verify(fx, "alice@example.test", "new pw"), ==,
			MP_AUTH_OK);
	g_assert_nonnull(verify_start(fx, "alice@example.test", "new pw",
				      "192.0.2.7", &v));
	run_until(fx, &v.done);
	g_assert_cmpint(v.result, ==, MP_AUTH_OK);
	g_assert_cmpuint(log_count(fx, "reason=password_cached"), ==, 2);
}

static void
test_auth_interval(struct fx *fx, gconstpointer data)
{
	passwd_write(fx, "alice@example.test", "old", NULL);
	auth_start(fx, NULL);
	mp_auth_set_check_interval(fx->auth, 3600 * 1000);
	g_assert_cmpint(verify(fx, "alice@example.test", "old"), ==,
			MP_AUTH_OK);
	/* Within the interval the file is not looked at. */
	passwd_write(fx, "alice@example.test", "new", NULL);
	g_assert_cmpint(verify(fx, "alice@example.test", "old"), ==,
			MP_AUTH_OK);
	mp_auth_set_check_interval(fx->auth, 0);
	g_assert_cmpint(verify(fx, "alice@example.test", "new"), ==,
			MP_AUTH_OK);
}

static void
test_auth_bad_files(struct fx *fx, gconstpointer data)
{
	char *error = NULL;

	write_file(fx, "passwd", "# accounts\nnot a line\n");
	auth_config(fx, NULL);
	g_assert_null(mp_auth_new(fx->loop, fx->pool, fx->cfg, &error));
	g_assert_nonnull(strstr(error, "/passwd:2: "));
	free(error);
	error = NULL;
	g_assert_false(mp_auth_check_files(fx->cfg, &error));
	g_assert_nonnull(strstr(error, "/passwd:2: "));
	free(error);
	error = NULL;

	write_file(fx, "passwd", "");
	write_file(fx, "aliases",
		   "a@example.test: b@example.test\n"
		   "a@example.test c@example.test\n");
	g_assert_false(mp_auth_check_files(fx->cfg, &error));
	g_assert_nonnull(strstr(error, "/aliases:2: expected"));
	free(error);
	error = NULL;
	g_assert_null(mp_auth_new(fx->loop, fx->pool, fx->cfg, &error));
	g_assert_nonnull(strstr(error, "/aliases:2: "));
	free(error);
	error = NULL;

	/* Files elsewhere, through the settings. */
	auth_config(fx, "aliases = \"other-aliases\"\npasswd = \"other\"\n");
	g_assert_true(mp_auth_check_files(fx->cfg, &error));
	g_assert_null(error);
}

static void
test_auth_throttled(struct fx *fx, gconstpointer data)
{
	passwd_write(fx, "alice@example.test", "pw", NULL);
	auth_start(fx, "auth { max_failures_per_ip = 3, "
		       "max_failures_per_account = 100 }");
	for (int i = 0; i < 3; i++)
		g_assert_cmpint(verify(fx, "alice@example.test", "bad"), ==,
				MP_AUTH_FAILED);
	g_assert_cmpint(verify(fx, "alice@example.test", "pw"), ==,
			MP_AUTH_THROTTLED);
	assert_log_has(fx, "event=auth result=throttled "
			   "user=alice@example.test ip=192.0.2.1 service=test "
			   "mechanism=PLAIN reason=ip_throttled");
	g_assert_cmpint(
		verify_from(fx, "alice@example.test", "pw", "192.0.2.2"), ==,
		MP_AUTH_OK);
	/* An IPv6 client is counted by its /64. */
	for (int i = 0; i < 3; i++)
		g_assert_cmpint(
			verify_from(fx, "x@example.test", "bad",
				    i % 2 ? "2001:db8::1" : "2001:db8::ff:2"),
			==, MP_AUTH_FAILED);
	g_assert_cmpint(
		verify_from(fx, "alice@example.test", "pw", "2001:db8::3"), ==,
		MP_AUTH_THROTTLED);
	g_assert_cmpint(
		verify_from(fx, "alice@example.test", "pw", "2001:db8:0:1::3"),
		==, MP_AUTH_OK);
}

static void
test_auth_throttle_account(struct fx *fx, gconstpointer data)
{
	passwd_write(fx, "alice@example.test", "pw", NULL);
	auth_start(fx, "auth { max_failures_per_ip = 100, "
		       "max_failures_per_account = 2 }");
	g_assert_cmpint(
		verify_from(fx, "alice@example.test", "pw", "198.51.100.7"), ==,
		MP_AUTH_OK);
	g_assert_cmpint(verify(fx, "Alice@example.test", "bad"), ==,
			MP_AUTH_FAILED);
	g_assert_cmpint(
		verify_from(fx, "alice@example.test", "bad", "192.0.2.9"), ==,
		MP_AUTH_FAILED);
	g_assert_cmpint(
		verify_from(fx, "alice@example.test", "pw", "192.0.2.10"), ==,
		MP_AUTH_THROTTLED);
	assert_log_has(fx, "reason=account_throttled");
	/* From where alice logged in before, she still can. */
	g_assert_cmpint(
		verify_from(fx, "alice@example.test", "pw", "198.51.100.7"), ==,
		MP_AUTH_OK);
}

static const char hook_script[] =
	"moonpost.hook('auth', function(a)\n"
	"  local u = a.user\n"
	"  if u == 'accept@example.test' then return moonpost.accept() end\n"
	"  if u == 'reject@example.test' then\n"
	"    return moonpost.reject('no') end\n"
	"  if u == 'defer@example.test' then\n"
	"    return moonpost.defer('later') end\n"
	"  if u == 'error@example.test' then error('boom') end\n"
	"  if u == 'bye@example.test' then return moonpost.disconnect() end\n"
	"  if u == 'sleep@example.test' then\n"
	"    moonpost.sleep(0.001) return moonpost.accept() end\n"
	"  if u == 'hang@example.test' then moonpost.sleep(3600) end\n"
	"  if u == 'args@example.test' then\n"
	"    if a.password == 'p w' and a.service == 'test' and\n"
	"       a.ip == '192.0.2.1' and a.mechanism == 'PLAIN' and\n"
	"       a.session == 'SESSION00001' then\n"
	"      return moonpost.accept() end\n"
	"    return moonpost.reject('bad arguments')\n"
	"  end\n"
	"end)\n";

static void
hook_setup(struct fx *fx, const char *extra)
{
	char *script = fx_path(fx, "auth.lua");
	char *cfg;

	write_file(fx, "auth.lua", hook_script);
	passwd_write(fx, "alice@example.test", "pw", "reject@example.test",
		     "pw", NULL);
	cfg = g_strdup_printf("lua { scripts = { \"%s\" } }\n%s", script,
			      extra != NULL ? extra : "");
	auth_start(fx, cfg);
	auth_lua(fx);
	g_free(cfg);
	g_free(script);
}

static void
test_auth_hook(struct fx *fx, gconstpointer data)
{
	hook_setup(fx, NULL);
	g_assert_cmpint(verify(fx, "accept@example.test", "x"), ==, MP_AUTH_OK);
	g_assert_cmpint(verify(fx, "Sleep@example.test", "x"), ==, MP_AUTH_OK);
	/* The hook decides, whatever the passwd file says. */
	g_assert_cmpint(verify(fx, "reject@example.test", "pw"), ==,
			MP_AUTH_FAILED);
	g_assert_cmpint(verify(fx, "bye@example.test", "pw"), ==,
			MP_AUTH_FAILED);
	g_assert_cmpint(verify(fx, "defer@example.test", "x"), ==,
			MP_AUTH_TEMPFAIL);
	g_assert_cmpint(verify(fx, "error@example.test", "x"), ==,
			MP_AUTH_TEMPFAIL);
	assert_log_has(fx, "auth.lua:8: boom");
	g_assert_cmpint(verify(fx, "args@example.test", "p w"), ==, MP_AUTH_OK);
	/* Continue falls through to the passwd file. */
	g_assert_cmpint(verify(fx, "alice@example.test", "pw"), ==, MP_AUTH_OK);
	g_assert_cmpint(verify(fx, "alice@example.test", "bad"), ==,
			MP_AUTH_FAILED);
	assert_log_has(fx, "user=accept@example.test ip=192.0.2.1 "
			   "service=test mechanism=PLAIN reason=hook_accept");
	assert_log_has(fx, "reason=hook_reject");
	assert_log_has(fx, "result=tempfail user=defer@example.test");
	assert_log_has(fx, "reason=hook_error");
	assert_log_lacks(fx, "p w");
}

static void
test_auth_hook_timeout(struct fx *fx, gconstpointer data)
{
	hook_setup(fx, "");
	mp_lua_unref(&fx->lua);
	fx->lua_cfg.timeout = 50;
	mp_strlist_add(&fx->lua_cfg.scripts,
		       mp_config_lua(fx->cfg)->scripts.v[0]);
	fx->lua = mp_lua_new(fx->loop, &fx->lua_cfg, hook_names, NULL);
	g_assert_nonnull(fx->lua);
	mp_auth_set_runtime(fx->auth, fx->cfg, fx->lua);
	g_assert_cmpint(verify(fx, "hang@example.test", "x"), ==,
			MP_AUTH_TEMPFAIL);
	assert_log_has(fx, "timed out");
}

static void
test_auth_cancel_hook(struct fx *fx, gconstpointer data)
{
	struct vres v;
	struct mp_auth_request *req;

	hook_setup(fx, NULL);
	req = verify_start(fx, "hang@example.test", "x", "192.0.2.1", &v);
	g_assert_nonnull(req);
	g_assert_cmpuint(mp_lua_calls_pending(fx->lua), ==, 1);
	mp_auth_cancel(&req);
	g_assert_null(req);
	g_assert_cmpuint(mp_lua_calls_pending(fx->lua), ==, 0);
	g_assert_false(v.done);
	assert_log_has(fx, "result=failed user=hang@example.test "
			   "ip=192.0.2.1 service=test mechanism=PLAIN "
			   "reason=abandoned");
	/* Freed while a call waits: the call is cancelled, nothing leaks. */
	req = verify_start(fx, "hang@example.test", "x", "192.0.2.1", &v);
	g_assert_nonnull(req);
	mp_auth_free(&fx->auth);
	g_assert_false(v.done);
	g_assert_cmpuint(mp_lua_calls_pending(fx->lua), ==, 0);
}

static void
test_auth_cancel_hash(struct fx *fx, gconstpointer data)
{
	struct vres v, v2;
	struct mp_auth_request *req;

	passwd_write(fx, "alice@example.test", "pw", NULL);
	auth_start(fx, "auth { max_failures_per_ip = 1 }");
	req = verify_start(fx, "alice@example.test", "pw", "192.0.2.1", &v);
	g_assert_nonnull(req);
	g_assert_cmpuint(mp_pool_pending(fx->pool), ==, 1);
	mp_auth_cancel(&req);
	run_pool_empty(fx);
	g_assert_false(v.done);
	/* The check ran to its end: logged, and its charge refunded. */
	assert_log_has(fx, "result=ok user=alice@example.test");
	g_assert_cmpint(verify(fx, "alice@example.test", "pw"), ==, MP_AUTH_OK);
	/* A wrong password abandoned still counts. */
	req = verify_start(fx, "alice@example.test", "bad", "192.0.2.1", &v);
	mp_auth_cancel(&req);
	run_pool_empty(fx);
	g_assert_cmpint(verify(fx, "alice@example.test", "pw"), ==,
			MP_AUTH_THROTTLED);
	/* The service may go while the pool still has a check, cancelled
	 * or not: no callback comes after mp_auth_free(). */
	req = verify_start(fx, "alice@example.test", "pw", "192.0.2.5", &v);
	g_assert_nonnull(req);
	mp_auth_cancel(&req);
	req = verify_start(fx, "alice@example.test", "pw", "192.0.2.6", &v2);
	g_assert_nonnull(req);
	mp_auth_free(&fx->auth);
	run_pool_empty(fx);
	g_assert_false(v.done);
	g_assert_false(v2.done);
	assert_log_has(fx, "result=ok user=alice@example.test ip=192.0.2.6");
}

/* Parallel guesses: each counts from the moment it starts. */
static void
test_auth_parallel(struct fx *fx, gconstpointer data)
{
	struct vres v[4];
	struct mp_auth_request *req[4];

	passwd_write(fx, "alice@example.test", "pw", NULL);
	auth_start(fx, "auth { max_failures_per_ip = 3 }");
	for (int i = 0; i < 4; i++)
		req[i] = verify_start(fx, "alice@example.test", "bad",
				      "192.0.2.1", &v[i]);
	g_assert_nonnull(req[2]);
	g_assert_null(req[3]);
	g_assert_true(v[3].done);
	g_assert_cmpint(v[3].result, ==, MP_AUTH_THROTTLED);
	for (int i = 0; i < 3; i++) {
		run_until(fx, &v[i].done);
		g_assert_cmpint(v[i].result, ==, MP_AUTH_FAILED);
	}
}

struct cres {
	int calls;
	enum mp_auth_result result;
	char *credential;
};

static void
cres_done(enum mp_auth_result result, const char *user, const char *credential,
	  void *ctx)
{
	struct cres *c = ctx;

	c->calls++;
	c->result = result;
	g_free(c->credential);
	c->credential = g_strdup(credential);
}

static void
test_auth_credential(struct fx *fx, gconstpointer data)
{
	struct mp_auth_info info = {.service = "imap",
				    .ip = "192.0.2.1",
				    .mechanism = "SCRAM-SHA-256"};
	struct cres c = {0};
	const char *why;
	char *hash = mp_password_hash("pw", NULL, &why);
	char *scram = mp_scram_secret_new("pw", 0, &why);
	char *line = g_strdup_printf("alice@example.test:%s %s\n"
				     "bob@example.test:%s\n",
				     hash, scram, hash);

	write_file(fx, "passwd", line);
	auth_start(fx, "auth { max_failures_per_ip = 2 }");
	g_assert_null(mp_auth_lookup_credential(fx->auth, "Alice@example.test",
						"scram-sha-256", &info,
						cres_done, &c));
	g_assert_cmpint(c.calls, ==, 1);
	g_assert_cmpint(c.result, ==, MP_AUTH_OK);
	g_assert_cmpstr(c.credential, ==, scram);
	mp_auth_lookup_credential(fx->auth, "bob@example.test", "SCRAM-SHA-256",
				  &info, cres_done, &c);
	g_assert_cmpint(c.result, ==, MP_AUTH_FAILED);
	g_assert_null(c.credential);
	mp_auth_lookup_credential(fx->auth, "nobody@example.test",
				  "SCRAM-SHA-256", &info, cres_done, &c);
	g_assert_cmpint(c.result, ==, MP_AUTH_FAILED);
	/* Plain logins use the hash of the same line. */
	g_assert_cmpint(verify(fx, "alice@example.test", "pw"), ==, MP_AUTH_OK);
	/* Reported outcomes feed the throttle and the log. */
	mp_auth_report(fx->auth, "alice@example.test", &info, false);
	mp_auth_report(fx->auth, "alice@example.test", &info, false);
	assert_log_has(fx, "event=auth result=failed user=alice@example.test "
			   "ip=192.0.2.1 service=imap "
			   "mechanism=SCRAM-SHA-256 reason=bad_proof");
	mp_auth_lookup_credential(fx->auth, "alice@example.test",
				  "SCRAM-SHA-256", &info, cres_done, &c);
	g_assert_cmpint(c.result, ==, MP_AUTH_THROTTLED);
	g_assert_cmpint(c.calls, ==, 4);
	g_free(c.credential);
	g_free(line);
	free(hash);
	free(scram);
}

static void
test_auth_recipients(struct fx *fx, gconstpointer data)
{
	struct mp_recipient r = {0};

	passwd_write(fx, "alice@example.test", "pw", NULL);
	auth_start(fx, NULL);
	g_assert_cmpint(
		mp_recipient_resolve(fx->auth, "alice+x@example.test", &r), ==,
		MP_RECIPIENT_OK);
	g_assert_cmpstr(r.local.v[0], ==, "alice@example.test");
	g_assert_cmpstr(r.detail, ==, "x");
	g_assert_cmpint(mp_recipient_resolve(fx->auth, "post@example.test", &r),
			==, MP_RECIPIENT_UNKNOWN);
	/* The alias file appears, changes, breaks and goes. */
	write_file(fx, "aliases", "post@example.test: alice@example.test\n");
	g_assert_cmpint(mp_recipient_resolve(fx->auth, "post@example.test", &r),
			==, MP_RECIPIENT_OK);
	g_assert_cmpstr(r.local.v[0], ==, "alice@example.test");
	write_file(fx, "aliases", "post@example.test: x@elsewhere.net\n");
	g_assert_cmpint(mp_recipient_resolve(fx->auth, "post@example.test", &r),
			==, MP_RECIPIENT_OK);
	g_assert_cmpstr(r.external.v[0], ==, "x@elsewhere.net");
	write_file(fx, "aliases",
		   "post@example.test: x@elsewhere.net\n\n"
		   "bad line\n");
	g_assert_cmpint(mp_recipient_resolve(fx->auth, "post@example.test", &r),
			==, MP_RECIPIENT_OK);
	g_assert_cmpstr(r.external.v[0], ==, "x@elsewhere.net");
	assert_log_has(fx, "event=aliases_error error=");
	assert_log_has(fx, "/aliases:3: expected");
	{
		char *path = fx_path(fx, "aliases");

		g_assert_cmpint(unlink(path), ==, 0);
		g_free(path);
	}
	g_assert_cmpint(mp_recipient_resolve(fx->auth, "post@example.test", &r),
			==, MP_RECIPIENT_UNKNOWN);
	/* Other domains are external as they are. */
	g_assert_cmpint(mp_recipient_resolve(fx->auth, "Bob@Other.Example", &r),
			==, MP_RECIPIENT_OK);
	g_assert_cmpstr(r.external.v[0], ==, "Bob@Other.Example");
	mp_recipient_clear(&r);
}

/* ---- Lua: moonpost.sqlite and moonpost.password_verify ----------------- */

/* Makes t.sqlite in the fixture's directory. */
static void
db_create(struct fx *fx, const char *name)
{
	char *path = fx_path(fx, name);
	sqlite3 *db;
	char *err = NULL;

	g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
	if (sqlite3_exec(db,
			 "CREATE TABLE t (name TEXT, n INTEGER, f REAL, "
			 "b BLOB, z TEXT);"
			 "INSERT INTO t VALUES ('a', 1, 0.5, x'00ff', NULL);"
			 "INSERT INTO t VALUES ('b', 2, 1.5, NULL, 'zz');"
			 "INSERT INTO t VALUES ('c', 3, 2.5, NULL, NULL);",
			 NULL, NULL, &err) != SQLITE_OK)
		g_error("%s", err);
	sqlite3_close(db);
	g_free(path);
}

/* A runtime with one script: prologue at the top level, then body as the
 * handler of the "test" hook. */
static char *
script_load(struct fx *fx, const char *prologue, const char *body,
	    bool with_pool)
{
	char *src = g_strdup_printf("%s\nmoonpost.hook('test', function(...)\n"
				    "%s\nend)\n",
				    prologue, body);
	char *error = NULL;

	mp_lua_unref(&fx->lua);
	mp_strlist_free(&fx->lua_cfg.scripts);
	write_file(fx, "case.lua", src);
	g_free(src);
	src = fx_path(fx, "case.lua");
	mp_strlist_add(&fx->lua_cfg.scripts, src);
	g_free(src);
	fx->lua = mp_lua_new(fx->loop, &fx->lua_cfg, hook_names, &error);
	if (fx->lua != NULL && with_pool)
		mp_lua_set_pool(fx->lua, fx->pool);
	return error;
}

struct call {
	bool done;
	struct mp_verdict v;
};

static void
call_done(const struct mp_verdict *v, void *ctx)
{
	struct call *c = ctx;

	c->v = *v;
	c->done = true;
}

static struct mp_lua_call *
call_start(struct fx *fx, struct call *c)
{
	memset(c, 0, sizeof(*c));
	return mp_lua_call_hook(fx->lua, "test", "SESSION00002", NULL,
				call_done, c);
}

/* Runs the handler; returns the verdict's text ("tempfail" ones too). */
static const char *
call_run(struct fx *fx, struct call *c)
{
	call_start(fx, c);
	run_until(fx, &c->done);
	return c->v.text;
}

static void
script_ok(struct fx *fx, const char *prologue, const char *body, bool with_pool)
{
	char *error = script_load(fx, prologue, body, with_pool);

	if (error != NULL)
		g_error("load: %s", error);
}

/* Table-driven: each body returns moonpost.reject(text) with the result
 * as text, or fails; want is the text, or "!" and a log substring. */
struct sql_case {
	const char *body;
	const char *want;
};

static const struct sql_case sql_cases[] = {
	{"local r = db:query('SELECT name, n FROM t WHERE n > ? ORDER BY n', "
	 "1)\n"
	 "return moonpost.reject(#r .. ' ' .. r[1].name .. r[1].n .. ' ' .. "
	 "r[2].name .. r[2].n)",
	 "2 b2 c3"},
	{"local r = db:query('SELECT * FROM t WHERE name = ?', 'a')[1]\n"
	 "return moonpost.reject(math.type(r.n) .. ' ' .. r.f .. ' ' .. #r.b "
	 ".. ' ' .. tostring(r.z))",
	 "integer 0.5 2 nil"},
	{"local r = db:query('SELECT ? AS a, ? AS b, ? AS c, ? AS d', "
	 "nil, true, 2.25, \"x'y\")[1]\n"
	 "return moonpost.reject(tostring(r.a) .. ' ' .. r.b .. ' ' .. r.c "
	 ".. ' ' .. r.d)",
	 "nil 1 2.25 x'y"},
	{"local r = db:query(\"SELECT name FROM t WHERE name = ?\", "
	 "\"a' OR '1'='1\")\n"
	 "return moonpost.reject('rows ' .. #r)",
	 "rows 0"},
	{"local r = db:query('SELECT 1 AS one;  \\n')\n"
	 "return moonpost.reject('one ' .. r[1].one)",
	 "one 1"},
	{"local r = db:query([[WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
	 "SELECT x + 1 FROM c WHERE x < 10000) SELECT x FROM c]])\n"
	 "return moonpost.reject('rows ' .. #r .. ' last ' .. r[#r].x)",
	 "rows 10000 last 10000"},
	{"db:query([[WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
	 "SELECT x + 1 FROM c WHERE x < 10001) SELECT x FROM c]])",
	 "!case.lua:3: sqlite: the query returned more than 10000 rows"},
	{"db:query('SELECT zeroblob(9000000) AS z')",
	 "!case.lua:3: sqlite: the query result is larger than the memory"},
	{"db:exec('DELETE FROM t')",
	 "!case.lua:3: sqlite: attempt to write a readonly database"},
	{"db:query('SELEC 1')", "!case.lua:3: sqlite: near \\\"SELEC\\\""},
	{"db:query('SELECT ?', 1, 2)",
	 "!case.lua:3: sqlite: the statement takes 1 parameters, 2 given"},
	{"db:query('SELECT 1; SELECT 2')",
	 "!case.lua:3: sqlite: one statement per call"},
	{"db:query('SELECT ?', {})",
	 "!case.lua:3: bad argument #2 to 'query' (nil, boolean, number or "
	 "string expected, got table)"},
	{"db:query('SELECT * FROM missing')",
	 "!case.lua:3: sqlite: no such table: missing"},
	{"db:query('ATTACH DATABASE \\'/tmp/x.db\\' AS x')",
	 "!case.lua:3: sqlite: too many attached databases"},
	{"local ok, err = pcall(db.query, db, 'SELEC')\n"
	 "return moonpost.reject('caught ' .. tostring(not ok))",
	 "caught true"},
	{"moonpost.sqlite.open = nil",
	 "!cannot set 'open': the table is read-only"},
	{"return moonpost.reject((tostring(db):gsub('[()]', '')))",
	 "sqlite database read-only"},
};

static void
run_sql_cases(struct fx *fx, bool with_pool)
{
	db_create(fx, "t.sqlite");
	for (size_t i = 0; i < MP_NELEMS(sql_cases); i++) {
		const struct sql_case *c = &sql_cases[i];
		struct call call;
		const char *text;

		script_ok(fx, "local db = moonpost.sqlite.open('t.sqlite')",
			  c->body, with_pool);
		log_clear(fx);
		text = call_run(fx, &call);
		if (c->want[0] != '!') {
			if (call.v.kind != MP_VERDICT_REJECT ||
			    strcmp(text, c->want) != 0) {
				char *log = log_text(fx);
				g_error("case %zu: %s \"%s\"\n%s", i,
					mp_verdict_name(call.v.kind), text,
					log);
			}
			continue;
		}
		g_assert_cmpint(call.v.kind, ==, MP_VERDICT_TEMPFAIL);
		assert_log_has(fx, c->want + 1);
	}
}

static void
test_sqlite_cases_pool(struct fx *fx, gconstpointer data)
{
	run_sql_cases(fx, true);
}

static void
test_sqlite_cases_inline(struct fx *fx, gconstpointer data)
{
	run_sql_cases(fx, false);
}

static void
test_sqlite_exec(struct fx *fx, gconstpointer data)
{
	struct call c;

	db_create(fx, "t.sqlite");
	script_ok(fx,
		  "local db = moonpost.sqlite.open('t.sqlite', "
		  "{readwrite = true})\n"
		  "local made = moonpost.sqlite.open('new.sqlite', "
		  "{readwrite = true})\n"
		  "made:exec('CREATE TABLE k (v TEXT)')",
		  "local n = db:exec('UPDATE t SET n = n + ? WHERE n >= ?', "
		  "10, 2)\n"
		  "local m = made:exec('INSERT INTO k VALUES (?)', 'v')\n"
		  "local r = db:query('SELECT sum(n) AS s FROM t')\n"
		  "return moonpost.reject(n .. ' ' .. m .. ' ' .. r[1].s)",
		  true);
	g_assert_cmpstr(call_run(fx, &c), ==, "2 1 26");
	g_assert_cmpstr(call_run(fx, &c), ==, "2 1 46");
}

static void
test_sqlite_load_time(struct fx *fx, gconstpointer data)
{
	struct call c;
	char *error;

	db_create(fx, "t.sqlite");
	/* At the top level a query runs at once, even with a pool. */
	script_ok(fx,
		  "local db = moonpost.sqlite.open('t.sqlite')\n"
		  "local n = #db:query('SELECT * FROM t')\n"
		  "local ok = moonpost.password_verify('pw', "
		  "'{SHA512-CRYPT}$6$rounds=1000$salt$x')",
		  "return moonpost.reject(n .. ' ' .. tostring(ok))", true);
	g_assert_cmpstr(call_run(fx, &c), ==, "3 false");
	/* Errors at load time name the line and refuse the script. */
	error = script_load(fx,
			    "local db = moonpost.sqlite.open('t.sqlite')\n"
			    "db:query('SELECT nocolumn FROM t')",
			    "", true);
	g_assert_null(fx->lua);
	if (strstr(error, "case.lua:2: sqlite: no such column") == NULL)
		g_error("%s", error);
	free(error);
	error = script_load(fx, "moonpost.sqlite.open('missing.sqlite')", "",
			    true);
	g_assert_nonnull(strstr(error, "case.lua:1: sqlite.open: "));
	g_assert_nonnull(strstr(error, "missing.sqlite: unable to open"));
	free(error);
	error = script_load(fx, "moonpost.sqlite.open('t.sqlite', {rw = true})",
			    "", true);
	g_assert_nonnull(strstr(error, "unknown option"));
	free(error);
}

static void
test_sqlite_paths(struct fx *fx, gconstpointer data)
{
	struct call c;
	char *abs = fx_path(fx, "t.sqlite");
	char *prologue =
		g_strdup_printf("local a = moonpost.sqlite.open('%s')\n"
				"local b = moonpost.sqlite.open('./t.sqlite')",
				abs);

	db_create(fx, "t.sqlite");
	script_ok(fx, prologue,
		  "return moonpost.reject(#a:query('SELECT 1') .. "
		  "#b:query('SELECT 1'))",
		  true);
	g_assert_cmpstr(call_run(fx, &c), ==, "11");
	g_free(prologue);
	g_free(abs);
}

static void
test_sqlite_close(struct fx *fx, gconstpointer data)
{
	static const struct sql_case cases[] = {
		{"db:close() db:close() db:query('SELECT 1')",
		 "!case.lua:3: sqlite: the database is closed"},
		{"do local d <close> = moonpost.sqlite.open('t.sqlite')\n"
		 "  kept = d end\n"
		 "kept:query('SELECT 1')",
		 "!case.lua:5: sqlite: the database is closed"},
		{"local d = moonpost.sqlite.open('t.sqlite') d = nil\n"
		 "collectgarbage('count')\n"
		 "return moonpost.reject(tostring(db))",
		 "sqlite database (read-only)"},
	};
	struct call c;

	db_create(fx, "t.sqlite");
	for (size_t i = 0; i < MP_NELEMS(cases); i++) {
		script_ok(fx, "local db = moonpost.sqlite.open('t.sqlite')",
			  cases[i].body, true);
		log_clear(fx);
		call_run(fx, &c);
		if (cases[i].want[0] == '!') {
			g_assert_cmpint(c.v.kind, ==, MP_VERDICT_TEMPFAIL);
			assert_log_has(fx, cases[i].want + 1);
		} else {
			g_assert_cmpstr(c.v.text, ==, cases[i].want);
		}
	}
}

static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(*(int *)w->data)++;
}

/* Holds an exclusive lock on t.sqlite from another connection: a query
 * then waits on a worker, and the loop must keep running meanwhile. */
static sqlite3 *
db_lock(struct fx *fx)
{
	char *path = fx_path(fx, "t.sqlite");
	sqlite3 *db;

	g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
			==, SQLITE_OK);
	g_free(path);
	return db;
}

static void
test_sqlite_async(struct fx *fx, gconstpointer data)
{
	struct call c;
	ev_timer tick;
	int ticks = 0;
	sqlite3 *locker;

	db_create(fx, "t.sqlite");
	script_ok(fx, "local db = moonpost.sqlite.open('t.sqlite')",
		  "local r = db:query('SELECT count(*) AS n FROM t')\n"
		  "return moonpost.reject('n=' .. r[1].n)",
		  true);
	locker = db_lock(fx);
	g_assert_nonnull(call_start(fx, &c));
	g_assert_cmpuint(mp_pool_pending(fx->pool), ==, 1);
	ev_timer_init(&tick, tick_cb, 0.001, 0.001);
	tick.data = &ticks;
	ev_timer_start(fx->loop, &tick);
	while (ticks < 20)
		ev_run(fx->loop, EVRUN_ONCE);
	/* Twenty turns of the loop while the query waited on its lock. */
	g_assert_false(c.done);
	g_assert_cmpuint(mp_lua_calls_pending(fx->lua), ==, 1);
	ev_timer_stop(fx->loop, &tick);
	sqlite3_exec(locker, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(locker);
	run_until(fx, &c.done);
	g_assert_cmpstr(c.v.text, ==, "n=3");
}

static void
test_sqlite_abandoned(struct fx *fx, gconstpointer data)
{
	struct call c;
	struct mp_lua_call *call;
	sqlite3 *locker;

	db_create(fx, "t.sqlite");
	fx->lua_cfg.timeout = 100;
	script_ok(fx, "local db = moonpost.sqlite.open('t.sqlite')",
		  "db:query('SELECT count(*) FROM t')", true);
	/* Times out while the worker waits. */
	locker = db_lock(fx);
	call_run(fx, &c);
	g_assert_cmpint(c.v.kind, ==, MP_VERDICT_TEMPFAIL);
	assert_log_has(fx, "case.lua:3: timed out after 100 ms (waiting on "
			   "db:query)");
	/* Cancelled by its caller; then the runtime goes while the worker
	 * still holds the database. */
	call = call_start(fx, &c);
	g_assert_nonnull(call);
	mp_lua_call_cancel(&call);
	mp_lua_unref(&fx->lua);
	sqlite3_exec(locker, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(locker);
	run_pool_empty(fx);
	g_assert_false(c.done);
}

static void
test_password_verify(struct fx *fx, gconstpointer data)
{
	const char *why;
	char *hash = mp_password_hash("s3cret", "bcrypt", &why);
	char *prologue = g_strdup_printf("local h = '%s'", hash);
	struct call c;

	script_ok(fx, prologue,
		  "local a = moonpost.password_verify('s3cret', h)\n"
		  "local b = moonpost.password_verify('other', h)\n"
		  "local c = moonpost.password_verify('s3cret\\0', h)\n"
		  "local d = moonpost.password_verify('s3cret', "
		  "'{PLAIN}s3cret')\n"
		  "return moonpost.reject(tostring(a) .. tostring(b) .. "
		  "tostring(c) .. tostring(d))",
		  true);
	g_assert_cmpstr(call_run(fx, &c), ==, "truefalsefalsefalse");
	script_ok(fx, prologue,
		  "return moonpost.reject(tostring("
		  "moonpost.password_verify('s3cret', h)))",
		  false);
	g_assert_cmpstr(call_run(fx, &c), ==, "true");
	script_ok(fx, prologue, "moonpost.password_verify('x')", true);
	call_run(fx, &c);
	g_assert_cmpint(c.v.kind, ==, MP_VERDICT_TEMPFAIL);
	assert_log_has(fx, "case.lua:3: bad argument #2 to 'password_verify'");
	g_free(prologue);
	free(hash);
}

/* The hook of the service, backed by SQLite, waiting on the pool twice. */
static void
test_auth_hook_sqlite(struct fx *fx, gconstpointer data)
{
	const char *why;
	char *hash = mp_password_hash("dbpw", NULL, &why);
	char *path = fx_path(fx, "users.sqlite");
	char *sql = g_strdup_printf("CREATE TABLE users (address TEXT PRIMARY "
				    "KEY, password TEXT, enabled INTEGER);"
				    "INSERT INTO users VALUES "
				    "('db@example.test', '%s', 1);",
				    hash);
	char *script = fx_path(fx, "db.lua");
	char *cfg = g_strdup_printf("lua { scripts = { \"%s\" } }", script);
	sqlite3 *db;

	g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_exec(db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
	sqlite3_close(db);
	write_file(
		fx, "db.lua",
		"local db = moonpost.sqlite.open('users.sqlite')\n"
		"moonpost.hook('auth', function(a)\n"
		"  local r = db:query('SELECT password FROM users WHERE "
		"address = ? AND enabled = 1', a.user)[1]\n"
		"  if not r then return end\n"
		"  if moonpost.password_verify(a.password, r.password) then\n"
		"    return moonpost.accept() end\n"
		"  return moonpost.reject('bad')\n"
		"end)\n");
	passwd_write(fx, "alice@example.test", "pw", NULL);
	auth_start(fx, cfg);
	auth_lua(fx);
	g_assert_cmpint(verify(fx, "db@example.test", "dbpw"), ==, MP_AUTH_OK);
	g_assert_cmpint(verify(fx, "db@example.test", "pw"), ==,
			MP_AUTH_FAILED);
	g_assert_cmpint(verify(fx, "alice@example.test", "pw"), ==, MP_AUTH_OK);
	g_free(cfg);
	g_free(script);
	g_free(sql);
	g_free(path);
	free(hash);
}

/* ---- main ------------------------------------------------------------ */

#define ADD(path, fn)                                                          \
	g_test_add(path, struct fx, NULL, fx_setup, fn, fx_teardown)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/auth/throttle/table", test_throttle_table);
	g_test_add_func("/auth/throttle/bounded", test_throttle_bounded);
	g_test_add_func("/auth/throttle/long-names", test_throttle_long_names);
	g_test_add_func("/auth/aliases/parse", test_aliases_parse);
	g_test_add_func("/auth/aliases/too-many-targets",
			test_aliases_too_many_targets);
	ADD("/auth/aliases/resolve", test_aliases_resolve);
	g_test_add_func("/auth/aliases/delimiters", test_aliases_delimiters);
	g_test_add_func("/auth/aliases/total-bound", test_aliases_total_bound);
	ADD("/auth/service/passwords", test_auth_passwords);
	ADD("/auth/service/passwd-changes", test_auth_passwd_changes);
	ADD("/auth/service/check-interval", test_auth_interval);
	ADD("/auth/service/cache", test_auth_cache);
	ADD("/auth/service/bad-files", test_auth_bad_files);
	ADD("/auth/service/throttled", test_auth_throttled);
	ADD("/auth/service/throttle-account", test_auth_throttle_account);
	ADD("/auth/service/parallel", test_auth_parallel);
	ADD("/auth/service/hook", test_auth_hook);
	ADD("/auth/service/hook-timeout", test_auth_hook_timeout);
	ADD("/auth/service/cancel-hook", test_auth_cancel_hook);
	ADD("/auth/service/cancel-hash", test_auth_cancel_hash);
	ADD("/auth/service/credential", test_auth_credential);
	ADD("/auth/service/recipients", test_auth_recipients);
	ADD("/auth/service/hook-sqlite", test_auth_hook_sqlite);
	ADD("/auth/lua/sqlite/cases-pool", test_sqlite_cases_pool);
	ADD("/auth/lua/sqlite/cases-inline", test_sqlite_cases_inline);
	ADD("/auth/lua/sqlite/exec", test_sqlite_exec);
	ADD("/auth/lua/sqlite/load-time", test_sqlite_load_time);
	ADD("/auth/lua/sqlite/paths", test_sqlite_paths);
	ADD("/auth/lua/sqlite/close", test_sqlite_close);
	ADD("/auth/lua/sqlite/async", test_sqlite_async);
	ADD("/auth/lua/sqlite/abandoned", test_sqlite_abandoned);
	ADD("/auth/lua/password-verify", test_password_verify);
	return g_test_run();
}
