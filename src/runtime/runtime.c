/* The run directory: one folder per instance with its spec, state and console log. */
#include "runtime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/kv.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

const char *const instance_run_state_names[RUN__COUNT] = {
    [RUN_STOPPED] = "stopped",   [RUN_STARTING] = "starting", [RUN_RUNNING] = "running",
    [RUN_STOPPING] = "stopping", [RUN_FAILED] = "failed",
};

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U /* <linux/memfd.h> of Linux 6.3; Debian 12's headers predate it */
#endif

int runtime_init_memfd(const char *init_path, int *out, struct kerr **err)
{
	_cleanup_close_ int src = open(init_path, O_RDONLY | O_CLOEXEC), fd = -1;
	struct stat st;
	off_t off = 0;

	if (src < 0 || fstat(src, &st) < 0)
		return kerr_errno(err, errno, "cannot open kiln-init at '%s'", init_path);
	fd = memfd_create("kiln-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (fd < 0 && errno == EINVAL) /* kernels before 6.3 know no MFD_EXEC */
		fd = memfd_create("kiln-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return kerr_errno(err, errno, "cannot create a memfd for kiln-init");
	while (off < st.st_size)
		if (sendfile(fd, src, &off, (size_t)(st.st_size - off)) <= 0)
			return kerr_errno(err, errno, "cannot copy kiln-init");
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
		return kerr_errno(err, errno, "cannot seal kiln-init");
	*out = steal_fd(&fd);
	return 0;
}

int runtime_open(const char *run_dir, const char *shim_path, const char *init_path,
                 struct runtime **out, struct kerr **err)
{
	struct runtime *rt;
	int init_fd;

	if (access(init_path, X_OK) < 0)
		return kerr_errno(err, errno, "cannot use kiln-init at '%s'", init_path);
	if (access(shim_path, X_OK) < 0)
		return kerr_errno(err, errno, "cannot use kiln-shim at '%s'", shim_path);
	if (fs_mkdir_p(run_dir, 0700, err) < 0 || runtime_init_memfd(init_path, &init_fd, err) < 0)
		return -1;
	rt = xcalloc(1, sizeof(*rt));
	rt->init_fd = init_fd;
	rt->ops = &container_ops;
	rt->run_dir = xstrdup(run_dir);
	rt->shim_path = xstrdup(shim_path);
	rt->init_path = xstrdup(init_path);
	*out = rt;
	return 0;
}

void runtime_close(struct runtime *rt)
{
	if (!rt)
		return;
	close(rt->init_fd);
	free(rt->run_dir);
	free(rt->shim_path);
	free(rt->init_path);
	free(rt);
}

char *runtime_instance_path(const struct runtime *rt, const char *id, const char *file)
{
	return file ? xasprintf("%s/%s/%s", rt->run_dir, id, file)
	            : xasprintf("%s/%s", rt->run_dir, id);
}

#define SPEC_FIELDS(X)                                                                             \
	X("id", id)                                                                                \
	X("image-id", image_id)                                                                    \
	X("region", region)                                                                        \
	X("zone", zone)                                                                            \
	X("type", type)                                                                            \
	X("hostname", hostname)                                                                    \
	X("root-volume", root_volume)                                                              \
	X("netns", netns)                                                                          \
	X("bridge", bridge)                                                                        \
	X("address", address)                                                                      \
	X("gateway", gateway)                                                                      \
	X("mac", mac)                                                                              \
	X("user-data", user_data)                                                                  \
	X("public-key", public_key)

int runtime_spec_save(struct runtime *rt, const struct instance_spec *spec, struct kerr **err)
{
	_cleanup_free_ char *dir = runtime_instance_path(rt, spec->id, NULL);
	_cleanup_close_ int dfd = -1;
	struct kv kv = {0};
	int r;

	if (!id_valid("i", spec->id))
		return kerr_set(err, KERR_INVALID, "invalid instance id '%s'", spec->id);
	if (fs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kerr_errno(err, errno, "cannot open '%s'", dir);
#define PUT(key, field) kv_set(&kv, key, spec->field);
	SPEC_FIELDS(PUT)
#undef PUT
	kv_setf(&kv, "stop-timeout", "%u", spec->stop_timeout);
	kv_setf(&kv, "id-base", "%u", spec->id_base);
	r = kv_save(&kv, dfd, "spec", err);
	kv_release(&kv);
	return r;
}

int runtime_open_instance(const struct runtime *rt, const char *id, int *dfd, struct kerr **err)
{
	_cleanup_free_ char *dir = NULL;

	if (!id_valid("i", id))
		return kerr_set(err, KERR_INVALID, "invalid instance id '%s'", id);
	dir = runtime_instance_path(rt, id, NULL);
	*dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*dfd < 0) {
		if (errno == ENOENT)
			return kerr_set(err, KERR_NOT_FOUND, "instance '%s' not found", id);
		return kerr_errno(err, errno, "cannot open '%s'", dir);
	}
	return 0;
}

int runtime_spec_load(struct runtime *rt, const char *id, struct instance_spec *spec,
                      struct kerr **err)
{
	_cleanup_close_ int dfd = -1;
	struct kv kv = {0};

	memset(spec, 0, sizeof(*spec));
	if (runtime_open_instance(rt, id, &dfd, err) < 0)
		return -1;
	if (kv_load(&kv, dfd, "spec", err) < 0)
		return kerr_wrap(err, "instance '%s'", id);
#define GET(key, field) str_copy(spec->field, kv_get(&kv, key, ""), sizeof(spec->field));
	SPEC_FIELDS(GET)
#undef GET
	spec->stop_timeout = (unsigned)strtoul(kv_get(&kv, "stop-timeout", "10"), NULL, 10);
	spec->id_base = (unsigned)strtoul(kv_get(&kv, "id-base", "0"), NULL, 10);
	kv_release(&kv);
	return 0;
}

int runtime_remove(struct runtime *rt, const char *id, struct kerr **err)
{
	_cleanup_free_ char *dir = runtime_instance_path(rt, id, NULL);
	struct instance_status st;
	struct dirent *de;
	DIR *d;
	int dfd;

	if (rt->ops->status(rt, id, &st, err) < 0)
		return -1;
	if (st.state == RUN_RUNNING || st.state == RUN_STARTING || st.state == RUN_STOPPING)
		return kerr_set(err, KERR_CONFLICT, "instance '%s' is %s", id,
		                instance_run_state_names[st.state]);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kerr_errno(err, errno, "cannot open '%s'", dir);
	if (runtime_ids_release(rt, id, err) < 0) {
		close(dfd);
		return -1;
	}
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return kerr_errno(err, errno, "cannot read '%s'", dir);
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dfd, de->d_name, de->d_type == DT_DIR ? AT_REMOVEDIR : 0);
	closedir(d);
	if (rmdir(dir) < 0)
		return kerr_errno(err, errno, "cannot remove '%s'", dir);
	return 0;
}

int runtime_list(struct runtime *rt, char (**ids)[ID_MAX], size_t *n, struct kerr **err)
{
	char(*v)[ID_MAX] = NULL;
	struct dirent *de;
	size_t count = 0;
	DIR *d = opendir(rt->run_dir);

	if (!d)
		return kerr_errno(err, errno, "cannot read '%s'", rt->run_dir);
	while ((de = readdir(d))) {
		if (!id_valid("i", de->d_name))
			continue;
		v = xreallocarray(v, count + 1, sizeof(*v));
		str_copy(v[count++], de->d_name, ID_MAX);
	}
	closedir(d);
	*ids = v;
	*n = count;
	return 0;
}

struct watchdog {
	struct runtime *rt;
	const char *id;
	unsigned max_ms;
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	bool done;
	bool fired;
};

static void *watchdog_run(void *arg)
{
	struct watchdog *w = arg;
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += w->max_ms / 1000;
	until.tv_nsec += (long)(w->max_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->lock);
	while (!w->done)
		if (pthread_cond_timedwait(&w->done_cond, &w->lock, &until) != 0)
			break;
	if (!w->done) {
		w->fired = true;
		w->rt->ops->freeze(w->rt, w->id, false, NULL);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int runtime_frozen(struct runtime *rt, const char *id, unsigned max_ms,
                   int (*fn)(void *ctx, struct kerr **err), void *ctx, struct kerr **err)
{
	struct watchdog w = {.rt = rt, .id = id, .max_ms = max_ms};
	pthread_t tid;
	int r;

	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.done_cond, NULL);
	if (rt->ops->freeze(rt, id, true, err) < 0)
		return -1;
	if (pthread_create(&tid, NULL, watchdog_run, &w) != 0) {
		rt->ops->freeze(rt, id, false, NULL);
		return kerr_set(err, KERR_LIMIT, "cannot start the thaw watchdog for '%s'", id);
	}
	r = fn(ctx, err);
	pthread_mutex_lock(&w.lock);
	w.done = true;
	pthread_cond_signal(&w.done_cond);
	pthread_mutex_unlock(&w.lock);
	pthread_join(tid, NULL);
	if (!w.fired && rt->ops->freeze(rt, id, false, r < 0 ? NULL : err) < 0)
		r = -1;
	if (w.fired && r == 0)
		r = kerr_set(err, KERR_IO,
		             "the root of '%s' stayed frozen longer than %u ms: thawed", id,
		             max_ms);
	pthread_cond_destroy(&w.done_cond);
	pthread_mutex_destroy(&w.lock);
	return r;
}

struct clone_ctx {
	int src, dst;
};

static int clone_now(void *ctx, struct kerr **err)
{
	struct clone_ctx *c = ctx;

	if (ioctl(c->dst, FICLONE, c->src) < 0)
		return kerr_errno(err, errno, "cannot clone the root volume");
	return 0;
}

#define FREEZE_MAX_MS 10000

int runtime_clone_root(struct runtime *rt, const char *id, const char *dest, struct kerr **err)
{
	struct instance_spec spec;
	struct instance_status st;
	struct clone_ctx c = {-1, -1};
	int r;

	if (runtime_spec_load(rt, id, &spec, err) < 0 || rt->ops->status(rt, id, &st, err) < 0)
		return -1;
	c.src = open(spec.root_volume, O_RDONLY | O_CLOEXEC);
	if (c.src < 0)
		return kerr_errno(err, errno, "cannot open the root volume of '%s'", id);
	c.dst = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (c.dst < 0) {
		close(c.src);
		return kerr_errno(err, errno, "cannot create '%s'", dest);
	}
	r = st.state == RUN_RUNNING ? runtime_frozen(rt, id, FREEZE_MAX_MS, clone_now, &c, err)
	                            : clone_now(&c, err);
	close(c.src);
	close(c.dst);
	if (r < 0)
		unlink(dest);
	return r;
}

int runtime_exec_signal(struct runtime_exec *x, int sig, struct kerr **err)
{
	if (sig != SIGINT && sig != SIGTERM && sig != SIGHUP)
		return kerr_set(err, KERR_INVALID, "signal %d is not passed on to commands", sig);
	if (syscall(SYS_pidfd_send_signal, x->pidfd, sig, NULL, 0) < 0 && errno != ESRCH)
		return kerr_errno(err, errno, "cannot signal the command");
	return 0;
}

int runtime_exec_wait(struct runtime_exec *x, int *exit_status, struct kerr **err)
{
	int status;

	if (x->pid <= 0)
		return kerr_set(err, KERR_INTERNAL, "no command to wait for");
	while (waitpid(x->pid, &status, 0) < 0)
		if (errno != EINTR) {
			int e = errno;
			close(x->pidfd);
			x->pid = x->pidfd = -1;
			return kerr_errno(err, e, "cannot wait for the command");
		}
	close(x->pidfd);
	x->pid = x->pidfd = -1;
	*exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	return 0;
}

void runtime_exec_release(struct runtime_exec *x)
{
	if (x->pidfd >= 0)
		close(x->pidfd);
	x->pid = x->pidfd = -1;
}
