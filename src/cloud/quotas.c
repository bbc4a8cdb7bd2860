/* Per-account quotas, counted per region as EC2 counts them: vCPUs of running instances, volumes
 * and their size, snapshots, images. The topology sets them ("quota NAME VALUE"); every check
 * runs inside the transaction that adds the resources, so two requests cannot both pass. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"
#include "util/cleanup.h"
#include "util/banned.h"

/* The defaults are EC2's for a new account (Service Quotas), far above what the tests, the
 * demo and the benchmarks use. */
static const struct {
	const char *name;  /* in the topology */
	const char *unit;  /* what it counts, for messages */
	uint64_t fallback; /* when the topology does not say */
	/* Rows (instance type or NULL, amount) in use, with ?1 the owner and ?2 the region; a type
	 * weighs its vCPUs. */
	const char *usage;
	enum kerr_subject subject; /* of the error when it is exceeded */
} quotas[QUOTA__COUNT] = {
    [QUOTA_VCPUS] = {"running-vcpus", "vCPUs of running instances", 32,
                     "SELECT type, COUNT(*) FROM instances WHERE owner = ?1 AND region = ?2 AND "
                     "state IN ('pending', 'running', 'stopping', 'shutting-down') GROUP BY type",
                     KERR_SUBJECT_QUOTA_VCPUS},
    [QUOTA_VOLUMES] = {"volumes", "volumes", 5000,
                       "SELECT NULL, COUNT(*) FROM volumes WHERE owner = ?1 AND region = ?2",
                       KERR_SUBJECT_QUOTA_VOLUMES},
    [QUOTA_VOLUME_GIB] = {"volume-gib", "GiB of volumes", 50 * 1024,
                          "SELECT NULL, COALESCE(SUM(size), 0) FROM volumes "
                          "WHERE owner = ?1 AND region = ?2",
                          KERR_SUBJECT_QUOTA_VOLUME_GIB},
    [QUOTA_SNAPSHOTS] = {"snapshots", "snapshots", 100000,
                         "SELECT NULL, COUNT(*) FROM snapshots WHERE owner = ?1 AND region = ?2",
                         KERR_SUBJECT_QUOTA_SNAPSHOTS},
    [QUOTA_IMAGES] = {"images", "images", 50000,
                      "SELECT NULL, COUNT(*) FROM images WHERE owner = ?1 AND region = ?2",
                      KERR_SUBJECT_QUOTA_IMAGES},
};

/* Larger than any count or size kiln could hold, small enough for sums not to overflow. */
#define QUOTA_MAX ((uint64_t)1 << 40)

void cloud_quota_defaults(uint64_t limits[QUOTA__COUNT])
{
	for (size_t q = 0; q < QUOTA__COUNT; q++)
		limits[q] = quotas[q].fallback;
}

int cloud_quota_set(uint64_t limits[QUOTA__COUNT], const char *name, const char *value,
                    struct kerr **err)
{
	for (size_t q = 0; q < QUOTA__COUNT; q++) {
		unsigned long long v = 0;
		char *end = NULL;

		if (!name || strcmp(name, quotas[q].name))
			continue;
		errno = 0;
		if (value && *value >= '0' && *value <= '9')
			v = strtoull(value, &end, 10);
		if (!end || *end || errno || v > QUOTA_MAX)
			return kerr_set(err, KERR_INVALID,
			                "quota '%s' needs a number up to %llu, not '%s'", name,
			                (unsigned long long)QUOTA_MAX, value ? value : "");
		limits[q] = v;
		return 0;
	}
	return kerr_set(
	    err, KERR_INVALID,
	    "unknown quota '%s' (running-vcpus, volumes, volume-gib, snapshots, images)",
	    name ? name : "");
}

int cloud_quota_save(struct cloud *c, const uint64_t limits[QUOTA__COUNT], struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (db_prepare(c->db, "INSERT OR REPLACE INTO quotas (name, value) VALUES (?, ?)", &st,
	               err) < 0)
		return -1;
	for (size_t q = 0; q < QUOTA__COUNT; q++) {
		sqlite3_reset(st);
		db_bind_text(st, 1, quotas[q].name);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)limits[q]);
		if (db_step_done(c->db, st, err) < 0)
			return -1;
	}
	return 0;
}

static int quota_limit(struct cloud *c, enum quota q, uint64_t *limit, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db, "SELECT value FROM quotas WHERE name = ?", &st, err) < 0)
		return -1;
	db_bind_text(st, 1, quotas[q].name);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	*limit = r ? (uint64_t)sqlite3_column_int64(st, 0) : quotas[q].fallback;
	return 0;
}

static int quota_usage(struct cloud *c, enum quota q, const char *owner, const char *region,
                       uint64_t *used, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	*used = 0;
	if (db_prepare(c->db, quotas[q].usage, &st, err) < 0)
		return -1;
	db_bind_text(st, 1, owner);
	db_bind_text(st, 2, region);
	while ((r = db_step_row(c->db, st, err)) == 1) {
		const struct instance_type *t = sqlite3_column_type(st, 0) == SQLITE_NULL
		                                    ? NULL
		                                    : instance_type_find(db_text(st, 0));
		*used += (t ? t->vcpus : 1) * (uint64_t)sqlite3_column_int64(st, 1);
	}
	return r;
}

int cloud_quota_check(struct cloud *c, const char *owner, const char *region,
                      const uint64_t need[QUOTA__COUNT], struct kerr **err)
{
	for (size_t q = 0; q < QUOTA__COUNT; q++) {
		uint64_t limit, used;

		if (!need[q])
			continue;
		if (quota_limit(c, q, &limit, err) < 0 ||
		    quota_usage(c, q, owner, region, &used, err) < 0)
			return -1;
		if (need[q] > limit || used > limit - need[q])
			return kerr_about(err, KERR_LIMIT, quotas[q].subject, quotas[q].name,
			                  "quota '%s' exceeded: at most %llu %s per account in %s, "
			                  "%llu in use, %llu more asked",
			                  quotas[q].name, (unsigned long long)limit, quotas[q].unit,
			                  region, (unsigned long long)used,
			                  (unsigned long long)need[q]);
	}
	return 0;
}

int cloud_quota_limit(struct cloud *c, enum quota q, uint64_t *limit, struct kerr **err)
{
	return quota_limit(c, q, limit, err);
}
