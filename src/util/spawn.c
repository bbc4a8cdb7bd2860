/* posix_spawn with stdout discarded (or kept: spawn_output) and stderr captured into the error
 * message. */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "banned.h"

extern char **environ;

/* Read fd to its end into out (at most max bytes kept; the rest is read and dropped). */
static void drain(int fd, struct buf *out, size_t max)
{
	char chunk[4096];

	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (out->len + (size_t)n <= max && buf_add(out, chunk, (size_t)n, NULL) < 0)
			max = 0; /* full: the rest is dropped */
	}
}

/* Start argv with stdin from /dev/null, the descriptor keep (stdout or stderr) into a pipe whose
 * reading end is *rd, and the other of the two to /dev/null. */
static int start(char *const argv[], int keep, pid_t *pid, int *rd, struct kerr **err)
{
	_cleanup_close_ int wr = -1;
	posix_spawn_file_actions_t fa;
	int pipefd[2], r;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return kerr_errno(err, errno, "cannot run '%s'", argv[0]);
	*rd = pipefd[0];
	wr = pipefd[1];
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, wr, keep);
	posix_spawn_file_actions_addopen(&fa, keep == STDOUT_FILENO ? STDERR_FILENO : STDOUT_FILENO,
	                                 "/dev/null", O_WRONLY, 0);
	r = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0) {
		close(*rd);
		*rd = -1;
		return kerr_errno(err, r, "cannot run '%s'", argv[0]);
	}
	return 0;
}

static int reap(char *const argv[], pid_t pid, int *status, struct kerr **err)
{
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return kerr_errno(err, errno, "cannot wait for '%s'", argv[0]);
	return 0;
}

int spawn_output(char *const argv[], struct buf *out, size_t max, struct kerr **err)
{
	_cleanup_close_ int rd = -1;
	int status;
	pid_t pid;

	if (start(argv, STDOUT_FILENO, &pid, &rd, err) < 0)
		return -1;
	drain(rd, out, max);
	if (reap(argv, pid, &status, err) < 0)
		return -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	return kerr_set(err, KERR_IO, "'%s' failed with status %d", argv[0],
	                WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

int spawn_run(char *const argv[], struct kerr **err)
{
	_cleanup_close_ int rd = -1;
	char out[2048];
	size_t len = 0;
	int status;
	pid_t pid;

	if (start(argv, STDERR_FILENO, &pid, &rd, err) < 0)
		return -1;
	for (;;) {
		ssize_t n = read(rd, out + len, sizeof(out) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(out) - 1) { /* keep the tail: the last line says what failed */
			memmove(out, out + len / 2, len - len / 2);
			len -= len / 2;
		}
	}
	out[len] = '\0';
	if (reap(argv, pid, &status, err) < 0)
		return -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	while (len && (out[len - 1] == '\n' || out[len - 1] == ' '))
		out[--len] = '\0';
	char *last = strrchr(out, '\n');
	last = last ? last + 1 : out;
	if (WIFSIGNALED(status))
		return kerr_set(err, KERR_IO, "'%s' was killed by signal %d", argv[0],
		                WTERMSIG(status));
	return kerr_set(err, KERR_IO, "'%s' failed with status %d%s%s", argv[0],
	                WEXITSTATUS(status), *last ? ": " : "", last);
}
