/* The regions EC2 has, and how a region of them that the topology did not name comes to be
 * served: on the first request signed for it, its zones, its block store and the public base
 * images (a store copy from a region already served: only missing chunks move). */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/id.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

/* EC2's commercial regions (botocore's endpoints.json, partition aws), the short form of each in
 * its zone ids, the zone letters a new account sees, and whether the region needs an opt-in. */
static const struct region_info {
	const char *name, *short_name, *zones;
	bool opt_in;
} catalog[] = {
    {"us-east-1", "use1", "abcdef", false},     {"us-east-2", "use2", "abc", false},
    {"us-west-1", "usw1", "ab", false},         {"us-west-2", "usw2", "abcd", false},
    {"ca-central-1", "cac1", "abd", false},     {"eu-west-1", "euw1", "abc", false},
    {"eu-west-2", "euw2", "abc", false},        {"eu-west-3", "euw3", "abc", false},
    {"eu-central-1", "euc1", "abc", false},     {"eu-north-1", "eun1", "abc", false},
    {"ap-south-1", "aps1", "abc", false},       {"ap-northeast-1", "apne1", "acd", false},
    {"ap-northeast-2", "apne2", "abcd", false}, {"ap-northeast-3", "apne3", "abc", false},
    {"ap-southeast-1", "apse1", "abc", false},  {"ap-southeast-2", "apse2", "abc", false},
    {"sa-east-1", "sae1", "abc", false},        {"af-south-1", "afs1", "abc", true},
    {"ap-east-1", "ape1", "abc", true},         {"ap-south-2", "aps2", "abc", true},
    {"ap-southeast-3", "apse3", "abc", true},   {"ap-southeast-4", "apse4", "abc", true},
    {"ap-southeast-5", "apse5", "abc", true},   {"ap-southeast-7", "apse7", "abc", true},
    {"ca-west-1", "caw1", "abc", true},         {"eu-central-2", "euc2", "abc", true},
    {"eu-south-1", "eus1", "abc", true},        {"eu-south-2", "eus2", "abc", true},
    {"il-central-1", "ilc1", "abc", true},      {"me-central-1", "mec1", "abc", true},
    {"me-south-1", "mes1", "abc", true},        {"mx-central-1", "mxc1", "abc", true},
};

static const struct region_info *catalog_find(const char *region)
{
	for (size_t i = 0; i < ARRAY_SIZE(catalog); i++)
		if (!strcmp(catalog[i].name, region))
			return &catalog[i];
	return NULL;
}

bool cloud_region_short_name(const char *region, char *out, size_t size)
{
	const struct region_info *r = catalog_find(region);

	if (r)
		str_copy(out, r->short_name, size);
	return r != NULL;
}

/* -1 on error, else whether region is served already. */
static int served(struct cloud *c, const char *region, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	uint64_t gen = db_generation(c->db); /* before the query: see memo.c */
	int r;

	if (cloud_memo_region(c, gen, region))
		return 1;
	if (db_prepare(c->db, "SELECT 1 FROM regions WHERE name = ?", &st, err) < 0)
		return -1;
	db_bind_text(st, 1, region);
	r = db_step_row(c->db, st, err);
	if (r == 1)
		cloud_memo_put_region(c, gen, region);
	return r;
}

int cloud_regions_all(struct cloud *c, struct region_status **out, size_t *n, struct kerr **err)
{
	struct topology t;
	struct region_status *v;
	size_t count = 0;

	if (c->deploy) {
		v = xcalloc(c->deploy->npeers, sizeof(*v));
		for (size_t i = 0; i < c->deploy->npeers; i++) {
			const struct cloud_peer *p = &c->deploy->peers[i];
			const struct region_info *r = catalog_find(p->region);
			bool here = !strcmp(p->region, c->deploy->region);
			str_copy(v[i].name, p->region, sizeof(v->name));
			v[i].opt_in_status = r && r->opt_in ? "opted-in" : "opt-in-not-required";
			v[i].enabled = v[i].served = true;
			if (!here)
				str_copy(v[i].endpoint, p->endpoint, sizeof(v->endpoint));
		}
		*out = v;
		*n = c->deploy->npeers;
		return 0;
	}
	if (cloud_regions(c, &t, err) < 0)
		return -1;
	v = xcalloc(t.nregions + ARRAY_SIZE(catalog), sizeof(*v));
	/* The topology's first, in its order; then the rest of EC2's. */
	for (size_t i = 0; i < t.nregions; i++) {
		const struct region_info *r = catalog_find(t.regions[i]);
		str_copy(v[count].name, t.regions[i], sizeof(v->name));
		v[count].opt_in_status = r && r->opt_in ? "opted-in" : "opt-in-not-required";
		v[count].enabled = v[count].served = true;
		count++;
	}
	for (size_t i = 0; i < ARRAY_SIZE(catalog); i++) {
		bool known = false;
		for (size_t k = 0; k < t.nregions && !known; k++)
			known = !strcmp(t.regions[k], catalog[i].name);
		if (known)
			continue;
		str_copy(v[count].name, catalog[i].name, sizeof(v->name));
		v[count].opt_in_status = catalog[i].opt_in ? "not-opted-in" : "opt-in-not-required";
		v[count].enabled = !catalog[i].opt_in;
		count++;
	}
	topology_release(&t);
	*out = v;
	*n = count;
	return 0;
}

/* The zones of r, each on the next /20 of the region's default VPC from 172.31.0.0/20. */
static int plan_zones(const struct region_info *r, struct zone **out, size_t *n, struct kerr **err)
{
	size_t nz = strlen(r->zones);
	struct zone *z;

	if (nz > VPC_ZONES_MAX)
		return kerr_about(err, KERR_LIMIT, KERR_SUBJECT_REGION, r->name,
		                  "cannot serve region '%s': its %zu zones do not fit its default "
		                  "VPC (%d at most)",
		                  r->name, nz, VPC_ZONES_MAX);
	z = xcalloc(nz, sizeof(*z));
	for (size_t i = 0; i < nz; i++) {
		snprintf(z[i].name, sizeof(z[i].name), "%s%c", r->name, r->zones[i]);
		str_copy(z[i].region, r->name, sizeof(z[i].region));
		snprintf(z[i].zone_id, sizeof(z[i].zone_id), "%s-az%zu", r->short_name, i + 1);
		cloud_zone_subnet(i, z[i].subnet, sizeof(z[i].subnet));
		snprintf(z[i].bridge, sizeof(z[i].bridge), "kb-%.8s%c", r->short_name, r->zones[i]);
	}
	*out = z;
	*n = nz;
	return 0;
}

/* A public base image of the provider in the region served first, and its new ids here. */
struct base_copy {
	char image[ID_MAX], snapshot[ID_MAX], new_image[ID_MAX], new_snapshot[ID_MAX];
	char region[32], name[129], description[256], root_device[32], architecture[16],
	    snap_description[256];
	int64_t root_size, volume_size, creation_ms;
};

static int public_bases(struct cloud *c, struct base_copy **out, size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct base_copy *v = NULL;
	size_t count = 0;
	int r;

	/* The images of the first region (by position) that has any, with no other volumes. */
	if (db_prepare(c->db,
	               "SELECT i.id, i.root_snapshot, i.region, i.name, i.description, "
	               "i.root_device_name, i.architecture, i.root_size, s.volume_size, "
	               "s.description, i.creation_ms FROM images i "
	               "JOIN snapshots s ON s.id = i.root_snapshot JOIN regions r ON r.name = "
	               "i.region WHERE i.owner = ?1 AND i.public = 1 AND i.state = 'available' AND "
	               "NOT EXISTS (SELECT 1 FROM image_volumes v WHERE v.image = i.id AND "
	               "v.snapshot != i.root_snapshot) AND r.position = (SELECT MIN(r2.position) "
	               "FROM regions r2 JOIN images i2 ON i2.region = r2.name WHERE i2.owner = ?1 "
	               "AND i2.public = 1) ORDER BY i.creation_ms",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, CLOUD_PROVIDER_ACCOUNT_ID);
	while ((r = db_step_row(c->db, st, err)) == 1) {
		struct base_copy *b;
		v = xreallocarray(v, count + 1, sizeof(*v));
		b = &v[count++];
		memset(b, 0, sizeof(*b));
		str_copy(b->image, db_text(st, 0), sizeof(b->image));
		str_copy(b->snapshot, db_text(st, 1), sizeof(b->snapshot));
		str_copy(b->region, db_text(st, 2), sizeof(b->region));
		str_copy(b->name, db_text(st, 3), sizeof(b->name));
		str_copy(b->description, db_text(st, 4), sizeof(b->description));
		str_copy(b->root_device, db_text(st, 5), sizeof(b->root_device));
		str_copy(b->architecture, db_text(st, 6), sizeof(b->architecture));
		b->root_size = sqlite3_column_int64(st, 7);
		b->volume_size = sqlite3_column_int64(st, 8);
		str_copy(b->snap_description, db_text(st, 9), sizeof(b->snap_description));
		b->creation_ms = sqlite3_column_int64(st, 10);
		id_new("ami", b->new_image);
		id_new("snap", b->new_snapshot);
	}
	if (r < 0) {
		free(v);
		return -1;
	}
	*out = v;
	*n = count;
	return 0;
}

/* The block store of region with a copy of each base's snapshot: made anew (a store left by a
 * materialization that did not commit belongs to nothing). */
static int copy_bases(struct cloud *c, const char *region, struct base_copy *b, size_t n,
                      struct kerr **err)
{
	_cleanup_free_ char *dir = cloud_store_dir(c, region);
	struct store *dst = NULL;
	int r = 0;

	if (store_location_is_s3(dir) ? cloud_store_make(dir, err) < 0
	                              : fs_remove_tree(dir, err) < 0 || store_init(dir, err) < 0)
		return -1;
	if (store_open(dir, false, &dst, err) < 0)
		return -1;
	for (size_t i = 0; i < n && r == 0; i++) {
		_cleanup_free_ char *src_dir = cloud_store_dir(c, b[i].region);
		struct store_copy_result res;
		struct store *src = NULL;

		r = store_open(src_dir, false, &src, err);
		if (r == 0)
			r = store_copy(src, dst, b[i].snapshot, b[i].new_snapshot, NULL, &res, err);
		cloud_store_close(src, b[i].region, b[i].new_snapshot);
		if (r < 0)
			kerr_wrap(err, "cannot copy public image '%s' into region '%s'", b[i].name,
			          region);
	}
	cloud_store_close(dst, region, "public images");
	return r;
}

static int record(struct cloud *c, const char *region, const struct zone *z, size_t nz,
                  const struct base_copy *b, size_t nb, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *rs = NULL, *zs = NULL, *ss = NULL, *is = NULL;

	if (db_begin(c->db, err) < 0)
		return -1;
	if (db_prepare(c->db,
	               "INSERT INTO regions (name, position) SELECT ?, COALESCE(MAX(position), -1) "
	               "+ 1 FROM regions",
	               &rs, err) < 0 ||
	    db_prepare(
	        c->db,
	        "INSERT INTO zones (name, region, zone_id, subnet, bridge) VALUES (?, ?, ?, ?, ?)",
	        &zs, err) < 0 ||
	    db_prepare(c->db,
	               "INSERT INTO snapshots (id, region, owner, volume_size, state, progress, "
	               "description, start_ms, copy_of) VALUES (?, ?, ?, ?, 'completed', 100, ?, "
	               "?, ?)",
	               &ss, err) < 0 ||
	    db_prepare(c->db,
	               "INSERT INTO images (id, region, owner, name, description, state, public, "
	               "root_device_name, architecture, root_snapshot, root_size, creation_ms) "
	               "VALUES (?, ?, ?, ?, ?, 'available', 1, ?, ?, ?, ?, ?)",
	               &is, err) < 0)
		goto on_error;
	db_bind_text(rs, 1, region);
	if (db_step_done(c->db, rs, err) < 0)
		goto on_error;
	for (size_t i = 0; i < nz; i++) {
		sqlite3_reset(zs);
		db_bind_text(zs, 1, z[i].name);
		db_bind_text(zs, 2, z[i].region);
		db_bind_text(zs, 3, z[i].zone_id);
		db_bind_text(zs, 4, z[i].subnet);
		db_bind_text(zs, 5, z[i].bridge);
		if (db_step_done(c->db, zs, err) < 0)
			goto on_error;
	}
	for (size_t i = 0; i < nb; i++) {
		_cleanup_free_ char *from = xasprintf("%s/%s", b[i].region, b[i].snapshot);
		sqlite3_reset(ss);
		sqlite3_reset(is);
		db_bind_text(ss, 1, b[i].new_snapshot);
		db_bind_text(ss, 2, region);
		db_bind_text(ss, 3, CLOUD_PROVIDER_ACCOUNT_ID);
		sqlite3_bind_int64(ss, 4, b[i].volume_size);
		db_bind_text(ss, 5, b[i].snap_description);
		sqlite3_bind_int64(ss, 6, cloud_now_ms());
		db_bind_text(ss, 7, from);
		db_bind_text(is, 1, b[i].new_image);
		db_bind_text(is, 2, region);
		db_bind_text(is, 3, CLOUD_PROVIDER_ACCOUNT_ID);
		db_bind_text(is, 4, b[i].name);
		db_bind_text(is, 5, b[i].description);
		db_bind_text(is, 6, b[i].root_device);
		db_bind_text(is, 7, b[i].architecture);
		db_bind_text(is, 8, b[i].new_snapshot);
		sqlite3_bind_int64(is, 9, b[i].root_size);
		/* distinct in the source region, so distinct here too */
		sqlite3_bind_int64(is, 10, b[i].creation_ms);
		if (db_step_done(c->db, ss, err) < 0 || db_step_done(c->db, is, err) < 0)
			goto on_error;
	}
	return db_commit(c->db, err);

on_error:
	db_rollback(c->db);
	return -1;
}

static int materialize(struct cloud *c, const struct region_info *r, struct kerr **err)
{
	_cleanup_free_ struct zone *zones = NULL;
	_cleanup_free_ struct base_copy *bases = NULL;
	size_t nz = 0, nb = 0;

	if (plan_zones(r, &zones, &nz, err) < 0 || public_bases(c, &bases, &nb, err) < 0 ||
	    copy_bases(c, r->name, bases, nb, err) < 0 ||
	    record(c, r->name, zones, nz, bases, nb, err) < 0)
		return kerr_wrap(err, "cannot serve region '%s'", r->name);
	{
		struct log_ctx ctx = {.resource = r->name};
		log_event(LOG_LEVEL_INFO, &ctx,
		          "region served from now on: %zu zones, %zu public images", nz, nb);
	}
	/* Their bases come into the zones in the background; a launch first restores its own. */
	for (size_t i = 0; i < nb; i++)
		cloud_image_prewarm(c, bases[i].new_image);
	return 0;
}

int cloud_region_open(struct cloud *c, const char *region, struct kerr **err)
{
	const struct region_info *r;
	const struct cloud_peer *peer = cloud_peer_find(c, region);
	int rc;

	/* One region of several deployments: requests for another go to its own. */
	if (peer)
		return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_REGION, region,
		                  "the region '%s' is served by another deployment: %s", region,
		                  peer->endpoint);
	if (c->deploy && strcmp(region, c->deploy->region))
		return kerr_about(
		    err, KERR_NOT_FOUND, KERR_SUBJECT_REGION, region,
		    "the region '%s' is not served here (this deployment serves '%s')", region,
		    c->deploy->region);
	rc = served(c, region, err);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	r = catalog_find(region);
	if (!r)
		return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_REGION, region,
		                  "the region '%s' is not served here", region);
	if (r->opt_in) /* EC2 refuses an account's requests there until it opts in */
		return kerr_about(err, KERR_AUTH, KERR_SUBJECT_REGION, region,
		                  "the region '%s' needs an opt-in: name it in the topology "
		                  "(kiln init --topology) to serve it",
		                  region);
	pthread_mutex_lock(&c->regions_lock);
	rc = served(c, region, err); /* a request before this one may have made it */
	if (rc == 0)
		rc = materialize(c, r, err);
	pthread_mutex_unlock(&c->regions_lock);
	return rc < 0 ? -1 : 0;
}
