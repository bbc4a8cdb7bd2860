/* Inside the new namespaces: mount the root volume and a minimal /dev, /proc, /sys and /run,
 * install kiln-init and the user data, pivot_root, drop capabilities, exec PID 1. All mounts
 * happen before pivot_root; the old root is detached right after it. */
#include "boot.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/fs.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define USER_DATA_MAX (16u << 10) /* EC2's limit on user data */
#define PUBLIC_KEY_MAX (16u << 10)

__attribute__((noreturn, format(printf, 2, 3))) static void fail(const struct boot_config *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	send(c->sync_fd, msg, strlen(msg), MSG_NOSIGNAL);
	_exit(1);
}

static const int dropped_caps[] = {
	CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_BOOT,   CAP_SYS_TIME,     CAP_SYS_ADMIN,
	CAP_MKNOD,      CAP_SYSLOG,    CAP_MAC_ADMIN,  CAP_MAC_OVERRIDE, CAP_WAKE_ALARM,
	CAP_BLOCK_SUSPEND, CAP_AUDIT_CONTROL, CAP_SYS_PACCT, CAP_LINUX_IMMUTABLE, CAP_BPF,
	CAP_PERFMON,
};

void boot_drop_capabilities(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(dropped_caps); i++)
		prctl(PR_CAPBSET_DROP, dropped_caps[i], 0, 0, 0);
}

/* A path inside the new root, resolved as if that root were "/" (no escape by symlinks). */
static int open_in_root(int rootfd, const char *path, int flags)
{
	struct open_how how = {.flags = (uint64_t)flags | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};

	return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
}

/* The directory must be a real directory of the image, not a link that points elsewhere. */
static void need_dir(const struct boot_config *c, int rootfd, const char *name)
{
	struct stat st;

	if (fstatat(rootfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT || mkdirat(rootfd, name, 0755) < 0)
			fail(c, "cannot create /%s in the root volume: %s", name, strerror(errno));
	} else if (!S_ISDIR(st.st_mode)) {
		fail(c, "the root volume's /%s is not a directory", name);
	}
}

static void do_mount(const struct boot_config *c, const char *src, const char *target, const char *type,
		     unsigned long flags, const char *data)
{
	if (mount(src, target, type, flags, data) < 0)
		fail(c, "cannot mount %s on '%s': %s", type ? type : src, target, strerror(errno));
}

static void copy_in(const struct boot_config *c, const char *from, int from_dirfd, const char *to,
		    mode_t mode, size_t max)
{
	_cleanup_free_ uint8_t *data = NULL;
	_cleanup_close_ int fd = -1;
	size_t len;

	if (fs_read_file(from_dirfd, from, max, &data, &len, NULL) < 0)
		fail(c, "cannot read '%s'", from);
	fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0 || fs_write_full(fd, data, len) < 0)
		fail(c, "cannot write '%s': %s", to, strerror(errno));
}

static void make_dev(const struct boot_config *c, const char *root)
{
	static const struct {
		const char *name;
		unsigned major, minor;
	} nodes[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
	static const char *const links[][2] = {
		{"/proc/self/fd", "fd"},   {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},     {"/proc/kcore", "core"},
	};
	_cleanup_free_ char *dev = xasprintf("%s/dev", root);
	_cleanup_free_ char *pts = xasprintf("%s/dev/pts", root);
	_cleanup_free_ char *shm = xasprintf("%s/dev/shm", root);
	_cleanup_close_ int dfd = -1;

	do_mount(c, "tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536k");
	dfd = open(dev, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 0; i < ARRAY_SIZE(nodes); i++)
		/* mknod honours the umask; every user of the instance must reach these (apt's
		 * sandbox user writes /dev/null), so the mode is set again after. */
		if (mknodat(dfd, nodes[i].name, S_IFCHR | 0666, makedev(nodes[i].major, nodes[i].minor)) < 0 ||
		    fchmodat(dfd, nodes[i].name, 0666, 0) < 0)
			fail(c, "cannot create /dev/%s: %s", nodes[i].name, strerror(errno));
	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		symlinkat(links[i][0], dfd, links[i][1]);
	mkdirat(dfd, "pts", 0755);
	mkdirat(dfd, "shm", 01777);
	do_mount(c, "devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
	do_mount(c, "shm", shm, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k");
}

/* The instance resolves names with the host's resolver (reached through the NAT), as an EC2
 * instance uses the VPC's: /etc/resolv.conf gets the host's file by a bind mount, unless the
 * image manages it itself (a symlink) or the host's resolver is on its own loopback. */
static void share_resolver(const struct boot_config *c, const char *root, int rootfd)
{
	_cleanup_free_ uint8_t *conf = NULL;
	_cleanup_free_ char *copy = xasprintf("%s/run/kiln/resolv.conf", root);
	_cleanup_free_ char *target = xasprintf("%s/etc/resolv.conf", root);
	struct stat st;
	size_t len;
	int fd;

	if (fs_read_file(AT_FDCWD, "/etc/resolv.conf", 65536, &conf, &len, NULL) < 0 ||
	    strstr((char *)conf, "nameserver 127.") || fstatat(rootfd, "etc", &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISDIR(st.st_mode))
		return;
	if (fstatat(rootfd, "etc/resolv.conf", &st, AT_SYMLINK_NOFOLLOW) < 0) {
		fd = openat(rootfd, "etc/resolv.conf", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd < 0)
			return;
		close(fd);
	} else if (!S_ISREG(st.st_mode)) {
		return;
	}
	fd = open(copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || fs_write_full(fd, conf, len) < 0)
		fail(c, "cannot write '%s': %s", copy, strerror(errno));
	close(fd);
	do_mount(c, copy, target, NULL, MS_BIND, NULL);
}

static char *env_entry(const char *key, const char *value)
{
	return xasprintf("%s=%s", key, value);
}

void boot_container(const struct boot_config *c)
{
	const struct instance_spec *spec = c->spec;
	_cleanup_free_ char *root = xasprintf("%s/rootfs", c->dir);
	_cleanup_free_ char *run = xasprintf("%s/run", root);
	_cleanup_free_ char *init = xasprintf("%s/run/kiln/init", root);
	_cleanup_free_ char *udata = xasprintf("%s/run/kiln/user-data", root);
	_cleanup_free_ char *kilndir = xasprintf("%s/run/kiln", root);
	_cleanup_close_ int rootfd = -1, sh = -1;
	char go[8], timeout[16];
	char *argv[] = {"kiln-init", NULL};

	/* The mounts need neither the cgroup nor the network, so they are made while the shim
	 * sets those up (the cgroup v1 move alone costs an RCU grace period, about 10 ms). */
	do_mount(c, NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	if (mkdir(root, 0700) < 0 && errno != EEXIST)
		fail(c, "cannot create '%s': %s", root, strerror(errno));
	if (mount(c->device, root, "ext4", MS_NOATIME, "noinit_itable") < 0)
		fail(c, "the root volume is not a usable ext4 filesystem: %s", strerror(errno));
	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		fail(c, "cannot open the root volume: %s", strerror(errno));
	/* kiln-init runs user data and rc.d scripts with /bin/sh: without it nothing can boot. */
	sh = open_in_root(rootfd, "/bin/sh", O_PATH);
	if (sh < 0)
		fail(c, "the image has no usable init: /bin/sh is missing from its root volume");
	need_dir(c, rootfd, "proc");
	need_dir(c, rootfd, "sys");
	need_dir(c, rootfd, "dev");
	need_dir(c, rootfd, "run");
	need_dir(c, rootfd, "tmp");
	{
		_cleanup_free_ char *proc = xasprintf("%s/proc", root);
		_cleanup_free_ char *sys = xasprintf("%s/sys", root);
		do_mount(c, "proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
		do_mount(c, "sysfs", sys, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	}
	make_dev(c, root);
	do_mount(c, "tmpfs", run, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=65536k");
	if (mkdir(kilndir, 0755) < 0)
		fail(c, "cannot create /run/kiln: %s", strerror(errno));
	/* kiln-init is the host's binary, bound read-only: no copy per boot, no write by the guest. */
	{
		int fd = open(init, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
		if (fd < 0)
			fail(c, "cannot create '%s': %s", init, strerror(errno));
		close(fd);
		do_mount(c, c->init_path, init, NULL, MS_BIND, NULL);
		do_mount(c, NULL, init, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL);
	}
	if (spec->user_data[0])
		copy_in(c, spec->user_data, AT_FDCWD, udata, 0600, USER_DATA_MAX);
	if (spec->public_key[0]) {
		_cleanup_free_ char *key = xasprintf("%s/run/kiln/openssh-key", root);
		copy_in(c, spec->public_key, AT_FDCWD, key, 0644, PUBLIC_KEY_MAX);
	}
	share_resolver(c, root, rootfd);

	/* Sync point: in its cgroup (so the cgroup namespace is rooted there) and networked. */
	if (recv(c->sync_fd, go, sizeof(go), 0) != 2)
		_exit(1); /* the shim gave up on us */
	if (unshare(CLONE_NEWCGROUP) < 0)
		fail(c, "cannot create a cgroup namespace: %s", strerror(errno));
	if (sethostname(spec->hostname, strlen(spec->hostname)) < 0)
		fail(c, "cannot set the hostname '%s': %s", spec->hostname, strerror(errno));
	if (chdir(root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
		fail(c, "cannot pivot to the root volume: %s", strerror(errno));
	if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		fail(c, "cannot detach the host's root: %s", strerror(errno));
	boot_drop_capabilities();

	snprintf(timeout, sizeof(timeout), "%u", spec->stop_timeout ? spec->stop_timeout : 10);
	char *envp[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		env_entry("KILN_INSTANCE_ID", spec->id),
		env_entry("KILN_IMAGE_ID", spec->image_id),
		env_entry("KILN_REGION", spec->region),
		env_entry("KILN_ZONE", spec->zone),
		env_entry("KILN_INSTANCE_TYPE", spec->type),
		env_entry("KILN_LOCAL_IPV4", spec->address),
		env_entry("KILN_HOSTNAME", spec->hostname),
		env_entry("KILN_MAC", spec->mac),
		env_entry("KILN_STOP_TIMEOUT", timeout),
		NULL,
	};
	/* KILN_LOCAL_IPV4 without the prefix length. */
	char *slash = strchr(envp[6], '/');
	if (slash)
		*slash = '\0';
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(c->console_fd, 1) < 0 || dup2(c->console_fd, 2) < 0)
		fail(c, "cannot set up the console: %s", strerror(errno));
	execve("/run/kiln/init", argv, envp);
	fail(c, "cannot start kiln-init: %s", strerror(errno));
}
