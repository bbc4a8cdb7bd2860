/* What every process of an instance carries, whether kiln-init or a `kiln exec` command: root of
 * the instance's user namespace (a host uid range of its own), Docker's default capability set
 * and a seccomp filter that refuses what reaches the kernel's global state. */
#ifndef KILN_CONFINE_H
#define KILN_CONFINE_H

#include <stdint.h>
#include <sys/types.h>

#include "util/kerr.h"

/* Every instance maps its uids and gids 0..CONFINE_ID_RANGE-1 onto a host range of its own. */
#define CONFINE_ID_RANGE 65536u
/* Host ids of instance slot n start at CONFINE_ID_FIRST + n * CONFINE_ID_RANGE. */
#define CONFINE_ID_FIRST 0x40000000u
#define CONFINE_ID_SLOTS 16384u

/* Write "0 base CONFINE_ID_RANGE" to the uid and gid maps of pid's user namespace. */
int confine_idmap_write(pid_t pid, uid_t base, struct kerr **err);

/* Join the user namespace userns_fd (the caller is host root, in the instance's other namespaces
 * already) and become its root. */
int confine_become_root(int userns_fd, struct kerr **err);

/* Load the seccomp filter (needs CAP_SYS_ADMIN in the caller's user namespace, so before
 * confine_capabilities; no_new_privs stays off so that sudo and su keep working inside). */
int confine_seccomp(struct kerr **err);

/* Reduce every capability set to Docker's default fourteen; ambient and inheritable empty. */
int confine_capabilities(struct kerr **err);

#endif
