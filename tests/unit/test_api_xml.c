/* Unit tests of src/api/xml and src/api/errors: escaping, shapes, envelopes, codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "api/errors.h"
#include "api/xml.h"
#include "util/str.h"

#define DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

static void test_escape(void **state)
{
	struct buf b = BUF_INIT;
	struct api_xml x;
	struct kerr *err = NULL;

	(void)state;
	api_xml_init(&x, &b);
	api_xml_elem(&x, "description",
	             "a<b>&\"c\" 'd'\tline\r\nend \xC3\xBC \xE2\x82\xAC \xF0\x9F\x98\x80");
	assert_int_equal(api_xml_finish(&x, &err), 0);
	assert_string_equal(
	    b.data, "<description>a&lt;b&gt;&amp;&quot;c&quot; &apos;d&apos;&#9;line&#13;&#10;end "
	            "\xC3\xBC \xE2\x82\xAC \xF0\x9F\x98\x80</description>");
	buf_release(&b);

	/* characters XML 1.0 cannot carry are refused, and the error sticks */
	const char *bad[] = {"a\x01",        "\x1f",         "bad \xC3", "\xC0\xAF",
	                     "\xED\xA0\x80", "\xEF\xBF\xBE", "\xFF"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		api_xml_init(&x, &b);
		api_xml_open(&x, "a");
		api_xml_text(&x, bad[i]);
		api_xml_elem(&x, "b", "later");
		api_xml_close(&x);
		assert_int_equal(api_xml_finish(&x, &err), -1);
		assert_int_equal(err->kind, KERR_INVALID);
		kerr_free(err);
		err = NULL;
		assert_null(strstr(b.data, "later"));
		buf_release(&b);
	}
	/* an embedded NUL through textn */
	api_xml_init(&x, &b);
	api_xml_textn(&x, "a\0b", 3);
	assert_int_equal(api_xml_finish(&x, &err), -1);
	kerr_free(err);
	buf_release(&b);
}

static void test_shapes(void **state)
{
	struct buf b = BUF_INIT;
	struct api_xml x;
	struct kerr *err = NULL;
	const char *groups[] = {"sg-1", "sg-2"};

	(void)state;
	api_xml_init(&x, &b);
	api_xml_open(&x, "imagesSet");
	api_xml_item(&x);
	api_xml_elem(&x, "imageId", "ami-0123456789abcdef0");
	api_xml_elem(&x, "kernelId", NULL); /* absent: nothing */
	api_xml_elem(&x, "description", "");
	api_xml_bool(&x, "isPublic", false);
	api_xml_bool(&x, "enaSupport", true);
	api_xml_int(&x, "volumeSize", -8);
	api_xml_elemf(&x, "progress", "%d%%", 100);
	api_xml_time(&x, "creationDate", INT64_C(1704110400000));
	api_xml_time(&x, "lastLaunchedTime", INT64_C(1704110400123));
	api_xml_open(&x, "productCodes");
	api_xml_close(&x);
	api_xml_string_set(&x, "groupSet", "groupId", groups, 2);
	api_xml_string_set(&x, "tagSet", "key", NULL, 0);
	api_xml_close(&x);
	api_xml_close(&x);
	assert_int_equal(api_xml_finish(&x, &err), 0);
	assert_string_equal(
	    b.data, "<imagesSet><item><imageId>ami-0123456789abcdef0</imageId><description/>"
	            "<isPublic>false</isPublic><enaSupport>true</enaSupport>"
	            "<volumeSize>-8</volumeSize><progress>100%</progress>"
	            "<creationDate>2024-01-01T12:00:00.000Z</creationDate>"
	            "<lastLaunchedTime>2024-01-01T12:00:00.123Z</lastLaunchedTime>"
	            "<productCodes/><groupSet><item><groupId>sg-1</groupId></item><item>"
	            "<groupId>sg-2</groupId></item></groupSet><tagSet/></item></imagesSet>");
	buf_release(&b);

	/* an empty set */
	api_xml_init(&x, &b);
	api_xml_open(&x, "reservationSet");
	api_xml_close(&x);
	assert_int_equal(api_xml_finish(&x, &err), 0);
	assert_string_equal(b.data, "<reservationSet/>");
	buf_release(&b);
}

static void test_time(void **state)
{
	char s[25];

	(void)state;
	assert_int_equal(api_xml_format_time(0, s), 0);
	assert_string_equal(s, "1970-01-01T00:00:00.000Z");
	assert_int_equal(api_xml_format_time(INT64_C(951782400999), s), 0); /* leap day 2000 */
	assert_string_equal(s, "2000-02-29T00:00:00.999Z");
	assert_int_equal(api_xml_format_time(INT64_C(253402300799999), s), 0);
	assert_string_equal(s, "9999-12-31T23:59:59.999Z");
	assert_int_equal(api_xml_format_time(INT64_C(253402300800000), s), -1);
	assert_int_equal(api_xml_format_time(-1, s), -1);
}

static void test_misuse(void **state)
{
	struct buf b = BUF_INIT;
	struct api_xml x;
	struct kerr *err = NULL;
	const char *names[] = {"", "1a", "a b", "a<", "-a", NULL};

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		api_xml_init(&x, &b);
		api_xml_open(&x, names[i]);
		assert_int_equal(api_xml_finish(&x, &err), -1);
		assert_int_equal(err->kind, KERR_INTERNAL);
		kerr_free(err);
		err = NULL;
		buf_release(&b);
	}
	/* left open, closed too often, too deep */
	api_xml_init(&x, &b);
	api_xml_open(&x, "a");
	assert_int_equal(api_xml_finish(&x, &err), -1);
	kerr_free(err);
	err = NULL;
	buf_release(&b);
	api_xml_init(&x, &b);
	api_xml_close(&x);
	assert_int_equal(api_xml_finish(&x, &err), -1);
	kerr_free(err);
	err = NULL;
	buf_release(&b);
	api_xml_init(&x, &b);
	for (int i = 0; i <= API_XML_DEPTH_MAX; i++)
		api_xml_open(&x, "d");
	assert_int_equal(api_xml_finish(&x, &err), -1);
	kerr_free(err);
	err = NULL;
	buf_release(&b);
	/* the buffer's limit */
	buf_init(&b, 16);
	api_xml_init(&x, &b);
	api_xml_elem(&x, "description", "far too long for sixteen bytes");
	assert_int_equal(api_xml_finish(&x, &err), -1);
	assert_int_equal(err->kind, KERR_LIMIT);
	kerr_free(err);
	buf_release(&b);
	/* a failure nobody collected is freed by release */
	api_xml_init(&x, &b);
	api_xml_open(&x, "");
	api_xml_release(&x);
	buf_release(&b);
}

static void test_envelopes(void **state)
{
	struct buf b = BUF_INIT;
	struct api_xml x;
	struct kerr *err = NULL;
	const char *id = "0f3bd2a8-7a26-4c36-9d5b-3b0b7c0f7e65";

	(void)state;
	api_xml_init(&x, &b);
	api_xml_begin(&x, "DeregisterImage", id);
	api_xml_bool(&x, "return", true);
	assert_int_equal(api_xml_end(&x, &err), 0);
	assert_string_equal(
	    b.data,
	    DECL "<DeregisterImageResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
	         "<requestId>0f3bd2a8-7a26-4c36-9d5b-3b0b7c0f7e65</requestId>"
	         "<return>true</return></DeregisterImageResponse>");
	buf_release(&b);

	/* unbalanced inside the envelope */
	api_xml_init(&x, &b);
	api_xml_begin(&x, "DescribeImages", id);
	api_xml_open(&x, "imagesSet");
	assert_int_equal(api_xml_end(&x, &err), -1);
	kerr_free(err);
	err = NULL;
	buf_release(&b);

	assert_int_equal(api_xml_error(&b, "InvalidAMIID.NotFound",
	                               "The image id '[ami-1]' does not exist", id, &err),
	                 0);
	assert_string_equal(
	    b.data,
	    DECL "<Response><Errors><Error><Code>InvalidAMIID.NotFound</Code>"
	         "<Message>The image id &apos;[ami-1]&apos; does not exist</Message></Error>"
	         "</Errors><RequestID>0f3bd2a8-7a26-4c36-9d5b-3b0b7c0f7e65</RequestID></Response>");
	buf_release(&b);
	/* an error message is never refused: what XML cannot hold becomes U+FFFD */
	assert_int_equal(api_xml_error(&b, "InvalidAction", "bad \x01 \xFF <x>", "r", &err), 0);
	assert_non_null(
	    strstr(b.data, "<Message>bad \xEF\xBF\xBD \xEF\xBF\xBD &lt;x&gt;</Message>"));
	buf_release(&b);
	/* a buffer too small leaves it as it was */
	buf_init(&b, 40);
	buf_addstr(&b, "keep");
	assert_int_equal(api_xml_error(&b, "X", "y", "z", &err), -1);
	assert_string_equal(b.data, "keep");
	kerr_free(err);
	buf_release(&b);
}

static void test_request_id(void **state)
{
	char a[API_REQUEST_ID_LEN + 1], b[API_REQUEST_ID_LEN + 1];

	(void)state;
	for (int n = 0; n < 64; n++) {
		api_request_id(a);
		assert_int_equal(strlen(a), 36);
		for (int i = 0; i < 36; i++) {
			if (i == 8 || i == 13 || i == 18 || i == 23)
				assert_int_equal(a[i], '-');
			else
				assert_non_null(strchr("0123456789abcdef", a[i]));
		}
		assert_int_equal(a[14], '4');
		assert_non_null(strchr("89ab", a[19]));
	}
	api_request_id(b);
	assert_string_not_equal(a, b);
}

static void test_errors(void **state)
{
	struct api_error e;
	struct kerr *k = NULL;
	struct buf b = BUF_INIT;
	struct kerr *err = NULL;

	(void)state;
	api_error_set(&e, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist",
	              "i-1");
	assert_int_equal(e.status, 400);
	assert_string_equal(e.code, "InvalidInstanceID.NotFound");
	assert_string_equal(e.message, "The instance ID 'i-1' does not exist");
	api_error_set(&e, "AuthFailure", "x");
	assert_int_equal(e.status, 401);
	api_error_set(&e, "UnauthorizedOperation", "x");
	assert_int_equal(e.status, 403);
	api_error_set(&e, "Unavailable", "x");
	assert_int_equal(e.status, 503);
	api_error_full(&e, 418, "Teapot", "short and stout");
	assert_int_equal(e.status, 418);

	api_error_invalid_action(&e, "FlyToTheMoon");
	assert_int_equal(e.status, 400);
	assert_string_equal(e.code, "InvalidAction");
	assert_string_equal(e.message,
	                    "The action FlyToTheMoon is not valid for this web service.");
	api_error_dry_run(&e);
	assert_int_equal(e.status, 412);
	assert_string_equal(e.code, "DryRunOperation");
	assert_string_equal(e.message, "Request would have succeeded, but DryRun flag is set.");
	api_error_missing_parameter(&e, "ImageId");
	assert_string_equal(e.code, "MissingParameter");

	/* every kind has a code; 5xx only for the server's own failures */
	for (int kind = 0; kind < KERR__COUNT; kind++) {
		int status;
		const char *code = api_error_code_of_kind((enum kerr_kind)kind, &status);

		assert_non_null(code);
		if (kind == KERR_INTERNAL || kind == KERR_IO || kind == KERR_NOSPACE ||
		    kind == KERR_CORRUPT)
			assert_true(status >= 500);
		else
			assert_true(status >= 400 && status < 500);
	}
	kerr_set(&k, KERR_CONFLICT, "instance 'i-1' is stopped");
	api_error_from_kerr(&e, k, NULL);
	assert_int_equal(e.status, 400);
	assert_string_equal(e.code, "IncorrectState");
	assert_string_equal(e.message, "instance 'i-1' is stopped");
	api_error_from_kerr(&e, k, "IncorrectInstanceState");
	assert_string_equal(e.code, "IncorrectInstanceState");
	assert_int_equal(e.status, 400);
	kerr_free(k);
	k = NULL;
	kerr_set(&k, KERR_AUTH, "not yours");
	api_error_from_kerr(&e, k, NULL);
	assert_int_equal(e.status, 403);
	assert_string_equal(e.code, "UnauthorizedOperation");
	kerr_free(k);
	k = NULL;

	/* errors of the cloud: by kind and subject, then by action, EC2's wording with the id */
	kerr_about(&k, KERR_NOT_FOUND, KERR_SUBJECT_INSTANCE, "i-1", "instance 'i-1' not found");
	api_error_from_cloud(&e, "StopInstances", k);
	assert_int_equal(e.status, 400);
	assert_string_equal(e.code, "InvalidInstanceID.NotFound");
	assert_string_equal(e.message, "The instance ID 'i-1' does not exist");
	kerr_about(&k, KERR_CONFLICT, KERR_SUBJECT_IMAGE, "ami-1", "image 'ami-1' is pending");
	api_error_from_cloud(&e, "RunInstances", k);
	assert_string_equal(e.code, "InvalidAMIID.Unavailable");
	assert_string_equal(e.message, "image 'ami-1' is pending");
	api_error_from_cloud(&e, "EnableImage", k);
	assert_string_equal(e.code, "IncorrectState");
	kerr_about(&k, KERR_CONFLICT, KERR_SUBJECT_IMAGE_NAME, "x", "image name 'x' is in use");
	api_error_from_cloud(&e, "CreateImage", k);
	assert_string_equal(e.code, "InvalidAMIName.Duplicate");
	kerr_set(&k, KERR_CONFLICT, "instance became stopping");
	api_error_from_cloud(&e, "CreateImage", k);
	assert_string_equal(e.code, "IncorrectInstanceState");
	kerr_about(&k, KERR_LIMIT, KERR_SUBJECT_QUOTA_VCPUS, "running-vcpus", "quota exceeded");
	api_error_from_cloud(&e, "RunInstances", k);
	assert_string_equal(e.code, "VcpuLimitExceeded");
	assert_string_equal(e.message, "quota exceeded");
	kerr_about(&k, KERR_NOSPACE, KERR_SUBJECT_VOLUME, "vol-1", "no space for 'vol-1'");
	api_error_from_cloud(&e, "CreateVolume", k);
	assert_int_equal(e.status, 500);
	assert_string_equal(e.code, "InsufficientVolumeCapacity");
	api_error_from_cloud(&e, "RunInstances", k);
	assert_int_equal(e.status, 500);
	assert_string_equal(e.code, "InsufficientInstanceCapacity");
	api_error_from_cloud(&e, "CreateImage", k);
	assert_string_equal(e.code, "InsufficientCapacity");
	kerr_free(k);
	k = NULL;
	api_error_from_kerr(&e, NULL, NULL);
	assert_int_equal(e.status, 500);

	struct {
		enum api_sigv4_status s;
		int status;
		const char *code;
	} sig[] = {
	    {API_SIGV4_MISSING, 401, "MissingAuthenticationToken"},
	    {API_SIGV4_INCOMPLETE, 400, "IncompleteSignature"},
	    {API_SIGV4_MALFORMED, 401, "AuthFailure"},
	    {API_SIGV4_UNKNOWN_KEY, 401, "AuthFailure"},
	    {API_SIGV4_MISMATCH, 403, "SignatureDoesNotMatch"},
	    {API_SIGV4_EXPIRED, 400, "RequestExpired"},
	    {API_SIGV4_INTERNAL, 500, "InternalError"},
	};
	for (size_t i = 0; i < sizeof(sig) / sizeof(sig[0]); i++) {
		api_error_from_sigv4(&e, sig[i].s, NULL);
		assert_int_equal(e.status, sig[i].status);
		assert_string_equal(e.code, sig[i].code);
	}

	/* a message longer than the field is cut, not overrun */
	char longmsg[2000];
	memset(longmsg, 'm', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	api_error_set(&e, "InvalidParameterValue", "%s", longmsg);
	assert_int_equal(strlen(e.message), sizeof(e.message) - 1);

	api_error_set(&e, "InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")",
	              "foo");
	assert_int_equal(api_error_render(&e, "id-1", &b, &err), 0);
	assert_string_equal(
	    b.data,
	    DECL "<Response><Errors><Error><Code>InvalidAMIID.Malformed</Code>"
	         "<Message>Invalid id: &quot;foo&quot; (expecting &quot;ami-...&quot;)</Message>"
	         "</Error></Errors><RequestID>id-1</RequestID></Response>");
	buf_release(&b);

	/* a deployment's refusal carries the error behind it, for the destination's table */
	{
		struct kerr cause = {.kind = KERR_CONFLICT, .subject = KERR_SUBJECT_IMAGE};
		str_copy(cause.id, "ami-1", sizeof(cause.id));
		str_copy(cause.msg, "image 'ami-1' is pending", sizeof(cause.msg));
		e.has_cause = true;
		e.cause = cause;
		assert_int_equal(api_error_render(&e, "id-1", &b, &err), 0);
		assert_non_null(strstr(b.data, "<Kind>conflict</Kind><Subject>image</Subject>"
		                               "<SubjectId>ami-1</SubjectId><Cause>image "
		                               "&apos;ami-1&apos; is pending</Cause></Error>"));
		assert_int_equal(kerr_kind_parse("conflict"), KERR_CONFLICT);
		assert_int_equal(kerr_subject_parse("image"), KERR_SUBJECT_IMAGE);
		assert_int_equal(kerr_subject_parse("bogus"), KERR_SUBJECT_NONE);
		buf_release(&b);
		e.has_cause = false;
	}

	/* a request signed for STS is answered in STS's codes and its Query protocol envelope */
	e.protocol = API_PROTOCOL_STS;
	api_error_from_sigv4(&e, API_SIGV4_UNKNOWN_KEY, NULL);
	assert_int_equal(e.status, 403);
	assert_string_equal(e.code, "InvalidClientTokenId");
	api_error_from_sigv4(&e, API_SIGV4_TOKEN_EXPIRED, NULL);
	assert_int_equal(e.status, 400);
	assert_string_equal(e.code, "ExpiredToken");
	api_error_invalid_action(&e, "AssumeRole");
	assert_int_equal(api_error_render(&e, "id-2", &b, &err), 0);
	assert_string_equal(
	    b.data, DECL "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
	                 "<Error><Type>Sender</Type><Code>InvalidAction</Code><Message>The action "
	                 "AssumeRole is not valid for this web service.</Message></Error>"
	                 "<RequestId>id-2</RequestId></ErrorResponse>");
	buf_release(&b);
	api_error_from_sigv4(&e, API_SIGV4_INTERNAL, NULL);
	assert_int_equal(api_error_render(&e, "id-3", &b, &err), 0);
	assert_non_null(strstr(b.data, "<Type>Receiver</Type>"));
	buf_release(&b);
	e.protocol = API_PROTOCOL_EC2;
	api_error_from_sigv4(&e, API_SIGV4_TOKEN_INVALID, NULL);
	assert_int_equal(e.status, 401);
	assert_string_equal(e.code, "AuthFailure");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escape),    cmocka_unit_test(test_shapes),
	    cmocka_unit_test(test_time),      cmocka_unit_test(test_misuse),
	    cmocka_unit_test(test_envelopes), cmocka_unit_test(test_request_id),
	    cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
