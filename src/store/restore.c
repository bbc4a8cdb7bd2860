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

struct restore_job {
	const struct manifest *m;
	const struct index *idx;
	struct blob_file *pack_fds;
	int out_fd;
	struct chunk_reader r[PAR_MAX_THREADS];
	struct span_reader sr[PAR_MAX_THREADS];
	atomic_uint_fast64_t done;
	pthread_mutex_t progress_lock;
	const struct store_progress *progress;
	/* grouped reads (blob read_span) */
	struct span_item *items;
	struct span_group *groups;
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

static int restore_write(struct restore_job *j, size_t i, const uint8_t *data, struct kerr **err)
{
	uint64_t off = j->m->e[i].chunk * j->m->chunk_size;
	uint64_t len =
	    j->m->volume_size - off < j->m->chunk_size ? j->m->volume_size - off : j->m->chunk_size;

	if (fs_pwrite_full(j->out_fd, data, len, (off_t)off) < 0)
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
	return restore_write(j, i, j->r[tid].buf, err);
}

static int restore_take(void *ctx, const struct span_item *it, struct chunk_reader *r,
                        struct kerr **err)
{
	return restore_write(ctx, it->entry, r->buf, err);
}

/* One group of neighbouring records of a pack: those the host's cache lacks in one read. */
static int restore_group(void *ctx, size_t g, unsigned tid, struct kerr **err)
{
	struct restore_job *j = ctx;
	const struct span_group *grp = &j->groups[g];
	const struct span_item *it = &j->items[grp->first];
	struct span_reader *sr = &j->sr[tid];

	if (span_read_group(sr, j->m->chunk_size, &j->pack_fds[it->pack], it, grp->n, true,
	                    restore_take, j, err) == 0)
		return 0;
	if (!sr->bad)
		return -1;
	return kerr_wrap(err, "volume offset %llu",
	                 (unsigned long long)(j->m->e[sr->bad->entry].chunk * j->m->chunk_size));
}

/* The manifest's chunks as groups of neighbouring records, each at most span bytes. */
static int restore_plan(struct restore_job *j, uint64_t span, size_t *ngroups, struct kerr **err)
{
	size_t n = j->m->n;

	j->items = xcalloc(n ? n : 1, sizeof(*j->items));
	j->groups = xcalloc(n ? n : 1, sizeof(*j->groups));
	for (size_t i = 0; i < n; i++) {
		if (restore_locate(j, i, &j->items[i].e, &j->items[i].pack, err) < 0)
			return -1;
		j->items[i].entry = i;
	}
	*ngroups = span_plan(j->items, n, span, j->groups);
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
	if (s->blob->read_span) {
		size_t ng;
		if (restore_plan(&j, s->blob->read_span, &ng, err) < 0 ||
		    par_for(ng, store_read_threads(s), restore_group, &j, err) < 0) {
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
		span_reader_release(&j.sr[t]);
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
