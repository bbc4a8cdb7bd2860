/* Unit tests of src/api/cache (kept answers shared by reference, made once while others wait)
 * and src/api/ratelimit (token buckets per account and class). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "api/cache.h"
#include "api/ratelimit.h"
#include "api/xml.h"

#define RID  "00000000-0000-4000-8000-000000000000"
#define BODY "<R><requestId>" RID "</requestId><x/></R>"

static void test_get_put_share(void **state)
{
	struct api_cache *c = api_cache_new(1 << 20, 60000);
	struct api_cache_answer *a, *b;
	size_t len, at;
	const char *body;

	(void)state;
	assert_null(api_cache_get(c, "k", 1)); /* this caller makes it */
	api_cache_put(c, "k", 1, BODY, strlen(BODY), strlen("<R><requestId>"));
	a = api_cache_get(c, "k", 1);
	b = api_cache_get(c, "k", 1);
	assert_non_null(a);
	assert_ptr_equal(a, b); /* shared, not copied */
	body = api_cache_answer_body(a, &len, &at);
	assert_int_equal(len, strlen(BODY));
	assert_memory_equal(body + at, RID, API_REQUEST_ID_LEN);
	/* A write: the next generation is made anew; the old answer lives while it is held. */
	assert_null(api_cache_get(c, "k", 2));
	api_cache_abandon(c, "k", 2);
	assert_memory_equal(body, BODY, len);
	api_cache_answer_release(a);
	api_cache_answer_release(b);
	api_cache_free(c);
}

struct waiter {
	struct api_cache *c;
	struct api_cache_answer *got;
};

static void *wait_for(void *arg)
{
	struct waiter *w = arg;

	w->got = api_cache_get(w->c, "k", 7);
	return NULL;
}

static void test_made_once(void **state)
{
	struct api_cache *c = api_cache_new(1 << 20, 60000);
	struct waiter w = {.c = c};
	pthread_t t;

	(void)state;
	assert_null(api_cache_get(c, "k", 7)); /* claimed here */
	assert_int_equal(pthread_create(&t, NULL, wait_for, &w), 0);
	usleep(50000); /* it waits for this answer instead of making its own */
	api_cache_put(c, "k", 7, BODY, strlen(BODY), strlen("<R><requestId>"));
	pthread_join(t, NULL);
	assert_non_null(w.got);
	api_cache_answer_release(w.got);

	/* Abandoned: the waiter makes its own. */
	assert_null(api_cache_get(c, "j", 7));
	w.got = (void *)1;
	assert_int_equal(pthread_create(&t, NULL, wait_for, &w), 0);
	pthread_join(t, NULL); /* "k" is kept: it gets it at once */
	assert_non_null(w.got);
	api_cache_answer_release(w.got);
	api_cache_abandon(c, "j", 7);
	assert_null(api_cache_get(c, "j", 7));
	api_cache_abandon(c, "j", 7);
	api_cache_free(c);
}

static void test_rate_limits(void **state)
{
	struct api_rate_limits l = {0};
	struct api_ratelimit *r;
	struct kerr *err = NULL;
	int passed = 0;

	(void)state;
	assert_null(api_ratelimit_new(&l)); /* none configured: no limiter at all */
	assert_true(api_ratelimit_take(NULL, "111122223333", API_RATE_DESCRIBE));
	assert_int_equal(api_rate_limit_parse("0.5:3", &l.cls[API_RATE_DESCRIBE], &err), 0);
	assert_int_equal(api_rate_limit_parse("fast", &l.cls[API_RATE_MUTATING], &err), -1);
	kerr_free(err);
	err = NULL;
	assert_int_equal(api_rate_limit_parse("1:", &l.cls[API_RATE_MUTATING], &err), -1);
	kerr_free(err);
	err = NULL;
	l.cls[API_RATE_MUTATING] = (struct api_rate_limit){0};
	r = api_ratelimit_new(&l);
	for (int i = 0; i < 10; i++)
		passed += api_ratelimit_take(r, "111122223333", API_RATE_DESCRIBE);
	assert_int_equal(passed, 3); /* the bucket, and nothing refilled in microseconds */
	assert_true(api_ratelimit_take(r, "444455556666", API_RATE_DESCRIBE)); /* its own */
	assert_true(api_ratelimit_take(r, "111122223333", API_RATE_MUTATING)); /* no limit */
	api_ratelimit_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get_put_share),
	    cmocka_unit_test(test_made_once),
	    cmocka_unit_test(test_rate_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
