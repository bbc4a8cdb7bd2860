/* Host uid/gid ranges of instances, host-wide: slot n is the file <ids dir>/<n> naming the run
 * directory and the instance that hold it, so that instances of two data directories on one
 * host never share host ids. A slot is created whole (an unnamed file linked into place), held
 * from an instance's start until it is removed or kiln down, and locked by its shim while the
 * instance runs. */
#include "runtime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "confine.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

struct slot {
	char run[PATH_MAX];
	char id[ID_MAX];
};

const char *runtime_ids_dir(void)
{
	const char *d = getenv("KILN_IDS_DIR"); /* tests: a directory of their own */

	return d && *d ? d : RUNTIME_IDS_DIR;
}

unsigned runtime_ids_slot(unsigned id_base)
{
	return id_base >= CONFINE_ID_FIRST &&
	               (id_base - CONFINE_ID_FIRST) / CONFINE_ID_RANGE < CONFINE_ID_SLOTS
	           ? (id_base - CONFINE_ID_FIRST) / CONFINE_ID_RANGE
	           : UINT32_MAX;
}

/* "RUN\nID\n" of slot n; false when there is none or it is malformed. */
static bool slot_read(int dfd, unsigned n, struct slot *s)
{
	char name[16];

	snprintf(name, sizeof(name), "%u", n);
	return n < CONFINE_ID_SLOTS &&
	       fs_read_two_lines(dfd, name, s->run, sizeof(s->run), s->id, sizeof(s->id)) == 0;
}

static bool slot_is(int dfd, unsigned n, const char *run, const char *id)
{
	struct slot s;

	return slot_read(dfd, n, &s) && !strcmp(s.run, run) && !strcmp(s.id, id);
}

/* Nobody can be using slot n: its instance's directory is gone (its data directory was removed
 * or moved) and no shim holds the slot's lock. */
static bool slot_dead(int dfd, unsigned n, const struct slot *s)
{
	_cleanup_free_ char *inst = xasprintf("%s/%s", s->run, s->id);
	_cleanup_close_ int fd = -1;
	char name[16];

	if (access(inst, F_OK) == 0 || errno != ENOENT)
		return false;
	snprintf(name, sizeof(name), "%u", n);
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	return fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0;
}

/* Write slot n naming run and id: an unnamed file, complete before it gets its name (a crash
 * leaves either no slot or a whole one). Without replace, 1 when the slot exists. */
static int slot_write(int dfd, unsigned n, const char *run, const char *id, bool replace,
                      struct kerr **err)
{
	_cleanup_free_ char *text = xasprintf("%s\n%s\n", run, id);
	_cleanup_close_ int fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	char name[16], tmp[32], proc[32];

	snprintf(name, sizeof(name), "%u", n);
	snprintf(tmp, sizeof(tmp), ".new-%u", n);
	if (fd < 0 || fs_write_full(fd, text, strlen(text)) < 0)
		return kerr_errno(err, errno, "cannot write the id range slot '%s/%s'",
		                  runtime_ids_dir(), name);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (!replace) {
		if (linkat(AT_FDCWD, proc, dfd, name, AT_SYMLINK_FOLLOW) == 0)
			return 0;
		if (errno == EEXIST)
			return 1;
		return kerr_errno(err, errno, "cannot create the id range slot '%s/%s'",
		                  runtime_ids_dir(), name);
	}
	unlinkat(dfd, tmp, 0);
	if (linkat(AT_FDCWD, proc, dfd, tmp, AT_SYMLINK_FOLLOW) < 0 ||
	    renameat(dfd, tmp, dfd, name) < 0)
		return kerr_errno(err, errno, "cannot replace the id range slot '%s/%s'",
		                  runtime_ids_dir(), name);
	return 0;
}

/* Take slot n for run and id: free, or left by an instance that is gone. 1 when it is taken. */
static int slot_claim(int dfd, unsigned n, const char *run, const char *id, struct kerr **err)
{
	struct slot s;
	int r = slot_write(dfd, n, run, id, false, err);

	if (r == 1 && slot_read(dfd, n, &s) && slot_dead(dfd, n, &s))
		r = slot_write(dfd, n, run, id, true, err);
	return r;
}

static void slot_remove(int dfd, unsigned n)
{
	char name[16];

	snprintf(name, sizeof(name), "%u", n);
	unlinkat(dfd, name, 0);
}

static char *run_real(const struct runtime *rt, struct kerr **err)
{
	char *real = realpath(rt->run_dir, NULL);

	if (!real)
		kerr_errno(err, errno, "cannot resolve '%s'", rt->run_dir);
	return real;
}

int runtime_ids_assign(struct runtime *rt, struct instance_spec *spec, struct kerr **err)
{
	_cleanup_free_ char *real = run_real(rt, err);
	_cleanup_close_ int dfd = -1, lockfd = -1;
	struct instance_spec saved;
	unsigned first;

	if (!real || fs_dir_lock(runtime_ids_dir(), &dfd, &lockfd, err) < 0)
		return -1;
	if (runtime_spec_load(rt, spec->id, &saved, NULL) == 0 &&
	    slot_is(dfd, runtime_ids_slot(saved.id_base), real, spec->id)) {
		spec->id_base = saved.id_base;
		return runtime_spec_save(rt, spec, err);
	}
	/* Ids are random: their last digits spread the first tries over the slots. */
	first = (unsigned)strtoul(spec->id + strlen(spec->id) - 4, NULL, 16) % CONFINE_ID_SLOTS;
	for (unsigned i = 0; i < CONFINE_ID_SLOTS; i++) {
		unsigned n = (first + i) % CONFINE_ID_SLOTS;
		int r = slot_claim(dfd, n, real, spec->id, err);

		if (r < 0)
			return kerr_wrap(err, "cannot give '%s' a host id range", spec->id);
		if (r == 1)
			continue;
		/* The spec under the lock too: recovery never sees a slot its spec does not name
		 * yet. */
		spec->id_base = CONFINE_ID_FIRST + n * CONFINE_ID_RANGE;
		if (runtime_spec_save(rt, spec, err) < 0) {
			slot_remove(dfd, n);
			return -1;
		}
		return 0;
	}
	return kerr_set(err, KERR_LIMIT, "every host id range is taken (%u instances)",
	                CONFINE_ID_SLOTS);
}

int runtime_ids_release(struct runtime *rt, const char *id, struct kerr **err)
{
	_cleanup_free_ char *real = run_real(rt, err);
	_cleanup_close_ int dfd = -1, lockfd = -1;
	struct instance_spec spec;

	if (!real || fs_dir_lock(runtime_ids_dir(), &dfd, &lockfd, err) < 0)
		return -1;
	if (runtime_spec_load(rt, id, &spec, NULL) == 0 &&
	    slot_is(dfd, runtime_ids_slot(spec.id_base), real, id))
		slot_remove(dfd, runtime_ids_slot(spec.id_base));
	return 0;
}

static bool instance_running(struct runtime *rt, const char *id)
{
	struct instance_status st;

	return rt->ops->status(rt, id, &st, NULL) == 0 &&
	       (st.state == RUN_RUNNING || st.state == RUN_STARTING || st.state == RUN_STOPPING);
}

int runtime_ids_recover(struct runtime *rt, bool keep_stopped, struct kerr **err)
{
	_cleanup_free_ char *real = run_real(rt, err);
	_cleanup_free_ char *old = xasprintf("%s/ids", rt->run_dir);
	_cleanup_free_ char(*ids)[ID_MAX] = NULL;
	_cleanup_close_ int dfd = -1, lockfd = -1;
	struct dirent *de;
	size_t count = 0;
	int r = 0;
	DIR *d;

	if (!real || fs_dir_lock(runtime_ids_dir(), &dfd, &lockfd, err) < 0)
		return -1;
	d = fs_opendir_dup(dfd);
	if (!d)
		return kerr_errno(err, errno, "cannot read '%s'", runtime_ids_dir());
	/* Only this run directory's slots: another's are its daemon's to recover. */
	while ((de = readdir(d))) {
		struct instance_spec spec;
		char *end;
		unsigned long n = strtoul(de->d_name, &end, 10);
		struct slot s;

		if (!strncmp(de->d_name, ".new-", 5)) { /* a replace cut short (under the lock) */
			unlinkat(dfd, de->d_name, 0);
			continue;
		}
		if (*end || end == de->d_name || !slot_read(dfd, (unsigned)n, &s) ||
		    strcmp(s.run, real))
			continue;
		if (runtime_spec_load(rt, s.id, &spec, NULL) == 0 &&
		    runtime_ids_slot(spec.id_base) == n &&
		    (keep_stopped || instance_running(rt, s.id)))
			continue;
		slot_remove(dfd, (unsigned)n);
	}
	closedir(d);
	/* A running instance whose slot is missing (the ids directory was emptied under it, or
	 * its slot was under the run directory before ids were host-wide) takes it again. */
	if (runtime_list(rt, &ids, &count, err) < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		struct instance_spec spec;
		unsigned n;
		int c;

		if (!instance_running(rt, ids[i]) ||
		    runtime_spec_load(rt, ids[i], &spec, NULL) < 0 ||
		    (n = runtime_ids_slot(spec.id_base)) == UINT32_MAX ||
		    slot_is(dfd, n, real, ids[i]))
			continue;
		c = slot_claim(dfd, n, real, ids[i], err);
		if (c < 0)
			return -1;
		if (c == 1 && r == 0)
			r = kerr_set(err, KERR_CONFLICT,
			             "instance '%s' runs with host ids %u.. that another instance "
			             "holds: stop it",
			             ids[i], spec.id_base);
	}
	fs_remove_tree(old, NULL);
	return r;
}

int runtime_ids_hold(const char *run_dir, const char *id, unsigned id_base, int *hold,
                     struct kerr **err)
{
	_cleanup_free_ char *real = realpath(run_dir, NULL);
	_cleanup_close_ int dfd = -1, lockfd = -1, fd = -1;
	unsigned n = runtime_ids_slot(id_base);
	char name[16];

	*hold = -1;
	if (!real)
		return kerr_errno(err, errno, "cannot resolve '%s'", run_dir);
	if (fs_dir_lock(runtime_ids_dir(), &dfd, &lockfd, err) < 0)
		return -1;
	if (n == UINT32_MAX || !slot_is(dfd, n, real, id))
		return kerr_set(err, KERR_CONFLICT,
		                "the instance holds no host id range of its own (no slot in '%s')",
		                runtime_ids_dir());
	snprintf(name, sizeof(name), "%u", n);
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || flock(fd, LOCK_SH) < 0)
		return kerr_errno(err, errno, "cannot hold the id range slot '%s/%s'",
		                  runtime_ids_dir(), name);
	*hold = steal_fd(&fd);
	return 0;
}
