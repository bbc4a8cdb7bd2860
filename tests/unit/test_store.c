/* Unit tests of the block store on small files in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "store/internal.h"
#include "util/fs.h"

#define CS STORE_CHUNK_SIZE

struct fixture {
	char dir[64];
	char store[96];
	char vol[96];
	char out[96];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/kiln-test-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->store, sizeof(f->store), "%s/store", f->dir);
	snprintf(f->vol, sizeof(f->vol), "%s/vol.img", f->dir);
	snprintf(f->out, sizeof(f->out), "%s/out.img", f->dir);
	if (store_init(f->store, NULL) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* Fill chunk c of the volume with a pattern of seed (0: leave a hole). */
static void write_chunk(const char *path, uint64_t c, int seed, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	uint8_t *buf = malloc(CS);

	assert_true(fd >= 0);
	for (size_t i = 0; i < CS; i++)
		buf[i] = (uint8_t)(seed * 131 + (i % 251) * (seed % 7 + 1));
	assert_int_equal(fs_pwrite_full(fd, buf, len, (off_t)(c * CS)), 0);
	close(fd);
	free(buf);
}

static void set_size(const char *path, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static int same_files(const char *a, const char *b)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", a, b);
	return system(cmd) == 0;
}

static void snapshot(struct store *s, const char *vol, const char *parent,
                     struct store_snapshot_result *res)
{
	struct store_snapshot_opts o = {.parent = parent};
	struct kerr *err = NULL;

	if (store_snapshot(s, vol, &o, res, &err) < 0)
		fail_msg("snapshot: %s", err->msg);
}

static void test_round_trip_and_dedup(void **state)
{
	struct fixture *f = *state;
	struct store_snapshot_result r1, r2;
	struct store_stats st;
	struct kerr *err = NULL;
	struct store *s;

	set_size(f->vol, 20 * CS + 1000); /* odd tail */
	write_chunk(f->vol, 1, 1, CS);
	write_chunk(f->vol, 2, 1, CS); /* same content as chunk 1 */
	write_chunk(f->vol, 5, 2, CS);
	write_chunk(f->vol, 20, 3, 1000);
	assert_int_equal(store_open(f->store, false, &s, &err), 0);
	snapshot(s, f->vol, NULL, &r1);
	assert_int_equal(r1.chunks_new, 3); /* chunk 2 deduplicated against chunk 1 */
	assert_int_equal(store_restore(s, r1.id, f->out, NULL, &err), 0);
	assert_true(same_files(f->vol, f->out));

	write_chunk(f->vol, 5, 4, CS);
	snapshot(s, f->vol, r1.id, &r2);
	assert_int_equal(r2.chunks_new, 1);
	assert_int_equal(store_restore(s, r2.id, f->out, NULL, &err), 0);
	assert_true(same_files(f->vol, f->out));

	assert_int_equal(store_stats(s, &st, &err), 0);
	assert_int_equal(st.snapshots, 2);
	assert_int_equal(st.unique_chunks, 4);
	assert_int_equal(st.logical_bytes, 2 * (3 * CS + 1000));
	store_stats_release(&st);
	store_close(s);
}

static void test_delete_gc_verify(void **state)
{
	struct fixture *f = *state;
	struct store_snapshot_result r1, r2;
	struct store_verify_result vr;
	struct store_gc_result gr;
	struct kerr *err = NULL;
	struct store *s;

	set_size(f->vol, 8 * CS);
	for (int c = 0; c < 8; c++)
		write_chunk(f->vol, (uint64_t)c, c + 10, CS);
	assert_int_equal(store_open(f->store, true, &s, &err), 0);
	snapshot(s, f->vol, NULL, &r1);
	for (int c = 0; c < 8; c++)
		write_chunk(f->vol, (uint64_t)c, c + 50, CS);
	snapshot(s, f->vol, r1.id, &r2);
	assert_int_equal(store_delete(s, r1.id, &err), 0);
	assert_int_equal(store_delete(s, r1.id, &err), -1);
	assert_int_equal(err->kind, KERR_NOT_FOUND);
	assert_int_equal(store_gc(s, &gr, &err), 0);
	assert_int_equal(gr.packs_removed, 1); /* r1's pack held only r1's chunks */
	assert_int_equal(store_verify(s, NULL, NULL, &vr, &err), 0);
	assert_int_equal(vr.chunks_checked, 8);
	assert_int_equal(store_restore(s, r2.id, f->out, NULL, &err), 0);
	assert_true(same_files(f->vol, f->out));
	kerr_free(err);
	store_close(s);
}

static void test_bad_input(void **state)
{
	struct fixture *f = *state;
	struct store_snapshot_result r;
	struct store_snapshot_opts o = {0};
	struct kerr *err = NULL;
	struct store *s;

	assert_int_equal(store_open(f->dir, false, &s, &err), -1); /* not a store */
	assert_int_equal(err->kind, KERR_INVALID);
	assert_int_equal(store_init(f->store, &err), -1);
	assert_int_equal(err->kind, KERR_CONFLICT);
	assert_int_equal(store_open(f->store, false, &s, &err), 0);
	assert_int_equal(store_snapshot(s, "/nonexistent/vol", &o, &r, &err), -1);
	assert_int_equal(err->kind, KERR_NOT_FOUND);
	set_size(f->vol, CS);
	o.parent = "snap-00000000000000000";
	assert_int_equal(store_snapshot(s, f->vol, &o, &r, &err), -1);
	assert_int_equal(err->kind, KERR_NOT_FOUND);
	o.parent = "not-an-id";
	assert_int_equal(store_snapshot(s, f->vol, &o, &r, &err), -1);
	assert_int_equal(err->kind, KERR_INVALID);
	assert_int_equal(store_restore(s, "snap-00000000000000000", f->out, NULL, &err), -1);
	assert_int_equal(err->kind, KERR_NOT_FOUND);
	kerr_free(err);
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip_and_dedup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete_gc_verify, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
