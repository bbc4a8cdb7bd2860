/* The confinement every process of an instance carries: a user namespace of its own, Docker's
 * default capability set (libcap) and a seccomp filter (libseccomp). The user namespace does
 * most of the work; the filter refuses what a user namespace still leaves reachable (the kernel's
 * global keyring, modules, BPF, perf, new namespaces and the new mount API). */
#include "confine.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/fs.h"
#include "util/banned.h"

static int write_map(pid_t pid, const char *file, uid_t base, struct kerr **err)
{
	char path[64], line[64];
	_cleanup_close_ int fd = -1;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	n = snprintf(line, sizeof(line), "0 %u %u\n", (unsigned)base, CONFINE_ID_RANGE);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, line, (size_t)n) != n)
		return kerr_errno(err, errno, "cannot write '%s'", path);
	return 0;
}

int confine_idmap_write(pid_t pid, uid_t base, struct kerr **err)
{
	if (write_map(pid, "uid_map", base, err) < 0 || write_map(pid, "gid_map", base, err) < 0)
		return -1;
	return 0;
}

int confine_become_root(int userns_fd, struct kerr **err)
{
	if (setns(userns_fd, CLONE_NEWUSER) < 0)
		return kerr_errno(err, errno, "cannot join the instance's user namespace");
	/* Host root is not mapped there: become the namespace's own root. */
	if (setresgid(0, 0, 0) < 0 || setgroups(0, NULL) < 0 || setresuid(0, 0, 0) < 0)
		return kerr_errno(err, errno,
		                  "cannot become root of the instance's user namespace");
	return 0;
}

/* Refused with EPERM: the host's kernel state, which no user namespace confines. */
static const char *const denied[] = {
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "open_by_handle_at",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "acct",
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "open_tree",
    "move_mount",
    "mount_setattr",
    "swapon",
    "swapoff",
    "reboot",
    "quotactl",
    "quotactl_fd",
    "lookup_dcookie",
    "userfaultfd",
    "iopl",
    "ioperm",
    "settimeofday",
    "stime",
    "clock_settime",
    "clock_adjtime",
    "syslog",
    "vhangup",
    "uselib",
    "nfsservctl",
    "_sysctl",
    "ustat",
    "sysfs",
    "unshare",
    "setns",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "get_kernel_syms",
    "query_module",
    "vm86",
    "vm86old",
    "fanotify_init",
};

/* Namespace flags of clone(2): refused, as unshare and setns are. */
static const unsigned long clone_ns_flags[] = {
    CLONE_NEWNS,   CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
    CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET,
};

static void seccomp_releasep(scmp_filter_ctx *ctx)
{
	if (*ctx)
		seccomp_release(*ctx);
}

static int rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
                const struct scmp_arg_cmp *cmp)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR)
		return 0; /* not a syscall of these architectures */
	int r = seccomp_rule_add_array(ctx, action, nr, n, cmp);
	return r == -EDOM || r == -EFAULT ? 0 : r; /* absent on one of the architectures */
}

int confine_seccomp(struct kerr **err)
{
	__attribute__((cleanup(seccomp_releasep))) scmp_filter_ctx ctx =
	    seccomp_init(SCMP_ACT_ALLOW);
	uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
	int r = 0;

	if (!ctx)
		return kerr_set(err, KERR_INTERNAL, "cannot create a seccomp filter");
	/* The same rules for 32-bit code: otherwise int 0x80 would go around them. */
	r = seccomp_arch_add(ctx, SCMP_ARCH_X86);
	if (r == 0 || r == -EEXIST)
		r = seccomp_arch_add(ctx, SCMP_ARCH_X32);
	if (r == -EEXIST)
		r = 0;
	if (r == 0)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(denied); i++)
		r = rule(ctx, eperm, denied[i], 0, NULL);
	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(clone_ns_flags); i++) {
		struct scmp_arg_cmp flag =
		    SCMP_A0(SCMP_CMP_MASKED_EQ, clone_ns_flags[i], clone_ns_flags[i]);
		r = rule(ctx, eperm, "clone", 1, &flag);
	}
	/* clone3 passes its flags behind a pointer: ENOSYS makes glibc fall back to clone. */
	if (r == 0)
		r = rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL);
	/* The kernel's crypto API and host vsock are no instance's business. */
	if (r == 0)
		r = rule(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 1,
		         (struct scmp_arg_cmp[]){SCMP_A0(SCMP_CMP_EQ, AF_ALG, 0)});
	if (r == 0)
		r = rule(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 1,
		         (struct scmp_arg_cmp[]){SCMP_A0(SCMP_CMP_EQ, AF_VSOCK, 0)});
	if (r < 0)
		return kerr_errno(err, -r, "cannot build the seccomp filter");
	r = seccomp_load(ctx);
	if (r < 0)
		return kerr_errno(err, -r, "cannot load the seccomp filter");
	return 0;
}

/* Docker's default set: what a system's own services need, nothing that reaches the host. */
static const cap_value_t kept_caps[] = {
    CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,
    CAP_MKNOD,   CAP_NET_RAW,      CAP_SETGID,           CAP_SETUID,
    CAP_SETFCAP, CAP_SETPCAP,      CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
    CAP_KILL,    CAP_AUDIT_WRITE,
};

static bool cap_kept(cap_value_t c)
{
	for (size_t i = 0; i < ARRAY_SIZE(kept_caps); i++)
		if (kept_caps[i] == c)
			return true;
	return false;
}

int confine_capabilities(struct kerr **err)
{
	cap_value_t last = (cap_value_t)cap_max_bits();
	cap_t caps;
	int r;

	for (cap_value_t c = 0; c < last; c++)
		if (!cap_kept(c) && cap_drop_bound(c) < 0 && errno != EINVAL)
			return kerr_errno(
			    err, errno, "cannot drop capability %d from the bounding set", (int)c);
	caps = cap_init();
	if (!caps)
		return kerr_errno(err, errno, "cannot allocate a capability set");
	r = cap_set_flag(caps, CAP_EFFECTIVE, ARRAY_SIZE(kept_caps), kept_caps, CAP_SET) < 0 ||
	            cap_set_flag(caps, CAP_PERMITTED, ARRAY_SIZE(kept_caps), kept_caps, CAP_SET) <
	                0 ||
	            cap_set_proc(caps) < 0
	        ? -1
	        : 0;
	int e = errno;
	cap_free(caps);
	if (r < 0)
		return kerr_errno(err, e, "cannot set the capabilities");
	if (cap_reset_ambient() < 0 && errno != EINVAL)
		return kerr_errno(err, errno, "cannot clear the ambient capabilities");
	return 0;
}
