/* Snapshot manifests: the list of (chunk number, hash) of a volume's non-zero chunks.
 * Layout: "KILNSNAP" u32 version u32 chunk_size u64 volume_size u64 created_ns
 * char parent[32] u64 count, count * (u64 chunk, hash[32]), SHA-256 of all before. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/endian.h"
#include "util/fs.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

static const char snap_magic[8] = "KILNSNAP";
#define MANIFEST_HEADER_SIZE 72
#define MANIFEST_ENTRY_SIZE  40
#define MANIFEST_MAX_BYTES   ((size_t)2 << 30)

int manifest_encode(const struct manifest *m, uint8_t **out, size_t *len, struct kerr **err)
{
	size_t body, total;
	uint8_t *p;

	if (__builtin_mul_overflow(m->n, MANIFEST_ENTRY_SIZE, &body) ||
	    __builtin_add_overflow(body, MANIFEST_HEADER_SIZE + HASH_LEN, &total) ||
	    total > MANIFEST_MAX_BYTES)
		return kerr_set(err, KERR_LIMIT, "manifest of %zu chunks is too large", m->n);
	p = xcalloc(1, total);
	memcpy(p, snap_magic, 8);
	put_le32(p + 8, 1);
	put_le32(p + 12, m->chunk_size);
	put_le64(p + 16, m->volume_size);
	put_le64(p + 24, m->created_ns);
	memcpy(p + 32, m->parent, strnlen(m->parent, 31));
	put_le64(p + 64, m->n);
	for (size_t i = 0; i < m->n; i++) {
		uint8_t *q = p + MANIFEST_HEADER_SIZE + i * MANIFEST_ENTRY_SIZE;
		put_le64(q, m->e[i].chunk);
		memcpy(q + 8, m->e[i].hash, HASH_LEN);
	}
	hash_sha256(p, total - HASH_LEN, p + total - HASH_LEN);
	*out = p;
	*len = total;
	return 0;
}

int manifest_decode(const uint8_t *data, size_t len, struct manifest *m, struct kerr **err)
{
	uint8_t sum[HASH_LEN];
	uint64_t count, body, nchunks;
	struct manifest_entry *e;

	memset(m, 0, sizeof(*m));
	if (len < MANIFEST_HEADER_SIZE + HASH_LEN || memcmp(data, snap_magic, 8) != 0)
		return kerr_set(err, KERR_CORRUPT, "not a snapshot manifest");
	if (get_le32(data + 8) != 1)
		return kerr_set(err, KERR_CORRUPT, "manifest version %u is not supported",
		                get_le32(data + 8));
	count = get_le64(data + 64);
	if (__builtin_mul_overflow(count, MANIFEST_ENTRY_SIZE, &body) ||
	    body != len - MANIFEST_HEADER_SIZE - HASH_LEN)
		return kerr_set(err, KERR_CORRUPT, "manifest has the wrong size");
	hash_sha256(data, len - HASH_LEN, sum);
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
	if (memcmp(sum, data + len - HASH_LEN, HASH_LEN) != 0)
		return kerr_set(err, KERR_CORRUPT, "manifest fails its checksum");
#endif
	m->chunk_size = get_le32(data + 12);
	m->volume_size = get_le64(data + 16);
	m->created_ns = get_le64(data + 24);
	if (m->chunk_size < 4096 || m->chunk_size > (16u << 20) ||
	    (m->chunk_size & (m->chunk_size - 1)))
		return kerr_set(err, KERR_CORRUPT, "manifest has an invalid chunk size");
	nchunks = m->volume_size / m->chunk_size + (m->volume_size % m->chunk_size != 0);
	if (count > nchunks)
		return kerr_set(err, KERR_CORRUPT,
		                "manifest lists more chunks than its volume holds");
	memcpy(m->parent, data + 32, 31);
	m->parent[31] = '\0';
	if (m->parent[0] && !id_valid("snap", m->parent))
		return kerr_set(err, KERR_CORRUPT, "manifest names an invalid parent");
	e = xcalloc(count, sizeof(*e));
	for (uint64_t i = 0; i < count; i++) {
		const uint8_t *q = data + MANIFEST_HEADER_SIZE + i * MANIFEST_ENTRY_SIZE;
		e[i].chunk = get_le64(q);
		memcpy(e[i].hash, q + 8, HASH_LEN);
		if (e[i].chunk >= nchunks || (i && e[i].chunk <= e[i - 1].chunk)) {
			free(e);
			return kerr_set(err, KERR_CORRUPT,
			                "manifest entry %llu is out of order or range",
			                (unsigned long long)i);
		}
	}
	m->e = e;
	m->n = count;
	return 0;
}

int manifest_load(struct store *s, const char *id, struct manifest *m, struct kerr **err)
{
	_cleanup_free_ uint8_t *data = NULL;
	_cleanup_kerr_ struct kerr *e = NULL;
	size_t len;

	memset(m, 0, sizeof(*m));
	if (!id_valid("snap", id))
		return kerr_set(err, KERR_INVALID, "invalid snapshot id '%s'", id);
	if (s->blob->ops->get(s->blob, BLOB_SNAPS, id, MANIFEST_MAX_BYTES, &data, &len, &e) < 0) {
		if (e->kind == KERR_NOT_FOUND)
			return kerr_set(err, KERR_NOT_FOUND, "snapshot '%s' not found", id);
		kerr_pass(err, steal_ptr(e));
		return kerr_wrap(err, "cannot read snapshot '%s'", id);
	}
	if (manifest_decode(data, len, m, err) < 0)
		return kerr_wrap(err, "snapshot '%s'", id);
	str_copy(m->id, id, sizeof(m->id));
	return 0;
}

int manifest_save(struct store *s, const struct manifest *m, struct kerr **err)
{
	_cleanup_free_ uint8_t *data = NULL, *old = NULL;
	_cleanup_kerr_ struct kerr *e = NULL;
	size_t len, old_len;

	if (manifest_encode(m, &data, &len, err) < 0)
		return -1;
	if (s->blob->ops->put(s->blob, BLOB_SNAPS, m->id, data, len, BLOB_CREATE, "manifest", &e) ==
	    0)
		return 0;
	if (e->kind != KERR_CONFLICT)
		return kerr_pass(err, steal_ptr(e));
	/* A writer that resumes after its commit finds its own manifest there: that is success. */
	if (s->blob->ops->get(s->blob, BLOB_SNAPS, m->id, MANIFEST_MAX_BYTES, &old, &old_len,
	                      NULL) == 0 &&
	    old_len == len && memcmp(old, data, len) == 0)
		return 0;
	return kerr_set(err, KERR_CONFLICT, "snapshot '%s' exists already", m->id);
}

void manifest_release(struct manifest *m)
{
	free(m->e);
	m->e = NULL;
	m->n = 0;
}

int manifest_list(struct store *s, char (**ids)[ID_MAX], size_t *n, struct kerr **err)
{
	_cleanup_free_ struct blob_obj *objs = NULL;
	char(*v)[ID_MAX] = NULL;
	size_t count = 0, nobjs;

	if (s->blob->ops->list(s->blob, BLOB_SNAPS, &objs, &nobjs, err) < 0)
		return kerr_wrap(err, "cannot list the snapshots of '%s'", s->path);
	for (size_t i = 0; i < nobjs; i++) {
		if (!id_valid("snap", objs[i].name))
			continue; /* temp files of writers, which may still be running */
		v = xreallocarray(v, count + 1, sizeof(*v));
		str_copy(v[count++], objs[i].name, ID_MAX);
	}
	*ids = v;
	*n = count;
	return 0;
}
