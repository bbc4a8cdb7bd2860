/* kiln exec over the API's listener (exec.h): the request is checked as on the Unix socket, the
 * answer is 101, and the connection then carries frames (exec_frame.h). The command's stdio are
 * pipes of the daemon's: its stdin is written from the client's frames (never blocking: what
 * the command does not read yet waits here, and the client is not read meanwhile), its stdout
 * and stderr become frames as they come. */
#include "api/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/exec_frame.h"
#include "api/exec_internal.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define STOP_GRACE_MS 5000 /* at shutdown, from SIGHUP to giving up on the command */
#define DRAIN_MS      200  /* after the command's end, how long its output may still come */

struct stream {
	struct api_exec_server *srv;
	struct exec_request rq;
};

static void stream_release(void *ctx)
{
	struct stream *st = ctx;

	exec_request_release(&st->rq);
	free(st);
}

static void send_error(int fd, const struct api_error *e)
{
	char msg[sizeof(e->message) + 128];
	int n = snprintf(msg, sizeof(msg), "%s: %s", e->code, e->message);

	exec_frame_send(fd, EXEC_ERROR, msg, n < 0 ? 0 : (size_t)n);
}

/* The relay between the client and the command's pipes, until the command ends. */
struct relay {
	int sock, in, out, err; /* in: the command's stdin (ours to write); -1 once closed */
	struct exec_frames frames;
	uint8_t pending[EXEC_FRAME_MAX + 1]; /* stdin the command has not taken yet */
	size_t npending, off;
	bool in_end;      /* the client's stdin ended: close in once pending is written */
	bool client_gone; /* the connection closed: SIGHUP sent, nothing more read */
};

static void signal_command(struct cloud_exec *x, int sig)
{
	_cleanup_kerr_ struct kerr *err = NULL;

	if (cloud_exec_signal(x, sig, &err) < 0)
		log_kerr(LOG_LEVEL_DEBUG, NULL, err, "exec: signal %d not sent", sig);
}

static void close_in(struct relay *r)
{
	if (r->in >= 0)
		close(r->in);
	r->in = -1;
}

static void hang_up(struct relay *r, struct cloud_exec *x)
{
	r->client_gone = true;
	signal_command(x, SIGHUP);
	close_in(r);
}

/* The frames the client sent, acted on in order while no stdin waits for the command. */
static void take_frames(struct relay *r, struct cloud_exec *x)
{
	size_t len;
	char type;
	bool bad;

	while (!r->npending && !r->client_gone) {
		if (!exec_frames_take(&r->frames, &type, r->pending, &len, &bad)) {
			if (bad)
				hang_up(r, x);
			return;
		}
		switch (type) {
		case EXEC_STDIN:
			if (r->in >= 0 && len) {
				r->npending = len;
				r->off = 0;
			}
			break;
		case EXEC_STDIN_END:
			r->in_end = true;
			break;
		case EXEC_SIGNAL: {
			char *end;
			long sig = strtol((char *)r->pending, &end, 10);
			if (len && !*end && sig > 0 && sig < 65)
				signal_command(x, (int)sig);
			break;
		}
		default:
			break;
		}
	}
}

static void from_client(struct relay *r, struct cloud_exec *x)
{
	ssize_t n = exec_frames_fill(&r->frames, r->sock);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) { /* the client went away: as a terminal's hang-up */
		hang_up(r, x);
		return;
	}
	take_frames(r, x);
}

static void to_command(struct relay *r)
{
	while (r->npending) {
		ssize_t n = write(r->in, r->pending + r->off, r->npending);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) { /* the command closed its stdin: what it did not read is dropped */
			r->npending = 0;
			close_in(r);
			return;
		}
		r->off += (size_t)n;
		r->npending -= (size_t)n;
	}
}

/* One read of an output pipe, sent as a frame; false at its end. */
static bool forward(struct relay *r, int *fd, enum exec_frame_type type)
{
	static _Thread_local uint8_t buf[EXEC_FRAME_MAX];
	ssize_t n = read(*fd, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0) {
		close(*fd);
		*fd = -1;
		return false;
	}
	if (!r->client_gone && exec_frame_send(r->sock, type, buf, (size_t)n) < 0)
		r->client_gone = true;
	return true;
}

static int ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int)((now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000);
}

static void relay(struct api_exec_server *s, struct relay *r, struct cloud_exec *x)
{
	struct timespec stop_at = {0}, ended_at = {0};
	bool ended = false;

	for (;;) {
		struct pollfd p[5] = {
		    {.fd = r->client_gone || r->npending ? -1 : r->sock, .events = POLLIN},
		    {.fd = r->npending ? r->in : -1, .events = POLLOUT},
		    {.fd = r->out, .events = POLLIN},
		    {.fd = r->err, .events = POLLIN},
		    {.fd = ended || stop_at.tv_sec ? -1 : s->stop_fd, .events = POLLIN},
		};
		struct pollfd done = {.fd = ended ? -1 : cloud_exec_fd(x), .events = POLLIN};
		struct pollfd all[6];
		int timeout = -1, n;

		if (ended && r->out < 0 && r->err < 0)
			break;
		if (ended)
			timeout = DRAIN_MS - ms_since(&ended_at);
		else if (stop_at.tv_sec)
			timeout = STOP_GRACE_MS - ms_since(&stop_at);
		if (timeout != -1 && timeout < 0)
			timeout = 0;
		memcpy(all, p, sizeof(p));
		all[5] = done;
		n = poll(all, 6, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (n == 0) { /* the drain or the grace is over */
			if (!ended) {
				send_error(r->sock, &(struct api_error){
				                        .code = "ServiceUnavailable",
				                        .message = "the daemon stopped before "
				                                   "the command ended"});
				cloud_exec_end(x, NULL, NULL);
				return;
			}
			break;
		}
		if (all[2].revents)
			forward(r, &r->out, EXEC_STDOUT);
		if (all[3].revents)
			forward(r, &r->err, EXEC_STDERR);
		if (all[0].revents)
			from_client(r, x);
		if (all[1].revents || r->npending) {
			to_command(r);
			take_frames(r, x);
		}
		if (r->in_end && !r->npending)
			close_in(r);
		if (all[4].revents & POLLIN) {
			signal_command(x, SIGHUP);
			clock_gettime(CLOCK_MONOTONIC, &stop_at);
		}
		if (all[5].revents & (POLLIN | POLLHUP)) {
			ended = true;
			clock_gettime(CLOCK_MONOTONIC, &ended_at);
		}
	}
	{
		_cleanup_kerr_ struct kerr *err = NULL;
		struct api_error e = {0};
		char line[32];
		int status, len;

		if (cloud_exec_end(x, &status, &err) < 0) {
			api_error_from_kerr(&e, err, NULL);
			send_error(r->sock, &e);
			return;
		}
		len = snprintf(line, sizeof(line), "%d", status);
		exec_frame_send(r->sock, EXEC_EXIT, line, (size_t)len);
	}
}

/* After the last frame: what the client still sends is read (and dropped) until it closes, or
 * for a second at most; closing with its bytes unread would reset the connection, and a reset
 * can destroy our last frame before the client reads it. */
static void linger(int sock)
{
	char drop[4096];
	struct pollfd p = {.fd = sock, .events = POLLIN};

	shutdown(sock, SHUT_WR);
	while (poll(&p, 1, 1000) > 0 && recv(sock, drop, sizeof(drop), MSG_DONTWAIT) > 0)
		;
}

/* After the 101: the connection is ours until the command has ended. */
static void stream_run(void *ctx, int sock, const char *extra, size_t extra_len)
{
	struct stream *st = ctx;
	struct relay r = {.sock = sock, .in = -1, .out = -1, .err = -1};
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	struct api_error e = {0};
	struct cloud_exec *x = NULL;

	if (extra_len > sizeof(r.frames.buf)) {
		api_error_set(&e, "InvalidRequest", "frames came before the upgrade was answered");
		send_error(sock, &e);
		goto out;
	}
	memcpy(r.frames.buf, extra, extra_len);
	r.frames.have = extra_len;
	/* MHD's sockets do not block; frames are sent whole (reads ask not to block each time). */
	fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) & ~O_NONBLOCK);
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		api_error_set(&e, "InternalError", "cannot make pipes: %s", strerror(errno));
		send_error(sock, &e);
		goto out;
	}
	if (exec_request_run(st->srv->cloud, &st->rq, (const int[3]){in[0], out[1], err[1]}, &x,
	                     &e) < 0) {
		send_error(sock, &e);
		goto out;
	}
	/* The command has its own copies of its ends. */
	close(in[0]);
	close(out[1]);
	close(err[1]);
	in[0] = out[1] = err[1] = -1;
	r.in = in[1];
	r.out = out[0];
	r.err = err[0];
	in[1] = out[0] = err[0] = -1;
	fcntl(r.in, F_SETFL, O_NONBLOCK);
	relay(st->srv, &r, x);
	close_in(&r);
	if (r.out >= 0)
		close(r.out);
	if (r.err >= 0)
		close(r.err);
out:
	linger(sock);
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	stream_release(st);
}

void api_exec_http(struct api_exec_server *s, const struct api_http_request *req,
                   struct api_http_response *resp, const char *request_id)
{
	struct api_error e = {0};
	struct stream *st = xcalloc(1, sizeof(*st));

	st->srv = s;
	if (!s || atomic_load(&s->stopping)) {
		api_error_set(&e, "ServiceUnavailable", "the daemon is stopping");
	} else if (strcmp(api_http_header(req, "Upgrade"), API_EXEC_UPGRADE)) {
		api_error_set(&e, "InvalidRequest", "the only upgrade is to '%s'",
		              API_EXEC_UPGRADE);
	} else if (exec_request_check(s->cloud, req, &st->rq, &e) == 0) {
		resp->status = 101;
		resp->upgrade_protocol = API_EXEC_UPGRADE;
		resp->upgrade = stream_run;
		resp->upgrade_release = stream_release;
		resp->upgrade_ctx = st;
		return;
	}
	stream_release(st);
	buf_reset(&resp->body);
	resp->status = e.status ? e.status : 400;
	if (api_error_render(&e, request_id, &resp->body, NULL) < 0)
		resp->status = 500;
}
