/* Resource limits for instances through cgroups: v1 (cpu, memory, pids hierarchies) or v2,
 * whichever the host has, nested under the cgroup of the process that creates them. */
#ifndef KILN_CGROUP_H
#define KILN_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/kerr.h"

struct cgroup_limits {
	unsigned vcpus;        /* CPU quota in whole CPUs; 0: none */
	uint64_t memory_bytes; /* hard limit; 0: none */
	uint64_t pids_max;     /* 0: none */
};

/* name is a relative path such as "kiln/i-0123…"; created with its limits. */
int cgroup_create(const char *name, const struct cgroup_limits *l, struct kerr **err);
int cgroup_attach(const char *name, pid_t pid, struct kerr **err);
/* Admit (or no longer admit) reads and writes of one device node inside the cgroup. */
int cgroup_device(const char *name, char type, unsigned major, unsigned minor, bool allow,
                  struct kerr **err);
/* Kill what is left inside, then remove the cgroup in every hierarchy (missing is fine). */
int cgroup_remove(const char *name, struct kerr **err);
/* The directories of name, one per hierarchy, for tests and diagnostics; returns the count. */
int cgroup_paths(const char *name, char paths[][4096], int max);

#endif
