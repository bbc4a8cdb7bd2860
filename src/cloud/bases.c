/* The launch cache: each zone's pool keeps a "base" file per snapshot of an image, restored
 * once from the region's block store (or kept from the snapshot's own point-in-time copy), so
 * that launches and volumes made from the snapshot are constant-time reflink clones of it. */
#include "internal.h"

#include <string.h>
#include <unistd.h>

#include "pool/pool.h"
#include "store/store.h"
#include "util/cleanup.h"
#include "util/fault.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

int cloud_zone_base(struct cloud *c, struct pool *p, const char *region, const char *snapshot,
                    char **path, struct kerr **err)
{
	_cleanup_free_ char *base = cloud_base_name(snapshot), *what = NULL;
	struct store *s;
	int r;

	*path = pool_path(p, base);
	if (pool_exists(p, base))
		return 0;
	/* The first use of this snapshot in this zone: restore it once from the store. */
	if (cloud_store_open(c, region, false, &s, err) < 0)
		return -1;
	r = store_restore(s, snapshot, *path, NULL, err);
	/* A pool's directory is named after its zone. */
	what = xasprintf("restore %s into zone %s", snapshot,
	                 strrchr(p->dir, '/') ? strrchr(p->dir, '/') + 1 : p->dir);
	cloud_store_close(s, region, what);
	return r;
}

int cloud_zone_prewarm(struct cloud *c, const char *region, const char *snapshot, struct kerr **err)
{
	/* One pre-warm at a time: many images of one snapshot must not restore it many times. */
	static pthread_mutex_t one = PTHREAD_MUTEX_INITIALIZER;
	struct topology t;
	int r = 0;

	if (cloud_regions(c, &t, err) < 0)
		return -1;
	pthread_mutex_lock(&one);
	for (size_t i = 0; i < t.nzones && r == 0; i++) {
		_cleanup_free_ char *dir = NULL, *base = NULL;
		struct pool *p = NULL;

		if (strcmp(t.zones[i].region, region))
			continue;
		dir = cloud_zone_pool_dir(c, region, t.zones[i].name);
		/* Making a pool is what the lock is for; the restore itself renames into place. */
		pthread_mutex_lock(&c->volumes_lock);
		r = pool_open(dir, NULL, &p, err);
		pthread_mutex_unlock(&c->volumes_lock);
		if (r == 0)
			r = cloud_zone_base(c, p, region, snapshot, &base, err);
		pool_close(p);
	}
	pthread_mutex_unlock(&one);
	topology_release(&t);
	return r;
}

static int prewarm_job(struct cloud *c, const char *id, int kind, bool force, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ char(*snaps)[ID_MAX] = NULL;
	char region[32] = "";
	size_t n = 0;
	int r;

	(void)kind;
	(void)force;
	fault_point("prewarm.start");
	if (db_prepare(
	        c->db,
	        "SELECT region, root_snapshot FROM images WHERE id = ?1 UNION ALL "
	        "SELECT i.region, v.snapshot FROM image_volumes v JOIN images i ON i.id = v.image "
	        "WHERE v.image = ?1",
	        &st, err) < 0)
		return -1;
	db_bind_text(st, 1, id);
	while ((r = db_step_row(c->db, st, err)) == 1) {
		str_copy(region, db_text(st, 0), sizeof(region));
		snaps = xreallocarray(snaps, n + 1, sizeof(*snaps));
		str_copy(snaps[n++], db_text(st, 1), ID_MAX);
	}
	if (r < 0)
		return -1;
	/* Best effort: a launch restores what is not warm. */
	for (size_t i = 0; i < n && !cloud_jobs_stopping(c); i++) {
		if (cloud_zone_prewarm(c, region, snaps[i], err) == 0)
			continue;
		/* Deleted since the job was queued (an image deregistered and its snapshot deleted
		 * at once): nothing to warm, and nothing wrong. */
		if (err && *err && (*err)->kind == KERR_NOT_FOUND &&
		    cloud_sql_exists(c, NULL, "SELECT 1 FROM snapshots WHERE id = ?", 1,
		                     snaps[i]) == 0) {
			kerr_free(*err);
			*err = NULL;
			continue;
		}
		return -1;
	}
	return 0;
}

void cloud_image_prewarm(struct cloud *c, const char *image)
{
	_cleanup_kerr_ struct kerr *err = NULL;

	/* Not at shutdown: launches restore what is not warm. */
	if (!cloud_jobs_stopping(c) &&
	    cloud_submit(c, image, image, prewarm_job, 0, false, &err) < 0)
		cloud_log_failure(image, err, "cannot prewarm the image");
}

/* A snapshot of an image: its copy is the zone's base of it already (a reflink, constant time),
 * so launches in the zone it was taken in never restore it. */
void cloud_base_keep(struct cloud *c, const char *id, const char *dir, const char *copy)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ char *base = cloud_base_name(id), *path = NULL;
	struct pool *p = NULL;

	if (db_prepare(c->db, "SELECT 1 FROM snapshots WHERE id = ? AND for_image != ''", &st,
	               NULL) < 0)
		return;
	db_bind_text(st, 1, id);
	if (db_step_row(c->db, st, NULL) != 1 || pool_open(dir, NULL, &p, NULL) < 0)
		return;
	path = pool_path(p, copy);
	if (p->reflink && !pool_exists(p, base))
		pool_clone(p, path, base, NULL);
	pool_close(p);
}

/* Only the zone pools of region that exist (a pool is made on first use, not by looking). */
void cloud_bases_remove(struct cloud *c, const char *region, const char *id)
{
	_cleanup_free_ char *base = cloud_base_name(id);
	struct topology t;

	if (cloud_regions(c, &t, NULL) < 0)
		return;
	pthread_mutex_lock(&c->volumes_lock);
	for (size_t i = 0; i < t.nzones; i++) {
		_cleanup_free_ char *dir = NULL;
		struct pool *p = NULL;

		if (strcmp(t.zones[i].region, region))
			continue;
		dir = cloud_zone_pool_dir(c, region, t.zones[i].name);
		if (access(dir, F_OK) == 0 && pool_open(dir, NULL, &p, NULL) == 0)
			pool_remove(p, base, NULL);
		pool_close(p);
	}
	pthread_mutex_unlock(&c->volumes_lock);
	topology_release(&t);
}
