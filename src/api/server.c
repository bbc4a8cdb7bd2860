/* The EC2 API server: the HTTP listener with its limits, a request id per request, the response
 * cache, and the error document when dispatch fails. The web console's files are answered on the
 * same listener, under /console/ (console.c). */
#include "api/server.h"

#include <stdlib.h>
#include <string.h>

#include "api/cache.h"
#include "api/catalog.h"
#include "api/console.h"
#include "api/dispatch.h"
#include "api/exec.h"
#include "api/ratelimit.h"
#include "api/http.h"
#include "api/json_proto.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

struct api_server {
	struct cloud *cloud;
	struct api_exec_server *exec; /* kiln exec's upgrades go there */
	struct api_http_server *http;
	struct api_cache *cache;
	struct api_ratelimit *limits; /* NULL: none */
};

#define CACHE_BYTES      ((size_t)64 << 20)
#define CACHE_MAX_AGE_MS 1000

/* A kept answer goes out as it is kept, shared by every request that gets it: the bytes before
 * and after its request id, and this request's id between them. */
struct kept {
	struct api_cache_answer *answer;
	char request_id[API_REQUEST_ID_LEN];
};

static void kept_release(void *ctx)
{
	struct kept *k = ctx;

	api_cache_answer_release(k->answer);
	free(k);
}

static void send_kept(struct api_http_response *resp, struct api_cache_answer *a,
                      const char *request_id)
{
	struct kept *k = xmalloc(sizeof(*k));
	size_t len, at;
	const char *body = api_cache_answer_body(a, &len, &at);

	k->answer = a;
	memcpy(k->request_id, request_id, API_REQUEST_ID_LEN);
	resp->pieces[0] = (struct api_http_piece){body, at};
	resp->pieces[1] = (struct api_http_piece){k->request_id, API_REQUEST_ID_LEN};
	resp->pieces[2] =
	    (struct api_http_piece){body + at + API_REQUEST_ID_LEN, len - at - API_REQUEST_ID_LEN};
	resp->npieces = 3;
	resp->release = kept_release;
	resp->release_ctx = k;
}

static int handle(void *ctx, const struct api_http_request *req, struct api_http_response *resp)
{
	struct api_server *s = ctx;
	struct api_error e = {0};
	struct api_cache_answer *hit;
	char request_id[API_REQUEST_ID_LEN + 1];
	int r;

	api_request_id(request_id);
	switch (api_console_serve(req, resp)) {
	case 1:
		return 0;
	case -1:
		return -1;
	default:
		break;
	}
	if (api_http_header(req, "Upgrade")) {
		api_exec_http(s->exec, req, resp, request_id);
		return 0;
	}
	if (api_catalog_request(req)) {
		api_catalog_serve(s->cloud, req, resp);
		return 0;
	}
	r = api_dispatch(s->cloud, s->cache, s->limits, req, &resp->body, &hit, request_id, &e);
	if (e.protocol == API_PROTOCOL_JSON)
		str_copy(resp->content_type, API_JSON_CONTENT_TYPE, sizeof(resp->content_type));
	if (r == 0) {
		resp->status = 200;
		if (hit)
			send_kept(resp, hit, request_id);
		return 0;
	}
	buf_reset(&resp->body);
	resp->status = e.status;
	return api_error_render(&e, request_id, &resp->body, NULL) < 0 ? -1 : 0;
}

int api_server_start(struct cloud *cloud, const struct api_http_config *http,
                     const struct api_rate_limits *limits, struct api_exec_server *exec,
                     struct api_server **out, struct kerr **err)
{
	struct api_server *s = xcalloc(1, sizeof(*s));
	struct api_http_config cfg = *http;

	cfg.handle = handle;
	cfg.ctx = s;

	s->cloud = cloud;
	s->exec = exec;
	s->cache = api_cache_new(CACHE_BYTES, CACHE_MAX_AGE_MS);
	s->limits = limits ? api_ratelimit_new(limits) : NULL;
	if (api_http_start(&cfg, &s->http, err) < 0) {
		api_ratelimit_free(s->limits);
		api_cache_free(s->cache);
		free(s);
		return -1;
	}
	*out = s;
	return 0;
}

uint16_t api_server_port(const struct api_server *s)
{
	return api_http_port(s->http);
}

void api_server_add_connection(struct api_server *s, int fd, const struct sockaddr *sa,
                               socklen_t len)
{
	api_http_add_connection(s->http, fd, sa, len);
}

void api_server_stop(struct api_server *s)
{
	if (!s)
		return;
	api_http_stop(s->http, 5000);
	api_cache_free(s->cache);
	api_ratelimit_free(s->limits);
	free(s);
}
