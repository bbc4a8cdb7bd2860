/* The shim: one small process per running instance. It boots the container (cgroup, loop
 * device, user namespace and the namespaces it owns, network), reports the outcome, stays the
 * parent of the instance's PID 1, copies its console into a capped log, and tears everything
 * down when PID 1 ends. Because the mounts live only in the instance's mount namespace and the
 * loop device is autoclear, nothing outlives the instance. */
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
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "boot.h"
#include "cgroup.h"
#include "confine.h"
#include "net/net.h"
#include "runtime.h"
#include "util/cleanup.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/kv.h"
#include "util/loop.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define VPC_CIDR "172.31.0.0/16"
/* The console log keeps the last CONSOLE_KEEP bytes, trimmed once it reaches twice that. */
#define CONSOLE_KEEP ((off_t)1 << 20)

enum { NS_USER, NS_NET, NS_UTS, NS_IPC, NS__COUNT };
static const char *const ns_names[NS__COUNT] = {"user", "net", "uts", "ipc"};

struct shim {
	const char *dir;
	int dirfd;
	struct instance_spec spec;
	char cgroup[64];
	char host_if[16];
	struct shim_volumes volumes;
	int rootfd;        /* the instance's root, received before it ran: freezes go through it */
	pid_t holder;      /* keeps the new namespaces until the instance is in them */
	int ns[NS__COUNT]; /* user namespace and the namespaces it owns */
	int console;       /* console.log */
	int console_in;    /* the read end of the pipe the instance writes its console to */
	off_t console_size;
};

static void shim_state(struct shim *s, enum instance_run_state state, pid_t init_pid,
                       int exit_status, const char *reason)
{
	struct kv kv = {0};

	kv_set(&kv, "state", instance_run_state_names[state]);
	kv_setf(&kv, "shim-pid", "%d", (int)getpid());
	kv_setf(&kv, "init-pid", "%d", (int)init_pid);
	kv_setf(&kv, "exit-status", "%d", exit_status);
	kv_set(&kv, "reason", reason ? reason : "");
	if (state == RUN_RUNNING)
		kv_setf(&kv, "root-fd", "%d", s->rootfd);
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

/* The instance's port as the host keeps it (bridge, route, anti-spoofing element). */
static struct net_instance shim_port(const struct shim *s)
{
	return (struct net_instance){.host_if = s->host_if,
	                             .bridge = s->spec.bridge,
	                             .address = s->spec.address,
	                             .gateway = s->spec.gateway,
	                             .mac = s->spec.mac};
}

static int shim_network(struct shim *s, pid_t pid, struct kerr **err)
{
	const struct net_instance port = shim_port(s);
	uint8_t mac[NET_MAC_LEN];

	if (s->spec.netns[0]) {
		if (net_vpc_port_attach(s->spec.netns, &port, pid, "eth0", err) < 0)
			return kerr_wrap(err, "cannot set up the network of '%s'", s->spec.id);
		return 0;
	}
	/* The whole VPC range goes nowhere before any address in it is used (HOST-NOTES); the
	 * port's filter and route exist before the instance's end of it does. */
	if (net_route_unreachable(VPC_CIDR, true, err) < 0 ||
	    net_instance_attach(&port, mac, err) < 0 ||
	    net_veth_create(s->host_if, s->spec.bridge, pid, "eth0", mac, err) < 0 ||
	    net_ns_configure(pid, "eth0", s->spec.address, s->spec.gateway, err) < 0)
		return kerr_wrap(err, "cannot set up the network of '%s'", s->spec.id);
	return 0;
}

static void shim_network_release(const struct shim *s)
{
	const struct net_instance port = shim_port(s);

	if (s->spec.netns[0])
		net_vpc_port_detach(s->spec.netns, &port, NULL);
	else
		net_instance_detach(&port, NULL);
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

/* The child pid goes into the cgroup; the network is made in the namespace the holder keeps. */
static int shim_cgroup_and_network(struct shim *s, pid_t pid, struct kerr **err)
{
	struct attach_job a = {.cgroup = s->cgroup, .pid = pid};
	pthread_t tid;
	bool threaded = pthread_create(&tid, NULL, attach_thread, &a) == 0;
	int r;

	if (!threaded)
		attach_thread(&a);
	r = shim_network(s, s->holder, err);
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

/* A child that makes the instance's user namespace (mapped to its host id range) and the
 * network, host name and IPC namespaces owned by it, then waits to be killed: the shim holds
 * the namespaces by descriptor, and builds the network in them meanwhile. */
static int holder_start(struct shim *s, struct kerr **err)
{
	int p[2];
	char ok = 0;

	if (pipe2(p, O_CLOEXEC) < 0)
		return kerr_errno(err, errno, "cannot create a pipe");
	s->holder = fork();
	if (s->holder < 0) {
		close(p[0]);
		close(p[1]);
		return kerr_errno(err, errno, "cannot fork the namespace holder");
	}
	if (s->holder == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		ok = unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC) == 0 ? 'y'
		                                                                              : 'n';
		if (write(p[1], &ok, 1) != 1 || ok != 'y')
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	if (read(p[0], &ok, 1) != 1 || ok != 'y') {
		close(p[0]);
		return kerr_set(err, KERR_IO, "cannot create the instance's user namespace");
	}
	close(p[0]);
	if (confine_idmap_write(s->holder, s->spec.id_base, err) < 0)
		return -1;
	for (int i = 0; i < NS__COUNT; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)s->holder, ns_names[i]);
		s->ns[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (s->ns[i] < 0)
			return kerr_errno(err, errno, "cannot open '%s'", path);
	}
	return 0;
}

static void holder_stop(struct shim *s)
{
	if (s->holder > 0) {
		kill(s->holder, SIGKILL);
		while (waitpid(s->holder, NULL, 0) < 0 && errno == EINTR)
			;
		s->holder = 0;
	}
	for (int i = 0; i < NS__COUNT; i++)
		if (s->ns[i] >= 0) {
			close(s->ns[i]);
			s->ns[i] = -1;
		}
}

/* "fd:N" is the runtime's sealed memfd of kiln-init (runtime_init_memfd), shared by every
 * instance; a path is copied into a memfd of this instance's own. */
static int shim_init(const char *init, int *fd, struct kerr **err)
{
	if (strncmp(init, "fd:", 3) != 0)
		return runtime_init_memfd(init, fd, err);
	*fd = (int)strtol(init + 3, NULL, 10);
	if (fcntl(*fd, F_GET_SEALS) != (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) ||
	    fcntl(*fd, F_SETFD, FD_CLOEXEC) < 0)
		return kerr_set(err, KERR_INVALID, "kiln-init is not a sealed memfd");
	return 0;
}

/* Keep the last CONSOLE_KEEP bytes, from the first line start in them. */
static void console_trim(struct shim *s)
{
	_cleanup_free_ char *tail = xmalloc((size_t)CONSOLE_KEEP);
	ssize_t n =
	    fs_pread_full(s->console, tail, (size_t)CONSOLE_KEEP, s->console_size - CONSOLE_KEEP);
	_cleanup_close_ int fd = -1;
	char *start;

	if (n <= 0)
		return;
	start = memchr(tail, '\n', (size_t)n);
	start = start ? start + 1 : tail;
	fd = openat(s->dirfd, "console.log.new", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || fs_write_full(fd, start, (size_t)(tail + n - start)) < 0 ||
	    renameat(s->dirfd, "console.log.new", s->dirfd, "console.log") < 0)
		return;
	close(s->console);
	s->console = steal_fd(&fd);
	lseek(s->console, 0, SEEK_END);
	s->console_size = tail + n - start;
}

/* Copy what the instance wrote; false once every writer is gone. */
static bool console_pump(struct shim *s)
{
	char buf[65536];

	for (;;) {
		ssize_t n = read(s->console_in, buf, sizeof(buf));
		if (n == 0)
			return false;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		if (fs_write_full(s->console, buf, (size_t)n) == 0)
			s->console_size += n;
		if (s->console_size >= 2 * CONSOLE_KEEP)
			console_trim(s);
	}
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

/* Sync point 1: "mounted" with the root and /dev descriptors, or the reason the child failed. */
static int recv_mounted(struct shim *s, int sock, struct kerr **err)
{
	char msg[1024], cbuf[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = {.iov_base = msg, .iov_len = sizeof(msg) - 1};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm;
	ssize_t n;

	while ((n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	cm = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
	if (cm && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(2 * sizeof(int))) {
		int fds[2];
		memcpy(fds, CMSG_DATA(cm), sizeof(fds));
		s->rootfd = fds[0];
		s->volumes.devfd = fds[1];
		return 0;
	}
	if (n <= 0)
		return kerr_set(err, KERR_IO, "the instance ended while its root was mounted");
	msg[n] = '\0';
	return kerr_set(err, KERR_INVALID, "%s", msg);
}

/* The child mounts the root volume's loop device inside the device allow-list of the cgroup it
 * is moved into meanwhile; once mounted, the device is refused again (only opens are checked). */
static int root_device(struct shim *s, int loopfd, bool allow, struct kerr **err)
{
	struct stat st;

	if (fstat(loopfd, &st) < 0)
		return kerr_errno(err, errno, "cannot inspect the root volume's loop device");
	return cgroup_device(s->cgroup, 'b', major(st.st_rdev), minor(st.st_rdev), allow, err);
}

static void shim_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGCHLD);
	sigaddset(set, SIGUSR1);
}

/* Wait for PID 1 to end, copying the console meanwhile; SIGUSR1 means the wanted data volumes
 * changed. Both signals are blocked (after the clone, so the instance does not inherit that)
 * before the state says running, which is when the daemon starts to send SIGUSR1; a child that
 * ended before is found by the first WNOHANG. */
static void shim_wait(struct shim *s, pid_t pid, int *status)
{
	sigset_t set;
	_cleanup_close_ int sfd = -1;
	struct pollfd p[2];

	shim_signals(&set);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	p[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
	p[1] = (struct pollfd){.fd = s->console_in, .events = POLLIN};
	for (;;) {
		struct signalfd_siginfo si;
		bool resync = false;
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid || (r < 0 && errno != EINTR))
			break;
		if (poll(p, 2, 1000) < 0 && errno != EINTR)
			break;
		if (p[1].revents && !console_pump(s))
			p[1].fd = -1; /* every writer is gone: PID 1 is ending */
		while (sfd >= 0 && read(sfd, &si, sizeof(si)) == sizeof(si))
			resync |= si.ssi_signo == SIGUSR1;
		if (resync)
			shim_volumes_sync(&s->volumes, s->dirfd);
	}
	console_pump(s);
}

static pid_t clone_container(void)
{
	/* Mount and PID namespaces owned by the host's user namespace: the instance's root cannot
	 * change its mounts; the rest is owned by the instance's user namespace (holder_start). */
	return (pid_t)syscall(SYS_clone, CLONE_NEWNS | CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL,
	                      NULL);
}

static void shim_release(struct shim *s)
{
	holder_stop(s);
	if (s->rootfd >= 0)
		close(s->rootfd);
	if (s->volumes.devfd >= 0)
		close(s->volumes.devfd);
	s->rootfd = s->volumes.devfd = -1;
}

int runtime_shim_main(const char *dir, const char *init_path, int ready_fd)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_close_ int loopfd = -1, initfd = -1, idsfd = -1;
	_cleanup_free_ char *copy = xstrdup(dir);
	char *run_dir;
	struct shim s = {
	    .dir = dir, .rootfd = -1, .console = -1, .console_in = -1, .ns = {-1, -1, -1, -1}};
	const struct instance_type *type;
	struct cgroup_limits limits;
	struct boot_config boot;
	char dev[32], msg[1100];
	sigset_t blocked;
	int sv[2], cpipe[2], status = -1;
	pid_t pid;
	ssize_t n;

	s.volumes.devfd = -1;
	/* The instance must not inherit the ready pipe: its reader waits for end of file. */
	fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
	s.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s.dirfd < 0) {
		ready(ready_fd, "error: cannot open the instance directory");
		return 1;
	}
	run_dir = dirname(copy);
	{
		struct runtime rt = {.run_dir = run_dir};
		const char *id = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
		if (runtime_spec_load(&rt, id, &s.spec, &err) < 0)
			goto boot_failed;
	}
	snprintf(s.cgroup, sizeof(s.cgroup), "kiln/%s", s.spec.id);
	snprintf(s.host_if, sizeof(s.host_if), "kv%.12s", s.spec.id + 2);
	s.volumes.cgroup = s.cgroup;
	s.volumes.owner = s.spec.id_base;
	shim_state(&s, RUN_STARTING, 0, -1, NULL);
	unlinkat(s.dirfd, "stop-requested", 0);

	type = instance_type_find(s.spec.type);
	if (!type) {
		kerr_set(&err, KERR_INVALID, "unknown instance type '%s'", s.spec.type);
		goto boot_failed;
	}
	/* Held until the shim ends: while the instance runs, nobody takes its host ids. */
	if (runtime_ids_hold(run_dir, s.spec.id, s.spec.id_base, &idsfd, &err) < 0)
		goto boot_failed;
	s.console = openat(s.dirfd, "console.log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (s.console < 0) {
		kerr_errno(&err, errno, "cannot open the console log");
		goto boot_failed;
	}
	s.console_size = lseek(s.console, 0, SEEK_END);
	if (pipe2(cpipe, O_CLOEXEC) < 0) {
		kerr_errno(&err, errno, "cannot create the console pipe");
		goto boot_failed;
	}
	s.console_in = cpipe[0];
	fcntl(s.console_in, F_SETFL, O_NONBLOCK);
	limits =
	    (struct cgroup_limits){type->vcpus, type->memory_mib << 20, instance_type_pids(type)};
	if (cgroup_create(s.cgroup, &limits, &err) < 0 || shim_init(init_path, &initfd, &err) < 0 ||
	    holder_start(&s, &err) < 0) {
		close(cpipe[1]);
		goto boot_failed;
	}
	if (loop_attach(s.spec.root_volume, false, &loopfd, dev, &err) < 0 ||
	    root_device(&s, loopfd, true, &err) < 0) {
		kerr_wrap(&err, "cannot attach the root volume");
		close(cpipe[1]);
		goto boot_failed;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		kerr_errno(&err, errno, "cannot create a socket pair");
		close(cpipe[1]);
		goto boot_failed;
	}
	boot = (struct boot_config){.spec = &s.spec,
	                            .dir = dir,
	                            .device = dev,
	                            .init_fd = initfd,
	                            .console_fd = cpipe[1],
	                            .sync_fd = sv[1],
	                            .userns_fd = s.ns[NS_USER],
	                            .netns_fd = s.ns[NS_NET],
	                            .utsns_fd = s.ns[NS_UTS],
	                            .ipcns_fd = s.ns[NS_IPC],
	                            .id_base = s.spec.id_base};
	pid = clone_container();
	if (pid < 0) {
		kerr_errno(&err, errno, "cannot create the instance's namespaces");
		close(sv[0]);
		close(sv[1]);
		close(cpipe[1]);
		goto boot_failed;
	}
	if (pid == 0) {
		close(sv[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the shim: it owns the cleanup */
		boot_container(&boot);            /* does not return */
	}
	close(sv[1]);
	close(cpipe[1]);
	/* The child mounts its root meanwhile, then waits until it is in its cgroup and its network
	 * exists. The cgroup move (slow on v1) runs beside the network setup. */
	if (shim_cgroup_and_network(&s, pid, &err) < 0) {
		kill(pid, SIGKILL);
		child_reason(sv[0], &err);
		goto boot_wait;
	}
	if (recv_mounted(&s, sv[0], &err) < 0 || root_device(&s, loopfd, false, &err) < 0) {
		kill(pid, SIGKILL);
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
	holder_stop(&s); /* the instance holds its namespaces itself now */
	close(steal_fd(&initfd));
	close(steal_fd(&loopfd)); /* the mount holds the device now; autoclear at unmount */
	shim_signals(&blocked);
	sigprocmask(SIG_BLOCK, &blocked, NULL);
	fault_point("shim.booted"); /* the crash tests' boot still under way */
	shim_state(&s, RUN_RUNNING, pid, -1, NULL);
	shim_volumes_sync(&s.volumes, s.dirfd);
	ready(ready_fd, "ok");
	shim_wait(&s, pid, &status);
	shim_volumes_release(&s.volumes, s.dirfd);
	shim_release(&s);         /* the descriptors of its root would keep the loop device */
	shim_network_release(&s); /* before the state says stopped: a start may follow at once */
	{
		const char *reason =
		    faccessat(s.dirfd, "stop-requested", F_OK, 0) == 0
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
	shim_release(&s);
	if (loopfd >= 0)
		close(steal_fd(&loopfd));
	cgroup_remove(s.cgroup, NULL);
	shim_network_release(&s);
	if (s.spec.root_volume[0])
		loop_wait_released(s.spec.root_volume, 30000, NULL);
	snprintf(msg, sizeof(msg), "error: %s", err ? err->msg : "unknown error");
	if (s.console >= 0)
		dprintf(s.console, "kiln: instance failed to boot: %s\n",
		        err ? err->msg : "unknown error");
	shim_state(&s, RUN_FAILED, 0, -1, err ? err->msg : "unknown error");
	ready(ready_fd, msg);
	return 1;
}
