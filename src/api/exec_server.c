/* The ExecInstance transport (exec.h): the socket, a thread that accepts, one thread per
 * command. A request is authenticated as every API request is (api_authenticate), the cloud
 * checks the instance and starts the command with the descriptors the client passed. */
#include "api/exec.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api/dispatch.h"
#include "api/exec_internal.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define SESSIONS_MAX       64
#define REQUEST_TIMEOUT_MS 30000 /* from the connection to the request */
#define STOP_GRACE_MS      5000  /* at shutdown, from SIGHUP to giving up on the command */
#define HEADERS_MAX        16

struct session {
	struct api_exec_server *srv;
	int fd;
	pthread_t thread;
	bool done; /* the thread has ended: join it */
	struct session *next;
};

static void reply(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reply(int fd, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (send(fd, line, (size_t)n, MSG_NOSIGNAL) < 0)
		log_event(LOG_LEVEL_DEBUG, NULL, "exec: the client is gone: %s", strerror(errno));
}

static void reply_error(int fd, const struct api_error *e)
{
	/* One line: no newline of the message may end it early. */
	char msg[sizeof(e->message)];
	size_t i;

	for (i = 0; e->message[i] && i + 1 < sizeof(msg); i++)
		msg[i] = e->message[i] == '\n' ? ' ' : e->message[i];
	msg[i] = '\0';
	reply(fd, "error %s: %s", e->code, msg);
}

/* The request and its three descriptors; -1 with e set. buf has API_EXEC_REQUEST_MAX + 1
 * bytes; the request ends in a NUL. */
static int receive(struct api_exec_server *s, int fd, char *buf, size_t *len, int stdio[3],
                   struct api_error *e)
{
	union {
		char space[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = buf, .iov_len = API_EXEC_REQUEST_MAX};
	struct msghdr msg = {.msg_iov = &iov,
	                     .msg_iovlen = 1,
	                     .msg_control = &control,
	                     .msg_controllen = sizeof(control)};
	struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = s->stop_fd, .events = POLLIN}};
	struct cmsghdr *c;
	ssize_t n;
	size_t nfds = 0;
	int r;

	do
		r = poll(p, 2, REQUEST_TIMEOUT_MS);
	while (r < 0 && errno == EINTR);
	if (r <= 0 || (p[1].revents & POLLIN)) {
		api_error_set(e, "RequestTimeout", "no request came");
		return -1;
	}
	do
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int *fds = (int *)(void *)CMSG_DATA(c);
			for (size_t i = 0; i < k; i++) {
				if (nfds < 3)
					stdio[nfds] = fds[i];
				else
					close(fds[i]);
				nfds++;
			}
		}
	if (n <= 0) {
		api_error_set(e, "InvalidRequest", "no request came");
		return -1;
	}
	if (msg.msg_flags & MSG_TRUNC) {
		api_error_set(e, "RequestLimitExceeded", "the request is larger than %zu bytes",
		              API_EXEC_REQUEST_MAX);
		return -1;
	}
	if (nfds != 3 || (msg.msg_flags & MSG_CTRUNC)) {
		api_error_set(e, "InvalidRequest",
		              "the request must carry three descriptors: stdin, stdout, stderr");
		return -1;
	}
	buf[n] = '\0';
	*len = (size_t)n;
	return 0;
}

/* Headers "Name: value\n" up to an empty line, then the body: an API request for POST /. */
static int parse(char *buf, size_t len, struct api_header *headers, struct api_http_request *req,
                 struct api_error *e)
{
	char *p = buf, *end = buf + len;

	*req = (struct api_http_request){
	    .method = "POST", .path = "/", .query = "", .headers = headers, .remote_addr = ""};
	for (;;) {
		char *nl = memchr(p, '\n', (size_t)(end - p)), *colon;
		if (!nl)
			break;
		*nl = '\0';
		if (nl == p) {
			req->body = nl + 1;
			req->body_len = (size_t)(end - (nl + 1));
			return 0;
		}
		colon = strchr(p, ':');
		if (!colon || req->nheaders == HEADERS_MAX)
			break;
		*colon = '\0';
		headers[req->nheaders++] =
		    (struct api_header){p, colon + 1 + strspn(colon + 1, " \t")};
		p = nl + 1;
	}
	api_error_set(e, "InvalidRequest", "the request's headers do not parse");
	return -1;
}

void exec_request_release(struct exec_request *rq)
{
	for (size_t i = 0; rq->argv && rq->argv[i]; i++)
		free(rq->argv[i]);
	free(rq->argv);
	free(rq->account);
	free(rq->region);
	free(rq->id);
	memset(rq, 0, sizeof(*rq));
}

int exec_request_check(struct cloud *cloud, const struct api_http_request *req,
                       struct exec_request *rq, struct api_error *e)
{
	_cleanup_free_ const char **cmd = NULL;
	struct api_params params;
	struct api_sigv4_result auth;
	struct api_call call = {0};
	const char *id = NULL;
	size_t n;
	int r = -1;

	memset(rq, 0, sizeof(*rq));
	api_params_init(&params);
	if (api_authenticate(cloud, req, NULL, &params, &auth, &call, e) < 0)
		goto out;
	if (strcmp(call.action, "ExecInstance")) {
		api_error_invalid_action(e, call.action);
		goto out;
	}
	if (!api_node_str(&call.root, "InstanceId")) {
		api_error_missing_parameter(e, "InstanceId");
		goto out;
	}
	if (api_call_id(&call, "InstanceId", "i", &id, e) < 0)
		goto out;
	n = api_node_strings(&call.root, "Command", &cmd);
	if (!n) {
		api_error_missing_parameter(e, "Command");
		goto out;
	}
	rq->argv = xcalloc(n + 1, sizeof(*rq->argv));
	for (size_t i = 0; i < n; i++)
		rq->argv[i] = xstrdup(cmd[i]);
	rq->account = xstrdup(call.account.id);
	rq->region = xstrdup(call.region);
	rq->id = xstrdup(id);
	r = 0;
out:
	api_params_release(&params);
	return r;
}

int exec_request_run(struct cloud *cloud, const struct exec_request *rq, const int stdio[3],
                     struct cloud_exec **x, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct log_ctx ctx = {.action = "ExecInstance", .account = rq->account, .resource = rq->id};

	if (cloud_instance_exec(cloud, rq->account, rq->region, rq->id, rq->argv, stdio, x, &err) <
	    0) {
		api_error_from_cloud(e, "ExecInstance", err);
		log_event(LOG_LEVEL_INFO, &ctx, "exec refused: %s", e->code);
		return -1;
	}
	log_event(LOG_LEVEL_INFO, &ctx, "exec '%s'", rq->argv[0]);
	return 0;
}

/* Parse, authenticate, check, start: 0 with *x running. */
static int start(struct api_exec_server *s, char *buf, size_t len, const int stdio[3],
                 struct cloud_exec **x, struct api_error *e)
{
	struct api_header headers[HEADERS_MAX];
	struct api_http_request req;
	struct exec_request rq;
	int r;

	if (parse(buf, len, headers, &req, e) < 0 || exec_request_check(s->cloud, &req, &rq, e) < 0)
		return -1;
	r = exec_request_run(s->cloud, &rq, stdio, x, e);
	exec_request_release(&rq);
	return r;
}

/* Until the command ends: signals from the client go to it, a closed connection or the
 * daemon's shutdown give it SIGHUP. */
static void follow(struct api_exec_server *s, int fd, struct cloud_exec *x)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct pollfd p[3] = {{.fd = cloud_exec_fd(x), .events = POLLIN},
	                      {.fd = fd, .events = POLLIN},
	                      {.fd = s->stop_fd, .events = POLLIN}};
	struct timespec now, until = {0};
	int status, timeout = -1;

	for (;;) {
		int r = poll(p, 3, timeout);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || (p[0].revents & (POLLIN | POLLHUP)))
			break;
		if (r == 0) { /* shutdown, and the grace is over: it is left to run alone */
			reply(fd, "error ServiceUnavailable: the daemon stopped before the command "
			          "ended");
			cloud_exec_end(x, NULL, NULL);
			return;
		}
		if (p[1].revents) {
			char msg[64];
			ssize_t n = recv(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT);
			int sig;
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) { /* the client went away: as a terminal's hang-up */
				p[1].fd = -1;
				sig = SIGHUP;
			} else {
				msg[n] = '\0';
				if (sscanf(msg, "signal %d", &sig) != 1)
					continue;
			}
			if (cloud_exec_signal(x, sig, &err) < 0) {
				log_kerr(LOG_LEVEL_DEBUG, NULL, err, "exec: signal %d not sent",
				         sig);
				kerr_free(steal_ptr(err));
			}
		}
		if (p[2].revents & POLLIN) {
			p[2].fd = -1;
			if (cloud_exec_signal(x, SIGHUP, &err) < 0)
				kerr_free(steal_ptr(err));
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_sec += STOP_GRACE_MS / 1000;
		}
		if (until.tv_sec) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			timeout = (int)((until.tv_sec - now.tv_sec) * 1000 +
			                (until.tv_nsec - now.tv_nsec) / 1000000);
			if (timeout < 0)
				timeout = 0;
		}
	}
	if (cloud_exec_end(x, &status, &err) < 0) {
		struct api_error e = {0};
		api_error_from_kerr(&e, err, NULL);
		reply_error(fd, &e);
		return;
	}
	reply(fd, "status %d", status);
}

static void *session_main(void *arg)
{
	struct session *ss = arg;
	struct api_exec_server *s = ss->srv;
	_cleanup_free_ char *buf = xmalloc(API_EXEC_REQUEST_MAX + 1);
	struct api_error e = {0};
	struct cloud_exec *x = NULL;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	int stdio[3] = {-1, -1, -1};
	size_t len = 0;

	/* Whoever runs kiln as root on the host is every account already (docs/guide.md); no one
	 * else gets further, even with an account's keys. */
	if (getsockopt(ss->fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 || cred.uid != 0) {
		api_error_set(&e, "AuthFailure",
		              "only root on the daemon's host runs commands in "
		              "instances");
		reply_error(ss->fd, &e);
	} else if (receive(s, ss->fd, buf, &len, stdio, &e) < 0 ||
	           start(s, buf, len, stdio, &x, &e) < 0) {
		reply_error(ss->fd, &e);
	}
	/* The command has its own copies; the daemon keeps none of the client's terminal. */
	for (size_t i = 0; i < 3; i++)
		if (stdio[i] >= 0)
			close(stdio[i]);
	if (x)
		follow(s, ss->fd, x);
	close(ss->fd);
	pthread_mutex_lock(&s->lock);
	ss->done = true;
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Join the sessions that ended (all of them with everything). */
static void reap(struct api_exec_server *s, bool everything)
{
	for (;;) {
		struct session **at, *ss = NULL;
		pthread_mutex_lock(&s->lock);
		for (at = &s->sessions; *at; at = &(*at)->next)
			if (everything || (*at)->done) {
				ss = *at;
				*at = ss->next;
				s->nsessions--;
				break;
			}
		pthread_mutex_unlock(&s->lock);
		if (!ss)
			return;
		pthread_join(ss->thread, NULL);
		free(ss);
	}
}

static void *accept_main(void *arg)
{
	struct api_exec_server *s = arg;
	struct pollfd p[2] = {{.fd = s->listen_fd, .events = POLLIN},
	                      {.fd = s->stop_fd, .events = POLLIN}};

	for (;;) {
		struct session *ss;
		int fd;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents & POLLIN)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		reap(s, false);
		if (s->nsessions >= SESSIONS_MAX) {
			struct api_error e = {0};
			api_error_set(&e, "RequestLimitExceeded",
			              "%d commands run through the daemon already", SESSIONS_MAX);
			reply_error(fd, &e);
			close(fd);
			continue;
		}
		ss = xcalloc(1, sizeof(*ss));
		ss->srv = s;
		ss->fd = fd;
		pthread_mutex_lock(&s->lock);
		if (pthread_create(&ss->thread, NULL, session_main, ss) != 0) {
			pthread_mutex_unlock(&s->lock);
			close(fd);
			free(ss);
			continue;
		}
		ss->next = s->sessions;
		s->sessions = ss;
		s->nsessions++;
		pthread_mutex_unlock(&s->lock);
	}
	reap(s, true);
	return NULL;
}

int api_exec_start(struct cloud *cloud, const char *path, struct api_exec_server **out,
                   struct kerr **err)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct api_exec_server *s;
	int fd;

	*out = NULL;
	if (strlen(path) >= sizeof(addr.sun_path))
		return kerr_set(err, KERR_INVALID, "the exec socket's path '%s' is too long", path);
	memcpy(addr.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return kerr_errno(err, errno, "cannot make the exec socket");
	/* A socket left by a daemon that did not stop cleanly. */
	if (unlink(path) < 0 && errno != ENOENT) {
		close(fd);
		return kerr_errno(err, errno, "cannot remove the stale '%s'", path);
	}
	/* Without write permission no one connects: the umask's mode is safe until the chmod. */
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || chmod(path, 0600) < 0 ||
	    listen(fd, 16) < 0) {
		int e = errno;
		close(fd);
		unlink(path);
		return kerr_errno(err, e, "cannot listen on '%s'", path);
	}
	s = xcalloc(1, sizeof(*s));
	atomic_init(&s->stopping, false);
	s->cloud = cloud;
	s->path = xstrdup(path);
	s->listen_fd = fd;
	s->stop_fd = eventfd(0, EFD_CLOEXEC);
	pthread_mutex_init(&s->lock, NULL);
	if (s->stop_fd < 0 || pthread_create(&s->thread, NULL, accept_main, s) != 0) {
		kerr_set(err, KERR_INTERNAL, "cannot start the exec socket's thread");
		if (s->stop_fd >= 0)
			close(s->stop_fd);
		close(fd);
		unlink(path);
		pthread_mutex_destroy(&s->lock);
		free(s->path);
		free(s);
		return -1;
	}
	*out = s;
	return 0;
}

void api_exec_shutdown(struct api_exec_server *s)
{
	uint64_t one = 1;

	if (!s || atomic_exchange(&s->stopping, true))
		return;
	/* No new command; those running get SIGHUP (follow) and the grace to end. */
	unlink(s->path);
	if (write(s->stop_fd, &one, sizeof(one)) < 0)
		log_event(LOG_LEVEL_WARNING, NULL, "exec: cannot signal the stop: %s",
		          strerror(errno));
	pthread_join(s->thread, NULL);
}

void api_exec_stop(struct api_exec_server *s)
{
	if (!s)
		return;
	api_exec_shutdown(s);
	close(s->listen_fd);
	close(s->stop_fd);
	pthread_mutex_destroy(&s->lock);
	free(s->path);
	free(s);
}
