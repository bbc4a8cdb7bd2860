/* The watcher of running instances: once a second it looks for a running instance whose PID 1
 * has ended of itself (a poweroff inside it) and has it stopped or terminated, as its shutdown
 * behaviour says (cloud_instance_ended). */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/runtime.h"
#include "util/cleanup.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define WATCH_PERIOD_MS 1000

struct cloud_watch {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;
};

/* The running instances whose runtime says they ended. */
static void watch_once(struct cloud *c)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ char(*ended)[ID_MAX] = NULL;
	size_t n = 0;

	if (db_prepare(c->db, "SELECT id FROM instances WHERE state = 'running'", &st, NULL) < 0)
		return;
	while (db_step_row(c->db, st, NULL) == 1) {
		struct instance_status rs;
		if (c->rt->ops->status(c->rt, db_text(st, 0), &rs, NULL) < 0 ||
		    rs.state != RUN_STOPPED)
			continue;
		ended = xreallocarray(ended, n + 1, sizeof(*ended));
		str_copy(ended[n++], db_text(st, 0), sizeof(*ended));
	}
	sqlite3_finalize(steal_ptr(st)); /* no statement open while they change */
	for (size_t i = 0; i < n; i++)
		cloud_instance_ended(c, ended[i]);
}

static void *watch_main(void *arg)
{
	struct cloud *c = arg;
	struct cloud_watch *w = c->watch;

	pthread_mutex_lock(&w->lock);
	while (!w->stopping) {
		struct timespec at;
		clock_gettime(CLOCK_MONOTONIC, &at);
		at.tv_nsec += (long)WATCH_PERIOD_MS * 1000000L;
		at.tv_sec += at.tv_nsec / 1000000000L;
		at.tv_nsec %= 1000000000L;
		while (!w->stopping && pthread_cond_timedwait(&w->wake, &w->lock, &at) != ETIMEDOUT)
			;
		if (w->stopping || cloud_jobs_stopping(c))
			break;
		pthread_mutex_unlock(&w->lock);
		watch_once(c);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int cloud_watch_start(struct cloud *c, struct kerr **err)
{
	struct cloud_watch *w = xcalloc(1, sizeof(*w));
	pthread_condattr_t attr;
	int r;

	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &attr);
	pthread_condattr_destroy(&attr);
	c->watch = w;
	r = pthread_create(&w->thread, NULL, watch_main, c);
	if (r != 0) {
		c->watch = NULL;
		pthread_cond_destroy(&w->wake);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return kerr_errno(err, r, "cannot start the watcher of instances");
	}
	return 0;
}

void cloud_watch_stop(struct cloud *c)
{
	struct cloud_watch *w = c->watch;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w);
	c->watch = NULL;
}
