/* Images: the public base images imported at init, and what an account may see and launch. */
#include "cloud.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pool/pool.h"
#include "store/store.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define GIB ((uint64_t)1 << 30)

char *cloud_zone_pool_dir(const struct cloud *c, const char *region, const char *zone)
{
	return xasprintf("%s/regions/%s/pools/%s", c->data_dir, region, zone);
}

char *cloud_store_dir(const struct cloud *c, const char *region)
{
	return xasprintf("%s/regions/%s/store", c->data_dir, region);
}

char *cloud_base_name(const char *snapshot_id)
{
	return xasprintf("base-%s.img", snapshot_id);
}

int64_t cloud_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
		return kerr_set(err, KERR_NOT_FOUND, "region '%s' has no zones", region);
	return 0;
}

int cloud_import_public_image(struct cloud *c, const char *region, const char *name, const char *description,
			      const char *source, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *snap = NULL;
	_cleanup_stmt_ sqlite3_stmt *img = NULL;
	_cleanup_free_ char *pool_dir = NULL, *store_dir = cloud_store_dir(c, region), *vol = NULL;
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
	if (store_open(store_dir, false, &s, err) < 0 || store_snapshot(s, vol, &o, &res, err) < 0)
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
	if (db_prepare(c->db, "INSERT INTO snapshots (id, region, owner, volume_size, state, progress, description, "
			      "start_ms) VALUES (?, ?, ?, ?, 'completed', 100, ?, ?)", &snap, err) < 0 ||
	    db_prepare(c->db, "INSERT INTO images (id, region, owner, name, description, state, public, root_snapshot, "
			      "root_size, creation_ms) VALUES (?, ?, ?, ?, ?, 'available', 1, ?, ?, ?)", &img, err) < 0) {
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
	store_close(s);
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
}

#define IMAGE_COLUMNS                                                                                  \
	"i.id, i.region, i.owner, COALESCE(a.alias, ''), i.name, i.description, i.state, i.public, "        \
	"i.architecture, i.root_device_name, i.root_snapshot, i.root_size, i.creation_ms FROM images i "     \
	"JOIN accounts a ON a.id = i.owner "

int cloud_images_visible(struct cloud *c, const char *account, const char *region, struct image **out,
			 size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct image *v = NULL;
	size_t count = 0;
	int r;

	if (db_prepare(c->db, "SELECT " IMAGE_COLUMNS "WHERE i.region = ? AND (i.owner = ? OR i.public = 1) "
			      "ORDER BY i.creation_ms, i.id", &st, err) < 0)
		return -1;
	db_bind_text(st, 1, region);
	db_bind_text(st, 2, account);
	while ((r = db_step_row(c->db, st, err)) == 1) {
		v = xreallocarray(v, count + 1, sizeof(*v));
		image_from_row(st, &v[count++]);
	}
	if (r < 0) {
		free(v);
		return -1;
	}
	*out = v;
	*n = count;
	return 0;
}

int cloud_image_get(struct cloud *c, const char *account, const char *region, const char *id, struct image *out,
		    struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db, "SELECT " IMAGE_COLUMNS "WHERE i.id = ? AND i.region = ? AND (i.owner = ? OR i.public = 1)",
		       &st, err) < 0)
		return -1;
	db_bind_text(st, 1, id);
	db_bind_text(st, 2, region);
	db_bind_text(st, 3, account);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return kerr_set(err, KERR_NOT_FOUND, "The image id '[%s]' does not exist", id);
	image_from_row(st, out);
	return 0;
}

int cloud_import_public_images(struct cloud *c, const char *images_dir, struct kerr **err)
{
	static const struct {
		const char *file, *name, *description;
	} known[] = {
		{"busybox.tar", "kiln-busybox", "BusyBox static, a tiny Linux userland (kiln base image)"},
		{"debian-12.tar", "kiln-debian-12", "Debian 12 (bookworm) minbase with OpenSSH (kiln base image)"},
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
			r = cloud_import_public_image(c, t.regions[i], known[k].name, known[k].description, src, err);
	}
	topology_release(&t);
	return r;
}
