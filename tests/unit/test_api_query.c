/* Unit tests of src/api/query: decoding, limits, the node accessors, filters, globs; and of the
 * user data: the API's decoder (api/user_data.c) and kiln-init's header check (init/user_data.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "api/query.h"
#include "api/user_data.h"
#include "init/user_data.h"

static int decode(struct api_params *p, const char *s, struct kerr **err)
{
	api_params_init(p);
	return api_params_decode(p, s, strlen(s), NULL, err);
}

static void test_decode_basic(void **state)
{
	struct api_params p;
	struct kerr *err = NULL;

	(void)state;
	assert_int_equal(
	    decode(&p, "Action=DescribeImages&Name=a+b%20c%2A&&Flag&Empty=&Name=second&x=%C3%BC",
	           &err),
	    0);
	assert_int_equal(p.n, 6);
	/* order as received */
	assert_string_equal(p.items[0].name, "Action");
	assert_string_equal(p.items[1].value, "a b c*");
	assert_string_equal(p.items[2].name, "Flag");
	assert_string_equal(p.items[2].value, "");
	assert_string_equal(p.items[3].name, "Empty");
	assert_string_equal(p.items[5].value, "\xC3\xBC");
	/* the first of duplicates wins */
	assert_string_equal(api_params_find(&p, "Name")->value, "a b c*");
	assert_null(api_params_find(&p, "Nope"));
	api_params_release(&p);

	/* empty input, only separators */
	assert_int_equal(decode(&p, "", &err), 0);
	assert_int_equal(p.n, 0);
	assert_null(api_params_find(&p, "x"));
	assert_int_equal(api_params_decode(&p, "&&&", 3, NULL, &err), 0);
	assert_int_equal(p.n, 0);
	/* a second decode appends (query string plus body) */
	assert_int_equal(api_params_decode(&p, "b=2", 3, NULL, &err), 0);
	assert_int_equal(api_params_decode(&p, "a=1", 3, NULL, &err), 0);
	assert_int_equal(p.n, 2);
	assert_string_equal(api_params_find(&p, "a")->value, "1");
	assert_string_equal(api_params_find(&p, "b")->value, "2");
	assert_string_equal(p.items[0].name, "b");
	api_params_release(&p);
	assert_null(err);
}

static void expect_fail(const char *s, size_t len, const struct api_query_limits *lim,
                        enum kerr_kind kind)
{
	struct api_params p;
	struct kerr *err = NULL;

	api_params_init(&p);
	assert_int_equal(api_params_decode(&p, "keep=1", 6, NULL, &err), 0);
	assert_int_equal(api_params_decode(&p, s, len, lim, &err), -1);
	assert_non_null(err);
	assert_int_equal(err->kind, kind);
	/* p is as it was */
	assert_int_equal(p.n, 1);
	assert_string_equal(api_params_find(&p, "keep")->value, "1");
	kerr_free(err);
	api_params_release(&p);
}

static void test_decode_invalid(void **state)
{
	(void)state;
	expect_fail("a=%", 3, NULL, KERR_INVALID);
	expect_fail("a=%2", 4, NULL, KERR_INVALID);
	expect_fail("a=%zz", 5, NULL, KERR_INVALID);
	expect_fail("a=%2g", 5, NULL, KERR_INVALID);
	expect_fail("a=%00", 5, NULL, KERR_INVALID);
	expect_fail("a=x\0y", 5, NULL, KERR_INVALID);
	expect_fail("a%00=1", 6, NULL, KERR_INVALID);
	expect_fail("=1", 2, NULL, KERR_INVALID);           /* empty name */
	expect_fail("a%20b=1", 7, NULL, KERR_INVALID);      /* space in a name */
	expect_fail("a%0A=1", 6, NULL, KERR_INVALID);       /* control in a name */
	expect_fail("a=%C3", 5, NULL, KERR_INVALID);        /* truncated UTF-8 */
	expect_fail("a=%C0%AF", 8, NULL, KERR_INVALID);     /* overlong */
	expect_fail("a=%ED%A0%80", 11, NULL, KERR_INVALID); /* surrogate */
	expect_fail("a=%FF", 5, NULL, KERR_INVALID);
}

static void test_decode_limits(void **state)
{
	struct api_query_limits lim = API_QUERY_LIMITS_DEFAULT;
	struct api_params p;
	struct kerr *err = NULL;
	char big[300];

	(void)state;
	lim.max_pairs = 3; /* "keep" counts too */
	expect_fail("a=1&b=2&c=3", 11, &lim, KERR_LIMIT);
	lim = (struct api_query_limits)API_QUERY_LIMITS_DEFAULT;
	lim.max_value = 4;
	expect_fail("a=12345", 7, &lim, KERR_LIMIT);
	lim.max_value = 64;
	lim.max_name = 3;
	expect_fail("abcd=1", 6, &lim, KERR_LIMIT);
	lim.max_name = 200;
	lim.max_total = 10; /* "keep=1" used 6 of them */
	expect_fail("abcde", 5, &lim, KERR_LIMIT);
	/* names are capped at API_PARAM_NAME_MAX whatever the limits say */
	lim = (struct api_query_limits)API_QUERY_LIMITS_DEFAULT;
	lim.max_name = 100000;
	memset(big, 'n', sizeof(big));
	expect_fail(big, sizeof(big), &lim, KERR_LIMIT);

	/* exactly at the limits is fine */
	lim = (struct api_query_limits)API_QUERY_LIMITS_DEFAULT;
	lim.max_pairs = 2;
	lim.max_value = 3;
	lim.max_total = 13;
	api_params_init(&p);
	assert_int_equal(api_params_decode(&p, "a=%41bc&b=xyz", 13, &lim, &err), 0);
	assert_string_equal(api_params_find(&p, "a")->value, "Abc");
	api_params_release(&p);
	assert_null(err);
}

static void test_scalars(void **state)
{
	struct api_params p;
	struct api_node root;
	struct kerr *err = NULL;
	bool b = false;
	int64_t i = 0;

	(void)state;
	assert_int_equal(decode(&p,
	                        "DryRun=true&NoReboot=FALSE&Bad=yes&SubnetId=&Max=1000&Neg=-5&Big="
	                        "99999999999999999999&Sp=+5&Hex=0x10",
	                        &err),
	                 0);
	api_params_root(&p, &root);
	assert_null(api_node_str(&root, "SubnetId")); /* empty = absent */
	assert_null(api_node_str(&root, "Nope"));
	assert_string_equal(api_node_str(&root, "Max"), "1000");

	assert_int_equal(api_node_bool(&root, "DryRun", &b, &err), 1);
	assert_true(b);
	assert_int_equal(api_node_bool(&root, "NoReboot", &b, &err), 1);
	assert_false(b);
	b = true;
	assert_int_equal(api_node_bool(&root, "SubnetId", &b, &err), 0);
	assert_int_equal(api_node_bool(&root, "Missing", &b, &err), 0);
	assert_true(b); /* untouched */
	assert_int_equal(api_node_bool(&root, "Bad", &b, &err), -1);
	assert_int_equal(err->kind, KERR_INVALID);
	assert_non_null(strstr(err->msg, "'Bad'"));
	kerr_free(err);
	err = NULL;

	assert_int_equal(api_node_int(&root, "Max", 5, 1000, &i, &err), 1);
	assert_int_equal(i, 1000);
	assert_int_equal(api_node_int(&root, "Neg", -10, 10, &i, &err), 1);
	assert_int_equal(i, -5);
	assert_int_equal(api_node_int(&root, "Missing", 0, 1, &i, &err), 0);
	const char *bad[] = {"Max", "Big", "Sp", "Hex", "Bad"};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		assert_int_equal(api_node_int(&root, bad[k], 5, 999, &i, &err), -1);
		assert_int_equal(err->kind, KERR_INVALID);
		kerr_free(err);
		err = NULL;
	}
	api_params_release(&p);
}

static void test_lists(void **state)
{
	struct api_params p;
	struct api_node root, item;
	struct kerr *err = NULL;
	const char **ids;

	(void)state;
	/* out of order, a gap at 4, an empty item 6, index 10 after 1 (10 sorts before 2) */
	assert_int_equal(
	    decode(
	        &p,
	        "ImageId.3=c&ImageId.1=a&ImageId.2=b&ImageId.5=e&ImageId.10=j&Owner.1=&Owner.2=x&"
	        "ImageIdX=1&ImageId=zero",
	        &err),
	    0);
	api_params_root(&p, &root);
	assert_int_equal(api_node_count(&root, "ImageId"), 3);
	assert_int_equal(api_node_strings(&root, "ImageId", &ids), 3);
	assert_string_equal(ids[0], "a");
	assert_string_equal(ids[1], "b");
	assert_string_equal(ids[2], "c");
	free(ids);
	/* an empty first item is absent: the list is empty */
	assert_int_equal(api_node_count(&root, "Owner"), 0);
	assert_int_equal(api_node_strings(&root, "Owner", &ids), 0);
	free(ids);
	assert_int_equal(api_node_count(&root, "Nothing"), 0);
	api_node_item(&root, "ImageId", 2, &item);
	assert_string_equal(item.path, "ImageId.2");
	assert_string_equal(api_node_str(&item, NULL), "b");
	assert_true(api_node_present(&root, "ImageId"));
	assert_false(api_node_present(&root, "Owner.1"));
	api_params_release(&p);
}

static void test_nested(void **state)
{
	struct api_params p;
	struct api_node root, spec, tag, bdm, ebs;
	struct kerr *err = NULL;
	int64_t size = 0;
	bool dot = true;
	char path[API_PARAM_NAME_MAX + 1];

	(void)state;
	assert_int_equal(
	    decode(&p,
	           "TagSpecification.1.ResourceType=image&TagSpecification.1.Tag.1.Key=Name&"
	           "TagSpecification.1.Tag.1.Value=web&TagSpecification.1.Tag.2.Key=env&"
	           "TagSpecification.1.Tag.2.Value=&TagSpecification.2.ResourceType=snapshot&"
	           "TagSpecification.2.Tag.1.Key=k&"
	           "BlockDeviceMapping.1.DeviceName=%2Fdev%2Fxvda&BlockDeviceMapping.1.Ebs."
	           "VolumeSize=16&"
	           "BlockDeviceMapping.1.Ebs.DeleteOnTermination=false&BlockDeviceMapping.1.Ebs."
	           "KmsKeyId=&"
	           "BlockDeviceMapping.2.Ebs.VolumeSize=8&BlockDeviceMapping.4.DeviceName=%2Fdev%"
	           "2Fsdd",
	           &err),
	    0);
	api_params_root(&p, &root);
	assert_int_equal(api_node_count(&root, "TagSpecification"), 2);
	api_node_item(&root, "TagSpecification", 1, &spec);
	assert_string_equal(api_node_str(&spec, "ResourceType"), "image");
	assert_int_equal(api_node_count(&spec, "Tag"), 2);
	api_node_item(&spec, "Tag", 2, &tag);
	assert_string_equal(api_node_str(&tag, "Key"), "env");
	assert_null(api_node_str(&tag, "Value")); /* empty = absent */
	assert_string_equal(api_node_path(&tag, "Value", path), "TagSpecification.1.Tag.2.Value");
	api_node_item(&root, "TagSpecification", 2, &spec);
	assert_int_equal(api_node_count(&spec, "Tag"), 1);

	/* item 2 exists only through a nested member; 3 is missing so 4 is not reached */
	assert_int_equal(api_node_count(&root, "BlockDeviceMapping"), 2);
	api_node_item(&root, "BlockDeviceMapping", 1, &bdm);
	assert_string_equal(api_node_str(&bdm, "DeviceName"), "/dev/xvda");
	api_node_child(&bdm, "Ebs", &ebs);
	assert_string_equal(ebs.path, "BlockDeviceMapping.1.Ebs");
	assert_int_equal(api_node_int(&ebs, "VolumeSize", 1, 16384, &size, &err), 1);
	assert_int_equal(size, 16);
	assert_int_equal(api_node_bool(&bdm, "Ebs.DeleteOnTermination", &dot, &err), 1);
	assert_false(dot);
	assert_true(api_node_present(&bdm, "Ebs"));
	assert_false(api_node_present(&bdm, "Ebs.KmsKeyId"));
	api_node_item(&root, "BlockDeviceMapping", 2, &bdm);
	assert_null(api_node_str(&bdm, "DeviceName"));
	assert_string_equal(api_node_str(&bdm, "Ebs.VolumeSize"), "8");
	api_params_release(&p);
}

static void test_node_overflow(void **state)
{
	struct api_params p;
	struct api_node root, deep;
	struct kerr *err = NULL;
	char name[API_PARAM_NAME_MAX + 10];

	(void)state;
	assert_int_equal(decode(&p, "a=1", &err), 0);
	api_params_root(&p, &root);
	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	api_node_child(&root, name, &deep);
	assert_true(deep.overflow);
	assert_null(api_node_str(&deep, NULL));
	assert_int_equal(api_node_count(&deep, "y"), 0);
	assert_false(api_node_present(&deep, "a"));
	api_params_release(&p);
}

struct image {
	const char *name, *state;
	const char *tags[2];
};

static int image_test(void *ctx, const struct api_filter *f, struct kerr **err)
{
	const struct image *im = ctx;

	if (!strcmp(f->name, "name"))
		return api_filter_match(f, im->name);
	if (!strcmp(f->name, "state"))
		return api_filter_match(f, im->state);
	if (!strcmp(f->name, "tag-value"))
		return api_filter_match(f, im->tags[0]) || api_filter_match(f, im->tags[1]);
	return kerr_set(err, KERR_INVALID, "the filter '%s' is invalid", f->name);
}

static void test_filters(void **state)
{
	struct api_params p;
	struct api_node root;
	struct api_filters f;
	struct kerr *err = NULL;
	struct image a = {"web-2024", "available", {"prod", NULL}};
	struct image b = {"web-2023", "pending", {"dev", "x"}};
	struct image c = {"db", "available", {NULL, NULL}};

	(void)state;
	assert_int_equal(
	    decode(&p,
	           "Filter.1.Name=name&Filter.1.Value.1=web-*&Filter.1.Value.2=db&"
	           "Filter.2.Name=state&Filter.2.Value.1=available&Filter.3.Name=Ignored",
	           &err),
	    0);
	api_params_root(&p, &root);
	/* filter 3 has no values */
	assert_int_equal(api_filters_parse(&root, "Filter", &f, &err), -1);
	assert_int_equal(err->kind, KERR_INVALID);
	assert_non_null(strstr(err->msg, "Filter.3"));
	kerr_free(err);
	err = NULL;
	api_params_release(&p);

	assert_int_equal(decode(&p,
	                        "Filter.1.Name=name&Filter.1.Value.1=web-*&Filter.1.Value.2=db&"
	                        "Filter.2.Name=state&Filter.2.Value.1=available",
	                        &err),
	                 0);
	api_params_root(&p, &root);
	assert_int_equal(api_filters_parse(&root, "Filter", &f, &err), 0);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.items[0].nvalues, 2);
	assert_non_null(api_filters_find(&f, "state"));
	assert_null(api_filters_find(&f, "owner-id"));
	/* AND across names, OR across values */
	assert_int_equal(api_filters_match(&f, image_test, &a, &err), 1);
	assert_int_equal(api_filters_match(&f, image_test, &b, &err), 0);
	assert_int_equal(api_filters_match(&f, image_test, &c, &err), 1);
	api_filters_release(&f);
	api_params_release(&p);

	assert_int_equal(
	    decode(
	        &p,
	        "Filter.1.Name=tag-value&Filter.1.Value.1=x&Filter.2.Name=bogus&Filter.2.Value.1=1",
	        &err),
	    0);
	api_params_root(&p, &root);
	assert_int_equal(api_filters_parse(&root, "Filter", &f, &err), 0);
	assert_int_equal(api_filters_match(&f, image_test, &a, &err),
	                 0); /* stops at the first miss */
	assert_int_equal(api_filters_match(&f, image_test, &b, &err), -1);
	assert_non_null(strstr(err->msg, "bogus"));
	kerr_free(err);
	err = NULL;
	api_filters_release(&f);
	api_params_release(&p);

	/* no filters at all: everything matches; a filter without a name fails */
	assert_int_equal(decode(&p, "Filter.1.Value.1=x", &err), 0);
	api_params_root(&p, &root);
	assert_int_equal(api_filters_parse(&root, "Nothing", &f, &err), 0);
	assert_int_equal(f.n, 0);
	assert_int_equal(api_filters_match(&f, image_test, &a, &err), 1);
	api_filters_release(&f);
	assert_int_equal(api_filters_parse(&root, "Filter", &f, &err), -1);
	kerr_free(err);
	api_params_release(&p);
}

/* Appended pairs come after the received ones: found, counted, and never ahead of a received
 * pair of the same name. */
static void test_append(void **state)
{
	static const char *const names[] = {"Name", "SecurityGroupId.1", "SecurityGroupId.2",
	                                    "Tag"};
	static const char *const values[] = {"late", "sg-1", "sg-2", ""};
	struct api_params p;
	struct api_node root;
	struct kerr *err = NULL;

	(void)state;
	assert_int_equal(decode(&p, "Action=RunInstances&Name=first", &err), 0);
	api_params_append(&p, names, values, 4);
	api_params_append(&p, names, values, 0);
	api_params_root(&p, &root);
	assert_int_equal(p.n, 6);
	assert_string_equal(api_params_find(&p, "Name")->value, "first");
	assert_int_equal(api_node_count(&root, "SecurityGroupId"), 2);
	assert_string_equal(api_node_str(&root, "SecurityGroupId.2"), "sg-2");
	assert_non_null(api_params_find(&p, "Tag"));
	assert_null(api_node_str(&root, "Tag"));
	api_params_release(&p);

	api_params_init(&p); /* into nothing received */
	api_params_append(&p, names + 1, values + 1, 1);
	assert_string_equal(api_params_find(&p, "SecurityGroupId.1")->value, "sg-1");
	api_params_release(&p);
}

static void test_glob(void **state)
{
	(void)state;
	assert_true(api_glob_match("", ""));
	assert_false(api_glob_match("", "a"));
	assert_true(api_glob_match("*", ""));
	assert_true(api_glob_match("*", "anything"));
	assert_true(api_glob_match("abc", "abc"));
	assert_false(api_glob_match("abc", "abcd"));
	assert_false(api_glob_match("abc", "ab"));
	assert_false(api_glob_match("abc", "ABC")); /* case-sensitive */
	assert_true(api_glob_match("my-*", "my-image"));
	assert_true(api_glob_match("my-*", "my-"));
	assert_false(api_glob_match("my-*", "my"));
	assert_true(api_glob_match("*-2024-*", "web-2024-01"));
	assert_true(api_glob_match("a*b*c", "aXXbYYbZZc"));
	assert_false(api_glob_match("a*b*c", "aXXbYYbZZ"));
	assert_true(api_glob_match("a**c", "abc"));
	assert_true(api_glob_match("?", "x"));
	assert_false(api_glob_match("?", ""));
	assert_false(api_glob_match("?", "xy"));
	assert_true(api_glob_match("a?c", "abc"));
	assert_true(api_glob_match("?\xC3\xBC?", "x\xC3\xBCy"));
	assert_true(api_glob_match("a?c", "a\xC3\xBC"
	                                  "c")); /* '?' is one character, not one byte */
	assert_true(api_glob_match("a??c", "a\xE2\x82\xAC\xC3\xBC"
	                                   "c"));
	assert_false(api_glob_match("a??c", "a\xC3\xBC"
	                                    "c"));
	assert_true(api_glob_match("*?", "\xC3\xBC"));
	assert_true(api_glob_match("\\*", "*"));
	assert_false(api_glob_match("\\*", "x"));
	assert_true(api_glob_match("a\\?", "a?"));
	assert_false(api_glob_match("a\\?", "ab"));
	assert_true(api_glob_match("a\\\\b", "a\\b"));
	assert_true(api_glob_match("a\\", "a\\")); /* a trailing backslash is itself */
	assert_true(api_glob_match("\\a", "a"));
	assert_true(api_glob_match("*\\*", "xyz*"));
	assert_false(api_glob_match("*\\*", "xyz"));
	assert_true(api_glob_match("ab*ab*ab", "abababab"));
	assert_false(api_glob_match("[ab]", "a")); /* no character classes, unlike fnmatch */
	assert_true(api_glob_match("[ab]", "[ab]"));
}

/* Decodes s; on success returns the bytes (the caller frees), on failure NULL with *code set. */
static uint8_t *ud_decode(const char *s, size_t *n, struct api_error *e)
{
	uint8_t *out = (uint8_t *)"not touched";

	memset(e, 0, sizeof(*e));
	if (user_data_decode(s, &out, n, e) < 0) {
		assert_null(out);
		assert_string_equal(e->code, "InvalidParameterValue");
		return NULL;
	}
	assert_non_null(out);
	return out;
}

static void test_user_data_decode(void **state)
{
	struct api_error e;
	uint8_t *out;
	size_t n;

	(void)state;
	out = ud_decode("", &n, &e); /* empty: no bytes */
	assert_non_null(out);
	assert_int_equal(n, 0);
	free(out);
	out = ud_decode("IyEvYmluL3NoCg==", &n, &e);
	assert_int_equal(n, 10);
	assert_memory_equal(out, "#!/bin/sh\n", 10);
	free(out);
	out = ud_decode("QUI=", &n, &e);
	assert_int_equal(n, 2);
	free(out);
	out = ud_decode("AAAA", &n, &e); /* zeros are data */
	assert_int_equal(n, 3);
	assert_memory_equal(out, "\0\0\0", 3);
	free(out);

	/* Not base64: a length not a multiple of 4 (no padding), characters outside the alphabet,
	 * blanks, '=' anywhere but the last one or two. */
	const char *bad[] = {
	    "QQ",       "QUJ",  "QU-D", "QU_D", "QUJ\n",    " QUJD  ",         "QUJD\n\n\n\n",
	    "QQ==QUJD", "Q===", "====", "QU=D", "QUJD====", "\xc3\xa9\xc3\xa9"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_null(ud_decode(bad[i], &n, &e));
		assert_string_equal(e.message, "Invalid BASE64 encoding of user data");
	}
}

static void test_user_data_limit(void **state)
{
	size_t len = (USER_DATA_MAX + 1 + 2) / 3 * 4;
	uint8_t *raw = calloc(1, USER_DATA_MAX + 1), *out;
	char *b64 = malloc(len + 5);
	struct api_error e;
	size_t n;

	(void)state;
	memset(raw, 'x', USER_DATA_MAX + 1);
	/* Exactly 16 KiB: accepted. */
	EVP_EncodeBlock((unsigned char *)b64, raw, USER_DATA_MAX);
	out = ud_decode(b64, &n, &e);
	assert_int_equal(n, USER_DATA_MAX);
	assert_memory_equal(out, raw, USER_DATA_MAX);
	free(out);
	/* One byte more (the same base64 length as 16 KiB + 2), two more, or a longer string. */
	for (int extra = 1; extra <= 3; extra++) {
		EVP_EncodeBlock((unsigned char *)b64, raw, USER_DATA_MAX + (extra < 3 ? extra : 1));
		if (extra == 3)
			memcpy(b64 + strlen(b64), "QUJD", 5);
		assert_null(ud_decode(b64, &n, &e));
		assert_string_equal(e.message, "User data is limited to 16384 bytes");
	}
	free(raw);
	free(b64);
}

static void test_user_data_kind(void **state)
{
	static const struct {
		const char *head;
		size_t n;
		enum user_data_kind kind;
	} cases[] = {
	    {"", 0, USER_DATA_EMPTY},
	    {"#!/bin/sh\necho hi\n", 18, USER_DATA_SCRIPT},
	    {"#!", 2, USER_DATA_SCRIPT},
	    {"#", 1, USER_DATA_SHELL},
	    {"#!", 1, USER_DATA_SHELL}, /* only the bytes given */
	    {"echo hi\n", 8, USER_DATA_SHELL},
	    {"#cloud-boothook\necho hi\n", 24,
	     USER_DATA_SHELL}, /* a shell script to cloud-init too */
	    {"# comment\n#!/bin/sh\n", 20, USER_DATA_SHELL},
	    {" #!/bin/sh\n", 11, USER_DATA_SHELL},
	    {"#cloud-config\nusers: []\n", 24, USER_DATA_CLOUD_CONFIG},
	    {"#cloud-config", 13, USER_DATA_CLOUD_CONFIG},
	    {"#cloud-confi", 12, USER_DATA_SHELL},
	    {"#cloud-config-archive\n", 22, USER_DATA_CLOUD_CONFIG},
	    {"#Cloud-Config\n", 14, USER_DATA_SHELL}, /* as kiln-init always did */
	    {"#include\nhttps://example.com/a\n", 31, USER_DATA_INCLUDE},
	    {"#include-once\n", 14, USER_DATA_INCLUDE},
	    {"#part-handler\n", 14, USER_DATA_PART_HANDLER},
	    {"#upstart-job\n", 13, USER_DATA_UPSTART_JOB},
	    {"## template: jinja\n#!/bin/sh\n", 29, USER_DATA_TEMPLATE},
	    {"\x1f\x8b\x08\x00", 4, USER_DATA_GZIP},
	    {"\x1f", 1, USER_DATA_SHELL},
	    {"Content-Type: multipart/mixed; boundary=\"x\"\n", 44, USER_DATA_MIME},
	    {"MIME-Version: 1.0\n", 18, USER_DATA_MIME},
	    {"content-TYPE: text/x-shellscript\n", 33, USER_DATA_MIME},
	    {"Content-Type", 12, USER_DATA_SHELL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum user_data_kind k = user_data_kind(cases[i].head, cases[i].n);
		if (k != cases[i].kind)
			fail_msg("'%s' (%zu bytes): kind %d, not %d", cases[i].head, cases[i].n, k,
			         cases[i].kind);
	}
	/* Named (in kiln-init's log) exactly when kiln-init does not run it. */
	for (int k = 0; k < USER_DATA_KIND__COUNT; k++)
		assert_int_equal(user_data_kind_name(k) != NULL, k != USER_DATA_EMPTY &&
		                                                     k != USER_DATA_SHELL &&
		                                                     k != USER_DATA_SCRIPT);
	assert_string_equal(user_data_kind_name(USER_DATA_CLOUD_CONFIG), "#cloud-config");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decode_basic),
	    cmocka_unit_test(test_decode_invalid),
	    cmocka_unit_test(test_decode_limits),
	    cmocka_unit_test(test_scalars),
	    cmocka_unit_test(test_lists),
	    cmocka_unit_test(test_nested),
	    cmocka_unit_test(test_node_overflow),
	    cmocka_unit_test(test_filters),
	    cmocka_unit_test(test_glob),
	    cmocka_unit_test(test_append),
	    cmocka_unit_test(test_user_data_decode),
	    cmocka_unit_test(test_user_data_limit),
	    cmocka_unit_test(test_user_data_kind),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
