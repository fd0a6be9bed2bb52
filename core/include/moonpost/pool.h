/* pool.h - a fixed pool of threads for blocking work.
 *
 * Password hashing, fsync and large copies must not run on the loop thread.
 * mp_pool_submit() hands a job to a worker; when it has run, its done
 * function runs back on the loop thread (woken through ev_async), in the
 * order jobs finished. A job's memory belongs to the submitter throughout. */
#ifndef MOONPOST_POOL_H
#define MOONPOST_POOL_H

#include <moonpost/common.h>

struct ev_loop;
struct mp_pool;

/* Runs on a worker thread. Must not touch loop-owned state. */
typedef void mp_pool_work_fn(void *arg);
/* Runs on the loop thread after work has returned. */
typedef void mp_pool_done_fn(void *arg);

/* Starts `threads` workers whose completions wake `loop`. Caller owns it. */
MP_API struct mp_pool *mp_pool_new(struct ev_loop *loop, unsigned threads);
/* Queues a job. done may be NULL. Call on the loop thread only. */
MP_API void mp_pool_submit(struct mp_pool *pool, mp_pool_work_fn *work,
			   mp_pool_done_fn *done, void *arg);
/* Queues a job that holds a worker long on purpose (a password hash), as
 * mp_pool_submit() does; workers take jobs queued with mp_pool_submit()
 * before it, but for one slow job after every few short ones. */
MP_API void mp_pool_submit_slow(struct mp_pool *pool, mp_pool_work_fn *work,
				mp_pool_done_fn *done, void *arg);
/* Jobs queued or running whose done has not run yet. */
MP_API size_t mp_pool_pending(const struct mp_pool *pool);
/* Waits for every queued job, runs their done functions, stops the workers
 * and frees the pool; sets *pool NULL. */
MP_API void mp_pool_free(struct mp_pool **pool);

#endif
