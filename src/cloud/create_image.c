/* CreateImage: an image of an instance, one snapshot per attached volume. The request records
 * the image and its snapshots as pending; a worker holding the instance's job lock stops a
 * running instance (or, with NoReboot, freezes its root while the copy is taken), takes every
 * point-in-time copy, starts the instance again, then stores the snapshots (incremental against
 * each volume's previous one) and makes the image available. The rows are the job's record: a
 * restarted daemon resumes it (cloud_images_reconcile). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/fault.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

static bool excluded(const struct create_image_request *req, const char *device)
{
	for (size_t i = 0; i < req->nno_device; i++)
		if (!strcmp(req->no_device[i], device))
			return true;
	return false;
}

static int image_set(struct cloud *c, const char *id, const char *set, const char *text,
                     struct kerr **err)
{
	_cleanup_free_ char *sql = xasprintf("UPDATE images SET %s WHERE id = ?2", set);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (db_prepare(c->db, sql, &st, err) < 0)
		return -1;
	db_bind_text(st, 1, text);
	db_bind_text(st, 2, id);
	return db_step_done(c->db, st, err);
}

static int image_job(struct cloud *c, const char *id, int kind, bool force, struct kerr **err);

/* The job stopped the instance and has not started it again (a crash came between). */
static bool im_restart_pending(struct cloud *c, const char *id)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (db_prepare(c->db, "SELECT restart_instance FROM images WHERE id = ?", &st, NULL) < 0)
		return false;
	db_bind_text(st, 1, id);
	return db_step_row(c->db, st, NULL) == 1 && sqlite3_column_int(st, 0) != 0;
}

/* Rows of the image and its pending snapshots, in the caller's transaction. */
static int record(struct cloud *c, const char *owner, const struct create_image_request *req,
                  const struct instance *in, const struct volume *vols, size_t n, struct image *out,
                  struct kerr **err)
{
	char snaps[IMAGE_VOLUMES_MAX + 1][ID_MAX];
	size_t root = n;

	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *desc = xasprintf("Created by CreateImage(%s) for %s from %s",
		                                      in->id, out->id, vols[i].id);
		if (cloud_snapshot_insert(c, owner, &vols[i], desc, out->id, snaps[i], err) < 0 ||
		    cloud_tags_put(c, owner, req->region, snaps[i], req->snapshot_tags,
		                   req->nsnapshot_tags, err) < 0)
			return -1;
		if (!strcmp(vols[i].device, ROOT_DEVICE))
			root = i;
	}
	if (root == n)
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_INSTANCE, in->id,
		                  "instance '%s' has no root volume", in->id);
	str_copy(out->root_snapshot, snaps[root], sizeof(out->root_snapshot));
	out->root_size_gib = vols[root].size_gib;
	for (size_t i = 0; i < n; i++) {
		struct image_volume *iv;
		if (i == root)
			continue;
		iv = &out->volumes[out->nvolumes++];
		str_copy(iv->device, vols[i].device, sizeof(iv->device));
		str_copy(iv->snapshot, snaps[i], sizeof(iv->snapshot));
		iv->size_gib = vols[i].size_gib;
		iv->delete_on_termination = true;
	}
	{
		const struct image_origin from = {.instance = in->id, .no_reboot = req->no_reboot};
		if (cloud_image_insert(c, out, &from, err) < 0)
			return -1;
	}
	return cloud_tags_put(c, owner, req->region, out->id, req->image_tags, req->nimage_tags,
	                      err);
}

int cloud_image_create(struct cloud *c, const char *owner, const struct create_image_request *req,
                       struct image *out, struct kerr **err)
{
	_cleanup_free_ struct volume *all = NULL;
	struct volume vols[IMAGE_VOLUMES_MAX + 1];
	struct instance in;
	size_t n = 0, nall;

	if (cloud_image_name_check(req->name, err) < 0)
		return -1;
	if (cloud_instance_get(c, req->instance, &in, err) < 0 || strcmp(in.owner, owner) ||
	    strcmp(in.region, req->region))
		return cloud_instance_not_found(req->instance, err);
	if (!instance_state_stable(instance_state_parse(in.state)))
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_INSTANCE, in.id,
		                  "cannot make an image of instance '%s': it is %s", in.id,
		                  in.state);
	if (cloud_instance_volumes(c, in.id, &all, &nall, err) < 0)
		return -1;
	for (size_t i = 0; i < nall; i++) {
		if (!strcmp(all[i].attach_state, "detaching") ||
		    (strcmp(all[i].device, ROOT_DEVICE) && excluded(req, all[i].device)))
			continue;
		if (n == IMAGE_VOLUMES_MAX + 1)
			return kerr_about(err, KERR_LIMIT, KERR_SUBJECT_INSTANCE, in.id,
			                  "kiln images hold at most %d volumes",
			                  IMAGE_VOLUMES_MAX + 1);
		vols[n++] = all[i];
	}
	memset(out, 0, sizeof(*out));
	id_new("ami", out->id);
	str_copy(out->region, req->region, sizeof(out->region));
	str_copy(out->owner, owner, sizeof(out->owner));
	str_copy(out->name, req->name, sizeof(out->name));
	str_copy(out->description, req->description ? req->description : "",
	         sizeof(out->description));
	str_copy(out->state, image_state_name(IMAGE_PENDING), sizeof(out->state));
	str_copy(out->architecture, "x86_64", sizeof(out->architecture));
	str_copy(out->root_device_name, ROOT_DEVICE, sizeof(out->root_device_name));
	str_copy(out->source_instance, in.id, sizeof(out->source_instance));
	if (db_begin(c->db, err) < 0)
		return -1;
	out->creation_ms = cloud_next_creation_ms(c);
	if (record(c, owner, req, &in, vols, n, out, err) < 0) {
		db_rollback(c->db);
		return -1;
	}
	if (db_commit(c->db, err) < 0)
		return -1;
	return cloud_submit(c, in.id, out->id, image_job, 0, false, err);
}

int cloud_image_snapshots(struct cloud *c, const char *image, char (**ids)[ID_MAX], size_t *n,
                          struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	*ids = NULL;
	*n = 0;
	if (db_prepare(c->db, "SELECT id FROM snapshots WHERE for_image = ? ORDER BY id", &st,
	               err) < 0)
		return -1;
	db_bind_text(st, 1, image);
	while ((r = db_step_row(c->db, st, err)) == 1) {
		*ids = xreallocarray(*ids, *n + 1, sizeof(**ids));
		str_copy((*ids)[(*n)++], db_text(st, 0), ID_MAX);
	}
	return r < 0 ? -1 : 0;
}

/* Take the copies: the instance stopped for them unless no_reboot, started again after. */
static int take_copies(struct cloud *c, const struct image *im, bool no_reboot,
                       char (*snaps)[ID_MAX], size_t n, struct kerr **err)
{
	struct instance in;
	enum instance_state state;
	bool restart = false;
	int r = 0;

	if (cloud_instance_get(c, im->source_instance, &in, err) < 0)
		return -1;
	state = instance_state_parse(in.state);
	if (state == INSTANCE_RUNNING && !no_reboot) {
		/* Remember before acting: after a crash the restart still happens. */
		if (image_set(c, im->id, "restart_instance = 1", NULL, err) < 0 ||
		    cloud_instance_halt(c, in.id, err) < 0)
			return -1;
		restart = true;
	} else if (!instance_state_stable(state)) {
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_INSTANCE, in.id,
		                  "instance '%s' became %s", in.id, in.state);
	}
	for (size_t i = 0; i < n && r == 0; i++)
		r = cloud_point_in_time_for_snapshot(c, snaps[i], err);
	fault_point("image.copied");
	if (restart || im_restart_pending(c, im->id)) {
		_cleanup_kerr_ struct kerr *why = NULL;
		if (cloud_instance_boot(c, in.id, &why) < 0)
			cloud_log_failure(
			    in.id, why, "cannot start the instance again after its image's copies");
		else if (image_set(c, im->id, "restart_instance = 0", NULL, &why) < 0)
			cloud_log_failure(im->id, why, "cannot record the restart of the instance");
	}
	return r;
}

/* Record the failure of the image (and of its snapshots still pending) with the reason. */
static void image_failed(struct cloud *c, const char *id, char (*snaps)[ID_MAX], size_t n,
                         const struct kerr *e)
{
	_cleanup_kerr_ struct kerr *why = NULL;
	char reason[1100];

	snprintf(reason, sizeof(reason), "Server.InternalError: %.1000s",
	         e ? e->msg : "unknown error");
	if (image_set(c, id, "state = 'failed', state_reason = ?1", reason, &why) < 0)
		cloud_log_failure(id, why, "cannot record the failure of the image");
	/* Its snapshots that did not complete are of no use: they end in error, copies gone. */
	for (size_t i = 0; i < n; i++)
		cloud_snapshot_abandon(c, snaps[i], reason);
}

static int image_job(struct cloud *c, const char *id, int kind, bool force, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ char(*snaps)[ID_MAX] = NULL;
	struct image im;
	bool no_reboot = false;
	size_t n = 0;
	int r;

	(void)kind;
	(void)force;
	if (db_prepare(
	        c->db,
	        "SELECT no_reboot, owner, region FROM images WHERE id = ? AND state = 'pending'",
	        &st, err) < 0)
		return -1;
	db_bind_text(st, 1, id);
	r = db_step_row(c->db, st, err);
	if (r <= 0)
		return r; /* done already */
	no_reboot = sqlite3_column_int(st, 0) != 0;
	if (cloud_image_get(c, db_text(st, 1), db_text(st, 2), id, &im, err) < 0 ||
	    cloud_image_snapshots(c, id, &snaps, &n, err) < 0) {
		image_failed(c, id, NULL, 0, *err);
		return -1;
	}
	r = take_copies(c, &im, no_reboot, snaps, n, err);
	for (size_t i = 0; i < n && r == 0; i++) {
		/* Shutdown: the rest waits for the next start (stored snapshots are skipped). */
		if (cloud_jobs_stopping(c))
			return 0;
		r = cloud_snapshot_store(c, snaps[i], err);
	}
	if (r < 0) {
		image_failed(c, id, snaps, n, *err);
		return -1;
	}
	if (image_set(c, id, "state = 'available'", NULL, err) < 0)
		return -1;
	cloud_image_prewarm(c, id);
	return 0;
}

int cloud_images_reconcile(struct cloud *c, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db,
	               "SELECT id, source_instance FROM images WHERE state = 'pending' AND "
	               "source_instance != ''",
	               &st, err) < 0)
		return -1;
	while ((r = db_step_row(c->db, st, err)) == 1)
		if (cloud_submit(c, db_text(st, 1), db_text(st, 0), image_job, 0, false, err) < 0)
			return -1;
	return r < 0 ? -1 : 0;
}
