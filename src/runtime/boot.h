/* The container side of a boot: runs in the new namespaces, prepares the root, execs PID 1. */
#ifndef KILN_BOOT_H
#define KILN_BOOT_H

#include <sys/types.h>

#include "runtime.h"

struct boot_config {
	const struct instance_spec *spec;
	const char *dir;
	const char *device; /* the loop device of the root volume */
	int init_fd;        /* kiln-init in a sealed memfd: no host file of it is inside */
	int console_fd;     /* the write end of the console pipe the shim reads */
	int sync_fd;        /* see boot_container */
	/* The namespaces the shim made, owned by the instance's user namespace. */
	int userns_fd, netns_fd, utsns_fd, ipcns_fd;
	uid_t id_base; /* host uid and gid of the instance's root */
};

/* Never returns: execs kiln-init or reports why it could not and exits. The protocol on
 * sync_fd: the child sends "mounted" with the descriptors of the root and of /dev (SCM_RIGHTS,
 * kept by the shim for freezes and volume nodes) or a failure reason; the shim answers "go"
 * once the cgroup and the network are in place; end of file at exec, or a failure reason. */
__attribute__((noreturn)) void boot_container(const struct boot_config *c);

#endif
