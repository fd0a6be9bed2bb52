/* lua-sqlite.c - `moonpost.sqlite`: SQLite databases for scripts.
 *
 *   local db = moonpost.sqlite.open(path [, {readwrite = true}])
 *   db:query(sql, ...)   -> { {col = value, ...}, ... }
 *   db:exec(sql, ...)    -> number of rows changed
 *   db:close()           (also __close and __gc)
 *
 * Parameters bind to `?` positionally; values never become SQL text. In a
 * handler a statement runs on the thread pool while the handler waits; at
 * a script's top level it runs at once. One statement per call.
 *
 * A handle is a userdata that points to a reference-counted struct, not to
 * the sqlite3 connection itself: a statement still running on a worker
 * when its call is abandoned or the runtime closes keeps the connection
 * open until it ends. A mutex per database keeps two workers from using
 * one connection at once. The handle records the runtime generation that
 * opened it and refuses to work for any other. */
#include "config.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "lua-private.h"

#define DB_MT "moonpost.sqlite.db"

/* Rows one query may return: a script that wants more is scanning a
 * table it should have asked a narrower question of. */
#define SQL_ROWS_MAX 10000
/* Result bytes when the runtime sets no per-call memory cap; otherwise
 * the cap, as the rows become Lua tables counted against it. */
#define SQL_BYTES_MAX (64 * 1024 * 1024)
/* VM steps between two checks of the deadline and of a cancel. */
#define SQL_PROGRESS_STEPS 1000
/* Waiting for another process's lock when the call has no deadline (a
 * script's top level without lua.timeout). */
#define SQL_BUSY_MS 5000

struct sqlite_db {
	int refs; /* loop thread only: handles and jobs */
	pthread_mutex_t lock;
	sqlite3 *conn;
};

struct db_handle {
	struct sqlite_db *db; /* NULL once closed */
	uint64_t generation;
	bool readonly;
};

struct sql_value {
	int type; /* SQLITE_INTEGER, _FLOAT, _TEXT, _BLOB or _NULL */
	union {
		int64_t i;
		double f;
		struct {
			char *p;
			size_t len;
		} s;
	} u;
};

struct sql_job {
	struct mp_lua_job job;
	struct sqlite_db *db;
	char *sql;
	size_t sql_len;
	struct sql_value *params;
	int n_params;
	bool want_rows;
	uint64_t max_bytes;
	uint64_t deadline;   /* mp_now_ms() value; UINT64_MAX: none */
	uint64_t busy_until; /* when to stop waiting for a lock */

	char **names;
	int n_cols;
	struct sql_value *cells; /* n_rows * n_cols */
	size_t n_rows;
	size_t bytes;
	int64_t changes;
	char *error;
};

/* ---- the shared database ----------------------------------------------- */

static struct sqlite_db *
db_ref(struct sqlite_db *db)
{
	db->refs++;
	return db;
}

static void
db_unref(struct sqlite_db **dbp)
{
	struct sqlite_db *db = *dbp;

	*dbp = NULL;
	if (db == NULL || --db->refs > 0)
		return;
	sqlite3_close_v2(db->conn);
	pthread_mutex_destroy(&db->lock);
	free(db);
}

/* Settings that keep a script inside the file it opened. */
static void
db_harden(sqlite3 *conn)
{
	sqlite3_extended_result_codes(conn, 1);
	/* ATTACH would open (and with readwrite, create) any other file. */
	sqlite3_limit(conn, SQLITE_LIMIT_ATTACHED, 0);
	sqlite3_db_config(conn, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(conn, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_db_config(conn, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
}

/* ---- values ------------------------------------------------------------ */

static void
value_clear(struct sql_value *v)
{
	if (v->type == SQLITE_TEXT || v->type == SQLITE_BLOB)
		free(v->u.s.p);
	v->type = SQLITE_NULL;
}

/* [-0, +0, e] Raises unless argument arg can be bound. */
static void
param_check(lua_State *L, int arg)
{
	int t = lua_type(L, arg);

	if (t != LUA_TNIL && t != LUA_TBOOLEAN && t != LUA_TNUMBER &&
	    t != LUA_TSTRING)
		luaL_typeerror(L, arg, "nil, boolean, number or string");
}

/* [-0, +0, -] Copies argument arg (checked) into v. */
static void
param_take(lua_State *L, int arg, struct sql_value *v)
{
	const char *s;

	switch (lua_type(L, arg)) {
	case LUA_TBOOLEAN:
		v->type = SQLITE_INTEGER;
		v->u.i = lua_toboolean(L, arg);
		break;
	case LUA_TNUMBER:
		if (lua_isinteger(L, arg)) {
			v->type = SQLITE_INTEGER;
			v->u.i = lua_tointeger(L, arg);
		} else {
			v->type = SQLITE_FLOAT;
			v->u.f = lua_tonumber(L, arg);
		}
		break;
	case LUA_TSTRING:
		s = lua_tolstring(L, arg, &v->u.s.len);
		v->type = SQLITE_TEXT;
		v->u.s.p = mp_xstrndup(s, v->u.s.len);
		break;
	default:
		v->type = SQLITE_NULL;
	}
}

static int
param_bind(sqlite3_stmt *st, int i, const struct sql_value *v)
{
	switch (v->type) {
	case SQLITE_INTEGER:
		return sqlite3_bind_int64(st, i, v->u.i);
	case SQLITE_FLOAT:
		return sqlite3_bind_double(st, i, v->u.f);
	case SQLITE_TEXT:
		return sqlite3_bind_text64(st, i, v->u.s.p, v->u.s.len,
					   SQLITE_STATIC, SQLITE_UTF8);
	default:
		return sqlite3_bind_null(st, i);
	}
}

/* ---- the worker's part ------------------------------------------------- */

static void
job_fail(struct sql_job *j, const char *msg)
{
	if (j->error == NULL)
		j->error = mp_xstrdup(msg);
}

static int
progress(void *arg)
{
	struct sql_job *j = arg;

	return mp_lua_job_stopped(&j->job) || mp_now_ms() >= j->deadline;
}

/* Another connection holds a lock: wait for it while the call does, so
 * that an abandoned query gives its worker back at once. */
static int
busy(void *arg, int count)
{
	struct sql_job *j = arg;

	if (mp_lua_job_stopped(&j->job) || mp_now_ms() >= j->busy_until)
		return 0;
	usleep(count < 10 ? 1000 : 10000);
	return 1;
}

/* True when s holds nothing but white space and semicolons. */
static bool
only_blank(const char *s, const char *end)
{
	for (; s < end; s++) {
		if (!strchr(" \t\r\n;", *s))
			return false;
	}
	return true;
}

static bool
bind_all(struct sql_job *j, sqlite3_stmt *st)
{
	int want = sqlite3_bind_parameter_count(st);

	if (want != j->n_params) {
		char msg[96];

		snprintf(msg, sizeof(msg),
			 "the statement takes %d parameters, %d given", want,
			 j->n_params);
		job_fail(j, msg);
		return false;
	}
	for (int i = 0; i < j->n_params; i++) {
		if (param_bind(st, i + 1, &j->params[i]) != SQLITE_OK) {
			job_fail(j, sqlite3_errmsg(j->db->conn));
			return false;
		}
	}
	return true;
}

static void
take_names(struct sql_job *j, sqlite3_stmt *st)
{
	j->n_cols = sqlite3_column_count(st);
	j->names = mp_xcalloc((size_t)j->n_cols + 1, sizeof(*j->names));
	for (int c = 0; c < j->n_cols; c++) {
		const char *name = sqlite3_column_name(st, c);
		j->names[c] = mp_xstrdup(name != NULL ? name : "?");
	}
}

static void
take_cell(sqlite3_stmt *st, int c, struct sql_value *v)
{
	const void *p;

	v->type = sqlite3_column_type(st, c);
	switch (v->type) {
	case SQLITE_INTEGER:
		v->u.i = sqlite3_column_int64(st, c);
		break;
	case SQLITE_FLOAT:
		v->u.f = sqlite3_column_double(st, c);
		break;
	case SQLITE_TEXT:
	case SQLITE_BLOB:
		p = v->type == SQLITE_TEXT
			    ? (const void *)sqlite3_column_text(st, c)
			    : sqlite3_column_blob(st, c);
		v->u.s.len = (size_t)sqlite3_column_bytes(st, c);
		v->u.s.p = mp_xstrndup(p != NULL ? p : "", v->u.s.len);
		break;
	default:
		v->type = SQLITE_NULL;
	}
}

/* Copies the current row; false (and an error) past the bounds. */
static bool
take_row(struct sql_job *j, sqlite3_stmt *st)
{
	size_t n = (size_t)j->n_cols;
	struct sql_value *row;

	if (j->n_rows == SQL_ROWS_MAX) {
		job_fail(j, "the query returned more than 10000 rows");
		return false;
	}
	j->cells = mp_xrealloc(j->cells, (j->n_rows + 1) * n * sizeof(*row));
	row = &j->cells[j->n_rows++ * n];
	for (size_t c = 0; c < n; c++) {
		take_cell(st, (int)c, &row[c]);
		j->bytes += sizeof(row[c]) +
			    (row[c].type == SQLITE_TEXT ||
					     row[c].type == SQLITE_BLOB
				     ? row[c].u.s.len
				     : 0);
	}
	if (j->bytes > j->max_bytes) {
		job_fail(j, "the query result is larger than the memory a "
			    "call may hold");
		return false;
	}
	return true;
}

static void
step_all(struct sql_job *j, sqlite3_stmt *st)
{
	int rc;

	if (j->want_rows)
		take_names(j, st);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (j->want_rows && !take_row(j, st))
			return;
	}
	if (rc == SQLITE_INTERRUPT)
		job_fail(j, "interrupted (the call timed out or was "
			    "abandoned)");
	else if (rc != SQLITE_DONE)
		job_fail(j, sqlite3_errmsg(j->db->conn));
	else
		j->changes = sqlite3_changes64(j->db->conn);
}

static void
run_statement(struct sql_job *j)
{
	sqlite3 *conn = j->db->conn;
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;

	if (sqlite3_prepare_v2(conn, j->sql, (int)j->sql_len, &st, &tail) !=
	    SQLITE_OK) {
		job_fail(j, sqlite3_errmsg(conn));
		return;
	}
	if (st == NULL)
		job_fail(j, "no SQL statement given");
	else if (!only_blank(tail, j->sql + j->sql_len))
		job_fail(j, "one statement per call (the SQL goes on after "
			    "the first ';')");
	else if (bind_all(j, st))
		step_all(j, st);
	sqlite3_finalize(st);
}

static void
sql_work(struct mp_lua_job *job)
{
	struct sql_job *j = (struct sql_job *)job;
	sqlite3 *conn = j->db->conn;

	pthread_mutex_lock(&j->db->lock);
	sqlite3_progress_handler(conn, SQL_PROGRESS_STEPS, progress, j);
	sqlite3_busy_handler(conn, busy, j);
	run_statement(j);
	sqlite3_busy_handler(conn, NULL, NULL);
	sqlite3_progress_handler(conn, 0, NULL, NULL);
	pthread_mutex_unlock(&j->db->lock);
}

/* ---- back in Lua ------------------------------------------------------- */

/* [-0, +1, m] */
static void
push_value(lua_State *L, const struct sql_value *v)
{
	switch (v->type) {
	case SQLITE_INTEGER:
		lua_pushinteger(L, v->u.i);
		break;
	case SQLITE_FLOAT:
		lua_pushnumber(L, v->u.f);
		break;
	case SQLITE_TEXT:
	case SQLITE_BLOB:
		lua_pushlstring(L, v->u.s.p, v->u.s.len);
		break;
	default:
		lua_pushnil(L);
	}
}

/* [-0, +1, e] The rows as an array of tables; NULL columns are absent. */
static void
push_rows(lua_State *L, const struct sql_job *j)
{
	size_t n = (size_t)j->n_cols;

	luaL_checkstack(L, 4, "sqlite rows");
	lua_createtable(L, (int)j->n_rows, 0);
	for (size_t r = 0; r < j->n_rows; r++) {
		lua_createtable(L, 0, j->n_cols);
		for (size_t c = 0; c < n; c++) {
			const struct sql_value *v = &j->cells[r * n + c];

			if (v->type == SQLITE_NULL)
				continue;
			push_value(L, v);
			lua_setfield(L, -2, j->names[c]);
		}
		lua_rawseti(L, -2, (lua_Integer)r + 1);
	}
}

static int
sql_finish(lua_State *L, struct mp_lua_job *job)
{
	struct sql_job *j = (struct sql_job *)job;

	if (j->error != NULL)
		return luaL_error(L, "sqlite: %s", j->error);
	if (j->want_rows)
		push_rows(L, j);
	else
		lua_pushinteger(L, j->changes);
	return 1;
}

static void
sql_release(struct mp_lua_job *job)
{
	struct sql_job *j = (struct sql_job *)job;

	for (int i = 0; i < j->n_params; i++)
		value_clear(&j->params[i]);
	free(j->params);
	for (size_t i = 0; i < j->n_rows * (size_t)j->n_cols; i++)
		value_clear(&j->cells[i]);
	free(j->cells);
	for (int c = 0; c < j->n_cols; c++)
		free(j->names[c]);
	free(j->names);
	free(j->sql);
	free(j->error);
	db_unref(&j->db);
	free(j);
}

/* ---- the handle -------------------------------------------------------- */

/* [-0, +0, e] The handle at argument 1, open and of this runtime. */
static struct db_handle *
handle_check(lua_State *L)
{
	struct db_handle *h = luaL_checkudata(L, 1, DB_MT);

	if (h->generation != mp_lua_from_state(L)->generation)
		luaL_error(L, "sqlite: the database was opened by scripts "
			      "that have been reloaded since");
	if (h->db == NULL)
		luaL_error(L, "sqlite: the database is closed");
	return h;
}

/* db:query(sql, ...) and db:exec(sql, ...) [-(2+n), +1, e]; may wait */
static int
db_statement(lua_State *L, bool want_rows)
{
	struct db_handle *h = handle_check(L);
	struct mp_lua *lua = mp_lua_from_state(L);
	struct mp_lua_call *call = mp_lua_call_current(L);
	size_t len;
	const char *sql = luaL_checklstring(L, 2, &len);
	int n = lua_gettop(L) - 2;
	struct sql_job *j;

	for (int i = 0; i < n; i++)
		param_check(L, i + 3);
	j = mp_lua_job_new(L, sizeof(*j));
	j->job.what = want_rows ? "db:query" : "db:exec";
	j->job.work = sql_work;
	j->job.finish = sql_finish;
	j->job.release = sql_release;
	j->db = db_ref(h->db);
	j->sql = mp_xstrndup(sql, len);
	j->sql_len = len;
	j->want_rows = want_rows;
	j->max_bytes = lua->memory > 0 ? lua->memory : SQL_BYTES_MAX;
	j->deadline = call != NULL ? call->deadline : UINT64_MAX;
	j->busy_until = j->deadline != UINT64_MAX ? j->deadline
						  : mp_now_ms() + SQL_BUSY_MS;
	j->params = mp_xcalloc((size_t)n + 1, sizeof(*j->params));
	j->n_params = n;
	for (int i = 0; i < n; i++)
		param_take(L, i + 3, &j->params[i]);
	return mp_lua_job_run(L, &j->job);
}

static int
db_query(lua_State *L)
{
	return db_statement(L, true);
}

static int
db_exec(lua_State *L)
{
	return db_statement(L, false);
}

/* db:close(), __close and __gc [-1|2, +0, -]: closing twice is fine. */
static int
db_close(lua_State *L)
{
	struct db_handle *h = luaL_checkudata(L, 1, DB_MT);

	db_unref(&h->db);
	return 0;
}

/* tostring(db) [-1, +1, m] */
static int
db_tostring(lua_State *L)
{
	struct db_handle *h = luaL_checkudata(L, 1, DB_MT);

	lua_pushfstring(L, "sqlite database (%s)",
			h->db == NULL ? "closed"
			: h->readonly ? "read-only"
				      : "read-write");
	return 1;
}

/* ---- open -------------------------------------------------------------- */

/* [-0, +1, e] path, made absolute against the directory of the script
 * that calls. */
static const char *
open_path(lua_State *L, const char *path)
{
	lua_Debug ar;
	const char *src, *slash;
	luaL_Buffer b;

	if (path[0] == '/')
		return lua_pushstring(L, path);
	if (!lua_getstack(L, 1, &ar) || !lua_getinfo(L, "S", &ar) ||
	    ar.source[0] != '@')
		luaL_error(L,
			   "sqlite.open: '%s' is relative and no script "
			   "calls: give an absolute path",
			   path);
	src = ar.source + 1;
	slash = strrchr(src, '/');
	luaL_buffinit(L, &b);
	if (slash != NULL) {
		luaL_addlstring(&b, src, (size_t)(slash - src) + 1);
	}
	luaL_addstring(&b, path);
	luaL_pushresult(&b);
	return lua_tostring(L, -1);
}

/* The options table at arg: {readwrite = bool}; true for read-write. */
static bool
open_readwrite(lua_State *L, int arg)
{
	bool rw;

	if (lua_isnoneornil(L, arg))
		return false;
	luaL_checktype(L, arg, LUA_TTABLE);
	lua_pushnil(L);
	while (lua_next(L, arg)) {
		if (lua_type(L, -2) != LUA_TSTRING ||
		    strcmp(lua_tostring(L, -2), "readwrite") != 0)
			luaL_argerror(L, arg,
				      "unknown option (only readwrite)");
		lua_pop(L, 1);
	}
	lua_getfield(L, arg, "readwrite");
	luaL_argexpected(L, lua_isnil(L, -1) || lua_isboolean(L, -1), arg,
			 "readwrite = true or false");
	rw = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return rw;
}

/* moonpost.sqlite.open(path [, opts]) [-1|2, +1, e] */
static int
sqlite_open(lua_State *L)
{
	struct mp_lua *lua = mp_lua_from_state(L);
	const char *given = luaL_checkstring(L, 1);
	bool rw = open_readwrite(L, 2);
	const char *path = open_path(L, given);
	int flags = SQLITE_OPEN_NOMUTEX |
		    (rw ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
			: SQLITE_OPEN_READONLY);
	struct db_handle *h = lua_newuserdatauv(L, sizeof(*h), 0);
	sqlite3 *conn = NULL;

	memset(h, 0, sizeof(*h));
	luaL_setmetatable(L, DB_MT);
	if (sqlite3_open_v2(path, &conn, flags, NULL) != SQLITE_OK) {
		lua_pushstring(L, conn != NULL ? sqlite3_errmsg(conn)
					       : "out of memory");
		sqlite3_close_v2(conn);
		return luaL_error(L, "sqlite.open: %s: %s", path,
				  lua_tostring(L, -1));
	}
	db_harden(conn);
	h->db = mp_xcalloc(1, sizeof(*h->db));
	h->db->refs = 1;
	h->db->conn = conn;
	pthread_mutex_init(&h->db->lock, NULL);
	h->generation = lua->generation;
	h->readonly = !rw;
	return 1;
}

static const luaL_Reg db_methods[] = {
	{"query", db_query},
	{"exec", db_exec},
	{"close", db_close},
	{NULL, NULL},
};

static const luaL_Reg db_meta[] = {
	{"__gc", db_close},
	{"__close", db_close},
	{"__tostring", db_tostring},
	{NULL, NULL},
};

static const luaL_Reg sqlite_funcs[] = {
	{"open", sqlite_open},
	{NULL, NULL},
};

void
mp_lua_open_sqlite(lua_State *L)
{
	luaL_newmetatable(L, DB_MT);
	luaL_setfuncs(L, db_meta, 0);
	luaL_newlib(L, db_methods);
	lua_setfield(L, -2, "__index");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
	luaL_newlib(L, sqlite_funcs);
}
