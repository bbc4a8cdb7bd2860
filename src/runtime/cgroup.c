/* cgroup v1 and v2 drivers. v1 keeps one directory per controller (cpu, memory, pids, devices);
 * v2 one directory with the controllers enabled from the parent's subtree_control. The device
 * allow-list exists on v1 only (v2 would need a BPF program: not done yet). */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/fs.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

static const char *const v1_controllers[] = {"cpu", "memory", "pids", "devices"};

/* Where the v2 hierarchy is mounted with controllers, or NULL when the host uses v1. */
static const char *v2_root(void)
{
	static const char *const candidates[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};

	for (size_t i = 0; i < ARRAY_SIZE(candidates); i++) {
		char path[128], buf[256];
		ssize_t n;
		int fd;

		snprintf(path, sizeof(path), "%s/cgroup.controllers", candidates[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		buf[n > 0 ? n : 0] = '\0';
		if (strstr(buf, "memory") && strstr(buf, "cpu"))
			return candidates[i];
	}
	return NULL;
}

/* True when the comma-separated list names controller. */
static bool has_controller(const char *list, const char *controller)
{
	size_t want = strlen(controller);

	for (const char *c = list; *c;) {
		const char *end = strchr(c, ',');
		size_t len = end ? (size_t)(end - c) : strlen(c);
		if (len == want && !strncmp(c, controller, len))
			return true;
		if (!end)
			break;
		c = end + 1;
	}
	return false;
}

/* Our own cgroup path in a hierarchy: the v1 controller's line, or "0::" for v2. */
static int own_path(const char *controller, char *out, size_t size)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
	char line[4096];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *ctrls = strchr(line, ':'), *path;
		if (!ctrls)
			continue;
		ctrls++;
		path = strchr(ctrls, ':');
		if (!path)
			continue;
		*path++ = '\0';
		path[strcspn(path, "\n")] = '\0';
		if (controller ? has_controller(ctrls, controller) : *ctrls == '\0') {
			str_copy(out, strcmp(path, "/") ? path : "", size);
			return 0;
		}
	}
	return -1;
}

int cgroup_paths(const char *name, char paths[][4096], int max)
{
	const char *v2 = v2_root();
	char own[2048];
	int n = 0;

	if (v2) {
		if (max < 1 || own_path(NULL, own, sizeof(own)) < 0)
			return 0;
		snprintf(paths[0], 4096, "%s%s/%s", v2, own, name);
		return 1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(v1_controllers) && n < max; i++) {
		if (own_path(v1_controllers[i], own, sizeof(own)) < 0)
			continue;
		snprintf(paths[n++], 4096, "/sys/fs/cgroup/%s%s/%s", v1_controllers[i], own, name);
	}
	return n;
}

static int write_value(const char *dir, const char *file, const char *value, struct kerr **err)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", dir, file);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return kerr_errno(err, errno, "cannot open '%s'", path);
	if (fs_write_full(fd, value, strlen(value)) < 0)
		return kerr_errno(err, errno, "cannot write '%s' to '%s'", value, path);
	return 0;
}

/* /dev/null, zero, full, random, urandom, tty, ptmx and the pseudo terminals. */
static const char *const default_devices[] = {
    "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",
    "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm",
};

static int apply_v1(const char *dir, const char *controller, const struct cgroup_limits *l,
                    struct kerr **err)
{
	char v[64];

	if (!strcmp(controller, "cpu") && l->vcpus) {
		char shares[32];
		snprintf(v, sizeof(v), "%u", l->vcpus * 100000u);
		snprintf(shares, sizeof(shares), "%u", l->vcpus * 1024u);
		if (write_value(dir, "cpu.cfs_period_us", "100000", err) < 0 ||
		    write_value(dir, "cpu.cfs_quota_us", v, err) < 0 ||
		    write_value(dir, "cpu.shares", shares, err) < 0)
			return -1;
	}
	if (!strcmp(controller, "devices")) {
		/* Nothing but the nodes of the instance's own /dev; volumes are added one by one.
		 */
		if (write_value(dir, "devices.deny", "a", err) < 0)
			return -1;
		for (size_t i = 0; i < ARRAY_SIZE(default_devices); i++)
			if (write_value(dir, "devices.allow", default_devices[i], err) < 0)
				return -1;
	}
	if (!strcmp(controller, "memory") && l->memory_bytes) {
		snprintf(v, sizeof(v), "%" PRIu64, l->memory_bytes);
		if (write_value(dir, "memory.limit_in_bytes", v, err) < 0)
			return -1;
		/* With swap accounting, swap counts against the same limit. */
		_cleanup_free_ char *memsw = xasprintf("%s/memory.memsw.limit_in_bytes", dir);
		if (access(memsw, F_OK) == 0 &&
		    write_value(dir, "memory.memsw.limit_in_bytes", v, err) < 0)
			return -1;
	}
	if (!strcmp(controller, "pids") && l->pids_max) {
		snprintf(v, sizeof(v), "%" PRIu64, l->pids_max);
		if (write_value(dir, "pids.max", v, err) < 0)
			return -1;
	}
	return 0;
}

static int apply_v2(const char *dir, const struct cgroup_limits *l, struct kerr **err)
{
	char v[64];

	if (l->vcpus) {
		char weight[32];
		snprintf(v, sizeof(v), "%u 100000", l->vcpus * 100000u);
		snprintf(weight, sizeof(weight), "%u", l->vcpus * 100u);
		if (write_value(dir, "cpu.max", v, err) < 0 ||
		    write_value(dir, "cpu.weight", weight, err) < 0)
			return -1;
	}
	if (l->memory_bytes) {
		snprintf(v, sizeof(v), "%" PRIu64, l->memory_bytes);
		if (write_value(dir, "memory.max", v, err) < 0 ||
		    write_value(dir, "memory.swap.max", "0", NULL))
			return -1;
	}
	if (l->pids_max) {
		snprintf(v, sizeof(v), "%" PRIu64, l->pids_max);
		if (write_value(dir, "pids.max", v, err) < 0)
			return -1;
	}
	return 0;
}

int cgroup_create(const char *name, const struct cgroup_limits *l, struct kerr **err)
{
	char paths[ARRAY_SIZE(v1_controllers)][4096];
	int n = cgroup_paths(name, paths, (int)ARRAY_SIZE(v1_controllers));
	const char *v2 = v2_root();

	if (n == 0)
		return kerr_set(err, KERR_IO, "cannot find this process's cgroups");
	for (int i = 0; i < n; i++) {
		if (v2) {
			/* Enable the controllers on every level from our own cgroup down. */
			char own[2048], level[4096];
			own_path(NULL, own, sizeof(own));
			snprintf(level, sizeof(level), "%s%s", v2, own);
			for (const char *p = name;;) {
				write_value(level, "cgroup.subtree_control", "+cpu +memory +pids",
				            NULL);
				const char *slash = strchr(p, '/');
				size_t len = slash ? (size_t)(slash - p) : strlen(p);
				size_t at = strlen(level);
				snprintf(level + at, sizeof(level) - at, "/%.*s", (int)len, p);
				if (mkdir(level, 0755) < 0 && errno != EEXIST)
					return kerr_errno(err, errno, "cannot create cgroup '%s'",
					                  level);
				if (!slash)
					break;
				p = slash + 1;
			}
		} else if (fs_mkdir_p(paths[i], 0755, err) < 0) {
			return -1;
		}
		if (v2 ? apply_v2(paths[i], l, err) : apply_v1(paths[i], v1_controllers[i], l, err))
			return kerr_wrap(err, "cannot set the limits of cgroup '%s'", name);
	}
	return 0;
}

int cgroup_attach(const char *name, pid_t pid, struct kerr **err)
{
	char paths[ARRAY_SIZE(v1_controllers)][4096];
	int n = cgroup_paths(name, paths, (int)ARRAY_SIZE(v1_controllers));
	char v[32];

	snprintf(v, sizeof(v), "%d", (int)pid);
	for (int i = 0; i < n; i++)
		if (write_value(paths[i], "cgroup.procs", v, err) < 0)
			return -1;
	return 0;
}

int cgroup_device(const char *name, char type, unsigned major, unsigned minor, bool allow,
                  struct kerr **err)
{
	char paths[ARRAY_SIZE(v1_controllers)][4096];
	int n = cgroup_paths(name, paths, (int)ARRAY_SIZE(v1_controllers));
	char rule[64];

	if (v2_root())
		return 0; /* no device controller to write to (see the top of this file) */
	snprintf(rule, sizeof(rule), "%c %u:%u rw", type, major, minor);
	for (int i = 0; i < n; i++)
		if (strstr(paths[i], "/sys/fs/cgroup/devices/") == paths[i])
			return write_value(paths[i], allow ? "devices.allow" : "devices.deny", rule,
			                   err);
	return kerr_set(err, KERR_IO, "no devices cgroup for '%s'", name);
}

/* Kill every process left in dir and wait (briefly) until it is empty. */
static void drain(const char *dir)
{
	for (int round = 0; round < 200; round++) {
		_cleanup_free_ char *procs = xasprintf("%s/cgroup.procs", dir);
		_cleanup_fclose_ FILE *f = fopen(procs, "re");
		bool any = false;
		long pid;

		if (!f)
			return;
		while (fscanf(f, "%ld", &pid) == 1) {
			kill((pid_t)pid, SIGKILL);
			any = true;
		}
		if (!any)
			return;
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
}

int cgroup_remove(const char *name, struct kerr **err)
{
	char paths[ARRAY_SIZE(v1_controllers)][4096];
	int n = cgroup_paths(name, paths, (int)ARRAY_SIZE(v1_controllers));
	int r = 0;

	for (int i = 0; i < n; i++) {
		drain(paths[i]);
		for (int tries = 0; rmdir(paths[i]) < 0; tries++) {
			if (errno == ENOENT)
				break;
			if (errno != EBUSY || tries >= 100) {
				r = kerr_errno(err, errno, "cannot remove cgroup '%s'", paths[i]);
				break;
			}
			nanosleep(&(struct timespec){0, 10000000}, NULL);
		}
	}
	return r;
}
