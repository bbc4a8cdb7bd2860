/* Background work of the domain: one detached thread per job, serialized per resource by a
 * striped lock. The database row of the resource records the job (its transitional state),
 * so a restarted daemon finds and resumes what was in flight (the reconcile functions). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define JOB_STRIPES 64
static pthread_mutex_t job_locks[JOB_STRIPES] = {[0 ... JOB_STRIPES - 1] =
                                                     PTHREAD_MUTEX_INITIALIZER};

pthread_mutex_t *cloud_job_lock(const char *id)
{
	unsigned h = 5381;

	for (const char *p = id; *p; p++)
		h = h * 33 + (unsigned char)*p;
	return &job_locks[h % JOB_STRIPES];
}

struct job {
	struct cloud *c;
	char lock_id[ID_MAX];
	char id[ID_MAX];
	cloud_job_fn fn;
	int kind;
	bool force;
};

static void *job_run(void *arg)
{
	struct job *j = arg;
	pthread_mutex_t *lock = cloud_job_lock(j->lock_id);

	pthread_mutex_lock(lock);
	j->fn(j->c, j->id, j->kind, j->force);
	pthread_mutex_unlock(lock);
	free(j);
	return NULL;
}

int cloud_submit(struct cloud *c, const char *lock_id, const char *id, cloud_job_fn fn, int kind,
                 bool force, struct kerr **err)
{
	struct job *j = xcalloc(1, sizeof(*j));
	pthread_attr_t attr;
	pthread_t tid;
	int r;

	j->c = c;
	j->fn = fn;
	j->kind = kind;
	j->force = force;
	str_copy(j->lock_id, lock_id, sizeof(j->lock_id));
	str_copy(j->id, id, sizeof(j->id));
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&tid, &attr, job_run, j);
	pthread_attr_destroy(&attr);
	if (r != 0) {
		free(j);
		return kerr_errno(err, r, "cannot start the work for '%s'", id);
	}
	return 0;
}
