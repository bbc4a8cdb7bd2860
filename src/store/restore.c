/* Restoring a snapshot into a sparse file: holes for zero chunks, every chunk hash-checked,
 * written to a temporary name and renamed over the target only when all of it is right. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/fs.h"
#include "util/par.h"
#include "util/xalloc.h"
#include "util/fault.h"
#include "util/banned.h"

/* Where a chunk of the manifest is, for reading neighbours together. */
struct restore_item {
	uint32_t pack, off, end; /* its record: [off, end) of the pack */
	size_t entry;            /* in the manifest */
};

struct restore_group {
	size_t first, n; /* items */
};

/* Bytes between two records of one pack worth reading rather than asking twice. */
#define RESTORE_GAP (256u << 10)

struct restore_job {
	const struct manifest *m;
	const struct index *idx;
	struct blob_file *pack_fds;
	int out_fd;
	struct chunk_reader r[PAR_MAX_THREADS];
	atomic_uint_fast64_t done;
	pthread_mutex_t progress_lock;
	const struct store_progress *progress;
	/* grouped reads (blob read_span) */
	struct blob *b;
	struct restore_item *items;
	struct restore_group *groups;
	uint8_t *span[PAR_MAX_THREADS];
	bool *cached[PAR_MAX_THREADS];
};

static void restore_progress(struct restore_job *j)
{
	if (j->progress) {
		uint64_t d = atomic_fetch_add(&j->done, 1) + 1;
		if (d % 64 == 0 || d == j->m->n) {
			pthread_mutex_lock(&j->progress_lock);
			j->progress->fn(j->progress->ctx, d, j->m->n);
			pthread_mutex_unlock(&j->progress_lock);
		}
	}
}

/* The chunk's place in the store, checked against what the volume needs there. */
static int restore_locate(const struct restore_job *j, size_t i, struct pack_entry *e,
                          uint32_t *pack, struct kerr **err)
{
	const struct manifest_entry *me = &j->m->e[i];
	const struct chunk_loc *loc = index_find(j->idx, me->hash);
	uint64_t off = me->chunk * j->m->chunk_size;
	uint64_t want =
	    j->m->volume_size - off < j->m->chunk_size ? j->m->volume_size - off : j->m->chunk_size;
	char hex[HASH_HEX_LEN + 1];

	if (!loc) {
		hash_hex(me->hash, HASH_LEN, hex);
		return kerr_set(err, KERR_CORRUPT,
		                "chunk %s (volume offset %llu) is missing from the store", hex,
		                (unsigned long long)off);
	}
	chunk_loc_entry(loc, e);
	if (e->ulen != want) {
		hash_hex(me->hash, HASH_LEN, hex);
		return kerr_set(err, KERR_CORRUPT,
		                "chunk %s has %u bytes where the volume needs %llu", hex, e->ulen,
		                (unsigned long long)want);
	}
	*pack = loc->pack;
	return 0;
}

static int restore_write(struct restore_job *j, unsigned tid, size_t i, struct kerr **err)
{
	uint64_t off = j->m->e[i].chunk * j->m->chunk_size;
	uint64_t len =
	    j->m->volume_size - off < j->m->chunk_size ? j->m->volume_size - off : j->m->chunk_size;

	if (fs_pwrite_full(j->out_fd, j->r[tid].buf, len, (off_t)off) < 0)
		return kerr_errno(err, errno, "cannot write the restored volume");
	restore_progress(j);
	return 0;
}

/* One chunk at a time, each with its own read (a directory's preadv). */
static int restore_chunk(void *ctx, size_t i, unsigned tid, struct kerr **err)
{
	struct restore_job *j = ctx;
	struct pack_entry e;
	uint32_t pack;

	if (restore_locate(j, i, &e, &pack, err) < 0)
		return -1;
	if (chunk_read(&j->r[tid], j->m->chunk_size, &j->pack_fds[pack], &e, CHUNK_CHECK_FAST,
	               err) < 0)
		return kerr_wrap(err, "volume offset %llu",
		                 (unsigned long long)(j->m->e[i].chunk * j->m->chunk_size));
	return restore_write(j, tid, i, err);
}

/* One group of neighbouring records of a pack: those the host's cache lacks in one read. */
static int restore_group(void *ctx, size_t g, unsigned tid, struct kerr **err)
{
	struct restore_job *j = ctx;
	const struct restore_group *grp = &j->groups[g];
	const struct restore_item *it = &j->items[grp->first];
	bool *cached = j->cached[tid];
	uint32_t lo = UINT32_MAX, hi = 0;
	struct pack_entry e;
	uint32_t pack;
	ssize_t got;

	for (size_t k = 0; k < grp->n; k++) {
		if (restore_locate(j, it[k].entry, &e, &pack, err) < 0)
			return -1;
		cached[k] = chunk_read_cached(&j->r[tid], j->m->chunk_size, j->b, &e);
		if (cached[k]) {
			if (restore_write(j, tid, it[k].entry, err) < 0)
				return -1;
			continue;
		}
		lo = it[k].off < lo ? it[k].off : lo;
		hi = it[k].end > hi ? it[k].end : hi;
	}
	if (hi == 0)
		return 0;
	struct iovec iov = {j->span[tid], hi - lo};
	got = blob_file_preadv(&j->pack_fds[it[0].pack], &iov, 1, lo, err);
	if (got < 0)
		return kerr_wrap(err, "cannot read records %u-%u of a pack", lo, hi);
	for (size_t k = 0; k < grp->n; k++) {
		uint64_t voff = j->m->e[it[k].entry].chunk * j->m->chunk_size;
		if (cached[k])
			continue;
		restore_locate(j, it[k].entry, &e, &pack, NULL);
		if (chunk_take_record(
		        &j->r[tid], j->m->chunk_size, j->b, &e, j->span[tid] + (it[k].off - lo),
		        (uint64_t)got > it[k].off - lo ? (size_t)got - (it[k].off - lo) : 0,
		        err) < 0)
			return kerr_wrap(err, "volume offset %llu", (unsigned long long)voff);
		if (restore_write(j, tid, it[k].entry, err) < 0)
			return -1;
	}
	return 0;
}

static int by_place(const void *a, const void *b)
{
	const struct restore_item *x = a, *y = b;

	if (x->pack != y->pack)
		return x->pack < y->pack ? -1 : 1;
	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return x->entry < y->entry ? -1 : x->entry > y->entry;
}

/* The manifest's chunks as groups of neighbouring records, each at most span bytes. */
static int restore_plan(struct restore_job *j, uint64_t span, size_t *ngroups, struct kerr **err)
{
	size_t n = j->m->n, ng = 0;
	uint64_t gstart = 0, gend = 0;

	j->items = xcalloc(n ? n : 1, sizeof(*j->items));
	j->groups = xcalloc(n ? n : 1, sizeof(*j->groups));
	for (size_t i = 0; i < n; i++) {
		struct pack_entry e;
		uint32_t pack;
		if (restore_locate(j, i, &e, &pack, err) < 0)
			return -1;
		j->items[i] =
		    (struct restore_item){.pack = pack,
		                          .off = (uint32_t)e.off,
		                          .end = (uint32_t)(e.off + PACK_RECORD_HEADER + e.clen),
		                          .entry = i};
	}
	qsort(j->items, n, sizeof(*j->items), by_place);
	for (size_t i = 0; i < n; i++) {
		const struct restore_item *it = &j->items[i];
		bool join = ng && it->pack == j->items[i - 1].pack &&
		            it->off <= gend + RESTORE_GAP && (uint64_t)it->end - gstart <= span;
		if (!join) {
			j->groups[ng++] = (struct restore_group){i, 0};
			gstart = it->off;
			gend = 0;
		}
		j->groups[ng - 1].n++;
		gend = it->end > gend ? it->end : gend;
	}
	*ngroups = ng;
	return 0;
}

int store_restore(struct store *s, const char *snap_id, const char *out,
                  const struct store_progress *progress, struct kerr **err)
{
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = -1;
	struct restore_job j = {0};
	struct manifest m = {0};
	struct index idx = {0};
	int r = -1;

	if (manifest_load(s, snap_id, &m, err) < 0)
		return -1;
	if (index_load(s, &idx, err) < 0)
		goto out;
	if (index_open_packs(s, &idx, m.n ? m.e[0].hash : NULL, sizeof(*m.e), m.n, &j.pack_fds,
	                     err) < 0)
		goto out;
	{
		/* ".NAME.tmp-HEX" beside out: the name a pool gives its half-made files, so that
		 * pool_clean removes what a killed restore left. */
		_cleanup_free_ char *dir = xstrdup(out), *base = xstrdup(out);
		char suffix[9];
		id_random_hex(suffix, 8);
		tmp = xasprintf("%s/.%s.tmp-%s", dirname(dir), basename(base), suffix);
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		kerr_errno(err, errno, "cannot create '%s'", tmp);
		goto out;
	}
	if (ftruncate(fd, (off_t)m.volume_size) < 0) {
		kerr_errno(err, errno, "cannot size '%s'", out);
		goto out;
	}
	j.m = &m;
	j.idx = &idx;
	j.out_fd = fd;
	j.progress = progress;
	atomic_init(&j.done, 0);
	pthread_mutex_init(&j.progress_lock, NULL);
	if (progress)
		progress->fn(progress->ctx, 0, m.n);
	j.b = s->blob;
	if (s->blob->read_span) {
		size_t ng, most = 1;
		unsigned threads = store_read_threads(s);
		if (restore_plan(&j, s->blob->read_span, &ng, err) < 0) {
			kerr_wrap(err, "cannot restore snapshot '%s'", snap_id);
			goto out;
		}
		for (size_t g = 0; g < ng; g++)
			most = j.groups[g].n > most ? j.groups[g].n : most;
		for (unsigned t = 0; t < threads; t++) {
			/* a group spans at most read_span, or one record when that is larger */
			j.span[t] =
			    xmalloc(s->blob->read_span + PACK_RECORD_HEADER + m.chunk_size + 1024);
			j.cached[t] = xcalloc(most, sizeof(bool));
		}
		if (par_for(ng, threads, restore_group, &j, err) < 0) {
			kerr_wrap(err, "cannot restore snapshot '%s'", snap_id);
			goto out;
		}
	} else if (par_for(m.n, store_read_threads(s), restore_chunk, &j, err) < 0) {
		kerr_wrap(err, "cannot restore snapshot '%s'", snap_id);
		goto out;
	}
	fault_point("restore.written");
	if (rename(tmp, out) < 0) {
		kerr_errno(err, errno, "cannot rename the restored volume to '%s'", out);
		goto out;
	}
	r = 0;
out:
	if (r < 0 && fd >= 0)
		unlink(tmp);
	for (size_t t = 0; t < PAR_MAX_THREADS; t++) {
		chunk_reader_release(&j.r[t]);
		free(j.span[t]);
		free(j.cached[t]);
	}
	free(j.items);
	free(j.groups);
	if (j.m)
		pthread_mutex_destroy(&j.progress_lock);
	index_close_packs(&idx, j.pack_fds);
	index_release(&idx);
	manifest_release(&m);
	return r;
}
