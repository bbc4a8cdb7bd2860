/* The web console: its files (src/console), embedded in the binary at build time, answered on the
 * API's listener under /console/. The page calls the API like any client (SigV4 in the browser);
 * nothing here knows of accounts or EC2. */
#ifndef KILN_API_CONSOLE_H
#define KILN_API_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

#include "api/http.h"

/* One embedded file (the build generates the table, cmake/embed_console.cmake). */
struct api_console_asset {
	const char *path; /* "/console/app.js" */
	const char *content_type;
	const char *etag; /* "\"<16 hex of its SHA-256>\"" */
	const unsigned char *data;
	size_t len;
};

extern const struct api_console_asset api_console_assets[];
extern const size_t api_console_nassets;

/* The prefix the console owns. */
#define API_CONSOLE_PREFIX "/console"

/* 1 when req's path is the console's: resp is then filled (the file, 304 when the client's copy
 * is current, a redirect from /console to /console/, 404, or 405 for methods other than GET and
 * HEAD). 0 for every other path: the request is the API's. -1 when the answer could not be
 * built (500). */
int api_console_serve(const struct api_http_request *req, struct api_http_response *resp);

#endif
