/* Which chunks of a volume to read: the ones holding data (SEEK_DATA/SEEK_HOLE), or the ones
 * whose physical blocks moved since a reflink shadow was taken (FIEMAP on both files). */
#include "internal.h"

#include <errno.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/xalloc.h"
#include "util/banned.h"

void chunk_list_release(struct chunk_list *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Add the chunks covering [start, end) of the volume, keeping the list sorted and unique
 * (ranges arrive in increasing order). */
static void add_range(struct chunk_list *l, uint64_t start, uint64_t end, uint32_t cs)
{
	if (end <= start)
		return;
	for (uint64_t c = start / cs; c <= (end - 1) / cs; c++) {
		if (l->n && l->v[l->n - 1] >= c)
			continue;
		if (l->n == l->cap) {
			l->cap = l->cap ? 2 * l->cap : 1024;
			l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
		}
		l->v[l->n++] = c;
	}
}

int extents_data_chunks(int fd, uint64_t size, uint32_t chunk_size, struct chunk_list *out,
                        struct kerr **err)
{
	off_t pos = 0;

	memset(out, 0, sizeof(*out));
	while ((uint64_t)pos < size) {
		off_t data = lseek(fd, pos, SEEK_DATA), hole;

		if (data < 0) {
			if (errno == ENXIO)
				break;
			if (errno == EINVAL) { /* no SEEK_DATA here: everything is data */
				add_range(out, (uint64_t)pos, size, chunk_size);
				break;
			}
			chunk_list_release(out);
			return kerr_errno(err, errno, "cannot find the data of the volume");
		}
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0) {
			chunk_list_release(out);
			return kerr_errno(err, errno, "cannot find the holes of the volume");
		}
		if ((uint64_t)hole > size)
			hole = (off_t)size;
		add_range(out, (uint64_t)data, (uint64_t)hole, chunk_size);
		pos = hole;
	}
	return 0;
}

struct extent {
	uint64_t logical, physical, length;
	uint32_t flags;
};

struct extent_map {
	struct extent *v;
	size_t n, cap;
};

#define FIEMAP_BATCH 512
/* Physical addresses we cannot compare: treat such extents as changed. */
#define EXTENT_UNCOMPARABLE                                                                        \
	(FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC | FIEMAP_EXTENT_DATA_INLINE |              \
	 FIEMAP_EXTENT_DATA_TAIL | FIEMAP_EXTENT_NOT_ALIGNED)

static int extent_map_read(int fd, uint64_t size, struct extent_map *m, struct kerr **err)
{
	_cleanup_free_ struct fiemap *fm =
	    xcalloc(1, sizeof(struct fiemap) + FIEMAP_BATCH * sizeof(struct fiemap_extent));
	uint64_t start = 0;
	uint32_t flags = FIEMAP_FLAG_SYNC; /* write back first, so every extent has an address */

	memset(m, 0, sizeof(*m));
	while (start < size) {
		bool last = false;

		memset(fm, 0, sizeof(*fm));
		fm->fm_start = start;
		fm->fm_length = size - start;
		fm->fm_flags = flags;
		fm->fm_extent_count = FIEMAP_BATCH;
		if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0) {
			free(m->v);
			return kerr_errno(err, errno, "cannot map the extents of the volume");
		}
		flags = 0;
		if (fm->fm_mapped_extents == 0)
			break;
		for (uint32_t i = 0; i < fm->fm_mapped_extents; i++) {
			struct fiemap_extent *fe = &fm->fm_extents[i];
			if (m->n == m->cap) {
				m->cap = m->cap ? 2 * m->cap : 256;
				m->v = xreallocarray(m->v, m->cap, sizeof(*m->v));
			}
			m->v[m->n++] = (struct extent){fe->fe_logical, fe->fe_physical,
			                               fe->fe_length, fe->fe_flags};
			start = fe->fe_logical + fe->fe_length;
			last = last || (fe->fe_flags & FIEMAP_EXTENT_LAST);
		}
		if (last)
			break;
	}
	return 0;
}

/* The extent covering pos, or the next one after it (*covers false). */
static const struct extent *extent_at(const struct extent_map *m, size_t *cursor, uint64_t pos,
                                      bool *covers)
{
	while (*cursor < m->n && m->v[*cursor].logical + m->v[*cursor].length <= pos)
		(*cursor)++;
	if (*cursor == m->n) {
		*covers = false;
		return NULL;
	}
	*covers = m->v[*cursor].logical <= pos;
	return &m->v[*cursor];
}

int extents_changed_chunks(int fd, uint64_t size, int shadow_fd, uint64_t shadow_size,
                           uint32_t chunk_size, struct chunk_list *out, struct kerr **err)
{
	struct extent_map a, b;
	uint64_t common = size < shadow_size ? size : shadow_size, pos = 0;
	size_t ca = 0, cb = 0;

	memset(out, 0, sizeof(*out));
	if (extent_map_read(fd, size, &a, err) < 0)
		return -1;
	if (extent_map_read(shadow_fd, shadow_size, &b, err) < 0) {
		free(a.v);
		return kerr_wrap(err, "shadow");
	}
	/* Walk both maps over [0, common) in segments where neither changes. */
	while (pos < common) {
		bool in_a, in_b;
		const struct extent *ea = extent_at(&a, &ca, pos, &in_a);
		const struct extent *eb = extent_at(&b, &cb, pos, &in_b);
		uint64_t end = common;
		bool changed;

		if (ea)
			end =
			    in_a ? (ea->logical + ea->length < end ? ea->logical + ea->length : end)
			         : (ea->logical < end ? ea->logical : end);
		if (eb)
			end =
			    in_b ? (eb->logical + eb->length < end ? eb->logical + eb->length : end)
			         : (eb->logical < end ? eb->logical : end);
		if (!in_a && !in_b)
			changed = false;
		else if (in_a != in_b)
			changed = true;
		else
			changed = (ea->flags & EXTENT_UNCOMPARABLE) ||
			          (eb->flags & EXTENT_UNCOMPARABLE) ||
			          ((ea->flags ^ eb->flags) & FIEMAP_EXTENT_UNWRITTEN) ||
			          ea->physical - ea->logical != eb->physical - eb->logical;
		if (changed)
			add_range(out, pos, end, chunk_size);
		pos = end;
	}
	/* A size change alters the chunk that straddles the old end. */
	if (size != shadow_size && common)
		add_range(out, common - 1, common, chunk_size);
	/* Past the shadow's end the volume grew: every chunk with data there is new. */
	if (size > common) {
		for (size_t i = 0; i < a.n; i++) {
			uint64_t s = a.v[i].logical, e = s + a.v[i].length;
			if (e > size)
				e = size;
			if (e > common)
				add_range(out, s > common ? s : common, e, chunk_size);
		}
	}
	free(a.v);
	free(b.v);
	return 0;
}
