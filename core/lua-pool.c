/* lua-pool.c - blocking work for scripts: a job runs on the thread pool
 * while its handler's coroutine waits, and moonpost.password_verify.
 *
 * A job is shared by three parties that may finish in any order: the
 * handler (through a holder userdata on its stack), the pool (from submit
 * to done) and the call's wait (cancelled on a timeout or when the caller
 * gives up). The job keeps a count of the first two; the last one to let
 * go frees it. Everything but work runs on the loop thread, so the count
 * needs no lock. */
#include "config.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include <moonpost/pool.h>

#include "lua-private.h"
#include "password.h"

/* Metatable of a job's holder. */
#define JOB_HOLDER_MT "moonpost.job"

struct holder {
	struct mp_lua_job *job; /* NULL once let go */
};

void
mp_lua_set_pool(struct mp_lua *lua, struct mp_pool *pool)
{
	lua->pool = pool;
}

static void
job_unref(struct mp_lua_job *job)
{
	assert(job->refs > 0);
	if (--job->refs > 0)
		return;
	if (job->release != NULL)
		job->release(job);
	else
		free(job);
}

static void
job_stop(struct mp_lua_job *job)
{
	__atomic_store_n(&job->stop, 1, __ATOMIC_RELAXED);
}

bool
mp_lua_job_stopped(const struct mp_lua_job *job)
{
	return __atomic_load_n(&job->stop, __ATOMIC_RELAXED) != 0;
}

/* The holder lets go of its job. */
static void
holder_drop(struct holder *h)
{
	struct mp_lua_job *job = h->job;

	h->job = NULL;
	if (job == NULL)
		return;
	job_stop(job);
	job_unref(job);
}

/* __gc of a holder [-1, +0, -]: the handler is gone or done with it. */
static int
holder_gc(lua_State *L)
{
	holder_drop(lua_touserdata(L, 1));
	return 0;
}

void *
mp_lua_job_new(lua_State *L, size_t size)
{
	struct holder *h = lua_newuserdatauv(L, sizeof(*h), 0);
	struct mp_lua_job *job;

	assert(size >= sizeof(*job));
	h->job = NULL;
	if (luaL_newmetatable(L, JOB_HOLDER_MT)) {
		lua_pushcfunction(L, holder_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushboolean(L, 0);
		lua_setfield(L, -2, "__metatable");
	}
	lua_setmetatable(L, -2);
	job = mp_xcalloc(1, size);
	job->refs = 1;
	job->holder = lua_gettop(L);
	h->job = job;
	return job;
}

/* [-0, +n, e] Hands the results to the handler and frees the job. */
static int
job_finish(lua_State *L, struct mp_lua_job *job)
{
	struct holder *h = lua_touserdata(L, job->holder);
	int n;

	assert(h != NULL && h->job == job);
	n = job->finish(L, job);
	/* An error above leaves the job to the holder's __gc. */
	holder_drop(h);
	return n;
}

/* Continuation after the wait [-0, +n, e]. */
static int
job_resume(lua_State *L, int status, lua_KContext ctx)
{
	struct holder *h = lua_touserdata(L, (int)ctx);

	return job_finish(L, h->job);
}

static void
job_work(void *arg)
{
	struct mp_lua_job *job = arg;

	job->work(job);
}

static void
job_done(void *arg)
{
	struct mp_lua_job *job = arg;
	struct mp_lua_call *call = job->call;
	bool cancelled = job->cancelled;

	/* While the wait stands the holder is on the handler's stack, so
	 * this is never the last reference then. */
	job_unref(job);
	if (!cancelled)
		mp_lua_call_wake(call, NULL, NULL);
}

/* The call gave up waiting; the worker may still be busy with the job. */
static void
job_cancel(void *data)
{
	struct mp_lua_job *job = data;

	job->cancelled = true;
	job_stop(job);
}

int
mp_lua_job_run(lua_State *L, struct mp_lua_job *job)
{
	struct mp_lua *lua = mp_lua_from_state(L);
	struct mp_lua_call *call = mp_lua_call_current(L);
	struct mp_lua_wait wait = {
		.what = job->what, .cancel = job_cancel, .data = job};

	if (lua->pool == NULL || call == NULL || call->loading) {
		job->work(job);
		return job_finish(L, job);
	}
	call = mp_lua_call_can_wait(L, job->what);
	job->call = call;
	job->refs++;
	mp_pool_submit(lua->pool, job_work, job_done, job);
	return mp_lua_call_waitk(L, call, &wait, (lua_KContext)job->holder,
				 job_resume);
}

/* ---- moonpost.password_verify ------------------------------------------ */

struct verify_job {
	struct mp_lua_job job;
	char *password;
	char *stored;
	bool ok;
};

static void
verify_work(struct mp_lua_job *job)
{
	struct verify_job *v = (struct verify_job *)job;

	v->ok = mp_password_verify(v->password, v->stored);
}

static int
verify_finish(lua_State *L, struct mp_lua_job *job)
{
	lua_pushboolean(L, ((struct verify_job *)job)->ok);
	return 1;
}

static void
verify_release(struct mp_lua_job *job)
{
	struct verify_job *v = (struct verify_job *)job;

	if (v->password != NULL) {
		explicit_bzero(v->password, strlen(v->password));
		free(v->password);
	}
	free(v->stored);
	free(v);
}

int
mp_lua_password_verify(lua_State *L)
{
	size_t len;
	const char *password = luaL_checklstring(L, 1, &len);
	const char *stored = luaL_checkstring(L, 2);
	struct verify_job *v;

	/* A NUL cannot be part of any password a hash was made from. */
	if (strlen(password) != len) {
		lua_pushboolean(L, 0);
		return 1;
	}
	v = mp_lua_job_new(L, sizeof(*v));
	v->job.what = "moonpost.password_verify";
	v->job.work = verify_work;
	v->job.finish = verify_finish;
	v->job.release = verify_release;
	v->password = mp_xstrdup(password);
	v->stored = mp_xstrdup(stored);
	return mp_lua_job_run(L, &v->job);
}
