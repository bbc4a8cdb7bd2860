/* Unit tests of src/api/imds_token: tokens bound to an instance and a time, and the TTL header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "api/imds_token.h"

static void test_tokens(void **state)
{
	struct imds_token_key key, other;
	struct kerr *err = NULL;
	char tok[IMDS_TOKEN_LEN + 1], bad[IMDS_TOKEN_LEN + 1];

	(void)state;
	assert_int_equal(imds_token_key_init(&key, &err), 0);
	assert_int_equal(imds_token_key_init(&other, &err), 0);
	imds_token_make(&key, "i-0123456789abcdef0", 1000, tok);
	assert_int_equal(strlen(tok), IMDS_TOKEN_LEN);
	/* good until its end, not at it */
	assert_int_equal(imds_token_check(&key, tok, "i-0123456789abcdef0", 999), 0);
	assert_int_equal(imds_token_check(&key, tok, "i-0123456789abcdef0", 1000), -1);
	/* another instance's, another daemon's key */
	assert_int_equal(imds_token_check(&key, tok, "i-0123456789abcdef1", 10), -1);
	assert_int_equal(imds_token_check(&other, tok, "i-0123456789abcdef0", 10), -1);
	/* a later end written in does not pass the MAC; nor any changed character */
	memcpy(bad, tok, sizeof(bad));
	bad[15] = bad[15] == 'f' ? 'e' : 'f';
	assert_int_equal(imds_token_check(&key, bad, "i-0123456789abcdef0", 10), -1);
	memcpy(bad, tok, sizeof(bad));
	bad[IMDS_TOKEN_LEN - 1] = bad[IMDS_TOKEN_LEN - 1] == '0' ? '1' : '0';
	assert_int_equal(imds_token_check(&key, bad, "i-0123456789abcdef0", 10), -1);
	/* shapes */
	assert_int_equal(imds_token_check(&key, NULL, "i-0123456789abcdef0", 10), -1);
	assert_int_equal(imds_token_check(&key, "", "i-0123456789abcdef0", 10), -1);
	assert_int_equal(imds_token_check(&key, "zz", "i-0123456789abcdef0", 10), -1);
	memcpy(bad, tok, sizeof(bad));
	bad[3] = 'G';
	assert_int_equal(imds_token_check(&key, bad, "i-0123456789abcdef0", 10), -1);
}

static void test_ttl(void **state)
{
	(void)state;
	assert_int_equal(imds_ttl_parse("1"), 1);
	assert_int_equal(imds_ttl_parse("21600"), 21600);
	assert_int_equal(imds_ttl_parse("300"), 300);
	assert_int_equal(imds_ttl_parse("21601"), -1);
	assert_int_equal(imds_ttl_parse("0"), -1);
	assert_int_equal(imds_ttl_parse("01"), -1);
	assert_int_equal(imds_ttl_parse("-1"), -1);
	assert_int_equal(imds_ttl_parse(" 1"), -1);
	assert_int_equal(imds_ttl_parse("1x"), -1);
	assert_int_equal(imds_ttl_parse(""), -1);
	assert_int_equal(imds_ttl_parse(NULL), -1);
	assert_int_equal(imds_ttl_parse("999999999999"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tokens),
	    cmocka_unit_test(test_ttl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
