/* Unit tests of the manifest format: round trip, and every kind of damage refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "store/internal.h"

static void make(struct manifest *m, size_t n)
{
	memset(m, 0, sizeof(*m));
	m->chunk_size = STORE_CHUNK_SIZE;
	m->volume_size = (uint64_t)STORE_CHUNK_SIZE * 100 + 17;
	m->created_ns = 1234567890;
	memcpy(m->parent, "snap-0123456789abcdef0", 23);
	m->e = calloc(n, sizeof(*m->e));
	m->n = n;
	for (size_t i = 0; i < n; i++) {
		m->e[i].chunk = i * 3;
		memset(m->e[i].hash, (int)i + 1, HASH_LEN);
	}
}

static void test_round_trip(void **state)
{
	struct manifest m, back;
	struct kerr *err = NULL;
	uint8_t *data;
	size_t len;

	(void)state;
	make(&m, 34);
	assert_int_equal(manifest_encode(&m, &data, &len, &err), 0);
	assert_int_equal(manifest_decode(data, len, &back, &err), 0);
	assert_int_equal(back.n, 34);
	assert_int_equal(back.volume_size, m.volume_size);
	assert_string_equal(back.parent, m.parent);
	assert_memory_equal(back.e, m.e, 34 * sizeof(*m.e));
	manifest_release(&back);
	manifest_release(&m);
	free(data);
}

static void test_damage_refused(void **state)
{
	struct manifest m, back;
	struct kerr *err = NULL;
	uint8_t *data;
	size_t len;

	(void)state;
	make(&m, 5);
	assert_int_equal(manifest_encode(&m, &data, &len, &err), 0);
	for (size_t i = 0; i < len; i++) {
		data[i] ^= 0x40;
		assert_int_equal(manifest_decode(data, len, &back, &err), -1);
		assert_int_equal(err->kind, KERR_CORRUPT);
		data[i] ^= 0x40;
	}
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(manifest_decode(data, cut, &back, &err), -1);
	kerr_free(err);
	manifest_release(&m);
	free(data);
}

static void test_out_of_range_refused(void **state)
{
	struct manifest m, back;
	struct kerr *err = NULL;
	uint8_t *data;
	size_t len;

	(void)state;
	make(&m, 2);
	m.e[1].chunk = 101; /* past the end of a 100-and-a-bit-chunk volume */
	assert_int_equal(manifest_encode(&m, &data, &len, &err), 0);
	assert_int_equal(manifest_decode(data, len, &back, &err), -1);
	free(data);
	m.e[1].chunk = 0; /* not increasing */
	assert_int_equal(manifest_encode(&m, &data, &len, &err), 0);
	assert_int_equal(manifest_decode(data, len, &back, &err), -1);
	free(data);
	kerr_free(err);
	manifest_release(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_damage_refused),
	    cmocka_unit_test(test_out_of_range_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
