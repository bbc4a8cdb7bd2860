/* Unit tests of the Catalog's ingestion scan: ext4 images made by mkfs.ext4 -d from a directory,
 * read by debugfs as the scan reads a seller's snapshot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cloud/catalog.h"
#include "util/spawn.h"

static char dir[64];

static void put(const char *path, const char *text)
{
	char full[512], *slash;
	FILE *f;

	snprintf(full, sizeof(full), "%s/root/%s", dir, path);
	for (slash = strchr(full + strlen(dir) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(full, 0755);
		*slash = '/';
	}
	f = fopen(full, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* The image of dir/root, scanned: why's text ("" when it passes). */
static char *scan(void)
{
	char root[128], img[128];
	char *const mkfs[] = {"mkfs.ext4", "-q", "-F", "-d", root, img, "8M", NULL};
	struct buf why = BUF_INIT;
	struct kerr *err = NULL;
	char *out;

	snprintf(root, sizeof(root), "%s/root", dir);
	snprintf(img, sizeof(img), "%s/img", dir);
	unlink(img);
	{
		FILE *f = fopen(img, "w");
		assert_non_null(f);
		fclose(f);
	}
	assert_int_equal(spawn_run(mkfs, &err), 0);
	assert_int_equal(catalog_scan_root(img, &why, &err), 0);
	out = strdup(why.data ? why.data : "");
	buf_release(&why);
	return out;
}

static int setup(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/kiln-scan-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/root", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_a_clean_image_passes(void **state)
{
	char *why;

	(void)state;
	put("etc/shadow", "root:!:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n");
	put("etc/ssh/sshd_config", "# PasswordAuthentication yes\nPasswordAuthentication no\n");
	put("root/.ssh/id_ed25519.pub", "ssh-ed25519 AAAA seller\n");
	put("home/admin/.profile", "\n");
	why = scan();
	assert_string_equal(why, "");
	free(why);
}

static void test_a_leaky_image_fails_with_each_reason(void **state)
{
	char *why;

	(void)state;
	put("etc/shadow", "root:!:19000::::::\nalice:$6$salt$hash:19000::::::\n");
	put("etc/ssh/sshd_config",
	    "Port 22\n  passwordauthentication   YES\nPasswordAuthentication no\n");
	put("root/.ssh/id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\n");
	put("home/alice/.ssh/authorized_keys", "ssh-ed25519 AAAA alice\n");
	why = scan();
	assert_non_null(strstr(why, "/home/alice/.ssh/authorized_keys is left in the image"));
	assert_non_null(strstr(why, "private key /root/.ssh/id_rsa"));
	assert_non_null(strstr(why, "password for user 'alice'"));
	assert_null(strstr(why, "user 'root'"));
	assert_non_null(strstr(why, "PasswordAuthentication yes"));
	free(why);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_a_clean_image_passes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_leaky_image_fails_with_each_reason, setup,
	                                    teardown),
	};

	if (system("command -v mkfs.ext4 >/dev/null && command -v debugfs >/dev/null") != 0)
		return 77; /* e2fsprogs missing: skip */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
