/* Pools: reflink probe, loop-backed XFS when needed, volume files and their clones. */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/fs.h"
#include "util/id.h"
#include "util/loop.h"
#include "util/spawn.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

/* Two scratch files and one FICLONE tell whether this filesystem shares extents. */
static bool probe_reflink_now(int dirfd)
{
	char a[40], b[40], hex[9];
	char block[4096];
	bool ok = false;
	int fa, fb;

	id_random_hex(hex, 8);
	snprintf(a, sizeof(a), ".reflink-probe-%s-a", hex);
	snprintf(b, sizeof(b), ".reflink-probe-%s-b", hex);
	memset(block, 'k', sizeof(block));
	fa = openat(dirfd, a, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	fb = openat(dirfd, b, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fa >= 0 && fb >= 0 && fs_write_full(fa, block, sizeof(block)) == 0 && fsync(fa) == 0)
		ok = ioctl(fb, FICLONE, fa) == 0;
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	unlinkat(dirfd, a, 0);
	unlinkat(dirfd, b, 0);
	return ok;
}

/* Directories known to reflink, by device, mount and inode: the probe writes and flushes a
 * block, and a daemon opens a zone's pool for every launch, so a boot storm of twenty would
 * queue twenty flushes. Only a yes is kept (a no mounts a loop-backed pool there). */
#define REFLINK_KNOWN 64
static struct reflink_dir {
	dev_t dev;
	uint64_t mnt, ino;
} reflink_known[REFLINK_KNOWN];
static size_t reflink_nknown;
static pthread_mutex_t reflink_lock = PTHREAD_MUTEX_INITIALIZER;

static bool probe_reflink(int dirfd)
{
	struct statx sx;
	struct reflink_dir d;
	bool ok, known = false;

	if (statx(dirfd, "", AT_EMPTY_PATH, STATX_INO | STATX_MNT_ID, &sx) < 0 ||
	    !(sx.stx_mask & STATX_MNT_ID))
		return probe_reflink_now(dirfd);
	d = (struct reflink_dir){makedev(sx.stx_dev_major, sx.stx_dev_minor), sx.stx_mnt_id,
	                         sx.stx_ino};
	pthread_mutex_lock(&reflink_lock);
	for (size_t i = 0; i < reflink_nknown && i < REFLINK_KNOWN && !known; i++)
		known = reflink_known[i].dev == d.dev && reflink_known[i].mnt == d.mnt &&
		        reflink_known[i].ino == d.ino;
	pthread_mutex_unlock(&reflink_lock);
	if (known)
		return true;
	ok = probe_reflink_now(dirfd);
	pthread_mutex_lock(&reflink_lock);
	if (ok)
		reflink_known[reflink_nknown++ % REFLINK_KNOWN] = d;
	pthread_mutex_unlock(&reflink_lock);
	return ok;
}

static bool is_mountpoint(const char *dir)
{
	_cleanup_free_ char *parent = xasprintf("%s/..", dir);
	struct stat a, b;

	return stat(dir, &a) == 0 && stat(parent, &b) == 0 &&
	       (a.st_dev != b.st_dev || a.st_ino == b.st_ino);
}

static int mount_loop_xfs(const char *dir, uint64_t size, struct kerr **err)
{
	_cleanup_free_ char *file = xasprintf("%s.xfs", dir);
	_cleanup_close_ int loopfd = -1;
	char dev[32];
	struct stat st;

	if (stat(file, &st) < 0) {
		_cleanup_close_ int fd = open(file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		char *mkfs[] = {"mkfs.xfs", "-q", "-m", "reflink=1", file, NULL};

		if (fd < 0)
			return kerr_errno(err, errno, "cannot create pool file '%s'", file);
		if (ftruncate(fd, (off_t)size) < 0) {
			int e = errno;
			unlink(file);
			return kerr_errno(err, e, "cannot size pool file '%s'", file);
		}
		if (spawn_run(mkfs, err) < 0) {
			unlink(file);
			return kerr_wrap(err, "cannot format pool file '%s'", file);
		}
	}
	if (loop_attach(file, false, &loopfd, dev, err) < 0)
		return -1;
	if (mount(dev, dir, "xfs", MS_NOATIME, NULL) < 0)
		return kerr_errno(err, errno, "cannot mount pool '%s' on '%s'", file, dir);
	return 0; /* closing loopfd now leaves the mount as the only user: autoclear on unmount */
}

int pool_open(const char *dir, const struct pool_opts *opts, struct pool **out, struct kerr **err)
{
	struct pool *p;

	if (fs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	p = xcalloc(1, sizeof(*p));
	p->dir = xstrdup(dir);
	p->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->dirfd < 0) {
		kerr_errno(err, errno, "cannot open pool '%s'", dir);
		goto on_error;
	}
	p->reflink = probe_reflink(p->dirfd);
	if (!p->reflink && !(opts && opts->no_loop)) {
		if (is_mountpoint(dir)) {
			kerr_set(err, KERR_INVALID, "pool '%s' is mounted but cannot reflink", dir);
			goto on_error;
		}
		if (mount_loop_xfs(
		        dir, opts && opts->loop_size ? opts->loop_size : POOL_DEFAULT_LOOP_SIZE,
		        err) < 0)
			goto on_error;
		close(p->dirfd);
		p->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (p->dirfd < 0) {
			kerr_errno(err, errno, "cannot open pool '%s'", dir);
			goto on_error;
		}
		p->loop_backed = true;
		p->reflink = probe_reflink(p->dirfd);
	}
	if (!p->loop_backed) {
		_cleanup_free_ char *file = xasprintf("%s.xfs", dir);
		p->loop_backed = is_mountpoint(dir) && access(file, F_OK) == 0;
	}
	*out = p;
	return 0;

on_error:
	pool_close(p);
	return -1;
}

void pool_close(struct pool *p)
{
	if (!p)
		return;
	if (p->dirfd >= 0)
		close(p->dirfd);
	free(p->dir);
	free(p);
}

int pool_unmount(const char *dir, struct kerr **err)
{
	_cleanup_free_ char *file = xasprintf("%s.xfs", dir);

	if (access(file, F_OK) < 0 || !is_mountpoint(dir))
		return 0;
	if (umount2(dir, 0) < 0)
		return kerr_errno(err, errno, "cannot unmount pool '%s'", dir);
	return loop_wait_released(file, 5000, err);
}

int pool_unmount_under(const char *root, struct kerr **err)
{
	_cleanup_free_ char *real = realpath(root, NULL);
	_cleanup_free_ char *prefix = NULL;
	char **dirs = NULL;
	size_t n = 0;
	struct mntent *m;
	FILE *f;
	int r = 0;

	if (!real)
		return errno == ENOENT ? 0 : kerr_errno(err, errno, "cannot resolve '%s'", root);
	prefix = xasprintf("%s/", real);
	f = setmntent("/proc/self/mounts", "re");
	if (!f)
		return kerr_errno(err, errno, "cannot read the mount table");
	while ((m = getmntent(f)))
		if (!strncmp(m->mnt_dir, prefix, strlen(prefix))) {
			dirs = xreallocarray(dirs, n + 1, sizeof(*dirs));
			dirs[n++] = xstrdup(m->mnt_dir);
		}
	endmntent(f);
	/* Last mounted first: a mount on top of another goes before it. Every one is tried; the
	 * first failure is the one told. */
	while (n--) {
		if (pool_unmount(dirs[n], r == 0 ? err : NULL) < 0)
			r = -1;
		free(dirs[n]);
	}
	free(dirs);
	return r;
}

char *pool_path(const struct pool *p, const char *name)
{
	return xasprintf("%s/%s", p->dir, name);
}

bool pool_exists(const struct pool *p, const char *name)
{
	return faccessat(p->dirfd, name, F_OK, 0) == 0;
}

#define TMP_MARK    ".tmp-"
#define IMPORT_MARK ".import-"
#define OLD_RESTORE ".kiln-restore-" /* restores of kiln before 2026-12 */

static char *tmp_name(const char *name)
{
	char hex[9];

	id_random_hex(hex, 8);
	return xasprintf(".%s" TMP_MARK "%s", name, hex);
}

int pool_create_volume(struct pool *p, const char *name, uint64_t size, const char *populate_dir,
                       struct kerr **err)
{
	_cleanup_free_ char *tmp = tmp_name(name);
	_cleanup_free_ char *path = pool_path(p, tmp);
	_cleanup_close_ int fd = -1;

	if (pool_exists(p, name))
		return kerr_set(err, KERR_CONFLICT, "volume '%s' exists already in pool '%s'", name,
		                p->dir);
	fd = openat(p->dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return kerr_errno(err, errno, "cannot create volume '%s'", name);
	if (ftruncate(fd, (off_t)size) < 0) {
		kerr_errno(err, errno, "cannot size volume '%s'", name);
		goto on_error;
	}
	{
		/* No lazy init: a background writer would change the volume after its snapshot. */
		char *mkfs_plain[] = {"mkfs.ext4",
		                      "-q",
		                      "-F",
		                      "-E",
		                      "lazy_itable_init=0,lazy_journal_init=0,nodiscard",
		                      path,
		                      NULL};
		char *mkfs_fill[] = {"mkfs.ext4",
		                     "-q",
		                     "-F",
		                     "-E",
		                     "lazy_itable_init=0,lazy_journal_init=0,nodiscard",
		                     "-d",
		                     (char *)populate_dir,
		                     path,
		                     NULL};
		if (spawn_run(populate_dir ? mkfs_fill : mkfs_plain, err) < 0) {
			kerr_wrap(err, "cannot format volume '%s'", name);
			goto on_error;
		}
	}
	if (fsync(fd) < 0 || renameat(p->dirfd, tmp, p->dirfd, name) < 0) {
		kerr_errno(err, errno, "cannot create volume '%s'", name);
		goto on_error;
	}
	return 0;

on_error:
	unlinkat(p->dirfd, tmp, 0);
	return -1;
}

/* Copy [off, end) with read and write, for when the kernel cannot copy between the two. */
static int plain_copy(int src, int dst, off_t off, off_t end, struct kerr **err)
{
	_cleanup_free_ char *buf = xmalloc(1 << 20);

	while (off < end) {
		size_t want = (size_t)(end - off) < (1u << 20) ? (size_t)(end - off) : (1u << 20);
		ssize_t n = fs_pread_full(src, buf, want, off);
		if (n < 0)
			return kerr_errno(err, errno, "cannot read the volume");
		if (n == 0)
			break;
		if (fs_pwrite_full(dst, buf, (size_t)n, off) < 0)
			return kerr_errno(err, errno, "cannot write the copy");
		off += n;
	}
	return 0;
}

/* Copy only the data extents of src into dst (already sized): holes stay holes. */
static int sparse_copy(int src, int dst, uint64_t size, struct kerr **err)
{
	off_t pos = 0;

	while ((uint64_t)pos < size) {
		off_t data = lseek(src, pos, SEEK_DATA), hole, in, out;

		if (data < 0) {
			if (errno == ENXIO)
				break;
			return kerr_errno(err, errno, "cannot find the data of the volume");
		}
		hole = lseek(src, data, SEEK_HOLE);
		if (hole < 0)
			return kerr_errno(err, errno, "cannot find the holes of the volume");
		in = out = data;
		while (in < hole) {
			ssize_t n = copy_file_range(src, &in, dst, &out, (size_t)(hole - in), 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EXDEV || errno == EOPNOTSUPP || errno == EINVAL ||
			              errno == ENOSYS)) {
				if (plain_copy(src, dst, in, hole, err) < 0)
					return -1;
				break;
			}
			if (n < 0)
				return kerr_errno(err, errno, "cannot copy the volume");
			if (n == 0)
				break;
		}
		pos = hole;
	}
	return 0;
}

int pool_clone(struct pool *p, const char *src_path, const char *dst, struct kerr **err)
{
	_cleanup_free_ char *tmp = tmp_name(dst);
	_cleanup_close_ int src = -1, fd = -1;
	struct stat st;

	if (pool_exists(p, dst))
		return kerr_set(err, KERR_CONFLICT, "volume '%s' exists already in pool '%s'", dst,
		                p->dir);
	src = open(src_path, O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return kerr_errno(err, errno, "cannot open '%s'", src_path);
	if (fstat(src, &st) < 0)
		return kerr_errno(err, errno, "cannot stat '%s'", src_path);
	fd = openat(p->dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return kerr_errno(err, errno, "cannot create volume '%s'", dst);
	if (ioctl(fd, FICLONE, src) < 0) {
		if (ftruncate(fd, st.st_size) < 0) {
			kerr_errno(err, errno, "cannot size volume '%s'", dst);
			goto on_error;
		}
		if (sparse_copy(src, fd, (uint64_t)st.st_size, err) < 0)
			goto on_error;
	}
	if (renameat(p->dirfd, tmp, p->dirfd, dst) < 0) {
		kerr_errno(err, errno, "cannot create volume '%s'", dst);
		goto on_error;
	}
	return 0;

on_error:
	unlinkat(p->dirfd, tmp, 0);
	return -1;
}

int pool_grow(struct pool *p, const char *name, uint64_t size, struct kerr **err)
{
	_cleanup_free_ char *path = pool_path(p, name);
	char *resize[] = {"resize2fs", "-f", path, NULL};
	struct stat st;

	if (stat(path, &st) < 0)
		return kerr_errno(err, errno, "cannot open volume '%s'", name);
	if ((uint64_t)st.st_size >= size)
		return 0;
	if (truncate(path, (off_t)size) < 0)
		return kerr_errno(err, errno, "cannot grow volume '%s'", name);
	if (spawn_run(resize, err) < 0)
		return kerr_wrap(err, "cannot grow the filesystem of volume '%s'", name);
	return 0;
}

int pool_remove(struct pool *p, const char *name, struct kerr **err)
{
	_cleanup_free_ char *shadow = pool_shadow_name(name);

	if (unlinkat(p->dirfd, name, 0) < 0 && errno != ENOENT)
		return kerr_errno(err, errno, "cannot remove '%s' from pool '%s'", name, p->dir);
	if (unlinkat(p->dirfd, shadow, 0) < 0 && errno != ENOENT)
		return kerr_errno(err, errno, "cannot remove '%s' from pool '%s'", shadow, p->dir);
	return 0;
}

char *pool_shadow_name(const char *name)
{
	return xasprintf("%s.shadow", name);
}

int pool_take_shadow(struct pool *p, const char *name, struct kerr **err)
{
	_cleanup_free_ char *shadow = pool_shadow_name(name);
	_cleanup_free_ char *tmp = tmp_name(shadow);
	_cleanup_close_ int src = -1, fd = -1;

	if (!p->reflink)
		return kerr_set(err, KERR_INVALID, "pool '%s' cannot reflink: no shadow for '%s'",
		                p->dir, name);
	src = openat(p->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return kerr_errno(err, errno, "cannot open volume '%s'", name);
	fd = openat(p->dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return kerr_errno(err, errno, "cannot create the shadow of '%s'", name);
	if (ioctl(fd, FICLONE, src) < 0 || renameat(p->dirfd, tmp, p->dirfd, shadow) < 0) {
		int e = errno;
		unlinkat(p->dirfd, tmp, 0);
		return kerr_errno(err, e, "cannot take the shadow of '%s'", name);
	}
	return 0;
}

#define GIB ((uint64_t)1 << 30)

static uint64_t import_size(uint64_t content)
{
	uint64_t want = content + content / 2 + (256u << 20);

	return want < GIB ? GIB : (want + GIB - 1) / GIB * GIB;
}

int pool_import(struct pool *p, const char *name, const char *source, uint64_t size,
                struct kerr **err)
{
	_cleanup_free_ char *tmp = NULL;
	const char *tree = source;
	struct stat st;
	int r = -1;

	if (stat(source, &st) < 0)
		return kerr_errno(err, errno, "cannot open '%s'", source);
	if (!S_ISDIR(st.st_mode)) {
		char hex[9];
		id_random_hex(hex, 8);
		tmp = xasprintf("%s/" IMPORT_MARK "%s", p->dir, hex);
		char *tar[] = {"tar", "--numeric-owner", "-xpf", (char *)source, "-C", tmp, NULL};
		if (fs_mkdir_p(tmp, 0755, err) < 0 || spawn_run(tar, err) < 0) {
			kerr_wrap(err, "cannot unpack '%s'", source);
			goto out;
		}
		tree = tmp;
	}
	if (!size) {
		uint64_t content;
		if (fs_tree_bytes(tree, &content, err) < 0)
			goto out;
		size = import_size(content);
	}
	r = pool_create_volume(p, name, size, tree, err);
out:
	if (tmp)
		fs_remove_tree(tmp, NULL);
	return r;
}

int pool_clean(struct pool *p, size_t *removed, struct kerr **err)
{
	struct dirent *de;
	int fd = dup(p->dirfd), r = 0;
	DIR *d;

	*removed = 0;
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return kerr_errno(err, errno, "cannot read pool '%s'", p->dir);
	}
	while (r == 0 && (de = readdir(d))) {
		const char *n = de->d_name;
		if (n[0] != '.' || !strcmp(n, ".") || !strcmp(n, ".."))
			continue;
		if (!strncmp(n, IMPORT_MARK, strlen(IMPORT_MARK))) {
			_cleanup_free_ char *path = pool_path(p, n);
			r = fs_remove_tree(path, err);
		} else if (strstr(n, TMP_MARK) || strstr(n, OLD_RESTORE)) {
			if (unlinkat(p->dirfd, n, 0) < 0 && errno != ENOENT)
				r = kerr_errno(err, errno, "cannot remove '%s/%s'", p->dir, n);
		} else {
			continue;
		}
		*removed += r == 0;
	}
	closedir(d);
	return r;
}
