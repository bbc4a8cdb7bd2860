/* Copy a snapshot into another store (another region's) sending only the chunks that store
 * lacks: each missing chunk is read as stored (still compressed; from object storage with its
 * neighbours in one read, spans.c) and checked, appended to the destination's packs, indexed,
 * and the manifest is written last under the new id (the commit point, as for a snapshot). A
 * second copy of a related snapshot moves only what changed. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "util/cleanup.h"
#include "util/par.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

struct copy_job {
	struct store *src;
	const struct index *sidx;
	struct blob_file *fds;
	struct pack_writer *pw;
	const uint8_t (*hash)[HASH_LEN]; /* the chunks to send */
	struct chunk_reader r[PAR_MAX_THREADS];
	struct span_reader sr[PAR_MAX_THREADS];
	struct span_item *items; /* grouped reads (blob read_span) */
	struct span_group *groups;
	atomic_uint_fast64_t bytes;
	atomic_uint_fast64_t done;
	pthread_mutex_t progress_lock;
	const struct store_progress *progress;
	size_t total; /* the snapshot's chunks, for progress */
	size_t skipped;
};

/* A chunk read and checked into r goes to the destination as stored (still compressed). */
static int copy_send(struct copy_job *j, const uint8_t hash[HASH_LEN], const struct pack_entry *e,
                     const struct chunk_reader *r, struct kerr **err)
{
	if (pack_writer_add(j->pw, hash, chunk_stored(r, e), e->clen, e->ulen, e->flags, err) < 0)
		return -1;
	atomic_fetch_add(&j->bytes, e->clen);
	if (j->progress) {
		uint64_t d = atomic_fetch_add(&j->done, 1) + 1 + j->skipped;
		if (d % 64 == 0) {
			pthread_mutex_lock(&j->progress_lock);
			j->progress->fn(j->progress->ctx, d, j->total);
			pthread_mutex_unlock(&j->progress_lock);
		}
	}
	return 0;
}

/* One chunk a read (a directory's preadv). */
static int copy_chunk(void *ctx, size_t i, unsigned tid, struct kerr **err)
{
	struct copy_job *j = ctx;
	const struct chunk_loc *loc = index_find(j->sidx, j->hash[i]);
	struct pack_entry pe;

	chunk_loc_entry(loc, &pe);
	/* Checked on the way out: damage is not carried to another region. */
	if (chunk_read(&j->r[tid], j->src->chunk_size, &j->fds[loc->pack], &pe, CHUNK_CHECK_FAST,
	               err) < 0)
		return -1;
	return copy_send(j, j->hash[i], &pe, &j->r[tid], err);
}

static int copy_take(void *ctx, const struct span_item *it, struct chunk_reader *r,
                     struct kerr **err)
{
	struct copy_job *j = ctx;

	return copy_send(j, j->hash[it->entry], &it->e, r, err);
}

/* One group of neighbouring records of a source pack (object storage): those the host's cache
 * lacks in one read, each checked as chunk_read does. Not kept in the cache: a copy reads each
 * chunk once for another region, and would push out the chunks this host's restores reuse. */
static int copy_group(void *ctx, size_t g, unsigned tid, struct kerr **err)
{
	struct copy_job *j = ctx;
	const struct span_group *grp = &j->groups[g];
	const struct span_item *it = &j->items[grp->first];

	return span_read_group(&j->sr[tid], j->src->chunk_size, &j->fds[it->pack], it, grp->n,
	                       false, copy_take, j, err);
}

int store_copy(struct store *src, struct store *dst, const char *id, const char *new_id,
               const struct store_progress *progress, struct store_copy_result *res,
               struct kerr **err)
{
	struct manifest m = {0};
	struct index sidx = {0}, didx = {0};
	struct copy_job j = {0};
	struct pack_writer pw;
	struct hashset sent;
	struct blob_file *fds = NULL;
	uint8_t(*send)[HASH_LEN] = NULL;
	size_t nsend = 0;
	int r = -1;

	memset(res, 0, sizeof(*res));
	pack_writer_init(&pw, dst->blob, dst->chunk_size);
	hashset_init(&sent);
	pthread_mutex_init(&j.progress_lock, NULL);
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
	    index_load(dst, &didx, err) < 0)
		goto out;
	res->chunks = m.n;
	/* What to send: the chunks the destination lacks, once each. */
	send = xreallocarray(NULL, m.n ? m.n : 1, HASH_LEN);
	for (size_t i = 0; i < m.n; i++) {
		const uint8_t *hash = m.e[i].hash;

		if (index_find(&didx, hash) || !hashset_add(&sent, hash))
			continue; /* the destination has it, or this copy sends it already */
		if (!index_find(&sidx, hash)) {
			char hex[HASH_HEX_LEN + 1];
			hash_hex(hash, HASH_LEN, hex);
			kerr_set(err, KERR_CORRUPT,
			         "snapshot '%s' uses chunk %s, which its store does not have", id,
			         hex);
			goto out;
		}
		memcpy(send[nsend++], hash, HASH_LEN);
	}
	if (index_open_packs(src, &sidx, send[0], HASH_LEN, nsend, &fds, err) < 0)
		goto out;
	if (progress)
		progress->fn(progress->ctx, m.n - nsend, m.n);
	/* Read on several threads: from object storage each read is a round trip. */
	j.src = src;
	j.sidx = &sidx;
	j.fds = fds;
	j.pw = &pw;
	j.hash = (const uint8_t(*)[HASH_LEN])send;
	j.progress = progress;
	j.total = m.n;
	j.skipped = m.n - nsend;
	atomic_init(&j.bytes, 0);
	atomic_init(&j.done, 0);
	if (src->blob->read_span) {
		size_t ng;
		j.items = xcalloc(nsend ? nsend : 1, sizeof(*j.items));
		j.groups = xcalloc(nsend ? nsend : 1, sizeof(*j.groups));
		for (size_t i = 0; i < nsend; i++)
			span_item_set(&j.items[i], index_find(&sidx, send[i]), i);
		ng = span_plan(j.items, nsend, src->blob->read_span, j.groups);
		if (par_for(ng, store_read_threads(src), copy_group, &j, err) < 0) {
			kerr_wrap(err, "cannot copy snapshot '%s'", id);
			goto out;
		}
	} else if (par_for(nsend, store_read_threads(src), copy_chunk, &j, err) < 0) {
		kerr_wrap(err, "cannot copy snapshot '%s'", id);
		goto out;
	}
	res->chunks_sent = nsend;
	res->bytes_sent = atomic_load(&j.bytes);
	str_copy(m.id, new_id, sizeof(m.id));
	m.parent[0] = '\0'; /* its parent lives in the other store */
	if (commit_write(dst, &pw, &m, "copy.commit", err) < 0)
		goto out;
	if (progress)
		progress->fn(progress->ctx, m.n, m.n);
	r = 0;
out:
	if (r < 0)
		commit_abandon(dst, &pw, false);
	pack_writer_release(&pw);
	hashset_release(&sent);
	for (size_t t = 0; t < PAR_MAX_THREADS; t++) {
		chunk_reader_release(&j.r[t]);
		span_reader_release(&j.sr[t]);
	}
	free(j.items);
	free(j.groups);
	pthread_mutex_destroy(&j.progress_lock);
	free(send);
	if (fds)
		index_close_packs(&sidx, fds);
	index_release(&sidx);
	index_release(&didx);
	manifest_release(&m);
	return r;
}
