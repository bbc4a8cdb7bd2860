/* Unit tests of src/api/http: a real server on 127.0.0.1 (port 0) with an echo handler, spoken to
 * over plain sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/console.h"
#include "api/http.h"

static atomic_int slow_started;

static int echo(void *ctx, const struct api_http_request *req, struct api_http_response *resp)
{
	const char *t = api_http_header(req, "X-Test");

	(void)ctx;
	switch (api_console_serve(req, resp)) {
	case 1:
		return 0;
	case -1:
		return -1;
	default:
		break;
	}
	if (!strcmp(req->path, "/fail"))
		return -1;
	if (!strcmp(req->path, "/slow")) {
		struct timespec ts = {0, 300 * 1000000L};

		atomic_store(&slow_started, 1);
		nanosleep(&ts, NULL);
	}
	snprintf(resp->content_type, sizeof(resp->content_type), "text/plain");
	if (!strcmp(req->path, "/teapot"))
		resp->status = 418;
	buf_addf(
	    &resp->body,
	    "method=%s\npath=%s\nquery=%s\nx-test=%s\nremote=%s\nnheaders=%zu\nbody=", req->method,
	    req->path, req->query, t ? t : "(none)", req->remote_addr, req->nheaders);
	return buf_add(&resp->body, req->body, req->body_len, NULL);
}

static struct api_http_server *start(size_t max_body)
{
	struct api_http_config cfg = {
	    .listen = "127.0.0.1:0", .handle = echo, .max_body = max_body};
	struct api_http_server *s = NULL;
	struct kerr *err = NULL;

	if (api_http_start(&cfg, &s, &err) < 0)
		fail_msg("cannot start: %s", err->msg);
	assert_int_not_equal(api_http_port(s), 0);
	return s;
}

static int connect_to(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

		assert_true(n > 0);
		data += n;
		len -= (size_t)n;
	}
}

static void send_str(int fd, const char *s)
{
	send_all(fd, s, strlen(s));
}

/* Read until the server closes (or 5 s pass: a failure). */
static size_t read_all(int fd, char *out, size_t size)
{
	size_t got = 0;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 5000) != 1)
			fail_msg("no answer within 5 s (read %zu bytes: %.*s)", got, (int)got, out);
		n = recv(fd, out + got, size - 1 - got, 0);
		if (n < 0 && errno == ECONNRESET)
			break;
		assert_true(n >= 0);
		if (n == 0)
			break;
		got += (size_t)n;
		assert_true(got < size - 1);
	}
	out[got] = '\0';
	return got;
}

static void exchange(uint16_t port, const char *req, char *out, size_t size)
{
	int fd = connect_to(port);

	assert_true(fd >= 0);
	send_all(fd, req, strlen(req));
	read_all(fd, out, size);
	close(fd);
}

static const char *body_of(const char *resp)
{
	const char *b = strstr(resp, "\r\n\r\n");

	assert_non_null(b);
	return b + 4;
}

/* The console's files with their headers (the further headers of a response reach the wire),
 * revalidation, and the routes it owns. */
static void test_console(void **state)
{
	struct api_http_server *s = start(0);
	char resp[262144], req[512], etag[64];
	const char *at;
	size_t n;

	(void)state;
	exchange(api_http_port(s), "GET /console/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	         resp, sizeof(resp));
	assert_non_null(strstr(resp, "HTTP/1.1 200"));
	assert_non_null(strstr(resp, "Content-Type: text/html; charset=utf-8\r\n"));
	assert_non_null(
	    strstr(resp, "Content-Security-Policy: default-src 'none'; script-src 'self';"));
	assert_non_null(strstr(resp, "Cache-Control: no-cache\r\n"));
	assert_non_null(strstr(resp, "X-Content-Type-Options: nosniff\r\n"));
	assert_non_null(strstr(body_of(resp), "<script type=\"module\" src=\"app.js\">"));
	at = strstr(resp, "ETag: ");
	assert_non_null(at);
	n = strcspn(at + 6, "\r");
	assert_true(n > 2 && n < sizeof(etag));
	memcpy(etag, at + 6, n);
	etag[n] = '\0';

	snprintf(req, sizeof(req),
	         "GET /console/index.html HTTP/1.1\r\nHost: x\r\nIf-None-Match: W/\"x\", %s\r\n"
	         "Connection: close\r\n\r\n",
	         etag);
	exchange(api_http_port(s), req, resp, sizeof(resp));
	assert_non_null(strstr(resp, "HTTP/1.1 304"));
	assert_string_equal(body_of(resp), "");

	exchange(api_http_port(s),
	         "GET /console/app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", resp,
	         sizeof(resp));
	assert_non_null(strstr(resp, "HTTP/1.1 200"));
	assert_non_null(strstr(resp, "Content-Type: text/javascript; charset=utf-8\r\n"));
	assert_null(strstr(resp, etag));

	exchange(api_http_port(s), "GET /console HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	         resp, sizeof(resp));
	assert_non_null(strstr(resp, "HTTP/1.1 301"));
	assert_non_null(strstr(resp, "Location: /console/\r\n"));
	exchange(api_http_port(s),
	         "GET /console/none.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", resp,
	         sizeof(resp));
	assert_non_null(strstr(resp, "HTTP/1.1 404"));
	exchange(api_http_port(s),
	         "DELETE /console/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", resp,
	         sizeof(resp));
	assert_non_null(strstr(resp, "HTTP/1.1 405"));
	assert_non_null(strstr(resp, "Allow: GET, HEAD\r\n"));
	/* Paths that merely start with the word are not the console's. */
	exchange(api_http_port(s), "GET /consoles HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	         resp, sizeof(resp));
	assert_non_null(strstr(body_of(resp), "path=/consoles\n"));
	api_http_stop(s, 1000);
}

static void test_get(void **state)
{
	struct api_http_server *s = start(0);
	char resp[8192];
	static const char req[] =
	    "GET /a%20b/c?Action=DescribeRegions&X=%2F+y HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "X-Test:  hello  \r\nConnection: close\r\n\r\n";

	(void)state;
	exchange(api_http_port(s), req, resp, sizeof(resp));
	assert_memory_equal(resp, "HTTP/1.1 200", 12);
	assert_non_null(strcasestr(resp, "Content-Type: text/plain"));
	/* header values as received, less the leading whitespace MHD drops */
	assert_string_equal(body_of(resp),
	                    "method=GET\npath=/a%20b/c\nquery=Action=DescribeRegions&X=%2F+y\n"
	                    "x-test=hello  \nremote=127.0.0.1\nnheaders=3\nbody=");

	/* no query at all; absolute-form target */
	static const char req2[] =
	    "GET http://127.0.0.1/p/q HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
	exchange(api_http_port(s), req2, resp, sizeof(resp));
	assert_non_null(strstr(body_of(resp), "path=/p/q\nquery=\n"));
	api_http_stop(s, 1000);
}

static void test_post(void **state)
{
	struct api_http_server *s = start(64);
	char resp[8192];
	static const char req[] =
	    "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
	    "application/x-www-form-urlencoded\r\n"
	    "Content-Length: 28\r\nConnection: close\r\n\r\nAction=DescribeImages&A=%00b";
	/* exactly at the limit */
	static const char req64[] =
	    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 64\r\nConnection: close\r\n\r\n"
	    "0123456789012345678901234567890123456789012345678901234567890123";
	static const char chunked[] =
	    "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
	    "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";

	(void)state;
	exchange(api_http_port(s), req, resp, sizeof(resp));
	assert_memory_equal(resp, "HTTP/1.1 200", 12);
	assert_non_null(strstr(body_of(resp), "method=POST\npath=/\nquery=\n"));
	assert_non_null(strstr(body_of(resp), "\nbody=Action=DescribeImages&A=%00b"));
	exchange(api_http_port(s), req64, resp, sizeof(resp));
	assert_memory_equal(resp, "HTTP/1.1 200", 12);
	exchange(api_http_port(s), chunked, resp, sizeof(resp));
	assert_memory_equal(resp, "HTTP/1.1 200", 12);
	assert_non_null(strstr(body_of(resp), "\nbody=hello world"));
	api_http_stop(s, 1000);
}

static void test_keepalive(void **state)
{
	struct api_http_server *s = start(0);
	char resp[8192];
	static const char two[] = "GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
	                          "GET /two HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";

	(void)state;
	exchange(api_http_port(s), two, resp, sizeof(resp));
	assert_non_null(strstr(resp, "path=/one\n"));
	assert_non_null(strstr(resp, "path=/two\n"));
	api_http_stop(s, 1000);
}

static void test_too_large(void **state)
{
	struct api_http_server *s = start(1024);
	char resp[8192];
	int fd;
	/* headers only: the server must answer without waiting for the 10 MiB body */
	static const char big[] =
	    "POST / HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\n"
	    "Content-Length: 10485760\r\n\r\n";
	static const char big_expect[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1025\r\n"
	                                 "Expect: 100-continue\r\n\r\n";

	(void)state;
	fd = connect_to(api_http_port(s));
	send_all(fd, big, sizeof(big) - 1);
	read_all(fd, resp, sizeof(resp));
	close(fd);
	assert_memory_equal(resp, "HTTP/1.1 413", 12);
	assert_non_null(strcasestr(resp, "Content-Type: text/xml;charset=UTF-8"));
	assert_non_null(strcasestr(resp, "Connection: close"));
	assert_non_null(strstr(
	    body_of(resp), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>"
	                   "<Code>RequestEntityTooLarge</Code>"));
	assert_non_null(strstr(resp, "<RequestID>"));

	/* with Expect: 100-continue there is no "100 Continue" first */
	fd = connect_to(api_http_port(s));
	send_all(fd, big_expect, sizeof(big_expect) - 1);
	read_all(fd, resp, sizeof(resp));
	close(fd);
	assert_memory_equal(resp, "HTTP/1.1 413", 12);
	assert_null(strstr(resp, "100 Continue"));

	/* a chunked body that grows past the limit */
	fd = connect_to(api_http_port(s));
	send_str(fd, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
	char chunk[700 + 16];
	int n = snprintf(chunk, sizeof(chunk), "2bc\r\n");
	memset(chunk + n, 'x', 700);
	memcpy(chunk + n + 700, "\r\n", 2);
	send_all(fd, chunk, (size_t)n + 702);
	send_all(fd, chunk, (size_t)n + 702);
	send_str(fd, "0\r\n\r\n");
	read_all(fd, resp, sizeof(resp));
	close(fd);
	assert_memory_equal(resp, "HTTP/1.1 413", 12);

	/* the server still works */
	exchange(api_http_port(s), "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", resp,
	         sizeof(resp));
	assert_memory_equal(resp, "HTTP/1.1 200", 12);
	api_http_stop(s, 1000);
}

static void test_handler_status(void **state)
{
	struct api_http_server *s = start(0);
	char resp[8192];

	(void)state;
	exchange(api_http_port(s), "GET /fail HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
	         resp, sizeof(resp));
	assert_memory_equal(resp, "HTTP/1.1 500", 12);
	assert_non_null(strstr(resp, "<Code>InternalError</Code>"));
	exchange(api_http_port(s), "GET /teapot HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
	         resp, sizeof(resp));
	assert_memory_equal(resp, "HTTP/1.1 418", 12);
	api_http_stop(s, 1000);
}

/* Requests MHD refuses itself, or that a client abandons, must not leak their state (ASan). */
static void test_broken_requests(void **state)
{
	struct api_http_server *s = start(1024);
	char resp[8192];
	int fd;

	(void)state;
	exchange(api_http_port(s), "GET / HTTP/1.1\r\nBad header line\r\n\r\n", resp, sizeof(resp));
	assert_memory_equal(resp, "HTTP/1.1 400", 12);
	exchange(api_http_port(s), "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n", resp,
	         sizeof(resp));
	assert_memory_equal(resp, "HTTP/1.1 400", 12);
	/* gone in the middle of the headers, and in the middle of the body */
	fd = connect_to(api_http_port(s));
	send_str(fd, "GET /x HTTP/1.1\r\nHost:");
	close(fd);
	fd = connect_to(api_http_port(s));
	send_str(fd, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nAction=");
	close(fd);
	exchange(api_http_port(s), "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", resp,
	         sizeof(resp));
	assert_memory_equal(resp, "HTTP/1.1 200", 12);
	api_http_stop(s, 2000);
}

static void test_graceful_stop(void **state)
{
	struct api_http_server *s = start(0);
	uint16_t port = api_http_port(s);
	char resp[8192];
	int fd;
	static const char req[] = "GET /slow HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";

	(void)state;
	atomic_store(&slow_started, 0);
	fd = connect_to(port);
	send_all(fd, req, sizeof(req) - 1);
	while (!atomic_load(&slow_started))
		usleep(1000);
	/* the request in progress finishes and is answered; then the port is closed */
	api_http_stop(s, 5000);
	read_all(fd, resp, sizeof(resp));
	close(fd);
	assert_memory_equal(resp, "HTTP/1.1 200", 12);
	assert_non_null(strstr(resp, "path=/slow"));
	assert_int_equal(connect_to(port), -1);
	api_http_stop(NULL, 0);
}

static void test_listen(void **state)
{
	const char *bad[] = {
	    "",     "nonsense", "127.0.0.1", "127.0.0.1:",   "127.0.0.1:99999", "127.0.0.1:x",
	    "[::1", "[::1]80",  "1.2.3:80",  "[1.2.3.4]:80", "127.0.0.1:-1"};
	struct api_http_config cfg = {.handle = echo};
	struct api_http_server *s = NULL, *s2 = NULL;
	struct kerr *err = NULL;
	char listen[64], resp[4096];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg.listen = bad[i];
		assert_int_equal(api_http_start(&cfg, &s, &err), -1);
		assert_int_equal(err->kind, KERR_INVALID);
		kerr_free(err);
		err = NULL;
	}
	/* a port that is taken */
	s = start(0);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", api_http_port(s));
	cfg.listen = listen;
	assert_int_equal(api_http_start(&cfg, &s2, &err), -1);
	kerr_free(err);
	err = NULL;
	api_http_stop(s, 0);
	/* "localhost" and IPv6 loopback (when the host has it) */
	cfg.listen = "localhost:0";
	assert_int_equal(api_http_start(&cfg, &s, &err), 0);
	exchange(api_http_port(s), "GET /l HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", resp,
	         sizeof(resp));
	assert_memory_equal(resp, "HTTP/1.1 200", 12);
	api_http_stop(s, 0);
	cfg.listen = "[::1]:0";
	if (api_http_start(&cfg, &s, &err) == 0) {
		assert_int_not_equal(api_http_port(s), 0);
		api_http_stop(s, 0);
	} else {
		kerr_free(err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get),
	    cmocka_unit_test(test_post),
	    cmocka_unit_test(test_keepalive),
	    cmocka_unit_test(test_console),
	    cmocka_unit_test(test_too_large),
	    cmocka_unit_test(test_handler_status),
	    cmocka_unit_test(test_broken_requests),
	    cmocka_unit_test(test_graceful_stop),
	    cmocka_unit_test(test_listen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
