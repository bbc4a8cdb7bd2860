/* Loop device attach with LOOP_CONFIGURE: one ioctl sets the file, flags and autoclear. */
#include "loop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "str.h"
#include "banned.h"

#define LOOP_ATTEMPTS 32

int loop_attach(const char *path, bool read_only, int *fd, char *dev, struct kerr **err)
{
	_cleanup_close_ int ctl = -1, file = -1;

	file = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (file < 0)
		return kerr_errno(err, errno, "cannot open '%s'", path);
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return kerr_errno(err, errno, "cannot open '/dev/loop-control'");
	for (int attempt = 0; attempt < LOOP_ATTEMPTS; attempt++) {
		struct loop_config cfg;
		int nr = ioctl(ctl, LOOP_CTL_GET_FREE);
		int lfd;

		if (nr < 0)
			return kerr_errno(err, errno, "cannot find a free loop device");
		snprintf(dev, 32, "/dev/loop%d", nr);
		lfd = open(dev, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (lfd < 0) {
			if (errno == ENOENT) /* udev has not made the node yet */
				continue;
			return kerr_errno(err, errno, "cannot open '%s'", dev);
		}
		memset(&cfg, 0, sizeof(cfg));
		cfg.fd = (uint32_t)file;
		cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR | (read_only ? LO_FLAGS_READ_ONLY : 0);
		str_copy((char *)cfg.info.lo_file_name, path, sizeof(cfg.info.lo_file_name));
		if (ioctl(lfd, LOOP_CONFIGURE, &cfg) == 0) {
			*fd = lfd;
			return 0;
		}
		int e = errno;
		close(lfd);
		if (e != EBUSY) /* EBUSY: someone else took it between GET_FREE and CONFIGURE */
			return kerr_errno(err, e, "cannot attach '%s' to '%s'", path, dev);
	}
	return kerr_set(err, KERR_CONFLICT, "cannot attach '%s': every free loop device was taken",
	                path);
}

/* True when some /sys/block/loopN/loop/backing_file names path's inode. */
static bool loop_in_use(const char *path)
{
	struct stat want;
	struct dirent *de;
	bool found = false;
	DIR *d;

	if (stat(path, &want) < 0)
		return false;
	d = opendir("/sys/block");
	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		char p[300], back[4096];
		struct stat st;
		ssize_t n;
		int fd;

		if (strncmp(de->d_name, "loop", 4) != 0)
			continue;
		snprintf(p, sizeof(p), "/sys/block/%s/loop/backing_file", de->d_name);
		fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, back, sizeof(back) - 1);
		close(fd);
		if (n <= 0)
			continue;
		back[n] = '\0';
		back[strcspn(back, "\n")] = '\0';
		if (stat(back, &st) == 0 && st.st_dev == want.st_dev && st.st_ino == want.st_ino)
			found = true;
	}
	closedir(d);
	return found;
}

int loop_wait_released(const char *path, int timeout_ms, struct kerr **err)
{
	for (int waited = 0; loop_in_use(path); waited += 5) {
		if (waited >= timeout_ms)
			return kerr_set(err, KERR_CONFLICT,
			                "'%s' is still attached to a loop device", path);
		nanosleep(&(struct timespec){0, 5000000}, NULL);
	}
	return 0;
}
