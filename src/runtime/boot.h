/* The container side of a boot: runs in the new namespaces, prepares the root, execs PID 1. */
#ifndef KILN_BOOT_H
#define KILN_BOOT_H

#include "runtime.h"

struct boot_config {
	const struct instance_spec *spec;
	int dirfd;          /* the instance's run directory */
	const char *dir;
	const char *device; /* the loop device of the root volume */
	const char *init_path; /* host path of kiln-init */
	int console_fd;
	int sync_fd; /* "go" arrives here; a failure reason goes back; closes at exec */
};

/* Never returns: execs kiln-init or reports why it could not and exits. */
__attribute__((noreturn)) void boot_container(const struct boot_config *c);

/* Capabilities no instance keeps: they would reach the host (modules, raw devices, mounts). */
void boot_drop_capabilities(void);

#endif
