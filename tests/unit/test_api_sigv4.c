/* Unit tests of src/api/sigv4. The expected signatures and canonical requests were computed
 * independently with Debian's python3-botocore 1.29.27 (botocore.auth.SigV4Auth and
 * SigV4QueryAuth, credentials AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, clock fixed
 * at 2024-01-01T12:00:00Z) and pasted here; the IAM vector is also AWS's published example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "api/errors.h"
#include "api/sigv4.h"
#include "util/sigv4.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define T0     1704110400 /* 2024-01-01T12:00:00Z */
#define FORM   "application/x-www-form-urlencoded; charset=utf-8"

/* When set, AKIDEXAMPLE is a temporary key that takes this session token (expired when
 * token_expired); otherwise it takes none. The token of the last lookup is in seen_token. */
static const char *want_token;
static bool token_expired;
static char seen_token[64];

static enum api_sigv4_status lookup(void *ctx, const char *key, const char *token, char *secret,
                                    size_t size, struct kerr **err)
{
	(void)ctx;
	snprintf(seen_token, sizeof(seen_token), "%s", token ? token : "(none)");
	if (!strcmp(key, "AKIDBROKEN")) {
		kerr_set(err, KERR_IO, "database is locked");
		return API_SIGV4_INTERNAL;
	}
	if (strcmp(key, "AKIDEXAMPLE"))
		return API_SIGV4_UNKNOWN_KEY;
	if (!!want_token != !!token || (token && strcmp(token, want_token)))
		return API_SIGV4_TOKEN_INVALID;
	if (token && token_expired)
		return API_SIGV4_TOKEN_EXPIRED;
	snprintf(secret, size, "%s", SECRET);
	return API_SIGV4_OK;
}

struct req {
	struct api_header h[16];
	struct api_http_request r;
};

static void req_init(struct req *q, const char *method, const char *path, const char *query,
                     const char *body)
{
	memset(q, 0, sizeof(*q));
	q->r.method = method;
	q->r.path = path;
	q->r.query = query;
	q->r.body = body;
	q->r.body_len = strlen(body);
	q->r.headers = q->h;
}

static void req_header(struct req *q, const char *name, const char *value)
{
	q->h[q->r.nheaders++] = (struct api_header){name, value};
}

/* Replace the value of the first header called name. */
static void req_set(struct req *q, const char *name, const char *value)
{
	for (size_t i = 0; i < q->r.nheaders; i++)
		if (!strcmp(q->h[i].name, name)) {
			q->h[i].value = value;
			return;
		}
	fail_msg("no header %s", name);
}

static enum api_sigv4_status verify_at(const struct req *q, time_t now, const char *service,
                                       struct api_sigv4_result *res)
{
	const char *services[] = {service, NULL};
	struct api_sigv4_params p = {
	    .services = service ? services : NULL, .now = now, .lookup = lookup};
	struct kerr *err = NULL;
	int r = api_sigv4_verify(&q->r, &p, res, &err);

	if (r == 0) {
		assert_null(err);
		assert_int_equal(res->status, API_SIGV4_OK);
	} else {
		assert_int_equal(r, -1);
		assert_non_null(err);
		assert_int_not_equal(res->status, API_SIGV4_OK);
		/* the kerr kind follows the status */
		if (res->status == API_SIGV4_MISMATCH || res->status == API_SIGV4_UNKNOWN_KEY ||
		    res->status == API_SIGV4_TOKEN_INVALID ||
		    res->status == API_SIGV4_TOKEN_EXPIRED)
			assert_int_equal(err->kind, KERR_AUTH);
		else if (res->status != API_SIGV4_INTERNAL)
			assert_int_equal(err->kind, KERR_INVALID);
		kerr_free(err);
	}
	return res->status;
}

static enum api_sigv4_status verify(const struct req *q)
{
	struct api_sigv4_result res;

	return verify_at(q, T0, NULL, &res);
}

/* aws CLI v2: POST form body, content-length not signed. */
#define CLI_BODY                                                                                   \
	"Action=DescribeImages&Version=2016-11-15&Owner.1=self&Filter.1.Name=name&Filter.1.Value." \
	"1=my-%2A"
#define CLI_AUTH                                                                                   \
	"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ec2/aws4_request, "            \
	"SignedHeaders=content-type;host;x-amz-date, "                                             \
	"Signature=8b87b18620ca0cef5f183810259a9e8c7ace0250885a9fdcb6b92d9dae83749a"
#define CLI_CANON                                                                                  \
	"POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\n"               \
	"host:127.0.0.1:8773\nx-amz-date:20240101T120000Z\n\ncontent-type;host;x-amz-date\n"       \
	"73f3d8dd1ebb54e35815f029655afe9d9428c0670589a83a52056a1bb2dc5e90"

static void cli_request(struct req *q)
{
	req_init(q, "POST", "/", "", CLI_BODY);
	req_header(q, "Host", "127.0.0.1:8773");
	req_header(q, "Content-Type", FORM);
	req_header(q, "User-Agent", "aws-cli/2.9.19");
	req_header(q, "X-Amz-Date", "20240101T120000Z");
	req_header(q, "Authorization", CLI_AUTH);
}

static void test_cli_post(void **state)
{
	struct req q;
	struct api_sigv4_result res;
	struct api_sigv4_auth auth;
	enum api_sigv4_status why;
	struct buf canon = BUF_INIT;
	struct kerr *err = NULL;

	(void)state;
	cli_request(&q);
	assert_int_equal(verify_at(&q, T0, NULL, &res), API_SIGV4_OK);
	assert_false(res.auth.presigned);
	assert_string_equal(res.auth.access_key, "AKIDEXAMPLE");
	assert_string_equal(res.auth.region, "us-east-1");
	assert_string_equal(res.auth.service, "ec2");
	assert_string_equal(res.auth.date, "20240101");
	assert_int_equal(res.auth.signed_at, T0);

	assert_int_equal(api_sigv4_parse(&q.r, NULL, &auth, &why, &err), 0);
	assert_string_equal(auth.signed_headers, "content-type;host;x-amz-date");
	assert_int_equal(api_sigv4_canonical_request(
	                     &q.r, &auth,
	                     "73f3d8dd1ebb54e35815f029655afe9d9428c0670589a83a52056a1bb2dc5e90",
	                     &canon, &err),
	                 0);
	assert_string_equal(canon.data, CLI_CANON);
	buf_release(&canon);

	/* the body hash given by the caller instead of the body */
	struct api_sigv4_params p = {
	    .now = T0,
	    .lookup = lookup,
	    .payload_sha256 = "73f3d8dd1ebb54e35815f029655afe9d9428c0670589a83a52056a1bb2dc5e90"};
	q.r.body = NULL;
	q.r.body_len = 0;
	assert_int_equal(api_sigv4_verify(&q.r, &p, &res, &err), 0);

	/* a header that is not signed may change; header names are case-insensitive */
	cli_request(&q);
	req_set(&q, "User-Agent", "something else");
	q.h[1].name = "CONTENT-TYPE";
	q.h[0].name = "host";
	assert_int_equal(verify(&q), API_SIGV4_OK);
	/* x-amz-content-sha256, when sent, must be the body's hash */
	cli_request(&q);
	req_header(&q, "X-Amz-Content-Sha256",
	           "73f3d8dd1ebb54e35815f029655afe9d9428c0670589a83a52056a1bb2dc5e90");
	assert_int_equal(verify(&q), API_SIGV4_OK);
	req_set(&q, "X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD");
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
}

static void test_tampered(void **state)
{
	struct req q;

	(void)state;
	cli_request(&q);
	q.r.body = "Action=DescribeImages&Version=2016-11-15&Owner.1=selg&Filter.1.Name=name&"
	           "Filter.1.Value.1=my-%2A";
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
	cli_request(&q);
	q.r.body_len--; /* a byte short */
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
	cli_request(&q);
	req_set(&q, "Content-Type", "text/plain");
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
	cli_request(&q);
	req_set(&q, "Host", "127.0.0.1:8774");
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
	cli_request(&q);
	req_set(&q, "X-Amz-Date", "20240101T120001Z");
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
	cli_request(&q);
	q.r.query = "Action=TerminateInstances";
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
	cli_request(&q);
	q.r.method = "PUT";
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
	cli_request(&q);
	q.r.path = "/x";
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
	/* a repeated signed header changes its canonical value */
	cli_request(&q);
	req_header(&q, "Content-Type", "x");
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
	/* the signature itself */
	cli_request(&q);
	req_set(&q, "Authorization",
	        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ec2/aws4_request, "
	        "SignedHeaders=content-type;host;x-amz-date, "
	        "Signature=8b87b18620ca0cef5f183810259a9e8c7ace0250885a9fdcb6b92d9dae83749b");
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
	req_set(&q, "Authorization",
	        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ec2/aws4_request, "
	        "SignedHeaders=content-type;host;x-amz-date, "
	        "Signature=8B87B18620CA0CEF5F183810259A9E8C7ACE0250885A9FDCB6B92D9DAE83749A");
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
	req_set(&q, "Authorization",
	        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ec2/aws4_request, "
	        "SignedHeaders=content-type;host;x-amz-date, Signature=8b87b186");
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
	/* the region is part of the key: signed for us-east-1, claimed for eu-west-1 */
	req_set(&q, "Authorization",
	        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/eu-west-1/ec2/aws4_request, "
	        "SignedHeaders=content-type;host;x-amz-date, "
	        "Signature=8b87b18620ca0cef5f183810259a9e8c7ace0250885a9fdcb6b92d9dae83749a");
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
	/* a signed header the request does not have */
	req_set(&q, "Authorization",
	        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ec2/aws4_request, "
	        "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
	        "Signature=8b87b18620ca0cef5f183810259a9e8c7ace0250885a9fdcb6b92d9dae83749a");
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
}

static void test_time_checks(void **state)
{
	struct req q;
	struct api_sigv4_result res;

	(void)state;
	cli_request(&q);
	assert_int_equal(verify_at(&q, T0 + 14 * 60, NULL, &res), API_SIGV4_OK);
	assert_int_equal(verify_at(&q, T0 - 14 * 60, NULL, &res), API_SIGV4_OK);
	assert_int_equal(verify_at(&q, T0 + 900, NULL, &res), API_SIGV4_OK);
	assert_int_equal(verify_at(&q, T0 + 901, NULL, &res), API_SIGV4_EXPIRED);
	assert_int_equal(verify_at(&q, T0 - 901, NULL, &res), API_SIGV4_EXPIRED);
	assert_int_equal(verify_at(&q, T0 + 86400 * 365, NULL, &res), API_SIGV4_EXPIRED);
	/* a date that is not a date */
	req_set(&q, "X-Amz-Date", "20240231T120000Z");
	assert_int_equal(verify(&q), API_SIGV4_MALFORMED);
	req_set(&q, "X-Amz-Date", "2024-01-01T12:00:00Z");
	assert_int_equal(verify(&q), API_SIGV4_MALFORMED);
	req_set(&q, "X-Amz-Date", "20240101T250000Z");
	assert_int_equal(verify(&q), API_SIGV4_MALFORMED);
	/* the scope's date must be x-amz-date's */
	req_set(&q, "X-Amz-Date", "20240102T000000Z");
	assert_int_equal(verify_at(&q, T0 + 12 * 3600, NULL, &res), API_SIGV4_MALFORMED);
}

static void test_keys(void **state)
{
	struct req q;

	(void)state;
	cli_request(&q);
	req_set(&q, "Authorization",
	        "AWS4-HMAC-SHA256 Credential=AKIDOTHER/20240101/us-east-1/ec2/aws4_request, "
	        "SignedHeaders=content-type;host;x-amz-date, "
	        "Signature=8b87b18620ca0cef5f183810259a9e8c7ace0250885a9fdcb6b92d9dae83749a");
	assert_int_equal(verify(&q), API_SIGV4_UNKNOWN_KEY);
	req_set(&q, "Authorization",
	        "AWS4-HMAC-SHA256 Credential=AKIDBROKEN/20240101/us-east-1/ec2/aws4_request, "
	        "SignedHeaders=content-type;host;x-amz-date, "
	        "Signature=8b87b18620ca0cef5f183810259a9e8c7ace0250885a9fdcb6b92d9dae83749a");
	assert_int_equal(verify(&q), API_SIGV4_INTERNAL);
}

static void expect_auth(const char *auth, enum api_sigv4_status want)
{
	struct req q;

	cli_request(&q);
	req_set(&q, "Authorization", auth);
	assert_int_equal(verify(&q), want);
}

static void test_malformed(void **state)
{
	struct req q;

	(void)state;
	/* nothing at all */
	req_init(&q, "POST", "/", "", CLI_BODY);
	req_header(&q, "Host", "127.0.0.1:8773");
	assert_int_equal(verify(&q), API_SIGV4_MISSING);
	q.r.query = "Action=DescribeRegions&Signature=abc&SignatureVersion=2";
	assert_int_equal(verify(&q), API_SIGV4_MISSING);

	expect_auth("", API_SIGV4_INCOMPLETE);
	expect_auth("AWS4-HMAC-SHA256", API_SIGV4_INCOMPLETE);
	expect_auth("AWS AKIDEXAMPLE:c2lnbmF0dXJl", API_SIGV4_INCOMPLETE);
	expect_auth("AWS4-HMAC-SHA1 Credential=AKIDEXAMPLE/20240101/us-east-1/ec2/aws4_request, "
	            "SignedHeaders=host;x-amz-date, Signature=00",
	            API_SIGV4_INCOMPLETE);
	expect_auth("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ec2/aws4_request, "
	            "SignedHeaders=content-type;host;x-amz-date",
	            API_SIGV4_INCOMPLETE);
	expect_auth("AWS4-HMAC-SHA256 SignedHeaders=content-type;host;x-amz-date, Signature=00",
	            API_SIGV4_INCOMPLETE);
	expect_auth("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ec2/aws4_request, "
	            "SignedHeaders=host;x-amz-date, Signature=00, Signature=00",
	            API_SIGV4_INCOMPLETE);
	expect_auth("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ec2/aws4_request, "
	            "SignedHeaders=host;x-amz-date, Signature",
	            API_SIGV4_INCOMPLETE);
	expect_auth("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ec2/aws4_request, "
	            "SignedHeaders=host;x-amz-date, Signature=, Extra=1",
	            API_SIGV4_INCOMPLETE);
	/* scope */
	expect_auth("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/s3/aws4_request, "
	            "SignedHeaders=content-type;host;x-amz-date, Signature=00",
	            API_SIGV4_MALFORMED);
	expect_auth("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ec2/aws5_request, "
	            "SignedHeaders=content-type;host;x-amz-date, Signature=00",
	            API_SIGV4_MALFORMED);
	expect_auth("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ec2, "
	            "SignedHeaders=content-type;host;x-amz-date, Signature=00",
	            API_SIGV4_MALFORMED);
	expect_auth(
	    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ec2/aws4_request/x, "
	    "SignedHeaders=content-type;host;x-amz-date, Signature=00",
	    API_SIGV4_MALFORMED);
	expect_auth("AWS4-HMAC-SHA256 Credential=AKID EXAMPLE/20240101/us-east-1/ec2/aws4_request, "
	            "SignedHeaders=content-type;host;x-amz-date, Signature=00",
	            API_SIGV4_MALFORMED);
	expect_auth("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2024011/us-east-1/ec2/aws4_request, "
	            "SignedHeaders=content-type;host;x-amz-date, Signature=00",
	            API_SIGV4_MALFORMED);
	expect_auth("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/US_EAST/ec2/aws4_request, "
	            "SignedHeaders=content-type;host;x-amz-date, Signature=00",
	            API_SIGV4_MALFORMED);
	expect_auth("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101//ec2/aws4_request, "
	            "SignedHeaders=content-type;host;x-amz-date, Signature=00",
	            API_SIGV4_MALFORMED);
	/* signed headers: host and x-amz-date must be there, lowercase, no repeats */
	expect_auth("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ec2/aws4_request, "
	            "SignedHeaders=content-type;x-amz-date, Signature=00",
	            API_SIGV4_MALFORMED);
	expect_auth("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ec2/aws4_request, "
	            "SignedHeaders=content-type;host, Signature=00",
	            API_SIGV4_MALFORMED);
	expect_auth("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ec2/aws4_request, "
	            "SignedHeaders=Host;x-amz-date, Signature=00",
	            API_SIGV4_MALFORMED);
	expect_auth("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ec2/aws4_request, "
	            "SignedHeaders=host;host;x-amz-date, Signature=00",
	            API_SIGV4_MALFORMED);
	expect_auth("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ec2/aws4_request, "
	            "SignedHeaders=host;;x-amz-date, Signature=00",
	            API_SIGV4_MALFORMED);

	/* no x-amz-date header */
	cli_request(&q);
	q.h[3].name = "X-Not-Date";
	assert_int_equal(verify(&q), API_SIGV4_INCOMPLETE);
	/* two authorization headers */
	cli_request(&q);
	req_header(&q, "authorization", CLI_AUTH);
	assert_int_equal(verify(&q), API_SIGV4_MALFORMED);
	/* both forms at once */
	cli_request(&q);
	q.r.query = "X-Amz-Signature=00";
	assert_int_equal(verify(&q), API_SIGV4_MALFORMED);

	/* components in another order with extra spaces are fine */
	expect_auth("  AWS4-HMAC-SHA256   "
	            "Signature=8b87b18620ca0cef5f183810259a9e8c7ace0250885a9fdcb6b92d9dae83749a ,"
	            "SignedHeaders=content-type;host;x-amz-date,Credential=AKIDEXAMPLE/20240101/"
	            "us-east-1/ec2/aws4_request",
	            API_SIGV4_OK);
	/* and SignedHeaders in another order are put in order */
	expect_auth("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ec2/aws4_request, "
	            "SignedHeaders=x-amz-date;host;content-type, "
	            "Signature=8b87b18620ca0cef5f183810259a9e8c7ace0250885a9fdcb6b92d9dae83749a",
	            API_SIGV4_OK);
}

/* Packer (aws-sdk-go): signs content-length; here also a header with runs of whitespace. */
#define PACKER_BODY                                                                                \
	"Action=RunInstances&ImageId=ami-0123456789abcdef0&MinCount=1&MaxCount=1&SubnetId=&"       \
	"Version=2016-11-15"

static void packer_request(struct req *q)
{
	req_init(q, "POST", "/", "", PACKER_BODY);
	req_header(q, "Host", "127.0.0.1:18001");
	req_header(q, "Content-Type", FORM);
	req_header(q, "Content-Length", "100");
	req_header(q, "X-Custom", "  a   b\tc  ");
	req_header(q, "X-Amz-Date", "20240101T120000Z");
	req_header(q, "Authorization",
	           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/eu-west-1/ec2/aws4_request, "
	           "SignedHeaders=content-length;content-type;host;x-amz-date;x-custom, "
	           "Signature=54015e8050748f4f9f51578f78a9107cf430957d3f9046e950d03954eda45881");
}

static void test_packer_post(void **state)
{
	struct req q;
	struct api_sigv4_result res;

	(void)state;
	packer_request(&q);
	assert_int_equal(verify_at(&q, T0, NULL, &res), API_SIGV4_OK);
	assert_string_equal(res.auth.region, "eu-west-1");
	/* whitespace is normalized before signing */
	req_set(&q, "X-Custom", "a b c");
	assert_int_equal(verify(&q), API_SIGV4_OK);
	req_set(&q, "X-Custom", "a b  c\r\n");
	assert_int_equal(verify(&q), API_SIGV4_OK);
	req_set(&q, "X-Custom", "a bc");
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
	packer_request(&q);
	req_set(&q, "Content-Length", "101");
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
}

/* GET with a query string that needs encoding, sent in another order than the canonical one. */
#define GET_QUERY                                                                                  \
	"Version=2016-11-15&Action=DescribeImages&Owner.1=self&"                                   \
	"Filter.1.Value.1=my%20image%2A%2Fx%2By%20%C3%BC&Filter.1.Name=name&Empty="

static void get_request(struct req *q)
{
	req_init(q, "GET", "/", GET_QUERY, "");
	req_header(q, "Host", "127.0.0.1:8773");
	req_header(q, "X-Amz-Date", "20240101T120000Z");
	req_header(q, "Authorization",
	           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ec2/aws4_request, "
	           "SignedHeaders=host;x-amz-date, "
	           "Signature=88a508b61cae038577643da78e955c640f0579112783bb7885204911696c34e0");
}

static void test_get_query(void **state)
{
	struct req q;
	struct buf b = BUF_INIT;
	struct kerr *err = NULL;

	(void)state;
	get_request(&q);
	assert_int_equal(verify(&q), API_SIGV4_OK);
	assert_int_equal(api_sigv4_canonical_query(q.r.query, false, &b, &err), 0);
	assert_string_equal(
	    b.data,
	    "Action=DescribeImages&Empty=&Filter.1.Name=name&"
	    "Filter.1.Value.1=my%20image%2A%2Fx%2By%20%C3%BC&Owner.1=self&Version=2016-11-15");
	buf_release(&b);
	/* the same pairs, other order, lower-case escapes, unneeded escapes, '+' for space */
	q.r.query =
	    "Empty&Owner.1=%73elf&Filter.1.Name=name&Action=DescribeImages&Version=2016-11-15&"
	    "Filter.1.Value.1=my+image*%2fx%2By%20%c3%bc&&";
	assert_int_equal(verify(&q), API_SIGV4_OK);
	get_request(&q);
	q.r.query = "Version=2016-11-15&Action=DescribeImages&Owner.1=selg&"
	            "Filter.1.Value.1=my%20image%2A%2Fx%2By%20%C3%BC&Filter.1.Name=name&Empty=";
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
	q.r.query = GET_QUERY "&Extra=1";
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
	q.r.query = GET_QUERY "&Bad=%zz";
	assert_int_equal(verify(&q), API_SIGV4_MALFORMED);

	/* sorting: by name, then by value, on the encoded bytes */
	assert_int_equal(
	    api_sigv4_canonical_query("b=2&a=2&a=1&A=3&a_=0&a.=0&a%20=1", false, &b, &err), 0);
	assert_string_equal(b.data, "A=3&a=1&a=2&a%20=1&a.=0&a_=0&b=2");
	buf_release(&b);
	assert_int_equal(api_sigv4_canonical_query("", false, &b, &err), 0);
	assert_string_equal(b.data, "");
	buf_release(&b);
	assert_int_equal(api_sigv4_canonical_query("X-Amz-Signature=1&a=1", true, &b, &err), 0);
	assert_string_equal(b.data, "a=1");
	buf_release(&b);
	assert_int_equal(api_sigv4_canonical_query("X-Amz-Signature=1&a=1", false, &b, &err), 0);
	assert_string_equal(b.data, "X-Amz-Signature=1&a=1");
	buf_release(&b);
}

#define PRESIGNED_QUERY                                                                            \
	"Action=DescribeRegions&Version=2016-11-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&"              \
	"X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Fec2%2Faws4_request&"                \
	"X-Amz-Date=20240101T120000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&"                  \
	"X-Amz-Signature=5b7998f521ec242ede6000e6bd26ae8c7bc8f07d6c187824413473adbe213825"

static void presigned_request(struct req *q, const char *query)
{
	req_init(q, "GET", "/", query, "");
	req_header(q, "Host", "127.0.0.1:8773");
	req_header(q, "User-Agent", "curl/7.88");
}

static void test_presigned(void **state)
{
	struct req q;
	struct api_sigv4_result res;

	(void)state;
	presigned_request(&q, PRESIGNED_QUERY);
	assert_int_equal(verify_at(&q, T0, NULL, &res), API_SIGV4_OK);
	assert_true(res.auth.presigned);
	assert_int_equal(res.auth.expires, 300);
	assert_string_equal(res.auth.region, "us-east-1");
	assert_int_equal(verify_at(&q, T0 + 300, NULL, &res), API_SIGV4_OK);
	assert_int_equal(verify_at(&q, T0 + 301, NULL, &res), API_SIGV4_EXPIRED);
	assert_int_equal(verify_at(&q, T0 - 899, NULL, &res), API_SIGV4_OK);
	assert_int_equal(verify_at(&q, T0 - 901, NULL, &res),
	                 API_SIGV4_EXPIRED); /* not yet valid */

	/* tampering */
	presigned_request(
	    &q, "Action=DescribeImages&Version=2016-11-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&"
	        "X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Fec2%2Faws4_request&"
	        "X-Amz-Date=20240101T120000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&"
	        "X-Amz-Signature=5b7998f521ec242ede6000e6bd26ae8c7bc8f07d6c187824413473adbe213825");
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
	presigned_request(
	    &q, "Action=DescribeRegions&Version=2016-11-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&"
	        "X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Fec2%2Faws4_request&"
	        "X-Amz-Date=20240101T120000Z&X-Amz-Expires=3000&X-Amz-SignedHeaders=host&"
	        "X-Amz-Signature=5b7998f521ec242ede6000e6bd26ae8c7bc8f07d6c187824413473adbe213825");
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
	presigned_request(&q, PRESIGNED_QUERY);
	q.h[0].value = "evil.example:80";
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);
	presigned_request(&q, PRESIGNED_QUERY);
	q.r.body = "x";
	q.r.body_len = 1;
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH);

	/* missing and bad parameters */
	presigned_request(
	    &q, "Action=DescribeRegions&X-Amz-Algorithm=AWS4-HMAC-SHA256&"
	        "X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Fec2%2Faws4_request&"
	        "X-Amz-Date=20240101T120000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host");
	assert_int_equal(verify(&q), API_SIGV4_INCOMPLETE);
	presigned_request(
	    &q, "X-Amz-Algorithm=AWS4-HMAC-SHA1&"
	        "X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Fec2%2Faws4_request&"
	        "X-Amz-Date=20240101T120000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-"
	        "Signature=00");
	assert_int_equal(verify(&q), API_SIGV4_INCOMPLETE);
	presigned_request(
	    &q, "X-Amz-Algorithm=AWS4-HMAC-SHA256&"
	        "X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Fec2%2Faws4_request&"
	        "X-Amz-Date=20240101T120000Z&X-Amz-Expires=604801&X-Amz-SignedHeaders=host&X-Amz-"
	        "Signature=00");
	assert_int_equal(verify(&q), API_SIGV4_MALFORMED);
	presigned_request(
	    &q, "X-Amz-Algorithm=AWS4-HMAC-SHA256&"
	        "X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Fec2%2Faws4_request&"
	        "X-Amz-Date=20240101T120000Z&X-Amz-Expires=-5&X-Amz-SignedHeaders=host&X-Amz-"
	        "Signature=00");
	assert_int_equal(verify(&q), API_SIGV4_MALFORMED);
	presigned_request(
	    &q, "X-Amz-Algorithm=AWS4-HMAC-SHA256&"
	        "X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Fec2%2Faws4_request&"
	        "X-Amz-Date=20240101T120000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=user-agent&X-"
	        "Amz-Signature=00");
	assert_int_equal(verify(&q), API_SIGV4_MALFORMED);
	presigned_request(&q, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%zz");
	assert_int_equal(verify(&q), API_SIGV4_MALFORMED);
}

/* X-Amz-Security-Token in the header (signed or not) or the presigned query goes to the
 * lookup, which decides; a token with a key that takes none is refused. */
static void test_session_token(void **state)
{
	struct req q;
	struct api_sigv4_result res;

	(void)state;
	cli_request(&q);
	req_header(&q, "X-Amz-Security-Token", "tok-1");
	assert_int_equal(verify(&q), API_SIGV4_TOKEN_INVALID); /* the key takes no token */
	assert_string_equal(seen_token, "tok-1");
	want_token = "tok-1";
	assert_int_equal(verify_at(&q, T0, NULL, &res), API_SIGV4_OK);
	assert_string_equal(res.auth.token, "tok-1");
	req_set(&q, "X-Amz-Security-Token", "tok-2");
	assert_int_equal(verify(&q), API_SIGV4_TOKEN_INVALID);
	cli_request(&q);
	assert_int_equal(verify(&q), API_SIGV4_TOKEN_INVALID); /* no token at all */
	assert_string_equal(seen_token, "(none)");
	req_header(&q, "X-Amz-Security-Token", "tok-1");
	token_expired = true;
	assert_int_equal(verify(&q), API_SIGV4_TOKEN_EXPIRED);
	token_expired = false;
	req_header(&q, "X-Amz-Security-Token", "tok-1");
	assert_int_equal(verify(&q), API_SIGV4_MALFORMED); /* twice */

	/* presigned: the token is a query parameter, part of what is signed */
	presigned_request(
	    &q, "Action=DescribeRegions&Version=2016-11-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&"
	        "X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Fec2%2Faws4_request&"
	        "X-Amz-Date=20240101T120000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&"
	        "X-Amz-Security-Token=tok%2B1&"
	        "X-Amz-Signature=5b7998f521ec242ede6000e6bd26ae8c7bc8f07d6c187824413473adbe213825");
	assert_int_equal(verify(&q), API_SIGV4_TOKEN_INVALID);
	assert_string_equal(seen_token, "tok+1");
	want_token = "tok+1";
	assert_int_equal(verify(&q), API_SIGV4_MISMATCH); /* the token was not signed */
	want_token = NULL;
}

/* A scope's service must be one of those accepted; which one is reported. */
static void iam_request(struct req *q)
{
	req_init(q, "GET", "/", "Action=ListUsers&Version=2010-05-08", "");
	req_header(q, "Host", "iam.amazonaws.com");
	req_header(q, "Content-Type", FORM);
	req_header(q, "X-Amz-Date", "20150830T123600Z");
	req_header(q, "Authorization",
	           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
	           "SignedHeaders=content-type;host;x-amz-date, "
	           "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
}

static void test_services(void **state)
{
	const char *const other[] = {"ec2", "sts", NULL}, *const with_iam[] = {"sts", "iam", NULL};
	struct api_sigv4_params p = {.services = other, .now = 1440938160, .lookup = lookup};
	struct api_sigv4_result res;
	struct kerr *err = NULL;
	struct req q;

	(void)state;
	iam_request(&q);
	assert_int_equal(api_sigv4_verify(&q.r, &p, &res, &err), -1);
	assert_int_equal(res.status, API_SIGV4_MALFORMED);
	kerr_free(err);
	err = NULL;
	p.services = with_iam;
	assert_int_equal(api_sigv4_verify(&q.r, &p, &res, &err), 0);
	assert_string_equal(res.auth.service, "iam");
}

static void test_iam_example(void **state)
{
	struct req q;
	struct api_sigv4_result res;

	(void)state;
	req_init(&q, "GET", "/", "Action=ListUsers&Version=2010-05-08", "");
	req_header(&q, "Host", "iam.amazonaws.com");
	req_header(&q, "Content-Type", FORM);
	req_header(&q, "X-Amz-Date", "20150830T123600Z");
	req_header(&q, "Authorization",
	           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
	           "SignedHeaders=content-type;host;x-amz-date, "
	           "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
	assert_int_equal(verify_at(&q, 1440938160, "iam", &res), API_SIGV4_OK);
	/* the same request for the default service "ec2" is scoped wrongly */
	assert_int_equal(verify_at(&q, 1440938160, NULL, &res), API_SIGV4_MALFORMED);
}

static void test_canonical_uri(void **state)
{
	/* expected values from botocore's SigV4Auth._normalize_url_path */
	static const char *const cases[][2] = {
	    {"", "/"},
	    {"/", "/"},
	    {"/a%20b/./c", "/a%2520b/c"},
	    {"/foo/../bar//baz/", "/bar/baz/"},
	    {"/..", "/"},
	    {"/a b/~x", "/a%20b/~x"},
	    {"/%E4%B8%AD", "/%25E4%25B8%25AD"},
	};
	struct buf b = BUF_INIT;
	struct kerr *err = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(api_sigv4_canonical_uri(cases[i][0], &b, &err), 0);
		assert_string_equal(b.data, cases[i][1]);
		buf_release(&b);
	}
}

static void test_canonical_headers(void **state)
{
	struct req q;
	struct api_sigv4_auth auth = {0};
	struct buf b = BUF_INIT;
	struct kerr *err = NULL;

	(void)state;
	req_init(&q, "POST", "/", "", "");
	req_header(&q, "Host", "h");
	req_header(&q, "X-Multi", " one ");
	req_header(&q, "x-multi", "two  words");
	req_header(&q, "X-Empty", "   ");
	snprintf(auth.signed_headers, sizeof(auth.signed_headers), "host;x-empty;x-multi");
	assert_int_equal(api_sigv4_canonical_request(&q.r, &auth, "HASH", &b, &err), 0);
	assert_string_equal(
	    b.data,
	    "POST\n/\n\nhost:h\nx-empty:\nx-multi:one,two words\n\nhost;x-empty;x-multi\nHASH");
	buf_release(&b);
}

static void test_sign(void **state)
{
	char sig[65];

	(void)state;
	/* AWS's "examples of how to derive a signing key" string-to-sign for the IAM example */
	sigv4_sign(SECRET, "20150830", "us-east-1", "iam",
	           "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n"
	           "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59",
	           sig);
	assert_string_equal(sig,
	                    "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
	assert_string_equal(api_sigv4_status_name(API_SIGV4_MISMATCH), "mismatch");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cli_post),          cmocka_unit_test(test_tampered),
	    cmocka_unit_test(test_time_checks),       cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_malformed),         cmocka_unit_test(test_packer_post),
	    cmocka_unit_test(test_get_query),         cmocka_unit_test(test_presigned),
	    cmocka_unit_test(test_iam_example),       cmocka_unit_test(test_canonical_uri),
	    cmocka_unit_test(test_canonical_headers), cmocka_unit_test(test_sign),
	    cmocka_unit_test(test_session_token),     cmocka_unit_test(test_services),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
