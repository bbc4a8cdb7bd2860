/* Where the domain's files live in the data directory: each zone's pool of volume files, each
 * region's block store, and the names of the files inside a pool. */
#include "internal.h"

#include "util/xalloc.h"
#include "util/banned.h"

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

char *cloud_volume_file(const char *id)
{
	return xasprintf("%s.img", id);
}

char *cloud_shadow_file(const char *volume, const char *snapshot)
{
	return xasprintf("%s.%s.shadow", volume, snapshot);
}
