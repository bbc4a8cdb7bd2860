/* The HTTP/1.1 front door of the API, on libmicrohttpd: it hands each complete request (raw path
 * and query, headers as received, body) to one callback and sends back what the callback built.
 * It knows nothing of EC2 beyond answering its own refusals (body too large) in EC2's XML. */
#ifndef KILN_API_HTTP_H
#define KILN_API_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util/buf.h"
#include "util/kerr.h"

struct api_header {
	const char *name;  /* as received (any case) */
	const char *value; /* as received, leading whitespace dropped */
};

struct api_http_request {
	const char *method;
	const char *path;                 /* raw, still percent-encoded, without the query */
	const char *query;                /* raw, after '?' ("" when none) */
	const struct api_header *headers; /* in the order received; repeated names repeat */
	size_t nheaders;
	const char *body; /* NUL-terminated; body_len bytes (may hold NULs) */
	size_t body_len;
	const char *remote_addr; /* "127.0.0.1", or "" */
};

#define API_HTTP_RESPONSE_HEADERS_MAX 8

struct api_http_response {
	int status;             /* 200 when the handler leaves it */
	char content_type[128]; /* "text/xml;charset=UTF-8" when the handler leaves it */
	struct buf body;
	/* Instead of body, when npieces: bytes shared with other answers, sent in this order
	 * without a copy; release(release_ctx) is called once they are no longer needed (sent,
	 * or the connection gone), also when the answer cannot be sent at all. */
	struct api_http_piece {
		const void *data;
		size_t len;
	} pieces[3];
	size_t npieces;
	void (*release)(void *ctx);
	void *release_ctx;
	/* Further headers of the answer (static strings: names and values must outlive the call),
	 * e.g. the console's Cache-Control, ETag and Content-Security-Policy. */
	struct api_header headers[API_HTTP_RESPONSE_HEADERS_MAX];
	size_t nheaders;
	/* HTTP Upgrade: a handler that sets upgrade gets the answer 101 with "Upgrade:
	 * upgrade_protocol", and then the connection: upgrade runs on the connection's own thread
	 * (it may block) with the socket and any bytes the client sent after its request, owns
	 * upgrade_ctx, and the socket is closed when it returns. When the client is gone before
	 * the 101 is sent, upgrade_release frees upgrade_ctx instead. */
	const char *upgrade_protocol;
	void (*upgrade)(void *ctx, int fd, const char *extra, size_t extra_len);
	void (*upgrade_release)(void *ctx);
	void *upgrade_ctx;
};

/* Return 0 after filling resp; anything else answers 500 InternalError (EC2 XML). Called from
 * several threads at once; req and everything it points to live only during the call. */
typedef int (*api_http_handler)(void *ctx, const struct api_http_request *req,
                                struct api_http_response *resp);

/* Slow clients cannot starve the others: each address holds at most max_per_ip of the
 * max_connections (further ones are closed at once); a connection idle for timeout_s is closed,
 * and so is one whose request (line, headers and body) has not all arrived timeout_s after its
 * request line. */
struct api_http_config {
	const char *listen; /* "127.0.0.1:8773", "[::1]:8773", "0.0.0.0:0" (port 0: any free) */
	api_http_handler handle;
	void *ctx;
	size_t max_body;          /* 0: API_HTTP_MAX_BODY_DEFAULT */
	unsigned max_connections; /* 0: API_HTTP_MAX_CONNECTIONS_DEFAULT */
	unsigned max_per_ip;      /* 0: API_HTTP_MAX_PER_IP_DEFAULT */
	unsigned timeout_s;       /* 0: API_HTTP_TIMEOUT_DEFAULT */
};

#define API_HTTP_MAX_BODY_DEFAULT        ((size_t)1 << 20)
#define API_HTTP_MAX_CONNECTIONS_DEFAULT 256
#define API_HTTP_MAX_PER_IP_DEFAULT      32
#define API_HTTP_TIMEOUT_DEFAULT         30

struct api_http_server;

/* Bind, listen and start serving in background threads. */
int api_http_start(const struct api_http_config *cfg, struct api_http_server **out,
                   struct kerr **err) __attribute__((warn_unused_result));
/* The port actually bound (the chosen one when the config said 0). */
uint16_t api_http_port(const struct api_http_server *s);
/* Serve a connection accepted elsewhere (a listener inside a VPC: api/listeners.h) as the
 * listener's own, with the same limits; fd is closed when it cannot be. */
void api_http_add_connection(struct api_http_server *s, int fd, const struct sockaddr *sa,
                             socklen_t len);
/* Graceful stop: stop accepting, let requests in progress finish (up to grace_ms), then close
 * every connection and free s. NULL is fine. */
void api_http_stop(struct api_http_server *s, unsigned grace_ms);

/* The first header with this name (case-insensitive), or NULL. */
const char *api_http_header(const struct api_http_request *req, const char *name);

#endif
