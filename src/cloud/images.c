/* Images: the public base images imported at init, and what an account may see and launch. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/pool.h"
#include "store/store.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

static int first_zone(struct cloud *c, const char *region, struct zone *out, struct kerr **err)
{
	struct topology t;
	int r = -1;

	if (cloud_regions(c, &t, err) < 0)
		return -1;
	for (size_t i = 0; i < t.nzones && r < 0; i++)
		if (!strcmp(t.zones[i].region, region)) {
			*out = t.zones[i];
			r = 0;
		}
	topology_release(&t);
	if (r < 0)
		return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_ZONE, region,
		                  "region '%s' has no zones", region);
	return 0;
}

int cloud_import_public_image(struct cloud *c, const char *region, const char *name,
                              const char *description, const char *source, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *snap = NULL;
	_cleanup_stmt_ sqlite3_stmt *img = NULL;
	_cleanup_free_ char *pool_dir = NULL, *vol = NULL;
	_cleanup_free_ char *base = NULL, *tmpname = NULL;
	struct store_snapshot_opts o = {0};
	struct store_snapshot_result res;
	struct pool *p = NULL;
	struct store *s = NULL;
	struct zone z;
	char ami[ID_MAX], hex[9];
	int r = -1;

	if (first_zone(c, region, &z, err) < 0)
		return -1;
	pool_dir = cloud_zone_pool_dir(c, region, z.name);
	id_random_hex(hex, 8);
	tmpname = xasprintf("import-%s.img", hex);
	if (pool_open(pool_dir, NULL, &p, err) < 0)
		return -1;
	if (pool_import(p, tmpname, source, 0, err) < 0)
		goto out;
	vol = pool_path(p, tmpname);
	if (cloud_store_open(c, region, false, &s, err) < 0 ||
	    store_snapshot(s, vol, &o, &res, err) < 0)
		goto out;
	/* The imported volume stays as the zone's base file: launches there are reflink clones. */
	base = cloud_base_name(res.id);
	if (renameat(p->dirfd, tmpname, p->dirfd, base) < 0) {
		kerr_errno(err, errno, "cannot keep the base of '%s'", name);
		goto out;
	}
	id_new("ami", ami);
	if (db_begin(c->db, err) < 0)
		goto out;
	if (db_prepare(c->db,
	               "INSERT INTO snapshots (id, region, owner, volume_size, state, progress, "
	               "description, "
	               "start_ms) VALUES (?, ?, ?, ?, 'completed', 100, ?, ?)",
	               &snap, err) < 0 ||
	    db_prepare(c->db,
	               "INSERT INTO images (id, region, owner, name, description, state, public, "
	               "root_snapshot, "
	               "root_size, creation_ms) VALUES (?, ?, ?, ?, ?, 'available', 1, ?, ?, ?)",
	               &img, err) < 0) {
		db_rollback(c->db);
		goto out;
	}
	db_bind_text(snap, 1, res.id);
	db_bind_text(snap, 2, region);
	db_bind_text(snap, 3, CLOUD_PROVIDER_ACCOUNT_ID);
	sqlite3_bind_int64(snap, 4, (sqlite3_int64)((res.volume_size + GIB - 1) / GIB));
	db_bind_text(snap, 5, description);
	sqlite3_bind_int64(snap, 6, cloud_now_ms());
	db_bind_text(img, 1, ami);
	db_bind_text(img, 2, region);
	db_bind_text(img, 3, CLOUD_PROVIDER_ACCOUNT_ID);
	db_bind_text(img, 4, name);
	db_bind_text(img, 5, description);
	db_bind_text(img, 6, res.id);
	sqlite3_bind_int64(img, 7, (sqlite3_int64)((res.volume_size + GIB - 1) / GIB));
	sqlite3_bind_int64(img, 8, cloud_now_ms());
	if (db_step_done(c->db, snap, err) < 0 || db_step_done(c->db, img, err) < 0) {
		db_rollback(c->db);
		goto out;
	}
	r = db_commit(c->db, err);
out:
	if (r < 0 && tmpname)
		pool_remove(p, tmpname, NULL);
	cloud_store_close(s, region, "import of a public image");
	pool_close(p);
	return r;
}

static void image_from_row(sqlite3_stmt *st, struct image *im)
{
	memset(im, 0, sizeof(*im));
	str_copy(im->id, db_text(st, 0), sizeof(im->id));
	str_copy(im->region, db_text(st, 1), sizeof(im->region));
	str_copy(im->owner, db_text(st, 2), sizeof(im->owner));
	str_copy(im->owner_alias, db_text(st, 3), sizeof(im->owner_alias));
	str_copy(im->name, db_text(st, 4), sizeof(im->name));
	str_copy(im->description, db_text(st, 5), sizeof(im->description));
	str_copy(im->state, db_text(st, 6), sizeof(im->state));
	im->public = sqlite3_column_int(st, 7) != 0;
	str_copy(im->architecture, db_text(st, 8), sizeof(im->architecture));
	str_copy(im->root_device_name, db_text(st, 9), sizeof(im->root_device_name));
	str_copy(im->root_snapshot, db_text(st, 10), sizeof(im->root_snapshot));
	im->root_size_gib = (uint64_t)sqlite3_column_int64(st, 11);
	im->creation_ms = sqlite3_column_int64(st, 12);
	str_copy(im->source_instance, db_text(st, 13), sizeof(im->source_instance));
	str_copy(im->state_reason, db_text(st, 14), sizeof(im->state_reason));
	im->granted = sqlite3_column_int(st, 15) != 0;
	im->deprecation_ms = sqlite3_column_int64(st, 16);
	cloud_product_codes_split(db_text(st, 17), im->product_codes, &im->nproduct_codes);
}

/* ?2 may see the image: its own, public, or launch permission given to it. */
#define IMAGE_VISIBLE                                                                              \
	"(i.owner = ?2 OR i.public = 1 OR EXISTS (SELECT 1 FROM image_permissions p WHERE "        \
	"p.image = i.id "                                                                          \
	"AND p.grantee IN (?2, 'all'))) "

#define IMAGE_COLUMNS                                                                              \
	"i.id, i.region, i.owner, COALESCE(a.alias, ''), i.name, i.description, i.state, "         \
	"i.public, "                                                                               \
	"i.architecture, i.root_device_name, i.root_snapshot, i.root_size, i.creation_ms, "        \
	"i.source_instance, i.state_reason, "                                                      \
	"EXISTS (SELECT 1 FROM image_permissions g WHERE g.image = i.id AND g.grantee = ?2), "     \
	"i.deprecation_ms, " CLOUD_CODES_OF("i.id") " "                                            \
	                                            "FROM images i "                               \
	                                            "JOIN accounts a ON a.id = i.owner "

/* The mappings beside the root of the images of v: one query for the region (or the one id). */
static int load_volumes(struct cloud *c, const char *region, const char *account, const char *id,
                        struct image *v, size_t n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (!n)
		return 0;
	if (db_prepare(
	        c->db,
	        "SELECT iv.image, iv.device, iv.snapshot, iv.size, iv.delete_on_termination "
	        "FROM image_volumes iv JOIN images i ON i.id = iv.image WHERE i.region = ?1 AND "
	        "(?3 IS NULL OR i.id = ?3) AND " IMAGE_VISIBLE "ORDER BY iv.image, iv.device",
	        &st, err) < 0)
		return -1;
	db_bind_text(st, 1, region);
	db_bind_text(st, 2, account);
	db_bind_text(st, 3, id);
	while ((r = db_step_row(c->db, st, err)) == 1) {
		for (size_t i = 0; i < n; i++) {
			struct image_volume *iv;
			if (strcmp(v[i].id, db_text(st, 0)) || v[i].nvolumes == IMAGE_VOLUMES_MAX)
				continue;
			iv = &v[i].volumes[v[i].nvolumes++];
			str_copy(iv->device, db_text(st, 1), sizeof(iv->device));
			str_copy(iv->snapshot, db_text(st, 2), sizeof(iv->snapshot));
			iv->size_gib = (uint64_t)sqlite3_column_int64(st, 3);
			iv->delete_on_termination = sqlite3_column_int(st, 4) != 0;
			break;
		}
	}
	return r < 0 ? -1 : 0;
}

int cloud_images_visible(struct cloud *c, const char *account, const char *region,
                         struct image **out, size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct image *v = NULL;
	size_t count = 0;
	int r;

	if (db_prepare(c->db,
	               "SELECT " IMAGE_COLUMNS "WHERE i.region = ?1 AND " IMAGE_VISIBLE
	               "ORDER BY i.creation_ms, i.id",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, region);
	db_bind_text(st, 2, account);
	while ((r = db_step_row(c->db, st, err)) == 1) {
		v = xreallocarray(v, count + 1, sizeof(*v));
		image_from_row(st, &v[count++]);
	}
	if (r < 0 || load_volumes(c, region, account, NULL, v, count, err) < 0) {
		free(v);
		return -1;
	}
	*out = v;
	*n = count;
	return 0;
}

int cloud_image_get(struct cloud *c, const char *account, const char *region, const char *id,
                    struct image *out, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db,
	               "SELECT " IMAGE_COLUMNS
	               "WHERE i.region = ?1 AND i.id = ?3 AND " IMAGE_VISIBLE,
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, region);
	db_bind_text(st, 2, account);
	db_bind_text(st, 3, id);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_IMAGE, id,
		                  "image '%s' not found", id);
	image_from_row(st, out);
	return load_volumes(c, region, account, id, out, 1, err);
}

int cloud_import_public_images(struct cloud *c, const char *images_dir, struct kerr **err)
{
	static const struct {
		const char *file, *name, *description;
	} known[] = {
	    {"busybox.tar", "kiln-busybox",
	     "BusyBox static, a tiny Linux userland (kiln base image)"},
	    {"debian-12.tar", "kiln-debian-12",
	     "Debian 12 (bookworm) minbase with OpenSSH (kiln base image)"},
	};
	struct topology t;
	int r = 0;

	if (cloud_regions(c, &t, err) < 0)
		return -1;
	for (size_t k = 0; k < ARRAY_SIZE(known) && r == 0; k++) {
		_cleanup_free_ char *src = xasprintf("%s/%s", images_dir, known[k].file);
		if (access(src, R_OK) < 0)
			continue;
		for (size_t i = 0; i < t.nregions && r == 0; i++)
			r = cloud_import_public_image(c, t.regions[i], known[k].name,
			                              known[k].description, src, err);
	}
	topology_release(&t);
	return r;
}

int64_t cloud_next_creation_ms(struct cloud *c)
{
	_cleanup_stmt_ sqlite3_stmt *last = NULL;
	int64_t now = cloud_now_ms(), max = 0;

	if (db_prepare(c->db, "SELECT COALESCE(MAX(creation_ms), 0) FROM images", &last, NULL) ==
	        0 &&
	    db_step_row(c->db, last, NULL) == 1)
		max = sqlite3_column_int64(last, 0);
	return now > max ? now : max + 1;
}

/* EC2's rule for AMI names: 3 to 128 of letters, digits and ( ) [ ] space . / - ' @ _ */
int cloud_image_name_check(const char *name, struct kerr **err)
{
	if (cloud_image_name_valid(name))
		return 0;
	return kerr_about(err, KERR_INVALID, KERR_SUBJECT_IMAGE_NAME, name,
	                  "image name '%s' is not 3 to 128 characters of letters, numbers and "
	                  "( ) [ ] . / - ' @ _ or spaces",
	                  name);
}

bool cloud_image_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n < 3 || n > 128)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("()[] ./-'@_", *p)))
			return false;
	return true;
}

int cloud_image_insert(struct cloud *c, const struct image *im, const struct image_origin *from,
                       struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *img = NULL, *map = NULL;
	const uint64_t need[QUOTA__COUNT] = {[QUOTA_IMAGES] = 1};

	if (cloud_quota_check(c, im->owner, im->region, need, err) < 0)
		return -1;
	if (db_prepare(c->db,
	               "INSERT INTO images (id, region, owner, name, description, state, public, "
	               "root_device_name, "
	               "root_snapshot, root_size, creation_ms, source_instance, no_reboot, "
	               "copy_of, copy_region, client_token) "
	               "VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	               &img, err) < 0 ||
	    db_prepare(
	        c->db,
	        "INSERT INTO image_volumes (image, device, snapshot, size, delete_on_termination) "
	        "VALUES (?, ?, ?, ?, ?)",
	        &map, err) < 0)
		return -1;
	db_bind_text(img, 1, im->id);
	db_bind_text(img, 2, im->region);
	db_bind_text(img, 3, im->owner);
	db_bind_text(img, 4, im->name);
	db_bind_text(img, 5, im->description);
	db_bind_text(img, 6, im->state);
	db_bind_text(img, 7, im->root_device_name);
	db_bind_text(img, 8, im->root_snapshot);
	sqlite3_bind_int64(img, 9, (sqlite3_int64)im->root_size_gib);
	sqlite3_bind_int64(img, 10, im->creation_ms);
	db_bind_text(img, 11, from && from->instance ? from->instance : "");
	sqlite3_bind_int(img, 12, from && from->no_reboot);
	db_bind_text(img, 13, from && from->copy_of ? from->copy_of : "");
	db_bind_text(img, 14, from && from->copy_region ? from->copy_region : "");
	db_bind_text(img, 15, from ? from->client_token : NULL);
	if (db_step_done(c->db, img, err) < 0) {
		if ((*err)->kind == KERR_CONFLICT)
			kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_IMAGE_NAME, im->name,
			           "image name '%s' is in use by another image of the owner",
			           im->name);
		return -1;
	}
	for (size_t i = 0; i < im->nvolumes; i++) {
		sqlite3_reset(map);
		db_bind_text(map, 1, im->id);
		db_bind_text(map, 2, im->volumes[i].device);
		db_bind_text(map, 3, im->volumes[i].snapshot);
		sqlite3_bind_int64(map, 4, (sqlite3_int64)im->volumes[i].size_gib);
		sqlite3_bind_int(map, 5, im->volumes[i].delete_on_termination);
		if (db_step_done(c->db, map, err) < 0)
			return -1;
	}
	return 0;
}

int cloud_image_register(struct cloud *c, const char *owner, const struct image_request *req,
                         struct image *out, struct kerr **err)
{
	uint64_t snap_size;

	if (cloud_image_name_check(req->name, err) < 0)
		return -1;
	if (cloud_snapshot_usable(c, owner, req->region, req->root_snapshot, true, &snap_size,
	                          err) < 0)
		return -1;
	if (req->root_size_gib && req->root_size_gib < snap_size)
		return kerr_about(
		    err, KERR_INVALID, KERR_SUBJECT_SNAPSHOT, req->root_snapshot,
		    "volume of %llu GiB is smaller than snapshot '%s', expect size >= %llu GiB",
		    (unsigned long long)req->root_size_gib, req->root_snapshot,
		    (unsigned long long)snap_size);
	memset(out, 0, sizeof(*out));
	id_new("ami", out->id);
	str_copy(out->region, req->region, sizeof(out->region));
	str_copy(out->owner, owner, sizeof(out->owner));
	str_copy(out->name, req->name, sizeof(out->name));
	str_copy(out->description, req->description ? req->description : "",
	         sizeof(out->description));
	str_copy(out->state, image_state_name(IMAGE_AVAILABLE), sizeof(out->state));
	str_copy(out->architecture, "x86_64", sizeof(out->architecture));
	str_copy(out->root_device_name, req->root_device_name ? req->root_device_name : "/dev/xvda",
	         sizeof(out->root_device_name));
	str_copy(out->root_snapshot, req->root_snapshot, sizeof(out->root_snapshot));
	out->root_size_gib = req->root_size_gib ? req->root_size_gib : snap_size;
	for (size_t i = 0; i < req->nvolumes; i++) {
		const struct image_volume *iv = &req->volumes[i];
		if (!cloud_device_name_valid(iv->device))
			return kerr_about(err, KERR_INVALID, KERR_SUBJECT_DEVICE, iv->device,
			                  "invalid device name '%s'", iv->device);
		if (cloud_snapshot_usable(c, owner, req->region, iv->snapshot, true, &snap_size,
		                          err) < 0)
			return -1;
		if (iv->size_gib && iv->size_gib < snap_size)
			return kerr_about(
			    err, KERR_INVALID, KERR_SUBJECT_SNAPSHOT, iv->snapshot,
			    "volume of %llu GiB is smaller than snapshot '%s', expect size >= "
			    "%llu GiB",
			    (unsigned long long)iv->size_gib, iv->snapshot,
			    (unsigned long long)snap_size);
		out->volumes[out->nvolumes] = *iv;
		if (!iv->size_gib)
			out->volumes[out->nvolumes].size_gib = snap_size;
		out->nvolumes++;
	}
	if (db_begin(c->db, err) < 0)
		return -1;
	out->creation_ms = cloud_next_creation_ms(c);
	if (cloud_image_insert(c, out, NULL, err) < 0)
		goto on_error;
	if (cloud_tags_put(c, owner, req->region, out->id, req->tags, req->ntags, err) < 0)
		goto on_error;
	if (db_commit(c->db, err) < 0)
		return -1;
	cloud_image_prewarm(c, out->id);
	return 0;

on_error:
	db_rollback(c->db);
	return -1;
}

int cloud_image_deregister(struct cloud *c, const char *owner, const char *region, const char *id,
                           struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *img = NULL, *tags = NULL;
	struct image im;

	if (cloud_image_get(c, owner, region, id, &im, err) < 0)
		return -1;
	if (strcmp(im.owner, owner))
		return kerr_about(err, KERR_AUTH, KERR_SUBJECT_IMAGE, id,
		                  "image '%s' is not the caller's", id);
	if (db_prepare(c->db, "DELETE FROM images WHERE id = ?", &img, err) < 0 ||
	    db_prepare(c->db, "DELETE FROM tags WHERE resource = ?", &tags, err) < 0)
		return -1;
	db_bind_text(img, 1, id);
	db_bind_text(tags, 1, id);
	if (db_begin(c->db, err) < 0)
		return -1;
	if (db_step_done(c->db, tags, err) < 0 || db_step_done(c->db, img, err) < 0) {
		db_rollback(c->db);
		return -1;
	}
	return db_commit(c->db, err);
}

static const struct grant_table image_grants = {
    "image_permissions", "image",
    "UPDATE images SET public = EXISTS (SELECT 1 FROM image_permissions WHERE image = ?1 AND "
    "grantee = 'all') "
    "WHERE id = ?1"};

/* The caller's own image: KERR_NOT_FOUND when it cannot see it, KERR_AUTH when it is another's. */
static int image_owned(struct cloud *c, const char *owner, const char *region, const char *id,
                       struct image *out, struct kerr **err)
{
	if (cloud_image_get(c, owner, region, id, out, err) < 0)
		return -1;
	if (strcmp(out->owner, owner))
		return kerr_about(err, KERR_AUTH, KERR_SUBJECT_IMAGE, id,
		                  "image '%s' is not the caller's", id);
	return 0;
}

int cloud_image_permissions(struct cloud *c, const char *owner, const char *region, const char *id,
                            char (**grantees)[ACCOUNT_ID_LEN + 1], size_t *n, struct kerr **err)
{
	struct image im;

	*grantees = NULL;
	*n = 0;
	if (image_owned(c, owner, region, id, &im, err) < 0)
		return -1;
	return cloud_grants_list(c, &image_grants, id, grantees, n, err);
}

int cloud_image_permit(struct cloud *c, const char *owner, const char *region, const char *id,
                       const char *const *add, size_t nadd, const char *const *remove,
                       size_t nremove, bool reset, struct kerr **err)
{
	struct image im;

	if (image_owned(c, owner, region, id, &im, err) < 0)
		return -1;
	for (size_t i = 0; i < nadd && im.nproduct_codes; i++)
		if (!strcmp(add[i], "all"))
			return kerr_about(
			    err, KERR_INVALID, KERR_SUBJECT_PRODUCT_IMAGE, id,
			    "image '%s' has product code '%s': it cannot be made public", id,
			    im.product_codes[0]);
	return cloud_grants_change(c, &image_grants, id, add, nadd, remove, nremove, reset, err);
}

int cloud_image_describe(struct cloud *c, const char *owner, const char *region, const char *id,
                         const char *description, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct image im;

	if (image_owned(c, owner, region, id, &im, err) < 0 ||
	    db_prepare(c->db, "UPDATE images SET description = ? WHERE id = ?", &st, err) < 0)
		return -1;
	db_bind_text(st, 1, description);
	db_bind_text(st, 2, id);
	return db_step_done(c->db, st, err);
}

static int image_update(struct cloud *c, const char *id, const char *set, int64_t num,
                        struct kerr **err)
{
	_cleanup_free_ char *sql = xasprintf("UPDATE images SET %s WHERE id = ?2", set);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (db_prepare(c->db, sql, &st, err) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, num);
	db_bind_text(st, 2, id);
	return db_step_done(c->db, st, err);
}

int cloud_image_deprecate(struct cloud *c, const char *owner, const char *region, const char *id,
                          int64_t at_ms, struct kerr **err)
{
	struct image im;

	if (image_owned(c, owner, region, id, &im, err) < 0)
		return -1;
	return image_update(c, id, "deprecation_ms = ?1", at_ms, err);
}

int cloud_image_enable(struct cloud *c, const char *owner, const char *region, const char *id,
                       bool enable, struct kerr **err)
{
	struct image im;

	if (image_owned(c, owner, region, id, &im, err) < 0)
		return -1;
	if (image_state_parse(im.state) != (enable ? IMAGE_DISABLED : IMAGE_AVAILABLE))
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_IMAGE, id, "image '%s' is %s",
		                  id, im.state);
	if (enable)
		return image_update(c, id, "state = 'available'", 0, err);
	/* Disabled, it is private: its grants go, as EC2 does it. */
	if (cloud_grants_change(c, &image_grants, id, NULL, 0, NULL, 0, true, err) < 0)
		return -1;
	return image_update(c, id, "state = 'disabled'", 0, err);
}
