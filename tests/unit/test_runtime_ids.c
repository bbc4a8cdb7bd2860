/* Unit tests of src/runtime/ids.c: host uid/gid ranges are slots of one host-wide directory
 * (KILN_IDS_DIR here), so that two run directories never hold the same range, and each run
 * directory's recovery and release touch its own slots only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "runtime/confine.h"
#include "runtime/runtime.h"
#include "util/fs.h"

struct fixture {
	char root[64];
	char ids[PATH_MAX];
	struct runtime *a, *b;
	char run_a[PATH_MAX], run_b[PATH_MAX];
};

static struct runtime *open_run(const char *dir)
{
	struct runtime *rt = NULL;
	struct kerr *err = NULL;

	assert_int_equal(runtime_open(dir, "/bin/true", "/bin/true", &rt, &err), 0);
	return rt;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->root, sizeof(f->root), "/tmp/kiln-ids-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	snprintf(f->ids, sizeof(f->ids), "%s/ids", f->root);
	snprintf(f->run_a, sizeof(f->run_a), "%s/a/run", f->root);
	snprintf(f->run_b, sizeof(f->run_b), "%s/b/run", f->root);
	setenv("KILN_IDS_DIR", f->ids, 1);
	f->a = open_run(f->run_a);
	f->b = open_run(f->run_b);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	runtime_close(f->a);
	runtime_close(f->b);
	fs_remove_tree(f->root, NULL);
	unsetenv("KILN_IDS_DIR");
	free(f);
	return 0;
}

/* A new instance of rt given its range: its id_base. */
static unsigned assign(struct runtime *rt, const char *id)
{
	struct instance_spec spec = {.stop_timeout = 10};
	struct kerr *err = NULL;

	snprintf(spec.id, sizeof(spec.id), "%s", id);
	if (runtime_ids_assign(rt, &spec, &err) < 0)
		fail_msg("%s", err->msg);
	assert_true(spec.id_base >= CONFINE_ID_FIRST);
	assert_int_equal((spec.id_base - CONFINE_ID_FIRST) % CONFINE_ID_RANGE, 0);
	return spec.id_base;
}

static char *slot_text(const struct fixture *f, unsigned id_base)
{
	static char text[PATH_MAX + 64];
	char path[PATH_MAX + 32];
	size_t n;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%u", f->ids, runtime_ids_slot(id_base));
	fp = fopen(path, "re");
	if (!fp)
		return NULL;
	n = fread(text, 1, sizeof(text) - 1, fp);
	text[n] = '\0';
	fclose(fp);
	return text;
}

static bool slot_names(const struct fixture *f, unsigned id_base, const char *run, const char *id)
{
	char want[PATH_MAX + 64];
	const char *t = slot_text(f, id_base);

	snprintf(want, sizeof(want), "%s\n%s\n", run, id);
	return t && !strcmp(t, want);
}

#define ID1 "i-0123456789abc0001"
#define ID2 "i-0123456789abc0002"

static void test_two_run_dirs_never_share_a_range(void **state)
{
	struct fixture *f = *state;
	/* The same instance id in both (a copied data directory): the same first try. */
	unsigned a = assign(f->a, ID1), b = assign(f->b, ID1);

	assert_int_not_equal(a, b);
	assert_true(slot_names(f, a, f->run_a, ID1));
	assert_true(slot_names(f, b, f->run_b, ID1));
	/* Kept: the next start has the same range. */
	assert_int_equal(assign(f->a, ID1), a);
	assert_int_equal(assign(f->b, ID1), b);
}

static void test_release_is_the_instances_own(void **state)
{
	struct fixture *f = *state;
	unsigned a = assign(f->a, ID1), b = assign(f->b, ID1);
	struct kerr *err = NULL;

	assert_int_equal(runtime_ids_release(f->a, ID1, &err), 0);
	assert_null(slot_text(f, a));
	assert_true(slot_names(f, b, f->run_b, ID1));
	/* The slot is free again: the next instance of a may take it. */
	assert_int_equal(assign(f->a, ID1), a);
}

static void test_recovery_keeps_its_own_and_never_anothers(void **state)
{
	struct fixture *f = *state;
	unsigned a1 = assign(f->a, ID1), a2 = assign(f->a, ID2), b1 = assign(f->b, ID1);
	char dir[PATH_MAX + 32];
	struct kerr *err = NULL;

	/* a's ID2 went (its run directory forgot it, as after a crash mid-terminate); b's ID1
	 * is gone from b's run directory too. */
	snprintf(dir, sizeof(dir), "%s/%s", f->run_a, ID2);
	assert_int_equal(fs_remove_tree(dir, NULL), 0);
	snprintf(dir, sizeof(dir), "%s/%s", f->run_b, ID1);
	assert_int_equal(fs_remove_tree(dir, NULL), 0);
	assert_int_equal(runtime_ids_recover(f->a, true, &err), 0);
	assert_true(slot_names(f, a1, f->run_a, ID1));
	assert_null(slot_text(f, a2));
	assert_true(slot_names(f, b1, f->run_b, ID1)); /* b's to recover, not a's */
	/* kiln down: the stopped instances' slots go too (never started, so stopped). */
	assert_int_equal(runtime_ids_recover(f->a, false, &err), 0);
	assert_null(slot_text(f, a1));
	assert_true(slot_names(f, b1, f->run_b, ID1));
}

static void test_a_dead_slot_is_taken_a_held_one_never(void **state)
{
	struct fixture *f = *state;
	unsigned b1 = assign(f->b, ID1), b2 = assign(f->b, ID2), a;
	char dir[PATH_MAX + 32];
	struct kerr *err = NULL;
	int hold = -1;

	/* b's instance ID2 runs (its shim holds the slot), then b's data directory is removed. */
	assert_int_equal(runtime_ids_hold(f->run_b, ID2, b2, &hold, &err), 0);
	snprintf(dir, sizeof(dir), "%s/b", f->root);
	assert_int_equal(fs_remove_tree(dir, NULL), 0);
	/* Same last digits: a's instances try b's slots first. ID1's is dead and taken; ID2's is
	 * held and skipped. */
	assert_int_equal(assign(f->a, ID1), b1);
	assert_true(slot_names(f, b1, f->run_a, ID1));
	a = assign(f->a, ID2);
	assert_int_not_equal(a, b2);
	assert_true(slot_names(f, b2, f->run_b, ID2));
	close(hold);
}

static void test_the_shim_holds_only_its_own_slot(void **state)
{
	struct fixture *f = *state;
	unsigned a = assign(f->a, ID1), b = assign(f->b, ID1);
	struct kerr *err = NULL;
	int hold = -1;

	assert_int_equal(runtime_ids_hold(f->run_a, ID1, b, &hold, &err), -1);
	assert_int_equal(err->kind, KERR_CONFLICT);
	kerr_free(err);
	err = NULL;
	assert_int_equal(runtime_ids_hold(f->run_a, ID1, CONFINE_ID_FIRST - 1, &hold, &err), -1);
	kerr_free(err);
	err = NULL;
	assert_int_equal(runtime_ids_hold(f->run_a, ID1, a, &hold, &err), 0);
	assert_true(hold >= 0);
	close(hold);
}

static void test_recovery_clears_a_replace_cut_short(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX + 32];
	struct kerr *err = NULL;
	int fd;

	assign(f->a, ID1);
	snprintf(path, sizeof(path), "%s/.new-7", f->ids);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(runtime_ids_recover(f->a, true, &err), 0);
	assert_int_equal(access(path, F_OK), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_two_run_dirs_never_share_a_range, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_release_is_the_instances_own, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_recovery_keeps_its_own_and_never_anothers, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_a_dead_slot_is_taken_a_held_one_never, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_the_shim_holds_only_its_own_slot, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_recovery_clears_a_replace_cut_short, setup,
	                                    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
