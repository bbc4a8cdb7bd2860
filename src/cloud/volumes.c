/* Volumes: sparse files in a zone's pool, created blank or as a constant-time clone of the
 * zone's base of a snapshot, attached to instances as block devices (runtime_volumes_set). */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool/pool.h"
#include "runtime/runtime.h"
#include "store/store.h"
#include "util/cleanup.h"
#include "util/kv.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/fault.h"
#include "util/banned.h"

enum volume_job { VOLUME_CREATE, VOLUME_ATTACH, VOLUME_DETACH, VOLUME_DELETE };

static void volume_from_row(sqlite3_stmt *st, void *element)
{
	struct volume *v = element;

	memset(v, 0, sizeof(*v));
	str_copy(v->id, db_text(st, 0), sizeof(v->id));
	str_copy(v->region, db_text(st, 1), sizeof(v->region));
	str_copy(v->zone, db_text(st, 2), sizeof(v->zone));
	str_copy(v->owner, db_text(st, 3), sizeof(v->owner));
	v->size_gib = (uint64_t)sqlite3_column_int64(st, 4);
	str_copy(v->snapshot, db_text(st, 5), sizeof(v->snapshot));
	str_copy(v->type, db_text(st, 6), sizeof(v->type));
	str_copy(v->state, db_text(st, 7), sizeof(v->state));
	str_copy(v->state_reason, db_text(st, 8), sizeof(v->state_reason));
	v->create_ms = sqlite3_column_int64(st, 9);
	str_copy(v->instance, db_text(st, 10), sizeof(v->instance));
	str_copy(v->device, db_text(st, 11), sizeof(v->device));
	str_copy(v->attach_state, db_text(st, 12), sizeof(v->attach_state));
	v->attach_ms = sqlite3_column_int64(st, 13);
	v->delete_on_termination = sqlite3_column_int(st, 14) != 0;
	str_copy(v->last_snapshot, db_text(st, 15), sizeof(v->last_snapshot));
}

#define VOLUME_COLUMNS                                                                             \
	"id, region, zone, owner, size, snapshot, volume_type, state, state_reason, create_ms, "   \
	"COALESCE(instance, ''), COALESCE(device, ''), COALESCE(attach_state, ''), "               \
	"COALESCE(attach_ms, 0), "                                                                 \
	"delete_on_termination, last_snapshot FROM volumes "

static int volumes_query(struct cloud *c, const char *where, const char *a, const char *b,
                         const char *d, struct volume **out, size_t *n, struct kerr **err)
{
	_cleanup_free_ char *sql =
	    xasprintf("SELECT " VOLUME_COLUMNS "WHERE %s ORDER BY create_ms, id", where);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	void *rows;

	if (db_prepare(c->db, sql, &st, err) < 0)
		return -1;
	db_bind_text(st, 1, a);
	db_bind_text(st, 2, b);
	db_bind_text(st, 3, d);
	if (cloud_rows(c, st, sizeof(**out), volume_from_row, &rows, n, err) < 0)
		return -1;
	*out = rows;
	return 0;
}

int cloud_volumes_list(struct cloud *c, const char *owner, const char *region, struct volume **out,
                       size_t *n, struct kerr **err)
{
	return volumes_query(c, "owner = ?1 AND region = ?2", owner, region, NULL, out, n, err);
}

int cloud_instance_volumes(struct cloud *c, const char *instance, struct volume **out, size_t *n,
                           struct kerr **err)
{
	return volumes_query(c, "instance = ?1", instance, NULL, NULL, out, n, err);
}

static int volume_by_id(struct cloud *c, const char *id, struct volume *out, struct kerr **err)
{
	_cleanup_free_ struct volume *v = NULL;
	size_t n;

	if (volumes_query(c, "id = ?1", id, NULL, NULL, &v, &n, err) < 0)
		return -1;
	if (!n)
		return cloud_volume_not_found(id, err);
	*out = v[0];
	return 0;
}

int cloud_volume_get(struct cloud *c, const char *owner, const char *region, const char *id,
                     struct volume *out, struct kerr **err)
{
	if (volume_by_id(c, id, out, err) < 0)
		return -1;
	if (strcmp(out->owner, owner) || strcmp(out->region, region))
		return cloud_volume_not_found(id, err);
	return 0;
}

static int volume_update(struct cloud *c, const char *id, const char *set, const char *a,
                         const char *b, struct kerr **err)
{
	_cleanup_free_ char *sql = xasprintf("UPDATE volumes SET %s WHERE id = ?3", set);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (db_prepare(c->db, sql, &st, err) < 0)
		return -1;
	db_bind_text(st, 1, a);
	db_bind_text(st, 2, b);
	db_bind_text(st, 3, id);
	return db_step_done(c->db, st, err);
}

static int volume_forget(struct cloud *c, const struct volume *v, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *tags = NULL, *vol = NULL;

	if (db_prepare(c->db, "DELETE FROM tags WHERE resource = ?", &tags, err) < 0 ||
	    db_prepare(c->db, "DELETE FROM volumes WHERE id = ?", &vol, err) < 0)
		return -1;
	db_bind_text(tags, 1, v->id);
	db_bind_text(vol, 1, v->id);
	return db_step_done(c->db, tags, err) < 0 ? -1 : db_step_done(c->db, vol, err);
}

int cloud_volume_insert_attached(struct cloud *c, const struct instance *in, const char *id,
                                 const char *device, const char *snapshot, uint64_t size_gib,
                                 bool delete_on_termination, const struct tag *tags, size_t ntags,
                                 struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (db_prepare(
	        c->db,
	        "INSERT INTO volumes (id, region, zone, owner, size, snapshot, state, create_ms, "
	        "instance, device, attach_state, attach_ms, delete_on_termination, last_snapshot) "
	        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'in-use', ?7, ?8, ?9, 'attached', ?7, ?10, ?6)",
	        &st, err) < 0)
		return -1;
	db_bind_text(st, 1, id);
	db_bind_text(st, 2, in->region);
	db_bind_text(st, 3, in->zone);
	db_bind_text(st, 4, in->owner);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)size_gib);
	db_bind_text(st, 6, snapshot);
	sqlite3_bind_int64(st, 7, in->launch_ms);
	db_bind_text(st, 8, in->id);
	db_bind_text(st, 9, device);
	sqlite3_bind_int(st, 10, delete_on_termination);
	if (db_step_done(c->db, st, err) < 0)
		return -1;
	return cloud_tags_put(c, in->owner, in->region, id, tags, ntags, err);
}

int cloud_instance_make_volumes(struct cloud *c, const struct instance *in, struct pool *p,
                                struct kerr **err)
{
	_cleanup_free_ struct volume *v = NULL;
	size_t n;

	if (cloud_instance_volumes(c, in->id, &v, &n, err) < 0)
		return -1;
	/* The records are read without the lock: a launch with no mapping (most) never takes it. */
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *file = cloud_volume_file(v[i].id), *base = NULL, *path = NULL;
		int r;
		if (!strcmp(v[i].device, ROOT_DEVICE) || pool_exists(p, file) || !v[i].snapshot[0])
			continue;
		pthread_mutex_lock(&c->volumes_lock);
		r = cloud_zone_base(c, p, v[i].region, v[i].snapshot, &base, err) < 0 ||
		            pool_clone(p, base, file, err) < 0
		        ? -1
		        : 0;
		pthread_mutex_unlock(&c->volumes_lock);
		if (r < 0)
			return -1;
		path = pool_path(p, file);
		if (truncate(path, (off_t)(v[i].size_gib * GIB)) < 0)
			return kerr_errno(err, errno, "cannot size '%s'", path);
	}
	return 0;
}

int cloud_instance_sync_volumes(struct cloud *c, const char *instance, struct kerr **err)
{
	_cleanup_free_ struct volume *v = NULL;
	struct kv wanted = {0};
	size_t n;
	int r = 0;

	if (volumes_query(
	        c, "instance = ?1 AND device != '" ROOT_DEVICE "' AND attach_state != 'detaching'",
	        instance, NULL, NULL, &v, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *dir = cloud_zone_pool_dir(c, v[i].region, v[i].zone);
		_cleanup_free_ char *file = cloud_volume_file(v[i].id);
		kv_setf(&wanted, v[i].device + strlen("/dev/"), "%s/%s", dir, file);
	}
	r = runtime_volumes_set(c->rt, instance, &wanted, err);
	kv_release(&wanted);
	return r;
}

int cloud_instance_release_volumes(struct cloud *c, const struct instance *in, struct kerr **err)
{
	_cleanup_free_ struct volume *v = NULL;
	_cleanup_free_ char *dir = cloud_zone_pool_dir(c, in->region, in->zone);
	struct pool *p = NULL;
	size_t n;
	int r = 0;

	if (volumes_query(c, "instance = ?1", in->id, NULL, NULL, &v, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n && r == 0; i++) {
		_cleanup_free_ char *file = cloud_volume_file(v[i].id);
		if (!v[i].delete_on_termination) {
			r = volume_update(c, v[i].id,
			                  "state = 'available', instance = NULL, device = NULL, "
			                  "attach_state = NULL, attach_ms = NULL",
			                  NULL, NULL, err);
			continue;
		}
		if (!p && pool_open(dir, NULL, &p, err) < 0)
			return -1;
		r = pool_remove(p, file, err);
		if (r == 0 && v[i].last_snapshot[0]) {
			_cleanup_free_ char *shadow =
			    xasprintf("%s.%s.shadow", v[i].id, v[i].last_snapshot);
			pool_remove(p, shadow, NULL);
		}
		if (r == 0)
			r = volume_forget(c, &v[i], err);
	}
	pool_close(p);
	return r;
}

static int volume_job(struct cloud *c, const char *id, int kind, bool force, struct kerr **err);

int cloud_volume_create(struct cloud *c, const char *owner, const struct volume_request *req,
                        struct volume *out, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	uint64_t need[QUOTA__COUNT] = {[QUOTA_VOLUMES] = 1};
	struct zone z;
	uint64_t snap_size = 0;

	if (req->client_token) {
		/* The same token again: the volume it made then. */
		char id[ID_MAX];
		int r =
		    cloud_token_id(c, "volumes", owner, req->region, req->client_token, id, err);

		if (r < 0)
			return -1;
		if (r == 1)
			return cloud_volume_get(c, owner, req->region, id, out, err);
	}
	if (cloud_find_zone(c, req->region, req->zone, &z, err) < 0 ||
	    cloud_zone_space_check(c, req->region, z.name, err) < 0)
		return -1;
	if (req->snapshot &&
	    cloud_snapshot_usable(c, owner, req->region, req->snapshot, false, &snap_size, err) < 0)
		return -1;
	if (!req->snapshot && !req->size_gib)
		return kerr_set(err, KERR_INVALID, "a volume needs a size or a snapshot");
	if (req->size_gib && req->size_gib < snap_size)
		return kerr_about(
		    err, KERR_INVALID, KERR_SUBJECT_SNAPSHOT, req->snapshot,
		    "volume of %llu GiB is smaller than snapshot '%s', expect size >= %llu GiB",
		    (unsigned long long)req->size_gib, req->snapshot,
		    (unsigned long long)snap_size);
	memset(out, 0, sizeof(*out));
	id_new("vol", out->id);
	str_copy(out->region, req->region, sizeof(out->region));
	str_copy(out->zone, z.name, sizeof(out->zone));
	str_copy(out->owner, owner, sizeof(out->owner));
	out->size_gib = req->size_gib ? req->size_gib : snap_size;
	str_copy(out->snapshot, req->snapshot ? req->snapshot : "", sizeof(out->snapshot));
	str_copy(out->last_snapshot, out->snapshot, sizeof(out->last_snapshot));
	str_copy(out->type, req->type ? req->type : "gp3", sizeof(out->type));
	str_copy(out->state, volume_state_name(VOLUME_CREATING), sizeof(out->state));
	out->create_ms = cloud_now_ms();
	if (db_begin(c->db, err) < 0)
		return -1;
	need[QUOTA_VOLUME_GIB] = out->size_gib;
	if (cloud_quota_check(c, owner, req->region, need, err) < 0 ||
	    db_prepare(
	        c->db,
	        "INSERT INTO volumes (id, region, zone, owner, size, snapshot, volume_type, state, "
	        "create_ms, last_snapshot, client_token) "
	        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'creating', ?8, ?6, ?9)",
	        &st, err) < 0)
		goto on_error;
	db_bind_text(st, 1, out->id);
	db_bind_text(st, 2, out->region);
	db_bind_text(st, 3, out->zone);
	db_bind_text(st, 4, owner);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)out->size_gib);
	db_bind_text(st, 6, out->snapshot);
	db_bind_text(st, 7, out->type);
	sqlite3_bind_int64(st, 8, out->create_ms);
	db_bind_text(st, 9, req->client_token);
	if (db_step_done(c->db, st, err) < 0 ||
	    cloud_tags_put(c, owner, req->region, out->id, req->tags, req->ntags, err) < 0)
		goto on_error;
	if (db_commit(c->db, err) < 0)
		return -1;
	return cloud_submit(c, out->id, out->id, volume_job, VOLUME_CREATE, false, err);

on_error:
	db_rollback(c->db);
	return -1;
}

bool cloud_device_name_valid(const char *device)
{
	const char *name = !strncmp(device, "/dev/", 5) ? device + 5 : NULL;

	if (!name)
		return false;
	if (!strncmp(name, "sd", 2) && name[2] >= 'b' && name[2] <= 'z' && !name[3])
		return true;
	return !strncmp(name, "xvd", 3) && name[3] >= 'b' && name[3] <= 'z' && !name[4];
}

int cloud_volume_attach(struct cloud *c, const char *owner, const char *region, const char *volume,
                        const char *instance, const char *device, struct volume *out,
                        struct kerr **err)
{
	_cleanup_free_ struct volume *same = NULL;
	struct instance in;
	size_t n;

	if (cloud_volume_get(c, owner, region, volume, out, err) < 0)
		return -1;
	if (cloud_instance_get(c, instance, &in, err) < 0 || strcmp(in.owner, owner) ||
	    strcmp(in.region, region))
		return cloud_instance_not_found(instance, err);
	if (!cloud_device_name_valid(device))
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_DEVICE, device,
		                  "'%s' is not a valid EBS device name", device);
	if (volume_state_parse(out->state) != VOLUME_AVAILABLE)
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_VOLUME, volume,
		                  "volume '%s' is %s", volume, out->state);
	if (!instance_state_stable(instance_state_parse(in.state)))
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_INSTANCE, instance,
		                  "instance '%s' is neither running nor stopped", instance);
	if (strcmp(in.zone, out->zone))
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_ZONE, in.zone,
		                  "volume '%s' is not in the availability zone of instance '%s'",
		                  volume, instance);
	if (volumes_query(c, "instance = ?1 AND (device = ?2 OR device = ?3)", instance, device,
	                  NULL, &same, &n, err) < 0)
		return -1;
	if (n)
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_DEVICE, device,
		                  "attachment point '%s' is in use", device);
	str_copy(out->instance, instance, sizeof(out->instance));
	str_copy(out->device, device, sizeof(out->device));
	str_copy(out->attach_state, "attaching", sizeof(out->attach_state));
	out->attach_ms = cloud_now_ms();
	if (volume_update(
	        c, volume,
	        "state = 'in-use', instance = ?1, device = ?2, attach_state = 'attaching', "
	        "attach_ms = CAST(strftime('%s', 'now') AS INTEGER) * 1000",
	        instance, device, err) < 0)
		return -1;
	return cloud_submit(c, instance, volume, volume_job, VOLUME_ATTACH, false, err);
}

int cloud_volume_detach(struct cloud *c, const char *owner, const char *region, const char *volume,
                        const char *instance, bool force, struct volume *out, struct kerr **err)
{
	if (cloud_volume_get(c, owner, region, volume, out, err) < 0)
		return -1;
	if (!out->instance[0] || (instance && strcmp(instance, out->instance)))
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_VOLUME, volume,
		                  "volume '%s' is %s", volume, out->state);
	if (!strcmp(out->device, ROOT_DEVICE))
		return kerr_about(err, KERR_AUTH, KERR_SUBJECT_VOLUME, volume,
		                  "cannot detach root volume '%s' from instance '%s'", volume,
		                  out->instance);
	if (!strcmp(out->attach_state, "detaching") && !force)
		return 0;
	str_copy(out->attach_state, "detaching", sizeof(out->attach_state));
	if (volume_update(c, volume, "attach_state = 'detaching'", NULL, NULL, err) < 0)
		return -1;
	return cloud_submit(c, out->instance, volume, volume_job, VOLUME_DETACH, force, err);
}

int cloud_volume_delete(struct cloud *c, const char *owner, const char *region, const char *volume,
                        struct kerr **err)
{
	struct volume v;
	enum volume_state state;

	if (cloud_volume_get(c, owner, region, volume, &v, err) < 0)
		return -1;
	if (v.instance[0])
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_ATTACHMENT, volume,
		                  "volume '%s' is attached to '%s'", volume, v.instance);
	state = volume_state_parse(v.state);
	if (state != VOLUME_AVAILABLE && state != VOLUME_ERROR)
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_VOLUME, volume,
		                  "volume '%s' is %s", volume, v.state);
	if (volume_update(c, volume, "state = 'deleting'", NULL, NULL, err) < 0)
		return -1;
	return cloud_submit(c, volume, volume, volume_job, VOLUME_DELETE, false, err);
}

static int make_volume(struct cloud *c, const struct volume *v, struct kerr **err)
{
	_cleanup_free_ char *dir = cloud_zone_pool_dir(c, v->region, v->zone);
	_cleanup_free_ char *file = cloud_volume_file(v->id);
	_cleanup_free_ char *base = NULL, *path = NULL;
	struct pool *p = NULL;
	int r = -1;

	pthread_mutex_lock(&c->volumes_lock);
	if (pool_open(dir, NULL, &p, err) < 0)
		goto out;
	if (v->snapshot[0]) {
		if (cloud_zone_base(c, p, v->region, v->snapshot, &base, err) < 0 ||
		    pool_clone(p, base, file, err) < 0)
			goto out;
	} else {
		/* A new EBS volume is blank: a sparse file of its size, unformatted. */
		_cleanup_close_ int fd = -1;
		path = pool_path(p, file);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			kerr_errno(err, errno, "cannot create '%s'", path);
			goto out;
		}
	}
	/* A bigger volume than its snapshot: the device grows, its filesystem does not (as in EBS).
	 */
	free(path);
	path = pool_path(p, file);
	if (truncate(path, (off_t)(v->size_gib * GIB)) < 0) {
		kerr_errno(err, errno, "cannot size '%s'", path);
		pool_remove(p, file, NULL);
		goto out;
	}
	r = 0;
out:
	pthread_mutex_unlock(&c->volumes_lock);
	pool_close(p);
	return r;
}

static int volume_job(struct cloud *c, const char *id, int kind, bool force, struct kerr **err)
{
	_cleanup_kerr_ struct kerr *why = NULL;
	struct volume v;
	int r = 0;

	(void)force;
	if (volume_by_id(c, id, &v, err) < 0)
		return -1;
	switch ((enum volume_job)kind) {
	case VOLUME_CREATE:
		if ((r = make_volume(c, &v, err)) == 0) {
			fault_point("volume.made");
			r = volume_update(c, id, "state = 'available'", NULL, NULL, err);
		} else if (volume_update(c, id, "state = 'error', state_reason = ?1", (*err)->msg,
		                         NULL, &why) < 0)
			cloud_log_failure(id, why, "cannot record the failure of the volume");
		break;
	case VOLUME_ATTACH:
		if ((r = cloud_instance_sync_volumes(c, v.instance, err)) == 0) {
			fault_point("volume.attached");
			r = volume_update(c, id, "attach_state = 'attached'", NULL, NULL, err);
		} else {
			if (volume_update(c, id,
			                  "state = 'available', instance = NULL, device = NULL, "
			                  "attach_state = NULL, "
			                  "attach_ms = NULL, state_reason = ?1",
			                  (*err)->msg, NULL, &why) < 0)
				cloud_log_failure(id, why, "cannot record the failed attachment");
			kerr_free(steal_ptr(why));
			if (cloud_instance_sync_volumes(c, v.instance, &why) < 0)
				cloud_log_failure(v.instance, why,
				                  "cannot undo the failed attachment");
		}
		break;
	case VOLUME_DETACH:
		if ((r = cloud_instance_sync_volumes(c, v.instance, err)) == 0) {
			fault_point("volume.detached");
			r = volume_update(c, id,
			                  "state = 'available', instance = NULL, device = NULL, "
			                  "attach_state = NULL, "
			                  "attach_ms = NULL",
			                  NULL, NULL, err);
		}
		break;
	case VOLUME_DELETE: {
		_cleanup_free_ char *dir = cloud_zone_pool_dir(c, v.region, v.zone);
		_cleanup_free_ char *file = cloud_volume_file(v.id);
		pthread_mutex_t *chain = cloud_chain_lock(v.id);
		struct pool *p = NULL;
		pthread_mutex_lock(chain); /* no snapshot of it reads its shadow meanwhile */
		r = -1;
		if (pool_open(dir, NULL, &p, err) == 0 && pool_remove(p, file, err) == 0) {
			if (v.last_snapshot[0]) {
				_cleanup_free_ char *shadow =
				    xasprintf("%s.%s.shadow", v.id, v.last_snapshot);
				if (pool_remove(p, shadow, &why) < 0)
					cloud_log_failure(v.id, why,
					                  "cannot remove the shadow of the volume");
			}
			r = volume_forget(c, &v, err);
		}
		pool_close(p);
		pthread_mutex_unlock(chain);
		break;
	}
	}
	return r;
}

int cloud_volumes_reconcile(struct cloud *c, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(
	        c->db,
	        "SELECT id, state, COALESCE(instance, ''), COALESCE(attach_state, '') FROM volumes "
	        "WHERE state IN ('creating', 'deleting') OR attach_state IN ('attaching', "
	        "'detaching')",
	        &st, err) < 0)
		return -1;
	while ((r = db_step_row(c->db, st, err)) == 1) {
		const char *id = db_text(st, 0), *inst = db_text(st, 2), *att = db_text(st, 3);
		enum volume_state state = volume_state_parse(db_text(st, 1));

		if (state == VOLUME_CREATING) {
			/* A half-made file is remade from the start. */
			_cleanup_free_ struct volume *v = NULL;
			size_t n;
			if (volumes_query(c, "id = ?1", id, NULL, NULL, &v, &n, NULL) == 0 && n) {
				_cleanup_free_ char *dir =
				    cloud_zone_pool_dir(c, v->region, v->zone);
				_cleanup_free_ char *file = cloud_volume_file(id);
				struct pool *p = NULL;
				if (pool_open(dir, NULL, &p, NULL) == 0)
					pool_remove(p, file, NULL);
				pool_close(p);
			}
			r = cloud_submit(c, id, id, volume_job, VOLUME_CREATE, false, err);
		} else if (state == VOLUME_DELETING) {
			r = cloud_submit(c, id, id, volume_job, VOLUME_DELETE, false, err);
		} else {
			r = cloud_submit(c, inst, id, volume_job,
			                 !strcmp(att, "attaching") ? VOLUME_ATTACH : VOLUME_DETACH,
			                 false, err);
		}
		if (r < 0)
			return -1;
	}
	return r < 0 ? -1 : 0;
}

int cloud_volume_not_found(const char *id, struct kerr **err)
{
	return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_VOLUME, id, "volume '%s' not found",
	                  id);
}

void cloud_volumes_io_check(struct cloud *c, const struct volume *v, size_t n, bool *io_ok)
{
	/* Each zone's pool opened once (mounted when it is not: as a launch would). */
	for (size_t i = 0; i < n; i++)
		io_ok[i] = false;
	pthread_mutex_lock(&c->volumes_lock);
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *dir = NULL;
		struct pool *p = NULL;
		bool done = false;

		for (size_t k = 0; k < i && !done; k++)
			done = !strcmp(v[k].zone, v[i].zone) && !strcmp(v[k].region, v[i].region);
		if (done)
			continue;
		dir = cloud_zone_pool_dir(c, v[i].region, v[i].zone);
		if (pool_open(dir, NULL, &p, NULL) < 0)
			continue;
		for (size_t k = i; k < n; k++) {
			_cleanup_free_ char *file = NULL;
			if (strcmp(v[k].zone, v[i].zone) || strcmp(v[k].region, v[i].region))
				continue;
			file = cloud_volume_file(v[k].id);
			io_ok[k] = pool_exists(p, file);
		}
		pool_close(p);
	}
	pthread_mutex_unlock(&c->volumes_lock);
}
