/* kiln-init: PID 1 of a container instance. It publishes the instance metadata under /run/kiln,
 * runs the user data once per instance (unless the image leaves it to cloud-init), starts sshd and
 * the image's rc.d services, reaps every process, and stops them all on SIGTERM. Static and plain
 * libc, so it runs in any root volume. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "init/user_data.h"
#include "util/cleanup.h"
#include "util/banned.h"

#define KILN_RUN_DIR        "/run/kiln"
#define KILN_META_DIR       KILN_RUN_DIR "/meta"
#define KILN_USER_DATA      KILN_RUN_DIR "/user-data"
#define KILN_USER_DATA_EXEC KILN_RUN_DIR "/user-data.run"
#define KILN_OPENSSH_KEY    KILN_RUN_DIR "/openssh-key"
#define KILN_STATE_DIR      "/var/lib/kiln"
#define KILN_STATE_ID       KILN_STATE_DIR "/instance-id"
#define KILN_RC_DIR         "/etc/kiln/rc.d"
#define KILN_CLOUD_INIT     "/etc/kiln/cloud-init"
#define KILN_SSHD           "/usr/sbin/sshd"
#define KILN_DROPBEAR       "/usr/sbin/dropbear"
#define KILN_PATH           "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define KILN_STOP_DEFAULT   10
#define KILN_MAX_ENV        64
#define KILN_MAX_SMALL      (64 * 1024) /* instance ids, public keys, authorized_keys */

extern char **environ;

/* What the runtime passes in the environment, and the EC2 metadata paths that serve it. */
enum kiln_var {
	KV_INSTANCE_ID,
	KV_IMAGE_ID,
	KV_REGION,
	KV_ZONE,
	KV_INSTANCE_TYPE,
	KV_LOCAL_IPV4,
	KV_HOSTNAME,
	KV_MAC,
	KV_COUNT,
};

static const char *const kiln_var_names[KV_COUNT] = {
    [KV_INSTANCE_ID] = "KILN_INSTANCE_ID",
    [KV_IMAGE_ID] = "KILN_IMAGE_ID",
    [KV_REGION] = "KILN_REGION",
    [KV_ZONE] = "KILN_ZONE",
    [KV_INSTANCE_TYPE] = "KILN_INSTANCE_TYPE",
    [KV_LOCAL_IPV4] = "KILN_LOCAL_IPV4",
    [KV_HOSTNAME] = "KILN_HOSTNAME",
    [KV_MAC] = "KILN_MAC",
};

static const struct kiln_meta_file {
	const char *path;
	enum kiln_var var;
} kiln_meta_files[] = {
    {"instance-id", KV_INSTANCE_ID},
    {"ami-id", KV_IMAGE_ID},
    {"placement/region", KV_REGION},
    {"placement/availability-zone", KV_ZONE},
    {"instance-type", KV_INSTANCE_TYPE},
    {"local-ipv4", KV_LOCAL_IPV4},
    {"hostname", KV_HOSTNAME},
    {"local-hostname", KV_HOSTNAME},
    {"mac", KV_MAC},
};

/* Host keys baked into an image must not be shared by its instances. */
static const struct kiln_host_key {
	const char *dir;
	const char *pattern;
} kiln_host_keys[] = {
    {"/etc/ssh", "ssh_host_*_key*"},
    {"/etc/dropbear", "dropbear_*_host_key"},
};

/* SIGTERM is a stop; SIGINT and SIGPWR too; busybox halt and poweroff send SIGUSR1/SIGUSR2. */
static const int kiln_stop_signals[] = {SIGTERM, SIGINT, SIGPWR, SIGUSR1, SIGUSR2};

static const char *kiln_vars[KV_COUNT];
static char *kiln_child_env[KILN_MAX_ENV + 3];
static sigset_t kiln_waited;
static bool kiln_stopping;
static long kiln_stop_timeout = KILN_STOP_DEFAULT;
static pid_t kiln_sshd_pid;   /* reported on the console should it ever exit */
static pid_t kiln_keygen_pid; /* the slow host keys, made while the instance boots on */
static const char *kiln_sshd_name;

static int kiln_write_full(int fd, const void *data, size_t len)
{
	for (size_t done = 0; done < len;) {
		ssize_t w = write(fd, (const char *)data + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		done += (size_t)w;
	}
	return 0;
}

/* One console line, written with a single write(2) so children's output does not split it. */
__attribute__((format(printf, 1, 2))) static void kiln_log(const char *fmt, ...)
{
	char line[1024];
	size_t len = sizeof("kiln-init: ") - 1;
	int saved = errno;
	va_list ap;
	int n;

	memcpy(line, "kiln-init: ", len);
	va_start(ap, fmt);
	n = vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
	va_end(ap);
	if (n > 0)
		len += (size_t)n < sizeof(line) - len - 1 ? (size_t)n : sizeof(line) - len - 2;
	line[len++] = '\n';
	kiln_write_full(STDOUT_FILENO, line, len);
	errno = saved;
}

/* Reads up to len bytes; returns how many, or -1. */
static ssize_t kiln_read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = read(fd, (char *)buf + done, len - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/* A small file's content, NUL-terminated; NULL with errno set when missing or too large. */
static char *kiln_read_small(const char *path, size_t *len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *buf = NULL;
	ssize_t n;

	if (fd < 0)
		return NULL;
	buf = malloc(KILN_MAX_SMALL + 1);
	if (!buf)
		return NULL;
	n = kiln_read_full(fd, buf, KILN_MAX_SMALL + 1);
	if (n < 0)
		return NULL;
	if (n > KILN_MAX_SMALL) {
		errno = EFBIG;
		return NULL;
	}
	buf[n] = '\0';
	if (len)
		*len = (size_t)n;
	return steal_ptr(buf);
}

static int kiln_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	_cleanup_close_ int fd =
	    open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);

	if (fd < 0 || kiln_write_full(fd, data, len) < 0)
		return -1;
	return 0;
}

/* mkdir -p; the last component gets mode. */
static int kiln_mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static bool kiln_is_executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

/* The first executable `name` in the children's PATH. */
static bool kiln_which(const char *name, char *out, size_t size)
{
	static const char *const dirs[] = {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
	                                   "/usr/bin",        "/sbin",          "/bin"};

	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		int n = snprintf(out, size, "%s/%s", dirs[i], name);
		if (n > 0 && (size_t)n < size && kiln_is_executable(out))
			return true;
	}
	return false;
}

static long kiln_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void kiln_on_signal(int sig)
{
	(void)sig; /* never runs: the signals stay blocked and are taken by sigtimedwait */
}

/* PID 1 gets no default actions: every signal it acts on has a handler and is blocked, and the
 * main loop takes them with sigtimedwait, so none is lost between a check and a wait. */
static void kiln_signals_init(void)
{
	struct sigaction sa = {.sa_handler = kiln_on_signal};

	sigemptyset(&kiln_waited);
	sigaddset(&kiln_waited, SIGCHLD);
	for (size_t i = 0; i < ARRAY_SIZE(kiln_stop_signals); i++)
		sigaddset(&kiln_waited, kiln_stop_signals[i]);
	sigprocmask(SIG_BLOCK, &kiln_waited, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(kiln_stop_signals); i++)
		sigaction(kiln_stop_signals[i], &sa, NULL);
}

/* Waits for one signal (timeout_ms < 0: for ever); a stop signal sets kiln_stopping. */
static void kiln_wait_signal(long timeout_ms)
{
	struct timespec ts = {.tv_sec = timeout_ms / 1000,
	                      .tv_nsec = (timeout_ms % 1000) * 1000000L};
	int sig = sigtimedwait(&kiln_waited, NULL, timeout_ms < 0 ? NULL : &ts);

	for (size_t i = 0; i < ARRAY_SIZE(kiln_stop_signals); i++)
		if (sig == kiln_stop_signals[i])
			kiln_stopping = true;
}

/* "<what> exited with status N" as a shell would give N: 128 + signal for a killed process. */
static void kiln_report(const char *what, int status)
{
	if (WIFSIGNALED(status))
		kiln_log("%s exited with status %d (killed by signal %d)", what,
		         128 + WTERMSIG(status), WTERMSIG(status));
	else
		kiln_log("%s exited with status %d", what, WEXITSTATUS(status));
}

/* Reaps every exited child. Returns 1 when `want` was among them (its status in *status), -1
 * when no child is left at all, else 0. */
static int kiln_reap(pid_t want, int *status)
{
	int found = 0;

	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0)
			return found ? 1 : -1;
		if (pid == 0)
			return found;
		if (pid == want) {
			*status = st;
			found = 1;
		}
		if (pid == kiln_keygen_pid) {
			kiln_keygen_pid = 0;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				kiln_report("ssh-keygen -A", st);
		}
		if (pid == kiln_sshd_pid && !kiln_stopping) {
			kiln_report(kiln_sshd_name, st);
			kiln_sshd_pid = 0;
		}
	}
}

/* Children start clean: default dispositions, nothing blocked, their own session, stdin from
 * /dev/null, and the environment built by kiln_env_init. */
static void kiln_child_setup(void)
{
	/* The system call, not sigaction(3): glibc refuses its two internal real-time signals, and
	 * one ignored by whoever started the runtime would stay ignored in every service. An
	 * all-zero kernel sigaction is SIG_DFL, no flags, empty mask, whatever the layout. */
	const unsigned long dfl[4] = {0};
	sigset_t none;
	int fd;

	for (int sig = 1; sig < _NSIG; sig++)
		syscall(SYS_rt_sigaction, sig, dfl, NULL, _NSIG / 8);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setsid();
	fd = open("/dev/null", O_RDONLY);
	if (fd > STDIN_FILENO) {
		dup2(fd, STDIN_FILENO);
		close(fd);
	}
}

static void kiln_env_init(void)
{
	size_t n = 0;

	kiln_child_env[n++] = "PATH=" KILN_PATH;
	kiln_child_env[n++] = "HOME=/root";
	for (char **e = environ; *e && n < ARRAY_SIZE(kiln_child_env) - 1; e++)
		if (!strncmp(*e, "KILN_", 5))
			kiln_child_env[n++] = *e;
	kiln_child_env[n] = NULL;
}

/* Starts argv[0] (an absolute path); returns its pid, or -1 when it could not start or a stop
 * has begun. */
static pid_t kiln_spawn_to(char *const argv[], bool silent);

static pid_t kiln_spawn(char *const argv[])
{
	return kiln_spawn_to(argv, false);
}

/* silent: stdout to /dev/null (stderr stays on the console, for errors). */
static pid_t kiln_spawn_to(char *const argv[], bool silent)
{
	pid_t pid;

	if (kiln_stopping)
		return -1;
	pid = fork();
	if (pid < 0) {
		kiln_log("cannot start '%s': %s", argv[0], strerror(errno));
		return -1;
	}
	if (pid == 0) {
		kiln_child_setup();
		if (silent) {
			int null = open("/dev/null", O_WRONLY);
			if (null >= 0 && null != STDOUT_FILENO) {
				dup2(null, STDOUT_FILENO);
				close(null);
			}
		}
		execve(argv[0], argv, kiln_child_env);
		kiln_log("cannot run '%s': %s", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Runs argv[0] and waits for it, reaping everything else meanwhile. Returns its wait status, or
 * -1 when it could not start or a stop came first (it is then left to the shutdown). */
static int kiln_run(char *const argv[])
{
	pid_t pid = kiln_spawn(argv);
	int status;

	if (pid < 0)
		return -1;
	for (;;) {
		if (kiln_reap(pid, &status) == 1)
			return status;
		if (kiln_stopping)
			return -1;
		kiln_wait_signal(-1);
	}
}

static bool kiln_safe_value(const char *v)
{
	static const char safe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                           "0123456789._:-/";

	return strspn(v, safe) == strlen(v);
}

/* meta.env: KEY=value lines a shell can source (values quoted only when they need it). */
static int kiln_write_meta_env(void)
{
	_cleanup_close_ int fd = open(KILN_RUN_DIR "/meta.env",
	                              O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);

	if (fd < 0)
		return -1;
	for (int v = 0; v < KV_COUNT; v++) {
		const char *val = kiln_vars[v];
		if (kiln_safe_value(val)) {
			if (dprintf(fd, "%s=%s\n", kiln_var_names[v], val) < 0)
				return -1;
			continue;
		}
		if (dprintf(fd, "%s='", kiln_var_names[v]) < 0)
			return -1;
		for (; *val; val++) {
			int r = *val == '\'' ? dprintf(fd, "'\\''") : dprintf(fd, "%c", *val);
			if (r < 0)
				return -1;
		}
		if (dprintf(fd, "'\n") < 0)
			return -1;
	}
	return 0;
}

static void kiln_write_meta(void)
{
	char path[PATH_MAX];

	if (kiln_mkdir_p(KILN_META_DIR "/placement", 0755) < 0) {
		kiln_log("cannot create '%s': %s", KILN_META_DIR, strerror(errno));
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(kiln_meta_files); i++) {
		const char *val = kiln_vars[kiln_meta_files[i].var];
		snprintf(path, sizeof(path), "%s/%s", KILN_META_DIR, kiln_meta_files[i].path);
		if (kiln_write_file(path, val, strlen(val), 0644) < 0)
			kiln_log("cannot write '%s': %s", path, strerror(errno));
	}
	if (kiln_write_meta_env() < 0)
		kiln_log("cannot write '%s': %s", KILN_RUN_DIR "/meta.env", strerror(errno));
}

static void kiln_vars_init(void)
{
	const char *s = getenv("KILN_STOP_TIMEOUT");

	for (int v = 0; v < KV_COUNT; v++) {
		kiln_vars[v] = getenv(kiln_var_names[v]);
		if (!kiln_vars[v])
			kiln_vars[v] = "";
	}
	if (s && *s) {
		char *end;
		long t;
		errno = 0;
		t = strtol(s, &end, 10);
		if (errno || *end || t < 0 || t > 86400)
			kiln_log("invalid KILN_STOP_TIMEOUT '%s', using %d s", s,
			         KILN_STOP_DEFAULT);
		else
			kiln_stop_timeout = t;
	}
}

/* A first boot is one where the root volume last booted as another instance, or never. */
static bool kiln_first_boot(const char *id)
{
	_cleanup_free_ char *seen = kiln_read_small(KILN_STATE_ID, NULL);
	size_t len;

	if (!seen) {
		if (errno == ENOENT)
			return true;
		/* Unreadable: better to keep keys and not repeat the user data than to guess. */
		kiln_log("cannot read '%s': %s", KILN_STATE_ID, strerror(errno));
		return false;
	}
	len = strlen(seen);
	while (len && (seen[len - 1] == '\n' || seen[len - 1] == ' '))
		seen[--len] = '\0';
	return strcmp(seen, id) != 0;
}

/* Write-temp, fsync, rename, fsync-dir: the user data must never run twice for one instance. */
static void kiln_record_instance(const char *id)
{
	static const char tmp[] = KILN_STATE_ID ".tmp";
	_cleanup_close_ int fd = -1;
	_cleanup_close_ int dir = -1;

	if (kiln_mkdir_p(KILN_STATE_DIR, 0755) < 0)
		goto on_error;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 || kiln_write_full(fd, id, strlen(id)) < 0 || kiln_write_full(fd, "\n", 1) < 0 ||
	    fsync(fd) < 0 || rename(tmp, KILN_STATE_ID) < 0)
		goto on_error;
	dir = open(KILN_STATE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0 || fsync(dir) < 0)
		goto on_error;
	return;
on_error:
	kiln_log("cannot record instance id in '%s': %s", KILN_STATE_ID, strerror(errno));
	unlink(tmp);
}

/* Counts the files of dir matching pattern, deleting them when remove is set. */
static int kiln_match_files(const char *dir, const char *pattern, bool remove)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int count = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (fnmatch(pattern, de->d_name, FNM_PERIOD))
			continue;
		count++;
		if (remove && unlinkat(dirfd(d), de->d_name, 0) < 0)
			kiln_log("cannot delete '%s/%s': %s", dir, de->d_name, strerror(errno));
	}
	closedir(d);
	return count;
}

static void kiln_delete_host_keys(void)
{
	int n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(kiln_host_keys); i++)
		n += kiln_match_files(kiln_host_keys[i].dir, kiln_host_keys[i].pattern, true);
	if (n)
		kiln_log("deleted %d SSH host key file%s inherited from the image", n,
		         n == 1 ? "" : "s");
}

/* Who logs in with the key pair: the user /etc/kiln/login-user names (debian-12: admin, as in
 * Debian's cloud images), root when the image names none. */
struct kiln_login {
	char name[64];
	char home[PATH_MAX];
	uid_t uid;
	gid_t gid;
};

/* name's entry in /etc/passwd (name:password:uid:gid:gecos:home:shell); false when absent. */
static bool kiln_passwd_find(const char *name, struct kiln_login *out)
{
	_cleanup_free_ char *pw = kiln_read_small("/etc/passwd", NULL);
	size_t nlen = strlen(name);

	for (char *line = pw, *next; line; line = next) {
		char *f[7];
		size_t k = 0;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strncmp(line, name, nlen) || line[nlen] != ':')
			continue;
		for (char *p = line; k < 7; k++) {
			f[k] = p;
			p = strchr(p, ':');
			if (!p)
				break;
			*p++ = '\0';
		}
		if (k < 6 || f[5][0] != '/' || strlen(f[5]) >= sizeof(out->home))
			return false;
		snprintf(out->name, sizeof(out->name), "%s", name);
		snprintf(out->home, sizeof(out->home), "%s", f[5]);
		out->uid = (uid_t)strtoul(f[2], NULL, 10);
		out->gid = (gid_t)strtoul(f[3], NULL, 10);
		return true;
	}
	return false;
}

static void kiln_login_user(struct kiln_login *out)
{
	_cleanup_free_ char *want = kiln_read_small("/etc/kiln/login-user", NULL);
	char *name = want;

	if (name) {
		name += strspn(name, " \t\n");
		name[strcspn(name, " \t\r\n#")] = '\0';
	}
	if (name && *name && strlen(name) < sizeof(out->name) && kiln_passwd_find(name, out))
		return;
	if (name && *name)
		kiln_log(
		    "login user '%s' of /etc/kiln/login-user is not in /etc/passwd; using root",
		    name);
	if (!kiln_passwd_find("root", out)) {
		snprintf(out->name, sizeof(out->name), "root");
		snprintf(out->home, sizeof(out->home), "/root");
		out->uid = 0;
		out->gid = 0;
	}
}

/* The key pair's public key, when the runtime passes one (/run/kiln/openssh-key): served as
 * meta/public-keys/0/openssh-key every boot, added on first boot to the login user's
 * ~/.ssh/authorized_keys (the directory 0700, the file 0600, both the user's). */
static void kiln_openssh_key(bool first_boot)
{
	_cleanup_free_ char *key = kiln_read_small(KILN_OPENSSH_KEY, NULL);
	_cleanup_free_ char *have = NULL;
	_cleanup_close_ int fd = -1;
	struct kiln_login user;
	char dir[PATH_MAX + 8], auth[PATH_MAX + 32];
	size_t len, have_len = 0;

	if (!key) {
		if (errno != ENOENT)
			kiln_log("cannot read '%s': %s", KILN_OPENSSH_KEY, strerror(errno));
		return;
	}
	len = strlen(key);
	while (len && (key[len - 1] == '\n' || key[len - 1] == '\r' || key[len - 1] == ' '))
		key[--len] = '\0';
	if (!len || strchr(key, '\n')) {
		kiln_log("ignoring '%s': not one public key line", KILN_OPENSSH_KEY);
		return;
	}
	if (kiln_mkdir_p(KILN_META_DIR "/public-keys/0", 0755) < 0 ||
	    kiln_write_file(KILN_META_DIR "/public-keys/0/openssh-key", key, len, 0644) < 0)
		kiln_log("cannot write public key metadata: %s", strerror(errno));
	if (!first_boot)
		return;
	kiln_login_user(&user);
	snprintf(dir, sizeof(dir), "%s/.ssh", strcmp(user.home, "/") ? user.home : "");
	snprintf(auth, sizeof(auth), "%s/authorized_keys", dir);
	have = kiln_read_small(auth, &have_len);
	if (have && strstr(have, key))
		return;
	if (kiln_mkdir_p(dir, 0700) < 0 ||
	    fchownat(AT_FDCWD, dir, user.uid, user.gid, AT_SYMLINK_NOFOLLOW) < 0)
		goto on_error;
	fd = open(auth, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || fchown(fd, user.uid, user.gid) < 0)
		goto on_error;
	/* a last line without its newline must not swallow the key */
	if (have_len && have[have_len - 1] != '\n' && kiln_write_full(fd, "\n", 1) < 0)
		goto on_error;
	if (kiln_write_full(fd, key, len) < 0 || kiln_write_full(fd, "\n", 1) < 0)
		goto on_error;
	kiln_log("key pair added to %s's %s", user.name, auth);
	return;
on_error:
	kiln_log("cannot add the key pair to '%s': %s", auth, strerror(errno));
}

/* sshd (or dropbear) before the user data, so that SSH answers as soon as possible. Both stay in
 * the foreground as children of PID 1: a plain `sshd` whose parent is PID 1 and which leads its
 * session takes itself for already daemonized and never returns, so it is not waited for.
 * Fresh host keys: Ed25519 and ECDSA keys take milliseconds and every current client accepts
 * them, so sshd starts with those. The RSA key takes a few hundred ms: it is made in the
 * background and serves from the next boot on (a SIGHUP to load it now would make sshd close
 * its socket while it re-executes, refusing whoever connects in that moment). */
static void kiln_start_ssh(void)
{
	char keygen[PATH_MAX];
	int st;

	if (kiln_is_executable(KILN_SSHD)) {
		if (!kiln_match_files("/etc/ssh", "ssh_host_*_key", false) &&
		    kiln_which("ssh-keygen", keygen, sizeof(keygen))) {
			st = kiln_run((char *[]){keygen, "-q", "-t", "ed25519", "-N", "", "-f",
			                         "/etc/ssh/ssh_host_ed25519_key", NULL});
			if (st > 0)
				kiln_report("ssh-keygen -t ed25519", st);
			st = kiln_run((char *[]){keygen, "-q", "-t", "ecdsa", "-N", "", "-f",
			                         "/etc/ssh/ssh_host_ecdsa_key", NULL});
			if (st > 0)
				kiln_report("ssh-keygen -t ecdsa", st);
			/* Silent: its progress line would split the user data's lines on the
			 * console. */
			kiln_keygen_pid = kiln_spawn_to((char *[]){keygen, "-A", NULL}, true);
		}
		if (kiln_mkdir_p("/run/sshd", 0755) < 0)
			kiln_log("cannot create '/run/sshd': %s", strerror(errno));
		kiln_sshd_name = "sshd";
		kiln_sshd_pid = kiln_spawn((char *[]){KILN_SSHD, "-D", NULL});
	} else if (kiln_is_executable(KILN_DROPBEAR)) {
		kiln_sshd_name = "dropbear";
		kiln_sshd_pid = kiln_spawn((char *[]){KILN_DROPBEAR, "-R", "-F", NULL});
	}
}

/* An executable copy of a #! user data script; /run/kiln/user-data itself is left as given. */
static int kiln_copy_exec(int src)
{
	_cleanup_close_ int dst = -1;
	char buf[65536];
	ssize_t n;

	unlink(KILN_USER_DATA_EXEC);
	dst = open(KILN_USER_DATA_EXEC, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0700);
	if (dst < 0 || lseek(src, 0, SEEK_SET) < 0)
		return -1;
	while ((n = kiln_read_full(src, buf, sizeof(buf))) > 0)
		if (kiln_write_full(dst, buf, (size_t)n) < 0)
			return -1;
	return n < 0 ? -1 : 0;
}

/* Runs the user data, if any. Returns false only when a stop came before it could start, so the
 * caller records the instance only once the user data has had its single chance. */
static bool kiln_user_data(void)
{
	char *argv[3] = {"/bin/sh", KILN_USER_DATA, NULL};
	char head[USER_DATA_HEAD];
	enum user_data_kind kind;
	ssize_t n;
	int st;

	{
		_cleanup_close_ int fd = open(KILN_USER_DATA, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			if (errno != ENOENT)
				kiln_log("cannot open user-data: %s", strerror(errno));
			return true;
		}
		n = kiln_read_full(fd, head, sizeof(head));
		if (n <= 0)
			return true;
		kind = user_data_kind(head, (size_t)n);
		if (user_data_kind_name(kind)) {
			kiln_log("user-data is %s, which kiln-init does not interpret: skipped",
			         user_data_kind_name(kind));
			return true;
		}
		if (kind == USER_DATA_SCRIPT) {
			if (kiln_copy_exec(fd) < 0) {
				kiln_log("cannot copy user-data to '%s': %s", KILN_USER_DATA_EXEC,
				         strerror(errno));
				return true;
			}
			argv[0] = KILN_USER_DATA_EXEC;
			argv[1] = NULL;
		}
	}
	if (kiln_stopping)
		return false;
	st = kiln_run(argv);
	if (st >= 0)
		kiln_report("user-data", st);
	else if (kiln_stopping)
		kiln_log("user-data did not finish: stopping");
	return true;
}

static int kiln_rc_filter(const struct dirent *de)
{
	return de->d_name[0] != '.';
}

/* Every executable of /etc/kiln/rc.d in byte order, one at a time: they start services in the
 * background and return. */
static void kiln_run_rc(void)
{
	struct dirent **names;
	char path[PATH_MAX];
	int n = scandir(KILN_RC_DIR, &names, kiln_rc_filter, alphasort);

	if (n < 0) {
		if (errno != ENOENT)
			kiln_log("cannot list '%s': %s", KILN_RC_DIR, strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		int len = snprintf(path, sizeof(path), "%s/%s", KILN_RC_DIR, names[i]->d_name);
		if (!kiln_stopping && len > 0 && (size_t)len < sizeof(path) &&
		    kiln_is_executable(path)) {
			int st = kiln_run((char *[]){path, NULL});
			if (st > 0)
				kiln_report(path + sizeof("/etc/kiln/") - 1, st);
		}
		free(names[i]);
	}
	free(names);
}

/* Everyone gets SIGTERM and KILN_STOP_TIMEOUT seconds, then SIGKILL. */
static int kiln_shutdown(void)
{
	long deadline;

	kiln_log("shutting down");
	kill(-1, SIGTERM);
	deadline = kiln_now_ms() + kiln_stop_timeout * 1000L;
	while (kiln_reap(0, NULL) >= 0) {
		long left = deadline - kiln_now_ms();
		if (left <= 0) {
			kiln_log("still running after %ld s: killing", kiln_stop_timeout);
			break;
		}
		kiln_wait_signal(left);
	}
	/* Again for each reaped child: a process forking during the kill is not missed. */
	for (;;) {
		kill(-1, SIGKILL);
		if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD)
			break;
	}
	sync();
	return 0;
}

/* An image declares that cloud-init configures it (debian-12) with /etc/kiln/cloud-init: cloud-init
 * then reads the user data and the key pair from the metadata service and acts on them once per
 * instance, so kiln-init must not as well. Images without it (busybox) get kiln-init's own path. */
static bool kiln_has_cloud_init(void)
{
	struct stat st;

	if (lstat(KILN_CLOUD_INIT, &st) == 0)
		return true;
	if (errno != ENOENT)
		kiln_log("cannot check '%s': %s", KILN_CLOUD_INIT, strerror(errno));
	return false;
}

int main(void)
{
	const char *id;
	bool first, cloud_init;

	/* kill(-1) from anything but a namespace's init would reach the whole host. */
	if (getpid() != 1) {
		kiln_log("must run as PID 1 of an instance");
		return 1;
	}
	/* Run from a memfd, the kernel names it "memfd:kiln-init": tools look for "kiln-init". */
	prctl(PR_SET_NAME, "kiln-init");
	/* Whatever the runtime left open is not for the services. */
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	umask(022);
	if (chdir("/") < 0)
		kiln_log("cannot enter '/': %s", strerror(errno));
	kiln_signals_init();
	kiln_env_init();
	kiln_vars_init();
	kiln_write_meta();
	id = kiln_vars[KV_INSTANCE_ID];
	kiln_log("booting %s (%s) in %s", id, kiln_vars[KV_IMAGE_ID], kiln_vars[KV_ZONE]);

	if (!*id)
		kiln_log("KILN_INSTANCE_ID is not set: no first-boot steps");
	first = *id && kiln_first_boot(id);
	cloud_init = kiln_has_cloud_init();
	if (first)
		kiln_delete_host_keys();
	if (first && cloud_init)
		kiln_log("user data and key pair left to cloud-init (%s)", KILN_CLOUD_INIT);
	kiln_openssh_key(first && !cloud_init);
	kiln_start_ssh();
	if (first && (cloud_init || kiln_user_data()))
		kiln_record_instance(id);
	kiln_run_rc();
	if (!kiln_stopping)
		kiln_log("ready");
	while (!kiln_stopping) {
		kiln_reap(0, NULL);
		kiln_wait_signal(-1);
	}
	return kiln_shutdown();
}
