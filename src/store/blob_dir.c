/* The directory backend: packs/, index/, snaps/ and the marker under one directory; durable
 * writes are write-temp, fsync, rename, fsync-dir; users share or exclude with flock. */
#include "blob.h"

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

#define STORE_MARKER "KILNSTORE"

static const char *const ns_dir[BLOB__NS] = {
    [BLOB_ROOT] = ".", [BLOB_PACKS] = "packs", [BLOB_INDEX] = "index", [BLOB_SNAPS] = "snaps"};

struct dir {
	int fd[BLOB__NS];
	int lockfd;
};

static int dir_init(struct blob *b, struct kerr **err)
{
	_cleanup_close_ int dfd = -1;
	struct dirent *de;
	DIR *d;

	if (fs_mkdir_p(b->where, 0755, err) < 0)
		return -1;
	dfd = open(b->where, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kerr_errno(err, errno, "cannot open '%s'", b->where);
	d = fs_opendir_dup(dfd);
	if (!d)
		return kerr_errno(err, errno, "cannot read '%s'", b->where);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		closedir(d);
		if (faccessat(dfd, STORE_MARKER, F_OK, 0) == 0)
			return kerr_set(err, KERR_CONFLICT, "'%s' is a store already", b->where);
		return kerr_set(err, KERR_CONFLICT,
		                "cannot create a store in '%s': directory is not empty", b->where);
	}
	closedir(d);
	for (int ns = BLOB_PACKS; ns < BLOB__NS; ns++)
		if (mkdirat(dfd, ns_dir[ns], 0755) < 0)
			return kerr_errno(err, errno, "cannot create '%s/%s'", b->where,
			                  ns_dir[ns]);
	/* Ready for the marker, which the caller writes last. */
	struct dir *dd = xcalloc(1, sizeof(*dd));
	for (int i = 0; i < BLOB__NS; i++)
		dd->fd[i] = -1;
	dd->lockfd = -1;
	dd->fd[BLOB_ROOT] = steal_fd(&dfd);
	b->priv = dd;
	return 0;
}

static void dir_close(struct blob *b)
{
	struct dir *d = b->priv;

	if (!d)
		return;
	for (int i = 0; i < BLOB__NS; i++)
		if (d->fd[i] >= 0)
			close(d->fd[i]);
	if (d->lockfd >= 0)
		close(d->lockfd);
	free(d);
	b->priv = NULL;
}

static int dir_open(struct blob *b, bool exclusive, struct kerr **err)
{
	struct dir *d = xcalloc(1, sizeof(*d));

	b->priv = d;
	d->lockfd = -1;
	for (int i = 0; i < BLOB__NS; i++)
		d->fd[i] = -1;
	d->fd[BLOB_ROOT] = open(b->where, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->fd[BLOB_ROOT] < 0)
		return kerr_errno(err, errno, "cannot open store '%s'", b->where);
	/* The marker first: a directory without it is not a store, whatever else it holds. */
	if (faccessat(d->fd[BLOB_ROOT], STORE_MARKER, F_OK, 0) < 0)
		return kerr_set(err, KERR_INVALID, "'%s' is not a kiln store (no %s file)",
		                b->where, STORE_MARKER);
	for (int ns = BLOB_PACKS; ns < BLOB__NS; ns++) {
		d->fd[ns] =
		    openat(d->fd[BLOB_ROOT], ns_dir[ns], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (d->fd[ns] < 0)
			return kerr_errno(err, errno, "cannot open '%s/%s'", b->where, ns_dir[ns]);
	}
	d->lockfd = openat(d->fd[BLOB_ROOT], "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (d->lockfd < 0)
		return kerr_errno(err, errno, "cannot open '%s/lock'", b->where);
	while (flock(d->lockfd, exclusive ? LOCK_EX : LOCK_SH) < 0)
		if (errno != EINTR)
			return kerr_errno(err, errno, "cannot lock store '%s'", b->where);
	return 0;
}

static int dir_fd(struct blob *b, enum blob_ns ns)
{
	return ((struct dir *)b->priv)->fd[ns];
}

static int dir_put(struct blob *b, enum blob_ns ns, const char *name, const void *data, size_t len,
                   enum blob_put mode, const char *fault_prefix, struct kerr **err)
{
	int dfd = dir_fd(b, ns);
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = -1;
	char point[128];

	if (mode == BLOB_REPLACE)
		return fs_write_atomic(dfd, name, data, len, fault_prefix, err);
	tmp = xasprintf("%s.tmp.%d", name, (int)getpid());
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return kerr_errno(err, errno, "cannot create '%s'", tmp);
	if (fs_write_full(fd, data, len) < 0 || fsync(fd) < 0) {
		int e = errno;
		unlinkat(dfd, tmp, 0);
		return kerr_errno(err, e, "cannot write '%s'", tmp);
	}
	snprintf(point, sizeof(point), "%s.tmp", fault_prefix);
	fault_point(point);
	/* Put-if-absent: the rename fails when another writer got there first. */
	if (renameat2(dfd, tmp, dfd, name, RENAME_NOREPLACE) < 0) {
		int e = errno;
		unlinkat(dfd, tmp, 0);
		if (e == EEXIST)
			return kerr_set(err, KERR_CONFLICT, "'%s' exists", name);
		return kerr_errno(err, e, "cannot rename '%s' to '%s'", tmp, name);
	}
	snprintf(point, sizeof(point), "%s.renamed", fault_prefix);
	fault_point(point);
	return fs_fsync_dir(dfd, err);
}

static int dir_get(struct blob *b, enum blob_ns ns, const char *name, size_t max, uint8_t **out,
                   size_t *len, struct kerr **err)
{
	return fs_read_file(dir_fd(b, ns), name, max, out, len, err);
}

static int dir_del(struct blob *b, enum blob_ns ns, const char *name, struct kerr **err)
{
	if (unlinkat(dir_fd(b, ns), name, 0) < 0) {
		if (errno == ENOENT)
			return kerr_set(err, KERR_NOT_FOUND, "'%s' not found", name);
		return kerr_errno(err, errno, "cannot remove '%s/%s'", ns_dir[ns], name);
	}
	return 0;
}

static int dir_list(struct blob *b, enum blob_ns ns, struct blob_obj **out, size_t *n,
                    struct kerr **err)
{
	struct blob_obj *v = NULL;
	size_t count = 0;
	struct dirent *de;
	DIR *d;

	d = fs_opendir_dup(dir_fd(b, ns));
	if (!d)
		return kerr_errno(err, errno, "cannot read '%s/%s'", b->where, ns_dir[ns]);
	while ((de = readdir(d))) {
		struct stat st;

		if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(v->name))
			continue;
		if (fstatat(dir_fd(b, ns), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		v = xreallocarray(v, count + 1, sizeof(*v));
		memcpy(v[count].name, de->d_name, strlen(de->d_name) + 1);
		v[count].size = (uint64_t)st.st_size;
		v[count].mtime = (uint64_t)st.st_mtime;
		count++;
	}
	closedir(d);
	*out = v;
	*n = count;
	return 0;
}

static int dir_sync(struct blob *b, enum blob_ns ns, struct kerr **err)
{
	return fs_fsync_dir(dir_fd(b, ns), err);
}

static int dir_pack_create(struct blob *b, const char *name, int *fd, struct kerr **err)
{
	*fd = openat(dir_fd(b, BLOB_PACKS), name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (*fd < 0) {
		if (errno == EEXIST)
			return kerr_set(err, KERR_CONFLICT, "pack '%s' exists", name);
		return kerr_errno(err, errno, "cannot create pack '%s'", name);
	}
	return 0;
}

static int dir_pack_commit(struct blob *b, const char *name, int fd, struct kerr **err)
{
	(void)b;
	if (fsync(fd) < 0)
		return kerr_errno(err, errno, "cannot sync pack '%s'", name);
	return 0;
}

static void dir_pack_discard(struct blob *b, const char *name)
{
	unlinkat(dir_fd(b, BLOB_PACKS), name, 0);
}

static int dir_open_file(struct blob *b, enum blob_ns ns, const char *name, struct blob_file *f,
                         struct kerr **err)
{
	f->fd = openat(dir_fd(b, ns), name, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0) {
		if (errno == ENOENT)
			return kerr_set(err, KERR_NOT_FOUND, "'%s' not found", name);
		return kerr_errno(err, errno, "cannot open '%s'", name);
	}
	return 0;
}

static int dir_file_size(struct blob_file *f, struct kerr **err)
{
	struct stat st;

	if (fstat(f->fd, &st) < 0)
		return kerr_errno(err, errno, "cannot stat '%s'", f->name);
	f->size = (uint64_t)st.st_size;
	return 0;
}

static ssize_t dir_preadv(struct blob_file *f, const struct iovec *iov, int n, uint64_t off,
                          struct kerr **err)
{
	ssize_t r;

	do
		r = preadv(f->fd, iov, n, (off_t)off);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return kerr_errno(err, errno, "cannot read '%s'", f->name);
	return r;
}

static void dir_close_file(struct blob_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
}

const struct blob_ops blob_dir_ops = {
    .name = "dir",
    .init = dir_init,
    .open = dir_open,
    .close = dir_close,
    .put = dir_put,
    .get = dir_get,
    .del = dir_del,
    .list = dir_list,
    .sync = dir_sync,
    .pack_create = dir_pack_create,
    .pack_commit = dir_pack_commit,
    .pack_discard = dir_pack_discard,
    .open_file = dir_open_file,
    .file_size = dir_file_size,
    .preadv = dir_preadv,
    .close_file = dir_close_file,
};
