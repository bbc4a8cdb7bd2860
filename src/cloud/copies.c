/* CopySnapshot and CopyImage: a snapshot (or every snapshot of an image) of another region
 * becomes a new one here, pending at once; a worker moves only the chunks this region's store
 * lacks (store_copy), then the copies are completed and the image available. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "util/cleanup.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

/* The row of a pending copy of src_region/src (inside the caller's transaction). */
static int copy_insert(struct cloud *c, const char *owner, const char *region,
                       const char *src_region, const char *src, uint64_t size_gib,
                       const char *description, const char *for_image, char id[ID_MAX],
                       struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	const uint64_t need[QUOTA__COUNT] = {[QUOTA_SNAPSHOTS] = 1};

	if (cloud_quota_check(c, owner, region, need, err) < 0)
		return -1;
	id_new("snap", id);
	if (db_prepare(c->db,
	               "INSERT INTO snapshots (id, region, owner, volume_id, volume_size, state, "
	               "progress, "
	               "description, start_ms, for_image, copy_of, copy_region) VALUES (?, ?, ?, "
	               "'" CLOUD_COPY_VOLUME_ID "', ?, 'pending', 0, "
	               "?, ?, ?, ?, ?)",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, id);
	db_bind_text(st, 2, region);
	db_bind_text(st, 3, owner);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)size_gib);
	db_bind_text(st, 5, description ? description : "");
	sqlite3_bind_int64(st, 6, cloud_now_ms());
	db_bind_text(st, 7, for_image ? for_image : "");
	db_bind_text(st, 8, src);
	db_bind_text(st, 9, src_region);
	return db_step_done(c->db, st, err);
}

/* The store work of a pending copy: from the source region's store into region's, only the
 * chunks this one lacks. */
int cloud_copy_store(struct cloud *c, const char *id, const char *region, const char *src_region,
                     const char *src_id, const struct store_progress *progress,
                     uint64_t *bytes_sent, struct kerr **err)
{
	_cleanup_free_ char *src_dir = cloud_store_dir(c, src_region);
	_cleanup_free_ char *dst_dir = cloud_store_dir(c, region);
	const struct cloud_peer *peer = cloud_peer_find(c, src_region);
	struct store_copy_result res;
	struct store *src = NULL, *dst = NULL;
	int r = -1;

	if (peer) {
		/* The account and the image it copies: the source deployment checks them. */
		_cleanup_stmt_ sqlite3_stmt *st = NULL;
		if (db_prepare(c->db,
		               "SELECT s.owner, COALESCE(i.copy_of, '') FROM snapshots s LEFT JOIN "
		               "images i ON i.id = s.for_image WHERE s.id = ?",
		               &st, err) < 0)
			return -1;
		db_bind_text(st, 1, id);
		if ((r = db_step_row(c->db, st, err)) <= 0)
			return r < 0 ? -1
			             : kerr_set(err, KERR_NOT_FOUND, "snapshot '%s' not found", id);
		return cloud_peer_copy_store(c, peer, db_text(st, 0), db_text(st, 1), src_id, id,
		                             region, progress, bytes_sent, err);
	}
	if (store_open(src_dir, false, &src, err) == 0 &&
	    store_open(dst_dir, false, &dst, err) == 0)
		r = store_copy(src, dst, src_id, id, progress, &res, err);
	cloud_store_close(src, src_region, id);
	cloud_store_close(dst, region, id);
	if (r == 0)
		*bytes_sent = res.bytes_sent;
	return r;
}

/* A snapshot with a product code is copied by its owner only (AWS: copies of marketplace
 * images within the account keep their codes; to another account they are refused). */
int cloud_copy_product_check(struct cloud *c, const char *owner, const char *snapshot,
                             struct kerr **err)
{
	char codes[PRODUCT_CODES_MAX][PRODUCT_CODE_LEN + 1];
	size_t n;
	int r;

	if (cloud_product_codes(c, snapshot, codes, &n, err) < 0)
		return -1;
	if (!n)
		return 0;
	r = cloud_sql_exists(c, err, "SELECT 1 FROM snapshots WHERE id = ? AND owner = ?", 2,
	                     snapshot, owner);
	if (r < 0)
		return -1;
	if (r == 0)
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_PRODUCT_IMAGE, snapshot,
		                  "snapshot '%s' has product code '%s': another account cannot "
		                  "copy it",
		                  snapshot, codes[0]);
	return 0;
}

static int snapshot_copy_job(struct cloud *c, const char *id, int kind, bool force,
                             struct kerr **err)
{
	(void)kind;
	(void)force;
	return cloud_snapshot_store(c, id, err);
}

int cloud_snapshot_copy_from(struct cloud *c, const char *owner, const char *region,
                             const char *src_region, const char *src, const char *description,
                             const struct tag *tags, size_t ntags, char id[ID_MAX],
                             struct kerr **err)
{
	const struct cloud_peer *peer = cloud_peer_find(c, src_region);
	uint64_t size;

	if (peer) {
		if (cloud_peer_snapshot_size(c, peer, owner, src, &size, err) < 0)
			return -1;
	} else if (!cloud_region_known(c, src_region)) {
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_REGION, src_region,
		                  "source region '%s' is not served here", src_region);
	} else if (cloud_snapshot_usable(c, owner, src_region, src, false, &size, err) < 0 ||
	           cloud_copy_product_check(c, owner, src, err) < 0) {
		return -1;
	}
	if (db_begin(c->db, err) < 0)
		return -1;
	if (copy_insert(c, owner, region, src_region, src, size, description, NULL, id, err) < 0 ||
	    cloud_tags_put(c, owner, region, id, tags, ntags, err) < 0) {
		db_rollback(c->db);
		return -1;
	}
	if (db_commit(c->db, err) < 0)
		return -1;
	return cloud_submit(c, id, id, snapshot_copy_job, 0, false, err);
}

static int image_state(struct cloud *c, const char *id, enum image_state state, const char *reason,
                       struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (db_prepare(c->db, "UPDATE images SET state = ?, state_reason = ? WHERE id = ?", &st,
	               err) < 0)
		return -1;
	db_bind_text(st, 1, image_state_name(state));
	db_bind_text(st, 2, reason ? reason : "");
	db_bind_text(st, 3, id);
	return db_step_done(c->db, st, err);
}

/* Every snapshot of the image, then the image available; on failure the image is failed with
 * the reason, its snapshots abandoned. Stopped at shutdown between two snapshots, it stays
 * pending (the next start resumes it: stored snapshots are skipped). */
static int image_copy_job(struct cloud *c, const char *id, int kind, bool force, struct kerr **err)
{
	_cleanup_free_ char(*snaps)[ID_MAX] = NULL;
	char reason[1100];
	size_t n = 0;
	int r;

	(void)kind;
	(void)force;
	r = cloud_image_snapshots(c, id, &snaps, &n, err);
	for (size_t i = 0; i < n && r == 0; i++) {
		if (cloud_jobs_stopping(c))
			return 0;
		r = cloud_snapshot_store(c, snaps[i], err);
	}
	if (r == 0) {
		if (image_state(c, id, IMAGE_AVAILABLE, NULL, err) < 0)
			return -1;
		cloud_image_prewarm(c, id);
		return 0;
	}
	snprintf(reason, sizeof(reason), "Server.InternalError: %.1000s",
	         *err ? (*err)->msg : "the copy failed");
	for (size_t i = 0; i < n; i++)
		cloud_snapshot_abandon(c, snaps[i], reason);
	{
		_cleanup_kerr_ struct kerr *why = NULL;
		if (image_state(c, id, IMAGE_FAILED, reason, &why) < 0)
			cloud_log_failure(id, why, "cannot record the failure of the copy");
	}
	return -1;
}

/* How EC2 describes the snapshots of a copied image. */
static char *copy_description(const char *ami, const struct image *src, const char *src_region,
                              const char *snap)
{
	return xasprintf("Copied for DestinationAmi %s from SourceAmi %s for SourceSnapshot %s. "
	                 "Task created on %s.",
	                 ami, src->id, snap, src_region);
}

int cloud_image_copy(struct cloud *c, const char *owner, const struct copy_image_request *req,
                     struct image *out, struct kerr **err)
{
	const struct cloud_peer *peer = cloud_peer_find(c, req->src_region);
	struct image src;
	char root[ID_MAX];
	int r;

	if (!peer && !cloud_region_known(c, req->src_region))
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_REGION, req->src_region,
		                  "source region '%s' is not served here", req->src_region);
	if (cloud_image_name_check(req->name, err) < 0)
		return -1;
	if (req->client_token) {
		char done[ID_MAX];
		r = cloud_token_id(c, "images", owner, req->region, req->client_token, done, err);
		if (r < 0)
			return -1;
		if (r == 1)
			return cloud_image_get(c, owner, req->region, done, out, err);
	}
	if (peer ? cloud_peer_image(c, peer, owner, req->src_image, &src, err) < 0
	         : cloud_image_get(c, owner, req->src_region, req->src_image, &src, err) < 0)
		return -1;
	if (image_state_parse(src.state) != IMAGE_AVAILABLE)
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_IMAGE, src.id,
		                  "image '%s' is %s, not available", src.id, src.state);
	if (src.nproduct_codes && strcmp(src.owner, owner))
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_PRODUCT_IMAGE, src.id,
		                  "image '%s' has product code '%s': another account cannot copy "
		                  "it; launch it and create an image of the instance instead",
		                  src.id, src.product_codes[0]);
	*out = src;
	id_new("ami", out->id);
	str_copy(out->region, req->region, sizeof(out->region));
	str_copy(out->owner, owner, sizeof(out->owner));
	out->owner_alias[0] = '\0';
	str_copy(out->name, req->name, sizeof(out->name));
	str_copy(out->description, req->description ? req->description : src.description,
	         sizeof(out->description));
	str_copy(out->state, image_state_name(IMAGE_PENDING), sizeof(out->state));
	out->public = out->granted = false;
	out->source_instance[0] = out->state_reason[0] = '\0';
	if (db_begin(c->db, err) < 0)
		return -1;
	out->creation_ms = cloud_next_creation_ms(c);
	{
		_cleanup_free_ char *d =
		    copy_description(out->id, &src, req->src_region, src.root_snapshot);
		if (copy_insert(c, owner, req->region, req->src_region, src.root_snapshot,
		                src.root_size_gib, d, out->id, root, err) < 0)
			goto on_error;
	}
	str_copy(out->root_snapshot, root, sizeof(out->root_snapshot));
	for (size_t i = 0; i < src.nvolumes; i++) {
		_cleanup_free_ char *d =
		    copy_description(out->id, &src, req->src_region, src.volumes[i].snapshot);
		if (copy_insert(c, owner, req->region, req->src_region, src.volumes[i].snapshot,
		                src.volumes[i].size_gib, d, out->id, out->volumes[i].snapshot,
		                err) < 0)
			goto on_error;
	}
	{
		const struct image_origin from = {.copy_of = src.id,
		                                  .copy_region = req->src_region,
		                                  .client_token = req->client_token};
		if (cloud_image_insert(c, out, &from, err) < 0)
			goto on_error;
	}
	if (cloud_tags_put(c, owner, req->region, out->id, req->tags, req->ntags, err) < 0)
		goto on_error;
	if (db_commit(c->db, err) < 0)
		return -1;
	return cloud_submit(c, out->id, out->id, image_copy_job, 0, false, err);

on_error:
	db_rollback(c->db);
	return -1;
}

int cloud_copies_reconcile(struct cloud *c, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db, "SELECT id FROM images WHERE state = 'pending' AND copy_of != ''",
	               &st, err) < 0)
		return -1;
	while ((r = db_step_row(c->db, st, err)) == 1)
		if (cloud_submit(c, db_text(st, 0), db_text(st, 0), image_copy_job, 0, false, err) <
		    0)
			return -1;
	return r < 0 ? -1 : 0;
}
