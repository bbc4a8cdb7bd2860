/* Snapshots: CreateSnapshot takes a point-in-time copy of the volume at once (point_in_time.c)
 * and a worker stores it in the region's block store, incremental against the volume's previous
 * snapshot. That reflink then stays in the pool as the volume's shadow, so the next snapshot
 * reads only the extents that changed since. Copies from another region are stored by
 * copies.c; the snapshot's row records the outcome either way. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pool/pool.h"
#include "runtime/runtime.h"
#include "store/store.h"
#include "util/cleanup.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/fault.h"
#include "util/log.h"
#include "util/banned.h"

static void snapshot_from_row(sqlite3_stmt *st, void *element)
{
	struct snapshot *s = element;

	memset(s, 0, sizeof(*s));
	str_copy(s->id, db_text(st, 0), sizeof(s->id));
	str_copy(s->region, db_text(st, 1), sizeof(s->region));
	str_copy(s->owner, db_text(st, 2), sizeof(s->owner));
	str_copy(s->owner_alias, db_text(st, 3), sizeof(s->owner_alias));
	str_copy(s->volume, db_text(st, 4), sizeof(s->volume));
	s->volume_size_gib = (uint64_t)sqlite3_column_int64(st, 5);
	str_copy(s->state, db_text(st, 6), sizeof(s->state));
	s->progress = sqlite3_column_int(st, 7);
	str_copy(s->description, db_text(st, 8), sizeof(s->description));
	str_copy(s->state_message, db_text(st, 9), sizeof(s->state_message));
	s->start_ms = sqlite3_column_int64(st, 10);
	s->public = sqlite3_column_int(st, 11) != 0;
	s->restorable = sqlite3_column_int(st, 12) != 0;
}

#define SNAPSHOT_COLUMNS                                                                           \
	"s.id, s.region, s.owner, COALESCE(a.alias, ''), COALESCE(s.volume_id, ''), "              \
	"s.volume_size, s.state, "                                                                 \
	"s.progress, s.description, s.state_message, s.start_ms, "                                 \
	"EXISTS (SELECT 1 FROM snapshot_permissions p WHERE p.snapshot = s.id AND p.grantee = "    \
	"'all'), "                                                                                 \
	"(s.owner = ?2 OR EXISTS (SELECT 1 FROM snapshot_permissions p WHERE p.snapshot = s.id "   \
	"AND "                                                                                     \
	"p.grantee IN (?2, 'all'))) FROM snapshots s JOIN accounts a ON a.id = s.owner "

static int snapshots_query(struct cloud *c, const char *where, const char *region,
                           const char *caller, const char *id, struct snapshot **out, size_t *n,
                           struct kerr **err)
{
	_cleanup_free_ char *sql =
	    xasprintf("SELECT " SNAPSHOT_COLUMNS "WHERE s.region = ?1 AND %s "
	              "ORDER BY s.start_ms, s.id",
	              where);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	void *rows;

	if (db_prepare(c->db, sql, &st, err) < 0)
		return -1;
	db_bind_text(st, 1, region);
	db_bind_text(st, 2, caller);
	db_bind_text(st, 3, id);
	if (cloud_rows(c, st, sizeof(**out), snapshot_from_row, &rows, n, err) < 0)
		return -1;
	*out = rows;
	return 0;
}

int cloud_snapshots_visible(struct cloud *c, const char *caller, const char *region,
                            struct snapshot **out, size_t *n, struct kerr **err)
{
	return snapshots_query(
	    c,
	    "(s.owner = ?2 OR EXISTS (SELECT 1 FROM snapshot_permissions p WHERE "
	    "p.snapshot = s.id AND p.grantee IN (?2, 'all')))",
	    region, caller, NULL, out, n, err);
}

/* The caller's own snapshot. */
static int snapshot_owned(struct cloud *c, const char *owner, const char *region, const char *id,
                          struct snapshot *out, struct kerr **err)
{
	_cleanup_free_ struct snapshot *v = NULL;
	size_t n;

	if (snapshots_query(c, "s.owner = ?2 AND s.id = ?3", region, owner, id, &v, &n, err) < 0)
		return -1;
	if (!n)
		return cloud_snapshot_not_found(id, err);
	*out = v[0];
	return 0;
}

static int snapshot_set(struct cloud *c, const char *id, const char *set, int64_t num,
                        const char *text, struct kerr **err)
{
	_cleanup_free_ char *sql = xasprintf("UPDATE snapshots SET %s WHERE id = ?3", set);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (db_prepare(c->db, sql, &st, err) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, num);
	db_bind_text(st, 2, text);
	db_bind_text(st, 3, id);
	return db_step_done(c->db, st, err);
}

/* A state the snapshot must show though the work failed: a failure to record it is logged. */
static void snapshot_note(struct cloud *c, const char *id, const char *set, const char *text)
{
	_cleanup_kerr_ struct kerr *why = NULL;

	if (snapshot_set(c, id, set, 0, text, &why) < 0)
		cloud_log_failure(id, why, "cannot record the state of the snapshot");
}

/* Parent: the volume's newest snapshot when it is still there and complete. */
static void parent_of(struct cloud *c, const struct volume *v, char out[ID_MAX])
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	out[0] = '\0';
	if (!v->last_snapshot[0] ||
	    db_prepare(c->db, "SELECT 1 FROM snapshots WHERE id = ? AND state = 'completed'", &st,
	               NULL) < 0)
		return;
	db_bind_text(st, 1, v->last_snapshot);
	if (db_step_row(c->db, st, NULL) == 1)
		str_copy(out, v->last_snapshot, ID_MAX);
}

int cloud_snapshot_usable(struct cloud *c, const char *owner, const char *region, const char *id,
                          bool own_only, uint64_t *size_gib, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(
	        c->db,
	        "SELECT volume_size, state, owner = ?3 FROM snapshots s WHERE id = ?1 AND region = "
	        "?2 AND "
	        "(owner = ?3 OR EXISTS (SELECT 1 FROM snapshot_permissions p WHERE p.snapshot = "
	        "s.id "
	        "AND p.grantee IN (?3, 'all')))",
	        &st, err) < 0)
		return -1;
	db_bind_text(st, 1, id);
	db_bind_text(st, 2, region);
	db_bind_text(st, 3, owner);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return cloud_snapshot_not_found(id, err);
	/* A snapshot shared with the caller is its owner's: the caller copies it first (as on
	 * EC2), or an image of the caller would pin another account's snapshot. */
	if (own_only && !sqlite3_column_int(st, 2))
		return kerr_about(
		    err, KERR_AUTH, KERR_SUBJECT_SNAPSHOT, id,
		    "snapshot '%s' is not the caller's: copy it with CopySnapshot first", id);
	if (snapshot_state_parse(db_text(st, 1)) != SNAPSHOT_COMPLETED)
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_SNAPSHOT, id,
		                  "snapshot '%s' is not completed", id);
	*size_gib = (uint64_t)sqlite3_column_int64(st, 0);
	return 0;
}

static int snapshot_job(struct cloud *c, const char *id, int kind, bool force, struct kerr **err);
static int snapshot_forget(struct cloud *c, const char *region, const char *id, struct kerr **err);
static int store_pending(struct cloud *c, const char *id, struct kerr **err);

/* The row of a pending snapshot of v (in the caller's transaction, if any). */
static int snapshot_insert(struct cloud *c, const char *owner, const struct volume *v,
                           const char *id, const char *description, const char *for_image,
                           int64_t start_ms, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	const uint64_t need[QUOTA__COUNT] = {[QUOTA_SNAPSHOTS] = 1};
	char parent[ID_MAX];

	if (cloud_quota_check(c, owner, v->region, need, err) < 0)
		return -1;
	parent_of(c, v, parent);
	if (db_prepare(c->db,
	               "INSERT INTO snapshots (id, region, owner, volume_id, volume_size, state, "
	               "progress, "
	               "description, start_ms, parent, source, for_image) "
	               "VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?, ?)",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, id);
	db_bind_text(st, 2, v->region);
	db_bind_text(st, 3, owner);
	db_bind_text(st, 4, v->id);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)v->size_gib);
	db_bind_text(st, 6, description ? description : "");
	sqlite3_bind_int64(st, 7, start_ms);
	db_bind_text(st, 8, parent);
	db_bind_text(st, 9, v->zone);
	db_bind_text(st, 10, for_image ? for_image : "");
	return db_step_done(c->db, st, err);
}

int cloud_snapshot_insert(struct cloud *c, const char *owner, const struct volume *v,
                          const char *description, const char *for_image, char id[ID_MAX],
                          struct kerr **err)
{
	id_new("snap", id);
	return snapshot_insert(c, owner, v, id, description, for_image, cloud_now_ms(), err);
}

int cloud_snapshot_create(struct cloud *c, const char *owner, const char *region,
                          const char *volume, const char *description, const struct tag *tags,
                          size_t ntags, struct snapshot *out, struct kerr **err)
{
	struct volume v;
	enum volume_state state;

	if (cloud_volume_get(c, owner, region, volume, &v, err) < 0)
		return -1;
	state = volume_state_parse(v.state);
	if (state != VOLUME_AVAILABLE && state != VOLUME_IN_USE)
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_VOLUME, volume,
		                  "volume '%s' is %s", volume, v.state);
	memset(out, 0, sizeof(*out));
	id_new("snap", out->id);
	str_copy(out->region, region, sizeof(out->region));
	str_copy(out->owner, owner, sizeof(out->owner));
	str_copy(out->volume, volume, sizeof(out->volume));
	str_copy(out->description, description ? description : "", sizeof(out->description));
	str_copy(out->state, snapshot_state_name(SNAPSHOT_PENDING), sizeof(out->state));
	out->volume_size_gib = v.size_gib;
	out->start_ms = cloud_now_ms();
	out->restorable = true;
	/* The point in time is now, during the request. */
	if (cloud_point_in_time_take(c, &v, out->id, err) < 0)
		return -1;
	if (db_begin(c->db, err) < 0)
		goto on_error;
	if (snapshot_insert(c, owner, &v, out->id, out->description, NULL, out->start_ms, err) <
	        0 ||
	    cloud_tags_put(c, owner, region, out->id, tags, ntags, err) < 0) {
		db_rollback(c->db);
		goto on_error;
	}
	if (db_commit(c->db, err) < 0)
		goto on_error;
	return cloud_submit(c, out->id, out->id, snapshot_job, 0, false, err);

on_error:
	cloud_point_in_time_drop(c, region, v.zone, volume, out->id);
	return -1;
}

struct progress_ctx {
	struct cloud *c;
	const char *id;
	int last;
};

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct progress_ctx *pc = ctx;
	int pct = total ? (int)(done * 99 / total) : 0; /* 100 only once committed */

	if (pct >= pc->last + 5) {
		pc->last = pct;
		snapshot_set(pc->c, pc->id, "progress = ?1", pct, NULL, NULL);
	}
}

/* Store the point-in-time copy: what the snapshot row says, from its source zone's pool. */
static int store_point_in_time(struct cloud *c, const char *id, const char *volume,
                               const char *zone, const char *region, const char *parent,
                               struct kerr **err)
{
	_cleanup_free_ char *dir = cloud_zone_pool_dir(c, region, zone),
	                    *store_dir = cloud_store_dir(c, region);
	_cleanup_free_ char *dest = cloud_shadow_file(volume, id), *copy = NULL, *shadow = NULL;
	_cleanup_free_ char *parent_shadow = parent[0] ? cloud_shadow_file(volume, parent) : NULL;
	_cleanup_free_ char *parent_base = parent[0] ? cloud_base_name(parent) : NULL;
	struct progress_ctx pc = {c, id, 0};
	struct store_progress progress = {on_progress, &pc};
	struct store_snapshot_opts o = {
	    .id = id, .parent = parent[0] ? parent : NULL, .progress = &progress};
	struct store_snapshot_result res;
	struct store *s = NULL;
	struct pool *p = NULL;
	int r = -1;

	if (pool_open(dir, NULL, &p, err) < 0)
		return -1;
	if (!pool_exists(p, dest)) {
		kerr_set(err, KERR_NOT_FOUND, "the point-in-time copy of '%s' is gone", volume);
		goto out;
	}
	copy = pool_path(p, dest);
	/* A reflink taken at the parent shows which extents changed since: the volume's own shadow,
	 * or the zone's base of the parent when the volume was made from it. */
	if (p->reflink && parent[0])
		shadow = pool_exists(p, parent_shadow) ? pool_path(p, parent_shadow)
		         : pool_exists(p, parent_base) ? pool_path(p, parent_base)
		                                       : NULL;
	o.shadow = shadow;
	if (store_open(store_dir, false, &s, err) < 0)
		goto out;
	r = store_snapshot(s, copy, &o, &res, err);
out:
	cloud_store_close(s, region, id);
	pool_close(p);
	return r;
}

int cloud_snapshot_store(struct cloud *c, const char *id, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	char chain[ID_MAX];
	pthread_mutex_t *lock;
	int r;

	if (cloud_snapshot_row(c, "volume_id, copy_of != ''", id, &st, err) < 0)
		return -1;
	/* A copy continues no volume's chain: it waits for no other snapshot but itself. */
	str_copy(chain, sqlite3_column_int(st, 1) ? id : db_text(st, 0), sizeof(chain));
	lock = cloud_chain_lock(chain);
	pthread_mutex_lock(lock);
	r = store_pending(c, id, err);
	pthread_mutex_unlock(lock);
	return r;
}

static int snapshot_job(struct cloud *c, const char *id, int kind, bool force, struct kerr **err)
{
	(void)kind;
	(void)force;
	return cloud_snapshot_store(c, id, err);
}

/* A copy from another region (CopySnapshot, CopyImage): the store work is copies.c's. */
static int store_copy_of(struct cloud *c, const char *id, const char *region,
                         const char *src_region, const char *src_id, struct kerr **err)
{
	_cleanup_kerr_ struct kerr *why = NULL;
	struct progress_ctx pc = {c, id, 0};
	struct store_progress progress = {on_progress, &pc};
	uint64_t bytes_sent;

	if (cloud_copy_store(c, id, region, src_region, src_id, &progress, &bytes_sent, &why) < 0) {
		snapshot_note(c, id, "state = 'error', state_message = ?2", why->msg);
		return kerr_pass(err, steal_ptr(why));
	}
	return snapshot_set(c, id, "state = 'completed', progress = 100, bytes_sent = ?1",
	                    (int64_t)bytes_sent, NULL, err);
}

/* The body of cloud_snapshot_store, under the chain lock: 0 when completed. */
static int store_pending(struct cloud *c, const char *id, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL, *adv = NULL;
	_cleanup_kerr_ struct kerr *why = NULL;
	char volume[ID_MAX], zone[32], region[32], parent[ID_MAX];
	_cleanup_free_ char *dir = NULL, *dest = NULL, *old = NULL;
	struct pool *p = NULL;
	enum snapshot_state state;
	bool advanced = false;

	if (cloud_snapshot_row(c, "volume_id, source, region, parent, state, copy_of, copy_region",
	                       id, &st, err) < 0)
		return -1;
	state = snapshot_state_parse(db_text(st, 4));
	if (state != SNAPSHOT_PENDING)
		return state == SNAPSHOT_COMPLETED
		           ? 0
		           : kerr_set(err, KERR_IO, "snapshot '%s' is %s", id, db_text(st, 4));
	if (db_text(st, 5)[0])
		return store_copy_of(c, id, db_text(st, 2), db_text(st, 6), db_text(st, 5), err);
	str_copy(volume, db_text(st, 0), sizeof(volume));
	str_copy(zone, db_text(st, 1), sizeof(zone));
	str_copy(region, db_text(st, 2), sizeof(region));
	str_copy(parent, db_text(st, 3), sizeof(parent));
	dir = cloud_zone_pool_dir(c, region, zone);
	dest = cloud_shadow_file(volume, id);
	if (store_point_in_time(c, id, volume, zone, region, parent, &why) < 0) {
		snapshot_note(c, id, "state = 'error', state_message = ?2", why->msg);
		cloud_point_in_time_drop(c, region, zone, volume, id);
		return kerr_pass(err, steal_ptr(why));
	}
	if (snapshot_set(c, id, "state = 'completed', progress = 100", 0, NULL, err) < 0)
		return -1;
	fault_point("snapshot.completed");
	cloud_base_keep(c, id, dir, dest);
	/* The copy becomes the volume's shadow when this snapshot continues its chain; otherwise
	 * (the volume is gone, or another snapshot moved on) it goes. */
	if (db_prepare(c->db,
	               "UPDATE volumes SET last_snapshot = ?1 WHERE id = ?2 AND last_snapshot = ?3 "
	               "RETURNING id",
	               &adv, NULL) == 0) {
		db_bind_text(adv, 1, id);
		db_bind_text(adv, 2, volume);
		db_bind_text(adv, 3, parent);
		/* Reset at once: a write that returned its row is still running (holding the
		 * connection's write) until reset, and no other thread's transaction can commit
		 * meanwhile ("SQL statements in progress", seen with 32 clients of bench/load). */
		db_hold(c->db);
		advanced = db_step_row(c->db, adv, NULL) == 1;
		sqlite3_reset(adv);
		db_release(c->db);
	}
	if (pool_open(dir, NULL, &p, NULL) == 0) {
		old = parent[0] ? cloud_shadow_file(volume, parent) : NULL;
		if (!advanced)
			pool_remove(p, dest, NULL);
		else if (old)
			pool_remove(p, old, NULL);
	}
	pool_close(p);
	return 0;
}

void cloud_snapshot_abandon(struct cloud *c, const char *id, const char *reason)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	char volume[ID_MAX], zone[32], region[32];

	if (db_prepare(c->db,
	               "SELECT volume_id, source, region FROM snapshots WHERE id = ? AND state = "
	               "'pending'",
	               &st, NULL) < 0)
		return;
	db_bind_text(st, 1, id);
	if (db_step_row(c->db, st, NULL) != 1)
		return;
	str_copy(volume, db_text(st, 0), sizeof(volume));
	str_copy(zone, db_text(st, 1), sizeof(zone));
	str_copy(region, db_text(st, 2), sizeof(region));
	snapshot_note(c, id, "state = 'error', state_message = ?2", reason);
	cloud_point_in_time_drop(c, region, zone, volume, id);
}

/* A DeleteSnapshot the daemon did not finish: completed snapshots of the region whose manifest
 * the store no longer has (removing it is the delete's commit point) are forgotten. Only those
 * DeleteSnapshot could have been deleting: none an image uses (it refuses those), whose missing
 * manifest is damage for verify to report, not a deletion to finish. */
static int deletes_finish(struct cloud *c, const char *region, struct kerr **err)
{
	_cleanup_free_ char *dir = cloud_store_dir(c, region);
	_cleanup_free_ struct store_snap_info *have = NULL;
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	char(*gone)[ID_MAX] = NULL;
	size_t nhave = 0, ngone = 0;
	struct store *s;
	int r;

	if (!store_location_is_s3(dir) && access(dir, F_OK) < 0)
		return 0;
	if (store_open(dir, false, &s, err) < 0)
		return -1;
	r = store_list(s, &have, &nhave, err);
	cloud_store_close(s, region, "finishing deletes");
	if (r < 0 ||
	    db_prepare(
	        c->db,
	        "SELECT id FROM snapshots WHERE region = ?1 AND state = 'completed' AND id NOT "
	        "IN (SELECT root_snapshot FROM images WHERE root_snapshot IS NOT NULL UNION "
	        "SELECT snapshot FROM image_volumes WHERE snapshot IS NOT NULL)",
	        &st, err) < 0)
		return -1;
	db_bind_text(st, 1, region);
	while ((r = db_step_row(c->db, st, err)) == 1) {
		bool found = false;

		for (size_t i = 0; i < nhave && !found; i++)
			found = !strcmp(have[i].id, db_text(st, 0));
		if (found)
			continue;
		gone = xreallocarray(gone, ngone + 1, sizeof(*gone));
		str_copy(gone[ngone++], db_text(st, 0), ID_MAX);
	}
	for (size_t i = 0; r == 0 && i < ngone; i++) {
		log_event(LOG_LEVEL_INFO, &(struct log_ctx){.resource = gone[i]},
		          "finishing the deletion of the snapshot");
		r = snapshot_forget(c, region, gone[i], err);
	}
	free(gone);
	return r < 0 ? -1 : 0;
}

int cloud_snapshots_reconcile(struct cloud *c, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct topology t;
	int r;

	if (cloud_regions(c, &t, err) < 0)
		return -1;
	r = 0;
	for (size_t i = 0; i < t.nregions && r == 0; i++)
		r = deletes_finish(c, t.regions[i], err);
	topology_release(&t);
	if (r < 0)
		return -1;

	/* Those of CreateImage are its job's to finish (cloud_images_reconcile). */
	if (db_prepare(c->db, "SELECT id FROM snapshots WHERE state = 'pending' AND for_image = ''",
	               &st, err) < 0)
		return -1;
	while ((r = db_step_row(c->db, st, err)) == 1)
		if (cloud_submit(c, db_text(st, 0), db_text(st, 0), snapshot_job, 0, false, err) <
		    0)
			return -1;
	return r < 0 ? -1 : 0;
}

int cloud_snapshot_delete(struct cloud *c, const char *owner, const char *region, const char *id,
                          struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *img = NULL;
	_cleanup_free_ char *store_dir = cloud_store_dir(c, region);
	_cleanup_kerr_ struct kerr *why = NULL;
	struct snapshot snap;
	struct store *s;
	int r;

	if (snapshot_owned(c, owner, region, id, &snap, err) < 0)
		return -1;
	if (snapshot_state_parse(snap.state) == SNAPSHOT_PENDING)
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_SNAPSHOT, id,
		                  "snapshot '%s' is still pending", id);
	if (db_prepare(c->db,
	               "SELECT id FROM images WHERE root_snapshot = ?1 UNION "
	               "SELECT image FROM image_volumes WHERE snapshot = ?1",
	               &img, err) < 0)
		return -1;
	db_bind_text(img, 1, id);
	r = db_step_row(c->db, img, err);
	if (r < 0)
		return -1;
	if (r == 1)
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_SNAPSHOT, id,
		                  "snapshot '%s' is in use by image '%s'", id, db_text(img, 0));
	if (snapshot_state_parse(snap.state) == SNAPSHOT_COMPLETED) {
		if (store_open(store_dir, false, &s, err) < 0)
			return -1;
		r = store_delete(s, id, &why);
		cloud_store_close(s, region, id);
		if (r < 0 && why->kind != KERR_NOT_FOUND)
			return kerr_pass(err, steal_ptr(why));
		fault_point("snapshot.unstored");
		cloud_gc_request(c, region);
	}
	return snapshot_forget(c, region, id, err);
}

/* The rest of DeleteSnapshot once the store no longer has it: its chain, bases, row, tags. */
static int snapshot_forget(struct cloud *c, const char *region, const char *id, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *del = NULL, *tags = NULL, *vols = NULL;

	/* A volume whose newest snapshot this was starts a new chain (and loses the shadow). */
	if (db_prepare(c->db, "SELECT id, zone FROM volumes WHERE last_snapshot = ?", &vols, err) <
	    0)
		return -1;
	db_bind_text(vols, 1, id);
	while (db_step_row(c->db, vols, NULL) == 1)
		cloud_point_in_time_drop(c, region, db_text(vols, 1), db_text(vols, 0), id);
	cloud_bases_remove(c, region, id);
	if (db_prepare(c->db, "DELETE FROM snapshots WHERE id = ?", &del, err) < 0 ||
	    db_prepare(c->db, "DELETE FROM tags WHERE resource = ?", &tags, err) < 0)
		return -1;
	db_bind_text(del, 1, id);
	db_bind_text(tags, 1, id);
	if (db_step_done(c->db, tags, err) < 0 || db_step_done(c->db, del, err) < 0)
		return -1;
	return db_exec(c->db,
	               "UPDATE volumes SET last_snapshot = '' WHERE last_snapshot != '' AND "
	               "last_snapshot NOT IN "
	               "(SELECT id FROM snapshots)",
	               err);
}

static const struct grant_table snapshot_grants = {"snapshot_permissions", "snapshot", NULL};

int cloud_snapshot_permissions(struct cloud *c, const char *owner, const char *region,
                               const char *id, char (**grantees)[ACCOUNT_ID_LEN + 1], size_t *n,
                               struct kerr **err)
{
	struct snapshot snap;

	*grantees = NULL;
	*n = 0;
	if (snapshot_owned(c, owner, region, id, &snap, err) < 0)
		return -1;
	return cloud_grants_list(c, &snapshot_grants, id, grantees, n, err);
}

int cloud_snapshot_permit(struct cloud *c, const char *owner, const char *region, const char *id,
                          const char *const *add, size_t nadd, const char *const *remove,
                          size_t nremove, struct kerr **err)
{
	struct snapshot snap;

	char codes[PRODUCT_CODES_MAX][PRODUCT_CODE_LEN + 1];
	size_t ncodes;

	if (snapshot_owned(c, owner, region, id, &snap, err) < 0 ||
	    cloud_product_codes(c, id, codes, &ncodes, err) < 0)
		return -1;
	/* Another account could copy it, and the copy would be its own: refused, as AWS refuses
	 * copies of marketplace images to other accounts. */
	if (ncodes && nadd)
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_PRODUCT_IMAGE, id,
		                  "snapshot '%s' has product code '%s': it cannot be shared", id,
		                  codes[0]);
	return cloud_grants_change(c, &snapshot_grants, id, add, nadd, remove, nremove, false, err);
}

int cloud_snapshot_row(struct cloud *c, const char *columns, const char *id, sqlite3_stmt **st,
                       struct kerr **err)
{
	_cleanup_free_ char *sql = xasprintf("SELECT %s FROM snapshots WHERE id = ?", columns);
	int r;

	if (db_prepare(c->db, sql, st, err) < 0)
		return -1;
	db_bind_text(*st, 1, id);
	r = db_step_row(c->db, *st, err);
	if (r <= 0)
		return r < 0 ? -1 : cloud_snapshot_not_found(id, err);
	return 0;
}

int cloud_snapshot_not_found(const char *id, struct kerr **err)
{
	return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_SNAPSHOT, id, "snapshot '%s' not found",
	                  id);
}
