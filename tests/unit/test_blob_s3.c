/* Unit tests of the S3 backend's offline parts: the client signer (util/sigv4) against AWS's
 * published S3 example and botocore, and the store URL parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/blob.h"
#include "util/buf.h"
#include "util/sigv4.h"

#define KEY    "AKIAIOSFODNN7EXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define PREFIX                                                                                     \
	"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "    \
	"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature="

static void check_sig(const char *path, const char *query, const char *host, const char *want)
{
	struct buf out = BUF_INIT;
	struct sigv4_request r = {.method = "GET",
	                          .path = path,
	                          .query = query,
	                          .host = host,
	                          .amz_date = "20130524T000000Z",
	                          .payload_hash = SIGV4_EMPTY_SHA256};

	assert_int_equal(sigv4_authorization(&r, KEY, SECRET, "us-east-1", "s3", &out, NULL), 0);
	assert_string_equal(out.data, want);
	buf_release(&out);
}

static void test_signer(void **state)
{
	(void)state;
	/* AWS's S3 SigV4 example "GET Bucket Lifecycle" */
	check_sig("/", "lifecycle=", "examplebucket.s3.amazonaws.com",
	          PREFIX "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
	/* botocore's S3SigV4Auth on a path-style key with a space and a listing query */
	check_sig("/kiln-tests/a b/c~d", "list-type=2&prefix=x%2Fy", "127.0.0.1:7480",
	          PREFIX "30a5aae3c77282394695a043de0ac9ea7ce3d9ecc79dcf3f03df8bf1d42b9838");
}

static void test_url(void **state)
{
	struct blob_s3_url u;

	(void)state;
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_ENDPOINT_URL_S3");
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	assert_int_equal(blob_s3_parse_url("s3://bkt/a/b/?endpoint=http%3A%2F%2F127.0.0.1%3A7480"
	                                   "&region=eu-west-1&gc_grace=5",
	                                   &u, NULL),
	                 0);
	assert_string_equal(u.bucket, "bkt");
	assert_string_equal(u.prefix, "a/b/");
	assert_string_equal(u.endpoint, "http://127.0.0.1:7480");
	assert_string_equal(u.region, "eu-west-1");
	assert_int_equal(u.gc_grace, 5);
	blob_s3_url_release(&u);

	assert_int_equal(blob_s3_parse_url("s3://bkt?endpoint=http://h:1", &u, NULL), 0);
	assert_string_equal(u.prefix, "");
	assert_string_equal(u.region, "us-east-1");
	assert_int_equal(u.gc_grace, 3600);
	blob_s3_url_release(&u);

	const char *bad[] = {
	    "s3://bkt/p",                               /* no endpoint */
	    "s3://b/p?endpoint=http://h:1",             /* bucket too short */
	    "s3://Bkt/p?endpoint=http://h:1",           /* upper case */
	    "s3://bkt/p?endpoint=ftp://h",              /* not http */
	    "s3://bkt/p?endpoint=http://h&secret=x",    /* credentials in the URL */
	    "s3://bkt/p?endpoint=http://h&x=1",         /* unknown parameter */
	    "s3://bkt/p?endpoint",                      /* no value */
	    "s3://bkt/p?endpoint=http://h&gc_grace=1x", /* not a number */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kerr *err = NULL;
		assert_int_equal(blob_s3_parse_url(bad[i], &u, &err), -1);
		assert_int_equal(err->kind, KERR_INVALID);
		kerr_free(err);
	}
	setenv("AWS_ENDPOINT_URL", "http://env:9", 1);
	assert_int_equal(blob_s3_parse_url("s3://bkt/p", &u, NULL), 0);
	assert_string_equal(u.endpoint, "http://env:9");
	blob_s3_url_release(&u);
	unsetenv("AWS_ENDPOINT_URL");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_signer),
	    cmocka_unit_test(test_url),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
