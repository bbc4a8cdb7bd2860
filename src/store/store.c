/* Opening, creating and locking a store; listing and deleting snapshots. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/par.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define MARKER_MAX 256

int store_init(const char *where, struct kerr **err)
{
	_cleanup_free_ char *marker = NULL;
	struct blob *b;
	int r;

	if (blob_new(where, &b, err) < 0)
		return -1;
	r = b->ops->init(b, err);
	marker = xasprintf("kiln-store 1\nchunk-size %u\n", STORE_CHUNK_SIZE);
	/* The marker comes last: a location without it is not a store. */
	if (r == 0 && b->ops->put(b, BLOB_ROOT, STORE_MARKER, marker, strlen(marker), BLOB_CREATE,
	                          "init", err) < 0)
		r = kerr_wrap(err, "cannot create store '%s'", where);
	blob_free(b);
	return r;
}

static int read_marker(struct store *s, struct kerr **err)
{
	_cleanup_free_ uint8_t *data = NULL;
	_cleanup_kerr_ struct kerr *e = NULL;
	unsigned version, chunk;
	size_t len;

	if (s->blob->ops->get(s->blob, BLOB_ROOT, STORE_MARKER, MARKER_MAX, &data, &len, &e) < 0) {
		if (e->kind == KERR_NOT_FOUND)
			return kerr_set(err, KERR_INVALID, "'%s' is not a kiln store (no %s file)",
			                s->path, STORE_MARKER);
		return kerr_pass(err, steal_ptr(e));
	}
	data = xreallocarray(data, len + 1, 1);
	data[len] = '\0';
	if (sscanf((char *)data, "kiln-store %u\nchunk-size %u\n", &version, &chunk) != 2 ||
	    version != 1)
		return kerr_set(err, KERR_CORRUPT, "'%s/%s' is not a store marker kiln understands",
		                s->path, STORE_MARKER);
	if (chunk < 4096 || chunk > (16u << 20) || (chunk & (chunk - 1)))
		return kerr_set(err, KERR_CORRUPT, "'%s' has an invalid chunk size %u", s->path,
		                chunk);
	s->chunk_size = chunk;
	return 0;
}

int store_open(const char *where, bool exclusive, struct store **out, struct kerr **err)
{
	struct store *s = xcalloc(1, sizeof(*s));

	s->path = xstrdup(where);
	if (blob_new(where, &s->blob, err) < 0 || s->blob->ops->open(s->blob, exclusive, err) < 0 ||
	    read_marker(s, err) < 0) {
		store_close(s);
		return -1;
	}
	*out = s;
	return 0;
}

bool store_location_is_s3(const char *where)
{
	return !strncmp(where, "s3://", 5);
}

int store_location_check(const char *where, struct kerr **err)
{
	struct blob_s3_url u;

	if (!store_location_is_s3(where))
		return 0;
	if (blob_s3_parse_url(where, &u, err) < 0)
		return -1;
	blob_s3_url_release(&u);
	return 0;
}

void store_io(const struct store *s, struct store_io *out)
{
	const struct blob_io *io = &s->blob->io;

	out->requests = atomic_load(&io->requests);
	out->gets = atomic_load(&io->gets);
	out->bytes_in = atomic_load(&io->bytes_in);
	out->puts = atomic_load(&io->puts);
	out->bytes_out = atomic_load(&io->bytes_out);
	out->cache_hits = atomic_load(&io->cache_hits);
}

void store_close(struct store *s)
{
	if (!s)
		return;
	blob_free(s->blob);
	free(s->path);
	free(s);
}

int store_delete(struct store *s, const char *snap_id, struct kerr **err)
{
	_cleanup_kerr_ struct kerr *e = NULL;

	if (!id_valid("snap", snap_id))
		return kerr_set(err, KERR_INVALID, "invalid snapshot id '%s'", snap_id);
	if (s->blob->ops->del(s->blob, BLOB_SNAPS, snap_id, &e) < 0) {
		if (e->kind == KERR_NOT_FOUND)
			return kerr_set(err, KERR_NOT_FOUND, "snapshot '%s' not found", snap_id);
		kerr_pass(err, steal_ptr(e));
		return kerr_wrap(err, "cannot delete snapshot '%s'", snap_id);
	}
	fault_point("delete.unlinked");
	/* The chunks stay until gc: other snapshots may share them. */
	return s->blob->ops->sync(s->blob, BLOB_SNAPS, err);
}

unsigned store_read_threads(const struct store *s)
{
	unsigned n = par_threads();

	if (getenv("KILN_THREADS") || s->blob->read_threads <= n)
		return n;
	return s->blob->read_threads < PAR_MAX_THREADS ? s->blob->read_threads : PAR_MAX_THREADS;
}

static int by_created(const void *a, const void *b)
{
	const struct store_snap_info *x = a, *y = b;

	if (x->created_ns != y->created_ns)
		return x->created_ns < y->created_ns ? -1 : 1;
	return strcmp(x->id, y->id);
}

int store_list(struct store *s, struct store_snap_info **out, size_t *n, struct kerr **err)
{
	_cleanup_free_ char(*ids)[ID_MAX] = NULL;
	_cleanup_free_ struct store_snap_info *v = NULL;
	size_t nids;

	if (manifest_list(s, &ids, &nids, err) < 0)
		return -1;
	v = xcalloc(nids, sizeof(*v));
	for (size_t i = 0; i < nids; i++) {
		struct manifest m;

		if (manifest_load(s, ids[i], &m, err) < 0)
			return -1;
		memcpy(v[i].id, m.id, ID_MAX);
		memcpy(v[i].parent, m.parent, ID_MAX);
		v[i].created_ns = m.created_ns;
		v[i].volume_size = m.volume_size;
		v[i].chunks = m.n;
		for (size_t j = 0; j < m.n; j++) {
			uint64_t start = m.e[j].chunk * m.chunk_size;
			uint64_t end = start + m.chunk_size;
			v[i].data_bytes += (end > m.volume_size ? m.volume_size : end) - start;
		}
		manifest_release(&m);
	}
	qsort(v, nids, sizeof(*v), by_created);
	*out = steal_ptr(v);
	*n = nids;
	return 0;
}
