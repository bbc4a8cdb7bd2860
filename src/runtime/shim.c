/* The shim: one small process per running instance. It boots the container (cgroup, loop
 * device, namespaces, network), reports the outcome, stays the parent of the instance's PID 1,
 * and tears everything down when PID 1 ends. Because the mounts live only in the instance's
 * mount namespace and the loop device is autoclear, nothing outlives the instance. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "boot.h"
#include "cgroup.h"
#include "net/net.h"
#include "runtime.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/kv.h"
#include "util/loop.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define PIDS_MAX 4096
#define VPC_CIDR "172.31.0.0/16"

struct shim {
	const char *dir;
	int dirfd;
	struct instance_spec spec;
	char cgroup[64];
	char host_if[16];
	struct shim_volumes volumes;
};

static void shim_state(struct shim *s, enum instance_run_state state, pid_t init_pid, int exit_status,
		       const char *reason)
{
	struct kv kv = {0};

	kv_set(&kv, "state", instance_run_state_names[state]);
	kv_setf(&kv, "shim-pid", "%d", (int)getpid());
	kv_setf(&kv, "init-pid", "%d", (int)init_pid);
	kv_setf(&kv, "exit-status", "%d", exit_status);
	kv_set(&kv, "reason", reason ? reason : "");
	kv_save(&kv, s->dirfd, "state", NULL);
	kv_release(&kv);
}

static void ready(int fd, const char *msg)
{
	if (fd >= 0) {
		fs_write_full(fd, msg, strlen(msg));
		close(fd);
	}
}

/* "172.31.0.10/20" and "172.31.0.1" give the bridge address "172.31.0.1/20". */
static void gateway_cidr(const struct instance_spec *spec, char *out, size_t size)
{
	const char *slash = strchr(spec->address, '/');

	snprintf(out, size, "%s%s", spec->gateway, slash ? slash : "/20");
}

static int shim_network(struct shim *s, pid_t pid, struct kerr **err)
{
	char gw[40];
	uint8_t mac[6], *macp = NULL;

	gateway_cidr(&s->spec, gw, sizeof(gw));
	if (s->spec.mac[0]) {
		if (net_mac_parse(s->spec.mac, mac, err) < 0)
			return -1;
		macp = mac;
	}
	/* The whole VPC range goes nowhere before any address in it is used (HOST-NOTES). */
	if (net_route_unreachable(VPC_CIDR, true, err) < 0 || net_bridge_ensure(s->spec.bridge, gw, err) < 0 ||
	    net_veth_create(s->host_if, s->spec.bridge, pid, "eth0", macp, err) < 0 ||
	    net_ns_configure(pid, "eth0", s->spec.address, s->spec.gateway, err) < 0)
		return kerr_wrap(err, "cannot set up the network of '%s'", s->spec.id);
	return 0;
}

struct attach_job {
	const char *cgroup;
	pid_t pid;
	struct kerr *err;
	int r;
};

static void *attach_thread(void *arg)
{
	struct attach_job *a = arg;

	a->r = cgroup_attach(a->cgroup, a->pid, &a->err);
	return NULL;
}

static int shim_cgroup_and_network(struct shim *s, pid_t pid, struct kerr **err)
{
	struct attach_job a = {.cgroup = s->cgroup, .pid = pid};
	pthread_t tid;
	bool threaded = pthread_create(&tid, NULL, attach_thread, &a) == 0;
	int r;

	if (!threaded)
		attach_thread(&a);
	r = shim_network(s, pid, err);
	if (threaded)
		pthread_join(tid, NULL);
	if (a.r < 0) {
		if (r == 0)
			kerr_pass(err, steal_ptr(a.err));
		r = -1;
	}
	kerr_free(a.err);
	return r;
}

/* The child fails before the go when its root volume is unusable; what it said about that
 * explains more than what its death did to the shim, so it replaces err. */
static void child_reason(int sock, struct kerr **err)
{
	char msg[1024];
	ssize_t n = recv(sock, msg, sizeof(msg) - 1, MSG_DONTWAIT);

	if (n > 0) {
		msg[n] = '\0';
		kerr_set(err, KERR_INVALID, "%s", msg);
	}
}

static void shim_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGCHLD);
	sigaddset(set, SIGUSR1);
}

/* Wait for PID 1 to end; SIGUSR1 meanwhile means the wanted data volumes changed. Both signals
 * are blocked (after the clone, so the instance does not inherit that) before the state says
 * running, which is when the daemon starts to send SIGUSR1; a child that ended before is found
 * by the first WNOHANG. */
static void shim_wait(struct shim *s, pid_t pid, int *status)
{
	struct timespec tick = {1, 0};
	sigset_t set;

	shim_signals(&set);
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			return;
		if (sigtimedwait(&set, NULL, &tick) == SIGUSR1)
			shim_volumes_sync(&s->volumes, s->dirfd, pid);
	}
}

static pid_t clone_container(void)
{
	return (pid_t)syscall(SYS_clone, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | SIGCHLD,
			      NULL, NULL, NULL, NULL);
}

int runtime_shim_main(const char *dir, const char *init_path, int ready_fd)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_close_ int console = -1, loopfd = -1;
	_cleanup_free_ char *copy = xstrdup(dir);
	struct shim s = {.dir = dir};
	const struct instance_type *type;
	struct cgroup_limits limits;
	struct boot_config boot;
	char dev[32], msg[1100];
	sigset_t blocked;
	int sv[2], status = -1;
	pid_t pid;
	ssize_t n;

	/* The instance must not inherit the ready pipe: its reader waits for end of file. */
	fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
	s.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s.dirfd < 0) {
		ready(ready_fd, "error: cannot open the instance directory");
		return 1;
	}
	{
		struct runtime rt = {.run_dir = dirname(copy)};
		const char *id = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
		if (runtime_spec_load(&rt, id, &s.spec, &err) < 0)
			goto boot_failed;
	}
	snprintf(s.cgroup, sizeof(s.cgroup), "kiln/%s", s.spec.id);
	snprintf(s.host_if, sizeof(s.host_if), "kv%.12s", s.spec.id + 2);
	shim_state(&s, RUN_STARTING, 0, -1, NULL);
	unlinkat(s.dirfd, "stop-requested", 0);

	type = instance_type_find(s.spec.type);
	if (!type) {
		kerr_set(&err, KERR_INVALID, "unknown instance type '%s'", s.spec.type);
		goto boot_failed;
	}
	console = openat(s.dirfd, "console.log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (console < 0) {
		kerr_errno(&err, errno, "cannot open the console log");
		goto boot_failed;
	}
	limits = (struct cgroup_limits){type->vcpus, type->memory_mib << 20, PIDS_MAX};
	if (cgroup_create(s.cgroup, &limits, &err) < 0)
		goto boot_failed;
	if (loop_attach(s.spec.root_volume, false, &loopfd, dev, &err) < 0) {
		kerr_wrap(&err, "cannot attach the root volume");
		goto boot_failed;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		kerr_errno(&err, errno, "cannot create a socket pair");
		goto boot_failed;
	}
	boot = (struct boot_config){.spec = &s.spec, .dirfd = s.dirfd, .dir = dir, .device = dev, .init_path = init_path,
				    .console_fd = console, .sync_fd = sv[1]};
	pid = clone_container();
	if (pid < 0) {
		kerr_errno(&err, errno, "cannot create the instance's namespaces");
		close(sv[0]);
		close(sv[1]);
		goto boot_failed;
	}
	if (pid == 0) {
		close(sv[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the shim: it owns the cleanup */
		boot_container(&boot);        /* does not return */
	}
	close(sv[1]);
	/* Sync point 1: the child mounts its root meanwhile, then waits until it is in its cgroup
	 * and its network exists. The cgroup move (slow on v1) runs beside the network setup. */
	if (shim_cgroup_and_network(&s, pid, &err) < 0) {
		kill(pid, SIGKILL);
		child_reason(sv[0], &err);
		goto boot_wait;
	}
	if (send(sv[0], "go", 2, MSG_NOSIGNAL) != 2) {
		kerr_errno(&err, errno, "cannot start the instance");
		kill(pid, SIGKILL);
		child_reason(sv[0], &err);
		goto boot_wait;
	}
	/* Sync point 2: end of file means PID 1 was exec'd; a message is the reason it was not. */
	n = recv(sv[0], msg, sizeof(msg) - 1, 0);
	if (n > 0) {
		msg[n] = '\0';
		kerr_set(&err, KERR_INVALID, "%s", msg);
		kill(pid, SIGKILL);
		goto boot_wait;
	}
	close(sv[0]);
	close(steal_fd(&loopfd)); /* the mount holds the device now; autoclear at unmount */
	shim_signals(&blocked);
	sigprocmask(SIG_BLOCK, &blocked, NULL);
	shim_state(&s, RUN_RUNNING, pid, -1, NULL);
	shim_volumes_sync(&s.volumes, s.dirfd, pid);
	ready(ready_fd, "ok");
	shim_wait(&s, pid, &status);
	shim_volumes_release(&s.volumes, s.dirfd);
	{
		const char *reason = faccessat(s.dirfd, "stop-requested", F_OK, 0) == 0
					     ? "Client.UserInitiatedShutdown: User initiated shutdown"
				     : WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL
					     ? "Server.InternalError: the instance's init was killed"
					     : "Client.InstanceInitiatedShutdown: Instance initiated shutdown";
		cgroup_remove(s.cgroup, NULL);
		loop_wait_released(s.spec.root_volume, 30000, NULL);
		shim_state(&s, RUN_STOPPED, 0, status, reason);
	}
	return 0;

boot_wait:
	close(sv[0]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
boot_failed:
	if (loopfd >= 0)
		close(steal_fd(&loopfd));
	cgroup_remove(s.cgroup, NULL);
	net_link_delete(s.host_if, NULL);
	if (s.spec.root_volume[0])
		loop_wait_released(s.spec.root_volume, 30000, NULL);
	snprintf(msg, sizeof(msg), "error: %s", err ? err->msg : "unknown error");
	if (console >= 0)
		dprintf(console, "kiln: instance failed to boot: %s\n", err ? err->msg : "unknown error");
	shim_state(&s, RUN_FAILED, 0, -1, err ? err->msg : "unknown error");
	ready(ready_fd, msg);
	return 1;
}
