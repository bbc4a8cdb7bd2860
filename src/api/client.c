/* The API client: sign, send, parse. */
#include "client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/http.h"
#include "api/sigv4.h"
#include "util/sigv4.h"
#include "util/cleanup.h"
#include "util/hash.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define API_VERSION       "2016-11-15"
#define RESPONSE_MAX      ((size_t)64 << 20)
#define CLIENT_READ_BYTES (512L << 10) /* libcurl reads at most this much a call */

struct api_client {
	CURL *curl;
	char *endpoint, *host, *region, *access_key, *secret_key, *service;
};

static void add_encoded(struct buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~')
			buf_addf(b, "%c", *p);
		else
			buf_addf(b, "%%%02X", *p);
	}
}

void api_args_init(struct api_args *a, const char *action)
{
	buf_init(&a->body, (size_t)1 << 20); /* the server reads no more */
	buf_addstr(&a->body, "Action=");
	add_encoded(&a->body, action);
	buf_addstr(&a->body, "&Version=" API_VERSION);
}

void api_args_add(struct api_args *a, const char *name, const char *value)
{
	buf_addstr(&a->body, "&");
	add_encoded(&a->body, name);
	buf_addstr(&a->body, "=");
	add_encoded(&a->body, value);
}

void api_args_addf(struct api_args *a, const char *name, const char *fmt, ...)
{
	_cleanup_free_ char *value = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&value, fmt, ap) < 0)
		value = NULL;
	va_end(ap);
	api_args_add(a, name, value ? value : "");
}

void api_args_list(struct api_args *a, const char *prefix, char *const *values, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char name[128];
		snprintf(name, sizeof(name), "%s.%zu", prefix, i + 1);
		api_args_add(a, name, values[i]);
	}
}

void api_args_release(struct api_args *a)
{
	buf_release(&a->body);
}

/* libcurl's global state, set up once for the process (not thread-safe itself). */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_ready;

static void curl_setup(void)
{
	curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int api_client_open(const struct api_client_config *cfg, struct api_client **out, struct kerr **err)
{
	struct api_client *c;
	const char *host;

	if (strncmp(cfg->endpoint, "http://", 7) && strncmp(cfg->endpoint, "https://", 8))
		return kerr_set(err, KERR_INVALID,
		                "the endpoint '%s' is not an http:// or https:// URL",
		                cfg->endpoint);
	pthread_once(&curl_once, curl_setup);
	if (curl_ready != CURLE_OK)
		return kerr_set(err, KERR_INTERNAL, "cannot initialize libcurl");
	c = xcalloc(1, sizeof(*c));
	c->curl = curl_easy_init();
	if (!c->curl) {
		free(c);
		return kerr_set(err, KERR_INTERNAL, "cannot initialize libcurl");
	}
	c->endpoint = xstrdup(cfg->endpoint);
	host = strstr(c->endpoint, "://") + 3;
	c->host = xasprintf("%.*s", (int)strcspn(host, "/"), host);
	c->region = xstrdup(cfg->region);
	c->access_key = xstrdup(cfg->access_key);
	c->secret_key = xstrdup(cfg->secret_key);
	c->service = xstrdup(cfg->service ? cfg->service : "ec2");
	*out = c;
	return 0;
}

const char *api_client_region(const struct api_client *c)
{
	return c->region;
}

const char *api_client_endpoint(const struct api_client *c)
{
	return c->endpoint;
}

void api_client_close(struct api_client *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl);
	free(c->endpoint);
	free(c->host);
	free(c->region);
	free(c->access_key);
	free(c->secret_key);
	free(c->service);
	free(c);
}

/* The Authorization header of a POST of body, signed now. */
static int sign(struct api_client *c, const struct buf *body, char amz_date[17],
                char **authorization, struct kerr **err)
{
	static const char ctype[] = "application/x-www-form-urlencoded; charset=utf-8";
	_cleanup_buf_ struct buf canonical = BUF_INIT;
	_cleanup_free_ char *to_sign = NULL;
	struct api_sigv4_auth auth = {0};
	struct api_header headers[3];
	struct api_http_request req = {
	    .method = "POST", .path = "/", .query = "", .headers = headers, .nheaders = 3};
	uint8_t digest[HASH_LEN];
	char payload[2 * HASH_LEN + 1], canon_hash[2 * HASH_LEN + 1], signature[65];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(amz_date, 17, "%Y%m%dT%H%M%SZ", &tm);
	headers[0] = (struct api_header){"Content-Type", ctype};
	headers[1] = (struct api_header){"Host", c->host};
	headers[2] = (struct api_header){"X-Amz-Date", amz_date};
	req.body = body->data;
	req.body_len = body->len;
	str_copy(auth.date, amz_date, sizeof(auth.date));
	str_copy(auth.region, c->region, sizeof(auth.region));
	str_copy(auth.service, c->service, sizeof(auth.service));
	str_copy(auth.amz_date, amz_date, sizeof(auth.amz_date));
	str_copy(auth.signed_headers, "content-type;host;x-amz-date", sizeof(auth.signed_headers));
	hash_sha256(body->data, body->len, digest);
	hash_hex(digest, HASH_LEN, payload);
	if (api_sigv4_canonical_request(&req, &auth, payload, &canonical, err) < 0)
		return -1;
	hash_sha256(canonical.data, canonical.len, digest);
	hash_hex(digest, HASH_LEN, canon_hash);
	to_sign = xasprintf("AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amz_date, auth.date,
	                    c->region, c->service, canon_hash);
	sigv4_sign(c->secret_key, auth.date, c->region, c->service, to_sign, signature);
	*authorization = xasprintf(
	    "Authorization: AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, "
	    "SignedHeaders=%s, Signature=%s",
	    c->access_key, auth.date, c->region, c->service, auth.signed_headers, signature);
	return 0;
}

int api_client_signed_headers(struct api_client *c, const struct api_args *a, struct buf *out,
                              struct kerr **err)
{
	_cleanup_free_ char *authorization = NULL;
	char amz_date[17];

	if (sign(c, &a->body, amz_date, &authorization, err) < 0)
		return -1;
	buf_addf(out,
	         "Content-Type: application/x-www-form-urlencoded; charset=utf-8\nHost: %s\n"
	         "X-Amz-Date: %s\n%s\n",
	         c->host, amz_date, authorization);
	return 0;
}

/* Where an answer's bytes go: the first keep into body, all of them counted. */
struct sink {
	struct buf *body;
	size_t keep;
	size_t received;
};

static size_t on_data(char *data, size_t size, size_t n, void *ctx)
{
	struct sink *s = ctx;
	size_t len = size * n, room = s->keep > s->body->len ? s->keep - s->body->len : 0;

	s->received += len;
	if (room && buf_add(s->body, data, len < room ? len : room, NULL) < 0)
		return 0;
	return len;
}

int api_client_send(struct api_client *c, const struct api_args *a, long *status, struct buf *body,
                    struct kerr **err)
{
	return api_client_send_head(c, a, SIZE_MAX, status, body, NULL, err);
}

int api_client_send_head(struct api_client *c, const struct api_args *a, size_t keep, long *status,
                         struct buf *body, size_t *received, struct kerr **err)
{
	struct sink sink = {.body = body, .keep = keep};
	_cleanup_free_ char *authorization = NULL, *date_header = NULL;
	struct curl_slist *headers = NULL;
	char amz_date[17];
	CURLcode rc;

	if (sign(c, &a->body, amz_date, &authorization, err) < 0)
		return -1;
	date_header = xasprintf("X-Amz-Date: %s", amz_date);
	headers = curl_slist_append(
	    headers, "Content-Type: application/x-www-form-urlencoded; charset=utf-8");
	headers = curl_slist_append(headers, date_header);
	headers = curl_slist_append(headers, authorization);
	headers = curl_slist_append(headers, "Expect:");
	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, c->endpoint);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, a->body.data);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)a->body.len);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &sink);
	/* A whole-list answer is megabytes: with libcurl's 16 KiB a read, one answer costs a few
	 * hundred recv and poll calls; 512 KiB reads take what the socket holds at once. */
	curl_easy_setopt(c->curl, CURLOPT_BUFFERSIZE, CLIENT_READ_BYTES);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	rc = curl_easy_perform(c->curl);
	curl_slist_free_all(headers);
	if (received)
		*received = sink.received;
	if (rc != CURLE_OK)
		return kerr_set(err, KERR_IO, "cannot reach %s: %s (is `kiln serve` running?)",
		                c->endpoint, curl_easy_strerror(rc));
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
	return 0;
}

int api_client_call(struct api_client *c, const struct api_args *a, struct xml_node **doc,
                    struct api_client_error *ec, struct kerr **err)
{
	_cleanup_buf_ struct buf resp = BUF_INIT;
	struct xml_node *root = NULL;
	long status = 0;

	*doc = NULL;
	buf_init(&resp, RESPONSE_MAX);
	if (api_client_send(c, a, &status, &resp, err) < 0)
		return -1;
	if (status != 200)
		return api_client_answer_error(c, status, resp.data, resp.len, ec, err);
	if (xml_parse(resp.data, resp.len, &root, err) < 0)
		return kerr_wrap(err, "HTTP %ld from %s", status, c->endpoint);
	*doc = root;
	return 0;
}

int api_client_answer_error(const struct api_client *c, long status, const char *body, size_t len,
                            struct api_client_error *ec, struct kerr **err)
{
	struct xml_node *root = NULL;
	const char *code, *msg;
	enum kerr_kind kind;

	if (xml_parse(body, len, &root, err) < 0)
		return kerr_wrap(err, "HTTP %ld from %s", status, c->endpoint);
	code = xml_text(root, "Errors/Error/Code", "HTTP error");
	msg = xml_text(root, "Errors/Error/Message", "");
	kind = status == 401 || status == 403 ? KERR_AUTH
	       : strstr(code, "NotFound")     ? KERR_NOT_FOUND
	       : status >= 500                ? KERR_IO
	                                      : KERR_INVALID;
	if (ec) {
		ec->status = (int)status;
		str_copy(ec->code, code, sizeof(ec->code));
	}
	kerr_set(err, kind, "%s: %s", code, msg);
	xml_free(root);
	return -1;
}
