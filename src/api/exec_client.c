/* The client of the ExecInstance transport (exec.h): the signed request with this process's
 * stdio, the signals it receives passed on, the command's status or the daemon's refusal. */
#include "api/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/str.h"
#include "util/banned.h"

static int send_request(int fd, const struct buf *req, struct kerr **err)
{
	union {
		char space[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = req->data, .iov_len = req->len};
	struct msghdr msg = {.msg_iov = &iov,
	                     .msg_iovlen = 1,
	                     .msg_control = &control,
	                     .msg_controllen = sizeof(control)};
	struct cmsghdr *c;
	const int stdio[3] = {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO};
	int r = 0;

	memset(&control, 0, sizeof(control));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(stdio));
	memcpy(CMSG_DATA(c), stdio, sizeof(stdio));
	while (sendmsg(fd, &msg, MSG_NOSIGNAL) < 0)
		if (errno != EINTR) {
			r = kerr_errno(err, errno, "cannot send the command to the daemon");
			break;
		}
	return r;
}

int api_exec_run(struct api_client *c, const char *path, const char *id, char *const argv[],
                 int *exit_status, struct kerr **err)
{
	_cleanup_buf_ struct buf req = BUF_INIT;
	_cleanup_close_ int fd = -1, sfd = -1;
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct api_args a;
	sigset_t forward, old;
	size_t n = 0;
	int r = -1;

	if (strlen(path) >= sizeof(addr.sun_path))
		return kerr_set(err, KERR_INVALID, "the exec socket's path '%s' is too long", path);
	memcpy(addr.sun_path, path, strlen(path) + 1);
	/* A stdio descriptor the caller closed is /dev/null for the command (and the socket
	 * cannot take its number). */
	for (int i = 0; i < 3; i++)
		if (fcntl(i, F_GETFD) < 0 && open("/dev/null", O_RDWR) != i)
			return kerr_errno(err, errno, "cannot open /dev/null");
	api_args_init(&a, "ExecInstance");
	api_args_add(&a, "InstanceId", id);
	while (argv[n])
		n++;
	api_args_list(&a, "Command", argv, n);
	if (api_client_signed_headers(c, &a, &req, err) < 0) {
		api_args_release(&a);
		return -1;
	}
	buf_addstr(&req, "\n");
	buf_addstr(&req, a.body.data);
	api_args_release(&a);
	if (req.len > API_EXEC_REQUEST_MAX)
		return kerr_set(err, KERR_LIMIT,
		                "the command is too long (the request is at most %zu "
		                "bytes)",
		                API_EXEC_REQUEST_MAX);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return kerr_errno(err, errno, "cannot make a socket");
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return kerr_errno(err, errno,
		                  "cannot reach the daemon at %s (is `kiln serve` running?)", path);
	/* From here, the signals that would end this process go to the command instead. */
	sigemptyset(&forward);
	sigaddset(&forward, SIGINT);
	sigaddset(&forward, SIGTERM);
	sigaddset(&forward, SIGHUP);
	sigprocmask(SIG_BLOCK, &forward, &old);
	sfd = signalfd(-1, &forward, SFD_CLOEXEC);
	if (sfd < 0) {
		kerr_errno(err, errno, "cannot follow signals");
		goto out;
	}
	if (send_request(fd, &req, err) < 0)
		goto out;
	for (;;) {
		struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
		char line[1200];
		ssize_t got;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			kerr_errno(err, errno, "cannot wait for the daemon");
			goto out;
		}
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				int len = snprintf(line, sizeof(line), "signal %u\n", si.ssi_signo);
				if (send(fd, line, (size_t)len, MSG_NOSIGNAL) < 0 &&
				    errno != EINTR) {
					kerr_errno(err, errno, "lost the daemon");
					goto out;
				}
			}
		}
		if (!p[0].revents)
			continue;
		got = recv(fd, line, sizeof(line) - 1, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			kerr_set(err, KERR_IO,
			         "the daemon closed the connection before the command "
			         "ended");
			goto out;
		}
		line[got] = '\0';
		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "status %d", exit_status) == 1) {
			r = 0;
			goto out;
		}
		if (!strncmp(line, "error ", 6)) {
			/* Kinds as api_client_call gives them for the same codes. */
			const char *code = line + 6;
			kerr_set(err,
			         !strncmp(code, "AuthFailure", 11) ||
			                 !strncmp(code, "SignatureDoesNotMatch", 21)
			             ? KERR_AUTH
			         : strstr(code, "NotFound") ? KERR_NOT_FOUND
			                                    : KERR_INVALID,
			         "%s", code);
			goto out;
		}
		kerr_set(err, KERR_IO, "the daemon answered '%s'", line);
		goto out;
	}
out:
	/* A signal that came with the end stays pending (the caller exits with the status); one
	 * that came before the command could run ends this process as it would have. */
	if (r < 0)
		sigprocmask(SIG_SETMASK, &old, NULL);
	return r;
}
