/* What a daemon killed in the middle of work leaves in its zones' pools (half-made volumes,
 * clones, shadows, restores of bases, unpacked imports), removed when the next one starts and
 * before any job runs. Files with no record are not guessed at: only the temporaries' names. */
#include "internal.h"

#include <unistd.h>

#include "pool/pool.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "util/banned.h"

void cloud_leftovers_clean(struct cloud *c)
{
	struct topology t;

	if (cloud_regions(c, &t, NULL) < 0)
		return;
	for (size_t i = 0; i < t.nzones; i++) {
		_cleanup_kerr_ struct kerr *err = NULL;
		_cleanup_free_ char *dir =
		    cloud_zone_pool_dir(c, t.zones[i].region, t.zones[i].name);
		struct log_ctx ctx = {.resource = t.zones[i].name};
		struct pool *p = NULL;
		size_t removed = 0;

		/* A pool is made on first use, not by looking. */
		if (access(dir, F_OK) < 0)
			continue;
		if (pool_open(dir, NULL, &p, &err) < 0 || pool_clean(p, &removed, &err) < 0)
			log_kerr(LOG_LEVEL_WARNING, &ctx, err, "cannot clean the pool '%s'", dir);
		else if (removed)
			log_event(LOG_LEVEL_INFO, &ctx, "removed %zu half-made files from '%s'",
			          removed, dir);
		pool_close(p);
	}
	topology_release(&t);
}
