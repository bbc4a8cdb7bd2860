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

/* Planning reads of neighbouring records: by pack and offset, a new group past the gap, past
 * the span, or in another pack; a record larger than the span alone. */
static void test_span_plan(void **state)
{
	struct span_item it[] = {
	    {.e = {.off = 16 + 3 * 1000, .clen = 992}, .pack = 0, .entry = 0},
	    {.e = {.off = 16, .clen = 992}, .pack = 0, .entry = 1},
	    {.e = {.off = 16 + 1000, .clen = 992}, .pack = 0, .entry = 2},
	    {.e = {.off = 16, .clen = 992}, .pack = 1, .entry = 3},
	    {.e = {.off = 16 + 4000 + SPAN_GAP + 1, .clen = 992}, .pack = 0, .entry = 4},
	    {.e = {.off = 16 + 8000 + SPAN_GAP, .clen = 9000}, .pack = 0, .entry = 5},
	};
	struct span_group g[6];
	size_t ng;

	(void)state;
	ng = span_plan(it, 6, 8000, g);
	assert_int_equal(ng, 4);
	/* pack 0: [1 2 0] neighbours, [4] past the gap, [5] past the span (and alone); pack 1 */
	assert_int_equal(g[0].first, 0);
	assert_int_equal(g[0].n, 3);
	assert_int_equal(it[0].entry, 1);
	assert_int_equal(it[1].entry, 2);
	assert_int_equal(it[2].entry, 0);
	assert_int_equal(g[1].n, 1);
	assert_int_equal(it[g[1].first].entry, 4);
	assert_int_equal(g[2].n, 1);
	assert_int_equal(it[g[2].first].entry, 5);
	assert_int_equal(g[3].n, 1);
	assert_int_equal(it[g[3].first].entry, 3);
}

/* A directory store's reads counted, as an S3 store counts its GETs; with read_span set it
 * reads as object storage does. */
static const struct blob_ops *dir_ops;
static struct blob_ops counted_ops;
static size_t preads;

static ssize_t counted_preadv(struct blob_file *f, const struct iovec *iov, int n, uint64_t off,
                              struct kerr **err)
{
	__atomic_add_fetch(&preads, 1, __ATOMIC_RELAXED);
	return dir_ops->preadv(f, iov, n, off, err);
}

static void count_reads(struct store *s)
{
	dir_ops = s->blob->ops;
	counted_ops = *dir_ops;
	counted_ops.preadv = counted_preadv;
	s->blob->ops = &counted_ops;
}

struct seen {
	uint64_t calls, done, total;
};

static void seen_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct seen *p = ctx;

	p->calls++;
	p->done = done;
	p->total = total;
}

/* Flip a byte inside the stored payload of the chunk of snapshot id at volume chunk 0. */
static void damage_first_chunk(struct store *s, const char *id)
{
	struct manifest m = {0};
	struct index idx = {0};
	const struct chunk_loc *loc;
	char path[512], name[32];
	uint8_t b;
	int fd;

	assert_int_equal(manifest_load(s, id, &m, NULL), 0);
	assert_int_equal(index_load(s, &idx, NULL), 0);
	assert_int_equal(m.e[0].chunk, 0);
	loc = index_find(&idx, m.e[0].hash);
	assert_non_null(loc);
	pack_name(idx.pack_ids[loc->pack], name);
	snprintf(path, sizeof(path), "%s/packs/%s", s->path, name);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, loc->off + PACK_RECORD_HEADER + 20), 1);
	b ^= 0xff;
	assert_int_equal(pwrite(fd, &b, 1, loc->off + PACK_RECORD_HEADER + 20), 1);
	close(fd);
	index_release(&idx);
	manifest_release(&m);
}

/* store_copy from object storage reads neighbouring records with one read each, not a read a
 * chunk; a damaged chunk still fails the copy, and the destination has no snapshot. Copies
 * between hosts (store_export_read) read the same way. */
static void test_copy_reads_neighbours_together(void **state)
{
	struct fixture *f = *state;
	struct store_snapshot_result r1, r2;
	struct store_copy_result cr;
	struct kerr *err = NULL;
	struct store *src, *plain, *dst, *far;
	char plain_dir[128], dst_dir[128], far_dir[128];
	struct seen seen = {0};
	const struct store_progress prog = {seen_progress, &seen};
	struct remote rem = {.fail_chunks_after = -1};
	const struct store_source source = {remote_manifest, remote_chunks, &rem};
	size_t one_a_chunk;

	snprintf(plain_dir, sizeof(plain_dir), "%s/plain", f->dir);
	snprintf(dst_dir, sizeof(dst_dir), "%s/dst", f->dir);
	snprintf(far_dir, sizeof(far_dir), "%s/far", f->dir);
	assert_int_equal(store_init(plain_dir, NULL), 0);
	assert_int_equal(store_init(dst_dir, NULL), 0);
	assert_int_equal(store_init(far_dir, NULL), 0);
	set_size(f->vol, 300 * CS);
	for (int c = 0; c < 300; c++)
		write_chunk(f->vol, (uint64_t)c, c + 1, CS);
	assert_int_equal(store_open(f->store, false, &src, &err), 0);
	snapshot(src, f->vol, NULL, &r1);
	store_close(src);

	/* A directory: one read a chunk. */
	assert_int_equal(store_open(f->store, false, &src, &err), 0);
	assert_int_equal(store_open(plain_dir, false, &plain, &err), 0);
	count_reads(src);
	preads = 0;
	assert_int_equal(store_copy(src, plain, r1.id, r1.id, NULL, &cr, &err), 0);
	assert_int_equal(cr.chunks_sent, 300);
	one_a_chunk = preads;
	assert_true(one_a_chunk >= 300);
	store_close(plain);

	/* Object storage: far fewer reads than chunks, the same chunks, progress to the end. */
	src->blob->read_span = 4u << 20;
	assert_int_equal(store_open(dst_dir, false, &dst, &err), 0);
	preads = 0;
	assert_int_equal(store_copy(src, dst, r1.id, r1.id, &prog, &cr, &err), 0);
	assert_int_equal(cr.chunks_sent, 300);
	assert_true(preads * 10 < cr.chunks_sent);
	print_message("copy of %zu chunks: %zu reads one a chunk, %zu grouped\n",
	              (size_t)cr.chunks_sent, one_a_chunk, preads);
	assert_int_equal(seen.done, 300);
	assert_int_equal(seen.total, 300);
	assert_true(seen.calls >= 300 / 64);
	assert_int_equal(store_restore(dst, r1.id, f->out, NULL, &err), 0);
	assert_true(same_files(f->vol, f->out));

	/* Another host's copy reads the source the same way: a batch in a few reads. */
	rem.s = src;
	preads = 0;
	assert_int_equal(store_open(far_dir, false, &far, &err), 0);
	assert_int_equal(store_copy_remote(far, &source, r1.id, r1.id, NULL, &cr, &err), 0);
	assert_int_equal(cr.chunks_sent, 300);
	assert_true(preads * 10 < cr.chunks_sent);
	assert_int_equal(store_restore(far, r1.id, f->out, NULL, &err), 0);
	assert_true(same_files(f->vol, f->out));
	store_close(far);

	/* A damaged chunk in the source fails the copy, naming it; nothing is committed. */
	for (int c = 0; c < 40; c++)
		write_chunk(f->vol, (uint64_t)c, c + 1000, CS);
	snapshot(src, f->vol, r1.id, &r2);
	damage_first_chunk(src, r2.id);
	assert_int_equal(store_copy(src, dst, r2.id, r2.id, NULL, &cr, &err), -1);
	assert_int_equal(err->kind, KERR_CORRUPT);
	assert_non_null(strstr(err->msg, "cannot copy snapshot"));
	assert_non_null(strstr(err->msg, "is damaged"));
	kerr_free(err);
	err = NULL;
	assert_int_equal(store_restore(dst, r2.id, f->out, NULL, &err), -1);
	assert_int_equal(err->kind, KERR_NOT_FOUND);
	/* and a restore from it names the chunk's place in the volume */
	assert_int_equal(store_restore(src, r2.id, f->out, NULL, &err), -1);
	assert_int_equal(err->kind, KERR_CORRUPT);
	assert_non_null(strstr(err->msg, "volume offset"));
	kerr_free(err);
	store_close(src);
	store_close(dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip_and_dedup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete_gc_verify, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_remote_copy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restore_opens_its_packs, setup, teardown),
	    cmocka_unit_test(test_span_plan),
	    cmocka_unit_test_setup_teardown(test_copy_reads_neighbours_together, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
