/* Point-in-time copies: a reflink of a volume's file as it is at one instant (the root of a
 * running instance frozen meanwhile, a data volume flushed), kept in the volume's zone pool as
 * cloud_shadow_file(volume, snapshot) until a snapshot stores it (snapshots.c). */
#include "internal.h"

#include <string.h>
#include <sys/stat.h>

#include "pool/pool.h"
#include "runtime/runtime.h"
#include "util/cleanup.h"
#include "util/xalloc.h"
#include "util/banned.h"

/* The reflink, under the job lock of the instance the volume is attached to (no start or stop
 * meanwhile), which the caller holds already when locked. */
static int take_copy(struct cloud *c, const struct volume *v, struct pool *p, const char *dest,
                     bool locked, struct kerr **err)
{
	_cleanup_free_ char *file = cloud_volume_file(v->id);
	_cleanup_free_ char *src = pool_path(p, file), *dest_path = pool_path(p, dest);
	pthread_mutex_t *lock = v->instance[0] && !locked ? cloud_job_lock(v->instance) : NULL;
	struct instance_status st = {0};
	int r;

	if (lock)
		pthread_mutex_lock(lock);
	if (v->instance[0])
		c->rt->ops->status(c->rt, v->instance, &st, NULL);
	if (st.state != RUN_RUNNING)
		r = pool_clone(p, src, dest, err);
	else if (!strcmp(v->device, ROOT_DEVICE))
		r = runtime_clone_root(c->rt, v->instance, dest_path, err);
	else
		r = runtime_volume_flush(c->rt, v->instance, v->device + strlen("/dev/"), err) < 0
		        ? -1
		        : pool_clone(p, src, dest, err);
	if (lock)
		pthread_mutex_unlock(lock);
	return r;
}

int cloud_point_in_time_take(struct cloud *c, const struct volume *v, const char *snapshot,
                             struct kerr **err)
{
	_cleanup_free_ char *dir = cloud_zone_pool_dir(c, v->region, v->zone);
	_cleanup_free_ char *dest = cloud_shadow_file(v->id, snapshot);
	struct pool *p = NULL;
	int r;

	if (pool_open(dir, NULL, &p, err) < 0)
		return -1;
	r = take_copy(c, v, p, dest, false, err);
	pool_close(p);
	return r < 0 ? kerr_wrap(err, "cannot take a point-in-time copy of '%s'", v->id) : 0;
}

int cloud_point_in_time_for_snapshot(struct cloud *c, const char *id, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ char *dir = NULL, *dest = NULL;
	struct volume v;
	struct pool *p = NULL;
	int r;

	if (cloud_snapshot_row(c, "volume_id, owner, region", id, &st, err) < 0)
		return -1;
	if (cloud_volume_get(c, db_text(st, 1), db_text(st, 2), db_text(st, 0), &v, err) < 0)
		return -1;
	dir = cloud_zone_pool_dir(c, v.region, v.zone);
	dest = cloud_shadow_file(v.id, id);
	if (pool_open(dir, NULL, &p, err) < 0)
		return -1;
	{
		/* Resumed after a crash: a whole copy taken then is the point in time; a partial
		 * one goes. */
		_cleanup_free_ char *path = pool_path(p, dest), *vol = cloud_volume_file(v.id),
		                    *vpath = pool_path(p, vol);
		struct stat a, b;
		if (stat(path, &a) == 0 && stat(vpath, &b) == 0 && a.st_size == b.st_size &&
		    a.st_size > 0) {
			pool_close(p);
			return 0;
		}
	}
	pool_remove(p, dest, NULL);
	r = take_copy(c, &v, p, dest, true, err);
	pool_close(p);
	return r < 0 ? kerr_wrap(err, "cannot take a point-in-time copy of '%s'", v.id) : 0;
}

void cloud_point_in_time_drop(struct cloud *c, const char *region, const char *zone,
                              const char *volume, const char *snapshot)
{
	_cleanup_free_ char *dir = cloud_zone_pool_dir(c, region, zone);
	_cleanup_free_ char *dest = cloud_shadow_file(volume, snapshot);
	struct pool *p = NULL;

	if (pool_open(dir, NULL, &p, NULL) == 0)
		pool_remove(p, dest, NULL);
	pool_close(p);
}
