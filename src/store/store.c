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
#include "util/xalloc.h"
#include "util/banned.h"

#define MARKER_MAX 256

static const char *const subdirs[] = {"packs", "index", "snaps"};

int store_init(const char *dir, struct kerr **err)
{
	_cleanup_close_ int dfd = -1;
	_cleanup_free_ char *marker = NULL;
	struct dirent *de;
	DIR *d;

	if (fs_mkdir_p(dir, 0755, err) < 0)
		return -1;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kerr_errno(err, errno, "cannot open '%s'", dir);
	d = fdopendir(dup(dfd));
	if (!d)
		return kerr_errno(err, errno, "cannot read '%s'", dir);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		closedir(d);
		if (faccessat(dfd, STORE_MARKER, F_OK, 0) == 0)
			return kerr_set(err, KERR_CONFLICT, "'%s' is a store already", dir);
		return kerr_set(err, KERR_CONFLICT,
		                "cannot create a store in '%s': directory is not empty", dir);
	}
	closedir(d);
	for (size_t i = 0; i < ARRAY_SIZE(subdirs); i++)
		if (mkdirat(dfd, subdirs[i], 0755) < 0)
			return kerr_errno(err, errno, "cannot create '%s/%s'", dir, subdirs[i]);
	marker = xasprintf("kiln-store 1\nchunk-size %u\n", STORE_CHUNK_SIZE);
	/* The marker comes last: a directory without it is not a store. */
	if (fs_write_atomic(dfd, STORE_MARKER, marker, strlen(marker), "init", err) < 0)
		return kerr_wrap(err, "cannot create store '%s'", dir);
	return 0;
}

static int read_marker(struct store *s, struct kerr **err)
{
	_cleanup_free_ uint8_t *data = NULL;
	unsigned version, chunk;
	size_t len;

	if (fs_read_file(s->dirfd, STORE_MARKER, MARKER_MAX, &data, &len, NULL) < 0)
		return kerr_set(err, KERR_INVALID, "'%s' is not a kiln store (no %s file)", s->path,
		                STORE_MARKER);
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

static int open_sub(struct store *s, const char *name, int *fd, struct kerr **err)
{
	*fd = openat(s->dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return kerr_errno(err, errno, "cannot open '%s/%s'", s->path, name);
	return 0;
}

int store_open(const char *dir, bool exclusive, struct store **out, struct kerr **err)
{
	struct store *s = xcalloc(1, sizeof(*s));

	s->path = xstrdup(dir);
	s->dirfd = s->lockfd = s->packs_fd = s->index_fd = s->snaps_fd = -1;
	s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		kerr_errno(err, errno, "cannot open store '%s'", dir);
		goto on_error;
	}
	if (read_marker(s, err) < 0)
		goto on_error;
	if (open_sub(s, "packs", &s->packs_fd, err) < 0 ||
	    open_sub(s, "index", &s->index_fd, err) < 0 ||
	    open_sub(s, "snaps", &s->snaps_fd, err) < 0)
		goto on_error;
	s->lockfd = openat(s->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (s->lockfd < 0) {
		kerr_errno(err, errno, "cannot open '%s/lock'", dir);
		goto on_error;
	}
	while (flock(s->lockfd, exclusive ? LOCK_EX : LOCK_SH) < 0) {
		if (errno != EINTR) {
			kerr_errno(err, errno, "cannot lock store '%s'", dir);
			goto on_error;
		}
	}
	*out = s;
	return 0;

on_error:
	store_close(s);
	return -1;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	int *fds[] = {&s->dirfd, &s->lockfd, &s->packs_fd, &s->index_fd, &s->snaps_fd};
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
	free(s->path);
	free(s);
}

int store_delete(struct store *s, const char *snap_id, struct kerr **err)
{
	if (!id_valid("snap", snap_id))
		return kerr_set(err, KERR_INVALID, "invalid snapshot id '%s'", snap_id);
	if (unlinkat(s->snaps_fd, snap_id, 0) < 0) {
		if (errno == ENOENT)
			return kerr_set(err, KERR_NOT_FOUND, "snapshot '%s' not found", snap_id);
		return kerr_errno(err, errno, "cannot delete snapshot '%s'", snap_id);
	}
	fault_point("delete.unlinked");
	/* The chunks stay until gc: other snapshots may share them. */
	return fs_fsync_dir(s->snaps_fd, err);
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
