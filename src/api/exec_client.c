/* The client of the ExecInstance transport (exec.h): the signed request with this process's
 * stdio, the signals it receives passed on, the command's status or the daemon's refusal. */
#include "api/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/exec_frame.h"
#include "util/cleanup.h"
#include "util/str.h"
#include "util/xalloc.h"
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

/* A stdio descriptor the caller closed is /dev/null for the command (and no socket can take
 * its number). */
static int stdio_open(struct kerr **err)
{
	for (int i = 0; i < 3; i++)
		if (fcntl(i, F_GETFD) < 0 && open("/dev/null", O_RDWR) != i)
			return kerr_errno(err, errno, "cannot open /dev/null");
	return 0;
}

/* The signal the signalfd has for the command, or 0. */
static unsigned next_signal(int sfd)
{
	struct signalfd_siginfo si;

	return read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si) ? si.ssi_signo : 0;
}

/* The daemon's refusal "Code: message" as err, of the kind api_client_call gives the code. */
static void refusal(const char *code, struct kerr **err)
{
	kerr_set(err,
	         !strncmp(code, "AuthFailure", 11) || !strncmp(code, "SignatureDoesNotMatch", 21)
	             ? KERR_AUTH
	         : strstr(code, "NotFound") ? KERR_NOT_FOUND
	                                    : KERR_INVALID,
	         "%s", code);
}

/* The signed ExecInstance request: its header lines, an empty line, its form body. */
static int exec_request(struct api_client *c, const char *id, char *const argv[], struct buf *req,
                        struct kerr **err)
{
	struct api_args a;
	size_t n = 0;

	api_args_init(&a, "ExecInstance");
	api_args_add(&a, "InstanceId", id);
	while (argv[n])
		n++;
	api_args_list(&a, "Command", argv, n);
	if (api_client_signed_headers(c, &a, req, err) < 0) {
		api_args_release(&a);
		return -1;
	}
	buf_addstr(req, "\n");
	buf_addstr(req, a.body.data);
	api_args_release(&a);
	if (req->len > API_EXEC_REQUEST_MAX)
		return kerr_set(err, KERR_LIMIT,
		                "the command is too long (the request is at most %zu "
		                "bytes)",
		                API_EXEC_REQUEST_MAX);
	return 0;
}

/* From here, the signals that would end this process go to the command instead (through
 * the returned signalfd); old gets the mask to restore. */
static int follow_signals(sigset_t *old, struct kerr **err)
{
	sigset_t forward;
	int sfd;

	sigemptyset(&forward);
	sigaddset(&forward, SIGINT);
	sigaddset(&forward, SIGTERM);
	sigaddset(&forward, SIGHUP);
	sigprocmask(SIG_BLOCK, &forward, old);
	sfd = signalfd(-1, &forward, SFD_CLOEXEC);
	if (sfd < 0) {
		sigprocmask(SIG_SETMASK, old, NULL);
		return kerr_errno(err, errno, "cannot follow signals");
	}
	return sfd;
}

int api_exec_run(struct api_client *c, const char *path, const char *id, char *const argv[],
                 int *exit_status, struct kerr **err)
{
	_cleanup_buf_ struct buf req = BUF_INIT;
	_cleanup_close_ int fd = -1, sfd = -1;
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	sigset_t old;
	int r = -1;

	if (strlen(path) >= sizeof(addr.sun_path))
		return kerr_set(err, KERR_INVALID, "the exec socket's path '%s' is too long", path);
	memcpy(addr.sun_path, path, strlen(path) + 1);
	if (stdio_open(err) < 0)
		return -1;
	if (exec_request(c, id, argv, &req, err) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return kerr_errno(err, errno, "cannot make a socket");
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return kerr_errno(err, errno,
		                  "cannot reach the daemon at %s (is `kiln serve` running?)", path);
	sfd = follow_signals(&old, err);
	if (sfd < 0)
		return -1;
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
			unsigned sig = next_signal(sfd);
			if (sig) {
				int len = snprintf(line, sizeof(line), "signal %u\n", sig);
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
			refusal(line + 6, err);
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

/* A TCP connection to the endpoint's host and port (http:// only). */
static int connect_endpoint(const char *endpoint, struct kerr **err)
{
	_cleanup_free_ char *host = NULL;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	const char *p, *port = "80";
	char *colon;
	int fd = -1, rc;

	if (strncmp(endpoint, "http://", 7))
		return kerr_set(err, KERR_INVALID,
		                "kiln exec through the API needs an http:// endpoint, not '%s'",
		                endpoint);
	p = endpoint + 7;
	host = xasprintf("%.*s", (int)strcspn(p, "/"), p);
	if (host[0] == '[') { /* [v6]:port */
		char *end = strchr(host, ']');
		if (!end)
			return kerr_set(err, KERR_INVALID, "bad endpoint '%s'", endpoint);
		*end = '\0';
		if (end[1] == ':')
			port = end + 2;
		memmove(host, host + 1, strlen(host + 1) + 1);
	} else if ((colon = strrchr(host, ':'))) {
		*colon = '\0';
		port = colon + 1;
	}
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0)
		return kerr_set(err, KERR_IO, "cannot reach %s: %s", endpoint, gai_strerror(rc));
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return kerr_errno(err, errno, "cannot reach %s (is `kiln serve` running?)",
		                  endpoint);
	return fd;
}

static int send_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The HTTP request for the upgrade: the signed header lines, its own, the body. */
static void http_request(const struct buf *signed_req, struct buf *out)
{
	const char *p = signed_req->data, *body = strstr(p, "\n\n") + 2;

	buf_addstr(out, "POST / HTTP/1.1\r\n");
	while (p < body - 1) {
		const char *nl = strchr(p, '\n');
		buf_addf(out, "%.*s\r\n", (int)(nl - p), p);
		p = nl + 1;
	}
	buf_addf(out,
	         "Content-Length: %zu\r\nConnection: Upgrade\r\nUpgrade: " API_EXEC_UPGRADE
	         "\r\n\r\n%s",
	         strlen(body), body);
}

/* The answer's head; 101 leaves what followed it in frames; else -1 with the EC2 error. */
static int read_answer(struct api_client *c, int fd, struct exec_frames *frames, struct kerr **err)
{
	_cleanup_buf_ struct buf in = BUF_INIT;
	const char *end = NULL, *cl;
	size_t head, want;
	long status = 0;
	char chunk[4096];

	while (!end) {
		ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return kerr_set(err, KERR_IO, "the daemon closed the connection");
		if (buf_add(&in, chunk, (size_t)n, err) < 0)
			return -1;
		end = strstr(in.data, "\r\n\r\n");
		if (!end && in.len > 65536)
			return kerr_set(err, KERR_IO, "the daemon's answer does not parse");
	}
	head = (size_t)(end - in.data) + 4;
	if (sscanf(in.data, "HTTP/1.%*c %ld", &status) != 1)
		return kerr_set(err, KERR_IO, "the daemon's answer does not parse");
	if (status == 101) {
		if (in.len - head > sizeof(frames->buf))
			return kerr_set(err, KERR_IO, "the daemon sent too much at once");
		memcpy(frames->buf, in.data + head, in.len - head);
		frames->have = in.len - head;
		return 0;
	}
	cl = strcasestr(in.data, "\r\nContent-Length:");
	want = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
	while (in.len - head < want && want < (1u << 20)) {
		ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || buf_add(&in, chunk, (size_t)n, NULL) < 0)
			break;
	}
	return api_client_answer_error(c, status, in.data + head, in.len - head, NULL, err);
}

static int write_all(int fd, const uint8_t *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int api_exec_run_remote(struct api_client *c, const char *id, char *const argv[], int *exit_status,
                        struct kerr **err)
{
	_cleanup_buf_ struct buf req = BUF_INIT, http = BUF_INIT;
	_cleanup_close_ int fd = -1, sfd = -1;
	_cleanup_free_ struct exec_frames *frames = xcalloc(1, sizeof(*frames));
	_cleanup_free_ uint8_t *data = xmalloc(EXEC_FRAME_MAX + 1);
	bool in_open = true;
	sigset_t old;
	int r = -1;

	if (stdio_open(err) < 0 || exec_request(c, id, argv, &req, err) < 0)
		return -1;
	http_request(&req, &http);
	fd = connect_endpoint(api_client_endpoint(c), err);
	if (fd < 0)
		return -1;
	sfd = follow_signals(&old, err);
	if (sfd < 0)
		return -1;
	if (send_all(fd, http.data, http.len) < 0) {
		kerr_errno(err, errno, "cannot send the command to the daemon");
		goto out;
	}
	if (read_answer(c, fd, frames, err) < 0)
		goto out;
	for (;;) {
		struct pollfd p[3] = {{.fd = fd, .events = POLLIN},
		                      {.fd = sfd, .events = POLLIN},
		                      {.fd = in_open ? STDIN_FILENO : -1, .events = POLLIN}};
		size_t len;
		ssize_t n;
		char type;
		bool bad;

		while (exec_frames_take(frames, &type, data, &len, &bad)) {
			switch (type) {
			case EXEC_STDOUT:
			case EXEC_STDERR:
				/* A closed stdout loses what comes, as it would for a pipe. */
				write_all(type == EXEC_STDOUT ? STDOUT_FILENO : STDERR_FILENO, data,
				          len);
				break;
			case EXEC_EXIT:
				*exit_status = (int)strtol((char *)data, NULL, 10);
				r = 0;
				goto out;
			case EXEC_ERROR:
				refusal((char *)data, err);
				goto out;
			default:
				break;
			}
		}
		if (bad) {
			kerr_set(err, KERR_IO, "the daemon sent a frame that does not parse");
			goto out;
		}
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			kerr_errno(err, errno, "cannot wait for the daemon");
			goto out;
		}
		if (p[1].revents & POLLIN) {
			unsigned signo = next_signal(sfd);
			if (signo) {
				char sig[16];
				int sl = snprintf(sig, sizeof(sig), "%u", signo);
				if (exec_frame_send(fd, EXEC_SIGNAL, sig, (size_t)sl) < 0) {
					kerr_errno(err, errno, "lost the daemon");
					goto out;
				}
			}
		}
		if (p[2].revents) {
			n = read(STDIN_FILENO, data, EXEC_FRAME_MAX);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				in_open = false;
				exec_frame_send(fd, EXEC_STDIN_END, "", 0);
			} else if (exec_frame_send(fd, EXEC_STDIN, data, (size_t)n) < 0) {
				in_open = false;
			}
		}
		if (p[0].revents) {
			n = exec_frames_fill(frames, fd);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				kerr_set(
				    err, KERR_IO,
				    "the daemon closed the connection before the command ended");
				goto out;
			}
		}
	}
out:
	/* As api_exec_run: a signal that came with the end stays pending. */
	if (r < 0)
		sigprocmask(SIG_SETMASK, &old, NULL);
	return r;
}
