/* Verify: reread and rehash every stored chunk, check every manifest against the index,
 * and name each damaged chunk together with the snapshots that use it. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/par.h"
#include "util/xalloc.h"
#include "util/banned.h"

struct verify_job {
	struct store *s;
	const struct index *idx;
	struct blob_file *pack_fds;
	uint8_t *damaged; /* per index entry */
	struct chunk_reader r[PAR_MAX_THREADS];
	pthread_mutex_t lock;
	void (*report)(void *ctx, const char *line);
	void *ctx;
	uint64_t problems;
	atomic_uint_fast64_t bytes;
};

static void problem(struct verify_job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void problem(struct verify_job *j, const char *fmt, ...)
{
	char line[1400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&j->lock);
	j->problems++;
	if (j->report)
		j->report(j->ctx, line);
	pthread_mutex_unlock(&j->lock);
}

static int verify_chunk(void *ctx, size_t i, unsigned tid, struct kerr **err)
{
	struct verify_job *j = ctx;
	const struct chunk_loc *l = &j->idx->v[i];
	_cleanup_kerr_ struct kerr *bad = NULL;
	struct pack_entry e;
	char hex[HASH_HEX_LEN + 1];

	(void)err;
	chunk_loc_entry(l, &e);
	if (chunk_read(&j->r[tid], j->s->chunk_size, &j->pack_fds[l->pack], &e, CHUNK_CHECK_HASH,
	               &bad) < 0) {
		j->damaged[i] = 1;
		hash_hex(l->hash, HASH_LEN, hex);
		problem(j, "damaged chunk %s in pack %016" PRIx64 " at offset %u: %s", hex,
		        j->idx->pack_ids[l->pack], l->off, bad->msg);
	}
	atomic_fetch_add(&j->bytes, e.ulen);
	return 0;
}

static void verify_packs(struct verify_job *j)
{
	for (size_t p = 0; p < j->idx->npacks; p++) {
		_cleanup_kerr_ struct kerr *bad = NULL;
		_cleanup_free_ struct pack_entry *e = NULL;
		uint64_t end;
		size_t n, want = 0;

		for (size_t i = 0; i < j->idx->n; i++)
			want += j->idx->v[i].pack == p;
		if (pack_read_footer(&j->pack_fds[p], &end, &e, &n, &bad) < 0)
			problem(j, "pack %016" PRIx64 " is damaged: %s", j->idx->pack_ids[p],
			        bad->msg);
		else if (n != want)
			problem(j, "pack %016" PRIx64 " lists %zu chunks but its index %zu",
			        j->idx->pack_ids[p], n, want);
	}
}

/* ids were listed before the index was loaded: a snapshot committed since then may use
 * chunks this index does not know yet, so it is left for the next verify. */
static void verify_manifests(struct verify_job *j, char (*ids)[ID_MAX], size_t n)
{
	_cleanup_kerr_ struct kerr *bad = NULL;
	char hex[HASH_HEX_LEN + 1];

	for (size_t i = 0; i < n; i++) {
		struct manifest m;

		if (manifest_load(j->s, ids[i], &m, &bad) < 0) {
			problem(j, "snapshot %s is damaged: %s", ids[i], bad->msg);
			kerr_free(steal_ptr(bad));
			continue;
		}
		for (size_t k = 0; k < m.n; k++) {
			const struct chunk_loc *l = index_find(j->idx, m.e[k].hash);
			unsigned long long off = (unsigned long long)(m.e[k].chunk * m.chunk_size);

			if (l && !j->damaged[l - j->idx->v])
				continue;
			hash_hex(m.e[k].hash, HASH_LEN, hex);
			if (!l)
				problem(j,
				        "snapshot %s needs missing chunk %s at volume offset %llu",
				        m.id, hex, off);
			else
				problem(j,
				        "snapshot %s uses damaged chunk %s at volume offset %llu",
				        m.id, hex, off);
		}
		manifest_release(&m);
	}
}

int store_verify(struct store *s, void (*report)(void *ctx, const char *line), void *ctx,
                 struct store_verify_result *res, struct kerr **err)
{
	struct verify_job j = {.s = s, .report = report, .ctx = ctx};
	_cleanup_free_ char(*ids)[ID_MAX] = NULL;
	struct index idx = {0};
	size_t nids;
	int r = -1;

	memset(res, 0, sizeof(*res));
	pthread_mutex_init(&j.lock, NULL);
	atomic_init(&j.bytes, 0);
	if (manifest_list(s, &ids, &nids, err) < 0)
		goto out;
	if (index_load(s, &idx, err) < 0) {
		kerr_wrap(err, "cannot load the chunk index");
		goto out;
	}
	if (index_open_all_packs(s, &idx, &j.pack_fds, err) < 0)
		goto out;
	j.idx = &idx;
	j.damaged = xcalloc(idx.n + 1, 1);
	verify_packs(&j);
	if (par_for(idx.n, store_read_threads(s), verify_chunk, &j, err) < 0)
		goto out;
	verify_manifests(&j, ids, nids);
	res->chunks_checked = idx.n;
	res->bytes_checked = atomic_load(&j.bytes);
	res->problems = j.problems;
	if (j.problems)
		kerr_set(err, KERR_CORRUPT, "store '%s' has %llu problem%s", s->path,
		         (unsigned long long)j.problems, j.problems == 1 ? "" : "s");
	else
		r = 0;
out:
	for (size_t t = 0; t < PAR_MAX_THREADS; t++)
		chunk_reader_release(&j.r[t]);
	free(j.damaged);
	index_close_packs(&idx, j.pack_fds);
	index_release(&idx);
	pthread_mutex_destroy(&j.lock);
	return r;
}
