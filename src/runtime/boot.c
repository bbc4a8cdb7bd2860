/* Inside the new namespaces: mount the root volume idmapped to the instance's user namespace, a
 * minimal /dev, /proc (its global knobs masked or read-only), /sys (read-only) and /run, the user
 * data, pivot_root, become root of the user namespace, confine, exec kiln-init from its sealed
 * memfd. The mounts are made as host root in a mount namespace the instance's user namespace
 * does not own, so nothing inside can undo them. */
#include "boot.h"

#include <errno.h>
#include <fcntl.h>
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

#include "confine.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define PUBLIC_KEY_MAX (16u << 10)

__attribute__((noreturn, format(printf, 2, 3))) static void fail(const struct boot_config *c,
                                                                 const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	send(c->sync_fd, msg, strlen(msg), MSG_NOSIGNAL);
	_exit(1);
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

static void do_mount(const struct boot_config *c, const char *src, const char *target,
                     const char *type, unsigned long flags, const char *data)
{
	if (mount(src, target, type, flags, data) < 0)
		fail(c, "cannot mount %s on '%s': %s",
		     type  ? type
		     : src ? src
		           : "a remount",
		     target, strerror(errno));
}

/* A file or directory that kiln made as host root: the instance's root owns it. */
static void give(const struct boot_config *c, int dirfd, const char *name)
{
	if (fchownat(dirfd, name, c->id_base, c->id_base, AT_SYMLINK_NOFOLLOW) < 0)
		fail(c, "cannot hand '%s' to the instance's root: %s", name, strerror(errno));
}

static void copy_in(const struct boot_config *c, const char *from, int to_dirfd, const char *to,
                    mode_t mode, size_t max)
{
	_cleanup_free_ uint8_t *data = NULL;
	_cleanup_close_ int fd = -1;
	size_t len;

	if (fs_read_file(AT_FDCWD, from, max, &data, &len, NULL) < 0)
		fail(c, "cannot read '%s'", from);
	fd = openat(to_dirfd, to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0 || fs_write_full(fd, data, len) < 0)
		fail(c, "cannot write '%s': %s", to, strerror(errno));
	give(c, to_dirfd, to);
}

/* tmpfs options with the instance's root as owner of the top directory. */
static char *tmpfs_opts(const struct boot_config *c, const char *mode)
{
	return xasprintf("mode=%s,size=65536k,uid=%u,gid=%u", mode, (unsigned)c->id_base,
	                 (unsigned)c->id_base);
}

static void make_dev(const struct boot_config *c, const char *root)
{
	static const struct {
		const char *name;
		unsigned major, minor;
	} nodes[] = {{"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
	             {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
	static const char *const links[][2] = {
	    {"/proc/self/fd", "fd"},       {"/proc/self/fd/0", "stdin"},
	    {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
	    {"pts/ptmx", "ptmx"},
	};
	_cleanup_free_ char *dev = xasprintf("%s/dev", root);
	_cleanup_free_ char *pts = xasprintf("%s/dev/pts", root);
	_cleanup_free_ char *shm = xasprintf("%s/dev/shm", root);
	_cleanup_free_ char *devopts = tmpfs_opts(c, "755");
	_cleanup_free_ char *shmopts = tmpfs_opts(c, "1777");
	/* The tty group (5) of the instance owns its terminals. */
	_cleanup_free_ char *ptsopts =
	    xasprintf("newinstance,ptmxmode=0666,mode=0620,gid=%u", (unsigned)c->id_base + 5);
	_cleanup_close_ int dfd = -1;

	do_mount(c, "tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, devopts);
	dfd = open(dev, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
		/* mknod honours the umask; every user of the instance must reach these (apt's
		 * sandbox user writes /dev/null), so the mode is set again after. */
		if (mknodat(dfd, nodes[i].name, S_IFCHR | 0666,
		            makedev(nodes[i].major, nodes[i].minor)) < 0 ||
		    fchmodat(dfd, nodes[i].name, 0666, 0) < 0)
			fail(c, "cannot create /dev/%s: %s", nodes[i].name, strerror(errno));
		give(c, dfd, nodes[i].name);
	}
	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		if (symlinkat(links[i][0], dfd, links[i][1]) == 0)
			give(c, dfd, links[i][1]);
	mkdirat(dfd, "pts", 0755);
	mkdirat(dfd, "shm", 01777);
	give(c, dfd, "pts");
	do_mount(c, "devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC, ptsopts);
	do_mount(c, "shm", shm, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, shmopts);
}

/* /proc and /sys show the instance its own processes and network, but the kernel's global
 * knobs stay out of reach: files masked by /dev/null, directories by an empty read-only tmpfs,
 * the rest of the global ones read-only (the list container runtimes agree on). */
static const char *const masked[] = {
    "proc/acpi",       "proc/asound",        "proc/interrupts",  "proc/kcore",
    "proc/keys",       "proc/latency_stats", "proc/sched_debug", "proc/scsi",
    "proc/timer_list", "proc/timer_stats",   "sys/firmware",     "sys/devices/virtual/powercap",
};
static const char *const read_only[] = {"proc/sys", "proc/sysrq-trigger", "proc/irq", "proc/bus",
                                        "proc/fs"};

static void mount_kernel_views(const struct boot_config *c, const char *root, int rootfd)
{
	_cleanup_free_ char *proc = xasprintf("%s/proc", root);
	_cleanup_free_ char *sys = xasprintf("%s/sys", root);
	_cleanup_free_ char *null = xasprintf("%s/dev/null", root);
	const unsigned long plain = MS_NOSUID | MS_NODEV | MS_NOEXEC;

	do_mount(c, "proc", proc, "proc", plain, NULL);
	do_mount(c, "sysfs", sys, "sysfs", MS_RDONLY | plain, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(masked); i++) {
		_cleanup_free_ char *path = xasprintf("%s/%s", root, masked[i]);
		struct stat st;

		if (fstatat(rootfd, masked[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* this kernel has no such file */
		if (S_ISDIR(st.st_mode))
			do_mount(c, "tmpfs", path, "tmpfs", MS_RDONLY | plain,
			         "nr_blocks=1,nr_inodes=1,mode=555");
		else
			do_mount(c, null, path, NULL, MS_BIND, NULL);
	}
	for (size_t i = 0; i < ARRAY_SIZE(read_only); i++) {
		_cleanup_free_ char *path = xasprintf("%s/%s", root, read_only[i]);

		if (faccessat(rootfd, read_only[i], F_OK, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		do_mount(c, path, path, NULL, MS_BIND | MS_REC, NULL);
		do_mount(c, NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | plain, NULL);
	}
}

/* The instance resolves names with the host's resolver (reached through the NAT), as an EC2
 * instance uses the VPC's: /etc/resolv.conf gets a copy of the host's file by a bind mount,
 * unless the image manages it itself (a symlink) or the host's resolver is on its own loopback.
 * The target must exist before the root is idmapped (host root cannot create files there
 * after), so this runs in two steps. */
static bool resolver_target(int rootfd, uint8_t **conf, size_t *len)
{
	struct stat st;
	int fd;

	if (fs_read_file(AT_FDCWD, "/etc/resolv.conf", 65536, conf, len, NULL) < 0 ||
	    strstr((char *)*conf, "nameserver 127.") ||
	    fstatat(rootfd, "etc", &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
		return false;
	if (fstatat(rootfd, "etc/resolv.conf", &st, AT_SYMLINK_NOFOLLOW) < 0) {
		fd = openat(rootfd, "etc/resolv.conf",
		            O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd < 0)
			return false;
		close(fd);
		return true;
	}
	return S_ISREG(st.st_mode);
}

static void share_resolver(const struct boot_config *c, const char *root, int kilnfd,
                           const uint8_t *conf, size_t len)
{
	_cleanup_free_ char *copy = xasprintf("%s/run/kiln/resolv.conf", root);
	_cleanup_free_ char *target = xasprintf("%s/etc/resolv.conf", root);
	_cleanup_close_ int fd =
	    openat(kilnfd, "resolv.conf", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd < 0 || fs_write_full(fd, conf, len) < 0)
		fail(c, "cannot write '%s': %s", copy, strerror(errno));
	give(c, kilnfd, "resolv.conf");
	do_mount(c, copy, target, NULL, MS_BIND, NULL);
}

/* Replace the plain mount of the root volume by one idmapped to the instance's user namespace:
 * uid 0 on disk is its root, so volumes, snapshots and images stay byte-identical. */
static void idmap_root(const struct boot_config *c, const char *root)
{
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP,
	                          .userns_fd = (uint64_t)c->userns_fd};
	_cleanup_close_ int tree = open_tree(AT_FDCWD, root, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);

	if (tree < 0 || mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
		fail(c, "cannot idmap the root volume: %s", strerror(errno));
	if (umount2(root, MNT_DETACH) < 0 ||
	    move_mount(tree, "", AT_FDCWD, root, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		fail(c, "cannot mount the idmapped root volume: %s", strerror(errno));
}

/* The root and /dev, for the shim: it freezes and places volume nodes through these, never
 * through paths the instance could swap. */
static void send_mounted(const struct boot_config *c, int rootfd, int devfd)
{
	char cbuf[CMSG_SPACE(2 * sizeof(int))] = {0};
	struct iovec iov = {.iov_base = "mounted", .iov_len = 7};
	struct msghdr msg = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	int fds[2] = {rootfd, devfd};

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	if (sendmsg(c->sync_fd, &msg, MSG_NOSIGNAL) < 0)
		_exit(1);
}

static char *env_entry(const char *key, const char *value)
{
	return xasprintf("%s=%s", key, value);
}

static void join(const struct boot_config *c, int fd, int type, const char *what)
{
	if (setns(fd, type) < 0)
		fail(c, "cannot join the instance's %s namespace: %s", what, strerror(errno));
}

void boot_container(const struct boot_config *c)
{
	const struct instance_spec *spec = c->spec;
	_cleanup_free_ char *root = xasprintf("%s/rootfs", c->dir);
	_cleanup_free_ char *run = xasprintf("%s/run", root);
	_cleanup_free_ char *runopts = tmpfs_opts(c, "755");
	_cleanup_free_ uint8_t *resolv = NULL;
	_cleanup_close_ int rootfd = -1, sh = -1, kilnfd = -1, devfd = -1;
	_cleanup_kerr_ struct kerr *err = NULL;
	size_t resolv_len = 0;
	bool resolver;
	char go[8], timeout[16];
	char *argv[] = {"kiln-init", NULL};

	/* Still host root: the network, host name and IPC namespaces the shim made (owned by the
	 * instance's user namespace) first, so that /sys shows the instance's own links. */
	join(c, c->netns_fd, CLONE_NEWNET, "network");
	join(c, c->utsns_fd, CLONE_NEWUTS, "host name");
	join(c, c->ipcns_fd, CLONE_NEWIPC, "IPC");
	/* The mounts need neither the cgroup nor the network, so they are made while the shim
	 * sets those up (the cgroup v1 move alone costs an RCU grace period, about 10 ms). */
	do_mount(c, NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	if (mkdir(root, 0700) < 0 && errno != EEXIST)
		fail(c, "cannot create '%s': %s", root, strerror(errno));
	/* nodev: a device node baked into an image opens nothing. */
	if (mount(c->device, root, "ext4", MS_NOATIME | MS_NODEV, "noinit_itable") < 0)
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
	resolver = resolver_target(rootfd, &resolv, &resolv_len);
	close(steal_fd(&rootfd));
	idmap_root(c, root);
	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		fail(c, "cannot open the root volume: %s", strerror(errno));
	make_dev(c, root);
	mount_kernel_views(c, root, rootfd);
	do_mount(c, "tmpfs", run, "tmpfs", MS_NOSUID | MS_NODEV, runopts);
	if (mkdirat(rootfd, "run/kiln", 0755) < 0)
		fail(c, "cannot create /run/kiln: %s", strerror(errno));
	kilnfd = openat(rootfd, "run/kiln", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (kilnfd < 0)
		fail(c, "cannot open /run/kiln: %s", strerror(errno));
	give(c, rootfd, "run/kiln");
	if (spec->user_data[0])
		copy_in(c, spec->user_data, kilnfd, "user-data", 0600, USER_DATA_MAX);
	if (spec->public_key[0])
		copy_in(c, spec->public_key, kilnfd, "openssh-key", 0644, PUBLIC_KEY_MAX);
	if (resolver)
		share_resolver(c, root, kilnfd, resolv, resolv_len);
	devfd = openat(rootfd, "dev", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (devfd < 0)
		fail(c, "cannot open /dev: %s", strerror(errno));
	send_mounted(c, rootfd, devfd);

	/* Sync point: in its cgroup (so the cgroup namespace is rooted there) and networked. */
	if (recv(c->sync_fd, go, sizeof(go), 0) != 2)
		_exit(1); /* the shim gave up on us */
	if (sethostname(spec->hostname, strlen(spec->hostname)) < 0)
		fail(c, "cannot set the hostname '%s': %s", spec->hostname, strerror(errno));
	if (chdir(root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
		fail(c, "cannot pivot to the root volume: %s", strerror(errno));
	if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		fail(c, "cannot detach the host's root: %s", strerror(errno));
	if (confine_become_root(c->userns_fd, &err) < 0)
		fail(c, "%s", err->msg);
	if (unshare(CLONE_NEWCGROUP) < 0)
		fail(c, "cannot create a cgroup namespace: %s", strerror(errno));
	if (confine_seccomp(&err) < 0 || confine_capabilities(&err) < 0)
		fail(c, "%s", err->msg);

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
	if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(c->console_fd, 1) < 0 ||
	    dup2(c->console_fd, 2) < 0)
		fail(c, "cannot set up the console: %s", strerror(errno));
	execveat(c->init_fd, "", argv, envp, AT_EMPTY_PATH);
	fail(c, "cannot start kiln-init: %s", strerror(errno));
}
