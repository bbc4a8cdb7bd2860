/* Instance runtimes: start, stop, exec and inspect instances whose root is a volume file.
 * Backends sit behind struct runtime_ops; the container backend is the default (and, on hosts
 * whose /dev/kvm does not run guests, the only one). */
#ifndef KILN_RUNTIME_H
#define KILN_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/id.h"
#include "util/kerr.h"

/* EC2's limit on user data, decoded: the most an instance is given. */
#define USER_DATA_MAX (16 << 10)

struct instance_type {
	const char *name;
	unsigned vcpus;
	uint64_t memory_mib;
};

/* The most processes and threads an instance of the type may have at once. */
uint64_t instance_type_pids(const struct instance_type *t);

const struct instance_type *instance_type_find(const char *name);
/* The table, NULL-terminated by name. */
extern const struct instance_type instance_types[];

/* Everything a runtime needs to boot an instance; stored as <run_dir>/<id>/spec. */
struct instance_spec {
	char id[ID_MAX];
	char image_id[ID_MAX];
	char region[32];
	char zone[32];
	char type[32];
	char hostname[128];
	char root_volume[4096]; /* host path of the root volume file */
	char netns[4096];       /* the pin of its VPC's network namespace, or "": the host's */
	char bridge[16];        /* the bridge its port joins (in that namespace) */
	char address[24];       /* "172.31.0.10/20" */
	char gateway[16];       /* "172.31.0.1" */
	char mac[18];           /* "02:…", may be empty */
	char user_data[4096];   /* host path of the user-data file, may be empty */
	char public_key[4096];  /* host path of the key pair's OpenSSH public key, may be empty */
	unsigned stop_timeout;  /* seconds kiln-init waits before SIGKILL */
	unsigned id_base;       /* first host uid/gid of the instance's own range (set by start) */
};

enum instance_run_state {
	RUN_STOPPED = 0, /* never started, or ended */
	RUN_STARTING,
	RUN_RUNNING,
	RUN_STOPPING,
	RUN_FAILED, /* could not boot: reason says why */
	RUN__COUNT
};
extern const char *const instance_run_state_names[RUN__COUNT];

struct instance_status {
	enum instance_run_state state;
	pid_t init_pid; /* host view of the instance's PID 1 */
	pid_t shim_pid;
	int shim_root_fd; /* the shim's descriptor of the instance's root while it runs, or -1 */
	int exit_status;  /* of PID 1 after it ended, or -1 */
	char reason[512];
};

struct runtime;

/* A command started in an instance: its parent, the kiln-shim that entered the instance, which
 * passes SIGINT, SIGTERM and SIGHUP on to the command's process group and exits with the
 * command's status. */
struct runtime_exec {
	pid_t pid;
	int pidfd; /* readable once it has ended */
};

/* Send sig (SIGINT, SIGTERM or SIGHUP) to the command's process group. */
int runtime_exec_signal(struct runtime_exec *x, int sig, struct kerr **err);
/* Wait for the end and release x: *exit_status as from a shell (128 + signal when killed). */
int runtime_exec_wait(struct runtime_exec *x, int *exit_status, struct kerr **err);
/* Release x without waiting: the command runs on alone. */
void runtime_exec_release(struct runtime_exec *x);

struct runtime_ops {
	const char *name;
	/* Boot; returns once PID 1 runs (0) or the boot failed (-1, and status FAILED). */
	int (*start)(struct runtime *rt, const struct instance_spec *spec, struct kerr **err);
	/* Ask PID 1 to shut down, SIGKILL after timeout_s (at once with force); returns stopped. */
	int (*stop)(struct runtime *rt, const char *id, bool force, unsigned timeout_s,
	            struct kerr **err);
	int (*status)(struct runtime *rt, const char *id, struct instance_status *st,
	              struct kerr **err);
	/* Start argv inside the instance with stdio[0..2] as its stdin, stdout and stderr (NULL:
	 * the caller's); end it with runtime_exec_wait. */
	int (*exec)(struct runtime *rt, const char *id, char *const argv[], const int stdio[3],
	            struct runtime_exec *x, struct kerr **err);
	/* Freeze (or thaw) the root filesystem of a running instance, through the descriptor of its
	 * root that the shim holds since before the instance ran. */
	int (*freeze)(struct runtime *rt, const char *id, bool freeze, struct kerr **err);
};

struct runtime {
	const struct runtime_ops *ops;
	char *run_dir;   /* <run_dir>/<id>/{spec,state,console.log} */
	char *shim_path; /* the kiln-shim binary, whose "__shim DIR" runs runtime_shim_main */
	char *init_path; /* host path of the static kiln-init */
	int init_fd;     /* kiln-init in a sealed memfd, shared by every instance started here */
};

/* kiln-init copied into a sealed memfd: instances run it without any host file behind it and
 * cannot write to it through /proc/1/exe. */
int runtime_init_memfd(const char *init_path, int *fd, struct kerr **err);

int runtime_open(const char *run_dir, const char *shim_path, const char *init_path,
                 struct runtime **out, struct kerr **err);
void runtime_close(struct runtime *rt);
/* The instance's private files; malloc'd. */
char *runtime_instance_path(const struct runtime *rt, const char *id, const char *file);
/* Open the instance's run directory: KERR_INVALID for a malformed id, KERR_NOT_FOUND when the
 * run directory does not know it. */
int runtime_open_instance(const struct runtime *rt, const char *id, int *dfd, struct kerr **err);
int runtime_spec_save(struct runtime *rt, const struct instance_spec *spec, struct kerr **err);
int runtime_spec_load(struct runtime *rt, const char *id, struct instance_spec *spec,
                      struct kerr **err);

/* Host uid/gid ranges (ids.c), host-wide so that the instances of two data directories never
 * share one: slot n (host ids CONFINE_ID_FIRST + n * CONFINE_ID_RANGE on) is the file
 * RUNTIME_IDS_DIR/<n>, "RUN_DIR\nINSTANCE_ID\n" (the run directory's real path: DATA/run for
 * a daemon), created whole and exclusively. /run is a tmpfs: after a reboot no instance runs
 * and each takes a slot again at its next start. KILN_IDS_DIR moves the directory (tests). */
#define RUNTIME_IDS_DIR "/run/kiln/ids"
const char *runtime_ids_dir(void);
/* The slot of a first host id, UINT32_MAX when it is none. */
unsigned runtime_ids_slot(unsigned id_base);
/* Give spec the host uid/gid range it keeps until runtime_remove or kiln down (the one it
 * had, if it still holds it; else a free slot, or one whose instance directory is gone and
 * whose lock no shim holds), and save spec. */
int runtime_ids_assign(struct runtime *rt, struct instance_spec *spec, struct kerr **err);
/* Give back the slot of instance id (runtime_remove does). */
int runtime_ids_release(struct runtime *rt, const char *id, struct kerr **err);
/* At a daemon's start (keep_stopped) and at kiln down (not): of this run directory's slots,
 * keep those its instances hold (only the running ones without keep_stopped) and remove the
 * others; take again the slot of a running instance that lost its file. Never touches a slot
 * of another run directory. KERR_CONFLICT when a running instance's slot is another's. */
int runtime_ids_recover(struct runtime *rt, bool keep_stopped, struct kerr **err);
/* The shim's check before a boot: the slot of id_base names run_dir and id; *hold is a shared
 * lock on it for as long as the instance runs (a slot whose lock is held is never taken). */
int runtime_ids_hold(const char *run_dir, const char *id, unsigned id_base, int *hold,
                     struct kerr **err);
/* Forget a stopped instance: its run directory (console log included) goes. */
int runtime_remove(struct runtime *rt, const char *id, struct kerr **err);
/* Ids of every instance the run directory knows; malloc'd array. */
int runtime_list(struct runtime *rt, char (**ids)[ID_MAX], size_t *n, struct kerr **err);

/* Run fn while the instance's root filesystem is frozen (FIFREEZE: consistent on disk, writers
 * wait). It is thawed on every path; a watchdog thaws it after max_ms even if fn hangs, and the
 * call then fails, since what fn did may not be a consistent point in time. */
int runtime_frozen(struct runtime *rt, const char *id, unsigned max_ms,
                   int (*fn)(void *ctx, struct kerr **err), void *ctx, struct kerr **err);
/* A point-in-time copy of the root volume into dest (a new file on the same reflink
 * filesystem): frozen FICLONE while the instance runs, a plain FICLONE when it is stopped. */
int runtime_clone_root(struct runtime *rt, const char *id, const char *dest, struct kerr **err);

/* The shim's body: boots the instance described in dir, waits for it, cleans up. ready_fd
 * gets "ok" or the failure reason once the boot is decided. Returns the process exit code. */
int runtime_shim_main(const char *dir, const char *init_path, int ready_fd);
/* `kiln exec`'s body, in a freshly exec'd kiln-shim (so nothing of the caller's memory enters
 * the instance): joins the instance's cgroups, namespaces, user, capabilities and seccomp
 * filter, then runs argv. Returns the exit code as a shell would. */
int runtime_exec_main(const char *dir, char *const argv[]);

extern const struct runtime_ops container_ops;

/* Data volumes (volumes.c). Device names are what follows /dev/: "xvdf", "sdg". */
struct kv;
bool runtime_device_name_valid(const char *name);
/* The instance's data volumes become wanted (device -> volume file); a running instance gets
 * them (and loses the others) before this returns; a stopped one at its next boot. */
int runtime_volumes_set(struct runtime *rt, const char *id, const struct kv *wanted,
                        struct kerr **err);

/* Write what the instance wrote to a data volume through to its file (before a reflink). */
int runtime_volume_flush(struct runtime *rt, const char *id, const char *name, struct kerr **err);

#define SHIM_VOLUMES_MAX 24
struct shim_volume {
	char name[16];
	char path[4096];
	char loop[32];
	int fd; /* held open: the loop device lives while the shim does */
};
struct shim_volumes {
	struct shim_volume v[SHIM_VOLUMES_MAX];
	size_t n;
	int devfd;          /* the instance's /dev, opened before it ran */
	const char *cgroup; /* whose device allow-list admits the volumes */
	unsigned owner;     /* host uid and gid of the instance's root */
};
/* In the shim: make the instance's devices match <dir>/volumes. */
void shim_volumes_sync(struct shim_volumes *sv, int dirfd);
void shim_volumes_release(struct shim_volumes *sv, int dirfd);

#endif
