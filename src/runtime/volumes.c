/* Data volumes of an instance: block devices in its /dev. The daemon writes the set it wants
 * (<dir>/volumes, "xvdf=/path/of/vol.img" lines); the shim attaches each file to a loop device
 * that it holds open (autoclear: the device goes when the shim and every user inside have
 * closed it), creates /dev/<name> inside the instance, and says what it did in <dir>/attached
 * ("xvdf=/dev/loop7" or "xvdf=error: why"). A running shim rereads the set on SIGUSR1. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "runtime.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/kv.h"
#include "util/loop.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define VOLUMES_WAIT_MS 10000

bool runtime_device_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (!n || n > 15)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9')))
			return false;
	return true;
}

/* 1 when the shim's record agrees with wanted, 0 while not yet, -1 when it reports a failure. */
static int volumes_agree(int dfd, const struct kv *wanted, struct kerr **err)
{
	struct kv have = {0};
	int r = 1;

	if (kv_load(&have, dfd, "attached", NULL) < 0)
		return 0;
	for (size_t i = 0; i < wanted->n && r == 1; i++) {
		const char *v = kv_get(&have, wanted->keys[i], NULL);
		if (!v)
			r = 0;
		else if (!strncmp(v, "error: ", 7))
			r = kerr_set(err, KERR_IO, "cannot attach /dev/%s: %s", wanted->keys[i],
			             v + 7);
	}
	for (size_t i = 0; i < have.n && r == 1; i++)
		if (!kv_get(wanted, have.keys[i], NULL))
			r = 0;
	kv_release(&have);
	return r;
}

int runtime_volumes_set(struct runtime *rt, const char *id, const struct kv *wanted,
                        struct kerr **err)
{
	_cleanup_free_ char *dir = runtime_instance_path(rt, id, NULL);
	_cleanup_close_ int dfd = -1;
	struct instance_status st;
	struct timespec pause = {0, 5 * 1000 * 1000};

	for (size_t i = 0; i < wanted->n; i++)
		if (!runtime_device_name_valid(wanted->keys[i]))
			return kerr_set(err, KERR_INVALID, "invalid device name '%s'",
			                wanted->keys[i]);
	if (!id_valid("i", id))
		return kerr_set(err, KERR_INVALID, "invalid instance id '%s'", id);
	if (fs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kerr_errno(err, errno, "cannot open '%s'", dir);
	if (kv_save(wanted, dfd, "volumes", err) < 0)
		return -1;
	if (rt->ops->status(rt, id, &st, NULL) < 0 || st.state != RUN_RUNNING)
		return 0; /* the next boot attaches them */
	if (kill(st.shim_pid, SIGUSR1) < 0)
		return kerr_errno(err, errno, "cannot reach the shim of '%s'", id);
	for (int waited = 0; waited < VOLUMES_WAIT_MS; waited += 5) {
		int r = volumes_agree(dfd, wanted, err);
		if (r)
			return r < 0 ? -1 : 0;
		nanosleep(&pause, NULL);
	}
	return kerr_set(err, KERR_IO, "the shim of '%s' did not attach its volumes in time", id);
}

/* The shim's side: nodes in the /dev the shim opened before the instance ran, each admitted by
 * the instance's device allow-list while it is attached and refused again before its loop
 * device can serve anything else (a hard link made inside opens nothing after that). */
static void volume_drop(struct shim_volumes *sv, size_t i)
{
	struct stat st;

	unlinkat(sv->devfd, sv->v[i].name, 0);
	if (fstat(sv->v[i].fd, &st) == 0)
		cgroup_device(sv->cgroup, 'b', major(st.st_rdev), minor(st.st_rdev), false, NULL);
	close(sv->v[i].fd);
	sv->v[i] = sv->v[--sv->n];
}

static int volume_node(struct shim_volumes *sv, struct shim_volume *v, struct kerr **err)
{
	struct stat st;

	if (fstat(v->fd, &st) < 0)
		return kerr_errno(err, errno, "cannot inspect '%s'", v->loop);
	/* Whatever the instance put under that name goes first. */
	if (unlinkat(sv->devfd, v->name, 0) < 0 && errno != ENOENT)
		return kerr_errno(err, errno, "cannot replace /dev/%s", v->name);
	if (cgroup_device(sv->cgroup, 'b', major(st.st_rdev), minor(st.st_rdev), true, err) < 0)
		return -1;
	if (mknodat(sv->devfd, v->name, S_IFBLK | 0660, st.st_rdev) < 0 ||
	    fchownat(sv->devfd, v->name, sv->owner, sv->owner, AT_SYMLINK_NOFOLLOW) < 0) {
		int e = errno;
		unlinkat(sv->devfd, v->name, 0);
		cgroup_device(sv->cgroup, 'b', major(st.st_rdev), minor(st.st_rdev), false, NULL);
		return kerr_errno(err, e, "cannot create /dev/%s", v->name);
	}
	return 0;
}

void shim_volumes_sync(struct shim_volumes *sv, int dirfd)
{
	struct kv wanted = {0}, record = {0};

	kv_load(&wanted, dirfd, "volumes", NULL);
	for (size_t i = sv->n; i-- > 0;) {
		const char *path = kv_get(&wanted, sv->v[i].name, NULL);
		if (!path || strcmp(path, sv->v[i].path))
			volume_drop(sv, i);
	}
	for (size_t k = 0; k < wanted.n; k++) {
		_cleanup_kerr_ struct kerr *err = NULL;
		struct shim_volume *v;
		bool have = false;

		for (size_t i = 0; i < sv->n && !have; i++)
			have = !strcmp(sv->v[i].name, wanted.keys[k]);
		if (have)
			continue;
		if (sv->n == SHIM_VOLUMES_MAX || !runtime_device_name_valid(wanted.keys[k])) {
			kv_setf(&record, wanted.keys[k], "error: %s",
			        sv->n == SHIM_VOLUMES_MAX ? "too many volumes"
			                                  : "invalid device name");
			continue;
		}
		v = &sv->v[sv->n];
		str_copy(v->name, wanted.keys[k], sizeof(v->name));
		str_copy(v->path, wanted.values[k], sizeof(v->path));
		if (loop_attach(v->path, false, &v->fd, v->loop, &err) < 0) {
			kv_setf(&record, v->name, "error: %s", err->msg);
			continue;
		}
		if (volume_node(sv, v, &err) < 0) {
			kv_setf(&record, v->name, "error: %s", err->msg);
			close(v->fd);
			continue;
		}
		sv->n++;
	}
	for (size_t i = 0; i < sv->n; i++)
		kv_set(&record, sv->v[i].name, sv->v[i].loop);
	kv_save(&record, dirfd, "attached", NULL);
	kv_release(&record);
	kv_release(&wanted);
}

void shim_volumes_release(struct shim_volumes *sv, int dirfd)
{
	while (sv->n)
		volume_drop(sv, sv->n - 1);
	unlinkat(dirfd, "attached", 0);
}

int runtime_volume_flush(struct runtime *rt, const char *id, const char *name, struct kerr **err)
{
	_cleanup_close_ int dfd = -1, fd = -1;
	struct kv have = {0};
	const char *loop;
	int r = 0;

	if (runtime_open_instance(rt, id, &dfd, err) < 0)
		return -1;
	if (kv_load(&have, dfd, "attached", NULL) < 0)
		return 0; /* not running: nothing is cached */
	loop = kv_get(&have, name, NULL);
	if (loop && !strncmp(loop, "/dev/loop", 9)) {
		fd = open(loop, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fsync(fd) < 0)
			r = kerr_errno(err, errno, "cannot flush /dev/%s of '%s'", name, id);
	}
	kv_release(&have);
	return r;
}
