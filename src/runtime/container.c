/* The container backend: start through a shim, stop by signalling PID 1, exec through a fresh
 * kiln-shim that joins the instance's cgroups, namespaces and confinement, freeze through the
 * descriptor of the root that the shim took before the instance ran. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "runtime.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/kv.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define START_TIMEOUT_MS 30000

/* The pid is a live shim of this instance (not a recycled pid). */
static bool shim_alive(const char *id, pid_t pid)
{
	char path[64], cmd[4096];
	ssize_t n;
	int fd;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n <= 0)
		return false;
	cmd[n] = '\0';
	for (ssize_t i = 0; i < n; i++)
		if (!cmd[i])
			cmd[i] = ' ';
	return strstr(cmd, "__shim") && strstr(cmd, id);
}

static int container_status(struct runtime *rt, const char *id, struct instance_status *st,
                            struct kerr **err)
{
	_cleanup_close_ int dfd = -1;
	struct kv kv = {0};
	const char *state;

	memset(st, 0, sizeof(*st));
	st->exit_status = -1;
	st->shim_root_fd = -1;
	if (runtime_open_instance(rt, id, &dfd, err) < 0)
		return -1;
	if (faccessat(dfd, "state", F_OK, 0) < 0)
		return 0; /* created, never started */
	if (kv_load(&kv, dfd, "state", err) < 0)
		return kerr_wrap(err, "instance '%s'", id);
	state = kv_get(&kv, "state", "stopped");
	for (int s = 0; s < RUN__COUNT; s++)
		if (!strcmp(state, instance_run_state_names[s]))
			st->state = (enum instance_run_state)s;
	st->init_pid = (pid_t)strtol(kv_get(&kv, "init-pid", "0"), NULL, 10);
	st->shim_pid = (pid_t)strtol(kv_get(&kv, "shim-pid", "0"), NULL, 10);
	st->shim_root_fd = (int)strtol(kv_get(&kv, "root-fd", "-1"), NULL, 10);
	st->exit_status = (int)strtol(kv_get(&kv, "exit-status", "-1"), NULL, 10);
	str_copy(st->reason, kv_get(&kv, "reason", ""), sizeof(st->reason));
	kv_release(&kv);
	if ((st->state == RUN_RUNNING || st->state == RUN_STARTING) &&
	    !shim_alive(id, st->shim_pid)) {
		/* The shim died without writing an end state: the instance died with it. */
		char name[64];
		snprintf(name, sizeof(name), "kiln/%s", id);
		cgroup_remove(name, NULL);
		st->state = RUN_STOPPED;
		st->init_pid = 0;
		str_copy(st->reason, "Server.InternalError: the instance's supervisor ended",
		         sizeof(st->reason));
	} else if (st->state == RUN_RUNNING && faccessat(dfd, "stop-requested", F_OK, 0) == 0) {
		st->state = RUN_STOPPING;
	}
	return 0;
}

/* Wait until the shim of the instance has exited (it writes the end state first). */
static bool wait_shim(pid_t pid, const char *id, unsigned timeout_ms)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (pfd < 0)
		return !shim_alive(id, pid);
	struct pollfd p = {.fd = pfd, .events = POLLIN};
	int r;
	while ((r = poll(&p, 1, (int)timeout_ms)) < 0 && errno == EINTR)
		;
	close(pfd);
	return r > 0;
}

/* Wait for a boot under way to end (the shim goes on alone when the process that started it
 * dies, a daemon killed with -9): st is the instance's status after it. A boot that has not
 * ended within the start timeout is ended by killing its shim (the instance, its child, dies
 * with it; its loop devices, mounts and cgroup go as after any shim's death). */
static int wait_boot(struct runtime *rt, const char *id, struct instance_status *st,
                     struct kerr **err)
{
	const struct timespec step = {0, 50 * 1000000L};
	int pidfd;

	for (unsigned waited = 0; waited < START_TIMEOUT_MS; waited += 50) {
		if (st->state != RUN_STARTING)
			return 0;
		nanosleep(&step, NULL);
		if (container_status(rt, id, st, err) < 0)
			return -1;
	}
	if (st->state != RUN_STARTING)
		return 0;
	/* The pidfd pins the pid: checked after it is taken, it cannot be another process. */
	pidfd = (int)syscall(SYS_pidfd_open, st->shim_pid, 0);
	if (pidfd >= 0 && shim_alive(id, st->shim_pid))
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	if (pidfd >= 0)
		close(pidfd);
	if (!wait_shim(st->shim_pid, id, 10000))
		return kerr_set(err, KERR_IO, "the boot of instance '%s' did not end", id);
	return container_status(rt, id, st, err);
}

static int container_start(struct runtime *rt, const struct instance_spec *spec, struct kerr **err)
{
	_cleanup_free_ char *dir = runtime_instance_path(rt, spec->id, NULL);
	_cleanup_free_ char *log = runtime_instance_path(rt, spec->id, "shim.log");
	struct instance_status st;
	char fdarg[16], msg[1100];
	int pipefd[2];
	size_t len = 0;
	pid_t pid;

	/* A boot of this instance under way (a daemon restarted during it) is this start. */
	if (container_status(rt, spec->id, &st, NULL) == 0 && st.state == RUN_STARTING) {
		if (wait_boot(rt, spec->id, &st, err) < 0)
			return -1;
		if (st.state == RUN_RUNNING)
			return 0;
	}
	if (container_status(rt, spec->id, &st, NULL) == 0 &&
	    (st.state == RUN_RUNNING || st.state == RUN_STARTING || st.state == RUN_STOPPING))
		return kerr_set(err, KERR_CONFLICT, "instance '%s' is %s", spec->id,
		                instance_run_state_names[st.state]);
	{
		struct instance_spec own = *spec;
		if (runtime_ids_assign(rt, &own, err) < 0)
			return -1;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return kerr_errno(err, errno, "cannot start instance '%s'", spec->id);
	snprintf(fdarg, sizeof(fdarg), "%d", 3);
	char *argv[] = {rt->shim_path, "__shim", dir, fdarg, "fd:4", NULL};
	/* Double fork: the shim is nobody's child here, so it outlives this process. Only
	 * async-signal-safe calls between fork and exec (the caller may have threads). */
	pid = fork();
	if (pid < 0)
		return kerr_errno(err, errno, "cannot start instance '%s'", spec->id);
	if (pid == 0) {
		setsid();
		if (fork() != 0)
			_exit(0);
		int null = open("/dev/null", O_RDWR);
		int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(null, 0);
		dup2(null, 1);
		dup2(logfd >= 0 ? logfd : null, 2);
		/* Above 4 first: either may sit at 3 or 4 now. dup2 clears close-on-exec. */
		int ready_fd = fcntl(pipefd[1], F_DUPFD, 5),
		    init_fd = fcntl(rt->init_fd, F_DUPFD, 5);
		dup2(ready_fd, 3);
		dup2(init_fd, 4);
		syscall(SYS_close_range, 5, ~0U, 0); /* nothing of the caller's (sockets…) */
		execv(rt->shim_path, argv);
		_exit(127);
	}
	close(pipefd[1]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	{
		struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
		for (;;) {
			int r = poll(&p, 1, START_TIMEOUT_MS);
			ssize_t n;
			if (r < 0 && errno == EINTR)
				continue;
			if (r == 0) {
				close(pipefd[0]);
				return kerr_set(err, KERR_IO,
				                "instance '%s' did not boot within %d s", spec->id,
				                START_TIMEOUT_MS / 1000);
			}
			n = read(pipefd[0], msg + len, sizeof(msg) - 1 - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			len += (size_t)n;
			if (len == sizeof(msg) - 1)
				break;
		}
	}
	close(pipefd[0]);
	msg[len] = '\0';
	if (!strcmp(msg, "ok"))
		return 0;
	if (!strncmp(msg, "error: ", 7))
		return kerr_set(err, KERR_INVALID, "instance '%s' failed to boot: %s", spec->id,
		                msg + 7);
	return kerr_set(err, KERR_IO, "instance '%s' failed to boot (see %s)", spec->id, log);
}

static int container_stop(struct runtime *rt, const char *id, bool force, unsigned timeout_s,
                          struct kerr **err)
{
	_cleanup_free_ char *marker = runtime_instance_path(rt, id, "stop-requested");
	struct instance_status st;
	int fd;

	/* A boot under way is let end first: its PID 1 does not exist before. */
	if (container_status(rt, id, &st, err) < 0 || wait_boot(rt, id, &st, err) < 0)
		return -1;
	if (st.state == RUN_STOPPED || st.state == RUN_FAILED)
		return 0;
	fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	if (st.init_pid > 0)
		kill(st.init_pid, force ? SIGKILL : SIGTERM);
	/* kiln-init itself kills what is left after its timeout; give it that and a little more. */
	if (!wait_shim(st.shim_pid, id, force ? 10000 : timeout_s * 1000 + 2000)) {
		if (st.init_pid > 0)
			kill(st.init_pid, SIGKILL);
		if (!wait_shim(st.shim_pid, id, 10000))
			return kerr_set(err, KERR_IO, "instance '%s' did not stop", id);
	}
	return 0;
}

static int container_exec(struct runtime *rt, const char *id, char *const argv[],
                          const int stdio[3], struct runtime_exec *x, struct kerr **err)
{
	_cleanup_free_ char *dir = runtime_instance_path(rt, id, NULL);
	struct instance_status st;
	sigset_t forward;
	size_t argc = 0;
	pid_t pid;

	x->pid = -1;
	x->pidfd = -1;
	if (container_status(rt, id, &st, err) < 0)
		return -1;
	if (st.state != RUN_RUNNING)
		return kerr_set(err, KERR_CONFLICT, "instance '%s' is %s, not running", id,
		                instance_run_state_names[st.state]);
	while (argv[argc])
		argc++;
	/* A new program, not a fork of this one: nothing of the caller's memory goes inside. */
	char **args = xcalloc(argc + 4, sizeof(*args));
	args[0] = rt->shim_path;
	args[1] = "__exec";
	args[2] = dir;
	memcpy(args + 3, argv, argc * sizeof(*args));
	/* The signals it passes on stay pending until it has its handlers (runtime_exec_main). */
	sigemptyset(&forward);
	sigaddset(&forward, SIGINT);
	sigaddset(&forward, SIGTERM);
	sigaddset(&forward, SIGHUP);
	pid = fork();
	if (pid < 0) {
		free(args);
		return kerr_errno(err, errno, "cannot enter instance '%s'", id);
	}
	if (pid == 0) {
		/* Async-signal-safe calls only: the caller may have threads. */
		struct sigaction dfl = {.sa_handler = SIG_DFL};
		if (stdio) {
			/* Above 2 first: a given descriptor may sit at 0, 1 or 2. */
			int in = fcntl(stdio[0], F_DUPFD, 3), out = fcntl(stdio[1], F_DUPFD, 3),
			    errfd = fcntl(stdio[2], F_DUPFD, 3);
			if (in < 0 || out < 0 || errfd < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
			    dup2(errfd, 2) < 0)
				_exit(126);
		}
		syscall(SYS_close_range, 3, ~0U, 0);
		for (int sig = 1; sig < NSIG; sig++)
			sigaction(sig, &dfl, NULL); /* none ignored (SIGPIPE by a daemon) */
		sigprocmask(SIG_SETMASK, &forward, NULL);
		execv(rt->shim_path, args);
		_exit(126);
	}
	free(args);
	/* Not yet waited for, the pid cannot be another process's. */
	x->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	x->pid = pid;
	if (x->pidfd < 0) {
		int e = errno;
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		x->pid = -1;
		return kerr_errno(err, e, "cannot follow the command in '%s'", id);
	}
	return 0;
}

/* A duplicate of the shim's descriptor of the instance's root. */
static int shim_root_fd(const char *id, const struct instance_status *st, struct kerr **err)
{
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, st->shim_pid, 0);
	int fd;

	/* The pidfd pins the pid: checked after it is taken, the shim cannot be a recycled pid. */
	if (pidfd < 0 || st->shim_root_fd < 0 || !shim_alive(id, st->shim_pid))
		return kerr_set(err, KERR_CONFLICT, "the supervisor of '%s' holds no root", id);
	fd = (int)syscall(SYS_pidfd_getfd, pidfd, st->shim_root_fd, 0);
	if (fd < 0)
		return kerr_errno(err, errno, "cannot take the root of '%s' from its supervisor",
		                  id);
	return fd;
}

static int container_freeze(struct runtime *rt, const char *id, bool freeze, struct kerr **err)
{
	struct instance_status st;
	_cleanup_close_ int fd = -1;

	if (container_status(rt, id, &st, err) < 0)
		return -1;
	if (st.state != RUN_RUNNING)
		return kerr_set(err, KERR_CONFLICT, "instance '%s' is not running", id);
	fd = shim_root_fd(id, &st, err);
	if (fd < 0)
		return -1;
	if (ioctl(fd, freeze ? FIFREEZE : FITHAW, 0) < 0 && !(!freeze && errno == EINVAL))
		return kerr_errno(err, errno, "cannot %s the root filesystem of '%s'",
		                  freeze ? "freeze" : "thaw", id);
	return 0;
}

const struct runtime_ops container_ops = {
    .name = "container",
    .start = container_start,
    .stop = container_stop,
    .status = container_status,
    .exec = container_exec,
    .freeze = container_freeze,
};
