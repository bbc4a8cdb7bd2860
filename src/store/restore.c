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
	atomic_uint_fast64_t done;
	pthread_mutex_t progress_lock;
	const struct store_progress *progress;
};

static int restore_chunk(void *ctx, size_t i, unsigned tid, struct kerr **err)
{
	struct restore_job *j = ctx;
	const struct manifest_entry *me = &j->m->e[i];
	const struct chunk_loc *loc = index_find(j->idx, me->hash);
	uint64_t off = me->chunk * j->m->chunk_size;
	uint64_t want =
	    j->m->volume_size - off < j->m->chunk_size ? j->m->volume_size - off : j->m->chunk_size;
	struct pack_entry e;
	char hex[HASH_HEX_LEN + 1];

	if (!loc) {
		hash_hex(me->hash, HASH_LEN, hex);
		return kerr_set(err, KERR_CORRUPT,
		                "chunk %s (volume offset %llu) is missing from the store", hex,
		                (unsigned long long)off);
	}
	chunk_loc_entry(loc, &e);
	if (e.ulen != want) {
		hash_hex(me->hash, HASH_LEN, hex);
		return kerr_set(err, KERR_CORRUPT,
		                "chunk %s has %u bytes where the volume needs %llu", hex, e.ulen,
		                (unsigned long long)want);
	}
	if (chunk_read(&j->r[tid], j->m->chunk_size, &j->pack_fds[loc->pack], &e, CHUNK_CHECK_FAST,
	               err) < 0)
		return kerr_wrap(err, "volume offset %llu", (unsigned long long)off);
	if (fs_pwrite_full(j->out_fd, j->r[tid].buf, e.ulen, (off_t)off) < 0)
		return kerr_errno(err, errno, "cannot write the restored volume");
	if (j->progress) {
		uint64_t d = atomic_fetch_add(&j->done, 1) + 1;
		if (d % 64 == 0 || d == j->m->n) {
			pthread_mutex_lock(&j->progress_lock);
			j->progress->fn(j->progress->ctx, d, j->m->n);
			pthread_mutex_unlock(&j->progress_lock);
		}
	}
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
	if (index_open_packs(s, &idx, &j.pack_fds, err) < 0)
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
	if (par_for(m.n, store_read_threads(s), restore_chunk, &j, err) < 0) {
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
	for (size_t t = 0; t < PAR_MAX_THREADS; t++)
		chunk_reader_release(&j.r[t]);
	if (j.m)
		pthread_mutex_destroy(&j.progress_lock);
	index_close_packs(&idx, j.pack_fds);
	index_release(&idx);
	manifest_release(&m);
	return r;
}
