/* Unit tests of the keys and regions kept per database generation (cloud/memo.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cloud/internal.h"

#define SECRET "abcdefghijklmnopqrstuvwxyz0123456789ABCD"

static struct account account(const char *id)
{
	struct account a = {0};

	snprintf(a.id, sizeof(a.id), "%s", id);
	snprintf(a.name, sizeof(a.name), "name-%s", id);
	return a;
}

static void test_kept_for_its_generation(void **state)
{
	struct cloud c = {0};
	struct account a = account("111122223333"), got;
	char secret[SECRET_KEY_LEN + 1];

	(void)state;
	cloud_memo_init(&c);
	assert_false(cloud_memo_key(&c, 5, "AKIAAAAAAAAAAAAAAAAA", &got, secret));
	cloud_memo_put_key(&c, 5, "AKIAAAAAAAAAAAAAAAAA", &a, SECRET);
	assert_true(cloud_memo_key(&c, 5, "AKIAAAAAAAAAAAAAAAAA", &got, secret));
	assert_string_equal(got.id, "111122223333");
	assert_string_equal(got.name, "name-111122223333");
	assert_string_equal(secret, SECRET);
	assert_false(cloud_memo_key(&c, 5, "AKIABBBBBBBBBBBBBBBB", &got, secret));
	/* A write since: nothing kept counts. */
	assert_false(cloud_memo_key(&c, 6, "AKIAAAAAAAAAAAAAAAAA", &got, secret));
	cloud_memo_free(&c);
}

static void test_older_generation_not_kept(void **state)
{
	struct cloud c = {0};
	struct account a = account("111122223333"), b = account("444455556666"), got;
	char secret[SECRET_KEY_LEN + 1];

	(void)state;
	cloud_memo_init(&c);
	cloud_memo_put_key(&c, 7, "AKIAAAAAAAAAAAAAAAAA", &a, SECRET);
	/* Found under generation 6, before a write the lookup of 7 already saw: not kept. */
	cloud_memo_put_key(&c, 6, "AKIABBBBBBBBBBBBBBBB", &b, SECRET);
	assert_false(cloud_memo_key(&c, 6, "AKIABBBBBBBBBBBBBBBB", &got, secret));
	assert_true(cloud_memo_key(&c, 7, "AKIAAAAAAAAAAAAAAAAA", &got, secret));
	/* A newer generation's entry replaces everything of the older. */
	cloud_memo_put_key(&c, 8, "AKIABBBBBBBBBBBBBBBB", &b, SECRET);
	assert_true(cloud_memo_key(&c, 8, "AKIABBBBBBBBBBBBBBBB", &got, secret));
	assert_string_equal(got.id, "444455556666");
	assert_false(cloud_memo_key(&c, 8, "AKIAAAAAAAAAAAAAAAAA", &got, secret));
	cloud_memo_free(&c);
}

static void test_many_keys_and_bad_lengths(void **state)
{
	struct cloud c = {0};
	struct account a = account("111122223333"), got;
	char secret[SECRET_KEY_LEN + 1], key[32];

	(void)state;
	cloud_memo_init(&c);
	for (int i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "AKIA%016d", i);
		cloud_memo_put_key(&c, 1, key, &a, SECRET);
		assert_true(cloud_memo_key(&c, 1, key, &got, secret));
	}
	/* Too long to be a key, or its secret too long: not kept (and not cut to fit). */
	cloud_memo_put_key(&c, 1, "AKIAAAAAAAAAAAAAAAAAX", &a, SECRET);
	assert_false(cloud_memo_key(&c, 1, "AKIAAAAAAAAAAAAAAAAAX", &got, secret));
	assert_false(cloud_memo_key(&c, 1, "AKIAAAAAAAAAAAAAAAAA", &got, secret));
	cloud_memo_put_key(&c, 1, "AKIACCCCCCCCCCCCCCCC", &a, SECRET "E");
	assert_false(cloud_memo_key(&c, 1, "AKIACCCCCCCCCCCCCCCC", &got, secret));
	cloud_memo_free(&c);
}

static void test_regions(void **state)
{
	struct cloud c = {0};

	(void)state;
	cloud_memo_init(&c);
	assert_false(cloud_memo_region(&c, 3, "us-east-1"));
	cloud_memo_put_region(&c, 3, "us-east-1");
	assert_true(cloud_memo_region(&c, 3, "us-east-1"));
	assert_false(cloud_memo_region(&c, 3, "eu-west-1"));
	assert_false(cloud_memo_region(&c, 4, "us-east-1"));
	cloud_memo_free(&c);
	/* A cloud without a memo (cloud_init's) keeps nothing and finds nothing. */
	cloud_memo_put_region(&c, 3, "us-east-1");
	assert_false(cloud_memo_region(&c, 3, "us-east-1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kept_for_its_generation),
	    cmocka_unit_test(test_older_generation_not_kept),
	    cmocka_unit_test(test_many_keys_and_bad_lengths),
	    cmocka_unit_test(test_regions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
