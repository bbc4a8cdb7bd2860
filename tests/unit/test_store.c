/* Unit tests of the block store on small files in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "store/internal.h"
#include "util/cleanup.h"
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

/* A source store reached through store_export_* (as another host's daemon serves it), that
 * can damage a chunk or fail a call, and counts the chunks asked for. */
struct remote {
	struct store *s;
	size_t asked;
	int fail_chunks_after; /* calls of chunks that succeed before one fails; -1: never */
	bool damage;
};

static int remote_manifest(void *ctx, const char *id, struct buf *out, struct kerr **err)
{
	struct remote *r = ctx;

	return store_export_manifest(r->s, id, out, err);
}

static int remote_chunks(void *ctx, const char *id, const uint8_t (*hashes)[32], size_t n,
                         struct buf *out, struct kerr **err)
{
	struct remote *r = ctx;

	if (r->fail_chunks_after == 0)
		return kerr_set(err, KERR_IO, "the network went away");
	if (r->fail_chunks_after > 0)
		r->fail_chunks_after--;
	r->asked += n;
	if (store_export_chunks(r->s, id, hashes, n, out, err) < 0)
		return -1;
	if (r->damage)
		out->data[out->len - 1] ^= 1;
	return 0;
}

static void test_remote_copy(void **state)
{
	struct fixture *f = *state;
	struct store_snapshot_result r1, r2;
	struct store_copy_result cr;
	struct kerr *err = NULL;
	struct store *src, *dst;
	char dst_dir[128];
	struct remote rem = {.fail_chunks_after = -1};
	const struct store_source source = {remote_manifest, remote_chunks, &rem};
	_cleanup_buf_ struct buf junk = BUF_INIT;
	const uint8_t zero[1][32] = {{0}};

	snprintf(dst_dir, sizeof(dst_dir), "%s/dst", f->dir);
	assert_int_equal(store_init(dst_dir, NULL), 0);
	set_size(f->vol, 200 * CS);
	for (int c = 0; c < 150; c++) /* more than two batches */
		write_chunk(f->vol, (uint64_t)c, c + 1, CS);
	assert_int_equal(store_open(f->store, false, &src, &err), 0);
	assert_int_equal(store_open(dst_dir, false, &dst, &err), 0);
	rem.s = src;
	snapshot(src, f->vol, NULL, &r1);

	/* A chunk the snapshot does not use is not given out. */
	assert_int_equal(store_export_chunks(src, r1.id, zero, 1, &junk, &err), -1);
	assert_int_equal(err->kind, KERR_NOT_FOUND);

	/* Damage on the way is caught (in the last chunk of the first batch), and nothing is
	 * committed; the checked chunks before it stay. */
	rem.damage = true;
	assert_int_equal(
	    store_copy_remote(dst, &source, r1.id, "snap-00000000000000001", NULL, &cr, &err), -1);
	assert_int_equal(err->kind, KERR_CORRUPT);
	rem.damage = false;

	/* Cut off after the first batch: the next try asks only for the rest. */
	rem.fail_chunks_after = 1;
	assert_int_equal(
	    store_copy_remote(dst, &source, r1.id, "snap-00000000000000001", NULL, &cr, &err), -1);
	assert_int_equal(err->kind, KERR_IO);
	rem.fail_chunks_after = -1;
	rem.asked = 0;
	assert_int_equal(
	    store_copy_remote(dst, &source, r1.id, "snap-00000000000000001", NULL, &cr, &err), 0);
	assert_int_equal(cr.chunks, 150);
	assert_int_equal(cr.chunks_sent, 150 - (STORE_REMOTE_BATCH - 1) - STORE_REMOTE_BATCH);
	assert_int_equal(rem.asked, cr.chunks_sent);
	assert_int_equal(store_restore(dst, "snap-00000000000000001", f->out, NULL, &err), 0);
	assert_true(same_files(f->vol, f->out));

	/* A related snapshot: only the changed chunk moves. */
	write_chunk(f->vol, 7, 999, CS);
	snapshot(src, f->vol, r1.id, &r2);
	rem.asked = 0;
	assert_int_equal(
	    store_copy_remote(dst, &source, r2.id, "snap-00000000000000002", NULL, &cr, &err), 0);
	assert_int_equal(cr.chunks_sent, 1);
	assert_int_equal(rem.asked, 1);
	assert_int_equal(store_restore(dst, "snap-00000000000000002", f->out, NULL, &err), 0);
	assert_true(same_files(f->vol, f->out));
	kerr_free(err);
	store_close(src);
	store_close(dst);
}

/* Descriptors the process holds now. */
static int open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own */
}

static void count_fds(void *ctx, uint64_t done, uint64_t total)
{
	int *most = ctx, n = open_fds();

	(void)done;
	(void)total;
	*most = n > *most ? n : *most;
}

/* A restore or copy opens the packs its snapshot needs, not the store's every pack: a busy
 * daemon restores many snapshots at once from a store of many packs. */
static void test_restore_opens_its_packs(void **state)
{
	struct fixture *f = *state;
	struct store_snapshot_result r[8];
	struct kerr *err = NULL;
	struct store *s, *dst;
	int before, most = 0;
	struct store_progress p = {count_fds, &most};
	struct store_copy_result cr;
	char dst_dir[128];

	set_size(f->vol, 4 * CS);
	assert_int_equal(store_open(f->store, false, &s, &err), 0);
	for (int i = 0; i < 8; i++) { /* each new content: packs of its own */
		write_chunk(f->vol, 0, 10 + i, CS);
		write_chunk(f->vol, 3, 30 + i, CS);
		snapshot(s, f->vol, NULL, &r[i]);
	}
	before = open_fds();
	assert_int_equal(store_restore(s, r[7].id, f->out, &p, &err), 0);
	assert_true(same_files(f->vol, f->out));
	assert_true(most > before);      /* the output and its pack(s) */
	assert_true(most <= before + 3); /* not eight packs */

	snprintf(dst_dir, sizeof(dst_dir), "%s/dst", f->dir);
	assert_int_equal(store_init(dst_dir, NULL), 0);
	assert_int_equal(store_open(dst_dir, false, &dst, &err), 0);
	most = 0;
	before = open_fds();
	assert_int_equal(store_copy(s, dst, r[0].id, "snap-00000000000000009", &p, &cr, &err), 0);
	assert_int_equal(cr.chunks_sent, 2);
	assert_true(most <= before + 3);
	store_close(dst);
	store_close(s);
	kerr_free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip_and_dedup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete_gc_verify, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_remote_copy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restore_opens_its_packs, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
