/* Background work of the domain: one thread per job, serialized per resource by a striped lock,
 * and a registry of the running ones so that shutdown can stop and join them. The database row
 * of the resource records the job (its transitional state), so a restarted daemon finds and
 * resumes what was in flight (the reconcile functions). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

/* Locks striped by id: a fixed array, so a lock never has to be made or freed. */
#define LOCK_STRIPES 64
static pthread_mutex_t job_locks[LOCK_STRIPES] = {[0 ... LOCK_STRIPES - 1] =
                                                      PTHREAD_MUTEX_INITIALIZER};
/* One chain of snapshots per volume at a time: they share the volume's shadow. Taken inside any
 * job lock, never around one. */
static pthread_mutex_t chain_locks[LOCK_STRIPES] = {[0 ... LOCK_STRIPES - 1] =
                                                        PTHREAD_MUTEX_INITIALIZER};

static unsigned stripe(const char *id)
{
	unsigned h = 5381;

	for (const char *p = id; *p; p++)
		h = h * 33 + (unsigned char)*p;
	return h % LOCK_STRIPES;
}

pthread_mutex_t *cloud_job_lock(const char *id)
{
	return &job_locks[stripe(id)];
}

pthread_mutex_t *cloud_chain_lock(const char *volume)
{
	return &chain_locks[stripe(volume)];
}

struct job {
	struct cloud *c;
	struct job *next;
	pthread_t tid;
	bool done; /* the thread has finished its work: joining it does not wait */
	char lock_id[ID_MAX];
	char id[ID_MAX];
	cloud_job_fn fn;
	const char *name;
	int kind;
	bool force;
};

struct cloud_jobs {
	pthread_mutex_t lock;
	struct job *running; /* started and not joined yet */
	bool stopping;
};

void cloud_jobs_init(struct cloud *c)
{
	c->jobs = xcalloc(1, sizeof(*c->jobs));
	pthread_mutex_init(&c->jobs->lock, NULL);
}

void cloud_jobs_free(struct cloud *c)
{
	if (!c->jobs)
		return;
	pthread_mutex_destroy(&c->jobs->lock);
	free(c->jobs);
	c->jobs = NULL;
}

bool cloud_jobs_stopping(struct cloud *c)
{
	bool r;

	pthread_mutex_lock(&c->jobs->lock);
	r = c->jobs->stopping;
	pthread_mutex_unlock(&c->jobs->lock);
	return r;
}

void cloud_log_failure(const char *resource, const struct kerr *e, const char *what)
{
	const struct log_ctx ctx = {.resource = resource};

	if (e)
		log_kerr(LOG_LEVEL_ERROR, &ctx, e, "%s", what);
	else
		log_event(LOG_LEVEL_ERROR, &ctx, "%s", what);
}

static void *job_run(void *arg)
{
	struct job *j = arg;
	struct cloud_jobs *jobs = j->c->jobs;
	/* No lock for a job whose lock_id is "": one that waits for other jobs (a change set waits
	 * for its copies) must not hold a stripe they may need. */
	pthread_mutex_t *lock = j->lock_id[0] ? cloud_job_lock(j->lock_id) : NULL;
	struct kerr *err = NULL;
	const struct log_ctx ctx = {.action = j->name, .resource = j->id};

	if (lock)
		pthread_mutex_lock(lock);
	if (j->fn(j->c, j->id, j->kind, j->force, &err) < 0)
		log_kerr(LOG_LEVEL_ERROR, &ctx, err, "job failed");
	else
		log_event(LOG_LEVEL_DEBUG, &ctx, "job done");
	if (lock)
		pthread_mutex_unlock(lock);
	kerr_free(err);
	pthread_mutex_lock(&jobs->lock);
	j->done = true;
	pthread_mutex_unlock(&jobs->lock);
	return NULL;
}

/* Join the jobs that are done (with jobs->lock held): their threads have nothing left to do. */
static void reap(struct cloud_jobs *jobs)
{
	for (struct job **p = &jobs->running; *p;) {
		struct job *j = *p;
		if (!j->done) {
			p = &j->next;
			continue;
		}
		*p = j->next;
		pthread_join(j->tid, NULL);
		free(j);
	}
}

int cloud_job_start(struct cloud *c, const char *lock_id, const char *id, cloud_job_fn fn,
                    const char *name, int kind, bool force, struct kerr **err)
{
	struct cloud_jobs *jobs = c->jobs;
	struct job *j;
	int r;

	pthread_mutex_lock(&jobs->lock);
	reap(jobs);
	if (jobs->stopping) {
		pthread_mutex_unlock(&jobs->lock);
		/* Its resource keeps its transitional state: the next start resumes it. */
		return kerr_set(err, KERR_CONFLICT, "cannot start the work for '%s': shutting down",
		                id);
	}
	j = xcalloc(1, sizeof(*j));
	j->c = c;
	j->fn = fn;
	j->name = name;
	j->kind = kind;
	j->force = force;
	str_copy(j->lock_id, lock_id, sizeof(j->lock_id));
	str_copy(j->id, id, sizeof(j->id));
	r = pthread_create(&j->tid, NULL, job_run, j);
	if (r != 0) {
		pthread_mutex_unlock(&jobs->lock);
		free(j);
		return kerr_errno(err, r, "cannot start the work for '%s'", id);
	}
	j->next = jobs->running;
	jobs->running = j;
	pthread_mutex_unlock(&jobs->lock);
	return 0;
}

void cloud_jobs_stop(struct cloud *c)
{
	struct cloud_jobs *jobs = c->jobs;
	struct job *list;

	if (!jobs)
		return;
	pthread_mutex_lock(&jobs->lock);
	jobs->stopping = true;
	list = jobs->running;
	jobs->running = NULL;
	pthread_mutex_unlock(&jobs->lock);
	/* No job starts from now on, so the list is all there is; a job that submits another
	 * while finishing gets a refusal, not a thread. */
	while (list) {
		struct job *j = list;
		list = j->next;
		pthread_join(j->tid, NULL);
		free(j);
	}
}
