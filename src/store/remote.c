/* Copies between stores of different hosts: the source's read side (a snapshot's manifest, and
 * chunks of it by hash as stored, checked on the way out) as byte strings, and the destination's
 * copy from such a source, asking for only the chunks it lacks, each checked against its hash,
 * packs indexed as they seal and when the copy fails (the next try asks for the rest only),
 * manifest last. */
#define ZSTD_STATIC_LINKING_ONLY
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "internal.h"
#include "util/cleanup.h"
#include "util/endian.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

/* A chunk on the wire: hash, flags, ulen, clen (little-endian u32 each), then clen bytes. */
#define WIRE_CHUNK_HEADER (HASH_LEN + 12)

int store_export_manifest(struct store *s, const char *id, struct buf *out, struct kerr **err)
{
	struct manifest m = {0};
	_cleanup_free_ uint8_t *data = NULL;
	size_t len = 0;
	int r = -1;

	if (manifest_load(s, id, &m, err) == 0 && manifest_encode(&m, &data, &len, err) == 0)
		r = buf_add(out, data, len, err);
	manifest_release(&m);
	return r;
}

struct store_export {
	char id[ID_MAX];
	uint32_t chunk_size;
	uint64_t read_span; /* the store's blob's: read neighbouring records together */
	struct manifest m;
	struct index idx;
	struct hashset uses;     /* the chunks of the snapshot: only these are handed out */
	struct blob_file *files; /* the packs of idx, open: a pack gc unlinks from a directory
	                          * stays readable */
};

void store_export_close(struct store_export *ex)
{
	if (!ex)
		return;
	hashset_release(&ex->uses);
	if (ex->files)
		index_close_packs(&ex->idx, ex->files);
	index_release(&ex->idx);
	manifest_release(&ex->m);
	free(ex);
}

int store_export_open(struct store *s, const char *id, struct store_export **out, struct kerr **err)
{
	struct store_export *ex = xcalloc(1, sizeof(*ex));

	hashset_init(&ex->uses);
	str_copy(ex->id, id, sizeof(ex->id));
	ex->chunk_size = s->chunk_size;
	ex->read_span = s->blob->read_span;
	/* The manifest names only chunks the index had when it was written: the index loaded
	 * after it has every one of them, whatever is written or collected later. */
	if (manifest_load(s, id, &ex->m, err) < 0 || index_load(s, &ex->idx, err) < 0 ||
	    index_open_packs(s, &ex->idx, ex->m.n ? ex->m.e[0].hash : NULL, sizeof(*ex->m.e),
	                     ex->m.n, &ex->files, err) < 0) {
		store_export_close(ex);
		return -1;
	}
	for (size_t i = 0; i < ex->m.n; i++)
		hashset_add(&ex->uses, ex->m.e[i].hash);
	*out = ex;
	return 0;
}

/* A chunk's wire header. */
static void wire_head(uint8_t out[WIRE_CHUNK_HEADER], const struct pack_entry *pe)
{
	memcpy(out, pe->hash, HASH_LEN);
	put_le32(out + HASH_LEN, pe->flags);
	put_le32(out + HASH_LEN + 4, pe->ulen);
	put_le32(out + HASH_LEN + 8, pe->clen);
}

/* Where chunks read in groups go: each at its place in the answer. */
struct export_fill {
	uint8_t *data;
	const size_t *at; /* by request position */
};

static int export_take(void *ctx, const struct span_item *it, struct chunk_reader *r,
                       struct kerr **err)
{
	const struct export_fill *fill = ctx;

	(void)err;
	wire_head(fill->data + fill->at[it->entry], &it->e);
	memcpy(fill->data + fill->at[it->entry] + WIRE_CHUNK_HEADER, chunk_stored(r, &it->e),
	       it->e.clen);
	return 0;
}

/* From object storage: the records asked for grouped by place, a read for each group of
 * neighbours (spans.c), the answer still in the order asked. Not kept in the host's cache,
 * as for a copy between regions. */
static int export_read_spans(const struct store_export *ex, struct span_item *items, size_t n,
                             struct buf *out, struct kerr **err)
{
	_cleanup_free_ struct span_group *groups = xcalloc(n ? n : 1, sizeof(*groups));
	_cleanup_free_ size_t *at = xcalloc(n ? n : 1, sizeof(*at));
	_cleanup_free_ uint8_t *data = NULL;
	struct span_reader sr = {0};
	struct export_fill fill;
	size_t len = 0, ng;
	int r = 0;

	for (size_t k = 0; k < n; k++) {
		/* bounded before it sizes the answer: a record holds at most a chunk and framing */
		if (items[k].e.clen > RECORD_PAYLOAD_MAX(ex->chunk_size)) {
			char hex[HASH_HEX_LEN + 1];
			hash_hex(items[k].e.hash, HASH_LEN, hex);
			return kerr_set(err, KERR_CORRUPT,
			                "chunk %s is damaged: its record has an impossible size",
			                hex);
		}
		at[k] = len;
		len += WIRE_CHUNK_HEADER + items[k].e.clen;
	}
	data = xmalloc(len ? len : 1);
	fill = (struct export_fill){data, at};
	ng = span_plan(items, n, ex->read_span, groups);
	for (size_t g = 0; g < ng && r == 0; g++) {
		const struct span_item *it = &items[groups[g].first];
		r = span_read_group(&sr, ex->chunk_size, &ex->files[it->pack], it, groups[g].n,
		                    false, export_take, &fill, err);
	}
	span_reader_release(&sr);
	if (r < 0)
		return -1;
	return buf_add(out, data, len, err);
}

int store_export_read(const struct store_export *ex, const uint8_t (*hashes)[HASH_LEN], size_t n,
                      struct buf *out, struct kerr **err)
{
	_cleanup_free_ struct span_item *items = xcalloc(n ? n : 1, sizeof(*items));
	struct chunk_reader reader = {0};
	int r = -1;

	for (size_t i = 0; i < n; i++) {
		const struct chunk_loc *loc;
		char hex[HASH_HEX_LEN + 1];

		hash_hex(hashes[i], HASH_LEN, hex);
		/* Only the chunks of the snapshot the caller may read. */
		if (!hashset_has(&ex->uses, hashes[i]))
			return kerr_set(err, KERR_NOT_FOUND, "snapshot '%s' has no chunk %s",
			                ex->id, hex);
		loc = index_find(&ex->idx, hashes[i]);
		if (!loc)
			return kerr_set(
			    err, KERR_CORRUPT,
			    "snapshot '%s' uses chunk %s, which its store does not have", ex->id,
			    hex);
		span_item_set(&items[i], loc, i);
	}
	if (ex->read_span)
		return export_read_spans(ex, items, n, out, err);
	for (size_t i = 0; i < n; i++) {
		const struct pack_entry *pe = &items[i].e;
		uint8_t head[WIRE_CHUNK_HEADER];

		if (chunk_read(&reader, ex->chunk_size, &ex->files[items[i].pack], pe,
		               CHUNK_CHECK_FAST, err) < 0)
			goto out;
		wire_head(head, pe);
		if (buf_add(out, head, sizeof(head), err) < 0 ||
		    buf_add(out, chunk_stored(&reader, pe), pe->clen, err) < 0)
			goto out;
	}
	r = 0;
out:
	chunk_reader_release(&reader);
	return r;
}

int store_export_chunks(struct store *s, const char *id, const uint8_t (*hashes)[HASH_LEN],
                        size_t n, struct buf *out, struct kerr **err)
{
	struct store_export *ex = NULL;
	int r = store_export_open(s, id, &ex, err);

	if (r == 0)
		r = store_export_read(ex, hashes, n, out, err);
	store_export_close(ex);
	return r;
}

/* A received chunk is the one asked for: decompressed (when stored so) and hashed. */
static int check_chunk(ZSTD_DCtx *dctx, uint8_t *buf, uint32_t chunk_size, const uint8_t *hash,
                       uint32_t flags, uint32_t ulen, const uint8_t *payload, uint32_t clen,
                       struct kerr **err)
{
	char hex[HASH_HEX_LEN + 1];
	uint8_t sum[HASH_LEN];
	const uint8_t *data = payload;

	hash_hex(hash, HASH_LEN, hex);
	if (ulen > chunk_size || (flags & ~PACK_FLAG_ZSTD) ||
	    (!(flags & PACK_FLAG_ZSTD) && clen != ulen))
		return kerr_set(err, KERR_CORRUPT, "chunk %s came with an impossible size", hex);
	if (flags & PACK_FLAG_ZSTD) {
		size_t got = ZSTD_decompressDCtx(dctx, buf, chunk_size, payload, clen);
		if (ZSTD_isError(got) || got != ulen)
			return kerr_set(err, KERR_CORRUPT,
			                "chunk %s came damaged: it does not "
			                "decompress",
			                hex);
		data = buf;
	}
	hash_sha256(data, ulen, sum);
	if (memcmp(sum, hash, HASH_LEN))
		return kerr_set(err, KERR_CORRUPT,
		                "chunk %s came damaged: its content does not match its hash", hex);
	return 0;
}

int store_copy_remote(struct store *dst, const struct store_source *src, const char *id,
                      const char *new_id, const struct store_progress *progress,
                      struct store_copy_result *res, struct kerr **err)
{
	_cleanup_buf_ struct buf got = BUF_INIT;
	struct manifest m = {0};
	struct index didx = {0};
	struct pack_writer pw;
	struct hashset wanted;
	uint8_t(*batch)[HASH_LEN] = NULL;
	uint8_t *buf = NULL;
	ZSTD_DCtx *dctx = NULL;
	size_t nbatch = 0;
	int r = -1;

	memset(res, 0, sizeof(*res));
	pack_writer_init(&pw, dst->blob, dst->chunk_size);
	hashset_init(&wanted);
	if (!id_valid("snap", new_id)) {
		kerr_set(err, KERR_INVALID, "invalid snapshot id '%s'", new_id);
		goto out;
	}
	if (src->manifest(src->ctx, id, &got, err) < 0 ||
	    manifest_decode((const uint8_t *)got.data, got.len, &m, err) < 0)
		goto out;
	if (m.chunk_size != dst->chunk_size) {
		kerr_set(err, KERR_INVALID, "the stores have different chunk sizes (%u, %u)",
		         m.chunk_size, dst->chunk_size);
		goto out;
	}
	if (index_load(dst, &didx, err) < 0)
		goto out;
	res->chunks = m.n;
	batch = xcalloc(STORE_REMOTE_BATCH, HASH_LEN);
	buf = xmalloc(dst->chunk_size);
	dctx = ZSTD_createDCtx();
	if (!dctx)
		abort();
	for (size_t i = 0; i <= m.n; i++) {
		if (i < m.n) {
			if (progress && (i % 64 == 0))
				progress->fn(progress->ctx, i, m.n);
			if (index_find(&didx, m.e[i].hash) || !hashset_add(&wanted, m.e[i].hash))
				continue; /* here already, or asked for in this copy */
			memcpy(batch[nbatch++], m.e[i].hash, HASH_LEN);
			if (nbatch < STORE_REMOTE_BATCH)
				continue;
		}
		if (!nbatch)
			continue;
		buf_reset(&got);
		if (src->chunks(src->ctx, id, (const uint8_t(*)[HASH_LEN])batch, nbatch, &got,
		                err) < 0)
			goto out;
		{
			const uint8_t *p = (const uint8_t *)got.data, *end = p + got.len;
			for (size_t k = 0; k < nbatch; k++) {
				uint32_t flags, ulen, clen;
				if ((size_t)(end - p) < WIRE_CHUNK_HEADER) {
					kerr_set(
					    err, KERR_CORRUPT,
					    "the source's answer for snapshot '%s' is truncated",
					    id);
					goto out;
				}
				flags = get_le32(p + HASH_LEN);
				ulen = get_le32(p + HASH_LEN + 4);
				clen = get_le32(p + HASH_LEN + 8);
				if (memcmp(p, batch[k], HASH_LEN) ||
				    (size_t)(end - p - WIRE_CHUNK_HEADER) < clen) {
					kerr_set(err, KERR_CORRUPT,
					         "the source's answer for snapshot '%s' is not the "
					         "chunks asked for",
					         id);
					goto out;
				}
				if (check_chunk(dctx, buf, dst->chunk_size, batch[k], flags, ulen,
				                p + WIRE_CHUNK_HEADER, clen, err) < 0 ||
				    pack_writer_add(&pw, batch[k], p + WIRE_CHUNK_HEADER, clen,
				                    ulen, flags, err) < 0)
					goto out;
				res->chunks_sent++;
				res->bytes_sent += clen;
				p += WIRE_CHUNK_HEADER + clen;
			}
			if (p != end) {
				kerr_set(
				    err, KERR_CORRUPT,
				    "the source's answer for snapshot '%s' has more than asked",
				    id);
				goto out;
			}
		}
		nbatch = 0;
		if (commit_index_sealed(dst, &pw, err) < 0) /* kept if the copy stops */
			goto out;
	}
	str_copy(m.id, new_id, sizeof(m.id));
	m.parent[0] = '\0'; /* its parent lives in the other store */
	if (commit_write(dst, &pw, &m, "copy.commit", err) < 0)
		goto out;
	if (progress)
		progress->fn(progress->ctx, m.n, m.n);
	r = 0;
out:
	/* Every chunk written is checked: keep them, so that the next try asks for the rest
	 * only. What no snapshot comes to use, gc removes. */
	if (r < 0)
		commit_abandon(dst, &pw, true);
	pack_writer_release(&pw);
	hashset_release(&wanted);
	ZSTD_freeDCtx(dctx);
	free(buf);
	free(batch);
	index_release(&didx);
	manifest_release(&m);
	return r;
}
