/* HTTP server on libmicrohttpd.
 *
 * Threading: one thread per connection (MHD_USE_THREAD_PER_CONNECTION) behind one listening
 * thread, capped by max_connections. Handlers call into the cloud layer, which may block for
 * a while (SQLite commits, fsync, freezing a filesystem); in a fixed pool each MHD thread
 * multiplexes many connections, so one slow handler would stall every client that happens to
 * share its thread. Clients keep few connections alive (boto3's pool holds 10), so a thread each
 * is cheap, and the caps bound it: in total, and per client address, so that one client opening
 * connections and sending nothing (or dribbling a request) cannot take every slot.
 *
 * The raw request-target comes from MHD's URI log callback (MHD unescapes the path it passes to
 * the access handler; SigV4 needs it as sent). */
#include "api/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/xml.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

struct api_http_server {
	struct MHD_Daemon *daemon;
	api_http_handler handle;
	void *ctx;
	size_t max_body;
	unsigned timeout_s;
	uint16_t port;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	unsigned inflight; /* requests between the URI callback and completion */
};

/* One request's state, made by the URI callback and freed on completion. */
struct http_req {
	struct api_http_server *srv;
	char *target; /* raw request-target */
	struct buf body;
	struct timespec start; /* when the request line came (CLOCK_MONOTONIC) */
	size_t discarded;
	bool started;
	bool too_large;
	/* For the request's log line (filled only when info is logged). */
	int status;
	char method[16];
	char action[64];
	char request_id[64];
	char access_key[32];
	/* An upgrade the handler asked for (api_http_response), until it happens. */
	void (*upgrade)(void *ctx, int fd, const char *extra, size_t extra_len);
	void (*upgrade_release)(void *ctx);
	void *upgrade_ctx;
};

const char *api_http_header(const struct api_http_request *req, const char *name)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (!strcasecmp(req->headers[i].name, name))
			return req->headers[i].value;
	return NULL;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct api_http_server *s = cls;
	struct http_req *r = xcalloc(1, sizeof(*r));

	(void)c;
	r->srv = s;
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	r->target = xstrdup(uri ? uri : "/");
	buf_init(&r->body, s->max_body);
	pthread_mutex_lock(&s->lock);
	s->inflight++;
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* The value of name=… in form data (an action name or an access key: letters and digits only). */
static void form_word(const char *data, size_t len, const char *name, char *out, size_t size)
{
	size_t nl = strlen(name), i = 0;

	for (const char *p = data; p && p + nl < data + len;
	     p = memchr(p, '&', (size_t)(data + len - p))) {
		if (*p == '&')
			p++;
		if ((size_t)(data + len - p) > nl && !memcmp(p, name, nl) && p[nl] == '=') {
			for (p += nl + 1;
			     i + 1 < size && p < data + len && isalnum((unsigned char)*p); p++)
				out[i++] = *p;
			break;
		}
	}
	out[i] = '\0';
}

/* What the log line of a request says beside its status: method, action, the caller's access
 * key (from SigV4's Authorization header) and the request id the answer carries. */
static void note_request(struct http_req *r, const struct api_http_request *req,
                         const struct api_http_response *resp)
{
	const struct buf *answer = &resp->body;
	static const char *const id_tags[] = {"<requestId>", "<RequestID>", "<RequestId>"};
	const char *auth = api_http_header(req, "Authorization");
	const char *cred = auth ? strstr(auth, "Credential=") : NULL;

	str_copy(r->method, req->method ? req->method : "", sizeof(r->method));
	form_word(req->query, strlen(req->query), "Action", r->action, sizeof(r->action));
	if (!r->action[0])
		form_word(req->body, req->body_len, "Action", r->action, sizeof(r->action));
	if (cred)
		form_word(cred, strlen(cred), "Credential", r->access_key, sizeof(r->access_key));
	for (size_t i = 0; i < sizeof(id_tags) / sizeof(id_tags[0]) && !r->request_id[0]; i++) {
		const char *at = memmem(answer->data, answer->len, id_tags[i], strlen(id_tags[i]));
		size_t k = 0;
		if (!at)
			continue;
		for (at += strlen(id_tags[i]);
		     k + 1 < sizeof(r->request_id) && at < answer->data + answer->len && *at != '<';
		     at++)
			r->request_id[k++] = *at;
		r->request_id[k] = '\0';
	}
	/* Shared pieces: the request id is the piece after the one ending in its tag. */
	for (size_t i = 0; i + 1 < resp->npieces && !r->request_id[0]; i++) {
		const struct api_http_piece *p = &resp->pieces[i], *next = &resp->pieces[i + 1];
		if (p->len >= 11 &&
		    !memcmp((const char *)p->data + p->len - 11, "<requestId>", 11)) {
			size_t k = next->len < sizeof(r->request_id) - 1
			               ? next->len
			               : sizeof(r->request_id) - 1;
			memcpy(r->request_id, next->data, k);
			r->request_id[k] = '\0';
		}
	}
}

/* One line per request once it is answered (or cut): method, action, status, duration. */
static void log_request(const struct http_req *r, enum MHD_RequestTerminationCode toe)
{
	struct timespec now;
	struct log_ctx ctx = {
	    .request_id = r->request_id, .access_key = r->access_key, .action = r->action};
	long ms;

	if (!log_enabled(LOG_LEVEL_INFO) || !r->started)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (now.tv_sec - r->start.tv_sec) * 1000 + (now.tv_nsec - r->start.tv_nsec) / 1000000;
	log_event(LOG_LEVEL_INFO, &ctx, "%s %d %ldms%s", r->method[0] ? r->method : "-", r->status,
	          ms, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection cut)");
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct api_http_server *s = cls;
	struct http_req *r = *req_cls;

	(void)c;
	if (!r)
		return;
	*req_cls = NULL;
	log_request(r, toe);
	if (r->upgrade_ctx && r->upgrade_release)
		r->upgrade_release(r->upgrade_ctx);
	buf_release(&r->body);
	free(r->target);
	free(r);
	pthread_mutex_lock(&s->lock);
	if (s->inflight && !--s->inflight)
		pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
}

/* The answer's body: body (taken over), or the handler's shared pieces (then released by MHD
 * once sent, or here when no response can be made). */
static struct MHD_Response *make_response(struct buf *body, struct api_http_response *from)
{
	struct MHD_Response *resp;

	if (from && from->npieces) {
		struct MHD_IoVec iov[ARRAY_SIZE(from->pieces)];
		for (size_t i = 0; i < from->npieces; i++)
			iov[i] = (struct MHD_IoVec){from->pieces[i].data, from->pieces[i].len};
		resp = MHD_create_response_from_iovec(iov, (unsigned)from->npieces, from->release,
		                                      from->release_ctx);
		if (!resp && from->release)
			from->release(from->release_ctx);
		from->npieces = 0;
		from->release = NULL;
		return resp;
	}
	size_t len = body->len;
	char *data = buf_detach(body);
	resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (!resp)
		free(data);
	return resp;
}

/* Queue body (taken over, or from's pieces) with status, content type and the further headers;
 * close the connection after it when asked. */
static enum MHD_Result send_buf_with(struct MHD_Connection *c, int status, const char *type,
                                     struct buf *body, struct api_http_response *from,
                                     bool close_after, const struct api_header *headers,
                                     size_t nheaders)
{
	struct MHD_Response *resp = make_response(body, from);
	enum MHD_Result ret;

	if (!resp)
		return MHD_NO;
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES ||
	    (close_after &&
	     MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES)) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	for (size_t i = 0; i < nheaders; i++)
		if (MHD_add_response_header(resp, headers[i].name, headers[i].value) != MHD_YES) {
			MHD_destroy_response(resp);
			return MHD_NO;
		}
	ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Queue body (taken over) with status and content type; close the connection after it when asked.
 */
static enum MHD_Result send_buf(struct MHD_Connection *c, int status, const char *type,
                                struct buf *body, bool close_after)
{
	return send_buf_with(c, status, type, body, NULL, close_after, NULL, 0);
}

static enum MHD_Result send_error(struct MHD_Connection *c, int status, const char *code,
                                  const char *msg, bool close_after)
{
	_cleanup_buf_ struct buf b = BUF_INIT;
	char id[API_REQUEST_ID_LEN + 1];

	api_request_id(id);
	if (api_xml_error(&b, code, msg, id, NULL) < 0)
		return MHD_NO;
	return send_buf(c, status, API_XML_CONTENT_TYPE, &b, close_after);
}

static enum MHD_Result too_large(struct MHD_Connection *c, size_t max)
{
	char msg[128];

	/* 413 with code RequestEntityTooLarge: EC2 has no code of its own for an HTTP body past the
	 * front door's limit; the name says what happened and botocore does not retry a 4xx. */
	snprintf(msg, sizeof(msg), "The request body is larger than the limit of %zu bytes.", max);
	return send_error(c, 413, "RequestEntityTooLarge", msg, true);
}

struct header_vec {
	struct api_header *v;
	size_t n, cap;
};

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
	struct header_vec *h = cls;

	(void)kind;
	if (h->n == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 16;
		h->v = xreallocarray(h->v, h->cap, sizeof(*h->v));
	}
	h->v[h->n++] = (struct api_header){.name = key, .value = value ? value : ""};
	return MHD_YES;
}

/* Split a raw request-target into path and query (in place). "http://host/p?q" (absolute form)
 * keeps only "/p". */
static void split_target(char *t, const char **path, const char **query)
{
	char *q;

	if (!strncasecmp(t, "http://", 7) || !strncasecmp(t, "https://", 8)) {
		char *slash = strchr(strstr(t, "//") + 2, '/');

		if (!slash) {
			q = strchr(t, '?');
			*path = "/";
			*query = q ? q + 1 : "";
			return;
		}
		t = slash;
	}
	q = strchr(t, '?');
	if (q)
		*q++ = '\0';
	*path = t;
	*query = q ? q : "";
}

static void client_addr(struct MHD_Connection *c, char *out, size_t size)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	out[0] = '\0';
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
		          (socklen_t)size);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		          out, (socklen_t)size);
}

/* MHD has sent the 101: the connection is the handler's (thread per connection: we may block). */
static void on_upgrade(void *cls, struct MHD_Connection *c, void *req_cls, const char *extra,
                       size_t extra_len, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct http_req *r = cls;
	void *ctx = r->upgrade_ctx;

	(void)c;
	(void)req_cls;
	r->upgrade_ctx = NULL;
	r->upgrade(ctx, sock, extra, extra_len);
	MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

static enum MHD_Result send_upgrade(struct MHD_Connection *c, struct http_req *r,
                                    const char *protocol)
{
	struct MHD_Response *resp = MHD_create_response_for_upgrade(on_upgrade, r);
	enum MHD_Result ret;

	if (!resp)
		return MHD_NO;
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, protocol) != MHD_YES ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "Upgrade") != MHD_YES) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ret = MHD_queue_response(c, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result dispatch(struct api_http_server *s, struct MHD_Connection *c,
                                struct http_req *r, const char *method)
{
	struct header_vec h = {0};
	struct api_http_request req = {.method = method};
	struct api_http_response resp = {.status = 200};
	char addr[INET6_ADDRSTRLEN];
	enum MHD_Result ret;
	int rc;

	MHD_get_connection_values(c, MHD_HEADER_KIND, add_header, &h);
	split_target(r->target, &req.path, &req.query);
	client_addr(c, addr, sizeof(addr));
	req.headers = h.v;
	req.nheaders = h.n;
	req.body = r->body.data;
	req.body_len = r->body.len;
	req.remote_addr = addr;
	str_copy(resp.content_type, API_XML_CONTENT_TYPE, sizeof(resp.content_type));
	buf_init(&resp.body, BUF_MAX_DEFAULT);

	rc = s->handle(s->ctx, &req, &resp);
	if (resp.upgrade_ctx &&
	    (rc != 0 || resp.status != MHD_HTTP_SWITCHING_PROTOCOLS || !resp.upgrade)) {
		if (resp.upgrade_release)
			resp.upgrade_release(resp.upgrade_ctx);
		resp.upgrade = NULL;
		resp.upgrade_ctx = NULL;
	}
	r->status = rc != 0 || resp.status < 100 || resp.status > 599 ? 500 : resp.status;
	if (log_enabled(LOG_LEVEL_INFO))
		note_request(r, &req, &resp);
	free(h.v);
	if ((rc != 0 || resp.status < 100 || resp.status > 599 ||
	     (resp.status == MHD_HTTP_SWITCHING_PROTOCOLS && resp.upgrade)) &&
	    resp.npieces && resp.release) {
		resp.release(resp.release_ctx);
		resp.npieces = 0;
	}
	if (rc != 0 || resp.status < 100 || resp.status > 599) {
		buf_release(&resp.body);
		return send_error(c, 500, "InternalError", "An internal error has occurred.",
		                  false);
	}
	if (resp.status == MHD_HTTP_SWITCHING_PROTOCOLS && resp.upgrade) {
		buf_release(&resp.body);
		r->upgrade = resp.upgrade;
		r->upgrade_release = resp.upgrade_release;
		r->upgrade_ctx = resp.upgrade_ctx;
		return send_upgrade(c, r, resp.upgrade_protocol);
	}
	ret = send_buf_with(
	    c, resp.status, resp.content_type[0] ? resp.content_type : API_XML_CONTENT_TYPE,
	    &resp.body, &resp, false, resp.headers,
	    resp.nheaders < API_HTTP_RESPONSE_HEADERS_MAX ? resp.nheaders
	                                                  : API_HTTP_RESPONSE_HEADERS_MAX);
	buf_release(&resp.body);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
	struct api_http_server *s = cls;
	struct http_req *r = *req_cls;

	(void)url;
	(void)version;
	if (!r)
		return MHD_NO;
	if (!r->started) {
		const char *cl =
		    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

		r->started = true;
		if (cl) {
			char *end;
			unsigned long long n;

			errno = 0;
			n = strtoull(cl, &end, 10);
			/* Refuse before reading a byte of the body (and before "100 Continue"). */
			if (errno || end == cl || n > s->max_body) {
				r->status = 413;
				str_copy(r->method, method, sizeof(r->method));
				return too_large(c, s->max_body);
			}
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		struct timespec now;

		*upload_data_size = 0;
		/* The idle timeout alone would let a body dribble in forever: cut it. */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - r->start.tv_sec) * 1000 +
		        (now.tv_nsec - r->start.tv_nsec) / 1000000 >
		    (long)s->timeout_s * 1000)
			return MHD_NO;
		if (!r->too_large && buf_add(&r->body, upload_data, n, NULL) == 0)
			return MHD_YES;
		/* A chunked body past the limit: drop what follows and answer 413 at its end, but
		 * cut the connection if the client goes on as long again. */
		r->too_large = true;
		r->discarded += n;
		return r->discarded > s->max_body ? MHD_NO : MHD_YES;
	}
	if (r->too_large) {
		r->status = 413;
		str_copy(r->method, method, sizeof(r->method));
		return too_large(c, s->max_body);
	}
	return dispatch(s, c, r, method);
}

/* "1.2.3.4:80", "[::1]:80", "localhost:80". */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, bool *v6,
                        struct kerr **err)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *h = listen, *port_s;
	size_t hl;
	char *end;
	unsigned long port;

	memset(ss, 0, sizeof(*ss));
	if (!listen || !*listen)
		return kerr_set(err, KERR_INVALID, "empty listen address");
	if (listen[0] == '[') {
		const char *close = strchr(listen, ']');

		if (!close || close[1] != ':')
			return kerr_set(err, KERR_INVALID,
			                "invalid listen address '%s': expected [ADDR]:PORT",
			                listen);
		h = listen + 1;
		hl = (size_t)(close - h);
		port_s = close + 2;
	} else {
		colon = strrchr(listen, ':');
		if (!colon)
			return kerr_set(err, KERR_INVALID,
			                "invalid listen address '%s': expected ADDR:PORT", listen);
		hl = (size_t)(colon - listen);
		port_s = colon + 1;
	}
	if (hl >= sizeof(host))
		return kerr_set(err, KERR_INVALID, "invalid listen address '%s'", listen);
	memcpy(host, h, hl);
	host[hl] = '\0';
	errno = 0;
	port = strtoul(port_s, &end, 10);
	if (!*port_s || *end || errno || port > 65535 || *port_s < '0' || *port_s > '9')
		return kerr_set(err, KERR_INVALID, "invalid port in listen address '%s'", listen);
	if (!strcmp(host, "localhost"))
		str_copy(host, "127.0.0.1", sizeof(host));
	if (listen[0] != '[') {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			return kerr_set(err, KERR_INVALID,
			                "invalid IPv4 address in listen address '%s'", listen);
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*v6 = false;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return kerr_set(err, KERR_INVALID,
			                "invalid IPv6 address in listen address '%s'", listen);
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*v6 = true;
	}
	return 0;
}

int api_http_start(const struct api_http_config *cfg, struct api_http_server **out,
                   struct kerr **err)
{
	struct sockaddr_storage ss;
	struct api_http_server *s;
	const union MHD_DaemonInfo *info;
	pthread_condattr_t ca;
	bool v6 = false;
	unsigned flags;

	if (!cfg->handle)
		return kerr_set(err, KERR_INVALID, "http server needs a handler");
	if (parse_listen(cfg->listen, &ss, &v6, err) < 0)
		return -1;
	s = xcalloc(1, sizeof(*s));
	s->handle = cfg->handle;
	s->ctx = cfg->ctx;
	s->max_body = cfg->max_body ? cfg->max_body : API_HTTP_MAX_BODY_DEFAULT;
	s->timeout_s = cfg->timeout_s ? cfg->timeout_s : API_HTTP_TIMEOUT_DEFAULT;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->idle, &ca);
	pthread_condattr_destroy(&ca);

	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
	        MHD_USE_ITC | MHD_ALLOW_UPGRADE;
	if (v6)
		flags |= MHD_USE_IPv6;
	/* The memory limit holds the request line and headers: long GET query strings need more
	 * than the 32 KiB default. */
	errno = 0;
	s->daemon = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
	    MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)(cfg->max_connections ? cfg->max_connections
	                                    : API_HTTP_MAX_CONNECTIONS_DEFAULT),
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned)(cfg->max_per_ip ? cfg->max_per_ip : API_HTTP_MAX_PER_IP_DEFAULT),
	    MHD_OPTION_CONNECTION_TIMEOUT, s->timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)(128 << 10), MHD_OPTION_END);
	if (!s->daemon) {
		int e = errno;

		pthread_cond_destroy(&s->idle);
		pthread_mutex_destroy(&s->lock);
		free(s);
		if (e)
			return kerr_errno(err, e, "cannot listen on '%s'", cfg->listen);
		return kerr_set(err, KERR_IO, "cannot listen on '%s'", cfg->listen);
	}
	info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : 0;
	*out = s;
	return 0;
}

uint16_t api_http_port(const struct api_http_server *s)
{
	return s->port;
}

void api_http_add_connection(struct api_http_server *s, int fd, const struct sockaddr *sa,
                             socklen_t len)
{
	/* On failure (a limit reached) MHD closes fd. */
	if (MHD_add_connection(s->daemon, fd, sa, len) != MHD_YES)
		log_event(LOG_LEVEL_WARNING, NULL, "a connection was refused: too many");
}

void api_http_stop(struct api_http_server *s, unsigned grace_ms)
{
	struct timespec deadline;
	MHD_socket lfd;

	if (!s)
		return;
	lfd = MHD_quiesce_daemon(s->daemon);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += grace_ms / 1000;
	deadline.tv_nsec += (long)(grace_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->lock);
	while (s->inflight && pthread_cond_timedwait(&s->idle, &s->lock, &deadline) == 0)
		;
	pthread_mutex_unlock(&s->lock);
	MHD_stop_daemon(s->daemon);
	if (lfd != MHD_INVALID_SOCKET)
		close(lfd);
	pthread_cond_destroy(&s->idle);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
