/* Space accounting: what the snapshots describe, what the store keeps, and the ratios. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/xalloc.h"
#include "util/banned.h"

static int pack_bytes(struct store *s, uint64_t *total, struct kerr **err)
{
	_cleanup_free_ struct blob_obj *v = NULL;
	size_t n;

	*total = 0;
	if (s->blob->ops->list(s->blob, BLOB_PACKS, &v, &n, err) < 0)
		return kerr_wrap(err, "cannot list the packs of '%s'", s->path);
	for (size_t i = 0; i < n; i++)
		*total += v[i].size;
	return 0;
}

static const struct store_snap_info *find_info(const struct store_stats *st, const char *id)
{
	for (size_t i = 0; i < st->nsnaps; i++)
		if (!strcmp(st->snaps[i].id, id))
			return &st->snaps[i];
	return NULL;
}

int store_stats(struct store *s, struct store_stats *st, struct kerr **err)
{
	struct index idx = {0};
	struct hashset all;
	int r = -1;

	memset(st, 0, sizeof(*st));
	hashset_init(&all);
	if (store_list(s, &st->snaps, &st->nsnaps, err) < 0 || index_load(s, &idx, err) < 0 ||
	    pack_bytes(s, &st->pack_bytes, err) < 0)
		goto out;
	st->snapshots = st->nsnaps;
	for (size_t i = 0; i < st->nsnaps; i++) {
		struct store_snap_info *info = &st->snaps[i];
		struct manifest m, parent = {0};
		struct hashset mine, theirs;

		if (manifest_load(s, info->id, &m, err) < 0)
			goto out;
		hashset_init(&mine);
		hashset_init(&theirs);
		if (info->parent[0] && find_info(st, info->parent) &&
		    manifest_load(s, info->parent, &parent, NULL) == 0) {
			for (size_t k = 0; k < parent.n; k++)
				hashset_add(&theirs, parent.e[k].hash);
			manifest_release(&parent);
		}
		st->volume_bytes += info->volume_size;
		st->logical_bytes += info->data_bytes;
		for (size_t k = 0; k < m.n; k++) {
			const struct chunk_loc *l = index_find(&idx, m.e[k].hash);
			uint32_t clen = l ? l->clen : 0;

			if (hashset_add(&mine, m.e[k].hash)) {
				info->stored_bytes += clen;
				if (!hashset_has(&theirs, m.e[k].hash))
					info->new_bytes += clen;
			}
			if (hashset_add(&all, m.e[k].hash) && l) {
				st->unique_chunks++;
				st->unique_bytes += l->ulen_flags >> 1;
				st->stored_bytes += clen;
			}
		}
		hashset_release(&mine);
		hashset_release(&theirs);
		manifest_release(&m);
	}
	for (size_t i = 0; i < idx.n; i++)
		if (!hashset_has(&all, idx.v[i].hash) ||
		    index_find(&idx, idx.v[i].hash) != &idx.v[i])
			st->garbage_bytes += idx.v[i].clen;
	r = 0;
out:
	if (r < 0)
		store_stats_release(st);
	hashset_release(&all);
	index_release(&idx);
	return r;
}

void store_stats_release(struct store_stats *st)
{
	free(st->snaps);
	st->snaps = NULL;
	st->nsnaps = 0;
}
