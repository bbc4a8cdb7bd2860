/* Unit tests of the marketplace's money (exact decimals in micro-dollars), of reading the
 * product codes the row readers select, and of billed hours split by month. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cloud/internal.h"

static void test_money_parse(void **state)
{
	static const struct {
		const char *text;
		int64_t micros;
	} good[] = {{"0", 0},         {"0.15", 150000},     {"1", 1000000},
	            {"0.000001", 1},  {"12.5", 12500000},   {"1000000", 1000000000000},
	            {"0.30", 300000}, {"3.141592", 3141592}};
	static const char *const bad[] = {"",    ".5",   "1.",      "-1",    "0.1234567",
	                                  "1e3", "0,15", "1000001", "0.15 ", "abc"};
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct kerr *err = NULL;
		int64_t m = -1;
		assert_int_equal(cloud_money_parse(good[i].text, &m, &err), 0);
		assert_int_equal(m, good[i].micros);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kerr *err = NULL;
		int64_t m = -1;
		assert_int_equal(cloud_money_parse(bad[i], &m, &err), -1);
		assert_int_equal(err->kind, KERR_INVALID);
		kerr_free(err);
	}
}

static void test_money_format(void **state)
{
	char out[32];

	(void)state;
	cloud_money_format(0, out);
	assert_string_equal(out, "0.00");
	cloud_money_format(600000, out);
	assert_string_equal(out, "0.60");
	cloud_money_format(150000 * 4, out);
	assert_string_equal(out, "0.60");
	cloud_money_format(1, out);
	assert_string_equal(out, "0.000001");
	cloud_money_format(123456789, out);
	assert_string_equal(out, "123.456789");
	cloud_money_format(10000000, out);
	assert_string_equal(out, "10.00");
	/* 0.1 ten times is exactly 1.00: no binary floating point on the way */
	{
		int64_t sum = 0, tenth;
		struct kerr *err = NULL;
		assert_int_equal(cloud_money_parse("0.1", &tenth, &err), 0);
		for (int i = 0; i < 10; i++)
			sum += tenth;
		cloud_money_format(sum, out);
		assert_string_equal(out, "1.00");
	}
}

static void test_month_parse(void **state)
{
	int64_t ms;

	(void)state;
	assert_int_equal(cloud_month_parse("2026-12", &ms, NULL), 0);
	assert_int_equal(ms, (int64_t)1796083200 * 1000); /* 2026-12-01T00:00:00Z */
	assert_int_equal(cloud_month_parse("1970-01", &ms, NULL), 0);
	assert_int_equal(ms, 0);
	for (const char *const *bad =
	         (const char *const[]){"2026-13", "2026-00", "2026-1", "26-12", "2026/12",
	                               "2026-12x", "1969-12", "", NULL};
	     *bad; bad++) {
		_cleanup_kerr_ struct kerr *err = NULL;
		assert_int_equal(cloud_month_parse(*bad, &ms, &err), -1);
		assert_int_equal(err->kind, KERR_INVALID);
	}
}

/* Started hours count from the run's start and go to the month in which they start. */
static void test_run_hours_split_at_months(void **state)
{
	const int64_t h = 3600 * 1000, dec = (int64_t)1796083200 * 1000,
	              jan = (int64_t)1798761600 * 1000; /* 2026-12-01, 2027-01-01 */
	struct month_hours *v = NULL;
	size_t n = 0;

	(void)state;
	cloud_run_hours(dec + 10 * 60 * 1000, dec + 2 * h + 30 * 60 * 1000, &v, &n); /* 2h20m */
	assert_int_equal(n, 1);
	assert_string_equal(v[0].month, "2026-12");
	assert_int_equal(v[0].hours, 3);
	/* 23:30 to 01:30 over the year's end: hours from 23:30 and 00:30, one in each month. */
	free(v), v = NULL, n = 0;
	cloud_run_hours(jan - h / 2, jan + h + h / 2, &v, &n);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].month, "2026-12");
	assert_int_equal(v[0].hours, 1);
	assert_string_equal(v[1].month, "2027-01");
	assert_int_equal(v[1].hours, 1);
	/* 23:30 to 00:10: one started hour, in December, though it ends in January. */
	free(v), v = NULL, n = 0;
	cloud_run_hours(jan - h / 2, jan + h / 6, &v, &n);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].month, "2026-12");
	assert_int_equal(v[0].hours, 1);
	/* A run of the whole of December and a minute: 744 hours, then 1. */
	free(v), v = NULL, n = 0;
	cloud_run_hours(dec, jan + 60 * 1000, &v, &n);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].hours, 744);
	assert_int_equal(v[1].hours, 1);
	free(v);
}

static void test_codes_split(void **state)
{
	char codes[PRODUCT_CODES_MAX][PRODUCT_CODE_LEN + 1];
	size_t n = 9;

	(void)state;
	cloud_product_codes_split("", codes, &n);
	assert_int_equal(n, 0);
	cloud_product_codes_split("aw0evgkw8e5c1q413zgy5pjce", codes, &n);
	assert_int_equal(n, 1);
	assert_string_equal(codes[0], "aw0evgkw8e5c1q413zgy5pjce");
	cloud_product_codes_split("a b c d e f", codes, &n);
	assert_int_equal(n, PRODUCT_CODES_MAX);
	assert_string_equal(codes[3], "d");
	/* a word longer than a code is not one */
	cloud_product_codes_split("aw0evgkw8e5c1q413zgy5pjcezz x", codes, &n);
	assert_int_equal(n, 1);
	assert_string_equal(codes[0], "x");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_money_parse),
	    cmocka_unit_test(test_money_format),
	    cmocka_unit_test(test_codes_split),
	    cmocka_unit_test(test_month_parse),
	    cmocka_unit_test(test_run_hours_split_at_months),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
