/* Unit tests of src/util: buffers, errors, hex, ids, the log, two-line files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/id.h"
#include "util/kerr.h"
#include "util/log.h"

static void test_buf_limit(void **state)
{
	struct buf b;
	struct kerr *err = NULL;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_add(&b, "abcd", 4, &err), 0);
	assert_int_equal(buf_printf(&b, &err, "%d", 1234), 0);
	assert_string_equal(b.data, "abcd1234");
	assert_int_equal(buf_add(&b, "x", 1, &err), -1);
	assert_int_equal(err->kind, KERR_LIMIT);
	assert_string_equal(b.data, "abcd1234"); /* unchanged on failure */
	kerr_free(err);
	buf_release(&b);
	assert_string_equal(b.data, "");
}

static void test_kerr_wrap(void **state)
{
	struct kerr *err = NULL;

	(void)state;
	assert_int_equal(kerr_errno(&err, 2, "cannot open '%s'", "x"), -1);
	assert_int_equal(err->kind, KERR_NOT_FOUND);
	kerr_wrap(&err, "loading");
	assert_string_equal(err->msg, "loading: cannot open 'x': No such file or directory");
	kerr_free(err);
	assert_int_equal(kerr_set(NULL, KERR_IO, "ignored"), -1);
}

static void test_hash(void **state)
{
	uint8_t h[HASH_LEN], back[HASH_LEN];
	char hex[HASH_HEX_LEN + 1];

	(void)state;
	hash_sha256("abc", 3, h);
	hash_hex(h, HASH_LEN, hex);
	assert_string_equal(hex,
	                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(hash_unhex(hex, back, HASH_LEN), 0);
	assert_memory_equal(h, back, HASH_LEN);
	assert_int_equal(hash_unhex("zz", back, 1), -1);
	assert_int_equal(hash_unhex("abc", back, 1), -1);
}

static void test_ids(void **state)
{
	char a[ID_MAX], b[ID_MAX];

	(void)state;
	id_new("snap", a);
	id_new("snap", b);
	assert_true(id_valid("snap", a));
	assert_string_not_equal(a, b);
	assert_int_equal(strlen(a), strlen("snap-") + ID_HEX_DIGITS);
	assert_false(id_valid("snap", "snap-0123"));
	assert_false(id_valid("snap", "ami-0123456789abcdef0"));
	assert_false(id_valid("snap", "snap-0123456789ABCDEF0"));
	assert_true(id_valid("ami", "ami-0123456789abcdef0"));
	assert_true(id_valid("ami", "ami-12c6146b")); /* the pre-2016 8-digit ids */
	assert_false(id_valid("ami", "ami-12c6146"));
	assert_false(id_valid("ami", "ami-12c6146b0"));
	assert_false(id_valid("ami", "ami-12c6146g"));
}

/* What the log writes to stderr while fn runs, into out. */
static void capture_stderr(void (*fn)(void), char *out, size_t size)
{
	int fds[2], saved = dup(STDERR_FILENO);
	ssize_t n;

	assert_int_equal(pipe(fds), 0);
	dup2(fds[1], STDERR_FILENO);
	close(fds[1]);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = read(fds[0], out, size - 1);
	close(fds[0]);
	out[n > 0 ? n : 0] = '\0';
}

static void log_some(void)
{
	const struct log_ctx ctx = {
	    .request_id = "r-1", .action = "CopyImage", .resource = "ami-1"};
	struct kerr *e = NULL;

	log_event(LOG_LEVEL_DEBUG, &ctx, "not shown at info");
	log_event(LOG_LEVEL_INFO, &ctx, "two\nlines");
	kerr_set(&e, KERR_IO, "cannot read 'x'");
	log_kerr(LOG_LEVEL_ERROR, NULL, e, "job failed");
	kerr_free(e);
}

static void test_log(void **state)
{
	char out[1024];

	(void)state;
	unsetenv("JOURNAL_STREAM");
	setenv("KILN_LOG_LEVEL", "info", 1);
	log_setup();
	capture_stderr(log_some, out, sizeof(out));
	assert_null(strstr(out, "not shown"));
	assert_non_null(
	    strstr(out, " kiln info request=r-1 action=CopyImage resource=ami-1: two lines\n"));
	assert_non_null(strstr(out, " kiln error: job failed: cannot read 'x' (io)\n"));
	assert_int_equal(log_level_parse("WARNING"), LOG_LEVEL_WARNING);
	assert_int_equal(log_level_parse("loud"), -1);
	unsetenv("KILN_LOG_LEVEL");
}

static void test_two_lines(void **state)
{
	char dir[] = "/tmp/kiln-util-XXXXXX", a[8], b[4];
	int dfd, lockfd;
	struct kerr *err = NULL;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(fs_dir_lock(dir, &dfd, &lockfd, &err), 0);
	assert_int_equal(faccessat(dfd, ".lock", F_OK, 0), 0);
	assert_int_equal(fs_write_replace(dfd, "ok", "abc\nde\n", 7, &err), 0);
	assert_int_equal(fs_read_two_lines(dfd, "ok", a, sizeof(a), b, sizeof(b)), 0);
	assert_string_equal(a, "abc");
	assert_string_equal(b, "de");
	assert_int_equal(fs_write_replace(dfd, "one", "abc\n", 4, &err), 0);
	assert_int_equal(fs_read_two_lines(dfd, "one", a, sizeof(a), b, sizeof(b)), -1);
	assert_int_equal(fs_write_replace(dfd, "long", "abc\ndefg\n", 9, &err), 0);
	assert_int_equal(fs_read_two_lines(dfd, "long", a, sizeof(a), b, sizeof(b)), -1);
	assert_int_equal(fs_read_two_lines(dfd, "none", a, sizeof(a), b, sizeof(b)), -1);
	close(lockfd);
	close(dfd);
	assert_int_equal(fs_remove_tree(dir, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buf_limit), cmocka_unit_test(test_kerr_wrap),
	    cmocka_unit_test(test_hash),      cmocka_unit_test(test_ids),
	    cmocka_unit_test(test_log),       cmocka_unit_test(test_two_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
