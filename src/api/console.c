/* The console's files, with headers that keep the page to itself: a Content-Security-Policy that
 * lets it load only its own files and talk only to its own origin, no sniffing, no framing, no
 * referrer. Caching: every answer carries its ETag and "no-cache" (revalidate each time: a new
 * kiln binary brings new files at the same paths, and a revalidation is a 304 of no body). */
#include "api/console.h"

#include <string.h>
#include <strings.h>

#include "util/str.h"
#include "util/banned.h"

#define CSP                                                                                        \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "          \
	"connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

static void add_header(struct api_http_response *resp, const char *name, const char *value)
{
	if (resp->nheaders < API_HTTP_RESPONSE_HEADERS_MAX)
		resp->headers[resp->nheaders++] = (struct api_header){name, value};
}

static void plain(struct api_http_response *resp, int status, const char *text)
{
	resp->status = status;
	str_copy(resp->content_type, "text/plain; charset=utf-8", sizeof(resp->content_type));
	add_header(resp, "X-Content-Type-Options", "nosniff");
	add_header(resp, "Cache-Control", "no-store");
	buf_addstr(&resp->body, text);
}

/* True when the If-None-Match list names etag (or is "*"). */
static bool not_modified(const struct api_http_request *req, const char *etag)
{
	const char *inm = api_http_header(req, "If-None-Match");
	size_t n = strlen(etag);

	if (!inm)
		return false;
	if (!strcmp(inm, "*"))
		return true;
	for (const char *p = strstr(inm, etag); p; p = strstr(p + 1, etag))
		if ((p == inm || p[-1] == ' ' || p[-1] == ',' || p[-1] == '/') &&
		    (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
			return true;
	return false;
}

int api_console_serve(const struct api_http_request *req, struct api_http_response *resp)
{
	size_t pl = strlen(API_CONSOLE_PREFIX);
	const struct api_console_asset *a = NULL;
	char path[256];

	if (strncmp(req->path, API_CONSOLE_PREFIX, pl) ||
	    (req->path[pl] != '\0' && req->path[pl] != '/'))
		return 0;
	if (strcasecmp(req->method, "GET") && strcasecmp(req->method, "HEAD")) {
		add_header(resp, "Allow", "GET, HEAD");
		plain(resp, 405, "The console answers GET and HEAD only.\n");
		return 1;
	}
	if (req->path[pl] == '\0') {
		add_header(resp, "Location", API_CONSOLE_PREFIX "/");
		plain(resp, 301, "The console is at " API_CONSOLE_PREFIX "/\n");
		return 1;
	}
	if (!strcmp(req->path, API_CONSOLE_PREFIX "/"))
		str_copy(path, API_CONSOLE_PREFIX "/index.html", sizeof(path));
	else
		str_copy(path, req->path, sizeof(path));
	for (size_t i = 0; i < api_console_nassets && !a; i++)
		if (!strcmp(api_console_assets[i].path, path))
			a = &api_console_assets[i];
	if (!a) {
		plain(resp, 404, "No such file in the console.\n");
		return 1;
	}
	add_header(resp, "ETag", a->etag);
	add_header(resp, "Cache-Control", "no-cache");
	add_header(resp, "Content-Security-Policy", CSP);
	add_header(resp, "X-Content-Type-Options", "nosniff");
	add_header(resp, "Referrer-Policy", "no-referrer");
	add_header(resp, "X-Frame-Options", "DENY");
	str_copy(resp->content_type, a->content_type, sizeof(resp->content_type));
	if (not_modified(req, a->etag)) {
		resp->status = 304;
		return 1;
	}
	resp->status = 200;
	return buf_add(&resp->body, a->data, a->len, NULL) < 0 ? -1 : 1;
}
