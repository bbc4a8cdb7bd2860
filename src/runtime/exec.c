/* `kiln exec` inside an instance: runs in a freshly exec'd kiln-shim, so that nothing of the
 * caller's memory or descriptors enters the instance. It joins the instance's cgroups and
 * namespaces as host root, becomes root of the instance's user namespace, takes the same
 * capabilities and seccomp filter as kiln-init, and only then forks the command, the first of
 * its processes the instance can see. It stays the command's parent: SIGINT, SIGTERM and SIGHUP
 * sent to it go on to the command's process group, and it exits with the command's status. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "confine.h"
#include "runtime.h"
#include "util/cleanup.h"
#include "util/xalloc.h"
#include "util/banned.h"

/* user last: the others need host root to join. */
static const struct {
	const char *name;
	int type;
} exec_namespaces[] = {
    {"cgroup", CLONE_NEWCGROUP}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
    {"net", CLONE_NEWNET},       {"pid", CLONE_NEWPID}, {"mnt", CLONE_NEWNS},
    {"user", CLONE_NEWUSER},
};

/* pid is the instance's PID 1: a child of its shim (whose pid the state file gives). */
static bool is_instance_init(pid_t pid, pid_t shim)
{
	char path[64], line[256];
	_cleanup_fclose_ FILE *f = NULL;
	long ppid = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "PPid: %ld", &ppid) == 1)
			break;
	return ppid == shim;
}

/* The command, once forked (0 before, and in the command itself). */
static volatile pid_t exec_command;

static void pass_on(int sig)
{
	int saved = errno;

	/* Its group, or itself while it has not made one yet (the signal then waits, blocked). */
	if (exec_command > 0 && kill(-exec_command, sig) < 0)
		kill(exec_command, sig);
	errno = saved;
}

static int fail(const char *id, const char *what, struct kerr *err)
{
	fprintf(stderr, "kiln: cannot enter instance '%s': %s%s%s\n", id, what, err ? ": " : "",
	        err ? err->msg : "");
	return 126;
}

int runtime_exec_main(const char *dir, char *const argv[])
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ char *copy = xstrdup(dir);
	_cleanup_close_ int pidfd = -1;
	struct runtime rt = {.run_dir = dirname(copy), .ops = &container_ops};
	const char *id = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
	int nsfd[ARRAY_SIZE(exec_namespaces)];
	struct instance_status st;
	char cgname[64];
	struct sigaction pass = {.sa_handler = pass_on};
	sigset_t forward;
	pid_t inner;
	int s;

	/* Blocked until the command exists (pending ones then go to it); the caller of
	 * container_exec blocks them already, from before this program ran. */
	sigemptyset(&forward);
	sigaddset(&forward, SIGINT);
	sigaddset(&forward, SIGTERM);
	sigaddset(&forward, SIGHUP);
	sigprocmask(SIG_BLOCK, &forward, NULL);
	sigfillset(&pass.sa_mask);
	sigaction(SIGINT, &pass, NULL);
	sigaction(SIGTERM, &pass, NULL);
	sigaction(SIGHUP, &pass, NULL);
	if (container_ops.status(&rt, id, &st, &err) < 0)
		return fail(id, "no such instance", err);
	if (st.state != RUN_RUNNING)
		return fail(id, "it is not running", NULL);
	/* The pidfd pins PID 1 while its namespaces are opened; checked after, it is no reused pid.
	 */
	pidfd = (int)syscall(SYS_pidfd_open, st.init_pid, 0);
	for (size_t i = 0; i < ARRAY_SIZE(exec_namespaces); i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)st.init_pid,
		         exec_namespaces[i].name);
		nsfd[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (nsfd[i] < 0)
			return fail(id, "cannot open its namespaces", NULL);
	}
	if (pidfd < 0 || syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0 ||
	    !is_instance_init(st.init_pid, st.shim_pid))
		return fail(id, "its init is gone", NULL);
	snprintf(cgname, sizeof(cgname), "kiln/%s", id);
	if (cgroup_attach(cgname, getpid(), &err) < 0)
		return fail(id, "cannot join its cgroups", err);
	for (size_t i = 0; i + 1 < ARRAY_SIZE(exec_namespaces); i++)
		if (setns(nsfd[i], exec_namespaces[i].type) < 0)
			return fail(id, exec_namespaces[i].name, NULL);
	if (chdir("/") < 0 ||
	    confine_become_root(nsfd[ARRAY_SIZE(exec_namespaces) - 1], &err) < 0 ||
	    confine_seccomp(&err) < 0 || confine_capabilities(&err) < 0)
		return fail(id, "cannot confine the command", err);
	for (size_t i = 0; i < ARRAY_SIZE(exec_namespaces); i++)
		close(nsfd[i]);
	close(steal_fd(&pidfd));
	/* Not dumpable until the exec: the instance cannot read this process meanwhile. */
	prctl(PR_SET_DUMPABLE, 0);
	inner = fork(); /* only children join the pid namespace */
	if (inner < 0)
		return fail(id, "cannot fork", NULL);
	if (inner == 0) {
		char *envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		                "HOME=/root", "TERM=xterm", NULL};
		struct sigaction dfl = {.sa_handler = SIG_DFL};
		/* No controlling terminal of the host's: the command cannot push input into it. */
		setsid();
		sigaction(SIGINT, &dfl, NULL);
		sigaction(SIGTERM, &dfl, NULL);
		sigaction(SIGHUP, &dfl, NULL);
		sigprocmask(SIG_UNBLOCK, &forward, NULL);
		execvpe(argv[0], argv, envp);
		fprintf(stderr, "kiln: cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	exec_command = inner;
	sigprocmask(SIG_UNBLOCK, &forward, NULL);
	while (waitpid(inner, &s, 0) < 0)
		if (errno != EINTR)
			return 126;
	return WIFEXITED(s) ? WEXITSTATUS(s) : 128 + WTERMSIG(s);
}
