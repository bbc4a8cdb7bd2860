/* Taking a snapshot: read the chunks that may have changed, hash them on every core, store
 * the ones the store lacks (zstd when it pays), then commit packs, index, manifest in order. */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "util/cleanup.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/par.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

/* zstd level 1 keeps a full snapshot at disk speed. An increment is small, so its first
 * bytes get level 3: a few percent smaller for time nobody notices (and copies move less). */
#define ZSTD_LEVEL             1
#define ZSTD_LEVEL_INCREMENT   3
#define INCREMENT_EFFORT_BYTES ((uint64_t)256 << 20)
/* Store compressed only when it saves at least 1/32 (about 3%). */
#define WORTH_COMPRESSING(clen, ulen) ((clen) + (ulen) / 32 <= (ulen))

struct snap_worker {
	uint8_t *buf;
	uint8_t *cbuf;
	size_t cbuf_cap;
	ZSTD_CCtx *cctx;
};

struct snap_job {
	struct store *s;
	const struct index *idx;
	int vfd;
	uint64_t volume_size;
	uint32_t cs;
	const uint64_t *cand; /* chunk numbers to read */
	size_t ncand;
	uint8_t (*hash)[HASH_LEN]; /* per candidate */
	uint8_t *nonzero;          /* per candidate */
	struct pack_writer pw;
	pthread_mutex_t new_lock;
	struct hashset fresh; /* chunks this snapshot stores */
	atomic_uint_fast64_t done;
	atomic_uint_fast64_t chunks_new;
	atomic_uint_fast64_t bytes_new; /* uncompressed */
	bool incremental;
	pthread_mutex_t progress_lock;
	const struct store_progress *progress;
	struct snap_worker w[PAR_MAX_THREADS];
};

static bool all_zero(const uint8_t *p, size_t n)
{
	return p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

/* Random-looking data (already compressed files, encrypted data) does not shrink; finding
 * that out by compressing costs as much as compressing. A byte histogram over a sample tells
 * almost for free: near 8 bits of entropy a byte, skip zstd. */
static bool looks_incompressible(const uint8_t *p, size_t n)
{
	uint32_t hist[256] = {0};
	size_t sampled = 0;
	double bits = 0;

	if (n < 16384)
		return false;
	/* 64 bytes of every KiB: 8192 samples of a 128 KiB chunk put random data near 7.98. */
	for (size_t off = 0; off + 64 <= n; off += 1024) {
		for (size_t k = 0; k < 64; k++)
			hist[p[off + k]]++;
		sampled += 64;
	}
	for (int b = 0; b < 256; b++) {
		if (hist[b]) {
			double f = (double)hist[b] / (double)sampled;
			bits -= f * log2(f);
		}
	}
	return bits > 7.9;
}

static void report_progress(struct snap_job *j)
{
	uint64_t d = atomic_fetch_add(&j->done, 1) + 1;

	if (!j->progress || (d % 64 && d != j->ncand))
		return;
	pthread_mutex_lock(&j->progress_lock);
	j->progress->fn(j->progress->ctx, d, j->ncand);
	pthread_mutex_unlock(&j->progress_lock);
}

static int snap_chunk(void *ctx, size_t i, unsigned tid, struct kerr **err)
{
	struct snap_job *j = ctx;
	struct snap_worker *w = &j->w[tid];
	uint64_t off = j->cand[i] * j->cs;
	size_t want = j->volume_size - off < j->cs ? (size_t)(j->volume_size - off) : j->cs;
	ssize_t n;
	int added;

	if (!w->buf) {
		w->buf = xmalloc(j->cs);
		w->cbuf_cap = ZSTD_compressBound(j->cs);
		w->cbuf = xmalloc(w->cbuf_cap);
		w->cctx = ZSTD_createCCtx();
		if (!w->cctx)
			abort();
		/* A content checksum in every frame lets restore check chunks for the price of
		 * XXH64. */
		ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
	}
	n = fs_pread_full(j->vfd, w->buf, want, (off_t)off);
	if (n < 0)
		return kerr_errno(err, errno, "cannot read the volume at offset %llu",
		                  (unsigned long long)off);
	if ((size_t)n < want)
		return kerr_set(err, KERR_IO, "the volume shrank while it was read");
	fault_point("snapshot.read");
	if (all_zero(w->buf, want)) {
		report_progress(j);
		return 0;
	}
	j->nonzero[i] = 1;
	hash_sha256(w->buf, want, j->hash[i]);
	if (index_find(j->idx, j->hash[i])) {
		report_progress(j);
		return 0;
	}
	pthread_mutex_lock(&j->new_lock);
	added = hashset_add(&j->fresh, j->hash[i]);
	pthread_mutex_unlock(&j->new_lock);
	if (added) {
		bool effort = j->incremental &&
		              atomic_fetch_add(&j->bytes_new, want) < INCREMENT_EFFORT_BYTES;
		ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel,
		                       effort ? ZSTD_LEVEL_INCREMENT : ZSTD_LEVEL);
		size_t clen = looks_incompressible(w->buf, want)
		                  ? want
		                  : ZSTD_compress2(w->cctx, w->cbuf, w->cbuf_cap, w->buf, want);
		bool z = !ZSTD_isError(clen) && WORTH_COMPRESSING(clen, want);

		if (pack_writer_add(&j->pw, j->hash[i], z ? w->cbuf : w->buf,
		                    z ? (uint32_t)clen : (uint32_t)want, (uint32_t)want,
		                    z ? PACK_FLAG_ZSTD : 0, err) < 0)
			return -1;
		atomic_fetch_add(&j->chunks_new, 1);
	}
	report_progress(j);
	return 0;
}

static void snap_job_release(struct snap_job *j)
{
	for (size_t t = 0; t < PAR_MAX_THREADS; t++) {
		free(j->w[t].buf);
		free(j->w[t].cbuf);
		ZSTD_freeCCtx(j->w[t].cctx);
	}
	free(j->hash);
	free(j->nonzero);
	hashset_release(&j->fresh);
	pack_writer_release(&j->pw);
	pthread_mutex_destroy(&j->new_lock);
	pthread_mutex_destroy(&j->progress_lock);
}

static int open_volume(const char *path, int *fd, uint64_t *size, struct kerr **err)
{
	struct stat st;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below. */
	*fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (*fd < 0)
		return kerr_errno(err, errno, "cannot open volume '%s'", path);
	if (fstat(*fd, &st) < 0)
		return kerr_errno(err, errno, "cannot stat volume '%s'", path);
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(*fd, BLKGETSIZE64, size) < 0)
			return kerr_errno(err, errno, "cannot size volume '%s'", path);
	} else {
		return kerr_set(err, KERR_INVALID, "volume '%s' is not a file or block device",
		                path);
	}
	return 0;
}

/* Build the manifest: the parent's entries for chunks not read, ours for the rest. */
static void merge_manifest(struct manifest *m, const struct manifest *parent,
                           const struct snap_job *j)
{
	uint64_t nchunks = m->volume_size / j->cs + (m->volume_size % j->cs != 0);
	size_t pi = 0, ci = 0, cap = (parent ? parent->n : 0) + j->ncand;

	m->e = xreallocarray(NULL, cap ? cap : 1, sizeof(*m->e));
	m->n = 0;
	while ((parent && pi < parent->n) || ci < j->ncand) {
		uint64_t pc = parent && pi < parent->n ? parent->e[pi].chunk : UINT64_MAX;
		uint64_t cc = ci < j->ncand ? j->cand[ci] : UINT64_MAX;

		if (cc <= pc) {
			if (j->nonzero[ci]) {
				m->e[m->n].chunk = cc;
				memcpy(m->e[m->n++].hash, j->hash[ci], HASH_LEN);
			}
			ci++;
			if (cc == pc)
				pi++;
		} else {
			if (pc < nchunks)
				m->e[m->n++] = parent->e[pi];
			pi++;
		}
	}
}

int store_snapshot(struct store *s, const char *volume, const struct store_snapshot_opts *opts,
                   struct store_snapshot_result *res, struct kerr **err)
{
	_cleanup_close_ int vfd = -1, sfd = -1;
	struct manifest parent = {0}, m = {0};
	struct chunk_list cand = {0};
	struct index idx = {0};
	struct snap_job j;
	struct timespec now;
	uint64_t shadow_size = 0;
	bool have_parent = opts->parent && opts->parent[0];
	int r = -1;

	memset(res, 0, sizeof(*res));
	memset(&j, 0, sizeof(j));
	pack_writer_init(&j.pw, s->blob, s->chunk_size);
	pthread_mutex_init(&j.new_lock, NULL);
	pthread_mutex_init(&j.progress_lock, NULL);
	hashset_init(&j.fresh);

	if (opts->id && !id_valid("snap", opts->id)) {
		kerr_set(err, KERR_INVALID, "invalid snapshot id '%s'", opts->id);
		goto out;
	}
	if (opts->shadow && !have_parent) {
		kerr_set(err, KERR_INVALID, "a shadow needs the parent snapshot it was taken with");
		goto out;
	}
	if (open_volume(volume, &vfd, &j.volume_size, err) < 0)
		goto out;
	if (have_parent) {
		if (manifest_load(s, opts->parent, &parent, err) < 0)
			goto out;
		if (parent.chunk_size != s->chunk_size) {
			kerr_set(err, KERR_CORRUPT, "parent '%s' has another chunk size",
			         opts->parent);
			goto out;
		}
	}
	if (index_load(s, &idx, err) < 0)
		goto out;

	if (opts->shadow) {
		if (open_volume(opts->shadow, &sfd, &shadow_size, err) < 0)
			goto out;
		if (shadow_size != parent.volume_size) {
			kerr_set(err, KERR_INVALID,
			         "shadow '%s' is %llu bytes but parent '%s' was %llu", opts->shadow,
			         (unsigned long long)shadow_size, opts->parent,
			         (unsigned long long)parent.volume_size);
			goto out;
		}
		if (extents_changed_chunks(vfd, j.volume_size, sfd, shadow_size, s->chunk_size,
		                           &cand, err) < 0)
			goto out;
	} else if (extents_data_chunks(vfd, j.volume_size, s->chunk_size, &cand, err) < 0) {
		goto out;
	}

	j.s = s;
	j.idx = &idx;
	j.vfd = vfd;
	j.cs = s->chunk_size;
	j.cand = cand.v;
	j.ncand = cand.n;
	j.hash = xreallocarray(NULL, cand.n ? cand.n : 1, HASH_LEN);
	j.nonzero = xcalloc(cand.n ? cand.n : 1, 1);
	j.progress = opts->progress;
	atomic_init(&j.done, 0);
	atomic_init(&j.chunks_new, 0);
	atomic_init(&j.bytes_new, 0);
	j.incremental = have_parent;
	if (j.progress)
		j.progress->fn(j.progress->ctx, 0, j.ncand);
	if (par_for(cand.n, par_threads(), snap_chunk, &j, err) < 0)
		goto out;

	if (opts->id)
		str_copy(m.id, opts->id, sizeof(m.id));
	else
		id_new("snap", m.id);
	str_copy(m.parent, have_parent ? opts->parent : "", sizeof(m.parent));
	m.chunk_size = s->chunk_size;
	m.volume_size = j.volume_size;
	clock_gettime(CLOCK_REALTIME, &now);
	m.created_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	merge_manifest(&m, opts->shadow ? &parent : NULL, &j);
	if (commit_write(s, &j.pw, &m, "snapshot.commit", err) < 0)
		goto out;

	memcpy(res->id, m.id, ID_MAX);
	res->volume_size = j.volume_size;
	res->chunks_read = cand.n;
	res->chunks_new = atomic_load(&j.chunks_new);
	res->bytes_stored = j.pw.bytes;
	r = 0;
out:
	if (r < 0)
		commit_abandon(s, &j.pw, false);
	snap_job_release(&j);
	chunk_list_release(&cand);
	index_release(&idx);
	manifest_release(&parent);
	manifest_release(&m);
	return r;
}
