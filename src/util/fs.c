/* Full-length I/O loops and the write-temp, fsync, rename, fsync-dir sequence. */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "str.h"
#include "xalloc.h"
#include "banned.h"

ssize_t fs_pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int fs_pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

int fs_write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

int fs_fsync_dir(int dirfd, struct kerr **err)
{
	if (fsync(dirfd) < 0)
		return kerr_errno(err, errno, "cannot sync directory");
	return 0;
}

int fs_write_atomic(int dirfd, const char *name, const void *data, size_t len,
                    const char *fault_prefix, struct kerr **err)
{
	_cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", name, (int)getpid());
	_cleanup_close_ int fd = -1;
	char point[128];

	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return kerr_errno(err, errno, "cannot create '%s'", tmp);
	if (fs_write_full(fd, data, len) < 0 || fsync(fd) < 0) {
		int e = errno;
		unlinkat(dirfd, tmp, 0);
		return kerr_errno(err, e, "cannot write '%s'", tmp);
	}
	snprintf(point, sizeof(point), "%s.tmp", fault_prefix);
	fault_point(point);
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		int e = errno;
		unlinkat(dirfd, tmp, 0);
		return kerr_errno(err, e, "cannot rename '%s' to '%s'", tmp, name);
	}
	snprintf(point, sizeof(point), "%s.renamed", fault_prefix);
	fault_point(point);
	return fs_fsync_dir(dirfd, err);
}

int fs_write_replace(int dirfd, const char *name, const void *data, size_t len, struct kerr **err)
{
	_cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", name, (int)getpid());
	_cleanup_close_ int fd = -1;

	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return kerr_errno(err, errno, "cannot create '%s'", tmp);
	if (fs_write_full(fd, data, len) < 0 || renameat(dirfd, tmp, dirfd, name) < 0) {
		int e = errno;
		unlinkat(dirfd, tmp, 0);
		return kerr_errno(err, e, "cannot write '%s'", name);
	}
	return 0;
}

int fs_read_file(int dirfd, const char *name, size_t max, uint8_t **out, size_t *len,
                 struct kerr **err)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ uint8_t *data = NULL;
	struct stat st;
	ssize_t n;

	if (fd < 0)
		return kerr_errno(err, errno, "cannot open '%s'", name);
	if (fstat(fd, &st) < 0)
		return kerr_errno(err, errno, "cannot stat '%s'", name);
	if (!S_ISREG(st.st_mode))
		return kerr_set(err, KERR_INVALID, "'%s' is not a regular file", name);
	if ((uint64_t)st.st_size > max)
		return kerr_set(err, KERR_LIMIT, "'%s' is larger than %zu bytes", name, max);
	data = xmalloc((size_t)st.st_size + 1);
	n = fs_pread_full(fd, data, (size_t)st.st_size, 0);
	if (n < 0)
		return kerr_errno(err, errno, "cannot read '%s'", name);
	if ((size_t)n != (size_t)st.st_size)
		return kerr_set(err, KERR_IO, "cannot read '%s': file shrank while reading", name);
	data[n] = 0;
	*len = (size_t)n;
	*out = steal_ptr(data);
	return 0;
}

int fs_dir_lock(const char *path, int *dfd, int *lockfd, struct kerr **err)
{
	*dfd = *lockfd = -1;
	if (fs_mkdir_p(path, 0700, err) < 0)
		return -1;
	*dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*dfd < 0)
		return kerr_errno(err, errno, "cannot open '%s'", path);
	*lockfd = openat(*dfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*lockfd < 0)
		return kerr_errno(err, errno, "cannot open '%s/.lock'", path);
	while (flock(*lockfd, LOCK_EX) < 0)
		if (errno != EINTR)
			return kerr_errno(err, errno, "cannot lock '%s/.lock'", path);
	return 0;
}

int fs_read_two_lines(int dirfd, const char *name, char *a, size_t asize, char *b, size_t bsize)
{
	_cleanup_free_ uint8_t *text = NULL;
	char *nl1, *nl2;
	size_t len;

	if (fs_read_file(dirfd, name, asize + bsize + 2, &text, &len, NULL) < 0)
		return -1;
	nl1 = strchr((char *)text, '\n');
	nl2 = nl1 ? strchr(nl1 + 1, '\n') : NULL;
	if (!nl2 || (size_t)(nl1 - (char *)text) >= asize || (size_t)(nl2 - nl1 - 1) >= bsize)
		return -1;
	*nl1 = *nl2 = '\0';
	str_copy(a, (char *)text, asize);
	str_copy(b, nl1 + 1, bsize);
	return 0;
}

DIR *fs_opendir_dup(int dirfd)
{
	int fd = dup(dirfd);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);

	if (!d) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		errno = e;
		return NULL;
	}
	rewinddir(d);
	return d;
}

int fs_mkdir_p(const char *path, mode_t mode, struct kerr **err)
{
	_cleanup_free_ char *p = xstrdup(path);

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return kerr_errno(err, errno, "cannot create directory '%s'", p);
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return kerr_errno(err, errno, "cannot create directory '%s'", p);
	return 0;
}

int fs_has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);

	return n >= s && memcmp(name + n - s, suffix, s) == 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (type == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT ? -1 : 0;
}

int fs_remove_tree(const char *path, struct kerr **err)
{
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 0;
	if (nftw(path, remove_one, 32, FTW_DEPTH | FTW_PHYS) != 0)
		return kerr_errno(err, errno, "cannot remove '%s'", path);
	return 0;
}

static uint64_t tree_bytes;

static int count_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)path;
	(void)type;
	(void)ftw;
	tree_bytes += (uint64_t)st->st_blocks * 512;
	return 0;
}

int fs_tree_bytes(const char *path, uint64_t *bytes, struct kerr **err)
{
	tree_bytes = 0; /* nftw has no context argument; callers are not concurrent */
	if (nftw(path, count_one, 32, FTW_PHYS) != 0)
		return kerr_errno(err, errno, "cannot measure '%s'", path);
	*bytes = tree_bytes;
	return 0;
}
