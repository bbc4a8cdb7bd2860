/* Unit tests of the regions file of separate deployments (cloud/peers.c) and of the
 * topology's stores in object storage (cloud/topology.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cloud/cloud.h"

#define KEY "0123456789abcdef0123456789abcdef"

static void test_parse(void **state)
{
	struct cloud_deployment d;
	struct kerr *err = NULL;

	(void)state;
	assert_int_equal(cloud_deployment_parse("# two\nregion us-east-1 http://10.250.0.1:8773\n"
	                                        "region eu-west-1 https://h:1  # B\n"
	                                        "internal-key " KEY "\n",
	                                        "eu-west-1", &d, &err),
	                 0);
	assert_string_equal(d.region, "eu-west-1");
	assert_int_equal(d.npeers, 2);
	assert_string_equal(d.peers[0].region, "us-east-1");
	assert_string_equal(d.peers[0].endpoint, "http://10.250.0.1:8773");
	assert_string_equal(d.peers[1].endpoint, "https://h:1");
	assert_string_equal(d.key, KEY);
	cloud_deployment_release(&d);
}

static void test_refused(void **state)
{
	static const struct {
		const char *text, *region, *says;
	} bad[] = {
	    {"region us-east-1 http://a:1\n", "us-east-1", "no 'internal-key'"},
	    {"region us-east-1 http://a:1\ninternal-key short\n", "us-east-1", "32 to 128"},
	    {"region us-east-1 http://a:1\ninternal-key " KEY "\n", "eu-west-1",
	     "does not name region 'eu-west-1'"},
	    {"region us-east-1 ftp://a:1\ninternal-key " KEY "\n", "us-east-1", "line 1"},
	    {"region us-east-1\ninternal-key " KEY "\n", "us-east-1", "line 1"},
	    {"region us-east-1 http://a:1\nregion us-east-1 http://b:1\n", "us-east-1", "twice"},
	    {"endpoint us-east-1 http://a:1\n", "us-east-1", "expected 'region'"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cloud_deployment d;
		struct kerr *err = NULL;

		assert_int_equal(cloud_deployment_parse(bad[i].text, bad[i].region, &d, &err), -1);
		assert_int_equal(err->kind, KERR_INVALID);
		if (!strstr(err->msg, bad[i].says))
			fail_msg("'%s' says '%s'", bad[i].text, err->msg);
		kerr_free(err);
	}
}

static void test_topology_stores(void **state)
{
	static const struct {
		const char *text, *says;
	} bad[] = {
	    {"us-east-1 a\nstore us-east-1 /srv/store\n", "must be an s3:// URL"},
	    {"us-east-1 a\nstore us-east-1\n", "a store line is"},
	    {"us-east-1 a\nstore eu-west-1 s3://kiln/x?endpoint=http://h:1\n",
	     "which it does not list"},
	    {"us-east-1 a\nstore us-east-1 s3://kiln/x?endpoint=http://h:1\n"
	     "store us-east-1 s3://kiln/y?endpoint=http://h:1\n",
	     "two stores"},
	    {"us-east-1 a\nstore us-east-1 s3://kiln/x?endpoint=http://h:1&secret=s\n",
	     "credentials never go in the URL"},
	    {"us-east-1 a\nstore us-east-1 s3://kiln/x?endpoint=ftp://h:1\n", "http(s)://"},
	};
	struct topology t;
	struct kerr *err = NULL;

	(void)state;
	assert_int_equal(topology_parse("us-east-1 a b\neu-west-1 a\n"
	                                "store eu-west-1 s3://kiln/eu-west-1?endpoint=http://"
	                                "127.0.0.1:7480  # Ceph\n",
	                                &t, &err),
	                 0);
	assert_int_equal(t.nstores, 1);
	assert_string_equal(t.stores[0].region, "eu-west-1");
	assert_string_equal(t.stores[0].url, "s3://kiln/eu-west-1?endpoint=http://127.0.0.1:7480");
	topology_release(&t);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		assert_int_equal(topology_parse(bad[i].text, &t, &err), -1);
		assert_int_equal(err->kind, KERR_INVALID);
		if (!strstr(err->msg, bad[i].says))
			fail_msg("'%s' says '%s'", bad[i].text, err->msg);
		kerr_free(err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_topology_stores),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
