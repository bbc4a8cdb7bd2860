/* Copy a snapshot into another store (another region's) sending only the chunks that store
 * lacks: each missing chunk is read as stored (still compressed) and checked, appended to the
 * destination's packs, indexed, and the manifest is written last under the new id (the commit
 * point, as for a snapshot). A second copy of a related snapshot moves only what changed. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "util/cleanup.h"
#include "util/fault.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

int store_copy(struct store *src, struct store *dst, const char *id, const char *new_id,
               const struct store_progress *progress, struct store_copy_result *res,
               struct kerr **err)
{
	struct manifest m = {0};
	struct index sidx = {0}, didx = {0};
	struct chunk_reader reader = {0};
	struct pack_writer pw;
	struct hashset sent;
	struct blob_file *fds = NULL;
	bool indexed = false;
	int r = -1;

	memset(res, 0, sizeof(*res));
	pack_writer_init(&pw, dst->blob, dst->chunk_size);
	hashset_init(&sent);
	if (!id_valid("snap", new_id)) {
		kerr_set(err, KERR_INVALID, "invalid snapshot id '%s'", new_id);
		goto out;
	}
	if (src->chunk_size != dst->chunk_size) {
		kerr_set(err, KERR_INVALID, "the stores have different chunk sizes (%u, %u)",
		         src->chunk_size, dst->chunk_size);
		goto out;
	}
	if (manifest_load(src, id, &m, err) < 0 || index_load(src, &sidx, err) < 0 ||
	    index_load(dst, &didx, err) < 0 || index_open_packs(src, &sidx, &fds, err) < 0)
		goto out;
	res->chunks = m.n;
	for (size_t i = 0; i < m.n; i++) {
		const uint8_t *hash = m.e[i].hash;
		const struct chunk_loc *loc;
		struct pack_entry pe;
		const void *payload;

		if (progress && (i % 64 == 0 || i + 1 == m.n))
			progress->fn(progress->ctx, i, m.n);
		if (index_find(&didx, hash) || !hashset_add(&sent, hash))
			continue; /* the destination has it, or this copy sent it already */
		loc = index_find(&sidx, hash);
		if (!loc) {
			char hex[HASH_HEX_LEN + 1];
			hash_hex(hash, HASH_LEN, hex);
			kerr_set(err, KERR_CORRUPT,
			         "snapshot '%s' uses chunk %s, which its store does not have", id,
			         hex);
			goto out;
		}
		chunk_loc_entry(loc, &pe);
		/* Checked on the way out: damage is not carried to another region. */
		if (chunk_read(&reader, src->chunk_size, &fds[loc->pack], &pe, CHUNK_CHECK_FAST,
		               err) < 0)
			goto out;
		payload = pe.flags & PACK_FLAG_ZSTD ? (const void *)reader.cbuf
		                                    : (const void *)reader.buf;
		if (pack_writer_add(&pw, hash, payload, pe.clen, pe.ulen, pe.flags, err) < 0)
			goto out;
		res->chunks_sent++;
		res->bytes_sent += pe.clen;
	}
	if (pack_writer_finish(&pw, err) < 0)
		goto out;
	for (size_t i = 0; i < pw.nsealed; i++) {
		if (index_write(dst, pw.sealed[i].id, pw.sealed[i].e, pw.sealed[i].n, err) < 0)
			goto out;
		indexed = true;
	}
	str_copy(m.id, new_id, sizeof(m.id));
	m.parent[0] = '\0'; /* its parent lives in the other store */
	fault_point("copy.commit");
	if (manifest_save(dst, &m, err) < 0)
		goto out;
	if (progress)
		progress->fn(progress->ctx, m.n, m.n);
	r = 0;
out:
	if (r < 0 && !indexed)
		pack_writer_discard(&pw); /* indexed packs stay: gc removes what no snapshot uses */
	pack_writer_release(&pw);
	hashset_release(&sent);
	chunk_reader_release(&reader);
	if (fds)
		index_close_packs(&sidx, fds);
	index_release(&sidx);
	index_release(&didx);
	manifest_release(&m);
	return r;
}
