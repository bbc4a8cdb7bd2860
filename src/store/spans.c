/* Reading neighbouring records of a pack together, for stores whose reads are round trips
 * (a blob with read_span): chunks sorted by place, grouped, each group one read, each record
 * taken out of it checked. Restores and copies both read this way. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define SPAN_RECORD_MAX(cs) (PACK_RECORD_HEADER + RECORD_PAYLOAD_MAX(cs))

static uint64_t item_end(const struct span_item *it)
{
	return it->e.off + PACK_RECORD_HEADER + it->e.clen;
}

static int by_place(const void *a, const void *b)
{
	const struct span_item *x = a, *y = b;

	if (x->pack != y->pack)
		return x->pack < y->pack ? -1 : 1;
	if (x->e.off != y->e.off)
		return x->e.off < y->e.off ? -1 : 1;
	return x->entry < y->entry ? -1 : x->entry > y->entry;
}

size_t span_plan(struct span_item *items, size_t n, uint64_t span, struct span_group *groups)
{
	uint64_t gstart = 0, gend = 0;
	size_t ng = 0;

	qsort(items, n, sizeof(*items), by_place);
	for (size_t i = 0; i < n; i++) {
		const struct span_item *it = &items[i];
		bool join = ng && it->pack == items[i - 1].pack && it->e.off <= gend + SPAN_GAP &&
		            item_end(it) - gstart <= span;
		if (!join) {
			groups[ng++] = (struct span_group){i, 0};
			gstart = it->e.off;
			gend = 0;
		}
		groups[ng - 1].n++;
		gend = item_end(it) > gend ? item_end(it) : gend;
	}
	return ng;
}

void span_item_set(struct span_item *it, const struct chunk_loc *loc, size_t entry)
{
	chunk_loc_entry(loc, &it->e);
	it->pack = loc->pack;
	it->entry = entry;
}

void span_reader_release(struct span_reader *sr)
{
	chunk_reader_release(&sr->r);
	free(sr->buf);
	free(sr->cached);
	memset(sr, 0, sizeof(*sr));
}

int span_read_group(struct span_reader *sr, uint32_t chunk_size, struct blob_file *pack,
                    const struct span_item *it, size_t n, bool keep,
                    int (*fn)(void *ctx, const struct span_item *it, struct chunk_reader *r,
                              struct kerr **err),
                    void *ctx, struct kerr **err)
{
	struct blob *b = pack->b;
	uint64_t lo = UINT64_MAX, hi = 0;
	ssize_t got;

	sr->bad = NULL;
	if (n > sr->ncached) {
		sr->cached = xreallocarray(sr->cached, n, sizeof(*sr->cached));
		sr->ncached = n;
	}
	/* Those the host's cache has first; the rest's span in one read. */
	for (size_t k = 0; k < n; k++) {
		sr->cached[k] = chunk_read_cached(&sr->r, chunk_size, b, &it[k].e);
		if (sr->cached[k]) {
			if (fn(ctx, &it[k], &sr->r, err) < 0)
				return -1;
			continue;
		}
		lo = it[k].e.off < lo ? it[k].e.off : lo;
		hi = item_end(&it[k]) > hi ? item_end(&it[k]) : hi;
	}
	if (hi == 0)
		return 0;
	/* A group spans at most read_span, or one record when that is larger; a footer that
	 * promises more is damage, caught below as a truncated record. */
	if (!sr->buf)
		sr->buf = xmalloc(b->read_span + SPAN_RECORD_MAX(chunk_size));
	if (hi - lo > b->read_span + SPAN_RECORD_MAX(chunk_size))
		hi = lo + b->read_span + SPAN_RECORD_MAX(chunk_size);
	struct iovec iov = {sr->buf, hi - lo};
	got = blob_file_preadv(pack, &iov, 1, lo, err);
	if (got < 0)
		return kerr_wrap(err, "cannot read records %llu-%llu of a pack",
		                 (unsigned long long)lo, (unsigned long long)hi);
	for (size_t k = 0; k < n; k++) {
		uint64_t at = it[k].e.off - lo;
		if (sr->cached[k])
			continue;
		if (chunk_take_record(&sr->r, chunk_size, b, &it[k].e, sr->buf + at,
		                      (uint64_t)got > at ? (size_t)((uint64_t)got - at) : 0, keep,
		                      err) < 0) {
			sr->bad = &it[k];
			return -1;
		}
		if (fn(ctx, &it[k], &sr->r, err) < 0)
			return -1;
	}
	return 0;
}
