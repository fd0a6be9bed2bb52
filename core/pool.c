/* pool.c - a fixed pool of threads for blocking work.
 *
 * Jobs wait in two FIFOs under one mutex, short work and slow work
 * (password hashes); workers take them, run them, and put them on a done
 * list. An ev_async wakes the loop, which runs the done functions. The pool
 * is small (a few threads), so one lock is plenty.
 *
 * A worker takes short work first: a burst of logins, each a hash of tens
 * of milliseconds, would otherwise hold every mailbox open, fsync and
 * search queued behind it. So that a steady stream of short work cannot
 * starve logins either, a slow job goes first after SLOW_AFTER short ones
 * were taken while it waited. */
#include "config.h"

#include <ev.h>
#include <pthread.h>
#include <stdlib.h>

#include <moonpost/log.h>
#include <moonpost/pool.h>

struct pool_job {
	struct pool_job *next;
	mp_pool_work_fn *work;
	mp_pool_done_fn *done;
	void *arg;
};

struct job_queue {
	struct pool_job *head;
	struct pool_job *tail;
};

/* Short jobs taken in a row while slow ones wait. */
#define SLOW_AFTER 8

struct mp_pool {
	struct ev_loop *loop;
	ev_async wakeup;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job_queue queued; /* short work */
	struct job_queue slow;   /* password hashes */
	unsigned passed;         /* short jobs taken while slow ones waited */
	struct job_queue done;
	size_t pending; /* submitted, done not yet run; loop thread only */
	bool stopping;
	unsigned n_threads;
	pthread_t *threads;
};

static void
queue_push(struct job_queue *q, struct pool_job *job)
{
	job->next = NULL;
	if (q->tail != NULL)
		q->tail->next = job;
	else
		q->head = job;
	q->tail = job;
}

static struct pool_job *
queue_pop(struct job_queue *q)
{
	struct pool_job *job = q->head;

	if (job != NULL) {
		q->head = job->next;
		if (q->head == NULL)
			q->tail = NULL;
	}
	return job;
}

/* The next job to run, under the lock; NULL when none waits. */
static struct pool_job *
next_job(struct mp_pool *pool)
{
	if (pool->slow.head == NULL) {
		pool->passed = 0;
		return queue_pop(&pool->queued);
	}
	if (pool->queued.head == NULL || pool->passed >= SLOW_AFTER) {
		pool->passed = 0;
		return queue_pop(&pool->slow);
	}
	pool->passed++;
	return queue_pop(&pool->queued);
}

static void *
worker_main(void *arg)
{
	struct mp_pool *pool = arg;
	struct pool_job *job;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (pool->queued.head == NULL && pool->slow.head == NULL &&
		       !pool->stopping)
			pthread_cond_wait(&pool->cond, &pool->lock);
		job = next_job(pool);
		if (job == NULL)
			break; /* stopping and nothing left */
		pthread_mutex_unlock(&pool->lock);
		job->work(job->arg);
		pthread_mutex_lock(&pool->lock);
		queue_push(&pool->done, job);
		ev_async_send(pool->loop, &pool->wakeup);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

static void
run_done(struct mp_pool *pool)
{
	struct job_queue batch;
	struct pool_job *job;

	pthread_mutex_lock(&pool->lock);
	batch = pool->done;
	pool->done.head = pool->done.tail = NULL;
	pthread_mutex_unlock(&pool->lock);

	while ((job = queue_pop(&batch)) != NULL) {
		pool->pending--;
		if (job->done != NULL)
			job->done(job->arg);
		free(job);
	}
}

static void
wakeup_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	run_done(w->data);
}

struct mp_pool *
mp_pool_new(struct ev_loop *loop, unsigned threads)
{
	struct mp_pool *pool = mp_xcalloc(1, sizeof(*pool));

	pool->loop = loop;
	pool->n_threads = threads > 0 ? threads : 1;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	ev_async_init(&pool->wakeup, wakeup_cb);
	pool->wakeup.data = pool;
	ev_async_start(loop, &pool->wakeup);
	/* The wakeup must not keep ev_run() alive on its own. */
	ev_unref(loop);

	pool->threads = mp_xcalloc(pool->n_threads, sizeof(pthread_t));
	for (unsigned i = 0; i < pool->n_threads; i++) {
		if (pthread_create(&pool->threads[i], NULL, worker_main,
				   pool) != 0) {
			mp_log(MP_LOG_ERROR, "event=pool_thread_failed");
			abort();
		}
	}
	return pool;
}

static void
submit(struct mp_pool *pool, struct job_queue *q, mp_pool_work_fn *work,
       mp_pool_done_fn *done, void *arg)
{
	struct pool_job *job = mp_xmalloc(sizeof(*job));

	job->work = work;
	job->done = done;
	job->arg = arg;
	pool->pending++;
	pthread_mutex_lock(&pool->lock);
	queue_push(q, job);
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
}

void
mp_pool_submit(struct mp_pool *pool, mp_pool_work_fn *work,
	       mp_pool_done_fn *done, void *arg)
{
	submit(pool, &pool->queued, work, done, arg);
}

void
mp_pool_submit_slow(struct mp_pool *pool, mp_pool_work_fn *work,
		    mp_pool_done_fn *done, void *arg)
{
	submit(pool, &pool->slow, work, done, arg);
}

size_t
mp_pool_pending(const struct mp_pool *pool)
{
	return pool->pending;
}

void
mp_pool_free(struct mp_pool **poolp)
{
	struct mp_pool *pool = *poolp;

	if (pool == NULL)
		return;
	/* Workers finish every queued job before they see `stopping`. */
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < pool->n_threads; i++)
		pthread_join(pool->threads[i], NULL);
	run_done(pool);

	ev_ref(pool->loop);
	ev_async_stop(pool->loop, &pool->wakeup);
	pthread_cond_destroy(&pool->cond);
	pthread_mutex_destroy(&pool->lock);
	free(pool->threads);
	free(pool);
	*poolp = NULL;
}
