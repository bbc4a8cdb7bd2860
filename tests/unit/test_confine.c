/* Unit tests of src/runtime/confine.c: each test confines a forked child and reports what the
 * kernel then allows it, so the test process itself stays unconfined. Needs root (77 without). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/confine.h"

/* Run fn in a child; its exit code (0 = every check held) is the result. */
static int in_child(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn());
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

/* Every check that fails names itself by its line number in the exit code. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "line %d: %s\n", __LINE__, #cond);                         \
			return 1;                                                                  \
		}                                                                                  \
	} while (0)

static int refused(long r, int want)
{
	return r == -1 && errno == want;
}

static int seccomp_child(void)
{
	struct kerr *err = NULL;

	CHECK(confine_seccomp(&err) == 0);
	CHECK(getpid() > 0); /* ordinary calls pass */
	CHECK(refused(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0),
	              EPERM));
	CHECK(refused(syscall(SYS_add_key, "user", "k", "v", 1, KEY_SPEC_SESSION_KEYRING), EPERM));
	CHECK(refused(syscall(SYS_bpf, 0, NULL, 0), EPERM));
	CHECK(refused(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0), EPERM));
	CHECK(refused(syscall(SYS_kexec_load, 0, 0, NULL, 0), EPERM));
	CHECK(refused(syscall(SYS_finit_module, -1, "", 0), EPERM));
	CHECK(refused(syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, 0), EPERM));
	CHECK(refused(unshare(CLONE_NEWUSER), EPERM));
	CHECK(refused(unshare(CLONE_NEWNS), EPERM));
	CHECK(refused(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL), EPERM));
	CHECK(refused(syscall(SYS_clone3, NULL, 0), ENOSYS));
	CHECK(refused(socket(AF_ALG, SOCK_SEQPACKET, 0), EAFNOSUPPORT));
	/* An ordinary fork (clone without namespace flags) still works. */
	pid_t pid = fork();
	if (pid == 0)
		_exit(7);
	int st;
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 7);
	return 0;
}

static void test_seccomp_refuses_the_kernels_global_state(void **state)
{
	(void)state;
	assert_int_equal(in_child(seccomp_child), 0);
}

static int status_field(const char *name, char *out, size_t size)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	size_t n = strlen(name);
	int found = -1;

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, name, n) && line[n] == ':') {
			snprintf(out, size, "%s", line + n + 2);
			out[strcspn(out, "\n")] = '\0';
			found = 0;
		}
	if (f)
		fclose(f);
	return found;
}

static int caps_child(void)
{
	struct kerr *err = NULL;
	char v[64];

	CHECK(confine_capabilities(&err) == 0);
	/* Docker's fourteen: chown dac_override fowner fsetid kill setgid setuid setpcap
	 * net_bind_service net_raw sys_chroot mknod audit_write setfcap. */
	CHECK(status_field("CapBnd", v, sizeof(v)) == 0 && !strcmp(v, "00000000a80425fb"));
	CHECK(status_field("CapEff", v, sizeof(v)) == 0 && !strcmp(v, "00000000a80425fb"));
	CHECK(status_field("CapInh", v, sizeof(v)) == 0 && !strcmp(v, "0000000000000000"));
	CHECK(status_field("CapAmb", v, sizeof(v)) == 0 && !strcmp(v, "0000000000000000"));
	CHECK(status_field("NoNewPrivs", v, sizeof(v)) == 0 && !strcmp(v, "0"));
	return 0;
}

static void test_capabilities_are_dockers_default_set(void **state)
{
	(void)state;
	assert_int_equal(in_child(caps_child), 0);
}

static int userns_child(void)
{
	int p[2], q[2];
	char c = 0, path[64], map[128];
	struct kerr *err = NULL;
	pid_t pid;

	CHECK(pipe(p) == 0 && pipe(q) == 0);
	pid = fork();
	if (pid == 0) { /* the holder: a user namespace, waiting to be mapped */
		if (unshare(CLONE_NEWUSER) < 0 || write(p[1], "y", 1) != 1 ||
		    read(q[0], &c, 1) != 1)
			_exit(1);
		/* Host root is not mapped: inside, the holder is nobody. */
		_exit(getuid() == 65534 && getgid() == 65534 ? 0 : 2);
	}
	CHECK(read(p[0], &c, 1) == 1);
	CHECK(confine_idmap_write(pid, CONFINE_ID_FIRST, &err) == 0);
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	FILE *f = fopen(path, "re");
	CHECK(f && fgets(map, sizeof(map), f));
	fclose(f);
	unsigned inside, outside, count;
	CHECK(sscanf(map, "%u %u %u", &inside, &outside, &count) == 3);
	CHECK(inside == 0 && outside == CONFINE_ID_FIRST && count == CONFINE_ID_RANGE);
	/* Joined from outside, the mapped root is root inside and nobody on the host. */
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0 && confine_become_root(fd, &err) == 0);
	CHECK(getuid() == 0 && geteuid() == 0 && getgid() == 0);
	CHECK(write(q[1], "y", 1) == 1);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return 0;
}

static void test_user_namespace_maps_a_host_range_of_its_own(void **state)
{
	(void)state;
	assert_int_equal(in_child(userns_child), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_seccomp_refuses_the_kernels_global_state),
	    cmocka_unit_test(test_capabilities_are_dockers_default_set),
	    cmocka_unit_test(test_user_namespace_maps_a_host_range_of_its_own),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_confine: needs root\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
