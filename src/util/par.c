/* Work sharing by an atomic counter: cheap, and good enough for equal-sized chunks. */
#include "par.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "banned.h"

struct par_state {
	par_fn fn;
	void *ctx;
	size_t n;
	atomic_size_t next;
	atomic_bool failed;
	pthread_mutex_t lock;
	struct kerr *err;
};

struct par_worker {
	struct par_state *st;
	unsigned tid;
};

unsigned par_threads(void)
{
	const char *env = getenv("KILN_THREADS");
	long n = env ? strtol(env, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	if (n > PAR_MAX_THREADS)
		n = PAR_MAX_THREADS;
	return (unsigned)n;
}

static void *par_run(void *arg)
{
	struct par_worker *w = arg;
	struct par_state *st = w->st;

	while (!atomic_load(&st->failed)) {
		size_t i = atomic_fetch_add(&st->next, 1);
		struct kerr *err = NULL;

		if (i >= st->n)
			break;
		if (st->fn(st->ctx, i, w->tid, &err) < 0) {
			pthread_mutex_lock(&st->lock);
			if (!st->err)
				st->err = err;
			else
				kerr_free(err);
			pthread_mutex_unlock(&st->lock);
			atomic_store(&st->failed, true);
		}
	}
	return NULL;
}

int par_for(size_t n, unsigned threads, par_fn fn, void *ctx, struct kerr **err)
{
	struct par_state st = {.fn = fn, .ctx = ctx, .n = n};
	struct par_worker workers[PAR_MAX_THREADS];
	pthread_t tids[PAR_MAX_THREADS];
	unsigned started = 0;

	if (threads < 1)
		threads = 1;
	if (threads > PAR_MAX_THREADS)
		threads = PAR_MAX_THREADS;
	if (threads > n)
		threads = n ? (unsigned)n : 1;
	atomic_init(&st.next, 0);
	atomic_init(&st.failed, false);
	pthread_mutex_init(&st.lock, NULL);
	for (unsigned t = 1; t < threads; t++) {
		workers[t] = (struct par_worker){.st = &st, .tid = t};
		if (pthread_create(&tids[t], NULL, par_run, &workers[t]) != 0)
			break;
		started = t;
	}
	workers[0] = (struct par_worker){.st = &st, .tid = 0};
	par_run(&workers[0]);
	for (unsigned t = 1; t <= started; t++)
		pthread_join(tids[t], NULL);
	pthread_mutex_destroy(&st.lock);
	if (st.err)
		return kerr_pass(err, st.err);
	return 0;
}
