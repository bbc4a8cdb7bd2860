/* Garbage collection, mark and sweep: mark every chunk a manifest names, then drop packs
 * with nothing live and rewrite packs less than half live. Runs with the store to itself. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/xalloc.h"
#include "util/banned.h"

static int has_name(const struct blob_obj *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].name, name))
			return 1;
	return 0;
}

/* Remove what interrupted writers left: temp files, and packs that never got an index. Where
 * gc cannot keep writers out (S3), only leftovers older than the grace time go: a younger one
 * may be a running writer's. */
static int remove_leftovers(struct store *s, uint64_t *removed, struct kerr **err)
{
	static const enum blob_ns spaces[] = {BLOB_PACKS, BLOB_INDEX, BLOB_SNAPS};
	_cleanup_free_ struct blob_obj *idx = NULL;
	size_t nidx;
	uint64_t now = (uint64_t)time(NULL);

	if (s->blob->ops->list(s->blob, BLOB_INDEX, &idx, &nidx, err) < 0)
		return -1;
	for (size_t k = 0; k < ARRAY_SIZE(spaces); k++) {
		_cleanup_free_ struct blob_obj *v = NULL;
		size_t n;

		if (s->blob->ops->list(s->blob, spaces[k], &v, &n, err) < 0)
			return kerr_wrap(err, "cannot read store '%s'", s->path);
		for (size_t i = 0; i < n; i++) {
			uint64_t id;
			char idx_name[32];
			bool leftover = strstr(v[i].name, ".tmp.") != NULL;

			if (!leftover && spaces[k] == BLOB_PACKS &&
			    pack_parse_name(v[i].name, ".pack", &id) == 0) {
				snprintf(idx_name, sizeof(idx_name), "%016" PRIx64 ".idx", id);
				leftover = !has_name(idx, nidx, idx_name);
			}
			if (leftover && v[i].mtime + s->blob->gc_grace > now)
				continue;
			if (leftover && s->blob->ops->del(s->blob, spaces[k], v[i].name, NULL) == 0)
				(*removed)++;
		}
		if (s->blob->ops->sync(s->blob, spaces[k], err) < 0)
			return -1;
	}
	return 0;
}

static int mark_live(struct store *s, struct hashset *live, struct kerr **err)
{
	_cleanup_free_ char(*ids)[ID_MAX] = NULL;
	size_t n;

	if (manifest_list(s, &ids, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct manifest m;

		/* A manifest we cannot read might need any chunk: sweep nothing. */
		if (manifest_load(s, ids[i], &m, err) < 0)
			return kerr_wrap(err, "gc stopped before sweeping");
		for (size_t k = 0; k < m.n; k++)
			hashset_add(live, m.e[k].hash);
		manifest_release(&m);
	}
	return 0;
}

static int drop_pack(struct store *s, uint64_t id, struct kerr **err)
{
	char pname[32], iname[32];

	pack_name(id, pname);
	snprintf(iname, sizeof(iname), "%016" PRIx64 ".idx", id);
	/* Index first: a pack without an index is a leftover, never a half-deleted pack. */
	if (s->blob->ops->del(s->blob, BLOB_INDEX, iname, err) < 0)
		return kerr_wrap(err, "cannot remove index '%s'", iname);
	if (s->blob->ops->sync(s->blob, BLOB_INDEX, err) < 0)
		return -1;
	fault_point("gc.index.unlinked");
	if (s->blob->ops->del(s->blob, BLOB_PACKS, pname, err) < 0)
		return kerr_wrap(err, "cannot remove pack '%s'", pname);
	fault_point("gc.pack.unlinked");
	return s->blob->ops->sync(s->blob, BLOB_PACKS, err);
}

/* Copy the live records of one pack into a new pack, as stored (no recompression). */
static int rewrite_pack(struct store *s, const struct index *idx, uint32_t pack, const size_t *live,
                        size_t nlive, struct kerr **err)
{
	_cleanup_free_ uint8_t *buf = xmalloc(s->chunk_size + 4096);
	struct blob_file f;
	struct pack_writer w;
	char name[32];
	int r = -1;

	pack_name(idx->pack_ids[pack], name);
	if (blob_file_open(s->blob, BLOB_PACKS, name, &f, err) < 0)
		return kerr_wrap(err, "cannot open pack '%s'", name);
	pack_writer_init(&w, s->blob, s->chunk_size);
	for (size_t i = 0; i < nlive; i++) {
		struct pack_entry e;

		chunk_loc_entry(&idx->v[live[i]], &e);
		if (pack_read_payload(&f, &e, buf, s->chunk_size + 4096u, err) < 0) {
			kerr_wrap(err, "cannot rewrite pack '%s'", name);
			goto out;
		}
		if (pack_writer_add(&w, e.hash, buf, e.clen, e.ulen, e.flags, err) < 0)
			goto out;
	}
	if (commit_write(s, &w, NULL, "gc.repacked", err) < 0)
		goto out;
	r = drop_pack(s, idx->pack_ids[pack], err);
out:
	if (r < 0)
		commit_abandon(s, &w, false);
	pack_writer_release(&w);
	blob_file_close(&f);
	return r;
}

int store_gc(struct store *s, struct store_gc_result *res, struct kerr **err)
{
	struct hashset live;
	struct index idx = {0};
	size_t *live_of = NULL, *nlive = NULL, *start = NULL;
	uint64_t *total = NULL, *live_bytes = NULL;
	int r = -1;

	memset(res, 0, sizeof(*res));
	hashset_init(&live);
	if (remove_leftovers(s, &res->leftovers_removed, err) < 0)
		goto out;
	if (mark_live(s, &live, err) < 0)
		goto out;
	fault_point("gc.marked");
	if (index_load(s, &idx, err) < 0)
		goto out;

	/* Group the live records by pack; a duplicate is live only where index_find points. */
	total = xcalloc(idx.npacks + 1, sizeof(*total));
	live_bytes = xcalloc(idx.npacks + 1, sizeof(*live_bytes));
	nlive = xcalloc(idx.npacks + 1, sizeof(*nlive));
	start = xcalloc(idx.npacks + 1, sizeof(*start));
	live_of = xcalloc(idx.n + 1, sizeof(*live_of));
	for (size_t i = 0; i < idx.n; i++) {
		total[idx.v[i].pack] += idx.v[i].clen;
		if (hashset_has(&live, idx.v[i].hash) &&
		    index_find(&idx, idx.v[i].hash) == &idx.v[i]) {
			live_bytes[idx.v[i].pack] += idx.v[i].clen;
			nlive[idx.v[i].pack]++;
		}
	}
	for (size_t p = 1; p <= idx.npacks; p++)
		start[p] = start[p - 1] + nlive[p - 1];
	{
		_cleanup_free_ size_t *fill = xcalloc(idx.npacks + 1, sizeof(*fill));
		for (size_t i = 0; i < idx.n; i++) {
			uint32_t p = idx.v[i].pack;
			if (hashset_has(&live, idx.v[i].hash) &&
			    index_find(&idx, idx.v[i].hash) == &idx.v[i])
				live_of[start[p] + fill[p]++] = i;
		}
	}
	for (uint32_t p = 0; p < idx.npacks; p++) {
		if (nlive[p] == 0) {
			if (drop_pack(s, idx.pack_ids[p], err) < 0)
				goto out;
			res->packs_removed++;
			res->bytes_freed += total[p];
		} else if (live_bytes[p] * 2 < total[p]) {
			if (rewrite_pack(s, &idx, p, live_of + start[p], nlive[p], err) < 0)
				goto out;
			res->packs_rewritten++;
			res->bytes_freed += total[p] - live_bytes[p];
		}
	}
	r = 0;
out:
	free(total);
	free(live_bytes);
	free(nlive);
	free(start);
	free(live_of);
	hashset_release(&live);
	index_release(&idx);
	return r;
}
