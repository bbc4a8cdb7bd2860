/* Where the domain's files live in the data directory: each zone's pool of volume files, each
 * region's block store, and the names of the files inside a pool. */
#include "internal.h"

#include <sys/statvfs.h>

#include "util/cleanup.h"
#include "util/xalloc.h"
#include "util/banned.h"

char *cloud_zone_pool_dir(const struct cloud *c, const char *region, const char *zone)
{
	return xasprintf("%s/regions/%s/pools/%s", c->data_dir, region, zone);
}

int cloud_zone_space_check(const struct cloud *c, const char *region, const char *zone,
                           struct kerr **err)
{
	_cleanup_free_ char *dir = cloud_zone_pool_dir(c, region, zone);
	struct statvfs fs;
	uint64_t avail;

	/* A pool is made on first use: until then it has the room of a new one. */
	if (statvfs(dir, &fs) < 0)
		return 0;
	avail = (uint64_t)fs.f_bavail * fs.f_frsize;
	if (avail < CLOUD_POOL_SPACE_MIN)
		return kerr_about(err, KERR_NOSPACE, KERR_SUBJECT_ZONE, zone,
		                  "the pool of zone '%s' has %llu MiB free, less than the %llu MiB "
		                  "a new volume needs",
		                  zone, (unsigned long long)(avail >> 20),
		                  (unsigned long long)(CLOUD_POOL_SPACE_MIN >> 20));
	return 0;
}

char *cloud_store_dir(const struct cloud *c, const char *region)
{
	return xasprintf("%s/regions/%s/store", c->data_dir, region);
}

char *cloud_base_name(const char *snapshot_id)
{
	return xasprintf("base-%s.img", snapshot_id);
}

char *cloud_volume_file(const char *id)
{
	return xasprintf("%s.img", id);
}

char *cloud_shadow_file(const char *volume, const char *snapshot)
{
	return xasprintf("%s.%s.shadow", volume, snapshot);
}
