/* The chunk index: one immutable, sorted <pack>.idx per pack on disk, one sorted array in
 * memory (48 bytes a chunk, binary search). It can always be rebuilt from pack footers. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/endian.h"
#include "util/fs.h"
#include "util/xalloc.h"
#include "util/banned.h"

static const char idx_magic[8] = "KILNIDX1";
#define IDX_HEADER_SIZE 24
#define IDX_MAX_BYTES   ((size_t)1 << 30)

static int entry_cmp(const void *a, const void *b)
{
	const struct pack_entry *x = a, *y = b;
	int c = memcmp(x->hash, y->hash, HASH_LEN);

	if (c)
		return c;
	return x->off < y->off ? -1 : x->off > y->off;
}

int index_write(struct store *s, uint64_t pack_id, struct pack_entry *e, size_t n,
                struct kerr **err)
{
	_cleanup_free_ uint8_t *data = NULL;
	size_t len = IDX_HEADER_SIZE + n * PACK_ENTRY_SIZE + HASH_LEN;
	char name[32];

	qsort(e, n, sizeof(*e), entry_cmp);
	data = xmalloc(len);
	memcpy(data, idx_magic, 8);
	put_le64(data + 8, pack_id);
	put_le64(data + 16, n);
	for (size_t i = 0; i < n; i++)
		pack_entry_encode(&e[i], data + IDX_HEADER_SIZE + i * PACK_ENTRY_SIZE);
	hash_sha256(data, len - HASH_LEN, data + len - HASH_LEN);
	snprintf(name, sizeof(name), "%016" PRIx64 ".idx", pack_id);
	return s->blob->ops->put(s->blob, BLOB_INDEX, name, data, len, BLOB_REPLACE, "index", err);
}

int index_read_file(struct store *s, const char *name, uint64_t *pack_id, struct pack_entry **out,
                    size_t *n, struct kerr **err)
{
	_cleanup_free_ uint8_t *data = NULL;
	_cleanup_free_ struct pack_entry *e = NULL;
	uint8_t sum[HASH_LEN];
	uint64_t count, want;
	size_t len;

	if (s->blob->ops->get(s->blob, BLOB_INDEX, name, IDX_MAX_BYTES, &data, &len, err) < 0)
		return -1;
	if (len < IDX_HEADER_SIZE + HASH_LEN || memcmp(data, idx_magic, 8) != 0)
		return kerr_set(err, KERR_CORRUPT, "index file '%s' is not an index", name);
	count = get_le64(data + 16);
	if (__builtin_mul_overflow(count, PACK_ENTRY_SIZE, &want) ||
	    want != len - IDX_HEADER_SIZE - HASH_LEN)
		return kerr_set(err, KERR_CORRUPT, "index file '%s' has the wrong size", name);
	hash_sha256(data, len - HASH_LEN, sum);
	if (memcmp(sum, data + len - HASH_LEN, HASH_LEN) != 0)
		return kerr_set(err, KERR_CORRUPT, "index file '%s' fails its checksum", name);
	*pack_id = get_le64(data + 8);
	e = xcalloc(count, sizeof(*e));
	for (size_t i = 0; i < count; i++)
		pack_entry_decode(data + IDX_HEADER_SIZE + i * PACK_ENTRY_SIZE, &e[i]);
	*out = steal_ptr(e);
	*n = count;
	return 0;
}

static int loc_cmp(const void *a, const void *b)
{
	const struct chunk_loc *x = a, *y = b;
	int c = memcmp(x->hash, y->hash, HASH_LEN);

	if (c)
		return c;
	/* Duplicates (two writers stored the same chunk): a fixed order picks the same one. */
	if (x->pack != y->pack)
		return x->pack < y->pack ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int index_load(struct store *s, struct index *idx, struct kerr **err)
{
	_cleanup_free_ struct blob_obj *objs = NULL;
	size_t nobjs = 0, cap = 0;
	int r = -1;

	memset(idx, 0, sizeof(*idx));
	if (s->blob->ops->list(s->blob, BLOB_INDEX, &objs, &nobjs, err) < 0)
		return kerr_wrap(err, "cannot read the index of '%s'", s->path);
	for (size_t k = 0; k < nobjs; k++) {
		_cleanup_free_ struct pack_entry *e = NULL;
		const char *fname = objs[k].name;
		uint64_t id, named;
		size_t n;

		if (pack_parse_name(fname, ".idx", &named) < 0)
			continue;
		if (index_read_file(s, fname, &id, &e, &n, err) < 0)
			goto out;
		if (id != named) {
			kerr_set(err, KERR_CORRUPT, "index file '%s' names another pack", fname);
			goto out;
		}
		idx->pack_ids = xreallocarray(idx->pack_ids, idx->npacks + 1, sizeof(uint64_t));
		idx->pack_ids[idx->npacks] = id;
		if (idx->n + n > cap) {
			cap = (idx->n + n) * 2;
			idx->v = xreallocarray(idx->v, cap, sizeof(*idx->v));
		}
		for (size_t i = 0; i < n; i++) {
			struct chunk_loc *l = &idx->v[idx->n++];
			if (e[i].off > UINT32_MAX || e[i].ulen > (UINT32_MAX >> 1)) {
				kerr_set(err, KERR_CORRUPT,
				         "index file '%s' has an impossible entry", fname);
				goto out;
			}
			memcpy(l->hash, e[i].hash, HASH_LEN);
			l->pack = (uint32_t)idx->npacks;
			l->off = (uint32_t)e[i].off;
			l->clen = e[i].clen;
			l->ulen_flags = e[i].ulen << 1 | (e[i].flags & PACK_FLAG_ZSTD);
		}
		idx->npacks++;
	}
	/* Sort packs by id so that duplicate resolution does not depend on listing order. */
	{
		_cleanup_free_ uint64_t *sorted =
		    xreallocarray(NULL, idx->npacks, sizeof(uint64_t));
		_cleanup_free_ uint32_t *rank = xreallocarray(NULL, idx->npacks, sizeof(uint32_t));
		if (idx->npacks)
			memcpy(sorted, idx->pack_ids, idx->npacks * sizeof(uint64_t));
		qsort(sorted, idx->npacks, sizeof(uint64_t), u64_cmp);
		for (size_t i = 0; i < idx->npacks; i++) {
			uint64_t *p = bsearch(&idx->pack_ids[i], sorted, idx->npacks,
			                      sizeof(uint64_t), u64_cmp);
			rank[i] = (uint32_t)(p - sorted);
		}
		for (size_t i = 0; i < idx->n; i++)
			idx->v[i].pack = rank[idx->v[i].pack];
		if (idx->npacks)
			memcpy(idx->pack_ids, sorted, idx->npacks * sizeof(uint64_t));
	}
	if (idx->n)
		qsort(idx->v, idx->n, sizeof(*idx->v), loc_cmp);
	r = 0;
out:
	if (r < 0)
		index_release(idx);
	return r;
}

const struct chunk_loc *index_find(const struct index *idx, const uint8_t hash[HASH_LEN])
{
	size_t lo = 0, hi = idx->n;

	/* Leftmost match, so that all users agree on one copy of a duplicated chunk. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (memcmp(idx->v[mid].hash, hash, HASH_LEN) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < idx->n && memcmp(idx->v[lo].hash, hash, HASH_LEN) == 0)
		return &idx->v[lo];
	return NULL;
}

void chunk_loc_entry(const struct chunk_loc *l, struct pack_entry *e)
{
	memcpy(e->hash, l->hash, HASH_LEN);
	e->off = l->off;
	e->clen = l->clen;
	e->ulen = l->ulen_flags >> 1;
	e->flags = l->ulen_flags & PACK_FLAG_ZSTD;
}

void index_release(struct index *idx)
{
	free(idx->v);
	free(idx->pack_ids);
	memset(idx, 0, sizeof(*idx));
}

static int open_packs(struct store *s, const struct index *idx, const bool *used,
                      struct blob_file **files, struct kerr **err)
{
	struct blob_file *v = xcalloc(idx->npacks ? idx->npacks : 1, sizeof(*v));

	for (size_t i = 0; i < idx->npacks; i++) {
		char name[32];

		if (!used[i])
			continue;
		pack_name(idx->pack_ids[i], name);
		if (blob_file_open(s->blob, BLOB_PACKS, name, &v[i], err) < 0) {
			index_close_packs(idx, v);
			return kerr_wrap(err, "cannot open pack '%s'", name);
		}
	}
	*files = v;
	return 0;
}

int index_open_packs(struct store *s, const struct index *idx, const uint8_t *hashes, size_t stride,
                     size_t n, struct blob_file **files, struct kerr **err)
{
	_cleanup_free_ bool *used = xcalloc(idx->npacks ? idx->npacks : 1, sizeof(*used));

	for (size_t i = 0; i < n; i++) {
		const struct chunk_loc *loc = index_find(idx, hashes + i * stride);
		if (loc)
			used[loc->pack] = true;
	}
	return open_packs(s, idx, used, files, err);
}

int index_open_all_packs(struct store *s, const struct index *idx, struct blob_file **files,
                         struct kerr **err)
{
	_cleanup_free_ bool *used = xcalloc(idx->npacks ? idx->npacks : 1, sizeof(*used));

	for (size_t i = 0; i < idx->npacks; i++)
		used[i] = true;
	return open_packs(s, idx, used, files, err);
}

void index_close_packs(const struct index *idx, struct blob_file *files)
{
	if (!files)
		return;
	for (size_t i = 0; i < idx->npacks; i++)
		blob_file_close(&files[i]);
	free(files);
}
