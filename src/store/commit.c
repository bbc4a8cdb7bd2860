/* The store's commit point, one sequence for every writer (snapshot, copies, gc's repack):
 * packs durable, then their indexes, then the manifest by put-if-absent. A crash between any
 * two steps leaves packs no snapshot names (gc's) and never a manifest naming a missing chunk. */
#include "internal.h"

#include "util/fault.h"
#include "util/banned.h"

int commit_index_sealed(struct store *s, struct pack_writer *pw, struct kerr **err)
{
	size_t n;

	pthread_mutex_lock(&pw->lock);
	n = pw->nsealed;
	pthread_mutex_unlock(&pw->lock);
	while (pw->nindexed < n) {
		size_t i = pw->nindexed;
		bool failed;

		/* Durable before its index names it. */
		pthread_mutex_lock(&pw->lock);
		while (pw->synced <= i && !pw->sync_err)
			pthread_cond_wait(&pw->cond, &pw->lock);
		failed = pw->sync_err != NULL;
		pthread_mutex_unlock(&pw->lock);
		if (failed) /* pack_writer_finish tells why */
			return pack_writer_finish(pw, err) < 0
			           ? -1
			           : kerr_set(err, KERR_IO, "cannot sync a pack");
		if (index_write(s, pw->sealed[i].id, pw->sealed[i].e, pw->sealed[i].n, err) < 0)
			return -1;
		pw->nindexed++;
	}
	return 0;
}

int commit_write(struct store *s, struct pack_writer *pw, const struct manifest *m,
                 const char *fault, struct kerr **err)
{
	if (pack_writer_finish(pw, err) < 0 || commit_index_sealed(s, pw, err) < 0)
		goto fail;
	fault_point(fault);
	if (m && manifest_save(s, m, err) < 0)
		goto fail;
	return 0;
fail:
	pack_writer_discard(pw);
	return -1;
}

void commit_abandon(struct store *s, struct pack_writer *pw, bool keep)
{
	if (keep) {
		_cleanup_kerr_ struct kerr *why = NULL;
		if (pack_writer_finish(pw, &why) == 0)
			commit_index_sealed(s, pw, &why);
	}
	pack_writer_discard(pw);
}
