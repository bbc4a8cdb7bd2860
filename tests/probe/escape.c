/* kiln-escape-probe: tries one escape from inside an instance and says whether it worked. The
 * isolation tests (tests/integration/test_isolation.py) copy it into instances and run one
 * subcommand per attempt. Output: one line per attempt, "ok <what>" when it worked (an escape)
 * or "blocked <what>: <why>"; lines starting with '#' are details. Exit 0 when every attempt
 * was blocked, 1 when one worked, 2 on a usage error or when nothing could be tried. Every
 * attempt is non-destructive: values are written back unchanged, devices are only read, mounts
 * are undone, kernel calls get arguments they refuse after their permission check. Static and
 * plain libc, so that it runs in any image. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/banned.h"

#define KEXEC_SEGMENTS_TOO_MANY 17 /* KEXEC_SEGMENT_MAX + 1: refused after the permission check */
#define MOUNT_DIR               "/tmp/.kiln-escape-mnt"
#define TMPFS_MAGIC_            0x01021994
#define UNUSED                  __attribute__((unused))

static bool escaped;
static unsigned blocked_count;

/* ---- output ---- */

__attribute__((format(printf, 1, 2))) static void say_ok(const char *fmt, ...)
{
	va_list ap;

	fputs("ok ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	escaped = true;
}

/* "blocked <what>: <why>", why being an errno text or a sentence. */
__attribute__((format(printf, 2, 3))) static void say_blocked(const char *why, const char *fmt, ...)
{
	va_list ap;

	fputs("blocked ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(": %s\n", why);
	fflush(stdout);
	blocked_count++;
}

__attribute__((format(printf, 1, 2))) static void note(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("error ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	exit(2);
}

static int verdict(void)
{
	if (escaped)
		return 1;
	return blocked_count ? 0 : 2;
}

/* An errno of a kernel call that only EPERM may answer: anything else means the kernel got past
 * the permission check and looked at the arguments. */
static void judge_eperm(long r, int e, const char *what)
{
	if (r >= 0)
		say_ok("%s: the call succeeded (returned %ld)", what, r);
	else if (e == EPERM)
		say_blocked(strerror(e), "%s", what);
	else
		say_ok("%s: the kernel looked at it (%s, not EPERM)", what, strerror(e));
}

/* ---- small parsers ---- */

static long long number(const char *s, long long min, long long max)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 0);
	if (errno || end == s || *end || v < min || v > max)
		die("bad number '%s'", s);
	return v;
}

static void parse_dev(const char *s, unsigned *maj, unsigned *min)
{
	char *end;
	unsigned long a, b;

	errno = 0;
	a = strtoul(s, &end, 10);
	if (errno || *end != ':')
		die("bad device '%s' (want MAJOR:MINOR)", s);
	b = strtoul(end + 1, &end, 10);
	if (errno || *end || a > 4095 || b > 1048575)
		die("bad device '%s' (want MAJOR:MINOR)", s);
	*maj = (unsigned)a;
	*min = (unsigned)b;
}

/* "MAJOR:MINOR:INODE" as the test passes a host file's identity. */
static void parse_ident(const char *s, dev_t *dev, ino_t *ino)
{
	char copy[64];
	char *last;
	unsigned maj, min;

	if (strlen(s) >= sizeof(copy))
		die("bad identity '%s'", s);
	memcpy(copy, s, strlen(s) + 1);
	last = strrchr(copy, ':');
	if (!last)
		die("bad identity '%s' (want MAJOR:MINOR:INODE)", s);
	*last = '\0';
	parse_dev(copy, &maj, &min);
	*dev = makedev(maj, min);
	*ino = (ino_t)number(last + 1, 1, LLONG_MAX);
}

static struct in_addr address(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		die("bad IPv4 address '%s'", s);
	return a;
}

static ssize_t read_file(const char *path, char *buf, size_t size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t n;

	if (fd < 0)
		return -1;
	while (len + 1 < size && (n = read(fd, buf + len, size - 1 - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	return (ssize_t)len;
}

static void chomp(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
}

/* Bytes as text for the report: printable ASCII kept, the rest as dots. */
static void printable(const unsigned char *data, size_t n, char *out, size_t size)
{
	size_t i;

	for (i = 0; i < n && i + 1 < size; i++)
		out[i] = data[i] >= 0x20 && data[i] < 0x7f ? (char)data[i] : '.';
	out[i] = '\0';
}

static void sleep_ms(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- capabilities, user namespace, seccomp ---- */

static const char *const cap_names[] = {
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
};

/* Docker's default set (moby daemon/pkg/oci/caps/defaults.go): the 14 an instance may keep. */
static const uint64_t docker_caps = 1ull << 0 | 1ull << 1 | 1ull << 3 | 1ull << 4 | 1ull << 5 |
                                    1ull << 6 | 1ull << 7 | 1ull << 8 | 1ull << 10 | 1ull << 13 |
                                    1ull << 18 | 1ull << 27 | 1ull << 29 | 1ull << 31;

/* The value of "Field:" in /proc/self/status, or NULL. */
static const char *status_field(const char *status, const char *field, char *out, size_t size)
{
	size_t n = strlen(field);
	const char *p = status;

	while (p && *p) {
		if (!strncmp(p, field, n) && p[n] == ':') {
			const char *v = p + n + 1, *e;
			while (*v == ' ' || *v == '\t')
				v++;
			e = strchr(v, '\n');
			if (!e)
				e = v + strlen(v);
			if ((size_t)(e - v) >= size)
				return NULL;
			memcpy(out, v, (size_t)(e - v));
			out[e - v] = '\0';
			return out;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

static void cap_list(uint64_t set, char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < 64; i++) {
		if (!(set & (1ull << i)))
			continue;
		int n =
		    i < ARRAY_SIZE(cap_names)
		        ? snprintf(out + len, size - len, "%scap_%s", len ? "," : "", cap_names[i])
		        : snprintf(out + len, size - len, "%scap_%u", len ? "," : "", i);
		if (n < 0 || (size_t)n >= size - len)
			return;
		len += (size_t)n;
	}
}

static void print_status(const char *status)
{
	static const char *const fields[] = {"CapInh", "CapPrm",     "CapEff",  "CapBnd",
	                                     "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters"};
	char v[128], map[512];

	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		if (status_field(status, fields[i], v, sizeof(v)))
			note("%s: %s", fields[i], v);
	if (read_file("/proc/self/uid_map", map, sizeof(map)) >= 0) {
		chomp(map);
		note("uid_map: %s", map);
	}
	if (read_file("/proc/self/gid_map", map, sizeof(map)) >= 0) {
		chomp(map);
		note("gid_map: %s", map);
	}
}

static bool numeric(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* Every process the instance can see: kiln-init, what it started, and this one (which came in
 * through `kiln exec`). fn gets the pid and the process's name; a process gone meanwhile is
 * skipped. */
static void each_process(void (*fn)(const char *pid, const char *comm))
{
	_cleanup_close_ int dfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *procs = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *p;

	if (!procs)
		die("cannot list /proc: %s", strerror(errno));
	steal_fd(&dfd);
	while ((p = readdir(procs))) {
		char path[300], comm[64] = "?";

		if (!numeric(p->d_name))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", p->d_name);
		if (read_file(path, comm, sizeof(comm)) < 0)
			continue;
		chomp(comm);
		fn(p->d_name, comm);
	}
	closedir(procs);
}

static bool proc_status(const char *pid, char *status, size_t size)
{
	char path[300];

	snprintf(path, sizeof(path), "/proc/%s/status", pid);
	return read_file(path, status, size) >= 0;
}

static void caps_of(const char *pid, const char *comm)
{
	static const char *const sets[] = {"CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb"};
	char status[8192], v[64], names[1024];
	bool beyond = false;

	if (!proc_status(pid, status, sizeof(status)))
		return;
	for (size_t i = 0; i < ARRAY_SIZE(sets); i++) {
		if (!status_field(status, sets[i], v, sizeof(v)))
			die("no %s in /proc/%s/status", sets[i], pid);
		uint64_t extra = strtoull(v, NULL, 16) & ~docker_caps;
		if (extra) {
			cap_list(extra, names, sizeof(names));
			say_ok("pid %s (%s): %s holds capabilities beyond Docker's default set: %s",
			       pid, comm, sets[i], names);
			beyond = true;
		}
	}
	if (!beyond && status_field(status, "CapBnd", v, sizeof(v)))
		say_blocked("within Docker's default set", "pid %s (%s): CapBnd %s", pid, comm, v);
}

/* This process's status for the log, then fn on every process the instance has. */
static int status_and_each(void (*fn)(const char *pid, const char *comm))
{
	char status[8192];

	if (read_file("/proc/self/status", status, sizeof(status)) < 0)
		die("cannot read /proc/self/status: %s", strerror(errno));
	print_status(status);
	each_process(fn);
	return verdict();
}

static int cmd_caps(const char *name UNUSED, char **args UNUSED)
{
	return status_and_each(caps_of);
}

/* Root inside must not be root outside: no uid or gid map line may take inside 0 to outside 0. */
static void maps_of(const char *pid, const char *comm)
{
	static const char *const maps[] = {"uid_map", "gid_map"};
	char buf[4096], path[300];

	for (size_t i = 0; i < ARRAY_SIZE(maps); i++) {
		unsigned long in, out, count;
		bool host_root = false;
		char *line = buf, *next;

		snprintf(path, sizeof(path), "/proc/%s/%s", pid, maps[i]);
		if (read_file(path, buf, sizeof(buf)) < 0)
			return;
		for (; *line; line = next) {
			next = strchr(line, '\n');
			next = next ? next + 1 : line + strlen(line);
			if (sscanf(line, "%lu %lu %lu", &in, &out, &count) == 3 && in == 0 &&
			    out == 0)
				host_root = true;
		}
		chomp(buf);
		if (host_root)
			say_ok("pid %s (%s): %s maps root to the host's root (%s)", pid, comm,
			       maps[i], buf);
		else
			say_blocked("root is not the host's root", "pid %s (%s): %s %s", pid, comm,
			            maps[i], buf);
	}
}

static int cmd_userns(const char *name UNUSED, char **args UNUSED)
{
	each_process(maps_of);
	return verdict();
}

static void seccomp_of(const char *pid, const char *comm)
{
	char status[8192], v[64];

	if (!proc_status(pid, status, sizeof(status)))
		return;
	if (!status_field(status, "Seccomp", v, sizeof(v)))
		die("no Seccomp in /proc/%s/status", pid);
	if (strcmp(v, "2"))
		say_ok("pid %s (%s): no seccomp filter (Seccomp: %s)", pid, comm, v);
	else
		say_blocked("a seccomp filter is loaded", "pid %s (%s): Seccomp %s", pid, comm, v);
}

static int cmd_seccomp(const char *name UNUSED, char **args UNUSED)
{
	return status_and_each(seccomp_of);
}

/* ---- /proc and /sys ---- */

static int cmd_sysctl(const char *attempt UNUSED, char **args)
{
	const char *name = args[0];

	char path[256], value[4096];
	_cleanup_close_ int fd = -1;
	ssize_t len, n;

	if (strstr(name, "..") ||
	    snprintf(path, sizeof(path), "/proc/sys/%s", name) >= (int)sizeof(path))
		die("bad sysctl name '%s'", name);
	len = read_file(path, value, sizeof(value));
	if (len < 0)
		die("cannot read %s: %s", path, strerror(errno));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		say_blocked(strerror(errno), "open %s for writing", path);
		return verdict();
	}
	n = write(fd, value, (size_t)len); /* the same value: nothing changes */
	chomp(value);
	if (n < 0)
		say_blocked(strerror(errno), "write %s", path);
	else
		say_ok("wrote %s back (value '%s'): the host's kernel setting is writable", path,
		       value);
	return verdict();
}

static int cmd_sysrq(const char *name UNUSED, char **args UNUSED)
{
	_cleanup_close_ int fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		say_blocked(strerror(errno), "open /proc/sysrq-trigger for writing");
	else
		say_ok("opened /proc/sysrq-trigger for writing (nothing written)");
	return verdict();
}

/* Files runtimes mask: readable, they leak the host's memory, keyrings and timers. */
static int cmd_masked(const char *name UNUSED, char **args UNUSED)
{
	static const char *const paths[] = {
	    "/proc/kcore",       "/proc/keys",          "/proc/timer_list",
	    "/proc/sched_debug", "/proc/latency_stats", "/proc/timer_stats",
	    "/proc/acpi",        "/proc/scsi",          "/sys/firmware"};
	unsigned tried = 0;

	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		struct stat st;
		struct statfs sf;
		_cleanup_close_ int fd = -1;
		char byte;

		if (lstat(paths[i], &st) < 0) {
			note("%s: %s", paths[i], strerror(errno));
			continue;
		}
		tried++;
		fd = open(paths[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			say_blocked(strerror(errno), "read %s", paths[i]);
			continue;
		}
		if (fstat(fd, &st) < 0 || fstatfs(fd, &sf) < 0)
			die("cannot stat %s: %s", paths[i], strerror(errno));
		if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) {
			say_blocked("masked by /dev/null", "read %s", paths[i]);
		} else if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int dup_fd = dup(fd);
			DIR *d = fdopendir(dup_fd);
			unsigned entries = 0;
			struct dirent *e;
			if (!d)
				die("cannot list %s: %s", paths[i], strerror(errno));
			steal_fd(&dup_fd);
			while ((e = readdir(d)))
				entries += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
			closedir(d);
			if (!entries && sf.f_type == TMPFS_MAGIC_)
				say_blocked("masked by an empty tmpfs", "list %s", paths[i]);
			else
				say_ok("listed %s: %u entries, not masked", paths[i], entries);
		} else {
			ssize_t n = read(fd, &byte, 1);
			if (n < 0)
				say_blocked(strerror(errno), "read %s", paths[i]);
			else
				say_ok("opened %s (read %zd byte%s): not masked", paths[i], n,
				       n == 1 ? "" : "s");
		}
	}
	if (!tried)
		die("none of the masked paths exists");
	return verdict();
}

/* /sys must be read-only: uevent_helper, like core_pattern, names a program the host runs. */
static int cmd_sys_write(const char *name UNUSED, char **args UNUSED)
{
	static const char *const paths[] = {
	    "/sys/kernel/uevent_helper", "/sys/kernel/mm/transparent_hugepage/enabled",
	    "/sys/power/state", "/sys/kernel/profiling", "/sys/block"};
	unsigned tried = 0;

	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		struct stat st;
		_cleanup_close_ int fd = -1;

		if (stat(paths[i], &st) < 0)
			continue;
		tried++;
		if (S_ISDIR(st.st_mode)) {
			/* A directory: try to create in it (sysfs refuses files, but not with
			 * EROFS). */
			if (access(paths[i], W_OK) == 0)
				say_ok("%s is writable (access W_OK)", paths[i]);
			else
				say_blocked(strerror(errno), "access %s for writing", paths[i]);
			continue;
		}
		fd = open(paths[i], O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			say_blocked(strerror(errno), "open %s for writing", paths[i]);
		else
			say_ok("opened %s for writing (nothing written)", paths[i]);
	}
	if (!tried)
		die("no /sys file to try");
	return verdict();
}

/* ---- open_by_handle_at ("shocker") ---- */

struct mount_entry {
	char point[PATH_MAX];
	char fstype[64];
	char root[PATH_MAX];
};

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

static size_t read_mounts(struct mount_entry **out)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	struct mount_entry *m = NULL;
	size_t n = 0;
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		die("cannot read /proc/self/mountinfo: %s", strerror(errno));
	while (getline(&line, &cap, f) > 0) {
		char root[PATH_MAX], point[PATH_MAX], fstype[64];
		const char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %4095s %4095s", root, point) != 2 ||
		    sscanf(dash + 3, "%63s", fstype) != 1)
			continue;
		unescape(root);
		unescape(point);
		struct mount_entry *grown = realloc(m, (n + 1) * sizeof(*m));
		if (!grown)
			die("out of memory");
		m = grown;
		snprintf(m[n].point, sizeof(m[n].point), "%s", point);
		snprintf(m[n].root, sizeof(m[n].root), "%s", root);
		snprintf(m[n].fstype, sizeof(m[n].fstype), "%s", fstype);
		n++;
	}
	free(line);
	*out = m;
	return n;
}

/* A few names in the directory fd refers to: what the handle opened. */
static void list_some(int fd, char *out, size_t size)
{
	_cleanup_close_ int dup_fd = dup(fd);
	size_t len = 0;
	struct dirent *e;
	unsigned shown = 0;
	DIR *d;

	out[0] = '\0';
	d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (!d)
		return;
	steal_fd(&dup_fd);
	while ((e = readdir(d)) && shown < 16) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		int n = snprintf(out + len, size - len, "%s%s", shown ? " " : "", e->d_name);
		if (n < 0 || (size_t)n >= size - len)
			break;
		len += (size_t)n;
		shown++;
	}
	closedir(d);
}

static void describe_fd(int fd, char *out, size_t size)
{
	char link[64], target[PATH_MAX], names[1024];
	struct stat st;
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	target[n > 0 ? n : 0] = '\0';
	if (fstat(fd, &st) < 0) {
		snprintf(out, size, "%.200s", target);
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		list_some(fd, names, sizeof(names));
		snprintf(out, size, "directory %u:%u inode %llu (%.200s) holding: %.600s",
		         major(st.st_dev), minor(st.st_dev), (unsigned long long)st.st_ino, target,
		         names);
	} else {
		snprintf(out, size, "file %u:%u inode %llu (%.200s)", major(st.st_dev),
		         minor(st.st_dev), (unsigned long long)st.st_ino, target);
	}
}

/* One open_by_handle_at on the mount m, reported: an fd is an escape. */
static void try_handle(int mfd, struct file_handle *fh, int flags, const struct mount_entry *m,
                       const char *kind)
{
	char what[1024];
	int fd = open_by_handle_at(mfd, fh, flags);

	if (fd < 0) {
		say_blocked(strerror(errno), "open_by_handle_at on %s (%s) with %s", m->point,
		            m->fstype, kind);
		return;
	}
	describe_fd(fd, what, sizeof(what));
	say_ok("open_by_handle_at on %s (%s, mount root %s) with %s opened %s", m->point, m->fstype,
	       m->root, kind, what);
	close(fd);
}

static int cmd_handles(const char *name UNUSED, char **args UNUSED)
{
	struct mount_entry *m;
	size_t n = read_mounts(&m), tried = 0;
	union {
		struct file_handle fh;
		char space[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} own, root;

	for (size_t i = 0; i < n; i++) {
		_cleanup_close_ int mfd = -1;
		int mount_id;
		bool dup_point = false;

		for (size_t k = 0; k < i; k++)
			dup_point |= !strcmp(m[k].point, m[i].point);
		if (dup_point)
			continue;
		own.fh.handle_bytes = MAX_HANDLE_SZ;
		if (name_to_handle_at(AT_FDCWD, m[i].point, &own.fh, &mount_id, 0) < 0) {
			note("%s (%s): no handle: %s", m[i].point, m[i].fstype, strerror(errno));
			continue;
		}
		/* open_by_handle_at wants a real descriptor on the mount, not an O_PATH one. */
		mfd = open(m[i].point, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
		if (mfd < 0) {
			note("%s (%s): cannot open it: %s", m[i].point, m[i].fstype,
			     strerror(errno));
			continue;
		}
		tried++;
		try_handle(mfd, &own.fh, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, &m[i],
		           "its own handle");
		/* The root directory of the filesystem under the mount, whatever part of it is
		 * mounted: ext2/3/4 handles are {inode, generation} (type 1, FILEID_INO32_GEN), the
		 * root is inode 2 and generation 0 matches any. This is shocker's first step. */
		if (strncmp(m[i].fstype, "ext", 3) || own.fh.handle_type != 1)
			continue;
		uint32_t ino_gen[2] = {2, 0};
		root.fh.handle_bytes = sizeof(ino_gen);
		root.fh.handle_type = 1;
		memcpy(root.fh.f_handle, ino_gen, sizeof(ino_gen));
		try_handle(mfd, &root.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC, &m[i],
		           "a forged handle of inode 2");
	}
	free(m);
	if (!tried)
		die("no mount point gave a handle");
	return verdict();
}

/* ---- devices ---- */

/* A new block node for major:minor in the first place that takes one; its path in out. */
static int make_node(unsigned maj, unsigned min, char *out, size_t size)
{
	static const char *const dirs[] = {"/dev", "/tmp", "/run", ""};
	int first = 0;

	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		snprintf(out, size, "%s/.kiln-escape-b-%u-%u", dirs[i], maj, min);
		unlink(out);
		if (mknod(out, S_IFBLK | 0600, makedev(maj, min)) == 0)
			return 0;
		if (!first)
			first = errno;
	}
	errno = first;
	return -1;
}

static void read_block(const char *path, const char *what)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	unsigned char byte;
	ssize_t n;

	if (fd < 0) {
		say_blocked(strerror(errno), "open %s", what);
		return;
	}
	n = pread(fd, &byte, 1, 0);
	if (n < 0)
		say_ok("opened %s (read: %s)", what, strerror(errno));
	else
		say_ok("opened %s and read %zd byte%s", what, n, n == 1 ? "" : "s");
}

static int cmd_mknod(const char *name UNUSED, char **args)
{
	for (int i = 0; args[i]; i++) {
		unsigned maj, min;
		char path[128], what[256];

		parse_dev(args[i], &maj, &min);
		if (make_node(maj, min, path, sizeof(path)) < 0) {
			say_blocked(strerror(errno), "mknod of block device %u:%u", maj, min);
			continue;
		}
		snprintf(what, sizeof(what),
		         "block device %u:%u through a node made with mknod (%s)", maj, min, path);
		read_block(path, what);
		unlink(path);
	}
	return verdict();
}

static unsigned nodes_found;

static int visit_node(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	char what[PATH_MAX + 64];

	(void)type;
	(void)ftw;
	if (!S_ISBLK(st->st_mode))
		return 0;
	nodes_found++;
	snprintf(what, sizeof(what), "block device %u:%u of the image (%s)", major(st->st_rdev),
	         minor(st->st_rdev), path);
	read_block(path, what);
	return 0;
}

/* Block device nodes that came with the image's root filesystem (its mount only). */
static int cmd_blkdevs(const char *name UNUSED, char **args UNUSED)
{
	if (nftw("/", visit_node, 32, FTW_PHYS | FTW_MOUNT) < 0)
		die("cannot walk the root filesystem: %s", strerror(errno));
	if (!nodes_found)
		die("no block device node in the root filesystem");
	return verdict();
}

/* Read the start of a device (a node the test points at); what it holds goes to the report. */
static int cmd_read(const char *name UNUSED, char **args)
{
	const char *dev = args[0];
	_cleanup_close_ int fd = open(dev, O_RDONLY | O_CLOEXEC);
	unsigned char buf[4096];
	char text[160];
	struct stat st;
	ssize_t n;

	if (fd < 0) {
		say_blocked(strerror(errno), "open %s", dev);
		return verdict();
	}
	fstat(fd, &st);
	n = pread(fd, buf, sizeof(buf), 0);
	printable(buf, n > 0 ? (size_t)n : 0, text, sizeof(text));
	say_ok("opened %s (device %u:%u) and read %zd bytes", dev, major(st.st_rdev),
	       minor(st.st_rdev), n);
	note("data: %s", text);
	return verdict();
}

/* Hold a device open, wait for the trigger file, then read through the old descriptor; the
 * result goes to out (the caller runs this in the background). */
static int cmd_hold(const char *name UNUSED, char **args)
{
	const char *dev = args[0], *trigger = args[1], *out = args[2];
	long seconds = (long)number(args[3], 1, 3600);
	_cleanup_close_ int fd = open(dev, O_RDONLY | O_CLOEXEC);
	unsigned char buf[4096];
	char text[160], ready[PATH_MAX];
	double deadline = now() + (double)seconds;
	FILE *f;
	ssize_t n;

	if (!freopen(out, "we", stdout))
		die("cannot write %s: %s", out, strerror(errno));
	snprintf(ready, sizeof(ready), "%s.ready", out);
	if (fd < 0) {
		say_blocked(strerror(errno), "open %s", dev);
	} else {
		note("holding %s open", dev);
	}
	f = fopen(ready, "we");
	if (f)
		fclose(f);
	if (fd < 0)
		return verdict();
	while (access(trigger, F_OK) < 0 && now() < deadline)
		sleep_ms(50);
	n = pread(fd, buf, sizeof(buf), 0);
	if (n <= 0) {
		say_blocked(n < 0 ? strerror(errno) : "end of device",
		            "read through the descriptor held on %s", dev);
	} else {
		printable(buf, (size_t)n, text, sizeof(text));
		say_ok("read %zd bytes through the descriptor held on %s", n, dev);
		note("data: %s", text);
	}
	return verdict();
}

/* ---- mounts ---- */

static void mount_dir(void)
{
	if (mkdir(MOUNT_DIR, 0700) < 0 && errno != EEXIST)
		die("cannot create %s: %s", MOUNT_DIR, strerror(errno));
}

static void undo_mount(void)
{
	umount2(MOUNT_DIR, MNT_DETACH);
}

static int mount_tmpfs(char **args UNUSED)
{
	if (mount("kiln-escape", MOUNT_DIR, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=1m") <
	    0)
		return -1;
	say_ok("mounted a tmpfs on %s", MOUNT_DIR);
	return 0;
}

static int mount_proc(char **args UNUSED)
{
	if (mount("proc", MOUNT_DIR, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return -1;
	say_ok("mounted a new proc on %s, with nothing masked or read-only", MOUNT_DIR);
	return 0;
}

static int mount_bind(char **args UNUSED)
{
	if (mount("/", MOUNT_DIR, NULL, MS_BIND, NULL) < 0)
		return -1;
	say_ok("bind-mounted / on %s", MOUNT_DIR);
	return 0;
}

/* Remount / read-write, with suid and devices, keeping its atime and exec flags; the old flags
 * go back when that worked. Returns 1: nothing to undo at MOUNT_DIR. */
static int mount_remount(char **args UNUSED)
{
	struct statvfs sv;
	unsigned long keep = 0, old = 0;

	if (statvfs("/", &sv) < 0)
		die("cannot stat /: %s", strerror(errno));
	keep |= sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0;
	keep |= sv.f_flag & ST_NOATIME ? MS_NOATIME : 0;
	keep |= sv.f_flag & ST_NODIRATIME ? MS_NODIRATIME : 0;
	keep |= sv.f_flag & ST_RELATIME ? MS_RELATIME : 0;
	old |= sv.f_flag & ST_RDONLY ? MS_RDONLY : 0;
	old |= sv.f_flag & ST_NOSUID ? MS_NOSUID : 0;
	old |= sv.f_flag & ST_NODEV ? MS_NODEV : 0;
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | keep, NULL) < 0)
		return -1;
	say_ok("remounted / read-write with suid and devices (it was%s%s%s)",
	       old & MS_RDONLY ? " ro" : " rw", old & MS_NOSUID ? ",nosuid" : ",suid",
	       old & MS_NODEV ? ",nodev" : ",dev");
	if (old)
		mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | keep | old, NULL);
	return 1;
}

/* A cgroup v1 hierarchy root has release_agent: a program the host runs as root. */
static int mount_cgroup(char **args UNUSED)
{
	static const char *const controllers[] = {"memory", "pids", "cpu", "devices", "freezer"};
	int e = 0;

	for (size_t i = 0; i < ARRAY_SIZE(controllers); i++) {
		if (mount("cgroup", MOUNT_DIR, "cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		          controllers[i]) == 0) {
			say_ok("mounted the cgroup v1 '%s' hierarchy on %s (release_agent %s)",
			       controllers[i], MOUNT_DIR,
			       access(MOUNT_DIR "/release_agent", F_OK) == 0 ? "present"
			                                                     : "absent");
			return 0;
		}
		e = errno;
		if (e == EPERM || e == EACCES)
			return -1;
		note("cgroup v1 '%s': %s", controllers[i], strerror(e));
	}
	say_ok("mount of cgroup v1 hierarchies got past the permission check (%s)", strerror(e));
	return 1;
}

/* The host's filesystem by its device: read-only first; a filesystem the host has mounted
 * read-write answers EBUSY to that, and then a second mount of its live superblock with the
 * host's flags writes nothing either. */
static int mount_hostdev(char **args)
{
	const char *fstype = args[0] && args[1] ? args[1] : "ext4";
	char node[128], names[1024];
	unsigned maj, min;
	bool made = true;
	int r, e;

	if (!args[0])
		die("usage: mount-hostdev MAJOR:MINOR [FSTYPE]");
	parse_dev(args[0], &maj, &min);
	if (make_node(maj, min, node, sizeof(node)) < 0) {
		note("mknod of %u:%u: %s; trying the mount with a missing node", maj, min,
		     strerror(errno));
		snprintf(node, sizeof(node), "/dev/.kiln-escape-no-such-node");
		made = false;
	}
	r = mount(node, MOUNT_DIR, fstype, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	if (r < 0 && errno == EBUSY)
		r = mount(node, MOUNT_DIR, fstype, MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	e = errno;
	if (r == 0) {
		_cleanup_close_ int fd = open(MOUNT_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		list_some(fd, names, sizeof(names));
		say_ok("mounted the host's block device %u:%u (%s) holding: %s", maj, min, fstype,
		       names);
		undo_mount();
	} else if (e != EPERM && e != EACCES) {
		say_ok("mount of the host's block device %u:%u got past the permission check (%s)",
		       maj, min, strerror(e));
		r = 1;
	}
	if (made)
		unlink(node);
	errno = e;
	return r == 0 ? 1 : r;
}

static const struct mount_attempt {
	const char *name; /* after "mount-" */
	int (*fn)(char **args);
	const char *what;
} mount_attempts[] = {
    {"tmpfs", mount_tmpfs, "mount a tmpfs"},
    {"proc", mount_proc, "mount proc elsewhere"},
    {"bind", mount_bind, "bind-mount / elsewhere"},
    {"remount", mount_remount, "remount / read-write with suid and devices"},
    {"cgroup", mount_cgroup, "mount a cgroup v1 hierarchy"},
    {"hostdev", mount_hostdev, "mount the host's block device"},
};

/* Each mount function returns 0 when it mounted on MOUNT_DIR (undone here), 1 when it reported
 * an escape with nothing left to undo, -1 with errno when the kernel refused. */
static int cmd_mount(const char *name, char **args)
{
	const struct mount_attempt *m = NULL;
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(mount_attempts); i++)
		if (!strcmp(name + strlen("mount-"), mount_attempts[i].name))
			m = &mount_attempts[i];
	if (!m)
		die("unknown mount attempt '%s'", name);
	mount_dir();
	r = m->fn(args);
	if (r < 0)
		say_blocked(strerror(errno), "%s", m->what);
	if (r == 0)
		undo_mount();
	rmdir(MOUNT_DIR);
	return verdict();
}

/* ---- kernel calls only the host may make ---- */

static int cmd_syscall(const char *name, char **args UNUSED)
{
	long r;
	int e;

	errno = 0;
	if (!strcmp(name, "init_module")) {
		static const char bogus[16] = "kiln-escape";
		r = syscall(SYS_init_module, bogus, sizeof(bogus), "");
		e = errno;
		judge_eperm(r, e, "init_module of a 16-byte buffer");
	} else if (!strcmp(name, "finit_module")) {
		_cleanup_close_ int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		r = syscall(SYS_finit_module, fd, "", 0);
		e = errno;
		judge_eperm(r, e, "finit_module of /dev/null");
	} else if (!strcmp(name, "kexec_load")) {
		/* Too many segments: refused after the permission check, before anything is loaded.
		 */
		r = syscall(SYS_kexec_load, 0UL, (unsigned long)KEXEC_SEGMENTS_TOO_MANY, NULL, 0UL);
		e = errno;
		judge_eperm(r, e, "kexec_load with 17 segments");
	} else if (!strcmp(name, "reboot")) {
		char before[16] = "";
		read_file("/proc/sys/kernel/ctrl-alt-del", before, sizeof(before));
		r = syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
		            LINUX_REBOOT_CMD_CAD_OFF, NULL);
		e = errno;
		if (r == 0 && before[0] == '1') /* it was on: put it back */
			syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
			        LINUX_REBOOT_CMD_CAD_ON, NULL);
		judge_eperm(r, e, "reboot(LINUX_REBOOT_CMD_CAD_OFF)");
	} else if (!strcmp(name, "keyctl")) {
		r = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
		e = errno;
		judge_eperm(r, e, "keyctl(KEYCTL_GET_KEYRING_ID) on the kernel's keyrings");
	} else if (!strcmp(name, "add_key")) {
		r = syscall(SYS_add_key, "kiln-escape-no-such-type", "kiln", "x", 1,
		            KEY_SPEC_PROCESS_KEYRING);
		e = errno;
		judge_eperm(r, e, "add_key of an unknown key type");
	} else if (!strcmp(name, "bpf")) {
		union bpf_attr a;
		memset(&a, 0, sizeof(a));
		a.map_type = BPF_MAP_TYPE_ARRAY;
		a.key_size = 4;
		a.value_size = 4;
		a.max_entries = 1;
		r = syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof(a));
		e = errno;
		if (r >= 0)
			close((int)r);
		judge_eperm(r, e, "bpf(BPF_MAP_CREATE) of a one-entry array");
	} else if (!strcmp(name, "perf_event_open")) {
		struct perf_event_attr a;
		memset(&a, 0, sizeof(a));
		a.type = PERF_TYPE_SOFTWARE;
		a.size = sizeof(a);
		a.config = PERF_COUNT_SW_TASK_CLOCK;
		a.disabled = 1;
		a.exclude_kernel = 1;
		a.exclude_hv = 1;
		r = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
		e = errno;
		if (r >= 0)
			close((int)r);
		judge_eperm(r, e, "perf_event_open of a task clock on itself");
	} else if (!strcmp(name, "unshare")) {
		/* New namespaces (a user namespace first) reach kernel code the instance should
		 * not. */
		int status;
		pid_t pid = fork();
		if (pid < 0)
			die("cannot fork: %s", strerror(errno));
		if (pid == 0)
			_exit(unshare(CLONE_NEWUSER) == 0 ? 0 : errno);
		waitpid(pid, &status, 0);
		r = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
		e = WIFEXITED(status) ? WEXITSTATUS(status) : EINTR;
		judge_eperm(r, e, "unshare(CLONE_NEWUSER)");
	} else {
		die("unknown syscall attempt '%s'", name);
	}
	return verdict();
}

/* ---- processes outside ---- */

static int cmd_ptrace(const char *name UNUSED, char **args)
{
	pid_t pid = (pid_t)number(args[0], 1, INT_MAX);
	const char *comm = args[1];
	char path[64], seen[64] = "";
	int e;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if (read_file(path, seen, sizeof(seen)) >= 0)
		chomp(seen);
	/* A pid that is some process of the instance's own is not the host's. */
	bool same = !strcmp(seen, comm);
	if (seen[0] && !same)
		note("pid %d inside is '%s', not '%s'", (int)pid, seen, comm);

	if (kill(pid, 0) == 0) {
		if (same || !seen[0])
			say_ok("kill(%d, 0) reached the host's process '%s'", (int)pid, comm);
		else
			say_blocked("that pid is one of the instance's own processes",
			            "kill(%d, 0)", (int)pid);
	} else {
		say_blocked(strerror(errno), "kill(%d, 0)", (int)pid);
	}
	if (seen[0] && !same) {
		say_blocked("that pid is one of the instance's own processes",
		            "ptrace(PTRACE_ATTACH, %d)", (int)pid);
		return verdict();
	}
	if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) == 0) {
		int status;
		waitpid(pid, &status, __WALL);
		ptrace(PTRACE_DETACH, pid, NULL, NULL);
		say_ok(
		    "ptrace(PTRACE_ATTACH) attached to the host's process %d '%s' (detached again)",
		    (int)pid, comm);
	} else {
		e = errno;
		say_blocked(strerror(e), "ptrace(PTRACE_ATTACH, %d)", (int)pid);
	}
	return verdict();
}

/* /proc/1/exe and /proc/1/root: the host's kiln-init and the host's root must not be behind them.
 */
static int cmd_init_exe(const char *name UNUSED, char **args)
{
	const char *ident = args[0], *host_path = args[1];
	char target[PATH_MAX];
	struct stat st;
	dev_t dev;
	ino_t ino;
	ssize_t n;
	int fd;

	parse_ident(ident, &dev, &ino);
	n = readlink("/proc/1/exe", target, sizeof(target) - 1);
	if (n < 0)
		die("cannot read /proc/1/exe: %s", strerror(errno));
	target[n] = '\0';
	note("/proc/1/exe -> %s", target);
	if (host_path && !strcmp(target, host_path))
		say_ok("/proc/1/exe names the host's path %s", host_path);
	else
		say_blocked("a path of the instance", "/proc/1/exe names %s", target);
	if (stat("/proc/1/exe", &st) < 0)
		die("cannot stat /proc/1/exe: %s", strerror(errno));
	if (st.st_dev == dev && st.st_ino == ino)
		say_ok("/proc/1/exe is the host's kiln-init file itself (device %u:%u inode %llu)",
		       major(dev), minor(dev), (unsigned long long)ino);
	else
		say_blocked("not the host's file", "/proc/1/exe is device %u:%u inode %llu",
		            major(st.st_dev), minor(st.st_dev), (unsigned long long)st.st_ino);
	fd = open("/proc/1/exe", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		say_ok("opened /proc/1/exe for writing (nothing written)");
	} else {
		say_blocked(strerror(errno), "open /proc/1/exe for writing");
	}
	return verdict();
}

static int cmd_init_root(const char *name UNUSED, char **args)
{
	const char *ident = args[0];
	static const char *const roots[] = {"/proc/1/root/", "/"};
	char names[1024];
	struct stat st;
	dev_t dev;
	ino_t ino;

	parse_ident(ident, &dev, &ino);
	for (size_t i = 0; i < ARRAY_SIZE(roots); i++) {
		if (stat(roots[i], &st) < 0)
			die("cannot stat %s: %s", roots[i], strerror(errno));
		if (st.st_dev == dev && st.st_ino == ino) {
			_cleanup_close_ int fd = open(roots[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			list_some(fd, names, sizeof(names));
			say_ok("%s is the host's root directory (holding: %s)", roots[i], names);
		} else {
			say_blocked("the instance's own root", "%s is device %u:%u inode %llu",
			            roots[i], major(st.st_dev), minor(st.st_dev),
			            (unsigned long long)st.st_ino);
		}
	}
	return verdict();
}

/* Descriptors of any process inside that lead to a file or directory the instance cannot name
 * itself: a host object leaked in (CVE-2024-21626 was a host directory descriptor). */
static int cmd_fds(const char *name UNUSED, char **args UNUSED)
{
	_cleanup_close_ int dfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *procs = dfd >= 0 ? fdopendir(dfd) : NULL;
	unsigned looked = 0;
	struct dirent *p;

	if (!procs)
		die("cannot list /proc: %s", strerror(errno));
	steal_fd(&dfd);
	while ((p = readdir(procs))) {
		char dir[300], comm[64] = "?", path[300];
		_cleanup_close_ int ffd = -1;
		struct dirent *f;
		DIR *fds;

		if (!numeric(p->d_name))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", p->d_name);
		if (read_file(path, comm, sizeof(comm)) >= 0)
			chomp(comm);
		snprintf(dir, sizeof(dir), "/proc/%s/fd", p->d_name);
		ffd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		fds = ffd >= 0 ? fdopendir(ffd) : NULL;
		if (!fds)
			continue;
		steal_fd(&ffd);
		while ((f = readdir(fds))) {
			char link[600], target[PATH_MAX];
			struct stat obj, named;
			ssize_t n;

			if (!numeric(f->d_name))
				continue;
			snprintf(link, sizeof(link), "%s/%s", dir, f->d_name);
			if (stat(link, &obj) < 0 ||
			    !(S_ISDIR(obj.st_mode) || S_ISREG(obj.st_mode) || S_ISBLK(obj.st_mode)))
				continue;
			n = readlink(link, target, sizeof(target) - 1);
			if (n < 0)
				continue;
			target[n] = '\0';
			looked++;
			if (target[0] != '/' || strstr(target, " (deleted)") ||
			    !strncmp(target, "/memfd:", 7))
				continue;
			if (stat(target, &named) == 0 && named.st_dev == obj.st_dev &&
			    named.st_ino == obj.st_ino)
				continue;
			say_ok("pid %s (%s) holds descriptor %s on %s %s, which is not that object "
			       "inside the instance",
			       p->d_name, comm, f->d_name,
			       S_ISDIR(obj.st_mode) ? "directory" : "file", target);
		}
		closedir(fds);
	}
	closedir(procs);
	if (!escaped)
		say_blocked(
		    "every file and directory descriptor leads to an object of the instance",
		    "host descriptors in the instance's processes (%u looked at)", looked);
	return verdict();
}

/* ---- limits ---- */

/* Fork until the kernel says no (children sleep until the end, then all exit). Blocked when a
 * pids limit said EAGAIN below the cap. */
static int cmd_forkbomb(const char *name UNUSED, char **args)
{
	long cap = (long)number(args[0], 1, 1000000);
	int gate[2], e = 0;
	long n;

	if (pipe2(gate, O_CLOEXEC) < 0)
		die("cannot make a pipe: %s", strerror(errno));
	for (n = 0; n < cap; n++) {
		pid_t pid = fork();
		if (pid < 0) {
			e = errno;
			break;
		}
		if (pid == 0) {
			char b;
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(gate[1]);
			alarm(120);
			while (read(gate[0], &b, 1) < 0 && errno == EINTR)
				;
			_exit(0);
		}
	}
	close(gate[1]); /* every child reads end of file and exits */
	while (wait(NULL) > 0 || errno == EINTR)
		;
	if (n >= cap)
		say_ok("fork bomb reached the cap of %ld processes: no pids limit stopped it", cap);
	else if (e == EAGAIN)
		say_blocked(strerror(e), "fork bomb stopped after %ld processes (the cap was %ld)",
		            n, cap);
	else
		say_ok("fork bomb stopped after %ld processes, but not by a pids limit: %s", n,
		       strerror(e));
	return verdict();
}

/* malloc and touch MiB in a child; blocked when the child dies of SIGKILL (the OOM killer) or
 * cannot get the memory. */
static int cmd_alloc(const char *name UNUSED, char **args)
{
	long mib = (long)number(args[0], 1, 1 << 20);
	volatile long *touched =
	    mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int status;
	pid_t pid;

	if (touched == MAP_FAILED)
		die("cannot map a counter: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		die("cannot fork: %s", strerror(errno));
	if (pid == 0) {
		size_t size = (size_t)mib << 20;
		char *m = malloc(size);
		if (!m)
			_exit(3);
		for (size_t off = 0; off < size; off += 4096) {
			m[off] = 1;
			if ((off & ((1u << 20) - 1)) == 0)
				*touched = (long)(off >> 20);
		}
		*touched = mib;
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("cannot wait: %s", strerror(errno));
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		say_blocked("killed by SIGKILL (the OOM killer)",
		            "allocating %ld MiB (stopped after %ld MiB)", mib, *touched);
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
		say_blocked("malloc failed", "allocating %ld MiB", mib);
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		say_ok("allocated and touched %ld MiB", mib);
	else
		say_ok("allocating %ld MiB ended otherwise (status %#x after %ld MiB)", mib, status,
		       *touched);
	return verdict();
}

/* ---- network ---- */

/* Print what reaches PORT (TCP connections and UDP datagrams) for SECONDS; a helper, not an
 * attempt. */
static int cmd_listen(const char *name UNUSED, char **args)
{
	int port = (int)number(args[0], 1, 65535);
	long seconds = (long)number(args[1], 1, 3600);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int one = 1, t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0),
	    u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	double deadline = now() + (double)seconds;

	if (t < 0 || u < 0)
		die("cannot make sockets: %s", strerror(errno));
	setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(t, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(t, 16) < 0 ||
	    bind(u, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("cannot listen on port %d: %s", port, strerror(errno));
	printf("listening %d\n", port);
	fflush(stdout);
	while (now() < deadline) {
		struct pollfd p[2] = {{.fd = t, .events = POLLIN}, {.fd = u, .events = POLLIN}};
		struct sockaddr_in from;
		socklen_t len = sizeof(from);
		char buf[512], src[INET_ADDRSTRLEN], text[512];

		if (poll(p, 2, 200) <= 0)
			continue;
		if (p[0].revents & POLLIN) {
			int c = accept4(t, (struct sockaddr *)&from, &len, SOCK_CLOEXEC);
			if (c >= 0) {
				ssize_t n = recv(c, buf, sizeof(buf), MSG_DONTWAIT);
				printable((unsigned char *)buf, n > 0 ? (size_t)n : 0, text,
				          sizeof(text));
				printf("tcp %s %s\n",
				       inet_ntop(AF_INET, &from.sin_addr, src, sizeof(src)), text);
				close(c);
			}
		}
		len = sizeof(from);
		if (p[1].revents & POLLIN) {
			ssize_t n =
			    recvfrom(u, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len);
			if (n >= 0) {
				printable((unsigned char *)buf, (size_t)n, text, sizeof(text));
				printf("udp %s %s\n",
				       inet_ntop(AF_INET, &from.sin_addr, src, sizeof(src)), text);
			}
		}
		fflush(stdout);
	}
	return 0;
}

/* An ordinary datagram from the instance's own address; a helper and the control of the spoof
 * tests. */
static int cmd_send_udp(const char *name UNUSED, char **args)
{
	const char *ip = args[0], *tag = args[2];
	int port = (int)number(args[1], 1, 65535);
	struct sockaddr_in a = {
	    .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = address(ip)};
	_cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0 || sendto(s, tag, strlen(tag), 0, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("cannot send to %s:%d: %s", ip, port, strerror(errno));
	printf("sent %s:%d %s\n", ip, port, tag);
	return 0;
}

static uint16_t ip_checksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* An IPv4 header and a UDP datagram (checksum 0: none, allowed in IPv4) from src to dst. */
static size_t build_udp(uint8_t *out, size_t size, struct in_addr src, struct in_addr dst, int port,
                        const char *tag)
{
	size_t payload = strlen(tag),
	       total = sizeof(struct iphdr) + sizeof(struct udphdr) + payload;
	struct iphdr ip = {0};
	struct udphdr udp = {0};

	if (total > size)
		die("tag too long");
	ip.version = 4;
	ip.ihl = 5;
	ip.ttl = 64;
	ip.protocol = IPPROTO_UDP;
	ip.tot_len = htons((uint16_t)total);
	ip.id = htons(0x6b69);
	ip.saddr = src.s_addr;
	ip.daddr = dst.s_addr;
	ip.check = ip_checksum(&ip, sizeof(ip));
	udp.source = htons(40404);
	udp.dest = htons((uint16_t)port);
	udp.len = htons((uint16_t)(sizeof(udp) + payload));
	memcpy(out, &ip, sizeof(ip));
	memcpy(out + sizeof(ip), &udp, sizeof(udp));
	memcpy(out + sizeof(ip) + sizeof(udp), tag, payload);
	return total;
}

static int cmd_spoof_raw(const char *name UNUSED, char **args)
{
	const char *dst_s = args[0], *src_s = args[2], *tag = args[3];
	int port = (int)number(args[1], 1, 65535);
	struct in_addr dst = address(dst_s), src = address(src_s);
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = dst};
	_cleanup_close_ int s = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	uint8_t pkt[512];
	size_t len;

	if (s < 0) {
		say_blocked(strerror(errno), "raw IPv4 socket (SOCK_RAW, IPPROTO_RAW)");
		return verdict();
	}
	len = build_udp(pkt, sizeof(pkt), src, dst, port, tag);
	if (sendto(s, pkt, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		say_blocked(strerror(errno), "send a datagram from %s through a raw socket", src_s);
	else
		say_ok("sent a datagram from %s to %s:%d through a raw IPv4 socket (the listener "
		       "decides)",
		       src_s, dst_s, port);
	return verdict();
}

/* The interface and next hop toward dst, from /proc/net/route. */
static void route_to(struct in_addr dst, char *ifname, size_t size, struct in_addr *hop)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/net/route", "re");
	char line[512], name[IFNAMSIZ];
	unsigned long d, g, flags, mask;
	int best = -1;

	if (!f)
		die("cannot read /proc/net/route: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%15s %lx %lx %lx %*d %*d %*d %lx", name, &d, &g, &flags, &mask) !=
		        5 ||
		    !(flags & 1))
			continue;
		if ((dst.s_addr & mask) != d)
			continue;
		int bits = __builtin_popcountl(mask);
		if (bits > best) {
			best = bits;
			snprintf(ifname, size, "%s", name);
			hop->s_addr = (flags & 2) ? (in_addr_t)g : dst.s_addr;
		}
	}
	if (best < 0)
		die("no route to %s", inet_ntoa(dst));
}

/* The hardware address of hop from /proc/net/arp (the caller made the kernel resolve it). */
static bool neighbour(struct in_addr hop, uint8_t mac[6])
{
	_cleanup_fclose_ FILE *f = fopen("/proc/net/arp", "re");
	char line[512], ip[64], hw[64];
	unsigned flags;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		struct in_addr a;
		unsigned m[6];
		if (sscanf(line, "%63s %*s %x %63s", ip, &flags, hw) != 3 ||
		    inet_pton(AF_INET, ip, &a) != 1 || a.s_addr != hop.s_addr || !(flags & 2))
			continue;
		if (sscanf(hw, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
			continue;
		for (int i = 0; i < 6; i++)
			mac[i] = (uint8_t)m[i];
		return true;
	}
	return false;
}

/* A whole Ethernet frame with a made-up source MAC and a foreign source address. */
static int cmd_spoof_packet(const char *name UNUSED, char **args)
{
	const char *dst_s = args[0], *src_s = args[2], *tag = args[3];
	int port = (int)number(args[1], 1, 65535);
	static const uint8_t fake_mac[6] = {0x02, 0x6b, 0x69,
	                                    0x6c, 0x6e, 0x65}; /* locally administered */
	struct in_addr dst = address(dst_s), src = address(src_s), hop;
	char ifname[IFNAMSIZ];
	uint8_t frame[600], mac[6];
	struct sockaddr_ll to = {0};
	_cleanup_close_ int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_IP));
	size_t len;

	if (s < 0) {
		say_blocked(strerror(errno), "packet socket (AF_PACKET, SOCK_RAW)");
		return verdict();
	}
	route_to(dst, ifname, sizeof(ifname), &hop);
	/* Make the kernel resolve the next hop with an ordinary datagram (the listener sees it
	 * with the instance's true address). */
	for (int i = 0; i < 20 && !neighbour(hop, mac); i++) {
		if (i % 5 == 0) {
			struct sockaddr_in a = {.sin_family = AF_INET,
			                        .sin_port = htons((uint16_t)port),
			                        .sin_addr = dst};
			_cleanup_close_ int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			sendto(u, "kiln-escape-arp", 15, 0, (struct sockaddr *)&a, sizeof(a));
		}
		sleep_ms(50);
	}
	if (!neighbour(hop, mac))
		die("the next hop toward %s has no hardware address", dst_s);
	memcpy(frame, mac, 6);
	memcpy(frame + 6, fake_mac, 6);
	frame[12] = ETH_P_IP >> 8;
	frame[13] = ETH_P_IP & 0xff;
	len = 14 + build_udp(frame + 14, sizeof(frame) - 14, src, dst, port, tag);
	to.sll_family = AF_PACKET;
	to.sll_protocol = htons(ETH_P_IP);
	to.sll_ifindex = (int)if_nametoindex(ifname);
	to.sll_halen = 6;
	memcpy(to.sll_addr, mac, 6);
	if (!to.sll_ifindex)
		die("no interface '%s'", ifname);
	if (sendto(s, frame, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		say_blocked(strerror(errno), "send a frame from %s (MAC 02:6b:69:6c:6e:65) on %s",
		            src_s, ifname);
	else
		say_ok("sent a frame from %s with MAC 02:6b:69:6c:6e:65 to %s:%d on %s (the "
		       "listener decides)",
		       src_s, dst_s, port, ifname);
	return verdict();
}

/* TCP connections to PORT at every address at once; blocked when none connects within the
 * timeout. */
static int cmd_connect(const char *name UNUSED, char **args)
{
	int port = (int)number(args[0], 1, 65535);
	long timeout_ms = (long)number(args[1], 1, 60000);
	char **argv = args + 2;
	double deadline = now() + (double)timeout_ms / 1000.0;
	struct pollfd p[64];
	int n = 0;

	while (argv[n] && n < 64)
		n++;

	for (int i = 0; i < n; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET,
		                        .sin_port = htons((uint16_t)port),
		                        .sin_addr = address(argv[i])};
		p[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		p[i].events = POLLOUT;
		p[i].revents = 0;
		if (p[i].fd < 0)
			die("cannot make a socket: %s", strerror(errno));
		if (connect(p[i].fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
			say_ok("connected to %s:%d", argv[i], port);
			close(p[i].fd);
			p[i].fd = -1;
		} else if (errno != EINPROGRESS) {
			say_blocked(strerror(errno), "connect to %s:%d", argv[i], port);
			close(p[i].fd);
			p[i].fd = -1;
		}
	}
	for (;;) {
		int waiting = 0;
		for (int i = 0; i < n; i++)
			waiting += p[i].fd >= 0;
		long left = (long)((deadline - now()) * 1000.0);
		if (!waiting || left <= 0)
			break;
		if (poll(p, (nfds_t)n, (int)left) <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			int err = 0;
			socklen_t len = sizeof(err);
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			getsockopt(p[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
			if (err)
				say_blocked(strerror(err), "connect to %s:%d", argv[i], port);
			else
				say_ok("connected to %s:%d", argv[i], port);
			close(p[i].fd);
			p[i].fd = -1;
		}
	}
	for (int i = 0; i < n; i++)
		if (p[i].fd >= 0) {
			say_blocked(strerror(ETIMEDOUT), "connect to %s:%d", argv[i], port);
			close(p[i].fd);
		}
	return verdict();
}

/* ---- the table ---- */

static const char usage[] =
    "usage: kiln-escape-probe ATTEMPT [ARG...]\n"
    "  caps | userns | seccomp                 what confines this process\n"
    "  sysctl NAME                             write /proc/sys/NAME back unchanged\n"
    "  sysrq | masked | sys-write              /proc/sysrq-trigger, masked /proc files, /sys\n"
    "  handles                                 open_by_handle_at on every mount point\n"
    "  mknod MAJ:MIN...                        make a block node and read a byte\n"
    "  blkdevs                                 open the image's own block device nodes\n"
    "  read DEV | hold DEV TRIGGER OUT SECONDS  read a device now, or later through an old fd\n"
    "  mount-tmpfs|-proc|-bind|-remount|-cgroup | mount-hostdev MAJ:MIN [FSTYPE]\n"
    "  init_module|finit_module|kexec_load|reboot|keyctl|add_key|bpf|perf_event_open|unshare\n"
    "  ptrace PID COMM                         reach a host process\n"
    "  init-exe MAJ:MIN:INO [HOSTPATH] | init-root MAJ:MIN:INO | fds\n"
    "  forkbomb CAP | alloc MIB                instance-type limits\n"
    "  listen PORT SECONDS | send-udp IP PORT TAG | connect PORT TIMEOUT_MS IP...\n"
    "  spoof-raw IP PORT SRC TAG | spoof-packet IP PORT SRC TAG\n";

static const struct attempt {
	const char *name;
	int args; /* at least this many */
	int (*fn)(const char *name, char **args);
} attempts[] = {
    {"caps", 0, cmd_caps},
    {"userns", 0, cmd_userns},
    {"seccomp", 0, cmd_seccomp},
    {"sysctl", 1, cmd_sysctl},
    {"sysrq", 0, cmd_sysrq},
    {"masked", 0, cmd_masked},
    {"sys-write", 0, cmd_sys_write},
    {"handles", 0, cmd_handles},
    {"mknod", 1, cmd_mknod},
    {"blkdevs", 0, cmd_blkdevs},
    {"read", 1, cmd_read},
    {"hold", 4, cmd_hold},
    {"mount-tmpfs", 0, cmd_mount},
    {"mount-proc", 0, cmd_mount},
    {"mount-bind", 0, cmd_mount},
    {"mount-remount", 0, cmd_mount},
    {"mount-cgroup", 0, cmd_mount},
    {"mount-hostdev", 1, cmd_mount},
    {"init_module", 0, cmd_syscall},
    {"finit_module", 0, cmd_syscall},
    {"kexec_load", 0, cmd_syscall},
    {"reboot", 0, cmd_syscall},
    {"keyctl", 0, cmd_syscall},
    {"add_key", 0, cmd_syscall},
    {"bpf", 0, cmd_syscall},
    {"perf_event_open", 0, cmd_syscall},
    {"unshare", 0, cmd_syscall},
    {"ptrace", 2, cmd_ptrace},
    {"init-exe", 1, cmd_init_exe},
    {"init-root", 1, cmd_init_root},
    {"fds", 0, cmd_fds},
    {"forkbomb", 1, cmd_forkbomb},
    {"alloc", 1, cmd_alloc},
    {"listen", 2, cmd_listen},
    {"send-udp", 3, cmd_send_udp},
    {"connect", 3, cmd_connect},
    {"spoof-raw", 4, cmd_spoof_raw},
    {"spoof-packet", 4, cmd_spoof_packet},
};

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; argc > 1 && i < ARRAY_SIZE(attempts); i++)
		if (!strcmp(argv[1], attempts[i].name)) {
			if (argc - 2 < attempts[i].args)
				break;
			return attempts[i].fn(argv[1], argv + 2);
		}
	fputs(usage, stderr);
	return 2;
}
