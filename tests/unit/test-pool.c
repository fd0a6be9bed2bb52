/* test-pool.c - the thread pool: every job runs and completes on the loop,
 * short work goes before password hashes, and hashes are not starved. */
#include "config.h"

#include <ev.h>
#include <glib.h>
#include <pthread.h>
#include <string.h>

#include <moonpost/pool.h>

struct record {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool started; /* the gate job runs */
	bool open;    /* the gate job may return */
	char order[256];
	size_t n;
	unsigned done;
};

struct job {
	struct record *rec;
	char name;
};

static void
gate_work(void *arg)
{
	struct job *j = arg;

	pthread_mutex_lock(&j->rec->lock);
	j->rec->started = true;
	pthread_cond_broadcast(&j->rec->cond);
	while (!j->rec->open)
		pthread_cond_wait(&j->rec->cond, &j->rec->lock);
	pthread_mutex_unlock(&j->rec->lock);
}

static void
note_work(void *arg)
{
	struct job *j = arg;

	pthread_mutex_lock(&j->rec->lock);
	j->rec->order[j->rec->n++] = j->name;
	pthread_mutex_unlock(&j->rec->lock);
}

static void
note_done(void *arg)
{
	struct job *j = arg;

	j->rec->done++;
}

/* One worker, held by a gate while 3 slow jobs (S) and 20 short ones (n)
 * queue: the short ones go first, but a slow one after every eighth. */
static void
test_order(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct mp_pool *pool = mp_pool_new(loop, 1);
	struct record rec = {.lock = PTHREAD_MUTEX_INITIALIZER,
			     .cond = PTHREAD_COND_INITIALIZER};
	struct job gate = {&rec, 'G'}, jobs[23];

	mp_pool_submit(pool, gate_work, note_done, &gate);
	pthread_mutex_lock(&rec.lock);
	while (!rec.started)
		pthread_cond_wait(&rec.cond, &rec.lock);
	pthread_mutex_unlock(&rec.lock);
	for (int i = 0; i < 3; i++) {
		jobs[i] = (struct job){&rec, 'S'};
		mp_pool_submit_slow(pool, note_work, note_done, &jobs[i]);
	}
	for (int i = 3; i < 23; i++) {
		jobs[i] = (struct job){&rec, 'n'};
		mp_pool_submit(pool, note_work, note_done, &jobs[i]);
	}
	g_assert_cmpuint(mp_pool_pending(pool), ==, 24);
	pthread_mutex_lock(&rec.lock);
	rec.open = true;
	pthread_cond_broadcast(&rec.cond);
	pthread_mutex_unlock(&rec.lock);
	while (rec.done < 24)
		ev_run(loop, EVRUN_ONCE);
	g_assert_cmpuint(mp_pool_pending(pool), ==, 0);
	rec.order[rec.n] = '\0';
	g_assert_cmpstr(rec.order, ==, "nnnnnnnnSnnnnnnnnSnnnnS");
	mp_pool_free(&pool);
	ev_loop_destroy(loop);
}

/* Freeing the pool runs what is still queued, slow work included. */
static void
test_free_drains(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct mp_pool *pool = mp_pool_new(loop, 2);
	struct record rec = {.lock = PTHREAD_MUTEX_INITIALIZER,
			     .cond = PTHREAD_COND_INITIALIZER};
	struct job jobs[10];

	for (int i = 0; i < 10; i++) {
		jobs[i] = (struct job){&rec, i % 2 ? 'S' : 'n'};
		if (i % 2)
			mp_pool_submit_slow(pool, note_work, note_done,
					    &jobs[i]);
		else
			mp_pool_submit(pool, note_work, note_done, &jobs[i]);
	}
	mp_pool_free(&pool);
	g_assert_null(pool);
	g_assert_cmpuint(rec.n, ==, 10);
	g_assert_cmpuint(rec.done, ==, 10);
	ev_loop_destroy(loop);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/core/pool/order", test_order);
	g_test_add_func("/core/pool/free-drains", test_free_drains);
	return g_test_run();
}
